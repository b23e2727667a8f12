//! Unit tests of the purge step with mocked SDK responses.

use std::sync::{Arc, Mutex};

use aws_sdk_ec2::operation::delete_snapshot::{DeleteSnapshotError, DeleteSnapshotOutput};
use aws_sdk_ec2::operation::deregister_image::DeregisterImageOutput;
use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::types::{Image, Snapshot, SnapshotState, Tag};
use aws_sdk_s3::operation::delete_object::DeleteObjectOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::error::ErrorMetadata;
use chrono::Utc;

use super::{rollback, Item, Outcome, PurgeReport};
use crate::contract::{RollbackInput, RollbackOutput, StepFailure};
use crate::domain::{
    BuildRequest, ImageAttributes, ImageName, InstanceId, JobId, Manifest, ManifestBody,
    SourceInstance, FORMAT_VERSION,
};
use crate::jobs::{Job, JobFailure, JobKind, JobStatus, JobStore};
use crate::steps::testing::pipeline;

const JOB: &str = "job-purge-1";
const PATH: &str = "s3://amiforge-test/images/web-1/image.manifest.json";
const IMAGE: &str = "ami-0d000001";
const SNAP_1: &str = "snap-0b000001";
const SNAP_2: &str = "snap-0b000002";
const SNAP_3: &str = "snap-0b000003";
const CAUSE: &str = "snapshot snap-0b000002 failed: internal error copying blocks";

fn job_id() -> JobId {
    JobId::parse(JOB).unwrap()
}

fn job(status: JobStatus) -> Job {
    let request = BuildRequest {
        instance_id: "i-0123abcd".into(),
        name: "web-1".into(),
        ..BuildRequest::default()
    };
    let mut job = Job::new(
        job_id(),
        JobKind::Build,
        serde_json::to_value(request).unwrap(),
        Utc::now(),
    );
    job.status = status;
    job.step = "snapshot".into();
    job.snapshot_ids = vec![SNAP_1.into(), SNAP_2.into()];
    job
}

/// What a Catch hands the rollback after the snapshot check failed.
fn failed_input() -> RollbackInput {
    RollbackInput {
        job_id: job_id(),
        error: Some(StepFailure {
            error: "AmiForge.Failed".into(),
            cause: Some(
                serde_json::json!({"errorType": "AmiForge.Failed", "errorMessage": CAUSE})
                    .to_string(),
            ),
        }),
    }
}

fn error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn tagged_with_job(filters: &[aws_sdk_ec2::types::Filter]) -> bool {
    filters
        .iter()
        .any(|f| f.name() == Some("tag:amiforge:job-id") && f.values() == [JOB])
}

fn snapshots_of(ids: &[&str]) -> DescribeSnapshotsOutput {
    let mut output = DescribeSnapshotsOutput::builder();
    for id in ids {
        output = output.snapshots(
            Snapshot::builder()
                .snapshot_id(*id)
                .state(SnapshotState::Pending)
                .build(),
        );
    }
    output.build()
}

fn manifest_file() -> Vec<u8> {
    Manifest::seal(ManifestBody {
        format_version: FORMAT_VERSION,
        name: ImageName::parse("web-1").unwrap(),
        description: None,
        source: SourceInstance {
            instance_id: InstanceId::parse("i-0123abcd").unwrap(),
            account_id: None,
            region: None,
        },
        attributes: ImageAttributes::default(),
        block_devices: Vec::new(),
        not_captured: Vec::new(),
        product_codes: Vec::new(),
        job_id: job_id(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
    })
    .to_file()
}

fn deleted(kind: &str, id: &str) -> Item {
    Item {
        kind: kind.into(),
        id: id.into(),
        outcome: Outcome::Deleted,
    }
}

fn report_of(job: &Job) -> PurgeReport {
    serde_json::from_value(job.cleanup.clone().unwrap()).unwrap()
}

/// A rollback records the Catch's message on the job, then removes the recorded snapshots,
/// those found only by the job tag, the tagged image (first) and the job's manifest.
#[tokio::test]
async fn rollback_fails_the_job_and_deletes_everything_it_made() {
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let images = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|input| input.owners() == ["self"] && tagged_with_job(input.filters()))
        .then_output(|| {
            DescribeImagesOutput::builder()
                .images(
                    Image::builder()
                        .image_id(IMAGE)
                        .tags(Tag::builder().key("amiforge:job-id").value(JOB).build())
                        .build(),
                )
                .build()
        });
    let snapshots = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(|input| tagged_with_job(input.filters()))
        .then_output(|| snapshots_of(&[SNAP_2, SNAP_3]));
    let seen = log.clone();
    let deregister = mock!(aws_sdk_ec2::Client::deregister_image)
        .match_requests(move |input| {
            seen.lock().unwrap().push(format!(
                "deregister {}",
                input.image_id().unwrap_or_default()
            ));
            true
        })
        .then_output(|| DeregisterImageOutput::builder().build());
    let seen = log.clone();
    let delete = mock!(aws_sdk_ec2::Client::delete_snapshot)
        .match_requests(move |input| {
            seen.lock().unwrap().push(format!(
                "delete {}",
                input.snapshot_id().unwrap_or_default()
            ));
            true
        })
        .then_output(|| DeleteSnapshotOutput::builder().build());
    let get = mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|input| input.key() == Some("images/web-1/image.manifest.json"))
        .then_output(|| {
            GetObjectOutput::builder()
                .body(ByteStream::from(manifest_file()))
                .build()
        });
    let seen = log.clone();
    let delete_object = mock!(aws_sdk_s3::Client::delete_object)
        .match_requests(move |input| {
            seen.lock().unwrap().push(format!(
                "delete s3://{}/{}",
                input.bucket().unwrap_or_default(),
                input.key().unwrap_or_default()
            ));
            true
        })
        .then_output(|| DeleteObjectOutput::builder().build());
    let (pipeline, store) = pipeline(
        &[&images, &snapshots, &deregister, &delete],
        &[&get, &delete_object],
        &[],
    );
    let mut running = job(JobStatus::Running);
    running.manifest_path = Some(PATH.into());
    store.create(&running).await.unwrap();

    let output = rollback(&pipeline, failed_input()).await.unwrap();
    assert_eq!(
        output,
        RollbackOutput {
            job_id: job_id(),
            images_deregistered: 1,
            snapshots_deleted: 3,
            objects_deleted: 1,
            error: "AmiForge.Failed".into(),
            cause: CAUSE.into(),
        }
    );
    assert_eq!(
        *log.lock().unwrap(),
        [
            format!("deregister {IMAGE}"),
            format!("delete {SNAP_1}"),
            format!("delete {SNAP_2}"),
            format!("delete {SNAP_3}"),
            format!("delete {PATH}"),
        ]
    );

    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.error,
        Some(JobFailure {
            error_type: "AmiForge.Failed".into(),
            message: CAUSE.into(),
        })
    );
    assert_eq!(job.message, CAUSE);
    assert_eq!(job.step, "snapshot");
    assert!(job.finished_at.is_some());
    assert_eq!(
        report_of(&job).items,
        [
            deleted("image", IMAGE),
            deleted("snapshot", SNAP_1),
            deleted("snapshot", SNAP_2),
            deleted("snapshot", SNAP_3),
            deleted("object", PATH),
        ]
    );
}

/// A snapshot still pending cannot be deleted yet: the rest goes, the job is FAILED anyway,
/// and the rollback asks to be retried; the retry finishes the cleanup.
#[tokio::test]
async fn rollback_retries_a_pending_snapshot_and_keeps_the_job_failed() {
    let images = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|input| tagged_with_job(input.filters()))
        .then_output(|| DescribeImagesOutput::builder().build());
    let snapshots = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(|input| tagged_with_job(input.filters()))
        .sequence()
        .output(|| snapshots_of(&[SNAP_1, SNAP_2]))
        .output(|| snapshots_of(&[SNAP_2]))
        .build();
    let delete_first = mock!(aws_sdk_ec2::Client::delete_snapshot)
        .match_requests(|input| input.snapshot_id() == Some(SNAP_1))
        .sequence()
        .output(|| DeleteSnapshotOutput::builder().build())
        .error(|| {
            DeleteSnapshotError::generic(error(
                "InvalidSnapshot.NotFound",
                "The snapshot 'snap-0b000001' does not exist.",
            ))
        })
        .build();
    let delete_pending = mock!(aws_sdk_ec2::Client::delete_snapshot)
        .match_requests(|input| input.snapshot_id() == Some(SNAP_2))
        .sequence()
        .error(|| {
            DeleteSnapshotError::generic(error(
                "IncorrectState",
                "The snapshot 'snap-0b000002' is in state pending.",
            ))
        })
        .output(|| DeleteSnapshotOutput::builder().build())
        .build();
    let (pipeline, store) = pipeline(
        &[&images, &snapshots, &delete_first, &delete_pending],
        &[],
        &[],
    );
    store.create(&job(JobStatus::Running)).await.unwrap();

    let err = rollback(&pipeline, failed_input()).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "AmiForge.Retryable");
    assert_eq!(
        err.to_string(),
        format!("cleanup of job {JOB} is not finished; still present: snapshot {SNAP_2}")
    );
    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(job.error.as_ref().unwrap().message, CAUSE);
    assert_eq!(
        report_of(&job).items,
        [
            deleted("snapshot", SNAP_1),
            Item {
                kind: "snapshot".into(),
                id: SNAP_2.into(),
                outcome: Outcome::Failed(
                    "DeleteSnapshot failed: The snapshot 'snap-0b000002' is in state pending."
                        .into()
                ),
            },
        ]
    );
    assert_eq!(delete_first.num_calls(), 1);
    assert_eq!(delete_pending.num_calls(), 1);

    let output = rollback(&pipeline, failed_input()).await.unwrap();
    // The first snapshot is gone already; that counts as deleted.
    assert_eq!(output.snapshots_deleted, 2);
    assert_eq!(output.images_deregistered, 0);
    assert_eq!(output.cause, CAUSE);
    assert_eq!(delete_first.num_calls(), 2);
    assert_eq!(delete_pending.num_calls(), 2);
    let again = store.get(&job_id()).await.unwrap();
    assert_eq!(again.status, JobStatus::Failed);
    assert_eq!(again.error, job.error);
    assert_eq!(again.finished_at, job.finished_at);
    assert_eq!(
        report_of(&again).items,
        [deleted("snapshot", SNAP_1), deleted("snapshot", SNAP_2)]
    );
}

/// A rollback reaching a job that already SUCCEEDED (the share step timing out after its
/// last write) leaves the finished image and its snapshots in place.
#[tokio::test]
async fn rollback_of_a_succeeded_job_keeps_its_image() {
    let images = mock!(aws_sdk_ec2::Client::describe_images)
        .then_output(|| DescribeImagesOutput::builder().build());
    let snapshots = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let deregister = mock!(aws_sdk_ec2::Client::deregister_image)
        .then_output(|| DeregisterImageOutput::builder().build());
    let delete = mock!(aws_sdk_ec2::Client::delete_snapshot)
        .then_output(|| DeleteSnapshotOutput::builder().build());
    let rules: [&Rule; 4] = [&images, &snapshots, &deregister, &delete];
    let (pipeline, store) = pipeline(&rules, &[], &[]);
    let mut succeeded = job(JobStatus::Succeeded);
    succeeded.image_id = Some(IMAGE.into());
    store.create(&succeeded).await.unwrap();

    let _ = rollback(&pipeline, failed_input()).await;
    assert_eq!(
        deregister.num_calls(),
        0,
        "the finished image was deregistered"
    );
    assert_eq!(
        delete.num_calls(),
        0,
        "the finished image's snapshots were deleted"
    );
    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.image_id.as_deref(), Some(IMAGE));
}

/// An image with a root and two data volumes plus an ephemeral mapping, whose second data
/// snapshot another image also uses. The emulator ignores block device mappings when
/// registering, so two images cannot share a snapshot there: this case lives here.
fn shared_snapshot_rules() -> (Rule, Rule, Rule) {
    use aws_sdk_ec2::types::{BlockDeviceMapping, EbsBlockDevice};
    let ebs = |device: &str, snapshot: &str| {
        BlockDeviceMapping::builder()
            .device_name(device)
            .ebs(
                EbsBlockDevice::builder()
                    .snapshot_id(snapshot)
                    .volume_size(8)
                    .build(),
            )
            .build()
    };
    let ours = Image::builder()
        .image_id(IMAGE)
        .state("available".into())
        .tags(Tag::builder().key("amiforge:job-id").value(JOB).build())
        .tags(Tag::builder().key("amiforge:manifest").value(PATH).build())
        .block_device_mappings(ebs("/dev/xvda", SNAP_1))
        .block_device_mappings(ebs("/dev/sdf", SNAP_2))
        .block_device_mappings(ebs("/dev/sdg", SNAP_3))
        .block_device_mappings(
            BlockDeviceMapping::builder()
                .device_name("/dev/sdb")
                .virtual_name("ephemeral0")
                .build(),
        )
        .build();
    let other = Image::builder()
        .image_id("ami-0e000002")
        .block_device_mappings(ebs("/dev/xvda", SNAP_3))
        .build();
    let listed = {
        let (ours, other) = (ours.clone(), other.clone());
        mock!(aws_sdk_ec2::Client::describe_images)
            .match_requests(|input| input.owners() == ["self"] && input.image_ids().is_empty())
            .then_output(move || {
                DescribeImagesOutput::builder()
                    .images(ours.clone())
                    .images(other.clone())
                    .build()
            })
    };
    let one = mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|input| input.image_ids() == [IMAGE])
        .then_output(move || DescribeImagesOutput::builder().images(ours.clone()).build());
    let tagged = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    (listed, one, tagged)
}

/// The plan deletes the image's own snapshots, skips the ephemeral mapping, and keeps the
/// snapshot another image still uses, naming that image.
#[tokio::test]
async fn plan_keeps_a_snapshot_another_image_uses() {
    let (listed, one, tagged) = shared_snapshot_rules();
    let (pipeline, _) = pipeline(&[&listed, &one, &tagged], &[], &[]);
    let request = super::PurgeRequest {
        image_ids: vec![IMAGE.into()],
        ..super::PurgeRequest::default()
    };
    let ids = request.validate().unwrap();

    let plans = super::plan_purge(&pipeline, &ids, &request).await.unwrap();
    assert_eq!(plans.len(), 1);
    let plan = &plans[0].plan;
    assert!(plans[0].made_by_amiforge);
    assert_eq!(plan.images, [IMAGE]);
    assert_eq!(plan.snapshots, [SNAP_1, SNAP_2]);
    assert_eq!(
        plan.kept,
        [Item {
            kind: "snapshot".into(),
            id: SNAP_3.into(),
            outcome: Outcome::Kept("still used by image ami-0e000002".into()),
        }]
    );
    assert!(plan.objects.is_empty(), "files are only planned when asked");
}

/// An image without the amiforge tag is refused unless forced, and nothing of it is planned.
#[tokio::test]
async fn untagged_images_need_force() {
    let foreign = Image::builder()
        .image_id(IMAGE)
        .block_device_mappings(
            aws_sdk_ec2::types::BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    aws_sdk_ec2::types::EbsBlockDevice::builder()
                        .snapshot_id(SNAP_1)
                        .build(),
                )
                .build(),
        )
        .build();
    let images = mock!(aws_sdk_ec2::Client::describe_images).then_output(move || {
        DescribeImagesOutput::builder()
            .images(foreign.clone())
            .build()
    });
    let tagged = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let (pipeline, _) = pipeline(&[&images, &tagged], &[], &[]);
    let mut request = super::PurgeRequest {
        image_ids: vec![IMAGE.into()],
        ..super::PurgeRequest::default()
    };
    let ids = request.validate().unwrap();

    let refused = super::plan_purge(&pipeline, &ids, &request).await.unwrap();
    assert!(refused[0].refused.as_deref().unwrap().contains("force"));
    assert!(refused[0].plan.images.is_empty());
    assert!(refused[0].plan.snapshots.is_empty());

    request.force = true;
    let forced = super::plan_purge(&pipeline, &ids, &request).await.unwrap();
    assert_eq!(forced[0].refused, None);
    assert_eq!(forced[0].plan.images, [IMAGE]);
    assert_eq!(forced[0].plan.snapshots, [SNAP_1]);
}

/// A purge request names each bad id and refuses an empty list.
#[test]
fn purge_requests_name_bad_ids() {
    let empty = super::PurgeRequest::default().validate().unwrap_err();
    assert_eq!(empty.0[0].field, "image_ids");
    let bad = super::PurgeRequest {
        image_ids: vec!["ami-0123abcd".into(), "snap-0123abcd".into()],
        ..super::PurgeRequest::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(bad.0.len(), 1);
    assert_eq!(bad.0[0].field, "image_ids[1]");
}
