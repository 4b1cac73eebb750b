//! The components a host serves: built in, given as bytes, or read from files
//! and URLs, compiled and registered; and where each came from, to be read again
//! on reload.

use super::HostConfig;
use super::HostError;
use crate::capability::git::GitConfig;
use crate::capability::grants::Grants;
use crate::component::Runtime;
use crate::sandbox::Sandbox;
use crate::scheduler::{Registry, Service};
use crate::services_file::{BackendSpec, ComponentSource};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Loads the configured components into a registry, without serving them.
pub async fn load_registry(config: &HostConfig) -> Result<Registry, HostError> {
    Ok(load_components(config).await?.registry)
}

/// Where a component served came from, to be read again on reload.
#[derive(Clone)]
pub(super) enum Origin {
    /// Built into the binary.
    Builtin(&'static [u8]),
    /// A file or URL, with what it is granted.
    Source(ComponentSource, Grants),
    /// Bytes an embedder gave: nothing to read again.
    Given,
}

/// The components loaded, the runtime that loaded them, and where each came from.
pub(super) struct Loaded {
    pub(super) registry: Registry,
    pub(super) runtime: Arc<Runtime>,
    pub(super) origins: BTreeMap<String, Origin>,
}

/// Reads a component's bytes from `source` (a file, or a URL checked by its digest).
pub(super) async fn read_source(
    source: &ComponentSource,
    service: Option<&str>,
    config_cache: &std::path::Path,
) -> Result<Vec<u8>, HostError> {
    match source {
        ComponentSource::File(path) => std::fs::read(path).map_err(|source| HostError::Read {
            path: path.clone(),
            source,
        }),
        ComponentSource::Url { url, sha256 } => {
            let (url, sha256) = (url.clone(), sha256.clone());
            let folder = config_cache.join("downloads");
            let fetched = tokio::task::spawn_blocking(move || {
                crate::component_url::fetch(&url, &sha256, &folder)
            })
            .await
            .expect("the download thread");
            fetched.map_err(|error| HostError::Url {
                service: service.unwrap_or_default().to_string(),
                source: error,
            })
        }
    }
}

pub(super) async fn load_components(config: &HostConfig) -> Result<Loaded, HostError> {
    let sandbox =
        Sandbox::new(&config.cache, &config.workspace).map_err(|source| HostError::Cache {
            path: config.cache.clone(),
            source,
        })?;
    let git = GitConfig {
        github_url: config.github_url.clone(),
        workspace: sandbox.workspace().to_path_buf(),
    };
    let runtime = Runtime::new(
        sandbox,
        config.compiled_cache.clone(),
        git,
        config.limits.clone(),
    )
    .map_err(HostError::Runtime)?;
    let mut registry = Registry::new();
    let mut origins = BTreeMap::new();
    if config.builtins {
        for builtin in crate::builtin::ALL {
            let component = runtime
                .load_hashed(builtin.bytes, builtin.sha256, Grants::trusted())
                .await
                .map_err(|source| HostError::Load {
                    name: format!("`{}` (built in)", builtin.name),
                    source,
                })?;
            origins.insert(
                component.info().name.clone(),
                Origin::Builtin(builtin.bytes),
            );
            registry.add(Service::component(component))?;
        }
    }
    for (index, bytes) in config.component_bytes.iter().enumerate() {
        let component = runtime
            .load(bytes, Grants::trusted())
            .await
            .map_err(|source| HostError::Load {
                name: format!("component #{} given as bytes", index + 1),
                source,
            })?;
        origins.insert(component.info().name.clone(), Origin::Given);
        registry.add(Service::component(component))?;
    }
    let declared = config
        .services
        .iter()
        .filter_map(|spec| match &spec.backend {
            BackendSpec::Component(source) => Some((
                Some(spec.name.as_str()),
                source.clone(),
                (spec.grants.clone(), spec.concurrency),
            )),
            _ => None,
        });
    let files = config.components.iter().map(|path| {
        (
            None,
            ComponentSource::File(path.clone()),
            Default::default(),
        )
    });
    for (name, source, (grants, concurrency)) in files.chain(declared) {
        let bytes = read_source(&source, name, &config.compiled_cache).await?;
        let component = runtime
            .load(&bytes, grants.clone())
            .await
            .map_err(|error| HostError::Load {
                name: source.to_string(),
                source: error,
            })?;
        if let Some(name) = name
            && name != component.info().name
        {
            return Err(HostError::Misnamed {
                declared: name.to_string(),
                path: source.to_string(),
                described: component.info().name.clone(),
            });
        }
        origins.insert(
            component.info().name.clone(),
            Origin::Source(source, grants),
        );
        registry.add(Service::component(component).with_concurrency(concurrency))?;
    }
    Ok(Loaded {
        registry,
        runtime,
        origins,
    })
}
