//! A job store in memory, with the same rules as the DynamoDB one, for unit tests of the
//! steps and for tools that run without AWS.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Job, JobPage, JobQuery, JobStore, SlotClaim, StoreError};
use crate::domain::JobId;

/// Job records in a map.
#[derive(Debug, Default)]
pub struct MemoryJobStore {
    jobs: Mutex<BTreeMap<JobId, Job>>,
    slots: Mutex<BTreeMap<String, JobId>>,
}

impl MemoryJobStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<JobId, Job>> {
        // A panic while holding the lock leaves plain data; keep using it.
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create(&self, job: &Job) -> Result<(), StoreError> {
        let mut jobs = self.lock();
        if jobs.contains_key(&job.job_id) {
            return Err(StoreError::AlreadyExists(job.job_id.clone()));
        }
        jobs.insert(job.job_id.clone(), job.clone());
        Ok(())
    }

    async fn get(&self, id: &JobId) -> Result<Job, StoreError> {
        self.lock()
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(id.clone()))
    }

    async fn replace(&self, job: &Job, read_version: u64) -> Result<(), StoreError> {
        let mut jobs = self.lock();
        match jobs.get(&job.job_id) {
            Some(stored) if stored.version == read_version => {
                jobs.insert(job.job_id.clone(), job.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict {
                job_id: job.job_id.clone(),
                version: read_version,
            }),
        }
    }

    async fn list(&self, query: &JobQuery) -> Result<JobPage, StoreError> {
        let mut matching: Vec<Job> = self
            .lock()
            .values()
            .filter(|j| query.status.is_none_or(|s| j.status == s))
            .filter(|j| query.schedule.is_none() || j.schedule == query.schedule)
            .cloned()
            .collect();
        matching.sort_by(|a, b| (&b.created_at, &b.job_id).cmp(&(&a.created_at, &a.job_id)));
        let skip = match &query.next {
            Some(token) => token.parse::<usize>().map_err(|_| StoreError::BadToken)?,
            None => 0,
        };
        let limit = usize::try_from(query.limit.clamp(1, 100)).unwrap_or(100);
        let jobs: Vec<Job> = matching.iter().skip(skip).take(limit).cloned().collect();
        let next = (skip + jobs.len() < matching.len()).then(|| (skip + jobs.len()).to_string());
        Ok(JobPage { jobs, next })
    }

    async fn find_by_image(&self, image_id: &str) -> Result<Vec<Job>, StoreError> {
        Ok(self
            .lock()
            .values()
            .filter(|j| j.image_id.as_deref() == Some(image_id))
            .cloned()
            .collect())
    }

    async fn claim_slot(
        &self,
        slot: &str,
        job: &JobId,
        replacing: Option<&JobId>,
    ) -> Result<SlotClaim, StoreError> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match slots.get(slot) {
            Some(holder) if holder != job && Some(holder) != replacing => {
                Ok(SlotClaim::HeldBy(holder.clone()))
            }
            _ => {
                slots.insert(slot.to_owned(), job.clone());
                Ok(SlotClaim::Claimed)
            }
        }
    }
}
