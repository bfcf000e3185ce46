//! Process supervision as `redis-server` does it: `supervised systemd`
//! readiness over `$NOTIFY_SOCKET`, `daemonize yes` with its pidfile,
//! `syslog-enabled`, and the startup banner.
//!
//! The notify and syslog sockets are datagram sockets the test binds
//! itself, standing in for systemd and for `/dev/log`
//! (`RAMPART_SYSLOG_SOCKET` points the server at the test's).

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rampart_tests::{free_port, rampart_bin, wait_for, Rampart, RawConn};

/// A server started by the test itself (to set its environment), killed by
/// its PID on drop.
struct Started {
    child: Child,
    port: u16,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Started> {
    let port = free_port()?;
    let mut cmd = Command::new(rampart_bin()?);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
        .arg(dir)
        .arg("--logfile")
        .arg(dir.join("server.log"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("NOTIFY_SOCKET")
        .env_remove("UPSTART_JOB");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(Started {
        child: cmd.spawn()?,
        port,
    })
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

fn ping(port: u16) -> bool {
    RawConn::connect_timeout(port, Duration::from_millis(300))
        .and_then(|mut c| c.cmd(&["PING"]))
        .is_ok_and(|r| r == b"+PONG\r\n")
}

fn info_field(port: u16, section: &str, field: &str) -> Result<String> {
    let reply = RawConn::connect(port)?.cmd(&["INFO", section])?;
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no {field} in INFO {section}: {text}"))
}

/// Datagrams until one equals `last` or `timeout` passes.
fn receive_until(sock: &UnixDatagram, last: &str, timeout: Duration) -> Result<Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 8192];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = msg == last;
                got.push(msg);
                if done {
                    return Ok(got);
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e.into()),
        }
    }
    bail!("no {last:?} within {timeout:?}; got {got:?}")
}

#[test]
fn systemd_gets_ready_then_stopping_and_daemonize_is_ignored() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path)?;
    let notify = sock_path.to_string_lossy().into_owned();
    // As Redis: a supervised server stays in the foreground even with
    // daemonize yes, so systemd keeps watching the PID it started.
    let mut server = spawn(
        dir.path(),
        &["--supervised", "systemd", "--daemonize", "yes"],
        &[("NOTIFY_SOCKET", &notify)],
    )?;
    let got = receive_until(&sock, "READY=1\n", Duration::from_secs(30))
        .with_context(|| log(dir.path()))?;
    assert_eq!(
        got.first().map(String::as_str),
        Some("STATUS=Rampart is loading...\n")
    );
    assert!(
        got.iter()
            .any(|m| m == "STATUS=Ready to accept connections\n"),
        "{got:?}"
    );
    // READY=1 comes once clients can connect.
    assert!(ping(server.port), "READY=1 before the server answers");
    assert!(
        server.child.try_wait()?.is_none(),
        "the supervised server forked"
    );
    assert_eq!(
        info_field(server.port, "server", "process_supervised")?,
        "systemd"
    );
    assert_eq!(
        info_field(server.port, "server", "process_id")?,
        server.child.id().to_string()
    );
    let text = log(dir.path());
    assert!(text.contains("Supervised by systemd."), "{text}");
    let _ = RawConn::connect(server.port)?.cmd(&["SHUTDOWN", "NOSAVE"]);
    receive_until(&sock, "STOPPING=1\n", Duration::from_secs(10))?;
    wait_for("the server to exit", Duration::from_secs(10), || {
        Ok(server.child.try_wait()?.is_some())
    })?;
    Ok(())
}

#[test]
fn auto_detects_systemd_on_an_abstract_socket() -> Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let dir = tempfile::tempdir()?;
    let name = format!(
        "rampart-test-notify-{}-{}",
        std::process::id(),
        free_port()?
    );
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let sock = UnixDatagram::bind_addr(&addr)?;
    let server = spawn(
        dir.path(),
        &["--supervised", "auto"],
        &[("NOTIFY_SOCKET", &format!("@{name}"))],
    )?;
    receive_until(&sock, "READY=1\n", Duration::from_secs(30)).with_context(|| log(dir.path()))?;
    assert_eq!(
        info_field(server.port, "server", "process_supervised")?,
        "systemd"
    );
    Ok(())
}

#[test]
fn unsupervised_by_default_and_systemd_without_a_socket_says_so() -> Result<()> {
    let plain = Rampart::start(&[])?;
    assert_eq!(
        info_field(plain.port(), "server", "process_supervised")?,
        "no"
    );

    let dir = tempfile::tempdir()?;
    let server = spawn(dir.path(), &["--supervised", "systemd"], &[])?;
    wait_for("PONG", Duration::from_secs(30), || Ok(ping(server.port)))?;
    assert_eq!(
        info_field(server.port, "server", "process_supervised")?,
        "no"
    );
    let text = log(dir.path());
    assert!(
        text.contains("systemd supervision error: NOTIFY_SOCKET not found!"),
        "{text}"
    );
    Ok(())
}

/// The daemon's PID, killed on drop when the test fails before SHUTDOWN.
struct Daemon(u32);

impl Drop for Daemon {
    fn drop(&mut self) {
        if Path::new(&format!("/proc/{}", self.0)).exists() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

#[test]
fn daemonize_writes_the_daemons_pid_and_shutdown_removes_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pidfile = dir.path().join("rampart.pid");
    let port = free_port()?;
    let started = Instant::now();
    // Relative paths: the daemon stays in the directory it was started in.
    let out = Command::new(rampart_bin()?)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--dir", ".", "--daemonize", "yes"])
        .args(["--pidfile", "rampart.pid", "--logfile", "server.log"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()?;
    // The command returns as soon as the daemon is forked.
    assert!(out.status.success(), "{out:?}");
    assert!(out.stdout.is_empty(), "a daemon prints nothing: {out:?}");
    wait_for("the daemon's pidfile", Duration::from_secs(30), || {
        Ok(pidfile.exists() && ping(port))
    })
    .with_context(|| log(dir.path()))?;
    let pid: u32 = std::fs::read_to_string(&pidfile)?.trim().parse()?;
    let daemon = Daemon(pid);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(info_field(port, "server", "process_id")?, pid.to_string());
    // A session of its own, away from the test's (and its terminal).
    assert_ne!(session(&pid.to_string())?, session("self")?);
    let text = log(dir.path());
    assert!(text.contains("Ready to accept connections"), "{text}");

    let _ = RawConn::connect(port)?.cmd(&["SHUTDOWN", "NOSAVE"]);
    wait_for("the daemon to exit", Duration::from_secs(20), || {
        Ok(!Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
    })?;
    assert!(!pidfile.exists(), "SHUTDOWN left the pidfile behind");
    assert!(log(dir.path()).contains("Removing the pid file."));
    drop(daemon);
    Ok(())
}

/// The session id of `/proc/<pid>`.
fn session(pid: &str) -> Result<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name: state, ppid, pgrp, session.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(3))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no session in {stat}"))
}

#[test]
fn syslog_gets_every_line_with_ident_and_facility() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let sock_path = dir.path().join("log.sock");
    let sock = UnixDatagram::bind(&sock_path)?;
    let server = spawn(
        dir.path(),
        &[
            "--syslog-enabled",
            "yes",
            "--syslog-ident",
            "rampart-test",
            "--syslog-facility",
            "local3",
        ],
        &[("RAMPART_SYSLOG_SOCKET", &sock_path.to_string_lossy())],
    )?;
    wait_for("PONG", Duration::from_secs(30), || Ok(ping(server.port)))?;
    let pid = server.child.id();
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 8192];
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    while let Ok(n) = sock.recv(&mut buf) {
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    // local3 is facility 19; a notice (Rampart's INFO) is severity 5.
    let ready = "<157>";
    let ident = format!(" rampart-test[{pid}]: ");
    let line = lines
        .iter()
        .find(|l| l.contains("Ready to accept connections"))
        .ok_or_else(|| anyhow!("no ready line in {lines:?}"))?;
    assert!(line.starts_with(ready), "{line}");
    assert!(line.contains(&ident), "{line}");
    // RFC 3164: `<PRI>Mmm dd hh:mm:ss ident[pid]: msg`.
    let stamp = line
        .as_bytes()
        .get(ready.len()..ready.len() + 16)
        .unwrap_or_default();
    assert!(
        stamp.len() == 16 && stamp[3] == b' ' && stamp[9] == b':' && stamp[15] == b' ',
        "{line}"
    );
    assert!(lines.iter().all(|l| l.contains(&ident)), "{lines:?}");
    // The same lines reach the log file.
    assert!(log(dir.path()).contains("Ready to accept connections"));
    Ok(())
}

#[test]
fn banner_lists_mode_ports_encryption_and_memory_state() -> Result<()> {
    let server = Rampart::start(&[])?;
    let text = server.log();
    assert!(
        text.contains("oO0OoO0OoO0Oo Rampart is starting oO0OoO0OoO0Oo"),
        "{text}"
    );
    let running = format!(
        "Running mode=standalone, role=master, port={}, tls-port=0, supervised=no, version=",
        server.port()
    );
    assert!(text.contains(&running), "{text}");
    assert!(
        text.contains("Encryption at rest: on, provider=local, key-id="),
        "{text}"
    );
    assert!(
        text.contains("Memory locked: no, core dumps: disabled"),
        "{text}"
    );
    // Never key material: no long string of the keyring appears in the log.
    let keyring = std::fs::read_to_string(server.dir().join("keys/keyring.json"))?;
    let json: serde_json::Value = serde_json::from_str(&keyring)?;
    let mut secrets = Vec::new();
    collect_long_strings(&json, &mut secrets);
    assert!(!secrets.is_empty(), "no key material found in {keyring}");
    for s in secrets {
        assert!(!text.contains(&s), "the log holds a keyring string");
    }

    let port = free_port()?;
    let replica = Rampart::start(&[
        "--encryption-at-rest",
        "no",
        "--replicaof",
        "127.0.0.1",
        &port.to_string(),
    ])?;
    let text = replica.log();
    assert!(text.contains("role=replica"), "{text}");
    assert!(text.contains("Encryption at rest: off"), "{text}");
    Ok(())
}

fn collect_long_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if s.len() >= 32 => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_long_strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| collect_long_strings(v, out)),
        _ => {}
    }
}
