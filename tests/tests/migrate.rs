//! MIGRATE against redis-server 7.0: moving keys to a third server (a
//! redis-server), the same replies and the same effects on both sides.

use anyhow::Result;
use rampart_tests::notify::{both, s};
use rampart_tests::RedisOracle;

#[test]
fn migrate_moves_keys_as_redis_does() -> Result<()> {
    let target = RedisOracle::start_with(&["--requirepass", "tpass"])?;
    let tport = target.port().to_string();
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut tc = target.conn()?;
        tc.cmd(&["AUTH", "tpass"])?;
        tc.cmd(&["FLUSHALL"])?;
        let mut c = srv.conn()?;
        c.cmd(&["FLUSHALL"])?;
        c.cmd(&["SET", "a", "1"])?;
        c.cmd(&["SET", "b", "2", "EX", "1000"])?;
        c.cmd(&["RPUSH", "l", "x", "y"])?;
        c.cmd(&["SET", "c", "3"])?;
        let m = |c: &mut rampart_tests::RawConn, extra: &[&str]| -> Result<String> {
            let mut args = vec!["MIGRATE", "127.0.0.1", tport.as_str()];
            args.extend(extra);
            Ok(s(c.cmd(&args)?))
        };
        t.push(m(&mut c, &["a", "2", "5000"])?);
        t.push(m(&mut c, &["a", "2", "5000", "AUTH", "wrong"])?);
        t.push(m(&mut c, &["a", "2", "5000", "AUTH", "tpass"])?);
        t.push(s(c.cmd(&["EXISTS", "a"])?));
        t.push(m(&mut c, &["nosuch", "2", "5000", "AUTH", "tpass"])?);
        t.push(m(
            &mut c,
            &[
                "", "2", "5000", "COPY", "AUTH", "tpass", "KEYS", "b", "l", "nosuch",
            ],
        )?);
        t.push(s(c.cmd(&["EXISTS", "b", "l"])?));
        // Already there: BUSYKEY from the target, unless REPLACE.
        t.push(m(&mut c, &["b", "2", "5000", "AUTH2", "default", "tpass"])?);
        t.push(m(
            &mut c,
            &["b", "2", "5000", "REPLACE", "AUTH2", "default", "tpass"],
        )?);
        t.push(s(c.cmd(&["EXISTS", "b"])?));
        t.push(m(&mut c, &["c", "2", "5000", "KEYS", "c"])?);
        t.push(m(&mut c, &["c", "2", "5000", "BOGUS"])?);
        t.push(m(&mut c, &["c", "x", "5000"])?);
        t.push(m(&mut c, &["c", "2", "5000", "AUTH"])?);
        tc.cmd(&["SELECT", "2"])?;
        t.push(s(tc.cmd(&["MGET", "a", "b", "l", "c"])?));
        t.push(s(tc.cmd(&["LRANGE", "l", "0", "-1"])?));
        let ttl = s(tc.cmd(&["TTL", "b"])?);
        t.push(format!(
            "ttl kept: {}",
            ttl.trim_start_matches(':')
                .trim()
                .parse::<i64>()
                .unwrap_or(0)
                > 900
        ));
        // Nobody listening: an I/O error, the key stays.
        let closed = rampart_tests::free_port()?.to_string();
        t.push(s(c.cmd(&[
            "MIGRATE",
            "127.0.0.1",
            &closed,
            "c",
            "0",
            "500",
        ])?));
        t.push(s(c.cmd(&["EXISTS", "c"])?));
        Ok(t)
    })
}

/// A field of INFO as text.
fn info_field(c: &mut rampart_tests::RawConn, name: &str) -> Result<String> {
    let info = s(c.cmd(&["INFO", "all"])?);
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or("missing")
        .trim()
        .to_string())
}

/// MIGRATE keeps its connection to a target for the next call, as Redis
/// does (INFO `migrate_cached_sockets`, one connection at the target for
/// several calls and databases), takes a fresh one when the target closed
/// the cached one, and closes it after 10 s unused. Rampart and
/// redis-server step by step, each with a redis-server target.
#[test]
fn migrate_caches_its_target_connection_as_redis_does() -> Result<()> {
    let ours = rampart_tests::Rampart::start(&[])?;
    let theirs = RedisOracle::start()?;
    let servers: [&rampart_tests::ServerProcess; 2] = [&ours, &theirs];
    let targets = [RedisOracle::start()?, RedisOracle::start()?];
    let mut steps: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut conns = Vec::new();
    for (i, srv) in servers.iter().enumerate() {
        let mut c = srv.conn()?;
        for k in ["k1", "k2", "k3", "k4"] {
            c.cmd(&["SET", k, "v"])?;
        }
        let mut tc = targets[i].conn()?;
        let before: i64 = info_field(&mut tc, "total_connections_received")?.parse()?;
        conns.push((c, tc, before));
    }
    let migrate = |c: &mut rampart_tests::RawConn, port: u16, key: &str, db: &str| {
        let port = port.to_string();
        c.cmd(&["MIGRATE", "127.0.0.1", &port, key, db, "5000"])
            .map(s)
    };
    for (i, (c, tc, before)) in conns.iter_mut().enumerate() {
        let t = &mut steps[i];
        let port = targets[i].port();
        t.push(migrate(c, port, "k1", "0")?);
        t.push(migrate(c, port, "k2", "0")?);
        t.push(migrate(c, port, "k3", "1")?);
        t.push(info_field(c, "migrate_cached_sockets")?);
        let now: i64 = info_field(tc, "total_connections_received")?.parse()?;
        t.push(format!("target connections: {}", now - *before));
        // The target drops every client but this one, the cached
        // connection included: the next MIGRATE reconnects.
        t.push(s(
            tc.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])?
        ));
        t.push(migrate(c, port, "k4", "0")?);
        let now: i64 = info_field(tc, "total_connections_received")?.parse()?;
        t.push(format!("target connections: {}", now - *before));
        tc.cmd(&["SELECT", "1"])?;
        t.push(s(tc.cmd(&["EXISTS", "k3"])?));
        tc.cmd(&["SELECT", "0"])?;
        t.push(s(tc.cmd(&["EXISTS", "k1", "k2", "k4"])?));
    }
    // Unused for more than 10 s: closed by the cron.
    std::thread::sleep(std::time::Duration::from_millis(12_500));
    for (i, (c, _, _)) in conns.iter_mut().enumerate() {
        steps[i].push(info_field(c, "migrate_cached_sockets")?);
    }
    assert_eq!(steps[0], steps[1], "rampart, then redis-server");
    assert_eq!(steps[0][3], "1");
    assert_eq!(steps[0][4], "target connections: 1");
    assert_eq!(steps[0][7], "target connections: 2");
    assert_eq!(steps[0].last().map(String::as_str), Some("0"));
    Ok(())
}
