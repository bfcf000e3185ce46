//! Pub/Sub over the bus (Redis 7.0's `clusterPropagatePublish`,
//! `clusterSendPublish` and the PUBLISH/PUBLISHSHARD branch of
//! `clusterProcessPacket`): a PUBLISH goes to every node, a SPUBLISH to
//! the other nodes of this node's shard (its master and the master's
//! replicas), and what arrives becomes [`Action::Deliver`] for the server's
//! own subscribers. Kept apart from the node-table logic so that failover
//! work on `state.rs` and this stay independent.

use super::{Action, Cluster, LinkId};
use crate::msg::{node_flags as nf, Body, NodeName};

impl Cluster {
    /// Sends a message published here to the nodes that must deliver it
    /// too: with `shard` false (PUBLISH), every node with an outbound link
    /// but myself and nodes still in handshake (`clusterBroadcastMessage`);
    /// with `shard` true (SPUBLISH), the other nodes serving my slots
    /// (`clusterGetNodesServingMySlots`). Nodes without a link are skipped,
    /// as Redis skips them: Pub/Sub is fire and forget.
    ///
    /// ```
    /// use rampart_cluster::state::{Cluster, Settings};
    /// let mut c = Cluster::new(Settings::default(), 1, 0);
    /// c.publish(b"news", b"hi", false);
    /// // Alone in its cluster: nothing to send.
    /// assert!(c.take_actions().is_empty());
    /// ```
    pub fn publish(&mut self, channel: &[u8], message: &[u8], shard: bool) {
        let links = if shard {
            self.shard_links()
        } else {
            self.nodes
                .values()
                .filter(|n| !n.has(nf::MYSELF) && !n.has(nf::HANDSHAKE))
                .filter_map(|n| n.link)
                .collect()
        };
        for link in links {
            let body = if shard {
                Body::PublishShard {
                    channel: channel.to_vec(),
                    message: message.to_vec(),
                }
            } else {
                Body::Publish {
                    channel: channel.to_vec(),
                    message: message.to_vec(),
                }
            };
            self.send(link, body);
        }
    }

    /// Outbound links to the nodes of my shard but myself: my master (or
    /// me, as a master) and its replicas, handshake nodes left out.
    fn shard_links(&self) -> Vec<LinkId> {
        let me = self.myself();
        let primary: Option<NodeName> = if me.has(nf::SLAVE) {
            me.master
        } else {
            Some(self.myself)
        };
        let Some(primary) = primary else {
            return Vec::new();
        };
        self.nodes
            .values()
            .filter(|n| n.name == primary || (n.has(nf::SLAVE) && n.master == Some(primary)))
            .filter(|n| !n.has(nf::MYSELF) && !n.has(nf::HANDSHAKE))
            .filter_map(|n| n.link)
            .collect()
    }

    /// A PUBLISH or PUBLISHSHARD message arrived from `sender` (`None` when
    /// the sender is unknown: ignored, as Redis does). Asks the server to
    /// deliver it to its own subscribers; never forwarded again, so a
    /// message crosses the bus once.
    pub(super) fn received_publish(&mut self, sender: Option<NodeName>, body: &Body) {
        if sender.is_none() {
            return;
        }
        let (shard, channel, message) = match body {
            Body::Publish { channel, message } => (false, channel, message),
            Body::PublishShard { channel, message } => (true, channel, message),
            _ => return,
        };
        self.actions.push(Action::Deliver {
            shard,
            channel: channel.clone(),
            message: message.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Action, Cluster, LinkId, Settings};
    use std::collections::HashMap;

    /// A delivered message: sharded, channel, message.
    type Delivered = (bool, Vec<u8>, Vec<u8>);

    /// Nodes joined in memory: every Send goes through the codec to the
    /// peer's paired link; Deliver actions are collected per node.
    struct Net {
        nodes: Vec<Cluster>,
        pairs: HashMap<(usize, LinkId), (usize, LinkId)>,
        delivered: Vec<Vec<Delivered>>,
    }

    impl Net {
        fn new(n: usize) -> Net {
            let settings = |i: u16| Settings {
                node_timeout: 15000,
                port: 7000 + i,
                pport: 7000 + i,
                cport: 17000 + i,
                ..Default::default()
            };
            Net {
                nodes: (0..n as u16)
                    .map(|i| Cluster::new(settings(i), i as u64 + 11, 0))
                    .collect(),
                pairs: HashMap::new(),
                delivered: vec![Vec::new(); n],
            }
        }

        fn run(&mut self, now: u64) {
            for _ in 0..50 {
                let mut quiet = true;
                for i in 0..self.nodes.len() {
                    for a in self.nodes[i].take_actions() {
                        quiet = false;
                        match a {
                            Action::Connect { link, cport, .. } => {
                                let j = (cport - 17000) as usize;
                                let peer = self.nodes[j].accept(now);
                                self.pairs.insert((i, link), (j, peer));
                                self.pairs.insert((j, peer), (i, link));
                            }
                            Action::Send { link, msg } => {
                                let bytes = crate::msg::encode(&msg);
                                let msg = crate::msg::decode(&bytes).expect("decodes");
                                if let Some(&(j, pl)) = self.pairs.get(&(i, link)) {
                                    self.nodes[j].receive(pl, "127.0.0.1", "127.0.0.1", &msg, now);
                                }
                            }
                            Action::Deliver {
                                shard,
                                channel,
                                message,
                            } => self.delivered[i].push((shard, channel, message)),
                            _ => {}
                        }
                    }
                }
                if quiet {
                    return;
                }
            }
        }

        /// Ticks and delivers for `ms` milliseconds from `now`.
        fn settle(&mut self, now: &mut u64, ms: u64) {
            for _ in 0..ms / 100 {
                *now += 100;
                for n in &mut self.nodes {
                    n.tick(*now);
                }
                self.run(*now);
            }
        }
    }

    #[test]
    fn publish_reaches_every_node_and_spublish_only_the_shard() {
        let mut net = Net::new(3);
        net.nodes[0].add_slots(&[1], 0);
        net.nodes[0].meet("127.0.0.1", 7001, 17001, 0).unwrap();
        net.nodes[0].meet("127.0.0.1", 7002, 17002, 0).unwrap();
        let mut now = 0;
        net.settle(&mut now, 5000);
        net.nodes[1].publish(b"news", b"hi", false);
        net.run(now);
        assert!(net.delivered[1].is_empty(), "no echo to the publisher");
        for i in [0, 2] {
            assert_eq!(
                net.delivered[i],
                vec![(false, b"news".to_vec(), b"hi".to_vec())],
                "node {i}"
            );
        }
        // Without replicas a shard is the node alone: nothing crosses.
        net.nodes[0].publish(b"sch", b"x", true);
        net.run(now);
        assert_eq!(net.delivered.iter().map(Vec::len).sum::<usize>(), 2);
        assert_eq!(net.nodes[1].sent[crate::msg::msg_type::PUBLISH as usize], 2);
        assert_eq!(
            net.nodes[0].received[crate::msg::msg_type::PUBLISH as usize],
            1
        );
    }
}
