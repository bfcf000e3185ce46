//! Envelope v1: round trips, self-delimiting reads, and every kind of damage
//! detected with its own error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};

use common::*;
use rampart_kms::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const C16: usize = 1 << 16;

#[test]
fn round_trip_sizes() {
    for n in [0, 1, 100, C16 - 1, C16, C16 + 1, 3 * C16, 3 * C16 + 7] {
        let pt = pattern(n);
        let stream = seal(&pt, 16);
        assert_eq!(open(&stream).unwrap(), pt, "size {n}");
        let report = envelope::scan(&mut std::io::Cursor::new(&stream)).unwrap();
        assert!(report.complete);
        assert_eq!(report.plaintext_len, n as u64);
        // A full last chunk is followed by an empty final chunk.
        assert_eq!(report.chunks, (n / C16) as u64 + 1, "size {n}");
    }
}

#[test]
fn writes_of_any_granularity_give_the_same_plaintext() {
    let pt = pattern(2 * C16 + 5);
    let mut w = EnvelopeWriter::new(
        Vec::new(),
        &params(16),
        DataKey::from_bytes(KEY),
        vec![test_slot()],
    )
    .unwrap();
    for piece in pt.chunks(777) {
        w.write_all(piece).unwrap();
    }
    let stream = w.finish().unwrap();
    assert_eq!(open(&stream).unwrap(), pt);
}

#[test]
fn reader_stops_after_final_chunk_and_leaves_the_rest() {
    let pt = pattern(C16 + 10);
    let mut stream = seal(&pt, 16);
    stream.extend_from_slice(b"+OK\r\n");
    let mut r = &stream[..];
    let h = Header::read_from(&mut r).unwrap();
    let k = StreamKey::from_data_key(&h, &DataKey::from_bytes(KEY)).unwrap();
    let mut reader = EnvelopeReader::new(r, h, k);
    let mut out = Vec::new();
    reader.read_to_end(&mut out).unwrap();
    assert_eq!(out, pt);
    assert!(reader.is_done());
    assert_eq!(reader.into_inner(), b"+OK\r\n");
}

#[test]
fn padded_stream_is_rejected_when_eof_is_required() {
    let mut stream = seal(b"data", 16);
    stream.push(0);
    let err = open(&stream).unwrap_err();
    assert!(matches!(err, Error::TrailingData), "{err}");
}

#[test]
fn every_truncation_is_an_error() {
    let stream = seal(&pattern(C16 + 300), 16);
    for cut in 0..stream.len() {
        let err = open_with(&stream[..cut], &DataKey::from_bytes(KEY), false)
            .expect_err("truncated stream accepted");
        assert!(
            matches!(
                err,
                Error::Empty | Error::HeaderTruncated | Error::Truncated { .. }
            ),
            "cut {cut}: {err}"
        );
    }
}

#[test]
fn cut_at_a_chunk_boundary_is_truncated_not_short() {
    let pt = pattern(2 * C16 + 1);
    let stream = seal(&pt, 16);
    let chunks = chunk_offsets(&stream);
    // Drop the final chunk: every remaining chunk is whole and authentic.
    let cut = &stream[..chunks[2].0];
    let err = open(cut).unwrap_err();
    assert!(matches!(err, Error::Truncated { chunks: 2 }), "{err}");
    assert!(err.to_string().contains("truncated"));
    // A consumer reading to EOF through std::io gets an error, not a short read.
    let mut r = cut;
    let h = Header::read_from(&mut r).unwrap();
    let k = StreamKey::from_data_key(&h, &DataKey::from_bytes(KEY)).unwrap();
    let io_err = EnvelopeReader::new(r, h, k)
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(io_err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn reordered_chunks_fail_authentication() {
    let stream = seal(&pattern(3 * C16 + 9), 16);
    let c = chunk_offsets(&stream);
    let mut swapped = stream[..c[0].0].to_vec();
    swapped.extend_from_slice(&stream[c[1].0..c[1].1]);
    swapped.extend_from_slice(&stream[c[0].0..c[0].1]);
    swapped.extend_from_slice(&stream[c[2].0..]);
    let err = open(&swapped).unwrap_err();
    assert!(matches!(err, Error::ChunkAuth { index: 0 }), "{err}");
    assert!(err.to_string().contains("reordered"));
}

#[test]
fn final_chunk_moved_earlier_is_detected() {
    // Swapping a full chunk for the (short) final chunk changes the
    // length-derived final flag: authentication fails.
    let stream = seal(&pattern(C16 + 5), 16);
    let c = chunk_offsets(&stream);
    let mut s = stream[..c[0].0].to_vec();
    s.extend_from_slice(&stream[c[1].0..c[1].1]);
    let err = open(&s).unwrap_err();
    assert!(matches!(err, Error::ChunkAuth { index: 0 }), "{err}");
}

#[test]
fn bit_flip_in_a_chunk_releases_no_plaintext() {
    let pt = pattern(C16 + 50);
    let mut stream = seal(&pt, 16);
    let c = chunk_offsets(&stream);
    // Flip the last tag byte of chunk 0: the first read must fail outright.
    stream[c[0].1 - 1] ^= 1;
    let mut r = &stream[..];
    let h = Header::read_from(&mut r).unwrap();
    let k = StreamKey::from_data_key(&h, &DataKey::from_bytes(KEY)).unwrap();
    let mut reader = EnvelopeReader::new(r, h, k);
    let mut buf = [0u8; 16];
    let err = reader.read(&mut buf).unwrap_err();
    assert_eq!(buf, [0u8; 16], "plaintext released before the tag verified");
    assert!(matches!(Error::from(err), Error::ChunkAuth { index: 0 }));
    // And it stays failed.
    assert!(reader.read(&mut buf).is_err());
}

#[test]
fn bit_flips_anywhere_are_detected() {
    let pt = pattern(C16 + 20);
    let stream = seal(&pt, 16);
    let (_, header_len) = Header::from_bytes(&stream).unwrap();
    for pos in (0..stream.len())
        .step_by(97)
        .chain([header_len - 1, header_len, stream.len() - 1])
    {
        let mut s = stream.clone();
        s[pos] ^= 0x10;
        match open(&s) {
            Err(_) => {}
            // The key slot is not authenticated and the raw key ignores it:
            // the only acceptable success is the exact plaintext.
            Ok(out) => assert_eq!(out, pt, "flip at {pos} gave wrong plaintext"),
        }
    }
}

#[test]
fn header_flip_fails_the_commitment() {
    let stream = seal(b"abc", 16);
    let mut s = stream.clone();
    s[20] ^= 1; // inside the salt
    assert!(matches!(open(&s).unwrap_err(), Error::WrongKey));
}

#[test]
fn wrong_key_is_reported_before_decrypting() {
    let stream = seal(b"abc", 16);
    let err = open_with(&stream, &DataKey::from_bytes([0x43; 32]), true).unwrap_err();
    assert!(matches!(err, Error::WrongKey), "{err}");
}

#[test]
fn structural_garbage_gets_specific_errors() {
    let stream = seal(b"abc", 16);
    assert!(matches!(open(b"").unwrap_err(), Error::Empty));
    assert!(matches!(open(b"REDIS0010").unwrap_err(), Error::BadMagic));
    let mut s = stream.clone();
    s[8] = 2;
    assert!(matches!(open(&s).unwrap_err(), Error::UnsupportedSuite(2)));
    let mut s = stream.clone();
    s[9] = 7;
    assert!(matches!(open(&s).unwrap_err(), Error::BadPayload(7)));
    let mut s = stream.clone();
    s[10] = 30;
    assert!(matches!(open(&s).unwrap_err(), Error::BadChunkSize(30)));
    // A chunk that claims more than the chunk size.
    let mut s = stream.clone();
    let c = chunk_offsets(&stream);
    s[c[0].0..c[0].0 + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(open(&s).unwrap_err(), Error::ChunkTooLarge { .. }));
}

#[test]
fn data_key_debug_is_redacted() {
    let k = DataKey::from_bytes([0x5a; 32]);
    let s = format!("{k:?}");
    assert!(!s.contains("5a") && !s.contains("90"), "{s}");
}

// ---- async ------------------------------------------------------------------

#[tokio::test]
async fn async_round_trip_and_no_over_read() {
    let pt = pattern(2 * C16 + 77);
    let mut w = AsyncEnvelopeWriter::new(
        Vec::new(),
        &params(16),
        DataKey::from_bytes(KEY),
        vec![test_slot()],
    )
    .unwrap();
    for piece in pt.chunks(10_000) {
        w.write_all(piece).await.unwrap();
    }
    let stream = w.finish().await.unwrap();
    // The async writer produces exactly what the blocking one reads.
    assert_eq!(open(&stream).unwrap(), pt);

    // Over a socket-like pipe with commands after the stream, delivered in
    // small pieces: the reader must stop exactly at the end of the envelope.
    let (mut tx, mut rx) = tokio::io::duplex(1000);
    let mut wire = stream.clone();
    wire.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let writer = tokio::spawn(async move {
        for piece in wire.chunks(333) {
            tx.write_all(piece).await.unwrap();
        }
        // Keep the pipe open: a reader that over-reads would block here.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(tx);
    });
    let h = Header::read_from_async(&mut rx).await.unwrap();
    let k = StreamKey::from_data_key(&h, &DataKey::from_bytes(KEY)).unwrap();
    let mut reader = AsyncEnvelopeReader::new(rx, h, k);
    let out = reader.read_all().await.unwrap();
    assert_eq!(out, pt);
    assert!(reader.is_done());
    let mut rest = [0u8; 14];
    reader.into_inner().read_exact(&mut rest).await.unwrap();
    assert_eq!(&rest, b"*1\r\n$4\r\nPING\r\n");
    writer.await.unwrap();
}

#[tokio::test]
async fn async_truncation_and_corruption() {
    let stream = seal(&pattern(C16 + 3), 16);
    let c = chunk_offsets(&stream);
    for (cut, want_trunc) in [(c[1].0, true), (c[1].0 + 2, true), (stream.len() - 1, true)] {
        let mut r = &stream[..cut];
        let h = Header::read_from_async(&mut r).await.unwrap();
        let k = StreamKey::from_data_key(&h, &DataKey::from_bytes(KEY)).unwrap();
        let err = AsyncEnvelopeReader::new(r, h, k)
            .read_all()
            .await
            .unwrap_err();
        assert_eq!(matches!(err, Error::Truncated { .. }), want_trunc, "{err}");
    }
    let mut s = stream.clone();
    s[c[1].0 + 5] ^= 0x80;
    let mut r = &s[..];
    let h = Header::read_from_async(&mut r).await.unwrap();
    let k = StreamKey::from_data_key(&h, &DataKey::from_bytes(KEY)).unwrap();
    let err = AsyncEnvelopeReader::new(r, h, k)
        .read_all()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChunkAuth { index: 1 }), "{err}");
}

#[tokio::test]
async fn async_writer_shutdown_finishes_the_stream() {
    let mut w = AsyncEnvelopeWriter::new(
        Vec::new(),
        &params(16),
        DataKey::from_bytes(KEY),
        vec![test_slot()],
    )
    .unwrap();
    w.write_all(b"x").await.unwrap();
    w.shutdown().await.unwrap();
    assert!(w.write_all(b"more").await.is_err());
}

#[test]
fn dropped_writer_leaves_a_truncated_stream() {
    let mut out = Vec::new();
    {
        let mut w = EnvelopeWriter::new(
            &mut out,
            &params(16),
            DataKey::from_bytes(KEY),
            vec![test_slot()],
        )
        .unwrap();
        w.write_all(&pattern(C16 + 1)).unwrap();
        // no finish()
    }
    assert!(matches!(
        open(&out).unwrap_err(),
        Error::Truncated { chunks: 1 }
    ));
}

// ---- test vectors -----------------------------------------------------------

#[derive(serde::Deserialize)]
struct Vectors {
    vectors: Vec<Vector>,
}

#[derive(serde::Deserialize)]
struct VSlot {
    provider: String,
    key_id: String,
    wrapped: String,
}

#[derive(serde::Deserialize)]
struct PatternSpec {
    len: usize,
}

#[derive(serde::Deserialize)]
struct Vector {
    name: String,
    data_key: String,
    salt: String,
    payload: u8,
    chunk_log2: u8,
    context: Vec<(String, String)>,
    slots: Vec<VSlot>,
    commitment: String,
    stream_len: usize,
    stream_sha256: String,
    plaintext: Option<String>,
    plaintext_pattern: Option<PatternSpec>,
    stream: Option<String>,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
}

#[test]
fn test_vectors_match_byte_for_byte() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/envelope_v1.json"
    ))
    .unwrap();
    let vs: Vectors = serde_json::from_str(&text).unwrap();
    assert!(vs.vectors.len() >= 4);
    for v in vs.vectors {
        let key: [u8; 32] = hex::decode(&v.data_key).unwrap().try_into().unwrap();
        let salt: [u8; 32] = hex::decode(&v.salt).unwrap().try_into().unwrap();
        let pt = match (&v.plaintext, &v.plaintext_pattern) {
            (Some(h), _) => hex::decode(h).unwrap(),
            (None, Some(p)) => pattern(p.len),
            _ => panic!("vector {} has no plaintext", v.name),
        };
        let pairs: Vec<(&str, &str)> = v
            .context
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let params =
            EnvelopeParams::from_pairs(Payload::from_u8(v.payload).unwrap(), v.chunk_log2, &pairs);
        let slots = v
            .slots
            .iter()
            .map(|s| {
                KeySlot::new(
                    s.provider.clone(),
                    s.key_id.clone(),
                    hex::decode(&s.wrapped).unwrap(),
                )
            })
            .collect();
        let mut w =
            EnvelopeWriter::with_salt(Vec::new(), &params, DataKey::from_bytes(key), slots, salt)
                .unwrap();
        w.write_all(&pt).unwrap();
        let stream = w.finish().unwrap();
        assert_eq!(stream.len(), v.stream_len, "{}", v.name);
        assert_eq!(sha256_hex(&stream), v.stream_sha256, "{}", v.name);
        if let Some(h) = &v.stream {
            assert_eq!(hex::encode(&stream), *h, "{}", v.name);
        }
        let (header, _) = Header::from_bytes(&stream).unwrap();
        assert_eq!(hex::encode(header.commitment), v.commitment, "{}", v.name);
        assert_eq!(
            open_with(&stream, &DataKey::from_bytes(key), true).unwrap(),
            pt,
            "{}",
            v.name
        );
    }
}

/// Reads with a buffer larger than a chunk: the reader's direct path.
fn read_big(stream: &[u8]) -> (Result<Vec<u8>>, Vec<u8>) {
    let mut r = stream;
    let h = Header::read_from(&mut r).unwrap();
    let k = StreamKey::from_data_key(&h, &DataKey::from_bytes(KEY)).unwrap();
    let mut reader = EnvelopeReader::new(r, h, k).require_eof(true);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 3 * C16];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (Ok(out), buf),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (Err(Error::from(e)), buf),
        }
    }
}

#[test]
fn direct_path_round_trips_and_fails_closed() {
    let pt = pattern(3 * C16 + 11);
    let stream = seal(&pt, 16);
    assert_eq!(read_big(&stream).0.unwrap(), pt);

    let c = chunk_offsets(&stream);
    let mut s = stream.clone();
    s[c[1].0 + 100] ^= 1;
    let (r, buf) = read_big(&s);
    assert!(matches!(r, Err(Error::ChunkAuth { index: 1 })));
    assert!(
        buf[..C16].iter().all(|&b| b == 0),
        "unverified plaintext left in the caller's buffer"
    );

    let (r, _) = read_big(&stream[..c[2].0 + 500]);
    assert!(matches!(r, Err(Error::Truncated { chunks: 2 })), "{r:?}");
    let mut padded = stream.clone();
    padded.push(1);
    assert!(matches!(read_big(&padded).0, Err(Error::TrailingData)));
}
