//! Replication, both sides, on top of the protocol pieces in
//! `rampart_replication`.
//!
//! - [`Repl`] is the write stream: every propagated effect is encoded once,
//!   appended to the backlog and to each attached replica's output buffer,
//!   under one lock, in apply order (dispatch takes the exclusive gate for
//!   writes while the stream is active).
//! - Primary side: PSYNC/SYNC hand the connection to [`serve_replica`]:
//!   `+CONTINUE` from the backlog, or `+FULLRESYNC` and a point-in-time
//!   snapshot streamed without a temp file, sealed in the envelope (payload
//!   type 2) for replicas that announced `capa rampart-enc`; with
//!   `repl-diskless-sync no` (or a replica without `capa eof`) a BGSAVE
//!   writes the sealed snapshot file first and the file is sent, decrypted
//!   on the way only for a replica allowed plain RDB.
//! - Replica side: [`start_replica`] runs the link to a primary: handshake,
//!   full sync stored through the replica's own at-rest protection before it
//!   is loaded, then the command stream, acknowledged every second.
//!
//! Either side may run over TLS: a replica with `tls-replication yes`
//! opens its link through [`crate::tls`], and a primary serves replicas
//! that came in on its `tls-port` on their TLS session, so the stream after
//! the full sync is encrypted in transit too.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use rampart_kms::{EnvelopeReader, EnvelopeWriter};
use rampart_persistence::rdb::Crc64;
use rampart_persistence::snapshot::{Format, Protection};
use rampart_replication::{encode_command, push_command, Backlog, Deframer, Framing, PsyncReply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::Client;
use crate::conn::ConnIo;
use crate::resp::{Limits, Out, Parser};
use crate::state::{now_ms, Propagate, Server};

/// The smallest backlog CONFIG SET allows (Redis's
/// `CONFIG_REPL_BACKLOG_MIN_SIZE`).
const MIN_BACKLOG: u64 = 16 * 1024;

/// What PSYNC or SYNC asked for; the connection loop hands the socket to
/// [`serve_replica`] with it once the command's turn comes.
#[derive(Debug, Clone)]
pub enum Handoff {
    /// `PSYNC <replid> <offset>` (`?` and -1 force a full sync).
    Psync {
        /// The replication id the replica follows.
        replid: String,
        /// The next byte it wants.
        offset: i64,
    },
    /// `SYNC`: the old protocol, always a full sync.
    Sync,
}

/// What a replica announced with REPLCONF before PSYNC.
#[derive(Debug, Clone, Default)]
pub struct PeerInfo {
    /// `REPLCONF listening-port` (kept as given: Redis does not range-check it).
    pub listening_port: i64,
    /// `REPLCONF ip-address`.
    pub ip: Option<String>,
    /// `capa eof`: understands `$EOF:` framing.
    pub capa_eof: bool,
    /// `capa psync2`.
    pub capa_psync2: bool,
    /// `capa rampart-enc`: takes the full sync as an envelope.
    pub capa_enc: bool,
}

/// One attached replica, as the primary sees it.
pub struct Replica {
    /// CLIENT ID of its connection.
    pub client_id: u64,
    /// Address for INFO (`ip=`).
    pub ip: String,
    /// Its listening port (`port=`).
    pub port: i64,
    buf: Mutex<Vec<u8>>,
    /// Bytes taken from `buf` and being written to the socket: still
    /// replication memory, which `maxmemory` leaves out.
    in_flight: AtomicU64,
    wake: tokio::sync::Notify,
    /// Last `REPLCONF ACK` offset.
    pub ack: AtomicU64,
    /// When the last ACK arrived (Unix ms).
    pub last_ack_ms: AtomicU64,
    /// Streaming (after the snapshot and its first ACK).
    pub online: AtomicBool,
    /// Whether the snapshot is being sent (INFO state `send_bulk`).
    pub sending: AtomicBool,
    closed: AtomicBool,
    /// When its pending output went over the soft limit (Unix seconds,
    /// 0 = it is under).
    soft_since: AtomicU64,
    /// Its CLIENT LIST line, for the log when it is dropped.
    info: Mutex<String>,
}

impl Replica {
    fn new(client_id: u64, ip: String, port: i64, pending: Vec<u8>) -> Arc<Replica> {
        let info = format!("id={client_id} addr={ip}:{port}");
        Arc::new(Replica {
            client_id,
            ip,
            port,
            buf: Mutex::new(pending),
            in_flight: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            ack: AtomicU64::new(0),
            last_ack_ms: AtomicU64::new(now_ms()),
            online: AtomicBool::new(false),
            sending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            soft_since: AtomicU64::new(0),
            info: Mutex::new(info),
        })
    }

    fn describe(&self) -> String {
        self.info.lock().clone()
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// INFO's replica state: `wait_bgsave`, `send_bulk` or `online`.
    pub fn state(&self) -> &'static str {
        if self.online.load(Ordering::Relaxed) {
            "online"
        } else if self.sending.load(Ordering::Relaxed) {
            "send_bulk"
        } else {
            "wait_bgsave"
        }
    }
}

/// Transaction wrapping of the stream: MULTI is written lazily, before the
/// first effect of an EXEC, so a read-only transaction propagates nothing.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Tx {
    None,
    Pending,
    Open,
}

struct Inner {
    replid: String,
    replid2: String,
    second_offset: i64,
    /// master_repl_offset: bytes ever written to the stream.
    offset: u64,
    backlog: Option<Backlog>,
    /// The database the stream last SELECTed (`None`: SELECT next time).
    db: Option<usize>,
    tx: Tx,
    replicas: Vec<Arc<Replica>>,
    /// When the last replica left (repl-backlog-ttl).
    alone_since: Option<Instant>,
    /// A replica's offset and its primary's database at the last command
    /// applied outside a transaction: what a snapshot records, since a
    /// restart that resumed inside MULTI would apply EXEC alone.
    safe_offset: u64,
    safe_db: usize,
    /// `offset`, readable without this lock (each command's `woff`).
    published: Arc<AtomicU64>,
    /// The BGSAVE for a disk-based full sync while it runs: replicas that
    /// ask meanwhile attach to it.
    disk: Option<DiskRun>,
}

/// A BGSAVE for a disk-based full sync in progress (Redis's replicas in
/// `WAIT_BGSAVE_END` with `rdb_child_type` disk).
struct DiskRun {
    replid: String,
    offset: u64,
    /// The replicas it serves; their output buffers hold the stream since
    /// `offset`, which a replica attaching later gets a copy of.
    members: Vec<Arc<Replica>>,
    done: tokio::sync::watch::Receiver<Option<SyncFileResult>>,
}

/// The snapshot file a disk-based full sync sends, open for reading.
struct SyncFile {
    file: std::fs::File,
    len: u64,
}

type SyncFileResult = Result<Arc<SyncFile>, String>;

/// A `Read + Seek` over a shared [`SyncFile`] with its own position
/// (positional reads), so every replica reads the file at its own pace.
struct FileCursor {
    file: Arc<SyncFile>,
    pos: u64,
}

impl Read for FileCursor {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.file.read_at(out, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for FileCursor {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let next = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => self.file.len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = next.ok_or_else(|| std::io::Error::other("seek out of range"))?;
        Ok(self.pos)
    }
}

/// The replica class of `client-output-buffer-limit`, in bytes and
/// seconds (0 disables a limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObufLimits {
    /// Closed at once past this many pending bytes.
    pub hard: u64,
    /// Closed when past this many bytes for longer than `soft_secs`.
    pub soft: u64,
    /// How long the soft limit may be exceeded.
    pub soft_secs: u64,
}

impl ObufLimits {
    /// The `replica` (`slave`) class of a `client-output-buffer-limit`
    /// value as the config holds it (`normal 0 0 0 slave 268435456 …`).
    pub fn from_config(value: &str, class: &str) -> Option<ObufLimits> {
        let words: Vec<&str> = value.split_whitespace().collect();
        let replica =
            |w: &str| w.eq_ignore_ascii_case("slave") || w.eq_ignore_ascii_case("replica");
        let at = words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(class) || (replica(class) && replica(w)))?;
        let num = |i: usize| words.get(at + i)?.parse::<u64>().ok();
        Some(ObufLimits {
            hard: num(1)?,
            soft: num(2)?,
            soft_secs: num(3)?,
        })
    }

    /// Redis's `checkClientOutputBufferLimits`: whether a replica with
    /// `used` bytes pending must go. `soft_since` (Unix seconds, 0 = under
    /// the soft limit) is when it went over the soft limit.
    pub fn exceeded(&self, used: u64, soft_since: &AtomicU64, now_secs: u64) -> bool {
        let hard = self.hard > 0 && used >= self.hard;
        let mut soft = self.soft > 0 && used >= self.soft;
        if soft {
            let since = soft_since.load(Ordering::Relaxed);
            if since == 0 {
                soft_since.store(now_secs, Ordering::Relaxed);
                soft = false;
            } else if now_secs.saturating_sub(since) <= self.soft_secs {
                soft = false;
            }
        } else {
            soft_since.store(0, Ordering::Relaxed);
        }
        hard || soft
    }
}

impl Inner {
    fn feed(&mut self, bytes: &[u8], limit: ObufLimits) {
        self.offset += bytes.len() as u64;
        self.published.store(self.offset, Ordering::Relaxed);
        if let Some(b) = &mut self.backlog {
            b.append(bytes);
        }
        let now_secs = now_ms() / 1000;
        for r in &self.replicas {
            if r.closed.load(Ordering::Relaxed) {
                continue;
            }
            let mut buf = r.buf.lock();
            buf.extend_from_slice(bytes);
            if limit.exceeded(buf.len() as u64, &r.soft_since, now_secs) {
                // A replica this far behind is dropped and resyncs, as
                // Redis drops it: its buffer would grow without bound.
                buf.clear();
                drop(buf);
                tracing::warn!(
                    "Client {} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    r.describe()
                );
                r.close();
                continue;
            }
            drop(buf);
            r.wake.notify_one();
        }
    }
}

/// The replica side's view of its primary (INFO, ROLE).
#[derive(Clone, Default)]
pub struct LinkInfo {
    /// `master_host`.
    pub host: String,
    /// `master_port`.
    pub port: u16,
    /// `connect`, `connecting`, `sync` or `connected` (ROLE's states).
    pub state: &'static str,
    /// Last byte from the primary (Unix ms, 0 = never).
    pub last_io_ms: u64,
    /// When the link went down (Unix ms, 0 = never up).
    pub down_since_ms: u64,
    /// Full-sync payload bytes read so far.
    pub sync_read: u64,
    /// Full-sync payload size when framed by length (0 with `$EOF:`).
    pub sync_total: u64,
    /// Bytes read from the primary but not applied yet.
    pub unapplied: u64,
}

/// The replication position a snapshot records in its `repl-stream-db`,
/// `repl-id` and `repl-offset` AUX fields (Redis's `rdbSaveInfo`), so a
/// restart from it can continue with a partial resync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaveInfo {
    /// The replication id the offset belongs to.
    pub replid: String,
    /// The offset of the last byte of the stream the snapshot contains.
    pub offset: u64,
    /// The database the stream had selected at that offset.
    pub db: usize,
}

impl SaveInfo {
    /// The AUX fields, in the order Redis 7.0 writes them.
    pub fn aux(&self) -> [(&'static str, Vec<u8>); 3] {
        [
            ("repl-stream-db", self.db.to_string().into_bytes()),
            ("repl-id", self.replid.clone().into_bytes()),
            ("repl-offset", self.offset.to_string().into_bytes()),
        ]
    }

    /// Reads the AUX fields of a loaded snapshot; `None` unless all three
    /// are there and valid, as Redis 7.0 requires (a 40-character id, an
    /// offset and a database that are not -1).
    pub fn from_aux(aux: &[(Vec<u8>, Vec<u8>)]) -> Option<SaveInfo> {
        let get = |k: &[u8]| {
            aux.iter()
                .rev()
                .find(|(a, _)| a == k)
                .and_then(|(_, v)| std::str::from_utf8(v).ok())
        };
        let replid = get(b"repl-id").filter(|id| id.len() == 40)?;
        let offset = get(b"repl-offset")?.parse::<u64>().ok()?;
        let db = get(b"repl-stream-db")?.parse::<usize>().ok()?;
        Some(SaveInfo {
            replid: replid.to_string(),
            offset,
            db,
        })
    }
}

/// Replication state: the write stream, the attached replicas, and the link
/// to a primary when this server is a replica.
pub struct Repl {
    inner: Mutex<Inner>,
    /// Shared with `Inner::published`.
    published: Arc<AtomicU64>,
    /// The stream is fed (a backlog exists): writes take the exclusive gate.
    active: AtomicBool,
    /// This server follows a primary.
    replica: AtomicBool,
    /// Held while a replica applies one command from its primary and feeds
    /// it to its own stream, and while a full sync begins, so a snapshot's
    /// offset always matches its contents. Taken before the gate.
    pub apply: Mutex<()>,
    generation: AtomicU64,
    changed: tokio::sync::Notify,
    link: Mutex<LinkInfo>,
    /// `sync_full` (INFO stats).
    pub sync_full: AtomicU64,
    /// `sync_partial_ok`.
    pub sync_partial_ok: AtomicU64,
    /// `sync_partial_err`.
    pub sync_partial_err: AtomicU64,
    backlog_size: AtomicU64,
    /// `client-output-buffer-limit replica <hard> <soft> <seconds>`.
    obuf: [AtomicU64; 3],
    /// The server itself, for tasks started from command handlers.
    pub(crate) me: std::sync::OnceLock<std::sync::Weak<Server>>,
    /// The last refused replica and when it was logged.
    last_refusal: Mutex<Option<(String, Instant)>>,
    /// Replicas waiting for a diskless transfer to start.
    batches: Mutex<Vec<Batch>>,
    /// The database the primary's stream last selected: a partial resync
    /// continues in it (Redis keeps its cached master client for this).
    master_db: std::sync::atomic::AtomicUsize,
    /// A disk-based full sync wrote `dbfilename` with
    /// `rdb-del-sync-files yes` (Redis's `RDBGeneratedByReplication`).
    sync_rdb: AtomicBool,
}

impl Repl {
    /// A primary with no replicas and no backlog yet.
    pub fn new(backlog_size: u64) -> Repl {
        let published = Arc::new(AtomicU64::new(0));
        Repl {
            published: published.clone(),
            inner: Mutex::new(Inner {
                replid: rampart_replication::new_replid(),
                replid2: "0".repeat(40),
                second_offset: -1,
                offset: 0,
                backlog: None,
                db: None,
                tx: Tx::None,
                replicas: Vec::new(),
                alone_since: None,
                safe_offset: 0,
                safe_db: 0,
                published,
                disk: None,
            }),
            active: AtomicBool::new(false),
            replica: AtomicBool::new(false),
            apply: Mutex::new(()),
            generation: AtomicU64::new(0),
            changed: tokio::sync::Notify::new(),
            link: Mutex::new(LinkInfo::default()),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            // As Redis, a size below the minimum given at startup stands
            // (only CONFIG SET raises it to 16kb).
            backlog_size: AtomicU64::new(backlog_size.max(1)),
            obuf: [
                AtomicU64::new(256 << 20),
                AtomicU64::new(64 << 20),
                AtomicU64::new(60),
            ],
            me: std::sync::OnceLock::new(),
            last_refusal: Mutex::new(None),
            batches: Mutex::new(Vec::new()),
            master_db: std::sync::atomic::AtomicUsize::new(0),
            sync_rdb: AtomicBool::new(false),
        }
    }

    /// Bytes waiting in replicas' output buffers: INFO's
    /// `mem_clients_slaves`, and what `maxmemory` leaves out.
    pub fn replica_output_bytes(&self) -> u64 {
        let replicas = self.inner.lock().replicas.clone();
        replicas
            .iter()
            .map(|r| r.buf.lock().capacity() as u64 + r.in_flight.load(Ordering::Relaxed))
            .sum()
    }

    /// Whether this server follows a primary.
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Acquire)
    }

    /// The primary's address and link state (replica side).
    pub fn link(&self) -> LinkInfo {
        self.link.lock().clone()
    }

    /// `(replid, replid2, master_repl_offset, second_repl_offset)`.
    pub fn ids(&self) -> (String, String, u64, i64) {
        let g = self.inner.lock();
        (
            g.replid.clone(),
            g.replid2.clone(),
            g.offset,
            g.second_offset,
        )
    }

    /// master_repl_offset.
    pub fn offset(&self) -> u64 {
        self.inner.lock().offset
    }

    /// master_repl_offset without taking the lock: exact on the thread
    /// that just fed the stream, at most a moment old elsewhere.
    pub fn offset_relaxed(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// What a snapshot begun now records about replication (Redis's
    /// `rdbPopulateSaveInfo`): a primary's id, offset and selected database
    /// once it has a backlog, a replica's primary's; `None` for a primary
    /// that never had replicas. Called under the exclusive gate, so the
    /// offset matches the snapshot's contents.
    pub fn save_info(&self) -> Option<SaveInfo> {
        let g = self.inner.lock();
        if self.is_replica() {
            return Some(SaveInfo {
                replid: g.replid.clone(),
                offset: g.safe_offset,
                db: g.safe_db,
            });
        }
        g.backlog.as_ref()?;
        Some(SaveInfo {
            replid: g.replid.clone(),
            offset: g.offset,
            // No SELECT since the backlog began: the next write sends one,
            // so any database will do (Redis writes 0 too).
            db: g.db.unwrap_or(0),
        })
    }

    /// At startup, after loading this server's own snapshot: takes up the
    /// replication position it recorded, as Redis 7.0's
    /// `loadDataFromDisk` does. A replica resumes its primary's id and
    /// offset (so it asks for a partial resync); a primary keeps a fresh id
    /// but accepts the recorded one as its previous id up to that offset,
    /// and its backlog starts there with DELs for the keys that expired
    /// while it was down, so a replica continuing from it drops them too.
    pub fn restore(&self, info: &SaveInfo, replica: bool, expired: &[(usize, Vec<u8>)]) {
        let mut g = self.inner.lock();
        g.offset = info.offset;
        g.published.store(info.offset, Ordering::Relaxed);
        g.safe_offset = info.offset;
        g.safe_db = info.db;
        if replica {
            g.replid = info.replid.clone();
            self.master_db.store(info.db, Ordering::Relaxed);
            tracing::info!(
                "Restored the replication ID {} and offset {} from the snapshot: a partial resynchronization will be tried",
                info.replid,
                info.offset
            );
            return;
        }
        g.replid2 = info.replid.clone();
        g.second_offset = info.offset as i64 + 1;
        self.ensure_backlog(&mut g);
        g.alone_since = Some(Instant::now());
        tracing::info!(
            "Replication ID {} valid up to offset {} restored from the snapshot as the previous ID; new replication ID {}",
            g.replid2,
            g.second_offset,
            g.replid
        );
        drop(g);
        for (db, key) in expired {
            self.propagate(*db, &[b"DEL", key]);
        }
    }

    /// Attached replicas.
    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        self.inner.lock().replicas.clone()
    }

    /// `(active, size, first_byte_offset, histlen)` of the backlog.
    pub fn backlog_info(&self) -> (bool, u64, u64, u64) {
        let g = self.inner.lock();
        match &g.backlog {
            Some(b) => (
                true,
                b.size() as u64,
                b.first_byte_offset(),
                b.histlen() as u64,
            ),
            None => (false, self.backlog_size.load(Ordering::Relaxed), 0, 0),
        }
    }

    /// Replicas online whose last ACK is at most `max_lag` seconds old
    /// (min-replicas-to-write).
    pub fn good_replicas(&self, max_lag: u64) -> usize {
        let now = now_ms();
        self.inner
            .lock()
            .replicas
            .iter()
            .filter(|r| {
                r.online.load(Ordering::Relaxed)
                    && now.saturating_sub(r.last_ack_ms.load(Ordering::Relaxed)) <= max_lag * 1000
            })
            .count()
    }

    /// Replicas whose acknowledged offset reached `offset` (WAIT).
    pub fn acked(&self, offset: u64) -> usize {
        self.inner
            .lock()
            .replicas
            .iter()
            .filter(|r| r.online.load(Ordering::Relaxed) && r.ack.load(Ordering::Relaxed) >= offset)
            .count()
    }

    fn ensure_backlog(&self, g: &mut Inner) {
        if g.backlog.is_none() {
            let size = self.backlog_size.load(Ordering::Relaxed) as usize;
            g.backlog = Some(Backlog::new(size, g.offset));
            // A new backlog starts a new history (Redis's
            // createReplicationBacklog after the TTL freed the last one).
            g.db = None;
        }
        self.active.store(true, Ordering::Release);
    }

    fn obuf_limits(&self) -> ObufLimits {
        ObufLimits {
            hard: self.obuf[0].load(Ordering::Relaxed),
            soft: self.obuf[1].load(Ordering::Relaxed),
            soft_secs: self.obuf[2].load(Ordering::Relaxed),
        }
    }

    /// Applies the replica class of `client-output-buffer-limit` (at
    /// startup and after CONFIG SET).
    pub fn set_obuf_limits(&self, l: ObufLimits) {
        self.obuf[0].store(l.hard, Ordering::Relaxed);
        self.obuf[1].store(l.soft, Ordering::Relaxed);
        self.obuf[2].store(l.soft_secs, Ordering::Relaxed);
    }

    /// Sets repl-backlog-size (CONFIG SET), resizing a live backlog:
    /// it keeps its newest bytes, so a smaller one serves fewer partial
    /// resyncs at once and a larger one more as the stream fills it.
    /// Returns the size in effect: at least 16kb, as Redis's
    /// `resizeReplicationBacklog` raises it.
    pub fn set_backlog_size(&self, size: u64) -> u64 {
        let size = size.max(MIN_BACKLOG);
        self.backlog_size.store(size, Ordering::Relaxed);
        if let Some(b) = &mut self.inner.lock().backlog {
            b.resize(size as usize);
        }
        size
    }

    /// EXEC begins: the effects that follow go between MULTI and EXEC.
    pub fn begin_tx(&self) {
        if self.active() {
            self.inner.lock().tx = Tx::Pending;
        }
    }

    /// EXEC ends: closes the MULTI if one was written.
    pub fn end_tx(&self) {
        if !self.active() {
            return;
        }
        let limit = self.obuf_limits();
        let mut g = self.inner.lock();
        if g.tx == Tx::Open {
            g.feed(&encode_command(&["EXEC"]), limit);
        }
        g.tx = Tx::None;
    }

    /// A replica appends what it applied from its primary, byte for byte,
    /// so its own replicas see the primary's offsets (psync2). `db` is the
    /// primary's selected database after it; `in_multi` whether a
    /// transaction is open (its offset is not a safe point to resume from).
    fn feed_applied(&self, bytes: &[u8], db: usize, in_multi: bool) {
        let limit = self.obuf_limits();
        let mut g = self.inner.lock();
        g.feed(bytes, limit);
        if !in_multi {
            g.safe_offset = g.offset;
            g.safe_db = db;
        }
        drop(g);
        self.master_db.store(db, Ordering::Relaxed);
    }

    /// REPLCONF GETACK to every replica (WAIT).
    pub fn request_acks(&self) {
        if !self.active() || self.is_replica() {
            return;
        }
        let limit = self.obuf_limits();
        let mut g = self.inner.lock();
        if !g.replicas.is_empty() {
            g.feed(&encode_command(&["REPLCONF", "GETACK", "*"]), limit);
        }
    }

    /// A new history begins on this server (promotion): the old id stays
    /// valid up to the current offset, so replicas of the old primary can
    /// continue here.
    fn shift_replid(&self, g: &mut Inner, new: String) {
        g.replid2 = std::mem::replace(&mut g.replid, new);
        g.second_offset = g.offset as i64 + 1;
        g.db = None;
    }

    /// Under the apply lock and the exclusive gate: the state after loading
    /// a full sync of `replid` at `offset`. Our own replicas must resync.
    fn reset_to(&self, replid: String, offset: u64) {
        let mut g = self.inner.lock();
        g.replid = replid;
        g.replid2 = "0".repeat(40);
        g.second_offset = -1;
        g.offset = offset;
        g.published.store(offset, Ordering::Relaxed);
        g.safe_offset = offset;
        g.safe_db = 0;
        g.backlog = Some(Backlog::new(
            self.backlog_size.load(Ordering::Relaxed) as usize,
            offset,
        ));
        g.db = None;
        for r in g.replicas.drain(..) {
            r.close();
        }
        self.active.store(true, Ordering::Release);
    }

    fn remove(&self, r: &Arc<Replica>) {
        let mut g = self.inner.lock();
        g.replicas.retain(|x| !Arc::ptr_eq(x, r));
        if g.replicas.is_empty() {
            g.alone_since = Some(Instant::now());
        }
    }

    /// The `hz`-independent replication clock (once a second): PING to
    /// replicas every `repl-ping-replica-period`, and the backlog freed
    /// after `repl-backlog-ttl` seconds without replicas.
    fn cron(&self, srv: &Server, tick: u64) {
        let period = srv.config.int("repl-ping-replica-period").max(1) as u64;
        let limit = self.obuf_limits();
        // No PING while a failover waits for its target (FAILOVER, or a
        // cluster replica's CLUSTER FAILOVER): it would move the offset
        // the target must reach.
        let waiting = srv.failover.active() || srv.pause.cluster.load(Ordering::Acquire);
        if !self.is_replica() && !waiting && tick.is_multiple_of(period) {
            let mut g = self.inner.lock();
            if !g.replicas.is_empty() {
                g.feed(&encode_command(&["PING"]), limit);
            }
        }
        self.remove_sync_rdb(srv);
        let ttl = srv.config.int("repl-backlog-ttl");
        if self.is_replica() || ttl <= 0 {
            return;
        }
        let expired = {
            let g = self.inner.lock();
            g.backlog.is_some()
                && g.replicas.is_empty()
                && g.alone_since
                    .is_some_and(|t| t.elapsed() >= Duration::from_secs(ttl as u64))
        };
        if expired {
            let _gate = srv.keyspace.exclusive();
            let mut g = self.inner.lock();
            if g.replicas.is_empty() {
                g.backlog = None;
                g.replid = rampart_replication::new_replid();
                g.replid2 = "0".repeat(40);
                g.second_offset = -1;
                self.active.store(false, Ordering::Release);
                tracing::info!(
                    "Replication backlog freed after {ttl} seconds without connected replicas."
                );
            }
        }
    }
}

impl Repl {
    /// Redis's `removeRDBUsedToSyncReplicas`: with `rdb-del-sync-files
    /// yes` and no persistence configured (`save ""`), the snapshot file a
    /// disk-based full sync wrote is deleted once no replica waits for or
    /// receives it.
    fn remove_sync_rdb(&self, srv: &Server) {
        if !srv.config.flag("rdb-del-sync-files") {
            self.sync_rdb.store(false, Ordering::Relaxed);
            return;
        }
        if !self.sync_rdb.load(Ordering::Relaxed)
            || !crate::persist::persistence_disabled(srv)
            || srv.persist.running()
        {
            return;
        }
        let busy = {
            let g = self.inner.lock();
            g.disk.is_some() || g.replicas.iter().any(|r| !r.online.load(Ordering::Relaxed))
        } || self.batches.lock().iter().any(|b| !b.members.is_empty());
        if busy {
            return;
        }
        let path = crate::persist::snapshot_path(srv);
        if path.symlink_metadata().is_ok() {
            self.sync_rdb.store(false, Ordering::Relaxed);
            tracing::info!(
                "Removing the RDB file used to feed replicas in a persistence-less instance"
            );
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!("Cannot remove {}: {e}", path.display());
            }
        }
    }
}

thread_local! {
    /// Cleared while a script's command runs after `redis.set_repl` left
    /// replicas out (a script runs on one thread, under the exclusive
    /// gate, so nothing else propagates from this thread meanwhile).
    static TO_REPLICAS: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Runs `f` with this thread's writes propagated to replicas or not, as
/// `redis.set_repl` decides for a script's following commands (Redis's
/// `scriptCall` passing `CMD_CALL_PROPAGATE_REPL` or not).
pub fn with_propagation<T>(to_replicas: bool, f: impl FnOnce() -> T) -> T {
    let before = TO_REPLICAS.with(|c| c.replace(to_replicas));
    let out = f();
    TO_REPLICAS.with(|c| c.set(before));
    out
}

impl Repl {
    /// DEBUG REPLICATE: `argv` into the stream as it is, in whatever
    /// database the stream last selected (Redis feeds it with
    /// `slaveseldb`), so replicas apply what the primary never did.
    pub fn feed_as_is(&self, argv: &[&[u8]]) {
        if !self.active() || self.is_replica() {
            return;
        }
        let limit = self.obuf_limits();
        let mut bytes = Vec::new();
        push_command(&mut bytes, argv);
        self.inner.lock().feed(&bytes, limit);
    }

    /// DEBUG CHANGE-REPL-ID: a new history id and no previous one, so
    /// every replica needs a full sync next time.
    pub fn change_replid(&self) {
        tracing::warn!("Changing replication IDs after receiving DEBUG change-repl-id");
        let mut g = self.inner.lock();
        g.replid = rampart_replication::new_replid();
        g.replid2 = "0".repeat(40);
        g.second_offset = -1;
    }
}

impl Propagate for Repl {
    fn propagate(&self, db: usize, argv: &[&[u8]]) {
        if !self.active() || self.is_replica() {
            // A replica's stream is its primary's, fed by `feed_raw`.
            return;
        }
        if !TO_REPLICAS.with(|c| c.get()) {
            return;
        }
        let limit = self.obuf_limits();
        let mut g = self.inner.lock();
        let mut bytes = Vec::new();
        if g.db != Some(db) {
            push_command(
                &mut bytes,
                &["SELECT".as_bytes(), db.to_string().as_bytes()],
            );
            g.db = Some(db);
        }
        if g.tx == Tx::Pending {
            push_command(&mut bytes, &["MULTI"]);
            g.tx = Tx::Open;
        }
        push_command(&mut bytes, argv);
        g.feed(&bytes, limit);
    }

    fn active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }
}

/// Applies the configuration replication reads from atomics rather than
/// from the config on every write: at startup and after CONFIG SET.
pub fn config_changed(srv: &Server) {
    let v = srv
        .config
        .get("client-output-buffer-limit")
        .unwrap_or_default();
    if let Some(l) = ObufLimits::from_config(&v, "replica") {
        srv.repl.set_obuf_limits(l);
    }
}

/// CONFIG SET repl-backlog-size: resizes the backlog, and a value below
/// 16kb becomes 16kb in CONFIG GET and INFO too, as in Redis.
pub fn backlog_size_set(srv: &Server) {
    let want = srv.config.int("repl-backlog-size").max(0) as u64;
    let size = srv.repl.set_backlog_size(want);
    if size != want {
        let _ = srv
            .config
            .set(&[("repl-backlog-size".to_string(), size.to_string())]);
    }
}

/// Starts the replication clock and, with a `replicaof` directive, the link
/// to the primary. Called once at startup.
pub fn start(srv: &Arc<Server>) {
    let _ = srv.repl.me.set(Arc::downgrade(srv));
    config_changed(srv);
    let s = srv.clone();
    tokio::spawn(async move {
        let mut tick = 0u64;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = s.shutdown.notified() => return,
            }
            if s.cron_paused.load(Ordering::Relaxed) {
                continue;
            }
            tick += 1;
            let s2 = s.clone();
            let _ = tokio::task::spawn_blocking(move || s2.repl.cron(&s2, tick)).await;
        }
    });
    let conf = srv.config.get("replicaof").unwrap_or_default();
    let mut it = conf.split_whitespace();
    if let (Some(host), Some(port)) = (it.next(), it.next()) {
        if let Ok(port) = port.parse::<u16>() {
            let _gate = srv.keyspace.exclusive();
            start_replica(srv, host.to_string(), port);
        }
    }
}

// ---------------------------------------------------------------- primary

/// Why a full sync to this replica is refused, if it is.
fn refusal(srv: &Server, peer: &PeerInfo) -> Option<String> {
    if peer.capa_enc && srv.keys.is_some() {
        return None;
    }
    if srv.config.flag("repl-allow-plaintext-sync") {
        return None;
    }
    // NOMASTERLINK is the one PSYNC error a Redis replica retries on its
    // once-a-second clock; any other makes it retry with SYNC and then
    // reconnect at once, flooding both logs.
    Some(if peer.capa_enc {
        "NOMASTERLINK Rampart refuses a plaintext full sync: this primary has encryption-at-rest no, so it cannot seal the snapshot, and repl-allow-plaintext-sync is no".to_string()
    } else {
        "NOMASTERLINK Rampart refuses a plaintext full sync: this replica did not announce 'capa rampart-enc' (not a Rampart replica), and sending it the dataset unencrypted needs repl-allow-plaintext-sync yes on the primary".to_string()
    })
}

/// Serves a replica on the connection whose PSYNC/SYNC asked for it, until
/// the link ends. `pending` is input already read after that command.
pub(crate) async fn serve_replica<S: ConnIo>(
    srv: Arc<Server>,
    mut stream: S,
    client: &mut Client,
    handoff: Handoff,
    pending: BytesMut,
) {
    *client.handle.flags.lock() = "S".into();
    let addr = client.handle.addr.clone();
    let ip = client.repl.ip.clone().unwrap_or_else(|| {
        addr.parse::<SocketAddr>()
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|_| addr.clone())
    });
    let peer = client.repl.clone();
    let name = format!("{ip}:{}", peer.listening_port);
    if srv.repl.is_replica() && srv.repl.link().state != "connected" {
        // As Redis: a replica without its primary cannot serve a sync.
        let _ = stream
            .write_out(b"-NOMASTERLINK Can't SYNC while not connected with my master\r\n")
            .await;
        return;
    }
    if let Handoff::Psync { replid, offset } = &handoff {
        if let Some(r) = try_continue(&srv, client.handle.id, &ip, &peer, replid, *offset, &name) {
            *r.info.lock() =
                crate::cmd::connection::client_line(&client.handle, None, &srv.commands);
            let reply = if peer.capa_psync2 {
                format!("+CONTINUE {}\r\n", srv.repl.ids().0)
            } else {
                "+CONTINUE\r\n".to_string()
            };
            if stream.write_out(reply.as_bytes()).await.is_ok() {
                r.online.store(true, Ordering::Release);
                run_link(&srv, stream, &r, pending).await;
            }
            srv.repl.remove(&r);
            tracing::info!("Connection with replica {name} lost.");
            return;
        }
    }
    if let Some(why) = refusal(&srv, &peer) {
        // A refused replica retries every second: say why once a minute.
        let say = {
            let mut last = srv.repl.last_refusal.lock();
            let say = last
                .as_ref()
                .is_none_or(|(who, at)| *who != name || at.elapsed() >= Duration::from_secs(60));
            if say {
                *last = Some((name.clone(), Instant::now()));
            }
            say
        };
        if say {
            tracing::warn!("Refusing full sync to replica {name} ({addr}): {why}");
        }
        let _ = stream.write_out(format!("-{why}\r\n").as_bytes()).await;
        return;
    }
    let encrypted = peer.capa_enc && srv.keys.is_some();
    tracing::info!(
        "Replica {name} asks for synchronization; starting a full sync ({}, {})",
        if encrypted {
            "encrypted envelope"
        } else {
            "PLAINTEXT RDB: repl-allow-plaintext-sync yes"
        },
        match target(&srv, &peer, encrypted) {
            Target::Disk => "through the snapshot file",
            Target::Socket { .. } => "diskless",
        }
    );
    let psync = matches!(handoff, Handoff::Psync { .. });
    let r0 = Replica::new(
        client.handle.id,
        ip.clone(),
        peer.listening_port,
        Vec::new(),
    );
    *r0.info.lock() = crate::cmd::connection::client_line(&client.handle, None, &srv.commands);
    match full_sync(&srv, &mut stream, r0, &peer, encrypted, psync, &name).await {
        Ok(r) => {
            run_link(&srv, stream, &r, pending).await;
            srv.repl.remove(&r);
            tracing::info!("Connection with replica {name} lost.");
        }
        Err(e) => tracing::warn!("Full sync to replica {name} failed: {e:#}"),
    }
}

fn try_continue(
    srv: &Server,
    id: u64,
    ip: &str,
    peer: &PeerInfo,
    replid: &str,
    offset: i64,
    name: &str,
) -> Option<Arc<Replica>> {
    let mut g = srv.repl.inner.lock();
    let known = replid == g.replid || (replid == g.replid2 && offset <= g.second_offset);
    let from = u64::try_from(offset).ok();
    let data = match (&g.backlog, from) {
        (Some(b), Some(from)) if known => b.since(from),
        _ => None,
    };
    let Some(data) = data else {
        if replid != "?" {
            srv.repl.sync_partial_err.fetch_add(1, Ordering::Relaxed);
            if known {
                tracing::info!(
                    "Unable to partial resync with replica {name} for lack of backlog (Replica request was: {offset})."
                );
            } else {
                tracing::info!(
                    "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{replid}', my replication IDs are '{}' and '{}')",
                    g.replid,
                    g.replid2
                );
            }
        } else {
            tracing::info!("Full resync requested by replica {name}");
        }
        return None;
    };
    srv.repl.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        "Partial resynchronization request from {name} accepted. Sending {} bytes of backlog starting from offset {offset}.",
        data.len()
    );
    let r = Replica::new(id, ip.to_string(), peer.listening_port, data);
    r.ack.store(offset.max(1) as u64 - 1, Ordering::Relaxed);
    g.replicas.push(r.clone());
    g.alone_since = None;
    Some(r)
}

/// Sends bytes to the socket task from the snapshot threads.
struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buf);
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "replica gone"))
    }
}

/// Writes the captured RDB (with its CRC-64 trailer) into `out`.
fn write_rdb_with_crc(rx: crate::persist::Shards, out: &mut dyn Write) -> std::io::Result<()> {
    let mut crc = Crc64::new();
    crate::persist::write_rdb(rx, &mut |b| {
        crc.update(b);
        out.write_all(b)
    })?;
    out.write_all(&crc.value().to_le_bytes())
}

/// What a diskless transfer sends each replica taking part in it.
enum SyncMsg {
    /// The next bytes of the payload (shared by every replica).
    Data(bytes::Bytes),
    /// The payload is complete, or could not be produced.
    End(Result<(), String>),
}

/// Where a full sync's payload comes from.
enum Payload {
    /// Streamed from the snapshot as it is taken (diskless).
    Stream(tokio::sync::mpsc::Receiver<SyncMsg>),
    /// The snapshot file a BGSAVE writes, once it is complete.
    File(tokio::sync::watch::Receiver<Option<SyncFileResult>>),
}

/// A transfer begun for one replica: where the payload is and what
/// `+FULLRESYNC` announces.
struct Started {
    replid: String,
    offset: u64,
    payload: Payload,
}

/// How a full sync's snapshot reaches replicas, as Redis's
/// `startBgsaveForReplication` chooses: streamed to their sockets when
/// `repl-diskless-sync` is yes and the replica announced `capa eof`, else
/// written to `dbfilename` first (sealed, as every snapshot file) and sent
/// `$<len>`-framed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    /// Diskless: replicas share a transfer only when they take the same
    /// payload, sealed or not.
    Socket { encrypted: bool },
    /// Through the snapshot file, which serves every kind of replica.
    Disk,
}

fn target(srv: &Server, peer: &PeerInfo, encrypted: bool) -> Target {
    if srv.config.flag("repl-diskless-sync") && peer.capa_eof {
        Target::Socket { encrypted }
    } else {
        Target::Disk
    }
}

/// Replicas waiting for the same transfer to start (Redis's
/// `WAIT_BGSAVE_START` replicas): one snapshot serves all of them.
pub(crate) struct Batch {
    key: Target,
    members: Vec<(Arc<Replica>, tokio::sync::oneshot::Sender<Started>)>,
}

/// Attaches `r` to the BGSAVE for a disk-based sync that runs, as Redis's
/// `syncCommand` does when a replica already waits for it: `r` starts
/// with a copy of that replica's output buffer (the stream since the
/// snapshot) and gets the same file.
fn attach(g: &mut Inner, r: &Arc<Replica>) -> Option<Started> {
    let Inner {
        disk,
        replicas,
        alone_since,
        ..
    } = g;
    let run = disk.as_mut()?;
    let src = run
        .members
        .iter()
        .find(|m| !m.closed.load(Ordering::Acquire) && replicas.iter().any(|x| Arc::ptr_eq(x, m)))?
        .clone();
    let copy = src.buf.lock().clone();
    *r.buf.lock() = copy;
    run.members.push(r.clone());
    replicas.push(r.clone());
    *alone_since = None;
    Some(Started {
        replid: run.replid.clone(),
        offset: run.offset,
        payload: Payload::File(run.done.clone()),
    })
}

async fn full_sync<S: ConnIo>(
    srv: &Arc<Server>,
    stream: &mut S,
    r: Arc<Replica>,
    peer: &PeerInfo,
    encrypted: bool,
    psync: bool,
    name: &str,
) -> anyhow::Result<Arc<Replica>> {
    let key = target(srv, peer, encrypted);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let lead = {
        let mut g = srv.repl.inner.lock();
        if let Some(started) = attach(&mut g, &r) {
            drop(g);
            srv.repl.sync_full.fetch_add(1, Ordering::Relaxed);
            tracing::info!("Waiting for end of BGSAVE for SYNC");
            let _ = tx.send(started);
            false
        } else {
            if key == Target::Disk && (g.disk.is_some() || srv.persist.running()) {
                tracing::info!(
                    "Can't attach the replica to the current BGSAVE. Waiting for next BGSAVE for SYNC"
                );
            }
            let mut batches = srv.repl.batches.lock();
            match batches.iter_mut().find(|b| b.key == key) {
                Some(b) => {
                    b.members.push((r.clone(), tx));
                    false
                }
                None => {
                    batches.push(Batch {
                        key,
                        members: vec![(r.clone(), tx)],
                    });
                    true
                }
            }
        }
    };
    if lead {
        // Its own task: the transfer goes on for the others even if this
        // replica's link fails.
        tokio::spawn(run_batch(srv.clone(), key));
    }
    // A newline a second while the transfer has not begun (Redis's
    // replicationCron does the same for replicas in WAIT_BGSAVE_START):
    // the replica's read timeout does not fire during a long
    // repl-diskless-sync-delay, and a replica that went away is noticed.
    let mut rx = rx;
    let started = loop {
        tokio::select! {
            r = &mut rx => break r,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if let Err(e) = keepalive(stream).await {
                    r.close();
                    let mut batches = srv.repl.batches.lock();
                    for b in batches.iter_mut() {
                        b.members.retain(|(m, _)| !Arc::ptr_eq(m, &r));
                    }
                    bail!("the replica went away while waiting for the transfer: {e}");
                }
            }
        }
    };
    let Ok(started) = started else {
        bail!("the full sync could not start (see the log)");
    };
    let Started {
        replid,
        offset,
        payload,
    } = started;
    let sync_start = Instant::now();
    let result = async {
        // SYNC (the old protocol) gets the payload with no preamble.
        if psync {
            stream
                .write_all(format!("+FULLRESYNC {replid} {offset}\r\n").as_bytes())
                .await?;
            stream.flush().await?;
        }
        let sent = match payload {
            Payload::Stream(chunks) => send_stream(stream, chunks, &r).await?,
            Payload::File(done) => send_file(srv, stream, done, &r, encrypted).await?,
        };
        // A TLS session holds its last records until flushed.
        stream.flush().await?;
        tracing::info!(
            "Synchronization with replica {name} succeeded ({sent} bytes{})",
            if encrypted {
                ", encrypted"
            } else {
                ", plaintext"
            }
        );
        anyhow::Ok(())
    }
    .await;
    r.sending.store(false, Ordering::Relaxed);
    if let Err(e) = result {
        r.close();
        srv.repl.remove(&r);
        return Err(e);
    }
    let m = crate::metrics::instruments();
    let label = crate::metrics::encryption(encrypted);
    crate::metrics::observe(&m.full_sync, label, sync_start.elapsed());
    m.full_syncs.with_label_values(&[label]).inc();
    Ok(r)
}

/// The newline Redis's replicationCron sends replicas in the
/// pre-synchronization stage, once a second.
async fn keepalive<S: ConnIo>(stream: &mut S) -> std::io::Result<()> {
    stream.write_all(b"\n").await?;
    stream.flush().await
}

/// A diskless transfer to one replica: `$EOF:`-framed, chunks as the
/// snapshot produces them. Returns the payload's length.
async fn send_stream<S: ConnIo>(
    stream: &mut S,
    mut chunks: tokio::sync::mpsc::Receiver<SyncMsg>,
    r: &Replica,
) -> anyhow::Result<u64> {
    r.sending.store(true, Ordering::Relaxed);
    let mut sent = 0u64;
    let framing = Framing::new_eof();
    stream.write_all(&framing.header()).await?;
    loop {
        match chunks.recv().await {
            Some(SyncMsg::Data(c)) => {
                stream.write_all(&c).await?;
                stream.flush().await?;
                sent += c.len() as u64;
            }
            Some(SyncMsg::End(Ok(()))) => break,
            Some(SyncMsg::End(Err(e))) => bail!("{e}"),
            None => bail!("the snapshot for the full sync stopped"),
        }
    }
    stream.write_all(framing.trailer()).await?;
    Ok(sent)
}

/// A disk-based transfer to one replica: newlines while the BGSAVE
/// writes the file (Redis's replicationCron keeps replicas waiting for a
/// disk BGSAVE alive too), then the file `$<len>`-framed. A replica that
/// takes the envelope gets the sealed file as it is on disk; one that
/// takes plain RDB (allowed by `repl-allow-plaintext-sync`) gets it
/// decrypted on the way, never as a plaintext file. Goes online at once,
/// as Redis's sendBulkToSlave puts it. Returns the payload's length.
async fn send_file<S: ConnIo>(
    srv: &Arc<Server>,
    stream: &mut S,
    mut done: tokio::sync::watch::Receiver<Option<SyncFileResult>>,
    r: &Replica,
    encrypted: bool,
) -> anyhow::Result<u64> {
    let file = loop {
        let now = done.borrow_and_update().clone();
        if let Some(file) = now {
            break file;
        }
        if r.closed.load(Ordering::Acquire) {
            bail!("the replica was dropped while the snapshot was written");
        }
        tokio::select! {
            changed = done.changed() => {
                if changed.is_err() {
                    tracing::warn!("SYNC failed. BGSAVE child returned an error");
                    bail!("the BGSAVE for SYNC did not run");
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(1)) => keepalive(stream).await?,
        }
    };
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("SYNC failed. BGSAVE child returned an error");
            bail!("{e}");
        }
    };
    let sealed = {
        use std::os::unix::fs::FileExt;
        let mut head = [0u8; 8];
        let n = file.file.read_at(&mut head, 0)?;
        n == head.len() && head == rampart_kms::envelope::MAGIC[..]
    };
    let (len, mut chunks) = file_chunks(srv, file, sealed && !encrypted).await?;
    r.sending.store(true, Ordering::Relaxed);
    stream.write_all(&Framing::Len(len).header()).await?;
    let mut sent = 0u64;
    while let Some(c) = chunks.recv().await {
        let c = c.map_err(|e| anyhow::anyhow!("reading the snapshot file: {e}"))?;
        stream.write_all(&c).await?;
        sent += c.len() as u64;
    }
    if sent != len {
        bail!("the snapshot file gave {sent} of its {len} bytes");
    }
    r.online.store(true, Ordering::Release);
    Ok(sent)
}

/// The bytes a disk-based transfer sends, read from the file on a
/// blocking thread: the file itself, or with `decrypt` the RDB inside the
/// envelope (its length taken from the chunk framing first, since
/// `$<len>` comes before the data).
async fn file_chunks(
    srv: &Arc<Server>,
    file: Arc<SyncFile>,
    decrypt: bool,
) -> anyhow::Result<(u64, tokio::sync::mpsc::Receiver<Result<Vec<u8>, String>>)> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (len_tx, len_rx) = tokio::sync::oneshot::channel();
    let s = srv.clone();
    tokio::task::spawn_blocking(move || {
        let open = || -> anyhow::Result<(u64, Box<dyn Read + Send>)> {
            let mut cur = FileCursor {
                file: file.clone(),
                pos: 0,
            };
            if !decrypt {
                return Ok((file.len, Box::new(cur)));
            }
            let report = rampart_kms::envelope::scan(&mut cur)?;
            if let Some(why) = report.problem {
                bail!("the snapshot file is damaged: {why}");
            }
            if !report.complete || report.trailing != 0 {
                bail!("the snapshot file is incomplete");
            }
            cur.pos = 0;
            let Some(provider) = &s.keys else {
                bail!("no key to open the snapshot file");
            };
            let reader = crate::persist::block_on(
                s.persist.runtime.get(),
                EnvelopeReader::open(cur, provider),
            )?
            .map_err(|e| anyhow::anyhow!("cannot open the snapshot file: {e}"))?
            .require_eof(true);
            Ok((report.plaintext_len, Box::new(reader)))
        };
        let (len, mut reader) = match open() {
            Ok(o) => o,
            Err(e) => {
                let _ = len_tx.send(Err(format!("{e:#}")));
                return;
            }
        };
        if len_tx.send(Ok(len)).is_err() {
            return;
        }
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let next = match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => Ok(buf[..n].to_vec()),
                Err(e) => Err(e.to_string()),
            };
            let failed = next.is_err();
            if tx.blocking_send(next).is_err() || failed {
                return;
            }
        }
    });
    let len = len_rx
        .await
        .map_err(|_| anyhow::anyhow!("the snapshot file reader stopped"))?
        .map_err(|e| anyhow::anyhow!("SYNC failed. Can't open/stat DB after BGSAVE: {e}"))?;
    Ok((len, rx))
}

/// What [`run_batch`] began: a diskless capture, or a BGSAVE for the
/// disk-based sync.
enum Begun {
    Socket(rampart_keyspace::Snapshot, crate::persist::Shards),
    Disk(tokio::sync::watch::Receiver<Option<SyncFileResult>>),
}

type Members = Vec<(Arc<Replica>, tokio::sync::oneshot::Sender<Started>)>;

/// Runs one transfer. A diskless one waits `repl-diskless-sync-delay`
/// seconds for more replicas to join (less once
/// `repl-diskless-sync-max-replicas` are waiting); a disk-based one starts
/// as soon as no other background save runs, as in Redis. Then one
/// point-in-time snapshot serves every replica of the batch.
async fn run_batch(srv: Arc<Server>, key: Target) {
    if let Target::Socket { .. } = key {
        let since = Instant::now();
        loop {
            let delay = srv.config.int("repl-diskless-sync-delay").max(0) as u64;
            let max = srv.config.int("repl-diskless-sync-max-replicas").max(0) as usize;
            let waiting = srv
                .repl
                .batches
                .lock()
                .iter()
                .find(|b| b.key == key)
                .map_or(0, |b| b.members.len());
            if since.elapsed() >= Duration::from_secs(delay) || (max > 0 && waiting >= max) {
                break;
            }
            if since.elapsed() < Duration::from_millis(100) {
                tracing::info!("Delay next BGSAVE for diskless SYNC");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                _ = srv.shutdown.notified() => return,
            }
        }
    }
    let encrypted = key == Target::Socket { encrypted: true };
    let protection = if encrypted {
        let s = srv.clone();
        match tokio::task::spawn_blocking(move || crate::persist::sync_protection(&s)).await {
            Ok(Ok(p)) => Some(p),
            Ok(Err(e)) => {
                tracing::warn!("Full sync: {e:#}");
                return;
            }
            Err(e) => {
                tracing::warn!("Full sync: {e}");
                return;
            }
        }
    } else {
        None
    };
    // Begin the snapshot and register the replicas at the same instant
    // (apply lock, then the exclusive gate): every write after it reaches
    // their buffers, every write before it is in the snapshot. The
    // replicas are those waiting at that instant.
    let s = srv.clone();
    let begun = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        loop {
            {
                let _apply = s.repl.apply.lock();
                let _gate = s.keyspace.exclusive();
                let mut g = s.repl.inner.lock();
                // One BGSAVE at a time writes the file.
                let free = key != Target::Disk || (!s.persist.running() && g.disk.is_none());
                let mut batches = s.repl.batches.lock();
                let Some(i) = batches.iter().position(|b| b.key == key) else {
                    return Ok(None);
                };
                if batches[i].members.is_empty() {
                    // Every replica of the batch went away while it waited.
                    batches.swap_remove(i);
                    return Ok(None);
                }
                s.repl.ensure_backlog(&mut g);
                // The replica stores this stream as its own snapshot: with
                // the position in it, a restart resumes from there. The
                // stream selects a database before its next effect.
                let info = SaveInfo {
                    replid: g.replid.clone(),
                    offset: g.offset,
                    db: 0,
                };
                if let Some((snap, rx)) = free
                    .then(|| crate::persist::begin_capture(&s, Some(info)))
                    .flatten()
                {
                    let members: Members = batches.swap_remove(i).members;
                    drop(batches);
                    // The new replicas start in database 0: the next
                    // effect must say which database it is for.
                    g.db = None;
                    let replicas: Vec<Arc<Replica>> =
                        members.iter().map(|(r, _)| r.clone()).collect();
                    g.replicas.extend(replicas.iter().cloned());
                    g.alone_since = None;
                    let (replid, offset) = (g.replid.clone(), g.offset);
                    if key != Target::Disk {
                        return Ok(Some((members, replid, offset, Begun::Socket(snap, rx))));
                    }
                    tracing::info!("Starting BGSAVE for SYNC with target: disk");
                    if s.config.flag("rdb-del-sync-files") {
                        s.repl.sync_rdb.store(true, Ordering::Relaxed);
                    }
                    let (done_tx, done_rx) = tokio::sync::watch::channel(None);
                    g.disk = Some(DiskRun {
                        replid: replid.clone(),
                        offset,
                        members: replicas,
                        done: done_rx.clone(),
                    });
                    let s2 = s.clone();
                    let done = Box::new(move |saved: crate::persist::SyncSaved| {
                        let file = saved.and_then(|(_, file)| {
                            let len = file
                                .metadata()
                                .map_err(|e| {
                                    format!("SYNC failed. Can't open/stat DB after BGSAVE: {e}")
                                })?
                                .len();
                            Ok(Arc::new(SyncFile { file, len }))
                        });
                        // No replica attaches once the file is complete:
                        // the first to receive it goes online.
                        s2.repl.inner.lock().disk = None;
                        let _ = done_tx.send(Some(file));
                    });
                    if let Err(e) = crate::persist::bgsave_for_sync(&s, snap, rx, done) {
                        // Its replicas hear that it never ran.
                        g.disk = None;
                        tracing::warn!("BGSAVE for replication failed: {e}");
                    }
                    return Ok(Some((members, replid, offset, Begun::Disk(done_rx))));
                }
            }
            // One snapshot at a time: wait for a BGSAVE or another sync.
            if started.elapsed() > Duration::from_secs(3600) {
                bail!("timed out waiting for a running snapshot to end");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await;
    let (members, replid, offset, begun) = match begun {
        Ok(Ok(Some(b))) => b,
        Ok(Ok(None)) => return,
        Ok(Err(e)) => return tracing::warn!("Full sync: {e:#}"),
        Err(e) => return tracing::warn!("Full sync: {e}"),
    };
    srv.repl
        .sync_full
        .fetch_add(members.len() as u64, Ordering::Relaxed);
    let (snap, rx) = match begun {
        Begun::Disk(done) => {
            for (r, tx) in members {
                let started = Started {
                    replid: replid.clone(),
                    offset,
                    payload: Payload::File(done.clone()),
                };
                if tx.send(started).is_err() {
                    r.close();
                    srv.repl.remove(&r);
                }
            }
            return;
        }
        Begun::Socket(snap, rx) => (snap, rx),
    };
    tracing::info!("Starting BGSAVE for SYNC with target: replicas sockets");
    tracing::info!(
        "Starting a diskless full sync for {} replica(s) at offset {offset}",
        members.len()
    );
    let mut outs = Vec::new();
    for (r, tx) in members {
        let (ctx, crx) = tokio::sync::mpsc::channel(16);
        let started = Started {
            replid: replid.clone(),
            offset,
            payload: Payload::Stream(crx),
        };
        if tx.send(started).is_err() {
            r.close();
            srv.repl.remove(&r);
            continue;
        }
        outs.push(Some(ctx));
    }
    let (tx, mut chunks) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let ks = srv.keyspace.clone();
    let producer = tokio::task::spawn_blocking(move || {
        crate::persist::run_capture(&ks, snap, rx, move |rx| {
            let mut w = ChanWriter {
                tx,
                buf: Vec::new(),
            };
            match protection {
                Some(Protection::Encrypted { params, key, slot }) => {
                    let mut e = EnvelopeWriter::new(&mut w, &params, key, vec![slot])?;
                    write_rdb_with_crc(rx, &mut e)?;
                    e.finish()?;
                }
                _ => write_rdb_with_crc(rx, &mut w)?,
            }
            w.flush()?;
            Ok(())
        })
    });
    // As Redis's diskless transfer, the slowest replica sets the pace; one
    // that fails drops out and the others go on.
    while let Some(c) = chunks.recv().await {
        let c = bytes::Bytes::from(c);
        for out in outs.iter_mut() {
            if let Some(o) = out {
                if o.send(SyncMsg::Data(c.clone())).await.is_err() {
                    *out = None;
                }
            }
        }
    }
    let end = match producer.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(e) => Err(e.to_string()),
    };
    for o in outs.into_iter().flatten() {
        let _ = o.send(SyncMsg::End(end.clone())).await;
    }
}

/// Streams the replica's buffer to it and reads its REPLCONF ACKs. A
/// diskless full sync's replica goes online at its first ACK, as in Redis:
/// until then it cannot tell the stream from the payload's end.
async fn run_link<S: ConnIo>(srv: &Server, stream: S, r: &Arc<Replica>, mut input: BytesMut) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let reader = async {
        let mut parser = Parser::default();
        loop {
            let limits = Limits {
                max_bulk: 1 << 20,
                unauthenticated: false,
            };
            loop {
                match parser.next(&mut input, limits) {
                    Ok(Some(args)) => {
                        if args.len() >= 3
                            && args[0].eq_ignore_ascii_case(b"replconf")
                            && args[1].eq_ignore_ascii_case(b"ack")
                        {
                            if let Some(off) = std::str::from_utf8(&args[2])
                                .ok()
                                .and_then(|s| s.parse::<u64>().ok())
                            {
                                r.ack.store(off, Ordering::Relaxed);
                            }
                            r.last_ack_ms.store(now_ms(), Ordering::Relaxed);
                            if !r.online.swap(true, Ordering::AcqRel) {
                                r.wake.notify_one();
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            input.reserve(4096);
            match rd.read_buf(&mut input).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    srv.stats.net_in.add(n as u64);
                }
            }
        }
    };
    let writer = async {
        loop {
            if r.closed.load(Ordering::Acquire) || srv.shutting_down.load(Ordering::Relaxed) {
                return;
            }
            let data = if r.online.load(Ordering::Acquire) {
                std::mem::take(&mut *r.buf.lock())
            } else {
                Vec::new()
            };
            if data.is_empty() {
                r.wake.notified().await;
                continue;
            }
            r.in_flight.store(data.capacity() as u64, Ordering::Relaxed);
            let sent = match wr.write_all(&data).await {
                Ok(()) => wr.flush().await,
                Err(e) => Err(e),
            };
            let len = data.len() as u64;
            drop(data);
            r.in_flight.store(0, Ordering::Relaxed);
            let Ok(()) = sent else {
                return;
            };
            srv.stats.net_out.add(len);
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
        _ = srv.shutdown.notified() => {}
    }
}

// ---------------------------------------------------------------- replica

/// Makes this server a replica of `host:port` (REPLICAOF, `replicaof`):
/// the old link, if any, ends and a new one starts. Writes from ordinary
/// clients are refused from now on (replica-read-only). The caller holds
/// the exclusive gate.
pub fn start_replica(srv: &Server, host: String, port: u16) {
    let gen = srv.repl.generation.fetch_add(1, Ordering::AcqRel) + 1;
    srv.repl.changed.notify_waiters();
    {
        let mut g = srv.repl.inner.lock();
        srv.repl.ensure_backlog(&mut g);
        srv.repl.replica.store(true, Ordering::Release);
    }
    *srv.repl.link.lock() = LinkInfo {
        host: host.clone(),
        port,
        state: "connect",
        ..LinkInfo::default()
    };
    tracing::info!("Connecting to MASTER {host}:{port}");
    let Some(s) = srv.arc() else {
        return;
    };
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move { replica_loop(s, gen).await });
    }
}

/// REPLICAOF NO ONE (or a failover): stops following the primary and
/// starts a new history whose previous id stays valid up to the current
/// offset; `source` says who asked, for the log. The caller holds the
/// exclusive gate.
pub fn promote(srv: &Server, source: &str) {
    srv.repl.generation.fetch_add(1, Ordering::AcqRel);
    srv.repl.changed.notify_waiters();
    let mut g = srv.repl.inner.lock();
    let new = rampart_replication::new_replid();
    srv.repl.shift_replid(&mut g, new);
    srv.repl.ensure_backlog(&mut g);
    srv.repl.replica.store(false, Ordering::Release);
    *srv.repl.link.lock() = LinkInfo::default();
    tracing::info!(
        "MASTER MODE enabled ({source}); new replication ID {}, previous {} valid up to offset {}",
        g.replid,
        g.replid2,
        g.second_offset
    );
}

async fn replica_loop(srv: Arc<Server>, gen: u64) {
    let mut backoff = Duration::from_secs(1);
    while srv.repl.generation.load(Ordering::Acquire) == gen
        && !srv.shutting_down.load(Ordering::Relaxed)
    {
        let link = tokio::select! {
            r = link_once(&srv, gen) => r,
            _ = srv.repl.changed.notified() => Ok(false),
            _ = srv.shutdown.notified() => return,
        };
        {
            let mut l = srv.repl.link.lock();
            if srv.repl.generation.load(Ordering::Acquire) == gen {
                if l.state == "connected" || l.down_since_ms == 0 {
                    l.down_since_ms = now_ms();
                }
                l.state = "connect";
            }
        }
        match link {
            Ok(true) => backoff = Duration::from_secs(1),
            Ok(false) => {}
            Err(e) => tracing::warn!("MASTER <-> REPLICA sync: {e:#}"),
        }
        if srv.repl.generation.load(Ordering::Acquire) != gen {
            return;
        }
        tracing::info!("Reconnecting to MASTER in {} ms", backoff.as_millis());
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = srv.repl.changed.notified() => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// The link's byte stream: TCP, or TLS over it with `tls-replication`.
trait LinkStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> LinkStream for T {}

/// The connection to the primary, with a buffer of what it sent.
struct Link<'a> {
    srv: &'a Server,
    stream: Box<dyn LinkStream>,
    buf: BytesMut,
    timeout: Duration,
    /// The primary's address and ours, for CLIENT LIST.
    peer: String,
    local: String,
}

impl Link<'_> {
    async fn read_more(&mut self) -> anyhow::Result<usize> {
        self.buf.reserve(64 * 1024);
        let n = tokio::time::timeout(self.timeout, self.stream.read_buf(&mut self.buf))
            .await
            .map_err(|_| anyhow::anyhow!("Timeout connecting to the MASTER..."))??;
        if n == 0 {
            bail!("the MASTER closed the connection");
        }
        self.srv.repl.link.lock().last_io_ms = now_ms();
        self.srv.stats.net_in.add(n as u64);
        Ok(n)
    }

    /// One reply line without its CRLF; empty lines (the primary's
    /// keepalive newlines while it prepares a snapshot) are skipped.
    async fn line(&mut self) -> anyhow::Result<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(i + 1);
                let s = String::from_utf8_lossy(&line[..i])
                    .trim_end_matches('\r')
                    .to_string();
                if s.is_empty() {
                    continue;
                }
                return Ok(s);
            }
            if self.buf.len() > 64 * 1024 {
                bail!("the MASTER sent an over-long reply line");
            }
            self.read_more().await?;
        }
    }

    async fn send<A: AsRef<[u8]>>(&mut self, argv: &[A]) -> anyhow::Result<()> {
        self.stream.write_all(&encode_command(argv)).await?;
        self.stream.flush().await?;
        Ok(())
    }

    async fn command<A: AsRef<[u8]>>(&mut self, argv: &[A]) -> anyhow::Result<String> {
        self.send(argv).await?;
        self.line().await
    }
}

/// One connection to the primary, from handshake to loss. `Ok(true)` when
/// the link was up before it ended.
async fn link_once(srv: &Arc<Server>, gen: u64) -> anyhow::Result<bool> {
    let info = srv.repl.link();
    let timeout = Duration::from_secs(srv.config.int("repl-timeout").max(1) as u64);
    srv.repl.link.lock().state = "connecting";
    let stream = tokio::time::timeout(timeout, TcpStream::connect((info.host.as_str(), info.port)))
        .await
        .map_err(|_| anyhow::anyhow!("Timeout connecting to the MASTER..."))?
        .with_context(|| {
            format!(
                "Error condition on socket for SYNC: connecting to {}:{}",
                info.host, info.port
            )
        })?;
    let _ = stream.set_nodelay(true);
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let local = stream
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let stream: Box<dyn LinkStream> = if srv.config.flag("tls-replication") {
        let tls = tokio::time::timeout(timeout, crate::tls::connect(srv, stream, &info.host))
            .await
            .map_err(|_| anyhow::anyhow!("Timeout connecting to the MASTER..."))?
            .with_context(|| {
                format!(
                    "Error condition on socket for SYNC: TLS handshake with {}:{}",
                    info.host, info.port
                )
            })?;
        Box::new(tls)
    } else {
        Box::new(stream)
    };
    tracing::info!("MASTER <-> REPLICA sync started");
    let mut link = Link {
        srv,
        stream,
        buf: BytesMut::with_capacity(64 * 1024),
        timeout,
        peer,
        local,
    };
    let pong = link.command(&["PING"]).await?;
    if pong.starts_with('-')
        && !pong.starts_with("-NOAUTH")
        && !pong.starts_with("-NOPERM")
        && !pong.starts_with("-ERR operation not permitted")
    {
        bail!("Error reply to PING from master: '{pong}'");
    }
    tracing::info!("Master replied to PING, replication can continue...");
    let pass = srv.config.get("masterauth").unwrap_or_default();
    if !pass.is_empty() {
        let user = srv.config.get("masteruser").unwrap_or_default();
        let reply = if user.is_empty() {
            link.command(&["AUTH", pass.as_str()]).await?
        } else {
            link.command(&["AUTH", user.as_str(), pass.as_str()])
                .await?
        };
        if reply.starts_with('-') {
            bail!("Unable to AUTH to MASTER: {reply}");
        }
    }
    // As Redis: with tls-replication the replica announces its TLS port.
    let port = if srv.config.flag("tls-replication") && srv.config.int("tls-port") != 0 {
        srv.config.int("tls-port").to_string()
    } else {
        srv.port.load(Ordering::Relaxed).to_string()
    };
    let announce = srv.config.int("replica-announce-port");
    let port = if announce > 0 {
        announce.to_string()
    } else {
        port
    };
    let reply = link
        .command(&["REPLCONF", "listening-port", port.as_str()])
        .await?;
    if reply.starts_with('-') {
        tracing::info!(
            "(Non critical) Master does not understand REPLCONF listening-port: {reply}"
        );
    }
    let ip = srv.config.get("replica-announce-ip").unwrap_or_default();
    if !ip.is_empty() {
        let reply = link
            .command(&["REPLCONF", "ip-address", ip.as_str()])
            .await?;
        if reply.starts_with('-') {
            tracing::info!(
                "(Non critical) Master does not understand REPLCONF ip-address: {reply}"
            );
        }
    }
    let reply = link
        .command(&[
            "REPLCONF",
            "capa",
            "eof",
            "capa",
            "psync2",
            "capa",
            "rampart-enc",
        ])
        .await?;
    if reply.starts_with('-') {
        tracing::info!("(Non critical) Master does not understand REPLCONF capa: {reply}");
    }
    let (replid, _, offset, _) = srv.repl.ids();
    let want = (offset + 1).to_string();
    tracing::info!("Trying a partial resynchronization (request {replid}:{want}).");
    // A primary handing over (FAILOVER) asks its target to take over the
    // history it follows.
    let failover = srv.failover.in_progress();
    let mut psync = vec!["PSYNC", replid.as_str(), want.as_str()];
    if failover {
        psync.push("FAILOVER");
    }
    let reply = match link.command(&psync).await {
        Ok(r) => r,
        Err(e) => {
            if failover {
                let _gate = srv.keyspace.exclusive();
                crate::failover::abort(srv, "Write error to failover target");
            }
            return Err(e);
        }
    };
    let parsed = PsyncReply::parse(&reply);
    if failover {
        let _gate = srv.keyspace.exclusive();
        match parsed {
            Some(PsyncReply::Continue { .. } | PsyncReply::FullResync { .. }) => {
                crate::failover::clear(srv)
            }
            _ => crate::failover::abort(srv, "Failover target rejected psync request"),
        }
    }
    match parsed {
        Some(PsyncReply::Continue { replid: new }) => {
            tracing::info!("Successful partial resynchronization with master.");
            if let Some(new) = new {
                let mut g = srv.repl.inner.lock();
                if new != g.replid {
                    srv.repl.shift_replid(&mut g, new);
                    tracing::warn!("Master replication ID changed to {}", g.replid);
                    // Our own replicas must hear of the new id: they
                    // reconnect and continue from us with +CONTINUE <id>.
                    for r in g.replicas.drain(..) {
                        r.close();
                    }
                }
            }
            tracing::info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
            crate::supervise::tell_systemd("STATUS=MASTER <-> REPLICA sync: Partial Resynchronization accepted. Ready to accept connections in read-write mode.\n");
        }
        Some(PsyncReply::FullResync { replid, offset }) => {
            tracing::info!("Full resync from master: {replid}:{offset}");
            let start = Instant::now();
            let received = receive_snapshot(srv, &mut link, replid, offset, gen).await;
            crate::metrics::observe(
                &crate::metrics::instruments().replica_sync,
                crate::metrics::result(received.is_ok()),
                start.elapsed(),
            );
            received?;
        }
        Some(PsyncReply::Error(e)) => {
            if e.starts_with("NOMASTERLINK") || e.starts_with("LOADING") {
                bail!("Master is currently unable to PSYNC but should be in the future: -{e}");
            }
            bail!("Unexpected reply to PSYNC from master: -{e}");
        }
        None => bail!("Unexpected reply to PSYNC from master: {reply}"),
    }
    if srv.repl.generation.load(Ordering::Acquire) != gen {
        return Ok(false);
    }
    stream_commands(srv, link, gen).await
}

/// A `Read` over payload chunks coming from the socket task.
struct ChanReader {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for ChanReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.blocking_recv() {
                Some(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads the full-sync payload from the primary, storing it as this
/// server's snapshot through its own protection, then loads it.
async fn receive_snapshot(
    srv: &Arc<Server>,
    link: &mut Link<'_>,
    replid: String,
    offset: u64,
    gen: u64,
) -> anyhow::Result<()> {
    srv.repl.link.lock().state = "sync";
    let header = link.line().await?;
    let framing = Framing::parse(header.as_bytes()).ok_or_else(|| {
        anyhow::anyhow!(
            "Bad protocol from MASTER, the first byte is not '$' (we received '{header}'), are you sure the host and port are right?"
        )
    })?;
    {
        let mut l = srv.repl.link.lock();
        l.sync_read = 0;
        l.sync_total = match framing {
            Framing::Len(n) => n,
            Framing::Eof(_) => 0,
        };
    }
    tracing::info!(
        "MASTER <-> REPLICA sync: receiving {} from master to disk",
        match framing {
            Framing::Len(n) => format!("{n} bytes"),
            Framing::Eof(_) => "streamed RDB".into(),
        }
    );
    // Bounded, and awaited on this side: a slow disk on the replica holds
    // back the socket reads, never a runtime worker.
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let s = srv.clone();
    let store = tokio::task::spawn_blocking(move || store_and_load(&s, rx, replid, offset, gen));
    let mut d = Deframer::new(framing);
    let mut fed = Ok(());
    while !d.done() {
        if link.buf.is_empty() {
            if let Err(e) = link.read_more().await {
                fed = Err(e);
                break;
            }
        }
        let mut out = Vec::new();
        let n = d.feed(&link.buf, &mut out);
        link.buf.advance(n);
        srv.repl.link.lock().sync_read += out.len() as u64;
        if !out.is_empty() && tx.send(out).await.is_err() {
            break;
        }
    }
    drop(tx);
    let stored = store.await?;
    fed?;
    stored?;
    // The primary waits for this first ACK before it streams (diskless).
    let off = srv.repl.offset().to_string();
    link.send(&["REPLCONF", "ACK", off.as_str()]).await?;
    Ok(())
}

fn store_and_load(
    srv: &Server,
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    replid: String,
    offset: u64,
    gen: u64,
) -> anyhow::Result<()> {
    let mut raw = ChanReader {
        rx,
        cur: Vec::new(),
        pos: 0,
    };
    let mut head = [0u8; 8];
    raw.read_exact(&mut head)
        .context("the full sync ended before its first bytes")?;
    let chained = Read::chain(std::io::Cursor::new(head.to_vec()), raw);
    let mut reader: Box<dyn Read> = if head == rampart_kms::envelope::MAGIC[..] {
        let Some(provider) = &srv.keys else {
            bail!("the primary sent an encrypted full sync, but this replica has encryption-at-rest no: it has no key to decrypt it");
        };
        let r = crate::persist::block_on(
            srv.persist.runtime.get(),
            EnvelopeReader::open(chained, provider),
        )?
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot decrypt the full sync from the primary: {e} (a replica needs the primary's key: the same keyring file or KMS key)"
            )
        })?
        .require_eof(true);
        tracing::info!("MASTER <-> REPLICA sync: the payload is an encrypted envelope");
        Box::new(r)
    } else if head.starts_with(b"REDIS") {
        tracing::info!("MASTER <-> REPLICA sync: the payload is a plain RDB; storing it encrypted as it arrives");
        Box::new(chained)
    } else {
        bail!("the full sync is neither an envelope nor an RDB file");
    };
    // The RDB goes to disk through this server's own protection; its CRC
    // trailer is checked here and rewritten by the snapshot writer.
    let mut w = crate::persist::create_snapshot(srv)?;
    let mut crc = Crc64::new();
    let mut tail: Vec<u8> = Vec::with_capacity(8);
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).context("reading the full sync")?;
        if n == 0 {
            break;
        }
        total += n as u64;
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 8 {
            let body = tail.len() - 8;
            crc.update(&tail[..body]);
            w.write(&tail[..body])?;
            tail.drain(..body);
        }
    }
    if tail.len() < 8 {
        bail!("the full sync ended before the RDB's checksum ({total} bytes)");
    }
    let sent = u64::from_le_bytes([
        tail[0], tail[1], tail[2], tail[3], tail[4], tail[5], tail[6], tail[7],
    ]);
    if sent != 0 && sent != crc.value() {
        bail!("the full sync's RDB checksum does not match: corrupted in transit");
    }
    w.commit()?;
    tracing::info!("MASTER <-> REPLICA sync: Flushing old data");
    let _apply = srv.repl.apply.lock();
    let _gate = srv.keyspace.exclusive();
    if srv.repl.generation.load(Ordering::Acquire) != gen {
        bail!("replication was reconfigured during the sync");
    }
    for i in 0..srv.keyspace.len() {
        drop(srv.keyspace.db(i).clear());
    }
    // Whatever clients cached is gone with it (Redis's emptyData).
    srv.tracking.flushed();
    // Functions are part of the dataset (Redis's emptyData flushes them
    // too): a library the primary deleted must not survive the sync.
    srv.scripting.with_functions(|e| e.flush_functions());
    tracing::info!("MASTER <-> REPLICA sync: Loading DB in memory");
    let path = crate::persist::snapshot_path(srv);
    let format = if srv.keys.is_some() {
        Format::Encrypted
    } else {
        Format::Plain
    };
    let loaded = crate::persist::load_file(srv, &path, format);
    if srv.config.flag("rdb-del-sync-files") && crate::persist::persistence_disabled(srv) {
        tracing::info!(
            "Removing the RDB file obtained from the master. This replica has persistence disabled"
        );
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!("Cannot remove {}: {e}", path.display());
        }
    }
    loaded?;
    srv.repl.reset_to(replid, offset);
    srv.repl.master_db.store(0, Ordering::Relaxed);
    tracing::info!("MASTER <-> REPLICA sync: Finished with success");
    crate::supervise::tell_systemd("STATUS=MASTER <-> REPLICA sync: Finished with success. Ready to accept connections in read-write mode.\n");
    Ok(())
}

/// Applies the primary's command stream until the link ends.
async fn stream_commands(srv: &Arc<Server>, mut link: Link<'_>, gen: u64) -> anyhow::Result<bool> {
    {
        let mut l = srv.repl.link.lock();
        l.state = "connected";
        l.last_io_ms = now_ms();
    }
    let handle = srv
        .clients
        .register(link.peer.clone(), link.local.clone(), -1);
    *handle.flags.lock() = "M".into();
    let mut client = Client::new(handle.clone(), true);
    client.is_master = true;
    client.db = srv.repl.master_db.load(Ordering::Relaxed);
    let result = apply_loop(srv, &mut link, &mut client, gen).await;
    srv.clients.remove(handle.id);
    tracing::info!("Connection with master lost.");
    result.map(|()| true)
}

async fn apply_loop(
    srv: &Arc<Server>,
    link: &mut Link<'_>,
    client: &mut Client,
    gen: u64,
) -> anyhow::Result<()> {
    let mut parser = Parser::default();
    let mut out = Out::new(2);
    // What was read, mirrored, so each applied command's exact bytes can be
    // fed to this server's own stream.
    let mut raw = BytesMut::from(&link.buf[..]);
    let mut consumed = 0usize;
    let mut ack = tokio::time::interval(Duration::from_secs(1));
    let timeout = link.timeout;
    loop {
        loop {
            let before = link.buf.len();
            let next = parser.next(
                &mut link.buf,
                Limits {
                    max_bulk: i64::MAX,
                    unauthenticated: false,
                },
            );
            consumed += before - link.buf.len();
            match next {
                Ok(Some(mut args)) => {
                    let bytes = raw.split_to(consumed.min(raw.len()));
                    consumed = 0;
                    if args.len() >= 2
                        && args[0].eq_ignore_ascii_case(b"replconf")
                        && args[1].eq_ignore_ascii_case(b"getack")
                    {
                        let off = srv.repl.offset().to_string();
                        srv.repl
                            .feed_applied(&bytes, client.db, client.multi.is_some());
                        link.send(&["REPLCONF", "ACK", off.as_str()]).await?;
                        continue;
                    }
                    {
                        let _apply = srv.repl.apply.lock();
                        if srv.repl.generation.load(Ordering::Acquire) != gen {
                            // REPLICAOF changed the primary meanwhile.
                            return Ok(());
                        }
                        let name = String::from_utf8_lossy(&args[0]).into_owned();
                        // Fed by dispatch while it still holds the gate, so
                        // no snapshot sees the command applied but not
                        // counted; here only when no command ran (queued,
                        // rejected).
                        client.master_feed = Some(bytes.freeze());
                        let now = crate::state::now_us();
                        crate::dispatch::execute(srv, client, &mut args, &mut out, now);
                        applied(srv, client);
                        if out.last_error.is_some() {
                            // As Redis 7.0 does: this replica now differs
                            // from its primary, which must be visible.
                            tracing::warn!(
                                "== CRITICAL == This replica is sending an error to its master: '{}' after processing the command '{name}'",
                                String::from_utf8_lossy(out.buf()).trim_end()
                            );
                        }
                    }
                    out.clear();
                }
                Ok(None) => break,
                Err(e) => bail!("Protocol error from the MASTER: {}", e.0),
            }
        }
        srv.tracking.broadcast_pending(None);
        srv.repl.link.lock().unapplied = link.buf.len() as u64;
        tokio::select! {
            r = tokio::time::timeout(timeout, link.stream.read_buf(&mut link.buf)) => {
                let n = r.map_err(|_| anyhow::anyhow!("MASTER timeout: no data nor PING received..."))??;
                if n == 0 {
                    bail!("the MASTER closed the connection");
                }
                let start = link.buf.len() - n;
                raw.extend_from_slice(&link.buf[start..]);
                srv.repl.link.lock().last_io_ms = now_ms();
                srv.stats.net_in.add(n as u64);
                link.buf.reserve(16 * 1024);
            }
            _ = ack.tick() => {
                let off = srv.repl.offset().to_string();
                link.send(&["REPLCONF", "ACK", off.as_str()]).await?;
            }
        }
    }
}

/// Feeds the primary's command the replica just applied to this server's
/// own stream (see [`Repl::feed_applied`]). Called by dispatch before it
/// releases the gate.
pub fn applied(srv: &Server, c: &mut Client) {
    if let Some(bytes) = c.master_feed.take() {
        srv.repl.feed_applied(&bytes, c.db, c.multi.is_some());
    }
}

/// The `# Replication` section of INFO.
pub fn info(srv: &Server) -> String {
    let mut o = String::from("# Replication\r\n");
    let (replid, replid2, offset, second) = srv.repl.ids();
    if srv.repl.is_replica() {
        let l = srv.repl.link();
        let up = l.state == "connected";
        let last_io = if l.last_io_ms == 0 {
            -1
        } else {
            (now_ms().saturating_sub(l.last_io_ms) / 1000) as i64
        };
        o.push_str(&format!(
            "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
            l.host,
            l.port,
            if up { "up" } else { "down" },
            if up { last_io } else { -1 },
            (l.state == "sync") as u8,
            offset + l.unapplied,
            offset,
        ));
        if l.state == "sync" {
            let left = l.sync_total.saturating_sub(l.sync_read);
            let perc = if l.sync_total > 0 {
                l.sync_read as f64 * 100.0 / l.sync_total as f64
            } else {
                0.0
            };
            o.push_str(&format!(
                "master_sync_total_bytes:{}\r\nmaster_sync_read_bytes:{}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                if l.sync_total > 0 { l.sync_total as i64 } else { -1 },
                l.sync_read,
                left,
                perc,
                last_io.max(0)
            ));
        }
        if !up {
            let since = if l.down_since_ms == 0 {
                -1
            } else {
                (now_ms().saturating_sub(l.down_since_ms) / 1000) as i64
            };
            o.push_str(&format!("master_link_down_since_seconds:{since}\r\n"));
        }
        o.push_str(&format!(
            "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
            srv.config.int("replica-priority"),
            srv.config.flag("replica-read-only") as u8,
            srv.config.flag("replica-announced") as u8,
        ));
    } else {
        o.push_str("role:master\r\n");
    }
    let replicas = srv.repl.replicas();
    o.push_str(&format!("connected_slaves:{}\r\n", replicas.len()));
    let min = srv.config.int("min-replicas-to-write");
    let max_lag = srv.config.int("min-replicas-max-lag");
    if min > 0 && max_lag > 0 {
        o.push_str(&format!(
            "min_slaves_good_slaves:{}\r\n",
            srv.repl.good_replicas(max_lag as u64)
        ));
    }
    let now = now_ms();
    for (i, r) in replicas.iter().enumerate() {
        o.push_str(&format!(
            "slave{i}:ip={},port={},state={},offset={},lag={}\r\n",
            r.ip,
            r.port,
            r.state(),
            r.ack.load(Ordering::Relaxed),
            now.saturating_sub(r.last_ack_ms.load(Ordering::Relaxed)) / 1000
        ));
    }
    let (active, size, first, histlen) = srv.repl.backlog_info();
    let failover = srv.failover.state();
    o.push_str(&format!(
        "master_failover_state:{failover}\r\nmaster_replid:{replid}\r\nmaster_replid2:{replid2}\r\nmaster_repl_offset:{offset}\r\nsecond_repl_offset:{second}\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{size}\r\nrepl_backlog_first_byte_offset:{first}\r\nrepl_backlog_histlen:{histlen}\r\n",
        active as u8
    ));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(r: &Repl) -> Vec<u8> {
        let g = r.inner.lock();
        g.backlog
            .as_ref()
            .and_then(|b| b.since(b.first_byte_offset()))
            .unwrap_or_default()
    }

    fn active() -> Repl {
        let r = Repl::new(1 << 20);
        let mut g = r.inner.lock();
        r.ensure_backlog(&mut g);
        drop(g);
        r
    }

    #[test]
    fn inactive_stream_records_nothing() {
        let r = Repl::new(1 << 20);
        r.propagate(0, &[b"SET", b"k", b"v"]);
        assert_eq!(r.offset(), 0);
        assert!(!r.active());
    }

    #[test]
    fn select_only_when_the_db_changes_and_offsets_count_bytes() {
        let r = active();
        r.propagate(0, &[b"SET", b"k", b"v"]);
        r.propagate(0, &[b"DEL", b"k"]);
        r.propagate(2, &[b"DEL", b"k"]);
        let want = [
            encode_command(&["SELECT", "0"]),
            encode_command(&["SET", "k", "v"]),
            encode_command(&["DEL", "k"]),
            encode_command(&["SELECT", "2"]),
            encode_command(&["DEL", "k"]),
        ]
        .concat();
        assert_eq!(stream_of(&r), want);
        assert_eq!(r.offset(), want.len() as u64);
    }

    #[test]
    fn transactions_are_wrapped_only_when_they_wrote() {
        let r = active();
        r.begin_tx();
        r.end_tx();
        assert_eq!(r.offset(), 0);
        r.begin_tx();
        r.propagate(1, &[b"INCR", b"n"]);
        r.propagate(1, &[b"INCR", b"n"]);
        r.end_tx();
        let want = [
            encode_command(&["SELECT", "1"]),
            encode_command(&["MULTI"]),
            encode_command(&["INCR", "n"]),
            encode_command(&["INCR", "n"]),
            encode_command(&["EXEC"]),
        ]
        .concat();
        assert_eq!(stream_of(&r), want);
    }

    #[test]
    fn a_replica_snapshot_never_points_inside_a_transaction() {
        let r = active();
        r.replica.store(true, Ordering::Release);
        let multi = encode_command(&["MULTI"]);
        let incr = encode_command(&["INCR", "n"]);
        let exec = encode_command(&["EXEC"]);
        r.feed_applied(&multi, 3, true);
        r.feed_applied(&incr, 3, true);
        let inside = r.save_info().map(|i| (i.offset, i.db));
        assert_eq!(inside, Some((0, 0)));
        r.feed_applied(&exec, 3, false);
        let after = r.save_info().map(|i| (i.offset, i.db));
        let total = (multi.len() + incr.len() + exec.len()) as u64;
        assert_eq!(after, Some((total, 3)));
    }

    #[test]
    fn save_info_round_trips_through_aux_fields() {
        let info = SaveInfo {
            replid: "a".repeat(40),
            offset: 1234,
            db: 5,
        };
        let aux: Vec<(Vec<u8>, Vec<u8>)> = info
            .aux()
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.clone()))
            .collect();
        assert_eq!(SaveInfo::from_aux(&aux), Some(info));
        // Redis ignores a position with a malformed id.
        let mut bad = aux.clone();
        bad[1].1 = b"short".to_vec();
        assert_eq!(SaveInfo::from_aux(&bad), None);
        assert_eq!(SaveInfo::from_aux(&aux[..2]), None);
    }

    #[test]
    fn a_restored_primary_accepts_its_old_id_and_deletes_expired_keys() {
        let r = Repl::new(1 << 20);
        let old = "b".repeat(40);
        let info = SaveInfo {
            replid: old.clone(),
            offset: 100,
            db: 0,
        };
        r.restore(&info, false, &[(1, b"gone".to_vec())]);
        let (id, id2, off, second) = r.ids();
        assert_ne!(id, old);
        assert_eq!((id2.as_str(), second), (old.as_str(), 101));
        let dels = [
            encode_command(&["SELECT", "1"]),
            encode_command(&["DEL", "gone"]),
        ]
        .concat();
        assert_eq!(off, 100 + dels.len() as u64);
        let g = r.inner.lock();
        assert_eq!(g.backlog.as_ref().and_then(|b| b.since(101)), Some(dels));
    }

    #[test]
    fn output_limits_drop_at_the_hard_limit_or_after_the_soft_seconds() {
        let l = ObufLimits::from_config("normal 0 0 0 slave 1000 100 2 pubsub 1 1 1", "replica");
        assert_eq!(
            l,
            Some(ObufLimits {
                hard: 1000,
                soft: 100,
                soft_secs: 2
            })
        );
        let normal = ObufLimits::from_config("normal 5 6 7 slave 1000 100 2", "normal");
        assert_eq!(
            normal.map(|n| (n.hard, n.soft, n.soft_secs)),
            Some((5, 6, 7))
        );
        let l = l.unwrap_or(ObufLimits {
            hard: 0,
            soft: 0,
            soft_secs: 0,
        });
        let since = AtomicU64::new(0);
        assert!(l.exceeded(1000, &since, 10));
        assert!(!l.exceeded(150, &since, 10));
        assert!(!l.exceeded(150, &since, 12));
        assert!(l.exceeded(150, &since, 13));
        // Back under the soft limit: the clock starts again.
        assert!(!l.exceeded(50, &since, 14));
        assert!(!l.exceeded(150, &since, 20));
    }

    #[test]
    fn promotion_keeps_the_old_id_valid_up_to_the_offset() {
        let r = active();
        r.propagate(0, &[b"SET", b"k", b"v"]);
        let (old, _, off, _) = r.ids();
        let mut g = r.inner.lock();
        r.shift_replid(&mut g, rampart_replication::new_replid());
        drop(g);
        let (new, id2, _, second) = r.ids();
        assert_ne!(new, old);
        assert_eq!(id2, old);
        assert_eq!(second, off as i64 + 1);
    }
}
