//! Eviction under `maxmemory`: the per-key access clock (LRU) or frequency
//! counter (LFU), and the choice of which key goes next.
//!
//! The same approximations as Redis 7.0's `evict.c`, so a cache keeps the
//! same keys it would keep under Redis:
//! - each key has one 32-bit word: under an LRU policy the second it was
//!   last accessed; under an LFU policy the minute of its last decrement
//!   (16 bits) and a logarithmic access counter (8 bits), new keys starting
//!   at [`LFU_INIT_VAL`];
//! - a victim is chosen by sampling `maxmemory-samples` keys of every
//!   database into a [`Pool`] of the 16 best candidates seen so far, then
//!   taking the best one that still exists.
//!
//! The server decides *when* to evict (its memory figure, the time budget,
//! propagation); this module only decides *what*.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::{Key, Keyspace, Node};

/// Redis's `LFU_INIT_VAL`: the counter of a new key, so it survives long
/// enough to collect some hits.
pub const LFU_INIT_VAL: u8 = 5;

/// Redis's `EVPOOL_SIZE`.
const POOL_SIZE: usize = 16;

/// A `maxmemory-policy`.
///
/// ```
/// use rampart_keyspace::evict::Policy;
/// let p = Policy::parse("volatile-lfu").unwrap();
/// assert!(p.lfu() && !p.allkeys());
/// assert_eq!(p.name(), "volatile-lfu");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Refuse writes that need memory.
    NoEviction,
    /// Least recently used among keys with a TTL.
    VolatileLru,
    /// Least frequently used among keys with a TTL.
    VolatileLfu,
    /// Any key with a TTL.
    VolatileRandom,
    /// The key with the nearest expiry.
    VolatileTtl,
    /// Least recently used among all keys.
    AllkeysLru,
    /// Least frequently used among all keys.
    AllkeysLfu,
    /// Any key.
    AllkeysRandom,
}

const POLICIES: [(Policy, &str); 8] = [
    (Policy::NoEviction, "noeviction"),
    (Policy::VolatileLru, "volatile-lru"),
    (Policy::VolatileLfu, "volatile-lfu"),
    (Policy::VolatileRandom, "volatile-random"),
    (Policy::VolatileTtl, "volatile-ttl"),
    (Policy::AllkeysLru, "allkeys-lru"),
    (Policy::AllkeysLfu, "allkeys-lfu"),
    (Policy::AllkeysRandom, "allkeys-random"),
];

impl Policy {
    /// The policy named as in redis.conf (case-insensitive).
    pub fn parse(name: &str) -> Option<Policy> {
        POLICIES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(p, _)| *p)
    }

    /// Its place in a fixed order, so it can be kept in an atomic;
    /// [`Policy::from_index`] turns it back.
    ///
    /// ```
    /// use rampart_keyspace::evict::Policy;
    /// assert_eq!(Policy::from_index(Policy::AllkeysLfu.index()), Policy::AllkeysLfu);
    /// ```
    pub fn index(self) -> u8 {
        POLICIES.iter().position(|(p, _)| *p == self).unwrap_or(0) as u8
    }

    /// The policy at `index` ([`Policy::index`]); `noeviction` when out of
    /// range.
    pub fn from_index(index: u8) -> Policy {
        POLICIES
            .get(index as usize)
            .map_or(Policy::NoEviction, |(p, _)| *p)
    }

    /// The name redis.conf and INFO use.
    pub fn name(self) -> &'static str {
        POLICIES
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("noeviction", |(_, n)| n)
    }

    /// Any key may go, not only keys with a TTL.
    pub fn allkeys(self) -> bool {
        matches!(
            self,
            Policy::AllkeysLru | Policy::AllkeysLfu | Policy::AllkeysRandom
        )
    }

    /// Ranks keys by access frequency.
    pub fn lfu(self) -> bool {
        matches!(self, Policy::VolatileLfu | Policy::AllkeysLfu)
    }

    /// Ranks keys by last access.
    pub fn lru(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::AllkeysLru)
    }

    fn random(self) -> bool {
        matches!(self, Policy::VolatileRandom | Policy::AllkeysRandom)
    }
}

/// What every key access records, shared by all databases: an LRU clock,
/// or under an LFU policy a decayed logarithmic counter.
#[derive(Debug)]
pub struct Access {
    lfu: AtomicBool,
    log_factor: AtomicU32,
    decay_minutes: AtomicU32,
}

impl Default for Access {
    fn default() -> Access {
        Access {
            lfu: AtomicBool::new(false),
            log_factor: AtomicU32::new(10),
            decay_minutes: AtomicU32::new(1),
        }
    }
}

impl Access {
    /// Switches what accesses record (`maxmemory-policy`, `lfu-log-factor`,
    /// `lfu-decay-time`). Keys keep their word: as in Redis, after a switch
    /// between LRU and LFU the ranking takes a while to mean something.
    pub fn set(&self, lfu: bool, log_factor: u32, decay_minutes: u32) {
        self.lfu.store(lfu, Ordering::Relaxed);
        self.log_factor.store(log_factor, Ordering::Relaxed);
        self.decay_minutes.store(decay_minutes, Ordering::Relaxed);
    }

    /// Whether accesses count frequency (an LFU policy is set).
    pub fn lfu(&self) -> bool {
        self.lfu.load(Ordering::Relaxed)
    }

    /// `lfu-decay-time` in minutes.
    pub fn decay_minutes(&self) -> u32 {
        self.decay_minutes.load(Ordering::Relaxed)
    }

    /// The word a new key starts with at `now` (Unix ms).
    pub(crate) fn fresh(&self, now: u64) -> u32 {
        if self.lfu() {
            (minutes(now) << 8) | LFU_INIT_VAL as u32
        } else {
            lru_clock(now)
        }
    }

    /// The word after one access at `now` to a key whose word is `word`.
    pub(crate) fn touched(&self, word: u32, now: u64) -> u32 {
        if !self.lfu() {
            return lru_clock(now);
        }
        let c = decayed(word, now, self.decay_minutes());
        let c = log_incr(c, self.log_factor.load(Ordering::Relaxed));
        (minutes(now) << 8) | c as u32
    }
}

/// The LRU clock: Unix seconds (Redis keeps 24 bits of them; 32 wrap later
/// and cost the same).
fn lru_clock(now: u64) -> u32 {
    (now / 1000) as u32
}

/// Redis's `LFUGetTimeInMinutes`: 16 bits of Unix minutes.
fn minutes(now: u64) -> u32 {
    ((now / 60_000) & 0xffff) as u32
}

/// Redis's `LFUDecrAndReturn`: the counter of `word`, less one for every
/// `decay` minutes since its last decrement.
pub(crate) fn decayed(word: u32, now: u64, decay: u32) -> u8 {
    let ldt = (word >> 8) & 0xffff;
    let counter = (word & 0xff) as u8;
    let now = minutes(now);
    let elapsed = if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    };
    let periods = elapsed.checked_div(decay).unwrap_or(0);
    counter.saturating_sub(periods.min(255) as u8)
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(rand::random::<u64>() | 1);
}

/// A uniform number in [0, 1) from a per-thread xorshift: an LFU access
/// draws one, and `rand`'s ChaCha would be most of the cost of a GET.
fn uniform() -> f64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        r.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// Redis's `LFULogIncr`: the greater the counter, the less likely an
/// access increments it; saturates at 255.
fn log_incr(counter: u8, factor: u32) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * factor as f64 + 1.0);
    if uniform() < p {
        counter + 1
    } else {
        counter
    }
}

/// One eviction candidate.
#[derive(Debug)]
struct Candidate {
    /// Higher goes first: idle ms, 255 minus the frequency, or the
    /// distance of the expiry from the end of time.
    score: u64,
    db: usize,
    key: Key,
}

/// Redis's eviction pool: the best candidates seen so far, kept across
/// evictions so that each eviction samples only a few keys yet picks
/// from many. Entries may name keys deleted since; those are skipped.
#[derive(Debug, Default)]
pub struct Pool {
    /// Ascending by score: the best candidate is last.
    entries: Vec<Candidate>,
}

impl Pool {
    fn offer(&mut self, score: u64, db: usize, key: &[u8]) {
        let full = self.entries.len() == POOL_SIZE;
        if full && self.entries[0].score >= score {
            return;
        }
        if self
            .entries
            .iter()
            .any(|c| c.db == db && c.key.as_bytes() == key)
        {
            return;
        }
        let at = self.entries.partition_point(|c| c.score < score);
        self.entries.insert(
            at,
            Candidate {
                score,
                db,
                key: Key::new(key),
            },
        );
        if self.entries.len() > POOL_SIZE {
            self.entries.remove(0);
        }
    }
}

/// The score a policy ranks a key by at `now`: the higher, the sooner it
/// goes.
fn score(policy: Policy, n: &Node, now: u64, decay: u32) -> u64 {
    if policy.lru() {
        n.idle_secs(now) * 1000
    } else if policy.lfu() {
        255 - decayed(n.access_word(), now, decay) as u64
    } else {
        u64::MAX - n.expire_at().unwrap_or(u64::MAX)
    }
}

/// A key taken out by [`Keyspace::evict_one`].
pub struct Evicted {
    /// Its database.
    pub db: usize,
    /// The node, for the caller to free (maybe on another thread) and to
    /// count the memory that frees.
    pub node: Box<Node>,
}

/// Where [`Keyspace::evict_one`] resumes its round of databases for the
/// random policies (Redis's `static next_db`).
#[derive(Debug, Default)]
pub struct Cursor {
    next_db: usize,
}

impl Keyspace {
    /// Chooses one key by `policy` and deletes it, as Redis's
    /// `performEvictions` does for one iteration: sample `samples` keys of
    /// every database into `pool`, take the best candidate that still
    /// exists (and still has a TTL, for the volatile policies). `None`
    /// when no key is evictable. Call it holding the gate, like any write.
    ///
    /// ```
    /// use rampart_keyspace::evict::{Cursor, Policy, Pool};
    /// use rampart_keyspace::{Keyspace, Value};
    /// let ks = Keyspace::new(1);
    /// ks.db(0).write(b"keep", 0, |s| s.insert(Value::int(1), None));
    /// ks.db(0).write(b"ttl", 0, |s| s.insert(Value::int(1), Some(99_000)));
    /// let (mut pool, mut cur) = (Pool::default(), Cursor::default());
    /// let e = ks.evict_one(Policy::VolatileLru, 5, &mut pool, &mut cur, 1000).unwrap();
    /// assert_eq!(e.node.key.as_bytes(), b"ttl");
    /// assert!(ks.evict_one(Policy::VolatileLru, 5, &mut pool, &mut cur, 1000).is_none());
    /// ```
    pub fn evict_one(
        &self,
        policy: Policy,
        samples: usize,
        pool: &mut Pool,
        cursor: &mut Cursor,
        now: u64,
    ) -> Option<Evicted> {
        if policy == Policy::NoEviction {
            return None;
        }
        let volatile = !policy.allkeys();
        if policy.random() {
            return self.evict_random(volatile, cursor, now);
        }
        let decay = self.access.decay_minutes();
        // Every round samples afresh; a round whose candidates have all
        // gone since they were sampled (or expired) is followed by another,
        // a bounded number of times.
        for _ in 0..64 {
            let mut total = 0;
            for i in 0..self.len() {
                let db = self.db(i);
                total += db.sample(samples, volatile, |n| {
                    // An expired key ranks first: taking it frees memory
                    // without evicting anything live.
                    let s = if n.is_expired(now) {
                        u64::MAX
                    } else {
                        score(policy, n, now, decay)
                    };
                    pool.offer(s, i, &n.key);
                });
            }
            if total == 0 {
                return None;
            }
            while let Some(c) = pool.entries.pop() {
                let node = self.db(c.db).write(&c.key, now, |s| {
                    if volatile && s.expire_at().is_none() {
                        return None;
                    }
                    s.remove()
                });
                if let Some(node) = node {
                    return Some(Evicted { db: c.db, node });
                }
            }
        }
        None
    }

    fn evict_random(&self, volatile: bool, cursor: &mut Cursor, now: u64) -> Option<Evicted> {
        let n = self.len();
        for _ in 0..n {
            cursor.next_db = (cursor.next_db + 1) % n;
            let i = cursor.next_db;
            let db = self.db(i);
            // A few tries: the sampled key may expire or go before we
            // take the write lock.
            for _ in 0..8 {
                let mut key = None;
                db.sample(1, volatile, |n| key = Some(n.key.clone()));
                let Some(key) = key else {
                    break;
                };
                if let Some(node) = db.write(&key, now, |s| s.remove()) {
                    return Some(Evicted { db: i, node });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    #[test]
    fn log_incr_is_certain_up_to_the_initial_value_and_saturates() {
        for c in 0..LFU_INIT_VAL {
            assert_eq!(log_incr(c, 10), c + 1);
        }
        assert_eq!(log_incr(255, 0), 255);
        // With factor 10 the chance at counter 105 is 1/1001.
        let bumps = (0..10_000).filter(|_| log_incr(105, 10) == 106).count();
        assert!(bumps < 60, "{bumps}");
    }

    #[test]
    fn decay_subtracts_one_per_period_and_wraps_the_minute_clock() {
        let word = (100 << 8) | 20;
        let at = |m: u64| m * 60_000;
        assert_eq!(decayed(word, at(100), 1), 20);
        assert_eq!(decayed(word, at(105), 1), 15);
        assert_eq!(decayed(word, at(105), 2), 18);
        assert_eq!(decayed(word, at(500), 1), 0);
        assert_eq!(decayed(word, at(105), 0), 20);
        // The 16-bit minute clock wrapped once; Redis's LFUTimeElapsed
        // counts 65535 minutes to a turn, so 10 minutes read as 9.
        let late = (65530 << 8) | 20;
        assert_eq!(decayed(late, at(65536 + 4), 1), 11);
    }

    #[test]
    fn pool_keeps_the_best_sixteen() {
        let mut p = Pool::default();
        for i in 0..40u64 {
            p.offer(i * 7 % 40, 0, format!("k{i}").as_bytes());
        }
        let scores: Vec<u64> = p.entries.iter().map(|c| c.score).collect();
        assert_eq!(scores, (24..40).collect::<Vec<_>>());
        p.offer(39, 0, b"k37");
        assert_eq!(p.entries.len(), POOL_SIZE);
    }

    #[test]
    fn lru_evicts_the_idlest_and_volatile_spares_persistent_keys() {
        let ks = Keyspace::new(2);
        for i in 0..200u64 {
            let ttl = (i % 2 == 0).then_some(10_000_000);
            ks.db((i % 2) as usize)
                .write(format!("k{i}").as_bytes(), i * 1000, |s| {
                    s.insert(Value::int(i as i64), ttl)
                });
        }
        let (mut pool, mut cur) = (Pool::default(), Cursor::default());
        let now = 1_000_000;
        let mut gone = Vec::new();
        while let Some(e) = ks.evict_one(Policy::VolatileLru, 5, &mut pool, &mut cur, now) {
            assert!(e.node.expire_at().is_some());
            gone.push(e.node.value.as_str().map(<[u8]>::to_vec));
        }
        assert_eq!(gone.len(), 100);
        assert_eq!(ks.db(1).len(), 100);
        // All keys in db 0 had TTLs; db 1 had none.
        assert_eq!(ks.db(0).len(), 0);
        // Allkeys-LRU takes old keys first: of the first 20 evicted, most
        // were written in the first half.
        for i in 0..200u64 {
            ks.db(0).write(format!("n{i}").as_bytes(), i * 1000, |s| {
                s.insert(Value::int(i as i64), None)
            });
        }
        let mut old = 0;
        for _ in 0..20 {
            let e = ks
                .evict_one(Policy::AllkeysLru, 5, &mut pool, &mut cur, now)
                .unwrap();
            let v: i64 = std::str::from_utf8(e.node.value.as_str().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            if v < 100 {
                old += 1;
            }
        }
        assert!(old >= 15, "{old}");
    }

    #[test]
    fn ttl_policy_takes_the_nearest_expiry() {
        let ks = Keyspace::new(1);
        for i in 1..=50u64 {
            ks.db(0).write(format!("k{i}").as_bytes(), 0, |s| {
                s.insert(Value::int(1), Some(1_000_000 + i * 1000))
            });
        }
        let (mut pool, mut cur) = (Pool::default(), Cursor::default());
        let e = ks
            .evict_one(Policy::VolatileTtl, 50, &mut pool, &mut cur, 0)
            .unwrap();
        assert_eq!(e.node.key.as_bytes(), b"k1");
    }

    #[test]
    fn random_policies_empty_every_database() {
        let ks = Keyspace::new(3);
        for i in 0..30 {
            ks.db(i % 3).write(format!("k{i}").as_bytes(), 0, |s| {
                s.insert(Value::int(1), None)
            });
        }
        let (mut pool, mut cur) = (Pool::default(), Cursor::default());
        assert!(ks
            .evict_one(Policy::VolatileRandom, 5, &mut pool, &mut cur, 0)
            .is_none());
        let mut n = 0;
        while ks
            .evict_one(Policy::AllkeysRandom, 5, &mut pool, &mut cur, 0)
            .is_some()
        {
            n += 1;
        }
        assert_eq!(n, 30);
    }
}
