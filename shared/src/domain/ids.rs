//! Identifiers of EC2 resources, AWS accounts, organizations and jobs.

use super::{string_newtype, FieldError};

/// Checks `<prefix><8 or 17 lowercase hex digits>`, the shape of every EC2 resource id.
fn ec2_id(value: &str, prefix: &str, field: &str, what: &str) -> Result<String, FieldError> {
    let rule = || {
        FieldError::new(
            field,
            format!(
                "{what} must be '{prefix}' followed by 8 or 17 lowercase hexadecimal digits, got {value:?}"
            ),
        )
    };
    let digits = value.strip_prefix(prefix).ok_or_else(rule)?;
    let hex = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if (digits.len() == 8 || digits.len() == 17) && hex {
        Ok(value.to_owned())
    } else {
        Err(rule())
    }
}

macro_rules! ec2_id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $field:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates an id.
            ///
            /// # Errors
            /// A [`FieldError`] naming the expected shape when the value does not have it.
            pub fn parse(value: &str) -> Result<Self, FieldError> {
                ec2_id(value, $prefix, $field, $what).map(Self)
            }
        }

        string_newtype!($name);
    };
}

ec2_id_type!(
    /// An EC2 instance id, `i-` and 8 or 17 hex digits.
    InstanceId, "i-", "instance_id", "an instance id"
);
ec2_id_type!(
    /// An Amazon Machine Image id, `ami-` and 8 or 17 hex digits.
    AmiId, "ami-", "image_id", "an image id"
);
ec2_id_type!(
    /// An EBS snapshot id, `snap-` and 8 or 17 hex digits.
    SnapshotId, "snap-", "snapshot_id", "a snapshot id"
);
ec2_id_type!(
    /// An EBS volume id, `vol-` and 8 or 17 hex digits.
    VolumeId, "vol-", "volume_id", "a volume id"
);

/// An AWS account id: exactly 12 digits, kept as text so a leading zero survives.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    /// Validates an account id.
    ///
    /// # Errors
    /// A [`FieldError`] when the value is not exactly 12 digits.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                "account_id",
                format!("an account id must be exactly 12 digits, got {value:?}"),
            ))
        }
    }
}
string_newtype!(AccountId);

const ORG_PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

fn is_lower_alnum(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// Checks `o-` and 10 to 32 lowercase letters or digits.
fn is_org_id(s: &str) -> bool {
    s.strip_prefix("o-")
        .is_some_and(|rest| (10..=32).contains(&rest.len()) && is_lower_alnum(rest))
}

/// Splits `arn:<partition>:organizations::<account>:<resource>` and returns the resource.
fn organizations_resource(value: &str) -> Option<&str> {
    let mut parts = value.splitn(6, ':');
    let (arn, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (arn == "arn"
        && ORG_PARTITIONS.contains(&partition)
        && service == "organizations"
        && region.is_empty()
        && account_ok)
        .then_some(resource)
}

/// The ARN of an AWS Organizations organization, as launch permissions take it.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct OrganizationArn(String);

impl OrganizationArn {
    /// Validates `arn:aws:organizations::<12 digits>:organization/o-<10 to 32 [a-z0-9]>`.
    ///
    /// # Errors
    /// A [`FieldError`] naming that shape when the value does not have it.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let ok = organizations_resource(value)
            .and_then(|resource| resource.strip_prefix("organization/"))
            .is_some_and(is_org_id);
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                "organization_arn",
                format!(
                    "an organization ARN must look like \
                     arn:aws:organizations::123456789012:organization/o-abcdefghij, got {value:?}"
                ),
            ))
        }
    }
}
string_newtype!(OrganizationArn);

/// The ARN of an organizational unit, as launch permissions take it.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct OuArn(String);

impl OuArn {
    /// Validates `arn:aws:organizations::<12 digits>:ou/o-<org>/ou-<4 to 32>-<8 to 32>`, all
    /// lowercase letters and digits.
    ///
    /// # Errors
    /// A [`FieldError`] naming that shape when the value does not have it.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let ok = organizations_resource(value)
            .and_then(|resource| resource.strip_prefix("ou/"))
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(org, ou)| {
                is_org_id(org)
                    && ou
                        .strip_prefix("ou-")
                        .and_then(|rest| rest.split_once('-'))
                        .is_some_and(|(root, unit)| {
                            (4..=32).contains(&root.len())
                                && (8..=32).contains(&unit.len())
                                && is_lower_alnum(root)
                                && is_lower_alnum(unit)
                        })
            });
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                "ou_arn",
                format!(
                    "an organizational unit ARN must look like \
                     arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34, got {value:?}"
                ),
            ))
        }
    }
}
string_newtype!(OuArn);

/// A job id. It doubles as the Step Functions execution name, so it follows that name's rules:
/// 1 to 80 characters, letters, digits, `-` and `_`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl JobId {
    /// Validates a job id.
    ///
    /// # Errors
    /// A [`FieldError`] when the value is empty, longer than 80 characters, or holds a
    /// character other than letters, digits, `-` and `_`.
    pub fn parse(value: &str) -> Result<Self, FieldError> {
        let allowed = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if (1..=80).contains(&value.len()) && allowed {
            Ok(Self(value.to_owned()))
        } else {
            Err(FieldError::new(
                "job_id",
                format!("a job id must be 1 to 80 letters, digits, '-' or '_', got {value:?}"),
            ))
        }
    }

    /// A new id: `job-`, the UTC time to the second, and 8 random hex digits, so ids sort by
    /// creation time.
    pub fn generate(now: chrono::DateTime<chrono::Utc>) -> Self {
        let random = uuid::Uuid::new_v4().simple().to_string();
        Self(format!(
            "job-{}-{}",
            now.format("%Y%m%d-%H%M%S"),
            &random[..8]
        ))
    }
}
string_newtype!(JobId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_take_8_or_17_hex_digits() {
        assert!(InstanceId::parse("i-0123abcd").is_ok());
        assert!(InstanceId::parse("i-0123456789abcdef0").is_ok());
        let err = InstanceId::parse("i-0123ABCD").unwrap_err();
        assert_eq!(err.field, "instance_id");
        assert!(err.message.contains("lowercase hexadecimal"), "{err}");
        assert!(InstanceId::parse("i-0123abc").is_err());
        assert!(InstanceId::parse("ami-0123abcd").is_err());
    }

    #[test]
    fn resource_ids_check_their_own_prefix() {
        assert_eq!(
            AmiId::parse("ami-12345678").unwrap().as_str(),
            "ami-12345678"
        );
        assert!(AmiId::parse("snap-12345678").is_err());
        assert!(SnapshotId::parse("snap-0123456789abcdef0").is_ok());
        assert_eq!(
            SnapshotId::parse("vol-12345678").unwrap_err().field,
            "snapshot_id"
        );
        assert!(VolumeId::parse("vol-12345678").is_ok());
        assert!(VolumeId::parse("vol-1234567g").is_err());
    }

    #[test]
    fn account_ids_keep_a_leading_zero() {
        let id = AccountId::parse("012345678901").unwrap();
        assert_eq!(id.as_str(), "012345678901");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"012345678901\"");
        let err = AccountId::parse("12345678901").unwrap_err();
        assert_eq!(err.field, "account_id");
        assert!(err.message.contains("exactly 12 digits"));
        assert!(AccountId::parse("01234567890a").is_err());
        assert!(serde_json::from_str::<AccountId>("\"1234\"").is_err());
    }

    #[test]
    fn organization_arns_follow_the_organizations_format() {
        assert!(OrganizationArn::parse(
            "arn:aws:organizations::123456789012:organization/o-abc123def4"
        )
        .is_ok());
        let err =
            OrganizationArn::parse("arn:aws:organizations::123456789012:organization/o-short")
                .unwrap_err();
        assert_eq!(err.field, "organization_arn");
        assert!(
            OrganizationArn::parse("arn:aws:iam::123456789012:organization/o-abc123def4").is_err()
        );
        assert!(OrganizationArn::parse(
            "arn:aws:organizations:us-east-1:123456789012:organization/o-abc123def4"
        )
        .is_err());
    }

    #[test]
    fn ou_arns_follow_the_organizations_format() {
        assert!(OuArn::parse(
            "arn:aws:organizations::123456789012:ou/o-abc123def4/ou-ab12-cdefgh34"
        )
        .is_ok());
        let err = OuArn::parse("arn:aws:organizations::123456789012:ou/o-abc123def4/ou-ab12")
            .unwrap_err();
        assert_eq!(err.field, "ou_arn");
        assert!(err.message.contains("ou-ab12-cdefgh34"));
        assert!(
            OuArn::parse("arn:aws:organizations::123456789012:organization/o-abc123def4").is_err()
        );
        assert!(OuArn::parse(
            "arn:aws:organizations::123456789012:ou/o-abc123def4/ou-AB12-cdefgh34"
        )
        .is_err());
    }

    #[test]
    fn job_ids_follow_execution_name_rules() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-03T19:36:12Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let id = JobId::generate(now);
        assert!(id.as_str().starts_with("job-20261203-193612-"), "{id}");
        assert!(JobId::parse(id.as_str()).is_ok());
        assert!(JobId::parse("").is_err());
        assert!(JobId::parse("has space").is_err());
        assert!(JobId::parse(&"a".repeat(81)).is_err());
        assert!(JobId::parse("6f1c2d3e-0000-4000-8000-000000000000").is_ok());
    }
}
