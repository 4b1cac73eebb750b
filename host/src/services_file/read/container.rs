//! Reading a Docker service: its container, mode, network and timeouts, and its sidecars.

use super::Reader;
use crate::services_file::ServicesFileError;
use crate::services_file::docker::{ContainerSpec, DockerSpec, ImageSource, SidecarSpec, Volume};
use crate::services_file::raw::{RawContainer, Words};
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Default time a sidecar or a `service` container gets to be ready.
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

impl Reader<'_> {
    /// A service's `docker:`.
    pub(super) fn docker(
        &self,
        raw: Spanned<RawContainer>,
        field: &str,
    ) -> Result<DockerSpec, ServicesFileError> {
        let line = raw.referenced.line();
        let mut raw = raw.value;
        if raw.ready.is_some() {
            return Err(self.error(
                Some(line),
                &format!("{field}.ready"),
                "only a sidecar has a readiness command (a `service` container is ready when it says `up`)",
            ));
        }
        let container = self.container(&mut raw, line, field)?;
        let mut sidecars = Vec::new();
        for (name, sidecar) in raw.sidecars.take().unwrap_or_default() {
            sidecars.push(self.sidecar(name, sidecar, &format!("{field}.sidecars"))?);
        }
        let timeout = match &raw.timeout {
            Some(value) => Some(self.duration(value, &format!("{field}.timeout"))?),
            None => None,
        };
        Ok(DockerSpec {
            container,
            mode: raw.mode.unwrap_or_default(),
            network: raw.network.take(),
            timeout,
            ready_timeout: self.ready_timeout(&raw, field)?,
            sidecars,
        })
    }

    /// The sidecar `name` of `sidecars:`.
    fn sidecar(
        &self,
        name: String,
        raw: Spanned<RawContainer>,
        field: &str,
    ) -> Result<SidecarSpec, ServicesFileError> {
        let at = format!("{field}.{name}");
        let line = raw.referenced.line();
        if !crate::protocol::is_service_name(&name) {
            return Err(self.error(Some(line), &at, "not a plain host name"));
        }
        let mut raw = raw.value;
        if raw.mode.is_some()
            || raw.network.is_some()
            || raw.timeout.is_some()
            || raw.sidecars.is_some()
        {
            return Err(self.error(
                Some(line),
                &at,
                "a sidecar takes no `mode`, `network`, `timeout` or `sidecars`: it shares its service's",
            ));
        }
        Ok(SidecarSpec {
            container: self.container(&mut raw, line, &at)?,
            ready: raw.ready.take().map(Words::into_vec),
            ready_timeout: self.ready_timeout(&raw, &at)?,
            name,
        })
    }

    /// `ready_timeout:`, or the default.
    fn ready_timeout(
        &self,
        raw: &RawContainer,
        field: &str,
    ) -> Result<Duration, ServicesFileError> {
        match &raw.ready_timeout {
            Some(value) => self.duration(value, &format!("{field}.ready_timeout")),
            None => Ok(DEFAULT_READY_TIMEOUT),
        }
    }

    /// The fields a service's container and a sidecar's share; the ones it reads are taken.
    fn container(
        &self,
        raw: &mut RawContainer,
        line: u64,
        field: &str,
    ) -> Result<ContainerSpec, ServicesFileError> {
        Ok(ContainerSpec {
            image: self.image(raw, line, field)?,
            command: raw.command.take().map(Words::into_vec),
            entrypoint: raw.entrypoint.take().map(Words::into_vec),
            env: self.env(std::mem::take(&mut raw.env), field)?,
            volumes: self.volumes(&raw.volumes, field)?,
            memory: self.memory(raw.memory.take(), field)?,
            cpus: self.cpus(raw.cpus.take(), field)?,
            pull: raw.pull,
            login: None,
        })
    }

    /// `image:` (interpolated), or `build:` a folder with its `dockerfile:`.
    fn image(
        &self,
        raw: &mut RawContainer,
        line: u64,
        field: &str,
    ) -> Result<ImageSource, ServicesFileError> {
        match (raw.image.take(), raw.build.take()) {
            (Some(image), None) => Ok(ImageSource::Image(self.interpolate(
                &image,
                Some(line),
                &format!("{field}.image"),
            )?)),
            (None, Some(build)) => {
                let context = self.dir.join(&build);
                if !context.is_dir() {
                    return Err(self.error(
                        Some(line),
                        &format!("{field}.build"),
                        format!(
                            "`{build}` is not a folder (looked for {})",
                            context.display()
                        ),
                    ));
                }
                let dockerfile = raw.dockerfile.take().unwrap_or_else(|| "Dockerfile".into());
                if !context.join(&dockerfile).is_file() {
                    return Err(self.error(
                        Some(line),
                        &format!("{field}.build"),
                        format!("{} has no {dockerfile}", context.display()),
                    ));
                }
                Ok(ImageSource::Build {
                    context: std::path::absolute(&context).unwrap_or(context),
                    dockerfile,
                })
            }
            _ => Err(self.error(
                Some(line),
                field,
                "give either `image` (a name with its tag) or `build` (a folder with a Dockerfile)",
            )),
        }
    }

    /// `env:`, scalars taken as text and interpolated.
    fn env(
        &self,
        raw: BTreeMap<String, Spanned<Value>>,
        field: &str,
    ) -> Result<BTreeMap<String, String>, ServicesFileError> {
        let mut env = BTreeMap::new();
        for (key, value) in raw {
            let at = format!("{field}.env.{key}");
            let line = Some(value.referenced.line());
            let text = match &value.value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                _ => {
                    return Err(self.error(line, &at, "must be a string, a number or a boolean"));
                }
            };
            env.insert(key, self.interpolate(&text, line, &at)?);
        }
        Ok(env)
    }

    /// `volumes:`, each interpolated.
    fn volumes(
        &self,
        raw: &[Spanned<String>],
        field: &str,
    ) -> Result<Vec<Volume>, ServicesFileError> {
        raw.iter()
            .enumerate()
            .map(|(index, text)| {
                let at = format!("{field}.volumes[{index}]");
                let line = Some(text.referenced.line());
                let expanded = self.interpolate(&text.value, line, &at)?;
                self.volume(&expanded)
                    .map_err(|why| self.error(line, &at, why))
            })
            .collect()
    }

    /// `./host/path:/in/container[:ro]` or `name:/in/container[:ro]`.
    fn volume(&self, text: &str) -> Result<Volume, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [source, target] => (*source, *target, false),
            [source, target, "ro"] => (*source, *target, true),
            [source, target, "rw"] => (*source, *target, false),
            _ => return Err(format!("`{text}` is not `SOURCE:TARGET[:ro]`")),
        };
        if !target.starts_with('/') {
            return Err(format!("the container path `{target}` must be absolute"));
        }
        if crate::sandbox::RESERVED_PATHS
            .iter()
            .any(|reserved| Path::new(target).starts_with(reserved))
        {
            return Err(format!(
                "`{target}` is mounted by the host itself ({})",
                crate::sandbox::RESERVED_PATHS.join(", ")
            ));
        }
        let source =
            if source.starts_with('/') || source.starts_with('.') || source.starts_with('~') {
                let path = self.dir.join(source);
                std::path::absolute(&path)
                    .map_err(|e| format!("`{source}`: {e}"))?
                    .display()
                    .to_string()
            } else {
                source.to_string()
            };
        Ok(Volume {
            source,
            target: target.to_string(),
            read_only,
        })
    }

    /// `memory:`, in bytes.
    fn memory(
        &self,
        raw: Option<Spanned<Value>>,
        field: &str,
    ) -> Result<Option<i64>, ServicesFileError> {
        let Some(value) = raw else { return Ok(None) };
        parse_memory(&value.value).map(Some).map_err(|why| {
            self.error(
                Some(value.referenced.line()),
                &format!("{field}.memory"),
                why,
            )
        })
    }

    /// `cpus:`, above 0 and at most 1024.
    fn cpus(
        &self,
        raw: Option<Spanned<f64>>,
        field: &str,
    ) -> Result<Option<f64>, ServicesFileError> {
        match raw {
            Some(cpus) if !(cpus.value > 0.0 && cpus.value <= 1024.0) => Err(self.error(
                Some(cpus.referenced.line()),
                &format!("{field}.cpus"),
                format!("must be a number of CPUs above 0, got {}", cpus.value),
            )),
            other => Ok(other.map(|c| c.value)),
        }
    }
}

/// `512m`, `2g`, `1024k`, or a number of bytes.
fn parse_memory(value: &Value) -> Result<i64, String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_ascii_lowercase(),
        other => return Err(format!("must be a size such as `512m`, got {other}")),
    };
    let text = text.trim_end_matches('b');
    let (digits, unit) = match text
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale: f64 = match unit {
        "" => 1.0,
        "k" | "ki" => 1024.0,
        "m" | "mi" => 1024.0 * 1024.0,
        "g" | "gi" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "must be a size such as `512m` or `2g`, got `{text}`"
            ));
        }
    };
    let amount: f64 = digits
        .parse()
        .map_err(|_| format!("must be a size such as `512m` or `2g`, got `{text}`"))?;
    let bytes = amount * scale;
    // Docker refuses less than 6 MiB.
    if !(6.0 * 1024.0 * 1024.0..=1e15).contains(&bytes) {
        return Err(format!("`{text}` is outside 6m to 1000000g"));
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory(&json!("512m")), Ok(512 << 20));
        assert_eq!(parse_memory(&json!("2g")), Ok(2 << 30));
        assert_eq!(parse_memory(&json!(67108864)), Ok(64 << 20));
        assert!(parse_memory(&json!("1k")).is_err());
    }
}
