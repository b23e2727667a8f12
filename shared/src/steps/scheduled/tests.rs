//! Unit tests of claiming scheduled runs, over the in-memory job store.

use crate::contract::{ClaimScheduled, ScheduledRun};
use crate::domain::{JobId, Retention, ScheduleName, ScheduleRequest};
use crate::jobs::{JobStatus, JobStore};
use crate::steps::testing::pipeline;

use super::claim;

fn run(time: &str) -> ScheduledRun {
    ScheduledRun {
        schedule: ScheduleName::parse("nightly").unwrap(),
        definition: ScheduleRequest {
            expression: "cron(0 3 * * ? *)".into(),
            name_template: "web-{date}".into(),
            instance_id: "i-0123abcd".into(),
            retention: Retention {
                keep_last: Some(3),
                max_age_days: None,
            },
            ..ScheduleRequest::default()
        },
        time: time.into(),
    }
}

fn claim_input(job: &str, time: &str) -> ClaimScheduled {
    ClaimScheduled {
        job_id: JobId::parse(job).unwrap(),
        execution_arn: Some(format!(
            "arn:aws:states:us-east-1:123456789012:execution:build-image:{job}"
        )),
        scheduled: run(time),
        started_at: None,
    }
}

/// A run records its job with the rendered name and schedule; a retry of the same execution
/// gets the same answer and no second record.
#[tokio::test]
async fn a_run_records_its_job_once() {
    let (pipeline, store) = pipeline(&[], &[], &[]);

    let first = claim(&pipeline, claim_input("run-1", "2026-12-03T03:00:00Z"))
        .await
        .unwrap();
    let again = claim(&pipeline, claim_input("run-1", "2026-12-03T03:00:00Z"))
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert_eq!(first, again);
    assert_eq!(first.request.name, "web-2026-12-03");
    assert_eq!(first.retention.keep_last, Some(3));
    let job = store.get(&JobId::parse("run-1").unwrap()).await.unwrap();
    assert_eq!(job.schedule.as_deref(), Some("nightly"));
    assert_eq!(job.image_name.as_deref(), Some("web-2026-12-03"));
    assert_eq!(job.request["name"], "web-2026-12-03");
    assert_eq!(store.list(&Default::default()).await.unwrap().jobs.len(), 1);
}

/// A second firing for the same slot (same rendered name) builds nothing and records nothing;
/// the next day's run is a slot of its own.
#[tokio::test]
async fn a_repeated_fire_of_one_slot_is_a_duplicate() {
    let (pipeline, store) = pipeline(&[], &[], &[]);
    claim(&pipeline, claim_input("run-1", "2026-12-03T03:00:00Z"))
        .await
        .unwrap();

    let repeat = claim(&pipeline, claim_input("run-2", "2026-12-03T03:00:05Z"))
        .await
        .unwrap();
    assert!(repeat.duplicate);
    assert_eq!(repeat.held_by.as_deref(), Some("run-1"));
    assert!(store.get(&JobId::parse("run-2").unwrap()).await.is_err());

    let tomorrow = claim(&pipeline, claim_input("run-3", "2026-12-04T03:00:00Z"))
        .await
        .unwrap();
    assert!(!tomorrow.duplicate);
}

/// A slot whose job failed (and was cleaned up) may be built by a later firing.
#[tokio::test]
async fn a_failed_slot_can_be_built_again() {
    let (pipeline, _) = pipeline(&[], &[], &[]);
    claim(&pipeline, claim_input("run-1", "2026-12-03T03:00:00Z"))
        .await
        .unwrap();
    pipeline
        .update(&JobId::parse("run-1").unwrap(), |j| {
            j.fail("AmiForge.Failed", "snapshot failed");
        })
        .await
        .unwrap();

    let retry = claim(&pipeline, claim_input("run-2", "2026-12-03T03:10:00Z"))
        .await
        .unwrap();
    assert!(!retry.duplicate);
    let job = pipeline
        .jobs
        .get(&JobId::parse("run-2").unwrap())
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Queued);
}
