//! Redis's `getNodeByQuery` and `clusterRedirectClient`: which node serves
//! a command's keys, and the error a client gets when it is not us
//! (`-MOVED`, `-ASK`, `-CROSSSLOT`, `-TRYAGAIN`, `-CLUSTERDOWN`).

use bytes::Bytes;
use rampart_cluster::key_hash_slot;

use super::Bus;
use crate::client::Client;
use crate::cmd::flags;
use crate::state::{now_ms, Server};

/// `Ok` when this node runs the command, else the error to answer with
/// (without its leading `-`). `id` is the resolved command; for EXEC the
/// queued commands are checked together, as Redis does.
pub fn check(srv: &Server, bus: &Bus, c: &Client, id: usize, args: &[Bytes]) -> Result<(), String> {
    route(srv, bus, c, id, args).map(|_| ())
}

/// Why a command inside a script may not run here, in the words of
/// Redis's `scriptVerifyClusterState`; else the slot of its keys (`None`
/// without keys), which the script's other commands must share unless it
/// allows cross-slot keys.
pub fn script_check(
    srv: &Server,
    bus: &Bus,
    c: &Client,
    id: usize,
    args: &[Bytes],
) -> Result<Option<u16>, &'static str> {
    route(srv, bus, c, id, args).map_err(|e| match e.as_str() {
        "CLUSTERDOWN The cluster is down and only accepts read commands" => {
            "Script attempted to execute a write command while the cluster is down and readonly"
        }
        "CLUSTERDOWN The cluster is down" => {
            "Script attempted to execute a command while the cluster is down"
        }
        _ => "Script attempted to access a non local key in a cluster node",
    })
}

/// [`check`], with the slot of the command's keys when it runs here.
fn route(
    srv: &Server,
    bus: &Bus,
    c: &Client,
    id: usize,
    args: &[Bytes],
) -> Result<Option<u16>, String> {
    let spec = srv.commands.spec(id);
    let cmds: Vec<(usize, &[Bytes])> = if spec.name == "exec" {
        match &c.multi {
            Some(q) => q.iter().map(|(i, a)| (*i, &a[..])).collect(),
            None => return Ok(None),
        }
    } else {
        vec![(id, args)]
    };
    let st = bus.state.lock();
    let now = now_ms();
    let mut first: Option<(Bytes, u16)> = None;
    let mut multiple_keys = false;
    let (mut migrating, mut importing) = (false, false);
    let (mut missing, mut existing) = (0usize, 0usize);
    let mut owner = None;
    let mut writes = false;
    let mut pubsub_shard = false;
    for (cid, cargs) in cmds {
        let cspec = srv.commands.spec(cid);
        writes |= cspec.has(flags::WRITE);
        let shard_cmd = matches!(cspec.name, "ssubscribe" | "sunsubscribe" | "spublish");
        pubsub_shard |= shard_cmd;
        // Shard channels route like keys, though their key specs say
        // "not a key" (which ACL key patterns must ignore): Redis 7.0
        // routes by the legacy first/last/step range, as here.
        let positions: Vec<usize> = if shard_cmd {
            cspec.key_positions(cargs.len()).collect()
        } else {
            match srv.acl.key_refs(srv.acl.catalog_id(cid), cargs) {
                Some(keys) => keys.into_iter().map(|k| k.pos).collect(),
                None => continue,
            }
        };
        for pos in positions {
            let Some(key) = cargs.get(pos) else {
                continue;
            };
            let slot = key_hash_slot(key);
            match &first {
                None => {
                    first = Some((key.clone(), slot));
                    match st.owner(slot) {
                        None => return Err("CLUSTERDOWN Hash slot not served".into()),
                        Some(n) => owner = Some(n.name),
                    }
                    if st.mine(slot) && st.migrating.contains_key(&slot) {
                        migrating = true;
                    } else if st.importing.contains_key(&slot) {
                        importing = true;
                    }
                }
                Some((fk, fslot)) => {
                    if fk != key {
                        if *fslot != slot {
                            return Err(
                                "CROSSSLOT Keys in request don't hash to the same slot".into()
                            );
                        }
                        multiple_keys = true;
                    }
                }
            }
            if (migrating || importing) && !pubsub_shard {
                if srv.keyspace.db(0).exists(key, now) {
                    existing += 1;
                } else {
                    missing += 1;
                }
            }
        }
    }
    let (Some((_, slot)), Some(owner)) = (first, owner) else {
        return Ok(None);
    };
    if !st.is_ok() {
        let cfg = &srv.config;
        if pubsub_shard {
            if !cfg.flag("cluster-allow-pubsubshard-when-down") {
                return Err("CLUSTERDOWN The cluster is down".into());
            }
        } else if !cfg.flag("cluster-allow-reads-when-down") {
            return Err("CLUSTERDOWN The cluster is down".into());
        } else if writes {
            return Err("CLUSTERDOWN The cluster is down and only accepts read commands".into());
        }
    }
    if (migrating || importing) && spec.name == "migrate" {
        return Ok(Some(slot));
    }
    // A plaintext client of a tls-cluster is sent to plaintext ports.
    let pport = crate::cmd::cluster::use_pport(srv, c);
    let addr = |name| {
        st.node(&name)
            .map(|n| format!("{}:{}", n.ip, n.client_port(pport)))
            .unwrap_or_default()
    };
    if migrating && missing > 0 {
        if existing > 0 {
            return Err("TRYAGAIN Multiple keys request during rehashing of slot".into());
        }
        if let Some(to) = st.migrating.get(&slot) {
            return Err(format!("ASK {slot} {}", addr(*to)));
        }
    }
    if importing && (c.asking || spec.has(flags::ASKING)) {
        if multiple_keys && missing > 0 {
            return Err("TRYAGAIN Multiple keys request during rehashing of slot".into());
        }
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
    if owner != st.my_name() {
        return Err(format!("MOVED {slot} {}", addr(owner)));
    }
    Ok(Some(slot))
}
