//! Counters of key use and envelope traffic, for the server's Prometheus
//! exporter.
//!
//! They live here, beside the code they count, so a provider call or a
//! sealed chunk is counted whoever makes it (server, CLI, tests); the metrics
//! are created once per process and are not registered anywhere: whoever
//! exports them registers [`collectors`] in its own registry. Nothing here
//! sees key material: only provider names, operation names, payload kinds,
//! byte counts and durations.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus::core::Collector;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts};

use crate::Payload;

struct Metrics {
    sealed: IntCounterVec,
    opened: IntCounterVec,
    calls: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
}

// The names and labels are fixed strings checked by the unit test below,
// so building them cannot fail at run time.
fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("fixed metric {name}: {e}"))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    sealed: counter_vec(
        "rampart_envelope_sealed_bytes_total",
        "Plaintext bytes encrypted into envelope streams, by payload kind.",
        &["payload"],
    ),
    opened: counter_vec(
        "rampart_envelope_opened_bytes_total",
        "Plaintext bytes decrypted (and authenticated) from envelope streams, by payload kind.",
        &["payload"],
    ),
    calls: counter_vec(
        "rampart_key_provider_calls_total",
        "Key provider calls, by provider and operation.",
        &["provider", "operation"],
    ),
    errors: counter_vec(
        "rampart_key_provider_errors_total",
        "Key provider calls that failed, by provider and operation.",
        &["provider", "operation"],
    ),
    latency: HistogramVec::new(
        HistogramOpts::new(
            "rampart_key_provider_duration_seconds",
            "Key provider call latency, by provider and operation.",
        )
        // A local unwrap takes microseconds, a KMS round trip tens of ms.
        .buckets(vec![
            0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]),
        &["provider", "operation"],
    )
    .unwrap_or_else(|e| unreachable!("fixed histogram: {e}")),
});

/// The collectors of this crate's metrics, to register in an exporter's
/// registry (each is a cheap clone sharing the same counters).
///
/// ```
/// let registry = prometheus::Registry::new();
/// for c in rampart_kms::metrics::collectors() {
///     registry.register(c).unwrap();
/// }
/// assert!(registry.gather().iter().all(|f| f.name().starts_with("rampart_")));
/// ```
pub fn collectors() -> Vec<Box<dyn Collector>> {
    let m = &*METRICS;
    vec![
        Box::new(m.sealed.clone()),
        Box::new(m.opened.clone()),
        Box::new(m.calls.clone()),
        Box::new(m.errors.clone()),
        Box::new(m.latency.clone()),
    ]
}

/// The counter of plaintext bytes sealed for `payload`, resolved once per
/// stream so each chunk costs one atomic add.
pub(crate) fn sealed(payload: Payload) -> IntCounter {
    METRICS.sealed.with_label_values(&[payload.as_str()])
}

/// See [`sealed`].
pub(crate) fn opened(payload: Payload) -> IntCounter {
    METRICS.opened.with_label_values(&[payload.as_str()])
}

/// Counts one provider call that started at `start` and ended as `ok`.
pub(crate) fn provider_call(provider: &str, operation: &str, start: Instant, ok: bool) {
    let labels = [provider, operation];
    METRICS.calls.with_label_values(&labels).inc();
    if !ok {
        METRICS.errors.with_label_values(&labels).inc();
    }
    METRICS
        .latency
        .with_label_values(&labels)
        .observe(start.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_bytes_are_counted() {
        let before = METRICS
            .calls
            .with_label_values(&["local", "generate"])
            .get();
        provider_call("local", "generate", Instant::now(), false);
        assert_eq!(
            METRICS
                .calls
                .with_label_values(&["local", "generate"])
                .get(),
            before + 1
        );
        assert!(
            METRICS
                .errors
                .with_label_values(&["local", "generate"])
                .get()
                >= 1
        );
        sealed(Payload::Backup).inc_by(10);
        assert!(opened(Payload::Backup).get() <= sealed(Payload::Backup).get());
        let registry = prometheus::Registry::new();
        for c in collectors() {
            assert!(registry.register(c).is_ok());
        }
    }
}
