//! The file's loading and reloading rules, on real files in a temporary directory.

use std::path::Path;
use std::sync::Arc;

use super::*;

fn server_pair() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn load(dir: &Path, text: &str) -> Result<WebConfig, WebConfigError> {
    let path = dir.join("web.yml");
    std::fs::write(&path, text).unwrap();
    WebConfig::load(Some(&path))
}

#[test]
fn empty_files_and_empty_sections_mean_plain_http_without_authentication() {
    let dir = tempfile::tempdir().unwrap();
    for text in [
        "",
        "# comment only\n",
        "tls_server_config: {}\n",
        "basic_auth_users:\n",
    ] {
        let access = load(dir.path(), text).unwrap().current();
        assert!(access.tls.is_none() && access.users.is_empty(), "{text:?}");
    }
    assert!(WebConfig::load(None).unwrap().current().tls.is_none());
}

#[test]
fn inline_and_file_forms_of_one_field_are_not_both_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = server_pair();
    std::fs::write(dir.path().join("c.pem"), &cert).unwrap();
    let inline = |name: &str, pem: &str| {
        let body: String = pem.lines().map(|l| format!("    {l}\n")).collect();
        format!("  {name}: |\n{body}")
    };
    let both = format!(
        "tls_server_config:\n{}  cert_file: c.pem\n{}",
        inline("cert", &cert),
        inline("key", &key)
    );
    let error = load(dir.path(), &both).err().unwrap();
    assert_eq!(error.field, "tls_server_config.cert_file");
    let inline_only = format!(
        "tls_server_config:\n{}{}",
        inline("cert", &cert),
        inline("key", &key)
    );
    let config = load(dir.path(), &inline_only).unwrap();
    assert!(config.tls());
    assert!(!format!("{:?}", config.current()).contains("PRIVATE"));
}

#[test]
fn a_rewrite_is_picked_up_but_switching_tls_on_needs_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let config = load(dir.path(), &format!("basic_auth_users:\n  a: '{hash}'\n")).unwrap();
    assert_eq!(config.current().users.len(), 1);
    // Same length as before: the stamp's ctime and inode still tell the change.
    std::fs::write(
        dir.path().join("web.yml"),
        format!("basic_auth_users:\n  b: '{hash}'\n"),
    )
    .unwrap();
    assert!(config.current().users.contains_key("b"));

    let (cert, key) = server_pair();
    std::fs::write(dir.path().join("c.pem"), cert).unwrap();
    std::fs::write(dir.path().join("k.pem"), key).unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n",
    )
    .unwrap();
    let access = config.current();
    assert!(access.tls.is_none(), "TLS cannot start on a plain listener");
    assert!(access.users.contains_key("b"));
    // Truncated, or emptied: basic authentication does not go away on a reload.
    std::fs::write(dir.path().join("web.yml"), "").unwrap();
    let access = config.current();
    assert!(
        access.users.contains_key("b"),
        "the last good file stays in force"
    );
}

#[test]
fn a_reload_never_drops_client_certificates_but_a_restart_does() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = server_pair();
    std::fs::write(dir.path().join("c.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("k.pem"), &key).unwrap();
    let tls = "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n";
    let mtls = format!(
        "{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: c.pem\n  client_allowed_sans: [prometheus]\n"
    );
    let config = load(dir.path(), &mtls).unwrap();
    // What a reader sees of the file cut short after key_file.
    std::fs::write(dir.path().join("web.yml"), tls).unwrap();
    let access = config.current();
    assert_eq!(access.client_auth, ClientAuth::RequireAndVerifyClientCert);
    assert!(access.client_sans);
    assert_eq!(
        load(dir.path(), tls).unwrap().current().client_auth,
        ClientAuth::NoClientCert,
        "a fresh start applies it"
    );
}

#[test]
fn a_file_named_before_it_exists_is_picked_up_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = server_pair();
    std::fs::write(dir.path().join("c.pem"), &cert).unwrap();
    std::fs::write(dir.path().join("k.pem"), &key).unwrap();
    let tls = |c: &str| format!("tls_server_config:\n  cert_file: {c}\n  key_file: k.pem\n");
    let config = load(dir.path(), &tls("c.pem")).unwrap();
    let first = config.current();
    std::fs::write(dir.path().join("web.yml"), tls("renewed.pem")).unwrap();
    assert!(
        Arc::ptr_eq(&first, &config.current()),
        "renewed.pem does not exist yet"
    );
    assert!(Arc::ptr_eq(&first, &config.current()));
    std::fs::write(dir.path().join("renewed.pem"), &cert).unwrap();
    assert!(
        !Arc::ptr_eq(&first, &config.current()),
        "loaded once it appeared"
    );
}

#[test]
fn the_rate_limit_admits_a_burst_then_one_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(dir.path(), "rate_limit:\n  interval: 1h\n  burst: 2\n").unwrap();
    let access = config.current();
    assert!(config.admits(&access) && config.admits(&access));
    assert!(
        !config.admits(&access),
        "the burst is spent; the next token comes in an hour"
    );
    let off = load(dir.path(), "rate_limit:\n  interval: 0\n  burst: 0\n").unwrap();
    assert!((0..100).all(|_| off.admits(&off.current())));
}
