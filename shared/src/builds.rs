//! Starting a build: validate the request, record the job, start the execution named after it.
//! The API and the local tools start builds through here.

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::aws::sfn::Executions;
use crate::contract::{BuildExecutionInput, RegisterExecutionInput};
use crate::domain::{
    BuildRequest, FieldError, InvalidRequest, JobId, RegisterRequest, RegisterSource,
};
use crate::error::{AwsErrorKind, StepError};
use crate::jobs::{update_job, Job, JobKind, JobStatus, JobStore, StoreError};
use crate::steps::purge::PurgeRequest;
use crate::steps::{ensure_name_free, image_name_free, Pipeline};
use crate::Config;

/// The job id a caller's idempotency key stands for: the same key always names the same job.
pub fn idempotent_job_id(key: &str) -> JobId {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    // 4 + 32 characters of the allowed set: always a valid id.
    JobId::parse(&format!("idem-{}", &digest[..32])).unwrap_or_else(|_| JobId::generate(Utc::now()))
}

/// Validates `request`, records a QUEUED job and starts the build execution named after it.
///
/// A bad request is refused before anything is recorded. With an idempotency key, a repeat of
/// the same request returns the job of the first call (starting its execution if the first
/// call could not), and never a second build.
///
/// # Errors
/// [`StepError::Invalid`] listing every bad field, or naming the idempotency key reused with
/// another request; [`StepError::NotConfigured`] when no build state machine is configured; a store
/// or AWS error.
pub async fn start_build(
    config: &Config,
    jobs: &dyn JobStore,
    executions: &Executions,
    request: &BuildRequest,
    idempotency_key: Option<&str>,
) -> Result<Job, StepError> {
    request.validate(&config.bucket, &config.prefix)?;
    let input = serde_json::to_value(BuildExecutionInput {
        request: request.clone(),
        schedule: None,
    })
    .map_err(|e| StepError::BadEvent(format!("execution input cannot be encoded: {e}")))?;
    let machine = state_machine(
        config.build_state_machine_arn.as_deref(),
        crate::config::BUILD_STATE_MACHINE_ARN,
    )?;
    start_job(
        config,
        jobs,
        executions,
        JobKind::Build,
        machine,
        request,
        input,
        idempotency_key,
    )
    .await
}

/// Refuses a build request whose image name is taken (by an image, or by another job's
/// manifest), before anything is recorded: a build that could only fail at registration would
/// first spend its snapshots. A repeat under the same idempotency key may find its own image.
///
/// # Errors
/// [`StepError::Invalid`] for a bad request; [`StepError::NameTaken`]; an AWS error.
pub async fn check_name(
    pipeline: &Pipeline,
    request: &BuildRequest,
    idempotency_key: Option<&str>,
) -> Result<(), StepError> {
    let spec = request.validate(&pipeline.config.bucket, &pipeline.config.prefix)?;
    let job = idempotency_key.map(idempotent_job_id);
    ensure_name_free(pipeline, &spec, job.as_ref()).await
}

/// Validates a request to register an existing manifest, checks that the manifest is there
/// (an amiforge manifest must also pass its digest) and that its bucket is in the pipeline's
/// region, then records a QUEUED register job and starts the build execution, which goes
/// straight to its register step.
///
/// # Errors
/// [`StepError::Invalid`] naming each bad field, a missing manifest or a bucket elsewhere;
/// [`StepError::Manifest`] for an amiforge manifest that fails its digest;
/// [`StepError::NotConfigured`] when no build state machine is configured; a store or AWS error.
pub async fn start_register(
    pipeline: &Pipeline,
    executions: &Executions,
    request: &RegisterRequest,
    idempotency_key: Option<&str>,
) -> Result<Job, StepError> {
    let spec = request.validate()?;
    let path = spec.source.path();
    let reject = |message: String| -> StepError {
        InvalidRequest(vec![FieldError::new("manifest_path", message)]).into()
    };
    let region = match pipeline.manifests.bucket_region(path.bucket()).await {
        Ok(region) => region,
        Err(StepError::Aws(err)) if err.kind == AwsErrorKind::NotFound => {
            return Err(reject(format!("bucket {} does not exist", path.bucket())));
        }
        Err(err) => return Err(err),
    };
    if let Some(ours) = pipeline.region.as_deref().filter(|ours| *ours != region) {
        return Err(reject(format!(
            "bucket {} is in {region}; images are registered in {ours}, so the manifest must \
             be in a bucket of {ours}",
            path.bucket()
        )));
    }
    let name = match &spec.source {
        RegisterSource::Manifest(path) => match pipeline.manifests.get(path).await {
            Ok(manifest) => manifest.body.name.to_string(),
            Err(StepError::ManifestNotFound(_)) => {
                return Err(reject(format!("no manifest at {path}")));
            }
            Err(err) => return Err(err),
        },
        RegisterSource::Bundle { location, name, .. } => {
            if !pipeline.manifests.exists(location).await? {
                return Err(reject(format!("no bundle manifest at {location}")));
            }
            name.to_string()
        }
    };
    let own = idempotency_key.map(idempotent_job_id);
    image_name_free(pipeline, &name, own.as_ref()).await?;

    let input = serde_json::to_value(RegisterExecutionInput {
        register: request.clone(),
    })
    .map_err(|e| StepError::BadEvent(format!("execution input cannot be encoded: {e}")))?;
    let config = &pipeline.config;
    let machine = state_machine(
        config.build_state_machine_arn.as_deref(),
        crate::config::BUILD_STATE_MACHINE_ARN,
    )?;
    start_job(
        config,
        pipeline.jobs.as_ref(),
        executions,
        JobKind::Register,
        machine,
        request,
        input,
        idempotency_key,
    )
    .await
}

/// Validates a purge request, records a QUEUED purge job and starts the purge execution.
///
/// # Errors
/// [`StepError::Invalid`] naming each bad image id; [`StepError::NotConfigured`] when no purge
/// state machine is configured; a store or AWS error.
pub async fn start_purge(
    config: &Config,
    jobs: &dyn JobStore,
    executions: &Executions,
    request: &PurgeRequest,
) -> Result<Job, StepError> {
    request.validate()?;
    let machine = state_machine(
        config.purge_state_machine_arn.as_deref(),
        crate::config::PURGE_STATE_MACHINE_ARN,
    )?;
    start_job(
        config,
        jobs,
        executions,
        JobKind::Purge,
        machine,
        request,
        serde_json::json!({}),
        None,
    )
    .await
}

fn state_machine<'a>(arn: Option<&'a str>, variable: &'static str) -> Result<&'a str, StepError> {
    arn.ok_or(StepError::NotConfigured {
        variable,
        what: "this job cannot be started",
    })
}

#[allow(clippy::too_many_arguments)] // one private helper behind the public starts
async fn start_job<R: serde::Serialize>(
    config: &Config,
    jobs: &dyn JobStore,
    executions: &Executions,
    kind: JobKind,
    state_machine: &str,
    request: &R,
    input: serde_json::Value,
    idempotency_key: Option<&str>,
) -> Result<Job, StepError> {
    let recorded = serde_json::to_value(request)
        .map_err(|e| StepError::BadEvent(format!("request cannot be recorded: {e}")))?;
    let now = Utc::now();
    let job_id = idempotency_key.map_or_else(|| JobId::generate(now), idempotent_job_id);
    let job = Job::new(job_id.clone(), kind, recorded.clone(), now);
    match jobs.create(&job).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_)) => {
            let existing = jobs.get(&job_id).await?;
            if existing.request != recorded {
                return Err(InvalidRequest(vec![FieldError::new(
                    "Idempotency-Key",
                    "this key was used with a different request; use a new key for a new build",
                )])
                .into());
            }
            if existing.execution_arn.is_some() || existing.status != JobStatus::Queued {
                return Ok(existing);
            }
        }
        Err(err) => return Err(err.into()),
    }

    let arn = executions.start(state_machine, &job_id, &input).await?;
    let recorded = update_job(jobs, &job_id, None, config.history_limit, |j| {
        j.execution_arn = Some(arn.clone());
    })
    .await;
    match recorded {
        Ok(job) => Ok(job),
        // The execution got there first and already finished the job; it recorded the ARN.
        Err(StoreError::Final { .. }) => Ok(jobs.get(&job_id).await?),
        Err(err) => Err(err.into()),
    }
}
