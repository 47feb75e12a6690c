//! Access tokens for Microsoft Graph from Microsoft Entra ID (OAuth 2.0 client credentials).
//!
//! One [`TokenCache`] per tenant hands out a cached token, refreshes it before it expires
//! (whatever lifetime Entra ID grants, from seconds to hours), lets concurrent requests share
//! a single refresh, and drops a token Graph rejected so the next request fetches a new one.
//! Secrets are held in [`SecretString`], whose `Debug` prints `[REDACTED]`, and never appear
//! in errors or logs; errors carry Entra ID's AADSTS code with what it means for the user.

pub mod args;
pub mod certificate;
pub mod credential_source;
mod error;
pub mod jws;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::RwLock;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::metrics::{Endpoint, SourceMetrics};

pub use certificate::ClientCertificate;
pub use error::{aadsts_hint, error_chain, AuthError};

use error::{imds_hint, is_aadsts};

/// `client_assertion_type` of a signed JWT (certificate or federated token).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The Azure Instance Metadata Service's token path and the API version documented for it.
pub const IMDS_TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
pub const IMDS_API_VERSION: &str = "2018-02-01";

/// How the exporter proves its identity to Entra ID.
#[derive(Clone)]
pub enum Credential {
    /// A client secret of the app registration (`AZURE_CLIENT_SECRET` or
    /// `--azure.client-secret-file`).
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: SecretString,
    },
    /// A certificate of the app registration, signing a fresh client assertion for every
    /// token request (`AZURE_CLIENT_CERTIFICATE_PATH`).
    Certificate {
        tenant_id: String,
        client_id: String,
        certificate: Arc<ClientCertificate>,
    },
    /// Azure Workload Identity: a Kubernetes service-account token, projected into a file
    /// that the kubelet rotates, is the client assertion (`AZURE_FEDERATED_TOKEN_FILE`).
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    /// The managed identity of the Azure VM or AKS node, from the instance metadata
    /// service; `client_id` picks a user-assigned identity.
    ManagedIdentity {
        client_id: Option<String>,
        /// `http://169.254.169.254` outside tests.
        endpoint: Url,
    },
}

impl Credential {
    /// The tenant the credential reads: its id, or the managed identity's own.
    pub fn tenant(&self) -> crate::source::Tenant {
        self.tenant_id()
            .map_or(crate::source::Tenant::ManagedIdentityOwn, |id| {
                crate::source::Tenant::Id(id.to_owned())
            })
    }

    /// The tenant the token is requested from; a managed identity's is implicit.
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Credential::ClientSecret { tenant_id, .. }
            | Credential::Certificate { tenant_id, .. }
            | Credential::WorkloadIdentity { tenant_id, .. } => Some(tenant_id),
            Credential::ManagedIdentity { .. } => None,
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            Credential::ClientSecret { client_id, .. }
            | Credential::Certificate { client_id, .. }
            | Credential::WorkloadIdentity { client_id, .. } => Some(client_id),
            Credential::ManagedIdentity { client_id, .. } => client_id.as_deref(),
        }
    }

    /// The kind of credential, for logs and the landing page.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::ClientSecret { .. } => "client secret",
            Credential::Certificate { .. } => "certificate",
            Credential::WorkloadIdentity { .. } => "workload identity",
            Credential::ManagedIdentity {
                client_id: Some(_), ..
            } => "managed identity (user-assigned)",
            Credential::ManagedIdentity { .. } => "managed identity (system-assigned)",
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Credential");
        out.field("kind", &self.kind())
            .field("tenant_id", &self.tenant_id())
            .field("client_id", &self.client_id());
        match self {
            Credential::ClientSecret { .. } => out.field("secret", &"[REDACTED]"),
            Credential::Certificate { certificate, .. } => out.field("certificate", certificate),
            Credential::WorkloadIdentity { token_file, .. } => out.field("token_file", token_file),
            Credential::ManagedIdentity { endpoint, .. } => {
                out.field("endpoint", &endpoint.as_str())
            }
        };
        out.finish()
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

    /// The application permissions (`roles` claim) the token carries, read without
    /// checking its signature (Graph does that): for diagnosis only. `None` when the token
    /// is not a readable JWT.
    pub fn roles(&self) -> Option<Vec<String>> {
        let parsed = jws::Parsed::parse(self.secret.expose_secret()).ok()?;
        Some(match parsed.claims.get("roles") {
            Some(serde_json::Value::Array(roles)) => roles
                .iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        })
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

struct CachedToken {
    token: AccessToken,
    /// When to fetch a new one: well before expiry, so a request never carries a token
    /// that dies on the way.
    refresh_at: Instant,
    expires_at: Instant,
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

/// Tokens for one tenant's Graph, cached and refreshed.
pub struct TokenCache {
    http: reqwest::Client,
    credential: Credential,
    token_url: Url,
    scope: String,
    cached: RwLock<Option<CachedToken>>,
    // Held across the token request so concurrent callers wait for one refresh.
    refresh: tokio::sync::Mutex<()>,
    metrics: SourceMetrics,
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
        metrics: SourceMetrics,
    ) -> Result<Self, url::ParseError> {
        let graph = graph_endpoint.as_str().trim_end_matches('/');
        let (http, token_url) = match &credential {
            Credential::ManagedIdentity {
                client_id,
                endpoint,
            } => {
                let base = endpoint.as_str().trim_end_matches('/');
                let mut url = Url::parse(&format!("{base}{IMDS_TOKEN_PATH}"))?;
                url.query_pairs_mut()
                    .append_pair("api-version", IMDS_API_VERSION)
                    .append_pair("resource", graph);
                if let Some(client_id) = client_id {
                    url.query_pairs_mut().append_pair("client_id", client_id);
                }
                // The metadata service is link-local and must not be reached through a
                // proxy (it refuses forwarded requests); off Azure nothing answers, so
                // give up on connecting quickly.
                let direct = reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap_or(http);
                (direct, url)
            }
            _ => {
                let base = authority_host.as_str().trim_end_matches('/');
                let tenant = credential.tenant_id().unwrap_or_default();
                (
                    http,
                    Url::parse(&format!("{base}/{tenant}/oauth2/v2.0/token"))?,
                )
            }
        };
        Ok(TokenCache {
            http,
            credential,
            token_url,
            scope: format!("{graph}/.default"),
            cached: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            metrics,
        })
    }

    /// Where tokens come from: Entra ID's token endpoint, or the metadata service.
    pub fn token_url(&self) -> &Url {
        &self.token_url
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

    /// The token request for this credential. Assertions are made (or re-read) here, for
    /// every request: a certificate assertion is short-lived and single-use, and a
    /// federated token file is rotated by the kubelet.
    async fn build_request(&self) -> Result<reqwest::RequestBuilder, AuthError> {
        let post = |client_id: &str, proof: &[(&str, &str)]| {
            let mut form = vec![
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
            ];
            form.extend_from_slice(proof);
            form.push(("scope", self.scope.as_str()));
            self.http.post(self.token_url.clone()).form(&form)
        };
        let assertion = match &self.credential {
            Credential::ClientSecret {
                client_id, secret, ..
            } => {
                return Ok(post(
                    client_id,
                    &[("client_secret", secret.expose_secret())],
                ))
            }
            Credential::ManagedIdentity { .. } => {
                return Ok(self
                    .http
                    .get(self.token_url.clone())
                    .header("Metadata", "true"))
            }
            Credential::Certificate {
                client_id,
                certificate,
                ..
            } => certificate
                .assertion(client_id, self.token_url.as_str(), SystemTime::now())
                .map_err(|e| {
                    AuthError::Credential(format!("cannot sign the client assertion: {e}"))
                })?,
            Credential::WorkloadIdentity { token_file, .. } => {
                read_federated_token(token_file).await?
            }
        };
        Ok(post(
            self.credential.client_id().unwrap_or_default(),
            &[
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.expose_secret()),
            ],
        ))
    }

    async fn request(&self) -> Result<CachedToken, AuthError> {
        let started = Instant::now();
        let result = match self.build_request().await {
            Err(error) => Err(error),
            Ok(request) => match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.bytes().await;
                    self.metrics
                        .record_request(Endpoint::Token, &status.to_string(), started);
                    match body {
                        Ok(body) => self.parse(status, &body, started),
                        Err(error) => Err(self.unreachable(error)),
                    }
                }
                Err(error) => {
                    self.metrics
                        .record_request(Endpoint::Token, "error", started);
                    Err(self.unreachable(error))
                }
            },
        };
        let outcome = match &result {
            Ok(_) => "success".to_owned(),
            // AADSTS codes are a bounded, documented set; anything else a proxy might say
            // must not become a label value.
            Err(AuthError::Rejected { code, .. }) if is_aadsts(code) => code.clone(),
            Err(AuthError::Rejected { .. }) => "rejected".to_owned(),
            Err(AuthError::Unreachable { .. }) => "unreachable".to_owned(),
            Err(AuthError::InvalidResponse { .. }) => "invalid_response".to_owned(),
            Err(AuthError::Credential(_)) => "credential_error".to_owned(),
        };
        self.metrics
            .token_refreshes
            .with_label_values(&[&outcome])
            .inc();
        result
    }

    fn invalid_response(&self, status: u16) -> AuthError {
        let flag = match self.credential {
            Credential::ManagedIdentity { .. } => "--azure.managed-identity-endpoint",
            _ => "--azure.authority-host (or --azure.cloud)",
        };
        AuthError::InvalidResponse { status, flag }
    }

    fn unreachable(&self, error: reqwest::Error) -> AuthError {
        let hint = match self.credential {
            Credential::ManagedIdentity { .. } => "Managed identity works only on an Azure VM, scale set or AKS node with an identity assigned; elsewhere choose another --azure.auth (--azure.managed-identity-endpoint overrides the address for tests)",
            _ => "Check network access to the login host (--azure.cloud, --azure.authority-host) and proxies",
        };
        AuthError::Unreachable {
            // Without the query: it is noise here (a managed identity's client id at most).
            url: format!(
                "{}{}",
                self.token_url.origin().ascii_serialization(),
                self.token_url.path()
            ),
            // Without the URL, which is already said (and never the form body).
            reason: error_chain(&error.without_url()),
            hint,
        }
    }

    fn parse(&self, status: u16, body: &[u8], sent_at: Instant) -> Result<CachedToken, AuthError> {
        if (200..300).contains(&status) {
            let response: TokenResponse =
                serde_json::from_slice(body).map_err(|_| self.invalid_response(status))?;
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
            return Err(self.invalid_response(status));
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
        let managed = matches!(self.credential, Credential::ManagedIdentity { .. });
        Err(AuthError::Rejected {
            service: if managed {
                "the instance metadata service"
            } else {
                "Entra ID"
            },
            status,
            hint: if managed && !is_aadsts(&code) {
                imds_hint(&description)
            } else {
                aadsts_hint(&code)
            },
            // The metadata service answers 404 and 410 while it is updating.
            transient: status >= 500 || status == 429 || (managed && matches!(status, 404 | 410)),
            code,
            description,
        })
    }
}

/// The federated token, read afresh: the kubelet replaces the file before it expires.
async fn read_federated_token(path: &std::path::Path) -> Result<SecretString, AuthError> {
    let text = tokio::fs::read_to_string(path).await.map_err(|e| {
        AuthError::Credential(format!(
            "cannot read the federated token file {} (AZURE_FEDERATED_TOKEN_FILE): {e}. Is the pod labelled azure.workload.identity/use: \"true\" and its service account annotated with azure.workload.identity/client-id?",
            path.display()
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(AuthError::Credential(format!(
            "the federated token file {} (AZURE_FEDERATED_TOKEN_FILE) is empty",
            path.display()
        )));
    }
    Ok(SecretString::from(token.to_owned()))
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
