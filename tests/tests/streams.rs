//! Streams across real connections and real peers, each scenario run
//! against Rampart and redis-server 7.0 with what was seen compared:
//! blocking XREAD/XREADGROUP (order, timeouts, EXEC, a destroyed group or
//! key ending the wait), keyspace events, replication of stream writes to
//! a Rampart replica and to a redis-server replica (DEBUG DIGEST on all
//! three), and stream payloads moving between the two servers.

use std::thread::sleep;
use std::time::Duration;

use anyhow::{ensure, Result};
use rampart_tests::notify::{both, events};
use rampart_tests::{escape, wait_for, Rampart, RawConn, RedisOracle, ServerProcess};

/// Gives a just-sent blocking command time to register on the server.
fn settle() {
    sleep(Duration::from_millis(150));
}

/// Sends a command and logs its reply.
fn run(log: &mut Vec<String>, c: &mut RawConn, args: &[&str]) -> Result<()> {
    log.push(escape(&c.cmd(args)?));
    Ok(())
}

fn blocking_scenario(port: u16) -> Result<Vec<String>> {
    let mut log = Vec::new();
    let mut a = RawConn::connect(port)?;
    let mut b = RawConn::connect(port)?;
    let mut w = RawConn::connect(port)?;

    // Two XREAD waiters on `$` both get the new entry.
    run(&mut log, &mut w, &["XADD", "s", "1-1", "f", "old"])?;
    a.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"])?;
    b.send(&[
        "XREAD", "COUNT", "5", "BLOCK", "0", "STREAMS", "nokey", "s", "0", "$",
    ])?;
    settle();
    run(&mut log, &mut w, &["XADD", "s", "2-1", "f", "new"])?;
    let (ra, rb) = (a.read_reply()?, b.read_reply()?);
    log.push(escape(&ra));
    log.push(escape(&rb));

    // Group readers are served first come, first served, one entry each.
    run(&mut log, &mut w, &["XGROUP", "CREATE", "s", "g", "$"])?;
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ])?;
    settle();
    b.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c2",
        "COUNT",
        "1",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ])?;
    settle();
    run(&mut log, &mut w, &["XADD", "s", "3-1", "f", "x"])?;
    log.push(escape(&a.read_reply()?));
    run(&mut log, &mut w, &["XADD", "s", "4-1", "f", "y"])?;
    log.push(escape(&b.read_reply()?));
    run(&mut log, &mut w, &["XPENDING", "s", "g"])?;

    // A timeout replies the null array.
    run(
        &mut log,
        &mut a,
        &["XREAD", "BLOCK", "100", "STREAMS", "s", "$"],
    )?;
    run(
        &mut log,
        &mut a,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "100",
            "STREAMS",
            "s",
            ">",
        ],
    )?;

    // Entries added inside MULTI wake the waiter once EXEC committed.
    a.send(&["XREAD", "BLOCK", "0", "STREAMS", "m", "$"])?;
    settle();
    run(&mut log, &mut w, &["MULTI"])?;
    run(&mut log, &mut w, &["XADD", "m", "1-1", "a", "1"])?;
    run(&mut log, &mut w, &["XADD", "m", "2-1", "a", "2"])?;
    run(&mut log, &mut w, &["EXEC"])?;
    log.push(escape(&a.read_reply()?));

    // A destroyed group ends the wait with -NOGROUP, a deleted key with
    // -UNBLOCKED; a plain XREAD keeps waiting through a DEL.
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ])?;
    settle();
    run(&mut log, &mut w, &["XGROUP", "DESTROY", "s", "g"])?;
    log.push(escape(&a.read_reply()?));
    run(&mut log, &mut w, &["XGROUP", "CREATE", "s", "g2", "$"])?;
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "g2",
        "c1",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ])?;
    b.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"])?;
    settle();
    run(&mut log, &mut w, &["DEL", "s"])?;
    log.push(escape(&a.read_reply()?));
    run(&mut log, &mut w, &["XADD", "s", "5-1", "back", "1"])?;
    log.push(escape(&b.read_reply()?));

    // NOACK readers leave nothing pending.
    run(&mut log, &mut w, &["XGROUP", "CREATE", "s", "g3", "$"])?;
    a.send(&[
        "XREADGROUP",
        "GROUP",
        "g3",
        "c",
        "NOACK",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ])?;
    settle();
    run(&mut log, &mut w, &["XADD", "s", "9-1", "k", "v"])?;
    log.push(escape(&a.read_reply()?));
    run(&mut log, &mut w, &["XPENDING", "s", "g3"])?;
    run(&mut log, &mut w, &["XINFO", "GROUPS", "s"])?;
    Ok(log)
}

#[test]
fn blocking_reads_as_redis() -> Result<()> {
    let redis = RedisOracle::start()?;
    let rampart = Rampart::start(&[])?;
    let expected = blocking_scenario(redis.port())?;
    let got = blocking_scenario(rampart.port())?;
    assert_eq!(got, expected, "rampart log:\n{}", rampart.log());
    Ok(())
}

#[test]
fn stream_events_as_redis() -> Result<()> {
    both(&[], |srv| {
        events(
            srv,
            "KEA",
            &[
                &["XADD", "s", "1-1", "f", "v"],
                &["XADD", "s", "MAXLEN", "1", "2-1", "f", "v"],
                &["XADD", "s", "3-1", "f", "v"],
                &["XTRIM", "s", "MAXLEN", "1"],
                &["XTRIM", "s", "MAXLEN", "1"],
                &["XDEL", "s", "3-1"],
                &["XDEL", "s", "3-1"],
                &["XADD", "s", "4-1", "f", "v"],
                &["XSETID", "s", "10-1"],
                &["XGROUP", "CREATE", "s", "g", "0"],
                &["XGROUP", "CREATE", "new", "g", "$", "MKSTREAM"],
                &["XGROUP", "CREATECONSUMER", "s", "g", "c"],
                &["XGROUP", "CREATECONSUMER", "s", "g", "c"],
                &["XREADGROUP", "GROUP", "g", "d", "STREAMS", "s", ">"],
                &["XCLAIM", "s", "g", "e", "0", "4-1"],
                &["XAUTOCLAIM", "s", "g", "f", "0", "0"],
                &["XACK", "s", "g", "4-1"],
                &["XGROUP", "SETID", "s", "g", "0"],
                &["XGROUP", "DELCONSUMER", "s", "g", "c"],
                &["XGROUP", "DESTROY", "s", "g"],
                &["XGROUP", "DESTROY", "s", "g"],
                &["XADD", "nope", "NOMKSTREAM", "*", "f", "v"],
            ],
        )
    })
}

fn digest(s: &ServerProcess) -> Result<Vec<u8>> {
    s.conn()?.cmd(&["DEBUG", "DIGEST"])
}

/// Stream writes of every kind, `*` ids, approximate trims and group reads
/// included: what replicas must apply as effects.
fn stream_writes(c: &mut RawConn) -> Result<()> {
    for i in 0..300 {
        let v = i.to_string();
        c.cmd(&["XADD", "s", "*", "f", &v, "g", "x"])?;
        c.cmd(&["XADD", "t", "MAXLEN", "~", "120", "*", "n", &v])?;
    }
    c.cmd(&["XADD", "s", "MINID", "~", "0", "*", "only", "one"])?;
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"])?;
    c.cmd(&["XGROUP", "CREATE", "s", "h", "0"])?;
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "50",
        "STREAMS",
        "s",
        ">",
    ])?;
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "bob",
        "COUNT",
        "20",
        "STREAMS",
        "s",
        ">",
    ])?;
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "h",
        "quiet",
        "NOACK",
        "COUNT",
        "7",
        "STREAMS",
        "s",
        ">",
    ])?;
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"])?;
    c.cmd(&["XCLAIM", "s", "g", "carol", "0", "0-1", "LASTID", "0-1"])?;
    c.cmd(&["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "10"])?;
    c.cmd(&["XTRIM", "t", "MAXLEN", "~", "50"])?;
    c.cmd(&["XDEL", "s", "0-1"])?;
    c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "erin"])?;
    c.cmd(&["XGROUP", "DELCONSUMER", "s", "g", "bob"])?;
    c.cmd(&["XSETID", "t", "99999999999999-0"])?;
    Ok(())
}

#[test]
fn stream_writes_reach_rampart_and_redis_replicas() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = rampart_tests::shared_keyring(keys.path());
    let common = [
        "--enable-debug-command",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
        "--save",
        "",
    ];
    let mut pa = vec!["--kms-key-file", &k, "--repl-allow-plaintext-sync", "yes"];
    pa.extend(common);
    let primary = Rampart::start(&pa)?;
    let mut c = primary.conn()?;
    c.cmd(&["XADD", "before", "1-1", "a", "1"])?;
    c.cmd(&["XGROUP", "CREATE", "before", "g", "0"])?;
    c.cmd(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", "before", ">"])?;
    let port = primary.port().to_string();
    let target = format!("127.0.0.1 {port}");
    let mut ra = vec!["--kms-key-file", &k, "--replicaof", &target];
    ra.extend(common);
    let replica = Rampart::start(&ra)?;
    let mut oa = vec!["--replicaof", "127.0.0.1", &port];
    oa.extend(common);
    let oracle = RedisOracle::start_with(&oa)?;
    wait_for("both replicas to sync", Duration::from_secs(30), || {
        Ok(digest(&replica)? == digest(&primary)? && digest(&oracle)? == digest(&primary)?)
    })?;
    stream_writes(&mut c)?;
    let want = digest(&primary)?;
    ensure!(want != b"$40\r\n0000000000000000000000000000000000000000\r\n".to_vec());
    let r = wait_for("the replicas to converge", Duration::from_secs(30), || {
        Ok(digest(&replica)? == want && digest(&oracle)? == want)
    });
    let info = |s: &ServerProcess| -> Result<String> {
        Ok(escape(&s.conn()?.cmd(&["XINFO", "STREAM", "s", "FULL"])?))
    };
    if r.is_err() {
        anyhow::bail!(
            "digests differ:\nprimary {}\nreplica {}\noracle {}\n",
            info(&primary)?,
            info(&replica)?,
            info(&oracle)?
        );
    }
    // The group state itself matches, delivery times included.
    let groups = |s: &ServerProcess| -> Result<Vec<u8>> {
        s.conn()?.cmd(&["XPENDING", "s", "g", "-", "+", "1000"])
    };
    let strip = |b: Vec<u8>| -> String {
        // Idle times differ by when each server is asked.
        escape(&b)
            .split("\\r\\n")
            .filter(|l| !l.starts_with(':'))
            .collect::<Vec<_>>()
            .join("|")
    };
    assert_eq!(strip(groups(&replica)?), strip(groups(&primary)?));
    assert_eq!(strip(groups(&oracle)?), strip(groups(&primary)?));
    Ok(())
}

/// A stream with groups and consumers, built the same on either server.
fn populate(c: &mut RawConn) -> Result<()> {
    c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "7"])?;
    for i in 1..=40 {
        let (id, v) = (format!("{i}-{}", i % 3), "v".repeat(i));
        if i % 5 == 0 {
            c.cmd(&["XADD", "s", &id, "other", &v])?;
        } else {
            c.cmd(&["XADD", "s", &id, "f", &v, "n", "12345"])?;
        }
    }
    c.cmd(&["XDEL", "s", "3-0", "17-2"])?;
    c.cmd(&["COPY", "s", "plain"])?;
    c.cmd(&["XGROUP", "CREATE", "s", "g", "0"])?;
    c.cmd(&["XGROUP", "CREATE", "s", "empty", "$"])?;
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "a",
        "COUNT",
        "5",
        "STREAMS",
        "s",
        ">",
    ])?;
    c.cmd(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "b",
        "COUNT",
        "3",
        "STREAMS",
        "s",
        ">",
    ])?;
    c.cmd(&["XGROUP", "CREATECONSUMER", "s", "g", "idle"])?;
    c.cmd(&["XADD", "e", "5-5", "x", "y"])?;
    c.cmd(&["XDEL", "e", "5-5"])?;
    Ok(())
}

/// What two servers must agree on for a stream: its entries, its info and
/// its digest (consumer times left out: they are each server's clock).
fn seen(c: &mut RawConn, key: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for args in [
        vec!["XRANGE", key, "-", "+"],
        vec!["XINFO", "STREAM", key],
        vec!["XINFO", "GROUPS", key],
        vec!["XPENDING", key, "g"],
        vec!["DEBUG", "DIGEST-VALUE", key],
        vec!["OBJECT", "ENCODING", key],
    ] {
        out.push(escape(&c.cmd(&args)?));
    }
    Ok(out)
}

#[test]
fn stream_payloads_move_between_redis_and_rampart() -> Result<()> {
    let redis = RedisOracle::start_with(&["--enable-debug-command", "yes"])?;
    let rampart = Rampart::start(&["--enable-debug-command", "yes"])?;
    let (mut o, mut r) = (redis.conn()?, rampart.conn()?);
    populate(&mut o)?;
    populate(&mut r)?;
    // The same writes give the same bytes: nodes split where Redis's do
    // (groups hold each server's clock, so only group-less streams).
    for key in ["plain", "e"] {
        let theirs = o.cmd(&["DUMP", key])?;
        assert_eq!(escape(&r.cmd(&["DUMP", key])?), escape(&theirs), "{key}");
    }
    for key in ["s", "e"] {
        for (a, b) in seen(&mut r, key)?.iter().zip(seen(&mut o, key)?.iter()) {
            assert_eq!(a, b, "{key}");
        }
        // Redis's payload restores into Rampart and back into Redis.
        let payload = o.cmd(&["DUMP", key])?;
        let body = bulk_body(&payload)?;
        let copy = format!("{key}-copy");
        assert_eq!(
            r.cmd(&[copy.as_bytes(), b"0", &body[..]].iter().copied().fold(
                vec![b"RESTORE".to_vec()],
                |mut v, a| {
                    v.push(a.to_vec());
                    v
                }
            ))?,
            b"+OK\r\n"
        );
        let ours = bulk_body(&r.cmd(&["DUMP", &copy])?)?;
        assert_eq!(
            o.cmd(&[
                b"RESTORE".to_vec(),
                copy.clone().into_bytes(),
                b"0".to_vec(),
                ours
            ])?,
            b"+OK\r\n"
        );
        assert_eq!(seen(&mut r, &copy)?, seen(&mut o, &copy)?, "{copy}");
    }
    // A snapshot keeps streams, groups and consumers.
    let before = seen(&mut r, "s")?;
    let times = escape(&r.cmd(&["XINFO", "STREAM", "s", "FULL"])?);
    assert_eq!(r.cmd(&["DEBUG", "RELOAD"])?, b"+OK\r\n");
    assert_eq!(seen(&mut r, "s")?, before);
    assert_eq!(escape(&r.cmd(&["XINFO", "STREAM", "s", "FULL"])?), times);
    Ok(())
}

/// The payload of a bulk reply.
fn bulk_body(reply: &[u8]) -> Result<Vec<u8>> {
    let start = reply
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    ensure!(
        reply.first() == Some(&b'$') && reply.len() >= start + 2,
        "not a bulk: {}",
        escape(reply)
    );
    Ok(reply[start..reply.len() - 2].to_vec())
}

#[test]
fn rampart_replica_of_redis_loads_its_streams() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = rampart_tests::shared_keyring(keys.path());
    let primary = RedisOracle::start_with(&["--enable-debug-command", "yes"])?;
    let mut c = primary.conn()?;
    populate(&mut c)?;
    // Part of the data goes in the full sync, part down the stream after.
    let port = primary.port().to_string();
    let target = format!("127.0.0.1 {port}");
    let replica = Rampart::start(&[
        "--kms-key-file",
        &k,
        "--replicaof",
        &target,
        // As `populate` set on the primary, so replicated XADDs split
        // nodes at the same places.
        "--stream-node-max-entries",
        "7",
        "--enable-debug-command",
        "yes",
        "--save",
        "",
    ])?;
    stream_writes(&mut c)?;
    let want = digest(&primary)?;
    wait_for(
        "the Rampart replica to converge",
        Duration::from_secs(30),
        || Ok(digest(&replica)? == want),
    )?;
    let mut r = replica.conn()?;
    for key in ["s", "plain", "e", "t"] {
        for (a, b) in seen(&mut r, key)?.iter().zip(seen(&mut c, key)?.iter()) {
            assert_eq!(a, b, "{key}");
        }
    }
    Ok(())
}
