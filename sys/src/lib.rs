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

#[cfg(test)]
mod tests {
    #[test]
    fn fatal_signals_are_redis_s() {
        assert_eq!(super::FATAL_SIGNALS, [11, 7, 8, 4, 6]);
    }
}
