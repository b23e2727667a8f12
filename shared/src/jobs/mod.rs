//! The job store: one record per build or purge, moved through its states with conditional
//! writes so that no update is lost and a final state stays final.

mod dynamo;
mod memory;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{BlockDevice, ImageAttributes, JobId, SharingRequest, SourceInstance};
use crate::error::{aws_error_type, AwsError, ErrorType};

pub use dynamo::DynamoJobStore;
pub use memory::MemoryJobStore;

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Image an instance.
    Build,
    /// Register an image from an existing manifest.
    Register,
    /// Delete images with their snapshots and files.
    Purge,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Recorded, not started.
    Queued,
    /// A step is working on it.
    Running,
    /// Done; final.
    Succeeded,
    /// Ended with an error; final.
    Failed,
}

impl JobStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
        }
    }

    /// Parses a stored or requested status.
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(value))
    }

    /// Whether nothing may move the job out of this state.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }

    /// Whether a job may move from `self` to `next`.
    pub fn may_become(self, next: Self) -> bool {
        use JobStatus::*;
        match (self, next) {
            (a, b) if a == b => !a.is_final(),
            (Queued, Running | Failed) | (Running, Succeeded | Failed) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One entry of a job's history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobEvent {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The status after the event.
    pub status: JobStatus,
    /// The step after the event.
    pub step: String,
    /// Percent done after the event.
    pub percent: u8,
    /// What happened.
    pub message: String,
}

/// The state of one snapshot of the job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeProgress {
    /// The device in the instance.
    pub device_name: String,
    /// The snapshot.
    pub snapshot_id: String,
    /// The volume's size in GiB.
    pub size_gib: i32,
    /// `pending`, `completed` or `error`.
    pub state: String,
    /// EC2's progress for it.
    pub percent: u8,
}

/// What the snapshot step captured from the instance: the manifest is written from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Capture {
    /// The instance and its account.
    pub source: SourceInstance,
    /// Boot attributes.
    pub attributes: ImageAttributes,
    /// Captured volumes and their snapshots, root first.
    pub block_devices: Vec<BlockDevice>,
    /// Devices left out, with the reason.
    pub not_captured: Vec<String>,
    /// When the snapshots were started (RFC 3339, UTC).
    pub snapshots_started_at: String,
}

/// Why a job failed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobFailure {
    /// The error type, such as `AmiForge.NotFound`.
    pub error_type: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// A job record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Job {
    /// The key, also the execution name.
    pub job_id: JobId,
    /// What the job does.
    pub kind: JobKind,
    /// Where it is.
    pub status: JobStatus,
    /// The step working on it, or the last one.
    pub step: String,
    /// Percent done.
    pub percent: u8,
    /// The latest news, for a person.
    pub message: String,
    /// The request as given.
    pub request: serde_json::Value,
    /// The instance imaged.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The image name.
    #[serde(default)]
    pub image_name: Option<String>,
    /// Snapshots the job created.
    #[serde(default)]
    pub snapshot_ids: Vec<String>,
    /// Per-snapshot progress.
    #[serde(default)]
    pub volumes: Vec<VolumeProgress>,
    /// Seconds left for the snapshots, at the observed rate.
    #[serde(default)]
    pub eta_seconds: Option<u64>,
    /// How many times the snapshots were checked.
    #[serde(default)]
    pub checks: u32,
    /// What was captured from the instance.
    #[serde(default)]
    pub capture: Option<Capture>,
    /// The manifest, `s3://bucket/key`.
    #[serde(default)]
    pub manifest_path: Option<String>,
    /// The registered image.
    #[serde(default)]
    pub image_id: Option<String>,
    /// The sharing applied to the image.
    #[serde(default)]
    pub sharing_applied: Option<SharingRequest>,
    /// The Step Functions execution.
    #[serde(default)]
    pub execution_arn: Option<String>,
    /// The schedule that started the job.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Why the job failed.
    #[serde(default)]
    pub error: Option<JobFailure>,
    /// A summary of what the job's cleanup or purge did.
    #[serde(default)]
    pub cleanup: Option<serde_json::Value>,
    /// When the job was recorded.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When it reached a final state.
    #[serde(default)]
    pub finished_at: Option<String>,
    /// The newest events, oldest first.
    #[serde(default)]
    pub history: Vec<JobEvent>,
    /// Bumped by every write; a write names the version it read.
    pub version: u64,
}

/// The time format of job records.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Job {
    /// A new queued job.
    pub fn new(
        job_id: JobId,
        kind: JobKind,
        request: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Self {
        let at = timestamp(now);
        Self {
            job_id,
            kind,
            status: JobStatus::Queued,
            step: "queued".into(),
            percent: 0,
            message: "job recorded".into(),
            request,
            instance_id: None,
            image_name: None,
            snapshot_ids: Vec::new(),
            volumes: Vec::new(),
            eta_seconds: None,
            checks: 0,
            capture: None,
            manifest_path: None,
            image_id: None,
            sharing_applied: None,
            execution_arn: None,
            schedule: None,
            error: None,
            cleanup: None,
            created_at: at.clone(),
            updated_at: at.clone(),
            finished_at: None,
            history: vec![JobEvent {
                at,
                status: JobStatus::Queued,
                step: "queued".into(),
                percent: 0,
                message: "job recorded".into(),
            }],
            version: 0,
        }
    }

    /// Sets the step, percent and message in one go.
    pub fn progress(&mut self, step: &str, percent: u8, message: impl Into<String>) {
        step.clone_into(&mut self.step);
        self.percent = percent.min(100);
        self.message = message.into();
    }

    /// Marks the job failed with a reason.
    pub fn fail(&mut self, error_type: &str, message: impl Into<String>) {
        let message = message.into();
        self.status = JobStatus::Failed;
        self.message.clone_from(&message);
        self.error = Some(JobFailure {
            error_type: error_type.to_owned(),
            message,
        });
    }
}

/// Why the store refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A job with this id exists already.
    #[error("job {0} already exists")]
    AlreadyExists(JobId),
    /// No job with this id.
    #[error("job {0} does not exist")]
    NotFound(JobId),
    /// Another writer changed the job since it was read.
    #[error("job {job_id} changed since version {version} was read")]
    Conflict {
        /// The job.
        job_id: JobId,
        /// The version the writer had read.
        version: u64,
    },
    /// The job is final and cannot change.
    #[error("job {job_id} is {status}, a final state")]
    Final {
        /// The job.
        job_id: JobId,
        /// Its final status.
        status: JobStatus,
    },
    /// The status change is not allowed.
    #[error("job {job_id} cannot move from {from} to {to}")]
    Transition {
        /// The job.
        job_id: JobId,
        /// Its status.
        from: JobStatus,
        /// The status asked for.
        to: JobStatus,
    },
    /// A stored record cannot be read.
    #[error("job {job_id} is stored in a form this version cannot read")]
    Corrupt {
        /// The job.
        job_id: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// A pagination token that this store did not hand out.
    #[error("the pagination token is not valid")]
    BadToken,
    /// DynamoDB failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl StoreError {
    /// The error type a step reports for this failure.
    pub fn error_type(&self) -> ErrorType {
        match self {
            Self::AlreadyExists(_)
            | Self::Conflict { .. }
            | Self::Final { .. }
            | Self::Transition { .. } => ErrorType::Conflict,
            Self::NotFound(_) => ErrorType::NotFound,
            Self::BadToken => ErrorType::InvalidInput,
            Self::Corrupt { .. } => ErrorType::Failed,
            Self::Aws(err) => aws_error_type(err.kind),
        }
    }
}

/// Which jobs to list. Newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this schedule.
    pub schedule: Option<String>,
    /// Page size, 1 to 100.
    pub limit: u32,
    /// The token of the page to read, from the previous page.
    pub next: Option<String>,
}

/// One page of jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPage {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// The token of the next page, when there is one.
    pub next: Option<String>,
}

/// Storage of job records.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Records a new job; never overwrites.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] when the id is taken.
    async fn create(&self, job: &Job) -> Result<(), StoreError>;

    /// Reads a job with a strongly consistent read.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when there is no such job.
    async fn get(&self, id: &JobId) -> Result<Job, StoreError>;

    /// Writes `job` if the stored version is still `read_version`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another write came first.
    async fn replace(&self, job: &Job, read_version: u64) -> Result<(), StoreError>;

    /// Lists jobs, newest first.
    ///
    /// # Errors
    /// [`StoreError::BadToken`] for a token not from this store.
    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError>;

    /// The jobs that built or registered an image.
    ///
    /// # Errors
    /// A store failure.
    async fn find_by_image(&self, image_id: &str) -> Result<Vec<Job>, StoreError>;

    /// Claims `slot` (one run of a schedule) for `job`: it succeeds when the slot is free, is
    /// held by `job` already, or is held by `replacing` (a holder that failed). Slots are not
    /// jobs: no listing or lookup returns them.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for a contested write, or a store failure.
    async fn claim_slot(
        &self,
        slot: &str,
        job: &JobId,
        replacing: Option<&JobId>,
    ) -> Result<SlotClaim, StoreError>;
}

/// The answer to a slot claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotClaim {
    /// The slot is the caller's.
    Claimed,
    /// Another job holds it.
    HeldBy(JobId),
}

/// How many times a write that lost to another is tried again on fresh data.
const WRITE_ATTEMPTS: usize = 5;

/// Reads, changes and writes a job, with the transition rules enforced.
///
/// With `expected_version`, the write succeeds only if the job is still at that version;
/// otherwise it is [`StoreError::Conflict`]. Without, a write that loses to another is retried
/// on the fresh record, so both changes survive. A status or step change is added to the
/// history, which keeps the newest `history_limit` events.
///
/// # Errors
/// [`StoreError::Final`] for a job already final, [`StoreError::Transition`] for a status
/// change the rules forbid, [`StoreError::Conflict`] as above, or a store failure.
pub async fn update_job<F>(
    store: &dyn JobStore,
    id: &JobId,
    expected_version: Option<u64>,
    history_limit: usize,
    change: F,
) -> Result<Job, StoreError>
where
    F: Fn(&mut Job) + Send + Sync,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = store.get(id).await?;
        if let Some(version) = expected_version {
            if version != current.version {
                return Err(StoreError::Conflict {
                    job_id: id.clone(),
                    version,
                });
            }
        }
        let next = apply(&current, &change, history_limit, Utc::now())?;
        match store.replace(&next, current.version).await {
            Ok(()) => return Ok(next),
            Err(StoreError::Conflict { .. })
                if expected_version.is_none() && attempt < WRITE_ATTEMPTS =>
            {
                tracing::warn!(job_id = %id, attempt, "job changed under us, trying again");
            }
            Err(err) => return Err(err),
        }
    }
}

/// The job after `change`, checked against the transition rules, with its history and
/// version moved on.
fn apply<F>(
    current: &Job,
    change: &F,
    history_limit: usize,
    now: DateTime<Utc>,
) -> Result<Job, StoreError>
where
    F: Fn(&mut Job),
{
    let mut next = current.clone();
    change(&mut next);
    if current.status.is_final() {
        // A final job takes notes about what happened after (cleanup, purge) and nothing else.
        let mut core = next.clone();
        core.cleanup.clone_from(&current.cleanup);
        if core != *current {
            return Err(StoreError::Final {
                job_id: current.job_id.clone(),
                status: current.status,
            });
        }
        next.updated_at = timestamp(now);
        next.version = current.version + 1;
        return Ok(next);
    }
    if !current.status.may_become(next.status) {
        return Err(StoreError::Transition {
            job_id: current.job_id.clone(),
            from: current.status,
            to: next.status,
        });
    }
    next.job_id = current.job_id.clone();
    next.created_at.clone_from(&current.created_at);
    let at = timestamp(now);
    if next.status.is_final() {
        next.finished_at = Some(at.clone());
    }
    if next.status != current.status || next.step != current.step || next.message != current.message
    {
        next.history.push(JobEvent {
            at: at.clone(),
            status: next.status,
            step: next.step.clone(),
            percent: next.percent,
            message: next.message.clone(),
        });
        let excess = next.history.len().saturating_sub(history_limit.max(1));
        next.history.drain(..excess);
    }
    next.updated_at = at;
    next.version = current.version + 1;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job::new(
            JobId::parse("job-1").unwrap(),
            JobKind::Build,
            serde_json::json!({}),
            Utc::now(),
        )
    }

    #[test]
    fn statuses_move_forward_only() {
        use JobStatus::*;
        assert!(Queued.may_become(Running));
        assert!(Queued.may_become(Failed));
        assert!(Running.may_become(Running));
        assert!(Running.may_become(Succeeded));
        assert!(!Queued.may_become(Succeeded));
        assert!(!Running.may_become(Queued));
        assert!(!Succeeded.may_become(Succeeded));
        assert!(!Failed.may_become(Running));
    }

    #[test]
    fn a_final_job_refuses_every_change() {
        let mut failed = job();
        failed.status = JobStatus::Failed;
        let err = apply(&failed, &|j: &mut Job| j.percent = 5, 10, Utc::now()).unwrap_err();
        assert!(matches!(
            err,
            StoreError::Final {
                status: JobStatus::Failed,
                ..
            }
        ));
        let err = apply(
            &failed,
            &|j: &mut Job| j.status = JobStatus::Running,
            10,
            Utc::now(),
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::Final { .. }));
    }

    #[test]
    fn a_final_job_still_takes_cleanup_notes() {
        let mut failed = job();
        failed.status = JobStatus::Failed;
        let noted = apply(
            &failed,
            &|j: &mut Job| j.cleanup = Some(serde_json::json!({"snapshots_deleted": 2})),
            10,
            Utc::now(),
        )
        .unwrap();
        assert_eq!(noted.status, JobStatus::Failed);
        assert_eq!(noted.version, failed.version + 1);
        assert!(noted.cleanup.is_some());
    }

    #[test]
    fn history_keeps_the_newest_events() {
        let mut current = job();
        for i in 0..30u8 {
            current = apply(
                &current,
                &|j: &mut Job| {
                    j.status = JobStatus::Running;
                    j.progress("check", i, format!("check {i}"));
                },
                5,
                Utc::now(),
            )
            .unwrap();
        }
        assert_eq!(current.history.len(), 5);
        assert_eq!(current.history[4].message, "check 29");
        assert_eq!(current.history[0].message, "check 25");
        assert_eq!(current.version, 30);
    }

    #[test]
    fn finishing_stamps_the_time() {
        let running = apply(
            &job(),
            &|j: &mut Job| j.status = JobStatus::Running,
            10,
            Utc::now(),
        )
        .unwrap();
        let done = apply(
            &running,
            &|j: &mut Job| j.fail("AmiForge.Failed", "boom"),
            10,
            Utc::now(),
        )
        .unwrap();
        assert!(done.finished_at.is_some());
        assert_eq!(done.error.as_ref().unwrap().message, "boom");
    }
}
