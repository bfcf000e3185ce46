//! DEBUG's subcommands against redis-server 7.0.15 started with
//! `--enable-debug-command yes`: every reply and error step by step, with
//! the figures that describe each server's own memory layout masked (their
//! shape still compared), and the behaviour the switches promise: RESTORE
//! and noscript commands in EVAL before and after the switch, ASSERT and
//! OOM ending the process with Redis's report, RESTART coming back.

use std::time::Duration;

use anyhow::{bail, ensure, Result};
use rampart_tests::cluster::cmd;
use rampart_tests::mask_digits;
use rampart_tests::notify::{both, s};
use rampart_tests::{wait_for, Rampart, RedisOracle, ServerProcess};

const DEBUG_ON: &[&str] = &["--enable-debug-command", "yes"];

/// A hash-table statistics reply reduced to its shape: the header lines
/// masked, the element count kept, the distribution lines (whose number
/// depends on chaining) checked for their form and dropped.
fn stats_shape(reply: &str) -> Result<String> {
    let mut out = Vec::new();
    for line in reply.split('\n') {
        if line.starts_with("   ") {
            let m = mask_digits(line);
            if m != "   N: N (N.N%)" {
                bail!("not a distribution line: {line:?}");
            }
            continue;
        }
        if line.starts_with(" number of elements:") {
            out.push(line.to_string());
        } else {
            out.push(mask_digits(line));
        }
    }
    Ok(out.join("\n"))
}

/// The same values on both servers, in the encodings the structure
/// subcommands look at (checked equal by OBJECT ENCODING below).
fn fill(srv: &ServerProcess) -> Result<()> {
    let mut c = srv.conn()?;
    c.cmd(&["SET", "emb", "hello"])?;
    c.cmd(&["SET", "int", "12345"])?;
    c.cmd(&["SET", "raw", &"r".repeat(100)])?;
    c.cmd(&["SET", "grown", "a"])?;
    c.cmd(&["APPEND", "grown", &"b".repeat(60)])?;
    c.cmd(&["RPUSH", "list", "a", "b", "c"])?;
    c.cmd(&["HSET", "hsmall", "f", "v"])?;
    c.cmd(&["HSET", "hbig", "f", &"v".repeat(100)])?;
    c.cmd(&["SADD", "sint", "1", "2", "3"])?;
    c.cmd(&["SADD", "sstr", "a", "b", "c"])?;
    c.cmd(&["ZADD", "zsmall", "1", "a"])?;
    c.cmd(&["ZADD", "zbig", "1", &"m".repeat(100), "2", "b"])?;
    c.cmd(&["XADD", "stream", "1-1", "f", "v"])?;
    c.cmd(&["SET", "vol", "v", "EX", "1000"])?;
    Ok(())
}

const KEYS: &[&str] = &[
    "emb", "int", "raw", "grown", "list", "hsmall", "hbig", "sint", "sstr", "zsmall", "zbig",
    "stream", "nosuch",
];

#[test]
fn structure_subcommands_match_redis() -> Result<()> {
    both(DEBUG_ON, |srv| {
        fill(srv)?;
        let mut c = srv.conn()?;
        let mut t = Vec::new();
        for k in KEYS {
            t.push(format!("{k} {}", s(c.cmd(&["OBJECT", "ENCODING", k])?)));
            let sds = s(c.cmd(&["DEBUG", "SDSLEN", k])?);
            if let Some(rest) = sds.strip_prefix("+key_sds_len:") {
                // Lengths are the data's, the same on both; the rest is layout.
                let key_len = rest.split(',').next().unwrap_or_default();
                let val_len = rest
                    .split("val_sds_len:")
                    .nth(1)
                    .and_then(|r| r.split(',').next())
                    .unwrap_or_default();
                t.push(format!(
                    "sdslen {k} {key_len} {val_len} {}",
                    mask_digits(&sds)
                ));
            } else {
                t.push(format!("sdslen {k} {sds}"));
            }
            t.push(s(c.cmd(&["DEBUG", "LISTPACK", k])?));
            t.push(s(c.cmd(&["DEBUG", "QUICKLIST", k])?));
            t.push(s(c.cmd(&["DEBUG", "QUICKLIST", k, "1"])?));
            let ht = s(c.cmd(&["DEBUG", "HTSTATS-KEY", k])?);
            t.push(if ht.starts_with('-') {
                ht
            } else {
                stats_shape(&ht)?
            });
        }
        t.push(s(c.cmd(&["DEBUG", "QUICKLIST", "list", "0", "5"])?));
        t.push(s(c.cmd(&["DEBUG", "SDSLEN"])?));
        t.push(s(c.cmd(&["DEBUG", "HTSTATS-KEY", "sstr", "full"])?));
        t.push(stats_shape(&s(c.cmd(&["DEBUG", "HTSTATS", "0"])?))?);
        t.push(stats_shape(&s(c.cmd(&["DEBUG", "HTSTATS", "3"])?))?);
        for bad in ["16", "-1", "abc"] {
            t.push(s(c.cmd(&["DEBUG", "HTSTATS", bad])?));
        }
        t.push(s(c.cmd(&["DEBUG", "HTSTATS", "0", "full"])?));
        t.push(mask_digits(&s(c.cmd(&["DEBUG", "STRUCTSIZE"])?)));
        t.push(s(c.cmd(&["DEBUG", "STRUCTSIZE", "x"])?));
        t.push(s(c.cmd(&["DEBUG", "CLIENT-EVICTION"])?));
        c.cmd(&["CONFIG", "SET", "maxmemory-clients", "10mb"])?;
        // Which bucket a client's buffers fall in is each server's own
        // figure; the buckets and the line layout are Redis's.
        let ev = mask_digits(&s(c.cmd(&["DEBUG", "CLIENT-EVICTION"])?));
        t.push(ev.split_whitespace().collect::<Vec<_>>().join(" "));
        t.push(s(c.cmd(&["DEBUG", "CLIENT-EVICTION", "x"])?));
        Ok(t)
    })
}

#[test]
fn switch_subcommands_match_redis() -> Result<()> {
    both(DEBUG_ON, |srv| {
        let mut c = srv.conn()?;
        let mut t = Vec::new();
        t.push(s(c.cmd(&["DEBUG", "HELP"])?));
        t.push(s(c.cmd(&["DEBUG", "HELP", "x"])?));
        let steps: &[&[&str]] = &[
            &["QUICKLIST-PACKED-THRESHOLD", "0"],
            &["QUICKLIST-PACKED-THRESHOLD", "1"],
            &["QUICKLIST-PACKED-THRESHOLD", "1gb"],
            &["QUICKLIST-PACKED-THRESHOLD", "4gb"],
            &["QUICKLIST-PACKED-THRESHOLD", "5gb"],
            &["QUICKLIST-PACKED-THRESHOLD", "abc"],
            &["QUICKLIST-PACKED-THRESHOLD", "-1"],
            &["QUICKLIST-PACKED-THRESHOLD"],
            &["SET-SKIP-CHECKSUM-VALIDATION", "x"],
            &["SET-SKIP-CHECKSUM-VALIDATION", "0"],
            &["SET-SKIP-CHECKSUM-VALIDATION"],
            &["SET-DISABLE-DENY-SCRIPTS", "0"],
            &["SET-DISABLE-DENY-SCRIPTS", "0", "1"],
            &["AOF-FLUSH-SLEEP", "0"],
            &["REPLYBUFFER", "PEAK-RESET-TIME", "NEVER"],
            &["REPLYBUFFER", "PEAK-RESET-TIME", "reset"],
            &["REPLYBUFFER", "PEAK-RESET-TIME", "100"],
            &["REPLYBUFFER", "PEAK-RESET-TIME", "abc"],
            &["REPLYBUFFER", "RESIZING", "1"],
            &["REPLYBUFFER", "RESIZING"],
            &["REPLYBUFFER", "FOO", "1"],
            &["LEAK", "some bytes"],
            &["LEAK"],
            &["DROP-CLUSTER-PACKET-FILTER", "1"],
            &["DROP-CLUSTER-PACKET-FILTER", "-1"],
            &["DROP-CLUSTER-PACKET-FILTER", "x"],
            &["CLUSTERLINK", "KILL", "to", "abc"],
            &["CLUSTERLINK", "FOO", "to", "abc"],
            &["CLUSTERLINK", "KILL", "to"],
            &["CONFIG-REWRITE-FORCE-ALL"],
            &["CONFIG-REWRITE-FORCE-ALL", "x"],
            &["RESTART", "x"],
            &["CRASH-AND-RECOVER", "x"],
            &["MALLCTL", "arenas.narenas"],
            &["MALLCTL", "no.such.thing"],
            &["MALLCTL", "arenas.narenas", "5"],
            &["MALLCTL", "arenas.narenas", "x"],
            &["MALLCTL", "thread.tcache.flush", "1"],
            &["MALLCTL"],
            &["MALLCTL-STR", "no.such.thing"],
            &["MALLCTL-STR"],
            &["PAUSE-CRON", "0"],
            &["NO-SUCH-SUBCOMMAND"],
        ];
        for step in steps {
            let mut args = vec!["DEBUG"];
            args.extend_from_slice(step);
            t.push(format!("{step:?} {}", s(c.cmd(&args)?)));
        }
        // Figures: the epoch counter and jemalloc's version string differ
        // (Rampart's jemalloc is tikv's build of 5.3.0), their form not.
        t.push(mask_digits(&s(c.cmd(&["DEBUG", "MALLCTL", "epoch", "1"])?)));
        let v = s(c.cmd(&["DEBUG", "MALLCTL-STR", "version"])?);
        t.push(v.split('-').next().unwrap_or_default().to_string());
        let v = s(c.cmd(&["DEBUG", "MALLCTL-STR", "version", "x"])?);
        t.push(v.split('-').next().unwrap_or_default().to_string());
        t.push(s(c.cmd(&["PING"])?));
        Ok(t)
    })
}

#[test]
fn restore_checksum_is_skipped_only_when_asked() -> Result<()> {
    both(DEBUG_ON, |srv| {
        let mut c = srv.conn()?;
        let mut t = Vec::new();
        c.cmd(&["SET", "k", "some value"])?;
        let mut r = redis::Client::open(srv.url())?.get_connection()?;
        let mut payload: Vec<u8> = redis::cmd("DUMP").arg("k").query(&mut r)?;
        let n = payload.len();
        payload[n - 1] ^= 0xff;
        let restore = |r: &mut redis::Connection| -> String {
            match redis::cmd("RESTORE")
                .arg("k2")
                .arg(0)
                .arg(&payload)
                .query::<String>(r)
            {
                Ok(v) => v,
                Err(e) => e.to_string(),
            }
        };
        t.push(restore(&mut r));
        t.push(s(c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"])?));
        t.push(restore(&mut r));
        t.push(s(c.cmd(&["GET", "k2"])?));
        t.push(s(c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "0"])?));
        t.push(s(c.cmd(&["DEL", "k2"])?));
        t.push(restore(&mut r));
        Ok(t)
    })
}

#[test]
fn function_restore_checksum_is_skipped_only_when_asked() -> Result<()> {
    both(DEBUG_ON, |srv| {
        let mut c = srv.conn()?;
        let mut t = Vec::new();
        let lib = "#!lua name=lib\nredis.register_function('f', function() return 7 end)";
        t.push(s(c.cmd(&["FUNCTION", "LOAD", lib])?));
        let mut r = redis::Client::open(srv.url())?.get_connection()?;
        let mut payload: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut r)?;
        let n = payload.len();
        payload[n - 1] ^= 0xff;
        let restore = |r: &mut redis::Connection| -> String {
            match redis::cmd("FUNCTION")
                .arg("RESTORE")
                .arg(&payload)
                .arg("REPLACE")
                .query::<String>(r)
            {
                Ok(v) => v,
                Err(e) => e.to_string(),
            }
        };
        t.push(s(c.cmd(&["FUNCTION", "FLUSH"])?));
        t.push(restore(&mut r));
        t.push(s(c.cmd(&["FCALL", "f", "0"])?));
        t.push(s(c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"])?));
        t.push(restore(&mut r));
        t.push(s(c.cmd(&["FCALL", "f", "0"])?));
        t.push(s(c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "0"])?));
        t.push(s(c.cmd(&["FUNCTION", "FLUSH"])?));
        t.push(restore(&mut r));
        t.push(s(c.cmd(&["FUNCTION", "LIST"])?));
        Ok(t)
    })
}

/// An RDB file with a broken CRC-64 loads (DEBUG RELOAD NOSAVE) only under
/// SET-SKIP-CHECKSUM-VALIDATION 1, with the replies redis-server gives.
/// Rampart runs without encryption here: inside the envelope the file is
/// authenticated, and a hand-edited byte is refused whatever the flag.
/// (What a failed load leaves in memory differs on purpose: Redis keeps
/// the keys read before the bad CRC, Rampart keeps the dataset it had.)
#[test]
fn rdb_load_checksum_is_skipped_only_when_asked() -> Result<()> {
    let steps = |srv: &ServerProcess| -> Result<Vec<String>> {
        let mut c = srv.conn()?;
        let mut t = Vec::new();
        c.cmd(&["SET", "k", "some value"])?;
        c.cmd(&["RPUSH", "l", "a", "b"])?;
        t.push(s(c.cmd(&["SAVE"])?));
        let path = srv.dir().join("dump.rdb");
        let mut file = std::fs::read(&path)?;
        let n = file.len();
        file[n - 1] ^= 0xff;
        std::fs::write(&path, &file)?;
        t.push(s(c.cmd(&["FLUSHALL"])?));
        t.push(s(c.cmd(&["DEBUG", "RELOAD", "NOSAVE"])?));
        t.push(s(c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"])?));
        t.push(s(c.cmd(&["DEBUG", "RELOAD", "NOSAVE"])?));
        t.push(s(c.cmd(&["DBSIZE"])?));
        t.push(s(c.cmd(&["LRANGE", "l", "0", "-1"])?));
        // NOFLUSH MERGE: the file's keys replace those in memory, the
        // others stay.
        c.cmd(&["SET", "k", "changed"])?;
        c.cmd(&["SET", "x", "kept"])?;
        t.push(s(c.cmd(&["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"])?));
        t.push(s(c.cmd(&["MGET", "k", "x"])?));
        t.push(s(c.cmd(&["DBSIZE"])?));
        t.push(s(c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "0"])?));
        t.push(s(c.cmd(&["DEBUG", "RELOAD", "NOSAVE"])?));
        Ok(t)
    };
    // No save rules, so FLUSHALL leaves the broken file in place.
    let redis_args = ["--enable-debug-command", "yes", "--save", ""];
    let mut ours_args = redis_args.to_vec();
    ours_args.extend(["--encryption-at-rest", "no"]);
    let (r, o) = (
        Rampart::start(&ours_args)?,
        RedisOracle::start_with(&redis_args)?,
    );
    let (ours, theirs) = (steps(&r)?, steps(&o)?);
    ensure!(ours == theirs, "rampart {ours:#?}\nredis {theirs:#?}");
    ensure!(
        ours[2].starts_with("-ERR") && ours[4] == "+OK\r\n" && ours[5] == ":2\r\n",
        "{ours:#?}"
    );
    ensure!(ours[9] == ":3\r\n", "{ours:#?}");

    // NOFLUSH without MERGE over a key that is there: Redis stops the
    // process ("Duplicated key found in RDB file"); Rampart refuses the
    // reload and keeps serving, its dataset still there.
    let mut c = r.conn()?;
    c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"])?;
    c.cmd(&["SET", "k", "again"])?;
    c.cmd(&["SET", "x", "kept"])?;
    let got = s(c.cmd(&["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH"])?);
    ensure!(got == "-ERR Error trying to load the RDB dump\r\n", "{got}");
    ensure!(s(c.cmd(&["GET", "x"])?) == "$4\r\nkept\r\n");
    let log = r.log();
    ensure!(log.contains("already in database 0"), "{log}");
    Ok(())
}

#[test]
fn noscript_commands_run_in_scripts_only_when_allowed() -> Result<()> {
    both(DEBUG_ON, |srv| {
        let mut c = srv.conn()?;
        let mut t = Vec::new();
        let script = "return redis.call('config', 'get', 'maxmemory')";
        t.push(s(c.cmd(&["EVAL", script, "0"])?));
        t.push(s(c.cmd(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "1"])?));
        t.push(s(c.cmd(&["EVAL", script, "0"])?));
        t.push(s(c.cmd(&["DEBUG", "SET-DISABLE-DENY-SCRIPTS", "0"])?));
        t.push(s(c.cmd(&["EVAL", script, "0"])?));
        Ok(t)
    })
}

/// Waits for `srv` to exit on its own and returns its log.
fn exited(srv: &mut ServerProcess) -> Result<(Option<std::process::ExitStatus>, String)> {
    let status = srv.wait_exit(Duration::from_secs(20))?;
    Ok((status, srv.log()))
}

#[test]
fn assert_ends_the_process_with_the_report() -> Result<()> {
    let mut r = Rampart::start(DEBUG_ON)?;
    let mut c = r.conn()?;
    c.send(&["DEBUG", "ASSERT"])?;
    let (status, log) = exited(&mut r)?;
    if status.is_none_or(|s| s.success()) {
        bail!("DEBUG ASSERT did not end the process: {status:?}\n{log}");
    }
    for want in [
        "=== REDIS BUG REPORT START: Cut & paste starting from here ===",
        "=== ASSERTION FAILED CLIENT CONTEXT ===",
        "=== ASSERTION FAILED ===",
        "'1 == 2' is not true",
        "=== REDIS BUG REPORT END. Make sure to include from START to END. ===",
    ] {
        if !log.contains(want) {
            bail!("no {want:?} in the log:\n{log}");
        }
    }
    Ok(())
}

#[test]
fn oom_ends_the_process_with_the_report() -> Result<()> {
    let mut r = Rampart::start(DEBUG_ON)?;
    let mut c = r.conn()?;
    c.send(&["DEBUG", "OOM"])?;
    let (status, log) = exited(&mut r)?;
    if status.is_none_or(|s| s.success()) {
        bail!("DEBUG OOM did not end the process: {status:?}\n{log}");
    }
    for want in [
        "Out Of Memory allocating 9223372036854775807 bytes!",
        "Redis aborting for OUT OF MEMORY. Allocating 9223372036854775807 bytes!",
        "=== REDIS BUG REPORT START",
    ] {
        if !log.contains(want) {
            bail!("no {want:?} in the log:\n{log}");
        }
    }
    Ok(())
}

#[test]
fn loadaof_exits_with_status_1_as_redis_without_aof() -> Result<()> {
    let mut r = Rampart::start(DEBUG_ON)?;
    let mut o = RedisOracle::start_with(DEBUG_ON)?;
    for srv in [&mut *r, &mut *o] {
        let mut c = srv.conn()?;
        c.send(&["DEBUG", "LOADAOF"])?;
        let (status, log) = exited(srv)?;
        if status.and_then(|s| s.code()) != Some(1) {
            bail!("{}: DEBUG LOADAOF ended with {status:?}\n{log}", srv.name());
        }
    }
    Ok(())
}

#[test]
fn restart_saves_and_comes_back_in_the_same_process() -> Result<()> {
    let mut r = Rampart::start(DEBUG_ON)?;
    let pid = r.pid();
    let mut c = r.conn()?;
    c.cmd(&["SET", "kept", "PLAINTEXT-MARKER"])?;
    c.send(&["DEBUG", "RESTART"])?;
    let (_, closed) = c.read_until_close(Duration::from_secs(20))?;
    if !closed {
        bail!("the connection stayed open after DEBUG RESTART");
    }
    wait_for("the restarted server", Duration::from_secs(30), || {
        Ok(r.conn().and_then(|mut c| c.cmd(&["PING"])).is_ok())
    })?;
    if !r.is_running() || r.pid() != pid {
        bail!("the restart was not an exec of the same process");
    }
    let mut c = r.conn()?;
    let got = s(c.cmd(&["GET", "kept"])?);
    if got != "$16\r\nPLAINTEXT-MARKER\r\n" {
        bail!(
            "the key did not survive the graceful restart: {got:?}\n{}",
            r.log()
        );
    }
    // A hard restart comes back too.
    c.send(&["DEBUG", "CRASH-AND-RECOVER", "10"])?;
    let _ = c.read_until_close(Duration::from_secs(20))?;
    wait_for("the recovered server", Duration::from_secs(30), || {
        Ok(r.conn().and_then(|mut c| c.cmd(&["PING"])).is_ok())
    })?;
    if r.log().contains("PLAINTEXT-MARKER") {
        bail!("a value reached the log");
    }
    Ok(())
}

#[test]
fn cluster_subcommands_match_redis_in_cluster_mode() -> Result<()> {
    both(
        &["--enable-debug-command", "yes", "--cluster-enabled", "yes"],
        |srv| {
            let mut c = srv.conn()?;
            // Not on myself: Redis crashes there (it has no link to free).
            Ok(vec![
                s(c.cmd(&["DEBUG", "CLUSTERLINK", "KILL", "to", "abc"])?),
                s(c.cmd(&["DEBUG", "DROP-CLUSTER-PACKET-FILTER", "0"])?),
                s(c.cmd(&["DEBUG", "DROP-CLUSTER-PACKET-FILTER", "-1"])?),
            ])
        },
    )
}

/// `CLUSTER NODES`' line for `id` as `a` sees it.
fn node_line(a: &ServerProcess, id: &str) -> Result<String> {
    let nodes = cmd(a, &["CLUSTER", "NODES"])?;
    Ok(nodes
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_default()
        .to_string())
}

/// Links `a` has open with `id`, from CLUSTER LINKS.
fn links_with(a: &ServerProcess, id: &str) -> Result<usize> {
    let links = s(a.conn()?.cmd(&["CLUSTER", "LINKS"])?);
    Ok(links.matches(id).count())
}

#[test]
fn clusterlink_kill_and_packet_filter_act_on_the_bus() -> Result<()> {
    let args = [
        "--enable-debug-command",
        "yes",
        "--cluster-enabled",
        "yes",
        "--cluster-node-timeout",
        "1000",
    ];
    let a = Rampart::start(&args)?;
    let b = Rampart::start(&args)?;
    let b_id = cmd(&b, &["CLUSTER", "MYID"])?;
    let bus = (b.port() as u32 + 10000).to_string();
    cmd(
        &a,
        &["CLUSTER", "MEET", "127.0.0.1", &b.port().to_string(), &bus],
    )?;
    wait_for("both links up", Duration::from_secs(20), || {
        Ok(links_with(&a, &b_id)? == 2 && node_line(&a, &b_id)?.contains(" connected"))
    })?;
    // Killing both links: they are gone, then the tick reconnects.
    let killed = cmd(&a, &["DEBUG", "CLUSTERLINK", "KILL", "all", &b_id])?;
    if killed != "+OK\r\n" {
        bail!("CLUSTERLINK KILL answered {killed:?}");
    }
    wait_for("the links back", Duration::from_secs(20), || {
        Ok(links_with(&a, &b_id)? == 2)
    })?;
    let bad = cmd(&a, &["DEBUG", "CLUSTERLINK", "KILL", "sideways", &b_id])?;
    if bad != "-ERR Unknown direction sideways\r\n" {
        bail!("an unknown direction answered {bad:?}");
    }
    // Deaf to PONG (type 1): b's answers are dropped, so a's last PONG
    // time from b (CLUSTER NODES' sixth field) stops moving while the
    // PINGs a sends stay unanswered (its fifth field stays set).
    let fields = |a: &ServerProcess| -> Result<(String, String)> {
        let line = node_line(a, &b_id)?;
        let f: Vec<&str> = line.split(' ').collect();
        Ok((
            f.get(4).unwrap_or(&"").to_string(),
            f.get(5).unwrap_or(&"").to_string(),
        ))
    };
    cmd(&a, &["DEBUG", "DROP-CLUSTER-PACKET-FILTER", "1"])?;
    std::thread::sleep(Duration::from_millis(500));
    let (_, pong_before) = fields(&a)?;
    std::thread::sleep(Duration::from_millis(2500));
    let (ping_sent, pong_after) = fields(&a)?;
    if pong_after != pong_before || ping_sent == "0" {
        bail!("PONGs still arrive: {pong_before} -> {pong_after}, ping sent {ping_sent}");
    }
    if !a
        .log()
        .contains("Dropping packet that matches debug drop filter")
    {
        bail!("no drop in the log:\n{}", a.log());
    }
    cmd(&a, &["DEBUG", "DROP-CLUSTER-PACKET-FILTER", "-1"])?;
    wait_for("PONGs from b again", Duration::from_secs(20), || {
        Ok(fields(&a)?.1 != pong_after)
    })?;
    Ok(())
}
