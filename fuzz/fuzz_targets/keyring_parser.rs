//! Arbitrary bytes as a keyring file: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rampart_kms::LocalKeyring::from_json("fuzz".as_ref(), data);
});
