//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;

use rampart_kms::*;

pub const KEY: [u8; 32] = [0x42; 32];

pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

pub fn params(chunk_log2: u8) -> EnvelopeParams {
    EnvelopeParams::from_pairs(
        Payload::Snapshot,
        chunk_log2,
        &[("dataset", "test"), ("node", "n1")],
    )
}

pub fn test_slot() -> KeySlot {
    KeySlot::new("test", "raw", vec![0xAB; 8])
}

/// Encrypts `plaintext` under the fixed test key.
pub fn seal(plaintext: &[u8], chunk_log2: u8) -> Vec<u8> {
    let mut w = EnvelopeWriter::new(
        Vec::new(),
        &params(chunk_log2),
        DataKey::from_bytes(KEY),
        vec![test_slot()],
    )
    .unwrap();
    w.write_all(plaintext).unwrap();
    w.finish().unwrap()
}

/// Decrypts with the fixed test key; the crate error on failure.
pub fn open(stream: &[u8]) -> Result<Vec<u8>> {
    open_with(stream, &DataKey::from_bytes(KEY), true)
}

pub fn open_with(stream: &[u8], key: &DataKey, require_eof: bool) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut r = stream;
    let header = Header::read_from(&mut r)?;
    let sk = StreamKey::from_data_key(&header, key)?;
    let mut reader = EnvelopeReader::new(r, header, sk).require_eof(require_eof);
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(Error::from)?;
    Ok(out)
}

/// Byte offsets of each chunk (start of its length prefix) in `stream`.
pub fn chunk_offsets(stream: &[u8]) -> Vec<(usize, usize)> {
    let (h, mut pos) = Header::from_bytes(stream).unwrap();
    let mut out = Vec::new();
    loop {
        let len = u32::from_be_bytes(stream[pos..pos + 4].try_into().unwrap()) as usize;
        let end = pos + 4 + len + 16;
        out.push((pos, end));
        pos = end;
        if len < h.chunk_size() {
            return out;
        }
    }
}

/// The `rampart` binary, built by the server crate (`cargo build --bins`,
/// which `scripts/test.sh` runs before the tests); `RAMPART_CLI` overrides.
pub fn rampart_bin() -> std::path::PathBuf {
    let path = std::env::var_os("RAMPART_CLI")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/rampart")
        });
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}
