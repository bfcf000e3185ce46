//! Arbitrary bytes as client input to the request parser, fed in two
//! pieces: never a panic, never a loop without progress.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rampart_server::resp::{Limits, Parser};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bulk: 512 * 1024 * 1024,
        unauthenticated: data.first().is_some_and(|b| b & 1 == 1),
    };
    let cut = data.len() / 2;
    let mut parser = Parser::default();
    let mut buf = BytesMut::new();
    for piece in [&data[..cut], &data[cut..]] {
        buf.extend_from_slice(piece);
        for _ in 0..data.len() + 2 {
            match parser.next(&mut buf, limits) {
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
    }
});
