//! Keyspace notifications of the generic, string, bitmap and HyperLogLog
//! commands, and the `new`, `keymiss` and `evicted` events, against
//! redis-server 7.0: each scenario runs on both servers and the events
//! heard must be the same, in the same order.
//!
//! A scenario may start with notifications off (flags "") to build keys of
//! other families quietly, then turn them on with a CONFIG SET step.

use std::time::Duration;

use anyhow::{bail, Result};
use rampart_tests::notify::{both, events, s};
use rampart_tests::{RawConn, Reply, ServerProcess};

/// (notify-keyspace-events, commands).
type Scenario = (&'static str, &'static [&'static [&'static str]]);

const ON_NM: &[&str] = &["CONFIG", "SET", "notify-keyspace-events", "KEAnm"];

const GENERIC: &[Scenario] = &[
    (
        "KEA",
        &[
            &["SET", "a", "1"],
            &["SET", "b", "1"],
            &["DEL", "a", "nosuch", "a", "b"],
            &["DEL", "nosuch"],
            &["SET", "a", "1"],
            &["UNLINK", "a", "a"],
            &["EXISTS", "a", "nosuch"],
            &["TYPE", "nosuch"],
        ],
    ),
    (
        "KEAn",
        &[
            &["SET", "a", "1"],
            &["RENAME", "a", "b"],
            &["SET", "a", "2"],
            // Onto an existing key: Redis deletes it and adds the key anew.
            &["RENAME", "a", "b"],
            &["RENAME", "b", "b"],
            &["RENAME", "nosuch", "x"],
            &["SET", "a", "3"],
            &["RENAMENX", "a", "b"],
            &["RENAMENX", "a", "c"],
            &["RENAMENX", "c", "c"],
            &["RENAMENX", "nosuch", "x"],
        ],
    ),
    (
        "KEAnm",
        &[
            &["SET", "a", "1"],
            &["COPY", "a", "b"],
            &["COPY", "a", "b"],
            &["COPY", "a", "b", "REPLACE"],
            &["COPY", "a", "b", "DB", "1"],
            &["COPY", "a", "b", "DB", "1", "REPLACE"],
            &["COPY", "nosuch", "x"],
            &["COPY", "a", "a"],
            &["COPY", "a", "x", "DB", "99"],
            &["COPY", "a", "x", "BAD"],
            &["MOVE", "a", "2"],
            &["SET", "a", "2"],
            &["MOVE", "a", "2"],
            &["MOVE", "nosuch", "2"],
            &["MOVE", "a", "0"],
            &["SELECT", "2"],
            &["DEL", "a"],
            &["SET", "z", "1"],
            &["SELECT", "0"],
        ],
    ),
    (
        "KEAnm",
        &[
            &["SET", "a", "1"],
            &["EXPIRE", "a", "100"],
            &["PEXPIRE", "a", "100000"],
            &["EXPIREAT", "a", "4000000000"],
            &["PEXPIREAT", "a", "4000000000000"],
            &["EXPIRE", "a", "100", "NX"],
            &["EXPIRE", "a", "100", "GT"],
            &["EXPIRE", "a", "abc"],
            &["EXPIRE", "a", "100", "BAD"],
            &["EXPIRE", "nosuch", "100"],
            &["PERSIST", "a"],
            &["PERSIST", "a"],
            &["PERSIST", "nosuch"],
            // A time in the past deletes: `del`, not `expire`.
            &["EXPIRE", "a", "-1"],
            &["SET", "a", "1"],
            &["PEXPIREAT", "a", "1"],
            &["SET", "a", "1"],
            &["EXPIREAT", "a", "0", "XX"],
            &["SET", "a", "1"],
            &["PEXPIRE", "a", "0"],
            &["TTL", "nosuch"],
            &["PTTL", "nosuch"],
            &["EXPIRETIME", "nosuch"],
            &["PEXPIRETIME", "nosuch"],
            &["SET", "a", "1"],
            &["TTL", "a"],
            &["TOUCH", "a", "nosuch", "a"],
            &["EXISTS", "a", "nosuch", "nosuch"],
            &["TYPE", "nosuch"],
            &["TYPE", "a"],
            &["DUMP", "nosuch"],
            &["OBJECT", "ENCODING", "nosuch"],
            &["OBJECT", "FREQ", "nosuch"],
            &["RANDOMKEY"],
            &["KEYS", "*"],
            &["SCAN", "0", "TYPE", "string"],
        ],
    ),
    // An already expired key: `expired` before what the command reports.
    (
        "KEAnm",
        &[
            &["SET", "a", "1", "PXAT", "1"],
            &["GET", "a"],
            &["SET", "a", "1", "PXAT", "1"],
            &["SET", "a", "2"],
            &["SET", "b", "1", "PXAT", "1"],
            &["SET", "b", "2", "GET"],
            &["SET", "c", "1", "PXAT", "1"],
            &["GETDEL", "c"],
            &["SET", "c", "1", "PXAT", "1"],
            &["GETEX", "c", "PERSIST"],
            &["SET", "c", "1", "PXAT", "1"],
            &["EXISTS", "c"],
            &["SET", "c", "1", "PXAT", "1"],
            &["INCR", "c"],
            &["SET", "d", "1", "PXAT", "1"],
            &["RENAME", "a", "d"],
            &["SET", "e", "1", "PXAT", "1"],
            &["EXPIRE", "e", "100"],
        ],
    ),
    // Class filtering.
    (
        "Kg",
        &[
            &["SET", "a", "1"],
            &["EXPIRE", "a", "100"],
            &["APPEND", "a", "x"],
            &["DEL", "a"],
            &["GET", "a"],
        ],
    ),
    (
        "E$",
        &[
            &["SET", "a", "1"],
            &["EXPIRE", "a", "100"],
            &["APPEND", "a", "x"],
            &["DEL", "a"],
        ],
    ),
    (
        "Kn",
        &[&["SET", "a", "1"], &["SET", "a", "2"], &["GET", "b"]],
    ),
    ("Em", &[&["SET", "a", "1"], &["GET", "a"], &["GET", "b"]]),
    (
        "Km",
        &[&["MGET", "a", "b"], &["SET", "a", "1"], &["MGET", "a", "b"]],
    ),
    ("Kx", &[&["SET", "a", "1", "PXAT", "1"], &["GET", "a"]]),
    (
        "KEg",
        &[
            &["SET", "a", "1", "EX", "100"],
            &["SETEX", "b", "100", "1"],
            &["GETEX", "a", "PERSIST"],
        ],
    ),
];

const STRING: &[Scenario] = &[
    (
        "KEAnm",
        &[
            &["SET", "a", "1"],
            &["SET", "a", "2"],
            &["SET", "a", "3", "NX"],
            &["SET", "b", "3", "XX"],
            &["SET", "a", "4", "XX"],
            &["SET", "a", "5", "GET"],
            &["SET", "c", "1", "GET"],
            &["SET", "d", "1", "NX", "GET"],
            &["SET", "a", "1", "EX", "100"],
            &["SET", "a", "1", "KEEPTTL"],
            &["SET", "a", "1", "PX", "100000"],
            &["SET", "a", "1", "EXAT", "4000000000"],
            &["SET", "a", "1", "PXAT", "4000000000000"],
            &["SET", "a", "1", "PX", "0"],
            &["SET", "a", "1", "EX", "abc"],
            &["SET", "a", "1", "BAD"],
            &["SETNX", "a", "x"],
            &["SETNX", "e", "x"],
            &["SETEX", "f", "100", "v"],
            &["SETEX", "f", "-1", "v"],
            &["PSETEX", "g", "100000", "v"],
            &["PSETEX", "g", "0", "v"],
            &["GETSET", "a", "x"],
            &["GETSET", "h", "x"],
            &["GET", "a"],
            &["GET", "nosuch"],
            &["MGET", "a", "nosuch", "b"],
        ],
    ),
    (
        "KEAnm",
        &[
            &["SET", "a", "1"],
            &["GETEX", "a"],
            &["GETEX", "a", "EX", "100"],
            &["GETEX", "a", "PX", "100000"],
            &["GETEX", "a", "EXAT", "4000000000"],
            &["GETEX", "a", "PXAT", "4000000000000"],
            &["GETEX", "a", "PERSIST"],
            &["GETEX", "a", "PERSIST"],
            &["GETEX", "a", "EX", "0"],
            &["GETEX", "a", "EX", "abc"],
            &["GETEX", "a", "BAD"],
            &["GETEX", "nosuch"],
            &["GETEX", "nosuch", "EX", "abc"],
            &["GETEX", "a", "EXAT", "1"],
            &["SET", "a", "1"],
            &["GETEX", "a", "PXAT", "1"],
            &["SET", "a", "1"],
            &["GETDEL", "a"],
            &["GETDEL", "a"],
        ],
    ),
    (
        "KEAnm",
        &[
            &["MSET", "a", "1", "b", "2", "a", "3"],
            &["MSET", "a", "1", "b"],
            &["MSETNX", "x", "1", "a", "1"],
            &["MSETNX", "x", "1", "y", "2"],
            &["INCR", "n"],
            &["INCR", "n"],
            &["DECR", "n"],
            &["INCRBY", "n", "10"],
            &["DECRBY", "n", "10"],
            &["DECRBY", "m", "3"],
            &["INCRBY", "n", "abc"],
            &["INCR", "x"],
            &["SET", "s", "abc"],
            &["INCR", "s"],
            &["SET", "big", "9223372036854775807"],
            &["INCR", "big"],
            &["INCRBYFLOAT", "f", "1.5"],
            &["INCRBYFLOAT", "f", "1.5"],
            &["INCRBYFLOAT", "s", "1"],
            &["INCRBYFLOAT", "f", "abc"],
            &["APPEND", "p", "x"],
            &["APPEND", "p", "y"],
            &["STRLEN", "p"],
            &["STRLEN", "nosuch"],
            &["GETRANGE", "nosuch", "0", "-1"],
            &["GETRANGE", "p", "0", "-1"],
            &["SUBSTR", "nosuch", "0", "-1"],
            &["GETRANGE", "nosuch", "x", "-1"],
            &["SETRANGE", "r", "2", "ab"],
            &["SETRANGE", "r", "0", "z"],
            &["SETRANGE", "r", "0", ""],
            &["SETRANGE", "q", "5", ""],
            &["SETRANGE", "r", "-1", "x"],
            &["LCS", "p", "nosuch"],
            &["LCS", "nosuch", "p"],
        ],
    ),
    // Other families' keys, made quietly, for the type errors.
    (
        "",
        &[
            &["RPUSH", "l", "x"],
            ON_NM,
            &["SET", "l", "1", "GET"],
            &["GETSET", "l", "1"],
            &["GETEX", "l"],
            &["GETDEL", "l"],
            &["APPEND", "l", "x"],
            &["INCR", "l"],
            &["INCRBYFLOAT", "l", "1"],
            &["SETRANGE", "l", "0", "x"],
            &["STRLEN", "l"],
            &["GETRANGE", "l", "0", "1"],
            &["LCS", "l", "nosuch"],
            &["MGET", "l"],
            &["SET", "l", "1"],
        ],
    ),
];

const BITMAP: &[Scenario] = &[
    (
        "KEAnm",
        &[
            &["SETBIT", "b", "7", "1"],
            &["SETBIT", "b", "7", "1"],
            &["SETBIT", "b", "7", "0"],
            &["SETBIT", "b", "7", "0"],
            &["SETBIT", "b", "100", "0"],
            &["SETBIT", "b", "100", "0"],
            &["SETBIT", "c", "0", "0"],
            &["SETBIT", "b", "1", "2"],
            &["SETBIT", "b", "-1", "1"],
            &["GETBIT", "b", "7"],
            &["GETBIT", "nosuch", "7"],
            &["BITCOUNT", "nosuch"],
            &["BITCOUNT", "b"],
            &["BITPOS", "nosuch", "1"],
            &["BITPOS", "b", "0"],
            &["SET", "x", "abc"],
            &["SET", "y", "a"],
            &["BITOP", "AND", "d", "x", "y"],
            &["BITOP", "AND", "d", "x", "y"],
            &["BITOP", "OR", "d", "nosuch", "nosuch2"],
            &["BITOP", "OR", "d", "nosuch", "nosuch2"],
            &["BITOP", "XOR", "d", "x", "nosuch"],
            &["BITOP", "NOT", "e", "x"],
            &["BITOP", "NOT", "e", "x", "y"],
            &["BITOP", "BAD", "e", "x"],
        ],
    ),
    (
        "KEAnm",
        &[
            &["BITFIELD", "f", "SET", "u8", "0", "255"],
            &["BITFIELD", "f", "SET", "u8", "0", "255"],
            &["BITFIELD", "f", "INCRBY", "u8", "0", "1"],
            &[
                "BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "255",
            ],
            &[
                "BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300",
            ],
            &["BITFIELD", "f", "GET", "u8", "0"],
            &["BITFIELD", "f", "SET", "u8", "64", "0"],
            &["BITFIELD", "f", "GET", "u8", "0", "SET", "u4", "0", "0"],
            &["BITFIELD", "nosuch", "GET", "u8", "0"],
            &[
                "BITFIELD", "g", "OVERFLOW", "FAIL", "INCRBY", "u8", "0", "300",
            ],
            &["BITFIELD", "h", "SET", "u8", "0", "0"],
            &["BITFIELD", "f", "SET", "u99", "0", "0"],
            &["BITFIELD_RO", "nosuch", "GET", "u8", "0"],
            &["BITFIELD_RO", "f", "GET", "u8", "0"],
            &["BITFIELD_RO", "f", "SET", "u8", "0", "1"],
        ],
    ),
    (
        "",
        &[
            &["RPUSH", "l", "x"],
            ON_NM,
            &["SETBIT", "l", "0", "1"],
            &["GETBIT", "l", "0"],
            &["BITCOUNT", "l"],
            &["BITPOS", "l", "1"],
            &["BITOP", "AND", "d", "nosuch", "l"],
            &["BITFIELD", "l", "SET", "u8", "0", "1"],
            &["BITFIELD", "l", "GET", "u8", "0"],
        ],
    ),
];

const HLL: &[Scenario] = &[
    (
        "KEAnm",
        &[
            &["PFADD", "h", "a", "b", "c"],
            &["PFADD", "h", "a"],
            &["PFADD", "h2"],
            &["PFADD", "h2"],
            // PFCOUNT refreshes its cache without an event.
            &["PFCOUNT", "h"],
            &["PFCOUNT", "h"],
            &["PFCOUNT", "nosuch"],
            &["PFCOUNT", "h", "nosuch", "h2"],
            &["PFMERGE", "dst", "h", "nosuch"],
            &["PFMERGE", "dst", "h"],
            &["PFMERGE", "dst2"],
            &["SET", "s", "abc"],
            &["PFADD", "s", "a"],
            &["PFCOUNT", "s"],
            &["PFMERGE", "dst", "s"],
            &["PFMERGE", "s", "h"],
        ],
    ),
    ("E$", &[&["PFADD", "h", "a"], &["PFMERGE", "d", "h"]]),
];

/// SORT ... STORE announces `sortstore` (list class), or `del` when the
/// result is empty and a destination existed.
const SORT: &[Scenario] = &[
    (
        "",
        &[
            &["RPUSH", "src", "3", "1", "2"],
            &["SET", "w_1", "9"],
            &["SET", "w_2", "8"],
            ON_NM,
            &["SORT", "src", "STORE", "dst"],
            &["SORT", "src", "STORE", "dst"],
            &["SORT", "src", "BY", "w_*", "GET", "o_*", "GET", "#"],
            &["SORT", "src", "BY", "nosort", "STORE", "dst"],
            &["SORT", "nosuch", "STORE", "dst"],
            &["SORT", "nosuch", "STORE", "dst"],
            &["SORT_RO", "nosuch"],
            &["SORT", "src", "BY", "h_*->f", "STORE", "dst"],
        ],
    ),
    (
        "",
        &[
            &["RPUSH", "src", "1"],
            &["CONFIG", "SET", "notify-keyspace-events", "Kg"],
            &["SORT", "src", "STORE", "dst"],
            &["SORT", "nosuch", "STORE", "dst"],
        ],
    ),
];

/// Events from inside transactions and scripts, and a STORE onto a key
/// that expired but was not yet removed (active expiry off).
const WRAPPED: &[Scenario] = &[
    (
        "KEA",
        &[
            &["MULTI"],
            &["SET", "a", "1"],
            &["LPUSH", "l", "x"],
            &["INCR", "a"],
            &["DEL", "a", "l"],
            &["EXEC"],
            &["MULTI"],
            &["SET", "b", "1"],
            &["DISCARD"],
            &[
                "EVAL",
                "redis.call('set', KEYS[1], '1') redis.call('expire', KEYS[1], 100) redis.call('del', KEYS[1]) return redis.pcall('incr', 'nosuch:list')",
                "1",
                "s",
            ],
        ],
    ),
    (
        "KEAn",
        &[
            &["DEBUG", "SET-ACTIVE-EXPIRE", "0"],
            &["SADD", "s1", "a", "b"],
            &["SET", "d", "v", "PX", "1"],
            &["SET", "e", "v", "PX", "1"],
            &["SET", "f", "v", "PX", "1"],
            &["SET", "g", "v", "PX", "1"],
            &["SET", "h", "v", "PX", "1"],
            &["DEBUG", "SLEEP", "0.01"],
            &["SUNIONSTORE", "d", "s1"],
            // An empty result deletes the destination as it is stored
            // (dbDelete): `del`, and no `expired` first.
            &["SUNIONSTORE", "e", "nosuch"],
            &["ZUNIONSTORE", "f", "1", "nosuch"],
            &["BITOP", "AND", "g", "nosuch"],
            &["SORT", "nosuch", "STORE", "h"],
            &["DEBUG", "SET-ACTIVE-EXPIRE", "1"],
        ],
    ),
];

fn run(table: &[Scenario]) -> Result<()> {
    // DEBUG SLEEP/SET-ACTIVE-EXPIRE pin down when keys expire; without them
    // the scenarios race the clock on both servers.
    both(&["--enable-debug-command", "yes"], |srv| {
        let mut t = Vec::new();
        for (flags, cmds) in table {
            t.push(format!("== {flags}"));
            t.extend(events(srv, flags, cmds)?);
        }
        Ok(t)
    })
}

#[test]
fn generic_events_match_redis() -> Result<()> {
    run(GENERIC)
}

#[test]
fn string_events_match_redis() -> Result<()> {
    run(STRING)
}

#[test]
fn bitmap_events_match_redis() -> Result<()> {
    run(BITMAP)
}

#[test]
fn hyperloglog_events_match_redis() -> Result<()> {
    run(HLL)
}

#[test]
fn events_in_transactions_scripts_and_expired_destinations_match_redis() -> Result<()> {
    run(WRAPPED)
}

#[test]
fn sort_store_events_match_redis() -> Result<()> {
    run(SORT)
}

/// The bulk string of a reply.
fn bulk(raw: Vec<u8>) -> Result<Vec<u8>> {
    match Reply::parse(&raw)? {
        Reply::Scalar(_) if raw.starts_with(b"$") => {
            let start = raw.iter().position(|&b| b == b'\n').unwrap_or(0) + 1;
            Ok(raw[start..raw.len() - 2].to_vec())
        }
        r => bail!("not a bulk string: {r:?}"),
    }
}

/// What a subscriber to every keyspace channel hears while `f` runs on
/// another connection (with notifications set to `flags`).
fn heard(
    srv: &ServerProcess,
    flags: &str,
    f: impl FnOnce(&mut RawConn) -> Result<Vec<String>>,
) -> Result<Vec<String>> {
    let mut c = srv.conn()?;
    c.cmd(&["FLUSHALL"])?;
    let mut sub = srv.conn()?;
    sub.cmd(&["PSUBSCRIBE", "__key*__:*"])?;
    sub.cmd(&["SUBSCRIBE", "done"])?;
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", flags])?;
    let mut t = f(&mut c)?;
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""])?;
    c.cmd(&["PUBLISH", "done", "."])?;
    loop {
        let Reply::Aggregate(_, parts) = Reply::parse(&sub.read_reply()?)? else {
            bail!("not a message");
        };
        let words: Vec<String> = parts.iter().map(|p| s(p.to_bytes())).collect();
        let words: Vec<String> = words
            .iter()
            .map(|w| w.lines().last().unwrap_or_default().to_string())
            .collect();
        if words.get(1).map(String::as_str) == Some("done") {
            break;
        }
        t.push(words[1..].join(" "));
    }
    Ok(t)
}

#[test]
fn restore_events_match_redis() -> Result<()> {
    both(&["--enable-debug-command", "yes"], |srv| {
        heard(srv, "KEAnm", |c| {
            let mut t = Vec::new();
            c.cmd(&["SET", "src", "hello"])?;
            let payload = bulk(c.cmd(&["DUMP", "src"])?)?;
            let p = &payload[..];
            let steps: &[&[&[u8]]] = &[
                &[b"RESTORE", b"a", b"0", p],
                &[b"RESTORE", b"a", b"0", p],
                &[b"RESTORE", b"a", b"0", p, b"REPLACE"],
                &[b"RESTORE", b"b", b"100000", p],
                &[b"RESTORE", b"c", b"4000000000000", p, b"ABSTTL"],
                // Already expired: nothing created; REPLACE deletes.
                &[b"RESTORE", b"d", b"1", p, b"ABSTTL"],
                &[b"RESTORE", b"a", b"1", p, b"ABSTTL", b"REPLACE"],
                &[b"RESTORE", b"a", b"1", p, b"ABSTTL", b"REPLACE"],
                &[b"RESTORE", b"e", b"0", b"garbage"],
                &[b"RESTORE", b"e", b"-1", p],
                &[b"RESTORE", b"e", b"0", p, b"IDLETIME", b"10"],
            ];
            for step in steps {
                let r = c.cmd(step)?;
                t.push(format!("{} -> {}", s(step[0].to_vec()), s(r).trim_end()));
            }
            // REPLACE deletes a key that expired but was not collected as
            // it is stored (dbDelete): no `expired` event.
            c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"])?;
            c.cmd(&["SET", "x", "v", "PX", "1"])?;
            c.cmd(&["SET", "y", "v", "PX", "1"])?;
            std::thread::sleep(std::time::Duration::from_millis(20));
            let steps: &[&[&[u8]]] = &[
                &[b"RESTORE", b"x", b"1", p, b"ABSTTL", b"REPLACE"],
                &[b"RESTORE", b"y", b"0", p, b"REPLACE"],
            ];
            for step in steps {
                let r = c.cmd(step)?;
                t.push(format!("{} -> {}", s(step[1].to_vec()), s(r).trim_end()));
            }
            c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"])?;
            Ok(t)
        })
    })
}

/// Evictions: every key of a full database is evicted when maxmemory falls
/// under what it uses, each announced once on both channels (which keys go
/// first is random, so the events are compared sorted).
#[test]
fn evicted_events_match_redis() -> Result<()> {
    let args = ["--maxmemory-policy", "allkeys-random"];
    both(&args, |srv| {
        let mut out = Vec::new();
        for flags in ["KEe", "Ee", "Kg"] {
            let mut t = heard(srv, flags, |c| {
                for i in 0..20 {
                    c.cmd(&["SET", &format!("k{i}"), "value"])?;
                }
                c.cmd(&["CONFIG", "SET", "maxmemory", "1"])?;
                // A write makes room first: everything goes, then it is
                // refused. Eviction in the background may come first.
                let r = s(c.cmd(&["SET", "x", "y"])?);
                let left = s(c.cmd(&["DBSIZE"])?);
                c.cmd(&["CONFIG", "SET", "maxmemory", "0"])?;
                std::thread::sleep(Duration::from_millis(50));
                Ok(vec![r.trim_end().to_string(), left.trim_end().to_string()])
            })?;
            let mut evs = t.split_off(2);
            evs.sort();
            out.push(format!("== {flags}"));
            out.extend(t);
            out.extend(evs);
        }
        Ok(out)
    })
}
