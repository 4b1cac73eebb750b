//! The environment workflows and services files may refer to: the process
//! environment, then a `.env` file, read into `${VAR}` / `${VAR:-default}`.

use std::collections::BTreeMap;
use std::path::Path;

/// Variables to interpolate: the process environment over a `.env` file.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    dotenv: BTreeMap<String, String>,
}

impl Environment {
    /// The process environment, with the `.env` file in `dir` (if any) under it.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let path = dir.join(".env");
        if !path.exists() {
            return Ok(Self::default());
        }
        Self::from_file(&path)
    }

    /// The process environment, with the variables of the file `path` under it.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let iter = dotenvy::from_path_iter(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut dotenv = BTreeMap::new();
        for item in iter {
            let (key, value) = item.map_err(|e| format!("{}: {e}", path.display()))?;
            dotenv.insert(key, value);
        }
        Ok(Self { dotenv })
    }

    /// The variables of the `.env` file.
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.dotenv
    }

    /// The value of `name`: the process environment first, then the `.env` file.
    pub fn get(&self, name: &str) -> Option<String> {
        std::env::var(name)
            .ok()
            .or_else(|| self.dotenv.get(name).cloned())
    }

    /// Replaces `${VAR}`, `$VAR` and `${VAR:-default}`; `$$` is a literal `$`.
    /// A variable that is not set and has no default is an error naming it.
    pub fn interpolate(&self, text: &str) -> Result<String, String> {
        if !text.contains('$') {
            return Ok(text.to_string());
        }
        shellexpand::env_with_context(text, |name: &str| match self.get(name) {
            Some(value) => Ok(Some(value)),
            None => Err(format!("variable `{name}` is not set")),
        })
        .map(|expanded| expanded.into_owned())
        .map_err(|e| e.cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_defaults_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "COPPER_TEST_GREETING=hello\n# a comment\n",
        )
        .unwrap();
        let env = Environment::load(dir.path()).unwrap();
        assert_eq!(
            env.interpolate("${COPPER_TEST_GREETING} world").unwrap(),
            "hello world"
        );
        assert_eq!(
            env.interpolate("${COPPER_TEST_UNSET_VAR:-fallback}")
                .unwrap(),
            "fallback"
        );
        assert_eq!(env.interpolate("cost: $$5").unwrap(), "cost: $5");
        let err = env.interpolate("${COPPER_TEST_UNSET_VAR}").unwrap_err();
        assert!(err.contains("COPPER_TEST_UNSET_VAR"), "{err}");
    }
}
