//! `copper-wasm run` and `copper-wasm runs`: run a workflow (or resume one), list
//! and show past runs.

use super::{ANY_LOOPBACK_PORT, HostArgs, fail, interrupted, start};
use crate::environment::Environment;
use crate::host::BrokerChoice;
use crate::progress::{Progress, Style};
use crate::runner::record::{self, RunRecord};
use crate::runner::{self, ActionSchemas, RunOptions};
use crate::service::{ServiceInfo, check_schema};
use crate::services_file::{BackendSpec, ServicesFile};
use crate::workflow::expression::{self, Scope};
use crate::workflow::{Workflow, WorkflowError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `run` was asked.
pub struct RunArgs {
    /// The workflow file (none when resuming).
    pub workflow: Option<PathBuf>,
    /// The host.
    pub host: HostArgs,
    /// Services served by others, taken without a check.
    pub external: Vec<String>,
    /// Steps at once.
    pub max_parallel: usize,
    /// A `.env` file instead of the one beside the workflow.
    pub env_file: Option<PathBuf>,
    /// Events as JSON lines on standard output.
    pub json_events: bool,
    /// The run to resume.
    pub resume: Option<String>,
    /// Run every step, reusing no earlier success.
    pub no_cache: bool,
}

/// A host that cannot start because of one service: an error naming the first
/// step that asks for it (exit 2); any other: exit 3.
fn step_error(workflow: &Workflow, services: &ServicesFile, error: anyhow::Error) -> anyhow::Error {
    let service = error
        .downcast_ref::<crate::host::HostError>()
        .and_then(|e| e.service());
    let Some(step) = service.and_then(|name| workflow.steps.iter().find(|s| s.service() == name))
    else {
        return error.context("cannot start the host");
    };
    let service = step.service();
    let declared = services
        .get(service)
        .map(|s| format!(" ({}:{})", services.path.display(), s.line))
        .unwrap_or_default();
    let problem = format!("{error:#}");
    fail(
        2,
        step_problem(
            workflow,
            step,
            "action",
            format!(
                "step {} asks for `{}`, but service `{service}`{declared} cannot be served: {problem}",
                step.number, step.action
            ),
        ),
    )
}

fn step_problem(
    workflow: &Workflow,
    step: &crate::workflow::Step,
    field: &str,
    message: String,
) -> WorkflowError {
    WorkflowError {
        file: workflow.source.clone(),
        line: Some(step.line_of(field)),
        column: None,
        field: Some(field.to_string()),
        message,
    }
}

/// Checks before anything runs what can be checked without results: every
/// `${VAR}` is set, and inputs without references match their action's schema.
fn check_inputs(
    workflow: &Workflow,
    env: &BTreeMap<String, String>,
    schemas: &BTreeMap<String, ActionSchemas>,
) -> Result<(), WorkflowError> {
    struct Dry<'a> {
        env: BTreeMap<String, String>,
        secrets: &'a [String],
    }
    impl Scope for Dry<'_> {
        fn output(&self, _: &str, _: &str) -> Option<Value> {
            Some(Value::Null)
        }
        fn env(&self, name: &str) -> Option<String> {
            self.env.get(name).cloned()
        }
        fn is_secret(&self, name: &str) -> bool {
            self.secrets.iter().any(|s| s == name)
        }
    }
    let mut run_env = env.clone();
    run_env.extend(workflow.env.clone());
    for step in &workflow.steps {
        let mut step_env = run_env.clone();
        step_env.extend(step.env.clone());
        let dry = Dry {
            env: step_env,
            secrets: &workflow.secrets,
        };
        let mut plain = true;
        for (field, value) in &step.entry {
            expression::resolve(value, &dry)
                .map_err(|why| step_problem(workflow, step, field, why))?;
            plain &= !value.to_string().contains('$');
        }
        if let Some(schemas) = schemas.get(&step.action)
            && plain
        {
            check_schema(&schemas.input, &Value::Object(step.entry.clone())).map_err(|why| {
                step_problem(
                    workflow,
                    step,
                    "action",
                    format!(
                        "the input of step `{}` does not match the schema of `{}`: {why}",
                        step.id, step.action
                    ),
                )
            })?;
        }
    }
    Ok(())
}

/// The process environment over the `.env` file.
fn environment(env_file: Option<&Path>, folder: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let dotenv = match env_file {
        Some(path) => Environment::from_file(path).map_err(|e| fail(2, e))?,
        None => Environment::load(folder).map_err(|e| fail(2, e))?,
    };
    let mut env: BTreeMap<String, String> = dotenv.variables().clone();
    env.extend(std::env::vars());
    Ok(env)
}

fn compile_schemas(services: &[&ServiceInfo]) -> BTreeMap<String, ActionSchemas> {
    let mut schemas = BTreeMap::new();
    for service in services {
        for action in &service.actions {
            if let (Ok(input), Ok(output)) = (
                jsonschema::validator_for(&action.input_schema),
                jsonschema::validator_for(&action.output_schema),
            ) {
                schemas.insert(service.topic(action), ActionSchemas { input, output });
            }
        }
    }
    schemas
}

/// `copper-wasm run`.
pub async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let cache = args.host.cache.clone();
    let (workflow, text, resumed) = match (&args.resume, &args.workflow) {
        (Some(id), _) => {
            let (state, _) = record::show(&cache, id).map_err(|e| {
                fail(
                    2,
                    format!(
                        "no run `{id}` in {}: {e}",
                        record::runs_dir(&cache).display()
                    ),
                )
            })?;
            let text =
                std::fs::read_to_string(record::runs_dir(&cache).join(id).join("workflow.yaml"))
                    .map_err(|e| fail(2, format!("run `{id}` has no workflow: {e}")))?;
            let workflow = Workflow::parse(&text, &state.source).map_err(|e| fail(2, e))?;
            (workflow, text, Some((id.clone(), state)))
        }
        (None, Some(path)) => {
            let workflow = Workflow::load(path).map_err(|e| fail(2, e))?;
            let text = std::fs::read_to_string(path)?;
            (workflow, text, None)
        }
        (None, None) => return Err(fail(2, "give a workflow file, or --resume RUN")),
    };
    let folder = workflow
        .source
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let env = environment(args.env_file.as_deref(), &folder)?;
    let services = args.host.services_file(&folder)?.unwrap_or_default();
    let mut config = args.host.config(ANY_LOOPBACK_PORT)?;
    // Components are cheap to host; containers only start for the services the workflow uses.
    let used: Vec<&str> = workflow.steps.iter().map(|s| s.service()).collect();
    config.services = services
        .services
        .iter()
        .filter(|s| {
            matches!(s.backend, BackendSpec::Component(_)) || used.contains(&s.name.as_str())
        })
        .cloned()
        .collect();
    if args.host.no_local_services {
        config.services.clear();
    }
    let remote_broker = matches!(config.broker, BrokerChoice::External(_));
    let (host, bus) = match start(config, "runner", Some(runner::runner_will())).await {
        Ok(started) => started,
        Err(error) => return Err(step_error(&workflow, &services, error)),
    };
    // Actions hosted here, then those of services up on the broker: ours describe their
    // actions; copper's only say `up`, so any action of theirs is taken (as with --external).
    let mut known = host.registry().topics();
    let local: Vec<String> = host.registry().services().map(|s| s.name.clone()).collect();
    let declared: Vec<ServiceInfo> = services
        .services
        .iter()
        .filter(|s| !matches!(s.backend, BackendSpec::Component(_)))
        .map(|s| ServiceInfo {
            name: s.name.clone(),
            version: String::new(),
            actions: s.actions.clone().unwrap_or_default(),
            capabilities: Vec::new(),
        })
        .collect();
    for spec in &services.services {
        if matches!(&spec.backend, BackendSpec::Docker(_)) {
            known.extend(spec.topics());
        }
    }
    let externals: Vec<&str> = services
        .services
        .iter()
        .filter(|s| matches!(s.backend, BackendSpec::External) && used.contains(&s.name.as_str()))
        .map(|s| s.name.as_str())
        .collect();
    let mut open = args.external.clone();
    let mut up = Vec::new();
    if remote_broker
        || !externals.is_empty()
        || workflow.steps.iter().any(|s| !known.contains(&s.action))
    {
        for service in runner::services_up(&bus, Duration::from_millis(300)).await? {
            up.push(service.name.clone());
            match service.actions {
                Some(actions) => known.extend(actions),
                None if !local.contains(&service.name) => open.push(service.name),
                None => {}
            }
        }
    }
    let checked: Result<BTreeMap<String, ActionSchemas>, WorkflowError> = 'check: {
        for name in externals {
            if !up.iter().any(|u| u == name) {
                let step = workflow
                    .steps
                    .iter()
                    .find(|s| s.service() == name)
                    .expect("a step uses it");
                let message = format!(
                    "step {} asks for `{}`, served by the external service `{name}` ({}), which is not up on the broker",
                    step.number,
                    step.action,
                    services.path.display()
                );
                break 'check Err(step_problem(&workflow, step, "action", message));
            }
            let spec = services.get(name).expect("an external service of the file");
            known.extend(spec.topics());
        }
        known.sort();
        known.dedup();
        if let Err(error) = workflow.check_actions(&known, &open) {
            break 'check Err(error);
        }
        let infos: Vec<&ServiceInfo> = host.registry().services().chain(&declared).collect();
        let schemas = compile_schemas(&infos);
        check_inputs(&workflow, &env, &schemas).map(|()| schemas)
    };
    let schemas = match checked {
        Ok(schemas) => schemas,
        Err(error) => {
            host.stop().await;
            return Err(fail(2, error));
        }
    };

    let secrets = runner::secret_values(&workflow, &env);
    let (mut record, done, run_id) = match &resumed {
        Some((id, state)) => {
            let (record, _, _) = RunRecord::resume(&cache, id, secrets)?;
            (record, state.succeeded(), id.clone())
        }
        None => {
            let id = record::new_run_id();
            let steps: Vec<(String, String)> = workflow
                .steps
                .iter()
                .map(|s| (s.id.clone(), s.action.clone()))
                .collect();
            let record = RunRecord::create(
                &cache,
                &id,
                &workflow.name,
                &workflow.source,
                &text,
                &steps,
                secrets,
            )
            .map_err(|e| fail(3, format!("cannot write the run's folder: {e}")))?;
            (record, BTreeMap::new(), id)
        }
    };
    // Components hosted here are reused when nothing they read changed; containers
    // and services elsewhere always run.
    let versions: BTreeMap<String, String> = host
        .registry()
        .services()
        .filter(|s| declared.iter().all(|d| d.name != s.name))
        .map(|s| (s.name.clone(), s.version.clone()))
        .collect();
    let options = RunOptions {
        run_id,
        max_parallel: args.max_parallel.max(1),
        env,
        schemas,
        done,
        cache: (!args.no_cache).then(|| runner::cache::StepCache::new(&cache, versions)),
    };
    let style = if args.json_events {
        Style::Json
    } else {
        Style::detect()
    };
    let mut progress = Progress::new(&workflow, style);
    let outcome = tokio::select! {
        report = runner::run(&workflow, &bus, options, |event| {
            if let Err(error) = record.record(event) {
                tracing::error!(%error, "cannot write the run's history");
            }
            progress.show(event);
        }) => Some(report?),
        () = interrupted() => None,
    };
    bus.close().await;
    host.stop().await;
    match outcome {
        Some(report) => {
            if !args.json_events {
                crate::progress::print_summary(&report);
            }
            Ok(if report.success() { 0 } else { 1 })
        }
        None => {
            eprintln!(
                "interrupted; `copper-wasm run --resume {}` goes on where it stopped",
                record
                    .dir()
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
            );
            Ok(130)
        }
    }
}

/// `copper-wasm runs [show ID]`.
pub fn runs(cache: &Path, show: Option<String>, json: bool) -> anyhow::Result<u8> {
    match show {
        None => {
            let runs = record::list(cache);
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(0);
            }
            if runs.is_empty() {
                println!("no runs in {}", record::runs_dir(cache).display());
            }
            for run in runs {
                let ok = run
                    .steps
                    .values()
                    .filter(|s| s.status == "success" || s.status == "cached")
                    .count();
                println!(
                    "{}  {:<8} {}  {}/{} steps  {}",
                    run.id,
                    run.status,
                    run.started,
                    ok,
                    run.steps.len(),
                    run.workflow
                );
            }
            Ok(0)
        }
        Some(id) => {
            let (state, history) = record::show(cache, &id).map_err(|e| {
                fail(
                    2,
                    format!(
                        "no run `{id}` in {}: {e}",
                        record::runs_dir(cache).display()
                    ),
                )
            })?;
            if json {
                let value = serde_json::json!({"state": state, "events": history});
                println!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(0);
            }
            println!(
                "run {} of {} ({}): {}, started {}{}",
                state.id,
                state.workflow,
                state.source.display(),
                state.status,
                state.started,
                state
                    .finished
                    .as_deref()
                    .map(|f| format!(", finished {f}"))
                    .unwrap_or_default()
            );
            for (id, step) in &state.steps {
                println!(
                    "  {id:<16} {:<24} {:<8} {:>6} ms  tries {}{}",
                    step.action,
                    step.status,
                    step.duration_ms,
                    step.attempts,
                    step.error
                        .as_deref()
                        .map(|e| format!("  {}", e.lines().next().unwrap_or_default()))
                        .unwrap_or_default()
                );
            }
            println!(
                "{} events in {}",
                history.len(),
                record::runs_dir(cache)
                    .join(&id)
                    .join("events.jsonl")
                    .display()
            );
            Ok(0)
        }
    }
}
