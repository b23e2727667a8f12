//! The set-permissions Lambda: shares a build's image as requested and completes the job.

use amiforge::contract::JobRef;
use amiforge::steps::{permissions, Pipeline};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amiforge::runtime::serve(
        "set-permissions",
        |pipeline: Pipeline, input: JobRef| async move {
            permissions::run(&pipeline, &input.job_id).await
        },
    )
    .await
}
