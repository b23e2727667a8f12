//! Each build step against the local stack, called directly: its effect on EC2, S3 and the
//! job record, its idempotence, and what a bad request or a missing instance leaves behind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use amiforge::contract::{RollbackInput, SnapshotState, StartSnapshots, StepFailure};
use amiforge::domain::{BuildRequest, JobId, Manifest, ManifestPath, SharingRequest, TagKey};
use amiforge::jobs::{JobStatus, JobStore};
use amiforge::steps::{bundle, permissions, purge, register, snapshot};
use amiforge::ErrorType;
use amiforge_tests::{launch_instance, snapshots_of_job, stack, unique};
use aws_sdk_ec2::types::ImageAttributeName;

fn start_input(job_id: &JobId, request: BuildRequest) -> StartSnapshots {
    StartSnapshots {
        job_id: job_id.clone(),
        execution_arn: None,
        request,
        schedule: None,
    }
}

fn request(instance_id: &str, name: &str) -> BuildRequest {
    BuildRequest {
        instance_id: instance_id.to_owned(),
        name: name.to_owned(),
        description: Some("built by the step tests".into()),
        sharing: SharingRequest {
            accounts: vec!["012345678901".into()],
            ..SharingRequest::default()
        },
        ..BuildRequest::default()
    }
}

/// snapshot -> check -> bundle -> register -> set-permissions, each leaving its mark, and
/// bundle and register repeated without a second manifest or image.
#[tokio::test]
async fn steps_build_a_shared_image_with_its_manifest() {
    let stack = stack().await.unwrap();
    let (pipeline, store) = stack.pipeline().await.unwrap();
    let ec2 = stack.clients().ec2;
    let instance = launch_instance(&ec2, 16).await.unwrap();
    let job_id = JobId::parse(&unique("job")).unwrap();
    let name = unique("steps-image");

    let started = snapshot::start(&pipeline, start_input(&job_id, request(&instance, &name)))
        .await
        .unwrap();
    assert_eq!(started.state, SnapshotState::Pending);
    assert_eq!(started.snapshot_count, 2);
    let job = store.get(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Running);
    let mut recorded = job.snapshot_ids.clone();
    recorded.sort();
    assert_eq!(
        snapshots_of_job(&ec2, job_id.as_str()).await.unwrap(),
        recorded
    );
    let capture = job.capture.unwrap();
    assert_eq!(capture.block_devices.len(), 2);
    assert_eq!(capture.block_devices[1].device_name, "/dev/sdf");
    assert_eq!(capture.block_devices[1].volume_size_gib, 16);

    let checked = snapshot::check(&pipeline, &job_id).await.unwrap();
    assert_eq!(checked.state, SnapshotState::Completed);
    assert_eq!(store.get(&job_id).await.unwrap().percent, 80);

    let bundled = bundle::run(&pipeline, &job_id).await.unwrap();
    let path = ManifestPath::parse(&bundled.manifest_path).unwrap();
    assert!(
        path.key()
            .ends_with(&format!("/{name}/image.manifest.json")),
        "{path}"
    );
    let s3 = stack.clients().s3;
    let read = |path: ManifestPath| {
        let s3 = s3.clone();
        async move {
            s3.get_object()
                .bucket(path.bucket().as_str())
                .key(path.key())
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes()
        }
    };
    let first = read(path.clone()).await;
    let manifest = Manifest::from_file(&first).unwrap();
    assert_eq!(manifest.body.job_id, job_id);
    assert_eq!(manifest.body.source.instance_id.as_str(), instance);
    let mut in_manifest: Vec<String> = manifest
        .body
        .block_devices
        .iter()
        .map(|d| d.snapshot_id.to_string())
        .collect();
    in_manifest.sort();
    assert_eq!(in_manifest, recorded);
    bundle::run(&pipeline, &job_id).await.unwrap();
    assert_eq!(
        read(path.clone()).await,
        first,
        "a second bundle changed the manifest"
    );

    let registered = register::run(&pipeline, &job_id).await.unwrap();
    let again = register::run(&pipeline, &job_id).await.unwrap();
    assert_eq!(again.image_id, registered.image_id);
    let images = ec2
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
    assert_eq!(images.images().len(), 1, "one image per job");
    let tags: std::collections::HashMap<_, _> = images.images()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))
        .collect();
    assert_eq!(tags.get(TagKey::JOB_ID), Some(&job_id.as_str()));
    assert_eq!(
        tags.get(TagKey::MANIFEST),
        Some(&bundled.manifest_path.as_str())
    );
    assert_eq!(tags.get(TagKey::SOURCE_INSTANCE), Some(&instance.as_str()));

    let shared = permissions::run(&pipeline, &job_id).await.unwrap();
    assert_eq!(shared.grants, 1);
    let launch = ec2
        .describe_image_attribute()
        .image_id(&registered.image_id)
        .attribute(ImageAttributeName::LaunchPermission)
        .send()
        .await
        .unwrap();
    let accounts: Vec<&str> = launch
        .launch_permissions()
        .iter()
        .filter_map(|p| p.user_id())
        .collect();
    assert_eq!(accounts, ["012345678901"]);
    let done = store.get(&job_id).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.percent, 100);
    assert_eq!(done.image_id.as_deref(), Some(registered.image_id.as_str()));
    assert_eq!(
        done.manifest_path.as_deref(),
        Some(bundled.manifest_path.as_str())
    );
}

/// A build of an instance that does not exist fails at once and creates no snapshot; the job
/// is not left RUNNING.
#[tokio::test]
async fn missing_instance_fails_before_creating_anything() {
    let stack = stack().await.unwrap();
    let (pipeline, store) = stack.pipeline().await.unwrap();
    let job_id = JobId::parse(&unique("job")).unwrap();

    let err = snapshot::start(
        &pipeline,
        start_input(&job_id, request("i-0000000000000dead", "ghost")),
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type(), ErrorType::NotFound);
    assert_eq!(
        err.to_string(),
        "instance i-0000000000000dead does not exist"
    );
    assert!(snapshots_of_job(&stack.clients().ec2, job_id.as_str())
        .await
        .unwrap()
        .is_empty());
    assert_ne!(store.get(&job_id).await.unwrap().status, JobStatus::Running);
}

/// A request that breaks rules names every bad field and touches no instance.
#[tokio::test]
async fn bad_request_is_refused_with_every_field() {
    let stack = stack().await.unwrap();
    let (pipeline, _) = stack.pipeline().await.unwrap();
    let ec2 = stack.clients().ec2;
    let instance = launch_instance(&ec2, 8).await.unwrap();
    let job_id = JobId::parse(&unique("job")).unwrap();
    let mut bad = request(&instance, "no#good");
    bad.sharing.accounts = vec!["12345".into()];

    let err = snapshot::start(&pipeline, start_input(&job_id, bad))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), ErrorType::InvalidInput);
    let text = err.to_string();
    assert!(text.contains("name: character '#' at position 3"), "{text}");
    assert!(text.contains("sharing.accounts[0]"), "{text}");
    assert!(snapshots_of_job(&ec2, job_id.as_str())
        .await
        .unwrap()
        .is_empty());
}

/// An excluded device gets no snapshot, even where EC2 took one anyway.
#[tokio::test]
async fn excluded_devices_leave_no_snapshot() {
    let stack = stack().await.unwrap();
    let (pipeline, store) = stack.pipeline().await.unwrap();
    let ec2 = stack.clients().ec2;
    let instance = launch_instance(&ec2, 8).await.unwrap();
    let job_id = JobId::parse(&unique("job")).unwrap();
    let mut partial = request(&instance, &unique("root-only"));
    partial.exclude_devices = vec!["/dev/sdf".into()];

    let started = snapshot::start(&pipeline, start_input(&job_id, partial))
        .await
        .unwrap();
    assert_eq!(started.snapshot_count, 1);
    let job = store.get(&job_id).await.unwrap();
    assert_eq!(job.snapshot_ids.len(), 1);
    assert_eq!(
        snapshots_of_job(&ec2, job_id.as_str()).await.unwrap(),
        job.snapshot_ids
    );
    let capture = job.capture.unwrap();
    assert!(
        capture
            .not_captured
            .iter()
            .any(|n| n.starts_with("/dev/sdf")),
        "{:?}",
        capture.not_captured
    );
}

/// Rollback deletes the job's snapshots and leaves another job's alone.
#[tokio::test]
async fn rollback_deletes_only_what_the_job_created() {
    let stack = stack().await.unwrap();
    let (pipeline, store) = stack.pipeline().await.unwrap();
    let ec2 = stack.clients().ec2;
    let instance = launch_instance(&ec2, 8).await.unwrap();
    let failing = JobId::parse(&unique("job")).unwrap();
    let bystander = JobId::parse(&unique("job")).unwrap();
    snapshot::start(
        &pipeline,
        start_input(&failing, request(&instance, &unique("a"))),
    )
    .await
    .unwrap();
    snapshot::start(
        &pipeline,
        start_input(&bystander, request(&instance, &unique("b"))),
    )
    .await
    .unwrap();
    let kept = snapshots_of_job(&ec2, bystander.as_str()).await.unwrap();
    assert_eq!(kept.len(), 2);

    let output = purge::rollback(
        &pipeline,
        RollbackInput {
            job_id: failing.clone(),
            error: Some(StepFailure {
                error: "AmiForge.NotFound".into(),
                cause: Some(
                    r#"{"errorType":"AmiForge.NotFound","errorMessage":"bucket gone"}"#.into(),
                ),
            }),
        },
    )
    .await
    .unwrap();
    assert_eq!(output.snapshots_deleted, 2);
    assert!(snapshots_of_job(&ec2, failing.as_str())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        snapshots_of_job(&ec2, bystander.as_str()).await.unwrap(),
        kept
    );
    let job = store.get(&failing).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error.unwrap().message, "bucket gone");
    assert!(job.cleanup.is_some());
}
