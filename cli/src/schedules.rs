//! `amiforge schedules`: save, list, show and delete the schedules that rebuild images.

use anyhow::Result;
use http::Method;
use serde_json::{json, Map, Value};

use crate::args::{Format, GlobalArgs, ScheduleCommand, SchedulePutArgs};
use crate::client::Client;
use crate::{output, Outcome};

/// Runs one schedules command and prints its answer.
///
/// # Errors
/// Connection, HTTP and API errors, such as a bad expression or an unknown schedule.
pub async fn run(command: ScheduleCommand, global: &GlobalArgs) -> Result<Outcome> {
    let client = Client::connect(&global.settings()).await?;
    let answer = match &command {
        ScheduleCommand::Put(args) => {
            let body = put_body(args);
            client
                .send(
                    Method::PUT,
                    &["schedules", &args.name],
                    &[],
                    Some(&body),
                    &[],
                )
                .await?
        }
        ScheduleCommand::List(args) => {
            let query = [
                ("limit", args.limit.map(|n| n.to_string())),
                ("next", args.next.clone()),
            ];
            client.get(&["schedules"], &query).await?
        }
        ScheduleCommand::Show(args) => client.get(&["schedules", &args.name], &[]).await?,
        ScheduleCommand::Delete(args) => {
            client
                .send(Method::DELETE, &["schedules", &args.name], &[], None, &[])
                .await?
        }
    };

    let text = match (global.output, &command) {
        (Format::Json, _) => output::json(&answer),
        (Format::Table, ScheduleCommand::List(_)) => {
            if let Some(hint) = output::next_page(answer["next"].as_str()) {
                eprintln!("{hint}");
            }
            schedules_table(&answer)
        }
        (Format::Table, ScheduleCommand::Delete(args)) => {
            format!("schedule {} deleted; the images it built stay\n", args.name)
        }
        (Format::Table, _) => schedule_detail(&answer),
    };
    output::emit(&text)?;
    Ok(Outcome::Done)
}

/// The API body the flags describe.
fn put_body(args: &SchedulePutArgs) -> Value {
    let expression = match (&args.cron, &args.rate) {
        (Some(cron), _) => format!("cron({cron})"),
        (None, Some(rate)) => format!("rate({rate})"),
        (None, None) => String::new(),
    };
    let mut retention = Map::new();
    if let Some(n) = args.keep_last {
        retention.insert("keep_last".into(), json!(n));
    }
    if let Some(days) = args.max_age_days {
        retention.insert("max_age_days".into(), json!(days));
    }
    let tags: Map<String, Value> = args
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let mut body = json!({
        "expression": expression,
        "name_template": args.name_template,
        "instance_id": args.instance,
        "no_reboot": !args.reboot,
        "sharing": args.sharing.request(),
        "tags": tags,
        "retention": retention,
        "enabled": !args.disabled,
    });
    if let Some(description) = &args.description {
        body["description"] = json!(description);
    }
    body
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What retention keeps, in words.
fn retention(definition: &Value) -> String {
    let rules = &definition["retention"];
    let mut parts = Vec::new();
    if let Some(n) = rules["keep_last"].as_u64() {
        parts.push(format!("newest {n}"));
    }
    if let Some(days) = rules["max_age_days"].as_u64() {
        parts.push(format!("younger than {days} days"));
    }
    if parts.is_empty() {
        "all images".to_owned()
    } else {
        parts.join(" or ")
    }
}

/// The `schedules list` table.
fn schedules_table(answer: &Value) -> String {
    let rows: Vec<Vec<String>> = answer["schedules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let definition = &s["definition"];
            vec![
                text(&s["name"]),
                text(&s["expression"]),
                if s["enabled"] == json!(true) {
                    "yes".to_owned()
                } else {
                    "no".to_owned()
                },
                text(&definition["instance_id"]),
                text(&definition["name_template"]),
                retention(definition),
            ]
        })
        .collect();
    output::table(
        &[
            "NAME",
            "EXPRESSION",
            "ENABLED",
            "INSTANCE",
            "TEMPLATE",
            "KEEPS",
        ],
        &rows,
    )
}

/// What `schedules put` and `schedules show` print.
fn schedule_detail(schedule: &Value) -> String {
    let definition = &schedule["definition"];
    output::pairs(&[
        ("name", text(&schedule["name"])),
        ("expression", text(&schedule["expression"])),
        ("enabled", text(&schedule["enabled"])),
        ("instance", text(&definition["instance_id"])),
        ("name template", text(&definition["name_template"])),
        ("description", text(&definition["description"])),
        ("keeps", retention(definition)),
        ("rule", text(&schedule["rule_name"])),
        ("starts", text(&schedule["state_machine_arn"])),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Cli;
    use clap::Parser;

    fn put_args(argv: &[&str]) -> SchedulePutArgs {
        let cli = Cli::try_parse_from(argv).unwrap();
        match cli.command {
            crate::args::Command::Schedules(ScheduleCommand::Put(args)) => *args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn put_flags_become_the_api_body() {
        let args = put_args(&[
            "amiforge",
            "schedules",
            "put",
            "nightly",
            "--cron",
            "0 3 * * ? *",
            "--instance",
            "i-0123abcd",
            "--name-template",
            "web-{date}",
            "--account",
            "012345678901",
            "--keep-last",
            "7",
            "--tag",
            "team=web",
        ]);
        let body = put_body(&args);
        assert_eq!(body["expression"], "cron(0 3 * * ? *)");
        assert_eq!(body["sharing"]["accounts"][0], "012345678901");
        assert_eq!(body["retention"], json!({"keep_last": 7}));
        assert_eq!(body["tags"]["team"], "web");
        assert_eq!(body["no_reboot"], true);
        assert_eq!(body["enabled"], true);
    }

    #[test]
    fn put_needs_a_cron_or_a_rate() {
        let err = Cli::try_parse_from([
            "amiforge",
            "schedules",
            "put",
            "nightly",
            "--instance",
            "i-0123abcd",
            "--name-template",
            "web-{date}",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("--cron"), "{err}");
    }

    #[test]
    fn the_list_shows_what_each_schedule_keeps() {
        let answer = json!({"schedules": [{
            "name": "nightly",
            "expression": "rate(1 day)",
            "enabled": true,
            "definition": {
                "instance_id": "i-0123abcd",
                "name_template": "web-{date}",
                "retention": {"keep_last": 3, "max_age_days": 30},
            },
        }]});
        let text = schedules_table(&answer);
        assert!(text.contains("nightly"), "{text}");
        assert!(text.contains("newest 3 or younger than 30 days"), "{text}");
    }
}
