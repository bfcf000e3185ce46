//! Truncated and corrupted versions of messages redis-server 7.0 really sent
//! (captured by tests/redis_bus.rs with RAMPART_WRITE_BUS_FIXTURES=1 and kept
//! in tests/data): decode must return an error, never panic, and whatever it
//! accepts must re-encode to the very same bytes.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use rampart_cluster::msg::{
    decode, encode, frame_len, msg_type, Body, DecodeError, Framer, DEFAULT_MAX_MSG_LEN,
    GOSSIP_LEN, HEADER_LEN, MFLAG0_EXT_DATA,
};

const CAPTURED: &[(&str, &[u8])] = &[
    ("ping", include_bytes!("data/type00.bin")),
    ("pong", include_bytes!("data/type01.bin")),
    ("meet", include_bytes!("data/type02.bin")),
    ("fail", include_bytes!("data/type03.bin")),
    ("publish", include_bytes!("data/type04.bin")),
    ("auth_request", include_bytes!("data/type05.bin")),
    ("auth_ack", include_bytes!("data/type06.bin")),
    ("update", include_bytes!("data/type07.bin")),
    ("mfstart", include_bytes!("data/type08.bin")),
    ("publishshard", include_bytes!("data/type10.bin")),
];

/// Decoding must not panic; if it accepts, encoding gives the input back.
fn decode_checked(bytes: &[u8]) -> Result<(), DecodeError> {
    let msg = decode(bytes)?;
    assert_eq!(encode(&msg), bytes, "accepted input must round-trip");
    Ok(())
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn captured_messages_decode_and_roundtrip() {
    for (name, bytes) in CAPTURED {
        let msg = decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(encode(&msg), *bytes, "{name}");
        let mut f = Framer::new(DEFAULT_MAX_MSG_LEN);
        f.push(bytes);
        assert_eq!(f.next_frame(), Ok(Some(bytes.to_vec())), "{name}");
    }
    // The PING kept is one with gossip and the hostname extension.
    let ping = decode(CAPTURED[0].1).unwrap();
    let p = ping.body.ping().unwrap();
    assert!(!p.gossip.is_empty() && !p.extensions.is_empty());
    assert_eq!(
        decode(CAPTURED[7].1).unwrap().body.msg_type(),
        msg_type::UPDATE
    );
}

#[test]
fn every_truncation_is_an_error() {
    for (name, bytes) in CAPTURED {
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            assert!(decode_checked(cut).is_err(), "{name} cut to {len}");
            // The framer waits for the rest (or refuses a bad start).
            let mut f = Framer::new(DEFAULT_MAX_MSG_LEN);
            f.push(cut);
            assert_eq!(f.next_frame(), Ok(None), "{name} cut to {len}");
        }
    }
}

#[test]
fn extra_bytes_are_an_error() {
    for (name, bytes) in CAPTURED {
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(&[0; 8]);
        assert!(
            matches!(decode(&longer), Err(DecodeError::TrailingBytes { .. })),
            "{name}"
        );
        // Claiming the extra bytes in totlen: now the body length is wrong.
        let n = longer.len() as u32;
        set_u32(&mut longer, 4, n);
        assert!(
            matches!(decode(&longer), Err(DecodeError::BodyLength { .. })),
            "{name}"
        );
    }
}

#[test]
fn every_single_byte_corruption_is_refused_or_lossless() {
    for (name, bytes) in CAPTURED {
        for pos in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.to_vec();
                b[pos] ^= mask;
                let r = decode_checked(&b);
                // Fields every message's length depends on must be refused.
                let must_fail = pos < 10;
                assert!(!must_fail || r.is_err(), "{name}: byte {pos} ^ {mask:#x}");
            }
        }
    }
}

#[test]
fn corrupted_counts_and_lengths_are_refused() {
    for (name, bytes) in CAPTURED {
        let msg = decode(bytes).unwrap();
        match &msg.body {
            Body::Ping(p) | Body::Pong(p) | Body::Meet(p) => {
                for count in [p.gossip.len() + 1, p.gossip.len().wrapping_sub(1), 0xffff] {
                    let mut b = bytes.to_vec();
                    b[14..16].copy_from_slice(&(count as u16).to_be_bytes());
                    assert!(decode(&b).is_err(), "{name} count {count}");
                }
                if !p.extensions.is_empty() {
                    let ext = HEADER_LEN + p.gossip.len() * GOSSIP_LEN;
                    for bad in [0u32, 7, 8 * 1024, u32::MAX] {
                        let mut b = bytes.to_vec();
                        set_u32(&mut b, ext, bad);
                        assert!(decode(&b).is_err(), "{name} ext len {bad}");
                    }
                    let mut b = bytes.to_vec();
                    b[2253] &= !MFLAG0_EXT_DATA;
                    assert!(decode(&b).is_err(), "{name} without the ext flag");
                    let mut b = bytes.to_vec();
                    b[2214..2216].copy_from_slice(&(p.extensions.len() as u16 + 1).to_be_bytes());
                    assert!(decode(&b).is_err(), "{name} one extension too many");
                }
            }
            Body::Publish { .. } | Body::PublishShard { .. } => {
                for (at, v) in [(0, u32::MAX), (4, u32::MAX), (0, 0), (4, 1 << 31)] {
                    let mut b = bytes.to_vec();
                    set_u32(&mut b, HEADER_LEN + at, v);
                    assert!(decode(&b).is_err(), "{name} length at {at} = {v}");
                }
            }
            _ => {}
        }
        // A totlen below the header is refused by the framer as by Redis.
        let mut b = bytes.to_vec();
        set_u32(&mut b, 4, HEADER_LEN as u32 - 1);
        assert!(frame_len(&b, DEFAULT_MAX_MSG_LEN).is_err(), "{name}");
        assert!(
            matches!(decode(&b), Err(DecodeError::TooShort(_))),
            "{name}"
        );
    }
}

#[test]
fn random_corruption_never_panics() {
    // A small deterministic generator keeps this test's inputs the same on
    // every run (the fuzz target explores further).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (_, bytes) in CAPTURED {
        for _ in 0..2000 {
            let mut b = bytes.to_vec();
            for _ in 0..(next() % 8 + 1) {
                let pos = (next() as usize) % b.len();
                b[pos] = next() as u8;
            }
            let cut = (next() as usize) % (b.len() + 1);
            let _ = decode_checked(&b);
            let _ = decode_checked(&b[..cut]);
        }
    }
}
