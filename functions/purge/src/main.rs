//! The purge Lambda: `action: rollback` records a failed build and deletes what it created.

use amiforge::contract::PurgeInput;
use amiforge::steps::{purge, Pipeline};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amiforge::runtime::serve(
        "purge",
        |pipeline: Pipeline, input: PurgeInput| async move {
            match input {
                PurgeInput::Rollback(rollback) => purge::rollback(&pipeline, rollback).await,
            }
        },
    )
    .await
}
