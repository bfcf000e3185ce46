//! MIGRATE against redis-server 7.0: moving keys to a third server (a
//! redis-server), the same replies and the same effects on both sides.

use anyhow::Result;
use rampart_tests::notify::{both, s};
use rampart_tests::RedisOracle;

#[test]
fn migrate_moves_keys_as_redis_does() -> Result<()> {
    let target = RedisOracle::start_with(&["--requirepass", "tpass"])?;
    let tport = target.port().to_string();
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut tc = target.conn()?;
        tc.cmd(&["AUTH", "tpass"])?;
        tc.cmd(&["FLUSHALL"])?;
        let mut c = srv.conn()?;
        c.cmd(&["FLUSHALL"])?;
        c.cmd(&["SET", "a", "1"])?;
        c.cmd(&["SET", "b", "2", "EX", "1000"])?;
        c.cmd(&["RPUSH", "l", "x", "y"])?;
        c.cmd(&["SET", "c", "3"])?;
        let m = |c: &mut rampart_tests::RawConn, extra: &[&str]| -> Result<String> {
            let mut args = vec!["MIGRATE", "127.0.0.1", tport.as_str()];
            args.extend(extra);
            Ok(s(c.cmd(&args)?))
        };
        t.push(m(&mut c, &["a", "2", "5000"])?);
        t.push(m(&mut c, &["a", "2", "5000", "AUTH", "wrong"])?);
        t.push(m(&mut c, &["a", "2", "5000", "AUTH", "tpass"])?);
        t.push(s(c.cmd(&["EXISTS", "a"])?));
        t.push(m(&mut c, &["nosuch", "2", "5000", "AUTH", "tpass"])?);
        t.push(m(
            &mut c,
            &[
                "", "2", "5000", "COPY", "AUTH", "tpass", "KEYS", "b", "l", "nosuch",
            ],
        )?);
        t.push(s(c.cmd(&["EXISTS", "b", "l"])?));
        // Already there: BUSYKEY from the target, unless REPLACE.
        t.push(m(&mut c, &["b", "2", "5000", "AUTH2", "default", "tpass"])?);
        t.push(m(
            &mut c,
            &["b", "2", "5000", "REPLACE", "AUTH2", "default", "tpass"],
        )?);
        t.push(s(c.cmd(&["EXISTS", "b"])?));
        t.push(m(&mut c, &["c", "2", "5000", "KEYS", "c"])?);
        t.push(m(&mut c, &["c", "2", "5000", "BOGUS"])?);
        t.push(m(&mut c, &["c", "x", "5000"])?);
        t.push(m(&mut c, &["c", "2", "5000", "AUTH"])?);
        tc.cmd(&["SELECT", "2"])?;
        t.push(s(tc.cmd(&["MGET", "a", "b", "l", "c"])?));
        t.push(s(tc.cmd(&["LRANGE", "l", "0", "-1"])?));
        let ttl = s(tc.cmd(&["TTL", "b"])?);
        t.push(format!(
            "ttl kept: {}",
            ttl.trim_start_matches(':')
                .trim()
                .parse::<i64>()
                .unwrap_or(0)
                > 900
        ));
        // Nobody listening: an I/O error, the key stays.
        let closed = rampart_tests::free_port()?.to_string();
        t.push(s(c.cmd(&[
            "MIGRATE",
            "127.0.0.1",
            &closed,
            "c",
            "0",
            "500",
        ])?));
        t.push(s(c.cmd(&["EXISTS", "c"])?));
        Ok(t)
    })
}
