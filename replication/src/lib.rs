//! rampart-replication: the protocol pieces of Redis's PSYNC replication,
//! free of I/O so both sides of the server's replication links (and their
//! tests) share them.
//!
//! - [`Backlog`]: the ring buffer of the write stream, addressed by
//!   replication offsets, that partial resynchronization (`+CONTINUE`)
//!   serves from.
//! - [`new_replid`]: replication ids (40 hex characters).
//! - [`encode_command`]: a command as the stream carries it (RESP multibulk).
//! - [`PsyncReply`]: the primary's answer to `PSYNC`.
//! - [`Framing`] and [`Deframer`]: the full-sync payload's `$<len>` and
//!   `$EOF:<mark>` framings, both directions.

use std::collections::VecDeque;

/// Length of a replication id and of an `$EOF:` mark.
pub const ID_LEN: usize = 40;

/// A fresh random replication id: 40 lower-case hex characters, as Redis's
/// `changeReplicationId` makes them.
///
/// ```
/// let id = rampart_replication::new_replid();
/// assert_eq!(id.len(), 40);
/// assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
/// ```
pub fn new_replid() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..ID_LEN)
        .map(|_| HEX[(rand::random::<u8>() & 15) as usize] as char)
        .collect()
}

/// Encodes `argv` as a RESP multibulk, the form every command takes on the
/// replication stream.
///
/// ```
/// let b = rampart_replication::encode_command(&[b"SET".as_slice(), b"k", b"v"]);
/// assert_eq!(b, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
/// ```
pub fn encode_command<A: AsRef<[u8]>>(argv: &[A]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + argv.iter().map(|a| a.as_ref().len() + 16).sum::<usize>());
    push_command(&mut out, argv);
    out
}

/// Appends `argv` as a RESP multibulk to `out`.
///
/// ```
/// let mut b = Vec::new();
/// rampart_replication::push_command(&mut b, &["PING"]);
/// assert_eq!(b, b"*1\r\n$4\r\nPING\r\n");
/// ```
pub fn push_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[A]) {
    out.push(b'*');
    out.extend_from_slice(argv.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// The replication backlog: the last `size` bytes of the write stream.
/// Offsets follow Redis: the stream's bytes are numbered from 1, the
/// backlog's first byte is `first_byte_offset()`, and a replica asking
/// `PSYNC <id> <n>` wants byte `n` next.
///
/// ```
/// use rampart_replication::Backlog;
/// let mut b = Backlog::new(8, 0);
/// b.append(b"abcdef");
/// b.append(b"ghij");
/// assert_eq!(b.end_offset(), 10);
/// assert_eq!(b.first_byte_offset(), 3);
/// assert_eq!(b.since(5).as_deref(), Some(&b"efghij"[..]));
/// assert_eq!(b.since(11).as_deref(), Some(&b""[..]));
/// assert_eq!(b.since(2), None);
/// ```
pub struct Backlog {
    buf: VecDeque<u8>,
    size: usize,
    /// Offset of the last byte appended (Redis's master_repl_offset).
    end: u64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte is `offset + 1`.
    pub fn new(size: usize, offset: u64) -> Backlog {
        Backlog {
            buf: VecDeque::new(),
            size: size.max(1),
            end: offset,
        }
    }

    /// Appends stream bytes, forgetting the oldest beyond `size`.
    pub fn append(&mut self, bytes: &[u8]) {
        self.end += bytes.len() as u64;
        if bytes.len() >= self.size {
            self.buf.clear();
            self.buf.extend(&bytes[bytes.len() - self.size..]);
            return;
        }
        let over = (self.buf.len() + bytes.len()).saturating_sub(self.size);
        self.buf.drain(..over);
        self.buf.extend(bytes);
    }

    /// The stream from offset `from` (the next byte a replica wants) to the
    /// end, or `None` when the backlog no longer (or not yet) holds it.
    pub fn since(&self, from: u64) -> Option<Vec<u8>> {
        if from < self.first_byte_offset() || from > self.end + 1 {
            return None;
        }
        let skip = (from - self.first_byte_offset()) as usize;
        Some(self.buf.range(skip..).copied().collect())
    }

    /// Offset of the oldest byte held (`end_offset() + 1` when empty).
    pub fn first_byte_offset(&self) -> u64 {
        self.end + 1 - self.buf.len() as u64
    }

    /// Offset of the newest byte.
    pub fn end_offset(&self) -> u64 {
        self.end
    }

    /// Bytes held (`repl_backlog_histlen`).
    pub fn histlen(&self) -> usize {
        self.buf.len()
    }

    /// Capacity (`repl-backlog-size`).
    pub fn size(&self) -> usize {
        self.size
    }

    /// Changes the capacity, keeping the newest bytes.
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(1);
        let over = self.buf.len().saturating_sub(self.size);
        self.buf.drain(..over);
    }
}

/// The primary's answer to `PSYNC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsyncReply {
    /// `+FULLRESYNC <replid> <offset>`: a snapshot follows.
    FullResync {
        /// The primary's replication id.
        replid: String,
        /// The offset the snapshot stands for.
        offset: u64,
    },
    /// `+CONTINUE [<replid>]`: the stream resumes where the replica was.
    Continue {
        /// The primary's id when it changed (psync2).
        replid: Option<String>,
    },
    /// An error (`-ERR ...`, `-NOMASTERLINK ...`, `-LOADING ...`).
    Error(String),
}

impl PsyncReply {
    /// Parses one reply line (without CRLF).
    ///
    /// ```
    /// use rampart_replication::PsyncReply;
    /// let id = "a".repeat(40);
    /// assert_eq!(
    ///     PsyncReply::parse(&format!("+FULLRESYNC {id} 42")),
    ///     Some(PsyncReply::FullResync { replid: id.clone(), offset: 42 })
    /// );
    /// assert_eq!(PsyncReply::parse("+CONTINUE"), Some(PsyncReply::Continue { replid: None }));
    /// assert_eq!(PsyncReply::parse("+WHAT"), None);
    /// ```
    pub fn parse(line: &str) -> Option<PsyncReply> {
        if let Some(rest) = line.strip_prefix("+FULLRESYNC ") {
            let mut it = rest.split(' ');
            let replid = it.next()?;
            let offset = it.next()?.parse().ok()?;
            if replid.len() != ID_LEN {
                return None;
            }
            return Some(PsyncReply::FullResync {
                replid: replid.to_string(),
                offset,
            });
        }
        if let Some(rest) = line.strip_prefix("+CONTINUE") {
            let id = rest.trim();
            return Some(PsyncReply::Continue {
                replid: (id.len() == ID_LEN).then(|| id.to_string()),
            });
        }
        if let Some(e) = line.strip_prefix('-') {
            return Some(PsyncReply::Error(e.to_string()));
        }
        None
    }
}

/// How a full-sync payload is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// `$<len>\r\n` then exactly `len` bytes.
    Len(u64),
    /// `$EOF:<40-byte mark>\r\n`, the payload, then the mark again (diskless).
    Eof([u8; ID_LEN]),
}

impl Framing {
    /// A fresh random `$EOF:` mark.
    ///
    /// ```
    /// let f = rampart_replication::Framing::new_eof();
    /// assert!(f.header().starts_with(b"$EOF:"));
    /// assert_eq!(f.header().len(), 5 + 40 + 2);
    /// ```
    pub fn new_eof() -> Framing {
        let mut mark = [0u8; ID_LEN];
        mark.copy_from_slice(new_replid().as_bytes());
        Framing::Eof(mark)
    }

    /// Parses the header line (without CRLF), e.g. `$EOF:<mark>` or `$123`.
    ///
    /// ```
    /// use rampart_replication::Framing;
    /// assert_eq!(Framing::parse(b"$12"), Some(Framing::Len(12)));
    /// assert!(Framing::parse(b"+OK").is_none());
    /// ```
    pub fn parse(line: &[u8]) -> Option<Framing> {
        let rest = line.strip_prefix(b"$")?;
        if let Some(mark) = rest.strip_prefix(b"EOF:") {
            let mark: [u8; ID_LEN] = mark.try_into().ok()?;
            return Some(Framing::Eof(mark));
        }
        let n = std::str::from_utf8(rest).ok()?.parse().ok()?;
        Some(Framing::Len(n))
    }

    /// The header line, CRLF included.
    pub fn header(&self) -> Vec<u8> {
        match self {
            Framing::Len(n) => format!("${n}\r\n").into_bytes(),
            Framing::Eof(mark) => {
                let mut v = b"$EOF:".to_vec();
                v.extend_from_slice(mark);
                v.extend_from_slice(b"\r\n");
                v
            }
        }
    }

    /// What follows the payload: the mark for `$EOF:`, nothing for `$<len>`.
    pub fn trailer(&self) -> &[u8] {
        match self {
            Framing::Len(_) => &[],
            Framing::Eof(mark) => mark,
        }
    }
}

/// Splits a framed payload out of the bytes read from the primary.
///
/// ```
/// use rampart_replication::{Deframer, Framing};
/// let f = Framing::new_eof();
/// let mut d = Deframer::new(f.clone());
/// let mut body = Vec::new();
/// let mut wire = b"payload".to_vec();
/// wire.extend_from_slice(f.trailer());
/// let (a, b) = wire.split_at(10);
/// assert_eq!(d.feed(a, &mut body), a.len());
/// assert_eq!(d.feed(b, &mut body), b.len());
/// assert!(d.done());
/// assert_eq!(body, b"payload");
/// ```
pub struct Deframer {
    framing: Framing,
    /// `$EOF:`: the last bytes seen, held back until we know they are not
    /// the mark.
    held: Vec<u8>,
    /// `$<len>`: bytes still expected.
    remaining: u64,
    done: bool,
}

impl Deframer {
    /// Starts reading a payload framed as `framing`.
    pub fn new(framing: Framing) -> Deframer {
        let remaining = match &framing {
            Framing::Len(n) => *n,
            Framing::Eof(_) => 0,
        };
        Deframer {
            done: matches!(framing, Framing::Len(0)),
            framing,
            held: Vec::new(),
            remaining,
        }
    }

    /// Consumes bytes from `data`, appending payload bytes to `out`.
    /// Returns how many bytes of `data` belong to the payload; the rest
    /// (after a `$<len>` payload) is the command stream. With `$EOF:` the
    /// primary sends nothing after the mark until the replica acknowledges,
    /// so the mark is recognized at the end of what was read.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> usize {
        if self.done {
            return 0;
        }
        match &self.framing {
            Framing::Len(_) => {
                let n = (self.remaining.min(data.len() as u64)) as usize;
                out.extend_from_slice(&data[..n]);
                self.remaining -= n as u64;
                self.done = self.remaining == 0;
                n
            }
            Framing::Eof(mark) => {
                self.held.extend_from_slice(data);
                if self.held.len() >= ID_LEN && self.held[self.held.len() - ID_LEN..] == mark[..] {
                    let body = self.held.len() - ID_LEN;
                    out.extend_from_slice(&self.held[..body]);
                    self.held.clear();
                    self.done = true;
                } else if self.held.len() > ID_LEN {
                    let body = self.held.len() - ID_LEN;
                    out.extend_from_slice(&self.held[..body]);
                    self.held.drain(..body);
                }
                data.len()
            }
        }
    }

    /// Whether the whole payload has been read.
    pub fn done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_wraps_and_keeps_offsets() {
        let mut b = Backlog::new(4, 100);
        assert_eq!(b.first_byte_offset(), 101);
        assert_eq!(b.since(101).as_deref(), Some(&b""[..]));
        b.append(b"0123456789");
        assert_eq!(b.end_offset(), 110);
        assert_eq!(b.since(107).as_deref(), Some(&b"6789"[..]));
        assert_eq!(b.since(106), None);
        assert_eq!(b.since(112), None);
        b.resize(2);
        assert_eq!(b.since(109).as_deref(), Some(&b"89"[..]));
    }

    #[test]
    fn deframer_len_leaves_the_stream() {
        let mut d = Deframer::new(Framing::Len(3));
        let mut out = Vec::new();
        assert_eq!(d.feed(b"ab", &mut out), 2);
        assert_eq!(d.feed(b"c*1\r\n", &mut out), 1);
        assert!(d.done());
        assert_eq!(out, b"abc");
    }

    #[test]
    fn deframer_eof_byte_at_a_time() {
        let f = Framing::new_eof();
        let mut wire = vec![7u8; 100];
        wire.extend_from_slice(f.trailer());
        let mut d = Deframer::new(f);
        let mut out = Vec::new();
        for b in &wire {
            d.feed(std::slice::from_ref(b), &mut out);
        }
        assert!(d.done());
        assert_eq!(out, vec![7u8; 100]);
    }
}
