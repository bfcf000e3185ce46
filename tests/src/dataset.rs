//! A dataset with every kind of value, and what a client sees of one: the
//! persistence and backup tests fill a server with [`populate`] and compare
//! servers with [`contents`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use redis::Value;

/// Appears in every kind of place a value can hide: key names, string
/// values, list elements, hash fields and values, set and zset members.
pub const MARKER: &str = "PLAINTEXT-MARKER-7f3a9c";

pub fn cmd(c: &mut redis::Connection, args: &[&str]) -> Result<Value> {
    let mut r = redis::cmd(args[0]);
    for a in &args[1..] {
        r.arg(*a);
    }
    Ok(r.query(c)?)
}

/// Keys of every type, in small (listpack/intset) and large encodings,
/// integers, binary strings, expiries and two databases.
pub fn populate(c: &mut redis::Connection) -> Result<()> {
    let mut p = redis::pipe();
    p.cmd("SET").arg("str").arg("hello");
    p.cmd("SET").arg("int").arg("12345");
    p.cmd("SET").arg("neg").arg("-9223372036854775808");
    p.cmd("SET").arg("bin").arg(&[0u8, 1, 2, 255, 13, 10][..]);
    p.cmd("SET").arg("long").arg("x".repeat(5000));
    p.cmd("SET").arg(format!("key-{MARKER}")).arg(MARKER);
    p.cmd("SET").arg("ttl").arg("v").arg("PX").arg(3_600_000);
    p.cmd("RPUSH").arg("list").arg(&["a", "b", "1", MARKER]);
    for i in 0..300 {
        p.cmd("RPUSH")
            .arg("biglist")
            .arg(format!("element-{i}-{}", "y".repeat(i % 50)));
    }
    p.cmd("HSET")
        .arg("hash")
        .arg(&["f1", "v1", "f2", "2", MARKER, MARKER]);
    for i in 0..600 {
        p.cmd("HSET").arg("bighash").arg(format!("f{i}")).arg(i);
    }
    p.cmd("SADD").arg("intset").arg(&["1", "2", "3", "-7"]);
    p.cmd("SADD").arg("set").arg(&["a", "b", MARKER]);
    for i in 0..700 {
        p.cmd("SADD").arg("bigset").arg(format!("m{i}"));
    }
    p.cmd("ZADD")
        .arg("zset")
        .arg(&["1", "a", "2.5", "b", "-inf", MARKER]);
    for i in 0..200 {
        p.cmd("ZADD")
            .arg("bigzset")
            .arg(i as f64 / 3.0)
            .arg(format!("m{i}"));
    }
    p.cmd("PFADD").arg("hll").arg(&["a", "b", "c"]);
    p.cmd("EXPIRE").arg("bighash").arg(7200);
    p.cmd("SELECT").arg(3);
    p.cmd("SET").arg("in-db-3").arg("three");
    p.cmd("ZADD").arg("z3").arg(&["5", "five"]);
    p.cmd("SELECT").arg(0);
    p.query::<()>(c)?;
    Ok(())
}

/// Everything a client can see of a dataset: per (db, key) the type, a
/// canonical rendering of the value, and the absolute expiry.
pub fn contents(c: &mut redis::Connection) -> Result<BTreeMap<(u8, Vec<u8>), String>> {
    let mut out = BTreeMap::new();
    for db in 0..16u8 {
        cmd(c, &["SELECT", &db.to_string()])?;
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(c)?;
        for k in keys {
            let t: String = redis::cmd("TYPE").arg(&k).query(c)?;
            let v = match t.as_str() {
                "string" => format!("{:?}", redis::cmd("GET").arg(&k).query::<Vec<u8>>(c)?),
                "list" => format!(
                    "{:?}",
                    redis::cmd("LRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .query::<Vec<Vec<u8>>>(c)?
                ),
                "hash" => {
                    let mut m: Vec<(Vec<u8>, Vec<u8>)> = redis::cmd("HGETALL").arg(&k).query(c)?;
                    m.sort();
                    format!("{m:?}")
                }
                "set" => {
                    let mut m: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(&k).query(c)?;
                    m.sort();
                    format!("{m:?}")
                }
                "zset" => format!(
                    "{:?}",
                    redis::cmd("ZRANGE")
                        .arg(&k)
                        .arg(0)
                        .arg(-1)
                        .arg("WITHSCORES")
                        .query::<Vec<Vec<u8>>>(c)?
                ),
                other => bail!("unexpected type {other}"),
            };
            let at: i64 = redis::cmd("PEXPIRETIME").arg(&k).query(c)?;
            out.insert((db, k), format!("{t} {v} expire={at}"));
        }
    }
    cmd(c, &["SELECT", "0"])?;
    Ok(out)
}

pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> Result<String> {
    let info: String = redis::cmd("INFO").arg(section).query(c)?;
    info.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .with_context(|| format!("no {field} in INFO {section}"))
}

/// Runs MULTI/EXEC transactions on `conn` until `stop` is set, each moving
/// 1 to 7 from one of 64 counters (`counter:0`…`counter:63`) to another,
/// so the counters always sum to 0: a snapshot or backup that is one point
/// in time sees a sum of 0. The amount varies: with a fixed one every
/// counter was back at 0 after each 64 transactions, and a snapshot taken
/// at such a point (seen in CI) looked as if it held no counters at all.
/// Returns the number of transactions run.
pub fn transfer_counters(
    mut conn: redis::Connection,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Result<u64>> {
    std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let (i, j, by) = (n % 64, (n * 7 + 3) % 64, 1 + n % 7);
            redis::pipe()
                .atomic()
                .cmd("INCRBY")
                .arg(format!("counter:{i}"))
                .arg(by)
                .cmd("DECRBY")
                .arg(format!("counter:{j}"))
                .arg(by)
                .query::<()>(&mut conn)?;
            n += 1;
        }
        Ok(n)
    })
}

/// Waits (up to 30 s) until [`transfer_counters`] has moved something, so
/// a snapshot taken next cannot be one from before its first transaction
/// (a fixed sleep was not enough on a loaded CI machine).
pub fn wait_for_transfers(c: &mut redis::Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while counters(c)?.1 == 0 {
        if std::time::Instant::now() > deadline {
            bail!("the counter writer moved nothing in 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}

/// The sum of the 64 counters [`transfer_counters`] moves, and how many
/// are not 0.
pub fn counters(c: &mut redis::Connection) -> Result<(i64, usize)> {
    let mut sum = 0i64;
    let mut nonzero = 0;
    for i in 0..64 {
        let v: Option<i64> = redis::cmd("GET").arg(format!("counter:{i}")).query(c)?;
        sum += v.unwrap_or(0);
        nonzero += (v.unwrap_or(0) != 0) as usize;
    }
    Ok((sum, nonzero))
}
