//! `ACL LOG`: recent denials, similar ones grouped (`addACLLogEntry`).

use std::collections::VecDeque;

/// What was denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A command.
    Command,
    /// A key.
    Key,
    /// A channel.
    Channel,
    /// AUTH or HELLO AUTH with a bad user or password.
    Auth,
}

impl Reason {
    /// ACL LOG's `reason` field.
    pub fn name(self) -> &'static str {
        match self {
            Reason::Command => "command",
            Reason::Key => "key",
            Reason::Channel => "channel",
            Reason::Auth => "auth",
        }
    }
}

/// Where the denied command ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Sent by a client.
    Toplevel,
    /// Inside MULTI/EXEC.
    Multi,
    /// From a script.
    Lua,
}

impl Context {
    /// ACL LOG's `context` field.
    pub fn name(self) -> &'static str {
        match self {
            Context::Toplevel => "toplevel",
            Context::Multi => "multi",
            Context::Lua => "lua",
        }
    }
}

/// One ACL LOG entry.
#[derive(Clone, Debug)]
pub struct Entry {
    /// How many denials it stands for.
    pub count: u64,
    /// What was denied.
    pub reason: Reason,
    /// Where.
    pub context: Context,
    /// The command name, key, channel, or (for auth) the command typed.
    pub object: Vec<u8>,
    /// The user the client was authenticated as (or tried to be).
    pub username: Vec<u8>,
    /// Last update, Unix ms.
    pub ctime_ms: u64,
    /// CLIENT INFO of the last client.
    pub client_info: String,
}

/// Entries further apart than this are not grouped.
const GROUPING_MS: u64 = 60_000;

/// The log, newest first.
///
/// ```
/// use rampart_acl::{Context, Entry, Log, Reason};
/// let mut log = Log::default();
/// let e = |t| Entry { count: 1, reason: Reason::Key, context: Context::Toplevel,
///     object: b"k".to_vec(), username: b"u".to_vec(), ctime_ms: t, client_info: String::new() };
/// log.add(e(1000), 128);
/// log.add(e(2000), 128);
/// assert_eq!(log.entries().count(), 1);
/// assert_eq!(log.entries().next().unwrap().count, 2);
/// ```
#[derive(Default, Debug)]
pub struct Log {
    entries: VecDeque<Entry>,
}

impl Log {
    /// Records a denial: bumps a similar entry among the 10 newest (same
    /// reason, context, object and user, within 60 s) and moves it to the
    /// front, or adds a new one, keeping at most `max_len`.
    pub fn add(&mut self, e: Entry, max_len: usize) {
        let similar = self.entries.iter().take(10).position(|o| {
            o.reason == e.reason
                && o.context == e.context
                && o.ctime_ms.abs_diff(e.ctime_ms) <= GROUPING_MS
                && o.object == e.object
                && o.username == e.username
        });
        match similar.and_then(|i| self.entries.remove(i)) {
            Some(mut o) => {
                o.count += 1;
                o.ctime_ms = e.ctime_ms;
                o.client_info = e.client_info;
                self.entries.push_front(o);
            }
            None => {
                self.entries.push_front(e);
                self.entries.truncate(max_len);
            }
        }
    }

    /// Entries, newest first.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `ACL LOG RESET`.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Drops entries beyond `max_len` (after CONFIG SET acllog-max-len).
    pub fn trim(&mut self, max_len: usize) {
        self.entries.truncate(max_len);
    }
}
