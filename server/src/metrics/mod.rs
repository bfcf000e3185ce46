//! The Prometheus exporter: `GET /metrics` on `metrics-bind`:`metrics-port`
//! (0 = off), in Prometheus's text format.
//!
//! Three sources, one edge each:
//! - [`info_families`]: the metrics `redis_exporter` derives from INFO,
//!   under its names, labels and types, built from this server's own INFO
//!   text, so INFO stays the source of truth and a mirrored metric equals
//!   its field by construction;
//! - Rampart's instruments that INFO has no field for: durations as
//!   histograms ([`instruments`]) and the kms crate's key-provider and
//!   envelope counters ([`rampart_kms::metrics`]), gathered from one
//!   registry;
//! - the key in use, as an info metric read at scrape time.
//!
//! Scrapes never take the keyspace gate: INFO reads atomics and per-shard
//! lengths.

pub mod http;
mod info_map;
mod instruments;

use std::sync::{Arc, LazyLock};

use prometheus::Registry;

pub use info_map::info_families;
use info_map::Builder;
pub(crate) use instruments::observe;
pub use instruments::{encryption, instruments, result, Instruments};

use crate::state::{now_ms, Server};

/// INFO sections the exporter reads: the default set plus commandstats,
/// without latencystats (percentiles are not exported).
const SECTIONS: &[&str] = &["default", "commandstats"];

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let r = Registry::new();
    for c in instruments::collectors()
        .into_iter()
        .chain(rampart_kms::metrics::collectors())
    {
        if let Err(e) = r.register(c) {
            tracing::warn!("metrics: {e}");
        }
    }
    r
});

/// `rampart_encryption_at_rest` and `rampart_encryption_key_info`.
fn key_families(srv: &Server) -> Builder {
    let mut b = Builder::default();
    b.add(
        "rampart_encryption_at_rest",
        "1 when snapshots, full syncs and backups are encrypted (encryption-at-rest yes).",
        false,
        &[],
        f64::from(u8::from(srv.keys.is_some())),
    );
    if let Some(p) = &srv.keys {
        // An unreadable keyring is reported by the calls that need it; the
        // scrape shows the provider without a key id.
        let (id, version) = p.key_in_use().unwrap_or_default();
        b.add(
            "rampart_encryption_key_info",
            "The key that wraps new data keys (never key material): provider, key id, version.",
            false,
            &[
                ("provider", p.name()),
                ("key_id", &id),
                ("version", &version),
            ],
            1.0,
        );
    }
    b
}

/// The whole exposition, as `GET /metrics` returns it.
///
/// ```
/// let srv = rampart_server::state::Server::new(Default::default());
/// let text = rampart_server::metrics::render(&srv);
/// assert!(text.contains("\nredis_up 1\n"));
/// assert!(text.contains("# TYPE redis_commands_processed_total counter\n"));
/// assert!(text.contains("# TYPE rampart_snapshot_duration_seconds histogram\n"));
/// ```
pub fn render(srv: &Server) -> String {
    let wanted: Vec<String> = SECTIONS.iter().map(|s| s.to_string()).collect();
    let info = crate::info::render(srv, &wanted);
    // The INFO-derived and key families are written straight to text, in
    // the order and bytes `TextEncoder` gave them; only the registry's
    // histograms and counters go through it.
    let mut out = String::with_capacity(48 * 1024);
    info_map::write_info_text(&info, now_ms() / 1000, &mut out);
    key_families(srv).write_text(&mut out);
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&REGISTRY.gather(), &mut out) {
        tracing::warn!("metrics: encoding failed: {e}");
    }
    out
}

/// Binds `metrics-bind`:`metrics-port` and serves scrapes on a thread of
/// their own; does nothing when the port is 0.
///
/// The thread runs only when a CPU is otherwise idle (`SCHED_IDLE`): with
/// 10,000 clients and 16 databases a scrape costs the server about half a
/// millisecond of CPU (INFO locks each of the 4,096 shards once, reads
/// /proc and jemalloc's stats, walks the command table; the text is parsed
/// and written out), and the HTTP exchange around it more. A nice value
/// only weighs shares: a waking nice-10 thread still preempts a connection
/// thread; an idle-policy one waits for a free CPU. So the whole exchange,
/// accept to last byte, runs there, not only the render.
pub async fn start(srv: &Arc<Server>) -> anyhow::Result<()> {
    let port = srv.config.int("metrics-port");
    if port <= 0 {
        return Ok(());
    }
    let bind = srv
        .config
        .get("metrics-bind")
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into());
    let addr = if bind.contains(':') {
        format!("[{bind}]:{port}")
    } else {
        format!("{bind}:{port}")
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .and_then(|l| l.into_std())
        .map_err(|e| {
            anyhow::anyhow!("Could not create the metrics listening socket {addr}: {e}")
        })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let srv = srv.clone();
    std::thread::Builder::new()
        .name("rampart-metrics".into())
        .spawn(move || {
            if let Err(e) = rampart_sys::run_when_idle() {
                // Only the preference is lost.
                tracing::debug!("Could not make the metrics thread idle-only: {e}");
            }
            runtime.block_on(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => http::serve(srv, l).await,
                    Err(e) => tracing::warn!("Metrics listener unusable: {e}"),
                }
            })
        })?;
    tracing::info!("Metrics at http://{addr}/metrics");
    Ok(())
}
