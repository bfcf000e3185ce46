//! Arbitrary bytes through the header parser, the keyless scan and the
//! blocking reader with a fixed key: never a panic.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use rampart_kms::{envelope, DataKey, EnvelopeReader, Header, StreamKey};

fuzz_target!(|data: &[u8]| {
    let _ = Header::from_bytes(data);
    let _ = envelope::scan(&mut std::io::Cursor::new(data));
    let mut r = data;
    if let Ok(h) = Header::read_from(&mut r) {
        if let Ok(k) = StreamKey::from_data_key(&h, &DataKey::from_bytes([0x42; 32])) {
            let _ = EnvelopeReader::new(r, h, k).require_eof(true).read_to_end(&mut Vec::new());
        }
    }
});
