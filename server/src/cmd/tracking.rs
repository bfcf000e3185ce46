//! CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO: the client side of
//! client-side caching (the tables are in [`crate::tracking`]). The
//! subcommands sit in CLIENT's table, in `connection.rs`.

use bytes::Bytes;

use super::{err, Ctx};
use crate::tracking::State;

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP]`
pub(super) fn client_tracking(ctx: &mut Ctx<'_>) {
    let mut st = State::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let args = ctx.args;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j][..];
        if a.eq_ignore_ascii_case(b"redirect") && more {
            j += 1;
            if st.redirect != 0 {
                return ctx
                    .out
                    .error("ERR A client can only redirect to a single other client");
            }
            let Some(id) = ctx.int_arg(j) else { return };
            if ctx.srv.clients.get(id as u64).is_none() {
                return ctx
                    .out
                    .error("ERR The client ID you want redirect to does not exist");
            }
            st.redirect = id as u64;
        } else if a.eq_ignore_ascii_case(b"bcast") {
            st.bcast = true;
        } else if a.eq_ignore_ascii_case(b"optin") {
            st.optin = true;
        } else if a.eq_ignore_ascii_case(b"optout") {
            st.optout = true;
        } else if a.eq_ignore_ascii_case(b"noloop") {
            st.noloop = true;
        } else if a.eq_ignore_ascii_case(b"prefix") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return ctx.out.error(err::SYNTAX);
        }
        j += 1;
    }
    let h = ctx.client.handle.clone();
    let tracking = &ctx.srv.tracking;
    if args[2].eq_ignore_ascii_case(b"on") {
        if !st.bcast && !prefixes.is_empty() {
            return ctx
                .out
                .error("ERR PREFIX option requires BCAST mode to be enabled");
        }
        let cur = h.tracking.lock().clone();
        if cur.on && cur.bcast != st.bcast {
            return ctx.out.error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if st.bcast && (st.optin || st.optout) {
            return ctx
                .out
                .error("ERR OPTIN and OPTOUT are not compatible with BCAST");
        }
        if st.optin && st.optout {
            return ctx
                .out
                .error("ERR You can't specify both OPTIN mode and OPTOUT mode");
        }
        if (st.optin && cur.optout) || (st.optout && cur.optin) {
            return ctx.out.error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
        }
        if st.bcast {
            if let Some(e) = tracking.prefix_collision(&h, &prefixes) {
                return ctx.out.error(&e);
            }
        }
        let keys = !st.bcast;
        tracking.enable(&h, st, &prefixes);
        ctx.client.tracking_keys = keys;
    } else if args[2].eq_ignore_ascii_case(b"off") {
        tracking.disable(&h);
        ctx.client.tracking_keys = false;
        ctx.client.caching = false;
    } else {
        return ctx.out.error(err::SYNTAX);
    }
    ctx.out.ok();
}

/// `CLIENT CACHING YES|NO`: the next command (or transaction) is cached
/// in OPTIN mode, or not in OPTOUT mode.
pub(super) fn client_caching(ctx: &mut Ctx<'_>) {
    let st = ctx.client.handle.tracking.lock().clone();
    if !st.on {
        return ctx.out.error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled");
    }
    let opt = &ctx.args[2][..];
    if opt.eq_ignore_ascii_case(b"yes") {
        if !st.optin {
            return ctx.out.error(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            );
        }
    } else if opt.eq_ignore_ascii_case(b"no") {
        if !st.optout {
            return ctx.out.error(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            );
        }
    } else {
        return ctx.out.error(err::SYNTAX);
    }
    ctx.client.caching = true;
    ctx.out.ok();
}

/// `CLIENT GETREDIR`
pub(super) fn client_getredir(ctx: &mut Ctx<'_>) {
    let st = ctx.client.handle.tracking.lock().clone();
    ctx.out.int(if st.on { st.redirect as i64 } else { -1 });
}

/// `CLIENT TRACKINGINFO`
pub(super) fn client_trackinginfo(ctx: &mut Ctx<'_>) {
    let st = ctx.client.handle.tracking.lock().clone();
    let caching = ctx.client.caching;
    let mut flags: Vec<&[u8]> = vec![if st.on { b"on" } else { b"off" }];
    if st.bcast {
        flags.push(b"bcast");
    }
    if st.optin {
        flags.push(b"optin");
        if caching {
            flags.push(b"caching-yes");
        }
    }
    if st.optout {
        flags.push(b"optout");
        if caching {
            flags.push(b"caching-no");
        }
    }
    if st.noloop {
        flags.push(b"noloop");
    }
    if st.broken {
        flags.push(b"broken_redirect");
    }
    let o = &mut *ctx.out;
    o.map_len(3);
    o.bulk(b"flags");
    o.set_len(flags.len());
    for f in flags {
        o.bulk(f);
    }
    o.bulk(b"redirect");
    o.int(if st.on { st.redirect as i64 } else { -1 });
    o.bulk(b"prefixes");
    o.array(st.prefixes.len());
    for p in &st.prefixes {
        o.bulk(p);
    }
}
