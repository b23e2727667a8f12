//! `amiforge watch`: polls a job until it ends, with a progress bar for people, and prints the
//! outcome.

use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::api::Job;
use crate::args::{Format, GlobalArgs, PollArgs, WatchArgs};
use crate::client::{self, Client};
use crate::{output, Outcome};

/// Failed reads in a row that are tolerated while the API or network recovers.
const MAX_TRANSIENT_FAILURES: u32 = 5;

/// Follows the job named on the command line.
///
/// # Errors
/// Connection, HTTP and API errors, and a job that cannot be read.
pub async fn run(args: WatchArgs, global: &GlobalArgs) -> Result<Outcome> {
    let client = Client::connect(&global.settings()).await?;
    follow(&client, &args.job, &args.poll, global.output).await
}

/// Polls `GET /jobs/{id}` until the job is final, then prints the outcome (table) or the
/// final job record (JSON).
///
/// # Errors
/// A refused read (such as an unknown job), or more than [`MAX_TRANSIENT_FAILURES`] failed
/// reads in a row.
pub async fn follow(
    client: &Client,
    job_id: &str,
    poll: &PollArgs,
    format: Format,
) -> Result<Outcome> {
    let mut progress = match format {
        Format::Table => Progress::new(),
        Format::Json => Progress::Silent,
    };
    let interval = Duration::from_secs(poll.interval);

    let mut failures = 0;
    let (job, record) = loop {
        match read(client, job_id).await {
            Ok((job, record)) if job.is_final() => break (job, record),
            Ok((job, _)) => {
                failures = 0;
                progress.show(&job);
            }
            Err(error) if error.is_transient() && failures < MAX_TRANSIENT_FAILURES => {
                failures += 1;
                progress.retrying(&error);
            }
            Err(error) => {
                progress.clear();
                return Err(error.into());
            }
        }
        tokio::time::sleep(interval).await;
    };
    progress.clear();

    let text = match format {
        Format::Table => output::outcome(&job),
        Format::Json => output::json(&record),
    };
    output::emit(&text)?;
    Ok(if job.succeeded() {
        Outcome::Done
    } else {
        Outcome::JobFailed
    })
}

/// Reads the job, keeping the API's JSON for output.
async fn read(client: &Client, job_id: &str) -> Result<(Job, Value), client::Error> {
    let record = client.get(&["jobs", job_id], &[]).await?;
    let job = serde_json::from_value(record.clone()).map_err(|source| client::Error::Decode {
        status: 200,
        source,
    })?;
    Ok((job, record))
}

/// How progress is shown while polling.
enum Progress {
    /// JSON output: nothing until the end.
    Silent,
    /// A bar on a terminal.
    Bar(ProgressBar),
    /// Stderr is not a terminal: a line whenever the step or message changes.
    Lines(String),
}

impl Progress {
    fn new() -> Self {
        let bar = ProgressBar::new(100);
        if bar.is_hidden() {
            return Self::Lines(String::new());
        }
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:30}] {pos:>3}% {wide_msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message("reading the job");
        bar.enable_steady_tick(Duration::from_millis(120));
        Self::Bar(bar)
    }

    fn show(&mut self, job: &Job) {
        match self {
            Self::Silent => {}
            Self::Bar(bar) => {
                bar.set_position(output::percent(job.percent));
                bar.set_message(output::progress_message(job));
            }
            Self::Lines(last) => {
                let line = format!(
                    "{} {:>3}% {}",
                    job.status,
                    output::percent(job.percent),
                    output::progress_message(job)
                );
                if *last != line {
                    eprintln!("{line}");
                    *last = line;
                }
            }
        }
    }

    fn retrying(&self, error: &client::Error) {
        let message = format!("retrying after: {error}");
        match self {
            Self::Silent => {}
            Self::Bar(bar) => bar.set_message(message),
            Self::Lines(_) => eprintln!("{message}"),
        }
    }

    fn clear(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
