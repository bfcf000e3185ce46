//! Arbitrary bytes as cluster bus traffic: whole messages to `decode` and a
//! stream to the `Framer`, fed in two pieces. Never a panic; whatever
//! `decode` accepts re-encodes to the same bytes (the codec is lossless), and
//! the framer only hands out frames whose length is their `totlen`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_cluster::msg::{decode, encode, Framer};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode(data) {
        assert_eq!(encode(&msg), data);
    }
    // A small limit so that length checks, not memory, bound the framer.
    let mut framer = Framer::new(1 << 16);
    let cut = data.len() / 3;
    for piece in [&data[..cut], &data[cut..]] {
        framer.push(piece);
        while let Ok(Some(frame)) = framer.next_frame() {
            let totlen = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            assert_eq!(totlen as usize, frame.len());
            if let Ok(msg) = decode(&frame) {
                assert_eq!(encode(&msg), frame);
            }
        }
    }
});
