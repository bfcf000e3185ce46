//! Snapshot commands: SAVE, BGSAVE, LASTSAVE. The work is in
//! [`crate::persist`]; these handlers only parse and reply.

use super::flags::*;
use super::{err, spec, CommandSpec, Ctx};

/// `SAVE`: a point-in-time snapshot written before the reply. Runs under
/// the exclusive gate, so, as with Redis, other clients wait.
fn save(ctx: &mut Ctx<'_>) {
    // While a BGSAVE is still writing its file (past the point-in-time
    // capture), as Redis refuses SAVE while its child runs.
    if ctx.srv.persist.running() {
        return ctx.out.error("ERR Background save already in progress");
    }
    match crate::persist::save(ctx.srv) {
        Ok(_) => ctx.out.ok(),
        Err(e) => ctx.out.error(&e),
    }
}

/// `BGSAVE [SCHEDULE]`: begins a point-in-time snapshot (under the
/// exclusive gate, so it describes one instant) and writes it in the
/// background. Inside MULTI/EXEC it is scheduled, as Redis does.
fn bgsave(ctx: &mut Ctx<'_>) {
    match ctx.args.len() {
        1 => {}
        2 if ctx.opt(1) == "schedule" => {}
        _ => return ctx.out.error(err::SYNTAX),
    }
    if ctx.srv.persist.running() {
        return ctx.out.error("ERR Background save already in progress");
    }
    if ctx.in_exec {
        crate::persist::schedule(ctx.srv);
        return ctx.out.simple("Background saving scheduled");
    }
    match crate::persist::bgsave(ctx.srv) {
        Ok(()) => ctx.out.simple("Background saving started"),
        Err(e) => ctx.out.error(e),
    }
}

/// `BGREWRITEAOF`: Rampart keeps no append-only file (its durable copy of
/// the dataset is the encrypted snapshot), so this takes a background
/// snapshot, answering in Redis's words.
fn bgrewriteaof(ctx: &mut Ctx<'_>) {
    if ctx.srv.persist.running() || ctx.in_exec {
        crate::persist::schedule(ctx.srv);
        return ctx
            .out
            .simple("Background append only file rewriting scheduled");
    }
    match crate::persist::bgsave(ctx.srv) {
        Ok(()) => ctx
            .out
            .simple("Background append only file rewriting started"),
        Err(e) => ctx.out.error(e),
    }
}

/// `LASTSAVE`: Unix time of the last successful save.
fn lastsave(ctx: &mut Ctx<'_>) {
    ctx.out.int(ctx.srv.persist.lastsave() as i64);
}

const S: &str = "server";

/// The snapshot family's table.
pub static COMMANDS: &[CommandSpec] = &[
    spec(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI | EXCLUSIVE,
        (0, 0, 0),
        S,
        save,
    ),
    spec(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | EXCLUSIVE,
        (0, 0, 0),
        S,
        bgsave,
    ),
    spec(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | EXCLUSIVE,
        (0, 0, 0),
        S,
        bgrewriteaof,
    ),
    spec(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        S,
        lastsave,
    ),
];
