//! KMS: telling AWS managed keys from customer managed ones.

use aws_sdk_kms::types::KeyManagerType;
use aws_sdk_kms::Client;

use crate::error::{AwsError, StepError};

/// KMS calls of the pipeline.
#[derive(Debug, Clone)]
pub struct Kms {
    client: Client,
}

impl Kms {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Whether a key is managed by AWS (such as `aws/ebs`), which cannot be shared.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn is_aws_managed(&self, key_id: &str) -> Result<bool, StepError> {
        let output = self
            .client
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeKey", e))?;
        Ok(output
            .key_metadata()
            .and_then(|m| m.key_manager())
            .is_some_and(|m| *m == KeyManagerType::Aws))
    }
}
