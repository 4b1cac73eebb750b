//! `for_each`: a step run once per item of a list, its results gathered.
//!
//! ```yaml
//! - action: fetcher/fetch
//!   id: fetch
//!   for_each: ${{ steps.list.outputs.repositories }}   # or a list written here
//!   max_parallel: 4                                     # items at once (default 8)
//!   repository: ${{ item.name }}
//!   resource: site-${{ item_index }}
//! ```
//!
//! Each item's request is the step's fields with `${{ item }}` (the item, or a
//! field of it: `${{ item.name }}`) and `${{ item_index }}` (from 0) put in. The
//! step succeeds when every item does; its outputs are each result field gathered
//! into a list, one value per item in the items' order (`null` where an item's
//! result lacks it): `${{ steps.fetch.outputs.resource }}` is the list of resources.

use crate::protocol::Object;
use serde_json::Value;

/// The most items one step may fan out to.
pub const MAX_ITEMS: usize = 10_000;

/// Items at once when `max_parallel` is not given.
pub const DEFAULT_PARALLEL: usize = 8;

/// A step's `for_each`.
#[derive(Debug, Clone, PartialEq)]
pub struct ForEach {
    /// The list as written: a YAML list, or one `${{ … }}` reference to a list.
    pub items: Value,
    /// Items whose requests run at once.
    pub max_parallel: usize,
}

/// Reads `for_each`: a list, or a text that is exactly one `${{ … }}` reference.
pub(super) fn items(value: &Value) -> Result<Value, String> {
    match value {
        Value::Array(items) if items.len() > MAX_ITEMS => Err(format!(
            "has {} items; a step fans out to at most {MAX_ITEMS}",
            items.len()
        )),
        Value::Array(_) => Ok(value.clone()),
        Value::String(text) => {
            let trimmed = text.trim();
            let single = trimmed.starts_with("${{")
                && trimmed.ends_with("}}")
                && trimmed.matches("${{").count() == 1;
            if single {
                Ok(Value::String(trimmed.to_string()))
            } else {
                Err(format!(
                    "must be a list, or one reference to a list such as `${{{{ steps.<id>.outputs.<field> }}}}`, got `{text}`"
                ))
            }
        }
        other => Err(format!(
            "must be a list, or one reference to a list, got {other}"
        )),
    }
}

/// Reads `max_parallel`: a whole number from 1.
pub(super) fn max_parallel(value: &Value) -> Result<usize, String> {
    match value.as_u64() {
        Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => Err(format!("must be a whole number from 1, got {value}")),
    }
}

/// What `for_each` gave once resolved: the list, or why it is not one.
pub fn resolved_items(value: Value) -> Result<Vec<Value>, String> {
    match value {
        Value::Array(items) if items.len() > MAX_ITEMS => Err(format!(
            "`for_each` gave {} items; a step fans out to at most {MAX_ITEMS}",
            items.len()
        )),
        Value::Array(items) => Ok(items),
        other => Err(format!("`for_each` must give a list, got {other}")),
    }
}

/// The step's outputs from each item's results, in the items' order: every field
/// any item has becomes a list with one value per item (`null` where one lacks it).
pub fn gather(results: &[Object]) -> Object {
    let mut fields: Vec<&String> = results.iter().flat_map(|r| r.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .map(|field| {
            let values = results
                .iter()
                .map(|r| r.get(field).cloned().unwrap_or(Value::Null))
                .collect();
            (field.clone(), Value::Array(values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_are_a_list_or_one_reference() {
        assert_eq!(items(&json!(["a", "b"])).unwrap(), json!(["a", "b"]));
        let reference = json!(" ${{ steps.list.outputs.names }} ");
        assert_eq!(
            items(&reference).unwrap(),
            json!("${{ steps.list.outputs.names }}")
        );
        assert!(
            items(&json!("a, b"))
                .unwrap_err()
                .contains("must be a list")
        );
        assert!(items(&json!("${{ a }} ${{ b }}")).is_err());
        assert!(items(&json!({"a": 1})).is_err());
        let too_many = Value::Array(vec![json!(1); MAX_ITEMS + 1]);
        assert!(items(&too_many).unwrap_err().contains("at most 10000"));
        assert!(
            resolved_items(json!("x"))
                .unwrap_err()
                .contains("got \"x\"")
        );
        assert_eq!(max_parallel(&json!(3)).unwrap(), 3);
        assert!(max_parallel(&json!(0)).is_err());
        assert!(max_parallel(&json!("4")).is_err());
    }

    #[test]
    fn results_are_gathered_field_by_field_in_order() {
        let a = json!({"path": "/a", "count": 1})
            .as_object()
            .unwrap()
            .clone();
        let b = json!({"path": "/b"}).as_object().unwrap().clone();
        let gathered = gather(&[a, b]);
        assert_eq!(gathered["path"], json!(["/a", "/b"]));
        assert_eq!(gathered["count"], json!([1, null]));
        assert!(gather(&[]).is_empty());
    }
}
