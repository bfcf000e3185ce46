//! rampart-acl: Redis 7.0's access control lists, with no I/O.
//!
//! One abstraction, the [`User`]: flags, password hashes and a list of
//! [`Selector`]s (the root one first), each a command bitmap over a
//! [`Catalog`] of every Redis command, key patterns and channel patterns.
//! Rules are applied, described (`ACL LIST`, `ACL GETUSER`, ACL files) and
//! checked exactly as `acl.c` does, so a rule string means the same thing
//! on Rampart as on `redis-server`. [`Users`] is the set of users, [`Log`]
//! the `ACL LOG`, and [`file`] reads and writes ACL files and `user` lines.

mod catalog;
pub mod file;
mod log;
mod selector;
mod user;

pub use catalog::{category, Catalog, CATEGORIES};
pub use log::{Context, Entry, Log, Reason};
pub use selector::{ChannelRef, Denied, KeyRef, Selector};
pub use user::{RuleError, User, Users};

/// SHA-256 of `pass` as 64 lowercase hex digits, the form Redis keeps
/// passwords in (`#<hash>` rules).
///
/// ```
/// assert_eq!(
///     rampart_acl::hash_password(b"foo"),
///     "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
/// );
/// ```
pub fn hash_password(pass: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, pass);
    hex(d.as_ref())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// `ACL GENPASS [bits]`: `bits` random bits as hex, rounded up to whole
/// hex digits (Redis's `(bits+3)/4` characters).
///
/// ```
/// assert_eq!(rampart_acl::genpass(5).len(), 2);
/// assert_eq!(rampart_acl::genpass(256).len(), 64);
/// ```
pub fn genpass(bits: usize) -> String {
    let chars = bits.div_ceil(4);
    let bytes: Vec<u8> = (0..chars.div_ceil(2))
        .map(|_| rand::random::<u8>())
        .collect();
    let mut s = hex(&bytes);
    s.truncate(chars);
    s
}

/// Whether `s` holds whitespace or NUL, which Redis refuses in usernames
/// and patterns (`ACLStringHasSpaces`).
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|&c| c == 0 || c == b' ' || (9..=13).contains(&c))
}
