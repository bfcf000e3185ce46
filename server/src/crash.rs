//! Crash reports: what Redis writes to its log when it dies, so operators
//! and tools that search a log for `REDIS BUG REPORT` or `crashed by
//! signal` find one. A panic anywhere in the server writes the report
//! before the process aborts (the release profile aborts on panic), and
//! DEBUG PANIC / DEBUG SEGFAULT end the process the way Redis's do.
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

/// Follows the configuration (at startup and after CONFIG SET).
pub fn configure(config: &crate::config::Config) {
    EXIT_ON_PANIC.store(config.flag("use-exit-on-panic"), Ordering::Relaxed);
}

fn end() -> ! {
    if EXIT_ON_PANIC.load(Ordering::Relaxed) {
        std::process::exit(1)
    }
    std::process::abort()
}

/// Installs the panic hook that writes the report (call once logging is
/// set up).
pub fn install() {
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

/// Writes a bug report whose first lines are `head`, with the stack.
fn report(head: &[String]) {
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

/// DEBUG SEGFAULT: Redis's crash by SIGSEGV. Safe Rust cannot fault on
/// purpose, so the report Redis's handler would write comes first and the
/// process then ends by the same signal (a core only where
/// `allow-core-dumps yes`).
pub fn segfault() -> ! {
    report(&[format!(
        "Redis {REDIS_VERSION} crashed by signal: 11, si_code: 0"
    )]);
    // More than once: the first may meet std's stack-overflow handler,
    // which sees no guard-page fault and restores the default action; a
    // later one ends the process (on whichever thread takes it, hence the
    // pauses). Should none land, end it anyway.
    for _ in 0..20 {
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::SEGV);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::process::abort()
}
