//! The envelope header and key slots: parse, serialize, read without
//! over-reading.

use std::io::Read;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::cipher::COMMITMENT_LEN;
use crate::{Error, KeyContext, KeySlot, Payload, Result};

/// The 8-byte magic that opens every v1 stream.
pub const MAGIC: &[u8; 8] = b"RAMPART\x01";
/// Suite 1: AES-256-GCM, HKDF-SHA-256, 32-byte key commitment.
pub const SUITE_V1: u8 = 1;
/// Smallest allowed `chunk_log2` (64 KiB chunks).
pub const MIN_CHUNK_LOG2: u8 = 16;
/// Largest allowed `chunk_log2` (16 MiB chunks).
pub const MAX_CHUNK_LOG2: u8 = 24;
/// Default `chunk_log2` (1 MiB chunks).
pub const DEFAULT_CHUNK_LOG2: u8 = 20;

/// magic, suite, payload, chunk_log2, salt, context length.
const FIXED_PREFIX: usize = 8 + 1 + 1 + 1 + 32 + 2;

/// What a writer puts in the authenticated header, besides the salt: payload
/// type, chunk size and the context pairs (which must include `dataset`).
///
/// ```
/// use rampart_kms::{EnvelopeParams, Payload};
/// let p = EnvelopeParams::new(Payload::Snapshot, "cache-1").with_pair("node", "n1");
/// assert_eq!(p.key_context().unwrap().dataset, "cache-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeParams {
    /// Payload type (and the purpose the data key is bound to).
    pub payload: Payload,
    /// Chunk plaintext size is `2^chunk_log2`.
    pub chunk_log2: u8,
    /// `key=value` pairs, written in this order.
    pub context: Vec<(String, String)>,
}

impl EnvelopeParams {
    /// Params for `payload` over `dataset`, 1 MiB chunks, with a `created-at`
    /// pair set to now.
    ///
    /// ```
    /// let p = rampart_kms::EnvelopeParams::new(rampart_kms::Payload::Backup, "d");
    /// assert!(p.context.iter().any(|(k, _)| k == "created-at"));
    /// ```
    pub fn new(payload: Payload, dataset: &str) -> Self {
        EnvelopeParams {
            payload,
            chunk_log2: DEFAULT_CHUNK_LOG2,
            context: vec![
                ("dataset".to_string(), dataset.to_string()),
                ("created-at".to_string(), crate::time::now_rfc3339()),
            ],
        }
    }

    /// Params from explicit pairs (test vectors, tools); no pair is added.
    ///
    /// ```
    /// use rampart_kms::{EnvelopeParams, Payload};
    /// let p = EnvelopeParams::from_pairs(Payload::Snapshot, 16, &[("dataset", "d")]);
    /// assert_eq!(p.chunk_log2, 16);
    /// ```
    pub fn from_pairs(payload: Payload, chunk_log2: u8, pairs: &[(&str, &str)]) -> Self {
        EnvelopeParams {
            payload,
            chunk_log2,
            context: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Adds a context pair (e.g. `node`).
    ///
    /// ```
    /// let p = rampart_kms::EnvelopeParams::new(rampart_kms::Payload::Backup, "d").with_pair("node", "a");
    /// assert_eq!(p.context.last().unwrap().1, "a");
    /// ```
    pub fn with_pair(mut self, key: &str, value: &str) -> Self {
        self.context.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets the chunk size exponent (16..=24).
    ///
    /// ```
    /// let p = rampart_kms::EnvelopeParams::new(rampart_kms::Payload::Backup, "d").with_chunk_log2(16);
    /// assert_eq!(p.chunk_log2, 16);
    /// ```
    pub fn with_chunk_log2(mut self, chunk_log2: u8) -> Self {
        self.chunk_log2 = chunk_log2;
        self
    }

    /// The dataset and purpose the data key must be bound to.
    ///
    /// ```
    /// let p = rampart_kms::EnvelopeParams::new(rampart_kms::Payload::Backup, "d");
    /// assert_eq!(p.key_context().unwrap().purpose, rampart_kms::Payload::Backup);
    /// ```
    pub fn key_context(&self) -> Result<KeyContext> {
        key_context(self.payload, &self.context)
    }
}

fn key_context(payload: Payload, context: &[(String, String)]) -> Result<KeyContext> {
    let dataset = context
        .iter()
        .find(|(k, _)| k == "dataset")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| Error::BadContext("no dataset pair".into()))?;
    Ok(KeyContext::new(dataset, payload))
}

/// A parsed v1 header with its key slots.
///
/// ```
/// use rampart_kms::{EnvelopeParams, Header, KeySlot, Payload};
/// let params = EnvelopeParams::from_pairs(Payload::Snapshot, 16, &[("dataset", "d")]);
/// let h = Header::unsealed(&params, [0; 32], vec![KeySlot::new("local", "rk/1", vec![0; 60])]).unwrap();
/// let bytes = h.to_bytes();
/// let (back, used) = Header::from_bytes(&bytes).unwrap();
/// assert_eq!(used, bytes.len());
/// assert_eq!(back.chunk_size(), 65536);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Payload type.
    pub payload: Payload,
    /// Chunk plaintext size is `2^chunk_log2`.
    pub chunk_log2: u8,
    /// Per-stream random salt (not secret).
    pub salt: [u8; 32],
    /// The context pairs, in stream order.
    pub context: Vec<(String, String)>,
    /// Key commitment (not secret).
    pub commitment: [u8; COMMITMENT_LEN],
    /// Key slots: not covered by the commitment, so they can be rewrapped.
    pub slots: Vec<KeySlot>,
}

enum Parse {
    Done(Header, usize),
    NeedAtLeast(usize),
}

impl Header {
    /// A header with a zero commitment; the writer fills it in. Validates the
    /// params.
    ///
    /// ```
    /// use rampart_kms::{EnvelopeParams, Header, Payload};
    /// let p = EnvelopeParams::from_pairs(Payload::Snapshot, 30, &[("dataset", "d")]);
    /// assert!(Header::unsealed(&p, [0; 32], vec![]).is_err());
    /// ```
    pub fn unsealed(
        params: &EnvelopeParams,
        salt: [u8; 32],
        slots: Vec<KeySlot>,
    ) -> Result<Header> {
        check_chunk_log2(params.chunk_log2)?;
        for (k, v) in &params.context {
            check_pair(k, v)?;
        }
        params.key_context()?;
        let h = Header {
            payload: params.payload,
            chunk_log2: params.chunk_log2,
            salt,
            context: params.context.clone(),
            commitment: [0; COMMITMENT_LEN],
            slots,
        };
        if h.context_bytes().len() > usize::from(u16::MAX) {
            return Err(Error::BadContext("context longer than 65535 bytes".into()));
        }
        if h.slots.len() > usize::from(u8::MAX) {
            return Err(Error::BadHeader("more than 255 key slots".into()));
        }
        for s in &h.slots {
            check_slot(s)?;
        }
        Ok(h)
    }

    /// Chunk plaintext size in bytes.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let h = Header::unsealed(&EnvelopeParams::from_pairs(Payload::Snapshot, 20, &[("dataset", "d")]), [0; 32], vec![]).unwrap();
    /// assert_eq!(h.chunk_size(), 1 << 20);
    /// ```
    pub fn chunk_size(&self) -> usize {
        1usize << self.chunk_log2
    }

    /// The value of context pair `key`.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let h = Header::unsealed(&EnvelopeParams::from_pairs(Payload::Snapshot, 20, &[("dataset", "d")]), [0; 32], vec![]).unwrap();
    /// assert_eq!(h.context_value("dataset"), Some("d"));
    /// ```
    pub fn context_value(&self, key: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Dataset and purpose the stream's data key is bound to.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let h = Header::unsealed(&EnvelopeParams::from_pairs(Payload::Snapshot, 20, &[("dataset", "d")]), [0; 32], vec![]).unwrap();
    /// assert_eq!(h.key_context().unwrap().dataset, "d");
    /// ```
    pub fn key_context(&self) -> Result<KeyContext> {
        key_context(self.payload, &self.context)
    }

    fn context_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (k, v)) in self.context.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
        }
        out
    }

    /// The authenticated part: magic through context (commitment excluded).
    /// Its SHA-256 is the HKDF info suffix.
    pub(crate) fn authenticated_prefix(&self) -> Vec<u8> {
        let ctx = self.context_bytes();
        let mut out = Vec::with_capacity(FIXED_PREFIX + ctx.len());
        out.extend_from_slice(MAGIC);
        out.push(SUITE_V1);
        out.push(self.payload as u8);
        out.push(self.chunk_log2);
        out.extend_from_slice(&self.salt);
        // Length fits: checked by `unsealed` and by the parser.
        out.extend_from_slice(&(ctx.len() as u16).to_be_bytes());
        out.extend_from_slice(&ctx);
        out
    }

    /// The whole header as it appears on the wire: authenticated part,
    /// commitment, key slots.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let h = Header::unsealed(&EnvelopeParams::from_pairs(Payload::Snapshot, 20, &[("dataset", "d")]), [0; 32], vec![]).unwrap();
    /// assert!(h.to_bytes().starts_with(b"RAMPART\x01"));
    /// ```
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.authenticated_prefix();
        out.extend_from_slice(&self.commitment);
        out.push(self.slots.len() as u8);
        for s in &self.slots {
            out.push(s.provider.len() as u8);
            out.extend_from_slice(s.provider.as_bytes());
            out.extend_from_slice(&(s.key_id.len() as u16).to_be_bytes());
            out.extend_from_slice(s.key_id.as_bytes());
            out.extend_from_slice(&(s.wrapped.len() as u16).to_be_bytes());
            out.extend_from_slice(&s.wrapped);
        }
        out
    }

    /// Parses a header (with slots) from the start of `buf`; returns it and
    /// the number of bytes it took. [`Error::HeaderTruncated`] if `buf` ends
    /// early.
    ///
    /// ```
    /// assert!(matches!(rampart_kms::Header::from_bytes(b"RAMPART\x01"), Err(rampart_kms::Error::HeaderTruncated)));
    /// assert!(matches!(rampart_kms::Header::from_bytes(b"NOTRAMPART-AT-ALL"), Err(rampart_kms::Error::BadMagic)));
    /// ```
    pub fn from_bytes(buf: &[u8]) -> Result<(Header, usize)> {
        match parse(buf)? {
            Parse::Done(h, n) => Ok((h, n)),
            Parse::NeedAtLeast(_) if buf.is_empty() => Err(Error::Empty),
            Parse::NeedAtLeast(_) => Err(Error::HeaderTruncated),
        }
    }

    /// Reads exactly the header from `r`, leaving `r` at the first chunk.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let h = Header::unsealed(&EnvelopeParams::from_pairs(Payload::Snapshot, 20, &[("dataset", "d")]), [0; 32], vec![KeySlot::new("t", "k", vec![])]).unwrap();
    /// let mut bytes = h.to_bytes();
    /// bytes.extend_from_slice(b"rest");
    /// let mut r = &bytes[..];
    /// let back = Header::read_from(&mut r).unwrap();
    /// assert_eq!(back, h);
    /// assert_eq!(r, b"rest");
    /// ```
    pub fn read_from<R: Read>(r: &mut R) -> Result<Header> {
        let mut buf = Vec::with_capacity(256);
        loop {
            match parse(&buf)? {
                Parse::Done(h, _) => return Ok(h),
                Parse::NeedAtLeast(n) => {
                    let start = buf.len();
                    buf.resize(n, 0);
                    if let Err(e) = r.read_exact(&mut buf[start..]) {
                        return Err(eof_error(e, start));
                    }
                }
            }
        }
    }

    /// Async [`Header::read_from`]: reads exact lengths only, so nothing past
    /// the header is consumed.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let h = Header::unsealed(&EnvelopeParams::from_pairs(Payload::Snapshot, 20, &[("dataset", "d")]), [0; 32], vec![KeySlot::new("t", "k", vec![])]).unwrap();
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let bytes = h.to_bytes();
    /// let back = Header::read_from_async(&mut &bytes[..]).await.unwrap();
    /// assert_eq!(back, h);
    /// # });
    /// ```
    pub async fn read_from_async<R: AsyncRead + Unpin>(r: &mut R) -> Result<Header> {
        let mut buf = Vec::with_capacity(256);
        loop {
            match parse(&buf)? {
                Parse::Done(h, _) => return Ok(h),
                Parse::NeedAtLeast(n) => {
                    let start = buf.len();
                    buf.resize(n, 0);
                    if let Err(e) = r.read_exact(&mut buf[start..]).await {
                        return Err(eof_error(e, start));
                    }
                }
            }
        }
    }
}

fn eof_error(e: std::io::Error, already: usize) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        if already == 0 {
            Error::Empty
        } else {
            Error::HeaderTruncated
        }
    } else {
        Error::Io(e)
    }
}

fn check_chunk_log2(c: u8) -> Result<()> {
    if (MIN_CHUNK_LOG2..=MAX_CHUNK_LOG2).contains(&c) {
        Ok(())
    } else {
        Err(Error::BadChunkSize(c))
    }
}

fn check_pair(k: &str, v: &str) -> Result<()> {
    if k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
    {
        return Err(Error::BadContext(format!(
            "context key {k:?} must be non-empty ASCII letters, digits, '.', '_', '-' or ':'"
        )));
    }
    if v.contains('\n') {
        return Err(Error::BadContext(format!(
            "context value of {k:?} contains a newline"
        )));
    }
    Ok(())
}

fn check_slot(s: &KeySlot) -> Result<()> {
    if s.provider.is_empty() || s.provider.len() > usize::from(u8::MAX) {
        return Err(Error::BadHeader(
            "key slot provider name must be 1..=255 bytes".into(),
        ));
    }
    if s.key_id.len() > usize::from(u16::MAX) || s.wrapped.len() > usize::from(u16::MAX) {
        return Err(Error::BadHeader(
            "key slot field longer than 65535 bytes".into(),
        ));
    }
    Ok(())
}

fn parse_context(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::BadContext("not UTF-8".into()))?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    if text.is_empty() {
        return Ok(pairs);
    }
    for line in text.split('\n') {
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| Error::BadContext(format!("pair {line:?} has no '='")))?;
        check_pair(k, v)?;
        if pairs.iter().any(|(pk, _)| pk == k) {
            return Err(Error::BadContext(format!("duplicate context key {k:?}")));
        }
        pairs.push((k.to_string(), v.to_string()));
    }
    Ok(pairs)
}

/// A cursor that reports how many bytes it would need when it runs out.
struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    /// `Ok(None)` means: the buffer must hold at least `pos + n` bytes.
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn need(&self, n: usize) -> Parse {
        Parse::NeedAtLeast(self.pos + n)
    }
}

macro_rules! take {
    ($cur:expr, $n:expr) => {{
        let n = $n;
        match $cur.take(n) {
            Some(s) => s,
            None => return Ok($cur.need(n)),
        }
    }};
}

fn be16(b: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([b[0], b[1]]))
}

fn parse(buf: &[u8]) -> Result<Parse> {
    let mut c = Cur { buf, pos: 0 };
    // Read and check the magic alone first, so a short non-envelope input
    // (a plain RDB file, say) is reported as such rather than as truncated.
    let have = buf.len().min(MAGIC.len());
    if buf[..have] != MAGIC[..have] {
        return Err(Error::BadMagic);
    }
    if have < MAGIC.len() {
        return Ok(Parse::NeedAtLeast(MAGIC.len()));
    }
    let fixed = take!(c, FIXED_PREFIX);
    let suite = fixed[8];
    if suite != SUITE_V1 {
        return Err(Error::UnsupportedSuite(suite));
    }
    let payload = Payload::from_u8(fixed[9])?;
    let chunk_log2 = fixed[10];
    check_chunk_log2(chunk_log2)?;
    let mut salt = [0u8; 32];
    salt.copy_from_slice(&fixed[11..43]);
    let ctx_len = be16(&fixed[43..45]);
    let context = parse_context(take!(c, ctx_len))?;
    let mut commitment = [0u8; COMMITMENT_LEN];
    commitment.copy_from_slice(take!(c, COMMITMENT_LEN));
    let count = take!(c, 1)[0];
    if count == 0 {
        return Err(Error::BadHeader("no key slots".into()));
    }
    let mut slots = Vec::with_capacity(usize::from(count));
    for i in 0..count {
        let plen = usize::from(take!(c, 1)[0]);
        let provider = std::str::from_utf8(take!(c, plen))
            .map_err(|_| Error::BadHeader(format!("key slot {i}: provider is not UTF-8")))?
            .to_string();
        if provider.is_empty() {
            return Err(Error::BadHeader(format!(
                "key slot {i}: empty provider name"
            )));
        }
        let klen = be16(take!(c, 2));
        let key_id = std::str::from_utf8(take!(c, klen))
            .map_err(|_| Error::BadHeader(format!("key slot {i}: key id is not UTF-8")))?
            .to_string();
        let wlen = be16(take!(c, 2));
        let wrapped = take!(c, wlen).to_vec();
        slots.push(KeySlot {
            provider,
            key_id,
            wrapped,
        });
    }
    let h = Header {
        payload,
        chunk_log2,
        salt,
        context,
        commitment,
        slots,
    };
    Ok(Parse::Done(h, c.pos))
}
