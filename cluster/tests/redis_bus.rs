//! The codec against real redis-server 7.0 nodes: three nodes whose bus
//! traffic all passes through recording proxies go through MEET, slot
//! assignment, a slot migration that provokes an UPDATE, PUBLISH/SPUBLISH, a
//! manual failover and a FAIL; every message captured must decode, re-encode
//! byte for byte, and say what CLUSTER NODES / MYID / INFO say. Also:
//! key_hash_slot against CLUSTER KEYSLOT, and the nodes.conf that
//! redis-server writes against our parser and writer.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{wait_until, BusProxy, Captured, DropRule, Reply, Server};
use rampart_cluster::msg::{
    decode, encode, msg_type, node_flags, Body, Msg, PingExt, MFLAG0_FORCEACK,
};
use rampart_cluster::nodes_conf::{Direction, NodesConf};
use rampart_cluster::slot::{key_hash_slot, SlotSet};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(30);
const HOSTNAME0: &str = "node0.rampart.test";

struct Node {
    server: Server,
    proxy: BusProxy,
    id: String,
}

fn start_node(extra: &[&str]) -> Node {
    let port = common::free_port();
    let cport = common::free_port();
    let proxy = BusProxy::start(cport);
    let mut args: Vec<String> = vec![
        "--cluster-announce-bus-port".into(),
        proxy.port.to_string(),
        "--cluster-node-timeout".into(),
        "2000".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = Server::start_on(port, cport, &args);
    let id = server.conn().cmd(&["CLUSTER", "MYID"]).text();
    proxy.set_node_id(&id);
    Node { server, proxy, id }
}

fn cluster_nodes(n: &Node) -> NodesConf {
    let text = n.server.conn().cmd(&["CLUSTER", "NODES"]).text();
    // CLUSTER NODES is nodes.conf without the vars line: our parser reads it.
    NodesConf::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn info_field(n: &Node, section: &str, field: &str) -> String {
    let text = if section == "cluster" {
        n.server.conn().cmd(&["CLUSTER", "INFO"]).text()
    } else {
        n.server.conn().cmd(&["INFO", section]).text()
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {text}"))
        .trim()
        .to_string()
}

fn slot_set(ranges: &[std::ops::RangeInclusive<u16>]) -> SlotSet {
    let mut s = SlotSet::new();
    for r in ranges {
        assert!(s.insert_range(r.clone()));
    }
    s
}

/// What a node's own header should carry, from its own CLUSTER NODES/INFO.
#[derive(Debug, PartialEq)]
struct Expected {
    current_epoch: u64,
    config_epoch: u64,
    slots: SlotSet,
    slaveof: Option<String>,
    role: u16,
}

fn expected(n: &Node) -> Expected {
    let view = cluster_nodes(n);
    let me = view.myself().unwrap().clone();
    let role = me.flags & (node_flags::MASTER | node_flags::SLAVE);
    let slots = match &me.master {
        // A replica sends its master's slots and config epoch.
        Some(m) => slot_set(&view.nodes.iter().find(|x| &x.id == m).unwrap().slots),
        None => slot_set(&me.slots),
    };
    Expected {
        current_epoch: info_field(n, "cluster", "cluster_current_epoch")
            .parse()
            .unwrap(),
        config_epoch: me.config_epoch,
        slots,
        slaveof: me.master.clone(),
        role,
    }
}

/// Every alive node sees every node of `ids` with a settled state and the
/// same owner and epoch for each of them.
fn views_agree(nodes: &[&Node]) -> bool {
    let views: Vec<NodesConf> = nodes.iter().map(|n| cluster_nodes(n)).collect();
    let summary = |v: &NodesConf| {
        let mut m: BTreeMap<String, (u16, Option<String>, u64, Vec<_>)> = BTreeMap::new();
        for l in &v.nodes {
            if l.flags & (node_flags::HANDSHAKE | node_flags::NOADDR | node_flags::PFAIL) != 0 {
                return None;
            }
            let role = l.flags & (node_flags::MASTER | node_flags::SLAVE | node_flags::FAIL);
            m.insert(
                l.id.clone(),
                (role, l.master.clone(), l.config_epoch, l.slots.clone()),
            );
        }
        Some(m)
    };
    let first = summary(&views[0]);
    first.is_some() && views.iter().all(|v| summary(v) == first)
}

fn check_nodes_conf_roundtrip(n: &Node) -> NodesConf {
    n.server.conn().cmd(&["CLUSTER", "SAVECONFIG"]).ok();
    let path = n.server.dir.path().join("nodes.conf");
    let text = std::fs::read_to_string(&path).unwrap();
    let conf = NodesConf::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(
        conf.to_string(),
        text,
        "nodes.conf must re-serialize as written"
    );
    assert_eq!(conf.myself().unwrap().id, n.id);
    // Our atomic writer produces a file redis-server's reader would see as
    // the same one (checked through our loader).
    let copy = n.server.dir.path().join("copy.conf");
    rampart_cluster::nodes_conf::save(&copy, &conf).unwrap();
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), text);
    conf
}

struct Seen {
    proxy: usize,
    cap: Captured,
    msg: Msg,
}

fn decode_all(nodes: &[Node]) -> Vec<Seen> {
    let mut all = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let errors = n.proxy.errors.lock().unwrap().clone();
        assert!(errors.is_empty(), "proxy {i}: {errors:?}");
        for cap in n.proxy.messages() {
            let msg = decode(&cap.bytes).unwrap_or_else(|e| {
                panic!(
                    "captured message does not decode: {e}: {:?}",
                    &cap.bytes[..64]
                )
            });
            assert_eq!(encode(&msg), cap.bytes, "re-encoding differs: {msg:?}");
            all.push(Seen { proxy: i, cap, msg });
        }
    }
    all.sort_by_key(|s| s.cap.at);
    all
}

fn id_bytes(id: &str) -> [u8; 40] {
    id.as_bytes().try_into().unwrap()
}

#[test]
fn bus_messages_of_a_real_cluster_roundtrip_and_match_its_state() {
    let nodes = [
        start_node(&["--cluster-announce-hostname", HOSTNAME0]),
        start_node(&["--cluster-announce-ip", "127.0.0.1"]),
        start_node(&[]),
    ];
    let [n0, n1, n2] = &nodes;
    let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    let (id0, id1, id2) = (&ids[0], &ids[1], &ids[2]);

    // MEET through the proxies' addresses.
    for other in [n1, n2] {
        n0.server
            .conn()
            .cmd(&[
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                &other.server.port.to_string(),
                &other.proxy.port.to_string(),
            ])
            .ok();
    }
    wait_until(WAIT, "all nodes to know each other", || {
        nodes.iter().all(|n| cluster_nodes(n).nodes.len() == 3) && views_agree(&[n0, n1, n2])
    });

    let mut c0 = n0.server.conn();
    let mut c1 = n1.server.conn();
    let mut c2 = n2.server.conn();
    c0.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]).ok();
    c1.cmd(&["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]).ok();
    wait_until(WAIT, "cluster_state:ok", || {
        nodes
            .iter()
            .all(|n| info_field(n, "cluster", "cluster_state") == "ok")
    });
    c2.cmd(&["CLUSTER", "REPLICATE", id0]).ok();
    wait_until(WAIT, "the replica to sync and be seen", || {
        info_field(n2, "replication", "master_link_status") == "up"
            && views_agree(&[n0, n1, n2])
            && cluster_nodes(n1)
                .nodes
                .iter()
                .any(|l| &l.id == id2 && l.master.as_ref() == Some(id0))
    });

    // PUBLISH goes to every node, SPUBLISH to the shard (n0's replica n2).
    assert!(matches!(
        c0.cmd(&["PUBLISH", "news", "hello"]),
        Reply::Int(_)
    ));
    let shard_channel = (0..)
        .map(|i| format!("shard-{i}"))
        .find(|c| key_hash_slot(c.as_bytes()) < 8000)
        .unwrap();
    assert!(matches!(
        c0.cmd(&["SPUBLISH", &shard_channel, "sharded hello"]),
        Reply::Int(_)
    ));

    // A slot half-way through a migration, as nodes.conf records it.
    c1.cmd(&["CLUSTER", "SETSLOT", "9000", "MIGRATING", id0])
        .ok();
    c0.cmd(&["CLUSTER", "SETSLOT", "9000", "IMPORTING", id1])
        .ok();
    let conf0 = check_nodes_conf_roundtrip(n0);
    let conf1 = check_nodes_conf_roundtrip(n1);
    check_nodes_conf_roundtrip(n2);
    let m0 = &conf0.myself().unwrap().migrations;
    assert_eq!(
        (m0[0].slot, m0[0].direction, m0[0].node.as_str()),
        (9000, Direction::Importing, id1.as_str())
    );
    let m1 = &conf1.myself().unwrap().migrations;
    assert_eq!(
        (m1[0].slot, m1[0].direction, m1[0].node.as_str()),
        (9000, Direction::Migrating, id0.as_str())
    );
    assert!(conf1
        .nodes
        .iter()
        .any(|l| &l.id == id0 && l.hostname.as_deref() == Some(HOSTNAME0)));

    // n0 takes the slot (and a new config epoch) while n1 cannot hear n0's
    // pings: n1 keeps claiming 9000 with its older epoch, so n0 (or its
    // replica) answers it with an UPDATE.
    let rule = DropRule {
        from: id_bytes(id0),
        to: id_bytes(id1),
    };
    for n in &nodes {
        n.proxy.set_drop(Some(rule));
    }
    c0.cmd(&["CLUSTER", "SETSLOT", "9000", "NODE", id0]).ok();
    wait_until(WAIT, "an UPDATE to n1", || {
        n1.proxy.messages().iter().any(|c| {
            c.to_node && u16::from_be_bytes([c.bytes[12], c.bytes[13]]) == msg_type::UPDATE
        })
    });
    for n in &nodes {
        n.proxy.set_drop(None);
    }
    c1.cmd(&["CLUSTER", "SETSLOT", "9000", "NODE", id0]).ok();
    wait_until(WAIT, "slot 9000 to be n0's everywhere", || {
        views_agree(&[n0, n1, n2])
            && cluster_nodes(n1)
                .nodes
                .iter()
                .any(|l| &l.id == id0 && l.slots == vec![0..=8191, 9000..=9000])
    });

    // Manual failover: MFSTART, FAILOVER_AUTH_REQUEST, FAILOVER_AUTH_ACK.
    c2.cmd(&["CLUSTER", "FAILOVER"]).ok();
    wait_until(WAIT, "n2 to become master and everyone to agree", || {
        let v = cluster_nodes(n0);
        v.nodes
            .iter()
            .any(|l| &l.id == id0 && l.master.as_ref() == Some(id2))
            && views_agree(&[n0, n1, n2])
    });

    // A quiet window: headers sent in it must say what the nodes report.
    let mut checked = false;
    for _attempt in 0..5 {
        let before: Vec<Expected> = nodes.iter().map(expected).collect();
        let t1 = Instant::now();
        std::thread::sleep(Duration::from_millis(2500));
        let t2 = Instant::now();
        let after: Vec<Expected> = nodes.iter().map(expected).collect();
        if before != after {
            continue; // something still moved: try another window
        }
        let seen = decode_all(&nodes);
        for (k, exp) in after.iter().enumerate() {
            let in_window: Vec<&Seen> = seen
                .iter()
                .filter(|s| s.cap.at > t1 && s.cap.at < t2)
                .filter(|s| s.msg.header.sender == id_bytes(&ids[k]))
                .filter(|s| s.msg.body.ping().is_some())
                .collect();
            assert!(!in_window.is_empty(), "no ping from node {k} in 2.5 s");
            for s in in_window {
                let h = &s.msg.header;
                assert_eq!(h.current_epoch, exp.current_epoch, "node {k} currentEpoch");
                assert_eq!(h.config_epoch, exp.config_epoch, "node {k} configEpoch");
                assert_eq!(h.myslots, exp.slots, "node {k} slots");
                assert_eq!(
                    h.slaveof().map(|s| String::from_utf8(s.to_vec()).unwrap()),
                    exp.slaveof,
                    "node {k} master"
                );
                assert_eq!(h.flags & (node_flags::MASTER | node_flags::SLAVE), exp.role);
                assert_ne!(h.flags & node_flags::MYSELF, 0);
                assert_eq!(h.state, 0, "cluster ok from node {k}'s view");
            }
        }
        checked = true;
        break;
    }
    assert!(checked, "the cluster never held still for 2.5 s");

    // FAIL: n0 (now a replica) dies; the two masters agree it failed.
    let mut nodes = nodes;
    nodes[0].server.kill();
    let [_, n1, n2] = &nodes;
    wait_until(WAIT, "n0 to be marked fail", || {
        [n1, n2].iter().all(|n| {
            cluster_nodes(n)
                .nodes
                .iter()
                .any(|l| &l.id == id0 && l.flags & node_flags::FAIL != 0)
        })
    });
    wait_until(WAIT, "a FAIL message on the bus", || {
        nodes.iter().any(|n| {
            n.proxy
                .messages()
                .iter()
                .any(|c| u16::from_be_bytes([c.bytes[12], c.bytes[13]]) == msg_type::FAIL)
        })
    });
    // The config a node writes with a failed peer reads back the same too.
    let conf2 = check_nodes_conf_roundtrip(n2);
    assert!(conf2
        .nodes
        .iter()
        .any(|l| &l.id == id0 && l.flags & node_flags::FAIL != 0 && !l.connected));
    check_nodes_conf_roundtrip(n1);

    // Every message: decodes, re-encodes identically, comes from a known
    // node with its ports, in the direction the proxy saw it.
    let seen = decode_all(&nodes);
    let ports: Vec<(u16, u16)> = nodes
        .iter()
        .map(|n| (n.server.port, n.proxy.port))
        .collect();
    let index_of = |name: &[u8; 40]| ids.iter().position(|id| id.as_bytes() == name);
    let mut types = BTreeMap::new();
    let mut provoked_update = false;
    for s in &seen {
        let h = &s.msg.header;
        let k = index_of(&h.sender).unwrap_or_else(|| panic!("unknown sender {:?}", s.msg));
        *types.entry(s.msg.body.msg_type()).or_insert(0) += 1;
        assert_eq!((h.port, h.cport, h.pport), (ports[k].0, ports[k].1, 0));
        assert_eq!(s.cap.to_node, k != s.proxy, "direction of {:?}", s.msg.body);
        let ip: &[u8] = if k == 1 { b"127.0.0.1" } else { b"" };
        assert_eq!(h.myip(), ip);
        match &s.msg.body {
            Body::Ping(p) | Body::Pong(p) | Body::Meet(p) => {
                for g in &p.gossip {
                    let j = index_of(&g.nodename).expect("gossip about a known node");
                    assert_ne!(j, k, "a node does not gossip about itself");
                    assert_eq!((g.port, g.cport), ports[j]);
                    assert_eq!(g.ip(), b"127.0.0.1");
                }
                let want: Vec<PingExt> = if k == 0 {
                    vec![PingExt::Hostname {
                        hostname: HOSTNAME0.as_bytes().to_vec(),
                        unused: 0,
                    }]
                } else {
                    vec![]
                };
                assert_eq!(p.extensions, want);
            }
            Body::Fail { about } => {
                assert_eq!(about, &id_bytes(id0));
                assert_ne!(k, 0);
            }
            Body::Publish { channel, message } => {
                assert_eq!(
                    (channel.as_slice(), message.as_slice()),
                    (&b"news"[..], &b"hello"[..])
                );
                assert_eq!(k, 0);
            }
            Body::PublishShard { channel, message } => {
                assert_eq!(channel, shard_channel.as_bytes());
                assert_eq!(message, b"sharded hello");
                assert_eq!((k, s.proxy), (0, 2), "SPUBLISH goes to the shard's replica");
            }
            Body::Update {
                config_epoch,
                nodename,
                slots,
            } => {
                // Both shards' slots as n0 held them after the migration.
                assert!(slots.contains(9000) && slots.contains(0) && !slots.contains(8192));
                if nodename == &id_bytes(id0) {
                    // n0's new epoch, to a node whose view of n0's slots is
                    // stale: the provoked one goes to n1; n2, n0's replica
                    // then, may advertise its master's old claim as well
                    // and be told too (seen under load).
                    assert!(*config_epoch > conf1.myself().unwrap().config_epoch);
                    assert_ne!(s.proxy, 0, "n0 is not told about itself");
                    provoked_update |= s.proxy == 1;
                } else {
                    // A race the failover may cause: n0 pings with its old
                    // claim before it hears of n2's promotion, and is told.
                    assert_eq!(nodename, &id_bytes(id2), "{:?}", s.msg);
                    assert_eq!(s.proxy, 0, "the UPDATE goes to the stale n0");
                }
            }
            Body::FailoverAuthRequest => {
                assert_eq!(k, 2);
                assert_ne!(h.mflags[0] & MFLAG0_FORCEACK, 0, "manual: FORCEACK");
                assert_eq!(h.slaveof(), Some(&id_bytes(id0)));
            }
            Body::FailoverAuthAck => {
                assert!(k == 0 || k == 1, "votes come from masters");
                assert_eq!(s.proxy, 2, "votes go to the candidate");
            }
            Body::MfStart => {
                assert_eq!((k, s.proxy), (2, 0), "n2 asks its master n0");
            }
            other => panic!("unexpected message {other:?}"),
        }
    }
    for t in [
        msg_type::PING,
        msg_type::PONG,
        msg_type::MEET,
        msg_type::FAIL,
        msg_type::PUBLISH,
        msg_type::PUBLISHSHARD,
        msg_type::FAILOVER_AUTH_REQUEST,
        msg_type::FAILOVER_AUTH_ACK,
        msg_type::UPDATE,
        msg_type::MFSTART,
    ] {
        assert!(
            types.contains_key(&t),
            "no message of type {t} seen: {types:?}"
        );
    }
    assert!(provoked_update, "no UPDATE about n0 reached n1");
    eprintln!("message types seen (type: count): {types:?}");
    if std::env::var_os("RAMPART_WRITE_BUS_FIXTURES").is_some() {
        write_fixtures(&seen);
    }
}

/// Keeps one captured message of each type (a PING with gossip and the
/// hostname extension) in tests/data, for the corruption tests.
fn write_fixtures(seen: &[Seen]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    std::fs::create_dir_all(&dir).unwrap();
    let mut done = std::collections::BTreeSet::new();
    for s in seen {
        let t = s.msg.body.msg_type();
        let rich_ping = s
            .msg
            .body
            .ping()
            .is_some_and(|p| !p.gossip.is_empty() && !p.extensions.is_empty());
        let wants_rich = t == msg_type::PING || t == msg_type::PONG;
        if (wants_rich && !rich_ping) || !done.insert(t) {
            continue;
        }
        std::fs::write(dir.join(format!("type{t:02}.bin")), &s.cap.bytes).unwrap();
    }
}

#[test]
fn key_hash_slot_matches_cluster_keyslot() {
    let server = Server::start_cluster_node(&[]);
    let mut c = server.conn();
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let mut keys: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"{}".to_vec(),
        b"{}{a}".to_vec(),
        b"{{a}}".to_vec(),
        b"a{b}c{d}".to_vec(),
        b"}{x}".to_vec(),
        b"{\x00}".to_vec(),
        b"\xff\xfe{\x80\x81}".to_vec(),
    ];
    let alphabet = b"ab{}x\x00\xff";
    for i in 0..3000 {
        let len = rng.random_range(0..24);
        let key: Vec<u8> = if i % 2 == 0 {
            (0..len).map(|_| rng.random()).collect()
        } else {
            // Mostly braces: the tag rules get exercised hard.
            (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect()
        };
        keys.push(key);
    }
    // Pipelined: all commands out, then all replies.
    for k in &keys {
        c.send(&[b"CLUSTER", b"KEYSLOT", k]);
    }
    for k in &keys {
        let redis = c.read().int();
        assert_eq!(
            i64::from(key_hash_slot(k)),
            redis,
            "slot of {:?}",
            String::from_utf8_lossy(k)
        );
    }
}

#[test]
fn a_fresh_nodes_conf_from_redis_roundtrips() {
    let server =
        Server::start_cluster_node(&["--cluster-announce-hostname".into(), "fresh.example".into()]);
    let mut c = server.conn();
    c.cmd(&["CLUSTER", "ADDSLOTS", "0", "5", "7", "16383"]).ok();
    c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "100", "200", "300", "300"])
        .ok();
    c.cmd(&["CLUSTER", "SAVECONFIG"]).ok();
    let text = std::fs::read_to_string(server.dir.path().join("nodes.conf")).unwrap();
    let conf = NodesConf::parse(&text).unwrap();
    assert_eq!(conf.to_string(), text);
    let me = conf.myself().unwrap();
    assert_eq!(me.id, c.cmd(&["CLUSTER", "MYID"]).text());
    assert_eq!(me.hostname.as_deref(), Some("fresh.example"));
    assert_eq!((me.port, me.cport), (server.port, server.cport));
    assert_eq!(
        me.slots,
        vec![0..=0, 5..=5, 7..=7, 100..=200, 300..=300, 16383..=16383]
    );
}

/// Messages we build from scratch are ones redis-server accepts: a MEET
/// makes it add us, our PONG (with a hostname extension) completes its
/// handshake under our name, and our PUBLISH reaches its subscribers.
#[test]
fn redis_server_accepts_messages_we_encode() {
    use rampart_cluster::msg::{Framer, Header, PingBody};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    let server = Server::start_cluster_node(&[]);
    let redis_id = server.conn().cmd(&["CLUSTER", "MYID"]).text();
    let our_id = "0123456789abcdef0123456789abcdef01234567";
    let our_host = "rampart-codec.test";
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let our_cport = listener.local_addr().unwrap().port();
    let our_port = 6999;
    let header = || {
        let mut h = Header::new(id_bytes(our_id));
        h.port = our_port;
        h.cport = our_cport;
        h.flags = node_flags::MASTER;
        h
    };
    let ping_body = || PingBody {
        gossip: vec![],
        extensions: vec![PingExt::Hostname {
            hostname: our_host.as_bytes().to_vec(),
            unused: 0,
        }],
    };
    // Reads one whole message from a bus connection (bounded by its timeout).
    let read_msg = |s: &mut TcpStream, framer: &mut Framer| -> Msg {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(frame) = framer.next_frame().unwrap() {
                return decode(&frame).unwrap();
            }
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "redis closed the bus connection");
            framer.push(&buf[..n]);
        }
    };

    // MEET on a connection of our own to its bus port: it answers PONG.
    let mut out = TcpStream::connect(("127.0.0.1", server.cport)).unwrap();
    out.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let meet = Msg {
        header: header(),
        body: Body::Meet(ping_body()),
    };
    out.write_all(&encode(&meet)).unwrap();
    let mut out_framer = Framer::default();
    let pong = read_msg(&mut out, &mut out_framer);
    assert_eq!(pong.body.msg_type(), msg_type::PONG);
    assert_eq!(pong.header.sender, id_bytes(&redis_id));

    // It then connects to our announced bus port and PINGs: our PONG ends
    // the handshake and gives it our name.
    listener.set_nonblocking(false).unwrap();
    let (mut inbound, _) = listener.accept().unwrap();
    inbound
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut in_framer = Framer::default();
    let ping = read_msg(&mut inbound, &mut in_framer);
    assert!(
        matches!(ping.body, Body::Ping(_) | Body::Meet(_)),
        "{:?}",
        ping.body
    );
    let answer = Msg {
        header: header(),
        body: Body::Pong(ping_body()),
    };
    inbound.write_all(&encode(&answer)).unwrap();
    wait_until(WAIT, "redis to know us by our name", || {
        cluster_nodes_of(&server).nodes.iter().any(|l| {
            l.id == our_id
                && l.flags & node_flags::HANDSHAKE == 0
                && l.flags & node_flags::MASTER != 0
                && (l.port, l.cport) == (our_port, our_cport)
        })
    });
    // Redis reads extensions only from a known sender, so the handshake's
    // PONG did not set our hostname: a PING from the now-known node does.
    let ping = Msg {
        header: header(),
        body: Body::Ping(ping_body()),
    };
    out.write_all(&encode(&ping)).unwrap();
    let pong = read_msg(&mut out, &mut out_framer);
    assert_eq!(pong.body.msg_type(), msg_type::PONG);
    // Its gossip and extensions are what it says of itself: no hostname.
    assert_eq!(pong.body.ping().map(|p| p.extensions.len()), Some(0));
    wait_until(WAIT, "redis to know our hostname", || {
        cluster_nodes_of(&server)
            .nodes
            .iter()
            .any(|l| l.id == our_id && l.hostname.as_deref() == Some(our_host))
    });

    // A PUBLISH from us reaches a subscriber of the real node.
    let mut sub = server.conn();
    let subscribed = sub.cmd(&["SUBSCRIBE", "news"]);
    assert!(matches!(subscribed, Reply::Array(_)));
    let publish = Msg {
        header: header(),
        body: Body::Publish {
            channel: b"news".to_vec(),
            message: b"from the codec".to_vec(),
        },
    };
    out.write_all(&encode(&publish)).unwrap();
    assert_eq!(
        sub.read(),
        Reply::Array(vec![
            Reply::Bulk(Some(b"message".to_vec())),
            Reply::Bulk(Some(b"news".to_vec())),
            Reply::Bulk(Some(b"from the codec".to_vec())),
        ])
    );
}

fn cluster_nodes_of(server: &Server) -> NodesConf {
    let text = server.conn().cmd(&["CLUSTER", "NODES"]).text();
    NodesConf::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}
