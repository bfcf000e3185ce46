//! Property tests standing in for a fuzzer (cargo-fuzz needs a nightly
//! toolchain): the request parser and the inline splitter never panic on
//! any bytes, always make progress, and agree with an independent RESP
//! implementation (the `redis-protocol` crate) on what a request is; the
//! reply writer produces frames that crate decodes back to the same values.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rampart_server::resp::{split_args, Limits, Out, Parser};

const LIMITS: Limits = Limits {
    max_bulk: 512 * 1024 * 1024,
    unauthenticated: false,
};

fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes, fed in arbitrary pieces: no panic, and every call
    /// either returns a command, asks for more, or reports an error.
    #[test]
    fn parser_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048), cut in 0usize..2048) {
        let mut p = Parser::default();
        let mut buf = BytesMut::new();
        let cut = cut.min(data.len());
        for piece in [&data[..cut], &data[cut..]] {
            buf.extend_from_slice(piece);
            let mut guard = 0;
            loop {
                guard += 1;
                prop_assert!(guard < 10_000, "parser made no progress");
                match p.next(&mut buf, LIMITS) {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }

    /// Mutated valid requests: still no panic.
    #[test]
    fn mutated_requests_never_panic(
        args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    ) {
        let mut wire = encode(&args);
        for (i, b) in flips {
            let n = wire.len();
            wire[i % n] = b;
        }
        let mut p = Parser::default();
        let mut buf = BytesMut::from(&wire[..]);
        for _ in 0..16 {
            match p.next(&mut buf, LIMITS) {
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
    }

    /// A well-formed request parses to exactly its arguments, whatever the
    /// split points, and redis-protocol decodes the same bytes to the same
    /// array of bulk strings.
    #[test]
    fn valid_requests_round_trip(
        args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
        cut in any::<usize>(),
    ) {
        let wire = encode(&args);
        let (frame, used) = redis_protocol::resp2::decode::decode(&wire)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?
            .ok_or_else(|| TestCaseError::fail("incomplete"))?;
        prop_assert_eq!(used, wire.len());
        match frame {
            redis_protocol::resp2::types::OwnedFrame::Array(items) => {
                prop_assert_eq!(items.len(), args.len());
            }
            other => prop_assert!(false, "not an array: {:?}", other),
        }
        let cut = cut % (wire.len() + 1);
        let mut p = Parser::default();
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut got = p.next(&mut buf, LIMITS).map_err(|e| TestCaseError::fail(e.0))?;
        if got.is_none() {
            buf.extend_from_slice(&wire[cut..]);
            got = p.next(&mut buf, LIMITS).map_err(|e| TestCaseError::fail(e.0))?;
        }
        let got: Vec<Vec<u8>> = got.unwrap_or_default().iter().map(|b: &Bytes| b.to_vec()).collect();
        prop_assert_eq!(got, args);
        prop_assert!(buf.is_empty());
    }

    /// Inline splitting never panics.
    #[test]
    fn inline_requests_split_as_split_args(
        line in proptest::collection::vec(prop::sample::select(b"ab \t\r\"'\\x0\x0b\x0c\x00".to_vec()), 1..40),
    ) {
        // The parser's copy-free path for plain words and `split_args`
        // agree on every line (a leading '*' would make it multibulk).
        prop_assume!(line[0] != b'*' && !line.contains(&b'\n'));
        let mut wire = line.clone();
        wire.push(b'\n');
        let mut buf = BytesMut::from(&wire[..]);
        let got = Parser::default().next(&mut buf, LIMITS);
        let mut body = &line[..];
        if body.last() == Some(&b'\r') {
            body = &body[..body.len() - 1];
        }
        match split_args(body) {
            Some(want) if want.is_empty() => prop_assert!(matches!(got, Ok(None))),
            Some(want) => {
                let got: Vec<Vec<u8>> = got.unwrap().unwrap().iter().map(|b| b.to_vec()).collect();
                prop_assert_eq!(got, want);
            }
            None => prop_assert!(got.is_err()),
        }
    }

    #[test]
    fn split_args_never_panics(line in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = split_args(&line);
    }

    /// Bulk replies and integers written by `Out` decode, with
    /// redis-protocol, to the same values in RESP2 and RESP3.
    #[test]
    fn replies_decode_with_an_independent_codec(
        items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
        n in any::<i64>(),
    ) {
        for proto in [2u8, 3] {
            let mut o = Out::new(proto);
            o.array(items.len() + 1);
            for i in &items {
                o.bulk(i);
            }
            o.int(n);
            if proto == 2 {
                let (frame, used) = redis_protocol::resp2::decode::decode(o.buf())
                    .map_err(|e| TestCaseError::fail(format!("{e:?}")))?
                    .ok_or_else(|| TestCaseError::fail("incomplete"))?;
                prop_assert_eq!(used, o.len());
                let redis_protocol::resp2::types::OwnedFrame::Array(f) = frame else {
                    return Err(TestCaseError::fail("not an array"));
                };
                for (a, b) in f.iter().zip(items.iter()) {
                    prop_assert_eq!(a, &redis_protocol::resp2::types::OwnedFrame::BulkString(b.clone()));
                }
                prop_assert_eq!(f.last(), Some(&redis_protocol::resp2::types::OwnedFrame::Integer(n)));
            } else {
                let (frame, used) = redis_protocol::resp3::decode::complete::decode(o.buf())
                    .map_err(|e| TestCaseError::fail(format!("{e:?}")))?
                    .ok_or_else(|| TestCaseError::fail("incomplete"))?;
                prop_assert_eq!(used, o.len());
                let redis_protocol::resp3::types::OwnedFrame::Array { data, .. } = frame else {
                    return Err(TestCaseError::fail("not an array"));
                };
                prop_assert_eq!(data.len(), items.len() + 1);
            }
        }
    }
}
