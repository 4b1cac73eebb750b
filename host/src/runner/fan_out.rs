//! A `for_each` step's requests: one per item, up to `max_parallel` at once, each
//! with its own tries and its own place in the step cache; the results gathered.

use super::cache::StepCache;
use super::request::Pending;
use super::step::{Ended, Note, Notes, tries};
use crate::bus::Bus;
use crate::protocol::Object;
use crate::schema::ActionSchemas;
use crate::workflow::{Step, for_each};
use futures_util::StreamExt;
use std::time::Instant;

/// How one item's tries ended, and how many it took.
type Tried = (Result<Object, String>, u32);

/// One item's request.
pub(super) struct Item {
    /// The step's fields with the item put in.
    pub(super) input: Object,
    /// Its key for reuse, when it has one.
    pub(super) key: Option<String>,
    /// The item as JSON text (short), to name it in what the step says.
    pub(super) label: String,
}

/// Runs every item's tries, at most `step.for_each.max_parallel` at once: the step
/// succeeds when every item does, with the results gathered ([`for_each::gather`]).
pub(super) async fn fan_out(
    bus: &Bus,
    step: &Step,
    items: Vec<Item>,
    cache: Option<&StepCache>,
    schemas: Option<&ActionSchemas>,
    pending: Pending,
    notes: Notes,
) -> Ended {
    let index = step.number - 1;
    let started = Instant::now();
    let count = items.len();
    let bound = step.for_each.as_ref().map_or(1, |f| f.max_parallel);
    let _ = notes.send((index, Note::Started(1)));
    let (pending, notes) = (&pending, &notes);
    let mut ended: Vec<(usize, Tried)> = futures_util::stream::iter(items)
        .enumerate()
        .map(|(at, item)| async move {
            let name = format!("item {} of {count} ({})", at + 1, item.label);
            let kept = item.key.as_deref().zip(cache);
            if let Some(outputs) = kept.and_then(|(key, cache)| cache.lookup(key)) {
                let _ = notes.send((index, Note::Progress(format!("{name}: reused"))));
                return (at, (Ok(outputs), 0));
            }
            let input = &item.input;
            let (result, attempts) =
                tries(bus, step, input, schemas, pending, notes, Some(&name)).await;
            let said = match &result {
                Ok(outputs) => {
                    if let (Some(key), Some(cache)) = (&item.key, cache) {
                        cache.store(key, outputs);
                    }
                    format!("{name}: done")
                }
                Err(error) => format!("{name}: failed: {error}"),
            };
            let _ = notes.send((index, Note::Progress(said)));
            (at, (result, attempts))
        })
        // Unordered: a slow item holds no room the others could use.
        .buffer_unordered(bound.max(1))
        .collect()
        .await;
    ended.sort_by_key(|(at, _)| *at);
    let ended: Vec<Tried> = ended.into_iter().map(|(_, e)| e).collect();
    let attempts = ended.iter().map(|(_, a)| *a).max().unwrap_or(1).max(1);
    let failed: Vec<(usize, &String)> = ended
        .iter()
        .enumerate()
        .filter_map(|(at, (result, _))| result.as_ref().err().map(|e| (at, e)))
        .collect();
    let result = match failed.first() {
        None => {
            let results: Vec<Object> = ended.into_iter().filter_map(|(r, _)| r.ok()).collect();
            Ok(for_each::gather(&results))
        }
        Some((at, error)) => Err(format!(
            "{} of {count} items failed; the first, item {}: {error}",
            failed.len(),
            at + 1
        )),
    };
    Ended {
        index,
        key: None,
        result,
        attempts,
        started,
    }
}
