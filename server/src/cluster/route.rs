//! Redis's `getNodeByQuery` and `clusterRedirectClient`: which node serves
//! a command's keys, and the error a client gets when it is not us
//! (`-MOVED`, `-ASK`, `-CROSSSLOT`, `-TRYAGAIN`, `-CLUSTERDOWN`).

use bytes::Bytes;
use rampart_cluster::key_hash_slot;
use rampart_cluster::msg::NodeName;
use rampart_cluster::state::Cluster;
use smallvec::SmallVec;

use super::Bus;
use crate::client::Client;
use crate::cmd::flags;
use crate::state::{now_ms, Server};

/// Why a command does not run here: Redis's `getNodeByQuery` error codes,
/// with where to go for a redirection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `-MOVED slot host:port`: another node serves the slot.
    Moved(u16, String),
    /// `-ASK slot host:port`: the slot is migrating and the key is gone.
    Ask(u16, String),
    /// Keys in different slots.
    CrossSlot,
    /// Several keys of a migrating or importing slot, not all here.
    TryAgain,
    /// No node serves the slot.
    Unbound,
    /// The cluster is down.
    Down,
    /// The cluster is down and the command writes (reads allowed).
    DownReadOnly,
}

impl Refusal {
    /// The error reply, without its leading `-`.
    ///
    /// ```
    /// use rampart_server::cluster::route::Refusal;
    /// assert_eq!(Refusal::Moved(7, "127.0.0.1:7001".into()).reply(), "MOVED 7 127.0.0.1:7001");
    /// ```
    pub fn reply(&self) -> String {
        match self {
            Refusal::Moved(slot, addr) => format!("MOVED {slot} {addr}"),
            Refusal::Ask(slot, addr) => format!("ASK {slot} {addr}"),
            Refusal::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".into(),
            Refusal::TryAgain => "TRYAGAIN Multiple keys request during rehashing of slot".into(),
            Refusal::Unbound => "CLUSTERDOWN Hash slot not served".into(),
            Refusal::Down => "CLUSTERDOWN The cluster is down".into(),
            Refusal::DownReadOnly => {
                "CLUSTERDOWN The cluster is down and only accepts read commands".into()
            }
        }
    }

    /// The same refusal for a command inside a script, in the words of
    /// Redis's `scriptVerifyClusterState`.
    pub fn in_script(&self) -> &'static str {
        match self {
            Refusal::DownReadOnly => {
                "Script attempted to execute a write command while the cluster is down and readonly"
            }
            Refusal::Down => "Script attempted to execute a command while the cluster is down",
            _ => "Script attempted to access a non local key in a cluster node",
        }
    }
}

/// `Ok` when this node runs the command, else why not. `id` is the
/// resolved command; for EXEC the queued commands are checked together,
/// as Redis does.
pub fn check(
    srv: &Server,
    bus: &Bus,
    c: &Client,
    id: usize,
    args: &[Bytes],
) -> Result<(), Refusal> {
    route(srv, bus, c, id, args).map(|_| ())
}

/// Why a command inside a script may not run here (see
/// [`Refusal::in_script`]); else the slot of its keys (`None` without
/// keys), which the script's other commands must share unless it allows
/// cross-slot keys.
pub fn script_check(
    srv: &Server,
    bus: &Bus,
    c: &Client,
    id: usize,
    args: &[Bytes],
) -> Result<Option<u16>, &'static str> {
    route(srv, bus, c, id, args).map_err(|e| e.in_script())
}

/// [`check`], with the slot of the command's keys when it runs here.
///
/// Every command of a cluster-mode node passes here, so the common case
/// (a single command whose keys are all in one of my stable slots) takes
/// no heap allocation, no config lookup and no clock read.
fn route(
    srv: &Server,
    bus: &Bus,
    c: &Client,
    id: usize,
    args: &[Bytes],
) -> Result<Option<u16>, Refusal> {
    let spec = srv.commands.spec(id);
    let st = bus.state.lock();
    let mut keys = Keys::default();
    if spec.name == "exec" {
        let Some(q) = &c.multi else { return Ok(None) };
        for (cid, cargs) in q {
            keys.visit(srv, &st, *cid, cargs)?;
        }
    } else {
        keys.visit(srv, &st, id, args)?;
    }
    let Keys {
        first: Some((_, slot)),
        owner: Some(owner),
        multiple_keys,
        migrating,
        importing,
        missing,
        existing,
        writes,
        pubsub_shard,
    } = keys
    else {
        return Ok(None);
    };
    if !st.is_ok() {
        let cfg = &srv.config;
        if pubsub_shard {
            if !cfg.flag("cluster-allow-pubsubshard-when-down") {
                return Err(Refusal::Down);
            }
        } else if !cfg.flag("cluster-allow-reads-when-down") {
            return Err(Refusal::Down);
        } else if writes {
            return Err(Refusal::DownReadOnly);
        }
    }
    if (migrating || importing) && spec.name == "migrate" {
        return Ok(Some(slot));
    }
    // A plaintext client of a tls-cluster is sent to plaintext ports.
    let addr = |name| {
        let pport = crate::cmd::cluster::use_pport(srv, c);
        st.node(&name)
            .map(|n| format!("{}:{}", n.ip, n.client_port(pport)))
            .unwrap_or_default()
    };
    if migrating && missing > 0 {
        if existing > 0 {
            return Err(Refusal::TryAgain);
        }
        if let Some(to) = st.migrating.get(&slot) {
            return Err(Refusal::Ask(slot, addr(*to)));
        }
    }
    if importing && (c.asking || spec.has(flags::ASKING)) {
        if multiple_keys && missing > 0 {
            return Err(Refusal::TryAgain);
        }
        return Ok(Some(slot));
    }
    if owner == st.my_name() {
        return Ok(Some(slot));
    }
    // A READONLY client (or a shard channel) reads from a replica of the
    // slot's master without a redirection, as in Redis.
    let me = st.myself();
    if (c.readonly || pubsub_shard)
        && !writes
        && me.has(rampart_cluster::msg::node_flags::SLAVE)
        && me.master == Some(owner)
    {
        return Ok(Some(slot));
    }
    Err(Refusal::Moved(slot, addr(owner)))
}

/// What [`route`] learns from the keys of a command line (or of every
/// command queued in a transaction), in Redis's `getNodeByQuery` terms.
#[derive(Default)]
struct Keys<'a> {
    /// The first key and its slot.
    first: Option<(&'a [u8], u16)>,
    /// The first key's slot's owner.
    owner: Option<NodeName>,
    /// Another key than the first, in the same slot.
    multiple_keys: bool,
    migrating: bool,
    importing: bool,
    /// Keys missing from / present in the keyspace, counted only while
    /// the slot is migrating or importing.
    missing: usize,
    existing: usize,
    writes: bool,
    pubsub_shard: bool,
}

impl<'a> Keys<'a> {
    fn visit(
        &mut self,
        srv: &Server,
        st: &Cluster,
        id: usize,
        args: &'a [Bytes],
    ) -> Result<(), Refusal> {
        let spec = srv.commands.spec(id);
        self.writes |= spec.has(flags::WRITE);
        let shard_cmd = matches!(spec.name, "ssubscribe" | "sunsubscribe" | "spublish");
        self.pubsub_shard |= shard_cmd;
        // Shard channels route like keys, though their key specs say
        // "not a key" (which ACL key patterns must ignore): Redis 7.0
        // routes by the legacy first/last/step range, as here.
        let positions: SmallVec<[usize; 4]> = if shard_cmd {
            spec.key_positions(args.len()).collect()
        } else {
            match srv.acl.key_args(srv.acl.catalog_id(id), args) {
                Some(keys) => keys.iter().map(|k| k.pos).collect(),
                None => return Ok(()),
            }
        };
        let mut now = None;
        for pos in positions {
            let Some(key) = args.get(pos) else {
                continue;
            };
            let slot = key_hash_slot(key);
            match self.first {
                None => {
                    self.first = Some((key, slot));
                    match st.owner_name(slot) {
                        None => return Err(Refusal::Unbound),
                        Some(n) => self.owner = Some(n),
                    }
                    if st.migrating.is_empty() && st.importing.is_empty() {
                        // Nothing moves: the common case.
                    } else if st.mine(slot) && st.migrating.contains_key(&slot) {
                        self.migrating = true;
                    } else if st.importing.contains_key(&slot) {
                        self.importing = true;
                    }
                }
                Some((fk, fslot)) => {
                    if fk != &key[..] {
                        if fslot != slot {
                            return Err(Refusal::CrossSlot);
                        }
                        self.multiple_keys = true;
                    }
                }
            }
            if (self.migrating || self.importing) && !self.pubsub_shard {
                let now = *now.get_or_insert_with(now_ms);
                if srv.keyspace.db(0).exists(key, now) {
                    self.existing += 1;
                } else {
                    self.missing += 1;
                }
            }
        }
        Ok(())
    }
}
