//! `--web.config.file` on the real binary: TLS, mutual TLS, basic authentication, certificate
//! rotation without a restart, and start-up refusal of broken files. Certificates are made
//! here at run time; no key is committed.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::{markers, wait_for, Exporter, ExporterCommand};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority that issues server and client certificates.
struct Ca {
    cert: rcgen::Certificate,
    params: CertificateParams,
    key: KeyPair,
}

/// A certificate and its private key, in PEM.
struct Issued {
    cert: String,
    key: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, params, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    fn issue(&self, name: &str, purpose: ExtendedKeyUsagePurpose) -> Issued {
        self.issue_for(name, purpose, &["localhost", "127.0.0.1"])
    }

    /// A certificate with `sans` as its subject alternative names (IP addresses parsed).
    fn issue_for(&self, name: &str, purpose: ExtendedKeyUsagePurpose, sans: &[&str]) -> Issued {
        let key = KeyPair::generate().unwrap();
        let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![purpose];
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn server(&self) -> Issued {
        self.issue("teams-voice-exporter", ExtendedKeyUsagePurpose::ServerAuth)
    }

    fn client(&self) -> Issued {
        self.issue("prometheus", ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// A directory with a server certificate and key (`server.crt`, `server.key`) from a server
/// CA and a client CA (`clients.crt`), for mutual-TLS web configs; returns both CAs.
fn mutual_tls_files() -> (tempfile::TempDir, Ca, Ca) {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Ca::new("test server CA");
    let client_ca = Ca::new("test client CA");
    let server = server_ca.server();
    write(dir.path(), "server.crt", &server.cert);
    write(dir.path(), "server.key", &server.key);
    write(dir.path(), "clients.crt", &client_ca.pem());
    (dir, server_ca, client_ca)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The demo exporter with `web_config` as its web configuration file.
fn start(dir: &Path, web_config: &str) -> Exporter {
    let file = write(dir, "web.yml", web_config);
    ExporterCommand::new(&["--demo", "--simulate.calls-per-day=5000"])
        .arg(format!("--web.config.file={}", file.display()))
        .spawn()
}

/// An HTTPS client that trusts only `ca` (PEM), presenting `identity` if given.
fn client(ca: Option<&str>, identity: Option<&Issued>) -> reqwest::blocking::Client {
    let mut builder = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(10));
    if let Some(ca) = ca {
        builder =
            builder.add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
    }
    if let Some(identity) = identity {
        let pem = format!("{}{}", identity.cert, identity.key);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn https(addr: SocketAddr, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", addr.port())
}

/// Status and body of a GET, or the error's text when no HTTP answer came.
fn get(
    client: &reqwest::blocking::Client,
    url: &str,
    auth: Option<(&str, &str)>,
) -> Result<(u16, String), String> {
    let mut request = client.get(url);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request.send().map_err(|e| format!("{e:?}"))?;
    Ok((
        response.status().as_u16(),
        response.text().unwrap_or_default(),
    ))
}

/// Sends a plain-HTTP request on a raw connection and returns whatever comes back.
fn plain_http_bytes(addr: SocketAddr) -> Vec<u8> {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

fn assert_refused(result: Result<(u16, String), String>, what: &str) {
    if let Ok((status, body)) = result {
        panic!(
            "{what} was served: {status} {}",
            &body[..body.len().min(200)]
        );
    }
}

#[test]
fn tls_serves_clients_that_trust_the_ca_and_never_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test server CA");
    let server = ca.server();
    write(dir.path(), "server.crt", &server.cert);
    write(dir.path(), "server.key", &server.key);
    // Relative paths are relative to the web config file.
    let exporter = start(
        dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let trusting = client(Some(&ca.pem()), None);
    let (status, body) = get(&trusting, &https(exporter.addr, "/metrics"), None).unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("teams_voice_exporter_build_info"), "{body}");
    assert_eq!(
        get(&trusting, &https(exporter.addr, "/-/healthy"), None).unwrap(),
        (200, "Healthy\n".to_owned())
    );
    assert_eq!(
        get(&trusting, &https(exporter.addr, "/"), None).unwrap().0,
        200
    );

    // A client that does not trust the CA stops at the handshake.
    assert_refused(
        get(
            &client(Some(&Ca::new("other").pem()), None),
            &https(exporter.addr, "/metrics"),
            None,
        ),
        "a client trusting another CA",
    );
    // Plain HTTP gets no HTTP answer: at most a TLS alert, then the connection closes.
    assert_refused(
        get(
            &reqwest::blocking::Client::new(),
            &exporter.url("/metrics"),
            None,
        ),
        "plain HTTP",
    );
    let answer = plain_http_bytes(exporter.addr);
    assert!(
        !answer.starts_with(b"HTTP/") && !String::from_utf8_lossy(&answer).contains("teams_"),
        "plain HTTP got an answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        exporter.logged_where(markers::LISTENING, |line| line["tls"] == true),
        "the start-up line says TLS is on: {}",
        exporter.log()
    );
}

#[test]
fn tls13_only_refuses_a_tls12_client() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("test server CA");
    let server = ca.server();
    let web_config = format!(
        "tls_server_config:\n  cert: |\n{}  key: |\n{}  min_version: TLS13\n",
        indent(&server.cert),
        indent(&server.key)
    );
    let exporter = start(dir.path(), &web_config);
    let url = https(exporter.addr, "/-/healthy");
    assert_eq!(
        get(&client(Some(&ca.pem()), None), &url, None).unwrap().0,
        200
    );
    let tls12 = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .unwrap();
    assert_refused(
        get(&tls12, &url, None),
        "a TLS 1.2 client with min_version TLS13",
    );
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

#[test]
fn mutual_tls_serves_only_clients_with_a_certificate_from_the_client_ca() {
    let (dir, server_ca, client_ca) = mutual_tls_files();
    let exporter = start(
        dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n",
    );
    let trust = server_ca.pem();
    for path in ["/metrics", "/", "/-/healthy"] {
        let url = https(exporter.addr, path);
        assert_refused(
            get(&client(Some(&trust), None), &url, None),
            "no client certificate",
        );
        let stranger = Ca::new("another CA").client();
        assert_refused(
            get(&client(Some(&trust), Some(&stranger)), &url, None),
            "a client certificate from another CA",
        );
        // A certificate for a server is not one for a client, even from the right CA.
        let wrong_purpose = client_ca.server();
        assert_refused(
            get(&client(Some(&trust), Some(&wrong_purpose)), &url, None),
            "a certificate without the clientAuth purpose",
        );
        let (status, body) =
            get(&client(Some(&trust), Some(&client_ca.client())), &url, None).unwrap();
        assert_eq!(status, 200, "{path}");
        if path == "/" {
            assert!(
                body.contains("TLS, client certificates: RequireAndVerifyClientCert"),
                "the landing page says how it is protected: {body}"
            );
        }
    }
}

#[test]
fn verify_if_given_lets_clients_without_a_certificate_in_but_not_bad_ones() {
    let (dir, server_ca, client_ca) = mutual_tls_files();
    let exporter = start(
        dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: clients.crt\n",
    );
    let trust = server_ca.pem();
    let url = https(exporter.addr, "/metrics");
    assert_eq!(get(&client(Some(&trust), None), &url, None).unwrap().0, 200);
    assert_eq!(
        get(&client(Some(&trust), Some(&client_ca.client())), &url, None)
            .unwrap()
            .0,
        200
    );
    assert_refused(
        get(
            &client(Some(&trust), Some(&Ca::new("x").client())),
            &url,
            None,
        ),
        "a client certificate from another CA",
    );
}

#[test]
fn require_any_client_cert_wants_a_certificate_but_not_from_a_known_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server_ca = Ca::new("test server CA");
    let server = server_ca.server();
    write(dir.path(), "server.crt", &server.cert);
    write(dir.path(), "server.key", &server.key);
    let exporter = start(
        dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAnyClientCert\n",
    );
    let trust = server_ca.pem();
    let url = https(exporter.addr, "/metrics");
    assert_refused(
        get(&client(Some(&trust), None), &url, None),
        "no client certificate",
    );
    let anyone = Ca::new("anyone").client();
    assert_eq!(
        get(&client(Some(&trust), Some(&anyone)), &url, None)
            .unwrap()
            .0,
        200
    );
}

/// `htpasswd -nbBC 4 prometheus 'correct horse'`-style hash; cost 4 keeps the test quick.
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

#[test]
fn basic_auth_guards_every_path_and_follows_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let password = "correct horse battery staple";
    let web_config = |hash: &str| {
        format!("basic_auth_users:\n  prometheus: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n")
    };
    let exporter = start(dir.path(), &web_config(&hash(password)));
    let plain = reqwest::blocking::Client::new();
    for path in ["/metrics", "/", "/-/healthy", "/-/ready"] {
        let url = exporter.url(path);
        for auth in [
            None,
            Some(("prometheus", "wrong")),
            Some(("nobody", password)),
        ] {
            let response = {
                let mut request = plain.get(&url);
                if let Some((user, pass)) = auth {
                    request = request.basic_auth(user, Some(pass));
                }
                request.send().unwrap()
            };
            assert_eq!(response.status().as_u16(), 401, "{path} with {auth:?}");
            assert_eq!(response.headers()["www-authenticate"], "Basic");
            assert_eq!(response.headers()["x-frame-options"], "deny");
            let body = response.text().unwrap();
            assert!(!body.contains("teams_"), "{body}");
        }
        let response = plain
            .get(&url)
            .basic_auth("prometheus", Some(password))
            .send()
            .unwrap();
        assert_eq!(response.headers()["x-frame-options"], "deny");
        let status = response.status().as_u16();
        if path == "/-/ready" {
            assert!(status == 200 || status == 503, "{status}");
        } else {
            assert_eq!(status, 200, "{path}");
        }
        if path == "/" {
            let page = response.text().unwrap();
            assert!(
                page.contains("plain HTTP; basic authentication (1 user)"),
                "{page}"
            );
        }
    }

    // A new hash in the file applies without a restart; the old password stops working.
    let new_password = "new password";
    write(dir.path(), "web.yml", &web_config(&hash(new_password)));
    let url = exporter.url("/metrics");
    wait_for(Duration::from_secs(10), "the new password", || {
        get(&plain, &url, Some(("prometheus", new_password)))
            .unwrap()
            .0
            == 200
    })
    .unwrap();
    assert_eq!(
        get(&plain, &url, Some(("prometheus", password))).unwrap().0,
        401
    );

    // A change that does not load leaves the last good configuration in force.
    write(
        dir.path(),
        "web.yml",
        "basic_auth_users:\n  prometheus: not-a-hash\n",
    );
    wait_for(
        Duration::from_secs(10),
        "the rejected change logged",
        || {
            // The file is looked at when a request comes.
            let _ = get(&plain, &url, None);
            exporter.logged(markers::WEB_CONFIG_REJECTED)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", exporter.log()));
    assert_eq!(get(&plain, &url, None).unwrap().0, 401);
    assert_eq!(
        get(&plain, &url, Some(("prometheus", new_password)))
            .unwrap()
            .0,
        200
    );

    let log = exporter.log();
    assert!(
        !log.contains(password) && !log.contains(new_password),
        "{log}"
    );
}

#[test]
fn basic_auth_over_mutual_tls_needs_both() {
    let (dir, server_ca, client_ca) = mutual_tls_files();
    let exporter = start(
        dir.path(),
        &format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\nbasic_auth_users:\n  prometheus: {}\n",
            hash("pw")
        ),
    );
    let good = client(Some(&server_ca.pem()), Some(&client_ca.client()));
    let url = https(exporter.addr, "/metrics");
    assert_eq!(get(&good, &url, None).unwrap().0, 401);
    assert_eq!(
        get(&good, &url, Some(("prometheus", "nope"))).unwrap().0,
        401
    );
    assert_eq!(get(&good, &url, Some(("prometheus", "pw"))).unwrap().0, 200);
    assert_refused(
        get(
            &client(Some(&server_ca.pem()), None),
            &url,
            Some(("prometheus", "pw")),
        ),
        "the right password without a client certificate",
    );
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let old = old_ca.server();
    let cert = write(dir.path(), "server.crt", &old.cert);
    let key = write(dir.path(), "server.key", &old.key);
    let exporter = start(
        dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    );
    let url = https(exporter.addr, "/-/healthy");
    assert_eq!(
        get(&client(Some(&old_ca.pem()), None), &url, None)
            .unwrap()
            .0,
        200
    );
    assert_refused(
        get(&client(Some(&new_ca.pem()), None), &url, None),
        "a client trusting only the new CA, before the renewal",
    );

    // Written in place, certificate first: for a moment the pair does not match, and the
    // exporter keeps the old one until the key follows.
    let new = new_ca.server();
    std::fs::write(&cert, &new.cert).unwrap();
    std::fs::write(&key, &new.key).unwrap();
    wait_for(
        Duration::from_secs(10),
        "the new certificate served",
        || get(&client(Some(&new_ca.pem()), None), &url, None).is_ok_and(|(s, _)| s == 200),
    )
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", exporter.log()));
    assert_refused(
        get(&client(Some(&old_ca.pem()), None), &url, None),
        "a client trusting only the old CA, after the renewal",
    );
    assert!(!exporter.log().contains(new.key.lines().nth(1).unwrap()));
}

/// Runs the exporter with `web_config`, expecting it to refuse to start.
fn run(web_config: &Path) -> (i32, String) {
    let ran = ExporterCommand::new(&["--demo", "--web.listen-address=127.0.0.1:0"])
        .arg(format!("--web.config.file={}", web_config.display()))
        .run();
    (ran.code, ran.stderr)
}

#[test]
fn broken_web_config_files_stop_the_start_with_exit_code_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("CA");
    let server = ca.server();
    let other = ca.server();
    write(dir.path(), "server.crt", &server.cert);
    write(dir.path(), "server.key", &server.key);
    write(dir.path(), "other.key", &other.key);
    write(dir.path(), "garbage.crt", "not a certificate\n");
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let cases: Vec<(String, &[&str])> = vec![
        (
            "basic_auth_user:\n  a: b\n".into(),
            &["unknown field `basic_auth_user`"],
        ),
        (
            "tls_server_config:\n  cert_fil: server.crt\n".into(),
            &["unknown field `cert_fil`", "cert_file"],
        ),
        (
            "basic_auth_users:\n  prometheus: hunter2\n".into(),
            &["basic_auth_users.prometheus", "bcrypt", "htpasswd"],
        ),
        (
            format!("{tls}  min_version: TLS11\n"),
            &["tls_server_config.min_version", "TLS12"],
        ),
        (
            format!("{tls}  max_version: TLS14\n"),
            &["tls_server_config.max_version", "TLS14"],
        ),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n".into(),
            &["tls_server_config.cert_file", "missing.crt"],
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n".into(),
            &["tls_server_config.key_file", "missing"],
        ),
        (
            "tls_server_config:\n  cert_file: garbage.crt\n  key_file: server.key\n".into(),
            &["garbage.crt", "no PEM CERTIFICATE"],
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: garbage.crt\n".into(),
            &["key_file", "no readable private key"],
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n".into(),
            &["cert_file", "does not go with", "other.key"],
        ),
        (
            format!("{tls}  client_ca_file: server.crt\n"),
            &["client_ca_file", "NoClientCert"],
        ),
        (
            format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n"),
            &["client_ca_file", "missing"],
        ),
        (
            format!("{tls}  client_auth_type: Sometimes\n"),
            &[
                "client_auth_type",
                "Sometimes",
                "RequireAndVerifyClientCert",
            ],
        ),
        (
            format!("{tls}  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"),
            &[
                "cipher_suites",
                "TLS_RSA_WITH_RC4_128_SHA",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ],
        ),
        (
            format!("{tls}  curve_preferences: [CurveP521]\n"),
            &["curve_preferences", "CurveP521"],
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n".into(),
            &["X-Frame-Options", "deny"],
        ),
        (
            "http_server_config:\n  headers:\n    Server: mine\n".into(),
            &["headers.Server", "cannot be configured"],
        ),
        (
            "rate_limit:\n  interval: 1s\n  burst: 0\n".into(),
            &["rate_limit.burst", "at least 1"],
        ),
        (
            "rate_limit:\n  interval: soon\n  burst: 5\n".into(),
            &["rate_limit.interval", "soon"],
        ),
        (
            format!("{tls}  client_allowed_sans: [prometheus]\n"),
            &["client_allowed_sans", "RequireAndVerifyClientCert"],
        ),
        (
            format!("{tls}  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [prometheus]\n"),
            &["client_allowed_sans", "RequireAndVerifyClientCert", "self-made"],
        ),
        (
            format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.crt\n  client_allowed_sans: [ops@example.com]\n"),
            &["client_allowed_sans", "ops@example.com", "e-mail"],
        ),
        ("tls_server_config: [\n".into(), &["(syntax)"]),
    ];
    for (i, (content, expected)) in cases.iter().enumerate() {
        let file = write(dir.path(), &format!("web{i}.yml"), content);
        let (code, text) = run(&file);
        assert_eq!(code, 2, "{content}\n{text}");
        assert!(
            text.contains(&file.display().to_string()),
            "file named: {text}"
        );
        for needle in *expected {
            assert!(
                text.contains(needle),
                "'{needle}' missing for\n{content}\ngot: {text}"
            );
        }
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains(other.key.lines().nth(1).unwrap()), "{text}");
    }
    let (code, text) = run(&dir.path().join("absent.yml"));
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("absent.yml") && text.contains("cannot read"),
        "{text}"
    );
}

#[test]
fn a_web_config_without_tls_or_users_serves_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    for content in [
        "",
        "# nothing configured yet\n",
        "tls_server_config: {}\nbasic_auth_users: {}\n",
    ] {
        let exporter = start(dir.path(), content);
        assert_eq!(exporter.get("/-/healthy").0, 200, "{content:?}");
    }
}

#[test]
fn the_rate_limit_answers_429_once_the_burst_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = start(dir.path(), "rate_limit:\n  interval: 1h\n  burst: 3\n");
    let statuses: Vec<u16> = (0..5).map(|_| exporter.get("/-/healthy").0).collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[test]
fn client_allowed_sans_admit_only_the_named_clients_of_the_ca() {
    let (dir, server_ca, client_ca) = mutual_tls_files();
    let exporter = start(
        dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\n  client_allowed_sans: [prometheus.monitoring.svc, 10.1.2.3]\n",
    );
    let trust = server_ca.pem();
    let url = https(exporter.addr, "/metrics");
    let purpose = || ExtendedKeyUsagePurpose::ClientAuth;
    for sans in [&["prometheus.monitoring.svc"][..], &["10.1.2.3"]] {
        let named = client_ca.issue_for("prometheus", purpose(), sans);
        assert_eq!(
            get(&client(Some(&trust), Some(&named)), &url, None)
                .unwrap()
                .0,
            200,
            "{sans:?}"
        );
    }
    for sans in [
        &["grafana.monitoring.svc"][..],
        &["10.1.2.4"],
        &["monitoring.svc"],
    ] {
        let other = client_ca.issue_for("someone", purpose(), sans);
        assert_refused(
            get(&client(Some(&trust), Some(&other)), &url, None),
            &format!("a client certificate of the CA for {sans:?}"),
        );
    }
}

/// The sample under "Protecting /metrics" in the README loads, and does what it says.
#[test]
fn the_readme_sample_loads() {
    use exporter_web::web_config::{ClientAuth, WebConfig};

    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Protecting /metrics").unwrap()..];
    let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
    let sample = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("CA");
    let server = ca.server();
    write(dir.path(), "server.crt", &server.cert);
    write(dir.path(), "server.key", &server.key);
    write(dir.path(), "clients-ca.crt", &ca.pem());
    let file = write(dir.path(), "web.yml", sample);
    let access = WebConfig::load(Some(&file)).unwrap().current();
    assert!(access.tls.is_some());
    assert_eq!(access.client_auth, ClientAuth::RequireAndVerifyClientCert);
    assert!(access.users.contains_key("prometheus"));
    assert_eq!(access.headers.len(), 1);
}
