//! Failure detection and failover: Redis 7.0's rules from `cluster.c`, as
//! more methods of [`Cluster`] (a child module, so it shares the node
//! table without widening its API).
//!
//! - **PFAIL**: a node that leaves a PING unanswered (and sends nothing)
//!   for longer than `cluster-node-timeout` (`clusterCron`).
//! - **FAIL**: PFAIL here plus failure reports (PFAIL/FAIL in gossip) from
//!   a majority of the masters serving slots, myself counted when a master
//!   (`markNodeAsFailingIfNeeded`); announced with a FAIL message that every
//!   receiver obeys. Cleared when a replica or a slotless master answers
//!   again, or a master still owning its slots answers after twice the
//!   node timeout (`clearNodeFailureIfNeeded`).
//! - **Elections** (`clusterHandleSlaveFailover`): a replica whose master
//!   is FAIL waits 500 ms + 0..500 ms + 1 s per better-placed sibling
//!   (rank, by replication offset), bumps the current epoch, asks every
//!   node for a vote, and with votes from a majority of the masters takes
//!   its master's slots under that epoch and tells everyone with a PONG.
//!   Masters vote once per epoch, once per failed master per two node
//!   timeouts, and never for a replica whose slots someone holds with a
//!   newer config (`clusterSendFailoverAuthIfNeeded`).
//! - **Manual failover** (CLUSTER FAILOVER): MFSTART makes the master hold
//!   writes and announce its offset flagged PAUSED; once the replica has
//!   applied that much, it runs the election with FORCEACK (masters vote
//!   although its master is up). FORCE skips the offset handshake,
//!   TAKEOVER skips the election too.
//! - **Replica migration** (`clusterHandleSlaveMigration`): a replica of
//!   the master with the most working replicas, the one with the smallest
//!   name, moves to a master left without any.
//!
//! What replication itself does is the server's: it carries out
//! [`Action::Replicate`] and [`Action::BecomePrimary`] and reports the
//! offset and the link with [`Cluster::set_repl_status`].

use super::*;
use crate::msg::{msg_type as t, MFLAG0_FORCEACK, MFLAG0_PAUSED};

/// Failure reports older than this many node timeouts are forgotten.
const FAIL_REPORT_VALIDITY_MULT: u64 = 2;
/// A master still owning slots loses its FAIL flag this many node
/// timeouts after it was set, once it answers again.
const FAIL_UNDO_TIME_MULT: u64 = 2;
/// How long a manual failover may take (ms).
const MF_TIMEOUT: u64 = 5000;
/// The master holds writes for this many manual failover timeouts.
const MF_PAUSE_MULT: u64 = 2;
/// A master must stay orphaned this long before a replica migrates to it.
const SLAVE_MIGRATION_DELAY: u64 = 5000;
/// "Can't fail over" is logged again after this long with the same reason.
const CANT_FAILOVER_RELOG_PERIOD: u64 = 10_000;

/// Why a replica does not fail over yet (Redis's `CLUSTER_CANT_FAILOVER_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum CantFailover {
    #[default]
    None,
    DataAge,
    WaitingDelay,
    Expired,
    WaitingVotes,
}

/// What the server's replication reports each tick.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplStatus {
    /// `master_repl_offset` of a primary, or the primary's offset a replica
    /// has applied (Redis's `replicationGetSlaveOffset`).
    pub offset: u64,
    /// Whether the server follows a primary at all.
    pub replicating: bool,
    /// Whether the link to the primary is up (`master_link_status:up`).
    pub link_up: bool,
    /// Last byte from the primary (ms, 0 = never).
    pub last_io_ms: u64,
    /// When the link went down (ms, 0 = never up).
    pub down_since_ms: u64,
}

/// Election and manual failover state (fields of Redis's `clusterState`).
#[derive(Debug, Default)]
pub(super) struct Failover {
    auth_time: u64,
    auth_count: usize,
    auth_sent: bool,
    auth_rank: usize,
    auth_epoch: u64,
    /// When a manual failover in progress gives up (ms), 0 if none.
    mf_end: u64,
    mf_can_start: bool,
    /// Master side: the replica that asked for the manual failover.
    mf_slave: Option<NodeName>,
    /// Replica side: the offset the paused master announced.
    mf_master_offset: Option<u64>,
    /// Master side: writes are held and the offset is final.
    mf_paused: bool,
    repl: ReplStatus,
    cant_reason: CantFailover,
    cant_logged: u64,
}

impl Cluster {
    /// Takes the server's replication state (call before each
    /// [`Cluster::tick`]): the offset goes into every header we send.
    pub fn set_repl_status(&mut self, r: ReplStatus) {
        let paused = self.fo.mf_paused && self.myself().has(nf::MASTER);
        // While paused, the offset announced is the one taken when writes
        // stopped; nothing may change it until the failover ends.
        if !paused {
            self.me_mut().repl_offset = r.offset;
        }
        self.fo.repl = r;
    }

    /// The server held writes after [`Action::PauseWrites`]; `offset` is
    /// its final replication offset. The replica gets it at once, flagged
    /// PAUSED, as Redis sends a PING right after pausing.
    pub fn writes_paused(&mut self, offset: u64, now: u64) {
        if self.fo.mf_end == 0 || !self.myself().has(nf::MASTER) {
            return;
        }
        self.fo.mf_paused = true;
        self.me_mut().repl_offset = offset;
        if let Some(link) = self
            .fo
            .mf_slave
            .and_then(|s| self.nodes.get(&s))
            .and_then(|n| n.link)
        {
            self.send_ping(link, t::PING, now);
        }
    }

    /// Message flags for a header: PAUSED while we hold writes for a
    /// replica's manual failover.
    pub(super) fn mflags0(&self) -> u8 {
        if self.myself().has(nf::MASTER) && self.fo.mf_end != 0 && self.fo.mf_paused {
            MFLAG0_PAUSED
        } else {
            0
        }
    }

    /// Whether a manual failover is in progress (either side).
    pub fn manual_failover_in_progress(&self) -> bool {
        self.fo.mf_end != 0
    }

    pub(crate) fn log(&mut self, text: String) {
        self.actions.push(Action::Log(text));
    }

    // ---- replicas ------------------------------------------------------

    /// The replicas of `master` (Redis's `master->slaves`), in name order.
    pub fn replicas_of(&self, master: &NodeName) -> Vec<&Node> {
        self.nodes
            .values()
            .filter(|n| n.master == Some(*master) && n.has(nf::SLAVE))
            .collect()
    }

    /// `clusterCountNonFailingSlaves`.
    fn ok_replicas(&self, master: &NodeName) -> usize {
        self.replicas_of(master)
            .iter()
            .filter(|n| !n.has(nf::FAIL))
            .count()
    }

    /// `replica` now follows `master` (`clusterNodeAddSlave`, after
    /// `clusterNodeRemoveSlave` from its old master).
    pub(super) fn attach_replica(&mut self, replica: &NodeName, master: NodeName) {
        let old = self.nodes.get(replica).and_then(|n| n.master);
        if old == Some(master) {
            return;
        }
        if let Some(n) = self.nodes.get_mut(replica) {
            n.master = Some(master);
        }
        if let Some(o) = old {
            self.forget_replica_of(&o);
        }
        if let Some(m) = self.nodes.get_mut(&master) {
            m.flags |= nf::MIGRATE_TO;
        }
    }

    /// A master that lost its last replica stops being a migration target.
    pub(super) fn forget_replica_of(&mut self, master: &NodeName) {
        if self.replicas_of(master).is_empty() {
            if let Some(m) = self.nodes.get_mut(master) {
                m.flags &= !nf::MIGRATE_TO;
            }
        }
    }

    /// CLUSTER REPLICATE after the argument lookup: the errors are Redis's.
    /// `empty` says whether the keyspace holds no key.
    pub fn replicate(&mut self, master: &NodeName, empty: bool, now: u64) -> Result<(), String> {
        let Some(n) = self.nodes.get(master) else {
            return Err(format!("ERR Unknown node {}", name_str(master)));
        };
        if *master == self.myself {
            return Err("ERR Can't replicate myself".into());
        }
        if n.has(nf::SLAVE) {
            return Err("ERR I can only replicate a master, not a replica.".into());
        }
        let me = self.myself();
        if me.has(nf::MASTER) && (!me.slots.is_empty() || !empty) {
            return Err(
                "ERR To set a master the node must be empty and without assigned slots.".into(),
            );
        }
        self.set_master(*master, now);
        self.update_state(now);
        self.save();
        Ok(())
    }

    /// `clusterSetMaster`: myself (slotless) becomes a replica of `master`.
    pub(super) fn set_master(&mut self, master: NodeName, now: u64) {
        if master == self.myself {
            return;
        }
        let me = self.myself;
        if self.myself().has(nf::MASTER) {
            let m = self.me_mut();
            m.flags = (m.flags & !(nf::MASTER | nf::MIGRATE_TO)) | nf::SLAVE;
            // clusterCloseAllSlots
            self.migrating.clear();
            self.importing.clear();
        }
        self.attach_replica(&me, master);
        if let Some(n) = self.nodes.get(&master) {
            let (ip, port) = (n.ip.clone(), n.port);
            self.actions.push(Action::Replicate { ip, port });
        }
        self.reset_manual_failover();
        let _ = now;
        self.save();
    }

    /// `clusterSetNodeAsMaster` for a node other than myself.
    pub(super) fn node_becomes_master(&mut self, name: &NodeName) {
        let Some(n) = self.nodes.get(name) else {
            return;
        };
        if n.has(nf::MASTER) {
            return;
        }
        let old = n.master;
        if let Some(n) = self.nodes.get_mut(name) {
            n.master = None;
            n.flags = (n.flags & !nf::SLAVE) | nf::MASTER;
            if old.is_some() && *name != self.myself {
                n.flags |= nf::MIGRATE_TO;
            }
        }
        if let Some(o) = old {
            self.forget_replica_of(&o);
        }
        self.save();
    }

    // ---- failure detection ---------------------------------------------

    /// `clusterNodeAddFailureReport`: true for a new report.
    fn add_failure_report(&mut self, failing: &NodeName, sender: &NodeName, now: u64) -> bool {
        let Some(n) = self.nodes.get_mut(failing) else {
            return false;
        };
        if let Some(r) = n.fail_reports.iter_mut().find(|r| r.0 == *sender) {
            r.1 = now;
            return false;
        }
        n.fail_reports.push((*sender, now));
        true
    }

    /// `clusterNodeCleanupFailureReports`.
    fn cleanup_failure_reports(&mut self, name: &NodeName, now: u64) {
        let max = self.settings.node_timeout * FAIL_REPORT_VALIDITY_MULT;
        if let Some(n) = self.nodes.get_mut(name) {
            n.fail_reports.retain(|r| now.saturating_sub(r.1) <= max);
        }
    }

    /// `clusterNodeDelFailureReport`: true when there was one.
    fn del_failure_report(&mut self, name: &NodeName, sender: &NodeName, now: u64) -> bool {
        let Some(n) = self.nodes.get_mut(name) else {
            return false;
        };
        let before = n.fail_reports.len();
        n.fail_reports.retain(|r| r.0 != *sender);
        if n.fail_reports.len() == before {
            return false;
        }
        self.cleanup_failure_reports(name, now);
        true
    }

    /// CLUSTER COUNT-FAILURE-REPORTS (`clusterNodeFailureReportsCount`).
    pub fn failure_reports(&mut self, name: &NodeName, now: u64) -> usize {
        self.cleanup_failure_reports(name, now);
        self.nodes.get(name).map_or(0, |n| n.fail_reports.len())
    }

    /// Reports sent by a node that is being deleted go with it.
    pub(super) fn drop_reports_from(&mut self, sender: &NodeName) {
        for n in self.nodes.values_mut() {
            n.fail_reports.retain(|r| r.0 != *sender);
        }
        if self.fo.mf_slave == Some(*sender) {
            self.reset_manual_failover();
        }
    }

    /// `markNodeAsFailingIfNeeded`.
    fn mark_failing_if_needed(&mut self, name: &NodeName, now: u64) {
        let quorum = self.size / 2 + 1;
        let Some(n) = self.nodes.get(name) else {
            return;
        };
        if !n.has(nf::PFAIL) || n.has(nf::FAIL) {
            return;
        }
        let mut failures = self.failure_reports(name, now);
        if self.myself().has(nf::MASTER) {
            failures += 1;
        }
        if failures < quorum {
            return;
        }
        self.log(format!(
            "Marking node {} as failing (quorum reached).",
            name_str(name)
        ));
        if let Some(n) = self.nodes.get_mut(name) {
            n.flags = (n.flags & !nf::PFAIL) | nf::FAIL;
            n.fail_time = now;
        }
        self.send_fail(name);
        self.update_state(now);
        self.save();
    }

    /// `clearNodeFailureIfNeeded`: `name` answered again while FAIL.
    fn clear_failure_if_needed(&mut self, name: &NodeName, now: u64) {
        let undo = self.settings.node_timeout * FAIL_UNDO_TIME_MULT;
        let Some(n) = self.nodes.get(name) else {
            return;
        };
        let replica = n.has(nf::SLAVE);
        let why = if replica || n.slots.is_empty() {
            Some(if replica {
                "replica is reachable again."
            } else {
                "master without slots is reachable again."
            })
        } else if n.has(nf::MASTER) && now.saturating_sub(n.fail_time) > undo {
            Some("is reachable again and nobody is serving its slots after some time.")
        } else {
            None
        };
        if let Some(why) = why {
            self.log(format!(
                "Clear FAIL state for node {}: {why}",
                name_str(name)
            ));
            if let Some(n) = self.nodes.get_mut(name) {
                n.flags &= !nf::FAIL;
            }
            self.update_state(now);
            self.save();
        }
    }

    /// A PONG arrived on our link to `name`: PFAIL ends at once, FAIL
    /// perhaps (the PONG branch of `clusterProcessPacket`).
    pub(super) fn pong_clears_failure(&mut self, name: &NodeName, now: u64) {
        let Some(n) = self.nodes.get_mut(name) else {
            return;
        };
        if n.has(nf::PFAIL) {
            n.flags &= !nf::PFAIL;
            self.update_state(now);
            self.save();
        } else if n.has(nf::FAIL) {
            self.clear_failure_if_needed(name, now);
        }
    }

    /// The failure-report part of `clusterProcessGossipSection`, for one
    /// entry about a node we know (`about` is not myself).
    pub(super) fn gossip_failure(
        &mut self,
        sender: &NodeName,
        about: &NodeName,
        flags: u16,
        now: u64,
    ) {
        let sender_master = self.nodes.get(sender).is_some_and(|n| n.has(nf::MASTER));
        if !sender_master || *about == self.myself {
            return;
        }
        if flags & (nf::FAIL | nf::PFAIL) != 0 {
            if self.add_failure_report(about, sender, now) {
                self.log(format!(
                    "Node {} reported node {} as not reachable.",
                    name_str(sender),
                    name_str(about)
                ));
            }
            self.mark_failing_if_needed(about, now);
        } else if self.del_failure_report(about, sender, now) {
            self.log(format!(
                "Node {} reported node {} is back online.",
                name_str(sender),
                name_str(about)
            ));
        }
    }

    /// Whether gossip may move our last pong time for `name` forward:
    /// only without failure reports about it.
    pub(super) fn no_failure_reports(&mut self, name: &NodeName, now: u64) -> bool {
        self.failure_reports(name, now) == 0
    }

    /// `clusterBroadcastMessage`: to every node we have a link to.
    fn broadcast(&mut self, body: Body, mflags0: u8) {
        let links: Vec<LinkId> = self
            .nodes
            .values()
            .filter(|n| n.name != self.myself && !n.has(nf::HANDSHAKE))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send_with_flags(l, body.clone(), mflags0);
        }
    }

    /// `clusterSendFail`.
    fn send_fail(&mut self, about: &NodeName) {
        self.broadcast(Body::Fail { about: *about }, 0);
    }

    /// A FAIL message from a known `sender`.
    pub(super) fn fail_received(&mut self, sender: Option<NodeName>, about: &NodeName, now: u64) {
        let Some(sender) = sender else {
            self.log(format!(
                "Ignoring FAIL message from unknown node about {}",
                name_str(about)
            ));
            return;
        };
        let Some(n) = self.nodes.get_mut(about) else {
            return;
        };
        if n.has(nf::FAIL | nf::MYSELF) {
            return;
        }
        n.flags = (n.flags & !nf::PFAIL) | nf::FAIL;
        n.fail_time = now;
        self.log(format!(
            "FAIL message received from {} about {}",
            name_str(&sender),
            name_str(about)
        ));
        self.update_state(now);
        self.save();
    }

    // ---- the cron's part -------------------------------------------------

    /// The node-timeout checks of `clusterCron` for one node, after the
    /// reconnect and the periodic PING: pings the replica during its manual
    /// failover, and flags PFAIL. True when the state should be recomputed.
    pub(super) fn cron_check_node(&mut self, name: &NodeName, now: u64) -> bool {
        let timeout = self.settings.node_timeout;
        let Some(n) = self.nodes.get(name) else {
            return false;
        };
        if self.fo.mf_end != 0 && self.myself().has(nf::MASTER) && self.fo.mf_slave == Some(*name) {
            if let Some(link) = n.link {
                self.send_ping(link, t::PING, now);
                return false;
            }
        }
        if n.ping_sent == 0 {
            return false;
        }
        let ping_delay = now.saturating_sub(n.ping_sent);
        let data_delay = now.saturating_sub(n.data_received);
        if ping_delay.min(data_delay) > timeout && !n.has(nf::PFAIL | nf::FAIL) {
            if let Some(n) = self.nodes.get_mut(name) {
                n.flags |= nf::PFAIL;
            }
            return true;
        }
        false
    }

    /// The orphaned-master count of `clusterCron` for one node: `(orphaned,
    /// ok replicas)`, both only counted when myself is a replica.
    pub(super) fn cron_orphan(&mut self, name: &NodeName, now: u64) -> (bool, usize) {
        let Some(n) = self.nodes.get(name) else {
            return (false, 0);
        };
        if !self.myself().has(nf::SLAVE) || !n.has(nf::MASTER) || n.has(nf::FAIL) {
            return (false, 0);
        }
        let ok = self.ok_replicas(name);
        let _ = now;
        (ok == 0 && !n.slots.is_empty() && n.has(nf::MIGRATE_TO), ok)
    }

    /// The end of `clusterCron`: follow our master if replication is off,
    /// time out a manual failover, run elections and replica migration.
    pub(super) fn failover_cron(
        &mut self,
        now: u64,
        orphaned: usize,
        max_slaves: usize,
        this_slaves: usize,
    ) {
        let me = self.myself();
        if me.has(nf::SLAVE) && !self.fo.repl.replicating {
            if let Some(m) = me.master.and_then(|m| self.nodes.get(&m)) {
                if !m.has(nf::NOADDR) && !m.ip.is_empty() {
                    let (ip, port) = (m.ip.clone(), m.port);
                    self.actions.push(Action::Replicate { ip, port });
                }
            }
        }
        self.manual_failover_check_timeout(now);
        if self.myself().has(nf::SLAVE) {
            self.handle_manual_failover(now);
            self.handle_slave_failover(now);
            if orphaned > 0
                && max_slaves >= 2
                && this_slaves == max_slaves
                && self.settings.allow_replica_migration
            {
                self.handle_slave_migration(max_slaves, now);
            }
        }
    }

    // ---- elections ----------------------------------------------------

    /// `clusterGetSlaveRank`.
    fn slave_rank(&self) -> usize {
        let me = self.myself();
        let Some(master) = me.master else {
            return 0;
        };
        let mine = self.fo.repl.offset;
        self.replicas_of(&master)
            .iter()
            .filter(|r| r.name != self.myself && !r.has(nf::NOFAILOVER) && r.repl_offset > mine)
            .count()
    }

    /// `clusterLogCantFailover`.
    fn log_cant_failover(&mut self, reason: CantFailover, now: u64) {
        if reason == self.fo.cant_reason
            && now.saturating_sub(self.fo.cant_logged) < CANT_FAILOVER_RELOG_PERIOD
        {
            return;
        }
        self.fo.cant_reason = reason;
        let quiet = self.settings.node_timeout + 5000;
        if let Some(m) = self.myself().master.and_then(|m| self.nodes.get(&m)) {
            if m.has(nf::FAIL) && now.saturating_sub(m.fail_time) < quiet {
                return;
            }
        }
        let msg = match reason {
            CantFailover::DataAge => "Disconnected from master for longer than allowed. Please check the 'cluster-replica-validity-factor' configuration option.",
            CantFailover::WaitingDelay => "Waiting the delay before I can start a new failover.",
            CantFailover::Expired => "Failover attempt expired.",
            CantFailover::WaitingVotes => "Waiting for votes, but majority still not reached.",
            CantFailover::None => "Unknown reason code.",
        };
        self.fo.cant_logged = now;
        self.log(format!("Currently unable to failover: {msg}"));
    }

    /// `clusterHandleSlaveFailover`.
    pub(super) fn handle_slave_failover(&mut self, now: u64) {
        let timeout = self.settings.node_timeout;
        let auth_age = now.saturating_sub(self.fo.auth_time);
        let quorum = self.size / 2 + 1;
        let manual = self.fo.mf_end != 0 && self.fo.mf_can_start;
        let auth_timeout = (timeout * 2).max(2000);
        let auth_retry = auth_timeout * 2;
        let me = self.myself();
        let master = me.master.and_then(|m| self.nodes.get(&m));
        let can = match master {
            Some(m) => {
                me.has(nf::SLAVE)
                    && (m.has(nf::FAIL) || manual)
                    && (!self.settings.replica_no_failover || manual)
                    && !m.slots.is_empty()
            }
            None => false,
        };
        if !can {
            self.fo.cant_reason = CantFailover::None;
            return;
        }
        // How long our data has been stale, less the node timeout it
        // takes to notice the master is down.
        let r = &self.fo.repl;
        let since = if r.link_up {
            r.last_io_ms
        } else {
            r.down_since_ms
        };
        let mut data_age = now.saturating_sub(since);
        if data_age > timeout {
            data_age -= timeout;
        }
        let factor = self.settings.replica_validity_factor;
        if factor != 0 && data_age > self.settings.repl_ping_period + timeout * factor && !manual {
            self.log_cant_failover(CantFailover::DataAge, now);
            return;
        }
        if auth_age > auth_retry {
            self.fo.auth_time = now + 500 + self.rand() % 500;
            self.fo.auth_count = 0;
            self.fo.auth_sent = false;
            self.fo.auth_rank = self.slave_rank();
            self.fo.auth_time += self.fo.auth_rank as u64 * 1000;
            if self.fo.mf_end != 0 {
                self.fo.auth_time = now;
                self.fo.auth_rank = 0;
            }
            self.log(format!(
                "Start of election delayed for {} milliseconds (rank #{}, offset {}).",
                self.fo.auth_time.saturating_sub(now),
                self.fo.auth_rank,
                self.fo.repl.offset
            ));
            self.broadcast_pong_local_replicas(now);
            // A manual failover starts at once (Redis: the next beforeSleep).
            if self.fo.mf_end == 0 {
                return;
            }
        }
        if !self.fo.auth_sent && self.fo.mf_end == 0 {
            let rank = self.slave_rank();
            if rank > self.fo.auth_rank {
                let added = (rank - self.fo.auth_rank) as u64 * 1000;
                self.fo.auth_time += added;
                self.fo.auth_rank = rank;
                self.log(format!(
                    "Replica rank updated to #{rank}, added {added} milliseconds of delay."
                ));
            }
        }
        if now < self.fo.auth_time {
            self.log_cant_failover(CantFailover::WaitingDelay, now);
            return;
        }
        let auth_age = now.saturating_sub(self.fo.auth_time);
        if auth_age > auth_timeout {
            self.reset_failover_state();
            self.log_cant_failover(CantFailover::Expired, now);
            return;
        }
        if !self.fo.auth_sent {
            self.current_epoch += 1;
            self.fo.auth_epoch = self.current_epoch;
            self.log(format!(
                "Starting a failover election for epoch {}.",
                self.current_epoch
            ));
            let flags = if self.fo.mf_end != 0 {
                MFLAG0_FORCEACK
            } else {
                0
            };
            self.broadcast(Body::FailoverAuthRequest, flags);
            self.fo.auth_sent = true;
            self.update_state(now);
            self.save();
            return;
        }
        if self.fo.auth_count >= quorum {
            self.log("Failover election won: I'm the new master.".into());
            if self.myself().config_epoch < self.fo.auth_epoch {
                let e = self.fo.auth_epoch;
                self.me_mut().config_epoch = e;
                self.log(format!("configEpoch set to {e} after successful failover"));
            }
            self.replace_your_master(now);
        } else {
            self.log_cant_failover(CantFailover::WaitingVotes, now);
        }
    }

    /// `clusterBroadcastPong(CLUSTER_BROADCAST_LOCAL_SLAVES)`: our offset
    /// to the other replicas of our master, so they can rank themselves.
    fn broadcast_pong_local_replicas(&mut self, now: u64) {
        let Some(master) = self.myself().master else {
            return;
        };
        let links: Vec<LinkId> = self
            .replicas_of(&master)
            .iter()
            .filter(|n| n.name != self.myself && !n.has(nf::HANDSHAKE))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            self.send_ping(l, t::PONG, now);
        }
    }

    /// `clusterFailoverReplaceYourMaster`: myself takes the master's slots
    /// (the caller already set a new config epoch) and tells everyone.
    fn replace_your_master(&mut self, now: u64) {
        let me = self.myself;
        let Some(old) = self.myself().master else {
            return;
        };
        if self.myself().has(nf::MASTER) {
            return;
        }
        if let Some(m) = self.nodes.get_mut(&me) {
            m.master = None;
            m.flags = (m.flags & !nf::SLAVE) | nf::MASTER;
        }
        self.forget_replica_of(&old);
        self.actions.push(Action::BecomePrimary);
        let slots: Vec<u16> = self
            .nodes
            .get(&old)
            .map(|n| n.slots.iter().collect())
            .unwrap_or_default();
        for s in slots {
            self.set_owner(s, Some(me));
        }
        self.update_state(now);
        self.save();
        self.broadcast_pong(now);
        self.reset_manual_failover();
        self.reset_failover_state();
    }

    /// Forgets the last election (Redis's `resetFailoverState`, added after
    /// 7.0 by redis/redis d5891d3a2; 7.0.15 lacks it). Without it a replica
    /// that won an election, became a replica again and saw its new master
    /// fail within the old election's timeout counted the old votes as new
    /// ones and "won" at its old epoch, which every other node refused: its
    /// slots stayed with the dead master (seen in the mixed-cluster test).
    fn reset_failover_state(&mut self) {
        self.fo.auth_time = 0;
        self.fo.auth_count = 0;
        self.fo.auth_sent = false;
        self.fo.auth_rank = 0;
        self.fo.auth_epoch = 0;
    }

    /// `clusterSendFailoverAuthIfNeeded`: vote for `node` if the rules allow.
    pub(super) fn auth_request_received(&mut self, node: &NodeName, h: &Header, now: u64) {
        let me = self.myself();
        if me.has(nf::SLAVE) || me.slots.is_empty() {
            return;
        }
        let who = name_str(node);
        if h.current_epoch < self.current_epoch {
            let cur = self.current_epoch;
            self.log(format!(
                "Failover auth denied to {who}: reqEpoch ({}) < curEpoch({cur})",
                h.current_epoch
            ));
            return;
        }
        if self.last_vote_epoch == self.current_epoch {
            let cur = self.current_epoch;
            self.log(format!(
                "Failover auth denied to {who}: already voted for epoch {cur}"
            ));
            return;
        }
        let force = h.mflags[0] & MFLAG0_FORCEACK != 0;
        let Some(n) = self.nodes.get(node) else {
            return;
        };
        let master = n.master.and_then(|m| self.nodes.get(&m));
        if n.has(nf::MASTER) {
            self.log(format!(
                "Failover auth denied to {who}: it is a master node"
            ));
            return;
        }
        let Some(master) = master else {
            self.log(format!(
                "Failover auth denied to {who}: I don't know its master"
            ));
            return;
        };
        if !master.has(nf::FAIL) && !force {
            self.log(format!("Failover auth denied to {who}: its master is up"));
            return;
        }
        let window = self.settings.node_timeout * 2;
        let since = now.saturating_sub(master.voted_time);
        if since < window {
            self.log(format!(
                "Failover auth denied to {who}: can't vote about this master before {} milliseconds",
                window - since
            ));
            return;
        }
        let master_name = master.name;
        for slot in h.myslots.iter() {
            if self.unclaimed(slot) {
                continue;
            }
            let Some(owner) = self.owner(slot) else {
                continue;
            };
            if owner.config_epoch <= h.config_epoch {
                continue;
            }
            let e = owner.config_epoch;
            self.log(format!(
                "Failover auth denied to {who}: slot {slot} epoch ({e}) > reqEpoch ({})",
                h.config_epoch
            ));
            return;
        }
        self.last_vote_epoch = self.current_epoch;
        if let Some(m) = self.nodes.get_mut(&master_name) {
            m.voted_time = now;
        }
        self.save();
        if let Some(link) = self.nodes.get(node).and_then(|n| n.link) {
            self.send(link, Body::FailoverAuthAck);
        }
        let cur = self.current_epoch;
        self.log(format!("Failover auth granted to {who} for epoch {cur}"));
    }

    /// A FAILOVER_AUTH_ACK: a vote counts from a master serving slots that
    /// has seen our election's epoch.
    pub(super) fn auth_ack_received(&mut self, sender: &NodeName, h: &Header, now: u64) {
        let Some(n) = self.nodes.get(sender) else {
            return;
        };
        if n.has(nf::MASTER) && !n.slots.is_empty() && h.current_epoch >= self.fo.auth_epoch {
            self.fo.auth_count += 1;
            // Perhaps the quorum: decide now rather than at the next tick.
            self.handle_slave_failover(now);
        }
    }

    // ---- manual failover -----------------------------------------------

    /// `resetManualFailover`: a master that held writes lets them go.
    pub(super) fn reset_manual_failover(&mut self) {
        if self.fo.mf_slave.is_some() {
            self.actions.push(Action::ResumeWrites);
        }
        self.fo.mf_end = 0;
        self.fo.mf_can_start = false;
        self.fo.mf_slave = None;
        self.fo.mf_master_offset = None;
        self.fo.mf_paused = false;
    }

    /// `manualFailoverCheckTimeout`.
    fn manual_failover_check_timeout(&mut self, now: u64) {
        if self.fo.mf_end != 0 && self.fo.mf_end < now {
            self.log("Manual failover timed out.".into());
            self.reset_manual_failover();
        }
    }

    /// `clusterHandleManualFailover`: the replica has applied everything
    /// the paused master announced.
    fn handle_manual_failover(&mut self, _now: u64) {
        if self.fo.mf_end == 0 || self.fo.mf_can_start {
            return;
        }
        let Some(offset) = self.fo.mf_master_offset else {
            return;
        };
        if offset == self.fo.repl.offset {
            self.fo.mf_can_start = true;
            self.log("All master replication stream processed, manual failover can start.".into());
        }
    }

    /// A header from a known sender: during our manual failover, our
    /// master's first PAUSED offset is the one to reach.
    pub(super) fn mf_offset_received(&mut self, sender: &NodeName, h: &Header, now: u64) {
        let me = self.myself();
        if self.fo.mf_end != 0
            && me.has(nf::SLAVE)
            && me.master == Some(*sender)
            && h.mflags[0] & MFLAG0_PAUSED != 0
            && self.fo.mf_master_offset.is_none()
        {
            self.fo.mf_master_offset = Some(h.offset);
            self.log(format!(
                "Received replication offset for paused master manual failover: {}",
                h.offset
            ));
            self.handle_manual_failover(now);
            self.handle_slave_failover(now);
        }
    }

    /// MFSTART: one of our replicas asks us to hold writes for its manual
    /// failover.
    pub(super) fn mfstart_received(&mut self, sender: Option<NodeName>, now: u64) {
        let Some(s) = sender else {
            return;
        };
        let ours = self
            .nodes
            .get(&s)
            .is_some_and(|n| n.master == Some(self.myself));
        if !ours {
            return;
        }
        self.reset_manual_failover();
        self.fo.mf_end = now + MF_TIMEOUT;
        self.fo.mf_slave = Some(s);
        self.actions.push(Action::PauseWrites {
            until: now + MF_TIMEOUT * MF_PAUSE_MULT,
        });
        self.log(format!(
            "Manual failover requested by replica {}.",
            name_str(&s)
        ));
    }

    /// CLUSTER FAILOVER [FORCE|TAKEOVER] after parsing; the error is the
    /// reply, as Redis words it.
    pub fn failover(&mut self, force: bool, takeover: bool, now: u64) -> Result<(), &'static str> {
        let me = self.myself();
        if me.has(nf::MASTER) {
            return Err("ERR You should send CLUSTER FAILOVER to a replica");
        }
        let Some(master) = me.master.and_then(|m| self.nodes.get(&m)) else {
            return Err("ERR I'm a replica but my master is unknown to me");
        };
        if !force && (master.has(nf::FAIL) || master.link.is_none()) {
            return Err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE");
        }
        let master_link = master.link;
        self.reset_manual_failover();
        self.fo.mf_end = now + MF_TIMEOUT;
        if takeover {
            self.log("Taking over the master (user request).".into());
            self.bump_epoch();
            self.replace_your_master(now);
        } else if force {
            self.log("Forced failover user request accepted.".into());
            self.fo.mf_can_start = true;
        } else {
            self.log("Manual failover user request accepted.".into());
            if let Some(link) = master_link {
                self.send(link, Body::MfStart);
            }
        }
        Ok(())
    }

    // ---- replica migration -------------------------------------------

    /// `clusterHandleSlaveMigration`.
    fn handle_slave_migration(&mut self, max_slaves: usize, now: u64) {
        if !self.ok {
            return;
        }
        let Some(mymaster) = self.myself().master else {
            return;
        };
        let ok_here = self
            .replicas_of(&mymaster)
            .iter()
            .filter(|r| !r.has(nf::FAIL | nf::PFAIL))
            .count();
        if ok_here as u64 <= self.settings.migration_barrier {
            return;
        }
        let mut candidate = self.myself;
        let mut target: Option<NodeName> = None;
        let names: Vec<NodeName> = self.nodes.keys().copied().collect();
        for name in names {
            let Some(n) = self.nodes.get(&name) else {
                continue;
            };
            let mut orphaned = !(n.has(nf::SLAVE) || n.has(nf::FAIL)) && n.has(nf::MIGRATE_TO);
            let ok = if n.has(nf::MASTER) {
                self.ok_replicas(&name)
            } else {
                0
            };
            if ok > 0 {
                orphaned = false;
            }
            let has_slots = !n.slots.is_empty();
            if ok == max_slaves {
                for r in self.replicas_of(&name) {
                    if r.name < candidate {
                        candidate = r.name;
                    }
                }
            }
            if let Some(n) = self.nodes.get_mut(&name) {
                if orphaned {
                    if target.is_none() && has_slots {
                        target = Some(name);
                    }
                    if n.orphaned_time == 0 {
                        n.orphaned_time = now;
                    }
                } else {
                    n.orphaned_time = 0;
                }
            }
        }
        let Some(target) = target else {
            return;
        };
        let since = self.nodes.get(&target).map_or(0, |n| n.orphaned_time);
        if candidate == self.myself && now.saturating_sub(since) > SLAVE_MIGRATION_DELAY {
            self.log(format!(
                "Migrating to orphaned master {}",
                name_str(&target)
            ));
            self.set_master(target, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const TIMEOUT: u64 = 1000;

    /// In-memory nodes whose messages go through the codec, with a
    /// simulated replication per node (who it follows, its offset) and
    /// nodes that can be killed (kill -9: links drop, connects fail).
    struct Net {
        nodes: Vec<Cluster>,
        pairs: HashMap<(usize, LinkId), (usize, LinkId)>,
        ports: Vec<u16>,
        dead: HashSet<usize>,
        /// Whom each node replicates (by index), from its actions.
        follows: Vec<Option<usize>>,
        offsets: Vec<u64>,
        died_at: Vec<u64>,
        /// Every role action, by node.
        roles: Vec<Vec<Action>>,
        now: u64,
    }

    impl Net {
        fn new(n: usize) -> Net {
            let ports: Vec<u16> = (0..n as u16).map(|i| 7000 + i).collect();
            let nodes = ports
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let s = Settings {
                        node_timeout: TIMEOUT,
                        require_full_coverage: true,
                        port: *p,
                        pport: *p,
                        cport: p + 10000,
                        replica_validity_factor: 10,
                        repl_ping_period: 10_000,
                        migration_barrier: 1,
                        allow_replica_migration: true,
                        ..Default::default()
                    };
                    Cluster::new(s, i as u64 * 31 + 5, 0)
                })
                .collect();
            Net {
                nodes,
                pairs: HashMap::new(),
                ports,
                dead: HashSet::new(),
                follows: vec![None; n],
                offsets: vec![0; n],
                died_at: vec![0; n],
                roles: vec![Vec::new(); n],
                now: 0,
            }
        }

        fn index_of_port(&self, port: u16) -> Option<usize> {
            self.ports.iter().position(|p| *p == port)
        }

        fn run(&mut self) {
            let now = self.now;
            for _ in 0..100 {
                let mut quiet = true;
                for i in 0..self.nodes.len() {
                    if self.dead.contains(&i) {
                        continue;
                    }
                    for a in self.nodes[i].take_actions() {
                        quiet = false;
                        match a {
                            Action::Connect { link, cport, .. } => {
                                match self.ports.iter().position(|p| p + 10000 == cport) {
                                    Some(j) if !self.dead.contains(&j) => {
                                        let peer = self.nodes[j].accept(now);
                                        self.pairs.insert((i, link), (j, peer));
                                        self.pairs.insert((j, peer), (i, link));
                                    }
                                    _ => self.nodes[i].link_closed(link),
                                }
                            }
                            Action::Send { link, msg } => {
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
                            Action::Replicate { port, .. } => {
                                self.follows[i] = self.index_of_port(port);
                                self.roles[i].push(Action::Replicate {
                                    ip: String::new(),
                                    port,
                                });
                            }
                            Action::BecomePrimary => {
                                self.follows[i] = None;
                                self.roles[i].push(Action::BecomePrimary);
                            }
                            Action::PauseWrites { until } => {
                                self.roles[i].push(Action::PauseWrites { until });
                                let off = self.offsets[i];
                                self.nodes[i].writes_paused(off, now);
                            }
                            a @ Action::ResumeWrites => self.roles[i].push(a),
                            _ => {}
                        }
                    }
                }
                if quiet {
                    return;
                }
            }
        }

        fn tick(&mut self) {
            self.now += 100;
            let now = self.now;
            for i in 0..self.nodes.len() {
                if self.dead.contains(&i) {
                    continue;
                }
                let master = self.follows[i];
                let up = master.is_some_and(|m| !self.dead.contains(&m));
                let status = ReplStatus {
                    offset: self.offsets[i],
                    replicating: master.is_some(),
                    link_up: up,
                    last_io_ms: if up { now } else { 0 },
                    down_since_ms: master.map_or(0, |m| self.died_at[m]),
                };
                self.nodes[i].set_repl_status(status);
                self.nodes[i].tick(now);
            }
            self.run();
        }

        fn ticks(&mut self, ms: u64) {
            for _ in 0..ms / 100 {
                self.tick();
            }
        }

        /// Ticks until `f` holds or `ms` pass; whether it held.
        fn until(&mut self, ms: u64, f: impl Fn(&Net) -> bool) -> bool {
            for _ in 0..ms / 100 {
                if f(self) {
                    return true;
                }
                self.tick();
            }
            f(self)
        }

        fn kill(&mut self, i: usize) {
            self.dead.insert(i);
            self.died_at[i] = self.now;
            let gone: Vec<_> = self
                .pairs
                .iter()
                .filter(|(k, _)| k.0 == i)
                .map(|(k, v)| (*k, *v))
                .collect();
            for (k, (j, pl)) in gone {
                self.pairs.remove(&k);
                self.pairs.remove(&(j, pl));
                self.nodes[j].link_closed(pl);
            }
            // Whatever it had queued is lost with it.
            let _ = self.nodes[i].take_actions();
        }

        /// A killed node comes back with the state it had (nodes.conf).
        fn revive(&mut self, i: usize) {
            let conf = self.nodes[i].to_conf();
            let settings = self.nodes[i].settings.clone();
            self.nodes[i] =
                Cluster::from_conf(&conf, settings, 99 + i as u64, self.now).expect("loads");
            self.follows[i] = None;
            self.dead.remove(&i);
        }

        fn name(&self, i: usize) -> NodeName {
            self.nodes[i].my_name()
        }

        /// Masters 0..m with the slots split evenly, replicas m..n of
        /// master `i % m`, everyone met and agreed.
        fn cluster(n: usize, m: usize) -> Net {
            let mut net = Net::new(n);
            let per = SLOTS / m;
            for i in 0..m {
                let end = if i == m - 1 { SLOTS } else { (i + 1) * per };
                let slots: Vec<u16> = (i * per..end).map(|s| s as u16).collect();
                net.nodes[i].add_slots(&slots, 0);
                net.nodes[i].set_config_epoch(i as u64 + 1, 0);
            }
            for j in 1..n {
                let p = net.ports[j] as i64;
                net.nodes[0]
                    .meet("127.0.0.1", p, p + 10000, 0)
                    .expect("meets");
            }
            assert!(net.until(20_000, |net| net
                .nodes
                .iter()
                .all(|c| c.known_nodes() == n && c.is_ok())));
            for r in m..n {
                let master = net.name(r % m);
                let now = net.now;
                net.nodes[r]
                    .replicate(&master, true, now)
                    .expect("replicates");
            }
            net.run();
            assert!(net.until(10_000, |net| (m..n).all(|r| {
                let me = net.name(r);
                net.nodes
                    .iter()
                    .all(|c| c.node(&me).is_some_and(|x| x.has(nf::SLAVE)))
            })));
            net
        }

        fn owner_everywhere(&self, slot: u16, who: usize) -> bool {
            let name = self.name(who);
            (0..self.nodes.len())
                .filter(|i| !self.dead.contains(i))
                .all(|i| self.nodes[i].owner(slot).is_some_and(|o| o.name == name))
        }
    }

    #[test]
    fn replicas_follow_their_masters() {
        let net = Net::cluster(6, 3);
        for r in 3..6 {
            assert_eq!(net.follows[r], Some(r - 3));
            let me = net.nodes[r].myself();
            assert!(me.has(nf::SLAVE) && !me.has(nf::MASTER));
            assert_eq!(me.master, Some(net.name(r - 3)));
            // A replica advertises its master's slots and epoch.
            assert_eq!(net.nodes[0].replicas_of(&net.name(r - 3)).len(), 1);
        }
        let line = net.nodes[0].nodes_description();
        assert_eq!(line.matches(" slave ").count(), 3, "{line}");
    }

    #[test]
    fn replicate_refuses_as_redis_does() {
        let mut net = Net::cluster(4, 3);
        let now = net.now;
        let (m0, r3) = (net.name(0), net.name(3));
        let me = net.name(1);
        assert_eq!(
            net.nodes[1].replicate(&m0, true, now),
            Err("ERR To set a master the node must be empty and without assigned slots.".into())
        );
        assert_eq!(
            net.nodes[1].replicate(&me, true, now),
            Err("ERR Can't replicate myself".into())
        );
        assert_eq!(
            net.nodes[1].replicate(&r3, true, now),
            Err("ERR I can only replicate a master, not a replica.".into())
        );
        assert_eq!(
            net.nodes[1].failover(false, false, now),
            Err("ERR You should send CLUSTER FAILOVER to a replica")
        );
    }

    #[test]
    fn dead_master_is_failed_over_to_its_replica() {
        let mut net = Net::cluster(6, 3);
        let old_epoch = net.nodes[3].current_epoch;
        net.kill(0);
        let (m0, r3) = (net.name(0), net.name(3));
        // PFAIL first at every node, then FAIL by majority, then the election.
        assert!(net.until(15_000, |net| net.owner_everywhere(0, 3)));
        for i in 1..6 {
            let c = &net.nodes[i];
            assert!(c.node(&m0).is_some_and(|n| n.has(nf::FAIL)), "{i}");
            assert!(c.node(&r3).is_some_and(|n| n.has(nf::MASTER)));
        }
        assert!(net.roles[3].contains(&Action::BecomePrimary));
        assert!(net.nodes[3].myself().config_epoch > old_epoch);
        assert!(net.until(5_000, |net| (1..6).all(|i| net.nodes[i].is_ok())));
        // The old master returns and becomes the replica of the new one.
        net.revive(0);
        assert!(net.until(10_000, |net| net.follows[0] == Some(3)));
        let me = net.nodes[0].myself();
        assert!(me.has(nf::SLAVE) && me.master == Some(r3) && me.slots.is_empty());
        assert!(net.until(10_000, |net| (1..6)
            .all(|i| net.nodes[i].node(&m0).is_some_and(|n| !n.has(nf::FAIL)))));
    }

    #[test]
    fn a_master_cut_off_with_the_minority_waits_before_serving_again() {
        let mut net = Net::cluster(3, 3);
        net.kill(1);
        net.kill(2);
        // Alone it is a minority of the masters: down after the timeout,
        // although nobody could mark the others FAIL.
        assert!(net.until(10_000, |net| !net.nodes[0].is_ok()));
        let (n1, n2) = (net.name(1), net.name(2));
        assert!([n1, n2].iter().all(|n| net.nodes[0]
            .node(n)
            .is_some_and(|x| x.has(nf::PFAIL) && !x.has(nf::FAIL))));
        net.revive(1);
        net.revive(2);
        assert!(net.until(10_000, |net| [n1, n2].iter().all(|n| net.nodes[0]
            .node(n)
            .is_some_and(|x| !x.has(nf::PFAIL | nf::FAIL)))));
        let healed = net.now;
        assert!(net.until(10_000, |net| net.nodes[0].is_ok()));
        // Redis's rejoin delay: the node timeout, clamped to 0.5-5 s.
        assert!(
            net.now - healed >= TIMEOUT - 100,
            "ok again {} ms after the partition healed",
            net.now - healed
        );
    }

    #[test]
    fn a_slot_its_owner_stopped_claiming_goes_to_a_claimer_with_an_older_epoch() {
        // Node 2 (epoch 3) drops its last slot; node 1 (epoch 2) takes it.
        // Node 0 saw node 2 stop claiming it, so the lower epoch wins
        // there too (7.0.15's owner_not_claiming_slot).
        let mut net = Net::cluster(3, 3);
        let now = net.now;
        net.nodes[2].del_slots(&[16383], now);
        net.ticks(3000);
        // The others keep the binding meanwhile (no CLUSTERDOWN).
        let n2 = net.name(2);
        assert!((0..2).all(|i| net.nodes[i].owner(16383).is_some_and(|o| o.name == n2)));
        net.nodes[1].del_slots(&[16383], now);
        net.nodes[1].add_slots(&[16383], now);
        assert!(net.until(10_000, |net| net.owner_everywhere(16383, 1)));
    }

    #[test]
    fn failure_needs_reports_from_a_majority_of_masters() {
        let mut net = Net::cluster(6, 3);
        net.kill(5);
        let r5 = net.name(5);
        assert!(net.until(10_000, |net| (0..5)
            .all(|i| net.nodes[i].node(&r5).is_some_and(|n| n.has(nf::FAIL)))));
        let now = net.now;
        // Masters 1 and 2 told master 0 (and the others) about it.
        assert!(net.nodes[0].failure_reports(&r5, now) >= 1);
        // A failed replica takes nothing down.
        assert!((0..5).all(|i| net.nodes[i].is_ok()));
        // Back again: a replica's FAIL clears as soon as it answers.
        net.revive(5);
        assert!(net.until(10_000, |net| (0..5).all(|i| net.nodes[i]
            .node(&r5)
            .is_some_and(|n| !n.has(nf::FAIL | nf::PFAIL)))));
        // Reports expire after twice the node timeout.
        net.ticks(3 * TIMEOUT);
        let now = net.now;
        assert_eq!(net.nodes[0].failure_reports(&r5, now), 0);
    }

    #[test]
    fn best_offset_wins_the_election() {
        // Master 0 with replicas 3 and 4 (4 % 3 == 1: re-point it).
        let mut net = Net::cluster(5, 3);
        let m0 = net.name(0);
        let now = net.now;
        net.nodes[4]
            .replicate(&m0, true, now)
            .expect("switches master");
        net.run();
        assert!(net.until(5_000, |net| net.follows[4] == Some(0)));
        net.offsets = vec![100, 100, 100, 60, 100];
        net.ticks(2000);
        net.kill(0);
        assert!(net.until(20_000, |net| net.owner_everywhere(0, 4)));
        assert!(net.nodes[4].myself().has(nf::MASTER));
        // The other replica follows the winner.
        assert!(net.until(10_000, |net| net.follows[3] == Some(4)));
        assert!(!net.roles[3].contains(&Action::BecomePrimary));
    }

    #[test]
    fn manual_failover_waits_for_the_paused_offset() {
        let mut net = Net::cluster(6, 3);
        net.offsets[1] = 500;
        net.offsets[4] = 400;
        net.ticks(500);
        let now = net.now;
        assert_eq!(net.nodes[4].failover(false, false, now), Ok(()));
        net.run();
        assert!(matches!(
            net.roles[1].last(),
            Some(Action::PauseWrites { .. })
        ));
        // The replica lags: no failover while it does.
        net.ticks(1000);
        assert!(net.nodes[4].myself().has(nf::SLAVE));
        // It catches up (the stream flows, writes are held).
        net.offsets[4] = 500;
        assert!(net.until(3000, |net| net.owner_everywhere(6000, 4)));
        assert!(net.roles[4].contains(&Action::BecomePrimary));
        assert!(net.until(3000, |net| net.follows[1] == Some(4)));
        assert_eq!(net.roles[1].last(), Some(&Action::ResumeWrites));
        assert!(net.until(5_000, |net| net.nodes.iter().all(|c| c.is_ok())));
    }

    #[test]
    fn a_second_failover_soon_after_the_first_holds_a_new_election() {
        let mut net = Net::cluster(6, 3);
        net.offsets[1] = 500;
        net.offsets[4] = 500;
        net.ticks(500);
        // 4 takes over from 1, then 1 takes back over from 4 ...
        let now = net.now;
        net.nodes[4].failover(false, false, now).expect("starts");
        assert!(net.until(3000, |net| net.owner_everywhere(6000, 4)));
        assert!(net.until(3000, |net| net.follows[1] == Some(4)));
        let (n1, n4) = (net.name(1), net.name(4));
        assert!(net.until(3000, |net| net.nodes[4]
            .node(&n1)
            .is_some_and(|n| n.master == Some(n4))));
        let now = net.now;
        net.nodes[1].failover(false, false, now).expect("starts");
        assert!(net.until(3000, |net| net.owner_everywhere(6000, 1)));
        assert!(net.until(3000, |net| net.follows[4] == Some(1)));
        let back = net.nodes[1].myself().config_epoch;
        // ... and dies at once: 4's election is under auth_timeout (2 s)
        // old when 1 is marked FAIL (this test failed before the reset:
        // 4 "won" with the old votes at the old epoch), yet it must win a
        // new one, at a newer epoch, for the others to agree.
        net.kill(1);
        assert!(net.until(15_000, |net| net.owner_everywhere(6000, 4)));
        assert!(net.nodes[4].myself().config_epoch > back);
        assert!(net.until(5_000, |net| [0, 2, 3, 4, 5]
            .iter()
            .all(|&i| net.nodes[i].is_ok())));
    }

    #[test]
    fn manual_failover_times_out_and_resumes_writes() {
        let mut net = Net::cluster(6, 3);
        net.offsets[1] = 500;
        net.offsets[4] = 400;
        net.ticks(500);
        let now = net.now;
        net.nodes[4].failover(false, false, now).expect("starts");
        net.ticks(7000);
        assert!(net.nodes[4].myself().has(nf::SLAVE));
        assert!(net.nodes[1].myself().has(nf::MASTER));
        assert_eq!(net.roles[1].last(), Some(&Action::ResumeWrites));
    }

    #[test]
    fn takeover_needs_no_votes() {
        let mut net = Net::cluster(6, 3);
        // Cut the masters off from the replica's vote request: TAKEOVER
        // must not need them.
        let now = net.now;
        assert_eq!(net.nodes[5].failover(true, true, now), Ok(()));
        assert!(net.nodes[5].myself().has(nf::MASTER));
        assert!(net.nodes[5].mine(16383));
        net.run();
        assert!(net.until(3000, |net| net.owner_everywhere(16383, 5)));
        assert!(net.until(3000, |net| net.follows[2] == Some(5)));
    }

    #[test]
    fn forced_failover_of_an_unreachable_master() {
        let mut net = Net::cluster(6, 3);
        net.kill(2);
        net.ticks(300);
        let now = net.now;
        assert_eq!(
            net.nodes[5].failover(false, false, now),
            Err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE")
        );
        assert_eq!(net.nodes[5].failover(true, false, now), Ok(()));
        assert!(net.until(3000, |net| net.owner_everywhere(16383, 5)));
    }

    #[test]
    fn masters_vote_once_per_epoch() {
        let mut net = Net::cluster(6, 3);
        net.kill(0);
        assert!(net.until(15_000, |net| net.owner_everywhere(0, 3)));
        // Every live master voted in the winning epoch, and recorded it.
        let epoch = net.nodes[3].myself().config_epoch;
        for i in 1..3 {
            assert_eq!(net.nodes[i].last_vote_epoch, epoch);
        }
        // A request from a replica of a healthy master, without FORCEACK, is
        // refused: no ACK is sent back.
        let mut h = net.nodes[4].header();
        h.current_epoch = net.nodes[1].current_epoch + 1;
        net.nodes[1].current_epoch = h.current_epoch;
        let r4 = net.name(4);
        let now = net.now;
        net.nodes[1].auth_request_received(&r4, &h, now);
        let acts = net.nodes[1].take_actions();
        assert!(!acts.iter().any(
            |a| matches!(a, Action::Send { msg, .. } if msg.body.msg_type() == t::FAILOVER_AUTH_ACK)
        ));
        assert_ne!(net.nodes[1].last_vote_epoch, h.current_epoch);
    }

    #[test]
    fn replica_no_failover_stays_a_replica() {
        let mut net = Net::cluster(6, 3);
        let mut s = net.nodes[3].settings.clone();
        s.replica_no_failover = true;
        net.nodes[3].set_settings(s);
        let r3 = net.name(3);
        // The others learn the flag from its messages.
        assert!(net.until(5_000, |net| net.nodes[0]
            .node(&r3)
            .is_some_and(|n| n.has(nf::NOFAILOVER))));
        net.kill(0);
        let m0 = net.name(0);
        assert!(net.until(10_000, |net| net.nodes[1]
            .node(&m0)
            .is_some_and(|n| n.has(nf::FAIL))));
        net.ticks(10_000);
        assert!(net.nodes[3].myself().has(nf::SLAVE));
        assert!(!net.nodes[1].is_ok());
        // A manual FORCE failover is still allowed.
        let now = net.now;
        assert_eq!(net.nodes[3].failover(true, false, now), Ok(()));
        assert!(net.until(5_000, |net| net.owner_everywhere(0, 3)));
    }

    #[test]
    fn replica_migrates_to_an_orphaned_master() {
        // Master 0 has replicas 3 and 6, master 1 has 4, master 2 has 5.
        let mut net = Net::cluster(7, 3);
        assert_eq!(net.follows[6], Some(0));
        net.kill(4);
        let m1 = net.name(1);
        // After the failure and the migration delay, the smaller-named of
        // master 0's replicas moves to master 1.
        let mover = if net.name(3) < net.name(6) { 3 } else { 6 };
        assert!(net.until(20_000, |net| net.follows[mover] == Some(1)));
        assert_eq!(net.nodes[mover].myself().master, Some(m1));
        let stayer = 9 - mover;
        assert_eq!(net.follows[stayer], Some(0));
    }
}
