//! The deployment template (`infra/template.yaml`) against the code, offline: every function is
//! given exactly the amiforge settings its code reads, its role allows exactly the AWS actions
//! its code calls (derived from the `from_sdk("Operation", ..)` calls of the AWS adapters and the
//! adapter methods each function's sources reach), EC2 changes are tag-conditioned, the HTTP API
//! serves exactly the api function's routes, and each state machine may invoke only the
//! functions its definition names.
//!
//! The template is read through PyYAML, from `.venv-infra/` (made by `dev/check-infra`) or
//! `.venv/` (made by `dev/stack`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // in tests a panic is the failure report

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use amiforge::config::{self, Config};
use amiforge_tests::repo_root;
use serde_json::Value;

/// The AWS adapters: where the SDK calls are, the IAM service prefix of their client, and the
/// names the rest of the code calls them by.
const ADAPTERS: [(&str, &str, &[&str]); 6] = [
    ("shared/src/aws/ec2.rs", "ec2", &["ec2"]),
    ("shared/src/aws/events.rs", "events", &["rules"]),
    ("shared/src/aws/s3.rs", "s3", &["manifests"]),
    ("shared/src/aws/kms.rs", "kms", &["kms"]),
    ("shared/src/aws/sfn.rs", "states", &["executions"]),
    ("shared/src/jobs/dynamo.rs", "dynamodb", &["jobs", "store"]),
];

/// SDK operations whose IAM action has another name.
const ACTION_NAMES: [(&str, &str); 5] = [
    ("s3:HeadObject", "s3:GetObject"),
    ("s3:ListObjectsV2", "s3:ListBucket"),
    ("s3:ListObjects", "s3:ListBucket"),
    ("s3:DeleteObjects", "s3:DeleteObject"),
    ("s3:HeadBucket", "s3:ListBucket"),
];

/// Actions an SDK operation needs besides its own: S3 answers HeadObject of a missing key
/// with 403 instead of 404 unless the caller may also list the bucket.
const ALSO_NEEDED: [(&str, &str); 1] = [("s3:HeadObject", "s3:ListBucket")];

/// Actions EC2 cannot scope to a resource, the only ones allowed on `*`.
fn unscoped_action(action: &str) -> bool {
    action.starts_with("ec2:Describe") || action == "ec2:GetImageBlockPublicAccessState"
}

/// EC2 actions that change or delete existing resources, which must carry a tag condition.
const EC2_MUTATING: [&str; 7] = [
    "ec2:CreateTags",
    "ec2:DeleteSnapshot",
    "ec2:DeregisterImage",
    "ec2:ModifyImageAttribute",
    "ec2:ModifySnapshotAttribute",
    "ec2:StartInstances",
    "ec2:StopInstances",
];

fn path(relative: &str) -> PathBuf {
    repo_root().join(relative)
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---- the template ----------------------------------------------------------------------------

/// Short-form CloudFormation tags (`!Ref`, `!GetAtt`, `!Sub`, ...) become their long form.
const YAML_TO_JSON: &str = r#"
import json, sys, yaml
class Loader(yaml.SafeLoader):
    pass
def tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix: value}
Loader.add_multi_constructor("!", tagged)
with open(sys.argv[1]) as f:
    json.dump(yaml.load(f, Loader=Loader), sys.stdout, default=str)
"#;

fn template() -> &'static Value {
    static TEMPLATE: OnceLock<Value> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let file = path("infra/template.yaml");
        let pythons = [".venv-infra/bin/python3", ".venv/bin/python3"];
        for python in pythons.iter().map(|p| path(p)).filter(|p| p.exists()) {
            let output = Command::new(&python)
                .args(["-c", YAML_TO_JSON])
                .arg(&file)
                .output()
                .unwrap();
            if output.status.success() {
                return serde_json::from_slice(&output.stdout).unwrap();
            }
            eprintln!(
                "{}: {}",
                python.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        panic!(
            "no Python with PyYAML in {pythons:?} could read {}; run dev/check-infra, which \
             creates .venv-infra",
            file.display()
        );
    })
}

fn resources() -> &'static serde_json::Map<String, Value> {
    template()["Resources"].as_object().expect("Resources")
}

fn resource_type(name: &str) -> &'static str {
    resources()
        .get(name)
        .and_then(|r| r["Type"].as_str())
        .unwrap_or_else(|| panic!("no resource {name}"))
}

/// The resource a `!Ref X` or `!GetAtt X.Arn` names.
fn referenced(value: &Value) -> Option<&str> {
    value["Ref"]
        .as_str()
        .or_else(|| value["Fn::GetAtt"][0].as_str())
}

fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Function binary name -> logical id, from the cargo-lambda build metadata.
fn template_functions() -> BTreeMap<String, String> {
    resources()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(id, r)| {
            assert_eq!(
                r["Metadata"]["BuildMethod"], "rust-cargolambda",
                "{id} must be built by cargo-lambda"
            );
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: Metadata.BuildProperties.Binary"));
            (binary.to_owned(), id.clone())
        })
        .collect()
}

/// The function binaries of the workspace: the folders under `functions/`.
fn function_names() -> BTreeSet<String> {
    fs::read_dir(path("functions"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// A function's environment: the template's `Globals` with its own variables over them.
fn environment(function_id: &str) -> BTreeMap<String, Value> {
    let mut vars = BTreeMap::new();
    let global = &template()["Globals"]["Function"]["Environment"]["Variables"];
    let own = &resources()[function_id]["Properties"]["Environment"]["Variables"];
    for source in [global, own] {
        if let Some(map) = source.as_object() {
            vars.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    vars
}

/// The Allow statements of the role a resource runs as.
fn role_statements(resource_id: &str) -> Vec<&'static Value> {
    let role_ref = &resources()[resource_id]["Properties"]["Role"];
    let role = referenced(role_ref)
        .unwrap_or_else(|| panic!("{resource_id}: Role must be !GetAtt <role>.Arn"));
    assert_eq!(
        resource_type(role),
        "AWS::IAM::Role",
        "{resource_id}: {role}"
    );
    let role = &resources()[role];
    assert!(
        role["Properties"]["ManagedPolicyArns"].is_null(),
        "{resource_id}: managed policies would grant unlisted actions"
    );
    let mut statements = Vec::new();
    for policy in as_list(&role["Properties"]["Policies"]) {
        for statement in as_list(&policy["PolicyDocument"]["Statement"]) {
            assert_eq!(statement["Effect"], "Allow", "{resource_id}: {statement}");
            statements.push(statement);
        }
    }
    statements
}

fn actions_of(statement: &Value) -> Vec<&str> {
    as_list(&statement["Action"])
        .into_iter()
        .map(|a| a.as_str().expect("an action is a string"))
        .collect()
}

// ---- the code --------------------------------------------------------------------------------

/// Rust code without comments and without the trailing test module (`#[cfg(test)]` and
/// everything after it), with the blanks around `.` and `::` removed so that a call split over
/// lines reads `pipeline.ec2.describe_images(`.
fn code_of(file: &Path) -> String {
    let text = read(file);
    let text = text.find("#[cfg(test)]").map_or(&text[..], |i| &text[..i]);
    let mut code = String::new();
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            code.push(c);
            match c {
                '\\' => code.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            code.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            code.push('\n');
        } else {
            code.push(c);
        }
    }
    let mut tight = String::new();
    let mut blank = false;
    for c in code.chars() {
        if c.is_whitespace() {
            blank = true;
            continue;
        }
        if blank && !matches!(c, '.' | ':') && !tight.ends_with(['.', ':']) {
            tight.push(' ');
        }
        blank = false;
        tight.push(c);
    }
    tight
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn ident_at(text: &str) -> &str {
    let end = text.find(|c| !is_ident(c)).unwrap_or(text.len());
    &text[..end]
}

/// Positions right after each `word` that stands alone (no identifier character before it).
fn after_word<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(word)
        .filter(move |(i, _)| !code[..*i].ends_with(is_ident))
        .map(move |(i, _)| i + word.len())
}

/// `name` of every `receiver.name(` in the code.
fn methods_called_on(code: &str, receiver: &str) -> BTreeSet<String> {
    let dotted = format!("{receiver}.");
    after_word(code, &dotted)
        .filter_map(|at| {
            let name = ident_at(&code[at..]);
            (!name.is_empty() && code[at + name.len()..].starts_with('(')).then(|| name.to_owned())
        })
        .collect()
}

/// Each `fn` of an adapter file with the SDK operations it calls, directly or through `self.`
/// and `Self::` helpers.
fn adapter_operations(file: &Path, service: &str) -> HashMap<String, BTreeSet<String>> {
    let code = code_of(file);
    let starts: Vec<usize> = after_word(&code, "fn ").collect();
    let mut direct: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut helpers: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (n, &start) in starts.iter().enumerate() {
        let name = ident_at(&code[start..]).to_owned();
        let body = &code[start..starts.get(n + 1).copied().unwrap_or(code.len())];
        let ops = direct.entry(name.clone()).or_default();
        for at in after_word(body, "from_sdk(\"") {
            ops.insert(ident_at(&body[at..]).to_owned());
        }
        for at in after_word(body, "wait_until_") {
            let waiter = ident_at(&body[at..]);
            let describe = match waiter.split('_').next() {
                Some("instance") => "DescribeInstances",
                Some("snapshot") => "DescribeSnapshots",
                Some("image") => "DescribeImages",
                Some("volume") => "DescribeVolumes",
                _ => panic!("{}: which call does waiter {waiter} make?", file.display()),
            };
            ops.insert(describe.to_owned());
        }
        if service == "ec2" && body.contains(".tag_specifications(") {
            // Tagging on creation needs ec2:CreateTags beside the create action.
            ops.insert("CreateTags".to_owned());
        }
        let called = helpers.entry(name).or_default();
        called.extend(methods_called_on(body, "self"));
        for at in after_word(body, "Self::") {
            called.insert(ident_at(&body[at..]).to_owned());
        }
    }
    let mut all = direct.clone();
    loop {
        let mut grew = false;
        for (name, called) in &helpers {
            let reached: BTreeSet<String> = called
                .iter()
                .filter_map(|h| all.get(h))
                .flatten()
                .cloned()
                .collect();
            let ops = all.get_mut(name).unwrap();
            let before = ops.len();
            ops.extend(reached);
            grew |= ops.len() > before;
        }
        if !grew {
            return all;
        }
    }
}

fn iam_action(service: &str, operation: &str) -> String {
    let action = format!("{service}:{operation}");
    ACTION_NAMES
        .iter()
        .find(|(sdk, _)| *sdk == action)
        .map_or(action, |(_, iam)| (*iam).to_owned())
}

/// The module paths a file names: `crate::a::{b, c::D}` gives `[a, b]` and `[a, c, D]`.
fn paths_after(code: &str, root: &str) -> Vec<Vec<String>> {
    fn tree_end(text: &str) -> usize {
        let mut depth = 0;
        for (i, c) in text.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => return i,
                '}' => depth -= 1,
                c if depth == 0 && !(is_ident(c) || c == ':' || c == '*') => return i,
                _ => {}
            }
        }
        text.len()
    }
    fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        if let Some(group) = tree.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            let (mut depth, mut from) = (0, 0);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(prefix, &group[from..i], out);
                        from = i + 1;
                    }
                    _ => {}
                }
            }
            expand(prefix, &group[from..], out);
            return;
        }
        match tree.split_once("::") {
            Some((head, rest)) => {
                let mut next = prefix.to_vec();
                next.push(head.to_owned());
                expand(&next, rest, out);
            }
            None => {
                let mut path = prefix.to_vec();
                if !tree.is_empty() && tree != "self" && tree != "*" {
                    path.push(tree.to_owned());
                }
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    for at in after_word(code, root) {
        let rest = &code[at..];
        expand(&[], &rest[..tree_end(rest)], &mut paths);
    }
    paths
}

/// The shared library's source file a module path lives in (the deepest that exists).
fn shared_file(path: &[String]) -> PathBuf {
    let src = path_of_shared();
    for k in (1..=path.len()).rev() {
        let base = src.join(path[..k].join("/"));
        for candidate in [base.with_extension("rs"), base.join("mod.rs")] {
            if candidate.exists() {
                return candidate;
            }
        }
    }
    src.join("lib.rs")
}

fn path_of_shared() -> PathBuf {
    path("shared/src")
}

/// The module path of a shared source file: `shared/src/steps/mod.rs` is `[steps]`.
fn module_of(file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(path_of_shared()).unwrap();
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// A function crate's own code, without its test modules.
fn own_files(function: &str) -> Vec<PathBuf> {
    rust_files(&path(&format!("functions/{function}/src")))
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n != "tests.rs"))
        .filter(|f| !f.iter().any(|part| part == "tests"))
        .collect()
}

/// The shared modules a function can reach: those named by `amiforge::`, `crate::` and
/// `super::` paths from its own code on (test modules excluded).
fn shared_files_of(function: &str) -> BTreeSet<PathBuf> {
    let mut todo: Vec<PathBuf> = own_files(function)
        .iter()
        .flat_map(|f| paths_after(&code_of(f), "amiforge::"))
        .map(|p| shared_file(&p))
        .collect();
    let mut reached = BTreeSet::new();
    while let Some(file) = todo.pop() {
        if !reached.insert(file.clone()) {
            continue;
        }
        for (_, target) in imports(&file) {
            todo.push(target);
        }
    }
    reached
}

/// What a shared file's paths name: last segment -> the file it lives in.
fn imports(file: &Path) -> Vec<(String, PathBuf)> {
    let code = code_of(file);
    let module = module_of(file);
    let mut paths = paths_after(&code, "crate::");
    for relative in paths_after(&code, "super::") {
        let mut full = module[..module.len().saturating_sub(1)].to_vec();
        full.extend(relative);
        paths.push(full);
    }
    paths
        .into_iter()
        .filter_map(|p| Some((p.last()?.clone(), shared_file(&p))))
        .collect()
}

/// One `fn` of a file: its name and its text up to the next `fn`.
struct Item {
    file: PathBuf,
    name: String,
    body: String,
}

impl Item {
    /// Whether it takes `self`, so that `.name(` can call it.
    fn is_method(&self) -> bool {
        self.body.split_once('(').is_some_and(|(_, params)| {
            let params = params.trim_start_matches("&mut ").trim_start_matches('&');
            params.starts_with("self") || params.starts_with("mut self")
        })
    }
}

fn items_of(file: &Path) -> Vec<Item> {
    let code = code_of(file);
    let starts: Vec<usize> = after_word(&code, "fn ").collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| Item {
            file: file.to_owned(),
            name: ident_at(&code[start..]).to_owned(),
            body: code[start..starts.get(n + 1).copied().unwrap_or(code.len())].to_owned(),
        })
        .collect()
}

/// The code a function runs: its own crate whole, and each shared `fn` reachable from it by
/// name. A call `q::name(` reaches `name` in a module `q` (or in an `impl Q`); `.name(` reaches
/// methods named `name`; a bare `name` reaches a `fn` of the same file or one imported by
/// name. Calls on the adapters are read separately, from what this returns.
fn code_run_by(function: &str) -> Vec<String> {
    let adapter_files: BTreeSet<PathBuf> = ADAPTERS.iter().map(|(f, _, _)| path(f)).collect();
    let config_file = path("shared/src/config.rs");
    let files: Vec<PathBuf> = shared_files_of(function)
        .into_iter()
        .filter(|f| !adapter_files.contains(f) && *f != config_file)
        .collect();
    let items: Vec<Item> = files.iter().flat_map(|f| items_of(f)).collect();
    let imported: HashMap<&PathBuf, Vec<(String, PathBuf)>> =
        files.iter().map(|f| (f, imports(f))).collect();
    let code_by_file: HashMap<&PathBuf, String> = files.iter().map(|f| (f, code_of(f))).collect();
    let own: Vec<String> = own_files(function).iter().map(|f| code_of(f)).collect();
    let own_imported: Vec<(String, PathBuf)> = own
        .iter()
        .flat_map(|code| paths_after(code, "amiforge::"))
        .filter_map(|p| Some((p.last()?.clone(), shared_file(&p))))
        .collect();

    let callees = |from: Option<&PathBuf>, body: &str| -> Vec<usize> {
        let mut found = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let name = ident_at(&body[at..]);
            if name.is_empty() || body[..at].ends_with(is_ident) {
                at += body[at..].chars().next().map_or(1, char::len_utf8);
                continue;
            }
            let before = &body[..at];
            let calls = body[at + name.len()..].starts_with('(');
            let matches = |item: &Item| -> bool {
                if item.name != name || before.ends_with("fn ") {
                    return false;
                }
                if before.ends_with('.') {
                    return calls && item.is_method();
                }
                if let Some(path) = before.strip_suffix("::") {
                    let qualifier = &path[path.rfind(|c| !is_ident(c)).map_or(0, |i| i + 1)..];
                    if qualifier == "Self" {
                        return Some(&item.file) == from;
                    }
                    if qualifier.starts_with(char::is_uppercase) {
                        let code = &code_by_file[&item.file];
                        return code.contains(&format!("impl {qualifier}"))
                            || code.contains(&format!("for {qualifier}"));
                    }
                    let module = module_of(&item.file);
                    return match qualifier {
                        "super" => from.is_some_and(|f| {
                            let from = module_of(f);
                            module[..] == from[..from.len().saturating_sub(1)]
                        }),
                        "crate" | "amiforge" => module.is_empty(),
                        q => module.last().is_some_and(|m| m == q),
                    };
                }
                // A bare name is a call, or a function passed as the only argument.
                let passed = before.ends_with('(') && body[at + name.len()..].starts_with(')');
                if !(calls || passed) {
                    return false;
                }
                Some(&item.file) == from
                    || from.is_some_and(|f| {
                        imported[f]
                            .iter()
                            .any(|(n, target)| n == name && *target == item.file)
                    })
                    || (from.is_none()
                        && own_imported
                            .iter()
                            .any(|(n, target)| n == name && *target == item.file))
            };
            found.extend(
                items
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| matches(item))
                    .map(|(i, _)| i),
            );
            at += name.len();
        }
        found
    };

    let mut reached = BTreeSet::new();
    let mut todo: Vec<usize> = own.iter().flat_map(|code| callees(None, code)).collect();
    while let Some(i) = todo.pop() {
        if reached.insert(i) {
            todo.extend(callees(Some(&items[i].file), &items[i].body));
        }
    }
    own.into_iter()
        .chain(reached.into_iter().map(|i| items[i].body.clone()))
        .collect()
}

/// The IAM actions a function's code calls: each adapter method its code calls, through the
/// adapter's own helpers, down to the SDK operations.
fn actions_called(function: &str) -> BTreeSet<String> {
    let code = code_run_by(function);
    let mut actions = BTreeSet::new();
    for (file, service, receivers) in ADAPTERS {
        let operations = adapter_operations(&path(file), service);
        for body in &code {
            for receiver in receivers {
                for method in methods_called_on(body, receiver) {
                    for operation in operations.get(&method).into_iter().flatten() {
                        actions.insert(iam_action(service, operation));
                        let sdk = format!("{service}:{operation}");
                        actions.extend(
                            ALSO_NEEDED
                                .iter()
                                .filter(|(op, _)| *op == sdk)
                                .map(|(_, also)| (*also).to_owned()),
                        );
                    }
                }
            }
        }
    }
    actions
}

// ---- the settings ----------------------------------------------------------------------------

/// Values some setting accepts; each variable is tried with these in turn.
const PROBES: [&str; 4] = [
    "7",
    "123456789012",
    "probe-value",
    "arn:aws:states:us-east-1:123456789012:stateMachine:probe",
];

fn parse(vars: &HashMap<String, String>) -> Result<Config, config::ConfigError> {
    Config::from_vars(vars)
}

/// The fewest variables `Config` starts with: the required ones, each with a value it accepts.
fn required_settings() -> HashMap<String, String> {
    let mut vars = HashMap::new();
    for _ in 0..config::ALL.len() {
        let Err(err) = parse(&vars) else {
            return vars;
        };
        let value = PROBES
            .iter()
            .find(|probe| {
                let mut tried = vars.clone();
                tried.insert(err.name.to_owned(), (**probe).to_owned());
                parse(&tried).map_or_else(|e| e.name != err.name, |_| true)
            })
            .unwrap_or_else(|| panic!("no probe value suits {}", err.name));
        vars.insert(err.name.to_owned(), (*value).to_owned());
    }
    panic!("Config does not start with every required variable set: {vars:?}")
}

/// `Config`'s fields as its pretty `Debug` shows them: field name -> text.
fn fields(config: &Config) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut current = None;
    for line in format!("{config:#?}").lines().skip(1) {
        let top = line.strip_prefix("    ").filter(|l| !l.starts_with(' '));
        if let Some((name, _)) = top.and_then(|l| l.split_once(':')) {
            current = Some(name.to_owned());
        }
        if let Some(name) = &current {
            fields
                .entry(name.clone())
                .or_insert_with(String::new)
                .push_str(line);
        }
    }
    fields
}

/// Which `Config` fields each variable fills, found by setting it and seeing what changes.
fn fields_of_variables() -> BTreeMap<&'static str, BTreeSet<String>> {
    let base = required_settings();
    let before = fields(&parse(&base).unwrap());
    config::ALL
        .iter()
        .map(|&name| {
            let changed = PROBES
                .iter()
                .filter_map(|probe| {
                    let mut vars = base.clone();
                    vars.insert(name.to_owned(), (*probe).to_owned());
                    let after = fields(&parse(&vars).ok()?);
                    let changed: BTreeSet<String> = after
                        .iter()
                        .filter(|(field, text)| before.get(*field) != Some(*text))
                        .map(|(field, _)| field.clone())
                        .collect();
                    (!changed.is_empty()).then_some(changed)
                })
                .next()
                .unwrap_or_else(|| panic!("no probe value of {name} changes Config"));
            (name, changed)
        })
        .collect()
}

/// The variables a function needs: the required ones, and those filling a `Config` field that
/// its code reads (`config.<field>`).
fn settings_needed(function: &str) -> BTreeSet<String> {
    let read: BTreeSet<String> = code_run_by(function)
        .iter()
        .flat_map(|c| {
            after_word(c, "config.")
                .map(|at| ident_at(&c[at..]).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut needed: BTreeSet<String> = required_settings().into_keys().collect();
    for (name, fields) in fields_of_variables() {
        if fields.iter().any(|f| read.contains(f)) {
            needed.insert(name.to_owned());
        }
    }
    needed
}

// ---- the tests -------------------------------------------------------------------------------

/// The template deploys every function binary of the workspace, and nothing else as a function.
#[test]
fn every_function_is_deployed() {
    let deployed: BTreeSet<String> = template_functions().into_keys().collect();
    assert_eq!(deployed, function_names());
}

/// Each function gets exactly the `AMIFORGE_*` variables its code reads (the required ones and
/// those whose `Config` field it uses), each naming a resource of the right kind.
#[test]
fn functions_get_exactly_the_settings_they_read() {
    let known: BTreeSet<&str> = config::ALL.into_iter().collect();
    let mut problems = Vec::new();
    for (function, id) in template_functions() {
        let env = environment(&id);
        let set: BTreeSet<String> = env
            .keys()
            .filter(|k| k.starts_with("AMIFORGE_"))
            .cloned()
            .collect();
        for unknown in set.iter().filter(|k| !known.contains(k.as_str())) {
            problems.push(format!("{function}: {unknown} is not in config::ALL"));
        }
        let needed = settings_needed(&function);
        if set != needed {
            problems.push(format!(
                "{function}: template sets {set:?}, code reads {needed:?}"
            ));
        }
        for (name, kind) in [
            (config::JOBS_TABLE, "AWS::DynamoDB::Table"),
            (config::BUCKET, "AWS::S3::Bucket"),
            (
                config::BUILD_STATE_MACHINE_ARN,
                "AWS::Serverless::StateMachine",
            ),
            (
                config::PURGE_STATE_MACHINE_ARN,
                "AWS::Serverless::StateMachine",
            ),
        ] {
            if let Some(value) = env.get(name) {
                let target = value["Ref"].as_str().map(resource_type);
                if target != Some(kind) {
                    problems.push(format!("{function}: {name} must be !Ref to a {kind}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Each function's role allows exactly the AWS actions its code calls, for the services the
/// adapters use.
#[test]
fn roles_allow_exactly_the_actions_called() {
    let services: BTreeSet<&str> = ADAPTERS.iter().map(|(_, s, _)| *s).collect();
    let mut problems = Vec::new();
    for (function, id) in template_functions() {
        let called = actions_called(&function);
        assert!(!called.is_empty(), "{function}: no AWS call found");
        let allowed: BTreeSet<String> = role_statements(&id)
            .iter()
            .flat_map(|s| actions_of(s))
            .filter(|a| a.split_once(':').is_some_and(|(s, _)| services.contains(s)))
            .map(str::to_owned)
            .collect();
        if allowed != called {
            problems.push(format!(
                "{function}:\n  missing from the role: {:?}\n  allowed but never called: {:?}",
                called.difference(&allowed).collect::<Vec<_>>(),
                allowed.difference(&called).collect::<Vec<_>>()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Only actions EC2 cannot scope are allowed on every resource, and every statement that lets a
/// function change or delete an EC2 resource carries a condition (the amiforge tag).
#[test]
fn policies_are_scoped_and_ec2_changes_conditioned() {
    let mut problems = Vec::new();
    let roles: Vec<String> = resources()
        .iter()
        .filter(|(_, r)| !r["Properties"]["Role"].is_null())
        .map(|(id, _)| id.clone())
        .collect();
    for id in roles {
        for statement in role_statements(&id) {
            let everywhere = as_list(&statement["Resource"]).iter().any(|r| *r == "*");
            for action in actions_of(statement) {
                if action.contains('*') {
                    problems.push(format!("{id}: wildcard action {action}"));
                }
                let log_delivery = action.starts_with("logs:") && action.contains("Deliver")
                    || matches!(
                        action,
                        "logs:PutResourcePolicy"
                            | "logs:DescribeResourcePolicies"
                            | "logs:DescribeLogGroups"
                    );
                if everywhere && !unscoped_action(action) && !log_delivery {
                    problems.push(format!("{id}: {action} on every resource"));
                }
                if EC2_MUTATING.contains(&action) && statement["Condition"].is_null() {
                    problems.push(format!("{id}: {action} without a tag condition"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The api function's HTTP API events are exactly the routes its code serves, on an HTTP API
/// with IAM authorization.
#[test]
fn http_api_serves_exactly_the_api_routes() {
    let code = code_of(&path("functions/api/src/routes.rs"));
    let table = code
        .split_once("ROUTES:")
        .and_then(|(_, rest)| rest.split_once("];"))
        .map(|(table, _)| table)
        .expect("ROUTES in functions/api/src/routes.rs");
    let quoted: Vec<&str> = table.split('"').skip(1).step_by(2).collect();
    let served: BTreeSet<(String, String)> = quoted
        .chunks(2)
        .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
        .collect();
    assert!(!served.is_empty());

    let api = &template_functions()["api"];
    let mut routed = BTreeSet::new();
    for event in resources()[api]["Properties"]["Events"]
        .as_object()
        .expect("api Events")
        .values()
    {
        assert_eq!(event["Type"], "HttpApi", "{event}");
        let properties = &event["Properties"];
        let http_api = referenced(&properties["ApiId"]).expect("ApiId: !Ref <HttpApi>");
        assert_eq!(resource_type(http_api), "AWS::Serverless::HttpApi");
        let auth = &resources()[http_api]["Properties"]["Auth"];
        assert_eq!(auth["DefaultAuthorizer"], "AWS_IAM", "{http_api}");
        assert_eq!(auth["EnableIamAuthorizer"], true, "{http_api}");
        routed.insert((
            properties["Method"].as_str().unwrap().to_uppercase(),
            properties["Path"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(routed, served);
}

/// Every state machine definition is deployed, and each machine's role may invoke exactly the
/// functions its definition names.
#[test]
fn state_machines_invoke_only_their_functions() {
    let mut deployed = BTreeSet::new();
    for (id, resource) in resources() {
        if resource["Type"] != "AWS::Serverless::StateMachine" {
            continue;
        }
        let properties = &resource["Properties"];
        let uri = properties["DefinitionUri"].as_str().expect("DefinitionUri");
        let file = path("infra").join(uri);
        deployed.insert(fs::canonicalize(&file).unwrap_or(file.clone()));
        let definition = read(&file);
        let substitutions = &properties["DefinitionSubstitutions"];
        let mut named = BTreeSet::new();
        for rest in definition.split("${").skip(1) {
            let variable = rest.split('}').next().unwrap();
            let target = referenced(&substitutions[variable])
                .unwrap_or_else(|| panic!("{id}: ${{{variable}}} has no substitution"));
            named.insert(target.to_owned());
        }
        let invokable: BTreeSet<String> = role_statements(id)
            .iter()
            .filter(|s| actions_of(s).contains(&"lambda:InvokeFunction"))
            .flat_map(|s| as_list(&s["Resource"]))
            .map(|r| {
                referenced(r)
                    .unwrap_or_else(|| panic!("{id}: invokes {r}"))
                    .to_owned()
            })
            .collect();
        assert_eq!(invokable, named, "{id}");
        for function in &named {
            assert_eq!(resource_type(function), "AWS::Serverless::Function");
        }
    }
    let definitions: BTreeSet<PathBuf> = fs::read_dir(path("statemachine"))
        .unwrap()
        .map(|e| fs::canonicalize(e.unwrap().path()).unwrap())
        .filter(|p| p.to_string_lossy().ends_with(".asl.json"))
        .collect();
    assert_eq!(deployed, definitions);
}

/// The deployed jobs table has the schema the local stack uses (`dev/jobs-table.json`): key,
/// attributes and indexes, on-demand, with point-in-time recovery and a TTL.
#[test]
fn jobs_table_matches_the_local_schema() {
    let local: Value = serde_json::from_str(&read(&path("dev/jobs-table.json"))).unwrap();
    let table = resources()
        .values()
        .find(|r| r["Type"] == "AWS::DynamoDB::Table")
        .expect("a DynamoDB table");
    let properties = &table["Properties"];
    let as_set =
        |v: &Value| -> BTreeSet<String> { as_list(v).iter().map(|i| i.to_string()).collect() };
    for key in [
        "AttributeDefinitions",
        "KeySchema",
        "GlobalSecondaryIndexes",
    ] {
        assert_eq!(as_set(&properties[key]), as_set(&local[key]), "{key}");
    }
    assert_eq!(properties["BillingMode"], local["BillingMode"]);
    assert_eq!(
        properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(properties["TimeToLiveSpecification"]["Enabled"], true);
}

/// Every SDK call goes through an adapter this test reads; one elsewhere would be unchecked.
#[test]
fn aws_calls_are_all_in_adapters() {
    let adapters: Vec<PathBuf> = ADAPTERS.iter().map(|(f, _, _)| path(f)).collect();
    let mut elsewhere = Vec::new();
    for dir in ["shared/src", "functions"] {
        for file in rust_files(&path(dir)) {
            if !adapters.contains(&file) && code_of(&file).contains("from_sdk(\"") {
                elsewhere.push(file.display().to_string());
            }
        }
    }
    assert!(
        elsewhere.is_empty(),
        "AWS calls outside the adapters: {elsewhere:?}"
    );
}

/// The derivation itself finds what is known to be there, so an empty result cannot pass.
#[test]
fn derivation_sees_known_calls_and_settings() {
    let snapshot = actions_called("snapshot");
    for action in [
        "ec2:CreateSnapshots",
        "ec2:CreateTags",
        "ec2:DescribeInstances",
        "dynamodb:GetItem",
    ] {
        assert!(snapshot.contains(action), "{action} in {snapshot:?}");
    }
    assert!(actions_called("api").contains("states:StartExecution"));
    assert!(!actions_called("bundle").contains("ec2:CreateSnapshots"));
    let fields = fields_of_variables();
    assert_eq!(
        fields[config::POLL_MIN_SECONDS],
        BTreeSet::from(["poll".to_owned()])
    );
    assert!(settings_needed("snapshot").contains(config::POLL_MIN_SECONDS));
    assert!(!settings_needed("bundle").contains(config::BUILD_STATE_MACHINE_ARN));
    let all: BTreeSet<String> = function_names()
        .iter()
        .flat_map(|f| actions_called(f))
        .collect();
    eprintln!("actions called by some function: {all:?}");
    for name in function_names() {
        eprintln!(
            "{name}: {:?} {:?}",
            actions_called(&name),
            settings_needed(&name)
        );
    }
}
