//! The bundle step: write the image manifest to S3 beside where the image will be listed.

use tracing::info;

use super::{percent, Pipeline};
use crate::contract::BundleOutput;
use crate::domain::{JobId, Manifest, ManifestBody, ManifestPath, FORMAT_VERSION};
use crate::error::StepError;

/// Writes `<bucket>/<prefix>/<image-name>/image.manifest.json` from what the job captured and
/// records its path. Writing again for the same job gives the same object.
///
/// # Errors
/// [`StepError::JobIncomplete`] before the snapshots are taken; [`StepError::NameTaken`] when
/// the path holds another job's manifest; an AWS error (a missing bucket is not found).
pub async fn run(pipeline: &Pipeline, job_id: &JobId) -> Result<BundleOutput, StepError> {
    let job = pipeline.jobs.get(job_id).await?;
    let spec = pipeline.spec_of(&job)?;
    let Some(capture) = job.capture.clone() else {
        return Err(StepError::JobIncomplete {
            job_id: job_id.clone(),
            what: "snapshots",
            step: "snapshot",
        });
    };
    let manifest = Manifest::seal(ManifestBody {
        format_version: FORMAT_VERSION,
        name: spec.name.clone(),
        description: spec.description.clone(),
        source: capture.source,
        attributes: capture.attributes,
        block_devices: capture.block_devices,
        not_captured: capture.not_captured,
        product_codes: spec.product_codes.clone(),
        job_id: job_id.clone(),
        created_at: capture.snapshots_started_at,
    });
    let path = ManifestPath::new(spec.bucket.clone(), spec.prefix.manifest_key(&spec.name));

    if pipeline.manifests.exists(&path).await? {
        match pipeline.manifests.get(&path).await {
            Ok(existing) if existing.body.job_id != *job_id => {
                return Err(StepError::NameTaken {
                    name: spec.name.to_string(),
                    image_id: format!("the manifest {path} of job {}", existing.body.job_id),
                });
            }
            // Ours from an earlier attempt: writing it again changes nothing.
            Ok(_) => {}
            // Unreadable: not ours to overwrite; a person has to judge it.
            Err(err) => return Err(err),
        }
    }
    pipeline
        .manifests
        .put(&path, &manifest, job_id.as_str())
        .await?;

    let manifest_path = path.to_string();
    pipeline
        .update(job_id, |j| {
            j.manifest_path = Some(manifest_path.clone());
            j.progress(
                "bundle",
                percent::BUNDLED,
                format!("manifest written to {manifest_path}"),
            );
        })
        .await?;
    info!(job_id = %job_id, manifest = %path, "manifest written");
    Ok(BundleOutput {
        job_id: job_id.clone(),
        manifest_path: path.to_string(),
    })
}
