//! amiforge's benchmarks. Each subcommand measures one thing and prints a markdown table;
//! `all` runs them in the order `bench/run` uses. Nothing here asserts on time: the figures are
//! reported beside their targets, for people to judge.
// A benchmark's output is its table on stdout.
#![allow(clippy::print_stdout)]

mod api;
mod e2e;
mod lambdas;
mod runtime_api;
mod stats;
mod store;
mod transitions;

use std::path::PathBuf;

use amiforge_tests::{repo_root, Stack};
use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "amiforge-bench",
    about = "amiforge benchmarks; each prints a markdown table"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// State transitions and Step Functions cost per build by snapshot duration (offline).
    Transitions {
        /// The state machine to walk; the repository's build-image by default.
        #[arg(long)]
        asl: Option<PathBuf>,
    },
    /// Zip size, cold start, warm invoke and peak RSS of each Lambda binary.
    Lambdas {
        /// Where the release binaries are.
        #[arg(long)]
        bin_dir: PathBuf,
        /// Processes started per binary.
        #[arg(long, default_value_t = 20)]
        cold_runs: usize,
        /// Events served per process.
        #[arg(long, default_value_t = 20)]
        warm_invokes: usize,
        /// Where zips and function logs go.
        #[arg(long, default_value = "/tmp/amiforge-bench")]
        work_dir: PathBuf,
        /// Only these binaries (comma-separated); all by default.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Builds of the demo instance through the API until SUCCEEDED, split by state.
    E2e {
        /// How many builds.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// `GET /jobs/{id}` and `GET /images` latency and throughput.
    Api {
        /// Sequential requests of `GET /jobs/{id}`.
        #[arg(long, default_value_t = 100)]
        requests: usize,
        /// Sequential requests of `GET /images` (slow on the emulator).
        #[arg(long, default_value_t = 10)]
        image_requests: usize,
        /// Clients in flight for the throughput run.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Seconds of the throughput run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// How many images were seeded (for the report).
        #[arg(long, default_value_t = 10_000)]
        images: usize,
    },
    /// Conditional job updates per second, on one job and on many.
    Store {
        /// Writers in flight, one row pair each.
        #[arg(long, value_delimiter = ',', default_value = "1,8")]
        writers: Vec<usize>,
        /// Seconds per row.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let table = match cli.command {
        Command::Transitions { asl } => transitions::run(
            &asl.unwrap_or_else(|| repo_root().join("statemachine/build-image.asl.json")),
        )?,
        Command::Lambdas {
            bin_dir,
            cold_runs,
            warm_invokes,
            work_dir,
            only,
        } => {
            let stack = Stack::connect().await?;
            let options = lambdas::Options {
                bin_dir,
                cold_runs,
                warm_invokes,
                work_dir,
                only,
            };
            lambdas::run(&stack, &options).await?
        }
        Command::E2e { runs } => e2e::run(&Stack::connect().await?, runs).await?,
        Command::Api {
            requests,
            image_requests,
            concurrency,
            seconds,
            images,
        } => {
            let options = api::Options {
                requests,
                image_requests,
                concurrency,
                seconds,
                images,
            };
            api::run(&Stack::connect().await?, &options).await?
        }
        Command::Store { writers, seconds } => {
            store::run(&Stack::connect().await?, &writers, seconds).await?
        }
    };
    println!("{table}");
    Ok(())
}
