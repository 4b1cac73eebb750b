//! Acknowledgements of QoS 1 messages: as each is done (what mosquitto, nats-server
//! and the other brokers accept), or in the order the broker sent the messages
//! (MQTT 3.1.1, section 4.6, says a client must; rumqttd, the embedded broker,
//! disconnects one that does not).

use std::collections::VecDeque;
use std::sync::Mutex;

/// What is waiting to be acknowledged, and what may be sent.
pub(super) struct Acks {
    ordered: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// In ordered mode: every message arrived and not yet acknowledged, and whether
    /// its work is done.
    arrived: VecDeque<(u16, bool)>,
    /// Acknowledgements to send, in order (kept when the connection's queue is full).
    ready: VecDeque<u16>,
}

impl Acks {
    /// In order of arrival when `ordered`, else as each is done.
    pub fn new(ordered: bool) -> Self {
        Self {
            ordered,
            state: Mutex::new(State::default()),
        }
    }

    /// A QoS 1 message `pkid` arrived (sent again after a reconnection: already known).
    pub fn arrived(&self, pkid: u16) {
        if !self.ordered {
            return;
        }
        let mut state = self.state.lock().expect("acks lock");
        if !state.arrived.iter().any(|(p, _)| *p == pkid) {
            state.arrived.push_back((pkid, false));
        }
    }

    /// `pkid` is done: it may be acknowledged once those before it are.
    pub fn done(&self, pkid: u16) {
        let mut state = self.state.lock().expect("acks lock");
        if !self.ordered {
            state.ready.push_back(pkid);
            return;
        }
        if let Some(entry) = state.arrived.iter_mut().find(|(p, _)| *p == pkid) {
            entry.1 = true;
        }
        while let Some(&(pkid, true)) = state.arrived.front() {
            state.arrived.pop_front();
            state.ready.push_back(pkid);
        }
    }

    /// Sends what is ready with `send`, in order, stopping at the first it refuses.
    pub fn flush(&self, mut send: impl FnMut(u16) -> bool) {
        let mut state = self.state.lock().expect("acks lock");
        while let Some(&pkid) = state.ready.front() {
            if !send(pkid) {
                break;
            }
            state.ready.pop_front();
        }
    }

    /// A new session: nothing of the old one is acknowledged any more.
    pub fn clear(&self) {
        *self.state.lock().expect("acks lock") = State::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(acks: &Acks) -> Vec<u16> {
        let mut out = Vec::new();
        acks.flush(|pkid| {
            out.push(pkid);
            true
        });
        out
    }

    #[test]
    fn in_order_a_later_ack_waits_for_the_earlier_ones() {
        let acks = Acks::new(true);
        for pkid in [1, 2, 3] {
            acks.arrived(pkid);
        }
        acks.arrived(2);
        acks.done(3);
        acks.done(2);
        assert!(sent(&acks).is_empty());
        acks.done(1);
        assert_eq!(sent(&acks), [1, 2, 3]);
    }

    #[test]
    fn out_of_order_each_goes_when_done_and_a_refusal_keeps_the_rest() {
        let acks = Acks::new(false);
        acks.done(3);
        acks.done(1);
        acks.flush(|_| false);
        assert_eq!(sent(&acks), [3, 1]);
        acks.done(5);
        acks.clear();
        assert!(sent(&acks).is_empty());
    }
}
