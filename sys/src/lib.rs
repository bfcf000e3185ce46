//! The few things Rampart needs from the operating system that no
//! maintained crate offers without `unsafe` at the call site. The rest of
//! the workspace forbids unsafe code; here each unsafe item allows it for
//! itself, is small, and says why it is sound.
//!
//! - [`on_fatal_signals`]: a handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL
//!   and SIGABRT, so a crash anywhere (the vendored Lua included) leaves
//!   Redis's crash report in the log. `signal-hook` refuses these signals
//!   on purpose, and `sigaction` is unsafe in `libc`, `nix` and `rustix`.
//! - [`fault`]: a real invalid memory access, for DEBUG SEGFAULT.
//! - [`mallctl_int`], [`mallctl_str`]: jemalloc's `mallctl`, for DEBUG
//!   MALLCTL and MALLCTL-STR.
//! - [`run_when_idle`]: `SCHED_IDLE` for the calling thread (background
//!   work that must not take CPU from requests); `sched_setscheduler` is
//!   unsafe in `libc` and missing from `rustix`.
//! - [`send_now`]: a non-blocking `send` on a socket known by its
//!   descriptor, for replies written when a connection thread is about to
//!   sleep (Redis's `beforeSleep`), away from the task that owns the
//!   socket; the safe wrappers all want a borrowed socket object.

use std::sync::OnceLock;

/// What a fatal signal's handler learns, as Redis's `sigsegvHandler`
/// prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fatal {
    /// The signal number (11 for SIGSEGV).
    pub signal: i32,
    /// `si_code`: 0 (`SI_USER`) when another process sent it.
    pub code: i32,
    /// The faulting address of a SIGSEGV or SIGBUS.
    pub addr: Option<usize>,
    /// PID and UID of the sender when another process sent it.
    pub sender: Option<(i32, u32)>,
}

/// The signals Redis reports a crash for (`setupSignalHandlers`).
pub const FATAL_SIGNALS: [i32; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
];

static HANDLER: OnceLock<fn(&Fatal)> = OnceLock::new();

/// Calls `report` when the process receives a fatal signal, then ends it
/// by that signal with the default action (so a core is dumped where
/// core dumps are allowed). The first call's `report` is kept.
///
/// `report` runs inside a signal handler of a crashing process: like
/// Redis's report it does work that is not async-signal-safe, accepting
/// that a second fault there ends the process without the rest of it.
///
/// ```
/// fn report(f: &rampart_sys::Fatal) {
///     eprintln!("crashed by signal: {}, si_code: {}", f.signal, f.code);
/// }
/// rampart_sys::on_fatal_signals(report).unwrap();
/// ```
#[allow(unsafe_code)]
pub fn on_fatal_signals(report: fn(&Fatal)) -> std::io::Result<()> {
    let _ = HANDLER.set(report);
    for sig in FATAL_SIGNALS {
        // SAFETY: a zeroed sigaction is a valid value (empty mask, no
        // flags); the handler has the three-argument form SA_SIGINFO
        // promises. Not SA_ONSTACK (as Redis): the report needs more stack
        // than std's small alternate stacks hold, so it runs on the
        // thread's own stack; a stack overflow faults again there and
        // ends the process without a report.
        let rc = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = handle;
            act.sa_sigaction = f as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_RESETHAND;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[allow(unsafe_code)]
extern "C" fn handle(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO
    // handler; si_addr/si_pid/si_uid read the union members that the
    // signal and code say are filled in.
    let fatal = unsafe {
        let i = &*info;
        let code = i.si_code;
        let addr = (sig == libc::SIGSEGV || sig == libc::SIGBUS).then(|| i.si_addr() as usize);
        let sender = (code == libc::SI_USER).then(|| (i.si_pid(), i.si_uid()));
        Fatal {
            signal: sig,
            code,
            addr,
            sender,
        }
    };
    if let Some(report) = HANDLER.get() {
        report(&fatal);
    }
    // SA_RESETHAND already put the default action back. A fault the
    // kernel raised would strike again on return; a signal another
    // process sent would not, so send it again, as Redis's bugReportEnd.
    // SAFETY: raise with a valid signal number.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// A real invalid memory access, as Redis's DEBUG SEGFAULT makes one: a
/// write to a fresh read-only page, so the process gets SIGSEGV with
/// `si_code` SEGV_ACCERR (2) at that page's address.
///
/// ```no_run
/// rampart_sys::fault();
/// ```
#[allow(unsafe_code)]
pub fn fault() -> ! {
    // SAFETY: mmap with no address hint and valid flags returns a new
    // mapping or MAP_FAILED; the write to it is meant to fault (a
    // read-only page), and the fault ends the process before it returns.
    unsafe {
        let page = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if page != libc::MAP_FAILED {
            std::ptr::write_volatile(page.cast::<u8>(), b'x');
        }
        libc::raise(libc::SIGSEGV);
    }
    std::process::abort()
}

/// Moves the calling thread to Linux's `SCHED_IDLE` policy: it runs only
/// on a CPU no other thread wants, so background work (a metrics scrape)
/// never delays a request however busy the machine is. Unlike a nice
/// value, an idle thread waking up does not preempt a running one.
///
/// ```
/// // A thread of its own: the policy is per thread and stays.
/// std::thread::spawn(|| rampart_sys::run_when_idle().unwrap()).join().unwrap();
/// ```
#[allow(unsafe_code)]
pub fn run_when_idle() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread (Linux applies the policy per
    // thread); `param` is a valid sched_param that the call only reads,
    // and SCHED_IDLE requires priority 0.
    let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `strerror`'s text for the errno values `mallctl` returns.
fn errno_text(e: i32) -> String {
    std::io::Error::from_raw_os_error(e)
        .to_string()
        .split(" (os error")
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The name as C reads it: up to its first NUL.
fn c_name(name: &[u8]) -> std::ffi::CString {
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    // No NUL left in `name[..end]`, so this cannot fail.
    std::ffi::CString::new(&name[..end]).unwrap_or_default()
}

/// jemalloc controls whose value is a pointer (a string or a hook
/// table): jemalloc dereferences what is written to them, so an integer
/// written there would crash the process (it does in Redis).
fn pointer_valued(name: &[u8]) -> bool {
    let n = String::from_utf8_lossy(name);
    n.ends_with(".dss")
        || n.ends_with("extent_hooks")
        || n.starts_with("experimental.")
        || STRING_CTLS.contains(&n.as_ref())
        || n == "prof.dump"
        || n == "prof.prefix"
        || n == "thread.prof.name"
}

/// jemalloc 5.3's controls whose value is a `const char *`.
const STRING_CTLS: &[&str] = &[
    "version",
    "config.malloc_conf",
    "opt.dss",
    "opt.metadata_thp",
    "opt.percpu_arena",
    "opt.thp",
    "opt.prof_prefix",
    "opt.stats_print_opts",
    "opt.zero_realloc",
    "opt.junk",
    "thread.prof.name",
];

/// Whether `name` is a string-valued control (reading it as a string is
/// safe only then: jemalloc copies the value's bytes, and a pointer read
/// from an integer control would be garbage).
fn string_valued(name: &[u8]) -> bool {
    let n = String::from_utf8_lossy(name);
    STRING_CTLS.contains(&n.as_ref()) || (n.starts_with("arena.") && n.ends_with(".dss"))
}

/// Redis's `mallctl_int`: reads integer control `name` (trying 8, 4, 2
/// and 1 bytes, as its size is not known), writing `val` when given.
/// `Ok(Some(old))` is the value read, `Ok(None)` a write-only control
/// written, `Err` `strerror`'s text (`No such file or directory` for an
/// unknown name). Writing to a pointer-valued control is refused with
/// `Invalid argument` where Redis would crash.
///
/// ```
/// // Without jemalloc as the global allocator the controls still exist.
/// // `epoch` is a u64; 4-byte controls fail as they do in Redis.
/// assert_eq!(rampart_sys::mallctl_int(b"arenas.narenas", None).unwrap_err(), "Invalid argument");
/// assert!(rampart_sys::mallctl_int(b"epoch", Some(1)).unwrap().unwrap() > 0);
/// assert_eq!(rampart_sys::mallctl_int(b"no.such", None).unwrap_err(), "No such file or directory");
/// ```
pub fn mallctl_int(name: &[u8], val: Option<i64>) -> Result<Option<i64>, String> {
    if val.is_some() && pointer_valued(name) {
        return Err(errno_text(libc::EINVAL));
    }
    let cname = c_name(name);
    // One size, in and out, as Redis passes it: jemalloc shrinks it to
    // what it copied when the size is wrong, and the loop then halves
    // that. So, as in Redis, only 8-byte controls read (a 4-byte one ends
    // in EINVAL), and the answers match Redis's for every name.
    let mut sz = std::mem::size_of::<i64>();
    let mut newval = val.unwrap_or(0);
    let newp = if val.is_some() {
        (&mut newval as *mut i64).cast::<std::ffi::c_void>()
    } else {
        std::ptr::null_mut()
    };
    let mut old: i64 = 0;
    while sz > 0 {
        let newlen = if val.is_some() { sz } else { 0 };
        // SAFETY: `cname` is NUL-terminated; `old` has 8 bytes and `sz`
        // (at most 8) tells jemalloc how many it may write; `newp` is null
        // or points at 8 readable bytes of which `newlen` are read (low
        // bytes first on the little-endian targets Rampart builds for);
        // writes to controls that take a pointer are refused above.
        #[allow(unsafe_code)]
        let mut ret = unsafe {
            tikv_jemalloc_sys::mallctl(
                cname.as_ptr(),
                (&mut old as *mut i64).cast(),
                &mut sz,
                newp,
                newlen,
            )
        };
        if ret == 0 {
            return Ok(Some(old));
        }
        if ret == libc::EPERM && val.is_some() {
            // A write-only control: write without reading.
            // SAFETY: as above, with no old value asked for.
            #[allow(unsafe_code)]
            let w = unsafe {
                tikv_jemalloc_sys::mallctl(
                    cname.as_ptr(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    newp,
                    sz,
                )
            };
            if w == 0 {
                return Ok(None);
            }
            ret = w;
        }
        if ret == libc::EINVAL {
            sz /= 2;
            continue;
        }
        return Err(errno_text(ret));
    }
    Err(errno_text(libc::EINVAL))
}

/// Redis's `mallctl_string`: reads string control `name`, then writes
/// `val` when given (`VOID` writes nothing, for controls that take no
/// value). `Ok(Some(old))` is the value read; `Ok(None)` a write-only
/// control written. Reading a control that exists but is not a string is
/// `Invalid argument` (Redis would read an integer as a pointer).
///
/// ```
/// let v = rampart_sys::mallctl_str(b"version", None).unwrap().unwrap();
/// assert!(v.starts_with("5."));
/// ```
pub fn mallctl_str(name: &[u8], val: Option<&[u8]>) -> Result<Option<String>, String> {
    let cname = c_name(name);
    // SAFETY: a NUL-terminated name and no value read or written: only
    // whether the control exists (ENOENT) is learnt.
    #[allow(unsafe_code)]
    let exists = unsafe {
        tikv_jemalloc_sys::mallctl(
            cname.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if exists == libc::ENOENT {
        return Err(errno_text(exists));
    }
    if !string_valued(name) {
        return Err(errno_text(libc::EINVAL));
    }
    let mut old: *const std::ffi::c_char = std::ptr::null();
    let mut len = std::mem::size_of::<*const std::ffi::c_char>();
    // SAFETY: `name` is a string control, so jemalloc writes a `const
    // char *` (pointer-sized, as `len` says) into `old`.
    #[allow(unsafe_code)]
    let rret = unsafe {
        tikv_jemalloc_sys::mallctl(
            cname.as_ptr(),
            (&mut old as *mut *const std::ffi::c_char).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rret != 0 && !(rret == libc::EPERM && val.is_some()) {
        return Err(errno_text(rret));
    }
    let read = if rret == 0 && !old.is_null() {
        // SAFETY: jemalloc's string controls point at NUL-terminated
        // strings that live as long as the process (or the thread, for
        // thread.prof.name, which is copied at once here).
        #[allow(unsafe_code)]
        let s = unsafe { std::ffi::CStr::from_ptr(old) };
        Some(s.to_string_lossy().into_owned())
    } else if rret == 0 {
        Some(String::new())
    } else {
        None
    };
    let mut wret = 0;
    if let Some(v) = val {
        let cval = c_name(v);
        let p = cval.as_ptr();
        let void = v == b"VOID";
        // SAFETY: the new value is a pointer to a NUL-terminated string
        // that outlives the call (`cval`), or nothing for VOID.
        #[allow(unsafe_code)]
        let w = unsafe {
            tikv_jemalloc_sys::mallctl(
                cname.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                if void {
                    std::ptr::null_mut()
                } else {
                    (&p as *const *const std::ffi::c_char).cast_mut().cast()
                },
                if void {
                    0
                } else {
                    std::mem::size_of::<*const std::ffi::c_char>()
                },
            )
        };
        wret = w;
    }
    match read {
        Some(s) => Ok(Some(s)),
        None if wret != 0 => Err(errno_text(wret)),
        None => Ok(None),
    }
}

/// Sends what the socket `fd` takes now, without blocking and without
/// SIGPIPE: `WouldBlock` when it takes nothing.
///
/// The caller answers for `fd` being the socket it means: a descriptor
/// closed and reused meanwhile would receive the bytes. (An invalid one
/// only fails, with EBADF.)
///
/// ```
/// use std::io::Read;
/// use std::os::fd::AsRawFd;
/// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
/// let (mut b, _) = l.accept().unwrap();
/// assert_eq!(rampart_sys::send_now(a.as_raw_fd(), b"+OK\r\n").unwrap(), 5);
/// let mut got = [0u8; 5];
/// b.read_exact(&mut got).unwrap();
/// assert_eq!(&got, b"+OK\r\n");
/// assert!(rampart_sys::send_now(-1, b"x").is_err());
/// ```
#[allow(unsafe_code)]
pub fn send_now(fd: i32, data: &[u8]) -> std::io::Result<usize> {
    // SAFETY: `data` is a valid, initialised slice for the duration of the
    // call, which only reads `data.len()` bytes from it; an invalid `fd`
    // makes the call fail, not misbehave.
    let n = unsafe {
        libc::send(
            fd,
            data.as_ptr().cast(),
            data.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// The wall clock in microseconds since the Unix epoch, read as Redis's
/// `ustime()`: one `clock_gettime` (vDSO) and integer arithmetic. Every
/// command reads it twice; `SystemTime::now().duration_since(UNIX_EPOCH)`
/// added a checked subtraction and 128-bit arithmetic to each read.
///
/// ```
/// let std_us = std::time::SystemTime::now()
///     .duration_since(std::time::UNIX_EPOCH)
///     .unwrap()
///     .as_micros() as u64;
/// let us = rampart_sys::unix_us();
/// assert!(us >= std_us && us - std_us < 60_000_000);
/// ```
#[allow(unsafe_code)]
pub fn unix_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME always
    // exists, so the call cannot fail (and on failure `ts` stays 0).
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec.max(0) as u64) * 1_000_000 + (ts.tv_nsec.max(0) as u64) / 1_000
}

#[cfg(test)]
mod tests {
    #[test]
    fn fatal_signals_are_redis_s() {
        assert_eq!(super::FATAL_SIGNALS, [11, 7, 8, 4, 6]);
    }
}
