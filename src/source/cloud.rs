//! The Microsoft cloud a source lives in, and the root URLs given on the command line.
//!
//! `--azure.cloud` sets the Graph root and the login host together; `--graph.endpoint`,
//! `--azure.authority-host` and `--azure.managed-identity-endpoint` override them one by
//! one. Every such URL is checked here the same way, so that a typo stops the start with
//! the flag at fault instead of surfacing as an unreachable host at the first poll.

use clap::ValueEnum;
use reqwest::Url;

/// The Microsoft cloud the tenant lives in (`--azure.cloud`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cloud {
    /// Global Azure, GCC included.
    Global,
    /// US Government L4 (GCC High).
    Usgov,
    /// US Government L5 (DoD).
    UsgovDod,
    /// China, operated by 21Vianet.
    China,
}

impl Cloud {
    /// Graph root and login host of the cloud.
    pub fn endpoints(self) -> (&'static str, &'static str) {
        match self {
            Cloud::Global => (
                "https://graph.microsoft.com",
                "https://login.microsoftonline.com",
            ),
            Cloud::Usgov => (
                "https://graph.microsoft.us",
                "https://login.microsoftonline.us",
            ),
            Cloud::UsgovDod => (
                "https://dod-graph.microsoft.us",
                "https://login.microsoftonline.us",
            ),
            Cloud::China => (
                "https://microsoftgraph.chinacloudapi.cn",
                "https://login.chinacloudapi.cn",
            ),
        }
    }
}

/// A root URL flag whose value cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{flag} '{value}' is not a usable URL: {reason}")]
pub struct UrlError {
    /// The flag at fault, e.g. `--graph.endpoint`.
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

/// Parses the root URL `value` of `flag`: http or https, a host, and nothing after the
/// root. Plain http to a remote host is allowed (for test rigs) but warned about.
pub fn root_url(flag: &'static str, value: &str) -> Result<Url, UrlError> {
    let bad = |reason: &str| UrlError {
        flag,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(value.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(bad(
            "use https://HOST (or http://HOST:PORT for local testing)",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "credentials do not belong in the URL; remove the user:password@ part",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
        return Err(bad(
            "give the root URL only, without a path or query (e.g. https://graph.microsoft.com, not .../v1.0)",
        ));
    }
    // The instance metadata service answers plain http on a link-local address that never
    // leaves the host, by design.
    let metadata_service = flag == "--azure.managed-identity-endpoint"
        && matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_link_local());
    if url.scheme() == "http" && !is_loopback(&url) && !metadata_service {
        tracing::warn!(
            flag,
            url = %url,
            "plain http:// to a host that is not loopback: tokens and secrets cross the network unencrypted; use https:// outside local testing"
        );
    }
    Ok(url)
}

/// Tokens from one cloud's login host are refused by another cloud's Graph; overriding
/// one of the two hosts and not the other is an easy mistake.
pub fn warn_on_mixed_clouds(graph: &Url, login: &Url) {
    let clouds = [Cloud::Global, Cloud::Usgov, Cloud::UsgovDod, Cloud::China];
    let host = |url: &str| {
        Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    };
    let of = |url: &Url, pick: fn((&'static str, &'static str)) -> &'static str| -> Vec<Cloud> {
        clouds
            .into_iter()
            .filter(|c| host(pick(c.endpoints())).as_deref() == url.host_str())
            .collect()
    };
    let by_graph = of(graph, |(g, _)| g);
    let by_login = of(login, |(_, l)| l);
    if !by_graph.is_empty()
        && !by_login.is_empty()
        && !by_graph.iter().any(|c| by_login.contains(c))
    {
        tracing::warn!(graph = %graph, login = %login, "--graph.endpoint and --azure.authority-host belong to different clouds: Entra ID will refuse the scope or Graph the token; set --azure.cloud and drop the overrides");
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
