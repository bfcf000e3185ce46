//! Property tests standing in for the `rdb_load` fuzz target on stable
//! Rust: whatever the bytes, `load` and `restore_value` return (an error or
//! a value) without panicking, and without allocating from lengths the
//! data does not back.

use proptest::prelude::*;
use rampart_keyspace::hash::Hash;
use rampart_keyspace::list::{End, List};
use rampart_keyspace::set::Set;
use rampart_keyspace::zset::ZSet;
use rampart_keyspace::{EncodingLimits, Value};
use rampart_persistence::rdb::{self, Crc64, LoadSink, RdbError};

struct Count(u64);

impl LoadSink for Count {
    fn entry(&mut self, _: usize, _: &[u8], _: Value, _: Option<u64>) -> Result<(), RdbError> {
        self.0 += 1;
        Ok(())
    }
}

fn stream(l: &EncodingLimits) -> rampart_keyspace::stream::Stream {
    use rampart_keyspace::stream::{Group, Nack, Stream, StreamId};
    let mut s = Stream::default();
    for i in 1..=120u64 {
        let v = i.to_string();
        let fv: Vec<&[u8]> = if i % 5 == 0 {
            vec![b"x", v.as_bytes()]
        } else {
            vec![b"f", v.as_bytes(), b"g", b"hello"]
        };
        let _ = s.append(StreamId { ms: i, seq: 0 }, &fv, l);
    }
    s.delete(StreamId { ms: 3, seq: 0 });
    let mut g = Group::new(StreamId { ms: 4, seq: 0 }, 4);
    let id = StreamId { ms: 2, seq: 0 };
    g.pel.insert(
        id,
        Nack {
            delivery_time: 7,
            delivery_count: 2,
            consumer: b"c".to_vec().into(),
        },
    );
    g.consumers
        .entry(b"c".to_vec().into())
        .or_default()
        .pel
        .insert(id);
    s.groups.insert(b"g".to_vec().into(), g);
    s
}

fn values() -> Vec<Value> {
    let l = EncodingLimits::default();
    let mut list = List::default();
    for i in 0..40 {
        list.push(End::Tail, format!("item-{i}").as_bytes());
    }
    list.push(End::Tail, &[7u8; 300]);
    let mut hash = Hash::default();
    hash.insert(b"a", b"1", &l);
    hash.insert(b"bb", b"hello world, hello world, hello world", &l);
    let mut big_hash = Hash::default();
    for i in 0..70 {
        big_hash.insert(format!("f{i}").as_bytes(), &[b'v'; 70], &l);
    }
    let mut ints = Set::default();
    for i in [1, 300, 70000, -5] {
        ints.insert(i.to_string().as_bytes(), &l);
    }
    let mut strs = Set::default();
    strs.insert(b"x", &l);
    strs.insert(b"y", &l);
    let pairs: Vec<(Vec<u8>, f64)> = (0..10)
        .map(|i| (format!("m{i}").into_bytes(), i as f64 * 1.5))
        .collect();
    let big_pairs: Vec<(Vec<u8>, f64)> = (0..150)
        .map(|i| (format!("m{i}").into_bytes(), i as f64))
        .collect();
    vec![
        Value::string(b"12"),
        Value::string(b"plain"),
        Value::string(&b"compress me ".repeat(10)),
        Value::List(Box::new(list)),
        Value::Hash(hash),
        Value::Hash(big_hash),
        Value::Set(Box::new(ints)),
        Value::Set(Box::new(strs)),
        Value::ZSet(ZSet::from_pairs(pairs, &l)),
        Value::ZSet(ZSet::from_pairs(big_pairs, &l)),
        Value::Stream(Box::new(stream(&l))),
    ]
}

fn valid_file() -> Vec<u8> {
    let mut buf = Vec::new();
    rdb::write_header(&mut buf, &[]);
    rdb::write_select_db(&mut buf, 0);
    for (i, v) in values().iter().enumerate() {
        rdb::write_entry(
            &mut buf,
            format!("key{i}").as_bytes(),
            v,
            (i % 3 == 0).then_some(1_000),
        );
    }
    rdb::write_eof(&mut buf);
    let crc = Crc64::checksum(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    buf
}

fn try_all(bytes: &[u8]) {
    let l = EncodingLimits::default();
    let _ = rdb::load(bytes, &l, &mut Count(0));
    let _ = rdb::restore_value(bytes, &l);
    // The same bytes with a valid footer, so RESTORE gets past the CRC.
    let mut p = bytes.to_vec();
    p.extend_from_slice(&[10, 0]);
    let crc = Crc64::checksum(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    if let Ok(v) = rdb::restore_value(&p, &l) {
        // Whatever decodes encodes and decodes again (the fuzz target
        // asserts this too).
        let again = rdb::dump_value(&v);
        assert!(rdb::restore_value(&again, &l).is_ok());
    }
    // And as a file body whose checksum is off (0 = unchecked).
    let mut f = b"REDIS0010".to_vec();
    f.extend_from_slice(bytes);
    f.push(255);
    f.extend_from_slice(&[0; 8]);
    let _ = rdb::load(&f[..], &l, &mut Count(0));
}

/// Applies mutations to a valid file with its CRC fixed afterwards, so the
/// reader gets past the checksum and into the values.
fn mutate(base: &[u8], flips: &[(usize, u8)], cut: Option<usize>, fix_crc: bool) -> Vec<u8> {
    let mut f = base.to_vec();
    let body = f.len() - 8;
    for &(pos, b) in flips {
        let i = pos % body;
        f[i] = b;
    }
    if fix_crc {
        let crc = Crc64::checksum(&f[..body]);
        f[body..].copy_from_slice(&crc.to_le_bytes());
    }
    if let Some(c) = cut {
        f.truncate(c % (f.len() + 1));
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        try_all(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_magic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(&bytes);
        let _ = rdb::load(&f[..], &EncodingLimits::default(), &mut Count(0));
    }

    #[test]
    fn mutated_files(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
        fix_crc in any::<bool>(),
    ) {
        let base = valid_file();
        let f = mutate(&base, &flips, cut, fix_crc);
        let _ = rdb::load(&f[..], &EncodingLimits::default(), &mut Count(0));
    }

    #[test]
    fn mutated_payloads(
        which in 0usize..10,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let v = &values()[which];
        let mut p = rdb::dump_value(v);
        let body = p.len() - 10;
        for &(pos, b) in &flips {
            p[pos % body] = b;
        }
        if let Some(c) = cut {
            p.truncate(c % body + 1);
        }
        try_all(&p[..p.len().min(body)]);
    }

    #[test]
    fn huge_lengths_spliced_in(
        pos in any::<usize>(),
        len in prop_oneof![
            Just(vec![0x81u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Just(vec![0x80u8, 0xff, 0xff, 0xff, 0xff]),
            Just(vec![0x80u8, 0x7f, 0xff, 0xff, 0xff]),
            Just(vec![0xc3u8, 0x80, 0, 0, 0x10, 0x80, 0xff, 0xff, 0xff, 0xff]),
        ],
    ) {
        let base = valid_file();
        let body = base.len() - 8;
        let at = 9 + pos % (body - 9);
        let mut f = base[..at].to_vec();
        f.extend_from_slice(&len);
        f.extend_from_slice(&base[at..body]);
        let crc = Crc64::checksum(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        let _ = rdb::load(&f[..], &EncodingLimits::default(), &mut Count(0));
    }
}

#[test]
fn valid_file_loads() {
    let mut c = Count(0);
    rdb::load(&valid_file()[..], &EncodingLimits::default(), &mut c).expect("valid");
    assert_eq!(c.0, values().len() as u64);
}

#[test]
fn huge_counts_without_data_fail_fast() {
    // A set announcing 2^60 members, a list of 2^32 quicklist nodes, a
    // hash of 2^40 fields: each fails at the end of the data, quickly and
    // without reserving memory for the announced size.
    for t in [2u8, 18, 4, 1, 3, 5] {
        let mut f = b"REDIS0010".to_vec();
        f.push(t);
        f.extend_from_slice(b"\x01k");
        f.push(0x81);
        f.extend_from_slice(&(1u64 << 60).to_be_bytes());
        f.extend_from_slice(b"\x01a");
        let start = std::time::Instant::now();
        assert!(rdb::load(&f[..], &EncodingLimits::default(), &mut Count(0)).is_err());
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}
