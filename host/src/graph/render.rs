//! A graph as text: DOT for Graphviz (and layout-rs), mermaid for Markdown pages.

use super::{Graph, Node, NodeKind};
use std::fmt::Write as _;

/// The graph in Graphviz's DOT language, left to right.
pub fn dot(graph: &Graph) -> String {
    let mut out = String::from(
        "digraph copper {\n  rankdir=LR;\n  node [fontname=\"sans-serif\"];\n  edge [fontname=\"sans-serif\", fontsize=10];\n",
    );
    for node in &graph.nodes {
        let shape = match node.kind {
            NodeKind::Service => "box, style=\"rounded,bold\"",
            NodeKind::Workflow | NodeKind::Runner | NodeKind::Step => "box, style=rounded",
            NodeKind::Resource => "cylinder",
            NodeKind::Topic => "ellipse",
            NodeKind::Client => "box, style=dashed",
        };
        let _ = writeln!(
            out,
            "  {} [label={}, shape={shape}];",
            quoted(&node.id),
            quoted(&lines(node, "\n"))
        );
    }
    for edge in &graph.edges {
        let style = if edge.kind.dashed() {
            ", style=dashed"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {} -> {} [label={}{style}];",
            quoted(&edge.from),
            quoted(&edge.to),
            quoted(&edge.text())
        );
    }
    out.push_str("}\n");
    out
}

/// The graph as a mermaid flowchart, left to right.
pub fn mermaid(graph: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
    let index = |id: &str| graph.nodes.iter().position(|n| n.id == id);
    for (n, node) in graph.nodes.iter().enumerate() {
        let label = mermaid_text(&lines(node, "<br/>"));
        let shape = match node.kind {
            NodeKind::Service | NodeKind::Client => format!("[\"{label}\"]"),
            NodeKind::Workflow | NodeKind::Runner | NodeKind::Step => format!("(\"{label}\")"),
            NodeKind::Resource => format!("[(\"{label}\")]"),
            NodeKind::Topic => format!("([\"{label}\"])"),
        };
        let _ = writeln!(out, "  n{n}{shape}");
    }
    for edge in &graph.edges {
        let (Some(from), Some(to)) = (index(&edge.from), index(&edge.to)) else {
            continue;
        };
        let arrow = if edge.kind.dashed() { "-.->" } else { "-->" };
        let text = edge.text();
        if text.is_empty() {
            let _ = writeln!(out, "  n{from} {arrow} n{to}");
        } else {
            let _ = writeln!(out, "  n{from} {arrow}|\"{}\"| n{to}", mermaid_text(&text));
        }
    }
    out
}

/// A node's name and detail, one per line.
fn lines(node: &Node, separator: &str) -> String {
    std::iter::once(node.label.as_str())
        .chain(node.detail.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(separator)
}

/// A DOT string literal.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text inside a mermaid label's quotes (mermaid's entity codes for what would end it).
fn mermaid_text(text: &str) -> String {
    text.replace('"', "#quot;").replace('\n', "<br/>")
}

#[cfg(test)]
mod tests {
    use super::super::EdgeKind;
    use super::*;

    fn small() -> Graph {
        let mut graph = Graph::default();
        let fetcher = graph.add_node(NodeKind::Service, "fetcher");
        let site = graph.add_node(NodeKind::Resource, "test \"site\"");
        graph.add_edge(&fetcher, &site, EdgeKind::Produces, "", 2, 0);
        graph.add_edge(&site, &fetcher, EdgeKind::Triggers, "", 0, 0);
        graph
    }

    #[test]
    fn dot_has_every_node_and_edge_quoted() {
        let text = dot(&small());
        assert!(text.starts_with("digraph copper {"));
        assert!(text.contains("\"service:fetcher\" [label=\"fetcher\", shape=box"));
        assert!(text.contains(
            "\"resource:test \\\"site\\\"\" [label=\"test \\\"site\\\"\", shape=cylinder]"
        ));
        assert!(text.contains(
            "\"service:fetcher\" -> \"resource:test \\\"site\\\"\" [label=\"produces ×2\"]"
        ));
        assert!(text.contains("[label=\"triggers\", style=dashed]"));
        assert!(text.trim_end().ends_with('}'));
    }

    #[test]
    fn mermaid_numbers_the_nodes_and_escapes_quotes() {
        let text = mermaid(&small());
        assert_eq!(
            text,
            "flowchart LR\n  n0[\"fetcher\"]\n  n1[(\"test #quot;site#quot;\")]\n  n0 -->|\"produces ×2\"| n1\n  n1 -.->|\"triggers\"| n0\n"
        );
    }
}
