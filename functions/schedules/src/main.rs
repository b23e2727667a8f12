//! The schedules Lambda: a CloudFormation custom resource that makes the schedules declared in
//! the deployment template (its `StaticSchedules` parameter) exist, with the same code and so
//! the same EventBridge rules as `PUT /schedules/{name}`. Deleting the resource, or dropping a
//! schedule from the parameter, deletes its rule.

use std::collections::BTreeMap;

use amiforge::aws::events::Rules;
use amiforge::aws::Clients;
use amiforge::domain::ScheduleRequest;
use amiforge::{schedules, Config, StepError};
use aws_lambda_events::event::cloudformation::{
    CloudFormationCustomResourceRequest as Request, CloudFormationCustomResourceResponse,
    CloudFormationCustomResourceResponseStatus as Status,
};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use tracing::{error, info};

/// Everything the handler works with, built once per process.
struct Handler {
    config: Config,
    rules: Rules,
    http: reqwest::Client,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    amiforge::telemetry::init();
    let config = Config::from_env()?;
    let clients = Clients::from_env().await;
    let handler = Handler {
        config,
        rules: Rules::new(clients.events.clone()),
        http: reqwest::Client::new(),
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<Request>| {
        let handler = &handler;
        // Boxed: the future is deep enough to overflow the compiler's layout limit once nested
        // in the runtime's.
        async move { Box::pin(handler.handle(event.payload)).await }
    }))
    .await
}

impl Handler {
    /// Applies the request and reports the outcome to CloudFormation. Only a failure to report
    /// is an error of the function: CloudFormation would otherwise wait for an answer.
    async fn handle(&self, request: Request) -> Result<(), lambda_runtime::Error> {
        let outcome = Box::pin(apply(&self.config, &self.rules, &request)).await;
        if let Err(err) = &outcome {
            error!(error = %err, "declared schedules not applied");
        }
        let (url, response) = response(&self.config, &request, outcome);
        self.http
            .put(url)
            // The response URL is a presigned S3 URL signed for no content type.
            .header("content-type", "")
            .body(serde_json::to_vec(&response)?)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }
}

/// The schedules a resource's properties declare: `Schedules` is a JSON object of schedule
/// name to the body `PUT /schedules/{name}` takes.
fn declared(properties: &Value) -> Result<BTreeMap<String, ScheduleRequest>, StepError> {
    let text = properties["Schedules"].as_str().unwrap_or("{}").trim();
    let text = if text.is_empty() { "{}" } else { text };
    serde_json::from_str(text).map_err(|e| {
        amiforge::domain::InvalidRequest(vec![amiforge::domain::FieldError::new(
            "StaticSchedules",
            format!(
                "StaticSchedules must be a JSON object of schedule name to schedule, as PUT \
                 /schedules/{{name}} takes it: {e}"
            ),
        )])
        .into()
    })
}

/// Saves what a create or update declares and deletes what it no longer does; a delete
/// removes everything the resource declared. The names now declared.
async fn apply(
    config: &Config,
    rules: &Rules,
    request: &Request,
) -> Result<Vec<String>, StepError> {
    let (wanted, previous) = match request {
        Request::Create(create) => (declared(&create.resource_properties)?, BTreeMap::new()),
        Request::Update(update) => (
            declared(&update.resource_properties)?,
            // Old properties that no longer parse declared nothing we can name.
            declared(&update.old_resource_properties).unwrap_or_default(),
        ),
        Request::Delete(delete) => (
            BTreeMap::new(),
            declared(&delete.resource_properties).unwrap_or_default(),
        ),
        _ => {
            return Err(StepError::BadEvent(
                "unknown CloudFormation request type".into(),
            ))
        }
    };
    let previous: Vec<String> = previous.into_keys().collect();
    let names = schedules::declare(config, rules, &wanted, &previous).await?;
    info!(
        saved = names.len(),
        removed = previous.iter().filter(|p| !names.contains(p)).count(),
        "declared schedules applied"
    );
    Ok(names)
}

/// Where to send the answer, and the answer.
fn response(
    config: &Config,
    request: &Request,
    outcome: Result<Vec<String>, StepError>,
) -> (String, CloudFormationCustomResourceResponse) {
    let (url, stack_id, request_id, logical_id) = match request {
        Request::Create(r) => (
            &r.response_url,
            &r.stack_id,
            &r.request_id,
            &r.logical_resource_id,
        ),
        Request::Update(r) => (
            &r.response_url,
            &r.stack_id,
            &r.request_id,
            &r.logical_resource_id,
        ),
        Request::Delete(r) => (
            &r.response_url,
            &r.stack_id,
            &r.request_id,
            &r.logical_resource_id,
        ),
        _ => (
            &String::new(),
            &String::new(),
            &String::new(),
            &String::new(),
        ),
    };
    let mut response = CloudFormationCustomResourceResponse::default();
    // One id for the life of the resource: a new id would make CloudFormation delete the
    // "old" resource, and with it every declared schedule.
    response.physical_resource_id = format!("{}declared-schedules", config.schedule_rule_prefix);
    response.stack_id.clone_from(stack_id);
    response.request_id.clone_from(request_id);
    response.logical_resource_id.clone_from(logical_id);
    match outcome {
        Ok(names) => {
            response.status = Status::Success;
            response.data = [("Schedules".to_owned(), names.join(","))].into();
        }
        Err(err) => {
            response.status = Status::Failed;
            response.reason = Some(reason(&err));
        }
    }
    (url.clone(), response)
}

/// What CloudFormation shows for a failure: each bad field, or the error.
fn reason(err: &StepError) -> String {
    match err {
        StepError::Invalid(invalid) => invalid
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
