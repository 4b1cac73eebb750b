//! `copper-wasm plugin new NAME [--lang rust|python]`: a working plugin project.

use super::CliError;
use std::path::Path;

/// The WIT package plugins implement, as this host serves it.
const WIT: &str = include_str!("../../../wit/service.wit");

const RUST_CARGO: &str = r#"[package]
name = "@NAME@"
version = "0.1.0"
edition = "2024"

[lib]
crate-type = ["cdylib"]

[dependencies]
wit-bindgen = "0.61"
serde_json = "1"

# A project of its own, even inside another workspace.
[workspace]

[profile.release]
opt-level = "s"
strip = true
"#;

const RUST_LIB: &str = r##"//! The `@NAME@` copper-wasm plugin: `@NAME@/hello` greets whoever `name` says.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use copper::service::host;
use copper::service::types::{ActionInfo, ErrorKind, Request, ServiceError, ServiceInfo};

struct Plugin;

impl exports::copper::service::service::Guest for Plugin {
    fn describe() -> ServiceInfo {
        ServiceInfo {
            name: "@NAME@".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            actions: vec![ActionInfo {
                name: "hello".into(),
                doc: "Greet whoever `name` says".into(),
                input_schema: r#"{"type":"object","required":["name"],"properties":{"name":{"type":"string","minLength":1}}}"#.into(),
                output_schema: r#"{"type":"object","required":["greeting"],"properties":{"greeting":{"type":"string"}}}"#.into(),
            }],
            capabilities: vec![],
        }
    }

    fn handle(request: Request) -> Result<String, ServiceError> {
        let input: serde_json::Value = serde_json::from_str(&request.input).map_err(|e| ServiceError {
            kind: ErrorKind::InvalidInput,
            message: format!("the input is not JSON: {e}"),
        })?;
        let name = input["name"].as_str().unwrap_or("world");
        host::progress(&format!("greeting {name}"));
        Ok(serde_json::json!({ "greeting": format!("hello, {name}") }).to_string())
    }
}

export!(Plugin);
"##;

const RUST_README: &str = r#"# @NAME@

A copper-wasm plugin. Build it, check it, run its action:

```sh
rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2
copper-wasm plugin check target/wasm32-wasip2/release/@FILE@.wasm
copper-wasm plugin run target/wasm32-wasip2/release/@FILE@.wasm @NAME@/hello --input '{"name": "copper"}'
```

`wit/service.wit` is the contract (`copper:service`); see copper-wasm's
docs/authoring.md for the sandbox, the capabilities and the limits.
"#;

const PYTHON_APP: &str = r#""""The `@NAME@` copper-wasm plugin: `@NAME@/hello` greets whoever `name` says."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import ActionInfo, ErrorKind, ServiceError, ServiceInfo


class Service(exports.Service):
    def describe(self) -> ServiceInfo:
        return ServiceInfo(
            name="@NAME@",
            version="0.1.0",
            actions=[
                ActionInfo(
                    name="hello",
                    doc="Greet whoever `name` says",
                    input_schema=json.dumps({"type": "object", "required": ["name"]}),
                    output_schema=json.dumps({"type": "object", "required": ["greeting"]}),
                )
            ],
            capabilities=[],
        )

    def handle(self, request) -> str:
        try:
            fields = json.loads(request.input)
        except ValueError as error:
            raise Err(ServiceError(kind=ErrorKind.INVALID_INPUT, message=f"the input is not JSON: {error}"))
        name = fields.get("name", "world")
        host.progress(f"greeting {name}")
        return json.dumps({"greeting": f"hello, {name}"})
"#;

const PYTHON_README: &str = r#"# @NAME@

A copper-wasm plugin in Python. Build it with componentize-py, check it, run it:

```sh
pip install componentize-py
componentize-py -d wit -w plugin componentize app -o @FILE@.wasm
copper-wasm plugin check @FILE@.wasm
copper-wasm plugin run @FILE@.wasm @NAME@/hello --input '{"name": "copper"}'
```

`wit/service.wit` is the contract (`copper:service`); see copper-wasm's
docs/authoring.md for the sandbox, the capabilities and the limits.
"#;

/// Writes a new plugin project `name` in the working folder.
pub fn new(name: &str, lang: &str) -> Result<(), CliError> {
    if !copper_wasm::protocol::is_service_name(name) || name.starts_with('-') {
        return Err(CliError::PluginName(name.to_string()));
    }
    let dir = Path::new(name);
    if dir.exists() {
        return Err(CliError::Exists(dir.to_path_buf()));
    }
    let fill = |template: &str| {
        template
            .replace("@NAME@", name)
            .replace("@FILE@", &name.replace('-', "_"))
    };
    let files: Vec<(&str, String)> = match lang {
        "rust" => vec![
            ("Cargo.toml", fill(RUST_CARGO)),
            ("src/lib.rs", fill(RUST_LIB)),
            ("README.md", fill(RUST_README)),
            ("wit/service.wit", WIT.to_string()),
        ],
        "python" => vec![
            ("app.py", fill(PYTHON_APP)),
            ("README.md", fill(PYTHON_README)),
            ("wit/service.wit", WIT.to_string()),
        ],
        other => return Err(CliError::NoTemplate(other.to_string())),
    };
    for (path, text) in &files {
        let path = dir.join(path);
        let written = match path.parent() {
            Some(parent) => std::fs::create_dir_all(parent),
            None => Ok(()),
        }
        .and_then(|()| std::fs::write(&path, text));
        written.map_err(|source| CliError::Write { path, source })?;
    }
    println!(
        "created {} ({lang}); see {}/README.md to build it",
        dir.display(),
        dir.display()
    );
    Ok(())
}
