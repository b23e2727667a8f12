//! Serving a step as a Lambda function: one place for the start-up every step binary shares.

use std::future::Future;

use lambda_runtime::{service_fn, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::error;

use crate::aws::Clients;
use crate::error::StepError;
use crate::steps::Pipeline;
use crate::Config;

/// Sets up logging, reads the configuration, builds the clients once, and serves `step` until
/// the runtime stops. A step error is logged once here and reaches Step Functions with its
/// fixed error type.
///
/// # Errors
/// A configuration error at start-up (naming the variable), or a runtime failure.
pub async fn serve<I, O, F, Fut>(name: &'static str, step: F) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    F: Fn(Pipeline, I) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<O, StepError>> + Send + 'static,
{
    crate::telemetry::init();
    let config = Config::from_env()?;
    let clients = Clients::from_env().await;
    let pipeline = Pipeline::new(config, &clients);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<I>| {
        let pipeline = pipeline.clone();
        let step = step.clone();
        async move {
            let request_id = event.context.request_id.clone();
            // Boxed: a step's future is deep enough to overflow the compiler's layout limit
            // once nested in the runtime's.
            Box::pin(step(pipeline, event.payload)).await.inspect_err(|err| {
                error!(step = name, request_id, error_type = %err.error_type(), error = %err, "step failed");
            })
        }
    }))
    .await
}
