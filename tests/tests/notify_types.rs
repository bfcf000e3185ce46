//! Keyspace notifications of the list, hash, set, sorted-set and geo
//! commands against redis-server 7.0: every write command of these
//! families, on each of its branches (a change, a no-op, a wrong type, a
//! key emptied and so deleted, a STORE with an empty result), must publish
//! the same events in the same order, and only those of the classes asked
//! for. Blocked clients served by another client's write are covered too:
//! the served pop's events follow the write's.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use rampart_tests::notify::{both, events, s};
use rampart_tests::{wait_for, RawConn, Reply, ServerProcess};

type Scenario = (&'static str, &'static [&'static [&'static str]]);

const LIST: &[Scenario] = &[
    (
        "KEA",
        &[
            &["LPUSH", "l", "a", "b"],
            &["RPUSH", "l", "c"],
            &["LPUSHX", "nokey", "x"],
            &["RPUSHX", "nokey", "x"],
            &["RPUSHX", "l", "d"],
            &["LPUSHX", "l", "e"],
            &["LINSERT", "l", "BEFORE", "a", "z"],
            &["LINSERT", "l", "AFTER", "nopivot", "y"],
            &["LINSERT", "nokey", "BEFORE", "a", "b"],
            &["LINSERT", "l", "SIDEWAYS", "a", "b"],
            &["LSET", "l", "0", "q"],
            &["LSET", "l", "100", "q"],
            &["LSET", "l", "x", "q"],
            &["LSET", "nokey", "0", "q"],
            &["LREM", "l", "1", "nomatch"],
            &["LREM", "l", "0", "q"],
            &["LREM", "nokey", "0", "q"],
            &["LTRIM", "l", "0", "100"],
            &["LTRIM", "l", "1", "-1"],
            &["LTRIM", "nokey", "0", "1"],
            &["LPOP", "l"],
            &["RPOP", "l", "2"],
            &["LPOP", "l", "0"],
            &["LPOP", "nokey"],
            &["RPOP", "nokey", "2"],
            &["RPOP", "l", "10"],
            &["EXISTS", "l"],
        ],
    ),
    (
        "KEA",
        &[
            // Emptying writes: the type's event, then del.
            &["RPUSH", "l", "a"],
            &["LPOP", "l"],
            &["RPUSH", "l", "a", "a"],
            &["LREM", "l", "0", "a"],
            &["RPUSH", "l", "a", "b"],
            &["LTRIM", "l", "5", "10"],
            &["RPUSH", "l", "a", "b"],
            &["LTRIM", "l", "1", "0"],
        ],
    ),
    (
        "KEA",
        &[
            // Wrong types: nothing.
            &["HSET", "s", "f", "v"],
            &["LPUSH", "s", "a"],
            &["RPUSHX", "s", "a"],
            &["LPOP", "s"],
            &["RPOP", "s", "2"],
            &["LINSERT", "s", "BEFORE", "a", "b"],
            &["LSET", "s", "0", "a"],
            &["LREM", "s", "0", "a"],
            &["LTRIM", "s", "0", "1"],
            &["LMOVE", "s", "d", "LEFT", "LEFT"],
            &["RPUSH", "l", "a"],
            &["LMOVE", "l", "s", "LEFT", "LEFT"],
            &["RPOPLPUSH", "nokey", "s"],
            &["LMPOP", "2", "nokey", "s", "LEFT"],
            &["BLPOP", "s", "0"],
            &["BLMOVE", "l", "s", "LEFT", "LEFT", "0"],
        ],
    ),
    (
        "KEA",
        &[
            // LMOVE: the destination's push, then the source's pop (and
            // its del).
            &["RPUSH", "src", "a", "b", "c"],
            &["LMOVE", "src", "dst", "LEFT", "RIGHT"],
            &["LMOVE", "src", "dst", "RIGHT", "LEFT"],
            &["RPOPLPUSH", "src", "dst"],
            &["LMOVE", "nokey", "dst", "LEFT", "LEFT"],
            &["RPOPLPUSH", "nokey", "dst"],
            &["LMOVE", "dst", "dst", "LEFT", "RIGHT"],
            &["RPOPLPUSH", "dst", "dst"],
            &["RPUSH", "one", "x"],
            &["LMOVE", "one", "one", "RIGHT", "LEFT"],
            &["LMOVE", "one", "two", "RIGHT", "RIGHT"],
        ],
    ),
    (
        "KEA",
        &[
            // The multi-key and blocking forms when there is something to
            // pop (no blocking).
            &["RPUSH", "l", "a", "b", "c", "d", "e"],
            &["LMPOP", "2", "nokey", "l", "LEFT", "COUNT", "2"],
            &["LMPOP", "1", "nokey", "RIGHT"],
            &["BLPOP", "nokey", "l", "0"],
            &["BRPOP", "l", "0"],
            &["BLMOVE", "l", "m", "LEFT", "LEFT", "0"],
            &["BRPOPLPUSH", "m", "l", "0"],
            &["BLMPOP", "0", "2", "nokey", "l", "RIGHT", "COUNT", "10"],
            &["EXISTS", "l", "m"],
        ],
    ),
];

const HASH: &[Scenario] = &[
    (
        "KEA",
        &[
            &["HSET", "h", "f", "v"],
            // Same value: still announced.
            &["HSET", "h", "f", "v"],
            &["HMSET", "h", "a", "1", "b", "2"],
            &["HSET", "h", "odd"],
            &["HSETNX", "h", "f", "x"],
            &["HSETNX", "h", "g", "y"],
            &["HSETNX", "new", "g", "y"],
            &["HINCRBY", "h", "n", "5"],
            &["HINCRBY", "h", "f", "1"],
            &["HINCRBY", "h", "n", "x"],
            &["HINCRBY", "h", "big", "9223372036854775807"],
            &["HINCRBY", "h", "big", "1"],
            &["HINCRBY", "created", "n", "1"],
            &["HINCRBYFLOAT", "h", "x", "1.5"],
            &["HINCRBYFLOAT", "h", "f", "1"],
            &["HINCRBYFLOAT", "h", "x", "inf"],
            &["HINCRBYFLOAT", "fcreated", "x", "2.5"],
            &["HDEL", "h", "nosuch"],
            &["HDEL", "nokey", "a"],
            &["HDEL", "h", "f", "g"],
            &["HDEL", "h", "a", "b", "n", "big", "x", "nosuch"],
            &["EXISTS", "h"],
            &["HDEL", "new", "g"],
        ],
    ),
    (
        "KEA",
        &[
            &["RPUSH", "s", "x"],
            &["HSET", "s", "a", "b"],
            &["HMSET", "s", "a", "b"],
            &["HSETNX", "s", "a", "b"],
            &["HDEL", "s", "a"],
            &["HINCRBY", "s", "a", "1"],
            &["HINCRBYFLOAT", "s", "a", "1"],
        ],
    ),
];

const SET: &[Scenario] = &[
    (
        "KEA",
        &[
            &["SADD", "s", "a", "b"],
            &["SADD", "s", "a"],
            &["SADD", "s", "a", "c"],
            &["SREM", "s", "nosuch"],
            &["SREM", "nokey", "a"],
            &["SREM", "s", "a"],
            &["SREM", "s", "b", "c", "d"],
            &["EXISTS", "s"],
            &["SADD", "n", "1", "2", "3"],
            &["SPOP", "n", "0"],
            &["SPOP", "n", "3"],
            &["SADD", "n", "1", "2"],
            &["SPOP", "n", "5"],
            &["SADD", "n", "1"],
            &["SPOP", "n"],
            &["SPOP", "nokey"],
            &["SPOP", "nokey", "2"],
            &["SPOP", "n", "1", "2"],
            // Random replies, masked below: the events are what counts.
            &["SADD", "r", "1", "2", "3"],
            &["SPOP", "r", "1"],
            &["SPOP", "r"],
            &["SCARD", "r"],
        ],
    ),
    (
        "KEA",
        &[
            // SMOVE: the source's srem (and del), then the destination's
            // sadd when the member is new there.
            &["SADD", "a", "x", "y"],
            &["SADD", "b", "y"],
            &["SMOVE", "a", "b", "x"],
            &["SMOVE", "a", "b", "y"],
            &["SMOVE", "nokey", "b", "x"],
            &["SMOVE", "b", "b", "y"],
            &["SMOVE", "b", "b", "nosuch"],
            &["SMOVE", "b", "c", "nosuch"],
            &["SMOVE", "b", "c", "x"],
            &["SMOVE", "b", "c", "y"],
            &["HSET", "w", "f", "v"],
            &["SMOVE", "c", "w", "y"],
            &["SMOVE", "w", "c", "y"],
            &["SMOVE", "nokey", "w", "y"],
            &["SADD", "w", "a"],
            &["SREM", "w", "a"],
            &["SPOP", "w"],
        ],
    ),
    (
        "KEA",
        &[
            &["SADD", "s1", "a", "b", "c"],
            &["SADD", "s2", "b", "c", "d"],
            &["SINTERSTORE", "d", "s1", "s2"],
            &["SUNIONSTORE", "d", "s1", "s2"],
            &["SDIFFSTORE", "d", "s1", "s2"],
            // Empty results delete the destination, announced only when
            // it existed.
            &["SINTERSTORE", "d", "s1", "nokey"],
            &["SINTERSTORE", "d", "s1", "nokey"],
            &["SDIFFSTORE", "d", "s1", "s1"],
            &["SUNIONSTORE", "d", "s1"],
            &["SDIFFSTORE", "d", "s1", "s1"],
            &["SUNIONSTORE", "d", "s1"],
            &["SINTERSTORE", "d", "s1", "s1", "s2"],
            &["SINTERSTORE", "d", "s1", "d"],
            &["HSET", "d", "f", "v"],
            &["SUNIONSTORE", "d", "nokey"],
            &["HSET", "w", "f", "v"],
            &["SINTERSTORE", "d", "s1", "w"],
            &["SUNIONSTORE", "d", "s1", "w"],
            &["SDIFFSTORE", "d", "w"],
            &["SDIFFSTORE", "d", "nokey", "w"],
            &["SINTERSTORE", "d", "nokey", "w"],
        ],
    ),
];

const ZSET: &[Scenario] = &[
    (
        "KEA",
        &[
            &["ZADD", "z", "1", "a", "2", "b"],
            &["ZADD", "z", "1", "a"],
            &["ZADD", "z", "XX", "5", "nosuch"],
            &["ZADD", "nokey", "XX", "5", "a"],
            &["ZADD", "z", "NX", "3", "c"],
            &["ZADD", "z", "NX", "9", "c"],
            &["ZADD", "z", "GT", "0", "a"],
            &["ZADD", "z", "LT", "0", "a"],
            &["ZADD", "z", "CH", "10", "a"],
            &["ZADD", "z", "INCR", "1", "a"],
            &["ZADD", "z", "XX", "INCR", "1", "nosuch"],
            &["ZINCRBY", "z", "2", "b"],
            &["ZINCRBY", "z", "0", "b"],
            &["ZINCRBY", "z", "1", "new"],
            &["ZADD", "z", "+inf", "i"],
            &["ZINCRBY", "z", "-inf", "i"],
            &["ZADD", "z", "x", "a"],
            &["ZADD", "z", "NX", "XX", "1", "a"],
            &["ZREM", "z", "nosuch"],
            &["ZREM", "nokey", "a"],
            &["ZREM", "z", "a", "nosuch"],
            &["ZREMRANGEBYSCORE", "z", "100", "200"],
            &["ZREMRANGEBYSCORE", "z", "-inf", "3"],
            &["ZREMRANGEBYSCORE", "nokey", "-inf", "3"],
            &["ZREMRANGEBYSCORE", "z", "x", "3"],
            &["ZREMRANGEBYRANK", "z", "5", "10"],
            &["ZREMRANGEBYRANK", "z", "0", "0"],
            &["ZADD", "lx", "0", "a", "0", "b", "0", "c"],
            &["ZREMRANGEBYLEX", "lx", "[x", "[y"],
            &["ZREMRANGEBYLEX", "lx", "[a", "[b"],
            &["ZREMRANGEBYLEX", "lx", "x", "[b"],
            &["ZREMRANGEBYLEX", "lx", "-", "+"],
            &["ZREMRANGEBYRANK", "z", "0", "-1"],
            &["ZADD", "z", "1", "a"],
            &["ZREM", "z", "a"],
            &["EXISTS", "z", "lx"],
        ],
    ),
    (
        "KEA",
        &[
            &["ZADD", "z1", "1", "a", "2", "b"],
            &["ZADD", "z2", "2", "b", "3", "c"],
            &["ZUNIONSTORE", "d", "2", "z1", "z2"],
            &["ZINTERSTORE", "d", "2", "z1", "z2", "WEIGHTS", "2", "3"],
            &["ZDIFFSTORE", "d", "2", "z1", "z2"],
            &["ZINTERSTORE", "d", "2", "z1", "nokey"],
            &["ZINTERSTORE", "d", "2", "z1", "nokey"],
            &["ZDIFFSTORE", "d", "2", "z1", "z1"],
            &["ZUNIONSTORE", "d", "1", "nokey"],
            &["ZRANGESTORE", "d", "z1", "0", "-1"],
            &["ZRANGESTORE", "d", "z1", "5", "10"],
            &["ZRANGESTORE", "d", "z1", "5", "10"],
            &["ZRANGESTORE", "d", "nokey", "0", "-1"],
            &["ZRANGESTORE", "d", "z1", "(1", "+inf", "BYSCORE"],
            &["ZRANGESTORE", "d", "nokey", "0", "-1"],
            &["SADD", "st", "a", "x"],
            &["ZUNIONSTORE", "d", "2", "z1", "st"],
            &["HSET", "w", "f", "v"],
            &["ZUNIONSTORE", "d", "1", "w"],
            &["ZINTERSTORE", "d", "2", "z1", "w"],
            &["ZDIFFSTORE", "d", "2", "z1", "w"],
            &["ZRANGESTORE", "d", "w", "0", "-1"],
            &["ZUNIONSTORE", "d", "0", "z1"],
            &["ZUNIONSTORE", "d", "1", "z1", "WEIGHTS", "x"],
            &["EXISTS", "d"],
        ],
    ),
    (
        "KEA",
        &[
            &["ZADD", "p", "1", "a", "2", "b", "3", "c", "4", "d"],
            &["ZPOPMIN", "p"],
            &["ZPOPMAX", "p", "0"],
            &["ZPOPMAX", "p"],
            &["ZPOPMIN", "p", "5"],
            &["ZPOPMIN", "nokey"],
            &["ZPOPMAX", "nokey", "2"],
            &[
                "ZADD", "p", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
            ],
            &["ZMPOP", "2", "nokey", "p", "MIN"],
            &["ZMPOP", "1", "p", "MAX", "COUNT", "2"],
            &["ZMPOP", "1", "nokey", "MAX"],
            &["BZPOPMIN", "nokey", "p", "0"],
            &["BZPOPMAX", "p", "0"],
            &["ZADD", "p", "1", "a", "2", "b"],
            &["BZMPOP", "0", "1", "p", "MAX", "COUNT", "10"],
            &["EXISTS", "p"],
            &["HSET", "w", "f", "v"],
            &["ZPOPMIN", "w"],
            &["ZMPOP", "1", "w", "MIN"],
            &["BZPOPMAX", "w", "0"],
            &["ZADD", "w", "1", "a"],
            &["ZINCRBY", "w", "1", "a"],
            &["ZREM", "w", "a"],
            &["ZREMRANGEBYRANK", "w", "0", "-1"],
        ],
    ),
];

const GEO: &[Scenario] = &[(
    "KEA",
    &[
        &[
            "GEOADD",
            "g",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
        &["GEOADD", "g", "13.361389", "38.115556", "Palermo"],
        &["GEOADD", "g", "XX", "CH", "13.4", "38.1", "Palermo"],
        &["GEOADD", "g", "NX", "13.4", "38.1", "Palermo"],
        &["GEOADD", "g", "XX", "13.4", "38.1", "Nowhere"],
        &["GEOADD", "g", "200", "100", "Bad"],
        &["GEORADIUS", "g", "15", "37", "200", "km", "STORE", "d"],
        &[
            "GEORADIUSBYMEMBER",
            "g",
            "Palermo",
            "500",
            "km",
            "STOREDIST",
            "d",
        ],
        &[
            "GEOSEARCHSTORE",
            "d",
            "g",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "200",
            "km",
        ],
        &[
            "GEOSEARCHSTORE",
            "d",
            "g",
            "FROMMEMBER",
            "Catania",
            "BYBOX",
            "400",
            "400",
            "km",
            "STOREDIST",
        ],
        // Nothing found: the destination goes, then nothing more.
        &[
            "GEOSEARCHSTORE",
            "d",
            "g",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1",
            "km",
        ],
        &[
            "GEOSEARCHSTORE",
            "d",
            "g",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1",
            "km",
        ],
        &["HSET", "d", "f", "v"],
        &["GEORADIUS", "nokey", "15", "37", "200", "km", "STORE", "d"],
        &["GEORADIUS", "nokey", "15", "37", "200", "km", "STORE", "d"],
        &["GEORADIUS", "g", "0", "0", "1", "km", "STORE", "g2"],
        &["GEORADIUS", "g", "15", "37", "200", "km", "STORE", "g2"],
        &[
            "GEORADIUSBYMEMBER",
            "g",
            "Nowhere",
            "1",
            "km",
            "STORE",
            "g2",
        ],
        &[
            "GEOSEARCHSTORE",
            "g2",
            "nokey",
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1",
            "km",
        ],
        &[
            "GEORADIUS",
            "g",
            "15",
            "37",
            "200",
            "km",
            "STORE",
            "g2",
            "WITHDIST",
        ],
        &["HSET", "w", "f", "v"],
        &["GEOADD", "w", "13.3", "38.1", "P"],
        &["GEORADIUS", "w", "15", "37", "200", "km", "STORE", "g2"],
        &["EXISTS", "d", "g2"],
    ],
)];

/// Class filtering: only the classes asked for, on the channels asked
/// for (`del` is generic whatever the write that caused it).
const FILTERS: &[Scenario] = &[
    (
        "KEm",
        &[
            &["LLEN", "nol"],
            &["LRANGE", "nol", "0", "-1"],
            &["LINDEX", "nol", "0"],
            &["LPOS", "nol", "x"],
            &["HGET", "noh", "f"],
            &["HGETALL", "noh"],
            &["SMEMBERS", "nos"],
            &["SISMEMBER", "nos", "m"],
            &["SINTERCARD", "2", "nos", "nos2"],
            &["ZRANGE", "noz", "0", "-1"],
            &["ZSCORE", "noz", "m"],
            &["ZUNION", "2", "noz", "noz2"],
            &["RPUSH", "l", "a"],
            &["LLEN", "l"],
        ],
    ),
    (
        "Kl",
        &[
            &["RPUSH", "l", "a", "b"],
            &["LMOVE", "l", "m", "LEFT", "LEFT"],
            &["RPOP", "l"],
            &["HSET", "h", "f", "v"],
            &["SADD", "s", "a"],
            &["ZADD", "z", "1", "a"],
        ],
    ),
    (
        "Elg",
        &[
            &["RPUSH", "l", "a"],
            &["LPOP", "l"],
            &["SADD", "s", "a"],
            &["SREM", "s", "a"],
        ],
    ),
    (
        "Eh",
        &[
            &["HSET", "h", "f", "v"],
            &["HINCRBY", "h", "n", "1"],
            &["HINCRBYFLOAT", "h", "x", "1"],
            &["HDEL", "h", "f", "n", "x"],
            &["LPUSH", "l", "a"],
            &["SADD", "s", "a"],
        ],
    ),
    (
        "Ksz",
        &[
            &["SADD", "s", "a", "b"],
            &["SMOVE", "s", "t", "a"],
            &["SINTERSTORE", "d", "s", "t"],
            &["ZADD", "z", "1", "a"],
            &["ZUNIONSTORE", "zd", "1", "z"],
            &["ZPOPMIN", "z"],
            &["LPUSH", "l", "a"],
            &["HSET", "h", "f", "v"],
            &["SPOP", "s"],
        ],
    ),
    (
        "K$",
        &[
            &["RPUSH", "l", "a"],
            &["HSET", "h", "f", "v"],
            &["SADD", "s", "a"],
            &["ZADD", "z", "1", "a"],
            &["GEOADD", "g", "13.3", "38.1", "P"],
        ],
    ),
    (
        "Ez",
        &[
            &["GEOADD", "g", "13.3", "38.1", "P"],
            &[
                "GEOSEARCHSTORE",
                "d",
                "g",
                "FROMMEMBER",
                "P",
                "BYRADIUS",
                "1",
                "km",
            ],
            &[
                "GEOSEARCHSTORE",
                "d",
                "g",
                "FROMLONLAT",
                "0",
                "0",
                "BYRADIUS",
                "1",
                "km",
            ],
        ],
    ),
];

/// Runs `scenarios` on `srv`, with SPOP replies on the key `r` (random)
/// reduced to their command.
fn run(srv: &ServerProcess, scenarios: &[Scenario]) -> Result<Vec<String>> {
    let mut t = Vec::new();
    for (flags, cmds) in scenarios {
        t.push(format!("== {flags}"));
        for line in events(srv, flags, cmds)? {
            match line.split_once(" -> ") {
                Some((cmd, _)) if cmd.starts_with("SPOP r") => t.push(cmd.to_string()),
                _ => t.push(line),
            }
        }
    }
    Ok(t)
}

#[test]
fn list_events_match_redis() -> Result<()> {
    both(&[], |srv| run(srv, LIST))
}

#[test]
fn hash_events_match_redis() -> Result<()> {
    both(&[], |srv| run(srv, HASH))
}

#[test]
fn set_events_match_redis() -> Result<()> {
    both(&[], |srv| run(srv, SET))
}

#[test]
fn zset_events_match_redis() -> Result<()> {
    both(&[], |srv| run(srv, ZSET))
}

#[test]
fn geo_events_match_redis() -> Result<()> {
    both(&[], |srv| run(srv, GEO))
}

#[test]
fn class_filters_match_redis() -> Result<()> {
    both(&[], |srv| run(srv, FILTERS))
}

/// Waits until `n` clients are blocked.
fn blocked(w: &mut RawConn, n: usize) -> Result<()> {
    let want = format!("blocked_clients:{n}");
    let what = format!("{n} blocked clients");
    wait_for(&what, Duration::from_secs(10), || {
        let info = s(w.cmd(&["INFO", "clients"])?);
        Ok(info.lines().any(|l| l.trim_end() == want))
    })
    .with_context(|| s(w.cmd(&["INFO", "clients"]).unwrap_or_default()))
}

/// What `sub` heard until the message on `done`, one line per message.
fn heard(sub: &mut RawConn) -> Result<Vec<String>> {
    let mut t = Vec::new();
    loop {
        let m = Reply::parse(&sub.read_reply()?)?;
        let Reply::Aggregate(_, parts) = m else {
            bail!("not a message: {m:?}");
        };
        let words: Vec<String> = parts
            .iter()
            .map(|p| {
                s(p.to_bytes())
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        if words.get(1).map(String::as_str) == Some("done") {
            return Ok(t);
        }
        t.push(words[1..].join(" "));
    }
}

/// Each case: the blocking command, then the write that serves it.
const SERVED: &[(&[&str], &[&str])] = &[
    (&["BLPOP", "q", "0"], &["RPUSH", "q", "x"]),
    (&["BRPOP", "q", "0"], &["RPUSH", "q", "a", "b"]),
    (&["BLPOP", "q1", "0"], &["LPUSH", "q1", "c"]),
    (
        &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"],
        &["LPUSH", "src", "v"],
    ),
    (
        &["BRPOPLPUSH", "src", "dst", "0"],
        &["RPUSH", "src", "w", "y"],
    ),
    (
        &["BLMPOP", "0", "2", "none", "q2", "LEFT", "COUNT", "5"],
        &["RPUSH", "q2", "a", "b"],
    ),
    (
        &["BLMPOP", "0", "1", "q3", "RIGHT", "COUNT", "1"],
        &["RPUSH", "q3", "a", "b"],
    ),
    (&["BZPOPMIN", "z", "0"], &["ZADD", "z", "1", "m"]),
    (&["BZPOPMAX", "z", "0"], &["ZADD", "z", "1", "m", "2", "n"]),
    (
        &["BZMPOP", "0", "1", "z2", "MAX", "COUNT", "1"],
        &["ZADD", "z2", "1", "a", "2", "b"],
    ),
    (
        &["BZMPOP", "0", "1", "z3", "MIN", "COUNT", "5"],
        &["ZADD", "z3", "1", "a", "2", "b"],
    ),
];

#[test]
fn served_blocked_pops_match_redis() -> Result<()> {
    both(&[], |srv| {
        let mut c = srv.conn()?;
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"])?;
        let mut sub = srv.conn()?;
        sub.cmd(&["PSUBSCRIBE", "__key*__:*"])?;
        sub.cmd(&["SUBSCRIBE", "done"])?;
        let mut waiter = srv.conn()?;
        let mut t = Vec::new();
        for (block, write) in SERVED {
            waiter.send(block)?;
            blocked(&mut c, 1).with_context(|| block.join(" "))?;
            t.push(format!(
                "{} -> {}",
                write.join(" "),
                s(c.cmd(write)?).trim_end()
            ));
            let served = Reply::parse(&waiter.read_reply()?)?;
            t.push(format!(
                "{} -> {}",
                block.join(" "),
                s(served.to_bytes()).trim_end()
            ));
        }
        // Two waiters on one key: the first served pops, the second waits
        // on; the push that serves it as well.
        let mut second = srv.conn()?;
        waiter.send(&["BLPOP", "k", "0"])?;
        blocked(&mut c, 1)?;
        second.send(&["BLMOVE", "k", "out", "RIGHT", "LEFT", "0"])?;
        blocked(&mut c, 2)?;
        t.push(s(c.cmd(&["RPUSH", "k", "1"])?));
        t.push(s(waiter.read_reply()?));
        t.push(s(c.cmd(&["RPUSH", "k", "2", "3"])?));
        t.push(s(second.read_reply()?));
        // A served move feeding a client blocked on its destination.
        waiter.send(&["BLMOVE", "in", "mid", "LEFT", "LEFT", "0"])?;
        blocked(&mut c, 1)?;
        second.send(&["BLPOP", "mid", "0"])?;
        blocked(&mut c, 2)?;
        t.push(s(c.cmd(&["LPUSH", "in", "x"])?));
        t.push(s(waiter.read_reply()?));
        t.push(s(second.read_reply()?));
        c.cmd(&["PUBLISH", "done", "."])?;
        t.extend(heard(&mut sub)?);
        Ok(t)
    })
}
