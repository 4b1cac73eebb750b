//! Each request answered once: a request delivered again (the same correlation id)
//! while it runs joins the run, and one that finished lately is answered from its
//! finish instead of running again.

use crate::bus::Delivery;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// A finish kept to answer a repeat with.
#[derive(Debug)]
pub(super) struct Finished {
    /// The action topic.
    pub topic: String,
    /// The finish payload.
    pub payload: Vec<u8>,
}

/// What to do with a request just delivered.
#[derive(Debug)]
pub(super) enum Taken {
    /// Run it: nobody here has it.
    New,
    /// It runs already: its delivery is acknowledged when that run finishes.
    Joined,
    /// It finished lately: answer with this.
    Answered(Arc<Finished>),
}

/// Deliveries of a request that runs (none for a delivery that needs no acknowledgement).
pub(super) type Deliveries = Vec<Option<Delivery>>;

#[derive(Default)]
struct State {
    running: HashMap<String, Deliveries>,
    recent: HashMap<String, Arc<Finished>>,
    /// The order `recent` was filled in, oldest first.
    order: VecDeque<String>,
}

/// The requests of one service running here, and those finished lately, by correlation id.
pub(super) struct Answers {
    state: Mutex<State>,
    /// How many finishes are kept.
    keep: usize,
}

impl Answers {
    /// Keeps the last `keep` finishes.
    pub fn new(keep: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            keep,
        }
    }

    /// Takes the request `id`, delivered with `delivery`.
    pub fn take(&self, id: &str, delivery: Option<Delivery>) -> Taken {
        let mut state = self.state.lock().expect("answers lock");
        if let Some(finished) = state.recent.get(id) {
            return Taken::Answered(finished.clone());
        }
        match state.running.get_mut(id) {
            Some(deliveries) => {
                if !deliveries.contains(&delivery) {
                    deliveries.push(delivery);
                }
                Taken::Joined
            }
            None => {
                state.running.insert(id.to_string(), vec![delivery]);
                Taken::New
            }
        }
    }

    /// The run of `id` ended with `finished` (kept for repeats when `keep` is true,
    /// not for a transient refusal); returns every delivery it answers.
    pub fn finish(&self, id: &str, finished: Finished, keep: bool) -> Deliveries {
        let mut state = self.state.lock().expect("answers lock");
        let deliveries = state.running.remove(id).unwrap_or_default();
        if keep && self.keep > 0 {
            if state.recent.len() >= self.keep
                && let Some(oldest) = state.order.pop_front()
            {
                state.recent.remove(&oldest);
            }
            state.recent.insert(id.to_string(), Arc::new(finished));
            state.order.push_back(id.to_string());
        }
        deliveries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished() -> Finished {
        Finished {
            topic: "testkit/echo".into(),
            payload: b"[{}]".to_vec(),
        }
    }

    #[test]
    fn a_repeat_joins_the_run_then_is_answered_from_its_finish() {
        let answers = Answers::new(2);
        assert!(matches!(answers.take("a", None), Taken::New));
        assert!(matches!(answers.take("a", None), Taken::Joined));
        assert_eq!(answers.finish("a", finished(), true), vec![None]);
        let Taken::Answered(kept) = answers.take("a", None) else {
            panic!("not answered from the finish")
        };
        assert_eq!(kept.payload, b"[{}]");
    }

    #[test]
    fn only_the_last_finishes_are_kept_and_refusals_not_at_all() {
        let answers = Answers::new(2);
        for id in ["a", "b", "c"] {
            assert!(matches!(answers.take(id, None), Taken::New));
            answers.finish(id, finished(), true);
        }
        assert!(matches!(answers.take("a", None), Taken::New));
        assert!(matches!(answers.take("c", None), Taken::Answered(_)));
        answers.finish("a", finished(), false);
        assert!(matches!(answers.take("a", None), Taken::New));
    }
}
