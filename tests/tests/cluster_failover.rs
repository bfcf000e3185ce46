//! Cluster failover with real processes: `redis-cli --cluster create
//! --cluster-replicas 1` of six Rampart nodes; CLUSTER FAILOVER under a
//! steady writer loses no acknowledged write; kill -9 of a primary gets
//! its replica promoted and the cluster ok again, losing at most the
//! newest writes (async replication), and the old primary rejoins as a
//! replica; nodes.conf keeps a replica's role across a restart; a mixed
//! cluster where a Rampart replica takes over from a redis-server primary
//! and a redis-server replica from a Rampart primary; CLUSTER REPLICATE /
//! FAILOVER / COUNT-FAILURE-REPORTS errors compared with redis-server.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rampart_tests::cluster::{cmd, text};
use rampart_tests::{
    free_port, require_tool, run_with_timeout, shared_keyring, wait_for, Rampart, RawConn,
    RedisOracle, ServerProcess,
};

/// How long a cluster may take to agree (a debug build on two busy cores).
const CONVERGE: Duration = Duration::from_secs(90);
/// `cluster-node-timeout`: short, so failures are noticed in seconds.
const NODE_TIMEOUT: &str = "1500";

/// A cluster node: Rampart (restartable in its own directory, with the
/// same bus port) or redis-server.
enum Proc {
    Rampart(Rampart),
    Redis(RedisOracle),
}

struct Node {
    proc: Option<Proc>,
    dir: PathBuf,
    args: Vec<String>,
}

impl Node {
    fn sp(&self) -> &ServerProcess {
        match self.proc.as_ref() {
            Some(Proc::Rampart(r)) => r,
            Some(Proc::Redis(r)) => r,
            None => panic!("the node is down"),
        }
    }

    fn up(&self) -> bool {
        self.proc.is_some()
    }

    /// kill -9, then reaped.
    fn kill9(&mut self) -> Result<()> {
        let pid = self.sp().pid();
        let st = Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()?;
        if !st.success() {
            bail!("kill -9 {pid} failed");
        }
        // Dropping reaps it.
        self.proc = None;
        Ok(())
    }

    fn restart(&mut self) -> Result<()> {
        let args: Vec<&str> = self.args.iter().map(|s| s.as_str()).collect();
        self.proc = Some(Proc::Rampart(Rampart::start_in(&self.dir, &args)?));
        Ok(())
    }
}

fn cluster_args(extra: &[&str]) -> Result<Vec<String>> {
    Ok(rampart_tests::cluster::node_args(
        free_port()?,
        NODE_TIMEOUT,
        extra,
    ))
}

/// A Rampart node in `<root>/<name>`, sharing `<root>`'s keyring.
fn rampart_node(root: &Path, name: &str) -> Result<Node> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir)?;
    let keys = shared_keyring(root);
    let args = cluster_args(&[
        "--kms-key-file",
        &keys,
        // A redis-server replica (the mixed cluster) takes a plain sync.
        "--repl-allow-plaintext-sync",
        "yes",
    ])?;
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let proc = Rampart::start_in(&dir, &a)?;
    Ok(Node {
        proc: Some(Proc::Rampart(proc)),
        dir,
        args,
    })
}

fn redis_node() -> Result<Node> {
    let args = cluster_args(&[])?;
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let proc = RedisOracle::start_with(&a)?;
    Ok(Node {
        dir: proc.dir().to_path_buf(),
        proc: Some(Proc::Redis(proc)),
        args,
    })
}

/// One CLUSTER NODES line.
#[derive(Debug, Clone)]
struct Line {
    id: String,
    port: u16,
    flags: String,
    master: String,
    slots: String,
}

fn nodes_of(n: &ServerProcess) -> Result<Vec<Line>> {
    let out = cmd(n, &["CLUSTER", "NODES"])?;
    let mut v = Vec::new();
    for l in out.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split(' ').collect();
        if f.len() < 8 {
            bail!("short CLUSTER NODES line {l:?}");
        }
        let port = f[1]
            .split(['@', ','])
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .context("address")?;
        v.push(Line {
            id: f[0].to_string(),
            port,
            flags: f[2].replace("myself,", ""),
            master: f[3].to_string(),
            slots: f[8..].join(" "),
        });
    }
    Ok(v)
}

fn myid(n: &ServerProcess) -> Result<String> {
    cmd(n, &["CLUSTER", "MYID"])
}

fn state_ok(n: &ServerProcess) -> bool {
    cmd(n, &["CLUSTER", "INFO"]).is_ok_and(|i| i.contains("cluster_state:ok"))
}

/// Whether `n` sees `id` as a master serving slots and no FAIL flag.
fn sees_master(n: &ServerProcess, id: &str) -> bool {
    nodes_of(n).is_ok_and(|v| {
        v.iter()
            .any(|l| l.id == id && l.flags == "master" && !l.slots.is_empty())
    })
}

/// Whether `n` sees `replica` as a replica of `master`.
fn sees_replica(n: &ServerProcess, replica: &str, master: &str) -> bool {
    nodes_of(n).is_ok_and(|v| {
        v.iter()
            .any(|l| l.id == replica && l.flags.contains("slave") && l.master == master)
    })
}

fn link_up(n: &ServerProcess) -> bool {
    cmd(n, &["INFO", "replication"])
        .is_ok_and(|i| i.contains("role:slave") && i.contains("master_link_status:up"))
}

/// A hash tag whose slot `owner` serves, found by asking the cluster.
fn tag_on(n: &ServerProcess, owner: &str) -> Result<String> {
    let lines = nodes_of(n)?;
    let me = lines.iter().find(|l| l.id == owner).context("owner")?;
    let ranges: Vec<(i64, i64)> = me
        .slots
        .split(' ')
        .filter_map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect();
    for i in 0..10_000 {
        let tag = format!("t{i}");
        let slot: i64 = cmd(n, &["CLUSTER", "KEYSLOT", &tag])?
            .trim_start_matches(':')
            .trim()
            .parse()?;
        if ranges.iter().any(|(a, b)| (*a..=*b).contains(&slot)) {
            return Ok(tag);
        }
    }
    bail!("no tag found for {owner}")
}

/// `redis-cli --cluster create … --cluster-replicas 1`.
fn create_with_replicas(nodes: &[&Node]) -> Result<()> {
    let cli = require_tool("redis-cli")?;
    let mut c = Command::new(cli);
    c.arg("--cluster").arg("create");
    for n in nodes {
        c.arg(n.sp().addr());
    }
    c.args(["--cluster-replicas", "1", "--cluster-yes"]);
    let out = run_with_timeout(&mut c, CONVERGE)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !stdout.contains("[OK] All 16384 slots covered.") {
        bail!(
            "redis-cli --cluster create failed: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Indices of (primary, its replica) pairs as `nodes[0]` sees them.
fn pairs(nodes: &[Node]) -> Result<Vec<(usize, usize)>> {
    let lines = nodes_of(nodes[0].sp())?;
    let index = |id: &str| -> Option<usize> {
        let port = lines.iter().find(|l| l.id == id)?.port;
        nodes.iter().position(|n| n.up() && n.sp().port() == port)
    };
    let mut v = Vec::new();
    for l in lines.iter().filter(|l| l.flags.contains("slave")) {
        if let (Some(m), Some(r)) = (index(&l.master), index(&l.id)) {
            v.push((m, r));
        }
    }
    v.sort();
    Ok(v)
}

/// What every live node sees and logged, for a failed wait.
fn dump(nodes: &[Node]) {
    for n in nodes.iter().filter(|n| n.up()) {
        let sp = n.sp();
        eprintln!(
            "--- node on port {}:\n{}\n{}",
            sp.port(),
            cmd(sp, &["CLUSTER", "NODES"]).unwrap_or_default(),
            cmd(sp, &["CLUSTER", "INFO"]).unwrap_or_default()
        );
        let log = sp.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        for l in tail.iter().rev() {
            eprintln!("  {l}");
        }
    }
}

fn all_ok(nodes: &[Node]) -> bool {
    nodes.iter().filter(|n| n.up()).all(|n| state_ok(n.sp()))
}

/// SET `{tag}:i` on `port`, following MOVED and waiting out pauses and
/// TRYAGAIN/CLUSTERDOWN; the port that took it.
fn set_following(port: &mut u16, key: &str, val: &str, deadline: Instant) -> Result<()> {
    loop {
        if Instant::now() > deadline {
            bail!("no node took {key}");
        }
        let reply = RawConn::connect(*port).and_then(|mut c| {
            c.set_read_timeout(Duration::from_secs(30))?;
            c.cmd(&["SET", key, val])
        });
        match reply {
            Ok(r) if r == b"+OK\r\n" => return Ok(()),
            Ok(r) if r.starts_with(b"-MOVED ") => {
                let s = String::from_utf8_lossy(&r).into_owned();
                let p = s
                    .trim_end()
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .context("MOVED address")?;
                *port = p;
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The values of `keys` on the node at `port` (READONLY, so a replica
/// answers too); `None` for a missing key.
fn read_all(port: u16, keys: &[String]) -> Result<Vec<Option<String>>> {
    let mut c = RawConn::connect(port)?;
    c.cmd(&["READONLY"])?;
    let mut v = Vec::new();
    for k in keys {
        let r = c.cmd(&["GET", k])?;
        v.push(if r.starts_with(b"$-1") {
            None
        } else if r.starts_with(b"$") {
            Some(text(&r))
        } else {
            bail!("GET {k}: {}", String::from_utf8_lossy(&r));
        });
    }
    Ok(v)
}

#[test]
fn six_rampart_nodes_fail_over_manually_and_on_kill() -> Result<()> {
    let root = tempfile::tempdir()?;
    let mut nodes = Vec::new();
    for i in 0..6 {
        nodes.push(rampart_node(root.path(), &format!("n{i}"))?);
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    create_with_replicas(&refs)?;
    wait_for("three replicas with their links up", CONVERGE, || {
        Ok(pairs(&nodes)?.len() == 3
            && all_ok(&nodes)
            && pairs(&nodes)?.iter().all(|(_, r)| link_up(nodes[*r].sp())))
    })?;
    let pv = pairs(&nodes)?;
    for (m, r) in &pv {
        let (mid, rid) = (myid(nodes[*m].sp())?, myid(nodes[*r].sp())?);
        for n in &nodes {
            assert!(sees_replica(n.sp(), &rid, &mid));
        }
        // CLUSTER REPLICAS and INFO replication agree with CLUSTER NODES.
        let reps = cmd(nodes[*m].sp(), &["CLUSTER", "REPLICAS", &mid])?;
        assert!(reps.contains(&rid) && reps.contains(" slave "), "{reps}");
        let info = cmd(nodes[*m].sp(), &["INFO", "replication"])?;
        assert!(info.contains("role:master") && info.contains("connected_slaves:1"));
        let shards = cmd(nodes[*r].sp(), &["CLUSTER", "SHARDS"])?;
        assert!(shards.contains("replica"), "{shards}");
        let info = cmd(nodes[*r].sp(), &["INFO", "replication"])?;
        assert!(
            info.contains(&format!("master_port:{}", nodes[*m].sp().port())),
            "{info}"
        );
    }
    // A replica refuses writes with a redirection to its master.
    let (m0, r0) = pv[0];
    let tag = tag_on(nodes[0].sp(), &myid(nodes[m0].sp())?)?;
    let on_replica = cmd(nodes[r0].sp(), &["SET", &format!("{{{tag}}}:x"), "1"])?;
    assert!(on_replica.starts_with("-MOVED "), "{on_replica}");
    assert_eq!(
        cmd(nodes[r0].sp(), &["REPLICAOF", "127.0.0.1", "1"])?,
        "-ERR REPLICAOF not allowed in cluster mode.\r\n"
    );

    // --- Manual failover under a steady writer loses nothing. ---
    let (old_m, new_m) = (myid(nodes[m0].sp())?, myid(nodes[r0].sp())?);
    let writer_port = nodes[m0].sp().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let tag2 = tag.clone();
    let writer = std::thread::spawn(move || -> Result<Vec<String>> {
        let mut port = writer_port;
        let mut acked = Vec::new();
        let deadline = Instant::now() + CONVERGE;
        let mut i = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let key = format!("{{{tag2}}}:mf:{i}");
            set_following(&mut port, &key, &i.to_string(), deadline)?;
            acked.push(key);
            i += 1;
        }
        Ok(acked)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cmd(nodes[r0].sp(), &["CLUSTER", "FAILOVER"])?, "+OK\r\n");
    wait_for("the replica promoted by CLUSTER FAILOVER", CONVERGE, || {
        Ok(nodes.iter().all(|n| sees_master(n.sp(), &new_m))
            && nodes.iter().all(|n| sees_replica(n.sp(), &old_m, &new_m)))
    })
    .inspect_err(|_| dump(&nodes))?;
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    assert!(acked.len() > 10, "only {} writes", acked.len());
    let values = read_all(nodes[r0].sp().port(), &acked)?;
    let lost = values.iter().filter(|v| v.is_none()).count();
    eprintln!(
        "manual failover: {} acknowledged writes, {lost} lost",
        acked.len()
    );
    assert_eq!(lost, 0, "a manual failover must lose no acknowledged write");
    assert!(cmd(nodes[r0].sp(), &["INFO", "replication"])?.contains("role:master"));
    wait_for("the old primary syncing from the new one", CONVERGE, || {
        Ok(link_up(nodes[m0].sp()))
    })?;
    wait_for("cluster ok after the manual failover", CONVERGE, || {
        Ok(all_ok(&nodes))
    })?;

    // --- kill -9 of a primary: its replica takes over. ---
    let (victim, heir) = (r0, m0); // roles swapped above
    let (victim_id, heir_id) = (myid(nodes[victim].sp())?, myid(nodes[heir].sp())?);
    let mut port = nodes[victim].sp().port();
    let deadline = Instant::now() + CONVERGE;
    let mut synced = Vec::new();
    for i in 0..500 {
        let key = format!("{{{tag}}}:a:{i}");
        set_following(&mut port, &key, &i.to_string(), deadline)?;
        synced.push(key);
    }
    // WAIT: these are on the replica for certain.
    let w = cmd(nodes[victim].sp(), &["WAIT", "1", "10000"])?;
    assert_eq!(w, ":1\r\n");
    let mut recent = Vec::new();
    for i in 0..500 {
        let key = format!("{{{tag}}}:b:{i}");
        set_following(&mut port, &key, &i.to_string(), deadline)?;
        recent.push(key);
    }
    let killed_at = Instant::now();
    nodes[victim].kill9()?;
    wait_for("the replica promoted after kill -9", CONVERGE, || {
        Ok(nodes
            .iter()
            .filter(|n| n.up())
            .all(|n| sees_master(n.sp(), &heir_id))
            && all_ok(&nodes))
    })
    .inspect_err(|_| dump(&nodes))?;
    eprintln!(
        "kill -9: cluster ok with the replica promoted after {:?}",
        killed_at.elapsed()
    );
    for n in nodes.iter().filter(|n| n.up()) {
        let l = nodes_of(n.sp())?;
        let v = l.iter().find(|l| l.id == victim_id).context("victim")?;
        assert!(v.flags.contains("fail") && v.slots.is_empty(), "{v:?}");
    }
    let heir_port = nodes[heir].sp().port();
    let before = read_all(heir_port, &synced)?;
    assert!(
        before.iter().all(|v| v.is_some()),
        "writes acknowledged by WAIT were lost"
    );
    let after = read_all(heir_port, &recent)?;
    let lost = after.iter().filter(|v| v.is_none()).count();
    // Asynchronous replication loses only the newest writes: whatever
    // survived is a prefix of what was written.
    let first_missing = after
        .iter()
        .position(|v| v.is_none())
        .unwrap_or(after.len());
    assert!(
        after[first_missing..].iter().all(|v| v.is_none()),
        "a write survived while an older one was lost"
    );
    eprintln!("kill -9: {lost} of {} unsynced writes lost", recent.len());
    // Writes go to the new primary.
    let mut port = heir_port;
    set_following(&mut port, &format!("{{{tag}}}:c"), "1", deadline)?;
    assert_eq!(port, heir_port);

    // --- The killed primary comes back as the new primary's replica. ---
    nodes[victim].restart()?;
    wait_for("the old primary rejoining as a replica", CONVERGE, || {
        Ok(nodes
            .iter()
            .all(|n| sees_replica(n.sp(), &victim_id, &heir_id))
            && link_up(nodes[victim].sp())
            && all_ok(&nodes))
    })?;
    let conf = std::fs::read_to_string(nodes[victim].dir.join("nodes.conf"))?;
    assert!(
        conf.lines().any(|l| l.starts_with(&victim_id)
            && l.contains("myself,slave")
            && l.contains(&heir_id)),
        "{conf}"
    );
    // Its data is the new primary's, the lost writes included.
    let got = read_all(nodes[victim].sp().port(), &recent)?;
    wait_for("the rejoined replica caught up", CONVERGE, || {
        Ok(read_all(nodes[victim].sp().port(), &synced)?
            .iter()
            .all(|v| v.is_some()))
    })?;
    assert_eq!(got.iter().filter(|v| v.is_none()).count(), lost);

    // --- A replica restarted keeps its role from nodes.conf. ---
    let (m1, r1) = pairs(&nodes)?
        .into_iter()
        .find(|(m, _)| *m != heir)
        .context("another pair")?;
    let (m1_id, r1_id) = (myid(nodes[m1].sp())?, myid(nodes[r1].sp())?);
    if let Some(Proc::Rampart(p)) = nodes[r1].proc.as_mut() {
        p.terminate(Duration::from_secs(30))?;
    }
    nodes[r1].proc = None;
    nodes[r1].restart()?;
    assert!(sees_replica(nodes[r1].sp(), &r1_id, &m1_id));
    wait_for("the restarted replica syncing again", CONVERGE, || {
        Ok(link_up(nodes[r1].sp()) && all_ok(&nodes))
    })
    .inspect_err(|_| {
        dump(&nodes);
        eprintln!(
            "{}",
            cmd(nodes[r1].sp(), &["INFO", "replication"]).unwrap_or_default()
        );
    })?;
    Ok(())
}

/// Adds `new` as a replica of `master_id` through `existing`.
fn add_replica(new: &Node, existing: &Node, master_id: &str) -> Result<()> {
    let cli = require_tool("redis-cli")?;
    let out = run_with_timeout(
        Command::new(cli).args([
            "--cluster",
            "add-node",
            &new.sp().addr(),
            &existing.sp().addr(),
            "--cluster-slave",
            "--cluster-master-id",
            master_id,
        ]),
        CONVERGE,
    )?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "add-node failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn create(nodes: &[&Node]) -> Result<()> {
    let cli = require_tool("redis-cli")?;
    let mut c = Command::new(cli);
    c.arg("--cluster").arg("create");
    for n in nodes {
        c.arg(n.sp().addr());
    }
    c.arg("--cluster-yes");
    let out = run_with_timeout(&mut c, CONVERGE)?;
    if !out.status.success() {
        bail!(
            "create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

#[test]
fn mixed_cluster_fails_over_both_ways() -> Result<()> {
    let root = tempfile::tempdir()?;
    // Primaries: redis-server A, Rampart B, redis-server C. Replicas: a
    // Rampart one of A, a redis-server one of B.
    let mut nodes = vec![
        redis_node()?,
        rampart_node(root.path(), "b")?,
        redis_node()?,
        rampart_node(root.path(), "ra")?,
        redis_node()?,
    ];
    create(&[&nodes[0], &nodes[1], &nodes[2]])?;
    wait_for("three primaries ok", CONVERGE, || Ok(all_ok(&nodes[..3])))?;
    let ids: Vec<String> = nodes[..3]
        .iter()
        .map(|n| myid(n.sp()))
        .collect::<Result<_>>()?;
    add_replica(&nodes[3], &nodes[0], &ids[0])?;
    add_replica(&nodes[4], &nodes[0], &ids[1])?;
    let (ra, rb) = (myid(nodes[3].sp())?, myid(nodes[4].sp())?);
    wait_for(
        "both replicas known everywhere with links up",
        CONVERGE,
        || {
            Ok(nodes
                .iter()
                .all(|n| sees_replica(n.sp(), &ra, &ids[0]) && sees_replica(n.sp(), &rb, &ids[1]))
                && link_up(nodes[3].sp())
                && link_up(nodes[4].sp())
                && all_ok(&nodes))
        },
    )?;
    // CLUSTER FAILOVER both ways: the Rampart replica takes over from the
    // paused redis-server primary, then the redis-server one (now the
    // replica) takes back over from the paused Rampart primary.
    for (replica, master, new_id, old_id) in [(3, 0, &ra, &ids[0]), (0, 3, &ids[0], &ra)] {
        wait_for(
            "the replica's link up before CLUSTER FAILOVER",
            CONVERGE,
            || Ok(link_up(nodes[replica].sp()) && all_ok(&nodes)),
        )?;
        assert_eq!(
            cmd(nodes[replica].sp(), &["CLUSTER", "FAILOVER"])?,
            "+OK\r\n"
        );
        wait_for("the manual failover seen everywhere", CONVERGE, || {
            Ok(nodes
                .iter()
                .all(|n| sees_master(n.sp(), new_id) && sees_replica(n.sp(), old_id, new_id)))
        })
        .inspect_err(|_| dump(&nodes))?;
        wait_for("the old primary syncing from the new one", CONVERGE, || {
            Ok(link_up(nodes[master].sp()))
        })?;
    }
    // Data on A reaches the Rampart replica.
    let tag_a = tag_on(nodes[0].sp(), &ids[0])?;
    let deadline = Instant::now() + CONVERGE;
    let mut keys = Vec::new();
    let mut port = nodes[0].sp().port();
    for i in 0..200 {
        let k = format!("{{{tag_a}}}:{i}");
        set_following(&mut port, &k, "v", deadline)?;
        keys.push(k);
    }
    assert_eq!(cmd(nodes[0].sp(), &["WAIT", "1", "10000"])?, ":1\r\n");

    // kill -9 the redis-server primary: the Rampart replica wins the
    // election with redis-server and Rampart voters.
    nodes[0].kill9()?;
    wait_for("the Rampart replica promoted", CONVERGE, || {
        Ok(nodes
            .iter()
            .filter(|n| n.up())
            .all(|n| sees_master(n.sp(), &ra))
            && all_ok(&nodes))
    })
    .inspect_err(|_| dump(&nodes))?;
    assert!(read_all(nodes[3].sp().port(), &keys)?
        .iter()
        .all(|v| v.is_some()));
    assert!(cmd(nodes[3].sp(), &["INFO", "replication"])?.contains("role:master"));

    // kill -9 the Rampart primary: the redis-server replica wins.
    let tag_b = tag_on(nodes[1].sp(), &ids[1])?;
    let mut keys_b = Vec::new();
    let mut port = nodes[1].sp().port();
    for i in 0..200 {
        let k = format!("{{{tag_b}}}:{i}");
        set_following(&mut port, &k, "v", deadline)?;
        keys_b.push(k);
    }
    assert_eq!(cmd(nodes[1].sp(), &["WAIT", "1", "10000"])?, ":1\r\n");
    nodes[1].kill9()?;
    wait_for("the redis-server replica promoted", CONVERGE, || {
        Ok(nodes
            .iter()
            .filter(|n| n.up())
            .all(|n| sees_master(n.sp(), &rb))
            && all_ok(&nodes))
    })
    .inspect_err(|_| dump(&nodes))?;
    assert!(read_all(nodes[4].sp().port(), &keys_b)?
        .iter()
        .all(|v| v.is_some()));
    Ok(())
}

#[test]
fn replicate_and_failover_errors_match_redis() -> Result<()> {
    let root = tempfile::tempdir()?;
    let r = rampart_node(root.path(), "r")?;
    let o = redis_node()?;
    let (rid, oid) = (myid(r.sp())?, myid(o.sp())?);
    let unknown = "0123456789012345678901234567890123456789";
    for args in [
        vec!["CLUSTER", "REPLICATE", unknown],
        vec!["CLUSTER", "REPLICATE", "short"],
        vec!["CLUSTER", "REPLICATE", "MYID"],
        vec!["CLUSTER", "FAILOVER"],
        vec!["CLUSTER", "FAILOVER", "FORCE"],
        vec!["CLUSTER", "FAILOVER", "TAKEOVER"],
        vec!["CLUSTER", "FAILOVER", "NOPE"],
        vec!["CLUSTER", "FAILOVER", "FORCE", "NOW"],
        vec!["CLUSTER", "REPLICATE"],
        vec!["CLUSTER", "COUNT-FAILURE-REPORTS", "MYID"],
        vec!["CLUSTER", "COUNT-FAILURE-REPORTS", unknown],
        vec!["CLUSTER", "REPLICAS", "MYID"],
        vec!["CLUSTER", "SLAVES", unknown],
        vec!["REPLICAOF", "127.0.0.1", "6379"],
        vec!["REPLICAOF", "NO", "ONE"],
        vec!["SLAVEOF", "NO", "ONE"],
        vec!["FAILOVER"],
        vec!["CLUSTER", "ADDSLOTS", "1"],
        vec!["CLUSTER", "REPLICATE", "MYID"],
    ] {
        let ra: Vec<&str> = args
            .iter()
            .map(|a| if *a == "MYID" { rid.as_str() } else { a })
            .collect();
        let oa: Vec<&str> = args
            .iter()
            .map(|a| if *a == "MYID" { oid.as_str() } else { a })
            .collect();
        let got = cmd(r.sp(), &ra)?.replace(&rid, "MYID");
        let want = cmd(o.sp(), &oa)?.replace(&oid, "MYID");
        assert_eq!(got, want, "{args:?}");
    }
    // A node with slots cannot become a replica; the two nodes meet first.
    let ob = o
        .args
        .iter()
        .skip_while(|a| *a != "--cluster-port")
        .nth(1)
        .context("bus port")?
        .clone();
    let op = o.sp().port().to_string();
    assert_eq!(
        cmd(r.sp(), &["CLUSTER", "MEET", "127.0.0.1", &op, &ob])?,
        "+OK\r\n"
    );
    wait_for("the nodes to know each other", CONVERGE, || {
        let (a, b) = (nodes_of(r.sp())?, nodes_of(o.sp())?);
        Ok(a.iter()
            .any(|l| l.id == oid && !l.flags.contains("handshake"))
            && b.iter()
                .any(|l| l.id == rid && !l.flags.contains("handshake")))
    })?;
    let got = cmd(r.sp(), &["CLUSTER", "REPLICATE", &oid])?;
    let want = cmd(o.sp(), &["CLUSTER", "REPLICATE", &rid])?;
    assert_eq!(got, want);
    assert_eq!(
        got,
        "-ERR To set a master the node must be empty and without assigned slots.\r\n"
    );
    Ok(())
}
