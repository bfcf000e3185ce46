//! Scripting: EVAL EVALSHA EVAL_RO EVALSHA_RO, SCRIPT (LOAD EXISTS FLUSH
//! KILL DEBUG HELP), FCALL FCALL_RO and FUNCTION (LOAD DELETE LIST FLUSH
//! DUMP RESTORE STATS KILL HELP), on the Lua engines of `rampart-scripting`.
//!
//! A script runs under the keyspace's exclusive gate (EVAL has movable
//! keys), so it is atomic as in Redis; its effects go to replicas wrapped
//! in MULTI/EXEC. Other connections read the engine's [`Watch`] in
//! dispatch and get -BUSY once it runs past `busy-reply-threshold`.
//!
//! [`Watch`]: rampart_scripting::Watch

use std::sync::atomic::Ordering;

use rampart_persistence::rdb;
use rampart_scripting::{flags as sf, RestorePolicy, RunOptions};

use super::flags::*;
use super::{container_spec, help, spec, CommandSpec, Ctx};
use crate::script::{RunRules, ScriptHost};

/// EVAL's `numkeys`: `Some(n)` or the error replied.
fn numkeys(ctx: &mut Ctx<'_>) -> Option<usize> {
    let n = ctx.int_arg(2)?;
    if n > ctx.args.len() as i64 - 3 {
        ctx.out
            .error("ERR Number of keys can't be greater than number of args");
        return None;
    }
    if n < 0 {
        ctx.out.error("ERR Number of keys can't be negative");
        return None;
    }
    Some(n as usize)
}

/// Whether memory is over `maxmemory` with nothing left to evict (Redis's
/// `pre_command_oom_state`).
fn over_memory(ctx: &Ctx<'_>) -> bool {
    let srv = ctx.srv;
    srv.evictor.limit() != 0
        && crate::evict::perform(srv, crate::state::now_us()) == crate::evict::Outcome::Fail
}

/// Redis's `scriptPrepareForRun` checks of a script's flags.
fn prepare(ctx: &mut Ctx<'_>, script_flags: u64, ro: bool, oom: bool) -> Result<RunRules, String> {
    let srv = ctx.srv;
    let hot = &srv.config.hot;
    let replica = srv.repl.is_replica();
    let obey = ctx.client.is_master;
    let stale = replica
        && srv.repl.link().state != "connected"
        && !hot.replica_serve_stale_data.load(Ordering::Relaxed);
    if script_flags & sf::EVAL_COMPAT_MODE != 0 {
        if stale {
            return Err(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
                    .into(),
            );
        }
        return Ok(RunRules {
            read_only: ro,
            allow_oom: false,
            oom,
            // Scripts without a shebang may touch any key of this node.
            allow_cross_slot: true,
            slot: None,
        });
    }
    if script_flags & sf::NO_CLUSTER != 0 && srv.cluster.get().is_some() {
        return Err("ERR Can not run script on cluster, 'no-cluster' flag is set.".into());
    }
    if stale && script_flags & sf::ALLOW_STALE == 0 {
        return Err("MASTERDOWN Link with MASTER is down, replica-serve-stale-data is set to 'no' and 'allow-stale' flag is not set on the script.".into());
    }
    if script_flags & sf::NO_WRITES == 0 {
        if replica && hot.replica_read_only.load(Ordering::Relaxed) && !obey {
            return Err("READONLY Can not run script with write flag on readonly replica".into());
        }
        if crate::persist::writes_refused(srv) && !obey {
            return Err("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts.".into());
        }
        if ro {
            return Err("ERR Can not execute a script with write flag using *_ro command.".into());
        }
        let min = hot.min_replicas_to_write.load(Ordering::Relaxed);
        let lag = hot.min_replicas_max_lag.load(Ordering::Relaxed);
        if !replica && min > 0 && lag > 0 && (srv.repl.good_replicas(lag as u64) as i64) < min {
            return Err("NOREPLICAS Not enough good replicas to write.".into());
        }
    }
    if oom && script_flags & (sf::ALLOW_OOM | sf::NO_WRITES) == 0 {
        return Err("OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'".into());
    }
    Ok(RunRules {
        read_only: ro || script_flags & sf::NO_WRITES != 0,
        allow_oom: script_flags & sf::ALLOW_OOM != 0,
        oom,
        allow_cross_slot: script_flags & sf::ALLOW_CROSS_SLOT != 0,
        slot: None,
    })
}

/// A script's keys and arguments, after the command, its script or
/// function and the number of keys (no allocation for the usual few).
fn script_args(args: &[bytes::Bytes], nkeys: usize) -> (ArgList<'_>, ArgList<'_>) {
    let keys = args[3..3 + nkeys].iter().map(|a| &a[..]).collect();
    let argv = args[3 + nkeys..].iter().map(|a| &a[..]).collect();
    (keys, argv)
}

/// Borrowed arguments, inline up to 8.
type ArgList<'a> = smallvec::SmallVec<[&'a [u8]; 8]>;

/// The slot of the keys a script declares, which its commands must stay
/// in (Redis's `c->slot` from `getNodeByQuery`); routing already refused
/// declared keys of several slots. Only in cluster mode.
fn declared_slot(ctx: &Ctx<'_>, keys: &[&[u8]]) -> Option<u16> {
    if ctx.srv.cluster.get().is_none() || ctx.client.is_master {
        return None;
    }
    keys.first().map(|k| rampart_cluster::key_hash_slot(k))
}

/// Writes a script's reply, recording its error code for the stats.
fn reply(ctx: &mut Ctx<'_>, bytes: &[u8]) {
    if bytes.first() == Some(&b'-') {
        let end = bytes
            .iter()
            .position(|&b| b == b' ' || b == b'\r')
            .unwrap_or(bytes.len());
        ctx.out.last_error = Some(String::from_utf8_lossy(&bytes[1..end]).into_owned());
    }
    ctx.out.raw(bytes);
}

fn eval_generic(ctx: &mut Ctx<'_>, evalsha: bool, ro: bool) {
    let Some(nkeys) = numkeys(ctx) else {
        return;
    };
    let srv = ctx.srv;
    let mut guard = srv.scripting.engine.lock();
    let Some(engine) = guard.as_mut() else {
        return ctx.out.error("ERR Lua engine unavailable");
    };
    engine.set_memory_limit(crate::script::vm_memory_cap(srv));
    let sha = if evalsha {
        // Clients send the lower-case hex SCRIPT LOAD gave them: taken
        // as it is, without the lossy decoding and lowering.
        match std::str::from_utf8(&ctx.args[1]) {
            Ok(s) if !s.bytes().any(|b| b.is_ascii_uppercase()) => s.to_owned(),
            _ => String::from_utf8_lossy(&ctx.args[1]).to_ascii_lowercase(),
        }
    } else {
        match engine.load(&ctx.args[1]) {
            Ok((sha, _)) => sha,
            Err(e) => return ctx.out.error(&e),
        }
    };
    let engine = &*engine;
    let Some(script) = (sha.len() == 40).then(|| engine.script(&sha)).flatten() else {
        return ctx
            .out
            .error("NOSCRIPT No matching script. Please use EVAL.");
    };
    let script_flags = script.flags();
    let oom = over_memory(ctx);
    let mut rules = match prepare(ctx, script_flags, ro, oom) {
        Ok(r) => r,
        Err(e) => return ctx.out.error(&e),
    };
    let (keys, argv) = script_args(ctx.args, nkeys);
    rules.slot = declared_slot(ctx, &keys);
    let watch = &srv.scripting.watch;
    watch.threshold_ms.store(
        srv.config.hot.busy_reply_threshold.load(Ordering::Relaxed),
        Ordering::Relaxed,
    );
    let Some(me) = srv.arc() else {
        return ctx.out.error("ERR Lua engine unavailable");
    };
    let host = Box::new(ScriptHost::new(me, ctx.client, ctx.now, rules));
    let opts = RunOptions {
        eval: true,
        caller_proto: ctx.client.proto,
        name: &sha,
        from_master: ctx.client.is_master,
    };
    // Inside EXEC the transaction already wraps the effects.
    let wrap = !ctx.in_exec;
    if wrap {
        srv.repl.begin_tx();
    }
    let bytes = engine.eval_script(host, script, &keys, &argv, &opts);
    if wrap {
        srv.repl.end_tx();
    }
    drop(guard);
    ctx.propagated = true;
    reply(ctx, &bytes);
}

/// `EVAL script numkeys [key ...] [arg ...]`
fn eval(ctx: &mut Ctx<'_>) {
    eval_generic(ctx, false, false);
}

/// `EVALSHA sha1 numkeys [key ...] [arg ...]`
fn evalsha(ctx: &mut Ctx<'_>) {
    eval_generic(ctx, true, false);
}

/// `EVAL_RO script numkeys [key ...] [arg ...]`
fn eval_ro(ctx: &mut Ctx<'_>) {
    eval_generic(ctx, false, true);
}

/// `EVALSHA_RO sha1 numkeys [key ...] [arg ...]`
fn evalsha_ro(ctx: &mut Ctx<'_>) {
    eval_generic(ctx, true, true);
}

/// `SCRIPT LOAD script`
fn script_load(ctx: &mut Ctx<'_>) {
    let mut guard = ctx.srv.scripting.engine.lock();
    let Some(engine) = guard.as_mut() else {
        return ctx.out.error("ERR Lua engine unavailable");
    };
    engine.set_memory_limit(crate::script::vm_memory_cap(ctx.srv));
    match engine.load(&ctx.args[2]) {
        Ok((sha, _)) => ctx.out.bulk(sha.as_bytes()),
        Err(e) => ctx.out.error(&e),
    }
}

/// `SCRIPT EXISTS sha1 [sha1 ...]`
fn script_exists(ctx: &mut Ctx<'_>) {
    let guard = ctx.srv.scripting.engine.lock();
    ctx.out.array(ctx.args.len() - 2);
    for a in &ctx.args[2..] {
        let sha = String::from_utf8_lossy(a);
        let found = guard.as_ref().is_some_and(|e| e.exists(&sha));
        ctx.out.int(found as i64);
    }
}

/// `SCRIPT FLUSH [ASYNC|SYNC]`
fn script_flush(ctx: &mut Ctx<'_>) {
    if ctx.args.len() > 3
        || (ctx.args.len() == 3 && !matches!(ctx.opt(2).as_str(), "async" | "sync"))
    {
        return ctx
            .out
            .error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    if let Some(e) = ctx.srv.scripting.engine.lock().as_mut() {
        e.flush();
    }
    ctx.out.ok();
}

/// `SCRIPT KILL`: runs beside the script (no gate), flagging it for the
/// engine's hook.
fn script_kill(ctx: &mut Ctx<'_>) {
    match ctx.srv.scripting.watch.kill(true) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(e),
    }
}

/// `SCRIPT DEBUG YES|SYNC|NO`: Rampart has no Lua debugger; NO is
/// accepted (it is the mode scripts always run in).
fn script_debug(ctx: &mut Ctx<'_>) {
    match ctx.opt(2).as_str() {
        "no" => ctx.out.ok(),
        "yes" | "sync" => ctx
            .out
            .error("ERR SCRIPT DEBUG is not supported by Rampart"),
        _ => ctx.out.error("ERR Use SCRIPT DEBUG YES/SYNC/NO"),
    }
}

/// `SCRIPT HELP`
fn script_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "SCRIPT",
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    );
}

fn fcall_generic(ctx: &mut Ctx<'_>, ro: bool) {
    let srv = ctx.srv;
    let mut guard = srv.scripting.functions.lock();
    let Some(engine) = guard.as_mut() else {
        return ctx.out.error("ERR Lua engine unavailable");
    };
    engine.set_memory_limit(crate::script::vm_memory_cap(srv));
    // Borrowed, not copied: function names are plain ASCII (checked when
    // registered), so a name that is not UTF-8 is not found either.
    let args = ctx.args;
    let name = std::str::from_utf8(&args[1]).unwrap_or("");
    let engine = &*engine;
    let Some(function) = engine.function(name) else {
        return ctx.out.error("ERR Function not found");
    };
    let fflags = function.flags;
    let Some(n) = crate::num::parse_i64(&ctx.args[2]) else {
        return ctx.out.error("ERR Bad number of keys provided");
    };
    if n > ctx.args.len() as i64 - 3 {
        return ctx
            .out
            .error("ERR Number of keys can't be greater than number of args");
    }
    if n < 0 {
        return ctx.out.error("ERR Number of keys can't be negative");
    }
    let nkeys = n as usize;
    let oom = over_memory(ctx);
    let mut rules = match prepare(ctx, fflags, ro, oom) {
        Ok(r) => r,
        Err(e) => return ctx.out.error(&e),
    };
    let (keys, argv) = script_args(args, nkeys);
    rules.slot = declared_slot(ctx, &keys);
    srv.scripting.watch.threshold_ms.store(
        srv.config.hot.busy_reply_threshold.load(Ordering::Relaxed),
        Ordering::Relaxed,
    );
    srv.scripting.running.lock().start(name, args);
    let Some(me) = srv.arc() else {
        return ctx.out.error("ERR Lua engine unavailable");
    };
    let host = Box::new(ScriptHost::new(me, ctx.client, ctx.now, rules));
    let opts = RunOptions {
        eval: false,
        caller_proto: ctx.client.proto,
        name,
        from_master: ctx.client.is_master,
    };
    let wrap = !ctx.in_exec;
    if wrap {
        srv.repl.begin_tx();
    }
    let bytes = engine.fcall(host, function, &keys, &argv, &opts);
    if wrap {
        srv.repl.end_tx();
    }
    srv.scripting.running.lock().stop();
    srv.scripting.note_vm_size(engine);
    drop(guard);
    ctx.propagated = true;
    reply(ctx, &bytes);
}

/// `FCALL function numkeys [key ...] [arg ...]`
fn fcall(ctx: &mut Ctx<'_>) {
    fcall_generic(ctx, false);
}

/// `FCALL_RO function numkeys [key ...] [arg ...]`
fn fcall_ro(ctx: &mut Ctx<'_>) {
    fcall_generic(ctx, true);
}

/// Runs `f` on the functions engine, or replies it is unavailable.
fn with_functions(ctx: &mut Ctx<'_>, f: impl FnOnce(&mut Ctx<'_>, &mut rampart_scripting::Engine)) {
    let srv = ctx.srv;
    let ran = srv.scripting.with_functions(|e| {
        e.set_memory_limit(crate::script::vm_memory_cap(srv));
        f(ctx, e)
    });
    if ran.is_none() {
        ctx.out.error("ERR Lua engine unavailable");
    }
}

/// Replicates a FUNCTION command that changed the libraries as it came.
fn propagate_self(ctx: &mut Ctx<'_>) {
    let argv: Vec<&[u8]> = ctx.args.iter().map(|a| &a[..]).collect();
    ctx.propagate(&argv);
    ctx.srv.hooks.dirty.add(1);
}

/// `FUNCTION LOAD [REPLACE] code`
fn function_load(ctx: &mut Ctx<'_>) {
    let mut replace = false;
    let mut pos = 2;
    while pos < ctx.args.len() - 1 {
        if ctx.args[pos].eq_ignore_ascii_case(b"replace") {
            replace = true;
            pos += 1;
            continue;
        }
        let opt = String::from_utf8_lossy(&ctx.args[pos]).into_owned();
        return ctx.out.error(&format!("ERR Unknown option given: {opt}"));
    }
    let code = ctx.args[pos].clone();
    let mut loaded = None;
    with_functions(ctx, |ctx, e| match e.load_library(&code, replace) {
        Ok(name) => loaded = Some(name),
        Err(err) => ctx.out.error(&err),
    });
    if let Some(name) = loaded {
        propagate_self(ctx);
        ctx.out.bulk(name.as_bytes());
    }
}

/// `FUNCTION DELETE library`
fn function_delete(ctx: &mut Ctx<'_>) {
    let name = String::from_utf8_lossy(&ctx.args[2]).into_owned();
    let mut deleted = false;
    with_functions(ctx, |ctx, e| {
        deleted = e.delete_library(&name);
        if !deleted {
            ctx.out.error("ERR Library not found");
        }
    });
    if deleted {
        propagate_self(ctx);
        ctx.out.ok();
    }
}

/// `FUNCTION FLUSH [ASYNC|SYNC]`
fn function_flush(ctx: &mut Ctx<'_>) {
    if ctx.args.len() > 3 {
        return super::subcommand_syntax_error(ctx);
    }
    if ctx.args.len() == 3 && !matches!(ctx.opt(2).as_str(), "async" | "sync") {
        return ctx
            .out
            .error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    }
    with_functions(ctx, |_, e| e.flush_functions());
    propagate_self(ctx);
    ctx.out.ok();
}

/// `FUNCTION DUMP`: the libraries as `FUNCTION2` records with DUMP's
/// footer, the payload `redis-server`'s FUNCTION RESTORE reads.
fn function_dump(ctx: &mut Ctx<'_>) {
    with_functions(ctx, |ctx, e| {
        let payload = rdb::dump_functions(e.libraries().map(|l| &l.code[..]));
        ctx.out.bulk(&payload);
    });
}

/// `FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]`, checked in Redis
/// 7.0's order (arguments, policy, footer, records, then collisions); on
/// any error the libraries are as they were.
fn function_restore(ctx: &mut Ctx<'_>) {
    if ctx.args.len() > 4 {
        return super::subcommand_syntax_error(ctx);
    }
    let policy = match ctx.args.len() {
        4 => match ctx.opt(3).as_str() {
            "append" => RestorePolicy::Append,
            "replace" => RestorePolicy::Replace,
            "flush" => RestorePolicy::Flush,
            _ => return ctx.out.error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ),
        },
        _ => RestorePolicy::Append,
    };
    // DEBUG SET-SKIP-CHECKSUM-VALIDATION 1 skips the CRC-64, as Redis's
    // verifyDumpPayload does for RESTORE and FUNCTION RESTORE alike.
    let verify = !ctx.srv.debug.skip_checksum.load(Ordering::Relaxed);
    let read = match rdb::restore_functions(&ctx.args[2], verify) {
        Ok(r) => r,
        Err(_) => {
            return ctx
                .out
                .error("ERR DUMP payload version or checksum are wrong")
        }
    };
    let mut restored = false;
    with_functions(ctx, |ctx, e| {
        match e.restore_libraries(&read.libraries, read.error, policy) {
            Ok(()) => restored = true,
            Err(err) => ctx.out.error(&err),
        }
    });
    if restored {
        propagate_self(ctx);
        ctx.out.ok();
    }
}

/// `FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]`
fn function_list(ctx: &mut Ctx<'_>) {
    let mut with_code = false;
    let mut pattern: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < ctx.args.len() {
        let a = &ctx.args[i];
        if !with_code && a.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && a.eq_ignore_ascii_case(b"libraryname") {
            if i >= ctx.args.len() - 1 {
                return ctx.out.error("ERR library name argument was not given");
            }
            i += 1;
            pattern = Some(ctx.args[i].to_vec());
        } else {
            let a = String::from_utf8_lossy(a).into_owned();
            return ctx.out.error(&format!("ERR Unknown argument {a}"));
        }
        i += 1;
    }
    with_functions(ctx, |ctx, e| {
        let libs: Vec<_> = e
            .libraries()
            .filter(|l| {
                pattern
                    .as_ref()
                    .is_none_or(|p| rampart_keyspace::glob::matches(p, l.name.as_bytes(), true))
            })
            .collect();
        let out = &mut *ctx.out;
        out.array(libs.len());
        for l in libs {
            out.map_len(if with_code { 4 } else { 3 });
            out.bulk(b"library_name");
            out.bulk(l.name.as_bytes());
            out.bulk(b"engine");
            out.bulk(b"LUA");
            out.bulk(b"functions");
            out.array(l.functions.len());
            for f in &l.functions {
                out.map_len(3);
                out.bulk(b"name");
                out.bulk(f.name.as_bytes());
                out.bulk(b"description");
                match &f.desc {
                    Some(d) => out.bulk(d),
                    None => out.null(),
                }
                out.bulk(b"flags");
                let names: Vec<&str> = sf::NAMES
                    .iter()
                    .filter(|(bit, _)| f.flags & bit != 0)
                    .map(|(_, n)| *n)
                    .collect();
                // Redis lists them as status strings.
                out.set_len(names.len());
                for n in names {
                    out.simple(n);
                }
            }
            if with_code {
                out.bulk(b"library_code");
                out.bulk(&l.code);
            }
        }
    });
}

/// `FUNCTION STATS`: runs beside a busy function (no gate).
fn function_stats(ctx: &mut Ctx<'_>) {
    let srv = ctx.srv;
    let watch = &srv.scripting.watch;
    let running = srv.scripting.running.lock().current();
    if watch.running() && running.is_none() {
        return ctx.out.error(rampart_scripting::BUSY_EVAL);
    }
    ctx.out.map_len(2);
    ctx.out.bulk(b"running_script");
    match running {
        Some((name, argv)) if watch.running() => {
            ctx.out.map_len(3);
            ctx.out.bulk(b"name");
            ctx.out.bulk(name.as_bytes());
            ctx.out.bulk(b"command");
            ctx.out.array(argv.len());
            for a in &argv {
                ctx.out.bulk(a);
            }
            ctx.out.bulk(b"duration_ms");
            ctx.out.int(watch.elapsed_ms() as i64);
        }
        _ => ctx.out.null(),
    }
    ctx.out.bulk(b"engines");
    ctx.out.map_len(1);
    ctx.out.bulk(b"LUA");
    ctx.out.map_len(2);
    let (functions, libraries) = srv.scripting.function_counts();
    ctx.out.bulk(b"libraries_count");
    ctx.out.int(libraries as i64);
    ctx.out.bulk(b"functions_count");
    ctx.out.int(functions as i64);
}

/// `FUNCTION KILL`
fn function_kill(ctx: &mut Ctx<'_>) {
    match ctx.srv.scripting.watch.kill(false) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.out.error(e),
    }
}

/// `FUNCTION HELP`
fn function_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    );
}

const S: &str = "scripting";

static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    spec("debug", 3, NOSCRIPT, (0, 0, 0), S, script_debug),
    spec("exists", -3, NOSCRIPT, (0, 0, 0), S, script_exists),
    spec("flush", -2, NOSCRIPT, (0, 0, 0), S, script_flush),
    spec("help", 2, LOADING | STALE, (0, 0, 0), S, script_help),
    spec(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY | NO_GATE,
        (0, 0, 0),
        S,
        script_kill,
    ),
    spec("load", 3, NOSCRIPT | STALE, (0, 0, 0), S, script_load),
];

static FUNCTION_SUBCOMMANDS: &[CommandSpec] = &[
    spec("delete", 3, WRITE | NOSCRIPT, (0, 0, 0), S, function_delete),
    spec("dump", 2, NOSCRIPT, (0, 0, 0), S, function_dump),
    spec("flush", -2, WRITE | NOSCRIPT, (0, 0, 0), S, function_flush),
    spec("help", 2, LOADING | STALE, (0, 0, 0), S, function_help),
    spec(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY | NO_GATE,
        (0, 0, 0),
        S,
        function_kill,
    ),
    spec("list", -2, NOSCRIPT, (0, 0, 0), S, function_list),
    spec(
        "load",
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        (0, 0, 0),
        S,
        function_load,
    ),
    spec(
        "restore",
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        (0, 0, 0),
        S,
        function_restore,
    ),
    spec(
        "stats",
        2,
        NOSCRIPT | ALLOW_BUSY | NO_GATE,
        (0, 0, 0),
        S,
        function_stats,
    ),
];

const EVAL_FLAGS: u32 = NOSCRIPT | SKIP_MONITOR | STALE | NO_MANDATORY_KEYS | MOVABLEKEYS;
const EVAL_RO_FLAGS: u32 =
    NOSCRIPT | SKIP_MONITOR | STALE | READONLY | NO_MANDATORY_KEYS | MOVABLEKEYS;

/// The scripting family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec("eval", -3, EVAL_FLAGS, (0, 0, 0), S, eval),
    spec("evalsha", -3, EVAL_FLAGS, (0, 0, 0), S, evalsha),
    spec("eval_ro", -3, EVAL_RO_FLAGS, (0, 0, 0), S, eval_ro),
    spec("evalsha_ro", -3, EVAL_RO_FLAGS, (0, 0, 0), S, evalsha_ro),
    container_spec("script", -2, 0, S, SCRIPT_SUBCOMMANDS),
    spec("fcall", -3, EVAL_FLAGS, (0, 0, 0), S, fcall),
    spec("fcall_ro", -3, EVAL_RO_FLAGS, (0, 0, 0), S, fcall_ro),
    container_spec("function", -2, 0, S, FUNCTION_SUBCOMMANDS),
];
