//! Rampart's own measurements that INFO has no field for: durations as
//! histograms, and counts by label. Process-wide, like INFO's counters
//! they outlive a `CONFIG RESETSTAT` (Prometheus counters never go down).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

/// The server-side instruments; see [`instruments`].
pub struct Instruments {
    /// `rampart_snapshot_duration_seconds{result}`: SAVE, BGSAVE and
    /// shutdown snapshots written to the data directory.
    pub snapshot: HistogramVec,
    /// `rampart_backup_duration_seconds{result}`.
    pub backup: HistogramVec,
    /// `rampart_repl_full_sync_duration_seconds{encryption}`: from the
    /// snapshot's start to the last byte sent, per replica served.
    pub full_sync: HistogramVec,
    /// `rampart_repl_full_syncs_served_total{encryption}`.
    pub full_syncs: IntCounterVec,
    /// `rampart_repl_replica_sync_duration_seconds{result}`: on a replica,
    /// receiving and loading a full sync.
    pub replica_sync: HistogramVec,
    /// `rampart_eviction_cycles_total`: runs of the eviction loop that
    /// found memory over `maxmemory`.
    pub eviction_cycles: IntCounter,
}

// Snapshots and syncs take from milliseconds (an empty dataset) to many
// minutes (tens of GiB).
const SLOW_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

/// A histogram with one label whose `values` exist from the start, so a
/// dashboard sees zeros rather than no series before the first event.
fn histogram(name: &str, help: &str, label: &str, values: [&str; 2]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(SLOW_BUCKETS.to_vec()),
        &[label],
    )
    .unwrap_or_else(|e| unreachable!("fixed histogram {name}: {e}"));
    for v in values {
        h.with_label_values(&[v]);
    }
    h
}

const RESULTS: [&str; 2] = ["ok", "error"];
const ENCRYPTIONS: [&str; 2] = ["encrypted", "plaintext"];

static INSTRUMENTS: LazyLock<Instruments> = LazyLock::new(|| Instruments {
    snapshot: histogram(
        "rampart_snapshot_duration_seconds",
        "Time to write a snapshot file (SAVE, BGSAVE, save rules, shutdown), by result.",
        "result",
        RESULTS,
    ),
    backup: histogram(
        "rampart_backup_duration_seconds",
        "Time to take a backup into the backup store, by result.",
        "result",
        RESULTS,
    ),
    full_sync: histogram(
        "rampart_repl_full_sync_duration_seconds",
        "Time to stream a full sync to a replica, by encryption (encrypted, plaintext).",
        "encryption",
        ENCRYPTIONS,
    ),
    full_syncs: {
        let c = IntCounterVec::new(
            Opts::new(
                "rampart_repl_full_syncs_served_total",
                "Full syncs served to replicas to the end, by encryption (encrypted, plaintext).",
            ),
            &["encryption"],
        )
        .unwrap_or_else(|e| unreachable!("fixed counter: {e}"));
        for v in ENCRYPTIONS {
            c.with_label_values(&[v]);
        }
        c
    },
    replica_sync: histogram(
        "rampart_repl_replica_sync_duration_seconds",
        "On a replica: time to receive and load a full sync from the primary, by result.",
        "result",
        RESULTS,
    ),
    eviction_cycles: IntCounter::new(
        "rampart_eviction_cycles_total",
        "Eviction cycles run because used memory was over maxmemory.",
    )
    .unwrap_or_else(|e| unreachable!("fixed counter: {e}")),
});

/// The process's instruments.
///
/// ```
/// use rampart_server::metrics::{instruments, result};
/// instruments().eviction_cycles.inc();
/// instruments().snapshot.with_label_values(&[result(true)]).observe(0.2);
/// assert!(instruments().eviction_cycles.get() >= 1);
/// ```
pub fn instruments() -> &'static Instruments {
    &INSTRUMENTS
}

/// The `result` label of an outcome.
///
/// ```
/// assert_eq!(rampart_server::metrics::result(false), "error");
/// ```
pub fn result(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "error"
    }
}

/// The `encryption` label of a full sync.
///
/// ```
/// assert_eq!(rampart_server::metrics::encryption(true), "encrypted");
/// ```
pub fn encryption(encrypted: bool) -> &'static str {
    if encrypted {
        "encrypted"
    } else {
        "plaintext"
    }
}

/// Records one observation of `h` with `label`.
pub(crate) fn observe(h: &HistogramVec, label: &str, d: Duration) {
    h.with_label_values(&[label]).observe(d.as_secs_f64());
}

/// The collectors to register in the exporter's registry.
pub(crate) fn collectors() -> Vec<Box<dyn Collector>> {
    let i = &*INSTRUMENTS;
    vec![
        Box::new(i.snapshot.clone()),
        Box::new(i.backup.clone()),
        Box::new(i.full_sync.clone()),
        Box::new(i.full_syncs.clone()),
        Box::new(i.replica_sync.clone()),
        Box::new(i.eviction_cycles.clone()),
    ]
}
