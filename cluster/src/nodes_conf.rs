//! Redis 7.0's cluster config file (`cluster-config-file`, nodes.conf): one
//! `CLUSTER NODES` line per known node, then `vars currentEpoch N
//! lastVoteEpoch M`. Parsed into [`NodesConf`], written back in exactly the
//! form redis-server writes, and saved with [`save`], which never leaves a
//! half-written file where a good one was.
//!
//! # Format
//!
//! ```text
//! <id> <ip>:<port>@<cport>[,<hostname>] <flags> <master-id|-> <ping-sent> <pong-recv> <config-epoch> <connected|disconnected> [<slot>|<from>-<to>|[<slot>->-<id>]|[<slot>-<-<id>]]...
//! vars currentEpoch <n> lastVoteEpoch <m>
//! ```
//!
//! Flags are a comma-separated subset of `myself master slave fail? fail
//! handshake noaddr nofailover`, or `noflags`. Migrating (`->-`) and
//! importing (`-<-`) entries appear only on the `myself` line.

use crate::msg::node_flags;
use crate::slot::SLOTS;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use thiserror::Error;

/// A whole nodes.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodesConf {
    /// The node lines, in file order (Redis writes its dict order).
    pub nodes: Vec<NodeLine>,
    /// `vars currentEpoch` (0 when the file has no vars line).
    pub current_epoch: u64,
    /// `vars lastVoteEpoch`.
    pub last_vote_epoch: u64,
}

/// One node line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLine {
    /// 40 characters of `[0-9a-z]`.
    pub id: String,
    /// IP as written (may be empty for a node that does not know its own yet).
    pub ip: String,
    /// Client port.
    pub port: u16,
    /// Bus port (port + 10000 when an old file has no `@cport`).
    pub cport: u16,
    /// Announced hostname, after the comma.
    pub hostname: Option<String>,
    /// [`node_flags`] bits; only those nodes.conf can name are kept.
    pub flags: u16,
    /// The master's id, for a replica.
    pub master: Option<String>,
    /// Unix ms of the last PING sent, 0 if none pending.
    pub ping_sent: u64,
    /// Unix ms of the last PONG received.
    pub pong_recv: u64,
    /// Config epoch (a replica's line shows its master's).
    pub config_epoch: u64,
    /// Link state: `connected` (or myself) vs `disconnected`.
    pub connected: bool,
    /// Owned slots as written: single slots are one-slot ranges.
    pub slots: Vec<RangeInclusive<u16>>,
    /// `[slot->-id]` and `[slot-<-id]` entries, in file order.
    pub migrations: Vec<SlotMigration>,
}

/// A slot being moved, as recorded on the `myself` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMigration {
    /// The slot.
    pub slot: u16,
    /// Direction.
    pub direction: Direction,
    /// The other node.
    pub node: String,
}

/// Which way a slot moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `[slot->-id]`: this node is migrating the slot to `id`.
    Migrating,
    /// `[slot-<-id]`: this node is importing the slot from `id`.
    Importing,
}

/// The flag names in the order Redis prints them (`redisNodeFlagsTable`).
const FLAG_NAMES: [(u16, &str); 8] = [
    (node_flags::MYSELF, "myself"),
    (node_flags::MASTER, "master"),
    (node_flags::SLAVE, "slave"),
    (node_flags::PFAIL, "fail?"),
    (node_flags::FAIL, "fail"),
    (node_flags::HANDSHAKE, "handshake"),
    (node_flags::NOADDR, "noaddr"),
    (node_flags::NOFAILOVER, "nofailover"),
];

/// What is wrong with a nodes.conf, and on which line (from 1).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("nodes.conf line {line}: {kind}")]
pub struct ParseError {
    /// Line number, from 1 (0 for whole-file problems).
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

/// The kinds of [`ParseError`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    /// A node line with fewer than 8 fields.
    #[error("fewer than 8 fields")]
    TooFewFields,
    /// Not 40 characters of `[0-9a-z]`.
    #[error("bad node id {0:?}")]
    BadNodeId(String),
    /// No `:` before the port, or a bad port number.
    #[error("bad address {0:?}")]
    BadAddress(String),
    /// A flag Redis does not know.
    #[error("unknown flag {0:?}")]
    UnknownFlag(String),
    /// A field that should be a number is not.
    #[error("bad number {0:?}")]
    BadNumber(String),
    /// Link state other than connected/disconnected.
    #[error("bad link state {0:?}")]
    BadLinkState(String),
    /// A slot, range or migration entry that does not parse or is out of range.
    #[error("bad slot entry {0:?}")]
    BadSlot(String),
    /// A vars line with an odd number of words after `vars`, or a bad value.
    #[error("bad vars line")]
    BadVars,
    /// No line has the `myself` flag.
    #[error("no node is flagged myself")]
    NoMyself,
    /// More than one line has the `myself` flag.
    #[error("more than one node is flagged myself")]
    MultipleMyself,
}

/// Reading a nodes.conf failed.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The file is not valid UTF-8.
    #[error("{0}: not valid UTF-8")]
    NotUtf8(String),
    /// The contents are malformed.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        source: ParseError,
    },
}

fn err(line: usize, kind: ParseErrorKind) -> ParseError {
    ParseError { line, kind }
}

fn is_node_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl NodesConf {
    /// Parses a nodes.conf. Blank lines are skipped (Redis pads with newlines
    /// when it rewrites a longer file), unknown `vars` are ignored as Redis
    /// does, and anything Redis would refuse is an error.
    ///
    /// ```
    /// use rampart_cluster::nodes_conf::NodesConf;
    /// let text = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [5461-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]\n\
    ///             67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@40002,node2 master - 0 1700000000000 2 connected 5461-10922\n\
    ///             vars currentEpoch 2 lastVoteEpoch 0\n";
    /// let conf = NodesConf::parse(text).unwrap();
    /// assert_eq!(conf.current_epoch, 2);
    /// assert_eq!(conf.nodes[1].hostname.as_deref(), Some("node2"));
    /// assert_eq!(conf.nodes[0].slots, vec![0..=5460]);
    /// assert_eq!(conf.to_string(), text);
    /// ```
    pub fn parse(text: &str) -> Result<NodesConf, ParseError> {
        let mut conf = NodesConf::default();
        let mut myself = 0;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let Some(first) = fields.first() else {
                continue;
            };
            if first.eq_ignore_ascii_case("vars") {
                let vars = &fields[1..];
                if !vars.len().is_multiple_of(2) {
                    return Err(err(n, ParseErrorKind::BadVars));
                }
                for kv in vars.chunks(2) {
                    let value = || {
                        kv[1]
                            .parse::<u64>()
                            .map_err(|_| err(n, ParseErrorKind::BadVars))
                    };
                    if kv[0].eq_ignore_ascii_case("currentEpoch") {
                        conf.current_epoch = value()?;
                    } else if kv[0].eq_ignore_ascii_case("lastVoteEpoch") {
                        conf.last_vote_epoch = value()?;
                    }
                }
                continue;
            }
            let node = parse_node(&fields).map_err(|kind| err(n, kind))?;
            if node.flags & node_flags::MYSELF != 0 {
                myself += 1;
                if myself > 1 {
                    return Err(err(n, ParseErrorKind::MultipleMyself));
                }
            }
            conf.nodes.push(node);
        }
        if myself == 0 {
            return Err(err(0, ParseErrorKind::NoMyself));
        }
        Ok(conf)
    }

    /// The `myself` line (a parsed file always has one).
    pub fn myself(&self) -> Option<&NodeLine> {
        self.nodes
            .iter()
            .find(|n| n.flags & node_flags::MYSELF != 0)
    }
}

fn parse_num<T: std::str::FromStr>(s: &str) -> Result<T, ParseErrorKind> {
    s.parse()
        .map_err(|_| ParseErrorKind::BadNumber(s.to_string()))
}

fn parse_node(f: &[&str]) -> Result<NodeLine, ParseErrorKind> {
    if f.len() < 8 {
        return Err(ParseErrorKind::TooFewFields);
    }
    if !is_node_id(f[0]) {
        return Err(ParseErrorKind::BadNodeId(f[0].to_string()));
    }
    // ip:port[@cport][,hostname]; the ip may itself hold colons (IPv6).
    let (addr, hostname) = match f[1].split_once(',') {
        Some((a, h)) => (a, Some(h.to_string())),
        None => (f[1], None),
    };
    let bad_addr = || ParseErrorKind::BadAddress(f[1].to_string());
    let (ip, ports) = addr.rsplit_once(':').ok_or_else(bad_addr)?;
    let (port, cport) = match ports.split_once('@') {
        Some((p, c)) => (
            p.parse::<u16>().map_err(|_| bad_addr())?,
            c.parse::<u16>().map_err(|_| bad_addr())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad_addr())?;
            // Files from before Redis 4 have no @cport: Redis assumes +10000.
            (p, p.checked_add(10000).ok_or_else(bad_addr)?)
        }
    };
    let mut flags = 0;
    for name in f[2].split(',') {
        if name.eq_ignore_ascii_case("noflags") {
            continue;
        }
        let bit = FLAG_NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(b, _)| *b)
            .ok_or_else(|| ParseErrorKind::UnknownFlag(name.to_string()))?;
        flags |= bit;
    }
    let master = match f[3] {
        "-" => None,
        id if is_node_id(id) => Some(id.to_string()),
        other => return Err(ParseErrorKind::BadNodeId(other.to_string())),
    };
    let connected = match f[7] {
        "connected" => true,
        "disconnected" => false,
        other => return Err(ParseErrorKind::BadLinkState(other.to_string())),
    };
    let mut slots = Vec::new();
    let mut migrations = Vec::new();
    for &entry in &f[8..] {
        let bad = || ParseErrorKind::BadSlot(entry.to_string());
        let slot_num = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|&v| usize::from(v) < SLOTS)
                .ok_or_else(bad)
        };
        if let Some(inner) = entry.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(bad)?;
            let (slot, rest) = inner.split_once('-').ok_or_else(bad)?;
            let (direction, node) = if let Some(id) = rest.strip_prefix(">-") {
                (Direction::Migrating, id)
            } else if let Some(id) = rest.strip_prefix("<-") {
                (Direction::Importing, id)
            } else {
                return Err(bad());
            };
            if !is_node_id(node) {
                return Err(bad());
            }
            migrations.push(SlotMigration {
                slot: slot_num(slot)?,
                direction,
                node: node.to_string(),
            });
        } else if let Some((a, b)) = entry.split_once('-') {
            let (a, b) = (slot_num(a)?, slot_num(b)?);
            if a > b {
                return Err(bad());
            }
            slots.push(a..=b);
        } else {
            let s = slot_num(entry)?;
            slots.push(s..=s);
        }
    }
    Ok(NodeLine {
        id: f[0].to_string(),
        ip: ip.to_string(),
        port,
        cport,
        hostname,
        flags,
        master,
        ping_sent: parse_num(f[4])?,
        pong_recv: parse_num(f[5])?,
        config_epoch: parse_num(f[6])?,
        connected,
        slots,
        migrations,
    })
}

impl fmt::Display for NodeLine {
    /// The line without its newline, as `clusterGenNodeDescription` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}@{}", self.id, self.ip, self.port, self.cport)?;
        if let Some(h) = &self.hostname {
            write!(f, ",{h}")?;
        }
        let names: Vec<&str> = FLAG_NAMES
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            write!(f, " noflags")?;
        } else {
            write!(f, " {}", names.join(","))?;
        }
        write!(
            f,
            " {} {} {} {} {}",
            self.master.as_deref().unwrap_or("-"),
            self.ping_sent,
            self.pong_recv,
            self.config_epoch,
            if self.connected {
                "connected"
            } else {
                "disconnected"
            }
        )?;
        for r in &self.slots {
            if r.start() == r.end() {
                write!(f, " {}", r.start())?;
            } else {
                write!(f, " {}-{}", r.start(), r.end())?;
            }
        }
        for m in &self.migrations {
            let arrow = match m.direction {
                Direction::Migrating => "->-",
                Direction::Importing => "-<-",
            };
            write!(f, " [{}{}{}]", m.slot, arrow, m.node)?;
        }
        Ok(())
    }
}

impl fmt::Display for NodesConf {
    /// The whole file, as `clusterSaveConfig` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.nodes {
            writeln!(f, "{n}")?;
        }
        writeln!(
            f,
            "vars currentEpoch {} lastVoteEpoch {}",
            self.current_epoch, self.last_vote_epoch
        )
    }
}

/// Reads a nodes.conf. `Ok(None)` when the file is missing or empty: as for
/// Redis, that means "start a new node and write a config".
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("nodes.conf");
/// assert!(rampart_cluster::nodes_conf::load(&path).unwrap().is_none());
/// ```
pub fn load(path: &Path) -> Result<Option<NodesConf>, LoadError> {
    let shown = || path.display().to_string();
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LoadError::Io {
                path: shown(),
                source,
            })
        }
    };
    if bytes.is_empty() {
        return Ok(None);
    }
    let text = String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8(shown()))?;
    NodesConf::parse(&text)
        .map(Some)
        .map_err(|source| LoadError::Parse {
            path: shown(),
            source,
        })
}

/// Writes `conf` to `path` so that a crash at any point leaves either the old
/// file or the new one, whole: the text goes to a temporary file in the same
/// directory, which is fsynced, renamed over `path`, and the directory fsynced
/// so the rename itself survives a power loss. (Redis rewrites the file in
/// place and pads it; a rename gives the same guarantee without relying on a
/// single `write` landing whole.)
///
/// ```
/// use rampart_cluster::nodes_conf::{load, save, NodesConf};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("nodes.conf");
/// let conf = NodesConf::parse(
///     "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca :6379@16379 myself,master - 0 0 0 connected\n",
/// ).unwrap();
/// save(&path, &conf).unwrap();
/// assert_eq!(load(&path).unwrap(), Some(conf));
/// ```
pub fn save(path: &Path, conf: &NodesConf) -> io::Result<()> {
    write_atomic(path, conf.to_string().as_bytes())
}

/// [`save`] without the fsyncs, for changes Redis saves without
/// `CLUSTER_TODO_FSYNC_CONFIG` (CLUSTER SETSLOT): the rename still
/// replaces the file whole, and a resharding's three SETSLOTs a slot do
/// not each wait for the disk.
pub fn save_unsynced(path: &Path, conf: &NodesConf) -> io::Result<()> {
    write_atomic_with(path, conf.to_string().as_bytes(), false)
}

/// Replaces `path` with `contents` atomically (see [`save`]).
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_atomic_with(path, contents, true)
}

/// [`write_atomic`], with the file and directory fsyncs only if `sync`.
fn write_atomic_with(path: &Path, contents: &[u8], sync: bool) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    // Unique per call too, so two saves racing in one process cannot write
    // into each other's temporary file.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    tmp_name.push(format!(".tmp-{}-{seq}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(contents)?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, path)?;
        if sync {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        // Best effort: the old file is intact either way; do not leave litter.
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn roundtrips_every_field_kind() {
        let text = format!(
            "{A} ::1:7000@17000,host-a.example myself,master - 0 0 3 connected 0 2-100 16383 [5->-{B}] [7-<-{B}]\n\
             {B} 10.0.0.2:7001@17001 slave,fail?,nofailover {A} 1700000000123 1700000000456 3 disconnected\n\
             cccccccccccccccccccccccccccccccccccccccc :0@0 master,fail,noaddr - 0 0 0 disconnected\n\
             dddddddddddddddddddddddddddddddddddddddd 10.0.0.4:7003@17003 handshake - 0 0 0 connected\n\
             eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee 10.0.0.5:7004@17004 noflags - 0 0 0 connected\n\
             vars currentEpoch 5 lastVoteEpoch 4\n"
        );
        let conf = NodesConf::parse(&text).unwrap();
        assert_eq!(conf.nodes[0].ip, "::1");
        assert_eq!(conf.nodes[0].slots, vec![0..=0, 2..=100, 16383..=16383]);
        assert_eq!(conf.nodes[0].migrations[1].direction, Direction::Importing);
        assert_eq!(conf.nodes[1].master.as_deref(), Some(A));
        assert_eq!(conf.nodes[1].ping_sent, 1700000000123);
        assert!(!conf.nodes[1].connected);
        assert_eq!(conf.myself().map(|n| n.id.as_str()), Some(A));
        assert_eq!(conf.to_string(), text);
    }

    #[test]
    fn tolerates_what_redis_tolerates() {
        let text = format!(
            "\n{A} 127.0.0.1:7000 MYSELF,Master - 0 0 0 connected\n\nvars currentEpoch 1 lastVoteEpoch 0 futureVar 9\n\n\n"
        );
        let conf = NodesConf::parse(&text).unwrap();
        assert_eq!(conf.nodes[0].cport, 17000);
        assert_eq!(conf.current_epoch, 1);
    }

    #[test]
    fn bad_input_is_an_error_value() {
        let ok = format!("{A} 127.0.0.1:7000@17000 myself,master - 0 0 0 connected");
        assert!(NodesConf::parse(&ok).is_ok());
        let cases = [
            format!("{A} 127.0.0.1:7000@17000 myself,master - 0 0 0"),
            format!("{} 127.0.0.1:7000@17000 myself - 0 0 0 connected", &A[1..]),
            format!("{A} 127.0.0.1@17000 myself - 0 0 0 connected"),
            format!("{A} 127.0.0.1:70000@17000 myself - 0 0 0 connected"),
            format!("{A} 127.0.0.1:7000@17000 myself,bogus - 0 0 0 connected"),
            format!("{A} 127.0.0.1:7000@17000 myself xyz 0 0 0 connected"),
            format!("{A} 127.0.0.1:7000@17000 myself - x 0 0 connected"),
            format!("{A} 127.0.0.1:7000@17000 myself - 0 0 -1 connected"),
            format!("{A} 127.0.0.1:7000@17000 myself - 0 0 0 maybe"),
            format!("{A} 127.0.0.1:7000@17000 myself - 0 0 0 connected 16384"),
            format!("{A} 127.0.0.1:7000@17000 myself - 0 0 0 connected 10-5"),
            format!("{A} 127.0.0.1:7000@17000 myself - 0 0 0 connected [5->{B}]"),
            format!("{A} 127.0.0.1:7000@17000 myself - 0 0 0 connected [5->-{B}"),
            format!("{A} 127.0.0.1:7000@17000 myself - 0 0 0 connected [5->-xyz]"),
            format!("{A} 127.0.0.1:7000@17000 myself - 0 0 0 connected -"),
            format!("{ok}\nvars currentEpoch"),
            format!("{ok}\nvars currentEpoch x"),
            format!("{ok}\n{ok}"),
            format!("{A} 127.0.0.1:7000@17000 master - 0 0 0 connected"),
            String::new(),
        ];
        for c in &cases {
            assert!(NodesConf::parse(c).is_err(), "{c}");
        }
    }

    #[test]
    fn save_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nodes.conf");
        fs::write(&path, "old\n".repeat(1000)).unwrap();
        let conf = NodesConf::parse(&format!(
            "{A} 127.0.0.1:7000@17000 myself,master - 0 0 0 connected 0-16383\n"
        ))
        .unwrap();
        save(&path, &conf).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), conf.to_string());
        // Nothing but the file itself is left in the directory.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // A write that cannot happen leaves the old file as it was.
        let missing = dir.path().join("no-such-dir").join("nodes.conf");
        assert!(save(&missing, &conf).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), conf.to_string());
    }
}
