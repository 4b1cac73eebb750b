//! `on:` and `concurrency:`: what starts a workflow by itself, and how its runs
//! share the daemon (docs/triggers.md). Checked with the rest of the workflow,
//! every error naming its file, line and field.
//!
//! ```yaml
//! on:
//!   schedule:
//!     - cron: "*/10 * * * *"        # 5 fields, or 6 with seconds first
//!       timezone: Europe/Zurich     # default UTC
//!       missed: run-once            # or skip (the default)
//!   mqtt: sensors/+/reading         # a topic filter, or a list of them
//!   resource: fetcher/resources/test-website
//!   webhook:
//!     secret: SITE_HOOK_TOKEN       # the variable holding its token
//!   watch:
//!     paths: ["docs/**/*.md"]
//!     debounce: 500ms
//!   workflow_run:
//!     workflows: [build]
//!     status: [failed]
//!   manual: true
//! concurrency:
//!   max: 1
//!   when_busy: queue                # or skip, or cancel-oldest
//! ```

use super::read::error;
use super::{WorkflowError, expression::is_name};
use crate::timeout;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::path::Path;
use std::time::Duration;

/// What starts a workflow by itself; empty: only when asked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Triggers {
    /// `schedule`: cron expressions.
    pub schedules: Vec<Schedule>,
    /// `mqtt`: topic filters; each message starts a run.
    pub mqtt: Vec<String>,
    /// `resource`: resources produced by services (`<service>/resources/<name>`).
    pub resources: Vec<String>,
    /// `webhook`: `POST /v1/hooks/<workflow>` with its token.
    pub webhook: Option<Webhook>,
    /// `watch`: files under the working folder.
    pub watch: Option<Watch>,
    /// `workflow_run`: another workflow ended.
    pub workflow_run: Option<WorkflowRun>,
    /// `manual: true` (or nothing else): run only when asked.
    pub manual: bool,
}

impl Triggers {
    /// True when nothing starts the workflow but a request.
    pub fn is_empty(&self) -> bool {
        self.schedules.is_empty()
            && self.mqtt.is_empty()
            && self.resources.is_empty()
            && self.webhook.is_none()
            && self.watch.is_none()
            && self.workflow_run.is_none()
    }
}

/// One `schedule` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// The cron expression: 5 fields, or 6 with seconds first.
    pub cron: String,
    /// The time zone it is read in (IANA name; UTC when not given).
    pub timezone: Option<String>,
    /// What a daemon that was down when it fell due does once up.
    pub missed: Missed,
}

/// What becomes of a schedule's times that passed while the daemon was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missed {
    /// Nothing: the next time is the next one to come.
    #[default]
    Skip,
    /// One run at start for all the times missed.
    RunOnce,
}

/// `webhook`: its token is in an environment variable, never in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// The variable holding the token.
    pub secret: String,
}

/// `watch`: paths (globs) under the working folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    /// The globs.
    pub paths: Vec<String>,
    /// How long changes must stop for before a run starts.
    pub debounce: Duration,
}

/// `workflow_run`: another workflow of the daemon ended.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRun {
    /// Their names.
    pub workflows: Vec<String>,
    /// The statuses that count (`success`, `failed`, `cancelled`); empty: any.
    pub status: Vec<String>,
}

/// How many runs of a workflow go on at once, and what a trigger does beyond that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concurrency {
    /// Runs at once, at most.
    pub max: usize,
    /// What a trigger does when that many run.
    pub when_busy: WhenBusy,
}

impl Default for Concurrency {
    fn default() -> Self {
        Self {
            max: 1,
            when_busy: WhenBusy::Queue,
        }
    }
}

/// What a trigger does when a workflow already runs as many times as it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    /// Wait for one of them to end.
    Queue,
    /// Start nothing.
    Skip,
    /// Cancel the oldest run, then start.
    CancelOldest,
}

/// One item or a list of them, as YAML lets either be written.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// `on:` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOn {
    schedule: Option<Spanned<OneOrMany<Spanned<RawSchedule>>>>,
    mqtt: Option<Spanned<OneOrMany<Spanned<String>>>>,
    resource: Option<Spanned<OneOrMany<Spanned<String>>>>,
    webhook: Option<Spanned<RawWebhook>>,
    watch: Option<Spanned<RawWatch>>,
    workflow_run: Option<Spanned<RawWorkflowRun>>,
    manual: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: String,
    timezone: Option<String>,
    missed: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    paths: OneOrMany<String>,
    debounce: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflowRun {
    workflows: OneOrMany<String>,
    #[serde(default)]
    status: Option<OneOrMany<String>>,
}

/// `concurrency:` as written: a number (`max`), or the mapping.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawConcurrency {
    Max(u64),
    Full {
        max: Option<u64>,
        when_busy: Option<String>,
    },
}

/// The statuses a run ends with.
const STATUSES: [&str; 3] = ["success", "failed", "cancelled"];

/// Reads `on:`, checked.
pub(super) fn triggers(raw: RawOn, source: &Path) -> Result<Triggers, WorkflowError> {
    let at =
        |line: u64, field: &str, why: String| error(source, Some(line), None, Some(field), why);
    let mut triggers = Triggers::default();
    // Inside a one-or-many the items' own places are lost: the list's stands in.
    let line_in = |outer: u64, inner: u64| if inner == 0 { outer } else { inner };
    if let Some(schedule) = raw.schedule {
        let outer = schedule.referenced.line();
        for (index, entry) in schedule.value.into_vec().into_iter().enumerate() {
            let line = line_in(outer, entry.referenced.line());
            let field = format!("on.schedule[{index}]");
            let entry = entry.value;
            check_cron(&entry.cron, entry.timezone.as_deref())
                .map_err(|why| at(line, &format!("{field}.cron"), why))?;
            let missed = match entry.missed.as_deref() {
                None | Some("skip") => Missed::Skip,
                Some("run-once") => Missed::RunOnce,
                Some(other) => {
                    return Err(at(
                        line,
                        &format!("{field}.missed"),
                        format!("must be `skip` or `run-once`, got `{other}`"),
                    ));
                }
            };
            triggers.schedules.push(Schedule {
                cron: entry.cron,
                timezone: entry.timezone,
                missed,
            });
        }
    }
    if let Some(mqtt) = raw.mqtt {
        let outer = mqtt.referenced.line();
        for (index, filter) in mqtt.value.into_vec().into_iter().enumerate() {
            let line = line_in(outer, filter.referenced.line());
            check_filter(&filter.value)
                .map_err(|why| at(line, &format!("on.mqtt[{index}]"), why))?;
            triggers.mqtt.push(filter.value);
        }
    }
    if let Some(resource) = raw.resource {
        let outer = resource.referenced.line();
        for (index, topic) in resource.value.into_vec().into_iter().enumerate() {
            let line = line_in(outer, topic.referenced.line());
            let parts: Vec<&str> = topic.value.split('/').collect();
            if !matches!(parts.as_slice(), [service, "resources", name] if is_name(service) && is_name(name))
            {
                return Err(at(
                    line,
                    &format!("on.resource[{index}]"),
                    format!(
                        "must be a resource `<service>/resources/<name>`, got `{}`",
                        topic.value
                    ),
                ));
            }
            triggers.resources.push(topic.value);
        }
    }
    if let Some(webhook) = raw.webhook {
        let line = webhook.referenced.line();
        let secret = webhook.value.secret.ok_or_else(|| {
            at(
                line,
                "on.webhook.secret",
                "a webhook needs `secret: VARIABLE`, the environment variable holding its token"
                    .into(),
            )
        })?;
        if !is_variable(&secret) {
            return Err(at(
                line,
                "on.webhook.secret",
                format!(
                    "must name an environment variable (the token is never written in the file), got `{secret}`"
                ),
            ));
        }
        triggers.webhook = Some(Webhook { secret });
    }
    if let Some(watch) = raw.watch {
        let line = watch.referenced.line();
        let paths = watch.value.paths.into_vec();
        for path in &paths {
            if path.starts_with('/') || path.split('/').any(|p| p == "..") {
                return Err(at(
                    line,
                    "on.watch.paths",
                    format!("`{path}` leaves the working folder: paths are relative, without `..`"),
                ));
            }
            globset::Glob::new(path).map_err(|e| at(line, "on.watch.paths", e.to_string()))?;
        }
        let debounce = match &watch.value.debounce {
            Some(value) => {
                timeout::parse(value).map_err(|why| at(line, "on.watch.debounce", why))?
            }
            None => Duration::from_millis(500),
        };
        triggers.watch = Some(Watch { paths, debounce });
    }
    if let Some(run) = raw.workflow_run {
        let line = run.referenced.line();
        let workflows = run.value.workflows.into_vec();
        let status = run
            .value
            .status
            .map(OneOrMany::into_vec)
            .unwrap_or_default();
        if let Some(bad) = status.iter().find(|s| !STATUSES.contains(&s.as_str())) {
            return Err(at(
                line,
                "on.workflow_run.status",
                format!("`{bad}` is not a run's status: success, failed or cancelled"),
            ));
        }
        triggers.workflow_run = Some(WorkflowRun { workflows, status });
    }
    triggers.manual = raw.manual.map(|m| m.value).unwrap_or(false);
    Ok(triggers)
}

/// Reads `concurrency:`, checked; `line` is its key's.
pub(super) fn concurrency(
    raw: RawConcurrency,
    source: &Path,
    line: Option<u64>,
) -> Result<Concurrency, WorkflowError> {
    let at = |field: &str, why: String| error(source, line, None, Some(field), why);
    let (max, when_busy) = match raw {
        RawConcurrency::Max(max) => (Some(max), None),
        RawConcurrency::Full { max, when_busy } => (max, when_busy),
    };
    let max = match max {
        None => 1,
        Some(n) if (1..=4096).contains(&n) => n as usize,
        Some(n) => {
            return Err(at(
                "concurrency.max",
                format!("must be a whole number from 1 to 4096, got {n}"),
            ));
        }
    };
    let when_busy = match when_busy.as_deref() {
        None | Some("queue") => WhenBusy::Queue,
        Some("skip") => WhenBusy::Skip,
        Some("cancel-oldest") => WhenBusy::CancelOldest,
        Some(other) => {
            return Err(at(
                "concurrency.when_busy",
                format!("must be `queue`, `skip` or `cancel-oldest`, got `{other}`"),
            ));
        }
    };
    Ok(Concurrency { max, when_busy })
}

/// A cron expression of 5 fields (or 6, seconds first) in `timezone`.
fn check_cron(cron: &str, timezone: Option<&str>) -> Result<(), String> {
    cron_of(cron).map_err(|why| format!("`{cron}` is not a cron expression: {why}"))?;
    if let Some(zone) = timezone {
        zone.parse::<chrono_tz::Tz>()
            .map_err(|_| format!("`{zone}` is not a time zone (an IANA name: `Europe/Zurich`)"))?;
    }
    Ok(())
}

/// The cron expression, parsed (seconds optional, first).
pub fn cron_of(cron: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(cron)
        .map_err(|e| e.to_string())
}

/// An MQTT topic filter: levels, `+` for one, `#` last for the rest.
fn check_filter(filter: &str) -> Result<(), String> {
    let levels: Vec<&str> = filter.split('/').collect();
    let bad = filter.is_empty()
        || filter.starts_with('$')
        || levels.iter().enumerate().any(|(i, level)| {
            (level.contains('#') && (*level != "#" || i + 1 != levels.len()))
                || (level.contains('+') && *level != "+")
        });
    if bad {
        return Err(format!(
            "`{filter}` is not an MQTT topic filter (levels split by `/`, `+` for one level, `#` last)"
        ));
    }
    Ok(())
}

/// An environment variable's name.
fn is_variable(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Workflow;

    fn read(text: &str) -> Result<Workflow, WorkflowError> {
        Workflow::parse(text, Path::new("w.yaml"))
    }

    #[test]
    fn every_trigger_is_read() {
        let workflow = read(
            "on:\n  schedule:\n    - cron: '*/2 * * * * *'\n      timezone: Europe/Zurich\n      missed: run-once\n    - cron: '0 0 * * *'\n  mqtt: sensors/+/reading\n  resource: fetcher/resources/test-website\n  webhook:\n    secret: HOOK_TOKEN\n  watch:\n    paths: ['docs/**/*.md']\n    debounce: 2s\n  workflow_run:\n    workflows: [build]\n    status: failed\n  manual: true\nconcurrency:\n  max: 2\n  when_busy: cancel-oldest\nsteps:\n  - action: testkit/echo\n    said: ${{ trigger.payload.temperature }}\n",
        )
        .unwrap();
        let on = &workflow.on;
        assert_eq!(on.schedules.len(), 2);
        assert_eq!(on.schedules[0].cron, "*/2 * * * * *");
        assert_eq!(on.schedules[0].timezone.as_deref(), Some("Europe/Zurich"));
        assert_eq!(on.schedules[0].missed, Missed::RunOnce);
        assert_eq!(on.schedules[1].missed, Missed::Skip);
        assert_eq!(on.mqtt, vec!["sensors/+/reading".to_string()]);
        assert_eq!(
            on.resources,
            vec!["fetcher/resources/test-website".to_string()]
        );
        assert_eq!(on.webhook.as_ref().unwrap().secret, "HOOK_TOKEN");
        let watch = on.watch.as_ref().unwrap();
        assert_eq!(
            (watch.paths.len(), watch.debounce),
            (1, Duration::from_secs(2))
        );
        let run = on.workflow_run.as_ref().unwrap();
        assert_eq!(
            (run.workflows.clone(), run.status.clone()),
            (vec!["build".to_string()], vec!["failed".to_string()])
        );
        assert!(on.manual && !on.is_empty());
        assert_eq!(
            workflow.concurrency,
            Concurrency {
                max: 2,
                when_busy: WhenBusy::CancelOldest
            }
        );
        let bare = read("- action: testkit/echo\n").unwrap();
        assert!(bare.on.is_empty());
        assert_eq!(bare.concurrency, Concurrency::default());
    }

    #[test]
    fn a_wrong_trigger_is_named_with_its_line_and_field() {
        let steps = "steps:\n  - action: testkit/echo\n";
        let cases = [
            (
                "on:\n  schedule:\n    - cron: 'every day'\n",
                (3, "on.schedule[0].cron", "is not a cron expression"),
            ),
            (
                "on:\n  schedule:\n    - cron: '0 0 * * *'\n      timezone: Mars/Olympus\n",
                (3, "on.schedule[0].cron", "is not a time zone"),
            ),
            (
                "on:\n  schedule:\n    - cron: '0 0 * * *'\n      missed: all\n",
                (3, "on.schedule[0].missed", "`skip` or `run-once`"),
            ),
            (
                "on:\n  mqtt: 'a/#/b'\n",
                (2, "on.mqtt[0]", "is not an MQTT topic filter"),
            ),
            (
                "on:\n  resource: fetcher/test\n",
                (2, "on.resource[0]", "<service>/resources/<name>"),
            ),
            (
                "on:\n  webhook: {}\n",
                (
                    2,
                    "on.webhook.secret",
                    "environment variable holding its token",
                ),
            ),
            (
                "on:\n  webhook:\n    secret: 'hunter 2'\n",
                (3, "on.webhook.secret", "never written in the file"),
            ),
            (
                "on:\n  watch:\n    paths: ['../etc']\n",
                (3, "on.watch.paths", "leaves the working folder"),
            ),
            (
                "on:\n  workflow_run:\n    workflows: [a]\n    status: [crashed]\n",
                (3, "on.workflow_run.status", "not a run's status"),
            ),
            (
                "concurrency:\n  when_busy: later\n",
                (
                    1,
                    "concurrency.when_busy",
                    "`queue`, `skip` or `cancel-oldest`",
                ),
            ),
            ("concurrency: 0\n", (1, "concurrency.max", "from 1 to 4096")),
        ];
        for (head, (line, field, words)) in cases {
            let error = read(&format!("{head}{steps}")).unwrap_err();
            assert_eq!(error.line, Some(line), "{head}: {error}");
            assert_eq!(error.field.as_deref(), Some(field), "{head}: {error}");
            assert!(error.message.contains(words), "{head}: {error}");
        }
        let unknown = read(&format!("on:\n  cron: x\n{steps}")).unwrap_err();
        assert_eq!(unknown.line, Some(2), "{unknown}");
        assert!(unknown.message.contains("cron"), "{unknown}");
    }

    #[test]
    fn a_trigger_field_is_referenced_at_any_depth() {
        use crate::workflow::expression::{Scope, resolve};
        struct Fired(serde_json::Value);
        impl Scope for Fired {
            fn output(&self, _: &str, _: &str) -> Option<serde_json::Value> {
                None
            }
            fn env(&self, _: &str) -> Option<String> {
                None
            }
            fn is_secret(&self, _: &str) -> bool {
                false
            }
            fn trigger(&self, path: &[String]) -> Option<serde_json::Value> {
                crate::workflow::expression::field_at(&self.0, path)
            }
        }
        let fired = Fired(
            serde_json::json!({"topic": "sensors/a/reading", "payload": {"values": [20, 21]}}),
        );
        let value = serde_json::json!({"t": "${{ trigger.payload.values.1 }}", "s": "from ${{ trigger.topic }}"});
        let resolved = resolve(&value, &fired).unwrap();
        assert_eq!(
            resolved,
            serde_json::json!({"t": 21, "s": "from sensors/a/reading"})
        );
        let missing = resolve(&serde_json::json!("${{ trigger.nothing }}"), &fired).unwrap_err();
        assert!(missing.contains("no `trigger.nothing`"), "{missing}");
    }
}
