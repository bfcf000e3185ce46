//! The RDB codec against a real `redis-server` 7.0:
//!
//! 1. Redis writes a `dump.rdb` holding every type in every encoding it
//!    writes; `rdb::load` reads it and every key, value, encoding and TTL
//!    must match what the server reports.
//! 2. Our writer writes the same data; a fresh `redis-server` loads it and
//!    must report the same keys, values, encodings and TTLs.
//! 3. DUMP from Redis → `restore_value` → equal, and byte-identical when
//!    re-dumped for the compact encodings; `dump_value` → RESTORE into
//!    Redis → equal.
//! 4. The same through the servers: DUMP from redis-server → RESTORE into
//!    Rampart → equal (value, encoding, TTL), Rampart's DUMP byte-identical
//!    for the compact encodings, and Rampart's DUMP → RESTORE into
//!    redis-server → equal.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use rampart_keyspace::{EncodingLimits, Value};
use rampart_persistence::rdb::{self, LoadSink, RdbError};
use rampart_tests::{Rampart, RedisOracle};

/// A value by content.
#[derive(Clone, Debug, PartialEq)]
enum Canon {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    /// (member, score bits) in ascending order.
    ZSet(Vec<(Vec<u8>, u64)>),
}

fn canon(v: &Value) -> Canon {
    match v {
        Value::List(l) => Canon::List(l.iter().map(<[u8]>::to_vec).collect()),
        Value::Hash(h) => Canon::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()),
        Value::Set(s) => Canon::Set(s.iter().map(|m| m.to_vec()).collect()),
        Value::ZSet(z) => Canon::ZSet(z.iter().map(|(m, s)| (m.to_vec(), s.to_bits())).collect()),
        _ => Canon::Str(v.as_str().unwrap_or_default().to_vec()),
    }
}

/// What a server reports for one key.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    value: Canon,
    encoding: String,
    /// PEXPIRETIME, `None` for no expiry.
    expire_at_ms: Option<u64>,
}

type Dataset = BTreeMap<(usize, Vec<u8>), Seen>;

fn score_bits(text: &[u8]) -> Result<u64> {
    let s = std::str::from_utf8(text)?;
    let v: f64 = s.parse().with_context(|| format!("score {s:?}"))?;
    Ok(v.to_bits())
}

/// Reads one key the way a client sees it.
fn read_key(c: &mut redis::Connection, key: &[u8]) -> Result<Seen> {
    let kind: String = redis::cmd("TYPE").arg(key).query(c)?;
    let value = match kind.as_str() {
        "string" => Canon::Str(redis::cmd("GET").arg(key).query(c)?),
        "list" => Canon::List(redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query(c)?),
        "hash" => {
            let flat: Vec<Vec<u8>> = redis::cmd("HGETALL").arg(key).query(c)?;
            Canon::Hash(
                flat.chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect(),
            )
        }
        "set" => Canon::Set(redis::cmd("SMEMBERS").arg(key).query(c)?),
        "zset" => {
            let flat: Vec<Vec<u8>> = redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(c)?;
            let mut out = Vec::new();
            for p in flat.chunks(2) {
                out.push((p[0].clone(), score_bits(&p[1])?));
            }
            Canon::ZSet(out)
        }
        other => bail!("unexpected type {other}"),
    };
    let encoding: String = redis::cmd("OBJECT").arg("ENCODING").arg(key).query(c)?;
    let at: i64 = redis::cmd("PEXPIRETIME").arg(key).query(c)?;
    Ok(Seen {
        value,
        encoding,
        expire_at_ms: u64::try_from(at).ok(),
    })
}

/// Every key of every database.
fn read_all(server: &RedisOracle) -> Result<Dataset> {
    let mut c = server.redis_conn()?;
    let mut out = Dataset::new();
    for db in 0..16usize {
        redis::cmd("SELECT").arg(db).query::<()>(&mut c)?;
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut c)?;
        for k in keys {
            let seen = read_key(&mut c, &k)?;
            out.insert((db, k), seen);
        }
    }
    Ok(out)
}

/// Fills a server with every type in every encoding Redis 7.0 writes.
fn populate(c: &mut redis::Connection) -> Result<()> {
    let mut p = redis::pipe();
    // Strings: int encodings (8/16/32 bit), 64-bit ints, embstr, raw,
    // LZF-compressible, incompressible, binary, empty, APPEND-built.
    p.cmd("SET").arg("s:int8").arg("-100");
    p.cmd("SET").arg("s:int16").arg("30000");
    p.cmd("SET").arg("s:int32").arg("-2000000000");
    p.cmd("SET").arg("s:int64").arg("9223372036854775807");
    p.cmd("SET").arg("s:zero-lead").arg("007");
    p.cmd("SET").arg("s:embstr").arg("hello world");
    p.cmd("SET").arg("s:lzf").arg("abcdefgh".repeat(50));
    let noise: Vec<u8> = (0..500u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    p.cmd("SET").arg("s:noise").arg(&noise);
    p.cmd("SET")
        .arg("s:binary")
        .arg(&b"\x00\xff\r\n\x80bin"[..]);
    p.cmd("SET").arg("s:empty").arg("");
    p.cmd("SET").arg("s:appended").arg("12");
    p.cmd("APPEND").arg("s:appended").arg("34");
    p.cmd("SET").arg("12345").arg("numeric key");
    p.cmd("SET")
        .arg("a-long-key-name-that-compresses-compresses-compresses")
        .arg("v");
    p.cmd("SET").arg(&b"bin\x00key\xff"[..]).arg("v");
    // Lists: one listpack node; many nodes; a large element; integers.
    p.cmd("RPUSH")
        .arg("l:small")
        .arg(&["a", "1", "-7", "xyz", "300000"]);
    let many: Vec<String> = (0..5000).map(|i| format!("item-{i}")).collect();
    p.cmd("RPUSH").arg("l:big").arg(&many);
    p.cmd("RPUSH")
        .arg("l:wide")
        .arg(&["before", &"W".repeat(20_000), "after"]);
    // Hashes: listpack, hashtable by count, hashtable by value length.
    p.cmd("HSET")
        .arg("h:small")
        .arg(&["f1", "v1", "n", "42", "neg", "-5", "", "empty"]);
    let fields: Vec<String> = (0..600)
        .flat_map(|i| [format!("field:{i}"), format!("{}", i * 3)])
        .collect();
    p.cmd("HSET").arg("h:big").arg(&fields);
    p.cmd("HSET").arg("h:longval").arg("f").arg("x".repeat(100));
    // Sets: intset (16, 64 bit), hashtable by member, by count.
    p.cmd("SADD").arg("set:int").arg(&["1", "2", "3", "-40"]);
    p.cmd("SADD")
        .arg("set:int64")
        .arg(&["9223372036854775807", "-9223372036854775808", "0"]);
    p.cmd("SADD").arg("set:str").arg(&["a", "b", "10"]);
    let ints: Vec<String> = (0..700).map(|i| (i * 7).to_string()).collect();
    p.cmd("SADD").arg("set:bigint").arg(&ints);
    // Sorted sets: listpack (integral, fractional, infinite scores),
    // skiplist by count and by member length.
    p.cmd("ZADD").arg("z:small").arg(&[
        "1", "one", "2.5", "two.5", "-3", "minus", "inf", "top", "-inf", "bottom", "0.1", "tenth",
        "1e20", "huge",
    ]);
    let members: Vec<String> = (0..300)
        .flat_map(|i| [format!("{}", i as f64 / 7.0), format!("m{i}")])
        .collect();
    p.cmd("ZADD").arg("z:big").arg(&members);
    p.cmd("ZADD")
        .arg("z:longmember")
        .arg(5)
        .arg("m".repeat(100));
    // Expiries.
    p.cmd("SET").arg("ttl:str").arg("v");
    p.cmd("PEXPIREAT").arg("ttl:str").arg(4_102_444_800_123u64);
    p.cmd("PEXPIREAT").arg("h:small").arg(4_102_444_800_000u64);
    p.cmd("EXPIREAT").arg("l:big").arg(4_102_444_900u64);
    // Other databases.
    p.cmd("SELECT").arg(1);
    p.cmd("SET").arg("db1").arg("one");
    p.cmd("RPUSH").arg("db1:list").arg(&["x", "y"]);
    p.cmd("SELECT").arg(5);
    p.cmd("HSET").arg("db5").arg("k").arg("v");
    p.cmd("PEXPIREAT").arg("db5").arg(4_102_444_800_555u64);
    p.cmd("SELECT").arg(15);
    p.cmd("ZADD").arg("db15").arg(1).arg("a");
    p.cmd("SELECT").arg(0);
    p.query::<()>(c)?;
    Ok(())
}

/// A loaded key: database, name, value, expiry.
type Entry = (usize, Vec<u8>, Value, Option<u64>);

#[derive(Default)]
struct Loaded(Vec<Entry>);

impl LoadSink for Loaded {
    fn entry(
        &mut self,
        db: usize,
        key: &[u8],
        value: Value,
        expire_at_ms: Option<u64>,
    ) -> Result<(), RdbError> {
        self.0.push((db, key.to_vec(), value, expire_at_ms));
        Ok(())
    }
}

fn loaded_dataset(loaded: &Loaded) -> Dataset {
    loaded
        .0
        .iter()
        .map(|(db, k, v, e)| {
            (
                (*db, k.clone()),
                Seen {
                    value: canon(v),
                    encoding: v.encoding().to_string(),
                    expire_at_ms: *e,
                },
            )
        })
        .collect()
}

/// Compares two datasets key by key, naming the first difference.
fn same(expect: &Dataset, got: &Dataset, what: &str) -> Result<()> {
    for (k, e) in expect {
        let Some(g) = got.get(k) else {
            bail!("{what}: key {k:?} missing");
        };
        ensure!(
            e == g,
            "{what}: key {k:?} differs:\n expected {e:?}\n      got {g:?}"
        );
    }
    ensure!(
        expect.len() == got.len(),
        "{what}: {} keys expected, {} found",
        expect.len(),
        got.len()
    );
    Ok(())
}

/// A redis-server that allows DEBUG (for DEBUG RELOAD).
fn oracle() -> Result<RedisOracle> {
    RedisOracle::start_with(&["--enable-debug-command", "yes"])
}

/// Populates `server`, then saves and reloads it, so that what it reports
/// is what a load gives (an APPEND-built "1234" is `raw` before and `int`
/// after, in Redis as in Rampart).
fn populated() -> Result<RedisOracle> {
    let server = oracle()?;
    let mut c = server.redis_conn()?;
    populate(&mut c)?;
    redis::cmd("DEBUG").arg("RELOAD").query::<()>(&mut c)?;
    Ok(server)
}

/// SAVE, and the file it wrote.
fn save(server: &RedisOracle, file: &std::path::Path) -> Result<Vec<u8>> {
    let mut c = server.redis_conn()?;
    redis::cmd("SAVE").query::<()>(&mut c)?;
    std::fs::read(file).with_context(|| format!("reading {}", file.display()))
}

#[test]
fn redis_rdb_loads_and_our_rdb_loads_in_redis() -> Result<()> {
    let redis = populated()?;
    let expect = read_all(&redis)?;
    ensure!(expect.len() > 30, "populated {} keys", expect.len());

    // (1) Redis's file, read by us.
    let file = save(&redis, &redis.dir().join("dump.rdb"))?;
    let mut loaded = Loaded::default();
    let stats = rdb::load(&file[..], &EncodingLimits::default(), &mut loaded)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    ensure!(stats.version == 10 && stats.checksum.is_some(), "{stats:?}");
    ensure!(
        stats
            .aux
            .iter()
            .any(|(k, v)| k == b"redis-ver" && v.starts_with(b"7.0.")),
        "aux {:?}",
        stats.aux
    );
    same(
        &expect,
        &loaded_dataset(&loaded),
        "redis dump.rdb read by rdb::load",
    )?;

    // (2) Our file, read by a fresh redis-server.
    let mut ours = Vec::new();
    rdb::write_header(&mut ours, &[]);
    let mut dbs: BTreeMap<usize, Vec<&Entry>> = BTreeMap::new();
    for e in &loaded.0 {
        dbs.entry(e.0).or_default().push(e);
    }
    for (db, entries) in &dbs {
        rdb::write_select_db(&mut ours, *db as u64);
        let expires = entries.iter().filter(|e| e.3.is_some()).count();
        rdb::write_resize_db(&mut ours, entries.len() as u64, expires as u64);
        for (_, k, v, e) in entries {
            rdb::write_entry(&mut ours, k, v, *e);
        }
    }
    rdb::write_eof(&mut ours);
    let crc = rdb::Crc64::checksum(&ours);
    ours.extend_from_slice(&crc.to_le_bytes());
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("ours.rdb"), &ours)?;
    let dir_arg = dir.path().to_string_lossy().into_owned();
    let fresh = RedisOracle::start_with(&["--dir", &dir_arg, "--dbfilename", "ours.rdb"])?;
    let reloaded = read_all(&fresh).with_context(|| fresh.log())?;
    same(&expect, &reloaded, "our RDB loaded by redis-server").with_context(|| fresh.log())?;

    // And Redis's own save of it reads back the same through us.
    let again = save(&fresh, &dir.path().join("ours.rdb"))?;
    let mut loaded2 = Loaded::default();
    rdb::load(&again[..], &EncodingLimits::default(), &mut loaded2)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    same(
        &expect,
        &loaded_dataset(&loaded2),
        "redis re-save read by rdb::load",
    )?;
    Ok(())
}

#[test]
fn dump_and_restore_both_ways() -> Result<()> {
    let redis = populated()?;
    let mut c = redis.redis_conn()?;
    let expect = read_all(&redis)?;
    let limits = EncodingLimits::default();
    let mut identical = 0;
    for ((db, key), seen) in &expect {
        redis::cmd("SELECT").arg(db).query::<()>(&mut c)?;
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut c)?;
        // Redis → us.
        let v = rdb::restore_value(&payload, &limits)
            .map_err(|e| anyhow::anyhow!("key {key:?}: {e}"))?;
        ensure!(
            canon(&v) == seen.value,
            "key {key:?}: restored {:?}",
            canon(&v)
        );
        ensure!(
            v.encoding() == seen.encoding,
            "key {key:?}: encoding {} after RESTORE, redis has {}",
            v.encoding(),
            seen.encoding
        );
        // Our DUMP of a compact value is Redis's, byte for byte (hash
        // tables iterate in their own order).
        let ours = rdb::dump_value(&v);
        if !matches!(seen.encoding.as_str(), "hashtable" | "skiplist") {
            ensure!(
                ours == payload,
                "key {key:?} ({}): DUMP differs\n redis {:?}\n   ours {:?}",
                seen.encoding,
                payload,
                ours
            );
            identical += 1;
        }
        // Us → Redis.
        let copy = [b"copy:".as_slice(), key].concat();
        redis::cmd("RESTORE")
            .arg(&copy)
            .arg(0)
            .arg(&ours)
            .query::<()>(&mut c)
            .with_context(|| format!("RESTORE of our DUMP of {key:?}"))?;
        let back = read_key(&mut c, &copy)?;
        ensure!(
            back.value == seen.value,
            "key {key:?}: RESTOREd {:?}",
            back.value
        );
        ensure!(
            back.encoding == seen.encoding,
            "key {key:?}: encoding {} after RESTORE in redis, was {}",
            back.encoding,
            seen.encoding
        );
        redis::cmd("DEL").arg(&copy).query::<()>(&mut c)?;
    }
    eprintln!(
        "{} keys, {identical} byte-identical DUMP payloads",
        expect.len()
    );
    ensure!(identical > 20, "only {identical} byte-identical payloads");
    Ok(())
}

#[test]
fn redis_refuses_nothing_we_write_and_we_refuse_its_corruptions() -> Result<()> {
    // A corrupted Redis DUMP is refused with the same class of error Redis
    // gives (checksum vs. format).
    let redis = RedisOracle::start()?;
    let mut c = redis.redis_conn()?;
    redis::cmd("HSET")
        .arg("h")
        .arg(&["a", "1", "b", "2"])
        .query::<()>(&mut c)?;
    let payload: Vec<u8> = redis::cmd("DUMP").arg("h").query(&mut c)?;
    let mut bad = payload.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let e = rdb::restore_value(&bad, &EncodingLimits::default()).unwrap_err();
    ensure!(e.is_payload_version_or_checksum(), "{e}");
    let err = redis::cmd("RESTORE")
        .arg("h2")
        .arg(0)
        .arg(&bad)
        .query::<()>(&mut c)
        .unwrap_err();
    ensure!(
        err.to_string()
            .contains("DUMP payload version or checksum are wrong"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(1));
    Ok(())
}

#[test]
fn dump_restore_between_redis_and_rampart() -> Result<()> {
    let redis = populated()?;
    let rampart = Rampart::start(&[])?;
    let expect = read_all(&redis)?;
    let mut rc = redis.redis_conn()?;
    let mut pc = rampart.redis_conn()?;
    let mut identical = 0;
    for ((db, key), seen) in &expect {
        redis::cmd("SELECT").arg(db).query::<()>(&mut rc)?;
        redis::cmd("SELECT").arg(db).query::<()>(&mut pc)?;
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut rc)?;
        // Redis → Rampart, with the key's absolute expiry.
        let mut restore = redis::cmd("RESTORE");
        restore
            .arg(key)
            .arg(seen.expire_at_ms.unwrap_or(0))
            .arg(&payload)
            .arg("ABSTTL");
        restore
            .query::<()>(&mut pc)
            .with_context(|| format!("RESTORE {key:?} into Rampart"))?;
        let got = read_key(&mut pc, key)?;
        ensure!(
            &got == seen,
            "key {key:?} in Rampart after RESTORE:\n expected {seen:?}\n      got {got:?}"
        );
        // Rampart's DUMP is Redis's for the compact encodings.
        let ours: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut pc)?;
        if !matches!(seen.encoding.as_str(), "hashtable" | "skiplist") {
            ensure!(
                ours == payload,
                "key {key:?} ({}): Rampart's DUMP differs from Redis's",
                seen.encoding
            );
            identical += 1;
        }
        // Rampart → Redis.
        let copy = [b"copy:".as_slice(), key].concat();
        redis::cmd("RESTORE")
            .arg(&copy)
            .arg(0)
            .arg(&ours)
            .query::<()>(&mut rc)
            .with_context(|| format!("RESTORE of Rampart's DUMP of {key:?} into redis"))?;
        let back = read_key(&mut rc, &copy)?;
        ensure!(
            back.value == seen.value && back.encoding == seen.encoding,
            "key {key:?}: Rampart's DUMP restored in redis as {back:?}, was {seen:?}"
        );
        redis::cmd("DEL").arg(&copy).query::<()>(&mut rc)?;
    }
    ensure!(identical > 20, "only {identical} byte-identical payloads");
    // Nothing else appeared in Rampart.
    let mut total = 0;
    for db in 0..16usize {
        redis::cmd("SELECT").arg(db).query::<()>(&mut pc)?;
        let n: usize = redis::cmd("DBSIZE").query(&mut pc)?;
        total += n;
    }
    ensure!(
        total == expect.len(),
        "{total} keys in Rampart, {} in redis",
        expect.len()
    );
    Ok(())
}
