//! `redis.call` and `redis.pcall` as C functions on Lua's own API, the
//! one place of the crate with `unsafe` code.
//!
//! Why: through mlua's safe API every argument of a `redis.call` became a
//! registry reference (moved to mlua's reference thread and back, then
//! freed), and every string or table of its reply another: about 3,000
//! instructions a call spent on bindings, where Redis's
//! `luaRedisGenericCommand` reads its arguments off the Lua stack and
//! pushes the reply onto it. These two functions do as Redis does; the
//! command itself still runs through [`Host::call`](crate::Host::call).
//!
//! Why it is sound:
//! - Lua raises errors with `longjmp`, which must not cross a Rust frame
//!   that owns something to drop. [`command`] (a C function) owns nothing;
//!   the work, and every value it owns, is in [`run`], which returns
//!   before [`command`] raises. Within [`run`], the only Lua calls that
//!   could raise are allocations, and each of its two parts (reading the
//!   arguments, pushing the reply) runs either with far more room under
//!   the VM's memory cap than it can allocate ([`make_room`]: by Lua's
//!   own count of its bytes, which is what mlua's allocator counts too)
//!   or with the cap lifted (as mlua's own calls assume when they skip
//!   their protected mode), so they cannot fail short of the process
//!   running out of memory, which aborts anyway. (One way remains: a step of the
//!   collector that an allocation runs can call a `__gc` metamethod a
//!   script set with `newproxy`, and an error there propagates from the
//!   allocation. mlua's own unprotected calls, which the old bindings
//!   used, are exposed the same way. Here it can only skip the drop of
//!   the reply's bytes, a leak, and leave the cap lifted until the run's
//!   end, where the engine sets it again.)
//! - [`start`], the C function that builds KEYS and ARGV and calls the
//!   script, runs inside mlua's protected call and owns nothing either:
//!   an error of the script (or of an allocation) unwinds through it to
//!   that call. Its light userdata points to a [`Start`] on the frame of
//!   the engine's call, which waits for it.
//! - The upvalue is a pointer to the engine's [`RunCtx`], whose `Arc`
//!   [`install`] leaks one count of, so it outlives the VM.
//! - Stack room: a C function starts with `LUA_MINSTACK` (20) free slots;
//!   [`run`] uses at most 3 of them outside the reply, and the reply's
//!   conversion checks for room at each level of nesting.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mlua::{ffi, Lua, Table};
use smallvec::SmallVec;

use crate::reply::error_text;
use crate::{fmt, RunCtx};

/// Sets `redis.call` and `redis.pcall` in `redis`, reaching `ctx`.
pub(crate) fn install(lua: &Lua, redis: &Table, ctx: &Arc<RunCtx>) -> mlua::Result<()> {
    // One count leaked: the pointer must stay valid as long as the VM
    // holds the functions (the engine's own count goes with it, and
    // field order is not a contract worth a use-after-free).
    let ptr = Arc::into_raw(ctx.clone()) as *mut c_void;
    for (name, f) in [
        ("call", call as ffi::lua_CFunction),
        ("pcall", pcall as ffi::lua_CFunction),
    ] {
        // SAFETY: pushes a light userdata and makes a C closure of it, 2
        // slots of the 3 `exec_raw` checked for; the closure is its result.
        let func: mlua::Function = unsafe {
            lua.exec_raw((), |state| {
                ffi::lua_pushlightuserdata(state, ptr);
                ffi::lua_pushcclosure(state, f, 1);
            })?
        };
        redis.raw_set(name, func)?;
    }
    Ok(())
}

/// What [`start`] reads through its light userdata: a run's KEYS and
/// ARGV, and what to do once they are built, before the script runs.
pub(crate) struct Start<'a> {
    /// KEYS (or the function's `keys`).
    pub keys: &'a [&'a [u8]],
    /// ARGV (or the function's `args`).
    pub args: &'a [&'a [u8]],
    /// EVAL (globals) rather than FCALL (arguments).
    pub eval: bool,
    /// Puts the memory cap back (lifted while the tables are built).
    pub before_run: &'a dyn Fn(),
}

/// The C function that starts a run: called (protected, by mlua) with a
/// light userdata to a [`Start`] and the prelude's `run`, the script's
/// function and the error handler; builds KEYS and ARGV on the stack
/// and calls `run` with them, returning its first two results. Through
/// mlua's API, each table cost a registry reference made and dropped and
/// each item a conversion: 3,000 instructions for a two-key FCALL, where
/// Redis's `luaCreateArray` pushes onto the stack as this does.
pub(crate) fn starter(lua: &Lua) -> mlua::Result<mlua::Function> {
    // SAFETY: pushes one C function, 1 slot of the 3 `exec_raw` checked
    // for; it is the result.
    unsafe {
        lua.exec_raw((), |state| {
            ffi::lua_pushcfunction(state, start);
        })
    }
}

/// Calls `starter` (from [`starter`]) for `start`, with the prelude's
/// `run`, the script's function and the error handler.
pub(crate) fn start_run(
    starter: &mlua::Function,
    start: &Start<'_>,
    run: &mlua::Function,
    func: &mlua::Function,
    handler: &mlua::Function,
) -> mlua::Result<(bool, mlua::Value)> {
    let ptr = start as *const Start<'_> as *mut c_void;
    starter.call((mlua::LightUserData(ptr), run, func, handler))
}

unsafe extern "C-unwind" fn start(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: argument 1 is the pointer `Engine::call` passed, to a
    // `Start` that outlives this call (it is on the caller's frame, which
    // waits for the protected call to return). This frame owns nothing,
    // so an error raised by `lua_call` (or by an allocation) may unwind
    // through it. A C function starts with LUA_MINSTACK (20) free slots:
    // 4 arguments, then 3 more values and one item at a time.
    unsafe {
        let spec = &*(ffi::lua_touserdata(state, 1) as *const Start);
        ffi::lua_remove(state, 1);
        push_array(state, spec.keys);
        push_array(state, spec.args);
        ffi::lua_pushboolean(state, spec.eval as c_int);
        // A panic must not unwind through Lua's frames; if putting the
        // cap back failed that way, the run goes on uncapped.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(spec.before_run));
        ffi::lua_call(state, 5, 2);
    }
    2
}

/// Pushes a fresh array of `items` as strings (Redis's `luaCreateArray`).
///
/// # Safety
/// `state` must be running a C function with two free slots.
unsafe fn push_array(state: *mut ffi::lua_State, items: &[&[u8]]) {
    let n = c_int::try_from(items.len()).unwrap_or(c_int::MAX);
    // SAFETY: the caller has the slots; a fresh table, raw sets.
    unsafe {
        ffi::lua_createtable(state, n, 0);
        for (i, item) in (1..=n).zip(items) {
            push_bytes(state, item);
            ffi::lua_rawseti_(state, -2, i);
        }
    }
}

/// `redis.call`: raises the error table of a failed command.
unsafe extern "C-unwind" fn call(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: see the module's header.
    unsafe { command(state, true) }
}

/// `redis.pcall`: returns the error table of a failed command.
unsafe extern "C-unwind" fn pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: see the module's header.
    unsafe { command(state, false) }
}

/// Runs the command and leaves its reply on the stack, raising it if it
/// is an error and `raise`. Owns nothing across `lua_error`.
unsafe fn command(state: *mut ffi::lua_State, raise: bool) -> c_int {
    // SAFETY: upvalue 1 is the pointer `install` set, to a live RunCtx.
    let ctx = unsafe { &*(ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *const RunCtx) };
    // SAFETY: `state` is the running Lua state, in a C function.
    let is_err = unsafe { run(state, ctx, raise) };
    if is_err && raise {
        // SAFETY: the error table is on top; no frame of ours owns
        // anything (`run` returned).
        unsafe { ffi::lua_error(state) }
    }
    1
}

/// What [`run`] pushes as the reply.
enum Outcome {
    /// The command's reply (RESP bytes, in the context's reply buffer).
    Reply,
    /// An error table `{err = text}`, with `ignore_error_stats_update`.
    Error(Vec<u8>, bool),
    /// Not an error, but a table with `err` (Redis's recursion check).
    Table(Vec<u8>),
}

/// A reply buffer grown past this is not kept for the next call.
const KEEP_REPLY: usize = 64 * 1024;

/// Reads the arguments, runs the command and pushes one value: the reply,
/// or an error table. True when it is an error `redis.call` raises.
unsafe fn run(state: *mut ffi::lua_State, ctx: &RunCtx, raise: bool) -> bool {
    // SAFETY: counting the arguments of the running function.
    let argc = unsafe { ffi::lua_gettop(state) }.max(0) as usize;
    // SAFETY: the state is the running one.
    let mut lifted = unsafe { make_room(state, ctx, argc.saturating_mul(ARG_ROOM), None) };
    // Taken, not borrowed: a `redis.call` made from a `__gc` while the
    // reply is pushed finds an empty one of its own.
    let mut buf = std::mem::take(&mut *crate::lock(&ctx.reply));
    buf.clear();
    let mut nums = Vec::new();
    // SAFETY: reading the stack of the running function; the arguments
    // stay on it (and so alive) until `lua_settop` below, after the
    // command ran.
    let outcome = match unsafe { args(state, &mut nums) } {
        Err(msg) => Outcome::Error(error_text(msg), raise),
        Ok(argv) => {
            let mut guard = match ctx.host.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            match guard.as_mut().and_then(|g| g.as_mut()) {
                Some(h) => {
                    let resp = ctx.resp.load(Ordering::Relaxed);
                    // A panic must not unwind through Lua's C frames: it
                    // is kept, the script stopped with an error, and the
                    // engine resumes it once the run is over (as mlua's
                    // own callbacks do).
                    match std::panic::catch_unwind(AssertUnwindSafe(|| {
                        h.call(&argv, resp, &mut buf)
                    })) {
                        Ok(Ok(())) => Outcome::Reply,
                        Ok(Err(text)) => Outcome::Error(error_text(&text), true),
                        Err(payload) => {
                            *crate::lock(&ctx.panic) = Some(payload);
                            Outcome::Error(b"ERR a command panicked".to_vec(), true)
                        }
                    }
                }
                None => Outcome::Table(error_text(RECURSIVE)),
            }
        }
    };
    // The stack holds only the arguments: drop them, the reply is all
    // that is returned.
    // SAFETY: shrinking the stack of the running function.
    unsafe { ffi::lua_settop(state, 0) };
    let pushed = match &outcome {
        Outcome::Reply => buf.len(),
        Outcome::Error(t, _) | Outcome::Table(t) => t.len(),
    };
    // SAFETY: the state is the running one.
    lifted = unsafe { make_room(state, ctx, pushed.saturating_mul(REPLY_ROOM), lifted) };
    let is_err = match outcome {
        Outcome::Reply => {
            let mut p = Pusher {
                state,
                buf: &buf,
                pos: 0,
            };
            // SAFETY: the stack is empty, with LUA_MINSTACK slots free.
            match unsafe { p.value(0) } {
                // An error reply is an error table: raised by redis.call.
                Ok(()) => buf.first() == Some(&b'-'),
                Err(()) => {
                    // SAFETY: as above; back to empty, then one table.
                    unsafe {
                        ffi::lua_settop(state, 0);
                        push_error(state, b"ERR malformed reply", true);
                    }
                    true
                }
            }
        }
        Outcome::Error(text, ignore) => {
            // SAFETY: the stack is empty, with room for the table.
            unsafe { push_error(state, &text, ignore) };
            true
        }
        Outcome::Table(text) => {
            // SAFETY: the stack is empty, with room for the table.
            unsafe { push_error(state, &text, false) };
            false
        }
    };
    if let Some(cap) = lifted {
        set_cap(ctx, cap);
    }
    if buf.capacity() <= KEEP_REPLY {
        *crate::lock(&ctx.reply) = buf;
    }
    is_err
}

/// Bytes of room per argument a command's arguments may take (a number
/// read as a string becomes one: a short string and its header).
const ARG_ROOM: usize = 64;

/// Bytes of room per byte of a reply (or error) pushed: a RESP element
/// takes at least 4 bytes, and becomes a Lua value of 16 bytes in a table
/// whose array may be reallocated (old and new alive at once), or a
/// string with its header.
const REPLY_ROOM: usize = 32;

/// Lifts the memory cap unless the VM has `need` bytes (and 64 KiB more)
/// of room under it, by its own count; `lifted` is the cap an earlier
/// call lifted. Returns the cap to put back when done, if lifted. Lifting
/// takes the VM's lock and sets mlua's limit: done twice per `redis.call`
/// it was 4% of a three-call script's time (perf, FCALL -P16), where
/// looking at the room is two reads of the collector's count.
///
/// # Safety
/// `state` must be the running Lua state.
unsafe fn make_room(
    state: *mut ffi::lua_State,
    ctx: &RunCtx,
    need: usize,
    lifted: Option<usize>,
) -> Option<usize> {
    if lifted.is_some() {
        return lifted;
    }
    let cap = ctx.cap.load(Ordering::Relaxed);
    if cap == 0 {
        return None;
    }
    // SAFETY: reading the collector's count of the running state.
    let used = unsafe {
        (ffi::lua_gc(state, ffi::LUA_GCCOUNT, 0).max(0) as usize) * 1024
            + ffi::lua_gc(state, ffi::LUA_GCCOUNTB, 0).max(0) as usize
    };
    if used.saturating_add(need).saturating_add(64 * 1024) < cap {
        return None;
    }
    match set_cap(ctx, 0) {
        0 => None,
        before => Some(before),
    }
}

/// Sets the VM's memory cap (0: none), returning the one before. The VM
/// handle is dropped at once: nothing of it stays in [`run`]'s frame
/// while it pushes.
fn set_cap(ctx: &RunCtx, cap: usize) -> usize {
    match ctx.lua.get().and_then(|w| w.try_upgrade()) {
        Some(lua) => lua.set_memory_limit(cap).unwrap_or(0),
        None => 0,
    }
}

const RECURSIVE: &[u8] =
    b"luaRedisGenericCommand() recursive call detected. Are you doing funny stuff with Lua debug hooks?";

/// Redis's `luaArgsToRedisArgv`: strings as they are, numbers as `%.17g`
/// (written into `nums`); anything else is refused with the message of
/// the error. Strings are borrowed off the stack, not copied.
///
/// # Safety
/// `state` must be the running state; the slices are valid while its
/// arguments stay on the stack.
unsafe fn args<'a>(
    state: *mut ffi::lua_State,
    nums: &'a mut Vec<u8>,
) -> Result<SmallVec<[&'a [u8]; 8]>, &'static [u8]> {
    /// An argument: a string on the stack, or a number's text in `nums`.
    enum Arg<'s> {
        Text(&'s [u8]),
        Number(std::ops::Range<usize>),
    }
    // SAFETY: reading the running function's own arguments.
    let n = unsafe { ffi::lua_gettop(state) };
    if n == 0 {
        return Err(b"Please specify at least one argument for this redis lib call");
    }
    let mut parts: SmallVec<[Arg<'a>; 8]> = SmallVec::with_capacity(n as usize);
    for i in 1..=n {
        // SAFETY: `i` is within the arguments.
        match unsafe { ffi::lua_type(state, i) } {
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                // SAFETY: a string value: a pointer to `len` bytes that
                // live while it is on the stack (the caller's contract).
                let bytes = unsafe {
                    let p = ffi::lua_tolstring(state, i, &mut len) as *const u8;
                    std::slice::from_raw_parts(p, len)
                };
                parts.push(Arg::Text(bytes));
            }
            ffi::LUA_TNUMBER => {
                // SAFETY: a number value.
                let d = unsafe { ffi::lua_tonumber(state, i) };
                let start = nums.len();
                nums.extend_from_slice(fmt::fmt_g(d, 17).as_bytes());
                parts.push(Arg::Number(start..nums.len()));
            }
            _ => return Err(b"Lua redis lib command arguments must be strings or integers"),
        }
    }
    let nums: &'a [u8] = nums;
    Ok(parts
        .into_iter()
        .map(|a| match a {
            Arg::Text(t) => t,
            Arg::Number(r) => &nums[r],
        })
        .collect())
}

/// Pushes Redis's error table `{err = text}` (and
/// `ignore_error_stats_update = true`), needing 3 free slots.
unsafe fn push_error(state: *mut ffi::lua_State, text: &[u8], ignore: bool) {
    // SAFETY: the caller has the slots; fresh table, raw sets.
    unsafe {
        ffi::lua_createtable(state, 0, 2);
        push_bytes(state, b"err");
        push_bytes(state, text);
        ffi::lua_rawset(state, -3);
        if ignore {
            push_bytes(state, b"ignore_error_stats_update");
            ffi::lua_pushboolean(state, 1);
            ffi::lua_rawset(state, -3);
        }
    }
}

unsafe fn push_bytes(state: *mut ffi::lua_State, s: &[u8]) {
    // SAFETY: Lua copies the bytes; a zero length with any pointer is fine
    // for lua_pushlstring (it reads nothing).
    unsafe { ffi::lua_pushlstring_(state, s.as_ptr() as *const c_char, s.len()) }
}

/// Pushes a RESP reply (RESP2 or RESP3) as Lua values, as Redis's
/// `redisProtocolToLuaType`.
struct Pusher<'a> {
    state: *mut ffi::lua_State,
    buf: &'a [u8],
    pos: usize,
}

/// Redis's replies nest a few levels; a bound keeps the stack checks simple.
const MAX_DEPTH: usize = 1000;

impl<'a> Pusher<'a> {
    fn line(&mut self) -> Result<&'a [u8], ()> {
        let rest = self.buf.get(self.pos..).ok_or(())?;
        let end = rest.windows(2).position(|w| w == b"\r\n").ok_or(())?;
        self.pos += end + 2;
        Ok(&rest[..end])
    }

    fn int(&mut self) -> Result<i64, ()> {
        let l = self.line()?;
        std::str::from_utf8(l)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(())
    }

    fn bulk(&mut self, len: i64) -> Result<&'a [u8], ()> {
        let len = usize::try_from(len).map_err(|_| ())?;
        let s = self.buf.get(self.pos..self.pos + len).ok_or(())?;
        self.pos += len + 2;
        Ok(s)
    }

    /// Pushes one value (exactly one on `Ok`; on `Err` the stack may hold
    /// partial work, which the caller drops).
    unsafe fn value(&mut self, depth: usize) -> Result<(), ()> {
        let st = self.state;
        // Room for a table, a key and a value, and what a table wrapper
        // needs on top.
        // SAFETY: lua_checkstack only grows the stack (or says no).
        if depth > MAX_DEPTH || unsafe { ffi::lua_checkstack(st, 6) } == 0 {
            return Err(());
        }
        let kind = *self.buf.get(self.pos).ok_or(())?;
        self.pos += 1;
        // SAFETY: every push below is onto a stack just checked for room
        // (a nested value checks again); tables are fresh and set raw.
        unsafe {
            match kind {
                b'+' => {
                    let s = self.line()?;
                    ffi::lua_createtable(st, 0, 1);
                    push_bytes(st, b"ok");
                    push_bytes(st, s);
                    ffi::lua_rawset(st, -3);
                }
                b'-' => {
                    let mut s = b"-".to_vec();
                    s.extend_from_slice(self.line()?);
                    push_error(st, &error_text(&s), true);
                }
                b':' => {
                    let n = self.int()?;
                    ffi::lua_pushnumber(st, n as f64);
                }
                b'$' => {
                    let n = self.int()?;
                    if n < 0 {
                        ffi::lua_pushboolean(st, 0);
                    } else {
                        let s = self.bulk(n)?;
                        push_bytes(st, s);
                    }
                }
                b'*' | b'~' | b'%' | b'>' | b'|' => {
                    let n = self.int()?;
                    if n < 0 {
                        ffi::lua_pushboolean(st, 0);
                        return Ok(());
                    }
                    match kind {
                        b'*' | b'>' => {
                            ffi::lua_createtable(st, 0, 0);
                            for i in 0..n {
                                self.value(depth + 1)?;
                                let i = c_int::try_from(i + 1).map_err(|_| ())?;
                                ffi::lua_rawseti_(st, -2, i);
                            }
                        }
                        b'~' => {
                            ffi::lua_createtable(st, 0, 0);
                            for _ in 0..n {
                                self.value(depth + 1)?;
                                ffi::lua_pushboolean(st, 1);
                                set_field(st);
                            }
                            wrap(st, b"set");
                        }
                        b'%' => {
                            ffi::lua_createtable(st, 0, 0);
                            for _ in 0..n {
                                self.value(depth + 1)?;
                                self.value(depth + 1)?;
                                set_field(st);
                            }
                            wrap(st, b"map");
                        }
                        _ => {
                            // Attributes are not shown to scripts: skip them
                            // and push the reply they annotate.
                            for _ in 0..n * 2 {
                                self.value(depth + 1)?;
                                ffi::lua_settop(st, -2);
                            }
                            self.value(depth + 1)?;
                        }
                    }
                }
                b'_' => {
                    self.line()?;
                    ffi::lua_pushnil(st);
                }
                b'#' => {
                    let t = self.line()? == b"t";
                    ffi::lua_pushboolean(st, t as c_int);
                }
                b',' => {
                    let d = crate::reply::parse_double(self.line()?).ok_or(())?;
                    ffi::lua_pushnumber(st, d);
                    wrap(st, b"double");
                }
                b'(' => {
                    let s = self.line()?;
                    push_bytes(st, s);
                    wrap(st, b"big_number");
                }
                b'=' => {
                    let n = self.int()?;
                    let s = self.bulk(n)?;
                    let (fmt, body) = if s.len() >= 4 {
                        (&s[..3], &s[4..])
                    } else {
                        (s, &[][..])
                    };
                    ffi::lua_createtable(st, 0, 2);
                    push_bytes(st, b"string");
                    push_bytes(st, body);
                    ffi::lua_rawset(st, -3);
                    push_bytes(st, b"format");
                    push_bytes(st, fmt);
                    ffi::lua_rawset(st, -3);
                    wrap(st, b"verbatim_string");
                }
                _ => return Err(()),
            }
        }
        Ok(())
    }
}

/// `t[k] = v` for the table under a key and a value on top, dropping a
/// pair whose key is nil (RESP3 nulls could be one; `lua_rawset` would
/// fail on it). Pops both.
unsafe fn set_field(st: *mut ffi::lua_State) {
    // SAFETY: the caller pushed the table, the key and the value.
    unsafe {
        if ffi::lua_type(st, -2) == ffi::LUA_TNIL {
            ffi::lua_settop(st, -3);
        } else {
            ffi::lua_rawset(st, -3);
        }
    }
}

/// Replaces the value on top with `{[field] = value}`.
unsafe fn wrap(st: *mut ffi::lua_State, field: &[u8]) {
    // SAFETY: the value is on top and the caller checked for 3 more
    // slots: table, key, then the value copied up.
    unsafe {
        ffi::lua_createtable(st, 0, 1);
        push_bytes(st, field);
        ffi::lua_pushvalue(st, -3);
        ffi::lua_rawset(st, -3);
        // Move the table down over the value.
        ffi::lua_replace(st, -2);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Engine, Host, RunOptions};

    /// A host whose every command answers `reply`, or panics when it is
    /// empty.
    struct Fixed(&'static [u8]);

    impl Host for Fixed {
        fn call(&mut self, _: &[&[u8]], _: u8, reply: &mut Vec<u8>) -> Result<(), Vec<u8>> {
            assert!(!self.0.is_empty(), "a command panicked");
            reply.extend_from_slice(self.0);
            Ok(())
        }
        fn log(&mut self, _: i32, _: &[u8]) {}
        fn set_repl(&mut self, _: i32) {}
        fn acl_check(&mut self, _: &[Vec<u8>]) -> Option<bool> {
            Some(true)
        }
    }

    fn run(e: &mut Engine, body: &[u8], reply: &'static [u8]) -> Vec<u8> {
        let (sha, _) = e.load(body).unwrap();
        let opts = RunOptions {
            eval: true,
            caller_proto: 2,
            name: &sha,
            from_master: false,
        };
        let script = e.script(&sha).unwrap();
        e.eval_script(Box::new(Fixed(reply)), script, &[], &[], &opts)
    }

    #[test]
    fn replies_come_back_as_they_went() {
        let mut e = Engine::new(Default::default()).unwrap();
        let body = b"return redis.call('x')";
        for reply in [
            &b"$5\r\nhello\r\n"[..],
            b"$0\r\n\r\n",
            b":-42\r\n",
            b"+OK\r\n",
            b"*3\r\n$1\r\na\r\n*1\r\n:1\r\n+QUEUED\r\n",
            b"*0\r\n",
        ] {
            let r = run(&mut e, body, reply);
            assert_eq!(r, reply, "{}", String::from_utf8_lossy(reply));
        }
        // Nulls become false, which a RESP2 caller gets as a null.
        assert_eq!(run(&mut e, body, b"$-1\r\n"), b"$-1\r\n");
        assert_eq!(run(&mut e, body, b"*-1\r\n"), b"$-1\r\n");
        // RESP3 shapes reach a RESP2 caller flattened, as in Redis.
        assert_eq!(
            run(&mut e, body, b"%1\r\n$1\r\nk\r\n$1\r\nv\r\n"),
            b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n"
        );
        assert_eq!(run(&mut e, body, b",1.5\r\n"), b"$3\r\n1.5\r\n");
        assert_eq!(run(&mut e, body, b"#t\r\n"), b":1\r\n");
    }

    #[test]
    fn errors_are_raised_by_call_and_returned_by_pcall() {
        let mut e = Engine::new(Default::default()).unwrap();
        let r = run(&mut e, b"return redis.call('x')", b"-WRONGTYPE bad\r\n");
        assert!(
            r.starts_with(b"-WRONGTYPE bad script: "),
            "{}",
            String::from_utf8_lossy(&r)
        );
        let r = run(&mut e, b"return redis.pcall('x')", b"-WRONGTYPE bad\r\n");
        assert_eq!(r, b"-WRONGTYPE bad\r\n");
        let r = run(&mut e, b"return redis.pcall('x', {})", b"+OK\r\n");
        assert_eq!(
            r,
            b"-ERR Lua redis lib command arguments must be strings or integers\r\n"
        );
    }

    #[test]
    fn a_panicking_command_panics_the_run_not_the_vm() {
        let mut e = Engine::new(Default::default()).unwrap();
        let body = b"return redis.pcall('x')";
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut e, body, b"")));
        assert!(r.is_err());
        assert_eq!(run(&mut e, body, b"+OK\r\n"), b"+OK\r\n");
    }
}
