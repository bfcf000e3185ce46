//! Pub/Sub: who listens to what, message delivery to other connections,
//! and keyspace notifications (`notify-keyspace-events`).
//!
//! Each connection has a [`Mailbox`] on its shared handle. A publisher
//! encodes the message in the subscriber's protocol and appends it to the
//! subscriber's mailbox, waking its connection, which moves what waits
//! there into its reply buffer and writes it out. A publisher never waits
//! for a subscriber: one that does not read only grows its mailbox, until
//! the `pubsub` class of `client-output-buffer-limit` closes it (checked by
//! the publisher as it appends, as Redis checks on every reply).
//!
//! Subscriptions are kept twice, as in Redis: on the server (channel →
//! subscribers, in the order they subscribed) for delivery, and on the
//! connection ([`Subs`]) for its replies' counts and to leave everything on
//! RESET or disconnect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::repl::ObufLimits;
use crate::resp::Out;
use crate::state::{now_ms, ClientHandle};

/// Keyspace notification classes, Redis's `NOTIFY_*` bits.
pub mod class {
    /// `K`: `__keyspace@<db>__:<key>` channels.
    pub const KEYSPACE: u32 = 1 << 0;
    /// `E`: `__keyevent@<db>__:<event>` channels.
    pub const KEYEVENT: u32 = 1 << 1;
    /// `g`: DEL, EXPIRE, RENAME…
    pub const GENERIC: u32 = 1 << 2;
    /// `$`: string commands.
    pub const STRING: u32 = 1 << 3;
    /// `l`: list commands.
    pub const LIST: u32 = 1 << 4;
    /// `s`: set commands.
    pub const SET: u32 = 1 << 5;
    /// `h`: hash commands.
    pub const HASH: u32 = 1 << 6;
    /// `z`: sorted set commands.
    pub const ZSET: u32 = 1 << 7;
    /// `x`: a key expired.
    pub const EXPIRED: u32 = 1 << 8;
    /// `e`: a key was evicted.
    pub const EVICTED: u32 = 1 << 9;
    /// `t`: stream commands.
    pub const STREAM: u32 = 1 << 10;
    /// `m`: a key was looked up and missed.
    pub const KEY_MISS: u32 = 1 << 11;
    /// `d`: module events.
    pub const MODULE: u32 = 1 << 13;
    /// `n`: a new key was created.
    pub const NEW: u32 = 1 << 14;
    /// `A`: every class but `m` and `n`.
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// Redis's `keyspaceEventsStringToFlags`; `None` for a letter that is
    /// no class.
    ///
    /// ```
    /// use rampart_server::pubsub::class;
    /// assert_eq!(class::parse("Kx"), Some(class::KEYSPACE | class::EXPIRED));
    /// assert_eq!(class::parse("Q"), None);
    /// ```
    pub fn parse(s: &str) -> Option<u32> {
        let mut flags = 0;
        for c in s.chars() {
            flags |= match c {
                'A' => ALL,
                'g' => GENERIC,
                '$' => STRING,
                'l' => LIST,
                's' => SET,
                'h' => HASH,
                'z' => ZSET,
                'x' => EXPIRED,
                'e' => EVICTED,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                't' => STREAM,
                'm' => KEY_MISS,
                'd' => MODULE,
                'n' => NEW,
                _ => return None,
            };
        }
        Some(flags)
    }
}

/// Which kind of subscription: plain channels, patterns, or shard channels.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// SUBSCRIBE.
    Channel,
    /// PSUBSCRIBE.
    Pattern,
    /// SSUBSCRIBE.
    Shard,
}

impl Kind {
    fn subscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"subscribe",
            Kind::Pattern => b"psubscribe",
            Kind::Shard => b"ssubscribe",
        }
    }

    fn unsubscribe_word(self) -> &'static [u8] {
        match self {
            Kind::Channel => b"unsubscribe",
            Kind::Pattern => b"punsubscribe",
            Kind::Shard => b"sunsubscribe",
        }
    }
}

/// What one connection is subscribed to (only its own connection touches
/// this; the counts are mirrored on its handle for CLIENT LIST).
#[derive(Default, Debug)]
pub struct Subs {
    channels: hashbrown::HashSet<Bytes>,
    /// In subscription order, as Redis's list.
    patterns: Vec<Bytes>,
    shard: hashbrown::HashSet<Bytes>,
}

impl Subs {
    /// Subscribed to anything at all (Redis's `CLIENT_PUBSUB` flag).
    #[inline]
    pub fn any(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard.is_empty())
    }

    /// The count a (un)subscribe reply carries: channels and patterns, or
    /// shard channels.
    fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shard.len(),
            _ => self.channels.len() + self.patterns.len(),
        }
    }
}

/// Counts a connection's subscriptions for CLIENT LIST (`sub`, `psub`,
/// `ssub`).
#[derive(Default, Debug)]
pub struct Counts {
    /// SUBSCRIBE channels.
    pub sub: AtomicU32,
    /// PSUBSCRIBE patterns.
    pub psub: AtomicU32,
    /// SSUBSCRIBE channels.
    pub ssub: AtomicU32,
    /// Shard channels the server took away (their slot left this shard)
    /// that the connection's own [`Subs`] still lists, until it settles.
    revoked: Mutex<Vec<Bytes>>,
}

impl Counts {
    /// Subscribed to anything (Redis's `CLIENT_PUBSUB`).
    pub fn any(&self) -> bool {
        self.sub.load(Ordering::Relaxed)
            + self.psub.load(Ordering::Relaxed)
            + self.ssub.load(Ordering::Relaxed)
            > 0
    }
}

/// Messages waiting for one connection.
#[derive(Default, Debug)]
pub struct Mailbox {
    buf: Mutex<Vec<u8>>,
    /// Bytes waiting, readable without the lock.
    waiting: AtomicUsize,
    /// Output the connection holds but could not write yet: with what
    /// waits here, the client's output buffer as the limit sees it.
    pub unsent: AtomicUsize,
    /// When the output buffer went over the soft limit (Unix seconds,
    /// 0 = under it), Redis's `obuf_soft_limit_reached_time`.
    pub soft_since: AtomicU64,
}

impl Mailbox {
    /// Whether anything waits.
    #[inline]
    pub fn has_mail(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) != 0
    }

    /// Output not yet taken by the client: what waits here and what its
    /// connection holds unsent, of which `held` waits in its outbox (a
    /// subscriber counts that as unsent already).
    pub(crate) fn pending(&self, held: usize) -> usize {
        self.waiting.load(Ordering::Relaxed) + self.unsent.load(Ordering::Relaxed).max(held)
    }

    /// Moves what waits to the end of `out`.
    pub fn drain_into(&self, out: &mut Out) {
        let mut b = self.buf.lock();
        out.raw(&b);
        b.clear();
        self.waiting.store(0, Ordering::Relaxed);
    }

    /// Moves what waits into `out` at `at` (before the reply of the
    /// command that made it, as Redis writes a push before the reply).
    pub fn drain_at(&self, out: &mut Out, at: usize) {
        let mut b = self.buf.lock();
        let at = at.min(out.len());
        out.buf_mut().splice(at..at, b.drain(..));
        self.waiting.store(0, Ordering::Relaxed);
    }

    /// Takes what waits.
    pub fn take(&self) -> Vec<u8> {
        let mut b = self.buf.lock();
        self.waiting.store(0, Ordering::Relaxed);
        std::mem::take(&mut *b)
    }
}

type Subscribers = Vec<Arc<ClientHandle>>;

/// The server's subscriptions, and the settings delivery obeys.
#[derive(Default)]
pub struct PubSub {
    channels: RwLock<HashMap<Bytes, Subscribers>>,
    /// Pattern → subscribers, in the order the patterns were first
    /// subscribed.
    patterns: RwLock<Vec<(Bytes, Subscribers)>>,
    shard: RwLock<HashMap<Bytes, Subscribers>>,
    /// `notify-keyspace-events` as [`class`] bits.
    events: AtomicU32,
    /// The `pubsub` class of `client-output-buffer-limit`.
    hard: AtomicU64,
    soft: AtomicU64,
    soft_secs: AtomicU64,
}

/// Appends a bulk string.
fn bulk(b: &mut Vec<u8>, s: &[u8]) {
    b.push(b'$');
    b.extend_from_slice(itoa::Buffer::new().format(s.len()).as_bytes());
    b.extend_from_slice(b"\r\n");
    b.extend_from_slice(s);
    b.extend_from_slice(b"\r\n");
}

/// Appends a push of `parts` bulk strings: an array in RESP2, a push in
/// RESP3.
fn push_into(b: &mut Vec<u8>, proto: u8, parts: &[&[u8]]) {
    b.reserve(16 + parts.iter().map(|p| p.len() + 16).sum::<usize>());
    b.push(if proto >= 3 { b'>' } else { b'*' });
    b.extend_from_slice(itoa::Buffer::new().format(parts.len()).as_bytes());
    b.extend_from_slice(b"\r\n");
    for p in parts {
        bulk(b, p);
    }
}

impl PubSub {
    /// Turns on the keyspace event classes of a `notify-keyspace-events`
    /// value as given (unknown letters turn everything off).
    pub fn set_events(&self, value: &str) {
        self.events
            .store(class::parse(value).unwrap_or(0), Ordering::Relaxed);
    }

    /// Reads `notify-keyspace-events` and the `pubsub` output limits from
    /// the config (at start and after CONFIG SET).
    pub fn configure(&self, config: &crate::config::Config) {
        let events = config.get("notify-keyspace-events").unwrap_or_default();
        self.events
            .store(class::parse(&events).unwrap_or(0), Ordering::Relaxed);
        let obl = config.get("client-output-buffer-limit").unwrap_or_default();
        let l = ObufLimits::from_config(&obl, "pubsub").unwrap_or_default();
        self.hard.store(l.hard, Ordering::Relaxed);
        self.soft.store(l.soft, Ordering::Relaxed);
        self.soft_secs.store(l.soft_secs, Ordering::Relaxed);
    }

    /// The `pubsub` class of `client-output-buffer-limit`.
    pub fn limits(&self) -> ObufLimits {
        ObufLimits {
            hard: self.hard.load(Ordering::Relaxed),
            soft: self.soft.load(Ordering::Relaxed),
            soft_secs: self.soft_secs.load(Ordering::Relaxed),
        }
    }

    /// INFO's `pubsub_channels`, `pubsub_patterns`, `pubsubshard_channels`.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.channels.read().len(),
            self.patterns.read().len(),
            self.shard.read().len(),
        )
    }

    fn table(&self, kind: Kind) -> &RwLock<HashMap<Bytes, Subscribers>> {
        match kind {
            Kind::Shard => &self.shard,
            _ => &self.channels,
        }
    }

    /// Subscribes the connection to `name`, writing the confirmation.
    pub fn subscribe(
        &self,
        c: &mut crate::client::Client,
        kind: Kind,
        name: &Bytes,
        out: &mut Out,
    ) {
        let added = match kind {
            Kind::Pattern => {
                let h = &c.handle;
                if c.subs.patterns.contains(name) {
                    false
                } else {
                    c.subs.patterns.push(name.clone());
                    let mut pats = self.patterns.write();
                    match pats.iter_mut().find(|(p, _)| p == name) {
                        Some((_, subs)) => subs.push(h.clone()),
                        None => pats.push((name.clone(), vec![h.clone()])),
                    }
                    true
                }
            }
            Kind::Channel | Kind::Shard => {
                let mut table = self.table(kind).write();
                // Under the table's lock no revocation can slip in
                // between settling and subscribing.
                settle(c);
                let h = &c.handle;
                let mine = match kind {
                    Kind::Shard => &mut c.subs.shard,
                    _ => &mut c.subs.channels,
                };
                if mine.insert(name.clone()) {
                    table.entry(name.clone()).or_default().push(h.clone());
                    true
                } else {
                    false
                }
            }
        };
        if added {
            count_of(&c.handle, kind).fetch_add(1, Ordering::Relaxed);
        }
        self.confirm(c, kind.subscribe_word(), Some(name), kind, out);
    }

    /// Unsubscribes the connection from `name` (from everything of `kind`
    /// when `None`), writing a confirmation per name when `notify`.
    pub fn unsubscribe(
        &self,
        c: &mut crate::client::Client,
        kind: Kind,
        names: Option<&[Bytes]>,
        notify: bool,
        out: &mut Out,
    ) {
        settle(c);
        let all: Vec<Bytes>;
        let names = match names {
            Some(n) => n,
            None => {
                all = match kind {
                    Kind::Channel => c.subs.channels.iter().cloned().collect(),
                    Kind::Shard => c.subs.shard.iter().cloned().collect(),
                    Kind::Pattern => c.subs.patterns.clone(),
                };
                if all.is_empty() && notify {
                    // Subscribed to nothing: Redis still answers once.
                    self.confirm(c, kind.unsubscribe_word(), None, kind, out);
                }
                &all
            }
        };
        for name in names {
            if self.remove(c, kind, name) {
                count_of(&c.handle, kind).fetch_sub(1, Ordering::Relaxed);
            }
            if notify {
                self.confirm(c, kind.unsubscribe_word(), Some(name), kind, out);
            }
        }
    }

    /// Leaves every channel, pattern and shard channel without a word
    /// (RESET, disconnect).
    pub fn leave_all(&self, c: &mut crate::client::Client) {
        if !c.subs.any() {
            return;
        }
        let mut sink = Out::new(2);
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            self.unsubscribe(c, kind, None, false, &mut sink);
        }
    }

    fn remove(&self, c: &mut crate::client::Client, kind: Kind, name: &Bytes) -> bool {
        let id = c.handle.id;
        let drop_from = |subs: &mut Subscribers| {
            if let Some(i) = subs.iter().position(|h| h.id == id) {
                subs.remove(i);
            }
            subs.is_empty()
        };
        match kind {
            Kind::Pattern => {
                let Some(i) = c.subs.patterns.iter().position(|p| p == name) else {
                    return false;
                };
                c.subs.patterns.remove(i);
                let mut pats = self.patterns.write();
                if let Some(j) = pats.iter().position(|(p, _)| p == name) {
                    if drop_from(&mut pats[j].1) {
                        pats.remove(j);
                    }
                }
                true
            }
            Kind::Channel | Kind::Shard => {
                let mine = match kind {
                    Kind::Shard => &mut c.subs.shard,
                    _ => &mut c.subs.channels,
                };
                if !mine.remove(name) {
                    return false;
                }
                let mut table = self.table(kind).write();
                let Some(subs) = table.get_mut(name) else {
                    // Revoked meanwhile: the count went down with it.
                    return kind != Kind::Shard;
                };
                let listed = subs.iter().any(|h| h.id == id);
                if drop_from(subs) {
                    table.remove(name);
                }
                listed || kind != Kind::Shard
            }
        }
    }

    fn confirm(
        &self,
        c: &crate::client::Client,
        word: &[u8],
        name: Option<&Bytes>,
        kind: Kind,
        out: &mut Out,
    ) {
        if c.proto >= 3 {
            out.push_len(3);
        } else {
            out.array(3);
        }
        out.bulk(word);
        match name {
            Some(n) => out.bulk(n),
            None => out.null(),
        }
        out.int(c.subs.count(kind) as i64);
    }

    /// Unsubscribes everyone from the shard channels whose slot
    /// (`slot_of`) is in `slots`, telling each client with an
    /// `sunsubscribe` message as Redis's `removeChannelsInSlot` does when
    /// the slot leaves this node's shard.
    pub fn drop_shard_slots(&self, slots: &[u16], slot_of: impl Fn(&[u8]) -> u16) {
        let mut lost = vec![false; 1 << 14];
        for &s in slots {
            if let Some(l) = lost.get_mut(s as usize) {
                *l = true;
            }
        }
        let mut table = self.shard.write();
        let mut doomed: Vec<Bytes> = table
            .keys()
            .filter(|ch| lost.get(slot_of(ch) as usize) == Some(&true))
            .cloned()
            .collect();
        // Redis walks its slot-to-channel radix tree: by slot, then name.
        doomed.sort_by_cached_key(|ch| (slot_of(ch), ch.clone()));
        for ch in doomed {
            let Some(subs) = table.remove(&ch) else {
                continue;
            };
            for h in subs {
                h.subs.revoked.lock().push(ch.clone());
                let left = h
                    .subs
                    .ssub
                    .fetch_sub(1, Ordering::Relaxed)
                    .saturating_sub(1);
                let proto = h.resp.load(Ordering::Relaxed);
                self.deliver_with(&h, |b| {
                    b.extend_from_slice(if proto >= 3 { b">3\r\n" } else { b"*3\r\n" });
                    bulk(b, b"sunsubscribe");
                    bulk(b, &ch);
                    b.push(b':');
                    b.extend_from_slice(itoa::Buffer::new().format(left).as_bytes());
                    b.extend_from_slice(b"\r\n");
                });
            }
        }
    }

    /// Delivers `msg` on `channel` to its subscribers and to the patterns
    /// that match it (none for shard channels); returns how many
    /// deliveries were made, PUBLISH's reply.
    pub fn publish(&self, channel: &[u8], msg: &[u8], shard: bool) -> usize {
        let mut n = 0;
        let word: &[u8] = if shard { b"smessage" } else { b"message" };
        {
            let table = if shard { &self.shard } else { &self.channels }.read();
            if let Some(subs) = table.get(channel) {
                for h in subs {
                    let proto = h.resp.load(Ordering::Relaxed);
                    self.deliver_with(h, |b| push_into(b, proto, &[word, channel, msg]));
                    n += 1;
                }
            }
        }
        if shard {
            return n;
        }
        let pats = self.patterns.read();
        for (pat, subs) in pats.iter() {
            if !rampart_keyspace::glob::matches(pat, channel, false) {
                continue;
            }
            for h in subs {
                let proto = h.resp.load(Ordering::Relaxed);
                self.deliver_with(h, |b| {
                    push_into(b, proto, &[b"pmessage", pat, channel, msg])
                });
                n += 1;
            }
        }
        n
    }

    /// Appends `bytes` to a subscriber's mailbox, closing it when that puts
    /// it over the `pubsub` output limit (with Redis's log line).
    pub(crate) fn deliver(&self, h: &ClientHandle, bytes: &[u8]) {
        self.deliver_with(h, |b| b.extend_from_slice(bytes));
    }

    /// Lets `write` append to a subscriber's mailbox (encoding in place,
    /// with no copy of its own), then applies the output limit.
    fn deliver_with(&self, h: &ClientHandle, write: impl FnOnce(&mut Vec<u8>)) {
        if h.killed.load(Ordering::Relaxed) {
            return;
        }
        let m = &h.mailbox;
        let mut b = m.buf.lock();
        let was_empty = b.is_empty();
        write(&mut b);
        m.waiting.store(b.len(), Ordering::Relaxed);
        let used = (b.len() + m.unsent.load(Ordering::Relaxed)) as u64;
        drop(b);
        let limits = self.limits();
        let near =
            (limits.hard != 0 && used >= limits.hard) || (limits.soft != 0 && used >= limits.soft);
        if !near {
            // Under both limits: the soft limit's clock starts afresh.
            if m.soft_since.load(Ordering::Relaxed) != 0 {
                m.soft_since.store(0, Ordering::Relaxed);
            }
        } else if limits.exceeded(used, &m.soft_since, now_ms() / 1000) {
            tracing::warn!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                h.id,
                h.addr
            );
            m.take();
            h.killed.store(true, Ordering::Relaxed);
            h.wake.notify_one();
            return;
        }
        if was_empty {
            h.wake.notify_one();
        }
    }

    /// Names of the channels (or shard channels) with subscribers that
    /// match `pattern` (PUBSUB CHANNELS).
    pub fn channel_names(&self, shard: bool, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let table = if shard { &self.shard } else { &self.channels }.read();
        table
            .keys()
            .filter(|c| pattern.is_none_or(|p| rampart_keyspace::glob::matches(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (PUBSUB NUMSUB).
    pub fn numsub(&self, shard: bool, channel: &[u8]) -> usize {
        let table = if shard { &self.shard } else { &self.channels }.read();
        table.get(channel).map_or(0, |s| s.len())
    }

    /// Connections authenticated as `user` holding a subscription that
    /// `allowed(name, is_pattern)` now refuses
    /// (`ACLKillPubsubClientsIfNeeded`).
    pub fn violators(
        &self,
        user: &[u8],
        allowed: impl Fn(&[u8], bool) -> bool,
    ) -> Vec<Arc<ClientHandle>> {
        let mut out: Vec<Arc<ClientHandle>> = Vec::new();
        let mut consider = |name: &[u8], pattern: bool, subs: &Subscribers| {
            if allowed(name, pattern) {
                return;
            }
            for h in subs {
                if &h.user.lock()[..] == user && !out.iter().any(|o| o.id == h.id) {
                    out.push(h.clone());
                }
            }
        };
        for (p, subs) in self.patterns.read().iter() {
            consider(p, true, subs);
        }
        for table in [&self.channels, &self.shard] {
            for (c, subs) in table.read().iter() {
                consider(c, false, subs);
            }
        }
        out
    }

    /// Distinct patterns subscribed (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.patterns.read().len()
    }

    /// The notification classes that are on.
    #[inline]
    pub fn events(&self) -> u32 {
        self.events.load(Ordering::Relaxed)
    }

    /// Redis's `notifyKeyspaceEvent`: publishes `event` for `key` in `db`
    /// when its class is on. Costs one load when notifications are off.
    #[inline]
    pub fn notify(&self, kind: u32, event: &str, key: &[u8], db: usize) {
        let on = self.events();
        if on & kind == 0 {
            return;
        }
        self.notify_slow(on, event, key, db);
    }

    #[cold]
    fn notify_slow(&self, on: u32, event: &str, key: &[u8], db: usize) {
        let dbs = itoa::Buffer::new().format(db).to_owned();
        if on & class::KEYSPACE != 0 {
            let mut chan = Vec::with_capacity(16 + key.len());
            chan.extend_from_slice(b"__keyspace@");
            chan.extend_from_slice(dbs.as_bytes());
            chan.extend_from_slice(b"__:");
            chan.extend_from_slice(key);
            self.publish(&chan, event.as_bytes(), false);
        }
        if on & class::KEYEVENT != 0 {
            let mut chan = Vec::with_capacity(16 + event.len());
            chan.extend_from_slice(b"__keyevent@");
            chan.extend_from_slice(dbs.as_bytes());
            chan.extend_from_slice(b"__:");
            chan.extend_from_slice(event.as_bytes());
            self.publish(&chan, key, false);
        }
    }
}

/// Drops from the connection's own list the shard channels the server
/// revoked ([`PubSub::drop_shard_slots`]).
pub fn settle(c: &mut crate::client::Client) {
    let mut revoked = c.handle.subs.revoked.lock();
    for ch in revoked.drain(..) {
        c.subs.shard.remove(&ch);
    }
}

fn count_of(h: &ClientHandle, kind: Kind) -> &AtomicU32 {
    match kind {
        Kind::Channel => &h.subs.sub,
        Kind::Pattern => &h.subs.psub,
        Kind::Shard => &h.subs.ssub,
    }
}
