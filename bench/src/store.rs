//! The job store on the local stack's DynamoDB: conditional progress updates per second
//! (`update_job`: read, change, write on the version read) on one job shared by every writer,
//! and on one job per writer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use amiforge::domain::JobId;
use amiforge::jobs::{update_job, DynamoJobStore, Job, JobKind, JobStatus, JobStore, StoreError};
use amiforge_tests::{create_jobs_table, Stack};
use anyhow::Result;
use serde_json::json;

use crate::stats::{Samples, Table};

/// What one run counted.
#[derive(Default)]
struct Counts {
    written: usize,
    gave_up: usize,
    latency_ms: Samples,
}

/// Measures the store at each concurrency for `seconds` and returns the markdown.
///
/// # Errors
/// When the table cannot be made or a write fails other than by losing a race.
pub async fn run(stack: &Stack, concurrencies: &[usize], seconds: u64) -> Result<String> {
    let endpoint = stack.var("AWS_ENDPOINT_URL")?;
    let client = stack.clients().dynamodb;
    let table_name = create_jobs_table(&client).await?;
    let store = Arc::new(DynamoJobStore::new(client, table_name));

    let mut table = Table::new(&[
        "jobs",
        "writers",
        "updates/s",
        "update ms, median (p10-p90)",
        "gave up after 5 lost races",
    ]);
    for &writers in concurrencies {
        for shared in [true, false] {
            let jobs = if shared { 1 } else { writers };
            let mut ids = Vec::new();
            for _ in 0..jobs {
                ids.push(new_job(store.as_ref()).await?);
            }
            let start = Instant::now();
            let until = start + Duration::from_secs(seconds);
            let mut tasks = Vec::new();
            for w in 0..writers {
                let store = store.clone();
                let id = ids[w % ids.len()].clone();
                tasks.push(tokio::spawn(async move { writer(store, id, until).await }));
            }
            let mut total = Counts::default();
            for task in tasks {
                let counts = task.await??;
                total.written += counts.written;
                total.gave_up += counts.gave_up;
                for v in counts.latency_ms.values() {
                    total.latency_ms.push(*v);
                }
            }
            let elapsed = start.elapsed().as_secs_f64();
            table.row(vec![
                if shared {
                    "1 (shared)".to_owned()
                } else {
                    format!("{jobs} (one each)")
                },
                writers.to_string(),
                format!("{:.1}", total.written as f64 / elapsed),
                total.latency_ms.summary(1),
                total.gave_up.to_string(),
            ]);
        }
    }
    Ok(format!(
        "### Job store\n\nConditional progress updates through `update_job` (GetItem, then \
         PutItem conditioned on the version read; a lost race is retried on fresh data up to 5 \
         times) against the local stack's DynamoDB (moto) at `{endpoint}`, {seconds} s per \
         row.\n\n{}",
        table.render()
    ))
}

/// A build job record to read, in the stack's jobs table.
pub async fn seed_job(stack: &Stack) -> Result<JobId> {
    let store = DynamoJobStore::new(stack.clients().dynamodb, stack.var("AMIFORGE_JOBS_TABLE")?);
    create_job(&store).await
}

async fn create_job(store: &DynamoJobStore) -> Result<JobId> {
    let id = JobId::parse(&uuid::Uuid::new_v4().to_string())?;
    let job = Job::new(
        id.clone(),
        JobKind::Build,
        json!({"instance_id": "i-0123456789abcdef0", "name": "bench"}),
        chrono::Utc::now(),
    );
    store.create(&job).await?;
    Ok(id)
}

/// A RUNNING job for writers to update.
async fn new_job(store: &DynamoJobStore) -> Result<JobId> {
    let id = create_job(store).await?;
    update_job(store, &id, None, 20, |j| {
        j.status = JobStatus::Running;
        j.progress("snapshot", 0, "snapshots started");
    })
    .await?;
    Ok(id)
}

async fn writer(store: Arc<DynamoJobStore>, id: JobId, until: Instant) -> Result<Counts> {
    let mut counts = Counts::default();
    let mut percent = 0u8;
    while Instant::now() < until {
        percent = (percent + 1) % 90;
        let start = Instant::now();
        let result = update_job(store.as_ref(), &id, None, 20, |j| {
            j.checks += 1;
            j.progress("snapshot", percent, format!("snapshots {percent}%"));
        })
        .await;
        match result {
            Ok(_) => {
                counts.written += 1;
                counts.latency_ms.push_ms(start.elapsed());
            }
            Err(StoreError::Conflict { .. }) => counts.gave_up += 1,
            Err(err) => return Err(err.into()),
        }
    }
    Ok(counts)
}
