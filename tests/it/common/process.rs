//! The exporter binary as a child process. Every test starts it through [`ExporterCommand`],
//! so that none can forget to hide the machine's Azure settings from it, and so that what
//! a test changes for its exporter (a user, a file size limit) stays in that child: the
//! tests share one process, and whatever one of them set on it would hold for all.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Resource, Rlimit, Signal};
use serde_json::Value;

use super::{markers, wait_for, Metrics, CLIENT, SECRET, TENANT};

pub const BIN: &str = env!("CARGO_BIN_EXE_teams-voice-exporter");

/// Every variable the exporter takes a credential, a tenant or an endpoint from
/// (`env = "AZURE_…"` in src/config.rs, `std::env::var` in src/main.rs), and the proxy
/// settings its HTTP client follows, which would take the tests' traffic off loopback.
const HIDDEN_ENVIRONMENT: &[&str] = &[
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_AUTHORITY_HOST",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

/// A binary that should stop but serves on fails its test instead of hanging the run.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A change to the child's command that only the child may see.
type Configure = Box<dyn FnOnce(&mut Command)>;

/// How the exporter will be started. Flags are given as `--name=value`; a flag given again
/// replaces the earlier one, so that a test can override a default.
pub struct ExporterCommand {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    configure: Option<Configure>,
    ignore_sigxfsz: bool,
    disk_full: bool,
}

fn flag_name(arg: &str) -> Option<&str> {
    arg.starts_with("--")
        .then(|| arg.split('=').next().unwrap_or(arg))
}

impl ExporterCommand {
    /// The binary with `args`, seeing no Azure variable the test does not give it.
    pub fn new(args: &[&str]) -> ExporterCommand {
        ExporterCommand {
            program: BIN.into(),
            args: Vec::new(),
            env: Vec::new(),
            configure: None,
            ignore_sigxfsz: false,
            disk_full: false,
        }
        .args(args)
    }

    /// The exporter against the simulated tenant at `base_url`, polling fast and logging
    /// at debug level, with no credential yet. Its recent window is the whole lookback, so
    /// its first start counts every call of the tenant's scenario (all of them started
    /// within it) and the tests compare with all of them; its request budget is far above
    /// what the simulated tenant allows unless a test sets Graph's limits. New series show
    /// their counts at once (`--web.new-series-hold=0s`), so that tests compare `/metrics`
    /// with the ground truth as soon as the rows are counted; `first_samples` tests the hold.
    /// It reads Direct Routing alone, which the tests of counting compare with its ground
    /// truth; `pstn` turns `--collector.pstn` back on (the last of the two flags wins).
    pub fn polling(base_url: &str) -> ExporterCommand {
        ExporterCommand::new(&[
            "--log.level=debug",
            "--poll.interval=300ms",
            "--poll.recent-window=72h",
            "--poll.sweep-interval=2s",
            "--graph.retry-backoff=50ms",
            "--graph.rate-limit=1000/1s",
            "--graph.tenant-rate-limit=1000/1s",
            "--web.new-series-hold=0s",
            "--no-collector.pstn",
        ])
        .against(base_url)
    }

    /// Graph and Entra ID are the simulated tenant at `base_url`.
    pub fn against(self, base_url: &str) -> ExporterCommand {
        self.arg(format!("--graph.endpoint={base_url}"))
            .arg(format!("--azure.authority-host={base_url}"))
    }

    pub fn arg(mut self, arg: impl Into<String>) -> ExporterCommand {
        let arg = arg.into();
        if let Some(name) = flag_name(&arg) {
            self.args.retain(|old| flag_name(old) != Some(name));
        }
        self.args.push(arg);
        self
    }

    pub fn args(self, args: &[&str]) -> ExporterCommand {
        args.iter().fold(self, |command, arg| command.arg(*arg))
    }

    pub fn env(mut self, key: &str, value: &str) -> ExporterCommand {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn envs(self, pairs: &[(&str, &str)]) -> ExporterCommand {
        pairs
            .iter()
            .fold(self, |command, (key, value)| command.env(key, value))
    }

    /// The simulated tenant's client-secret credential.
    pub fn client_secret(self) -> ExporterCommand {
        self.envs(&[
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
            ("AZURE_CLIENT_SECRET", SECRET),
        ])
    }

    /// Runs `program` (a copy of the binary) instead.
    pub fn program(mut self, program: &Path) -> ExporterCommand {
        self.program = program.to_owned();
        self
    }

    /// Applies `configure` to the child's command last, for what only the child may change
    /// (its user, say).
    pub fn configure(mut self, configure: impl FnOnce(&mut Command) + 'static) -> ExporterCommand {
        self.configure = Some(Box::new(configure));
        self
    }

    /// A write past the file size limit fails with EFBIG instead of killing the exporter
    /// with SIGXFSZ, as a write to a full disk fails.
    pub fn ignore_sigxfsz(mut self) -> ExporterCommand {
        self.ignore_sigxfsz = true;
        self
    }

    /// Starts the exporter with a file size limit of zero: every write fails, as on a full
    /// disk, for root too. Only the soft limit is lowered, so that it can be raised again.
    pub fn disk_full(mut self) -> ExporterCommand {
        self.disk_full = true;
        self.ignore_sigxfsz()
    }

    fn command(self) -> Command {
        // A signal disposition or a limit set between fork and exec would need `pre_exec`,
        // which is unsafe; a shell sets them and execs the binary, keeping its pid.
        let mut command = if self.ignore_sigxfsz {
            let mut script = String::from("trap '' XFSZ; ");
            if self.disk_full {
                script.push_str("ulimit -S -f 0 || exit 125; ");
            }
            script.push_str(r#"exec "$0" "$@""#);
            let mut shell = Command::new("/bin/sh");
            shell.arg("-c").arg(script).arg(&self.program);
            shell
        } else {
            Command::new(&self.program)
        };
        command.args(&self.args).stdin(Stdio::null());
        for name in HIDDEN_ENVIRONMENT {
            command.env_remove(name);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if let Some(configure) = self.configure {
            configure(&mut command);
        }
        command
    }

    /// Runs the binary to its end and returns what it printed.
    pub fn run(self) -> Ran {
        let shown = self.args.join(" ");
        let mut child = spawn(self.command().stdout(Stdio::piped()).stderr(Stdio::piped()));
        let read = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = read(Box::new(child.stdout.take().unwrap()));
        let stderr = read(Box::new(child.stderr.take().unwrap()));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > RUN_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the binary with {shown} still ran after {RUN_TIMEOUT:?}; it printed:\n{}{}",
                    stderr.join().unwrap(),
                    stdout.join().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Ran {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        }
    }

    /// Starts the exporter, JSON-logging and on a free loopback port unless the arguments
    /// say otherwise, and returns once it listens.
    pub fn spawn(mut self) -> Exporter {
        for default in ["--log.format=json", "--web.listen-address=127.0.0.1:0"] {
            let name = flag_name(default);
            if !self.args.iter().any(|arg| flag_name(arg) == name) {
                self.args.insert(0, default.to_owned());
            }
        }
        let (process, line) = self.spawn_until(markers::LISTENING);
        let addr = line["address"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line}"));
        Exporter { process, addr }
    }

    /// Starts the binary (with JSON logs) and returns once it logs `message`, with that line.
    pub fn spawn_until(self, message: &str) -> (TestProcess, Value) {
        let child = spawn(self.command().stdout(Stdio::null()).stderr(Stdio::piped()));
        TestProcess::watch(child, message)
    }
}

/// Spawns `command`, waiting out the moment a freshly copied binary is busy (ETXTBSY): a
/// fork made by another test meanwhile can still hold the copy open for writing.
fn spawn(command: &mut Command) -> Child {
    let mut attempts = 0;
    loop {
        match command.spawn() {
            Err(error) if error.kind() == ErrorKind::ExecutableFileBusy && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            spawned => return spawned.expect("the exporter binary starts"),
        }
    }
}

/// What a binary run to its end printed, and its exit code (-1 for a signal).
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Everything printed, standard error first.
    pub fn text(&self) -> String {
        format!("{}{}", self.stderr, self.stdout)
    }
}

/// The `message` field of a JSON log line.
pub fn message(line: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    value["message"].as_str().map(str::to_owned)
}

/// A running binary and its log (standard error, line by line).
pub struct TestProcess {
    /// Shared with the log reader, so that a kill never reaches a reaped (and perhaps
    /// reused) pid: `Child::kill` does nothing once the child has been waited for.
    child: Arc<Mutex<Child>>,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    /// A message whose line makes the log reader SIGKILL the process as it appears.
    kill_on: Arc<Mutex<Option<String>>>,
}

impl TestProcess {
    fn watch(mut child: Child, started: &str) -> (TestProcess, Value) {
        let stderr = child.stderr.take().unwrap();
        let child = Arc::new(Mutex::new(child));
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let kill_on: Arc<Mutex<Option<String>>> = Arc::default();
        let (started_tx, started_rx) = mpsc::channel();
        let reader = {
            let (child, log, kill_on) = (child.clone(), log.clone(), kill_on.clone());
            let started = started.to_owned();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    let value: Value = serde_json::from_str(&line).unwrap_or_default();
                    let message = value["message"].as_str();
                    let mut trigger = kill_on.lock().unwrap();
                    if message.is_some() && trigger.as_deref() == message {
                        let _ = child.lock().unwrap().kill();
                        *trigger = None;
                    }
                    drop(trigger);
                    if message == Some(started.as_str()) {
                        let _ = started_tx.send(value.clone());
                    }
                    log.lock().unwrap().push(line);
                }
            })
        };
        let mut process = TestProcess {
            child,
            log,
            reader: Some(reader),
            kill_on,
        };
        match started_rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => (process, line),
            Err(_) => {
                let log = process.stop();
                panic!("the binary did not log {started:?}; log:\n{log}");
            }
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Whether a line with exactly `message` was logged.
    pub fn logged(&self, message: &str) -> bool {
        self.logged_where(message, |_| true)
    }

    /// Whether a line with exactly `message` was logged whose fields pass `check`.
    pub fn logged_where(&self, message: &str, check: impl Fn(&Value) -> bool) -> bool {
        self.log.lock().unwrap().iter().any(|line| {
            serde_json::from_str::<Value>(line)
                .is_ok_and(|value| value["message"] == message && check(&value))
        })
    }

    /// Makes the log reader SIGKILL the process as soon as a line with `message` appears,
    /// so that the kill lands inside what that line announces.
    pub fn kill_when_logged(&self, message: &str) {
        *self.kill_on.lock().unwrap() = Some(message.to_owned());
    }

    /// Whether the process has ended.
    pub fn exited(&self) -> bool {
        self.child.lock().unwrap().try_wait().unwrap().is_some()
    }

    /// SIGKILLs the process (if it still runs) and returns its whole log.
    pub fn kill(mut self) -> String {
        self.stop()
    }

    fn stop(&mut self) -> String {
        {
            let mut child = self.child.lock().unwrap();
            let _ = child.kill();
            child.wait().unwrap();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self, timeout: Duration) -> Option<ExitStatus> {
        self.signal(Signal::TERM);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.lock().unwrap().try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Sends SIGHUP: the exporter reads its tenants file again.
    pub fn hang_up(&self) {
        self.signal(Signal::HUP);
    }

    /// Sends `signal` unless the process has been reaped, when its pid may be another's.
    fn signal(&self, signal: Signal) {
        let mut child = self.child.lock().unwrap();
        if child.try_wait().unwrap().is_none() {
            rustix::process::kill_process(Pid::from_child(&child), signal).unwrap();
        }
    }

    #[cfg(target_os = "linux")]
    /// The process's peak resident memory (`VmHWM` of `/proc/<pid>/status`), in bytes.
    pub fn peak_resident_bytes(&self) -> Option<u64> {
        let pid = self.child.lock().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    #[cfg(target_os = "linux")]
    /// Sets the process's file size limit (the soft one; `None` for none): a disk that
    /// fills up and has space again while the exporter runs. Needs [`ExporterCommand::ignore_sigxfsz`].
    pub fn set_file_size_limit(&self, bytes: Option<u64>) {
        let child = self.child.lock().unwrap();
        let limit = Rlimit {
            current: bytes,
            maximum: None,
        };
        rustix::process::prlimit(Some(Pid::from_child(&child)), Resource::Fsize, limit)
            .expect("prlimit on the exporter");
    }
}

impl Drop for TestProcess {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The exporter serving on `addr`.
pub struct Exporter {
    process: TestProcess,
    pub addr: SocketAddr,
}

impl Deref for Exporter {
    type Target = TestProcess;

    fn deref(&self) -> &TestProcess {
        &self.process
    }
}

impl Exporter {
    /// The exporter polling the simulated tenant at `base_url` with its client secret,
    /// `extra` flags replacing the defaults of [`ExporterCommand::polling`].
    pub fn start(base_url: &str, extra: &[&str]) -> Exporter {
        ExporterCommand::polling(base_url)
            .client_secret()
            .args(extra)
            .spawn()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::blocking::get(self.url(path)).expect("exporter answers");
        let status = response.status().as_u16();
        (status, response.text().unwrap())
    }

    /// The metrics of an exporter of one tenant, without the `tenant` label (see
    /// [`Metrics::of_single_tenant`]).
    pub fn metrics(&self) -> Metrics {
        self.all_metrics().of_single_tenant()
    }

    /// Every series, `tenant` labels included.
    pub fn all_metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200);
        Metrics::parse(&body)
    }

    pub fn wait_ready(&self, timeout: Duration) {
        wait_for(timeout, "exporter ready", || self.get("/-/ready").0 == 200)
            .unwrap_or_else(|e| panic!("{e}; log:\n{}", self.log()));
    }

    /// SIGKILLs the exporter (if it still runs) and returns its whole log.
    pub fn kill(self) -> String {
        self.process.kill()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self, timeout: Duration) -> Option<ExitStatus> {
        self.process.terminate(timeout)
    }
}
