//! Scripts across real connections, on Rampart and redis-server 7.0 with
//! the replies compared: a busy read-only script killed by SCRIPT KILL
//! from a second client while a third gets -BUSY, and a busy script that
//! wrote, which SCRIPT KILL refuses (-UNKILLABLE).

use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rampart_tests::{escape, Rampart, RawConn, RedisOracle, Reply};

/// Waits until `conn` gets -BUSY for PING (the script passed the
/// threshold), and returns that reply. The first PING goes before the
/// threshold: Redis answers it -BUSY once the threshold passes, and so
/// must Rampart, even from the script's own connection thread.
fn wait_busy(conn: &mut RawConn) -> Result<Vec<u8>> {
    sleep(Duration::from_millis(20));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = conn.cmd(&["PING"])?;
        if r.starts_with(b"-BUSY") || Instant::now() > deadline {
            return Ok(r);
        }
        sleep(Duration::from_millis(20));
    }
}

/// FUNCTION STATS's reply with the running script's `duration_ms` value
/// replaced by 0, which differs from run to run.
fn mask_duration(reply: &[u8]) -> Vec<u8> {
    const FIELD: &[u8] = b"$11\r\nduration_ms\r\n:";
    let Some(at) = reply.windows(FIELD.len()).position(|w| w == FIELD) else {
        return reply.to_vec();
    };
    let start = at + FIELD.len();
    let end = reply[start..]
        .iter()
        .position(|&b| b == b'\r')
        .map_or(reply.len(), |n| start + n);
    [&reply[..start], b"0", &reply[end..]].concat()
}

fn busy_scenario(port: u16) -> Result<Vec<Vec<u8>>> {
    let mut log = Vec::new();
    let mut a = RawConn::connect(port)?;
    let mut b = RawConn::connect(port)?;
    let mut c = RawConn::connect(port)?;
    a.set_read_timeout(Duration::from_secs(20))?;
    log.push(b.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"])?);
    log.push(b.cmd(&["SCRIPT", "KILL"])?);

    // A read-only busy script: others get -BUSY, SCRIPT KILL stops it.
    a.send(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"])?;
    log.push(wait_busy(&mut c)?);
    log.push(c.cmd(&["GET", "x"])?);
    log.push(c.cmd(&["SHUTDOWN"])?);
    // A transaction begun while a script is busy: MULTI is allowed, a
    // queued command gets -BUSY, and so EXEC aborts.
    log.push(c.cmd(&["MULTI"])?);
    log.push(c.cmd(&["GET", "x"])?);
    log.push(b.cmd(&["FUNCTION", "STATS"])?);
    log.push(b.cmd(&["FUNCTION", "KILL"])?);
    log.push(b.cmd(&["SCRIPT", "KILL"])?);
    log.push(a.read_reply()?);
    log.push(c.cmd(&["EXEC"])?);
    log.push(c.cmd(&["PING"])?);

    // A pcall cannot keep a killed script alive.
    a.send(&[
        "EVAL",
        "while true do pcall(function() local i = 0 while true do i = i + 1 end end) end",
        "0",
    ])?;
    log.push(wait_busy(&mut c)?);
    log.push(b.cmd(&["SCRIPT", "KILL"])?);
    log.push(a.read_reply()?);

    // A busy function: FUNCTION KILL, not SCRIPT KILL, stops it.
    log.push(b.cmd(&[
        "FUNCTION",
        "LOAD",
        "REPLACE",
        "#!lua name=busy\nredis.register_function{function_name='spin', callback=function() while true do end end, flags={'no-writes'}}",
    ])?);
    a.send(&["FCALL", "spin", "0"])?;
    log.push(wait_busy(&mut c)?);
    // The running function, by name and command (its duration masked).
    log.push(mask_duration(&b.cmd(&["FUNCTION", "STATS"])?));
    log.push(b.cmd(&["SCRIPT", "KILL"])?);
    log.push(b.cmd(&["FUNCTION", "KILL"])?);
    log.push(a.read_reply()?);

    // A script that wrote cannot be killed; it finishes on its own.
    a.send(&[
        "EVAL",
        "redis.call('set', 'x', 1) local t = redis.call('time') local s = tonumber(t[1]) while true do local n = redis.call('time') if tonumber(n[1]) > s + 1 then break end end return 'done'",
        "0",
    ])?;
    log.push(wait_busy(&mut c)?);
    log.push(b.cmd(&["SCRIPT", "KILL"])?);
    log.push(a.read_reply()?);
    log.push(c.cmd(&["GET", "x"])?);
    Ok(log)
}

#[test]
fn busy_scripts_and_script_kill() -> Result<()> {
    let redis = RedisOracle::start()?;
    // One connection thread for every client: the script must not hold
    // it (scripts run on a thread of their own).
    let rampart = Rampart::start(&["--io-threads", "1"])?;
    let want = busy_scenario(redis.port())?;
    let got = busy_scenario(rampart.port())?;
    let mut diffs = Vec::new();
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if w != g {
            diffs.push(format!(
                "step {i}: redis {} rampart {}",
                escape(w),
                escape(g)
            ));
        }
    }
    ensure!(
        want.len() == got.len() && diffs.is_empty(),
        "{}",
        diffs.join("\n")
    );
    Ok(())
}

/// SHUTDOWN NOSAVE ends a server whose script is busy, at once.
#[test]
fn shutdown_nosave_during_busy_script() -> Result<()> {
    let mut rampart = Rampart::start(&["--busy-reply-threshold", "100", "--io-threads", "1"])?;
    let mut a = RawConn::connect(rampart.port())?;
    let mut c = RawConn::connect(rampart.port())?;
    a.send(&["EVAL", "while true do end", "0"])?;
    let busy = wait_busy(&mut c)?;
    ensure!(busy.starts_with(b"-BUSY"), "got {}", escape(&busy));
    c.send(&["SHUTDOWN", "NOSAVE"])?;
    let status = rampart.wait_exit(Duration::from_secs(10))?;
    ensure!(status.is_some(), "rampart did not exit");
    Ok(())
}

/// Function libraries are saved in (encrypted) snapshots and loaded back.
#[test]
fn functions_survive_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let lib = "#!lua name=keep\nredis.register_function('kept', function(keys, args) return 'still here' end)";
    {
        let rampart = Rampart::start_in(dir.path(), &[])?;
        let mut c = rampart.conn()?;
        ensure!(c.cmd(&["FUNCTION", "LOAD", lib])? == b"$4\r\nkeep\r\n");
        ensure!(c.cmd(&["SAVE"])? == b"+OK\r\n");
    }
    // The snapshot is an encrypted envelope, and no file holds an RDB in
    // the clear.
    let snapshot = std::fs::read(dir.path().join("dump.rdb"))?;
    ensure!(
        snapshot.starts_with(b"RAMPART\x01"),
        "dump.rdb is not an envelope"
    );
    for entry in walk(dir.path())? {
        let data = std::fs::read(&entry)?;
        ensure!(
            !data.windows(9).any(|w| w == b"REDIS0010"),
            "{} holds an RDB in the clear",
            entry.display()
        );
    }
    let rampart = Rampart::start_in(dir.path(), &[])?;
    let mut c = rampart.conn()?;
    let got = c.cmd(&["FCALL", "kept", "0"])?;
    ensure!(got == b"$10\r\nstill here\r\n", "got {}", escape(&got));
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// The payload of a bulk reply (`$n\r\n…\r\n`).
fn bulk_body(reply: &[u8]) -> Result<Vec<u8>> {
    ensure!(
        reply.first() == Some(&b'$'),
        "not a bulk: {}",
        escape(reply)
    );
    let start = reply
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(reply.len());
    ensure!(reply.len() >= start + 2, "truncated bulk");
    Ok(reply[start..reply.len() - 2].to_vec())
}

/// FUNCTION LIST WITHCODE, in an order-independent form (Redis lists
/// libraries in hash order).
fn libraries(c: &mut RawConn) -> Result<Reply> {
    Ok(Reply::parse(&c.cmd(&["FUNCTION", "LIST", "WITHCODE"])?)?.sorted())
}

/// FUNCTION DUMP payloads move between Rampart and redis-server 7.0 both
/// ways and restore the same libraries; a damaged payload or a refused
/// policy changes nothing on either.
#[test]
fn function_dump_payloads_move_between_rampart_and_redis() -> Result<()> {
    let redis = RedisOracle::start()?;
    let rampart = Rampart::start(&[])?;
    let mut r = redis.conn()?;
    let mut m = rampart.conn()?;
    let libs = [
        "#!lua name=alpha\nredis.register_function('a1', function(keys, args) return 'alpha ' .. args[1] end)",
        // Long enough to be LZF-compressed in the payload.
        "#!lua name=beta\nredis.register_function{function_name='b1', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads a key'}\nredis.register_function('b2', function() return {1, 2, 3} end)",
    ];
    move_libraries(&mut m, &mut r, &libs).context("Rampart to redis-server")?;
    move_libraries(&mut r, &mut m, &libs).context("redis-server to Rampart")?;
    Ok(())
}

/// Loads `libs` on `from`, restores its FUNCTION DUMP on `to` (after a
/// refused APPEND and a damaged payload), calls them there, and restores
/// `to`'s DUMP back on `from`.
fn move_libraries(from: &mut RawConn, to: &mut RawConn, libs: &[&str]) -> Result<()> {
    {
        ensure!(from.cmd(&["FUNCTION", "FLUSH"])? == b"+OK\r\n");
        ensure!(to.cmd(&["FUNCTION", "FLUSH"])? == b"+OK\r\n");
        for lib in libs {
            let got = from.cmd(&["FUNCTION", "LOAD", *lib])?;
            ensure!(got.starts_with(b"$"), "load: {}", escape(&got));
        }
        let payload = bulk_body(&from.cmd(&["FUNCTION", "DUMP"])?)?;
        // A library of the same name is there: APPEND refuses, the
        // libraries stay as they were.
        ensure!(to.cmd(&["FUNCTION", "LOAD", libs[0]])? == b"$5\r\nalpha\r\n");
        let before = libraries(to)?;
        let got = to.cmd(&[&b"FUNCTION"[..], &b"RESTORE"[..], &payload[..]])?;
        ensure!(
            got == b"-ERR Library alpha already exists\r\n",
            "got {}",
            escape(&got)
        );
        let mut damaged = payload.clone();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 0x20;
        let got = to.cmd(&[
            &b"FUNCTION"[..],
            &b"RESTORE"[..],
            &damaged[..],
            &b"FLUSH"[..],
        ])?;
        ensure!(
            got == b"-ERR DUMP payload version or checksum are wrong\r\n",
            "got {}",
            escape(&got)
        );
        ensure!(
            libraries(to)? == before,
            "a refused RESTORE changed the libraries"
        );
        let got = to.cmd(&[
            &b"FUNCTION"[..],
            &b"RESTORE"[..],
            &payload[..],
            &b"REPLACE"[..],
        ])?;
        ensure!(got == b"+OK\r\n", "restore: {}", escape(&got));
        ensure!(
            libraries(to)? == libraries(from)?,
            "restored libraries differ"
        );
        ensure!(to.cmd(&["SET", "k", "v"])? == b"+OK\r\n");
        for (call, want) in [
            (&["FCALL", "a1", "0", "x"][..], &b"$7\r\nalpha x\r\n"[..]),
            (&["FCALL_RO", "b1", "1", "k"][..], &b"$1\r\nv\r\n"[..]),
            (&["FCALL", "b2", "0"][..], &b"*3\r\n:1\r\n:2\r\n:3\r\n"[..]),
        ] {
            let got = to.cmd(call)?;
            ensure!(got == want, "{call:?}: {}", escape(&got));
        }
        // And back: the receiver's own DUMP restores on the sender.
        let back = bulk_body(&to.cmd(&["FUNCTION", "DUMP"])?)?;
        let got = from.cmd(&[&b"FUNCTION"[..], &b"RESTORE"[..], &back[..], &b"FLUSH"[..]])?;
        ensure!(got == b"+OK\r\n", "restore back: {}", escape(&got));
        ensure!(
            libraries(from)? == libraries(to)?,
            "libraries differ after the way back"
        );
    }
    Ok(())
}

/// An INFO field as a number.
fn info_number(c: &mut RawConn, field: &str) -> Result<u64> {
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "memory"])?).into_owned();
    let v = info
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .with_context(|| format!("no {field} in INFO"))?;
    Ok(v.trim().parse()?)
}

/// A script (or function) that allocates without bound hits its VM's
/// memory cap (here `maxmemory`, 64 MiB) and ends with an error reply;
/// the server keeps serving, and the VM's memory comes back.
#[test]
fn unbounded_allocation_in_a_script_is_an_error_not_a_crash() -> Result<()> {
    let rampart = Rampart::start(&["--maxmemory", "64mb"])?;
    let mut c = rampart.conn()?;
    c.set_read_timeout(Duration::from_secs(120))?;
    let mut other = rampart.conn()?;
    let base = info_number(&mut other, "used_memory_lua")?;
    // Tables of 32 slots, ~0.5 KiB each: quick to allocate, and usable
    // at FUNCTION LOAD too (no string library there).
    let hog = format!(
        "local t = {{}} for i = 1, 1e9 do t[i] = {{{}}} end return #t",
        vec!["i"; 32].join(", ")
    );
    let hog = hog.as_str();
    let sha = String::from_utf8_lossy(&bulk_body(&c.cmd(&["SCRIPT", "LOAD", hog])?)?).into_owned();
    let got = c.cmd(&["EVAL", hog, "0"])?;
    let want = format!("-ERR Error running script {sha}, not enough memory\r\n");
    ensure!(got == want.as_bytes(), "got {}", escape(&got));
    ensure!(other.cmd(&["SET", "k", "v"])? == b"+OK\r\n");
    ensure!(c.cmd(&["EVAL", "return redis.call('get', 'k')", "0"])? == b"$1\r\nv\r\n");
    // A script that caught the error is still at its cap: a command's
    // reply larger than the room left is pushed all the same (the cap is
    // lifted while it is, as for any reply).
    let big = "x".repeat(4 << 20);
    ensure!(other.cmd(&["SET", "big", &big])? == b"+OK\r\n");
    let at_cap = format!(
        "local t = {{}} local ok = pcall(function() {} end) \
         local v = redis.call('get', KEYS[1]) return ok and -1 or #v",
        hog.trim_start_matches("local t = {} ")
            .trim_end_matches(" return #t")
    );
    let got = c.cmd(&["EVAL", &at_cap, "1", "big"])?;
    ensure!(
        got == b":4194304\r\n",
        "got {}",
        escape(&got[..got.len().min(200)])
    );
    ensure!(other.cmd(&["DEL", "big"])? == b":1\r\n");
    // What the script built is collected at once.
    let after = info_number(&mut other, "used_memory_lua")?;
    ensure!(
        after < 8 << 20,
        "used_memory_lua {after} after the failed script"
    );

    let lib = format!("#!lua name=hog\nredis.register_function('hog', function() {hog} end)");
    ensure!(c.cmd(&["FUNCTION", "LOAD", &lib])? == b"$3\r\nhog\r\n");
    let got = c.cmd(&["FCALL", "hog", "0"])?;
    ensure!(
        got == b"-ERR Error running script hog, not enough memory\r\n",
        "got {}",
        escape(&got)
    );
    // Allocating while the library loads fails the load, nothing else
    // (worded as Redis words any string error raised at load).
    let at_load = format!("#!lua name=hog2\n{hog}");
    let got = c.cmd(&["FUNCTION", "LOAD", &at_load])?;
    ensure!(
        got == b"-ERR Error registering functions: ERR not enough memory\r\n",
        "got {}",
        escape(&got)
    );
    ensure!(c
        .cmd(&["FCALL", "hog", "0"])?
        .starts_with(b"-ERR Error running script hog"));
    ensure!(info_number(&mut other, "used_memory_vm_functions")? < 8 << 20);

    ensure!(c.cmd(&["SCRIPT", "FLUSH"])? == b"+OK\r\n");
    ensure!(c.cmd(&["FUNCTION", "FLUSH"])? == b"+OK\r\n");
    let flushed = info_number(&mut other, "used_memory_lua")?;
    ensure!(
        flushed < base + (1 << 20),
        "used_memory_lua {flushed} after SCRIPT FLUSH (started at {base})"
    );
    ensure!(other.cmd(&["PING"])? == b"+PONG\r\n");
    Ok(())
}
