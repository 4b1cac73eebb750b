//! A graph drawn as SVG, laid out by layout-rs (a pure-Rust Graphviz-style
//! layered layout: no `dot` program to install, nothing fetched).
//!
//! Each node is drawn in a `<g class="node kind-<kind>" data-id="<id>">` and each
//! edge in a `<g class="edge kind-<kind>">`, so that a page can colour a step by
//! its status with CSS. layout-rs panics on an empty graph and grows slow on
//! large tangled ones: an empty graph is drawn here as a note, and one past
//! [`MAX_NODES`] is refused.

use super::{Graph, NodeKind};
use layout::backends::svg::SVGWriter;
use layout::core::base::Orientation;
use layout::core::style::{LineStyleKind, StyleAttr};
use layout::std_shapes::render::get_shape_size;
use layout::std_shapes::shapes::{Arrow, Element, LineEndKind, ShapeKind};
use layout::topo::layout::VisualGraph;
use std::collections::HashMap;

/// The most nodes drawn: past this the layout takes seconds (use DOT and Graphviz).
pub const MAX_NODES: usize = 300;

/// The font size of labels.
const FONT: usize = 14;

/// Why a graph is not drawn.
#[derive(Debug, thiserror::Error)]
pub enum SvgError {
    /// Too many nodes to lay out here.
    #[error(
        "the graph has {0} nodes, more than the {MAX_NODES} drawn as SVG: ask for DOT and draw it with Graphviz"
    )]
    TooLarge(usize),
    /// The layout failed (layout-rs panicked).
    #[error("the graph layout failed: {0}")]
    Layout(String),
}

/// The graph as an SVG document; `left_to_right` for a system graph, top to
/// bottom (a workflow's steps) otherwise.
pub fn svg(graph: &Graph, left_to_right: bool) -> Result<String, SvgError> {
    if graph.nodes.is_empty() {
        return Ok(EMPTY.to_string());
    }
    if graph.nodes.len() > MAX_NODES {
        return Err(SvgError::TooLarge(graph.nodes.len()));
    }
    let graph = graph.clone();
    std::panic::catch_unwind(move || draw(&graph, left_to_right)).map_err(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no reason given".into());
        SvgError::Layout(why)
    })
}

/// What an empty graph is drawn as.
const EMPTY: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"320\" height=\"40\" viewBox=\"0 0 320 40\"><text x=\"10\" y=\"25\" class=\"empty\">nothing seen yet</text></svg>";

fn draw(graph: &Graph, left_to_right: bool) -> String {
    let orientation = if left_to_right {
        Orientation::LeftToRight
    } else {
        Orientation::TopToBottom
    };
    let mut visual = VisualGraph::new(orientation);
    let mut handles = HashMap::new();
    for node in &graph.nodes {
        let text = std::iter::once(node.label.as_str())
            .chain(node.detail.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("\n");
        let shape = match node.kind {
            NodeKind::Resource | NodeKind::Topic => ShapeKind::new_circle(&text),
            _ => ShapeKind::new_box(&text),
        };
        let mut look = StyleAttr::simple();
        look.font_size = FONT;
        look.line_width = 1;
        look.rounded = if node.kind == NodeKind::Service { 2 } else { 8 };
        let size = get_shape_size(orientation, &shape, FONT, false);
        let properties = format!(
            "class=\"node kind-{}\" data-id=\"{}\"",
            node.kind.word(),
            attribute(&node.id)
        );
        let element = Element::create_with_properties(shape, look, orientation, size, properties);
        handles.insert(node.id.as_str(), visual.add_node(element));
    }
    for edge in &graph.edges {
        let (Some(&from), Some(&to)) = (
            handles.get(edge.from.as_str()),
            handles.get(edge.to.as_str()),
        ) else {
            continue;
        };
        let mut look = StyleAttr::simple();
        look.font_size = FONT - 3;
        look.line_width = 1;
        let line = if edge.kind.dashed() {
            LineStyleKind::Dashed
        } else {
            LineStyleKind::Normal
        };
        let arrow = Arrow::with_properties(
            LineEndKind::None,
            LineEndKind::Arrow,
            line,
            &edge.text(),
            &look,
            format!(
                "class=\"edge kind-{}\" data-from=\"{}\" data-to=\"{}\"",
                edge.kind.word(),
                attribute(&edge.from),
                attribute(&edge.to)
            ),
            &None,
            &None,
        );
        visual.add_edge(arrow, from, to);
    }
    let mut writer = SVGWriter::new();
    visual.do_it(false, false, false, &mut writer);
    writer.finalize()
}

/// Text made safe inside a double-quoted XML attribute.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::super::EdgeKind;
    use super::*;

    #[test]
    fn nodes_and_edges_are_tagged_for_the_page() {
        let mut graph = Graph::default();
        let a = graph.add_node(NodeKind::Step, "fetch");
        let b = graph.add_node(NodeKind::Step, "build \"site\"");
        graph.add_edge(&a, &b, EdgeKind::Needs, "", 0, 0);
        let svg = svg(&graph, false).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(
            svg.contains("class=\"node kind-step\" data-id=\"step:fetch\""),
            "{svg}"
        );
        assert!(
            svg.contains("data-id=\"step:build &quot;site&quot;\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"edge kind-needs\" data-from=\"step:fetch\""),
            "{svg}"
        );
        assert!(svg.contains(">fetch<"), "{svg}");
    }

    #[test]
    fn an_empty_graph_is_a_note_and_a_huge_one_is_refused() {
        assert!(
            svg(&Graph::default(), true)
                .unwrap()
                .contains("nothing seen yet")
        );
        let mut graph = Graph::default();
        for n in 0..=MAX_NODES {
            graph.add_node(NodeKind::Topic, &n.to_string());
        }
        assert!(matches!(svg(&graph, true), Err(SvgError::TooLarge(_))));
    }
}
