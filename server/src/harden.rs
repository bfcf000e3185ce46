//! Keeping plaintext out of core dumps and swap: Rampart's memory holds
//! the dataset and the data keys in the clear, so a core file or a
//! swapped-out page would put them on a disk unencrypted.
//!
//! - `allow-core-dumps no` (the default): the core-size limit is set to 0
//!   and the process is marked not dumpable, so neither a crash nor a
//!   `gcore` can write its memory out.
//! - `lock-memory yes|required`: every page the process touches is locked
//!   in RAM (`mlockall` with `MCL_ONFAULT`, so reserved but untouched
//!   address space, such as thread stacks, costs nothing). `yes` logs one
//!   line and goes on when the kernel refuses; `required` refuses to start.

use std::sync::atomic::{AtomicBool, Ordering};

use rustix::mm::{mlockall, MlockAllFlags};
use rustix::process::{set_dumpable_behavior, setrlimit, DumpableBehavior, Resource, Rlimit};

use crate::config::Config;

static MEM_LOCKED: AtomicBool = AtomicBool::new(false);
static CORE_DUMPS: AtomicBool = AtomicBool::new(true);

/// Applies `allow-core-dumps` and `lock-memory`; an error only when
/// `lock-memory required` could not be honoured.
///
/// ```no_run
/// let config = rampart_server::config::Config::default();
/// rampart_server::harden::apply(&config).unwrap();
/// assert!(!rampart_server::harden::core_dumps_enabled());
/// ```
pub fn apply(config: &Config) -> anyhow::Result<()> {
    if config.flag("allow-core-dumps") {
        CORE_DUMPS.store(true, Ordering::Relaxed);
    } else {
        let limit = setrlimit(
            Resource::Core,
            Rlimit {
                current: Some(0),
                maximum: Some(0),
            },
        );
        let dumpable = set_dumpable_behavior(DumpableBehavior::NotDumpable);
        match limit.and(dumpable) {
            Ok(()) => CORE_DUMPS.store(false, Ordering::Relaxed),
            Err(e) => tracing::warn!("Could not disable core dumps: {e}"),
        }
    }
    let mode = config.get("lock-memory").unwrap_or_default();
    if mode == "yes" || mode == "required" {
        let flags = MlockAllFlags::CURRENT | MlockAllFlags::FUTURE | MlockAllFlags::ONFAULT;
        match mlockall(flags) {
            Ok(()) => {
                MEM_LOCKED.store(true, Ordering::Relaxed);
                tracing::info!("Memory locked: no page of this process will be swapped out");
            }
            Err(e) => {
                let why = format!(
                    "Could not lock memory ({e}): raise RLIMIT_MEMLOCK (ulimit -l, systemd LimitMEMLOCK=infinity) or grant CAP_IPC_LOCK"
                );
                if mode == "required" {
                    anyhow::bail!("{why}; lock-memory is 'required', exiting");
                }
                tracing::warn!("{why}; going on without it (lock-memory yes)");
            }
        }
    }
    Ok(())
}

/// Whether memory is locked in RAM (INFO `mem_locked`).
pub fn mem_locked() -> bool {
    MEM_LOCKED.load(Ordering::Relaxed)
}

/// Whether this process may dump core (INFO `core_dumps`).
pub fn core_dumps_enabled() -> bool {
    CORE_DUMPS.load(Ordering::Relaxed)
}
