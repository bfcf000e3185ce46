//! The Prometheus exporter (`metrics-port`): the exposition parsed by a
//! strict reader of the text format, every mirrored metric compared with
//! the INFO field it mirrors, Rampart's own metrics seen moving, and the
//! HTTP listener fed bad requests.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use rampart_tests::{free_port, Rampart, RawConn};

/// One sample line.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A family: its TYPE and samples (HELP is checked, not kept).
#[derive(Debug, Default)]
struct Family {
    kind: String,
    samples: Vec<Sample>,
}

/// A parsed exposition, keyed by family name.
#[derive(Debug, Default)]
struct Exposition {
    families: BTreeMap<String, Family>,
}

fn valid_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    match chars.next() {
        Some(c) if ok_first(c) => chars.all(|c| ok_first(c) || c.is_ascii_digit()),
        _ => false,
    }
}

fn parse_value(s: &str) -> Result<f64> {
    Ok(match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => s.parse().with_context(|| format!("bad value {s:?}"))?,
    })
}

/// `{a="x",b="y\"z"}` (the text after the metric name) → labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((labels, s));
    };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').context("label without '='")?;
        let name = &rest[..eq];
        ensure!(valid_name(name, false), "bad label name {name:?}");
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .context("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => bail!("bad escape {other:?}"),
                },
                Some((_, c)) => value.push(c),
                None => bail!("unterminated label value"),
            }
        };
        ensure!(
            labels.insert(name.to_string(), value).is_none(),
            "label {name} twice"
        );
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        }
    }
}

/// Prometheus text format 0.0.4, strictly: HELP then TYPE once per family
/// before its samples, known types, valid names, every sample belonging to
/// the family last declared, no duplicate series, histograms cumulative
/// and ending with `+Inf` equal to `_count`.
fn parse(text: &str) -> Result<Exposition> {
    ensure!(text.ends_with('\n'), "exposition must end with a newline");
    let mut exp = Exposition::default();
    let mut current: Option<String> = None;
    let mut seen = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').context("HELP without text")?;
            ensure!(valid_name(name, true), "bad name {name}");
            ensure!(
                !exp.families.contains_key(name),
                "HELP for {name} after its TYPE"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').context("TYPE without type")?;
            ensure!(valid_name(name, true), "bad name {name}");
            ensure!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "unknown type {kind}"
            );
            ensure!(!exp.families.contains_key(name), "TYPE {name} twice");
            exp.families.insert(
                name.to_string(),
                Family {
                    kind: kind.to_string(),
                    samples: Vec::new(),
                },
            );
            current = Some(name.to_string());
            continue;
        }
        ensure!(!line.starts_with('#'), "unknown comment line {line:?}");
        ensure!(!line.is_empty(), "empty line");
        let end = line.find(['{', ' ']).context("sample without value")?;
        let name = &line[..end];
        ensure!(valid_name(name, true), "bad sample name {name:?}");
        let (labels, rest) = parse_labels(&line[end..])?;
        let value = rest.strip_prefix(' ').context("no space before value")?;
        ensure!(!value.contains(' '), "timestamps are not expected: {line}");
        let value = parse_value(value)?;
        let fam_name = current.clone().context("sample before any TYPE")?;
        let fam = exp.families.get_mut(&fam_name).context("family")?;
        let belongs = name == fam_name
            || (fam.kind == "histogram"
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| name == format!("{fam_name}{s}")));
        ensure!(belongs, "sample {name} outside its family {fam_name}");
        ensure!(
            seen.insert(format!("{name}{labels:?}")),
            "duplicate series {name}{labels:?}"
        );
        fam.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    for (name, fam) in &exp.families {
        ensure!(!fam.samples.is_empty(), "{name} has no samples");
        if fam.kind == "histogram" {
            check_histogram(name, fam)?;
        }
    }
    Ok(exp)
}

fn check_histogram(name: &str, fam: &Family) -> Result<()> {
    let mut series: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for s in &fam.samples {
        let mut l = s.labels.clone();
        l.remove("le");
        series.entry(format!("{l:?}")).or_default().push(s);
    }
    for (labels, samples) in series {
        let buckets: Vec<&&Sample> = samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
            .collect();
        let mut last = (f64::NEG_INFINITY, 0.0);
        for b in &buckets {
            let le = parse_value(b.labels.get("le").context("bucket without le")?)?;
            ensure!(le > last.0, "{name}{labels}: buckets out of order");
            ensure!(b.value >= last.1, "{name}{labels}: buckets not cumulative");
            last = (le, b.value);
        }
        ensure!(last.0 == f64::INFINITY, "{name}{labels}: no +Inf bucket");
        let count = samples
            .iter()
            .find(|s| s.name.ends_with("_count"))
            .context("no _count")?;
        ensure!(samples.iter().any(|s| s.name.ends_with("_sum")), "no _sum");
        ensure!(count.value == last.1, "{name}{labels}: +Inf != _count");
    }
    Ok(())
}

impl Exposition {
    fn family(&self, name: &str) -> Result<&Family> {
        self.families
            .get(name)
            .with_context(|| format!("no family {name}"))
    }

    /// The value of the sample `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        let fam = self
            .families
            .get(name)
            .or_else(|| {
                ["_count", "_sum", "_bucket"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).and_then(|b| self.families.get(b)))
            })
            .with_context(|| format!("no family for {name}"))?;
        fam.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .with_context(|| format!("no sample {name}{labels:?}"))
    }
}

/// Sends `request` as is and returns (status code, body).
fn http(port: u16, request: &[u8]) -> Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw).context("response is not UTF-8")?;
    let (head, body) = text.split_once("\r\n\r\n").context("no end of head")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad status line in {head:?}"))?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse().ok())
        .context("no Content-Length")?;
    ensure!(
        len == body.len(),
        "Content-Length {len} but {} bytes",
        body.len()
    );
    Ok((status, body.to_string()))
}

fn scrape(port: u16) -> Result<Exposition> {
    let (status, body) = http(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n",
    )?;
    ensure!(status == 200, "scrape: status {status}");
    parse(&body)
}

/// INFO everything as field → value, on `c` (one connection for the whole
/// test, so connected_clients and total_connections_received hold still).
fn info(c: &mut RawConn) -> Result<BTreeMap<String, String>> {
    let raw = c.cmd(&["INFO", "everything"])?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn num(info: &BTreeMap<String, String>, field: &str) -> Result<f64> {
    info.get(field)
        .with_context(|| format!("no INFO field {field}"))?
        .parse()
        .with_context(|| format!("INFO {field} is not a number"))
}

/// `a=1,b=2` → the number under `key`.
fn sub(info: &BTreeMap<String, String>, field: &str, key: &str) -> Result<f64> {
    info.get(field)
        .with_context(|| format!("no INFO field {field}"))?
        .split(',')
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .with_context(|| format!("no {key} in {field}"))?
        .parse()
        .context("not a number")
}

/// Retries `f` for up to 10 s until it succeeds.
fn eventually<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut last = None;
    for _ in 0..200 {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("never")))
}

fn start_with_metrics(extra: &[&str]) -> Result<(Rampart, u16)> {
    let port = free_port()?;
    let p = port.to_string();
    let mut args = vec!["--metrics-port", p.as_str()];
    args.extend_from_slice(extra);
    let srv = Rampart::start(&args)?;
    Ok((srv, port))
}

/// A mixed load over several databases: writes, hits, misses, expiries
/// (already collected when it returns), deletes, an error.
fn mixed_load(c: &mut RawConn) -> Result<()> {
    for db in [0, 3, 9, 15] {
        c.cmd(&["SELECT", &db.to_string()])?;
        for i in 0..(50 + db * 10) {
            let k = format!("k{i}");
            c.cmd(&["SET", &k, "v"])?;
            c.cmd(&["GET", &k])?;
            c.cmd(&["GET", &format!("missing{i}")])?;
            if i % 5 == 0 {
                c.cmd(&["EXPIRE", &k, "1000"])?;
            }
            if i % 7 == 0 {
                c.cmd(&["DEL", &k])?;
            }
        }
        for i in 0..5 {
            c.cmd(&["SET", &format!("short{i}"), "v", "PX", "1"])?;
        }
    }
    // A failed call: "v" is not an integer.
    c.cmd(&["INCR", "k1"])?;
    std::thread::sleep(Duration::from_millis(20));
    // Touch the short-lived keys so they expire now, not during the checks.
    for db in [0, 3, 9, 15] {
        c.cmd(&["SELECT", &db.to_string()])?;
        for i in 0..5 {
            c.cmd(&["GET", &format!("short{i}")])?;
        }
    }
    Ok(())
}

#[test]
fn scrape_mirrors_info_after_a_mixed_load() -> Result<()> {
    let (srv, mport) = start_with_metrics(&[])?;
    let mut c = srv.conn()?;
    mixed_load(&mut c)?;
    // Nothing else talks to the server: fields that only commands other
    // than INFO move are the same in INFO and in the scrape.
    let before = info(&mut c)?;
    let exp = scrape(mport)?;
    // The scrape rendered on a thread that only takes an idle CPU
    // (SCHED_IDLE, policy 5 in /proc's sched).
    let tasks = std::fs::read_dir(format!("/proc/{}/task", srv.pid()))?;
    let mut policies = Vec::new();
    for t in tasks {
        let t = t?.path();
        if std::fs::read_to_string(t.join("comm"))?.trim() == "rampart-metrics" {
            let sched = std::fs::read_to_string(t.join("sched"))?;
            policies.extend(
                sched
                    .lines()
                    .filter(|l| l.starts_with("policy"))
                    .filter_map(|l| l.split(':').nth(1))
                    .map(|v| v.trim().to_string()),
            );
        }
    }
    ensure!(
        policies == ["5"],
        "rampart-metrics thread policies: {policies:?}"
    );
    let after = info(&mut c)?;

    for (metric, field, kind) in [
        ("redis_keyspace_hits_total", "keyspace_hits", "counter"),
        ("redis_keyspace_misses_total", "keyspace_misses", "counter"),
        ("redis_expired_keys_total", "expired_keys", "counter"),
        ("redis_evicted_keys_total", "evicted_keys", "counter"),
        ("redis_connected_clients", "connected_clients", "gauge"),
        ("redis_blocked_clients", "blocked_clients", "gauge"),
        ("redis_max_clients", "maxclients", "gauge"),
        ("redis_memory_max_bytes", "maxmemory", "gauge"),
        ("redis_connected_slaves", "connected_slaves", "gauge"),
        ("redis_master_repl_offset", "master_repl_offset", "gauge"),
        (
            "redis_rdb_last_save_timestamp_seconds",
            "rdb_last_save_time",
            "gauge",
        ),
        (
            "redis_rdb_last_bgsave_duration_sec",
            "rdb_last_bgsave_time_sec",
            "gauge",
        ),
        (
            "redis_rdb_changes_since_last_save",
            "rdb_changes_since_last_save",
            "gauge",
        ),
        (
            "redis_connections_received_total",
            "total_connections_received",
            "counter",
        ),
        ("redis_process_id", "process_id", "gauge"),
        ("redis_pubsub_channels", "pubsub_channels", "gauge"),
    ] {
        let fam = exp.family(metric)?;
        ensure!(fam.kind == kind, "{metric} is a {} not a {kind}", fam.kind);
        let v = exp.value(metric, &[])?;
        ensure!(
            v == num(&before, field)?,
            "{metric}={v} but INFO {field}={}",
            before[field]
        );
        ensure!(
            v == num(&after, field)?,
            "{metric}={v} moved vs INFO {field}"
        );
    }
    ensure!(exp.value("redis_keyspace_misses_total", &[])? >= 200.0);
    ensure!(exp.value("redis_expired_keys_total", &[])? >= 20.0);
    ensure!(exp.value("redis_up", &[])? == 1.0);

    // Moved by the INFO commands themselves: between the two readings.
    for (metric, field) in [
        ("redis_commands_processed_total", "total_commands_processed"),
        ("redis_net_input_bytes_total", "total_net_input_bytes"),
        ("redis_net_output_bytes_total", "total_net_output_bytes"),
    ] {
        ensure!(exp.family(metric)?.kind == "counter");
        let v = exp.value(metric, &[])?;
        ensure!(
            num(&before, field)? <= v && v <= num(&after, field)?,
            "{metric}={v} outside INFO {field} {}..{}",
            before[field],
            after[field]
        );
    }
    ensure!(exp.family("redis_memory_used_bytes")?.kind == "gauge");
    ensure!(exp.value("redis_memory_used_bytes", &[])? > 0.0);
    ensure!(exp.value("redis_uptime_in_seconds", &[])? >= 0.0);

    // Per database, labelled db="dbN" as redis_exporter does.
    ensure!(exp.family("redis_db_keys")?.kind == "gauge");
    ensure!(exp.family("redis_db_keys_expiring")?.kind == "gauge");
    for db in [0, 3, 9, 15] {
        let field = format!("db{db}");
        let labels = [("db", field.as_str())];
        for info in [&before, &after] {
            ensure!(exp.value("redis_db_keys", &labels)? == sub(info, &field, "keys")?);
            ensure!(exp.value("redis_db_keys_expiring", &labels)? == sub(info, &field, "expires")?);
        }
    }
    ensure!(
        exp.family("redis_db_keys")?.samples.len() == 4,
        "only databases holding keys"
    );

    // Per command: calls and time, as INFO commandstats (usec → seconds).
    for fam in [
        "redis_commands_total",
        "redis_commands_duration_seconds_total",
    ] {
        ensure!(exp.family(fam)?.kind == "counter");
        ensure!(exp
            .family(fam)?
            .samples
            .iter()
            .all(|s| s.labels.len() == 1 && s.labels.contains_key("cmd")));
    }
    for cmd in ["set", "get", "del", "expire", "select", "incr"] {
        let field = format!("cmdstat_{cmd}");
        let labels = [("cmd", cmd)];
        let calls = exp.value("redis_commands_total", &labels)?;
        let secs = exp.value("redis_commands_duration_seconds_total", &labels)?;
        for info in [&before, &after] {
            ensure!(calls == sub(info, &field, "calls")?, "{cmd} calls");
            ensure!(
                (secs - sub(info, &field, "usec")? / 1e6).abs() < 1e-9,
                "{cmd} usec"
            );
            ensure!(
                exp.value("redis_commands_failed_calls_total", &labels)?
                    == sub(info, &field, "failed_calls")?
            );
        }
    }
    ensure!(exp.value("redis_commands_failed_calls_total", &[("cmd", "incr")])? == 1.0);
    ensure!(
        exp.value("redis_errors_total", &[("err", "ERR")])?
            == sub(&after, "errorstat_ERR", "count")?
    );

    let info_labels = &exp.family("redis_instance_info")?.samples[0].labels;
    ensure!(info_labels.get("role").map(String::as_str) == Some("master"));
    ensure!(info_labels.get("redis_version") == after.get("redis_version"));
    ensure!(info_labels.get("run_id") == after.get("run_id"));

    // Rampart's own: present, typed, labelled.
    ensure!(exp.family("rampart_snapshot_duration_seconds")?.kind == "histogram");
    ensure!(exp.family("rampart_backup_duration_seconds")?.kind == "histogram");
    ensure!(exp.family("rampart_repl_full_sync_duration_seconds")?.kind == "histogram");
    ensure!(exp.family("rampart_repl_full_syncs_served_total")?.kind == "counter");
    ensure!(exp.family("rampart_eviction_cycles_total")?.kind == "counter");
    ensure!(exp.value("rampart_encryption_at_rest", &[])? == 1.0);
    let key = &exp.family("rampart_encryption_key_info")?.samples[0].labels;
    ensure!(key.get("provider").map(String::as_str) == Some("local"));
    ensure!(key.get("version").map(String::as_str) == Some("1"));
    ensure!(key.get("key_id").is_some_and(|k| k.ends_with("/1")));
    ensure!(exp.value("rampart_backups_failed_total", &[])? == num(&after, "backups_failed")?);
    ensure!(exp.value("rampart_mem_locked", &[])? == num(&after, "mem_locked")?);
    Ok(())
}

#[test]
fn rampart_metrics_move_with_snapshots_and_evictions() -> Result<()> {
    let (srv, mport) = start_with_metrics(&[])?;
    let mut c = srv.conn()?;
    c.cmd(&["SET", "a", "1"])?;
    let start = scrape(mport)?;
    let ok = [("result", "ok")];
    let generate = [("provider", "local"), ("operation", "generate")];
    let snap = [("payload", "snapshot")];
    let count0 = start.value("rampart_snapshot_duration_seconds_count", &ok)?;
    let gen0 = start
        .value("rampart_key_provider_calls_total", &generate)
        .unwrap_or(0.0);
    let sealed0 = start
        .value("rampart_envelope_sealed_bytes_total", &snap)
        .unwrap_or(0.0);

    let reply = c.cmd(&["SAVE"])?;
    ensure!(
        reply == b"+OK\r\n",
        "SAVE: {}",
        String::from_utf8_lossy(&reply)
    );
    let after_save = scrape(mport)?;
    ensure!(after_save.value("rampart_snapshot_duration_seconds_count", &ok)? == count0 + 1.0);
    ensure!(after_save.value("rampart_key_provider_calls_total", &generate)? > gen0);
    ensure!(after_save.value("rampart_envelope_sealed_bytes_total", &snap)? > sealed0);
    ensure!(
        after_save
            .family("rampart_key_provider_duration_seconds")?
            .kind
            == "histogram"
    );
    ensure!(
        after_save.value("rampart_key_provider_duration_seconds_count", &generate)?
            == after_save.value("rampart_key_provider_calls_total", &generate)?
    );
    let info_after = info(&mut c)?;
    ensure!(
        after_save.value("redis_rdb_last_save_timestamp_seconds", &[])?
            == num(&info_after, "rdb_last_save_time")?
    );
    ensure!(after_save.value("redis_rdb_changes_since_last_save", &[])? == 0.0);

    c.cmd(&["BGSAVE"])?;
    let mut done = false;
    for _ in 0..200 {
        let i = info(&mut c)?;
        if num(&i, "rdb_bgsave_in_progress")? == 0.0 && num(&i, "rdb_saves")? >= 2.0 {
            done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    ensure!(done, "BGSAVE did not finish");
    let after_bg = scrape(mport)?;
    ensure!(after_bg.value("rampart_snapshot_duration_seconds_count", &ok)? == count0 + 2.0);
    ensure!(after_bg.value("redis_rdb_last_bgsave_status", &[])? == 1.0);
    ensure!(after_bg.value("redis_rdb_saves_total", &[])? == num(&info(&mut c)?, "rdb_saves")?);

    // Evictions: a limit 2 MiB above what the server uses empty.
    let (ev, eport) = start_with_metrics(&["--maxmemory-policy", "allkeys-random"])?;
    let mut e = ev.conn()?;
    let base = num(&info(&mut e)?, "used_memory")? as u64;
    let limit = (base + (2 << 20)).to_string();
    e.cmd(&["CONFIG", "SET", "maxmemory", &limit])?;
    let value = "x".repeat(1024);
    for i in 0..8000 {
        e.cmd(&["SET", &format!("key:{i}"), &value])?;
    }
    // Lift the limit before comparing: the scrape's own allocations would
    // otherwise make the next command evict.
    e.cmd(&["CONFIG", "SET", "maxmemory", "0"])?;
    let exp = scrape(eport)?;
    let i = info(&mut e)?;
    ensure!(num(&i, "evicted_keys")? > 0.0, "nothing was evicted");
    ensure!(exp.value("redis_evicted_keys_total", &[])? == num(&i, "evicted_keys")?);
    ensure!(exp.value("rampart_eviction_cycles_total", &[])? > 0.0);
    ensure!(exp.value("redis_memory_max_bytes", &[])? == num(&i, "maxmemory")?);
    ensure!(exp.value("redis_memory_max_bytes", &[])? == 0.0);
    Ok(())
}

/// The inodes of the sockets `pid` holds, and the TCP ports listening on
/// them (from /proc/net/tcp{,6}).
fn listening_ports(pid: u32) -> Result<BTreeSet<u16>> {
    let mut inodes = BTreeSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = std::fs::read_link(fd?.path()) else {
            continue;
        };
        if let Some(i) = target
            .to_string_lossy()
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            inodes.insert(i.to_string());
        }
    }
    let mut ports = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1, st field 3 (0A = LISTEN), inode field 9.
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().context("address")?;
                ports.insert(u16::from_str_radix(port, 16)?);
            }
        }
    }
    Ok(ports)
}

#[test]
fn metrics_port_zero_opens_nothing() -> Result<()> {
    let srv = Rampart::start(&[])?;
    let mut c = srv.conn()?;
    let port = c.cmd(&["CONFIG", "GET", "metrics-port"])?;
    ensure!(String::from_utf8_lossy(&port).contains("metrics-port\r\n$1\r\n0\r\n"));
    let bind = c.cmd(&["CONFIG", "GET", "metrics-bind"])?;
    ensure!(String::from_utf8_lossy(&bind).contains("\r\n127.0.0.1\r\n"));
    ensure!(
        listening_ports(srv.pid())? == BTreeSet::from([srv.port()]),
        "listening on {:?}",
        listening_ports(srv.pid())?
    );
    let set = c.cmd(&["CONFIG", "SET", "metrics-port", "9999"])?;
    ensure!(set.starts_with(b"-ERR"), "metrics-port is fixed at startup");

    let (m, mport) = start_with_metrics(&[])?;
    let both = BTreeSet::from([m.port(), mport]);
    ensure!(
        listening_ports(m.pid())? == both,
        "{:?}",
        listening_ports(m.pid())?
    );
    let port = m.conn()?.cmd(&["CONFIG", "GET", "metrics-port"])?;
    ensure!(String::from_utf8_lossy(&port).contains(&format!("\r\n{mport}\r\n")));
    Ok(())
}

#[test]
fn bad_requests_get_errors_and_the_server_keeps_serving() -> Result<()> {
    let (srv, mport) = start_with_metrics(&[])?;
    // A client that connects and says nothing holds no slot for long and
    // blocks nobody meanwhile.
    let _idle = TcpStream::connect(("127.0.0.1", mport))?;
    ensure!(http(mport, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?.0 == 404);
    ensure!(http(mport, b"GET /metrics/x HTTP/1.1\r\n\r\n")?.0 == 404);
    ensure!(
        http(
            mport,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
        )?
        .0 == 405
    );
    ensure!(http(mport, b"\x00\xff\xfe garbage\r\n\r\n")?.0 == 400);
    ensure!(http(mport, b"GET /metrics\r\n\r\n")?.0 == 400);
    // A head past the cap, never ending: a 400, or the connection reset
    // while the rest is still being sent.
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}", "a".repeat(64 * 1024));
    if let Ok((status, _)) = http(mport, huge.as_bytes()) {
        ensure!(status == 400, "oversized head: {status}");
    }
    // Half a request, then the peer goes away.
    {
        let mut s = TcpStream::connect(("127.0.0.1", mport))?;
        s.write_all(b"GET /met")?;
    }
    // HEAD: headers only.
    let (status, body) = http(mport, b"HEAD /metrics HTTP/1.1\r\n\r\n")
        .or_else(|_| Ok::<_, anyhow::Error>((0, String::new())))?;
    ensure!(status == 0 || (status == 200 && body.is_empty()));
    // Many at once: all answered.
    let handles: Vec<_> = (0..40)
        .map(|_| std::thread::spawn(move || scrape(mport).map(|e| e.families.len())))
        .collect();
    for h in handles {
        let n = h
            .join()
            .map_err(|_| anyhow::anyhow!("scrape thread panicked"))??;
        ensure!(n > 50, "only {n} families");
    }
    ensure!(srv.conn()?.cmd(&["PING"])? == b"+PONG\r\n");
    ensure!(scrape(mport)?.value("redis_up", &[])? == 1.0);
    Ok(())
}

#[test]
fn a_primary_counts_encrypted_full_syncs_and_labels_its_replicas() -> Result<()> {
    let keys = tempfile::tempdir()?;
    let ring = rampart_tests::shared_keyring(keys.path());
    let (primary, pport) =
        start_with_metrics(&["--kms-key-file", &ring, "--repl-diskless-sync-delay", "0"])?;
    let mut c = primary.conn()?;
    c.cmd(&["SET", "k", "v"])?;
    let to = format!("127.0.0.1 {}", primary.port());
    let (replica, rport) = start_with_metrics(&["--kms-key-file", &ring, "--replicaof", &to])?;
    let mut r = replica.conn()?;
    let mut linked = false;
    for _ in 0..400 {
        let i = info(&mut r)?;
        let p = info(&mut c)?;
        if i.get("master_link_status").map(String::as_str) == Some("up")
            && p.get("slave0").is_some_and(|s| s.contains("state=online"))
        {
            linked = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ensure!(linked, "the replica never linked");

    // The counters move once the last byte is out, the replica's once it
    // has loaded: a moment after the link shows up.
    let enc = [("encryption", "encrypted")];
    let exp = eventually(|| {
        let e = scrape(pport)?;
        ensure!(e.value("rampart_repl_full_syncs_served_total", &enc)? == 1.0);
        Ok(e)
    })?;
    ensure!(
        exp.value(
            "rampart_repl_full_syncs_served_total",
            &[("encryption", "plaintext")]
        )? == 0.0
    );
    ensure!(exp.value("rampart_repl_full_sync_duration_seconds_count", &enc)? == 1.0);
    ensure!(
        exp.value(
            "rampart_envelope_sealed_bytes_total",
            &[("payload", "full-sync")]
        )? > 0.0
    );
    ensure!(exp.value("redis_connected_slaves", &[])? == 1.0);
    ensure!(exp.value("redis_replica_resyncs_full", &[])? == num(&info(&mut c)?, "sync_full")?);
    let slave = [("slave_ip", "127.0.0.1"), ("slave_state", "online")];
    let fam = exp.family("redis_connected_slave_offset_bytes")?;
    ensure!(fam.kind == "gauge" && fam.samples.len() == 1);
    let labels: Vec<&str> = fam.samples[0].labels.keys().map(String::as_str).collect();
    ensure!(
        labels == ["slave_ip", "slave_port", "slave_state"],
        "labels {labels:?}"
    );
    exp.value("redis_connected_slave_offset_bytes", &slave)?;
    exp.value("redis_connected_slave_lag_seconds", &slave)?;

    let rexp = eventually(|| {
        let e = scrape(rport)?;
        let ok = [("result", "ok")];
        ensure!(e.value("rampart_repl_replica_sync_duration_seconds_count", &ok)? >= 1.0);
        Ok(e)
    })?;
    let opened: f64 = rexp
        .family("rampart_envelope_opened_bytes_total")?
        .samples
        .iter()
        .map(|s| s.value)
        .sum();
    ensure!(opened > 0.0, "the replica decrypted nothing");
    let master = [("master_host", "127.0.0.1")];
    ensure!(rexp.value("redis_master_link_up", &master)? == 1.0);
    let role = &rexp.family("redis_instance_info")?.samples[0].labels;
    ensure!(role.get("role").map(String::as_str) == Some("slave"));
    Ok(())
}
