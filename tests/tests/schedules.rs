//! Schedules on the local stack: saved through the real `api` function, stored as EventBridge
//! rules, and run by starting the build machine with the rule's own target input (the
//! emulator stores rules but never fires them). Retention runs against images in the emulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::time::{Duration, Instant};

use amiforge::contract::RetainInput;
use amiforge::domain::{JobId, Retention, TagKey};
use amiforge::jobs::{Job, JobKind, JobStatus, JobStore};
use amiforge::schedules::execution_input;
use amiforge::steps::scheduled;
use amiforge_tests::{launch_instance, stack, unique, Stack};
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use aws_sdk_s3::primitives::ByteStream;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(240);

async fn call(
    stack: &Stack,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let base = stack.var("AMIFORGE_ENDPOINT").unwrap();
    let mut request = Client::new().request(method.clone(), format!("{base}{path}"));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{method} {path}: {status}: not JSON ({e}): {text}"));
    (status, value)
}

/// Starts the build machine as the rule would, with its target input for an event at `time`,
/// and waits for the execution to end; its status.
async fn fire(stack: &Stack, template: &str, time: &str, execution: &str) -> String {
    let clients = stack.clients();
    let input = serde_json::to_string(&execution_input(template, time).unwrap()).unwrap();
    let arn = clients
        .sfn
        .start_execution()
        .state_machine_arn(stack.var("AMIFORGE_BUILD_STATE_MACHINE_ARN").unwrap())
        .name(execution)
        .input(input)
        .send()
        .await
        .unwrap()
        .execution_arn()
        .to_owned();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let described = clients
            .sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .unwrap();
        let status = described.status().as_str().to_owned();
        if status != "RUNNING" {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "execution {execution} did not end"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn images_named(stack: &Stack, name: &str) -> Vec<aws_sdk_ec2::types::Image> {
    let images = stack
        .clients()
        .ec2
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("name")
                .values(name)
                .build(),
        )
        .send()
        .await
        .unwrap();
    images.images().to_vec()
}

/// Save -> update -> read back -> listed; the rule and target in EventBridge carry the input
/// the state machine expects: an execution started with it builds the image, tagged with the
/// schedule, and a repeated fire of the same slot builds nothing. Delete removes the rule.
#[tokio::test]
async fn schedules_round_trip_and_their_rule_input_builds_once_per_slot() {
    let stack = stack().await.unwrap();
    let clients = stack.clients();
    let instance = launch_instance(&clients.ec2, 2).await.unwrap();
    let name = unique("nightly");
    let prefix = unique("sched");
    let mut body = json!({
        "expression": "cron(0 3 * * ? *)",
        "name_template": format!("{prefix}-{{date}}-{{time}}"),
        "instance_id": instance,
        "description": "nightly <golden> image",
        "tags": {"team": "platform"},
        "retention": {"keep_last": 2},
    });

    let path = format!("/schedules/{name}");
    let (status, saved) = call(stack, Method::PUT, &path, Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    body["expression"] = json!("rate(1 day)");
    let (status, updated) = call(stack, Method::PUT, &path, Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    let (status, shown) = call(stack, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["expression"], "rate(1 day)");
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["definition"]["description"], "nightly <golden> image");
    assert_eq!(shown["definition"]["retention"]["keep_last"], 2);
    let (status, listed) = call(stack, Method::GET, "/schedules?limit=100", None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert!(listed["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == name.as_str()));

    let rule = format!("amiforge-{name}");
    let described = clients
        .events
        .describe_rule()
        .name(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(described.schedule_expression(), Some("rate(1 day)"));
    let targets = clients
        .events
        .list_targets_by_rule()
        .rule(&rule)
        .send()
        .await
        .unwrap();
    let [target] = targets.targets() else {
        panic!("one target expected: {targets:?}");
    };
    assert_eq!(
        target.arn(),
        stack.var("AMIFORGE_BUILD_STATE_MACHINE_ARN").unwrap()
    );
    assert_eq!(
        target.role_arn(),
        Some(stack.var("AMIFORGE_SCHEDULE_ROLE_ARN").unwrap().as_str())
    );
    let transformer = target.input_transformer().unwrap();
    assert_eq!(
        transformer
            .input_paths_map()
            .unwrap()
            .get("time")
            .map(String::as_str),
        Some("$.time")
    );
    let template = transformer.input_template().to_owned();

    let first = unique("fire");
    let status = fire(stack, &template, "2026-12-03T03:00:00Z", &first).await;
    assert_eq!(status, "SUCCEEDED");
    let (status, job) = call(stack, Method::GET, &format!("/jobs/{first}"), None).await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["schedule"], name.as_str());
    let image_name = format!("{prefix}-2026-12-03-0300");
    assert_eq!(job["image_name"], image_name.as_str());
    let images = images_named(stack, &image_name).await;
    let [image] = images.as_slice() else {
        panic!("one image expected: {images:?}");
    };
    assert!(image
        .tags()
        .iter()
        .any(|t| t.key() == Some(TagKey::SCHEDULE) && t.value() == Some(name.as_str())));

    // EventBridge delivering the same event again: the slot is built, nothing happens.
    let repeat = unique("fire");
    let status = fire(stack, &template, "2026-12-03T03:00:00Z", &repeat).await;
    assert_eq!(status, "SUCCEEDED");
    let (status, _) = call(stack, Method::GET, &format!("/jobs/{repeat}"), None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a repeated fire recorded a job"
    );
    assert_eq!(images_named(stack, &image_name).await.len(), 1);

    let (status, _) = call(stack, Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(stack, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(clients
        .events
        .describe_rule()
        .name(&rule)
        .send()
        .await
        .is_err());
}

/// A schedule that would fail when it fires is refused when it is saved, naming the field.
#[tokio::test]
async fn schedules_that_cannot_build_are_refused_when_saved() {
    let stack = stack().await.unwrap();
    let name = unique("bad");
    let body = json!({
        "expression": "cron(0 3 * * *)",
        "name_template": "web:{date}",
        "instance_id": "i-0123abcd",
    });
    let (status, answer) = call(
        stack,
        Method::PUT,
        &format!("/schedules/{name}"),
        Some(&body),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let fields: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["expression", "name_template"]);
    let stored = stack
        .clients()
        .events
        .describe_rule()
        .name(format!("amiforge-{name}"))
        .send()
        .await;
    assert!(stored.is_err(), "a refused schedule wrote a rule");
}

/// An image as the factory leaves it: a snapshot tagged with the image, a manifest folder,
/// and the job, manifest and schedule tags on the image.
struct Made {
    image_id: String,
    snapshot_id: String,
    manifest_key: String,
}

async fn make_image(stack: &Stack, name: &str, tags: &[(&str, String)], prefix: &str) -> Made {
    let clients = stack.clients();
    let volume = clients
        .ec2
        .create_volume()
        .availability_zone("us-east-1a")
        .size(1)
        .send()
        .await
        .unwrap();
    let snapshot = clients
        .ec2
        .create_snapshot()
        .volume_id(volume.volume_id().unwrap())
        .send()
        .await
        .unwrap();
    let snapshot_id = snapshot.snapshot_id().unwrap().to_owned();
    let bucket = stack.var("AMIFORGE_BUCKET").unwrap();
    let manifest_key = format!("{prefix}/{name}/image.manifest.json");
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key(&manifest_key)
        .body(ByteStream::from_static(b"{}"))
        .send()
        .await
        .unwrap();
    let mut all: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(v).build())
        .collect();
    if tags.iter().any(|(k, _)| *k == TagKey::JOB_ID) {
        all.push(
            Tag::builder()
                .key(TagKey::MANIFEST)
                .value(format!("s3://{bucket}/{manifest_key}"))
                .build(),
        );
    }
    let image = clients
        .ec2
        .register_image()
        .name(name)
        .root_device_name("/dev/xvda")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Image)
                .set_tags(Some(all.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let image_id = image.image_id().unwrap().to_owned();
    // The emulator drops tags given to RegisterImage: tag again, as the register step does.
    clients
        .ec2
        .create_tags()
        .resources(&image_id)
        .set_tags(Some(all))
        .send()
        .await
        .unwrap();
    clients
        .ec2
        .create_tags()
        .resources(&snapshot_id)
        .tags(
            Tag::builder()
                .key(TagKey::IMAGE_ID)
                .value(&image_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    Made {
        image_id,
        snapshot_id,
        manifest_key,
    }
}

async fn image_exists(stack: &Stack, id: &str) -> bool {
    let images = stack
        .clients()
        .ec2
        .describe_images()
        .owners("self")
        .send()
        .await
        .unwrap();
    images.images().iter().any(|i| i.image_id() == Some(id))
}

async fn snapshot_exists(stack: &Stack, id: &str) -> bool {
    let snapshots = stack
        .clients()
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap();
    snapshots
        .snapshots()
        .iter()
        .any(|s| s.snapshot_id() == Some(id))
}

async fn object_exists(stack: &Stack, key: &str) -> bool {
    stack
        .clients()
        .s3
        .head_object()
        .bucket(stack.var("AMIFORGE_BUCKET").unwrap())
        .key(key)
        .send()
        .await
        .is_ok()
}

/// Five images of a schedule and keep 2: the three oldest go with their snapshots and
/// manifests; an image of another schedule and an image amiforge did not make (carrying the
/// schedule's tag, but no job tag, and older than all five) stay, the latter reported as kept.
#[tokio::test]
async fn retention_purges_the_oldest_images_of_its_schedule_only() {
    let stack = stack().await.unwrap();
    let (pipeline, store) = stack.pipeline().await.unwrap();
    let schedule = unique("weekly");
    let prefix = unique("retention");
    // Made first, so that by creation time they are older than the schedule's five.
    let other = make_image(
        stack,
        &unique("other-schedule"),
        &[
            (TagKey::JOB_ID, unique("job")),
            (TagKey::SCHEDULE, unique("other")),
        ],
        &prefix,
    )
    .await;
    let foreign = make_image(
        stack,
        &format!("{schedule}-2026-11-30"),
        &[(TagKey::SCHEDULE, schedule.clone())],
        &prefix,
    )
    .await;
    let mut made = Vec::new();
    for day in 1..=5 {
        let name = format!("{schedule}-2026-12-0{day}");
        let tags = [
            (TagKey::JOB_ID, unique("job")),
            (TagKey::SCHEDULE, schedule.clone()),
        ];
        made.push(make_image(stack, &name, &tags, &prefix).await);
    }

    let job_id = JobId::parse(&unique("job")).unwrap();
    let mut job = Job::new(
        job_id.clone(),
        JobKind::Build,
        json!({}),
        chrono::Utc::now(),
    );
    job.schedule = Some(schedule.clone());
    job.image_id = Some(made[4].image_id.clone());
    store.create(&job).await.unwrap();
    let output = scheduled::retain(
        &pipeline,
        RetainInput {
            job_id: job_id.clone(),
            retention: Retention {
                keep_last: Some(2),
                max_age_days: None,
            },
        },
    )
    .await
    .unwrap();

    assert_eq!(output.images, 6, "{output:?}");
    assert_eq!(output.images_deregistered, 3, "{output:?}");
    // Each image has two snapshots: ours, tagged with the image, and the root snapshot the
    // emulator maps into every image it registers.
    assert_eq!(output.snapshots_deleted, 6, "{output:?}");
    assert_eq!(output.objects_deleted, 3, "{output:?}");
    assert_eq!(output.failed, 0);
    for (i, image) in made.iter().enumerate() {
        let kept = i >= 3;
        assert_eq!(
            image_exists(stack, &image.image_id).await,
            kept,
            "image {i}"
        );
        assert_eq!(
            snapshot_exists(stack, &image.snapshot_id).await,
            kept,
            "snapshot {i}"
        );
        assert_eq!(
            object_exists(stack, &image.manifest_key).await,
            kept,
            "manifest {i}"
        );
    }
    for untouched in [&other, &foreign] {
        assert!(image_exists(stack, &untouched.image_id).await);
        assert!(snapshot_exists(stack, &untouched.snapshot_id).await);
        assert!(object_exists(stack, &untouched.manifest_key).await);
    }
    let noted = store.get(&job_id).await.unwrap();
    assert_eq!(noted.status, JobStatus::Queued);
    let report = noted.cleanup.unwrap();
    let kept: Vec<&Value> = report["retention"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"] == "kept")
        .collect();
    assert_eq!(kept.len(), 1, "{report}");
    assert_eq!(kept[0]["id"], foreign.image_id.as_str());
}

/// Accepts one HTTP request on a local port, answers 200, and hands back its body: the
/// stand-in for CloudFormation's presigned response URL.
fn response_catcher() -> (String, std::thread::JoinHandle<Value>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/response", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    });
    (url, handle)
}

/// Invokes the schedules function as CloudFormation would, and returns what it answered.
async fn custom_resource(
    stack: &Stack,
    kind: &str,
    schedules: &Value,
    old: Option<&Value>,
) -> Value {
    let (url, answer) = response_catcher();
    let mut event = json!({
        "RequestType": kind,
        "RequestId": unique("request"),
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/amiforge/1",
        "ResourceType": "Custom::AmiforgeSchedules",
        "LogicalResourceId": "DeclaredSchedules",
        "ResourceProperties": {"ServiceToken": "schedules", "Schedules": schedules.to_string()},
    });
    if kind != "Create" {
        event["PhysicalResourceId"] = json!("amiforge-declared-schedules");
    }
    if let Some(old) = old {
        event["OldResourceProperties"] = json!({"Schedules": old.to_string()});
    }
    let lambda = stack.var("AMIFORGE_LAMBDA_URL").unwrap();
    let invoked = Client::new()
        .post(format!(
            "{lambda}/2015-03-31/functions/schedules/invocations"
        ))
        .json(&event)
        .send()
        .await
        .unwrap();
    assert!(
        invoked.status().is_success(),
        "{}",
        invoked.text().await.unwrap()
    );
    tokio::task::spawn_blocking(move || answer.join().unwrap())
        .await
        .unwrap()
}

/// Schedules declared in the deployment template become the same rules the API writes:
/// created on stack create, dropped ones deleted on update, all deleted on stack delete; a bad
/// one fails the resource naming it and writes nothing.
#[tokio::test]
async fn schedules_declared_in_the_template_become_the_same_rules() {
    let stack = stack().await.unwrap();
    let instance = launch_instance(&stack.clients().ec2, 1).await.unwrap();
    let (keep, drop) = (unique("declared"), unique("declared"));
    let schedule = |expression: &str| {
        json!({
            "expression": expression,
            "instance_id": instance,
            "name_template": "declared-{date}",
            "retention": {"keep_last": 2},
        })
    };
    let both =
        json!({ keep.clone(): schedule("rate(1 day)"), drop.clone(): schedule("rate(7 days)") });

    let answer = custom_resource(stack, "Create", &both, None).await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    let (status, shown) = call(stack, Method::GET, &format!("/schedules/{keep}"), None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["definition"]["expression"], "rate(1 day)");
    assert_eq!(shown["definition"]["retention"]["keep_last"], 2);
    assert_eq!(
        shown["state_machine_arn"],
        stack
            .var("AMIFORGE_BUILD_STATE_MACHINE_ARN")
            .unwrap()
            .as_str()
    );

    let bad = json!({ keep.clone(): schedule("cron(0 3 * * *)") });
    let answer = custom_resource(stack, "Update", &bad, Some(&both)).await;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    assert!(answer["Reason"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{keep}.expression")));
    let (status, _) = call(stack, Method::GET, &format!("/schedules/{drop}"), None).await;
    assert_eq!(status, StatusCode::OK, "a failed update removed a schedule");

    let one = json!({ keep.clone(): schedule("rate(1 day)") });
    let answer = custom_resource(stack, "Update", &one, Some(&both)).await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    let (status, _) = call(stack, Method::GET, &format!("/schedules/{drop}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let answer = custom_resource(stack, "Delete", &one, None).await;
    assert_eq!(answer["Status"], "SUCCESS", "{answer}");
    let (status, _) = call(stack, Method::GET, &format!("/schedules/{keep}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
