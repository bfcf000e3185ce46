//! Encrypted replication, end to end: real `rampart-server` primaries and
//! replicas, Debian's `redis-server` 7.0 on either side, and a TCP proxy of
//! our own between them to record the full-sync bytes and to cut links.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rampart_tests::{wait_for, Rampart, RedisOracle, Reply, ServerProcess};
use redis::Value;

/// Appears in key names and values; must never be seen in the clear on the
/// wire between two Rampart servers or in a Rampart replica's directory.
const MARKER: &str = "PLAINTEXT-MARKER-5e1d77";

/// A TCP forwarder from a local port to `target`, recording what the
/// target sends; `cut` drops every connection and refuses new ones until
/// `restore`.
struct Proxy {
    port: u16,
    /// Where new connections go (see [`Proxy::retarget`]).
    target: Arc<AtomicU16>,
    down: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    from_target: Arc<Mutex<Vec<u8>>>,
}

impl Proxy {
    fn start(target: u16) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let down = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let from_target: Arc<Mutex<Vec<u8>>> = Arc::default();
        let to = Arc::new(AtomicU16::new(target));
        let (d, c, rec, t) = (down.clone(), conns.clone(), from_target.clone(), to.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", t.load(Ordering::SeqCst))) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
                    let mut g = c.lock().unwrap_or_else(|e| e.into_inner());
                    g.push(a);
                    g.push(b);
                }
                let (Ok(c1), Ok(s1)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                std::thread::spawn(move || pump(c1, server, None));
                let rec = rec.clone();
                std::thread::spawn(move || pump(s1, client, Some(rec)));
            }
        });
        Ok(Proxy {
            port,
            target: to,
            down,
            conns,
            from_target,
        })
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self
            .conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// New connections go to `port` from now on.
    fn retarget(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    fn recorded(&self) -> Vec<u8> {
        self.from_target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, record: Option<Arc<Mutex<Vec<u8>>>>) {
    let mut buf = [0u8; 65536];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(r) = &record {
                    r.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]);
                }
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn cmd(c: &mut redis::Connection, args: &[&str]) -> Result<Value> {
    let mut r = redis::cmd(args[0]);
    for a in &args[1..] {
        r.arg(*a);
    }
    Ok(r.query(c)?)
}

fn info_field(s: &ServerProcess, section: &str, field: &str) -> Result<String> {
    let mut c = s.redis_conn()?;
    let info: String = redis::cmd("INFO").arg(section).query(&mut c)?;
    for line in info.lines() {
        if let Some(v) = line.strip_prefix(&format!("{field}:")) {
            return Ok(v.trim().to_string());
        }
    }
    Ok(String::new())
}

/// (database, key) -> (DUMP payload, PEXPIRETIME).
type Dataset = BTreeMap<(u8, Vec<u8>), (Vec<u8>, i64)>;

/// Every key of every database with its DUMP payload and absolute expiry.
fn dataset(s: &ServerProcess) -> Result<Dataset> {
    let mut c = s.redis_conn()?;
    let mut out = BTreeMap::new();
    for db in 0..16u8 {
        redis::cmd("SELECT").arg(db).query::<()>(&mut c)?;
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query(&mut c)?;
            for k in keys {
                let dump: Option<Vec<u8>> = redis::cmd("DUMP").arg(&k).query(&mut c)?;
                let at: i64 = redis::cmd("PEXPIRETIME").arg(&k).query(&mut c)?;
                if let Some(d) = dump {
                    out.insert((db, k), (d, at));
                }
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    Ok(out)
}

/// FUNCTION LIST WITHCODE, libraries in a fixed order (Redis lists them
/// in hash order): functions are part of the dataset.
fn functions(s: &ServerProcess) -> Result<Reply> {
    let mut c = s.conn()?;
    Ok(Reply::parse(&c.cmd(&["FUNCTION", "LIST", "WITHCODE"])?)?.sorted())
}

/// Waits until the replica applied everything the primary wrote, then
/// compares their function libraries and their datasets key by key.
fn assert_converged(primary: &ServerProcess, replica: &ServerProcess) -> Result<()> {
    wait_for("the replica to catch up", Duration::from_secs(60), || {
        let p = info_field(primary, "replication", "master_repl_offset")?;
        let r = info_field(replica, "replication", "slave_repl_offset")?;
        let up = info_field(replica, "replication", "master_link_status")?;
        Ok(up == "up" && p == r)
    })?;
    let (fa, fb) = (functions(primary)?, functions(replica)?);
    if fa != fb {
        bail!(
            "function libraries differ: primary {}, replica {}",
            rampart_tests::escape(&fa.to_bytes()),
            rampart_tests::escape(&fb.to_bytes())
        );
    }
    let a = dataset(primary)?;
    let b = dataset(replica)?;
    if a != b {
        let only_a: Vec<_> = a.keys().filter(|k| !b.contains_key(*k)).take(5).collect();
        let only_b: Vec<_> = b.keys().filter(|k| !a.contains_key(*k)).take(5).collect();
        let differ: Vec<_> = a
            .iter()
            .filter(|(k, v)| b.get(*k).is_some_and(|w| w != *v))
            .map(|(k, _)| k)
            .take(5)
            .collect();
        bail!(
            "datasets differ ({} vs {} keys): only on primary {only_a:?}, only on replica {only_b:?}, different {differ:?}",
            a.len(),
            b.len()
        );
    }
    Ok(())
}

/// Keys of every type, expiries, two databases, a transaction.
fn populate(c: &mut redis::Connection, tag: &str, n: usize) -> Result<()> {
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET")
            .arg(format!("{tag}:s:{i}"))
            .arg(format!("{MARKER}-{i}"));
        p.cmd("SET")
            .arg(format!("{tag}:ttl:{i}"))
            .arg("v")
            .arg("EX")
            .arg(3600 + i);
        p.cmd("RPUSH").arg(format!("{tag}:l:{}", i % 7)).arg(i);
        p.cmd("HSET")
            .arg(format!("{tag}:h:{}", i % 5))
            .arg(format!("f{i}"))
            .arg(MARKER);
        p.cmd("SADD").arg(format!("{tag}:set:{}", i % 3)).arg(i);
        p.cmd("ZADD")
            .arg(format!("{tag}:z:{}", i % 4))
            .arg(i as f64 / 3.0)
            .arg(format!("m{i}"));
        p.cmd("INCRBYFLOAT").arg(format!("{tag}:f")).arg("0.1");
        p.cmd("EXPIRE").arg(format!("{tag}:l:{}", i % 7)).arg(5000);
    }
    p.cmd("SPOP").arg(format!("{tag}:set:0"));
    p.cmd("SPOP").arg(format!("{tag}:set:1")).arg(2);
    p.cmd("SET")
        .arg(format!("{tag}:gone"))
        .arg("x")
        .arg("PX")
        .arg(1);
    p.cmd("PFADD")
        .arg(format!("{tag}:hll"))
        .arg(&["a", "b", "c"]);
    p.cmd("SELECT").arg(3);
    p.cmd("SET").arg(format!("{tag}:db3")).arg(MARKER);
    p.cmd("SELECT").arg(0);
    p.query::<()>(c)?;
    redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg(format!("{tag}:tx"))
        .cmd("LPUSH")
        .arg(format!("{tag}:txl"))
        .arg("a")
        .cmd("GETEX")
        .arg(format!("{tag}:s:0"))
        .arg("PX")
        .arg(900_000)
        .query::<()>(c)?;
    Ok(())
}

use rampart_tests::shared_keyring as keyring;

fn replica_args(keys: &str, port: u16) -> Vec<String> {
    vec![
        "--kms-key-file".into(),
        keys.into(),
        "--replicaof".into(),
        format!("127.0.0.1 {port}"),
        "--save".into(),
        "".into(),
    ]
}

/// No wait for more replicas before a full sync (7.0's default is 5
/// seconds): the tests that need the delay set it themselves.
const NO_SYNC_DELAY: [&str; 2] = ["--repl-diskless-sync-delay", "0"];

/// A Rampart primary that, like redis-server by default, persists nothing,
/// syncs at once and may send a plain RDB to a redis-server replica: the
/// twin of `RedisOracle::start_with(&NO_SYNC_DELAY)` in the side-by-side
/// tests.
fn plain_sync_rampart() -> Result<Rampart> {
    Rampart::start(&[
        "--save",
        "",
        "--repl-allow-plaintext-sync",
        "yes",
        NO_SYNC_DELAY[0],
        NO_SYNC_DELAY[1],
    ])
}

fn start_rampart(args: &[String]) -> Result<Rampart> {
    // Two connection threads even on a small machine, so writes from
    // several clients race as they do on a big one.
    let mut a: Vec<&str> = vec!["--io-threads", "2"];
    a.extend(NO_SYNC_DELAY);
    a.extend(args.iter().map(|s| s.as_str()));
    Rampart::start(&a)
}

fn start_rampart_in(dir: &Path, args: &[String]) -> Result<Rampart> {
    let mut a: Vec<&str> = NO_SYNC_DELAY.to_vec();
    a.extend(args.iter().map(|s| s.as_str()));
    Rampart::start_in(dir, &a)
}

/// Whether any file under `dir` holds `needle`.
fn dir_contains(dir: &Path, needle: &[u8]) -> Result<Option<PathBuf>> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            if let Some(f) = dir_contains(&p, needle)? {
                return Ok(Some(f));
            }
        } else {
            let data = std::fs::read(&p)?;
            if data.windows(needle.len()).any(|w| w == needle) {
                return Ok(Some(p));
            }
        }
    }
    Ok(None)
}

/// The `$EOF:`-framed full-sync payload in what a primary sent.
fn full_sync_payload(wire: &[u8]) -> Result<Vec<u8>> {
    let find = |hay: &[u8], n: &[u8], from: usize| {
        hay[from..]
            .windows(n.len())
            .position(|w| w == n)
            .map(|p| p + from)
    };
    let start = find(wire, b"+FULLRESYNC", 0).context("no +FULLRESYNC on the wire")?;
    let eof = find(wire, b"$EOF:", start).context("no $EOF: framing")?;
    let mark = wire
        .get(eof + 5..eof + 45)
        .context("truncated $EOF: mark")?
        .to_vec();
    let body = eof + 47;
    let end = find(wire, &mark, body).context("no closing mark")?;
    Ok(wire[body..end].to_vec())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn two_replicas_converge_under_writes_and_the_sync_is_encrypted() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
    ])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "before", 300)?;
    // Writes keep coming while the replicas attach.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut c = primary.redis_conn()?;
        std::thread::spawn(move || -> Result<()> {
            // At least 100k writes (each round queues more than 8 x 20
            // commands), and for as long as the replicas are attaching.
            let mut i = 0;
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) || sent < 100_000 {
                populate(&mut c, &format!("during{}", i % 5), 20)?;
                sent += 8 * 20;
                i += 1;
            }
            Ok(())
        })
    };
    let proxy = Proxy::start(primary.port())?;
    let r1 = start_rampart(&replica_args(&k, proxy.port))?;
    let r2 = start_rampart(&replica_args(&k, primary.port()))?;
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    populate(&mut c, "after", 50)?;
    assert_converged(&primary, &r1)?;
    assert_converged(&primary, &r2)?;
    // Replicas refuse writes from clients.
    let mut rc = r1.conn()?;
    assert_eq!(
        rc.cmd(&["SET", "x", "1"])?,
        b"-READONLY You can't write against a read only replica.\r\n"
    );
    let payload = full_sync_payload(&proxy.recorded())?;
    assert!(
        payload.starts_with(b"RAMPART\x01"),
        "the full sync is not an envelope"
    );
    assert!(payload.len() > 10_000, "suspiciously small full sync");
    assert!(
        !contains(&payload, MARKER.as_bytes()),
        "the marker crossed the wire in the clear"
    );
    for r in [&r1, &r2] {
        assert_eq!(
            dir_contains(r.dir(), MARKER.as_bytes())?,
            None,
            "plaintext in the replica's directory"
        );
    }
    assert!(primary.log().contains("succeeded"), "{}", primary.log());
    let mut pc = primary.conn()?;
    let role = String::from_utf8_lossy(&pc.cmd(&["ROLE"])?).into_owned();
    assert!(role.starts_with("*3\r\n$6\r\nmaster\r\n"), "{role}");
    assert_eq!(pc.cmd(&["WAIT", "2", "5000"])?, b":2\r\n");
    Ok(())
}

#[test]
fn a_cut_link_continues_from_the_backlog_and_a_long_cut_resyncs() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
        "--repl-backlog-size".into(),
        "64kb".into(),
    ])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "a", 100)?;
    // The stream's last SELECT is database 5 when the replica attaches,
    // and still when it resumes after the cut: both must land there.
    let mut c5 = primary.redis_conn()?;
    cmd(&mut c5, &["SELECT", "5"])?;
    cmd(&mut c5, &["SET", "in5", "a"])?;
    let proxy = Proxy::start(primary.port())?;
    let replica = start_rampart(&replica_args(&k, proxy.port))?;
    wait_for("the link", Duration::from_secs(20), || {
        Ok(info_field(&replica, "replication", "master_link_status")? == "up")
    })?;
    cmd(&mut c5, &["SET", "in5-after-sync", "b"])?;
    assert_converged(&primary, &replica)?;
    // A short cut: the backlog covers what was missed.
    proxy.cut();
    wait_for("the link to drop", Duration::from_secs(10), || {
        Ok(info_field(&replica, "replication", "master_link_status")? == "down")
    })?;
    cmd(&mut c5, &["SET", "in5-during-cut", "c"])?;
    populate(&mut c, "b", 20)?;
    cmd(&mut c5, &["SET", "in5-end-of-cut", "d"])?;
    proxy.restore();
    assert_converged(&primary, &replica)?;
    assert_eq!(info_field(&primary, "stats", "sync_partial_ok")?, "1");
    assert!(primary.log().contains("Partial resynchronization request"));
    // A long cut: more than the backlog holds, so a full sync.
    proxy.cut();
    wait_for("the link to drop", Duration::from_secs(10), || {
        Ok(info_field(&replica, "replication", "master_link_status")? == "down")
    })?;
    populate(&mut c, "c", 600)?;
    proxy.restore();
    assert_converged(&primary, &replica)?;
    assert_eq!(info_field(&primary, "stats", "sync_full")?, "2");
    Ok(())
}

#[test]
fn promoted_replica_lets_its_sibling_continue() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
    ])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "p", 100)?;
    let r1 = start_rampart(&replica_args(&k, primary.port()))?;
    let r2 = start_rampart(&replica_args(&k, primary.port()))?;
    assert_converged(&primary, &r1)?;
    assert_converged(&primary, &r2)?;
    drop(c);
    drop(primary);
    let mut c1 = r1.redis_conn()?;
    cmd(&mut c1, &["REPLICAOF", "NO", "ONE"])?;
    let mut c2 = r2.redis_conn()?;
    cmd(&mut c2, &["REPLICAOF", "127.0.0.1", &r1.port().to_string()])?;
    populate(&mut c1, "q", 50)?;
    assert_converged(&r1, &r2)?;
    assert_eq!(info_field(&r1, "stats", "sync_partial_ok")?, "1");
    assert_eq!(info_field(&r1, "stats", "sync_full")?, "0");
    Ok(())
}

#[test]
fn a_replica_without_the_key_retries_and_the_primary_is_unaffected() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        keyring(keys.path()),
        "--save".into(),
        "".into(),
    ])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "k", 20)?;
    // Its own fresh keyring: cannot open the primary's data key.
    let other = tempfile::tempdir()?;
    let replica = start_rampart(&replica_args(&keyring(other.path()), primary.port()))?;
    wait_for("two failed attempts", Duration::from_secs(20), || {
        Ok(replica
            .log()
            .matches("cannot decrypt the full sync")
            .count()
            >= 2)
    })?;
    assert_eq!(
        info_field(&replica, "replication", "master_link_status")?,
        "down"
    );
    assert!(replica.log().contains("Reconnecting to MASTER"));
    cmd(&mut c, &["SET", "still", "works"])?;
    assert_eq!(
        cmd(&mut c, &["GET", "still"])?,
        Value::BulkString(b"works".to_vec())
    );
    let mut rc = replica.conn()?;
    assert_eq!(rc.cmd(&["PING"])?, b"+PONG\r\n");
    Ok(())
}

#[test]
fn replica_and_primary_restarts() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let pdir = tempfile::tempdir()?;
    let pargs = vec![
        "--kms-key-file".to_string(),
        k.clone(),
        "--save".into(),
        "".into(),
    ];
    let primary = start_rampart_in(pdir.path(), &pargs)?;
    let mut c = primary.redis_conn()?;
    // Big enough that the sync takes a moment.
    for chunk in 0..10 {
        let mut p = redis::pipe();
        for i in 0..5000 {
            p.cmd("SET")
                .arg(format!("big:{chunk}:{i}"))
                .arg("x".repeat(200));
        }
        p.query::<()>(&mut c)?;
    }
    let rdir = tempfile::tempdir()?;
    let replica = start_rampart_in(rdir.path(), &replica_args(&k, primary.port()))?;
    // Killed (SIGKILL) during the sync, then restarted on the same directory.
    wait_for("the sync to begin", Duration::from_secs(10), || {
        Ok(replica.log().contains("Full resync from master"))
    })?;
    drop(replica);
    populate(&mut c, "m", 50)?;
    let replica = start_rampart_in(rdir.path(), &replica_args(&k, primary.port()))?;
    assert_converged(&primary, &replica)?;
    // The primary is killed and restarts from its snapshot.
    cmd(&mut c, &["SAVE"])?;
    drop(c);
    drop(primary);
    wait_for("the link to drop", Duration::from_secs(10), || {
        Ok(info_field(&replica, "replication", "master_link_status")? == "down")
    })?;
    let primary = start_rampart_in(pdir.path(), &pargs).context("restarting the primary")?;
    let mut c = primary.redis_conn()?;
    // It comes back on another port: point the replica at it.
    let mut rc = replica.redis_conn()?;
    cmd(
        &mut rc,
        &["REPLICAOF", "127.0.0.1", &primary.port().to_string()],
    )?;
    populate(&mut c, "n", 30)?;
    assert_converged(&primary, &replica)?;
    Ok(())
}

#[test]
fn rampart_replica_of_redis_keeps_its_disk_encrypted() -> Result<()> {
    let redis = RedisOracle::start()?;
    let mut c = redis.redis_conn()?;
    populate(&mut c, "r", 200)?;
    let keys = tempfile::tempdir()?;
    let replica = start_rampart(&replica_args(&keyring(keys.path()), redis.port()))?;
    populate(&mut c, "r2", 50)?;
    assert_converged(&redis, &replica)?;
    assert!(replica.log().contains("plain RDB"), "{}", replica.log());
    assert!(replica.dir().join("dump.rdb").exists());
    assert_eq!(dir_contains(replica.dir(), MARKER.as_bytes())?, None);
    Ok(())
}

#[test]
fn redis_replica_of_rampart_is_refused_unless_allowed() -> Result<()> {
    let primary = Rampart::start(&["--save", "", NO_SYNC_DELAY[0], NO_SYNC_DELAY[1]])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "x", 100)?;
    let port = primary.port().to_string();
    let refused = RedisOracle::start_with(&["--replicaof", "127.0.0.1", &port])?;
    wait_for("the refusal in both logs", Duration::from_secs(20), || {
        Ok(primary.log().contains("Refusing full sync")
            && refused.log().contains("repl-allow-plaintext-sync"))
    })?;
    assert_eq!(
        info_field(&refused, "replication", "master_link_status")?,
        "down"
    );
    drop(refused);
    cmd(
        &mut c,
        &["CONFIG", "SET", "repl-allow-plaintext-sync", "yes"],
    )?;
    let allowed = RedisOracle::start_with(&["--replicaof", "127.0.0.1", &port])?;
    populate(&mut c, "y", 50)?;
    assert_converged(&primary, &allowed)?;
    Ok(())
}

#[test]
fn a_chained_replica_follows_the_primary_through_its_replica() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
    ])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "c1", 100)?;
    let middle = start_rampart(&replica_args(&k, primary.port()))?;
    assert_converged(&primary, &middle)?;
    let mut args = replica_args(&k, middle.port());
    args.extend(["--replica-announce-ip".to_string(), "10.1.2.3".to_string()]);
    let leaf = start_rampart(&args)?;
    populate(&mut c, "c2", 50)?;
    assert_converged(&primary, &leaf)?;
    let slave0 = info_field(&middle, "replication", "slave0")?;
    assert!(
        slave0.starts_with(&format!(
            "ip=10.1.2.3,port={},state=online,offset=",
            leaf.port()
        )),
        "{slave0}"
    );
    // The leaf sees the primary's offsets: psync2's proxied stream.
    assert_eq!(
        info_field(&primary, "replication", "master_replid")?,
        info_field(&leaf, "replication", "master_replid")?
    );
    Ok(())
}

#[test]
fn min_replicas_stale_data_and_wait() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
        "--min-replicas-to-write".into(),
        "1".into(),
        "--min-replicas-max-lag".into(),
        "10".into(),
    ])?;
    let mut pc = primary.conn()?;
    assert_eq!(
        pc.cmd(&["SET", "k", "v"])?,
        b"-NOREPLICAS Not enough good replicas to write.\r\n"
    );
    assert_eq!(pc.cmd(&["WAIT", "1", "100"])?, b":0\r\n");
    let replica = start_rampart(&replica_args(&k, primary.port()))?;
    wait_for("a good replica", Duration::from_secs(20), || {
        Ok(pc.cmd(&["SET", "k", "v"])? == b"+OK\r\n")
    })?;
    assert_eq!(pc.cmd(&["WAIT", "1", "5000"])?, b":1\r\n");
    let mut rc = replica.conn()?;
    assert_eq!(
        rc.cmd(&["WAIT", "1", "0"])?,
        b"-ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.\r\n"
    );
    // A replica whose primary is gone, told not to serve stale data.
    drop(pc);
    drop(primary);
    assert_eq!(
        rc.cmd(&["CONFIG", "SET", "replica-serve-stale-data", "no"])?,
        b"+OK\r\n"
    );
    wait_for("the link to drop", Duration::from_secs(10), || {
        Ok(info_field(&replica, "replication", "master_link_status")? == "down")
    })?;
    assert_eq!(
        rc.cmd(&["GET", "k"])?,
        b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"
    );
    let role = String::from_utf8_lossy(&rc.cmd(&["ROLE"])?).into_owned();
    assert!(role.starts_with("*5\r\n$5\r\nslave\r\n"), "{role}");
    assert_eq!(rc.cmd(&["REPLICAOF", "NO", "ONE"])?, b"+OK\r\n");
    assert_eq!(rc.cmd(&["GET", "k"])?, b"$1\r\nv\r\n");
    Ok(())
}

/// A replica of our own on a raw socket: it takes the full sync, sends one
/// `REPLCONF ACK 0` so the primary counts it online, and never acknowledges
/// anything after that, so the primary always sees it lagging.
fn fake_lagging_replica(port: u16) -> Result<TcpStream> {
    fake_replica(port, true)
}

/// [`fake_lagging_replica`]; without `ack` it never acknowledges the full
/// sync, so the primary keeps everything for it in its output buffer.
fn fake_replica(port: u16, ack: bool) -> Result<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 65536];
    for c in [
        &["REPLCONF", "listening-port", "4321"][..],
        &["REPLCONF", "capa", "eof", "capa", "psync2"][..],
    ] {
        s.write_all(&rampart_tests::encode_command(c))?;
        let n = s.read(&mut buf)?;
        if &buf[..n] != b"+OK\r\n" {
            bail!("{c:?}: {}", String::from_utf8_lossy(&buf[..n]));
        }
    }
    s.write_all(&rampart_tests::encode_command(&["PSYNC", "?", "-1"]))?;
    // Up to the end of the `$EOF:<mark>`-framed payload: the mark twice.
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            bail!(
                "the primary closed the link: {}",
                String::from_utf8_lossy(&got)
            );
        }
        got.extend_from_slice(&buf[..n]);
        if let Some(at) = got.windows(5).position(|w| w == b"$EOF:") {
            if let Some(mark) = got.get(at + 5..at + 45) {
                let mark = mark.to_vec();
                if got[at + 45..].windows(40).any(|w| w == mark) {
                    break;
                }
            }
        }
        if Instant::now() > deadline {
            bail!("no full sync payload");
        }
    }
    if ack {
        s.write_all(&rampart_tests::encode_command(&["REPLCONF", "ACK", "0"]))?;
    }
    Ok(s)
}

/// Whether a reply arrives on `c` within `wait`.
fn replied_within(c: &mut rampart_tests::RawConn, wait: Duration) -> Result<Option<Vec<u8>>> {
    c.set_read_timeout(wait)?;
    let r = c.read_reply().ok();
    c.set_read_timeout(rampart_tests::REPLY_TIMEOUT)?;
    Ok(r)
}

/// SHUTDOWN with a lagging replica, run against a server: the replies (and
/// whether one came) in order.
fn shutdown_with_a_lagging_replica(s: &mut ServerProcess) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut c = s.conn()?;
    let mut say = |r: &[u8]| out.push(String::from_utf8_lossy(r).into_owned());
    say(&c.cmd(&["SHUTDOWN", "ABORT"])?);
    say(&c.cmd(&["SHUTDOWN", "ABORT", "ABORT"])?);
    say(&c.cmd(&["SHUTDOWN", "ABORT", "NOSAVE"])?);
    say(&c.cmd(&["SHUTDOWN", "SAVE", "NOSAVE"])?);
    say(&c.cmd(&["SHUTDOWN", "LATER"])?);
    c.cmd(&["MULTI"])?;
    say(&c.cmd(&["SHUTDOWN"])?);
    c.cmd(&["DISCARD"])?;
    let _replica = fake_lagging_replica(s.port())?;
    say(&c.cmd(&["SET", "k", "v"])?);
    let mut tx = s.conn()?;
    tx.cmd(&["MULTI"])?;
    say(&tx.cmd(&["SET", "k", "tx"])?);
    // The replica never acknowledges that SET: SHUTDOWN waits.
    let mut first = s.conn()?;
    first.send(&["SHUTDOWN"])?;
    // Commands from older connections read in the same event-loop turn
    // could run before it in Redis: let it begin first.
    std::thread::sleep(Duration::from_millis(300));
    let mut second = s.conn()?;
    second.send(&["SHUTDOWN", "NOSAVE", "NOW"])?;
    let mut writer = s.conn()?;
    writer.send(&["SET", "k", "during"])?;
    tx.send(&["EXEC"])?;
    let quiet = Duration::from_millis(700);
    say(format!("shutdown replied: {:?}", replied_within(&mut first, quiet)?).as_bytes());
    say(format!(
        "write replied: {:?}",
        replied_within(&mut writer, quiet)?.is_some()
    )
    .as_bytes());
    say(format!(
        "exec replied: {:?}",
        replied_within(&mut tx, quiet)?.is_some()
    )
    .as_bytes());
    say(&c.cmd(&["GET", "k"])?);
    say(&c.cmd(&["SHUTDOWN", "ABORT"])?);
    say(&first.read_reply()?);
    say(&second.read_reply()?);
    say(&writer.read_reply()?);
    say(&tx.read_reply()?);
    say(&c.cmd(&["SHUTDOWN", "ABORT"])?);
    // Now let the timeout end it: the server exits without answering.
    say(&c.cmd(&["CONFIG", "SET", "shutdown-timeout", "1"])?);
    say(&c.cmd(&["SET", "k", "last"])?);
    let started = Instant::now();
    let (reply, closed) = {
        c.send(&["SHUTDOWN"])?;
        c.read_until_close(Duration::from_secs(15))?
    };
    say(format!(
        "final: {:?} closed={closed}",
        String::from_utf8_lossy(&reply)
    )
    .as_bytes());
    let status = s.wait_exit(Duration::from_secs(10))?;
    say(format!("exited={}", status.is_some_and(|st| st.success())).as_bytes());
    let waited = started.elapsed();
    if waited < Duration::from_millis(900) {
        bail!("exited after {waited:?}, before shutdown-timeout");
    }
    Ok(out)
}

#[test]
fn shutdown_waits_for_lagging_replicas_as_redis_does() -> Result<()> {
    let mut redis = RedisOracle::start_with(&NO_SYNC_DELAY)?;
    let want = shutdown_with_a_lagging_replica(&mut redis)?;
    let mut rampart = plain_sync_rampart()?;
    let got = shutdown_with_a_lagging_replica(&mut rampart)?;
    assert_eq!(got, want, "rampart's log:\n{}", rampart.log());
    assert_eq!(want[0], "-ERR No shutdown in progress.\r\n");
    assert!(want.contains(&"-ERR Errors trying to SHUTDOWN. Check logs.\r\n".to_string()));
    let log = rampart.log();
    assert!(
        log.contains("Waiting for replicas before shutting down."),
        "{log}"
    );
    assert!(log.contains("Shutdown manually aborted."), "{log}");
    assert!(
        log.contains("Lagging replica 127.0.0.1:4321 reported offset"),
        "{log}"
    );
    assert!(
        log.contains("0 of 1 replicas are in sync when shutting down."),
        "{log}"
    );
    Ok(())
}

/// Sends `sig` (STOP, CONT, TERM) to a process this test started.
fn signal(pid: u32, sig: &str) -> Result<()> {
    let st = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()?;
    if !st.success() {
        bail!("kill -{sig} {pid} failed");
    }
    Ok(())
}

#[test]
fn sigterm_and_shutdown_wait_until_replicas_caught_up() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    for via_signal in [true, false] {
        let mut primary = start_rampart(&[
            "--kms-key-file".into(),
            k.clone(),
            "--save".into(),
            "".into(),
        ])?;
        let mut c = primary.redis_conn()?;
        populate(&mut c, "s", 50)?;
        let replica = start_rampart(&replica_args(&k, primary.port()))?;
        assert_converged(&primary, &replica)?;
        // A frozen replica cannot acknowledge the last write.
        signal(replica.pid(), "STOP")?;
        cmd(&mut c, &["SET", "the-last-write", "1"])?;
        let mut sc = primary.conn()?;
        if via_signal {
            signal(primary.pid(), "TERM")?;
        } else {
            sc.send(&["SHUTDOWN"])?;
        }
        std::thread::sleep(Duration::from_millis(1500));
        let still_up = primary.is_running();
        signal(replica.pid(), "CONT")?;
        assert!(still_up, "the primary exited before its replica caught up");
        let status = primary.wait_exit(Duration::from_secs(10))?;
        assert!(
            status.is_some(),
            "the primary did not exit once the replica caught up"
        );
        let log = primary.log();
        assert!(
            log.contains("1 of 1 replicas are in sync when shutting down."),
            "{log}"
        );
        let mut rc = replica.conn()?;
        assert_eq!(rc.cmd(&["GET", "the-last-write"])?, b"$1\r\n1\r\n");
    }
    Ok(())
}

#[test]
fn a_primary_restarted_from_its_snapshot_continues_its_replica() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let pdir = tempfile::tempdir()?;
    let pargs = vec![
        "--kms-key-file".to_string(),
        k.clone(),
        "--save".into(),
        "".into(),
    ];
    let mut primary = start_rampart_in(pdir.path(), &pargs)?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "a", 100)?;
    let replica = start_rampart(&replica_args(&k, primary.port()))?;
    assert_converged(&primary, &replica)?;
    // Expires while the primary is down: saved, then deleted at load.
    let ttl = Duration::from_millis(3000);
    let set_at = Instant::now();
    cmd(&mut c, &["SET", "gone-while-down", "x", "PX", "3000"])?;
    assert_converged(&primary, &replica)?;
    let replid = info_field(&primary, "replication", "master_replid")?;
    let mut sc = primary.conn()?;
    sc.send(&["SHUTDOWN", "SAVE"])?;
    primary
        .wait_exit(Duration::from_secs(20))?
        .context("the primary did not exit")?;
    drop(primary);
    // SHUTDOWN waited for the replica: it has the primary's last offset.
    let offset: u64 = info_field(&replica, "replication", "slave_repl_offset")?.parse()?;
    std::thread::sleep(
        (set_at + ttl + Duration::from_millis(200)).saturating_duration_since(Instant::now()),
    );
    let primary = start_rampart_in(pdir.path(), &pargs)?;
    // As Redis 7.0: a new id, the saved one valid up to the saved offset.
    assert_eq!(
        info_field(&primary, "replication", "master_replid2")?,
        replid
    );
    assert_eq!(
        info_field(&primary, "replication", "second_repl_offset")?,
        (offset + 1).to_string()
    );
    let mut rc = replica.redis_conn()?;
    cmd(
        &mut rc,
        &["REPLICAOF", "127.0.0.1", &primary.port().to_string()],
    )?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "b", 20)?;
    assert_converged(&primary, &replica)?;
    assert_eq!(info_field(&primary, "stats", "sync_partial_ok")?, "1");
    assert_eq!(info_field(&primary, "stats", "sync_full")?, "0");
    // The key that expired while the primary was down reached the replica
    // as a DEL from the restarted primary's backlog.
    let mut pc = primary.conn()?;
    let mut rcn = replica.conn()?;
    assert_eq!(pc.cmd(&["DBSIZE"])?, rcn.cmd(&["DBSIZE"])?);
    Ok(())
}

#[test]
fn a_replica_restarted_from_its_snapshot_continues_with_a_partial_resync() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
    ])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "a", 100)?;
    let rdir = tempfile::tempdir()?;
    let rargs = replica_args(&k, primary.port());
    let mut replica = start_rampart_in(rdir.path(), &rargs)?;
    assert_converged(&primary, &replica)?;
    let mut sc = replica.conn()?;
    sc.send(&["SHUTDOWN", "SAVE"])?;
    replica
        .wait_exit(Duration::from_secs(20))?
        .context("the replica did not exit")?;
    drop(replica);
    populate(&mut c, "c", 20)?;
    let replica = start_rampart_in(rdir.path(), &rargs)?;
    assert_converged(&primary, &replica)?;
    assert_eq!(info_field(&primary, "stats", "sync_full")?, "1");
    assert_eq!(info_field(&primary, "stats", "sync_partial_ok")?, "1");
    assert!(replica
        .log()
        .contains("Successful partial resynchronization"));
    Ok(())
}

#[test]
fn replica_output_buffer_limits_follow_the_config() -> Result<()> {
    const DROPPED: &str = "scheduled to be closed ASAP for overcoming of output buffer limits.";
    let primary = plain_sync_rampart()?;
    let mut c = primary.conn()?;
    let slaves = || info_field(&primary, "replication", "connected_slaves");
    let big = "x".repeat(100_000);
    // The hard limit, set at runtime.
    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 1mb 0 0"
        ])?,
        b"+OK\r\n"
    );
    let _r1 = fake_replica(primary.port(), false)?;
    wait_for("the replica", Duration::from_secs(10), || {
        Ok(slaves()? == "1")
    })?;
    for i in 0..8 {
        c.cmd(&["SET", &format!("big:{i}"), &big])?;
    }
    assert_eq!(slaves()?, "1", "dropped below the hard limit");
    for i in 8..12 {
        c.cmd(&["SET", &format!("big:{i}"), &big])?;
    }
    wait_for("the hard limit", Duration::from_secs(10), || {
        Ok(slaves()? == "0")
    })?;
    let line = primary
        .log()
        .lines()
        .find(|l| l.contains(DROPPED))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(line.contains("Client id="), "{}", primary.log());
    assert!(line.contains(" flags=S "), "{line}");
    // The soft limit: only once exceeded for longer than its seconds.
    assert_eq!(
        c.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 0 256kb 1"
        ])?,
        b"+OK\r\n"
    );
    let _r2 = fake_replica(primary.port(), false)?;
    wait_for("the replica", Duration::from_secs(10), || {
        Ok(slaves()? == "1")
    })?;
    for i in 0..4 {
        c.cmd(&["SET", &format!("soft:{i}"), &big])?;
    }
    // Redis counts whole seconds: 0.7 s later it is at most one.
    std::thread::sleep(Duration::from_millis(700));
    c.cmd(&["SET", "soft:4", &big])?;
    assert_eq!(slaves()?, "1", "dropped before the soft limit's seconds");
    std::thread::sleep(Duration::from_millis(1500));
    c.cmd(&["SET", "soft:5", &big])?;
    wait_for("the soft limit", Duration::from_secs(10), || {
        Ok(slaves()? == "0")
    })?;
    assert_eq!(primary.log().matches(DROPPED).count(), 2);
    Ok(())
}

/// Two replicas asking for a full sync read the same transfer: returns
/// what each got up to its payload, and how long the first waited.
fn two_replicas_sync(primary: &Rampart) -> Result<(Vec<String>, Duration)> {
    let t = Instant::now();
    let a = std::thread::spawn({
        let port = primary.port();
        move || fake_replica(port, true)
    });
    std::thread::sleep(Duration::from_millis(300));
    let _b = fake_replica(primary.port(), true)?;
    let _a = a
        .join()
        .map_err(|_| anyhow::anyhow!("replica thread panicked"))??;
    let waited = t.elapsed();
    let starts: Vec<String> = primary
        .log()
        .lines()
        .filter(|l| l.contains("Starting a diskless full sync"))
        .map(str::to_string)
        .collect();
    Ok((starts, waited))
}

#[test]
fn diskless_sync_delay_lets_replicas_share_one_transfer() -> Result<()> {
    // The delay: both replicas arrive within it and share one snapshot.
    let primary = Rampart::start(&[
        "--save",
        "",
        "--repl-allow-plaintext-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "2",
    ])?;
    primary
        .redis_conn()
        .and_then(|mut c| populate(&mut c, "d", 50))?;
    let (starts, waited) = two_replicas_sync(&primary)?;
    assert_eq!(starts.len(), 1, "{}", primary.log());
    assert!(starts[0].contains("for 2 replica(s)"), "{}", starts[0]);
    assert!(
        waited >= Duration::from_millis(1800),
        "no delay: {waited:?}"
    );
    assert!(primary
        .log()
        .contains("Delay next BGSAVE for diskless SYNC"));
    assert_eq!(info_field(&primary, "stats", "sync_full")?, "2");
    // Enough replicas waiting start the transfer before the delay ends.
    let primary = Rampart::start(&[
        "--save",
        "",
        "--repl-allow-plaintext-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "30",
        "--repl-diskless-sync-max-replicas",
        "2",
    ])?;
    let (starts, waited) = two_replicas_sync(&primary)?;
    assert_eq!(starts.len(), 1, "{}", primary.log());
    assert!(starts[0].contains("for 2 replica(s)"), "{}", starts[0]);
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    Ok(())
}

/// Libraries whose functions a read-only replica can call (`no-writes`).
const LIB_A: &str = "#!lua name=liba\nredis.register_function{function_name='fa', callback=function() return 'from a' end, flags={'no-writes'}}";
const LIB_B: &str = "#!lua name=libb\nredis.register_function{function_name='fb', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}";
const LIB_C: &str = "#!lua name=libc\nredis.register_function{function_name='fc', callback=function() return 'from c' end, flags={'no-writes'}}";

/// `FCALL_RO name 0` on `s`.
fn fcall_ro(s: &ServerProcess, name: &str) -> Result<Vec<u8>> {
    s.conn()?.cmd(&["FCALL_RO", name, "0"])
}

/// FUNCTION LOAD, DELETE, FLUSH and RESTORE on `primary`, each followed
/// by `replica` (libraries compared after each, functions called there).
fn function_changes(primary: &ServerProcess, replica: &ServerProcess) -> Result<()> {
    let mut c = primary.conn()?;
    let ok = |r: Vec<u8>| -> Result<()> {
        if r.starts_with(b"-") {
            bail!("the primary refused: {}", rampart_tests::escape(&r));
        }
        Ok(())
    };
    ok(c.cmd(&["FUNCTION", "LOAD", LIB_B])?)?;
    ok(c.cmd(&["SET", "fkey", "through b"])?)?;
    assert_converged(primary, replica).context("after FUNCTION LOAD")?;
    let mut rc = replica.conn()?;
    assert_eq!(
        rc.cmd(&["FCALL_RO", "fb", "1", "fkey"])?,
        b"$9\r\nthrough b\r\n"
    );
    ok(c.cmd(&["FUNCTION", "DELETE", "liba"])?)?;
    assert_converged(primary, replica).context("after FUNCTION DELETE")?;
    assert_eq!(fcall_ro(replica, "fa")?, b"-ERR Function not found\r\n");
    ok(c.cmd(&["FUNCTION", "LOAD", LIB_A])?)?;
    let dump = c.cmd(&["FUNCTION", "DUMP"])?;
    let start = dump
        .iter()
        .position(|&b| b == b'\n')
        .context("DUMP reply")?
        + 1;
    let payload = dump[start..dump.len() - 2].to_vec();
    ok(c.cmd(&["FUNCTION", "FLUSH"])?)?;
    assert_converged(primary, replica).context("after FUNCTION FLUSH")?;
    assert_eq!(functions(replica)?.to_bytes(), b"*0\r\n");
    ok(c.cmd(&[&b"FUNCTION"[..], &b"RESTORE"[..], &payload[..]])?)?;
    assert_converged(primary, replica).context("after FUNCTION RESTORE")?;
    assert_eq!(fcall_ro(replica, "fa")?, b"$6\r\nfrom a\r\n");
    // A refused RESTORE is not propagated: the replica would refuse it
    // too, but it must not even see it.
    let refused = c.cmd(&[
        &b"FUNCTION"[..],
        &b"RESTORE"[..],
        &payload[..],
        &b"APPEND"[..],
    ])?;
    assert!(refused.starts_with(b"-ERR Library"), "{refused:?}");
    ok(c.cmd(&[
        &b"FUNCTION"[..],
        &b"RESTORE"[..],
        &payload[..],
        &b"FLUSH"[..],
    ])?)?;
    assert_converged(primary, replica).context("after FUNCTION RESTORE FLUSH")?;
    Ok(())
}

/// Functions are part of a Rampart primary's dataset: in the full sync
/// (replacing what the replica had), in the command stream, and in the
/// backlog a partial resync continues from.
#[test]
fn functions_reach_a_rampart_replica_by_sync_stream_and_partial_resync() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
    ])?;
    let mut c = primary.conn()?;
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIB_A])?, b"$4\r\nliba\r\n");
    let mut rc = primary.redis_conn()?;
    populate(&mut rc, "f", 20)?;
    // The replica had a library of its own before it followed the
    // primary: the full sync replaces it.
    let replica = start_rampart(&["--kms-key-file".into(), k, "--save".into(), "".into()])?;
    let mut r = replica.conn()?;
    assert_eq!(r.cmd(&["FUNCTION", "LOAD", LIB_C])?, b"$4\r\nlibc\r\n");
    let proxy = Proxy::start(primary.port())?;
    assert_eq!(
        r.cmd(&["REPLICAOF", "127.0.0.1", &proxy.port.to_string()])?,
        b"+OK\r\n"
    );
    assert_converged(&primary, &replica)?;
    assert_eq!(fcall_ro(&replica, "fa")?, b"$6\r\nfrom a\r\n");
    assert_eq!(fcall_ro(&replica, "fc")?, b"-ERR Function not found\r\n");
    function_changes(&primary, &replica)?;
    // Changes made while the link is down come from the backlog.
    proxy.cut();
    wait_for("the link to drop", Duration::from_secs(10), || {
        Ok(info_field(&replica, "replication", "master_link_status")? == "down")
    })?;
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIB_C])?, b"$4\r\nlibc\r\n");
    assert_eq!(c.cmd(&["FUNCTION", "DELETE", "liba"])?, b"+OK\r\n");
    proxy.restore();
    assert_converged(&primary, &replica)?;
    assert_eq!(info_field(&primary, "stats", "sync_partial_ok")?, "1");
    assert_eq!(info_field(&primary, "stats", "sync_full")?, "1");
    assert_eq!(fcall_ro(&replica, "fc")?, b"$6\r\nfrom c\r\n");
    assert_eq!(fcall_ro(&replica, "fa")?, b"-ERR Function not found\r\n");
    Ok(())
}

/// A redis-server 7.0 replica of Rampart gets its functions in the full
/// sync and follows FUNCTION LOAD/DELETE/FLUSH/RESTORE.
#[test]
fn functions_reach_a_redis_replica_of_rampart() -> Result<()> {
    let primary = plain_sync_rampart()?;
    let mut c = primary.conn()?;
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIB_A])?, b"$4\r\nliba\r\n");
    let port = primary.port().to_string();
    let replica = RedisOracle::start_with(&["--replicaof", "127.0.0.1", &port])?;
    assert_converged(&primary, &replica)?;
    assert_eq!(fcall_ro(&replica, "fa")?, b"$6\r\nfrom a\r\n");
    function_changes(&primary, &replica)?;
    Ok(())
}

/// A redis-server 7.0 primary's functions reach a Rampart replica, in the
/// full sync and in the stream.
#[test]
fn a_redis_primarys_functions_reach_a_rampart_replica() -> Result<()> {
    let primary = RedisOracle::start()?;
    let mut c = primary.conn()?;
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIB_A])?, b"$4\r\nliba\r\n");
    let keys = tempfile::tempdir()?;
    let replica = start_rampart(&replica_args(&keyring(keys.path()), primary.port()))?;
    assert_converged(&primary, &replica)?;
    assert_eq!(fcall_ro(&replica, "fa")?, b"$6\r\nfrom a\r\n");
    function_changes(&primary, &replica)?;
    Ok(())
}

/// Waits until `replica`'s link is up and it applied everything
/// `primary` sent.
fn caught_up(primary: &ServerProcess, replica: &ServerProcess) -> Result<()> {
    wait_for("the replica to catch up", Duration::from_secs(60), || {
        let p = info_field(primary, "replication", "master_repl_offset")?;
        let r = info_field(replica, "replication", "slave_repl_offset")?;
        let up = info_field(replica, "replication", "master_link_status")?;
        Ok(up == "up" && p == r)
    })
}

/// `redis.set_repl` decides whether a script's following writes reach
/// replicas, as in redis-server 7.0 (REPL_AOF alone leaves them out; Rampart
/// has no AOF): Rampart->Rampart gives the replica redis-server->redis-server
/// gives.
#[test]
fn set_repl_decides_which_script_writes_reach_replicas() -> Result<()> {
    const SCRIPT: &str = "redis.call('set', 'all1', 1) \
        redis.set_repl(redis.REPL_NONE) redis.call('set', 'none', 1) \
        redis.set_repl(redis.REPL_AOF) redis.call('set', 'aof', 1) \
        redis.set_repl(redis.REPL_REPLICA) redis.call('set', 'replica', 1) \
        redis.set_repl(redis.REPL_NONE) redis.call('incr', 'all1') \
        redis.set_repl(redis.REPL_SLAVE) redis.call('set', 'slave', 1) \
        redis.set_repl(redis.REPL_ALL) redis.call('set', 'all2', 1) return 'done'";
    const KEYS: [&str; 6] = ["all1", "none", "aof", "replica", "slave", "all2"];
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let rp = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
    ])?;
    let rr = start_rampart(&replica_args(&k, rp.port()))?;
    let dp = RedisOracle::start()?;
    let dr = RedisOracle::start_with(&["--replicaof", "127.0.0.1", &dp.port().to_string()])?;
    let mut seen = Vec::new();
    for (p, r) in [(&*rp, &*rr), (&*dp, &*dr)] {
        caught_up(p, r)?;
        let mut c = p.conn()?;
        assert_eq!(c.cmd(&["EVAL", SCRIPT, "0"])?, b"$4\r\ndone\r\n");
        caught_up(p, r)?;
        let mut rc = r.conn()?;
        let mut got = Vec::new();
        for key in KEYS {
            got.push(rampart_tests::escape(&rc.cmd(&["GET", key])?));
        }
        assert_eq!(c.cmd(&["GET", "all1"])?, b"$1\r\n2\r\n", "{}", p.name());
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "Rampart's replica vs redis-server's");
    let want: Vec<String> = [
        "$1\r\n1\r\n",
        "$-1\r\n",
        "$-1\r\n",
        "$1\r\n1\r\n",
        "$1\r\n1\r\n",
        "$1\r\n1\r\n",
    ]
    .iter()
    .map(|s| rampart_tests::escape(s.as_bytes()))
    .collect();
    assert_eq!(seen[0], want);
    Ok(())
}

/// FAILOVER's errors and its waiting phase, run against a server: no
/// replica, a replica that never catches up (so TIMEOUT aborts, FORCE is
/// refused without a target, ABORT ends the wait), and writes held
/// meanwhile. The replies in order.
fn failover_refusals_and_waits(s: &ServerProcess) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut c = s.conn()?;
    let mut say = |r: &[u8]| out.push(String::from_utf8_lossy(r).into_owned());
    for args in [
        &["FAILOVER"][..],
        &["FAILOVER", "ABORT"],
        &["FAILOVER", "ABORT", "TIMEOUT", "10"],
        &["FAILOVER", "TO", "127.0.0.1"],
        &["FAILOVER", "TO", "127.0.0.1", "port"],
        &["FAILOVER", "TIMEOUT", "0"],
        &["FAILOVER", "TIMEOUT", "-3"],
        &["FAILOVER", "FORCE", "FORCE"],
        &["FAILOVER", "TIMEOUT", "5", "TIMEOUT", "5"],
        &["FAILOVER", "BOGUS"],
        &["FAILOVER", "FORCE"],
    ] {
        say(&c.cmd(args)?);
    }
    // A replica of an address nobody listens on is still a replica.
    say(&c.cmd(&["REPLICAOF", "127.0.0.1", "1"])?);
    say(&c.cmd(&["FAILOVER"])?);
    say(&c.cmd(&["REPLICAOF", "NO", "ONE"])?);
    say(&c.cmd(&["SET", "k", "v"])?);
    let _replica = fake_lagging_replica(s.port())?;
    say(&c.cmd(&["SET", "k", "v2"])?);
    for args in [
        &["FAILOVER", "TO", "127.0.0.1", "1"][..],
        &["FAILOVER", "TO", "127.0.0.1", "4321", "FORCE"],
        &["FAILOVER", "TIMEOUT", "100", "FORCE"],
    ] {
        say(&c.cmd(args)?);
    }
    // The replica never acknowledges: the wait ends at the timeout.
    say(&c.cmd(&["FAILOVER", "TIMEOUT", "1500"])?);
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "replication"])?).into_owned();
    say(format!("during: {}", field_of(&info, "master_failover_state")).as_bytes());
    say(&c.cmd(&["FAILOVER"])?);
    say(&c.cmd(&["REPLICAOF", "NO", "ONE"])?);
    let mut writer = s.conn()?;
    writer.send(&["SET", "k", "during"])?;
    say(format!(
        "write held: {}",
        replied_within(&mut writer, Duration::from_millis(300))?.is_none()
    )
    .as_bytes());
    wait_for("the failover to time out", Duration::from_secs(10), || {
        let info = String::from_utf8_lossy(&s.conn()?.cmd(&["INFO", "replication"])?).into_owned();
        Ok(field_of(&info, "master_failover_state") == "no-failover")
    })?;
    say(&writer.read_reply()?);
    // And FAILOVER ABORT ends a wait at once.
    say(&c.cmd(&["FAILOVER"])?);
    writer.send(&["SET", "k", "again"])?;
    say(format!(
        "write held: {}",
        replied_within(&mut writer, Duration::from_millis(300))?.is_none()
    )
    .as_bytes());
    say(&c.cmd(&["FAILOVER", "ABORT"])?);
    say(&writer.read_reply()?);
    say(&c.cmd(&["GET", "k"])?);
    let info = String::from_utf8_lossy(&c.cmd(&["INFO", "replication"])?).into_owned();
    say(format!("role: {}", field_of(&info, "role")).as_bytes());
    Ok(out)
}

/// The value of `field` in an INFO reply.
fn field_of(info: &str, field: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn failover_refusals_timeout_and_abort_match_redis() -> Result<()> {
    let redis = RedisOracle::start_with(&NO_SYNC_DELAY)?;
    let want = failover_refusals_and_waits(&redis)?;
    let rampart = plain_sync_rampart()?;
    let got = failover_refusals_and_waits(&rampart)?;
    assert_eq!(got, want, "rampart's log:\n{}", rampart.log());
    assert!(
        want.contains(&"during: waiting-for-sync".to_string()),
        "{want:?}"
    );
    assert!(want.contains(&"write held: true".to_string()), "{want:?}");
    let log = rampart.log();
    assert!(log.contains("FAILOVER requested to any replica."), "{log}");
    assert!(
        log.contains("FAILOVER to any replica aborted: Replica never caught up before timeout"),
        "{log}"
    );
    assert!(
        log.contains("FAILOVER to any replica aborted: Failover manually aborted"),
        "{log}"
    );
    Ok(())
}

/// The old primary and the new one after a failover to `target`: the
/// target is a primary, the old one follows it with its link up and the
/// failover over.
fn wait_handed_over(old: &ServerProcess, target: &ServerProcess) -> Result<()> {
    wait_for("the failover to finish", Duration::from_secs(30), || {
        Ok(info_field(target, "replication", "role")? == "master"
            && info_field(old, "replication", "role")? == "slave"
            && info_field(old, "replication", "master_port")? == target.port().to_string()
            && info_field(old, "replication", "master_link_status")? == "up"
            && info_field(old, "replication", "master_failover_state")? == "no-failover")
    })
}

#[test]
fn failover_hands_the_primary_role_over_without_a_full_sync() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
    ])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "p", 100)?;
    let r1 = start_rampart(&replica_args(&k, primary.port()))?;
    let r2 = start_rampart(&replica_args(&k, primary.port()))?;
    assert_converged(&primary, &r1)?;
    assert_converged(&primary, &r2)?;
    let mut raw = primary.conn()?;
    let to = r1.port().to_string();
    assert_eq!(raw.cmd(&["FAILOVER", "TO", "127.0.0.1", &to])?, b"+OK\r\n");
    // A write sent during the handover waits, then meets a replica.
    let mut writer = primary.conn()?;
    writer.send(&["SET", "late", "x"])?;
    wait_handed_over(&primary, &r1)?;
    let reply = String::from_utf8_lossy(&writer.read_reply()?).into_owned();
    assert!(reply.starts_with("-READONLY"), "{reply}");
    // The new primary continued the history: a partial resync, no full one.
    assert_eq!(info_field(&r1, "stats", "sync_full")?, "0");
    assert_eq!(info_field(&r1, "stats", "sync_partial_ok")?, "1");
    assert!(
        r1.log()
            .contains("MASTER MODE enabled (failover request from"),
        "{}",
        r1.log()
    );
    let log = primary.log();
    assert!(
        log.contains(&format!("FAILOVER requested to 127.0.0.1:{to}.")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "Failover target 127.0.0.1:{to} is synced, failing over."
        )),
        "{log}"
    );
    // Writes on the new primary reach the old one, and through it the
    // sibling that still follows it.
    let mut c1 = r1.redis_conn()?;
    populate(&mut c1, "q", 50)?;
    assert_converged(&r1, &primary)?;
    assert_converged(&primary, &r2)?;
    // The old primary heard the new id with +CONTINUE and made its own
    // replica reconnect, so the sibling carries the new id too.
    let id = info_field(&r1, "replication", "master_replid")?;
    wait_for(
        "the sibling to take the new id",
        Duration::from_secs(30),
        || Ok(info_field(&r2, "replication", "master_replid")? == id),
    )?;
    assert!(
        primary.log().contains("Master replication ID changed to"),
        "{}",
        primary.log()
    );
    // And back again, with a timeout this time.
    let back = primary.port().to_string();
    assert_eq!(
        r1.conn()?
            .cmd(&["FAILOVER", "TO", "127.0.0.1", &back, "TIMEOUT", "10000"])?,
        b"+OK\r\n"
    );
    wait_handed_over(&r1, &primary)?;
    populate(&mut c, "r", 20)?;
    assert_converged(&primary, &r1)?;
    assert_eq!(info_field(&primary, "stats", "sync_full")?, "2");
    Ok(())
}

#[test]
fn a_redis_primary_fails_over_to_a_rampart_replica() -> Result<()> {
    let redis = RedisOracle::start_with(&NO_SYNC_DELAY)?;
    let mut c = redis.redis_conn()?;
    populate(&mut c, "r", 100)?;
    let keys = tempfile::tempdir()?;
    let replica = start_rampart(&replica_args(&keyring(keys.path()), redis.port()))?;
    assert_converged(&redis, &replica)?;
    let to = replica.port().to_string();
    assert_eq!(
        redis.conn()?.cmd(&["FAILOVER", "TO", "127.0.0.1", &to])?,
        b"+OK\r\n"
    );
    wait_handed_over(&redis, &replica)?;
    assert_eq!(info_field(&replica, "stats", "sync_full")?, "0");
    assert_eq!(info_field(&replica, "stats", "sync_partial_ok")?, "1");
    let mut w = replica.redis_conn()?;
    populate(&mut w, "q", 50)?;
    assert_converged(&replica, &redis)?;
    Ok(())
}

#[test]
fn a_rampart_primary_fails_over_to_a_redis_replica() -> Result<()> {
    let primary = plain_sync_rampart()?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "p", 100)?;
    let redis =
        RedisOracle::start_with(&["--replicaof", "127.0.0.1", &primary.port().to_string()])?;
    assert_converged(&primary, &redis)?;
    let to = redis.port().to_string();
    assert_eq!(
        primary.conn()?.cmd(&["FAILOVER", "TO", "127.0.0.1", &to])?,
        b"+OK\r\n"
    );
    wait_handed_over(&primary, &redis)?;
    // Redis took over the history Rampart led: Rampart continued from it.
    assert_eq!(info_field(&redis, "stats", "sync_full")?, "0");
    assert_eq!(info_field(&redis, "stats", "sync_partial_ok")?, "1");
    let mut w = redis.redis_conn()?;
    populate(&mut w, "q", 50)?;
    assert_converged(&redis, &primary)?;
    Ok(())
}

/// A raw replica asking for a full sync while `repl-diskless-sync-delay`
/// holds the transfer: the bytes that come before `+FULLRESYNC`.
fn before_fullresync(port: u16) -> Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = [0u8; 4096];
    for c in [
        &["REPLCONF", "listening-port", "4321"][..],
        &["REPLCONF", "capa", "eof", "capa", "psync2"][..],
    ] {
        s.write_all(&rampart_tests::encode_command(c))?;
        let n = s.read(&mut buf)?;
        if &buf[..n] != b"+OK\r\n" {
            bail!("{c:?}: {}", String::from_utf8_lossy(&buf[..n]));
        }
    }
    s.write_all(&rampart_tests::encode_command(&["PSYNC", "?", "-1"]))?;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !got.windows(11).any(|w| w == b"+FULLRESYNC") {
        let n = s.read(&mut buf)?;
        if n == 0 || Instant::now() > deadline {
            bail!("no +FULLRESYNC: {}", String::from_utf8_lossy(&got));
        }
        got.extend_from_slice(&buf[..n]);
    }
    let at = got
        .windows(11)
        .position(|w| w == b"+FULLRESYNC")
        .unwrap_or(0);
    got.truncate(at);
    Ok(got)
}

#[test]
fn a_delayed_full_sync_keeps_the_replica_alive_with_newlines_as_redis_does() -> Result<()> {
    let delay = ["--repl-diskless-sync-delay", "3"];
    let redis = RedisOracle::start_with(&delay)?;
    let want = before_fullresync(redis.port())?;
    let rampart = Rampart::start(&[
        "--save",
        "",
        "--repl-allow-plaintext-sync",
        "yes",
        delay[0],
        delay[1],
    ])?;
    let got = before_fullresync(rampart.port())?;
    // One newline a second of the delay, nothing else (the exact count
    // depends on where each server's second falls).
    for (who, b) in [("redis", &want), ("rampart", &got)] {
        assert!(b.iter().all(|&c| c == b'\n'), "{who}: {b:?}");
        assert!((2..=4).contains(&b.len()), "{who}: {} newlines", b.len());
    }
    Ok(())
}

/// WAIT against a replica that acknowledged the full sync and nothing
/// since: a client that wrote waits in vain, one that never wrote (or only
/// read) is answered at once, as Redis counts each client's own last write.
fn wait_for_own_writes(s: &ServerProcess) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut writer = s.conn()?;
    writer.cmd(&["SET", "before", "1"])?;
    let _replica = fake_lagging_replica(s.port())?;
    // The replica's ACK 0 makes it online.
    wait_for("the replica to be online", Duration::from_secs(10), || {
        let info = String::from_utf8_lossy(&s.conn()?.cmd(&["INFO", "replication"])?).into_owned();
        Ok(info.contains("state=online"))
    })?;
    let mut say = |r: Vec<u8>| out.push(String::from_utf8_lossy(&r).trim_end().to_string());
    say(writer.cmd(&["SET", "k", "v"])?);
    say(writer.cmd(&["WAIT", "1", "200"])?);
    let mut reader = s.conn()?;
    say(reader.cmd(&["WAIT", "1", "200"])?);
    say(reader.cmd(&["GET", "k"])?);
    say(reader.cmd(&["WAIT", "1", "200"])?);
    say(reader.cmd(&["SET", "k", "w"])?);
    say(reader.cmd(&["WAIT", "1", "200"])?);
    Ok(out)
}

#[test]
fn wait_counts_the_clients_own_last_write_as_redis_does() -> Result<()> {
    let redis = RedisOracle::start_with(&NO_SYNC_DELAY)?;
    let want = wait_for_own_writes(&redis)?;
    let rampart = plain_sync_rampart()?;
    let got = wait_for_own_writes(&rampart)?;
    assert_eq!(got, want);
    assert_eq!(want[2], ":1", "{want:?}");
    assert_eq!(want[6], ":0", "{want:?}");
    Ok(())
}

#[test]
fn debug_replicate_and_change_repl_id_reach_the_replica_as_in_redis() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
        "--enable-debug-command".into(),
        "yes".into(),
    ])?;
    let replica = start_rampart(&replica_args(&k, primary.port()))?;
    let mut c = primary.conn()?;
    c.cmd(&["SET", "a", "1"])?;
    assert_converged(&primary, &replica)?;
    // Only the replica applies it: the data diverges on purpose.
    assert_eq!(
        c.cmd(&["DEBUG", "REPLICATE", "SET", "only-there", "x"])?,
        b"+OK\r\n"
    );
    let mut rc = replica.conn()?;
    wait_for("the replica to apply it", Duration::from_secs(10), || {
        Ok(rc.cmd(&["GET", "only-there"])? == b"$1\r\nx\r\n")
    })?;
    assert_eq!(c.cmd(&["GET", "only-there"])?, b"$-1\r\n");
    // A new id and no previous one: the next reconnection is a full sync.
    let before = info_field(&primary, "replication", "master_replid")?;
    assert_eq!(c.cmd(&["DEBUG", "CHANGE-REPL-ID"])?, b"+OK\r\n");
    assert_ne!(
        info_field(&primary, "replication", "master_replid")?,
        before
    );
    assert_eq!(
        info_field(&primary, "replication", "master_replid2")?,
        "0".repeat(40)
    );
    assert!(primary
        .log()
        .contains("Changing replication IDs after receiving DEBUG change-repl-id"));
    Ok(())
}

/// CONFIG SET repl-backlog-size before and while a backlog exists: what
/// CONFIG GET and INFO say after each step.
fn backlog_resizes(s: &ServerProcess) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut c = s.conn()?;
    let mut step = |c: &mut rampart_tests::RawConn, size: &str| -> Result<()> {
        out.push(
            String::from_utf8_lossy(&c.cmd(&["CONFIG", "SET", "repl-backlog-size", size])?)
                .into_owned(),
        );
        out.push(
            String::from_utf8_lossy(&c.cmd(&["CONFIG", "GET", "repl-backlog-size"])?).into_owned(),
        );
        let info = String::from_utf8_lossy(&c.cmd(&["INFO", "replication"])?).into_owned();
        out.push(field_of(&info, "repl_backlog_active"));
        out.push(field_of(&info, "repl_backlog_size"));
        Ok(())
    };
    step(&mut c, "1")?;
    step(&mut c, "0")?;
    step(&mut c, "100000")?;
    let _replica = fake_lagging_replica(s.port())?;
    step(&mut c, "20000")?;
    step(&mut c, "2mb")?;
    step(&mut c, "1")?;
    Ok(out)
}

#[test]
fn config_set_repl_backlog_size_resizes_the_live_backlog() -> Result<()> {
    let redis = RedisOracle::start_with(&NO_SYNC_DELAY)?;
    let want = backlog_resizes(&redis)?;
    let rampart = plain_sync_rampart()?;
    let got = backlog_resizes(&rampart)?;
    assert_eq!(got, want);
    assert_eq!(want[19], "2097152", "{want:?}");

    // What the size is for: a cut longer than the old backlog but shorter
    // than the new one continues, and after shrinking it no longer does.
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
        "--repl-backlog-size".into(),
        "16kb".into(),
    ])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "a", 20)?;
    let proxy = Proxy::start(primary.port())?;
    let replica = start_rampart(&replica_args(&k, proxy.port))?;
    assert_converged(&primary, &replica)?;
    let mut raw = primary.conn()?;
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "repl-backlog-size", "1mb"])?,
        b"+OK\r\n"
    );
    let cut_and_write = |c: &mut redis::Connection, tag: &str| -> Result<()> {
        proxy.cut();
        wait_for("the link to drop", Duration::from_secs(10), || {
            Ok(info_field(&replica, "replication", "master_link_status")? == "down")
        })?;
        populate(c, tag, 300)?;
        proxy.restore();
        Ok(())
    };
    cut_and_write(&mut c, "b")?;
    assert_converged(&primary, &replica)?;
    assert_eq!(info_field(&primary, "stats", "sync_partial_ok")?, "1");
    assert_eq!(info_field(&primary, "stats", "sync_full")?, "1");
    let histlen: u64 = info_field(&primary, "replication", "repl_backlog_histlen")?.parse()?;
    assert!(histlen > 16384, "{histlen}");
    assert_eq!(
        raw.cmd(&["CONFIG", "SET", "repl-backlog-size", "16kb"])?,
        b"+OK\r\n"
    );
    let histlen: u64 = info_field(&primary, "replication", "repl_backlog_histlen")?.parse()?;
    assert!(histlen <= 16384, "{histlen}");
    cut_and_write(&mut c, "c")?;
    assert_converged(&primary, &replica)?;
    assert_eq!(info_field(&primary, "stats", "sync_full")?, "2");
    Ok(())
}

/// The `$<len>`-framed full-sync payload in what a primary sent (the
/// keep-alive newlines before the length skipped).
fn len_framed_payload(wire: &[u8]) -> Result<Vec<u8>> {
    let start = wire
        .windows(11)
        .position(|w| w == b"+FULLRESYNC")
        .context("no +FULLRESYNC on the wire")?;
    let mut at = start
        + wire[start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("no end of the +FULLRESYNC line")?
        + 2;
    while wire.get(at) == Some(&b'\n') {
        at += 1;
    }
    if wire.get(at) != Some(&b'$') {
        bail!(
            "no $<len> framing: {}",
            String::from_utf8_lossy(&wire[at..wire.len().min(at + 60)])
        );
    }
    let eol = at
        + wire[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("no $<len> line")?;
    let len: usize = std::str::from_utf8(&wire[at + 1..eol])?.parse()?;
    wire.get(eol + 2..eol + 2 + len)
        .map(|p| p.to_vec())
        .context("the payload is shorter than its length")
}

#[test]
fn disk_based_full_sync_sends_the_sealed_snapshot_file() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let primary = start_rampart(&[
        "--kms-key-file".into(),
        k.clone(),
        "--save".into(),
        "".into(),
        "--repl-diskless-sync".into(),
        "no".into(),
        "--repl-allow-plaintext-sync".into(),
        "yes".into(),
    ])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "p", 200)?;
    // populate's 1 ms key must be gone before the sync's BGSAVE: its
    // expiry is a change, which would count after the save otherwise.
    wait_for("p:gone to expire", Duration::from_secs(10), || {
        Ok(!redis::cmd("EXISTS").arg("p:gone").query::<bool>(&mut c)?)
    })?;
    let proxy = Proxy::start(primary.port())?;
    let replica = start_rampart(&replica_args(&k, proxy.port))?;
    assert_converged(&primary, &replica)?;
    let log = primary.log();
    for line in [
        "Starting BGSAVE for SYNC with target: disk",
        "Background saving started",
        "Background saving terminated with success",
        "Synchronization with replica 127.0.0.1:",
    ] {
        assert!(log.contains(line), "{line}: {log}");
    }
    assert!(!log.contains("target: replicas sockets"), "{log}");
    // A BGSAVE as any other: dbfilename written, the changes counted saved.
    assert_eq!(
        info_field(&primary, "persistence", "rdb_changes_since_last_save")?,
        "0"
    );
    assert_eq!(
        info_field(&primary, "persistence", "rdb_last_bgsave_status")?,
        "ok"
    );
    // The file is the sealed snapshot, nothing plaintext is left beside it,
    // and the Rampart replica received exactly that file.
    let file = std::fs::read(primary.dir().join("dump.rdb"))?;
    assert!(file.starts_with(b"RAMPART\x01"), "not an envelope");
    assert_eq!(dir_contains(primary.dir(), MARKER.as_bytes())?, None);
    for e in std::fs::read_dir(primary.dir())? {
        let name = e?.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "left behind: {name}");
    }
    let wire = proxy.recorded();
    assert_eq!(len_framed_payload(&wire)?, file);
    assert!(!contains(&wire, MARKER.as_bytes()));
    // A redis-server replica (repl-allow-plaintext-sync yes) gets the RDB
    // inside the file, decrypted on the way.
    let redis =
        RedisOracle::start_with(&["--replicaof", "127.0.0.1", &primary.port().to_string()])?;
    assert_converged(&primary, &redis)?;
    assert_eq!(info_field(&primary, "stats", "sync_full")?, "2");
    assert_eq!(dir_contains(primary.dir(), MARKER.as_bytes())?, None);
    Ok(())
}

/// A disk-based full sync whose BGSAVE is slowed down: a second replica
/// asking while it runs, with writes before and after. Returns what the
/// primary's log and stats say.
fn second_replica_attaches<P: std::ops::Deref<Target = ServerProcess>>(
    primary: &ServerProcess,
    start_replica: impl Fn() -> Result<P>,
) -> Result<Vec<String>> {
    let mut c = primary.redis_conn()?;
    let mut p = redis::pipe();
    for i in 0..4000 {
        p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    p.query::<()>(&mut c)?;
    let a = start_replica()?;
    wait_for("the BGSAVE for SYNC", Duration::from_secs(20), || {
        Ok(primary
            .log()
            .contains("Starting BGSAVE for SYNC with target: disk"))
    })?;
    cmd(&mut c, &["SET", "during", "1"])?;
    let b = start_replica()?;
    wait_for("the second replica to ask", Duration::from_secs(20), || {
        Ok(info_field(primary, "replication", "connected_slaves")? == "2")
    })?;
    // Both wait for the BGSAVE that is still running.
    let info = String::from_utf8_lossy(&primary.conn()?.cmd(&["INFO"])?).into_owned();
    let during = format!(
        "during: bgsave {} states {} {}",
        field_of(&info, "rdb_bgsave_in_progress"),
        field_of(&info, "slave0")
            .split(',')
            .nth(2)
            .unwrap_or_default(),
        field_of(&info, "slave1")
            .split(',')
            .nth(2)
            .unwrap_or_default(),
    );
    cmd(&mut c, &["SET", "after", "2"])?;
    assert_converged(primary, &a)?;
    assert_converged(primary, &b)?;
    let log = primary.log();
    Ok(vec![
        during,
        format!(
            "bgsaves for sync: {}",
            log.matches("Starting BGSAVE for SYNC with target: disk")
                .count()
        ),
        format!(
            "attached: {}",
            log.contains("Waiting for end of BGSAVE for SYNC")
        ),
        format!("sync_full: {}", info_field(primary, "stats", "sync_full")?),
    ])
}

#[test]
fn replicas_asking_during_a_disk_bgsave_attach_to_it_as_in_redis() -> Result<()> {
    let slow = ["--repl-diskless-sync", "no", "--rdb-key-save-delay", "1000"];
    let redis = RedisOracle::start_with(&slow)?;
    let port = redis.port().to_string();
    let want = second_replica_attaches(&redis, || {
        RedisOracle::start_with(&["--replicaof", "127.0.0.1", &port])
    })?;
    assert_eq!(
        want[..2],
        [
            "during: bgsave 1 states state=wait_bgsave state=wait_bgsave",
            "bgsaves for sync: 1"
        ],
        "{want:?}"
    );
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let mut args = vec![
        "--kms-key-file".to_string(),
        k.clone(),
        "--save".into(),
        "".into(),
    ];
    args.extend(slow.iter().map(|s| s.to_string()));
    let primary = start_rampart(&args)?;
    let got = second_replica_attaches(&primary, || {
        start_rampart(&replica_args(&k, primary.port()))
    })?;
    assert_eq!(got, want);
    Ok(())
}

/// A raw replica that announces no `capa eof` asking for a full sync of a
/// primary with `repl-diskless-sync yes`: the framing it gets and
/// whether the payload is a plain RDB.
fn no_eof_replica(s: &ServerProcess) -> Result<Vec<String>> {
    let mut c = s.redis_conn()?;
    populate(&mut c, "n", 50)?;
    let mut r = TcpStream::connect(("127.0.0.1", s.port()))?;
    r.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = vec![0u8; 65536];
    for c in [
        &["REPLCONF", "listening-port", "4321"][..],
        &["REPLCONF", "capa", "psync2"][..],
    ] {
        r.write_all(&rampart_tests::encode_command(c))?;
        let n = r.read(&mut buf)?;
        if &buf[..n] != b"+OK\r\n" {
            bail!("{c:?}: {}", String::from_utf8_lossy(&buf[..n]));
        }
    }
    r.write_all(&rampart_tests::encode_command(&["PSYNC", "?", "-1"]))?;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let payload = loop {
        if let Ok(p) = len_framed_payload(&got) {
            break p;
        }
        let n = r.read(&mut buf)?;
        if n == 0 || Instant::now() > deadline {
            bail!("no payload: {}", String::from_utf8_lossy(&got));
        }
        got.extend_from_slice(&buf[..n]);
    };
    let log = s.log();
    Ok(vec![
        format!("rdb: {}", payload.starts_with(b"REDIS0010")),
        format!(
            "disk: {}",
            log.contains("Starting BGSAVE for SYNC with target: disk")
        ),
        format!("sockets: {}", log.contains("target: replicas sockets")),
    ])
}

#[test]
fn a_replica_without_capa_eof_gets_the_snapshot_file_as_redis_sends_it() -> Result<()> {
    let redis = RedisOracle::start_with(&NO_SYNC_DELAY)?;
    let want = no_eof_replica(&redis)?;
    assert_eq!(want, ["rdb: true", "disk: true", "sockets: false"]);
    let rampart = plain_sync_rampart()?;
    assert_eq!(no_eof_replica(&rampart)?, want);
    // Encrypted at rest, the file is sealed and only its RDB goes out.
    let keys = tempfile::tempdir()?;
    let sealed = start_rampart(&[
        "--kms-key-file".into(),
        keyring(keys.path()),
        "--repl-allow-plaintext-sync".into(),
        "yes".into(),
    ])?;
    assert_eq!(no_eof_replica(&sealed)?, want);
    assert!(std::fs::read(sealed.dir().join("dump.rdb"))?.starts_with(b"RAMPART\x01"));
    Ok(())
}

/// A chain primary -> B (through a proxy) -> C, and a sibling A2 of B
/// that is promoted while B's link is cut; B then reaches A2 instead,
/// asks to continue the old history and hears `+CONTINUE <new id>`. What
/// B and C say afterwards.
fn continue_with_a_new_id<P: std::ops::Deref<Target = ServerProcess>>(
    start: impl Fn(Option<u16>) -> Result<P>,
) -> Result<Vec<String>> {
    let a = start(None)?;
    let mut c = a.redis_conn()?;
    populate(&mut c, "a", 50)?;
    let a2 = start(Some(a.port()))?;
    let proxy = Proxy::start(a.port())?;
    let b = start(Some(proxy.port))?;
    let cc = start(Some(b.port()))?;
    assert_converged(&a, &a2)?;
    assert_converged(&a, &b)?;
    assert_converged(&b, &cc)?;
    let old = info_field(&a, "replication", "master_replid")?;
    proxy.cut();
    wait_for("B's link to drop", Duration::from_secs(10), || {
        Ok(info_field(&b, "replication", "master_link_status")? == "down")
    })?;
    assert_eq!(a2.conn()?.cmd(&["REPLICAOF", "NO", "ONE"])?, b"+OK\r\n");
    let new = info_field(&a2, "replication", "master_replid")?;
    assert_ne!(new, old);
    proxy.retarget(a2.port());
    proxy.restore();
    wait_for("C to carry the new id", Duration::from_secs(30), || {
        Ok(info_field(&cc, "replication", "master_replid")? == new)
    })?;
    let mut w = a2.redis_conn()?;
    populate(&mut w, "n", 20)?;
    assert_converged(&a2, &b)?;
    assert_converged(&b, &cc)?;
    let second = info_field(&b, "replication", "second_repl_offset")?;
    Ok(vec![
        format!(
            "B logged the change: {}",
            b.log()
                .contains(&format!("Master replication ID changed to {new}"))
        ),
        format!(
            "B's replid2 is the old id: {}",
            info_field(&b, "replication", "master_replid2")? == old
        ),
        format!(
            "C's replid2 is the old id: {}",
            info_field(&cc, "replication", "master_replid2")? == old
        ),
        format!(
            "C's second offset is B's: {}",
            info_field(&cc, "replication", "second_repl_offset")? == second
        ),
        format!("A2 sync_full {}", info_field(&a2, "stats", "sync_full")?),
        format!(
            "A2 sync_partial_ok {}",
            info_field(&a2, "stats", "sync_partial_ok")?
        ),
        format!("B sync_full {}", info_field(&b, "stats", "sync_full")?),
        format!(
            "B sync_partial_ok {}",
            info_field(&b, "stats", "sync_partial_ok")?
        ),
    ])
}

#[test]
fn continue_with_a_new_id_shifts_ids_and_reconnects_sub_replicas_as_in_redis() -> Result<()> {
    let redis_run = || {
        continue_with_a_new_id(|primary| match primary {
            None => RedisOracle::start_with(&["--repl-diskless-sync-delay", "0"]),
            Some(p) => RedisOracle::start_with(&[
                "--repl-diskless-sync-delay",
                "0",
                "--replicaof",
                "127.0.0.1",
                &p.to_string(),
            ]),
        })
    };
    let as_redis_does = |want: &[String]| {
        want.iter().take(4).all(|l| l.ends_with("true")) && want[7] == "B sync_partial_ok 1"
    };
    // The reference run itself: under a loaded CI machine redis-server's
    // B once fell back to a full sync (B sync_full 2); a second run of
    // the oracle settles what Redis does, Rampart's run gets one chance.
    let mut want = redis_run()?;
    for _ in 0..2 {
        if as_redis_does(&want) {
            break;
        }
        want = redis_run()?;
    }
    assert!(as_redis_does(&want), "{want:?}");
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let got = continue_with_a_new_id(|primary| match primary {
        None => start_rampart(&[
            "--kms-key-file".into(),
            k.clone(),
            "--save".into(),
            "".into(),
        ]),
        Some(p) => start_rampart(&replica_args(&k, p)),
    })?;
    assert_eq!(got, want);
    Ok(())
}

#[test]
fn replicas_waiting_longer_than_repl_timeout_stay_connected() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let replica_args_short = |port: u16| {
        let mut a = replica_args(&k, port);
        a.extend(["--repl-timeout".into(), "2".into()]);
        a
    };
    // A diskless sync delayed beyond the replicas' repl-timeout.
    let primary = Rampart::start(&[
        "--kms-key-file",
        &k,
        "--save",
        "",
        "--repl-allow-plaintext-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "5",
    ])?;
    let mut c = primary.redis_conn()?;
    populate(&mut c, "a", 50)?;
    let rampart = start_rampart(&replica_args_short(primary.port()))?;
    let redis = RedisOracle::start_with(&[
        "--repl-timeout",
        "2",
        "--replicaof",
        "127.0.0.1",
        &primary.port().to_string(),
    ])?;
    assert_converged(&primary, &rampart)?;
    assert_converged(&primary, &redis)?;
    assert_eq!(info_field(&primary, "stats", "sync_full")?, "2");
    // A disk-based sync whose BGSAVE takes longer than repl-timeout: the
    // replicas hear a newline a second from +FULLRESYNC to the payload.
    let disk = Rampart::start(&[
        "--kms-key-file",
        &k,
        "--save",
        "",
        "--repl-allow-plaintext-sync",
        "yes",
        "--repl-diskless-sync",
        "no",
        "--rdb-key-save-delay",
        "2000",
    ])?;
    let mut c = disk.redis_conn()?;
    let mut p = redis::pipe();
    for i in 0..2500 {
        p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    p.query::<()>(&mut c)?;
    let rampart = start_rampart(&replica_args_short(disk.port()))?;
    let redis = RedisOracle::start_with(&[
        "--repl-timeout",
        "2",
        "--replicaof",
        "127.0.0.1",
        &disk.port().to_string(),
    ])?;
    assert_converged(&disk, &rampart)?;
    assert_converged(&disk, &redis)?;
    assert_eq!(info_field(&disk, "stats", "sync_full")?, "2");
    assert_eq!(
        disk.log()
            .matches("Starting BGSAVE for SYNC with target: disk")
            .count(),
        1,
        "{}",
        disk.log()
    );
    Ok(())
}

/// A primary and its replica with `rdb-del-sync-files yes` and no `save`
/// rules, after a disk-based full sync: whether each one's snapshot file
/// is gone and the line it logged.
fn sync_files_deleted(primary: &ServerProcess, replica: &ServerProcess) -> Result<Vec<String>> {
    assert_converged(primary, replica)?;
    let gone = |s: &ServerProcess| !s.dir().join("dump.rdb").exists();
    wait_for("the sync files to go", Duration::from_secs(10), || {
        Ok(gone(primary) && gone(replica))
    })?;
    Ok(vec![
        format!(
            "primary: {}",
            primary
                .log()
                .contains("Removing the RDB file used to feed replicas in a persistence-less instance")
        ),
        format!(
            "replica: {}",
            replica.log().contains(
                "Removing the RDB file obtained from the master. This replica has persistence disabled"
            )
        ),
    ])
}

#[test]
fn rdb_del_sync_files_removes_the_sync_snapshots_without_persistence_as_redis_does() -> Result<()> {
    let flags = ["--repl-diskless-sync", "no", "--rdb-del-sync-files", "yes"];
    let redis = RedisOracle::start_with(&flags)?;
    redis.conn()?.cmd(&["SET", "k", "v"])?;
    let redis_replica = RedisOracle::start_with(&[
        "--rdb-del-sync-files",
        "yes",
        "--replicaof",
        "127.0.0.1",
        &redis.port().to_string(),
    ])?;
    let want = sync_files_deleted(&redis, &redis_replica)?;
    assert_eq!(want, ["primary: true", "replica: true"]);
    let keys = tempfile::tempdir()?;
    let k = keyring(keys.path());
    let mut args = vec![
        "--kms-key-file".to_string(),
        k.clone(),
        "--save".into(),
        "".into(),
    ];
    args.extend(flags.iter().map(|s| s.to_string()));
    let primary = start_rampart(&args)?;
    primary.conn()?.cmd(&["SET", "k", "v"])?;
    let mut rargs = replica_args(&k, primary.port());
    rargs.extend(["--rdb-del-sync-files".into(), "yes".into()]);
    let replica = start_rampart(&rargs)?;
    assert_eq!(sync_files_deleted(&primary, &replica)?, want);
    Ok(())
}
