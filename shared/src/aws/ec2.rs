//! EC2: instances, volumes, snapshots and images, as the steps need them.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_ec2::client::Waiters;
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, BootModeValues, CreateVolumePermission,
    CreateVolumePermissionModifications, EbsBlockDevice, Filter, ImdsSupportValues,
    InstanceSpecification, LaunchPermission, LaunchPermissionModifications, PermissionGroup,
    ResourceType, SnapshotAttributeName, Tag, TagSpecification, TpmSupportValues, VolumeType,
};
use aws_sdk_ec2::Client;
use chrono::{DateTime, Utc};

use crate::domain::{
    AmiId, BlockDevice, ImageAttributes, ImageName, InstanceId, Manifest, ManifestPath, Sharing,
    SnapshotId, VolumeId,
};
use crate::error::{AwsError, AwsErrorKind, StepError};

/// An instance as the snapshot step sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceFacts {
    /// The instance.
    pub instance_id: InstanceId,
    /// `running`, `stopped`, ...
    pub state: String,
    /// The owning account.
    pub account_id: Option<String>,
    /// Boot attributes to carry into the image.
    pub attributes: ImageAttributes,
    /// Attached EBS volumes by device name, root first.
    pub volumes: Vec<AttachedVolume>,
    /// Instance-store devices of the instance's image, which snapshots cannot capture.
    pub instance_store_devices: Vec<String>,
}

/// An EBS volume attached to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedVolume {
    /// The device name.
    pub device_name: String,
    /// The volume.
    pub volume_id: VolumeId,
    /// Whether it goes when the instance terminates.
    pub delete_on_termination: bool,
}

/// A volume's settings, carried into the image's block device mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFacts {
    /// Size in GiB.
    pub size_gib: i32,
    /// `gp3`, `io2`, ...
    pub volume_type: String,
    /// Provisioned IOPS.
    pub iops: Option<i32>,
    /// Provisioned throughput.
    pub throughput: Option<i32>,
    /// Encrypted or not.
    pub encrypted: bool,
    /// The KMS key of an encrypted volume.
    pub kms_key_id: Option<String>,
}

/// A snapshot as DescribeSnapshots or CreateSnapshots reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFacts {
    /// The snapshot.
    pub snapshot_id: SnapshotId,
    /// The volume it captures.
    pub volume_id: Option<String>,
    /// `pending`, `completed`, `error`, ...
    pub state: String,
    /// EC2's explanation of an error state.
    pub state_message: Option<String>,
    /// 0 to 100.
    pub percent: u8,
    /// The volume size in GiB.
    pub size_gib: i32,
    /// When the snapshot started.
    pub started_at: Option<DateTime<Utc>>,
    /// Encrypted or not.
    pub encrypted: bool,
    /// The KMS key of an encrypted snapshot.
    pub kms_key_id: Option<String>,
}

/// An image as the steps need to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// The image.
    pub image_id: AmiId,
    /// Its name.
    pub name: Option<String>,
    /// `available`, `pending`, ...
    pub state: String,
    /// Its tags.
    pub tags: HashMap<String, String>,
    /// Its product codes.
    pub product_codes: Vec<String>,
    /// The snapshots of its EBS mappings.
    pub snapshot_ids: Vec<String>,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
}

impl Ec2 {
    /// Sends a RegisterImage call with the image's tags; the new image's id.
    async fn send_register(
        request: aws_sdk_ec2::operation::register_image::builders::RegisterImageFluentBuilder,
        tags: &[(String, String)],
    ) -> Result<AmiId, StepError> {
        let output = request
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Image)
                    .set_tags(Some(tags_of(tags)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("RegisterImage", e))?;
        let id = output.image_id().unwrap_or_default();
        AmiId::parse(id).map_err(|e| StepError::BadEvent(format!("RegisterImage returned {e}")))
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

fn tags_of(pairs: &[(String, String)]) -> Vec<Tag> {
    pairs.iter().map(|(k, v)| tag(k, v)).collect()
}

fn parse_percent(progress: Option<&str>) -> u8 {
    progress
        .and_then(|p| p.trim_end_matches('%').trim().parse::<u8>().ok())
        .unwrap_or(0)
        .min(100)
}

fn to_chrono(at: Option<&aws_smithy_types::DateTime>) -> Option<DateTime<Utc>> {
    at.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// EC2 calls of the pipeline.
#[derive(Debug, Clone)]
pub struct Ec2 {
    client: Client,
}

impl Ec2 {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Looks up an instance, its attached volumes and boot attributes.
    ///
    /// # Errors
    /// [`StepError::InstanceNotFound`] when EC2 does not know it; an AWS error otherwise.
    pub async fn describe_instance(&self, id: &InstanceId) -> Result<InstanceFacts, StepError> {
        let output = match self
            .client
            .describe_instances()
            .instance_ids(id.as_str())
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => {
                let err = AwsError::from_sdk("DescribeInstances", err);
                return Err(if err.kind == AwsErrorKind::NotFound {
                    StepError::InstanceNotFound(id.clone())
                } else {
                    err.into()
                });
            }
        };
        let Some((reservation, instance)) = output.reservations().iter().find_map(|r| {
            r.instances()
                .iter()
                .find(|i| i.instance_id() == Some(id.as_str()))
                .map(|i| (r, i))
        }) else {
            return Err(StepError::InstanceNotFound(id.clone()));
        };

        let root = instance.root_device_name().unwrap_or_default().to_owned();
        let mut volumes: Vec<AttachedVolume> = instance
            .block_device_mappings()
            .iter()
            .filter_map(|m| {
                let ebs = m.ebs()?;
                let volume_id = VolumeId::parse(ebs.volume_id()?).ok()?;
                Some(AttachedVolume {
                    device_name: m.device_name()?.to_owned(),
                    volume_id,
                    delete_on_termination: ebs.delete_on_termination().unwrap_or(false),
                })
            })
            .collect();
        volumes.sort_by_key(|v| (v.device_name != root, v.device_name.clone()));

        let imds_required = instance
            .metadata_options()
            .and_then(|m| m.http_tokens())
            .is_some_and(|t| t.as_str() == "required");
        let (source_imds, instance_store_devices) =
            self.source_image_facts(instance.image_id()).await;
        let attributes = ImageAttributes {
            architecture: instance
                .architecture()
                .map_or_else(|| "x86_64".to_owned(), |a| a.as_str().to_owned()),
            root_device_name: root,
            virtualization_type: instance
                .virtualization_type()
                .map_or_else(|| "hvm".to_owned(), |v| v.as_str().to_owned()),
            boot_mode: instance
                .current_instance_boot_mode()
                .map(|m| m.as_str().to_owned())
                .or_else(|| instance.boot_mode().map(|m| m.as_str().to_owned())),
            ena_support: instance.ena_support().unwrap_or(false),
            sriov_net_support: instance.sriov_net_support().map(str::to_owned),
            tpm_support: instance.tpm_support().map(str::to_owned),
            imds_support: source_imds.or_else(|| imds_required.then(|| "v2.0".to_owned())),
            kernel_id: instance.kernel_id().map(str::to_owned),
            ramdisk_id: instance.ramdisk_id().map(str::to_owned),
        };
        Ok(InstanceFacts {
            instance_id: id.clone(),
            state: instance
                .state()
                .and_then(|s| s.name())
                .map_or_else(|| "unknown".to_owned(), |n| n.as_str().to_owned()),
            account_id: reservation.owner_id().map(str::to_owned),
            attributes,
            volumes,
            instance_store_devices,
        })
    }

    /// The IMDS support and instance-store devices of the image an instance was launched
    /// from. A deregistered source image is no error: there is then nothing to learn.
    async fn source_image_facts(&self, image_id: Option<&str>) -> (Option<String>, Vec<String>) {
        let Some(image_id) = image_id else {
            return (None, Vec::new());
        };
        match self
            .client
            .describe_images()
            .image_ids(image_id)
            .send()
            .await
        {
            Ok(output) => output.images().first().map_or((None, Vec::new()), |image| {
                let stores = image
                    .block_device_mappings()
                    .iter()
                    .filter(|m| m.virtual_name().is_some_and(|v| v.starts_with("ephemeral")))
                    .filter_map(|m| m.device_name().map(str::to_owned))
                    .collect();
                (image.imds_support().map(|s| s.as_str().to_owned()), stores)
            }),
            Err(err) => {
                let err = AwsError::from_sdk("DescribeImages", err);
                tracing::debug!(image_id, error = %err, "source image not readable");
                (None, Vec::new())
            }
        }
    }

    /// Size, type and encryption of volumes.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn describe_volumes(
        &self,
        ids: &[VolumeId],
    ) -> Result<HashMap<VolumeId, VolumeFacts>, StepError> {
        let output = self
            .client
            .describe_volumes()
            .set_volume_ids(Some(ids.iter().map(ToString::to_string).collect()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeVolumes", e))?;
        Ok(output
            .volumes()
            .iter()
            .filter_map(|v| {
                let id = VolumeId::parse(v.volume_id()?).ok()?;
                Some((
                    id,
                    VolumeFacts {
                        size_gib: v.size().unwrap_or(0),
                        volume_type: v
                            .volume_type()
                            .map_or_else(|| "gp3".to_owned(), |t| t.as_str().to_owned()),
                        iops: v.iops(),
                        throughput: v.throughput(),
                        encrypted: v.encrypted().unwrap_or(false),
                        kms_key_id: v.kms_key_id().map(str::to_owned),
                    },
                ))
            })
            .collect())
    }

    /// Takes a crash-consistent snapshot set of an instance's volumes, tagged at creation.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn create_snapshots(
        &self,
        instance: &InstanceId,
        exclude_boot: bool,
        exclude_volumes: &[VolumeId],
        description: &str,
        tags: &[(String, String)],
    ) -> Result<Vec<SnapshotFacts>, StepError> {
        let specification = InstanceSpecification::builder()
            .instance_id(instance.as_str())
            .exclude_boot_volume(exclude_boot)
            .set_exclude_data_volume_ids(
                (!exclude_volumes.is_empty())
                    .then(|| exclude_volumes.iter().map(ToString::to_string).collect()),
            )
            .build();
        let output = self
            .client
            .create_snapshots()
            .instance_specification(specification)
            .description(description)
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Snapshot)
                    .set_tags(Some(tags_of(tags)))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("CreateSnapshots", e))?;
        Ok(output
            .snapshots()
            .iter()
            .filter_map(|s| {
                Some(SnapshotFacts {
                    snapshot_id: SnapshotId::parse(s.snapshot_id()?).ok()?,
                    volume_id: s.volume_id().map(str::to_owned),
                    state: s
                        .state()
                        .map_or_else(|| "pending".to_owned(), |st| st.as_str().to_owned()),
                    state_message: None,
                    percent: parse_percent(s.progress()),
                    size_gib: s.volume_size().unwrap_or(0),
                    started_at: to_chrono(s.start_time()),
                    encrypted: s.encrypted().unwrap_or(false),
                    kms_key_id: None,
                })
            })
            .collect())
    }

    /// Describes snapshots by id.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn describe_snapshots(
        &self,
        ids: &[String],
    ) -> Result<Vec<SnapshotFacts>, StepError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let output = self
            .client
            .describe_snapshots()
            .set_snapshot_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeSnapshots", e))?;
        Ok(output
            .snapshots()
            .iter()
            .filter_map(snapshot_facts)
            .collect())
    }

    /// Snapshots carrying a tag, such as a job's.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn snapshots_tagged(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<SnapshotFacts>, StepError> {
        let mut pages = self
            .client
            .describe_snapshots()
            .owner_ids("self")
            .filters(
                Filter::builder()
                    .name(format!("tag:{key}"))
                    .values(value)
                    .build(),
            )
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("DescribeSnapshots", e))?;
            found.extend(page.snapshots().iter().filter_map(snapshot_facts));
        }
        Ok(found)
    }

    /// Stops an instance and waits until it is stopped.
    ///
    /// # Errors
    /// An AWS error, or a timeout while waiting.
    pub async fn stop_and_wait(&self, id: &InstanceId, timeout: Duration) -> Result<(), StepError> {
        self.client
            .stop_instances()
            .instance_ids(id.as_str())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("StopInstances", e))?;
        self.client
            .wait_until_instance_stopped()
            .instance_ids(id.as_str())
            .wait(timeout)
            .await
            .map_err(|e| StepError::InstanceDidNotStop {
                id: id.clone(),
                reason: aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(())
    }

    /// Starts an instance again.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn start(&self, id: &InstanceId) -> Result<(), StepError> {
        self.client
            .start_instances()
            .instance_ids(id.as_str())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("StartInstances", e))?;
        Ok(())
    }

    /// Our own images with this exact name.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn images_named(&self, name: &str) -> Result<Vec<ImageFacts>, StepError> {
        self.own_images(Filter::builder().name("name").values(name).build())
            .await
    }

    /// Our own images carrying a tag, such as a job's.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn images_tagged(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<ImageFacts>, StepError> {
        self.own_images(
            Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build(),
        )
        .await
    }

    async fn own_images(&self, filter: Filter) -> Result<Vec<ImageFacts>, StepError> {
        let output = self
            .client
            .describe_images()
            .owners("self")
            .filters(filter)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeImages", e))?;
        Ok(output.images().iter().filter_map(image_facts).collect())
    }

    /// One image by id.
    ///
    /// # Errors
    /// An AWS error; a missing image is `Ok(None)`.
    pub async fn image(&self, id: &AmiId) -> Result<Option<ImageFacts>, StepError> {
        match self
            .client
            .describe_images()
            .image_ids(id.as_str())
            .send()
            .await
        {
            Ok(output) => Ok(output.images().iter().find_map(image_facts)),
            Err(err) => {
                let err = AwsError::from_sdk("DescribeImages", err);
                if err.kind == AwsErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(err.into())
                }
            }
        }
    }

    /// Registers an image from a manifest, tagging it in the same call.
    ///
    /// # Errors
    /// An AWS error; a duplicate name is [`AwsErrorKind::Conflict`].
    pub async fn register(
        &self,
        manifest: &Manifest,
        tags: &[(String, String)],
    ) -> Result<AmiId, StepError> {
        let body = &manifest.body;
        let attributes = &body.attributes;
        let mappings: Vec<BlockDeviceMapping> = body.block_devices.iter().map(mapping_of).collect();
        let request = self
            .client
            .register_image()
            .name(body.name.as_str())
            .set_description(body.description.clone())
            .architecture(ArchitectureValues::from(attributes.architecture.as_str()))
            .root_device_name(&attributes.root_device_name)
            .virtualization_type(&attributes.virtualization_type)
            .set_boot_mode(attributes.boot_mode.as_deref().map(BootModeValues::from))
            .ena_support(attributes.ena_support)
            .set_sriov_net_support(attributes.sriov_net_support.clone())
            .set_tpm_support(
                attributes
                    .tpm_support
                    .as_deref()
                    .map(TpmSupportValues::from),
            )
            .set_imds_support(
                attributes
                    .imds_support
                    .as_deref()
                    .map(ImdsSupportValues::from),
            )
            .set_kernel_id(attributes.kernel_id.clone())
            .set_ramdisk_id(attributes.ramdisk_id.clone())
            .set_block_device_mappings(Some(mappings));
        Self::send_register(request, tags).await
    }

    /// Registers a legacy S3 bundle by its image location (`bucket/key` of its
    /// `*.manifest.xml`), tagged in the same call.
    ///
    /// # Errors
    /// An AWS error; a name already taken is [`AwsErrorKind::Conflict`].
    pub async fn register_bundle(
        &self,
        location: &ManifestPath,
        name: &ImageName,
        description: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<AmiId, StepError> {
        let request = self
            .client
            .register_image()
            .name(name.as_str())
            .set_description(description.map(str::to_owned))
            .image_location(format!("{}/{}", location.bucket(), location.key()));
        Self::send_register(request, tags).await
    }

    /// Attaches Marketplace product codes to an image.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn attach_product_codes(
        &self,
        image: &AmiId,
        codes: &[String],
    ) -> Result<(), StepError> {
        if codes.is_empty() {
            return Ok(());
        }
        self.client
            .modify_image_attribute()
            .image_id(image.as_str())
            .set_product_codes(Some(codes.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ModifyImageAttribute", e))?;
        Ok(())
    }

    /// Adds tags to resources.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn tag(
        &self,
        resources: &[String],
        tags: &[(String, String)],
    ) -> Result<(), StepError> {
        if resources.is_empty() || tags.is_empty() {
            return Ok(());
        }
        self.client
            .create_tags()
            .set_resources(Some(resources.to_vec()))
            .set_tags(Some(tags_of(tags)))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("CreateTags", e))?;
        Ok(())
    }

    /// The account's image block public access state, `block-new-sharing` or `unblocked`.
    ///
    /// # Errors
    /// The AWS error, for the caller to judge (the state may be unreadable for lack of
    /// permission).
    pub async fn image_block_public_access(&self) -> Result<Option<String>, AwsError> {
        let output = self
            .client
            .get_image_block_public_access_state()
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetImageBlockPublicAccessState", e))?;
        Ok(output.image_block_public_access_state().map(str::to_owned))
    }

    /// Grants launch permission on an image.
    ///
    /// # Errors
    /// The AWS error, for the caller to translate.
    pub async fn add_launch_permissions(
        &self,
        image: &AmiId,
        sharing: &Sharing,
    ) -> Result<(), AwsError> {
        let grants = launch_grants(sharing);
        if grants.is_empty() {
            return Ok(());
        }
        self.client
            .modify_image_attribute()
            .image_id(image.as_str())
            .launch_permission(
                LaunchPermissionModifications::builder()
                    .set_add(Some(grants))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ModifyImageAttribute", e))?;
        Ok(())
    }

    /// Lets accounts (or everyone) create volumes from a snapshot.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn add_create_volume_permission(
        &self,
        snapshot: &str,
        sharing: &Sharing,
    ) -> Result<(), StepError> {
        let mut grants: Vec<CreateVolumePermission> = sharing
            .accounts
            .iter()
            .map(|a| {
                CreateVolumePermission::builder()
                    .user_id(a.as_str())
                    .build()
            })
            .collect();
        if sharing.public {
            grants.push(
                CreateVolumePermission::builder()
                    .group(PermissionGroup::All)
                    .build(),
            );
        }
        if grants.is_empty() {
            return Ok(());
        }
        self.client
            .modify_snapshot_attribute()
            .snapshot_id(snapshot)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .create_volume_permission(
                CreateVolumePermissionModifications::builder()
                    .set_add(Some(grants))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ModifySnapshotAttribute", e))?;
        Ok(())
    }

    /// Deregisters an image.
    ///
    /// # Errors
    /// The AWS error; a missing image is for the caller to judge.
    pub async fn deregister(&self, image: &str) -> Result<(), AwsError> {
        self.client
            .deregister_image()
            .image_id(image)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DeregisterImage", e))?;
        Ok(())
    }

    /// Deletes a snapshot.
    ///
    /// # Errors
    /// The AWS error; a missing snapshot is for the caller to judge.
    pub async fn delete_snapshot(&self, snapshot: &str) -> Result<(), AwsError> {
        self.client
            .delete_snapshot()
            .snapshot_id(snapshot)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DeleteSnapshot", e))?;
        Ok(())
    }
}

fn mapping_of(device: &BlockDevice) -> BlockDeviceMapping {
    let ebs = EbsBlockDevice::builder()
        .snapshot_id(device.snapshot_id.as_str())
        .volume_size(device.volume_size_gib)
        .volume_type(VolumeType::from(device.volume_type.as_str()))
        .set_iops(
            device
                .iops
                .filter(|_| matches!(device.volume_type.as_str(), "io1" | "io2" | "gp3")),
        )
        .set_throughput(device.throughput.filter(|_| device.volume_type == "gp3"))
        .delete_on_termination(device.delete_on_termination)
        .build();
    BlockDeviceMapping::builder()
        .device_name(&device.device_name)
        .ebs(ebs)
        .build()
}

fn snapshot_facts(s: &aws_sdk_ec2::types::Snapshot) -> Option<SnapshotFacts> {
    Some(SnapshotFacts {
        snapshot_id: SnapshotId::parse(s.snapshot_id()?).ok()?,
        volume_id: s.volume_id().map(str::to_owned),
        state: s
            .state()
            .map_or_else(|| "pending".to_owned(), |st| st.as_str().to_owned()),
        state_message: s.state_message().map(str::to_owned),
        percent: parse_percent(s.progress()),
        size_gib: s.volume_size().unwrap_or(0),
        started_at: to_chrono(s.start_time()),
        encrypted: s.encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_owned),
    })
}

fn image_facts(i: &aws_sdk_ec2::types::Image) -> Option<ImageFacts> {
    Some(ImageFacts {
        image_id: AmiId::parse(i.image_id()?).ok()?,
        name: i.name().map(str::to_owned),
        state: i
            .state()
            .map_or_else(String::new, |s| s.as_str().to_owned()),
        tags: i
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                ))
            })
            .collect(),
        product_codes: i
            .product_codes()
            .iter()
            .filter_map(|p| p.product_code_id().map(str::to_owned))
            .collect(),
        snapshot_ids: i
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()).map(str::to_owned))
            .collect(),
        created: i
            .creation_date()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&Utc)),
    })
}

/// An image as the API lists and shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImageSummary {
    /// The image.
    pub image_id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its description.
    pub description: Option<String>,
    /// The owning account.
    pub owner_id: Option<String>,
    /// When it was created (as EC2 reports it).
    pub creation_date: Option<String>,
    /// `available`, `pending`, ...
    pub state: String,
    /// Launchable by everyone.
    pub public: bool,
    /// `x86_64`, `arm64`, ...
    pub architecture: Option<String>,
    /// The root device.
    pub root_device_name: Option<String>,
    /// Marketplace product codes.
    pub product_codes: Vec<String>,
    /// Its tags.
    #[serde(skip)]
    pub tags: HashMap<String, String>,
    /// Its EBS mappings: device, snapshot, size.
    #[serde(skip)]
    pub snapshots: Vec<(String, String, i32)>,
}

/// One page of images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImagePage {
    /// The images.
    pub images: Vec<ImageSummary>,
    /// EC2's token for the next page.
    pub next: Option<String>,
}

fn summary_of(i: &aws_sdk_ec2::types::Image) -> ImageSummary {
    ImageSummary {
        image_id: i.image_id().unwrap_or_default().to_owned(),
        name: i.name().map(str::to_owned),
        description: i.description().map(str::to_owned),
        owner_id: i.owner_id().map(str::to_owned),
        creation_date: i.creation_date().map(str::to_owned),
        state: i
            .state()
            .map_or_else(String::new, |s| s.as_str().to_owned()),
        public: i.public().unwrap_or(false),
        architecture: i.architecture().map(|a| a.as_str().to_owned()),
        root_device_name: i.root_device_name().map(str::to_owned),
        product_codes: i
            .product_codes()
            .iter()
            .filter_map(|p| p.product_code_id().map(str::to_owned))
            .collect(),
        tags: i
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                ))
            })
            .collect(),
        snapshots: i
            .block_device_mappings()
            .iter()
            .filter_map(|m| {
                let ebs = m.ebs()?;
                Some((
                    m.device_name().unwrap_or_default().to_owned(),
                    ebs.snapshot_id()?.to_owned(),
                    ebs.volume_size().unwrap_or(0),
                ))
            })
            .collect(),
    }
}

impl Ec2 {
    /// One page of the images of `owners` (account ids, `self` or `amazon`), optionally by name
    /// pattern (`*` wildcards) and state.
    ///
    /// # Errors
    /// An AWS error; a bad token is invalid input.
    pub async fn list_images(
        &self,
        owners: &[String],
        name: Option<&str>,
        state: Option<&str>,
        limit: i32,
        next: Option<String>,
    ) -> Result<ImagePage, StepError> {
        let mut request = self
            .client
            .describe_images()
            .set_owners(Some(owners.to_vec()))
            .max_results(limit.clamp(5, 1000))
            .set_next_token(next);
        if let Some(name) = name {
            request = request.filters(Filter::builder().name("name").values(name).build());
        }
        if let Some(state) = state {
            request = request.filters(Filter::builder().name("state").values(state).build());
        }
        let output = request
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeImages", e))?;
        Ok(ImagePage {
            images: output.images().iter().map(summary_of).collect(),
            next: output
                .next_token()
                .map(str::to_owned)
                .filter(|t| !t.is_empty()),
        })
    }

    /// One image by id, as the API shows it.
    ///
    /// # Errors
    /// An AWS error; a missing image is `Ok(None)`.
    pub async fn describe_image(&self, id: &AmiId) -> Result<Option<ImageSummary>, StepError> {
        match self
            .client
            .describe_images()
            .image_ids(id.as_str())
            .send()
            .await
        {
            Ok(output) => Ok(output.images().first().map(summary_of)),
            Err(err) => {
                let err = AwsError::from_sdk("DescribeImages", err);
                if err.kind == AwsErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(err.into())
                }
            }
        }
    }

    /// Who may launch an image now. Grants amiforge cannot express are left out.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn launch_permissions(&self, id: &AmiId) -> Result<Sharing, StepError> {
        let output = self
            .client
            .describe_image_attribute()
            .image_id(id.as_str())
            .attribute(aws_sdk_ec2::types::ImageAttributeName::LaunchPermission)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeImageAttribute", e))?;
        let mut sharing = Sharing::default();
        for grant in output.launch_permissions() {
            if grant.group() == Some(&PermissionGroup::All) {
                sharing.public = true;
            }
            if let Some(account) = grant
                .user_id()
                .and_then(|a| crate::domain::AccountId::parse(a).ok())
            {
                sharing.accounts.insert(account);
            }
            if let Some(org) = grant
                .organization_arn()
                .and_then(|o| crate::domain::OrganizationArn::parse(o).ok())
            {
                sharing.organizations.insert(org);
            }
            if let Some(ou) = grant
                .organizational_unit_arn()
                .and_then(|o| crate::domain::OuArn::parse(o).ok())
            {
                sharing.organizational_units.insert(ou);
            }
        }
        Ok(sharing)
    }

    /// Removes launch permissions.
    ///
    /// # Errors
    /// The AWS error.
    pub async fn remove_launch_permissions(
        &self,
        image: &AmiId,
        sharing: &Sharing,
    ) -> Result<(), AwsError> {
        let grants = launch_grants(sharing);
        if grants.is_empty() {
            return Ok(());
        }
        self.client
            .modify_image_attribute()
            .image_id(image.as_str())
            .launch_permission(
                LaunchPermissionModifications::builder()
                    .set_remove(Some(grants))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ModifyImageAttribute", e))?;
        Ok(())
    }

    /// Who may create volumes from a snapshot: accounts, and whether everyone may.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn create_volume_permissions(
        &self,
        snapshot: &str,
    ) -> Result<(Vec<String>, bool), StepError> {
        let output = self
            .client
            .describe_snapshot_attribute()
            .snapshot_id(snapshot)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeSnapshotAttribute", e))?;
        let grants = output.create_volume_permissions();
        let accounts = grants
            .iter()
            .filter_map(|g| g.user_id().map(str::to_owned))
            .collect();
        let public = grants
            .iter()
            .any(|g| g.group() == Some(&PermissionGroup::All));
        Ok((accounts, public))
    }
}

fn launch_grants(sharing: &Sharing) -> Vec<LaunchPermission> {
    let mut grants = Vec::new();
    if sharing.public {
        grants.push(
            LaunchPermission::builder()
                .group(PermissionGroup::All)
                .build(),
        );
    }
    grants.extend(
        sharing
            .accounts
            .iter()
            .map(|a| LaunchPermission::builder().user_id(a.as_str()).build()),
    );
    grants.extend(sharing.organizations.iter().map(|o| {
        LaunchPermission::builder()
            .organization_arn(o.as_str())
            .build()
    }));
    grants.extend(sharing.organizational_units.iter().map(|o| {
        LaunchPermission::builder()
            .organizational_unit_arn(o.as_str())
            .build()
    }));
    grants
}

impl Ec2 {
    /// Every image of the account by the snapshots its EBS mappings use.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn own_images_by_snapshot(&self) -> Result<HashMap<String, Vec<String>>, StepError> {
        let mut pages = self
            .client
            .describe_images()
            .owners("self")
            .into_paginator()
            .send();
        let mut users: HashMap<String, Vec<String>> = HashMap::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("DescribeImages", e))?;
            for image in page.images() {
                let image_id = image.image_id().unwrap_or_default();
                for snapshot in image
                    .block_device_mappings()
                    .iter()
                    .filter_map(|m| m.ebs().and_then(|e| e.snapshot_id()))
                {
                    users
                        .entry(snapshot.to_owned())
                        .or_default()
                        .push(image_id.to_owned());
                }
            }
        }
        Ok(users)
    }
}
