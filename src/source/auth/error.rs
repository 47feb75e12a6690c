//! Why no token could be had, and what the user should do: Entra ID's AADSTS codes and
//! the metadata service's answers, each with its remedy.

/// Why no token could be obtained.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{service} refused the token request (HTTP {status}, {code}): {description}. {hint}")]
    Rejected {
        /// "Entra ID" or "the instance metadata service".
        service: &'static str,
        status: u16,
        /// `AADSTS…` when Entra ID gave one, else the OAuth error code.
        code: String,
        description: String,
        hint: &'static str,
        /// Whether the service said to come back later (an outage, not a configuration
        /// problem).
        transient: bool,
    },
    #[error("the token endpoint {url} could not be reached: {reason}. {hint}")]
    Unreachable {
        url: String,
        reason: String,
        hint: &'static str,
    },
    #[error("the token endpoint answered HTTP {status} with a body that is not a token response; is {flag} right?")]
    InvalidResponse {
        status: u16,
        /// The flag that sets the endpoint.
        flag: &'static str,
    },
    /// The credential itself could not be used (an unreadable federated token file).
    #[error("{0}")]
    Credential(String),
}

impl AuthError {
    /// Whether trying again later may help (the service was down), as opposed to a
    /// configuration problem the user must fix.
    pub fn is_transient(&self) -> bool {
        match self {
            AuthError::Rejected { transient, .. } => *transient,
            AuthError::Unreachable { .. } => true,
            AuthError::InvalidResponse { status, .. } => *status >= 500,
            AuthError::Credential(_) => false,
        }
    }

    /// The AADSTS code (or OAuth error) of a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            AuthError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

const FEDERATED_HINT: &str = "No federated identity credential matches the service-account token: on the app registration (or user-assigned managed identity) add a federated credential with the cluster's OIDC issuer URL, subject system:serviceaccount:<namespace>:<service account> and audience api://AzureADTokenExchange";

/// What an AADSTS code means and what to do about it.
pub fn aadsts_hint(code: &str) -> &'static str {
    match code {
        "AADSTS7000215" => "The client secret is wrong: use the secret's Value (not its Secret ID) from the app registration's 'Certificates & secrets' page in AZURE_CLIENT_SECRET or --azure.client-secret-file",
        "AADSTS7000222" => "The client secret has expired: create a new one under the app registration's 'Certificates & secrets' and update AZURE_CLIENT_SECRET or --azure.client-secret-file",
        "AADSTS700016" => "No application with this AZURE_CLIENT_ID exists in the tenant: check AZURE_CLIENT_ID (the Application (client) ID) and the tenant id (AZURE_TENANT_ID, or the tenants file's id); for a multi-tenant app registration, the tenant's administrator has not granted admin consent yet: send them https://login.microsoftonline.com/<tenant id>/adminconsent?client_id=<AZURE_CLIENT_ID> (the login host of the tenant's cloud)",
        "AADSTS90002" => "The tenant was not found: check AZURE_TENANT_ID (Directory (tenant) ID) and that --azure.cloud (or --azure.authority-host) names the tenant's cloud",
        "AADSTS900023" => "AZURE_TENANT_ID is not a valid tenant: use the Directory (tenant) ID GUID or the tenant's domain name",
        "AADSTS700027" => "The client assertion's certificate or signature was rejected: upload the certificate (its public part, .cer/.pem) to the app registration under 'Certificates & secrets' → Certificates, and make sure AZURE_CLIENT_CERTIFICATE_PATH holds that certificate with its own private key (`teams-voice-exporter check` shows the thumbprint)",
        "AADSTS700024" => "The client assertion is outside its valid time: the machine's clock is wrong (synchronise it with NTP; `check` shows the skew), or for workload identity the projected service-account token has expired (the kubelet must keep refreshing it)",
        "AADSTS700023" => "The client assertion's audience is not this tenant's token endpoint: --azure.authority-host (AZURE_AUTHORITY_HOST) must be the login host of the tenant's cloud",
        "AADSTS700021" | "AADSTS700022" => "The client assertion's issuer and subject must both be the AZURE_CLIENT_ID that is sent with it",
        "AADSTS50027" => "The client assertion is not a well-formed JWT: for workload identity, AZURE_FEDERATED_TOKEN_FILE must be the projected service-account token",
        "AADSTS70021" | "AADSTS700211" | "AADSTS700212" | "AADSTS700213" => FEDERATED_HINT,
        "AADSTS70011" => "The scope is invalid: --graph.endpoint must be the Graph host of the tenant's cloud (the scope is '<graph endpoint>/.default'); --azure.cloud sets both",
        "AADSTS7000112" => "The application is disabled in this tenant: an administrator must enable it in Enterprise applications",
        "AADSTS53003" => "Conditional Access blocked the sign-in: ask an administrator to exclude this workload identity or allow its location",
        "AADSTS900144" | "AADSTS90014" => "The token request lacked a required field: check AZURE_CLIENT_ID and the credential are set and not empty",
        "AADSTS50034" | "AADSTS500011" => "The resource or principal was not found in the tenant: check --graph.endpoint (or --azure.cloud) and AZURE_TENANT_ID",
        _ => "Check AZURE_TENANT_ID, AZURE_CLIENT_ID and the credential against the app registration; https://login.microsoftonline.com/error?code=<number> explains each AADSTS code",
    }
}

/// What an instance metadata service refusal means.
pub(super) fn imds_hint(description: &str) -> &'static str {
    let description = description.to_ascii_lowercase();
    if description.contains("identity not found") {
        "No managed identity with this client ID is assigned to this VM, scale set or AKS node pool: assign it (Identity → User assigned), or leave AZURE_CLIENT_ID unset to use the system-assigned identity (which must be switched on)"
    } else if description.contains("multiple user assigned") {
        "Several user-assigned identities are assigned: set AZURE_CLIENT_ID to the client ID of the one to use"
    } else {
        "Check that this machine has a managed identity and that AZURE_CLIENT_ID (if set) is the client ID of one assigned to it"
    }
}

pub(super) fn is_aadsts(code: &str) -> bool {
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
