//! The shapes the YAML is deserialized into, before the reader checks them.

use super::docker::{Mode, PullPolicy};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) services: BTreeMap<String, Spanned<RawService>>,
    /// Requests running at once on the whole host.
    pub(super) workers: Option<Spanned<u64>>,
    /// Requests of one service waiting behind those running.
    pub(super) queue: Option<Spanned<u64>>,
}

/// One entry of `services:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) component: Option<Spanned<Value>>,
    pub(super) docker: Option<Spanned<RawContainer>>,
    #[serde(default)]
    pub(super) external: bool,
    pub(super) actions: Option<Spanned<RawActions>>,
    pub(super) grants: Option<Spanned<RawGrants>>,
    pub(super) concurrency: Option<Spanned<u64>>,
}

/// A component's `grants:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGrants {
    #[serde(default)]
    pub(super) capabilities: Vec<String>,
    #[serde(default)]
    pub(super) folders: Vec<RawFolder>,
    #[serde(default)]
    pub(super) env: Vec<String>,
    pub(super) reuse: Option<Spanned<u64>>,
}

/// One folder of `grants.folders`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFolder {
    pub(super) host: String,
    pub(super) guest: String,
    #[serde(default)]
    pub(super) write: bool,
}

/// A service's `actions:`, a list of names or a map of described actions.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawActions {
    Names(Vec<String>),
    Described(BTreeMap<String, RawAction>),
}

/// A described action.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    #[serde(default)]
    pub(super) doc: String,
    pub(super) input: Option<Value>,
    pub(super) output: Option<Value>,
}

/// A command: a list of words (numbers and booleans taken as written), or one line.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Words {
    Line(String),
    List(Vec<Word>),
}

/// One word of a command.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Word {
    Text(String),
    Integer(i64),
    Number(f64),
    Flag(bool),
}

impl Words {
    /// The words as text.
    pub(super) fn into_vec(self) -> Vec<String> {
        match self {
            // A command given as one line is split at white space.
            Words::Line(line) => line.split_whitespace().map(str::to_string).collect(),
            Words::List(list) => list
                .into_iter()
                .map(|word| match word {
                    Word::Text(text) => text,
                    Word::Integer(n) => n.to_string(),
                    Word::Number(n) => n.to_string(),
                    Word::Flag(b) => b.to_string(),
                })
                .collect(),
        }
    }
}

/// A container's fields, for a service's and a sidecar's alike (no `flatten`: it
/// would lose the locations of the fields).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawContainer {
    pub(super) image: Option<String>,
    pub(super) build: Option<String>,
    pub(super) dockerfile: Option<String>,
    pub(super) command: Option<Words>,
    pub(super) entrypoint: Option<Words>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, Spanned<Value>>,
    #[serde(default)]
    pub(super) volumes: Vec<Spanned<String>>,
    pub(super) memory: Option<Spanned<Value>>,
    pub(super) cpus: Option<Spanned<f64>>,
    #[serde(default)]
    pub(super) pull: PullPolicy,
    pub(super) ready_timeout: Option<Spanned<Value>>,
    // A service's only.
    pub(super) mode: Option<Mode>,
    pub(super) network: Option<String>,
    pub(super) timeout: Option<Spanned<Value>>,
    pub(super) sidecars: Option<BTreeMap<String, Spanned<RawContainer>>>,
    // A sidecar's only.
    pub(super) ready: Option<Words>,
}
