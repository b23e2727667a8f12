//! Whole builds through the build-image state machine on the local stack: the real Lambda
//! binaries behind `cargo lambda watch`, invoked by the emulator's Step Functions.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::time::Duration;

use amiforge::domain::{BuildRequest, Manifest, ManifestPath, SharingRequest, TagKey};
use amiforge::jobs::JobStatus;
use amiforge_tests::build::run_build;
use amiforge_tests::{launch_instance, snapshots_of_job, stack, unique};

const TIMEOUT: Duration = Duration::from_secs(240);

fn request(instance: &str, name: &str) -> BuildRequest {
    BuildRequest {
        instance_id: instance.to_owned(),
        name: name.to_owned(),
        description: Some("end-to-end test image".into()),
        sharing: SharingRequest {
            accounts: vec!["012345678901".into()],
            ..SharingRequest::default()
        },
        tags: [("team".to_owned(), "platform".to_owned())].into(),
        ..BuildRequest::default()
    }
}

/// A build reaches SUCCEEDED with its image registered and tagged, its manifest in S3, and
/// the job at 100% with every step in its history.
#[tokio::test]
async fn build_succeeds_with_tagged_image_and_manifest() {
    let stack = stack().await.unwrap();
    let clients = stack.clients();
    let instance = launch_instance(&clients.ec2, 8).await.unwrap();
    let name = unique("e2e-image");

    let outcome = run_build(stack, &request(&instance, &name), TIMEOUT, |_| {})
        .await
        .unwrap();
    assert_eq!(
        outcome.status, "SUCCEEDED",
        "{:?} {:?}",
        outcome.error, outcome.cause
    );
    let job = outcome.job;
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.percent, 100);
    assert_eq!(
        job.execution_arn.as_deref(),
        Some(outcome.execution_arn.as_str())
    );
    assert!(outcome.execution_arn.ends_with(&format!(":{}", job.job_id)));
    let steps: Vec<&str> = job.history.iter().map(|e| e.step.as_str()).collect();
    for step in ["snapshot", "bundle", "register", "done"] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }

    let image_id = job.image_id.clone().unwrap();
    let images = clients
        .ec2
        .describe_images()
        .image_ids(&image_id)
        .send()
        .await
        .unwrap();
    let image = &images.images()[0];
    assert_eq!(image.name(), Some(name.as_str()));
    let tag = |key: &str| {
        image
            .tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    assert_eq!(tag(TagKey::JOB_ID).as_deref(), Some(job.job_id.as_str()));
    assert_eq!(tag(TagKey::MANIFEST), job.manifest_path);
    assert_eq!(tag("team").as_deref(), Some("platform"));

    let path = ManifestPath::parse(job.manifest_path.as_deref().unwrap()).unwrap();
    let object = clients
        .s3
        .get_object()
        .bucket(path.bucket().as_str())
        .key(path.key())
        .send()
        .await
        .unwrap();
    let manifest = Manifest::from_file(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(manifest.body.job_id, job.job_id);
    assert_eq!(manifest.body.block_devices.len(), 2);
    assert_eq!(job.snapshot_ids.len(), 2);
}

/// A build of a missing instance fails at once with a clear message and leaves no snapshot,
/// image or manifest, and no RUNNING job.
#[tokio::test]
async fn build_of_missing_instance_fails_cleanly() {
    let stack = stack().await.unwrap();
    let clients = stack.clients();
    let name = unique("ghost-image");

    let outcome = run_build(
        stack,
        &request("i-0000000000000dead", &name),
        TIMEOUT,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(outcome.status, "FAILED");
    assert_eq!(outcome.error.as_deref(), Some("AmiForge.NotFound"));
    assert!(
        outcome
            .cause
            .as_deref()
            .unwrap_or_default()
            .contains("instance i-0000000000000dead does not exist"),
        "{:?}",
        outcome.cause
    );
    let job = outcome.job;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.error.unwrap().message,
        "instance i-0000000000000dead does not exist"
    );
    assert!(snapshots_of_job(&clients.ec2, job.job_id.as_str())
        .await
        .unwrap()
        .is_empty());
    assert!(job.image_id.is_none());
    assert!(job.manifest_path.is_none());
    let images = clients
        .ec2
        .describe_images()
        .owners("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("name")
                .values(&name)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(images.images().is_empty());
}

/// A failure after the snapshots exist (the manifest bucket does not) ends FAILED with every
/// snapshot of the job deleted.
#[tokio::test]
async fn failure_after_snapshots_deletes_them() {
    let stack = stack().await.unwrap();
    let clients = stack.clients();
    let instance = launch_instance(&clients.ec2, 8).await.unwrap();
    let mut bad_bucket = request(&instance, &unique("orphan-check"));
    bad_bucket.bucket = Some(unique("amiforge-missing-bucket"));

    let outcome = run_build(stack, &bad_bucket, TIMEOUT, |_| {})
        .await
        .unwrap();
    assert_eq!(outcome.status, "FAILED");
    assert_eq!(outcome.error.as_deref(), Some("AmiForge.NotFound"));
    let job = outcome.job;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.snapshot_ids.len(),
        2,
        "the snapshots were taken before the failure"
    );
    assert!(snapshots_of_job(&clients.ec2, job.job_id.as_str())
        .await
        .unwrap()
        .is_empty());
    for id in &job.snapshot_ids {
        let found = clients
            .ec2
            .describe_snapshots()
            .snapshot_ids(id)
            .send()
            .await;
        assert!(found.is_err(), "snapshot {id} still exists");
    }
    let cleanup = job.cleanup.unwrap();
    assert_eq!(
        cleanup["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["outcome"] == "deleted")
            .count(),
        2
    );
}
