//! Blocking list commands across real connections, run against both
//! Rampart and redis-server 7.0 with the replies compared: wake-ups by
//! pushes, FIFO order among waiters, timeouts, pushes inside MULTI waking
//! waiters only at EXEC, CLIENT UNBLOCK, BLMOVE chains.

use std::thread::sleep;
use std::time::Duration;

use anyhow::Result;
use rampart_tests::{escape, Rampart, RawConn, RedisOracle};

/// Gives a just-sent blocking command time to register on the server.
fn settle() {
    sleep(Duration::from_millis(150));
}

fn scenario(port: u16) -> Result<Vec<Vec<u8>>> {
    let mut log = Vec::new();
    let mut a = RawConn::connect(port)?;
    let mut b = RawConn::connect(port)?;
    let mut c = RawConn::connect(port)?;
    let mut w = RawConn::connect(port)?;

    // A push wakes a waiter, which gets [key, element]; the pusher sees the
    // length at push time.
    a.send(&["BLPOP", "q", "0"])?;
    settle();
    log.push(
        w.cmd(&["INFO", "clients"])?
            .windows(17)
            .any(|x| x == b"blocked_clients:1")
            .to_string()
            .into_bytes(),
    );
    log.push(b.cmd(&["RPUSH", "q", "x"])?);
    log.push(a.read_reply()?);
    log.push(w.cmd(&["LLEN", "q"])?);

    // Waiters are served first come, first served.
    a.send(&["BLPOP", "q", "other", "0"])?;
    settle();
    c.send(&["BRPOP", "q", "0"])?;
    settle();
    log.push(b.cmd(&["RPUSH", "q", "1", "2", "3"])?);
    log.push(a.read_reply()?);
    log.push(c.read_reply()?);
    log.push(w.cmd(&["LRANGE", "q", "0", "-1"])?);
    log.push(w.cmd(&["DEL", "q"])?);

    // A timeout replies the null array.
    log.push(a.cmd(&["BLPOP", "empty", "0.2"])?);
    log.push(a.cmd(&["BLMOVE", "empty", "d", "LEFT", "LEFT", "0.1"])?);

    // A push inside MULTI wakes the waiter only once EXEC committed, and a
    // pop in the same transaction wins.
    a.send(&["BLPOP", "t", "0"])?;
    settle();
    log.push(b.cmd(&["MULTI"])?);
    log.push(b.cmd(&["RPUSH", "t", "one", "two"])?);
    log.push(b.cmd(&["LPOP", "t"])?);
    log.push(b.cmd(&["EXEC"])?);
    log.push(a.read_reply()?);
    log.push(w.cmd(&["EXISTS", "t"])?);

    // CLIENT UNBLOCK, with the timeout reply and with the error.
    let id = String::from_utf8_lossy(&a.cmd(&["CLIENT", "ID"])?)
        .trim_start_matches(':')
        .trim()
        .to_string();
    a.send(&["BRPOP", "u", "0"])?;
    settle();
    log.push(w.cmd(&["CLIENT", "UNBLOCK", &id])?);
    log.push(a.read_reply()?);
    a.send(&["BLPOP", "u", "0"])?;
    settle();
    log.push(w.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"])?);
    log.push(a.read_reply()?);
    log.push(w.cmd(&["CLIENT", "UNBLOCK", &id])?);

    // A BLMOVE that is served pushes onto a list another client waits on.
    a.send(&["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"])?;
    settle();
    c.send(&["BLPOP", "dst", "0"])?;
    settle();
    log.push(b.cmd(&["RPUSH", "src", "v"])?);
    log.push(a.read_reply()?);
    log.push(c.read_reply()?);
    log.push(w.cmd(&["EXISTS", "src", "dst"])?);

    // BLMPOP, and blocking commands inside MULTI never block.
    c.send(&["BLMPOP", "0", "2", "m1", "m2", "LEFT", "COUNT", "5"])?;
    settle();
    log.push(b.cmd(&["RPUSH", "m2", "a", "b"])?);
    log.push(c.read_reply()?);
    log.push(b.cmd(&["MULTI"])?);
    log.push(b.cmd(&["BLPOP", "nothing", "0"])?);
    log.push(b.cmd(&["EXEC"])?);

    // Errors.
    log.push(w.cmd(&["BLPOP", "q", "-1"])?);
    log.push(w.cmd(&["BLPOP", "q", "abc"])?);
    log.push(w.cmd(&["SET", "str", "x"])?);
    log.push(w.cmd(&["BLPOP", "str", "0"])?);
    Ok(log)
}

#[test]
fn blocking_lists_behave_as_redis() -> Result<()> {
    let redis = RedisOracle::start()?;
    // Several connection threads: waiters and writers on different ones.
    let rampart = Rampart::start(&["--io-threads", "3"])?;
    let expected = scenario(redis.port())?;
    let got = scenario(rampart.port())?;
    for (i, (e, g)) in expected.iter().zip(got.iter()).enumerate() {
        assert_eq!(
            escape(g),
            escape(e),
            "step {i}; rampart log:\n{}",
            rampart.log()
        );
    }
    assert_eq!(expected.len(), got.len());
    // Spot checks that the scenario exercised what it claims.
    assert_eq!(got[0], b"true");
    assert_eq!(got[2], b"*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
    Ok(())
}

fn zset_scenario(port: u16) -> Result<Vec<Vec<u8>>> {
    let mut log = Vec::new();
    let mut a = RawConn::connect(port)?;
    let mut b = RawConn::connect(port)?;
    let mut w = RawConn::connect(port)?;
    log.push(w.cmd(&["ZADD", "z", "1", "one", "2", "two"])?);
    log.push(w.cmd(&["BZPOPMAX", "z", "0"])?);
    a.send(&["BZPOPMIN", "empty", "0"])?;
    settle();
    log.push(b.cmd(&["ZADD", "empty", "5", "five", "3", "three"])?);
    log.push(a.read_reply()?);
    log.push(w.cmd(&["ZRANGE", "empty", "0", "-1", "WITHSCORES"])?);
    a.send(&["BZMPOP", "0", "2", "m1", "m2", "MAX", "COUNT", "2"])?;
    settle();
    log.push(b.cmd(&["ZADD", "m2", "1", "a", "2", "b", "3", "c"])?);
    log.push(a.read_reply()?);
    log.push(a.cmd(&["BZPOPMIN", "nothing", "0.1"])?);
    log.push(a.cmd(&["BZMPOP", "0.1", "1", "nothing", "MIN"])?);
    log.push(w.cmd(&["BZPOPMIN", "z", "-1"])?);
    log.push(w.cmd(&["SET", "s", "x"])?);
    log.push(w.cmd(&["BZPOPMIN", "s", "0"])?);
    Ok(log)
}

#[test]
fn blocking_zset_pops_behave_as_redis() -> Result<()> {
    let redis = RedisOracle::start()?;
    // Several connection threads: waiters and writers on different ones.
    let rampart = Rampart::start(&["--io-threads", "3"])?;
    let expected = zset_scenario(redis.port())?;
    let got = zset_scenario(rampart.port())?;
    assert_eq!(expected.len(), got.len());
    for (i, (e, g)) in expected.iter().zip(got.iter()).enumerate() {
        assert_eq!(
            escape(g),
            escape(e),
            "step {i}; rampart log:\n{}",
            rampart.log()
        );
    }
    Ok(())
}

/// CLIENT PAUSE WRITE holds writes (and only writes) until it ends, then
/// writes run at once again; CLIENT UNPAUSE ends a pause early. Timed in
/// whole tenths of a second, far from the pauses' lengths, on both servers.
fn pause_scenario(port: u16) -> Result<Vec<String>> {
    use std::time::Instant;
    let mut log = Vec::new();
    let mut admin = RawConn::connect(port)?;
    let mut c = RawConn::connect(port)?;
    let held = |c: &mut RawConn, args: &[&str]| -> Result<String> {
        let t = Instant::now();
        let reply = c.cmd(args)?;
        let waited = t.elapsed() >= Duration::from_millis(300);
        Ok(format!("{} held={waited}", escape(&reply)))
    };
    log.push(escape(&admin.cmd(&["CLIENT", "PAUSE", "600", "WRITE"])?));
    log.push(held(&mut c, &["GET", "k"])?);
    log.push(held(&mut c, &["SET", "k", "1"])?);
    // The pause is over: writes are not held any more.
    log.push(held(&mut c, &["SET", "k", "2"])?);
    log.push(held(&mut c, &["INCR", "k"])?);
    log.push(escape(&admin.cmd(&["CLIENT", "PAUSE", "5000", "ALL"])?));
    c.send(&["GET", "k"])?;
    sleep(Duration::from_millis(100));
    log.push(escape(&admin.cmd(&["CLIENT", "UNPAUSE"])?));
    let t = Instant::now();
    log.push(escape(&c.read_reply()?));
    log.push(format!("released={}", t.elapsed() < Duration::from_secs(2)));
    log.push(held(&mut c, &["SET", "k", "4"])?);
    Ok(log)
}

#[test]
fn client_pause_holds_writes_as_redis() -> Result<()> {
    let redis = RedisOracle::start()?;
    let rampart = Rampart::start(&[])?;
    let expected = pause_scenario(redis.port())?;
    let got = pause_scenario(rampart.port())?;
    assert_eq!(got, expected, "rampart log:\n{}", rampart.log());
    // Not vacuous: the write under the pause was held, the one after not.
    assert_eq!(expected[2], "+OK\\r\\n held=true");
    assert_eq!(expected[3], "+OK\\r\\n held=false");
    Ok(())
}
