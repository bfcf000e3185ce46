//! Snapshot files: one RDB stream, sealed in the envelope (payload type 1)
//! or plain, written so that a crash at any moment leaves the previous file
//! intact (temp file, fsync, rename, fsync of the directory).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use rampart_kms::{AtomicFile, DataKey, EnvelopeParams, EnvelopeWriter, KeySlot};

use crate::rdb::Crc64;

/// How a snapshot file is protected.
pub enum Protection {
    /// Sealed in the envelope under a fresh data key, wrapped in `slot`.
    Encrypted {
        /// Payload type and context pairs (dataset id...).
        params: EnvelopeParams,
        /// The stream's data key.
        key: DataKey,
        /// The data key, wrapped by the key provider.
        slot: KeySlot,
    },
    /// Plain RDB, byte for byte what `redis-server` writes
    /// (`encryption-at-rest no`).
    Plain,
}

enum Out {
    Plain(BufWriter<AtomicFile>),
    Sealed(Box<EnvelopeWriter<BufWriter<AtomicFile>>>),
}

/// Writes one snapshot: the caller feeds the RDB bytes (header, entries,
/// EOF opcode) and [`commit`](SnapshotWriter::commit) appends the CRC-64
/// trailer and puts the file in place. Dropped before `commit`, nothing
/// changes on disk. No plaintext byte reaches the disk when encrypted: the
/// envelope seals each chunk before it is written, temp file included.
///
/// ```
/// use rampart_persistence::snapshot::{Protection, SnapshotWriter, Format, sniff};
/// let dir = tempfile::tempdir().unwrap();
/// let dest = dir.path().join("dump.rdb");
/// let mut w = SnapshotWriter::create(&dest, Protection::Plain).unwrap();
/// let mut rdb = Vec::new();
/// rampart_persistence::rdb::write_header(&mut rdb, &[]);
/// rampart_persistence::rdb::write_eof(&mut rdb);
/// w.write(&rdb).unwrap();
/// w.commit().unwrap();
/// assert_eq!(sniff(&dest).unwrap(), Some(Format::Plain));
/// ```
pub struct SnapshotWriter {
    out: Out,
    crc: Crc64,
    bytes: u64,
}

/// Buffer size between the RDB encoder and the file (or the envelope).
const BUF: usize = 1 << 20;

impl SnapshotWriter {
    /// Starts writing a snapshot that will replace `dest`.
    pub fn create(dest: &Path, protection: Protection) -> anyhow::Result<Self> {
        let file = BufWriter::with_capacity(BUF, AtomicFile::create(dest)?);
        let out = match protection {
            Protection::Plain => Out::Plain(file),
            Protection::Encrypted { params, key, slot } => Out::Sealed(Box::new(
                EnvelopeWriter::new(file, &params, key, vec![slot])?,
            )),
        };
        Ok(SnapshotWriter {
            out,
            crc: Crc64::new(),
            bytes: 0,
        })
    }

    /// Appends RDB bytes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.bytes += bytes.len() as u64;
        match &mut self.out {
            Out::Plain(w) => w.write_all(bytes),
            Out::Sealed(w) => w.write_all(bytes),
        }
    }

    /// Appends the CRC-64 trailer, seals the stream, and puts the file in
    /// place durably. Returns the RDB's length.
    pub fn commit(mut self) -> anyhow::Result<u64> {
        let crc = self.crc.value().to_le_bytes();
        self.write(&crc)?;
        self.commit_verbatim()
    }

    /// Seals the stream and puts the file in place, adding nothing: for
    /// bytes that are already a whole RDB file, trailer included (a
    /// restored backup). Returns the length written.
    pub fn commit_verbatim(self) -> anyhow::Result<u64> {
        let (file, bytes) = self.finish()?;
        file.commit()?;
        Ok(bytes)
    }

    /// [`commit`](SnapshotWriter::commit), also returning the file as
    /// written (sealed when encrypted), open for reading: what a
    /// disk-based full sync sends to replicas. Opened before the rename,
    /// so a later snapshot replacing it changes nothing for the reader.
    pub fn commit_and_open(mut self) -> anyhow::Result<(u64, File)> {
        let crc = self.crc.value().to_le_bytes();
        self.write(&crc)?;
        let (file, bytes) = self.finish()?;
        Ok((bytes, file.commit_and_open()?))
    }

    fn finish(self) -> anyhow::Result<(AtomicFile, u64)> {
        let file = match self.out {
            Out::Plain(w) => w.into_inner().map_err(|e| e.into_error())?,
            Out::Sealed(w) => w.finish()?.into_inner().map_err(|e| e.into_error())?,
        };
        Ok((file, self.bytes))
    }
}

/// What a snapshot file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A Rampart envelope.
    Encrypted,
    /// A plain RDB file (`REDIS` magic).
    Plain,
}

/// Looks at the first bytes of `path`: `None` when the file does not exist,
/// an error when it is neither an envelope nor an RDB file.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("x");
/// assert_eq!(rampart_persistence::snapshot::sniff(&p).unwrap(), None);
/// std::fs::write(&p, b"hello").unwrap();
/// assert!(rampart_persistence::snapshot::sniff(&p).is_err());
/// ```
pub fn sniff(path: &Path) -> io::Result<Option<Format>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut head = [0u8; 8];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    let head = &head[..n];
    if head == &rampart_kms::envelope::MAGIC[..] {
        Ok(Some(Format::Encrypted))
    } else if head.starts_with(b"REDIS") {
        Ok(Some(Format::Plain))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is neither a Rampart encrypted snapshot nor an RDB file (it starts with {:?})",
                path.display(),
                String::from_utf8_lossy(head)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_kms::{Payload, StreamKey};

    fn rdb() -> Vec<u8> {
        let mut b = Vec::new();
        crate::rdb::write_header(&mut b, &[]);
        crate::rdb::write_select_db(&mut b, 0);
        crate::rdb::write_entry(
            &mut b,
            b"marker",
            &rampart_keyspace::Value::string(b"PLAINTEXT-MARKER-42"),
            None,
        );
        crate::rdb::write_eof(&mut b);
        b
    }

    #[test]
    fn encrypted_file_holds_no_plaintext_and_decrypts_to_the_rdb() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dump.rdb");
        let key = DataKey::from_bytes([7; 32]);
        let params = EnvelopeParams::new(Payload::Snapshot, "d1");
        let mut w = SnapshotWriter::create(
            &dest,
            Protection::Encrypted {
                params,
                key: DataKey::from_bytes([7; 32]),
                slot: KeySlot::new("test", "k", vec![]),
            },
        )
        .unwrap();
        let body = rdb();
        w.write(&body).unwrap();
        w.commit().unwrap();
        let bytes = std::fs::read(&dest).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"MARKER"));
        assert_eq!(sniff(&dest).unwrap(), Some(Format::Encrypted));
        let mut r = &bytes[..];
        let h = rampart_kms::Header::read_from(&mut r).unwrap();
        let sk = StreamKey::from_data_key(&h, &key).unwrap();
        let mut plain = Vec::new();
        rampart_kms::EnvelopeReader::new(r, h, sk)
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(&plain[..body.len()], &body[..]);
        let mut crc = Crc64::new();
        crc.update(&body);
        assert_eq!(plain[body.len()..], crc.value().to_le_bytes());
    }

    #[test]
    fn an_unfinished_snapshot_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dump.rdb");
        std::fs::write(&dest, b"REDIS-old").unwrap();
        let mut w = SnapshotWriter::create(&dest, Protection::Plain).unwrap();
        w.write(&rdb()).unwrap();
        drop(w);
        assert_eq!(std::fs::read(&dest).unwrap(), b"REDIS-old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
