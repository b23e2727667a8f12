//! The job store on DynamoDB.
//!
//! A record is the job as JSON in `doc`, beside the attributes the indexes need (`status`,
//! `created_at`, `feed`, `image_id`, `schedule`) and `version`, which every write checks.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::{Job, JobPage, JobQuery, JobStore, SlotClaim, StoreError};
use crate::domain::JobId;
use crate::error::AwsError;

/// Index of jobs by status, newest first.
pub const BY_STATUS: &str = "by-status";
/// Index of all jobs, newest first (one partition, `feed = "jobs"`).
pub const BY_CREATED: &str = "by-created";
/// Index of jobs by image id.
pub const BY_IMAGE: &str = "by-image";
/// Index of jobs by schedule, newest first.
pub const BY_SCHEDULE: &str = "by-schedule";
const FEED: &str = "jobs";
/// Key prefix of slot items. They carry none of the indexed attributes, so no index and no
/// listing shows them, and `#` is not allowed in job ids, so no job lookup reaches them.
const SLOT_PREFIX: &str = "slot#";

/// Job records in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoJobStore {
    client: Client,
    table: String,
}

impl DynamoJobStore {
    /// A store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn item(job: &Job) -> HashMap<String, AttributeValue> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let mut item = HashMap::from([
            ("job_id".to_owned(), s(job.job_id.as_str())),
            (
                "version".to_owned(),
                AttributeValue::N(job.version.to_string()),
            ),
            ("status".to_owned(), s(job.status.as_str())),
            ("created_at".to_owned(), s(&job.created_at)),
            ("feed".to_owned(), s(FEED)),
            // Serializing a job of plain fields cannot fail.
            (
                "doc".to_owned(),
                s(&serde_json::to_string(job).unwrap_or_default()),
            ),
        ]);
        if let Some(image_id) = &job.image_id {
            item.insert("image_id".into(), s(image_id));
        }
        if let Some(schedule) = &job.schedule {
            item.insert("schedule".into(), s(schedule));
        }
        item
    }

    fn job(item: &HashMap<String, AttributeValue>) -> Result<Job, StoreError> {
        let id = item
            .get("job_id")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let doc = item
            .get("doc")
            .and_then(|v| v.as_s().ok())
            .map_or("", String::as_str);
        serde_json::from_str(doc).map_err(|source| StoreError::Corrupt { job_id: id, source })
    }
}

/// A page token: the last key read, as hex of its JSON, opaque to callers.
fn encode_token(key: &HashMap<String, AttributeValue>) -> String {
    let plain: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str())))
        .collect();
    hex::encode(serde_json::to_vec(&plain).unwrap_or_default())
}

fn decode_token(token: &str) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let bytes = hex::decode(token).map_err(|_| StoreError::BadToken)?;
    let plain: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::BadToken)?;
    if !plain.contains_key("job_id") {
        return Err(StoreError::BadToken);
    }
    Ok(plain
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}

#[async_trait]
impl JobStore for DynamoJobStore {
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(job)))
            .condition_expression("attribute_not_exists(job_id)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                let err = AwsError::from_sdk("PutItem", err);
                if err.is_code("ConditionalCheckFailedException") {
                    Err(StoreError::AlreadyExists(job.job_id.clone()))
                } else {
                    Err(err.into())
                }
            }
        }
    }

    async fn get(&self, id: &JobId) -> Result<Job, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetItem", e))?;
        match output.item() {
            Some(item) => Self::job(item),
            None => Err(StoreError::NotFound(id.clone())),
        }
    }

    async fn replace(&self, job: &Job, read_version: u64) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(job)))
            .condition_expression("version = :read")
            .expression_attribute_values(":read", AttributeValue::N(read_version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                let err = AwsError::from_sdk("PutItem", err);
                if err.is_code("ConditionalCheckFailedException") {
                    Err(StoreError::Conflict {
                        job_id: job.job_id.clone(),
                        version: read_version,
                    })
                } else {
                    Err(err.into())
                }
            }
        }
    }

    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let (index, condition, key_attr, key_value) = match (&query.schedule, query.status) {
            (Some(schedule), _) => (BY_SCHEDULE, "#k = :k", "schedule", schedule.clone()),
            (None, Some(status)) => (BY_STATUS, "#k = :k", "status", status.as_str().to_owned()),
            (None, None) => (BY_CREATED, "#k = :k", "feed", FEED.to_owned()),
        };
        let start = query.next.as_deref().map(decode_token).transpose()?;
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(condition)
            .expression_attribute_names("#k", key_attr)
            .expression_attribute_values(":k", AttributeValue::S(key_value))
            .scan_index_forward(false)
            .limit(i32::try_from(query.limit.clamp(1, 100)).unwrap_or(100))
            .set_exclusive_start_key(start);
        if let (Some(_), Some(status)) = (&query.schedule, query.status) {
            request = request
                .filter_expression("#s = :s")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":s", AttributeValue::S(status.as_str().to_owned()));
        }
        let output = request
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("Query", e))?;
        let jobs = output
            .items()
            .iter()
            .map(Self::job)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(JobPage {
            jobs,
            next: output.last_evaluated_key().map(encode_token),
        })
    }

    async fn find_by_image(&self, image_id: &str) -> Result<Vec<Job>, StoreError> {
        let mut jobs = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_IMAGE)
            .key_condition_expression("image_id = :i")
            .expression_attribute_values(":i", AttributeValue::S(image_id.to_owned()))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| AwsError::from_sdk("Query", e))?;
            jobs.push(Self::job(&item)?);
        }
        Ok(jobs)
    }

    async fn claim_slot(
        &self,
        slot: &str,
        job: &JobId,
        replacing: Option<&JobId>,
    ) -> Result<SlotClaim, StoreError> {
        let key = format!("{SLOT_PREFIX}{slot}");
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("job_id", AttributeValue::S(key.clone()))
            .item("claimed_by", AttributeValue::S(job.to_string()))
            .item(
                "claimed_at",
                AttributeValue::S(super::timestamp(chrono::Utc::now())),
            )
            .expression_attribute_values(":me", AttributeValue::S(job.to_string()));
        put = match replacing {
            Some(previous) => put
                .condition_expression(
                    "attribute_not_exists(job_id) OR claimed_by = :me OR claimed_by = :previous",
                )
                .expression_attribute_values(":previous", AttributeValue::S(previous.to_string())),
            None => put.condition_expression("attribute_not_exists(job_id) OR claimed_by = :me"),
        };
        match put.send().await {
            Ok(_) => return Ok(SlotClaim::Claimed),
            Err(err) => {
                let err = AwsError::from_sdk("PutItem", err);
                if !err.is_code("ConditionalCheckFailedException") {
                    return Err(err.into());
                }
            }
        }
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetItem", e))?;
        let holder = output
            .item()
            .and_then(|item| item.get("claimed_by"))
            .and_then(|v| v.as_s().ok())
            .and_then(|s| JobId::parse(s).ok());
        match holder {
            Some(holder) => Ok(SlotClaim::HeldBy(holder)),
            // Slots are never deleted, so this is a contested write: the caller tries again.
            None => Err(StoreError::Conflict {
                job_id: job.clone(),
                version: 0,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_strangers() {
        let key = HashMap::from([
            ("job_id".to_owned(), AttributeValue::S("job-1".into())),
            (
                "created_at".to_owned(),
                AttributeValue::S("2026-01-01T00:00:00.000Z".into()),
            ),
        ]);
        assert_eq!(decode_token(&encode_token(&key)).unwrap(), key);
        assert!(matches!(decode_token("zz"), Err(StoreError::BadToken)));
        assert!(matches!(
            decode_token(&hex::encode("{}")),
            Err(StoreError::BadToken)
        ));
    }
}
