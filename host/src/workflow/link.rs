//! The checks across steps, once each is read: ids, needs, cycles, conditions, references.

use super::expression::{self, Condition, Reference};
use super::read::field_path;
use super::{Step, Workflow, WorkflowError, graph};

impl Workflow {
    /// Checks ids, needs (no unknown step, no cycle), conditions and references.
    /// `conditions` are the steps' `if:` as written; `list_field` is where the list is
    /// (`steps`, or empty for a bare list), for the errors' field paths.
    pub(super) fn link(
        &mut self,
        conditions: Vec<Option<String>>,
        list_field: &str,
    ) -> Result<(), WorkflowError> {
        let error = |step: &Step, field: &str, message: String| WorkflowError {
            file: self.source.clone(),
            line: Some(step.line_of(field)),
            column: None,
            field: Some(field_path(list_field, step.number - 1, field)),
            message,
        };
        let ids: Vec<String> = self.steps.iter().map(|s| s.id.clone()).collect();
        for (index, step) in self.steps.iter().enumerate() {
            if ids[..index].contains(&step.id) {
                return Err(error(
                    step,
                    "id",
                    format!("two steps have the id `{}`", step.id),
                ));
            }
        }
        // A copper list: each step needs the one before it.
        let declares_needs = |s: &Step| {
            s.field_lines.contains_key("needs") || s.field_lines.contains_key("dependencies")
        };
        if !self.steps.iter().any(declares_needs) {
            for index in 1..self.steps.len() {
                let previous = self.steps[index - 1].id.clone();
                self.steps[index].needs.push(previous);
            }
        }
        for step in &self.steps {
            let field = if step.field_lines.contains_key("dependencies") {
                "dependencies"
            } else {
                "needs"
            };
            if let Some(unknown) = step.needs.iter().find(|n| !ids.contains(n)) {
                return Err(error(
                    step,
                    field,
                    format!(
                        "step `{}` needs `{unknown}`, which this workflow does not have (its steps: {})",
                        step.id,
                        ids.join(", ")
                    ),
                ));
            }
        }
        let graph = graph::Graph::new(&self.steps);
        if let Some(cycle) = graph.cycle() {
            let first = &self.steps[cycle[0]];
            let names: Vec<&str> = cycle.iter().map(|&i| self.steps[i].id.as_str()).collect();
            return Err(error(
                first,
                "needs",
                format!(
                    "the steps {} need each other in a cycle",
                    names.join(" -> ")
                ),
            ));
        }
        for (index, text) in conditions.into_iter().enumerate() {
            if let Some(text) = text {
                let step = &self.steps[index];
                let condition =
                    Condition::parse(&text, &ids).map_err(|why| error(step, "if", why))?;
                self.steps[index].condition = Some(condition);
            }
        }
        for (index, step) in self.steps.iter().enumerate() {
            let ancestors = graph.ancestors(index);
            let for_each = step.for_each.as_ref().map(|f| ("for_each", &f.items));
            let fields = step.entry.iter().map(|(f, v)| (f.as_str(), v));
            for (field, value) in for_each.into_iter().chain(fields) {
                let references =
                    expression::references(value).map_err(|why| error(step, field, why))?;
                for reference in references {
                    let problem = match &reference {
                        Reference::Output { step: other, .. } => {
                            match ids.iter().position(|id| id == other) {
                                None => Some(format!(
                                    "refers to step `{other}`, which this workflow does not have"
                                )),
                                Some(at) if !ancestors.contains(&at) => Some(format!(
                                    "refers to step `{other}`, which step `{}` does not need: add it to `needs`",
                                    step.id
                                )),
                                Some(_) => None,
                            }
                        }
                        Reference::Item(_) | Reference::ItemIndex if field == "for_each" => {
                            Some("cannot refer to its own items".into())
                        }
                        Reference::Item(_) | Reference::ItemIndex if step.for_each.is_none() => {
                            Some(format!(
                                "`item` and `item_index` are known only in a step with `for_each`, which step `{}` does not have",
                                step.id
                            ))
                        }
                        _ => None,
                    };
                    if let Some(problem) = problem {
                        return Err(error(step, field, problem));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// Ids, needs, cycles and references, each error at its step's field.
    #[test]
    fn errors_across_steps_name_the_step_field_and_line() {
        let cases = [
            (
                "- action: a/b\n  id: x\n- action: a/c\n  id: x\n",
                "w.yaml:4: field `[1].id`: two steps have the id `x`",
            ),
            (
                "- action: a/b\n  id: x\n  needs: [nope]\n",
                "w.yaml:3: field `[0].needs`: step `x` needs `nope`, which this workflow does not have (its steps: x)",
            ),
            (
                "- action: a/b\n  id: x\n  dependencies: [nope]\n",
                "w.yaml:3: field `[0].dependencies`: step `x` needs `nope`, which this workflow does not have (its steps: x)",
            ),
            (
                "- action: a/b\n  id: first\n  needs: second\n- action: a/c\n  id: second\n  dependencies: [first]\n",
                "w.yaml:3: field `[0].needs`: the steps first -> second -> first need each other in a cycle",
            ),
            (
                "steps:\n  - action: a/b\n    id: first\n    needs: second\n  - action: a/c\n    id: second\n    needs: [first]\n",
                "w.yaml:4: field `steps[0].needs`: the steps first -> second -> first need each other in a cycle",
            ),
            (
                "- action: a/b\n  id: x\n  needs: []\n- action: a/c\n  id: y\n  needs: []\n  path: ${{ steps.x.outputs.path }}\n",
                "w.yaml:7: field `[1].path`: refers to step `x`, which step `y` does not need: add it to `needs`",
            ),
            (
                "- action: a/b\n- action: a/c\n  path: ${{ steps.ghost.outputs.path }}\n",
                "w.yaml:3: field `[1].path`: refers to step `ghost`, which this workflow does not have",
            ),
            (
                "- action: a/b\n  repo: ${{ item.name }}\n",
                "w.yaml:2: field `[0].repo`: `item` and `item_index` are known only in a step with `for_each`, which step `step1` does not have",
            ),
            (
                "- action: a/b\n  for_each: ${{ item }}\n",
                "w.yaml:2: field `[0].for_each`: cannot refer to its own items",
            ),
            (
                "- action: a/b\n  id: x\n  needs: []\n- action: a/c\n  needs: []\n  for_each: ${{ steps.x.outputs.list }}\n",
                "w.yaml:6: field `[1].for_each`: refers to step `x`, which step `step2` does not need: add it to `needs`",
            ),
            (
                "- action: a/b\n  max_parallel: 2\n",
                "w.yaml:2: field `[0].max_parallel`: bounds the items of `for_each`, which this step does not have",
            ),
            (
                "- action: a/b\n  for_each: a, b\n",
                "w.yaml:2: field `[0].for_each`: must be a list, or one reference to a list such as `${{ steps.<id>.outputs.<field> }}`, got `a, b`",
            ),
        ];
        crate::workflow::tests::assert_errors(&cases);
    }
}
