//! CLUSTER and its subcommands, READONLY, READWRITE, ASKING: Redis 7.0's
//! `clusterCommand` replies and errors over the state machine in
//! [`crate::cluster`]. Without `cluster-enabled yes` every one answers
//! Redis's "This instance has cluster support disabled".
//!
//! REPLICATE and FAILOVER change roles through the state machine, which
//! asks the server's replication for the change (see `crate::cluster`).

use std::sync::Arc;

use rampart_cluster::msg::node_flags as nf;
use rampart_cluster::state::{name_str, Cluster, Node, MSG_TYPE_NAMES};
use rampart_cluster::{key_hash_slot, slot::SLOTS};

use super::flags::*;
use super::{container_spec, err, spec, CommandSpec, Ctx};
use crate::cluster::Bus;
use crate::state::now_ms;

const DISABLED: &str = "ERR This instance has cluster support disabled";

/// The bus, or Redis's error when cluster mode is off.
fn bus(ctx: &mut Ctx<'_>) -> Option<Arc<Bus>> {
    let b = ctx.srv.cluster.get().cloned();
    if b.is_none() {
        ctx.out.error(DISABLED);
    }
    b
}

fn arg_str(ctx: &Ctx<'_>, i: usize) -> String {
    String::from_utf8_lossy(&ctx.args[i]).into_owned()
}

/// Redis's `getSlotOrReply`.
fn slot_arg(ctx: &mut Ctx<'_>, i: usize) -> Option<u16> {
    match crate::num::parse_i64(&ctx.args[i]) {
        Some(s) if (0..SLOTS as i64).contains(&s) => Some(s as u16),
        _ => {
            ctx.out.error("ERR Invalid or out of range slot");
            None
        }
    }
}

/// CLUSTER HELP
fn help(ctx: &mut Ctx<'_>) {
    if bus(ctx).is_none() {
        return;
    }
    super::help(
        ctx.out,
        "CLUSTER",
        &[
            "ADDSLOTS <slot> [<slot> ...]",
            "    Assign slots to current node.",
            "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "    Assign slots which are between <start-slot> and <end-slot> to current node.",
            "BUMPEPOCH",
            "    Advance the cluster config epoch.",
            "COUNT-FAILURE-REPORTS <node-id>",
            "    Return number of failure reports for <node-id>.",
            "COUNTKEYSINSLOT <slot>",
            "    Return the number of keys in <slot>.",
            "DELSLOTS <slot> [<slot> ...]",
            "    Delete slots information from current node.",
            "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
            "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
            "FAILOVER [FORCE|TAKEOVER]",
            "    Promote current replica node to being a master.",
            "FORGET <node-id>",
            "    Remove a node from the cluster.",
            "GETKEYSINSLOT <slot> <count>",
            "    Return key names stored by current node in a slot.",
            "FLUSHSLOTS",
            "    Delete current node own slots information.",
            "INFO",
            "    Return information about the cluster.",
            "KEYSLOT <key>",
            "    Return the hash slot for <key>.",
            "MEET <ip> <port> [<bus-port>]",
            "    Connect nodes into a working cluster.",
            "MYID",
            "    Return the node id.",
            "NODES",
            "    Return cluster configuration seen by node. Output format:",
            "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
            "REPLICATE <node-id>",
            "    Configure current node as replica to <node-id>.",
            "RESET [HARD|SOFT]",
            "    Reset current node (default: soft).",
            "SET-CONFIG-EPOCH <epoch>",
            "    Set config epoch of current node.",
            "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
            "    Set slot state.",
            "REPLICAS <node-id>",
            "    Return <node-id> replicas.",
            "SAVECONFIG",
            "    Force saving cluster configuration on disk.",
            "SLOTS",
            "    Return information about slots range mappings. Each range is made of:",
            "    start, end, master and replicas IP addresses, ports and ids",
            "SHARDS",
            "    Return information about slot range mappings and the nodes associated with them.",
            "LINKS",
            "    Return information about all network links between this node and its peers.",
            "    Output format is an array where each array element is a map containing attributes of a link",
        ],
    );
}

/// CLUSTER MEET ip port [bus-port]
fn meet(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    if ctx.args.len() > 5 {
        return super::subcommand_syntax_error(ctx);
    }
    let Some(port) = crate::num::parse_i64(&ctx.args[3]) else {
        let p = arg_str(ctx, 3);
        return ctx
            .out
            .error(&format!("ERR Invalid TCP base port specified: {p}"));
    };
    let cport = if ctx.args.len() == 5 {
        match crate::num::parse_i64(&ctx.args[4]) {
            Some(c) => c,
            None => {
                let p = arg_str(ctx, 4);
                return ctx
                    .out
                    .error(&format!("ERR Invalid TCP bus port specified: {p}"));
            }
        }
    } else {
        port.saturating_add(10000)
    };
    let ip = arg_str(ctx, 2);
    let r = b.state.lock().meet(&ip, port, cport, now_ms());
    match r {
        Ok(()) => {
            b.flush();
            ctx.out.ok()
        }
        Err(_) => {
            let p = arg_str(ctx, 3);
            ctx.out
                .error(&format!("ERR Invalid node address specified: {ip}:{p}"))
        }
    }
}

/// Whether this client is shown plaintext ports: a plaintext client of a
/// `tls-cluster`, as Redis's `use_pport`.
pub(crate) fn use_pport(srv: &crate::state::Server, client: &crate::client::Client) -> bool {
    !client.tls && srv.config.flag("tls-cluster")
}

/// CLUSTER NODES
fn nodes(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let pport = use_pport(ctx.srv, ctx.client);
    let text = b.state.lock().nodes_description_for(pport);
    ctx.out.verbatim(text.as_bytes());
}

/// CLUSTER MYID
fn myid(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let id = b.state.lock().myself().id();
    ctx.out.bulk(id.as_bytes());
}

/// `addNodeToNodeReply`: ip, port, id, and a map of the other endpoints.
fn node_reply(ctx: &mut Ctx<'_>, n: &Node, hostname_preferred: bool, pport: bool) {
    ctx.out.array(4);
    if hostname_preferred {
        let h = if n.hostname.is_empty() {
            "?"
        } else {
            &n.hostname
        };
        ctx.out.bulk(h.as_bytes());
    } else {
        ctx.out.bulk(n.ip.as_bytes());
    }
    ctx.out.int(n.client_port(pport) as i64);
    ctx.out.bulk(&n.name);
    if hostname_preferred {
        ctx.out.map_len(1);
        ctx.out.bulk(b"ip");
        ctx.out.bulk(n.ip.as_bytes());
    } else if !n.hostname.is_empty() {
        ctx.out.map_len(1);
        ctx.out.bulk(b"hostname");
        ctx.out.bulk(n.hostname.as_bytes());
    } else {
        ctx.out.map_len(0);
    }
}

fn hostname_preferred(ctx: &Ctx<'_>) -> bool {
    ctx.srv
        .config
        .get("cluster-preferred-endpoint-type")
        .is_some_and(|v| v == "hostname")
}

/// Replicas of `master` (Redis's `master->slaves`).
fn replicas<'a>(st: &'a Cluster, master: &Node) -> Vec<&'a Node> {
    st.replicas_of(&master.name)
}

/// CLUSTER SLOTS
fn slots(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let host = hostname_preferred(ctx);
    let pport = use_pport(ctx.srv, ctx.client);
    let st = b.state.lock();
    let mut ranges: Vec<(u16, u16, &Node)> = Vec::new();
    for s in 0..SLOTS as u16 {
        let Some(n) = st.owner(s) else { continue };
        match ranges.last_mut() {
            Some((_, end, last)) if *end + 1 == s && last.name == n.name => *end = s,
            _ => ranges.push((s, s, n)),
        }
    }
    ctx.out.array(ranges.len());
    for (start, end, n) in ranges {
        let reps: Vec<&Node> = replicas(&st, n)
            .into_iter()
            .filter(|r| r.repl_offset != 0 && !r.has(nf::FAIL))
            .collect();
        ctx.out.array(3 + reps.len());
        ctx.out.int(start as i64);
        ctx.out.int(end as i64);
        node_reply(ctx, n, host, pport);
        for r in reps {
            node_reply(ctx, r, host, pport);
        }
    }
}

/// `addNodeDetailsToShardReply`. With `tls-cluster yes` a node's `port`
/// is its TLS port and `pport` its plaintext one: both are listed, as
/// `port` and `tls-port`, whatever the client's connection (Redis takes
/// `tls-cluster` as the sign that `port` is a TLS port).
fn shard_node(ctx: &mut Ctx<'_>, st: &Cluster, n: &Node, host: bool) {
    let (plain, tls) = if ctx.srv.config.flag("tls-cluster") {
        (n.pport, n.port)
    } else {
        (n.port, 0)
    };
    let mut fields = 6;
    if !n.hostname.is_empty() {
        fields += 1;
    }
    fields += usize::from(plain != 0) + usize::from(tls != 0);
    ctx.out.map_len(fields);
    ctx.out.bulk(b"id");
    ctx.out.bulk(&n.name);
    if plain != 0 {
        ctx.out.bulk(b"port");
        ctx.out.int(plain as i64);
    }
    if tls != 0 {
        ctx.out.bulk(b"tls-port");
        ctx.out.int(tls as i64);
    }
    ctx.out.bulk(b"ip");
    ctx.out.bulk(n.ip.as_bytes());
    ctx.out.bulk(b"endpoint");
    if host {
        let h = if n.hostname.is_empty() {
            "?"
        } else {
            &n.hostname
        };
        ctx.out.bulk(h.as_bytes());
    } else {
        ctx.out.bulk(n.ip.as_bytes());
    }
    if !n.hostname.is_empty() {
        ctx.out.bulk(b"hostname");
        ctx.out.bulk(n.hostname.as_bytes());
    }
    let offset = if n.name == st.my_name() {
        ctx.srv.repl.offset_relaxed() as i64
    } else {
        n.repl_offset as i64
    };
    let replica = n.has(nf::SLAVE);
    ctx.out.bulk(b"role");
    ctx.out.bulk(if replica {
        b"replica" as &[u8]
    } else {
        b"master"
    });
    ctx.out.bulk(b"replication-offset");
    ctx.out.int(offset);
    ctx.out.bulk(b"health");
    let health: &[u8] = if n.has(nf::FAIL) {
        b"fail"
    } else if replica && offset == 0 {
        b"loading"
    } else {
        b"online"
    };
    ctx.out.bulk(health);
}

/// CLUSTER SHARDS
fn shards(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let host = hostname_preferred(ctx);
    let st = b.state.lock();
    let masters: Vec<&Node> = st.nodes().filter(|n| n.has(nf::MASTER)).collect();
    ctx.out.array(masters.len());
    for m in masters {
        ctx.out.map_len(2);
        ctx.out.bulk(b"slots");
        let ranges = m.slots.ranges();
        ctx.out.array(ranges.len() * 2);
        for r in &ranges {
            ctx.out.int(*r.start() as i64);
            ctx.out.int(*r.end() as i64);
        }
        ctx.out.bulk(b"nodes");
        let reps = replicas(&st, m);
        ctx.out.array(1 + reps.len());
        shard_node(ctx, &st, m, host);
        for r in reps {
            shard_node(ctx, &st, r, host);
        }
    }
}

/// CLUSTER INFO
fn info(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let exceeded = b
        .links_buffer_limit_exceeded
        .load(std::sync::atomic::Ordering::Relaxed);
    let text = info_text(&b.state.lock(), exceeded);
    ctx.out.verbatim(text.as_bytes());
}

/// CLUSTER INFO's text (also what `INFO cluster`'s readers expect).
pub fn info_text(st: &Cluster, links_exceeded: u64) -> String {
    let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
    for s in 0..SLOTS as u16 {
        let Some(n) = st.owner(s) else { continue };
        assigned += 1;
        if n.has(nf::FAIL) {
            fail += 1;
        } else if n.has(nf::PFAIL) {
            pfail += 1;
        } else {
            ok += 1;
        }
    }
    let me = st.myself();
    let my_epoch = match me.master.and_then(|m| st.node(&m)) {
        Some(m) if me.has(nf::SLAVE) => m.config_epoch,
        _ => me.config_epoch,
    };
    let mut s = format!(
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\ncluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{my_epoch}\r\n",
        if st.is_ok() { "ok" } else { "fail" },
        st.known_nodes(),
        st.size(),
        st.current_epoch,
    );
    for (dir, counts) in [("sent", &st.sent), ("received", &st.received)] {
        let mut total = 0;
        for (i, c) in counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            total += c;
            s.push_str(&format!(
                "cluster_stats_messages_{}_{dir}:{c}\r\n",
                MSG_TYPE_NAMES[i]
            ));
        }
        s.push_str(&format!("cluster_stats_messages_{dir}:{total}\r\n"));
    }
    s.push_str(&format!(
        "total_cluster_links_buffer_limit_exceeded:{links_exceeded}\r\n"
    ));
    s
}

/// CLUSTER KEYSLOT key
fn keyslot(ctx: &mut Ctx<'_>) {
    if bus(ctx).is_none() {
        return;
    }
    let s = key_hash_slot(&ctx.args[2]);
    ctx.out.int(s as i64);
}

/// Redis's `checkSlotAssignmentsOrReply` over `start..=end`.
fn check_slots(
    ctx: &mut Ctx<'_>,
    st: &Cluster,
    seen: &mut [bool],
    del: bool,
    start: u16,
    end: u16,
) -> bool {
    for s in start..=end {
        let free = st.slot_free(s);
        if del && free {
            ctx.out
                .error(&format!("ERR Slot {s} is already unassigned"));
            return false;
        }
        if !del && !free {
            ctx.out.error(&format!("ERR Slot {s} is already busy"));
            return false;
        }
        if std::mem::replace(&mut seen[s as usize], true) {
            ctx.out
                .error(&format!("ERR Slot {s} specified multiple times"));
            return false;
        }
    }
    true
}

fn update_slots(ctx: &mut Ctx<'_>, del: bool, ranges: bool) {
    let Some(b) = bus(ctx) else { return };
    let mut pairs = Vec::new();
    if ranges {
        if ctx.args.len() % 2 == 1 {
            let name = ctx.srv.commands.full_name(ctx.cmd).to_string();
            return ctx.out.error(&format!(
                "ERR wrong number of arguments for '{name}' command"
            ));
        }
        let mut i = 2;
        while i + 1 < ctx.args.len() {
            let Some(a) = slot_arg(ctx, i) else { return };
            let Some(z) = slot_arg(ctx, i + 1) else {
                return;
            };
            if a > z {
                return ctx.out.error(&format!(
                    "ERR start slot number {a} is greater than end slot number {z}"
                ));
            }
            pairs.push((a, z));
            i += 2;
        }
    } else {
        for i in 2..ctx.args.len() {
            let Some(s) = slot_arg(ctx, i) else { return };
            pairs.push((s, s));
        }
    }
    let mut st = b.state.lock();
    let mut seen = vec![false; SLOTS];
    for &(a, z) in &pairs {
        if !check_slots(ctx, &st, &mut seen, del, a, z) {
            return;
        }
    }
    let slots: Vec<u16> = pairs.iter().flat_map(|&(a, z)| a..=z).collect();
    if del {
        st.del_slots(&slots, now_ms());
    } else {
        st.add_slots(&slots, now_ms());
    }
    drop(st);
    b.flush();
    ctx.out.ok();
}

fn addslots(ctx: &mut Ctx<'_>) {
    update_slots(ctx, false, false)
}
fn delslots(ctx: &mut Ctx<'_>) {
    update_slots(ctx, true, false)
}
fn addslotsrange(ctx: &mut Ctx<'_>) {
    update_slots(ctx, false, true)
}
fn delslotsrange(ctx: &mut Ctx<'_>) {
    update_slots(ctx, true, true)
}

/// CLUSTER FLUSHSLOTS
fn flushslots(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    if !ctx.srv.keyspace.db(0).is_empty() {
        return ctx
            .out
            .error("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.");
    }
    b.state.lock().flush_slots(now_ms());
    b.flush();
    ctx.out.ok();
}

/// CLUSTER COUNTKEYSINSLOT slot
fn countkeysinslot(ctx: &mut Ctx<'_>) {
    if bus(ctx).is_none() {
        return;
    }
    let Some(slot) = ctx.int_arg(2) else { return };
    if !(0..SLOTS as i64).contains(&slot) {
        return ctx.out.error("ERR Invalid slot");
    }
    let n = ctx.srv.keyspace.db(0).count_in_slot(slot as u16);
    ctx.out.int(n as i64);
}

/// CLUSTER GETKEYSINSLOT slot count
fn getkeysinslot(ctx: &mut Ctx<'_>) {
    if bus(ctx).is_none() {
        return;
    }
    let Some(slot) = ctx.int_arg(2) else { return };
    let Some(max) = ctx.int_arg(3) else { return };
    if !(0..SLOTS as i64).contains(&slot) || max < 0 {
        return ctx.out.error("ERR Invalid slot or number of keys");
    }
    let keys = ctx
        .srv
        .keyspace
        .db(0)
        .keys_in_slot(slot as u16, max as usize);
    ctx.out.array(keys.len());
    for k in &keys {
        ctx.out.bulk(k);
    }
}

/// CLUSTER SAVECONFIG
fn saveconfig(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    match b.save_now() {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&format!(
            "ERR error saving the cluster node config: {}",
            strerror(&e)
        )),
    }
}

/// The C library's text for an I/O error, as Redis's `strerror` prints it.
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// CLUSTER BUMPEPOCH
fn bumpepoch(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let (bumped, epoch) = {
        let mut st = b.state.lock();
        let bumped = st.bump_epoch();
        (bumped, st.myself().config_epoch)
    };
    b.flush();
    ctx.out.simple(&format!(
        "{} {epoch}",
        if bumped { "BUMPED" } else { "STILL" }
    ));
}

/// CLUSTER SET-CONFIG-EPOCH epoch
fn set_config_epoch(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let Some(epoch) = ctx.int_arg(2) else { return };
    let mut st = b.state.lock();
    if epoch < 0 {
        return ctx
            .out
            .error(&format!("ERR Invalid config epoch specified: {epoch}"));
    }
    if st.known_nodes() > 1 {
        return ctx.out.error(
            "ERR The user can assign a config epoch only when the node does not know any other node.",
        );
    }
    if st.myself().config_epoch != 0 {
        return ctx.out.error("ERR Node config epoch is already non-zero");
    }
    st.set_config_epoch(epoch as u64, now_ms());
    drop(st);
    tracing::warn!("configEpoch set to {epoch} via CLUSTER SET-CONFIG-EPOCH");
    b.flush();
    ctx.out.ok();
}

/// CLUSTER FORGET node-id
fn forget(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let mut st = b.state.lock();
    let Some(n) = st.lookup(&ctx.args[2]).map(|n| (n.name, n.has(nf::MYSELF))) else {
        let id = arg_str(ctx, 2);
        return ctx.out.error(&format!("ERR Unknown node {id}"));
    };
    if n.1 {
        return ctx
            .out
            .error("ERR I tried hard but I can't forget myself...");
    }
    let me = st.myself();
    if me.has(nf::SLAVE) && me.master == Some(n.0) {
        return ctx.out.error("ERR Can't forget my master!");
    }
    st.forget(&n.0, now_ms());
    drop(st);
    b.flush();
    ctx.out.ok();
}

/// CLUSTER REPLICAS|SLAVES node-id: the replicas' CLUSTER NODES lines.
fn replicas_cmd(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let pport = use_pport(ctx.srv, ctx.client);
    let st = b.state.lock();
    let Some(n) = st.lookup(&ctx.args[2]) else {
        let id = arg_str(ctx, 2);
        return ctx.out.error(&format!("ERR Unknown node {id}"));
    };
    if n.has(nf::SLAVE) {
        return ctx.out.error("ERR The specified node is not a master");
    }
    let lines: Vec<String> = replicas(&st, n)
        .into_iter()
        .map(|r| st.node_line_for(r, pport).to_string())
        .collect();
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.bulk(l.as_bytes());
    }
}

/// CLUSTER COUNT-FAILURE-REPORTS node-id: masters that reported the node
/// PFAIL or FAIL within twice the node timeout.
fn count_failure_reports(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let mut st = b.state.lock();
    let Some(name) = st.lookup(&ctx.args[2]).map(|n| n.name) else {
        drop(st);
        let id = arg_str(ctx, 2);
        return ctx.out.error(&format!("ERR Unknown node {id}"));
    };
    let n = st.failure_reports(&name, now_ms());
    ctx.out.int(n as i64);
}

/// CLUSTER REPLICATE node-id: this (empty, slotless) node follows `node-id`.
fn replicate(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let mut st = b.state.lock();
    let Some(name) = st.lookup(&ctx.args[2]).map(|n| n.name) else {
        drop(st);
        let id = arg_str(ctx, 2);
        return ctx.out.error(&format!("ERR Unknown node {id}"));
    };
    let empty = ctx.srv.keyspace.db(0).is_empty();
    let r = st.replicate(&name, empty, now_ms());
    drop(st);
    b.flush();
    match r {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&e),
    }
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER]: this replica takes its master's place.
fn failover(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    if ctx.args.len() > 3 {
        return super::subcommand_syntax_error(ctx);
    }
    let (force, takeover) = match ctx.args.get(2) {
        None => (false, false),
        Some(a) if a.eq_ignore_ascii_case(b"force") => (true, false),
        Some(a) if a.eq_ignore_ascii_case(b"takeover") => (true, true),
        Some(_) => return ctx.out.error(err::SYNTAX),
    };
    let r = b.state.lock().failover(force, takeover, now_ms());
    b.flush();
    match r {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(e),
    }
}

/// CLUSTER RESET [HARD|SOFT]
fn reset(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    if ctx.args.len() > 3 {
        return super::subcommand_syntax_error(ctx);
    }
    let hard = match ctx.args.get(2) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"hard") => true,
        Some(a) if a.eq_ignore_ascii_case(b"soft") => false,
        Some(_) => return ctx.out.error(err::SYNTAX),
    };
    let master = b.state.lock().myself().has(nf::MASTER);
    if master && !ctx.srv.keyspace.db(ctx.client.db).is_empty() {
        return ctx
            .out
            .error("ERR CLUSTER RESET can't be called with master nodes containing keys");
    }
    b.state.lock().reset(hard, now_ms());
    b.flush();
    ctx.out.ok();
}

/// CLUSTER SETSLOT slot IMPORTING|MIGRATING|NODE node-id | STABLE
fn setslot(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    if b.state.lock().myself().has(nf::SLAVE) {
        return ctx.out.error("ERR Please use SETSLOT only with masters.");
    }
    let Some(slot) = slot_arg(ctx, 2) else { return };
    let action = ctx.args[3].to_ascii_lowercase();
    let argc = ctx.args.len();
    let mut st = b.state.lock();
    let epoch = st.myself().config_epoch;
    let target = |st: &Cluster, ctx: &mut Ctx<'_>, unknown: &str| {
        let id = arg_str(ctx, 4);
        match st.lookup(&ctx.args[4]) {
            None => {
                ctx.out.error(&format!("ERR {unknown} {id}"));
                None
            }
            Some(n) if n.has(nf::SLAVE) => {
                ctx.out.error("ERR Target node is not a master");
                None
            }
            Some(n) => Some(n.name),
        }
    };
    match (&action[..], argc) {
        (b"migrating", 5) => {
            if !st.mine(slot) {
                return ctx
                    .out
                    .error(&format!("ERR I'm not the owner of hash slot {slot}"));
            }
            let Some(n) = target(&st, &mut *ctx, "I don't know about node") else {
                return;
            };
            st.migrating.insert(slot, n);
        }
        (b"importing", 5) => {
            if st.mine(slot) {
                return ctx
                    .out
                    .error(&format!("ERR I'm already the owner of hash slot {slot}"));
            }
            let Some(n) = target(&st, &mut *ctx, "I don't know about node") else {
                return;
            };
            st.importing.insert(slot, n);
        }
        (b"stable", 4) => {
            st.importing.remove(&slot);
            st.migrating.remove(&slot);
        }
        (b"node", 5) => {
            let Some(n) = target(&st, &mut *ctx, "Unknown node") else {
                return;
            };
            let count = ctx.srv.keyspace.db(0).count_in_slot(slot);
            if st.mine(slot) && n != st.my_name() && count != 0 {
                return ctx.out.error(&format!("ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."));
            }
            if count != 0 {
                // Keys remain: the migration is still going on.
                let keep = st.migrating.get(&slot).copied();
                st.assign_slot(slot, n, now_ms());
                if let Some(k) = keep {
                    st.migrating.insert(slot, k);
                }
            } else {
                st.assign_slot(slot, n, now_ms());
            }
        }
        _ => {
            return ctx.out.error(
                "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP",
            )
        }
    }
    st.update_state(now_ms());
    // Redis saves after SETSLOT without fsync (a reshard runs three a
    // slot), unless closing an import bumped our config epoch, which must
    // survive a crash.
    let bumped = st.myself().config_epoch != epoch;
    drop(st);
    if !bumped {
        b.flush_unsynced();
        return ctx.out.ok();
    }
    if ctx.in_exec {
        // Inside EXEC or a script nothing may wait: save here.
        b.flush();
        return ctx.out.ok();
    }
    // The caller waits for the fsynced save like a blocked client; the
    // other clients of its thread do not (a reshard closes one import a
    // slot, and two fsyncs there stalled every client of that thread).
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut ok = crate::resp::Out::new(ctx.client.proto);
    ok.ok();
    let reply = ok.buf().to_vec();
    b.flush_then(move || {
        let _ = tx.send(reply);
    });
    ctx.client.blocked = Some(crate::client::BlockState {
        reply: rx,
        deadline: None,
    });
}

/// CLUSTER LINKS
fn links(ctx: &mut Ctx<'_>) {
    let Some(b) = bus(ctx) else { return };
    let st = b.state.lock();
    let links: Vec<_> = st
        .links()
        .into_iter()
        .filter_map(|(link, out, node, ctime)| node.map(|n| (link, out, n, ctime)))
        .collect();
    drop(st);
    ctx.out.array(links.len());
    for (link, out, node, ctime) in links {
        let queued = b.queued(link) as i64;
        ctx.out.map_len(6);
        ctx.out.bulk(b"direction");
        ctx.out.bulk(if out { b"to" as &[u8] } else { b"from" });
        ctx.out.bulk(b"node");
        ctx.out.bulk(name_str(&node).as_bytes());
        ctx.out.bulk(b"create-time");
        ctx.out.int(ctime as i64);
        ctx.out.bulk(b"events");
        ctx.out.bulk(b"r");
        ctx.out.bulk(b"send-buffer-allocated");
        ctx.out.int(queued);
        ctx.out.bulk(b"send-buffer-used");
        ctx.out.int(queued);
    }
}

/// READONLY
fn readonly(ctx: &mut Ctx<'_>) {
    if bus(ctx).is_none() {
        return;
    }
    ctx.client.readonly = true;
    ctx.out.ok();
}

/// READWRITE
fn readwrite(ctx: &mut Ctx<'_>) {
    if bus(ctx).is_none() {
        return;
    }
    ctx.client.readonly = false;
    ctx.out.ok();
}

/// ASKING
fn asking(ctx: &mut Ctx<'_>) {
    if bus(ctx).is_none() {
        return;
    }
    ctx.client.asking = true;
    ctx.out.ok();
}

const C: &str = "cluster";
const A: u32 = ADMIN | STALE | NO_ASYNC_LOADING;

static CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    spec("addslots", -3, A, (0, 0, 0), C, addslots),
    spec("addslotsrange", -4, A, (0, 0, 0), C, addslotsrange),
    spec("bumpepoch", 2, A, (0, 0, 0), C, bumpepoch),
    spec(
        "count-failure-reports",
        3,
        ADMIN | STALE,
        (0, 0, 0),
        C,
        count_failure_reports,
    ),
    spec("countkeysinslot", 3, STALE, (0, 0, 0), C, countkeysinslot),
    spec("delslots", -3, A, (0, 0, 0), C, delslots),
    spec("delslotsrange", -4, A, (0, 0, 0), C, delslotsrange),
    spec("failover", -2, A, (0, 0, 0), C, failover),
    spec("flushslots", 2, A, (0, 0, 0), C, flushslots),
    spec("forget", 3, A, (0, 0, 0), C, forget),
    spec("getkeysinslot", 4, STALE, (0, 0, 0), C, getkeysinslot),
    spec("help", 2, LOADING | STALE, (0, 0, 0), C, help),
    spec("info", 2, STALE, (0, 0, 0), C, info),
    spec("keyslot", 3, STALE, (0, 0, 0), C, keyslot),
    spec("links", 2, STALE, (0, 0, 0), C, links),
    spec("meet", -4, A, (0, 0, 0), C, meet),
    spec("myid", 2, STALE, (0, 0, 0), C, myid),
    spec("nodes", 2, STALE, (0, 0, 0), C, nodes),
    spec("replicas", 3, ADMIN | STALE, (0, 0, 0), C, replicas_cmd),
    spec("replicate", 3, A, (0, 0, 0), C, replicate),
    spec("reset", -2, ADMIN | NOSCRIPT | STALE, (0, 0, 0), C, reset),
    spec("saveconfig", 2, A, (0, 0, 0), C, saveconfig),
    spec("set-config-epoch", 3, A, (0, 0, 0), C, set_config_epoch),
    spec("setslot", -4, A, (0, 0, 0), C, setslot),
    spec("shards", 2, STALE, (0, 0, 0), C, shards),
    spec("slaves", 3, ADMIN | STALE, (0, 0, 0), C, replicas_cmd),
    spec("slots", 2, STALE, (0, 0, 0), C, slots),
];

/// The cluster family.
pub static COMMANDS: &[CommandSpec] = &[
    container_spec("cluster", -2, 0, C, CLUSTER_SUBCOMMANDS),
    spec(
        "readonly",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        C,
        readonly,
    ),
    spec(
        "readwrite",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        C,
        readwrite,
    ),
    spec("asking", 1, FAST, (0, 0, 0), C, asking),
];
