//! Scripts across real connections, on Rampart and redis-server 7.0 with
//! the replies compared: a busy read-only script killed by SCRIPT KILL
//! from a second client while a third gets -BUSY, and a busy script that
//! wrote, which SCRIPT KILL refuses (-UNKILLABLE).

use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use rampart_tests::{escape, Rampart, RawConn, RedisOracle};

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

/// Function libraries are saved in snapshots and loaded back.
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
    let rampart = Rampart::start_in(dir.path(), &[])?;
    let mut c = rampart.conn()?;
    let got = c.cmd(&["FCALL", "kept", "0"])?;
    ensure!(got == b"$10\r\nstill here\r\n", "got {}", escape(&got));
    Ok(())
}
