//! The server as a process: config files and command-line options, startup
//! errors and log lines, graceful shutdown on signals, and the connection
//! limits (query buffer, maxclients, timeout, requirepass).

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Result};
use rampart_tests::{rampart_bin, run_with_timeout, Rampart, RawConn};

fn config_get(r: &Rampart, name: &str) -> Result<String> {
    let mut c = r.redis_conn()?;
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(&mut c)?;
    Ok(v.get(1).cloned().unwrap_or_default())
}

#[test]
fn config_file_include_and_command_line() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let inc = dir.path().join("extra.conf");
    std::fs::write(&inc, "maxmemory-policy allkeys-lru\nhz 20\n")?;
    let conf = format!(
        "# a comment\ndatabases 4\ninclude {}\nrequirepass \"se cret\"\nhz 15\n",
        inc.display()
    );
    let r = Rampart::start_with_config(&conf, &["--hz", "30"])?;
    let mut c = r.conn()?;
    assert_eq!(
        c.cmd(&["GET", "k"])?,
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        c.cmd(&["AUTH", "wrong"])?,
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(c.cmd(&["AUTH", "se cret"])?, b"+OK\r\n");
    assert_eq!(
        c.cmd(&["SELECT", "4"])?,
        b"-ERR DB index is out of range\r\n"
    );
    assert_eq!(c.cmd(&["SELECT", "3"])?, b"+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory-policy"])?,
        b"*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n"
    );
    // The command line comes last and wins over the file.
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "hz"])?,
        b"*2\r\n$2\r\nhz\r\n$2\r\n30\r\n"
    );
    Ok(())
}

#[test]
fn bad_directive_stops_startup_with_redis_report() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "port 7777\nno-such-directive yes\n")?;
    let out = run_with_timeout(
        Command::new(rampart_bin()?).arg(&conf).stdin(Stdio::null()),
        Duration::from_secs(10),
    )?;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("*** FATAL CONFIG FILE ERROR"), "{err}");
    assert!(
        err.contains("Reading the configuration file, at line 2"),
        "{err}"
    );
    assert!(err.contains(">>> 'no-such-directive yes'"), "{err}");
    assert!(
        err.contains("Bad directive or wrong number of arguments"),
        "{err}"
    );

    let out = run_with_timeout(
        Command::new(rampart_bin()?)
            .args(["--port", "notanumber"])
            .stdin(Stdio::null()),
        Duration::from_secs(10),
    )?;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("argument couldn't be parsed into an integer"));
    Ok(())
}

#[test]
fn startup_log_and_graceful_sigterm() -> Result<()> {
    let mut r = Rampart::start(&[])?;
    let log = r.log();
    assert!(log.contains(env!("CARGO_PKG_VERSION")), "{log}");
    assert!(log.contains(&format!("pid={}", r.pid())), "{log}");
    assert!(log.contains(&format!("port={}", r.port())), "{log}");
    assert!(log.contains(&r.dir().display().to_string()), "{log}");
    let code = r.terminate(Duration::from_secs(10))?;
    assert_eq!(code, Some(0), "log: {}", r.log());
    assert!(r.log().contains("Received SIGTERM scheduling shutdown"));
    Ok(())
}

/// `--save ""` after a config file's save lines turns snapshots off, as
/// with redis-server 7.0 (which also reports `save` as empty): no final
/// save on SIGTERM.
#[test]
fn command_line_save_empty_clears_config_file_rules() -> Result<()> {
    let mut r = Rampart::start_with_config("save 900 1\nsave 300 10\n", &["--save", ""])?;
    assert_eq!(config_get(&r, "save")?, "");
    let code = r.terminate(Duration::from_secs(10))?;
    let log = r.log();
    assert_eq!(code, Some(0), "log: {log}");
    assert!(!log.contains("Saving the final RDB snapshot"), "log: {log}");
    Ok(())
}

/// SIGTERM while the clock task runs often and a final save happens: the
/// process must end with status 0 every time. It used to abort now and
/// then, when the clock task polled a timer on a runtime being torn down.
#[test]
fn sigterm_exit_is_clean_every_time() -> Result<()> {
    let dir = tempfile::tempdir()?;
    for round in 0..6 {
        let mut r = Rampart::start_in(dir.path(), &["--save", "60 5", "--hz", "500"])?;
        let mut c = r.redis_client()?.get_connection()?;
        redis::cmd("SET")
            .arg("round")
            .arg(round)
            .query::<()>(&mut c)?;
        let code = r.terminate(Duration::from_secs(10))?;
        let log = r.log();
        assert_eq!(code, Some(0), "round {round}, log: {log}");
        assert!(!log.contains("panicked"), "round {round}, log: {log}");
        assert!(
            log.contains("DB saved on disk"),
            "round {round}, log: {log}"
        );
    }
    Ok(())
}

/// Names of the server's connection threads, from /proc.
fn io_threads(r: &Rampart) -> Result<usize> {
    let mut n = 0;
    for t in std::fs::read_dir(format!("/proc/{}/task", r.pid()))? {
        let comm = std::fs::read_to_string(t?.path().join("comm"))?;
        n += usize::from(comm.starts_with("rampart-io-"));
    }
    Ok(n)
}

#[test]
fn io_threads_sets_the_connection_threads() -> Result<()> {
    // Unset: one per core but one (at least one), and CONFIG GET says so.
    let r = Rampart::start(&[])?;
    let cores = std::thread::available_parallelism()?.get();
    let auto = cores.saturating_sub(1).max(1);
    assert_eq!(config_get(&r, "io-threads")?, auto.to_string());
    assert_eq!(io_threads(&r)?, auto);
    // Given: exactly that many, and every one of them serves clients.
    let r = Rampart::start(&["--io-threads", "3"])?;
    assert_eq!(config_get(&r, "io-threads")?, "3");
    assert_eq!(io_threads(&r)?, 3);
    let mut conns = Vec::new();
    for i in 0..6 {
        let mut c = r.conn()?;
        let reply = c.cmd(&["INCR", "n"])?;
        assert_eq!(reply, format!(":{}\r\n", i + 1).into_bytes());
        conns.push(c);
    }
    Ok(())
}

fn rss(c: &mut redis::Connection) -> Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query(c)?;
    let v = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_rss:"))
        .and_then(|v| v.trim().parse().ok());
    v.ok_or_else(|| anyhow::anyhow!("no used_memory_rss in {info}"))
}

#[test]
fn flushall_gives_memory_back_to_the_system() -> Result<()> {
    // jemalloc-bg-thread yes (the default, as in Redis): jemalloc's
    // background threads purge the freed pages within its decay time.
    // With `no`, RSS stays at about 80% of its peak for over a minute.
    let r = Rampart::start(&["--enable-debug-command", "yes"])?;
    let mut c = r.redis_conn()?;
    let empty = rss(&mut c)?;
    redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(1_000_000)
        .arg("key")
        .arg(200)
        .query::<()>(&mut c)?;
    let full = rss(&mut c)?;
    ensure!(full > empty + 200_000_000, "populated: {empty} -> {full}");
    redis::cmd("FLUSHALL").arg("SYNC").query::<()>(&mut c)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut now = rss(&mut c)?;
    while now > empty + (full - empty) / 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        now = rss(&mut c)?;
    }
    ensure!(
        now <= empty + (full - empty) / 4,
        "RSS stayed at {now} after FLUSHALL (empty {empty}, full {full})"
    );
    Ok(())
}

#[test]
fn shutdown_command_ends_the_process() -> Result<()> {
    let mut r = Rampart::start(&[])?;
    let mut c = r.conn()?;
    c.send(&["SHUTDOWN", "NOSAVE"])?;
    let (reply, closed) = c.read_until_close(Duration::from_secs(5))?;
    assert!(reply.is_empty() && closed, "{reply:?}");
    let exit = r.wait_exit(Duration::from_secs(10))?;
    assert_eq!(exit.and_then(|s| s.code()), Some(0));
    Ok(())
}

#[test]
fn query_buffer_limit_closes_only_that_client() -> Result<()> {
    let r = Rampart::start(&["--client-query-buffer-limit", "1mb"])?;
    let mut big = r.conn()?;
    // Announce a 4 MiB argument and send more than the limit of it.
    big.send_raw(b"*2\r\n$3\r\nSET\r\n$4194304\r\n")?;
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..24 {
        if big.send_raw(&chunk).is_err() {
            break;
        }
    }
    let (_, closed) = big.read_until_close(Duration::from_secs(5))?;
    assert!(closed, "the client over the limit must be closed");
    let mut other = r.conn()?;
    assert_eq!(other.cmd(&["PING"])?, b"+PONG\r\n");
    Ok(())
}

#[test]
fn maxclients_refuses_extra_connections() -> Result<()> {
    let r = Rampart::start(&["--maxclients", "2"])?;
    let mut a = r.conn()?;
    assert_eq!(a.cmd(&["PING"])?, b"+PONG\r\n");
    // The start's readiness probe has closed, but it holds a slot until
    // the server reads its end (in Redis too): wait for that first.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&a.cmd(&["INFO", "clients"])?)
        .contains("connected_clients:1\r\n")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the probe's slot was never freed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut b = r.conn()?;
    assert_eq!(b.cmd(&["PING"])?, b"+PONG\r\n");
    let mut c = r.conn()?;
    let (reply, closed) = c.read_until_close(Duration::from_secs(5))?;
    assert_eq!(reply, b"-ERR max number of clients reached\r\n");
    assert!(closed);
    Ok(())
}

#[test]
fn idle_timeout_closes_clients() -> Result<()> {
    let r = Rampart::start(&["--timeout", "1"])?;
    let mut c = r.conn()?;
    assert_eq!(c.cmd(&["PING"])?, b"+PONG\r\n");
    let (_, closed) = c.read_until_close(Duration::from_secs(5))?;
    assert!(
        closed,
        "an idle client must be closed after `timeout` seconds"
    );
    Ok(())
}

#[test]
fn config_rewrite_persists_changes() -> Result<()> {
    let r = Rampart::start_with_config("# keep me\nhz 12\n", &[])?;
    let mut c = r.conn()?;
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "hz", "25", "maxmemory", "2mb"])?,
        b"+OK\r\n"
    );
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"])?, b"+OK\r\n");
    let text = std::fs::read_to_string(r.dir().join("rampart.conf"))?;
    assert!(text.contains("# keep me"), "{text}");
    assert!(text.contains("hz 25"), "{text}");
    assert!(text.contains("maxmemory 2097152"), "{text}");
    assert!(!text.contains("hz 12"), "{text}");
    assert_eq!(config_get(&r, "maxmemory")?, "2097152");
    let _ = RawConn::connect(r.port())?;
    Ok(())
}

#[test]
fn first_start_creates_the_service_managed_keyring() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let r = Rampart::start(&[])?;
    let ring = r.dir().join("keys").join("keyring.json");
    let meta = std::fs::metadata(&ring)?;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let log = r.log();
    assert!(log.contains("Created a local keyring at"), "{log}");
    assert!(
        log.contains("does not protect against someone who holds both"),
        "{log}"
    );
    drop(r);

    let off = Rampart::start(&["--encryption-at-rest", "no"])?;
    assert!(!off.dir().join("keys").exists());
    assert!(off.log().contains("Encryption at rest is off"));
    Ok(())
}

#[test]
fn rampart_cli_takes_keys_from_the_server_config() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = rampart_tests::workspace_root().join("target/debug/rampart");
    ensure!(
        cli.exists(),
        "{} missing: run cargo build --bins",
        cli.display()
    );
    let ring = dir.path().join("ring.json");
    let conf = dir.path().join("rampart.conf");
    std::fs::write(
        &conf,
        format!(
            "port 7777\nkms-provider local\nkms-key-file {}\n",
            ring.display()
        ),
    )?;
    let run = |args: &[&str]| -> Result<std::process::Output> {
        run_with_timeout(
            Command::new(&cli)
                .args(args)
                .current_dir(dir.path())
                .stdin(Stdio::null()),
            Duration::from_secs(30),
        )
    };
    let out = run(&[
        "keyring",
        "init",
        "--file",
        ring.to_str().unwrap_or_default(),
    ])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.path().join("plain.bin"), b"the marker value 12345")?;
    let conf_s = conf.to_str().unwrap_or_default();
    let out = run(&[
        "snapshot",
        "encrypt",
        "plain.bin",
        "-o",
        "enc.bin",
        "--config",
        conf_s,
    ])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let enc = std::fs::read(dir.path().join("enc.bin"))?;
    assert!(
        !enc.windows(6).any(|w| w == b"marker"),
        "ciphertext holds plaintext"
    );
    let out = run(&[
        "snapshot", "decrypt", "enc.bin", "-o", "dec.bin", "--config", conf_s,
    ])?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path().join("dec.bin"))?,
        b"the marker value 12345"
    );
    let out = run(&[
        "snapshot",
        "decrypt",
        "enc.bin",
        "-o",
        "x.bin",
        "--config",
        "/nonexistent.conf",
    ])?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("can't open config file"));
    Ok(())
}

/// Whether a new connection to `ip:port` is accepted and answers PING.
fn answers(ip: [u8; 4], port: u16) -> bool {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from((ip, port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// CONFIG SET of `port` and `bind` on a running server, as steps: the
/// replies (ports written as names) and which addresses answer after each.
fn rebinding(s: &rampart_tests::ServerProcess) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let first = s.port();
    let second = rampart_tests::free_port()?;
    // A port someone else holds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let taken_port = taken.local_addr()?.port();
    let name = |p: u16| match p {
        p if p == first => "first".to_string(),
        p if p == second => "second".to_string(),
        p if p == taken_port => "taken".to_string(),
        p => p.to_string(),
    };
    let mut c = s.conn()?;
    let lo = [127, 0, 0, 1];
    let lo2 = [127, 0, 0, 2];
    let mut step = |c: &mut RawConn, args: &[&str]| -> Result<()> {
        let shown: Vec<String> = args
            .iter()
            .map(|a| match a.parse::<u16>() {
                Ok(p) if args[..2] == ["CONFIG", "SET"] && p > 1024 => name(p),
                _ => a.to_string(),
            })
            .collect();
        let reply = String::from_utf8_lossy(&c.cmd(args)?)
            .replace(&format!("$5\r\n{second}"), "$5\r\nsecond");
        out.push(format!(
            "{} -> {} | first {} second {} second@127.0.0.2 {}",
            shown.join(" "),
            reply.trim_end(),
            answers(lo, first),
            answers(lo, second),
            answers(lo2, second)
        ));
        Ok(())
    };
    step(&mut c, &["CONFIG", "SET", "port", &second.to_string()])?;
    // The connection that asked stays, on the old port.
    step(&mut c, &["CONFIG", "SET", "port", &taken_port.to_string()])?;
    step(&mut c, &["CONFIG", "GET", "port"])?;
    step(&mut c, &["CONFIG", "SET", "bind", "127.0.0.2"])?;
    step(&mut c, &["CONFIG", "SET", "bind", "192.0.2.1"])?;
    step(&mut c, &["CONFIG", "GET", "bind"])?;
    step(&mut c, &["CONFIG", "SET", "bind", "127.0.0.1 -::1"])?;
    let mut again = RawConn::connect(second)?;
    step(&mut again, &["CONFIG", "SET", "port", &first.to_string()])?;
    let info = String::from_utf8_lossy(&again.cmd(&["INFO", "server"])?).into_owned();
    let port = info
        .lines()
        .find_map(|l| l.strip_prefix("tcp_port:"))
        .unwrap_or_default()
        .trim()
        .parse::<u16>()
        .unwrap_or(0);
    out.push(format!("tcp_port {}", name(port)));
    drop(taken);
    Ok(out)
}

#[test]
fn config_set_port_and_bind_rebind_as_redis_does() -> Result<()> {
    let redis = rampart_tests::RedisOracle::start()?;
    let want = rebinding(&redis)?;
    let r = Rampart::start(&[])?;
    let got = rebinding(&r)?;
    assert_eq!(got, want, "rampart's log:\n{}", r.log());
    assert!(
        want[0].ends_with("-> +OK | first false second true second@127.0.0.2 false"),
        "{want:?}"
    );
    assert!(
        want.last().is_some_and(|l| l == "tcp_port first"),
        "{want:?}"
    );
    Ok(())
}

/// DEBUG PAUSE-CRON stops the periodic jobs: a key past its TTL stays
/// (DBSIZE counts it) until the cron runs again and removes it.
fn pause_cron(s: &rampart_tests::ServerProcess) -> Result<Vec<String>> {
    let mut c = s.conn()?;
    let mut out = Vec::new();
    let mut say = |r: Vec<u8>| out.push(String::from_utf8_lossy(&r).trim_end().to_string());
    say(c.cmd(&["DEBUG", "PAUSE-CRON", "1"])?);
    say(c.cmd(&["SET", "k", "v", "PX", "20"])?);
    std::thread::sleep(Duration::from_millis(400));
    say(c.cmd(&["DBSIZE"])?);
    say(c.cmd(&["DEBUG", "PAUSE-CRON", "0"])?);
    let start = std::time::Instant::now();
    while c.cmd(&["DBSIZE"])? != b":0\r\n" && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    say(c.cmd(&["DBSIZE"])?);
    say(c.cmd(&["DEBUG", "PAUSE-CRON"])?);
    Ok(out)
}

#[test]
fn debug_pause_cron_stops_active_expiry_as_in_redis() -> Result<()> {
    let args = ["--enable-debug-command", "yes"];
    let redis = rampart_tests::RedisOracle::start_with(&args)?;
    let want = pause_cron(&redis)?;
    let rampart = Rampart::start(&args)?;
    let got = pause_cron(&rampart)?;
    assert_eq!(got, want);
    assert_eq!(want[2], ":1", "{want:?}");
    assert_eq!(want[4], ":0", "{want:?}");
    Ok(())
}

/// DEBUG SEGFAULT or DEBUG PANIC on a server: the signal that ended it and
/// which of Redis's crash report lines its log holds.
fn crash(
    s: &mut rampart_tests::ServerProcess,
    how: &str,
) -> Result<(Option<i32>, Vec<&'static str>)> {
    use std::os::unix::process::ExitStatusExt;
    let mut c = s.conn()?;
    c.send(&["DEBUG", how])?;
    let status = s.wait_exit(Duration::from_secs(20))?;
    ensure!(status.is_some(), "{how}: still running; log:\n{}", s.log());
    let log = s.log();
    Ok((
        status.and_then(|st| st.signal().or(st.code())),
        report_marks(&log),
    ))
}

/// Which of Redis's crash report lines a log holds.
fn report_marks(log: &str) -> Vec<&'static str> {
    let marks = [
        "=== REDIS BUG REPORT START: Cut & paste starting from here ===",
        "crashed by signal: 11",
        // DEBUG SEGFAULT writes to a read-only page: SEGV_ACCERR.
        "crashed by signal: 11, si_code: 2",
        "crashed by signal: 7, si_code: 0",
        "crashed by signal: 8, si_code: 0",
        "crashed by signal: 4, si_code: 0",
        "Accessing address: 0x",
        "Killed by PID: ",
        "Guru Meditation: DEBUG PANIC called at Unix time",
        "=== REDIS BUG REPORT END. Make sure to include from START to END. ===",
    ];
    marks.into_iter().filter(|m| log.contains(m)).collect()
}

/// A fatal signal sent by another process (`kill -SEGV`, `-BUS`, `-FPE`,
/// `-ILL`) leaves Redis's crash report, naming the sender, and ends the
/// server by that signal, as redis-server does.
#[test]
fn a_fatal_signal_leaves_a_crash_report_as_redis_does() -> Result<()> {
    use std::os::unix::process::ExitStatusExt;
    for (sig, num) in [("SEGV", 11), ("BUS", 7), ("FPE", 8), ("ILL", 4)] {
        let kill = |s: &mut rampart_tests::ServerProcess| -> Result<_> {
            let st = std::process::Command::new("kill")
                .args([&format!("-{sig}"), &s.pid().to_string()])
                .status()?;
            ensure!(st.success(), "kill -{sig} failed");
            let status = s.wait_exit(Duration::from_secs(20))?;
            Ok((status.and_then(|st| st.signal()), report_marks(&s.log())))
        };
        // Without redis-server's racy fast memory test, as above.
        let args = ["--crash-memcheck-enabled", "no"];
        let seen = [
            kill(&mut *rampart_tests::RedisOracle::start_with(&args)?)?,
            kill(&mut *Rampart::start(&args)?)?,
        ];
        assert_eq!(seen[1], seen[0], "kill -{sig}");
        assert_eq!(seen[0].0, Some(num), "kill -{sig}");
        assert!(seen[0].1.contains(&"Killed by PID: "), "{:?}", seen[0]);
    }
    Ok(())
}

/// Redis's hidden test directives: accepted in a config, shown by CONFIG
/// GET only under their exact name; `use-exit-on-panic yes` turns DEBUG
/// PANIC's abort into exit code 1.
fn hidden_directives(s: &mut rampart_tests::ServerProcess) -> Result<Vec<String>> {
    let mut c = s.conn()?;
    let mut out = Vec::new();
    let all = String::from_utf8_lossy(&c.cmd(&["CONFIG", "GET", "*"])?).into_owned();
    for d in [
        "use-exit-on-panic",
        "rdb-key-save-delay",
        "key-load-delay",
        "watchdog-period",
        "loading-process-events-interval-bytes",
    ] {
        out.push(format!("{d} in *: {}", all.contains(d)));
        out.push(String::from_utf8_lossy(&c.cmd(&["CONFIG", "GET", d])?).into_owned());
    }
    out.push(
        String::from_utf8_lossy(&c.cmd(&[
            "CONFIG",
            "SET",
            "loading-process-events-interval-bytes",
            "10",
        ])?)
        .into_owned(),
    );
    out.push(
        String::from_utf8_lossy(&c.cmd(&["CONFIG", "SET", "use-exit-on-panic", "yes"])?)
            .into_owned(),
    );
    let (end, _) = crash(s, "PANIC")?;
    out.push(format!("ended: {end:?}"));
    Ok(out)
}

#[test]
fn hidden_test_directives_are_accepted_as_redis_does() -> Result<()> {
    let args = [
        "--enable-debug-command",
        "yes",
        "--key-load-delay",
        "0",
        "--rdb-key-save-delay",
        "0",
        "--watchdog-period",
        "0",
        "--loading-process-events-interval-bytes",
        "2097152",
        // The report ends this test too: without the racy memory test.
        "--crash-memcheck-enabled",
        "no",
    ];
    let mut redis = rampart_tests::RedisOracle::start_with(&args)?;
    let want = hidden_directives(&mut redis)?;
    let mut rampart = Rampart::start(&args)?;
    let got = hidden_directives(&mut rampart)?;
    assert_eq!(got, want, "rampart's log:\n{}", rampart.log());
    assert_eq!(want.last().map(String::as_str), Some("ended: Some(1)"));
    Ok(())
}

#[test]
fn debug_segfault_and_panic_leave_a_crash_report_as_redis_does() -> Result<()> {
    // redis-server 7.0's fast memory test, part of its report, races the
    // bio threads' exit and can die by SIGSEGV itself on a busy machine:
    // the oracle runs without it.
    let args = [
        "--enable-debug-command",
        "yes",
        "--crash-memcheck-enabled",
        "no",
    ];
    for how in ["SEGFAULT", "PANIC"] {
        let mut redis = rampart_tests::RedisOracle::start_with(&args)?;
        let want = crash(&mut redis, how)?;
        let mut rampart = Rampart::start(&args)?;
        let got = crash(&mut rampart, how)?;
        assert_eq!(
            got,
            want,
            "{how}; rampart's log:\n{}\nredis's log:\n{}",
            rampart.log(),
            redis.log()
        );
        assert_eq!(want.0, Some(if how == "PANIC" { 6 } else { 11 }), "{how}");
        assert_eq!(
            want.1.len(),
            if how == "PANIC" { 3 } else { 5 },
            "{how}: {want:?}"
        );
        // The report never holds data: no core file is left either.
        ensure!(!rampart.dir().join("core").exists());
    }
    Ok(())
}

/// The DEBUG subcommands client test suites drive: ERROR (injected error
/// replies), LOG, STRINGMATCH-TEST, and their arity errors.
fn debug_for_clients(s: &rampart_tests::ServerProcess) -> Result<Vec<String>> {
    let mut c = s.conn()?;
    // redis-server's STRINGMATCH-TEST fuzzes for about 7 s on an idle core.
    c.set_read_timeout(Duration::from_secs(60))?;
    let mut out = Vec::new();
    for args in [
        &[
            "DEBUG",
            "ERROR",
            "LOADING Redis is loading the dataset in memory",
        ][..],
        &["DEBUG", "ERROR", "OOM command not allowed"],
        &["DEBUG", "ERROR", "two\r\nlines"],
        &["DEBUG", "ERROR"],
        &["DEBUG", "LOG", "marker-from-the-test"],
        &["DEBUG", "STRINGMATCH-TEST"],
        &["DEBUG", "CHANGE-REPL-ID", "x"],
        &["DEBUG", "REPLICATE"],
    ] {
        out.push(String::from_utf8_lossy(&c.cmd(args)?).into_owned());
    }
    // The line reaches the log file a moment after the reply under load.
    rampart_tests::wait_for("the DEBUG LOG line", Duration::from_secs(10), || {
        Ok(s.log().contains("DEBUG LOG: marker-from-the-test"))
    })
    .map_err(|e| anyhow::anyhow!("{e}; log:\n{}", s.log()))?;
    Ok(out)
}

#[test]
fn debug_error_log_and_stringmatch_answer_as_redis_does() -> Result<()> {
    let args = ["--enable-debug-command", "yes"];
    let redis = rampart_tests::RedisOracle::start_with(&args)?;
    let want = debug_for_clients(&redis)?;
    let rampart = Rampart::start(&args)?;
    let got = debug_for_clients(&rampart)?;
    assert_eq!(got, want);
    assert_eq!(
        want[0],
        "-LOADING Redis is loading the dataset in memory\r\n"
    );
    Ok(())
}
