//! Saving, reading and deleting schedules. A schedule is an EventBridge rule on the default
//! event bus (the only bus that takes schedule expressions) named `<prefix><schedule>`, whose
//! one target is the build state machine; the target's input template holds the schedule's
//! whole definition, so the rule is the only record of it.

use serde::Serialize;

use crate::aws::events::{RuleTarget, Rules};
use crate::config::{BUILD_STATE_MACHINE_ARN, SCHEDULE_ROLE_ARN};
use crate::contract::{ScheduledExecutionInput, ScheduledRun};
use crate::domain::{FieldError, InvalidRequest, ScheduleName, ScheduleRequest};
use crate::error::StepError;
use crate::Config;

/// EventBridge's limit on an input template.
pub const MAX_INPUT_TEMPLATE: usize = 8192;

/// The event field the template takes: the time the rule fired for.
const TIME_PLACEHOLDER: &str = "<time>";

/// A schedule as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// Its name.
    pub name: String,
    /// The EventBridge rule behind it.
    pub rule_name: String,
    /// When it fires.
    pub expression: String,
    /// Whether it fires.
    pub enabled: bool,
    /// What it starts.
    pub state_machine_arn: Option<String>,
    /// The definition saved.
    pub definition: Option<ScheduleRequest>,
}

/// The rule name of a schedule.
pub fn rule_name(config: &Config, name: &ScheduleName) -> String {
    format!("{}{name}", config.schedule_rule_prefix)
}

/// The rule's input template: the execution input with the event time left as `<time>`.
/// Angle brackets in the definition are written as JSON escapes, so that EventBridge sees no
/// placeholder but the time.
///
/// # Errors
/// [`StepError::Invalid`] when the definition is too large for EventBridge.
pub fn input_template(name: &ScheduleName, request: &ScheduleRequest) -> Result<String, StepError> {
    let input = ScheduledExecutionInput {
        scheduled: ScheduledRun {
            schedule: name.clone(),
            definition: request.clone(),
            time: String::new(),
        },
    };
    let mut json = serde_json::to_string(&input)
        .map_err(|e| StepError::BadEvent(format!("schedule cannot be encoded: {e}")))?
        .replace('<', "\\u003c")
        .replace('>', "\\u003e");
    // `time` is the run's last field, so its last occurrence is the run's own (a tag may be
    // called `time` too).
    let empty_time = r#""time":"""#;
    if let Some(at) = json.rfind(empty_time) {
        json.replace_range(
            at..at + empty_time.len(),
            &format!(r#""time":"{TIME_PLACEHOLDER}""#),
        );
    }
    if json.len() > MAX_INPUT_TEMPLATE {
        return Err(InvalidRequest(vec![FieldError::new(
            "body",
            format!(
                "the schedule takes {} bytes once encoded; EventBridge holds at most \
                 {MAX_INPUT_TEMPLATE}: use fewer tags or a shorter description",
                json.len()
            ),
        )])
        .into());
    }
    Ok(json)
}

/// The execution input a rule's template gives for an event at `time`.
///
/// # Errors
/// [`StepError::BadEvent`] when the template is not one amiforge wrote.
pub fn execution_input(template: &str, time: &str) -> Result<ScheduledExecutionInput, StepError> {
    let filled = template.replace(TIME_PLACEHOLDER, time);
    serde_json::from_str(&filled)
        .map_err(|e| StepError::BadEvent(format!("rule input is not a schedule run: {e}")))
}

/// Creates or replaces a schedule; the schedule and whether it is new.
///
/// # Errors
/// [`StepError::Invalid`] naming each bad field; [`StepError::NotConfigured`] without the
/// build state machine or the schedule role; an AWS error.
pub async fn save(
    config: &Config,
    rules: &Rules,
    name: &str,
    request: &ScheduleRequest,
) -> Result<(Schedule, bool), StepError> {
    let spec = request.validate(name, &config.bucket, &config.prefix)?;
    let machine = config
        .build_state_machine_arn
        .clone()
        .ok_or(StepError::NotConfigured {
            variable: BUILD_STATE_MACHINE_ARN,
            what: "schedules cannot start builds",
        })?;
    let role = config
        .schedule_role_arn
        .clone()
        .ok_or(StepError::NotConfigured {
            variable: SCHEDULE_ROLE_ARN,
            what: "EventBridge cannot start scheduled builds",
        })?;
    let template = input_template(&spec.name, request)?;
    let rule = rule_name(config, &spec.name);
    let description = format!(
        "amiforge schedule {}: images {} as {}",
        spec.name, request.instance_id, request.name_template
    );
    let target = RuleTarget {
        arn: machine.clone(),
        role_arn: role,
        input_paths: vec![("time".to_owned(), "$.time".to_owned())],
        input_template: template,
    };
    let created = rules
        .put(
            &rule,
            spec.expression.as_str(),
            request.enabled,
            &description,
            &target,
        )
        .await?;
    let schedule = Schedule {
        name: spec.name.to_string(),
        rule_name: rule,
        expression: spec.expression.to_string(),
        enabled: request.enabled,
        state_machine_arn: Some(machine),
        definition: Some(request.clone()),
    };
    Ok((schedule, created))
}

/// One schedule.
///
/// # Errors
/// [`StepError::Invalid`] for a bad name, [`StepError::ScheduleNotFound`], or an AWS error.
pub async fn get(config: &Config, rules: &Rules, name: &str) -> Result<Schedule, StepError> {
    let name = ScheduleName::parse(name).map_err(|e| InvalidRequest(vec![e.at("name")]))?;
    let rule = rule_name(config, &name);
    let stored = rules
        .get(&rule)
        .await?
        .ok_or_else(|| StepError::ScheduleNotFound(name.to_string()))?;
    let definition = stored
        .input_template
        .as_deref()
        .and_then(|t| execution_input(t, "").ok())
        .map(|input| input.scheduled.definition);
    Ok(Schedule {
        name: name.to_string(),
        rule_name: stored.name,
        expression: stored.expression,
        enabled: stored.enabled,
        state_machine_arn: stored.target_arn,
        definition,
    })
}

/// One page of schedules, by name, and the next page's token.
///
/// # Errors
/// An AWS error; a bad token is an invalid-input AWS error.
pub async fn list(
    config: &Config,
    rules: &Rules,
    limit: i32,
    next: Option<String>,
) -> Result<(Vec<Schedule>, Option<String>), StepError> {
    let prefix = &config.schedule_rule_prefix;
    let (names, next) = rules.list(prefix, limit, next).await?;
    let mut schedules = Vec::new();
    for rule in names {
        let Some(name) = rule.strip_prefix(prefix.as_str()) else {
            continue;
        };
        match get(config, rules, name).await {
            Ok(schedule) => schedules.push(schedule),
            // Deleted between the listing and the read, or a rule of another tool that shares
            // the prefix: not a schedule of ours.
            Err(StepError::ScheduleNotFound(_) | StepError::Invalid(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok((schedules, next))
}

/// Deletes a schedule's rule and target. Images it built stay.
///
/// # Errors
/// [`StepError::Invalid`] for a bad name, [`StepError::ScheduleNotFound`], or an AWS error.
pub async fn delete(config: &Config, rules: &Rules, name: &str) -> Result<(), StepError> {
    let name = ScheduleName::parse(name).map_err(|e| InvalidRequest(vec![e.at("name")]))?;
    if rules.delete(&rule_name(config, &name)).await? {
        Ok(())
    } else {
        Err(StepError::ScheduleNotFound(name.to_string()))
    }
}

/// Makes the schedules declared in a deployment exist as declared: every one is checked
/// first (nothing changes if any is bad), then each is saved, and those of `previous` no
/// longer declared are deleted. The names saved.
///
/// # Errors
/// [`StepError::Invalid`] naming each bad field as `<schedule>.<field>`; see [`save`] and
/// [`delete`].
pub async fn declare(
    config: &Config,
    rules: &Rules,
    declared: &std::collections::BTreeMap<String, ScheduleRequest>,
    previous: &[String],
) -> Result<Vec<String>, StepError> {
    let mut errors = Vec::new();
    for (name, request) in declared {
        if let Err(InvalidRequest(bad)) = request.validate(name, &config.bucket, &config.prefix) {
            errors.extend(
                bad.into_iter()
                    .map(|e| FieldError::new(format!("{name}.{}", e.field), e.message)),
            );
        }
    }
    if !errors.is_empty() {
        return Err(InvalidRequest(errors).into());
    }

    for (name, request) in declared {
        save(config, rules, name, request).await?;
    }
    for gone in previous.iter().filter(|p| !declared.contains_key(*p)) {
        match delete(config, rules, gone).await {
            Ok(()) | Err(StepError::ScheduleNotFound(_) | StepError::Invalid(_)) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(declared.keys().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The template round-trips the definition, hides angle brackets from EventBridge and
    /// leaves exactly one placeholder, the time.
    #[test]
    fn the_input_template_carries_the_definition_and_the_time() {
        let name = ScheduleName::parse("nightly").unwrap();
        let request = ScheduleRequest {
            expression: "rate(1 day)".into(),
            name_template: "web-{date}".into(),
            instance_id: "i-0123abcd".into(),
            description: Some("built <nightly>".into()),
            ..ScheduleRequest::default()
        };
        let template = input_template(&name, &request).unwrap();
        assert_eq!(template.matches('<').count(), 1, "{template}");
        assert!(template.contains(r#""time":"<time>""#));

        let input = execution_input(&template, "2026-12-03T03:00:00Z").unwrap();
        assert_eq!(input.scheduled.schedule, name);
        assert_eq!(input.scheduled.definition, request);
        assert_eq!(input.scheduled.time, "2026-12-03T03:00:00Z");
    }

    #[test]
    fn an_oversized_schedule_is_refused() {
        let name = ScheduleName::parse("nightly").unwrap();
        let request = ScheduleRequest {
            tags: (0..50)
                .map(|i| (format!("key-{i}"), "v".repeat(250)))
                .collect(),
            ..ScheduleRequest::default()
        };
        let err = input_template(&name, &request).unwrap_err();
        assert!(err.to_string().contains("at most 8192"), "{err}");
    }
}
