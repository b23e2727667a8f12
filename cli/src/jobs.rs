//! `amiforge jobs`: lists build jobs, newest first, a page at a time.

use anyhow::{Context, Result};

use crate::api::JobPage;
use crate::args::{Format, GlobalArgs, JobsArgs};
use crate::client::Client;
use crate::{output, Outcome};

/// Lists one page of jobs.
///
/// # Errors
/// Connection, HTTP and API errors.
pub async fn run(args: JobsArgs, global: &GlobalArgs) -> Result<Outcome> {
    let client = Client::connect(&global.settings()).await?;
    let query = [
        ("status", args.status.map(|s| s.as_api().to_owned())),
        ("limit", args.limit.map(|n| n.to_string())),
        ("next", args.next),
    ];
    let answer = client.get(&["jobs"], &query).await?;

    if global.output == Format::Json {
        output::emit(&output::json(&answer))?;
        return Ok(Outcome::Done);
    }
    let page: JobPage = serde_json::from_value(answer).context("reading the list of jobs")?;
    output::emit(&output::jobs(&page))?;
    if let Some(hint) = output::next_page(page.next.as_deref()) {
        eprintln!("{hint}");
    }
    Ok(Outcome::Done)
}
