//! A database: a sharded hash table of boxed nodes with expiry.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use hashbrown::HashTable;
use parking_lot::RwLock;

use crate::evict::Access;
use crate::{Key, Notify, SnapshotState, Value};

/// log2 of the number of shards per database. 256 shards keep lock
/// contention negligible on many cores and bound the work of one SCAN step
/// to a 256th of the database.
const SHARD_BITS: u32 = 8;
const SHARDS: usize = 1 << SHARD_BITS;

/// Redis Cluster's number of hash slots.
const SLOTS: usize = 16384;
/// log2 of [`SLOTS`]: in cluster mode a key's hash carries its slot in
/// these top bits (see [`KeyHasher`]).
const SLOT_BITS: u32 = 14;
/// Hash slots per shard in cluster mode (the slot's low bits).
const SLOTS_PER_SHARD: usize = SLOTS / SHARDS;

/// Computes a key's hash slot (CRC16 with hash tags); handed in by the
/// server so this crate needs no cluster code.
pub type SlotFn = fn(&[u8]) -> u16;

/// Hashes keys for the tables. In cluster mode the top 14 bits of the hash
/// are the key's hash slot, so a slot's keys all live in one shard (shard =
/// slot / 64) and sit together in SCAN order: finding or dropping a slot's
/// keys visits one shard of 256, and the slot comes back from the hash
/// without another CRC16. Everything that orders or places keys (shards,
/// tables, SCAN cursors, snapshots) goes through this one function, so both
/// modes keep every invariant; outside cluster mode it costs one predictable
/// branch.
struct KeyHasher {
    state: foldhash::fast::FixedState,
    slot_of: Option<SlotFn>,
}

impl KeyHasher {
    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        let h = self.state.hash_one(key);
        match self.slot_of {
            None => h,
            Some(f) => ((f(key) as u64 % SLOTS as u64) << (64 - SLOT_BITS)) | (h >> SLOT_BITS),
        }
    }
}

/// The hash slot carried by a cluster-mode hash (see [`KeyHasher`]).
fn slot_of_hash(h: u64) -> usize {
    (h >> (64 - SLOT_BITS)) as usize
}

/// One key with its value, expiry and access record. Nodes are boxed so that a
/// table slot is one pointer: with power-of-two tables a slot is often only
/// half full, and an 8-byte slot wastes far less than a 64-byte one.
pub struct Node {
    /// The key.
    pub key: Key,
    /// The value.
    pub value: Value,
    expire_at: u64,
    /// The LRU clock of the last access, or under an LFU policy the
    /// minute of the last decrement and the access counter (see
    /// [`crate::evict`]).
    access: AtomicU32,
}

impl Node {
    /// Absolute expiry in Unix milliseconds, if the key is volatile.
    pub fn expire_at(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }

    /// Whether the key is logically gone at `now` (Unix ms).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now
    }

    /// Seconds since the key was last read or written (OBJECT IDLETIME),
    /// meaningful while an LRU clock is kept (no LFU policy).
    pub fn idle_secs(&self, now: u64) -> u64 {
        ((now / 1000) as u32).wrapping_sub(self.access.load(Ordering::Relaxed)) as u64
    }

    /// Makes the key look last accessed `secs` seconds before `now` (RESTORE
    /// … IDLETIME); clamped to the Unix epoch.
    pub fn set_idle_secs(&self, now: u64, secs: u64) {
        let t = (now / 1000).saturating_sub(secs);
        self.access.store(t as u32, Ordering::Relaxed);
    }

    /// The access counter at `now` under an LFU policy (OBJECT FREQ):
    /// decayed by one every `decay_minutes` since its last decrement.
    pub fn freq(&self, now: u64, decay_minutes: u32) -> u8 {
        crate::evict::decayed(self.access_word(), now, decay_minutes)
    }

    /// Sets the LFU access counter as of `now` (RESTORE … FREQ).
    pub fn set_freq(&self, now: u64, freq: u8) {
        let minutes = ((now / 60_000) & 0xffff) as u32;
        self.access
            .store((minutes << 8) | freq as u32, Ordering::Relaxed);
    }

    /// The raw access word (for eviction and snapshots' idle/freq).
    pub fn access_word(&self) -> u32 {
        self.access.load(Ordering::Relaxed)
    }

    /// About how many bytes freeing the node gives back: the node, its
    /// key and value, and its table slot. What eviction counts as freed
    /// until the allocator's figures catch up.
    pub fn mem_usage(&self) -> usize {
        let key = match &self.key {
            Key::Inline { .. } => 0,
            Key::Heap(b) => b.len(),
        };
        std::mem::size_of::<Node>() + key + self.value.heap_size() + 8
    }

    /// A deep copy, for the snapshot to keep while the key changes.
    fn copy(&self) -> Node {
        Node {
            key: self.key.clone(),
            value: self.value.clone(),
            expire_at: self.expire_at,
            access: AtomicU32::new(self.access_word()),
        }
    }

    fn touch(&self, now: u64, access: &Access) {
        let was = self.access_word();
        let t = access.touched(was, now);
        // Skip the store when unchanged so readers don't bounce the cache line.
        if was != t {
            self.access.store(t, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct Shard {
    map: HashTable<Box<Node>>,
    volatile: usize,
    /// The epoch of the last snapshot that captured this shard.
    captured: AtomicU64,
    /// While a snapshot runs and has not captured this shard yet: each key
    /// changed since the snapshot began, as it was then, by table hash.
    before: HashTable<(u64, Before)>,
    /// In cluster mode, the number of keys (expired ones not yet collected
    /// included, as Redis counts them) in each of the shard's 64 hash
    /// slots; `None` otherwise, so other modes pay no memory.
    slots: Option<Box<[u32; SLOTS_PER_SHARD]>>,
}

/// A key as a running snapshot must see it.
enum Before {
    /// It held this.
    Was(Box<Node>),
    /// It did not exist.
    Absent(Key),
}

impl Before {
    fn key(&self) -> &[u8] {
        match self {
            Before::Was(n) => n.key.as_bytes(),
            Before::Absent(k) => k.as_bytes(),
        }
    }
}

impl Shard {
    /// Counts a key added (`+1`) or removed (`-1`) under hash `h` (the
    /// key's hash, not the table's) in its slot's counter, in cluster mode.
    #[inline]
    fn count(&mut self, h: u64, added: bool) {
        if let Some(c) = self.slots.as_mut() {
            let c = &mut c[slot_of_hash(h) % SLOTS_PER_SHARD];
            *c = if added {
                c.saturating_add(1)
            } else {
                c.saturating_sub(1)
            };
        }
    }

    /// Whether `before` has an entry for the key.
    fn kept(&self, hash: u64, key: &[u8]) -> bool {
        self.before.find(hash, |(_, b)| b.key() == key).is_some()
    }

    /// Records what the snapshot must see for a key changed for the first
    /// time since it began.
    fn keep(&mut self, hash: u64, b: Before) {
        self.before.insert_unique(hash, (hash, b), |(h, _)| *h);
    }
}

/// Whether a database may hold keys, and keys with a TTL: set by the
/// writes that add them, cleared only by [`Db::sample`] after a pass that
/// found none. So eviction skips empty databases with one load instead of
/// locking their 256 shards, and writes pay a load, not a shared counter.
#[derive(Default)]
struct Hints {
    keys: AtomicBool,
    volatile: AtomicBool,
}

impl Hints {
    fn note(&self, volatile: bool) {
        if !self.keys.load(Ordering::Relaxed) {
            self.keys.store(true, Ordering::Relaxed);
        }
        if volatile && !self.volatile.load(Ordering::Relaxed) {
            self.volatile.store(true, Ordering::Relaxed);
        }
    }

    fn flag(&self, volatile: bool) -> &AtomicBool {
        if volatile {
            &self.volatile
        } else {
            &self.keys
        }
    }
}

/// The table's contents after FLUSHDB/FLUSHALL, detached so the caller can
/// free them on another thread (`FLUSHALL ASYNC`).
pub struct Detached(#[allow(dead_code)] Vec<HashTable<Box<Node>>>);

/// A database's sizes, read in one pass by [`Db::stats`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DbStats {
    /// Keys, expired ones not yet collected included ([`Db::len`]).
    pub keys: usize,
    /// Keys with an expiry ([`Db::volatile_len`]).
    pub volatile: usize,
    /// The tables' bytes beyond the nodes ([`Db::table_bytes`]).
    pub table_bytes: usize,
}

/// One numbered database.
///
/// Every operation takes the lock of the one shard that holds the key, and
/// hands the caller a view inside a closure so nothing escapes the lock.
///
/// ```
/// use rampart_keyspace::{Keyspace, Value};
/// let ks = Keyspace::new(16);
/// let db = ks.db(0);
/// db.write(b"k", 0, |slot| slot.insert(Value::string(b"v"), None));
/// assert_eq!(db.get(b"k", 0, |n| n.map(|n| n.value.as_str().map(<[u8]>::to_vec))), Some(Some(b"v".to_vec())));
/// ```
pub struct Db {
    index: usize,
    shards: Box<[RwLock<Shard>]>,
    hasher: KeyHasher,
    notify: Arc<dyn Notify>,
    snapshot: Arc<SnapshotState>,
    access: Arc<Access>,
    hints: Hints,
}

fn shard_of(h: u64) -> usize {
    (h >> (64 - SHARD_BITS)) as usize
}

/// The hash given to the table. The key's hash has the shard bits (and in
/// cluster mode all 14 slot bits) at the top, where hashbrown takes its
/// 7-bit tag, and a tagged workload such as `redis-benchmark --cluster`
/// (every key of a node in one slot) leaves no other bit free to vary
/// there. Multiplying by an odd constant mixes every bit of the hash into
/// the tag while the bucket index keeps the random low bits; being
/// invertible, [`key_hash`] gets the key's hash (and its slot) back.
/// (Swapping the halves, as before, left a one-slot table using half its
/// buckets, then a quarter: lookups took most of a SET's CPU at 200,000
/// keys a node.)
fn table_hash(h: u64) -> u64 {
    h.wrapping_mul(MIX)
}

/// The key's hash from its [`table_hash`].
fn key_hash(t: u64) -> u64 {
    t.wrapping_mul(UNMIX)
}

/// An odd constant (the golden ratio's), and its inverse modulo 2^64.
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
const UNMIX: u64 = inverse(MIX);

/// The multiplicative inverse of an odd `m` modulo 2^64 (Newton's
/// iteration doubles the correct low bits each step: 3, 6, ... 96).
const fn inverse(m: u64) -> u64 {
    let mut x = m;
    let mut i = 0;
    while i < 5 {
        x = x.wrapping_mul(2u64.wrapping_sub(m.wrapping_mul(x)));
        i += 1;
    }
    x
}

impl Db {
    pub(crate) fn new(
        index: usize,
        seed: u64,
        notify: Arc<dyn Notify>,
        snapshot: Arc<SnapshotState>,
        access: Arc<Access>,
        slot_of: Option<SlotFn>,
    ) -> Db {
        let shard = || Shard {
            slots: slot_of.map(|_| Box::new([0; SLOTS_PER_SHARD])),
            ..Shard::default()
        };
        Db {
            index,
            shards: (0..SHARDS).map(|_| RwLock::new(shard())).collect(),
            hasher: KeyHasher {
                state: foldhash::fast::FixedState::with_seed(seed),
                slot_of,
            },
            notify,
            snapshot,
            access,
            hints: Hints::default(),
        }
    }

    /// Whether a running snapshot has yet to capture `shard`: then a write
    /// must first keep what it changes (see [`Shard::keep`]). One atomic
    /// load when no snapshot runs.
    #[inline]
    fn pending(&self, shard: &Shard) -> bool {
        let epoch = self.snapshot.active.load(Ordering::Acquire);
        epoch != 0 && shard.captured.load(Ordering::Acquire) != epoch
    }

    /// Before a change to a whole shard (FLUSHDB, SWAPDB): a running
    /// snapshot that has not reached it captures it now.
    fn preserve(&self, shard: &mut Shard) {
        if self.pending(shard) {
            self.capture(shard, self.snapshot.active.load(Ordering::Acquire));
            drop(std::mem::take(&mut shard.before));
        }
    }

    /// Hands the shard, as it was when snapshot `epoch` began, to the
    /// snapshot's sink: its keys, except those changed since, which are
    /// given as `before` keeps them.
    #[cold]
    fn capture(&self, shard: &Shard, epoch: u64) {
        // The swap makes the capture happen once even if a snapshot visitor
        // (holding a read lock) races a writer for another shard lock.
        if shard.captured.swap(epoch, Ordering::AcqRel) == epoch {
            return;
        }
        let Some(sink) = self.snapshot.sink.lock().clone() else {
            return;
        };
        let now = self.snapshot.started_ms.load(Ordering::Acquire);
        let live = |n: &&Node| !n.is_expired(now);
        if shard.before.is_empty() {
            sink.shard(self.index, &mut shard.map.iter().map(|n| &**n).filter(live));
            return;
        }
        let unchanged = |n: &&Node| {
            let h = table_hash(self.hash(n.key.as_bytes()));
            !shard.kept(h, n.key.as_bytes())
        };
        let kept = shard.before.iter().filter_map(|(_, b)| match b {
            Before::Was(n) => Some(&**n),
            Before::Absent(_) => None,
        });
        sink.shard(
            self.index,
            &mut shard
                .map
                .iter()
                .map(|n| &**n)
                .filter(unchanged)
                .chain(kept)
                .filter(live),
        );
    }

    /// Hands every shard not captured yet in snapshot `epoch` to the
    /// snapshot's sink (the snapshot's own pass over the database).
    /// Writers wait only while their own shard is being copied.
    pub(crate) fn capture_rest(&self, epoch: u64) {
        for s in self.shards.iter() {
            let captured = {
                let s = s.read();
                let todo = s.captured.load(Ordering::Acquire) != epoch;
                if todo {
                    self.capture(&s, epoch);
                }
                todo
            };
            if captured {
                // What writers kept is stale now: free it here, not on
                // a connection thread.
                let stale = std::mem::take(&mut s.write().before);
                drop(stale);
            }
            let sink = self.snapshot.sink.lock().clone();
            if let Some(sink) = sink {
                sink.pace();
            }
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash(key)
    }

    /// Reads `key` at time `now` (Unix ms). An expired key reads as absent
    /// and is deleted (lazy expiry).
    pub fn get<R>(&self, key: &[u8], now: u64, f: impl FnOnce(Option<&Node>) -> R) -> R {
        let h = self.hash(key);
        let shard = self.shards[shard_of(h)].read();
        let found = shard.map.find(table_hash(h), |n| n.key.as_bytes() == key);
        match found {
            Some(n) if n.is_expired(now) => {
                drop(shard);
                self.write(key, now, |_| ());
                f(None)
            }
            Some(n) => {
                n.touch(now, &self.access);
                f(Some(n))
            }
            None => f(None),
        }
    }

    /// Reads `key` like [`Db::get`] but leaves its access time alone
    /// (OBJECT IDLETIME, TYPE-like inspection that Redis does with NOTOUCH).
    pub fn peek<R>(&self, key: &[u8], now: u64, f: impl FnOnce(Option<&Node>) -> R) -> R {
        let h = self.hash(key);
        let shard = self.shards[shard_of(h)].read();
        let found = shard.map.find(table_hash(h), |n| n.key.as_bytes() == key);
        match found {
            Some(n) if n.is_expired(now) => {
                drop(shard);
                self.write(key, now, |_| ());
                f(None)
            }
            Some(n) => f(Some(n)),
            None => f(None),
        }
    }

    /// Whether `key` exists at `now`, without touching its access time.
    pub fn exists(&self, key: &[u8], now: u64) -> bool {
        let h = self.hash(key);
        let shard = self.shards[shard_of(h)].read();
        let found = shard.map.find(table_hash(h), |n| n.key.as_bytes() == key);
        matches!(found, Some(n) if !n.is_expired(now))
    }

    /// Opens `key` for writing at `now`. An expired key is deleted first, so
    /// the closure only ever sees live data.
    pub fn write<R>(&self, key: &[u8], now: u64, f: impl FnOnce(&mut Slot<'_>) -> R) -> R {
        let h = self.hash(key);
        let lock = &self.shards[shard_of(h)];
        let mut shard = lock.write();
        let mut slot = self.open(&mut shard, h, key, now);
        let mut expired = slot.purge_expired();
        if expired {
            // Announced before the closure runs, as Redis expires a key at
            // lookup: what the command then reports (a miss, a new key)
            // comes after `expired`. The rare expired case pays a relock.
            drop(shard);
            self.notify.expired(self.index, key);
            shard = lock.write();
            slot = self.open(&mut shard, h, key, now);
            expired = slot.purge_expired();
        }
        let r = f(&mut slot);
        let (modified, created) = (slot.modified, slot.created);
        drop(shard);
        if expired {
            self.notify.expired(self.index, key);
        }
        if created {
            self.notify.created(self.index, key);
        }
        if modified {
            self.notify.modified(self.index, key);
        }
        r
    }

    /// Deletes `key` as it is stored, TTL or not, as Redis's `dbDelete`:
    /// the destination of a STORE command whose result is empty goes this
    /// way, so a key that expired but was not yet collected leaves with the
    /// command's `del` and no `expired` event. Returns whether a key was
    /// there.
    ///
    /// ```
    /// use rampart_keyspace::{Keyspace, Value};
    /// let ks = Keyspace::new(1);
    /// let db = ks.db(0);
    /// db.write(b"k", 1000, |s| s.insert(Value::string(b"v"), Some(1500)));
    /// assert!(db.delete(b"k", 2000));
    /// assert!(!db.delete(b"k", 2000));
    /// ```
    pub fn delete(&self, key: &[u8], now: u64) -> bool {
        let h = self.hash(key);
        let mut shard = self.shards[shard_of(h)].write();
        let gone = self.open(&mut shard, h, key, now).remove();
        drop(shard);
        // The old value is freed here, outside the shard lock.
        let gone = gone.is_some();
        if gone {
            self.notify.modified(self.index, key);
        }
        gone
    }

    fn open<'a>(&'a self, shard: &'a mut Shard, h: u64, key: &'a [u8], now: u64) -> Slot<'a> {
        let remember = self.pending(shard) && !shard.kept(table_hash(h), key);
        Slot {
            shard,
            hasher: &self.hasher,
            access: &self.access,
            hints: &self.hints,
            hash: table_hash(h),
            key,
            now,
            modified: false,
            created: false,
            remember,
        }
    }

    /// Number of keys, expired-but-not-yet-collected ones included (as
    /// Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().map.len()).sum()
    }

    /// Whether the database holds no keys.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.read().map.is_empty())
    }

    /// Bytes the database's tables take beyond the nodes (a slot and a
    /// control byte per bucket), for MEMORY STATS' hashtable overhead.
    pub fn table_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().map.capacity() * (std::mem::size_of::<usize>() + 1))
            .sum()
    }

    /// Slots the database's shard tables have room for without growing
    /// (DEBUG HTSTATS' table size).
    pub fn table_slots(&self) -> usize {
        self.shards.iter().map(|s| s.read().map.capacity()).sum()
    }

    /// Keys, keys with an expiry and table bytes (see [`Db::len`],
    /// [`Db::volatile_len`], [`Db::table_bytes`]) in one pass: one read
    /// lock per shard instead of one per shard and figure, for INFO and
    /// metrics scrapes, which want all three of every database.
    ///
    /// ```
    /// use rampart_keyspace::{Keyspace, Value};
    /// let ks = Keyspace::new(1);
    /// let db = ks.db(0);
    /// db.write(b"k", 0, |slot| slot.insert(Value::string(b"v"), Some(u64::MAX)));
    /// let s = db.stats();
    /// assert_eq!((s.keys, s.volatile, s.table_bytes), (db.len(), db.volatile_len(), db.table_bytes()));
    /// ```
    pub fn stats(&self) -> DbStats {
        let mut st = DbStats::default();
        for s in self.shards.iter() {
            let s = s.read();
            st.keys += s.map.len();
            st.volatile += s.volatile;
            st.table_bytes += s.map.capacity() * (std::mem::size_of::<usize>() + 1);
        }
        st
    }

    /// Number of keys with an expiry.
    pub fn volatile_len(&self) -> usize {
        self.shards.iter().map(|s| s.read().volatile).sum()
    }

    /// Whether the database runs in cluster mode (built with a slot
    /// function), keeping the per-slot index.
    pub fn has_slots(&self) -> bool {
        self.hasher.slot_of.is_some()
    }

    /// Number of keys in hash `slot`, expired ones not yet collected
    /// included (CLUSTER COUNTKEYSINSLOT, as Redis's `countKeysInSlot`).
    /// O(1): a counter kept by every insert and delete. Always 0 outside
    /// cluster mode.
    ///
    /// ```
    /// use rampart_keyspace::{Keyspace, Value};
    /// // A toy slot function: the key's first byte.
    /// let first = |k: &[u8]| k.first().map_or(0, |b| *b as u16);
    /// let ks = Keyspace::with_slots(1, std::sync::Arc::new(rampart_keyspace::Ignore), first);
    /// let db = ks.db(0);
    /// db.write(b"\x05a", 0, |s| s.insert(Value::int(1), None));
    /// db.write(b"\x05b", 0, |s| s.insert(Value::int(1), None));
    /// assert_eq!(db.count_in_slot(5), 2);
    /// assert_eq!(db.keys_in_slot(5, 10).len(), 2);
    /// ```
    pub fn count_in_slot(&self, slot: u16) -> usize {
        let slot = slot as usize % SLOTS;
        let s = self.shards[slot / SLOTS_PER_SHARD].read();
        s.slots
            .as_ref()
            .map_or(0, |c| c[slot % SLOTS_PER_SHARD] as usize)
    }

    /// Up to `max` keys of hash `slot` (CLUSTER GETKEYSINSLOT), expired
    /// ones not yet collected included, as Redis lists them. Visits one
    /// shard (a 256th of the keys), and none when the slot is empty.
    /// Empty outside cluster mode.
    pub fn keys_in_slot(&self, slot: u16, max: usize) -> Vec<Key> {
        let slot = slot as usize % SLOTS;
        if max == 0 || self.count_in_slot(slot as u16) == 0 {
            return Vec::new();
        }
        let s = self.shards[slot / SLOTS_PER_SHARD].read();
        s.map
            .iter()
            .filter(|n| slot_of_hash(self.hash(&n.key)) == slot)
            .take(max)
            .map(|n| n.key.clone())
            .collect()
    }

    /// Every key of the hash slots `slots` (to delete the keys of slots
    /// another node took over). Visits only the shards holding those
    /// slots' keys. Empty outside cluster mode.
    pub fn keys_in_slots(&self, slots: &[u16]) -> Vec<Key> {
        let mut wanted = vec![false; SLOTS];
        let mut shards = vec![false; SHARDS];
        for &slot in slots {
            let slot = slot as usize % SLOTS;
            if self.count_in_slot(slot as u16) > 0 {
                wanted[slot] = true;
                shards[slot / SLOTS_PER_SHARD] = true;
            }
        }
        let mut out = Vec::new();
        for (i, _) in shards.iter().enumerate().filter(|(_, &t)| t) {
            let s = self.shards[i].read();
            out.extend(
                s.map
                    .iter()
                    .filter(|n| wanted[slot_of_hash(self.hash(&n.key))])
                    .map(|n| n.key.clone()),
            );
        }
        out
    }

    /// Empties the database and hands back its old contents.
    pub fn clear(&self) -> Detached {
        let mut old = Vec::new();
        for s in self.shards.iter() {
            let mut s = s.write();
            self.preserve(&mut s);
            if !s.map.is_empty() {
                old.push(std::mem::take(&mut s.map));
            }
            s.volatile = 0;
            if let Some(c) = s.slots.as_mut() {
                **c = [0; SLOTS_PER_SHARD];
            }
        }
        Detached(old)
    }

    /// Exchanges the contents of two databases (SWAPDB). The caller holds the
    /// exclusive gate, so no other command observes the half-swapped state.
    pub fn swap_with(&self, other: &Db) {
        for (a, b) in self.shards.iter().zip(other.shards.iter()) {
            let (mut a, mut b) = (a.write(), b.write());
            self.preserve(&mut a);
            other.preserve(&mut b);
            std::mem::swap(&mut a.map, &mut b.map);
            std::mem::swap(&mut a.volatile, &mut b.volatile);
            std::mem::swap(&mut a.slots, &mut b.slots);
        }
        self.hints.note(true);
        other.hints.note(true);
    }

    /// Calls `f` on every live key (KEYS, and snapshots later).
    pub fn for_each(&self, now: u64, mut f: impl FnMut(&Node)) {
        for s in self.shards.iter() {
            let s = s.read();
            for n in s.map.iter() {
                if !n.is_expired(now) {
                    f(n);
                }
            }
        }
    }

    /// One SCAN step. The cursor is a position in the hash order of the
    /// keys (the top 63 bits of the hash, shard bits first, so cursors stay
    /// within a signed 64-bit integer for clients that parse them so). A
    /// table growing or shrinking never moves a key across the cursor: every
    /// key present for the whole iteration is returned exactly once.
    /// `count` bounds the keys visited; `keep` filters them (MATCH, TYPE)
    /// after the visit, as in Redis.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        now: u64,
        mut keep: impl FnMut(&Node) -> bool,
    ) -> (u64, Vec<Key>) {
        const ORDER_BITS: u32 = 63;
        let count = count.max(1);
        let mut out = Vec::new();
        let mut visited = 0;
        let mut c = cursor;
        loop {
            let s = (c >> (ORDER_BITS - SHARD_BITS)) as usize;
            if s >= SHARDS {
                return (0, out);
            }
            let shard = self.shards[s].read();
            let mut cand: Vec<(u64, &Node)> = shard
                .map
                .iter()
                .filter_map(|n| {
                    let o = self.hash(&n.key) >> 1;
                    (o >= c).then_some((o, &**n))
                })
                .collect();
            let need = count - visited;
            let mut next = None;
            if cand.len() > need {
                cand.select_nth_unstable_by_key(need - 1, |e| e.0);
                let boundary = cand[need - 1].0;
                // Keys sharing the boundary position go out together, or the
                // next step would skip them.
                cand.retain(|e| e.0 <= boundary);
                next = Some(if boundary >= (1 << ORDER_BITS) - 1 {
                    0
                } else {
                    boundary + 1
                });
            }
            visited += cand.len();
            for (_, n) in cand {
                if !n.is_expired(now) && keep(n) {
                    out.push(n.key.clone());
                }
            }
            if let Some(next) = next {
                return (next, out);
            }
            if s == SHARDS - 1 {
                return (0, out);
            }
            c = ((s + 1) as u64) << (ORDER_BITS - SHARD_BITS);
            if visited >= count {
                return (c, out);
            }
        }
    }

    /// A random live key (RANDOMKEY), or `None` when empty.
    pub fn random_key(&self, now: u64) -> Option<Key> {
        let start = rand::random::<u64>() as usize % SHARDS;
        // A few attempts, so a database full of expired keys still ends.
        for attempt in 0..SHARDS * 2 {
            let shard = self.shards[(start + attempt) % SHARDS].read();
            let len = shard.map.len();
            if len == 0 {
                continue;
            }
            let i = rand::random::<u64>() as usize % len;
            if let Some(n) = shard.map.iter().nth(i) {
                if !n.is_expired(now) {
                    return Some(n.key.clone());
                }
            }
        }
        None
    }

    /// Hands `f` up to `count` keys from about one random place in the
    /// database (Redis's `dictGetSomeKeys`): a random shard, from a random
    /// bucket on, in table order, moving on to the next shards until
    /// `count` are found or `10 * count` buckets were looked at (but at
    /// least one key, if there is one). Only keys with a TTL when
    /// `volatile`. Expired keys are included. Returns how many were found.
    ///
    /// ```
    /// use rampart_keyspace::{Keyspace, Value};
    /// let ks = Keyspace::new(1);
    /// ks.db(0).write(b"a", 0, |s| s.insert(Value::int(1), None));
    /// ks.db(0).write(b"b", 0, |s| s.insert(Value::int(1), Some(5)));
    /// let mut seen = Vec::new();
    /// ks.db(0).sample(5, true, |n| seen.push(n.key.to_vec()));
    /// assert_eq!(seen, vec![b"b".to_vec()]);
    /// ```
    pub fn sample(&self, count: usize, volatile: bool, mut f: impl FnMut(&Node)) -> usize {
        let hint = self.hints.flag(volatile);
        if !hint.load(Ordering::Relaxed) {
            return 0;
        }
        // Cleared before the pass and set again if it finds a key: a write
        // adding a key after the clear sets it itself, and one before it
        // is seen by the pass, as each shard is read after the clear.
        hint.store(false, Ordering::Relaxed);
        let count = count.max(1);
        let mut budget = count * 10;
        let mut found = 0;
        let start = rand::random::<u64>() as usize;
        'shards: for i in 0..SHARDS {
            let shard = self.shards[(start + i) % SHARDS].read();
            let live = if volatile {
                shard.volatile
            } else {
                shard.map.len()
            };
            if live == 0 {
                continue;
            }
            let buckets = shard.map.num_buckets();
            let from = rand::random::<u64>() as usize;
            for b in 0..buckets {
                let n = shard.map.get_bucket((from + b) % buckets);
                // Keys without a TTL cost nothing when only volatile keys
                // count: a shard holding some is scanned until they show.
                if let Some(n) = n {
                    if volatile && n.expire_at == 0 {
                        continue;
                    }
                    f(n);
                    found += 1;
                    if found >= count {
                        break 'shards;
                    }
                }
                budget = budget.saturating_sub(1);
                // Out of steps: stop, but not empty-handed.
                if budget == 0 && found > 0 {
                    break 'shards;
                }
            }
        }
        if found > 0 {
            hint.store(true, Ordering::Relaxed);
        }
        found
    }

    /// Active expiry: deletes expired keys from up to `max_shards` shards
    /// that hold volatile keys, starting at shard `start`. Returns the shard
    /// to resume from and how many volatile keys were sampled and deleted.
    pub fn sweep_expired(&self, start: usize, max_shards: usize, now: u64) -> Sweep {
        let mut sweep = Sweep::default();
        let mut removed = Vec::new();
        let mut i = start % SHARDS;
        for _ in 0..SHARDS {
            if sweep.shards >= max_shards {
                break;
            }
            {
                let mut s = self.shards[i].write();
                if s.volatile > 0 {
                    let pending = self.pending(&s);
                    sweep.shards += 1;
                    let removed_before = removed.len();
                    let mut gone = Vec::new();
                    s.map.retain(|n| {
                        if n.expire_at != 0 {
                            sweep.sampled += 1;
                            sweep.ttl_sum += n.expire_at.saturating_sub(now);
                            if n.expire_at <= now {
                                removed.push(n.key.clone());
                                if pending {
                                    gone.push(Box::new(n.copy()));
                                }
                                return false;
                            }
                        }
                        true
                    });
                    s.volatile -= removed.len() - removed_before;
                    if s.slots.is_some() {
                        for k in &removed[removed_before..] {
                            let h = self.hash(k);
                            s.count(h, false);
                        }
                    }
                    if s.map.capacity() > 64 && s.map.len() * 8 < s.map.capacity() {
                        let len = s.map.len();
                        s.map
                            .shrink_to(len * 2, |n| table_hash(self.hash(n.key.as_bytes())));
                    }
                    // A running snapshot that has not reached this shard
                    // began before these keys expired, maybe: it keeps them.
                    for n in gone {
                        let h = table_hash(self.hash(n.key.as_bytes()));
                        if !s.kept(h, n.key.as_bytes()) {
                            s.keep(h, Before::Was(n));
                        }
                    }
                }
            }
            i = (i + 1) % SHARDS;
        }
        sweep.next = i;
        sweep.expired = removed.len();
        for k in &removed {
            self.notify.expired(self.index, k);
            self.notify.modified(self.index, k);
        }
        sweep
    }
}

/// What one active-expiry step did.
#[derive(Default, Debug)]
pub struct Sweep {
    /// Shard to resume from.
    pub next: usize,
    /// Shards visited.
    pub shards: usize,
    /// Volatile keys looked at.
    pub sampled: usize,
    /// Keys deleted.
    pub expired: usize,
    /// Sum of the remaining TTLs of the sampled keys (for `avg_ttl`).
    pub ttl_sum: u64,
}

/// A key opened for writing, inside its shard's lock.
pub struct Slot<'a> {
    shard: &'a mut Shard,
    hasher: &'a KeyHasher,
    access: &'a Access,
    hints: &'a Hints,
    hash: u64,
    key: &'a [u8],
    now: u64,
    modified: bool,
    /// The key did not exist and was inserted (reported to
    /// [`Notify::created`]).
    created: bool,
    /// A running snapshot still needs this key as it was: keep it before
    /// the first change.
    remember: bool,
}

impl Slot<'_> {
    /// Gives the snapshot the key as it was (`node`), once.
    fn keep(&mut self, node: Option<Box<Node>>) {
        if std::mem::take(&mut self.remember) {
            let b = node.map_or_else(|| Before::Absent(Key::new(self.key)), Before::Was);
            self.shard.keep(self.hash, b);
        }
    }

    /// Gives the snapshot a copy of the key as it is, once.
    fn keep_copy(&mut self) {
        if self.remember {
            let copy = self.find().map(|n| Box::new(n.copy()));
            self.keep(copy);
        }
    }

    fn find(&self) -> Option<&Node> {
        let key = self.key;
        self.shard
            .map
            .find(self.hash, |n| n.key.as_bytes() == key)
            .map(|n| &**n)
    }

    fn find_mut(&mut self) -> Option<&mut Node> {
        let key = self.key;
        self.shard
            .map
            .find_mut(self.hash, |n| n.key.as_bytes() == key)
            .map(|n| &mut **n)
    }

    fn purge_expired(&mut self) -> bool {
        let now = self.now;
        if self.find().is_some_and(|n| n.is_expired(now)) {
            let n = self.take();
            // It may have been live when a running snapshot began.
            self.keep(n);
            true
        } else {
            false
        }
    }

    /// The current time this write runs at (Unix ms).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The key being written.
    pub fn key(&self) -> &[u8] {
        self.key
    }

    /// Whether the key exists.
    pub fn exists(&self) -> bool {
        self.find().is_some()
    }

    /// The node, read-only.
    pub fn node(&self) -> Option<&Node> {
        self.find()
    }

    /// The value, read-only.
    pub fn value(&self) -> Option<&Value> {
        self.find().map(|n| &n.value)
    }

    /// The value, for modification: marks the key modified (WATCH, dirty
    /// counter), so only call it when the command does write.
    pub fn value_mut(&mut self) -> Option<&mut Value> {
        let now = self.now;
        self.find()?;
        self.keep_copy();
        let access = self.access;
        let n = self.find_mut()?;
        n.touch(now, access);
        self.modified = true;
        self.find_mut().map(|n| &mut n.value)
    }

    /// Changes how the value is represented, not what it holds (SORT
    /// turns a listpack sorted set into a skiplist, as Redis does). Not a
    /// modification: no WATCH, dirty counter or LRU touch. A snapshot in
    /// progress needs no copy of the old form either, since either form
    /// saves the same members.
    pub fn reencode(&mut self, f: impl FnOnce(&mut Value)) {
        if let Some(n) = self.find_mut() {
            f(&mut n.value);
        }
    }

    /// The key's absolute expiry (Unix ms), if any.
    pub fn expire_at(&self) -> Option<u64> {
        self.find().and_then(Node::expire_at)
    }

    /// Sets or clears the expiry of an existing key; returns false when the
    /// key does not exist.
    pub fn set_expire_at(&mut self, at: Option<u64>) -> bool {
        let at = at.unwrap_or(0);
        if self.find().is_none() {
            return false;
        }
        self.keep_copy();
        let Some(n) = self.find_mut() else {
            return false;
        };
        let was = n.expire_at;
        n.expire_at = at;
        match (was != 0, at != 0) {
            (false, true) => {
                self.shard.volatile += 1;
                self.hints.note(true);
            }
            (true, false) => self.shard.volatile -= 1,
            _ => {}
        }
        self.modified = true;
        true
    }

    /// Stores `value` (replacing any old value) with the given expiry.
    pub fn insert(&mut self, value: Value, expire_at: Option<u64>) {
        let now = self.now;
        let at = expire_at.unwrap_or(0);
        self.modified = true;
        let remember = self.remember;
        let access = self.access;
        if let Some(n) = self.find_mut() {
            let was = n.expire_at;
            let old = std::mem::replace(&mut n.value, value);
            let old = remember.then(|| {
                // The old value moves to the snapshot: no copy.
                Box::new(Node {
                    key: n.key.clone(),
                    value: old,
                    expire_at: was,
                    access: AtomicU32::new(n.access_word()),
                })
            });
            n.expire_at = at;
            // An overwrite counts as an access: under LFU the key keeps
            // its counter, as Redis's dbOverwrite does.
            n.touch(now, access);
            match (was != 0, at != 0) {
                (false, true) => {
                    self.shard.volatile += 1;
                    self.hints.note(true);
                }
                (true, false) => self.shard.volatile -= 1,
                _ => {}
            }
            if old.is_some() {
                self.keep(old);
            }
            return;
        }
        self.keep(None);
        self.created = true;
        let node = Box::new(Node {
            key: Key::new(self.key),
            value,
            expire_at: at,
            access: AtomicU32::new(access.fresh(now)),
        });
        if at != 0 {
            self.shard.volatile += 1;
        }
        self.shard.count(key_hash(self.hash), true);
        self.hints.note(at != 0);
        let hasher = self.hasher;
        let rehash = |n: &Node| table_hash(hasher.hash(n.key.as_bytes()));
        let map = &mut self.shard.map;
        if map.len() == map.capacity() {
            // No room left. hashbrown doubles a table whose keys fill more
            // than half its slots even when the room went to tombstones
            // (deleted keys), so eviction churn (a delete for every
            // insert) leaves tables up to four times their keys. When
            // tombstones hold an eighth of the room or more, rebuild at the
            // same size instead: O(n), as hashbrown's in-place rehash, at
            // most once per n/7 inserts.
            let buckets = map.allocation_size().saturating_sub(16) / 9;
            let room = if buckets < 8 {
                buckets.saturating_sub(1)
            } else {
                buckets / 8 * 7
            };
            if map.len() * 8 <= room * 7 {
                let old = std::mem::replace(map, HashTable::with_capacity(room));
                for n in old {
                    let h = rehash(&n);
                    map.insert_unique(h, n, |n| rehash(n));
                }
            }
        }
        map.insert_unique(self.hash, node, |n| rehash(n));
    }

    /// Says the key this write inserted was loaded from a snapshot rather
    /// than created by a command: no [`Notify::created`], as Redis's
    /// `dbAddRDBLoad` announces nothing.
    pub fn loaded(&mut self) {
        self.created = false;
    }

    /// Stores a whole node taken from elsewhere (RENAME, MOVE), keeping its
    /// value and expiry but not its key.
    pub fn insert_node(&mut self, node: Node) {
        let at = node.expire_at();
        self.insert(node.value, at);
    }

    /// Deletes the key, returning its node.
    pub fn remove(&mut self) -> Option<Box<Node>> {
        self.keep_copy();
        let n = self.take()?;
        self.modified = true;
        Some(n)
    }

    fn take(&mut self) -> Option<Box<Node>> {
        let key = self.key;
        let entry = self
            .shard
            .map
            .find_entry(self.hash, |n| n.key.as_bytes() == key)
            .ok()?;
        let (n, _) = entry.remove();
        if n.expire_at != 0 {
            self.shard.volatile -= 1;
        }
        self.shard.count(key_hash(self.hash), false);
        // Give back the table's memory once it is mostly empty, as Redis
        // shrinks a dict under 10% full: after a big DEL or eviction the
        // empty slots would otherwise count against maxmemory for good.
        let map = &mut self.shard.map;
        if map.capacity() > 64 && map.len() * 8 < map.capacity() {
            let hasher = self.hasher;
            map.shrink_to(map.len() * 2, |n| table_hash(hasher.hash(n.key.as_bytes())));
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use crate::{toy_slot, Ignore, Keyspace, Value};
    use std::collections::{HashMap, HashSet};

    #[test]
    fn table_hash_is_invertible_and_spreads_one_slot() {
        use super::{key_hash, table_hash, MIX, UNMIX};
        assert_eq!(MIX.wrapping_mul(UNMIX), 1);
        for h in [0u64, 1, u64::MAX, 0x1234_5678_9abc_def0, 77 << 50 | 12345] {
            assert_eq!(key_hash(table_hash(h)), h);
        }
        // 600,000 keys of one slot (the top 14 bits fixed), as a node gets
        // from redis-benchmark --cluster: hashbrown's tag (top 7 bits)
        // takes every value and a 2^20-bucket index spreads as random
        // (about 457,000 distinct; halves swapped gave at most 2^18).
        let hasher = foldhash::fast::FixedState::with_seed(7);
        let mut tags = HashSet::new();
        let mut buckets = HashSet::new();
        for i in 0..600_000u64 {
            let f = std::hash::BuildHasher::hash_one(&hasher, format!("key:{{06S}}:{i:012}"));
            let t = table_hash(5000 << 50 | f >> 14);
            tags.insert(t >> 57);
            buckets.insert(t & ((1 << 20) - 1));
        }
        assert_eq!(tags.len(), 128);
        assert!(buckets.len() > 400_000, "{} buckets", buckets.len());
    }
    use std::sync::Arc;

    fn cluster_keyspace() -> Keyspace {
        Keyspace::with_slots(2, Arc::new(Ignore), toy_slot)
    }

    /// The counters and slot listings agree with a full pass over the keys.
    fn check_index(db: &crate::Db) {
        let mut per_slot: HashMap<u16, HashSet<Vec<u8>>> = HashMap::new();
        db.for_each(0, |n| {
            per_slot
                .entry(toy_slot(&n.key))
                .or_default()
                .insert(n.key.to_vec());
        });
        for slot in 0..16384u16 {
            let want = per_slot.remove(&slot).unwrap_or_default();
            assert_eq!(db.count_in_slot(slot), want.len(), "slot {slot}");
            let got: HashSet<Vec<u8>> = db
                .keys_in_slot(slot, usize::MAX)
                .iter()
                .map(|k| k.to_vec())
                .collect();
            assert_eq!(got, want, "slot {slot}");
        }
    }

    #[test]
    fn cluster_mode_counts_and_lists_keys_per_slot() {
        let ks = cluster_keyspace();
        let db = ks.db(0);
        for i in 0..3000u64 {
            db.write(format!("k{i}").as_bytes(), 0, |s| {
                s.insert(Value::int(i as i64), (i % 3 == 0).then_some(100))
            });
        }
        // Overwrites do not count twice (and make k0..k499 persistent).
        for i in 0..500u64 {
            db.write(format!("k{i}").as_bytes(), 0, |s| {
                s.insert(Value::int(0), None)
            });
        }
        check_index(db);
        for i in 1000..1500u64 {
            db.delete(format!("k{i}").as_bytes(), 0);
        }
        check_index(db);
        // Active expiry removes keys behind the index's back.
        let mut next = 0;
        for _ in 0..64 {
            next = db.sweep_expired(next, 16, 200).next;
        }
        check_index(db);
        let volatile_left = (500..3000u64)
            .filter(|i| i % 3 == 0 && !(1000..1500).contains(i))
            .count();
        assert_eq!(db.len(), 2500 - volatile_left);
        let some = toy_slot(b"k7");
        let listed = db.keys_in_slot(some, 1);
        assert_eq!(listed.len(), 1);
        assert_eq!(toy_slot(&listed[0]), some);
        assert!(db.keys_in_slot(some, 0).is_empty());
    }

    #[test]
    fn cluster_mode_flush_and_swap_move_the_counters_with_the_keys() {
        let ks = cluster_keyspace();
        for i in 0..1000 {
            ks.db(0).write(format!("a{i}").as_bytes(), 0, |s| {
                s.insert(Value::int(1), None)
            });
        }
        ks.db(1).write(b"b", 0, |s| s.insert(Value::int(1), None));
        ks.db(0).swap_with(ks.db(1));
        check_index(ks.db(0));
        check_index(ks.db(1));
        assert_eq!(ks.db(0).count_in_slot(toy_slot(b"b")), 1);
        drop(ks.db(1).clear());
        check_index(ks.db(1));
        assert_eq!(ks.db(1).len(), 0);
    }

    #[test]
    fn keys_in_slots_finds_exactly_those_slots_keys() {
        let ks = cluster_keyspace();
        let db = ks.db(0);
        for i in 0..2000 {
            db.write(format!("k{i}").as_bytes(), 0, |s| {
                s.insert(Value::int(1), None)
            });
        }
        let slots: Vec<u16> = (0..2000)
            .step_by(7)
            .map(|i| toy_slot(format!("k{i}").as_bytes()))
            .collect();
        let got: HashSet<Vec<u8>> = db
            .keys_in_slots(&slots)
            .iter()
            .map(|k| k.to_vec())
            .collect();
        let want: HashSet<Vec<u8>> = (0..2000)
            .map(|i| format!("k{i}").into_bytes())
            .filter(|k| slots.contains(&toy_slot(k)))
            .collect();
        assert_eq!(got, want);
        // Outside cluster mode there is no index: nothing is claimed.
        let plain = Keyspace::new(1);
        plain
            .db(0)
            .write(b"k1", 0, |s| s.insert(Value::int(1), None));
        assert_eq!(plain.db(0).count_in_slot(toy_slot(b"k1")), 0);
        assert!(plain.db(0).keys_in_slots(&[toy_slot(b"k1")]).is_empty());
    }

    #[test]
    fn cluster_mode_scan_random_and_sample_see_every_key() {
        let ks = cluster_keyspace();
        let db = ks.db(0);
        for i in 0..1000 {
            db.write(format!("k{i}").as_bytes(), 0, |s| {
                s.insert(Value::int(i), None)
            });
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            let (next, keys) = db.scan(cursor, 10, 0, |_| true);
            for k in keys {
                assert!(seen.insert(k.to_vec()), "duplicate {k:?}");
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 1000);
        let k = db.random_key(0).map(|k| k.to_vec());
        assert!(k.is_some_and(|k| seen.contains(&k)));
        let mut sampled = 0;
        db.sample(5, false, |n| {
            assert!(seen.contains(&n.key.to_vec()));
            sampled += 1;
        });
        assert!(sampled > 0);
    }

    #[test]
    fn node_is_one_cache_line() {
        assert!(std::mem::size_of::<super::Node>() <= 64);
        // A small hash or sorted set lives in the value itself, not behind
        // another box.
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    #[test]
    fn expiry_is_lazy_and_counted() {
        let ks = Keyspace::new(1);
        let db = ks.db(0);
        db.write(b"a", 1000, |s| s.insert(Value::string(b"1"), Some(2000)));
        assert_eq!(db.volatile_len(), 1);
        assert!(db.exists(b"a", 1999));
        assert!(!db.exists(b"a", 2000));
        assert!(db.get(b"a", 2000, |n| n.is_none()));
        assert_eq!(db.len(), 0);
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn scan_returns_every_key_while_the_table_grows() {
        let ks = Keyspace::new(1);
        let db = ks.db(0);
        for i in 0..1000 {
            db.write(format!("k{i}").as_bytes(), 0, |s| {
                s.insert(Value::int(i), None)
            });
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut extra = 0;
        loop {
            let (next, keys) = db.scan(cursor, 10, 0, |_| true);
            for k in keys {
                assert!(seen.insert(k.as_bytes().to_vec()), "duplicate {k:?}");
            }
            // Grow the table between steps.
            for _ in 0..20 {
                db.write(format!("x{extra}").as_bytes(), 0, |s| {
                    s.insert(Value::int(1), None)
                });
                extra += 1;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..1000 {
            assert!(seen.contains(format!("k{i}").as_bytes()), "missing k{i}");
        }
    }

    #[test]
    fn churn_at_a_constant_size_keeps_tables_tight() {
        // An evicting cache deletes a key for every insert: the tables'
        // deleted slots must not make them grow past what the keys need.
        let ks = Keyspace::new(1);
        let db = ks.db(0);
        let key = |i: u32| format!("k{i}").into_bytes();
        let n = 20_000;
        for i in 0..n {
            db.write(&key(i), 0, |s| s.insert(Value::int(1), None));
        }
        let room = |db: &crate::Db| -> usize {
            db.shards
                .iter()
                .map(|s| s.read().map.allocation_size())
                .sum()
        };
        let before = room(db);
        for i in n..n * 20 {
            db.write(&key(i - n), 0, |s| s.remove());
            db.write(&key(i), 0, |s| s.insert(Value::int(1), None));
        }
        assert_eq!(db.len(), n as usize);
        let after = room(db);
        assert!(
            after <= before * 3 / 2,
            "tables grew from {before} to {after} bytes"
        );
        for i in n * 19..n * 20 {
            assert!(db.exists(&key(i), 0));
        }
    }

    #[test]
    fn tables_shrink_when_mostly_emptied() {
        let ks = Keyspace::new(1);
        let db = ks.db(0);
        let key = |i: u32| format!("k{i}").into_bytes();
        for i in 0..100_000 {
            db.write(&key(i), 0, |s| s.insert(Value::int(1), None));
        }
        let full: usize = db.shards.iter().map(|s| s.read().map.capacity()).sum();
        for i in 0..99_000 {
            db.write(&key(i), 0, |s| s.remove());
        }
        let after: usize = db.shards.iter().map(|s| s.read().map.capacity()).sum();
        assert!(after * 8 < full, "capacity {full} -> {after}");
        for i in 99_000..100_000 {
            assert!(db.exists(&key(i), 0));
        }
    }

    #[test]
    fn sweep_deletes_only_expired() {
        let ks = Keyspace::new(1);
        let db = ks.db(0);
        for i in 0..100u64 {
            db.write(format!("k{i}").as_bytes(), 0, |s| {
                s.insert(Value::int(1), (i % 2 == 0).then_some(10))
            });
        }
        let mut expired = 0;
        let mut next = 0;
        for _ in 0..300 {
            let s = db.sweep_expired(next, 16, 100);
            expired += s.expired;
            next = s.next;
        }
        assert_eq!(expired, 50);
        assert_eq!(db.len(), 50);
    }
}
