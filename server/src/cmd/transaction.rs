//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH.
//!
//! EXEC holds the gate exclusive while the queued commands run, so no other
//! client's command interleaves, and WATCH is driven by the keyspace's
//! modification events (see `state::Watches`).

use std::sync::atomic::Ordering;

use super::flags::*;
use super::{spec, CommandSpec, Ctx};
use crate::client::Client;
use crate::dispatch::call;
use crate::state::Server;
use rampart_scripting::BUSY_EVAL;

/// Leaves MULTI state, dropping the queue.
pub fn discard_state(_srv: &Server, c: &mut Client) {
    c.multi = None;
    c.multi_error = false;
    c.handle.multi.store(-1, Ordering::Relaxed);
}

/// Drops every WATCH of the client.
pub fn unwatch_all(srv: &Server, c: &mut Client) {
    if !c.watched.is_empty() {
        srv.hooks.watches.unwatch(&c.watched, &c.dirty_cas);
        c.watched.clear();
    }
    c.dirty_cas.store(false, Ordering::Relaxed);
    c.handle.watching.store(0, Ordering::Relaxed);
}

/// `MULTI`
fn multi(ctx: &mut Ctx<'_>) {
    if ctx.client.multi.is_some() {
        return ctx.out.error("ERR MULTI calls can not be nested");
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_error = false;
    ctx.client.handle.multi.store(0, Ordering::Relaxed);
    ctx.out.ok();
}

/// `DISCARD`
fn discard(ctx: &mut Ctx<'_>) {
    if ctx.client.multi.is_none() {
        return ctx.out.error("ERR DISCARD without MULTI");
    }
    discard_state(ctx.srv, ctx.client);
    unwatch_all(ctx.srv, ctx.client);
    ctx.out.ok();
}

/// `EXEC`
fn exec(ctx: &mut Ctx<'_>) {
    let Some(queue) = ctx.client.multi.take() else {
        return ctx.out.error("ERR EXEC without MULTI");
    };
    let aborted = ctx.client.multi_error;
    discard_state(ctx.srv, ctx.client);
    if aborted {
        unwatch_all(ctx.srv, ctx.client);
        return ctx
            .out
            .error("EXECABORT Transaction discarded because of previous errors.");
    }
    let srv = ctx.srv;
    let busy = || srv.scripting.watch.busy.load(Ordering::Relaxed);
    let Some(_gate) = srv.keyspace.exclusive_unless(busy) else {
        // What Redis answers an EXEC it reads while a script is busy.
        unwatch_all(srv, ctx.client);
        let e = srv.scripting.watch.busy_error().unwrap_or(BUSY_EVAL);
        return ctx
            .out
            .error(&format!("EXECABORT Transaction discarded because of: {e}"));
    };
    // A watched key that expired since WATCH counts as modified: reading it
    // deletes it, which fires the watch.
    for (db, key) in &ctx.client.watched {
        srv.keyspace.db(*db).get(key, ctx.now, |_| ());
    }
    if ctx.client.dirty_cas.load(Ordering::Relaxed) {
        unwatch_all(srv, ctx.client);
        return ctx.out.null_array();
    }
    unwatch_all(srv, ctx.client);
    ctx.out.array(queue.len());
    // The effects go to the stream between MULTI and EXEC (written only if
    // the transaction changed something), so replicas apply them at once.
    srv.repl.begin_tx();
    let mut clock = crate::state::now_us();
    for (id, args) in &queue {
        match crate::acl::exec_check(srv, ctx.client, *id, args) {
            None => clock = call(srv, ctx.client, *id, args, ctx.out, ctx.now, clock, true),
            Some(e) => ctx.out.error(&e),
        }
    }
    srv.repl.end_tx();
    // EXEC itself succeeded even if queued commands failed.
    ctx.out.last_error = None;
    // Pushes inside the transaction wake blocked clients only now that it
    // has committed, as in Redis.
    if srv.hooks.blocked.count() > 0 {
        crate::blocking::serve_ready(srv, ctx.now);
    }
}

/// `WATCH key [key ...]`
fn watch(ctx: &mut Ctx<'_>) {
    if ctx.client.multi.is_some() {
        return ctx.out.error("ERR WATCH inside MULTI is not allowed");
    }
    let srv = ctx.srv;
    let _gate = srv.keyspace.shared();
    let db = ctx.client.db;
    for key in &ctx.args[1..] {
        if ctx.client.watched.iter().any(|(d, k)| *d == db && k == key) {
            continue;
        }
        // Collect a key that already expired now, so its deletion does not
        // count as a change after the WATCH.
        srv.keyspace.db(db).get(key, ctx.now, |_| ());
        srv.hooks.watches.watch(db, key, &ctx.client.dirty_cas);
        ctx.client.watched.push((db, key.clone()));
    }
    ctx.client
        .handle
        .watching
        .store(ctx.client.watched.len(), Ordering::Relaxed);
    ctx.out.ok();
}

/// `UNWATCH`
fn unwatch(ctx: &mut Ctx<'_>) {
    unwatch_all(ctx.srv, ctx.client);
    ctx.out.ok();
}

const T: &str = "transactions";

/// The transactions family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | TX_CONTROL,
        (0, 0, 0),
        T,
        multi,
    ),
    spec(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | SKIP_SLOWLOG | TX_CONTROL,
        (0, 0, 0),
        T,
        exec,
    ),
    spec(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | TX_CONTROL,
        (0, 0, 0),
        T,
        discard,
    ),
    spec(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY | TX_CONTROL,
        (1, -1, 1),
        T,
        watch,
    ),
    spec(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (0, 0, 0),
        T,
        unwatch,
    ),
];
