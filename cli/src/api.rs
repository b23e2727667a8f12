//! The API's answers as the CLI reads them for table output.
//!
//! Every type is lenient: missing fields take defaults and unknown ones are ignored, so the API
//! can grow without breaking older clients. JSON output never goes through these types; it
//! prints what the API sent.

use serde::{Deserialize, Deserializer};

/// Statuses after which a job never changes.
pub const SUCCEEDED: &str = "SUCCEEDED";
/// See [`SUCCEEDED`].
pub const FAILED: &str = "FAILED";

/// The answer to `POST /images`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Accepted {
    pub job_id: String,
    pub status: String,
    pub status_url: String,
    pub execution_arn: Option<String>,
}

/// A build job.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Job {
    pub job_id: String,
    pub kind: String,
    pub status: String,
    pub step: String,
    pub percent: f64,
    pub message: String,
    pub eta_seconds: Option<f64>,
    pub instance_id: Option<String>,
    pub image_name: Option<String>,
    pub image_id: Option<String>,
    pub manifest_path: Option<String>,
    pub snapshot_ids: Vec<String>,
    pub volumes: Vec<Volume>,
    pub execution_arn: Option<String>,
    pub schedule: Option<String>,
    pub sharing_applied: Option<Sharing>,
    pub error: Option<JobError>,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    pub history: Vec<JobEvent>,
    /// A purge job's report: `{"items": [PurgeItem, ...]}`.
    pub cleanup: Option<PurgeReport>,
}

impl Job {
    /// Whether the job has ended and will not change again.
    pub fn is_final(&self) -> bool {
        self.status == SUCCEEDED || self.status == FAILED || self.finished_at.is_some()
    }

    /// Whether the job ended with its image built.
    pub fn succeeded(&self) -> bool {
        self.status == SUCCEEDED
    }
}

/// Progress of one volume's snapshot.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Volume {
    pub device_name: String,
    pub snapshot_id: String,
    pub size_gib: f64,
    pub state: String,
    pub percent: f64,
}

/// Why a job failed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobError {
    pub error_type: String,
    pub message: String,
}

/// One entry of a job's history.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobEvent {
    pub at: String,
    pub status: String,
    pub step: String,
    pub percent: f64,
    pub message: String,
}

/// A sharing state, as a job records the one it applied.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Sharing {
    pub public: bool,
    pub accounts: Vec<String>,
    pub organizations: Vec<String>,
    pub organizational_units: Vec<String>,
    pub create_volume_permission: bool,
}

/// A page of `GET /jobs`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct JobPage {
    pub jobs: Vec<Job>,
    pub next: Option<String>,
}

/// An image in `GET /images`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageSummary {
    pub image_id: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub name: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub owner_id: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub creation_date: String,
    pub state: String,
    pub public: bool,
    #[serde(deserialize_with = "null_as_empty")]
    pub architecture: String,
    pub product_codes: Vec<String>,
    pub manifest_path: Option<String>,
    pub job_id: Option<String>,
}

/// A page of `GET /images`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImagePage {
    pub images: Vec<ImageSummary>,
    pub next: Option<String>,
}

/// `GET /images/{id}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageDetail {
    pub image_id: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub name: String,
    pub description: Option<String>,
    #[serde(deserialize_with = "null_as_empty")]
    pub owner_id: String,
    #[serde(deserialize_with = "null_as_empty")]
    pub creation_date: String,
    pub state: String,
    pub public: bool,
    #[serde(deserialize_with = "null_as_empty")]
    pub architecture: String,
    pub root_device_name: Option<String>,
    pub product_codes: Vec<String>,
    pub launch_permissions: Launchers,
    pub snapshots: Vec<ImageSnapshot>,
    pub manifest_path: Option<String>,
    pub job_id: Option<String>,
    pub job: Option<Job>,
}

/// Who may launch an image; also what a permissions change added or removed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Launchers {
    pub public: bool,
    pub accounts: Vec<String>,
    pub organizations: Vec<String>,
    pub organizational_units: Vec<String>,
}

impl Launchers {
    /// Whether nobody is named.
    pub fn is_empty(&self) -> bool {
        !self.public
            && self.accounts.is_empty()
            && self.organizations.is_empty()
            && self.organizational_units.is_empty()
    }
}

/// A snapshot behind an image.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImageSnapshot {
    pub snapshot_id: String,
    pub device_name: String,
    pub size_gib: f64,
    pub create_volume_accounts: Vec<String>,
    pub create_volume_public: bool,
}

/// The answer to `PUT /images/{id}/permissions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PermissionsChange {
    pub image_id: String,
    pub added: Launchers,
    pub removed: Launchers,
    pub launch_permissions: Launchers,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_with_missing_and_unknown_fields_still_reads() {
        let job: Job = serde_json::from_str(
            r#"{"job_id":"j1","status":"RUNNING","percent":40,"new_field":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(job.job_id, "j1");
        assert!((job.percent - 40.0).abs() < f64::EPSILON);
        assert!(job.volumes.is_empty());
        assert!(!job.is_final());
    }

    #[test]
    fn a_job_is_final_once_succeeded_failed_or_finished() {
        let job = |status: &str, finished: Option<&str>| Job {
            status: status.into(),
            finished_at: finished.map(Into::into),
            ..Job::default()
        };
        assert!(job("SUCCEEDED", None).is_final());
        assert!(job("FAILED", None).is_final());
        assert!(job("CANCELLED", Some("2026-01-01T00:00:00Z")).is_final());
        assert!(!job("QUEUED", None).is_final());
    }
}

/// One resource of a purge and what happened to it (or will, in a plan).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PurgeItem {
    pub kind: String,
    pub id: String,
    /// `deleted`, `kept` or `failed`.
    pub outcome: String,
    pub reason: Option<String>,
}

/// What a purge job did.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PurgeReport {
    pub items: Vec<PurgeItem>,
}

/// What a purge of one image would delete and keep.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PurgePlan {
    pub images: Vec<String>,
    pub snapshots: Vec<String>,
    pub objects: Vec<String>,
    pub kept: Vec<PurgeItem>,
}

/// The dry-run plan of one image.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ImagePlan {
    pub image_id: String,
    pub made_by_amiforge: bool,
    pub job_id: Option<String>,
    pub manifest_path: Option<String>,
    pub refused: Option<String>,
    pub plan: PurgePlan,
}

/// The answer to a dry-run delete.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeletePlan {
    pub images: Vec<ImagePlan>,
}

/// EC2 leaves some image fields out (an image registered without an architecture, say); the
/// API sends them as `null`, shown as an empty cell.
fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}
