//! The pipeline steps: what each Lambda does, in domain terms. Handlers decode an event, call
//! one function here, and encode its result.

pub mod bundle;
pub mod permissions;
pub mod purge;
pub mod register;
pub mod scheduled;
pub mod snapshot;

use std::sync::Arc;

use chrono::Utc;

use crate::aws::ec2::Ec2;
use crate::aws::kms::Kms;
use crate::aws::s3::Manifests;
use crate::aws::Clients;
use crate::config::Config;
use crate::domain::{
    BuildRequest, BuildSpec, JobId, ManifestPath, RegisterRequest, RegisterSpec, Sharing, TagKey,
};
use crate::error::StepError;
use crate::jobs::{update_job, DynamoJobStore, Job, JobKind, JobStore};

/// Overall percent at the end of each phase: snapshots take most of a build's time.
pub mod percent {
    /// Snapshots complete.
    pub const SNAPSHOTS_DONE: u8 = 80;
    /// Manifest written.
    pub const BUNDLED: u8 = 85;
    /// Image registered.
    pub const REGISTERED: u8 = 95;
    /// Shared; the job is done.
    pub const DONE: u8 = 100;
}

/// Everything a step works with, built once per process.
#[derive(Clone)]
pub struct Pipeline {
    /// Settings.
    pub config: Config,
    /// Job records.
    pub jobs: Arc<dyn JobStore>,
    /// EC2.
    pub ec2: Ec2,
    /// Manifests in S3.
    pub manifests: Manifests,
    /// KMS.
    pub kms: Kms,
    /// The region the pipeline runs in, written into manifests.
    pub region: Option<String>,
}

impl Pipeline {
    /// A pipeline over real AWS clients and the DynamoDB job store.
    pub fn new(config: Config, clients: &Clients) -> Self {
        let jobs = Arc::new(DynamoJobStore::new(
            clients.dynamodb.clone(),
            config.jobs_table.clone(),
        ));
        Self {
            config,
            jobs,
            ec2: Ec2::new(clients.ec2.clone()),
            manifests: Manifests::new(clients.s3.clone()),
            kms: Kms::new(clients.kms.clone()),
            region: clients.region.clone(),
        }
    }

    /// Changes a job, retrying on fresh data when another write came first.
    ///
    /// # Errors
    /// A store error, such as the job being final already.
    pub async fn update<F>(&self, id: &JobId, change: F) -> Result<Job, StepError>
    where
        F: Fn(&mut Job) + Send + Sync,
    {
        Ok(update_job(
            self.jobs.as_ref(),
            id,
            None,
            self.config.history_limit,
            change,
        )
        .await?)
    }

    /// The build a job's stored request describes, validated again.
    ///
    /// # Errors
    /// [`StepError::BadEvent`] when the stored request is not a build request;
    /// [`StepError::Invalid`] when it breaks a rule.
    pub fn spec_of(&self, job: &Job) -> Result<BuildSpec, StepError> {
        let request: BuildRequest = serde_json::from_value(job.request.clone()).map_err(|e| {
            StepError::BadEvent(format!("job {} holds no build request: {e}", job.job_id))
        })?;
        Ok(request.validate(&self.config.bucket, &self.config.prefix)?)
    }

    /// What a register job's stored request names, validated again.
    ///
    /// # Errors
    /// [`StepError::BadEvent`] when the stored request is not a register request;
    /// [`StepError::Invalid`] when it breaks a rule.
    pub fn register_spec_of(&self, job: &Job) -> Result<RegisterSpec, StepError> {
        let request: RegisterRequest =
            serde_json::from_value(job.request.clone()).map_err(|e| {
                StepError::BadEvent(format!("job {} holds no register request: {e}", job.job_id))
            })?;
        Ok(request.validate()?)
    }

    /// Who may launch the image a build or register job makes.
    ///
    /// # Errors
    /// See [`Pipeline::spec_of`] and [`Pipeline::register_spec_of`].
    pub fn sharing_of(&self, job: &Job) -> Result<Sharing, StepError> {
        match job.kind {
            JobKind::Register => Ok(self.register_spec_of(job)?.sharing),
            _ => Ok(self.spec_of(job)?.sharing),
        }
    }
}

/// Refuses a build whose image name is taken: by an image another job (or no job) made, or by
/// another job's manifest at the path this build would write. Checked before any snapshot is
/// taken, so a taken name costs nothing; `job` is the build's own job, whose earlier image or
/// manifest (a retry) does not count.
///
/// # Errors
/// [`StepError::NameTaken`] naming what holds the name; an AWS error.
pub async fn ensure_name_free(
    pipeline: &Pipeline,
    spec: &BuildSpec,
    job: Option<&JobId>,
) -> Result<(), StepError> {
    let name = spec.name.as_str();
    image_name_free(pipeline, name, job).await?;
    let path = ManifestPath::new(spec.bucket.clone(), spec.prefix.manifest_key(&spec.name));
    if pipeline.manifests.exists(&path).await? {
        if let Ok(existing) = pipeline.manifests.get(&path).await {
            if Some(&existing.body.job_id) != job {
                return Err(StepError::NameTaken {
                    name: name.to_owned(),
                    image_id: format!("the manifest {path} of job {}", existing.body.job_id),
                });
            }
        }
    }
    Ok(())
}

/// Refuses a name an image already holds, unless the image is `job`'s.
///
/// # Errors
/// [`StepError::NameTaken`] naming the image; an AWS error.
pub async fn image_name_free(
    pipeline: &Pipeline,
    name: &str,
    job: Option<&JobId>,
) -> Result<(), StepError> {
    let images = pipeline.ec2.images_named(name).await?;
    let held = images.into_iter().find(|i| {
        job.is_none_or(|j| i.tags.get(TagKey::JOB_ID).map(String::as_str) != Some(j.as_str()))
    });
    match held {
        Some(image) => Err(StepError::NameTaken {
            name: name.to_owned(),
            image_id: image.image_id.to_string(),
        }),
        None => Ok(()),
    }
}

/// Now, as job records write it.
pub(crate) fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}

#[cfg(test)]
pub(crate) mod testing {
    //! A pipeline over mocked SDK clients and the in-memory job store.

    use std::sync::Arc;

    use aws_smithy_mocks::Rule;

    use super::Pipeline;
    use crate::aws::{ec2::Ec2, kms::Kms, mock, s3::Manifests};
    use crate::config::Config;
    use crate::domain::{BucketName, KeyPrefix, PollBounds};
    use crate::jobs::MemoryJobStore;

    pub(crate) fn config() -> Config {
        Config {
            jobs_table: "jobs".into(),
            bucket: BucketName::parse("amiforge-test").unwrap(),
            prefix: KeyPrefix::parse("images").unwrap(),
            poll: PollBounds {
                min_seconds: 5,
                max_seconds: 300,
            },
            history_limit: 20,
            build_state_machine_arn: None,
            purge_state_machine_arn: None,
            followed_accounts: Vec::new(),
            schedule_role_arn: None,
            schedule_rule_prefix: "amiforge-".into(),
        }
    }

    pub(crate) fn pipeline(
        ec2: &[&Rule],
        s3: &[&Rule],
        kms: &[&Rule],
    ) -> (Pipeline, Arc<MemoryJobStore>) {
        let store = Arc::new(MemoryJobStore::default());
        // Answers for what a test does not set up itself: no image of the name, no manifest
        // at the path. A test's own rules come first and win.
        let (no_images, no_object) = (mock::no_images(), mock::no_object());
        let ec2: Vec<&Rule> = ec2.iter().copied().chain([&no_images]).collect();
        let s3: Vec<&Rule> = s3.iter().copied().chain([&no_object]).collect();
        let pipeline = Pipeline {
            config: config(),
            jobs: store.clone(),
            ec2: Ec2::new(mock::ec2(&ec2)),
            manifests: Manifests::new(mock::s3(&s3)),
            kms: Kms::new(mock::kms(kms)),
            region: Some("us-east-1".into()),
        };
        (pipeline, store)
    }
}
