//! The HTTP API on the local stack: latency of `GET /jobs/{id}` and of the first page of
//! `GET /images` with many images present, and requests per second at a fixed concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amiforge_tests::Stack;
use anyhow::{bail, Result};

use crate::stats::{verdict, Samples, Table};

/// The target for the first page of images.
const FIRST_PAGE_TARGET_MS: f64 = 300.0;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Sequential requests of `GET /jobs/{id}` for the latency columns.
    pub requests: usize,
    /// Sequential requests of `GET /images`, which the emulator makes slow.
    pub image_requests: usize,
    /// Clients in flight for the throughput column.
    pub concurrency: usize,
    /// How long the throughput run lasts per route.
    pub seconds: u64,
    /// How many images the stack holds (reported, seeded by `bench/seed-images`).
    pub images: usize,
}

/// Measures both routes and returns the markdown.
///
/// # Errors
/// When a request fails or answers other than 200.
pub async fn run(stack: &Stack, options: &Options) -> Result<String> {
    let endpoint = stack.var("AMIFORGE_ENDPOINT")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let job_id = crate::store::seed_job(stack).await?;
    let routes = [
        ("GET /jobs/{id}", format!("{endpoint}/jobs/{job_id}"), false),
        (
            "GET /images (first page)",
            format!("{endpoint}/images"),
            true,
        ),
    ];

    let mut table = Table::new(&[
        "route",
        "p50 ms",
        "p99 ms",
        "min-max ms",
        "items on the page",
        &format!("req/s at concurrency {}", options.concurrency),
        "target",
    ]);
    for (label, url, is_images) in routes {
        let first = get(&http, &url).await?;
        let items = first["images"]
            .as_array()
            .map_or_else(|| "-".to_owned(), |a| a.len().to_string());
        let mut samples = Samples::default();
        let count = if is_images {
            options.image_requests
        } else {
            options.requests
        };
        for _ in 0..count {
            let start = Instant::now();
            get(&http, &url).await?;
            samples.push_ms(start.elapsed());
        }
        let rps = throughput(&http, &url, options.concurrency, options.seconds).await?;
        let target = if is_images {
            format!(
                "<= {FIRST_PAGE_TARGET_MS} ms: {}",
                verdict(samples.median() <= FIRST_PAGE_TARGET_MS)
            )
        } else {
            "-".to_owned()
        };
        table.row(vec![
            label.to_owned(),
            format!("{:.1}", samples.median()),
            format!("{:.1}", samples.percentile(99.0)),
            format!(
                "{:.1}-{:.1}",
                samples.percentile(0.0),
                samples.percentile(100.0)
            ),
            items,
            format!("{rps:.1}"),
            target,
        ]);
    }
    let direct = describe_images_time(stack, options.image_requests).await?;
    table.row(vec![
        "(DescribeImages, self, MaxResults 25, from the bench)".to_owned(),
        format!("{:.1}", direct.0.median()),
        format!("{:.1}", direct.0.percentile(99.0)),
        format!(
            "{:.1}-{:.1}",
            direct.0.percentile(0.0),
            direct.0.percentile(100.0)
        ),
        format!("{} returned", direct.1),
        "-".to_owned(),
        "the AWS call behind the page".to_owned(),
    ]);
    Ok(format!(
        "### HTTP API on the local stack\n\n{} sequential requests of `GET /jobs/{{id}}` and {} of \
         `GET /images` through \
         `AMIFORGE_ENDPOINT` (the api function behind `cargo lambda watch`, debug build, \
         unsigned), with {} images registered in the emulator; then {} s of requests from {} \
         clients at once.\n\n{}",
        options.requests,
        options.image_requests,
        options.images,
        options.seconds,
        options.concurrency,
        table.render()
    ))
}

async fn get(http: &reqwest::Client, url: &str) -> Result<serde_json::Value> {
    let response = http.get(url).send().await?;
    let status = response.status();
    let body = response.text().await?;
    if status != reqwest::StatusCode::OK {
        bail!("GET {url}: {status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}

/// Completed requests per second with `concurrency` clients for `seconds`.
async fn throughput(
    http: &reqwest::Client,
    url: &str,
    concurrency: usize,
    seconds: u64,
) -> Result<f64> {
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(seconds);
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        let (http, url, done) = (http.clone(), url.to_owned(), done.clone());
        clients.push(tokio::spawn(async move {
            while Instant::now() < until {
                get(&http, &url).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for client in clients {
        client.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// The EC2 call behind the first page of `GET /images`, made straight from here, and how many
/// images the emulator returned for it.
async fn describe_images_time(stack: &Stack, requests: usize) -> Result<(Samples, usize)> {
    let ec2 = stack.clients().ec2;
    let mut samples = Samples::default();
    let mut returned = 0;
    for _ in 0..requests {
        let start = Instant::now();
        let page = ec2
            .describe_images()
            .owners("self")
            .max_results(25)
            .send()
            .await?;
        samples.push_ms(start.elapsed());
        returned = page.images().len();
    }
    Ok((samples, returned))
}
