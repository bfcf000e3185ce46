//! Lua scripting engine: the Lua 5.1 VM Redis 7.0 embeds, sandboxed as
//! Redis sandboxes it, with its `redis` API, its libraries (cjson, bit…)
//! and its conversions between RESP and Lua values.
//!
//! The crate knows nothing of the server: a script's `redis.call` goes
//! back through the [`Host`] trait, which runs the command and hands back
//! its reply as RESP bytes. [`Engine`] owns the VM and the script cache;
//! [`Watch`] is the state other threads read while a script runs (busy,
//! kill requests). `redis.call` and `redis.pcall` are C functions on
//! Lua's own API (module `raw`, the crate's only unsafe code, which says
//! why and why it is sound).

pub mod fmt;
pub mod libs;
mod raw;
pub mod reply;

use std::collections::HashSet;

// foldhash, not SipHash: EVALSHA and FCALL look a name up on every call.
use hashbrown::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};
use sha1::{Digest, Sha1};

pub use reply::{lua_to_resp, Writer};

/// What a script's `redis.call` needs from the server.
pub trait Host {
    /// Runs a command on behalf of the script. `resp` is the protocol
    /// the script chose with `redis.setresp` (2 or 3): the reply must be
    /// in it. `Err` is a refusal by the script rules (unknown command,
    /// write from a read-only script…), in `luaPushError` form: a text
    /// with its code after a `-` (`-READONLY …`) or a bare message that
    /// gets `ERR`. The reply is appended to `reply`, a buffer the engine
    /// keeps from call to call (a fresh one per call was an allocation
    /// and a growth or two for every `redis.call`).
    fn call(&mut self, args: &[&[u8]], resp: u8, reply: &mut Vec<u8>) -> Result<(), Vec<u8>>;
    /// `redis.log(level, …)`, with Redis's levels (0 debug … 3 warning).
    fn log(&mut self, level: i32, msg: &[u8]);
    /// `redis.set_repl(flags)` (bit 1 AOF, bit 2 replicas).
    fn set_repl(&mut self, flags: i32);
    /// `redis.acl_check_cmd(…)`: `None` when the command is unknown.
    fn acl_check(&mut self, args: &[Vec<u8>]) -> Option<bool>;
}

/// Script flags from a `#!lua flags=…` shebang.
pub mod flags {
    /// No shebang: EVAL's compatibility mode.
    pub const EVAL_COMPAT_MODE: u64 = 1 << 0;
    /// `no-writes`
    pub const NO_WRITES: u64 = 1 << 1;
    /// `allow-oom`
    pub const ALLOW_OOM: u64 = 1 << 2;
    /// `allow-stale`
    pub const ALLOW_STALE: u64 = 1 << 3;
    /// `no-cluster`
    pub const NO_CLUSTER: u64 = 1 << 4;
    /// `allow-cross-slot-keys`
    pub const ALLOW_CROSS_SLOT: u64 = 1 << 5;

    /// Names as the shebang spells them.
    pub const NAMES: &[(u64, &str)] = &[
        (NO_WRITES, "no-writes"),
        (ALLOW_OOM, "allow-oom"),
        (ALLOW_STALE, "allow-stale"),
        (NO_CLUSTER, "no-cluster"),
        (ALLOW_CROSS_SLOT, "allow-cross-slot-keys"),
    ];
}

/// SHA-1 of `data` as 40 lower-case hex digits (script ids, `redis.sha1hex`).
///
/// ```
/// assert_eq!(rampart_scripting::sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
/// ```
pub fn sha1hex(data: &[u8]) -> String {
    let d = Sha1::digest(data);
    let mut s = String::with_capacity(40);
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Splits a shebang line as `sdssplitargs` does for the common cases
/// (blanks separate words; quotes group them).
fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < line.len() {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let mut w = Vec::new();
        let quote = match line[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                Some(q)
            }
            _ => None,
        };
        loop {
            if i >= line.len() {
                if quote.is_some() {
                    return None;
                }
                break;
            }
            let c = line[i];
            match quote {
                Some(q) if c == q => {
                    i += 1;
                    if i < line.len() && !line[i].is_ascii_whitespace() {
                        return None;
                    }
                    break;
                }
                None if c.is_ascii_whitespace() => break,
                _ => w.push(c),
            }
            i += 1;
        }
        out.push(w);
    }
    Some(out)
}

/// Parses a script's shebang, as Redis's `evalExtractShebangFlags`:
/// returns the flags and the shebang's length (the body compiled starts
/// there, keeping the line feed so line numbers stay right).
///
/// ```
/// use rampart_scripting::{flags, parse_shebang};
/// assert_eq!(parse_shebang(b"return 1"), Ok((flags::EVAL_COMPAT_MODE, 0)));
/// assert_eq!(parse_shebang(b"#!lua flags=no-writes\nreturn 1"), Ok((flags::NO_WRITES, 21)));
/// ```
pub fn parse_shebang(body: &[u8]) -> Result<(u64, usize), String> {
    if !body.starts_with(b"#!") {
        return Ok((flags::EVAL_COMPAT_MODE, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts = match split_args(&body[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid engine in script shebang".into()),
    };
    if parts[0] != b"#!lua" {
        return Err(format!(
            "Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(&parts[0])
        ));
    }
    let mut f = 0;
    for p in &parts[1..] {
        if let Some(list) = p.strip_prefix(b"flags=") {
            if list.is_empty() {
                continue;
            }
            for name in list.split(|&b| b == b',') {
                match flags::NAMES.iter().find(|(_, n)| n.as_bytes() == name) {
                    Some((bit, _)) => f |= bit,
                    None => {
                        return Err(format!(
                            "Unexpected flag in script shebang: {}",
                            String::from_utf8_lossy(name)
                        ))
                    }
                }
            }
        } else {
            return Err(format!(
                "Unknown lua shebang option: {}",
                String::from_utf8_lossy(p)
            ));
        }
    }
    Ok((f, end))
}

/// What other threads see of the running script: whether it is past the
/// busy threshold, and a pending SCRIPT KILL / FUNCTION KILL.
#[derive(Default)]
pub struct Watch {
    /// A script runs (set and cleared by its thread).
    running: AtomicBool,
    /// The script ran past `busy-reply-threshold`: other clients get
    /// -BUSY. One relaxed load on every request path.
    pub busy: AtomicBool,
    /// The running script is an EVAL (not an FCALL).
    eval_mode: AtomicBool,
    /// The running script has written: it can no longer be killed.
    dirty: AtomicBool,
    /// The running script was sent by our primary.
    from_master: AtomicBool,
    /// A kill was requested.
    kill: AtomicBool,
    /// `busy-reply-threshold` in ms (0: never busy, no hook).
    pub threshold_ms: AtomicU64,
    /// When the running script started (ms since `epoch`).
    start_ms: AtomicU64,
    /// The elapsed second in which the busy hook was last called.
    busy_hook_second: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
    /// Called by the hook, on the script's thread, while the script is past
    /// its threshold: the host lets its other clients be served meanwhile.
    busy_hook: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

/// SCRIPT KILL's reply when a function runs, and -BUSY for an EVAL.
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// -BUSY while a function runs.
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

impl Watch {
    fn now_ms(&self) -> u64 {
        self.epoch.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    /// The -BUSY error for other clients (without the leading `-`), or
    /// `None` when no script is past its threshold.
    ///
    /// ```
    /// let w = rampart_scripting::Watch::default();
    /// assert_eq!(w.busy_error(), None);
    /// ```
    pub fn busy_error(&self) -> Option<&'static str> {
        if !self.busy.load(Ordering::Relaxed) {
            return None;
        }
        Some(if self.eval_mode.load(Ordering::Relaxed) {
            BUSY_EVAL
        } else {
            BUSY_FUNCTION
        })
    }

    /// Sets what the hook calls while a script is past its threshold (once;
    /// later calls are ignored).
    ///
    /// ```
    /// let w = rampart_scripting::Watch::default();
    /// w.on_busy(Box::new(|| {}));
    /// ```
    pub fn on_busy(&self, f: Box<dyn Fn() + Send + Sync>) {
        let _ = self.busy_hook.set(f);
    }

    /// Marks that the running script wrote to the dataset.
    pub fn set_dirty(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Whether the running script wrote.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Relaxed)
    }

    /// Whether a script runs.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// How long the running script has run (ms).
    pub fn elapsed_ms(&self) -> u64 {
        self.now_ms()
            .saturating_sub(self.start_ms.load(Ordering::Relaxed))
    }

    /// SCRIPT KILL (`eval` true) or FUNCTION KILL, as Redis's `scriptKill`:
    /// `Ok` when the kill is on its way, else the error reply.
    ///
    /// ```
    /// let w = rampart_scripting::Watch::default();
    /// assert_eq!(w.kill(true), Err("NOTBUSY No scripts in execution right now."));
    /// ```
    pub fn kill(&self, eval: bool) -> Result<(), &'static str> {
        if !self.running.load(Ordering::SeqCst) {
            return Err("NOTBUSY No scripts in execution right now.");
        }
        if self.from_master.load(Ordering::Relaxed) {
            return Err("UNKILLABLE The busy script was sent by a master instance in the context of replication and cannot be killed.");
        }
        if self.dirty.load(Ordering::Relaxed) {
            return Err("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.");
        }
        let running_eval = self.eval_mode.load(Ordering::Relaxed);
        if eval && !running_eval {
            return Err(BUSY_FUNCTION);
        }
        if !eval && running_eval {
            return Err(BUSY_EVAL);
        }
        self.kill.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn begin(&self, eval: bool, from_master: bool) {
        self.eval_mode.store(eval, Ordering::Relaxed);
        self.from_master.store(from_master, Ordering::Relaxed);
        self.dirty.store(false, Ordering::Relaxed);
        self.kill.store(false, Ordering::Relaxed);
        self.start_ms.store(self.now_ms(), Ordering::Relaxed);
        self.busy_hook_second.store(u64::MAX, Ordering::Relaxed);
        self.running.store(true, Ordering::SeqCst);
    }

    fn end(&self) {
        self.busy.store(false, Ordering::Relaxed);
        self.running.store(false, Ordering::SeqCst);
        self.kill.store(false, Ordering::Relaxed);
    }
}

/// A cached EVAL script ([`Engine::script`]).
pub struct Script {
    body: Vec<u8>,
    flags: u64,
    func: Function,
}

impl Script {
    /// Its shebang flags ([`flags`] bits).
    pub fn flags(&self) -> u64 {
        self.flags
    }
}

/// How a script is run.
pub struct RunOptions<'a> {
    /// EVAL (`true`: KEYS and ARGV globals, SCRIPT KILL) or FCALL.
    pub eval: bool,
    /// The caller's protocol, for the reply.
    pub caller_proto: u8,
    /// The name errors cite: the script's sha, or the function's name.
    pub name: &'a str,
    /// The caller is our primary (the script cannot be killed).
    pub from_master: bool,
}

/// An error table raised from Rust (`redis.call`'s failures and the
/// argument checks of `redis.*`): mlua raises Rust errors as userdata, so
/// the table is rebuilt from this by the error handler and `pcall`.
#[derive(Debug)]
struct ScriptError {
    /// The `err` field: `<CODE> <message>`.
    err: Vec<u8>,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.err))
    }
}

impl std::error::Error for ScriptError {}

/// Raises Redis's error table for `text` (`luaPushError` + `lua_error`).
fn raise(text: &[u8]) -> mlua::Error {
    let lua_err = reply::error_text(text);
    mlua::Error::external(ScriptError { err: lua_err })
}

/// `luaL_error`: the message with the calling line in front
/// (`user_script:3: …`), as C libraries raise it.
pub fn lua_error(lua: &Lua, msg: &str) -> mlua::Error {
    let at = lua
        .inspect_stack(1, |d| {
            let line = d.current_line()?;
            let src = d.source().short_src?.to_string();
            Some(format!("{src}:{line}: "))
        })
        .flatten()
        .unwrap_or_default();
    mlua::Error::RuntimeError(format!("{at}{msg}"))
}

fn find_script_error(e: &mlua::Error) -> Option<&ScriptError> {
    match e {
        mlua::Error::CallbackError { cause, .. } => find_script_error(cause),
        mlua::Error::ExternalError(e) => e.downcast_ref::<ScriptError>(),
        _ => None,
    }
}

/// The error `Killed` marks a script stopped by SCRIPT KILL.
#[derive(Debug)]
struct Killed;

impl std::fmt::Display for Killed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Script killed by user with SCRIPT KILL...")
    }
}

impl std::error::Error for Killed {}

/// The Lua VM with Redis's API and the EVAL script cache.
pub struct Engine {
    lua: Lua,
    /// The environment scripts see: the globals behind a read-only proxy.
    env: Table,
    run: Function,
    /// Starts a run: builds KEYS and ARGV and calls `run` (see `raw`).
    starter: Function,
    handler: Function,
    scripts: HashMap<String, Script>,
    scripts_mem: usize,
    watch: Arc<Watch>,
    /// FUNCTION libraries by name.
    libraries: std::collections::BTreeMap<String, Library>,
    /// Function name -> its library.
    function_lib: HashMap<String, String>,
    /// What `redis.register_function` collects during FUNCTION LOAD.
    loading: Arc<std::sync::Mutex<Option<Vec<FunctionInfo>>>>,
    /// The environment of library code (see sandbox.lua).
    fenv: Table,
    /// Switches `fenv` between the load API and the full globals.
    fswitch: Function,
    /// The VM's memory cap in bytes (0: none yet), see
    /// [`Engine::set_memory_limit`].
    mem_limit: usize,
    /// The running script's host, reached by the `redis.*` functions,
    /// which are made once with the VM (not per run: making and freeing
    /// six closures took a third of a short script's run).
    run_ctx: Arc<RunCtx>,
    /// Whether the busy/kill count hook is installed: it stays between
    /// runs while `busy-reply-threshold` is on, as setting it per run cost
    /// more than a short script.
    hook_on: std::cell::Cell<bool>,
    /// Whether mlua's limit is set to `mem_limit` now (the cap is lifted
    /// while Rust works on the VM, see [`Engine::lift_cap`]): setting it
    /// takes the VM's lock, so it is set only when it changes.
    capped: std::cell::Cell<bool>,
}

/// What the `redis.*` functions reach during a run.
#[derive(Default)]
struct RunCtx {
    /// The running script's host (`None` between runs).
    host: std::sync::Mutex<Option<Box<dyn Host + Send>>>,
    /// The protocol the script chose with `redis.setresp`.
    resp: std::sync::atomic::AtomicU8,
    /// The VM, for `redis.call` (a C function, see `raw`) to lift the
    /// memory cap while it works.
    lua: std::sync::OnceLock<mlua::WeakLua>,
    /// A panic of the host's `call`, caught in `redis.call` (it must not
    /// unwind through Lua) and resumed when the run is over.
    panic: std::sync::Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// The engine's memory cap (0: none), which `redis.call` keeps
    /// unless the VM is near it (see `raw`).
    cap: std::sync::atomic::AtomicUsize,
    /// The buffer `redis.call` renders replies into, kept between calls.
    reply: std::sync::Mutex<Vec<u8>>,
}

/// A function a library registered.
pub struct FunctionInfo {
    /// Its name.
    pub name: String,
    /// Its description, if given.
    pub desc: Option<Vec<u8>>,
    /// Its flags ([`flags`] bits).
    pub flags: u64,
    func: Function,
}

/// A library loaded by FUNCTION LOAD.
pub struct Library {
    /// Its name.
    pub name: String,
    /// The code as loaded, shebang included.
    pub code: Vec<u8>,
    /// Its functions, in registration order.
    pub functions: Vec<FunctionInfo>,
}

/// Whether `name` is a valid library or function name.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// How FUNCTION RESTORE treats the libraries already loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestorePolicy {
    /// Drop them all first.
    Flush,
    /// Keep them; a library of the same name is an error.
    Append,
    /// Keep them; a library of the same name is replaced.
    Replace,
}

/// A library's `#!engine name=…` line (Redis's
/// `functionExtractLibMetaData` and the checks after it): the library's
/// name and where its code starts, or the error reply text.
fn library_meta(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let parts = match split_args(&code[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("ERR Invalid library metadata".into()),
    };
    let engine = String::from_utf8_lossy(&parts[0][2..]).into_owned();
    let mut name: Option<Vec<u8>> = None;
    for p in &parts[1..] {
        if p.len() >= 5 && p[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(p[5..].to_vec());
            continue;
        }
        return Err(format!(
            "ERR Invalid metadata value given: {}",
            String::from_utf8_lossy(p)
        ));
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    if !valid_name(&name) {
        return Err(format!("ERR {BAD_NAME}"));
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("ERR Engine '{engine}' not found"));
    }
    Ok((String::from_utf8_lossy(&name).into_owned(), end))
}

const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// `redis.register_function` (Redis's `luaRegisterFunction`).
fn register_function(
    lua: &Lua,
    loading: &std::sync::Mutex<Option<Vec<FunctionInfo>>>,
    args: mlua::MultiValue,
) -> mlua::Result<()> {
    let mut guard = loading.lock().map_err(|_| raise(b"load state"))?;
    let Some(registered) = guard.as_mut() else {
        return Err(raise(
            b"redis.register_function can only be called on FUNCTION LOAD command",
        ));
    };
    let is_str = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Integer(_));
    let (name, desc, func, fl) = match args.len() {
        2 => {
            let name = match args.front() {
                Some(v) if is_str(v) => to_bytes(lua, v).unwrap_or_default(),
                _ => {
                    return Err(raise(
                        b"first argument to redis.register_function must be a string",
                    ))
                }
            };
            let Some(Value::Function(f)) = args.get(1) else {
                return Err(raise(
                    b"second argument to redis.register_function must be a function",
                ));
            };
            (name, None, f.clone(), 0)
        }
        1 => {
            let Some(Value::Table(t)) = args.front() else {
                return Err(raise(b"calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."));
            };
            let (mut name, mut desc, mut func, mut fl) = (None, None, None, 0u64);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                if !is_str(&k) {
                    return Err(raise(
                        b"named argument key given to redis.register_function is not a string",
                    ));
                }
                let key = to_bytes(lua, &k).unwrap_or_default().to_ascii_lowercase();
                match &key[..] {
                    b"function_name" => match is_str(&v) {
                        true => name = to_bytes(lua, &v),
                        false => return Err(raise(b"function_name argument given to redis.register_function must be a string")),
                    },
                    b"description" => match is_str(&v) {
                        true => desc = to_bytes(lua, &v),
                        false => return Err(raise(b"description argument given to redis.register_function must be a string")),
                    },
                    b"callback" => match v {
                        Value::Function(f) => func = Some(f),
                        _ => return Err(raise(b"callback argument given to redis.register_function must be a function")),
                    },
                    b"flags" => {
                        let Value::Table(ft) = v else {
                            return Err(raise(b"flags argument to redis.register_function must be a table representing function flags"));
                        };
                        let mut j = 1;
                        loop {
                            let f: Value = ft.get(j)?;
                            if f.is_nil() {
                                break;
                            }
                            let known = if is_str(&f) {
                                let n = to_bytes(lua, &f).unwrap_or_default();
                                flags::NAMES.iter().find(|(_, s)| s.as_bytes().eq_ignore_ascii_case(&n))
                            } else {
                                None
                            };
                            match known {
                                Some((bit, _)) => fl |= bit,
                                None => return Err(raise(b"unknown flag given")),
                            }
                            j += 1;
                        }
                    }
                    _ => return Err(raise(b"unknown argument given to redis.register_function")),
                }
            }
            let Some(name) = name else {
                return Err(raise(
                    b"redis.register_function must get a function name argument",
                ));
            };
            let Some(func) = func else {
                return Err(raise(
                    b"redis.register_function must get a callback argument",
                ));
            };
            (name, desc, func, fl)
        }
        _ => {
            return Err(raise(
                b"wrong number of arguments to redis.register_function",
            ))
        }
    };
    let name = reply::cstr(&name).to_vec();
    if !valid_name(&name) {
        return Err(raise(BAD_NAME.as_bytes()));
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    if registered.iter().any(|f| f.name == name) {
        return Err(raise(b"Function already exists in the library"));
    }
    registered.push(FunctionInfo {
        name,
        desc,
        flags: fl,
        func,
    });
    Ok(())
}

const PRELUDE: &str = include_str!("prelude.lua");
const SANDBOX: &str = include_str!("sandbox.lua");

/// Globals scripts may see, as Redis's allow lists.
const ALLOWED_GLOBALS: &[&str] = &[
    "string",
    "cjson",
    "bit",
    "cmsgpack",
    "math",
    "table",
    "struct",
    "redis",
    "xpcall",
    "tostring",
    "getfenv",
    "setmetatable",
    "next",
    "assert",
    "tonumber",
    "rawequal",
    "collectgarbage",
    "getmetatable",
    "rawset",
    "pcall",
    "coroutine",
    "type",
    "_G",
    "select",
    "unpack",
    "gcinfo",
    "pairs",
    "rawget",
    "loadstring",
    "ipairs",
    "_VERSION",
    "setfenv",
    "load",
    "error",
    "newproxy",
];

fn mlua_err_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => mlua_err_text(cause),
        mlua::Error::RuntimeError(s) => s.clone(),
        mlua::Error::MemoryError(s) => s.clone(),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::ExternalError(e) => e.to_string(),
        other => other.to_string(),
    }
}

fn is_killed(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::CallbackError { cause, .. } => is_killed(cause),
        mlua::Error::ExternalError(e) => e.downcast_ref::<Killed>().is_some(),
        _ => false,
    }
}

/// Redis's `__redis__err__handler`: turns any error into a table
/// `{err=…, source=…, line=…}` naming the user's line that raised it.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let t = match err {
        Value::Table(t) => t,
        Value::Error(e) if is_killed(&e) => {
            reply::error_table(lua, b"Script killed by user with SCRIPT KILL...")?
        }
        Value::Error(e) if find_script_error(&e).is_some() => {
            let t = lua.create_table()?;
            if let Some(se) = find_script_error(&e) {
                t.raw_set("err", lua.create_string(&se.err)?)?;
            }
            t.raw_set("ignore_error_stats_update", true)?;
            t
        }
        other => {
            let text: Vec<u8> = match &other {
                Value::Error(e) => mlua_err_text(e).into_bytes(),
                v => match lua.coerce_string(v.clone()) {
                    Ok(Some(s)) => s.as_bytes().to_vec(),
                    _ => v.to_string().unwrap_or_default().into_bytes(),
                },
            };
            let mut msg = b"ERR ".to_vec();
            msg.extend_from_slice(&text);
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(&msg)?)?;
            t
        }
    };
    // Level 0 is this handler; 1 what raised (a C function such as
    // `error` or `redis.call`: then its caller); frames of our own
    // prelude are skipped so the user's line is named.
    let mut level = 1;
    if lua.inspect_stack(level, |d| d.source().what == "C") == Some(true) {
        level += 1;
    }
    loop {
        let info = lua.inspect_stack(level, |d| {
            let s = d.source();
            (
                s.source.map(|s| s.to_string()),
                d.current_line(),
                s.what == "C",
            )
        });
        match info {
            // Our prelude's frames, and the pseudo-frame a tail call into
            // it leaves, are not the user's.
            Some((Some(src), _, _)) if src == "=rampart" || src == "=(tail call)" => level += 1,
            Some((_, _, true)) if level > 1 => level += 1,
            Some((Some(src), line, _)) => {
                t.set("source", src)?;
                match line {
                    Some(l) => t.set("line", l as f64)?,
                    None => t.set("line", -1.0)?,
                }
                break;
            }
            _ => break,
        }
    }
    Ok(t)
}

impl Engine {
    /// A fresh VM with Redis's libraries and API, sandboxed.
    ///
    /// ```
    /// let e = rampart_scripting::Engine::new(Default::default()).unwrap();
    /// assert_eq!(e.cached_scripts(), 0);
    /// ```
    pub fn new(watch: Arc<Watch>) -> mlua::Result<Engine> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        let g = lua.globals();
        // Drop what Redis does not offer (print, dofile, loadfile…).
        let mut drop = Vec::new();
        for (k, _) in g.pairs::<Value, Value>().flatten() {
            if let Value::String(s) = &k {
                if !ALLOWED_GLOBALS
                    .iter()
                    .any(|a| a.as_bytes() == &s.as_bytes()[..])
                {
                    drop.push(k.clone());
                }
            }
        }
        for k in drop {
            g.raw_set(k, Value::Nil)?;
        }
        let redis = lua.create_table()?;
        redis.set("REDIS_VERSION_NUM", 0x0007_000f)?;
        redis.set("REDIS_VERSION", "7.0.15")?;
        for (name, level) in [
            ("LOG_DEBUG", 0),
            ("LOG_VERBOSE", 1),
            ("LOG_NOTICE", 2),
            ("LOG_WARNING", 3),
        ] {
            redis.set(name, level)?;
        }
        for (name, v) in [
            ("REPL_NONE", 0),
            ("REPL_AOF", 1),
            ("REPL_SLAVE", 2),
            ("REPL_REPLICA", 2),
            ("REPL_ALL", 3),
        ] {
            redis.set(name, v)?;
        }
        redis.set(
            "error_reply",
            lua.create_function(|lua, args: mlua::MultiValue| {
                let e = match (args.len(), args.front()) {
                    (1, Some(Value::String(s))) => {
                        let s = s.as_bytes();
                        let mut b = Vec::with_capacity(s.len() + 1);
                        if s.first() != Some(&b'-') {
                            b.push(b'-');
                        }
                        b.extend_from_slice(reply::cstr(&s));
                        reply::error_table(lua, &b)?
                    }
                    _ => reply::error_table(lua, b"wrong number or type of arguments")?,
                };
                Ok(e)
            })?,
        )?;
        redis.set(
            "status_reply",
            lua.create_function(
                |lua, args: mlua::MultiValue| match (args.len(), args.front()) {
                    (1, Some(Value::String(s))) => {
                        let t = lua.create_table()?;
                        t.raw_set("ok", s.clone())?;
                        Ok(t)
                    }
                    _ => reply::error_table(lua, b"wrong number or type of arguments"),
                },
            )?,
        )?;
        g.raw_set("redis", redis.clone())?;
        libs::install(&lua)?;
        let prims = lua.create_table()?;
        redis.raw_set(
            "sha1hex",
            lua.create_function(|lua, args: mlua::MultiValue| {
                if args.len() != 1 {
                    return Err(raise(b"wrong number of arguments"));
                }
                let data = match args.front() {
                    Some(v) => to_bytes(lua, v).unwrap_or_default(),
                    None => Vec::new(),
                };
                Ok(sha1hex(&data))
            })?,
        )?;
        prims.raw_set(
            "unwrap",
            lua.create_function(|lua, e: Value| {
                let Value::Error(e) = e else {
                    return Ok(Value::Nil);
                };
                let text = if is_killed(&e) {
                    b"ERR Script killed by user with SCRIPT KILL...".to_vec()
                } else if let Some(se) = find_script_error(&e) {
                    se.err.clone()
                } else {
                    mlua_err_text(&e).into_bytes()
                };
                Ok(Value::String(lua.create_string(&text)?))
            })?,
        )?;
        let run: Function = lua
            .load(PRELUDE)
            .set_name("=rampart")
            .call((prims.clone(), g.clone()))?;
        let loading: Arc<std::sync::Mutex<Option<Vec<FunctionInfo>>>> = Default::default();
        let l2 = loading.clone();
        let rf = lua.create_function(move |lua, args: mlua::MultiValue| {
            register_function(lua, &l2, args)
        })?;
        // During FUNCTION LOAD there is no client to log for: redis.log
        // checks its arguments as Redis does and drops the message.
        let load_log = lua.create_function(|_, args: mlua::MultiValue| {
            if args.len() < 2 {
                return Err(raise(b"redis.log() requires two arguments or more."));
            }
            let Some(level) = to_number(args.front()) else {
                return Err(raise(b"First argument must be a number (log level)."));
            };
            if !(0..=3).contains(&fmt::c_i32(level)) {
                return Err(raise(b"Invalid debug level."));
            }
            Ok(())
        })?;
        let (env, fenv, fswitch): (Table, Table, Function) = lua
            .load(SANDBOX)
            .set_name("=rampart")
            .call((g.clone(), rf, load_log))?;
        let handler = lua.create_function(error_handler)?;
        let run_ctx = Arc::new(RunCtx::default());
        install_api(&lua, &redis, &run_ctx)?;
        let starter = raw::starter(&lua)?;
        Ok(Engine {
            lua,
            env,
            run,
            starter,
            handler,
            scripts: HashMap::new(),
            scripts_mem: 0,
            watch,
            libraries: Default::default(),
            function_lib: HashMap::new(),
            loading,
            fenv,
            fswitch,
            mem_limit: 0,
            run_ctx,
            hook_on: std::cell::Cell::new(false),
            capped: std::cell::Cell::new(false),
        })
    }

    /// Caps the VM's memory at `bytes`: an allocation past it fails as
    /// Lua's "not enough memory" error, which ends the running script
    /// (or FUNCTION LOAD) with an error reply instead of exhausting the
    /// server's memory. The cap can be changed at any time; below what the
    /// VM already holds, only new allocations fail.
    ///
    /// Lua 5.1 raises an allocation failure without calling the error
    /// handler, so the script fails with the bare string "not enough
    /// memory", which becomes `ERR Error running script <name>, not enough
    /// memory`: the reply Redis's `luaCallFunction` gives for such an
    /// error (7.0 itself has no cap and aborts when memory runs out).
    ///
    /// ```
    /// let mut e = rampart_scripting::Engine::new(Default::default()).unwrap();
    /// e.set_memory_limit(64 << 20);
    /// assert_eq!(e.memory_limit(), 64 << 20);
    /// ```
    pub fn set_memory_limit(&mut self, bytes: usize) {
        if bytes != self.mem_limit && self.lua.set_memory_limit(bytes).is_ok() {
            self.mem_limit = bytes;
            self.capped.set(bytes > 0);
            self.run_ctx.cap.store(bytes, Ordering::Relaxed);
        }
    }

    /// The cap [`Engine::set_memory_limit`] set, or 0.
    pub fn memory_limit(&self) -> usize {
        self.mem_limit
    }

    /// After a run that grew the VM near its cap (typically one stopped
    /// by it), collects at once: what the script left is garbage, and
    /// waiting for the incremental collector would keep it (and refuse
    /// the next scripts' allocations) for a long time.
    fn reclaim(&self) {
        if self.mem_limit > 0 && self.lua.used_memory() > self.mem_limit / 2 {
            self.collect();
        }
    }

    /// A full collection. The cap is lifted meanwhile: mlua's protected
    /// call around the collector allocates, which fails in a VM a script
    /// left at its cap, and the garbage would then stay for good.
    fn collect(&self) {
        self.lift_cap();
        let _ = self.lua.gc_collect();
        self.restore_cap();
    }

    /// The shared busy/kill state.
    pub fn watch(&self) -> &Arc<Watch> {
        &self.watch
    }

    /// Number of cached EVAL scripts (INFO `number_of_cached_scripts`).
    pub fn cached_scripts(&self) -> usize {
        self.scripts.len()
    }

    /// Bytes of script bodies cached (INFO `used_memory_scripts_eval`).
    pub fn scripts_memory(&self) -> usize {
        self.scripts_mem
    }

    /// Bytes the Lua VM uses (INFO `used_memory_lua`).
    pub fn vm_memory(&self) -> usize {
        self.lua.used_memory()
    }

    /// A cached script by its lower-case sha, to look at its flags and
    /// run it ([`Engine::eval_script`]) with one lookup.
    ///
    /// ```
    /// use rampart_scripting::{flags, Engine};
    /// let mut e = Engine::new(Default::default()).unwrap();
    /// let (sha, _) = e.load(b"#!lua flags=no-writes\nreturn 1").unwrap();
    /// assert_eq!(e.script(&sha).map(|s| s.flags()), Some(flags::NO_WRITES));
    /// assert!(e.script("0000000000000000000000000000000000000000").is_none());
    /// ```
    pub fn script(&self, sha: &str) -> Option<&Script> {
        self.scripts.get(sha)
    }

    /// Whether `sha` (any case) is cached.
    pub fn exists(&self, sha: &str) -> bool {
        self.scripts.contains_key(&sha.to_ascii_lowercase())
    }

    /// SCRIPT FLUSH: forgets every script (the VM is kept: its globals are
    /// read-only, so no script left state in it).
    pub fn flush(&mut self) {
        self.scripts.clear();
        self.scripts_mem = 0;
        crate::libs::cjson::reset(&self.lua);
        self.collect();
    }

    /// Compiles and caches `body` (EVAL, SCRIPT LOAD) unless already
    /// cached; returns its sha and flags, or the error reply text.
    pub fn load(&mut self, body: &[u8]) -> Result<(String, u64), String> {
        let sha = sha1hex(body);
        if let Some(s) = self.scripts.get(&sha) {
            return Ok((sha, s.flags));
        }
        let (flags, skip) = parse_shebang(body).map_err(|e| format!("ERR {e}"))?;
        let func = self
            .lua
            .load(&body[skip..])
            .set_name("@user_script")
            .set_mode(mlua::ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    mlua_err_text(&e)
                )
            })?;
        self.scripts_mem += body.len() + 40;
        self.scripts.insert(
            sha.clone(),
            Script {
                body: body.to_vec(),
                flags,
                func,
            },
        );
        Ok((sha, flags))
    }

    /// FUNCTION LOAD: compiles and runs a library's code so it registers
    /// its functions; returns the library's name, or the error reply text.
    pub fn load_library(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let (name, end) = library_meta(code)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let lib = self.build_library(code, name, end)?;
        for f in &lib.functions {
            if let Some(other) = self.function_lib.get(&f.name) {
                if *other != lib.name {
                    return Err(format!("ERR Function {} already exists", f.name));
                }
            }
        }
        let name = lib.name.clone();
        self.delete_library(&name);
        self.link(lib);
        Ok(name)
    }

    /// FUNCTION RESTORE (Redis's `functionRestoreCommand`): creates every
    /// library of `codes` apart from the loaded ones, then, if `read_error`
    /// (what stopped the payload's reading) is `None`, swaps them in
    /// (`Flush`) or joins them to the loaded ones. On any error nothing
    /// changes; the error is the reply text.
    ///
    /// ```
    /// use rampart_scripting::{Engine, RestorePolicy};
    ///
    /// let mut e = Engine::new(Default::default()).unwrap();
    /// let code = b"#!lua name=lib\nredis.register_function('f', function() return 1 end)".to_vec();
    /// e.restore_libraries(&[code.clone()], None, RestorePolicy::Append).unwrap();
    /// assert_eq!(
    ///     e.restore_libraries(&[code.clone()], None, RestorePolicy::Append),
    ///     Err("ERR Library lib already exists".to_string())
    /// );
    /// e.restore_libraries(&[code], None, RestorePolicy::Replace).unwrap();
    /// assert_eq!(e.function_count(), 1);
    /// ```
    pub fn restore_libraries(
        &mut self,
        codes: &[Vec<u8>],
        read_error: Option<&str>,
        policy: RestorePolicy,
    ) -> Result<(), String> {
        let mut new: std::collections::BTreeMap<String, Library> = Default::default();
        let mut new_functions: HashSet<String> = HashSet::new();
        for code in codes {
            let (name, end) = library_meta(code)?;
            if new.contains_key(&name) {
                return Err(format!("ERR Library '{name}' already exists"));
            }
            let lib = self.build_library(code, name, end)?;
            for f in &lib.functions {
                if !new_functions.insert(f.name.clone()) {
                    return Err(format!("ERR Function {} already exists", f.name));
                }
            }
            new.insert(lib.name.clone(), lib);
        }
        if let Some(e) = read_error {
            return Err(format!("ERR {e}"));
        }
        match policy {
            RestorePolicy::Flush => {
                self.libraries.clear();
                self.function_lib.clear();
            }
            RestorePolicy::Append | RestorePolicy::Replace => {
                // Redis's libraryJoin: libraries to replace are set aside
                // first, so only other libraries' functions collide.
                let mut replaced = HashSet::new();
                for name in new.keys() {
                    if self.libraries.contains_key(name) {
                        if policy == RestorePolicy::Append {
                            return Err(format!("ERR Library {name} already exists"));
                        }
                        replaced.insert(name.clone());
                    }
                }
                for lib in new.values() {
                    for f in &lib.functions {
                        if let Some(owner) = self.function_lib.get(&f.name) {
                            if !replaced.contains(owner) {
                                return Err(format!("ERR Function {} already exists", f.name));
                            }
                        }
                    }
                }
                for name in &replaced {
                    self.delete_library(name);
                }
            }
        }
        for lib in new.into_values() {
            self.link(lib);
        }
        self.collect();
        Ok(())
    }

    /// Makes `lib` and its functions callable.
    fn link(&mut self, lib: Library) {
        for f in &lib.functions {
            self.function_lib.insert(f.name.clone(), lib.name.clone());
        }
        self.libraries.insert(lib.name.clone(), lib);
    }

    /// Compiles library `name`'s code (the body starts at `end`) and runs
    /// it so it registers its functions, without linking it.
    fn build_library(&mut self, code: &[u8], name: String, end: usize) -> Result<Library, String> {
        let chunk = self
            .lua
            .load(&code[end..])
            .set_name("@user_function")
            .set_mode(mlua::ChunkMode::Text)
            .set_environment(self.fenv.clone())
            .into_function()
            .map_err(|e| format!("ERR Error compiling function: {}", mlua_err_text(&e)))?;
        if let Ok(mut g) = self.loading.lock() {
            *g = Some(Vec::new());
        }
        let _ = self.fswitch.call::<()>(true);
        let start = Instant::now();
        let _ = self.lua.set_hook(
            HookTriggers::new().every_nth_instruction(100_000),
            move |lua, _| {
                if start.elapsed().as_millis() > 500 {
                    let _ = lua.set_hook(HookTriggers::EVERY_LINE, |_, _| {
                        Err(raise(b"FUNCTION LOAD timeout"))
                    });
                    return Err(raise(b"FUNCTION LOAD timeout"));
                }
                Ok(VmState::Continue)
            },
        );
        // Run as Redis does, without a handler: the error value as raised
        // (mlua's own call would append a traceback to it).
        let ran: mlua::Result<(bool, Value)> = match self
            .lua
            .load("return function(e) return e end")
            .eval::<Function>()
        {
            Ok(plain) => self.run.call((chunk, plain)),
            Err(e) => Err(e),
        };
        self.lua.remove_hook();
        self.hook_on.set(false);
        let _ = self.fswitch.call::<()>(false);
        self.reclaim();
        let registered = self
            .loading
            .lock()
            .ok()
            .and_then(|mut g| g.take())
            .unwrap_or_default();
        let failure = match ran {
            Ok((true, _)) => None,
            Ok((false, Value::Table(t))) => Some(match t.get::<Value>("err") {
                Ok(v) => to_bytes(&self.lua, &v)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_else(|| "(null)".into()),
                Err(_) => "(null)".into(),
            }),
            Ok((false, Value::Error(e))) => Some(match find_script_error(&e) {
                Some(se) => String::from_utf8_lossy(&se.err).into_owned(),
                None => format!("ERR {}", mlua_err_text(&e)),
            }),
            Ok((false, v)) => Some(format!(
                "ERR {}",
                to_bytes(&self.lua, &v)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            )),
            Err(e) => Some(format!("ERR {}", mlua_err_text(&e))),
        };
        if let Some(msg) = failure {
            return Err(format!("ERR Error registering functions: {msg}"));
        }
        if registered.is_empty() {
            return Err("ERR No functions registered".into());
        }
        Ok(Library {
            name,
            code: code.to_vec(),
            functions: registered,
        })
    }

    /// FUNCTION DELETE: whether the library existed.
    pub fn delete_library(&mut self, name: &str) -> bool {
        match self.libraries.remove(name) {
            Some(lib) => {
                for f in &lib.functions {
                    self.function_lib.remove(&f.name);
                }
                true
            }
            None => false,
        }
    }

    /// FUNCTION FLUSH.
    pub fn flush_functions(&mut self) {
        self.libraries.clear();
        self.function_lib.clear();
        self.collect();
    }

    /// The loaded libraries, by name.
    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.libraries.values()
    }

    /// Number of functions (INFO `number_of_functions`).
    pub fn function_count(&self) -> usize {
        self.function_lib.len()
    }

    /// Function `name`, or `None` when there is no such function: its
    /// flags, and what [`Engine::fcall`] runs.
    ///
    /// ```
    /// let mut e = rampart_scripting::Engine::new(Default::default()).unwrap();
    /// let lib = b"#!lua name=l\nredis.register_function('f', function() return 1 end)";
    /// e.load_library(lib, false).unwrap();
    /// assert_eq!(e.function("f").map(|f| f.flags), Some(0));
    /// assert!(e.function("g").is_none());
    /// ```
    pub fn function(&self, name: &str) -> Option<&FunctionInfo> {
        let lib = self.function_lib.get(name)?;
        let l = self.libraries.get(lib)?;
        l.functions.iter().find(|f| f.name == name)
    }

    /// FCALL: runs function `f` with its keys and arguments.
    pub fn fcall(
        &self,
        host: Box<dyn Host + Send>,
        f: &FunctionInfo,
        keys: &[&[u8]],
        args: &[&[u8]],
        opts: &RunOptions<'_>,
    ) -> Vec<u8> {
        self.call(host, &f.func, keys, args, opts)
    }

    /// The body of a cached script.
    pub fn body(&self, sha: &str) -> Option<&[u8]> {
        self.scripts.get(sha).map(|s| &s.body[..])
    }

    /// Runs `script` (from [`Engine::script`]) with KEYS and ARGV; returns
    /// the reply as RESP in the caller's protocol.
    pub fn eval_script(
        &self,
        host: Box<dyn Host + Send>,
        script: &Script,
        keys: &[&[u8]],
        args: &[&[u8]],
        opts: &RunOptions<'_>,
    ) -> Vec<u8> {
        self.call(host, &script.func, keys, args, opts)
    }

    /// Lifts the memory cap while Rust code works on the VM (arguments,
    /// replies, results): without a cap mlua runs its calls unprotected,
    /// where each protected one made a C closure for Lua 5.1's
    /// `lua_cpcall` and most of a short script's garbage. What a script
    /// allocates from Lua stays capped ([`Engine::restore_cap`] before
    /// its code runs).
    fn lift_cap(&self) {
        if self.capped.get() && self.lua.set_memory_limit(0).is_ok() {
            self.capped.set(false);
        }
    }

    /// Puts the cap [`Engine::lift_cap`] lifted back.
    fn restore_cap(&self) {
        if self.mem_limit > 0
            && !self.capped.get()
            && self.lua.set_memory_limit(self.mem_limit).is_ok()
        {
            self.capped.set(true);
        }
    }

    /// Installs (or removes) the count hook that notices the busy
    /// threshold and SCRIPT KILL. It stays installed between runs; it
    /// does nothing outside one.
    fn set_count_hook(&self, on: bool) {
        if on == self.hook_on.get() {
            return;
        }
        if on {
            let w = self.watch.clone();
            let _ = self.lua.set_hook(
                HookTriggers::new().every_nth_instruction(100_000),
                move |lua, _| hook(lua, &w),
            );
        } else {
            self.lua.remove_hook();
        }
        self.hook_on.set(on);
    }

    /// Runs `func` under the hook and the error handler, converting its
    /// result to RESP. `keys` and `args` become KEYS and ARGV for an
    /// EVAL, the function's arguments for an FCALL (tables built by the
    /// starter, with the memory cap lifted until the script's code runs).
    fn call(
        &self,
        host: Box<dyn Host + Send>,
        func: &Function,
        keys: &[&[u8]],
        args: &[&[u8]],
        opts: &RunOptions<'_>,
    ) -> Vec<u8> {
        let watch = self.watch.clone();
        watch.begin(opts.eval, opts.from_master);
        self.set_count_hook(watch.threshold_ms.load(Ordering::Relaxed) > 0);
        self.run_ctx.resp.store(2, Ordering::Relaxed);
        *lock(&self.run_ctx.host) = Some(host);
        // The cap applies while the script's own Lua code runs; the Rust
        // side (arguments, replies) runs without it, where mlua skips its
        // protected calls (see `lift_cap`).
        self.lift_cap();
        let restore = || self.restore_cap();
        let start = raw::Start {
            keys,
            args,
            eval: opts.eval,
            before_run: &restore,
        };
        let result: mlua::Result<(bool, Value)> =
            raw::start_run(&self.starter, &start, &self.run, func, &self.handler);
        self.lift_cap();
        // A kill swaps the count hook for one that fails every line.
        if watch.kill.load(Ordering::Relaxed) {
            self.set_count_hook(false);
        }
        *lock(&self.run_ctx.host) = None;
        // No collection step here: Redis runs one every 50 calls, which
        // completes a whole cycle over the VM each time (its cost follows
        // the VM's size, not the scripts' garbage). Lua 5.1's incremental
        // collector, paced by what scripts allocate, spent half as much
        // (callgrind, FCALL -P16: 1,350 instructions a call against 3,000)
        // and keeps the VM within twice its live size.
        let script_resp = self.run_ctx.resp.load(Ordering::Relaxed);
        watch.end();
        self.reclaim();
        self.lift_cap();
        if let Some(payload) = lock(&self.run_ctx.panic).take() {
            std::panic::resume_unwind(payload);
        }
        let mut w = Writer {
            // Room for a short reply without growing by steps.
            buf: Vec::with_capacity(64),
            proto: opts.caller_proto,
        };
        match result {
            Ok((true, v)) => lua_to_resp(&mut w, &v, script_resp, 0),
            Ok((false, Value::Table(t))) => {
                let msg: Vec<u8> = match t.get::<Value>("err") {
                    Ok(Value::String(s)) => reply::cstr(&s.as_bytes()).to_vec(),
                    Ok(v @ Value::Number(_)) | Ok(v @ Value::Integer(_)) => {
                        to_bytes(&self.lua, &v).unwrap_or_default()
                    }
                    _ => b"(null)".to_vec(),
                };
                let mut e = b"-".to_vec();
                e.extend_from_slice(&msg);
                let source = t
                    .get::<Value>("source")
                    .ok()
                    .and_then(|v| to_bytes(&self.lua, &v));
                let line = t
                    .get::<Value>("line")
                    .ok()
                    .and_then(|v| to_bytes(&self.lua, &v));
                if let (Some(src), Some(line)) = (source, line) {
                    e.extend_from_slice(format!(" script: {}, on ", opts.name).as_bytes());
                    e.extend_from_slice(&src);
                    e.push(b':');
                    e.extend_from_slice(&line);
                    e.push(b'.');
                }
                w.error(&e);
            }
            Ok((false, v)) => {
                let msg = to_bytes(&self.lua, &v).unwrap_or_else(|| b"execution failure".to_vec());
                let msg = String::from_utf8_lossy(&msg[..msg.len().min(100)]).into_owned();
                w.error(format!("Error running script {}, {msg}", opts.name).as_bytes());
            }
            Err(e) => w.error(
                format!(
                    "ERR Error running script {}, {}",
                    opts.name,
                    mlua_err_text(&e)
                )
                .as_bytes(),
            ),
        }
        self.restore_cap();
        w.buf
    }
}

/// `lua_tonumber`: numbers, and strings that read as numbers.
fn to_number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(s) => {
            let s = s.to_str().ok()?;
            let t = s.trim();
            if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                return u64::from_str_radix(h, 16).ok().map(|n| n as f64);
            }
            t.parse::<f64>().ok().filter(|_| !t.is_empty())
        }
        _ => None,
    }
}

/// `lua_tolstring`: strings, and numbers in Lua's `%.14g`.
fn to_bytes(lua: &Lua, v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Number(_) | Value::Integer(_) => lua
            .coerce_string(v.clone())
            .ok()
            .flatten()
            .map(|s| s.as_bytes().to_vec()),
        _ => None,
    }
}

/// Redis's `luaArgsToRedisArgv`: numbers as `%.17g`, strings as they are;
/// anything else is refused.
fn lua_args(_lua: &Lua, args: mlua::MultiValue) -> mlua::Result<Vec<Vec<u8>>> {
    if args.is_empty() {
        return Err(raise(
            b"Please specify at least one argument for this redis lib call",
        ));
    }
    let mut out = Vec::with_capacity(args.len());
    for a in args.iter() {
        match a {
            Value::Number(n) => out.push(fmt::fmt_g(*n, 17).into_bytes()),
            Value::Integer(n) => out.push(n.to_string().into_bytes()),
            Value::String(s) => out.push(s.as_bytes().to_vec()),
            _ => {
                return Err(raise(
                    b"Lua redis lib command arguments must be strings or integers",
                ))
            }
        }
    }
    Ok(out)
}

/// Locks `m`, through a poisoning (a host that panicked has been
/// replaced by then).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sets the `redis.*` functions that reach the running script's host
/// (`call`, `pcall`, `setresp`, `set_repl`, `log`, `acl_check_cmd`) in
/// the real `redis` table, once per VM.
fn install_api(lua: &Lua, redis: &Table, ctx: &Arc<RunCtx>) -> mlua::Result<()> {
    let _ = ctx.lua.set(lua.weak());
    raw::install(lua, redis, ctx)?;
    let c = ctx.clone();
    redis.raw_set(
        "setresp",
        lua.create_function(move |_, args: mlua::MultiValue| {
            if args.len() != 1 {
                return Err(raise(b"redis.setresp() requires one argument."));
            }
            let n = to_number(args.front()).map(fmt::c_i32).unwrap_or(0);
            if n != 2 && n != 3 {
                return Err(raise(b"RESP version must be 2 or 3."));
            }
            c.resp.store(n as u8, Ordering::Relaxed);
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    redis.raw_set(
        "set_repl",
        lua.create_function(move |_, args: mlua::MultiValue| {
            if args.len() != 1 {
                return Err(raise(b"redis.set_repl() requires two arguments."));
            }
            let n = to_number(args.back()).map(fmt::c_i32).unwrap_or(0);
            if n & !3 != 0 {
                return Err(raise(
                    b"Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            if let Ok(mut h) = c.host.try_lock() {
                if let Some(h) = h.as_mut() {
                    h.set_repl(n);
                }
            }
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    redis.raw_set(
        "log",
        lua.create_function(move |lua, args: mlua::MultiValue| {
            if args.len() < 2 {
                return Err(raise(b"redis.log() requires two arguments or more."));
            }
            let Some(level) = to_number(args.front()) else {
                return Err(raise(b"First argument must be a number (log level)."));
            };
            let level = fmt::c_i32(level);
            if !(0..=3).contains(&level) {
                return Err(raise(b"Invalid debug level."));
            }
            let mut msg = Vec::new();
            for (j, a) in args.iter().enumerate().skip(1) {
                if let Some(s) = to_bytes(lua, a) {
                    if j != 1 {
                        msg.push(b' ');
                    }
                    msg.extend_from_slice(&s);
                }
            }
            if let Ok(mut h) = c.host.try_lock() {
                if let Some(h) = h.as_mut() {
                    h.log(level, &msg);
                }
            }
            Ok(())
        })?,
    )?;
    let c = ctx.clone();
    redis.raw_set(
        "acl_check_cmd",
        lua.create_function(move |lua, args: mlua::MultiValue| {
            let argv = lua_args(lua, args)?;
            let verdict = match c.host.try_lock() {
                Ok(mut h) => h.as_mut().and_then(|h| h.acl_check(&argv)),
                Err(_) => None,
            };
            match verdict {
                Some(b) => Ok(b),
                None => Err(raise(b"Invalid command passed to redis.acl_check_cmd()")),
            }
        })?,
    )?;
    Ok(())
}

/// The count hook: notices the busy threshold and a pending kill.
fn hook(lua: &Lua, w: &Watch) -> mlua::Result<VmState> {
    // The hook stays installed between runs.
    if !w.running() {
        return Ok(VmState::Continue);
    }
    if w.kill.load(Ordering::Relaxed) {
        // From now on every line raises, so a pcall cannot keep the
        // script alive.
        let _ = lua.set_hook(HookTriggers::EVERY_LINE, |_, _| {
            Err(mlua::Error::external(Killed))
        });
        return Err(mlua::Error::external(Killed));
    }
    let threshold = w.threshold_ms.load(Ordering::Relaxed);
    if threshold > 0 && !w.busy.load(Ordering::Relaxed) && w.elapsed_ms() >= threshold {
        w.busy.store(true, Ordering::Relaxed);
    }
    // Once a second at most: the host's hook may pause (the server's
    // waits a millisecond for another thread to take its clients over),
    // which every count hook of a long script would otherwise repeat.
    if w.busy.load(Ordering::Relaxed) {
        let second = w.elapsed_ms() / 1000;
        if w.busy_hook_second.swap(second, Ordering::Relaxed) != second {
            if let Some(f) = w.busy_hook.get() {
                f();
            }
        }
    }
    Ok(VmState::Continue)
}
