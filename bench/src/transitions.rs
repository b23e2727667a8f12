//! State transitions per build as a function of snapshot duration: the build-image state
//! machine (read from `statemachine/build-image.asl.json`) walked state by state, with the
//! snapshot step answering as it would for a snapshot that progresses evenly over the given
//! duration, its waits taken from the library's own schedule (`next_wait`, `Progress`).

use std::collections::HashMap;
use std::path::Path;

use amiforge::domain::{next_wait, PollBounds, Progress, SnapshotSample};
use amiforge::Config;
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use crate::stats::{verdict, Table};

/// Step Functions Standard, USD per state transition ($0.025 per 1,000).
const PRICE_PER_TRANSITION: f64 = 0.025 / 1000.0;
/// The target of the issue.
const TARGET: usize = 20;
/// Simulated snapshot durations, in seconds.
const DURATIONS: [(&str, i64); 4] = [
    ("1 min", 60),
    ("10 min", 600),
    ("60 min", 3600),
    ("4 h", 4 * 3600),
];

/// A snapshot set that progresses evenly from `started` to `started + duration`.
struct Snapshot {
    started: DateTime<Utc>,
    duration: Duration,
}

impl Snapshot {
    /// What DescribeSnapshots would report at `now`: whole percents, completed at the end.
    fn sample(&self, now: DateTime<Utc>) -> SnapshotSample {
        let elapsed = (now - self.started).num_milliseconds().max(0);
        let total = self.duration.num_milliseconds().max(1);
        let completed = elapsed >= total;
        SnapshotSample {
            size_gib: 100,
            percent: u8::try_from((elapsed * 100 / total).min(100)).unwrap_or(100),
            completed,
            started_at: Some(self.started),
        }
    }
}

/// What one build cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// States entered, which is what Standard workflows bill.
    pub transitions: usize,
    /// Times the check step ran.
    pub checks: u32,
    /// Seconds from the snapshot's end until the build noticed it.
    pub lag_seconds: i64,
}

/// Walks the machine for one build whose snapshot takes `duration`, with `bounds`.
///
/// # Errors
/// When the definition holds a state this walker does not know, or never ends.
pub fn walk(asl: &Value, duration: Duration, bounds: PollBounds) -> Result<Walk> {
    let states = asl["States"].as_object().context("no States")?;
    let mut name = asl["StartAt"].as_str().context("no StartAt")?.to_owned();
    let started = DateTime::<Utc>::UNIX_EPOCH;
    let snapshot = Snapshot { started, duration };
    let mut now = started;
    let mut checks = 0u32;
    let mut output: HashMap<&str, String> = HashMap::new();
    let mut transitions = 0;

    loop {
        transitions += 1;
        if transitions > 100_000 {
            bail!("the walk did not end");
        }
        let state = &states[&name];
        let next = match state["Type"].as_str() {
            Some("Task") => {
                let resource = state["Resource"].as_str().unwrap_or_default();
                if resource.contains("SnapshotFunctionArn") {
                    // What the snapshot step answers: `start` waits the minimum, `check`
                    // asks the library.
                    let sample = snapshot.sample(now);
                    let progress = Progress::of(std::slice::from_ref(&sample), now);
                    let wait = match state["Parameters"]["action"].as_str() {
                        Some("start") => bounds.min_seconds,
                        _ => {
                            let wait = next_wait(progress.eta_seconds, checks, bounds);
                            checks += 1;
                            wait
                        }
                    };
                    let done = progress.percent == 100;
                    output.insert(
                        "$.snapshots.state",
                        if done { "completed" } else { "pending" }.to_owned(),
                    );
                    output.insert(
                        "$.snapshots.wait_seconds",
                        if done { 0 } else { wait }.to_string(),
                    );
                }
                state["Next"].as_str()
            }
            Some("Choice") => {
                let mut chosen = None;
                for choice in state["Choices"]
                    .as_array()
                    .context("Choice without Choices")?
                {
                    if matches(choice, &output).with_context(|| format!("state {name}"))? {
                        chosen = Some(choice);
                        break;
                    }
                }
                chosen.map_or(state["Default"].as_str(), |c| c["Next"].as_str())
            }
            Some("Wait") => {
                let seconds: i64 = match state["SecondsPath"].as_str() {
                    Some(path) => output
                        .get(path)
                        .with_context(|| format!("{name}: nothing at {path}"))?
                        .parse()?,
                    None => state["Seconds"].as_i64().context("Wait without Seconds")?,
                };
                now += Duration::seconds(seconds);
                state["Next"].as_str()
            }
            Some("Succeed") => break,
            other => bail!("{name}: state type {other:?} not expected on the success path"),
        };
        name = next
            .with_context(|| format!("{name}: no next state"))?
            .to_owned();
    }
    Ok(Walk {
        transitions,
        checks,
        lag_seconds: (now - started - duration).num_seconds(),
    })
}

/// Whether a Choice rule holds for a build started by hand (no register, schedule or
/// retention input), given what the snapshot step answered.
fn matches(choice: &Value, output: &HashMap<&str, String>) -> Result<bool> {
    let variable = choice["Variable"]
        .as_str()
        .context("a rule without Variable")?;
    let value = output.get(variable);
    if let Some(expected) = choice.get("StringEquals") {
        Ok(value.map(String::as_str) == expected.as_str())
    } else if let Some(expected) = choice.get("IsPresent") {
        Ok(Some(value.is_some()) == expected.as_bool())
    } else if let Some(expected) = choice.get("BooleanEquals") {
        Ok(value.map(|v| v == "true") == expected.as_bool())
    } else {
        bail!("a Choice rule on {variable} this walker does not evaluate: {choice}")
    }
}

/// The table for the deployed poll bounds, a fixed 15 s poll, and a longer maximum wait.
///
/// # Errors
/// When the definition cannot be read or walked.
pub fn run(asl_path: &Path) -> Result<String> {
    let asl: Value = serde_json::from_str(
        &std::fs::read_to_string(asl_path)
            .with_context(|| format!("reading {}", asl_path.display()))?,
    )?;
    // The deployed defaults, from the configuration code itself.
    let defaults = Config::from_vars(&HashMap::from([
        (amiforge::config::JOBS_TABLE.to_owned(), "jobs".to_owned()),
        (amiforge::config::BUCKET.to_owned(), "bucket".to_owned()),
    ]))?
    .poll;
    let schedules = [
        (
            format!(
                "deployed: half the ETA, {}-{} s",
                defaults.min_seconds, defaults.max_seconds
            ),
            defaults,
        ),
        (
            "fixed 15 s poll".to_owned(),
            PollBounds {
                min_seconds: 15,
                max_seconds: 15,
            },
        ),
        (
            format!("half the ETA, {}-3600 s (what-if)", defaults.min_seconds),
            PollBounds {
                min_seconds: defaults.min_seconds,
                max_seconds: 3600,
            },
        ),
    ];

    let mut table = Table::new(&[
        "schedule",
        "snapshot",
        "checks",
        "transitions (<= 20)",
        "USD per build",
        "USD per 1,000 builds",
        "noticed after end",
    ]);
    for (label, bounds) in &schedules {
        for (duration_label, seconds) in DURATIONS {
            let w = walk(&asl, Duration::seconds(seconds), *bounds)?;
            let cost = w.transitions as f64 * PRICE_PER_TRANSITION;
            table.row(vec![
                label.clone(),
                duration_label.to_owned(),
                w.checks.to_string(),
                format!("{} {}", w.transitions, verdict(w.transitions <= TARGET)),
                format!("{cost:.5}"),
                format!("{:.2}", cost * 1000.0),
                format!("{} s", w.lag_seconds),
            ]);
        }
    }
    Ok(format!(
        "### State transitions per build\n\nStates entered on the success path of \
         `{}` (Standard workflows bill each one, $0.025 per 1,000), for one snapshot set that \
         progresses evenly over the given time; retries not counted.\n\n{}",
        asl_path
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
        table.render()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine of start, choice, wait, check and one more task: 2 + 3 per check + 2.
    #[test]
    fn walk_counts_every_state_entered() {
        let asl = serde_json::json!({
            "StartAt": "Start",
            "States": {
                "Start": {"Type": "Task", "Resource": "${SnapshotFunctionArn}",
                          "Parameters": {"action": "start"}, "Next": "Done?"},
                "Done?": {"Type": "Choice", "Choices": [{"Variable": "$.snapshots.state",
                          "StringEquals": "completed", "Next": "After"}], "Default": "Wait"},
                "Wait": {"Type": "Wait", "SecondsPath": "$.snapshots.wait_seconds", "Next": "Check"},
                "Check": {"Type": "Task", "Resource": "${SnapshotFunctionArn}",
                          "Parameters": {"action": "check"}, "Next": "Done?"},
                "After": {"Type": "Task", "Resource": "x", "Next": "End"},
                "End": {"Type": "Succeed"}
            }
        });
        let fixed = PollBounds {
            min_seconds: 10,
            max_seconds: 10,
        };
        let w = walk(&asl, Duration::seconds(30), fixed).unwrap();
        assert_eq!(w.checks, 3);
        assert_eq!(w.transitions, 2 + 3 * 3 + 2);
        assert_eq!(w.lag_seconds, 0);
    }

    /// A rule on input a hand-started build does not have is not taken.
    #[test]
    fn absent_variables_match_is_present_false_only() {
        let output = HashMap::new();
        let present = serde_json::json!({"Variable": "$.register", "IsPresent": true});
        let absent = serde_json::json!({"Variable": "$.register", "IsPresent": false});
        let equals = serde_json::json!({"Variable": "$.register", "StringEquals": "x"});
        assert!(!matches(&present, &output).unwrap());
        assert!(matches(&absent, &output).unwrap());
        assert!(!matches(&equals, &output).unwrap());
    }
}
