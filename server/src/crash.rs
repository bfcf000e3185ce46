//! Crash reports: what Redis writes to its log when it dies, so operators
//! and tools that search a log for `REDIS BUG REPORT` or `crashed by
//! signal` find one. A panic anywhere in the server writes the report
//! before the process aborts (the release profile aborts on panic), and
//! DEBUG PANIC / DEBUG SEGFAULT end the process the way Redis's do. A
//! fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT; from the
//! vendored Lua, say, or sent by another process) writes Redis's
//! `crashed by signal` report through `rampart-sys`'s handler, then ends
//! the process by that signal.
//!
//! Unlike Redis's, the report never holds the current client's arguments:
//! they are keys and values, which Rampart never writes to a log.

use std::backtrace::Backtrace;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::REDIS_VERSION;

const START: &str = "=== REDIS BUG REPORT START: Cut & paste starting from here ===";
const END: &str = "=== REDIS BUG REPORT END. Make sure to include from START to END. ===";

/// `use-exit-on-panic yes`: end with exit code 1 instead of abort (Redis
/// offers it for tools that treat a signal as a different failure).
static EXIT_ON_PANIC: AtomicBool = AtomicBool::new(false);

/// `crash-log-enabled`: whether a fatal signal writes the report.
static CRASH_LOG: AtomicBool = AtomicBool::new(true);

/// Set once a report is written: the abort that follows a panic's report
/// must not write a second one from the SIGABRT handler (Redis removes
/// its handlers before that abort).
static REPORTED: AtomicBool = AtomicBool::new(false);

/// Follows the configuration (at startup and after CONFIG SET).
pub fn configure(config: &crate::config::Config) {
    EXIT_ON_PANIC.store(config.flag("use-exit-on-panic"), Ordering::Relaxed);
    CRASH_LOG.store(config.flag("crash-log-enabled"), Ordering::Relaxed);
}

fn end() -> ! {
    if EXIT_ON_PANIC.load(Ordering::Relaxed) {
        std::process::exit(1)
    }
    std::process::abort()
}

/// Installs the panic hook and the fatal-signal handler that write the
/// report (call once logging is set up).
pub fn install() {
    if let Err(e) = rampart_sys::on_fatal_signals(fatal) {
        tracing::warn!("Fatal signal handlers not installed, a crash will leave no report: {e}");
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string());
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        guru(&msg, &at);
        end();
    }));
}

/// Redis's `serverPanic` report.
fn guru(msg: &str, at: &str) {
    report(&[
        "------------------------------------------------".to_string(),
        "!!! Software Failure. Press left mouse button to continue".to_string(),
        format!("Guru Meditation: {msg} #{at}"),
    ]);
}

/// DEBUG PANIC: the report, then abort (or exit 1 with
/// `use-exit-on-panic yes`), as Redis's `serverPanic`; in every build, a
/// panic anywhere ends the process the same way.
#[track_caller]
pub fn panic(msg: &str) -> ! {
    let at = std::panic::Location::caller();
    guru(msg, &format!("{}:{}", at.file(), at.line()));
    end()
}

/// DEBUG ASSERT: Redis's `serverAssertWithInfo` report (`context` are
/// the `=== ASSERTION FAILED … CONTEXT ===` lines that come first), then
/// the end a panic has. `estr` is the condition that did not hold.
///
/// ```no_run
/// rampart_server::crash::assert_failed(&[], "1 == 2");
/// ```
#[track_caller]
pub fn assert_failed(context: &[String], estr: &str) -> ! {
    let at = std::panic::Location::caller();
    let mut head = context.to_vec();
    head.push("=== ASSERTION FAILED ===".to_string());
    head.push(format!(
        "==> {}:{} '{estr}' is not true",
        at.file(),
        at.line()
    ));
    report(&head);
    end()
}

/// DEBUG OOM, and an allocation the allocator refused: Redis's
/// `redisOutOfMemoryHandler`, its log line and then its panic report.
///
/// ```no_run
/// rampart_server::crash::out_of_memory(usize::MAX / 2);
/// ```
#[track_caller]
pub fn out_of_memory(bytes: usize) -> ! {
    tracing::warn!("Out Of Memory allocating {bytes} bytes!");
    let at = std::panic::Location::caller();
    guru(
        &format!("Redis aborting for OUT OF MEMORY. Allocating {bytes} bytes!"),
        &format!("{}:{}", at.file(), at.line()),
    );
    end()
}

/// Redis's `sigsegvHandler` report.
fn fatal(f: &rampart_sys::Fatal) {
    if !CRASH_LOG.load(Ordering::Relaxed) || REPORTED.load(Ordering::Relaxed) {
        return;
    }
    let mut head = vec![format!(
        "Redis {REDIS_VERSION} crashed by signal: {}, si_code: {}",
        f.signal, f.code
    )];
    match f.addr {
        // As C's %p prints it.
        Some(0) => head.push("Accessing address: (nil)".to_string()),
        Some(a) => head.push(format!("Accessing address: {a:#x}")),
        None => {}
    }
    if let Some((pid, uid)) = f.sender {
        head.push(format!("Killed by PID: {pid}, UID: {uid}"));
    }
    report(&head);
}

/// Writes a bug report whose first lines are `head`, with the stack.
fn report(head: &[String]) {
    if REPORTED.swap(true, Ordering::Relaxed) {
        return;
    }
    tracing::error!("{START}");
    for l in head {
        tracing::error!("{l}");
    }
    let thread = std::thread::current();
    tracing::error!(
        "------ STACK TRACE ------ (thread {})",
        thread.name().unwrap_or("unnamed")
    );
    for l in Backtrace::force_capture().to_string().lines() {
        tracing::error!("{l}");
    }
    tracing::error!(
        "------ INFO ------ Rampart {} (Redis {REDIS_VERSION} compatible), pid {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id()
    );
    tracing::error!("{END}");
}

/// DEBUG SEGFAULT: Redis's crash by SIGSEGV, a real invalid write; the
/// fatal-signal handler writes the report and the process ends by the
/// signal (a core only where `allow-core-dumps yes`).
pub fn segfault() -> ! {
    rampart_sys::fault()
}
