//! The `amiforge` binary against the local stack's API, as a user runs it, with `--output
//! json` parsed and asserted. The binary is the one `cargo build --workspace` puts beside this
//! test's own executable.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::path::PathBuf;
use std::process::Output;

use amiforge_tests::{launch_instance, stack, unique, Stack};
use serde_json::Value;

const ACCOUNT: &str = "000000000042";

fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/cli-<hash> -> target/<profile>/amiforge
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("amiforge");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --bins`",
        path.display()
    );
    path
}

async fn amiforge(stack: &Stack, args: &[&str]) -> Output {
    let output = tokio::process::Command::new(binary())
        .args(["--output", "json", "--endpoint"])
        .arg(stack.var("AMIFORGE_ENDPOINT").unwrap())
        .args(["--region", &stack.var("AWS_REGION").unwrap()])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .await
        .unwrap();
    output
}

/// Runs a command that must succeed and returns its JSON.
async fn json(stack: &Stack, args: &[&str]) -> Value {
    let output = amiforge(stack, args).await;
    assert!(
        output.status.success(),
        "amiforge {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "amiforge {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn accounts(value: &Value) -> Vec<&str> {
    value["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

/// create --wait -> jobs -> list -> show -> share --private -> delete --dry-run -> delete
/// --wait, each through the binary; the image is gone at the end and `show` says so.
#[tokio::test]
async fn the_binary_builds_lists_shares_and_deletes() {
    let stack = stack().await.unwrap();
    let instance = launch_instance(&stack.clients().ec2, 2).await.unwrap();
    let name = unique("cli-image");

    let job = json(
        stack,
        &[
            "create",
            "--instance",
            &instance,
            "--name",
            &name,
            "--account",
            ACCOUNT,
            "--tag",
            "team=platform",
            "--wait",
            "--interval",
            "1",
        ],
    )
    .await;
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(accounts(&job["sharing_applied"]), [ACCOUNT]);
    let image_id = job["image_id"].as_str().unwrap().to_owned();
    let job_id = job["job_id"].as_str().unwrap().to_owned();

    let jobs = json(stack, &["jobs", "--status", "SUCCEEDED", "--limit", "100"]).await;
    assert!(jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|j| j["job_id"] == job_id.as_str()));

    let list = json(stack, &["list", "--owner", "self", "--name", &name]).await;
    assert_eq!(list["images"][0]["image_id"], image_id.as_str(), "{list}");
    assert_eq!(list["images"][0]["manifest_path"], job["manifest_path"]);

    let detail = json(stack, &["show", &image_id]).await;
    assert_eq!(
        accounts(&detail["launch_permissions"]),
        [ACCOUNT],
        "{detail}"
    );

    let change = json(stack, &["share", &image_id, "--private"]).await;
    assert_eq!(accounts(&change["removed"]), [ACCOUNT], "{change}");
    assert!(accounts(&change["launch_permissions"]).is_empty());

    let plan = json(
        stack,
        &["delete", &image_id, "--remove-s3-files", "--dry-run"],
    )
    .await;
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["images"][0]["plan"]["images"][0], image_id.as_str());
    let detail = json(stack, &["show", &image_id]).await;
    assert_eq!(detail["image_id"], image_id.as_str(), "a dry run keeps it");

    let purge = json(
        stack,
        &[
            "delete",
            &image_id,
            "--remove-s3-files",
            "--wait",
            "--interval",
            "1",
        ],
    )
    .await;
    assert_eq!(purge["status"], "SUCCEEDED", "{purge}");
    assert_eq!(purge["kind"], "purge");

    let gone = amiforge(stack, &["show", &image_id]).await;
    assert_eq!(gone.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(stderr.contains(&image_id), "{stderr}");
}

/// A bad request is refused before or by the API with exit status 2, naming each bad field,
/// and starts nothing.
#[tokio::test]
async fn bad_input_exits_2_naming_the_fields() {
    let stack = stack().await.unwrap();
    let name = unique("never");
    let output = amiforge(
        stack,
        &[
            "create",
            "--instance",
            "i-0123456789abcdef0",
            "--name",
            &format!("{name}!"),
            "--account",
            "1234",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("name"), "{stderr}");
    assert!(stderr.contains("1234"), "{stderr}");
    assert!(output.stdout.is_empty());

    let list = json(stack, &["jobs", "--limit", "100"]).await;
    assert!(
        !list.to_string().contains(&name),
        "a refused create made a job"
    );
}

fn args(owned: &[String]) -> Vec<&str> {
    owned.iter().map(String::as_str).collect()
}

/// schedules put -> show -> list -> put again (an update) -> delete through the binary; a bad
/// schedule exits 2 naming each bad field; the deleted schedule is gone.
#[tokio::test]
async fn the_binary_manages_schedules() {
    let stack = stack().await.unwrap();
    let instance = launch_instance(&stack.clients().ec2, 1).await.unwrap();
    let name = unique("cli-nightly");
    let put = |cron: &'static str| {
        vec![
            "schedules".to_owned(),
            "put".to_owned(),
            name.clone(),
            "--cron".to_owned(),
            cron.to_owned(),
            "--instance".to_owned(),
            instance.clone(),
            "--name-template".to_owned(),
            "cli-web-{date}".to_owned(),
            "--keep-last".to_owned(),
            "3".to_owned(),
            "--account".to_owned(),
            ACCOUNT.to_owned(),
        ]
    };

    let first = put("0 3 * * ? *");
    let saved = json(stack, &args(&first)).await;
    assert_eq!(saved["expression"], "cron(0 3 * * ? *)", "{saved}");
    assert_eq!(saved["definition"]["retention"]["keep_last"], 3);
    let shown = json(stack, &["schedules", "show", &name]).await;
    assert_eq!(shown["definition"]["sharing"]["accounts"][0], ACCOUNT);
    let listed = json(stack, &["schedules", "list", "--limit", "100"]).await;
    assert!(listed["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == name.as_str()));
    let second = put("30 4 ? * MON *");
    let updated = json(stack, &args(&second)).await;
    assert_eq!(updated["expression"], "cron(30 4 ? * MON *)");

    let bad = amiforge(
        stack,
        &[
            "schedules",
            "put",
            &name,
            "--cron",
            "0 3 * * *",
            "--instance",
            &instance,
            "--name-template",
            "web:{date}",
        ],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("expression"), "{stderr}");
    assert!(stderr.contains("name_template"), "{stderr}");
    let still = json(stack, &["schedules", "show", &name]).await;
    assert_eq!(
        still["expression"], "cron(30 4 ? * MON *)",
        "a refused put changed it"
    );

    json(stack, &["schedules", "delete", &name]).await;
    let gone = amiforge(stack, &["schedules", "show", &name]).await;
    assert_eq!(gone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("does not exist"));
}
