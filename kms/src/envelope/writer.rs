//! Streaming envelope writers: blocking over `Write`, async over `AsyncWrite`.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;
use zeroize::Zeroize;

use super::{EnvelopeParams, Header, LEN_PREFIX};
use crate::cipher::{ChunkCipher, TAG_LEN};
use crate::{DataKey, Error, KeySlot, Result};

/// The part both writers share: header bytes, the chunk buffer and sealing.
///
/// The buffer is laid out as the chunk goes on the wire,
/// `len (4) ‖ plaintext→ciphertext ‖ tag (16)`, so a sealed chunk is written
/// with one call and no copy.
struct Core {
    cipher: ChunkCipher,
    chunk_size: usize,
    buf: Vec<u8>,
    filled: usize,
    index: u64,
    sealed: prometheus::IntCounter,
}

impl Core {
    fn new(
        params: &EnvelopeParams,
        data_key: DataKey,
        slots: Vec<KeySlot>,
        salt: [u8; 32],
    ) -> Result<(Core, Vec<u8>)> {
        if slots.is_empty() {
            return Err(Error::BadHeader(
                "an envelope needs at least one key slot".into(),
            ));
        }
        let mut header = Header::unsealed(params, salt, slots)?;
        let (cipher, commitment) =
            ChunkCipher::derive(&data_key, &header.salt, &header.authenticated_prefix())?;
        drop(data_key);
        header.commitment = commitment;
        let chunk_size = header.chunk_size();
        let core = Core {
            cipher,
            chunk_size,
            buf: vec![0u8; LEN_PREFIX + chunk_size + TAG_LEN],
            filled: 0,
            index: 0,
            sealed: crate::metrics::sealed(params.payload),
        };
        Ok((core, header.to_bytes()))
    }

    fn random_salt() -> Result<[u8; 32]> {
        let mut salt = [0u8; 32];
        crate::cipher::random_fill(&mut salt)?;
        Ok(salt)
    }

    /// Copies as much of `data` as fits into the current chunk.
    fn absorb(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.chunk_size - self.filled);
        let start = LEN_PREFIX + self.filled;
        self.buf[start..start + n].copy_from_slice(&data[..n]);
        self.filled += n;
        n
    }

    fn is_full(&self) -> bool {
        self.filled == self.chunk_size
    }

    /// Seals the current chunk in place; returns the wire length of it.
    /// A full chunk is never final; the final chunk is always shorter than
    /// the chunk size (empty when the plaintext is a multiple of it), which
    /// is how a reader tells them apart.
    fn seal(&mut self, last: bool) -> Result<usize> {
        let n = self.filled;
        debug_assert!(last == (n < self.chunk_size));
        self.buf[..LEN_PREFIX].copy_from_slice(&(n as u32).to_be_bytes());
        let tag = self
            .cipher
            .seal(self.index, last, &mut self.buf[LEN_PREFIX..LEN_PREFIX + n])?;
        self.buf[LEN_PREFIX + n..LEN_PREFIX + n + TAG_LEN].copy_from_slice(&tag);
        self.index = self.index.checked_add(1).ok_or(Error::TooManyChunks)?;
        self.sealed.inc_by(n as u64);
        self.filled = 0;
        Ok(LEN_PREFIX + n + TAG_LEN)
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        // An unfinished chunk holds plaintext.
        self.buf.zeroize();
    }
}

/// Encrypts a stream into `W`: writes the header at once, then a chunk each
/// time the chunk size fills. Call [`finish`](EnvelopeWriter::finish): a
/// writer dropped without it leaves a stream that readers reject as truncated.
///
/// ```
/// use std::io::Write;
/// use rampart_kms::*;
/// let params = EnvelopeParams::new(Payload::Snapshot, "cache-1").with_chunk_log2(16);
/// let slot = KeySlot::new("test", "k", vec![]);
/// let mut w = EnvelopeWriter::new(Vec::new(), &params, DataKey::from_bytes([9; 32]), vec![slot]).unwrap();
/// w.write_all(b"hello").unwrap();
/// let bytes = w.finish().unwrap();
/// assert!(bytes.starts_with(b"RAMPART\x01"));
/// ```
pub struct EnvelopeWriter<W: Write> {
    inner: W,
    core: Core,
    failed: bool,
}

impl<W: Write> EnvelopeWriter<W> {
    /// Starts a stream with a random salt and writes its header.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// let p = EnvelopeParams::new(Payload::Backup, "d");
    /// let w = EnvelopeWriter::new(Vec::new(), &p, DataKey::generate().unwrap(), vec![KeySlot::new("t", "k", vec![])]);
    /// assert!(w.is_ok());
    /// ```
    pub fn new(
        inner: W,
        params: &EnvelopeParams,
        data_key: DataKey,
        slots: Vec<KeySlot>,
    ) -> Result<Self> {
        Self::with_salt(inner, params, data_key, slots, Core::random_salt()?)
    }

    /// Like [`new`](EnvelopeWriter::new) with a caller-chosen salt: for test
    /// vectors only. Never reuse a (data key, salt) pair.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// let p = EnvelopeParams::from_pairs(Payload::Snapshot, 16, &[("dataset", "d")]);
    /// let w = EnvelopeWriter::with_salt(Vec::new(), &p, DataKey::from_bytes([0; 32]), vec![KeySlot::new("t", "k", vec![])], [0; 32]).unwrap();
    /// assert!(w.finish().unwrap().len() > 100);
    /// ```
    pub fn with_salt(
        mut inner: W,
        params: &EnvelopeParams,
        data_key: DataKey,
        slots: Vec<KeySlot>,
        salt: [u8; 32],
    ) -> Result<Self> {
        let (core, header) = Core::new(params, data_key, slots, salt)?;
        inner.write_all(&header)?;
        Ok(EnvelopeWriter {
            inner,
            core,
            failed: false,
        })
    }

    fn write_chunk(&mut self, last: bool) -> io::Result<()> {
        let n = self.core.seal(last).map_err(Error::into_io)?;
        self.inner.write_all(&self.core.buf[..n])
    }

    /// Writes the final chunk, flushes, and returns the inner writer.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let p = EnvelopeParams::new(Payload::Backup, "d");
    /// let w = EnvelopeWriter::new(Vec::new(), &p, DataKey::generate().unwrap(), vec![KeySlot::new("t", "k", vec![])]).unwrap();
    /// let out: Vec<u8> = w.finish().unwrap();
    /// # assert!(!out.is_empty());
    /// ```
    pub fn finish(mut self) -> Result<W> {
        if self.failed {
            return Err(Error::WriterFinished);
        }
        self.write_chunk(true)?;
        self.inner.flush()?;
        // `Core` zeroizes on drop; move the inner writer out without Drop
        // on self (EnvelopeWriter has none).
        Ok(self.inner)
    }

    /// The inner writer.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # let p = EnvelopeParams::new(Payload::Backup, "d");
    /// let w = EnvelopeWriter::new(Vec::new(), &p, DataKey::generate().unwrap(), vec![KeySlot::new("t", "k", vec![])]).unwrap();
    /// assert!(!w.get_ref().is_empty());
    /// ```
    pub fn get_ref(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for EnvelopeWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(Error::WriterFinished.into_io());
        }
        let mut done = 0;
        while done < data.len() {
            done += self.core.absorb(&data[done..]);
            if self.core.is_full()
                && let Err(e) = self.write_chunk(false)
            {
                self.failed = true;
                return Err(e);
            }
        }
        Ok(done)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Only whole chunks can be emitted; a partial chunk waits for more
        // data or for `finish`.
        self.inner.flush()
    }
}

/// Async [`EnvelopeWriter`] over an `AsyncWrite` (a file, a replica socket).
///
/// It implements `AsyncWrite`; call [`finish`](AsyncEnvelopeWriter::finish)
/// to write the final chunk and get the inner writer back without shutting it
/// down (a replication socket goes on with commands). `poll_shutdown` also
/// writes the final chunk, then shuts the inner writer down.
///
/// ```
/// use tokio::io::AsyncWriteExt;
/// use rampart_kms::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let p = EnvelopeParams::new(Payload::FullSync, "d");
/// let mut w = AsyncEnvelopeWriter::new(Vec::new(), &p, DataKey::generate().unwrap(), vec![KeySlot::new("t", "k", vec![])]).unwrap();
/// w.write_all(b"data").await.unwrap();
/// let bytes = w.finish().await.unwrap();
/// # assert!(bytes.len() > 4);
/// # });
/// ```
pub struct AsyncEnvelopeWriter<W: AsyncWrite + Unpin> {
    inner: W,
    core: Core,
    /// Header bytes not yet written.
    head: Vec<u8>,
    head_pos: usize,
    /// Sealed chunk bytes `core.buf[out_pos..out_len]` not yet written.
    out_pos: usize,
    out_len: usize,
    finished: bool,
    failed: bool,
}

impl<W: AsyncWrite + Unpin> AsyncEnvelopeWriter<W> {
    /// Starts a stream with a random salt; the header goes out with the
    /// first write or flush.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// let p = EnvelopeParams::new(Payload::Backup, "d");
    /// let w = AsyncEnvelopeWriter::new(Vec::new(), &p, DataKey::generate().unwrap(), vec![KeySlot::new("t", "k", vec![])]);
    /// assert!(w.is_ok());
    /// ```
    pub fn new(
        inner: W,
        params: &EnvelopeParams,
        data_key: DataKey,
        slots: Vec<KeySlot>,
    ) -> Result<Self> {
        Self::with_salt(inner, params, data_key, slots, Core::random_salt()?)
    }

    /// Like [`new`](AsyncEnvelopeWriter::new) with a caller-chosen salt: for
    /// test vectors only.
    ///
    /// ```
    /// # use rampart_kms::*;
    /// let p = EnvelopeParams::from_pairs(Payload::Snapshot, 16, &[("dataset", "d")]);
    /// let w = AsyncEnvelopeWriter::with_salt(Vec::new(), &p, DataKey::from_bytes([0; 32]), vec![KeySlot::new("t", "k", vec![])], [0; 32]);
    /// assert!(w.is_ok());
    /// ```
    pub fn with_salt(
        inner: W,
        params: &EnvelopeParams,
        data_key: DataKey,
        slots: Vec<KeySlot>,
        salt: [u8; 32],
    ) -> Result<Self> {
        let (core, head) = Core::new(params, data_key, slots, salt)?;
        Ok(AsyncEnvelopeWriter {
            inner,
            core,
            head,
            head_pos: 0,
            out_pos: 0,
            out_len: 0,
            finished: false,
            failed: false,
        })
    }

    /// Writes out the pending header and sealed chunk.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.head_pos < self.head.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.head[self.head_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.head_pos += n;
        }
        while self.out_pos < self.out_len {
            let n = ready!(
                Pin::new(&mut self.inner)
                    .poll_write(cx, &self.core.buf[self.out_pos..self.out_len])
            )?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        Poll::Ready(Ok(()))
    }

    fn guard(&mut self, r: Poll<io::Result<()>>) -> Poll<io::Result<()>> {
        if let Poll::Ready(Err(_)) = &r {
            self.failed = true;
        }
        r
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let n = self.core.seal(last).map_err(Error::into_io)?;
        self.out_pos = 0;
        self.out_len = n;
        Ok(())
    }

    /// Seals the final chunk once and writes everything out.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.failed {
            return Poll::Ready(Err(Error::WriterFinished.into_io()));
        }
        let r = self.poll_drain(cx);
        ready!(self.guard(r))?;
        if !self.finished {
            self.seal(true)?;
            self.finished = true;
            let r = self.poll_drain(cx);
            ready!(self.guard(r))?;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// Writes the final chunk, flushes, and returns the inner writer (not
    /// shut down).
    ///
    /// ```
    /// # use rampart_kms::*;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// # let p = EnvelopeParams::new(Payload::Backup, "d");
    /// let w = AsyncEnvelopeWriter::new(Vec::new(), &p, DataKey::generate().unwrap(), vec![KeySlot::new("t", "k", vec![])]).unwrap();
    /// let out = w.finish().await.unwrap();
    /// # assert!(!out.is_empty());
    /// # });
    /// ```
    pub async fn finish(mut self) -> Result<W> {
        std::future::poll_fn(|cx| self.poll_finish(cx)).await?;
        Ok(self.inner)
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncEnvelopeWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.failed || this.finished {
            return Poll::Ready(Err(Error::WriterFinished.into_io()));
        }
        // Emit what is pending first: the buffer is reused for the next chunk.
        let r = this.poll_drain(cx);
        ready!(this.guard(r))?;
        let n = this.core.absorb(data);
        if this.core.is_full() {
            // Sealed now, written on the next call; the bytes are accepted.
            this.seal(false)?;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = this.poll_drain(cx);
        ready!(this.guard(r))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_finish(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
