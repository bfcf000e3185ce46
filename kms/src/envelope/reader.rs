//! Streaming envelope readers: blocking over `Read`, async over `AsyncRead`.
//!
//! Both read exact lengths (a 4-byte length, then that chunk), verify a
//! chunk's tag before releasing any of its plaintext, and stop right after
//! the final chunk, so the underlying reader is left at the next byte.

use std::io::{self, Read};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use zeroize::Zeroize;

use super::{Header, LEN_PREFIX, StreamKey};
use crate::cipher::TAG_LEN;
use crate::{Error, Provider, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the 4-byte length of the next chunk; `got` bytes so far.
    Len { got: usize },
    /// Reading `need` bytes of ciphertext+tag into the buffer.
    Body { need: usize, got: usize, last: bool },
    /// Serving plaintext `buf[pos..end]`.
    Serve,
    /// After the final chunk, probing for trailing bytes (require_eof).
    Probe,
    /// The final chunk has been served.
    Done,
    /// An error was returned; every later call fails too.
    Failed,
}

/// State shared by the blocking and async readers.
struct Core {
    cipher: StreamKey,
    chunk_size: usize,
    buf: Vec<u8>,
    len_buf: [u8; LEN_PREFIX],
    pos: usize,
    end: usize,
    index: u64,
    phase: Phase,
    require_eof: bool,
    opened: prometheus::IntCounter,
}

impl Core {
    fn new(header: &Header, key: StreamKey) -> Core {
        let chunk_size = header.chunk_size();
        Core {
            cipher: key,
            chunk_size,
            buf: vec![0u8; chunk_size + TAG_LEN],
            len_buf: [0; LEN_PREFIX],
            pos: 0,
            end: 0,
            index: 0,
            phase: Phase::Len { got: 0 },
            require_eof: false,
            opened: crate::metrics::opened(header.payload),
        }
    }

    fn fail(&mut self, e: Error) -> io::Error {
        self.phase = Phase::Failed;
        self.buf.zeroize();
        e.into_io()
    }

    /// The chunk length has been read: validate it and set up the body read.
    fn on_len(&mut self) -> io::Result<()> {
        let len = u32::from_be_bytes(self.len_buf) as usize;
        if len > self.chunk_size {
            return Err(self.fail(Error::ChunkTooLarge {
                index: self.index,
                len: len as u64,
                max: self.chunk_size as u64,
            }));
        }
        self.phase = Phase::Body {
            need: len + TAG_LEN,
            got: 0,
            last: len < self.chunk_size,
        };
        Ok(())
    }

    /// The body has been read: verify and decrypt in place.
    fn on_body(&mut self, need: usize, last: bool) -> io::Result<()> {
        let len = need - TAG_LEN;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&self.buf[len..need]);
        if let Err(e) = self
            .cipher
            .cipher
            .open(self.index, last, &mut self.buf[..len], &tag)
        {
            return Err(self.fail(e));
        }
        self.index = match self.index.checked_add(1) {
            Some(i) => i,
            None => return Err(self.fail(Error::TooManyChunks)),
        };
        self.opened.inc_by(len as u64);
        self.pos = 0;
        self.end = len;
        self.phase = Phase::Serve;
        Ok(())
    }

    fn on_eof(&mut self) -> io::Error {
        let chunks = self.index;
        self.fail(Error::Truncated { chunks })
    }

    /// Copies plaintext out; at the end of a chunk moves to the next phase.
    fn serve(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.end {
            let was_last = self.end < self.chunk_size;
            self.phase = if !was_last {
                Phase::Len { got: 0 }
            } else if self.require_eof {
                Phase::Probe
            } else {
                Phase::Done
            };
        }
        n
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

/// Decrypts an envelope stream from `R`, as a `Read`.
///
/// Reading to the end yields the plaintext and then `Ok(0)`; a stream cut
/// short yields an error ([`Error::Truncated`] inside the `io::Error`;
/// `rampart_kms::Error::from(io_err)` recovers it), never a short read.
///
/// ```
/// use std::io::{Read, Write};
/// use rampart_kms::*;
/// let p = EnvelopeParams::new(Payload::Snapshot, "d");
/// let slot = KeySlot::new("t", "k", vec![]);
/// let mut w = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![slot]).unwrap();
/// w.write_all(b"secret").unwrap();
/// let bytes = w.finish().unwrap();
///
/// let mut r = &bytes[..];
/// let header = Header::read_from(&mut r).unwrap();
/// let key = StreamKey::from_data_key(&header, &DataKey::from_bytes([3; 32])).unwrap();
/// let mut reader = EnvelopeReader::new(r, header, key);
/// let mut out = Vec::new();
/// reader.read_to_end(&mut out).unwrap();
/// assert_eq!(out, b"secret");
/// ```
pub struct EnvelopeReader<R: Read> {
    inner: R,
    header: Header,
    core: Core,
}

impl<R: Read> EnvelopeReader<R> {
    /// A reader over `inner`, positioned at the first chunk (after
    /// [`Header::read_from`]), with a commitment-checked key.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// let mut r = &bytes[..];
    /// let h = Header::read_from(&mut r).unwrap();
    /// let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let reader = EnvelopeReader::new(r, h, k);
    /// assert_eq!(reader.header().payload, Payload::Snapshot);
    /// ```
    pub fn new(inner: R, header: Header, key: StreamKey) -> Self {
        let core = Core::new(&header, key);
        EnvelopeReader {
            inner,
            header,
            core,
        }
    }

    /// Reads the header from `inner` and opens a key slot with `provider`.
    /// Remote providers are async: inside a runtime, prefer
    /// [`AsyncEnvelopeReader::open`] or call
    /// [`Provider::open_header`] yourself and use [`EnvelopeReader::new`].
    ///
    /// ```no_run
    /// # use rampart_kms::*;
    /// # async fn f(file: std::fs::File, provider: &Provider) -> Result<()> {
    /// let reader = EnvelopeReader::open(file, provider).await?;
    /// # Ok(()) }
    /// ```
    pub async fn open(mut inner: R, provider: &Provider) -> Result<Self> {
        let header = Header::read_from(&mut inner)?;
        let key = provider.open_header(&header).await?;
        Ok(Self::new(inner, header, key))
    }

    /// Makes the reader fail with [`Error::TrailingData`] if anything follows
    /// the final chunk: for files, where the stream must fill the input.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// # let mut r = &bytes[..];
    /// # let h = Header::read_from(&mut r).unwrap();
    /// # let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let reader = EnvelopeReader::new(r, h, k).require_eof(true);
    /// # drop(reader);
    /// ```
    pub fn require_eof(mut self, yes: bool) -> Self {
        self.core.require_eof = yes;
        self
    }

    /// The stream's header.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// # let mut r = &bytes[..];
    /// # let h = Header::read_from(&mut r).unwrap();
    /// # let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let reader = EnvelopeReader::new(r, h, k);
    /// assert_eq!(reader.header().context_value("dataset"), Some("d"));
    /// ```
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// True once the final chunk has been verified and fully read.
    ///
    /// ```
    /// # use std::io::Read;
    /// # use rampart_kms::*;
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// # let mut r = &bytes[..];
    /// # let h = Header::read_from(&mut r).unwrap();
    /// # let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let mut reader = EnvelopeReader::new(r, h, k);
    /// std::io::copy(&mut reader, &mut std::io::sink()).unwrap();
    /// assert!(reader.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.core.phase == Phase::Done
    }

    /// The underlying reader, positioned right after the final chunk once
    /// [`is_done`](EnvelopeReader::is_done).
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// # let mut r = &bytes[..];
    /// # let h = Header::read_from(&mut r).unwrap();
    /// # let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let reader = EnvelopeReader::new(r, h, k);
    /// let inner: &[u8] = reader.into_inner();
    /// # let _ = inner;
    /// ```
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The fast path: a caller buffer that holds the whole chunk receives the
    /// ciphertext and is decrypted in place, saving a copy. Plaintext is only
    /// returned after the tag verified; on failure ring has zeroed `dst`.
    fn read_direct(
        inner: &mut R,
        core: &mut Core,
        dst: &mut [u8],
        last: bool,
    ) -> io::Result<usize> {
        let mut got = 0;
        let mut tag = [0u8; TAG_LEN];
        let mut tag_got = 0;
        let r = Self::fill(inner, dst, &mut got).and_then(|ok| {
            if ok {
                Self::fill(inner, &mut tag, &mut tag_got)
            } else {
                Ok(false)
            }
        });
        match r {
            Ok(true) => {}
            Ok(false) => {
                dst.zeroize();
                return Err(core.on_eof());
            }
            Err(e) => return Err(core.fail(Error::Io(e))),
        }
        if let Err(e) = core.cipher.cipher.open(core.index, last, dst, &tag) {
            return Err(core.fail(e));
        }
        core.opened.inc_by(dst.len() as u64);
        core.index = match core.index.checked_add(1) {
            Some(i) => i,
            None => return Err(core.fail(Error::TooManyChunks)),
        };
        core.phase = if !last {
            Phase::Len { got: 0 }
        } else if core.require_eof {
            Phase::Probe
        } else {
            Phase::Done
        };
        Ok(dst.len())
    }

    /// Reads into `dst` until it holds `want` bytes; `Ok(false)` on EOF.
    fn fill(inner: &mut R, dst: &mut [u8], got: &mut usize) -> io::Result<bool> {
        while *got < dst.len() {
            match inner.read(&mut dst[*got..]) {
                Ok(0) => return Ok(false),
                Ok(n) => *got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

impl<R: Read> Read for EnvelopeReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let core = &mut self.core;
        loop {
            match core.phase {
                Phase::Serve => {
                    if out.is_empty() {
                        return Ok(0);
                    }
                    let n = core.serve(out);
                    // An empty final chunk serves nothing: go on to Probe/Done
                    // rather than report EOF before the probe ran.
                    if n > 0 || core.phase == Phase::Serve {
                        return Ok(n);
                    }
                }
                Phase::Done => return Ok(0),
                Phase::Failed => return Err(io::Error::other("envelope reader failed earlier")),
                Phase::Len { mut got } => {
                    let r = Self::fill(&mut self.inner, &mut core.len_buf, &mut got);
                    core.phase = Phase::Len { got };
                    match r {
                        Ok(true) => core.on_len()?,
                        Ok(false) => return Err(core.on_eof()),
                        Err(e) => return Err(core.fail(Error::Io(e))),
                    }
                }
                Phase::Body {
                    need,
                    mut got,
                    last,
                } => {
                    let len = need - TAG_LEN;
                    if got == 0 && len > 0 && out.len() >= len {
                        return Self::read_direct(&mut self.inner, core, &mut out[..len], last);
                    }
                    let r = Self::fill(&mut self.inner, &mut core.buf[..need], &mut got);
                    core.phase = Phase::Body { need, got, last };
                    match r {
                        Ok(true) => core.on_body(need, last)?,
                        Ok(false) => return Err(core.on_eof()),
                        Err(e) => return Err(core.fail(Error::Io(e))),
                    }
                }
                Phase::Probe => {
                    let mut one = [0u8; 1];
                    let mut got = 0;
                    match Self::fill(&mut self.inner, &mut one, &mut got) {
                        Ok(false) => core.phase = Phase::Done,
                        Ok(true) => return Err(core.fail(Error::TrailingData)),
                        Err(e) => return Err(core.fail(Error::Io(e))),
                    }
                }
            }
        }
    }
}

/// Async [`EnvelopeReader`] over an `AsyncRead` (a file, a primary's socket).
///
/// It never reads past the final chunk: after it returns `Ok(0)`,
/// [`into_inner`](AsyncEnvelopeReader::into_inner) gives back the socket
/// positioned at the next byte.
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use rampart_kms::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let p = EnvelopeParams::new(Payload::FullSync, "d");
/// let mut w = AsyncEnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([4; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap();
/// w.write_all(b"rdb").await.unwrap();
/// let mut bytes = w.finish().await.unwrap();
/// bytes.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
///
/// let mut r = &bytes[..];
/// let h = Header::read_from_async(&mut r).await.unwrap();
/// let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([4; 32])).unwrap();
/// let mut reader = AsyncEnvelopeReader::new(r, h, k);
/// let mut out = Vec::new();
/// reader.read_to_end(&mut out).await.unwrap();
/// assert_eq!(out, b"rdb");
/// assert_eq!(reader.into_inner(), b"*1\r\n$4\r\nPING\r\n");
/// # });
/// ```
pub struct AsyncEnvelopeReader<R: AsyncRead + Unpin> {
    inner: R,
    header: Header,
    core: Core,
}

impl<R: AsyncRead + Unpin> AsyncEnvelopeReader<R> {
    /// A reader over `inner`, positioned at the first chunk, with a
    /// commitment-checked key.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// let mut r = &bytes[..];
    /// let h = Header::read_from_async(&mut r).await.unwrap();
    /// let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let reader = AsyncEnvelopeReader::new(r, h, k);
    /// # let _ = reader;
    /// # });
    /// ```
    pub fn new(inner: R, header: Header, key: StreamKey) -> Self {
        let core = Core::new(&header, key);
        AsyncEnvelopeReader {
            inner,
            header,
            core,
        }
    }

    /// Reads the header and opens a key slot with `provider` (checking the
    /// commitment) before any chunk is read.
    ///
    /// ```no_run
    /// # use rampart_kms::*;
    /// # async fn f(sock: tokio::net::TcpStream, provider: &Provider) -> Result<()> {
    /// let reader = AsyncEnvelopeReader::open(sock, provider).await?;
    /// # Ok(()) }
    /// ```
    pub async fn open(mut inner: R, provider: &Provider) -> Result<Self> {
        let header = Header::read_from_async(&mut inner).await?;
        let key = provider.open_header(&header).await?;
        Ok(Self::new(inner, header, key))
    }

    /// See [`EnvelopeReader::require_eof`].
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// # let mut r = &bytes[..];
    /// # let h = Header::read_from_async(&mut r).await.unwrap();
    /// # let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let reader = AsyncEnvelopeReader::new(r, h, k).require_eof(true);
    /// # let _ = reader;
    /// # });
    /// ```
    pub fn require_eof(mut self, yes: bool) -> Self {
        self.core.require_eof = yes;
        self
    }

    /// The stream's header.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// # let mut r = &bytes[..];
    /// # let h = Header::read_from_async(&mut r).await.unwrap();
    /// # let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let reader = AsyncEnvelopeReader::new(r, h, k);
    /// assert_eq!(reader.header().payload, Payload::Snapshot);
    /// # });
    /// ```
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// True once the final chunk has been verified and fully read.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// # let mut r = &bytes[..];
    /// # let h = Header::read_from_async(&mut r).await.unwrap();
    /// # let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let mut reader = AsyncEnvelopeReader::new(r, h, k);
    /// tokio::io::copy(&mut reader, &mut tokio::io::sink()).await.unwrap();
    /// assert!(reader.is_done());
    /// # });
    /// ```
    pub fn is_done(&self) -> bool {
        self.core.phase == Phase::Done
    }

    /// The underlying reader, positioned right after the final chunk once
    /// [`is_done`](AsyncEnvelopeReader::is_done).
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// # let mut r = &bytes[..];
    /// # let h = Header::read_from_async(&mut r).await.unwrap();
    /// # let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let inner = AsyncEnvelopeReader::new(r, h, k).into_inner();
    /// # let _ = inner;
    /// # });
    /// ```
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads the whole plaintext to the end (convenience over `AsyncRead`),
    /// returning the crate error rather than an `io::Error`.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let p = EnvelopeParams::new(Payload::Snapshot, "d");
    /// # let bytes = EnvelopeWriter::new(Vec::new(), &p, DataKey::from_bytes([3; 32]), vec![KeySlot::new("t", "k", vec![])]).unwrap().finish().unwrap();
    /// # let mut r = &bytes[..];
    /// # let h = Header::read_from_async(&mut r).await.unwrap();
    /// # let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([3; 32])).unwrap();
    /// let mut reader = AsyncEnvelopeReader::new(r, h, k);
    /// assert!(reader.read_all().await.unwrap().is_empty());
    /// # });
    /// ```
    pub async fn read_all(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.read_to_end(&mut out).await?;
        Ok(out)
    }

    /// Polls `inner` until `dst[*got..]` is full; `Ok(false)` on EOF. Reads
    /// only into `dst`, so never past what the stream says comes next.
    fn poll_fill(
        inner: &mut R,
        cx: &mut Context<'_>,
        dst: &mut [u8],
        got: &mut usize,
    ) -> Poll<io::Result<bool>> {
        while *got < dst.len() {
            let mut rb = ReadBuf::new(&mut dst[*got..]);
            ready!(Pin::new(&mut *inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(false));
            }
            *got += n;
        }
        Poll::Ready(Ok(true))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for AsyncEnvelopeReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let core = &mut this.core;
        loop {
            match core.phase {
                Phase::Serve => {
                    if out.remaining() == 0 {
                        return Poll::Ready(Ok(()));
                    }
                    let n = core.serve(out.initialize_unfilled());
                    out.advance(n);
                    if n > 0 || core.phase == Phase::Serve {
                        return Poll::Ready(Ok(()));
                    }
                }
                Phase::Done => return Poll::Ready(Ok(())),
                Phase::Failed => {
                    return Poll::Ready(Err(io::Error::other("envelope reader failed earlier")));
                }
                Phase::Len { mut got } => {
                    let r = Self::poll_fill(&mut this.inner, cx, &mut core.len_buf, &mut got);
                    core.phase = Phase::Len { got };
                    match ready!(r) {
                        Ok(true) => core.on_len()?,
                        Ok(false) => return Poll::Ready(Err(core.on_eof())),
                        Err(e) => return Poll::Ready(Err(core.fail(Error::Io(e)))),
                    }
                }
                Phase::Body {
                    need,
                    mut got,
                    last,
                } => {
                    let r = Self::poll_fill(&mut this.inner, cx, &mut core.buf[..need], &mut got);
                    core.phase = Phase::Body { need, got, last };
                    match ready!(r) {
                        Ok(true) => core.on_body(need, last)?,
                        Ok(false) => return Poll::Ready(Err(core.on_eof())),
                        Err(e) => return Poll::Ready(Err(core.fail(Error::Io(e)))),
                    }
                }
                Phase::Probe => {
                    let mut one = [0u8; 1];
                    let mut got = 0;
                    match ready!(Self::poll_fill(&mut this.inner, cx, &mut one, &mut got)) {
                        Ok(false) => core.phase = Phase::Done,
                        Ok(true) => return Poll::Ready(Err(core.fail(Error::TrailingData))),
                        Err(e) => return Poll::Ready(Err(core.fail(Error::Io(e)))),
                    }
                }
            }
        }
    }
}
