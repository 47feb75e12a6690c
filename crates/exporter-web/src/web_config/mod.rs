//! `--web.config.file`: TLS, mutual TLS, basic authentication, security headers and a
//! request rate limit for the HTTP interface, in the Prometheus exporter-toolkit's file
//! format, so that one file works for a Rust exporter and for node_exporter alike.
//!
//! The file is checked completely at start, and every problem names the file and the field.
//! Afterwards it is watched, together with the certificate, key and CA files it names: each
//! new TLS connection and each request looks at their metadata (a `stat` each, no reading),
//! and when anything changed the whole file is loaded again. A change that does not load
//! (a key written before its certificate, a typo) is logged and the previous configuration
//! stays in force, so a half-finished rotation never opens the door or stops the scrapes.
//! Whether the listener speaks TLS at all is fixed at start, as in the toolkit.

mod access;
mod error;
mod file;
mod tls;
mod verify;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

pub use access::{ClientAuth, RateLimit, WebAccess};
pub use error::WebConfigError;

use error::Fail;
use watch::Watched;

/// The web configuration file, reloaded when it or a file it names changes.
pub struct WebConfig {
    path: Option<PathBuf>,
    loaded: Mutex<Loaded>,
    /// The bucket's tokens and when they were counted, for the limit they were counted under.
    bucket: Mutex<Option<(RateLimit, f64, Instant)>>,
}

struct Loaded {
    access: Arc<WebAccess>,
    /// The web config file first, then the files it names.
    watched: Watched,
    /// The files of a change that failed to load, as they were then: it is reported once,
    /// and tried again when one of them (a file it names that did not exist, say) changes.
    rejected: Option<Watched>,
}

impl WebConfig {
    /// Loads and checks `path`; `None` means no file: plain HTTP, no authentication.
    pub fn load(path: Option<&Path>) -> Result<WebConfig, WebConfigError> {
        let Some(path) = path else {
            return Ok(WebConfig::new(None, WebAccess::open(), Watched::default()));
        };
        let mut watched = Watched::default();
        let access = file::compile(path, &mut watched)?;
        tracing::info!(
            file = %path.display(),
            tls = access.tls.is_some(),
            client_auth = ?access.client_auth,
            basic_auth_users = access.users.len(),
            "web configuration loaded"
        );
        Ok(WebConfig::new(Some(path.to_owned()), access, watched))
    }

    fn new(path: Option<PathBuf>, access: WebAccess, watched: Watched) -> WebConfig {
        WebConfig {
            path,
            loaded: Mutex::new(Loaded {
                access: Arc::new(access),
                watched,
                rejected: None,
            }),
            bucket: Mutex::new(None),
        }
    }

    /// The configuration in force now, reloaded first if any watched file changed.
    pub fn current(&self) -> Arc<WebAccess> {
        let mut loaded = self.loaded.lock();
        let Some(path) = &self.path else {
            return loaded.access.clone();
        };
        if !loaded.settled() {
            loaded.reload(path);
        }
        loaded.access.clone()
    }

    /// Whether `access`'s rate limit lets one more request through now. A changed limit
    /// starts with a full bucket.
    pub fn admits(&self, access: &WebAccess) -> bool {
        let Some(limit) = access.rate_limit else {
            return true;
        };
        let now = Instant::now();
        let mut bucket = self.bucket.lock();
        let (_, tokens, counted) = match &mut *bucket {
            Some(state) if state.0 == limit => state,
            other => other.insert((limit, f64::from(limit.burst), now)),
        };
        let refill = now.duration_since(*counted).as_secs_f64() / limit.interval.as_secs_f64();
        *tokens = (*tokens + refill).min(f64::from(limit.burst));
        *counted = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the listener speaks TLS (fixed at start).
    pub fn tls(&self) -> bool {
        self.loaded.lock().access.tls.is_some()
    }
}

impl Loaded {
    /// Whether no file changed since the last load, or since the last rejected change.
    fn settled(&self) -> bool {
        self.watched.unchanged() || self.rejected.as_ref().is_some_and(Watched::unchanged)
    }

    /// Loads the changed file, unless it does not load or would weaken access: then the
    /// configuration in force stays, and the change is remembered as rejected.
    fn reload(&mut self, path: &Path) {
        let mut watched = Watched::default();
        let outcome = file::compile(path, &mut watched).and_then(|access| {
            match weakening(&self.access, &access) {
                Some((field, change)) => Err(Fail::new(path.display().to_string()).at(
                    field,
                    format!("{change} needs a restart, so that a file read while half-written never opens access"),
                )),
                None => Ok(access),
            }
        });
        match outcome {
            Ok(access) => {
                tracing::info!(file = %path.display(), "web configuration reloaded");
                self.access = Arc::new(access);
                self.watched = watched;
                self.rejected = None;
            }
            Err(error) => {
                tracing::error!(%error, "the changed web configuration does not load; the previous one stays in force");
                self.rejected = Some(watched);
            }
        }
    }
}

/// The protection that `new` would drop compared with `old`, if any: such a change is
/// refused on reload (a restart applies it), since a file caught half-written (truncated
/// before `basic_auth_users` or `client_auth_type`) looks exactly like one.
fn weakening(old: &WebAccess, new: &WebAccess) -> Option<(&'static str, &'static str)> {
    let verified = |a: &WebAccess| a.client_auth == ClientAuth::RequireAndVerifyClientCert;
    if old.tls.is_some() != new.tls.is_some() {
        Some(("tls_server_config", "switching between TLS and plain HTTP"))
    } else if verified(old) && !verified(new) {
        Some((
            "tls_server_config.client_auth_type",
            "no longer requiring verified client certificates",
        ))
    } else if old.client_sans && !new.client_sans {
        Some((
            "tls_server_config.client_allowed_sans",
            "removing client_allowed_sans",
        ))
    } else if !old.users.is_empty() && new.users.is_empty() {
        Some(("basic_auth_users", "turning basic authentication off"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
