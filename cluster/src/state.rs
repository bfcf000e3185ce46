//! The cluster's state machine: Redis 7.0's `clusterState` and the parts of
//! `cluster.c` that change it (`clusterProcessPacket` for MEET/PING/PONG/
//! UPDATE, `clusterCron`, `clusterUpdateState`), with no sockets and no
//! clock. The server feeds it events (a message arrived on link L, a link
//! closed, 100 ms passed, a CLUSTER command ran) with the time in ms, and
//! drains [`Action`]s (connect, send, close, save nodes.conf, drop keys).
//!
//! Failure detection, replicas, elections, manual failover and replica
//! migration live in the child module `failover` (same struct, its own
//! file): this file calls into it at the points where Redis's
//! `clusterCron` and `clusterProcessPacket` do.
//!
//! Seam left for later: slot migration (MIGRATING/IMPORTING kept as data only).

mod failover;
pub use failover::ReplStatus;

mod pubsub;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::msg::{
    c_str, node_flags as nf, Body, Gossip, Header, Msg, NodeName, PingBody, PingExt, IP_LEN,
    NAME_LEN,
};
use crate::nodes_conf::{Direction, NodeLine, NodesConf, SlotMigration};
use crate::slot::{SlotSet, SLOTS};

/// A bus link, numbered by the state machine (outbound) or by
/// [`Cluster::accept`] (inbound).
pub type LinkId = u64;

/// The state a master keeps refusing to call "ok" for after it starts, so
/// that it hears the cluster's view first (Redis's `CLUSTER_WRITABLE_DELAY`).
const WRITABLE_DELAY_MS: u64 = 2000;
/// Bounds of the rejoin delay after a minority partition heals (Redis's
/// `CLUSTER_MIN_REJOIN_DELAY` / `CLUSTER_MAX_REJOIN_DELAY`).
const REJOIN_DELAY_MIN_MS: u64 = 500;
const REJOIN_DELAY_MAX_MS: u64 = 5000;

/// Message type names as CLUSTER INFO prints them, indexed by type code.
pub const MSG_TYPE_NAMES: [&str; 11] = [
    "ping",
    "pong",
    "meet",
    "fail",
    "publish",
    "auth-req",
    "auth-ack",
    "update",
    "mfstart",
    "module",
    "publishshard",
];

/// What this node announces about itself (from the server's config).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// `cluster-node-timeout` in ms.
    pub node_timeout: u64,
    /// `cluster-require-full-coverage`.
    pub require_full_coverage: bool,
    /// `cluster-announce-ip`, empty when not set.
    pub announce_ip: String,
    /// `cluster-announce-hostname`, empty when not set.
    pub announce_hostname: String,
    /// The client port announced (the TLS port when TLS is on).
    pub port: u16,
    /// The plaintext client port.
    pub pport: u16,
    /// The bus port announced.
    pub cport: u16,
    /// `cluster-replica-validity-factor` (0: a replica always may fail over).
    pub replica_validity_factor: u64,
    /// `repl-ping-replica-period` in ms (part of the data age allowance).
    pub repl_ping_period: u64,
    /// `cluster-migration-barrier`.
    pub migration_barrier: u64,
    /// `cluster-allow-replica-migration`.
    pub allow_replica_migration: bool,
    /// `cluster-replica-no-failover`.
    pub replica_no_failover: bool,
}

/// Something the I/O side must do. Drained with [`Cluster::take_actions`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open an outbound link to `ip:cport` for `node` as link `link`, then
    /// write the messages sent on it (the first is already queued).
    Connect {
        /// The new link's id.
        link: LinkId,
        /// The node it is for (its name may change while it connects).
        node: NodeName,
        /// The node's IP.
        ip: String,
        /// The node's bus port.
        cport: u16,
    },
    /// Write a message on a link (silently dropped if it is gone).
    Send {
        /// The link.
        link: LinkId,
        /// The message (boxed: a header carries the 2 KB slot bitmap).
        msg: Box<Msg>,
    },
    /// Close a link.
    Close(LinkId),
    /// Write nodes.conf ([`Cluster::to_conf`]) now.
    Save,
    /// Delete the keys of slots this node lost to another owner.
    DropSlots(Vec<u16>),
    /// Unsubscribe every client from the shard channels of these slots:
    /// they were served by this node or its master and no longer are
    /// (Redis's `removeChannelsInSlot` in `clusterDelSlot`).
    DropShardChannels(Vec<u16>),
    /// Become (or stay) a replica of the primary at `ip:port`, as REPLICAOF
    /// would (Redis's `replicationSetMaster`); already following it is a no-op.
    Replicate {
        /// The primary's IP.
        ip: String,
        /// Its client port.
        port: u16,
    },
    /// Stop replicating and become a primary, as REPLICAOF NO ONE
    /// (`replicationUnsetMaster`).
    BecomePrimary,
    /// Hold client writes until `until` (ms) or [`Action::ResumeWrites`]: a
    /// replica asked for a manual failover (MFSTART). Once writes are held,
    /// the I/O side reports the offset with [`Cluster::writes_paused`].
    PauseWrites {
        /// When the pause ends by itself.
        until: u64,
    },
    /// End a [`Action::PauseWrites`].
    ResumeWrites,
    /// Something worth a line in the server's log (Redis's `serverLog`).
    Log(String),
    /// Forget every key (CLUSTER RESET of a replica: Redis's `emptyData`).
    FlushAll,
    /// Deliver a message another node published (PUBLISH, or SPUBLISH when
    /// `shard`) to this node's own subscribers.
    Deliver {
        /// Sharded (SSUBSCRIBE subscribers) or not.
        shard: bool,
        /// The channel.
        channel: Vec<u8>,
        /// The message.
        message: Vec<u8>,
    },
}

/// One known node (Redis's `clusterNode`).
#[derive(Clone, Debug)]
pub struct Node {
    /// Its 40-character name.
    pub name: NodeName,
    /// Its IP ("" until known, for myself).
    pub ip: String,
    /// Client port.
    pub port: u16,
    /// Plaintext client port.
    pub pport: u16,
    /// Bus port.
    pub cport: u16,
    /// Announced hostname ("" if none).
    pub hostname: String,
    /// [`nf`] flags.
    pub flags: u16,
    /// Its master, for a replica.
    pub master: Option<NodeName>,
    /// Last config epoch known.
    pub config_epoch: u64,
    /// The slots it serves.
    pub slots: SlotSet,
    /// When it was added (ms).
    pub ctime: u64,
    /// When the pending PING was sent (ms), 0 if none.
    pub ping_sent: u64,
    /// When its last PONG arrived (ms).
    pub pong_received: u64,
    /// When anything last arrived from it (ms).
    pub data_received: u64,
    /// Our outbound link to it.
    pub link: Option<LinkId>,
    /// Its link to us, once it has identified itself on it.
    pub inbound: Option<LinkId>,
    /// The replication offset it last reported.
    pub repl_offset: u64,
    /// Masters that reported it PFAIL or FAIL, with when (ms).
    pub fail_reports: Vec<(NodeName, u64)>,
    /// When we flagged it FAIL (ms).
    pub fail_time: u64,
    /// When we last voted for one of its replicas (ms).
    pub voted_time: u64,
    /// Since when it has been an orphaned master (ms), 0 if not.
    pub orphaned_time: u64,
}

impl Node {
    fn new(name: NodeName, flags: u16, now: u64) -> Node {
        Node {
            name,
            ip: String::new(),
            port: 0,
            pport: 0,
            cport: 0,
            hostname: String::new(),
            flags,
            master: None,
            config_epoch: 0,
            slots: SlotSet::new(),
            ctime: now,
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            link: None,
            inbound: None,
            repl_offset: 0,
            fail_reports: Vec::new(),
            fail_time: 0,
            voted_time: 0,
            orphaned_time: 0,
        }
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// Its name as a string.
    pub fn id(&self) -> String {
        name_str(&self.name)
    }

    /// The client port to show or redirect to: the plaintext port when
    /// `use_pport` (a plaintext client of a `tls-cluster`) and the node
    /// announced one, else [`Node::port`], as Redis 7.0 picks it.
    ///
    /// # Example
    ///
    /// ```
    /// # let st = rampart_cluster::state::Cluster::new(Default::default(), 1, 0);
    /// let n = st.myself();
    /// // No plaintext port announced: the client port either way.
    /// assert_eq!(n.client_port(true), n.port);
    /// ```
    pub fn client_port(&self, use_pport: bool) -> u16 {
        if use_pport && self.pport != 0 {
            self.pport
        } else {
            self.port
        }
    }
}

/// Where a link leads.
#[derive(Clone, Debug)]
struct Link {
    /// True for a link we opened.
    outbound: bool,
    /// The node: set at creation for outbound links, once identified for inbound.
    node: Option<NodeName>,
    ctime: u64,
}

/// Why CLUSTER MEET refused an address (Redis's `EINVAL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadAddress;

/// Redis's `clusterState` plus the node table.
pub struct Cluster {
    /// Config.
    pub settings: Settings,
    myself: NodeName,
    nodes: BTreeMap<NodeName, Node>,
    owners: Vec<Option<NodeName>>,
    /// Slots this node migrates to another (`CLUSTER SETSLOT MIGRATING`).
    pub migrating: BTreeMap<u16, NodeName>,
    /// Slots this node imports from another (`CLUSTER SETSLOT IMPORTING`).
    pub importing: BTreeMap<u16, NodeName>,
    /// `currentEpoch`.
    pub current_epoch: u64,
    /// `lastVoteEpoch`.
    pub last_vote_epoch: u64,
    ok: bool,
    size: usize,
    links: HashMap<LinkId, Link>,
    next_link: LinkId,
    actions: Vec<Action>,
    rng: u64,
    iteration: u64,
    started: u64,
    /// When this node last saw itself among a minority of the masters
    /// (Redis's `among_minority_time`), for the rejoin delay.
    among_minority: u64,
    /// Slots whose shard channels go at the next [`Cluster::take_actions`].
    lost_channel_slots: Vec<u16>,
    /// Slots still bound to an owner that no longer claims them (7.0.15's
    /// `owner_not_claiming_slot`): another node may take them whatever
    /// its epoch, and UPDATE messages do not spread the stale binding.
    not_claiming: SlotSet,
    /// Bus messages sent, by type.
    pub sent: [u64; 11],
    /// Bus messages received, by type.
    pub received: [u64; 11],
    /// Nodes CLUSTER FORGET removed, with when the ban ends (ms): gossip
    /// must not bring them back for a minute, as Redis's blacklist.
    banned: HashMap<NodeName, u64>,
    /// Elections, manual failover and what the server says about replication.
    fo: failover::Failover,
}

/// xorshift64*: the state machine stays pure and reproducible.
fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// A node as a gossip section.
fn gossip_of(n: &Node) -> Gossip {
    Gossip {
        nodename: n.name,
        ping_sent: (n.ping_sent / 1000) as u32,
        pong_received: (n.pong_received / 1000) as u32,
        ip: ip_field(&n.ip),
        port: n.port,
        cport: n.cport,
        flags: n.flags,
        pport: n.pport,
        notused1: 0,
    }
}

/// The name as a string.
pub fn name_str(n: &NodeName) -> String {
    String::from_utf8_lossy(n).into_owned()
}

/// A name from a 40-character string.
pub fn parse_name(s: &[u8]) -> Option<NodeName> {
    <NodeName>::try_from(s).ok()
}

fn ip_field(ip: &str) -> [u8; IP_LEN] {
    let mut b = [0u8; IP_LEN];
    let n = ip.len().min(IP_LEN - 1);
    b[..n].copy_from_slice(&ip.as_bytes()[..n]);
    b
}

impl Cluster {
    /// A fresh node with a random name (from `seed`), epoch 0, no slots.
    ///
    /// ```
    /// use rampart_cluster::state::{Cluster, Settings};
    /// let c = Cluster::new(Settings::default(), 42, 0);
    /// assert_eq!(c.myself().id().len(), 40);
    /// assert!(!c.is_ok());
    /// ```
    pub fn new(settings: Settings, seed: u64, now: u64) -> Cluster {
        let mut c = Cluster {
            settings,
            myself: [b'0'; NAME_LEN],
            nodes: BTreeMap::new(),
            owners: vec![None; SLOTS],
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            ok: false,
            size: 0,
            links: HashMap::new(),
            next_link: 1,
            actions: Vec::new(),
            // Distinct seeds must give distinct names: mix before xorshift.
            rng: (seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9) | 1,
            iteration: 0,
            started: now,
            among_minority: 0,
            lost_channel_slots: Vec::new(),
            not_claiming: SlotSet::new(),
            sent: [0; 11],
            received: [0; 11],
            banned: HashMap::new(),
            fo: failover::Failover::default(),
        };
        let name = c.random_name();
        c.myself = name;
        let mut me = Node::new(name, nf::MYSELF | nf::MASTER, now);
        me.ip = c.settings.announce_ip.clone();
        c.apply_settings_to(&mut me);
        c.nodes.insert(name, me);
        c
    }

    /// A node loaded from nodes.conf (Redis's `clusterLoadConfig`).
    ///
    /// ```
    /// use rampart_cluster::{nodes_conf::NodesConf, state::{Cluster, Settings}};
    /// let conf = NodesConf::parse(
    ///     "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:7000@17000 myself,master - 0 0 3 connected 0-99\n\
    ///      vars currentEpoch 5 lastVoteEpoch 0\n").unwrap();
    /// let c = Cluster::from_conf(&conf, Settings::default(), 1, 0).unwrap();
    /// assert_eq!(c.current_epoch, 5);
    /// assert_eq!(c.owner(42).map(|n| n.id()), Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca".into()));
    /// ```
    pub fn from_conf(
        conf: &NodesConf,
        settings: Settings,
        seed: u64,
        now: u64,
    ) -> Result<Cluster, String> {
        let mut c = Cluster::new(settings, seed, now);
        c.nodes.clear();
        let me = conf.myself().ok_or("no myself line")?;
        c.myself = parse_name(me.id.as_bytes()).ok_or("bad node id")?;
        for line in &conf.nodes {
            let name = parse_name(line.id.as_bytes()).ok_or("bad node id")?;
            let mut n = Node::new(name, line.flags, now);
            n.ip = line.ip.clone();
            n.port = line.port;
            // nodes.conf has no plaintext port: it arrives over the bus
            // (Redis's createClusterNode leaves it 0 too).
            n.pport = 0;
            n.cport = line.cport;
            n.hostname = line.hostname.clone().unwrap_or_default();
            n.master = match &line.master {
                Some(m) => Some(parse_name(m.as_bytes()).ok_or("bad master id")?),
                None => None,
            };
            n.config_epoch = line.config_epoch;
            // As Redis: times from the file only say "there was one".
            n.pong_received = if line.pong_recv != 0 { now } else { 0 };
            c.nodes.insert(name, n);
            for r in &line.slots {
                for s in r.clone() {
                    c.set_owner(s, Some(name));
                }
            }
            for m in &line.migrations {
                let Some(other) = parse_name(m.node.as_bytes()) else {
                    continue;
                };
                match m.direction {
                    Direction::Migrating => c.migrating.insert(m.slot, other),
                    Direction::Importing => c.importing.insert(m.slot, other),
                };
            }
        }
        c.current_epoch = conf.current_epoch;
        c.last_vote_epoch = conf.last_vote_epoch;
        let max_epoch = c.nodes.values().map(|n| n.config_epoch).max().unwrap_or(0);
        c.current_epoch = c.current_epoch.max(max_epoch);
        let mut me = c.nodes.remove(&c.myself).ok_or("no myself")?;
        if !c.settings.announce_ip.is_empty() {
            me.ip = c.settings.announce_ip.clone();
        }
        c.apply_settings_to(&mut me);
        c.nodes.insert(c.myself, me);
        c.update_state(now);
        Ok(c)
    }

    fn apply_settings_to(&self, me: &mut Node) {
        // Redis's clusterUpdateMyselfFlags.
        if self.settings.replica_no_failover {
            me.flags |= nf::NOFAILOVER;
        } else {
            me.flags &= !nf::NOFAILOVER;
        }
        me.port = self.settings.port;
        me.pport = self.settings.pport;
        me.cport = self.settings.cport;
        me.hostname = self.settings.announce_hostname.clone();
    }

    /// Applies changed [`Settings`] to myself (CONFIG SET of an announce field).
    pub fn set_settings(&mut self, settings: Settings) {
        self.settings = settings;
        if let Some(mut me) = self.nodes.remove(&self.myself) {
            if !self.settings.announce_ip.is_empty() {
                me.ip = self.settings.announce_ip.clone();
            }
            self.apply_settings_to(&mut me);
            self.nodes.insert(self.myself, me);
        }
    }

    /// The nodes.conf for this state (Redis's `clusterSaveConfig` content).
    pub fn to_conf(&self) -> NodesConf {
        NodesConf {
            nodes: self
                .nodes
                .values()
                .filter(|n| !n.has(nf::HANDSHAKE))
                .map(|n| self.node_line(n))
                .collect(),
            current_epoch: self.current_epoch,
            last_vote_epoch: self.last_vote_epoch,
        }
    }

    /// One node as a CLUSTER NODES line (Redis's `clusterGenNodeDescription`).
    pub fn node_line(&self, n: &Node) -> NodeLine {
        let me = n.name == self.myself;
        let epoch = match (n.has(nf::SLAVE), n.master.and_then(|m| self.nodes.get(&m))) {
            (true, Some(m)) => m.config_epoch,
            _ => n.config_epoch,
        };
        let mut migrations = Vec::new();
        if me {
            for (slot, to) in &self.migrating {
                migrations.push(SlotMigration {
                    slot: *slot,
                    direction: Direction::Migrating,
                    node: name_str(to),
                });
            }
            for (slot, from) in &self.importing {
                migrations.push(SlotMigration {
                    slot: *slot,
                    direction: Direction::Importing,
                    node: name_str(from),
                });
            }
        }
        NodeLine {
            id: n.id(),
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
            hostname: (!n.hostname.is_empty()).then(|| n.hostname.clone()),
            flags: n.flags,
            master: n.master.map(|m| name_str(&m)),
            ping_sent: n.ping_sent,
            pong_recv: n.pong_received,
            config_epoch: epoch,
            connected: n.link.is_some() || me,
            slots: n.slots.ranges(),
            migrations,
        }
    }

    /// CLUSTER NODES: one line per node, myself included, each ending in `\n`.
    pub fn nodes_description(&self) -> String {
        self.nodes_description_for(false)
    }

    /// CLUSTER NODES as a client sees it: with `use_pport` (a plaintext
    /// client of a `tls-cluster`) each node's plaintext port where known,
    /// as Redis's `clusterGenNodesDescription(filter, use_pport)`.
    ///
    /// # Example
    ///
    /// ```
    /// let st = rampart_cluster::state::Cluster::new(Default::default(), 1, 0);
    /// assert_eq!(st.nodes_description_for(true), st.nodes_description());
    /// ```
    pub fn nodes_description_for(&self, use_pport: bool) -> String {
        let mut s = String::new();
        for n in self.nodes.values() {
            let _ = writeln!(s, "{}", self.node_line_for(n, use_pport));
        }
        s
    }

    /// One CLUSTER NODES line (see [`Cluster::nodes_description_for`]).
    pub fn node_line_for(&self, n: &Node, use_pport: bool) -> NodeLine {
        let mut line = self.node_line(n);
        line.port = n.client_port(use_pport);
        line
    }

    /// Myself.
    pub fn myself(&self) -> &Node {
        // The table always holds myself: every removal path skips it.
        &self.nodes[&self.myself]
    }

    fn me_mut(&mut self) -> &mut Node {
        self.nodes
            .get_mut(&self.myself)
            .unwrap_or_else(|| unreachable!("myself is never removed"))
    }

    /// My name.
    pub fn my_name(&self) -> NodeName {
        self.myself
    }

    /// A node by name.
    pub fn node(&self, name: &NodeName) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Every node, in name order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Number of known nodes (handshakes included, as Redis counts).
    pub fn known_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Masters serving at least one slot (`cluster_size`).
    pub fn size(&self) -> usize {
        self.size
    }

    /// The node serving `slot`.
    pub fn owner(&self, slot: u16) -> Option<&Node> {
        self.owners
            .get(slot as usize)
            .copied()
            .flatten()
            .and_then(|n| self.nodes.get(&n))
    }

    /// The name of the node serving `slot`, without looking the node up
    /// (the per-command routing check needs only the name).
    pub fn owner_name(&self, slot: u16) -> Option<NodeName> {
        self.owners.get(slot as usize).copied().flatten()
    }

    /// Whether `slot` is served by myself.
    pub fn mine(&self, slot: u16) -> bool {
        self.owners.get(slot as usize).copied().flatten() == Some(self.myself)
    }

    /// `cluster_state:ok`.
    pub fn is_ok(&self) -> bool {
        self.ok
    }

    /// Open links, for CLUSTER LINKS: `(link, outbound, node, created ms)`.
    pub fn links(&self) -> Vec<(LinkId, bool, Option<NodeName>, u64)> {
        let mut v: Vec<_> = self
            .links
            .iter()
            .map(|(id, l)| (*id, l.outbound, l.node, l.ctime))
            .collect();
        v.sort_by_key(|l| l.0);
        v
    }

    /// Everything the I/O side has to do, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        if !self.lost_channel_slots.is_empty() {
            let slots = std::mem::take(&mut self.lost_channel_slots);
            self.actions.push(Action::DropShardChannels(slots));
        }
        std::mem::take(&mut self.actions)
    }

    fn save(&mut self) {
        if !self.actions.contains(&Action::Save) {
            self.actions.push(Action::Save);
        }
    }

    fn rand(&mut self) -> u64 {
        xorshift(&mut self.rng)
    }

    fn random_name(&mut self) -> NodeName {
        let mut n = [0u8; NAME_LEN];
        for b in n.iter_mut() {
            *b = b"0123456789abcdef"[(self.rand() >> 33) as usize % 16];
        }
        n
    }

    fn set_owner(&mut self, slot: u16, owner: Option<NodeName>) {
        if let Some(old) = self.owners[slot as usize] {
            let mine = old == self.myself || self.myself().master == Some(old);
            if mine {
                self.lost_channel_slots.push(slot);
            }
            if let Some(n) = self.nodes.get_mut(&old) {
                n.slots.remove(slot);
            }
        }
        self.owners[slot as usize] = owner;
        // A new binding is certain again (as later Redis clears the bit in
        // clusterDelSlot; 7.0.15 could keep a slot it had just assigned
        // marked unclaimed).
        self.not_claiming.remove(slot);
        if let Some(new) = owner {
            if let Some(n) = self.nodes.get_mut(&new) {
                n.slots.insert(slot);
            }
        }
    }

    // ---- links -------------------------------------------------------

    /// Registers an accepted inbound link.
    pub fn accept(&mut self, now: u64) -> LinkId {
        let id = self.next_link;
        self.next_link += 1;
        self.links.insert(
            id,
            Link {
                outbound: false,
                node: None,
                ctime: now,
            },
        );
        id
    }

    /// A link closed (by the peer, an I/O error, garbage, or a failed connect).
    pub fn link_closed(&mut self, link: LinkId) {
        let Some(l) = self.links.remove(&link) else {
            return;
        };
        if let Some(n) = l.node.and_then(|n| self.nodes.get_mut(&n)) {
            if n.link == Some(link) {
                n.link = None;
            }
            if n.inbound == Some(link) {
                n.inbound = None;
            }
        }
    }

    /// DEBUG CLUSTERLINK KILL: frees `name`'s links as Redis's
    /// `freeClusterLink` does, our outbound one (`to`) and/or its inbound
    /// one (`from`); the tick then reconnects as after any lost link.
    /// `false` when no such node is known.
    ///
    /// ```
    /// use rampart_cluster::state::{Cluster, Settings};
    /// let mut c = Cluster::new(Settings::default(), 1, 0);
    /// let me = c.myself().name;
    /// assert!(c.kill_links(&me, true, true));
    /// ```
    pub fn kill_links(&mut self, name: &NodeName, to: bool, from: bool) -> bool {
        let Some(n) = self.nodes.get(name) else {
            return false;
        };
        let (out, inb) = (n.link, n.inbound);
        if let (true, Some(l)) = (to, out) {
            self.free_link(l);
        }
        if let (true, Some(l)) = (from, inb) {
            self.free_link(l);
        }
        true
    }

    fn free_link(&mut self, link: LinkId) {
        self.link_closed(link);
        self.actions.push(Action::Close(link));
    }

    fn send(&mut self, link: LinkId, body: Body) {
        self.send_with_flags(link, body, 0);
    }

    /// [`Cluster::send`] with extra `mflags[0]` bits (FORCEACK).
    fn send_with_flags(&mut self, link: LinkId, body: Body, mflags0: u8) {
        let t = body.msg_type() as usize;
        if let Some(c) = self.sent.get_mut(t) {
            *c += 1;
        }
        let mut header = self.header();
        header.mflags[0] |= mflags0;
        let msg = Msg { header, body };
        self.actions.push(Action::Send {
            link,
            msg: Box::new(msg),
        });
    }

    /// The header of every message we send (`clusterBuildMessageHdr`).
    fn header(&self) -> Header {
        let me = self.myself();
        let mut h = Header::new(self.myself);
        let master = me.master.and_then(|m| self.nodes.get(&m));
        let (slots, epoch) = match (me.has(nf::SLAVE), master) {
            (true, Some(m)) => (m.slots.clone(), m.config_epoch),
            _ => (me.slots.clone(), me.config_epoch),
        };
        h.myslots = slots;
        h.config_epoch = epoch;
        if let (true, Some(m)) = (me.has(nf::SLAVE), me.master) {
            h.slaveof = m;
        }
        h.myip = ip_field(&self.settings.announce_ip);
        h.port = self.settings.port;
        h.pport = self.settings.pport;
        h.cport = self.settings.cport;
        h.flags = me.flags;
        h.state = if self.ok { 0 } else { 1 };
        h.current_epoch = self.current_epoch;
        h.offset = me.repl_offset;
        h.mflags[0] |= self.mflags0();
        h
    }

    /// `clusterSendPing`: a PING, PONG or MEET with gossip about a few
    /// random nodes.
    fn send_ping(&mut self, link: LinkId, kind: u16, now: u64) {
        use crate::msg::msg_type as t;
        let target = self.links.get(&link).and_then(|l| l.node);
        if kind == t::PING {
            if let Some(n) = target.and_then(|n| self.nodes.get_mut(&n)) {
                n.ping_sent = now;
            }
        }
        let total = self.nodes.len();
        let fresh = total.saturating_sub(2);
        let wanted = (total / 10).max(3).min(fresh);
        // Picks by index into the node table, marking what is taken: a
        // PING of a 1000-node cluster carries 100 sections and goes out
        // ~130 times a second, so no copies of names and no rescans.
        let nodes: Vec<&Node> = self.nodes.values().collect();
        let mut taken = vec![false; nodes.len()];
        let mut gossip = Vec::with_capacity(wanted + 4);
        let mut rng = self.rng;
        let mut tries = wanted * 3;
        while gossip.len() < wanted && tries > 0 && !nodes.is_empty() {
            tries -= 1;
            let i = (xorshift(&mut rng) >> 16) as usize % nodes.len();
            let n = nodes[i];
            // Redis skips myself, PFAIL nodes (sent apart, with failure
            // detection), handshakes, NOADDR, and slotless unlinked nodes.
            if taken[i]
                || n.name == self.myself
                || n.has(nf::PFAIL | nf::HANDSHAKE | nf::NOADDR)
                || (n.link.is_none() && n.slots.is_empty())
            {
                continue;
            }
            taken[i] = true;
            gossip.push(gossip_of(n));
        }
        // Every PFAIL node goes at the end: that is how failure reports
        // reach the other masters.
        gossip.extend(
            nodes
                .iter()
                .filter(|n| n.has(nf::PFAIL) && !n.has(nf::HANDSHAKE | nf::NOADDR))
                .map(|n| gossip_of(n)),
        );
        self.rng = rng;
        let mut extensions = Vec::new();
        if !self.settings.announce_hostname.is_empty() {
            extensions.push(PingExt::Hostname {
                hostname: self.settings.announce_hostname.as_bytes().to_vec(),
                unused: 0,
            });
        }
        let body = PingBody { gossip, extensions };
        let body = match kind {
            t::PONG => Body::Pong(body),
            t::MEET => Body::Meet(body),
            _ => Body::Ping(body),
        };
        self.send(link, body);
    }

    // ---- commands ----------------------------------------------------

    /// CLUSTER MEET (`clusterStartHandshake`): adds a handshake node the
    /// next tick connects to. Already meeting that address is not an error.
    pub fn meet(&mut self, ip: &str, port: i64, cport: i64, now: u64) -> Result<(), BadAddress> {
        let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
            return Err(BadAddress);
        };
        if !(0..=65535).contains(&port) || !(0..=65535).contains(&cport) {
            return Err(BadAddress);
        }
        // Normalised, as Redis prints it back (e.g. IPv6 compressed).
        let ip = addr.to_string();
        let (port, cport) = (port as u16, cport as u16);
        if self.nodes.values().any(|n| {
            n.has(nf::HANDSHAKE)
                && n.ip.eq_ignore_ascii_case(&ip)
                && n.port == port
                && n.cport == cport
        }) {
            return Ok(());
        }
        let name = self.random_name();
        let mut n = Node::new(name, nf::HANDSHAKE | nf::MEET, now);
        n.ip = ip;
        n.port = port;
        n.cport = cport;
        self.nodes.insert(name, n);
        Ok(())
    }

    /// Whether ADDSLOTS may take `slot` (unassigned).
    pub fn slot_free(&self, slot: u16) -> bool {
        self.owners.get(slot as usize).copied().flatten().is_none()
    }

    /// CLUSTER ADDSLOTS/ADDSLOTSRANGE, after checks: myself serves `slots`.
    /// An importing state for a slot we take is cleared, as Redis does.
    pub fn add_slots(&mut self, slots: &[u16], now: u64) {
        for &s in slots {
            self.importing.remove(&s);
            self.set_owner(s, Some(self.myself));
        }
        self.changed(now);
    }

    /// CLUSTER DELSLOTS/DELSLOTSRANGE: the slots become unassigned.
    pub fn del_slots(&mut self, slots: &[u16], now: u64) {
        for &s in slots {
            self.importing.remove(&s);
            self.migrating.remove(&s);
            self.set_owner(s, None);
        }
        self.changed(now);
    }

    /// CLUSTER SETSLOT NODE after its checks: `slot` is served by `node`.
    /// Taking a slot we imported bumps our epoch without consensus and
    /// tells everyone at once, as Redis does, so the new owner wins.
    pub fn assign_slot(&mut self, slot: u16, node: NodeName, now: u64) {
        if !self.nodes.contains_key(&node) {
            return;
        }
        self.migrating.remove(&slot);
        self.set_owner(slot, Some(node));
        if node == self.myself && self.importing.remove(&slot).is_some() {
            self.bump_epoch();
            self.broadcast_pong(now);
        }
        self.changed(now);
    }

    /// A PONG to every node we have a link to (`clusterBroadcastPong`).
    pub fn broadcast_pong(&mut self, now: u64) {
        let links: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| n.name != self.myself && !n.has(nf::HANDSHAKE))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send_ping(l, crate::msg::msg_type::PONG, now);
        }
    }

    /// A node by its name as a client typed it (40 characters, else none).
    pub fn lookup(&self, name: &[u8]) -> Option<&Node> {
        parse_name(name).and_then(|n| self.nodes.get(&n))
    }

    /// CLUSTER FLUSHSLOTS: myself serves nothing.
    pub fn flush_slots(&mut self, now: u64) {
        let mine: Vec<u16> = self.myself().slots.iter().collect();
        self.del_slots(&mine, now);
    }

    fn changed(&mut self, now: u64) {
        self.update_state(now);
        self.save();
    }

    /// CLUSTER BUMPEPOCH (`clusterBumpConfigEpochWithoutConsensus`): true
    /// when the epoch moved ("BUMPED"), false when it was already the
    /// greatest ("STILL").
    pub fn bump_epoch(&mut self) -> bool {
        let max = self
            .nodes
            .values()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0);
        let mine = self.myself().config_epoch;
        if mine == 0 || mine != max {
            self.current_epoch += 1;
            let e = self.current_epoch;
            self.me_mut().config_epoch = e;
            self.save();
            true
        } else {
            false
        }
    }

    /// CLUSTER SET-CONFIG-EPOCH after its checks.
    pub fn set_config_epoch(&mut self, epoch: u64, now: u64) {
        self.me_mut().config_epoch = epoch;
        if self.current_epoch < epoch {
            self.current_epoch = epoch;
        }
        self.changed(now);
    }

    /// CLUSTER FORGET after its checks: removes the node and bans it from
    /// gossip for a minute.
    pub fn forget(&mut self, name: &NodeName, now: u64) {
        self.banned.insert(*name, now + 60_000);
        self.del_node(name);
        self.changed(now);
    }

    /// CLUSTER RESET (`clusterReset`): forget every other node and every
    /// slot; HARD also takes a new name and zeroes the epochs.
    pub fn reset(&mut self, hard: bool, now: u64) {
        self.migrating.clear();
        self.importing.clear();
        for s in 0..SLOTS as u16 {
            self.set_owner(s, None);
        }
        let others: Vec<NodeName> = self
            .nodes
            .keys()
            .copied()
            .filter(|n| *n != self.myself)
            .collect();
        for n in others {
            self.del_node(&n);
        }
        if self.myself().has(nf::SLAVE) {
            // A replica reset becomes an empty master (Redis's clusterReset).
            self.actions.push(Action::BecomePrimary);
            self.actions.push(Action::FlushAll);
        }
        self.reset_manual_failover();
        let me = self.me_mut();
        me.flags = (me.flags & nf::NOFAILOVER) | nf::MYSELF | nf::MASTER;
        me.master = None;
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.me_mut().config_epoch = 0;
            let old = self.myself;
            let new = self.random_name();
            if let Some(mut me) = self.nodes.remove(&old) {
                me.name = new;
                self.nodes.insert(new, me);
            }
            self.myself = new;
        }
        self.changed(now);
    }

    /// Removes a node (`clusterDelNode`): its slots become unassigned, its
    /// links close.
    fn del_node(&mut self, name: &NodeName) {
        if *name == self.myself {
            return;
        }
        for s in 0..SLOTS {
            if self.owners[s] == Some(*name) {
                self.owners[s] = None;
            }
        }
        self.migrating.retain(|_, n| n != name);
        self.importing.retain(|_, n| n != name);
        if let Some(n) = self.nodes.remove(name) {
            for l in [n.link, n.inbound].into_iter().flatten() {
                self.free_link(l);
            }
        }
        for n in self.nodes.values_mut() {
            if n.master == Some(*name) {
                n.master = None;
            }
        }
        self.drop_reports_from(name);
    }

    // ---- the cron ----------------------------------------------------

    /// Redis's `clusterCron`, called every 100 ms.
    pub fn tick(&mut self, now: u64) {
        use crate::msg::msg_type as t;
        self.iteration += 1;
        self.banned.retain(|_, until| *until > now);
        let timeout = self.settings.node_timeout.max(1);
        let handshake_timeout = timeout.max(1000);
        let names: Vec<NodeName> = self.nodes.keys().copied().collect();
        for name in &names {
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            if *name == self.myself || n.has(nf::NOADDR) {
                continue;
            }
            if n.has(nf::HANDSHAKE) && now.saturating_sub(n.ctime) > handshake_timeout {
                self.del_node(name);
                continue;
            }
            if n.link.is_none() {
                let link = self.next_link;
                self.next_link += 1;
                self.links.insert(
                    link,
                    Link {
                        outbound: true,
                        node: Some(*name),
                        ctime: now,
                    },
                );
                let (ip, cport, meet, old_ping) =
                    (n.ip.clone(), n.cport, n.has(nf::MEET), n.ping_sent);
                if let Some(n) = self.nodes.get_mut(name) {
                    n.link = Some(link);
                    n.flags &= !nf::MEET;
                }
                self.actions.push(Action::Connect {
                    link,
                    node: *name,
                    ip,
                    cport,
                });
                self.send_ping(link, if meet { t::MEET } else { t::PING }, now);
                // A reconnect must not look like a fresh ping to failure
                // detection: keep the older pending time.
                if old_ping != 0 {
                    if let Some(n) = self.nodes.get_mut(name) {
                        n.ping_sent = old_ping;
                    }
                }
            }
        }
        // Once a second, ping the node with the oldest pong among five random ones.
        if self.iteration.is_multiple_of(10) {
            let mut best: Option<(NodeName, u64)> = None;
            for _ in 0..5 {
                if names.is_empty() {
                    break;
                }
                let pick = names[(self.rand() >> 16) as usize % names.len()];
                let Some(n) = self.nodes.get(&pick) else {
                    continue;
                };
                if pick == self.myself
                    || n.link.is_none()
                    || n.ping_sent != 0
                    || n.has(nf::HANDSHAKE)
                {
                    continue;
                }
                if best.is_none_or(|(_, p)| n.pong_received < p) {
                    best = Some((pick, n.pong_received));
                }
            }
            if let Some(link) = best
                .and_then(|(b, _)| self.nodes.get(&b))
                .and_then(|n| n.link)
            {
                self.send_ping(link, t::PING, now);
            }
        }
        let (mut orphaned, mut max_slaves, mut this_slaves) = (0, 0, 0);
        for name in &names {
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            if *name == self.myself || n.has(nf::NOADDR | nf::HANDSHAKE) {
                continue;
            }
            let (is_orphan, ok_replicas) = self.cron_orphan(name, now);
            if is_orphan {
                orphaned += 1;
            }
            max_slaves = max_slaves.max(ok_replicas);
            if self.myself().master == Some(*name) {
                this_slaves = ok_replicas;
            }
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            let mut link = n.link;
            if let Some(l) = link {
                let link_age = self
                    .links
                    .get(&l)
                    .map_or(0, |l| now.saturating_sub(l.ctime));
                // A link that answers nothing for half the timeout is
                // probably dead; reconnecting costs little and recovers
                // half-open sockets.
                if link_age > timeout
                    && n.ping_sent != 0
                    && now.saturating_sub(n.ping_sent) > timeout / 2
                    && now.saturating_sub(n.data_received) > timeout / 2
                {
                    self.free_link(l);
                    link = None;
                }
            }
            let Some(n) = self.nodes.get(name) else {
                continue;
            };
            if let Some(l) = link {
                if n.ping_sent == 0 && now.saturating_sub(n.pong_received) > timeout / 2 {
                    self.send_ping(l, t::PING, now);
                    continue;
                }
            }
            // The state is recomputed below either way.
            let _ = self.cron_check_node(name, now);
        }
        self.failover_cron(now, orphaned, max_slaves, this_slaves);
        self.update_state(now);
    }

    /// Redis's `clusterUpdateState`.
    pub fn update_state(&mut self, now: u64) {
        if self.myself().has(nf::MASTER)
            && !self.ok
            && now.saturating_sub(self.started) < WRITABLE_DELAY_MS
        {
            return;
        }
        let mut ok = true;
        if self.settings.require_full_coverage {
            // Every slot assigned, and no owner FAIL (checked per owner, not per slot).
            let covered = self.owners.iter().all(Option::is_some);
            let failed = self
                .nodes
                .values()
                .any(|n| n.has(nf::FAIL) && !n.slots.is_empty());
            ok = covered && !failed;
        }
        let masters: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| n.has(nf::MASTER) && !n.slots.is_empty())
            .collect();
        self.size = masters.len();
        let reachable = masters
            .iter()
            .filter(|n| !n.has(nf::FAIL | nf::PFAIL))
            .count();
        if reachable < self.size / 2 + 1 {
            ok = false;
            self.among_minority = now;
        }
        if ok == self.ok {
            return;
        }
        // A master cut off with the minority waits a while after the
        // partition heals before taking queries again, so that a newer
        // configuration (its slots failed over) can reach it first.
        let rejoin = self
            .settings
            .node_timeout
            .clamp(REJOIN_DELAY_MIN_MS, REJOIN_DELAY_MAX_MS);
        if ok && self.myself().has(nf::MASTER) && now.saturating_sub(self.among_minority) < rejoin {
            return;
        }
        self.log(format!(
            "Cluster state changed: {}",
            if ok { "ok" } else { "fail" }
        ));
        self.ok = ok;
    }

    // ---- receiving ---------------------------------------------------

    /// A message arrived on `link`. `peer_ip` is the link's remote address,
    /// `local_ip` ours on it (how a MEET teaches us our own IP).
    pub fn receive(&mut self, link: LinkId, peer_ip: &str, local_ip: &str, msg: &Msg, now: u64) {
        use crate::msg::msg_type as t;
        let Some(l) = self.links.get(&link).cloned() else {
            return;
        };
        let h = &msg.header;
        let ty = msg.body.msg_type();
        if let Some(c) = self.received.get_mut(ty as usize) {
            *c += 1;
        }
        // getNodeFromLinkAndMsg
        let link_node_hs = l
            .node
            .and_then(|n| self.nodes.get(&n))
            .map(|n| n.has(nf::HANDSHAKE));
        let mut sender: Option<NodeName> = match (l.node, link_node_hs) {
            (Some(n), Some(false)) => Some(n),
            _ => {
                let s = self.nodes.contains_key(&h.sender).then_some(h.sender);
                if let (Some(s), None, false) = (s, l.node, l.outbound) {
                    if let Some(li) = self.links.get_mut(&link) {
                        li.node = Some(s);
                    }
                    if let Some(n) = self.nodes.get_mut(&s) {
                        if let Some(old) = n.inbound.replace(link) {
                            if old != link {
                                self.free_link(old);
                            }
                        }
                    }
                }
                s
            }
        };
        if sender == Some(self.myself) {
            // Our own message came back (we met ourselves): nothing to learn.
            sender = None;
        }
        let sender_known =
            sender.filter(|s| self.nodes.get(s).is_some_and(|n| !n.has(nf::HANDSHAKE)));
        if let Some(s) = sender.and_then(|s| self.nodes.get_mut(&s)) {
            s.data_received = now;
        }
        if let Some(s) = sender_known {
            if h.current_epoch > self.current_epoch {
                self.current_epoch = h.current_epoch;
            }
            if let Some(n) = self.nodes.get_mut(&s) {
                n.repl_offset = h.offset;
                if h.config_epoch > n.config_epoch {
                    n.config_epoch = h.config_epoch;
                    self.save();
                }
            }
            self.mf_offset_received(&s, h, now);
        }
        let the_ip = |announced: &[u8]| -> String {
            if announced.is_empty() {
                peer_ip.to_string()
            } else {
                String::from_utf8_lossy(announced).into_owned()
            }
        };
        if ty == t::PING || ty == t::MEET {
            if (ty == t::MEET || self.myself().ip.is_empty())
                && self.settings.announce_ip.is_empty()
                && !local_ip.is_empty()
                && self.myself().ip != local_ip
            {
                self.me_mut().ip = local_ip.to_string();
                self.save();
            }
            if sender.is_none() && ty == t::MEET {
                let name = self.random_name();
                let mut n = Node::new(name, nf::HANDSHAKE, now);
                n.ip = the_ip(h.myip());
                n.port = h.port;
                n.pport = h.pport;
                n.cport = h.cport;
                self.nodes.insert(name, n);
                self.save();
            }
            self.send_ping(link, t::PONG, now);
        }
        match &msg.body {
            Body::Ping(p) | Body::Pong(p) | Body::Meet(p) => {
                if l.outbound {
                    let Some(ln) = l.node else { return };
                    let Some(node) = self.nodes.get(&ln) else {
                        return;
                    };
                    if node.has(nf::HANDSHAKE) {
                        if let Some(s) = sender {
                            // We already know it: update its address, drop the handshake node.
                            let ip = the_ip(h.myip());
                            self.update_address(&s, link, &ip, (h.port, h.pport, h.cport));
                            self.del_node(&ln);
                            self.update_state(now);
                            self.save();
                            return;
                        }
                        self.rename(&ln, h.sender, link);
                        if let Some(n) = self.nodes.get_mut(&h.sender) {
                            n.flags &= !nf::HANDSHAKE;
                            n.flags |= h.flags & (nf::MASTER | nf::SLAVE);
                        }
                        sender = Some(h.sender);
                        self.save();
                    } else if ln != h.sender {
                        // Someone else answers at that address now.
                        if let Some(n) = self.nodes.get_mut(&ln) {
                            n.flags |= nf::NOADDR;
                            n.ip.clear();
                            n.port = 0;
                            n.pport = 0;
                            n.cport = 0;
                        }
                        self.free_link(link);
                        self.save();
                        return;
                    }
                }
                if let Some(s) = sender.and_then(|s| self.nodes.get_mut(&s)) {
                    s.flags = (s.flags & !nf::NOFAILOVER) | (h.flags & nf::NOFAILOVER);
                }
                if let (Some(s), true) = (sender_known, ty == t::PING) {
                    let ip = the_ip(h.myip());
                    if self.update_address(&s, link, &ip, (h.port, h.pport, h.cport)) {
                        self.update_state(now);
                        self.save();
                    }
                }
                if l.outbound && ty == t::PONG {
                    // The link's node, under its new name if it was just renamed.
                    let ln = self.links.get(&link).and_then(|x| x.node);
                    if let Some(n) = ln.and_then(|n| self.nodes.get_mut(&n)) {
                        n.pong_received = now;
                        n.ping_sent = 0;
                    }
                    if let Some(n) = ln {
                        self.pong_clears_failure(&n, now);
                    }
                }
                let Some(s) = sender else { return };
                self.update_role(&s, h, now);
                let sender_master = match self.nodes.get(&s) {
                    Some(n) if n.has(nf::MASTER) => Some(s),
                    Some(n) => n.master,
                    None => None,
                };
                let dirty = sender_master
                    .and_then(|m| self.nodes.get(&m))
                    .is_some_and(|m| m.slots != h.myslots);
                let sender_is_master = self.nodes.get(&s).is_some_and(|n| n.has(nf::MASTER));
                if dirty && sender_is_master {
                    self.update_slots_with(&s, h.config_epoch, &h.myslots, now);
                }
                if dirty {
                    // The sender claims slots a newer config gives to
                    // someone else: tell it (one UPDATE is enough per message).
                    let stale = h.myslots.iter().find_map(|slot| {
                        if self.unclaimed(slot) {
                            return None;
                        }
                        let owner = self.owner(slot)?;
                        (owner.name != s && owner.config_epoch > h.config_epoch)
                            .then_some(owner.name)
                    });
                    if let (Some(owner), Some(sl)) =
                        (stale, self.nodes.get(&s).and_then(|n| n.link))
                    {
                        self.send_update(sl, &owner);
                    }
                }
                if sender_is_master
                    && self.myself().has(nf::MASTER)
                    && h.config_epoch == self.myself().config_epoch
                {
                    self.config_epoch_collision(&s);
                }
                self.gossip(&s, p, now);
                for e in &p.extensions {
                    if let PingExt::Hostname { hostname, .. } = e {
                        if let Some(n) = self.nodes.get_mut(&s) {
                            let hn = String::from_utf8_lossy(c_str(hostname)).into_owned();
                            if n.hostname != hn {
                                n.hostname = hn;
                                self.save();
                            }
                        }
                    }
                }
                if !p
                    .extensions
                    .iter()
                    .any(|e| matches!(e, PingExt::Hostname { .. }))
                {
                    if let Some(n) = self.nodes.get_mut(&s) {
                        if !n.hostname.is_empty() {
                            n.hostname.clear();
                            self.save();
                        }
                    }
                }
            }
            Body::Update {
                config_epoch,
                nodename,
                slots,
            } => {
                if sender.is_none() {
                    return;
                }
                let Some(n) = self.nodes.get(nodename) else {
                    return;
                };
                if n.config_epoch >= *config_epoch {
                    return;
                }
                let name = *nodename;
                if n.has(nf::SLAVE) {
                    self.set_master_flags(&name);
                }
                if let Some(n) = self.nodes.get_mut(&name) {
                    n.config_epoch = *config_epoch;
                }
                self.update_slots_with(&name, *config_epoch, slots, now);
            }
            Body::Fail { about } => self.fail_received(sender_known, about, now),
            Body::FailoverAuthRequest => {
                if let Some(s) = sender_known {
                    self.auth_request_received(&s, h, now);
                }
            }
            Body::FailoverAuthAck => {
                if let Some(s) = sender_known {
                    self.auth_ack_received(&s, h, now);
                }
            }
            Body::MfStart => self.mfstart_received(sender_known, now),
            Body::Publish { .. } | Body::PublishShard { .. } => {
                self.received_publish(sender_known, &msg.body);
            }
            // Seam: MODULE.
            _ => {}
        }
    }

    fn send_update(&mut self, link: LinkId, about: &NodeName) {
        let Some(n) = self.nodes.get(about) else {
            return;
        };
        // Never advertise slots their owner stopped claiming.
        let mut slots = n.slots.clone();
        for s in self.not_claiming.iter() {
            slots.remove(s);
        }
        let body = Body::Update {
            config_epoch: n.config_epoch,
            nodename: n.name,
            slots,
        };
        self.send(link, body);
    }

    /// `clusterRenameNode`: a handshake node gets the name it answered with.
    fn rename(&mut self, old: &NodeName, new: NodeName, link: LinkId) {
        let Some(mut n) = self.nodes.remove(old) else {
            return;
        };
        n.name = new;
        for s in n.slots.iter() {
            self.owners[s as usize] = Some(new);
        }
        self.nodes.insert(new, n);
        if let Some(l) = self.links.get_mut(&link) {
            l.node = Some(new);
        }
    }

    /// `nodeUpdateAddressIfNeeded`: true when the address changed (the old
    /// outbound link is dropped so the next tick reconnects).
    fn update_address(
        &mut self,
        name: &NodeName,
        link: LinkId,
        ip: &str,
        (port, pport, cport): (u16, u16, u16),
    ) -> bool {
        let Some(n) = self.nodes.get_mut(name) else {
            return false;
        };
        if n.link == Some(link) || *name == self.myself {
            return false;
        }
        if n.ip == ip && n.port == port && n.cport == cport {
            // Only the plaintext port (a tls-cluster's, first heard here
            // after a MEET or a restart: nodes.conf lacks it) changed. It
            // is no part of the bus address, so unlike Redis the link
            // stays up.
            n.pport = pport;
            return false;
        }
        n.ip = ip.to_string();
        n.port = port;
        n.pport = pport;
        n.cport = cport;
        n.flags &= !nf::NOADDR;
        if let Some(old) = n.link.take() {
            self.free_link(old);
        }
        true
    }

    fn set_master_flags(&mut self, name: &NodeName) {
        self.node_becomes_master(name);
    }

    /// The sender's role from its header (master, or replica of whom).
    fn update_role(&mut self, s: &NodeName, h: &Header, now: u64) {
        match h.slaveof() {
            None => self.set_master_flags(s),
            Some(m) => {
                let m = *m;
                let was_master = self.nodes.get(s).is_some_and(|n| n.has(nf::MASTER));
                if was_master {
                    let slots: Vec<u16> = self
                        .nodes
                        .get(s)
                        .map(|n| n.slots.iter().collect())
                        .unwrap_or_default();
                    for slot in slots {
                        self.set_owner(slot, None);
                    }
                    if let Some(n) = self.nodes.get_mut(s) {
                        n.flags = (n.flags & !(nf::MASTER | nf::MIGRATE_TO)) | nf::SLAVE;
                    }
                    self.update_state(now);
                    self.save();
                }
                let known = self.nodes.contains_key(&m);
                let current = self.nodes.get(s).and_then(|n| n.master);
                if known && current != Some(m) {
                    self.attach_replica(s, m);
                    self.save();
                }
            }
        }
    }

    /// `clusterUpdateSlotsConfigWith`: every slot `sender` claims whose
    /// owner has an older config epoch moves to `sender`.
    fn update_slots_with(&mut self, sender: &NodeName, epoch: u64, slots: &SlotSet, now: u64) {
        if *sender == self.myself {
            return;
        }
        let mut lost = Vec::new();
        let mut changed = false;
        // Whether `sender` took our shard's slots: then we follow it.
        let me = self.myself();
        let curmaster = if me.has(nf::MASTER) {
            Some(self.myself)
        } else {
            me.master
        };
        let (mut sender_slots, mut migrated_ours) = (0usize, 0usize);
        for slot in 0..SLOTS as u16 {
            let owner = self.owners[slot as usize];
            if !slots.contains(slot) {
                // Still bound to the sender, which no longer claims it:
                // keep the binding (no CLUSTERDOWN, a few redirections)
                // but remember the doubt.
                if owner == Some(*sender) {
                    self.not_claiming.insert(slot);
                }
                continue;
            }
            sender_slots += 1;
            if owner == Some(*sender) {
                self.not_claiming.remove(slot);
                continue;
            }
            if self.importing.contains_key(&slot) {
                continue;
            }
            let older = self.unclaimed(slot)
                || owner
                    .and_then(|o| self.nodes.get(&o))
                    .is_none_or(|o| o.config_epoch < epoch);
            if older {
                if owner == Some(self.myself) {
                    lost.push(slot);
                }
                if owner.is_some() && owner == curmaster {
                    migrated_ours += 1;
                }
                self.set_owner(slot, Some(*sender));
                changed = true;
            }
        }
        let cur_empty = curmaster
            .and_then(|m| self.nodes.get(&m))
            .is_some_and(|m| m.slots.is_empty());
        let grandmaster = self
            .myself()
            .master
            .and_then(|m| self.nodes.get(&m))
            .and_then(|m| m.master)
            .filter(|g| *g != self.myself);
        if migrated_ours > 0
            && cur_empty
            && (self.settings.allow_replica_migration || sender_slots == migrated_ours)
        {
            // Failed over (or our shard moved whole): follow the new
            // owner; the full sync replaces our keys.
            self.actions.push(Action::Log(format!(
                "Configuration change detected. Reconfiguring myself as a replica of {}",
                name_str(sender)
            )));
            self.set_master(*sender, now);
        } else if let Some(g) = grandmaster {
            self.actions.push(Action::Log(format!(
                "I'm a sub-replica! Reconfiguring myself as a replica of grandmaster {}",
                name_str(&g)
            )));
            self.set_master(g, now);
        } else if !lost.is_empty() {
            self.actions.push(Action::DropSlots(lost));
        }
        if changed {
            self.update_state(now);
            self.save();
        }
    }

    /// Redis's `isSlotUnclaimed`: no owner, or an owner that stopped
    /// claiming it.
    pub(crate) fn unclaimed(&self, slot: u16) -> bool {
        self.owners[slot as usize].is_none() || self.not_claiming.contains(slot)
    }

    /// `clusterHandleConfigEpochCollision`.
    fn config_epoch_collision(&mut self, sender: &NodeName) {
        // Only the node with the smaller name moves (Redis's rule).
        if *sender <= self.myself {
            return;
        }
        self.current_epoch += 1;
        let e = self.current_epoch;
        self.me_mut().config_epoch = e;
        self.save();
    }

    /// `clusterProcessGossipSection`.
    fn gossip(&mut self, sender: &NodeName, p: &PingBody, now: u64) {
        // Only a master's word counts for failure detection; ask once.
        let sender_master = self.nodes.get(sender).is_some_and(|n| n.has(nf::MASTER));
        for g in &p.gossip {
            if g.nodename == self.myself {
                continue;
            }
            if let Some(n) = self.nodes.get(&g.nodename) {
                let failing = g.flags & (nf::PFAIL | nf::FAIL) != 0;
                // Without reports to add or withdraw there is nothing to do.
                if sender_master && (failing || !n.fail_reports.is_empty()) {
                    self.gossip_failure(sender, &g.nodename, g.flags, now);
                }
                let may_move_pong = !failing
                    && self
                        .nodes
                        .get(&g.nodename)
                        .is_some_and(|n| n.ping_sent == 0)
                    && self.no_failure_reports(&g.nodename, now);
                let Some(n) = self.nodes.get_mut(&g.nodename) else {
                    continue;
                };
                if may_move_pong {
                    let pong = g.pong_received as u64 * 1000;
                    if pong <= now + 500 && pong > n.pong_received {
                        n.pong_received = pong;
                    }
                }
                // A node we cannot reach that another can, at a new address:
                // try that address.
                if n.has(nf::PFAIL | nf::FAIL)
                    && g.flags & (nf::NOADDR | nf::PFAIL | nf::FAIL) == 0
                    && (!n.ip.as_bytes().eq_ignore_ascii_case(g.ip())
                        || n.port != g.port
                        || n.cport != g.cport)
                {
                    n.ip = String::from_utf8_lossy(g.ip()).into_owned();
                    n.port = g.port;
                    n.pport = g.pport;
                    n.cport = g.cport;
                    n.flags &= !nf::NOADDR;
                    if let Some(old) = n.link.take() {
                        self.free_link(old);
                    }
                }
            } else if g.flags & nf::NOADDR == 0 && !self.banned.contains_key(&g.nodename) {
                // Only a node we already trust brings in nodes, and by their
                // real name (not a handshake): an address alone could belong
                // to another cluster by now.
                let mut n = Node::new(g.nodename, g.flags & !(nf::MYSELF | nf::MEET), now);
                n.ip = String::from_utf8_lossy(g.ip()).into_owned();
                n.port = g.port;
                n.pport = g.pport;
                n.cport = g.cport;
                self.nodes.insert(g.nodename, n);
                self.save();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::msg_type as t;

    fn settings(port: u16) -> Settings {
        Settings {
            node_timeout: 15000,
            require_full_coverage: true,
            port,
            pport: port,
            cport: port + 10000,
            ..Default::default()
        }
    }

    /// Delivers every Send between a set of in-memory nodes until quiet.
    /// Links: node i's outbound link to j is paired with an inbound link on j.
    struct Net {
        nodes: Vec<Cluster>,
        // (owner node, link) -> (peer node, peer link)
        pairs: HashMap<(usize, LinkId), (usize, LinkId)>,
        ports: Vec<u16>,
    }

    impl Net {
        fn new(n: usize) -> Net {
            let ports: Vec<u16> = (0..n as u16).map(|i| 7000 + i).collect();
            Net {
                nodes: ports
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Cluster::new(settings(*p), i as u64 + 7, 0))
                    .collect(),
                pairs: HashMap::new(),
                ports,
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
                                let j = self.ports.iter().position(|p| p + 10000 == cport);
                                if let Some(j) = j {
                                    let peer = self.nodes[j].accept(now);
                                    self.pairs.insert((i, link), (j, peer));
                                    self.pairs.insert((j, peer), (i, link));
                                }
                            }
                            Action::Send { link, msg } => {
                                // Every message goes through the codec.
                                let bytes = crate::msg::encode(&msg);
                                let msg = crate::msg::decode(&bytes).expect("decodes");
                                if let Some(&(j, pl)) = self.pairs.get(&(i, link)) {
                                    self.nodes[j].receive(pl, "127.0.0.1", "127.0.0.1", &msg, now);
                                }
                            }
                            Action::Close(link) => {
                                if let Some((j, pl)) = self.pairs.remove(&(i, link)) {
                                    self.pairs.remove(&(j, pl));
                                    self.nodes[j].link_closed(pl);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                if quiet {
                    return;
                }
            }
        }
    }

    #[test]
    fn three_nodes_meet_and_agree_on_slots() {
        let mut net = Net::new(3);
        for (i, range) in [(0usize, 0..=5460u16), (1, 5461..=10922), (2, 10923..=16383)] {
            let slots: Vec<u16> = range.collect();
            net.nodes[i].add_slots(&slots, 0);
            net.nodes[i].set_config_epoch(i as u64 + 1, 0);
        }
        net.nodes[0].meet("127.0.0.1", 7001, 17001, 0).unwrap();
        net.nodes[0].meet("127.0.0.1", 7002, 17002, 0).unwrap();
        let mut now = 0;
        for _ in 0..300 {
            now += 100;
            for n in &mut net.nodes {
                n.tick(now);
            }
            net.run(now);
        }
        for n in &net.nodes {
            assert_eq!(n.known_nodes(), 3, "{}", n.nodes_description());
            assert!(n.is_ok(), "{}", n.nodes_description());
            assert_eq!(n.size(), 3);
            assert_eq!(n.myself().ip, "127.0.0.1");
            for (slot, owner) in [(0u16, 0usize), (6000, 1), (16383, 2)] {
                assert_eq!(
                    n.owner(slot).map(|o| o.name),
                    Some(net.nodes[owner].my_name())
                );
                assert_eq!(n.owner(slot).map(|o| o.port), Some(7000 + owner as u16));
            }
            assert_eq!(n.current_epoch, 3);
            assert!(n.nodes().all(|x| !x.has(nf::HANDSHAKE)));
        }
    }

    #[test]
    fn newer_config_epoch_takes_slots_and_stale_claims_get_update() {
        let mut net = Net::new(2);
        net.nodes[0].add_slots(&[1, 2, 3], 0);
        net.nodes[0].set_config_epoch(1, 0);
        net.nodes[1].set_config_epoch(2, 0);
        net.nodes[0].meet("127.0.0.1", 7001, 17001, 0).unwrap();
        let mut now = 0;
        for _ in 0..30 {
            now += 100;
            for n in &mut net.nodes {
                n.tick(now);
            }
            net.run(now);
        }
        assert!(!net.nodes[1].mine(0) && net.nodes[1].owner(2).is_some());
        // Node 1 claims slot 2 with a greater epoch: node 0 gives it up and
        // is told to drop its keys.
        net.nodes[1].add_slots(&[2], now);
        for _ in 0..30 {
            now += 100;
            for n in &mut net.nodes {
                n.tick(now);
            }
            net.run(now);
        }
        assert!(net.nodes[1].mine(2));
        assert_eq!(
            net.nodes[0].owner(2).map(|o| o.name),
            Some(net.nodes[1].my_name())
        );
        assert!(net.nodes[0].mine(1) && net.nodes[0].mine(3));
    }

    #[test]
    fn update_message_moves_slots() {
        let mut c = Cluster::new(settings(7000), 1, 0);
        // Two slots: a master that loses its last one becomes a replica instead.
        c.add_slots(&[5, 6], 0);
        let other = [b'a'; 40];
        let l = c.accept(0);
        // Learn the other node through a MEET, then a PONG on our link.
        let mut h = Header::new(other);
        h.port = 7001;
        h.cport = 17001;
        c.receive(
            l,
            "10.0.0.2",
            "10.0.0.1",
            &Msg {
                header: h.clone(),
                body: Body::Meet(PingBody::default()),
            },
            0,
        );
        c.tick(100);
        let acts = c.take_actions();
        let link = acts
            .iter()
            .find_map(|a| match a {
                Action::Connect { link, .. } => Some(*link),
                _ => None,
            })
            .expect("connects to the met node");
        c.receive(
            link,
            "10.0.0.2",
            "10.0.0.1",
            &Msg {
                header: h.clone(),
                body: Body::Pong(PingBody::default()),
            },
            100,
        );
        assert!(c.node(&other).is_some_and(|n| !n.has(nf::HANDSHAKE)));
        let mut slots = SlotSet::new();
        slots.insert(5);
        c.receive(
            l,
            "10.0.0.2",
            "10.0.0.1",
            &Msg {
                header: h,
                body: Body::Update {
                    config_epoch: 9,
                    nodename: other,
                    slots,
                },
            },
            200,
        );
        assert_eq!(c.owner(5).map(|n| n.name), Some(other));
        assert!(c.take_actions().contains(&Action::DropSlots(vec![5])));
    }

    #[test]
    fn conf_round_trips() {
        let mut c = Cluster::new(settings(7000), 3, 0);
        c.add_slots(&(0..100).collect::<Vec<_>>(), 0);
        c.set_config_epoch(4, 0);
        let conf = c.to_conf();
        let back = Cluster::from_conf(&conf, settings(7000), 9, 0).expect("loads");
        assert_eq!(back.my_name(), c.my_name());
        assert_eq!(back.to_conf().to_string(), conf.to_string());
        assert_eq!(back.myself().config_epoch, 4);
        assert!(back.mine(99) && !back.mine(100));
    }

    #[test]
    fn meet_rejects_bad_addresses_and_pings_on_tick() {
        let mut c = Cluster::new(settings(7000), 3, 0);
        assert_eq!(c.meet("nope", 1, 2, 0), Err(BadAddress));
        assert_eq!(c.meet("127.0.0.1", 70000, 2, 0), Err(BadAddress));
        c.meet("127.0.0.1", 7001, 17001, 0).unwrap();
        c.meet("127.0.0.1", 7001, 17001, 0).unwrap();
        assert_eq!(c.known_nodes(), 2);
        c.tick(100);
        let acts = c.take_actions();
        assert!(matches!(acts[0], Action::Connect { cport: 17001, .. }));
        assert!(matches!(&acts[1], Action::Send { msg, .. } if msg.body.msg_type() == t::MEET));
        // No answer within the handshake timeout: the node is forgotten.
        c.tick(20_000);
        assert_eq!(c.known_nodes(), 1);
    }

    #[test]
    fn state_needs_full_coverage_unless_configured() {
        let mut s = settings(7000);
        let mut c = Cluster::new(s.clone(), 3, 0);
        c.add_slots(&(0..16000).collect::<Vec<_>>(), 5000);
        assert!(!c.is_ok());
        s.require_full_coverage = false;
        c.set_settings(s);
        c.update_state(5000);
        assert!(c.is_ok());
    }
}
