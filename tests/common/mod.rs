//! Shared parts of the integration tests: the real exporter binary as a child process, a
//! `/metrics` parser written independently of the exporter's own rendering, and waiting.

#![allow(dead_code)]

pub mod pki;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod truth;

pub const BIN: &str = env!("CARGO_BIN_EXE_teams-voice-exporter");
pub const TENANT: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT: &str = "66666666-7777-8888-9999-000000000000";
pub const SECRET: &str = "test~SECRET~value~never~printed";

/// The exporter binary, started with JSON logs on a free loopback port.
pub struct Exporter {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    /// A log message that makes the log reader SIGKILL the exporter the moment it appears.
    kill_on: Arc<Mutex<Option<String>>>,
}

/// Runs the binary to its end; returns the exit code and everything it printed.
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("AZURE_TENANT_ID")
        .env_remove("AZURE_CLIENT_ID")
        .env_remove("AZURE_CLIENT_SECRET");
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let (done, finished) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = done.send(());
        output
    });
    // A binary that should have stopped but serves on must fail the test, not hang it.
    if finished.recv_timeout(Duration::from_secs(60)).is_err() {
        // SAFETY: kill(2) on our own child, not yet reaped, so the pid is its.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let output = waiter.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    (output.status.code().unwrap_or(-1), text)
}

/// Removes every variable that configures a credential or a cloud, so that a test's
/// exporter sees only what the test gives it, whatever the machine running it has set.
pub fn without_azure_environment(command: &mut Command) {
    for name in [
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    ] {
        command.env_remove(name);
    }
}

/// The simulated tenant's client-secret credential, as `Exporter::start` passes it.
const SECRET_ENV: &[(&str, &str)] = &[
    ("AZURE_TENANT_ID", TENANT),
    ("AZURE_CLIENT_ID", CLIENT),
    ("AZURE_CLIENT_SECRET", SECRET),
];

impl Exporter {
    /// Starts the exporter against a simulated tenant at `base_url`, with fast polling.
    pub fn start(base_url: &str, extra: &[&str]) -> Exporter {
        Exporter::start_with_env(base_url, extra, SECRET_ENV)
    }

    /// As [`Exporter::start`], with `env` as the only Azure variables (other credentials).
    pub fn start_with_env(base_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Exporter {
        Exporter::start_full(base_url, extra, env, BIN.as_ref(), |_| {})
    }

    /// As [`Exporter::start`], running `program` (a copy of the binary) with `configure`
    /// applied to the command (to run it as another user, say).
    pub fn start_with(
        base_url: &str,
        extra: &[&str],
        program: &std::path::Path,
        configure: impl FnOnce(&mut Command),
    ) -> Exporter {
        Exporter::start_full(base_url, extra, SECRET_ENV, program, configure)
    }

    fn start_full(
        base_url: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        program: &std::path::Path,
        configure: impl FnOnce(&mut Command),
    ) -> Exporter {
        let mut args = vec![
            "--web.listen-address=127.0.0.1:0".to_owned(),
            "--log.format=json".to_owned(),
            "--log.level=debug".to_owned(),
            format!("--graph.endpoint={base_url}"),
            format!("--azure.authority-host={base_url}"),
            "--poll.interval=300ms".to_owned(),
            "--poll.sweep-interval=2s".to_owned(),
            "--graph.retry-backoff=50ms".to_owned(),
        ];
        // A flag given in `extra` replaces the default above.
        let flag = |arg: &str| arg.split('=').next().unwrap_or_default().to_owned();
        args.retain(|arg| !extra.iter().any(|e| flag(e) == flag(arg)));
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Exporter::spawn_with(program, &args, env, configure)
    }

    pub fn spawn(args: &[String], env: &[(&str, &str)]) -> Exporter {
        Exporter::spawn_with(BIN.as_ref(), args, env, |_| {})
    }

    fn spawn_with(
        program: &std::path::Path,
        args: &[String],
        env: &[(&str, &str)],
        configure: impl FnOnce(&mut Command),
    ) -> Exporter {
        let mut command = Command::new(program);
        without_azure_environment(&mut command);
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        configure(&mut command);
        // A freshly copied binary can be briefly busy (ETXTBSY) while another test's fork
        // still holds it open for writing.
        let mut attempts = 0;
        let mut child = loop {
            match command.spawn() {
                Err(error) if error.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                spawned => break spawned.expect("the exporter binary starts"),
            }
        };
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        let kill_on: Arc<Mutex<Option<String>>> = Arc::default();
        let trigger = kill_on.clone();
        let pid = child.id() as libc::pid_t;
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut trigger = trigger.lock().unwrap();
                if trigger
                    .as_ref()
                    .is_some_and(|marker| line.contains(marker.as_str()))
                {
                    // SAFETY: kill(2) on our own child, not yet reaped, so the pid is its.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    *trigger = None;
                }
                drop(trigger);
                if line.contains("teams-voice-exporter listening") {
                    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
                    let _ = addr_tx.send(
                        value["address"]
                            .as_str()
                            .unwrap()
                            .parse::<SocketAddr>()
                            .unwrap(),
                    );
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "exporter did not start listening; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Exporter {
            child,
            addr,
            log,
            reader: Some(reader),
            kill_on,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::blocking::get(self.url(path)).expect("exporter answers");
        let status = response.status().as_u16();
        (status, response.text().unwrap())
    }

    pub fn metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200);
        Metrics::parse(&body)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn wait_ready(&self, timeout: Duration) {
        wait_for(timeout, "exporter ready", || self.get("/-/ready").0 == 200)
            .unwrap_or_else(|e| panic!("{e}; log:\n{}", self.log()));
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Makes the log reader SIGKILL the exporter as soon as a line containing `marker`
    /// appears, so that the kill lands inside what that line announces.
    pub fn kill_when_logged(&self, marker: &str) {
        *self.kill_on.lock().unwrap() = Some(marker.to_owned());
    }

    /// Whether the process has ended.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// SIGKILLs the exporter (if it still runs) and returns its whole log.
    pub fn kill(mut self) -> String {
        // SAFETY: kill(2) on our own child, not yet reaped, so the pid is its.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self, timeout: Duration) -> Option<ExitStatus> {
        // SAFETY: kill(2) on our own child's pid has no memory-safety requirements.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A simulated tenant with `identity`, served from its own runtime, for tests that run
/// the exporter binary against it.
pub fn simulated_tenant(
    scenario: tve_simulator::Scenario,
    faults: tve_simulator::Faults,
    identity: tve_simulator::SimIdentity,
) -> (tokio::runtime::Runtime, tve_simulator::SimHandle) {
    use tve_simulator::{SimConfig, SimHandle, Traffic};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = SimConfig {
        tenant_id: TENANT.into(),
        client_id: CLIENT.into(),
        client_secret: SECRET.into(),
        seed: 7,
        traffic: Traffic::Scenario(scenario),
        faults,
        page_size: 1000,
        clock: tve_clock::Clock::system(),
        identity,
    };
    let sim = runtime
        .block_on(SimHandle::bind(config, ([127, 0, 0, 1], 0).into()))
        .unwrap();
    (runtime, sim)
}

/// Polls `condition` until it holds or `timeout` passes.
pub fn wait_for(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        if condition() {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A series: metric name (with `_bucket`/`_sum`/`_count` suffix) and sorted labels.
pub type Series = (String, BTreeMap<String, String>);

/// A parsed text exposition.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub samples: BTreeMap<Series, f64>,
    pub types: BTreeMap<String, String>,
}

impl Metrics {
    /// Parses the Prometheus text format (as much of it as an exporter emits).
    pub fn parse(text: &str) -> Metrics {
        let mut metrics = Metrics::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                metrics.types.insert(
                    parts.next().unwrap().to_owned(),
                    parts.next().unwrap().to_owned(),
                );
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => (
                    name.to_owned(),
                    parse_labels(rest.strip_suffix('}').unwrap()),
                ),
            };
            assert!(
                metrics.samples.insert((name, labels), value).is_none(),
                "duplicate series {line}"
            );
        }
        metrics
    }

    /// All samples of one metric name.
    pub fn of(&self, name: &str) -> BTreeMap<BTreeMap<String, String>, f64> {
        self.samples
            .iter()
            .filter(|((n, _), _)| n == name)
            .map(|((_, labels), v)| (labels.clone(), *v))
            .collect()
    }

    /// The sum over all series of a metric whose labels include `filter`.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.of(name)
            .iter()
            .filter(|(labels, _)| {
                filter
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, v)| v)
            .sum()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(name.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
