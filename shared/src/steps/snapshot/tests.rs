//! Unit tests of the snapshot step with mocked SDK responses.

use std::sync::{Arc, Mutex};

use aws_sdk_ec2::operation::create_snapshots::{CreateSnapshotsInput, CreateSnapshotsOutput};
use aws_sdk_ec2::operation::delete_snapshot::DeleteSnapshotOutput;
use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_instances::{DescribeInstancesError, DescribeInstancesOutput};
use aws_sdk_ec2::operation::describe_snapshots::{DescribeSnapshotsError, DescribeSnapshotsOutput};
use aws_sdk_ec2::operation::describe_volumes::{DescribeVolumesInput, DescribeVolumesOutput};
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, DeviceType, EbsInstanceBlockDevice, Image, Instance,
    InstanceBlockDeviceMapping, InstanceState, InstanceStateName, Reservation, ResourceType,
    Snapshot, SnapshotInfo, SnapshotState as Ec2SnapshotState, VirtualizationType, Volume,
    VolumeType,
};
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::error::ErrorMetadata;
use chrono::Utc;

use super::{check, start};
use crate::contract::{SnapshotOutput, SnapshotState, StartSnapshots};
use crate::domain::{
    BlockDevice, BuildRequest, ImageAttributes, InstanceId, JobId, SharingRequest, SnapshotId,
    SourceInstance, VolumeId,
};
use crate::error::StepError;
use crate::jobs::{Capture, Job, JobKind, JobStatus, JobStore, VolumeProgress};
use crate::steps::testing::pipeline;

const INSTANCE: &str = "i-0123abcd";
const SOURCE_IMAGE: &str = "ami-0c000001";
const VOL_ROOT: &str = "vol-0a000001";
const VOL_DATA: &str = "vol-0a000002";
const SNAP_ROOT: &str = "snap-0b000001";
const SNAP_DATA: &str = "snap-0b000002";
/// 2026-01-01T00:00:00Z.
const STARTED_SECS: i64 = 1_767_225_600;

fn job_id() -> JobId {
    JobId::parse("job-snapshot-1").unwrap()
}

fn request() -> BuildRequest {
    BuildRequest {
        instance_id: INSTANCE.into(),
        name: "web-1".into(),
        ..BuildRequest::default()
    }
}

fn start_input(request: BuildRequest) -> StartSnapshots {
    StartSnapshots {
        job_id: job_id(),
        execution_arn: None,
        request,
        schedule: None,
    }
}

fn error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn block_device(device: &str, volume: &str, snapshot: &str, size: i32) -> BlockDevice {
    BlockDevice {
        device_name: device.into(),
        volume_id: VolumeId::parse(volume).unwrap(),
        snapshot_id: SnapshotId::parse(snapshot).unwrap(),
        volume_size_gib: size,
        volume_type: "gp3".into(),
        iops: None,
        throughput: None,
        encrypted: false,
        kms_key_id: None,
        delete_on_termination: true,
    }
}

/// A running job whose snapshots of a 100 GiB root and a 10 GiB data volume were started.
async fn seed_started_job(store: &dyn JobStore) {
    let mut job = Job::new(
        job_id(),
        JobKind::Build,
        serde_json::to_value(request()).unwrap(),
        Utc::now(),
    );
    job.status = JobStatus::Running;
    job.snapshot_ids = vec![SNAP_ROOT.into(), SNAP_DATA.into()];
    job.capture = Some(Capture {
        source: SourceInstance {
            instance_id: InstanceId::parse(INSTANCE).unwrap(),
            account_id: Some("012345678901".into()),
            region: Some("us-east-1".into()),
        },
        attributes: ImageAttributes {
            architecture: "x86_64".into(),
            root_device_name: "/dev/xvda".into(),
            virtualization_type: "hvm".into(),
            ..ImageAttributes::default()
        },
        block_devices: vec![
            block_device("/dev/xvda", VOL_ROOT, SNAP_ROOT, 100),
            block_device("/dev/sdf", VOL_DATA, SNAP_DATA, 10),
        ],
        not_captured: Vec::new(),
        snapshots_started_at: "2026-01-01T00:00:00.000Z".into(),
    });
    store.create(&job).await.unwrap();
}

fn snapshot(
    id: &str,
    volume: &str,
    state: Ec2SnapshotState,
    progress: &str,
    size: i32,
    started: i64,
) -> Snapshot {
    Snapshot::builder()
        .snapshot_id(id)
        .volume_id(volume)
        .state(state)
        .progress(progress)
        .volume_size(size)
        .start_time(aws_smithy_types::DateTime::from_secs(started))
        .build()
}

/// Progress is weighted by volume size, its ETA sets the next wait, and the job shows the
/// snapshot phase as 80 % of the build; a second look finds every snapshot completed.
#[tokio::test]
async fn check_reports_weighted_progress_then_completion() {
    let started = Utc::now().timestamp() - 600;
    let describe = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(|input| input.snapshot_ids() == [SNAP_ROOT, SNAP_DATA])
        .sequence()
        .output(move || {
            DescribeSnapshotsOutput::builder()
                .snapshots(snapshot(
                    SNAP_ROOT,
                    VOL_ROOT,
                    Ec2SnapshotState::Pending,
                    "50%",
                    100,
                    started,
                ))
                .snapshots(snapshot(
                    SNAP_DATA,
                    VOL_DATA,
                    Ec2SnapshotState::Completed,
                    "100%",
                    10,
                    started,
                ))
                .build()
        })
        .output(move || {
            DescribeSnapshotsOutput::builder()
                .snapshots(snapshot(
                    SNAP_ROOT,
                    VOL_ROOT,
                    Ec2SnapshotState::Completed,
                    "100%",
                    100,
                    started,
                ))
                .snapshots(snapshot(
                    SNAP_DATA,
                    VOL_DATA,
                    Ec2SnapshotState::Completed,
                    "100%",
                    10,
                    started,
                ))
                .build()
        })
        .build();
    let (pipeline, store) = pipeline(&[&describe], &[], &[]);
    seed_started_job(store.as_ref()).await;

    let first = check(&pipeline, &job_id()).await.unwrap();
    assert_eq!(first.state, SnapshotState::Pending);
    // (100 GiB * 50 % + 10 GiB * 100 %) / 110 GiB = 54.5 %, rounded down.
    assert_eq!(first.percent, 54);
    // 600 s for 54 % leaves about 511 s; the step waits half of that.
    assert!(
        (253..=257).contains(&first.wait_seconds),
        "wait {}",
        first.wait_seconds
    );
    assert_eq!(first.snapshot_count, 2);
    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.percent, 43, "54 % of the 80 % the snapshots are worth");
    assert_eq!(job.step, "snapshot");
    let eta = job.eta_seconds.unwrap();
    assert!((509..=515).contains(&eta), "eta {eta}");
    assert_eq!(job.checks, 1);
    assert!(job.message.contains("54%"), "{}", job.message);
    assert!(
        job.message.contains("(1 of 2 completed)"),
        "{}",
        job.message
    );
    assert_eq!(
        job.volumes,
        [
            VolumeProgress {
                device_name: "/dev/xvda".into(),
                snapshot_id: SNAP_ROOT.into(),
                size_gib: 100,
                state: "pending".into(),
                percent: 50,
            },
            VolumeProgress {
                device_name: "/dev/sdf".into(),
                snapshot_id: SNAP_DATA.into(),
                size_gib: 10,
                state: "completed".into(),
                percent: 100,
            },
        ]
    );

    let second = check(&pipeline, &job_id()).await.unwrap();
    assert_eq!(
        second,
        SnapshotOutput {
            job_id: job_id(),
            state: SnapshotState::Completed,
            percent: 100,
            wait_seconds: 0,
            snapshot_count: 2,
        }
    );
    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.percent, 80);
    assert_eq!(job.eta_seconds, Some(0));
    assert_eq!(job.checks, 2);
    assert_eq!(job.message, "2 snapshot(s) completed");
    assert!(job.volumes.iter().all(|v| v.state == "completed"));
    assert_eq!(describe.num_calls(), 2);
}

/// A snapshot in `error` fails the step with EC2's reason and the snapshot's id.
#[tokio::test]
async fn check_fails_on_a_snapshot_in_error() {
    let describe = mock!(aws_sdk_ec2::Client::describe_snapshots).then_output(|| {
        let failed = Snapshot::builder()
            .snapshot_id(SNAP_DATA)
            .volume_id(VOL_DATA)
            .state(Ec2SnapshotState::Error)
            .state_message("internal error copying blocks")
            .progress("12%")
            .volume_size(10)
            .build();
        DescribeSnapshotsOutput::builder()
            .snapshots(snapshot(
                SNAP_ROOT,
                VOL_ROOT,
                Ec2SnapshotState::Pending,
                "40%",
                100,
                STARTED_SECS,
            ))
            .snapshots(failed)
            .build()
    });
    let (pipeline, store) = pipeline(&[&describe], &[], &[]);
    seed_started_job(store.as_ref()).await;

    let err = check(&pipeline, &job_id()).await.unwrap_err();
    assert!(
        matches!(&err, StepError::SnapshotFailed { snapshot_id, reason }
            if snapshot_id == SNAP_DATA && reason == "internal error copying blocks"),
        "{err:?}"
    );
    assert_eq!(err.error_type().as_str(), "AmiForge.Failed");
    assert_eq!(
        err.to_string(),
        "snapshot snap-0b000002 failed: internal error copying blocks"
    );
    assert_eq!(store.get(&job_id()).await.unwrap().checks, 0);
}

/// Throttling while looking at the snapshots is retryable, not a failed build.
#[tokio::test]
async fn check_throttled_is_retryable() {
    let describe = mock!(aws_sdk_ec2::Client::describe_snapshots).then_error(|| {
        DescribeSnapshotsError::generic(error("RequestLimitExceeded", "Request limit exceeded."))
    });
    let (pipeline, store) = pipeline(&[&describe], &[], &[]);
    seed_started_job(store.as_ref()).await;

    let err = check(&pipeline, &job_id()).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "AmiForge.Retryable");
    assert!(
        err.to_string()
            .contains("DescribeSnapshots failed: Request limit exceeded."),
        "{err}"
    );
    assert_eq!(describe.num_calls(), 1);
}

/// An instance EC2 does not know is reported as not found, and nothing is snapshotted.
#[tokio::test]
async fn start_of_a_missing_instance_is_not_found_and_takes_nothing() {
    let describe = mock!(aws_sdk_ec2::Client::describe_instances).then_error(|| {
        DescribeInstancesError::generic(error(
            "InvalidInstanceID.NotFound",
            "The instance ID 'i-0123abcd' does not exist",
        ))
    });
    let create = mock!(aws_sdk_ec2::Client::create_snapshots)
        .then_output(|| CreateSnapshotsOutput::builder().build());
    let (pipeline, store) = pipeline(&[&describe, &create], &[], &[]);

    let err = start(&pipeline, start_input(request())).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "AmiForge.NotFound");
    assert_eq!(err.to_string(), "instance i-0123abcd does not exist");
    assert_eq!(create.num_calls(), 0);
    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.status, JobStatus::Queued);
    assert!(job.snapshot_ids.is_empty());
}

/// A name another image holds is refused before any snapshot is taken, naming that image.
#[tokio::test]
async fn start_with_a_taken_name_is_a_conflict_and_takes_nothing() {
    let taken = mock!(aws_sdk_ec2::Client::describe_images).then_output(|| {
        DescribeImagesOutput::builder()
            .images(
                aws_sdk_ec2::types::Image::builder()
                    .image_id("ami-0e000001")
                    .name("web-1")
                    .build(),
            )
            .build()
    });
    let instances = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| DescribeInstancesOutput::builder().build());
    let create = mock!(aws_sdk_ec2::Client::create_snapshots)
        .then_output(|| CreateSnapshotsOutput::builder().build());
    let (pipeline, store) = pipeline(&[&taken, &instances, &create], &[], &[]);

    let err = start(&pipeline, start_input(request())).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "AmiForge.Conflict");
    assert!(err.to_string().contains("ami-0e000001"), "{err}");
    assert_eq!(instances.num_calls(), 0);
    assert_eq!(create.num_calls(), 0);
    assert!(store.get(&job_id()).await.unwrap().snapshot_ids.is_empty());
}

/// A bad request is refused with every bad field before any EC2 call.
#[tokio::test]
async fn start_of_an_invalid_request_lists_every_field_and_calls_nothing() {
    let instances = mock!(aws_sdk_ec2::Client::describe_instances)
        .then_output(|| DescribeInstancesOutput::builder().build());
    let images = mock!(aws_sdk_ec2::Client::describe_images)
        .then_output(|| DescribeImagesOutput::builder().build());
    let volumes = mock!(aws_sdk_ec2::Client::describe_volumes)
        .then_output(|| DescribeVolumesOutput::builder().build());
    let snapshots = mock!(aws_sdk_ec2::Client::describe_snapshots)
        .then_output(|| DescribeSnapshotsOutput::builder().build());
    let create = mock!(aws_sdk_ec2::Client::create_snapshots)
        .then_output(|| CreateSnapshotsOutput::builder().build());
    let rules: [&Rule; 5] = [&instances, &images, &volumes, &snapshots, &create];
    let (pipeline, _store) = pipeline(&rules, &[], &[]);

    let bad = BuildRequest {
        name: "a#".into(),
        sharing: SharingRequest {
            accounts: vec!["1234".into()],
            ..SharingRequest::default()
        },
        ..request()
    };
    let err = start(&pipeline, start_input(bad)).await.unwrap_err();
    assert_eq!(err.error_type().as_str(), "AmiForge.InvalidInput");
    let StepError::Invalid(invalid) = &err else {
        panic!("expected an invalid request, got {err:?}");
    };
    let fields: Vec<&str> = invalid.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "sharing.accounts[0]"]);
    let message = err.to_string();
    assert!(message.contains("name: an image name must be 3 to 128 characters long, got 2"));
    assert!(message.contains("sharing.accounts[0]: an account id must be exactly 12 digits"));
    for rule in rules {
        assert_eq!(rule.num_calls(), 0);
    }
}

/// Mocks of a running instance with a root and a data volume, launched from an image with
/// an instance-store device, and a CreateSnapshots that records its request.
struct Ec2World {
    instances: Rule,
    source_image: Rule,
    volumes: Rule,
    tagged: Rule,
    create: Rule,
    created: Arc<Mutex<Option<CreateSnapshotsInput>>>,
    volumes_asked: Arc<Mutex<Option<DescribeVolumesInput>>>,
}

impl Ec2World {
    fn new(snapshots: &'static [(&'static str, &'static str, i32)]) -> Self {
        let instances = mock!(aws_sdk_ec2::Client::describe_instances)
            .match_requests(|input| input.instance_ids() == [INSTANCE])
            .then_output(|| {
                let attached = |device: &str, volume: &str, delete: bool| {
                    InstanceBlockDeviceMapping::builder()
                        .device_name(device)
                        .ebs(
                            EbsInstanceBlockDevice::builder()
                                .volume_id(volume)
                                .delete_on_termination(delete)
                                .build(),
                        )
                        .build()
                };
                let instance = Instance::builder()
                    .instance_id(INSTANCE)
                    .image_id(SOURCE_IMAGE)
                    .state(
                        InstanceState::builder()
                            .name(InstanceStateName::Running)
                            .build(),
                    )
                    .root_device_name("/dev/xvda")
                    .root_device_type(DeviceType::Ebs)
                    // EC2 lists data volumes before the root here: the step puts root first.
                    .block_device_mappings(attached("/dev/sdf", VOL_DATA, false))
                    .block_device_mappings(attached("/dev/xvda", VOL_ROOT, true))
                    .architecture(ArchitectureValues::X8664)
                    .virtualization_type(VirtualizationType::Hvm)
                    .ena_support(true)
                    .build();
                DescribeInstancesOutput::builder()
                    .reservations(
                        Reservation::builder()
                            .owner_id("012345678901")
                            .instances(instance)
                            .build(),
                    )
                    .build()
            });
        let source_image = mock!(aws_sdk_ec2::Client::describe_images)
            .match_requests(|input| input.image_ids() == [SOURCE_IMAGE])
            .then_output(|| {
                DescribeImagesOutput::builder()
                    .images(
                        Image::builder()
                            .image_id(SOURCE_IMAGE)
                            .block_device_mappings(
                                BlockDeviceMapping::builder()
                                    .device_name("/dev/sdb")
                                    .virtual_name("ephemeral0")
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            });
        let volumes_asked = Arc::new(Mutex::new(None));
        let asked = volumes_asked.clone();
        let volumes = mock!(aws_sdk_ec2::Client::describe_volumes)
            .match_requests(move |input| {
                *asked.lock().unwrap() = Some(input.clone());
                true
            })
            .then_output(|| {
                DescribeVolumesOutput::builder()
                    .volumes(
                        Volume::builder()
                            .volume_id(VOL_ROOT)
                            .size(8)
                            .volume_type(VolumeType::Gp3)
                            .iops(3000)
                            .throughput(125)
                            .encrypted(false)
                            .build(),
                    )
                    .volumes(
                        Volume::builder()
                            .volume_id(VOL_DATA)
                            .size(200)
                            .volume_type(VolumeType::Io2)
                            .iops(4000)
                            .encrypted(false)
                            .build(),
                    )
                    .build()
            });
        let tagged = mock!(aws_sdk_ec2::Client::describe_snapshots)
            .match_requests(|input| {
                input.filters().iter().any(|f| {
                    f.name() == Some("tag:amiforge:job-id") && f.values() == ["job-snapshot-1"]
                })
            })
            .then_output(|| DescribeSnapshotsOutput::builder().build());
        let created = Arc::new(Mutex::new(None));
        let record = created.clone();
        let create = mock!(aws_sdk_ec2::Client::create_snapshots)
            .match_requests(move |input| {
                *record.lock().unwrap() = Some(input.clone());
                true
            })
            .then_output(move || {
                let mut output = CreateSnapshotsOutput::builder();
                for (snapshot, volume, size) in snapshots {
                    output = output.snapshots(
                        SnapshotInfo::builder()
                            .snapshot_id(*snapshot)
                            .volume_id(*volume)
                            .state(Ec2SnapshotState::Pending)
                            .progress("")
                            .volume_size(*size)
                            .start_time(aws_smithy_types::DateTime::from_secs(STARTED_SECS))
                            .build(),
                    );
                }
                output.build()
            });
        Self {
            instances,
            source_image,
            volumes,
            tagged,
            create,
            created,
            volumes_asked,
        }
    }

    fn rules(&self) -> [&Rule; 5] {
        [
            &self.instances,
            &self.source_image,
            &self.volumes,
            &self.tagged,
            &self.create,
        ]
    }

    fn created(&self) -> CreateSnapshotsInput {
        self.created.lock().unwrap().clone().unwrap()
    }
}

/// Starting snapshots tags them with the job, records what was captured (root first, with the
/// volumes' settings) and what was not (instance store), and asks to look again soon.
#[tokio::test]
async fn start_takes_a_tagged_snapshot_set_and_records_the_capture() {
    const BOTH: &[(&str, &str, i32)] = &[(SNAP_DATA, VOL_DATA, 200), (SNAP_ROOT, VOL_ROOT, 8)];
    let world = Ec2World::new(BOTH);
    let (pipeline, store) = pipeline(&world.rules(), &[], &[]);

    let output = start(&pipeline, start_input(request())).await.unwrap();
    assert_eq!(
        output,
        SnapshotOutput {
            job_id: job_id(),
            state: SnapshotState::Pending,
            percent: 0,
            wait_seconds: 5,
            snapshot_count: 2,
        }
    );

    let sent = world.created();
    let specification = sent.instance_specification().unwrap();
    assert_eq!(specification.instance_id(), Some(INSTANCE));
    assert_eq!(specification.exclude_boot_volume(), Some(false));
    assert!(specification.exclude_data_volume_ids().is_empty());
    let tag_specification = &sent.tag_specifications()[0];
    assert_eq!(
        tag_specification.resource_type(),
        Some(&ResourceType::Snapshot)
    );
    let tags: Vec<(&str, &str)> = tag_specification
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(
        tags.contains(&("amiforge:job-id", "job-snapshot-1")),
        "{tags:?}"
    );
    assert!(tags.contains(&("amiforge:image-name", "web-1")), "{tags:?}");
    assert!(
        tags.contains(&("amiforge:source-instance", INSTANCE)),
        "{tags:?}"
    );
    assert_eq!(world.create.num_calls(), 1);

    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(job.snapshot_ids, [SNAP_DATA, SNAP_ROOT]);
    assert_eq!(job.instance_id.as_deref(), Some(INSTANCE));
    assert_eq!(job.image_name.as_deref(), Some("web-1"));
    assert_eq!(job.message, "2 snapshot(s) started");
    let capture = job.capture.unwrap();
    assert_eq!(capture.source.account_id.as_deref(), Some("012345678901"));
    assert_eq!(capture.source.region.as_deref(), Some("us-east-1"));
    assert_eq!(capture.attributes.architecture, "x86_64");
    assert_eq!(capture.attributes.root_device_name, "/dev/xvda");
    assert_eq!(capture.attributes.virtualization_type, "hvm");
    assert!(capture.attributes.ena_support);
    assert_eq!(capture.snapshots_started_at, "2026-01-01T00:00:00.000Z");
    assert_eq!(
        capture.block_devices,
        [
            BlockDevice {
                device_name: "/dev/xvda".into(),
                volume_id: VolumeId::parse(VOL_ROOT).unwrap(),
                snapshot_id: SnapshotId::parse(SNAP_ROOT).unwrap(),
                volume_size_gib: 8,
                volume_type: "gp3".into(),
                iops: Some(3000),
                throughput: Some(125),
                encrypted: false,
                kms_key_id: None,
                delete_on_termination: true,
            },
            BlockDevice {
                device_name: "/dev/sdf".into(),
                volume_id: VolumeId::parse(VOL_DATA).unwrap(),
                snapshot_id: SnapshotId::parse(SNAP_DATA).unwrap(),
                volume_size_gib: 200,
                volume_type: "io2".into(),
                iops: Some(4000),
                throughput: None,
                encrypted: false,
                kms_key_id: None,
                delete_on_termination: false,
            },
        ]
    );
    assert_eq!(
        capture.not_captured,
        ["/dev/sdb: instance store, not captured"]
    );
    assert_eq!(
        job.volumes
            .iter()
            .map(|v| (v.device_name.as_str(), v.size_gib, v.state.as_str()))
            .collect::<Vec<_>>(),
        [("/dev/xvda", 8, "pending"), ("/dev/sdf", 200, "pending")]
    );
}

/// An excluded data device is left out of CreateSnapshots by its volume id and recorded as
/// not captured.
#[tokio::test]
async fn start_excludes_the_volume_of_an_excluded_device() {
    const ROOT_ONLY: &[(&str, &str, i32)] = &[(SNAP_ROOT, VOL_ROOT, 8)];
    let world = Ec2World::new(ROOT_ONLY);
    let (pipeline, store) = pipeline(&world.rules(), &[], &[]);

    let request = BuildRequest {
        exclude_devices: vec!["/dev/sdf".into()],
        ..request()
    };
    let output = start(&pipeline, start_input(request)).await.unwrap();
    assert_eq!(output.snapshot_count, 1);

    let sent = world.created();
    let specification = sent.instance_specification().unwrap();
    assert_eq!(specification.exclude_boot_volume(), Some(false));
    assert_eq!(specification.exclude_data_volume_ids(), [VOL_DATA]);
    let asked = world.volumes_asked.lock().unwrap().clone().unwrap();
    assert_eq!(asked.volume_ids(), [VOL_ROOT]);

    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.snapshot_ids, [SNAP_ROOT]);
    let capture = job.capture.unwrap();
    assert_eq!(
        capture
            .block_devices
            .iter()
            .map(|d| d.device_name.as_str())
            .collect::<Vec<_>>(),
        ["/dev/xvda"]
    );
    assert_eq!(
        capture.not_captured,
        [
            "/dev/sdf (vol-0a000002): excluded by request",
            "/dev/sdb: instance store, not captured",
        ]
    );
}

/// A snapshot CreateSnapshots took of an excluded volume anyway is deleted at once and kept
/// out of the job.
#[tokio::test]
async fn start_deletes_a_snapshot_of_an_excluded_volume() {
    const BOTH: &[(&str, &str, i32)] = &[(SNAP_ROOT, VOL_ROOT, 8), (SNAP_DATA, VOL_DATA, 200)];
    let world = Ec2World::new(BOTH);
    let delete = mock!(aws_sdk_ec2::Client::delete_snapshot)
        .match_requests(|input| input.snapshot_id() == Some(SNAP_DATA))
        .then_output(|| DeleteSnapshotOutput::builder().build());
    let [instances, source_image, volumes, tagged, create] = world.rules();
    let (pipeline, store) = pipeline(
        &[instances, source_image, volumes, tagged, create, &delete],
        &[],
        &[],
    );

    let request = BuildRequest {
        exclude_devices: vec!["/dev/sdf".into()],
        ..request()
    };
    let output = start(&pipeline, start_input(request)).await.unwrap();
    assert_eq!(output.snapshot_count, 1);
    assert_eq!(delete.num_calls(), 1);
    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.snapshot_ids, [SNAP_ROOT]);
    assert_eq!(job.volumes.len(), 1);
    assert_eq!(job.volumes[0].snapshot_id, SNAP_ROOT);
}
