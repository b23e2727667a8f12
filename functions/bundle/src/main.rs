//! The bundle Lambda: writes a build's image manifest to S3.

use amiforge::contract::JobRef;
use amiforge::steps::{bundle, Pipeline};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amiforge::runtime::serve("bundle", |pipeline: Pipeline, input: JobRef| async move {
        bundle::run(&pipeline, &input.job_id).await
    })
    .await
}
