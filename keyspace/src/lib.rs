//! rampart-keyspace: the in-memory data model, with no I/O.
//!
//! One abstraction, the [`Keyspace`]: N numbered [`Db`]s, each a sharded hash
//! table of boxed [`Node`]s (key, [`Value`], expiry, access time), plus the
//! process-wide gate that makes multi-key commands atomic. Ordinary
//! single-key commands hold the gate shared and lock one shard; commands Redis
//! promises are atomic across keys (MSET, RENAME, MULTI/EXEC, FLUSHALL,
//! SWAPDB…) hold it exclusive. Key events (writes, expiries) are reported
//! through [`Notify`] so the server can drive WATCH, stats and replication.

pub mod db;
pub mod evict;
pub mod glob;
pub mod hash;
mod key;
pub mod list;
pub mod listpack;
mod pack;
pub mod sds;
pub mod set;
pub mod stream;
pub mod value;
pub mod zset;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use db::{Db, Detached, Node, Slot, SlotFn, Sweep};
pub use key::Key;
pub use pack::Pack;

/// How often a wait for the gate looks at its reason to give up.
const GATE_POLL: std::time::Duration = std::time::Duration::from_millis(5);
pub use value::{EncodingLimits, Kind, TableShape, Value};

/// Receives key events from the keyspace. Called outside shard locks but
/// while the command that caused the event still holds the gate.
pub trait Notify: Send + Sync {
    /// `key` in database `db` was written or deleted by a command.
    fn modified(&self, db: usize, key: &[u8]);
    /// `key` in database `db` was found expired and deleted.
    fn expired(&self, db: usize, key: &[u8]);
    /// `key` was added to database `db` where it did not exist (Redis's
    /// `dbAdd`, which announces the `new` keyspace event). Called after
    /// [`Notify::expired`] for an expired key it replaced and before
    /// [`Notify::modified`], so the command's own events come after it.
    fn created(&self, _db: usize, _key: &[u8]) {}
}

/// A [`Notify`] that ignores every event.
pub struct Ignore;

impl Notify for Ignore {
    fn modified(&self, _: usize, _: &[u8]) {}
    fn expired(&self, _: usize, _: &[u8]) {}
}

/// Receives a point-in-time snapshot, one shard at a time (see
/// [`Keyspace::begin_snapshot`]).
pub trait Capture: Send + Sync {
    /// The live keys of one shard of database `db`, as they were when the
    /// snapshot began. Called exactly once per shard per snapshot, with the
    /// shard locked, by the snapshot's own pass (or by FLUSHDB/SWAPDB
    /// reaching the shard first); so it should copy or serialize what it
    /// needs and return quickly. Ordinary writes never call it: the first
    /// change to a key the pass has not reached keeps the key's old state
    /// aside (moved, or copied when changed in place), and the pass hands
    /// over that state instead of the current one.
    fn shard(&self, db: usize, nodes: &mut dyn Iterator<Item = &Node>);

    /// Called by the snapshot's own pass after each shard, outside every
    /// lock: a sink that defers its work (copies now, encodes later) waits
    /// here so deferred work cannot pile up. Writers never call it.
    fn pace(&self) {}
}

/// The running snapshot, shared by every [`Db`].
#[derive(Default)]
pub(crate) struct SnapshotState {
    /// Epoch of the running snapshot; 0 when none runs.
    pub(crate) active: AtomicU64,
    last: AtomicU64,
    /// Unix ms at which the running snapshot began: keys expired by then
    /// are left out.
    pub(crate) started_ms: AtomicU64,
    pub(crate) sink: Mutex<Option<Arc<dyn Capture>>>,
}

/// A snapshot in progress: finish it with [`Keyspace::finish_snapshot`].
#[must_use = "a snapshot must be finished, or writes keep capturing shards"]
pub struct Snapshot {
    epoch: u64,
}

/// All databases and the atomicity gate.
///
/// ```
/// use rampart_keyspace::{Keyspace, Value};
/// let ks = Keyspace::new(16);
/// {
///     let _atomic = ks.exclusive(); // e.g. MSET
///     ks.db(0).write(b"a", 0, |s| s.insert(Value::string(b"1"), None));
///     ks.db(0).write(b"b", 0, |s| s.insert(Value::string(b"2"), None));
/// }
/// assert_eq!(ks.db(0).len(), 2);
/// ```
pub struct Keyspace {
    dbs: Box<[Db]>,
    gate: RwLock<()>,
    snapshot: Arc<SnapshotState>,
    /// What key accesses record (LRU clock or LFU counter).
    pub access: Arc<evict::Access>,
}

impl Keyspace {
    /// `databases` empty databases that report nothing.
    pub fn new(databases: usize) -> Keyspace {
        Keyspace::with_notify(databases, Arc::new(Ignore))
    }

    /// `databases` empty databases reporting key events to `notify`.
    pub fn with_notify(databases: usize, notify: Arc<dyn Notify>) -> Keyspace {
        Keyspace::build(databases, notify, None)
    }

    /// [`Keyspace::with_notify`] for cluster mode: keys are placed by their
    /// hash slot (`slot_of`, Redis's CRC16 with hash tags) and counted per
    /// slot, so [`Db::count_in_slot`] is O(1) and [`Db::keys_in_slot`]
    /// visits one shard. Every other operation behaves as in
    /// [`Keyspace::with_notify`].
    pub fn with_slots(databases: usize, notify: Arc<dyn Notify>, slot_of: db::SlotFn) -> Keyspace {
        Keyspace::build(databases, notify, Some(slot_of))
    }

    fn build(databases: usize, notify: Arc<dyn Notify>, slot_of: Option<db::SlotFn>) -> Keyspace {
        let seed = rand::random::<u64>();
        let snapshot = Arc::new(SnapshotState::default());
        let access = Arc::new(evict::Access::default());
        Keyspace {
            dbs: (0..databases.max(1))
                .map(|i| {
                    Db::new(
                        i,
                        seed,
                        notify.clone(),
                        snapshot.clone(),
                        access.clone(),
                        slot_of,
                    )
                })
                .collect(),
            gate: RwLock::new(()),
            snapshot,
            access,
        }
    }

    /// Database `i`. Panics if `i` is out of range: callers validate indexes
    /// from clients against [`Keyspace::len`] first.
    pub fn db(&self, i: usize) -> &Db {
        &self.dbs[i]
    }

    /// Number of databases.
    pub fn len(&self) -> usize {
        self.dbs.len()
    }

    /// Always false: there is at least one database.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Held by ordinary commands for their whole execution.
    pub fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read()
    }

    /// Held by commands that must be atomic across keys.
    pub fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gate.write()
    }

    /// [`Keyspace::shared`], unless `give_up` turns true while it waits
    /// (checked every few milliseconds): a client waiting behind a script
    /// that runs past its time limit must get `-BUSY`, not wait it out.
    ///
    /// ```
    /// use rampart_keyspace::Keyspace;
    /// let ks = Keyspace::new(1);
    /// let held = ks.exclusive();
    /// assert!(ks.shared_unless(|| true).is_none());
    /// drop(held);
    /// assert!(ks.shared_unless(|| true).is_some());
    /// ```
    pub fn shared_unless(&self, give_up: impl Fn() -> bool) -> Option<RwLockReadGuard<'_, ()>> {
        if let Some(g) = self.gate.try_read() {
            return Some(g);
        }
        loop {
            if give_up() {
                return None;
            }
            if let Some(g) = self.gate.try_read_for(GATE_POLL) {
                return Some(g);
            }
        }
    }

    /// [`Keyspace::exclusive`], unless `give_up` turns true while it waits.
    ///
    /// ```
    /// use rampart_keyspace::Keyspace;
    /// let ks = Keyspace::new(1);
    /// let held = ks.shared();
    /// assert!(ks.exclusive_unless(|| true).is_none());
    /// drop(held);
    /// assert!(ks.exclusive_unless(|| true).is_some());
    /// ```
    pub fn exclusive_unless(&self, give_up: impl Fn() -> bool) -> Option<RwLockWriteGuard<'_, ()>> {
        if let Some(g) = self.gate.try_write() {
            return Some(g);
        }
        loop {
            if give_up() {
                return None;
            }
            if let Some(g) = self.gate.try_write_for(GATE_POLL) {
                return Some(g);
            }
        }
    }

    /// Starts a point-in-time snapshot without fork: from now on, the first
    /// change to each key keeps its old state aside until the snapshot's
    /// pass, [`Keyspace::finish_snapshot`], hands every shard to `sink` as
    /// it was when the snapshot began. Call it holding the exclusive gate ([`Keyspace::exclusive`]),
    /// so no command is half-applied at the instant the snapshot describes.
    /// `now` (Unix ms) decides which keys count as expired. Returns `None`
    /// while another snapshot runs.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use rampart_keyspace::{Capture, Keyspace, Node, Value};
    /// struct Keys(Mutex<Vec<(Vec<u8>, Vec<u8>)>>);
    /// impl Capture for Keys {
    ///     fn shard(&self, _db: usize, nodes: &mut dyn Iterator<Item = &Node>) {
    ///         let mut v = self.0.lock().unwrap();
    ///         v.extend(nodes.map(|n| (n.key.as_bytes().to_vec(), n.value.as_str().unwrap().to_vec())));
    ///     }
    /// }
    /// let ks = Keyspace::new(1);
    /// ks.db(0).write(b"k", 0, |s| s.insert(Value::string(b"old"), None));
    /// let keys = Arc::new(Keys(Mutex::new(Vec::new())));
    /// let snap = { let _gate = ks.exclusive(); ks.begin_snapshot(keys.clone(), 0) }.unwrap();
    /// ks.db(0).write(b"k", 0, |s| s.insert(Value::string(b"new"), None));
    /// ks.finish_snapshot(snap);
    /// assert_eq!(*keys.0.lock().unwrap(), vec![(b"k".to_vec(), b"old".to_vec())]);
    /// ```
    pub fn begin_snapshot(&self, sink: Arc<dyn Capture>, now: u64) -> Option<Snapshot> {
        let st = &self.snapshot;
        if st.active.load(Ordering::Acquire) != 0 {
            return None;
        }
        let epoch = st.last.fetch_add(1, Ordering::AcqRel) + 1;
        *st.sink.lock() = Some(sink);
        st.started_ms.store(now, Ordering::Release);
        st.active.store(epoch, Ordering::Release);
        Some(Snapshot { epoch })
    }

    /// Whether a snapshot is running.
    pub fn snapshot_running(&self) -> bool {
        self.snapshot.active.load(Ordering::Acquire) != 0
    }

    /// Hands every shard not yet captured to the snapshot's sink, then ends
    /// the snapshot. Takes time proportional to the dataset: run it off the
    /// event loop. Writers are only delayed while their own shard is being
    /// captured.
    pub fn finish_snapshot(&self, snap: Snapshot) {
        for db in self.dbs.iter() {
            db.capture_rest(snap.epoch);
        }
        // Every shard is captured now, so no writer calls the sink again.
        self.snapshot.active.store(0, Ordering::Release);
        *self.snapshot.sink.lock() = None;
    }
}

/// A stand-in for Redis's CRC16 key slot in tests: any fixed spread of keys
/// over 0..16384 exercises the per-slot index the same way.
#[cfg(test)]
pub(crate) fn toy_slot(key: &[u8]) -> u16 {
    let h = key
        .iter()
        .fold(2166136261u32, |h, b| (h ^ *b as u32).wrapping_mul(16777619));
    (h % 16384) as u16
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    #[derive(Default)]
    struct Collect(StdMutex<Vec<(usize, Vec<u8>, i64)>>);

    impl Capture for Collect {
        fn shard(&self, db: usize, nodes: &mut dyn Iterator<Item = &Node>) {
            let mut v = self.0.lock().unwrap();
            for n in nodes {
                let s = n.value.as_str().unwrap_or_default();
                let i = std::str::from_utf8(s).ok().and_then(|s| s.parse().ok());
                v.push((db, n.key.as_bytes().to_vec(), i.unwrap_or(-1)));
            }
        }
    }

    fn int(ks: &Keyspace, db: usize, key: &str, i: i64) {
        ks.db(db)
            .write(key.as_bytes(), 0, |s| s.insert(Value::int(i), None));
    }

    #[test]
    fn writes_delete_flush_and_swap_after_begin_are_invisible() {
        let ks = Keyspace::new(2);
        for i in 0..2000 {
            int(&ks, 0, &format!("a{i}"), i);
        }
        int(&ks, 1, "b", 7);
        let sink = Arc::new(Collect::default());
        let snap = ks.begin_snapshot(sink.clone(), 0).unwrap();
        assert!(ks.begin_snapshot(sink.clone(), 0).is_none());
        for i in 0..1000 {
            int(&ks, 0, &format!("a{i}"), -5);
            int(&ks, 0, &format!("new{i}"), 1);
        }
        ks.db(0).write(b"a1500", 0, |s| s.remove());
        ks.db(0).swap_with(ks.db(1));
        ks.db(1).clear();
        ks.finish_snapshot(snap);
        assert!(!ks.snapshot_running());
        let mut got = sink.0.lock().unwrap().clone();
        got.sort();
        let mut want: Vec<_> = (0..2000)
            .map(|i| (0, format!("a{i}").into_bytes(), i))
            .collect();
        want.push((1, b"b".to_vec(), 7));
        want.sort();
        assert_eq!(got, want);
        // Writes after the end no longer reach the sink.
        int(&ks, 0, "late", 1);
        assert_eq!(sink.0.lock().unwrap().len(), 2001);
    }

    /// Every kind of change, by several threads, while the snapshot's pass
    /// runs beside them: the snapshot is exactly the keyspace at its start.
    #[test]
    fn the_snapshot_is_the_start_whatever_changes_race_the_pass() {
        // In cluster mode too, where keys are placed by hash slot.
        for (seed, cluster) in (0..8u64).flat_map(|s| [(s, false), (s, true)]) {
            let ks = Arc::new(if cluster {
                Keyspace::with_slots(2, Arc::new(Ignore), toy_slot)
            } else {
                Keyspace::new(2)
            });
            let mut want = Vec::new();
            for i in 0..4000i64 {
                let db = (i % 2) as usize;
                // Some keys are expired at the start (400 < 500), some
                // expire while the snapshot runs (1000), most never.
                let at = match i % 7 {
                    0 => Some(400),
                    1 => Some(1000),
                    _ => None,
                };
                let key = format!("k{i}");
                ks.db(db)
                    .write(key.as_bytes(), 0, |s| s.insert(Value::int(i), at));
                if at != Some(400) {
                    want.push((db, key.into_bytes(), i));
                }
            }
            let sink = Arc::new(Collect::default());
            let snap = {
                let _gate = ks.exclusive();
                ks.begin_snapshot(sink.clone(), 500).unwrap()
            };
            // Some changes surely before the pass, then more during it.
            change(&ks, seed * 3, 3000);
            let writers: Vec<_> = (1..3)
                .map(|t| {
                    let ks = ks.clone();
                    std::thread::spawn(move || change(&ks, seed * 3 + t, 6000))
                })
                .collect();
            ks.finish_snapshot(snap);
            for w in writers {
                w.join().unwrap();
            }
            let mut got = sink.0.lock().unwrap().clone();
            got.sort();
            want.sort();
            assert_eq!(got, want, "seed {seed} cluster {cluster}");
            if cluster {
                // The per-slot counters survived the races exactly.
                for db in 0..2 {
                    let mut per_slot = vec![0usize; 16384];
                    ks.db(db)
                        .for_each(0, |n| per_slot[toy_slot(&n.key) as usize] += 1);
                    for (slot, &n) in per_slot.iter().enumerate() {
                        assert_eq!(ks.db(db).count_in_slot(slot as u16), n, "slot {slot}");
                    }
                }
            }
        }
    }

    /// `n` random changes of every kind to keys k0..k4499 of databases 0
    /// and 1, at times 600..2000.
    fn change(ks: &Keyspace, seed: u64, n: usize) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for _ in 0..n {
            let db = ks.db(rng.random_range(0..2));
            let key = format!("k{}", rng.random_range(0..4500));
            let key = key.as_bytes();
            let now = rng.random_range(600..2000);
            match rng.random_range(0..7) {
                0 => db.write(key, now, |s| s.insert(Value::int(-1), None)),
                1 => db.write(key, now, |s| {
                    if let Some(v) = s.value_mut() {
                        *v = Value::int(-2);
                    }
                }),
                2 => db.write(key, now, |s| {
                    s.set_expire_at(Some(now + 1));
                }),
                3 => db.write(key, now, |s| {
                    s.remove();
                }),
                4 => db.get(key, now, |_| ()),
                5 => {
                    db.sweep_expired(rng.random_range(0..256), 8, now);
                }
                _ => db.write(key, now, |s| {
                    s.set_expire_at(None);
                }),
            }
        }
    }

    #[test]
    fn keys_expired_at_the_start_are_left_out() {
        let ks = Keyspace::new(1);
        ks.db(0)
            .write(b"gone", 0, |s| s.insert(Value::int(1), Some(50)));
        ks.db(0)
            .write(b"stays", 0, |s| s.insert(Value::int(2), Some(500)));
        let sink = Arc::new(Collect::default());
        let snap = ks.begin_snapshot(sink.clone(), 100).unwrap();
        ks.finish_snapshot(snap);
        assert_eq!(*sink.0.lock().unwrap(), vec![(0, b"stays".to_vec(), 2)]);
    }
}
