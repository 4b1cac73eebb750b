//! The steps not started yet: which of them wait on others, which may start.

use crate::workflow::graph::Graph;
use std::collections::BTreeSet;

/// Steps not started, by whether their needs have all ended.
pub(super) struct Waiting {
    /// For each step, the steps that need it (once per need).
    dependents: Vec<Vec<usize>>,
    /// For each step, how many of its needs have not ended.
    unmet: Vec<usize>,
    /// Steps whose needs have all ended, not started, in file order.
    ready: BTreeSet<usize>,
}

impl Waiting {
    /// Every step of `graph` waiting; those that need nothing are ready.
    pub(super) fn new(graph: &Graph, steps: usize) -> Self {
        let mut dependents = vec![Vec::new(); steps];
        let mut unmet = vec![0; steps];
        for (index, unmet) in unmet.iter_mut().enumerate() {
            for &need in graph.needs(index) {
                dependents[need].push(index);
                *unmet += 1;
            }
        }
        let ready = (0..steps).filter(|&index| unmet[index] == 0).collect();
        Waiting {
            dependents,
            unmet,
            ready,
        }
    }

    /// The first ready step at `from` or after it.
    pub(super) fn ready_from(&self, from: usize) -> Option<usize> {
        self.ready.range(from..).next().copied()
    }

    /// Step `index` starts: it is ready no more.
    pub(super) fn start(&mut self, index: usize) {
        self.ready.remove(&index);
    }

    /// Step `index` ended: the steps whose last need it was are ready.
    pub(super) fn ended(&mut self, index: usize) {
        for &dependent in &self.dependents[index] {
            self.unmet[dependent] -= 1;
            if self.unmet[dependent] == 0 {
                self.ready.insert(dependent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::Workflow;
    use std::path::Path;

    fn waiting(text: &str) -> Waiting {
        let workflow = Workflow::parse(text, Path::new("test.yaml")).unwrap();
        Waiting::new(&Graph::new(&workflow.steps), workflow.steps.len())
    }

    fn ready(waiting: &Waiting) -> Vec<usize> {
        waiting.ready.iter().copied().collect()
    }

    #[test]
    fn a_step_is_ready_once_its_last_need_ended() {
        let mut waiting = waiting(
            "steps:
  - {id: a, action: t/x, needs: []}
  - {id: b, action: t/x, needs: []}
  - {id: c, action: t/x, needs: [a, b]}
  - {id: d, action: t/x, needs: a}
",
        );
        assert_eq!(ready(&waiting), [0, 1]);
        waiting.start(0);
        waiting.start(1);
        assert_eq!(waiting.ready_from(0), None);
        waiting.ended(0);
        assert_eq!(ready(&waiting), [3]);
        waiting.ended(1);
        assert_eq!(ready(&waiting), [2, 3]);
        assert_eq!(waiting.ready_from(3), Some(3));
        assert_eq!(waiting.ready_from(4), None);
    }

    #[test]
    fn a_list_runs_in_order() {
        let mut waiting = waiting("- action: t/x\n- action: t/x\n- action: t/x\n");
        for index in 0..3 {
            assert_eq!(ready(&waiting), [index]);
            waiting.start(index);
            waiting.ended(index);
        }
        assert!(ready(&waiting).is_empty());
    }
}
