//! A build request as a user sends it, and the validated build it describes.

use std::collections::BTreeMap;

use super::{
    string_newtype, BucketName, Checker, FieldError, ImageName, InstanceId, InvalidRequest,
    KeyPrefix, Sharing, SharingRequest, Tags,
};

/// A request to image an instance, as the API and schedules receive it. Every field has a
/// default so that a missing one is reported by [`BuildRequest::validate`] with the others.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuildRequest {
    /// The instance to image.
    pub instance_id: String,
    /// The new image's name.
    pub name: String,
    /// The new image's description.
    pub description: Option<String>,
    /// Snapshot the instance as it runs (crash-consistent). When false, the instance is
    /// stopped for the moment the snapshots are taken and started again.
    pub no_reboot: bool,
    /// Capture only these device names.
    pub include_devices: Vec<String>,
    /// Capture every EBS volume but these device names.
    pub exclude_devices: Vec<String>,
    /// Who may launch the image.
    pub sharing: SharingRequest,
    /// Tags for the image and its snapshots.
    pub tags: BTreeMap<String, String>,
    /// Marketplace product codes to attach to the image.
    pub product_codes: Vec<String>,
    /// Manifest bucket, when not the configured one.
    pub bucket: Option<String>,
    /// Manifest key prefix, when not the configured one.
    pub prefix: Option<String>,
}

impl Default for BuildRequest {
    fn default() -> Self {
        Self {
            instance_id: String::new(),
            name: String::new(),
            description: None,
            no_reboot: true,
            include_devices: Vec::new(),
            exclude_devices: Vec::new(),
            sharing: SharingRequest::default(),
            tags: BTreeMap::new(),
            product_codes: Vec::new(),
            bucket: None,
            prefix: None,
        }
    }
}

/// A device name as EC2 block device mappings use it, such as `/dev/sda1` or `xvdf`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceName(String);

impl DeviceName {
    /// Validates a device name.
    ///
    /// # Errors
    /// A [`FieldError`] unless the value is `/dev/` or `xvd` followed by 1 to 16 lowercase
    /// letters and digits.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let rest = value
            .strip_prefix("/dev/")
            .or_else(|| value.strip_prefix("xvd"));
        let ok = rest.is_some_and(|r| {
            (1..=16).contains(&r.len())
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                "device",
                format!("a device name must look like /dev/sdf or xvdf, got {value:?}"),
            ))
        }
    }
}
string_newtype!(DeviceName);

/// A Marketplace product code: 1 to 64 lowercase letters and digits.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct ProductCode(String);

impl ProductCode {
    /// Validates a product code.
    ///
    /// # Errors
    /// A [`FieldError`] unless the value is 1 to 64 lowercase letters and digits.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let ok = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                "product_code",
                format!(
                    "a product code must be 1 to 64 lowercase letters and digits, got {value:?}"
                ),
            ))
        }
    }
}
string_newtype!(ProductCode);

/// Which EBS volumes of the instance to capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceSelection {
    /// Every EBS volume.
    #[default]
    All,
    /// Only these devices.
    Only(Vec<DeviceName>),
    /// Every EBS volume but these devices.
    Except(Vec<DeviceName>),
}

impl DeviceSelection {
    /// Whether the device is to be captured.
    pub fn includes(&self, device: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.iter().any(|n| n.as_str() == device),
            Self::Except(names) => !names.iter().any(|n| n.as_str() == device),
        }
    }
}

/// The most a description may hold, as EC2 allows.
pub const MAX_DESCRIPTION: usize = 255;

/// A build request that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuildSpec {
    /// The instance to image.
    pub instance_id: InstanceId,
    /// The new image's name.
    pub name: ImageName,
    /// The new image's description.
    pub description: Option<String>,
    /// Snapshot without stopping the instance.
    pub no_reboot: bool,
    /// Which volumes to capture.
    pub devices: DeviceSelection,
    /// Who may launch the image.
    pub sharing: Sharing,
    /// The user's tags.
    pub tags: Tags,
    /// Product codes to attach.
    pub product_codes: Vec<ProductCode>,
    /// The manifest bucket.
    pub bucket: BucketName,
    /// The manifest key prefix.
    pub prefix: KeyPrefix,
}

impl BuildRequest {
    /// Checks the whole request and returns every rule it breaks at once.
    ///
    /// `bucket` and `prefix` are the configured defaults, used when the request names none.
    ///
    /// # Errors
    /// [`InvalidRequest`] listing each bad field with what is allowed.
    pub fn validate(
        &self,
        bucket: &BucketName,
        prefix: &KeyPrefix,
    ) -> Result<BuildSpec, InvalidRequest> {
        let mut checker = Checker::default();

        let instance_id = if self.instance_id.is_empty() {
            checker.reject("instance_id", "instance_id is required");
            None
        } else {
            checker.check("instance_id", InstanceId::parse(&self.instance_id))
        };
        let name = if self.name.is_empty() {
            checker.reject("name", "name is required");
            None
        } else {
            checker.check("name", ImageName::parse(&self.name))
        };
        if let Some(description) = &self.description {
            let length = description.chars().count();
            if length > MAX_DESCRIPTION {
                checker.reject(
                    "description",
                    format!("a description must be at most {MAX_DESCRIPTION} characters long, got {length}"),
                );
            }
        }
        let devices = self.check_devices(&mut checker);
        let sharing = Sharing::check(&self.sharing, "sharing", &mut checker);
        let tags = checker.check("tags", Tags::parse(self.tags.clone()));
        let product_codes: Vec<ProductCode> = self
            .product_codes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                checker.check(&format!("product_codes[{i}]"), ProductCode::parse(c))
            })
            .collect();
        if sharing.public && !self.product_codes.is_empty() {
            checker.reject(
                "sharing.public",
                "an image with product codes cannot be made public; share it with accounts instead",
            );
        }
        let bucket = match &self.bucket {
            Some(b) => checker.check("bucket", BucketName::parse(b)),
            None => Some(bucket.clone()),
        };
        let prefix = match &self.prefix {
            Some(p) => checker.check("prefix", KeyPrefix::parse(p)),
            None => Some(prefix.clone()),
        };

        checker.finish()?;
        match (instance_id, name, devices, tags, bucket, prefix) {
            (
                Some(instance_id),
                Some(name),
                Some(devices),
                Some(tags),
                Some(bucket),
                Some(prefix),
            ) => Ok(BuildSpec {
                instance_id,
                name,
                description: self.description.clone(),
                no_reboot: self.no_reboot,
                devices,
                sharing,
                tags,
                product_codes,
                bucket,
                prefix,
            }),
            // Every `None` above recorded an error, so `finish` has returned already.
            _ => Err(InvalidRequest(Vec::new())),
        }
    }

    fn check_devices(&self, checker: &mut Checker) -> Option<DeviceSelection> {
        let parse_all = |checker: &mut Checker, field: &str, names: &[String]| -> Vec<DeviceName> {
            names
                .iter()
                .enumerate()
                .filter_map(|(i, n)| checker.check(&format!("{field}[{i}]"), DeviceName::parse(n)))
                .collect()
        };
        match (
            self.include_devices.is_empty(),
            self.exclude_devices.is_empty(),
        ) {
            (true, true) => Some(DeviceSelection::All),
            (false, true) => Some(DeviceSelection::Only(parse_all(
                checker,
                "include_devices",
                &self.include_devices,
            ))),
            (true, false) => Some(DeviceSelection::Except(parse_all(
                checker,
                "exclude_devices",
                &self.exclude_devices,
            ))),
            (false, false) => {
                checker.reject(
                    "exclude_devices",
                    "give include_devices or exclude_devices, not both",
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> (BucketName, KeyPrefix) {
        (
            BucketName::parse("amiforge-test").unwrap(),
            KeyPrefix::parse("images").unwrap(),
        )
    }

    #[test]
    fn a_good_request_becomes_a_spec_with_defaults() {
        let (bucket, prefix) = defaults();
        let request: BuildRequest =
            serde_json::from_str(r#"{"instance_id":"i-0123abcd","name":"web-1"}"#).unwrap();
        let spec = request.validate(&bucket, &prefix).unwrap();
        assert_eq!(spec.instance_id.as_str(), "i-0123abcd");
        assert!(spec.no_reboot);
        assert_eq!(spec.devices, DeviceSelection::All);
        assert_eq!(spec.bucket, bucket);
        assert_eq!(spec.prefix.as_str(), "images");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let (bucket, prefix) = defaults();
        let request = BuildRequest {
            instance_id: "i-xyz".into(),
            name: "a#".into(),
            description: Some("d".repeat(256)),
            sharing: SharingRequest {
                accounts: vec!["1234".into()],
                organizational_units: vec!["ou-nope".into()],
                ..SharingRequest::default()
            },
            bucket: Some("Bad_Bucket".into()),
            prefix: Some("/abs".into()),
            ..BuildRequest::default()
        };
        let err = request.validate(&bucket, &prefix).unwrap_err();
        let fields: Vec<&str> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "instance_id",
                "name",
                "description",
                "sharing.accounts[0]",
                "sharing.organizational_units[0]",
                "bucket",
                "prefix"
            ]
        );
    }

    #[test]
    fn missing_fields_are_required() {
        let (bucket, prefix) = defaults();
        let err = BuildRequest::default()
            .validate(&bucket, &prefix)
            .unwrap_err();
        assert_eq!(
            err.0[0],
            FieldError::new("instance_id", "instance_id is required")
        );
        assert_eq!(err.0[1], FieldError::new("name", "name is required"));
    }

    #[test]
    fn product_codes_forbid_public_sharing() {
        let (bucket, prefix) = defaults();
        let request = BuildRequest {
            instance_id: "i-0123abcd".into(),
            name: "paid".into(),
            product_codes: vec!["abcdef123".into()],
            sharing: SharingRequest {
                public: true,
                ..SharingRequest::default()
            },
            ..BuildRequest::default()
        };
        let err = request.validate(&bucket, &prefix).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!(err.0[0].field, "sharing.public");
    }

    #[test]
    fn devices_are_included_or_excluded_not_both() {
        let (bucket, prefix) = defaults();
        let mut request = BuildRequest {
            instance_id: "i-0123abcd".into(),
            name: "web-1".into(),
            include_devices: vec!["/dev/sda1".into()],
            exclude_devices: vec!["/dev/sdf".into()],
            ..BuildRequest::default()
        };
        let err = request.validate(&bucket, &prefix).unwrap_err();
        assert_eq!(err.0[0].field, "exclude_devices");
        request.include_devices.clear();
        let spec = request.validate(&bucket, &prefix).unwrap();
        assert!(!spec.devices.includes("/dev/sdf"));
        assert!(spec.devices.includes("/dev/sda1"));
        request.exclude_devices = vec!["sdf".into()];
        let err = request.validate(&bucket, &prefix).unwrap_err();
        assert_eq!(err.0[0].field, "exclude_devices[0]");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<BuildRequest>(r#"{"instance":"i-0123abcd"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `instance`"),
            "{err}"
        );
    }
}
