//! `copper-wasm run` and `copper-wasm runs`: run a workflow (or resume one), list
//! and show past runs.

use super::{ANY_LOOPBACK_PORT, CliError, HostArgs, interrupted, print_json};
use copper_wasm::Host;
use copper_wasm::access::Grant;
use copper_wasm::copili;
use copper_wasm::environment::Environment;
use copper_wasm::host::HostError;
use copper_wasm::progress::{Progress, Style};
use copper_wasm::runner::record::{self, RunRecord};
use copper_wasm::runner::{self, RunOptions, StepStatus};
use copper_wasm::services_file::{BackendSpec, ServicesFile};
use copper_wasm::workflow::Workflow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

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
fn step_error(workflow: &Workflow, services: &ServicesFile, error: HostError) -> CliError {
    let step = error
        .service()
        .and_then(|name| workflow.steps.iter().find(|s| s.service() == name));
    let Some(step) = step else {
        return CliError::Start(Box::new(error));
    };
    let service = step.service();
    let declared = services
        .get(service)
        .map(|s| format!(" ({}:{})", s.file.display(), s.line))
        .unwrap_or_default();
    CliError::Unservable {
        problem: Box::new(workflow.problem(
            step,
            "action",
            format!(
                "step {} asks for `{}`, but service `{service}`{declared} cannot be served",
                step.number, step.action
            ),
        )),
        source: Box::new(error),
    }
}

/// The process environment over the `.env` file.
fn environment(
    env_file: Option<&Path>,
    folder: &Path,
) -> Result<BTreeMap<String, String>, CliError> {
    let dotenv = match env_file {
        Some(path) => Environment::from_file(path),
        None => Environment::load(folder),
    }
    .map_err(CliError::Environment)?;
    let mut env: BTreeMap<String, String> = dotenv.variables().clone();
    env.extend(std::env::vars());
    Ok(env)
}

/// `copper-wasm run`.
pub async fn run(args: RunArgs) -> Result<(), CliError> {
    let cache = args.host.cache.clone();
    let (workflow, text, resumed) = match (&args.resume, &args.workflow) {
        (Some(id), _) => {
            let state = record::state(&cache, id).map_err(|source| no_run(&cache, id, source))?;
            let text =
                std::fs::read_to_string(record::runs_dir(&cache).join(id).join("workflow.yaml"))
                    .map_err(|source| CliError::RunWithoutWorkflow {
                        id: id.clone(),
                        source,
                    })?;
            let workflow = Workflow::parse(&text, &state.source)?;
            (workflow, text, Some((id.clone(), state)))
        }
        (None, Some(path)) => {
            let (workflow, text) = Workflow::read(path).or_else(|error| {
                // A copili pipeline file: its static containers.
                match copili_services(path)? {
                    Some(_) => {
                        let pipeline = copili::load(path)?;
                        Ok::<_, CliError>((pipeline.workflow, pipeline.text))
                    }
                    None => Err(error.into()),
                }
            })?;
            (workflow, text, None)
        }
        (None, None) => return Err(CliError::NoWorkflow),
    };
    // The containers of a copili pipeline (the one read, or the one resumed).
    let pipeline_services = copili_services(&workflow.source)?.unwrap_or_default();
    let folder = workflow
        .source
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let env = environment(args.env_file.as_deref(), &folder)?;
    let services = args.host.services_file(&folder)?.unwrap_or_default();
    let mut config = args.host.config(ANY_LOOPBACK_PORT, Grant::Runner)?;
    // Components are cheap to host; containers only start for the services the workflow uses.
    let used: Vec<&str> = workflow.steps.iter().map(|s| s.service()).collect();
    config.services = services
        .services
        .iter()
        .chain(&pipeline_services)
        .filter(|s| {
            matches!(s.backend, BackendSpec::Component(_)) || used.contains(&s.name.as_str())
        })
        .cloned()
        .collect();
    if args.host.no_local_services {
        // Nothing is served here; external services are still checked for being up.
        config
            .services
            .retain(|s| matches!(s.backend, BackendSpec::External));
    }
    let host = match Host::start(config, CancellationToken::new()).await {
        Ok(host) => host,
        Err(error) => return Err(step_error(&workflow, &services, error)),
    };
    // Every way out stops the host: nothing it started outlives the command.
    let outcome = run_on(&host, &args, &workflow, &text, resumed, env).await;
    host.stop().await;
    outcome
}

/// The container services of the copili pipeline in `path`, when it is one.
fn copili_services(
    path: &Path,
) -> Result<Option<Vec<copper_wasm::services_file::ServiceSpec>>, CliError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    if !copili::is_pipeline(&text) {
        return Ok(None);
    }
    Ok(Some(copili::load(path)?.services))
}

/// Run `id` is not in the cache.
fn no_run(cache: &Path, id: &str, source: std::io::Error) -> CliError {
    CliError::NoRun {
        id: id.to_string(),
        dir: record::runs_dir(cache),
        source,
    }
}

/// The run itself, on a started host.
async fn run_on(
    host: &Host,
    args: &RunArgs,
    workflow: &Workflow,
    text: &str,
    resumed: Option<(String, record::RunState)>,
    env: BTreeMap<String, String>,
) -> Result<(), CliError> {
    let cache = &args.host.cache;
    let mut options = RunOptions {
        max_parallel: args.max_parallel.max(1),
        env,
        external: args.external.clone(),
        ..RunOptions::default()
    };
    let checked = host.check(workflow, &options).await?;
    let secrets = runner::secret_values(workflow, &options.env);
    let (mut record, done, run_id) = match resumed {
        Some((id, state)) => {
            let done = state.succeeded();
            let record = RunRecord::resume(cache, &id, state, secrets).map_err(CliError::Record)?;
            (record, done, id)
        }
        None => {
            let id = record::new_run_id();
            let record = RunRecord::of_workflow(cache, &id, workflow, text, secrets)
                .map_err(CliError::Record)?;
            (record, BTreeMap::new(), id)
        }
    };
    options.run_id = run_id;
    options.done = done;
    // Components hosted here are reused when nothing they read changed; containers
    // and services elsewhere always run.
    options.cache = (!args.no_cache).then(|| host.step_cache());
    let style = if args.json_events {
        Style::Json
    } else {
        Style::detect()
    };
    let mut progress = Progress::new(workflow, style);
    let outcome = tokio::select! {
        report = host.run_checked(checked, options, |event| {
            if let Err(error) = record.record(event) {
                tracing::error!(%error, "cannot write the run's history");
            }
            progress.show(event);
        }) => Some(report?),
        () = interrupted() => None,
    };
    let Some(report) = outcome else {
        let id = record.dir().file_name().unwrap_or_default();
        return Err(CliError::Interrupted {
            resume: Some(id.to_string_lossy().into_owned()),
        });
    };
    conclude(&report, args.json_events)
}

/// The summary of a run that ended (unless its events were asked for as JSON),
/// and the command's outcome: an error naming the steps that failed.
pub fn conclude(report: &runner::RunReport, json_events: bool) -> Result<(), CliError> {
    if !json_events {
        copper_wasm::progress::print_summary(report);
    }
    if report.success() {
        return Ok(());
    }
    Err(CliError::StepsFailed {
        failed: report
            .steps
            .iter()
            .filter(|s| s.status == StepStatus::Failed && !s.continued)
            .map(|s| s.id.clone())
            .collect(),
        total: report.steps.len(),
    })
}

/// `copper-wasm runs [show ID]`.
pub fn runs(cache: &Path, show: Option<String>, json: bool) -> Result<(), CliError> {
    match show {
        None => {
            let runs = record::list(cache);
            if json {
                return print_json(&runs);
            }
            if runs.is_empty() {
                println!("no runs in {}", record::runs_dir(cache).display());
            }
            print_runs(&runs);
            Ok(())
        }
        Some(id) => {
            let (state, history) =
                record::show(cache, &id).map_err(|source| no_run(cache, &id, source))?;
            if json {
                return print_json(&serde_json::json!({"state": state, "events": history}));
            }
            print_run(&state);
            println!(
                "{} events in {}",
                history.len(),
                record::runs_dir(cache)
                    .join(&id)
                    .join("events.jsonl")
                    .display()
            );
            Ok(())
        }
    }
}

/// One line per run: id, status, start, steps done, workflow.
pub fn print_runs(runs: &[record::RunState]) {
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
}

/// A run's state: a heading, then one line per step.
pub fn print_run(state: &record::RunState) {
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
}
