//! A workflow's graph: its steps and who needs whom.

use super::{EdgeKind, Graph, Node, NodeKind};
use crate::workflow::Workflow;

/// The steps of `workflow` (node `step:<id>`, its action under its id) and an
/// edge from each step to each step that needs it.
pub fn steps(workflow: &Workflow) -> Graph {
    let mut graph = Graph::default();
    for step in &workflow.steps {
        let mut detail = vec![step.action.clone()];
        if step.for_each.is_some() {
            detail.push("for each item".into());
        }
        graph.nodes.push(Node {
            id: format!("step:{}", step.id),
            kind: NodeKind::Step,
            label: step.id.clone(),
            detail,
        });
        for need in &step.needs {
            graph.add_edge(
                &format!("step:{need}"),
                &format!("step:{}", step.id),
                EdgeKind::Needs,
                "",
                0,
                0,
            );
        }
    }
    graph
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_is_a_node_and_each_need_an_edge() {
        let workflow = Workflow::parse(
            "steps:\n  - id: a\n    action: testkit/echo\n  - id: b\n    action: testkit/echo\n    needs: [a]\n  - id: c\n    action: testkit/echo\n    needs: [a, b]\n",
            std::path::Path::new("w.yaml"),
        )
        .unwrap();
        let graph = steps(&workflow);
        let ids: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["step:a", "step:b", "step:c"]);
        assert_eq!(graph.nodes[0].detail, ["testkit/echo"]);
        let edges: Vec<(&str, &str)> = graph
            .edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect();
        assert_eq!(
            edges,
            [
                ("step:a", "step:b"),
                ("step:a", "step:c"),
                ("step:b", "step:c")
            ]
        );
    }
}
