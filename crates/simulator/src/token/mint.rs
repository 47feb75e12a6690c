//! Issuing access tokens for the simulated Graph, to applications (client credentials)
//! and managed identities alike.

use rand::Rng;

use super::assertion::base64url;
use crate::tenant::Tenant;

/// Issues an access token for Graph to `app_id` in `tenant` and remembers it for that
/// tenant; returns it with its lifetime in seconds. `permitted`: whether the app was
/// granted `CallRecords.Read.All` there.
///
/// Tokens are shaped like Entra ID's (a JWT with `aud`, `tid`, `appid`, `roles`, ...), so
/// that clients can read their claims as they would a real one. The signature part is
/// random: the simulated Graph accepts exactly the tokens remembered here, which is what
/// checking Entra ID's signature amounts to.
pub(crate) fn mint_token(tenant: &Tenant, app_id: &str, permitted: bool) -> (String, u64) {
    let faults = tenant.gate.lock().faults.clone();
    let lifetime_secs = faults.token_lifetime_secs();
    let call_records = permitted && !faults.missing_call_records_role;
    let now_ms = tenant.now_ms();
    let now = now_ms.div_euclid(1000);
    let lifetime = i64::try_from(lifetime_secs).unwrap_or(i64::MAX);
    let object_id = tenant.new_uuid();
    let roles: &[&str] = if call_records {
        &["CallRecords.Read.All"]
    } else {
        // Consented, but not the permission that matters: what a half-done setup looks like.
        &["User.Read.All"]
    };
    let claims = serde_json::json!({
        "aud": tenant.graph_resource,
        "iss": format!("https://sts.windows.net/{}/", tenant.tenant_id),
        "iat": now,
        "nbf": now,
        "exp": now.saturating_add(lifetime),
        "appid": app_id,
        "idtyp": "app",
        "oid": object_id,
        "sub": object_id,
        "roles": roles,
        "tid": tenant.tenant_id,
        "uti": tenant.new_uuid(),
        "ver": "1.0",
    });
    let signature: [u8; 32] = tenant.service_rng.lock().gen();
    let part = |value: &serde_json::Value| base64url(value.to_string().as_bytes());
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "simulated"});
    let access_token = format!(
        "{}.{}.{}",
        part(&header),
        part(&claims),
        base64url(&signature)
    );
    let expires_ms = now_ms.saturating_add(lifetime.saturating_mul(1000));
    tenant.tokens.remember(
        access_token.clone(),
        tenant.index,
        now_ms,
        expires_ms,
        call_records,
    );
    (access_token, lifetime_secs)
}
