//! The main job on the local stack: image the demo instance through the build state machine,
//! print progress as it changes, and end with the image id, the manifest path, the sharing
//! applied and the execution ARN. Exits non-zero when the build fails.
#![allow(clippy::print_stdout)] // a command-line tool: its output is for people

use std::process::ExitCode;
use std::time::Duration;

use amiforge::domain::{BuildRequest, SharingRequest};
use amiforge_tests::build::run_build;
use amiforge_tests::stack;
use anyhow::Result;
use chrono::Utc;

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let stack = stack().await?;
    let instance = stack.var("AMIFORGE_DEMO_INSTANCE_ID")?;
    let request = BuildRequest {
        instance_id: instance.clone(),
        name: format!("amiforge-demo-{}", Utc::now().format("%Y%m%d-%H%M%S")),
        description: Some("amiforge demo image".into()),
        sharing: SharingRequest {
            accounts: vec!["012345678901".into()],
            ..SharingRequest::default()
        },
        tags: [("purpose".to_owned(), "demo".to_owned())].into(),
        ..BuildRequest::default()
    };
    println!("imaging {instance} as {:?}", request.name);

    let outcome = run_build(stack, &request, Duration::from_secs(600), |job| {
        let eta = job
            .eta_seconds
            .filter(|s| *s > 0)
            .map_or_else(String::new, |s| {
                format!(" (eta {})", amiforge::steps::snapshot::human_duration(s))
            });
        println!(
            "[{:>3}%] {:<8} {:<9} {}{eta}",
            job.percent, job.status, job.step, job.message
        );
    })
    .await?;

    let job = &outcome.job;
    println!();
    println!("job            {}", job.job_id);
    println!("status         {}", job.status);
    println!("execution      {}", outcome.execution_arn);
    if outcome.status == "SUCCEEDED" {
        let sharing = job.sharing_applied.clone().unwrap_or_default();
        println!("image          {}", job.image_id.as_deref().unwrap_or("-"));
        println!(
            "manifest       {}",
            job.manifest_path.as_deref().unwrap_or("-")
        );
        println!(
            "sharing        public: {}, accounts: [{}], organizations: [{}], OUs: [{}]",
            sharing.public,
            sharing.accounts.join(", "),
            sharing.organizations.join(", "),
            sharing.organizational_units.join(", ")
        );
        println!("snapshots      {}", job.snapshot_ids.join(", "));
        Ok(ExitCode::SUCCESS)
    } else {
        println!("error          {}", outcome.error.as_deref().unwrap_or("-"));
        println!("message        {}", job.message);
        Ok(ExitCode::FAILURE)
    }
}
