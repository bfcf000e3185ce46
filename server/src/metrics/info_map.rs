//! INFO text → Prometheus metric families, under `redis_exporter`'s names,
//! labels and types, so dashboards built for it work unchanged.
//!
//! This reads the same text `INFO` returns and nothing else: a metric and
//! the INFO field it mirrors cannot disagree. Fields are looked up by name
//! whatever their section, as `redis_exporter` does.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::LazyLock;

use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};

/// Plain numeric fields exported as gauges: (INFO field, name after `redis_`).
/// `redis_exporter`'s table, less the fields Redis 7.0 does not print.
const GAUGES: &[(&str, &str)] = &[
    ("uptime_in_seconds", "uptime_in_seconds"),
    ("process_id", "process_id"),
    ("io_threads_active", "io_threads_active"),
    ("hz", "hz"),
    ("configured_hz", "configured_hz"),
    ("connected_clients", "connected_clients"),
    ("blocked_clients", "blocked_clients"),
    ("maxclients", "max_clients"),
    ("tracking_clients", "tracking_clients"),
    ("clients_in_timeout_table", "clients_in_timeout_table"),
    (
        "client_recent_max_output_buffer",
        "client_recent_max_output_buffer_bytes",
    ),
    (
        "client_recent_max_input_buffer",
        "client_recent_max_input_buffer_bytes",
    ),
    ("allocator_active", "allocator_active_bytes"),
    ("allocator_allocated", "allocator_allocated_bytes"),
    ("allocator_resident", "allocator_resident_bytes"),
    ("allocator_frag_ratio", "allocator_frag_ratio"),
    ("allocator_frag_bytes", "allocator_frag_bytes"),
    ("allocator_rss_ratio", "allocator_rss_ratio"),
    ("allocator_rss_bytes", "allocator_rss_bytes"),
    ("used_memory", "memory_used_bytes"),
    ("used_memory_rss", "memory_used_rss_bytes"),
    ("used_memory_peak", "memory_used_peak_bytes"),
    ("used_memory_lua", "memory_used_lua_bytes"),
    ("used_memory_vm_eval", "memory_used_vm_eval_bytes"),
    ("used_memory_scripts_eval", "memory_used_scripts_eval_bytes"),
    ("used_memory_overhead", "memory_used_overhead_bytes"),
    ("used_memory_startup", "memory_used_startup_bytes"),
    ("used_memory_dataset", "memory_used_dataset_bytes"),
    ("number_of_cached_scripts", "number_of_cached_scripts"),
    ("number_of_functions", "number_of_functions"),
    ("number_of_libraries", "number_of_libraries"),
    ("used_memory_vm_functions", "memory_used_vm_functions_bytes"),
    ("used_memory_scripts", "memory_used_scripts_bytes"),
    ("used_memory_functions", "memory_used_functions_bytes"),
    ("used_memory_vm_total", "memory_used_vm_total"),
    ("maxmemory", "memory_max_bytes"),
    ("mem_fragmentation_ratio", "mem_fragmentation_ratio"),
    ("mem_fragmentation_bytes", "mem_fragmentation_bytes"),
    ("mem_clients_slaves", "mem_clients_slaves"),
    ("mem_clients_normal", "mem_clients_normal"),
    ("mem_cluster_links", "mem_cluster_links_bytes"),
    ("mem_aof_buffer", "mem_aof_buffer_bytes"),
    ("mem_replication_backlog", "mem_replication_backlog_bytes"),
    ("expired_stale_perc", "expired_stale_percentage"),
    (
        "mem_not_counted_for_evict",
        "mem_not_counted_for_eviction_bytes",
    ),
    (
        "mem_total_replication_buffers",
        "mem_total_replication_buffers_bytes",
    ),
    ("lazyfree_pending_objects", "lazyfree_pending_objects"),
    ("lazyfreed_objects", "lazyfreed_objects"),
    ("active_defrag_running", "active_defrag_running"),
    ("migrate_cached_sockets", "migrate_cached_sockets_total"),
    ("active_defrag_hits", "defrag_hits"),
    ("active_defrag_misses", "defrag_misses"),
    ("active_defrag_key_hits", "defrag_key_hits"),
    ("active_defrag_key_misses", "defrag_key_misses"),
    ("loading", "loading_dump_file"),
    ("async_loading", "async_loading"),
    ("rdb_changes_since_last_save", "rdb_changes_since_last_save"),
    ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress"),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
    ("rdb_last_bgsave_status", "rdb_last_bgsave_status"),
    ("rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec"),
    (
        "rdb_current_bgsave_time_sec",
        "rdb_current_bgsave_duration_sec",
    ),
    ("rdb_saves", "rdb_saves_total"),
    ("rdb_last_cow_size", "rdb_last_cow_size_bytes"),
    ("rdb_last_load_keys_expired", "rdb_last_load_expired_keys"),
    ("rdb_last_load_keys_loaded", "rdb_last_load_loaded_keys"),
    ("aof_enabled", "aof_enabled"),
    ("aof_rewrite_in_progress", "aof_rewrite_in_progress"),
    ("aof_rewrite_scheduled", "aof_rewrite_scheduled"),
    ("aof_last_rewrite_time_sec", "aof_last_rewrite_duration_sec"),
    (
        "aof_current_rewrite_time_sec",
        "aof_current_rewrite_duration_sec",
    ),
    ("aof_last_cow_size", "aof_last_cow_size_bytes"),
    ("aof_last_bgrewrite_status", "aof_last_bgrewrite_status"),
    ("aof_last_write_status", "aof_last_write_status"),
    ("module_fork_in_progress", "module_fork_in_progress"),
    ("module_fork_last_cow_size", "module_fork_last_cow_size"),
    (
        "current_eviction_exceeded_time",
        "current_eviction_exceeded_time_ms",
    ),
    ("pubsub_channels", "pubsub_channels"),
    ("pubsub_patterns", "pubsub_patterns"),
    ("pubsubshard_channels", "pubsubshard_channels"),
    ("tracking_total_keys", "tracking_total_keys"),
    ("tracking_total_items", "tracking_total_items"),
    ("tracking_total_prefixes", "tracking_total_prefixes"),
    ("connected_slaves", "connected_slaves"),
    ("repl_backlog_size", "replication_backlog_bytes"),
    ("repl_backlog_active", "repl_backlog_is_active"),
    (
        "repl_backlog_first_byte_offset",
        "repl_backlog_first_byte_offset",
    ),
    ("repl_backlog_histlen", "repl_backlog_history_bytes"),
    ("master_repl_offset", "master_repl_offset"),
    ("second_repl_offset", "second_repl_offset"),
    ("slave_expires_tracked_keys", "slave_expires_tracked_keys"),
    ("slave_priority", "slave_priority"),
    ("sync_full", "replica_resyncs_full"),
    ("sync_partial_ok", "replica_partial_resync_accepted"),
    ("sync_partial_err", "replica_partial_resync_denied"),
    ("cluster_enabled", "cluster_enabled"),
];

/// Plain numeric fields exported as counters.
const COUNTERS: &[(&str, &str)] = &[
    ("total_connections_received", "connections_received_total"),
    ("total_commands_processed", "commands_processed_total"),
    ("rejected_connections", "rejected_connections_total"),
    ("total_net_input_bytes", "net_input_bytes_total"),
    ("total_net_output_bytes", "net_output_bytes_total"),
    ("total_net_repl_input_bytes", "net_repl_input_bytes_total"),
    ("total_net_repl_output_bytes", "net_repl_output_bytes_total"),
    ("expired_keys", "expired_keys_total"),
    (
        "expired_time_cap_reached_count",
        "expired_time_cap_reached_total",
    ),
    (
        "expire_cycle_cpu_milliseconds",
        "expire_cycle_cpu_time_ms_total",
    ),
    ("evicted_keys", "evicted_keys_total"),
    ("evicted_clients", "evicted_clients_total"),
    (
        "total_eviction_exceeded_time",
        "eviction_exceeded_time_ms_total",
    ),
    ("keyspace_hits", "keyspace_hits_total"),
    ("keyspace_misses", "keyspace_misses_total"),
    ("used_cpu_sys", "cpu_sys_seconds_total"),
    ("used_cpu_user", "cpu_user_seconds_total"),
    ("used_cpu_sys_children", "cpu_sys_children_seconds_total"),
    ("used_cpu_user_children", "cpu_user_children_seconds_total"),
    (
        "used_cpu_sys_main_thread",
        "cpu_sys_main_thread_seconds_total",
    ),
    (
        "used_cpu_user_main_thread",
        "cpu_user_main_thread_seconds_total",
    ),
    ("unexpected_error_replies", "unexpected_error_replies"),
    ("total_error_replies", "total_error_replies"),
    ("dump_payload_sanitizations", "dump_payload_sanitizations"),
    ("total_reads_processed", "total_reads_processed"),
    ("total_writes_processed", "total_writes_processed"),
    ("io_threaded_reads_processed", "io_threaded_reads_processed"),
    (
        "io_threaded_writes_processed",
        "io_threaded_writes_processed",
    ),
    ("reply_buffer_shrinks", "reply_buffer_shrinks_total"),
    ("reply_buffer_expands", "reply_buffer_expands_total"),
];

/// Rampart's own INFO fields: (field, full metric name, is a counter).
const RAMPART: &[(&str, &str, bool)] = &[
    ("mem_locked", "rampart_mem_locked", false),
    ("core_dumps", "rampart_core_dumps_enabled", false),
    ("backup_in_progress", "rampart_backup_in_progress", false),
    (
        "backup_last_success_time",
        "rampart_backup_last_success_timestamp_seconds",
        false,
    ),
    (
        "backup_last_success_size",
        "rampart_backup_last_success_size_bytes",
        false,
    ),
    ("backups_created", "rampart_backups_created_total", true),
    ("backups_failed", "rampart_backups_failed_total", true),
];

/// One family being built: its help, type and samples, the labels of
/// each already in the text format.
struct Family {
    help: String,
    counter: bool,
    samples: Vec<(String, f64)>,
}

/// Families being built, kept in name order so the output is stable.
///
/// Written straight to Prometheus's text format by [`Builder::write_text`]
/// (a scrape builds no protobuf families: each sample was a `Metric`,
/// a `Vec` of `LabelPair`s and their `String`s, only to be formatted
/// again); [`Builder::finish`] gives the families for tests and callers
/// that want them.
#[derive(Default)]
pub(crate) struct Builder {
    families: BTreeMap<String, Family>,
}

impl Builder {
    /// Adds one sample to the family `name`, creating the family (with
    /// `help` and the counter/gauge type) on first use.
    pub(crate) fn add(
        &mut self,
        name: &str,
        help: &str,
        counter: bool,
        labels: &[(&str, &str)],
        v: f64,
    ) {
        let mut text = String::new();
        for (i, (k, val)) in labels.iter().enumerate() {
            text.push_str(if i == 0 { "{" } else { "," });
            text.push_str(k);
            text.push_str("=\"");
            escape_into(&mut text, val, true);
            text.push('"');
        }
        if !labels.is_empty() {
            text.push('}');
        }
        let family = match self.families.get_mut(name) {
            Some(f) => f,
            None => self.families.entry(name.to_string()).or_insert(Family {
                help: help.to_string(),
                counter,
                samples: Vec::new(),
            }),
        };
        family.samples.push((text, v));
    }

    /// Appends the families to `out` in Prometheus's text format, byte for
    /// byte as `prometheus::TextEncoder` writes them.
    pub(crate) fn write_text(&self, out: &mut String) {
        for (name, f) in &self.families {
            if !f.help.is_empty() {
                out.push_str("# HELP ");
                out.push_str(name);
                out.push(' ');
                escape_into(out, &f.help, false);
                out.push('\n');
            }
            out.push_str("# TYPE ");
            out.push_str(name);
            out.push_str(if f.counter { " counter\n" } else { " gauge\n" });
            for (labels, v) in &f.samples {
                out.push_str(name);
                out.push_str(labels);
                out.push(' ');
                write_value(out, *v);
                out.push('\n');
            }
        }
    }

    /// The families built, ordered by name.
    pub(crate) fn finish(self) -> Vec<MetricFamily> {
        self.families
            .into_iter()
            .map(|(name, f)| {
                let mut fam = MetricFamily::default();
                fam.set_name(name);
                fam.set_help(f.help);
                fam.set_field_type(if f.counter {
                    MetricType::COUNTER
                } else {
                    MetricType::GAUGE
                });
                for (labels, v) in f.samples {
                    let mut m = Metric::default();
                    m.set_label(parse_labels(&labels));
                    if f.counter {
                        let mut c = Counter::default();
                        c.set_value(v);
                        m.set_counter(c);
                    } else {
                        let mut g = Gauge::default();
                        g.set_value(v);
                        m.set_gauge(g);
                    }
                    fam.mut_metric().push(m);
                }
                fam
            })
            .collect()
    }
}

/// Appends `v` as f64's `Display` writes it (the encoder's
/// `value.to_string()`); most values are whole numbers, which an integer
/// formats the same way without the float algorithm.
fn write_value(out: &mut String, v: f64) {
    // Exact as an i64 below 2^53; -0.0 displays as "-0", which an i64
    // would not.
    if v.fract() == 0.0 && v.abs() < 9.0e15 && !(v == 0.0 && v.is_sign_negative()) {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Appends `v` escaped as the text format wants: backslash and newline
/// always, the double quote inside label values.
fn escape_into(out: &mut String, v: &str, quote: bool) {
    // Nearly every value needs no escape: copy it whole.
    if !v
        .bytes()
        .any(|b| b == b'\\' || b == b'\n' || (quote && b == b'"'))
    {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
}

/// The label pairs of a rendered `{k="v",…}` (as [`Builder::add`] writes
/// them), unescaped.
fn parse_labels(text: &str) -> Vec<LabelPair> {
    let mut pairs = Vec::new();
    let mut rest = text.strip_prefix('{').unwrap_or("");
    while let Some((k, after)) = rest.split_once("=\"") {
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => val.push('\n'),
                    Some((_, e)) => val.push(e),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                _ => val.push(c),
            }
        }
        let mut l = LabelPair::default();
        l.set_name(k.to_string());
        l.set_value(val);
        pairs.push(l);
        rest = after[end..].trim_start_matches([',', '}']);
    }
    pairs
}

/// Where an INFO field goes: full metric name, help, counter or gauge.
struct Mapped {
    name: String,
    help: String,
    counter: bool,
}

/// [`GAUGES`], [`COUNTERS`] and [`RAMPART`] by INFO field, names and help
/// texts made once rather than formatted for every field of every scrape.
static MAPPED: LazyLock<HashMap<&'static str, Mapped>> = LazyLock::new(|| {
    let mut m = HashMap::new();
    let gauges = GAUGES
        .iter()
        .map(|(f, n)| (*f, format!("redis_{n}"), false));
    let counters = COUNTERS
        .iter()
        .map(|(f, n)| (*f, format!("redis_{n}"), true));
    let rampart = RAMPART.iter().map(|(f, n, c)| (*f, n.to_string(), *c));
    // The first entry of a field wins, as the lookup in that order did.
    for (field, name, counter) in gauges.chain(counters).chain(rampart) {
        m.entry(field).or_insert(Mapped {
            name,
            help: format!("INFO field {field}"),
            counter,
        });
    }
    m
});

/// INFO fields that become labels of `redis_instance_info` and
/// `redis_slave_info`.
const LABEL_FIELDS: &[&str] = &[
    "role",
    "redis_version",
    "redis_build_id",
    "redis_mode",
    "os",
    "maxmemory_policy",
    "tcp_port",
    "run_id",
    "process_id",
    "master_replid",
    "master_host",
    "master_port",
    "slave_read_only",
];

/// A field's value as `redis_exporter` reads it: a number, or ok/err-style
/// words (and Rampart's enabled/disabled) as 1/0.
fn value(v: &str) -> Option<f64> {
    match v {
        "ok" | "true" | "enabled" => Some(1.0),
        "err" | "fail" | "false" | "disabled" => Some(0.0),
        _ => v.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

/// `a=1,b=2` → the value of `key`.
fn sub<'a>(v: &'a str, key: &str) -> Option<&'a str> {
    v.split(',').find_map(|kv| {
        let (k, val) = kv.split_once('=')?;
        (k == key).then_some(val)
    })
}

/// Builds the families of an INFO text (sections as `INFO everything`
/// prints them). `now_secs` is the current Unix time, for
/// `redis_start_time_seconds`.
///
/// ```
/// use rampart_server::metrics::info_families;
/// let fams = info_families("# Stats\r\nkeyspace_hits:7\r\n# Keyspace\r\ndb3:keys=2,expires=1,avg_ttl=0\r\n", 0);
/// let hits = fams.iter().find(|f| f.name() == "redis_keyspace_hits_total").unwrap();
/// assert_eq!(hits.get_metric()[0].get_counter().get_value(), 7.0);
/// let keys = fams.iter().find(|f| f.name() == "redis_db_keys").unwrap();
/// assert_eq!(keys.get_metric()[0].get_label()[0].value(), "db3");
/// ```
pub fn info_families(info: &str, now_secs: u64) -> Vec<MetricFamily> {
    build(info, now_secs).finish()
}

/// The families of an INFO text, appended to `out` in the text format
/// (what [`info_families`] holds, encoded).
pub(crate) fn write_info_text(info: &str, now_secs: u64, out: &mut String) {
    build(info, now_secs).write_text(out);
}

fn build(info: &str, now_secs: u64) -> Builder {
    let mut b = Builder::default();
    b.add(
        "redis_up",
        "Information about the Redis instance",
        false,
        &[],
        1.0,
    );
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    let mut section = "";
    let mut master = ("", "");
    for line in info.lines() {
        let line = line.trim();
        if let Some(s) = line.strip_prefix("# ") {
            section = s;
            continue;
        }
        let Some((key, val)) = line.split_once(':') else {
            continue;
        };
        if LABEL_FIELDS.contains(&key) {
            fields.insert(key, val);
        }
        match (section, key) {
            ("Commandstats", _) => {
                let Some(cmd) = key.strip_prefix("cmdstat_") else {
                    continue;
                };
                let num = |k: &str| sub(val, k).and_then(value);
                let labels = [("cmd", cmd)];
                if let (Some(calls), Some(usec)) = (num("calls"), num("usec")) {
                    b.add(
                        "redis_commands_total",
                        "Total number of calls per command",
                        true,
                        &labels,
                        calls,
                    );
                    b.add(
                        "redis_commands_duration_seconds_total",
                        "Total amount of time in seconds spent per command",
                        true,
                        &labels,
                        usec / 1e6,
                    );
                }
                if let Some(n) = num("rejected_calls") {
                    b.add(
                        "redis_commands_rejected_calls_total",
                        "Total number of errors within command execution per command",
                        true,
                        &labels,
                        n,
                    );
                }
                if let Some(n) = num("failed_calls") {
                    b.add(
                        "redis_commands_failed_calls_total",
                        "Total number of errors prior command execution per command",
                        true,
                        &labels,
                        n,
                    );
                }
                continue;
            }
            ("Errorstats", _) => {
                if let (Some(err), Some(n)) = (
                    key.strip_prefix("errorstat_"),
                    sub(val, "count").and_then(value),
                ) {
                    b.add(
                        "redis_errors_total",
                        "Total number of errors per error type",
                        true,
                        &[("err", err)],
                        n,
                    );
                }
                continue;
            }
            ("Keyspace", _) => {
                if key.starts_with("db") {
                    let labels = [("db", key)];
                    if let Some(n) = sub(val, "keys").and_then(value) {
                        b.add(
                            "redis_db_keys",
                            "Total number of keys by DB",
                            false,
                            &labels,
                            n,
                        );
                    }
                    if let Some(n) = sub(val, "expires").and_then(value) {
                        b.add(
                            "redis_db_keys_expiring",
                            "Total number of expiring keys by DB",
                            false,
                            &labels,
                            n,
                        );
                    }
                    if let Some(n) = sub(val, "avg_ttl").and_then(value) {
                        b.add(
                            "redis_db_avg_ttl_seconds",
                            "Avg TTL in seconds",
                            false,
                            &labels,
                            n / 1000.0,
                        );
                    }
                }
                continue;
            }
            ("Replication", "master_host") => master.0 = val,
            ("Replication", "master_port") => master.1 = val,
            ("Replication", "master_link_status") => {
                let labels = [("master_host", master.0), ("master_port", master.1)];
                let up = f64::from(u8::from(val == "up"));
                b.add(
                    "redis_master_link_up",
                    "Master link status on Redis slave",
                    false,
                    &labels,
                    up,
                );
                continue;
            }
            (
                "Replication",
                "master_last_io_seconds_ago" | "master_sync_in_progress" | "slave_repl_offset",
            ) => {
                let labels = [("master_host", master.0), ("master_port", master.1)];
                if let Some(n) = value(val) {
                    b.add(&format!("redis_{key}"), key, false, &labels, n);
                }
                continue;
            }
            ("Replication", k)
                if k.starts_with("slave")
                    && k[5..].bytes().all(|c| c.is_ascii_digit())
                    && k.len() > 5 =>
            {
                let labels = [
                    ("slave_ip", sub(val, "ip").unwrap_or("")),
                    ("slave_port", sub(val, "port").unwrap_or("")),
                    ("slave_state", sub(val, "state").unwrap_or("")),
                ];
                if let Some(n) = sub(val, "offset").and_then(value) {
                    b.add(
                        "redis_connected_slave_offset_bytes",
                        "Offset of connected slave",
                        false,
                        &labels,
                        n,
                    );
                }
                if let Some(n) = sub(val, "lag").and_then(value) {
                    b.add(
                        "redis_connected_slave_lag_seconds",
                        "Lag of connected slave",
                        false,
                        &labels,
                        n,
                    );
                }
                continue;
            }
            _ => {}
        }
        if key == "latest_fork_usec" {
            if let Some(n) = value(val) {
                b.add(
                    "redis_latest_fork_seconds",
                    "latest_fork_usec",
                    false,
                    &[],
                    n / 1e6,
                );
            }
            continue;
        }
        if key == "uptime_in_seconds" {
            if let Some(n) = value(val) {
                b.add(
                    "redis_start_time_seconds",
                    "Start time of the Redis instance since unix epoch in seconds.",
                    false,
                    &[],
                    now_secs as f64 - n,
                );
            }
        }
        if let (Some(m), Some(n)) = (MAPPED.get(key), value(val)) {
            b.add(&m.name, &m.help, m.counter, &[], n);
        }
    }
    let get = |k: &str| fields.get(k).copied().unwrap_or("");
    let info_labels = [
        ("role", get("role")),
        ("redis_version", get("redis_version")),
        ("redis_build_id", get("redis_build_id")),
        ("redis_mode", get("redis_mode")),
        ("os", get("os")),
        ("maxmemory_policy", get("maxmemory_policy")),
        ("tcp_port", get("tcp_port")),
        ("run_id", get("run_id")),
        ("process_id", get("process_id")),
        ("master_replid", get("master_replid")),
    ];
    b.add(
        "redis_instance_info",
        "Information about the Redis instance",
        false,
        &info_labels,
        1.0,
    );
    if get("role") == "slave" {
        b.add(
            "redis_slave_info",
            "Information about the Redis slave",
            false,
            &[
                ("master_host", get("master_host")),
                ("master_port", get("master_port")),
                ("read_only", get("slave_read_only")),
            ],
            1.0,
        );
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(f: &'a [MetricFamily], name: &str) -> &'a MetricFamily {
        f.iter()
            .find(|x| x.name() == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn maps_redis_exporter_names() {
        let info = "# Server\r\nuptime_in_seconds:10\r\n# Clients\r\nconnected_clients:3\r\n# Persistence\r\nrdb_last_bgsave_status:ok\r\n# Stats\r\ntotal_commands_processed:42\r\n# Replication\r\nrole:master\r\nconnected_slaves:1\r\nslave0:ip=10.0.0.1,port=6380,state=online,offset=99,lag=1\r\n# Commandstats\r\ncmdstat_config|get:calls=2,usec=30,usec_per_call=15.00,rejected_calls=0,failed_calls=1\r\n# Errorstats\r\nerrorstat_ERR:count=4\r\n# Keyspace\r\ndb0:keys=5,expires=2,avg_ttl=1500\r\n";
        let f = info_families(info, 100);
        assert_eq!(
            find(&f, "redis_connected_clients").get_metric()[0]
                .get_gauge()
                .get_value(),
            3.0
        );
        assert_eq!(
            find(&f, "redis_start_time_seconds").get_metric()[0]
                .get_gauge()
                .get_value(),
            90.0
        );
        assert_eq!(
            find(&f, "redis_rdb_last_bgsave_status").get_metric()[0]
                .get_gauge()
                .get_value(),
            1.0
        );
        let c = find(&f, "redis_commands_processed_total");
        assert_eq!(c.get_field_type(), MetricType::COUNTER);
        let d = find(&f, "redis_commands_duration_seconds_total");
        assert_eq!(d.get_metric()[0].get_label()[0].value(), "config|get");
        assert!((d.get_metric()[0].get_counter().get_value() - 0.00003).abs() < 1e-12);
        let lag = find(&f, "redis_connected_slave_lag_seconds");
        let l: Vec<_> = lag.get_metric()[0]
            .get_label()
            .iter()
            .map(|l| (l.name(), l.value()))
            .collect();
        assert_eq!(
            l,
            [
                ("slave_ip", "10.0.0.1"),
                ("slave_port", "6380"),
                ("slave_state", "online")
            ]
        );
        assert_eq!(
            find(&f, "redis_db_avg_ttl_seconds").get_metric()[0]
                .get_gauge()
                .get_value(),
            1.5
        );
        assert_eq!(
            find(&f, "redis_errors_total").get_metric()[0]
                .get_counter()
                .get_value(),
            4.0
        );
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&f)
            .unwrap_or_default();
        assert!(text.contains("redis_db_keys{db=\"db0\"} 5\n"), "{text}");
    }

    #[test]
    fn text_is_what_the_encoder_writes() {
        let info = "# Server\r\nredis_version:7.0.0\r\nos:Linux \"x\\y\"\r\nuptime_in_seconds:10\r\n# Clients\r\nconnected_clients:3\r\n# Memory\r\nmem_fragmentation_ratio:1.25\r\nused_memory:123456789012\r\n# Replication\r\nrole:slave\r\nmaster_host:h\nx\r\nmaster_port:1\r\nmaster_link_status:up\r\nslave_repl_offset:5\r\nslave0:ip=a\\b,port=2,state=online,offset=9,lag=0\r\n# Commandstats\r\ncmdstat_config|get:calls=2,usec=30,usec_per_call=15.00,rejected_calls=0,failed_calls=1\r\ncmdstat_set:calls=7,usec=1,usec_per_call=0.14,rejected_calls=0,failed_calls=0\r\n# Errorstats\r\nerrorstat_ERR:count=4\r\n# Keyspace\r\ndb0:keys=5,expires=2,avg_ttl=1500\r\ndb15:keys=1,expires=0,avg_ttl=0\r\n";
        let want = prometheus::TextEncoder::new()
            .encode_to_string(&info_families(info, 100))
            .unwrap_or_default();
        let mut got = String::new();
        write_info_text(info, 100, &mut got);
        assert_eq!(got, want);
        assert!(got.contains("slave_ip=\"a\\\\b\""), "{got}");
    }

    #[test]
    fn values_display_as_f64_does() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -7.0,
            1.5,
            0.00003,
            1e15,
            8.9e15,
            9.0e15,
            1e16,
            123456789012.0,
            f64::MAX,
            f64::MIN_POSITIVE,
        ] {
            let mut s = String::new();
            write_value(&mut s, v);
            assert_eq!(s, v.to_string(), "{v:?}");
        }
    }

    #[test]
    fn garbage_is_skipped() {
        let f = info_families("# Stats\r\nkeyspace_hits:x\r\n::\r\nslave:\r\nslave0:garbage\r\n# Keyspace\r\ndbx:keys=\r\n", 0);
        assert!(f.iter().all(|x| !x.get_metric().is_empty()));
        assert!(f.iter().all(|x| x.name() != "redis_keyspace_hits_total"));
    }
}
