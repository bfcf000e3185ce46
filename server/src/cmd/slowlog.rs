//! SLOWLOG: GET LEN RESET HELP.

use super::flags::*;
use super::{container_spec, help, spec, subcommand_syntax_error, CommandSpec, Ctx};

/// `SLOWLOG GET [count]`
fn get(ctx: &mut Ctx<'_>) {
    let log = &ctx.srv.slowlog;
    let count = match ctx.args.len() {
        2 => 10,
        3 => match crate::num::parse_i64(&ctx.args[2]) {
            Some(-1) => log.len(),
            Some(n) if n >= 0 => n as usize,
            _ => {
                return ctx
                    .out
                    .error("ERR count should be greater than or equal to -1")
            }
        },
        _ => return subcommand_syntax_error(ctx),
    };
    let entries = log.newest(count);
    ctx.out.array(entries.len());
    for e in entries {
        ctx.out.array(6);
        ctx.out.int(e.id as i64);
        ctx.out.int(e.time as i64);
        ctx.out.int(e.duration as i64);
        ctx.out.array(e.args.len());
        for a in &e.args {
            ctx.out.bulk(a);
        }
        ctx.out.bulk(e.peer.as_bytes());
        ctx.out.bulk(&e.name);
    }
}

/// `SLOWLOG LEN`
fn len(ctx: &mut Ctx<'_>) {
    ctx.out.int(ctx.srv.slowlog.len() as i64);
}

/// `SLOWLOG RESET`
fn reset(ctx: &mut Ctx<'_>) {
    ctx.srv.slowlog.reset();
    ctx.out.ok();
}

/// `SLOWLOG HELP`
fn slowlog_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
}

const S: &str = "server";

static SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    spec("get", -2, ADMIN | LOADING | STALE, (0, 0, 0), S, get),
    spec("help", 2, LOADING | STALE, (0, 0, 0), S, slowlog_help),
    spec("len", 2, ADMIN | LOADING | STALE, (0, 0, 0), S, len),
    spec("reset", 2, ADMIN | LOADING | STALE, (0, 0, 0), S, reset),
];

/// The SLOWLOG family.
pub static COMMANDS: &[CommandSpec] = &[container_spec("slowlog", -2, 0, S, SLOWLOG_SUBCOMMANDS)];
