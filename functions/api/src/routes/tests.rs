//! Router tests without a socket: every route, status code and validation rule, over the
//! in-memory job store and SDK clients answering from mock rules.

use std::collections::HashMap;
use std::sync::Arc;

use amiforge::aws::ec2::Ec2;
use amiforge::aws::kms::Kms;
use amiforge::aws::mock;
use amiforge::aws::s3::Manifests;
use amiforge::aws::sfn::Executions;
use amiforge::domain::{BucketName, KeyPrefix, PollBounds};
use amiforge::jobs::{JobStore, MemoryJobStore};
use amiforge::steps::Pipeline;
use amiforge::Config;
use aws_sdk_ec2::operation::describe_image_attribute::DescribeImageAttributeOutput;
use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::modify_image_attribute::ModifyImageAttributeOutput;
use aws_sdk_ec2::types::{Image, LaunchPermission};
use aws_smithy_mocks::{mock, Rule};
use http::StatusCode;
use lambda_http::{Body, Request, RequestExt};
use serde_json::{json, Value};

use super::{handle, App, ROUTES};

const MACHINE: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:build-image";

fn app(ec2: &[&Rule], sfn: &[&Rule]) -> (App, Arc<MemoryJobStore>) {
    let store = Arc::new(MemoryJobStore::default());
    let config = Config {
        jobs_table: "jobs".into(),
        bucket: BucketName::parse("amiforge-test").unwrap(),
        prefix: KeyPrefix::parse("images").unwrap(),
        poll: PollBounds {
            min_seconds: 5,
            max_seconds: 300,
        },
        history_limit: 20,
        build_state_machine_arn: Some(MACHINE.into()),
        purge_state_machine_arn: None,
        followed_accounts: Vec::new(),
    };
    let pipeline = Pipeline {
        config,
        jobs: store.clone(),
        ec2: Ec2::new(mock::ec2(ec2)),
        manifests: Manifests::new(mock::s3(&[])),
        kms: Kms::new(mock::kms(&[])),
        region: Some("us-east-1".into()),
    };
    let app = App {
        pipeline,
        executions: Executions::new(mock::sfn(sfn)),
    };
    (app, store)
}

fn start_execution() -> Rule {
    mock!(aws_sdk_sfn::Client::start_execution)
        .match_requests(|input| input.state_machine_arn() == Some(MACHINE))
        .then_compute_output(|input| {
            aws_sdk_sfn::operation::start_execution::StartExecutionOutput::builder()
                .execution_arn(format!(
                    "arn:aws:states:us-east-1:123456789012:execution:build-image:{}",
                    input.name().unwrap_or_default()
                ))
                .start_date(aws_smithy_types::DateTime::from_secs(0))
                .build()
                .unwrap()
        })
}

fn request(method: &str, path: &str, body: Option<Value>) -> Request {
    http::Request::builder()
        .method(method)
        .uri(path)
        .body(body.map_or(Body::Empty, |b| Body::from(b.to_string())))
        .unwrap()
}

fn with_query(request: Request, pairs: &[(&str, &str)]) -> Request {
    let query: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    request.with_query_string_parameters(query)
}

async fn call(app: &App, request: Request) -> (StatusCode, Value) {
    let response = handle(app, request).await;
    let status = response.status();
    let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    (status, body)
}

fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

/// A body with five bad fields gets one 400 naming all five, and starts nothing.
#[tokio::test]
async fn five_bad_fields_give_five_field_errors() {
    let started = start_execution();
    let (app, store) = app(&[], &[&started]);
    let body = json!({
        "instance_id": "i-nothex!",
        "name": "x",
        "sharing": {"accounts": ["12345"], "organizations": ["o-1"]},
        "bucket": "Not_A_Bucket",
    });

    let (status, body) = call(&app, request("POST", "/images", Some(body))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(&body),
        [
            "instance_id",
            "name",
            "sharing.accounts[0]",
            "sharing.organizations[0]",
            "bucket"
        ]
    );
    assert_eq!(body["error"]["code"], "invalid_request");
    assert_eq!(body["error"]["field"], "instance_id");
    assert!(body["errors"][1]["message"]
        .as_str()
        .unwrap()
        .contains("3 to 128"));
    assert_eq!(started.num_calls(), 0);
    assert!(store
        .list(&Default::default())
        .await
        .unwrap()
        .jobs
        .is_empty());
}

/// A good body is accepted with 202, the job recorded and the execution named after it; a
/// leading-zero account id stays a 12-character string.
#[tokio::test]
async fn create_records_the_job_and_starts_its_execution() {
    let started = start_execution();
    let (app, store) = app(&[], &[&started]);
    let body = json!({
        "instance_id": "i-0123abcd",
        "name": "web-1",
        "sharing": {"accounts": ["012345678901"]},
    });

    let (status, body) = call(&app, request("POST", "/images", Some(body))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job_id = body["job_id"].as_str().unwrap();
    assert_eq!(body["status_url"], format!("/jobs/{job_id}"));
    assert!(body["execution_arn"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":{job_id}")));
    assert_eq!(started.num_calls(), 1);
    let job = store
        .get(&amiforge::domain::JobId::parse(job_id).unwrap())
        .await
        .unwrap();
    assert_eq!(job.request["sharing"]["accounts"][0], "012345678901");

    let (status, shown) = call(&app, request("GET", &format!("/jobs/{job_id}"), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["job_id"], job_id);
    assert_eq!(shown["status"], "QUEUED");
}

/// The same Idempotency-Key returns the same job without a second build; reusing it for
/// another request is refused.
#[tokio::test]
async fn idempotency_key_returns_the_same_job() {
    let started = start_execution();
    let (app, _) = app(&[], &[&started]);
    let body = json!({"instance_id": "i-0123abcd", "name": "web-1"});
    let keyed = |body: Value| {
        let mut r = request("POST", "/images", Some(body));
        r.headers_mut()
            .insert("idempotency-key", "nightly-2026-12-03".parse().unwrap());
        r
    };

    let (first_status, first) = call(&app, keyed(body.clone())).await;
    let (second_status, second) = call(&app, keyed(body)).await;
    assert_eq!(first_status, StatusCode::ACCEPTED);
    assert_eq!(second_status, StatusCode::ACCEPTED);
    assert_eq!(first["job_id"], second["job_id"]);
    assert_eq!(started.num_calls(), 1);

    let (status, other) = call(
        &app,
        keyed(json!({"instance_id": "i-0123abcd", "name": "web-2"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&other), ["Idempotency-Key"]);
}

/// Bodies that are not JSON objects of the right shape are named precisely.
#[tokio::test]
async fn malformed_bodies_are_refused() {
    let (app, _) = app(&[], &[]);
    let (status, body) = call(&app, request("POST", "/images", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["body"]);

    let (status, body) = call(
        &app,
        request("POST", "/images", Some(json!({"instance": "i-0123abcd"}))),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["instance"]);
}

/// Unknown jobs are 404, malformed ids 400, and bad list parameters 400 naming the parameter.
#[tokio::test]
async fn job_routes_check_ids_and_parameters() {
    let (app, _) = app(&[], &[]);
    let (status, body) = call(&app, request("GET", "/jobs/job-nope", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["message"], "job job-nope does not exist");

    let (status, body) = call(&app, request("GET", "/jobs/bad%20id", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["job_id"]);

    let (status, body) = call(
        &app,
        with_query(request("GET", "/jobs", None), &[("status", "DONE")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["status"]);
    let (status, body) = call(
        &app,
        with_query(request("GET", "/jobs", None), &[("limit", "500")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["limit"]);
    let (status, body) = call(
        &app,
        with_query(request("GET", "/jobs", None), &[("next", "zz")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["next"]);
    let (status, body) = call(
        &app,
        with_query(request("GET", "/jobs", None), &[("status", "queued")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["jobs"], json!([]));
}

/// Paths that exist answer 405 to other methods; unknown paths 404.
#[tokio::test]
async fn wrong_methods_and_unknown_paths() {
    let (app, _) = app(&[], &[]);
    let (status, body) = call(&app, request("DELETE", "/jobs/job-1", None)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("allowed: GET"));
    let (status, _) = call(&app, request("GET", "/nothing/here", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Image routes check the id and the owner before calling EC2, and a missing image is 404.
#[tokio::test]
async fn image_routes_check_ids_and_owner() {
    let none = mock!(aws_sdk_ec2::Client::describe_images)
        .then_output(|| DescribeImagesOutput::builder().build());
    let (app, _) = app(&[&none], &[]);
    let (status, body) = call(&app, request("GET", "/images/ami-XYZ", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["image_id"]);
    assert_eq!(none.num_calls(), 0);

    let (status, body) = call(&app, request("GET", "/images/ami-0123abcd", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body["error"]["message"],
        "image ami-0123abcd does not exist"
    );

    let (status, body) = call(
        &app,
        with_query(request("GET", "/images", None), &[("owner", "me")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["owner"]);
}

/// Putting a sharing state applies only the difference and reports what was added and
/// removed; a bad account in the body is a 400 naming it.
#[tokio::test]
async fn permissions_apply_only_the_difference() {
    let image = mock!(aws_sdk_ec2::Client::describe_images).then_output(|| {
        DescribeImagesOutput::builder()
            .images(
                Image::builder()
                    .image_id("ami-0123abcd")
                    .state("available".into())
                    .build(),
            )
            .build()
    });
    let current = mock!(aws_sdk_ec2::Client::describe_image_attribute).then_output(|| {
        DescribeImageAttributeOutput::builder()
            .launch_permissions(LaunchPermission::builder().user_id("111111111111").build())
            .build()
    });
    let added = mock!(aws_sdk_ec2::Client::modify_image_attribute)
        .match_requests(|input| {
            input.launch_permission().is_some_and(|m| {
                m.add()
                    .iter()
                    .filter_map(|p| p.user_id())
                    .collect::<Vec<_>>()
                    == ["012345678901"]
                    && m.remove().is_empty()
            })
        })
        .then_output(|| ModifyImageAttributeOutput::builder().build());
    let removed = mock!(aws_sdk_ec2::Client::modify_image_attribute)
        .match_requests(|input| {
            input.launch_permission().is_some_and(|m| {
                m.remove()
                    .iter()
                    .filter_map(|p| p.user_id())
                    .collect::<Vec<_>>()
                    == ["111111111111"]
                    && m.add().is_empty()
            })
        })
        .then_output(|| ModifyImageAttributeOutput::builder().build());
    let snapshots = mock!(aws_sdk_ec2::Client::describe_snapshots).then_output(|| {
        aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput::builder().build()
    });
    let (app, _) = app(&[&image, &current, &added, &removed, &snapshots], &[]);

    let (status, body) = call(
        &app,
        request(
            "PUT",
            "/images/ami-0123abcd/permissions",
            Some(json!({"accounts": ["012345678901"]})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["added"]["accounts"], json!(["012345678901"]));
    assert_eq!(body["removed"]["accounts"], json!(["111111111111"]));
    assert_eq!(body["added"]["public"], false);
    assert_eq!((added.num_calls(), removed.num_calls()), (1, 1));

    let (status, body) = call(
        &app,
        request(
            "PUT",
            "/images/ami-0123abcd/permissions",
            Some(json!({"accounts": ["42"]})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["sharing.accounts[0]"]);
}

/// The OpenAPI document describes exactly the routes served.
#[test]
fn openapi_matches_the_routes() {
    let text = include_str!("../../openapi.json");
    let document: Value = serde_json::from_str(text).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
}
