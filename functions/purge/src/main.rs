//! The purge Lambda: `action: purge` runs a purge job (images with their snapshots and, if
//! asked, files); `action: rollback` records a failed job and deletes what it created;
//! `action: retain` purges a schedule's images beyond its retention rule.

use amiforge::contract::PurgeInput;
use amiforge::steps::{purge, scheduled, Pipeline};
use amiforge::StepError;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amiforge::runtime::serve(
        "purge",
        |pipeline: Pipeline, input: PurgeInput| async move {
            let output = match input {
                PurgeInput::Rollback(rollback) => {
                    serde_json::to_value(purge::rollback(&pipeline, rollback).await?)
                }
                PurgeInput::Purge(job) => {
                    serde_json::to_value(purge::purge(&pipeline, &job.job_id).await?)
                }
                PurgeInput::Retain(retain) => {
                    serde_json::to_value(scheduled::retain(&pipeline, retain).await?)
                }
            };
            output.map_err(|e| StepError::BadEvent(format!("output cannot be encoded: {e}")))
        },
    )
    .await
}
