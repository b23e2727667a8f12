//! The snapshot Lambda: `action: claim` turns a schedule's firing into a job, `action: start`
//! takes a build's snapshot set, `action: check` follows its progress and says how long to
//! wait.

use amiforge::contract::SnapshotInput;
use amiforge::steps::{scheduled, snapshot, Pipeline};
use amiforge::StepError;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amiforge::runtime::serve(
        "snapshot",
        |pipeline: Pipeline, input: SnapshotInput| async move {
            let output = match input {
                SnapshotInput::Claim(run) => {
                    serde_json::to_value(scheduled::claim(&pipeline, *run).await?)
                }
                other => serde_json::to_value(snapshot::run(&pipeline, other).await?),
            };
            output.map_err(|e| StepError::BadEvent(format!("output cannot be encoded: {e}")))
        },
    )
    .await
}
