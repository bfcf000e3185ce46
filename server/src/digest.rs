//! DEBUG DIGEST and DEBUG DIGEST-VALUE, computed exactly as Redis's
//! `computeDatasetDigest`/`xorObjectDigest`: the same data gives the same
//! 40 hex digits on redis-server and Rampart, so tools can compare a
//! primary with its replicas across the two.
//!
//! Unordered things (keys, set members, hash fields, sorted set members)
//! are combined with XOR, ordered ones (list elements, the parts of one
//! element) with [`mix`], which feeds the running digest back into SHA-1.

use rampart_keyspace::{Node, Value};
use ring::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY as SHA1};

use crate::state::Server;

/// A 20-byte SHA-1-sized digest.
pub type Digest = [u8; 20];

/// `digest ^= SHA1(data)` (Redis's `xorDigest`).
fn xor(d: &mut Digest, data: &[u8]) {
    let h = digest(&SHA1, data);
    for (a, b) in d.iter_mut().zip(h.as_ref()) {
        *a ^= b;
    }
}

/// `digest = SHA1(digest ^ SHA1(data))` (Redis's `mixDigest`).
fn mix(d: &mut Digest, data: &[u8]) {
    xor(d, data);
    let h = digest(&SHA1, d);
    d.copy_from_slice(h.as_ref());
}

/// Redis's object type number.
fn type_number(v: &Value) -> u32 {
    match v {
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
        _ => 0,
    }
}

/// Mixes one value (and whether it has an expiry) into `d`, as
/// `xorObjectDigest`.
fn object(d: &mut Digest, n: &Node) {
    mix(d, &type_number(&n.value).to_be_bytes());
    match &n.value {
        Value::List(l) => {
            for e in l.iter() {
                mix(d, e);
            }
        }
        Value::Set(s) => {
            for m in s.iter() {
                xor(d, &m.to_vec());
            }
        }
        Value::ZSet(z) => {
            for (m, score) in z.iter() {
                let mut e = [0u8; 20];
                mix(&mut e, m);
                mix(&mut e, crate::num::fmt_double(score).as_bytes());
                xor(d, &e);
            }
        }
        Value::Hash(h) => {
            for (f, v) in h.iter() {
                let mut e = [0u8; 20];
                mix(&mut e, f);
                mix(&mut e, v);
                xor(d, &e);
            }
        }
        Value::Stream(s) => {
            let mut b = itoa::Buffer::new();
            let all = rampart_keyspace::stream::StreamId::MAX;
            for e in s.range(rampart_keyspace::stream::StreamId::MIN, all, false) {
                mix(d, format!("{}.{}", e.id.ms, e.id.seq).as_bytes());
                for (f, v) in e.fields() {
                    mix(d, f.bytes(&mut b));
                    mix(d, v.bytes(&mut b));
                }
            }
        }
        v => mix(d, v.as_str().unwrap_or_default()),
    }
    if n.expire_at().is_some() {
        xor(d, b"!!expire!!");
    }
}

/// The digest of one key's value (DEBUG DIGEST-VALUE): zeros when absent.
pub fn value(n: Option<&Node>) -> Digest {
    let mut d = [0u8; 20];
    if let Some(n) = n {
        object(&mut d, n);
    }
    d
}

/// The digest of the whole dataset (DEBUG DIGEST): zeros when empty.
/// Logically expired keys not yet removed count, as in Redis.
pub fn dataset(srv: &Server) -> Digest {
    let mut fin = [0u8; 20];
    for j in 0..srv.keyspace.len() {
        let db = srv.keyspace.db(j);
        if db.is_empty() {
            continue;
        }
        mix(&mut fin, &(j as u32).to_be_bytes());
        db.for_each(0, |n| {
            let mut d = [0u8; 20];
            mix(&mut d, n.key.as_bytes());
            object(&mut d, n);
            xor(&mut fin, &d);
        });
    }
    fin
}

/// Lower-case hex, as Redis prints digests.
pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}
