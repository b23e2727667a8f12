//! The register Lambda: registers a build's image from its manifest, once.

use amiforge::contract::JobRef;
use amiforge::steps::{register, Pipeline};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amiforge::runtime::serve("register", |pipeline: Pipeline, input: JobRef| async move {
        register::run(&pipeline, &input.job_id).await
    })
    .await
}
