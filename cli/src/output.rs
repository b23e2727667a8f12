//! Rendering for people and scripts: aligned tables and key/value blocks from the API's
//! answers, and the API's own JSON pretty-printed.
//!
//! Every renderer returns a `String` so tests can compare the exact text; the commands print.

use std::io::{self, Write};

use serde_json::Value;

use crate::api::{
    Accepted, DeletePlan, ImageDetail, ImagePage, ImageSummary, Job, JobPage, Launchers,
    PermissionsChange, PurgeItem, Sharing,
};

/// Shown where a value is absent.
const NONE: &str = "-";

/// Writes a result to stdout. A reader that went away (`amiforge list | head`) is not an
/// error.
///
/// # Errors
/// Any other failure to write.
pub fn emit(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The API's JSON, pretty-printed, ending with a newline.
pub fn json(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// Columns separated by two spaces, each as wide as its widest cell; the last column is not
/// padded, so lines carry no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `key  value` lines with the values aligned.
pub fn pairs(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    rows.iter()
        .map(|(key, value)| {
            let line = format!("{key:<width$}  {value}");
            format!("{}\n", line.trim_end())
        })
        .collect()
}

fn or_none(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_owned(),
        _ => NONE.to_owned(),
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

fn list(values: &[String]) -> String {
    if values.is_empty() {
        NONE.to_owned()
    } else {
        values.join(", ")
    }
}

/// A whole-number percent for display, clamped to 0..=100.
pub fn percent(value: f64) -> u64 {
    // The clamp keeps the cast exact: a finite value within 0..=100.
    if value.is_finite() {
        value.clamp(0.0, 100.0).round() as u64
    } else {
        0
    }
}

/// A timestamp shortened to whole seconds when it is in UTC with a fraction, so that tables
/// stay narrow: `2026-05-01T10:00:00.123Z` becomes `2026-05-01T10:00:00Z`.
pub fn short_time(value: &str) -> String {
    let utc = value
        .strip_suffix('Z')
        .or_else(|| value.strip_suffix("+00:00"));
    match utc.and_then(|v| v.split_once('.')) {
        Some((seconds, fraction)) if fraction.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{seconds}Z")
        }
        _ => value.to_owned(),
    }
}

/// A duration such as `1h 05m`, `3m 20s` or `45s`.
pub fn duration(seconds: f64) -> String {
    let total = if seconds.is_finite() && seconds > 0.0 {
        seconds.round() as u64
    } else {
        0
    };
    let (hours, minutes, secs) = (total / 3600, total % 3600 / 60, total % 60);
    if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs:02}s")
    } else {
        format!("{secs}s")
    }
}

/// The progress bar's message: step, message and ETA.
pub fn progress_message(job: &Job) -> String {
    let mut text = if job.step.is_empty() {
        job.status.clone()
    } else {
        job.step.clone()
    };
    if !job.message.is_empty() {
        text.push_str(": ");
        text.push_str(&job.message);
    }
    if let Some(eta) = job.eta_seconds {
        text.push_str(&format!(" (ETA {})", duration(eta)));
    }
    text
}

/// What a job shares its image with.
pub fn sharing(sharing: &Sharing) -> String {
    let launchers = Launchers {
        public: sharing.public,
        accounts: sharing.accounts.clone(),
        organizations: sharing.organizations.clone(),
        organizational_units: sharing.organizational_units.clone(),
    };
    let mut text = launchers_text(&launchers, "private (owner only)");
    if sharing.create_volume_permission && !launchers.is_empty() {
        text.push_str(", with create-volume permission");
    }
    text
}

/// Who may launch, in one line; `empty` when nobody is named.
fn launchers_text(launchers: &Launchers, empty: &str) -> String {
    let mut parts = Vec::new();
    if launchers.public {
        parts.push("public".to_owned());
    }
    let groups = [
        ("account", "accounts", &launchers.accounts),
        ("organization", "organizations", &launchers.organizations),
        ("unit", "units", &launchers.organizational_units),
    ];
    for (one, many, values) in groups {
        match values.len() {
            0 => {}
            1 => parts.push(format!("{one} {}", values[0])),
            _ => parts.push(format!("{many} {}", values.join(", "))),
        }
    }
    if parts.is_empty() {
        empty.to_owned()
    } else {
        parts.join("; ")
    }
}

/// What `create` prints: the job and where to follow it.
pub fn accepted(accepted: &Accepted) -> String {
    pairs(&[
        ("job", accepted.job_id.clone()),
        ("status", accepted.status.clone()),
        ("status url", accepted.status_url.clone()),
        ("execution", or_none(accepted.execution_arn.as_deref())),
    ])
}

/// What `watch` prints when a job ends.
pub fn outcome(job: &Job) -> String {
    if job.kind == "purge" {
        return purge_outcome(job);
    }
    let mut rows = vec![("job", job.job_id.clone()), ("status", job.status.clone())];
    if let Some(error) = &job.error {
        let text = if error.error_type.is_empty() {
            error.message.clone()
        } else {
            format!("{}: {}", error.error_type, error.message)
        };
        rows.push(("error", text));
    } else {
        rows.push(("image", or_none(job.image_id.as_deref())));
        rows.push(("manifest", or_none(job.manifest_path.as_deref())));
        rows.push((
            "sharing",
            job.sharing_applied
                .as_ref()
                .map_or_else(|| NONE.to_owned(), sharing),
        ));
    }
    rows.push(("execution", or_none(job.execution_arn.as_deref())));
    pairs(&rows)
}

/// The IMAGE column of a job: the image id once registered, the name before.
fn job_image(job: &Job) -> String {
    or_none(job.image_id.as_deref().or(job.image_name.as_deref()))
}

/// The `jobs` table.
pub fn jobs(page: &JobPage) -> String {
    let rows: Vec<Vec<String>> = page
        .jobs
        .iter()
        .map(|job| {
            vec![
                job.job_id.clone(),
                job.status.clone(),
                or_none(Some(&job.step)),
                percent(job.percent).to_string(),
                job_image(job),
                short_time(&job.created_at),
            ]
        })
        .collect();
    table(&["JOB", "STATUS", "STEP", "%", "IMAGE", "CREATED"], &rows)
}

/// The `list` table.
pub fn images(page: &ImagePage) -> String {
    let rows: Vec<Vec<String>> = page.images.iter().map(image_row).collect();
    table(
        &[
            "IMAGE", "NAME", "OWNER", "STATE", "PUBLIC", "ARCH", "CREATED",
        ],
        &rows,
    )
}

fn image_row(image: &ImageSummary) -> Vec<String> {
    vec![
        image.image_id.clone(),
        image.name.clone(),
        image.owner_id.clone(),
        image.state.clone(),
        yes_no(image.public),
        or_none(Some(&image.architecture)),
        short_time(&image.creation_date),
    ]
}

/// The hint printed under a page that has more.
pub fn next_page(next: Option<&str>) -> Option<String> {
    next.filter(|t| !t.is_empty())
        .map(|token| format!("more results: repeat with --next {token}"))
}

/// What `show` prints: details, launch permissions and snapshots.
pub fn image(image: &ImageDetail) -> String {
    let job = match (&image.job_id, &image.job) {
        (_, Some(job)) => format!("{} ({})", job.job_id, job.status),
        (Some(id), None) => id.clone(),
        (None, None) => NONE.to_owned(),
    };
    let mut out = pairs(&[
        ("image", image.image_id.clone()),
        ("name", image.name.clone()),
        ("description", or_none(image.description.as_deref())),
        ("owner", image.owner_id.clone()),
        ("state", image.state.clone()),
        ("public", yes_no(image.public)),
        ("architecture", or_none(Some(&image.architecture))),
        ("root device", or_none(image.root_device_name.as_deref())),
        ("created", image.creation_date.clone()),
        ("product codes", list(&image.product_codes)),
        ("manifest", or_none(image.manifest_path.as_deref())),
        ("job", job),
    ]);

    let launch = &image.launch_permissions;
    out.push_str("\nLaunch permissions\n");
    out.push_str(&indent(&pairs(&[
        ("public", yes_no(launch.public)),
        ("accounts", list(&launch.accounts)),
        ("organizations", list(&launch.organizations)),
        ("organizational units", list(&launch.organizational_units)),
    ])));

    out.push_str("\nSnapshots\n");
    let rows: Vec<Vec<String>> = image
        .snapshots
        .iter()
        .map(|s| {
            let volume_access = match (s.create_volume_public, s.create_volume_accounts.is_empty())
            {
                (true, _) => "public".to_owned(),
                (false, true) => NONE.to_owned(),
                (false, false) => s.create_volume_accounts.join(", "),
            };
            vec![
                s.device_name.clone(),
                s.snapshot_id.clone(),
                format!("{} GiB", s.size_gib),
                volume_access,
            ]
        })
        .collect();
    out.push_str(&indent(&table(
        &["DEVICE", "SNAPSHOT", "SIZE", "CREATE VOLUME"],
        &rows,
    )));
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// What `share` prints: what changed and who may launch now.
pub fn permissions_change(change: &PermissionsChange) -> String {
    pairs(&[
        ("image", change.image_id.clone()),
        ("added", launchers_text(&change.added, "nothing")),
        ("removed", launchers_text(&change.removed, "nothing")),
        (
            "now launchable by",
            launchers_text(&change.launch_permissions, "the owner only"),
        ),
    ])
}

/// What `watch` prints when a purge job ends: its summary, then each resource's outcome.
fn purge_outcome(job: &Job) -> String {
    let mut text = pairs(&[
        ("job", job.job_id.clone()),
        ("status", job.status.clone()),
        ("result", job.message.clone()),
        ("execution", or_none(job.execution_arn.as_deref())),
    ]);
    if let Some(report) = job.cleanup.as_ref().filter(|r| !r.items.is_empty()) {
        let rows: Vec<Vec<String>> = report.items.iter().map(purge_row).collect();
        text.push('\n');
        text.push_str(&table(&["KIND", "ID", "OUTCOME", "REASON"], &rows));
    }
    text
}

fn purge_row(item: &PurgeItem) -> Vec<String> {
    vec![
        item.kind.clone(),
        item.id.clone(),
        item.outcome.clone(),
        or_none(item.reason.as_deref()),
    ]
}

/// The plan of a dry-run delete: every resource of every image, to delete or to keep.
pub fn delete_plan(plan: &DeletePlan) -> String {
    let mut rows = Vec::new();
    for image in &plan.images {
        if let Some(reason) = &image.refused {
            rows.push(vec![
                image.image_id.clone(),
                "image".to_owned(),
                image.image_id.clone(),
                "refused".to_owned(),
                reason.clone(),
            ]);
            continue;
        }
        let delete = |kind: &str, ids: &[String]| -> Vec<Vec<String>> {
            ids.iter()
                .map(|id| {
                    vec![
                        image.image_id.clone(),
                        kind.to_owned(),
                        id.clone(),
                        "delete".to_owned(),
                        NONE.to_owned(),
                    ]
                })
                .collect()
        };
        rows.extend(delete("image", &image.plan.images));
        rows.extend(delete("snapshot", &image.plan.snapshots));
        rows.extend(delete("object", &image.plan.objects));
        rows.extend(image.plan.kept.iter().map(|item| {
            let mut row = purge_row(item);
            row[2] = "keep".to_owned();
            row.insert(0, image.image_id.clone());
            row
        }));
    }
    let mut text = table(&["IMAGE", "KIND", "ID", "ACTION", "REASON"], &rows);
    text.push_str("dry run: nothing was deleted\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::JobError;

    fn running_job() -> Job {
        serde_json::from_value(serde_json::json!({
            "job_id": "0f9a1c2e-job",
            "kind": "build",
            "status": "RUNNING",
            "step": "snapshot",
            "percent": 42.4,
            "message": "2 of 2 snapshots pending",
            "eta_seconds": 200,
            "image_name": "web-1",
            "created_at": "2026-05-01T10:00:00.123Z"
        }))
        .unwrap()
    }

    #[test]
    fn a_job_renders_as_one_aligned_row() {
        let done = Job {
            job_id: "1".into(),
            status: "SUCCEEDED".into(),
            step: "share".into(),
            percent: 100.0,
            image_id: Some("ami-0123abcd".into()),
            created_at: "2026-05-01T09:00:00Z".into(),
            ..Job::default()
        };
        let page = JobPage {
            jobs: vec![running_job(), done],
            next: None,
        };
        assert_eq!(
            jobs(&page),
            "JOB           STATUS     STEP      %    IMAGE         CREATED\n\
             0f9a1c2e-job  RUNNING    snapshot  42   web-1         2026-05-01T10:00:00Z\n\
             1             SUCCEEDED  share     100  ami-0123abcd  2026-05-01T09:00:00Z\n"
        );
    }

    #[test]
    fn an_image_list_renders_with_aligned_columns() {
        let page: ImagePage = serde_json::from_value(serde_json::json!({
            "images": [
                {"image_id": "ami-0123abcd", "name": "web-1", "owner_id": "012345678901",
                 "creation_date": "2026-05-01T10:00:00.000Z", "state": "available",
                 "public": false, "architecture": "x86_64"},
                {"image_id": "ami-0123456789abcdef0", "name": "db", "owner_id": "012345678901",
                 "creation_date": "2026-04-30T08:00:00.000Z", "state": "pending",
                 "public": true, "architecture": "arm64"}
            ],
            "next": null
        }))
        .unwrap();
        assert_eq!(
            images(&page),
            "IMAGE                  NAME   OWNER         STATE      PUBLIC  ARCH    CREATED\n\
             ami-0123abcd           web-1  012345678901  available  no      x86_64  2026-05-01T10:00:00Z\n\
             ami-0123456789abcdef0  db     012345678901  pending    yes     arm64   2026-04-30T08:00:00Z\n"
        );
    }

    /// EC2 may leave out an image's name or architecture; the API sends `null`, shown as `-`.
    #[test]
    fn missing_image_fields_show_as_a_dash() {
        let image: ImageDetail = serde_json::from_value(serde_json::json!({
            "image_id": "ami-0123abcd", "name": null, "owner_id": "012345678901",
            "creation_date": null, "state": "available", "public": false,
            "architecture": null, "launch_permissions": {"public": false}
        }))
        .unwrap();
        let text = super::image(&image);
        assert!(text.contains("architecture"), "{text}");
        let architecture = text
            .lines()
            .find(|l| l.starts_with("architecture"))
            .unwrap();
        assert!(architecture.trim_end().ends_with(" -"), "{text}");
    }

    #[test]
    fn the_progress_message_has_step_message_and_eta() {
        assert_eq!(
            progress_message(&running_job()),
            "snapshot: 2 of 2 snapshots pending (ETA 3m 20s)"
        );
    }

    #[test]
    fn a_succeeded_outcome_names_image_manifest_sharing_and_execution() {
        let job = Job {
            job_id: "j1".into(),
            status: "SUCCEEDED".into(),
            image_id: Some("ami-0123abcd".into()),
            manifest_path: Some("s3://bucket/images/web-1/image.manifest.json".into()),
            execution_arn: Some(
                "arn:aws:states:eu-west-1:012345678901:execution:build-image:j1".into(),
            ),
            sharing_applied: Some(Sharing {
                accounts: vec!["012345678901".into()],
                create_volume_permission: true,
                ..Sharing::default()
            }),
            ..Job::default()
        };
        assert_eq!(
            outcome(&job),
            "job        j1\n\
             status     SUCCEEDED\n\
             image      ami-0123abcd\n\
             manifest   s3://bucket/images/web-1/image.manifest.json\n\
             sharing    account 012345678901, with create-volume permission\n\
             execution  arn:aws:states:eu-west-1:012345678901:execution:build-image:j1\n"
        );
    }

    #[test]
    fn a_failed_outcome_shows_the_error() {
        let job = Job {
            job_id: "j2".into(),
            status: "FAILED".into(),
            error: Some(JobError {
                error_type: "AmiForge.InvalidInput".into(),
                message: "instance i-0123abcd not found".into(),
            }),
            ..Job::default()
        };
        let text = outcome(&job);
        assert!(
            text.contains("error      AmiForge.InvalidInput: instance i-0123abcd not found\n"),
            "{text}"
        );
        assert!(!text.contains("image"), "{text}");
    }

    #[test]
    fn a_permissions_change_lists_added_and_removed() {
        let change = PermissionsChange {
            image_id: "ami-0123abcd".into(),
            added: Launchers {
                accounts: vec!["012345678901".into(), "000000000042".into()],
                ..Launchers::default()
            },
            removed: Launchers {
                public: true,
                ..Launchers::default()
            },
            launch_permissions: Launchers {
                accounts: vec!["012345678901".into(), "000000000042".into()],
                ..Launchers::default()
            },
        };
        assert_eq!(
            permissions_change(&change),
            "image              ami-0123abcd\n\
             added              accounts 012345678901, 000000000042\n\
             removed            public\n\
             now launchable by  accounts 012345678901, 000000000042\n"
        );
    }

    #[test]
    fn durations_and_times_are_short() {
        assert_eq!(duration(45.0), "45s");
        assert_eq!(duration(3900.0), "1h 05m");
        assert_eq!(
            short_time("2026-05-01T10:00:00+02:00"),
            "2026-05-01T10:00:00+02:00"
        );
        assert_eq!(
            short_time("2026-05-01T10:00:00.5+00:00"),
            "2026-05-01T10:00:00Z"
        );
        assert_eq!(percent(142.0), 100);
        assert_eq!(percent(f64::NAN), 0);
    }
}
