//! FAILOVER: Redis 7.0's coordinated handover from this primary to one of
//! its replicas. Writes pause; once the target has acknowledged the whole
//! stream, this server becomes the target's replica and asks it for
//! `PSYNC <replid> <offset> FAILOVER`, which makes the target a primary
//! continuing the same history (a partial resync, nothing reloaded). The
//! paused writes then meet a replica and get `-READONLY`, as in Redis.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::state::{now_ms, Server};

/// How often the watcher looks at the replicas' acknowledgements. Redis
/// looks once a second (its replication cron); replicas acknowledge once
/// a second either way, so a finer look only trims the wait.
const POLL: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    None,
    /// Writes paused, waiting for a replica to acknowledge everything.
    WaitForSync,
    /// This server follows the target and sent it PSYNC ... FAILOVER.
    InProgress,
}

struct Inner {
    phase: Phase,
    /// The replica handed over to (`FAILOVER TO`, or the first caught up).
    target: Option<(String, i64)>,
    /// Unix ms after which the wait ends (`TIMEOUT`).
    deadline: Option<u64>,
    force: bool,
}

/// The failover state (`master_failover_state` in INFO replication).
pub struct Failover {
    inner: Mutex<Inner>,
}

impl Default for Failover {
    fn default() -> Failover {
        Failover {
            inner: Mutex::new(Inner {
                phase: Phase::None,
                target: None,
                deadline: None,
                force: false,
            }),
        }
    }
}

/// What `FAILOVER` asked for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `TO host port`.
    pub target: Option<(String, i64)>,
    /// `TIMEOUT milliseconds` (0: wait until aborted).
    pub timeout_ms: u64,
    /// `FORCE`: hand over at the timeout even when the target lags.
    pub force: bool,
}

impl Failover {
    /// INFO's `master_failover_state`.
    ///
    /// ```
    /// let f = rampart_server::failover::Failover::default();
    /// assert_eq!(f.state(), "no-failover");
    /// ```
    pub fn state(&self) -> &'static str {
        match self.inner.lock().phase {
            Phase::None => "no-failover",
            Phase::WaitForSync => "waiting-for-sync",
            Phase::InProgress => "failover-in-progress",
        }
    }

    /// Whether a failover is under way (REPLICAOF and SYNC are refused).
    pub fn active(&self) -> bool {
        self.inner.lock().phase != Phase::None
    }

    /// Whether this server's link to its new primary must ask with
    /// `PSYNC ... FAILOVER`.
    pub fn in_progress(&self) -> bool {
        self.inner.lock().phase == Phase::InProgress
    }
}

/// Starts a failover (`FAILOVER` after parsing); the error is the reply's
/// text, as Redis words it.
pub fn begin(srv: &Server, req: Request) -> Result<(), &'static str> {
    let mut g = srv.failover.inner.lock();
    if g.phase != Phase::None {
        return Err("ERR FAILOVER already in progress.");
    }
    if srv.repl.is_replica() {
        return Err("ERR FAILOVER is not valid when server is a replica.");
    }
    let replicas = srv.repl.replicas();
    if replicas.is_empty() {
        return Err("ERR FAILOVER requires connected replicas.");
    }
    if req.force && (req.timeout_ms == 0 || req.target.is_none()) {
        return Err(
            "ERR FAILOVER with force option requires both a timeout and target HOST and IP.",
        );
    }
    if let Some((host, port)) = &req.target {
        let Some(r) = replicas
            .iter()
            .find(|r| r.ip.eq_ignore_ascii_case(host) && r.port == *port)
        else {
            return Err("ERR FAILOVER target HOST and PORT is not a replica.");
        };
        if r.state() != "online" {
            return Err("ERR FAILOVER target replica is not online.");
        }
        tracing::info!("FAILOVER requested to {host}:{port}.");
    } else {
        tracing::info!("FAILOVER requested to any replica.");
    }
    g.phase = Phase::WaitForSync;
    g.target = req.target;
    g.deadline = (req.timeout_ms > 0).then(|| now_ms().saturating_add(req.timeout_ms));
    g.force = req.force;
    drop(g);
    srv.pause.failover.store(true, Ordering::Release);
    if let (Some(me), Ok(rt)) = (srv.arc(), tokio::runtime::Handle::try_current()) {
        rt.spawn(watch(me));
    }
    Ok(())
}

/// Follows the wait until the target caught up (or the timeout), then
/// hands over. Ends when the failover leaves the waiting phase.
async fn watch(srv: Arc<Server>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = srv.shutdown.notified() => return,
        }
        if !step(&srv) {
            return;
        }
    }
}

/// One look (Redis's `updateFailoverStatus`); false once there is nothing
/// more to wait for.
///
/// Most looks find nothing to do, so they take no gate; only a look that
/// acts takes the exclusive gate (REPLICAOF's rule: the role changes under
/// it) and decides again under it, as an ABORT may have come in between.
fn step(srv: &Server) -> bool {
    if decide(srv) == Decision::Wait {
        return true;
    }
    let _gate = srv.keyspace.exclusive();
    match decide(srv) {
        Decision::Wait => true,
        Decision::Done => false,
        Decision::TimedOut => {
            let mut g = srv.failover.inner.lock();
            if g.force {
                let (host, port) = g.target.clone().unwrap_or_default();
                tracing::info!("FAILOVER to {host}:{port} time out exceeded, failing over.");
                g.phase = Phase::InProgress;
                drop(g);
                hand_over(srv, host, port);
            } else {
                drop(g);
                abort(srv, "Replica never caught up before timeout");
            }
            false
        }
        Decision::Synced(host, port) => {
            tracing::info!("Failover target {host}:{port} is synced, failing over.");
            let mut g = srv.failover.inner.lock();
            g.phase = Phase::InProgress;
            g.target = Some((host.clone(), port));
            drop(g);
            hand_over(srv, host, port);
            false
        }
    }
}

#[derive(PartialEq)]
enum Decision {
    /// Still waiting for a replica to catch up.
    Wait,
    /// The failover left the waiting phase (ABORT, or done).
    Done,
    TimedOut,
    /// This replica has acknowledged everything.
    Synced(String, i64),
}

fn decide(srv: &Server) -> Decision {
    let g = srv.failover.inner.lock();
    if g.phase != Phase::WaitForSync {
        return Decision::Done;
    }
    if g.deadline.is_some_and(|d| d <= now_ms()) {
        return Decision::TimedOut;
    }
    let offset = srv.repl.offset();
    let replicas = srv.repl.replicas();
    let caught_up = |r: &crate::repl::Replica| r.ack.load(Ordering::Acquire) == offset;
    let found = match &g.target {
        Some((host, port)) => replicas
            .iter()
            .find(|r| r.ip.eq_ignore_ascii_case(host) && r.port == *port)
            .filter(|r| caught_up(r)),
        None => replicas.iter().find(|r| caught_up(r)),
    };
    match found {
        Some(r) => Decision::Synced(r.ip.clone(), r.port),
        None => Decision::Wait,
    }
}

/// Becomes the target's replica; the link sends PSYNC ... FAILOVER.
fn hand_over(srv: &Server, host: String, port: i64) {
    match u16::try_from(port) {
        Ok(port) => crate::repl::start_replica(srv, host, port),
        Err(_) => abort(srv, "Failover target port is not valid"),
    }
}

/// Ends a failover that did not happen (Redis's `abortFailover`): a server
/// already following the target becomes a primary again, and writes
/// resume. The caller holds the exclusive gate.
pub fn abort(srv: &Server, why: &str) {
    let g = srv.failover.inner.lock();
    if g.phase == Phase::None {
        return;
    }
    match &g.target {
        Some((host, port)) => tracing::info!("FAILOVER to {host}:{port} aborted: {why}"),
        None => tracing::info!("FAILOVER to any replica aborted: {why}"),
    }
    let following = g.phase == Phase::InProgress;
    drop(g);
    if following {
        crate::repl::promote(srv, "failover aborted");
    }
    clear(srv);
}

/// The failover is over, done or not (Redis's `clearFailoverState`):
/// writes resume.
pub fn clear(srv: &Server) {
    let mut g = srv.failover.inner.lock();
    g.phase = Phase::None;
    g.target = None;
    g.deadline = None;
    g.force = false;
    drop(g);
    srv.pause.failover.store(false, Ordering::Release);
    srv.pause.wake.notify_waiters();
}

/// Parses `FAILOVER`'s arguments (after the command name) as Redis does:
/// each option once, in any order.
///
/// ```
/// use rampart_server::failover::{parse, Request};
/// let args: Vec<&[u8]> = vec![b"TO", b"h", b"7000", b"TIMEOUT", b"50", b"FORCE"];
/// assert_eq!(
///     parse(&args),
///     Ok(Request { target: Some(("h".into(), 7000)), timeout_ms: 50, force: true })
/// );
/// ```
pub fn parse(args: &[&[u8]]) -> Result<Request, &'static str> {
    let mut req = Request::default();
    let mut timeout: i64 = 0;
    let mut j = 0;
    while j < args.len() {
        let a = args[j];
        if a.eq_ignore_ascii_case(b"timeout") && j + 1 < args.len() && timeout == 0 {
            timeout = crate::num::parse_i64(args[j + 1])
                .ok_or("ERR value is not an integer or out of range")?;
            if timeout <= 0 {
                return Err("ERR FAILOVER timeout must be greater than 0");
            }
            j += 2;
        } else if a.eq_ignore_ascii_case(b"to") && j + 2 < args.len() && req.target.is_none() {
            let port = crate::num::parse_i64(args[j + 2])
                .ok_or("ERR value is not an integer or out of range")?;
            req.target = Some((String::from_utf8_lossy(args[j + 1]).into_owned(), port));
            j += 3;
        } else if a.eq_ignore_ascii_case(b"force") && !req.force {
            req.force = true;
            j += 1;
        } else {
            return Err("ERR syntax error");
        }
    }
    req.timeout_ms = timeout as u64;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_as_redis() {
        let p = |a: &[&str]| {
            let v: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
            parse(&v)
        };
        assert_eq!(p(&[]), Ok(Request::default()));
        assert_eq!(p(&["TO", "h"]), Err("ERR syntax error"));
        assert_eq!(
            p(&["TO", "h", "x"]),
            Err("ERR value is not an integer or out of range")
        );
        assert_eq!(
            p(&["TIMEOUT", "0"]),
            Err("ERR FAILOVER timeout must be greater than 0")
        );
        assert_eq!(
            p(&["TIMEOUT", "-5"]),
            Err("ERR FAILOVER timeout must be greater than 0")
        );
        assert_eq!(p(&["FORCE", "FORCE"]), Err("ERR syntax error"));
        assert_eq!(
            p(&["TIMEOUT", "5", "TIMEOUT", "6"]),
            Err("ERR syntax error")
        );
        assert_eq!(p(&["ABORT"]), Err("ERR syntax error"));
        assert_eq!(
            p(&["force", "timeout", "10"]),
            Ok(Request {
                target: None,
                timeout_ms: 10,
                force: true
            })
        );
    }
}
