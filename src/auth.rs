//! Access tokens for Microsoft Graph from Microsoft Entra ID (OAuth 2.0 client credentials).
//!
//! One [`TokenCache`] per tenant hands out a cached token, refreshes it before it expires
//! (whatever lifetime Entra ID grants, from seconds to hours), lets concurrent requests share
//! a single refresh, and drops a token Graph rejected so the next request fetches a new one.
//! Secrets are held in [`SecretString`], whose `Debug` prints `[REDACTED]`, and never appear
//! in errors or logs; errors carry Entra ID's AADSTS code with what it means for the user.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::metrics::{ExporterMetrics, TOKEN_ENDPOINT};

/// How the exporter proves its identity to Entra ID.
pub enum Credential {
    /// A client secret of the app registration (`AZURE_CLIENT_SECRET` or
    /// `--azure.client-secret-file`).
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: SecretString,
    },
}

impl Credential {
    pub fn tenant_id(&self) -> &str {
        match self {
            Credential::ClientSecret { tenant_id, .. } => tenant_id,
        }
    }

    /// The kind of credential, for logs and the landing page.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ClientSecret { .. } => "client secret",
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => f
                .debug_struct("ClientSecret")
                .field("tenant_id", tenant_id)
                .field("client_id", client_id)
                .field("secret", &"[REDACTED]")
                .finish(),
        }
    }
}

/// A bearer token for Graph. Its `Debug` never shows the token.
#[derive(Clone)]
pub struct AccessToken {
    secret: Arc<SecretString>,
}

impl AccessToken {
    /// The value of the `Authorization` header.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.secret.expose_secret())
    }

    fn same_as(&self, other: &AccessToken) -> bool {
        Arc::ptr_eq(&self.secret, &other.secret)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken([REDACTED])")
    }
}

/// Why no token could be obtained.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Entra ID refused the token request (HTTP {status}, {code}): {description}. {hint}")]
    Rejected {
        status: u16,
        /// `AADSTS…` when Entra ID gave one, else the OAuth error code.
        code: String,
        description: String,
        hint: &'static str,
    },
    #[error("the token endpoint {url} could not be reached: {reason}. Check network access to the login host (--azure.authority-host) and proxies")]
    Unreachable { url: String, reason: String },
    #[error("the token endpoint answered HTTP {status} with a body that is not a token response; is --azure.authority-host right?")]
    InvalidResponse { status: u16 },
}

impl AuthError {
    /// Whether trying again later may help (the service was down), as opposed to a
    /// configuration problem the user must fix.
    pub fn is_transient(&self) -> bool {
        match self {
            AuthError::Rejected { status, .. } => *status >= 500 || *status == 429,
            AuthError::Unreachable { .. } => true,
            AuthError::InvalidResponse { status } => *status >= 500,
        }
    }
}

/// What an AADSTS code means and what to do about it.
pub fn aadsts_hint(code: &str) -> &'static str {
    match code {
        "AADSTS7000215" => "The client secret is wrong: use the secret's Value (not its Secret ID) from the app registration's 'Certificates & secrets' page in AZURE_CLIENT_SECRET or --azure.client-secret-file",
        "AADSTS7000222" => "The client secret has expired: create a new one under the app registration's 'Certificates & secrets' and update AZURE_CLIENT_SECRET or --azure.client-secret-file",
        "AADSTS700016" => "No application with this AZURE_CLIENT_ID exists in the tenant: check AZURE_CLIENT_ID (the Application (client) ID) and AZURE_TENANT_ID, and that the app is consented in this tenant",
        "AADSTS90002" => "The tenant was not found: check AZURE_TENANT_ID (Directory (tenant) ID) and that --azure.authority-host is the login host of the tenant's cloud",
        "AADSTS900023" => "AZURE_TENANT_ID is not a valid tenant: use the Directory (tenant) ID GUID or the tenant's domain name",
        "AADSTS700027" => "The client assertion was rejected: check the certificate uploaded to the app registration matches the one configured",
        "AADSTS70011" => "The scope is invalid: --graph.endpoint must be the Graph host of the tenant's cloud (the scope is '<graph endpoint>/.default')",
        "AADSTS7000112" => "The application is disabled in this tenant: an administrator must enable it in Enterprise applications",
        "AADSTS53003" => "Conditional Access blocked the sign-in: ask an administrator to exclude this workload identity or allow its location",
        "AADSTS900144" | "AADSTS90014" => "The token request lacked a required field: check AZURE_CLIENT_ID and the secret are set and not empty",
        "AADSTS50034" | "AADSTS500011" => "The resource or principal was not found in the tenant: check --graph.endpoint and AZURE_TENANT_ID",
        _ => "Check AZURE_TENANT_ID, AZURE_CLIENT_ID and the client secret against the app registration; https://login.microsoftonline.com/error?code=<number> explains each AADSTS code",
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct TokenErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
}

struct CachedToken {
    token: AccessToken,
    /// When to fetch a new one: well before expiry, so a request never carries a token
    /// that dies on the way.
    refresh_at: Instant,
    expires_at: Instant,
}

/// Tokens for one tenant's Graph, cached and refreshed.
pub struct TokenCache {
    http: reqwest::Client,
    credential: Credential,
    token_url: Url,
    scope: String,
    cached: RwLock<Option<CachedToken>>,
    // Held across the token request so concurrent callers wait for one refresh.
    refresh: tokio::sync::Mutex<()>,
    metrics: ExporterMetrics,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("credential", &self.credential)
            .field("token_url", &self.token_url.as_str())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// `authority_host` is e.g. `https://login.microsoftonline.com`; `graph_endpoint` the
    /// Graph base URL the scope must name.
    pub fn new(
        http: reqwest::Client,
        credential: Credential,
        authority_host: &Url,
        graph_endpoint: &Url,
        metrics: ExporterMetrics,
    ) -> Result<Self, url::ParseError> {
        let base = authority_host.as_str().trim_end_matches('/');
        let token_url = Url::parse(&format!(
            "{base}/{}/oauth2/v2.0/token",
            credential.tenant_id()
        ))?;
        let scope = format!("{}/.default", graph_endpoint.as_str().trim_end_matches('/'));
        Ok(TokenCache {
            http,
            credential,
            token_url,
            scope,
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            metrics,
        })
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// A token that is not about to expire.
    pub async fn token(&self) -> Result<AccessToken, AuthError> {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let _refreshing = self.refresh.lock().await;
        // Someone else may have refreshed while we waited.
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        match self.request().await {
            Ok(cached) => {
                let token = cached.token.clone();
                *self.cached.write() = Some(cached);
                Ok(token)
            }
            Err(error) => {
                // An early refresh that failed is no reason to stop using a valid token.
                if let Some(cached) = &*self.cached.read() {
                    if error.is_transient() && Instant::now() < cached.expires_at {
                        tracing::warn!(%error, "token refresh failed; using the current token until it expires");
                        return Ok(cached.token.clone());
                    }
                }
                Err(error)
            }
        }
    }

    /// Forgets `token` after Graph rejected it, so the next call fetches a new one. A token
    /// that was already replaced is left alone.
    pub fn invalidate(&self, token: &AccessToken) {
        let mut cached = self.cached.write();
        if cached.as_ref().is_some_and(|c| c.token.same_as(token)) {
            *cached = None;
        }
    }

    fn fresh(&self) -> Option<AccessToken> {
        let cached = self.cached.read();
        let cached = cached.as_ref()?;
        (Instant::now() < cached.refresh_at).then(|| cached.token.clone())
    }

    async fn request(&self) -> Result<CachedToken, AuthError> {
        let Credential::ClientSecret {
            client_id, secret, ..
        } = &self.credential;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id.as_str()),
            ("client_secret", secret.expose_secret()),
            ("scope", self.scope.as_str()),
        ];
        let started = Instant::now();
        let sent = self
            .http
            .post(self.token_url.clone())
            .form(&form)
            .send()
            .await;
        let result = match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await;
                self.metrics
                    .record_request(TOKEN_ENDPOINT, &status.to_string(), started);
                match body {
                    Ok(body) => self.parse(status, &body, started),
                    Err(error) => Err(self.unreachable(&error)),
                }
            }
            Err(error) => {
                self.metrics
                    .record_request(TOKEN_ENDPOINT, "error", started);
                Err(self.unreachable(&error))
            }
        };
        let outcome = match &result {
            Ok(_) => "success".to_owned(),
            // AADSTS codes are a bounded, documented set; anything else a proxy might say
            // must not become a label value.
            Err(AuthError::Rejected { code, .. }) if is_aadsts(code) => code.clone(),
            Err(AuthError::Rejected { .. }) => "rejected".to_owned(),
            Err(AuthError::Unreachable { .. }) => "unreachable".to_owned(),
            Err(AuthError::InvalidResponse { .. }) => "invalid_response".to_owned(),
        };
        self.metrics
            .token_refreshes
            .with_label_values(&[&outcome])
            .inc();
        result
    }

    fn unreachable(&self, error: &reqwest::Error) -> AuthError {
        AuthError::Unreachable {
            url: self.token_url.to_string(),
            // reqwest's message can include the URL but never the form body.
            reason: error_chain(error),
        }
    }

    fn parse(&self, status: u16, body: &[u8], sent_at: Instant) -> Result<CachedToken, AuthError> {
        if (200..300).contains(&status) {
            let response: TokenResponse =
                serde_json::from_slice(body).map_err(|_| AuthError::InvalidResponse { status })?;
            // Entra ID sends a number; some proxies and older endpoints send a string.
            let lifetime = match &response.expires_in {
                Some(serde_json::Value::Number(n)) => n.as_f64(),
                Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(3600.0);
            let lifetime = Duration::from_secs_f64(lifetime.min(86_400.0 * 7.0));
            // Refresh with a margin that fits both 4-second test tokens and 90-minute real
            // ones: half the lifetime, but at most five minutes before expiry.
            let margin = (lifetime / 2).min(Duration::from_secs(300));
            return Ok(CachedToken {
                token: AccessToken {
                    secret: Arc::new(SecretString::from(response.access_token)),
                },
                refresh_at: sent_at + lifetime - margin,
                expires_at: sent_at + lifetime,
            });
        }
        let error: TokenErrorBody = serde_json::from_slice(body).unwrap_or_default();
        if error.error.is_none() && error.error_codes.is_empty() {
            return Err(AuthError::InvalidResponse { status });
        }
        let code = error
            .error_codes
            .first()
            .map(|n| format!("AADSTS{n}"))
            .or_else(|| {
                error.error_description.as_deref().and_then(|d| {
                    d.split(|c: char| !c.is_ascii_alphanumeric())
                        .find(|w| w.starts_with("AADSTS"))
                        .map(str::to_owned)
                })
            })
            .or(error.error.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        // The first line of Entra's description is the useful part; the rest is trace ids.
        let description = error
            .error_description
            .as_deref()
            .and_then(|d| d.lines().next())
            .unwrap_or("no description")
            .trim()
            .to_owned();
        Err(AuthError::Rejected {
            status,
            hint: aadsts_hint(&code),
            code,
            description,
        })
    }
}

fn is_aadsts(code: &str) -> bool {
    code.len() <= 16
        && code
            .strip_prefix("AADSTS")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A reqwest error with its causes, which hold the useful part ("connection refused").
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let credential = Credential::ClientSecret {
            tenant_id: "t".into(),
            client_id: "c".into(),
            secret: SecretString::from("s3cr3t-value".to_owned()),
        };
        let text = format!("{credential:?}");
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert!(text.contains("REDACTED"));
        let token = AccessToken {
            secret: Arc::new(SecretString::from("eyJtoken".to_owned())),
        };
        assert!(!format!("{token:?}").contains("eyJtoken"));
    }

    #[test]
    fn every_known_aadsts_code_has_specific_advice() {
        let generic = aadsts_hint("AADSTS1");
        for code in [
            "AADSTS7000215",
            "AADSTS700016",
            "AADSTS90002",
            "AADSTS700027",
        ] {
            assert_ne!(aadsts_hint(code), generic, "{code}");
        }
    }
}
