//! INFO: Redis's sections and field names, so monitoring tools and client
//! libraries that parse INFO keep working.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use rampart_keyspace::db::DbStats;

use crate::state::{now_ms, Server};

/// Sections in Redis's order, and whether each is in the default set.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
    // Rampart's own, last so Redis's sections keep their order.
    ("backup", true),
];

/// Renders INFO for the requested section names (empty = default).
pub fn render(srv: &Server, wanted: &[String]) -> String {
    let wanted: Vec<String> = wanted.iter().map(|w| w.to_ascii_lowercase()).collect();
    let all = wanted.iter().any(|w| w == "all" || w == "everything");
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let mut out = String::new();
    // Memory and keyspace both want every database's sizes: read once.
    let dbs = std::cell::OnceCell::new();
    for (name, in_default) in SECTIONS {
        let on = all || (default && *in_default) || wanted.iter().any(|w| w == name);
        if !on {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        section(srv, name, &dbs, &mut out);
    }
    out
}

/// [`rampart_keyspace::db::Db::stats`] of every database, in order.
pub fn db_stats(srv: &Server) -> Vec<DbStats> {
    (0..srv.keyspace.len())
        .map(|i| srv.keyspace.db(i).stats())
        .collect()
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

/// Bytes allocated by the process (jemalloc's `stats.allocated`); every
/// reading also raises the recorded peak.
pub fn used_memory() -> u64 {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    let used = tikv_jemalloc_ctl::stats::allocated::read().unwrap_or(0) as u64;
    PEAK.fetch_max(used, std::sync::atomic::Ordering::Relaxed);
    used
}

/// The highest `used_memory` seen (INFO `used_memory_peak`).
static PEAK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// `used_memory` when the server became ready (`used_memory_startup`).
static STARTUP: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Resident memory outside the allocator at startup (the binary's pages,
/// thread stacks): MEMORY DOCTOR judges what grew beyond it.
static STARTUP_RSS_EXTRA: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// See [`STARTUP_RSS_EXTRA`].
pub fn startup_rss_extra() -> u64 {
    STARTUP_RSS_EXTRA.load(std::sync::atomic::Ordering::Relaxed)
}

/// The databases' table bytes at startup, which `used_memory_startup`
/// already holds (Rampart's tables exist before the first key).
static STARTUP_TABLES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn table_bytes(srv: &Server) -> u64 {
    (0..srv.keyspace.len())
        .map(|i| srv.keyspace.db(i).table_bytes() as u64)
        .sum()
}

/// Records the startup figures; called once the server is ready.
pub fn mark_startup(srv: &Server) {
    STARTUP_TABLES.store(table_bytes(srv), std::sync::atomic::Ordering::Relaxed);
    let resident = tikv_jemalloc_ctl::stats::resident::read().unwrap_or(0) as u64;
    STARTUP_RSS_EXTRA.store(
        rss().saturating_sub(resident),
        std::sync::atomic::Ordering::Relaxed,
    );
    STARTUP.store(used_memory(), std::sync::atomic::Ordering::Relaxed);
}

/// The memory figures of Redis's `getMemoryOverheadData`, for MEMORY
/// STATS, MEMORY DOCTOR and INFO memory.
pub struct Overhead {
    /// used_memory
    pub total: u64,
    /// The highest used_memory seen.
    pub peak: u64,
    /// used_memory at startup.
    pub startup: u64,
    /// The replication backlog's bytes.
    pub backlog: u64,
    /// Replicas' pending output.
    pub clients_replicas: u64,
    /// Normal clients' buffers.
    pub clients_normal: u64,
    /// (db index, table bytes) of each database holding keys.
    pub dbs: Vec<(usize, u64)>,
    /// Table bytes grown since startup.
    pub tables_grown: u64,
    /// Keys in all databases.
    pub keys: u64,
    /// jemalloc's active and resident bytes.
    pub active: u64,
    /// See `active`.
    pub resident: u64,
    /// The process's resident set.
    pub rss: u64,
}

impl Overhead {
    /// Reads the figures now.
    pub fn read(srv: &Server) -> Overhead {
        Overhead::read_with(srv, &db_stats(srv))
    }

    /// Reads the figures now, given every database's sizes ([`db_stats`]).
    pub fn read_with(srv: &Server, stats: &[DbStats]) -> Overhead {
        let total = used_memory();
        let mut dbs = Vec::new();
        let mut keys = 0;
        let mut tables = 0;
        for (i, st) in stats.iter().enumerate() {
            tables += st.table_bytes as u64;
            if st.keys > 0 {
                keys += st.keys as u64;
                dbs.push((i, st.table_bytes as u64));
            }
        }
        let tables_grown =
            tables.saturating_sub(STARTUP_TABLES.load(std::sync::atomic::Ordering::Relaxed));
        let (active, size, _, _) = srv.repl.backlog_info();
        Overhead {
            tables_grown,
            total,
            peak: PEAK.load(std::sync::atomic::Ordering::Relaxed).max(total),
            startup: STARTUP.load(std::sync::atomic::Ordering::Relaxed),
            // The backlog exists once a replica has connected (never at
            // startup).
            backlog: if active { size } else { 0 },
            clients_replicas: srv.repl.replica_output_bytes(),
            clients_normal: srv.client_mem.total(),
            dbs,
            keys,
            active: tikv_jemalloc_ctl::stats::active::read().unwrap_or(0) as u64,
            resident: tikv_jemalloc_ctl::stats::resident::read().unwrap_or(0) as u64,
            rss: rss(),
        }
    }

    /// Everything that is not the dataset.
    pub fn overhead(&self) -> u64 {
        self.startup
            + self.backlog
            + self.clients_replicas
            + self.clients_normal
            + self.tables_grown
    }

    /// used_memory less the overhead.
    pub fn dataset(&self) -> u64 {
        self.total.saturating_sub(self.overhead())
    }

    /// The dataset's share of what is used beyond startup (percent).
    pub fn dataset_perc(&self) -> f64 {
        let net = self.total.saturating_sub(self.startup);
        if net == 0 {
            0.0
        } else {
            self.dataset() as f64 * 100.0 / net as f64
        }
    }

    /// used_memory as a share of the peak (percent).
    pub fn peak_perc(&self) -> f64 {
        if self.peak == 0 {
            0.0
        } else {
            self.total as f64 * 100.0 / self.peak as f64
        }
    }

    /// Bytes used beyond startup per key.
    pub fn bytes_per_key(&self) -> u64 {
        self.total.saturating_sub(self.startup) / self.keys.max(1) * (self.keys > 0) as u64
    }
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// The executable's path, read once: a readlink per INFO is a syscall in
/// every metrics scrape, and the path does not change while we run.
fn executable() -> &'static str {
    static EXE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    EXE.get_or_init(|| {
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    })
}

/// The machine's memory (`total_system_memory`), read once as Redis does
/// at startup: /proc/meminfo is slow to generate, and every scrape read it.
fn system_memory() -> u64 {
    static TOTAL: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOTAL.get_or_init(read_system_memory)
}

fn read_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|k| k.parse::<u64>().ok())
                })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// (system, user) CPU seconds of this process, from /proc/self/stat
/// (no `unsafe` getrusage needed).
fn cpu_times() -> (f64, f64) {
    let ticks = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces: fields are counted after its ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / ticks;
    // utime and stime are fields 14 and 15; field 3 is the first after ')'.
    (get(12), get(11))
}

fn section(srv: &Server, name: &str, dbs: &std::cell::OnceCell<Vec<DbStats>>, o: &mut String) {
    let dbs = || dbs.get_or_init(|| db_stats(srv)).as_slice();
    let now = now_ms();
    let uptime = srv.started.elapsed().as_secs();
    let c = &srv.config;
    let s = &srv.stats;
    match name {
        "server" => {
            let exe = executable();
            let cfg = c
                .file
                .read()
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let _ = write!(
                o,
                "# Server\r\nredis_version:{}\r\nrampart_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:64\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\nmem_locked:{}\r\ncore_dumps:{}\r\n",
                crate::REDIS_VERSION,
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                crate::supervise::mode_name(),
                srv.run_id,
                srv.port.load(Ordering::Relaxed),
                now * 1000,
                uptime,
                uptime / 86400,
                c.hot.hz.load(Ordering::Relaxed),
                c.int("hz"),
                (now / 1000) & ((1 << 24) - 1),
                exe,
                cfg,
                u8::from(crate::harden::mem_locked()),
                if crate::harden::core_dumps_enabled() {
                    "enabled"
                } else {
                    "disabled"
                }
            );
        }
        "clients" => {
            let (peak_in, peak_out) = srv.client_mem.recent_peaks();
            let _ = write!(
                o,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:{}\r\nclient_recent_max_output_buffer:{}\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:0\r\n",
                srv.clients.len(),
                c.int("maxclients"),
                peak_in,
                peak_out,
                srv.hooks.blocked.count(),
                srv.tracking.tracking_clients.load(Ordering::Relaxed)
            );
        }
        "memory" => {
            let m = Overhead::read_with(srv, dbs());
            let used = m.total;
            let rss = m.rss;
            let sys = system_memory();
            let replicas = m.clients_replicas;
            let maxmem = c.int("maxmemory").max(0) as u64;
            let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
            let less = |a: u64, b: u64| a as i64 - b as i64;
            // Every field Redis 7.0 prints, in its order, so monitoring
            // that parses INFO finds them; the functions' library
            // overhead is not measured, hence that zero.
            let (lua_vm, lua_scripts, lua_count) = srv.scripting.memory();
            let fn_vm = srv.scripting.functions_vm_memory();
            let vm_total = lua_vm + fn_vm;
            let (fn_count, lib_count) = srv.scripting.function_counts();
            let _ = write!(
                o,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:{:.2}%\r\nused_memory_overhead:{}\r\nused_memory_startup:{}\r\nused_memory_dataset:{}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{used}\r\nallocator_active:{}\r\nallocator_resident:{}\r\ntotal_system_memory:{sys}\r\ntotal_system_memory_human:{}\r\nused_memory_lua:{lua_vm}\r\nused_memory_vm_eval:{lua_vm}\r\nused_memory_lua_human:{}\r\nused_memory_scripts_eval:{lua_scripts}\r\nnumber_of_cached_scripts:{lua_count}\r\nnumber_of_functions:{fn_count}\r\nnumber_of_libraries:{lib_count}\r\nused_memory_vm_functions:{fn_vm}\r\nused_memory_vm_total:{vm_total}\r\nused_memory_vm_total_human:{}\r\nused_memory_functions:0\r\nused_memory_scripts:{lua_scripts}\r\nused_memory_scripts_human:{}\r\nmaxmemory:{maxmem}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_frag_ratio:{:.2}\r\nallocator_frag_bytes:{}\r\nallocator_rss_ratio:{:.2}\r\nallocator_rss_bytes:{}\r\nrss_overhead_ratio:{:.2}\r\nrss_overhead_bytes:{}\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:{replicas}\r\nmem_replication_backlog:{}\r\nmem_total_replication_buffers:{replicas}\r\nmem_clients_slaves:{replicas}\r\nmem_clients_normal:{}\r\nmem_cluster_links:0\r\nmem_aof_buffer:0\r\nmem_allocator:jemalloc-5.3.0\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
                human(used),
                human(rss),
                m.peak,
                human(m.peak),
                m.peak_perc(),
                m.overhead(),
                m.startup,
                m.dataset(),
                m.dataset_perc(),
                m.active,
                m.resident,
                human(sys),
                human(lua_vm as u64),
                human(vm_total as u64),
                human(lua_scripts as u64),
                human(maxmem),
                c.get("maxmemory-policy").unwrap_or_default(),
                ratio(m.active, used),
                less(m.active, used),
                ratio(m.resident, m.active),
                less(m.resident, m.active),
                ratio(rss, m.resident),
                less(rss, m.resident),
                ratio(rss, used),
                less(rss, used),
                m.backlog,
                m.clients_normal,
            );
        }
        "persistence" => o.push_str(&crate::persist::info(srv)),
        "backup" => o.push_str(&crate::backup::info(srv)),
        "stats" => {
            let ops = s.ops_sample.lock().2;
            let exceeded = srv.evictor.exceeded_ms();
            let (channels, patterns, shard) = srv.pubsub.sizes();
            let (tkeys, titems, tprefixes) = srv.tracking.totals();
            let _ = write!(
                o,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:0.00\r\ninstantaneous_output_kbps:0.00\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:{}\r\nevicted_clients:{}\r\ntotal_eviction_exceeded_time:{}\r\ncurrent_eviction_exceeded_time:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:0\r\ntotal_forks:0\r\nmigrate_cached_sockets:{}\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:0\r\ntotal_writes_processed:0\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n",
                s.connections.load(Ordering::Relaxed),
                s.commands.get(),
                ops.round() as u64,
                s.net_in.get(),
                s.net_out.get(),
                s.rejected.load(Ordering::Relaxed),
                srv.repl.sync_full.load(Ordering::Relaxed),
                srv.repl.sync_partial_ok.load(Ordering::Relaxed),
                srv.repl.sync_partial_err.load(Ordering::Relaxed),
                srv.hooks.expired_keys.load(Ordering::Relaxed),
                srv.evictor.evicted_keys.load(Ordering::Relaxed),
                srv.client_mem.evicted.load(Ordering::Relaxed),
                exceeded.0,
                exceeded.1,
                s.hits.get(),
                s.misses.get(),
                channels,
                patterns,
                shard,
                srv.migrate_sockets.len(),
                tkeys,
                titems,
                tprefixes,
                s.error_replies.load(Ordering::Relaxed),
            );
        }
        "replication" => o.push_str(&crate::repl::info(srv)),
        "cpu" => {
            let (sys, user) = cpu_times();
            let _ = write!(
                o,
                "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{sys:.6}\r\nused_cpu_user_main_thread:{user:.6}\r\n"
            );
        }
        "modules" => o.push_str("# Modules\r\n"),
        "commandstats" => {
            o.push_str("# Commandstats\r\n");
            let reg = &srv.commands;
            for i in 0..reg.entries.len() {
                let (calls, usec, rejected, failed) = reg.totals(i);
                if calls == 0 && rejected == 0 && failed == 0 {
                    continue;
                }
                let per = if calls > 0 {
                    usec as f64 / calls as f64
                } else {
                    0.0
                };
                let _ = write!(
                    o,
                    "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                    reg.full_name(i)
                );
            }
        }
        "errorstats" => {
            o.push_str("# Errorstats\r\n");
            for (code, n) in s.errors.lock().iter() {
                let _ = write!(o, "errorstat_{code}:count={n}\r\n");
            }
        }
        "latencystats" => {
            o.push_str("# Latencystats\r\n");
            if srv
                .latency
                .tracking
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                let percentiles = srv.latency.percentiles.lock().clone();
                let reg = &srv.commands;
                for i in 0..reg.entries.len() {
                    let Some((_, fine)) = reg.histogram(i) else {
                        continue;
                    };
                    let _ = write!(o, "latency_percentiles_usec_{}:", reg.full_name(i));
                    for (j, p) in percentiles.iter().enumerate() {
                        let v = crate::latency::percentile(&fine, *p);
                        let sep = if j + 1 < percentiles.len() { "," } else { "" };
                        let _ = write!(o, "p{}={v:.3}{sep}", crate::latency::percentile_name(*p));
                    }
                    o.push_str("\r\n");
                }
            }
        }
        "cluster" => o.push_str(if srv.cluster.get().is_some() {
            "# Cluster\r\ncluster_enabled:1\r\n"
        } else {
            "# Cluster\r\ncluster_enabled:0\r\n"
        }),
        "keyspace" => {
            o.push_str("# Keyspace\r\n");
            let avg = srv.avg_ttl.lock().clone();
            for (i, st) in dbs().iter().enumerate() {
                if st.keys == 0 {
                    continue;
                }
                let _ = write!(
                    o,
                    "db{i}:keys={},expires={},avg_ttl={}\r\n",
                    st.keys,
                    st.volatile,
                    avg.get(i).copied().unwrap_or(0)
                );
            }
        }
        _ => {}
    }
}
