//! The register step: register the image, exactly once per job. A build job registers from
//! the manifest its bundle step wrote; a register job from an existing manifest, ours or a
//! legacy S3 bundle's.

use tracing::{info, warn};

use super::{percent, Pipeline};
use crate::contract::RegisterOutput;
use crate::domain::{AmiId, JobId, Manifest, ManifestPath, RegisterSource, TagKey};
use crate::error::{AwsErrorKind, StepError};
use crate::jobs::{Job, JobKind, JobStatus};

/// Registers the job's image and records its id.
///
/// A build job's manifest is read back, its digest checked, and the image registered with the
/// manifest's block device mapping and attributes, tagged in the same call; its snapshots are
/// tagged with the image. A register job does the same from the manifest it names, but leaves
/// the snapshots' job tag alone (they belong to the build that made them, and this job's
/// rollback must never take them), or registers a legacy bundle by its image location.
///
/// An image of that name made by this job (a retry) is adopted; one made by anything else is
/// a conflict.
///
/// # Errors
/// [`StepError::NameTaken`] naming the image that holds the name; [`StepError::Manifest`] for
/// a manifest that fails its digest; an AWS or store error.
pub async fn run(pipeline: &Pipeline, job_id: &JobId) -> Result<RegisterOutput, StepError> {
    let job = pipeline.jobs.get(job_id).await?;
    if job.kind == JobKind::Register && job.status == JobStatus::Queued {
        pipeline
            .update(job_id, |j| {
                j.status = JobStatus::Running;
                j.progress("register", 0, "registering the image from its manifest");
            })
            .await?;
    }
    let (image_id, name) = match job.kind {
        JobKind::Register => register_existing(pipeline, &job).await?,
        _ => register_built(pipeline, &job).await?,
    };

    let image = image_id.to_string();
    pipeline
        .update(job_id, |j| {
            j.image_id = Some(image.clone());
            j.image_name.get_or_insert_with(|| name.clone());
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

/// The tags every image of the job carries: the job, the manifest, then the caller's.
fn base_tags(job: &Job, path: &ManifestPath) -> Vec<(String, String)> {
    let mut tags = vec![
        (TagKey::JOB_ID.to_owned(), job.job_id.to_string()),
        (TagKey::MANIFEST.to_owned(), path.to_string()),
    ];
    if let Some(schedule) = &job.schedule {
        tags.push((TagKey::SCHEDULE.to_owned(), schedule.clone()));
    }
    tags
}

/// The tags of an image registered from an amiforge manifest: the job, the image name, the
/// manifest, the source instance and the schedule.
fn manifest_tags(job: &Job, path: &ManifestPath, manifest: &Manifest) -> Vec<(String, String)> {
    let mut tags = base_tags(job, path);
    tags.insert(
        1,
        (
            TagKey::IMAGE_NAME.to_owned(),
            manifest.body.name.to_string(),
        ),
    );
    tags.insert(
        3,
        (
            TagKey::SOURCE_INSTANCE.to_owned(),
            manifest.body.source.instance_id.to_string(),
        ),
    );
    tags
}

/// Registers the image a manifest describes, or adopts the one this job registered, and
/// attaches the manifest's product codes.
async fn register_from(
    pipeline: &Pipeline,
    job_id: &JobId,
    manifest: &Manifest,
    tags: &[(String, String)],
) -> Result<AmiId, StepError> {
    let name = manifest.body.name.as_str();
    let register = pipeline.ec2.register(manifest, tags);
    let image_id = adopt_or(pipeline, job_id, name, register).await?;
    let codes: Vec<String> = manifest
        .body
        .product_codes
        .iter()
        .map(ToString::to_string)
        .collect();
    pipeline.ec2.attach_product_codes(&image_id, &codes).await?;
    Ok(image_id)
}

fn snapshots_of(manifest: &Manifest) -> Vec<String> {
    manifest
        .body
        .block_devices
        .iter()
        .map(|d| d.snapshot_id.to_string())
        .collect()
}

/// Registers a build job's image; the id and name.
async fn register_built(pipeline: &Pipeline, job: &Job) -> Result<(AmiId, String), StepError> {
    let job_id = &job.job_id;
    let spec = pipeline.spec_of(job)?;
    let Some(path) = job.manifest_path.as_deref() else {
        return Err(StepError::JobIncomplete {
            job_id: job_id.clone(),
            what: "manifest",
            step: "bundle",
        });
    };
    let path = ManifestPath::parse(path).map_err(|e| StepError::BadEvent(e.to_string()))?;
    let manifest = pipeline.manifests.get(&path).await?;

    let mut tags = manifest_tags(job, &path, &manifest);
    tags.extend(spec.tags.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
    let image_id = register_from(pipeline, job_id, &manifest, &tags).await?;
    // One call tags the snapshots with the image and, again, the image itself: the tags given
    // to RegisterImage are kept either way, and an adopted image gets any it missed.
    let mut resources = snapshots_of(&manifest);
    resources.push(image_id.to_string());
    tags.push((TagKey::IMAGE_ID.to_owned(), image_id.to_string()));
    pipeline.ec2.tag(&resources, &tags).await?;
    Ok((image_id, manifest.body.name.to_string()))
}

/// Registers a register job's image; the id and name.
async fn register_existing(pipeline: &Pipeline, job: &Job) -> Result<(AmiId, String), StepError> {
    let job_id = &job.job_id;
    let spec = pipeline.register_spec_of(job)?;
    let caller_tags = spec.tags.iter().map(|(k, v)| (k.to_owned(), v.to_owned()));

    match &spec.source {
        RegisterSource::Manifest(path) => {
            let manifest = pipeline.manifests.get(path).await?;
            let mut tags = manifest_tags(job, path, &manifest);
            tags.extend(caller_tags);
            let image_id = register_from(pipeline, job_id, &manifest, &tags).await?;
            tags.push((TagKey::IMAGE_ID.to_owned(), image_id.to_string()));
            pipeline.ec2.tag(&[image_id.to_string()], &tags).await?;
            // The snapshots keep the job tag of the build that made them: only the image tag
            // is added, so that this job's rollback never takes them.
            let image_tag = [(TagKey::IMAGE_ID.to_owned(), image_id.to_string())];
            pipeline
                .ec2
                .tag(&snapshots_of(&manifest), &image_tag)
                .await?;
            Ok((image_id, manifest.body.name.to_string()))
        }
        RegisterSource::Bundle {
            location,
            name,
            description,
        } => {
            let mut tags = base_tags(job, location);
            tags.push((TagKey::IMAGE_NAME.to_owned(), name.to_string()));
            tags.extend(caller_tags);
            let register =
                pipeline
                    .ec2
                    .register_bundle(location, name, description.as_deref(), &tags);
            let image_id = adopt_or(pipeline, job_id, name.as_str(), register).await?;
            tags.push((TagKey::IMAGE_ID.to_owned(), image_id.to_string()));
            pipeline.ec2.tag(&[image_id.to_string()], &tags).await?;
            Ok((image_id, name.to_string()))
        }
    }
}

/// Adopts the image of `name` this job registered before, or runs `register`; a name taken
/// between our look and the call is adopted if it turns out to be ours.
async fn adopt_or(
    pipeline: &Pipeline,
    job_id: &JobId,
    name: &str,
    register: impl std::future::Future<Output = Result<AmiId, StepError>>,
) -> Result<AmiId, StepError> {
    if let Some(id) = adopt(pipeline, job_id, name).await? {
        return Ok(id);
    }
    match register.await {
        Ok(id) => Ok(id),
        Err(StepError::Aws(err)) if err.kind == AwsErrorKind::Conflict => {
            warn!(job_id = %job_id, error = %err, "image name taken while registering");
            adopt(pipeline, job_id, name)
                .await?
                .ok_or(StepError::Aws(err))
        }
        Err(err) => Err(err),
    }
}

/// The image that already holds the name: ours to adopt when this job tagged it, else a
/// conflict.
async fn adopt(
    pipeline: &Pipeline,
    job_id: &JobId,
    name: &str,
) -> Result<Option<AmiId>, StepError> {
    let existing = pipeline.ec2.images_named(name).await?;
    let Some(image) = existing.into_iter().next() else {
        return Ok(None);
    };
    if image.tags.get(TagKey::JOB_ID).map(String::as_str) == Some(job_id.as_str()) {
        info!(job_id = %job_id, ami_id = %image.image_id, "adopting image this job registered");
        Ok(Some(image.image_id))
    } else {
        Err(StepError::NameTaken {
            name: name.to_owned(),
            image_id: image.image_id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
