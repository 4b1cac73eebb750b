//! Services files (`copper.yaml`) for the tests, built from their parts: Docker
//! services of the test image, components, external services.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The Docker tests' image, `copper-wasm-test/shell:<tag>`, built once per test run
/// from this machine's busybox and mosquitto clients (tests/fixtures/shell-image): the
/// engine can pull nothing. With no engine it fails: the tests never skip.
pub fn test_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let info = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output()
            .expect("the docker CLI runs");
        assert!(
            info.status.success(),
            "these tests need a Docker engine, and none answers: {}",
            String::from_utf8_lossy(&info.stderr)
        );
        // Tagged by the content of its recipe: built again only when that changes.
        let folder = super::repo_root().join("tests/fixtures/shell-image");
        let mut digest = Sha256::new();
        for file in ["build.sh", "serve.sh"] {
            digest.update(std::fs::read(folder.join(file)).unwrap());
        }
        let tag: String = digest.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let image = format!("copper-wasm-test/shell:{tag}");
        let present = Command::new("docker")
            .args(["image", "inspect", &image])
            .output()
            .unwrap();
        if !present.status.success() {
            let script = folder.join("build.sh");
            let status = Command::new("bash")
                .arg(&script)
                .arg(&tag)
                .status()
                .unwrap();
            assert!(status.success(), "{} failed", script.display());
        }
        image
    })
}

/// Appends `key: value` at `indent`; a value of several lines goes under the key,
/// two spaces further in.
fn field(yaml: &mut String, indent: usize, key: &str, value: &str) {
    let pad = " ".repeat(indent);
    if value.contains('\n') {
        yaml.push_str(&format!("{pad}{key}:\n"));
        for line in value.lines() {
            if line.is_empty() {
                yaml.push('\n');
            } else {
                yaml.push_str(&format!("{pad}  {line}\n"));
            }
        }
    } else {
        yaml.push_str(&format!("{pad}{key}: {value}\n"));
    }
}

/// A services file, its services written in the order they are added.
pub struct ServicesFile {
    yaml: String,
}

impl Default for ServicesFile {
    fn default() -> Self {
        Self {
            yaml: "services:\n".into(),
        }
    }
}

impl ServicesFile {
    /// One with no service yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A service run by Docker as `docker` says, answering `actions` (YAML: `[run]`,
    /// or a map of several lines, the actions with their docs and schemas).
    pub fn docker(mut self, name: &str, docker: Docker, actions: &str) -> Self {
        self.yaml.push_str(&format!("  {name}:\n    docker:\n"));
        docker.render(&mut self.yaml, 6);
        field(&mut self.yaml, 4, "actions", actions);
        self
    }

    /// A component from a file (`path` as the services file says it).
    pub fn component(mut self, name: &str, path: &str) -> Self {
        self.yaml
            .push_str(&format!("  {name}:\n    component: {path}\n"));
        self
    }

    /// A component downloaded from `url`, pinned by its `sha256`.
    pub fn component_url(mut self, name: &str, url: &str, sha256: &str) -> Self {
        self.yaml.push_str(&format!(
            "  {name}:\n    component:\n      url: {url}\n      sha256: \"{sha256}\"\n"
        ));
        self
    }

    /// A service that some other program serves on the broker.
    pub fn external(mut self, name: &str, actions: &str) -> Self {
        self.yaml.push_str(&format!(
            "  {name}:\n    external: true\n    actions: {actions}\n"
        ));
        self
    }

    /// The line (from 1) of the first line holding `text`.
    pub fn line_of(&self, text: &str) -> usize {
        self.yaml
            .lines()
            .position(|line| line.contains(text))
            .unwrap_or_else(|| panic!("no `{text}` in\n{}", self.yaml))
            + 1
    }

    /// Writes it as `dir/copper.yaml`.
    pub fn write(&self, dir: &Path) {
        std::fs::write(dir.join("copper.yaml"), &self.yaml).unwrap();
    }
}

/// The `docker:` part of a service, or a sidecar of one.
pub struct Docker {
    fields: Vec<(String, String)>,
    env: Vec<(String, String)>,
    sidecars: Vec<(String, Docker)>,
}

impl Docker {
    /// Runs `image`.
    pub fn image(image: &str) -> Self {
        Self {
            fields: vec![("image".into(), image.into())],
            env: Vec::new(),
            sidecars: Vec::new(),
        }
    }

    /// Runs the test image ([`test_image`]).
    pub fn test_image() -> Self {
        Self::image(test_image())
    }

    /// `command`, a YAML list as it is written: `[sh, -c, 'exit 3']`.
    pub fn command(self, list: &str) -> Self {
        self.field("command", list)
    }

    /// `command: [sh, -c, SCRIPT]`, the script written as it is (a YAML literal block).
    pub fn script(self, script: &str) -> Self {
        let mut list = String::from("- sh\n- -c\n- |\n");
        for line in script.lines() {
            if !line.is_empty() {
                list.push_str("  ");
            }
            list.push_str(line);
            list.push('\n');
        }
        self.field("command", &list)
    }

    /// `mode: service`: one long-running container that speaks MQTT itself.
    pub fn service_mode(self) -> Self {
        self.field("mode", "service")
    }

    /// Any other field (`timeout`, `pull`, `ready`…), `value` as YAML; a value of
    /// several lines (a map, a block list) goes under the key.
    pub fn field(mut self, key: &str, value: &str) -> Self {
        self.fields.push((key.into(), value.into()));
        self
    }

    /// `name: value` in its `env` (the value as YAML: `${VAR:-default}` is the host's).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// A sidecar `name`, started before the service and ready first.
    pub fn sidecar(mut self, name: &str, sidecar: Docker) -> Self {
        self.sidecars.push((name.into(), sidecar));
        self
    }

    fn render(&self, yaml: &mut String, indent: usize) {
        for (key, value) in &self.fields {
            field(yaml, indent, key, value);
        }
        if !self.env.is_empty() {
            yaml.push_str(&format!("{}env:\n", " ".repeat(indent)));
            for (name, value) in &self.env {
                field(yaml, indent + 2, name, value);
            }
        }
        if !self.sidecars.is_empty() {
            yaml.push_str(&format!("{}sidecars:\n", " ".repeat(indent)));
            for (name, sidecar) in &self.sidecars {
                yaml.push_str(&format!("{}{name}:\n", " ".repeat(indent + 2)));
                sidecar.render(yaml, indent + 4);
            }
        }
    }
}
