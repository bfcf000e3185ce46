//! Slot migration and cluster Pub/Sub with real processes: `redis-cli
//! --cluster reshard` and `rebalance` of three Rampart primaries while a
//! writer follows MOVED/ASK (no acknowledged write lost or duplicated), a
//! mixed Rampart + redis-server 7.0 cluster resharded both ways (MIGRATE
//! across implementations), PUBLISH crossing the bus between Rampart and
//! redis-server nodes, and SSUBSCRIBE/SPUBLISH routing, COUNTKEYSINSLOT
//! and GETKEYSINSLOT compared with a redis-server cluster holding the same
//! keys.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rampart_cluster::key_hash_slot;
use rampart_tests::cluster::{cmd, create, text};
use rampart_tests::{
    free_port, require_tool, run_with_timeout, wait_for, Rampart, RawConn, RedisOracle,
    ServerProcess,
};

/// How long a cluster may take to agree or a redis-cli run may take (a
/// debug build on two busy cores).
const CONVERGE: Duration = Duration::from_secs(120);

fn cluster_args() -> Vec<String> {
    rampart_tests::cluster::node_args(free_port().unwrap_or(0), "5000", &[])
}

fn start_rampart_node() -> Result<Rampart> {
    let args = cluster_args();
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    Rampart::start(&args)
}

fn start_redis_node() -> Result<RedisOracle> {
    let args = cluster_args();
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    RedisOracle::start_with(&args)
}

/// Runs `redis-cli --cluster <args>`, failing unless it exits 0; returns
/// its output.
fn cluster_cli(args: &[String]) -> Result<String> {
    let cli = require_tool("redis-cli")?;
    let mut c = Command::new(cli);
    c.arg("--cluster").args(args);
    let out = run_with_timeout(&mut c, CONVERGE)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "redis-cli --cluster {args:?} failed: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// `redis-cli --cluster check` finds nothing wrong.
fn assert_check_clean(n: &ServerProcess) -> Result<()> {
    // Nodes learn the final slot owners by gossip: give them a moment.
    let mut last = String::new();
    let clean = wait_for("a clean --cluster check", CONVERGE, || {
        last = cluster_cli(&["check".into(), n.addr()]).unwrap_or_else(|e| e.to_string());
        Ok(
            last.contains("[OK] All nodes agree about slots configuration.")
                && last.contains("[OK] All 16384 slots covered.")
                && !last.contains("[WARNING]")
                && !last.contains("[ERR]"),
        )
    });
    if clean.is_err() {
        bail!("--cluster check is not clean:\n{last}");
    }
    Ok(())
}

fn node_id(n: &ServerProcess) -> Result<String> {
    cmd(n, &["CLUSTER", "MYID"])
}

/// A client with `redis-cli -c` semantics over raw connections: a slot →
/// node cache filled from `-MOVED`, `ASKING` before a command sent after
/// `-ASK`, and a retry after `-TRYAGAIN` or `-CLUSTERDOWN` (a slot between
/// owners for a moment).
struct ClusterClient {
    seed: u16,
    slots: Vec<u16>,
    conns: HashMap<u16, RawConn>,
}

impl ClusterClient {
    fn new(seed: u16) -> ClusterClient {
        ClusterClient {
            seed,
            slots: vec![0; 16384],
            conns: HashMap::new(),
        }
    }

    fn conn(&mut self, port: u16) -> Result<&mut RawConn> {
        Ok(match self.conns.entry(port) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(RawConn::connect(port)?),
        })
    }

    /// Runs `args`, whose key is `key`, where the cluster says it lives.
    /// Returns the final reply's raw bytes.
    fn run(&mut self, key: &[u8], args: &[&[u8]]) -> Result<Vec<u8>> {
        let slot = key_hash_slot(key) as usize;
        let mut port = match self.slots[slot] {
            0 => self.seed,
            p => p,
        };
        let mut asking = false;
        for _ in 0..100 {
            let c = self.conn(port)?;
            if asking {
                let ok = c.cmd(&["ASKING"])?;
                if ok != b"+OK\r\n" {
                    bail!("ASKING answered {}", text(&ok));
                }
            }
            let reply = c.cmd(args)?;
            let line = String::from_utf8_lossy(&reply).into_owned();
            let redirect = |l: &str| -> Result<u16> {
                let addr = l.trim_end().rsplit(' ').next().unwrap_or_default();
                Ok(addr.rsplit(':').next().unwrap_or_default().parse()?)
            };
            if line.starts_with("-MOVED ") {
                port = redirect(&line)?;
                self.slots[slot] = port;
                asking = false;
            } else if line.starts_with("-ASK ") {
                port = redirect(&line)?;
                asking = true;
            } else if line.starts_with("-TRYAGAIN") || line.starts_with("-CLUSTERDOWN") {
                std::thread::sleep(Duration::from_millis(20));
                port = match self.slots[slot] {
                    0 => self.seed,
                    p => p,
                };
                asking = false;
            } else {
                return Ok(reply);
            }
        }
        bail!("no node took {:?}", String::from_utf8_lossy(key))
    }
}

/// Writes `key{i}` = `v{i}` for i from `from` while `go` holds (or up to
/// `until`), counting the writes acknowledged with `+OK`. Any other reply
/// fails the writer.
fn write_keys(
    seed: u16,
    prefix: &str,
    from: usize,
    until: usize,
    go: &AtomicBool,
) -> Result<usize> {
    let mut c = ClusterClient::new(seed);
    let mut acked = 0;
    for i in from..until {
        if !go.load(Ordering::Relaxed) {
            break;
        }
        let key = format!("{prefix}{i}");
        let val = format!("v{i}");
        let reply = c.run(key.as_bytes(), &[b"SET", key.as_bytes(), val.as_bytes()])?;
        if reply != b"+OK\r\n" {
            bail!("SET {key} answered {}", text(&reply));
        }
        acked += 1;
    }
    Ok(acked)
}

/// Every key `prefix0..prefix{n-1}` reads back with its value, and the
/// nodes hold exactly `n` keys between them (none duplicated, none extra).
fn assert_keys_intact(nodes: &[&ServerProcess], prefix: &str, n: usize) -> Result<()> {
    let mut c = ClusterClient::new(nodes[0].port());
    for i in 0..n {
        let key = format!("{prefix}{i}");
        let reply = c.run(key.as_bytes(), &[b"GET", key.as_bytes()])?;
        assert_eq!(text(&reply), format!("v{i}"), "{key} after resharding");
    }
    let mut total = 0;
    for node in nodes {
        let n: usize = cmd(node, &["DBSIZE"])?
            .trim_start_matches(':')
            .trim()
            .parse()?;
        total += n;
    }
    assert_eq!(total, n, "keys held by the nodes together");
    Ok(())
}

#[test]
fn reshard_and_rebalance_under_load_lose_no_write() -> Result<()> {
    let nodes = [
        start_rampart_node()?,
        start_rampart_node()?,
        start_rampart_node()?,
    ];
    let refs: Vec<&ServerProcess> = nodes.iter().map(|n| &**n).collect();
    create(&refs)?;
    let go = Arc::new(AtomicBool::new(true));
    let seed = nodes[0].port();
    let writer = {
        let go = go.clone();
        std::thread::spawn(move || write_keys(seed, "key", 0, usize::MAX, &go))
    };
    // Some keys in every slot range before the slots move.
    wait_for("the writer's first keys", CONVERGE, || {
        Ok(cmd(&nodes[2], &["DBSIZE"])?.trim_start_matches(':').trim() != "0")
    })?;
    let (from, to) = (node_id(&nodes[0])?, node_id(&nodes[1])?);
    cluster_cli(&[
        "reshard".into(),
        nodes[0].addr(),
        "--cluster-from".into(),
        from,
        "--cluster-to".into(),
        to,
        "--cluster-slots".into(),
        "1000".into(),
        "--cluster-yes".into(),
    ])?;
    let out = cluster_cli(&["rebalance".into(), nodes[0].addr(), "--cluster-yes".into()])?;
    // The reshard left node 0 with 1000 slots fewer: rebalance moves some.
    assert!(out.contains("Moving"), "rebalance moved nothing:\n{out}");
    go.store(false, Ordering::Relaxed);
    let acked = writer.join().unwrap()?;
    assert!(acked > 0);
    assert_check_clean(&nodes[0])?;
    assert_keys_intact(&refs, "key", acked)?;
    // Every slot count agrees with the keys each node lists for it.
    for node in &nodes {
        for slot in ["0", "1000", "5000", "6000", "12000", "16383"] {
            let n: usize = cmd(node, &["CLUSTER", "COUNTKEYSINSLOT", slot])?
                .trim_start_matches(':')
                .trim()
                .parse()?;
            let listed = node
                .conn()?
                .cmd(&["CLUSTER", "GETKEYSINSLOT", slot, "1000000"])?;
            assert!(
                String::from_utf8_lossy(&listed).starts_with(&format!("*{n}\r\n")),
                "slot {slot}: count {n}, listed {}",
                String::from_utf8_lossy(&listed)
            );
        }
    }
    Ok(())
}

/// The slot ranges `redis-cli --cluster create` gives three nodes.
fn node_of_slot(slot: u16) -> usize {
    match slot {
        0..=5460 => 0,
        5461..=10922 => 1,
        _ => 2,
    }
}

#[test]
fn mixed_cluster_reshards_both_ways_with_migrate() -> Result<()> {
    let rampart = start_rampart_node()?;
    let redis = start_redis_node()?;
    let rampart2 = start_rampart_node()?;
    let refs: Vec<&ServerProcess> = vec![&rampart, &redis, &rampart2];
    create(&refs)?;
    let go = AtomicBool::new(true);
    let n = write_keys(rampart.port(), "mixed", 0, 3000, &go)?;
    assert_eq!(n, 3000);
    // redis-server → Rampart, then Rampart → redis-server.
    let (rid, r2id, xid) = (node_id(&rampart)?, node_id(&rampart2)?, node_id(&redis)?);
    for (from, to) in [(&xid, &rid), (&r2id, &xid)] {
        cluster_cli(&[
            "reshard".into(),
            rampart.addr(),
            "--cluster-from".into(),
            from.clone(),
            "--cluster-to".into(),
            to.clone(),
            "--cluster-slots".into(),
            "700".into(),
            "--cluster-yes".into(),
        ])?;
        assert_check_clean(&rampart)?;
    }
    assert_keys_intact(&refs, "mixed", n)?;
    // Both implementations received keys they did not have at the start.
    for (node, idx) in [(&*rampart, 0usize), (&*redis, 1)] {
        let foreign = (0..n)
            .map(|i| format!("mixed{i}"))
            .filter(|k| node_of_slot(key_hash_slot(k.as_bytes())) != idx)
            .filter(|k| cmd(node, &["EXISTS", k]).is_ok_and(|r| r == ":1\r\n"))
            .count();
        assert!(foreign > 0, "{} received no migrated key", node.name());
    }
    Ok(())
}

/// Subscribes a new connection to `channel` on `n` (`kind` SUBSCRIBE or
/// SSUBSCRIBE) and returns it once the subscription is confirmed.
fn subscriber(n: &ServerProcess, kind: &str, channel: &str) -> Result<RawConn> {
    let mut c = n.conn()?;
    let confirm = c.cmd(&[kind, channel])?;
    let want = kind.to_ascii_lowercase();
    if !String::from_utf8_lossy(&confirm).contains(&want) {
        bail!(
            "{kind} {channel} answered {}",
            String::from_utf8_lossy(&confirm)
        );
    }
    c.set_read_timeout(Duration::from_secs(20))?;
    Ok(c)
}

/// The RESP2 push a subscriber gets for `message` on `channel`.
fn push(word: &str, channel: &str, message: &str) -> Vec<u8> {
    format!(
        "*3\r\n${}\r\n{word}\r\n${}\r\n{channel}\r\n${}\r\n{message}\r\n",
        word.len(),
        channel.len(),
        message.len()
    )
    .into_bytes()
}

#[test]
fn publish_crosses_the_bus_between_rampart_and_redis_nodes() -> Result<()> {
    let a = start_rampart_node()?;
    let b = start_rampart_node()?;
    let r = start_redis_node()?;
    create(&[&a, &b, &r])?;
    // Links come up with gossip after create: wait until each node has a
    // link to every other, or a message published now would be dropped.
    for n in [&*a, &*b, &*r] {
        wait_for("links to every node", CONVERGE, || {
            let nodes = cmd(n, &["CLUSTER", "NODES"])?;
            Ok(nodes.lines().filter(|l| l.contains(" connected")).count() == 3)
        })?;
    }
    let mut on_a = subscriber(&a, "SUBSCRIBE", "news")?;
    let mut on_r = subscriber(&r, "SUBSCRIBE", "news")?;
    // PUBLISH counts only the receiving node's own subscribers, as Redis.
    assert_eq!(cmd(&b, &["PUBLISH", "news", "from-b"])?, ":0\r\n");
    assert_eq!(on_a.read_reply()?, push("message", "news", "from-b"));
    assert_eq!(on_r.read_reply()?, push("message", "news", "from-b"));
    assert_eq!(cmd(&r, &["PUBLISH", "news", "from-redis"])?, ":1\r\n");
    assert_eq!(on_a.read_reply()?, push("message", "news", "from-redis"));
    assert_eq!(on_r.read_reply()?, push("message", "news", "from-redis"));
    assert_eq!(cmd(&a, &["PUBLISH", "news", "from-a"])?, ":1\r\n");
    assert_eq!(on_a.read_reply()?, push("message", "news", "from-a"));
    assert_eq!(on_r.read_reply()?, push("message", "news", "from-a"));
    // Patterns match messages from other nodes too.
    let mut pat = b.conn()?;
    pat.cmd(&["PSUBSCRIBE", "n*"])?;
    pat.set_read_timeout(Duration::from_secs(20))?;
    assert_eq!(cmd(&r, &["PUBLISH", "news", "p"])?, ":1\r\n");
    let got = String::from_utf8_lossy(&pat.read_reply()?).into_owned();
    assert!(
        got.starts_with("*4\r\n$8\r\npmessage\r\n") && got.ends_with("$1\r\np\r\n"),
        "{got}"
    );
    // A shard channel served by A: SPUBLISH there reaches A's subscriber;
    // nodes of other shards redirect.
    let ch = (0..)
        .map(|i| format!("sch{i}"))
        .find(|c| node_of_slot(key_hash_slot(c.as_bytes())) == 0)
        .unwrap();
    let mut sub = subscriber(&a, "SSUBSCRIBE", &ch)?;
    assert_eq!(cmd(&a, &["SPUBLISH", &ch, "s1"])?, ":1\r\n");
    assert_eq!(sub.read_reply()?, push("smessage", &ch, "s1"));
    let slot = key_hash_slot(ch.as_bytes());
    assert_eq!(
        cmd(&r, &["SPUBLISH", &ch, "s2"])?,
        format!("-MOVED {slot} 127.0.0.1:{}\r\n", a.port())
    );
    assert_eq!(
        cmd(&b, &["SPUBLISH", &ch, "s2"])?,
        format!("-MOVED {slot} 127.0.0.1:{}\r\n", a.port())
    );
    Ok(())
}

/// The same commands to a Rampart cluster and a redis-server cluster built
/// the same way, replies compared with ports replaced by node indexes.
#[test]
fn shard_pubsub_routing_and_slot_key_listing_match_redis() -> Result<()> {
    let ours = [
        start_rampart_node()?,
        start_rampart_node()?,
        start_rampart_node()?,
    ];
    let theirs = [
        start_redis_node()?,
        start_redis_node()?,
        start_redis_node()?,
    ];
    let ours_refs: Vec<&ServerProcess> = ours.iter().map(|n| &**n).collect();
    let theirs_refs: Vec<&ServerProcess> = theirs.iter().map(|n| &**n).collect();
    create(&ours_refs)?;
    create(&theirs_refs)?;
    let go = AtomicBool::new(true);
    // Hash-tagged keys crowd a few slots; plain ones spread.
    for (seed, prefix) in [(ours[0].port(), "k"), (theirs[0].port(), "k")] {
        write_keys(seed, prefix, 0, 2000, &go)?;
    }
    for seed in [ours[0].port(), theirs[0].port()] {
        let mut c = ClusterClient::new(seed);
        for i in 0..300 {
            let key = format!("{{tag{}}}:{i}", i % 3);
            c.run(key.as_bytes(), &[b"SET", key.as_bytes(), b"v"])?;
        }
    }
    let normalise = |s: String, nodes: &[&ServerProcess]| {
        let mut s = s;
        for (i, n) in nodes.iter().enumerate() {
            s = s.replace(&format!(":{}", n.port()), &format!(":node{i}"));
        }
        s
    };
    let mut slots: BTreeSet<u16> = (0..2000)
        .step_by(97)
        .map(|i| key_hash_slot(format!("k{i}").as_bytes()))
        .collect();
    for t in 0..3 {
        slots.insert(key_hash_slot(format!("{{tag{t}}}").as_bytes()));
    }
    // An empty slot and the edges.
    slots.extend([0, 16383]);
    for slot in &slots {
        let owner = node_of_slot(*slot);
        let s = slot.to_string();
        for args in [
            vec!["CLUSTER", "COUNTKEYSINSLOT", s.as_str()],
            vec!["CLUSTER", "GETKEYSINSLOT", s.as_str(), "1000"],
            vec!["CLUSTER", "GETKEYSINSLOT", s.as_str(), "0"],
        ] {
            let a = rampart_tests::Reply::parse(&ours[owner].conn()?.cmd(&args)?)?;
            let b = rampart_tests::Reply::parse(&theirs[owner].conn()?.cmd(&args)?)?;
            assert_eq!(a.sorted(), b.sorted(), "{args:?}");
        }
    }
    // GETKEYSINSLOT with a small count lists that many of the slot's keys.
    let tag = key_hash_slot(b"{tag0}").to_string();
    let owner = node_of_slot(key_hash_slot(b"{tag0}"));
    let few = ours[owner]
        .conn()?
        .cmd(&["CLUSTER", "GETKEYSINSLOT", &tag, "7"])?;
    assert!(String::from_utf8_lossy(&few).starts_with("*7\r\n"));
    // Shard Pub/Sub routing and errors, on every node of both clusters.
    for (i, (o, t)) in ours.iter().zip(theirs.iter()).enumerate() {
        for args in [
            vec!["SPUBLISH", "sa", "m"],
            vec!["SPUBLISH", "sb", "m"],
            vec!["SPUBLISH", "news", "m"],
            vec!["SSUBSCRIBE", "sa", "sb"],
            vec!["SSUBSCRIBE", "sa", "{sa}x"],
            vec!["SUNSUBSCRIBE", "sa", "sb"],
            vec!["SUNSUBSCRIBE", "news"],
            vec!["PUBSUB", "SHARDNUMSUB", "sa", "sb"],
        ] {
            let a = normalise(text(&o.conn()?.cmd(&args)?), &ours_refs);
            let b = normalise(text(&t.conn()?.cmd(&args)?), &theirs_refs);
            assert_eq!(a, b, "node {i}: {args:?}");
        }
    }
    Ok(())
}

/// When a slot leaves a node (CLUSTER SETSLOT NODE), every client
/// subscribed there to a shard channel of that slot is told
/// `sunsubscribe`, in Redis's order (by slot, then channel name), with its
/// remaining count; a RESP2 client left with nothing is out of subscribed
/// mode. Step by step on a Rampart and a redis-server cluster, byte for
/// byte.
#[test]
fn shard_subscribers_of_a_slot_that_moves_away_are_unsubscribed_as_redis() -> Result<()> {
    let ours = [
        start_rampart_node()?,
        start_rampart_node()?,
        start_rampart_node()?,
    ];
    let theirs = [
        start_redis_node()?,
        start_redis_node()?,
        start_redis_node()?,
    ];
    let slot = key_hash_slot(b"t");
    let owner = node_of_slot(slot);
    // A channel of another slot on the same node stays subscribed.
    let kept = (0..)
        .map(|i| format!("keep{i}"))
        .find(|c| {
            let s = key_hash_slot(c.as_bytes());
            node_of_slot(s) == owner && s != slot
        })
        .unwrap();
    let mut seen: Vec<Vec<Vec<u8>>> = Vec::new();
    for nodes in [
        ours.iter().map(|n| &**n).collect::<Vec<&ServerProcess>>(),
        theirs.iter().map(|n| &**n).collect(),
    ] {
        create(&nodes)?;
        let (from, to) = (nodes[owner], nodes[(owner + 1) % 3]);
        let mut both = from.conn()?;
        both.set_read_timeout(Duration::from_secs(20))?;
        // One slot per SSUBSCRIBE (else CROSSSLOT).
        both.send(&["SSUBSCRIBE", "{t}b", "{t}a"])?;
        both.send(&["SSUBSCRIBE", &kept])?;
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(both.read_reply()?);
        }
        let mut only = subscriber(from, "SSUBSCRIBE", "{t}a")?;
        let target = node_id(to)?;
        assert_eq!(
            cmd(
                from,
                &["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &target]
            )?,
            "+OK\r\n"
        );
        let name = from.name();
        for what in ["the first sunsubscribe", "the second sunsubscribe"] {
            got.push(
                both.read_reply()
                    .with_context(|| format!("{name}: {what}"))?,
            );
        }
        got.push(
            only.read_reply()
                .with_context(|| format!("{name}: the single subscriber's sunsubscribe"))?,
        );
        // Out of subscribed mode: a plain PING and a plain command.
        got.push(only.cmd(&["PING"])?);
        got.push(only.cmd(&["ECHO", "x"])?);
        // Still subscribed to the channel whose slot stayed.
        got.push(both.cmd(&["PING"])?);
        got.push(cmd(from, &["PUBSUB", "SHARDCHANNELS"])?.into_bytes());
        seen.push(got);
    }
    let [ours_seen, theirs_seen] = &seen[..] else {
        bail!("two runs expected");
    };
    for (i, (a, b)) in ours_seen.iter().zip(theirs_seen).enumerate() {
        assert_eq!(
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b),
            "step {i}"
        );
    }
    // The pushes themselves, so two equal mistakes cannot pass.
    assert_eq!(
        String::from_utf8_lossy(&ours_seen[3]),
        "*3\r\n$12\r\nsunsubscribe\r\n$4\r\n{t}a\r\n:2\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&ours_seen[5]),
        "*3\r\n$12\r\nsunsubscribe\r\n$4\r\n{t}a\r\n:0\r\n"
    );
    Ok(())
}
