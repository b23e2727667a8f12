//! The register step: register the image from its manifest, exactly once per job.

use tracing::{info, warn};

use super::{percent, Pipeline};
use crate::contract::RegisterOutput;
use crate::domain::{AmiId, JobId, Manifest, ManifestPath, TagKey};
use crate::error::{AwsErrorKind, StepError};

/// Reads the job's manifest back, checks its digest, and registers the image with the
/// manifest's block device mapping and attributes, tagged in the same call. An image of that
/// name made by this job (a retry) is adopted; one made by anything else is a conflict.
///
/// # Errors
/// [`StepError::NameTaken`] naming the image that holds the name; [`StepError::Manifest`] for
/// a manifest that fails its digest; an AWS or store error.
pub async fn run(pipeline: &Pipeline, job_id: &JobId) -> Result<RegisterOutput, StepError> {
    let job = pipeline.jobs.get(job_id).await?;
    let spec = pipeline.spec_of(&job)?;
    let Some(path) = job.manifest_path.as_deref() else {
        return Err(StepError::JobIncomplete {
            job_id: job_id.clone(),
            what: "manifest",
            step: "bundle",
        });
    };
    let path = ManifestPath::parse(path).map_err(|e| StepError::BadEvent(e.to_string()))?;
    let manifest = pipeline.manifests.get(&path).await?;

    let mut tags = vec![
        (TagKey::JOB_ID.to_owned(), job_id.to_string()),
        (
            TagKey::IMAGE_NAME.to_owned(),
            manifest.body.name.to_string(),
        ),
        (TagKey::MANIFEST.to_owned(), path.to_string()),
        (
            TagKey::SOURCE_INSTANCE.to_owned(),
            manifest.body.source.instance_id.to_string(),
        ),
    ];
    if let Some(schedule) = &job.schedule {
        tags.push((TagKey::SCHEDULE.to_owned(), schedule.clone()));
    }
    tags.extend(spec.tags.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));

    let image_id = match adopt(pipeline, job_id, &manifest).await? {
        Some(id) => id,
        None => match pipeline.ec2.register(&manifest, &tags).await {
            Ok(id) => id,
            Err(StepError::Aws(err)) if err.kind == AwsErrorKind::Conflict => {
                // Someone registered the name between our look and our call.
                warn!(job_id = %job_id, error = %err, "image name taken while registering");
                adopt(pipeline, job_id, &manifest)
                    .await?
                    .ok_or(StepError::Aws(err))?
            }
            Err(err) => return Err(err),
        },
    };
    let codes: Vec<String> = manifest
        .body
        .product_codes
        .iter()
        .map(ToString::to_string)
        .collect();
    pipeline.ec2.attach_product_codes(&image_id, &codes).await?;
    let snapshots: Vec<String> = manifest
        .body
        .block_devices
        .iter()
        .map(|d| d.snapshot_id.to_string())
        .collect();
    // One call tags the snapshots with the image and, again, the image itself: the tags given
    // to RegisterImage are kept either way, and an adopted image gets any it missed.
    let mut resources = snapshots;
    resources.push(image_id.to_string());
    tags.push((TagKey::IMAGE_ID.to_owned(), image_id.to_string()));
    pipeline.ec2.tag(&resources, &tags).await?;

    let image = image_id.to_string();
    pipeline
        .update(job_id, |j| {
            j.image_id = Some(image.clone());
            j.progress(
                "register",
                percent::REGISTERED,
                format!("image {image} registered"),
            );
        })
        .await?;
    info!(job_id = %job_id, ami_id = %image_id, "image registered");
    Ok(RegisterOutput {
        job_id: job_id.clone(),
        image_id: image_id.to_string(),
    })
}

/// The image that already holds the manifest's name: ours to adopt when this job tagged it,
/// else a conflict.
async fn adopt(
    pipeline: &Pipeline,
    job_id: &JobId,
    manifest: &Manifest,
) -> Result<Option<AmiId>, StepError> {
    let existing = pipeline
        .ec2
        .images_named(manifest.body.name.as_str())
        .await?;
    let Some(image) = existing.into_iter().next() else {
        return Ok(None);
    };
    if image.tags.get(TagKey::JOB_ID).map(String::as_str) == Some(job_id.as_str()) {
        info!(job_id = %job_id, ami_id = %image.image_id, "adopting image this job registered");
        Ok(Some(image.image_id))
    } else {
        Err(StepError::NameTaken {
            name: manifest.body.name.to_string(),
            image_id: image.image_id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
