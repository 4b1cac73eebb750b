//! The `testkit` service, for tests and benchmarks only: `testkit/echo` returns
//! its input, `testkit/count` counts the requests its instance answered,
//! `testkit/fail` fails, `testkit/trap` panics, `testkit/spin` loops forever,
//! `testkit/hog` allocates until memory runs out, `testkit/progress` reports
//! progress and a resource.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ path: "../../wit", world: "plugin" });

    use copper::service::host;
    use copper::service::types::{ActionInfo, ErrorKind, Request, ServiceError, ServiceInfo};

    struct Testkit;

    const ACTIONS: [(&str, &str); 11] = [
        ("echo", "Return the input fields as results"),
        (
            "count",
            "How many requests this instance answered, this one included",
        ),
        ("fail", "Fail with kind `failed`"),
        ("trap", "Panic (a trap)"),
        ("spin", "Loop forever (until the deadline)"),
        ("hog", "Allocate memory until none is left"),
        (
            "progress",
            "Report progress, then a resource named by `resource`",
        ),
        (
            "wc",
            "Count the lines, words and bytes of the file `path` under /fetch",
        ),
        (
            "flaky",
            "Fail the first `fail_times` tries, counted in the file `counter` under /fetch",
        ),
        ("sleep", "Sleep `ms` milliseconds, then echo the input"),
        (
            "read",
            "Read the file `path` (wherever it is) and the environment variable `variable`",
        ),
    ];

    impl exports::copper::service::service::Guest for Testkit {
        fn describe() -> ServiceInfo {
            ServiceInfo {
                name: "testkit".into(),
                // The build mark is patched in the file by the reload tests, to
                // make a new version of the same component.
                version: concat!(env!("CARGO_PKG_VERSION"), "+build.0000").into(),
                actions: ACTIONS
                    .iter()
                    .map(|(name, doc)| ActionInfo {
                        name: name.to_string(),
                        doc: doc.to_string(),
                        input_schema: r#"{"type":"object"}"#.into(),
                        output_schema: r#"{"type":"object"}"#.into(),
                    })
                    .collect(),
                capabilities: vec![],
            }
        }

        fn handle(req: Request) -> Result<String, ServiceError> {
            let action = req.topic.rsplit('/').next().unwrap_or_default();
            match action {
                "count" => {
                    static ANSWERED: std::sync::atomic::AtomicU64 =
                        std::sync::atomic::AtomicU64::new(0);
                    let answered = ANSWERED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    Ok(serde_json::json!({ "answered": answered }).to_string())
                }
                "echo" => {
                    let mut value: serde_json::Value =
                        serde_json::from_str(&req.input).unwrap_or_default();
                    if let Some(map) = value.as_object_mut() {
                        map.remove("action");
                        map.insert("echo_id".into(), req.id.into());
                    }
                    Ok(value.to_string())
                }
                "fail" => Err(ServiceError {
                    kind: ErrorKind::Failed,
                    message: "asked to fail".into(),
                }),
                "trap" => panic!("asked to trap"),
                "spin" => {
                    let mut n: u64 = 0;
                    loop {
                        n = std::hint::black_box(n.wrapping_add(1));
                    }
                }
                "hog" => {
                    let mut blocks: Vec<Vec<u8>> = Vec::new();
                    loop {
                        blocks.push(vec![1u8; 16 << 20]);
                        std::hint::black_box(&blocks);
                    }
                }
                "progress" => {
                    host::progress("half way");
                    let value: serde_json::Value =
                        serde_json::from_str(&req.input).unwrap_or_default();
                    let name = value
                        .get("resource")
                        .and_then(|r| r.as_str())
                        .unwrap_or("testkit");
                    host::announce_resource(name, &req.input).map_err(|message| ServiceError {
                        kind: ErrorKind::InvalidInput,
                        message,
                    })?;
                    Ok("{}".into())
                }
                "flaky" => {
                    let value: serde_json::Value =
                        serde_json::from_str(&req.input).unwrap_or_default();
                    let counter = value.get("counter").and_then(|c| c.as_str()).unwrap_or("");
                    if !counter.starts_with("/fetch/") {
                        return Err(ServiceError {
                            kind: ErrorKind::InvalidInput,
                            message: format!("`counter` must be under /fetch, got `{counter}`"),
                        });
                    }
                    let fail_times = value
                        .get("fail_times")
                        .and_then(|f| f.as_u64())
                        .unwrap_or(0);
                    let tries = std::fs::read_to_string(counter)
                        .ok()
                        .and_then(|t| t.trim().parse::<u64>().ok())
                        .unwrap_or(0)
                        + 1;
                    if let Some(parent) = std::path::Path::new(counter).parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    std::fs::write(counter, tries.to_string()).map_err(|e| ServiceError {
                        kind: ErrorKind::Failed,
                        message: format!("cannot write {counter}: {e}"),
                    })?;
                    if tries <= fail_times {
                        return Err(ServiceError {
                            kind: ErrorKind::Failed,
                            message: format!("failing on purpose (try {tries})"),
                        });
                    }
                    Ok(serde_json::json!({ "tries": tries }).to_string())
                }
                "sleep" => {
                    let value: serde_json::Value =
                        serde_json::from_str(&req.input).unwrap_or_default();
                    // A number, or a text holding one (a value from `${VAR}`).
                    let ms = match value.get("ms") {
                        Some(serde_json::Value::String(text)) => text.trim().parse().unwrap_or(0),
                        Some(other) => other.as_u64().unwrap_or(0),
                        None => 0,
                    };
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    let mut value = value;
                    if let Some(map) = value.as_object_mut() {
                        map.remove("action");
                    }
                    Ok(value.to_string())
                }
                "read" => {
                    let value: serde_json::Value =
                        serde_json::from_str(&req.input).unwrap_or_default();
                    let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or("");
                    let file = match std::fs::read_to_string(text("path")) {
                        Ok(contents) => serde_json::json!(contents),
                        Err(error) => serde_json::json!({"error": error.to_string()}),
                    };
                    let env = std::env::var(text("variable")).ok();
                    Ok(serde_json::json!({"file": file, "env": env}).to_string())
                }
                "wc" => {
                    let value: serde_json::Value =
                        serde_json::from_str(&req.input).unwrap_or_default();
                    let path = value.get("path").and_then(|p| p.as_str()).unwrap_or("");
                    if !path.starts_with("/fetch/") {
                        return Err(ServiceError {
                            kind: ErrorKind::InvalidInput,
                            message: format!("`path` must be under /fetch, got `{path}`"),
                        });
                    }
                    let bytes = std::fs::read(path).map_err(|e| ServiceError {
                        kind: ErrorKind::Failed,
                        message: format!("cannot read {path}: {e}"),
                    })?;
                    let text = String::from_utf8_lossy(&bytes);
                    Ok(serde_json::json!({
                        "lines": bytes.iter().filter(|b| **b == b'\n').count(),
                        "words": text.split_whitespace().count(),
                        "bytes": bytes.len(),
                    })
                    .to_string())
                }
                other => Err(ServiceError {
                    kind: ErrorKind::InvalidInput,
                    message: format!("no action {other}"),
                }),
            }
        }
    }

    export!(Testkit);
}
