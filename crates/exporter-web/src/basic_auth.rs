//! HTTP basic authentication against the bcrypt hashes of `basic_auth_users`.
//!
//! bcrypt costs tens of milliseconds by design, too much to pay on every scrape, so a
//! credential that verified is remembered, as the exporter-toolkit does. What is remembered
//! is an HMAC (under a key made at start) of the user, the configured hash and the password:
//! no password is kept, a wrong password never matches, and a changed hash in a reloaded
//! file no longer matches either. Failures are not remembered. Unknown users are checked
//! against a decoy hash of the same cost, so timing does not tell which users exist, and
//! checks run one at a time on the blocking pool, so guessing cannot take every core.

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine as _;
use hyper::header::HeaderValue;
use parking_lot::Mutex;
use ring::hmac;

use crate::web_config::WebAccess;

/// Remembered successes; beyond this many the memory is cleared and rebuilt by use.
const CACHE_LIMIT: usize = 1024;

/// Checks basic-auth credentials, remembering the ones that verified.
pub struct BasicAuth {
    key: hmac::Key,
    verified: Mutex<HashSet<Vec<u8>>>,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// Decoy hashes by cost, made on first need (on the blocking pool: it takes a while).
    decoys: Arc<Mutex<Vec<(u32, String)>>>,
}

impl Default for BasicAuth {
    fn default() -> Self {
        let mut secret = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut secret[..]);
        BasicAuth {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            verified: Mutex::new(HashSet::new()),
            one_at_a_time: tokio::sync::Mutex::new(()),
            decoys: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl BasicAuth {
    /// Whether `authorization` (the request's header) names a configured user with the right
    /// password. Always true when no users are configured.
    pub async fn allows(&self, access: &WebAccess, authorization: Option<&HeaderValue>) -> bool {
        if access.users.is_empty() {
            return true;
        }
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let hash = access.users.get(&user).cloned();
        let known = hash.is_some();
        let tag = self.tag(&user, hash.as_deref().unwrap_or_default(), &password);
        if known && self.verified.lock().contains(&tag) {
            return true;
        }
        let _turn = self.one_at_a_time.lock().await;
        // Another request may have verified the same credentials while this one waited.
        if known && self.verified.lock().contains(&tag) {
            return true;
        }
        let decoy_cost = max_cost(access);
        let decoys = self.decoys.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let hash = hash.unwrap_or_else(|| decoy(&decoys, decoy_cost));
            bcrypt::verify(password, &hash)
        })
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(false);
        if ok && known {
            let mut verified = self.verified.lock();
            if verified.len() >= CACHE_LIMIT {
                verified.clear();
            }
            verified.insert(tag);
            return true;
        }
        if !known {
            // The name is not logged: a user who swapped the fields would log the password.
            tracing::debug!("basic authentication for a user that is not configured");
        }
        false
    }

    /// What is remembered of a verified credential.
    fn tag(&self, user: &str, hash: &str, password: &str) -> Vec<u8> {
        let mut tag = hmac::Context::with_key(&self.key);
        for part in [user, hash, password] {
            // Length-prefixed, so that moving a character from one part to the next
            // (`ab` + `c`, `a` + `bc`) gives another tag.
            tag.update(&(part.len() as u64).to_be_bytes());
            tag.update(part.as_bytes());
        }
        tag.sign().as_ref().to_vec()
    }
}

/// The highest cost among the configured hashes, so a decoy takes as long as a real check.
fn max_cost(access: &WebAccess) -> u32 {
    access
        .users
        .values()
        .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
        .map(|p| p.get_cost())
        .max()
        .unwrap_or(bcrypt::DEFAULT_COST)
}

/// A hash of a password nobody knows, at `cost`.
fn decoy(decoys: &Mutex<Vec<(u32, String)>>, cost: u32) -> String {
    let mut decoys = decoys.lock();
    if let Some((_, hash)) = decoys.iter().find(|(c, _)| *c == cost) {
        return hash.clone();
    }
    // Only an invalid cost fails, and configured costs were checked at load.
    let hash = bcrypt::hash("decoy password that no user has", cost).unwrap_or_default();
    decoys.push((cost, hash.clone()));
    hash
}

/// `Basic base64(user:password)`; the scheme name is case-insensitive (RFC 7617).
fn parse_basic(header: &HeaderValue) -> Option<(String, String)> {
    let text = header.to_str().ok()?;
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(users: &[(&str, &str)]) -> WebAccess {
        let mut access = WebAccess::open();
        for (user, password) in users {
            access
                .users
                .insert((*user).to_owned(), bcrypt::hash(password, 4).unwrap());
        }
        access
    }

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    #[tokio::test]
    async fn only_the_right_password_passes_even_after_the_right_one_was_remembered() {
        let auth = BasicAuth::default();
        let access = access(&[("prometheus", "s3cret:with colon")]);
        let right = header("prometheus", "s3cret:with colon");
        assert!(!auth.allows(&access, None).await);
        assert!(
            !auth
                .allows(&access, Some(&header("prometheus", "wrong")))
                .await
        );
        assert!(auth.allows(&access, Some(&right)).await);
        assert_eq!(auth.verified.lock().len(), 1, "the success is remembered");
        assert!(auth.allows(&access, Some(&right)).await);
        assert!(
            !auth
                .allows(&access, Some(&header("prometheus", "s3cret")))
                .await
        );
        assert!(
            !auth
                .allows(&access, Some(&header("nobody", "s3cret:with colon")))
                .await
        );
        assert!(
            !auth
                .allows(&access, Some(&HeaderValue::from_static("Bearer abc")))
                .await
        );
        // The same password under a new hash (the file was reloaded) is checked afresh.
        let rehashed = self::access(&[("prometheus", "other")]);
        assert!(!auth.allows(&rehashed, Some(&right)).await);
        assert!(
            auth.allows(&WebAccess::open(), None).await,
            "no users: open"
        );
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_garbage_is_refused() {
        assert_eq!(
            parse_basic(&HeaderValue::from_static("basic dTpw")),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic !!!")), None);
        assert_eq!(parse_basic(&HeaderValue::from_static("Basic dXA=")), None);
    }
}
