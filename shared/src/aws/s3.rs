//! S3: writing, reading and removing image manifests.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use crate::domain::{BucketName, Manifest, ManifestPath};
use crate::error::{AwsError, AwsErrorKind, StepError};

/// Manifests in S3.
#[derive(Debug, Clone)]
pub struct Manifests {
    client: Client,
}

impl Manifests {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Writes a manifest. Writing the same manifest again leaves the same object.
    ///
    /// # Errors
    /// An AWS error; a missing bucket is [`AwsErrorKind::NotFound`].
    pub async fn put(
        &self,
        path: &ManifestPath,
        manifest: &Manifest,
        job_id: &str,
    ) -> Result<(), StepError> {
        self.client
            .put_object()
            .bucket(path.bucket().as_str())
            .key(path.key())
            .content_type("application/json")
            .metadata("amiforge-job-id", job_id)
            .metadata("sha256", &manifest.sha256)
            .body(ByteStream::from(manifest.to_file()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("PutObject", e))?;
        Ok(())
    }

    /// Reads a manifest and checks its digest.
    ///
    /// # Errors
    /// [`StepError::ManifestNotFound`], [`StepError::Manifest`] for a bad file, or an AWS
    /// error.
    pub async fn get(&self, path: &ManifestPath) -> Result<Manifest, StepError> {
        let output = match self
            .client
            .get_object()
            .bucket(path.bucket().as_str())
            .key(path.key())
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => {
                let err = AwsError::from_sdk("GetObject", err);
                return Err(if err.kind == AwsErrorKind::NotFound {
                    StepError::ManifestNotFound(path.clone())
                } else {
                    err.into()
                });
            }
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| StepError::BadEvent(format!("reading {path}: {e}")))?
            .into_bytes();
        Manifest::from_file(&bytes).map_err(|source| StepError::Manifest {
            path: path.clone(),
            source,
        })
    }

    /// Deletes one object; a missing one counts as deleted.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn delete(&self, path: &ManifestPath) -> Result<(), StepError> {
        self.client
            .delete_object()
            .bucket(path.bucket().as_str())
            .key(path.key())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DeleteObject", e))?;
        Ok(())
    }

    /// Whether an object exists.
    ///
    /// # Errors
    /// An AWS error other than not found.
    pub async fn exists(&self, path: &ManifestPath) -> Result<bool, StepError> {
        match self
            .client
            .head_object()
            .bucket(path.bucket().as_str())
            .key(path.key())
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err) => {
                let err = AwsError::from_sdk("HeadObject", err);
                if err.kind == AwsErrorKind::NotFound || err.is_code("NotFound") {
                    Ok(false)
                } else {
                    Err(err.into())
                }
            }
        }
    }
}

impl Manifests {
    /// The region a bucket is in: S3's `LocationConstraint`, where none means `us-east-1`.
    ///
    /// # Errors
    /// An AWS error; a missing bucket is [`AwsErrorKind::NotFound`].
    pub async fn bucket_region(&self, bucket: &BucketName) -> Result<String, StepError> {
        let output = self
            .client
            .get_bucket_location()
            .bucket(bucket.as_str())
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetBucketLocation", e))?;
        Ok(match output.location_constraint().map(|c| c.as_str()) {
            None | Some("") => "us-east-1".to_owned(),
            // The constraint of the oldest Ireland buckets.
            Some("EU") => "eu-west-1".to_owned(),
            Some(region) => region.to_owned(),
        })
    }

    /// Every object under a folder (`dir` ends with `/`), as `s3://bucket/key` paths.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn list_dir(
        &self,
        bucket: &crate::domain::BucketName,
        dir: &str,
    ) -> Result<Vec<ManifestPath>, StepError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket.as_str())
            .prefix(dir)
            .into_paginator()
            .send();
        let mut found = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ListObjectsV2", e))?;
            found.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| k.starts_with(dir))
                    .map(|k| ManifestPath::new(bucket.clone(), k.to_owned())),
            );
        }
        Ok(found)
    }
}
