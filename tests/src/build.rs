//! Running a whole build on the local stack and following it, as the demo and the end-to-end
//! tests do.

use std::time::{Duration, Instant};

use amiforge::aws::sfn::Executions;
use amiforge::builds::start_build;
use amiforge::domain::BuildRequest;
use amiforge::jobs::{DynamoJobStore, Job, JobStore};
use anyhow::{bail, Result};

use crate::Stack;

/// How a build ended.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The job record at the end.
    pub job: Job,
    /// The execution.
    pub execution_arn: String,
    /// The execution's final status: `SUCCEEDED`, `FAILED`, ...
    pub status: String,
    /// The execution's error, when it failed.
    pub error: Option<String>,
    /// Its cause.
    pub cause: Option<String>,
}

/// Starts a build of `request` through the build state machine and waits for its execution
/// to end, calling `on_change` with the job record each time it changes.
///
/// # Errors
/// When the request is refused, the stack fails, or the build does not end within `timeout`.
pub async fn run_build<F>(
    stack: &Stack,
    request: &BuildRequest,
    timeout: Duration,
    mut on_change: F,
) -> Result<BuildOutcome>
where
    F: FnMut(&Job),
{
    let clients = stack.clients();
    let store = DynamoJobStore::new(clients.dynamodb.clone(), stack.var("AMIFORGE_JOBS_TABLE")?);
    let mut config = stack.config(&stack.var("AMIFORGE_JOBS_TABLE")?)?;
    config.prefix = amiforge::domain::KeyPrefix::parse(&stack.var("AMIFORGE_PREFIX")?)?;
    let executions = Executions::new(clients.sfn.clone());

    let job = start_build(&config, &store, &executions, request, None).await?;
    on_change(&job);
    let execution_arn = job.execution_arn.clone().unwrap_or_default();
    let deadline = Instant::now() + timeout;
    let mut seen = job.version;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let job = store.get(&job.job_id).await?;
        if job.version != seen {
            seen = job.version;
            on_change(&job);
        }
        let execution = executions.describe(&execution_arn).await?;
        if execution.status != "RUNNING" {
            let job = store.get(&job.job_id).await?;
            if job.version != seen {
                on_change(&job);
            }
            return Ok(BuildOutcome {
                job,
                execution_arn,
                status: execution.status,
                error: execution.error,
                cause: execution.cause,
            });
        }
        if Instant::now() > deadline {
            bail!(
                "build {} did not end within {timeout:?}; its job says: {}",
                job.job_id,
                job.message
            );
        }
    }
}
