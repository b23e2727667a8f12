//! The amiforge command-line client: parses the arguments, runs the command against the API,
//! and turns the result into an exit status (0 done, 1 a watched build failed, 2 an error).
#![allow(
    clippy::print_stdout,
    reason = "a command-line client's results belong on stdout"
)]

mod api;
mod args;
mod client;
mod create;
mod delete;
mod images;
mod jobs;
mod output;
mod schedules;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

/// How a command that ran to its end finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Done,
    /// The watched job ended FAILED.
    JobFailed,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::JobFailed) => ExitCode::from(1),
        Err(error) => {
            report(&error);
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let global = &cli.global;
    match cli.command {
        Command::Create(args) => create::run(args, global).await,
        Command::Register(args) => create::register(args, global).await,
        Command::Watch(args) => watch::run(args, global).await,
        Command::Jobs(args) => jobs::run(args, global).await,
        Command::List(args) => images::list(args, global).await,
        Command::Show(args) => images::show(args, global).await,
        Command::Share(args) => images::share(args, global).await,
        Command::Delete(args) => delete::run(args, global).await,
        Command::Schedules(command) => schedules::run(command, global).await,
    }
}

/// Prints every message of an error to stderr; an API error lists each bad field.
fn report(error: &anyhow::Error) {
    let messages = match error.downcast_ref::<client::Error>() {
        Some(error) => error.messages(),
        None => vec![format!("{error:#}")],
    };
    for message in messages {
        eprintln!("error: {message}");
    }
}
