//! The access tokens the simulated Entra ID has issued, which are exactly the tokens the
//! simulated Graph accepts.
//!
//! Kept apart from both services so that the token endpoint writes here and Graph reads
//! here without either depending on the other. One set serves every tenant of a
//! simulated provider: a token remembers the tenant it was issued for, and Graph answers
//! it from that tenant's logs alone.

use std::collections::HashMap;

use parking_lot::Mutex;

/// Expired tokens are forgotten once this many are held, keeping memory bounded.
const MAX_REMEMBERED_TOKENS: usize = 10_000;

/// Issued tokens by their text.
#[derive(Default)]
pub(crate) struct IssuedTokens(Mutex<HashMap<String, IssuedToken>>);

/// What the simulated Graph needs to know about a token it is shown.
struct IssuedToken {
    /// The tenant it was issued for (its index among the provider's tenants).
    tenant: usize,
    /// Clock ms; revoking a token sets it to the revocation time.
    expires_ms: i64,
    /// Whether the token carries `CallRecords.Read.All`.
    call_records: bool,
}

/// What a presented token is worth at some moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenStatus {
    Valid,
    /// Valid, but without the `CallRecords.Read.All` role.
    WithoutCallRecords,
    /// Issued here, but expired or revoked.
    Expired,
    /// Never issued here.
    Unknown,
}

impl IssuedTokens {
    /// Remembers a token issued for `tenant` at `now_ms`.
    pub fn remember(
        &self,
        token: String,
        tenant: usize,
        now_ms: i64,
        expires_ms: i64,
        call_records: bool,
    ) {
        let mut tokens = self.0.lock();
        if tokens.len() >= MAX_REMEMBERED_TOKENS {
            tokens.retain(|_, issued| issued.expires_ms > now_ms);
        }
        tokens.insert(
            token,
            IssuedToken {
                tenant,
                expires_ms,
                call_records,
            },
        );
    }

    /// The tenant a token was issued for, expired or not; `None` if it was never issued.
    pub fn tenant_of(&self, token: &str) -> Option<usize> {
        self.0.lock().get(token).map(|issued| issued.tenant)
    }

    pub fn status(&self, token: &str, now_ms: i64) -> TokenStatus {
        match self.0.lock().get(token) {
            Some(issued) if now_ms < issued.expires_ms && !issued.call_records => {
                TokenStatus::WithoutCallRecords
            }
            Some(issued) if now_ms < issued.expires_ms => TokenStatus::Valid,
            Some(_) => TokenStatus::Expired,
            None => TokenStatus::Unknown,
        }
    }

    /// Makes a token as good as expired from `now_ms` on.
    pub fn revoke(&self, token: &str, now_ms: i64) {
        if let Some(issued) = self.0.lock().get_mut(token) {
            issued.expires_ms = now_ms;
        }
    }
}
