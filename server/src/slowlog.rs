//! The slow log (Redis's `slowlog.c`): commands that ran at least
//! `slowlog-log-slower-than` microseconds, newest first, at most
//! `slowlog-max-len`, with their arguments trimmed and secrets redacted as
//! Redis records them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

/// At most this many arguments are kept; the last says how many more.
const MAX_ARGC: usize = 32;
/// Arguments are cut to this many bytes.
const MAX_STRING: usize = 128;

/// One slow command.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Sequence number, from 0.
    pub id: u64,
    /// When it ran (Unix seconds).
    pub time: u64,
    /// How long it ran (µs).
    pub duration: u64,
    /// Its arguments, trimmed and redacted.
    pub args: Vec<Bytes>,
    /// The client's address.
    pub peer: String,
    /// The client's name.
    pub name: Bytes,
}

/// The slow log.
pub struct Slowlog {
    entries: Mutex<VecDeque<Entry>>,
    next_id: AtomicU64,
    /// `slowlog-log-slower-than` (µs; negative: off), read by every command.
    pub slower_than: AtomicI64,
    /// `slowlog-max-len`.
    pub max_len: AtomicU64,
}

impl Default for Slowlog {
    /// Off until [`configure`] reads the config.
    fn default() -> Self {
        Slowlog {
            entries: Mutex::default(),
            next_id: AtomicU64::new(0),
            slower_than: AtomicI64::new(-1),
            max_len: AtomicU64::new(0),
        }
    }
}

/// The argument positions Redis replaces with `(redacted)`: passwords of
/// AUTH, HELLO AUTH, ACL SETUSER's rules and CONFIG SET of the sensitive
/// directives.
pub(crate) fn redacted(name: &str, args: &[Bytes]) -> Vec<usize> {
    let is = |a: &Bytes, w: &str| a.eq_ignore_ascii_case(w.as_bytes());
    match name {
        "auth" if args.len() <= 3 => (1..args.len()).collect(),
        "hello" => {
            let mut out = Vec::new();
            let mut j = 2;
            while j < args.len() {
                if is(&args[j], "auth") && j + 2 < args.len() {
                    out.extend([j + 1, j + 2]);
                    j += 3;
                } else {
                    j += if is(&args[j], "setname") { 2 } else { 1 };
                }
            }
            out
        }
        "acl|setuser" => (2..args.len()).collect(),
        "config|set" => (2..args.len())
            .step_by(2)
            .filter(|&i| {
                ["masteruser", "masterauth", "requirepass"]
                    .iter()
                    .any(|n| is(&args[i], n))
            })
            .map(|i| i + 1)
            .filter(|&i| i < args.len())
            .collect(),
        _ => Vec::new(),
    }
}

impl Slowlog {
    /// Whether a command that ran `duration` µs is to be logged: the one
    /// check every command pays.
    #[inline]
    pub fn wants(&self, duration: u64) -> bool {
        let t = self.slower_than.load(Ordering::Relaxed);
        t >= 0 && duration >= t as u64
    }

    /// Records a command (`slowlogPushEntryIfNeeded` once [`Slowlog::wants`]
    /// said yes). `name` is its full name (`config|set`).
    pub fn push(&self, name: &str, args: &[Bytes], duration: u64, peer: &str, client: Bytes) {
        let hide = redacted(name, args);
        let keep = args.len().min(MAX_ARGC);
        let mut out = Vec::with_capacity(keep);
        for (j, a) in args.iter().take(keep).enumerate() {
            if keep != args.len() && j == keep - 1 {
                out.push(Bytes::from(format!(
                    "... ({} more arguments)",
                    args.len() - keep + 1
                )));
            } else if hide.contains(&j) {
                out.push(Bytes::from_static(b"(redacted)"));
            } else if a.len() > MAX_STRING {
                let mut s = a[..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                );
                out.push(Bytes::from(s));
            } else {
                out.push(a.clone());
            }
        }
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time: crate::state::now_ms() / 1000,
            duration,
            args: out,
            peer: peer.to_string(),
            name: client,
        };
        let max = self.max_len.load(Ordering::Relaxed) as usize;
        let mut e = self.entries.lock();
        e.push_front(entry);
        e.truncate(max);
    }

    /// The newest `count` entries.
    pub fn newest(&self, count: usize) -> Vec<Entry> {
        self.entries.lock().iter().take(count).cloned().collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// SLOWLOG RESET.
    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// Follows the config. A shorter length trims at the next entry, as
    /// in Redis.
    fn set(&self, slower_than: i64, max_len: i64) {
        self.slower_than.store(slower_than, Ordering::Relaxed);
        self.max_len.store(max_len.max(0) as u64, Ordering::Relaxed);
    }
}

/// Reads `slowlog-log-slower-than` and `slowlog-max-len` (at startup and
/// after CONFIG SET).
pub fn configure(srv: &crate::state::Server) {
    srv.slowlog.set(
        srv.config.int("slowlog-log-slower-than"),
        srv.config.int("slowlog-max-len"),
    );
}
