//! maxmemory and eviction on the real binary: the OOM refusals compared
//! byte for byte with redis-server 7.0, each policy taking the right class
//! of keys while memory stays at the limit, LRU and LFU keeping a hot set
//! that random eviction loses, and a replica converging on its primary
//! through the primary's evictions without evicting on its own.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rampart_tests::{escape, Rampart, RawConn, RedisOracle, ServerProcess};

/// A value of 1000 bytes: big enough that the keys dominate memory.
fn value() -> String {
    "x".repeat(1000)
}

fn info_field(s: &ServerProcess, section: &str, field: &str) -> Result<String> {
    rampart_tests::dataset::info_field(&mut s.redis_conn()?, section, field)
}

fn info_u64(s: &ServerProcess, section: &str, field: &str) -> Result<u64> {
    Ok(info_field(s, section, field)?.parse()?)
}

/// Writes `prefix:i` for every `i` in `range`, pipelined, each with a TTL
/// of `ttl(i)` seconds when it gives one.
fn fill(
    s: &ServerProcess,
    prefix: &str,
    range: std::ops::Range<usize>,
    ttl: impl Fn(usize) -> Option<u64>,
) -> Result<()> {
    let mut c = s.redis_conn()?;
    let v = value();
    let ids: Vec<usize> = range.collect();
    for chunk in ids.chunks(200) {
        let mut p = redis::pipe();
        for &i in chunk {
            let key = format!("{prefix}:{i}");
            match ttl(i) {
                Some(t) => p.cmd("SET").arg(&key).arg(&v).arg("EX").arg(t).ignore(),
                None => p.cmd("SET").arg(&key).arg(&v).ignore(),
            };
        }
        p.query::<()>(&mut c)?;
    }
    Ok(())
}

/// Which of `prefix:i`, `i` in `range`, still exist.
fn surviving(s: &ServerProcess, prefix: &str, range: std::ops::Range<usize>) -> Result<Vec<usize>> {
    let mut c = s.redis_conn()?;
    let ids: Vec<usize> = range.collect();
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let mut p = redis::pipe();
        for &i in chunk {
            p.cmd("EXISTS").arg(format!("{prefix}:{i}"));
        }
        let found: Vec<i64> = p.query(&mut c)?;
        out.extend(
            chunk
                .iter()
                .zip(found)
                .filter(|(_, f)| *f == 1)
                .map(|(i, _)| *i),
        );
    }
    Ok(out)
}

/// Starts Rampart with `policy` and a limit `extra` bytes above what it
/// uses empty.
fn start_limited(policy: &str, extra: u64, more: &[&str]) -> Result<(Rampart, u64)> {
    let mut args = vec!["--maxmemory-policy", policy, "--save", ""];
    args.extend(more);
    let s = Rampart::start(&args)?;
    let base = info_u64(&s, "memory", "used_memory")?;
    let limit = base + extra;
    let mut c = s.redis_conn()?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(limit)
        .query::<()>(&mut c)?;
    Ok((s, limit))
}

/// Used memory as the limit sees it, checked against it: a reading may be
/// a millisecond behind the writes, so it is allowed that much slack.
fn assert_within(s: &ServerProcess, limit: u64, what: &str) -> Result<()> {
    let used = info_u64(s, "memory", "used_memory")?;
    let slack = 256 * 1024;
    assert!(
        used <= limit + slack,
        "{what}: used_memory {used} is over maxmemory {limit} by {}",
        used - limit
    );
    Ok(())
}

fn scenario(port: u16) -> Result<Vec<Vec<u8>>> {
    let mut c = RawConn::connect(port)?;
    let mut log = Vec::new();
    let script: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["CONFIG", "SET", "maxmemory", "1"],
        // denyoom commands are refused; reads and deletes are not.
        &["SET", "b", "2"],
        &["GET", "a"],
        &["INCR", "n"],
        &["LPUSH", "l", "x"],
        &["APPEND", "a", "more"],
        &["DEL", "a"],
        &["EXISTS", "a"],
        // Inside MULTI anything is refused (queuing takes memory), and
        // EXEC then aborts.
        &["MULTI"],
        &["GET", "a"],
        &["SET", "c", "1"],
        &["EXEC"],
        &["MULTI"],
        &["DISCARD"],
        // volatile-lru with no key holding a TTL has nothing to evict.
        &["CONFIG", "SET", "maxmemory-policy", "volatile-lru"],
        &["SET", "d", "1"],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["SET", "e", "1", "EX", "100"],
        &["SET", "f", "1"],
        // Lowering the limit evicts at once: the key with a TTL goes.
        &["CONFIG", "SET", "maxmemory", "1"],
        &["EXISTS", "e"],
        &["EXISTS", "f"],
        &["SET", "g", "1"],
        &["CONFIG", "SET", "maxmemory", "0"],
        // Not integers: Redis shares small integer objects when
        // maxmemory is 0, and with them one access counter.
        &["SET", "g", "gv"],
        &["OBJECT", "FREQ", "g"],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
        &["SET", "h", "hv"],
        &["OBJECT", "FREQ", "h"],
        &["GET", "h"],
        &["OBJECT", "FREQ", "h"],
        &["OBJECT", "IDLETIME", "h"],
    ];
    for cmd in script {
        log.push(c.cmd(cmd)?);
    }
    // RESTORE's payload is DUMP's; take a real one so the CRC matches.
    let dump = c.cmd(&["DUMP", "g"])?;
    let payload = &dump[dump.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1)..dump.len() - 2];
    let restore: [&[u8]; 6] = [b"RESTORE", b"r2", b"0", payload, b"FREQ", b"42"];
    log.push(c.cmd(&restore)?);
    log.push(c.cmd(&["OBJECT", "FREQ", "r2"])?);
    let stats = c.cmd(&["INFO", "stats"])?;
    let evicted = String::from_utf8_lossy(&stats)
        .lines()
        .find(|l| l.starts_with("evicted_keys:"))
        .unwrap_or("evicted_keys: missing")
        .to_string();
    log.push(evicted.into_bytes());
    Ok(log)
}

#[test]
fn oom_refusals_and_lfu_counters_match_redis() -> Result<()> {
    let redis = RedisOracle::start()?;
    let rampart = Rampart::start(&["--save", ""])?;
    let want = scenario(redis.port())?;
    let got = scenario(rampart.port())?;
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(escape(g), escape(w), "reply {i} differs");
    }
    assert_eq!(want.len(), got.len());
    Ok(())
}

const PERSISTENT: usize = 3000;
const VOLATILE: usize = 10_000;

/// Fills past the limit with keys without a TTL (`p:`) and with one
/// (`v:i` expiring in 10000 + i seconds), interleaved, and returns which
/// of each survived.
fn mixed_fill(s: &ServerProcess, limit: u64, policy: &str) -> Result<(Vec<usize>, Vec<usize>)> {
    for round in 0..10 {
        let p = PERSISTENT / 10;
        let v = VOLATILE / 10;
        fill(s, "p", round * p..(round + 1) * p, |_| None)?;
        fill(s, "v", round * v..(round + 1) * v, |i| {
            Some(10_000 + i as u64)
        })?;
        assert_within(s, limit, policy)?;
    }
    let evicted = info_u64(s, "stats", "evicted_keys")?;
    assert!(evicted > 0, "{policy}: nothing was evicted");
    Ok((
        surviving(s, "p", 0..PERSISTENT)?,
        surviving(s, "v", 0..VOLATILE)?,
    ))
}

#[test]
fn each_policy_evicts_its_class_of_keys_within_the_limit() -> Result<()> {
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
    ] {
        let (s, limit) = start_limited(policy, 8 << 20, &[])?;
        let (p, v) = mixed_fill(&s, limit, policy)?;
        if policy.starts_with("volatile") {
            assert_eq!(p.len(), PERSISTENT, "{policy} evicted a key without a TTL");
        } else {
            assert!(
                p.len() < PERSISTENT,
                "{policy} spared every key without a TTL"
            );
        }
        let kept = p.len() + v.len();
        assert!(
            kept * 10 < (PERSISTENT + VOLATILE) * 7,
            "{policy}: {kept} keys left"
        );
        if policy == "volatile-ttl" {
            // The nearest expiries go first: survivors are the late ones.
            let late = v.iter().filter(|&&i| i >= VOLATILE / 2).count();
            assert!(
                late * 10 >= v.len() * 9,
                "volatile-ttl kept {late} late keys of {}",
                v.len()
            );
        }
        // Every command checks the limit first, so the counting itself
        // may have evicted a few more.
        let dbsize: u64 = redis::cmd("DBSIZE").query(&mut s.redis_conn()?)?;
        assert!(
            dbsize as usize <= kept && dbsize > 0,
            "{policy}: DBSIZE {dbsize}, counted {kept}"
        );
    }
    Ok(())
}

/// Survival of a hot set against the cold keys written with it, under
/// `policy`: 4000 keys, the first 400 read 20 times two seconds later
/// (past the LRU clock's one-second resolution), then 3000 more keys.
fn hot_and_cold(policy: &str) -> Result<(f64, f64)> {
    // No LFU decay, so a minute boundary during the test decays nothing.
    let (s, limit) = start_limited(policy, 6 << 20, &["--lfu-decay-time", "0"])?;
    fill(&s, "k", 0..4000, |_| None)?;
    std::thread::sleep(Duration::from_millis(2100));
    let mut c = s.redis_conn()?;
    for _ in 0..20 {
        let mut p = redis::pipe();
        for i in 0..400 {
            p.cmd("GET").arg(format!("k:{i}")).ignore();
        }
        p.query::<()>(&mut c)?;
    }
    fill(&s, "n", 0..3000, |_| None)?;
    assert_within(&s, limit, policy)?;
    let hot = surviving(&s, "k", 0..400)?.len() as f64 / 400.0;
    let cold = surviving(&s, "k", 400..4000)?.len() as f64 / 3600.0;
    Ok((hot, cold))
}

#[test]
fn lru_and_lfu_keep_a_hot_set_that_random_eviction_loses() -> Result<()> {
    let (random_hot, random_cold) = hot_and_cold("allkeys-random")?;
    assert!(
        random_cold < 0.9,
        "random eviction evicted too little: {random_cold}"
    );
    for policy in ["allkeys-lru", "allkeys-lfu"] {
        let (hot, cold) = hot_and_cold(policy)?;
        assert!(
            hot >= 0.95 && hot > random_hot + 0.1 && cold < hot,
            "{policy}: hot set kept {hot:.2} (random {random_hot:.2}), cold {cold:.2}"
        );
    }
    Ok(())
}

fn keys_of(s: &ServerProcess) -> Result<BTreeSet<String>> {
    let mut c = s.redis_conn()?;
    let mut out = BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(1000)
            .query(&mut c)?;
        out.extend(keys);
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

/// Waits until `primary` stops evicting and `replica` has caught up, then
/// asserts both hold the same keys. Commands after a fill may still evict
/// (each checks the limit first), so it compares only once the primary has
/// settled.
fn assert_converged(primary: &ServerProcess, replica: &ServerProcess) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (r, p) = loop {
        let before = info_u64(primary, "stats", "evicted_keys")?;
        let offset = info_u64(primary, "replication", "master_repl_offset")?;
        while info_u64(replica, "replication", "master_repl_offset")? < offset {
            if Instant::now() > deadline {
                bail!("the replica never reached offset {offset}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let (r, p) = (keys_of(replica)?, keys_of(primary)?);
        if info_u64(primary, "stats", "evicted_keys")? == before || Instant::now() > deadline {
            break (r, p);
        }
    };
    let only_r: Vec<_> = r.difference(&p).take(5).collect();
    let only_p: Vec<_> = p.difference(&r).take(5).collect();
    assert!(
        only_r.is_empty() && only_p.is_empty(),
        "replica has {} keys, primary {}; only on the replica: {only_r:?}; only on the primary: {only_p:?}",
        r.len(),
        p.len()
    );
    Ok(())
}

#[test]
fn a_replica_follows_its_primarys_evictions_and_never_evicts_itself() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let ring = rampart_tests::shared_keyring(keys.path());
    let (primary, limit) = start_limited(
        "allkeys-lru",
        4 << 20,
        &["--kms-key-file", &ring, "--repl-diskless-sync-delay", "0"],
    )?;
    let to = format!("127.0.0.1 {}", primary.port());
    // A limit far below what the replica will hold: it must not act on it.
    let replica = Rampart::start(&[
        "--kms-key-file",
        &ring,
        "--replicaof",
        &to,
        "--save",
        "",
        "--maxmemory",
        "1mb",
        "--maxmemory-policy",
        "allkeys-random",
    ])?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(&replica, "replication", "master_link_status")? != "up" {
        if Instant::now() > deadline {
            bail!("the replica never linked");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fill(&primary, "k", 0..8000, |i| (i % 3 == 0).then_some(10_000))?;
    assert_within(&primary, limit, "primary")?;
    let evicted = info_u64(&primary, "stats", "evicted_keys")?;
    assert!(evicted > 1000, "the primary evicted {evicted} keys");
    assert_converged(&primary, &replica)?;
    // Lowering the limit with a replica attached (the stream fed, so
    // evictions take the exclusive gate) evicts on the background pass
    // while CONFIG SET's caller holds the gate.
    let before = keys_of(&primary)?.len();
    let mut c = primary.redis_conn()?;
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(limit - (2 << 20))
        .query::<()>(&mut c)?;
    assert_converged(&primary, &replica)?;
    let after = keys_of(&primary)?.len();
    assert!(
        after < before,
        "{before} keys before lowering the limit, {after} after"
    );
    assert_eq!(info_u64(&replica, "stats", "evicted_keys")?, 0);
    Ok(())
}

fn connected_clients(s: &ServerProcess) -> Result<u64> {
    info_u64(s, "clients", "connected_clients")
}

/// Waits until `s` has `n` clients connected.
fn wait_clients(s: &ServerProcess, n: u64, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while connected_clients(s)? != n {
        if Instant::now() > deadline {
            bail!(
                "{}: {what}: {} clients connected, not {n}",
                s.name(),
                connected_clients(s)?
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A client that pipelines GETs of a 100 KB value and never reads.
fn greedy_reader(port: u16) -> Result<RawConn> {
    let mut c = RawConn::connect(port)?;
    c.cmd(&["SET", "big", &"b".repeat(100 * 1024)])?;
    for _ in 0..400 {
        c.send(&["GET", "big"])?;
    }
    Ok(c)
}

/// redis-server and Rampart (without snapshots), both with `extra`.
fn both_with(extra: &[&str]) -> Result<(RedisOracle, Rampart)> {
    let mut args = vec!["--save", ""];
    args.extend(extra);
    Ok((RedisOracle::start_with(extra)?, Rampart::start(&args)?))
}

#[test]
fn a_client_that_never_reads_is_closed_by_the_output_buffer_limit() -> Result<()> {
    let limit = ["--client-output-buffer-limit", "normal 0 256kb 1"];
    let (redis, rampart) = both_with(&limit)?;
    for s in [&*redis, &*rampart] {
        let _greedy = greedy_reader(s.port())?;
        // The greedy client goes (the probe of INFO is the one left)...
        wait_clients(s, 1, "the greedy client outlived its soft limit")?;
        // ...and everyone else is served.
        let mut other = s.redis_conn()?;
        let pong: String = redis::cmd("PING").query(&mut other)?;
        assert_eq!(pong, "PONG");
    }
    assert!(
        rampart
            .log()
            .contains("scheduled to be closed ASAP for overcoming of output buffer limits"),
        "{}",
        rampart.log()
    );
    Ok(())
}

/// Starts a bulk string of `declared` bytes and sends `sent` of them: its
/// query buffer holds that much until the rest comes (Redis allocates the
/// whole declared length at once).
fn big_query(port: u16, no_evict: bool, declared: usize, sent: usize) -> Result<RawConn> {
    let mut c = RawConn::connect(port)?;
    if no_evict {
        assert_eq!(c.cmd(&["CLIENT", "NO-EVICT", "on"])?, b"+OK\r\n");
    }
    c.send_raw(format!("*3\r\n$3\r\nSET\r\n$1\r\nq\r\n${declared}\r\n").as_bytes())?;
    // The server may close the connection before it has all of it.
    let _ = c.send_raw(&vec![b'q'; sent]);
    Ok(c)
}

#[test]
fn maxmemory_clients_evicts_the_biggest_client_but_not_a_no_evict_one() -> Result<()> {
    let limit = ["--maxmemory-clients", "3mb"];
    let (redis, rampart) = both_with(&limit)?;
    for s in [&*redis, &*rampart] {
        let mut idle = RawConn::connect(s.port())?;
        let _kept = big_query(s.port(), true, 1 << 20, 512 << 10)?;
        std::thread::sleep(Duration::from_millis(300));
        // The rest fit once this one is gone: Redis keeps evicting until
        // they do, sparing no one but NO-EVICT clients.
        let _evicted = big_query(s.port(), false, 8 << 20, 4 << 20)?;
        // The idle client, the NO-EVICT one and INFO's probe remain.
        wait_clients(s, 3, "client eviction")?;
        assert_eq!(info_u64(s, "stats", "evicted_clients")?, 1, "{}", s.name());
        assert_eq!(idle.cmd(&["PING"])?, b"+PONG\r\n");
    }
    assert!(
        rampart.log().contains("Evicting client: id="),
        "{}",
        rampart.log()
    );
    Ok(())
}

#[test]
fn a_much_lower_limit_is_reached_in_passes_while_clients_are_served() -> Result<()> {
    let s = Rampart::start(&[
        "--save",
        "",
        "--enable-debug-command",
        "yes",
        "--maxmemory-policy",
        "allkeys-random",
    ])?;
    let mut c = s.redis_conn()?;
    let base = info_u64(&s, "memory", "used_memory")?;
    redis::cmd("DEBUG")
        .arg("POPULATE")
        .arg(300_000)
        .arg("key")
        .arg(100)
        .query::<()>(&mut c)?;
    let limit = base + (2 << 20);
    // One pass runs inside CONFIG SET (tenacity 10: about half a
    // millisecond); the rest is the background pass's.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(limit)
        .query::<()>(&mut c)?;
    let mut other = RawConn::connect(s.port())?;
    assert_eq!(other.cmd(&["PING"])?, b"+PONG\r\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_u64(&s, "stats", "current_eviction_exceeded_time")? > 0
        || info_u64(&s, "memory", "used_memory")? > limit + (256 << 10)
    {
        if Instant::now() > deadline {
            bail!(
                "still over the limit: {}",
                info_field(&s, "memory", "used_memory")?
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let evicted = info_u64(&s, "stats", "evicted_keys")?;
    assert!(evicted > 250_000, "evicted {evicted}");
    assert!(
        s.log().contains("is smaller than the current memory usage"),
        "{}",
        s.log()
    );
    Ok(())
}
