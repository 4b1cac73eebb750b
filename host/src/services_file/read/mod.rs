//! The reader: the raw shapes turned into specs, every error naming file, line and field.
//!
//! - `service`: a service's name, backend (`component`, `docker`, `external`) and actions.
//! - `container`: a Docker service, its sidecars, and the fields of a container.

mod container;
mod service;

use super::ServicesFileError;
use super::raw::RawFile;
use super::service::ServiceSpec;
use crate::environment::Environment;
use crate::timeout;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What reading a file needs: where it is (for errors and relative paths) and `${VAR}`.
struct Reader<'a> {
    path: &'a Path,
    dir: PathBuf,
    env: Environment,
}

/// Reads the services of `text`, the file at `path`, in file order.
/// What a services file says, checked.
pub(super) struct Read {
    pub services: Vec<ServiceSpec>,
    pub workers: Option<usize>,
    pub queue: Option<usize>,
}

pub(super) fn file(text: &str, path: &Path, env: Environment) -> Result<Read, ServicesFileError> {
    let raw: RawFile = serde_saphyr::from_str_with_options(text, crate::workflow::yaml_options())
        .map_err(|e| ServicesFileError {
        file: path.to_path_buf(),
        line: e.location().map(|l| l.line()),
        field: None,
        message: crate::workflow::yaml_message(&e),
    })?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let reader = Reader { path, dir, env };
    let bounded = |value: Option<Spanned<u64>>,
                   field: &str,
                   range: std::ops::RangeInclusive<u64>| {
        match value {
            None => Ok(None),
            Some(n) if range.contains(&n.value) => Ok(Some(n.value as usize)),
            Some(n) => Err(reader.error(
                Some(n.referenced.line()),
                field,
                format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    };
    let workers = bounded(raw.workers, "workers", 1..=65536)?;
    let queue = bounded(raw.queue, "queue", 0..=1_000_000)?;
    let mut services = Vec::new();
    for (name, service) in raw.services {
        services.push(reader.service(name, service)?);
    }
    services.sort_by_key(|s| s.line);
    Ok(Read {
        services,
        workers,
        queue,
    })
}

impl Reader<'_> {
    /// An error at `line` and `field` (none when `field` is empty).
    fn error(
        &self,
        line: Option<u64>,
        field: &str,
        message: impl Into<String>,
    ) -> ServicesFileError {
        ServicesFileError {
            file: self.path.to_path_buf(),
            line,
            field: (!field.is_empty()).then(|| field.to_string()),
            message: message.into(),
        }
    }

    /// A duration such as `30s` or `2m`.
    fn duration(&self, value: &Spanned<Value>, field: &str) -> Result<Duration, ServicesFileError> {
        timeout::parse(&value.value)
            .map_err(|why| self.error(Some(value.referenced.line()), field, why))
    }

    /// `${VAR}` of `text` replaced.
    fn interpolate(
        &self,
        text: &str,
        line: Option<u64>,
        field: &str,
    ) -> Result<String, ServicesFileError> {
        self.env
            .interpolate(text)
            .map_err(|why| self.error(line, field, why))
    }
}
