//! Plain domain rules: identifiers, names, locations, tags, sharing, build requests and
//! schedules.
//!
//! Nothing here talks to AWS. Every type validates on construction, and every rejection names
//! the field and the rule it broke, so callers can hand the message straight to a user.

mod ids;
mod manifest;
mod name;
mod progress;
mod register;
mod request;
mod s3;
mod schedule;
mod sharing;
mod tags;

pub use ids::{AccountId, AmiId, InstanceId, JobId, OrganizationArn, OuArn, SnapshotId, VolumeId};
pub use manifest::{
    BlockDevice, ImageAttributes, Manifest, ManifestBody, ManifestDigestMismatch,
    ManifestReadError, SourceInstance, FORMAT_VERSION,
};
pub use name::ImageName;
pub use progress::{next_wait, PollBounds, Progress, SnapshotSample};
pub use register::{
    RegisterRequest, RegisterSource, RegisterSpec, LEGACY_MANIFEST_SUFFIX, MANIFEST_SUFFIX,
};
pub use request::{BuildRequest, BuildSpec, DeviceName, DeviceSelection, ProductCode};
pub use s3::{BucketName, KeyPrefix, ManifestPath, MANIFEST_FILE};
pub use schedule::{
    NameTemplate, Retained, Retention, ScheduleExpression, ScheduleName, ScheduleRequest,
    ScheduleSpec, MAX_SCHEDULE_NAME,
};
pub use sharing::{Sharing, SharingChange, SharingRequest};
pub use tags::{TagKey, Tags};

use std::fmt;

/// A value that broke a rule, with the field it came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldError {
    /// Where the value sits in the request, for example `sharing.accounts[1]`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl FieldError {
    /// A rejection of `field` with a message saying the rule.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same rejection, reported at another place in a request.
    #[must_use]
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Every field a request got wrong, in the order they were checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidRequest(pub Vec<FieldError>);

impl fmt::Display for InvalidRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "invalid request: {}", parts.join("; "))
    }
}

/// Collects field errors while a request is checked as a whole.
#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    /// Keeps the value, or records its error at `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.push(error.at(field));
                None
            }
        }
    }

    /// Records a rejection of `field`.
    pub fn reject(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Every rejection recorded, or `Ok` when there is none.
    ///
    /// # Errors
    /// [`InvalidRequest`] with the rejections in the order recorded.
    pub fn finish(self) -> Result<(), InvalidRequest> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(InvalidRequest(self.errors))
        }
    }
}

/// Implements string conversions and serde for a validated string newtype.
macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            /// The value as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::FieldError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::domain::FieldError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}
pub(crate) use string_newtype;
