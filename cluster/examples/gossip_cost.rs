//! What the cluster bus costs one node of a large cluster, for the
//! README's figures: builds the state of `N` masters (default 1000) from
//! a generated nodes.conf, lets one node ping all the others (each PING
//! carries gossip about N/10 nodes, as Redis's), and times building those
//! messages there and decoding and handling them on another node.
//!
//! ```text
//! cargo run --release -p rampart-cluster --example gossip_cost -- 1000
//! ```
// An example binary: a failed unwrap is a failed run.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use rampart_cluster::nodes_conf::NodesConf;
use rampart_cluster::state::{Action, Cluster, Settings};
use rampart_cluster::{decode, encode};

/// A nodes.conf of `n` masters splitting the slots, seen from node `me`.
fn conf(n: usize, me: usize) -> NodesConf {
    let per = 16384 / n;
    let mut text = String::new();
    for i in 0..n {
        let (first, last) = (i * per, if i == n - 1 { 16383 } else { (i + 1) * per - 1 });
        let flags = if i == me { "myself,master" } else { "master" };
        let port = 10_000 + i;
        text.push_str(&format!(
            "{:040x} 127.0.0.1:{port}@{} {flags} - 0 0 {} connected {first}-{last}\n",
            i + 1,
            port + 20_000,
            i + 1
        ));
    }
    text.push_str(&format!("vars currentEpoch {n} lastVoteEpoch 0\n"));
    NodesConf::parse(&text).unwrap()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let now = 1_000_000;
    let settings = Settings {
        node_timeout: 15_000,
        ..Settings::default()
    };
    let timeout = settings.node_timeout;
    let mut a = Cluster::from_conf(&conf(n, 0), settings.clone(), 1, now).unwrap();
    let mut b = Cluster::from_conf(&conf(n, 1), settings, 2, now).unwrap();

    // Node a has no links yet: one tick connects to and pings everyone.
    let t = Instant::now();
    a.tick(now);
    let pings: Vec<Vec<u8>> = a
        .take_actions()
        .into_iter()
        .filter_map(|act| match act {
            Action::Send { msg, .. } => Some(encode(&msg)),
            _ => None,
        })
        .collect();
    let build = t.elapsed().as_secs_f64() / pings.len() as f64;
    let size = pings.iter().map(Vec::len).sum::<usize>() / pings.len();

    let link = b.accept(now);
    let rounds = 5;
    let t = Instant::now();
    for _ in 0..rounds {
        for bytes in &pings {
            let msg = decode(bytes).unwrap();
            b.receive(link, "127.0.0.1", "127.0.0.1", &msg, now);
            let _ = b.take_actions();
        }
    }
    let handle = t.elapsed().as_secs_f64() / (rounds * pings.len()) as f64;

    // Steady state, as Redis's clusterCron: every node pings each other
    // node at least once per node_timeout/2 (plus one random ping a
    // second), and each PING is answered by a PONG of the same size.
    let pings_per_s = 1.0 + (n - 1) as f64 / (timeout as f64 / 2000.0);
    let msgs_per_s = 2.0 * pings_per_s;
    println!("nodes: {n}, cluster-node-timeout: {timeout} ms");
    println!(
        "message: {size} bytes ({} gossip sections)",
        (n / 10).max(3)
    );
    println!(
        "per message: build {:.1} us, decode+handle {:.1} us",
        build * 1e6,
        handle * 1e6
    );
    println!(
        "per node and second: {msgs_per_s:.0} messages sent and as many received, \
         {:.1} MB/s each way, {:.1}% of one core",
        msgs_per_s * size as f64 / 1e6,
        msgs_per_s * (build + handle) * 100.0
    );
}
