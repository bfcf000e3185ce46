//! Pub/Sub and keyspace notifications, against redis-server 7.0: the
//! same connections doing the same things on both servers must read the
//! same bytes (where Redis's order is its hash table's, both sides are
//! sorted first).

use std::time::Duration;

use anyhow::Result;
use rampart_tests::notify::{both, events, s};
use rampart_tests::{wait_for, Rampart, RawConn, Reply};

/// `n` (un)subscribe confirmations read from `c`: the channel names
/// sorted (Redis goes through its hash table's order), then the counts in
/// the order they came.
fn sorted(c: &mut RawConn, n: usize) -> Result<String> {
    let mut names = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..n {
        match Reply::parse(&c.read_reply()?)? {
            Reply::Aggregate(_, parts) if parts.len() == 3 => {
                names.push(s(parts[0].to_bytes()) + &s(parts[1].to_bytes()));
                counts.push(s(parts[2].to_bytes()));
            }
            other => names.push(format!("{other:?}")),
        }
    }
    names.sort();
    Ok(format!("{} | {}", names.join(""), counts.join("")))
}

/// The elements of an array reply, sorted.
fn sorted_array(raw: Vec<u8>) -> Result<String> {
    match Reply::parse(&raw)? {
        Reply::Aggregate(head, items) => {
            let mut v: Vec<String> = items.iter().map(|i| s(i.to_bytes())).collect();
            v.sort();
            Ok(format!("{}{}", s(head), v.join("")))
        }
        Reply::Scalar(b) => Ok(s(b)),
    }
}

#[test]
fn subscribe_publish_and_pubsub_introspection_match_redis() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut a = srv.conn()?;
        let mut b = srv.conn()?;
        let mut p = srv.conn()?;
        // RESP2 subscriber: channels, a repeat, patterns, shard channels.
        a.send(&["SUBSCRIBE", "c1", "c2", "c1"])?;
        for _ in 0..3 {
            t.push(s(a.read_reply()?));
        }
        t.push(s(a.cmd(&["PSUBSCRIBE", "c*", "h?llo", "c*"])?));
        t.push(s(a.read_reply()?));
        t.push(s(a.read_reply()?));
        t.push(s(a.cmd(&["SSUBSCRIBE", "s1"])?));
        // Subscribed RESP2: PING's array form, other commands refused.
        t.push(s(a.cmd(&["PING"])?));
        t.push(s(a.cmd(&["PING", "hi"])?));
        t.push(s(a.cmd(&["GET", "k"])?));
        t.push(s(a.cmd(&["CONFIG", "GET", "maxmemory"])?));
        t.push(s(a.cmd(&["UNSUBSCRIBE", "nosuch"])?));
        // RESP3 subscriber: pushes, other commands allowed, and a message
        // to itself comes before PUBLISH's reply.
        t.push(sorted_array(b.cmd(&["HELLO", "3"])?).map(|_| String::new())?);
        t.push(s(b.cmd(&["SUBSCRIBE", "c1"])?));
        t.push(s(b.cmd(&["SET", "k", "v"])?));
        b.send(&["PUBLISH", "c1", "self"])?;
        t.push(s(b.read_reply()?));
        t.push(s(b.read_reply()?));
        // Publishing.
        t.push(s(p.cmd(&["PUBLISH", "c1", "m1"])?));
        t.push(s(p.cmd(&["PUBLISH", "cx", "m2"])?));
        t.push(s(p.cmd(&["PUBLISH", "hello", "m3"])?));
        t.push(s(p.cmd(&["PUBLISH", "nobody", "m4"])?));
        t.push(s(p.cmd(&["SPUBLISH", "s1", "m5"])?));
        t.push(s(p.cmd(&["SPUBLISH", "c1", "m6"])?));
        for _ in 0..7 {
            t.push(s(a.read_reply()?));
        }
        t.push(s(b.read_reply()?));
        // Introspection.
        t.push(s(p.cmd(&["PUBSUB", "NUMSUB", "c1", "c2", "zz"])?));
        t.push(s(p.cmd(&["PUBSUB", "NUMSUB"])?));
        t.push(s(p.cmd(&["PUBSUB", "NUMPAT"])?));
        t.push(s(p.cmd(&["PUBSUB", "SHARDNUMSUB", "s1", "c1"])?));
        t.push(sorted_array(p.cmd(&["PUBSUB", "CHANNELS"])?)?);
        t.push(sorted_array(p.cmd(&["PUBSUB", "CHANNELS", "c?"])?)?);
        t.push(sorted_array(p.cmd(&["PUBSUB", "SHARDCHANNELS"])?)?);
        t.push(s(p.cmd(&["PUBSUB", "CHANNELS", "a", "b"])?));
        t.push(s(p.cmd(&["PUBSUB", "NUMPAT", "x"])?));
        t.push(s(p.cmd(&["PUBSUB", "HELP"])?));
        t.push(s(p.cmd(&["PUBSUB", "NOSUCH"])?));
        t.push(s(p.cmd(&["PUBSUB"])?));
        t.push(s(p.cmd(&["PUBLISH", "c1"])?));
        t.push(s(p.cmd(&["SUBSCRIBE"])?));
        let list = s(p.cmd(&["CLIENT", "LIST"])?);
        let mut flags: Vec<String> = list
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l
                    .split(' ')
                    .filter(|w| {
                        ["flags=", "sub=", "psub=", "ssub="]
                            .iter()
                            .any(|p| w.starts_with(p))
                    })
                    .collect();
                (!f.is_empty()).then(|| f.join(" "))
            })
            .collect();
        flags.sort();
        t.push(flags.join("|"));
        // Leaving: everything at once (hash order: sorted), then nothing.
        a.send(&["UNSUBSCRIBE"])?;
        t.push(sorted(&mut a, 2)?);
        a.send(&["PUNSUBSCRIBE"])?;
        t.push(sorted(&mut a, 2)?);
        t.push(s(a.cmd(&["UNSUBSCRIBE"])?));
        t.push(s(a.cmd(&["PUNSUBSCRIBE"])?));
        t.push(s(a.cmd(&["SUNSUBSCRIBE", "s1", "s2"])?));
        t.push(s(a.cmd(&["SUNSUBSCRIBE"])?));
        // Out of subscribed mode: commands work again.
        t.push(s(a.cmd(&["GET", "k"])?));
        t.push(s(a.cmd(&["PING"])?));
        // RESET leaves every channel silently; MULTI publishes at EXEC.
        t.push(s(b.cmd(&["PSUBSCRIBE", "z*"])?));
        t.push(s(b.cmd(&["RESET"])?));
        t.push(s(p.cmd(&["PUBSUB", "NUMSUB", "c1"])?));
        t.push(s(p.cmd(&["PUBSUB", "NUMPAT"])?));
        t.push(s(a.cmd(&["SUBSCRIBE", "tx"])?));
        t.push(s(p.cmd(&["MULTI"])?));
        t.push(s(p.cmd(&["PUBLISH", "tx", "in-multi"])?));
        t.push(s(p.cmd(&["EXEC"])?));
        t.push(s(a.read_reply()?));
        t.push(
            s(p.cmd(&["INFO", "stats"])?)
                .lines()
                .filter(|l| l.starts_with("pubsub"))
                .collect::<Vec<_>>()
                .join(","),
        );
        Ok(t)
    })
}

#[test]
fn disconnect_and_quit_leave_every_channel() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut p = srv.conn()?;
        {
            let mut a = srv.conn()?;
            a.send(&["SUBSCRIBE", "x", "y"])?;
            a.read_reply()?;
            a.read_reply()?;
            t.push(s(a.cmd(&["PSUBSCRIBE", "x*"])?));
            t.push(s(a.cmd(&["QUIT"])?));
        }
        let mut c = srv.conn()?;
        t.push(s(c.cmd(&["SSUBSCRIBE", "q"])?));
        drop(c);
        wait_for("the subscribers to go", Duration::from_secs(10), || {
            Ok(p.cmd(&["PUBLISH", "x", "gone"])? == b":0\r\n"
                && p.cmd(&["SPUBLISH", "q", "gone"])? == b":0\r\n")
        })?;
        t.push(s(p.cmd(&["PUBSUB", "NUMPAT"])?));
        Ok(t)
    })
}

/// One scenario per family: (notify-keyspace-events, commands).
type Scenario = (&'static str, &'static [&'static [&'static str]]);

/// Keyspace events, command by command. Each scenario runs on both
/// servers and the events heard must be the same, in the same order.
const SCENARIOS: &[Scenario] = &[
    (
        "KEA",
        &[
            &["SET", "a", "1"],
            &["DEL", "a", "nosuch"],
            &["SET", "a", "1"],
            &["EXPIRE", "a", "100"],
            &["PERSIST", "a"],
            &["RENAME", "a", "b"],
            &["UNLINK", "b"],
        ],
    ),
    ("E$", &[&["SET", "a", "1"], &["APPEND", "a", "2"]]),
    ("Kg", &[&["SET", "a", "1"], &["DEL", "a"]]),
];

#[test]
fn keyspace_events_match_redis() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        for (flags, cmds) in SCENARIOS {
            t.push(format!("== {flags}"));
            t.extend(events(srv, flags, cmds)?);
        }
        Ok(t)
    })
}

#[test]
fn expired_keys_are_announced() -> Result<()> {
    both(&[], |srv| {
        let mut c = srv.conn()?;
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Ex"])?;
        let mut sub = srv.conn()?;
        sub.cmd(&["SUBSCRIBE", "__keyevent@0__:expired"])?;
        c.cmd(&["SET", "k", "v", "PX", "10"])?;
        // Active expiry (or this GET) removes it.
        std::thread::sleep(Duration::from_millis(50));
        c.cmd(&["GET", "k"])?;
        Ok(vec![s(sub.read_reply()?)])
    })
}

#[test]
fn slow_subscriber_is_disconnected_at_the_pubsub_limit() -> Result<()> {
    let limit = ["--client-output-buffer-limit", "pubsub 256kb 64kb 60"];
    both(&limit, |srv| {
        let mut sub = srv.conn()?;
        sub.cmd(&["SUBSCRIBE", "firehose"])?;
        let mut p = srv.conn()?;
        let msg = vec![b'x'; 4096];
        // The subscriber never reads: past the hard limit it is closed,
        // and publishing goes on undisturbed.
        let mut delivered = 0;
        for _ in 0..2000 {
            let r = p.cmd(&[&b"PUBLISH"[..], b"firehose", &msg])?;
            if r == b":1\r\n" {
                delivered += 1;
            }
        }
        wait_for(
            "the subscriber to be closed",
            Duration::from_secs(10),
            || {
                Ok(p.cmd(&["PUBSUB", "NUMSUB", "firehose"])?
                    .ends_with(b":0\r\n"))
            },
        )?;
        let (_, closed) = sub.read_until_close(Duration::from_secs(10))?;
        Ok(vec![
            format!("closed: {closed}"),
            format!("some delivered: {}", delivered > 0 && delivered < 2000),
            s(p.cmd(&["PING"])?),
        ])
    })?;
    Ok(())
}

#[test]
fn publish_reaches_subscribers_on_a_replica() -> Result<()> {
    // Both ends share a keyring: the full sync is encrypted.
    let keys = tempfile::tempdir()?;
    let keyring = keys.path().join("keyring.json");
    let keyring = keyring.to_string_lossy();
    let fast = [
        "--repl-diskless-sync-delay",
        "0",
        "--kms-key-file",
        &keyring,
    ];
    let primary = Rampart::start(&fast)?;
    let link = format!("127.0.0.1 {}", primary.port());
    let mut a = fast.to_vec();
    a.extend(["--replicaof", &link]);
    let replica = Rampart::start(&a)?;
    let mut rc = replica.conn()?;
    wait_for("the replica to sync", Duration::from_secs(30), || {
        let info = rc.cmd(&["INFO", "replication"])?;
        Ok(s(info).contains("master_link_status:up"))
    })?;
    let mut sub = replica.conn()?;
    sub.cmd(&["SUBSCRIBE", "news"])?;
    let mut p = primary.conn()?;
    // Subscribers of the primary's channel count; the replica's hear it too.
    assert_eq!(p.cmd(&["PUBLISH", "news", "hello"])?, b":0\r\n");
    let m = s(sub.read_reply()?);
    assert_eq!(m, "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
    Ok(())
}

#[test]
fn subscribers_lose_their_connection_when_acl_takes_their_channels() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut admin = srv.conn()?;
        t.push(s(admin.cmd(&[
            "ACL", "SETUSER", "u", "on", "nopass", "+@all", "~*", "&chan*",
        ])?));
        let mut a = srv.conn()?;
        t.push(s(a.cmd(&["AUTH", "u", "x"])?));
        t.push(s(a.cmd(&["SUBSCRIBE", "other"])?));
        t.push(s(a.cmd(&["SUBSCRIBE", "chan1"])?));
        t.push(s(a.cmd(&["PSUBSCRIBE", "chan*"])?));
        t.push(s(a.cmd(&["PSUBSCRIBE", "c*"])?));
        // More channels: nobody loses anything.
        t.push(s(admin.cmd(&["ACL", "SETUSER", "u", "&more"])?));
        t.push(s(admin.cmd(&["PUBLISH", "chan1", "still"])?));
        t.push(s(a.read_reply()?));
        t.push(s(a.read_reply()?));
        // Fewer: the subscriber is disconnected.
        t.push(s(admin.cmd(&[
            "ACL",
            "SETUSER",
            "u",
            "resetchannels",
            "&chan1",
        ])?));
        let (_, closed) = a.read_until_close(Duration::from_secs(5))?;
        t.push(format!("closed: {closed}"));
        t.push(s(admin.cmd(&["PUBSUB", "NUMSUB", "chan1"])?));
        Ok(t)
    })
}
