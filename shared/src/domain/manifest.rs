//! The image manifest: what an image is made of, written to S3 beside the image.

use sha2::{Digest, Sha256};

use super::{ImageName, InstanceId, JobId, ProductCode, SnapshotId, VolumeId};

/// The manifest format this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The attributes of the source instance that the image must carry to boot the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageAttributes {
    /// `x86_64`, `arm64`, ...
    pub architecture: String,
    /// The root device name, such as `/dev/xvda`.
    pub root_device_name: String,
    /// `hvm` or `paravirtual`.
    pub virtualization_type: String,
    /// `uefi`, `legacy-bios` or `uefi-preferred`, when known.
    pub boot_mode: Option<String>,
    /// Whether enhanced networking with ENA is enabled.
    pub ena_support: bool,
    /// `simple` when Intel 82599 enhanced networking is enabled.
    pub sriov_net_support: Option<String>,
    /// `v2.0` when NitroTPM is enabled.
    pub tpm_support: Option<String>,
    /// `v2.0` when instances launched from the image must use IMDSv2.
    pub imds_support: Option<String>,
    /// The kernel, for paravirtual images.
    pub kernel_id: Option<String>,
    /// The RAM disk, for paravirtual images.
    pub ramdisk_id: Option<String>,
}

/// One captured EBS volume and the snapshot taken of it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockDevice {
    /// The device name in the instance, and in the image.
    pub device_name: String,
    /// The volume that was captured.
    pub volume_id: VolumeId,
    /// Its snapshot.
    pub snapshot_id: SnapshotId,
    /// Size in GiB.
    pub volume_size_gib: i32,
    /// `gp3`, `io2`, ...
    pub volume_type: String,
    /// Provisioned IOPS, where the type has them.
    pub iops: Option<i32>,
    /// Provisioned throughput in MiB/s, for gp3.
    pub throughput: Option<i32>,
    /// Whether the volume, and so the snapshot, is encrypted.
    pub encrypted: bool,
    /// The KMS key of an encrypted volume.
    pub kms_key_id: Option<String>,
    /// Whether instances launched from the image delete the volume on termination.
    pub delete_on_termination: bool,
}

/// Where the image came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceInstance {
    /// The instance.
    pub instance_id: InstanceId,
    /// The account that owns it.
    pub account_id: Option<String>,
    /// Its region.
    pub region: Option<String>,
}

/// Everything the digest covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ManifestBody {
    /// [`FORMAT_VERSION`] when written by this code.
    pub format_version: u32,
    /// The image name.
    pub name: ImageName,
    /// The image description.
    pub description: Option<String>,
    /// The source instance.
    pub source: SourceInstance,
    /// Boot attributes.
    pub attributes: ImageAttributes,
    /// The captured volumes, root first.
    pub block_devices: Vec<BlockDevice>,
    /// Devices of the instance that are not in the image, with the reason.
    pub not_captured: Vec<String>,
    /// Product codes to attach.
    pub product_codes: Vec<ProductCode>,
    /// The job that built it.
    pub job_id: JobId,
    /// When the snapshots were taken (RFC 3339, UTC).
    pub created_at: String,
}

/// A manifest with the SHA-256 of its canonical body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// The content.
    #[serde(flatten)]
    pub body: ManifestBody,
    /// Hex SHA-256 of [`Manifest::canonical`].
    pub sha256: String,
}

/// A manifest whose digest does not match its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("manifest digest mismatch: recorded {recorded}, content hashes to {actual}")]
pub struct ManifestDigestMismatch {
    /// The digest in the file.
    pub recorded: String,
    /// The digest of the content read.
    pub actual: String,
}

impl Manifest {
    /// Seals a body with its digest.
    pub fn seal(body: ManifestBody) -> Self {
        let sha256 = digest(&body);
        Self { body, sha256 }
    }

    /// The canonical form the digest covers: compact JSON of the body, fields in declaration
    /// order, no map whose order could vary.
    pub fn canonical(body: &ManifestBody) -> Vec<u8> {
        // Serializing plain structs of strings, numbers and vectors cannot fail.
        serde_json::to_vec(body).unwrap_or_default()
    }

    /// The file as written to S3: indented JSON, ending in a newline.
    pub fn to_file(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Reads a manifest file and checks its digest.
    ///
    /// # Errors
    /// A JSON error for a malformed file; [`ManifestDigestMismatch`] (boxed) when the content
    /// does not hash to the recorded digest.
    pub fn from_file(bytes: &[u8]) -> Result<Self, ManifestReadError> {
        let manifest: Self = serde_json::from_slice(bytes).map_err(ManifestReadError::Malformed)?;
        let actual = digest(&manifest.body);
        if actual != manifest.sha256 {
            return Err(ManifestReadError::DigestMismatch(ManifestDigestMismatch {
                recorded: manifest.sha256,
                actual,
            }));
        }
        Ok(manifest)
    }
}

/// Why a manifest file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestReadError {
    /// Not a manifest this code understands.
    #[error("manifest is not valid: {0}")]
    Malformed(#[source] serde_json::Error),
    /// The content changed after it was written.
    #[error(transparent)]
    DigestMismatch(ManifestDigestMismatch),
}

fn digest(body: &ManifestBody) -> String {
    hex::encode(Sha256::digest(Manifest::canonical(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn body() -> ManifestBody {
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
                ena_support: true,
                ..ImageAttributes::default()
            },
            block_devices: vec![BlockDevice {
                device_name: "/dev/xvda".into(),
                volume_id: VolumeId::parse("vol-0123abcd").unwrap(),
                snapshot_id: SnapshotId::parse("snap-0123abcd").unwrap(),
                volume_size_gib: 8,
                volume_type: "gp3".into(),
                iops: Some(3000),
                throughput: Some(125),
                encrypted: false,
                kms_key_id: None,
                delete_on_termination: true,
            }],
            not_captured: vec![],
            product_codes: vec![],
            job_id: JobId::parse("job-1").unwrap(),
            created_at: "2026-12-03T19:36:12Z".into(),
        }
    }

    #[test]
    fn a_sealed_manifest_reads_back_equal() {
        let manifest = Manifest::seal(body());
        assert_eq!(manifest.sha256.len(), 64);
        let read = Manifest::from_file(&manifest.to_file()).unwrap();
        assert_eq!(read, manifest);
    }

    #[test]
    fn sealing_twice_gives_the_same_bytes() {
        assert_eq!(
            Manifest::seal(body()).to_file(),
            Manifest::seal(body()).to_file()
        );
    }

    #[test]
    fn an_edited_manifest_fails_its_digest() {
        let manifest = Manifest::seal(body());
        let text = String::from_utf8(manifest.to_file()).unwrap();
        let edited = text.replace("\"volume_size_gib\": 8", "\"volume_size_gib\": 9");
        assert_ne!(text, edited);
        let err = Manifest::from_file(edited.as_bytes()).unwrap_err();
        assert!(matches!(err, ManifestReadError::DigestMismatch(_)), "{err}");
    }
}
