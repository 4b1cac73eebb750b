//! Graphs to look at: the system's (who talks to whom, drawn from the pub/sub
//! [trace](crate::trace)) and a workflow's (its steps and their needs), as plain
//! data, and drawn as DOT, mermaid or SVG.
//!
//! # Layout
//! - here: [`Graph`], its nodes and edges, the same for both kinds;
//! - `system.rs`: the system graph, from a trace and what the host knows (which
//!   hosts serve what, the workflows it keeps and what triggers them);
//! - `steps.rs`: a workflow's steps and needs;
//! - `render.rs`: DOT (Graphviz) and mermaid text;
//! - `svg.rs`: SVG laid out by layout-rs, with each node and edge tagged for
//!   the console to colour.

mod render;
mod steps;
mod svg;
mod system;

pub use render::{dot, mermaid};
pub use steps::steps;
pub use svg::{SvgError, svg};
pub use system::{Context, Planned, RUNNER_PREFIX, system};

use serde::{Deserialize, Serialize};

/// Nodes and the edges between them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// The nodes, each once.
    pub nodes: Vec<Node>,
    /// The edges, each (from, to, kind, label) once, its count summed.
    pub edges: Vec<Edge>,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Unique in its graph: `<kind>:<name>` (`service:fetcher`, `resource:site`).
    pub id: String,
    /// What it is.
    pub kind: NodeKind,
    /// Its name, as shown.
    pub label: String,
    /// More lines under the name: the hosts of a service, the action of a step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detail: Vec<String>,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A service answering its actions' topics (on one host or several).
    Service,
    /// A workflow: its runs request actions, triggers start it.
    Workflow,
    /// A runner that is not copper-wasm's (copper's own, by its client id).
    Runner,
    /// A resource services produce and read (`<service>/resources/<name>`).
    Resource,
    /// Any other topic.
    Topic,
    /// A client that is none of the above.
    Client,
    /// A step of a workflow.
    Step,
}

/// One edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// The node it leaves.
    pub from: String,
    /// The node it reaches.
    pub to: String,
    /// What it means.
    pub kind: EdgeKind,
    /// The action, or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
    /// How many messages went this way (0: planned, not seen yet).
    pub count: u64,
    /// The last of them, in milliseconds since the Unix epoch (0: none).
    #[serde(default)]
    pub last_ms: u64,
}

/// What an edge means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Requests of an action, to its service.
    Request,
    /// Finishes of an action, back to who asked.
    Finish,
    /// A service produced a resource.
    Produces,
    /// A request named a resource another service produced.
    Consumes,
    /// A client published on a topic.
    Publishes,
    /// A client reads a topic.
    Subscribes,
    /// A resource, a topic or another workflow starts a workflow (`on:`).
    Triggers,
    /// A workflow's step asks this service, not seen on the bus yet.
    Plans,
    /// A step needs another.
    Needs,
}

impl EdgeKind {
    /// The word it is drawn with.
    pub fn word(self) -> &'static str {
        match self {
            EdgeKind::Request => "request",
            EdgeKind::Finish => "finish",
            EdgeKind::Produces => "produces",
            EdgeKind::Consumes => "consumes",
            EdgeKind::Publishes => "publishes",
            EdgeKind::Subscribes => "subscribes",
            EdgeKind::Triggers => "triggers",
            EdgeKind::Plans => "plans",
            EdgeKind::Needs => "needs",
        }
    }

    /// Drawn dashed: what is declared, not seen.
    pub fn dashed(self) -> bool {
        matches!(self, EdgeKind::Triggers | EdgeKind::Plans)
    }
}

impl NodeKind {
    /// Its name in ids and classes.
    pub fn word(self) -> &'static str {
        match self {
            NodeKind::Service => "service",
            NodeKind::Workflow => "workflow",
            NodeKind::Runner => "runner",
            NodeKind::Resource => "resource",
            NodeKind::Topic => "topic",
            NodeKind::Client => "client",
            NodeKind::Step => "step",
        }
    }
}

impl Edge {
    /// The text drawn on it: the action and the count (`fetch ×3`).
    pub fn text(&self) -> String {
        let word = match self.kind {
            EdgeKind::Request | EdgeKind::Needs => String::new(),
            kind => kind.word().to_string(),
        };
        let mut text = match (self.label.is_empty(), word.is_empty()) {
            (true, _) => word,
            (false, true) => self.label.clone(),
            (false, false) => format!("{} {word}", self.label),
        };
        if self.count > 1 {
            text.push_str(&format!(" ×{}", self.count));
        }
        text
    }
}

impl Graph {
    /// The node `id`, when there is one.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Adds node `kind:name` unless there is one; returns its id.
    pub fn add_node(&mut self, kind: NodeKind, name: &str) -> String {
        let id = format!("{}:{name}", kind.word());
        if self.node(&id).is_none() {
            self.nodes.push(Node {
                id: id.clone(),
                kind,
                label: name.to_string(),
                detail: Vec::new(),
            });
        }
        id
    }

    /// Adds `count` messages to the edge, made when new.
    pub fn add_edge(
        &mut self,
        from: &str,
        to: &str,
        kind: EdgeKind,
        label: &str,
        count: u64,
        last_ms: u64,
    ) {
        if let Some(edge) = self
            .edges
            .iter_mut()
            .find(|e| e.from == from && e.to == to && e.kind == kind && e.label == label)
        {
            edge.count += count;
            edge.last_ms = edge.last_ms.max(last_ms);
            return;
        }
        self.edges.push(Edge {
            from: from.to_string(),
            to: to.to_string(),
            kind,
            label: label.to_string(),
            count,
            last_ms,
        });
    }

    /// True when some edge of `kind` goes from `from` to `to`.
    pub fn has_edge(&self, from: &str, to: &str, kind: EdgeKind) -> bool {
        self.edges
            .iter()
            .any(|e| e.from == from && e.to == to && e.kind == kind)
    }
}
