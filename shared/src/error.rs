//! The error taxonomy: how AWS errors are classified, the errors a step can end with, and
//! the fixed error types they carry to Step Functions.

use std::error::Error as StdError;
use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::domain::{InstanceId, InvalidRequest, JobId, ManifestPath, ManifestReadError};
use crate::jobs::StoreError;

/// The error types a Lambda reports to Step Functions. The state machines' `Retry` and
/// `Catch` lists name exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// Worth trying again: throttling, a service hiccup, a resource not ready yet.
    Retryable,
    /// The request is wrong; retrying cannot help.
    InvalidInput,
    /// The request clashes with what exists, such as an image name already taken.
    Conflict,
    /// Something the request names does not exist.
    NotFound,
    /// Anything else that ends the job.
    Failed,
}

impl ErrorType {
    /// Every error type, in the order the state machines list them.
    pub const ALL: [Self; 5] = [
        Self::Retryable,
        Self::InvalidInput,
        Self::Conflict,
        Self::NotFound,
        Self::Failed,
    ];

    /// The name Step Functions sees.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retryable => "AmiForge.Retryable",
            Self::InvalidInput => "AmiForge.InvalidInput",
            Self::Conflict => "AmiForge.Conflict",
            Self::NotFound => "AmiForge.NotFound",
            Self::Failed => "AmiForge.Failed",
        }
    }

    /// The error type with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of failure an AWS call had, told from the service's error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsErrorKind {
    /// The resource does not exist.
    NotFound,
    /// The service asked us to slow down.
    Throttled,
    /// A timeout, a dropped connection or a server-side error.
    Transient,
    /// The request clashes with the resource's state: duplicate, in use, condition failed.
    Conflict,
    /// The service refused the parameters.
    InvalidInput,
    /// The caller lacks permission.
    AccessDenied,
    /// Anything else.
    Other,
}

impl AwsErrorKind {
    /// Classifies a service error code (EC2, S3, DynamoDB and Step Functions codes).
    pub fn from_code(code: &str) -> Self {
        const NOT_FOUND: [&str; 7] = [
            "NoSuchKey",
            "NoSuchBucket",
            "NotFound",
            "ResourceNotFoundException",
            "ExecutionDoesNotExist",
            "StateMachineDoesNotExist",
            "NoSuchEntity",
        ];
        const THROTTLED: [&str; 9] = [
            "Throttling",
            "ThrottlingException",
            "RequestLimitExceeded",
            "SlowDown",
            "ProvisionedThroughputExceededException",
            "RequestThrottled",
            "TooManyRequestsException",
            "SnapshotCreationPerVolumeRateExceeded",
            "RequestLimitExceededException",
        ];
        const TRANSIENT: [&str; 7] = [
            "InternalError",
            "InternalFailure",
            "InternalServerError",
            "ServiceUnavailable",
            "ServiceUnavailableException",
            "Unavailable",
            "RequestTimeout",
        ];
        const CONFLICT: [&str; 8] = [
            "ConditionalCheckFailedException",
            "TransactionConflictException",
            "ExecutionAlreadyExists",
            "IdempotentParameterMismatch",
            "ResourceInUseException",
            "IncorrectState",
            "IncorrectInstanceState",
            "OperationAborted",
        ];
        const ACCESS: [&str; 5] = [
            "UnauthorizedOperation",
            "AccessDenied",
            "AccessDeniedException",
            "AuthFailure",
            "OptInRequired",
        ];
        if NOT_FOUND.contains(&code) || code.ends_with(".NotFound") {
            Self::NotFound
        } else if THROTTLED.contains(&code) {
            Self::Throttled
        } else if TRANSIENT.contains(&code) {
            Self::Transient
        } else if CONFLICT.contains(&code)
            || code.ends_with(".Duplicate")
            || code.ends_with(".InUse")
        {
            Self::Conflict
        } else if ACCESS.contains(&code) {
            Self::AccessDenied
        } else if code.starts_with("Invalid")
            || code.starts_with("Missing")
            || code == "ValidationException"
            || code.ends_with(".Malformed")
        {
            Self::InvalidInput
        } else {
            Self::Other
        }
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Transient)
    }
}

/// A failed AWS call, classified, with the SDK error kept as its source.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct AwsError {
    /// The operation, such as `CreateSnapshots`.
    pub operation: &'static str,
    /// What kind of failure it was.
    pub kind: AwsErrorKind,
    /// The service's error code, when it sent one.
    pub code: Option<String>,
    /// The service's message, or a description of the transport failure.
    pub message: String,
    #[source]
    source: Box<dyn StdError + Send + Sync>,
}

impl AwsError {
    /// Classifies an SDK error.
    pub fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let (kind, code, message) = match &err {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                let code = inner.code().map(str::to_owned);
                let kind = code
                    .as_deref()
                    .map_or(AwsErrorKind::Other, AwsErrorKind::from_code);
                let message = inner
                    .message()
                    .map_or_else(|| DisplayErrorContext(&err).to_string(), str::to_owned);
                (kind, code, message)
            }
            SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::ResponseError(_) => (
                AwsErrorKind::Transient,
                None,
                DisplayErrorContext(&err).to_string(),
            ),
            _ => (
                AwsErrorKind::Other,
                None,
                DisplayErrorContext(&err).to_string(),
            ),
        };
        Self {
            operation,
            kind,
            code,
            message,
            source: Box::new(err),
        }
    }

    /// Whether this is the given service error code.
    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }
}

/// The ways a pipeline step can fail. Each has a fixed [`ErrorType`].
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The request broke validation rules.
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// The input event itself is not what the step takes.
    #[error("step input is not valid: {0}")]
    BadEvent(String),
    /// The instance to image does not exist.
    #[error("instance {0} does not exist")]
    InstanceNotFound(InstanceId),
    /// The instance is in a state that cannot be imaged.
    #[error("instance {id} is {state}; it must be running or stopped")]
    InstanceNotReady {
        /// The instance.
        id: InstanceId,
        /// Its state.
        state: String,
    },
    /// The instance did not stop in time for a consistent snapshot.
    #[error("instance {id} did not stop for the snapshot: {reason}")]
    InstanceDidNotStop {
        /// The instance.
        id: InstanceId,
        /// What the waiter reported.
        reason: String,
    },
    /// No EBS volume is left to capture after the device selection.
    #[error("instance {0} has no EBS volume to capture with the devices selected")]
    NothingToCapture(InstanceId),
    /// A snapshot ended in `error`.
    #[error("snapshot {snapshot_id} failed: {reason}")]
    SnapshotFailed {
        /// The snapshot.
        snapshot_id: String,
        /// EC2's state message.
        reason: String,
    },
    /// Another image already has the name.
    #[error("an image named {name:?} already exists: {image_id}")]
    NameTaken {
        /// The name.
        name: String,
        /// The image holding it.
        image_id: String,
    },
    /// The image does not exist.
    #[error("image {0} does not exist")]
    ImageNotFound(String),
    /// The job is not in the store.
    #[error("job {0} does not exist")]
    JobNotFound(JobId),
    /// The job lacks what an earlier step should have recorded.
    #[error("job {job_id} has no {what} yet; the {step} step must run first")]
    JobIncomplete {
        /// The job.
        job_id: JobId,
        /// What is missing.
        what: &'static str,
        /// The step that records it.
        step: &'static str,
    },
    /// The manifest object does not exist.
    #[error("manifest {0} does not exist")]
    ManifestNotFound(ManifestPath),
    /// The manifest cannot be used.
    #[error("manifest {path}: {source}")]
    Manifest {
        /// Where it was read.
        path: ManifestPath,
        /// What is wrong with it.
        #[source]
        source: ManifestReadError,
    },
    /// The account blocks public sharing of images.
    #[error(
        "public sharing is blocked: the account's image block public access setting is \
         'block-new-sharing'; turn it off in EC2 (DisableImageBlockPublicAccess) or share with accounts instead"
    )]
    PublicSharingBlocked,
    /// Images with product codes cannot be public.
    #[error(
        "image {0} has product codes and cannot be made public; share it with accounts instead"
    )]
    ProductCodesPublic(String),
    /// An encrypted snapshot uses the AWS managed key, which cannot be shared.
    #[error(
        "snapshot {snapshot_id} is encrypted with the AWS managed key {key_id}, which other accounts \
         cannot use; re-encrypt it with a customer managed KMS key and share that key"
    )]
    ManagedKeyShare {
        /// The snapshot.
        snapshot_id: String,
        /// Its key.
        key_id: String,
    },
    /// Some resources of a failed job could not be deleted yet.
    #[error("cleanup of job {job_id} is not finished; still present: {remaining}")]
    CleanupIncomplete {
        /// The job.
        job_id: JobId,
        /// What is left.
        remaining: String,
    },
    /// No schedule of that name.
    #[error("schedule {0} does not exist")]
    ScheduleNotFound(String),
    /// A setting the operation needs is not configured.
    #[error("{variable} is not set, so {what}")]
    NotConfigured {
        /// The environment variable.
        variable: &'static str,
        /// What cannot be done without it.
        what: &'static str,
    },
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The job store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StepError {
    /// The error type Step Functions sees.
    pub fn error_type(&self) -> ErrorType {
        match self {
            Self::Invalid(_)
            | Self::BadEvent(_)
            | Self::InstanceNotReady { .. }
            | Self::NothingToCapture(_)
            | Self::ProductCodesPublic(_)
            | Self::ManagedKeyShare { .. }
            | Self::Manifest { .. } => ErrorType::InvalidInput,
            Self::InstanceNotFound(_)
            | Self::ImageNotFound(_)
            | Self::JobNotFound(_)
            | Self::ManifestNotFound(_)
            | Self::ScheduleNotFound(_) => ErrorType::NotFound,
            Self::NameTaken { .. } | Self::PublicSharingBlocked => ErrorType::Conflict,
            Self::SnapshotFailed { .. }
            | Self::JobIncomplete { .. }
            | Self::InstanceDidNotStop { .. }
            | Self::NotConfigured { .. } => ErrorType::Failed,
            Self::CleanupIncomplete { .. } => ErrorType::Retryable,
            Self::Aws(err) => aws_error_type(err.kind),
            Self::Store(err) => err.error_type(),
        }
    }
}

/// The error type of a failed AWS call.
pub fn aws_error_type(kind: AwsErrorKind) -> ErrorType {
    match kind {
        AwsErrorKind::Throttled | AwsErrorKind::Transient => ErrorType::Retryable,
        AwsErrorKind::NotFound => ErrorType::NotFound,
        AwsErrorKind::Conflict => ErrorType::Conflict,
        AwsErrorKind::InvalidInput => ErrorType::InvalidInput,
        AwsErrorKind::AccessDenied | AwsErrorKind::Other => ErrorType::Failed,
    }
}

impl From<StepError> for lambda_runtime::Diagnostic {
    fn from(err: StepError) -> Self {
        Self {
            error_type: err.error_type().as_str().to_owned(),
            error_message: err.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_codes_are_classified() {
        use AwsErrorKind::*;
        let cases = [
            ("InvalidInstanceID.NotFound", NotFound),
            ("InvalidAMIID.NotFound", NotFound),
            ("NoSuchKey", NotFound),
            ("RequestLimitExceeded", Throttled),
            ("ThrottlingException", Throttled),
            ("InternalError", Transient),
            ("ConditionalCheckFailedException", Conflict),
            ("InvalidAMIName.Duplicate", Conflict),
            ("InvalidSnapshot.InUse", Conflict),
            ("ExecutionAlreadyExists", Conflict),
            ("InvalidParameterValue", InvalidInput),
            ("ValidationException", InvalidInput),
            ("UnauthorizedOperation", AccessDenied),
            ("SomethingNew", Other),
        ];
        for (code, kind) in cases {
            assert_eq!(AwsErrorKind::from_code(code), kind, "{code}");
        }
    }

    #[test]
    fn error_types_round_trip_by_name() {
        for t in ErrorType::ALL {
            assert_eq!(ErrorType::from_name(t.as_str()), Some(t));
        }
        assert_eq!(ErrorType::from_name("AmiForge.Other"), None);
    }

    #[test]
    fn diagnostics_carry_the_fixed_error_type() {
        let err = StepError::InstanceNotFound(InstanceId::parse("i-0123abcd").unwrap());
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "AmiForge.NotFound");
        assert_eq!(
            diagnostic.error_message,
            "instance i-0123abcd does not exist"
        );
    }
}
