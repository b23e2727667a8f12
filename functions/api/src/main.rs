//! The HTTP API Lambda: starts builds, reports jobs, lists, shows, shares and deletes images,
//! and manages schedules. API Gateway's HTTP API (IAM authorization) sends it requests
//! through lambda_http.

mod error;
mod routes;

use amiforge::aws::events::Rules;
use amiforge::aws::sfn::Executions;
use amiforge::aws::Clients;
use amiforge::steps::Pipeline;
use amiforge::Config;
use lambda_http::{service_fn, Request};

use crate::routes::App;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    amiforge::telemetry::init();
    let config = Config::from_env()?;
    let clients = Clients::from_env().await;
    let app = App {
        executions: Executions::new(clients.sfn.clone()),
        rules: Rules::new(clients.events.clone()),
        pipeline: Pipeline::new(config, &clients),
    };
    lambda_http::run(service_fn(|request: Request| {
        let app = &app;
        async move { Ok::<_, std::convert::Infallible>(routes::handle(app, request).await) }
    }))
    .await
}
