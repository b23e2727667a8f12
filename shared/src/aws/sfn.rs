//! Step Functions: starting builds and reading executions.

use aws_sdk_sfn::Client;

use crate::domain::JobId;
use crate::error::{AwsError, StepError};

/// An execution's state as DescribeExecution reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutionFacts {
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub status: String,
    /// The output of a finished execution.
    pub output: Option<String>,
    /// The error of a failed one.
    pub error: Option<String>,
    /// Its cause.
    pub cause: Option<String>,
}

/// Step Functions calls.
#[derive(Debug, Clone)]
pub struct Executions {
    client: Client,
}

impl Executions {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Starts an execution named after the job. Starting the same job again with the same
    /// input returns the existing execution, as Step Functions does.
    ///
    /// # Errors
    /// An AWS error; a name taken with other input is a conflict.
    pub async fn start(
        &self,
        state_machine_arn: &str,
        job_id: &JobId,
        input: &serde_json::Value,
    ) -> Result<String, StepError> {
        let output = self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(job_id.as_str())
            .input(input.to_string())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("StartExecution", e))?;
        Ok(output.execution_arn().to_owned())
    }

    /// Reads an execution.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn describe(&self, execution_arn: &str) -> Result<ExecutionFacts, StepError> {
        let output = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeExecution", e))?;
        Ok(ExecutionFacts {
            status: output.status().as_str().to_owned(),
            output: output.output().map(str::to_owned),
            error: output.error().map(str::to_owned),
            cause: output.cause().map(str::to_owned),
        })
    }
}
