//! Cluster mode with `tls-cluster yes`, with real processes: three Rampart
//! primaries made by `redis-cli --tls --cluster create`, checked and
//! resharded over TLS (MIGRATE over TLS), clients over TLS sent to TLS
//! ports and plaintext clients to plaintext ports; a mixed cluster of
//! Rampart and redis-server 7.0 nodes whose bus runs over TLS both ways,
//! resharded both ways, with CLUSTER NODES/SLOTS/SHARDS port fields
//! compared between the two implementations; and a plaintext (or
//! certificate-less, or garbage-speaking) peer on a TLS bus port, dropped
//! with one log line while the node serves on.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::ops::Deref;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rampart_tests::pki::Pki;
use rampart_tests::wait_for;
use rampart_tests::{
    free_port, require_tool, run_with_timeout, shared_keyring, Rampart, RedisOracle, ServerProcess,
};

/// How long a cluster may take to agree (a debug build on two busy cores).
const CONVERGE: Duration = Duration::from_secs(60);

/// A cluster node: a plain `port` (for the harness and plaintext
/// clients), a `tls-port`, and a bus on `bus` that speaks TLS.
struct Node {
    srv: Box<dyn Deref<Target = ServerProcess>>,
    tls: u16,
    bus: u16,
}

impl Deref for Node {
    type Target = ServerProcess;
    fn deref(&self) -> &ServerProcess {
        &self.srv
    }
}

impl Node {
    fn tls_addr(&self) -> String {
        format!("127.0.0.1:{}", self.tls)
    }
}

fn node_args(pki: &Pki, tls: u16, bus: u16) -> Vec<String> {
    let extra = ["--tls-cluster", "yes", "--tls-replication", "yes"];
    let mut v = rampart_tests::cluster::node_args(bus, "5000", &extra);
    v.extend(pki.server_args(tls));
    v
}

/// A Rampart node. The nodes of a test share one keyring (kept beside the
/// certificates), so a replica can open its master's encrypted full sync.
fn start_rampart(pki: &Pki) -> Result<Node> {
    let (tls, bus) = (free_port()?, free_port()?);
    let mut args = node_args(pki, tls, bus);
    args.extend(["--kms-key-file".into(), shared_keyring(pki.dir())]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(Node {
        srv: Box::new(Rampart::start(&args)?),
        tls,
        bus,
    })
}

fn start_redis(pki: &Pki) -> Result<Node> {
    let (tls, bus) = (free_port()?, free_port()?);
    let args = node_args(pki, tls, bus);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok(Node {
        srv: Box::new(RedisOracle::start_with(&args)?),
        tls,
        bus,
    })
}

fn text(reply: &[u8]) -> String {
    let s = String::from_utf8_lossy(reply).into_owned();
    // A bulk or verbatim reply: drop the header line.
    match s.split_once("\r\n") {
        Some((head, rest)) if head.starts_with('$') || head.starts_with('=') => {
            rest.trim_end_matches("\r\n").to_string()
        }
        _ => s,
    }
}

/// A command over the plain port.
fn cmd(s: &ServerProcess, args: &[&str]) -> Result<String> {
    Ok(text(&s.conn()?.cmd(args)?))
}

/// `redis-cli` with `args` against 127.0.0.1:`port`, over TLS with the
/// client certificate when `tls`; its stdout.
fn cli(pki: &Pki, port: u16, tls: bool, args: &[&str]) -> Result<String> {
    let mut c = Command::new(require_tool("redis-cli")?);
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if tls {
        c.args(pki.cli_args());
    }
    c.args(args);
    let out = run_with_timeout(&mut c, CONVERGE)?;
    if !out.status.success() {
        bail!(
            "redis-cli {args:?} failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `redis-cli --tls --cluster <args>`, failing unless `ok` is in its
/// output.
fn cluster_cli(pki: &Pki, args: &[String], ok: &str) -> Result<String> {
    let mut c = Command::new(require_tool("redis-cli")?);
    c.args(pki.cli_args()).arg("--cluster").args(args);
    let out = run_with_timeout(&mut c, CONVERGE)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || !stdout.contains(ok) {
        bail!(
            "redis-cli --cluster {args:?} failed: {}\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(stdout)
}

/// `redis-cli --tls --cluster create` of `nodes` by their TLS ports.
fn cluster_create(pki: &Pki, nodes: &[&Node]) -> Result<()> {
    let mut args = vec!["create".to_string()];
    args.extend(nodes.iter().map(|n| n.tls_addr()));
    args.push("--cluster-yes".into());
    cluster_cli(pki, &args, "[OK] All 16384 slots covered.")?;
    Ok(())
}

/// `redis-cli --tls --cluster check` through `n`: clean.
fn assert_check_clean(pki: &Pki, n: &Node) -> Result<()> {
    let out = cluster_cli(
        pki,
        &["check".into(), n.tls_addr()],
        "[OK] All 16384 slots covered.",
    )?;
    assert!(
        out.contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(
        !out.contains("[ERR]") && !out.contains("[WARNING]"),
        "{out}"
    );
    Ok(())
}

/// CLUSTER NODES as `id -> (ip:port@cport, role, link, slots)`, without
/// times and the myself flag, which differ between observers.
fn topology(nodes_text: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let mut m = BTreeMap::new();
    for line in nodes_text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 8 {
            bail!("short CLUSTER NODES line {line:?}");
        }
        let role = f[2].replace("myself,", "");
        m.insert(
            f[0].to_string(),
            vec![f[1].to_string(), role, f[7].to_string(), f[8..].join(" ")],
        );
    }
    Ok(m)
}

/// Every node in state ok, seeing every other connected and agreeing on
/// the whole table.
fn wait_agreed(nodes: &[&Node]) -> Result<()> {
    wait_for("the TLS cluster to agree", CONVERGE, || {
        let mut first = None;
        for n in nodes {
            if !cmd(n, &["CLUSTER", "INFO"])?.contains("cluster_state:ok") {
                return Ok(false);
            }
            let t = topology(&cmd(n, &["CLUSTER", "NODES"])?)?;
            if t.len() != nodes.len() || t.values().any(|v| v[2] != "connected") {
                return Ok(false);
            }
            match &first {
                None => first = Some(t),
                Some(f) if *f != t => return Ok(false),
                Some(_) => {}
            }
        }
        Ok(true)
    })
}

fn node_id(n: &Node) -> Result<String> {
    cmd(n, &["CLUSTER", "MYID"])
}

/// The node (index into `nodes`) serving `slot`, by CLUSTER NODES of
/// `nodes[0]`.
fn owner_of(nodes: &[&Node], slot: u16) -> Result<usize> {
    let ids: Vec<String> = nodes.iter().map(|n| node_id(n)).collect::<Result<_>>()?;
    let t = topology(&cmd(nodes[0], &["CLUSTER", "NODES"])?)?;
    for (id, v) in &t {
        for r in v[3]
            .split(' ')
            .filter(|r| !r.is_empty() && !r.starts_with('['))
        {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            let (a, b): (u16, u16) = (a.parse()?, b.parse()?);
            if (a..=b).contains(&slot) {
                return ids
                    .iter()
                    .position(|i| i == id)
                    .context("owner is not one of ours");
            }
        }
    }
    bail!("slot {slot} unowned")
}

fn slot_of(key: &str) -> u16 {
    rampart_cluster::key_hash_slot(key.as_bytes())
}

/// A plaintext client of the TLS cluster: follows `-MOVED`/`-ASK` (which
/// must name plaintext ports, as Redis sends plaintext clients) from
/// `seed`. The reply to `args`.
fn plain_cluster_cmd(seed: u16, args: &[&str]) -> Result<String> {
    let mut port = seed;
    let mut asking = false;
    for _ in 0..20 {
        let mut c = rampart_tests::RawConn::connect(port)?;
        if asking {
            c.cmd(&["ASKING"])?;
        }
        let reply = text(&c.cmd(args)?);
        let redirect = reply
            .strip_prefix("-MOVED ")
            .map(|r| (r, false))
            .or_else(|| reply.strip_prefix("-ASK ").map(|r| (r, true)));
        match redirect {
            Some((r, ask)) => {
                let addr = r.trim().rsplit(' ').next().unwrap_or_default();
                port = addr.rsplit(':').next().unwrap_or_default().parse()?;
                asking = ask;
            }
            None if reply.starts_with("-TRYAGAIN") || reply.starts_with("-CLUSTERDOWN") => {
                std::thread::sleep(Duration::from_millis(50));
                port = seed;
                asking = false;
            }
            None => return Ok(reply),
        }
    }
    bail!("{args:?}: too many redirections")
}

/// Writes `prefix{i}` = `v{i}` for i in 0..n through plaintext clients.
fn write_keys(seed: u16, prefix: &str, n: usize) -> Result<()> {
    for i in 0..n {
        let (k, v) = (format!("{prefix}{i}"), format!("v{i}"));
        let r = plain_cluster_cmd(seed, &["SET", &k, &v])?;
        if r != "+OK\r\n" {
            bail!("SET {k} answered {r:?}");
        }
    }
    Ok(())
}

fn dbsize(n: &Node) -> Result<usize> {
    Ok(cmd(n, &["DBSIZE"])?
        .trim_start_matches(':')
        .trim()
        .parse()?)
}

/// Every key `prefix{i}` reads back (through plaintext clients), and the
/// nodes hold exactly `total` keys between them.
fn assert_keys_intact(nodes: &[&Node], prefix: &str, n: usize, total: usize) -> Result<()> {
    for i in 0..n {
        let k = format!("{prefix}{i}");
        let r = plain_cluster_cmd(nodes[0].port(), &["GET", &k])?;
        assert_eq!(r, format!("v{i}"), "{k}");
    }
    let mut held = 0;
    for node in nodes {
        held += dbsize(node)?;
    }
    assert_eq!(held, total, "keys held by the nodes together");
    Ok(())
}

fn reshard(pki: &Pki, via: &Node, from: &str, to: &str, slots: usize) -> Result<()> {
    cluster_cli(
        pki,
        &[
            "reshard".into(),
            via.tls_addr(),
            "--cluster-from".into(),
            from.into(),
            "--cluster-to".into(),
            to.into(),
            "--cluster-slots".into(),
            slots.to_string(),
            "--cluster-yes".into(),
        ],
        "Moving slot",
    )?;
    Ok(())
}

#[test]
fn rampart_tls_cluster_create_check_redirect_and_reshard() -> Result<()> {
    let pki = Pki::new()?;
    let nodes = [
        start_rampart(&pki)?,
        start_rampart(&pki)?,
        start_rampart(&pki)?,
    ];
    let refs: Vec<&Node> = nodes.iter().collect();
    cluster_create(&pki, &refs)?;
    wait_agreed(&refs)?;
    assert_check_clean(&pki, &nodes[0])?;

    // CLUSTER NODES: TLS ports to a TLS client, plaintext ones to a
    // plaintext client, the TLS bus port either way.
    let over_tls = topology(&cli(&pki, nodes[1].tls, true, &["CLUSTER", "NODES"])?)?;
    let plain = topology(&cmd(&nodes[1], &["CLUSTER", "NODES"])?)?;
    for n in &nodes {
        let id = node_id(n)?;
        assert_eq!(
            over_tls[&id][0],
            format!("127.0.0.1:{}@{}", n.tls, n.bus),
            "{over_tls:?}"
        );
        assert_eq!(
            plain[&id][0],
            format!("127.0.0.1:{}@{}", n.port(), n.bus),
            "{plain:?}"
        );
    }

    // MOVED names the owner's TLS port to a TLS client, its plaintext
    // port to a plaintext one.
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| owner_of(&refs, slot_of(k)).is_ok_and(|o| o == 1))
        .context("a key of node 1")?;
    let slot = slot_of(&key);
    let moved_tls = cli(&pki, nodes[0].tls, true, &["GET", &key])?;
    assert!(
        moved_tls.contains(&format!("MOVED {slot} 127.0.0.1:{}", nodes[1].tls)),
        "{moved_tls}"
    );
    let moved_plain = cmd(&nodes[0], &["GET", &key])?;
    assert_eq!(
        moved_plain,
        format!("-MOVED {slot} 127.0.0.1:{}\r\n", nodes[1].port())
    );

    // redis-cli -c over TLS follows MOVED to TLS ports: written through
    // one node, read through another.
    for i in 0..20 {
        let k = format!("tls{i}");
        let out = cli(
            &pki,
            nodes[0].tls,
            true,
            &["-c", "SET", &k, &format!("v{i}")],
        )?;
        assert_eq!(out.trim(), "OK", "SET {k}");
    }
    for i in 0..20 {
        let k = format!("tls{i}");
        let out = cli(&pki, nodes[2].tls, true, &["-c", "GET", &k])?;
        assert_eq!(out.trim(), format!("v{i}"), "GET {k}");
    }

    // Resharding over TLS: redis-cli drives it through the TLS ports and
    // the nodes MIGRATE to each other's TLS ports.
    write_keys(nodes[0].port(), "key", 1000)?;
    let before = dbsize(&nodes[1])?;
    let (id0, id1) = (node_id(&nodes[0])?, node_id(&nodes[1])?);
    reshard(&pki, &nodes[0], &id0, &id1, 500)?;
    wait_agreed(&refs)?;
    assert_check_clean(&pki, &nodes[0])?;
    assert!(dbsize(&nodes[1])? > before, "no key migrated");
    // The 20 keys written with redis-cli -c are there too.
    assert_keys_intact(&refs, "key", 1000, 1020)?;
    Ok(())
}

/// CLUSTER SHARDS through redis-cli --json, as `id -> (port, tls-port)`
/// (absent fields as 0).
fn shard_ports(pki: &Pki, n: &Node, tls: bool) -> Result<BTreeMap<String, (u64, u64)>> {
    let port = if tls { n.tls } else { n.port() };
    let out = cli(pki, port, tls, &["--json", "CLUSTER", "SHARDS"])?;
    let v: serde_json::Value = serde_json::from_str(&out).with_context(|| out.clone())?;
    let mut m = BTreeMap::new();
    for shard in v.as_array().context("SHARDS is an array")? {
        for node in shard["nodes"].as_array().context("nodes")? {
            let id = node["id"].as_str().context("id")?.to_string();
            let p = node.get("port").and_then(|p| p.as_u64()).unwrap_or(0);
            let t = node.get("tls-port").and_then(|p| p.as_u64()).unwrap_or(0);
            m.insert(id, (p, t));
        }
    }
    Ok(m)
}

/// CLUSTER SLOTS through redis-cli --json, as `(start, end) -> [(ip, port, id)]`.
fn slot_ports(pki: &Pki, n: &Node, tls: bool) -> Result<BTreeMap<(u64, u64), Vec<String>>> {
    let port = if tls { n.tls } else { n.port() };
    let out = cli(pki, port, tls, &["--json", "CLUSTER", "SLOTS"])?;
    let v: serde_json::Value = serde_json::from_str(&out).with_context(|| out.clone())?;
    let mut m = BTreeMap::new();
    for range in v.as_array().context("SLOTS is an array")? {
        let r = range.as_array().context("range")?;
        let (a, b) = (
            r[0].as_u64().context("start")?,
            r[1].as_u64().context("end")?,
        );
        let nodes = r[2..]
            .iter()
            .map(|n| format!("{}:{}:{}", n[0], n[1], n[2]))
            .collect();
        m.insert((a, b), nodes);
    }
    Ok(m)
}

#[test]
fn mixed_tls_cluster_with_redis_server_agrees_and_migrates_both_ways() -> Result<()> {
    let pki = Pki::new()?;
    let nodes = [
        start_rampart(&pki)?,
        start_redis(&pki)?,
        start_rampart(&pki)?,
    ];
    let refs: Vec<&Node> = nodes.iter().collect();
    // Created through the redis-server node: its MEETs open TLS bus
    // links to the Rampart nodes, and theirs come back.
    cluster_create(&pki, &[&nodes[1], &nodes[0], &nodes[2]])?;
    wait_agreed(&refs)?;
    assert_check_clean(&pki, &nodes[0])?;
    assert_check_clean(&pki, &nodes[1])?;

    // The port fields, Rampart's and redis-server's, to a plaintext and
    // to a TLS client. redis-server learns other nodes' plaintext ports
    // from gossip only: wait until it has them.
    let (rampart, redis) = (&nodes[0], &nodes[1]);
    let mut want = BTreeMap::new();
    for n in &nodes {
        want.insert(node_id(n)?, (n.port() as u64, n.tls as u64));
    }
    for tls in [false, true] {
        wait_for("SHARDS port fields on both", CONVERGE, || {
            Ok(shard_ports(&pki, rampart, tls)? == want && shard_ports(&pki, redis, tls)? == want)
        })?;
        let slots = slot_ports(&pki, rampart, tls)?;
        assert_eq!(
            slots,
            slot_ports(&pki, redis, tls)?,
            "CLUSTER SLOTS, tls {tls}"
        );
        for n in &nodes {
            let p = if tls { n.tls } else { n.port() };
            let id = node_id(n)?;
            assert!(
                slots
                    .values()
                    .flatten()
                    .any(|e| *e == format!("\"127.0.0.1\":{p}:\"{id}\"")),
                "{slots:?} lacks {id} at port {p}"
            );
        }
        let nodes_of = |n: &Node| -> Result<BTreeMap<String, String>> {
            let t = if tls {
                cli(&pki, n.tls, true, &["CLUSTER", "NODES"])?
            } else {
                cmd(n, &["CLUSTER", "NODES"])?
            };
            Ok(topology(&t)?
                .into_iter()
                .map(|(id, v)| (id, v[0].clone()))
                .collect())
        };
        let ours = nodes_of(rampart)?;
        assert_eq!(ours, nodes_of(redis)?, "CLUSTER NODES addresses, tls {tls}");
        for n in &nodes {
            let p = if tls { n.tls } else { n.port() };
            assert_eq!(ours[&node_id(n)?], format!("127.0.0.1:{p}@{}", n.bus));
        }
    }

    // MIGRATE over TLS both ways: redis-server → Rampart, then
    // Rampart → redis-server.
    write_keys(nodes[0].port(), "mixed", 1000)?;
    let (rid, xid, r2id) = (
        node_id(&nodes[0])?,
        node_id(&nodes[1])?,
        node_id(&nodes[2])?,
    );
    for (from, to) in [(&xid, &rid), (&r2id, &xid)] {
        let before: Vec<usize> = refs.iter().map(|n| dbsize(n)).collect::<Result<_>>()?;
        reshard(&pki, &nodes[0], from, to, 700)?;
        wait_agreed(&refs)?;
        assert_check_clean(&pki, &nodes[0])?;
        let to_idx = refs
            .iter()
            .position(|n| node_id(n).is_ok_and(|i| i == *to))
            .context("target")?;
        assert!(
            dbsize(refs[to_idx])? > before[to_idx],
            "no key migrated to {}",
            refs[to_idx].name()
        );
    }
    assert_keys_intact(&refs, "mixed", 1000, 1000)?;
    Ok(())
}

/// A rustls client session to 127.0.0.1:`port`, presenting the client
/// certificate when `cert`.
fn tls_session(
    pki: &Pki,
    port: u16,
    cert: bool,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.path("ca.crt"))? {
        roots.add(c?)?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = if cert {
        let certs = CertificateDer::pem_file_iter(pki.path("client.crt"))?
            .collect::<Result<Vec<_>, _>>()?;
        builder
            .with_client_auth_cert(certs, PrivateKeyDer::from_pem_file(pki.path("client.key"))?)?
    } else {
        builder.with_no_client_auth()
    };
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost")?)?;
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// Reads until the peer closes (or errs): true when it did within 10 s.
fn closed(s: &mut impl Read) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
    false
}

fn log_lines(n: &Node, needle: &str) -> usize {
    n.log().lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn bad_peers_on_the_tls_bus_port_are_dropped_with_one_log_line() -> Result<()> {
    let pki = Pki::new()?;
    let a = start_rampart(&pki)?;
    let refused = "Error accepting cluster node connection";
    let bad = "Bad message received on the cluster bus";

    // Plaintext: a cluster bus header as a plaintext node would send it.
    let mut plain = TcpStream::connect(("127.0.0.1", a.bus))?;
    plain.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut ping = b"RCmb".to_vec();
    ping.resize(2256, 0);
    plain.write_all(&ping)?;
    assert!(closed(&mut plain), "plaintext bus link left open");
    wait_for("the refused link's log line", CONVERGE, || {
        Ok(log_lines(&a, refused) == 1)
    })?;

    // TLS without a client certificate: the bus always asks for one.
    if let Ok(mut s) = tls_session(&pki, a.bus, false) {
        let _ = s.write_all(&ping);
        let _ = s.flush();
        assert!(closed(&mut s), "certificate-less bus link left open");
    }
    wait_for("the second refused link's log line", CONVERGE, || {
        Ok(log_lines(&a, refused) == 2)
    })?;

    // A good handshake, then garbage instead of bus messages.
    let mut s = tls_session(&pki, a.bus, true)?;
    s.write_all(b"this is not a cluster bus message at all\r\n")?;
    s.flush()?;
    assert!(closed(&mut s), "garbage bus link left open");
    wait_for("the garbage link's log line", CONVERGE, || {
        Ok(log_lines(&a, bad) == 1)
    })?;
    assert_eq!(log_lines(&a, refused), 2, "{}", a.log());

    // The node serves on, and its TLS bus still takes a real node.
    assert_eq!(cmd(&a, &["PING"])?, "+PONG\r\n");
    let b = start_rampart(&pki)?;
    let meet = cmd(
        &b,
        &[
            "CLUSTER",
            "MEET",
            "127.0.0.1",
            &a.tls.to_string(),
            &a.bus.to_string(),
        ],
    )?;
    assert_eq!(meet, "+OK\r\n");
    wait_for("the two nodes to know each other", CONVERGE, || {
        Ok([&a, &b].iter().all(|n| {
            topology(&cmd(n, &["CLUSTER", "NODES"]).unwrap_or_default()).is_ok_and(|t| {
                t.len() == 2
                    && t.values()
                        .all(|v| v[2] == "connected" && !v[1].contains("handshake"))
            })
        }))
    })?;
    assert_eq!(log_lines(&a, refused), 2, "{}", a.log());
    assert_eq!(log_lines(&a, bad), 1, "{}", a.log());
    Ok(())
}

#[test]
fn a_cluster_replica_follows_its_master_over_tls() -> Result<()> {
    let pki = Pki::new()?;
    let nodes = [
        start_rampart(&pki)?,
        start_rampart(&pki)?,
        start_rampart(&pki)?,
    ];
    let refs: Vec<&Node> = nodes.iter().collect();
    cluster_create(&pki, &refs)?;
    wait_agreed(&refs)?;
    let replica = start_rampart(&pki)?;
    let meet = cmd(
        &replica,
        &[
            "CLUSTER",
            "MEET",
            "127.0.0.1",
            &nodes[0].tls.to_string(),
            &nodes[0].bus.to_string(),
        ],
    )?;
    assert_eq!(meet, "+OK\r\n");
    let all: Vec<&Node> = nodes.iter().chain([&replica]).collect();
    wait_for("the new node to be known", CONVERGE, || {
        Ok(topology(&cmd(&replica, &["CLUSTER", "NODES"])?)?.len() == 4)
    })?;
    let id0 = node_id(&nodes[0])?;
    wait_for("CLUSTER REPLICATE", CONVERGE, || {
        Ok(cmd(&replica, &["CLUSTER", "REPLICATE", &id0])? == "+OK\r\n")
    })?;
    wait_agreed(&all)?;
    // tls-replication: the link to the master is TLS, to its TLS port
    // (the port the cluster announces).
    wait_for("the replication link", CONVERGE, || {
        let info = cmd(&replica, &["INFO", "replication"])?;
        Ok(info.contains("master_link_status:up")
            && info.contains(&format!("master_port:{}", nodes[0].tls)))
    })
    .with_context(|| {
        format!(
            "{:?}\nreplica's log:\n{}\nmaster's log:\n{}",
            cmd(&replica, &["INFO", "replication"]),
            replica.log(),
            nodes[0].log()
        )
    })?;
    let key = (0..)
        .map(|i| format!("r{i}"))
        .find(|k| owner_of(&refs, slot_of(k)).is_ok_and(|o| o == 0))
        .context("a key of node 0")?;
    assert_eq!(cmd(&nodes[0], &["SET", &key, "over-tls"])?, "+OK\r\n");
    wait_for("the write on the replica", CONVERGE, || {
        let mut c = replica.conn()?;
        c.cmd(&["READONLY"])?;
        Ok(text(&c.cmd(&["GET", &key])?) == "over-tls")
    })?;
    // CLUSTER SHARDS on the replica lists it with both ports.
    let shards = shard_ports(&pki, &replica, true)?;
    assert_eq!(
        shards.get(&node_id(&replica)?),
        Some(&(replica.port() as u64, replica.tls as u64)),
        "{shards:?}"
    );
    Ok(())
}
