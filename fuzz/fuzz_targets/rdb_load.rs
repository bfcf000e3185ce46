//! Arbitrary bytes as an RDB file and as a RESTORE payload: never a panic,
//! never an allocation the bytes do not back. The first byte picks how the
//! rest is used, so the fuzzer also reaches the value decoders past the
//! header and the CRC checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_keyspace::{EncodingLimits, Value};
use rampart_persistence::rdb::{self, Crc64, LoadSink, RdbError};

struct Discard;

impl LoadSink for Discard {
    fn entry(&mut self, _: usize, _: &[u8], _: Value, _: Option<u64>) -> Result<(), RdbError> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let limits = EncodingLimits::default();
    match mode % 4 {
        // The bytes as they are.
        0 => {
            let _ = rdb::load(rest, &limits, &mut Discard);
            let _ = rdb::restore_value(rest, &limits);
        }
        // A file body after a valid magic, unchecked trailer.
        1 => {
            let mut f = b"REDIS0010".to_vec();
            f.extend_from_slice(rest);
            f.push(255);
            f.extend_from_slice(&[0; 8]);
            let _ = rdb::load(&f[..], &limits, &mut Discard);
        }
        // A DUMP payload with a valid footer.
        _ => {
            let mut p = rest.to_vec();
            p.extend_from_slice(&rdb::RDB_VERSION.to_le_bytes());
            let crc = Crc64::checksum(&p);
            p.extend_from_slice(&crc.to_le_bytes());
            if let Ok(v) = rdb::restore_value(&p, &limits) {
                // Whatever decodes must encode and decode again.
                let again = rdb::dump_value(&v);
                assert!(rdb::restore_value(&again, &limits).is_ok());
            }
        }
    }
});
