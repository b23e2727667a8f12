//! Support for the integration tests: reaching the local AWS stack, and creating uniquely
//! named resources so tests can run in parallel.
//!
//! The stack is started by `dev/stack up` (the README's test command does it). Its settings
//! come from the environment, or from the `.stack/env` file the stack writes, so a plain
//! `cargo test` works while it is up. When it is not up, tests fail with the command that
//! starts it; they never skip.

pub mod build;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use amiforge::aws::Clients;
use amiforge::domain::{BucketName, KeyPrefix, PollBounds};
use amiforge::jobs::DynamoJobStore;
use amiforge::steps::Pipeline;
use amiforge::Config;
use anyhow::{bail, Context, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use tokio::sync::OnceCell;

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// The local stack's settings: the process environment over `.stack/env`.
#[derive(Debug, Clone)]
pub struct Stack {
    vars: HashMap<String, String>,
}

impl Stack {
    /// Reads the settings and checks that the stack answers.
    ///
    /// # Errors
    /// When no stack is configured or it does not answer, with the command that starts it.
    pub async fn connect() -> Result<Self> {
        let mut vars = HashMap::new();
        let file = repo_root().join(".stack/env");
        if let Ok(text) = std::fs::read_to_string(&file) {
            for line in text.lines() {
                let line = line.trim().trim_start_matches("export ").trim();
                if let Some((k, v)) = line.split_once('=') {
                    vars.insert(
                        k.to_owned(),
                        v.trim_matches(|c| c == '"' || c == '\'').to_owned(),
                    );
                }
            }
        }
        for (k, v) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("AMIFORGE_") {
                vars.insert(k, v);
            }
        }
        let Some(endpoint) = vars.get("AWS_ENDPOINT_URL").cloned() else {
            bail!(
                "the local AWS stack is not configured: start it with `dev/stack up` \
                 (or run the whole suite with `dev/test`)"
            );
        };
        let probe = format!("{endpoint}/moto-api/");
        let reachable = tokio::net::TcpStream::connect(
            endpoint.trim_start_matches("http://").trim_end_matches('/'),
        )
        .await
        .is_ok();
        if !reachable {
            bail!("the local AWS stack at {endpoint} does not answer ({probe}): start it with `dev/stack up`");
        }
        Ok(Self { vars })
    }

    /// A setting of the stack.
    ///
    /// # Errors
    /// When the stack did not set it.
    pub fn var(&self, name: &str) -> Result<String> {
        self.vars.get(name).cloned().with_context(|| {
            format!("the local stack sets no {name}; restart it with `dev/stack up`")
        })
    }

    /// SDK clients pointed at the stack.
    pub fn clients(&self) -> Clients {
        let region = self
            .vars
            .get("AWS_REGION")
            .cloned()
            .unwrap_or_else(|| "us-east-1".into());
        let credentials = aws_sdk_dynamodb::config::Credentials::new(
            self.vars
                .get("AWS_ACCESS_KEY_ID")
                .cloned()
                .unwrap_or_else(|| "testing".into()),
            self.vars
                .get("AWS_SECRET_ACCESS_KEY")
                .cloned()
                .unwrap_or_else(|| "testing".into()),
            None,
            None,
            "local-stack",
        );
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region))
            .endpoint_url(
                self.vars
                    .get("AWS_ENDPOINT_URL")
                    .cloned()
                    .unwrap_or_default(),
            )
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                credentials,
            ))
            .build();
        Clients::from_config(&config)
    }

    /// amiforge's configuration for this stack, over a given jobs table.
    ///
    /// # Errors
    /// When a setting is missing.
    pub fn config(&self, jobs_table: &str) -> Result<Config> {
        Ok(Config {
            jobs_table: jobs_table.to_owned(),
            bucket: BucketName::parse(&self.var("AMIFORGE_BUCKET")?)?,
            prefix: KeyPrefix::parse(&format!("tests/{}", unique("run")))?,
            poll: PollBounds {
                min_seconds: 1,
                max_seconds: 5,
            },
            history_limit: 20,
            build_state_machine_arn: self.vars.get("AMIFORGE_BUILD_STATE_MACHINE_ARN").cloned(),
            purge_state_machine_arn: self.vars.get("AMIFORGE_PURGE_STATE_MACHINE_ARN").cloned(),
            followed_accounts: Vec::new(),
            schedule_role_arn: None,
            schedule_rule_prefix: "amiforge-".into(),
        })
    }

    /// A pipeline over the stack with a fresh jobs table, for calling steps directly.
    ///
    /// # Errors
    /// When the table cannot be created.
    pub async fn pipeline(&self) -> Result<(Pipeline, Arc<DynamoJobStore>)> {
        let clients = self.clients();
        let table = create_jobs_table(&clients.dynamodb).await?;
        let config = self.config(&table)?;
        let store = Arc::new(DynamoJobStore::new(clients.dynamodb.clone(), table));
        let mut pipeline = Pipeline::new(config, &clients);
        pipeline.jobs = store.clone();
        Ok((pipeline, store))
    }
}

/// The shared stack connection of a test binary.
///
/// # Errors
/// See [`Stack::connect`].
pub async fn stack() -> Result<&'static Stack> {
    static STACK: OnceCell<Stack> = OnceCell::const_new();
    STACK.get_or_try_init(Stack::connect).await
}

/// A name no other test uses: `<prefix>-<8 hex digits>`.
pub fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

/// Creates a jobs table with a unique name from `dev/jobs-table.json`, the definition the
/// local stack uses too, and returns its name.
///
/// # Errors
/// When the definition cannot be read or DynamoDB refuses it.
pub async fn create_jobs_table(client: &aws_sdk_dynamodb::Client) -> Result<String> {
    let path = repo_root().join("dev/jobs-table.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let definition: serde_json::Value = serde_json::from_str(&text)?;
    let name = unique("jobs");

    let key_schema = |value: &serde_json::Value| -> Result<Vec<KeySchemaElement>> {
        value
            .as_array()
            .context("KeySchema must be a list")?
            .iter()
            .map(|k| {
                Ok(KeySchemaElement::builder()
                    .attribute_name(k["AttributeName"].as_str().context("AttributeName")?)
                    .key_type(KeyType::from(k["KeyType"].as_str().context("KeyType")?))
                    .build()?)
            })
            .collect()
    };
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(&definition["KeySchema"])?));
    for attribute in definition["AttributeDefinitions"]
        .as_array()
        .context("AttributeDefinitions")?
    {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(
                    attribute["AttributeName"]
                        .as_str()
                        .context("AttributeName")?,
                )
                .attribute_type(ScalarAttributeType::from(
                    attribute["AttributeType"]
                        .as_str()
                        .context("AttributeType")?,
                ))
                .build()?,
        );
    }
    for index in definition["GlobalSecondaryIndexes"]
        .as_array()
        .context("GlobalSecondaryIndexes")?
    {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index["IndexName"].as_str().context("IndexName")?)
                .set_key_schema(Some(key_schema(&index["KeySchema"])?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()?,
        );
    }
    request.send().await.context("creating the jobs table")?;
    Ok(name)
}

/// Launches an instance in the emulator with an 8 GiB root volume and a data volume of
/// `data_gib` at `/dev/sdf`, and returns its id.
///
/// # Errors
/// When the emulator has no image to launch from or refuses the launch.
pub async fn launch_instance(ec2: &aws_sdk_ec2::Client, data_gib: i32) -> Result<String> {
    launch_instance_with(ec2, &[("/dev/sdf", data_gib)]).await
}

/// Launches an instance in the emulator with an 8 GiB root volume and the given data volumes
/// (device name, size in GiB), and returns its id.
///
/// # Errors
/// When the emulator has no image to launch from or refuses the launch.
pub async fn launch_instance_with(
    ec2: &aws_sdk_ec2::Client,
    data_volumes: &[(&str, i32)],
) -> Result<String> {
    use aws_sdk_ec2::types::{
        BlockDeviceMapping, EbsBlockDevice, Filter, InstanceType, VolumeType,
    };

    let images = ec2
        .describe_images()
        .owners("amazon")
        .filters(
            Filter::builder()
                .name("architecture")
                .values("x86_64")
                .build(),
        )
        .filters(
            Filter::builder()
                .name("root-device-type")
                .values("ebs")
                .build(),
        )
        .filters(
            Filter::builder()
                .name("virtualization-type")
                .values("hvm")
                .build(),
        )
        .send()
        .await?;
    let image = images
        .images()
        .iter()
        .filter(|i| i.platform().is_none())
        .min_by_key(|i| i.image_id().unwrap_or_default().to_owned())
        .context("the emulator offers no x86_64 EBS-backed image")?;
    let root = image.root_device_name().unwrap_or("/dev/xvda").to_owned();
    let volume = |device: &str, size: i32| {
        BlockDeviceMapping::builder()
            .device_name(device)
            .ebs(
                EbsBlockDevice::builder()
                    .volume_size(size)
                    .volume_type(VolumeType::Gp3)
                    .delete_on_termination(true)
                    .build(),
            )
            .build()
    };
    let mut launch = ec2
        .run_instances()
        .image_id(image.image_id().unwrap_or_default())
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        // The emulator makes no root volume once mappings are given: name it too.
        .block_device_mappings(volume(&root, 8));
    for (device, size) in data_volumes {
        launch = launch.block_device_mappings(volume(device, *size));
    }
    let output = launch.send().await?;
    output
        .instances()
        .first()
        .and_then(|i| i.instance_id())
        .map(str::to_owned)
        .context("RunInstances returned no instance")
}

/// Snapshot ids carrying a job's tag.
///
/// # Errors
/// When EC2 fails.
pub async fn snapshots_of_job(ec2: &aws_sdk_ec2::Client, job_id: &str) -> Result<Vec<String>> {
    let output = ec2
        .describe_snapshots()
        .owner_ids("self")
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{}", amiforge::domain::TagKey::JOB_ID))
                .values(job_id)
                .build(),
        )
        .send()
        .await?;
    let mut ids: Vec<String> = output
        .snapshots()
        .iter()
        .filter_map(|s| s.snapshot_id().map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}
