//! The state machine definitions against the shared contracts: error names, Task resources,
//! the inputs each Task builds, and the wiring between states. No stack needed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::collections::BTreeSet;

use amiforge::contract::{JobRef, PurgeInput, SnapshotInput};
use amiforge::ErrorType;
use amiforge_tests::repo_root;
use serde_json::{json, Map, Value};

const FILES: [&str; 2] = ["build-image.asl.json", "purge-images.asl.json"];

fn definition(name: &str) -> Value {
    let path = repo_root().join("statemachine").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn states(definition: &Value) -> &Map<String, Value> {
    definition["States"].as_object().expect("States")
}

/// What a Task's `Parameters` become at run time, with sample values for every path.
fn sample_input(parameters: &Value) -> Value {
    let mut input = Map::new();
    for (key, value) in parameters.as_object().expect("Parameters") {
        match key.strip_suffix(".$") {
            Some(name) => {
                let sample = match name {
                    "job_id" => json!("job-20261203-193612-0123abcd"),
                    "execution_arn" => {
                        json!("arn:aws:states:us-east-1:123456789012:execution:build-image:job-1")
                    }
                    "request" => json!({"instance_id": "i-0123abcd", "name": "web-1"}),
                    "error" => json!({"Error": "AmiForge.NotFound", "Cause": "{}"}),
                    "scheduled" => json!({
                        "schedule": "nightly",
                        "definition": {
                            "expression": "rate(1 day)",
                            "name_template": "web-{date}",
                            "instance_id": "i-0123abcd",
                        },
                        "time": "2026-12-03T03:00:00Z",
                    }),
                    "started_at" => json!("2026-12-03T03:00:01.123456+00:00"),
                    "retention" => json!({"keep_last": 2}),
                    other => panic!("no sample for path parameter {other}"),
                };
                input.insert(name.to_owned(), sample);
            }
            None => {
                input.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(input)
}

/// Every `AmiForge.*` error a Retry or Catch names exists in the shared taxonomy, and the
/// retryable type is retried on every Task.
#[test]
fn error_names_match_the_taxonomy() {
    for file in FILES {
        error_names_of(&definition(file));
    }
}

fn error_names_of(build: &Value) {
    let mut named = BTreeSet::new();
    for (name, state) in states(build) {
        for list in ["Retry", "Catch"] {
            for rule in state[list].as_array().into_iter().flatten() {
                for error in rule["ErrorEquals"].as_array().expect("ErrorEquals") {
                    let error = error.as_str().expect("error name");
                    if error.starts_with("AmiForge.") {
                        assert!(
                            ErrorType::from_name(error).is_some(),
                            "{name} names unknown error {error}"
                        );
                        named.insert(error.to_owned());
                    } else {
                        assert!(
                            error.starts_with("States.") || error.starts_with("Lambda."),
                            "{name} names {error}, which is neither ours nor a service error"
                        );
                    }
                }
            }
        }
        if state["Type"] == "Task" {
            let retried = state["Retry"].as_array().into_iter().flatten().any(|r| {
                r["ErrorEquals"]
                    .as_array()
                    .is_some_and(|e| e.contains(&json!(ErrorType::Retryable.as_str())))
            });
            assert!(retried, "{name} does not retry {}", ErrorType::Retryable);
        }
    }
    assert!(named.contains(ErrorType::Retryable.as_str()));
}

/// Every Task's resource is a `${...FunctionArn}` substitution, and the input it builds
/// decodes as that function's contract.
#[test]
fn tasks_use_substituted_functions_and_contract_inputs() {
    let mut functions = BTreeSet::new();
    for file in FILES {
        functions.extend(functions_of(&definition(file)));
    }
    let expected: BTreeSet<String> = ["Snapshot", "Bundle", "Register", "SetPermissions", "Purge"]
        .map(String::from)
        .into();
    assert_eq!(functions, expected);
}

fn functions_of(build: &Value) -> BTreeSet<String> {
    let mut functions = BTreeSet::new();
    for (name, state) in states(build) {
        if state["Type"] != "Task" {
            continue;
        }
        let resource = state["Resource"].as_str().expect("Resource");
        let variable = resource
            .strip_prefix("${")
            .and_then(|r| r.strip_suffix("FunctionArn}"))
            .unwrap_or_else(|| {
                panic!("{name}: resource {resource} is not a ${{...FunctionArn}} substitution")
            });
        functions.insert(variable.to_owned());
        let input = sample_input(&state["Parameters"]);
        let decoded = match variable {
            "Snapshot" => serde_json::from_value::<SnapshotInput>(input.clone()).map(|_| ()),
            "Bundle" | "Register" | "SetPermissions" => {
                serde_json::from_value::<JobRef>(input.clone()).map(|_| ())
            }
            "Purge" => serde_json::from_value::<PurgeInput>(input.clone()).map(|_| ()),
            other => panic!("{name}: no contract for function {other}"),
        };
        decoded.unwrap_or_else(|e| panic!("{name}: {input} does not decode: {e}"));
    }
    functions
}

/// Every Task has a Catch that leads to the cleanup, every `Next` names a state, and the
/// cleanup ends in the Fail state.
#[test]
fn every_failure_path_goes_through_cleanup() {
    let build = definition("build-image.asl.json");
    let all = states(&build);
    assert!(all.contains_key(build["StartAt"].as_str().unwrap()));
    for (name, state) in all {
        if let Some(next) = state["Next"].as_str() {
            assert!(
                all.contains_key(next),
                "{name} goes to missing state {next}"
            );
        }
        for choice in state["Choices"].as_array().into_iter().flatten() {
            assert!(all.contains_key(choice["Next"].as_str().unwrap()));
        }
        if state["Type"] == "Task" && name != "Clean up" {
            let catch = state["Catch"]
                .as_array()
                .unwrap_or_else(|| panic!("{name} has no Catch"));
            assert!(catch
                .iter()
                .any(|c| c["ErrorEquals"] == json!(["States.ALL"]) && c["Next"] == "Clean up"));
            assert_eq!(catch[0]["ResultPath"], "$.error");
        }
    }
    assert_eq!(all["Clean up"]["Next"], "Build failed");
    assert_eq!(all["Build failed"]["Type"], "Fail");
    assert_eq!(
        all["Wait for snapshots"]["SecondsPath"],
        "$.snapshots.wait_seconds"
    );
}
