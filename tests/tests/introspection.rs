//! Introspection commands beside redis-server 7.0: SLOWLOG's entries
//! (arguments trimmed and redacted as Redis records them, client names,
//! ids, GET counts and errors).

use anyhow::Result;
use rampart_tests::{Rampart, RedisOracle, ServerProcess};

fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&[u8]]) -> Result<T> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0])?);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    Ok(cmd.query(c)?)
}

/// An entry without its time, duration and client port.
type Logged = (i64, Vec<Vec<u8>>, Vec<u8>);

/// A SLOWLOG GET entry: id, time, duration, arguments, peer, name.
type Raw = (i64, i64, i64, Vec<Vec<u8>>, String, Vec<u8>);

fn slowlog(s: &ServerProcess) -> Result<Vec<Logged>> {
    let mut c = s.redis_conn()?;
    let entries: Vec<Raw> = q(&mut c, &[b"SLOWLOG", b"GET", b"-1"])?;
    Ok(entries
        .into_iter()
        .map(|(id, _, _, args, peer, name)| {
            assert!(peer.starts_with("127.0.0.1:"), "{peer}");
            (id, args, name)
        })
        .collect())
}

fn drive(s: &ServerProcess) -> Result<()> {
    let mut c = s.redis_conn()?;
    q::<()>(
        &mut c,
        &[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"],
    )?;
    q::<()>(&mut c, &[b"SLOWLOG", b"RESET"])?;
    q::<()>(&mut c, &[b"CLIENT", b"SETNAME", b"logger"])?;
    let long = vec![b'v'; 300];
    q::<()>(&mut c, &[b"SET", b"k", &long])?;
    let mut many: Vec<&[u8]> = vec![b"RPUSH", b"list"];
    let items: Vec<Vec<u8>> = (0..40).map(|i| format!("i{i}").into_bytes()).collect();
    many.extend(items.iter().map(|i| i.as_slice()));
    q::<i64>(&mut c, &many)?;
    q::<()>(
        &mut c,
        &[
            b"CONFIG",
            b"SET",
            b"masterauth",
            b"secret",
            b"maxmemory",
            b"0",
        ],
    )?;
    q::<()>(&mut c, &[b"ACL", b"SETUSER", b"u", b">pw", b"on"])?;
    let _ = q::<()>(&mut c, &[b"AUTH", b"u", b"pw"]);
    let _ = q::<redis::Value>(
        &mut c,
        &[b"HELLO", b"2", b"AUTH", b"u", b"pw", b"SETNAME", b"n2"],
    );
    let mut admin = s.redis_conn()?;
    q::<()>(
        &mut admin,
        &[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"-1"],
    )?;
    Ok(())
}

#[test]
fn slowlog_records_commands_as_redis() -> Result<()> {
    let rampart = Rampart::start(&[])?;
    let redis = RedisOracle::start()?;
    drive(&rampart)?;
    drive(&redis)?;
    let mine = slowlog(&rampart)?;
    let theirs = slowlog(&redis)?;
    assert_eq!(mine, theirs);
    assert!(mine.len() >= 8, "{mine:?}");
    let text = format!("{mine:?}");
    for secret in ["secret", "pw"] {
        assert!(
            !text.contains(&format!("\"{secret}\"")),
            "{secret} in the log"
        );
    }
    // GET's count, LEN, max-len and errors.
    for s in [&*rampart, &*redis] {
        let mut c = s.redis_conn()?;
        let two: Vec<redis::Value> = q(&mut c, &[b"SLOWLOG", b"GET", b"2"])?;
        assert_eq!(two.len(), 2);
        let err = q::<()>(&mut c, &[b"SLOWLOG", b"GET", b"-2"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("count should be greater than or equal to -1"),
            "{err}"
        );
        q::<()>(&mut c, &[b"CONFIG", b"SET", b"slowlog-max-len", b"3"])?;
    }
    // A shorter max-len shows from the next entry on, as in Redis.
    let lens: Vec<i64> = [&*rampart, &*redis]
        .iter()
        .map(|s| q::<i64>(&mut s.redis_conn()?, &[b"SLOWLOG", b"LEN"]))
        .collect::<Result<_>>()?;
    assert_eq!(lens[0], lens[1]);
    Ok(())
}

/// MEMORY STATS's field names, in order (values are each server's own).
fn stats_fields(s: &ServerProcess) -> Result<Vec<String>> {
    let mut c = s.redis_conn()?;
    let v: Vec<redis::Value> = q(&mut c, &[b"MEMORY", b"STATS"])?;
    Ok(v.iter()
        .step_by(2)
        .map(|k| redis::from_redis_value::<String>(k).unwrap_or_default())
        .collect())
}

#[test]
fn memory_commands_answer_as_redis() -> Result<()> {
    let rampart = Rampart::start(&[])?;
    let redis = RedisOracle::start()?;
    for s in [&*rampart, &*redis] {
        let mut c = s.redis_conn()?;
        q::<()>(&mut c, &[b"SET", b"k", b"v"])?;
        q::<()>(&mut c, &[b"SELECT", b"3"])?;
        q::<()>(&mut c, &[b"HSET", b"h", b"f", b"v"])?;
    }
    assert_eq!(stats_fields(&rampart)?, stats_fields(&redis)?);
    let mut mine = rampart.redis_conn()?;
    let mut theirs = redis.redis_conn()?;
    // USAGE: a number near Redis's for a small key, nil for none, and
    // Redis's errors.
    let a: i64 = q(&mut mine, &[b"MEMORY", b"USAGE", b"k"])?;
    let b: i64 = q(&mut theirs, &[b"MEMORY", b"USAGE", b"k"])?;
    assert!(a > 0 && a < 4 * b, "rampart {a}, redis {b}");
    for line in [
        &[&b"MEMORY"[..], b"USAGE", b"nosuch"][..],
        &[b"MEMORY", b"USAGE", b"k", b"SAMPLES", b"x"],
        &[b"MEMORY", b"USAGE", b"k", b"SAMPLES", b"-1"],
        &[b"MEMORY", b"USAGE", b"k", b"SAMPLES"],
        &[b"MEMORY", b"USAGE", b"k", b"SAMPLES", b"0"],
        &[b"MEMORY", b"USAGE", b"k", b"BOGUS", b"1"],
        &[b"MEMORY", b"HELP"],
        &[b"MEMORY", b"PURGE"],
        &[b"MEMORY", b"NOSUCH"],
        &[b"MEMORY", b"STATS", b"extra"],
        &[b"MEMORY", b"DOCTOR"],
    ] {
        let shape = |r: redis::RedisResult<redis::Value>| match r {
            Ok(redis::Value::Int(_)) => "int".to_string(),
            Ok(v) => format!("{v:?}"),
            Err(e) => e.to_string(),
        };
        let cmd = |c: &mut redis::Connection| {
            let mut x = redis::cmd(std::str::from_utf8(line[0]).unwrap_or_default());
            for a in &line[1..] {
                x.arg(*a);
            }
            shape(x.query::<redis::Value>(c))
        };
        assert_eq!(cmd(&mut mine), cmd(&mut theirs), "{line:?}");
    }
    // MALLOC-STATS is jemalloc's report, as Redis's.
    let report: String = q(&mut mine, &[b"MEMORY", b"MALLOC-STATS"])?;
    assert!(report.contains("jemalloc statistics"), "{report}");
    // INFO memory: the peak is at least what is used, startup below it.
    let info: String = q(&mut mine, &[b"INFO", b"memory"])?;
    let field = |n: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{n}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(field("used_memory_peak") >= field("used_memory"), "{info}");
    assert!(field("used_memory_startup") > 0, "{info}");
    assert!(
        field("used_memory_startup") <= field("used_memory_peak"),
        "{info}"
    );
    Ok(())
}

/// The `client_recent_max_*` fields of INFO clients.
fn recent_peaks(c: &mut redis::Connection) -> Result<(u64, u64)> {
    let info: String = q(c, &[b"INFO", b"clients"])?;
    let field = |name: &str| -> Result<u64> {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .ok_or_else(|| anyhow::anyhow!("no {name} in {info}"))?
            .trim()
            .parse()
            .map_err(Into::into)
    };
    Ok((
        field("client_recent_max_input_buffer")?,
        field("client_recent_max_output_buffer")?,
    ))
}

/// INFO's recent client peaks follow a client that sends and reads a large
/// value (Redis samples them in its cron, so it can miss a short burst;
/// Rampart notes every batch), and fall back once the window of 8 seconds
/// has passed.
#[test]
fn recent_client_buffer_peaks_follow_large_requests() -> Result<()> {
    let rampart = Rampart::start(&[])?;
    let mut c = rampart.redis_conn()?;
    let value = vec![b'x'; 300_000];
    let _: () = q(&mut c, &[b"SET", b"big", &value])?;
    let got: Vec<u8> = q(&mut c, &[b"GET", b"big"])?;
    anyhow::ensure!(got.len() == value.len());
    let (input, output) = recent_peaks(&mut c)?;
    anyhow::ensure!(input >= 300_000, "input peak {input}");
    anyhow::ensure!(output >= 300_000 - 16 * 1024, "output peak {output}");
    std::thread::sleep(std::time::Duration::from_secs(10));
    let (input, output) = recent_peaks(&mut c)?;
    anyhow::ensure!(input < 300_000, "input peak still {input}");
    anyhow::ensure!(output == 0, "output peak still {output}");
    Ok(())
}

/// CLIENT LIST's output-buffer fields of a subscriber that stops reading:
/// what the socket did not take shows as `oll` blocks taking `omem` bytes,
/// with `events=rw` while the server waits for the socket; an idle client
/// shows zeros and `events=r`. The sizes depend on what the kernel took,
/// so both servers are held to the same shape, not the same bytes.
#[test]
fn client_list_shows_the_output_a_client_has_not_taken() -> Result<()> {
    let no_limit = ["--client-output-buffer-limit", "pubsub 0 0 0"];
    let oracle = RedisOracle::start_with(&no_limit)?;
    let rampart = Rampart::start(&no_limit)?;
    for server in [&*oracle, &*rampart] {
        let mut sub = server.conn()?;
        sub.cmd(&["CLIENT", "SETNAME", "sleepy"])?;
        sub.cmd(&["SUBSCRIBE", "firehose"])?;
        let mut p = server.redis_conn()?;
        let idle = line_of(&mut p, "sleepy")?;
        anyhow::ensure!(
            field(&idle, "obl")? == 0
                && field(&idle, "oll")? == 0
                && field(&idle, "omem")? == 0
                && idle.contains(" events=r "),
            "{}: an idle subscriber shows output pending: {idle}",
            server.name()
        );
        // Far more than loopback's socket buffers take.
        let msg = vec![b'x'; 64 * 1024];
        for _ in 0..600 {
            let _: i64 = q(&mut p, &[b"PUBLISH", b"firehose", &msg])?;
        }
        let mut stuck = String::new();
        for _ in 0..100 {
            stuck = line_of(&mut p, "sleepy")?;
            if field(&stuck, "oll")? > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let (obl, oll, omem) = (
            field(&stuck, "obl")?,
            field(&stuck, "oll")?,
            field(&stuck, "omem")?,
        );
        // 600 messages of 64 KB: far more than the socket buffers.
        anyhow::ensure!(
            obl <= 16384 && oll > 0 && omem >= 8 << 20 && stuck.contains(" events=rw "),
            "{}: a subscriber that stopped reading: {stuck}",
            server.name()
        );
        anyhow::ensure!(
            field(&stuck, "tot-mem")? > omem,
            "{}: tot-mem leaves out omem: {stuck}",
            server.name()
        );
    }
    Ok(())
}

/// CLIENT LIST's line for the client named `name`.
fn line_of(c: &mut redis::Connection, name: &str) -> Result<String> {
    let list: String = q(c, &[b"CLIENT", b"LIST"])?;
    list.lines()
        .find(|l| l.contains(&format!(" name={name} ")))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no client named {name} in {list}"))
}

/// A numeric `field=` of a CLIENT LIST line.
fn field(line: &str, name: &str) -> Result<u64> {
    let v = line
        .split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .ok_or_else(|| anyhow::anyhow!("no {name} in {line}"))?;
    Ok(v.parse()?)
}

/// INFO's `total_net_output_bytes`.
fn net_out(c: &mut redis::Connection) -> Result<u64> {
    let info: String = q(c, &[b"INFO", b"stats"])?;
    let v = info
        .lines()
        .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
        .ok_or_else(|| anyhow::anyhow!("no total_net_output_bytes in {info}"))?;
    Ok(v.trim().parse()?)
}

/// `total_net_output_bytes` counts each byte sent once, on both servers.
/// Replies that wait for the end of the thread's turn, sent to a client
/// that stopped reading, are only partly taken by its socket: the rest
/// goes back to the connection, which must not count it again.
#[test]
fn net_output_counts_each_byte_once() -> Result<()> {
    let oracle = RedisOracle::start()?;
    let rampart = Rampart::start(&[])?;
    for server in [&*oracle, &*rampart] {
        let mut p = server.redis_conn()?;
        // Under the 64 KB a batch writes at once: each reply waits.
        let value = vec![b'v'; 60 * 1024];
        let _: String = q(&mut p, &[b"SET", b"big", &value])?;
        let before = net_out(&mut p)?;
        let mut slow = rampart_tests::RawConn::connect(server.port())?;
        // 12 MB of replies, one GET a batch, none read yet: far more than
        // loopback's socket buffers take.
        for _ in 0..200 {
            slow.send(&["GET", "big"])?;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let mut got = 0;
        for _ in 0..200 {
            got += slow.read_reply()?.len() as u64;
        }
        let counted = net_out(&mut p)? - before;
        // The first INFO's own reply counts too: under 4 KB.
        anyhow::ensure!(
            counted >= got && counted < got + 4096,
            "{}: {counted} bytes counted for {got} sent",
            server.name()
        );
    }
    Ok(())
}
