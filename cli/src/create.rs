//! `amiforge create` and `amiforge register`: turn the flags into a build or register request,
//! send it to `POST /images` or `POST /images/register`, and with `--wait` follow the job it
//! started.

use std::collections::BTreeMap;

use amiforge::domain::SharingRequest;
use anyhow::{bail, Context, Result};
use http::Method;
use serde::Serialize;
use serde_json::Value;

use crate::api::Accepted;
use crate::args::{CreateArgs, Format, GlobalArgs, PollArgs, RegisterArgs};
use crate::client::Client;
use crate::{output, watch, Outcome};

/// The build request as `POST /images` takes it; fields no flag set are left out, so the
/// API's defaults apply.
#[derive(Debug, Serialize)]
struct BuildBody {
    instance_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    no_reboot: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    include_devices: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    exclude_devices: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sharing: Option<SharingRequest>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    product_codes: Vec<String>,
}

/// The register request as `POST /images/register` takes it.
#[derive(Debug, Serialize)]
struct RegisterBody {
    manifest_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sharing: Option<SharingRequest>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: BTreeMap<String, String>,
}

/// The tags as a map.
///
/// # Errors
/// A tag key given twice, so that no value is silently dropped.
fn tag_map(pairs: &[(String, String)]) -> Result<BTreeMap<String, String>> {
    let mut tags = BTreeMap::new();
    for (key, value) in pairs {
        if tags.insert(key.clone(), value.clone()).is_some() {
            bail!("tag {key:?} is given twice; give each tag key once");
        }
    }
    Ok(tags)
}

/// The JSON body the flags describe.
///
/// # Errors
/// A tag key given twice, so that no value is silently dropped.
pub fn request_body(args: &CreateArgs) -> Result<Value> {
    let tags = tag_map(&args.tags)?;
    let no_reboot = match (args.no_reboot, args.reboot) {
        (true, _) => Some(true),
        (false, true) => Some(false),
        (false, false) => None,
    };
    let body = BuildBody {
        instance_id: args.instance.clone(),
        name: args.name.clone(),
        description: args.description.clone(),
        no_reboot,
        include_devices: args.include_devices.clone(),
        exclude_devices: args.exclude_devices.clone(),
        sharing: args.sharing.any().then(|| args.sharing.request()),
        tags,
        product_codes: args.product_codes.clone(),
    };
    Ok(serde_json::to_value(body)?)
}

/// The JSON body of `amiforge register`.
///
/// # Errors
/// A tag key given twice.
pub fn register_body(args: &RegisterArgs) -> Result<Value> {
    let body = RegisterBody {
        manifest_path: args.manifest.clone(),
        name: args.name.clone(),
        description: args.description.clone(),
        sharing: args.sharing.any().then(|| args.sharing.request()),
        tags: tag_map(&args.tags)?,
    };
    Ok(serde_json::to_value(body)?)
}

/// Starts the build, prints the job, and follows it when asked.
///
/// # Errors
/// A bad flag before any request, then connection, HTTP and API errors.
pub async fn run(args: CreateArgs, global: &GlobalArgs) -> Result<Outcome> {
    let body = request_body(&args)?;
    let started = Start {
        path: &["images"],
        body: &body,
        idempotency_key: args.idempotency_key.as_deref(),
        wait: args.wait,
        poll: &args.poll,
    };
    start(started, global).await
}

/// Starts the register job, prints it, and follows it when asked.
///
/// # Errors
/// A bad flag before any request, then connection, HTTP and API errors, such as a manifest
/// that does not exist.
pub async fn register(args: RegisterArgs, global: &GlobalArgs) -> Result<Outcome> {
    let body = register_body(&args)?;
    let started = Start {
        path: &["images", "register"],
        body: &body,
        idempotency_key: args.idempotency_key.as_deref(),
        wait: args.wait,
        poll: &args.poll,
    };
    start(started, global).await
}

/// A job to start through the API.
struct Start<'a> {
    path: &'a [&'a str],
    body: &'a Value,
    idempotency_key: Option<&'a str>,
    wait: bool,
    poll: &'a PollArgs,
}

async fn start(job: Start<'_>, global: &GlobalArgs) -> Result<Outcome> {
    let client = Client::connect(&global.settings()).await?;
    let headers: Vec<(&str, &str)> = job
        .idempotency_key
        .map(|key| ("idempotency-key", key))
        .into_iter()
        .collect();
    let answer = client
        .send(Method::POST, job.path, &[], Some(job.body), &headers)
        .await?;
    let accepted: Accepted =
        serde_json::from_value(answer.clone()).context("reading the API's answer")?;

    match (global.output, job.wait) {
        (Format::Json, false) => output::emit(&output::json(&answer))?,
        (Format::Table, _) => output::emit(&output::accepted(&accepted))?,
        // Scripts get one JSON document: the final job, which names the execution too.
        (Format::Json, true) => {}
    }
    if !job.wait {
        return Ok(Outcome::Done);
    }
    if accepted.job_id.is_empty() {
        bail!("the API accepted the job but its answer names no job_id to follow");
    }
    watch::follow(&client, &accepted.job_id, job.poll, global.output).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use crate::client::tests::{fake_api, unsigned};
    use amiforge::domain::BuildRequest;
    use clap::Parser;
    use serde_json::json;

    fn create_args(flags: &[&str]) -> CreateArgs {
        let argv = ["amiforge", "create"].iter().chain(flags);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Create(args) => args,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn every_flag_lands_in_the_request_json() {
        let args = create_args(&[
            "--instance",
            "i-0123456789abcdef0",
            "--name",
            "web-1",
            "--description",
            "web tier",
            "--reboot",
            "--account",
            "012345678901",
            "--account",
            "000000000042",
            "--org",
            "arn:aws:organizations::123456789012:organization/o-abcdefghij",
            "--ou",
            "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34",
            "--create-volume-permission",
            "--exclude-device",
            "/dev/sdf",
            "--tag",
            "team=web",
            "--tag",
            "expr=a=b",
            "--product-code",
            "abc123",
        ]);
        assert_eq!(
            request_body(&args).unwrap(),
            json!({
                "instance_id": "i-0123456789abcdef0",
                "name": "web-1",
                "description": "web tier",
                "no_reboot": false,
                "exclude_devices": ["/dev/sdf"],
                "sharing": {
                    "public": false,
                    "accounts": ["012345678901", "000000000042"],
                    "organizations": ["arn:aws:organizations::123456789012:organization/o-abcdefghij"],
                    "organizational_units": ["arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"],
                    "create_volume_permission": true
                },
                "tags": {"expr": "a=b", "team": "web"},
                "product_codes": ["abc123"]
            })
        );
    }

    #[test]
    fn unset_flags_leave_the_api_defaults() {
        let args = create_args(&["--instance", "i-0123abcd", "--name", "web-1"]);
        assert_eq!(
            request_body(&args).unwrap(),
            json!({"instance_id": "i-0123abcd", "name": "web-1"})
        );
        let args = create_args(&[
            "--instance",
            "i-0123abcd",
            "--name",
            "web-1",
            "--no-reboot",
            "--public",
            "--include-device",
            "/dev/sda1",
        ]);
        assert_eq!(
            request_body(&args).unwrap(),
            json!({
                "instance_id": "i-0123abcd",
                "name": "web-1",
                "no_reboot": true,
                "include_devices": ["/dev/sda1"],
                "sharing": {"public": true, "accounts": [], "organizations": [],
                            "organizational_units": [], "create_volume_permission": false}
            })
        );
    }

    /// The API reads the body as the shared `BuildRequest`, which refuses unknown fields.
    #[test]
    fn the_request_json_is_a_valid_shared_build_request() {
        let args = create_args(&[
            "--instance",
            "i-0123abcd",
            "--name",
            "web-1",
            "--account",
            "012345678901",
            "--tag",
            "team=web",
        ]);
        let request: BuildRequest = serde_json::from_value(request_body(&args).unwrap()).unwrap();
        assert_eq!(request.sharing.accounts, ["012345678901"]);
        assert!(request.no_reboot);
        assert_eq!(request.tags.get("team").map(String::as_str), Some("web"));
    }

    #[test]
    fn a_tag_given_twice_is_refused() {
        let args = create_args(&[
            "--instance",
            "i-0123abcd",
            "--name",
            "web-1",
            "--tag",
            "team=a",
            "--tag",
            "team=b",
        ]);
        let err = request_body(&args).unwrap_err();
        assert!(err.to_string().contains("\"team\" is given twice"), "{err}");
    }

    #[tokio::test]
    async fn the_body_and_idempotency_key_are_posted_to_images() {
        let (endpoint, server) = fake_api(
            202,
            r#"{"job_id":"j1","status":"QUEUED","status_url":"/jobs/j1","execution_arn":"arn:x"}"#,
        );
        let args = create_args(&["--instance", "i-0123abcd", "--name", "web-1"]);
        let body = request_body(&args).unwrap();
        let answer = unsigned(&endpoint)
            .send(
                Method::POST,
                &["images"],
                &[],
                Some(&body),
                &[("idempotency-key", "k-1")],
            )
            .await
            .unwrap();

        let received = server.join().unwrap();
        assert_eq!(received.request_line, "POST /prod/images HTTP/1.1");
        assert_eq!(received.header("idempotency-key"), Some("k-1"));
        assert_eq!(received.header("content-type"), Some("application/json"));
        assert_eq!(received.json(), body);
        assert_eq!(answer["job_id"], "j1");
    }

    #[test]
    fn register_flags_become_the_register_body() {
        let argv = [
            "amiforge",
            "register",
            "--manifest",
            "s3://old-bundles/web/image.manifest.xml",
            "--name",
            "web legacy",
            "--account",
            "012345678901",
            "--tag",
            "team=web",
        ];
        let args = match Cli::try_parse_from(argv).unwrap().command {
            Command::Register(args) => args,
            other => panic!("parsed {other:?}"),
        };
        let body = register_body(&args).unwrap();
        assert_eq!(
            body,
            json!({
                "manifest_path": "s3://old-bundles/web/image.manifest.xml",
                "name": "web legacy",
                "sharing": {
                    "public": false,
                    "accounts": ["012345678901"],
                    "organizations": [],
                    "organizational_units": [],
                    "create_volume_permission": false,
                },
                "tags": {"team": "web"},
            })
        );
    }
}
