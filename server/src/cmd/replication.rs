//! Replication commands: REPLICAOF SLAVEOF REPLCONF PSYNC SYNC ROLE WAIT
//! FAILOVER.
//! The work is in [`crate::repl`]; these handlers parse and reply.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::flags::*;
use super::{err, spec, CommandSpec, Ctx};
use crate::repl::Handoff;

/// `REPLICAOF host port` / `REPLICAOF NO ONE` (and `SLAVEOF`): follow a
/// primary, or stop following one and become a primary.
fn replicaof(ctx: &mut Ctx<'_>) {
    let srv = ctx.srv;
    // The cluster decides who replicates whom (CLUSTER REPLICATE).
    if srv.config.flag("cluster-enabled") {
        return ctx.out.error("ERR REPLICAOF not allowed in cluster mode.");
    }
    if srv.failover.active() {
        return ctx
            .out
            .error("ERR REPLICAOF not allowed while failing over.");
    }
    if ctx.opt(1) == "no" && ctx.opt(2) == "one" {
        if srv.repl.is_replica() {
            let source = format!(
                "user request from 'id={} addr={}'",
                ctx.client.handle.id, ctx.client.handle.addr
            );
            crate::repl::promote(srv, &source);
            let _ = srv.config.set(&[("replicaof".to_string(), String::new())]);
        }
        return ctx.out.ok();
    }
    if ctx.client.is_master {
        return ctx
            .out
            .error("ERR Command is not valid when client is a replica.");
    }
    // Redis parses the port with its range check's own message.
    let port = crate::num::parse_i64(&ctx.args[2]).and_then(|p| u16::try_from(p).ok());
    let Some(port) = port else {
        return ctx.out.error("ERR Invalid master port");
    };
    let host = String::from_utf8_lossy(&ctx.args[1]).into_owned();
    if srv.repl.is_replica() {
        let l = srv.repl.link();
        if l.host.eq_ignore_ascii_case(&host) && l.port == port {
            tracing::info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
            return ctx.out.simple("OK Already connected to specified master");
        }
    }
    crate::repl::start_replica(srv, host.clone(), port);
    tracing::info!(
        "REPLICAOF {host}:{port} enabled (user request from 'id={} addr={}')",
        ctx.client.handle.id,
        ctx.client.handle.addr
    );
    ctx.out.ok();
}

/// `REPLCONF option value [option value ...]`: what a replica tells its
/// primary before and after PSYNC.
fn replconf(ctx: &mut Ctx<'_>) {
    if ctx.args.len().is_multiple_of(2) {
        return ctx.out.error(err::SYNTAX);
    }
    let mut i = 1;
    while i < ctx.args.len() {
        let opt = ctx.opt(i);
        let val = String::from_utf8_lossy(&ctx.args[i + 1]).into_owned();
        match opt.as_str() {
            "listening-port" => match crate::num::parse_i64(&ctx.args[i + 1]) {
                Some(p) => ctx.client.repl.listening_port = p,
                None => return ctx.out.error(err::NOT_INT),
            },
            "ip-address" => ctx.client.repl.ip = Some(val),
            "capa" => match val.to_ascii_lowercase().as_str() {
                "eof" => ctx.client.repl.capa_eof = true,
                "psync2" => ctx.client.repl.capa_psync2 = true,
                "rampart-enc" => ctx.client.repl.capa_enc = true,
                // Unknown capabilities are ignored, as in Redis.
                _ => {}
            },
            // Only meaningful on a replica link, which reads them itself;
            // a client sending them gets no reply, as in Redis.
            "ack" | "fack" | "getack" => return,
            "rdb-only" | "rdb-filter-only" => {}
            _ => {
                let o = String::from_utf8_lossy(&ctx.args[i]).into_owned();
                return ctx
                    .out
                    .error(&format!("ERR Unrecognized REPLCONF option: {o}"));
            }
        }
        i += 2;
    }
    ctx.out.ok();
}

/// `PSYNC replid offset`: the connection becomes a replica link (partial
/// resync from the backlog, or a full sync).
///
/// `PSYNC replid offset FAILOVER` comes from a primary handing over to
/// this replica (its FAILOVER): when `replid` is the history this replica
/// follows, it becomes the primary first, then serves the request as any
/// other (a partial resync from its previous id).
fn psync(ctx: &mut Ctx<'_>) {
    if ctx.client.handoff.is_some() {
        return;
    }
    let replid = String::from_utf8_lossy(&ctx.args[1]).into_owned();
    let srv = ctx.srv;
    if ctx.args.len() > 3 && ctx.args[3].eq_ignore_ascii_case(b"failover") {
        tracing::warn!("Failover request received for replid {replid}.");
        if !srv.repl.is_replica() {
            return ctx
                .out
                .error("ERR PSYNC FAILOVER can't be sent to a master.");
        }
        if replid != srv.repl.ids().0 {
            return ctx
                .out
                .error("ERR PSYNC FAILOVER replid must match my replid.");
        }
        let who = crate::cmd::connection::client_line(&ctx.client.handle, None, &srv.commands);
        crate::repl::promote(srv, &format!("failover request from '{}'", who.trim_end()));
        let _ = srv.config.set(&[("replicaof".to_string(), String::new())]);
    }
    if refuse_while_failing_over(ctx) {
        return;
    }
    let Some(offset) = ctx.int_arg(2) else { return };
    ctx.client.handoff = Some(Handoff::Psync { replid, offset });
}

/// Replicas cannot sync with a server handing over (Redis's check, with
/// its wording).
fn refuse_while_failing_over(ctx: &mut Ctx<'_>) -> bool {
    let active = ctx.srv.failover.active();
    if active {
        ctx.out.error("NOMASTERLINK Can't SYNC while failing over");
    }
    active
}

/// `SYNC`: the pre-PSYNC protocol; always a full sync.
fn sync(ctx: &mut Ctx<'_>) {
    if ctx.client.handoff.is_none() && !refuse_while_failing_over(ctx) {
        ctx.client.handoff = Some(Handoff::Sync);
    }
}

/// `FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT milliseconds]`: hands
/// this primary's role to a replica (see [`crate::failover`]).
fn failover(ctx: &mut Ctx<'_>) {
    let srv = ctx.srv;
    if srv.config.flag("cluster-enabled") {
        return ctx.out.error(
            "ERR FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command instead.",
        );
    }
    if ctx.args.len() == 2 && ctx.args[1].eq_ignore_ascii_case(b"abort") {
        if !srv.failover.active() {
            return ctx.out.error("ERR No failover in progress.");
        }
        crate::failover::abort(srv, "Failover manually aborted");
        return ctx.out.ok();
    }
    let args: Vec<&[u8]> = ctx.args[1..].iter().map(|a| &a[..]).collect();
    let started = crate::failover::parse(&args).and_then(|req| crate::failover::begin(srv, req));
    match started {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(e),
    }
}

/// `ROLE`: `master offset [[ip port offset]...]` or
/// `slave host port state offset`.
fn role(ctx: &mut Ctx<'_>) {
    let srv = ctx.srv;
    if srv.repl.is_replica() {
        let l = srv.repl.link();
        ctx.out.array(5);
        ctx.out.bulk(b"slave");
        ctx.out.bulk(l.host.as_bytes());
        ctx.out.int(l.port as i64);
        ctx.out.bulk(match l.state {
            "connecting" => b"connecting".as_slice(),
            "sync" => b"sync",
            "connected" => b"connected",
            _ => b"connect",
        });
        let off = if l.state == "connected" {
            srv.repl.offset() as i64
        } else {
            -1
        };
        ctx.out.int(off);
        return;
    }
    let replicas = srv.repl.replicas();
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(srv.repl.offset() as i64);
    ctx.out.array(replicas.len());
    for r in &replicas {
        ctx.out.array(3);
        ctx.out.bulk(r.ip.as_bytes());
        ctx.out.bulk(r.port.to_string().as_bytes());
        ctx.out
            .bulk(r.ack.load(Ordering::Relaxed).to_string().as_bytes());
    }
}

/// `WAIT numreplicas timeout`: blocks until that many replicas
/// acknowledged every write made so far, or the timeout (ms, 0 = forever)
/// passes; replies how many did.
fn wait(ctx: &mut Ctx<'_>) {
    let srv = ctx.srv;
    if srv.repl.is_replica() {
        return ctx.out.error("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.");
    }
    let Some(want) = ctx.int_arg(1) else { return };
    let timeout = match crate::num::parse_i64(&ctx.args[2]) {
        None => {
            return ctx
                .out
                .error("ERR timeout is not an integer or out of range")
        }
        Some(t) if t < 0 => return ctx.out.error("ERR timeout is negative"),
        Some(t) => t as u64,
    };
    // Redis waits for the client's own last write, not the latest one.
    let target = ctx.client.woff;
    let acked = srv.repl.acked(target);
    if acked as i64 >= want || ctx.in_exec || ctx.client.multi.is_some() {
        return ctx.out.int(acked as i64);
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return ctx.out.int(acked as i64);
    };
    srv.repl.request_acks();
    let repl = srv.repl.clone();
    let proto = ctx.client.proto;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout));
    rt.spawn(async move {
        loop {
            if tx.is_closed() {
                // The client went away.
                return;
            }
            let n = repl.acked(target);
            if n as i64 >= want || deadline.is_some_and(|d| Instant::now() >= d) {
                let mut o = crate::resp::Out::new(proto);
                o.int(n as i64);
                let _ = tx.send(o.buf().to_vec());
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    // The task answers at the deadline itself, so the connection waits
    // without one of its own.
    ctx.client.blocked = Some(crate::client::BlockState {
        reply: rx,
        deadline: None,
    });
}

const R: &str = "server";

/// The replication family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "replicaof",
        3,
        ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING | EXCLUSIVE,
        (0, 0, 0),
        R,
        replicaof,
    ),
    spec(
        "slaveof",
        3,
        ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING | EXCLUSIVE,
        (0, 0, 0),
        R,
        replicaof,
    ),
    spec(
        "replconf",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        (0, 0, 0),
        R,
        replconf,
    ),
    spec(
        "failover",
        -1,
        ADMIN | NOSCRIPT | STALE | EXCLUSIVE,
        (0, 0, 0),
        R,
        failover,
    ),
    spec(
        "psync",
        -3,
        // Exclusive: PSYNC ... FAILOVER may change the role, as REPLICAOF.
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI | EXCLUSIVE,
        (0, 0, 0),
        R,
        psync,
    ),
    spec(
        "sync",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
        (0, 0, 0),
        R,
        sync,
    ),
    spec(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        (0, 0, 0),
        R,
        role,
    ),
    spec("wait", 3, NOSCRIPT, (0, 0, 0), "generic", wait),
];
