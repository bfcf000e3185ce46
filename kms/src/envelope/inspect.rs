//! Structural scan of a stream without any key: what `rampart snapshot
//! inspect` shows.

use std::io::{Read, Seek, SeekFrom};

use super::{Header, LEN_PREFIX};
use crate::Result;
use crate::cipher::TAG_LEN;

/// What a keyless scan of a stream found. Nothing here is secret.
///
/// ```
/// use std::io::{Cursor, Write};
/// use rampart_kms::*;
/// let p = EnvelopeParams::new(Payload::Snapshot, "d").with_chunk_log2(16);
/// let mut w = EnvelopeWriter::new(Vec::new(), &p, DataKey::generate().unwrap(), vec![KeySlot::new("t", "k", vec![])]).unwrap();
/// w.write_all(&vec![0u8; 70_000]).unwrap();
/// let bytes = w.finish().unwrap();
/// let report = envelope::scan(&mut Cursor::new(bytes)).unwrap();
/// assert_eq!(report.chunks, 2);
/// assert_eq!(report.plaintext_len, 70_000);
/// assert!(report.complete);
/// ```
#[derive(Debug, Clone)]
pub struct ScanReport {
    /// The parsed header and key slots.
    pub header: Header,
    /// Bytes taken by header and key slots.
    pub header_len: u64,
    /// Number of chunks found (the final one included).
    pub chunks: u64,
    /// Sum of the chunks' plaintext lengths.
    pub plaintext_len: u64,
    /// True if the final chunk is present and whole.
    pub complete: bool,
    /// Bytes after the final chunk (0 for a well-formed file).
    pub trailing: u64,
    /// Why the scan stopped early, if it did (a truncated or corrupt stream).
    pub problem: Option<String>,
}

/// Scans `r` from its current position: parses the header, walks the chunk
/// lengths by seeking, and reports. Authenticity is not checked (that needs
/// the key); this only reads the framing.
///
/// ```
/// # use std::io::Cursor;
/// assert!(rampart_kms::envelope::scan(&mut Cursor::new(b"garbage".to_vec())).is_err());
/// ```
pub fn scan<R: Read + Seek>(r: &mut R) -> Result<ScanReport> {
    let start = r.stream_position()?;
    let header = Header::read_from(r)?;
    let body_start = r.stream_position()?;
    let end = r.seek(SeekFrom::End(0))?;
    r.seek(SeekFrom::Start(body_start))?;
    let chunk_size = header.chunk_size() as u64;
    let mut report = ScanReport {
        header,
        header_len: body_start - start,
        chunks: 0,
        plaintext_len: 0,
        complete: false,
        trailing: 0,
        problem: None,
    };
    let mut pos = body_start;
    loop {
        if end - pos < LEN_PREFIX as u64 {
            report.problem = Some(format!(
                "truncated: the stream ends after {} chunk(s) without the final chunk",
                report.chunks
            ));
            break;
        }
        let mut len = [0u8; LEN_PREFIX];
        r.read_exact(&mut len)?;
        let len = u64::from(u32::from_be_bytes(len));
        if len > chunk_size {
            report.problem = Some(format!(
                "chunk {} declares {len} bytes, more than the chunk size {chunk_size}",
                report.chunks
            ));
            break;
        }
        let next = pos + LEN_PREFIX as u64 + len + TAG_LEN as u64;
        if next > end {
            report.problem = Some(format!("truncated: chunk {} is cut short", report.chunks));
            break;
        }
        report.chunks += 1;
        report.plaintext_len += len;
        pos = r.seek(SeekFrom::Start(next))?;
        if len < chunk_size {
            report.complete = true;
            report.trailing = end - pos;
            if report.trailing > 0 {
                report.problem = Some(format!(
                    "{} unexpected byte(s) after the final chunk",
                    report.trailing
                ));
            }
            break;
        }
    }
    Ok(report)
}
