//! The file format, field for field the exporter-toolkit's, and [`compile`], which turns a
//! file into a checked [`WebAccess`] or the first problem found in it.
//!
//! The structs here have no `Debug`: the inline key and the password hashes must not reach
//! a log by accident.

use std::collections::BTreeMap;
use std::path::Path;

use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::access::{RateLimit, WebAccess};
use super::error::{Fail, WebConfigError};
use super::tls::{self, TlsFile};
use super::watch::Watched;

/// The file as written; field names and meanings are the exporter-toolkit's.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    #[serde(default)]
    rate_limit: Option<RateLimitFile>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    interval: Option<String>,
    burst: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The headers the toolkit lets a user add, with the values it accepts (none listed: any),
/// and the lowercase name they are sent under.
const EXTRA_HEADERS: [(&str, &[&str], &str); 5] = [
    (
        "Strict-Transport-Security",
        &[],
        "strict-transport-security",
    ),
    (
        "X-Content-Type-Options",
        &["nosniff"],
        "x-content-type-options",
    ),
    (
        "X-Frame-Options",
        &["deny", "sameorigin"],
        "x-frame-options",
    ),
    ("X-XSS-Protection", &[], "x-xss-protection"),
    ("Content-Security-Policy", &[], "content-security-policy"),
];

/// Reads and checks the file and everything it names, noting each file in `watched` as it
/// was just before it was read.
pub(super) fn compile(path: &Path, watched: &mut Watched) -> Result<WebAccess, WebConfigError> {
    let fail = Fail::new(path.display().to_string());
    let parsed = read(path, &fail, watched)?;
    let rate_limit = parsed
        .rate_limit
        .map(|r| rate_limit(r, &fail))
        .transpose()?
        .flatten();
    let users = users(parsed.basic_auth_users.unwrap_or_default(), &fail)?;
    let http = parsed.http_server_config.unwrap_or_default();
    let headers = headers(http.headers.unwrap_or_default(), &fail)?;
    let http2 = http.http2.unwrap_or(true);

    let tls_file = parsed.tls_server_config.unwrap_or_default();
    // Relative paths are relative to the file, as in the toolkit.
    let dir = path.parent().unwrap_or(Path::new("."));
    let (tls, client_auth) = tls::server_config(&tls_file, dir, http2, &fail, watched)?;
    let client_sans = tls.is_some() && tls_file.client_allowed_sans.is_some_and(|s| !s.is_empty());
    Ok(WebAccess {
        tls,
        client_auth,
        client_sans,
        users,
        headers,
        http2,
        rate_limit,
    })
}

/// The file parsed; an empty file, or one of comments only, configures nothing.
fn read(path: &Path, fail: &Fail, watched: &mut Watched) -> Result<FileFormat, WebConfigError> {
    watched.note(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail.at(
            "(file)",
            format!("cannot read it: {e}; check --web.config.file and the file's permissions"),
        )
    })?;
    let parsed: Option<FileFormat> = serde_norway::from_str(&text).map_err(|e| {
        fail.at(
            "(syntax)",
            format!("{e} (the format is the Prometheus exporter-toolkit's web configuration)"),
        )
    })?;
    Ok(parsed.unwrap_or_default())
}

/// `rate_limit`; `None` when its interval turns it off.
fn rate_limit(r: RateLimitFile, fail: &Fail) -> Result<Option<RateLimit>, WebConfigError> {
    let text = r.interval.unwrap_or_default();
    let interval = match text.trim() {
        "" | "0" => std::time::Duration::ZERO,
        t => humantime::parse_duration(t).map_err(|_| {
            fail.at(
                "rate_limit.interval",
                format!(
                    "'{text}' is not a duration; write e.g. 100ms or 1s (0 turns the limit off)"
                ),
            )
        })?,
    };
    let burst = r.burst.unwrap_or_default();
    if !interval.is_zero() && burst == 0 {
        return Err(fail.at(
            "rate_limit.burst",
            "must be at least 1: with 0 no request would ever be answered",
        ));
    }
    Ok((!interval.is_zero()).then_some(RateLimit { interval, burst }))
}

/// `basic_auth_users`, each hash checked to be bcrypt at a cost bcrypt accepts.
fn users(
    users: BTreeMap<String, String>,
    fail: &Fail,
) -> Result<BTreeMap<String, String>, WebConfigError> {
    for (user, hash) in &users {
        match hash.parse::<bcrypt::HashParts>() {
            Ok(parts) if (4..=31).contains(&parts.get_cost()) => {}
            _ => {
                return Err(fail.at(
                    &format!("basic_auth_users.{user}"),
                    "is not a bcrypt hash; make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'",
                ))
            }
        }
    }
    Ok(users)
}

/// `http_server_config.headers`: only the toolkit's security headers, with the values it
/// accepts; an empty value leaves the header out.
fn headers(
    headers: BTreeMap<String, String>,
    fail: &Fail,
) -> Result<Vec<(HeaderName, HeaderValue)>, WebConfigError> {
    let mut checked = Vec::new();
    for (name, value) in headers {
        let field = format!("http_server_config.headers.{name}");
        let Some((_, allowed, lowercase)) = EXTRA_HEADERS.iter().find(|(h, ..)| *h == name) else {
            let names: Vec<&str> = EXTRA_HEADERS.iter().map(|(h, ..)| *h).collect();
            return Err(fail.at(
                &field,
                format!(
                    "this header cannot be configured; allowed: {}",
                    names.join(", ")
                ),
            ));
        };
        if value.is_empty() {
            continue;
        }
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(fail.at(
                &field,
                format!(
                    "'{value}' is not allowed; use one of: {}",
                    allowed.join(", ")
                ),
            ));
        }
        let value = HeaderValue::from_str(&value)
            .map_err(|_| fail.at(&field, "the value has characters a header cannot carry"))?;
        checked.push((HeaderName::from_static(lowercase), value));
    }
    Ok(checked)
}
