//! Cluster mode with real processes: `redis-cli --cluster create` of three
//! Rampart primaries, `--cluster check`, `redis-cli -c` across the shards,
//! CLUSTER NODES/SLOTS/SHARDS/INFO agreeing on every node, redirections
//! compared with a redis-server 7.0 cluster built the same way, a mixed
//! cluster (Rampart and redis-server nodes), nodes.conf across a restart,
//! CLUSTER commands on a non-cluster server, and garbage on the bus port.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rampart_tests::cluster::{cmd, create, state_ok, text};
use rampart_tests::{
    free_port, require_tool, run_with_timeout, wait_for, Rampart, RawConn, RedisOracle,
    ServerProcess,
};

/// How long a cluster may take to agree (a debug build on two busy cores).
const CONVERGE: Duration = Duration::from_secs(60);

fn cluster_args(extra: &[&str]) -> Vec<String> {
    rampart_tests::cluster::node_args(free_port().unwrap_or(0), "5000", extra)
}

fn start_rampart_node(extra: &[&str]) -> Result<Rampart> {
    let args = cluster_args(extra);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    Rampart::start(&args)
}

fn start_redis_node(extra: &[&str]) -> Result<RedisOracle> {
    let args = cluster_args(extra);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    RedisOracle::start_with(&args)
}

/// Three Rampart and three redis-server nodes started with `extra`, each
/// trio made a cluster with `redis-cli --cluster create` and ok.
fn both_clusters(extra: &[&str]) -> Result<([Rampart; 3], [RedisOracle; 3])> {
    let ours = [
        start_rampart_node(extra)?,
        start_rampart_node(extra)?,
        start_rampart_node(extra)?,
    ];
    let theirs = [
        start_redis_node(extra)?,
        start_redis_node(extra)?,
        start_redis_node(extra)?,
    ];
    create(&[&ours[0], &ours[1], &ours[2]])?;
    create(&[&theirs[0], &theirs[1], &theirs[2]])?;
    Ok((ours, theirs))
}

/// CLUSTER NODES as `id -> (ip:port@cport, role, slots)`, ignoring times,
/// the myself flag and link state, which differ between observers.
fn topology(n: &ServerProcess) -> Result<BTreeMap<String, (String, String, String)>> {
    let nodes = cmd(n, &["CLUSTER", "NODES"])?;
    let mut m = BTreeMap::new();
    for line in nodes.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 8 {
            bail!("short CLUSTER NODES line {line:?}");
        }
        let role = f[2].replace("myself,", "");
        m.insert(f[0].to_string(), (f[1].to_string(), role, f[8..].join(" ")));
    }
    Ok(m)
}

/// A key whose slot `owner` does not serve, and the error `other` gives.
fn moved_reply(n: &ServerProcess, key: &str) -> Result<String> {
    Ok(text(&n.conn()?.cmd(&["GET", key])?))
}

/// Maps every port in `s` to the index of its node, so replies from two
/// clusters compare.
fn normalise(s: &str, ports: &[u16]) -> String {
    let mut s = s.to_string();
    for (i, p) in ports.iter().enumerate() {
        s = s.replace(&format!(":{p}"), &format!(":node{i}"));
    }
    s
}

#[test]
fn create_check_route_and_agree() -> Result<()> {
    let nodes = [
        start_rampart_node(&[])?,
        start_rampart_node(&[])?,
        start_rampart_node(&[])?,
    ];
    let procs: Vec<&ServerProcess> = nodes.iter().map(|n| &**n).collect();
    // Redis's startup line names the mode.
    let log = procs[0].log();
    assert!(log.contains("Running mode=cluster, "), "{log}");
    create(&procs)?;
    wait_for("the same CLUSTER NODES everywhere", CONVERGE, || {
        let first = topology(procs[0])?;
        Ok(first.len() == 3
            && procs
                .iter()
                .all(|n| topology(n).ok().as_ref() == Some(&first)))
    })?;
    let cli = require_tool("redis-cli")?;
    let out = run_with_timeout(
        Command::new(&cli).args(["--cluster", "check", &procs[0].addr()]),
        CONVERGE,
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("[OK] All nodes agree about slots configuration."),
        "{stdout}"
    );
    assert!(stdout.contains("[OK] All 16384 slots covered."), "{stdout}");

    // redis-cli -c follows MOVED: write through one node, read through another.
    for i in 0..30 {
        let key = format!("key:{i}");
        let port = procs[i % 3].port().to_string();
        let out = run_with_timeout(
            Command::new(&cli).args(["-c", "-p", &port, "SET", &key, &format!("v{i}")]),
            Duration::from_secs(20),
        )?;
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    }
    let mut served = [0usize; 3];
    for i in 0..30 {
        let key = format!("key:{i}");
        let port = procs[(i + 1) % 3].port().to_string();
        let out = run_with_timeout(
            Command::new(&cli).args(["-c", "-p", &port, "GET", &key]),
            Duration::from_secs(20),
        )?;
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("v{i}"));
        let slot: i64 = cmd(procs[0], &["CLUSTER", "KEYSLOT", &key])?
            .trim_start_matches(':')
            .trim()
            .parse()?;
        served[(slot * 3 / 16384) as usize] += 1;
    }
    assert!(served.iter().all(|&n| n > 0), "{served:?}");
    for (i, n) in procs.iter().enumerate() {
        let info = cmd(n, &["CLUSTER", "INFO"])?;
        for want in [
            "cluster_state:ok",
            "cluster_slots_assigned:16384",
            "cluster_slots_ok:16384",
            "cluster_known_nodes:3",
            "cluster_size:3",
        ] {
            assert!(info.contains(want), "node {i}: {info}");
        }
        assert!(cmd(n, &["INFO", "cluster"])?.contains("cluster_enabled:1"));
    }
    // CLUSTER SLOTS and SHARDS agree across nodes.
    let slots0 = procs[0].conn()?.cmd(&["CLUSTER", "SLOTS"])?;
    let shards0 = rampart_tests::Reply::parse(&procs[0].conn()?.cmd(&["CLUSTER", "SHARDS"])?)?;
    for n in &procs[1..] {
        assert_eq!(n.conn()?.cmd(&["CLUSTER", "SLOTS"])?, slots0);
        let shards = rampart_tests::Reply::parse(&n.conn()?.cmd(&["CLUSTER", "SHARDS"])?)?;
        assert_eq!(
            shards.sorted().without_integers(),
            shards0.sorted().without_integers()
        );
    }

    // The same redirections as a redis-server cluster built the same way.
    let oracle = [
        start_redis_node(&[])?,
        start_redis_node(&[])?,
        start_redis_node(&[])?,
    ];
    let oprocs: Vec<&ServerProcess> = oracle.iter().map(|n| &**n).collect();
    create(&oprocs)?;
    let rports: Vec<u16> = procs.iter().map(|n| n.port()).collect();
    let oports: Vec<u16> = oprocs.iter().map(|n| n.port()).collect();
    for key in ["a", "b", "c", "{user1}x", "foo", "bar"] {
        for i in 0..3 {
            let ours = normalise(&moved_reply(procs[i], key)?, &rports);
            let theirs = normalise(&moved_reply(oprocs[i], key)?, &oports);
            assert_eq!(ours, theirs, "GET {key} on node {i}");
        }
    }
    for args in [
        &["MSET", "a", "1", "b", "2"][..],
        &["MGET", "{t}a", "{t}b", "c"],
        &["SELECT", "1"],
        &["SELECT", "0"],
        &["CLUSTER", "KEYSLOT", "{user1}x"],
        &["CLUSTER", "COUNTKEYSINSLOT", "99999"],
    ] {
        let ours = normalise(&text(&procs[0].conn()?.cmd(args)?), &rports);
        let theirs = normalise(&text(&oprocs[0].conn()?.cmd(args)?), &oports);
        assert_eq!(ours, theirs, "{args:?}");
    }
    // Inside MULTI: a redirection aborts the transaction, as in Redis.
    let run_tx = |n: &ServerProcess, ports: &[u16]| -> Result<String> {
        let mut c = n.conn()?;
        let mut all = String::new();
        for args in [
            &["MULTI"][..],
            &["SET", "a", "1"],
            &["SET", "b", "1"],
            &["SET", "c", "1"],
            &["EXEC"],
        ] {
            all.push_str(&text(&c.cmd(args)?));
        }
        Ok(normalise(&all, ports))
    };
    for i in 0..3 {
        assert_eq!(
            run_tx(procs[i], &rports)?,
            run_tx(oprocs[i], &oports)?,
            "node {i}"
        );
    }
    Ok(())
}

#[test]
fn nodes_conf_survives_a_restart() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let args = cluster_args(&[]);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let mut n = Rampart::start_in(dir.path(), &args)?;
    let id = cmd(&n, &["CLUSTER", "MYID"])?;
    assert_eq!(
        cmd(&n, &["CLUSTER", "ADDSLOTSRANGE", "0", "100", "200", "300"])?,
        "+OK\r\n"
    );
    assert_eq!(cmd(&n, &["CLUSTER", "SET-CONFIG-EPOCH", "7"])?, "+OK\r\n");
    let before = cmd(&n, &["CLUSTER", "NODES"])?;
    let old_port = n.port();
    n.terminate(Duration::from_secs(20))?;
    let conf = std::fs::read_to_string(dir.path().join("nodes.conf"))?;
    assert!(
        conf.contains(&id) && conf.contains("0-100 200-300"),
        "{conf}"
    );
    assert!(
        conf.contains("vars currentEpoch 7 lastVoteEpoch 0"),
        "{conf}"
    );
    let n = Rampart::start_in(dir.path(), &args)?;
    assert_eq!(cmd(&n, &["CLUSTER", "MYID"])?, id);
    let after = cmd(&n, &["CLUSTER", "NODES"])?;
    // The harness gives the restarted server a new client port.
    assert_eq!(
        after,
        before.replace(&format!(":{old_port}@"), &format!(":{}@", n.port()))
    );
    assert!(cmd(&n, &["CLUSTER", "INFO"])?.contains("cluster_my_epoch:7"));
    Ok(())
}

#[test]
fn cluster_commands_without_cluster_mode_answer_as_redis() -> Result<()> {
    let r = Rampart::start(&[])?;
    let o = RedisOracle::start()?;
    for args in [
        &["CLUSTER", "INFO"][..],
        &["CLUSTER", "NODES"],
        &["CLUSTER", "MYID"],
        &["CLUSTER", "KEYSLOT", "foo"],
        &["CLUSTER", "HELP"],
        &["CLUSTER", "MEET", "127.0.0.1", "1"],
        &["CLUSTER", "MEET", "127.0.0.1"],
        &["CLUSTER", "NOPE"],
        &["CLUSTER"],
        &["READONLY"],
        &["READWRITE"],
        &["ASKING"],
        &["SELECT", "1"],
    ] {
        assert_eq!(
            text(&r.conn()?.cmd(args)?),
            text(&o.conn()?.cmd(args)?),
            "{args:?}"
        );
    }
    // COMMAND COUNT: Redis 7.0's commands plus BACKUP.
    let ours: i64 = text(&r.conn()?.cmd(&["COMMAND", "COUNT"])?)
        .trim_start_matches(':')
        .trim()
        .parse()?;
    let theirs: i64 = text(&o.conn()?.cmd(&["COMMAND", "COUNT"])?)
        .trim_start_matches(':')
        .trim()
        .parse()?;
    assert_eq!(ours, theirs + 1);
    for name in ["cluster", "readonly", "readwrite", "asking"] {
        let info = text(&r.conn()?.cmd(&["COMMAND", "INFO", name])?);
        assert!(info.contains(name), "{info}");
        let docs = text(&r.conn()?.cmd(&["COMMAND", "DOCS", name])?);
        assert!(docs.contains("summary"), "{docs}");
    }
    Ok(())
}

#[test]
fn cluster_command_errors_as_redis() -> Result<()> {
    let r = start_rampart_node(&[])?;
    let o = start_redis_node(&[])?;
    let cases: &[&[&str]] = &[
        &["CLUSTER", "ADDSLOTS", "100000"],
        &["CLUSTER", "ADDSLOTS", "x"],
        &["CLUSTER", "ADDSLOTS", "1", "1"],
        &["CLUSTER", "ADDSLOTSRANGE", "5", "1"],
        &["CLUSTER", "ADDSLOTSRANGE", "1", "2", "3"],
        &["CLUSTER", "DELSLOTS", "2"],
        &["CLUSTER", "DELSLOTSRANGE", "2", "3"],
        &["CLUSTER", "MEET", "nohost", "1"],
        &["CLUSTER", "MEET", "127.0.0.1", "x"],
        &["CLUSTER", "MEET", "127.0.0.1", "1", "y"],
        &["CLUSTER", "MEET", "127.0.0.1", "1", "2", "3"],
        &["CLUSTER", "MEET", "127.0.0.1", "70000"],
        &["CLUSTER", "SET-CONFIG-EPOCH", "-1"],
        &["CLUSTER", "SET-CONFIG-EPOCH", "x"],
        &[
            "CLUSTER",
            "FORGET",
            "0123456789012345678901234567890123456789",
        ],
        &["CLUSTER", "FORGET", "short"],
        &["CLUSTER", "COUNT-FAILURE-REPORTS", "nope"],
        &["CLUSTER", "COUNTKEYSINSLOT", "-1"],
        &["CLUSTER", "COUNTKEYSINSLOT", "5"],
        &["CLUSTER", "GETKEYSINSLOT", "1", "-1"],
        &["CLUSTER", "GETKEYSINSLOT", "1", "10"],
        &["CLUSTER", "KEYSLOT", "{a}b"],
        &["CLUSTER", "SETSLOT", "1", "foo"],
        &[
            "CLUSTER",
            "SETSLOT",
            "1",
            "migrating",
            "0123456789012345678901234567890123456789",
        ],
        &[
            "CLUSTER",
            "SETSLOT",
            "1",
            "node",
            "0123456789012345678901234567890123456789",
        ],
        &["CLUSTER", "RESET", "foo"],
        &[
            "CLUSTER",
            "REPLICAS",
            "0123456789012345678901234567890123456789",
        ],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "SHARDS"],
        &["CLUSTER", "LINKS"],
        &["CLUSTER", "MYID"],
        &["GET", "foo"],
        &["SELECT", "1"],
        &["MOVE", "foo", "1"],
        &["SWAPDB", "0", "1"],
        &["COPY", "foo", "bar", "DB", "1"],
        &["COPY", "foo", "bar", "DB", "99"],
        &["READONLY"],
        &["READWRITE"],
        &["ASKING"],
        &["CLUSTER", "ADDSLOTS", "0", "1", "2"],
        &["CLUSTER", "ADDSLOTS", "2"],
        &["CLUSTER", "ADDSLOTSRANGE", "3", "10", "20", "30"],
        &["CLUSTER", "DELSLOTSRANGE", "20", "25"],
        &["CLUSTER", "SET-CONFIG-EPOCH", "3"],
        &["CLUSTER", "SET-CONFIG-EPOCH", "4"],
        &["CLUSTER", "BUMPEPOCH"],
        &["CLUSTER", "BUMPEPOCH"],
        &["CLUSTER", "FLUSHSLOTS"],
        &["CLUSTER", "ADDSLOTS", "5"],
        &["CLUSTER", "RESET", "SOFT"],
    ];
    // Each node's own id and port differ: compare what is around them.
    let own = |n: &ServerProcess, reply: String| -> Result<String> {
        let id = cmd(n, &["CLUSTER", "MYID"])?;
        Ok(reply
            .replace(&id, "<myid>")
            .replace(&format!(":{}\r\n", n.port()), ":<port>\r\n"))
    };
    for args in cases {
        let ours = own(&r, text(&r.conn()?.cmd(args)?))?;
        let theirs = own(&o, text(&o.conn()?.cmd(args)?))?;
        assert_eq!(ours, theirs, "{args:?}");
    }
    Ok(())
}

#[test]
fn mixed_cluster_with_redis_server() -> Result<()> {
    let r = start_rampart_node(&[])?;
    let o = start_redis_node(&[])?;
    assert_eq!(
        cmd(&r, &["CLUSTER", "ADDSLOTSRANGE", "0", "8191"])?,
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&o, &["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"])?,
        "+OK\r\n"
    );
    assert_eq!(cmd(&r, &["CLUSTER", "SET-CONFIG-EPOCH", "1"])?, "+OK\r\n");
    assert_eq!(cmd(&o, &["CLUSTER", "SET-CONFIG-EPOCH", "2"])?, "+OK\r\n");
    // The redis-server's bus port, from its own CLUSTER NODES.
    let onodes = cmd(&o, &["CLUSTER", "NODES"])?;
    let ocport = onodes
        .split_once('@')
        .and_then(|(_, rest)| rest.split(' ').next())
        .context("no @cport")?
        .to_string();
    assert_eq!(
        cmd(
            &r,
            &[
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                &o.port().to_string(),
                &ocport
            ]
        )?,
        "+OK\r\n"
    );
    wait_for("both sides agree on the mixed cluster", CONVERGE, || {
        let a = topology(&r)?;
        let b = topology(&o)?;
        Ok(a.len() == 2 && a == b && state_ok(&r)? && state_ok(&o)?)
    })?;
    let rid = cmd(&r, &["CLUSTER", "MYID"])?;
    let oid = cmd(&o, &["CLUSTER", "MYID"])?;
    let topo = topology(&r)?;
    assert_eq!(
        topo[&rid].0,
        format!("127.0.0.1:{}@{}", r.port(), cluster_port(&r)?)
    );
    assert_eq!(topo[&rid].2, "0-8191");
    assert_eq!(topo[&oid].2, "8192-16383");
    // Each side redirects to the other for the other's slots.
    let slot_b = 15495; // "a"
    assert_eq!(
        text(&r.conn()?.cmd(&["GET", "a"])?),
        format!("-MOVED {slot_b} 127.0.0.1:{}\r\n", o.port())
    );
    let slot_foo = 12182;
    assert_eq!(
        text(&r.conn()?.cmd(&["GET", "foo"])?),
        format!("-MOVED {slot_foo} 127.0.0.1:{}\r\n", o.port())
    );
    assert_eq!(
        text(&o.conn()?.cmd(&["GET", "b"])?),
        format!("-MOVED 3300 127.0.0.1:{}\r\n", r.port())
    );
    assert_eq!(cmd(&r, &["SET", "b", "1"])?, "+OK\r\n");
    Ok(())
}

fn cluster_port(n: &ServerProcess) -> Result<String> {
    let nodes = cmd(n, &["CLUSTER", "NODES"])?;
    let me = nodes
        .lines()
        .find(|l| l.contains("myself"))
        .context("no myself")?;
    Ok(me
        .split_once('@')
        .and_then(|(_, rest)| rest.split([' ', ',']).next())
        .unwrap_or_default()
        .to_string())
}

#[test]
fn garbage_on_the_bus_drops_the_link_and_the_node_serves_on() -> Result<()> {
    let r = start_rampart_node(&[])?;
    let bus: u16 = cluster_port(&r)?.parse()?;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", bus))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")?;
    let mut buf = [0u8; 64];
    // The node closes the link: read ends with EOF (or a reset), not a timeout.
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => bail!("the bus answered garbage with {n} bytes"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => bail!("the link stayed open: {e}"),
    }
    // A valid signature with an absurd length is garbage too.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", bus))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(b"RCmb\x00\x00\x00\x04junkjunk")?;
    assert!(matches!(s.read(&mut buf), Ok(0) | Err(_)));
    let mut c = RawConn::connect(r.port())?;
    assert_eq!(c.cmd(&["PING"])?, b"+PONG\r\n");
    assert!(cmd(&r, &["CLUSTER", "INFO"])?.contains("cluster_known_nodes:1"));
    let log = r.log();
    assert!(
        log.contains("Bad message received on the cluster bus"),
        "{log}"
    );
    Ok(())
}

/// Stops a process with SIGSTOP (a node that stops answering while its
/// sockets stay open, as across a partition) and continues it on drop.
struct Paused(u32);

impl Paused {
    fn stop(n: &ServerProcess) -> Result<Paused> {
        signal(n.pid(), "-STOP")?;
        Ok(Paused(n.pid()))
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        let _ = signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, sig: &str) -> Result<()> {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()?;
    if !st.success() {
        bail!("kill {sig} {pid} failed: {st}");
    }
    Ok(())
}

/// A key of a slot `n` serves (its GET is not redirected).
fn local_key(n: &ServerProcess) -> Result<String> {
    for i in 0..1000 {
        let k = format!("k{i}");
        if !cmd(n, &["GET", &k])?.starts_with("-MOVED") {
            return Ok(k);
        }
    }
    bail!("no key of the node's slots among k0..k999")
}

/// Two of three masters stop answering (SIGSTOP) in a Rampart cluster and
/// in a redis-server cluster: the master left alone is a minority, so
/// after the node timeout it refuses reads and writes with Redis's
/// CLUSTERDOWN; once the others answer again it serves after the rejoin
/// delay. Both sides step by step, with the same replies.
#[test]
fn a_master_alone_in_a_minority_refuses_queries_as_redis() -> Result<()> {
    let (ours, theirs) = both_clusters(&["--cluster-node-timeout", "2000"])?;
    let ours: Vec<&ServerProcess> = ours.iter().map(|n| &**n).collect();
    let theirs: Vec<&ServerProcess> = theirs.iter().map(|n| &**n).collect();
    let keys = [local_key(ours[0])?, local_key(theirs[0])?];
    for (n, k) in [ours[0], theirs[0]].iter().zip(&keys) {
        assert_eq!(cmd(n, &["SET", k, "before"])?, "+OK\r\n");
    }

    let paused = [
        Paused::stop(ours[1])?,
        Paused::stop(ours[2])?,
        Paused::stop(theirs[1])?,
        Paused::stop(theirs[2])?,
    ];
    for n in [ours[0], theirs[0]] {
        wait_for("the lone master to go down", CONVERGE, || {
            Ok(cmd(n, &["CLUSTER", "INFO"])?.contains("cluster_state:fail"))
        })?;
    }
    let replies = |n: &ServerProcess, k: &str| -> Result<Vec<String>> {
        Ok(vec![
            cmd(n, &["SET", k, "during"])?,
            cmd(n, &["GET", k])?,
            cmd(n, &["PING"])?,
        ])
    };
    let down = replies(ours[0], &keys[0])?;
    assert_eq!(down, replies(theirs[0], &keys[1])?);
    assert_eq!(down[0], "-CLUSTERDOWN The cluster is down\r\n");
    // Paused, not failed: no majority could mark them FAIL.
    for (n, others) in [(ours[0], &ours[1..]), (theirs[0], &theirs[1..])] {
        let nodes = cmd(n, &["CLUSTER", "NODES"])?;
        for o in others {
            let port = format!(":{}@", o.port());
            let line = nodes.lines().find(|l| l.contains(&port)).context("node")?;
            assert!(line.contains("fail?") && !line.contains("fail "), "{line}");
        }
    }
    assert!(ours[0].log().contains("Cluster state changed: fail"));

    drop(paused);
    for nodes in [&ours, &theirs] {
        wait_for("cluster_state:ok again everywhere", CONVERGE, || {
            Ok(nodes.iter().all(|n| state_ok(n).unwrap_or(false)))
        })?;
    }
    for (n, k) in [ours[0], theirs[0]].iter().zip(&keys) {
        assert_eq!(cmd(n, &["GET", k])?, "before");
        assert_eq!(cmd(n, &["SET", k, "after"])?, "+OK\r\n");
    }
    assert!(ours[0].log().contains("Cluster state changed: ok"));
    Ok(())
}

/// The `redis` crate's cluster client (slot map from CLUSTER SLOTS, MOVED
/// handling, cluster pipelines split by node) runs a workload across all
/// slots of a Rampart cluster, and `redis-benchmark --cluster` completes
/// against it.
#[test]
fn the_redis_crate_cluster_client_and_redis_benchmark_run_workloads() -> Result<()> {
    let nodes = [
        start_rampart_node(&[])?,
        start_rampart_node(&[])?,
        start_rampart_node(&[])?,
    ];
    let procs: Vec<&ServerProcess> = nodes.iter().map(|n| &**n).collect();
    create(&procs)?;
    let client = redis::cluster::ClusterClient::new(vec![procs[0].url()])?;
    let mut con = client.get_connection()?;
    const N: usize = 3000;
    for i in 0..N {
        let () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg(format!("v{i}"))
            .query(&mut con)?;
    }
    // A cluster pipeline: the client splits it by node.
    let mut pipe = redis::cluster::cluster_pipe();
    for i in 0..N {
        pipe.cmd("INCRBY").arg(format!("counter:{i}")).arg(i);
    }
    let counts: Vec<i64> = pipe.query(&mut con)?;
    assert_eq!(counts, (0..N as i64).collect::<Vec<_>>());
    // Several keys of one slot through a hash tag.
    let () = redis::cmd("MSET")
        .arg("{user:7}:name")
        .arg("ada")
        .arg("{user:7}:lang")
        .arg("en")
        .query(&mut con)?;
    let got: Vec<String> = redis::cmd("MGET")
        .arg("{user:7}:name")
        .arg("{user:7}:lang")
        .query(&mut con)?;
    assert_eq!(got, ["ada", "en"]);
    for i in (0..N).step_by(7) {
        let v: String = redis::cmd("GET").arg(format!("key:{i}")).query(&mut con)?;
        assert_eq!(v, format!("v{i}"));
    }
    let mut total = 0;
    for n in &procs {
        let size: usize = cmd(n, &["DBSIZE"])?
            .trim_start_matches(':')
            .trim()
            .parse()?;
        assert!(size > N / 2, "one node holds only {size} keys");
        total += size;
    }
    assert_eq!(total, 2 * N + 2);
    // redis-benchmark's cluster mode (slot map from CLUSTER SLOTS, a
    // connection per node) completes against the same cluster.
    let out = run_with_timeout(
        Command::new(require_tool("redis-benchmark")?).args([
            "--cluster",
            "-p",
            &procs[0].port().to_string(),
            "-n",
            "20000",
            "-c",
            "10",
            "-r",
            "100000",
            "-t",
            "set,get",
            "--csv",
        ]),
        CONVERGE,
    )?;
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{csv}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(csv.contains("\"SET\"") && csv.contains("\"GET\""), "{csv}");
    let mut after = 0;
    for n in &procs {
        after += cmd(n, &["DBSIZE"])?
            .trim_start_matches(':')
            .trim()
            .parse::<usize>()?;
    }
    assert!(after > total, "redis-benchmark --cluster wrote no key");
    Ok(())
}

/// Keys of `n` distinct slots served by the first node of a cluster made
/// by `redis-cli --cluster create` of three (slots 0-5460).
fn keys_of_first_node(n: usize) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    (0..)
        .map(|i| format!("key{i}"))
        .filter(|k| {
            let s = rampart_cluster::key_hash_slot(k.as_bytes());
            s <= 5460 && seen.insert(s)
        })
        .take(n)
        .collect()
}

/// Commands inside scripts are checked against the slot map as Redis's
/// `scriptVerifyClusterState` does: a key of another node, keys of two
/// slots in a script with a shebang (unless `allow-cross-slot-keys`),
/// `no-cluster` scripts; scripts without a shebang may use any local key.
/// The same scripts on a Rampart and a redis-server cluster.
#[test]
fn keys_inside_scripts_are_checked_against_the_slot_map_as_redis() -> Result<()> {
    let (ours, theirs) = both_clusters(&[])?;
    let ours: Vec<&ServerProcess> = ours.iter().map(|n| &**n).collect();
    let theirs: Vec<&ServerProcess> = theirs.iter().map(|n| &**n).collect();
    let local = keys_of_first_node(2);
    let (l1, l2) = (local[0].as_str(), local[1].as_str());
    // "foo" hashes to 12182: the third node's.
    let remote = "foo";
    let two = |shebang: &str| {
        format!("{shebang}redis.call('set','{l1}','1')\nreturn redis.call('set','{l2}','1')")
    };
    let cases: Vec<Vec<String>> = vec![
        vec![
            "return redis.call('get', KEYS[1])".into(),
            "1".into(),
            l1.into(),
        ],
        vec![format!("return redis.call('get','{remote}')"), "0".into()],
        vec![
            format!("#!lua\nreturn redis.call('get','{remote}')"),
            "0".into(),
        ],
        vec![
            format!("#!lua\nreturn redis.pcall('get','{remote}')"),
            "0".into(),
        ],
        vec![two("#!lua\n"), "0".into()],
        vec![two("#!lua flags=allow-cross-slot-keys\n"), "0".into()],
        vec![two(""), "0".into()],
        vec![
            format!("#!lua\nreturn redis.call('get','{l2}')"),
            "1".into(),
            l1.into(),
        ],
        vec![
            "return redis.call('get', KEYS[1])".into(),
            "1".into(),
            remote.into(),
        ],
        vec!["#!lua flags=no-cluster\nreturn 1".into(), "0".into()],
    ];
    let mut replies = Vec::new();
    for case in &cases {
        let mut args = vec!["EVAL"];
        args.extend(case.iter().map(String::as_str));
        let a = text(&ours[0].conn()?.cmd(&args)?);
        let b = text(&theirs[0].conn()?.cmd(&args)?);
        let a = a.replace(&format!(":{}", ours[2].port()), ":<third>");
        let b = b.replace(&format!(":{}", theirs[2].port()), ":<third>");
        assert_eq!(a, b, "EVAL {case:?}");
        replies.push(a);
    }
    assert!(replies[1].contains("Script attempted to access a non local key in a cluster node"));
    assert!(
        replies[4].contains("Script attempted to access keys that do not hash to the same slot")
    );
    assert_eq!(replies[5], "+OK\r\n");
    assert_eq!(replies[6], "+OK\r\n");
    assert!(replies[8].starts_with("-MOVED 12182 "));
    assert_eq!(
        replies[9],
        "-ERR Can not run script on cluster, 'no-cluster' flag is set.\r\n"
    );
    Ok(())
}

/// A peer that stops reading (SIGSTOP) makes the bus link to it pile up
/// unwritten messages; past `cluster-link-sendbuf-limit` the link is freed
/// with Redis's log line and counted in CLUSTER INFO, and the cluster
/// heals once the peer runs again. On a Rampart and a redis-server
/// cluster side by side.
#[test]
fn a_bus_link_past_its_send_buffer_limit_is_freed_as_redis() -> Result<()> {
    let (ours, theirs) = both_clusters(&[])?;
    let ours: Vec<&ServerProcess> = ours.iter().map(|n| &**n).collect();
    let theirs: Vec<&ServerProcess> = theirs.iter().map(|n| &**n).collect();
    for nodes in [&ours, &theirs] {
        assert_eq!(
            cmd(
                nodes[0],
                &["CONFIG", "SET", "cluster-link-sendbuf-limit", "1048576"]
            )?,
            "+OK\r\n"
        );
    }
    let exceeded = |n: &ServerProcess| -> Result<u64> {
        let info = cmd(n, &["CLUSTER", "INFO"])?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("total_cluster_links_buffer_limit_exceeded:"))
            .context("no total_cluster_links_buffer_limit_exceeded")?
            .trim()
            .parse()?)
    };
    let big = "x".repeat(256 * 1024);
    for nodes in [&ours, &theirs] {
        assert_eq!(exceeded(nodes[0])?, 0);
        let stopped = Paused::stop(nodes[2])?;
        let mut c = nodes[0].conn()?;
        // PUBLISH goes to every node over the bus: the stopped one's
        // socket buffers fill, then the link's own queue grows.
        wait_for("the link to the stopped node freed", CONVERGE, || {
            for _ in 0..20 {
                c.cmd(&["PUBLISH", "ch", &big])?;
            }
            Ok(exceeded(nodes[0])? >= 1)
        })?;
        drop(stopped);
        wait_for("cluster_state:ok again", CONVERGE, || {
            Ok(nodes.iter().all(|n| state_ok(n).unwrap_or(false)))
        })?;
        assert!(cmd(nodes[2], &["PING"])? == "+PONG\r\n");
    }
    let id = cmd(ours[2], &["CLUSTER", "MYID"])?;
    let log = ours[0].log();
    assert!(
        log.contains(&format!("Freeing cluster link(to node {id}, used memory: "))
            && log.contains("due to exceeding send buffer memory limit."),
        "{log}"
    );
    Ok(())
}

/// Conflicting SETSLOT sequences get Redis's errors and change nothing,
/// and a MEET to a server that is not a cluster node (its client port)
/// leaves a handshake that expires, with the node serving throughout.
/// Each step on a Rampart and a redis-server node.
#[test]
fn conflicting_setslots_and_a_meet_to_a_non_cluster_node_as_redis() -> Result<()> {
    let timeout = ["--cluster-node-timeout", "1000"];
    let r = start_rampart_node(&timeout)?;
    let o = start_redis_node(&timeout)?;
    let plain = RedisOracle::start()?;
    let plain_port = plain.port().to_string();
    let steps: &[&[&str]] = &[
        &["CLUSTER", "ADDSLOTSRANGE", "0", "99"],
        &["CLUSTER", "SETSLOT", "5", "IMPORTING", "ME"],
        &["CLUSTER", "SETSLOT", "500", "MIGRATING", "ME"],
        &["CLUSTER", "SETSLOT", "5", "MIGRATING", "ME"],
        &["CLUSTER", "SETSLOT", "5", "STABLE"],
        &["CLUSTER", "SETSLOT", "500", "NODE", "ME"],
        &["CLUSTER", "SETSLOT", "500", "STABLE"],
        &["CLUSTER", "SETSLOT", "5", "NODE", "ME"],
        &["SET", "{a}", "1"],
        &["CLUSTER", "KEYSLOT", "{a}"],
        &["CLUSTER", "DELSLOTS", "500"],
        &["CLUSTER", "COUNTKEYSINSLOT", "500"],
        &["CLUSTER", "MEET", "127.0.0.1", &plain_port, &plain_port],
    ];
    let run = |n: &ServerProcess| -> Result<Vec<String>> {
        let id = cmd(n, &["CLUSTER", "MYID"])?;
        let mut out = Vec::new();
        for args in steps {
            let args: Vec<&str> = args
                .iter()
                .map(|a| if *a == "ME" { id.as_str() } else { *a })
                .collect();
            out.push(cmd(n, &args)?.replace(&id, "<myid>"));
        }
        Ok(out)
    };
    let ours = run(&r)?;
    let theirs = run(&o)?;
    assert_eq!(ours, theirs);
    assert_eq!(ours[1], "-ERR I'm already the owner of hash slot 5\r\n");
    // The handshake with a server that answers no bus message expires
    // (handshake timeout: the node timeout, at least 1 s).
    for n in [&*r, &*o] {
        wait_for("the failed handshake gone", CONVERGE, || {
            Ok(cmd(n, &["CLUSTER", "INFO"])?.contains("cluster_known_nodes:1\r\n"))
        })?;
        assert_eq!(cmd(n, &["PING"])?, "+PONG\r\n");
        assert!(!cmd(n, &["CLUSTER", "NODES"])?.contains("handshake"));
    }
    assert_eq!(cmd(&plain, &["PING"])?, "+PONG\r\n");
    Ok(())
}
