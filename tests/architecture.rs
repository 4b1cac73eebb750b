//! The walls of the architecture, checked on the source: which module of the library
//! may name which (docs/architecture.md says why). A new `use crate::…` across a
//! wall fails here, naming the file, the line and the rule it breaks.
//!
//! Modules are the top-level ones of `host/src` (`docker/lambda.rs` belongs to
//! `docker`); an edge is any `crate::<module>` named outside a comment. The command
//! (`cli/`, `main.rs`) is another crate: the compiler keeps it to the public API.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules every other one may share: plain vocabulary, importing only each other.
const VOCABULARY: &[&str] = &["job", "protocol", "schema", "secret", "service", "timeout"];

/// The backends: each a group of modules that must not reach another group.
const BACKENDS: &[(&str, &[&str])] = &[
    ("the component backend", &["component", "capability", "wit"]),
    ("the Docker backend", &["docker"]),
];

/// One `crate::<to>` named in `from`'s file `file` at `line`.
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    file: PathBuf,
    line: usize,
}

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("host/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `host/src` belongs to; none for the command's files.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "cli" | "main" | "lib")).then(|| name.to_string())
}

/// Every `crate::<module>` a file names outside comments.
fn edges() -> Vec<Edge> {
    let root = source_root();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut edges = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap().to_path_buf();
        let Some(from) = module_of(&relative) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (index, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (at, _) in code.match_indices("crate::") {
                let to: String = code[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !to.is_empty() && to != from && to.chars().next().unwrap().is_lowercase() {
                    edges.push(Edge {
                        from: from.clone(),
                        to,
                        file: relative.clone(),
                        line: index + 1,
                    });
                }
            }
        }
    }
    assert!(
        edges.len() > 50,
        "the walls test found only {} edges under {}: is it reading the source?",
        edges.len(),
        root.display()
    );
    edges
}

/// The rooms over the host: capabilities that use it through its public types.
const ROOMS: [&str; 4] = ["api", "control", "hot_reload", "triggers"];

/// Why `edge` breaks a wall, if it does.
fn broken_rule(edge: &Edge) -> Option<String> {
    let (from, to) = (edge.from.as_str(), edge.to.as_str());
    let backend_of = |module: &str| {
        BACKENDS
            .iter()
            .find(|(_, members)| members.contains(&module))
            .map(|(name, _)| *name)
    };
    if VOCABULARY.contains(&from) && !VOCABULARY.contains(&to) {
        return Some(format!(
            "the shared vocabulary ({}) imports only itself",
            VOCABULARY.join(", ")
        ));
    }
    if from == "workflow" && !["protocol", "environment", "secret", "timeout"].contains(&to) {
        return Some("the workflow model knows no runtime".into());
    }
    if let Some(backend) = backend_of(from) {
        if ["runner", "workflow", "scheduler", "host", "progress"].contains(&to) {
            return Some(format!(
                "{backend} imports neither the runner, the workflow model, the scheduler nor the host"
            ));
        }
        if backend_of(to).is_some_and(|other| other != backend) {
            return Some(format!("{backend} does not import another backend"));
        }
    }
    if from == "scheduler" && ["workflow", "runner", "host", "progress"].contains(&to) {
        return Some("the scheduler imports no workflow and no runner".into());
    }
    if from == "bus" && ["broker", "connector", "host", "scheduler", "runner"].contains(&to) {
        return Some("the bus is a client: it knows no broker, scheduler or runner".into());
    }
    if ROOMS.contains(&to) {
        return Some(format!(
            "{to} is a room over the host ({}); nothing imports it",
            ROOMS.join(", ")
        ));
    }
    if to == "host" && !ROOMS.contains(&from) {
        return Some(
            "the host wires everything together; only the rooms over it (the HTTP API, control over MQTT) import it"
                .into(),
        );
    }
    None
}

#[test]
fn no_module_crosses_a_wall() {
    let broken: Vec<String> = edges()
        .iter()
        .filter_map(|edge| {
            broken_rule(edge).map(|why| {
                format!(
                    "host/src/{}:{}: {} -> {}: {why}",
                    edge.file.display(),
                    edge.line,
                    edge.from,
                    edge.to
                )
            })
        })
        .collect();
    assert!(broken.is_empty(), "walls broken:\n{}", broken.join("\n"));
}

#[test]
fn the_modules_form_no_cycle() {
    let mut graph: BTreeMap<String, BTreeMap<String, Edge>> = BTreeMap::new();
    for edge in edges() {
        graph
            .entry(edge.from.clone())
            .or_default()
            .entry(edge.to.clone())
            .or_insert(edge);
    }
    // Depth-first search; a module met again on the current path closes a cycle.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeMap<String, Edge>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if !done.insert(module.to_string()) {
            return None;
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flat_map(|m| m.keys()) {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            let places: Vec<String> = cycle
                .windows(2)
                .map(|pair| {
                    let edge = &graph[&pair[0]][&pair[1]];
                    format!(
                        "  {} -> {} (host/src/{}:{})",
                        pair[0],
                        pair[1],
                        edge.file.display(),
                        edge.line
                    )
                })
                .collect();
            panic!("the modules form a cycle:\n{}", places.join("\n"));
        }
    }
}

#[test]
fn the_rules_catch_what_they_forbid() {
    let edge = |from: &str, to: &str| Edge {
        from: from.into(),
        to: to.into(),
        file: PathBuf::from("x.rs"),
        line: 1,
    };
    for (from, to, forbidden) in [
        ("docker", "component", true),
        ("capability", "docker", true),
        ("component", "runner", true),
        ("docker", "workflow", true),
        ("scheduler", "workflow", true),
        ("workflow", "bus", true),
        ("bus", "broker", true),
        ("secret", "workflow", true),
        ("runner", "host", true),
        ("scheduler", "api", true),
        ("host", "api", true),
        ("api", "host", false),
        ("control", "host", false),
        ("api", "control", true),
        ("host", "control", true),
        ("api", "scheduler", false),
        ("component", "capability", false),
        ("docker", "job", false),
        ("scheduler", "docker", false),
        ("runner", "workflow", false),
        ("workflow", "secret", false),
        ("broker", "bus", false),
        ("host", "runner", false),
    ] {
        assert_eq!(
            broken_rule(&edge(from, to)).is_some(),
            forbidden,
            "{from} -> {to}: forbidden should be {forbidden}"
        );
    }
}
