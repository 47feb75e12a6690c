//! What a loaded web configuration decides, in the form the server applies it: the TLS
//! configuration, the client-certificate policy, the users, the extra headers, HTTP/2 and
//! the rate limit. Everything here has been checked; nothing is read from disk any more.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use rustls::ServerConfig;

/// The TLS client-authentication policies, named as in Go's `crypto/tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// The policy named `text` in `client_auth_type`; empty means none.
    pub(super) fn parse(text: &str) -> Option<ClientAuth> {
        Some(match text {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // The toolkit keeps the old name working.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    /// Whether a client certificate, when there is one, must chain to the client CA.
    pub(super) fn verifies(self) -> bool {
        matches!(
            self,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        )
    }
}

/// One loaded, checked web configuration: what every connection and request obeys.
pub struct WebAccess {
    /// `None` serves plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    pub client_auth: ClientAuth,
    /// Whether `client_allowed_sans` narrows the accepted client certificates.
    pub client_sans: bool,
    /// User name → bcrypt hash; empty means no basic authentication.
    pub users: BTreeMap<String, String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub http2: bool,
    pub rate_limit: Option<RateLimit>,
}

/// `rate_limit`: a token bucket over all requests, refilled by one every `interval`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub interval: std::time::Duration,
    pub burst: u32,
}

/// Counts instead of contents: the password hashes must not reach a log by accident.
impl std::fmt::Debug for WebAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebAccess")
            .field("tls", &self.tls.is_some())
            .field("client_auth", &self.client_auth)
            .field("basic_auth_users", &self.users.len())
            .field("headers", &self.headers.len())
            .field("http2", &self.http2)
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

impl WebAccess {
    /// No file given: plain HTTP, no authentication, as before the flag existed.
    pub fn open() -> WebAccess {
        WebAccess {
            tls: None,
            client_auth: ClientAuth::NoClientCert,
            client_sans: false,
            users: BTreeMap::new(),
            headers: Vec::new(),
            http2: true,
            rate_limit: None,
        }
    }
}
