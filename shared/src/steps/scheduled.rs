//! The two steps only scheduled builds take: `claim`, which turns a rule's firing into a job
//! (once per slot), and `retain`, which purges the schedule's images that its retention rule
//! lets go once the new image is shared.

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::purge::{execute_plans, plan_purge, PurgeRequest};
use super::{now, Pipeline};
use crate::contract::{ClaimOutput, ClaimScheduled, RetainInput, RetainOutput};
use crate::domain::{AmiId, Retained, TagKey};
use crate::error::StepError;
use crate::jobs::{Job, JobKind, JobStatus, SlotClaim, StoreError};

/// Renders the run's image name from the event time, claims the run's slot (the schedule and
/// that name) and records the job. A second firing for the same slot, a retry by EventBridge
/// or a repeated event, finds the slot taken by a job that has not failed and builds nothing.
/// Claiming again for the same execution returns the same answer.
///
/// # Errors
/// [`StepError::Invalid`] when the definition no longer renders a valid name; a store error.
pub async fn claim(pipeline: &Pipeline, input: ClaimScheduled) -> Result<ClaimOutput, StepError> {
    let run = &input.scheduled;
    let at = run_time(&run.time, input.started_at.as_deref());
    let request = run
        .definition
        .build_request(&run.schedule, at)
        .map_err(|e| StepError::Invalid(crate::domain::InvalidRequest(vec![e])))?;
    let slot = format!("{}#{}", run.schedule, request.name);
    let job_id = &input.job_id;

    let held_by = match pipeline.jobs.claim_slot(&slot, job_id, None).await? {
        SlotClaim::Claimed => None,
        SlotClaim::HeldBy(holder) => match pipeline.jobs.get(&holder).await {
            Ok(job) if job.status == JobStatus::Failed => {
                // A failed run left nothing behind: this run may have the slot.
                match pipeline
                    .jobs
                    .claim_slot(&slot, job_id, Some(&holder))
                    .await?
                {
                    SlotClaim::Claimed => None,
                    SlotClaim::HeldBy(other) => Some(other),
                }
            }
            Ok(_) | Err(StoreError::NotFound(_)) => Some(holder),
            Err(err) => return Err(err.into()),
        },
    };
    let output = ClaimOutput {
        job_id: job_id.clone(),
        duplicate: held_by.is_some(),
        held_by: held_by.as_ref().map(ToString::to_string),
        schedule: run.schedule.to_string(),
        request: request.clone(),
        retention: run.definition.retention,
    };
    if let Some(holder) = held_by {
        warn!(job_id = %job_id, schedule = %run.schedule, holder = %holder, "slot already built; nothing to do");
        return Ok(output);
    }

    let recorded = serde_json::to_value(&request)
        .map_err(|e| StepError::BadEvent(format!("request cannot be recorded: {e}")))?;
    let mut job = Job::new(job_id.clone(), JobKind::Build, recorded, now());
    job.execution_arn.clone_from(&input.execution_arn);
    job.schedule = Some(run.schedule.to_string());
    job.image_name = Some(request.name.clone());
    match pipeline.jobs.create(&job).await {
        Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
        Err(err) => return Err(err.into()),
    }
    info!(job_id = %job_id, schedule = %run.schedule, name = %request.name, "scheduled run claimed");
    Ok(output)
}

/// The time that names a run: the event's, else the execution's start, else now.
fn run_time(event_time: &str, started_at: Option<&str>) -> DateTime<Utc> {
    [Some(event_time), started_at]
        .into_iter()
        .flatten()
        .find_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(now, |t| t.with_timezone(&Utc))
}

/// Purges the images of the job's schedule that its retention rule lets go, with their
/// snapshots and manifest folders, never the image this job built. Images amiforge did not
/// make are left alone even when they carry the schedule's tag. The result is noted on the
/// job.
///
/// # Errors
/// [`StepError::JobNotFound`]; an AWS error while planning.
pub async fn retain(pipeline: &Pipeline, input: RetainInput) -> Result<RetainOutput, StepError> {
    let job_id = input.job_id;
    let job = match pipeline.jobs.get(&job_id).await {
        Ok(job) => job,
        Err(StoreError::NotFound(_)) => return Err(StepError::JobNotFound(job_id)),
        Err(err) => return Err(err.into()),
    };
    let mut output = RetainOutput {
        job_id: job_id.clone(),
        images: 0,
        images_deregistered: 0,
        snapshots_deleted: 0,
        objects_deleted: 0,
        failed: 0,
    };
    let Some(schedule) = job.schedule.as_deref() else {
        return Ok(output);
    };
    let images = pipeline
        .ec2
        .images_tagged(TagKey::SCHEDULE, schedule)
        .await?;
    output.images = images.len();
    let retained: Vec<Retained> = images
        .iter()
        .map(|i| Retained {
            image_id: i.image_id.to_string(),
            name: i.name.clone().unwrap_or_default(),
            created: i.created.unwrap_or_else(now),
        })
        .collect();
    let surplus: Vec<String> = input
        .retention
        .surplus(&retained, now())
        .into_iter()
        .filter(|id| job.image_id.as_deref() != Some(id.as_str()))
        .collect();
    if surplus.is_empty() {
        info!(job_id = %job_id, schedule, images = output.images, "retention: nothing to purge");
        return Ok(output);
    }

    let ids: Vec<AmiId> = surplus
        .iter()
        .filter_map(|i| AmiId::parse(i).ok())
        .collect();
    let request = PurgeRequest {
        image_ids: surplus,
        remove_s3_files: true,
        dry_run: false,
        force: false,
    };
    let plans = plan_purge(pipeline, &ids, &request).await?;
    let report = execute_plans(pipeline, &plans, &job_id).await;

    output.images_deregistered = report.deleted("image");
    output.snapshots_deleted = report.deleted("snapshot");
    output.objects_deleted = report.deleted("object");
    output.failed = report.failures().count();
    let note = serde_json::json!({"retention": report});
    if let Err(err) = pipeline
        .update(&job_id, |j| j.cleanup = Some(note.clone()))
        .await
    {
        warn!(job_id = %job_id, error = %err, "retention result not noted on the job");
    }
    info!(
        job_id = %job_id,
        schedule,
        images = output.images_deregistered,
        snapshots = output.snapshots_deleted,
        objects = output.objects_deleted,
        failed = output.failed,
        "retention applied"
    );
    Ok(output)
}

#[cfg(test)]
mod tests;
