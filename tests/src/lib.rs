//! Test harness for Rampart's end-to-end tests.
//!
//! The tests in `tests/tests/` run the real `rampart-server` binary as a
//! process on a free loopback port, and Debian's `redis-server` 7.0 beside it
//! as a differential oracle: the same bytes go to both and the replies are
//! compared byte for byte. This crate provides:
//!
//! - [`Rampart`] and [`RedisOracle`]: a server process in a fresh temporary
//!   directory, killed by its own PID when dropped, with its output captured
//!   to a log file that a failing test can print ([`ServerProcess::log`]);
//! - [`RawConn`]: a tiny RESP client that returns each reply as its exact raw
//!   bytes (RESP2 and RESP3 framing), so comparisons see every byte;
//! - [`corpus`]: the parser and runner for the differential corpus files in
//!   `tests/corpus/`;
//! - [`run_with_timeout`]: runs an outside tool (`redis-cli`,
//!   `redis-benchmark`) with a bound on its run time.
//!
//! Everything here is bounded: every wait has a timeout, ports are picked by
//! the kernel, and servers listen on 127.0.0.1 only.

pub mod cluster;

pub mod corpus;

pub mod dataset;

pub mod notify;

pub mod pki;

pub mod s3;

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// How long a server may take to answer its first PING.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`RawConn`] waits for a reply before giving up. Generous because
/// a debug build on two busy cores can be slow, but bounded so that a server
/// that never answers fails the test instead of hanging it.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a start is retried on a fresh port: the port is free when
/// picked but another process may take it before the server binds it.
const START_ATTEMPTS: usize = 3;

/// The workspace root, found from this crate's manifest directory so the
/// tests work from any current directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The `rampart-server` binary under test: `$RAMPART_BIN` if set, else
/// `debug/rampart-server` under `$CARGO_TARGET_DIR` or the workspace's
/// `target/`.
pub fn rampart_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("RAMPART_BIN") {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("RAMPART_BIN={} does not exist", bin.display());
        }
        return Ok(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                workspace_root().join(t)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"));
    let bin = target.join("debug").join("rampart-server");
    if !bin.is_file() {
        bail!(
            "{} does not exist: run `cargo build --bins` first (or set RAMPART_BIN)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Finds `name` on `$PATH`, then in `/usr/bin` and `/usr/sbin` (Debian's
/// places, which a minimal `$PATH` may lack).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Like [`find_tool`], but failing with a message that says how to install
/// it: a test that needs a tool must fail, never skip, when it is missing.
pub fn require_tool(name: &str) -> Result<PathBuf> {
    find_tool(name).ok_or_else(|| {
        anyhow!(
            "`{name}` not found on PATH: install Debian's redis-server and redis-tools \
             (`apt-get install -y redis-server redis-tools`, which scripts/test.sh does)"
        )
    })
}

/// The keyring file in `dir` that a primary and its replicas share
/// (`--kms-key-file`): the first server to start creates it.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// assert!(rampart_tests::shared_keyring(dir.path()).ends_with("/keyring.json"));
/// ```
pub fn shared_keyring(dir: &Path) -> String {
    dir.join("keyring.json").to_string_lossy().into_owned()
}

/// A port on 127.0.0.1 that was free a moment ago: the kernel picks it for a
/// listener that is dropped at once.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// `n` distinct ports on 127.0.0.1 that were free a moment ago: all `n`
/// listeners are held at once, so no two are the same (one
/// [`free_port`] after another may be given the same port twice).
///
/// ```
/// let p = rampart_tests::free_ports(4).unwrap();
/// assert_eq!(p.iter().collect::<std::collections::BTreeSet<_>>().len(), 4);
/// ```
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0"))
        .collect::<Result<_>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// `text` with every run of ASCII digits made `N`: figures (sizes,
/// timestamps, latencies) that each server and run takes from its own
/// state, so two replies compare by their shape.
///
/// ```
/// assert_eq!(rampart_tests::mask_digits("a 12 b3 45c"), "a N bN Nc");
/// ```
pub fn mask_digits(text: &str) -> String {
    let mut out = String::new();
    let mut in_num = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_num {
                out.push('N');
            }
            in_num = true;
        } else {
            in_num = false;
            out.push(c);
        }
    }
    out
}

/// Ports held open (a listener on each) from when a test picks them until
/// the server that will listen there starts: a port a test only chose is
/// free for the kernel to hand to any other test's server meanwhile (a
/// restored cluster's ports go into nodes.conf long before its nodes
/// start). Release a port just before starting its server.
///
/// ```
/// let mut held = rampart_tests::HeldPorts::new(2).unwrap();
/// let p = held.ports()[0];
/// assert!(std::net::TcpListener::bind(("127.0.0.1", p)).is_err());
/// held.release(p);
/// assert!(std::net::TcpListener::bind(("127.0.0.1", p)).is_ok());
/// ```
pub struct HeldPorts(Vec<TcpListener>);

impl HeldPorts {
    /// `n` distinct free loopback ports, held.
    pub fn new(n: usize) -> Result<HeldPorts> {
        let held = (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0"))
            .collect::<Result<_>>()?;
        Ok(HeldPorts(held))
    }

    /// The ports, in the order taken.
    pub fn ports(&self) -> Vec<u16> {
        self.0
            .iter()
            .filter_map(|l| l.local_addr().ok().map(|a| a.port()))
            .collect()
    }

    /// Stops holding `port` (a server is about to bind it).
    pub fn release(&mut self, port: u16) {
        self.0
            .retain(|l| l.local_addr().map_or(true, |a| a.port() != port));
    }
}

/// A running server process: killed by its PID and reaped on drop.
#[derive(Debug)]
pub struct ServerProcess {
    name: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
    // Dropped last (field order) so the process is gone before its
    // directory is removed.
    dir: WorkDir,
}

/// A server's directory: a fresh one removed on drop, or one the test
/// owns (to restart a server on the same data).
#[derive(Debug)]
enum WorkDir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl WorkDir {
    fn path(&self) -> &Path {
        match self {
            WorkDir::Temp(t) => t.path(),
            WorkDir::Kept(p) => p,
        }
    }
}

impl ServerProcess {
    /// Starts `bin` with the arguments that `args(port, dir)` gives, on a
    /// fresh port and in a fresh temporary directory, and waits until it
    /// answers PING. Retries on a new port if the process exits early.
    fn start(
        name: &'static str,
        bin: &Path,
        args: impl Fn(u16, &Path) -> Vec<String>,
    ) -> Result<Self> {
        Self::start_in(name, bin, None, args)
    }

    /// [`ServerProcess::start`] in `kept` when given (the log is appended
    /// to `server.log` there), else in a fresh temporary directory.
    fn start_in(
        name: &'static str,
        bin: &Path,
        kept: Option<&Path>,
        args: impl Fn(u16, &Path) -> Vec<String>,
    ) -> Result<Self> {
        Self::start_at(name, bin, kept, None, args)
    }

    /// [`ServerProcess::start_in`] on `fixed` when given: one attempt, as
    /// another port would not be the one the caller promised.
    fn start_at(
        name: &'static str,
        bin: &Path,
        kept: Option<&Path>,
        fixed: Option<u16>,
        args: impl Fn(u16, &Path) -> Vec<String>,
    ) -> Result<Self> {
        let mut last_err = None;
        let attempts = if fixed.is_some() { 1 } else { START_ATTEMPTS };
        for _ in 0..attempts {
            let dir = match kept {
                Some(p) => WorkDir::Kept(p.to_path_buf()),
                None => WorkDir::Temp(
                    tempfile::Builder::new()
                        .prefix(&format!("{name}-"))
                        .tempdir()
                        .context("creating a temporary directory")?,
                ),
            };
            let port = match fixed {
                Some(p) => p,
                None => free_port()?,
            };
            let log = dir.path().join("server.log");
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .with_context(|| format!("creating {}", log.display()))?;
            let err = out.try_clone()?;
            let child = Command::new(bin)
                .args(args(port, dir.path()))
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .with_context(|| format!("spawning {}", bin.display()))?;
            let mut server = ServerProcess {
                name,
                child,
                port,
                log,
                dir,
            };
            match server.wait_ready() {
                Ok(()) => return Ok(server),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("{name} did not start")))
    }

    /// Polls with PING until the server answers `+PONG`, the process exits,
    /// or [`START_TIMEOUT`] passes.
    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during start ({status}); its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            let ping = RawConn::connect_timeout(self.port, Duration::from_millis(500))
                .and_then(|mut c| c.cmd(&["PING"]));
            if let Ok(reply) = ping {
                // A server with a password answers NOAUTH: it is up too.
                if reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH") {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not answer PING on port {} within {:?}; its log:\n{}",
                    self.name,
                    self.port,
                    START_TIMEOUT,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A URL for the `redis` crate: `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's working directory (`--dir`), removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Which server this is: "rampart" or "redis-server".
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Everything the process has printed so far, for failure messages.
    pub fn log(&self) -> String {
        match std::fs::read(&self.log) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(cannot read {}: {e})", self.log.display()),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits up to `timeout` for the process to exit:
    /// its exit code (`None` when a signal ended it). An error if it is
    /// still running then.
    pub fn terminate(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let st = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        if !st.success() {
            bail!("kill -TERM {} failed", self.pid());
        }
        match self.wait_exit(timeout)? {
            Some(status) => Ok(status.code()),
            None => bail!("server did not exit after SIGTERM; log:\n{}", self.log()),
        }
    }

    /// Waits up to `timeout` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<std::process::ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running (false once it has crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// A new raw connection.
    pub fn conn(&self) -> Result<RawConn> {
        RawConn::connect(self.port)
    }

    /// A `redis` crate client for this server.
    pub fn redis_client(&self) -> Result<redis::Client> {
        Ok(redis::Client::open(self.url())?)
    }

    /// A synchronous `redis` crate connection, with bounded reads and writes.
    pub fn redis_conn(&self) -> Result<redis::Connection> {
        let conn = self
            .redis_client()?
            .get_connection_with_timeout(REPLY_TIMEOUT)?;
        conn.set_read_timeout(Some(REPLY_TIMEOUT))?;
        conn.set_write_timeout(Some(REPLY_TIMEOUT))?;
        Ok(conn)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Kill by our own child's PID, never by name: other servers on this
        // machine are none of our business.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.name == "rampart" {
            report_leaks(&self.log());
        }
    }
}

/// The prefix of every marker value the tests store: Rampart must never
/// write one to its log (no key or value in a log line).
pub const LOG_MARKER: &str = "PLAINTEXT-MARKER";

/// Where a Rampart log that held a marker is reported: scripts/test.sh
/// fails the run when this file exists after the tests
/// (`RAMPART_LOG_LEAKS`, else `target/log-leaks.txt`).
pub fn leaks_file() -> PathBuf {
    std::env::var_os("RAMPART_LOG_LEAKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("log-leaks.txt"))
}

/// Appends the log lines holding [`LOG_MARKER`] to [`leaks_file`]. A drop
/// cannot fail a test, so the whole run fails instead, at its end.
fn report_leaks(log: &str) {
    use std::io::Write;
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(LOG_MARKER)).collect();
    if lines.is_empty() {
        return;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(leaks_file())
    {
        for l in lines {
            let _ = writeln!(f, "{test}: {l}");
        }
    }
}

/// The Rampart server under test.
#[derive(Debug)]
pub struct Rampart(ServerProcess);

impl Rampart {
    /// Starts `rampart-server --port P --bind 127.0.0.1 --dir <tmp>` followed
    /// by `extra` arguments (`["--maxmemory", "1mb"]`), and waits until it
    /// answers PING.
    pub fn start(extra: &[&str]) -> Result<Self> {
        Self::launch(None, extra)
    }

    /// `rampart-server --port P --bind 127.0.0.1 --dir DIR extra…` in `kept`
    /// or a fresh temporary directory.
    fn launch(kept: Option<&Path>, extra: &[&str]) -> Result<Self> {
        Self::launch_at(kept, None, extra)
    }

    fn launch_at(kept: Option<&Path>, port: Option<u16>, extra: &[&str]) -> Result<Self> {
        let bin = rampart_bin()?;
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        ServerProcess::start_at("rampart", &bin, kept, port, |port, dir| {
            let mut args = vec![
                "--port".to_string(),
                port.to_string(),
                "--bind".to_string(),
                "127.0.0.1".to_string(),
                "--dir".to_string(),
                dir.to_string_lossy().into_owned(),
            ];
            args.extend(extra.iter().cloned());
            args
        })
        .map(Rampart)
    }
}

impl Rampart {
    /// Like [`Rampart::start`], run through a wrapper command (`prlimit
    /// --core=unlimited --`, `setpriv --reuid=65534 …`) that execs it.
    pub fn start_wrapped(wrapper: &[&str], extra: &[&str]) -> Result<Self> {
        let bin = rampart_bin()?;
        let (program, lead) = wrapper
            .split_first()
            .ok_or_else(|| anyhow::anyhow!("an empty wrapper"))?;
        let lead: Vec<String> = lead.iter().map(|s| s.to_string()).collect();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let program =
            find_tool(program).ok_or_else(|| anyhow::anyhow!("{program} is not installed"))?;
        ServerProcess::start_in("rampart", &program, None, |port, dir| {
            let mut args = lead.clone();
            args.push(bin.to_string_lossy().into_owned());
            args.extend([
                "--port".to_string(),
                port.to_string(),
                "--bind".to_string(),
                "127.0.0.1".to_string(),
                "--dir".to_string(),
                dir.to_string_lossy().into_owned(),
            ]);
            args.extend(extra.iter().cloned());
            args
        })
        .map(Rampart)
    }

    /// Like [`Rampart::start`] but in `dir`, which outlives the server: a
    /// test restarts a server on the same data directory this way.
    pub fn start_in(dir: &Path, extra: &[&str]) -> Result<Self> {
        Self::launch(Some(dir), extra)
    }

    /// Like [`Rampart::start_in`] on `port`, which the caller chose: a
    /// node whose address other nodes already know (a restored cluster's
    /// nodes.conf names it).
    pub fn start_in_at(dir: &Path, port: u16, extra: &[&str]) -> Result<Self> {
        Self::launch_at(Some(dir), Some(port), extra)
    }

    /// Runs `rampart-server --port P --bind 127.0.0.1 --dir DIR extra…` in
    /// `dir` expecting it to exit on its own (a refused start): returns its
    /// exit status and everything it printed. Fails if it is still running
    /// after `timeout` (it is killed then).
    pub fn run_expecting_exit(
        dir: &Path,
        extra: &[&str],
        timeout: Duration,
    ) -> Result<(std::process::ExitStatus, String)> {
        let bin = rampart_bin()?;
        let port = free_port()?;
        let mut child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .args(extra)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = Instant::now() + timeout;
        loop {
            if child.try_wait()?.is_some() {
                let out = child.wait_with_output()?;
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                return Ok((out.status, text));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("rampart-server was still running after {timeout:?}; it was expected to refuse to start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `rampart-server <dir>/rampart.conf --port P --bind 127.0.0.1
    /// --dir <dir> extra…` after writing `config` to that file.
    pub fn start_with_config(config: &str, extra: &[&str]) -> Result<Self> {
        let bin = rampart_bin()?;
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let config = config.to_string();
        ServerProcess::start("rampart", &bin, move |port, dir| {
            let file = dir.join("rampart.conf");
            // The closure has no error channel; a failed write shows up as
            // the server refusing to start, with its log.
            let _ = std::fs::write(&file, &config);
            let mut args = vec![
                file.to_string_lossy().into_owned(),
                "--port".to_string(),
                port.to_string(),
                "--bind".to_string(),
                "127.0.0.1".to_string(),
                "--dir".to_string(),
                dir.to_string_lossy().into_owned(),
            ];
            args.extend(extra.iter().cloned());
            args
        })
        .map(Rampart)
    }
}

impl Deref for Rampart {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.0
    }
}

impl std::ops::DerefMut for Rampart {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.0
    }
}

/// Debian's `redis-server` 7.0, the reference Rampart is compared against.
#[derive(Debug)]
pub struct RedisOracle(ServerProcess);

impl RedisOracle {
    /// Starts `redis-server --port P --bind 127.0.0.1 --save '' --appendonly
    /// no --dir <tmp>` and waits until it answers PING. Fails (never skips)
    /// when `redis-server` is not installed.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// Like [`RedisOracle::start`] with `extra` arguments appended.
    pub fn start_with(extra: &[&str]) -> Result<Self> {
        let bin = require_tool("redis-server")?;
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let oracle = ServerProcess::start("redis-server", &bin, |port, dir| {
            let mut args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                &dir.to_string_lossy(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(extra.iter().cloned());
            args
        })
        .map(RedisOracle)?;
        oracle.warn_if_not_7_0();
        Ok(oracle)
    }

    /// The corpus was checked against 7.0; a different version will show
    /// differences that are not Rampart's, so say so loudly.
    fn warn_if_not_7_0(&self) {
        let version = self
            .conn()
            .and_then(|mut c| c.cmd(&["INFO", "server"]))
            .map(|info| String::from_utf8_lossy(&info).into_owned())
            .unwrap_or_default();
        if !version.contains("redis_version:7.0.") {
            eprintln!(
                "WARNING: the oracle redis-server is not 7.0.x; differences may be the oracle's"
            );
        }
    }
}

impl Deref for RedisOracle {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.0
    }
}

impl std::ops::DerefMut for RedisOracle {
    fn deref_mut(&mut self) -> &mut ServerProcess {
        &mut self.0
    }
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A raw RESP connection that returns each reply's exact bytes.
///
/// # Example
///
/// ```no_run
/// # fn main() -> anyhow::Result<()> {
/// let server = rampart_tests::Rampart::start(&[])?;
/// let mut conn = server.conn()?;
/// assert_eq!(conn.cmd(&["PING"])?, b"+PONG\r\n");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RawConn {
    reader: BufReader<TcpStream>,
}

impl RawConn {
    /// Connects to 127.0.0.1:`port` with [`REPLY_TIMEOUT`] on reads and
    /// writes.
    pub fn connect(port: u16) -> Result<Self> {
        Self::connect_timeout(port, REPLY_TIMEOUT)
    }

    /// Connects with `timeout` on the connect, reads and writes.
    pub fn connect_timeout(port: u16, timeout: Duration) -> Result<Self> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        Ok(RawConn {
            reader: BufReader::new(stream),
        })
    }

    /// Changes the read timeout.
    pub fn set_read_timeout(&self, timeout: Duration) -> Result<()> {
        Ok(self.reader.get_ref().set_read_timeout(Some(timeout))?)
    }

    /// Sends `args` as one command and returns its reply's raw bytes.
    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Vec<u8>> {
        self.send(args)?;
        self.read_reply()
    }

    /// Sends `args` as a RESP array of bulk strings without reading.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<()> {
        self.send_raw(&encode_command(args))
    }

    /// Writes `bytes` as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        let stream = self.reader.get_mut();
        stream.write_all(bytes)?;
        stream.flush()?;
        Ok(())
    }

    /// Closes the write half, as a client does when it has nothing more to
    /// say but still wants the replies.
    pub fn shutdown_write(&self) -> Result<()> {
        Ok(self.reader.get_ref().shutdown(Shutdown::Write)?)
    }

    /// Reads exactly one reply and returns its raw bytes. An attribute
    /// (`|`) is returned together with the reply it annotates.
    pub fn read_reply(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        read_value(&mut self.reader, &mut out)?;
        Ok(out)
    }

    /// Reads until the server closes the connection or `timeout` passes.
    /// Returns the bytes read and whether the connection was closed (EOF or
    /// reset) within the time.
    pub fn read_until_close(&mut self, timeout: Duration) -> Result<(Vec<u8>, bool)> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        // Whatever the BufReader already holds came before the close.
        out.extend_from_slice(self.reader.buffer());
        let buffered = self.reader.buffer().len();
        self.reader.consume(buffered);
        let stream = self.reader.get_mut();
        let mut buf = [0u8; 16384];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok((out, false));
            }
            stream.set_read_timeout(Some(left))?;
            match stream.read(&mut buf) {
                Ok(0) => return Ok((out, true)),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok((out, true)),
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    return Ok((out, false))
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Reads one line including its `\r\n` into `out`, returning the line
/// without the terminator.
fn read_line(r: &mut impl BufRead, out: &mut Vec<u8>) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        bail!("connection closed before a reply");
    }
    if !line.ends_with(b"\r\n") {
        bail!(
            "reply line not terminated by CRLF: {}",
            escape(&line).trim_end()
        );
    }
    out.extend_from_slice(&line);
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_len(line: &[u8]) -> Result<i64> {
    std::str::from_utf8(&line[1..])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad length in reply header {}", escape(line)))
}

/// Reads one RESP2 or RESP3 value's bytes into `out`.
fn read_value(r: &mut impl BufRead, out: &mut Vec<u8>) -> Result<()> {
    let line = read_line(r, out)?;
    let Some(&kind) = line.first() else {
        bail!("empty reply line");
    };
    match kind {
        // Simple types: the line is the whole value.
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Ok(()),
        // Blob string, blob error, verbatim string; `$-1` is the RESP2 nil.
        b'$' | b'!' | b'=' => {
            let len = parse_len(&line)?;
            if len < 0 {
                return Ok(());
            }
            let len = usize::try_from(len)?;
            let start = out.len();
            out.resize(start + len + 2, 0);
            r.read_exact(&mut out[start..])?;
            if &out[out.len() - 2..] != b"\r\n" {
                bail!("blob of length {len} not followed by CRLF");
            }
            Ok(())
        }
        // Aggregates; `*-1` is the RESP2 nil array.
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let len = parse_len(&line)?;
            if len < 0 {
                return Ok(());
            }
            let items = if matches!(kind, b'%' | b'|') {
                len * 2
            } else {
                len
            };
            for _ in 0..items {
                read_value(r, out)?;
            }
            if kind == b'|' {
                // An attribute annotates the value that follows it.
                read_value(r, out)?;
            }
            Ok(())
        }
        _ => bail!("unknown reply type in {}", escape(&line)),
    }
}

/// See [`Reply::acl_normalized`].
fn normalize_acl_rules(raw: &[u8]) -> Vec<u8> {
    let single = |t: &[u8]| {
        (t.starts_with(b"+") || t.starts_with(b"-")) && t.get(1).is_some_and(|&c| c != b'@')
    };
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut run: Vec<Vec<u8>> = Vec::new();
    let flush = |run: &mut Vec<Vec<u8>>, out: &mut Vec<Vec<u8>>| {
        // A run may end a selector: keep its ')' (and any line end) last.
        let tail: Vec<u8> = run
            .last()
            .map(|t| {
                let n = t.iter().rev().take_while(|c| b")\r\n".contains(c)).count();
                t[t.len() - n..].to_vec()
            })
            .unwrap_or_default();
        if let Some(last) = run.last_mut() {
            last.truncate(last.len() - tail.len());
        }
        run.sort();
        if let Some(last) = run.last_mut() {
            last.extend_from_slice(&tail);
        }
        out.append(run);
    };
    for t in raw.split(|&c| c == b' ') {
        if single(t) {
            run.push(t.to_vec());
        } else {
            flush(&mut run, &mut out);
            out.push(t.to_vec());
        }
    }
    flush(&mut run, &mut out);
    out.join(&b' ')
}

/// A parsed reply, kept with its raw bytes, for order-insensitive and
/// shape-only comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A value with no children: its raw bytes, terminator included.
    Scalar(Vec<u8>),
    /// An aggregate: its header line (`*3\r\n`) and its children. An
    /// attribute is an aggregate whose last child is the annotated value.
    Aggregate(Vec<u8>, Vec<Reply>),
}

impl Reply {
    /// Parses exactly one reply from `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Reply> {
        let mut cursor = bytes;
        let reply = Self::parse_from(&mut cursor)?;
        if !cursor.is_empty() {
            bail!("{} bytes after the reply", cursor.len());
        }
        Ok(reply)
    }

    fn parse_from(cursor: &mut &[u8]) -> Result<Reply> {
        let mut raw = Vec::new();
        let line = read_line(cursor, &mut raw)?;
        let kind = *line.first().ok_or_else(|| anyhow!("empty reply line"))?;
        match kind {
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let len = parse_len(&line)?;
                if len < 0 {
                    return Ok(Reply::Scalar(raw));
                }
                let mut items = if matches!(kind, b'%' | b'|') {
                    len * 2
                } else {
                    len
                };
                if kind == b'|' {
                    items += 1;
                }
                let mut children = Vec::new();
                for _ in 0..items {
                    children.push(Self::parse_from(cursor)?);
                }
                Ok(Reply::Aggregate(raw, children))
            }
            _ => {
                let mut whole = raw;
                if matches!(kind, b'$' | b'!' | b'=') && parse_len(&line)? >= 0 {
                    let len = usize::try_from(parse_len(&line)?)? + 2;
                    if cursor.len() < len {
                        bail!("truncated blob");
                    }
                    whole.extend_from_slice(&cursor[..len]);
                    *cursor = &cursor[len..];
                }
                Ok(Reply::Scalar(whole))
            }
        }
    }

    /// The reply's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Scalar(b) => out.extend_from_slice(b),
            Reply::Aggregate(h, children) => {
                out.extend_from_slice(h);
                for c in children {
                    c.write(out);
                }
            }
        }
    }

    /// The same reply with the elements of every aggregate sorted (map
    /// entries as key-value pairs), so two replies that differ only in
    /// order become equal.
    pub fn sorted(&self) -> Reply {
        match self {
            Reply::Scalar(_) => self.clone(),
            Reply::Aggregate(h, children) => {
                let children: Vec<Reply> = children.iter().map(Reply::sorted).collect();
                let children = if h.first() == Some(&b'%') {
                    let mut pairs: Vec<(Vec<u8>, Reply, Reply)> = children
                        .chunks(2)
                        .filter(|c| c.len() == 2)
                        .map(|c| {
                            let mut key = c[0].to_bytes();
                            key.extend(c[1].to_bytes());
                            (key, c[0].clone(), c[1].clone())
                        })
                        .collect();
                    pairs.sort_by(|a, b| a.0.cmp(&b.0));
                    pairs.into_iter().flat_map(|(_, k, v)| [k, v]).collect()
                } else if h.first() == Some(&b'|') {
                    children
                } else {
                    let mut c = children;
                    c.sort_by_key(Reply::to_bytes);
                    c
                };
                Reply::Aggregate(h.clone(), children)
            }
        }
    }

    /// The reply with every integer (`:N`) replaced by `:`, for replies
    /// that are exact but for an id or a counter (HELLO, CLIENT ID).
    pub fn without_integers(&self) -> Reply {
        match self {
            Reply::Scalar(b) if b.starts_with(b":") => Reply::Scalar(b":".to_vec()),
            Reply::Scalar(_) => self.clone(),
            Reply::Aggregate(h, children) => Reply::Aggregate(
                h.clone(),
                children.iter().map(Reply::without_integers).collect(),
            ),
        }
    }

    /// The reply with the single-command rules of every ACL rule string
    /// (`+get -set +config|get`) sorted within each run: Redis lists them
    /// in its command hash table's order, which is random per process;
    /// `+@category` rules and everything else keep their place.
    pub fn acl_normalized(&self) -> Reply {
        match self {
            Reply::Scalar(b) => Reply::Scalar(normalize_acl_rules(b)),
            Reply::Aggregate(h, children) => Reply::Aggregate(
                h.clone(),
                children.iter().map(Reply::acl_normalized).collect(),
            ),
        }
    }

    /// The reply with every scalar reduced to its type byte (and nil kept
    /// apart from a value), for replies whose contents legitimately differ
    /// (TIME, CLIENT ID) but whose shape must not.
    pub fn shape(&self) -> Reply {
        match self {
            Reply::Scalar(b) => {
                let nil = b.starts_with(b"$-1\r\n") || b.starts_with(b"*-1\r\n");
                if nil || b.starts_with(b"_") {
                    Reply::Scalar(b.clone())
                } else {
                    Reply::Scalar(b[..1].to_vec())
                }
            }
            Reply::Aggregate(h, children) => {
                Reply::Aggregate(h.clone(), children.iter().map(Reply::shape).collect())
            }
        }
    }
}

/// Escapes bytes for a failure message: printable ASCII as is, `\r` `\n`
/// `\t` `\"` `\\` as escapes, anything else as `\xHH`.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// Runs `cmd` with its output captured, killing it (by its PID) if it runs
/// longer than `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Output> {
    let dir = tempfile::tempdir()?;
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    // Files, not pipes: a pipe that fills up would block the child while we
    // wait for it to exit.
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{cmd:?} did not finish within {timeout:?}; its output:\n{}{}",
                String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()),
                String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: std::fs::read(&out_path)?,
        stderr: std::fs::read(&err_path)?,
    })
}

/// Polls `f` every 50 ms until it says true, failing with `what` after
/// `timeout`. An error from `f` counts as "not yet"; the last one is part
/// of the timeout's message, so a failed wait says what it last saw.
///
/// ```
/// use std::time::Duration;
/// let mut n = 0;
/// rampart_tests::wait_for("three polls", Duration::from_secs(5), || {
///     n += 1;
///     Ok(n == 3)
/// })
/// .unwrap();
/// ```
pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        match f() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        if Instant::now() >= deadline {
            match last {
                Some(e) => bail!("timed out waiting for {what} (last error: {e:#})"),
                None => bail!("timed out waiting for {what}"),
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_framing_covers_resp3() -> Result<()> {
        let bytes: &[u8] = b"%2\r\n+a\r\n_\r\n$1\r\nb\r\n~2\r\n#t\r\n,1.5\r\n";
        let mut reader = bytes;
        let mut out = Vec::new();
        read_value(&mut reader, &mut out)?;
        assert_eq!(out, bytes);
        let attr: &[u8] = b"|1\r\n+k\r\n:1\r\n=7\r\ntxt:abc\r\n(123\r\n";
        let mut reader = attr;
        let mut out = Vec::new();
        read_value(&mut reader, &mut out)?;
        assert_eq!(&out, b"|1\r\n+k\r\n:1\r\n=7\r\ntxt:abc\r\n");
        assert_eq!(Reply::parse(&out)?.to_bytes(), out);
        Ok(())
    }

    #[test]
    fn sorted_ignores_order_only() -> Result<()> {
        let a = Reply::parse(b"*2\r\n$1\r\nb\r\n$1\r\na\r\n")?;
        let b = Reply::parse(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n")?;
        let c = Reply::parse(b"*2\r\n$1\r\na\r\n$1\r\nc\r\n")?;
        assert_eq!(a.sorted(), b.sorted());
        assert_ne!(a.sorted(), c.sorted());
        assert_eq!(a.shape(), c.shape());
        Ok(())
    }
}
