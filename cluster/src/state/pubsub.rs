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
