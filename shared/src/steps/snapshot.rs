//! The snapshot step: validate the request against the live instance and start a
//! crash-consistent snapshot set (`start`), then follow its progress (`check`).

use std::time::Duration;

use tracing::{info, warn};

use super::{now, percent, Pipeline};
use crate::aws::ec2::{AttachedVolume, InstanceFacts, SnapshotFacts};
use crate::contract::{JobRef, SnapshotInput, SnapshotOutput, SnapshotState, StartSnapshots};
use crate::domain::{
    next_wait, BlockDevice, BuildSpec, DeviceSelection, JobId, Progress, SnapshotSample,
    SourceInstance, TagKey,
};
use crate::error::StepError;
use crate::jobs::{timestamp, Capture, Job, JobKind, JobStatus, StoreError, VolumeProgress};

/// How long the step waits for an instance to stop when asked to snapshot it stopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs either action.
///
/// # Errors
/// See [`start`] and [`check`].
pub async fn run(pipeline: &Pipeline, input: SnapshotInput) -> Result<SnapshotOutput, StepError> {
    match input {
        SnapshotInput::Start(start_input) => start(pipeline, *start_input).await,
        SnapshotInput::Check(JobRef { job_id }) => check(pipeline, &job_id).await,
        SnapshotInput::Claim(run) => Err(StepError::BadEvent(format!(
            "action claim (job {}) is served by the scheduled step, not the snapshot step",
            run.job_id
        ))),
    }
}

/// Claims the job, validates the request and the instance, and starts the snapshots.
///
/// Nothing is created before every check passed. A retry after snapshots were started adopts
/// them (found through the job record or the job tag) instead of taking a second set.
///
/// # Errors
/// [`StepError::Invalid`] for a bad request, [`StepError::InstanceNotFound`] or
/// [`StepError::InstanceNotReady`] for an instance that cannot be imaged,
/// [`StepError::NothingToCapture`] when the device selection leaves no volume, or an AWS or
/// store error.
pub async fn start(
    pipeline: &Pipeline,
    input: StartSnapshots,
) -> Result<SnapshotOutput, StepError> {
    let job = claim(pipeline, &input).await?;
    let spec = input
        .request
        .validate(&pipeline.config.bucket, &pipeline.config.prefix)?;
    if !job.snapshot_ids.is_empty() && job.capture.is_some() {
        info!(job_id = %job.job_id, "snapshots already started");
        return check(pipeline, &job.job_id).await;
    }

    super::ensure_name_free(pipeline, &spec, Some(&job.job_id)).await?;
    let instance = pipeline.ec2.describe_instance(&spec.instance_id).await?;
    if !matches!(instance.state.as_str(), "running" | "stopped") {
        return Err(StepError::InstanceNotReady {
            id: spec.instance_id.clone(),
            state: instance.state,
        });
    }
    let selected: Vec<&AttachedVolume> = instance
        .volumes
        .iter()
        .filter(|v| spec.devices.includes(&v.device_name))
        .collect();
    if selected.is_empty() {
        return Err(StepError::NothingToCapture(spec.instance_id.clone()));
    }
    let volume_ids: Vec<_> = selected.iter().map(|v| v.volume_id.clone()).collect();
    let volumes = pipeline.ec2.describe_volumes(&volume_ids).await?;

    let job_id = job.job_id.clone();
    let instance_id = spec.instance_id.to_string();
    let image_name = spec.name.to_string();
    pipeline
        .update(&job_id, |j| {
            j.status = JobStatus::Running;
            j.instance_id = Some(instance_id.clone());
            j.image_name = Some(image_name.clone());
            j.progress(
                "snapshot",
                0,
                format!("snapshotting {} volume(s) of {instance_id}", selected.len()),
            );
        })
        .await?;

    let taken = take_snapshots(pipeline, &job_id, &spec, &instance).await?;
    let snapshots = drop_unselected(pipeline, &job_id, taken, &selected).await?;
    let started_at = snapshots
        .iter()
        .filter_map(|s| s.started_at)
        .min()
        .unwrap_or_else(now);
    let block_devices: Vec<BlockDevice> = selected
        .iter()
        .filter_map(|v| {
            let snapshot = snapshots
                .iter()
                .find(|s| s.volume_id.as_deref() == Some(v.volume_id.as_str()))?;
            let facts = volumes.get(&v.volume_id);
            Some(BlockDevice {
                device_name: v.device_name.clone(),
                volume_id: v.volume_id.clone(),
                snapshot_id: snapshot.snapshot_id.clone(),
                volume_size_gib: facts.map_or(snapshot.size_gib, |f| f.size_gib),
                volume_type: facts.map_or_else(|| "gp3".to_owned(), |f| f.volume_type.clone()),
                iops: facts.and_then(|f| f.iops),
                throughput: facts.and_then(|f| f.throughput),
                encrypted: facts.is_some_and(|f| f.encrypted),
                kms_key_id: facts.and_then(|f| f.kms_key_id.clone()),
                delete_on_termination: v.delete_on_termination,
            })
        })
        .collect();
    let not_captured = not_captured(&instance, &spec.devices);
    let capture = Capture {
        source: SourceInstance {
            instance_id: spec.instance_id.clone(),
            account_id: instance.account_id.clone(),
            region: pipeline.region.clone(),
        },
        attributes: instance.attributes.clone(),
        block_devices,
        not_captured,
        snapshots_started_at: timestamp(started_at),
    };

    let snapshot_ids: Vec<String> = snapshots
        .iter()
        .map(|s| s.snapshot_id.to_string())
        .collect();
    let count = snapshot_ids.len();
    let volume_progress = progress_of(&capture, &snapshots);
    pipeline
        .update(&job_id, |j| {
            j.snapshot_ids.clone_from(&snapshot_ids);
            j.capture = Some(capture.clone());
            j.volumes.clone_from(&volume_progress);
            j.progress("snapshot", 0, format!("{count} snapshot(s) started"));
        })
        .await?;
    info!(job_id = %job_id, snapshots = count, "snapshots started");
    Ok(SnapshotOutput {
        job_id,
        state: SnapshotState::Pending,
        percent: 0,
        wait_seconds: pipeline.config.poll.min_seconds,
        snapshot_count: count,
    })
}

/// The job record for this execution: the one the API recorded, or a new one for a build
/// that a schedule started. Claiming twice returns the same record.
async fn claim(pipeline: &Pipeline, input: &StartSnapshots) -> Result<Job, StepError> {
    let request = serde_json::to_value(&input.request)
        .map_err(|e| StepError::BadEvent(format!("request cannot be recorded: {e}")))?;
    let mut job = Job::new(input.job_id.clone(), JobKind::Build, request, now());
    job.execution_arn.clone_from(&input.execution_arn);
    job.schedule.clone_from(&input.schedule);
    match pipeline.jobs.create(&job).await {
        Ok(()) => Ok(job),
        Err(StoreError::AlreadyExists(_)) => {
            let stored = pipeline.jobs.get(&input.job_id).await?;
            if stored.execution_arn.is_none() && input.execution_arn.is_some() {
                let arn = input.execution_arn.clone();
                return pipeline
                    .update(&input.job_id, |j| j.execution_arn.clone_from(&arn))
                    .await;
            }
            Ok(stored)
        }
        Err(err) => Err(err.into()),
    }
}

/// Takes the snapshot set, or adopts one this job already took (a retry after a crash between
/// the call and its record). Stops the instance around the call when the request wants a
/// consistent image rather than a crash-consistent one.
async fn take_snapshots(
    pipeline: &Pipeline,
    job_id: &JobId,
    spec: &BuildSpec,
    instance: &InstanceFacts,
) -> Result<Vec<SnapshotFacts>, StepError> {
    let existing = pipeline
        .ec2
        .snapshots_tagged(TagKey::JOB_ID, job_id.as_str())
        .await?;
    if !existing.is_empty() {
        info!(job_id = %job_id, snapshots = existing.len(), "adopting snapshots of this job");
        return Ok(existing);
    }

    let root = &instance.attributes.root_device_name;
    let exclude_boot = !spec.devices.includes(root);
    let exclude_volumes: Vec<_> = instance
        .volumes
        .iter()
        .filter(|v| &v.device_name != root && !spec.devices.includes(&v.device_name))
        .map(|v| v.volume_id.clone())
        .collect();
    let mut tags = vec![
        (TagKey::JOB_ID.to_owned(), job_id.to_string()),
        (TagKey::IMAGE_NAME.to_owned(), spec.name.to_string()),
        (
            TagKey::SOURCE_INSTANCE.to_owned(),
            spec.instance_id.to_string(),
        ),
    ];
    tags.extend(spec.tags.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
    let description = format!("amiforge {job_id}: {} of {}", spec.name, spec.instance_id);

    let stop = !spec.no_reboot && instance.state == "running";
    if stop {
        info!(job_id = %job_id, instance_id = %spec.instance_id, "stopping instance for a consistent image");
        pipeline
            .ec2
            .stop_and_wait(&spec.instance_id, STOP_TIMEOUT)
            .await?;
    }
    let taken = pipeline
        .ec2
        .create_snapshots(
            &spec.instance_id,
            exclude_boot,
            &exclude_volumes,
            &description,
            &tags,
        )
        .await;
    if stop {
        // The snapshots hold their point in time once created: the instance may run again.
        pipeline.ec2.start(&spec.instance_id).await?;
    }
    taken
}

/// Keeps the snapshots of selected volumes and deletes any other one the call took, so an
/// excluded volume never leaves a snapshot behind.
async fn drop_unselected(
    pipeline: &Pipeline,
    job_id: &JobId,
    taken: Vec<SnapshotFacts>,
    selected: &[&AttachedVolume],
) -> Result<Vec<SnapshotFacts>, StepError> {
    let (keep, extra): (Vec<_>, Vec<_>) = taken.into_iter().partition(|s| {
        selected
            .iter()
            .any(|v| s.volume_id.as_deref() == Some(v.volume_id.as_str()))
    });
    for snapshot in extra {
        warn!(job_id = %job_id, snapshot_id = %snapshot.snapshot_id, "deleting snapshot of an excluded volume");
        pipeline
            .ec2
            .delete_snapshot(snapshot.snapshot_id.as_str())
            .await
            .map_err(StepError::Aws)?;
    }
    Ok(keep)
}

/// Devices the image will not have, with the reason.
fn not_captured(instance: &InstanceFacts, devices: &DeviceSelection) -> Vec<String> {
    let excluded = instance
        .volumes
        .iter()
        .filter(|v| !devices.includes(&v.device_name))
        .map(|v| format!("{} ({}): excluded by request", v.device_name, v.volume_id));
    let stores = instance
        .instance_store_devices
        .iter()
        .map(|d| format!("{d}: instance store, not captured"));
    excluded.chain(stores).collect()
}

fn progress_of(capture: &Capture, snapshots: &[SnapshotFacts]) -> Vec<VolumeProgress> {
    capture
        .block_devices
        .iter()
        .map(|d| {
            let snapshot = snapshots.iter().find(|s| s.snapshot_id == d.snapshot_id);
            VolumeProgress {
                device_name: d.device_name.clone(),
                snapshot_id: d.snapshot_id.to_string(),
                size_gib: d.volume_size_gib,
                state: snapshot.map_or_else(|| "missing".to_owned(), |s| s.state.clone()),
                percent: snapshot.map_or(0, |s| {
                    if s.state == "completed" {
                        100
                    } else {
                        s.percent
                    }
                }),
            }
        })
        .collect()
}

/// Looks at the job's snapshots, records progress, per-volume state and an ETA, and says
/// whether they are done or how long to wait.
///
/// # Errors
/// [`StepError::SnapshotFailed`] when a snapshot is in `error` or has vanished;
/// [`StepError::JobIncomplete`] when the job has no snapshots; an AWS or store error.
pub async fn check(pipeline: &Pipeline, job_id: &JobId) -> Result<SnapshotOutput, StepError> {
    let job = pipeline.jobs.get(job_id).await?;
    let Some(capture) = job.capture.clone() else {
        return Err(StepError::JobIncomplete {
            job_id: job_id.clone(),
            what: "snapshots",
            step: "snapshot start",
        });
    };

    let snapshots = pipeline.ec2.describe_snapshots(&job.snapshot_ids).await?;
    if let Some(failed) = snapshots.iter().find(|s| s.state == "error") {
        return Err(StepError::SnapshotFailed {
            snapshot_id: failed.snapshot_id.to_string(),
            reason: failed
                .state_message
                .clone()
                .unwrap_or_else(|| "EC2 reported the snapshot in error".into()),
        });
    }
    if let Some(missing) = job.snapshot_ids.iter().find(|id| {
        !snapshots
            .iter()
            .any(|s| s.snapshot_id.as_str() == id.as_str())
    }) {
        return Err(StepError::SnapshotFailed {
            snapshot_id: missing.clone(),
            reason: "the snapshot no longer exists".into(),
        });
    }
    let samples: Vec<SnapshotSample> = snapshots
        .iter()
        .map(|s| SnapshotSample {
            size_gib: u64::try_from(s.size_gib).unwrap_or(0),
            percent: s.percent,
            completed: s.state == "completed",
            started_at: s.started_at,
        })
        .collect();
    let progress = Progress::of(&samples, now());
    let done = progress.percent == 100;
    let wait = next_wait(progress.eta_seconds, job.checks, pipeline.config.poll);

    let volumes = progress_of(&capture, &snapshots);
    let completed = volumes.iter().filter(|v| v.state == "completed").count();
    let overall = scale(progress.percent, percent::SNAPSHOTS_DONE);
    let message = if done {
        format!("{} snapshot(s) completed", volumes.len())
    } else {
        let eta = progress.eta_seconds.map_or_else(String::new, |s| {
            format!(", about {} left", human_duration(s))
        });
        format!(
            "snapshots {}% ({completed} of {} completed){eta}",
            progress.percent,
            volumes.len()
        )
    };
    pipeline
        .update(job_id, |j| {
            j.volumes.clone_from(&volumes);
            j.eta_seconds = progress.eta_seconds;
            j.checks += 1;
            j.progress("snapshot", overall, message.clone());
        })
        .await?;
    info!(job_id = %job_id, percent = progress.percent, done, wait_seconds = wait, "snapshots checked");
    Ok(SnapshotOutput {
        job_id: job_id.clone(),
        state: if done {
            SnapshotState::Completed
        } else {
            SnapshotState::Pending
        },
        percent: progress.percent,
        wait_seconds: if done { 0 } else { wait },
        snapshot_count: volumes.len(),
    })
}

/// `part` percent of a phase that ends at `end` percent of the job.
fn scale(part: u8, end: u8) -> u8 {
    u8::try_from(u16::from(part.min(100)) * u16::from(end) / 100).unwrap_or(end)
}

/// A short duration for people: `45 s`, `12 min`, `1 h 5 min`.
pub fn human_duration(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds.div_ceil(60)),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

#[cfg(test)]
mod tests;
