//! Differential helpers for Pub/Sub and keyspace notifications: run the
//! same steps on a Rampart and a redis-server and compare what was heard.

use anyhow::{bail, Result};

use crate::{Rampart, RedisOracle, Reply, ServerProcess};

/// Runs `f` against a fresh Rampart and a fresh redis-server and fails on
/// the first difference in what it returns.
pub fn both(extra: &[&str], f: impl Fn(&ServerProcess) -> Result<Vec<String>>) -> Result<()> {
    let r = Rampart::start(extra)?;
    let o = RedisOracle::start_with(extra)?;
    let ours = f(&r)?;
    let theirs = f(&o)?;
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a != b {
            bail!("step {i}: rampart {a:?}, redis {b:?}\nall ours: {ours:#?}");
        }
    }
    if ours.len() != theirs.len() {
        bail!("rampart gave {} steps, redis {}", ours.len(), theirs.len());
    }
    Ok(())
}

/// A reply's bytes as text.
pub fn s(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// What a subscriber to every keyspace and keyevent channel hears while
/// `cmds` run on another connection, ended by a message on `done`.
pub fn events(srv: &ServerProcess, flags: &str, cmds: &[&[&str]]) -> Result<Vec<String>> {
    let mut c = srv.conn()?;
    c.cmd(&["FLUSHALL"])?;
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", flags])?;
    let mut sub = srv.conn()?;
    sub.cmd(&["PSUBSCRIBE", "__key*__:*"])?;
    sub.cmd(&["SUBSCRIBE", "done"])?;
    let mut t = Vec::new();
    for cmd in cmds {
        let reply = c.cmd(cmd)?;
        t.push(format!("{} -> {}", cmd.join(" "), s(reply).trim_end()));
    }
    c.cmd(&["PUBLISH", "done", "."])?;
    loop {
        let m = Reply::parse(&sub.read_reply()?)?;
        let Reply::Aggregate(_, parts) = m else {
            bail!("not a message: {m:?}");
        };
        let words: Vec<String> = parts
            .iter()
            .map(|p| {
                let b = p.to_bytes();
                let text = s(b);
                text.lines().last().unwrap_or_default().to_string()
            })
            .collect();
        if words.get(1).map(String::as_str) == Some("done") {
            break;
        }
        t.push(words[1..].join(" "));
    }
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""])?;
    Ok(t)
}
