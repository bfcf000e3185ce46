//! MODULE: LIST HELP, and LOAD LOADEX UNLOAD refused. Rampart does not
//! load C modules (their API is Redis's process internals), so LIST is
//! always empty and a load fails the way a module that cannot load fails
//! in Redis: the error reply, and the reason in the log.

use super::flags::*;
use super::{container_spec, help, spec, CommandSpec, Ctx};

const NOT_ALLOWED: &str = "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

fn protected(ctx: &mut Ctx<'_>) -> bool {
    if super::server::allowed_by(ctx, "enable-module-command") {
        return false;
    }
    ctx.out.error(NOT_ALLOWED);
    true
}

/// `MODULE LOAD path [arg ...]` and `MODULE LOADEX path …`
fn load(ctx: &mut Ctx<'_>) {
    if protected(ctx) {
        return;
    }
    let path = String::from_utf8_lossy(&ctx.args[2]);
    tracing::warn!("Module {path} failed to load: Rampart does not load Redis modules");
    ctx.out
        .error("ERR Error loading the extension. Please check the server logs.");
}

/// `MODULE UNLOAD name`
fn unload(ctx: &mut Ctx<'_>) {
    if protected(ctx) {
        return;
    }
    ctx.out
        .error("ERR Error unloading module: no such module with that name");
}

/// `MODULE LIST`
fn list(ctx: &mut Ctx<'_>) {
    ctx.out.array(0);
}

/// `MODULE HELP`
fn module_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    );
}

const S: &str = "server";

static MODULE_SUBCOMMANDS: &[CommandSpec] = &[
    spec("help", 2, LOADING | STALE, (0, 0, 0), S, module_help),
    spec("list", 2, ADMIN | NOSCRIPT, (0, 0, 0), S, list),
    spec(
        "load",
        -3,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        (0, 0, 0),
        S,
        load,
    ),
    spec(
        "loadex",
        -3,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        (0, 0, 0),
        S,
        load,
    ),
    spec(
        "unload",
        3,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        (0, 0, 0),
        S,
        unload,
    ),
];

/// The MODULE family.
pub static COMMANDS: &[CommandSpec] = &[container_spec("module", -2, 0, S, MODULE_SUBCOMMANDS)];
