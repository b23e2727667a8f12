//! Configuration from the environment, read once at cold start.
//!
//! This is the only place that reads environment variables of amiforge's own. The AWS SDK
//! reads its standard ones (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials) itself.

use std::collections::HashMap;

use crate::domain::{AccountId, BucketName, KeyPrefix, PollBounds};

/// The DynamoDB table holding job records. Required.
pub const JOBS_TABLE: &str = "AMIFORGE_JOBS_TABLE";
/// The bucket manifests are written to. Required.
pub const BUCKET: &str = "AMIFORGE_BUCKET";
/// The key prefix manifests are written under. Default `images`.
pub const PREFIX: &str = "AMIFORGE_PREFIX";
/// The shortest wait between two snapshot checks, in seconds. Default 5.
pub const POLL_MIN_SECONDS: &str = "AMIFORGE_POLL_MIN_SECONDS";
/// The longest wait between two snapshot checks, in seconds. Default 300.
pub const POLL_MAX_SECONDS: &str = "AMIFORGE_POLL_MAX_SECONDS";
/// How many events a job record keeps. Default 20.
pub const HISTORY_LIMIT: &str = "AMIFORGE_HISTORY_LIMIT";
/// The build state machine, for functions that start builds.
pub const BUILD_STATE_MACHINE_ARN: &str = "AMIFORGE_BUILD_STATE_MACHINE_ARN";
/// The purge state machine, for functions that start purges.
pub const PURGE_STATE_MACHINE_ARN: &str = "AMIFORGE_PURGE_STATE_MACHINE_ARN";
/// Comma-separated account ids whose images are listed beside the user's own.
pub const FOLLOWED_ACCOUNTS: &str = "AMIFORGE_FOLLOWED_ACCOUNTS";

/// The role EventBridge assumes to start scheduled builds, for functions that save schedules.
pub const SCHEDULE_ROLE_ARN: &str = "AMIFORGE_SCHEDULE_ROLE_ARN";
/// The name prefix of the EventBridge rules of schedules. Default `amiforge-`.
pub const SCHEDULE_RULE_PREFIX: &str = "AMIFORGE_SCHEDULE_RULE_PREFIX";

/// Every variable of amiforge's own, for documentation and checks.
pub const ALL: [&str; 11] = [
    JOBS_TABLE,
    BUCKET,
    PREFIX,
    POLL_MIN_SECONDS,
    POLL_MAX_SECONDS,
    HISTORY_LIMIT,
    BUILD_STATE_MACHINE_ARN,
    PURGE_STATE_MACHINE_ARN,
    FOLLOWED_ACCOUNTS,
    SCHEDULE_ROLE_ARN,
    SCHEDULE_RULE_PREFIX,
];

/// Longest rule prefix: with the longest schedule name it stays within EventBridge's 64.
const MAX_RULE_PREFIX: usize = 16;

/// A variable that is missing or holds a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration variable {name}: {problem}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// amiforge's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The jobs table.
    pub jobs_table: String,
    /// The default manifest bucket.
    pub bucket: BucketName,
    /// The default manifest prefix.
    pub prefix: KeyPrefix,
    /// Bounds of the wait between snapshot checks.
    pub poll: PollBounds,
    /// Events kept per job.
    pub history_limit: usize,
    /// The build state machine, where configured.
    pub build_state_machine_arn: Option<String>,
    /// The purge state machine, where configured.
    pub purge_state_machine_arn: Option<String>,
    /// Accounts whose images are listed by default.
    pub followed_accounts: Vec<AccountId>,
    /// The role EventBridge assumes to start scheduled builds, where configured.
    pub schedule_role_arn: Option<String>,
    /// The name prefix of schedule rules.
    pub schedule_rule_prefix: String,
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is missing or bad.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads settings from a map of variables, as [`Config::from_env`] does from the
    /// environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first variable that is missing or bad.
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let required = |name: &'static str| {
            get(name).ok_or_else(|| ConfigError {
                name,
                problem: "is not set".into(),
            })
        };
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            get(name).map_or(Ok(default), |v| {
                v.parse().map_err(|_| ConfigError {
                    name,
                    problem: format!("must be a whole number, got {v:?}"),
                })
            })
        };
        let bad = |name: &'static str| {
            move |e: crate::domain::FieldError| ConfigError {
                name,
                problem: e.message,
            }
        };

        let jobs_table = required(JOBS_TABLE)?.to_owned();
        let bucket = BucketName::parse(required(BUCKET)?).map_err(bad(BUCKET))?;
        let prefix = KeyPrefix::parse(get(PREFIX).unwrap_or("images")).map_err(bad(PREFIX))?;
        let poll = PollBounds {
            min_seconds: number(POLL_MIN_SECONDS, 5)?,
            max_seconds: number(POLL_MAX_SECONDS, 300)?,
        };
        if poll.min_seconds == 0 || poll.max_seconds < poll.min_seconds {
            return Err(ConfigError {
                name: POLL_MAX_SECONDS,
                problem: format!(
                    "poll bounds must satisfy 0 < {POLL_MIN_SECONDS} <= {POLL_MAX_SECONDS}, got {} and {}",
                    poll.min_seconds, poll.max_seconds
                ),
            });
        }
        let history_limit = usize::try_from(number(HISTORY_LIMIT, 20)?).unwrap_or(usize::MAX);
        let followed_accounts = get(FOLLOWED_ACCOUNTS)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| AccountId::parse(s).map_err(bad(FOLLOWED_ACCOUNTS)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let schedule_rule_prefix = get(SCHEDULE_RULE_PREFIX).unwrap_or("amiforge-").to_owned();
        let prefix_ok = schedule_rule_prefix.len() <= MAX_RULE_PREFIX
            && schedule_rule_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !prefix_ok {
            return Err(ConfigError {
                name: SCHEDULE_RULE_PREFIX,
                problem: format!(
                    "must be at most {MAX_RULE_PREFIX} letters, digits, '-', '_' or '.', got \
                     {schedule_rule_prefix:?}"
                ),
            });
        }

        Ok(Self {
            jobs_table,
            bucket,
            prefix,
            poll,
            history_limit,
            build_state_machine_arn: get(BUILD_STATE_MACHINE_ARN).map(str::to_owned),
            purge_state_machine_arn: get(PURGE_STATE_MACHINE_ARN).map(str::to_owned),
            followed_accounts,
            schedule_role_arn: get(SCHEDULE_ROLE_ARN).map(str::to_owned),
            schedule_rule_prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_fill_what_is_not_set() {
        let config =
            Config::from_vars(&vars(&[(JOBS_TABLE, "jobs"), (BUCKET, "manifests")])).unwrap();
        assert_eq!(config.prefix.as_str(), "images");
        assert_eq!(
            config.poll,
            PollBounds {
                min_seconds: 5,
                max_seconds: 300
            }
        );
        assert_eq!(config.history_limit, 20);
        assert!(config.followed_accounts.is_empty());
        assert_eq!(config.schedule_rule_prefix, "amiforge-");
        assert_eq!(config.schedule_role_arn, None);
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = Config::from_vars(&vars(&[(BUCKET, "manifests")])).unwrap_err();
        assert_eq!(err.name, JOBS_TABLE);
        assert!(err.to_string().contains("AMIFORGE_JOBS_TABLE"));
    }

    #[test]
    fn a_bad_value_is_named_with_its_rule() {
        let err =
            Config::from_vars(&vars(&[(JOBS_TABLE, "jobs"), (BUCKET, "Bad_Bucket")])).unwrap_err();
        assert_eq!(err.name, BUCKET);
        let err = Config::from_vars(&vars(&[
            (JOBS_TABLE, "jobs"),
            (BUCKET, "manifests"),
            (POLL_MIN_SECONDS, "soon"),
        ]))
        .unwrap_err();
        assert_eq!(err.name, POLL_MIN_SECONDS);
        let err = Config::from_vars(&vars(&[
            (JOBS_TABLE, "jobs"),
            (BUCKET, "manifests"),
            (FOLLOWED_ACCOUNTS, "012345678901, 42"),
        ]))
        .unwrap_err();
        assert_eq!(err.name, FOLLOWED_ACCOUNTS);
    }

    #[test]
    fn followed_accounts_keep_leading_zeros() {
        let config = Config::from_vars(&vars(&[
            (JOBS_TABLE, "jobs"),
            (BUCKET, "manifests"),
            (FOLLOWED_ACCOUNTS, "012345678901,123456789012"),
        ]))
        .unwrap();
        assert_eq!(config.followed_accounts[0].as_str(), "012345678901");
    }
}
