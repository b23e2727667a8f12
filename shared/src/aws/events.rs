//! EventBridge: the scheduled rules that start builds, each with one target, the build state
//! machine.

use aws_sdk_eventbridge::types::{InputTransformer, RuleState, Target};
use aws_sdk_eventbridge::Client;
use tracing::debug;

use crate::error::{AwsError, AwsErrorKind, StepError};

/// The id of the one target every schedule rule has.
pub const TARGET_ID: &str = "build-image";

/// A scheduled rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// The rule's name.
    pub name: String,
    /// Its schedule expression.
    pub expression: String,
    /// Whether it fires.
    pub enabled: bool,
    /// Its description.
    pub description: Option<String>,
    /// Its target's ARN, if it has the target.
    pub target_arn: Option<String>,
    /// Its target's input template, if it has the target.
    pub input_template: Option<String>,
}

/// What a rule starts, with which role and input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTarget {
    /// The state machine.
    pub arn: String,
    /// The role EventBridge assumes to start it.
    pub role_arn: String,
    /// The event fields the template uses: placeholder name and JSON path.
    pub input_paths: Vec<(String, String)>,
    /// The execution input, with `<placeholder>`s.
    pub input_template: String,
}

/// EventBridge rule calls.
#[derive(Debug, Clone)]
pub struct Rules {
    client: Client,
}

impl Rules {
    /// Wraps a client.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Creates or updates a scheduled rule and its target; `true` when the rule is new.
    ///
    /// # Errors
    /// An AWS error; a bad expression is [`AwsErrorKind::InvalidInput`].
    pub async fn put(
        &self,
        name: &str,
        expression: &str,
        enabled: bool,
        description: &str,
        target: &RuleTarget,
    ) -> Result<bool, StepError> {
        let created = self.describe(name).await?.is_none();
        self.client
            .put_rule()
            .name(name)
            .schedule_expression(expression)
            .state(if enabled {
                RuleState::Enabled
            } else {
                RuleState::Disabled
            })
            .description(description)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("PutRule", e))?;
        let mut transformer = InputTransformer::builder().input_template(&target.input_template);
        for (key, path) in &target.input_paths {
            transformer = transformer.input_paths_map(key, path);
        }
        let transformer = transformer
            .build()
            .map_err(|e| StepError::BadEvent(format!("rule input cannot be built: {e}")))?;
        let rule_target = Target::builder()
            .id(TARGET_ID)
            .arn(&target.arn)
            .role_arn(&target.role_arn)
            .input_transformer(transformer)
            .build()
            .map_err(|e| StepError::BadEvent(format!("rule target cannot be built: {e}")))?;
        let output = self
            .client
            .put_targets()
            .rule(name)
            .targets(rule_target)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("PutTargets", e))?;
        if output.failed_entry_count() > 0 {
            let reason = output
                .failed_entries()
                .iter()
                .filter_map(|f| f.error_message())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(StepError::BadEvent(format!(
                "EventBridge refused the target of rule {name}: {reason}"
            )));
        }
        debug!(rule = name, created, "schedule rule written");
        Ok(created)
    }

    /// A rule with its target, or `None` when there is no such rule.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn get(&self, name: &str) -> Result<Option<StoredRule>, StepError> {
        let Some(mut rule) = self.describe(name).await? else {
            return Ok(None);
        };
        let targets = match self.client.list_targets_by_rule().rule(name).send().await {
            Ok(targets) => targets,
            Err(err) => {
                let err = AwsError::from_sdk("ListTargetsByRule", err);
                // Deleted between the two calls: gone, like a rule never there.
                if err.kind == AwsErrorKind::NotFound {
                    return Ok(None);
                }
                return Err(err.into());
            }
        };
        if let Some(target) = targets.targets().iter().find(|t| t.id() == TARGET_ID) {
            rule.target_arn = Some(target.arn().to_owned());
            rule.input_template = target
                .input_transformer()
                .map(|t| t.input_template().to_owned());
        }
        Ok(Some(rule))
    }

    async fn describe(&self, name: &str) -> Result<Option<StoredRule>, StepError> {
        match self.client.describe_rule().name(name).send().await {
            Ok(rule) => Ok(Some(StoredRule {
                name: name.to_owned(),
                expression: rule.schedule_expression().unwrap_or_default().to_owned(),
                enabled: rule.state() == Some(&RuleState::Enabled),
                description: rule.description().map(str::to_owned),
                target_arn: None,
                input_template: None,
            })),
            Err(err) => {
                let err = AwsError::from_sdk("DescribeRule", err);
                if err.kind == AwsErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(err.into())
                }
            }
        }
    }

    /// One page of the names of rules starting with `prefix`, and the next page's token.
    ///
    /// # Errors
    /// An AWS error; a token not from EventBridge is [`AwsErrorKind::InvalidInput`].
    pub async fn list(
        &self,
        prefix: &str,
        limit: i32,
        next: Option<String>,
    ) -> Result<(Vec<String>, Option<String>), StepError> {
        let output = self
            .client
            .list_rules()
            .name_prefix(prefix)
            .limit(limit)
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListRules", e))?;
        let names = output
            .rules()
            .iter()
            .filter_map(|r| r.name().map(str::to_owned))
            .collect();
        Ok((names, output.next_token().map(str::to_owned)))
    }

    /// Removes a rule's target, then the rule; `false` when there was no rule.
    ///
    /// # Errors
    /// An AWS error.
    pub async fn delete(&self, name: &str) -> Result<bool, StepError> {
        if self.describe(name).await?.is_none() {
            return Ok(false);
        }
        self.client
            .remove_targets()
            .rule(name)
            .ids(TARGET_ID)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("RemoveTargets", e))?;
        self.client
            .delete_rule()
            .name(name)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DeleteRule", e))?;
        debug!(rule = name, "schedule rule deleted");
        Ok(true)
    }
}
