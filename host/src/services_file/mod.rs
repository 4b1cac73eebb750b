//! The services file: which backend serves each service of a workflow.
//!
//! `copper.yaml` beside the workflow (or `--services FILE`) maps service names to
//! a `component:` (a `.wasm` file), `docker:` (an image or a folder to build,
//! one container per request or one long-running container) or `external: true`
//! (served by someone else on the broker). The built-in components need no entry.
//! Every error names the file, the line and the field.
//!
//! Its parts: `service` (a service and its backend), `docker` (a Docker service's
//! containers), `raw` (the shapes the YAML is read into) and `read` (the reader that
//! checks them into specs).
//!
//! ```yaml
//! services:
//!   thumbnails:
//!     docker:
//!       build: ./thumbnails          # or image: registry/thumbnails:1.2
//!       mode: lambda                 # one container per request (default), or `service`
//!       env: { QUALITY: "${QUALITY:-80}" }
//!       memory: 512m
//!       timeout: 2m
//!     actions:
//!       resize: { doc: Resize the images of a resource }
//!   legacy:
//!     external: true
//!     actions: [build]
//! ```

mod docker;
mod raw;
mod read;
mod service;

pub use docker::{
    ContainerSpec, DockerSpec, ImageSource, Mode, PullPolicy, RegistryLogin, SidecarSpec, Volume,
};
pub use service::{BackendSpec, ComponentSource, ServiceSpec};

use crate::environment::Environment;
use std::path::{Path, PathBuf};

/// The name of the services file looked for beside a workflow.
pub const DEFAULT_NAME: &str = "copper.yaml";

/// A read and checked services file.
#[derive(Debug, Clone, Default)]
pub struct ServicesFile {
    /// Where it came from.
    pub path: PathBuf,
    /// Its services, in file order.
    pub services: Vec<ServiceSpec>,
    /// `workers:`: requests running at once on the whole host, all services together.
    pub workers: Option<usize>,
    /// `queue:`: requests of one service that may wait behind those running.
    pub queue: Option<usize>,
}

/// A services file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}{message}", file.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default())]
pub struct ServicesFileError {
    /// The file.
    pub file: PathBuf,
    /// The line, when known.
    pub line: Option<u64>,
    /// The field at fault (`services.thumbnails.docker.memory`).
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ServicesFile {
    /// The services file beside `workflow` (`copper.yaml`), if there is one.
    pub fn beside(workflow: &Path) -> Option<PathBuf> {
        let dir = workflow.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let path = dir.join(DEFAULT_NAME);
        path.is_file().then_some(path)
    }

    /// Reads and checks a services file; `${VAR}` come from the environment and the
    /// `.env` file beside it.
    pub fn load(path: &Path) -> Result<Self, ServicesFileError> {
        let unreadable = |message: String| ServicesFileError {
            file: path.to_path_buf(),
            line: None,
            field: None,
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| unreadable(format!("cannot read the services file: {e}")))?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let env = Environment::load(&dir).map_err(unreadable)?;
        Self::parse(&text, path, env)
    }

    /// Reads and checks a services file given as text; paths are relative to `path`'s folder.
    pub fn parse(text: &str, path: &Path, env: Environment) -> Result<Self, ServicesFileError> {
        let read = read::file(text, path, env)?;
        Ok(Self {
            path: path.to_path_buf(),
            services: read.services,
            workers: read.workers,
            queue: read.queue,
        })
    }

    /// The service named `name`.
    pub fn get(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<ServicesFile, ServicesFileError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ctx")).unwrap();
        std::fs::write(dir.path().join("ctx/Dockerfile"), "FROM scratch\n").unwrap();
        let path = dir.path().join("copper.yaml");
        ServicesFile::parse(text, &path, Environment::default())
    }

    #[test]
    fn docker_service_with_everything() {
        let file = parse(
            "services:\n  shout:\n    docker:\n      image: test/shout:1\n      command: sh -c 'x'\n      env:\n        A: 1\n        B: ${COPPER_TEST_NOT_SET:-dflt}\n      volumes: ['./data:/data:ro', 'cache:/cache']\n      memory: 256m\n      cpus: 0.5\n      timeout: 30s\n      pull: never\n      sidecars:\n        db:\n          build: ctx\n          ready: test -f /ok\n    actions:\n      run:\n        doc: Shouts\n        input: {type: object, required: [text]}\n",
        )
        .unwrap();
        let shout = file.get("shout").unwrap();
        assert_eq!(shout.line, 3);
        assert_eq!(shout.topics(), vec!["shout/run".to_string()]);
        let BackendSpec::Docker(docker) = &shout.backend else {
            panic!("not docker")
        };
        assert_eq!(docker.mode, Mode::Lambda);
        assert_eq!(
            docker.container.image,
            ImageSource::Image("test/shout:1".into())
        );
        assert_eq!(docker.container.env["A"], "1");
        assert_eq!(docker.container.env["B"], "dflt");
        assert_eq!(docker.container.memory, Some(256 << 20));
        assert_eq!(docker.container.pull, PullPolicy::Never);
        assert_eq!(docker.timeout, Some(Duration::from_secs(30)));
        assert!(docker.container.volumes[0].read_only);
        assert!(docker.container.volumes[0].source.ends_with("/data"));
        assert_eq!(docker.container.volumes[1].bind(), "cache:/cache");
        assert_eq!(docker.sidecars[0].name, "db");
        assert_eq!(
            docker.sidecars[0].ready,
            Some(vec!["test".into(), "-f".into(), "/ok".into()])
        );
        assert!(matches!(
            docker.sidecars[0].container.image,
            ImageSource::Build { .. }
        ));
    }

    #[test]
    fn the_worker_pool_is_set_at_the_top() {
        let file = parse("workers: 8\nqueue: 100\nservices: {}\n").unwrap();
        assert_eq!((file.workers, file.queue), (Some(8), Some(100)));
        let file = parse("services: {}\n").unwrap();
        assert_eq!((file.workers, file.queue), (None, None));
        let err = parse("workers: 0\n").unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (Some(1), Some("workers")));
        assert!(err.message.contains("from 1 to"), "{err}");
        let err = parse("services: {}\nqueue: -3\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn errors_name_line_and_field() {
        let err = parse("services:\n  a:\n    docker:\n      image: x:1\n      memory: lots\n    actions: [run]\n")
            .unwrap_err();
        assert_eq!(err.line, Some(5), "{err}");
        assert_eq!(
            err.field.as_deref(),
            Some("services.a.docker.memory"),
            "{err}"
        );

        let err = parse("services:\n  a:\n    docker:\n      image: x:1\n").unwrap_err();
        assert!(err.message.contains("must list its actions"), "{err}");

        let err = parse("services:\n  a:\n    docker:\n      image: x:1\n      volumes: ['./x:/web']\n    actions: [run]\n")
            .unwrap_err();
        assert!(err.message.contains("mounted by the host"), "{err}");

        let err = parse("services:\n  a:\n    dokcer:\n      image: x:1\n").unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(
            err.message.contains("dokcer") && !err.message.starts_with("error"),
            "{err}"
        );

        let err =
            parse("services:\n  a:\n    external: true\n    component: x.wasm\n    actions: [b]\n")
                .unwrap_err();
        assert!(err.message.contains("exactly one"), "{err}");

        let err = parse(
            "services:\n  a:\n    docker:\n      image: ${COPPER_TEST_NOT_SET}\n    actions: [b]\n",
        )
        .unwrap_err();
        assert!(err.message.contains("COPPER_TEST_NOT_SET"), "{err}");
    }
}
