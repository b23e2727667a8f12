//! End to end on the local stack: `POST /images` for the demo instance until the job is
//! SUCCEEDED, and how that time splits over the states of the execution (from Step Functions'
//! execution history, or the job's own history when the emulator keeps none).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use amiforge_tests::Stack;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::stats::{Samples, Table};

/// How long one build may take before the benchmark gives up.
const TIMEOUT: Duration = Duration::from_secs(300);
/// How often the job is read while the build runs.
const POLL: Duration = Duration::from_millis(100);

/// Builds the demo instance `runs` times and returns the markdown.
///
/// # Errors
/// When a build fails, or does not end within five minutes.
pub async fn run(stack: &Stack, runs: usize) -> Result<String> {
    let endpoint = stack.var("AMIFORGE_ENDPOINT")?;
    let instance = stack.var("AMIFORGE_DEMO_INSTANCE_ID")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let sfn = stack.clients().sfn;

    let mut accepted = Samples::default();
    let mut observed = Samples::default();
    let mut recorded = Samples::default();
    let mut states: BTreeMap<(usize, String), Samples> = BTreeMap::new();
    let mut source = "execution history";
    let mut first_build = None;
    // Run 0 warms up: `cargo lambda watch` starts each function on its first invoke.
    for run in 0..=runs {
        let name = format!(
            "amiforge-bench-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let start = Instant::now();
        let response = http
            .post(format!("{endpoint}/images"))
            .json(&json!({"instance_id": instance, "name": name, "sharing": {"accounts": ["012345678901"]}}))
            .send()
            .await?;
        let status = response.status();
        let created: Value = response.json().await?;
        if !status.is_success() {
            bail!("POST /images: {status}: {created}");
        }
        let accepted_after = start.elapsed();
        let job_id = created["job_id"].as_str().context("no job_id")?.to_owned();

        let job = loop {
            let job: Value = http
                .get(format!("{endpoint}/jobs/{job_id}"))
                .send()
                .await?
                .json()
                .await?;
            match job["status"].as_str() {
                Some("SUCCEEDED") => break job,
                Some("FAILED") => bail!("build {job_id} failed: {}", job["error"]),
                _ if start.elapsed() > TIMEOUT => bail!("build {job_id} did not end: {job}"),
                _ => tokio::time::sleep(POLL).await,
            }
        };
        eprintln!("e2e run {run}: {job_id} in {:?}", start.elapsed());
        if run == 0 {
            first_build = Some((accepted_after, start.elapsed()));
            continue;
        }
        accepted.push_ms(accepted_after);
        observed.push_ms(start.elapsed());
        let at = |field: &str| -> Result<DateTime<Utc>> {
            Ok(
                DateTime::parse_from_rfc3339(job[field].as_str().context("no timestamp")?)?
                    .with_timezone(&Utc),
            )
        };
        recorded.push(millis(at("finished_at")? - at("created_at")?));

        let arn = job["execution_arn"].as_str().unwrap_or_default();
        let split = execution_split(&sfn, arn).await?;
        let split = if split.is_empty() {
            source = "job history";
            job_split(&job)?
        } else {
            split
        };
        for (i, (state, ms)) in split.into_iter().enumerate() {
            states.entry((i, state)).or_default().push(ms);
        }
    }

    let mut table = Table::new(&["what", "ms, median (min-max)"]);
    let spread = |s: &Samples| {
        format!(
            "{:.0} ({:.0}-{:.0})",
            s.median(),
            s.percentile(0.0),
            s.percentile(100.0)
        )
    };
    if let Some((accepted, done)) = first_build {
        table.row(vec![
            "warm-up build (cold functions if the stack just started): 202 / SUCCEEDED".into(),
            format!("{:.0} / {:.0}", millis_std(accepted), millis_std(done)),
        ]);
    }
    table.row(vec![
        "POST /images answered (202)".into(),
        spread(&accepted),
    ]);
    table.row(vec![
        "create request -> SUCCEEDED seen (polled every 100 ms)".into(),
        spread(&observed),
    ]);
    table.row(vec![
        "job created_at -> finished_at".into(),
        spread(&recorded),
    ]);
    for ((_, state), samples) in &states {
        table.row(vec![format!("  {state}"), spread(samples)]);
    }
    Ok(format!(
        "### End to end on the local stack\n\n{runs} builds (after one warm-up build) of the demo instance (two 8 GiB \
         volumes, shared with one account) through `POST /images`; the split per state is from \
         the {source}. The emulator completes snapshots at once, and the local stack waits \
         `AMIFORGE_POLL_MIN_SECONDS=1` before the first check.\n\n{}",
        table.render()
    ))
}

fn millis_std(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn millis(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}

/// Time spent in each state, in the order entered (repeated states summed).
async fn execution_split(sfn: &aws_sdk_sfn::Client, arn: &str) -> Result<Vec<(String, f64)>> {
    if arn.is_empty() {
        return Ok(Vec::new());
    }
    let history = sfn
        .get_execution_history()
        .execution_arn(arn)
        .max_results(1000)
        .send()
        .await?;
    let mut order: Vec<String> = Vec::new();
    let mut spent: BTreeMap<String, f64> = BTreeMap::new();
    let mut entered: Option<(String, f64)> = None;
    for event in history.events() {
        let at = event.timestamp().as_secs_f64() * 1000.0;
        if let Some(details) = event.state_entered_event_details() {
            entered = Some((details.name().to_owned(), at));
            if !order.iter().any(|n| n == details.name()) {
                order.push(details.name().to_owned());
            }
        } else if let Some(details) = event.state_exited_event_details() {
            if let Some((name, since)) = entered.take() {
                if name == details.name() {
                    *spent.entry(name).or_default() += at - since;
                }
            }
        }
    }
    Ok(order
        .into_iter()
        .map(|name| {
            let ms = spent.get(&name).copied().unwrap_or_default();
            (name, ms)
        })
        .collect())
}

/// Time between the job's recorded events, by the step each one started.
fn job_split(job: &Value) -> Result<Vec<(String, f64)>> {
    let events = job["history"].as_array().context("no history")?;
    let mut out = Vec::new();
    for pair in events.windows(2) {
        let at = |e: &Value| -> Result<DateTime<Utc>> {
            Ok(
                DateTime::parse_from_rfc3339(e["at"].as_str().context("no at")?)?
                    .with_timezone(&Utc),
            )
        };
        let step = pair[0]["step"].as_str().unwrap_or("?").to_owned();
        out.push((step, millis(at(&pair[1])? - at(&pair[0])?)));
    }
    Ok(out)
}
