//! The checks behind the fuzz targets, one function per target.
//!
//! Each takes the fuzzer's bytes, feeds them to the code under test and panics
//! (an `assert!`) when an invariant breaks; a panic inside the code under test is
//! a finding too. The fuzz targets (`fuzz_targets/*.rs`) call these, and so does
//! the regression test `tests/fuzz_regressions.rs`, which includes this file as a
//! module: it must build with only `copper_wasm`, `copper_fetcher`,
//! `copper_markdown`, `serde_json` and `std`.

use copper_wasm::environment::Environment;
use copper_wasm::protocol::{self, Object, Status};
use copper_wasm::services_file::{BackendSpec, ServicesFile};
use copper_wasm::workflow::expression::{
    self, Condition, ConditionScope, Reference, Scope, StepView,
};
use copper_wasm::workflow::graph::Graph;
use copper_wasm::{Workflow, timeout};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// The names of the targets, as in `fuzz_targets/` and `regressions/`.
pub const TARGETS: [&str; 6] = [
    "workflow",
    "services_file",
    "expression",
    "protocol",
    "fetcher_paths",
    "markdown",
];

/// Runs the check of target `name` on `data`; false for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "workflow" => workflow(data),
        "services_file" => services_file(data),
        "expression" => expression(data),
        "protocol" => protocol(data),
        "fetcher_paths" => fetcher_paths(data),
        "markdown" => markdown(data),
        _ => return false,
    }
    true
}

/// The most lines a text can have for a YAML reader (`\n`, `\r` and `\r\n` end lines).
fn line_bound(text: &str) -> u64 {
    (text.matches('\n').count() + text.matches('\r').count() + 1) as u64
}

// ---------------------------------------------------------------------------
// workflow

/// `Workflow::parse`, then what is pure on a parsed workflow.
///
/// Invariants: an error's line and column are from 1 and within the text; a
/// workflow has steps numbered from 1, unique ids, needs that name steps, no
/// cycle, references only to ancestors, retries whose waits stay under their cap;
/// parsing is deterministic.
pub fn workflow(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Path::new("fuzz.yaml");
    let workflow = match Workflow::parse(text, source) {
        Ok(workflow) => workflow,
        Err(error) => {
            assert_eq!(error.file, source);
            assert!(error.line.is_none_or(|l| l >= 1), "line 0: {error:?}");
            assert!(error.column.is_none_or(|c| c >= 1), "column 0: {error:?}");
            assert!(
                error.line.is_none_or(|l| l <= line_bound(text)),
                "line past the end ({} lines): {error:?}",
                line_bound(text)
            );
            assert!(!error.message.is_empty(), "no message: {error:?}");
            let shown = error.to_string();
            assert!(shown.starts_with("fuzz.yaml"), "{shown}");
            return;
        }
    };
    assert!(!workflow.steps.is_empty());
    assert_eq!(workflow.source, source);
    if let Some(deadline) = workflow.timeout {
        assert!(!deadline.is_zero() && deadline <= Duration::from_secs(366 * 86_400));
    }
    let ids: Vec<String> = workflow.steps.iter().map(|s| s.id.clone()).collect();
    let graph = Graph::new(&workflow.steps);
    assert_eq!(graph.cycle(), None, "a parsed workflow has a cycle");
    for (index, step) in workflow.steps.iter().enumerate() {
        assert_eq!(step.number, index + 1);
        assert!(step.line >= 1 && step.line <= line_bound(text), "{step:?}");
        for (field, line) in &step.field_lines {
            assert!(
                *line >= 1 && *line <= line_bound(text),
                "field {field} at line {line}"
            );
        }
        assert!(
            ids.iter().filter(|id| **id == step.id).count() == 1,
            "id {} twice",
            step.id
        );
        assert!(protocol::is_action_topic(&step.action), "{}", step.action);
        assert_eq!(
            protocol::service_of(&step.action),
            step.service(),
            "{}",
            step.action
        );
        for need in &step.needs {
            assert!(ids.contains(need), "needs unknown {need}");
        }
        let ancestors = graph.ancestors(index);
        assert!(
            !ancestors.contains(&index),
            "step {index} is its own ancestor"
        );
        assert_eq!(graph.needs(index).len(), step.needs.len());
        for value in step.entry.values() {
            for reference in expression::references(value).expect("checked by parse") {
                if let Reference::Output { step: other, .. } = reference {
                    let at = ids.iter().position(|id| *id == other).expect("known step");
                    assert!(ancestors.contains(&at), "refers to a step it does not need");
                }
            }
        }
        let _ = step.timeout();
        let _ = step.line_of("action");
        let retry = step.retry;
        assert!(retry.attempts >= 1, "{retry:?}");
        for attempt in 2..=retry.attempts.min(40) {
            let wait = retry.delay(attempt);
            assert!(wait <= retry.max_delay, "{retry:?} waits {wait:?}");
        }
        if let Some(condition) = &step.condition {
            let _ = condition.runs_after_failure();
            let steps = BTreeMap::new();
            let env = BTreeMap::new();
            let scope = ConditionScope {
                steps: &steps,
                env: &env,
                success: true,
            };
            let _ = condition.evaluate(&scope);
        }
        let _ = workflow.problem(step, "action", "x").to_string();
    }
    let _ = workflow.env_problem("X", "x").to_string();
    let actions: Vec<String> = workflow.steps.iter().map(|s| s.action.clone()).collect();
    assert!(workflow.check_actions(&[], &[]).is_err());
    workflow
        .check_actions(&actions, &[])
        .expect("every action is known");
    let again = Workflow::parse(text, source).expect("parsed once");
    assert_eq!(again, workflow, "parsing twice differs");
}

// ---------------------------------------------------------------------------
// services_file

/// `ServicesFile::parse` with an empty `.env`.
///
/// Invariants: an error's line is from 1 and within the text; services have
/// service names, action topics `<name>/<action>`, CPUs in (0, 1024], memory in
/// 6 MiB..=1e15 bytes, absolute container paths, timeouts at most 366 days.
pub fn services_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A folder that does not exist: relative paths resolve against it, never to real files.
    let path = Path::new("/nonexistent-copper-fuzz/copper.yaml");
    let file = match ServicesFile::parse(text, path, Environment::default()) {
        Ok(file) => file,
        Err(error) => {
            assert_eq!(error.file, path);
            assert!(error.line.is_none_or(|l| l >= 1), "line 0: {error:?}");
            assert!(
                error.line.is_none_or(|l| l <= line_bound(text)),
                "line past the end ({} lines): {error:?}",
                line_bound(text)
            );
            assert!(!error.message.is_empty(), "no message: {error:?}");
            let _ = error.to_string();
            return;
        }
    };
    let max = Duration::from_secs(366 * 86_400);
    for service in &file.services {
        assert!(protocol::is_service_name(&service.name), "{}", service.name);
        assert!(service.line >= 1 && service.line <= line_bound(text));
        assert_eq!(file.get(&service.name).map(|s| s.line), Some(service.line));
        for topic in service.topics() {
            assert!(protocol::is_action_topic(&topic), "{topic}");
            assert_eq!(protocol::service_of(&topic), service.name);
        }
        let _ = service.info();
        match &service.backend {
            BackendSpec::Docker(docker) => {
                let mut containers = vec![&docker.container];
                containers.extend(docker.sidecars.iter().map(|s| &s.container));
                for container in containers {
                    if let Some(cpus) = container.cpus {
                        assert!(cpus > 0.0 && cpus <= 1024.0, "cpus {cpus}");
                    }
                    if let Some(memory) = container.memory {
                        assert!(
                            (6 << 20..=1_000_000_000_000_000).contains(&memory),
                            "memory {memory}"
                        );
                    }
                    for volume in &container.volumes {
                        assert!(volume.target.starts_with('/'), "{volume:?}");
                        let _ = volume.bind();
                    }
                }
                assert!(docker.timeout.is_none_or(|t| !t.is_zero() && t <= max));
                for sidecar in &docker.sidecars {
                    assert!(protocol::is_service_name(&sidecar.name), "{}", sidecar.name);
                }
            }
            BackendSpec::Component(source) => {
                let _ = source.to_string();
            }
            BackendSpec::External => {}
        }
    }
}

// ---------------------------------------------------------------------------
// expression

/// The scope of the `expression` target: two steps, two variables, one secret.
struct FuzzScope;

impl Scope for FuzzScope {
    fn output(&self, step: &str, field: &str) -> Option<Value> {
        match (step, field) {
            ("fetch", "total_files") => Some(json!(12)),
            ("fetch", "path") => Some(json!("/fetch/site")),
            ("fetch", "list") => Some(json!([1, "two", {"three": 3.5}])),
            ("build", "ok") => Some(json!(true)),
            ("build", "none") => Some(Value::Null),
            _ => None,
        }
    }
    fn env(&self, name: &str) -> Option<String> {
        match name {
            "ENV" => Some("prod".into()),
            "EMPTY" => Some(String::new()),
            "SITE" => Some("docs".into()),
            _ => None,
        }
    }
    fn is_secret(&self, name: &str) -> bool {
        name == "TOKEN"
    }
}

/// The first line is an `if:` condition, the rest a JSON value (or, when it is not
/// JSON, a text) of step fields.
///
/// `Condition::parse` then `evaluate` against a small scope (success and failure),
/// `references`, `resolve`. Invariants: a reference's names are plain names; when
/// `references` refuses a value, so does `resolve`; a resolved value keeps the
/// shape of the value (same keys, same lengths).
pub fn expression(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (condition, rest) = text.split_once('\n').unwrap_or((text, ""));

    let known = vec![
        "fetch".to_string(),
        "build".to_string(),
        "a-b_c".to_string(),
    ];
    if let Ok(condition) = Condition::parse(condition, &known) {
        let _ = condition.runs_after_failure();
        let mut steps = BTreeMap::new();
        let mut outputs = serde_json::Map::new();
        outputs.insert("total_files".into(), json!(12));
        outputs.insert("path".into(), json!("/fetch/site"));
        outputs.insert("list".into(), json!([1, "two", {"three": 3.5}]));
        outputs.insert("big".into(), json!(u64::MAX));
        outputs.insert("neg".into(), json!(i64::MIN));
        steps.insert(
            "fetch".to_string(),
            StepView {
                status: "success".into(),
                outputs,
            },
        );
        steps.insert(
            "build".to_string(),
            StepView {
                status: "failed".into(),
                outputs: serde_json::Map::new(),
            },
        );
        let mut env = BTreeMap::new();
        env.insert("ENV".to_string(), "prod".to_string());
        env.insert("N".to_string(), "3".to_string());
        for success in [true, false] {
            let scope = ConditionScope {
                steps: &steps,
                env: &env,
                success,
            };
            let _ = condition.evaluate(&scope);
        }
    }

    let value = serde_json::from_str::<Value>(rest).unwrap_or_else(|_| Value::String(rest.into()));
    let references = expression::references(&value);
    if let Ok(references) = &references {
        for reference in references {
            let names: Vec<&str> = match reference {
                Reference::Output { step, field } => vec![step, field],
                Reference::Env(name) | Reference::Secret(name) => vec![name],
                Reference::Trigger(path) | Reference::Item(path) => {
                    path.iter().map(String::as_str).collect()
                }
                Reference::ItemIndex => vec![],
            };
            for name in names {
                assert!(
                    !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                    "reference name {name:?}"
                );
            }
        }
    }
    let resolved = expression::resolve(&value, &FuzzScope);
    if references.is_err() {
        assert!(resolved.is_err(), "resolve took what references refused");
    }
    if let Ok(resolved) = resolved {
        same_shape(&value, &resolved);
    }
}

/// Lists and maps keep their length and keys when resolved.
fn same_shape(before: &Value, after: &Value) {
    match (before, after) {
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len());
            a.iter().zip(b).for_each(|(x, y)| same_shape(x, y));
        }
        (Value::Object(a), Value::Object(b)) => {
            assert!(a.keys().eq(b.keys()), "keys changed");
            a.values()
                .zip(b.values())
                .for_each(|(x, y)| same_shape(x, y));
        }
        (Value::String(_), _) => {}
        (x, y) => assert_eq!(x, y, "a non-text value changed"),
    }
}

// ---------------------------------------------------------------------------
// protocol

/// `parse_finish` on the bytes; topics and names on the text; finishes made by
/// `success_finish` and `failed_finish` read back.
///
/// Invariants: a finish is failed exactly when its entry says `status: failed`; an
/// action topic is two plain levels; a safe name is one path component; a
/// finish round-trips with its status, error, results and correlation id.
pub fn protocol(data: &[u8]) {
    let finish = protocol::parse_finish(data);
    let said_failed = finish.entry.get("status").and_then(Value::as_str) == Some("failed");
    assert_eq!(finish.status == Status::Failed, said_failed);
    assert_eq!(
        finish.correlation_id.as_deref(),
        finish
            .entry
            .get(protocol::CORRELATION_FIELD)
            .and_then(Value::as_str)
    );
    assert_eq!(finish.error.is_some(), finish.entry.contains_key("error"));

    let text = String::from_utf8_lossy(data);
    for name in text.lines().chain([text.as_ref()]) {
        if protocol::is_action_topic(name) {
            let (service, action) = name.split_once('/').expect("two levels");
            assert!(!service.is_empty() && !action.is_empty() && !action.contains('/'));
            assert_eq!(protocol::service_of(name), service);
            for c in ['+', '#', '\0', ' '] {
                assert!(!name.contains(c), "topic {name:?} has {c:?}");
            }
        }
        if protocol::is_safe_name(name) {
            assert!(name.len() <= 128 && !name.contains('/') && !name.contains('\\'));
            assert!(name != "." && name != "..");
            let joined = Path::new("/root").join(name);
            assert_eq!(joined.parent(), Some(Path::new("/root")), "{name:?}");
            assert!(
                matches!(
                    Path::new(name).components().next(),
                    Some(Component::Normal(_))
                ),
                "{name:?}"
            );
        }
        if protocol::is_service_name(name) {
            assert!(protocol::is_safe_name(name) && !name.contains('.'));
        }
        let topic = protocol::finish_topic(name);
        assert!(topic.ends_with("/finish"));
    }

    // Round trips, with the entry read as the request.
    let request: Object = finish.entry.clone();
    let mut results = Object::new();
    results.insert("total_files".into(), json!(data.len()));
    results.insert("echo".into(), json!(text));
    let back = protocol::parse_finish(&protocol::success_finish(&request, &results));
    assert_eq!(
        back.status,
        Status::Success,
        "success_finish read back as failed"
    );
    assert_eq!(back.error, None);
    assert_eq!(back.entry.get("echo"), Some(&json!(text)));
    assert_eq!(back.correlation_id, finish.correlation_id);
    for (key, value) in &request {
        if !["status", "error", "total_files", "echo"].contains(&key.as_str()) {
            assert_eq!(back.entry.get(key), Some(value), "field {key} lost");
        }
    }

    let back = protocol::parse_finish(&protocol::failed_finish(&request, &text, Some(-1)));
    assert_eq!(back.status, Status::Failed);
    assert_eq!(back.error.as_deref(), Some(text.as_ref()));
    assert_eq!(back.entry.get("exit_code"), Some(&json!(-1)));
    assert_eq!(back.correlation_id, finish.correlation_id);

    let payload = protocol::error_payload(&text, finish.correlation_id.as_deref(), &text);
    let value: Value = serde_json::from_slice(&payload).expect("error payload is JSON");
    assert_eq!(value["error"], json!(text));

    let _ = timeout::parse(&Value::String(text.to_string()));
    if let Ok(number) = serde_json::from_slice::<Value>(data)
        && let Ok(duration) = timeout::parse(&number)
    {
        assert!(!duration.is_zero() && duration <= Duration::from_secs(366 * 86_400));
    }
}

// ---------------------------------------------------------------------------
// fetcher_paths

/// True when `path` (relative) stays under its root when joined: only plain
/// components and `.`, never `..`, root or prefix.
fn stays_inside(path: &str) -> bool {
    Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

/// A `fetcher/fetch` request, then, when the input has a tree after a `--` line,
/// a selection of files in a temporary tree built from it.
///
/// The request is the text before `--`: JSON, or else lines `type`, `path` (also
/// `repository` and `url`), `resource`, `dest`, then one filter glob a line. The
/// tree is lines `f <path>` (a file), `d <path>` (a folder), `l <path> <target>`
/// (a symbolic link), built in a fresh temporary folder.
///
/// Invariants: an accepted request's resource and dest are one plain component;
/// a local path and every filter glob stay inside their root; a github URL names
/// `org/repo`; every selected file is a relative path of plain components that
/// resolves (links followed) inside the tree, and the copy writes only inside its
/// destination.
pub fn fetcher_paths(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (request, tree) = match text.split_once("\n--\n") {
        Some((request, tree)) => (request, Some(tree)),
        None => (text, None),
    };
    let value = match serde_json::from_str::<Value>(request) {
        Ok(value) => value,
        Err(_) => {
            let mut lines = request.lines();
            let kind = lines.next().unwrap_or_default();
            let place = lines.next().unwrap_or_default();
            let resource = lines.next().unwrap_or_default();
            let dest = lines.next().unwrap_or_default();
            let filter: Vec<&str> = lines.collect();
            let mut value = json!({
                "type": kind, "path": place, "repository": place, "url": place,
                "resource": resource, "filter": filter,
            });
            if !dest.is_empty() {
                value["dest"] = json!(dest);
            }
            value
        }
    };
    // The globs as given, whether the request is accepted or not.
    let raw_globs: Vec<String> = match value.get("filter") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    if let Ok(filter) = copper_fetcher::Filter::new(&raw_globs) {
        for probe in raw_globs
            .iter()
            .map(String::as_str)
            .chain(["", "a", "content/a.md"])
        {
            let _ = filter.matches(probe);
        }
    }

    let input = match copper_fetcher::FetchInput::from_json(&value) {
        Ok(input) => input,
        Err(why) => {
            assert!(!why.is_empty());
            return;
        }
    };
    for name in [&input.resource, &input.dest] {
        assert!(
            !name.is_empty() && name.len() <= 128 && !name.starts_with('.'),
            "{name:?}"
        );
        assert!(!name.contains('/') && !name.contains('\\'), "{name:?}");
        assert_eq!(
            Path::new("/fetch").join(name).parent(),
            Some(Path::new("/fetch")),
            "{name:?}"
        );
    }
    match &input.source {
        copper_fetcher::Source::Local { path } => {
            assert!(
                !path.is_empty() && stays_inside(path),
                "local path {path:?}"
            );
            assert!(!path.contains('\\'), "local path {path:?}");
            let joined = PathBuf::from(format!("/workspace/{path}"));
            assert!(joined.starts_with("/workspace"), "{joined:?}");
        }
        copper_fetcher::Source::Git { url } => {
            if value
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("github")
                == "github"
            {
                let repo = url
                    .strip_prefix("https://github.com/")
                    .and_then(|r| r.strip_suffix(".git"))
                    .unwrap_or_else(|| panic!("github URL {url:?}"));
                let parts: Vec<&str> = repo.split('/').collect();
                assert!(
                    parts.len() == 2
                        && parts
                            .iter()
                            .all(|p| !p.is_empty() && *p != "." && *p != ".."),
                    "github URL {url:?}"
                );
            }
        }
    }
    for glob in &input.filter {
        assert!(
            !glob.starts_with('/') && !glob.contains('\\'),
            "glob {glob:?}"
        );
        assert!(glob.split('/').all(|p| p != ".."), "glob {glob:?}");
    }
    let Ok(filter) = copper_fetcher::Filter::new(&input.filter) else {
        return;
    };
    if let Some(tree) = tree {
        select_in_tree(tree, &filter, &input.dest);
    }
}

/// A fresh temporary folder for one input (unique per process and call).
fn scratch(kind: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "copper-fuzz-{kind}-{}-{}",
        std::process::id(),
        n % 4
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temporary folder");
    dir
}

/// A relative path of plain components (at most 6, short), else None.
fn plain_relative(path: &str) -> Option<PathBuf> {
    let path = Path::new(path);
    let ok = !path.as_os_str().is_empty()
        && path.as_os_str().len() < 200
        && path.components().count() <= 6
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && !path.to_string_lossy().contains('\0');
    ok.then(|| path.to_path_buf())
}

/// True when no folder between `root` and `path` (both included at the root end,
/// `path` itself excluded) is a symbolic link: creating `path` writes inside `root`.
fn parents_are_real(root: &Path, relative: &Path) -> bool {
    let mut at = root.to_path_buf();
    let parents: Vec<_> = relative.components().collect();
    for component in &parents[..parents.len().saturating_sub(1)] {
        at.push(component);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() || !meta.is_dir() => return false,
            Ok(_) => {}
            Err(_) => {
                if std::fs::create_dir(&at).is_err() {
                    return false;
                }
            }
        }
    }
    true
}

/// Builds the tree described by `tree` and checks `select_files` and `copy_selection`.
fn select_in_tree(tree: &str, filter: &copper_fetcher::Filter, dest: &str) {
    let base = scratch("fetch");
    let root = base.join("repo");
    std::fs::create_dir(&root).expect("root");
    for line in tree.lines().take(24) {
        let mut words = line.splitn(3, ' ');
        let (kind, path) = (words.next(), words.next().and_then(plain_relative));
        let Some(path) = path else { continue };
        if !parents_are_real(&root, &path) {
            continue;
        }
        let at = root.join(&path);
        match kind {
            Some("f") => {
                // create_new: never through an existing link.
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&at);
            }
            Some("d") => {
                let _ = std::fs::create_dir(&at);
            }
            Some("l") => {
                if let Some(target) = words.next().filter(|t| !t.is_empty() && !t.contains('\0')) {
                    let _ = std::os::unix::fs::symlink(target, &at);
                }
            }
            _ => {}
        }
    }
    let canonical_root = root.canonicalize().expect("root");
    if let Ok(selection) = copper_fetcher::select_files(&root, filter) {
        assert!(selection.files.len() <= selection.total_files);
        for file in &selection.files {
            assert!(
                plain_relative(file).is_some() || Path::new(file).components().count() > 6,
                "selected {file:?}"
            );
            assert!(stays_inside(file), "selected {file:?}");
            let resolved = root.join(file).canonicalize();
            if let Ok(resolved) = resolved {
                assert!(
                    resolved.starts_with(&canonical_root),
                    "selected {file:?} resolves outside the repository, to {resolved:?}"
                );
            }
        }
        let out = base.join("fetch").join(dest);
        if copper_fetcher::copy_selection(&root, &selection, &out).is_ok() {
            for file in &selection.files {
                assert!(out.join(file).starts_with(&out));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}

// ---------------------------------------------------------------------------
// markdown

/// Undoes `escape`.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// `page::render` on the text (front matter, GFM), the page in a document,
/// `escape`, `rewrite_link` and `virtual_path` on each line.
///
/// Invariants: escaped text has no `<`, `>`, `"` or `'` and unescapes back; the
/// document's `<title>` holds the escaped title; a rewritten link ends in `.html`
/// (and its anchor); an accepted virtual path is the root or under it, without
/// `.` or `..`.
pub fn markdown(data: &[u8]) {
    use copper_markdown::{layout, page};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let page = page::render(text, "stem");
    let frame = layout::Frame {
        site: "site",
        entries: &[],
        current: None,
        root: "../",
        base_url: None,
        head: "",
        sidebar: None,
    };
    let document = layout::page(&frame, "p.html", &page.title, &page.body, &page.headings);
    let title = page::escape(&page.title);
    assert!(
        document.contains(&format!("<title>{title}</title>")),
        "title not in the document"
    );
    for line in text.lines().chain([text]).take(64) {
        let escaped = page::escape(line);
        assert!(!escaped.contains(['<', '>', '"', '\'']), "{escaped:?}");
        assert_eq!(unescape(&escaped), line);
        if let Some(link) = page::rewrite_link(line) {
            let (path, anchor) = match line.find(['#', '?']) {
                Some(i) => line.split_at(i),
                None => (line, ""),
            };
            assert!(path.to_ascii_lowercase().ends_with(".md"), "{line:?}");
            assert!(
                link.ends_with(&format!(".html{anchor}")),
                "{line:?} -> {link:?}"
            );
            assert!(!link.contains("://"), "{link:?}");
        }
        for root in ["/fetch", "/web"] {
            if let Ok(path) = copper_markdown::virtual_path("path", line, root) {
                assert!(
                    path == root || path.starts_with(&format!("{root}/")),
                    "{path:?}"
                );
                assert!(
                    Path::new(&path)
                        .components()
                        .all(|c| matches!(c, Component::RootDir | Component::Normal(_))),
                    "{line:?} -> {path:?}"
                );
                assert!(Path::new(&path).starts_with(root), "{path:?}");
            }
        }
    }
}
