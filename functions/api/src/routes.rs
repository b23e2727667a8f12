//! The routes: a table of what is served, and one function per route that decodes the request,
//! calls the shared library and encodes the answer. `handle` needs no socket, so tests call it
//! directly.

use amiforge::aws::events::Rules;
use amiforge::aws::sfn::Executions;
use amiforge::builds::{check_name, start_build, start_purge, start_register};
use amiforge::catalog::{self, Owner};
use amiforge::domain::{
    AmiId, BuildRequest, FieldError, JobId, RegisterRequest, ScheduleRequest, Sharing,
    SharingRequest,
};
use amiforge::jobs::{Job, JobQuery, JobStatus};
use amiforge::schedules;
use amiforge::steps::purge::{self, PurgeRequest};
use amiforge::steps::{permissions, Pipeline};
use amiforge::StepError;
use http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tracing::info;

use crate::error::ApiError;

/// Everything the routes work with, built once per process.
#[derive(Clone)]
pub struct App {
    /// Steps, store and AWS adapters.
    pub pipeline: Pipeline,
    /// Starting executions.
    pub executions: Executions,
    /// The EventBridge rules of schedules.
    pub rules: Rules,
}

/// Every route served: method and path pattern, `{id}` standing for one path segment. The
/// OpenAPI document lists exactly these.
pub const ROUTES: [(&str, &str); 13] = [
    ("POST", "/images"),
    ("POST", "/images/register"),
    ("GET", "/images"),
    ("GET", "/images/{id}"),
    ("DELETE", "/images/{id}"),
    ("POST", "/images/delete"),
    ("PUT", "/images/{id}/permissions"),
    ("GET", "/jobs"),
    ("GET", "/jobs/{id}"),
    ("GET", "/schedules"),
    ("GET", "/schedules/{name}"),
    ("PUT", "/schedules/{name}"),
    ("DELETE", "/schedules/{name}"),
];

/// Largest page of jobs or images.
const MAX_LIMIT: u32 = 100;
/// Page size when none is asked for.
const DEFAULT_LIMIT: u32 = 25;

/// Answers one request. Every failure becomes a JSON error response here.
pub async fn handle(app: &App, request: Request) -> Response<Body> {
    let request_id = request
        .lambda_context_ref()
        .map_or_else(|| "local".to_owned(), |c| c.request_id.clone());
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let method = request.method().clone();

    let result = match route(&method, &path) {
        Routed::Found(route, id) => serve(app, &request, route, id).await,
        Routed::WrongMethod(allowed) => Err(ApiError::plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{method} is not allowed on {path}; allowed: {}",
                allowed.join(", ")
            ),
        )),
        Routed::Missing => Err(ApiError::not_found(format!("no route {path}"))),
    };
    match result {
        Ok((status, body)) => {
            info!(request_id, %method, path, status = status.as_u16(), "request served");
            respond(status, &body)
        }
        Err(err) => {
            info!(request_id, %method, path, status = err.status.as_u16(), code = err.code, "request refused");
            respond(err.status, &err.body())
        }
    }
}

enum Routed {
    Found(&'static str, Option<String>),
    WrongMethod(Vec<&'static str>),
    Missing,
}

/// Finds the route for a method and path; `{id}` or `{name}` captures its segment.
fn route(method: &Method, path: &str) -> Routed {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut allowed = Vec::new();
    for (route_method, pattern) in ROUTES {
        let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut id = None;
        let matches = parts.iter().zip(&segments).all(|(p, s)| {
            if p.starts_with('{') && p.ends_with('}') {
                id = Some((*s).to_owned());
                !s.is_empty()
            } else {
                p == s
            }
        });
        if !matches {
            continue;
        }
        if method.as_str() == route_method {
            return Routed::Found(pattern, id);
        }
        allowed.push(route_method);
    }
    if allowed.is_empty() {
        Routed::Missing
    } else {
        Routed::WrongMethod(allowed)
    }
}

type Answer = Result<(StatusCode, Value), ApiError>;

async fn serve(app: &App, request: &Request, route: &str, id: Option<String>) -> Answer {
    let request_id = request
        .lambda_context_ref()
        .map_or_else(|| "local".to_owned(), |c| c.request_id.clone());
    let fail = |err: StepError| ApiError::from_step(err, &request_id);
    let id = id.unwrap_or_default();
    match (request.method().as_str(), route) {
        ("POST", "/images") => create_image(app, request).await.map_err(fail)?,
        ("POST", "/images/register") => register_image(app, request).await.map_err(fail)?,
        ("GET", "/images") => list_images(app, request).await.map_err(fail)?,
        ("GET", "/images/{id}") => {
            let image = AmiId::parse(&id).map_err(ApiError::field)?;
            let detail = catalog::show(&app.pipeline, &image).await.map_err(fail)?;
            Ok((StatusCode::OK, to_json(&detail)))
        }
        ("DELETE", "/images/{id}") => {
            let query = request.query_string_parameters();
            let flag = |name: &str| -> Result<bool, ApiError> {
                match query.first(name) {
                    None | Some("false") => Ok(false),
                    Some("true") => Ok(true),
                    Some(other) => Err(ApiError::field(FieldError::new(
                        name,
                        format!("{name} must be true or false, got {other:?}"),
                    ))),
                }
            };
            let purge = PurgeRequest {
                image_ids: vec![id],
                remove_s3_files: flag("remove_s3_files")?,
                dry_run: flag("dry_run")?,
                force: flag("force")?,
            };
            delete_images(app, purge).await.map_err(fail)
        }
        ("POST", "/images/delete") => {
            let purge: PurgeRequest = decode(request)?;
            delete_images(app, purge).await.map_err(fail)
        }
        ("PUT", "/images/{id}/permissions") => {
            let image = AmiId::parse(&id).map_err(ApiError::field)?;
            put_permissions(app, request, &image).await.map_err(fail)?
        }
        ("GET", "/jobs") => list_jobs(app, request).await.map_err(fail)?,
        ("GET", "/jobs/{id}") => {
            let job_id = JobId::parse(&id).map_err(ApiError::field)?;
            let job = app
                .pipeline
                .jobs
                .get(&job_id)
                .await
                .map_err(|e| fail(e.into()))?;
            Ok((StatusCode::OK, to_json(&job)))
        }
        ("GET", "/schedules") => list_schedules(app, request).await.map_err(fail)?,
        ("GET", "/schedules/{name}") => {
            let schedule = schedules::get(&app.pipeline.config, &app.rules, &id)
                .await
                .map_err(fail)?;
            Ok((StatusCode::OK, to_json(&schedule)))
        }
        ("PUT", "/schedules/{name}") => {
            let body: ScheduleRequest = decode(request)?;
            let (schedule, created) = schedules::save(&app.pipeline.config, &app.rules, &id, &body)
                .await
                .map_err(fail)?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, to_json(&schedule)))
        }
        ("DELETE", "/schedules/{name}") => {
            schedules::delete(&app.pipeline.config, &app.rules, &id)
                .await
                .map_err(fail)?;
            Ok((StatusCode::OK, json!({"deleted": id})))
        }
        _ => Err(ApiError::not_found(format!("no route {route}"))),
    }
}

/// `GET /schedules`: by name, one page at a time.
async fn list_schedules(app: &App, request: &Request) -> Result<Answer, StepError> {
    let query = request.query_string_parameters();
    let limit = match limit(query.first("limit")) {
        Ok(limit) => limit,
        Err(err) => return Ok(Err(err)),
    };
    let (page, next) = schedules::list(
        &app.pipeline.config,
        &app.rules,
        i32::try_from(limit).unwrap_or(25),
        query.first("next").map(str::to_owned),
    )
    .await?;
    Ok(Ok((
        StatusCode::OK,
        json!({"schedules": page, "next": next}),
    )))
}

/// `POST /images`: validates the whole body, records the job and starts the build.
async fn create_image(app: &App, request: &Request) -> Result<Answer, StepError> {
    let body: BuildRequest = match decode(request) {
        Ok(body) => body,
        Err(err) => return Ok(Err(err)),
    };
    let key = match idempotency_key(request) {
        Ok(key) => key,
        Err(err) => return Ok(Err(err)),
    };
    check_name(&app.pipeline, &body, key).await?;
    let job = start_build(
        &app.pipeline.config,
        app.pipeline.jobs.as_ref(),
        &app.executions,
        &body,
        key,
    )
    .await?;
    Ok(Ok(accepted(&job)))
}

/// `POST /images/register`: checks the manifest, records a register job and starts it.
async fn register_image(app: &App, request: &Request) -> Result<Answer, StepError> {
    let body: RegisterRequest = match decode(request) {
        Ok(body) => body,
        Err(err) => return Ok(Err(err)),
    };
    let key = match idempotency_key(request) {
        Ok(key) => key,
        Err(err) => return Ok(Err(err)),
    };
    let job = start_register(&app.pipeline, &app.executions, &body, key).await?;
    Ok(Ok(accepted(&job)))
}

/// The `Idempotency-Key` header, when given: at most 255 characters.
fn idempotency_key(request: &Request) -> Result<Option<&str>, ApiError> {
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty());
    if key.is_some_and(|k| k.len() > 255) {
        return Err(ApiError::field(FieldError::new(
            "Idempotency-Key",
            "an idempotency key must be at most 255 characters long",
        )));
    }
    Ok(key)
}

/// 202 for a job that was started: where to follow it.
fn accepted(job: &Job) -> (StatusCode, Value) {
    (
        StatusCode::ACCEPTED,
        json!({
            "job_id": job.job_id,
            "status": job.status,
            "status_url": format!("/jobs/{}", job.job_id),
            "execution_arn": job.execution_arn,
        }),
    )
}

/// `DELETE /images/{id}` and `POST /images/delete`: the plan for a dry run, else a purge job.
async fn delete_images(app: &App, request: PurgeRequest) -> Result<(StatusCode, Value), StepError> {
    let ids = request.validate()?;
    if request.dry_run {
        let plans = purge::plan_purge(&app.pipeline, &ids, &request).await?;
        return Ok((StatusCode::OK, json!({"dry_run": true, "images": plans})));
    }
    let job = start_purge(
        &app.pipeline.config,
        app.pipeline.jobs.as_ref(),
        &app.executions,
        &request,
    )
    .await?;
    Ok(accepted(&job))
}

/// `GET /jobs`: newest first, optionally by status, one page at a time.
async fn list_jobs(app: &App, request: &Request) -> Result<Answer, StepError> {
    let query = request.query_string_parameters();
    let status = match query.first("status") {
        None => None,
        Some(value) => match JobStatus::parse(value) {
            Some(status) => Some(status),
            None => {
                return Ok(Err(ApiError::field(FieldError::new(
                    "status",
                    format!("status must be QUEUED, RUNNING, SUCCEEDED or FAILED, got {value:?}"),
                ))));
            }
        },
    };
    let limit = match limit(query.first("limit")) {
        Ok(limit) => limit,
        Err(err) => return Ok(Err(err)),
    };
    let page = app
        .pipeline
        .jobs
        .list(&JobQuery {
            status,
            schedule: query.first("schedule").map(str::to_owned),
            limit,
            next: query.first("next").map(str::to_owned),
        })
        .await?;
    Ok(Ok((
        StatusCode::OK,
        json!({"jobs": page.jobs, "next": page.next}),
    )))
}

/// `GET /images`: own, Amazon's, an account's or followed accounts' images.
async fn list_images(app: &App, request: &Request) -> Result<Answer, StepError> {
    let query = request.query_string_parameters();
    let owner = match Owner::parse(query.first("owner")) {
        Ok(owner) => owner,
        Err(err) => return Ok(Err(ApiError::field(err))),
    };
    let limit = match limit(query.first("limit")) {
        Ok(limit) => limit,
        Err(err) => return Ok(Err(err)),
    };
    let list = catalog::list(
        &app.pipeline,
        &owner,
        query.first("name"),
        query.first("state"),
        i32::try_from(limit).unwrap_or(catalog::MAX_PAGE),
        query.first("next").map(str::to_owned),
    )
    .await?;
    Ok(Ok((StatusCode::OK, to_json(&list))))
}

/// `PUT /images/{id}/permissions`: moves the launch permissions to the state given.
async fn put_permissions(app: &App, request: &Request, image: &AmiId) -> Result<Answer, StepError> {
    let body: SharingRequest = match decode(request) {
        Ok(body) => body,
        Err(err) => return Ok(Err(err)),
    };
    let desired = Sharing::parse(&body)?;
    let (change, now) = permissions::apply_sharing(&app.pipeline, image, &desired).await?;
    let launch = |s: &Sharing| {
        let r = s.to_request();
        json!({
            "public": r.public,
            "accounts": r.accounts,
            "organizations": r.organizations,
            "organizational_units": r.organizational_units,
        })
    };
    Ok(Ok((
        StatusCode::OK,
        json!({
            "image_id": image,
            "added": launch(&change.added),
            "removed": launch(&change.removed),
            "launch_permissions": launch(&now),
        }),
    )))
}

/// Parses `limit`: 1 to 100, 25 when absent.
fn limit(value: Option<&str>) -> Result<u32, ApiError> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::field(FieldError::new(
                "limit",
                format!("limit must be a whole number from 1 to {MAX_LIMIT}, got {v:?}"),
            ))),
        },
    }
}

/// Decodes a JSON body, naming what is wrong with it.
fn decode<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = request.body().as_ref();
    if bytes.is_empty() {
        return Err(ApiError::field(FieldError::new(
            "body",
            "a JSON body is required",
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        // serde names an unknown field as "unknown field `x`, expected ..."
        let field = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("unknown field"))
            .unwrap_or("body")
            .to_owned();
        ApiError::field(FieldError::new(
            field,
            format!("the body is not valid: {message}"),
        ))
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn respond(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests;
