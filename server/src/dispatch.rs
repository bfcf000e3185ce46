//! The generic rules every command goes through, applied once, in Redis's
//! `processCommand` order: lookup, arity, authentication, MULTI queuing;
//! then the call under the gate, with stats and propagation.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::client::Client;
use crate::cmd::{flags, CommandSpec, Ctx};
use crate::resp::Out;
use crate::state::{now_us, Server};

/// Resolves `args` to a command id, writing Redis's error when it can't.
fn resolve(srv: &Server, args: &[Bytes], out: &mut Out) -> Result<usize, Option<usize>> {
    let reg = &srv.commands;
    let Some(id) = reg.top(&args[0]) else {
        let mut shown = String::new();
        for a in &args[1..] {
            if shown.len() >= 128 {
                break;
            }
            let room = 128 - shown.len();
            let a = String::from_utf8_lossy(a);
            let a: String = a.chars().take(room).collect();
            shown.push_str(&format!("'{a}' "));
        }
        let name: String = String::from_utf8_lossy(&args[0])
            .chars()
            .take(128)
            .collect();
        out.error(&format!(
            "ERR unknown command '{name}', with args beginning with: {shown}"
        ));
        return Err(None);
    };
    let mut id = id;
    let spec = reg.spec(id);
    if !spec.subcommands.is_empty() && args.len() >= 2 {
        match reg.sub(id, &args[1]) {
            Some(sid) => id = sid,
            None => {
                let sub: String = String::from_utf8_lossy(&args[1])
                    .chars()
                    .take(128)
                    .collect();
                out.error(&format!(
                    "ERR unknown subcommand '{sub}'. Try {} HELP.",
                    spec.name.to_ascii_uppercase()
                ));
                return Err(Some(id));
            }
        }
    }
    let spec = reg.spec(id);
    let argc = args.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        out.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            reg.full_name(id)
        ));
        return Err(Some(id));
    }
    Ok(id)
}

/// Redis's replication rules in `processCommand` order: NOREPLICAS on a
/// primary short of good replicas, READONLY and MASTERDOWN on a replica.
/// The primary's own link obeys none of them.
fn replication_rules(
    srv: &Server,
    c: &Client,
    spec: &crate::cmd::CommandSpec,
    writes: bool,
) -> Result<(), &'static str> {
    if c.is_master {
        return Ok(());
    }
    let replica = srv.repl.is_replica();
    if writes && !replica {
        let min = srv.config.hot.min_replicas_to_write.load(Ordering::Relaxed);
        let lag = srv.config.hot.min_replicas_max_lag.load(Ordering::Relaxed);
        if min > 0 && lag > 0 && (srv.repl.good_replicas(lag as u64) as i64) < min {
            return Err("NOREPLICAS Not enough good replicas to write.");
        }
    }
    if !replica {
        return Ok(());
    }
    let hot = &srv.config.hot;
    if writes && hot.replica_read_only.load(Ordering::Relaxed) {
        return Err("READONLY You can't write against a read only replica.");
    }
    if !spec.has(flags::STALE)
        && !hot.replica_serve_stale_data.load(Ordering::Relaxed)
        && srv.repl.link().state != "connected"
    {
        return Err(
            "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        );
    }
    Ok(())
}

/// Runs one request from a client: the generic checks, then the command.
/// `start_us` is the time it starts (Unix µs); the return value the time
/// it ended, which the connection loop passes as the next command's start,
/// so a pipeline reads the clock once per command, not twice. A command
/// queued by MULTI takes `args`, leaving it empty.
pub fn execute(
    srv: &Server,
    c: &mut Client,
    args: &mut Vec<Bytes>,
    out: &mut Out,
    start_us: u64,
) -> u64 {
    let mark = out.len();
    crate::tracking::set_current(c.handle.id);
    let skip = std::mem::take(&mut c.skip_next);
    out.last_error = None;
    let now = start_us / 1000;
    let mut end_us = start_us;
    c.handle.last_active.store(now, Ordering::Relaxed);
    match precheck(srv, c, args, out, start_us) {
        Ok(id) => {
            if c.multi.is_some() && !srv.commands.spec(id).has(flags::TX_CONTROL) {
                let args = std::mem::take(args);
                c.multi.get_or_insert_with(Vec::new).push((id, args));
                c.handle.multi.fetch_add(1, Ordering::Relaxed);
                out.simple("QUEUED");
            } else {
                end_us = call(srv, c, id, args, out, now, start_us, false);
            }
        }
        Err(id) => {
            if id.is_some_and(|id| srv.commands.spec(id).name == "exec") {
                // Redis turns a rejected EXEC into the transaction's abort.
                let text = String::from_utf8_lossy(&out.buf()[mark..]).into_owned();
                let reason = text
                    .trim_start_matches('-')
                    .trim_end()
                    .trim_start_matches("ERR ")
                    .to_string();
                out.truncate(mark);
                out.error(&format!(
                    "EXECABORT Transaction discarded because of: {reason}"
                ));
                crate::cmd::transaction::discard_state(srv, c);
                crate::cmd::transaction::unwatch_all(srv, c);
            }
            if let Some(id) = id {
                srv.commands.reject(id);
            }
            if let Some(code) = out.last_error.take() {
                srv.stats.error(&code);
            }
            if c.multi.is_some() {
                c.multi_error = true;
            }
        }
    }
    if skip || c.reply_off {
        out.truncate(mark);
    }
    if c.proto >= 3 && c.subs.any() && c.handle.mailbox.has_mail() {
        // Pushes the command caused (a PUBLISH to itself, a keyspace
        // event) come before its reply, as Redis writes them, and are
        // sent even when replies are off.
        c.handle.mailbox.drain_at(out, mark);
    }
    if srv.tracking.tracking_clients.load(Ordering::Relaxed) != 0 {
        srv.tracking.after_command(&c.handle, out);
        // CLIENT CACHING covers the next command, or the next transaction.
        if c.caching
            && c.multi.is_none()
            && !args
                .first()
                .is_some_and(|a| a.eq_ignore_ascii_case(b"client"))
        {
            c.caching = false;
        }
    }
    crate::tracking::set_current(0);
    end_us
}

fn precheck(
    srv: &Server,
    c: &mut Client,
    args: &[Bytes],
    out: &mut Out,
    start_us: u64,
) -> Result<usize, Option<usize>> {
    let id = resolve(srv, args, out)?;
    let spec = srv.commands.spec(id);
    if srv.acl.auth_required(c) && !spec.has(flags::NO_AUTH) {
        out.error("NOAUTH Authentication required.");
        return Err(Some(id));
    }
    // One relaxed load while no script is past busy-reply-threshold.
    if srv.scripting.watch.busy.load(Ordering::Relaxed) {
        if let Some(e) = srv.scripting.watch.busy_error() {
            if !spec.has(flags::ALLOW_BUSY) {
                out.error(e);
                return Err(Some(id));
            }
            if spec.name == "shutdown" {
                // Only SHUTDOWN NOSAVE may end a server whose script is
                // past its time limit; it cannot wait for the gate the
                // script holds, so it exits here, saving nothing.
                if args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"nosave")) {
                    tracing::warn!("SHUTDOWN NOSAVE while a script is busy: exiting now");
                    std::process::exit(0);
                }
                out.error(e);
                return Err(Some(id));
            }
        }
    }
    if c.multi.is_some() && spec.has(flags::NO_MULTI) {
        out.error("ERR Command not allowed inside a transaction");
        return Err(Some(id));
    }
    if !crate::acl::precheck(srv, c, id, args, out) {
        return Err(Some(id));
    }
    // Cluster mode only: one atomic load otherwise.
    if let Some(bus) = srv.cluster.get() {
        if !c.is_master {
            let routed = crate::cluster::route::check(srv, bus, c, id, args);
            // ASKING covers one command (a whole transaction once queued).
            if c.multi.is_none() && spec.name != "asking" {
                c.asking = false;
            }
            if let Err(e) = routed {
                let e = e.reply();
                if spec.name == "exec" {
                    // Redis discards the transaction and answers the
                    // redirection itself, not EXECABORT.
                    crate::cmd::transaction::discard_state(srv, c);
                    crate::cmd::transaction::unwatch_all(srv, c);
                    out.error(&e);
                    srv.commands.reject(id);
                    return Err(None);
                }
                out.error(&e);
                return Err(Some(id));
            }
        }
    }
    if srv.evictor.limit() != 0
        && !c.is_master
        && crate::evict::perform(srv, start_us) == crate::evict::Outcome::Fail
        && needs_memory(srv, c, spec)
    {
        out.error(crate::evict::OOM);
        return Err(Some(id));
    }
    let writes = spec.has(flags::WRITE)
        || spec.name == "ping"
        || (spec.name == "exec"
            && c.multi.as_ref().is_some_and(|q| {
                q.iter()
                    .any(|(id, _)| srv.commands.spec(*id).has(flags::WRITE))
            }));
    if writes && !c.is_master && crate::persist::writes_refused(srv) {
        out.error("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.");
        return Err(Some(id));
    }
    if let Err(e) = replication_rules(srv, c, spec, writes && spec.name != "ping") {
        out.error(e);
        return Err(Some(id));
    }
    if c.proto == 2
        && c.subs.any()
        && !SUBSCRIBED_MODE.contains(&spec.name)
        // Shard channels the server took away end subscribed mode too.
        && {
            crate::pubsub::settle(c);
            c.subs.any()
        }
    {
        out.error(&format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            srv.commands.full_name(id)
        ));
        return Err(Some(id));
    }
    Ok(id)
}

/// Redis's `trackingRememberKeys`: a tracking connection read these keys.
#[cold]
fn remember_keys(srv: &Server, c: &Client, id: usize, args: &[Bytes]) {
    let st = c.handle.tracking.lock().clone();
    if (st.optin && !c.caching) || (st.optout && c.caching) {
        return;
    }
    if let Some(keys) = srv.acl.key_args(srv.acl.catalog_id(id), args) {
        srv.tracking
            .remember(&c.handle, keys.iter().filter_map(|k| args.get(k.pos)));
    }
}

/// What a RESP2 client may run while subscribed.
const SUBSCRIBED_MODE: &[&str] = &[
    "ping",
    "subscribe",
    "ssubscribe",
    "unsubscribe",
    "sunsubscribe",
    "psubscribe",
    "punsubscribe",
    "quit",
    "reset",
];

/// Whether a command is refused while memory is over `maxmemory` and
/// nothing can be evicted, as in Redis's `processCommand`: commands
/// flagged `denyoom`, EXEC of a transaction holding one, and anything
/// queued in MULTI (queuing takes memory too) but EXEC, DISCARD, QUIT and
/// RESET.
fn needs_memory(srv: &Server, c: &Client, spec: &CommandSpec) -> bool {
    if spec.has(flags::DENYOOM) {
        return true;
    }
    match &c.multi {
        Some(q) if spec.name == "exec" => q
            .iter()
            .any(|(id, _)| srv.commands.spec(*id).has(flags::DENYOOM)),
        Some(_) => !matches!(spec.name, "discard" | "quit" | "reset"),
        None => false,
    }
}

/// Answers -BUSY to a command that waited for the gate while a script ran
/// past its time limit, counted as a rejected call as Redis counts it.
fn reject_busy(srv: &Server, c: &mut Client, id: usize, out: &mut Out) -> u64 {
    let e = srv
        .scripting
        .watch
        .busy_error()
        .unwrap_or(rampart_scripting::BUSY_EVAL);
    out.error(e);
    srv.commands.reject(id);
    if let Some(code) = out.last_error.take() {
        srv.stats.error(&code);
    }
    if c.multi.is_some() {
        c.multi_error = true;
    }
    now_us()
}

/// Calls a resolved command. `now` is the command's clock in ms (fixed for
/// a whole EXEC, as Redis), `start_us` when it started, for its duration.
/// `gated` is true inside EXEC, which already holds the gate exclusive for
/// the whole transaction. Returns the time it ended (Unix µs).
#[allow(clippy::too_many_arguments)]
pub fn call(
    srv: &Server,
    c: &mut Client,
    id: usize,
    args: &[Bytes],
    out: &mut Out,
    now: u64,
    start_us: u64,
    gated: bool,
) -> u64 {
    let spec = srv.commands.spec(id);
    let exclusive = spec.has(flags::EXCLUSIVE | flags::MOVABLEKEYS)
        || spec.key_positions(args.len()).nth(1).is_some();
    let mut _shared = None;
    let mut excl = None;
    // A script past busy-reply-threshold holds the gate: whoever waits for
    // it then gets -BUSY, as Redis answers the clients it reads meanwhile.
    let give_up =
        || !spec.has(flags::ALLOW_BUSY) && srv.scripting.watch.busy.load(Ordering::Relaxed);
    if !gated && !spec.has(flags::TX_CONTROL | flags::NO_GATE) {
        if exclusive {
            excl = srv.keyspace.exclusive_unless(give_up);
            if excl.is_none() {
                return reject_busy(srv, c, id, out);
            }
        } else {
            _shared = srv.keyspace.shared_unless(give_up);
            if _shared.is_none() {
                return reject_busy(srv, c, id, out);
            }
            // Blocked clients must be served before anyone else sees this
            // write: take the gate exclusive. Checked under the gate, as
            // clients only block under the exclusive gate. Likewise while
            // the replication stream is active (it only turns on or off
            // under the exclusive gate): apply and propagate must be one
            // critical section, or two writes to one key could reach the
            // stream in the opposite order of their apply.
            if spec.has(flags::WRITE)
                && (srv.hooks.blocked.count() > 0 || srv.hooks.stream.active())
            {
                _shared = None;
                excl = srv.keyspace.exclusive_unless(give_up);
                if excl.is_none() {
                    return reject_busy(srv, c, id, out);
                }
            }
        }
    }
    let before_err = out.last_error.take();
    let changes_before = crate::state::changes_on_this_thread();
    let mut ctx = Ctx {
        srv,
        client: c,
        out,
        args,
        now,
        cmd: id,
        in_exec: gated,
        propagated: false,
    };
    (spec.handler)(&mut ctx);
    let propagated = ctx.propagated;
    if c.tracking_keys && spec.has(flags::READONLY) && !spec.has(flags::PUBSUB) {
        remember_keys(srv, c, id, args);
    }
    if srv.monitors.any() && !spec.has(flags::SKIP_MONITOR | flags::ADMIN) {
        crate::monitor::feed(srv, c, srv.commands.full_name(id), args);
    }
    let end_us = now_us();
    let usec = end_us.saturating_sub(start_us);
    let failed = out.last_error.is_some();
    // Redis adds a blocked command to its histogram when it is served.
    let track = c.blocked.is_none() && srv.latency.tracking.load(Ordering::Relaxed);
    srv.commands.record(id, usec, failed, track);
    srv.latency.add_if_needed(
        if spec.has(flags::FAST) {
            "fast-command"
        } else {
            "command"
        },
        usec / 1000,
    );
    if srv.slowlog.wants(usec) && !spec.has(flags::SKIP_SLOWLOG) && c.blocked.is_none() {
        let name = c.handle.name.lock().clone().unwrap_or_default();
        srv.slowlog
            .push(srv.commands.full_name(id), args, usec, &c.handle.addr, name);
    }
    srv.stats.commands.add(1);
    if let Some(code) = &out.last_error {
        srv.stats.error(code);
    }
    let changed = crate::state::changes_on_this_thread() != changes_before;
    if changed && !propagated && spec.has(flags::WRITE) && srv.hooks.stream.active() {
        let argv: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        srv.hooks.stream.propagate(c.db, &argv);
    }
    if !gated {
        // Redis sets it after every command it runs (queued ones aside),
        // read or write: WAIT waits for the offset as it stood then.
        c.woff = srv.repl.offset_relaxed();
    }
    c.handle.last_cmd.store(id + 1, Ordering::Relaxed);
    if c.is_master {
        crate::repl::applied(srv, c);
    }
    if excl.is_some() {
        if srv.hooks.blocked.count() > 0 {
            crate::blocking::serve_ready(srv, now);
        } else {
            crate::blocking::clear_ready();
        }
    }
    drop(excl);
    if before_err.is_some() && out.last_error.is_none() {
        out.last_error = before_err;
    }
    end_us
}
