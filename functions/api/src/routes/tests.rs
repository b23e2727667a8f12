//! Router tests without a socket: every route, status code and validation rule, over the
//! in-memory job store and SDK clients answering from mock rules.

use std::collections::HashMap;
use std::sync::Arc;

use amiforge::aws::ec2::Ec2;
use amiforge::aws::events::Rules;
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
    app_with_s3(ec2, sfn, &[])
}

fn app_with_s3(ec2: &[&Rule], sfn: &[&Rule], s3: &[&Rule]) -> (App, Arc<MemoryJobStore>) {
    app_with_rules(ec2, sfn, s3, &[])
}

fn app_with_rules(
    ec2: &[&Rule],
    sfn: &[&Rule],
    s3: &[&Rule],
    events: &[&Rule],
) -> (App, Arc<MemoryJobStore>) {
    let store = Arc::new(MemoryJobStore::default());
    // Answers for what a test does not set up itself: no image of the name, no object at the
    // path. A test's own rules come first and win.
    let (no_images, no_object) = (mock::no_images(), mock::no_object());
    let ec2: Vec<&Rule> = ec2.iter().copied().chain([&no_images]).collect();
    let s3: Vec<&Rule> = s3.iter().copied().chain([&no_object]).collect();
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
        schedule_role_arn: Some("arn:aws:iam::123456789012:role/amiforge-schedules".into()),
        schedule_rule_prefix: "amiforge-".into(),
    };
    let pipeline = Pipeline {
        config,
        jobs: store.clone(),
        ec2: Ec2::new(mock::ec2(&ec2)),
        manifests: Manifests::new(mock::s3(&s3)),
        kms: Kms::new(mock::kms(&[])),
        region: Some("us-east-1".into()),
    };
    let app = App {
        pipeline,
        executions: Executions::new(mock::sfn(sfn)),
        rules: Rules::new(mock::events(events)),
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

fn bucket_in(region: &'static str) -> Rule {
    mock!(aws_sdk_s3::Client::get_bucket_location).then_output(move || {
        let constraint = aws_sdk_s3::types::BucketLocationConstraint::from(region);
        aws_sdk_s3::operation::get_bucket_location::GetBucketLocationOutput::builder()
            .location_constraint(constraint)
            .build()
    })
}

fn bundle_present(present: bool) -> Rule {
    if present {
        mock!(aws_sdk_s3::Client::head_object)
            .then_output(|| aws_sdk_s3::operation::head_object::HeadObjectOutput::builder().build())
    } else {
        mock!(aws_sdk_s3::Client::head_object).then_error(|| {
            aws_sdk_s3::operation::head_object::HeadObjectError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("NotFound")
                    .build(),
            )
        })
    }
}

/// A legacy bundle in the stack's region is accepted: a register job is recorded and the
/// build execution starts with the register input, which sends it straight to registering.
#[tokio::test]
async fn register_records_a_register_job_and_starts_it() {
    let started = start_execution();
    let location = bucket_in("us-east-1");
    let head = bundle_present(true);
    let (app, store) = app_with_s3(&[], &[&started], &[&location, &head]);
    let body = json!({
        "manifest_path": "s3://old-bundles/web/image.manifest.xml",
        "name": "web legacy",
        "sharing": {"accounts": ["012345678901"]},
    });

    let (status, body) = call(&app, request("POST", "/images/register", Some(body))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let job_id = amiforge::domain::JobId::parse(body["job_id"].as_str().unwrap()).unwrap();
    let job = store.get(&job_id).await.unwrap();
    assert_eq!(job.kind, amiforge::jobs::JobKind::Register);
    assert_eq!(
        job.request["manifest_path"],
        "s3://old-bundles/web/image.manifest.xml"
    );
    assert_eq!(started.num_calls(), 1);
    assert_eq!(head.num_calls(), 1);
}

/// A manifest that is not there, or a bucket in another region, is a 400 on `manifest_path`
/// and records nothing.
#[tokio::test]
async fn register_refuses_missing_manifests_and_other_regions() {
    for (region, present, expected) in [
        ("us-east-1", false, "no bundle manifest at"),
        ("eu-west-3", true, "is in eu-west-3"),
    ] {
        let started = start_execution();
        let location = bucket_in(region);
        let head = bundle_present(present);
        let (app, store) = app_with_s3(&[], &[&started], &[&location, &head]);
        let body = json!({
            "manifest_path": "s3://old-bundles/web/image.manifest.xml",
            "name": "web legacy",
        });

        let (status, body) = call(&app, request("POST", "/images/register", Some(body))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(fields(&body), ["manifest_path"]);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
        assert_eq!(started.num_calls(), 0);
        assert!(store
            .list(&Default::default())
            .await
            .unwrap()
            .jobs
            .is_empty());
    }
}

/// Every bad field of a register body is named before S3 is asked anything.
#[tokio::test]
async fn register_names_every_bad_field() {
    let location = bucket_in("us-east-1");
    let (app, _) = app_with_s3(&[], &[], &[&location]);
    let body = json!({
        "manifest_path": "s3://bucket/images/web/notes.txt",
        "name": "web",
        "sharing": {"accounts": ["1234"]},
    });

    let (status, body) = call(&app, request("POST", "/images/register", Some(body))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(&body),
        ["manifest_path", "name", "sharing.accounts[0]"]
    );
    assert_eq!(location.num_calls(), 0);
}

fn no_rule() -> Rule {
    mock!(aws_sdk_eventbridge::Client::describe_rule).then_error(|| {
        aws_sdk_eventbridge::operation::describe_rule::DescribeRuleError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("ResourceNotFoundException")
                .message("Rule amiforge-nightly does not exist.")
                .build(),
        )
    })
}

/// A schedule with five bad fields is one 400 naming all five, and no rule is written.
#[tokio::test]
async fn a_bad_schedule_names_every_field_and_writes_no_rule() {
    let put = mock!(aws_sdk_eventbridge::Client::put_rule)
        .then_output(|| aws_sdk_eventbridge::operation::put_rule::PutRuleOutput::builder().build());
    let (app, _) = app_with_rules(&[], &[], &[], &[&put]);
    let body = json!({
        "expression": "cron(0 3 * * *)",
        "name_template": "web-{day}",
        "instance_id": "i-nothex!",
        "sharing": {"accounts": ["12345"]},
        "retention": {"keep_last": 0},
    });

    let (status, body) = call(&app, request("PUT", "/schedules/nightly", Some(body))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(&body),
        [
            "expression",
            "name_template",
            "retention.keep_last",
            "instance_id",
            "sharing.accounts[0]"
        ]
    );
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("takes 6 fields"));
    assert_eq!(put.num_calls(), 0);
}

/// A new schedule writes its rule and a target that starts the build machine with the
/// schedule's definition and the event time; the answer is 201.
#[tokio::test]
async fn a_new_schedule_writes_its_rule_and_target() {
    let missing = no_rule();
    let put = mock!(aws_sdk_eventbridge::Client::put_rule)
        .match_requests(|r| {
            r.name() == Some("amiforge-nightly")
                && r.schedule_expression() == Some("cron(0 3 * * ? *)")
        })
        .then_output(|| aws_sdk_eventbridge::operation::put_rule::PutRuleOutput::builder().build());
    let target = mock!(aws_sdk_eventbridge::Client::put_targets)
        .match_requests(|r| {
            let t = &r.targets()[0];
            let template = t.input_transformer().unwrap().input_template();
            t.arn() == MACHINE
                && t.role_arn() == Some("arn:aws:iam::123456789012:role/amiforge-schedules")
                && template.contains(r#""time":"<time>""#)
                && template.contains(r#""name_template":"web-{date}""#)
        })
        .then_output(|| {
            aws_sdk_eventbridge::operation::put_targets::PutTargetsOutput::builder()
                .failed_entry_count(0)
                .build()
        });
    let (app, _) = app_with_rules(&[], &[], &[], &[&missing, &put, &target]);
    let body = json!({
        "expression": "cron(0 3 * * ? *)",
        "name_template": "web-{date}",
        "instance_id": "i-0123abcd",
        "retention": {"keep_last": 7},
    });

    let (status, body) = call(&app, request("PUT", "/schedules/nightly", Some(body))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["rule_name"], "amiforge-nightly");
    assert_eq!(body["definition"]["retention"]["keep_last"], 7);
    assert_eq!(put.num_calls(), 1);
    assert_eq!(target.num_calls(), 1);
}

/// An unknown schedule is a 404, a malformed name a 400.
#[tokio::test]
async fn unknown_schedules_are_not_found() {
    let missing = no_rule();
    let (app, _) = app_with_rules(&[], &[], &[], &[&missing]);

    let (status, body) = call(&app, request("GET", "/schedules/nightly", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = call(&app, request("DELETE", "/schedules/nightly", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(&app, request("GET", "/schedules/bad%20name", None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&body), ["name"]);
}

/// A name another image holds is a 409 naming that image, and records nothing.
#[tokio::test]
async fn create_with_a_taken_name_is_a_conflict() {
    let started = start_execution();
    let taken = mock!(aws_sdk_ec2::Client::describe_images).then_output(|| {
        DescribeImagesOutput::builder()
            .images(
                Image::builder()
                    .image_id("ami-0e000001")
                    .name("web-1")
                    .build(),
            )
            .build()
    });
    let (app, store) = app(&[&taken], &[&started]);
    let body = json!({"instance_id": "i-0123abcd", "name": "web-1"});

    let (status, body) = call(&app, request("POST", "/images", Some(body))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ami-0e000001"));
    assert_eq!(started.num_calls(), 0);
    assert!(store
        .list(&Default::default())
        .await
        .unwrap()
        .jobs
        .is_empty());
}
