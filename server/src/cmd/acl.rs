//! ACL: SETUSER GETUSER DELUSER LIST USERS WHOAMI CAT GENPASS LOG DRYRUN
//! LOAD SAVE HELP. The rules live in `rampart-acl`; this file is their
//! command surface, with Redis's replies and errors.

use rampart_acl::{category, Denied};

use super::flags::*;
use super::{container_spec, help, spec, subcommand_syntax_error, CommandSpec, Ctx};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `ACL SETUSER username [rule ...]`
fn setuser(ctx: &mut Ctx<'_>) {
    let name = &ctx.args[2];
    if rampart_acl::has_spaces(name) {
        return ctx
            .out
            .error("ERR Usernames can't contain spaces or null characters");
    }
    let acl = &ctx.srv.acl;
    let rules: Vec<&[u8]> = ctx.args[3..].iter().map(|a| &a[..]).collect();
    let all = crate::acl::pubsub_default_all(ctx.srv);
    let res = acl.update(|users| {
        let u = users.set_user(acl.catalog, name, &rules, all)?;
        let shrank = users
            .get(name)
            .is_some_and(|old| u.channels_shrank_from(old));
        let check = shrank.then(|| u.clone());
        users.put(u);
        Ok::<_, String>(check)
    });
    match res {
        Ok(shrank) => {
            if let Some(u) = shrank {
                // Subscribers whose channels the user may no longer use
                // are disconnected, as Redis does.
                let gone = ctx
                    .srv
                    .pubsub
                    .violators(name, |c, pattern| u.check_channel(c, pattern));
                let me = ctx.client.handle.id;
                for h in gone {
                    if h.id == me {
                        ctx.client.close = true;
                    } else {
                        h.killed.store(true, std::sync::atomic::Ordering::Relaxed);
                        h.wake.notify_one();
                    }
                }
            }
            ctx.out.ok()
        }
        Err(e) => ctx.out.error(&format!("ERR {e}")),
    }
}

/// `ACL DELUSER username [username ...]`
fn deluser(ctx: &mut Ctx<'_>) {
    if ctx.args[2..].iter().any(|a| &a[..] == b"default") {
        return ctx.out.error("ERR The 'default' user cannot be removed");
    }
    let names: Vec<&[u8]> = ctx.args[2..].iter().map(|a| &a[..]).collect();
    let removed: Vec<&[u8]> = ctx.srv.acl.update(|users| {
        names
            .iter()
            .filter(|n| users.remove(n).is_some())
            .copied()
            .collect()
    });
    crate::acl::kill_users(ctx.srv, ctx.client, &removed);
    ctx.out.int(removed.len() as i64);
}

fn selector_fields(ctx: &mut Ctx<'_>, s: &rampart_acl::Selector) {
    let cat = ctx.srv.acl.catalog;
    ctx.out.bulk(b"commands");
    ctx.out.bulk(&s.describe_commands(cat));
    ctx.out.bulk(b"keys");
    ctx.out.bulk(&s.describe_keys());
    ctx.out.bulk(b"channels");
    ctx.out.bulk(&s.describe_channels());
}

/// `ACL GETUSER username`
fn getuser(ctx: &mut Ctx<'_>) {
    let Some(u) = ctx.srv.acl.users().get(&ctx.args[2]).cloned() else {
        return ctx.out.null();
    };
    ctx.out.map_len(6);
    ctx.out.bulk(b"flags");
    let flags = u.flags();
    ctx.out.set_len(flags.len());
    for f in flags {
        ctx.out.bulk(f.as_bytes());
    }
    ctx.out.bulk(b"passwords");
    ctx.out.array(u.passwords().len());
    for p in u.passwords() {
        ctx.out.bulk(p.as_bytes());
    }
    let Some((root, rest)) = u.selectors().split_first() else {
        return;
    };
    selector_fields(ctx, root);
    ctx.out.bulk(b"selectors");
    ctx.out.array(rest.len());
    for s in rest {
        ctx.out.map_len(3);
        selector_fields(ctx, s);
    }
}

/// `ACL LIST` and `ACL USERS`
fn list_users(ctx: &mut Ctx<'_>, names_only: bool) {
    let acl = &ctx.srv.acl;
    let users = acl.users();
    ctx.out.array(users.len());
    for u in users.iter() {
        if names_only {
            ctx.out.bulk(u.name());
        } else {
            ctx.out.bulk(&rampart_acl::file::line(u, acl.catalog));
        }
    }
}

fn list(ctx: &mut Ctx<'_>) {
    list_users(ctx, false)
}

fn users(ctx: &mut Ctx<'_>) {
    list_users(ctx, true)
}

/// `ACL WHOAMI`
fn whoami(ctx: &mut Ctx<'_>) {
    match ctx.client.user.as_ref().map(|u| u.name().to_vec()) {
        Some(n) => ctx.out.bulk(&n),
        None => ctx.out.null(),
    }
}

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// `ACL LOAD`: all or nothing; every connection of a user other than
/// `default` is closed, as Redis frees the old users.
fn load(ctx: &mut Ctx<'_>) {
    let path = ctx.srv.config.get("aclfile").unwrap_or_default();
    if path.is_empty() {
        return ctx.out.error(NO_ACL_FILE);
    }
    match crate::acl::load_file(ctx.srv, &path) {
        Ok(new) => {
            let old: Vec<Vec<u8>> = ctx.srv.acl.update(|users| {
                let old = users.iter().map(|u| u.name().to_vec()).collect();
                *users = new;
                old
            });
            let old: Vec<&[u8]> = old
                .iter()
                .map(Vec::as_slice)
                .filter(|n| *n != b"default")
                .collect();
            crate::acl::kill_users(ctx.srv, ctx.client, &old);
            ctx.out.ok()
        }
        Err(e) => ctx.out.error(&format!("ERR {e}")),
    }
}

/// `ACL SAVE`
fn save(ctx: &mut Ctx<'_>) {
    let path = ctx.srv.config.get("aclfile").unwrap_or_default();
    if path.is_empty() {
        return ctx.out.error(NO_ACL_FILE);
    }
    match crate::acl::save_file(ctx.srv, &path) {
        Ok(()) => ctx.out.ok(),
        Err(e) => {
            tracing::warn!("{e}");
            ctx.out.error("ERR There was an error trying to save the ACLs. Please check the server logs for more information")
        }
    }
}

/// `ACL CAT [category]`
fn cat(ctx: &mut Ctx<'_>) {
    match ctx.args.len() {
        2 => {
            ctx.out.array(rampart_acl::CATEGORIES.len());
            for c in rampart_acl::CATEGORIES {
                ctx.out.bulk(c.as_bytes());
            }
        }
        3 => {
            let name = text(&ctx.args[2]);
            let Some(bit) = category(&name) else {
                let shown: String = name.chars().take(128).collect();
                return ctx.out.error(&format!("ERR Unknown category '{shown}'"));
            };
            let names = ctx.srv.acl.catalog.in_category(bit);
            ctx.out.array(names.len());
            for n in names {
                ctx.out.bulk(n.as_bytes());
            }
        }
        _ => subcommand_syntax_error(ctx),
    }
}

/// `ACL GENPASS [bits]`
fn genpass(ctx: &mut Ctx<'_>) {
    let bits = match ctx.args.len() {
        2 => 256,
        3 => match ctx.int_arg(2) {
            Some(b) => b,
            None => return,
        },
        _ => return subcommand_syntax_error(ctx),
    };
    if !(1..=4096).contains(&bits) {
        return ctx.out.error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
    }
    ctx.out.bulk(rampart_acl::genpass(bits as usize).as_bytes());
}

/// `ACL LOG [count | RESET]`
fn log(ctx: &mut Ctx<'_>) {
    let mut count = 10;
    match ctx.args.len() {
        2 => {}
        3 if ctx.args[2].eq_ignore_ascii_case(b"reset") => {
            ctx.srv.acl.log.lock().clear();
            return ctx.out.ok();
        }
        3 => match ctx.int_arg(2) {
            Some(n) => count = n.max(0) as usize,
            None => return,
        },
        _ => return subcommand_syntax_error(ctx),
    }
    let log = ctx.srv.acl.log.lock();
    let now = crate::state::now_ms();
    let n = count.min(log.len());
    ctx.out.array(n);
    for e in log.entries().take(n) {
        ctx.out.map_len(7);
        ctx.out.bulk(b"count");
        ctx.out.int(e.count as i64);
        ctx.out.bulk(b"reason");
        ctx.out.bulk(e.reason.name().as_bytes());
        ctx.out.bulk(b"context");
        ctx.out.bulk(e.context.name().as_bytes());
        ctx.out.bulk(b"object");
        ctx.out.bulk(&e.object);
        ctx.out.bulk(b"username");
        ctx.out.bulk(&e.username);
        ctx.out.bulk(b"age-seconds");
        ctx.out
            .double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0);
        ctx.out.bulk(b"client-info");
        ctx.out.bulk(e.client_info.as_bytes());
    }
}

/// `ACL DRYRUN username command [arg ...]`: any command of Redis's table,
/// whether this server runs it or not.
fn dryrun(ctx: &mut Ctx<'_>) {
    let acl = &ctx.srv.acl;
    let Some(u) = acl.users().get(&ctx.args[2]).cloned() else {
        let name = text(&ctx.args[2]);
        return ctx.out.error(&format!("ERR User '{name}' not found"));
    };
    let line = &ctx.args[3..];
    let cat = acl.catalog;
    let id = cat.lookup(&line[0]).and_then(|top| {
        if cat.get(top).subs.is_empty() || line.len() == 1 || line[0].contains(&b'|') {
            Some(top)
        } else {
            cat.lookup(&[&line[0][..], b"|", &line[1][..]].concat())
        }
    });
    let Some(id) = id.filter(|_| !line[0].contains(&b'|')) else {
        let name = text(&line[0]);
        return ctx.out.error(&format!("ERR Command '{name}' not found"));
    };
    let arity = acl.arity(id);
    let argc = line.len() as i32;
    if (arity > 0 && arity != argc) || argc < -arity {
        let name = &cat.get(id).name;
        return ctx.out.error(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    let msg = match acl.check(&u, id, line) {
        Ok(()) => return ctx.out.ok(),
        Err(Denied::Command) => format!(
            "This user has no permissions to run the '{}' command",
            cat.get(id).name
        ),
        Err(Denied::Key(p)) => format!(
            "This user has no permissions to access the '{}' key",
            text(&line[p])
        ),
        Err(Denied::Channel(p)) => format!(
            "This user has no permissions to access the '{}' channel",
            text(&line[p])
        ),
    };
    ctx.out.bulk(msg.as_bytes());
}

/// `ACL HELP`
fn acl_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
}

const S: &str = "server";
const ADM: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const PLAIN: u32 = NOSCRIPT | LOADING | STALE;

static ACL_SUBCOMMANDS: &[CommandSpec] = &[
    spec("cat", -2, PLAIN, (0, 0, 0), S, cat),
    spec("deluser", -3, ADM, (0, 0, 0), S, deluser),
    spec("dryrun", -4, ADM, (0, 0, 0), S, dryrun),
    spec("genpass", -2, PLAIN, (0, 0, 0), S, genpass),
    spec("getuser", 3, ADM, (0, 0, 0), S, getuser),
    spec("help", 2, LOADING | STALE, (0, 0, 0), S, acl_help),
    spec("list", 2, ADM, (0, 0, 0), S, list),
    spec("load", 2, ADM, (0, 0, 0), S, load),
    spec("log", -2, ADM, (0, 0, 0), S, log),
    spec("save", 2, ADM, (0, 0, 0), S, save),
    spec("setuser", -3, ADM, (0, 0, 0), S, setuser),
    spec("users", 2, ADM, (0, 0, 0), S, users),
    spec("whoami", 2, PLAIN, (0, 0, 0), S, whoami),
];

/// The ACL family.
pub static COMMANDS: &[CommandSpec] = &[container_spec("acl", -2, 0, S, ACL_SUBCOMMANDS)];
