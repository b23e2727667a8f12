//! amiforge's shared library: domain types and their rules, the step contracts every Lambda
//! and the state machines agree on, the error taxonomy, configuration, the job store, and the
//! AWS adapters the steps work through.

pub mod aws;
pub mod builds;
pub mod catalog;
pub mod config;
pub mod contract;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod runtime;
pub mod schedules;
pub mod steps;
pub mod telemetry;

pub use config::Config;
pub use error::{ErrorType, StepError};
