//! Command-line arguments: the global options, one subcommand per action, and the parsers that
//! reject a bad value before any request is sent.

use amiforge::domain::{AccountId, SharingRequest};
use amiforge::jobs::JobStatus;
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::client::Settings;

/// amiforge: build Amazon Machine Images from running instances, follow the builds, and list,
/// inspect and share the images, through the amiforge API.
#[derive(Debug, Parser)]
#[command(name = "amiforge", version, propagate_version = true)]
#[command(
    after_help = "Exit status: 0 on success, 1 when a watched build FAILED, \
                        2 on a usage, HTTP or API error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Base URL of the amiforge API, for example
    /// https://abc123.execute-api.eu-west-1.amazonaws.com/prod. Plain http:// is accepted only
    /// for 127.0.0.1 and localhost (the local stack).
    #[arg(long, env = "AMIFORGE_ENDPOINT", value_name = "URL", global = true)]
    pub endpoint: Option<String>,

    /// How to print results: aligned columns for people, or the API's JSON for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,

    /// AWS region to sign requests for [default: AWS_REGION or the AWS config file]
    #[arg(long, value_name = "REGION", global = true)]
    pub region: Option<String>,

    /// Send requests without a SigV4 signature (an API without IAM authorization).
    #[arg(long, global = true)]
    pub no_sign: bool,

    /// Print debug details to stderr: each request, its status and how it was signed.
    #[arg(long, short, global = true)]
    pub verbose: bool,
}

impl GlobalArgs {
    /// What the API client needs from the options.
    pub fn settings(&self) -> Settings {
        Settings {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            sign: !self.no_sign,
            verbose: self.verbose,
        }
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns and key/value lines.
    Table,
    /// The API's JSON, pretty-printed.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start building an image from an EC2 instance.
    ///
    /// Prints the job id, its status URL and the Step Functions execution. With --wait, follows
    /// the build like `amiforge watch` and exits 1 if it fails.
    Create(CreateArgs),

    /// Register an image from a manifest that already exists in S3.
    ///
    /// An amiforge image.manifest.json is registered with its block device mapping, name and
    /// description; a legacy bundle's *.manifest.xml by its location, with --name. With --wait,
    /// follows the job like `amiforge watch`.
    Register(RegisterArgs),

    /// Follow a build job with a progress bar until it ends, then print the outcome.
    ///
    /// Exits 0 when the job SUCCEEDED and 1 when it FAILED. With --output json, prints only the
    /// final job record.
    Watch(WatchArgs),

    /// List build jobs, newest first.
    Jobs(JobsArgs),

    /// List images: your own and those of followed accounts unless --owner says otherwise.
    List(ListArgs),

    /// Show one image: its details, who may launch it and its snapshots.
    Show(ShowArgs),

    /// Set who may launch an image, replacing its current sharing.
    ///
    /// The flags state the whole desired sharing: accounts, organizations and units not given
    /// lose access, and the image stops being public unless --public is given. `--private`
    /// alone shares the image with nobody. Prints what was added and removed.
    Share(ShareArgs),

    /// Delete images with their snapshots and, if asked, their manifest files.
    ///
    /// Snapshots another image still uses are kept, and images amiforge did not make are
    /// refused unless --force is given. --dry-run prints the plan and deletes nothing;
    /// otherwise prints the purge job, and with --wait follows it and prints what was deleted.
    Delete(DeleteArgs),

    /// Rebuild images on a schedule, keeping only the newest: save, list, show and delete
    /// schedules.
    #[command(subcommand)]
    Schedules(ScheduleCommand),
}

/// What to do with schedules.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Create a schedule, or replace the one of that name.
    ///
    /// Everything is checked now, as each scheduled build would check it, so a schedule that
    /// cannot build is refused when it is saved rather than when it fires.
    Put(Box<SchedulePutArgs>),

    /// List schedules by name.
    List(ScheduleListArgs),

    /// Show one schedule and its definition.
    Show(ScheduleNameArg),

    /// Delete a schedule. The images it built stay.
    Delete(ScheduleNameArg),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("when").required(true).args(["cron", "rate"])))]
pub struct SchedulePutArgs {
    /// The schedule's name: 1 to 48 letters, digits, '-', '_' or '.'.
    pub name: String,

    /// When to build, as EventBridge's six cron fields in UTC, such as "0 3 * * ? *".
    #[arg(long, value_name = "FIELDS")]
    pub cron: Option<String>,

    /// How often to build, such as "1 day" or "12 hours".
    #[arg(long, value_name = "RATE")]
    pub rate: Option<String>,

    /// The instance to image, such as i-0123456789abcdef0.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: String,

    /// The image name of each run: {date}, {time}, {timestamp} and {schedule} are filled in
    /// (UTC), such as web-{date}-{time}. One image is built per rendered name.
    #[arg(long, value_name = "TEMPLATE")]
    pub name_template: String,

    /// Description of the images.
    #[arg(long)]
    pub description: Option<String>,

    #[command(flatten)]
    pub sharing: SharingArgs,

    /// Stop the instance while its snapshots are taken, then start it again.
    #[arg(long)]
    pub reboot: bool,

    /// Tag the images and their snapshots with KEY=VALUE (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,

    /// Keep the newest N images of the schedule; older ones are purged with their snapshots
    /// and manifests.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,

    /// Keep images younger than DAYS. With --keep-last too, an image goes only when both let
    /// it go. The newest image always stays.
    #[arg(long, value_name = "DAYS")]
    pub max_age_days: Option<u32>,

    /// Save the schedule without letting it fire.
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Debug, Args)]
pub struct ScheduleListArgs {
    /// Schedules per page (1 to 100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: Option<u32>,

    /// The token of the page to show, as printed after the previous page.
    #[arg(long, value_name = "TOKEN")]
    pub next: Option<String>,
}

#[derive(Debug, Args)]
pub struct ScheduleNameArg {
    /// The schedule's name.
    pub name: String,
}

/// Who may launch an image, as flags.
#[derive(Debug, Clone, Default, Args)]
pub struct SharingArgs {
    /// Make the image launchable by every AWS account.
    #[arg(long)]
    pub public: bool,

    /// Share with this 12-digit AWS account (repeatable).
    #[arg(long = "account", value_name = "ACCOUNT_ID")]
    pub accounts: Vec<String>,

    /// Share with every account of this organization, by ARN (repeatable).
    #[arg(long = "org", value_name = "ARN")]
    pub organizations: Vec<String>,

    /// Share with every account of this organizational unit, by ARN (repeatable).
    #[arg(long = "ou", value_name = "ARN")]
    pub organizational_units: Vec<String>,

    /// Also let those accounts create volumes from the image's snapshots, so they can copy it.
    #[arg(long)]
    pub create_volume_permission: bool,
}

impl SharingArgs {
    /// Whether any sharing flag was given.
    pub fn any(&self) -> bool {
        self.public
            || !self.accounts.is_empty()
            || !self.organizations.is_empty()
            || !self.organizational_units.is_empty()
            || self.create_volume_permission
    }

    /// The sharing the flags state, in the API's shape; account ids stay text so a leading
    /// zero survives.
    pub fn request(&self) -> SharingRequest {
        SharingRequest {
            public: self.public,
            accounts: self.accounts.clone(),
            organizations: self.organizations.clone(),
            organizational_units: self.organizational_units.clone(),
            create_volume_permission: self.create_volume_permission,
        }
    }
}

/// How `watch` polls the job.
#[derive(Debug, Clone, Args)]
pub struct PollArgs {
    /// Seconds between two reads of the job.
    #[arg(long, value_name = "SECONDS", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub interval: u64,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The instance to image (running or stopped), such as i-0123456789abcdef0.
    #[arg(long, value_name = "INSTANCE_ID")]
    pub instance: String,

    /// Name of the new image: 3 to 128 letters, digits and ( ) [ ] . / - ' @ _ or spaces.
    #[arg(long)]
    pub name: String,

    /// Description of the new image (at most 255 characters).
    #[arg(long)]
    pub description: Option<String>,

    #[command(flatten)]
    pub sharing: SharingArgs,

    /// Snapshot the instance while it runs (crash-consistent) [the API's default].
    #[arg(long, conflicts_with = "reboot")]
    pub no_reboot: bool,

    /// Stop the instance while its snapshots are taken, then start it again, for file systems
    /// at rest.
    #[arg(long)]
    pub reboot: bool,

    /// Capture only this device, such as /dev/sda1 (repeatable).
    #[arg(
        long = "include-device",
        value_name = "DEVICE",
        conflicts_with = "exclude_devices"
    )]
    pub include_devices: Vec<String>,

    /// Capture every EBS volume but this device (repeatable).
    #[arg(long = "exclude-device", value_name = "DEVICE")]
    pub exclude_devices: Vec<String>,

    /// Tag the image and its snapshots with KEY=VALUE (repeatable; the value may be empty).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,

    /// Attach this Marketplace product code to the image (repeatable).
    #[arg(long = "product-code", value_name = "CODE")]
    pub product_codes: Vec<String>,

    /// Makes a retried create start at most one build: the API answers a repeated key with the
    /// job it started the first time.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,

    /// Follow the build until it ends, like `amiforge watch`.
    #[arg(long)]
    pub wait: bool,

    #[command(flatten)]
    pub poll: PollArgs,
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The manifest, s3://bucket/key, ending in .manifest.json (amiforge) or .manifest.xml (a
    /// legacy S3 bundle).
    #[arg(long, value_name = "S3_PATH")]
    pub manifest: String,

    /// Name of the image: required for a legacy bundle; an amiforge manifest names its image.
    #[arg(long)]
    pub name: Option<String>,

    /// Description of the image, for a legacy bundle.
    #[arg(long)]
    pub description: Option<String>,

    #[command(flatten)]
    pub sharing: SharingArgs,

    /// Tag the image with KEY=VALUE (repeatable).
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,

    /// Makes a retried register start at most one job.
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,

    /// Follow the job until it ends, like `amiforge watch`.
    #[arg(long)]
    pub wait: bool,

    #[command(flatten)]
    pub poll: PollArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The job to follow, as printed by `amiforge create`.
    #[arg(value_name = "JOB_ID")]
    pub job: String,

    #[command(flatten)]
    pub poll: PollArgs,
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only jobs in this status.
    #[arg(long, value_enum, ignore_case = true)]
    pub status: Option<StatusFilter>,

    /// At most this many jobs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,

    /// Continue a listing from the token the previous page printed.
    #[arg(long, value_name = "TOKEN")]
    pub next: Option<String>,
}

/// A job status to filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusFilter {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl StatusFilter {
    /// The status as the API names it.
    pub fn as_api(self) -> &'static str {
        let status = match self {
            Self::Queued => JobStatus::Queued,
            Self::Running => JobStatus::Running,
            Self::Succeeded => JobStatus::Succeeded,
            Self::Failed => JobStatus::Failed,
        };
        status.as_str()
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Whose images: self, amazon, followed, or a 12-digit account id.
    #[arg(long, value_name = "OWNER", value_parser = parse_owner)]
    pub owner: Option<String>,

    /// Only images whose name matches this pattern; `*` matches any run of characters.
    #[arg(long, value_name = "PATTERN")]
    pub name: Option<String>,

    /// Only images in this state, such as available or pending.
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,

    /// At most this many images.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,

    /// Continue a listing from the token the previous page printed.
    #[arg(long, value_name = "TOKEN")]
    pub next: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The images, such as ami-0123456789abcdef0.
    #[arg(value_name = "IMAGE_ID", required = true)]
    pub images: Vec<String>,

    /// Also delete the files under each image's manifest folder in S3.
    #[arg(long)]
    pub remove_s3_files: bool,

    /// Only print what would be deleted and kept; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Also delete images amiforge did not make (they carry no amiforge:job-id tag).
    #[arg(long)]
    pub force: bool,

    /// Follow the purge job until it ends, like `amiforge watch`.
    #[arg(long, conflicts_with = "dry_run")]
    pub wait: bool,

    #[command(flatten)]
    pub poll: PollArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The image, such as ami-0123456789abcdef0.
    #[arg(value_name = "IMAGE_ID")]
    pub image: String,
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("targets")
        .required(true)
        .multiple(true)
        .args(["public", "private", "accounts", "organizations", "organizational_units"])
))]
pub struct ShareArgs {
    /// The image, such as ami-0123456789abcdef0.
    #[arg(value_name = "IMAGE_ID")]
    pub image: String,

    #[command(flatten)]
    pub sharing: SharingArgs,

    /// Not public. Alone, shares the image with nobody; with --account, --org or --ou, with
    /// exactly those.
    #[arg(long, conflicts_with = "public")]
    pub private: bool,
}

/// Parses a `--tag KEY=VALUE`, splitting at the first `=` so the value may hold more.
///
/// # Errors
/// A message for the user when there is no `=` or the key is empty.
pub fn parse_tag(value: &str) -> Result<(String, String), String> {
    let Some((key, val)) = value.split_once('=') else {
        return Err(format!(
            "a tag must be KEY=VALUE, got {value:?} (use KEY= for an empty value)"
        ));
    };
    if key.trim().is_empty() {
        return Err(format!("a tag key must not be empty, got {value:?}"));
    }
    Ok((key.to_owned(), val.to_owned()))
}

/// Parses `--owner`: one of the API's owner words or an account id.
fn parse_owner(value: &str) -> Result<String, String> {
    match value {
        "self" | "amazon" | "followed" => Ok(value.to_owned()),
        _ => AccountId::parse(value).map(String::from).map_err(|_| {
            format!(
                "the owner must be self, amazon, followed or a 12-digit account id, got {value:?}"
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Catches conflicting or unknown argument names in the derive attributes.
    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_tag_splits_at_the_first_equals_sign() {
        assert_eq!(
            parse_tag("team=web").unwrap(),
            ("team".into(), "web".into())
        );
        assert_eq!(
            parse_tag("expr=a=b").unwrap(),
            ("expr".into(), "a=b".into())
        );
        assert_eq!(
            parse_tag("empty=").unwrap(),
            ("empty".into(), String::new())
        );
    }

    #[test]
    fn a_tag_without_equals_or_key_is_refused() {
        let err = parse_tag("team").unwrap_err();
        assert!(err.contains("KEY=VALUE"), "{err}");
        assert!(parse_tag("=web")
            .unwrap_err()
            .contains("key must not be empty"));
    }

    #[test]
    fn a_bad_tag_flag_fails_parsing_with_its_value() {
        let err = Cli::try_parse_from([
            "amiforge",
            "create",
            "--instance",
            "i-0123abcd",
            "--name",
            "web",
            "--tag",
            "nokey",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("\"nokey\""), "{err}");
    }

    #[test]
    fn owner_accepts_words_and_account_ids_only() {
        assert_eq!(parse_owner("self").unwrap(), "self");
        assert_eq!(parse_owner("012345678901").unwrap(), "012345678901");
        assert!(parse_owner("someone").is_err());
        assert!(parse_owner("12345").is_err());
    }

    #[test]
    fn share_needs_a_target_and_private_excludes_public() {
        let none = Cli::try_parse_from(["amiforge", "share", "ami-0123abcd"]).unwrap_err();
        assert_eq!(none.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let both =
            Cli::try_parse_from(["amiforge", "share", "ami-0123abcd", "--public", "--private"])
                .unwrap_err();
        assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert!(Cli::try_parse_from(["amiforge", "share", "ami-0123abcd", "--private"]).is_ok());
    }

    #[test]
    fn status_filter_names_the_api_status() {
        let cli = Cli::try_parse_from(["amiforge", "jobs", "--status", "failed"]).unwrap();
        let Command::Jobs(args) = cli.command else {
            panic!("parsed {:?}", cli.command);
        };
        assert_eq!(args.status.map(StatusFilter::as_api), Some("FAILED"));
    }
}
