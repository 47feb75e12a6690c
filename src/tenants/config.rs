//! The tenants file (`--config.file`): which customer tenants one exporter reads, the
//! `tenant` label value of each, and the tenants that bring their own app registration.
//!
//! [`TenantsFile::load`] reads and checks the whole file or refuses it with the first
//! problem in file order, as `FILE:LINE: what is wrong; the fix`, so that a reload of a
//! broken file can change nothing. The YAML crate has no positions on values, only on
//! errors; a problem found after parsing (a duplicate, a bad name) is placed by reading the
//! text once more and stopping on purpose at the entry or key in question, whose position
//! the YAML crate then reports. That works for block and flow style alike; should it ever
//! find nothing, the message names the entry's number instead of its line.
//!
//! Credential files are only named here, never read: they rotate, and are read when a
//! token is requested. No message quotes anything but ids, names and paths.
//!
//! Tenant ids are case-insensitive in Entra ID; they are kept lower-cased, so that
//! comparisons, the shard hash, state file names and token URLs all see one spelling.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeSeed;
use serde::{Deserialize, Deserializer};

mod probe;
use probe::FileProbe;

/// Longest `name` accepted, in characters: a label value that long is already unwieldy on
/// a dashboard.
pub const MAX_NAME_CHARS: usize = 128;

/// A checked tenants file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantsFile {
    /// In file order; possibly empty.
    pub tenants: Vec<TenantEntry>,
}

/// One tenant of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantEntry {
    /// The tenant GUID or verified domain, lower-cased (ids are case-insensitive).
    pub id: String,
    /// The `tenant` label value: a valid label value, unique in the file; the id when the
    /// file gives none.
    pub name: String,
    /// The tenant's own app registration; `None` reads it with the exporter's credential
    /// (the multi-tenant application's).
    pub credential: Option<TenantCredential>,
}

/// A tenant's own app registration and where its secret is. Paths are absolute or
/// relative to the working directory (a relative path in the file is taken relative to
/// the file's directory); the files are read when a token is requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantCredential {
    /// `client_secret_file`: a file holding the client secret.
    Secret {
        client_id: String,
        secret_file: PathBuf,
    },
    /// `client_certificate_file`: a PEM file with the certificate and its key (as
    /// `--azure.client-certificate-path`), or a PKCS#12 file whose password is in
    /// `client_certificate_password_file`.
    Certificate {
        client_id: String,
        certificate_file: PathBuf,
        password_file: Option<PathBuf>,
    },
    /// `federated_token_file`: a file holding a federated (workload identity) token.
    FederatedToken {
        client_id: String,
        token_file: PathBuf,
    },
}

impl TenantCredential {
    /// The application (client) ID.
    pub fn client_id(&self) -> &str {
        match self {
            TenantCredential::Secret { client_id, .. }
            | TenantCredential::Certificate { client_id, .. }
            | TenantCredential::FederatedToken { client_id, .. } => client_id,
        }
    }
}

/// Why a tenants file was refused, and where.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {problem}")]
pub struct TenantsFileError {
    pub place: Place,
    pub problem: Problem,
}

/// The file, and the line in it (or the entry, when no line was found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The path as given.
    pub file: String,
    pub at: At,
}

/// Where in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The file as a whole.
    File,
    /// A line, from 1.
    Line(usize),
    /// An entry of `tenants:`, from 1.
    Entry(usize),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            At::File => write!(f, "{}", self.file),
            At::Line(line) => write!(f, "{}:{line}", self.file),
            At::Entry(entry) => write!(f, "{}: tenants entry {entry}", self.file),
        }
    }
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::File => f.write_str("the file"),
            At::Line(line) => write!(f, "line {line}"),
            At::Entry(entry) => write!(f, "entry {entry}"),
        }
    }
}

/// What is wrong, with the fix.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read it: {reason}; check --config.file and the file's permissions")]
    Unreadable { reason: String },
    /// Not YAML, an unknown key (the YAML crate's message names it and the allowed ones), a
    /// missing `id`, a value of the wrong type.
    #[error("{detail}; {FORMAT}")]
    Format { detail: String },
    #[error("there is no `tenants:` list; {FORMAT}, for example:\n{EXAMPLE}")]
    NoTenantsList,
    #[error("tenant id '{id}' is neither a tenant GUID nor a domain name; write the tenant's directory (tenant) ID, such as 6f1e0000-0000-0000-0000-000000000001, or a verified domain, such as contoso.onmicrosoft.com")]
    InvalidId { id: String },
    #[error("tenant name {name:?} is not a valid label value: it {reason}; give `name` a value of 1 to {MAX_NAME_CHARS} characters without control characters or white space at either end")]
    InvalidName { name: String, reason: &'static str },
    #[error("tenant id {id} is listed twice (first at {first}); list each tenant once")]
    DuplicateId { id: String, first: At },
    #[error("tenant name {name:?} is given twice (first at {first}); each tenant needs a name of its own, as it is the `tenant` label value")]
    DuplicateName { name: String, first: At },
    #[error("`client_id` {client_id:?} is not an application (client) ID: it {reason}; copy the ID from the app registration's overview")]
    InvalidClientId {
        client_id: String,
        reason: &'static str,
    },
    #[error("`{key}` needs `client_id`, the application (client) ID of the tenant's own app registration; add it, or remove `{key}` to read the tenant with the exporter's own credential")]
    CredentialWithoutClientId { key: &'static str },
    #[error("`client_id` needs one of `client_secret_file`, `client_certificate_file` or `federated_token_file`; add the one of the tenant's app registration, or remove `client_id` to read the tenant with the exporter's own credential")]
    ClientIdWithoutCredential,
    #[error(
        "`{first}` and `{second}` are both given; a tenant has one credential, so keep one of them"
    )]
    TwoCredentials {
        first: &'static str,
        second: &'static str,
    },
    #[error("`client_certificate_password_file` is the password of a PKCS#12 `client_certificate_file`; add that file, or remove the password file")]
    PasswordWithoutCertificate,
    #[error("`{key}` is empty; give the file's path")]
    EmptyPath { key: &'static str },
}

const FORMAT: &str = "the file is a `tenants:` list whose entries have `id` and optionally `name`, `client_id` with one of `client_secret_file`, `client_certificate_file` (and `client_certificate_password_file`) or `federated_token_file`";

const EXAMPLE: &str = "tenants:
  - id: 6f1e0000-0000-0000-0000-000000000001
    name: contoso
  - id: fabrikam.onmicrosoft.com
    name: fabrikam
    client_id: 11111111-1111-1111-1111-111111111111
    client_secret_file: /etc/tve/fabrikam/secret";

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with the key `tenants`")]
struct FileFormat {
    /// `None` when the key is missing; `tenants:` with nothing under it (every entry
    /// commented out) is an empty list.
    #[serde(default, deserialize_with = "list_or_null")]
    tenants: Option<Vec<EntryFormat>>,
}

fn list_or_null<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<EntryFormat>>, D::Error> {
    Ok(Some(
        Option::<Vec<EntryFormat>>::deserialize(deserializer)?.unwrap_or_default(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a tenant: a mapping with `id`")]
struct EntryFormat {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret_file: Option<PathBuf>,
    #[serde(default)]
    client_certificate_file: Option<PathBuf>,
    #[serde(default)]
    client_certificate_password_file: Option<PathBuf>,
    #[serde(default)]
    federated_token_file: Option<PathBuf>,
}

impl TenantsFile {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<TenantsFile, TenantsFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| TenantsFileError {
            place: Place {
                file: path.display().to_string(),
                at: At::File,
            },
            problem: Problem::Unreadable {
                reason: e.to_string(),
            },
        })?;
        TenantsFile::parse(&text, path)
    }

    /// Checks `text`, the content of the file at `path` (which names the file in errors
    /// and is the base of relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<TenantsFile, TenantsFileError> {
        let file = File { text, path };
        let parsed: Option<FileFormat> =
            serde_norway::from_str(text).map_err(|e| file.yaml_error(&e))?;
        let entries = parsed
            .and_then(|p| p.tenants)
            .ok_or_else(|| file.error(At::File, Problem::NoTenantsList))?;

        let mut tenants = Vec::with_capacity(entries.len());
        let mut ids: HashMap<String, usize> = HashMap::new();
        let mut names: HashMap<String, usize> = HashMap::new();
        for (index, entry) in entries.into_iter().enumerate() {
            let tenant = file.entry(index, entry)?;
            if let Some(&first) = ids.get(&tenant.id) {
                return Err(file.error(
                    file.entry_at(index),
                    Problem::DuplicateId {
                        id: tenant.id,
                        first: file.entry_at(first),
                    },
                ));
            }
            if let Some(&first) = names.get(&tenant.name) {
                return Err(file.error(
                    file.field_at(index, "name"),
                    Problem::DuplicateName {
                        name: tenant.name,
                        first: file.field_at(first, "name"),
                    },
                ));
            }
            ids.insert(tenant.id.clone(), index);
            names.insert(tenant.name.clone(), index);
            tenants.push(tenant);
        }
        Ok(TenantsFile { tenants })
    }
}

/// The file being checked: its text, to place problems, and its path.
struct File<'a> {
    text: &'a str,
    path: &'a Path,
}

impl File<'_> {
    fn error(&self, at: At, problem: Problem) -> TenantsFileError {
        TenantsFileError {
            place: Place {
                file: self.path.display().to_string(),
                at,
            },
            problem,
        }
    }

    /// The YAML crate's error, its position moved from the end of the message to the front.
    fn yaml_error(&self, error: &serde_norway::Error) -> TenantsFileError {
        let text = error.to_string();
        let (at, detail) = match error.location() {
            Some(location) => {
                let mark = format!(" at line {} column {}", location.line(), location.column());
                (At::Line(location.line()), text.replacen(&mark, "", 1))
            }
            None => (At::File, text),
        };
        self.error(at, Problem::Format { detail })
    }

    /// The line of entry `index` (from 0).
    fn entry_at(&self, index: usize) -> At {
        self.locate(index, None)
    }

    /// The line of `key` in entry `index`, or the entry's when the key is not written.
    fn field_at(&self, index: usize, key: &'static str) -> At {
        self.locate(index, Some(key))
    }

    fn locate(&self, index: usize, key: Option<&'static str>) -> At {
        let found = (|| {
            let deserializer = serde_norway::Deserializer::from_str(self.text);
            let error = FileProbe { index, key }.deserialize(deserializer).err()?;
            Some(At::Line(error.location()?.line()))
        })();
        match (found, key) {
            (Some(at), _) => at,
            (None, Some(_)) => self.locate(index, None),
            (None, None) => At::Entry(index + 1),
        }
    }

    /// Checks one entry (`index` from 0) on its own.
    fn entry(&self, index: usize, entry: EntryFormat) -> Result<TenantEntry, TenantsFileError> {
        let credential = self.credential(index, &entry)?;
        let id = entry.id.to_ascii_lowercase();
        if !is_guid(&id) && !is_domain(&id) {
            return Err(self.error(
                self.field_at(index, "id"),
                Problem::InvalidId { id: entry.id },
            ));
        }
        let name = match entry.name {
            Some(name) => {
                if let Some(reason) = label_value_problem(&name) {
                    return Err(self.error(
                        self.field_at(index, "name"),
                        Problem::InvalidName { name, reason },
                    ));
                }
                name
            }
            None => id.clone(),
        };
        Ok(TenantEntry {
            id,
            name,
            credential,
        })
    }

    fn credential(
        &self,
        index: usize,
        entry: &EntryFormat,
    ) -> Result<Option<TenantCredential>, TenantsFileError> {
        let files = [
            ("client_secret_file", &entry.client_secret_file),
            ("client_certificate_file", &entry.client_certificate_file),
            ("federated_token_file", &entry.federated_token_file),
            (
                "client_certificate_password_file",
                &entry.client_certificate_password_file,
            ),
        ];
        for (key, file) in files {
            if file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
                return Err(self.error(self.field_at(index, key), Problem::EmptyPath { key }));
            }
        }
        let given: Vec<&'static str> = files[..3]
            .iter()
            .filter(|(_, file)| file.is_some())
            .map(|(key, _)| *key)
            .collect();
        if let [first, second, ..] = given[..] {
            return Err(self.error(
                self.field_at(index, second),
                Problem::TwoCredentials { first, second },
            ));
        }
        if entry.client_certificate_password_file.is_some()
            && entry.client_certificate_file.is_none()
        {
            return Err(self.error(
                self.field_at(index, "client_certificate_password_file"),
                Problem::PasswordWithoutCertificate,
            ));
        }
        let Some(client_id) = entry.client_id.clone() else {
            return match given.first() {
                Some(&key) => Err(self.error(
                    self.field_at(index, key),
                    Problem::CredentialWithoutClientId { key },
                )),
                None => Ok(None),
            };
        };
        if let Some(reason) = client_id_problem(&client_id) {
            return Err(self.error(
                self.field_at(index, "client_id"),
                Problem::InvalidClientId { client_id, reason },
            ));
        }
        // Relative to the tenants file, so that the file and what it names move together.
        let dir = self.path.parent().unwrap_or(Path::new(""));
        let resolve = |file: &Option<PathBuf>| file.as_ref().map(|f| dir.join(f));
        let credential = if let Some(secret_file) = resolve(&entry.client_secret_file) {
            TenantCredential::Secret {
                client_id,
                secret_file,
            }
        } else if let Some(certificate_file) = resolve(&entry.client_certificate_file) {
            TenantCredential::Certificate {
                client_id,
                certificate_file,
                password_file: resolve(&entry.client_certificate_password_file),
            }
        } else if let Some(token_file) = resolve(&entry.federated_token_file) {
            TenantCredential::FederatedToken {
                client_id,
                token_file,
            }
        } else {
            return Err(self.error(
                self.field_at(index, "client_id"),
                Problem::ClientIdWithoutCredential,
            ));
        };
        Ok(Some(credential))
    }
}

/// `8-4-4-4-12` hexadecimal digits.
fn is_guid(id: &str) -> bool {
    id.len() == 36
        && id.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A domain name of at least two labels, as a verified domain is (an id without a dot,
/// such as `common` or `contoso`, names no single tenant).
fn is_domain(id: &str) -> bool {
    id.len() <= 253
        && id.contains('.')
        && id.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Why `name` cannot be a `tenant` label value, if it cannot.
pub fn label_value_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some("is longer than 128 characters")
    } else if name.chars().any(char::is_control) {
        Some("has a control character")
    } else if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        Some("begins or ends with white space")
    } else {
        None
    }
}

/// Why `client_id` cannot be an application ID, if it cannot. Only what would break a
/// token request is refused: the simulator's and test apps' ids need not be GUIDs.
fn client_id_problem(client_id: &str) -> Option<&'static str> {
    if client_id.is_empty() {
        Some("is empty")
    } else if client_id
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        Some("has white space or control characters")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TenantsFile, TenantsFileError> {
        TenantsFile::parse(text, Path::new("/etc/tve/tenants.yml"))
    }

    fn refused(text: &str) -> TenantsFileError {
        match parse(text) {
            Ok(file) => panic!("accepted: {file:?}"),
            Err(error) => error,
        }
    }

    #[test]
    fn a_valid_file_gives_each_tenant_with_its_defaults() {
        let file = parse(
            "# the provider's customers
tenants:
  - id: 6F1E0000-0000-0000-0000-000000000001
    name: contoso
  - id: Fabrikam.onmicrosoft.com
    client_id: 11111111-1111-1111-1111-111111111111
    client_secret_file: fabrikam/secret
  - id: 0b7c0000-0000-0000-0000-000000000002
    name: northwind
    client_id: app-2
    client_certificate_file: /etc/tve/northwind/cert.pfx
    client_certificate_password_file: northwind/password
  - id: tailspin.example.com
    name: Tailspin Toys (EU)
    client_id: app-3
    federated_token_file: /var/run/secrets/tailspin/token
",
        )
        .unwrap();
        assert_eq!(
            file.tenants,
            vec![
                TenantEntry {
                    id: "6f1e0000-0000-0000-0000-000000000001".into(),
                    name: "contoso".into(),
                    credential: None,
                },
                TenantEntry {
                    id: "fabrikam.onmicrosoft.com".into(),
                    name: "fabrikam.onmicrosoft.com".into(),
                    credential: Some(TenantCredential::Secret {
                        client_id: "11111111-1111-1111-1111-111111111111".into(),
                        secret_file: "/etc/tve/fabrikam/secret".into(),
                    }),
                },
                TenantEntry {
                    id: "0b7c0000-0000-0000-0000-000000000002".into(),
                    name: "northwind".into(),
                    credential: Some(TenantCredential::Certificate {
                        client_id: "app-2".into(),
                        certificate_file: "/etc/tve/northwind/cert.pfx".into(),
                        password_file: Some("/etc/tve/northwind/password".into()),
                    }),
                },
                TenantEntry {
                    id: "tailspin.example.com".into(),
                    name: "Tailspin Toys (EU)".into(),
                    credential: Some(TenantCredential::FederatedToken {
                        client_id: "app-3".into(),
                        token_file: "/var/run/secrets/tailspin/token".into(),
                    }),
                },
            ]
        );
        assert_eq!(
            file.tenants[1].credential.as_ref().unwrap().client_id(),
            "11111111-1111-1111-1111-111111111111"
        );
    }

    #[test]
    fn relative_paths_are_taken_from_the_files_directory() {
        let text = "tenants:
  - id: fabrikam.onmicrosoft.com
    client_id: app
    client_secret_file: ../secrets/fabrikam
";
        let in_dir = TenantsFile::parse(text, Path::new("/etc/tve/tenants.yml")).unwrap();
        let in_cwd = TenantsFile::parse(text, Path::new("tenants.yml")).unwrap();
        let secret = |file: &TenantsFile| match &file.tenants[0].credential {
            Some(TenantCredential::Secret { secret_file, .. }) => secret_file.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            secret(&in_dir),
            PathBuf::from("/etc/tve/../secrets/fabrikam")
        );
        assert_eq!(secret(&in_cwd), PathBuf::from("../secrets/fabrikam"));
    }

    #[test]
    fn an_empty_list_is_valid_and_a_missing_one_is_not() {
        assert!(parse("tenants: []\n").unwrap().tenants.is_empty());
        assert!(parse("tenants:\n  # - id: contoso.example.com\n")
            .unwrap()
            .tenants
            .is_empty());
        for text in ["", "# nothing yet\n"] {
            let error = refused(text);
            assert!(matches!(error.problem, Problem::NoTenantsList), "{error}");
            let message = error.to_string();
            assert!(
                message.starts_with("/etc/tve/tenants.yml: there is no `tenants:` list"),
                "{message}"
            );
            assert!(
                message.contains("  - id: 6f1e0000-0000-0000-0000-000000000001"),
                "{message}"
            );
        }
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line_and_the_keys_allowed() {
        let error = refused(
            "tenants:
  - id: contoso.example.com
    nmae: contoso
",
        );
        let message = error.to_string();
        assert_eq!(error.place.at, At::Line(3), "{message}");
        assert!(message.starts_with("/etc/tve/tenants.yml:3: "), "{message}");
        assert!(message.contains("unknown field `nmae`"), "{message}");
        assert!(message.contains("`client_secret_file`"), "{message}");
        assert!(!message.contains("column"), "{message}");

        let error = refused("[contoso.example.com]");
        assert!(
            error
                .to_string()
                .contains("expected a mapping with the key `tenants`"),
            "{error}"
        );
        let error = refused("tenants: [contoso.example.com]");
        assert!(
            error
                .to_string()
                .contains("expected a tenant: a mapping with `id`"),
            "{error}"
        );

        let error = refused("tenant:\n  - id: contoso.example.com\n");
        assert_eq!(error.place.at, At::Line(1));
        assert!(
            error
                .to_string()
                .contains("unknown field `tenant`, expected `tenants`"),
            "{error}"
        );
    }

    #[test]
    fn yaml_that_does_not_parse_is_placed_on_its_line() {
        let error = refused("tenants:\n  - id: a.example.com\n  name: [\n");
        assert!(matches!(error.problem, Problem::Format { .. }), "{error}");
        assert!(matches!(error.place.at, At::Line(_)), "{error}");
        let error = refused("tenants:\n  - name: contoso\n");
        assert_eq!(error.place.at, At::Line(2), "{error}");
        assert!(error.to_string().contains("missing field `id`"), "{error}");
    }

    #[test]
    fn ids_must_be_guids_or_domains_and_are_compared_without_case() {
        for bad in [
            "contoso",
            "common",
            "6f1e0000-0000-0000-0000-00000000000g",
            "a..b",
            "-a.b",
            "a b.c",
        ] {
            let error = refused(&format!(
                "tenants:\n  - id: x.example.com\n  - id: '{bad}'\n"
            ));
            assert!(
                matches!(error.problem, Problem::InvalidId { .. }),
                "{bad}: {error}"
            );
            assert_eq!(error.place.at, At::Line(3), "{bad}: {error}");
        }
        let error = refused(
            "tenants:
  - id: 6f1e0000-0000-0000-0000-00000000000a
    name: contoso

  - id: fabrikam.onmicrosoft.com
  - id: 6F1E0000-0000-0000-0000-00000000000A
    name: contoso-again
",
        );
        assert_eq!(
            error.to_string(),
            "/etc/tve/tenants.yml:6: tenant id 6f1e0000-0000-0000-0000-00000000000a is listed twice (first at line 2); list each tenant once"
        );
    }

    #[test]
    fn names_must_be_valid_label_values_and_unique() {
        let long = "x".repeat(129);
        for (bad, reason) in [
            ("''", "is empty"),
            (long.as_str(), "is longer than 128 characters"),
            ("\"tab\\there\"", "has a control character"),
            ("' contoso'", "begins or ends with white space"),
        ] {
            let error = refused(&format!(
                "tenants:\n  - id: x.example.com\n    name: {bad}\n"
            ));
            match &error.problem {
                Problem::InvalidName { reason: got, .. } => assert_eq!(*got, reason),
                _ => panic!("{bad}: {error}"),
            }
            assert_eq!(error.place.at, At::Line(3), "{error}");
        }
        assert!(parse(&format!(
            "tenants:\n  - id: x.example.com\n    name: {}\n",
            "é".repeat(128)
        ))
        .is_ok());

        let error = refused(
            "tenants:
  - id: a.example.com
    name: contoso
  - id: b.example.com
    name: contoso
",
        );
        assert_eq!(
            error.to_string(),
            "/etc/tve/tenants.yml:5: tenant name \"contoso\" is given twice (first at line 3); each tenant needs a name of its own, as it is the `tenant` label value"
        );
        // A default name (the id) clashes with a name given to another tenant.
        let error = refused(
            "tenants:
  - id: b.example.com
  - id: a.example.com
    name: b.example.com
",
        );
        assert!(
            matches!(
                error.problem,
                Problem::DuplicateName {
                    first: At::Line(2),
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(error.place.at, At::Line(4));
    }

    #[test]
    fn a_credential_is_a_client_id_with_exactly_one_file() {
        type Expected = fn(&Problem) -> bool;
        let cases: [(&str, Expected, usize); 6] = [
            (
                "    client_secret_file: /s\n",
                |p| matches!(p, Problem::CredentialWithoutClientId { key: "client_secret_file" }),
                3,
            ),
            (
                "    client_id: app\n",
                |p| matches!(p, Problem::ClientIdWithoutCredential),
                3,
            ),
            (
                "    client_id: app\n    client_secret_file: /s\n    federated_token_file: /t\n",
                |p| matches!(p, Problem::TwoCredentials { first: "client_secret_file", second: "federated_token_file" }),
                5,
            ),
            (
                "    client_id: app\n    client_secret_file: /s\n    client_certificate_password_file: /p\n",
                |p| matches!(p, Problem::PasswordWithoutCertificate),
                5,
            ),
            (
                "    client_id: 'app 1'\n    client_secret_file: /s\n",
                |p| matches!(p, Problem::InvalidClientId { .. }),
                3,
            ),
            (
                "    client_id: app\n    client_secret_file: ''\n",
                |p| matches!(p, Problem::EmptyPath { key: "client_secret_file" }),
                4,
            ),
        ];
        for (keys, expected, line) in cases {
            let text = format!("tenants:\n  - id: x.example.com\n{keys}");
            let error = refused(&text);
            assert!(expected(&error.problem), "{keys}: {error}");
            assert_eq!(error.place.at, At::Line(line), "{keys}: {error}");
        }
    }

    #[test]
    fn flow_style_is_read_and_placed_too() {
        let file = parse("tenants: [{id: a.example.com, name: a}, {id: b.example.com}]").unwrap();
        assert_eq!(file.tenants.len(), 2);
        assert_eq!(file.tenants[1].name, "b.example.com");

        let error = refused("tenants: [\n  {id: a.example.com},\n  {id: b.example.com},\n  {id: A.example.com}\n]\n");
        assert_eq!(
            error.to_string(),
            "/etc/tve/tenants.yml:4: tenant id a.example.com is listed twice (first at line 2); list each tenant once"
        );
        // All on one line: the line is the same for both, and still right.
        let error = refused("tenants: [{id: a.example.com}, {id: a.example.com}]");
        assert!(
            matches!(
                error.problem,
                Problem::DuplicateId {
                    first: At::Line(1),
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(error.place.at, At::Line(1));
    }

    #[test]
    fn an_entry_that_cannot_be_placed_is_named_by_its_number() {
        let file = File {
            text: "tenants: []",
            path: Path::new("t.yml"),
        };
        assert_eq!(file.entry_at(3), At::Entry(4));
        assert_eq!(file.field_at(0, "name"), At::Entry(1));
        assert_eq!(
            file.error(At::Entry(4), Problem::ClientIdWithoutCredential)
                .to_string()
                .split(": ")
                .take(2)
                .collect::<Vec<_>>(),
            ["t.yml", "tenants entry 4"]
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_says_so() {
        let error = TenantsFile::load(Path::new("/nonexistent/tenants.yml")).unwrap_err();
        assert!(matches!(error.problem, Problem::Unreadable { .. }));
        assert!(
            error
                .to_string()
                .starts_with("/nonexistent/tenants.yml: cannot read it: "),
            "{error}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants.yml");
        std::fs::write(
            &path,
            "tenants:\n  - id: a.example.com\n    client_id: app\n    client_secret_file: secret\n",
        )
        .unwrap();
        let file = TenantsFile::load(&path).unwrap();
        assert_eq!(
            file.tenants[0].credential,
            Some(TenantCredential::Secret {
                client_id: "app".into(),
                secret_file: dir.path().join("secret"),
            })
        );
    }
}
