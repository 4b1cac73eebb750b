//! `copper-wasm serve`: the daemon. The host, then the rooms over it (control
//! over MQTT, the triggers, hot reload, the HTTP API), each started in turn and
//! all stopped in the reverse order, on SIGTERM or Ctrl-C or when one cannot start.

use super::{CliError, DaemonArgs, HostArgs, MQTT_LOOPBACK, interruption};
use copper_wasm::access::Grant;
use copper_wasm::host::Host;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The rooms started so far.
#[derive(Default)]
struct Rooms {
    control: Option<copper_wasm::control::Control>,
    triggering: Option<copper_wasm::triggers::Triggering>,
    reloading: Option<copper_wasm::hot_reload::Reloading>,
    api: Option<copper_wasm::api::Serving>,
}

impl Rooms {
    /// Stops them, the last started first; runs under way get `grace` to end.
    async fn stop(self, host: &Host, grace: Duration) {
        if let Some(reloading) = self.reloading {
            reloading.stop().await;
        }
        if let Some(triggering) = self.triggering {
            triggering.stop().await;
        }
        match self.api {
            Some(api) => api.stop(grace).await,
            // Runs a trigger started are given the same grace without an API.
            None => {
                if !host.drain_runs(grace).await {
                    tracing::warn!("runs still under way after the grace period: stopping anyway");
                }
            }
        }
        if let Some(control) = self.control {
            control.stop().await;
        }
    }
}

/// Starts the rooms over `host` in turn; the first that cannot start stops the others.
async fn start_rooms(
    host: &Arc<Host>,
    api_config: Option<copper_wasm::api::ApiConfig>,
    services_file: Option<std::path::PathBuf>,
) -> Result<Rooms, (Rooms, CliError)> {
    let mut rooms = Rooms::default();
    match copper_wasm::control::listen(host.clone()).await {
        Ok(control) => rooms.control = Some(control),
        Err(error) => return Err((rooms, CliError::Control(error))),
    }
    match copper_wasm::triggers::start(host.clone()).await {
        Ok(triggering) => rooms.triggering = Some(triggering),
        Err(error) => return Err((rooms, CliError::Triggers(error))),
    }
    match copper_wasm::hot_reload::start(host.clone(), services_file).await {
        Ok(reloading) => rooms.reloading = Some(reloading),
        Err(error) => return Err((rooms, CliError::Reload(error))),
    }
    if let Some(api_config) = api_config {
        match copper_wasm::api::serve(host.clone(), api_config).await {
            Ok(api) => rooms.api = Some(api),
            Err(error) => return Err((rooms, CliError::Api(error))),
        }
    }
    Ok(rooms)
}

/// `serve`: the host and its rooms until SIGTERM or Ctrl-C.
pub async fn serve(args: HostArgs, daemon: DaemonArgs) -> Result<(), CliError> {
    let mut config = args.config(MQTT_LOOPBACK, Grant::Host)?;
    let host_id = match &args.host_id {
        Some(id) if copper_wasm::protocol::is_safe_name(id) => id.clone(),
        Some(id) => return Err(CliError::HostId(id.clone())),
        None => copper_wasm::presence::stored_host_id(&args.cache).map_err(|source| {
            CliError::Write {
                path: args.cache.join("host-id"),
                source,
            }
        })?,
    };
    config.scheduler.host_id = Some(host_id);
    let api_config = daemon.api()?;
    if let Some(api_config) = &api_config {
        api_config.check().map_err(CliError::Api)?;
    }
    let grace = daemon.grace()?;
    let file = args.services_file(std::path::Path::new("."))?;
    if let Some(file) = &file {
        config.scheduler.workers = file.workers;
        config.scheduler.queue = file.queue.unwrap_or(config.scheduler.queue);
    }
    let mut services_file = None;
    if !args.no_local_services
        && let Some(file) = file
    {
        config.services = file.services;
        services_file = Some(file.path);
    }
    config.workflows = daemon.workflows.clone();
    config.scheduler.workers = daemon.workers.or(config.scheduler.workers);
    config.scheduler.queue = daemon.queue.unwrap_or(config.scheduler.queue);
    let shutdown = CancellationToken::new();
    let stop = interruption();
    let host = Host::start(config, shutdown.clone())
        .await
        .map_err(|e| match e {
            // A workflow that does not check is the user's to fix, like any other (exit 2).
            copper_wasm::host::HostError::Workflows(copper_wasm::host::KeptError::Invalid(e)) => {
                CliError::Workflow(e)
            }
            e => CliError::Start(Box::new(e)),
        })?;
    let host = Arc::new(host);
    let rooms = match start_rooms(&host, api_config, services_file).await {
        Ok(rooms) => rooms,
        Err((rooms, error)) => {
            rooms.stop(&host, grace).await;
            stop_host(host).await;
            return Err(error);
        }
    };
    let topics = host.registry().topics();
    tracing::info!(broker = %host.address(), "serving {}", topics.join(", "));
    let http = rooms
        .api
        .as_ref()
        .map(|api| format!(", HTTP API on http://{}", api.address()))
        .unwrap_or_default();
    eprintln!(
        "serving {} on {}{http} (Ctrl-C or SIGTERM stops)",
        topics.join(", "),
        host.address()
    );
    stop.await;
    eprintln!("stopping");
    rooms.stop(&host, grace).await;
    stop_host(host).await;
    Ok(())
}

/// Stops the host once nothing else holds it.
async fn stop_host(host: Arc<Host>) {
    match Arc::try_unwrap(host) {
        Ok(host) => host.stop().await,
        Err(_) => {
            tracing::warn!("work still under way holds the host: leaving without its clean stop")
        }
    }
}
