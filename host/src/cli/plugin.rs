//! `copper-wasm plugin check` and `plugin run`: for plugin authors.

use super::{CliError, HostArgs};
use copper_wasm::capability::git::GitConfig;
use copper_wasm::component::{Limits, Runtime};
use copper_wasm::sandbox::Sandbox;
use std::path::Path;

/// What a file is, from its first bytes.
enum Kind {
    Component,
    CoreModule,
    NotWasm,
}

fn kind(bytes: &[u8]) -> Kind {
    match bytes {
        [0, b'a', b's', b'm', _, _, 1, 0, ..] => Kind::Component,
        [0, b'a', b's', b'm', 1, 0, 0, 0, ..] => Kind::CoreModule,
        _ => Kind::NotWasm,
    }
}

/// `copper-wasm plugin check FILE`: loads the component as the host would and reports.
pub async fn check(file: &Path) -> Result<(), CliError> {
    let bytes = std::fs::read(file).map_err(|source| CliError::ReadComponent {
        path: file.to_path_buf(),
        source,
    })?;
    match kind(&bytes) {
        Kind::Component => {}
        Kind::CoreModule => return Err(CliError::CoreModule(file.to_path_buf())),
        Kind::NotWasm => return Err(CliError::NotWasm(file.to_path_buf())),
    }
    let scratch = std::env::temp_dir().join(format!("copper-wasm-check-{}", std::process::id()));
    let loaded = async {
        let sandbox =
            Sandbox::new(&scratch.join("cache"), &scratch).map_err(|source| CliError::Scratch {
                path: scratch.clone(),
                source,
            })?;
        let runtime = Runtime::new(
            sandbox,
            copper_wasm::component::default_compiled_cache(),
            GitConfig::default(),
            Limits::default(),
        )
        .map_err(copper_wasm::host::HostError::Runtime)?;
        Ok::<_, CliError>(
            runtime
                .load(&bytes, copper_wasm::capability::grants::Grants::trusted())
                .await,
        )
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    let component = loaded?.map_err(|source| CliError::NotAPlugin {
        path: file.to_path_buf(),
        source,
    })?;
    let info = component.info();
    println!(
        "{}: service `{}` {}",
        file.display(),
        info.name,
        info.version
    );
    println!("  capabilities: {}", super::capabilities(info));
    super::print_actions(info);
    println!(
        "ok: exports copper:service/service, imports only what it declares, and its schemas are valid JSON Schemas"
    );
    Ok(())
}

/// `copper-wasm plugin run FILE TOPIC --input JSON`: one action of a local component.
pub async fn run(
    file: &Path,
    topic: String,
    input: String,
    timeout: Option<String>,
    mut host: HostArgs,
) -> Result<(), CliError> {
    if !file.is_file() {
        return Err(CliError::NoComponentFile(file.to_path_buf()));
    }
    host.components = vec![file.to_path_buf()];
    host.no_builtins = true;
    super::call(topic, input, timeout, host).await
}
