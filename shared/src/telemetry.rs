//! Logging set-up shared by every binary.

/// Installs the Lambda runtime's tracing subscriber, which follows the function's log format
/// and level settings (`AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`, `RUST_LOG`).
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}
