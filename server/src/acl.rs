//! The server's side of ACL (the rules themselves are `rampart-acl`): the
//! catalog built from Redis's command table, the user table every
//! connection reads, the per-request check in dispatch, the ACL LOG, and
//! what happens to connections when their user changes.
//!
//! A connection keeps its user as an `Arc<User>` and the table's epoch it
//! was read at; any change to the table bumps the epoch, so each request
//! pays one relaxed load to learn its copy is current, and a user whose
//! rules allow everything (the default user, usually) pays nothing more.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use rampart_acl::{
    category, Catalog, ChannelRef, Context, Denied, Entry, KeyRef, Log, User, Users,
};
use serde_json::Value as Json;

use crate::client::Client;
use crate::cmd::{flags, getkeys, Registry};
use crate::resp::Out;
use crate::state::Server;

/// Key data of one catalog command, for finding its keys.
struct KeyInfo {
    /// Its key specs, parsed.
    specs: getkeys::Specs,
    /// Whether it takes keys at all.
    has_keys: bool,
    /// first/last/step, for a command of ours without key specs.
    range: Option<&'static crate::cmd::CommandSpec>,
    /// Redis arity (for ACL DRYRUN).
    arity: i32,
}

/// What is fixed for the process: the catalog and how to find keys.
pub struct Statics {
    /// Every command rules can name.
    pub catalog: Catalog,
    /// Registry id → catalog id.
    ids: Vec<usize>,
    keys: Vec<KeyInfo>,
}

/// The catalog of every Redis 7.0 command (and Rampart's own), built once:
/// config parsing checks `user` lines against it before the server exists.
pub fn statics() -> &'static Statics {
    static S: std::sync::OnceLock<Statics> = std::sync::OnceLock::new();
    S.get_or_init(|| Statics::new(&Registry::new()))
}

/// The channel arguments ACL checks (Redis's `commands_with_channels`,
/// publish and subscribe only: leaving a channel is always allowed).
fn channel_refs(name: &str, argc: usize) -> Vec<ChannelRef> {
    let all = |pattern| (1..argc).map(|pos| ChannelRef { pos, pattern }).collect();
    match name {
        "subscribe" | "ssubscribe" => all(false),
        "psubscribe" => all(true),
        "publish" | "spublish" if argc > 1 => vec![ChannelRef {
            pos: 1,
            pattern: false,
        }],
        _ => Vec::new(),
    }
}

/// Users, the catalog, and the log.
pub struct Acl {
    /// Every command rules can name.
    pub catalog: &'static Catalog,
    statics: &'static Statics,
    users: RwLock<Users>,
    epoch: AtomicU64,
    /// The default user is on and nopass: connections need no AUTH.
    open: AtomicBool,
    /// ACL LOG.
    pub log: Mutex<Log>,
}

fn strings(node: &Json) -> impl Iterator<Item = &str> {
    node["v"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["v"].as_str())
}

/// Category bits of a COMMAND INFO entry (`@read` …).
fn categories_of(info: &Json) -> u32 {
    strings(&info["v"][6])
        .filter_map(|c| category(c.trim_start_matches('@')))
        .fold(0, |a, b| a | b)
}

/// Redis's `setImplicitACLCategories`, for a command the reference lacks.
fn implicit_categories(f: u32) -> u32 {
    let c = |n| category(n).unwrap_or(0);
    let mut cats = 0;
    for (flag, name) in [
        (flags::WRITE, "write"),
        (flags::READONLY, "read"),
        (flags::PUBSUB, "pubsub"),
        (flags::FAST, "fast"),
        (flags::BLOCKING, "blocking"),
    ] {
        if f & flag != 0 {
            cats |= c(name);
        }
    }
    if f & flags::ADMIN != 0 {
        cats |= c("admin") | c("dangerous");
    }
    if cats & c("fast") == 0 {
        cats |= c("slow");
    }
    cats
}

impl Statics {
    fn new(reg: &Registry) -> Statics {
        let mut catalog = Catalog::default();
        let mut keys = Vec::new();
        let info_of = |info: &Json| {
            let no_auth = strings(&info["v"][2]).any(|f| f == "no_auth");
            let specs = info["v"][8]["v"].as_array().cloned().unwrap_or_default();
            (categories_of(info), no_auth, specs)
        };
        let key_info = |name: &str, info: &Json, specs: Vec<Json>| KeyInfo {
            has_keys: getkeys::has_keys(name, &specs),
            specs: getkeys::Specs::parse(name, &specs),
            range: None,
            arity: info["v"][1]["v"].as_i64().unwrap_or(-1) as i32,
        };
        for (name, entry) in crate::cmd::server::reference() {
            let info = &entry["info"];
            let (cats, no_auth, specs) = info_of(info);
            let id = catalog.add(name, cats, no_auth);
            keys.push(key_info(name, info, specs));
            debug_assert_eq!(id + 1, keys.len());
            for sub in info["v"][9]["v"].as_array().into_iter().flatten() {
                let full = sub["v"][0]["v"].as_str().unwrap_or_default();
                let short = full.split_once('|').map_or(full, |s| s.1);
                let (cats, no_auth, specs) = info_of(sub);
                catalog.add_sub(id, short, cats, no_auth);
                keys.push(key_info(full, sub, specs));
            }
        }
        // Anything of ours Redis's table lacks still gets an id, with the
        // categories Redis would derive from its flags.
        let mut ids = Vec::with_capacity(reg.entries.len());
        for (i, (full, spec, parent)) in reg.entries.iter().enumerate() {
            let id = match catalog.lookup(full.as_bytes()) {
                Some(id) => id,
                None => {
                    let cats = implicit_categories(spec.flags);
                    let no_auth = spec.has(flags::NO_AUTH);
                    let id = match parent.and_then(|p| catalog.lookup(p.name.as_bytes())) {
                        Some(p) => catalog.add_sub(p, spec.name, cats, no_auth),
                        None => catalog.add(full, cats, no_auth),
                    };
                    keys.push(KeyInfo {
                        specs: getkeys::Specs::parse(full, &[]),
                        has_keys: spec.first_key > 0,
                        range: Some(*spec),
                        arity: spec.arity,
                    });
                    id
                }
            };
            debug_assert_eq!(ids.len(), i);
            ids.push(id);
        }
        Statics { catalog, ids, keys }
    }
}

impl Default for Acl {
    fn default() -> Self {
        Self::new()
    }
}

impl Acl {
    /// The default user alone, an empty log.
    pub fn new() -> Acl {
        let statics = statics();
        Acl {
            catalog: &statics.catalog,
            statics,
            users: RwLock::new(Users::new(&statics.catalog)),
            epoch: AtomicU64::new(1),
            open: AtomicBool::new(true),
            log: Mutex::new(Log::default()),
        }
    }

    /// The user table, for reading.
    pub fn users(&self) -> RwLockReadGuard<'_, Users> {
        self.users.read()
    }

    /// Changes the user table; every connection re-reads its user before
    /// its next command.
    pub fn update<R>(&self, f: impl FnOnce(&mut Users) -> R) -> R {
        let mut users = self.users.write();
        let r = f(&mut users);
        let open = users
            .get(b"default")
            .is_some_and(|d| d.enabled() && d.nopass());
        self.open.store(open, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::Release);
        r
    }

    /// Redis's `authRequired`: not authenticated, and the default user
    /// does not let everyone in.
    pub fn auth_required(&self, c: &Client) -> bool {
        !c.authenticated && !self.open.load(Ordering::Relaxed)
    }

    /// Whether a new connection starts authenticated (default user on and
    /// nopass), as `createClient` decides.
    pub fn starts_authenticated(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// The catalog id of registry command `id`.
    pub fn catalog_id(&self, id: usize) -> usize {
        self.statics.ids[id]
    }

    /// The key arguments of `args` for catalog command `id`, with the
    /// access each needs; `None` when the command takes no keys.
    pub fn key_refs(&self, id: usize, args: &[Bytes]) -> Option<Vec<KeyRef>> {
        Some(
            self.key_args(id, args)?
                .into_iter()
                .map(|a| KeyRef {
                    pos: a.pos,
                    read: a.flags.reads(),
                    write: a.flags.writes(),
                })
                .collect(),
        )
    }

    /// The key arguments of `args` for catalog command `id` (positions and
    /// key-spec flags), without a heap allocation for up to four keys;
    /// `None` when the command takes no keys. For example `SET k v` has
    /// one key, at position 1, flagged `RW access update`, and `MSET a 1 b
    /// 2` two, at 1 and 3 (COMMAND GETKEYSANDFLAGS finds keys the same
    /// way, and the server corpus compares it with redis-server's).
    pub fn key_args(&self, id: usize, args: &[Bytes]) -> Option<getkeys::Keys4> {
        let k = &self.statics.keys[id];
        if !k.has_keys {
            return None;
        }
        Some(match k.range {
            // One of ours without key specs: first/last/step, read-write.
            Some(spec) => spec
                .key_positions(args.len())
                .map(|pos| getkeys::KeyArg {
                    pos,
                    flags: getkeys::KeyFlags::from_names(["access", "update"]),
                })
                .collect(),
            None => k.specs.find(args),
        })
    }

    /// Redis's arity of catalog command `id`.
    pub fn arity(&self, id: usize) -> i32 {
        self.statics.keys[id].arity
    }

    /// May `user` run catalog command `id` with `args`?
    pub fn check(&self, user: &User, id: usize, args: &[Bytes]) -> Result<(), Denied> {
        let channels = channel_refs(&self.catalog.get(id).name, args.len());
        user.check(
            self.catalog,
            id,
            args,
            || self.key_refs(id, args),
            &channels,
        )
    }

    /// Brings the connection's copy of its user up to date.
    pub fn refresh(&self, c: &mut Client) {
        let epoch = self.epoch.load(Ordering::Acquire);
        c.acl_epoch = epoch;
        let users = self.users.read();
        let Some(name) = c.user.as_ref().map(|u| u.name()) else {
            return;
        };
        match users.get(name) {
            Some(u) => c.set_user(Some(u.clone())),
            None => {
                // Deleted: its connections are being closed; until then
                // it is an unauthenticated default user, as in Redis.
                c.set_user(users.get(b"default").cloned());
                c.authenticated = false;
            }
        }
    }

    /// Whether the connection's copy of its user is stale.
    #[inline]
    pub fn stale(&self, c: &Client) -> bool {
        c.acl_epoch != self.epoch.load(Ordering::Relaxed)
    }
}

/// Records a denial in the ACL LOG.
pub fn log_denial(
    srv: &Server,
    c: &Client,
    reason: rampart_acl::Reason,
    context: Context,
    object: &[u8],
    username: Option<&[u8]>,
    cmd: &str,
) {
    let entry = Entry {
        count: 1,
        reason,
        context,
        object: object.to_vec(),
        username: username
            .or(c.user.as_ref().map(|u| u.name()))
            .unwrap_or(b"default")
            .to_vec(),
        ctime_ms: crate::state::now_ms(),
        client_info: crate::cmd::connection::client_line(&c.handle, Some(cmd), &srv.commands),
    };
    let max = srv.config.int("acllog-max-len").max(0) as usize;
    srv.acl.log.lock().add(entry, max);
}

/// The dispatch check: logs and answers `-NOPERM` as `processCommand`
/// does when the connection's user may not run registry command `id`.
#[inline]
pub fn precheck(srv: &Server, c: &mut Client, id: usize, args: &[Bytes], out: &mut Out) -> bool {
    if c.acl_open && !srv.acl.stale(c) {
        return true;
    }
    refuse(srv, c, id, args, out)
}

#[cold]
fn refuse(srv: &Server, c: &mut Client, id: usize, args: &[Bytes], out: &mut Out) -> bool {
    let Some((cid, d)) = denied(srv, c, id, args) else {
        return true;
    };
    let acl = &srv.acl;
    let context = if c.multi.is_some() {
        Context::Multi
    } else {
        Context::Toplevel
    };
    deny(srv, c, cid, args, d, context);
    out.error(&match d {
        Denied::Command => format!(
            "NOPERM this user has no permissions to run the '{}' command",
            acl.catalog.get(cid).name
        ),
        Denied::Key(_) => {
            "NOPERM this user has no permissions to access one of the keys used as arguments".into()
        }
        Denied::Channel(_) => {
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .into()
        }
    });
    false
}

/// EXEC's re-check of a queued command: rules may have changed since it
/// was queued. `None` when it may run, else Redis's reply text.
pub fn exec_check(srv: &Server, c: &mut Client, id: usize, args: &[Bytes]) -> Option<String> {
    let (cid, d) = denied(srv, c, id, args)?;
    deny(srv, c, cid, args, d, Context::Multi);
    let reason = match d {
        Denied::Command => "no permission to execute the command or subcommand",
        Denied::Key(_) => "no permission to touch the specified keys",
        Denied::Channel(_) => "no permission to access one of the channels used as arguments",
    };
    Some(format!("NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"))
}

/// A script's `redis.call` check (Redis's `scriptVerifyACL`): `None` when
/// the command may run, else what follows "The user executing the script "
/// in the error; the denial is logged with the `lua` context.
pub fn script_check(
    srv: &Server,
    c: &mut Client,
    id: usize,
    args: &[Bytes],
) -> Option<&'static str> {
    let (cid, d) = denied(srv, c, id, args)?;
    deny(srv, c, cid, args, d, Context::Lua);
    Some(match d {
        Denied::Command => "can't run this command or subcommand",
        Denied::Key(_) => {
            "can't access at least one of the keys mentioned in the command arguments"
        }
        Denied::Channel(_) => "can't publish to the channel mentioned in the command",
    })
}

/// Whether the connection's user may run registry command `id`
/// (`redis.acl_check_cmd`), without logging.
pub fn allows(srv: &Server, c: &mut Client, id: usize, args: &[Bytes]) -> bool {
    denied(srv, c, id, args).is_none()
}

/// Whether the connection's user may not run registry command `id`:
/// the catalog id and why.
#[inline]
fn denied(srv: &Server, c: &mut Client, id: usize, args: &[Bytes]) -> Option<(usize, Denied)> {
    let acl = &srv.acl;
    if acl.stale(c) {
        acl.refresh(c);
    }
    if c.acl_open {
        return None;
    }
    let user = c.user.as_ref()?;
    let cid = acl.catalog_id(id);
    acl.check(user, cid, args).err().map(|d| (cid, d))
}

fn deny(srv: &Server, c: &Client, cid: usize, args: &[Bytes], d: Denied, context: Context) {
    use rampart_acl::Reason;
    let (reason, object): (Reason, &[u8]) = match d {
        Denied::Command => (Reason::Command, srv.acl.catalog.get(cid).name.as_bytes()),
        Denied::Key(p) => (Reason::Key, args.get(p).map_or(&[][..], |a| &a[..])),
        Denied::Channel(p) => (Reason::Channel, args.get(p).map_or(&[][..], |a| &a[..])),
    };
    let cmd = &srv.acl.catalog.get(cid).name;
    log_denial(srv, c, reason, context, object, None, cmd);
}

/// Authenticates the connection as `user` with `pass`
/// (`ACLAuthenticateUser`); a failure is logged with `object` (the
/// command as typed) as its object.
pub fn authenticate(srv: &Server, c: &mut Client, user: &[u8], pass: &[u8], object: &[u8]) -> bool {
    let found = srv.acl.users().get(user).cloned();
    match found {
        Some(u) if u.check_password(pass) => {
            *c.handle.user.lock() = Bytes::copy_from_slice(u.name());
            c.set_user(Some(u));
            c.authenticated = true;
            true
        }
        _ => {
            let context = if c.multi.is_some() {
                Context::Multi
            } else {
                Context::Toplevel
            };
            let cmd = String::from_utf8_lossy(object).to_ascii_lowercase();
            log_denial(
                srv,
                c,
                rampart_acl::Reason::Auth,
                context,
                object,
                Some(user),
                &cmd,
            );
            false
        }
    }
}

/// Closes every connection authenticated as one of `names` (a deleted
/// user's, or every non-default user's after ACL LOAD). The calling
/// connection is closed after its reply.
pub fn kill_users(srv: &Server, me: &mut Client, names: &[&[u8]]) {
    for h in srv.clients.all() {
        let user = h.user.lock().clone();
        if names.iter().any(|n| *n == &user[..]) {
            if h.id == me.handle.id {
                me.close = true;
            } else {
                h.killed.store(true, Ordering::Relaxed);
                h.wake.notify_one();
            }
        }
    }
}

/// Sets the default user's password from `requirepass`
/// (`ACLUpdateDefaultUserPassword`): empty means nopass.
pub fn set_requirepass(srv: &Server, pass: &str) {
    let cat = srv.acl.catalog;
    srv.acl.update(|users| {
        if let Some(d) = users.get(b"default") {
            let mut d = User::clone(d);
            let _ = d.apply(cat, b"resetpass", false);
            let op = if pass.is_empty() {
                b"nopass".to_vec()
            } else {
                [b">".as_slice(), pass.as_bytes()].concat()
            };
            let _ = d.apply(cat, &op, false);
            users.put(d);
        }
    });
}

/// Whether `acl-pubsub-default` is `allchannels`.
pub fn pubsub_default_all(srv: &Server) -> bool {
    srv.config
        .get("acl-pubsub-default")
        .is_some_and(|v| v == "allchannels")
}

/// Loads the users at startup (`ACLLoadUsersAtStartup`): redis.conf
/// `user` lines or the `aclfile`, never both.
pub fn load_at_startup(srv: &Server) -> Result<(), String> {
    let lines = srv.config.acl_users();
    let file = srv.config.get("aclfile").unwrap_or_default();
    if !file.is_empty() && !lines.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
    }
    let all = pubsub_default_all(srv);
    let cat = srv.acl.catalog;
    if !lines.is_empty() {
        let current = srv.acl.users().get(b"default").cloned();
        let mut users = rampart_acl::file::apply_configured(&lines, cat, all)
            .map_err(|e| format!("{e}\nCritical error while loading ACLs. Exiting."))?;
        // A `user default` line replaces the requirepass-made default;
        // otherwise the default keeps what requirepass gave it.
        if !lines
            .iter()
            .any(|l| l.first().is_some_and(|n| n == b"default"))
        {
            if let Some(d) = current {
                users.put(User::clone(&d));
            }
        }
        for u in users.iter().filter(|u| !u.enabled()) {
            tracing::info!(
                "The user '{}' is disabled (there is no 'on' modifier in the user description). Make sure this is not a configuration error.",
                String::from_utf8_lossy(u.name())
            );
        }
        srv.acl.update(|t| *t = users);
    }
    if !file.is_empty() {
        let users = load_file(srv, &file)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
        srv.acl.update(|t| *t = users);
    }
    Ok(())
}

/// Reads and parses the ACL file (`ACLLoadFromFile`).
pub fn load_file(srv: &Server, path: &str) -> Result<Users, String> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "Error loading ACLs, opening file '{path}': {}",
            e.to_string().split(" (os error").next().unwrap_or_default()
        )
    })?;
    let text = String::from_utf8_lossy(&text);
    rampart_acl::file::load(&text, path, srv.acl.catalog, pubsub_default_all(srv))
}

/// Writes the ACL file atomically (`ACLSaveToFile`): a temp file renamed
/// over the old one, so a failed save leaves the old file whole.
pub fn save_file(srv: &Server, path: &str) -> Result<(), String> {
    let text = rampart_acl::file::save(&srv.acl.users(), srv.acl.catalog);
    let tmp = format!(
        "{path}.tmp-{}-{}",
        std::process::id(),
        crate::state::now_ms()
    );
    let res = std::fs::write(&tmp, &text)
        .map_err(|e| format!("Writing ACL file for ACL SAVE: {e}"))
        .and_then(|_| {
            std::fs::rename(&tmp, path).map_err(|e| format!("Renaming ACL file for ACL SAVE: {e}"))
        });
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// The refreshed user of a client, for CLIENT LIST's `user=`.
pub fn user_name(c: &crate::state::ClientHandle) -> Bytes {
    c.user.lock().clone()
}

/// Shared for tests and tools: the default user as a fresh connection
/// sees it.
pub fn default_user(srv: &Server) -> Arc<User> {
    srv.acl
        .users()
        .get(b"default")
        .cloned()
        .unwrap_or_else(|| Arc::new(User::default_user(srv.acl.catalog)))
}
