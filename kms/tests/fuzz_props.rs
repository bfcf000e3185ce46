//! Property tests standing in for fuzzing (cargo-fuzz needs nightly): the
//! envelope reader and the keyring parser never panic on hostile input and
//! never hand out wrong plaintext.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;

use common::*;
use proptest::prelude::*;
use rampart_kms::*;

/// Reads everything with the test key through the blocking and the async
/// reader; both must agree.
fn read_both(stream: &[u8]) -> (Result<Vec<u8>>, Result<Vec<u8>>) {
    let blocking = open(stream);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let asynchronous = rt.block_on(async {
        let mut r = stream;
        let h = Header::read_from_async(&mut r).await?;
        let k = StreamKey::from_data_key(&h, &DataKey::from_bytes(KEY))?;
        AsyncEnvelopeReader::new(r, h, k)
            .require_eof(true)
            .read_all()
            .await
    });
    (blocking, asynchronous)
}

fn sample_stream() -> (Vec<u8>, Vec<u8>) {
    let pt = pattern(2 * (1 << 16) + 333);
    (seal(&pt, 16), pt)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Header::from_bytes(&data);
        let _ = Header::read_from(&mut &data[..]);
        prop_assert!(open(&data).is_err());
    }

    #[test]
    fn random_bytes_after_magic_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut s = b"RAMPART\x01\x01\x01\x10".to_vec();
        s.extend_from_slice(&data);
        let _ = Header::from_bytes(&s);
        prop_assert!(open(&s).is_err());
    }

    #[test]
    fn mutations_never_yield_wrong_plaintext(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8)
    ) {
        let (stream, pt) = sample_stream();
        let mut s = stream.clone();
        for (idx, x) in &flips {
            let i = idx.index(s.len());
            s[i] ^= x;
        }
        let (b, a) = read_both(&s);
        // Slots are not authenticated and this reader uses a raw key, so a
        // flip that only touches a slot's blob may still read correctly;
        // anything else must fail. Never different plaintext.
        for out in [b, a].into_iter().flatten() {
            prop_assert_eq!(&out, &pt);
        }
    }

    #[test]
    fn truncation_or_padding_always_fails(cut in any::<prop::sample::Index>(), pad in proptest::collection::vec(any::<u8>(), 1..64)) {
        let (stream, _) = sample_stream();
        let c = cut.index(stream.len());
        let (b, a) = read_both(&stream[..c]);
        prop_assert!(b.is_err() && a.is_err());
        let mut padded = stream.clone();
        padded.extend_from_slice(&pad);
        let (b, a) = read_both(&padded);
        prop_assert!(matches!(b, Err(Error::TrailingData)));
        prop_assert!(matches!(a, Err(Error::TrailingData)));
    }

    #[test]
    fn splices_of_two_streams_fail(cut_a in any::<prop::sample::Index>(), cut_b in any::<prop::sample::Index>()) {
        let (a, pt) = sample_stream();
        let (b, _) = sample_stream();
        let ca = cut_a.index(a.len());
        let cb = cut_b.index(b.len());
        let mut s = a[..ca].to_vec();
        s.extend_from_slice(&b[cb..]);
        let (b, a) = read_both(&s);
        // Only the trivial splice (a whole stream) may succeed.
        for out in [b, a].into_iter().flatten() {
            prop_assert_eq!(&out, &pt);
        }
    }

    #[test]
    fn scan_never_panics(data in proptest::collection::vec(any::<u8>(), 0..1024), keep in any::<prop::sample::Index>()) {
        let (stream, _) = sample_stream();
        let k = keep.index(stream.len());
        let mut s = stream[..k].to_vec();
        s.extend_from_slice(&data);
        let _ = envelope::scan(&mut std::io::Cursor::new(s));
    }

    #[test]
    fn keyring_parser_never_panics_on_bytes(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        prop_assert!(LocalKeyring::from_json("fuzz".as_ref(), &data).is_err());
    }

    #[test]
    fn keyring_parser_never_panics_on_mutated_json(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
    ) {
        let mut json = keyring_json().into_bytes();
        for (idx, b) in &flips {
            let i = idx.index(json.len());
            json[i] = *b;
        }
        let _ = LocalKeyring::from_json("fuzz".as_ref(), &json);
    }

    #[test]
    fn keyring_parser_handles_structured_garbage(
        version in any::<u32>(), primary in any::<u32>(), state in "[a-z]{0,9}", material in "[A-Za-z0-9+/=]{0,60}", id in ".{0,70}"
    ) {
        let json = serde_json::json!({
            "format": "rampart-keyring", "format_version": 1, "id": id, "primary": primary,
            "keys": [{"version": version, "state": state, "created": "x", "material": material}]
        });
        let _ = LocalKeyring::from_json("fuzz".as_ref(), json.to_string().as_bytes());
    }
}

fn keyring_json() -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    let mut ring = LocalKeyring::init(&path).unwrap();
    ring.rotate().unwrap();
    ring.disable(1).unwrap();
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn blocking_read_in_tiny_pieces_matches() {
    let (stream, pt) = sample_stream();
    let mut r = &stream[..];
    let h = Header::read_from(&mut r).unwrap();
    let k = StreamKey::from_data_key(&h, &DataKey::from_bytes(KEY)).unwrap();
    let mut reader = EnvelopeReader::new(r, h, k);
    let mut out = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(out, pt);
}
