//! The latency monitor (LATENCY LATEST/HISTORY/GRAPH/DOCTOR, as Redis's
//! latency.c keeps it) and the per-command latency histograms (LATENCY
//! HISTOGRAM, INFO latencystats).

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Samples kept per event, as Redis's `LATENCY_TS_LEN`.
pub const TS_LEN: usize = 160;

/// One second's worst latency of an event.
#[derive(Clone, Copy, Default)]
pub struct Sample {
    /// Unix time (s); 0 marks an unused slot.
    pub time: i64,
    /// Milliseconds.
    pub latency: u64,
}

/// An event's ring of samples and its all-time maximum.
#[derive(Clone)]
pub struct Series {
    /// The next slot to write.
    pub idx: usize,
    /// All-time high (ms).
    pub max: u64,
    /// The ring.
    pub samples: [Sample; TS_LEN],
}

impl Series {
    fn new() -> Series {
        Series {
            idx: 0,
            max: 0,
            samples: [Sample::default(); TS_LEN],
        }
    }

    /// The used samples, oldest first.
    pub fn ordered(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..TS_LEN)
            .map(move |j| self.samples[(self.idx + j) % TS_LEN])
            .filter(|s| s.time != 0)
    }

    /// The newest sample.
    pub fn last(&self) -> Sample {
        self.samples[(self.idx + TS_LEN - 1) % TS_LEN]
    }
}

/// The monitor's state.
#[derive(Default)]
pub struct Latency {
    /// `latency-monitor-threshold` (ms, 0: off), read after every command.
    pub threshold: AtomicU64,
    /// `latency-tracking`.
    pub tracking: AtomicBool,
    /// `latency-tracking-info-percentiles`.
    pub percentiles: Mutex<Vec<f64>>,
    /// Events in the order they first occurred.
    pub events: Mutex<Vec<(String, Series)>>,
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Latency {
    /// Adds a sample when monitoring is on and `ms` reaches the threshold
    /// (Redis's `latencyAddSampleIfNeeded`).
    #[inline]
    pub fn add_if_needed(&self, event: &str, ms: u64) {
        let t = self.threshold.load(Ordering::Relaxed);
        if t != 0 && ms >= t {
            self.add(event, ms);
        }
    }

    /// Records `ms` for `event`: one sample per second, the worst of it.
    pub fn add(&self, event: &str, ms: u64) {
        let now = unix_now();
        let mut events = self.events.lock();
        let i = match events.iter().position(|(e, _)| e == event) {
            Some(i) => i,
            None => {
                events.push((event.to_string(), Series::new()));
                events.len() - 1
            }
        };
        let ts = &mut events[i].1;
        ts.max = ts.max.max(ms);
        let prev = (ts.idx + TS_LEN - 1) % TS_LEN;
        if ts.samples[prev].time == now {
            ts.samples[prev].latency = ts.samples[prev].latency.max(ms);
            return;
        }
        ts.samples[ts.idx] = Sample {
            time: now,
            latency: ms,
        };
        ts.idx = (ts.idx + 1) % TS_LEN;
    }

    /// Forgets `event` (any case) or, with `None`, every event; returns
    /// how many went.
    pub fn reset(&self, event: Option<&[u8]>) -> usize {
        let mut events = self.events.lock();
        let before = events.len();
        events.retain(|(e, _)| event.is_some_and(|w| !e.as_bytes().eq_ignore_ascii_case(w)));
        before - events.len()
    }

    /// A copy of one event's series (exact name, as Redis's dict lookup).
    pub fn series(&self, event: &[u8]) -> Option<(String, Series)> {
        self.events
            .lock()
            .iter()
            .find(|(e, _)| e.as_bytes() == event)
            .cloned()
    }
}

/// Reads the latency directives (at startup and after CONFIG SET).
pub fn configure(srv: &crate::state::Server) {
    let l = &srv.latency;
    l.threshold.store(
        srv.config.int("latency-monitor-threshold").max(0) as u64,
        Ordering::Relaxed,
    );
    l.tracking
        .store(srv.config.flag("latency-tracking"), Ordering::Relaxed);
    let p = srv
        .config
        .get("latency-tracking-info-percentiles")
        .unwrap_or_default();
    *l.percentiles.lock() = p
        .split_whitespace()
        .filter_map(|w| w.parse::<f64>().ok())
        .collect();
}

/// Redis's LATENCY GRAPH: a header, 80 dashes and a 4-row sparkline with
/// labels of how long ago each sample was.
pub fn graph(event: &str, ts: &Series) -> String {
    let now = unix_now();
    let samples: Vec<(f64, String)> = ts
        .ordered()
        .map(|s| {
            let elapsed = now - s.time;
            let label = if elapsed < 60 {
                format!("{elapsed}s")
            } else if elapsed < 3600 {
                format!("{}m", elapsed / 60)
            } else if elapsed < 3600 * 24 {
                format!("{}h", elapsed / 3600)
            } else {
                format!("{}d", elapsed / (3600 * 24))
            };
            (s.latency as f64, label)
        })
        .collect();
    let min = samples.iter().map(|s| s.0 as u64).min().unwrap_or(0);
    let max = samples.iter().map(|s| s.0 as u64).max().unwrap_or(0);
    let mut out = format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n",
        ts.max
    );
    out.push_str(&"-".repeat(80));
    out.push('\n');
    for (n, chunk) in samples.chunks(80).enumerate() {
        if n != 0 {
            out.push('\n');
        }
        sparkline(&mut out, chunk, &samples, 4);
    }
    out
}

/// sparkline.c's `sparklineRenderRange` with SPARKLINE_FILL; the scale is
/// the whole sequence's, as Redis keeps min and max per sequence.
fn sparkline(out: &mut String, part: &[(f64, String)], all: &[(f64, String)], rows: usize) {
    const FILL: &[u8] = b"_o#";
    let min = all.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let max = all.iter().map(|s| s.0).fold(f64::NEG_INFINITY, f64::max);
    let mut relmax = max - min;
    if relmax == 0.0 {
        relmax = 1.0;
    }
    let steps = (FILL.len() * rows) as i64;
    let labels = all.iter().any(|s| !s.1.is_empty());
    let mut row = 0usize;
    loop {
        let mut any = false;
        let mut chars = vec![b' '; part.len()];
        for (j, (v, label)) in part.iter().enumerate() {
            let relval = v - min;
            let step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
            let step = step.clamp(0, steps - 1);
            if row < rows {
                let idx = step - ((rows - row - 1) * FILL.len()) as i64;
                any = true;
                if (0..FILL.len() as i64).contains(&idx) {
                    chars[j] = FILL[idx as usize];
                } else if idx >= FILL.len() as i64 {
                    chars[j] = b'|';
                }
            } else {
                if labels && row - rows < 1 {
                    any = true;
                    break;
                }
                let lc = row - rows - 1;
                if label.len() > lc {
                    any = true;
                    chars[j] = label.as_bytes()[lc];
                }
            }
        }
        if !any {
            break;
        }
        row += 1;
        out.push_str(&String::from_utf8_lossy(&chars));
        out.push('\n');
    }
}

/// Mean, mean deviation, count and period of an event's samples, as
/// `analyzeLatencyForEvent`.
fn analyze(ts: &Series) -> (u64, u64, u64, i64) {
    let s: Vec<Sample> = ts.ordered().collect();
    if s.is_empty() {
        return (0, 0, 0, 0);
    }
    let n = s.len() as u64;
    let avg = s.iter().map(|x| x.latency).sum::<u64>() / n;
    let oldest = s.iter().map(|x| x.time).min().unwrap_or(0);
    let period = (unix_now() - oldest).max(1);
    let mad = s
        .iter()
        .map(|x| (avg as i64 - x.latency as i64).unsigned_abs())
        .sum::<u64>()
        / n;
    (avg, mad, n, period)
}

/// Redis's `createLatencyReport`, for the events Rampart records.
pub fn doctor(srv: &crate::state::Server) -> String {
    let l = &srv.latency;
    let events = l.events.lock().clone();
    let threshold = l.threshold.load(Ordering::Relaxed);
    if events.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".to_string();
    }
    let mut r = String::new();
    let (mut slowlog_enabled, mut slowlog_tuning, mut slowlog_inspect) = (false, false, false);
    let (mut scheduler, mut hz, mut large, mut mass) = (false, false, false, false);
    let mut advices = 0;
    for (n, (event, ts)) in events.iter().enumerate() {
        if n == 0 {
            r.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let (avg, mad, samples, period) = analyze(ts);
        let per = if samples > 0 {
            period as f64 / samples as f64
        } else {
            f64::NAN
        };
        r.push_str(&format!(
            "{}. {event}: {samples} latency spikes (average {avg}ms, mean deviation {mad}ms, period {per:.2} sec). Worst all time event {}ms.",
            n + 1,
            ts.max
        ));
        match event.to_ascii_lowercase().as_str() {
            "command" => {
                let slower = srv.slowlog.slower_than.load(Ordering::Relaxed);
                if slower < 0 {
                    slowlog_enabled = true;
                    advices += 1;
                } else if slower / 1000 > threshold as i64 {
                    slowlog_tuning = true;
                    advices += 1;
                }
                slowlog_inspect = true;
                large = true;
                advices += 2;
            }
            "fast-command" => {
                scheduler = true;
                advices += 1;
            }
            "expire-cycle" => {
                hz = true;
                large = true;
                advices += 2;
            }
            "eviction-del" => {
                large = true;
                advices += 1;
            }
            "eviction-cycle" => {
                mass = true;
                advices += 1;
            }
            _ => {}
        }
        r.push('\n');
    }
    if events.is_empty() && advices == 0 {
        r.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
        return r;
    }
    if advices == 0 {
        r.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
        return r;
    }
    r.push_str("\nI have a few advices for you:\n\n");
    if slowlog_enabled {
        r.push_str(&format!("- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.\n", threshold * 1000));
    }
    if slowlog_tuning {
        r.push_str(&format!("- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.\n", threshold * 1000));
    }
    if slowlog_inspect {
        r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
    }
    if scheduler {
        r.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
    }
    if hz && srv.config.int("hz") < 100 {
        r.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
    }
    if large {
        r.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
    }
    if mass {
        r.push_str("- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations (RESTORE command), may create sudden memory pressure forcing the server to block trying to evict keys. \n");
    }
    r
}

/// Buckets of the LATENCY HISTOGRAM reply: Redis walks its hdr_histogram
/// (1 ns..1 s, 2 significant figures) in powers of two from 1024 ns and
/// prints each step's highest equivalent value in µs; bucket `k` holds the
/// calls that step `k` adds, the last one everything above 2^29 ns.
pub const LOG_BUCKETS: usize = 21;

/// hdr_histogram's highest value equivalent to `v` (ns) at 2 significant
/// figures: 256 sub-buckets, the upper half of each power of two split
/// into 128 steps.
pub fn hdr_highest_equivalent(v: u64) -> u64 {
    if v < 256 {
        return v;
    }
    let shift = 63 - v.leading_zeros() - 7;
    ((v >> shift) << shift) + (1u64 << shift) - 1
}

/// Clamps a µs duration to the histogram's ns range (1 ns..1 s).
#[inline]
fn ns(usec: u64) -> u64 {
    usec.saturating_mul(1000).clamp(1, 1_000_000_000)
}

/// The LATENCY HISTOGRAM bucket of a call of `usec` µs.
#[inline]
pub fn log_bucket(usec: u64) -> usize {
    let v = ns(usec);
    if v <= 1031 {
        return 0;
    }
    let k = (63 - v.leading_zeros()) as usize - 10;
    let k = if v > hdr_highest_equivalent(1 << (10 + k)) {
        k + 1
    } else {
        k
    };
    k.min(LOG_BUCKETS - 1)
}

/// The µs key Redis prints for bucket `k`.
pub fn log_bucket_key(k: usize) -> u64 {
    if k + 1 >= LOG_BUCKETS {
        // Past the last power of two the iterator stops at the end of the
        // counts array, whose highest value is 2^30 - 1 ns.
        return ((1u64 << 30) - 1) / 1000;
    }
    hdr_highest_equivalent(1 << (10 + k)) / 1000
}

/// Fine buckets for the INFO percentiles: µs values below 32 exactly
/// (where hdr's ns steps are finer than a µs), then 16 steps per power
/// of two.
pub const FINE_BUCKETS: usize = 32 + 16 * 16;

/// The fine bucket of a call of `usec` µs.
#[inline]
pub fn fine_bucket(usec: u64) -> usize {
    let u = usec.min(999_999);
    if u < 32 {
        return u as usize;
    }
    let e = (63 - u.leading_zeros()) as usize;
    let sub = ((u >> (e - 4)) & 15) as usize;
    (32 + (e - 5) * 16 + sub).min(FINE_BUCKETS - 1)
}

/// The largest µs value in fine bucket `i`.
fn fine_bucket_top(i: usize) -> u64 {
    if i < 32 {
        return i as u64;
    }
    let e = (i - 32) / 16 + 5;
    let sub = ((i - 32) % 16) as u64;
    ((16 + sub) << (e - 4)) + (1 << (e - 4)) - 1
}

/// hdr_value_at_percentile over the fine buckets, in µs with ns
/// precision, as Redis prints it (`%.3f`).
pub fn percentile(fine: &[u64], p: f64) -> f64 {
    let total: u64 = fine.iter().sum();
    let p = p.min(100.0);
    let want = ((p / 100.0) * total as f64 + 0.5) as u64;
    let want = want.max(1);
    let mut seen = 0;
    for (i, &n) in fine.iter().enumerate() {
        seen += n;
        if seen >= want {
            let v = ns(fine_bucket_top(i));
            return hdr_highest_equivalent(v) as f64 / 1000.0;
        }
    }
    0.0
}

/// `%f` trimmed of trailing zeros, as Redis names a percentile (`p99.9`).
pub fn percentile_name(p: f64) -> String {
    let s = format!("{p:.6}");
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_bucket_keys_match_redis() {
        let keys: Vec<u64> = (0..LOG_BUCKETS).map(log_bucket_key).collect();
        assert_eq!(&keys[..8], &[1, 2, 4, 8, 16, 33, 66, 132]);
        assert_eq!(log_bucket(0), 0);
        assert_eq!(log_bucket(1), 0);
        assert_eq!(log_bucket(2), 1);
        assert_eq!(log_bucket(5), 3);
        assert_eq!(log_bucket(33), 5);
        assert_eq!(log_bucket(34), 6);
        assert_eq!(log_bucket(5_000_000), LOG_BUCKETS - 1);
    }

    #[test]
    fn percentiles_match_hdr() {
        let mut fine = vec![0u64; FINE_BUCKETS];
        fine[fine_bucket(5)] += 1;
        assert_eq!(format!("{:.3}", percentile(&fine, 50.0)), "5.023");
        assert_eq!(percentile_name(99.9), "99.9");
        assert_eq!(percentile_name(50.0), "50");
        for u in [32u64, 33, 100, 1000, 12345, 999_999] {
            assert!(fine_bucket_top(fine_bucket(u)) >= u);
        }
    }
}
