//! The wire protocol: the request parser (RESP multibulk and inline) and the
//! reply writer (RESP2 and RESP3).
//!
//! Requests are parsed here rather than with a generic RESP decoder because
//! Redis's request grammar is narrower than RESP (only arrays of bulk
//! strings, or inline lines), its limits are configurable
//! (`proto-max-bulk-len`) and clients match on its exact protocol error
//! texts. The parser keeps its state between reads, so a large argument
//! arriving in pieces is never re-scanned.

use bytes::{Buf, Bytes, BytesMut};

/// Longest inline request or length line Redis accepts (PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;

/// A protocol error: sent as `-ERR Protocol error: …`, then the connection
/// is closed, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// Limits that apply while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`.
    pub max_bulk: i64,
    /// Whether the client still has to AUTH: Redis refuses big requests from
    /// unauthenticated clients before buffering them.
    pub unauthenticated: bool,
}

/// Incremental request parser. Feed it the connection's read buffer; it
/// returns one command's arguments at a time.
///
/// ```
/// use bytes::BytesMut;
/// use rampart_server::resp::{Limits, Parser};
/// let mut p = Parser::default();
/// let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n"[..]);
/// let limits = Limits { max_bulk: 512 << 20, unauthenticated: false };
/// assert_eq!(p.next(&mut buf, limits).unwrap().unwrap().len(), 2);
/// assert_eq!(&p.next(&mut buf, limits).unwrap().unwrap()[0][..], b"PING");
/// assert!(p.next(&mut buf, limits).unwrap().is_none());
/// ```
#[derive(Default, Debug)]
pub struct Parser {
    /// Bulk strings still expected in the current multibulk (0 = none begun).
    remaining: usize,
    /// Length of the bulk whose data we are waiting for.
    bulk: Option<usize>,
    args: Vec<Bytes>,
}

fn find_crlf_start(buf: &[u8], byte: u8) -> Option<usize> {
    memchr(byte, buf)
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

/// Parses an integer like Redis's `string2ll`.
fn parse_len(s: &[u8]) -> Option<i64> {
    rampart_keyspace::value::parse_canonical_i64(s)
}

impl Parser {
    /// Whether a command is partly parsed (Redis counts such a client as
    /// having a pending multibulk).
    pub fn in_progress(&self) -> bool {
        self.remaining > 0
    }

    /// Gives back a command's argument vector once it has run, so the next
    /// command reuses its allocation instead of making one.
    pub fn recycle(&mut self, mut args: Vec<Bytes>) {
        if self.remaining == 0 && args.capacity() <= 1024 && args.capacity() > self.args.capacity()
        {
            args.clear();
            self.args = args;
        }
    }

    /// Parses the next complete command from `buf`, consuming its bytes.
    /// `Ok(None)` means more data is needed. Empty commands (`*0`, blank
    /// inline lines) are skipped, as Redis does.
    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        limits: Limits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        loop {
            if self.remaining == 0 {
                if buf.is_empty() {
                    return Ok(None);
                }
                if buf[0] != b'*' {
                    match self.inline(buf)? {
                        Some(args) if args.is_empty() => continue,
                        other => return Ok(other),
                    }
                }
                let Some(cr) = find_crlf_start(buf, b'\r') else {
                    if buf.len() > INLINE_MAX {
                        return Err(perr("too big mbulk count string"));
                    }
                    return Ok(None);
                };
                if cr + 1 >= buf.len() {
                    return Ok(None);
                }
                let n = parse_len(&buf[1..cr]);
                let n = match n {
                    Some(n) if n <= i32::MAX as i64 => n,
                    _ => return Err(perr("invalid multibulk length")),
                };
                // 7.0.15 allows an unauthenticated client 10 arguments
                // (enough for AUTH and HELLO) before it buffers anything.
                if n > 10 && limits.unauthenticated {
                    return Err(perr("unauthenticated multibulk length"));
                }
                buf.advance(cr + 2);
                if n <= 0 {
                    continue;
                }
                self.remaining = n as usize;
                // Preallocate modestly: the count comes from the client.
                self.args.clear();
                self.args.reserve(self.remaining.min(1024));
            }
            while self.remaining > 0 {
                let len = match self.bulk {
                    Some(len) => len,
                    None => {
                        let Some(cr) = find_crlf_start(buf, b'\r') else {
                            if buf.len() > INLINE_MAX {
                                return Err(perr("too big bulk count string"));
                            }
                            return Ok(None);
                        };
                        if cr + 1 >= buf.len() {
                            return Ok(None);
                        }
                        if buf[0] != b'$' {
                            return Err(perr(&format!("expected '$', got '{}'", buf[0] as char)));
                        }
                        let len = match parse_len(&buf[1..cr]) {
                            Some(l) if l >= 0 && l <= limits.max_bulk => l,
                            _ => return Err(perr("invalid bulk length")),
                        };
                        if len > 16384 && limits.unauthenticated {
                            return Err(perr("unauthenticated bulk length"));
                        }
                        buf.advance(cr + 2);
                        let len = len as usize;
                        self.bulk = Some(len);
                        len
                    }
                };
                if buf.len() < len + 2 {
                    // Make room once for the whole argument.
                    buf.reserve(len + 2 - buf.len());
                    return Ok(None);
                }
                let arg = buf.split_to(len).freeze();
                // Like Redis, the two bytes after the data are skipped
                // without being checked.
                buf.advance(2);
                self.args.push(arg);
                self.bulk = None;
                self.remaining -= 1;
            }
            return Ok(Some(std::mem::take(&mut self.args)));
        }
    }

    fn inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(nl) = memchr(b'\n', buf) else {
            if buf.len() > INLINE_MAX {
                return Err(perr("too big inline request"));
            }
            return Ok(None);
        };
        let whole = buf.split_to(nl + 1).freeze();
        let mut line = &whole[..nl];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        // Plain words (no quotes or rarer separators): slices of the line,
        // no copies. The same split as `split_args` gives for them.
        if !line
            .iter()
            .any(|&c| matches!(c, b'"' | b'\'' | 0 | 0x0b | 0x0c))
        {
            let args = line
                .split(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
                .filter(|w| !w.is_empty())
                .map(|w| whole.slice_ref(w))
                .collect();
            return Ok(Some(args));
        }
        match split_args(line) {
            Some(args) => Ok(Some(args.into_iter().map(Bytes::from).collect())),
            None => Err(perr("unbalanced quotes in request")),
        }
    }
}

fn perr(msg: &str) -> ProtocolError {
    ProtocolError(format!("Protocol error: {msg}"))
}

pub use rampart_keyspace::sds::split_args;

/// The reply writer. Commands describe their reply with these calls and the
/// writer renders it for the connection's protocol version (RESP2 or RESP3),
/// straight into the connection's output buffer, so a pipeline's replies are
/// sent with one write.
///
/// ```
/// use rampart_server::resp::Out;
/// let mut o = Out::new(2);
/// o.map_len(1);
/// o.bulk(b"k");
/// o.int(1);
/// o.null();
/// assert_eq!(o.buf(), b"*2\r\n$1\r\nk\r\n:1\r\n$-1\r\n");
/// let mut o3 = Out::new(3);
/// o3.null();
/// assert_eq!(o3.buf(), b"_\r\n");
/// ```
pub struct Out {
    buf: Vec<u8>,
    /// 2 or 3.
    pub proto: u8,
    /// The code of the last error written (`ERR`, `WRONGTYPE`…), for
    /// INFO errorstats; reset by the caller per command.
    pub last_error: Option<String>,
}

impl Out {
    /// An empty writer for protocol version `proto`.
    pub fn new(proto: u8) -> Out {
        Out {
            buf: Vec::with_capacity(16 * 1024),
            proto,
            last_error: None,
        }
    }

    /// A writer that appends to `buf` (a script's `redis.call`, which
    /// keeps one buffer from call to call): no connection-sized buffer
    /// to allocate per call. [`Out::into_bytes`] gives it back.
    ///
    /// ```
    /// let mut o = rampart_server::resp::Out::for_reply(2, b"+A\r\n".to_vec());
    /// o.ok();
    /// assert_eq!(o.into_bytes(), b"+A\r\n+OK\r\n");
    /// ```
    pub fn for_reply(proto: u8, buf: Vec<u8>) -> Out {
        Out {
            buf,
            proto,
            last_error: None,
        }
    }

    /// The rendered bytes, taken without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Whether replies are rendered as RESP3.
    pub fn resp3(&self) -> bool {
        self.proto >= 3
    }

    /// The rendered bytes.
    pub fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// Mutable access, for the connection loop.
    pub fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Length of the rendered bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes the buffer holds allocated (client eviction's tally).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether nothing is rendered.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops everything after `len` (CLIENT REPLY OFF/SKIP).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    fn line(&mut self, prefix: u8, s: &[u8]) {
        self.buf.push(prefix);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn num_line(&mut self, prefix: u8, n: i64) {
        let mut b = itoa::Buffer::new();
        self.line(prefix, b.format(n).as_bytes());
    }

    /// `+OK`
    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string (`+PONG`).
    pub fn simple(&mut self, s: &str) {
        self.line(b'+', s.as_bytes());
    }

    /// An error. `msg` starts with its code (`ERR …`, `WRONGTYPE …`); CR and
    /// LF are replaced by spaces so the reply stays one line, as Redis does.
    pub fn error(&mut self, msg: &str) {
        let code = msg.split(' ').next().unwrap_or("ERR").to_string();
        self.last_error = Some(code);
        self.buf.push(b'-');
        self.buf.extend(
            msg.bytes()
                .map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    /// An integer.
    pub fn int(&mut self, n: i64) {
        self.num_line(b':', n);
    }

    /// A bulk string.
    pub fn bulk(&mut self, s: &[u8]) {
        self.num_line(b'$', s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding an integer's decimal text.
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        let s = b.format(n);
        self.bulk(s.as_bytes());
    }

    /// The null reply (`$-1` in RESP2, `_` in RESP3).
    pub fn null(&mut self) {
        if self.resp3() {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// The null array (`*-1` in RESP2, `_` in RESP3): EXEC aborted by WATCH,
    /// timed-out blocking pops.
    pub fn null_array(&mut self) {
        if self.resp3() {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    /// An array header of `n` elements.
    pub fn array(&mut self, n: usize) {
        self.num_line(b'*', n as i64);
    }

    /// A map header of `n` pairs (a flat array of 2n in RESP2).
    pub fn map_len(&mut self, n: usize) {
        if self.resp3() {
            self.num_line(b'%', n as i64);
        } else {
            self.num_line(b'*', 2 * n as i64);
        }
    }

    /// A set header (an array in RESP2).
    pub fn set_len(&mut self, n: usize) {
        self.num_line(if self.resp3() { b'~' } else { b'*' }, n as i64);
    }

    /// A push header (RESP3 out-of-band data; an array in RESP2).
    pub fn push_len(&mut self, n: usize) {
        self.num_line(if self.resp3() { b'>' } else { b'*' }, n as i64);
    }

    /// A boolean (`:1`/`:0` in RESP2).
    pub fn boolean(&mut self, b: bool) {
        if self.resp3() {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// A double (a bulk string in RESP2, formatted as Redis's `%.17g`).
    pub fn double(&mut self, d: f64) {
        let s = crate::num::fmt_double(d);
        if self.resp3() {
            self.line(b',', s.as_bytes());
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// A verbatim string (`=` with a 3-letter format in RESP3, bulk in RESP2).
    pub fn verbatim(&mut self, s: &[u8]) {
        if self.resp3() {
            self.num_line(b'=', s.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(s);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s);
        }
    }

    /// Appends bytes rendered elsewhere (queued EXEC replies).
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Empties the buffer after it was written to the socket.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Drops the first `n` bytes, which the socket took.
    pub fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        max_bulk: 512 * 1024 * 1024,
        unauthenticated: false,
    };

    fn all(input: &[u8]) -> Result<Vec<Vec<Vec<u8>>>, ProtocolError> {
        let mut p = Parser::default();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(cmd) = p.next(&mut buf, L)? {
            out.push(cmd.iter().map(|b| b.to_vec()).collect());
        }
        Ok(out)
    }

    #[test]
    fn parses_in_pieces() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
        let mut p = Parser::default();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            if let Some(c) = p.next(&mut buf, L).unwrap() {
                got = Some(c);
            }
        }
        let got = got.unwrap();
        assert_eq!(&got[2][..], b"hello");
        assert!(buf.is_empty());
    }

    #[test]
    fn protocol_errors_match_redis() {
        let e = |i: &[u8]| all(i).unwrap_err().0;
        assert_eq!(e(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(e(b"*1\r\n:5\r\n"), "Protocol error: expected '$', got ':'");
        assert_eq!(e(b"*1\r\n$-5\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(
            e(b"*1\r\n$600000000\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            e(b"set \"a\r\n"),
            "Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            e(&vec![b'a'; INLINE_MAX + 1]),
            "Protocol error: too big inline request"
        );
    }

    #[test]
    fn empty_commands_are_skipped() {
        assert_eq!(
            all(b"*0\r\n\r\n*-1\r\nPING\r\n").unwrap(),
            vec![vec![b"PING".to_vec()]]
        );
    }

    #[test]
    fn split_args_like_sdssplitargs() {
        assert_eq!(
            split_args(b"a \"b\\x41\\n\" 'c'").unwrap(),
            vec![b"a".to_vec(), b"bA\n".to_vec(), b"c".to_vec()]
        );
        assert!(split_args(b"\"a\"b").is_none());
        assert!(split_args(b"'abc").is_none());
        assert_eq!(split_args(b"   ").unwrap(), Vec::<Vec<u8>>::new());
    }
}
