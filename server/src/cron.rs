//! Background work on the `hz` clock: active expiry and the ops/sec sampler.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::state::{now_ms, Server};

/// Shards visited per database per tick. With 256 shards and hz 10 a full
/// pass over a database takes about 1.6 s, like Redis's slow cycle.
const SHARDS_PER_TICK: usize = 16;

/// Runs until shutdown.
pub async fn run(srv: Arc<Server>) {
    let mut cursors = vec![0usize; srv.keyspace.len()];
    loop {
        let hz = srv.config.hot.hz.load(Ordering::Relaxed).max(1);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(1000 / hz)) => {}
            _ = srv.shutdown.notified() => return,
        }
        if srv.cron_paused.load(Ordering::Relaxed) {
            continue;
        }
        sample_ops(&srv);
        srv.client_mem.forget_old_peaks(now_ms() / 1000);
        srv.migrate_sockets.close_idle(now_ms() / 1000);
        crate::persist::cron(&srv);
        crate::backup::cron(&srv);
        // Replicas never expire keys themselves: they wait for the
        // primary's DEL (DESIGN.md).
        // Paused writes (CLIENT PAUSE, a shutdown waiting for replicas, a
        // failover waiting for its target) pause
        // expiry too, as in Redis: its DELs would move the offset replicas
        // are catching up to.
        let paused = srv.pause.paused() || srv.pause.writes_held();
        if srv.active_expire.load(Ordering::Relaxed) && !srv.repl.is_replica() && !paused {
            // The sweep can wait on shards a snapshot or full sync is
            // serializing: step off the worker so the connections it would
            // otherwise starve (and the I/O driver) keep running.
            tokio::task::block_in_place(|| active_expire(&srv, &mut cursors));
        }
        // BCAST announcements of keys the sweep expired.
        srv.tracking.broadcast_pending(None);
    }
}

fn active_expire(srv: &Server, cursors: &mut [usize]) {
    let _gate = srv.keyspace.shared();
    // Timed from here: waiting for the gate (a command holding it
    // exclusive) is that command's latency, not the sweep's, as in Redis
    // where the two never overlap.
    let started = Instant::now();
    sweep(srv, cursors);
    srv.latency
        .add_if_needed("expire-cycle", started.elapsed().as_millis() as u64);
}

fn sweep(srv: &Server, cursors: &mut [usize]) {
    let now = now_ms();
    let mut avg = srv.avg_ttl.lock();
    for (i, cursor) in cursors.iter_mut().enumerate() {
        let db = srv.keyspace.db(i);
        // Keep going while a quarter of what we see is expired, as Redis
        // does, within a budget of one pass over the database.
        for _ in 0..16 {
            let s = db.sweep_expired(*cursor, SHARDS_PER_TICK, now);
            *cursor = s.next;
            if s.sampled > 0 {
                let live = (s.sampled - s.expired).max(1) as u64;
                let sample_avg = s.ttl_sum / live;
                // Redis smooths avg_ttl the same way (2% per sample).
                avg[i] = if avg[i] == 0 {
                    sample_avg
                } else {
                    (avg[i] * 49 + sample_avg) / 50
                };
            } else if db.volatile_len() == 0 {
                avg[i] = 0;
            }
            if s.shards == 0 || s.expired * 4 < s.sampled {
                break;
            }
        }
    }
}

fn sample_ops(srv: &Server) {
    let mut s = srv.stats.ops_sample.lock();
    let now = Instant::now();
    let elapsed = now.duration_since(s.0).as_secs_f64();
    if elapsed >= 0.1 {
        let total = srv.stats.commands.get();
        let rate = (total - s.1) as f64 / elapsed;
        // Smooth over about a second of samples.
        s.2 = s.2 * 0.8 + rate * 0.2;
        s.0 = now;
        s.1 = total;
    }
}
