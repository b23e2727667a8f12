//! The custom resource over EventBridge answering from mock rules.

use std::collections::HashMap;

use amiforge::aws::events::Rules;
use amiforge::aws::mock;
use amiforge::Config;
use aws_lambda_events::event::cloudformation::CloudFormationCustomResourceResponseStatus as Status;
use aws_sdk_eventbridge::operation::delete_rule::DeleteRuleOutput;
use aws_sdk_eventbridge::operation::describe_rule::{DescribeRuleError, DescribeRuleOutput};
use aws_sdk_eventbridge::operation::put_rule::PutRuleOutput;
use aws_sdk_eventbridge::operation::put_targets::PutTargetsOutput;
use aws_sdk_eventbridge::operation::remove_targets::RemoveTargetsOutput;
use aws_smithy_mocks::{mock, Rule};
use serde_json::{json, Value};

use super::{apply, response, Request};

const ROLE: &str = "arn:aws:iam::123456789012:role/amiforge-schedules";

fn config() -> Config {
    let vars: HashMap<String, String> = [
        ("AMIFORGE_JOBS_TABLE", "jobs"),
        ("AMIFORGE_BUCKET", "amiforge-test"),
        (
            "AMIFORGE_BUILD_STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:123456789012:stateMachine:build-image",
        ),
        ("AMIFORGE_SCHEDULE_ROLE_ARN", ROLE),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Config::from_vars(&vars).unwrap()
}

fn schedules(names: &[&str], expression: &str) -> String {
    let declared: serde_json::Map<String, Value> = names
        .iter()
        .map(|name| {
            (
                (*name).to_owned(),
                json!({
                    "expression": expression,
                    "name_template": format!("{name}-{{date}}"),
                    "instance_id": "i-0123abcd",
                    "retention": {"keep_last": 3},
                }),
            )
        })
        .collect();
    Value::Object(declared).to_string()
}

fn request(kind: &str, now: &str, old: Option<&str>) -> Request {
    let mut event = json!({
        "RequestType": kind,
        "RequestId": "r-1",
        "ResponseURL": "https://cloudformation-custom-resource-response.example/r-1",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/amiforge/1",
        "ResourceType": "Custom::AmiforgeSchedules",
        "LogicalResourceId": "DeclaredSchedules",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:x", "Schedules": now},
    });
    if kind != "Create" {
        event["PhysicalResourceId"] = json!("amiforge-declared-schedules");
    }
    if let Some(old) = old {
        event["OldResourceProperties"] = json!({"Schedules": old});
    }
    serde_json::from_value(event).unwrap()
}

fn rule_missing() -> Rule {
    mock!(aws_sdk_eventbridge::Client::describe_rule).then_error(|| {
        DescribeRuleError::generic(
            aws_smithy_types::error::ErrorMetadata::builder()
                .code("ResourceNotFoundException")
                .build(),
        )
    })
}

fn rule_present() -> Rule {
    mock!(aws_sdk_eventbridge::Client::describe_rule).then_output(|| {
        DescribeRuleOutput::builder()
            .name("amiforge-old")
            .schedule_expression("rate(1 day)")
            .build()
    })
}

fn put_rule() -> Rule {
    mock!(aws_sdk_eventbridge::Client::put_rule).then_output(|| PutRuleOutput::builder().build())
}

fn put_targets() -> Rule {
    mock!(aws_sdk_eventbridge::Client::put_targets)
        .match_requests(|r| r.targets()[0].role_arn() == Some(ROLE))
        .then_output(|| PutTargetsOutput::builder().failed_entry_count(0).build())
}

/// Creating the resource saves every declared schedule as a rule with its target, and
/// answers SUCCESS with their names.
#[tokio::test]
async fn create_saves_every_declared_schedule() {
    let (missing, rule, targets) = (rule_missing(), put_rule(), put_targets());
    let rules = Rules::new(mock::events(&[&missing, &rule, &targets]));
    let config = config();
    let create = request("Create", &schedules(&["db", "web"], "rate(1 day)"), None);

    let outcome = apply(&config, &rules, &create).await;
    let (url, answer) = response(&config, &create, outcome);
    assert_eq!(
        url,
        "https://cloudformation-custom-resource-response.example/r-1"
    );
    assert_eq!(answer.status, Status::Success, "{:?}", answer.reason);
    assert_eq!(answer.data["Schedules"], "db,web");
    assert_eq!(answer.physical_resource_id, "amiforge-declared-schedules");
    assert_eq!(answer.request_id, "r-1");
    assert_eq!(rule.num_calls(), 2);
    assert_eq!(targets.num_calls(), 2);
}

/// One bad schedule fails the resource, naming the schedule and field, and saves none.
#[tokio::test]
async fn a_bad_declared_schedule_saves_nothing() {
    let (missing, rule, targets) = (rule_missing(), put_rule(), put_targets());
    let rules = Rules::new(mock::events(&[&missing, &rule, &targets]));
    let config = config();
    let mut declared: Value =
        serde_json::from_str(&schedules(&["db", "web"], "rate(1 day)")).unwrap();
    declared["web"]["expression"] = json!("cron(0 3 * * *)");
    let create = request("Create", &declared.to_string(), None);

    let outcome = apply(&config, &rules, &create).await;
    let (_, answer) = response(&config, &create, outcome);
    assert_eq!(answer.status, Status::Failed);
    let reason = answer.reason.unwrap();
    assert!(reason.starts_with("web.expression: "), "{reason}");
    assert_eq!(rule.num_calls(), 0);

    let broken = request("Create", "[not json", None);
    let (_, answer) = response(&config, &broken, apply(&config, &rules, &broken).await);
    assert_eq!(answer.status, Status::Failed);
    assert!(answer
        .reason
        .unwrap()
        .contains("StaticSchedules must be a JSON object"));
}

/// An update deletes the rule of a schedule no longer declared; deleting the resource
/// deletes every rule it declared.
#[tokio::test]
async fn dropped_schedules_lose_their_rules() {
    let (present, rule, targets) = (rule_present(), put_rule(), put_targets());
    let removed = mock!(aws_sdk_eventbridge::Client::remove_targets)
        .then_output(|| RemoveTargetsOutput::builder().build());
    let deleted = mock!(aws_sdk_eventbridge::Client::delete_rule)
        .match_requests(|r| r.name() == Some("amiforge-old"))
        .then_output(|| DeleteRuleOutput::builder().build());
    let rules = Rules::new(mock::events(&[
        &present, &rule, &targets, &removed, &deleted,
    ]));
    let config = config();

    let update = request(
        "Update",
        &schedules(&["web"], "rate(1 day)"),
        Some(&schedules(&["old", "web"], "rate(1 day)")),
    );
    let (_, answer) = response(&config, &update, apply(&config, &rules, &update).await);
    assert_eq!(answer.status, Status::Success, "{:?}", answer.reason);
    assert_eq!(deleted.num_calls(), 1);
    assert_eq!(rule.num_calls(), 1);

    let delete = request("Delete", &schedules(&["old"], "rate(1 day)"), None);
    let (_, answer) = response(&config, &delete, apply(&config, &rules, &delete).await);
    assert_eq!(answer.status, Status::Success, "{:?}", answer.reason);
    assert_eq!(deleted.num_calls(), 2);
    assert_eq!(rule.num_calls(), 1, "a delete saves nothing");
}
