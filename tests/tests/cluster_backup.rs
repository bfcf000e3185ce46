//! Cluster backups end to end: three Rampart primaries joined by
//! `redis-cli --cluster create`, backed up shard by shard into a real
//! S3-compatible store (Garage, from `scripts/services.sh`) by `rampart
//! backup create --cluster`, restored by `rampart backup restore
//! --cluster-dirs` into new directories whose nodes are started as real
//! processes and checked with `redis-cli --cluster check`, key by key and
//! by DEBUG DIGEST per shard. Then what must be refused: damaged and
//! missing shards (no directory left behind), a cluster with a slot
//! uncovered, a name taken, a layout of the wrong size.
//!
//! These tests FAIL when `RAMPART_TEST_S3_ENDPOINT` is unset or
//! unreachable: a skipped backup test would hide a broken store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use rampart_cluster::key_hash_slot;
use rampart_cluster::nodes_conf::NodesConf;
use rampart_tests::s3::{rt, S3};
use rampart_tests::{
    free_port, require_tool, run_with_timeout, wait_for, workspace_root, HeldPorts, Rampart,
    ServerProcess,
};

/// How long a cluster may take to agree (a debug build on two busy cores).
const CONVERGE: Duration = Duration::from_secs(60);

/// Runs the `rampart` tool.
fn cli(args: &[String]) -> Result<Output> {
    let bin = workspace_root().join("target/debug/rampart");
    run_with_timeout(Command::new(bin).args(args), Duration::from_secs(180))
}

fn cli_ok(args: &[String]) -> Result<String> {
    let out = cli(args)?;
    if !out.status.success() {
        bail!(
            "rampart {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `rampart` expecting a refusal: returns its single stderr line.
fn cli_refused(args: &[String]) -> Result<String> {
    let out = cli(args)?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        bail!("rampart {args:?} succeeded; it should have failed: {err}");
    }
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() != 1 || !lines[0].starts_with("rampart: error: ") {
        bail!("rampart {args:?} should fail with one error line, printed:\n{err}");
    }
    Ok(lines[0].to_string())
}

fn with(base: &[String], more: &[&str]) -> Vec<String> {
    more.iter()
        .map(|s| s.to_string())
        .chain(base.iter().cloned())
        .collect()
}

fn text(c: &mut redis::Connection, args: &[&str]) -> Result<String> {
    let mut r = redis::cmd(args[0]);
    for a in &args[1..] {
        r.arg(*a);
    }
    Ok(r.query::<String>(c)?)
}

/// `--cluster-enabled yes` with an explicit bus port (port + 10000 may be
/// no port for the ephemeral ports tests get).
fn node_args(bus: u16, keyring: &str, s3: &S3) -> Vec<String> {
    let extra = ["--kms-key-file", keyring, "--enable-debug-command", "yes"];
    let mut v = rampart_tests::cluster::node_args(bus, "5000", &extra);
    v.extend(s3.server_args());
    v
}

fn start_node(keyring: &str, s3: &S3) -> Result<Rampart> {
    let args = node_args(free_port()?, keyring, s3);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Rampart::start(&args)
}

/// A restored node, on the ports its nodes.conf names.
fn start_restored(dir: &Path, port: u16, bus: u16, keyring: &str, s3: &S3) -> Result<Rampart> {
    let args = node_args(bus, keyring, s3);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Rampart::start_in_at(dir, port, &args)
}

fn state_ok(port: u16) -> Result<bool> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
    Ok(text(&mut c, &["CLUSTER", "INFO"])?.contains("cluster_state:ok"))
}

fn wait_ok(ports: &[u16]) -> Result<()> {
    for &p in ports {
        wait_for(&format!("cluster_state:ok on {p}"), CONVERGE, || {
            state_ok(p)
        })?;
    }
    Ok(())
}

/// `redis-cli --cluster check` through `port`: every slot covered, no
/// error or warning.
fn cluster_check(port: u16) -> Result<String> {
    let mut c = Command::new(require_tool("redis-cli")?);
    c.args(["--cluster", "check", &format!("127.0.0.1:{port}")]);
    let out = run_with_timeout(&mut c, CONVERGE)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success()
        || !stdout.contains("[OK] All 16384 slots covered.")
        || stdout.contains("[ERR]")
        || stdout.contains("[WARNING]")
    {
        bail!(
            "redis-cli --cluster check is not clean: {}\n{stdout}",
            out.status
        );
    }
    Ok(stdout)
}

/// Slot -> client port, from one node's CLUSTER NODES.
fn slot_map(port: u16) -> Result<Vec<u16>> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
    let conf = NodesConf::parse(&text(&mut c, &["CLUSTER", "NODES"])?)?;
    let mut owner = vec![0u16; 16384];
    for n in &conf.nodes {
        for r in &n.slots {
            for s in r.clone() {
                owner[s as usize] = n.port;
            }
        }
    }
    if let Some(s) = owner.iter().position(|&p| p == 0) {
        bail!("slot {s} has no owner in {port}'s CLUSTER NODES");
    }
    Ok(owner)
}

/// One key per slot, and a few of every other type, each with the value
/// it should read back as (`GET`, or the type's own rendering).
fn dataset() -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    let mut covered = vec![false; 16384];
    let mut left = covered.len();
    let mut i = 0u64;
    while left > 0 {
        let k = format!("k{i}");
        let s = key_hash_slot(k.as_bytes()) as usize;
        if !covered[s] {
            covered[s] = true;
            left -= 1;
            keys.insert(k, format!("v{i}-{}", "x".repeat((i % 50) as usize)));
        }
        i += 1;
    }
    keys
}

/// Writes the dataset to the nodes owning its slots (one pipeline per
/// node), plus a hash, a list, a set, a sorted set and a key with a TTL on
/// each node.
fn populate(slots: &[u16], keys: &BTreeMap<String, String>) -> Result<()> {
    let mut per: BTreeMap<u16, redis::Pipeline> = BTreeMap::new();
    for (k, v) in keys {
        let port = slots[key_hash_slot(k.as_bytes()) as usize];
        per.entry(port)
            .or_default()
            .cmd("SET")
            .arg(k)
            .arg(v)
            .ignore();
    }
    for (t, k) in ["h", "l", "s", "z", "ttl"].iter().enumerate() {
        let k = format!("{k}-typed");
        let port = slots[key_hash_slot(k.as_bytes()) as usize];
        let p = per.entry(port).or_default();
        match t {
            0 => p.cmd("HSET").arg(&k).arg("f").arg("1").arg("g").arg("2"),
            1 => p.cmd("RPUSH").arg(&k).arg("a").arg("b").arg("c"),
            2 => p.cmd("SADD").arg(&k).arg("a").arg("b"),
            3 => p.cmd("ZADD").arg(&k).arg(1).arg("a").arg(2).arg("b"),
            _ => p.cmd("SET").arg(&k).arg("t").arg("EX").arg(100_000),
        }
        .ignore();
    }
    for (port, pipe) in per {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
        pipe.query::<()>(&mut c)?;
    }
    Ok(())
}

/// A shard's fingerprint: its slot ranges (CLUSTER NODES myself line),
/// DBSIZE and DEBUG DIGEST.
fn fingerprint(port: u16) -> Result<(String, i64, String)> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
    let conf = NodesConf::parse(&text(&mut c, &["CLUSTER", "NODES"])?)?;
    let me = conf.myself().ok_or_else(|| anyhow!("no myself line"))?;
    let slots: Vec<String> = me.slots.iter().map(|r| format!("{r:?}")).collect();
    let size: i64 = redis::cmd("DBSIZE").query(&mut c)?;
    let digest = text(&mut c, &["DEBUG", "DIGEST"])?;
    Ok((slots.join(" "), size, digest))
}

fn info_field(port: u16, field: &str) -> Result<String> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?.get_connection()?;
    let info = text(&mut c, &["INFO", "replication"])?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// A source cluster of three primaries holding [`dataset`], every node
/// backing up to `s3`, all under one keyring in `root`.
struct Source {
    nodes: Vec<Rampart>,
    keyring: String,
    keys: BTreeMap<String, String>,
}

fn source_cluster(root: &Path, s3: &S3) -> Result<Source> {
    let keyring = root.join("keyring.json").display().to_string();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        // One at a time: the first creates the shared keyring.
        nodes.push(start_node(&keyring, s3)?);
    }
    let procs: Vec<&ServerProcess> = nodes.iter().map(|n| &**n).collect();
    rampart_tests::cluster::create(&procs)?;
    let ports: Vec<u16> = nodes.iter().map(|n| n.port()).collect();
    wait_ok(&ports)?;
    let keys = dataset();
    populate(&slot_map(ports[0])?, &keys)?;
    Ok(Source {
        nodes,
        keyring,
        keys,
    })
}

#[test]
fn a_cluster_backup_restores_a_cluster_of_the_same_shape() -> Result<()> {
    let s3 = S3::new("cluster-backup")?;
    let root = tempfile::tempdir()?;
    let src = source_cluster(root.path(), &s3)?;
    let seed = src.nodes[1].addr();

    let out = cli_ok(&with(
        &s3.cli_args(),
        &["backup", "create", "cb", "--cluster", &seed],
    ))?;
    assert_eq!(out.trim(), "cb");

    // Listed once, as a cluster; its shards are part of it.
    let listed = cli_ok(&with(&s3.cli_args(), &["backup", "list"]))?;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 1, "{listed}");
    assert!(
        lines[0].starts_with("cb\tcluster\t")
            && lines[0].contains("3 shards: cb-shard-1,cb-shard-2,cb-shard-3"),
        "{listed}"
    );
    let described = cli_ok(&with(
        &s3.cli_args(),
        &["backup", "describe", "cb", "--key-file", &src.keyring],
    ))?;
    assert!(
        described.contains("kind:        cluster (3 shards)"),
        "{described}"
    );
    assert_eq!(
        described.matches("key state:   enabled").count(),
        3,
        "{described}"
    );
    // The shards' key counts add up to what was written.
    let store = s3.store()?;
    let cm = rt()?.block_on(rampart_persistence::backup::cluster::manifest(&store, "cb"))?;
    let total: u64 = cm.shards.iter().filter_map(|s| s.keys).sum();
    assert_eq!(total, src.keys.len() as u64 + 5);

    let mut before = BTreeMap::new();
    for n in &src.nodes {
        let (slots, size, digest) = fingerprint(n.port())?;
        before.insert(slots, (size, digest));
    }

    // Restore with one replica per shard: 3 masters, then 3 replicas.
    let dest = tempfile::tempdir()?;
    let dirs: Vec<PathBuf> = ["m1", "m2", "m3", "r1", "r2", "r3"]
        .iter()
        .map(|d| dest.path().join(d))
        .collect();
    let mut held = HeldPorts::new(12)?;
    let ports = held.ports();
    let (ports, bus) = ports.split_at(6);
    let join = |v: &[String]| v.join(",");
    let dir_list = join(
        &dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>(),
    );
    let port_list = join(&ports.iter().map(u16::to_string).collect::<Vec<_>>());
    let bus_list = join(&bus.iter().map(u16::to_string).collect::<Vec<_>>());
    let printed = cli_ok(&with(
        &s3.cli_args(),
        &[
            "backup",
            "restore",
            "cb",
            "--cluster-dirs",
            &dir_list,
            "--ports",
            &port_list,
            "--cluster-ports",
            &bus_list,
            "--replicas",
            "1",
            "--key-file",
            &src.keyring,
        ],
    ))?;
    let starts: Vec<&str> = printed.lines().collect();
    assert_eq!(starts.len(), 6, "{printed}");
    for (i, line) in starts.iter().enumerate() {
        assert!(
            line.starts_with("rampart-server --cluster-enabled yes")
                && line.contains(&format!("--port {} ", ports[i]))
                && line.contains(&format!("--dir {} ", dirs[i].display())),
            "{line}"
        );
    }
    // The source goes away: the restored cluster stands on its own.
    drop(src.nodes);

    let mut nodes = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        held.release(ports[i]);
        held.release(bus[i]);
        nodes.push(start_restored(d, ports[i], bus[i], &src.keyring, &s3)?);
    }
    wait_ok(ports)?;
    for &p in &ports[3..] {
        wait_for(&format!("replica {p} in sync"), CONVERGE, || {
            Ok(info_field(p, "role")? == "slave" && info_field(p, "master_link_status")? == "up")
        })?;
    }
    let check = cluster_check(ports[0])?;
    assert_eq!(check.matches("| 1 slaves.").count(), 3, "{check}");

    // Each shard as it was: same slots, same keys (DBSIZE), same contents.
    for &p in &ports[..3] {
        let (slots, size, digest) = fingerprint(p)?;
        let want = before
            .get(&slots)
            .ok_or_else(|| anyhow!("restored node {p} serves {slots}, no source shard did"))?;
        assert_eq!(&(size, digest), want, "shard {slots}");
    }
    // Every key on the node that owns its slot, and on that node's replica.
    let owner = slot_map(ports[4])?;
    let mut conns = BTreeMap::new();
    for &p in ports {
        conns.insert(
            p,
            redis::Client::open(format!("redis://127.0.0.1:{p}/"))?.get_connection()?,
        );
    }
    for (k, v) in &src.keys {
        let port = owner[key_hash_slot(k.as_bytes()) as usize];
        let c = conns
            .get_mut(&port)
            .ok_or_else(|| anyhow!("no node on {port}"))?;
        let got: Option<String> = redis::cmd("GET").arg(k).query(c)?;
        assert_eq!(got.as_deref(), Some(v.as_str()), "{k}");
    }
    let mut c = conns
        .remove(&owner[key_hash_slot(b"ttl-typed") as usize])
        .ok_or_else(|| anyhow!("no owner"))?;
    let ttl: i64 = redis::cmd("TTL").arg("ttl-typed").query(&mut c)?;
    assert!(ttl > 90_000, "TTL kept: {ttl}");
    for &p in &ports[3..] {
        wait_for(
            &format!("replica {p} holds its master's keys"),
            CONVERGE,
            || {
                let m = info_field(p, "master_port")?.parse::<u16>()?;
                Ok(fingerprint(p)?.1 == fingerprint(m)?.1)
            },
        )?;
    }

    // A copy rewrapped under another keyring: every shard opens under it.
    let other = root.path().join("other-keyring.json").display().to_string();
    cli_ok(&["keyring", "init", "--file", &other].map(String::from))?;
    cli_ok(&with(
        &s3.cli_args(),
        &[
            "backup",
            "copy",
            "cb",
            "cb-dr",
            "--key-file",
            &src.keyring,
            "--to-key-file",
            &other,
        ],
    ))?;
    let described = cli_ok(&with(
        &s3.cli_args(),
        &["backup", "describe", "cb-dr", "--key-file", &other],
    ))?;
    assert_eq!(
        described.matches("key state:   enabled").count(),
        3,
        "{described}"
    );
    assert!(
        described.contains("name:        cb-dr-shard-3"),
        "{described}"
    );
    let listed = cli_ok(&with(&s3.cli_args(), &["backup", "list"]))?;
    assert_eq!(listed.matches("\tcluster\t").count(), 2, "{listed}");

    // Delete: the cluster manifest and every shard backup.
    cli_ok(&with(&s3.cli_args(), &["backup", "delete", "cb-dr"]))?;
    cli_ok(&with(&s3.cli_args(), &["backup", "delete", "cb"]))?;
    let left = rt()?.block_on(store.list())?;
    assert!(left.is_empty(), "left in the store: {left:?}");
    Ok(())
}

#[test]
fn damaged_shards_and_uncovered_slots_are_refused() -> Result<()> {
    let s3 = S3::new("cluster-backup-bad")?;
    let root = tempfile::tempdir()?;
    let src = source_cluster(root.path(), &s3)?;
    let seed = src.nodes[0].addr();
    let store_args = s3.cli_args();
    cli_ok(&with(
        &store_args,
        &["backup", "create", "bad", "--cluster", &seed],
    ))?;

    // A taken name.
    let line = cli_refused(&with(
        &store_args,
        &["backup", "create", "bad", "--cluster", &seed],
    ))?;
    assert!(line.contains("already exists"), "{line}");

    let rt = rt()?;
    let store = s3.store()?;
    let dest = tempfile::tempdir()?;
    let dirs: Vec<PathBuf> = (1..=3).map(|i| dest.path().join(format!("n{i}"))).collect();
    let dir_list = dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut held = HeldPorts::new(6)?;
    let picked = held.ports();
    let list = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let (ports, bus) = (list(&picked[..3]), list(&picked[3..]));
    let layout = ["--ports", &ports, "--cluster-ports", &bus];
    let restore = |extra: &[&str]| {
        let mut a = vec![
            "backup",
            "restore",
            "bad",
            "--cluster-dirs",
            &dir_list,
            "--key-file",
            &src.keyring,
        ];
        a.extend_from_slice(extra);
        with(&store_args, &a)
    };
    let nothing_left = || {
        for d in &dirs {
            assert!(!d.exists(), "{} was left behind", d.display());
        }
    };

    // A layout of the wrong size.
    let line = cli_refused(&restore(&["--ports", &list(&picked[..2])]))?;
    assert!(line.contains("has 3 shards"), "{line}");
    nothing_left();

    // Shard 3's object damaged: the first two shards restore, the third
    // fails its check, and every directory is removed again.
    let object = "bad-shard-3.rdb.enc";
    let good = rt.block_on(store.get(object))?;
    let mut damaged = good.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x01;
    rt.block_on(store.put(object, damaged))?;
    let line = cli_refused(&restore(&layout))?;
    assert!(line.contains("shard 3 (backup bad-shard-3)"), "{line}");
    nothing_left();

    // Shard 2's backup gone: refused before anything is written.
    rt.block_on(store.put(object, good))?;
    let manifest = rt.block_on(store.get("bad-shard-2.manifest.json"))?;
    rt.block_on(store.delete("bad-shard-2.manifest.json"))?;
    let line = cli_refused(&restore(&layout))?;
    assert!(
        line.contains("shard 2") && line.contains("no backup named \"bad-shard-2\""),
        "{line}"
    );
    nothing_left();
    // A shard manifest whose key count was altered: refused after the
    // shard was read, nothing left.
    rt.block_on(store.put("bad-shard-2.manifest.json", manifest.clone()))?;
    let mut altered: serde_json::Value = serde_json::from_slice(&manifest)?;
    let keys = altered["keys"]
        .as_u64()
        .ok_or_else(|| anyhow!("no key count in {altered}"))?;
    altered["keys"] = (keys + 1).into();
    rt.block_on(store.put("bad-shard-2.manifest.json", serde_json::to_vec(&altered)?))?;
    let line = cli_refused(&restore(&layout))?;
    assert!(
        line.contains(&format!(
            "holds {keys} keys, but its manifest records {}",
            keys + 1
        )),
        "{line}"
    );
    nothing_left();
    // Deleting one shard of a cluster backup alone is refused.
    rt.block_on(store.put("bad-shard-2.manifest.json", manifest))?;
    let line = cli_refused(&with(&store_args, &["backup", "delete", "bad-shard-1"]))?;
    assert!(
        line.contains("is a shard of cluster backup \"bad\""),
        "{line}"
    );
    // And with everything back, it restores.
    cli_ok(&restore(&layout))?;
    for d in &dirs {
        assert!(d.join("nodes.conf").exists() && d.join("dump.rdb").exists());
    }

    // Nodes that nodes.conf names but are not up yet: the first two run
    // alone for longer than cluster-node-timeout (they flag the third
    // failing), then the third starts and the cluster becomes ok.
    let mut start = |i: usize| {
        held.release(picked[i]);
        held.release(picked[3 + i]);
        start_restored(&dirs[i], picked[i], picked[3 + i], &src.keyring, &s3)
    };
    let mut restored = vec![start(0)?, start(1)?];
    std::thread::sleep(Duration::from_secs(8));
    let mut c = restored[0].redis_conn()?;
    let early = text(&mut c, &["CLUSTER", "INFO"])?;
    let nodes = text(&mut c, &["CLUSTER", "NODES"])?;
    eprintln!("two of three up for 8 s:\n{early}\n{nodes}");
    restored.push(start(2)?);
    wait_ok(&picked[..3])?;
    cluster_check(picked[2])?;
    let cm = rt.block_on(rampart_persistence::backup::cluster::manifest(
        &store, "bad",
    ))?;
    for (i, n) in restored.iter().enumerate() {
        let size: u64 = redis::cmd("DBSIZE").query(&mut n.redis_conn()?)?;
        assert_eq!(Some(size), cm.shards[i].keys, "shard {}", i + 1);
    }

    // A shard that fails midway (its name is taken in the store, so its
    // node refuses): one line, and the shard backup already made is
    // deleted; what was there before is left alone.
    rt.block_on(store.put("mid-shard-2.manifest.json", b"{}".to_vec()))?;
    let line = cli_refused(&with(
        &store_args,
        &["backup", "create", "mid", "--cluster", &seed],
    ))?;
    assert!(
        line.contains("shard 2") && line.contains("already exists"),
        "{line}"
    );
    let names = rt.block_on(store.list())?;
    let mid: Vec<&String> = names.iter().filter(|n| n.starts_with("mid")).collect();
    assert_eq!(mid, ["mid-shard-2.manifest.json"], "{names:?}");

    // A slot without a master: refused, nothing written.
    let mut c = src.nodes[0].redis_conn()?;
    let conf = NodesConf::parse(&text(&mut c, &["CLUSTER", "NODES"])?)?;
    let me = conf.myself().ok_or_else(|| anyhow!("no myself line"))?;
    let slot = me.slots[0].start().to_string();
    text(&mut c, &["CLUSTER", "DELSLOTS", &slot])?;
    let line = cli_refused(&with(
        &store_args,
        &["backup", "create", "uncovered", "--cluster", &seed],
    ))?;
    assert!(
        line.contains("not ok") || line.contains(&format!("slot {slot} has no master")),
        "{line}"
    );
    let names = rt.block_on(store.list())?;
    assert!(
        !names.iter().any(|n| n.starts_with("uncovered")),
        "{names:?}"
    );
    Ok(())
}
