//! The job store on DynamoDB (the local stack): conditional creates and transitions,
//! concurrent writers, pagination and lookups. Every test works in a table of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::sync::Arc;

use amiforge::domain::JobId;
use amiforge::jobs::{
    update_job, DynamoJobStore, Job, JobKind, JobQuery, JobStatus, JobStore, StoreError,
};
use amiforge_tests::{create_jobs_table, stack, unique};
use chrono::{Duration, Utc};

async fn store() -> Arc<DynamoJobStore> {
    let stack = stack().await.expect("local stack");
    let client = stack.clients().dynamodb;
    let table = create_jobs_table(&client).await.expect("jobs table");
    Arc::new(DynamoJobStore::new(client, table))
}

fn job(minutes_ago: i64) -> Job {
    let created = Utc::now() - Duration::minutes(minutes_ago);
    Job::new(
        JobId::parse(&unique("job")).unwrap(),
        JobKind::Build,
        serde_json::json!({"instance_id": "i-0123abcd", "name": "web"}),
        created,
    )
}

/// A job id is created once; a second create with the same id is refused, not overwritten.
#[tokio::test]
async fn create_never_overwrites() {
    let store = store().await;
    let first = job(0);
    store.create(&first).await.unwrap();
    let mut second = first.clone();
    second.message = "other".into();
    let err = store.create(&second).await.unwrap_err();
    assert!(
        matches!(err, StoreError::AlreadyExists(ref id) if *id == first.job_id),
        "{err}"
    );
    assert_eq!(
        store.get(&first.job_id).await.unwrap().message,
        "job recorded"
    );
}

/// QUEUED -> RUNNING -> SUCCEEDED is recorded with its history; the final state refuses change.
#[tokio::test]
async fn transitions_are_recorded_and_final_is_final() {
    let store = store().await;
    let created = job(0);
    store.create(&created).await.unwrap();
    let id = created.job_id.clone();

    let running = update_job(store.as_ref(), &id, Some(0), 20, |j| {
        j.status = JobStatus::Running;
        j.progress("snapshot", 10, "snapshots started");
        j.snapshot_ids = vec!["snap-00000001".into()];
    })
    .await
    .unwrap();
    assert_eq!(running.version, 1);
    let done = update_job(store.as_ref(), &id, Some(1), 20, |j| {
        j.status = JobStatus::Succeeded;
        j.progress("done", 100, "image ami-12345678 is ready");
        j.image_id = Some("ami-12345678".into());
    })
    .await
    .unwrap();
    assert_eq!(done.version, 2);

    let stored = store.get(&id).await.unwrap();
    assert_eq!(stored.status, JobStatus::Succeeded);
    assert_eq!(stored.percent, 100);
    assert_eq!(stored.snapshot_ids, ["snap-00000001"]);
    assert!(stored.finished_at.is_some());
    let steps: Vec<&str> = stored.history.iter().map(|e| e.step.as_str()).collect();
    assert_eq!(steps, ["queued", "snapshot", "done"]);

    let err = update_job(store.as_ref(), &id, None, 20, |j| {
        j.status = JobStatus::Failed
    })
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Final {
                status: JobStatus::Succeeded,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.get(&id).await.unwrap().version, 2);
}

/// A move the rules forbid (QUEUED straight to SUCCEEDED) is refused and changes nothing.
#[tokio::test]
async fn illegal_transition_is_refused() {
    let store = store().await;
    let created = job(0);
    store.create(&created).await.unwrap();
    let err = update_job(store.as_ref(), &created.job_id, None, 20, |j| {
        j.status = JobStatus::Succeeded
    })
    .await
    .unwrap_err();
    assert!(matches!(
        err,
        StoreError::Transition {
            from: JobStatus::Queued,
            to: JobStatus::Succeeded,
            ..
        }
    ));
    assert_eq!(store.get(&created.job_id).await.unwrap(), created);
}

/// Two writers holding the same version: exactly one wins, the other gets a conflict, and the
/// winner's fields are all stored.
#[tokio::test]
async fn concurrent_conditional_updates_one_wins() {
    let store = store().await;
    let created = job(0);
    store.create(&created).await.unwrap();
    let id = created.job_id.clone();

    let (a, b) = tokio::join!(
        update_job(store.as_ref(), &id, Some(0), 20, |j| {
            j.status = JobStatus::Running;
            j.snapshot_ids = vec!["snap-0000000a".into()];
            j.progress("snapshot", 5, "writer a");
        }),
        update_job(store.as_ref(), &id, Some(0), 20, |j| {
            j.status = JobStatus::Running;
            j.manifest_path = Some("s3://bucket-b/key".into());
            j.progress("bundle", 50, "writer b");
        }),
    );
    let (winner, loser) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        (a, b) => panic!("expected exactly one winner, got {a:?} and {b:?}"),
    };
    assert!(
        matches!(loser, StoreError::Conflict { version: 0, .. }),
        "{loser}"
    );
    let stored = store.get(&id).await.unwrap();
    assert_eq!(stored, winner);
    assert_eq!(stored.version, 1);
}

/// Writers that do not pin a version retry on fresh data, so neither change is lost.
#[tokio::test]
async fn concurrent_unpinned_updates_lose_nothing() {
    let store = store().await;
    let created = job(0);
    store.create(&created).await.unwrap();
    let id = created.job_id.clone();

    let (a, b) = tokio::join!(
        update_job(store.as_ref(), &id, None, 20, |j| {
            j.status = JobStatus::Running;
            j.snapshot_ids = vec!["snap-0000000a".into()];
        }),
        update_job(store.as_ref(), &id, None, 20, |j| {
            j.status = JobStatus::Running;
            j.manifest_path = Some("s3://bucket-b/key".into());
        }),
    );
    a.unwrap();
    b.unwrap();
    let stored = store.get(&id).await.unwrap();
    assert_eq!(stored.snapshot_ids, ["snap-0000000a"]);
    assert_eq!(stored.manifest_path.as_deref(), Some("s3://bucket-b/key"));
    assert_eq!(stored.version, 2);
}

/// Listing pages through every job once, newest first, with an opaque token.
#[tokio::test]
async fn listing_pages_newest_first() {
    let store = store().await;
    let mut ids = Vec::new();
    for minutes_ago in (0..7).rev() {
        let j = job(minutes_ago);
        store.create(&j).await.unwrap();
        ids.push(j.job_id.clone());
    }
    ids.reverse();

    let mut seen = Vec::new();
    let mut query = JobQuery {
        limit: 3,
        ..JobQuery::default()
    };
    let mut pages = 0;
    loop {
        let page = store.list(&query).await.unwrap();
        pages += 1;
        assert!(page.jobs.len() <= 3);
        seen.extend(page.jobs.into_iter().map(|j| j.job_id));
        match page.next {
            Some(next) => query.next = Some(next),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, ids);

    let bad = JobQuery {
        limit: 3,
        next: Some("not-a-token".into()),
        ..JobQuery::default()
    };
    assert!(matches!(store.list(&bad).await, Err(StoreError::BadToken)));
}

/// Status, schedule and image lookups find exactly the matching jobs.
#[tokio::test]
async fn lookups_by_status_schedule_and_image() {
    let store = store().await;
    let queued = job(3);
    store.create(&queued).await.unwrap();
    let mut scheduled = job(2);
    scheduled.schedule = Some("nightly".into());
    store.create(&scheduled).await.unwrap();
    let imaged = job(1);
    store.create(&imaged).await.unwrap();
    update_job(store.as_ref(), &imaged.job_id, None, 20, |j| {
        j.status = JobStatus::Running;
        j.image_id = Some("ami-0000abcd".into());
    })
    .await
    .unwrap();

    let running = store
        .list(&JobQuery {
            status: Some(JobStatus::Running),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .unwrap();
    let running_ids: Vec<_> = running.jobs.iter().map(|j| j.job_id.clone()).collect();
    assert_eq!(running_ids, std::slice::from_ref(&imaged.job_id));

    let nightly = store
        .list(&JobQuery {
            schedule: Some("nightly".into()),
            limit: 10,
            ..JobQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(nightly.jobs.len(), 1);
    assert_eq!(nightly.jobs[0].job_id, scheduled.job_id);

    let by_image = store.find_by_image("ami-0000abcd").await.unwrap();
    assert_eq!(by_image.len(), 1);
    assert_eq!(by_image[0].job_id, imaged.job_id);
    assert!(store
        .find_by_image("ami-ffff0000")
        .await
        .unwrap()
        .is_empty());
}
