//! LATENCY: DOCTOR GRAPH HISTORY LATEST RESET HISTOGRAM HELP.

use super::flags::*;
use super::{container_spec, help, spec, CommandSpec, Ctx};

/// `LATENCY HISTORY event`
fn history(ctx: &mut Ctx<'_>) {
    match ctx.srv.latency.series(&ctx.args[2]) {
        None => ctx.out.array(0),
        Some((_, ts)) => {
            let samples: Vec<_> = ts.ordered().collect();
            ctx.out.array(samples.len());
            for s in samples {
                ctx.out.array(2);
                ctx.out.int(s.time);
                ctx.out.int(s.latency as i64);
            }
        }
    }
}

/// `LATENCY GRAPH event`
fn graph(ctx: &mut Ctx<'_>) {
    match ctx.srv.latency.series(&ctx.args[2]) {
        None => {
            let event = String::from_utf8_lossy(&ctx.args[2]).into_owned();
            ctx.out
                .error(&format!("ERR No samples available for event '{event}'"))
        }
        Some((event, ts)) => {
            let g = crate::latency::graph(&event, &ts);
            ctx.out.verbatim(g.as_bytes());
        }
    }
}

/// `LATENCY LATEST`
fn latest(ctx: &mut Ctx<'_>) {
    let events = ctx.srv.latency.events.lock().clone();
    ctx.out.array(events.len());
    for (event, ts) in &events {
        let last = ts.last();
        ctx.out.array(4);
        ctx.out.bulk(event.as_bytes());
        ctx.out.int(last.time);
        ctx.out.int(last.latency as i64);
        ctx.out.int(ts.max as i64);
    }
}

/// `LATENCY DOCTOR`
fn doctor(ctx: &mut Ctx<'_>) {
    let report = crate::latency::doctor(ctx.srv);
    ctx.out.verbatim(report.as_bytes());
}

/// `LATENCY RESET [event ...]`
fn reset(ctx: &mut Ctx<'_>) {
    let l = &ctx.srv.latency;
    let n = if ctx.args.len() == 2 {
        l.reset(None)
    } else {
        ctx.args[2..].iter().map(|e| l.reset(Some(e))).sum()
    };
    ctx.out.int(n as i64);
}

/// One command's `calls` and `histogram_usec` map (Redis's
/// `fillCommandCDF`): cumulative counts, empty steps left out.
fn fill_cdf(ctx: &mut Ctx<'_>, log: &[u64]) {
    ctx.out.map_len(2);
    ctx.out.bulk(b"calls");
    ctx.out.int(log.iter().sum::<u64>() as i64);
    ctx.out.bulk(b"histogram_usec");
    ctx.out.map_len(log.iter().filter(|&&n| n > 0).count());
    let mut cumulative = 0;
    for (k, &n) in log.iter().enumerate() {
        cumulative += n;
        if n > 0 {
            ctx.out.int(crate::latency::log_bucket_key(k) as i64);
            ctx.out.int(cumulative as i64);
        }
    }
}

/// The command `name` names (`get`, `config|get`), as Redis's
/// `lookupCommandBySds`.
fn lookup(ctx: &Ctx<'_>, name: &[u8]) -> Option<usize> {
    let reg = &ctx.srv.commands;
    let mut parts = name.split(|&b| b == b'|');
    let top = reg.top(parts.next()?)?;
    match (parts.next(), parts.next()) {
        (None, _) => Some(top),
        (Some(sub), None) => reg.sub(top, sub),
        _ => None,
    }
}

/// `LATENCY HISTOGRAM [command ...]`
fn histogram(ctx: &mut Ctx<'_>) {
    let reg = &ctx.srv.commands;
    let ids: Vec<usize> = if ctx.args.len() == 2 {
        (0..reg.entries.len()).collect()
    } else {
        let mut ids = Vec::new();
        for name in &ctx.args[2..] {
            if let Some(id) = lookup(ctx, name) {
                ids.push(id);
                let subs = reg.spec(id).subcommands.len();
                if reg.entries[id].2.is_none() {
                    ids.extend(id + 1..id + 1 + subs);
                }
            }
        }
        ids
    };
    let data: Vec<(usize, Vec<u64>)> = ids
        .into_iter()
        .filter_map(|id| reg.histogram(id).map(|(log, _)| (id, log)))
        .collect();
    ctx.out.map_len(data.len());
    for (id, log) in &data {
        let name = ctx.srv.commands.full_name(*id).to_string();
        ctx.out.bulk(name.as_bytes());
        fill_cdf(ctx, log);
    }
}

/// `LATENCY HELP`
fn latency_help(ctx: &mut Ctx<'_>) {
    help(
        ctx.out,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
}

const S: &str = "server";
const A: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

static LATENCY_SUBCOMMANDS: &[CommandSpec] = &[
    spec("help", 2, LOADING | STALE, (0, 0, 0), S, latency_help),
    spec("doctor", 2, A, (0, 0, 0), S, doctor),
    spec("histogram", -2, A, (0, 0, 0), S, histogram),
    spec("reset", -2, A, (0, 0, 0), S, reset),
    spec("graph", 3, A, (0, 0, 0), S, graph),
    spec("latest", 2, A, (0, 0, 0), S, latest),
    spec("history", 3, A, (0, 0, 0), S, history),
];

/// The LATENCY family.
pub static COMMANDS: &[CommandSpec] = &[container_spec("latency", -2, 0, S, LATENCY_SUBCOMMANDS)];
