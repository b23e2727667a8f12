//! Deleting what amiforge made: a plan of the images, snapshots and manifest files to remove,
//! then its execution, item by item. The rollback of a failed build is one such purge.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tracing::{info, warn};

use super::Pipeline;
use crate::contract::{PurgeOutput, RollbackInput, RollbackOutput, StepFailure};
use crate::domain::{AmiId, Checker, InvalidRequest, JobId, ManifestPath, TagKey};
use crate::error::{AwsError, AwsErrorKind, ErrorType, StepError};
use crate::jobs::{Job, JobStatus, StoreError};

/// What a purge will delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PurgePlan {
    /// Images to deregister.
    pub images: Vec<String>,
    /// Snapshots to delete.
    pub snapshots: Vec<String>,
    /// Manifest objects to delete.
    pub objects: Vec<String>,
    /// Resources left alone, with the reason.
    pub kept: Vec<Item>,
}

/// What happened to one resource.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum Outcome {
    /// Removed, or already gone.
    Deleted,
    /// Left in place on purpose.
    Kept(String),
    /// Could not be removed.
    Failed(String),
}

/// One resource of a purge and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Item {
    /// `image`, `snapshot` or `object`.
    pub kind: String,
    /// Its id or path.
    pub id: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The outcome of every planned resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PurgeReport {
    /// Every resource, in the order handled.
    pub items: Vec<Item>,
}

impl PurgeReport {
    /// How many resources of a kind were deleted.
    pub fn deleted(&self, kind: &str) -> usize {
        self.items
            .iter()
            .filter(|i| i.kind == kind && i.outcome == Outcome::Deleted)
            .count()
    }

    /// The resources that could not be removed.
    pub fn failures(&self) -> impl Iterator<Item = &Item> {
        self.items
            .iter()
            .filter(|i| matches!(i.outcome, Outcome::Failed(_)))
    }
}

/// Deregisters, then deletes snapshots, then objects. One resource's failure is reported and
/// does not stop the others.
pub async fn execute(pipeline: &Pipeline, plan: &PurgePlan) -> PurgeReport {
    let mut report = PurgeReport {
        items: plan.kept.clone(),
    };
    for image in &plan.images {
        let outcome = gone_is_deleted(pipeline.ec2.deregister(image).await);
        report.items.push(Item {
            kind: "image".into(),
            id: image.clone(),
            outcome,
        });
    }
    for snapshot in &plan.snapshots {
        let outcome = gone_is_deleted(delete_snapshot(pipeline, snapshot).await);
        report.items.push(Item {
            kind: "snapshot".into(),
            id: snapshot.clone(),
            outcome,
        });
    }
    for object in &plan.objects {
        let outcome = match ManifestPath::parse(object) {
            Ok(path) => match pipeline.manifests.delete(&path).await {
                Ok(()) => Outcome::Deleted,
                Err(err) => Outcome::Failed(err.to_string()),
            },
            Err(err) => Outcome::Failed(err.to_string()),
        };
        report.items.push(Item {
            kind: "object".into(),
            id: object.clone(),
            outcome,
        });
    }
    report
}

/// How long to wait before each new try of a snapshot that EC2 still counts as used by the
/// image just deregistered.
const IN_USE_RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

async fn delete_snapshot(pipeline: &Pipeline, snapshot: &str) -> Result<(), AwsError> {
    let mut delays = IN_USE_RETRY_DELAYS.iter();
    loop {
        match pipeline.ec2.delete_snapshot(snapshot).await {
            Err(err) if err.is_code("InvalidSnapshot.InUse") => match delays.next() {
                Some(delay) => {
                    warn!(
                        snapshot_id = snapshot,
                        "snapshot still in use, trying again"
                    );
                    tokio::time::sleep(*delay).await;
                }
                None => return Err(err),
            },
            other => return other,
        }
    }
}

fn gone_is_deleted(result: Result<(), AwsError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Deleted,
        Err(err) if err.kind == AwsErrorKind::NotFound => Outcome::Deleted,
        Err(err) => Outcome::Failed(err.to_string()),
    }
}

/// Everything a job created: the resources in its record and those carrying its tag, so a
/// crash between a create call and its record leaves nothing behind. The manifest is planned
/// only while it is this job's.
///
/// # Errors
/// An AWS error while looking.
pub async fn plan_job(
    pipeline: &Pipeline,
    job_id: &JobId,
    job: Option<&Job>,
) -> Result<PurgePlan, StepError> {
    let mut plan = PurgePlan::default();
    let tagged_images = pipeline
        .ec2
        .images_tagged(TagKey::JOB_ID, job_id.as_str())
        .await?;
    plan.images.extend(job.and_then(|j| j.image_id.clone()));
    plan.images
        .extend(tagged_images.into_iter().map(|i| i.image_id.to_string()));
    let tagged_snapshots = pipeline
        .ec2
        .snapshots_tagged(TagKey::JOB_ID, job_id.as_str())
        .await?;
    plan.snapshots
        .extend(job.map(|j| j.snapshot_ids.clone()).unwrap_or_default());
    plan.snapshots.extend(
        tagged_snapshots
            .into_iter()
            .map(|s| s.snapshot_id.to_string()),
    );
    plan.images.sort();
    plan.images.dedup();
    plan.snapshots.sort();
    plan.snapshots.dedup();

    if let Some(path) = job.and_then(|j| j.manifest_path.as_deref()) {
        let parsed = ManifestPath::parse(path).map_err(|e| StepError::BadEvent(e.to_string()))?;
        match pipeline.manifests.get(&parsed).await {
            Ok(manifest) if manifest.body.job_id == *job_id => plan.objects.push(path.to_owned()),
            Ok(manifest) => plan.kept.push(Item {
                kind: "object".into(),
                id: path.to_owned(),
                outcome: Outcome::Kept(format!("written by job {}", manifest.body.job_id)),
            }),
            Err(StepError::ManifestNotFound(_)) => {}
            Err(err) => plan.kept.push(Item {
                kind: "object".into(),
                id: path.to_owned(),
                outcome: Outcome::Kept(format!("not readable as this job's manifest: {err}")),
            }),
        }
    }
    Ok(plan)
}

/// Records a failed build as FAILED and deletes exactly what it created. A job that already
/// SUCCEEDED is left alone.
///
/// The failure is recorded first, so the job is final even if some deletion has to wait (a
/// snapshot still pending): that is reported as retryable, and running the rollback again
/// finishes the cleanup.
///
/// # Errors
/// [`ErrorType::Retryable`] (through an AWS error) when some resource could not be deleted
/// yet; an AWS or store error while planning.
pub async fn rollback(
    pipeline: &Pipeline,
    input: RollbackInput,
) -> Result<RollbackOutput, StepError> {
    let job_id = input.job_id;
    let failure = input.error.unwrap_or_else(|| StepFailure {
        error: ErrorType::Failed.as_str().into(),
        cause: None,
    });
    let message = failure.message();
    let job = record_failure(pipeline, &job_id, &failure.error, &message).await?;
    if let Some(done) = job.as_ref().filter(|j| j.status == JobStatus::Succeeded) {
        // The build finished before the failure (a step timing out after its last write): its
        // image is the user's now and nothing is undone.
        warn!(job_id = %job_id, error = %failure.error, "failure after the job succeeded; keeping its image");
        return Ok(RollbackOutput {
            job_id,
            images_deregistered: 0,
            snapshots_deleted: 0,
            objects_deleted: 0,
            error: failure.error,
            cause: format!(
                "{message} (the job had already succeeded: {})",
                done.message
            ),
        });
    }

    let plan = plan_job(pipeline, &job_id, job.as_ref()).await?;
    let report = execute(pipeline, &plan).await;
    let summary = serde_json::to_value(&report).unwrap_or_default();
    if job.is_some() {
        pipeline
            .update(&job_id, |j| j.cleanup = Some(summary.clone()))
            .await?;
    }
    let failures: Vec<String> = report
        .failures()
        .map(|i| format!("{} {}", i.kind, i.id))
        .collect();
    if !failures.is_empty() {
        warn!(job_id = %job_id, failures = failures.len(), "cleanup incomplete");
        return Err(StepError::CleanupIncomplete {
            job_id,
            remaining: failures.join(", "),
        });
    }
    info!(
        job_id = %job_id,
        images = report.deleted("image"),
        snapshots = report.deleted("snapshot"),
        objects = report.deleted("object"),
        "failed job cleaned up"
    );
    Ok(RollbackOutput {
        job_id,
        images_deregistered: report.deleted("image"),
        snapshots_deleted: report.deleted("snapshot"),
        objects_deleted: report.deleted("object"),
        error: failure.error,
        cause: message,
    })
}

/// Marks the job FAILED unless it is final already. A job that was never recorded is left
/// unrecorded: the cleanup by tag still runs.
async fn record_failure(
    pipeline: &Pipeline,
    job_id: &JobId,
    error: &str,
    message: &str,
) -> Result<Option<Job>, StepError> {
    let job = match pipeline.jobs.get(job_id).await {
        Ok(job) => job,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    if job.status.is_final() {
        return Ok(Some(job));
    }
    let step = job.step.clone();
    let updated = pipeline
        .update(job_id, |j| {
            j.fail(error, message);
            j.status = JobStatus::Failed;
            j.step.clone_from(&step);
        })
        .await?;
    Ok(Some(updated))
}

/// What a user asks to delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PurgeRequest {
    /// The images.
    pub image_ids: Vec<String>,
    /// Also delete the files under each image's manifest folder.
    pub remove_s3_files: bool,
    /// Only say what would be deleted.
    pub dry_run: bool,
    /// Also delete images amiforge did not make.
    pub force: bool,
}

/// Most images one purge takes.
pub const MAX_PURGE_IMAGES: usize = 50;

impl PurgeRequest {
    /// The image ids, checked and without repeats.
    ///
    /// # Errors
    /// [`InvalidRequest`] naming each bad id, or an empty or too long list.
    pub fn validate(&self) -> Result<Vec<AmiId>, InvalidRequest> {
        let mut checker = Checker::default();
        if self.image_ids.is_empty() {
            checker.reject("image_ids", "give at least one image id");
        }
        if self.image_ids.len() > MAX_PURGE_IMAGES {
            checker.reject(
                "image_ids",
                format!(
                    "at most {MAX_PURGE_IMAGES} images per purge, got {}",
                    self.image_ids.len()
                ),
            );
        }
        let mut ids: Vec<AmiId> = self
            .image_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| checker.check(&format!("image_ids[{i}]"), AmiId::parse(id)))
            .collect();
        checker.finish()?;
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

/// The plan for one image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImagePlan {
    /// The image.
    pub image_id: String,
    /// Whether amiforge made it (it carries a job tag).
    pub made_by_amiforge: bool,
    /// The job that made it.
    pub job_id: Option<String>,
    /// Its manifest.
    pub manifest_path: Option<String>,
    /// Why nothing of it will be deleted, if so.
    pub refused: Option<String>,
    /// What will be deleted and kept.
    pub plan: PurgePlan,
}

/// Plans the deletion of images: each one's EBS snapshots (from its mappings and from the
/// image tag amiforge puts on them), except those another image still uses; its manifest
/// folder's files when asked; nothing of an image amiforge did not make unless forced.
///
/// # Errors
/// An AWS error while looking.
pub async fn plan_purge(
    pipeline: &Pipeline,
    ids: &[AmiId],
    request: &PurgeRequest,
) -> Result<Vec<ImagePlan>, StepError> {
    let users = pipeline.ec2.own_images_by_snapshot().await?;
    let purged: BTreeSet<&str> = ids.iter().map(AmiId::as_str).collect();
    let mut plans = Vec::new();
    for id in ids {
        let Some(image) = pipeline.ec2.describe_image(id).await? else {
            plans.push(ImagePlan {
                image_id: id.to_string(),
                made_by_amiforge: false,
                job_id: None,
                manifest_path: None,
                refused: Some("the image does not exist".into()),
                plan: PurgePlan::default(),
            });
            continue;
        };
        let job_id = image.tags.get(TagKey::JOB_ID).cloned();
        let manifest_path = image.tags.get(TagKey::MANIFEST).cloned();
        let made_by_amiforge = job_id.is_some();
        let mut plan = PurgePlan {
            images: vec![id.to_string()],
            ..PurgePlan::default()
        };
        let refused = (!made_by_amiforge && !request.force).then(|| {
            "not made by amiforge (no amiforge:job-id tag); set force to delete it anyway"
                .to_owned()
        });
        if refused.is_none() {
            plan_snapshots(pipeline, id, &image.snapshots, &users, &purged, &mut plan).await?;
            if request.remove_s3_files {
                plan_files(pipeline, manifest_path.as_deref(), &mut plan).await?;
            }
        } else {
            plan.images.clear();
        }
        plans.push(ImagePlan {
            image_id: id.to_string(),
            made_by_amiforge,
            job_id,
            manifest_path,
            refused,
            plan,
        });
    }
    Ok(plans)
}

async fn plan_snapshots(
    pipeline: &Pipeline,
    id: &AmiId,
    mapped: &[(String, String, i32)],
    users: &HashMap<String, Vec<String>>,
    purged: &BTreeSet<&str>,
    plan: &mut PurgePlan,
) -> Result<(), StepError> {
    let tagged = pipeline
        .ec2
        .snapshots_tagged(TagKey::IMAGE_ID, id.as_str())
        .await?;
    let mut snapshots: BTreeSet<String> = mapped.iter().map(|(_, s, _)| s.clone()).collect();
    snapshots.extend(tagged.into_iter().map(|s| s.snapshot_id.to_string()));
    for snapshot in snapshots {
        let others: Vec<&String> = users
            .get(&snapshot)
            .into_iter()
            .flatten()
            .filter(|user| !purged.contains(user.as_str()))
            .collect();
        match others.first() {
            Some(other) => plan.kept.push(Item {
                kind: "snapshot".into(),
                id: snapshot,
                outcome: Outcome::Kept(format!("still used by image {other}")),
            }),
            None => plan.snapshots.push(snapshot),
        }
    }
    Ok(())
}

/// Every file in the image's manifest folder, and only there.
async fn plan_files(
    pipeline: &Pipeline,
    manifest: Option<&str>,
    plan: &mut PurgePlan,
) -> Result<(), StepError> {
    let Some(path) = manifest.and_then(|m| ManifestPath::parse(m).ok()) else {
        return Ok(());
    };
    let dir = path.dir();
    if dir.is_empty() {
        // A manifest at the bucket's top has no folder of its own: only it goes.
        plan.objects.push(path.to_string());
        return Ok(());
    }
    let files = pipeline.manifests.list_dir(path.bucket(), &dir).await?;
    plan.objects
        .extend(files.into_iter().map(|f| f.to_string()));
    Ok(())
}

/// Runs a purge job: plans, deletes, records the result on the purge job and marks each
/// deleted image's build job as purged.
///
/// # Errors
/// [`StepError::JobNotFound`]; a store or AWS error while planning.
pub async fn purge(pipeline: &Pipeline, job_id: &JobId) -> Result<PurgeOutput, StepError> {
    let job = match pipeline.jobs.get(job_id).await {
        Ok(job) => job,
        Err(StoreError::NotFound(_)) => return Err(StepError::JobNotFound(job_id.clone())),
        Err(err) => return Err(err.into()),
    };
    let request: PurgeRequest = serde_json::from_value(job.request.clone())
        .map_err(|e| StepError::BadEvent(format!("job {job_id} holds no purge request: {e}")))?;
    let ids = request.validate()?;
    pipeline
        .update(job_id, |j| {
            j.status = JobStatus::Running;
            j.progress(
                "plan",
                10,
                format!("planning the deletion of {} image(s)", ids.len()),
            );
        })
        .await?;

    let plans = plan_purge(pipeline, &ids, &request).await?;
    let report = execute_plans(pipeline, &plans, job_id).await;

    let failures = report.failures().count();
    let summary = serde_json::to_value(&report).unwrap_or_default();
    let message = format!(
        "{} image(s) deregistered, {} snapshot(s) and {} file(s) deleted, {} kept, {} failed",
        report.deleted("image"),
        report.deleted("snapshot"),
        report.deleted("object"),
        report
            .items
            .iter()
            .filter(|i| matches!(i.outcome, Outcome::Kept(_)))
            .count(),
        failures
    );
    pipeline
        .update(job_id, |j| {
            j.cleanup = Some(summary.clone());
            if failures == 0 {
                j.status = JobStatus::Succeeded;
                j.progress("done", 100, message.clone());
            } else {
                j.fail(ErrorType::Failed.as_str(), message.clone());
            }
        })
        .await?;
    info!(job_id = %job_id, failures, "purge done");
    Ok(PurgeOutput {
        job_id: job_id.clone(),
        images_deregistered: report.deleted("image"),
        snapshots_deleted: report.deleted("snapshot"),
        objects_deleted: report.deleted("object"),
        failed: failures,
    })
}

/// Carries out image plans one by one: a refused image is reported as kept, and the build job
/// of each image deregistered is marked as purged by `purge_job`.
pub async fn execute_plans(
    pipeline: &Pipeline,
    plans: &[ImagePlan],
    purge_job: &JobId,
) -> PurgeReport {
    let mut report = PurgeReport::default();
    for plan in plans {
        if let Some(reason) = &plan.refused {
            report.items.push(Item {
                kind: "image".into(),
                id: plan.image_id.clone(),
                outcome: Outcome::Kept(reason.clone()),
            });
            continue;
        }
        let done = execute(pipeline, &plan.plan).await;
        let deregistered = done
            .items
            .iter()
            .any(|i| i.kind == "image" && i.outcome == Outcome::Deleted);
        report.items.extend(done.items);
        if let (true, Some(build)) = (deregistered, plan.job_id.as_deref()) {
            mark_purged(pipeline, build, purge_job).await;
        }
    }
    report
}

/// Notes on a build job that its image was purged, and by which job. A job that cannot take
/// the note is only logged: the purge itself is done.
async fn mark_purged(pipeline: &Pipeline, build: &str, purge_job: &JobId) {
    let Ok(build_id) = JobId::parse(build) else {
        return;
    };
    let note = serde_json::json!({
        "purged_at": crate::jobs::timestamp(chrono::Utc::now()),
        "purge_job": purge_job,
    });
    if let Err(err) = pipeline
        .update(&build_id, |j| j.cleanup = Some(note.clone()))
        .await
    {
        warn!(job_id = %build_id, error = %err, "build job not marked as purged");
    }
}

#[cfg(test)]
mod tests;
