//! What a host is asked to do: check a workflow against the services it will meet,
//! run it, or call one action.

use super::Host;
use crate::bus::{Bus, BusError};
use crate::protocol::{self, Finish, Object};
use crate::runner::cache::StepCache;
use crate::runner::check::check_inputs;
use crate::runner::{self, RequestError, RunOptions, RunReport, Stamped};
use crate::services_file::BackendSpec;
use crate::workflow::{Workflow, WorkflowError};
use std::time::Duration;
use tokio_util::sync::DropGuard;

/// How long services on the broker are given at most to say they are up (a
/// clustered broker may take a second or more to send what it retained; the
/// wait ends as soon as every service needed is found).
const DISCOVERY: Duration = Duration::from_secs(3);

/// Why a workflow could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The workflow does not fit the services it meets (its file, line and field say where).
    #[error(transparent)]
    Invalid(#[from] WorkflowError),
    /// The bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// A workflow checked against the services it will meet, ready to run
/// ([`Host::check`], then [`Host::run_checked`]).
#[must_use = "a checked workflow runs with Host::run_checked"]
pub struct Checked<'w> {
    workflow: &'w Workflow,
    bus: Bus,
    /// Closes the bus if the workflow never runs, or its run is dropped.
    _connection: DropGuard,
}

impl Host {
    /// Checks `workflow` before anything runs: every action is answered (here, by a
    /// service of the services file, or by a service up on the broker), every
    /// `${VAR}` of `options.env` is set, and inputs without references match their
    /// action's schema.
    ///
    /// ```no_run
    /// # async fn example(host: &copper_wasm::Host) -> anyhow::Result<()> {
    /// use copper_wasm::host::RunError;
    /// use copper_wasm::runner::RunOptions;
    /// let workflow = copper_wasm::Workflow::parse(
    ///     "- action: nobody/answers\n",
    ///     std::path::Path::new("inline.yaml"),
    /// )?;
    /// match host.check(&workflow, &RunOptions::default()).await {
    ///     Err(RunError::Invalid(error)) => eprintln!("{error}"), // inline.yaml:1: ...
    ///     Err(other) => return Err(other.into()),
    ///     Ok(_) => unreachable!("no service answers `nobody/answers`"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn check<'w>(
        &self,
        workflow: &'w Workflow,
        options: &RunOptions,
    ) -> Result<Checked<'w>, RunError> {
        // The workflow's name in the id tells the trace whose requests these are.
        let name: String = workflow
            .name
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    true => c,
                    false => '_',
                },
            )
            .take(64)
            .collect();
        let id = format!(
            "{}{name}-{}",
            crate::graph::RUNNER_PREFIX,
            uuid::Uuid::new_v4().simple()
        );
        let (bus, connection) = self
            .connect_guarded(&id, Some(runner::runner_will()))
            .await?;
        match self.check_on(&bus, workflow, options).await {
            Ok(()) => Ok(Checked {
                workflow,
                bus,
                _connection: connection,
            }),
            Err(error) => {
                bus.close().await;
                Err(error)
            }
        }
    }

    async fn check_on(
        &self,
        bus: &Bus,
        workflow: &Workflow,
        options: &RunOptions,
    ) -> Result<(), RunError> {
        let used: Vec<&str> = workflow.steps.iter().map(|s| s.service()).collect();
        // Actions hosted here, those of the services file's containers, then those of
        // services up on the broker: ours describe their actions; copper's only say
        // `up`, so any action of theirs is taken (as with `options.external`).
        let mut known = self.registry.topics();
        let local: Vec<&str> = self.registry.services().map(|s| s.name.as_str()).collect();
        for spec in &self.services {
            if matches!(&spec.backend, BackendSpec::Docker(_)) {
                known.extend(spec.topics());
            }
        }
        let externals: Vec<&crate::services_file::ServiceSpec> = self
            .services
            .iter()
            .filter(|s| matches!(s.backend, BackendSpec::External) && used.contains(&&*s.name))
            .collect();
        let mut open = options.external.clone();
        let mut up = Vec::new();
        if self.remote
            || !externals.is_empty()
            || workflow.steps.iter().any(|s| !known.contains(&s.action))
        {
            let needed: Vec<&str> = workflow
                .steps
                .iter()
                .filter(|s| !known.contains(&s.action))
                .map(|s| s.service())
                .chain(externals.iter().map(|s| s.name.as_str()))
                .collect();
            for service in runner::services_up_for(bus, Some(&needed), DISCOVERY).await? {
                up.push(service.name.clone());
                match service.actions {
                    Some(actions) => known.extend(actions),
                    None if !local.contains(&service.name.as_str()) => open.push(service.name),
                    None => {}
                }
            }
        }
        for spec in externals {
            if !up.contains(&spec.name) {
                let step = workflow
                    .steps
                    .iter()
                    .find(|s| s.service() == spec.name)
                    .expect("a step uses it");
                let message = format!(
                    "step {} asks for `{}`, served by the external service `{}` ({}:{}), which is not up on the broker",
                    step.number,
                    step.action,
                    spec.name,
                    spec.file.display(),
                    spec.line
                );
                return Err(workflow.problem(step, "action", message).into());
            }
            known.extend(spec.topics());
        }
        known.sort();
        known.dedup();
        workflow.check_actions(&known, &open)?;
        check_inputs(workflow, &options.env, &self.schemas)?;
        Ok(())
    }

    /// Runs a workflow checked by [`Host::check`] on this host; `on_event` sees every
    /// event of the run. `options.schemas` are those of the actions known here.
    pub async fn run_checked(
        &self,
        checked: Checked<'_>,
        mut options: RunOptions,
        on_event: impl FnMut(&Stamped),
    ) -> Result<RunReport, RunError> {
        let Checked {
            workflow,
            bus,
            _connection,
        } = checked;
        options.schemas = self.schemas.clone();
        let report = runner::run(workflow, &bus, options, on_event).await;
        bus.close().await;
        Ok(report?)
    }

    /// Checks then runs a workflow on this host's broker, its steps answered by this
    /// host or any other on the broker; `on_event` sees every event of the run.
    ///
    /// ```no_run
    /// # async fn example(host: &copper_wasm::Host) -> anyhow::Result<()> {
    /// use copper_wasm::runner::{RunEvent, RunOptions};
    /// let workflow = copper_wasm::Workflow::parse(
    ///     "- action: markdown/build\n  resource: docs\n  path: /fetch/docs\n",
    ///     std::path::Path::new("inline.yaml"),
    /// )?;
    /// let report = host
    ///     .run(&workflow, RunOptions::default(), |event| {
    ///         if let RunEvent::StepFinished { step, status, .. } = &event.event {
    ///             println!("{step}: {}", status.as_str());
    ///         }
    ///     })
    ///     .await?;
    /// assert!(report.success());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run(
        &self,
        workflow: &Workflow,
        options: RunOptions,
        on_event: impl FnMut(&Stamped),
    ) -> Result<RunReport, RunError> {
        let checked = self.check(workflow, &options).await?;
        self.run_checked(checked, options, on_event).await
    }

    /// A step cache for runs on this host: a step is reused when the version of the
    /// component serving it, its input and the `/fetch` and `/web` files it names are
    /// unchanged. Steps naming no file, containers and services elsewhere always run.
    pub fn step_cache(&self) -> StepCache {
        let versions = self
            .registry
            .services()
            .filter(|s| {
                self.services.iter().all(|spec| {
                    spec.name != s.name || matches!(spec.backend, BackendSpec::Component(_))
                })
            })
            .map(|s| (s.name.clone(), s.version.clone()))
            .collect();
        StepCache::new(&self.cache, versions)
    }

    /// Calls one action (`fields` are the request's) and waits for its finish, at
    /// most `wait` when given. An action that no service here or on the broker
    /// answers is an error at once.
    ///
    /// ```no_run
    /// # async fn example(host: &copper_wasm::Host) -> anyhow::Result<()> {
    /// let mut fields = copper_wasm::protocol::Object::new();
    /// fields.insert("resource".into(), "docs".into());
    /// fields.insert("path".into(), "/fetch/docs".into());
    /// let finish = host.call("markdown/build", &fields, None).await?;
    /// println!("{} pages", finish.entry["pages"]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call(
        &self,
        topic: &str,
        fields: &Object,
        wait: Option<Duration>,
    ) -> Result<Finish, RequestError> {
        self.call_watching(topic, fields, wait, |_| {}).await
    }

    /// [`Host::call`], with `on_progress` seeing each progress message of the action.
    pub async fn call_watching(
        &self,
        topic: &str,
        fields: &Object,
        wait: Option<Duration>,
        on_progress: impl FnMut(String),
    ) -> Result<Finish, RequestError> {
        if !protocol::is_action_topic(topic) {
            return Err(RequestError::NotAnAction(topic.to_string()));
        }
        let (bus, pending) = self
            .caller
            .get_or_try_init(|| async {
                let id = format!("copper-wasm-call-{}", uuid::Uuid::new_v4().simple());
                let bus = self.connect(&id, None).await?;
                Ok::<_, BusError>((bus, runner::Pending::default()))
            })
            .await?;
        self.served(bus, topic).await?;
        let mut fields = fields.clone();
        fields
            .entry("action")
            .or_insert_with(|| serde_json::Value::from(topic));
        runner::request_among(bus, topic, &fields, wait, on_progress, pending).await
    }

    /// Whether a service here or on the broker answers `topic`.
    async fn served(&self, bus: &Bus, topic: &str) -> Result<(), RequestError> {
        let mut known = self.registry.topics();
        if known.iter().any(|t| t == topic) {
            return Ok(());
        }
        let service = protocol::service_of(topic);
        let up = runner::services_up_for(bus, Some(&[service]), DISCOVERY).await?;
        let served = up.iter().any(|s| {
            s.name == service
                && s.actions
                    .as_ref()
                    .is_none_or(|actions| actions.iter().any(|a| a == topic))
        });
        if served {
            return Ok(());
        }
        known.extend(up.into_iter().flat_map(|s| s.actions.unwrap_or_default()));
        known.sort();
        known.dedup();
        Err(RequestError::NotServed {
            topic: topic.to_string(),
            known,
        })
    }
}
