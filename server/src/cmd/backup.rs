//! Rampart's BACKUP command: CREATE, STATUS, LIST, HELP. The work is in
//! [`crate::backup`]; these handlers parse, start it off the connection's
//! thread, and reply when it ends (the caller waits like a blocked client,
//! so the other connections of its thread go on).

use std::path::PathBuf;

use rampart_persistence::backup::{self as bk, Kind};

use super::flags::*;
use super::{container_spec, err, spec, CommandSpec, Ctx};
use crate::backup::{Backups, KeyChoice};
use crate::resp::Out;
use crate::state::now_ms;

/// Runs `work` on its own thread and makes the caller wait for the reply
/// it renders.
fn reply_later(ctx: &mut Ctx<'_>, work: impl FnOnce(&mut Out) + Send + 'static) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let proto = ctx.client.proto;
    let spawned = std::thread::Builder::new()
        .name("rampart-backup".into())
        .spawn(move || {
            let mut out = Out::new(proto);
            work(&mut out);
            let _ = tx.send(out.buf().to_vec());
        });
    match spawned {
        Ok(_) => {
            ctx.client.blocked = Some(crate::client::BlockState {
                reply: rx,
                deadline: None,
            })
        }
        Err(e) => ctx
            .out
            .error(&format!("ERR can't start the backup thread: {e}")),
    }
}

fn one_line(e: &anyhow::Error) -> String {
    format!("ERR {e:#}").replace(['\r', '\n'], " ")
}

/// `BACKUP CREATE [name] [KMSKEYID key-id | KEYFILE path] [ASYNC]`: a
/// point-in-time backup of every database, sealed under the dataset's key
/// or the one named, streamed to the configured store. Replies the
/// backup's name once its manifest is written, or at once with ASYNC.
fn create(ctx: &mut Ctx<'_>) {
    let mut i = 2;
    let mut name = None;
    let keyword = |s: &str| matches!(s, "kmskeyid" | "keyfile" | "async");
    if i < ctx.args.len() && !keyword(&ctx.opt(i)) {
        name = Some(String::from_utf8_lossy(&ctx.args[i]).into_owned());
        i += 1;
    }
    let mut key = KeyChoice::Dataset;
    let mut asynchronous = false;
    while i < ctx.args.len() {
        let arg = |j: usize| String::from_utf8_lossy(&ctx.args[j]).into_owned();
        match ctx.opt(i).as_str() {
            "kmskeyid" if i + 1 < ctx.args.len() && matches!(key, KeyChoice::Dataset) => {
                key = KeyChoice::Kms(arg(i + 1));
                i += 2;
            }
            "keyfile" if i + 1 < ctx.args.len() && matches!(key, KeyChoice::Dataset) => {
                key = KeyChoice::KeyFile(PathBuf::from(arg(i + 1)));
                i += 2;
            }
            "async" if !asynchronous => {
                asynchronous = true;
                i += 1;
            }
            _ => return ctx.out.error(err::SYNTAX),
        }
    }
    let name = name.unwrap_or_else(|| bk::default_name(Kind::Manual, now_ms()));
    if let Err(e) = bk::check_name(&name) {
        return ctx.out.error(&one_line(&e));
    }
    let Some(srv) = ctx.srv.arc() else {
        return ctx.out.error("ERR the server is not running");
    };
    let running = match Backups::begin(&srv, &name) {
        Ok(r) => r,
        Err(e) => return ctx.out.error(e),
    };
    if asynchronous {
        match crate::backup::spawn(srv, running, name, key, |_| {}) {
            Ok(()) => ctx.out.simple("Backup started"),
            Err(e) => ctx
                .out
                .error(&format!("ERR can't start the backup thread: {e}")),
        }
        return;
    }
    reply_later(ctx, move |out| {
        let r = crate::backup::run(&srv, &name, Kind::Manual, &key, false);
        drop(running);
        match r {
            Ok(m) => out.bulk(m.name.as_bytes()),
            Err(e) => out.error(&one_line(&e)),
        }
    });
}

/// `BACKUP STATUS`: in progress, the last result, counts (INFO backup's
/// fields).
fn status(ctx: &mut Ctx<'_>) {
    let fields = crate::backup::status(ctx.srv);
    ctx.out.map_len(fields.len());
    for (k, v) in fields {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
}

/// `BACKUP LIST`: every backup in the store, oldest first, each a map of
/// its manifest's main fields.
fn list(ctx: &mut Ctx<'_>) {
    let Some(srv) = ctx.srv.arc() else {
        return ctx.out.error("ERR the server is not running");
    };
    reply_later(ctx, move |out| {
        let r = (|| {
            let rt = srv
                .persist
                .runtime
                .get()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("the server's runtime is not running"))?;
            let store = crate::backup::store(&srv, &rt)?;
            rt.block_on(bk::list(&store))
        })();
        match r {
            Err(e) => out.error(&one_line(&e)),
            Ok(all) => {
                out.array(all.len());
                for m in all {
                    let fields = [
                        ("name", m.name),
                        ("kind", m.kind.as_str().to_string()),
                        ("created", m.created),
                        ("size", m.size.to_string()),
                        ("key_provider", m.key_provider),
                        ("key_id", m.key_id),
                        ("dataset", m.dataset),
                        ("sha256", m.sha256),
                    ];
                    out.map_len(fields.len());
                    for (k, v) in fields {
                        out.bulk(k.as_bytes());
                        out.bulk(v.as_bytes());
                    }
                }
            }
        }
    });
}

fn help(ctx: &mut Ctx<'_>) {
    let lines = [
        "BACKUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CREATE [<name>] [KMSKEYID <key-id> | KEYFILE <path>] [ASYNC]",
        "    Back up every database to the configured store (backup-s3-bucket or backup-dir),",
        "    encrypted under the dataset's key or the key given. Replies the backup's name",
        "    once it is complete, or at once with ASYNC.",
        "STATUS",
        "    The running backup and the last one's result.",
        "LIST",
        "    The backups in the store, oldest first.",
        "HELP",
        "    Print this help.",
    ];
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}

const S: &str = "server";

static SUBCOMMANDS: &[CommandSpec] = &[
    spec(
        "create",
        -2,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING | NO_MULTI,
        (0, 0, 0),
        S,
        create,
    ),
    spec(
        "status",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        S,
        status,
    ),
    spec(
        "list",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI,
        (0, 0, 0),
        S,
        list,
    ),
    spec("help", 2, LOADING | STALE, (0, 0, 0), S, help),
];

/// The backup family's table.
pub static COMMANDS: &[CommandSpec] = &[container_spec("backup", -2, 0, S, SUBCOMMANDS)];
