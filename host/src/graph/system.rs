//! The system graph: services, workflows, runners, resources and topics, and
//! who talks to whom, read from a trace with copper's topics in mind.
//!
//! - A client that subscribes to an action topic `<service>/<action>` is that
//!   service (on whichever host); its finishes go back to the clients that read
//!   `<action topic>/finish`. A two-level topic that nothing serves, answers or
//!   asks as a runner is a plain topic (`door/open`).
//! - A copper-wasm runner's client id is `copper-wasm-runner-<workflow>-…`: its
//!   requests are the workflow's. Another client that publishes `runner/…` is a
//!   runner of its own (copper's Python runner).
//! - `<service>/resources/<name>` is a resource the service produced; a request
//!   that names a resource its service did not produce reads it.
//! - The protocol's plumbing (`/start`, `/status`, `/log`, `/cancel`,
//!   `<service>/status|describe|error`, `runner/…`, `copper-wasm/…`, `$SYS/…`)
//!   draws nothing.

use super::{EdgeKind, Graph, NodeKind};
use crate::protocol::{RESERVED_ACTIONS, is_action_topic};
use crate::trace::{ClientRecord, Recorded};
use std::collections::{BTreeMap, BTreeSet};

/// The prefix of a copper-wasm runner's client id.
pub const RUNNER_PREFIX: &str = "copper-wasm-runner-";

/// What the host knows beyond the trace.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The hosts serving each service, by service.
    pub hosts: BTreeMap<String, Vec<String>>,
    /// The workflows kept, with what they ask and what starts them.
    pub workflows: Vec<Planned>,
}

/// A workflow the host keeps.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    /// Its name.
    pub name: String,
    /// The action topics of its steps.
    pub actions: Vec<String>,
    /// `on: resource`.
    pub resources: Vec<String>,
    /// `on: mqtt`.
    pub topics: Vec<String>,
    /// `on: workflow_run`.
    pub after: Vec<String>,
}

/// A request that named a resource.
struct Read {
    resource: String,
    service: String,
    action: String,
    /// When its topic was first published on.
    first_ms: u64,
}

/// The role of a client.
enum Role {
    /// It serves these services.
    Serves(BTreeSet<String>),
    /// The node of a runner or a workflow, or any other client.
    Node(String),
}

/// The system graph of `recorded`, with `context` added.
pub fn system(recorded: &Recorded, context: &Context) -> Graph {
    let mut graph = Graph::default();
    for (service, hosts) in &context.hosts {
        let id = graph.add_node(NodeKind::Service, service);
        detail_hosts(&mut graph, &id, hosts);
    }
    let roles: Vec<(&ClientRecord, Role)> = recorded
        .clients
        .iter()
        .map(|client| (client, role_of(&mut graph, client)))
        .collect();
    let node_of = |role: &Role, service: &str| -> String {
        match role {
            Role::Serves(_) => format!("service:{service}"),
            Role::Node(id) => id.clone(),
        }
    };
    // Who reads each topic: (filter, node).
    let readers: Vec<(&str, String)> = roles
        .iter()
        .flat_map(|(client, role)| {
            client.subscribes.iter().map(move |s| {
                let node = match role {
                    Role::Serves(services) => services
                        .iter()
                        .next()
                        .map(|s| format!("service:{s}"))
                        .unwrap_or_default(),
                    Role::Node(id) => id.clone(),
                };
                (s.topic.as_str(), node)
            })
        })
        .collect();
    // `a/b` is an action topic only when something serves `a`, answers it, or a
    // runner asks it; otherwise it is a topic like any other (`door/open`).
    let served: BTreeSet<&str> = roles
        .iter()
        .flat_map(|(_, role)| match role {
            Role::Serves(services) => services.iter().map(String::as_str).collect(),
            Role::Node(_) => Vec::new(),
        })
        .chain(context.hosts.keys().map(String::as_str))
        .collect();
    let answered: BTreeSet<&str> = recorded
        .clients
        .iter()
        .flat_map(|c| c.publishes.iter())
        .filter_map(|p| p.topic.strip_suffix("/finish"))
        .collect();
    let is_request = |topic: &str, levels: &[&str], role: &Role| {
        is_action_topic(topic)
            && !RESERVED_ACTIONS.contains(&levels[1])
            && (served.contains(levels[0])
                || answered.contains(topic)
                || matches!(role, Role::Node(id) if id.starts_with("workflow:") || id.starts_with("runner:")))
    };
    let mut reads: Vec<Read> = Vec::new();
    // Who published each resource, and first when: (resource, service, first ms).
    let mut produced: Vec<(String, String, u64)> = Vec::new();
    for (client, role) in &roles {
        for publish in &client.publishes {
            let topic = publish.topic.as_str();
            let (count, last) = (publish.count, publish.last_ms);
            let levels: Vec<&str> = topic.split('/').collect();
            if is_plumbing(&levels) {
                continue;
            }
            if is_request(topic, &levels, role) {
                let service = graph.add_node(NodeKind::Service, levels[0]);
                let from = node_of(role, levels[0]);
                if from != service {
                    graph.add_edge(&from, &service, EdgeKind::Request, levels[1], count, last);
                }
                for resource in &publish.resources {
                    reads.push(Read {
                        resource: resource.clone(),
                        service: levels[0].to_string(),
                        action: levels[1].to_string(),
                        first_ms: publish.first_ms,
                    });
                }
            } else if levels.len() == 3 && levels[2] == "finish" {
                let service = graph.add_node(NodeKind::Service, levels[0]);
                for (filter, reader) in &readers {
                    if reads_topic(filter, topic) && *reader != service && !reader.is_empty() {
                        graph.add_edge(&service, reader, EdgeKind::Finish, levels[1], count, last);
                    }
                }
            } else if levels.len() == 3 && levels[1] == "resources" {
                let service = graph.add_node(NodeKind::Service, levels[0]);
                let resource = graph.add_node(NodeKind::Resource, levels[2]);
                graph.add_edge(&service, &resource, EdgeKind::Produces, "", count, last);
                produced.push((
                    levels[2].to_string(),
                    levels[0].to_string(),
                    publish.first_ms,
                ));
            } else {
                let from = node_of(role, levels[0]);
                let node = graph.add_node(NodeKind::Topic, topic);
                graph.add_edge(&from, &node, EdgeKind::Publishes, "", count, last);
                for (filter, reader) in &readers {
                    if reads_topic(filter, topic) && !reader.is_empty() && *reader != from {
                        graph.add_edge(&node, reader, EdgeKind::Subscribes, "", 0, 0);
                    }
                }
            }
        }
    }
    // A service reads a resource its request names when another service had
    // produced it before that request (copper's services publish
    // `<service>/resources/<name>` for every request naming one, the reader's too).
    for read in reads {
        let earlier = produced.iter().any(|(resource, service, first)| {
            *resource == read.resource
                && *service != read.service
                && (*first <= read.first_ms || read.first_ms == 0 || *first == 0)
        });
        let (resource, service) = (
            format!("resource:{}", read.resource),
            format!("service:{}", read.service),
        );
        let alone = !produced
            .iter()
            .any(|(r, s, _)| *r == read.resource && *s == read.service);
        if earlier || alone {
            graph.add_node(NodeKind::Resource, &read.resource);
            graph.edges.retain(|e| {
                !(e.kind == EdgeKind::Produces && e.from == service && e.to == resource)
            });
            graph.add_edge(&resource, &service, EdgeKind::Consumes, &read.action, 0, 0);
        }
    }
    for workflow in &context.workflows {
        planned(&mut graph, workflow);
    }
    let linked: BTreeSet<&str> = graph
        .edges
        .iter()
        .flat_map(|e| [e.from.as_str(), e.to.as_str()])
        .collect();
    let keep: Vec<bool> = graph
        .nodes
        .iter()
        .map(|n| {
            matches!(n.kind, NodeKind::Service | NodeKind::Workflow)
                || linked.contains(n.id.as_str())
        })
        .collect();
    let mut keep = keep.into_iter();
    graph.nodes.retain(|_| keep.next().unwrap_or(true));
    graph
        .nodes
        .sort_by(|a, b| (a.kind, &a.label).cmp(&(b.kind, &b.label)));
    graph
}

/// What a client is, its node added.
fn role_of(graph: &mut Graph, client: &ClientRecord) -> Role {
    // Clients that are not hosts come in as `<user>:<id>` on the embedded broker.
    let bare = client.client.rsplit(':').next().unwrap_or(&client.client);
    if let Some(workflow) = bare.strip_prefix(RUNNER_PREFIX) {
        return Role::Node(graph.add_node(NodeKind::Workflow, workflow));
    }
    let serves: BTreeSet<String> = client
        .subscribes
        .iter()
        .filter(|s| is_action_topic(&s.topic))
        .filter_map(|s| {
            let (service, action) = s.topic.split_once('/')?;
            (!RESERVED_ACTIONS.contains(&action)).then(|| service.to_string())
        })
        .collect();
    if !serves.is_empty() {
        for service in &serves {
            graph.add_node(NodeKind::Service, service);
        }
        return Role::Serves(serves);
    }
    let runner = client
        .publishes
        .iter()
        .any(|p| p.topic == "runner/start" || p.topic == "runner/status");
    let kind = if runner {
        NodeKind::Runner
    } else {
        NodeKind::Client
    };
    Role::Node(graph.add_node(kind, &client.client))
}

/// The protocol's own topics, which say nothing about who depends on whom.
fn is_plumbing(levels: &[&str]) -> bool {
    let first = levels[0];
    if first == "runner" || first == "copper-wasm" || first.starts_with('$') {
        return true;
    }
    // A run's events (`copper/runs/<id>/events`).
    if first == "copper" && levels.get(1) == Some(&"runs") {
        return true;
    }
    match levels {
        [_, second] => matches!(*second, "status" | "describe" | "error"),
        [_, _, third] => matches!(*third, "start" | "status" | "log" | "cancel"),
        _ => false,
    }
}

/// True when `filter` reads `topic`; a filter that starts with a wildcard reads
/// everything and says nothing of what its client depends on.
fn reads_topic(filter: &str, topic: &str) -> bool {
    if filter.starts_with('#') || filter.starts_with('+') {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn detail_hosts(graph: &mut Graph, id: &str, hosts: &[String]) {
    if let Some(node) = graph.nodes.iter_mut().find(|n| n.id == id) {
        for host in hosts {
            let line = format!("on {host}");
            if !node.detail.contains(&line) {
                node.detail.push(line);
            }
        }
    }
}

/// A kept workflow: what starts it, and the services its steps ask that the
/// trace has not seen it ask yet.
fn planned(graph: &mut Graph, workflow: &Planned) {
    let id = graph.add_node(NodeKind::Workflow, &workflow.name);
    for resource in &workflow.resources {
        let from = graph.add_node(NodeKind::Resource, resource);
        graph.add_edge(&from, &id, EdgeKind::Triggers, "", 0, 0);
    }
    for topic in &workflow.topics {
        let from = graph.add_node(NodeKind::Topic, topic);
        graph.add_edge(&from, &id, EdgeKind::Triggers, "", 0, 0);
    }
    for other in &workflow.after {
        let from = graph.add_node(NodeKind::Workflow, other);
        graph.add_edge(&from, &id, EdgeKind::Triggers, "after", 0, 0);
    }
    for action in &workflow.actions {
        let Some((service, name)) = action.split_once('/') else {
            continue;
        };
        let to = graph.add_node(NodeKind::Service, service);
        if !graph.has_edge(&id, &to, EdgeKind::Request) {
            graph.add_edge(&id, &to, EdgeKind::Plans, name, 0, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Trace;

    /// copper's README workflow, as a copper-wasm daemon's trace holds it.
    fn copper_run() -> Recorded {
        let trace = Trace::new();
        let runner = format!("{RUNNER_PREFIX}copper-{}", "b".repeat(32));
        trace.subscribed("copper-wasm-h1-fetcher", "$share/copper/fetcher/fetch");
        trace.subscribed("copper-wasm-h1-markdown", "$share/copper/markdown/build");
        trace.subscribed(&runner, "fetcher/fetch/finish");
        trace.subscribed(&runner, "markdown/build/finish");
        trace.published(&runner, "runner/start", b"{}");
        trace.published(&runner, "fetcher/fetch", br#"{"resource": "test-website"}"#);
        trace.published("copper-wasm-h1-fetcher", "fetcher/fetch/start", b"{}");
        trace.published(
            "copper-wasm-h1-fetcher",
            "fetcher/resources/test-website",
            b"[]",
        );
        trace.published("copper-wasm-h1-fetcher", "fetcher/fetch/finish", b"[]");
        std::thread::sleep(std::time::Duration::from_millis(3));
        trace.published(
            &runner,
            "markdown/build",
            br#"{"resource": "test-website"}"#,
        );
        // copper's services announce the resource of every request naming one.
        trace.published(
            "copper-wasm-h1-markdown",
            "markdown/resources/test-website",
            b"[]",
        );
        trace.published("copper-wasm-h1-markdown", "markdown/build/finish", b"[]");
        trace.published("copper-wasm-h1-markdown", "markdown/status", b"up");
        trace.recorded()
    }

    fn edges(graph: &Graph) -> Vec<String> {
        graph
            .edges
            .iter()
            .map(|e| format!("{} -{}-> {}", e.from, e.kind.word(), e.to))
            .collect()
    }

    #[test]
    fn copper_s_workflow_draws_fetcher_to_markdown_through_its_resource() {
        let context = Context {
            hosts: BTreeMap::from([("fetcher".into(), vec!["h1".into()])]),
            workflows: Vec::new(),
        };
        let graph = system(&copper_run(), &context);
        let edges = edges(&graph);
        for expected in [
            "workflow:copper -request-> service:fetcher",
            "service:fetcher -finish-> workflow:copper",
            "service:fetcher -produces-> resource:test-website",
            "resource:test-website -consumes-> service:markdown",
            "workflow:copper -request-> service:markdown",
            "service:markdown -finish-> workflow:copper",
        ] {
            assert!(
                edges.contains(&expected.to_string()),
                "{expected} missing from {edges:#?}"
            );
        }
        assert_eq!(edges.len(), 6, "{edges:#?}");
        assert_eq!(graph.node("service:fetcher").unwrap().detail, ["on h1"]);
    }

    #[test]
    fn copper_s_own_runner_and_other_topics_are_nodes_of_their_own() {
        let trace = Trace::new();
        trace.published("paho-runner", "runner/start", b"{}");
        trace.published("paho-runner", "fetcher/fetch", b"{}");
        trace.published("sensor", "door/open", b"1");
        trace.subscribed("listener", "door/#");
        let graph = system(&trace.recorded(), &Context::default());
        let edges = edges(&graph);
        assert!(edges.contains(&"runner:paho-runner -request-> service:fetcher".to_string()));
        assert!(edges.contains(&"client:sensor -publishes-> topic:door/open".to_string()));
        assert!(edges.contains(&"topic:door/open -subscribes-> client:listener".to_string()));
    }

    #[test]
    fn kept_workflows_add_their_triggers_and_plans() {
        let context = Context {
            hosts: BTreeMap::new(),
            workflows: vec![Planned {
                name: "site".into(),
                actions: vec!["markdown/build".into(), "fetcher/fetch".into()],
                resources: vec!["test-website".into()],
                topics: vec!["sensors/+".into()],
                after: vec!["nightly".into()],
            }],
        };
        let graph = system(&copper_run(), &context);
        let edges = edges(&graph);
        for expected in [
            "resource:test-website -triggers-> workflow:site",
            "topic:sensors/+ -triggers-> workflow:site",
            "workflow:nightly -triggers-> workflow:site",
            "workflow:site -plans-> service:markdown",
        ] {
            assert!(
                edges.contains(&expected.to_string()),
                "{expected} missing from {edges:#?}"
            );
        }
    }

    #[test]
    fn wildcard_readers_and_plumbing_draw_nothing() {
        assert!(!reads_topic("#", "a/b"));
        assert!(reads_topic("a/+/finish", "a/b/finish"));
        assert!(reads_topic("a/#", "a/b/c"));
        assert!(!reads_topic("a/b", "a/b/c"));
        assert!(is_plumbing(&["fetcher", "fetch", "start"]));
        assert!(is_plumbing(&["copper-wasm", "hosts", "h1"]));
        assert!(!is_plumbing(&["fetcher", "fetch"]));
    }
}
