//! Deleting what amiforge made: a plan of the images, snapshots and manifest files to remove,
//! then its execution, item by item. The rollback of a failed build is one such purge.

use tracing::{info, warn};

use super::Pipeline;
use crate::contract::{RollbackInput, RollbackOutput, StepFailure};
use crate::domain::{JobId, ManifestPath, TagKey};
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
        let outcome = gone_is_deleted(pipeline.ec2.delete_snapshot(snapshot).await);
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

#[cfg(test)]
mod tests;
