//! Starting a build: validate the request, record the job, start the execution named after it.
//! The API and the local tools start builds through here.

use chrono::Utc;

use crate::aws::sfn::Executions;
use crate::contract::BuildExecutionInput;
use crate::domain::{BuildRequest, JobId};
use crate::error::StepError;
use crate::jobs::{update_job, Job, JobKind, JobStore, StoreError};
use crate::Config;

/// Validates `request`, records a QUEUED job and starts the build execution named after it.
///
/// A bad request is refused before anything is recorded. The execution ARN is written to the
/// job once the execution runs.
///
/// # Errors
/// [`StepError::Invalid`] listing every bad field; [`StepError::BadEvent`] when no build state
/// machine is configured; a store or AWS error.
pub async fn start_build(
    config: &Config,
    jobs: &dyn JobStore,
    executions: &Executions,
    request: &BuildRequest,
) -> Result<Job, StepError> {
    request.validate(&config.bucket, &config.prefix)?;
    let Some(state_machine) = config.build_state_machine_arn.as_deref() else {
        return Err(StepError::BadEvent(format!(
            "{} is not set, so builds cannot be started",
            crate::config::BUILD_STATE_MACHINE_ARN
        )));
    };

    let now = Utc::now();
    let job_id = JobId::generate(now);
    let recorded = serde_json::to_value(request)
        .map_err(|e| StepError::BadEvent(format!("request cannot be recorded: {e}")))?;
    let job = Job::new(job_id.clone(), JobKind::Build, recorded, now);
    jobs.create(&job).await?;

    let input = serde_json::to_value(BuildExecutionInput {
        request: request.clone(),
        schedule: None,
    })
    .map_err(|e| StepError::BadEvent(format!("execution input cannot be encoded: {e}")))?;
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
