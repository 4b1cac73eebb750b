//! Real parts for the end-to-end tests: the built binary, a git daemon serving a
//! repository on loopback, mosquitto, and plain MQTT clients.

use copper_wasm::bus::{BrokerAddress, Bus};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub mod browser;
mod copper_yaml;
mod nats;
mod network;
pub use copper_yaml::{Docker, ServicesFile, test_image};
pub use nats::NatsCluster;
pub use network::Network;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host is in the workspace")
        .to_path_buf()
}

/// The trimmed copy of astro-big-doc's `content/` folder (its origin and what was
/// left out: tests/fixtures/astro-big-doc/ORIGIN.md).
pub fn astro_big_doc_content() -> PathBuf {
    repo_root().join("tests/fixtures/astro-big-doc/content")
}

/// Markdown pages under the served `content/`: the fixture's 30 and `see-also.md`.
pub const ASTRO_PAGES: usize = 31;
/// Files under the served `content/`: the fixture's 58 and `see-also.md`.
pub const ASTRO_CONTENT_FILES: usize = 59;
/// Their bytes: the fixture's 250,675 and `see-also.md`'s 66.
pub const ASTRO_CONTENT_BYTES: u64 = 250_741;

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    wait_for_port_at("127.0.0.1", port, what);
}

fn wait_for_port_at(ip: &str, port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect((ip, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Compiled components shared by every test of this run (compiling is the slow part).
fn compiled_cache() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "copper-wasm-e2e-compiled-{}",
        env!("CARGO_PKG_VERSION")
    ));
    std::fs::create_dir_all(&dir).expect("compiled cache");
    dir
}

/// The `copper-wasm` binary, run in `dir` with a clean environment.
pub fn copper(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_copper-wasm"));
    with_clean_environment(&mut command, dir);
    command
}

/// `copper-wasm run` of a workflow of `steps` sequential `testkit/sleep` of `ms`,
/// written to `dir`, against the broker at `url`, hosting nothing itself.
pub fn sleep_run(dir: &Path, url: &str, steps: usize, ms: u64) -> Command {
    let workflow: String = (0..steps)
        .map(|_| format!("- action: testkit/sleep\n  ms: {ms}\n"))
        .collect();
    std::fs::write(dir.join("workflow.yaml"), workflow).unwrap();
    let mut command = copper(dir);
    command.args([
        "run",
        "workflow.yaml",
        "--broker",
        url,
        "--no-local-services",
    ]);
    command.arg("--cache").arg(dir.join("runner"));
    command
}

/// The `copper-wasm` binary as test host `index` of `network`, in `dir`.
pub fn copper_in(network: &Network, index: usize, dir: &Path) -> Command {
    let mut command = network.command_in(index, Path::new(env!("CARGO_BIN_EXE_copper-wasm")));
    with_clean_environment(&mut command, dir);
    command
}

/// The credentials file of every copper-wasm the tests start (`COPPER_CREDENTIALS`):
/// users `host`, `runner`, and `fetcher`, `greeter` and `lifeguard` (each granted
/// `serve` itself),
/// made once per test process.
pub fn credentials_file() -> &'static Path {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("copper-wasm-e2e-{}", std::process::id()));
        let path = dir.join("credentials.yaml");
        copper_wasm::access::Credentials::load_or_create(
            &path,
            &["fetcher".into(), "greeter".into(), "lifeguard".into()],
        )
        .expect("the tests' credentials file");
        path
    })
}

/// The login of the tests' user granted `grant`.
pub fn login(grant: &copper_wasm::access::Grant) -> (String, String) {
    copper_wasm::access::Credentials::read(credentials_file())
        .unwrap()
        .login_for(grant)
        .expect("a user with that grant")
}

fn with_clean_environment(command: &mut Command, dir: &Path) {
    command
        .current_dir(dir)
        .env("COPPER_CREDENTIALS", credentials_file())
        .env("COPPER_COMPILED_CACHE", compiled_cache())
        .env_remove("COPPER_BROKER")
        .env_remove("COPPER_GITHUB_URL")
        .env_remove("RUST_LOG")
        .env_remove("COPPER_HOST_ID")
        .env_remove("COPPER_HTTP_TOKEN")
        .env_remove("COPPER_DAEMON")
        // Daemons of tests side by side: each HTTP API on a free port of its own.
        .env("COPPER_HTTP", "127.0.0.1:0")
        .stdin(Stdio::null());
}

/// What a finished command printed.
pub struct Output {
    /// The command, for messages: its program's name and its arguments.
    pub command: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// What `command` (as messages name it) left in `raw`.
    pub fn new(command: impl Into<String>, raw: std::process::Output) -> Self {
        Self {
            command: command.into(),
            code: raw.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&raw.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&raw.stderr).into_owned(),
        }
    }

    /// Fails unless the command succeeded (exit code 0), showing all it printed.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        self.assert_exit(0)
    }

    /// Fails unless the command exited with `code`, showing all it printed.
    #[track_caller]
    pub fn assert_exit(&self, code: i32) -> &Self {
        assert!(
            self.code == code,
            "`{}` exited with {}, not {code}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.command,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs a command to its end.
pub fn output(command: &mut Command) -> Output {
    let program = Path::new(command.get_program())
        .file_name()
        .unwrap_or(command.get_program())
        .to_string_lossy()
        .into_owned();
    let line = std::iter::once(program)
        .chain(command.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let raw = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{line}`: {e}"));
    Output::new(line, raw)
}

/// Runs a command to its end without blocking the async runtime.
pub async fn output_async(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || output(&mut command))
        .await
        .expect("the command thread")
}

/// A child process killed when dropped.
pub struct Process {
    child: std::process::Child,
    name: String,
}

impl Process {
    /// Starts `command` in the background.
    pub fn spawn(command: &mut Command, name: &str) -> Self {
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child,
            name: name.to_string(),
        }
    }

    /// Starts `command` in the background, what it prints going to `log`.
    pub fn spawn_logged(command: &mut Command, name: &str, log: &Path) -> Self {
        let file = std::fs::File::create(log).expect("a log file");
        let child = command
            .stdout(file.try_clone().expect("a log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child,
            name: name.to_string(),
        }
    }

    /// Waits at most `bound` for it to exit; its status, if it did.
    pub async fn wait_for(&mut self, bound: Duration) -> Option<std::process::ExitStatus> {
        let until = Instant::now() + bound;
        while Instant::now() < until {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Kills it (SIGKILL: no goodbye) and waits for the exit.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {}", self.name);
        self.child.wait().unwrap()
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, when it exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Fails if it already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git` with a fixed identity, in `dir`.
pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=copper",
            "-c",
            "user.email=copper@example.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?} failed in {}", dir.display());
}

/// A work tree committed as a repository on branch `main`.
pub fn commit_tree(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "fixture"]);
}

/// A git daemon on loopback serving bare repositories under its base folder.
pub struct GitServer {
    _process: Process,
    port: u16,
}

impl GitServer {
    /// Serves `base` (e.g. `base/MicroWebStacks/astro-big-doc.git`).
    pub fn start(base: &Path) -> Self {
        let port = free_port();
        let process = Process::spawn(
            Command::new("git").args([
                "daemon",
                "--export-all",
                "--reuseaddr",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                &base.display().to_string(),
            ]),
            "git daemon",
        );
        wait_for_port(port, "git daemon");
        Self {
            _process: process,
            port,
        }
    }

    /// The value for `COPPER_GITHUB_URL`.
    pub fn github_url(&self) -> String {
        format!("git://127.0.0.1:{}/", self.port)
    }
}

/// The fixture as `MicroWebStacks/astro-big-doc` (a `content/` folder at its root) under
/// `root/served`; returns the git server and the work tree (to compare against).
pub fn serve_astro_big_doc(root: &Path) -> (GitServer, PathBuf) {
    let work = root.join("astro-work");
    copy_tree(&astro_big_doc_content(), &work.join("content"));
    std::fs::write(work.join("README.md"), "# astro-big-doc (test copy)\n").unwrap();
    // One page of ours with relative links to markdown, to see them rewritten.
    std::fs::write(
        work.join("content/see-also.md"),
        "# See also\n\n[Home](readme.md), [examples](examples/readme.md#top)\n",
    )
    .unwrap();
    let files = files_under(&work.join("content"));
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(
        (
            files_with_extension(&work.join("content"), "md").len(),
            files.len(),
            bytes
        ),
        (ASTRO_PAGES, ASTRO_CONTENT_FILES, ASTRO_CONTENT_BYTES),
        "tests/fixtures/astro-big-doc changed: update the ASTRO_* counts beside this check"
    );
    commit_tree(&work);
    let served = root.join("served");
    std::fs::create_dir_all(served.join("MicroWebStacks")).unwrap();
    git(
        root,
        &[
            "clone",
            "-q",
            "--bare",
            &work.display().to_string(),
            &served
                .join("MicroWebStacks/astro-big-doc.git")
                .display()
                .to_string(),
        ],
    );
    (GitServer::start(&served), work)
}

/// mosquitto from Debian's package, on a free loopback port.
pub struct Mosquitto {
    _process: Process,
    pub port: u16,
    /// The address it listens on.
    pub ip: String,
}

impl Mosquitto {
    /// Starts it with a config of its own in `dir`.
    pub fn start(dir: &Path) -> Self {
        Self::start_on(dir, free_port())
    }

    /// Starts it logging everything (`log_type all`) to `dir/mosquitto.log`:
    /// copper's way to trace who publishes and subscribes to what.
    pub fn start_logging(dir: &Path) -> (Self, PathBuf) {
        // Started as root, mosquitto runs as its own user: the folder must let it write.
        let logs = dir.join("mosquitto-logs");
        std::fs::create_dir_all(&logs).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o777)).unwrap();
        let log = logs.join("mosquitto.log");
        let listener = format!("log_type all\nlog_dest file {}\n", log.display());
        (Self::start_with(dir, free_port(), &listener), log)
    }

    /// Starts it on `port`.
    pub fn start_on(dir: &Path, port: u16) -> Self {
        Self::start_with(dir, port, "")
    }

    /// Starts it speaking only TLS, its certificate (for `localhost` and 127.0.0.1)
    /// signed by an authority made here; returns it and the authority's PEM file.
    pub fn start_tls(dir: &Path) -> (Self, std::path::PathBuf) {
        let openssl = |args: &[&str]| {
            let raw = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl is installed (./test.sh installs Debian's package)");
            Output::new(format!("openssl {}", args.join(" ")), raw).assert_success();
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &[
                    "req",
                    "-x509",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=copper-wasm test authority",
                ][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem"],
                &["-addext", "basicConstraints=critical,CA:TRUE"],
                &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req", "-subj", "/CN=localhost"][..],
                &ec,
                &["-keyout", "server.key", "-out", "server.csr"],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        // Started as root, mosquitto would read its key as user `mosquitto`, which
        // cannot enter the test's private folder.
        let tls = format!(
            "user root\ncertfile {}\nkeyfile {}\n",
            dir.join("server.pem").display(),
            dir.join("server.key").display()
        );
        (Self::start_with(dir, free_port(), &tls), dir.join("ca.pem"))
    }

    /// Starts it listening on `ip:port` (a test network's bridge).
    pub fn start_at(dir: &Path, ip: &str, port: u16) -> Self {
        Self::start_listening(dir, ip, port, "")
    }

    /// Starts it on a free loopback port, letting in only the users of `passwd`
    /// (made by mosquitto_passwd), each as `acl` allows.
    pub fn start_secured(dir: &Path, passwd: &Path, acl: &Path) -> Self {
        let secured = format!(
            "user root\nallow_anonymous false\npassword_file {}\nacl_file {}\n",
            passwd.display(),
            acl.display()
        );
        Self::start_with(dir, free_port(), &secured)
    }

    /// Starts it on `port` with more of its configuration for that listener.
    fn start_with(dir: &Path, port: u16, listener: &str) -> Self {
        Self::start_listening(dir, "127.0.0.1", port, listener)
    }

    fn start_listening(dir: &Path, ip: &str, port: u16, listener: &str) -> Self {
        let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("mosquitto is installed (./test.sh installs Debian's package)");
        let conf = dir.join("mosquitto.conf");
        let anonymous = match listener.contains("allow_anonymous") {
            true => "",
            false => "allow_anonymous true\n",
        };
        std::fs::write(
            &conf,
            format!(
                "listener {port} {ip}\n{listener}{anonymous}persistence false\nset_tcp_nodelay true\n"
            ),
        )
        .unwrap();
        let process = Process::spawn(Command::new(binary).arg("-c").arg(&conf), "mosquitto");
        wait_for_port_at(ip, port, "mosquitto");
        Self {
            _process: process,
            port,
            ip: ip.to_string(),
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("mqtt://{}:{}", self.ip, self.port)
    }
}

/// `copper-wasm serve` with its embedded broker on a free port in `dir` (extra arguments
/// appended); returns once every service in `services` says `up`.
pub async fn serve(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    services: &[&str],
) -> (Process, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut all = vec!["--listen", listen.as_str()];
    all.extend_from_slice(args);
    let process = serve_on(dir, port, &all, env, services).await;
    (process, port)
}

/// `copper-wasm serve` with `args`, whose broker is (or will be) on `port`; returns once
/// every service in `services` says `up` there.
pub async fn serve_on(
    dir: &Path,
    port: u16,
    args: &[&str],
    env: &[(&str, &str)],
    services: &[&str],
) -> Process {
    let mut command = copper(dir);
    command.arg("serve").args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut process = Process::spawn(&mut command, "copper-wasm serve");
    let deadline = Instant::now() + Duration::from_secs(120);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        process.assert_running();
        assert!(Instant::now() < deadline, "serve did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_up_while(port, services, Some(&mut process)).await;
    process
}

/// Waits until every service in `services` says `up` on the broker at `port`.
pub async fn wait_up(port: u16, services: &[&str]) {
    wait_up_while(port, services, None).await;
}

/// Waits for `services` to be up, failing early if `process` exits.
async fn wait_up_while(port: u16, services: &[&str], mut process: Option<&mut Process>) {
    let bus = client(port).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let up = copper_wasm::runner::services_up(&bus, Duration::from_millis(300))
            .await
            .unwrap();
        if services.iter().all(|s| up.iter().any(|u| u.name == *s)) {
            break;
        }
        if let Some(process) = process.as_deref_mut() {
            process.assert_running();
        }
        assert!(
            Instant::now() < deadline,
            "services {services:?} not up, only {up:?}"
        );
    }
    bus.close().await;
}

/// Our bus client on a loopback broker.
pub async fn client(port: u16) -> Bus {
    // A broker just (re)started may refuse the very first connection: try for a while.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let id = format!("e2e-{}", uuid::Uuid::new_v4().simple());
        let mut address = BrokerAddress::new("127.0.0.1", port);
        address.credentials = Some(login(&copper_wasm::access::Grant::Host));
        let connected = Bus::connect(&address, &id, None, CancellationToken::new()).await;
        match connected {
            Ok(bus) => return bus,
            Err(error) if Instant::now() < deadline => {
                eprintln!("connecting to 127.0.0.1:{port} again: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("cannot connect to 127.0.0.1:{port}: {error}"),
        }
    }
}

/// Copies the files under `from` into `to`, folders made as needed.
pub fn copy_tree(from: &Path, to: &Path) {
    for file in files_under(from) {
        let target = to.join(file.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target)
            .unwrap_or_else(|e| panic!("cannot copy {}: {e}", file.display()));
    }
}

/// Every file under `dir` (absolute paths).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Every file under `dir` with `extension`, relative, sorted.
pub fn files_with_extension(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .map(|p| p.strip_prefix(dir).unwrap().to_path_buf())
        .collect();
    found.sort();
    found
}
