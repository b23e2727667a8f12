//! How failures become HTTP responses: one place maps every error to a status and a short,
//! precise body; internal details go to the log once.

use amiforge::domain::{FieldError, InvalidRequest};
use amiforge::error::AwsErrorKind;
use amiforge::jobs::StoreError;
use amiforge::StepError;
use http::StatusCode;
use serde_json::json;
use tracing::{error, warn};

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    /// The status code.
    pub status: StatusCode,
    /// A stable code for programs, such as `invalid_request`.
    pub code: &'static str,
    /// What went wrong and what is allowed.
    pub message: String,
    /// Every bad field, for a request that broke validation rules.
    pub fields: Vec<FieldError>,
}

impl ApiError {
    /// A 404 for something the path names.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::plain(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A 400 for one bad field.
    pub fn field(error: FieldError) -> Self {
        Self::invalid(InvalidRequest(vec![error]))
    }

    /// A 400 listing every bad field.
    pub fn invalid(errors: InvalidRequest) -> Self {
        let message = errors.0.first().map_or_else(
            || "the request is not valid".to_owned(),
            |e| e.message.clone(),
        );
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            message,
            fields: errors.0,
        }
    }

    /// An error with no field.
    pub fn plain(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The body: `{"error": {code, message, field}, "errors": [...]}`.
    pub fn body(&self) -> serde_json::Value {
        let errors: Vec<serde_json::Value> = self
            .fields
            .iter()
            .map(|f| json!({"code": self.code, "message": f.message, "field": f.field}))
            .collect();
        let first_field = self.fields.first().map(|f| f.field.clone());
        json!({
            "error": {"code": self.code, "message": self.message, "field": first_field},
            "errors": errors,
        })
    }

    /// Maps a library error to its answer, logging what the caller does not see.
    pub fn from_step(err: StepError, request_id: &str) -> Self {
        use StatusCode as S;
        match err {
            StepError::Invalid(errors) => Self::invalid(errors),
            StepError::InstanceNotFound(_)
            | StepError::ImageNotFound(_)
            | StepError::JobNotFound(_)
            | StepError::ManifestNotFound(_)
            | StepError::ScheduleNotFound(_) => Self::not_found(err.to_string()),
            StepError::NotConfigured { .. } => {
                error!(request_id, error = %err, "request needs a setting that is missing");
                Self::plain(
                    S::SERVICE_UNAVAILABLE,
                    "not_configured",
                    "this deployment is not set up for that request",
                )
            }
            StepError::Store(StoreError::NotFound(id)) => {
                Self::not_found(format!("job {id} does not exist"))
            }
            StepError::Store(StoreError::BadToken) => {
                Self::field(FieldError::new("next", "the pagination token is not valid"))
            }
            StepError::NameTaken { .. } | StepError::PublicSharingBlocked => {
                Self::plain(S::CONFLICT, "conflict", err.to_string())
            }
            StepError::ProductCodesPublic(_) | StepError::ManagedKeyShare { .. } => {
                Self::plain(S::UNPROCESSABLE_ENTITY, "not_shareable", err.to_string())
            }
            StepError::Aws(ref aws) if aws.kind == AwsErrorKind::InvalidInput => {
                warn!(request_id, error = %err, "AWS refused the request");
                Self::plain(S::BAD_REQUEST, "invalid_request", aws.message.clone())
            }
            StepError::Aws(ref aws) if aws.kind.is_retryable() => {
                warn!(request_id, error = %err, "AWS asked us to slow down");
                Self::plain(
                    S::SERVICE_UNAVAILABLE,
                    "try_again",
                    "the service is busy; try again shortly",
                )
            }
            other => {
                error!(request_id, error = %other, "request failed");
                Self::plain(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("the request failed; quote request id {request_id} when reporting it"),
                )
            }
        }
    }
}
