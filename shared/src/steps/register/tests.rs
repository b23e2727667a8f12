//! Unit tests of the register step with mocked SDK responses.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::operation::create_tags::{CreateTagsInput, CreateTagsOutput};
use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::modify_image_attribute::ModifyImageAttributeOutput;
use aws_sdk_ec2::operation::register_image::{
    RegisterImageError, RegisterImageInput, RegisterImageOutput,
};
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, BootModeValues, EbsBlockDevice, Image,
    ImdsSupportValues, ResourceType, Tag, TpmSupportValues, VolumeType,
};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::error::ErrorMetadata;
use chrono::Utc;

use super::run;
use crate::contract::RegisterOutput;
use crate::domain::{
    BlockDevice, BuildRequest, ImageAttributes, ImageName, InstanceId, JobId, Manifest,
    ManifestBody, ProductCode, SnapshotId, SourceInstance, VolumeId, FORMAT_VERSION,
};
use crate::error::StepError;
use crate::jobs::{Job, JobKind, JobStatus, JobStore};
use crate::steps::testing::pipeline;

const JOB: &str = "job-register-1";
const PATH: &str = "s3://amiforge-test/images/web-1/image.manifest.json";
const SNAP_ROOT: &str = "snap-0b000001";
const SNAP_DATA: &str = "snap-0b000002";
const REGISTERED: &str = "ami-0d000001";
const EXISTING: &str = "ami-0d000009";

fn job_id() -> JobId {
    JobId::parse(JOB).unwrap()
}

fn body() -> ManifestBody {
    ManifestBody {
        format_version: FORMAT_VERSION,
        name: ImageName::parse("web-1").unwrap(),
        description: Some("web server".into()),
        source: SourceInstance {
            instance_id: InstanceId::parse("i-0123abcd").unwrap(),
            account_id: Some("012345678901".into()),
            region: Some("us-east-1".into()),
        },
        attributes: ImageAttributes {
            architecture: "x86_64".into(),
            root_device_name: "/dev/xvda".into(),
            virtualization_type: "hvm".into(),
            boot_mode: Some("uefi".into()),
            ena_support: true,
            sriov_net_support: None,
            tpm_support: Some("v2.0".into()),
            imds_support: Some("v2.0".into()),
            kernel_id: None,
            ramdisk_id: None,
        },
        block_devices: vec![
            BlockDevice {
                device_name: "/dev/xvda".into(),
                volume_id: VolumeId::parse("vol-0a000001").unwrap(),
                snapshot_id: SnapshotId::parse(SNAP_ROOT).unwrap(),
                volume_size_gib: 8,
                volume_type: "gp3".into(),
                iops: Some(3000),
                throughput: Some(250),
                encrypted: false,
                kms_key_id: None,
                delete_on_termination: true,
            },
            BlockDevice {
                device_name: "/dev/sdf".into(),
                volume_id: VolumeId::parse("vol-0a000002").unwrap(),
                snapshot_id: SnapshotId::parse(SNAP_DATA).unwrap(),
                volume_size_gib: 200,
                volume_type: "io2".into(),
                iops: Some(8000),
                // io2 has no throughput setting: RegisterImage must not get one.
                throughput: Some(500),
                encrypted: false,
                kms_key_id: None,
                delete_on_termination: false,
            },
        ],
        not_captured: Vec::new(),
        product_codes: Vec::new(),
        job_id: job_id(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

/// A running job whose manifest was written to [`PATH`].
async fn seed_bundled_job(store: &dyn JobStore) {
    let request = BuildRequest {
        instance_id: "i-0123abcd".into(),
        name: "web-1".into(),
        description: Some("web server".into()),
        tags: BTreeMap::from([("team".to_owned(), "web".to_owned())]),
        ..BuildRequest::default()
    };
    let mut job = Job::new(
        job_id(),
        JobKind::Build,
        serde_json::to_value(request).unwrap(),
        Utc::now(),
    );
    job.status = JobStatus::Running;
    job.snapshot_ids = vec![SNAP_ROOT.into(), SNAP_DATA.into()];
    job.manifest_path = Some(PATH.into());
    job.schedule = Some("nightly".into());
    store.create(&job).await.unwrap();
}

fn manifest_object(file: Vec<u8>) -> Rule {
    mock!(aws_sdk_s3::Client::get_object)
        .match_requests(|input| {
            input.bucket() == Some("amiforge-test")
                && input.key() == Some("images/web-1/image.manifest.json")
        })
        .then_output(move || {
            GetObjectOutput::builder()
                .body(ByteStream::from(file.clone()))
                .build()
        })
}

/// DescribeImages by name, answering `owner_job` as the job tag of an image holding the name,
/// or no image.
fn images_named(owner_job: Option<&'static str>) -> Rule {
    mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|input| {
            input.owners() == ["self"]
                && input
                    .filters()
                    .iter()
                    .any(|f| f.name() == Some("name") && f.values() == ["web-1"])
        })
        .then_output(move || {
            let mut output = DescribeImagesOutput::builder();
            if let Some(owner) = owner_job {
                output = output.images(existing_image(owner));
            }
            output.build()
        })
}

fn existing_image(owner_job: &str) -> Image {
    Image::builder()
        .image_id(EXISTING)
        .name("web-1")
        .tags(
            Tag::builder()
                .key("amiforge:job-id")
                .value(owner_job)
                .build(),
        )
        .build()
}

fn capture<I: Clone + Send + Sync + 'static>() -> Arc<Mutex<Option<I>>> {
    Arc::new(Mutex::new(None))
}

fn register_rule(sent: &Arc<Mutex<Option<RegisterImageInput>>>) -> Rule {
    let record = sent.clone();
    mock!(aws_sdk_ec2::Client::register_image)
        .match_requests(move |input| {
            *record.lock().unwrap() = Some(input.clone());
            true
        })
        .then_output(|| RegisterImageOutput::builder().image_id(REGISTERED).build())
}

fn create_tags_rule(sent: &Arc<Mutex<Option<CreateTagsInput>>>) -> Rule {
    let record = sent.clone();
    mock!(aws_sdk_ec2::Client::create_tags)
        .match_requests(move |input| {
            *record.lock().unwrap() = Some(input.clone());
            true
        })
        .then_output(|| CreateTagsOutput::builder().build())
}

fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn pair(key: &str, value: &str) -> (String, String) {
    (key.to_owned(), value.to_owned())
}

/// RegisterImage gets exactly the manifest's block device mapping and boot attributes, with
/// the image tagged in the same call; the snapshots are then tagged with the image's id.
#[tokio::test]
async fn register_sends_the_manifest_mapping_and_tags() {
    let registered = capture();
    let tagged = capture();
    let s3 = manifest_object(Manifest::seal(body()).to_file());
    let named = images_named(None);
    let register = register_rule(&registered);
    let tags = create_tags_rule(&tagged);
    let (pipeline, store) = pipeline(&[&named, &register, &tags], &[&s3], &[]);
    seed_bundled_job(store.as_ref()).await;

    let output = run(&pipeline, &job_id()).await.unwrap();
    assert_eq!(
        output,
        RegisterOutput {
            job_id: job_id(),
            image_id: REGISTERED.into(),
        }
    );

    let sent = registered.lock().unwrap().clone().unwrap();
    assert_eq!(sent.name(), Some("web-1"));
    assert_eq!(sent.description(), Some("web server"));
    assert_eq!(sent.architecture(), Some(&ArchitectureValues::X8664));
    assert_eq!(sent.root_device_name(), Some("/dev/xvda"));
    assert_eq!(sent.virtualization_type(), Some("hvm"));
    assert_eq!(sent.boot_mode(), Some(&BootModeValues::Uefi));
    assert_eq!(sent.ena_support(), Some(true));
    assert_eq!(sent.tpm_support(), Some(&TpmSupportValues::V20));
    assert_eq!(sent.imds_support(), Some(&ImdsSupportValues::V20));
    assert_eq!(sent.kernel_id(), None);
    assert_eq!(
        sent.block_device_mappings(),
        [
            BlockDeviceMapping::builder()
                .device_name("/dev/xvda")
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id(SNAP_ROOT)
                        .volume_size(8)
                        .volume_type(VolumeType::Gp3)
                        .iops(3000)
                        .throughput(250)
                        .delete_on_termination(true)
                        .build()
                )
                .build(),
            BlockDeviceMapping::builder()
                .device_name("/dev/sdf")
                .ebs(
                    EbsBlockDevice::builder()
                        .snapshot_id(SNAP_DATA)
                        .volume_size(200)
                        .volume_type(VolumeType::Io2)
                        .iops(8000)
                        .delete_on_termination(false)
                        .build()
                )
                .build(),
        ]
    );
    let tag_specification = &sent.tag_specifications()[0];
    assert_eq!(
        tag_specification.resource_type(),
        Some(&ResourceType::Image)
    );
    assert_eq!(
        pairs(tag_specification.tags()),
        [
            pair("amiforge:job-id", JOB),
            pair("amiforge:image-name", "web-1"),
            pair("amiforge:manifest", PATH),
            pair("amiforge:source-instance", "i-0123abcd"),
            pair("amiforge:schedule", "nightly"),
            pair("team", "web"),
        ]
    );

    let sent = tagged.lock().unwrap().clone().unwrap();
    assert_eq!(sent.resources(), [SNAP_ROOT, SNAP_DATA, REGISTERED]);
    let snapshot_tags = pairs(sent.tags());
    for expected in [
        pair("amiforge:job-id", JOB),
        pair("amiforge:manifest", PATH),
        pair("amiforge:image-id", REGISTERED),
    ] {
        assert!(snapshot_tags.contains(&expected), "{snapshot_tags:?}");
    }
    assert_eq!(register.num_calls(), 1);
    assert_eq!(tags.num_calls(), 1);

    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.image_id.as_deref(), Some(REGISTERED));
    assert_eq!(job.step, "register");
    assert_eq!(job.percent, 95);
    assert_eq!(job.message, "image ami-0d000001 registered");
    assert_eq!(job.status, JobStatus::Running);
}

/// An image of the name that this job registered before (a retry) is adopted, not
/// registered again.
#[tokio::test]
async fn register_adopts_the_image_this_job_registered() {
    let registered = capture();
    let tagged = capture();
    let s3 = manifest_object(Manifest::seal(body()).to_file());
    let named = images_named(Some(JOB));
    let register = register_rule(&registered);
    let tags = create_tags_rule(&tagged);
    let (pipeline, store) = pipeline(&[&named, &register, &tags], &[&s3], &[]);
    seed_bundled_job(store.as_ref()).await;

    let output = run(&pipeline, &job_id()).await.unwrap();
    assert_eq!(output.image_id, EXISTING);
    assert_eq!(register.num_calls(), 0);
    let sent = tagged.lock().unwrap().clone().unwrap();
    assert_eq!(sent.resources(), [SNAP_ROOT, SNAP_DATA, EXISTING]);
    assert!(pairs(sent.tags()).contains(&pair("amiforge:image-id", EXISTING)));
    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.image_id.as_deref(), Some(EXISTING));
}

/// An image of the name made by another job is a conflict naming that image; nothing is
/// registered or tagged.
#[tokio::test]
async fn register_refuses_a_name_held_by_another_job() {
    let registered = capture();
    let tagged = capture();
    let s3 = manifest_object(Manifest::seal(body()).to_file());
    let named = images_named(Some("job-other"));
    let register = register_rule(&registered);
    let tags = create_tags_rule(&tagged);
    let (pipeline, store) = pipeline(&[&named, &register, &tags], &[&s3], &[]);
    seed_bundled_job(store.as_ref()).await;

    let err = run(&pipeline, &job_id()).await.unwrap_err();
    assert!(
        matches!(&err, StepError::NameTaken { name, image_id }
            if name == "web-1" && image_id == EXISTING),
        "{err:?}"
    );
    assert_eq!(err.error_type().as_str(), "AmiForge.Conflict");
    assert_eq!(
        err.to_string(),
        "an image named \"web-1\" already exists: ami-0d000009"
    );
    assert_eq!(register.num_calls(), 0);
    assert_eq!(tags.num_calls(), 0);
    assert_eq!(store.get(&job_id()).await.unwrap().image_id, None);
}

/// When the name is taken between the look and RegisterImage by this job's own earlier
/// attempt, the duplicate error leads to adopting that image.
#[tokio::test]
async fn register_adopts_its_own_image_after_a_duplicate_name_error() {
    let tagged = capture();
    let s3 = manifest_object(Manifest::seal(body()).to_file());
    let named = mock!(aws_sdk_ec2::Client::describe_images)
        .sequence()
        .output(|| DescribeImagesOutput::builder().build())
        .output(|| {
            DescribeImagesOutput::builder()
                .images(existing_image(JOB))
                .build()
        })
        .build();
    let register = mock!(aws_sdk_ec2::Client::register_image).then_error(|| {
        RegisterImageError::generic(
            ErrorMetadata::builder()
                .code("InvalidAMIName.Duplicate")
                .message("AMI name web-1 is already in use by AMI ami-0d000009")
                .build(),
        )
    });
    let tags = create_tags_rule(&tagged);
    let (pipeline, store) = pipeline(&[&named, &register, &tags], &[&s3], &[]);
    seed_bundled_job(store.as_ref()).await;

    let output = run(&pipeline, &job_id()).await.unwrap();
    assert_eq!(output.image_id, EXISTING);
    assert_eq!(register.num_calls(), 1);
    assert_eq!(named.num_calls(), 2);
    assert_eq!(
        store.get(&job_id()).await.unwrap().image_id.as_deref(),
        Some(EXISTING)
    );
}

/// A manifest edited after it was sealed fails its digest: nothing is registered.
#[tokio::test]
async fn register_refuses_a_manifest_edited_after_sealing() {
    let registered = capture();
    let tagged = capture();
    let text = String::from_utf8(Manifest::seal(body()).to_file()).unwrap();
    let edited = text.replace("\"volume_size_gib\": 200", "\"volume_size_gib\": 2000");
    assert_ne!(text, edited);
    let s3 = manifest_object(edited.into_bytes());
    let named = images_named(None);
    let register = register_rule(&registered);
    let tags = create_tags_rule(&tagged);
    let (pipeline, store) = pipeline(&[&named, &register, &tags], &[&s3], &[]);
    seed_bundled_job(store.as_ref()).await;

    let err = run(&pipeline, &job_id()).await.unwrap_err();
    assert!(matches!(err, StepError::Manifest { .. }), "{err:?}");
    assert_eq!(err.error_type().as_str(), "AmiForge.InvalidInput");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("manifest {PATH}: ")),
        "{message}"
    );
    assert!(message.contains("manifest digest mismatch"), "{message}");
    assert_eq!(named.num_calls(), 0);
    assert_eq!(register.num_calls(), 0);
    assert_eq!(tags.num_calls(), 0);
    assert_eq!(store.get(&job_id()).await.unwrap().image_id, None);
}

/// The product codes a request asks for, recorded in the manifest, end up on the image.
#[tokio::test]
async fn register_attaches_the_manifest_product_codes() {
    let registered = capture();
    let tagged = capture();
    let mut with_codes = body();
    with_codes.product_codes = vec![ProductCode::parse("abcdefgh12345678").unwrap()];
    let s3 = manifest_object(Manifest::seal(with_codes).to_file());
    let named = images_named(None);
    let register = register_rule(&registered);
    let tags = create_tags_rule(&tagged);
    let codes = mock!(aws_sdk_ec2::Client::modify_image_attribute)
        .match_requests(|input| {
            input.image_id() == Some(REGISTERED) && input.product_codes() == ["abcdefgh12345678"]
        })
        .then_output(|| ModifyImageAttributeOutput::builder().build());
    let (pipeline, store) = pipeline(&[&named, &register, &tags, &codes], &[&s3], &[]);
    seed_bundled_job(store.as_ref()).await;

    run(&pipeline, &job_id()).await.unwrap();
    assert_eq!(codes.num_calls(), 1, "product codes were never attached");
}
