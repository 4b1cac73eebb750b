//! The credentials file: the embedded broker's users, their passwords and grants.
//!
//! ```yaml
//! users:
//!   host: {password: 3f0c…, can: [host]}
//!   runner: {password: 9ab1…, can: [runner]}
//!   legacy: {password: 77d2…, can: [serve legacy]}
//! anonymous: []          # grants of clients with no login: loopback only
//! ```
//!
//! Made at first start with random passwords (from the system's random source),
//! in a file only its owner may read; a file others may read is refused.

use super::Grant;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file's name in the cache folder, where a host makes it by default.
pub const FILE_NAME: &str = "credentials.yaml";

/// Why the credentials file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The file cannot be read or written.
    #[error("{}: cannot {what} the credentials file", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// `read` or `write`.
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file says something that is not a credentials file.
    #[error("{}{}: {field}{message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where, when known.
        line: Option<u64>,
        /// The field, with `: ` after it (empty when not known).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Others than its owner may read the file.
    #[error("{}: the credentials file may be read by others (mode {mode:o}); `chmod 600` it", path.display())]
    Readable {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    users: BTreeMap<String, RawUser>,
    #[serde(default)]
    anonymous: Vec<String>,
}

#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    password: String,
    can: Vec<String>,
}

/// A user of the embedded broker.
#[derive(Debug, Clone)]
pub struct User {
    /// The password.
    password: String,
    /// What the user may do.
    pub grants: Vec<Grant>,
}

/// Who may connect to the embedded broker, and as what.
#[derive(Clone, Default)]
pub struct Credentials {
    users: BTreeMap<String, User>,
    anonymous: Vec<Grant>,
}

impl std::fmt::Debug for Credentials {
    /// Names the users and their grants, never a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.users.iter().map(|(name, user)| (name, &user.grants)))
            .finish()
    }
}

impl Credentials {
    /// Reads `path`; when there is none, makes it with a `host` user, a `runner`
    /// user and a user for each of `external` services (`serve <name>`).
    pub fn load_or_create(path: &Path, external: &[String]) -> Result<Self, AccessError> {
        match Self::read(path) {
            Err(AccessError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let mut made = Credentials::default();
                made.add("host", vec![Grant::Host]);
                made.add("runner", vec![Grant::Runner]);
                for service in external {
                    made.add(service, vec![Grant::Serve(service.clone())]);
                }
                match made.write(path) {
                    Ok(()) => Ok(made),
                    // Another process made it first: use theirs.
                    Err(AccessError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        Self::read(path)
                    }
                    Err(error) => Err(error),
                }
            }
            other => other,
        }
    }

    /// Reads the file at `path`, refused when others may read it.
    pub fn read(path: &Path) -> Result<Self, AccessError> {
        let io = |what, source| AccessError::Io {
            path: path.to_path_buf(),
            what,
            source,
        };
        let metadata = std::fs::metadata(path).map_err(|e| io("read", e))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AccessError::Readable {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| io("read", e))?;
        Self::parse(&text, path)
    }

    /// Reads credentials from `text`, the file at `path` (for errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, AccessError> {
        let invalid = |line, field: String, message: String| AccessError::Invalid {
            path: path.to_path_buf(),
            line,
            field,
            message,
        };
        let raw: RawFile =
            serde_saphyr::from_str_with_options(text, crate::workflow::yaml_options()).map_err(
                |e| {
                    let message = crate::workflow::yaml_message(&e);
                    invalid(e.location().map(|l| l.line()), String::new(), message)
                },
            )?;
        let grants = |field: String, texts: &[String]| {
            texts
                .iter()
                .map(|text| text.parse::<Grant>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|why| invalid(None, format!("{field}: "), why))
        };
        let mut users = BTreeMap::new();
        for (name, user) in raw.users {
            // Others' client ids are `<user>:<id>`, and `anonymous:` is for no login.
            if name.is_empty() || name.contains(':') || name == "anonymous" {
                return Err(invalid(
                    None,
                    format!("users.{name}: "),
                    "a user name may not be empty, hold `:` or be `anonymous`".into(),
                ));
            }
            if user.password.len() < 16 {
                return Err(invalid(
                    None,
                    format!("users.{name}.password: "),
                    "a password needs 16 characters at least".into(),
                ));
            }
            let can = grants(format!("users.{name}.can"), &user.can)?;
            users.insert(
                name,
                User {
                    password: user.password,
                    grants: can,
                },
            );
        }
        let anonymous = grants("anonymous".into(), &raw.anonymous)?;
        Ok(Self { users, anonymous })
    }

    /// Writes the file, readable by its owner only, in a folder only its owner may enter
    /// (made so when missing); an existing file is left alone (`AlreadyExists`).
    pub fn write(&self, path: &Path) -> Result<(), AccessError> {
        let io = |source| AccessError::Io {
            path: path.to_path_buf(),
            what: "write",
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::sandbox::private_dir(dir).map_err(io)?;
        }
        let raw = RawFile {
            users: self
                .users
                .iter()
                .map(|(name, user)| {
                    let can = user.grants.iter().map(Grant::to_string).collect();
                    let password = user.password.clone();
                    (name.clone(), RawUser { password, can })
                })
                .collect(),
            anonymous: self.anonymous.iter().map(Grant::to_string).collect(),
        };
        let yaml = serde_saphyr::to_string(&raw).map_err(|e| io(std::io::Error::other(e)))?;
        let text = format!(
            "# Who may connect to copper-wasm's embedded broker, and as what.\n\
             # Grants: host, runner, serve <service> (docs/security.md).\n{yaml}"
        );
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)
    }

    /// Adds a user with a new random password (kept in memory only) and returns the password.
    pub fn add(&mut self, name: &str, grants: Vec<Grant>) -> String {
        let password = random_password();
        let user = User {
            password: password.clone(),
            grants,
        };
        self.users.insert(name.to_string(), user);
        password
    }

    /// The grants of `user` when `password` is theirs.
    pub fn login(&self, user: &str, password: &str) -> Option<&[Grant]> {
        let found = self.users.get(user)?;
        super::same_secret(&found.password, password).then_some(found.grants.as_slice())
    }

    /// What clients with no login may do (nothing, unless the file says so).
    pub fn anonymous(&self) -> &[Grant] {
        &self.anonymous
    }

    /// The login of the first user granted exactly `grant`, for a client of this host;
    /// for `runner`, a `host` user when there is no runner (a host may do what a runner does).
    pub fn login_for(&self, grant: &Grant) -> Option<(String, String)> {
        let granted = |wanted: &Grant| {
            self.users
                .iter()
                .find(|(_, user)| user.grants == [wanted.clone()])
        };
        granted(grant)
            .or_else(|| match grant {
                Grant::Runner => granted(&Grant::Host),
                _ => None,
            })
            .map(|(name, user)| (name.clone(), user.password.clone()))
    }

    /// The users and their grants.
    pub fn users(&self) -> impl Iterator<Item = (&str, &[Grant])> {
        self.users
            .iter()
            .map(|(name, user)| (name.as_str(), user.grants.as_slice()))
    }
}

/// 256 bits from the system's random source, as 64 hex digits.
fn random_password() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_readable_by_its_owner_only_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/credentials.yaml");
        let made = Credentials::load_or_create(&path, &["legacy".into()]).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        let (user, password) = made.login_for(&Grant::Runner).unwrap();
        assert_eq!(user, "runner");
        let again = Credentials::load_or_create(&path, &[]).unwrap();
        assert_eq!(again.login(&user, &password), Some(&[Grant::Runner][..]));
        assert_eq!(again.login(&user, "wrong"), None);
        assert_eq!(
            again.login_for(&Grant::Serve("legacy".into())).unwrap().0,
            "legacy"
        );
        assert!(again.anonymous().is_empty());
        assert!(!format!("{again:?}").contains(&password));
    }

    #[test]
    fn a_file_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.yaml");
        Credentials::load_or_create(&path, &[]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = Credentials::read(&path).unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");
    }

    #[test]
    fn bad_files_name_the_field() {
        let path = Path::new("c.yaml");
        let error = Credentials::parse(
            "users:\n  x: {password: 0123456789abcdef, can: [admin]}\n",
            path,
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("c.yaml: users.x.can: `admin` is not a grant"),
            "{error}"
        );
        let error =
            Credentials::parse("users:\n  x: {password: short, can: [host]}\n", path).unwrap_err();
        assert!(error.to_string().contains("16 characters"), "{error}");
        for name in ["anonymous", "a:b"] {
            let text = format!("users:\n  '{name}': {{password: 0123456789abcdef, can: [host]}}\n");
            let error = Credentials::parse(&text, path).unwrap_err();
            assert!(error.to_string().contains("may not be empty"), "{error}");
        }
        let error = Credentials::parse("users: {}\nanonymus: [runner]\n", path).unwrap_err();
        assert!(error.to_string().starts_with("c.yaml:2"), "{error}");
    }
}
