//! Why a command did not succeed: one error, its causes kept as sources, and the
//! exit code it deserves (see [`CliError::exit_code`]).

use copper_wasm::bus::BusError;
use copper_wasm::component::LoadError;
use copper_wasm::host::{HostError, RunError};
use copper_wasm::runner::RequestError;
use copper_wasm::services_file::ServicesFileError;
use copper_wasm::workflow::WorkflowError;
use std::path::PathBuf;

/// What went wrong in a command, each cause kept as its source.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    // Bad usage or input (exit 2).
    /// `--input` is not JSON.
    #[error("--input is not JSON")]
    InputNotJson(#[source] serde_json::Error),
    /// `--input` is JSON, but not an object.
    #[error("--input must be a JSON object")]
    InputNotObject,
    /// `--timeout` is not a duration (the text says why).
    #[error("--timeout {0}")]
    Timeout(String),
    /// `run` without a workflow or a run to resume.
    #[error("give a workflow file, or --resume RUN")]
    NoWorkflow,
    /// The run to resume or show is not in the cache.
    #[error("no run `{id}` in {}", dir.display())]
    NoRun {
        /// The run asked for.
        id: String,
        /// Where runs are kept.
        dir: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The run to resume kept no workflow.
    #[error("run `{id}` has no workflow")]
    RunWithoutWorkflow {
        /// The run.
        id: String,
        /// Why its workflow cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The `.env` file cannot be used (the text says which and why).
    #[error("{0}")]
    Environment(String),
    /// The services file cannot be used.
    #[error(transparent)]
    ServicesFile(#[from] ServicesFileError),
    /// The workflow is invalid, or does not fit the services it meets.
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    /// A service the workflow asks for cannot be served: the step that asks for it
    /// is at fault, the host's error says why.
    #[error("{problem}")]
    Unservable {
        /// The step's field at fault.
        problem: Box<WorkflowError>,
        /// Why the service cannot be served.
        #[source]
        source: Box<HostError>,
    },
    /// A request that could not be answered: nobody serves it (exit 2), or no
    /// finish came (exit 1).
    #[error(transparent)]
    Request(RequestError),
    /// `plugin run` of a file that is not there.
    #[error("no component file {}", .0.display())]
    NoComponentFile(PathBuf),
    /// `plugin check` of a file that cannot be read.
    #[error("cannot read {}", path.display())]
    ReadComponent {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `plugin check` of a core module.
    #[error(
        "{} is a core WebAssembly module, not a component: build it for \
         wasm32-wasip2 (cargo), with componentize-py or jco, or wrap it with \
         `wasm-tools component new`",
        .0.display()
    )]
    CoreModule(PathBuf),
    /// `plugin check` of a file that is not WebAssembly.
    #[error("{} is not WebAssembly (no `\\0asm` header)", .0.display())]
    NotWasm(PathBuf),
    /// `plugin check` of a component the host cannot serve.
    #[error("{} is not a copper-wasm plugin", path.display())]
    NotAPlugin {
        /// The file.
        path: PathBuf,
        /// Why it cannot be served.
        #[source]
        source: LoadError,
    },
    /// `plugin new` with a name that is not a plain one.
    #[error("`{0}` is not a plain plugin name (letters, digits, `_`, `-`)")]
    PluginName(String),
    /// `--http` is neither an address nor `off`.
    #[error("--http `{0}` is not an address (such as 127.0.0.1:7883) nor `off`")]
    HttpAddress(String),
    /// `--grace` is not a duration.
    #[error("--grace {0}")]
    Grace(String),
    /// `--host-id` is not a plain name.
    #[error("--host-id `{0}` is not a plain name (letters, digits, `.`, `_`, `-`)")]
    HostId(String),
    /// `plugin new` over something that exists.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// `plugin new` in a language without a template.
    #[error("no template for `{0}`: rust or python")]
    NoTemplate(String),

    // A step or the called action failed (exit 1).
    /// Steps of the run failed (the progress and the summary say how).
    #[error("{} of {total} steps failed: {}", failed.len(), failed.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "))]
    StepsFailed {
        /// The failed steps' ids, in file order.
        failed: Vec<String>,
        /// The steps of the run.
        total: usize,
    },
    /// The called action finished `failed` (its finish is on standard output).
    #[error("{}", match why { Some(why) => format!("`{topic}`: {why}"), None => format!("`{topic}` failed") })]
    ActionFailed {
        /// The action topic.
        topic: String,
        /// Why, as its finish says.
        why: Option<String>,
    },

    // The host could not work (exit 3).
    /// The bus failed: a bad broker URL, a broker that cannot be reached.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The credentials file cannot be used.
    #[error(transparent)]
    Access(#[from] copper_wasm::access::AccessError),
    /// The daemon's HTTP API cannot be served.
    #[error("cannot serve the HTTP API")]
    Api(#[source] copper_wasm::api::ApiError),
    /// The daemon cannot be reached, or its answer cannot be read.
    #[error("cannot reach the daemon at {url}")]
    Daemon {
        /// Its URL.
        url: String,
        /// Why.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The daemon answered what this command cannot read.
    #[error("the daemon at {url} answered what cannot be read: {why}")]
    DaemonAnswer {
        /// Its URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The daemon refused (its problem document's detail).
    #[error("{detail} (HTTP {status} from {url})")]
    DaemonSaid {
        /// Its URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What it said.
        detail: String,
    },
    /// The workflows' triggers cannot be listened for.
    #[error("cannot listen for the workflows' triggers on the broker")]
    Triggers(#[source] copper_wasm::triggers::TriggerError),
    /// The daemon's files cannot be watched for changes.
    #[error("cannot watch the daemon's files for changes")]
    Reload(#[source] copper_wasm::hot_reload::ReloadError),
    /// The lifecycle commands over MQTT cannot be listened for.
    #[error("cannot listen for lifecycle commands on the broker")]
    Control(#[source] copper_wasm::bus::BusError),
    /// The host could not start.
    #[error("cannot start the host")]
    Start(#[source] Box<HostError>),
    /// The services could not be loaded.
    #[error("cannot load the services")]
    LoadServices(#[source] Box<HostError>),
    /// The host failed otherwise (its runtime).
    #[error(transparent)]
    Host(Box<HostError>),
    /// A scratch folder cannot be made.
    #[error("cannot prepare the scratch folder {}", path.display())]
    Scratch {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The run's folder (its record) cannot be written.
    #[error("cannot write the run's folder")]
    Record(#[source] std::io::Error),
    /// A file cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file given cannot be read.
    #[error("cannot read {}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A trace file starts as JSON but is not a trace.
    #[error("{} is not a trace (as GET /v1/trace serves it)", path.display())]
    TraceFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The OTEL_* variables ask for an export that cannot be made.
    #[error(transparent)]
    Otel(copper_wasm::otel::OtelError),
    /// The graph cannot be drawn as SVG.
    #[error(transparent)]
    Svg(copper_wasm::graph::SvgError),
    /// JSON cannot be printed.
    #[error("cannot print JSON")]
    Json(#[source] serde_json::Error),
    /// The async runtime cannot start.
    #[error("cannot start the async runtime")]
    AsyncRuntime(#[source] std::io::Error),

    // Interrupted (exit 130).
    /// Ctrl-C or SIGTERM; a run says how to go on with it.
    #[error("interrupted{}", resume.as_deref().map(|id| format!("; `copper-wasm run --resume {id}` goes on where it stopped")).unwrap_or_default())]
    Interrupted {
        /// The run to resume, if one was under way.
        resume: Option<String>,
    },
}

impl CliError {
    /// The process exit code: 1 a step or the called action failed; 2 bad usage,
    /// an invalid workflow or input; 3 the host could not work; 130 interrupted.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::InputNotJson(_)
            | CliError::InputNotObject
            | CliError::Timeout(_)
            | CliError::NoWorkflow
            | CliError::NoRun { .. }
            | CliError::RunWithoutWorkflow { .. }
            | CliError::Environment(_)
            | CliError::ServicesFile(_)
            | CliError::Workflow(_)
            | CliError::Unservable { .. }
            | CliError::NoComponentFile(_)
            | CliError::ReadComponent { .. }
            | CliError::CoreModule(_)
            | CliError::NotWasm(_)
            | CliError::NotAPlugin { .. }
            | CliError::PluginName(_)
            | CliError::HostId(_)
            | CliError::HttpAddress(_)
            | CliError::Grace(_)
            | CliError::Access(_)
            | CliError::Api(
                copper_wasm::api::ApiError::NoToken(_) | copper_wasm::api::ApiError::EmptyToken,
            )
            | CliError::Exists(_)
            | CliError::ReadFile { .. }
            | CliError::TraceFile { .. }
            | CliError::Svg(_)
            | CliError::Otel(_)
            | CliError::NoTemplate(_) => 2,
            CliError::Request(error) => match error {
                RequestError::NotAnAction(_) | RequestError::NotServed { .. } => 2,
                RequestError::NoAnswer { .. } | RequestError::ServiceDown(_) => 1,
                RequestError::Bus(_) => 3,
            },
            CliError::StepsFailed { .. } | CliError::ActionFailed { .. } => 1,
            CliError::DaemonSaid { status, .. } => super::daemon::exit_code(*status),
            CliError::Daemon { .. } | CliError::DaemonAnswer { .. } => 3,
            CliError::Bus(_)
            | CliError::Api(_)
            | CliError::Control(_)
            | CliError::Triggers(_)
            | CliError::Reload(_)
            | CliError::Start(_)
            | CliError::LoadServices(_)
            | CliError::Host(_)
            | CliError::Scratch { .. }
            | CliError::Record(_)
            | CliError::Write { .. }
            | CliError::Json(_)
            | CliError::AsyncRuntime(_) => 3,
            CliError::Interrupted { .. } => 130,
        }
    }

    /// What to do about it, when the error alone does not say.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::NotAPlugin { source, .. } => {
                let chain = chain(source);
                (chain.contains("copper:service/service") || chain.contains("no exported")).then_some(
                    "it must export the `service` interface of the `copper:service` WIT package (see wit/service.wit)",
                )
            }
            _ => None,
        }
    }

    /// What `main` prints: the chain, then the hint on a line of its own.
    pub fn report(&self) -> String {
        match self.hint() {
            Some(hint) => format!("{}\n{hint}", chain(self)),
            None => chain(self),
        }
    }
}

impl From<RequestError> for CliError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Bus(error) => CliError::Bus(error),
            other => CliError::Request(other),
        }
    }
}

impl From<HostError> for CliError {
    fn from(error: HostError) -> Self {
        CliError::Host(Box::new(error))
    }
}

impl From<RunError> for CliError {
    fn from(error: RunError) -> Self {
        match error {
            RunError::Invalid(error) => CliError::Workflow(error),
            RunError::Bus(error) => CliError::Bus(error),
        }
    }
}

/// An error and its causes in one line, `top: cause: cause`; a cause whose text is
/// already in the line (some errors repeat their source in their message) is left out.
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    copper_wasm::error_chain::error_chain(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_shows_once() {
        let io = std::io::Error::other("disk full");
        let error = CliError::Record(io);
        assert_eq!(chain(&error), "cannot write the run's folder: disk full");
        let error = CliError::Write {
            path: "x/disk full".into(),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(chain(&error), "cannot write x/disk full", "already said");
    }

    #[test]
    fn codes_follow_the_documentation() {
        assert_eq!(CliError::InputNotObject.exit_code(), 2);
        assert_eq!(
            CliError::Request(RequestError::ServiceDown("s".into())).exit_code(),
            1
        );
        assert_eq!(
            CliError::from(RequestError::NotAnAction("x".into())).exit_code(),
            2
        );
        assert_eq!(
            CliError::Record(std::io::Error::other("full")).exit_code(),
            3
        );
        let interrupted = CliError::Interrupted {
            resume: Some("r1".into()),
        };
        assert_eq!(interrupted.exit_code(), 130);
        assert_eq!(
            interrupted.to_string(),
            "interrupted; `copper-wasm run --resume r1` goes on where it stopped"
        );
    }
}
