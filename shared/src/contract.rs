//! The step contracts: the only shapes the state machines pass between steps.
//!
//! Outputs carry ids and small numbers, never large lists, so an execution stays far below the
//! 256 KB payload limit; the job record holds the rest. Times are strings, never timestamps.

use crate::domain::{
    BuildRequest, JobId, RegisterRequest, Retention, ScheduleName, ScheduleRequest,
};

/// The input of a build-image execution. The execution name is the job id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildExecutionInput {
    /// What to build.
    pub request: BuildRequest,
    /// The schedule that fired it, if any.
    #[serde(default)]
    pub schedule: Option<String>,
}

/// The input of a build-image execution that registers an existing manifest instead of
/// imaging an instance: the state machine goes straight to its register step. The API records
/// the register job before it starts the execution.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterExecutionInput {
    /// What to register.
    pub register: RegisterRequest,
}

/// The input of a build-image execution that a schedule's EventBridge rule started: the
/// rule's input template with the event's time filled in. The execution name is
/// EventBridge's, and becomes the job id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledExecutionInput {
    /// The run.
    pub scheduled: ScheduledRun,
}

/// One run of a schedule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledRun {
    /// The schedule.
    pub schedule: ScheduleName,
    /// Its definition when the rule was saved.
    pub definition: ScheduleRequest,
    /// The time of the event that fired the rule (RFC 3339), which names the run's slot.
    #[serde(default)]
    pub time: String,
}

/// The input of the snapshot function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SnapshotInput {
    /// Claim a scheduled run's slot and record its job.
    Claim(Box<ClaimScheduled>),
    /// Validate the request and start the snapshots.
    Start(Box<StartSnapshots>),
    /// Look at the snapshots' progress.
    Check(JobRef),
}

/// `action: start` of the snapshot function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StartSnapshots {
    /// The job, which is also the execution name.
    pub job_id: JobId,
    /// The execution working on the job.
    #[serde(default)]
    pub execution_arn: Option<String>,
    /// What to build.
    pub request: BuildRequest,
    /// The schedule that fired the build, if any.
    #[serde(default)]
    pub schedule: Option<String>,
}

/// `action: claim` of the snapshot function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClaimScheduled {
    /// The job, which is also the execution name.
    pub job_id: JobId,
    /// The execution.
    #[serde(default)]
    pub execution_arn: Option<String>,
    /// The run.
    pub scheduled: ScheduledRun,
    /// When the execution started, for a run whose event time is missing.
    #[serde(default)]
    pub started_at: Option<String>,
}

/// The output of a claim, which becomes the execution's state: the rest of the build reads
/// `request`, and `retention` after sharing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClaimOutput {
    /// The job.
    pub job_id: JobId,
    /// Whether another job has this run's slot already; then nothing is built.
    pub duplicate: bool,
    /// The job holding the slot, when it is another.
    pub held_by: Option<String>,
    /// The schedule.
    pub schedule: String,
    /// The build request with the name rendered.
    pub request: BuildRequest,
    /// Which images of the schedule to keep.
    pub retention: Retention,
}

/// A step input that names only the job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobRef {
    /// The job.
    pub job_id: JobId,
}

/// Whether the snapshots are done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotState {
    /// Still being taken: wait `wait_seconds` and check again.
    Pending,
    /// Every snapshot completed.
    Completed,
}

/// The output of both snapshot actions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SnapshotOutput {
    /// The job.
    pub job_id: JobId,
    /// Whether to wait more.
    pub state: SnapshotState,
    /// Size-weighted progress.
    pub percent: u8,
    /// How long the Wait state waits before the next check.
    pub wait_seconds: u64,
    /// How many snapshots the job has.
    pub snapshot_count: usize,
}

/// The output of the bundle function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BundleOutput {
    /// The job.
    pub job_id: JobId,
    /// Where the manifest was written, `s3://bucket/key`.
    pub manifest_path: String,
}

/// The output of the register function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegisterOutput {
    /// The job.
    pub job_id: JobId,
    /// The registered image.
    pub image_id: String,
}

/// The output of the set-permissions function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SetPermissionsOutput {
    /// The job.
    pub job_id: JobId,
    /// The image shared.
    pub image_id: String,
    /// Whether it is public now.
    pub public: bool,
    /// How many accounts, organizations and OUs were granted launch permission.
    pub grants: usize,
}

/// What a Catch hands on: Step Functions' `Error` and `Cause`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepFailure {
    /// The error type.
    #[serde(rename = "Error", default)]
    pub error: String,
    /// The cause: for a Lambda error, JSON with `errorType` and `errorMessage`.
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

impl StepFailure {
    /// The message for a person: the Lambda's `errorMessage` when the cause carries one.
    pub fn message(&self) -> String {
        let cause = self.cause.as_deref().unwrap_or_default();
        serde_json::from_str::<serde_json::Value>(cause)
            .ok()
            .and_then(|v| {
                v.get("errorMessage")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| {
                if cause.is_empty() {
                    self.error.clone()
                } else {
                    cause.to_owned()
                }
            })
    }
}

/// The input of the purge function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PurgeInput {
    /// Undo what a failed build created and record the failure.
    Rollback(RollbackInput),
    /// Run a purge job: delete its images with their snapshots and, if asked, files.
    Purge(JobRef),
    /// After a scheduled build: purge the schedule's images that retention lets go.
    Retain(RetainInput),
}

/// `action: retain` of the purge function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetainInput {
    /// The scheduled build that just succeeded.
    pub job_id: JobId,
    /// Which images of its schedule to keep.
    #[serde(default)]
    pub retention: Retention,
}

/// The output of a retention purge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetainOutput {
    /// The build job.
    pub job_id: JobId,
    /// Images of the schedule found.
    pub images: usize,
    /// Images deregistered.
    pub images_deregistered: usize,
    /// Snapshots deleted.
    pub snapshots_deleted: usize,
    /// Files deleted.
    pub objects_deleted: usize,
    /// Resources that could not be deleted.
    pub failed: usize,
}

/// `action: rollback` of the purge function.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RollbackInput {
    /// The failed job.
    pub job_id: JobId,
    /// Why it failed, from the Catch.
    #[serde(default)]
    pub error: Option<StepFailure>,
}

/// The output of a purge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PurgeOutput {
    /// The purge job.
    pub job_id: JobId,
    /// Images deregistered.
    pub images_deregistered: usize,
    /// Snapshots deleted.
    pub snapshots_deleted: usize,
    /// Files deleted.
    pub objects_deleted: usize,
    /// Resources that could not be deleted.
    pub failed: usize,
}

/// The output of a rollback.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RollbackOutput {
    /// The job.
    pub job_id: JobId,
    /// Images deregistered.
    pub images_deregistered: usize,
    /// Snapshots deleted.
    pub snapshots_deleted: usize,
    /// Manifest objects deleted.
    pub objects_deleted: usize,
    /// The error the job failed with, for the Fail state.
    pub error: String,
    /// The message it failed with, for the Fail state.
    pub cause: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_input_is_tagged_by_action() {
        let input: SnapshotInput =
            serde_json::from_str(r#"{"action":"check","job_id":"job-1"}"#).unwrap();
        assert_eq!(
            input,
            SnapshotInput::Check(JobRef {
                job_id: JobId::parse("job-1").unwrap()
            })
        );
        let input: SnapshotInput = serde_json::from_str(
            r#"{"action":"start","job_id":"job-1","request":{"instance_id":"i-0123abcd","name":"web"}}"#,
        )
        .unwrap();
        assert!(matches!(input, SnapshotInput::Start(s) if s.request.name == "web"));
    }

    #[test]
    fn failures_show_the_lambda_message() {
        let failure = StepFailure {
            error: "AmiForge.NotFound".into(),
            cause: Some(r#"{"errorType":"AmiForge.NotFound","errorMessage":"instance i-0123abcd does not exist"}"#.into()),
        };
        assert_eq!(failure.message(), "instance i-0123abcd does not exist");
        let bare = StepFailure {
            error: "States.Timeout".into(),
            cause: None,
        };
        assert_eq!(bare.message(), "States.Timeout");
    }
}
