//! Server commands: INFO DBSIZE FLUSHDB FLUSHALL SWAPDB TIME LASTSAVE
//! COMMAND CONFIG SHUTDOWN (DEBUG has its own file, `debug.rs`).

use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use rampart_keyspace::Detached;
use serde_json::Value as Json;

use super::flags::*;
use super::{container_spec, err, getkeys, help, spec, CommandSpec, Ctx, Registry};
use crate::resp::Out;

/// `INFO [section ...]`
fn info(ctx: &mut Ctx<'_>) {
    let wanted: Vec<String> = ctx.args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let text = crate::info::render(ctx.srv, &wanted);
    ctx.out.verbatim(text.as_bytes());
}

/// `DBSIZE`
fn dbsize(ctx: &mut Ctx<'_>) {
    ctx.out.int(ctx.db().len() as i64);
}

/// Parses FLUSHALL/FLUSHDB's `[ASYNC|SYNC]`; `None` after a syntax error.
fn flush_mode(ctx: &mut Ctx<'_>) -> Option<bool> {
    match ctx.args.len() {
        1 => Some(ctx.srv.config.flag("lazyfree-lazy-user-flush")),
        2 => match ctx.opt(1).as_str() {
            "async" => Some(true),
            "sync" => Some(false),
            _ => {
                ctx.out.error(err::SYNTAX);
                None
            }
        },
        _ => {
            ctx.out.error(err::SYNTAX);
            None
        }
    }
}

/// Empties database `i`, firing WATCHes on keys that existed.
fn flush_db(ctx: &Ctx<'_>, i: usize) -> Detached {
    let db = ctx.srv.keyspace.db(i);
    let now = ctx.now;
    ctx.srv.hooks.watches.touch_db(i, |k| db.exists(k, now));
    let n = db.len() as u64;
    ctx.srv.hooks.dirty.add(n);
    db.clear()
}

/// Frees detached contents, on a background thread when asked to (ASYNC)
/// so a big flush does not stall the caller.
fn free(old: Vec<Detached>, background: bool) {
    if background {
        std::thread::spawn(move || drop(old));
    } else {
        drop(old);
    }
}

/// `FLUSHDB [ASYNC|SYNC]`
fn flushdb(ctx: &mut Ctx<'_>) {
    let Some(background) = flush_mode(ctx) else {
        return;
    };
    let old = flush_db(ctx, ctx.client.db);
    free(vec![old], background);
    ctx.srv.tracking.flushed();
    ctx.out.ok();
}

/// `FLUSHALL [ASYNC|SYNC]`
fn flushall(ctx: &mut Ctx<'_>) {
    let Some(background) = flush_mode(ctx) else {
        return;
    };
    let old = (0..ctx.srv.keyspace.len())
        .map(|i| flush_db(ctx, i))
        .collect();
    free(old, background);
    ctx.srv.tracking.flushed();
    ctx.out.ok();
}

/// `SWAPDB index1 index2`
fn swapdb(ctx: &mut Ctx<'_>) {
    // Cluster mode has db 0 only.
    if ctx.srv.cluster.get().is_some() {
        return ctx.out.error("ERR SWAPDB is not allowed in cluster mode");
    }
    let Some(a) = crate::num::parse_i64(&ctx.args[1]) else {
        return ctx.out.error("ERR invalid first DB index");
    };
    let Some(b) = crate::num::parse_i64(&ctx.args[2]) else {
        return ctx.out.error("ERR invalid second DB index");
    };
    let n = ctx.srv.keyspace.len() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return ctx.out.error(err::DB_INDEX);
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        let ks = &ctx.srv.keyspace;
        let (da, db) = (ks.db(a), ks.db(b));
        let now = ctx.now;
        // Watchers of a key present in either database see a change.
        let w = &ctx.srv.hooks.watches;
        w.touch_db(a, |k| da.exists(k, now) || db.exists(k, now));
        w.touch_db(b, |k| da.exists(k, now) || db.exists(k, now));
        da.swap_with(db);
        ctx.srv.hooks.dirty.add(1);
    }
    ctx.out.ok();
}

/// `TIME`
fn time(ctx: &mut Ctx<'_>) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk_int(d.as_secs() as i64);
    ctx.out.bulk_int(d.subsec_micros() as i64);
}

/// Redis's own COMMAND INFO / COMMAND DOCS data (ACL categories, tips, key
/// specs, docs), generated from redis-server 7.0 by
/// `scripts/gen-command-reference.py`, plus the same data for Rampart's own
/// commands (BACKUP) from `rampart-reference.json`, so COMMAND describes
/// them and the table test pins them too.
pub(crate) fn reference() -> &'static serde_json::Map<String, Json> {
    static REF: OnceLock<serde_json::Map<String, Json>> = OnceLock::new();
    REF.get_or_init(|| {
        let mut all: serde_json::Map<String, Json> =
            serde_json::from_str(include_str!("reference.json")).unwrap_or_default();
        let own: serde_json::Map<String, Json> =
            serde_json::from_str(include_str!("rampart-reference.json")).unwrap_or_default();
        all.extend(own);
        all
    })
}

/// Writes a typed reference node (see the generator) for the client's
/// protocol.
fn render(out: &mut Out, v: &Json, keep_sub: &dyn Fn(&str) -> bool) {
    let items = || v["v"].as_array().cloned().unwrap_or_default();
    match v["t"].as_str().unwrap_or("") {
        "simple" => out.simple(v["v"].as_str().unwrap_or("")),
        "bulk" => out.bulk(v["v"].as_str().unwrap_or("").as_bytes()),
        "int" => out.int(v["v"].as_i64().unwrap_or(0)),
        "null" => out.null(),
        "arr" => {
            let items = items();
            out.array(items.len());
            for i in &items {
                render(out, i, keep_sub);
            }
        }
        "set" => {
            let items = items();
            out.set_len(items.len());
            for i in &items {
                render(out, i, keep_sub);
            }
        }
        "map" => {
            let pairs = items();
            out.map_len(pairs.len());
            for p in &pairs {
                render(out, &p[0], keep_sub);
                if p[0]["v"] == "subcommands" && p[1]["t"] == "map" {
                    // Only the subcommands Rampart has.
                    let subs: Vec<Json> = p[1]["v"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|s| keep_sub(s[0]["v"].as_str().unwrap_or("")))
                        .collect();
                    out.map_len(subs.len());
                    for s in &subs {
                        render(out, &s[0], keep_sub);
                        render(out, &s[1], keep_sub);
                    }
                } else {
                    render(out, &p[1], keep_sub);
                }
            }
        }
        _ => out.null(),
    }
}

fn reference_info(full_name: &str) -> Option<Json> {
    let r = reference();
    match full_name.split_once('|') {
        None => r.get(full_name).map(|e| e["info"].clone()),
        Some((parent, _)) => r.get(parent).and_then(|e| {
            e["info"]["v"][9]["v"]
                .as_array()
                .and_then(|subs| subs.iter().find(|s| s["v"][0]["v"] == full_name).cloned())
        }),
    }
}

/// One COMMAND INFO entry: arity, flags and key positions from our table,
/// ACL categories, tips and key specs from Redis's reference.
fn command_entry(out: &mut Out, reg: &Registry, id: usize) {
    let spec = reg.spec(id);
    let full = reg.full_name(id).to_string();
    let refinfo = reference_info(&full);
    out.array(10);
    out.bulk(full.as_bytes());
    out.int(spec.arity as i64);
    let names: Vec<&str> = NAMES
        .iter()
        .filter(|(f, _)| spec.flags & f != 0)
        .map(|(_, n)| *n)
        .collect();
    out.set_len(names.len());
    for n in names {
        out.simple(n);
    }
    out.int(spec.first_key as i64);
    out.int(spec.last_key as i64);
    out.int(spec.step as i64);
    let none = |_: &str| true;
    for field in 6..9 {
        match refinfo.as_ref().map(|r| &r["v"][field]) {
            Some(v) if !v.is_null() => render(out, v, &none),
            _ => out.set_len(0),
        }
    }
    let subs: Vec<usize> = (0..reg.entries.len())
        .filter(|&i| reg.entries[i].2.is_some_and(|p| std::ptr::eq(p, spec)))
        .collect();
    out.set_len(subs.len());
    for s in subs {
        command_entry(out, reg, s);
    }
}

fn top_ids(reg: &Registry) -> Vec<usize> {
    (0..reg.entries.len())
        .filter(|&i| reg.entries[i].2.is_none())
        .collect()
}

/// `COMMAND`
fn command(ctx: &mut Ctx<'_>) {
    let reg = &ctx.srv.commands;
    let ids = top_ids(reg);
    ctx.out.array(ids.len());
    for id in ids {
        command_entry(ctx.out, reg, id);
    }
}

/// `COMMAND COUNT`
fn command_count(ctx: &mut Ctx<'_>) {
    ctx.out.int(ctx.srv.commands.count() as i64);
}

/// `COMMAND INFO [command-name ...]`
fn command_info(ctx: &mut Ctx<'_>) {
    let reg = &ctx.srv.commands;
    if ctx.args.len() == 2 {
        return command(ctx);
    }
    ctx.out.array(ctx.args.len() - 2);
    for name in &ctx.args[2..] {
        match lookup_full(reg, name) {
            Some(id) => command_entry(ctx.out, reg, id),
            None => ctx.out.null(),
        }
    }
}

/// Finds `get` or `config|get`.
fn lookup_full(reg: &Registry, name: &[u8]) -> Option<usize> {
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    match name.split_once('|') {
        None => reg.top(name.as_bytes()),
        Some((p, s)) => reg
            .top(p.as_bytes())
            .and_then(|id| reg.sub(id, s.as_bytes())),
    }
}

/// `COMMAND DOCS [command-name ...]`
fn command_docs(ctx: &mut Ctx<'_>) {
    let reg = &ctx.srv.commands;
    let ids: Vec<usize> = if ctx.args.len() == 2 {
        top_ids(reg)
    } else {
        ctx.args[2..]
            .iter()
            .filter_map(|n| lookup_full(reg, n))
            .collect()
    };
    let keep = |full: &str| lookup_full(reg, full.as_bytes()).is_some();
    ctx.out.map_len(ids.len());
    for id in ids {
        let full = reg.full_name(id).to_string();
        ctx.out.bulk(full.as_bytes());
        let docs = match full.split_once('|') {
            None => reference().get(&full).map(|e| e["docs"].clone()),
            Some((p, _)) => reference().get(p).and_then(|e| {
                e["docs"]["v"].as_array().and_then(|pairs| {
                    pairs
                        .iter()
                        .find(|kv| kv[0]["v"] == "subcommands")
                        .and_then(|kv| {
                            kv[1]["v"].as_array().and_then(|subs| {
                                subs.iter()
                                    .find(|s| s[0]["v"] == full.as_str())
                                    .map(|s| s[1].clone())
                            })
                        })
                })
            }),
        };
        match docs {
            Some(d) => render(ctx.out, &d, &keep),
            None => ctx.out.map_len(0),
        }
    }
}

/// `COMMAND LIST [FILTERBY MODULE name|ACLCAT cat|PATTERN pattern]`
fn command_list(ctx: &mut Ctx<'_>) {
    let reg = &ctx.srv.commands;
    let mut filter: Option<(String, String)> = None;
    if ctx.args.len() == 5 && ctx.opt(2) == "filterby" {
        filter = Some((
            ctx.opt(3),
            String::from_utf8_lossy(&ctx.args[4]).into_owned(),
        ));
    } else if ctx.args.len() != 2 {
        return ctx.out.error(err::SYNTAX);
    }
    let mut names = Vec::new();
    for (i, (full, _, _)) in reg.entries.iter().enumerate() {
        let keep = match &filter {
            None => true,
            Some((kind, v)) => match kind.as_str() {
                "module" => false,
                "pattern" => rampart_keyspace::glob::matches(v.as_bytes(), full.as_bytes(), true),
                "aclcat" => reference_info(full).is_some_and(|r| {
                    r["v"][6]["v"].as_array().is_some_and(|cats| {
                        cats.iter().any(|c| {
                            c["v"]
                                .as_str()
                                .is_some_and(|c| c.trim_start_matches('@').eq_ignore_ascii_case(v))
                        })
                    })
                }),
                _ => {
                    return ctx.out.error(err::SYNTAX);
                }
            },
        };
        let _ = i;
        if keep {
            names.push(full.clone());
        }
    }
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
}

/// `COMMAND GETKEYS command [arg ...]`
fn command_getkeys(ctx: &mut Ctx<'_>) {
    getkeys_reply(ctx, false);
}

/// `COMMAND GETKEYSANDFLAGS command [arg ...]`
fn command_getkeysandflags(ctx: &mut Ctx<'_>) {
    getkeys_reply(ctx, true);
}

/// Both GETKEYS forms, with Redis's checks in Redis's order: a known
/// command, one that takes keys, the right number of arguments, then keys
/// this line really names.
fn getkeys_reply(ctx: &mut Ctx<'_>, with_flags: bool) {
    let reg = &ctx.srv.commands;
    let Some(mut id) = reg.top(&ctx.args[2]) else {
        return ctx.out.error("ERR Invalid command specified");
    };
    let cmd_args = &ctx.args[2..];
    if !reg.spec(id).subcommands.is_empty() && cmd_args.len() >= 2 {
        match reg.sub(id, &cmd_args[1]) {
            Some(s) => id = s,
            None => return ctx.out.error("ERR Invalid command specified"),
        }
    }
    let spec = reg.spec(id);
    let name = reg.full_name(id).to_string();
    let info = reference_info(&name);
    let specs = info
        .as_ref()
        .and_then(|i| i["v"][8]["v"].as_array().cloned())
        .unwrap_or_default();
    let flags_of = |i: &Option<Json>| -> Vec<String> {
        i.as_ref()
            .and_then(|i| i["v"][2]["v"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f["v"].as_str().map(str::to_string))
            .collect()
    };
    // A command Redis has no data for keeps our own first/last/step.
    let from_table = info.is_none();
    let takes_keys = if from_table {
        spec.first_key > 0
    } else {
        getkeys::has_keys(&name, &specs)
    };
    if !takes_keys {
        return ctx.out.error("ERR The command has no key arguments");
    }
    let argc = cmd_args.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return ctx
            .out
            .error("ERR Invalid number of arguments specified for command");
    }
    let keys: getkeys::Keys4 = if from_table {
        spec.key_positions(cmd_args.len())
            .map(|pos| getkeys::KeyArg {
                pos,
                flags: Default::default(),
            })
            .collect()
    } else {
        getkeys::find(&name, &specs, cmd_args)
    };
    if keys.is_empty() {
        if flags_of(&info).iter().any(|f| f == "no_mandatory_keys") {
            return ctx.out.array(0);
        }
        return ctx.out.error("ERR Invalid arguments specified for command");
    }
    ctx.out.array(keys.len());
    for k in keys {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(&cmd_args[k.pos]);
            ctx.out.set_len(k.flags.names().count());
            for f in k.flags.names() {
                ctx.out.simple(f);
            }
        } else {
            ctx.out.bulk(&cmd_args[k.pos]);
        }
    }
}

/// `COMMAND HELP`
fn command_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    );
}

/// `CONFIG GET parameter [parameter ...]`
fn config_get(ctx: &mut Ctx<'_>) {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for p in &ctx.args[2..] {
        for (k, v) in ctx.srv.config.matching(&String::from_utf8_lossy(p)) {
            if !pairs.iter().any(|(n, _)| *n == k) {
                pairs.push((k, v));
            }
        }
    }
    ctx.out.map_len(pairs.len());
    for (k, v) in pairs {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
}

/// `CONFIG SET parameter value [parameter value ...]`
fn config_set(ctx: &mut Ctx<'_>) {
    if !ctx.args.len().is_multiple_of(2) {
        return ctx.out.error(err::SYNTAX);
    }
    let pairs: Vec<(String, String)> = ctx.args[2..]
        .chunks(2)
        .map(|p| {
            (
                String::from_utf8_lossy(&p[0]).into_owned(),
                String::from_utf8_lossy(&p[1]).into_owned(),
            )
        })
        .collect();
    let allow_protected = allowed_by(ctx, "enable-protected-configs");
    // The values a failed TLS reload must put back.
    let before: Vec<(String, String)> = pairs
        .iter()
        .filter_map(|(n, _)| Some((n.clone(), ctx.srv.config.get(&n.to_ascii_lowercase())?)))
        .collect();
    match ctx.srv.config.set_checked(&pairs, allow_protected) {
        Ok(()) => {
            let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
            if let Err(why) = crate::tls::config_changed(ctx.srv, &names) {
                let _ = ctx.srv.config.set(&before);
                return ctx.out.error(&format!(
                    "ERR CONFIG SET failed (possibly related to argument '{}') - {why}",
                    names
                        .iter()
                        .find(|n| n.to_ascii_lowercase().starts_with("tls-"))
                        .map_or("", |n| n.as_str())
                ));
            }
            if let Err((arg, why)) = crate::listen::config_changed(ctx.srv, &names) {
                let _ = ctx.srv.config.set(&before);
                // Reopen what the old values named (best effort: the
                // failure is what the client hears).
                let _ = crate::listen::config_changed(ctx.srv, &names);
                return ctx.out.error(&format!(
                    "ERR CONFIG SET failed (possibly related to argument '{arg}') - {why}"
                ));
            }
            for (name, value) in &pairs {
                match name.to_ascii_lowercase().as_str() {
                    "requirepass" => crate::acl::set_requirepass(ctx.srv, value),
                    "acllog-max-len" => {
                        let max = ctx.srv.config.int("acllog-max-len").max(0) as usize;
                        ctx.srv.acl.log.lock().trim(max);
                    }
                    "repl-backlog-size" => crate::repl::backlog_size_set(ctx.srv),
                    _ => {}
                }
            }
            crate::repl::config_changed(ctx.srv);
            crate::slowlog::configure(ctx.srv);
            crate::crash::configure(&ctx.srv.config);
            crate::latency::configure(ctx.srv);
            crate::evict::configure(ctx.srv);
            crate::client_mem::configure(ctx.srv);
            ctx.srv.pubsub.configure(&ctx.srv.config);
            crate::tracking::configure(ctx.srv);
            // CONFIG GET shows "An" as "A", as Redis prints it, but Redis
            // keeps `n` on: take the classes from the value as given.
            for (name, value) in &pairs {
                if name.eq_ignore_ascii_case("notify-keyspace-events") {
                    ctx.srv.pubsub.set_events(value);
                }
            }
            ctx.out.ok()
        }
        Err(e) => ctx.out.error(&e.0),
    }
}

/// `CONFIG RESETSTAT`
fn config_resetstat(ctx: &mut Ctx<'_>) {
    let s = &ctx.srv.stats;
    for a in [&s.connections, &s.rejected, &s.error_replies] {
        a.store(0, Ordering::Relaxed);
    }
    for c in [&s.commands, &s.hits, &s.misses, &s.net_in, &s.net_out] {
        c.reset();
    }
    s.errors.lock().clear();
    ctx.srv.hooks.expired_keys.store(0, Ordering::Relaxed);
    ctx.srv.evictor.reset_stats();
    ctx.srv.client_mem.evicted.store(0, Ordering::Relaxed);
    ctx.srv.commands.reset_stats();
    ctx.out.ok();
}

/// `CONFIG REWRITE`
fn config_rewrite(ctx: &mut Ctx<'_>) {
    match rewrite_config(ctx.srv, false) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(&e),
    }
}

/// Redis's `rewriteConfig`: the config file rewritten with the values in
/// force; `force_all` writes every directive, defaults included (DEBUG
/// CONFIG-REWRITE-FORCE-ALL).
pub(crate) fn rewrite_config(srv: &crate::state::Server, force_all: bool) -> Result<(), String> {
    // `user` lines: the users as they are now, unless an ACL file holds
    // them (then the file's lines are dropped from redis.conf), as Redis.
    let users = if srv.config.get("aclfile").unwrap_or_default().is_empty() {
        let acl = &srv.acl;
        acl.users()
            .iter()
            .map(|u| String::from_utf8_lossy(&rampart_acl::file::line(u, acl.catalog)).into_owned())
            .collect()
    } else {
        Vec::new()
    };
    srv.config.rewrite(&users, force_all)
}

/// `CONFIG HELP`
fn config_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]`
fn shutdown(ctx: &mut Ctx<'_>) {
    use crate::shutdown::{self, Flags, Outcome};
    let mut abort = false;
    let mut f = Flags::default();
    for i in 1..ctx.args.len() {
        match ctx.opt(i).as_str() {
            "nosave" => f.nosave = true,
            "save" => f.save = true,
            "now" => f.now = true,
            "force" => f.force = true,
            "abort" => abort = true,
            _ => return ctx.out.error(err::SYNTAX),
        }
    }
    if (abort && f != Flags::default()) || (f.save && f.nosave) {
        return ctx.out.error(err::SYNTAX);
    }
    if abort {
        return if shutdown::abort(ctx.srv) {
            ctx.out.ok()
        } else {
            ctx.out.error("ERR No shutdown in progress.")
        };
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    match shutdown::prepare(ctx.srv, f, Some(tx)) {
        Outcome::Exit => {
            ctx.srv.shutdown_ctl.wake.notify_one();
            // Redis closes the connection without a reply when it shuts down.
            ctx.client.close = true;
        }
        Outcome::Failed => ctx.out.error(shutdown::FAILED),
        // The caller stays blocked until the shutdown ends one way or the
        // other, as Redis's BLOCKED_SHUTDOWN clients do.
        Outcome::Waiting => {
            ctx.client.blocked = Some(crate::client::BlockState {
                reply: rx,
                deadline: None,
            })
        }
    }
}

/// Redis's `allowProtectedAction`: `yes`, or `local` from a loopback
/// connection.
pub(crate) fn allowed_by(ctx: &Ctx<'_>, option: &str) -> bool {
    match ctx.srv.config.get(option).as_deref() {
        Some("yes") => true,
        Some("local") => {
            ctx.client.handle.addr.starts_with("127.")
                || ctx.client.handle.addr.starts_with("[::1]")
        }
        _ => false,
    }
}

const S: &str = "server";

static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    spec("count", 2, LOADING | STALE, (0, 0, 0), S, command_count),
    spec("info", -2, LOADING | STALE, (0, 0, 0), S, command_info),
    spec("docs", -2, LOADING | STALE, (0, 0, 0), S, command_docs),
    spec("list", -2, LOADING | STALE, (0, 0, 0), S, command_list),
    spec(
        "getkeys",
        -4,
        LOADING | STALE,
        (0, 0, 0),
        S,
        command_getkeys,
    ),
    spec(
        "getkeysandflags",
        -4,
        LOADING | STALE,
        (0, 0, 0),
        S,
        command_getkeysandflags,
    ),
    spec("help", 2, LOADING | STALE, (0, 0, 0), S, command_help),
];

static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    spec(
        "get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        S,
        config_get,
    ),
    spec(
        "set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        S,
        config_set,
    ),
    spec(
        "resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        S,
        config_resetstat,
    ),
    spec(
        "rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        S,
        config_rewrite,
    ),
    spec("help", 2, LOADING | STALE, (0, 0, 0), S, config_help),
];

/// The server family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec("info", -1, LOADING | STALE, (0, 0, 0), S, info),
    spec("dbsize", 1, READONLY | FAST, (0, 0, 0), "server", dbsize),
    spec("flushdb", -1, WRITE | EXCLUSIVE, (0, 0, 0), S, flushdb),
    spec("flushall", -1, WRITE | EXCLUSIVE, (0, 0, 0), S, flushall),
    spec("swapdb", 3, WRITE | FAST | EXCLUSIVE, (0, 0, 0), S, swapdb),
    spec("time", 1, LOADING | STALE | FAST, (0, 0, 0), S, time),
    // COMMAND alone answers too (every command's entry): client libraries
    // send it at connect.
    CommandSpec {
        handler: command,
        ..container_spec("command", -1, LOADING | STALE, S, COMMAND_SUBCOMMANDS)
    },
    container_spec("config", -2, 0, S, CONFIG_SUBCOMMANDS),
    spec(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY | EXCLUSIVE,
        (0, 0, 0),
        S,
        shutdown,
    ),
];

#[cfg(test)]
mod tests {
    use crate::cmd::Registry;

    /// Every command's arity, flags and key positions agree with Redis 7.0's
    /// own COMMAND INFO (the reference file).
    #[test]
    fn table_matches_redis_reference() {
        let reg = Registry::new();
        let mut wrong = Vec::new();
        for id in 0..reg.entries.len() {
            let full = reg.full_name(id).to_string();
            let spec = reg.spec(id);
            let Some(r) = super::reference_info(&full) else {
                wrong.push(format!("{full}: not a Redis 7.0 command"));
                continue;
            };
            let v = &r["v"];
            let arity = v[1]["v"].as_i64().unwrap_or(0);
            let keys = (v[3]["v"].as_i64(), v[4]["v"].as_i64(), v[5]["v"].as_i64());
            if arity != spec.arity as i64 {
                wrong.push(format!("{full}: arity {} vs redis {arity}", spec.arity));
            }
            let ours = (
                Some(spec.first_key as i64),
                Some(spec.last_key as i64),
                Some(spec.step as i64),
            );
            if keys != ours {
                wrong.push(format!("{full}: keys {ours:?} vs redis {keys:?}"));
            }
            let theirs: Vec<String> = v[2]["v"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["v"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let mine: Vec<String> = super::NAMES
                .iter()
                .filter(|(f, _)| spec.flags & f != 0)
                .map(|(_, n)| n.to_string())
                .collect();
            let mut a = theirs.clone();
            let mut b = mine.clone();
            a.sort();
            b.sort();
            if a != b {
                wrong.push(format!("{full}: flags {b:?} vs redis {a:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn getkeys_follows_key_specs() {
        let mut k = crate::testkit::Kit::new();
        let run = |k: &mut crate::testkit::Kit, cmd: &str| {
            let args: Vec<&str> = cmd.split(' ').collect();
            k.run(&args)
        };
        assert_eq!(
            run(&mut k, "COMMAND GETKEYS zunionstore d 2 a b"),
            "*3\r\n$1\r\nd\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        assert_eq!(
            run(&mut k, "COMMAND GETKEYS zunionstore d 3 a b"),
            "-ERR Invalid arguments specified for command\r\n"
        );
        assert_eq!(
            run(&mut k, "COMMAND GETKEYS lmpop 1 a left"),
            "*1\r\n$1\r\na\r\n"
        );
        assert_eq!(
            run(&mut k, "COMMAND GETKEYS georadius a 1 1 1 m store b"),
            "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
        );
        assert_eq!(
            run(&mut k, "COMMAND GETKEYS ping a"),
            "-ERR The command has no key arguments\r\n"
        );
        assert_eq!(
            run(&mut k, "COMMAND GETKEYSANDFLAGS set a b get"),
            "*1\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+update\r\n"
        );
        assert_eq!(
            run(&mut k, "COMMAND GETKEYSANDFLAGS bitfield a get u8 0"),
            "*1\r\n*2\r\n$1\r\na\r\n*2\r\n+RO\r\n+access\r\n"
        );
    }
}
