//! Backups taken by the server: `BACKUP CREATE` (manual), the daily
//! `backup-window` with `backup-retention-days` (automatic), the final
//! backup on shutdown (`backup-on-shutdown`), `--restore-from`, and INFO's
//! `# Backup` section. The store, manifest and envelope work is
//! `rampart_persistence::backup`'s; this module decides when, under which
//! key, and feeds it the point-in-time capture BGSAVE uses (no fork, writes
//! go on, memory bounded by the capture queue and one multipart part).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rampart_kms::{Provider, ProviderConfig, ProviderKind, PROVIDER_AWS};
use rampart_persistence::backup::{
    self as bk, cli::parse_s3_url, BackupStore, BackupWriter, ClusterOrigin, Kind, Manifest,
    Origin, S3Config, Source,
};
use tokio::runtime::Handle;

use crate::state::{now_ms, Server};

/// Which key seals a backup.
#[derive(Debug, Clone)]
pub enum KeyChoice {
    /// The dataset's own key provider.
    Dataset,
    /// `KMSKEYID id`: AWS KMS, with the server's `kms-region`/`kms-endpoint`.
    Kms(String),
    /// `KEYFILE path`: a local keyring on the server's machine.
    KeyFile(PathBuf),
}

/// Backup state and counters (BACKUP STATUS, INFO backup).
#[derive(Default)]
pub struct Backups {
    running: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    current: Option<(String, Instant, Arc<AtomicU64>)>,
    last: Option<Last>,
    created: u64,
    failed: u64,
    /// (Unix time, size) of the last backup that succeeded.
    last_success: Option<(u64, u64)>,
    /// The UTC day whose window already had its automatic backup.
    auto_day: Option<u64>,
}

struct Last {
    name: String,
    error: Option<String>,
    time: u64,
    size: u64,
    duration_ms: u64,
}

/// Holds the one-backup-at-a-time slot; dropping it frees the slot.
pub struct Running(Arc<Server>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.backups.state.lock().current = None;
        self.0.backups.running.store(false, Ordering::Release);
    }
}

impl Backups {
    /// Whether a backup runs.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Takes the slot for backup `name`, or says one already runs.
    pub fn begin(srv: &Arc<Server>, name: &str) -> Result<Running, &'static str> {
        if srv.backups.running.swap(true, Ordering::AcqRel) {
            return Err("ERR Backup already in progress");
        }
        srv.backups.state.lock().current = Some((
            name.to_string(),
            Instant::now(),
            Arc::new(AtomicU64::new(0)),
        ));
        Ok(Running(srv.clone()))
    }
}

fn runtime(srv: &Server) -> anyhow::Result<Handle> {
    srv.persist
        .runtime
        .get()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the server's runtime is not running"))
}

fn s3_config(srv: &Server, bucket: String, prefix: String) -> S3Config {
    let opt = |n: &str| srv.config.get(n).filter(|v| !v.is_empty());
    S3Config {
        bucket,
        prefix,
        endpoint: opt("backup-s3-endpoint"),
        region: opt("backup-s3-region"),
        path_style: srv.config.flag("backup-s3-path-style"),
    }
}

/// The store the configuration names: `backup-s3-bucket`, else
/// `backup-dir`. Blocking.
pub fn store(srv: &Server, rt: &Handle) -> anyhow::Result<BackupStore> {
    let bucket = srv.config.get("backup-s3-bucket").unwrap_or_default();
    if !bucket.is_empty() {
        let prefix = srv.config.get("backup-s3-prefix").unwrap_or_default();
        return Ok(rt.block_on(BackupStore::s3(&s3_config(srv, bucket, prefix)))?);
    }
    let dir = srv.config.get("backup-dir").unwrap_or_default();
    if !dir.is_empty() {
        return Ok(BackupStore::dir(Path::new(&dir)));
    }
    anyhow::bail!(
        "no backup store is configured: set backup-s3-bucket (S3-compatible storage) or backup-dir (a local directory)"
    )
}

/// A provider of `kind` with the server's `kms-region`, `kms-endpoint` and
/// `kms-audit-log`, a KMS key id or a keyring path as given.
async fn open_provider(
    srv: &Server,
    kind: ProviderKind,
    key_id: Option<String>,
    key_file: Option<PathBuf>,
) -> anyhow::Result<Provider> {
    let opt = |n: &str| srv.config.get(n).filter(|v| !v.is_empty());
    Ok(Provider::from_config(&ProviderConfig {
        provider: kind,
        key_id,
        key_file,
        region: opt("kms-region"),
        endpoint: opt("kms-endpoint"),
        audit_log: opt("kms-audit-log").map(PathBuf::from),
    })
    .await?)
}

/// KMS wrapping under `key_id` (none: decrypt only, with the key a slot
/// names).
async fn kms(srv: &Server, key_id: Option<String>) -> anyhow::Result<Provider> {
    open_provider(srv, ProviderKind::Aws, key_id, None).await
}

/// The provider that seals a new backup. Blocking.
fn provider(srv: &Server, rt: &Handle, key: &KeyChoice) -> anyhow::Result<Arc<Provider>> {
    match key {
        KeyChoice::Dataset => srv.keys.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "backups are always encrypted, and this server has encryption-at-rest no: name a key with KMSKEYID or KEYFILE"
            )
        }),
        KeyChoice::Kms(id) => Ok(Arc::new(rt.block_on(kms(srv, Some(id.clone())))?)),
        KeyChoice::KeyFile(path) => Ok(Arc::new(rt.block_on(open_provider(
            srv,
            ProviderKind::Local,
            None,
            Some(path.clone()),
        ))?)),
    }
}

fn node(srv: &Server) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "rampart".into());
    format!("{host}:{}", srv.port.load(Ordering::Relaxed))
}

/// In cluster mode, this node's id and the slots it serves, so a cluster
/// backup can check that each shard holds what its manifest says.
fn cluster_origin(srv: &Server) -> Option<ClusterOrigin> {
    let bus = srv.cluster.get()?;
    let st = bus.state.lock();
    let me = st.myself();
    Some(ClusterOrigin {
        node_id: me.id(),
        slots: me
            .slots
            .ranges()
            .into_iter()
            .map(|r| [*r.start(), *r.end()])
            .collect(),
    })
}

/// Takes one backup on the calling thread (never a runtime worker): the
/// store and key first, then a point-in-time capture streamed into the
/// upload. With `locked` the caller holds the exclusive gate (shutdown).
pub fn run(
    srv: &Server,
    name: &str,
    kind: Kind,
    key: &KeyChoice,
    locked: bool,
) -> anyhow::Result<Manifest> {
    let start = Instant::now();
    let result = run_inner(srv, name, kind, key, locked);
    crate::metrics::observe(
        &crate::metrics::instruments().backup,
        crate::metrics::result(result.is_ok()),
        start.elapsed(),
    );
    let mut st = srv.backups.state.lock();
    let size = result.as_ref().map(|m| m.size).unwrap_or(0);
    match &result {
        Ok(m) => {
            st.created += 1;
            st.last_success = Some((now_ms() / 1000, m.size));
            tracing::info!(
                "Backup {} ({}) written to {}: {} bytes in {:.3} seconds, key {} {}",
                m.name,
                kind.as_str(),
                m.object,
                m.size,
                start.elapsed().as_secs_f64(),
                m.key_provider,
                m.key_id
            );
        }
        Err(e) => {
            st.failed += 1;
            tracing::warn!(
                "Backup {name} failed: {e:#} (nothing was listed; no parts are left behind)"
            );
        }
    }
    st.last = Some(Last {
        name: name.to_string(),
        error: result.as_ref().err().map(|e| format!("{e:#}")),
        time: now_ms() / 1000,
        size,
        duration_ms: start.elapsed().as_millis() as u64,
    });
    result
}

fn run_inner(
    srv: &Server,
    name: &str,
    kind: Kind,
    key: &KeyChoice,
    locked: bool,
) -> anyhow::Result<Manifest> {
    let rt = runtime(srv)?;
    let store = store(srv, &rt)?;
    let provider = provider(srv, &rt, key)?;
    let mut origin = Origin {
        dataset: srv
            .persist
            .dataset
            .get()
            .map(|d| d.id.clone())
            .unwrap_or_else(|| "rampart".into()),
        node: node(srv),
        ..Default::default()
    };
    let writer = BackupWriter::begin(&store, &rt, name, kind, &origin, &provider)?;
    // The instant the backup describes: taken under the exclusive gate,
    // as BGSAVE's. A snapshot already running (BGSAVE, a full sync) is
    // waited for: only one capture runs at a time.
    let (snap, shards, repl) = loop {
        let gate = (!locked).then(|| srv.keyspace.exclusive());
        let info = srv.repl.save_info();
        let (replid, _, offset, _) = srv.repl.ids();
        if let Some((snap, shards)) = crate::persist::begin_capture(srv, info) {
            // Under the gate, so the slots are those of the keys captured.
            origin.cluster = cluster_origin(srv);
            drop(gate);
            break (snap, shards, (replid, offset));
        }
        drop(gate);
        std::thread::sleep(Duration::from_millis(20));
    };
    origin.repl_id = Some(repl.0);
    origin.repl_offset = Some(repl.1 as i64);
    let mut writer = writer.with_origin(&origin);
    let bytes = srv
        .backups
        .state
        .lock()
        .current
        .as_ref()
        .map(|c| c.2.clone())
        .unwrap_or_default();
    crate::persist::run_capture(&srv.keyspace, snap, shards, move |rx| {
        let keys = crate::persist::write_rdb(rx, &mut |b| {
            bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            writer.write(b)
        })?;
        writer.set_keys(keys);
        writer.commit()
    })
}

/// Starts `BACKUP CREATE`'s backup on its own thread; `done` gets the
/// outcome. The caller holds the slot (`running`).
pub fn spawn(
    srv: Arc<Server>,
    running: Running,
    name: String,
    key: KeyChoice,
    done: impl FnOnce(anyhow::Result<Manifest>) + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("rampart-backup".into())
        .spawn(move || {
            let r = run(&srv, &name, Kind::Manual, &key, false);
            drop(running);
            done(r);
        })
        .map(|_| ())
}

/// The final backup on SHUTDOWN/SIGTERM when `backup-on-shutdown yes`. The
/// caller holds the exclusive gate.
pub fn on_shutdown(srv: &Server) -> anyhow::Result<()> {
    if !srv.config.flag("backup-on-shutdown") {
        return Ok(());
    }
    let srv = &srv
        .arc()
        .ok_or_else(|| anyhow::anyhow!("the server is not running"))?;
    let name = bk::default_name(Kind::Final, now_ms());
    // A manual or automatic backup still running is waited for.
    let running = loop {
        match Backups::begin(srv, &name) {
            Ok(r) => break r,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    crate::persist::wait_bgsave(srv);
    tracing::info!("Taking the final backup {name} before exiting.");
    // SHUTDOWN runs on a connection's runtime thread, which must not block
    // on the runtime: the backup runs on a thread of its own, joined here.
    let r = std::thread::scope(|sc| {
        sc.spawn(|| run(srv, &name, Kind::Final, &KeyChoice::Dataset, true))
            .join()
            .map_err(|_| anyhow::anyhow!("the final backup stopped unexpectedly"))?
    });
    drop(running);
    r.map(|_| ())
}

/// Parses `backup-window` `HH:MM-HH:MM` into minutes of the UTC day.
///
/// ```
/// use rampart_server::backup::parse_window;
/// assert_eq!(parse_window("05:00-06:30"), Some((300, 390)));
/// assert_eq!(parse_window("23:30-00:30"), Some((1410, 30)));
/// assert_eq!(parse_window("25:00-01:00"), None);
/// assert_eq!(parse_window(""), None);
/// ```
pub fn parse_window(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.trim().split_once('-')?;
    let min = |t: &str| -> Option<u64> {
        let (h, m) = t.split_once(':')?;
        let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && t.len() == 5).then_some(h * 60 + m)
    };
    let (a, b) = (min(a)?, min(b)?);
    (a != b).then_some((a, b))
}

/// The window (start, end) in Unix ms that contains `now`, if any.
fn window_at(w: (u64, u64), now: u64) -> Option<(u64, u64)> {
    let day = now / 86_400_000;
    let minute = (now % 86_400_000) / 60_000;
    let (a, b) = w;
    let start_day = if a < b {
        (a <= minute && minute < b).then_some(day)?
    } else if minute >= a {
        day
    } else if minute < b {
        day.checked_sub(1)?
    } else {
        return None;
    };
    let start = start_day * 86_400_000 + a * 60_000;
    let len = if a < b { b - a } else { 1440 - a + b };
    Some((start, start + len * 60_000))
}

/// On the `hz` clock: once per day inside `backup-window`, when
/// `backup-retention-days` is above 0, takes an automatic backup and then
/// deletes automatic backups older than the retention.
pub fn cron(srv: &Arc<Server>) {
    let days = srv.config.int("backup-retention-days");
    if days <= 0 || srv.backups.running() || srv.shutting_down.load(Ordering::Relaxed) {
        return;
    }
    let Some(w) = parse_window(&srv.config.get("backup-window").unwrap_or_default()) else {
        return;
    };
    let now = now_ms();
    let Some((start, _)) = window_at(w, now) else {
        return;
    };
    let day = start / 86_400_000;
    {
        let mut st = srv.backups.state.lock();
        if st.auto_day == Some(day) {
            return;
        }
        st.auto_day = Some(day);
    }
    let name = bk::default_name(Kind::Automatic, now);
    let Ok(running) = Backups::begin(srv, &name) else {
        return;
    };
    let s = srv.clone();
    let spawned = std::thread::Builder::new()
        .name("rampart-backup".into())
        .spawn(move || {
            let _running = running;
            let Ok(rt) = runtime(&s) else { return };
            let Ok(store) = store(&s, &rt) else {
                tracing::warn!("Automatic backup skipped: no backup store is configured");
                return;
            };
            // A restart inside the window must not take a second one.
            let taken = rt.block_on(bk::list(&store)).ok().is_some_and(|all| {
                all.iter()
                    .any(|m| m.kind == Kind::Automatic && m.created_ms >= start)
            });
            if taken {
                return;
            }
            if run(&s, &name, Kind::Automatic, &KeyChoice::Dataset, false).is_ok() {
                match rt.block_on(bk::prune(&store, days as u64, now_ms())) {
                    Ok(gone) => {
                        for n in gone {
                            tracing::info!(
                                "Deleted automatic backup {n}: older than backup-retention-days {days}"
                            );
                        }
                    }
                    Err(e) => tracing::warn!("Backup retention: {e:#}"),
                }
            }
        });
    if spawned.is_err() {
        tracing::warn!("Can't start the automatic backup thread");
    }
}

/// `--restore-from SPEC`: writes the backup (or plain RDB object) that
/// `SPEC` names as this server's first snapshot `dest`, under the server's
/// own at-rest protection. `SPEC` is `s3://bucket/prefix/NAME` (with the
/// `backup-s3-*` endpoint settings) or `DIR/NAME`. Blocking.
pub fn restore_from(srv: &Server, spec: &str, dest: &Path) -> anyhow::Result<()> {
    let rt = runtime(srv)?;
    let (store, name) = match parse_s3_url(spec) {
        Some((bucket, key)) => {
            let (prefix, name) = match key.rsplit_once('/') {
                Some((p, n)) => (format!("{p}/"), n.to_string()),
                None => (String::new(), key),
            };
            let store = rt.block_on(BackupStore::s3(&s3_config(srv, bucket, prefix)))?;
            (store, name)
        }
        None => {
            let p = Path::new(spec);
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| anyhow::anyhow!("--restore-from {spec}: names no backup"))?;
            let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
            (BackupStore::dir(dir.unwrap_or(Path::new("."))), name)
        }
    };
    if name.is_empty() {
        anyhow::bail!("--restore-from {spec}: names no backup or object");
    }
    // The dataset's own key opens backups it made; one sealed under a KMS
    // key is opened through the key its slot names.
    let manifest = rt.block_on(bk::manifest(&store, &name)).ok();
    let reader: Option<Arc<Provider>> = match &manifest {
        Some(m)
            if m.key_provider == PROVIDER_AWS
                && !matches!(srv.keys.as_deref(), Some(Provider::Aws(_))) =>
        {
            Some(Arc::new(rt.block_on(kms(srv, None))?))
        }
        _ => srv.keys.clone(),
    };
    let (source, src) = bk::open_any(&store, &rt, &name, reader.as_deref())?;
    let protection = crate::persist::snapshot_protection(srv)?;
    let keys = bk::restore_to(src, source.check(), dest, protection)?;
    match source {
        Source::Backup(m) => tracing::info!(
            "Restored backup {} ({}, {} from {}, {} bytes of RDB) into {}",
            m.name,
            m.kind.as_str(),
            m.created,
            store.describe(),
            m.rdb_size,
            dest.display()
        ),
        Source::PlainRdb(size) => tracing::warn!(
            "Restored the plain RDB object {} ({size} bytes, {} keys) into {}",
            store.object(&name),
            keys.unwrap_or_default(),
            dest.display()
        ),
    }
    Ok(())
}

/// The `# Backup` section of INFO.
pub fn info(srv: &Server) -> String {
    let st = srv.backups.state.lock();
    let store = match (
        srv.config.get("backup-s3-bucket").filter(|b| !b.is_empty()),
        srv.config.get("backup-dir").filter(|d| !d.is_empty()),
    ) {
        (Some(b), _) => format!(
            "s3://{b}/{}",
            srv.config.get("backup-s3-prefix").unwrap_or_default()
        ),
        (None, Some(d)) => d,
        (None, None) => String::new(),
    };
    let (cur_name, cur_secs, cur_bytes) = match &st.current {
        Some((n, t, b)) => (
            n.clone(),
            t.elapsed().as_secs() as i64,
            b.load(Ordering::Relaxed),
        ),
        None => (String::new(), -1, 0),
    };
    let (status, name, time, size, dur, err) = match &st.last {
        None => ("none", String::new(), 0, 0, -1, String::new()),
        Some(l) => (
            if l.error.is_none() { "ok" } else { "err" },
            l.name.clone(),
            l.time,
            l.size,
            l.duration_ms as i64,
            l.error
                .clone()
                .unwrap_or_default()
                .replace(['\r', '\n'], " "),
        ),
    };
    let (ok_time, ok_size) = st.last_success.unwrap_or((0, 0));
    format!(
        "# Backup\r\nbackup_store:{store}\r\nbackup_in_progress:{}\r\nbackup_current_name:{cur_name}\r\nbackup_current_time_sec:{cur_secs}\r\nbackup_current_rdb_bytes:{cur_bytes}\r\nbackup_last_status:{status}\r\nbackup_last_name:{name}\r\nbackup_last_time:{time}\r\nbackup_last_size:{size}\r\nbackup_last_duration_ms:{dur}\r\nbackup_last_error:{err}\r\nbackup_last_success_time:{ok_time}\r\nbackup_last_success_size:{ok_size}\r\nbackups_created:{}\r\nbackups_failed:{}\r\nbackup_window:{}\r\nbackup_retention_days:{}\r\n",
        srv.backups.running() as u8,
        st.created,
        st.failed,
        srv.config.get("backup-window").unwrap_or_default(),
        srv.config.int("backup-retention-days"),
    )
}

/// BACKUP STATUS's fields, in INFO's names without the prefix.
pub fn status(srv: &Server) -> Vec<(String, String)> {
    info(srv)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_find_their_day_across_midnight() {
        let day = 20_000 * 86_400_000u64;
        let at = |h: u64, m: u64| day + (h * 60 + m) * 60_000;
        assert_eq!(
            window_at((300, 390), at(5, 10)),
            Some((at(5, 0), at(6, 30)))
        );
        assert_eq!(window_at((300, 390), at(6, 30)), None);
        assert_eq!(window_at((300, 390), at(4, 59)), None);
        // 23:30-00:30: at 00:10 the window began yesterday.
        let w = window_at((1410, 30), at(0, 10)).unwrap();
        assert_eq!(w.0, day - 30 * 60_000);
        assert_eq!(window_at((1410, 30), at(23, 45)).unwrap().0, at(23, 30));
        assert_eq!(window_at((1410, 30), at(12, 0)), None);
    }
}
