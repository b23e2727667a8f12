//! The HTTP API over the local stack: the real `api` function behind `cargo lambda watch`'s
//! function URL, starting real builds through the emulator's Step Functions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::time::{Duration, Instant};

use amiforge_tests::{launch_instance, stack, unique, Stack};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(240);
const ACCOUNT: &str = "012345678901";

struct Api {
    base: String,
    http: Client,
}

impl Api {
    fn new(stack: &Stack) -> Self {
        Self {
            base: stack.var("AMIFORGE_ENDPOINT").unwrap(),
            http: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: {status}: not JSON ({e}): {text}"));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None, None).await
    }

    async fn put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body), None).await
    }

    /// Polls the job until it ends.
    async fn wait_for(&self, job_id: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let (status, job) = self.get(&format!("/jobs/{job_id}")).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if matches!(job["status"].as_str(), Some("SUCCEEDED" | "FAILED")) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {job_id} did not end in {TIMEOUT:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// create -> watch -> listed with its manifest path -> share with an account -> the detail
/// shows it -> unshare -> the same unshare again changes nothing. A repeated create with the
/// same idempotency key returns the same job.
#[tokio::test]
async fn create_watch_list_share_and_unshare() {
    let stack = stack().await.unwrap();
    let api = Api::new(stack);
    let instance = launch_instance(&stack.clients().ec2, 4).await.unwrap();
    let name = unique("api-image");
    let key = unique("key");
    let body = json!({
        "instance_id": instance,
        "name": name,
        "description": "made through the API",
        "tags": {"team": "platform"},
    });

    let (status, created) = api
        .call(Method::POST, "/images", Some(&body), Some(&key))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let job_id = created["job_id"].as_str().unwrap().to_owned();
    assert_eq!(created["status_url"], format!("/jobs/{job_id}"));
    assert!(created["execution_arn"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":{job_id}")));

    let (status, again) = api
        .call(Method::POST, "/images", Some(&body), Some(&key))
        .await;
    assert!(status.is_success(), "{again}");
    assert_eq!(again["job_id"], job_id.as_str(), "same key, same job");

    let job = api.wait_for(&job_id).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["percent"], 100);
    let image_id = job["image_id"].as_str().unwrap().to_owned();
    let manifest = job["manifest_path"].as_str().unwrap().to_owned();

    let (status, jobs) = api.get("/jobs?status=SUCCEEDED&limit=100").await;
    assert_eq!(status, StatusCode::OK);
    assert!(jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["job_id"] == job_id.as_str()));

    let (status, list) = api.get(&format!("/images?owner=self&name={name}")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let entries = list["images"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["image_id"], image_id.as_str());
    assert_eq!(entries[0]["name"], name.as_str());
    assert_eq!(entries[0]["manifest_path"], manifest.as_str());
    assert_eq!(entries[0]["job_id"], job_id.as_str());

    let path = format!("/images/{image_id}/permissions");
    let (status, shared) = api.put(&path, &json!({"accounts": [ACCOUNT]})).await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    assert_eq!(strings(&shared["added"]["accounts"]), [ACCOUNT]);
    assert!(strings(&shared["removed"]["accounts"]).is_empty());

    let (status, detail) = api.get(&format!("/images/{image_id}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(
        strings(&detail["launch_permissions"]["accounts"]),
        [ACCOUNT]
    );
    assert_eq!(detail["launch_permissions"]["public"], false);
    assert_eq!(detail["manifest_path"], manifest.as_str());
    assert_eq!(detail["job"]["job_id"], job_id.as_str());
    assert!(!detail["snapshots"].as_array().unwrap().is_empty());

    let (status, unshared) = api.put(&path, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{unshared}");
    assert_eq!(strings(&unshared["removed"]["accounts"]), [ACCOUNT]);
    assert!(strings(&unshared["launch_permissions"]["accounts"]).is_empty());

    let (status, repeat) = api.put(&path, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{repeat}");
    for side in ["added", "removed"] {
        assert!(strings(&repeat[side]["accounts"]).is_empty(), "{repeat}");
        assert_eq!(repeat[side]["public"], false, "{repeat}");
    }
    let (_, detail) = api.get(&format!("/images/{image_id}")).await;
    assert!(strings(&detail["launch_permissions"]["accounts"]).is_empty());
}

/// A body with several bad fields is refused with one error per field, and starts nothing.
#[tokio::test]
async fn bad_requests_name_every_field_and_start_nothing() {
    let stack = stack().await.unwrap();
    let api = Api::new(stack);
    let (_, before) = api.get("/jobs?limit=100").await;
    let body = json!({
        "instance_id": "i-nothex",
        "name": "x",
        "sharing": {"accounts": ["12345"], "organizations": ["arn:aws:organizations::1:organization/o-"]},
        "tags": {"aws:reserved": "v"},
    });
    let (status, answer) = api.call(Method::POST, "/images", Some(&body), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let fields: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 5, "{answer}");
    assert!(answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["code"] == answer["error"]["code"]));
    let (_, after) = api.get("/jobs?limit=100").await;
    let ids = |page: &Value| -> Vec<String> {
        page["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["job_id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Other tests may start jobs meanwhile; none of the new ones may be ours.
    for id in ids(&after).iter().filter(|id| !ids(&before).contains(id)) {
        let (_, job) = api.get(&format!("/jobs/{id}")).await;
        assert_ne!(
            job["request"]["name"], "x",
            "a refused request made job {id}"
        );
    }

    let (status, answer) = api.get("/images/ami-12").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = api.get("/images/ami-0123456789abcdef0").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = api.get(&format!("/jobs/{}", unique("missing"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, answer) = api.call(Method::PATCH, "/jobs", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{answer}");
}

/// A built image's manifest registered again through `POST /images/register` (after its image
/// was deregistered) gives a new image of the same name, tagged with the new job, while the
/// snapshots stay the build's; a legacy bundle is registered by its location; a missing
/// manifest is a 400 on `manifest_path` that starts nothing.
#[tokio::test]
async fn register_existing_manifests() {
    let stack = stack().await.unwrap();
    let api = Api::new(stack);
    let clients = stack.clients();
    let instance = launch_instance(&clients.ec2, 2).await.unwrap();
    let name = unique("register-image");
    let body = json!({"instance_id": instance, "name": name});
    let (status, created) = api.call(Method::POST, "/images", Some(&body), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let build = api.wait_for(created["job_id"].as_str().unwrap()).await;
    assert_eq!(build["status"], "SUCCEEDED", "{build}");
    let first_image = build["image_id"].as_str().unwrap().to_owned();
    let manifest = build["manifest_path"].as_str().unwrap().to_owned();
    clients
        .ec2
        .deregister_image()
        .image_id(&first_image)
        .send()
        .await
        .unwrap();

    let body = json!({"manifest_path": manifest, "sharing": {"accounts": [ACCOUNT]}});
    let (status, started) = api
        .call(Method::POST, "/images/register", Some(&body), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let job = api.wait_for(started["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["kind"], "register");
    assert_eq!(job["image_name"], name.as_str());
    let image_id = job["image_id"].as_str().unwrap();
    assert_ne!(image_id, first_image);
    assert!(job["snapshot_ids"].as_array().unwrap().is_empty(), "{job}");
    let (_, detail) = api.get(&format!("/images/{image_id}")).await;
    assert_eq!(detail["manifest_path"], manifest.as_str(), "{detail}");
    assert_eq!(detail["job"]["job_id"], job["job_id"]);
    assert_eq!(
        strings(&detail["launch_permissions"]["accounts"]),
        [ACCOUNT]
    );

    let bucket = stack.var("AMIFORGE_BUCKET").unwrap();
    let key = format!("legacy/{}/image.manifest.xml", unique("bundle"));
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"<manifest/>",
        ))
        .send()
        .await
        .unwrap();
    let legacy_name = unique("legacy image");
    let body = json!({
        "manifest_path": format!("s3://{bucket}/{key}"),
        "name": legacy_name,
        "description": "bundled in 2014",
    });
    let (status, started) = api
        .call(Method::POST, "/images/register", Some(&body), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let job = api.wait_for(started["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(job["image_name"], legacy_name.as_str());

    let (_, before) = api.get("/jobs?limit=100").await;
    let body = json!({"manifest_path": format!("s3://{bucket}/legacy/missing/image.manifest.xml"), "name": "missing bundle"});
    let (status, refused) = api
        .call(Method::POST, "/images/register", Some(&body), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["field"], "manifest_path");
    let (_, after) = api.get("/jobs?limit=100").await;
    let newest = |page: &Value| page["jobs"][0]["job_id"].clone();
    assert!(
        newest(&after) == newest(&before)
            || after["jobs"][0]["request"]["name"] != "missing bundle",
        "a refused register recorded a job"
    );
}
