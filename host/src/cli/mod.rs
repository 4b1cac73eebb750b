//! The `copper-wasm` command: a thin layer over the library.
//!
//! Exit codes: 0 success; 1 a step or the called action failed; 2 bad usage, an
//! invalid workflow or input; 3 the host could not do its job (broker,
//! components, files); 130 interrupted.

mod daemon;
pub mod error;
mod graph;
mod plugin;
mod run;
mod scaffold;
mod serve;

use clap::{Args, Parser, Subcommand};
use copper_wasm::access::{AccessError, Credentials, Grant};
use copper_wasm::bus::BrokerAddress;
use copper_wasm::host::{BrokerChoice, Host, HostConfig};
use copper_wasm::protocol::{Object, Status};
use copper_wasm::runner::RequestError;
use copper_wasm::service::ServiceInfo;
use copper_wasm::services_file::{BackendSpec, ServicesFile};
use error::CliError;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// Run workflows of actions over MQTT, answered by WASI components or any service on the broker.
#[derive(Debug, Parser)]
#[command(name = "copper-wasm", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output (-v: info, -vv: debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

const EXIT_CODES: &str = "Exit codes: 0 success, 1 a step failed, 2 invalid workflow or usage, 3 host error, 130 interrupted.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workflow: publish each action and wait for its finish.
    Run {
        /// The workflow file (YAML).
        #[arg(required_unless_present = "resume")]
        workflow: Option<PathBuf>,
        #[command(flatten)]
        host: HostArgs,
        /// A service served by someone else on the broker (skips the check that it is `up`).
        #[arg(long = "external", value_name = "SERVICE")]
        external: Vec<String>,
        /// Steps running at once, at most.
        #[arg(long, default_value_t = 16, value_name = "N")]
        max_parallel: usize,
        /// Variables for `${VAR}` (default: `.env` beside the workflow, if any).
        #[arg(long, value_name = "FILE")]
        env_file: Option<PathBuf>,
        /// `json`: every event as a JSON line on standard output, no summary.
        #[arg(long, value_name = "FORMAT", value_parser = ["json"])]
        events: Option<String>,
        /// Go on with an earlier run: only the steps that did not succeed run again.
        #[arg(long, value_name = "RUN", conflicts_with = "workflow")]
        resume: Option<String>,
        /// Run every step, even those unchanged since their last success.
        #[arg(long)]
        no_cache: bool,
        /// Have this running daemon run it (its HTTP API: http://127.0.0.1:7883).
        #[arg(
            long,
            env = "COPPER_DAEMON",
            value_name = "URL",
            conflicts_with = "resume"
        )]
        daemon: Option<String>,
    },
    /// For plugin authors: check a component, run one of its actions.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// List past runs, or show one (`runs show RUN`).
    Runs {
        /// `show`, to show one run.
        #[arg(value_parser = ["show"])]
        show: Option<String>,
        /// The run to show.
        #[arg(required_if_eq("show", "show"))]
        run: Option<String>,
        /// Cache folder the runs are in.
        #[arg(long, default_value = ".copper", value_name = "DIR")]
        cache: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The runs of this running daemon instead (its HTTP API).
        #[arg(long, env = "COPPER_DAEMON", value_name = "URL")]
        daemon: Option<String>,
    },
    /// The daemon: host the services on the broker and serve the HTTP API until
    /// stopped (Ctrl-C, SIGTERM), for any runner or HTTP client to drive.
    Serve {
        #[command(flatten)]
        host: HostArgs,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// List the services hosted here, their actions and schemas.
    Services {
        /// Also host this component file (repeatable).
        #[arg(long = "component", value_name = "FILE")]
        components: Vec<PathBuf>,
        /// Print JSON, with the full schemas.
        #[arg(long)]
        json: bool,
        /// The services file (default: `copper.yaml` in the working folder, if any).
        #[arg(long, value_name = "FILE")]
        services: Option<PathBuf>,
        /// The services of this running daemon and of the hosts on its broker instead.
        #[arg(long, env = "COPPER_DAEMON", value_name = "URL")]
        daemon: Option<String>,
    },
    /// Call one action over the bus and print its finish payload.
    Call {
        #[command(flatten)]
        call: CallArgs,
        /// Have this running daemon call it (its HTTP API).
        #[arg(long, env = "COPPER_DAEMON", value_name = "URL")]
        daemon: Option<String>,
    },
    /// Draw the system graph (who asks whom, the resources, the triggers) of a
    /// running daemon or of a recorded trace, or a workflow's steps.
    Graph {
        /// A recorded trace instead: a daemon's `GET /v1/trace` saved, or a
        /// mosquitto log written with `log_type all`.
        #[arg(long, value_name = "FILE", conflicts_with = "workflow")]
        from: Option<PathBuf>,
        /// A workflow's steps and needs instead.
        #[arg(long, value_name = "FILE")]
        workflow: Option<PathBuf>,
        /// `dot` (Graphviz), `mermaid`, `svg` or `json`.
        #[arg(long, default_value = "dot", value_parser = ["dot", "mermaid", "svg", "json"])]
        format: String,
        /// The daemon's HTTP API.
        #[arg(long, env = "COPPER_DAEMON", value_name = "URL", default_value = daemon::DEFAULT_URL)]
        daemon: String,
    },
    /// What runs on a daemon now, or stop one request (`workers kill ID`).
    Workers {
        /// `kill`, to stop one request where it runs.
        #[arg(value_parser = ["kill"])]
        kill: Option<String>,
        /// The request to stop, by its id as listed.
        #[arg(required_if_eq("kill", "kill"))]
        id: Option<u64>,
        /// The daemon's HTTP API.
        #[arg(long, env = "COPPER_DAEMON", value_name = "URL", default_value = daemon::DEFAULT_URL)]
        daemon: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// One action to call: `call`, `plugin run`.
#[derive(Debug, Args)]
struct CallArgs {
    /// The action topic, e.g. `markdown/build`.
    topic: String,
    /// The request fields, a JSON object.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Give up waiting after this long (e.g. `30s`).
    #[arg(long)]
    timeout: Option<String>,
    #[command(flatten)]
    host: HostArgs,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Write a new plugin project NAME (WIT bindings wired, one example action).
    New {
        /// The plugin's name: its folder and its service name.
        name: String,
        /// Its language.
        #[arg(long, default_value = "rust", value_parser = ["rust", "python"])]
        lang: String,
    },
    /// Check that a file is a component the host can serve: exports, imports, schemas.
    Check {
        /// The component (.wasm).
        file: PathBuf,
    },
    /// Run one action of a local component, with nothing else hosted.
    Run {
        /// The component (.wasm).
        file: PathBuf,
        #[command(flatten)]
        call: Box<CallArgs>,
    },
}

/// How `serve` serves its HTTP API and its workers.
#[derive(Debug, Args)]
struct DaemonArgs {
    /// Where the HTTP API listens (docs/api.md), or `off`. Beyond loopback every
    /// request needs the bearer token of COPPER_HTTP_TOKEN, and without one the
    /// daemon refuses to start.
    #[arg(
        long,
        env = "COPPER_HTTP",
        value_name = "ADDR",
        default_value = "127.0.0.1:7883"
    )]
    http: String,
    /// Requests running at once on the whole host, all services together
    /// (default: the services file's `workers:`, else only each service's
    /// --concurrency bounds them).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Requests of one service that may wait for a worker (default: the services
    /// file's `queue:`, else 1024); more wait at the broker, or get HTTP 429.
    #[arg(long, value_name = "N")]
    queue: Option<usize>,
    /// On SIGTERM, how long requests and runs under way are given to finish.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    grace: String,
    /// A folder of workflows to keep: each read and checked at start, listed and
    /// run by name over the HTTP API (`/v1/workflows`).
    #[arg(long, value_name = "DIR")]
    workflows: Option<PathBuf>,
    /// The largest HTTP request body taken, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    body_limit: usize,
}

impl DaemonArgs {
    /// The HTTP API's configuration (None: `--http off`).
    fn api(&self) -> Result<Option<copper_wasm::api::ApiConfig>, CliError> {
        if self.http == "off" {
            return Ok(None);
        }
        let listen = self
            .http
            .parse()
            .map_err(|_| CliError::HttpAddress(self.http.clone()))?;
        let token = std::env::var(copper_wasm::api::TOKEN_VARIABLE).ok();
        Ok(Some(copper_wasm::api::ApiConfig {
            listen,
            token,
            body_limit: self.body_limit,
            ..Default::default()
        }))
    }

    /// `--grace` as a duration.
    fn grace(&self) -> Result<std::time::Duration, CliError> {
        copper_wasm::timeout::parse(&serde_json::Value::String(self.grace.clone()))
            .map_err(|why| CliError::Grace(why.to_string()))
    }
}

#[derive(Debug, Args)]
struct HostArgs {
    /// Use this broker instead of the embedded one: mqtt://[user:pass@]host:port, or
    /// mqtts:// for TLS (the broker's certificate authority, if not the system's, in
    /// the PEM file COPPER_MQTT_CA names); a login can also come from
    /// COPPER_MQTT_USERNAME / COPPER_MQTT_PASSWORD.
    #[arg(long, env = "COPPER_BROKER", value_name = "URL")]
    broker: Option<String>,
    /// Where the embedded broker listens (run and call: any free loopback port; serve: 127.0.0.1:1883).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Cache folder: /fetch, /web, compiled components.
    #[arg(long, default_value = ".copper", value_name = "DIR")]
    cache: PathBuf,
    /// Who may connect to the embedded broker (default: the cache folder's
    /// credentials.yaml, made the first time); also the login used with `--broker`
    /// on loopback when its URL has none.
    #[arg(long, env = "COPPER_CREDENTIALS", value_name = "FILE")]
    credentials: Option<PathBuf>,
    /// Also host this component file (repeatable).
    #[arg(long = "component", value_name = "FILE")]
    components: Vec<PathBuf>,
    /// Host no service here: act only as a client of the broker.
    #[arg(long)]
    no_local_services: bool,
    /// Requests of one service running at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// serve: this host's id among the hosts on the broker, the same across restarts
    /// (default: the one kept in the cache folder's `host-id`, made the first time).
    #[arg(long, env = "COPPER_HOST_ID", value_name = "ID")]
    host_id: Option<String>,
    /// The services file (default: `copper.yaml` beside the workflow, or in the working folder).
    #[arg(long, value_name = "FILE")]
    services: Option<PathBuf>,
    /// Host none of the built-in components.
    #[arg(long)]
    no_builtins: bool,
    /// Read no services file (for `plugin run`).
    #[arg(skip)]
    no_services_file: bool,
}

impl HostArgs {
    /// The services file given, else `copper.yaml` in `dir`, read and checked.
    fn services_file(&self, dir: &std::path::Path) -> Result<Option<ServicesFile>, CliError> {
        if self.no_services_file {
            return Ok(None);
        }
        let path = match &self.services {
            Some(path) => path.clone(),
            None => match ServicesFile::beside(&dir.join("workflow")) {
                Some(path) => path,
                None => return Ok(None),
            },
        };
        Ok(Some(ServicesFile::load(&path)?))
    }

    /// The host's configuration; the embedded broker listens on `default_listen`
    /// unless `--listen` says otherwise. A loopback broker given with no login is
    /// logged into as the credentials file's user granted `grant` (`host` when
    /// services are hosted here too), when there is one.
    fn config(&self, default_listen: SocketAddr, grant: Grant) -> Result<HostConfig, CliError> {
        let mut config = HostConfig {
            cache: self.cache.clone(),
            components: self.components.clone(),
            credentials: self.credentials.clone(),
            ..HostConfig::default()
        };
        config.broker = match &self.broker {
            Some(url) => {
                let mut address = BrokerAddress::parse(url)?;
                if address.credentials.is_none() && is_loopback(&address.host) {
                    // Hosting services here too makes this a host on that broker.
                    let grant = match self.no_local_services {
                        true => grant,
                        false => Grant::Host,
                    };
                    let file = config.credentials_file();
                    match Credentials::read(&file) {
                        Ok(credentials) => address.credentials = credentials.login_for(&grant),
                        Err(AccessError::Io { source, .. })
                            if source.kind() == std::io::ErrorKind::NotFound => {}
                        Err(error) => return Err(error.into()),
                    }
                }
                BrokerChoice::External(address)
            }
            None => BrokerChoice::Embedded(self.listen.unwrap_or(default_listen)),
        };
        config.scheduler.concurrency = self.concurrency.max(1);
        if self.no_builtins {
            config.builtins = false;
        }
        if self.no_local_services {
            config.builtins = false;
            config.components.clear();
        }
        Ok(config)
    }
}

fn init_logging(verbose: u8, serving: bool) -> Result<Option<copper_wasm::otel::Otel>, CliError> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let default = match (verbose, serving) {
        // rumqttd reports every client that hangs up as an error: quiet unless asked.
        (0, false) => "warn,rumqttd=off",
        (0, true) | (1, _) => "info,rumqttd=off",
        _ => "debug,rumqttd=info",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into());
    let otel = copper_wasm::otel::Otel::from_env("copper-wasm").map_err(CliError::Otel)?;
    // The spans go to the collector whatever the log shows.
    let spans = otel.as_ref().map(|otel| {
        otel.layer()
            .with_filter(tracing_subscriber::EnvFilter::new("copper_wasm=info"))
    });
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .with(spans)
        .try_init();
    Ok(otel)
}

/// Runs the command line; its error, if any, says the exit code ([`CliError::exit_code`]).
pub fn main() -> Result<(), CliError> {
    let cli = Cli::parse();
    let otel = init_logging(cli.verbose, matches!(cli.command, Command::Serve { .. }))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::AsyncRuntime)?;
    // On a worker, not on this thread: what wakes the command (the bus's poller,
    // the services' answers) then wakes it on the thread it runs on, where a
    // `block_on` future needs this one woken every time.
    let done = runtime.block_on(async {
        match tokio::spawn(dispatch(cli.command)).await {
            Ok(done) => done,
            Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
            Err(failed) => unreachable!("the command's task is never cancelled: {failed}"),
        }
    });
    if let Some(otel) = otel {
        otel.shutdown();
    }
    done
}

/// True for `localhost` and loopback addresses.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

const ANY_LOOPBACK_PORT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);
const MQTT_LOOPBACK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1883);

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (`docker stop`, systemd).
async fn interrupted() {
    interruption().await
}

/// Ctrl-C or SIGTERM, listened for from this call on (one that comes while the
/// host starts is not lost, nor does it kill the process unstopped).
fn interruption() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            Some(()) = next_signal(&mut term) => {}
            Some(()) = next_signal(&mut int) => {}
        }
    }
}

/// The next delivery of `signal`; never, when it could not be listened for.
async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

async fn dispatch(command: Command) -> Result<(), CliError> {
    match command {
        Command::Run {
            workflow,
            max_parallel,
            events,
            no_cache,
            daemon: Some(url),
            ..
        } => {
            let Some(path) = workflow else {
                return Err(CliError::NoWorkflow);
            };
            let daemon = daemon::Daemon::new(&url);
            daemon::run(&daemon, &path, max_parallel, no_cache, events.is_some()).await
        }
        Command::Run {
            workflow,
            host,
            external,
            max_parallel,
            env_file,
            events,
            resume,
            no_cache,
            daemon: None,
        } => {
            run::run(run::RunArgs {
                workflow,
                host,
                external,
                max_parallel,
                env_file,
                json_events: events.is_some(),
                resume,
                no_cache,
            })
            .await
        }
        Command::Runs {
            show: _,
            run,
            cache: _,
            json,
            daemon: Some(url),
        } => daemon::runs(&daemon::Daemon::new(&url), run, json).await,
        Command::Runs {
            show: _,
            run,
            cache,
            json,
            daemon: None,
        } => run::runs(&cache, run, json),
        Command::Serve { host, daemon } => serve::serve(host, daemon).await,
        Command::Services {
            json,
            daemon: Some(url),
            ..
        } => daemon::services(&daemon::Daemon::new(&url), json).await,
        Command::Services {
            components,
            json,
            services: file,
            daemon: None,
        } => services(components, json, file).await,
        Command::Call {
            call: args,
            daemon: Some(url),
        } => {
            let (topic, fields, wait) = call_request(args.topic, &args.input, args.timeout)?;
            daemon::call(&daemon::Daemon::new(&url), &topic, &fields, wait).await
        }
        Command::Call {
            call: args,
            daemon: None,
        } => call(args.topic, args.input, args.timeout, args.host).await,
        Command::Workers {
            kill: _,
            id,
            daemon: url,
            json,
        } => daemon::workers(&daemon::Daemon::new(&url), id, json).await,
        Command::Graph {
            from,
            workflow,
            format,
            daemon: url,
        } => {
            let source = match (from, workflow) {
                (Some(file), _) => graph::Source::Trace(file),
                (None, Some(file)) => graph::Source::Workflow(file),
                (None, None) => graph::Source::Daemon(url),
            };
            graph::print(source, &format).await
        }
        Command::Plugin(PluginCommand::New { name, lang }) => scaffold::new(&name, &lang),
        Command::Plugin(PluginCommand::Check { file }) => plugin::check(&file).await,
        Command::Plugin(PluginCommand::Run { file, call }) => {
            let CallArgs {
                topic,
                input,
                timeout,
                mut host,
            } = *call;
            host.no_services_file = true;
            plugin::run(&file, topic, input, timeout, host).await
        }
    }
}

async fn services(
    components: Vec<PathBuf>,
    json: bool,
    file: Option<PathBuf>,
) -> Result<(), CliError> {
    let file = match file.or_else(|| ServicesFile::beside(std::path::Path::new("./workflow"))) {
        Some(path) => ServicesFile::load(&path)?,
        None => ServicesFile::default(),
    };
    let config = HostConfig {
        components,
        services: file.services.clone(),
        ..HostConfig::default()
    };
    let registry = copper_wasm::host::load_registry(&config)
        .await
        .map_err(|e| CliError::LoadServices(Box::new(e)))?;
    // Containers and external services are described by the file (nothing is started).
    let declared: Vec<ServiceInfo> = file
        .services
        .iter()
        .filter_map(|spec| {
            let version = match &spec.backend {
                BackendSpec::Component(_) => return None,
                BackendSpec::Docker(docker) => format!(
                    "(docker {}, {})",
                    docker.container.image,
                    match docker.mode {
                        copper_wasm::services_file::Mode::Lambda => "a container per request",
                        copper_wasm::services_file::Mode::Service => "long-running",
                    }
                ),
                BackendSpec::External => "(external, on the broker)".to_string(),
            };
            Some(ServiceInfo {
                version,
                ..spec.info()
            })
        })
        .collect();
    let services: Vec<&ServiceInfo> = registry.services().chain(&declared).collect();
    if json {
        print_json(&services)?;
        return Ok(());
    }
    for service in services {
        println!(
            "{} {} (capabilities: {})",
            service.name,
            service.version,
            capabilities(service)
        );
        print_actions(service);
    }
    Ok(())
}

/// Prints `value` as pretty JSON on standard output.
fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).map_err(CliError::Json)?
    );
    Ok(())
}

/// `git, workspace`, or `none`.
fn capabilities(service: &ServiceInfo) -> String {
    if service.capabilities.is_empty() {
        "none".to_string()
    } else {
        service.capabilities.join(", ")
    }
}

/// A service's actions, each with its doc and the fields of its schemas.
fn print_actions(service: &ServiceInfo) {
    for action in &service.actions {
        println!("  {}  {}", service.topic(action), action.doc);
        println!("      input:  {}", schema_fields(&action.input_schema));
        println!("      output: {}", schema_fields(&action.output_schema));
    }
}

/// `resource*, path*, out`: a schema's properties, required ones starred.
fn schema_fields(schema: &serde_json::Value) -> String {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let fields: Vec<String> = schema["properties"]
        .as_object()
        .map(|p| {
            p.keys()
                .map(|k| {
                    if required.contains(&k.as_str()) {
                        format!("{k}*")
                    } else {
                        k.clone()
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if fields.is_empty() {
        "any object".into()
    } else {
        fields.join(", ")
    }
}

/// A call's topic, input and wait, checked.
fn call_request(
    topic: String,
    input: &str,
    timeout: Option<String>,
) -> Result<(String, Object, Option<std::time::Duration>), CliError> {
    if !copper_wasm::protocol::is_action_topic(&topic) {
        return Err(RequestError::NotAnAction(topic).into());
    }
    let fields: Object = match serde_json::from_str(input).map_err(CliError::InputNotJson)? {
        serde_json::Value::Object(map) => map,
        _ => return Err(CliError::InputNotObject),
    };
    let wait = match timeout {
        Some(text) => Some(
            copper_wasm::timeout::parse(&serde_json::Value::String(text))
                .map_err(CliError::Timeout)?,
        ),
        None => None,
    };
    Ok((topic, fields, wait))
}

async fn call(
    topic: String,
    input: String,
    timeout: Option<String>,
    args: HostArgs,
) -> Result<(), CliError> {
    let (topic, fields, wait) = call_request(topic, &input, timeout)?;
    let mut config = args.config(ANY_LOOPBACK_PORT, Grant::Runner)?;
    if !args.no_local_services
        && let Some(file) = args.services_file(std::path::Path::new("."))?
    {
        let service = copper_wasm::protocol::service_of(&topic);
        config.services = file
            .services
            .into_iter()
            .filter(|s| matches!(s.backend, BackendSpec::Component(_)) || s.name == service)
            .collect();
    }
    let host = Host::start(config, CancellationToken::new())
        .await
        .map_err(|e| CliError::Start(Box::new(e)))?;
    let answer = tokio::select! {
        answer = host.call_watching(&topic, &fields, wait, |message| eprintln!("{topic}: {message}")) => Some(answer),
        () = interrupted() => None,
    };
    host.stop().await;
    let finish = answer.ok_or(CliError::Interrupted { resume: None })??;
    let payload = serde_json::Value::Array(vec![serde_json::Value::Object(finish.entry)]);
    print_json(&payload)?;
    match finish.status {
        Status::Success => Ok(()),
        _ => Err(CliError::ActionFailed {
            topic,
            why: finish.error,
        }),
    }
}
