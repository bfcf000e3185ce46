//! Shutting down as Redis 7.0 does: SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]
//! [ABORT], SIGTERM and SIGINT.
//!
//! With replicas that have not acknowledged the current offset, a shutdown
//! is *initiated* rather than done at once: writes are paused, replicas are
//! asked for an ACK, and the shutdown finishes when every replica caught up
//! or `shutdown-timeout` seconds passed, whichever comes first. Meanwhile
//! the SHUTDOWN callers stay blocked; SHUTDOWN ABORT (or a failed final
//! save) cancels it and they get `-ERR Errors trying to SHUTDOWN. Check
//! logs.`. The main task drives an initiated shutdown ([`step`]), as
//! Redis's `serverCron` does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::state::{now_ms, Server};

/// What blocked SHUTDOWN callers get when the shutdown does not happen.
pub const FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

/// SHUTDOWN's modifiers (and `shutdown-on-sigterm`/`shutdown-on-sigint`'s).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// SAVE: save even without `save` rules.
    pub save: bool,
    /// NOSAVE: do not save even with `save` rules.
    pub nosave: bool,
    /// NOW: do not wait for lagging replicas.
    pub now: bool,
    /// FORCE: exit even if the final save fails.
    pub force: bool,
}

impl Flags {
    /// The flags a `shutdown-on-sigterm`/`shutdown-on-sigint` value names
    /// (`default` names none).
    pub fn from_config(value: &str) -> Flags {
        let mut f = Flags::default();
        for w in value.split_whitespace() {
            match w.to_ascii_lowercase().as_str() {
                "save" => f.save = true,
                "nosave" => f.nosave = true,
                "now" => f.now = true,
                "force" => f.force = true,
                _ => {}
            }
        }
        f
    }
}

/// What [`prepare`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server is ready to exit (its final save, if any, is done).
    Exit,
    /// Waiting for replicas, or another shutdown already is: the caller
    /// (registered as a waiter) gets its answer later.
    Waiting,
    /// The final save failed and FORCE was not given: the server keeps
    /// running.
    Failed,
}

#[derive(Default)]
struct State {
    /// An initiated shutdown: its flags and when it stops waiting
    /// (Redis's `shutdown_mstime`).
    pending: Option<(Flags, Instant)>,
    /// A signal asked for a shutdown (Redis's `shutdown_asap`).
    asap: bool,
    /// Clients blocked on SHUTDOWN.
    waiters: Vec<oneshot::Sender<Vec<u8>>>,
}

/// Shutdown state, shared by SHUTDOWN and the main task.
#[derive(Default)]
pub struct Control {
    state: Mutex<State>,
    /// Wakes the main task when a shutdown starts waiting for replicas.
    pub wake: tokio::sync::Notify,
    finished: AtomicBool,
}

impl Control {
    /// Whether a shutdown waits for replicas.
    pub fn in_progress(&self) -> bool {
        self.state.lock().pending.is_some()
    }

    /// Whether the server is ready to exit (the final save is done).
    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Records a signal. True when one was already recorded: a second
    /// SIGINT exits at once, as in Redis.
    pub fn signal(&self) -> bool {
        std::mem::replace(&mut self.state.lock().asap, true)
    }
}

/// Whether every replica acknowledged the current offset (Redis's
/// `isReadyToShutdown`): a replica still in its full sync counts as
/// lagging.
fn replicas_in_sync(srv: &Server) -> bool {
    let offset = srv.repl.offset();
    srv.repl
        .replicas()
        .iter()
        .all(|r| r.ack.load(Ordering::Relaxed) == offset)
}

/// Begins a shutdown (Redis's `prepareForShutdown`). The caller holds the
/// exclusive gate. `waiter` is the SHUTDOWN caller's reply channel; it is
/// kept when the outcome is [`Outcome::Waiting`].
pub fn prepare(srv: &Server, flags: Flags, waiter: Option<oneshot::Sender<Vec<u8>>>) -> Outcome {
    let ctl = &srv.shutdown_ctl;
    {
        let mut st = ctl.state.lock();
        if st.pending.is_some() {
            st.waiters.extend(waiter);
            return Outcome::Waiting;
        }
        tracing::warn!("User requested shutdown...");
        crate::supervise::tell_systemd("STOPPING=1\n");
        let timeout = srv.config.int("shutdown-timeout").max(0) as u64;
        if !flags.now && timeout != 0 && !replicas_in_sync(srv) {
            st.pending = Some((flags, Instant::now() + Duration::from_secs(timeout)));
            st.waiters.extend(waiter);
            drop(st);
            if !srv.pause.paused() {
                srv.repl.request_acks();
            }
            srv.pause.shutdown.store(true, Ordering::Release);
            tracing::info!("Waiting for replicas before shutting down.");
            ctl.wake.notify_one();
            return Outcome::Waiting;
        }
    }
    if finish(srv, flags) {
        Outcome::Exit
    } else {
        Outcome::Failed
    }
}

/// The initiated shutdown's next step, from the main task: finish it once
/// the replicas caught up or the timeout passed. True when the server is
/// ready to exit. The caller holds the exclusive gate.
pub fn step(srv: &Server) -> bool {
    let Some((flags, deadline)) = srv.shutdown_ctl.state.lock().pending else {
        return false;
    };
    if Instant::now() < deadline && !replicas_in_sync(srv) {
        return false;
    }
    finish(srv, flags)
}

/// Logs lagging replicas, saves as the flags and `save` rules say, and
/// marks the server finished (Redis's `finishShutdown`). On a failed save
/// without FORCE, cancels the shutdown and returns false.
fn finish(srv: &Server, flags: Flags) -> bool {
    let offset = srv.repl.offset();
    let replicas = srv.repl.replicas();
    let now = now_ms();
    let mut lagging = 0;
    for r in &replicas {
        let ack = r.ack.load(Ordering::Relaxed);
        if ack != offset {
            lagging += 1;
            let online = r.online.load(Ordering::Relaxed);
            let lag = if online {
                now.saturating_sub(r.last_ack_ms.load(Ordering::Relaxed)) / 1000
            } else {
                0
            };
            tracing::warn!(
                "Lagging replica {}:{} reported offset {} behind master, lag={lag}, state={}.",
                r.ip,
                r.port,
                offset as i64 - ack as i64,
                r.state()
            );
        }
    }
    if !replicas.is_empty() {
        tracing::info!(
            "{} of {} replicas are in sync when shutting down.",
            replicas.len() - lagging,
            replicas.len()
        );
    }
    let saved = crate::persist::shutdown_save(srv, flags.save, flags.nosave).and_then(|()| {
        crate::backup::on_shutdown(srv).map_err(|e| format!("the final backup failed: {e:#}"))
    });
    if let Err(e) = saved {
        if flags.force {
            tracing::warn!("Error trying to save the DB. Exit anyway. ({e})");
        } else {
            tracing::warn!("Error trying to save the DB, can't exit. ({e})");
            tracing::warn!(
                "Errors trying to shut down the server. Check the logs for more information."
            );
            cancel(srv);
            return false;
        }
    }
    srv.shutdown_ctl.finished.store(true, Ordering::Release);
    srv.shutting_down.store(true, Ordering::Relaxed);
    true
}

/// Ends an initiated or signalled shutdown without exiting: writes resume
/// and blocked SHUTDOWN callers get [`FAILED`].
fn cancel(srv: &Server) {
    let waiters = {
        let mut st = srv.shutdown_ctl.state.lock();
        st.pending = None;
        st.asap = false;
        std::mem::take(&mut st.waiters)
    };
    for w in waiters {
        let _ = w.send(format!("-{FAILED}\r\n").into_bytes());
    }
    srv.pause.shutdown.store(false, Ordering::Release);
    srv.pause.wake.notify_waiters();
}

/// SHUTDOWN ABORT: cancels an initiated or signalled shutdown. False when
/// there is none.
pub fn abort(srv: &Server) -> bool {
    {
        let st = srv.shutdown_ctl.state.lock();
        if st.pending.is_none() && !st.asap {
            return false;
        }
    }
    cancel(srv);
    tracing::info!("Shutdown manually aborted.");
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_flags_come_from_the_config_value() {
        assert_eq!(Flags::from_config("default"), Flags::default());
        let f = Flags::from_config("nosave now");
        assert!(f.nosave && f.now && !f.save && !f.force);
        let f = Flags::from_config("SAVE force");
        assert!(f.save && f.force);
    }
}
