//! Envelope throughput beside raw AES-256-GCM (ring and RustCrypto
//! `aes-gcm`), single thread. Run through `bench/envelope.sh`, or:
//!
//! `cargo run --release -p rampart-kms --example envelope_bench -- [MiB]`
//!
//! Prints figures; asserts nothing (benchmarks are not tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::time::Instant;

use aes_gcm::aead::{AeadInOut, KeyInit};
use rampart_kms::*;

fn gbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e9
}

fn raw_ring(total: u64, buf_len: usize, open: bool) -> f64 {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let mut buf = vec![0x5au8; buf_len];
    let iters = total / buf_len as u64;
    // For open, seal once and decrypt the same ciphertext each time (the
    // tag must verify, so re-encrypt after each in-place decrypt is avoided
    // by keeping a pristine copy).
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::empty(),
            &mut buf,
        )
        .unwrap();
    let pristine = buf.clone();
    let t = Instant::now();
    for i in 0..iters {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&i.to_be_bytes());
        if open {
            key.open_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::empty(),
                tag,
                &mut buf,
                0..,
            )
            .unwrap();
            buf.copy_from_slice(&pristine);
        } else {
            let tag = key
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), &mut buf)
                .unwrap();
            let _ = std::hint::black_box(tag);
        }
    }
    gbps(iters * buf_len as u64, t.elapsed().as_secs_f64())
}

/// Raw ring open over a 1 GiB buffer in memory, chunk by chunk in place:
/// the ceiling for a reader whose input comes from RAM rather than cache.
fn raw_ring_open_stream(total: u64, chunk: usize) -> f64 {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let mut data = vec![0x5au8; total as usize];
    let nonce = |i: usize| {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&(i as u64).to_be_bytes());
        Nonce::assume_unique_for_key(n)
    };
    let tags: Vec<_> = data
        .chunks_mut(chunk)
        .enumerate()
        .map(|(i, c)| {
            key.seal_in_place_separate_tag(nonce(i), Aad::empty(), c)
                .unwrap()
        })
        .collect();
    let t = Instant::now();
    for (i, c) in data.chunks_mut(chunk).enumerate() {
        key.open_in_place_separate_tag(nonce(i), Aad::empty(), tags[i], c, 0..)
            .unwrap();
    }
    gbps(total, t.elapsed().as_secs_f64())
}

/// Raw ring open as a streaming reader must do it: copy each chunk from a
/// 1 GiB buffer in RAM into a working buffer (what `read` does), then open
/// it there. The floor for any `Read`-based decryptor.
fn raw_ring_copy_open(total: u64, chunk: usize) -> f64 {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).unwrap());
    let mut data = vec![0x5au8; total as usize];
    let nonce = |i: usize| {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&(i as u64).to_be_bytes());
        Nonce::assume_unique_for_key(n)
    };
    let tags: Vec<_> = data
        .chunks_mut(chunk)
        .enumerate()
        .map(|(i, c)| {
            key.seal_in_place_separate_tag(nonce(i), Aad::empty(), c)
                .unwrap()
        })
        .collect();
    let mut work = vec![0u8; chunk];
    let t = Instant::now();
    for (i, c) in data.chunks(chunk).enumerate() {
        work.copy_from_slice(c);
        key.open_in_place_separate_tag(nonce(i), Aad::empty(), tags[i], &mut work, 0..)
            .unwrap();
    }
    gbps(total, t.elapsed().as_secs_f64())
}

fn raw_rustcrypto(total: u64, buf_len: usize) -> f64 {
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
    let mut buf = vec![0x5au8; buf_len];
    let iters = total / buf_len as u64;
    let t = Instant::now();
    for i in 0..iters {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&i.to_be_bytes());
        let nonce = aes_gcm::Nonce::from(n);
        let tag = cipher
            .encrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into())
            .unwrap();
        let _ = std::hint::black_box(tag);
    }
    gbps(iters * buf_len as u64, t.elapsed().as_secs_f64())
}

/// Counts what it is given: the destination costs nothing, so the figure is
/// the envelope's own cost (a file or socket adds its own).
struct Sink(u64);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn write_stream<W: Write>(out: W, total: u64, chunk_log2: u8) -> W {
    let params = EnvelopeParams::new(Payload::Snapshot, "bench").with_chunk_log2(chunk_log2);
    let slot = KeySlot::new("bench", "k", vec![]);
    let src = vec![0x5au8; 1 << 20];
    let mut w =
        EnvelopeWriter::new(out, &params, DataKey::from_bytes([9; 32]), vec![slot]).unwrap();
    let mut left = total;
    while left > 0 {
        let n = left.min(src.len() as u64) as usize;
        w.write_all(&src[..n]).unwrap();
        left -= n as u64;
    }
    w.finish().unwrap()
}

fn envelope_encrypt(total: u64, chunk_log2: u8) -> f64 {
    let t = Instant::now();
    let sink = write_stream(Sink(0), total, chunk_log2);
    let secs = t.elapsed().as_secs_f64();
    assert!(sink.0 > total);
    gbps(total, secs)
}

fn envelope_decrypt(stream: &[u8], total: u64) -> f64 {
    let t = Instant::now();
    let mut r = stream;
    let h = Header::read_from(&mut r).unwrap();
    let k = StreamKey::from_data_key(&h, &DataKey::from_bytes([9; 32])).unwrap();
    let mut reader = EnvelopeReader::new(r, h, k);
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = reader.read(&mut buf).unwrap();
        if got == 0 {
            break;
        }
        n += got as u64;
    }
    assert_eq!(n, total);
    gbps(total, t.elapsed().as_secs_f64())
}

/// Best of `n` runs: the machine is shared, the best run is the one least
/// disturbed.
fn best(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..n).map(|_| f()).fold(0.0, f64::max)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1024);
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let total = mib << 20;
    println!(
        "data: {mib} MiB per run, one thread, {runs} runs; GB/s = best run, % = median of paired runs"
    );
    let rc64 = best(runs, || raw_rustcrypto(total, 1 << 16));
    let rc1m = best(runs, || raw_rustcrypto(total, 1 << 20));
    println!("raw aes-gcm (RustCrypto) seal: 64 KiB {rc64:5.2} GB/s   1 MiB {rc1m:5.2} GB/s");
    for chunk_log2 in [16u8, 20] {
        let len = 1usize << chunk_log2;
        let label = if chunk_log2 == 16 { "64 KiB" } else { "1 MiB" };
        let stream = write_stream(
            Vec::with_capacity(total as usize + (1 << 24)),
            total,
            chunk_log2,
        );
        let (mut seal, mut open, mut copen, mut enc, mut dec) =
            (vec![], vec![], vec![], vec![], vec![]);
        // Raw and envelope back to back in each run, so a busy moment on the
        // shared machine hits both sides of a ratio alike.
        for _ in 0..runs {
            seal.push(raw_ring(total, len, false));
            open.push(raw_ring_open_stream(total, len));
            copen.push(raw_ring_copy_open(total, len));
            enc.push(envelope_encrypt(total, chunk_log2));
            dec.push(envelope_decrypt(&stream, total));
        }
        let ratio =
            |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| 100.0 * x / y).collect());
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        println!(
            "{label:>6} chunks: raw ring seal {:5.2} GB/s, open in place (1 GiB in RAM) {:5.2} GB/s, \
             copy+open (1 GiB in RAM) {:5.2} GB/s\n               envelope encrypt {:5.2} GB/s ({:3.0}% of raw seal)   \
             decrypt {:5.2} GB/s ({:3.0}% of raw seal, {:3.0}% of open in place, {:3.0}% of copy+open)",
            max(&seal),
            max(&open),
            max(&copen),
            max(&enc),
            ratio(&enc, &seal),
            max(&dec),
            ratio(&dec, &seal),
            ratio(&dec, &open),
            ratio(&dec, &copen),
        );
    }
}
