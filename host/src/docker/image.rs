//! The image a container needs: found on the engine, built from a folder (cached by
//! content), or pulled with credentials from the environment.

use super::{DockerError, Engine};
use crate::services_file::{ContainerSpec, ImageSource, PullPolicy, RegistryLogin};
use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Why an image failed to build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Its folder cannot be read into the tar sent to the engine.
    #[error("cannot pack its folder")]
    Pack(#[source] std::io::Error),
    /// Packing its folder stopped before it ended.
    #[error("packing its folder stopped")]
    Packing(#[source] tokio::task::JoinError),
    /// The engine's build stopped; its log's last lines come first, then the engine's word.
    #[error("{}the build stopped", log_lines(log))]
    Engine {
        /// The last lines of the build's log.
        log: String,
        /// What the engine said.
        #[source]
        source: BollardError,
    },
}

/// `log` as the start of a message: nothing, or its lines under a heading.
fn log_lines(log: &str) -> String {
    if log.is_empty() {
        String::new()
    } else {
        format!("its log ends with:\n{log}\n")
    }
}

/// Makes sure the engine has the image of `container`, pulled (with its login,
/// when it has one) as its pull policy says; returns the name to run.
pub async fn ensure(
    engine: &Engine,
    service: &str,
    container: &ContainerSpec,
) -> Result<String, DockerError> {
    let (source, pull) = (&container.image, container.pull);
    match source {
        ImageSource::Image(name) => {
            let present = exists(engine, name).await?;
            match (present, pull) {
                (true, PullPolicy::Missing | PullPolicy::Never) => Ok(name.clone()),
                (false, PullPolicy::Never) => Err(DockerError::Image {
                    image: name.clone(),
                }),
                (_, _) => {
                    pull_image(engine, name, container.login.as_ref()).await?;
                    Ok(name.clone())
                }
            }
        }
        ImageSource::Build {
            context,
            dockerfile,
        } => build(engine, service, context, dockerfile).await,
    }
}

async fn exists(engine: &Engine, name: &str) -> Result<bool, DockerError> {
    match engine.docker().inspect_image(name).await {
        Ok(_) => Ok(true),
        Err(BollardError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(source) => Err(DockerError::Engine {
            what: format!("look up image `{name}`"),
            source,
        }),
    }
}

/// Registry credentials: the container's own login, else `COPPER_REGISTRY_USERNAME` /
/// `COPPER_REGISTRY_PASSWORD` (and `COPPER_REGISTRY_SERVER`); they are never logged.
fn credentials(login: Option<&RegistryLogin>) -> Option<DockerCredentials> {
    if let Some(login) = login {
        return Some(DockerCredentials {
            username: Some(login.username.clone()),
            password: Some(login.password.clone()),
            ..Default::default()
        });
    }
    let username = std::env::var("COPPER_REGISTRY_USERNAME").ok()?;
    Some(DockerCredentials {
        username: Some(username),
        password: std::env::var("COPPER_REGISTRY_PASSWORD").ok(),
        serveraddress: std::env::var("COPPER_REGISTRY_SERVER").ok(),
        ..Default::default()
    })
}

async fn pull_image(
    engine: &Engine,
    name: &str,
    login: Option<&RegistryLogin>,
) -> Result<(), DockerError> {
    // Without a tag the engine would pull every tag of the repository.
    let (repository, tag) = split_tag(name);
    let options = CreateImageOptionsBuilder::default()
        .from_image(repository)
        .tag(tag)
        .build();
    tracing::info!(image = %name, "pulling");
    let mut stream = engine
        .docker()
        .create_image(Some(options), None, credentials(login));
    while let Some(item) = stream.next().await {
        if let Err(source) = item {
            return Err(DockerError::Pull {
                image: name.to_string(),
                source,
            });
        }
    }
    Ok(())
}

/// `repo:tag` (a registry port is not a tag); `latest` when there is none.
fn split_tag(name: &str) -> (&str, &str) {
    if name.contains('@') {
        return (name, "");
    }
    match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (name, "latest"),
    }
}

/// Builds the folder's Dockerfile unless an image of the same content exists.
async fn build(
    engine: &Engine,
    service: &str,
    context: &Path,
    dockerfile: &str,
) -> Result<String, DockerError> {
    let failed = |source: BuildError| DockerError::Build {
        context: context.display().to_string(),
        source,
    };
    let (hash, tar) = {
        let context = context.to_path_buf();
        tokio::task::spawn_blocking(move || pack(&context))
            .await
            .map_err(|e| failed(BuildError::Packing(e)))?
            .map_err(|e| failed(BuildError::Pack(e)))?
    };
    let name = format!("copper-wasm/{service}:{}", &hash[..16]);
    if exists(engine, &name).await? {
        return Ok(name);
    }
    tracing::info!(image = %name, context = %context.display(), "building");
    let labels = std::collections::HashMap::from([("copper-wasm.service", service)]);
    let options = BuildImageOptionsBuilder::default()
        .dockerfile(dockerfile)
        .t(&name)
        .rm(true)
        .forcerm(true)
        .labels(&labels)
        .build();
    let mut stream =
        engine
            .docker()
            .build_image(options, None, Some(bollard::body_full(tar.into())));
    let mut log = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(line) = info.stream {
                    log.push(line);
                }
            }
            Err(source) => {
                // The engine sends a step's line and its end of line apart.
                let mut last: Vec<&str> = log
                    .iter()
                    .map(|l| l.trim_end())
                    .filter(|l| !l.is_empty())
                    .rev()
                    .take(8)
                    .collect();
                last.reverse();
                return Err(failed(BuildError::Engine {
                    log: last.join("\n"),
                    source,
                }));
            }
        }
    }
    Ok(name)
}

/// The build context as a tar, and a hash of its content (paths, modes and bytes).
fn pack(context: &Path) -> std::io::Result<(String, Vec<u8>)> {
    let mut files = Vec::new();
    collect(context, context, &mut files)?;
    files.sort();
    let mut digest = Sha256::new();
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    for relative in &files {
        let path = context.join(relative);
        let bytes = std::fs::read(&path)?;
        digest.update(relative.to_string_lossy().as_bytes());
        digest.update([0]);
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(&bytes);
        tar.append_path_with_name(&path, relative)?;
    }
    let hash = format!("{:x}", digest.finalize());
    Ok((hash, tar.into_inner()?))
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            collect(root, &path, files)?;
        } else if kind.is_file() {
            files.push(
                path.strip_prefix(root)
                    .expect("below the root")
                    .to_path_buf(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags() {
        assert_eq!(split_tag("busybox"), ("busybox", "latest"));
        assert_eq!(split_tag("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(
            split_tag("registry.local:5000/team/app"),
            ("registry.local:5000/team/app", "latest")
        );
        assert_eq!(
            split_tag("registry.local:5000/team/app:2"),
            ("registry.local:5000/team/app", "2")
        );
    }

    #[test]
    fn a_failed_build_shows_its_log_then_the_engine_each_once() {
        let error = DockerError::Build {
            context: "/ctx".into(),
            source: BuildError::Engine {
                log: "Step 2/2 : RUN exit 3".into(),
                source: BollardError::DockerStreamError {
                    error: "returned a non-zero code: 3".into(),
                },
            },
        };
        let mut level: Option<&dyn std::error::Error> = Some(&error);
        while let Some(error) = level {
            if let Some(source) = error.source() {
                assert!(!error.to_string().contains(&source.to_string()), "{error}");
            }
            level = error.source();
        }
        assert_eq!(
            format!("{:#}", anyhow::Error::from(error)),
            "cannot build /ctx: its log ends with:\nStep 2/2 : RUN exit 3\n\
             the build stopped: Docker stream error: returned a non-zero code: 3"
        );
    }

    #[test]
    fn context_hash_follows_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let (a, tar) = pack(dir.path()).unwrap();
        assert!(!tar.is_empty());
        std::fs::write(dir.path().join("extra"), "x").unwrap();
        let (b, _) = pack(dir.path()).unwrap();
        assert_ne!(a, b);
        let (c, _) = pack(dir.path()).unwrap();
        assert_eq!(b, c);
    }
}
