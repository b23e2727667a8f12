//! `amiforge delete`: deletes images with their snapshots (and manifest files when asked),
//! or prints what would be deleted.

use anyhow::{bail, Context, Result};
use http::Method;
use serde_json::json;

use crate::api::{Accepted, DeletePlan};
use crate::args::{DeleteArgs, Format, GlobalArgs};
use crate::client::Client;
use crate::{output, watch, Outcome};

/// Starts the purge (or asks for its plan), prints the answer, and follows the job when asked.
///
/// # Errors
/// Connection, HTTP and API errors, such as a malformed image id.
pub async fn run(args: DeleteArgs, global: &GlobalArgs) -> Result<Outcome> {
    let body = json!({
        "image_ids": args.images,
        "remove_s3_files": args.remove_s3_files,
        "dry_run": args.dry_run,
        "force": args.force,
    });
    let client = Client::connect(&global.settings()).await?;
    let answer = client
        .send(Method::POST, &["images", "delete"], &[], Some(&body), &[])
        .await?;

    if args.dry_run {
        let text = match global.output {
            Format::Json => output::json(&answer),
            Format::Table => {
                let plan: DeletePlan =
                    serde_json::from_value(answer).context("reading the deletion plan")?;
                output::delete_plan(&plan)
            }
        };
        output::emit(&text)?;
        return Ok(Outcome::Done);
    }

    let accepted: Accepted =
        serde_json::from_value(answer.clone()).context("reading the API's answer to delete")?;
    match (global.output, args.wait) {
        (Format::Json, false) => output::emit(&output::json(&answer))?,
        (Format::Table, _) => output::emit(&output::accepted(&accepted))?,
        (Format::Json, true) => {}
    }
    if !args.wait {
        return Ok(Outcome::Done);
    }
    if accepted.job_id.is_empty() {
        bail!("the API accepted the deletion but its answer names no job_id to follow");
    }
    watch::follow(&client, &accepted.job_id, &args.poll, global.output).await
}

#[cfg(test)]
mod tests {
    use crate::api::DeletePlan;
    use crate::args::{Cli, Command};
    use crate::output;
    use clap::Parser;
    use serde_json::json;

    #[test]
    fn delete_takes_several_images_and_refuses_wait_with_dry_run() {
        let cli = Cli::try_parse_from([
            "amiforge",
            "delete",
            "ami-1",
            "ami-2",
            "--remove-s3-files",
            "--force",
        ])
        .unwrap();
        match cli.command {
            Command::Delete(args) => {
                assert_eq!(args.images, ["ami-1", "ami-2"]);
                assert!(args.remove_s3_files && args.force && !args.dry_run);
            }
            other => panic!("parsed {other:?}"),
        }
        assert!(Cli::try_parse_from(["amiforge", "delete"]).is_err());
        assert!(
            Cli::try_parse_from(["amiforge", "delete", "ami-1", "--dry-run", "--wait"]).is_err()
        );
    }

    #[test]
    fn a_plan_lists_what_goes_and_what_stays() {
        let plan: DeletePlan = serde_json::from_value(json!({
            "dry_run": true,
            "images": [
                {"image_id": "ami-1", "made_by_amiforge": true, "job_id": "j1",
                 "manifest_path": "s3://b/images/web/image.manifest.json", "refused": null,
                 "plan": {"images": ["ami-1"], "snapshots": ["snap-1"],
                          "objects": ["images/web/image.manifest.json"],
                          "kept": [{"kind": "snapshot", "id": "snap-2", "outcome": "kept",
                                    "reason": "used by ami-9"}]}},
                {"image_id": "ami-2", "made_by_amiforge": false, "refused": "not made by amiforge",
                 "plan": {"images": [], "snapshots": [], "objects": [], "kept": []}}
            ]
        }))
        .unwrap();
        let text = output::delete_plan(&plan);
        let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
        assert_eq!(
            lines,
            [
                "IMAGE  KIND      ID                              ACTION   REASON",
                "ami-1  image     ami-1                           delete   -",
                "ami-1  snapshot  snap-1                          delete   -",
                "ami-1  object    images/web/image.manifest.json  delete   -",
                "ami-1  snapshot  snap-2                          keep     used by ami-9",
                "ami-2  image     ami-2                           refused  not made by amiforge",
                "dry run: nothing was deleted",
            ]
        );
    }
}
