//! Client-side caching (CLIENT TRACKING): which connections cached which
//! keys, and the invalidation messages they get when those keys change.
//!
//! As in Redis's `tracking.c`: in the default mode a read-only command
//! remembers the keys it read for its connection (a global table of key
//! names, not per database), and the first change to such a key sends
//! every remembering connection an `invalidate` message and forgets the
//! key. In BCAST mode connections register key prefixes instead, and every
//! changed key under a prefix is announced to all of them, collected while
//! a command runs and sent once it ends. Messages go to the connection's
//! [`crate::pubsub::Mailbox`] (RESP3 pushes), or to the connection it
//! redirects to (a RESP2 one subscribed to `__redis__:invalidate` gets
//! them as Pub/Sub messages). A connection's own changes reach it after
//! its reply, as Redis's pending invalidations do.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::pubsub::PubSub;
use crate::resp::Out;
use crate::state::{ClientHandle, Clients};

/// One connection's tracking settings, readable by the connections that
/// invalidate its keys.
#[derive(Default, Debug, Clone)]
pub struct State {
    /// CLIENT TRACKING ON.
    pub on: bool,
    /// BCAST mode.
    pub bcast: bool,
    /// OPTIN mode.
    pub optin: bool,
    /// OPTOUT mode.
    pub optout: bool,
    /// NOLOOP: not told of its own changes.
    pub noloop: bool,
    /// The connection it redirects to went away.
    pub broken: bool,
    /// REDIRECT target (0: none).
    pub redirect: u64,
    /// BCAST prefixes.
    pub prefixes: BTreeSet<Bytes>,
}

/// What an invalidation carries.
enum Payload<'a> {
    /// One key: sent as a one-element array.
    Key(&'a [u8]),
    /// Everything (FLUSHALL/FLUSHDB): a null.
    All,
    /// An array of keys already encoded (BCAST).
    Encoded(&'a [u8]),
}

#[derive(Default)]
struct Bcast {
    /// Keys changed since the last flush → the client that changed them
    /// (0: none), so NOLOOP clients can be spared their own.
    keys: BTreeMap<Bytes, u64>,
    clients: Vec<Arc<ClientHandle>>,
}

/// The tracking tables.
pub struct Tracking {
    clients: Arc<Clients>,
    pubsub: Arc<PubSub>,
    table: Mutex<HashMap<Bytes, Vec<Arc<ClientHandle>>>>,
    /// Entries across the table (INFO `tracking_total_items`).
    items: AtomicU64,
    prefixes: Mutex<BTreeMap<Bytes, Bcast>>,
    /// Keys in `table` plus prefixes: zero means writes owe nothing here.
    live: AtomicUsize,
    /// Some prefix holds changed keys not yet announced.
    bcast_pending: AtomicBool,
    /// Connections with tracking on (INFO `tracking_clients`).
    pub tracking_clients: AtomicUsize,
    /// `tracking-table-max-keys` (0: no limit).
    pub max_keys: AtomicU64,
}

thread_local! {
    /// The connection whose command runs on this thread (0: none).
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    /// Invalidations for that connection, sent after its reply.
    static OWN: RefCell<Vec<Option<Bytes>>> = const { RefCell::new(Vec::new()) };
}

/// Marks connection `id` as the one running a command on this thread
/// (0 when none is).
pub fn set_current(id: u64) {
    CURRENT.with(|c| c.set(id));
}

impl Tracking {
    /// Empty tables delivering through `pubsub` to `clients`.
    pub fn new(clients: Arc<Clients>, pubsub: Arc<PubSub>) -> Tracking {
        Tracking {
            clients,
            pubsub,
            table: Mutex::default(),
            items: AtomicU64::new(0),
            prefixes: Mutex::default(),
            live: AtomicUsize::new(0),
            bcast_pending: AtomicBool::new(false),
            tracking_clients: AtomicUsize::new(0),
            max_keys: AtomicU64::new(1_000_000),
        }
    }

    /// INFO's `tracking_total_keys`, `tracking_total_items`,
    /// `tracking_total_prefixes`.
    pub fn totals(&self) -> (usize, u64, usize) {
        (
            self.table.lock().len(),
            self.items.load(Ordering::Relaxed),
            self.prefixes.lock().len(),
        )
    }

    fn update_live(&self, keys: usize, prefixes: usize) {
        self.live.store(keys + prefixes, Ordering::Relaxed);
    }

    /// Turns tracking on for `h` with `st`'s options (and BCAST
    /// `prefixes`, the empty prefix when none), as Redis's `enableTracking`.
    pub fn enable(&self, h: &Arc<ClientHandle>, mut st: State, prefixes: &[Bytes]) {
        let mut cur = h.tracking.lock();
        if !cur.on {
            self.tracking_clients.fetch_add(1, Ordering::Relaxed);
        }
        st.on = true;
        st.prefixes = std::mem::take(&mut cur.prefixes);
        if st.bcast {
            let mut table = self.prefixes.lock();
            let empty = [Bytes::new()];
            let wanted = if prefixes.is_empty() {
                &empty[..]
            } else {
                prefixes
            };
            for p in wanted {
                let b = table.entry(p.clone()).or_default();
                if !b.clients.iter().any(|c| c.id == h.id) {
                    b.clients.push(h.clone());
                    st.prefixes.insert(p.clone());
                }
            }
            let n = table.len();
            drop(table);
            self.update_live(self.table.lock().len(), n);
        }
        *cur = st;
    }

    /// Turns tracking off for `h` (CLIENT TRACKING OFF, RESET, disconnect).
    pub fn disable(&self, h: &ClientHandle) {
        let mut cur = h.tracking.lock();
        if !cur.prefixes.is_empty() {
            let mut table = self.prefixes.lock();
            for p in &cur.prefixes {
                if let Some(b) = table.get_mut(p) {
                    b.clients.retain(|c| c.id != h.id);
                    if b.clients.is_empty() {
                        table.remove(p);
                    }
                }
            }
            let n = table.len();
            drop(table);
            self.update_live(self.table.lock().len(), n);
        }
        if cur.on {
            self.tracking_clients.fetch_sub(1, Ordering::Relaxed);
        }
        *cur = State::default();
    }

    /// Checks new BCAST prefixes against the connection's and each other,
    /// returning Redis's error for the first overlap.
    pub fn prefix_collision(&self, h: &ClientHandle, prefixes: &[Bytes]) -> Option<String> {
        let overlap = |a: &[u8], b: &[u8]| {
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        };
        let cur = h.tracking.lock();
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(c) = cur.prefixes.iter().find(|c| overlap(c, p)) {
                return Some(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(c)
                ));
            }
            if let Some(q) = prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
                return Some(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(q)
                ));
            }
        }
        None
    }

    /// Remembers that `h` read `keys` (Redis's `trackingRememberKeys`,
    /// after a read-only command), then keeps the table within
    /// `tracking-table-max-keys`.
    pub fn remember<'a>(&self, h: &Arc<ClientHandle>, keys: impl Iterator<Item = &'a Bytes>) {
        let mut table = self.table.lock();
        for k in keys {
            let ids = table.entry(k.clone()).or_default();
            if !ids.iter().any(|c| c.id == h.id) {
                ids.push(h.clone());
                self.items.fetch_add(1, Ordering::Relaxed);
            }
        }
        let n = table.len();
        drop(table);
        self.update_live(n, self.prefixes.lock().len());
        let max = self.max_keys.load(Ordering::Relaxed) as usize;
        if max != 0 && n > max {
            self.shed(max);
        }
    }

    /// Invalidates keys until at most `max` are tracked: HashMap order is
    /// random enough for Redis's random walk.
    fn shed(&self, max: usize) {
        let victims: Vec<Bytes> = {
            let table = self.table.lock();
            table
                .keys()
                .take(table.len().saturating_sub(max))
                .cloned()
                .collect()
        };
        for k in victims {
            self.invalidate_key(&k, false);
        }
    }

    /// Whether any key or prefix is tracked at all: the one check a write
    /// makes.
    #[inline]
    pub fn live(&self) -> bool {
        self.live.load(Ordering::Relaxed) != 0
    }

    /// `key` changed (Redis's `trackingInvalidateKey`): tells whoever
    /// cached it, and queues it for the BCAST prefixes it falls under when
    /// `bcast`.
    pub fn invalidate_key(&self, key: &[u8], bcast: bool) {
        let me = CURRENT.with(|c| c.get());
        if bcast {
            let mut prefixes = self.prefixes.lock();
            if !prefixes.is_empty() {
                for (p, b) in prefixes.iter_mut() {
                    if key.starts_with(p) {
                        b.keys.insert(Bytes::copy_from_slice(key), me);
                        self.bcast_pending.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        let holders = {
            let mut table = self.table.lock();
            let Some(holders) = table.remove(key) else {
                return;
            };
            self.items
                .fetch_sub(holders.len() as u64, Ordering::Relaxed);
            let n = table.len();
            drop(table);
            self.update_live(n, self.prefixes.lock().len());
            holders
        };
        for h in holders {
            let st = h.tracking.lock().clone();
            if !st.on || st.bcast {
                continue;
            }
            if h.id == me {
                if !st.noloop {
                    OWN.with(|o| o.borrow_mut().push(Some(Bytes::copy_from_slice(key))));
                }
                continue;
            }
            self.send(&h, &st, Payload::Key(key), None);
        }
    }

    /// FLUSHALL/FLUSHDB (Redis's `trackingInvalidateKeysOnFlush`): every
    /// tracking connection is told to drop everything, and the table is
    /// emptied.
    pub fn flushed(&self) {
        if self.tracking_clients.load(Ordering::Relaxed) != 0 {
            let me = CURRENT.with(|c| c.get());
            for h in self.clients.all() {
                let st = h.tracking.lock().clone();
                if !st.on {
                    continue;
                }
                if h.id == me {
                    OWN.with(|o| o.borrow_mut().push(None));
                } else {
                    self.send(&h, &st, Payload::All, None);
                }
            }
        }
        let mut table = self.table.lock();
        table.clear();
        self.items.store(0, Ordering::Relaxed);
        drop(table);
        self.update_live(0, self.prefixes.lock().len());
    }

    /// After a command: the invalidations its connection owes itself, to
    /// the end of `out` (after the reply).
    pub fn after_command(&self, me: &ClientHandle, out: &mut Out) {
        let own = OWN.with(|o| std::mem::take(&mut *o.borrow_mut()));
        if !own.is_empty() {
            let st = me.tracking.lock().clone();
            for key in &own {
                let p = match key {
                    Some(k) => Payload::Key(k),
                    None => Payload::All,
                };
                self.send(me, &st, p, Some(out));
            }
        }
    }

    /// Redis's `trackingBroadcastInvalidationMessages`, which it runs once
    /// per event loop: the BCAST announcements of every key changed since
    /// the last call, one message per prefix. Connections call it after
    /// each batch of commands they read at once, the cron after expiring
    /// keys. What is for `me` goes to the end of its `out`.
    ///
    /// ```no_run
    /// # fn f(srv: &rampart_server::state::Server) {
    /// srv.tracking.broadcast_pending(None);
    /// # }
    /// ```
    pub fn broadcast_pending(&self, me: Option<(&ClientHandle, &mut Out)>) {
        if self.bcast_pending.load(Ordering::Relaxed)
            && self.bcast_pending.swap(false, Ordering::Relaxed)
        {
            self.broadcast(me);
        }
    }

    fn broadcast(&self, mut me: Option<(&ClientHandle, &mut Out)>) {
        let mut work = Vec::new();
        {
            let mut prefixes = self.prefixes.lock();
            for b in prefixes.values_mut() {
                if !b.keys.is_empty() {
                    work.push((std::mem::take(&mut b.keys), b.clients.clone()));
                }
            }
        }
        for (keys, clients) in work {
            let all = encode_keys(keys.keys());
            for h in clients {
                let st = h.tracking.lock().clone();
                let sink = match &mut me {
                    Some((m, out)) if m.id == h.id => Some(&mut **out),
                    _ => None,
                };
                if st.noloop {
                    let mine: Vec<&Bytes> = keys
                        .iter()
                        .filter(|(_, by)| **by != h.id)
                        .map(|(k, _)| k)
                        .collect();
                    if !mine.is_empty() {
                        let adhoc = encode_keys(mine.into_iter());
                        self.send(&h, &st, Payload::Encoded(&adhoc), sink);
                    }
                } else {
                    self.send(&h, &st, Payload::Encoded(&all), sink);
                }
            }
        }
    }

    /// Redis's `sendTrackingMessage`: to `h`, or to the connection it
    /// redirects to. `own` is the reply buffer when `h` is the connection
    /// running the command.
    fn send(&self, h: &ClientHandle, st: &State, p: Payload<'_>, own: Option<&mut Out>) {
        let null: &[u8] = if h.resp.load(Ordering::Relaxed) >= 3 {
            b"_\r\n"
        } else {
            b"$-1\r\n"
        };
        let mut msg = Vec::new();
        let target: Option<Arc<ClientHandle>>;
        let redirected = st.redirect != 0;
        let to: &ClientHandle = if redirected {
            target = self
                .clients
                .get(st.redirect)
                .filter(|t| !t.killed.load(Ordering::Relaxed));
            match &target {
                Some(t) => t,
                None => {
                    h.tracking.lock().broken = true;
                    if h.resp.load(Ordering::Relaxed) >= 3 {
                        msg.extend_from_slice(b">2\r\n$21\r\ntracking-redir-broken\r\n:");
                        msg.extend_from_slice(itoa::Buffer::new().format(st.redirect).as_bytes());
                        msg.extend_from_slice(b"\r\n");
                        self.put(h, &msg, own);
                    }
                    return;
                }
            }
        } else {
            h
        };
        if to.resp.load(Ordering::Relaxed) >= 3 {
            msg.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
        } else if redirected && to.subs.any() {
            msg.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
        } else {
            return;
        }
        match p {
            Payload::Key(k) => {
                msg.extend_from_slice(b"*1\r\n$");
                msg.extend_from_slice(itoa::Buffer::new().format(k.len()).as_bytes());
                msg.extend_from_slice(b"\r\n");
                msg.extend_from_slice(k);
                msg.extend_from_slice(b"\r\n");
            }
            Payload::All => msg.extend_from_slice(null),
            Payload::Encoded(b) => msg.extend_from_slice(b),
        }
        let own = if to.id == h.id { own } else { None };
        self.put(to, &msg, own);
    }

    fn put(&self, to: &ClientHandle, msg: &[u8], own: Option<&mut Out>) {
        match own {
            Some(out) => out.raw(msg),
            None => self.pubsub.deliver(to, msg),
        }
    }
}

/// Reads `tracking-table-max-keys` (at start and after CONFIG SET).
pub fn configure(srv: &crate::state::Server) {
    let max = srv.config.int("tracking-table-max-keys").max(0) as u64;
    srv.tracking.max_keys.store(max, Ordering::Relaxed);
}

/// An array of bulk strings.
fn encode_keys<'a>(keys: impl Iterator<Item = &'a Bytes> + Clone) -> Vec<u8> {
    let n = keys.clone().count();
    let mut b = Vec::with_capacity(16 + n * 16);
    b.push(b'*');
    b.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    b.extend_from_slice(b"\r\n");
    for k in keys {
        b.push(b'$');
        b.extend_from_slice(itoa::Buffer::new().format(k.len()).as_bytes());
        b.extend_from_slice(b"\r\n");
        b.extend_from_slice(k);
        b.extend_from_slice(b"\r\n");
    }
    b
}
