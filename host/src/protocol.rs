//! copper's wire protocol: topics and the shapes of the messages on them.
//!
//! A request is a workflow entry as a JSON object published on its `action`
//! topic `<service>/<action>`. The service answers on `<topic>/start` (the
//! request), then `<topic>/finish` (a JSON list holding the request entry
//! updated with its results). copper-wasm adds a `correlation_id` to each
//! request and a `status` (`success` / `failed`, with `error`) to each finish;
//! copper's own services ignore the first and runners ignore the second.

use serde_json::{Map, Value, json};

/// The request field carrying the correlation id.
pub const CORRELATION_FIELD: &str = "correlation_id";

/// A JSON object: a request entry or a result.
pub type Object = Map<String, Value>;

/// The service of a topic: its first level (`fetcher` of `fetcher/fetch`).
pub fn service_of(topic: &str) -> &str {
    topic.split('/').next().unwrap_or(topic)
}

/// `<topic>/start`.
pub fn start_topic(topic: &str) -> String {
    format!("{topic}/start")
}

/// `<topic>/finish`.
pub fn finish_topic(topic: &str) -> String {
    format!("{topic}/finish")
}

/// `<topic>/status`: progress of running requests.
pub fn progress_topic(topic: &str) -> String {
    format!("{topic}/status")
}

/// `<topic>/cancel`: a runner gave up on its request `{"correlation_id": …}`; the
/// host running it stops it (a copper-wasm addition; copper's services ignore it).
pub fn cancel_topic(topic: &str) -> String {
    format!("{topic}/cancel")
}

/// `<topic>/log`: lines of a running container's log.
pub fn log_topic(topic: &str) -> String {
    format!("{topic}/log")
}

/// `<service>/status`: retained `up`, `down` as the last will.
pub fn status_topic(service: &str) -> String {
    format!("{service}/status")
}

/// `<service>/describe`: retained, the service's actions and schemas (copper-wasm hosts only).
pub fn describe_topic(service: &str) -> String {
    format!("{service}/describe")
}

/// Second topic levels a service uses for itself, which no action may take.
pub const RESERVED_ACTIONS: [&str; 4] = ["status", "error", "describe", "resources"];

/// `<service>/error`.
pub fn error_topic(service: &str) -> String {
    format!("{service}/error")
}

/// `<service>/resources/<resource>`.
pub fn resource_topic(service: &str, resource: &str) -> String {
    format!("{service}/resources/{resource}")
}

/// True for a topic of the form `<service>/<action>` whose levels are plain names.
pub fn is_action_topic(topic: &str) -> bool {
    let mut levels = topic.split('/');
    let ok = |level: Option<&str>| {
        level.is_some_and(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        })
    };
    ok(levels.next()) && ok(levels.next()) && levels.next().is_none()
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The action produced its results.
    Success,
    /// The action failed; `error` says why.
    Failed,
}

/// A finish message, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    /// The request entry updated with its results (empty when the payload was not JSON).
    pub entry: Object,
    /// The correlation id, when the service kept it.
    pub correlation_id: Option<String>,
    /// `failed` only when the service said so (copper's services never do).
    pub status: Status,
    /// Why it failed.
    pub error: Option<String>,
}

/// Reads a finish payload: copper's list of one entry, a bare entry, or anything
/// else (copper's runner took any message on the finish topic as done).
pub fn parse_finish(payload: &[u8]) -> Finish {
    let value: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
    let entry = match value {
        Value::Array(mut items) if !items.is_empty() => match items.swap_remove(0) {
            Value::Object(map) => map,
            _ => Object::new(),
        },
        Value::Object(map) => map,
        _ => Object::new(),
    };
    let correlation_id = entry
        .get(CORRELATION_FIELD)
        .and_then(Value::as_str)
        .map(str::to_string);
    let failed = entry.get("status").and_then(Value::as_str) == Some("failed");
    let error = entry.get("error").map(|e| match e {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    Finish {
        entry,
        correlation_id,
        status: if failed {
            Status::Failed
        } else {
            Status::Success
        },
        error,
    }
}

/// The finish payload of a successful request: `[request + results + status]`.
pub fn success_finish(request: &Object, results: &Object) -> Vec<u8> {
    as_payload(success_entry(request, results))
}

/// The entry of a successful request's finish: the request, its results, `status`.
pub fn success_entry(request: &Object, results: &Object) -> Object {
    let mut entry = request.clone();
    entry.extend(results.iter().map(|(k, v)| (k.clone(), v.clone())));
    entry.insert("status".into(), json!("success"));
    entry.remove("error");
    entry
}

/// The finish payload of a failed request: `[request + status + error]`, with the
/// `exit_code` of a failed container when there is one.
pub fn failed_finish(request: &Object, error: &str, exit_code: Option<i64>) -> Vec<u8> {
    as_payload(failed_entry(request, error, exit_code))
}

/// The entry of a failed request's finish: the request, `status`, `error` (and
/// `exit_code` when a process failed).
pub fn failed_entry(request: &Object, error: &str, exit_code: Option<i64>) -> Object {
    let mut entry = request.clone();
    entry.insert("status".into(), json!("failed"));
    entry.insert("error".into(), json!(error));
    if let Some(code) = exit_code {
        entry.insert("exit_code".into(), json!(code));
    }
    entry
}

/// copper's finish payload: a list of one entry.
fn as_payload(entry: Object) -> Vec<u8> {
    Value::Array(vec![Value::Object(entry)])
        .to_string()
        .into_bytes()
}

/// The `<service>/error` payload: copper's `{"error": …}` plus where it came from.
pub fn error_payload(topic: &str, correlation_id: Option<&str>, error: &str) -> Vec<u8> {
    let mut body = json!({"error": error, "topic": topic});
    if let Some(id) = correlation_id {
        body[CORRELATION_FIELD] = json!(id);
    }
    body.to_string().into_bytes()
}

/// True for names safe as one topic level and one path component.
pub fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// True for a service name: safe as a topic level and a path component, without a dot.
pub fn is_service_name(name: &str) -> bool {
    is_safe_name(name) && !name.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_round_trip() {
        let mut request = Object::new();
        request.insert("action".into(), json!("fetcher/fetch"));
        request.insert(CORRELATION_FIELD.into(), json!("abc"));
        let mut results = Object::new();
        results.insert("total_files".into(), json!(3));
        let finish = parse_finish(&success_finish(&request, &results));
        assert_eq!(finish.correlation_id.as_deref(), Some("abc"));
        assert_eq!(finish.status, Status::Success);
        assert_eq!(finish.entry["total_files"], json!(3));
        assert_eq!(finish.entry["action"], json!("fetcher/fetch"));

        let failed = parse_finish(&failed_finish(&request, "boom", None));
        assert_eq!(
            (failed.status, failed.error.as_deref()),
            (Status::Failed, Some("boom"))
        );
    }

    #[test]
    fn copper_shapes_are_read() {
        let finish = parse_finish(br#"[{"action":"a/b","path":"/fetch/x"}]"#);
        assert_eq!(
            (finish.correlation_id, finish.status),
            (None, Status::Success)
        );
        assert_eq!(finish.entry["path"], json!("/fetch/x"));
        assert!(parse_finish(b"done").entry.is_empty());
    }

    #[test]
    fn action_topics() {
        assert!(is_action_topic("fetcher/fetch"));
        assert!(!is_action_topic("fetcher"));
        assert!(!is_action_topic("a/b/c"));
        assert!(!is_action_topic("a/+"));
        assert_eq!(service_of("markdown/build"), "markdown");
    }
}
