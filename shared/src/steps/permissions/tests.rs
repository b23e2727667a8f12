//! Unit tests of the permissions step with mocked SDK responses.

use std::sync::{Arc, Mutex};

use aws_sdk_ec2::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ec2::operation::describe_snapshots::DescribeSnapshotsOutput;
use aws_sdk_ec2::operation::get_image_block_public_access_state::{
    GetImageBlockPublicAccessStateError, GetImageBlockPublicAccessStateOutput,
};
use aws_sdk_ec2::operation::modify_image_attribute::{
    ModifyImageAttributeError, ModifyImageAttributeInput, ModifyImageAttributeOutput,
};
use aws_sdk_ec2::types::{Image, LaunchPermission, ProductCode, Snapshot, SnapshotState};
use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata};
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::error::ErrorMetadata;
use chrono::Utc;

use super::run;
use crate::contract::SetPermissionsOutput;
use crate::domain::{BuildRequest, JobId, SharingRequest};
use crate::error::StepError;
use crate::jobs::{Job, JobKind, JobStatus, JobStore};
use crate::steps::testing::pipeline;

const JOB: &str = "job-permissions-1";
const IMAGE: &str = "ami-0d000001";
const SNAP: &str = "snap-0b000001";
const ACCOUNT: &str = "210987654321";
const KEY: &str = "arn:aws:kms:us-east-1:012345678901:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn job_id() -> JobId {
    JobId::parse(JOB).unwrap()
}

fn public() -> SharingRequest {
    SharingRequest {
        public: true,
        ..SharingRequest::default()
    }
}

fn with_account() -> SharingRequest {
    SharingRequest {
        accounts: vec![ACCOUNT.into()],
        ..SharingRequest::default()
    }
}

/// A running job whose image is registered, asking for `sharing`.
async fn seed_registered_job(store: &dyn JobStore, sharing: SharingRequest) {
    let request = BuildRequest {
        instance_id: "i-0123abcd".into(),
        name: "web-1".into(),
        sharing,
        ..BuildRequest::default()
    };
    let mut job = Job::new(
        job_id(),
        JobKind::Build,
        serde_json::to_value(request).unwrap(),
        Utc::now(),
    );
    job.status = JobStatus::Running;
    job.snapshot_ids = vec![SNAP.into()];
    job.image_id = Some(IMAGE.into());
    job.percent = 95;
    store.create(&job).await.unwrap();
}

fn error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

/// DescribeSnapshots of the job's snapshot, encrypted with `key` when given.
fn snapshots(key: Option<&'static str>) -> Rule {
    mock!(aws_sdk_ec2::Client::describe_snapshots)
        .match_requests(|input| input.snapshot_ids() == [SNAP])
        .then_output(move || {
            let snapshot = Snapshot::builder()
                .snapshot_id(SNAP)
                .state(SnapshotState::Completed)
                .encrypted(key.is_some())
                .set_kms_key_id(key.map(str::to_owned))
                .build();
            DescribeSnapshotsOutput::builder()
                .snapshots(snapshot)
                .build()
        })
}

/// DescribeImages of the job's image, with `product_code` when given.
fn image(product_code: Option<&'static str>) -> Rule {
    mock!(aws_sdk_ec2::Client::describe_images)
        .match_requests(|input| input.image_ids() == [IMAGE])
        .then_output(move || {
            let mut image = Image::builder().image_id(IMAGE).name("web-1");
            if let Some(code) = product_code {
                image = image.product_codes(ProductCode::builder().product_code_id(code).build());
            }
            DescribeImagesOutput::builder()
                .images(image.build())
                .build()
        })
}

fn block_public_access(state: &'static str) -> Rule {
    mock!(aws_sdk_ec2::Client::get_image_block_public_access_state).then_output(move || {
        GetImageBlockPublicAccessStateOutput::builder()
            .image_block_public_access_state(state)
            .build()
    })
}

fn granted(sent: &Arc<Mutex<Option<ModifyImageAttributeInput>>>) -> Rule {
    let record = sent.clone();
    mock!(aws_sdk_ec2::Client::modify_image_attribute)
        .match_requests(move |input| {
            *record.lock().unwrap() = Some(input.clone());
            true
        })
        .then_output(|| ModifyImageAttributeOutput::builder().build())
}

fn key_managed_by(manager: KeyManagerType) -> Rule {
    mock!(aws_sdk_kms::Client::describe_key)
        .match_requests(|input| input.key_id() == Some(KEY))
        .then_output(move || {
            DescribeKeyOutput::builder()
                .key_metadata(
                    KeyMetadata::builder()
                        .key_id(KEY)
                        .key_manager(manager.clone())
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

/// Public sharing under image block public access is refused before any grant, with a
/// message that says which setting blocks it and what to do.
#[tokio::test]
async fn public_sharing_under_block_public_access_is_a_conflict() {
    let sent = Arc::new(Mutex::new(None));
    let (snapshots, image, bpa, modify) = (
        snapshots(None),
        image(None),
        block_public_access("block-new-sharing"),
        granted(&sent),
    );
    let (pipeline, store) = pipeline(&[&snapshots, &image, &bpa, &modify], &[], &[]);
    seed_registered_job(store.as_ref(), public()).await;

    let err = run(&pipeline, &job_id()).await.unwrap_err();
    assert!(matches!(err, StepError::PublicSharingBlocked), "{err:?}");
    assert_eq!(err.error_type().as_str(), "AmiForge.Conflict");
    let message = err.to_string();
    assert!(
        message.contains("image block public access setting is 'block-new-sharing'"),
        "{message}"
    );
    assert!(
        message.contains("DisableImageBlockPublicAccess"),
        "{message}"
    );
    assert_eq!(bpa.num_calls(), 1);
    assert_eq!(modify.num_calls(), 0);
    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(job.sharing_applied, None);
    assert_eq!(job.percent, 95);
}

/// When the block public access state cannot be read, EC2's refusal of the public grant is
/// reported as blocked public sharing.
#[tokio::test]
async fn refused_public_grant_with_unreadable_block_state_is_public_sharing_blocked() {
    let (snapshots, image) = (snapshots(None), image(None));
    let bpa = mock!(aws_sdk_ec2::Client::get_image_block_public_access_state).then_error(|| {
        GetImageBlockPublicAccessStateError::generic(error(
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ))
    });
    let modify = mock!(aws_sdk_ec2::Client::modify_image_attribute)
        .match_requests(|input| {
            input.image_id() == Some(IMAGE)
                && input.launch_permission().is_some_and(|p| {
                    p.add()
                        == [LaunchPermission::builder()
                            .group(aws_sdk_ec2::types::PermissionGroup::All)
                            .build()]
                })
        })
        .then_error(|| {
            ModifyImageAttributeError::generic(error(
                "OperationNotPermitted",
                "Public sharing of AMIs is blocked in this region.",
            ))
        });
    let (pipeline, store) = pipeline(&[&snapshots, &image, &bpa, &modify], &[], &[]);
    seed_registered_job(store.as_ref(), public()).await;

    let err = run(&pipeline, &job_id()).await.unwrap_err();
    assert!(matches!(err, StepError::PublicSharingBlocked), "{err:?}");
    assert_eq!(err.error_type().as_str(), "AmiForge.Conflict");
    assert_eq!(bpa.num_calls(), 1);
    assert_eq!(modify.num_calls(), 1);
    assert_eq!(
        store.get(&job_id()).await.unwrap().status,
        JobStatus::Running
    );
}

/// Throttling of the grant stays retryable even when the block state was unreadable: only
/// a refusal is taken for the setting.
#[tokio::test]
async fn throttled_public_grant_stays_retryable() {
    let (snapshots, image) = (snapshots(None), image(None));
    let bpa = mock!(aws_sdk_ec2::Client::get_image_block_public_access_state).then_error(|| {
        GetImageBlockPublicAccessStateError::generic(error("UnauthorizedOperation", "denied"))
    });
    let modify = mock!(aws_sdk_ec2::Client::modify_image_attribute).then_error(|| {
        ModifyImageAttributeError::generic(error("RequestLimitExceeded", "Request limit exceeded."))
    });
    let (pipeline, store) = pipeline(&[&snapshots, &image, &bpa, &modify], &[], &[]);
    seed_registered_job(store.as_ref(), public()).await;

    let err = run(&pipeline, &job_id()).await.unwrap_err();
    assert!(matches!(err, StepError::Aws(_)), "{err:?}");
    assert_eq!(err.error_type().as_str(), "AmiForge.Retryable");
    assert_eq!(
        err.to_string(),
        "ModifyImageAttribute failed: Request limit exceeded."
    );
}

/// A snapshot encrypted with an AWS managed key cannot be shared: the step says a customer
/// managed key is needed and grants nothing.
#[tokio::test]
async fn sharing_a_snapshot_under_an_aws_managed_key_is_refused() {
    let sent = Arc::new(Mutex::new(None));
    let (snapshots, modify, key) = (
        snapshots(Some(KEY)),
        granted(&sent),
        key_managed_by(KeyManagerType::Aws),
    );
    let (pipeline, store) = pipeline(&[&snapshots, &modify], &[], &[&key]);
    seed_registered_job(store.as_ref(), with_account()).await;

    let err = run(&pipeline, &job_id()).await.unwrap_err();
    assert!(
        matches!(&err, StepError::ManagedKeyShare { snapshot_id, key_id }
            if snapshot_id == SNAP && key_id == KEY),
        "{err:?}"
    );
    assert_eq!(err.error_type().as_str(), "AmiForge.InvalidInput");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "snapshot {SNAP} is encrypted with the AWS managed key {KEY}"
        )),
        "{message}"
    );
    assert!(
        message.contains("re-encrypt it with a customer managed KMS key"),
        "{message}"
    );
    assert_eq!(key.num_calls(), 1);
    assert_eq!(modify.num_calls(), 0);
    assert_eq!(
        store.get(&job_id()).await.unwrap().status,
        JobStatus::Running
    );
}

/// Under a customer managed key the account gets launch permission and the job succeeds
/// with the sharing recorded.
#[tokio::test]
async fn sharing_under_a_customer_managed_key_grants_the_account_and_finishes_the_job() {
    let sent = Arc::new(Mutex::new(None));
    let (snapshots, image, modify, key) = (
        snapshots(Some(KEY)),
        image(None),
        granted(&sent),
        key_managed_by(KeyManagerType::Customer),
    );
    let (pipeline, store) = pipeline(&[&snapshots, &image, &modify], &[], &[&key]);
    seed_registered_job(store.as_ref(), with_account()).await;

    let output = run(&pipeline, &job_id()).await.unwrap();
    assert_eq!(
        output,
        SetPermissionsOutput {
            job_id: job_id(),
            image_id: IMAGE.into(),
            public: false,
            grants: 1,
        }
    );
    let sent = sent.lock().unwrap().clone().unwrap();
    assert_eq!(sent.image_id(), Some(IMAGE));
    assert_eq!(
        sent.launch_permission().unwrap().add(),
        [LaunchPermission::builder().user_id(ACCOUNT).build()]
    );
    assert_eq!(modify.num_calls(), 1);
    assert_eq!(key.num_calls(), 1);
    // Only public sharing looks at the image and the block public access setting.
    assert_eq!(image.num_calls(), 0);

    let job = store.get(&job_id()).await.unwrap();
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.percent, 100);
    assert_eq!(job.step, "done");
    assert_eq!(job.eta_seconds, Some(0));
    assert_eq!(job.sharing_applied, Some(with_account()));
    assert_eq!(
        job.message,
        "image ami-0d000001 is ready, shared with 1 account(s)"
    );
    assert!(job.finished_at.is_some());
}

/// An image that carries product codes cannot be made public; nothing is granted and the
/// block public access setting is not even read.
#[tokio::test]
async fn public_sharing_of_an_image_with_product_codes_is_refused() {
    let sent = Arc::new(Mutex::new(None));
    let (snapshots, image, bpa, modify) = (
        snapshots(None),
        image(Some("abcdefgh12345678")),
        block_public_access("unblocked"),
        granted(&sent),
    );
    let (pipeline, store) = pipeline(&[&snapshots, &image, &bpa, &modify], &[], &[]);
    seed_registered_job(store.as_ref(), public()).await;

    let err = run(&pipeline, &job_id()).await.unwrap_err();
    assert!(
        matches!(&err, StepError::ProductCodesPublic(id) if id == IMAGE),
        "{err:?}"
    );
    assert_eq!(err.error_type().as_str(), "AmiForge.InvalidInput");
    assert_eq!(
        err.to_string(),
        "image ami-0d000001 has product codes and cannot be made public; share it with accounts instead"
    );
    assert_eq!(bpa.num_calls(), 0);
    assert_eq!(modify.num_calls(), 0);
    assert_eq!(
        store.get(&job_id()).await.unwrap().status,
        JobStatus::Running
    );
}

/// Running the step again on the job it finished (a Lambda retry) grants again, which EC2
/// takes as a no-op, and succeeds without changing the record.
#[tokio::test]
async fn sharing_again_after_success_is_idempotent() {
    let sent = Arc::new(Mutex::new(None));
    let (snapshots, modify) = (snapshots(None), granted(&sent));
    let (pipeline, store) = pipeline(&[&snapshots, &modify], &[], &[]);
    seed_registered_job(store.as_ref(), with_account()).await;

    let first = run(&pipeline, &job_id()).await.unwrap();
    let finished = store.get(&job_id()).await.unwrap();
    let second = run(&pipeline, &job_id()).await.unwrap();
    assert_eq!(second, first);
    assert_eq!(modify.num_calls(), 2);
    let again = store.get(&job_id()).await.unwrap();
    assert_eq!(again.status, JobStatus::Succeeded);
    assert_eq!(again.history, finished.history);
    assert_eq!(again.finished_at, finished.finished_at);
}
