//! `copper-wasm plugin check` and `plugin run`: for plugin authors.

use super::{HostArgs, fail};
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
pub async fn check(file: &Path) -> anyhow::Result<u8> {
    let bytes =
        std::fs::read(file).map_err(|e| fail(2, format!("cannot read {}: {e}", file.display())))?;
    match kind(&bytes) {
        Kind::Component => {}
        Kind::CoreModule => {
            return Err(fail(
                2,
                format!(
                    "{} is a core WebAssembly module, not a component: build it for \
                     wasm32-wasip2 (cargo), with componentize-py or jco, or wrap it with \
                     `wasm-tools component new`",
                    file.display()
                ),
            ));
        }
        Kind::NotWasm => {
            return Err(fail(
                2,
                format!("{} is not WebAssembly (no `\\0asm` header)", file.display()),
            ));
        }
    }
    let scratch = std::env::temp_dir().join(format!("copper-wasm-check-{}", std::process::id()));
    let loaded = async {
        let sandbox = Sandbox::new(&scratch.join("cache"), &scratch)?;
        let runtime = Runtime::new(
            sandbox,
            copper_wasm::component::default_compiled_cache(),
            GitConfig::default(),
            Limits::default(),
        )
        .map_err(copper_wasm::host::HostError::Runtime)?;
        Ok::<_, anyhow::Error>(runtime.load(&bytes).await)
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    let component = match loaded? {
        Ok(component) => component,
        Err(error) => {
            let chain = format!("{:#}", anyhow::Error::from(error));
            let hint = if chain.contains("copper:service/service") || chain.contains("no exported")
            {
                "\nit must export the `service` interface of the `copper:service` WIT package (see wit/service.wit)"
            } else {
                ""
            };
            return Err(fail(
                2,
                format!(
                    "{} is not a copper-wasm plugin: {chain}{hint}",
                    file.display()
                ),
            ));
        }
    };
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
    Ok(0)
}

/// `copper-wasm plugin run FILE TOPIC --input JSON`: one action of a local component.
pub async fn run(
    file: &Path,
    topic: String,
    input: String,
    timeout: Option<String>,
    mut host: HostArgs,
) -> anyhow::Result<u8> {
    if !file.is_file() {
        return Err(fail(2, format!("no component file {}", file.display())));
    }
    host.components = vec![file.to_path_buf()];
    host.no_builtins = true;
    super::call(topic, input, timeout, host).await
}
