//! Connection commands: PING ECHO QUIT RESET AUTH HELLO SELECT CLIENT.

use std::sync::atomic::Ordering;

use super::flags::*;
use super::{container_spec, err, help, spec, subcommand_syntax_error, CommandSpec, Ctx, Registry};
use crate::state::{now_ms, ClientHandle};

/// `PING [message]`
fn ping(ctx: &mut Ctx<'_>) {
    if ctx.client.proto == 2 && ctx.client.subs.any() && {
        crate::pubsub::settle(ctx.client);
        ctx.client.subs.any()
    } {
        // Subscribed RESP2 clients read every reply as a push.
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        return ctx.out.bulk(ctx.args.get(1).map_or(&b""[..], |a| &a[..]));
    }
    match ctx.args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(&ctx.args[1]),
        _ => ctx.wrong_args(),
    }
}

/// `ECHO message`
fn echo(ctx: &mut Ctx<'_>) {
    ctx.out.bulk(&ctx.args[1]);
}

/// `QUIT`: replies OK, then closes.
fn quit(ctx: &mut Ctx<'_>) {
    ctx.out.ok();
    ctx.client.close = true;
}

/// `RESET`: back to a fresh connection's state.
fn reset(ctx: &mut Ctx<'_>) {
    super::transaction::discard_state(ctx.srv, ctx.client);
    super::transaction::unwatch_all(ctx.srv, ctx.client);
    ctx.srv.pubsub.leave_all(ctx.client);
    ctx.srv.tracking.disable(&ctx.client.handle);
    if ctx.srv.monitors.any() {
        ctx.srv.monitors.remove(&ctx.client.handle);
        let mut f = ctx.client.handle.flags.lock();
        if f.as_str() == "O" {
            f.clear();
        }
    }
    ctx.client.tracking_keys = false;
    ctx.client.caching = false;
    let c = &mut *ctx.client;
    c.db = 0;
    c.handle.db.store(0, Ordering::Relaxed);
    c.proto = 2;
    c.handle.resp.store(2, Ordering::Relaxed);
    c.reply_off = false;
    c.skip_next = false;
    *c.handle.name.lock() = None;
    c.handle.no_evict.store(false, Ordering::Relaxed);
    c.authenticated = ctx.srv.acl.starts_authenticated();
    c.set_user(Some(crate::acl::default_user(ctx.srv)));
    *c.handle.user.lock() = bytes::Bytes::from_static(b"default");
    ctx.out.proto = 2;
    ctx.out.simple("RESET");
}

/// `AUTH [username] password`
fn auth(ctx: &mut Ctx<'_>) {
    let (user, pass) = match ctx.args.len() {
        2 => (&b"default"[..], &ctx.args[1][..]),
        3 => (&ctx.args[1][..], &ctx.args[2][..]),
        _ => return ctx.out.error(err::SYNTAX),
    };
    if ctx.args.len() == 2
        && ctx
            .srv
            .acl
            .users()
            .get(b"default")
            .is_some_and(|d| d.nopass())
    {
        return ctx.out.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
    }
    if crate::acl::authenticate(ctx.srv, ctx.client, user, pass, &ctx.args[0]) {
        ctx.out.ok();
    } else {
        ctx.out
            .error("WRONGPASS invalid username-password pair or user is disabled.");
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`
fn hello(ctx: &mut Ctx<'_>) {
    let mut ver = None;
    if ctx.args.len() >= 2 {
        match crate::num::parse_i64(&ctx.args[1]) {
            Some(v) => {
                if !(2..=3).contains(&v) {
                    return ctx.out.error("NOPROTO unsupported protocol version");
                }
                ver = Some(v as u8);
            }
            None => {
                return ctx
                    .out
                    .error("ERR Protocol version is not an integer or out of range")
            }
        }
    }
    let mut i = 2;
    let mut auth = None;
    let mut name = None;
    while i < ctx.args.len() {
        let more = ctx.args.len() - i - 1;
        match ctx.opt(i).as_str() {
            "auth" if more >= 2 => {
                auth = Some((ctx.args[i + 1].clone(), ctx.args[i + 2].clone()));
                i += 3;
            }
            "setname" if more >= 1 => {
                name = Some(ctx.args[i + 1].clone());
                i += 2;
            }
            _ => {
                let opt = String::from_utf8_lossy(&ctx.args[i]).into_owned();
                return ctx
                    .out
                    .error(&format!("ERR Syntax error in HELLO option '{opt}'"));
            }
        }
    }
    if let Some((u, p)) = &auth {
        if !crate::acl::authenticate(ctx.srv, ctx.client, u, p, &ctx.args[0]) {
            return ctx
                .out
                .error("WRONGPASS invalid username-password pair or user is disabled.");
        }
    }
    if !ctx.client.authenticated {
        return ctx.out.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(n) = name {
        if !valid_name(&n) {
            return ctx.out.error(BAD_NAME);
        }
        *ctx.client.handle.name.lock() = (!n.is_empty()).then_some(n);
    }
    if let Some(v) = ver {
        ctx.client.proto = v;
        ctx.client.handle.resp.store(v, Ordering::Relaxed);
        ctx.out.proto = v;
    }
    let o = &mut *ctx.out;
    o.map_len(7);
    o.bulk(b"server");
    o.bulk(b"redis");
    o.bulk(b"version");
    o.bulk(crate::REDIS_VERSION.as_bytes());
    o.bulk(b"proto");
    o.int(ctx.client.proto as i64);
    o.bulk(b"id");
    o.int(ctx.client.handle.id as i64);
    o.bulk(b"mode");
    o.bulk(b"standalone");
    o.bulk(b"role");
    o.bulk(b"master");
    o.bulk(b"modules");
    o.array(0);
}

/// `SELECT index`
fn select(ctx: &mut Ctx<'_>) {
    let Some(i) = ctx.int_arg(1) else { return };
    // Redis reads the index as a C int first (getIntFromObjectOrReply).
    if i32::try_from(i).is_err() {
        return ctx
            .out
            .error("ERR value is out of range, value must between -2147483648 and 2147483647");
    }
    if i != 0 && ctx.srv.cluster.get().is_some() {
        return ctx.out.error("ERR SELECT is not allowed in cluster mode");
    }
    if i < 0 || i as usize >= ctx.srv.keyspace.len() {
        return ctx.out.error(err::DB_INDEX);
    }
    ctx.client.db = i as usize;
    ctx.client.handle.db.store(i as usize, Ordering::Relaxed);
    ctx.out.ok();
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

fn valid_name(n: &[u8]) -> bool {
    n.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

/// `CLIENT ID`
fn client_id(ctx: &mut Ctx<'_>) {
    ctx.out.int(ctx.client.handle.id as i64);
}

/// `CLIENT SETNAME name`
fn client_setname(ctx: &mut Ctx<'_>) {
    let n = ctx.args[2].clone();
    if !valid_name(&n) {
        return ctx.out.error(BAD_NAME);
    }
    *ctx.client.handle.name.lock() = (!n.is_empty()).then_some(n);
    ctx.out.ok();
}

/// `CLIENT GETNAME`
fn client_getname(ctx: &mut Ctx<'_>) {
    match ctx.client.handle.name.lock().clone() {
        Some(n) => ctx.out.bulk(&n),
        None => ctx.out.null(),
    }
}

/// One CLIENT LIST / CLIENT INFO line.
pub fn client_line(h: &ClientHandle, own_cmd: Option<&str>, commands: &Registry) -> String {
    let now = now_ms();
    let age = h.created.elapsed().as_secs();
    let idle = now.saturating_sub(h.last_active.load(Ordering::Relaxed)) / 1000;
    let name = h
        .name
        .lock()
        .as_ref()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_default();
    let multi = h.multi.load(Ordering::Relaxed);
    let mut flags = h.flags.lock().clone();
    let (sub, psub, ssub) = (
        h.subs.sub.load(Ordering::Relaxed),
        h.subs.psub.load(Ordering::Relaxed),
        h.subs.ssub.load(Ordering::Relaxed),
    );
    if sub + psub + ssub > 0 {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    let tracking = h.tracking.lock().clone();
    if tracking.on {
        flags.push('t');
    }
    if tracking.broken {
        flags.push('R');
    }
    if tracking.bcast {
        flags.push('B');
    }
    if h.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let cmd = match (own_cmd, h.last_cmd.load(Ordering::Relaxed)) {
        (Some(c), _) => c.to_string(),
        (None, 0) => "NULL".to_string(),
        (None, id) => commands.full_name(id - 1).to_string(),
    };
    let qbuf = h.qbuf.load(Ordering::Relaxed);
    // Output the client has not taken: Redis keeps up to 16 KB of it in
    // the client's buffer (`obl`) and, once the socket stops taking it,
    // everything after in a list of blocks of 16 KB or more (`oll`
    // blocks, `omem` bytes), waiting for the socket to be writable
    // meanwhile (`events=rw`).
    let pending = h.mailbox.pending(h.outbox.len());
    let (obl, oll) = if pending <= 16384 {
        (pending, 0)
    } else {
        (0, pending.div_ceil(16384))
    };
    let omem = oll * 16384;
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl={obl} oll={oll} omem={omem} tot-mem={} events={} cmd={} user={} redir={} resp={}",
        h.id,
        h.addr,
        h.laddr,
        h.fd,
        name,
        age,
        idle,
        flags,
        h.db.load(Ordering::Relaxed),
        sub,
        psub,
        ssub,
        multi,
        qbuf,
        16384usize.saturating_sub(qbuf),
        16384 + qbuf + omem,
        if pending > 0 { "rw" } else { "r" },
        cmd,
        String::from_utf8_lossy(&h.user.lock()),
        if tracking.on {
            tracking.redirect as i64
        } else {
            -1
        },
        h.resp.load(Ordering::Relaxed)
    )
}

/// Redis's client type of a connection, by the names `getClientTypeByName`
/// accepts (`slave` and `replica` are one type).
fn client_type(h: &ClientHandle) -> &'static str {
    match h.flags.lock().as_str() {
        f if f.contains('S') => "replica",
        f if f.contains('M') => "master",
        _ if h.subs.any() => "pubsub",
        _ => "normal",
    }
}

/// A client type name as `getClientTypeByName` reads it, or None.
fn type_by_name(name: &[u8]) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_slice() {
        b"normal" => Some("normal"),
        b"replica" | b"slave" => Some("replica"),
        b"master" => Some("master"),
        b"pubsub" => Some("pubsub"),
        _ => None,
    }
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]`: Redis
/// 7.0 takes one filter only, and lists IDs in the order given (repeats
/// included), skipping those that are not connected.
fn client_list(ctx: &mut Ctx<'_>) {
    let own = ctx.client.handle.id;
    let all = ctx.srv.clients.all();
    let mut text = String::new();
    let line = |h: &ClientHandle, text: &mut String| {
        let own_cmd = (h.id == own).then_some("client|list");
        text.push_str(&client_line(h, own_cmd, &ctx.srv.commands));
        text.push('\n');
    };
    let n = ctx.args.len();
    if n == 4 && ctx.opt(2) == "type" {
        let Some(kind) = type_by_name(&ctx.args[3]) else {
            let raw = String::from_utf8_lossy(&ctx.args[3]).into_owned();
            return ctx.out.error(&format!("ERR Unknown client type '{raw}'"));
        };
        for h in all.iter().filter(|h| client_type(h) == kind) {
            line(h, &mut text);
        }
    } else if n > 3 && ctx.opt(2) == "id" {
        for a in &ctx.args[3..] {
            let Some(id) = crate::num::parse_i64(a) else {
                return ctx.out.error("ERR Invalid client ID");
            };
            if let Some(h) = all.iter().find(|h| h.id as i64 == id) {
                line(h, &mut text);
            }
        }
    } else if n != 2 {
        return ctx.out.error(err::SYNTAX);
    } else {
        for h in &all {
            line(h, &mut text);
        }
    }
    ctx.out.verbatim(text.as_bytes());
}

/// `CLIENT INFO`
fn client_info(ctx: &mut Ctx<'_>) {
    let mut line = client_line(&ctx.client.handle, Some("client|info"), &ctx.srv.commands);
    line.push('\n');
    ctx.out.verbatim(line.as_bytes());
}

/// `CLIENT KILL ip:port` or `CLIENT KILL <filter> <value> ...`: options
/// are read left to right and the first bad one is the error, as in Redis.
fn client_kill(ctx: &mut Ctx<'_>) {
    let own = ctx.client.handle.id;
    let all = ctx.srv.clients.all();
    let n = ctx.args.len();
    if n == 3 {
        let addr = String::from_utf8_lossy(&ctx.args[2]).into_owned();
        let Some(h) = all.iter().find(|h| h.addr == addr) else {
            return ctx.out.error("ERR No such client");
        };
        kill(h);
        if h.id == own {
            ctx.client.close = true;
        }
        return ctx.out.ok();
    }
    let mut id = None;
    let mut addr = None;
    let mut laddr = None;
    let mut kind = None;
    let mut skipme = true;
    let mut user = None;
    let mut i = 2;
    while i < n {
        if i + 1 >= n {
            return ctx.out.error(err::SYNTAX);
        }
        let v = &ctx.args[i + 1];
        match ctx.opt(i).as_str() {
            "id" => match crate::num::parse_i64(v) {
                Some(n) if n > 0 => id = Some(n as u64),
                _ => return ctx.out.error("ERR client-id should be greater than 0"),
            },
            "type" => match type_by_name(v) {
                Some(t) => kind = Some(t),
                None => {
                    let raw = String::from_utf8_lossy(v);
                    return ctx.out.error(&format!("ERR Unknown client type '{raw}'"));
                }
            },
            "addr" => addr = Some(String::from_utf8_lossy(v).into_owned()),
            "laddr" => laddr = Some(String::from_utf8_lossy(v).into_owned()),
            "user" => {
                if ctx.srv.acl.users().get(v).is_none() {
                    let raw = String::from_utf8_lossy(v);
                    return ctx.out.error(&format!("ERR No such user '{raw}'"));
                }
                user = Some(v.clone());
            }
            "skipme" => match v.to_ascii_lowercase().as_slice() {
                b"yes" => skipme = true,
                b"no" => skipme = false,
                _ => return ctx.out.error(err::SYNTAX),
            },
            _ => return ctx.out.error(err::SYNTAX),
        }
        i += 2;
    }
    let mut killed = 0;
    for h in &all {
        if id.is_some_and(|i| i != h.id)
            || addr.as_ref().is_some_and(|a| *a != h.addr)
            || laddr.as_ref().is_some_and(|a| *a != h.laddr)
            || kind.is_some_and(|k| k != client_type(h))
            || user.as_ref().is_some_and(|u| *u != *h.user.lock())
            || (skipme && h.id == own)
        {
            continue;
        }
        kill(h);
        if h.id == own {
            ctx.client.close = true;
        }
        killed += 1;
    }
    ctx.out.int(killed);
}

fn kill(h: &ClientHandle) {
    h.killed.store(true, Ordering::Relaxed);
    h.wake.notify_one();
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`
fn client_pause(ctx: &mut Ctx<'_>) {
    if ctx.args.len() > 4 {
        return subcommand_syntax_error(ctx);
    }
    // The mode is checked before the timeout, as in Redis.
    let mut writes_only = false;
    if ctx.args.len() == 4 {
        match ctx.opt(3).as_str() {
            "write" => writes_only = true,
            "all" => {}
            _ => return ctx.out.error("ERR CLIENT PAUSE mode must be WRITE or ALL"),
        }
    }
    let Some(ms) = crate::num::parse_i64(&ctx.args[2]) else {
        return ctx
            .out
            .error("ERR timeout is not an integer or out of range");
    };
    if ms < 0 {
        return ctx.out.error("ERR timeout is negative");
    }
    let p = &ctx.srv.pause;
    let until = ctx.now.saturating_add(ms as u64);
    // A stricter or longer pause wins over a running one, as in Redis.
    let cur_until = p.until.load(Ordering::Relaxed);
    let cur_active = cur_until > ctx.now;
    if !cur_active || until > cur_until {
        p.until.store(until, Ordering::Relaxed);
    }
    if !cur_active || !writes_only {
        p.writes_only.store(writes_only, Ordering::Relaxed);
    }
    ctx.out.ok();
}

/// `CLIENT UNPAUSE`
fn client_unpause(ctx: &mut Ctx<'_>) {
    ctx.srv.pause.until.store(0, Ordering::Relaxed);
    ctx.srv.pause.wake.notify_waiters();
    ctx.out.ok();
}

/// `CLIENT REPLY ON|OFF|SKIP`
fn client_reply(ctx: &mut Ctx<'_>) {
    match ctx.opt(2).as_str() {
        "on" => {
            ctx.client.reply_off = false;
            ctx.out.ok();
        }
        "off" => ctx.client.reply_off = true,
        "skip" => {
            if !ctx.client.reply_off {
                ctx.client.skip_next = true;
            }
        }
        _ => ctx.out.error(err::SYNTAX),
    }
}

/// `CLIENT NO-EVICT ON|OFF`
fn client_no_evict(ctx: &mut Ctx<'_>) {
    match ctx.opt(2).as_str() {
        "on" => ctx.client.handle.no_evict.store(true, Ordering::Relaxed),
        "off" => ctx.client.handle.no_evict.store(false, Ordering::Relaxed),
        _ => return ctx.out.error(err::SYNTAX),
    }
    ctx.out.ok();
}

/// `CLIENT UNBLOCK client-id [TIMEOUT|ERROR]`
fn client_unblock(ctx: &mut Ctx<'_>) {
    if ctx.args.len() > 4 {
        return subcommand_syntax_error(ctx);
    }
    // The reason is checked before the id, as in Redis.
    let mut error = false;
    if ctx.args.len() == 4 {
        match ctx.opt(3).as_str() {
            "timeout" => {}
            "error" => error = true,
            _ => {
                return ctx
                    .out
                    .error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
            }
        }
    }
    let Some(id) = ctx.int_arg(2) else { return };
    let Some(w) = ctx.srv.hooks.blocked.remove(id as u64) else {
        return ctx.out.int(0);
    };
    let mut reply = crate::resp::Out::new(w.proto);
    if error {
        reply.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
    } else {
        (w.on_timeout)(&mut reply);
    }
    w.reply(reply.buf().to_vec());
    ctx.out.int(1);
}

/// `CLIENT HELP`
fn client_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
        ],
    );
}

const C: &str = "connection";

static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    spec(
        "unblock",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        client_unblock,
    ),
    spec(
        "getredir",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        super::tracking::client_getredir,
    ),
    spec(
        "trackinginfo",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        super::tracking::client_trackinginfo,
    ),
    spec(
        "tracking",
        -3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        super::tracking::client_tracking,
    ),
    spec(
        "caching",
        3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        super::tracking::client_caching,
    ),
    spec("id", 2, NOSCRIPT | LOADING | STALE, (0, 0, 0), C, client_id),
    spec(
        "setname",
        3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        client_setname,
    ),
    spec(
        "getname",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        client_getname,
    ),
    spec(
        "list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        client_list,
    ),
    spec(
        "info",
        2,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        client_info,
    ),
    spec(
        "kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        client_kill,
    ),
    spec(
        "pause",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        client_pause,
    ),
    spec(
        "unpause",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        client_unpause,
    ),
    spec(
        "reply",
        3,
        NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        client_reply,
    ),
    spec(
        "no-evict",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        C,
        client_no_evict,
    ),
    spec("help", 2, LOADING | STALE, (0, 0, 0), C, client_help),
];

/// The connection family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec("ping", -1, FAST, (0, 0, 0), C, ping),
    spec("echo", 2, LOADING | STALE | FAST, (0, 0, 0), C, echo),
    spec(
        "quit",
        -1,
        ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | TX_CONTROL,
        (0, 0, 0),
        C,
        quit,
    ),
    spec(
        "reset",
        1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY | TX_CONTROL,
        (0, 0, 0),
        C,
        reset,
    ),
    spec(
        "auth",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        (0, 0, 0),
        C,
        auth,
    ),
    spec(
        "hello",
        -1,
        NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY,
        (0, 0, 0),
        C,
        hello,
    ),
    spec("select", 2, LOADING | STALE | FAST, (0, 0, 0), C, select),
    container_spec("client", -2, 0, C, CLIENT_SUBCOMMANDS),
];
