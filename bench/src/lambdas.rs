//! The Lambda binaries as the Lambda service runs them: zip size, cold start (spawn until the
//! runtime asks for its first event), warm invoke latency (event handed out until the result
//! is posted), and peak RSS, each binary served by [`RuntimeApi`].

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use amiforge::domain::JobId;
use amiforge::jobs::{DynamoJobStore, JobStore};
use amiforge_tests::Stack;
use anyhow::{bail, Context, Result};
use serde_json::json;
use tokio::process::{Child, Command};

use crate::runtime_api::{Note, RuntimeApi};
use crate::stats::{verdict, Samples, Table};

/// Targets of the issue, per binary.
const INIT_TARGET_MS: f64 = 20.0;
const WARM_TARGET_MS: f64 = 5.0;
const RSS_TARGET_MB: f64 = 32.0;
const ZIP_TARGET_MB: f64 = 6.0;

/// How long a binary may take to ask for an event or answer one before the run is abandoned.
const PATIENCE: Duration = Duration::from_secs(30);

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the release binaries are.
    pub bin_dir: PathBuf,
    /// Processes started per binary.
    pub cold_runs: usize,
    /// Events served per process.
    pub warm_invokes: usize,
    /// Where the zips and the functions' logs go.
    pub work_dir: PathBuf,
    /// Only these binaries, when not empty.
    pub only: Vec<String>,
}

/// One event kind for one binary.
struct Case {
    binary: &'static str,
    /// What the event exercises, for the table.
    event: &'static str,
    payload: String,
    /// Whether the event reaches the local stack.
    aws: bool,
    /// Whether the function should post a response (not an error).
    expect_ok: bool,
}

/// An event of API Gateway's HTTP API (payload 2.0) for `GET path`.
fn http_get(path: &str) -> String {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": "GET",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "amiforge-bench"
            },
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "time": "03/Dec/2026:00:00:00 +0000",
            "timeEpoch": 1_796_256_000_000_u64
        },
        "isBase64Encoded": false
    })
    .to_string()
}

fn cases(job_id: &str) -> Vec<Case> {
    let bad_job = json!({"job_id": "not a job id!"}).to_string();
    let mut cases = vec![
        Case {
            binary: "snapshot",
            event: "check, invalid job id",
            payload: json!({"action": "check", "job_id": "not a job id!"}).to_string(),
            aws: false,
            expect_ok: false,
        },
        Case {
            binary: "bundle",
            event: "invalid job id",
            payload: bad_job.clone(),
            aws: false,
            expect_ok: false,
        },
        Case {
            binary: "register",
            event: "invalid job id",
            payload: bad_job.clone(),
            aws: false,
            expect_ok: false,
        },
        Case {
            binary: "set-permissions",
            event: "invalid job id",
            payload: bad_job,
            aws: false,
            expect_ok: false,
        },
        Case {
            binary: "purge",
            event: "rollback, invalid job id",
            payload: json!({"action": "rollback", "job_id": "not a job id!"}).to_string(),
            aws: false,
            expect_ok: false,
        },
        Case {
            binary: "api",
            event: "GET /jobs/{invalid} (400)",
            payload: http_get("/jobs/not%20a%20job"),
            aws: false,
            expect_ok: true,
        },
    ];
    cases.push(Case {
        binary: "api",
        event: "GET /jobs/{id} (DynamoDB GetItem)",
        payload: http_get(&format!("/jobs/{job_id}")),
        aws: true,
        expect_ok: true,
    });
    cases
}

/// What one binary measured.
#[derive(Default)]
struct Measured {
    cold_ms: Samples,
    warm_ms: Samples,
    rss_mb: Samples,
    failures: usize,
}

/// Runs every binary and returns the markdown.
///
/// # Errors
/// When a binary is missing, cannot be zipped, or never asks for an event.
pub async fn run(stack: &Stack, options: &Options) -> Result<String> {
    std::fs::create_dir_all(&options.work_dir)?;
    let job_id = crate::store::seed_job(stack).await?;
    let aws_ms = get_item_time(stack, &job_id, options.warm_invokes.max(20)).await?;

    let mut table = Table::new(&[
        "binary",
        "event",
        "zip MB (<= 6)",
        "init ms (<= 20)",
        "warm invoke ms (<= 5 + AWS)",
        "peak RSS MB (<= 32)",
    ]);
    let mut zips = std::collections::HashMap::new();
    for case in cases(job_id.as_str()) {
        if !options.only.is_empty() && !options.only.iter().any(|b| b == case.binary) {
            continue;
        }
        let binary = options.bin_dir.join(case.binary);
        if !binary.exists() {
            bail!(
                "{} is missing: build with cargo build --release --bins",
                binary.display()
            );
        }
        let zip_mb = match zips.get(case.binary) {
            Some(size) => *size,
            None => {
                let size = zip_size(&binary, &options.work_dir, case.binary)?;
                zips.insert(case.binary, size);
                size
            }
        };
        let measured = measure(stack, &binary, &case, options).await?;
        let warm_target = if case.aws {
            WARM_TARGET_MS + aws_ms.median()
        } else {
            WARM_TARGET_MS
        };
        let failures = if measured.failures > 0 {
            format!(" ({} unexpected answers)", measured.failures)
        } else {
            String::new()
        };
        table.row(vec![
            case.binary.to_owned(),
            format!("{}{failures}", case.event),
            format!("{zip_mb:.2} {}", verdict(zip_mb <= ZIP_TARGET_MB)),
            format!(
                "{} {}",
                measured.cold_ms.summary(1),
                verdict(measured.cold_ms.median() <= INIT_TARGET_MS)
            ),
            format!(
                "{} {}",
                measured.warm_ms.summary(2),
                verdict(measured.warm_ms.median() <= warm_target)
            ),
            format!(
                "{} {}",
                measured.rss_mb.summary(1),
                verdict(measured.rss_mb.median() <= RSS_TARGET_MB)
            ),
        ]);
    }
    Ok(format!(
        "### Lambda binaries\n\n{} cold starts per row, {} warm invokes per start; median (p10-p90). \
         Events marked invalid fail validation before any AWS call, so they show our own overhead \
         (runtime, decoding, error reporting). The same DynamoDB GetItem made directly from the \
         bench takes {} ms on the local stack.\n\n{}",
        options.cold_runs,
        options.warm_invokes,
        aws_ms.summary(2),
        table.render()
    ))
}

/// The time of the AWS call behind `GET /jobs/{id}`, made from here.
async fn get_item_time(stack: &Stack, job_id: &JobId, count: usize) -> Result<Samples> {
    let store = DynamoJobStore::new(stack.clients().dynamodb, stack.var("AMIFORGE_JOBS_TABLE")?);
    store.get(job_id).await?;
    let mut samples = Samples::default();
    for _ in 0..count {
        let start = Instant::now();
        store.get(job_id).await?;
        samples.push_ms(start.elapsed());
    }
    Ok(samples)
}

/// The binary zipped as the Lambda service takes it: one file, `bootstrap`, deflated.
fn zip_size(binary: &Path, work_dir: &Path, name: &str) -> Result<f64> {
    let dir = work_dir.join(format!("zip-{name}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::copy(binary, dir.join("bootstrap"))?;
    let zip = work_dir.join(format!("{name}.zip"));
    let _ = std::fs::remove_file(&zip);
    let status = std::process::Command::new("zip")
        .arg("-q")
        .arg(&zip)
        .arg("bootstrap")
        .current_dir(&dir)
        .status()
        .context("running zip")?;
    if !status.success() {
        bail!("zip failed for {name}");
    }
    Ok(std::fs::metadata(&zip)?.len() as f64 / 1_000_000.0)
}

async fn measure(stack: &Stack, binary: &Path, case: &Case, options: &Options) -> Result<Measured> {
    let mut measured = Measured::default();
    for run in 0..options.cold_runs {
        let mut api = RuntimeApi::start().await?;
        let log = options.work_dir.join(format!("{}.log", case.binary));
        let started = Instant::now();
        let mut child = spawn(stack, binary, case.binary, &api.address(), &log)?;
        let first = wait_for_next(&mut api, &mut child, binary).await?;
        measured.cold_ms.push_ms(first - started);

        for invoke in 0..options.warm_invokes {
            let request_id = format!("bench-{run}-{invoke}");
            api.push(&request_id, &case.payload);
            let (sent, answered, ok, body) = wait_for_answer(&mut api, &request_id).await?;
            measured.warm_ms.push_ms(answered - sent);
            if ok != case.expect_ok || (case.aws && !body.contains("\"statusCode\":200")) {
                measured.failures += 1;
                if measured.failures == 1 {
                    eprintln!("{} {}: unexpected answer: {body}", case.binary, case.event);
                }
            }
        }
        measured.rss_mb.push(peak_rss_mb(&child)?);
        child.kill().await?;
    }
    Ok(measured)
}

fn spawn(stack: &Stack, binary: &Path, name: &str, api: &str, log: &Path) -> Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut command = Command::new(binary);
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("AWS_LAMBDA_RUNTIME_API", api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("RUST_LOG", "info");
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AMIFORGE_JOBS_TABLE",
        "AMIFORGE_BUCKET",
        "AMIFORGE_PREFIX",
        "AMIFORGE_BUILD_STATE_MACHINE_ARN",
        "AMIFORGE_PURGE_STATE_MACHINE_ARN",
    ] {
        command.env(var, stack.var(var)?);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    Ok(command.spawn()?)
}

async fn wait_for_next(api: &mut RuntimeApi, child: &mut Child, binary: &Path) -> Result<Instant> {
    loop {
        let note = tokio::select! {
            note = tokio::time::timeout(PATIENCE, api.next_note()) => note,
            status = child.wait() => bail!("{} exited before asking for an event: {status:?}", binary.display()),
        };
        match note.with_context(|| format!("{} never asked for an event", binary.display()))?? {
            Note::NextRequested(at) => return Ok(at),
            Note::InitError(body) => bail!("{} failed to start: {body}", binary.display()),
            _ => {}
        }
    }
}

async fn wait_for_answer(
    api: &mut RuntimeApi,
    request_id: &str,
) -> Result<(Instant, Instant, bool, String)> {
    let mut sent = None;
    loop {
        let note = tokio::time::timeout(PATIENCE, api.next_note())
            .await
            .with_context(|| format!("no answer to {request_id}"))??;
        match note {
            Note::EventSent { request_id: id, at } if id == request_id => sent = Some(at),
            Note::Answered {
                request_id: id,
                ok,
                body,
                at,
            } if id == request_id => {
                let sent = sent.context("an answer before its event was sent")?;
                return Ok((sent, at, ok, body));
            }
            _ => {}
        }
    }
}

/// The child's peak resident set (`VmHWM`), in MB.
fn peak_rss_mb(child: &Child) -> Result<f64> {
    let pid = child.id().context("the function already exited")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .context("no VmHWM")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024.0 / 1_000_000.0)
}
