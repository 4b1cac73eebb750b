//! The order of a workflow's steps: who needs whom, cycles, ancestors.

use super::Step;
use std::collections::BTreeSet;

/// The steps' needs as indices.
#[derive(Debug, Clone)]
pub struct Graph {
    /// For each step, the indices of the steps it needs.
    needs: Vec<Vec<usize>>,
}

impl Graph {
    /// The graph of `steps` (every need must name a step).
    pub fn new(steps: &[Step]) -> Self {
        let index = |id: &str| steps.iter().position(|s| s.id == id);
        Graph {
            needs: steps
                .iter()
                .map(|s| s.needs.iter().filter_map(|n| index(n)).collect())
                .collect(),
        }
    }

    /// The steps step `index` needs.
    pub fn needs(&self, index: usize) -> &[usize] {
        &self.needs[index]
    }

    /// Every step that must end before step `index` (its needs, theirs, …).
    pub fn ancestors(&self, index: usize) -> BTreeSet<usize> {
        let mut found = BTreeSet::new();
        let mut stack = self.needs[index].clone();
        while let Some(next) = stack.pop() {
            if found.insert(next) {
                stack.extend(&self.needs[next]);
            }
        }
        found
    }

    /// A cycle of steps that need each other, if there is one (first step repeated last).
    pub fn cycle(&self) -> Option<Vec<usize>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut marks = vec![Mark::New; self.needs.len()];
        let mut path = Vec::new();
        fn visit(
            graph: &Graph,
            node: usize,
            marks: &mut [Mark],
            path: &mut Vec<usize>,
        ) -> Option<Vec<usize>> {
            marks[node] = Mark::Open;
            path.push(node);
            for &next in &graph.needs[node] {
                match marks[next] {
                    Mark::Open => {
                        let start = path.iter().position(|&n| n == next).expect("on the path");
                        let mut cycle = path[start..].to_vec();
                        cycle.push(next);
                        return Some(cycle);
                    }
                    Mark::New => {
                        if let Some(cycle) = visit(graph, next, marks, path) {
                            return Some(cycle);
                        }
                    }
                    Mark::Done => {}
                }
            }
            path.pop();
            marks[node] = Mark::Done;
            None
        }
        (0..self.needs.len()).find_map(|node| {
            if marks[node] == Mark::New {
                visit(self, node, &mut marks, &mut path)
            } else {
                None
            }
        })
    }
}
