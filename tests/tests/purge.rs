//! Purges on the local stack: images the pipeline built, deleted through the purge-images
//! state machine with their snapshots and manifest folder.
//!
//! The emulator ignores block device mappings when registering, so an ephemeral mapping and a
//! snapshot shared by two images cannot be set up here; the purge planner's unit tests cover
//! both with mocked EC2 answers (`shared/src/steps/purge/tests.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::time::{Duration, Instant};

use amiforge::aws::sfn::Executions;
use amiforge::builds::start_purge;
use amiforge::domain::{AmiId, BuildRequest, ManifestPath};
use amiforge::jobs::{DynamoJobStore, Job, JobStatus, JobStore};
use amiforge::steps::purge::{plan_purge, PurgeRequest};
use amiforge_tests::build::run_build;
use amiforge_tests::{launch_instance_with, snapshots_of_job, stack, unique, Stack};
use aws_sdk_s3::primitives::ByteStream;

const TIMEOUT: Duration = Duration::from_secs(240);

/// Everything an image's purge may touch, to compare before and after.
#[derive(Debug, PartialEq, Eq)]
struct World {
    image_exists: bool,
    snapshots: Vec<String>,
    objects: Vec<String>,
}

/// The state of the image, of those of `snapshots` that still exist, and of the files under
/// `prefix`.
async fn world(stack: &Stack, image_id: &str, snapshots: &[String], prefix: &str) -> World {
    let clients = stack.clients();
    let existing = clients
        .ec2
        .describe_snapshots()
        .owner_ids("self")
        .send()
        .await
        .unwrap();
    let mut snapshots: Vec<String> = existing
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id())
        .filter(|id| snapshots.iter().any(|s| s == id))
        .map(str::to_owned)
        .collect();
    snapshots.sort();
    let images = clients
        .ec2
        .describe_images()
        .owners("self")
        .send()
        .await
        .unwrap();
    let image_exists = images
        .images()
        .iter()
        .any(|i| i.image_id() == Some(image_id));
    let listed = clients
        .s3
        .list_objects_v2()
        .bucket(stack.var("AMIFORGE_BUCKET").unwrap())
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    let mut objects: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    objects.sort();
    World {
        image_exists,
        snapshots,
        objects,
    }
}

async fn put(stack: &Stack, key: &str) {
    stack
        .clients()
        .s3
        .put_object()
        .bucket(stack.var("AMIFORGE_BUCKET").unwrap())
        .key(key)
        .body(ByteStream::from_static(b"{}"))
        .send()
        .await
        .unwrap();
}

async fn wait_for(store: &DynamoJobStore, job: &Job) -> Job {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let job = store.get(&job.job_id).await.unwrap();
        if job.status.is_final() {
            return job;
        }
        assert!(Instant::now() < deadline, "purge did not end: {job:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// An image with a root and two data volumes: a dry run changes nothing; the purge with
/// `remove_s3_files` deregisters it, deletes its three snapshots and every file of its manifest
/// folder, and leaves the folder of an image whose name extends this one's. The build job is
/// marked as purged.
#[tokio::test]
async fn purge_removes_image_snapshots_and_manifest_folder_only() {
    let stack = stack().await.unwrap();
    let clients = stack.clients();
    let instance = launch_instance_with(&clients.ec2, &[("/dev/sdf", 2), ("/dev/sdg", 3)])
        .await
        .unwrap();
    let name = unique("purge-image");
    let request = BuildRequest {
        instance_id: instance,
        name: name.clone(),
        ..BuildRequest::default()
    };
    let built = run_build(stack, &request, TIMEOUT, |_| {}).await.unwrap();
    assert_eq!(built.status, "SUCCEEDED", "{:?}", built.cause);
    let build = built.job;
    let image_id = build.image_id.clone().unwrap();
    let manifest = ManifestPath::parse(build.manifest_path.as_deref().unwrap()).unwrap();
    // `<prefix>/<name>/`, and `<prefix>/` around it
    let folder = manifest.dir();
    let parent = folder.strip_suffix(&format!("{name}/")).unwrap().to_owned();
    let sibling = format!("{parent}{name}-2/image.manifest.json");
    put(stack, &format!("{folder}notes.txt")).await;
    put(stack, &sibling).await;

    // Lists both this image's folder and the sibling's.
    let around = format!("{parent}{name}");
    // The job's three snapshots, and any the emulator gave the image itself (it ignores the
    // mapping amiforge registers).
    let mut snapshots = snapshots_of_job(&clients.ec2, build.job_id.as_str())
        .await
        .unwrap();
    assert_eq!(snapshots.len(), 3, "{snapshots:?}");
    let image = clients
        .ec2
        .describe_images()
        .image_ids(&image_id)
        .send()
        .await
        .unwrap();
    snapshots.extend(
        image.images()[0]
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
            .map(str::to_owned),
    );
    snapshots.sort();
    snapshots.dedup();
    let before = world(stack, &image_id, &snapshots, &around).await;
    assert!(before.image_exists);
    assert_eq!(before.snapshots, snapshots);
    assert_eq!(
        before.objects,
        [
            sibling.clone(),
            manifest.key().to_owned(),
            format!("{folder}notes.txt"),
        ]
    );

    let (pipeline, _) = stack.pipeline().await.unwrap();
    let purge = PurgeRequest {
        image_ids: vec![image_id.clone()],
        remove_s3_files: true,
        dry_run: true,
        force: false,
    };
    let ids = purge.validate().unwrap();
    let plans = plan_purge(&pipeline, &ids, &purge).await.unwrap();
    assert_eq!(plans.len(), 1);
    let plan = &plans[0];
    assert!(plan.made_by_amiforge && plan.refused.is_none(), "{plan:?}");
    assert_eq!(plan.plan.images, std::slice::from_ref(&image_id));
    let mut planned = plan.plan.snapshots.clone();
    planned.sort();
    assert_eq!(planned, before.snapshots);
    let mut objects = plan.plan.objects.clone();
    objects.sort();
    let bucket = manifest.bucket();
    assert_eq!(
        objects,
        [
            format!("s3://{bucket}/{}", manifest.key()),
            format!("s3://{bucket}/{folder}notes.txt")
        ]
    );
    assert_eq!(
        world(stack, &image_id, &snapshots, &around).await,
        before,
        "a dry run changes nothing"
    );

    let store = DynamoJobStore::new(
        clients.dynamodb.clone(),
        stack.var("AMIFORGE_JOBS_TABLE").unwrap(),
    );
    let mut config = stack
        .config(&stack.var("AMIFORGE_JOBS_TABLE").unwrap())
        .unwrap();
    config.prefix =
        amiforge::domain::KeyPrefix::parse(&stack.var("AMIFORGE_PREFIX").unwrap()).unwrap();
    let executions = Executions::new(clients.sfn.clone());
    let purge = PurgeRequest {
        dry_run: false,
        ..purge
    };
    let job = start_purge(&config, &store, &executions, &purge)
        .await
        .unwrap();
    let job = wait_for(&store, &job).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.percent, 100);
    let items = job.cleanup.clone().unwrap()["items"].clone();
    assert_eq!(
        items.as_array().unwrap().len(),
        1 + snapshots.len() + 2,
        "{items}"
    );

    let after = world(stack, &image_id, &snapshots, &around).await;
    assert_eq!(
        after,
        World {
            image_exists: false,
            snapshots: Vec::new(),
            objects: vec![sibling],
        }
    );
    let build = store.get(&build.job_id).await.unwrap();
    let note = build.cleanup.unwrap();
    assert_eq!(note["purge_job"], job.job_id.as_str(), "{note}");
    assert!(note["purged_at"].is_string(), "{note}");
}

/// An image amiforge did not make is refused without `force`, changing nothing, and deleted
/// with it.
#[tokio::test]
async fn untagged_images_are_refused_without_force() {
    let stack = stack().await.unwrap();
    let clients = stack.clients();
    let instance = launch_instance_with(&clients.ec2, &[]).await.unwrap();
    let image_id = clients
        .ec2
        .create_image()
        .instance_id(&instance)
        .name(unique("made-elsewhere"))
        .no_reboot(true)
        .send()
        .await
        .unwrap()
        .image_id()
        .unwrap()
        .to_owned();
    let (pipeline, _) = stack.pipeline().await.unwrap();
    let ids = vec![AmiId::parse(&image_id).unwrap()];
    let exists = || async {
        clients
            .ec2
            .describe_images()
            .image_ids(&image_id)
            .send()
            .await
            .map(|o| !o.images().is_empty())
            .unwrap_or(false)
    };

    let refused = PurgeRequest {
        image_ids: vec![image_id.clone()],
        ..PurgeRequest::default()
    };
    let plans = plan_purge(&pipeline, &ids, &refused).await.unwrap();
    assert!(!plans[0].made_by_amiforge);
    assert!(plans[0].refused.is_some(), "{plans:?}");

    let store = DynamoJobStore::new(
        clients.dynamodb.clone(),
        stack.var("AMIFORGE_JOBS_TABLE").unwrap(),
    );
    let config = stack
        .config(&stack.var("AMIFORGE_JOBS_TABLE").unwrap())
        .unwrap();
    let executions = Executions::new(clients.sfn.clone());
    let job = start_purge(&config, &store, &executions, &refused)
        .await
        .unwrap();
    let job = wait_for(&store, &job).await;
    assert_eq!(
        job.cleanup.clone().unwrap()["items"][0]["outcome"],
        "kept",
        "{job:?}"
    );
    assert!(exists().await, "a refused image stays");

    let forced = PurgeRequest {
        force: true,
        ..refused
    };
    let job = start_purge(&config, &store, &executions, &forced)
        .await
        .unwrap();
    let job = wait_for(&store, &job).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert!(!exists().await, "a forced purge deletes it");
}
