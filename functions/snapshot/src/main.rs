//! The snapshot Lambda: `action: start` takes a build's snapshot set, `action: check` follows
//! its progress and says how long to wait.

use amiforge::contract::SnapshotInput;
use amiforge::steps::{snapshot, Pipeline};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amiforge::runtime::serve("snapshot", |pipeline: Pipeline, input: SnapshotInput| async move {
        snapshot::run(&pipeline, input).await
    })
    .await
}
