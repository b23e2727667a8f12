//! The set-permissions step: share the image as asked, after checking that the sharing can
//! work (block public access, product codes, AWS managed keys).

use tracing::{info, warn};

use super::{percent, Pipeline};
use crate::aws::ec2::SnapshotFacts;
use crate::contract::SetPermissionsOutput;
use crate::domain::{AmiId, JobId, Sharing, SharingChange};
use crate::error::{AwsError, AwsErrorKind, StepError};
use crate::jobs::{JobKind, JobStatus};

/// What the preflight learned that the sharing call may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preflight {
    /// The block public access state could not be read, so a refusal of public sharing is
    /// taken to be that setting.
    pub block_public_access_unknown: bool,
}

/// Checks that `sharing` can be applied to the image and its snapshots.
///
/// # Errors
/// [`StepError::ProductCodesPublic`], [`StepError::PublicSharingBlocked`] or
/// [`StepError::ManagedKeyShare`], each explaining what to do; an AWS error.
pub async fn preflight(
    pipeline: &Pipeline,
    image_id: &AmiId,
    snapshots: &[SnapshotFacts],
    sharing: &Sharing,
) -> Result<Preflight, StepError> {
    let mut result = Preflight {
        block_public_access_unknown: false,
    };
    if sharing.public {
        let image = pipeline.ec2.image(image_id).await?;
        if image.is_some_and(|i| !i.product_codes.is_empty()) {
            return Err(StepError::ProductCodesPublic(image_id.to_string()));
        }
        match pipeline.ec2.image_block_public_access().await {
            Ok(Some(state)) if state == "block-new-sharing" => {
                return Err(StepError::PublicSharingBlocked)
            }
            Ok(_) => {}
            Err(err) => {
                warn!(ami_id = %image_id, error = %err, "image block public access state unreadable");
                result.block_public_access_unknown = true;
            }
        }
    }
    if sharing.shares_outside() {
        for snapshot in snapshots.iter().filter(|s| s.encrypted) {
            let key = snapshot
                .kms_key_id
                .clone()
                .unwrap_or_else(|| "alias/aws/ebs".into());
            if key.ends_with("alias/aws/ebs") || pipeline.kms.is_aws_managed(&key).await? {
                return Err(StepError::ManagedKeyShare {
                    snapshot_id: snapshot.snapshot_id.to_string(),
                    key_id: key,
                });
            }
        }
    }
    Ok(result)
}

/// Grants launch permission (and create-volume permission on the snapshots when asked),
/// translating EC2's refusal of public sharing when the preflight could not read the setting.
///
/// # Errors
/// [`StepError::PublicSharingBlocked`] or an AWS error.
pub async fn grant(
    pipeline: &Pipeline,
    image_id: &AmiId,
    snapshot_ids: &[String],
    sharing: &Sharing,
    preflight: Preflight,
) -> Result<(), StepError> {
    if let Err(err) = pipeline.ec2.add_launch_permissions(image_id, sharing).await {
        return Err(refusal(err, sharing, preflight));
    }
    if sharing.create_volume_permission {
        for snapshot in snapshot_ids {
            pipeline
                .ec2
                .add_create_volume_permission(snapshot, sharing)
                .await?;
        }
    }
    Ok(())
}

fn refusal(err: AwsError, sharing: &Sharing, preflight: Preflight) -> StepError {
    // A missing permission or a passing hiccup is reported as itself, not as the setting.
    let refused = !matches!(
        err.kind,
        AwsErrorKind::Throttled
            | AwsErrorKind::Transient
            | AwsErrorKind::NotFound
            | AwsErrorKind::AccessDenied
    );
    if sharing.public && preflight.block_public_access_unknown && refused {
        warn!(error = %err, "public sharing refused; taking it for block public access");
        StepError::PublicSharingBlocked
    } else {
        err.into()
    }
}

/// Applies the job's sharing to its image and marks the job succeeded.
///
/// # Errors
/// See [`preflight`] and [`grant`]; [`StepError::JobIncomplete`] before registration.
pub async fn run(pipeline: &Pipeline, job_id: &JobId) -> Result<SetPermissionsOutput, StepError> {
    let job = pipeline.jobs.get(job_id).await?;
    let sharing = pipeline.sharing_of(&job)?;
    let Some(image_id) = job.image_id.as_deref() else {
        return Err(StepError::JobIncomplete {
            job_id: job_id.clone(),
            what: "image",
            step: "register",
        });
    };
    let image_id = AmiId::parse(image_id).map_err(|e| StepError::BadEvent(e.to_string()))?;

    // A build's snapshots are in its record; a registered manifest's are the image's own,
    // kept out of the record so that the register job's rollback never deletes them.
    let snapshot_ids = match job.kind {
        JobKind::Register if sharing.shares_outside() => pipeline
            .ec2
            .describe_image(&image_id)
            .await?
            .map(|image| image.snapshots.into_iter().map(|(_, id, _)| id).collect())
            .unwrap_or_default(),
        _ => job.snapshot_ids.clone(),
    };
    let snapshots = if sharing.shares_outside() {
        pipeline.ec2.describe_snapshots(&snapshot_ids).await?
    } else {
        Vec::new()
    };
    let checked = preflight(pipeline, &image_id, &snapshots, &sharing).await?;
    grant(pipeline, &image_id, &snapshot_ids, &sharing, checked).await?;

    let applied = sharing.to_request();
    let message = format!("image {image_id} is ready{}", describe(&sharing));
    pipeline
        .update(job_id, |j| {
            j.status = JobStatus::Succeeded;
            j.sharing_applied = Some(applied.clone());
            j.eta_seconds = Some(0);
            j.progress("done", percent::DONE, message.clone());
        })
        .await?;
    info!(job_id = %job_id, ami_id = %image_id, public = sharing.public, "image shared");
    Ok(SetPermissionsOutput {
        job_id: job_id.clone(),
        image_id: image_id.to_string(),
        public: sharing.public,
        grants: sharing.accounts.len()
            + sharing.organizations.len()
            + sharing.organizational_units.len(),
    })
}

/// Moves an image's launch permissions to `desired`: computes the difference with the current
/// ones, checks what is added as the pipeline does, and applies only the difference. Applying
/// the same state twice changes nothing the second time.
///
/// # Errors
/// [`StepError::ImageNotFound`]; see [`preflight`] and [`grant`]; an AWS error.
pub async fn apply_sharing(
    pipeline: &Pipeline,
    image_id: &AmiId,
    desired: &Sharing,
) -> Result<(SharingChange, Sharing), StepError> {
    let Some(image) = pipeline.ec2.describe_image(image_id).await? else {
        return Err(StepError::ImageNotFound(image_id.to_string()));
    };
    let current = pipeline.ec2.launch_permissions(image_id).await?;
    let change = current.changes_to(desired);
    let snapshot_ids: Vec<String> = image
        .snapshots
        .iter()
        .map(|(_, id, _)| id.clone())
        .collect();

    if !change.added.is_private() {
        let snapshots = pipeline.ec2.describe_snapshots(&snapshot_ids).await?;
        let checked = preflight(pipeline, image_id, &snapshots, &change.added).await?;
        grant(pipeline, image_id, &snapshot_ids, &change.added, checked).await?;
    }
    if !change.removed.is_private() {
        pipeline
            .ec2
            .remove_launch_permissions(image_id, &change.removed)
            .await?;
    }
    info!(ami_id = %image_id, added = !change.added.is_private(), removed = !change.removed.is_private(), "sharing applied");
    let now = pipeline.ec2.launch_permissions(image_id).await?;
    Ok((change, now))
}

/// `, shared with ...` for a job's closing message, empty when private.
pub fn describe(sharing: &Sharing) -> String {
    let mut parts = Vec::new();
    if sharing.public {
        parts.push("everyone".to_owned());
    }
    if !sharing.accounts.is_empty() {
        parts.push(format!("{} account(s)", sharing.accounts.len()));
    }
    if !sharing.organizations.is_empty() {
        parts.push(format!("{} organization(s)", sharing.organizations.len()));
    }
    if !sharing.organizational_units.is_empty() {
        parts.push(format!(
            "{} organizational unit(s)",
            sharing.organizational_units.len()
        ));
    }
    if parts.is_empty() {
        ", private to its account".into()
    } else {
        format!(", shared with {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests;
