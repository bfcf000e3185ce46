//! MEMORY: USAGE STATS DOCTOR MALLOC-STATS PURGE HELP, with the figures of
//! Redis's `getMemoryOverheadData` computed for this server's layout.

use super::flags::*;
use super::{container_spec, err, help, spec, CommandSpec, Ctx};
use crate::info::Overhead;

/// `MEMORY USAGE key [SAMPLES count]`: the key's node, key and value
/// bytes (every element is counted; SAMPLES is checked as Redis checks it).
fn usage(ctx: &mut Ctx<'_>) {
    let mut j = 3;
    while j < ctx.args.len() {
        if ctx.args[j].eq_ignore_ascii_case(b"samples") && j + 1 < ctx.args.len() {
            match crate::num::parse_i64(&ctx.args[j + 1]) {
                None => return ctx.out.error(err::NOT_INT),
                Some(n) if n < 0 => return ctx.out.error(err::SYNTAX),
                Some(_) => {}
            }
            j += 2;
        } else {
            return ctx.out.error(err::SYNTAX);
        }
    }
    let bytes = ctx
        .db()
        .get(&ctx.args[2], ctx.now, |n| n.map(|n| n.mem_usage()));
    match bytes {
        Some(b) => ctx.out.int(b as i64),
        None => ctx.out.null(),
    }
}

/// `MEMORY STATS`
fn stats(ctx: &mut Ctx<'_>) {
    let m = Overhead::read(ctx.srv);
    let out = &mut *ctx.out;
    out.map_len(27 + m.dbs.len());
    let int = |out: &mut crate::resp::Out, k: &str, v: u64| {
        out.bulk(k.as_bytes());
        out.int(v as i64);
    };
    int(out, "peak.allocated", m.peak);
    int(out, "total.allocated", m.total);
    int(out, "startup.allocated", m.startup);
    int(out, "replication.backlog", m.backlog);
    int(out, "clients.slaves", m.clients_replicas);
    int(out, "clients.normal", m.clients_normal);
    int(out, "cluster.links", 0);
    int(out, "aof.buffer", 0);
    int(out, "lua.caches", 0);
    int(out, "functions.caches", 0);
    for (db, table) in &m.dbs {
        out.bulk(format!("db.{db}").as_bytes());
        out.map_len(3);
        int(out, "overhead.hashtable.main", *table);
        int(out, "overhead.hashtable.expires", 0);
        int(out, "overhead.hashtable.slot-to-keys", 0);
    }
    int(out, "overhead.total", m.overhead());
    int(out, "keys.count", m.keys);
    int(out, "keys.bytes-per-key", m.bytes_per_key());
    int(out, "dataset.bytes", m.dataset());
    let dbl = |out: &mut crate::resp::Out, k: &str, v: f64| {
        out.bulk(k.as_bytes());
        out.double(v);
    };
    dbl(out, "dataset.percentage", m.dataset_perc());
    dbl(out, "peak.percentage", m.peak_perc());
    int(out, "allocator.allocated", m.total);
    int(out, "allocator.active", m.active);
    int(out, "allocator.resident", m.resident);
    dbl(
        out,
        "allocator-fragmentation.ratio",
        ratio(m.active, m.total),
    );
    int(
        out,
        "allocator-fragmentation.bytes",
        m.active.saturating_sub(m.total),
    );
    dbl(out, "allocator-rss.ratio", ratio(m.resident, m.active));
    int(
        out,
        "allocator-rss.bytes",
        m.resident.saturating_sub(m.active),
    );
    dbl(out, "rss-overhead.ratio", ratio(m.rss, m.resident));
    int(out, "rss-overhead.bytes", m.rss.saturating_sub(m.resident));
    dbl(out, "fragmentation", ratio(m.rss, m.total));
    int(out, "fragmentation.bytes", m.rss.saturating_sub(m.total));
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// `MEMORY DOCTOR`: Redis's checks and words, on our figures.
fn doctor(ctx: &mut Ctx<'_>) {
    let mut m = Overhead::read(ctx.srv);
    // Resident memory Rampart had outside the allocator when it started
    // (its code, thread stacks) is not an issue the doctor can treat.
    m.rss = m.rss.saturating_sub(crate::info::startup_rss_extra());
    let ten_mb = 10 << 20;
    let replicas = ctx.srv.repl.replicas().len() as u64;
    let clients = (ctx.srv.clients.len() as u64)
        .saturating_sub(replicas)
        .max(1);
    let mut issues: Vec<&str> = Vec::new();
    // Redis calls an instance under 5 MB empty; Rampart's tables alone
    // take more than that before the first key, so what counts is the
    // memory used since startup.
    let empty = m.total.saturating_sub(m.startup) < 5 << 20;
    if !empty {
        if m.peak as f64 / m.total as f64 > 1.5 {
            issues.push(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
        }
        if ratio(m.rss, m.total) > 1.4 && m.rss.saturating_sub(m.total) > ten_mb {
            issues.push(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"jemalloc-5.3.0\".\n\n");
        }
        if ratio(m.active, m.total) > 1.1 && m.active.saturating_sub(m.total) > ten_mb {
            issues.push(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n");
        }
        if ratio(m.resident, m.active) > 1.1 && m.resident.saturating_sub(m.active) > ten_mb {
            issues.push(" * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n");
        }
        if ratio(m.rss, m.resident) > 1.1 && m.rss.saturating_sub(m.resident) > ten_mb {
            issues.push(" * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n");
        }
        if replicas > 0 && m.clients_replicas > ten_mb {
            issues.push(" * Big replica buffers: The replica output buffers in this instance are greater than 10MB for each replica (on average). This likely means that there is some replica instance that is struggling receiving data, either because it is too slow or because of networking issues. As a result, data piles on the master output buffers. Please try to identify what replica is not receiving data correctly and why. You can use the INFO output in order to check the replicas delays and the CLIENT LIST command to check the output buffers of each replica.\n\n");
        }
        if m.clients_normal / clients > 200 * 1024 {
            issues.push(" * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n");
        }
    }
    let report = if empty {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".to_string()
    } else if issues.is_empty() {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".to_string()
    } else {
        let mut s =
            "Sam, I detected a few issues in this Redis instance memory implants:\n\n".to_string();
        s.extend(issues);
        s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
        s
    };
    ctx.out.verbatim(report.as_bytes());
}

/// `MEMORY MALLOC-STATS`: jemalloc's own report.
fn malloc_stats(ctx: &mut Ctx<'_>) {
    let mut text = Vec::new();
    let opts = tikv_jemalloc_ctl::stats_print::Options::default();
    if tikv_jemalloc_ctl::stats_print::stats_print(&mut text, opts).is_err() {
        text = b"Stats not supported for the current allocator".to_vec();
    }
    ctx.out.verbatim(&text);
}

/// `MEMORY PURGE`: jemalloc's background threads (`jemalloc-bg-thread
/// yes`, the default) already return dirty pages to the system; this
/// advances its statistics epoch so the next figures show it.
fn purge(ctx: &mut Ctx<'_>) {
    let _ = tikv_jemalloc_ctl::epoch::advance();
    ctx.out.ok();
}

/// `MEMORY HELP`
fn memory_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
}

const S: &str = "server";

static MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    spec("doctor", 2, 0, (0, 0, 0), S, doctor),
    spec("help", 2, LOADING | STALE, (0, 0, 0), S, memory_help),
    spec("malloc-stats", 2, 0, (0, 0, 0), S, malloc_stats),
    spec("purge", 2, 0, (0, 0, 0), S, purge),
    spec("stats", 2, 0, (0, 0, 0), S, stats),
    spec("usage", -3, READONLY, (2, 2, 1), S, usage),
];

/// The MEMORY family.
pub static COMMANDS: &[CommandSpec] = &[container_spec("memory", -2, 0, S, MEMORY_SUBCOMMANDS)];
