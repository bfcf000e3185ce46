//! DEBUG DIGEST and DIGEST-VALUE against redis-server 7.0: the same data
//! must give the same digest on both, whatever each server's encodings;
//! DEBUG PROTOCOL's replies byte for byte in RESP2 and RESP3.

use anyhow::Result;
use rampart_tests::notify::{both, s};
use rampart_tests::ServerProcess;

fn fill(srv: &ServerProcess) -> Result<()> {
    let mut c = srv.conn()?;
    c.cmd(&["FLUSHALL"])?;
    c.cmd(&["SET", "s", "hello"])?;
    c.cmd(&["SET", "n", "-12345"])?;
    c.cmd(&["SET", "e", "v", "EX", "1000"])?;
    c.cmd(&["RPUSH", "l", "a", "b", "c", "1", "2"])?;
    c.cmd(&["SADD", "si", "1", "2", "3"])?;
    c.cmd(&["SADD", "ss", "x", "y", "1"])?;
    c.cmd(&["ZADD", "z", "1.5", "a", "2", "b", "-3.25", "c", "0.1", "d"])?;
    c.cmd(&["HSET", "h", "f1", "v1", "f2", "v2"])?;
    // Large encodings: quicklist, hashtable, skiplist.
    for i in 0..300 {
        let i = i.to_string();
        let v = format!("value-{i}");
        c.cmd(&["RPUSH", "bl", &v])?;
        c.cmd(&["SADD", "bs", &v])?;
        c.cmd(&["ZADD", "bz", &i, &v])?;
        c.cmd(&["HSET", "bh", &v, &i])?;
    }
    c.cmd(&["SELECT", "5"])?;
    c.cmd(&["SET", "s", "hello"])?;
    Ok(())
}

#[test]
fn digests_match_redis() -> Result<()> {
    both(&["--enable-debug-command", "yes"], |srv| {
        let mut t = Vec::new();
        let mut c = srv.conn()?;
        t.push(s(c.cmd(&["DEBUG", "DIGEST"])?));
        fill(srv)?;
        t.push(s(c.cmd(&["DEBUG", "DIGEST"])?));
        t.push(s(c.cmd(&[
            "DEBUG",
            "DIGEST-VALUE",
            "s",
            "n",
            "e",
            "l",
            "si",
            "ss",
            "z",
            "h",
            "bl",
            "bs",
            "bz",
            "bh",
            "nosuch",
        ])?));
        t.push(s(c.cmd(&["DEBUG", "DIGEST-VALUE"])?));
        // Order matters in a list, not in a set; the database matters.
        c.cmd(&["LPUSH", "l", "first"])?;
        c.cmd(&["SREM", "ss", "x"])?;
        c.cmd(&["SADD", "ss", "x"])?;
        t.push(s(c.cmd(&["DEBUG", "DIGEST"])?));
        c.cmd(&["MOVE", "s", "9"])?;
        t.push(s(c.cmd(&["DEBUG", "DIGEST"])?));
        c.cmd(&["PERSIST", "e"])?;
        t.push(s(c.cmd(&["DEBUG", "DIGEST-VALUE", "e"])?));
        t.push(s(c.cmd(&["DEBUG", "DIGEST", "extra"])?));
        Ok(t)
    })
}

#[test]
fn debug_protocol_matches_redis() -> Result<()> {
    both(&["--enable-debug-command", "yes"], |srv| {
        let mut t = Vec::new();
        let types = [
            "string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib",
            "push", "true", "false", "verbatim", "nope",
        ];
        for proto in ["2", "3"] {
            let mut c = srv.conn()?;
            c.cmd(&["HELLO", proto])?;
            for ty in types {
                t.push(s(c.cmd(&["DEBUG", "PROTOCOL", ty])?));
                if ty == "push" && proto == "3" {
                    // The push, then the real reply.
                    t.push(s(c.read_reply()?));
                }
            }
        }
        Ok(t)
    })
}
