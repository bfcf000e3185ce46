//! MONITOR against redis-server 7.0: the same commands must show up as
//! the same lines (timestamps and client ports aside), secrets redacted,
//! administrative commands left out.

use anyhow::Result;
use rampart_tests::notify::{both, s};
use rampart_tests::RawConn;

/// A monitor line with its timestamp and the client's port made constant.
fn normal(line: &str) -> String {
    match (line.find(" ["), line.find("] ")) {
        (Some(a), Some(b)) => {
            let who = &line[a + 2..b];
            let who = match who.rsplit_once(':') {
                Some((head, _)) => format!("{head}:PORT"),
                None => who.to_string(),
            };
            format!("+T [{who}]{}", &line[b + 1..])
        }
        _ => line.to_string(),
    }
}

fn next(m: &mut RawConn) -> Result<String> {
    Ok(normal(&s(m.read_reply()?)))
}

#[test]
fn monitor_shows_what_redis_shows() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut m = srv.conn()?;
        t.push(s(m.cmd(&["MONITOR"])?));
        let mut c = srv.conn()?;
        let steps: &[&[&str]] = &[
            &["SET", "k", "with \"quotes\" and\nnewline \x01"],
            &["GET", "k"],
            &["AUTH", "secret"],
            &["AUTH", "user", "secret"],
            &["HELLO", "2", "AUTH", "default", "pw", "SETNAME", "n"],
            &["CONFIG", "GET", "maxmemory"],
            &["SELECT", "3"],
            &["MULTI"],
            &["INCR", "n"],
            &["EXEC"],
            &["NOSUCHCOMMAND", "x"],
            &["GET"],
            &["PING"],
        ];
        for cmd in steps {
            c.cmd(cmd)?;
        }
        // Every shown command, in order; the last is PING.
        loop {
            let l = next(&mut m)?;
            let done = l.contains("\"PING\"");
            t.push(l);
            if done {
                break;
            }
        }
        // A second MONITOR gets no reply; the monitor's own commands show.
        m.send(&["MONITOR"])?;
        t.push(s(m.cmd(&["ECHO", "hi"])?));
        t.push(next(&mut m)?);
        // CLIENT INFO's own line and its reply: the flags show MONITOR.
        m.send(&["CLIENT", "INFO"])?;
        for _ in 0..2 {
            let r = s(m.read_reply()?);
            t.push(match r.split(' ').find(|w| w.starts_with("flags=")) {
                Some(f) => f.to_string(),
                None => normal(&r),
            });
        }
        // RESET leaves MONITOR mode.
        t.push(s(m.cmd(&["RESET"])?));
        c.cmd(&["SET", "after", "reset"])?;
        t.push(s(m.cmd(&["PING"])?));
        Ok(t)
    })
}
