//! DEBUG: Redis's debugging and testing subcommands, one family in its
//! own file as the others are.

use std::sync::atomic::Ordering;

use rampart_keyspace::Value;

use super::flags::*;
use super::server::allowed_by;
use super::{err, help, spec, CommandSpec, Ctx};

/// Whether DEBUG is allowed for this client (`enable-debug-command`).
fn debug_allowed(ctx: &Ctx<'_>) -> bool {
    allowed_by(ctx, "enable-debug-command")
}

/// `DEBUG PROTOCOL type`: one reply of each RESP type, for client tests.
fn debug_protocol(ctx: &mut Ctx<'_>) {
    let o = &mut *ctx.out;
    match ctx.args[2].to_ascii_lowercase().as_slice() {
        b"string" => o.bulk(b"Hello World"),
        b"integer" => o.int(12345),
        // Redis's literal, not pi.
        #[allow(clippy::approx_constant)]
        b"double" => o.double(3.141),
        b"bignum" => {
            if o.resp3() {
                o.raw(b"(1234567999999999999999999999999999999\r\n")
            } else {
                o.bulk(b"1234567999999999999999999999999999999")
            }
        }
        b"null" => o.null(),
        b"array" | b"set" => {
            if ctx.args[2].eq_ignore_ascii_case(b"set") {
                o.set_len(3);
            } else {
                o.array(3);
            }
            for j in 0..3 {
                o.int(j);
            }
        }
        b"map" => {
            o.map_len(3);
            for j in 0..3 {
                o.int(j);
                o.boolean(j == 1);
            }
        }
        b"attrib" => {
            if o.resp3() {
                o.raw(b"|1\r\n");
                o.bulk(b"key-popularity");
                o.array(2);
                o.bulk(b"key:123");
                o.int(90);
            }
            o.bulk(b"Some real reply following the attribute");
        }
        b"push" => {
            if !o.resp3() {
                return o.error("ERR RESP2 is not supported by this command");
            }
            o.push_len(2);
            o.bulk(b"server-cpu-usage");
            o.int(42);
            o.bulk(b"Some real reply following the push reply");
        }
        b"true" => o.boolean(true),
        b"false" => o.boolean(false),
        b"verbatim" => o.verbatim(b"This is a verbatim\nstring"),
        _ => o.error(
            "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        ),
    }
}

/// `DEBUG subcommand ...` (SLEEP, SET-ACTIVE-EXPIRE, POPULATE, OBJECT, HELP)
fn debug(ctx: &mut Ctx<'_>) {
    if !debug_allowed(ctx) {
        return ctx.out.error("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.");
    }
    let sub = ctx.opt(1);
    let argc = ctx.args.len();
    match sub.as_str() {
        "help" => help(
            ctx.out,
            "DEBUG",
            &[
                "OBJECT <key>",
                "    Show low level info about `key` and associated value.",
                "PANIC",
                "    Crash the server simulating a panic.",
                "RELOAD",
                "    Save the RDB on disk and reload it back to memory.",
                "SEGFAULT",
                "    Crash the server with sigsegv.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Create <count> string keys named key:<num>. If <prefix> is specified then",
                "    it is used instead of the 'key' prefix. These are not propagated to",
                "    replicas. Cluster slots are not respected so keys not belonging to the",
                "    current node can be created in cluster mode.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not",
                "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
                "    default.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
                "ERROR <string>",
                "    Return a Redis protocol error with <string> as message. Useful for clients",
                "    unit tests to simulate Redis errors.",
                "LOG <message>",
                "    Write <message> to the server log.",
                "REPLICATE <string>",
                "    Replicates the provided string to replicas, allowing data divergence.",
                "PAUSE-CRON <0|1>",
                "    Stop periodic cron job processing.",
            ],
        ),
        "sleep" if argc == 3 => {
            let secs = crate::num::parse_f64(&ctx.args[2]).unwrap_or(0.0).max(0.0);
            // The whole server stops, as in Redis: the exclusive gate is
            // held (DEBUG runs exclusive) while this thread sleeps.
            std::thread::sleep(std::time::Duration::from_secs_f64(secs.min(3600.0)));
            ctx.out.ok();
        }
        "reload"
            if ctx.args[2..].iter().any(|o| {
                !["merge", "noflush", "nosave"]
                    .iter()
                    .any(|w| o.eq_ignore_ascii_case(w.as_bytes()))
            }) =>
        {
            ctx.out
                .error("ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.")
        }
        "reload" => match crate::persist::debug_reload(ctx.srv) {
            Ok(()) => ctx.out.ok(),
            Err(e) => ctx.out.error(&e),
        },
        "segfault" => crate::crash::segfault(),
        "panic" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            crate::crash::panic(&format!("DEBUG PANIC called at Unix time {now}"))
        }
        "log" if argc == 3 => {
            // What the client asked to be written: a marker for test
            // suites, not data.
            tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&ctx.args[2]));
            ctx.out.ok();
        }
        "error" if argc == 3 => {
            // Any text as an error reply, newlines made spaces (client
            // libraries' tests inject LOADING, OOM, READONLY this way).
            let text: String = String::from_utf8_lossy(&ctx.args[2])
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            ctx.out.error(&text);
        }
        "replicate" if argc >= 3 => {
            let argv: Vec<&[u8]> = ctx.args[2..].iter().map(|a| &a[..]).collect();
            ctx.srv.repl.feed_as_is(&argv);
            ctx.out.ok();
        }
        "change-repl-id" if argc == 2 => {
            ctx.srv.repl.change_replid();
            ctx.out.ok();
        }
        "stringmatch-test" if argc == 2 => {
            // Redis fuzzes its glob matcher here; ours is checked by its
            // own tests, so there is nothing to crash.
            ctx.out
                .simple("Apparently Redis did not crash: test passed");
        }
        "pause-cron" if argc == 3 => {
            // Redis reads it with atoi: anything not a non-zero number is 0.
            let on = crate::num::parse_i64(&ctx.args[2]).is_some_and(|n| n != 0);
            ctx.srv.cron_paused.store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        "set-active-expire" if argc == 3 => {
            let on = ctx.args[2].as_ref() != b"0";
            ctx.srv.active_expire.store(on, Ordering::Relaxed);
            ctx.out.ok();
        }
        "populate" if (3..=5).contains(&argc) => debug_populate(ctx),
        "digest" if argc == 2 => {
            let d = crate::digest::dataset(ctx.srv);
            ctx.out.simple(&crate::digest::hex(&d));
        }
        "digest-value" => {
            let db = ctx.srv.keyspace.db(ctx.client.db);
            let keys = &ctx.args[2..];
            ctx.out.array(keys.len());
            for k in keys {
                // Logically expired keys still count, as in Redis.
                let d = db.peek(k, 0, crate::digest::value);
                ctx.out.simple(&crate::digest::hex(&d));
            }
        }
        "protocol" if argc == 3 => debug_protocol(ctx),
        "object" if argc == 3 => {
            let key = ctx.args[2].clone();
            let line = ctx.db().peek(&key, ctx.now, |n| {
                n.map(|n| {
                    let len = n.value.as_str().map_or(0, |s| s.len());
                    format!(
                        "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
                        n.value.encoding(),
                        len + 1,
                        (ctx.now / 1000) & 0xff_ffff,
                        n.idle_secs(ctx.now)
                    )
                })
            });
            match line {
                Some(l) => ctx.out.simple(&l),
                None => ctx.out.error(err::NO_KEY),
            }
        }
        _ => {
            let raw = String::from_utf8_lossy(&ctx.args[1]).into_owned();
            ctx.out.error(&format!(
                "ERR unknown subcommand or wrong number of arguments for '{raw}'. Try DEBUG HELP."
            ));
        }
    }
}

/// `DEBUG POPULATE count [prefix] [size]`: keys `prefix:N` holding
/// `value:N`, zero-padded or cut to `size`; existing keys are left alone.
fn debug_populate(ctx: &mut Ctx<'_>) {
    let Some(count) = crate::num::parse_i64(&ctx.args[2]).filter(|c| *c >= 0) else {
        return ctx.out.error("ERR value is out of range, must be positive");
    };
    let prefix = if ctx.args.len() >= 4 {
        ctx.args[3].to_vec()
    } else {
        b"key".to_vec()
    };
    let size = if ctx.args.len() == 5 {
        match crate::num::parse_i64(&ctx.args[4]) {
            Some(s) if s >= 0 => Some(s as usize),
            _ => return ctx.out.error("ERR value is out of range, must be positive"),
        }
    } else {
        None
    };
    // Redis writes the plain `value:N` for a size of 0, not an empty string.
    let size = size.filter(|&s| s > 0);
    if let Some(s) = size {
        let max = ctx
            .srv
            .config
            .hot
            .proto_max_bulk_len
            .load(Ordering::Relaxed);
        if s as i64 > max {
            return ctx
                .out
                .error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        }
    }
    let db = ctx.db();
    let mut key = Vec::with_capacity(prefix.len() + 21);
    for j in 0..count as u64 {
        key.clear();
        key.extend_from_slice(&prefix);
        key.push(b':');
        key.extend_from_slice(itoa::Buffer::new().format(j).as_bytes());
        let text = format!("value:{j}");
        let value = match size {
            None => Value::string(text.as_bytes()),
            Some(s) => {
                let mut v = vec![0u8; s];
                let n = s.min(text.len());
                v[..n].copy_from_slice(&text.as_bytes()[..n]);
                Value::string(&v)
            }
        };
        db.write(&key, ctx.now, |slot| {
            if !slot.exists() {
                slot.insert(value, None);
            }
        });
    }
    ctx.out.ok();
}

/// The DEBUG family's table.
pub static COMMANDS: &[CommandSpec] = &[spec(
    "debug",
    -2,
    ADMIN | NOSCRIPT | LOADING | STALE | EXCLUSIVE,
    (0, 0, 0),
    "server",
    debug,
)];

#[cfg(test)]
mod tests {
    /// DEBUG cannot be reached by the differential corpus (Redis refuses
    /// to enable it at runtime), so its argument rules are checked here.
    #[test]
    fn debug_populate_and_reload_options_as_redis() {
        let mut k = crate::testkit::Kit::new();
        k.srv.config.force("enable-debug-command", "yes");
        assert_eq!(k.run(&["DEBUG", "POPULATE", "2", "p", "0"]), "+OK\r\n");
        assert_eq!(k.run(&["GET", "p:1"]), "$7\r\nvalue:1\r\n");
        assert_eq!(k.run(&["DEBUG", "POPULATE", "1", "q", "3"]), "+OK\r\n");
        assert_eq!(k.run(&["GET", "q:0"]), "$3\r\nval\r\n");
        assert_eq!(
            k.run(&["DEBUG", "RELOAD", "FOO"]),
            "-ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.\r\n"
        );
    }
}
