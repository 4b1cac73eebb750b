//! Who may do what on the broker: users, what each is granted, and the topics
//! each grant may publish and subscribe to.
//!
//! There are three grants (docs/security.md):
//! - `host`: everything (a copper-wasm host, or another host joining its broker);
//! - `runner`: send requests (`<service>/<action>`) and read what answers them,
//!   never answer one: no finish, start, status or resource;
//! - `serve <name>`: answer `<name>`'s requests (`<name>/#`), as an external
//!   service or a container does.
//!
//! The embedded broker enforces them ([`crate::broker`]); for another broker,
//! [`mosquitto_acl`] writes the same rules as a mosquitto `acl_file`.
//!
//! `file.rs`: the credentials file, made at first start, readable by its owner only.

pub mod file;

pub use file::{AccessError, Credentials};

use crate::protocol::{RESERVED_ACTIONS, is_action_topic};
use std::fmt;
use std::str::FromStr;

/// What a user may do on the broker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    /// Everything: a copper-wasm host.
    Host,
    /// Send requests and read their answers, events and presence.
    Runner,
    /// Answer the requests of one service (`<name>/#`).
    Serve(String),
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::Host => f.write_str("host"),
            Grant::Runner => f.write_str("runner"),
            Grant::Serve(name) => write!(f, "serve {name}"),
        }
    }
}

impl FromStr for Grant {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["host"] => Ok(Grant::Host),
            ["runner"] => Ok(Grant::Runner),
            ["serve", name] if crate::protocol::is_safe_name(name) => {
                Ok(Grant::Serve(name.to_string()))
            }
            ["serve", name] => Err(format!("`{name}` is not a service name")),
            _ => Err(format!(
                "`{text}` is not a grant: `host`, `runner` or `serve <service>`"
            )),
        }
    }
}

/// What a runner may read: every topic of three levels or more (answers, progress,
/// logs, resources, events), statuses, descriptions, errors and presence; never a
/// request (`<service>/<action>`), which only the hosts serving it may take.
pub const RUNNER_READS: [&str; 6] = [
    "+/+/+/#",
    "+/status",
    "+/describe",
    "+/error",
    "copper-wasm/#",
    "runner/#",
];

/// What a runner may publish besides requests: copper's runner topics, run events,
/// and the cancel of a request it gave up on (`<service>/<action>/cancel`).
pub const RUNNER_WRITES: [&str; 3] = ["runner/#", "copper/runs/#", "+/+/cancel"];

/// True when `grants` let a client publish on `topic`.
pub fn may_publish(grants: &[Grant], topic: &str) -> bool {
    grants.iter().any(|grant| match grant {
        Grant::Host => true,
        Grant::Runner => is_request(topic) || RUNNER_WRITES.iter().any(|rule| covers(rule, topic)),
        Grant::Serve(name) => covers(&format!("{name}/#"), topic),
    })
}

/// True when `grants` let a client publish on `topic` with the retain flag: a
/// retained request would run again on every host that subscribes later, so only
/// hosts may retain one.
pub fn may_retain(grants: &[Grant], topic: &str) -> bool {
    grants.contains(&Grant::Host) || (may_publish(grants, topic) && !is_request(topic))
}

/// True when `grants` let a client subscribe to `filter` (a shared one as its topic filter).
pub fn may_subscribe(grants: &[Grant], filter: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(rest) => match rest.split_once('/') {
            Some((_, filter)) => filter,
            None => return false,
        },
        None => filter,
    };
    grants.iter().any(|grant| match grant {
        Grant::Host => true,
        Grant::Runner => RUNNER_READS.iter().any(|rule| covers(rule, filter)),
        Grant::Serve(name) => {
            covers(&format!("{name}/#"), filter) || covers("copper-wasm/#", filter)
        }
    })
}

/// A request topic: `<service>/<action>`, the action not one a service keeps for itself.
fn is_request(topic: &str) -> bool {
    is_action_topic(topic)
        && topic
            .split_once('/')
            .is_some_and(|(_, action)| !RESERVED_ACTIONS.contains(&action))
}

/// True when every topic `filter` matches also matches `rule` (a topic is a filter
/// without wildcards). `$`-topics are covered only by rules that name them.
pub fn covers(rule: &str, filter: &str) -> bool {
    if filter.starts_with('$') && !rule.starts_with('$') {
        return false;
    }
    let mut rule = rule.split('/');
    let mut filter = filter.split('/');
    loop {
        match (rule.next(), filter.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) => {
                if level == "#" {
                    return false;
                }
            }
            (Some(r), Some(f)) => {
                if r != f {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The same rules as a mosquitto `acl_file`, for a broker someone else runs.
///
/// `users` are (user name, grants); `requests` are the action topics runners may
/// send (mosquitto cannot say "any action but the reserved ones").
pub fn mosquitto_acl(users: &[(String, Vec<Grant>)], requests: &[String]) -> String {
    let mut text = String::from(
        "# copper-wasm's access rules for mosquitto (acl_file); see docs/security.md.\n",
    );
    for (user, grants) in users {
        text.push_str(&format!("\nuser {user}\n"));
        for grant in grants {
            match grant {
                Grant::Host => text.push_str("topic readwrite #\n"),
                Grant::Runner => {
                    for topic in requests.iter().filter(|t| is_request(t)) {
                        text.push_str(&format!("topic write {topic}\n"));
                    }
                    for rule in RUNNER_WRITES {
                        text.push_str(&format!("topic readwrite {rule}\n"));
                    }
                    for rule in RUNNER_READS.iter().filter(|r| !RUNNER_WRITES.contains(r)) {
                        text.push_str(&format!("topic read {rule}\n"));
                    }
                }
                Grant::Serve(name) => {
                    text.push_str(&format!("topic readwrite {name}/#\n"));
                    text.push_str("topic read copper-wasm/#\n");
                }
            }
        }
    }
    text
}

/// Compares two secrets in time that depends on their lengths only.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_read_and_show_alike() {
        for text in ["host", "runner", "serve legacy"] {
            assert_eq!(text.parse::<Grant>().unwrap().to_string(), text);
        }
        assert!("serve ../x".parse::<Grant>().is_err());
        assert!(
            "admin"
                .parse::<Grant>()
                .unwrap_err()
                .contains("not a grant")
        );
    }

    #[test]
    fn a_runner_sends_requests_and_never_answers() {
        let runner = [Grant::Runner];
        assert!(may_publish(&runner, "fetcher/fetch"));
        assert!(may_publish(&runner, "runner/start"));
        assert!(may_publish(&runner, "copper/runs/r1/events"));
        for forged in [
            "fetcher/fetch/finish",
            "fetcher/fetch/start",
            "fetcher/status",
            "fetcher/describe",
            "fetcher/error",
            "fetcher/resources/site",
            "copper-wasm/hosts/a",
            "#",
        ] {
            assert!(!may_publish(&runner, forged), "{forged}");
        }
        assert!(may_subscribe(&runner, "fetcher/fetch/finish"));
        assert!(may_subscribe(&runner, "+/status"));
        assert!(may_subscribe(&runner, "copper-wasm/hosts/+"));
        for stolen in [
            "fetcher/fetch",
            "$share/copper-wasm/fetcher/fetch",
            "#",
            "+/+",
            "+/#",
            "$SYS/#",
        ] {
            assert!(!may_subscribe(&runner, stolen), "{stolen}");
        }
    }

    #[test]
    fn only_hosts_retain_a_request() {
        assert!(!may_retain(&[Grant::Runner], "fetcher/fetch"));
        assert!(may_retain(&[Grant::Runner], "runner/status"));
        let legacy = [Grant::Serve("legacy".into())];
        assert!(may_retain(&legacy, "legacy/status"));
        assert!(!may_retain(&legacy, "legacy/convert"));
        assert!(may_retain(&[Grant::Host], "fetcher/fetch"));
    }

    #[test]
    fn a_service_answers_only_its_own_requests() {
        let legacy = [Grant::Serve("legacy".into())];
        assert!(may_subscribe(&legacy, "$share/copper-wasm/legacy/convert"));
        assert!(may_publish(&legacy, "legacy/convert/finish"));
        assert!(may_publish(&legacy, "legacy/status"));
        assert!(!may_publish(&legacy, "fetcher/fetch/finish"));
        assert!(!may_subscribe(&legacy, "fetcher/fetch"));
        assert!(!may_subscribe(&legacy, "$share/"));
        assert!(may_publish(&[Grant::Host], "anything/at/all"));
    }

    #[test]
    fn coverage_is_of_every_topic_a_filter_matches() {
        assert!(covers("a/#", "a"));
        assert!(covers("a/#", "a/b/+"));
        assert!(covers("+/b", "x/b"));
        assert!(!covers("+/b", "#"));
        assert!(!covers("+/b", "+/#"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("#", "$SYS/x"));
        assert!(covers("+/+", "a/+"));
    }

    #[test]
    fn the_mosquitto_acl_lists_each_users_rules() {
        let acl = mosquitto_acl(
            &[
                ("h".into(), vec![Grant::Host]),
                ("r".into(), vec![Grant::Runner]),
            ],
            &["fetcher/fetch".into(), "fetcher/status".into()],
        );
        assert!(acl.contains("user h\ntopic readwrite #\n"));
        assert!(acl.contains("user r\ntopic write fetcher/fetch\n"));
        assert!(!acl.contains("fetcher/status"));
        assert!(acl.contains("topic read +/+/+/#\n"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }
}
