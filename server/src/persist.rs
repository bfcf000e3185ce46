//! Snapshots: SAVE, BGSAVE, the `save` rules, saving on shutdown, loading at
//! startup, DEBUG RELOAD, `--import-rdb` and INFO persistence.
//!
//! A snapshot is a point-in-time cut of the keyspace taken without fork
//! ([`Keyspace::begin_snapshot`]): the snapshot's own pass copies the
//! shards, with the old state of any key changed before the pass reached
//! it. Copied shards flow through a channel to a writer thread that encodes
//! them as RDB, seals them in the envelope and writes the temp file that
//! replaces the old snapshot only once complete and fsynced.

use std::future::Future;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use parking_lot::Mutex;
use rampart_keyspace::{Capture, Keyspace, Node, Value};
use rampart_kms::{EnvelopeParams, EnvelopeReader, Payload, Provider};
use rampart_persistence::dataset::Dataset;
use rampart_persistence::rdb::{self, LoadSink, RdbError};
use rampart_persistence::snapshot::{self, Format, Protection, SnapshotWriter};

use crate::state::{now_ms, Server};

/// After a failed background save, the `save` rules wait this long before
/// trying again (Redis's CONFIG_BGSAVE_RETRY_DELAY).
const RETRY_DELAY_MS: u64 = 5000;

/// Snapshot state and counters (INFO persistence).
#[derive(Default)]
pub struct Persist {
    /// The data directory's dataset, fixed at startup.
    pub dataset: OnceLock<Dataset>,
    /// The runtime, for key-provider calls made from snapshot threads.
    pub runtime: OnceLock<tokio::runtime::Handle>,
    lastsave: AtomicU64,
    running: AtomicBool,
    scheduled: AtomicBool,
    last_ok: AtomicBool,
    last_bgsave_secs: AtomicI64,
    started: Mutex<Option<Instant>>,
    saves: AtomicU64,
    last_try_ms: AtomicU64,
    loaded_keys: AtomicU64,
    loaded_expired: AtomicU64,
}

impl Persist {
    /// Fresh state: never saved, last status ok.
    pub fn new() -> Persist {
        let p = Persist::default();
        p.last_ok.store(true, Ordering::Relaxed);
        p.last_bgsave_secs.store(-1, Ordering::Relaxed);
        p.lastsave.store(now_ms() / 1000, Ordering::Relaxed);
        p
    }

    /// LASTSAVE: Unix time of the last successful save (or of startup).
    pub fn lastsave(&self) -> u64 {
        self.lastsave.load(Ordering::Relaxed)
    }

    /// Whether a background save runs.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }
}

/// A captured shard: copies of its live entries, encoded to RDB later by
/// the thread that writes the snapshot, so the snapshot's pass holds each
/// shard's lock for a copy (a memcpy), not for RDB encoding and LZF
/// compression.
pub(crate) struct Captured {
    db: usize,
    entries: Vec<(rampart_keyspace::Key, Value, Option<u64>)>,
    _ticket: Ticket,
}

impl Captured {
    /// Appends the shard as RDB (SELECTDB, then its entries).
    fn encode(&self, buf: &mut Vec<u8>) {
        rdb::write_select_db(buf, self.db as u64);
        for (k, v, at) in &self.entries {
            rdb::write_entry(buf, k.as_bytes(), v, *at);
        }
    }
}

/// Counts captured shards not yet encoded; dropping one (encoded, or
/// discarded with a failed writer) gives its place back.
struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The captured shards, in capture order, and the replication position
/// the snapshot records in its header.
pub(crate) struct Shards {
    rx: Receiver<Captured>,
    repl: Option<crate::repl::SaveInfo>,
    /// The function libraries' code at the capture, written as
    /// `FUNCTION2` records after the header, as Redis does.
    functions: Vec<Vec<u8>>,
    /// `rdb-key-save-delay` (microseconds per key, Redis's hidden test
    /// directive): slows the writing down so tests can act while a
    /// snapshot is being written.
    key_delay_us: u64,
}

/// The snapshot's own pass waits while this many copied shards wait to be
/// encoded, so copies never pile up beyond a few shards.
const MAX_QUEUED: usize = 8;

/// Copies each captured shard and hands it to the writer.
struct Chunks {
    tx: Mutex<Sender<Captured>>,
    queued: Arc<AtomicUsize>,
}

impl Capture for Chunks {
    fn shard(&self, db: usize, nodes: &mut dyn Iterator<Item = &Node>) {
        let entries: Vec<_> = nodes
            .map(|n| (n.key.clone(), n.value.clone(), n.expire_at()))
            .collect();
        if entries.is_empty() {
            return;
        }
        self.queued.fetch_add(1, Ordering::AcqRel);
        let c = Captured {
            db,
            entries,
            _ticket: Ticket(self.queued.clone()),
        };
        // A writer that failed has dropped its receiver; the snapshot
        // still has to run to its end, so the error is ignored here (the
        // copy is dropped at once) and reported by the writer.
        let _ = self.tx.lock().send(c);
    }

    fn pace(&self) {
        // Bounded by the writer: each encoded or discarded shard frees a
        // place, and a writer that stops drops everything queued.
        while self.queued.load(Ordering::Acquire) > MAX_QUEUED {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Where and how a snapshot is written.
struct Target {
    dest: PathBuf,
    keys: Option<(Arc<Provider>, String)>,
    runtime: Option<tokio::runtime::Handle>,
}

/// The snapshot file's path: `dir` + `dbfilename`.
pub fn snapshot_path(srv: &Server) -> PathBuf {
    let dir = srv.config.get("dir").unwrap_or_else(|| ".".into());
    let name = srv
        .config
        .get("dbfilename")
        .unwrap_or_else(|| "dump.rdb".into());
    Path::new(&dir).join(name)
}

fn target(srv: &Server) -> Target {
    let dataset = srv
        .persist
        .dataset
        .get()
        .map(|d| d.id.clone())
        .unwrap_or_else(|| "rampart".into());
    Target {
        dest: snapshot_path(srv),
        keys: srv.keys.clone().map(|k| (k, dataset)),
        runtime: srv.persist.runtime.get().cloned(),
    }
}

/// Runs `f` to completion from synchronous code: on a runtime worker it
/// steps out of the async context first; elsewhere it uses the stored
/// runtime, or a small one of its own when there is none (tests).
pub(crate) fn block_on<F>(
    runtime: Option<&tokio::runtime::Handle>,
    f: F,
) -> anyhow::Result<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    use tokio::runtime::{Handle, RuntimeFlavor};
    let elsewhere = |f: F| -> anyhow::Result<F::Output> {
        match runtime {
            Some(h) => Ok(h.block_on(f)),
            None => Ok(tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(f)),
        }
    };
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => Ok(blocking(|| h.block_on(f))),
        // A connection's single-threaded runtime cannot block in place:
        // run the call on another thread (with the main runtime) and wait.
        Ok(_) => std::thread::scope(|s| {
            s.spawn(|| elsewhere(f))
                .join()
                .map_err(|_| anyhow::anyhow!("the key provider call stopped unexpectedly"))?
        }),
        Err(_) => elsewhere(f),
    }
}

/// Runs `f`, which blocks, without stalling other tasks of a runtime worker.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            let r = tokio::task::block_in_place(f);
            // The worker may have moved to another thread meanwhile.
            crate::outbox::left_worker();
            r
        }
        _ => f(),
    }
}

/// The protection of a new stream of kind `payload`: the envelope under a
/// fresh data key from the provider, or plain without one.
fn protection(
    keys: Option<&(Arc<Provider>, String)>,
    runtime: Option<&tokio::runtime::Handle>,
    payload: Payload,
) -> anyhow::Result<Protection> {
    Ok(match keys {
        None => Protection::Plain,
        Some((provider, dataset)) => {
            let params = EnvelopeParams::new(payload, dataset);
            let ctx = params.key_context()?;
            let (key, slot) =
                block_on(runtime, provider.generate_data_key(&ctx))?.map_err(|e| {
                    anyhow::anyhow!("cannot get a data key from {}: {e}", provider.describe())
                })?;
            Protection::Encrypted { params, key, slot }
        }
    })
}

/// Opens this server's snapshot file for writing with its own at-rest
/// protection (a replica stores what its primary sends this way).
pub(crate) fn create_snapshot(srv: &Server) -> anyhow::Result<SnapshotWriter> {
    let t = target(srv);
    let p = protection(t.keys.as_ref(), t.runtime.as_ref(), Payload::Snapshot)?;
    SnapshotWriter::create(&t.dest, p)
}

/// The protection of a new snapshot file of this server (a restored
/// backup is written with it).
pub(crate) fn snapshot_protection(srv: &Server) -> anyhow::Result<Protection> {
    let t = target(srv);
    protection(t.keys.as_ref(), t.runtime.as_ref(), Payload::Snapshot)
}

/// The envelope parameters and data key of a full-sync stream to a
/// replica (payload type 2), or `None` without encryption at rest.
pub(crate) fn sync_protection(srv: &Server) -> anyhow::Result<Protection> {
    let t = target(srv);
    protection(t.keys.as_ref(), t.runtime.as_ref(), Payload::FullSync)
}

/// Writes the snapshot file; with `open`, also returns it open for
/// reading (a disk-based full sync sends it).
fn write_file(t: &Target, rx: Shards, open: bool) -> anyhow::Result<(u64, Option<std::fs::File>)> {
    let protection = protection(t.keys.as_ref(), t.runtime.as_ref(), Payload::Snapshot)?;
    let mut w = SnapshotWriter::create(&t.dest, protection)?;
    write_rdb(rx, &mut |b| w.write(b))?;
    if open {
        let (bytes, f) = w.commit_and_open()?;
        return Ok((bytes, Some(f)));
    }
    Ok((w.commit()?, None))
}

/// Writes a captured snapshot as RDB (header, the shards `rx` delivers,
/// EOF opcode; no CRC trailer) through `out`, and returns the number of
/// keys written (a backup's manifest records it). Shared by snapshot
/// files, full-sync streams and backups, which differ only in where the
/// bytes go.
pub(crate) fn write_rdb(
    rx: Shards,
    out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut head = Vec::new();
    let aux = rx.repl.as_ref().map(|r| r.aux());
    let pairs: Vec<(&str, &[u8])> = aux
        .iter()
        .flatten()
        .map(|(k, v)| (*k, v.as_slice()))
        .collect();
    rdb::write_header(&mut head, &pairs);
    for code in &rx.functions {
        rdb::write_function(&mut head, code);
    }
    out(&head)?;
    let mut buf = Vec::new();
    let mut keys = 0u64;
    for shard in rx.rx {
        buf.clear();
        shard.encode(&mut buf);
        keys += shard.entries.len() as u64;
        let delay = rx.key_delay_us * shard.entries.len() as u64;
        drop(shard);
        out(&buf)?;
        if delay > 0 {
            std::thread::sleep(Duration::from_micros(delay));
        }
    }
    let mut tail = Vec::new();
    rdb::write_eof(&mut tail);
    out(&tail)?;
    Ok(keys)
}

/// Runs a begun snapshot to its end: the pass over the keyspace runs on
/// this thread while `consume` turns the captured shards into bytes on a
/// second one. Shared by SAVE/BGSAVE and full syncs.
pub(crate) fn run_capture<T: Send + 'static>(
    ks: &Keyspace,
    snap: rampart_keyspace::Snapshot,
    rx: Shards,
    consume: impl FnOnce(Shards) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let writer = std::thread::Builder::new()
        .name("rampart-save".into())
        .spawn(move || consume(rx));
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            // The snapshot was begun: it must end, or every write keeps
            // capturing shards.
            ks.finish_snapshot(snap);
            return Err(e.into());
        }
    };
    ks.finish_snapshot(snap);
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("the snapshot writer stopped unexpectedly"))?
}

/// Begins a point-in-time capture whose shards arrive, copied but not yet
/// encoded, on the returned channel; `repl` goes into its header. The
/// caller holds the exclusive gate; `None` while another snapshot runs.
pub(crate) fn begin_capture(
    srv: &Server,
    repl: Option<crate::repl::SaveInfo>,
) -> Option<(rampart_keyspace::Snapshot, Shards)> {
    let (tx, rx) = channel();
    // A snapshot that records a replication position keeps keys already
    // expired, as Redis's does: whoever resumes from it deletes them and
    // sends the DELs down the stream, which a replica continuing from the
    // same position needs (it never expires keys itself).
    let now = if repl.is_some() { 0 } else { now_ms() };
    let snap = srv.keyspace.begin_snapshot(
        Arc::new(Chunks {
            tx: Mutex::new(tx),
            queued: Arc::new(AtomicUsize::new(0)),
        }),
        now,
    )?;
    let functions = srv
        .scripting
        .functions
        .lock()
        .as_ref()
        .map(|e| e.libraries().map(|l| l.code.clone()).collect())
        .unwrap_or_default();
    let key_delay_us = srv.config.int("rdb-key-save-delay").max(0) as u64;
    Some((
        snap,
        Shards {
            rx,
            repl,
            functions,
            key_delay_us,
        },
    ))
}

/// Takes the snapshot that `begin` started into the file `t` names.
fn run(
    ks: &Keyspace,
    snap: rampart_keyspace::Snapshot,
    rx: Shards,
    t: Target,
    open: bool,
) -> anyhow::Result<(u64, Option<std::fs::File>)> {
    let start = Instant::now();
    let r = run_capture(ks, snap, rx, move |rx| write_file(&t, rx, open));
    let m = crate::metrics::instruments();
    crate::metrics::observe(
        &m.snapshot,
        crate::metrics::result(r.is_ok()),
        start.elapsed(),
    );
    r
}

/// Starts a snapshot. The caller holds the exclusive gate.
fn begin(srv: &Server) -> Option<(rampart_keyspace::Snapshot, Shards, u64)> {
    let dirty = srv.hooks.dirty.get();
    let (snap, rx) = begin_capture(srv, srv.repl.save_info())?;
    Some((snap, rx, dirty))
}

/// Records a save's outcome. Only background saves report failure in
/// `rdb_last_bgsave_status` (and so stop writes), as in Redis.
fn finished(p: &Persist, saved: &AtomicU64, dirty_at_start: u64, ok: bool, background: bool) {
    if ok {
        // Changes made while the snapshot ran are not in it.
        saved.fetch_max(dirty_at_start, Ordering::Relaxed);
        p.lastsave.store(now_ms() / 1000, Ordering::Relaxed);
        p.saves.fetch_add(1, Ordering::Relaxed);
        p.last_ok.store(true, Ordering::Relaxed);
    } else {
        p.last_try_ms.store(now_ms(), Ordering::Relaxed);
        if background {
            p.last_ok.store(false, Ordering::Relaxed);
        }
    }
}

/// SAVE: a snapshot taken in the foreground. The caller holds the exclusive
/// gate, so, as with Redis, nothing else runs meanwhile.
pub fn save(srv: &Server) -> Result<u64, String> {
    let Some((snap, rx, dirty_at_start)) = begin(srv) else {
        return Err("ERR Background save already in progress".into());
    };
    let t = target(srv);
    let dest = t.dest.clone();
    let result = blocking(|| run(&srv.keyspace, snap, rx, t, false).map(|(b, _)| b));
    let ok = result.is_ok();
    finished(
        &srv.persist,
        &srv.hooks.saved_dirty,
        dirty_at_start,
        ok,
        false,
    );
    match result {
        Ok(bytes) => {
            tracing::info!(
                "DB saved on disk ({}, {bytes} bytes of RDB)",
                dest.display()
            );
            Ok(bytes)
        }
        Err(e) => {
            tracing::warn!("Error saving DB on disk ({}): {e:#}", dest.display());
            Err(format!("ERR {e:#}"))
        }
    }
}

/// BGSAVE: begins a point-in-time snapshot and writes it on background
/// threads. The caller holds the exclusive gate. Fails when one runs.
pub fn bgsave(srv: &Server) -> Result<(), &'static str> {
    if srv.persist.running() {
        return Err("ERR Background save already in progress");
    }
    let Some((snap, rx, dirty_at_start)) = begin(srv) else {
        return Err("ERR Background save already in progress");
    };
    spawn_bgsave(srv, snap, rx, dirty_at_start, None)
}

/// What a BGSAVE begun for a disk-based full sync hands over when it
/// ends: the RDB's length and the file as written, open for reading, or
/// why it failed.
pub(crate) type SyncSaved = Result<(u64, std::fs::File), String>;

/// A BGSAVE for a disk-based full sync (Redis's `startBgsaveForReplication`
/// with target disk): the capture `begin_capture` started under the
/// caller's exclusive gate is written to `dbfilename` as any BGSAVE is
/// (sealed, counted in INFO persistence, LASTSAVE), and `done` gets the
/// file, opened before it was put in place. The caller checked that no
/// background save runs.
pub(crate) fn bgsave_for_sync(
    srv: &Server,
    snap: rampart_keyspace::Snapshot,
    rx: Shards,
    done: Box<dyn FnOnce(SyncSaved) + Send>,
) -> Result<(), &'static str> {
    let dirty_at_start = srv.hooks.dirty.get();
    spawn_bgsave(srv, snap, rx, dirty_at_start, Some(done))
}

fn spawn_bgsave(
    srv: &Server,
    snap: rampart_keyspace::Snapshot,
    rx: Shards,
    dirty_at_start: u64,
    done: Option<Box<dyn FnOnce(SyncSaved) + Send>>,
) -> Result<(), &'static str> {
    let p = &srv.persist;
    p.running.store(true, Ordering::Release);
    *p.started.lock() = Some(Instant::now());
    let t = target(srv);
    let ks = srv.keyspace.clone();
    let persist = srv.persist.clone();
    let hooks = srv.hooks.clone();
    tracing::info!("Background saving started");
    let spawned = std::thread::Builder::new()
        .name("rampart-bgsave".into())
        .spawn(move || {
            let start = Instant::now();
            let dest = t.dest.clone();
            let result = run(&ks, snap, rx, t, done.is_some());
            let ok = result.is_ok();
            finished(&persist, &hooks.saved_dirty, dirty_at_start, ok, true);
            persist
                .last_bgsave_secs
                .store(start.elapsed().as_secs() as i64, Ordering::Relaxed);
            let saved = match result {
                Ok((bytes, file)) => {
                    tracing::info!(
                        "Background saving terminated with success ({}, {bytes} bytes of RDB)",
                        dest.display()
                    );
                    file.map(|f| (bytes, f))
                        .ok_or_else(|| "the snapshot file was not reopened".to_string())
                }
                Err(e) => {
                    tracing::warn!(
                        "Background saving error: {e:#} (the previous snapshot {} is unchanged)",
                        dest.display()
                    );
                    Err(format!("{e:#}"))
                }
            };
            *persist.started.lock() = None;
            persist.running.store(false, Ordering::Release);
            if let Some(done) = done {
                done(saved);
            }
        });
    if spawned.is_err() {
        // The snapshot was begun: it must end, or every write keeps
        // capturing shards.
        p.running.store(false, Ordering::Release);
        *p.started.lock() = None;
        return Err("ERR Can't start the background save thread");
    }
    Ok(())
}

/// BGSAVE SCHEDULE while one runs: start another when it ends.
pub fn schedule(srv: &Server) {
    srv.persist.scheduled.store(true, Ordering::Relaxed);
}

/// Waits for a running background save to end (shutdown, DEBUG RELOAD).
pub fn wait_bgsave(srv: &Server) {
    blocking(|| {
        while srv.persist.running() {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
}

/// Redis's `allPersistenceDisabled`: no `save` rules (there is no AOF).
pub fn persistence_disabled(srv: &Server) -> bool {
    rules(srv).is_empty()
}

/// The `save` rules (`save 3600 1 300 100`): pairs of seconds and changes.
fn rules(srv: &Server) -> Vec<(u64, u64)> {
    let v = srv.config.get("save").unwrap_or_default();
    let n: Vec<u64> = v
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    n.chunks_exact(2).map(|c| (c[0], c[1])).collect()
}

/// Whether writes are refused because the last background save failed
/// while `save` rules are set and `stop-writes-on-bgsave-error yes`
/// (Redis's MISCONF).
pub fn writes_refused(srv: &Server) -> bool {
    !srv.persist.last_ok.load(Ordering::Relaxed)
        && srv.config.flag("stop-writes-on-bgsave-error")
        && !rules(srv).is_empty()
}

/// Called on the `hz` clock: starts a background save when a `save` rule
/// is met or one was scheduled.
pub fn cron(srv: &Server) {
    let p = &srv.persist;
    if p.running() {
        return;
    }
    let now = now_ms();
    let dirty = srv.hooks.changes_since_save();
    let since = now / 1000 - p.lastsave().min(now / 1000);
    let retry_ok = p.last_ok.load(Ordering::Relaxed)
        || now.saturating_sub(p.last_try_ms.load(Ordering::Relaxed)) > RETRY_DELAY_MS;
    let due = rules(srv)
        .into_iter()
        .find(|(secs, changes)| dirty >= *changes && since >= *secs && retry_ok);
    let scheduled = p.scheduled.load(Ordering::Relaxed);
    if due.is_none() && !scheduled {
        return;
    }
    if let Some((secs, changes)) = due {
        tracing::info!("{changes} changes in {secs} seconds. Saving...");
    }
    let _gate = srv.keyspace.exclusive();
    if bgsave(srv).is_ok() {
        p.scheduled.store(false, Ordering::Relaxed);
    }
}

/// Saves before exiting when the `save` rules are set (or `save` is
/// forced), as Redis does on SHUTDOWN and SIGTERM. The caller holds the
/// exclusive gate.
pub fn shutdown_save(srv: &Server, force: bool, nosave: bool) -> Result<(), String> {
    if nosave || (!force && rules(srv).is_empty()) {
        return Ok(());
    }
    if srv.persist.running() {
        tracing::info!("Waiting for the background save to finish before the final save");
        wait_bgsave(srv);
    }
    tracing::info!("Saving the final RDB snapshot before exiting.");
    save(srv).map(|_| ())
}

/// Loads snapshot streams into the keyspace.
struct Loader<'a> {
    ks: &'a Keyspace,
    now: u64,
    loaded: u64,
    expired: u64,
    problem: Option<String>,
    /// Keys skipped as expired, kept when the caller asked for them.
    expired_keys: Option<Vec<(usize, Vec<u8>)>>,
    /// Function libraries' code, loaded once the keys are.
    functions: Vec<Vec<u8>>,
    /// A key already in the dataset is a problem rather than replaced
    /// (DEBUG RELOAD NOFLUSH without MERGE, where Redis stops on it).
    refuse_existing: bool,
}

impl LoadSink for Loader<'_> {
    fn function(&mut self, code: &[u8]) {
        self.functions.push(code.to_vec());
    }

    fn entry(
        &mut self,
        db: usize,
        key: &[u8],
        value: Value,
        expire_at_ms: Option<u64>,
    ) -> Result<(), RdbError> {
        if db >= self.ks.len() {
            if self.problem.is_none() {
                self.problem = Some(format!(
                    "the snapshot has keys in database {db}, but only {} databases are configured (raise `databases`)",
                    self.ks.len()
                ));
            }
            return Ok(());
        }
        if expire_at_ms.is_some_and(|at| at <= self.now) {
            self.expired += 1;
            if let Some(keys) = &mut self.expired_keys {
                keys.push((db, key.to_vec()));
            }
            return Ok(());
        }
        let refuse = self.refuse_existing;
        let inserted = self.ks.db(db).write(key, self.now, |s| {
            if refuse && s.exists() {
                return false;
            }
            s.insert(value, expire_at_ms);
            s.loaded();
            true
        });
        if !inserted {
            // Not the key itself: logs never hold keys or values.
            if self.problem.is_none() {
                self.problem = Some(format!(
                    "the snapshot has a key that is already in database {db} (DEBUG RELOAD NOFLUSH without MERGE)"
                ));
            }
            return Ok(());
        }
        self.loaded += 1;
        Ok(())
    }
}

/// Loads the file at `path` (envelope or plain RDB) into the keyspace,
/// adding to what is there. Returns the number of keys loaded.
pub(crate) fn load_file(srv: &Server, path: &Path, format: Format) -> anyhow::Result<u64> {
    load_file_with(srv, path, format, false, false).map(|l| l.keys)
}

/// What [`load_file_with`] read besides the keys.
pub(crate) struct Loaded {
    keys: u64,
    aux: Vec<(Vec<u8>, Vec<u8>)>,
    expired: Vec<(usize, Vec<u8>)>,
}

/// [`load_file`], also returning the AUX fields and, with
/// `keep_expired`, the keys skipped as expired; with `refuse_existing` a
/// key already in the dataset fails the load instead of being replaced.
pub(crate) fn load_file_with(
    srv: &Server,
    path: &Path,
    format: Format,
    keep_expired: bool,
    refuse_existing: bool,
) -> anyhow::Result<Loaded> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let limits = srv.config.encoding_limits();
    let mut loader = Loader {
        ks: &srv.keyspace,
        now: now_ms(),
        loaded: 0,
        expired: 0,
        problem: None,
        expired_keys: keep_expired.then(Vec::new),
        functions: Vec::new(),
        refuse_existing,
    };
    let start = Instant::now();
    // DEBUG SET-SKIP-CHECKSUM-VALIDATION 1 skips the CRC-64 check, as
    // Redis's rdbLoad does (the envelope's tags still authenticate an
    // encrypted file: only the RDB's own trailer goes unchecked).
    let verify = !srv.debug.skip_checksum.load(Ordering::Relaxed);
    let result = match format {
        Format::Plain => rdb::load_with(
            BufReader::with_capacity(1 << 20, file),
            &limits,
            &mut loader,
            verify,
        ),
        Format::Encrypted => {
            let Some(provider) = &srv.keys else {
                anyhow::bail!(
                    "{} is encrypted, but encryption-at-rest is no: there is no key provider to decrypt it",
                    path.display()
                );
            };
            let reader = block_on(
                srv.persist.runtime.get(),
                EnvelopeReader::open(BufReader::with_capacity(1 << 20, file), provider),
            )?
            .map_err(|e| anyhow::anyhow!("cannot decrypt {}: {e}", path.display()))?
            .require_eof(true);
            rdb::load_with(reader, &limits, &mut loader, verify)
        }
    };
    let stats = result.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if !loader.functions.is_empty() {
        srv.scripting.with_functions(|e| {
            for code in &loader.functions {
                if let Err(err) = e.load_library(code, true) {
                    tracing::warn!("Failed loading a function library from the snapshot: {err}");
                }
            }
        });
    }
    if let Some(p) = loader.problem {
        anyhow::bail!("{}: {p}", path.display());
    }
    let p = &srv.persist;
    p.loaded_keys.store(loader.loaded, Ordering::Relaxed);
    p.loaded_expired.store(loader.expired, Ordering::Relaxed);
    srv.hooks
        .saved_dirty
        .store(srv.hooks.dirty.get(), Ordering::Relaxed);
    tracing::info!(
        "Done loading RDB {}, keys loaded: {}, keys expired: {}, in {:.3} seconds",
        path.display(),
        loader.loaded,
        loader.expired,
        start.elapsed().as_secs_f64()
    );
    Ok(Loaded {
        keys: loader.loaded,
        aux: stats.aux,
        expired: loader.expired_keys.unwrap_or_default(),
    })
}

/// Whether this server starts as a replica (a valid `replicaof`), which
/// decides how a snapshot's replication position is taken up.
fn starts_as_replica(srv: &Server) -> bool {
    let conf = srv.config.get("replicaof").unwrap_or_default();
    let mut it = conf.split_whitespace();
    matches!(
        (it.next(), it.next().map(str::parse::<u16>)),
        (Some(_), Some(Ok(_)))
    )
}

/// `encryption-at-rest` as configured: the provider kind and key, or `None`.
fn configured_key(srv: &Server) -> Option<(String, Option<String>)> {
    srv.keys.as_ref()?;
    let kind = srv
        .config
        .get("kms-provider")
        .unwrap_or_else(|| "local".into());
    let key = match kind.as_str() {
        "aws" => srv.config.get("kms-key-id").filter(|k| !k.is_empty()),
        _ => None,
    };
    Some((kind, key))
}

const RESTORE_PATH: &str = "To change it, back the data up and restore it into a new data directory: \
`rampart snapshot decrypt` (or SAVE with the current settings) gives a plain dump.rdb, and \
`rampart-server --import-rdb dump.rdb` with the new settings in an empty directory creates the new dataset.";

/// Checks the data directory against the configuration, creating its
/// dataset marker on first start, and loads the snapshot if there is one.
/// With `import`, loads that plain RDB file instead and saves it as the
/// dataset's first snapshot. Errors stop the server: it never starts empty
/// over data it could not read.
///
/// With `set_aside` (`--set-aside-unreadable-snapshot`), a snapshot that
/// cannot be read is renamed to `<name>.unreadable-<unix time>` (never
/// deleted) and the server starts empty instead.
///
/// With `restore` (`--restore-from STORE/NAME`), a new dataset is seeded
/// from that backup or plain RDB object, written as its first snapshot
/// under this server's protection, then loaded.
pub fn startup(
    srv: &Server,
    import: Option<&Path>,
    set_aside: bool,
    restore: Option<&str>,
) -> anyhow::Result<()> {
    let dest = snapshot_path(srv);
    let dir = dest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| ".".into());
    remove_stale_temps(&dest);
    let want = configured_key(srv);
    let format = snapshot::sniff(&dest)?;
    let dataset = match Dataset::load(&dir)? {
        Some(d) => {
            if d.encrypted && want.is_none() {
                anyhow::bail!(
                    "The data directory {} holds a dataset encrypted at rest (created {}), but this configuration says encryption-at-rest no. At-rest encryption is fixed when a dataset is created. {RESTORE_PATH}",
                    dir.display(),
                    d.created
                );
            }
            if !d.encrypted && want.is_some() {
                anyhow::bail!(
                    "The data directory {} holds a dataset created without encryption at rest, but this configuration says encryption-at-rest yes. At-rest encryption is fixed when a dataset is created. {RESTORE_PATH}",
                    dir.display()
                );
            }
            if let (Some((kind, key)), Some(dk)) = (&want, &d.provider) {
                if kind != dk {
                    anyhow::bail!(
                        "The dataset in {} is encrypted with the {dk} key provider, but this configuration says kms-provider {kind}. The key is fixed when a dataset is created. {RESTORE_PATH}",
                        dir.display()
                    );
                }
                if key.is_some() && d.key.is_some() && key != &d.key {
                    anyhow::bail!(
                        "The dataset in {} is encrypted under KMS key {}, but this configuration names kms-key-id {}. The key is fixed when a dataset is created. {RESTORE_PATH}",
                        dir.display(),
                        d.key.as_deref().unwrap_or_default(),
                        key.as_deref().unwrap_or_default()
                    );
                }
            }
            d
        }
        None => {
            if format == Some(Format::Plain) && want.is_some() && import != Some(dest.as_path()) {
                anyhow::bail!(
                    "{} is a plaintext RDB file, and this data directory has no Rampart dataset yet. With encryption-at-rest yes Rampart does not read plaintext from its data directory implicitly: import it with `rampart-server --import-rdb {}` (which writes an encrypted snapshot and tells you when the plaintext can go), or start with `encryption-at-rest no` to run unencrypted like redis-server.",
                    dest.display(),
                    dest.display()
                );
            }
            if format == Some(Format::Encrypted) && want.is_none() {
                anyhow::bail!(
                    "{} is an encrypted snapshot, but this configuration says encryption-at-rest no. Start with encryption enabled and the key that sealed it, or decrypt it with `rampart snapshot decrypt` first.",
                    dest.display()
                );
            }
            let (provider, key) = match &want {
                Some((kind, key)) => (Some(kind.clone()), key.clone()),
                None => (None, None),
            };
            let d = Dataset::new(want.is_some(), provider, key);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
            d.save(&dir)?;
            tracing::info!(
                "Created dataset {} in {} (encryption at rest: {})",
                d.id,
                dir.display(),
                if d.encrypted { "on" } else { "off" }
            );
            d
        }
    };
    let _ = srv.persist.dataset.set(dataset);
    if let Some(src) = import {
        return import_rdb(srv, src, &dest, format);
    }
    if let Some(spec) = restore {
        if format.is_some() {
            anyhow::bail!(
                "--restore-from seeds a new dataset, but {} already holds a snapshot; start it in an empty data directory",
                dest.display()
            );
        }
        crate::backup::restore_from(srv, spec, &dest)
            .map_err(|e| anyhow::anyhow!("--restore-from {spec}: {e:#}"))?;
        let format = snapshot::sniff(&dest)?.unwrap_or(Format::Plain);
        load_file(srv, &dest, format)?;
        return Ok(());
    }
    match format {
        None => {
            tracing::info!("No snapshot at {}: starting with an empty dataset", dest.display());
            Ok(())
        }
        Some(Format::Plain) if want.is_some() => anyhow::bail!(
            "{} is a plaintext RDB file inside an encrypted dataset. Move it away, or import it with `rampart-server --import-rdb PATH`.",
            dest.display()
        ),
        Some(f) => match load_file_with(srv, &dest, f, true, false) {
            Ok(l) => {
                if let Some(info) = crate::repl::SaveInfo::from_aux(&l.aux) {
                    srv.repl.restore(&info, starts_as_replica(srv), &l.expired);
                }
                Ok(())
            }
            Err(e) if set_aside => {
                let aside = dest.with_file_name(format!(
                    "{}.unreadable-{}",
                    dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    now_ms() / 1000
                ));
                std::fs::rename(&dest, &aside).with_context(|| {
                    format!("Can't load the snapshot ({e:#}) nor set it aside as {}", aside.display())
                })?;
                for i in 0..srv.keyspace.len() {
                    drop(srv.keyspace.db(i).clear());
                }
                tracing::warn!(
                    "Can't load the snapshot: {e:#}. As asked (--set-aside-unreadable-snapshot), it was renamed to {} and the server starts with an empty dataset.",
                    aside.display()
                );
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!(
                "Can't load the snapshot: {e:#}. The server does not start on a snapshot it cannot read (the file is left as it is); move it away to start empty, start with --set-aside-unreadable-snapshot, or restore a backup."
            )),
        },
    }
}

fn import_rdb(
    srv: &Server,
    src: &Path,
    dest: &Path,
    existing: Option<Format>,
) -> anyhow::Result<()> {
    if existing == Some(Format::Encrypted) {
        anyhow::bail!(
            "--import-rdb would replace the existing snapshot {}; move it away first (or import into an empty data directory)",
            dest.display()
        );
    }
    match snapshot::sniff(src)? {
        None => anyhow::bail!("--import-rdb: {} does not exist", src.display()),
        Some(Format::Encrypted) => anyhow::bail!(
            "--import-rdb: {} is already a Rampart encrypted snapshot; copy it to {} instead",
            src.display(),
            dest.display()
        ),
        Some(Format::Plain) => {}
    }
    let n =
        load_file(srv, src, Format::Plain).map_err(|e| anyhow::anyhow!("--import-rdb: {e:#}"))?;
    {
        let _gate = srv.keyspace.exclusive();
        save(srv)
            .map_err(|e| anyhow::anyhow!("--import-rdb: saving the imported data failed: {e}"))?;
    }
    let same = std::fs::canonicalize(src).ok() == std::fs::canonicalize(dest).ok();
    if srv.keys.is_some() {
        if same {
            tracing::warn!(
                "Imported {n} keys from {}; it has been replaced by the encrypted snapshot (the old plaintext blocks may remain on the device until overwritten)",
                src.display()
            );
        } else {
            tracing::warn!(
                "Imported {n} keys from {} into the encrypted snapshot {}. The plaintext file {} is still there: remove it once you no longer need it.",
                src.display(),
                dest.display(),
                src.display()
            );
        }
    } else {
        tracing::info!(
            "Imported {n} keys from {} into {}",
            src.display(),
            dest.display()
        );
    }
    Ok(())
}

/// Temp files of a save that a crash interrupted (never loaded: the
/// snapshot they would have replaced is still whole).
fn remove_stale_temps(dest: &Path) {
    let (Some(dir), Some(name)) = (dest.parent(), dest.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            tracing::info!(
                "Removing {} left by an interrupted save",
                e.path().display()
            );
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// DEBUG RELOAD: save, empty the keyspace, load the snapshot back. The
/// caller holds the exclusive gate.
pub fn debug_reload(srv: &Server, opts: ReloadOptions) -> Result<(), String> {
    wait_bgsave(srv);
    if opts.save {
        save(srv)?;
    }
    let dest = snapshot_path(srv);
    let format = snapshot::sniff(&dest)
        .map_err(|e| format!("ERR {e}"))?
        .ok_or_else(|| "ERR Error trying to load the RDB dump".to_string())?;
    if opts.flush {
        for i in 0..srv.keyspace.len() {
            drop(srv.keyspace.db(i).clear());
        }
    }
    blocking(|| load_file_with(srv, &dest, format, false, !opts.merge)).map_err(|e| {
        tracing::warn!("DEBUG RELOAD: {e:#}");
        "ERR Error trying to load the RDB dump".to_string()
    })?;
    tracing::warn!("DB reloaded by DEBUG RELOAD");
    Ok(())
}

/// DEBUG RELOAD's options, Redis's defaults by [`Default`]: save first,
/// empty the dataset, refuse a key that is already there.
///
/// ```
/// let o = rampart_server::persist::ReloadOptions::default();
/// assert!(o.save && o.flush && !o.merge);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ReloadOptions {
    /// Save the dataset before loading it back (not NOSAVE).
    pub save: bool,
    /// Empty the dataset before loading (not NOFLUSH).
    pub flush: bool,
    /// MERGE: a loaded key replaces one already there.
    pub merge: bool,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            save: true,
            flush: true,
            merge: false,
        }
    }
}

/// The `# Persistence` section of INFO.
pub fn info(srv: &Server) -> String {
    let p = &srv.persist;
    let running = p.running();
    let current = p
        .started
        .lock()
        .map(|s| s.elapsed().as_secs() as i64)
        .unwrap_or(-1);
    format!(
        "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
        srv.hooks.changes_since_save(),
        running as u8,
        p.lastsave(),
        if p.last_ok.load(Ordering::Relaxed) { "ok" } else { "err" },
        p.last_bgsave_secs.load(Ordering::Relaxed),
        current,
        p.saves.load(Ordering::Relaxed),
        p.loaded_expired.load(Ordering::Relaxed),
        p.loaded_keys.load(Ordering::Relaxed),
    )
}
