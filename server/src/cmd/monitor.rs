//! MONITOR (the feed itself is in [`crate::monitor`]).

use super::flags::*;
use super::{spec, CommandSpec, Ctx};

/// `MONITOR`: from now on the connection sees every command run. A second
/// MONITOR gets no reply at all, as in Redis.
fn monitor(ctx: &mut Ctx<'_>) {
    if ctx.in_exec {
        return ctx
            .out
            .error("ERR MONITOR isn't allowed for DENY BLOCKING client");
    }
    let h = &ctx.client.handle;
    if !h.flags.lock().is_empty() {
        // A replica or primary link, or a monitor already.
        return;
    }
    if ctx.srv.monitors.add(h) {
        *h.flags.lock() = "O".into();
        ctx.out.ok();
    }
}

/// The MONITOR command.
pub static COMMANDS: &[CommandSpec] = &[spec(
    "monitor",
    1,
    ADMIN | NOSCRIPT | LOADING | STALE,
    (0, 0, 0),
    "server",
    monitor,
)];
