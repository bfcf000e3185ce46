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
pub mod glob;
pub mod hash;
mod key;
pub mod list;
mod pack;
pub mod set;
pub mod value;
pub mod zset;

use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use db::{Db, Detached, Node, Slot, Sweep};
pub use key::Key;
pub use pack::Pack;
pub use value::{EncodingLimits, Kind, Value};

/// Receives key events from the keyspace. Called outside shard locks but
/// while the command that caused the event still holds the gate.
pub trait Notify: Send + Sync {
    /// `key` in database `db` was written or deleted by a command.
    fn modified(&self, db: usize, key: &[u8]);
    /// `key` in database `db` was found expired and deleted.
    fn expired(&self, db: usize, key: &[u8]);
}

/// A [`Notify`] that ignores every event.
pub struct Ignore;

impl Notify for Ignore {
    fn modified(&self, _: usize, _: &[u8]) {}
    fn expired(&self, _: usize, _: &[u8]) {}
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
}

impl Keyspace {
    /// `databases` empty databases that report nothing.
    pub fn new(databases: usize) -> Keyspace {
        Keyspace::with_notify(databases, Arc::new(Ignore))
    }

    /// `databases` empty databases reporting key events to `notify`.
    pub fn with_notify(databases: usize, notify: Arc<dyn Notify>) -> Keyspace {
        let seed = rand::random::<u64>();
        Keyspace {
            dbs: (0..databases.max(1))
                .map(|i| Db::new(i, seed, notify.clone()))
                .collect(),
            gate: RwLock::new(()),
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
}
