//! Browsing images: the user's own, Amazon's and those of followed accounts, and one image in
//! detail with its permissions, snapshots, manifest and job.

use crate::aws::ec2::ImageSummary;
use crate::domain::{AccountId, AmiId, FieldError, SharingRequest, TagKey};
use crate::error::StepError;
use crate::jobs::Job;
use crate::steps::Pipeline;

/// Whose images to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// The caller's own and the followed accounts' (the default).
    Default,
    /// The caller's own.
    Own,
    /// Amazon's.
    Amazon,
    /// The configured followed accounts'.
    Followed,
    /// One account's.
    Account(AccountId),
}

impl Owner {
    /// Parses `self`, `amazon`, `followed` or a 12-digit account id.
    ///
    /// # Errors
    /// A [`FieldError`] at `owner` saying what is allowed.
    pub fn parse(value: Option<&str>) -> Result<Self, FieldError> {
        match value {
            None | Some("") => Ok(Self::Default),
            Some("self") => Ok(Self::Own),
            Some("amazon") => Ok(Self::Amazon),
            Some("followed") => Ok(Self::Followed),
            Some(other) => AccountId::parse(other).map(Self::Account).map_err(|_| {
                FieldError::new(
                    "owner",
                    format!("owner must be self, amazon, followed or a 12-digit account id, got {other:?}"),
                )
            }),
        }
    }

    fn owners(&self, followed: &[AccountId]) -> Vec<String> {
        let followed = followed.iter().map(ToString::to_string);
        match self {
            Self::Default => std::iter::once("self".to_owned()).chain(followed).collect(),
            Self::Own => vec!["self".into()],
            Self::Amazon => vec!["amazon".into()],
            Self::Followed => followed.collect(),
            Self::Account(id) => vec![id.to_string()],
        }
    }
}

/// One image in a list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageEntry {
    /// What EC2 says.
    #[serde(flatten)]
    pub image: ImageSummary,
    /// The manifest, for images amiforge built.
    pub manifest_path: Option<String>,
    /// The job that built it.
    pub job_id: Option<String>,
}

impl From<ImageSummary> for ImageEntry {
    fn from(image: ImageSummary) -> Self {
        Self {
            manifest_path: image.tags.get(TagKey::MANIFEST).cloned(),
            job_id: image.tags.get(TagKey::JOB_ID).cloned(),
            image,
        }
    }
}

/// A page of images.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageList {
    /// The images.
    pub images: Vec<ImageEntry>,
    /// The token of the next page.
    pub next: Option<String>,
}

/// Largest page a caller may ask for.
pub const MAX_PAGE: i32 = 100;

/// Lists images, one page at a time.
///
/// # Errors
/// An AWS error; a bad `next` token is invalid input.
pub async fn list(
    pipeline: &Pipeline,
    owner: &Owner,
    name: Option<&str>,
    state: Option<&str>,
    limit: i32,
    next: Option<String>,
) -> Result<ImageList, StepError> {
    let owners = owner.owners(&pipeline.config.followed_accounts);
    if owners.is_empty() {
        return Ok(ImageList {
            images: Vec::new(),
            next: None,
        });
    }
    let page = pipeline
        .ec2
        .list_images(&owners, name, state, limit.clamp(1, MAX_PAGE), next)
        .await?;
    let mut images: Vec<ImageEntry> = page.images.into_iter().map(ImageEntry::from).collect();
    images.truncate(usize::try_from(limit.clamp(1, MAX_PAGE)).unwrap_or(0));
    Ok(ImageList {
        images,
        next: page.next,
    })
}

/// A snapshot of an image and who may create volumes from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SnapshotDetail {
    /// The snapshot.
    pub snapshot_id: String,
    /// Its device in the image.
    pub device_name: String,
    /// Its size in GiB.
    pub size_gib: i32,
    /// Accounts that may create volumes from it.
    pub create_volume_accounts: Vec<String>,
    /// Whether everyone may.
    pub create_volume_public: bool,
}

/// One image in detail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImageDetail {
    /// The image as listed.
    #[serde(flatten)]
    pub entry: ImageEntry,
    /// Who may launch it.
    pub launch_permissions: SharingRequest,
    /// Its snapshots.
    pub snapshots: Vec<SnapshotDetail>,
    /// The job that built it, when amiforge did.
    pub job: Option<Job>,
}

/// Shows one image.
///
/// # Errors
/// [`StepError::ImageNotFound`]; an AWS or store error.
pub async fn show(pipeline: &Pipeline, id: &AmiId) -> Result<ImageDetail, StepError> {
    let Some(image) = pipeline.ec2.describe_image(id).await? else {
        return Err(StepError::ImageNotFound(id.to_string()));
    };
    let launch = pipeline.ec2.launch_permissions(id).await?;
    let mut snapshots = Vec::new();
    for (device, snapshot, size) in &image.snapshots {
        let (accounts, public) = pipeline.ec2.create_volume_permissions(snapshot).await?;
        snapshots.push(SnapshotDetail {
            snapshot_id: snapshot.clone(),
            device_name: device.clone(),
            size_gib: *size,
            create_volume_accounts: accounts,
            create_volume_public: public,
        });
    }
    let job = pipeline
        .jobs
        .find_by_image(id.as_str())
        .await?
        .into_iter()
        .max_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(ImageDetail {
        entry: ImageEntry::from(image),
        launch_permissions: launch.to_request(),
        snapshots,
        job,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_default_to_self_and_followed() {
        let followed = [AccountId::parse("012345678901").unwrap()];
        assert_eq!(
            Owner::parse(None).unwrap().owners(&followed),
            ["self", "012345678901"]
        );
        assert_eq!(
            Owner::parse(Some("amazon")).unwrap().owners(&followed),
            ["amazon"]
        );
        assert_eq!(
            Owner::parse(Some("followed")).unwrap().owners(&followed),
            ["012345678901"]
        );
        assert_eq!(
            Owner::parse(Some("000000000042")).unwrap(),
            Owner::Account(AccountId::parse("000000000042").unwrap())
        );
        let err = Owner::parse(Some("me")).unwrap_err();
        assert_eq!(err.field, "owner");
    }
}
