//! Client-side caching (CLIENT TRACKING) against redis-server 7.0: the
//! same connections doing the same things must read the same bytes.

use std::time::Duration;

use anyhow::Result;
use rampart_tests::notify::{both, s};
use rampart_tests::{RawConn, ServerProcess};

/// A RESP3 connection with tracking turned on with `opts`.
fn tracker(srv: &ServerProcess, opts: &[&str]) -> Result<RawConn> {
    let mut c = srv.conn()?;
    c.cmd(&["HELLO", "3"])?;
    let mut args = vec!["CLIENT", "TRACKING", "ON"];
    args.extend(opts);
    let r = c.cmd(&args)?;
    anyhow::ensure!(r == b"+OK\r\n", "tracking refused: {}", s(r));
    Ok(c)
}

fn id_of(c: &mut RawConn) -> Result<String> {
    let r = s(c.cmd(&["CLIENT", "ID"])?);
    Ok(r.trim_start_matches(':').trim_end().to_string())
}

#[test]
fn default_mode_invalidates_what_was_read() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut a = tracker(srv, &[])?;
        let mut b = srv.conn()?;
        t.push(s(a.cmd(&["GET", "k"])?));
        t.push(s(a.cmd(&["MGET", "m1", "m2"])?));
        t.push(s(b.cmd(&["SET", "k", "v"])?));
        // The invalidation arrives before anything a later command says.
        t.push(s(a.read_reply()?));
        t.push(s(b.cmd(&["SET", "k", "again"])?));
        t.push(s(a.cmd(&["PING"])?));
        t.push(s(b.cmd(&["MSET", "m1", "1", "m2", "2"])?));
        t.push(s(a.read_reply()?));
        t.push(s(a.read_reply()?));
        // Its own write: the reply first, then the invalidation.
        t.push(s(a.cmd(&["GET", "k"])?));
        a.send(&["SET", "k", "mine"])?;
        t.push(s(a.read_reply()?));
        t.push(s(a.read_reply()?));
        // An expired key is invalidated too.
        t.push(s(b.cmd(&["SET", "e", "v", "PX", "20"])?));
        t.push(s(a.cmd(&["GET", "e"])?));
        std::thread::sleep(Duration::from_millis(60));
        t.push(s(b.cmd(&["GET", "e"])?));
        t.push(s(a.read_reply()?));
        // FLUSHALL: a null invalidation, to itself after the reply.
        t.push(s(b.cmd(&["FLUSHALL"])?));
        t.push(s(a.read_reply()?));
        a.send(&["FLUSHDB"])?;
        t.push(s(a.read_reply()?));
        t.push(s(a.read_reply()?));
        t.push(s(a.cmd(&["CLIENT", "TRACKINGINFO"])?));
        t.push(s(a.cmd(&["CLIENT", "GETREDIR"])?));
        let info = s(b.cmd(&["INFO", "stats"])?);
        t.push(
            info.lines()
                .filter(|l| l.starts_with("tracking_total"))
                .collect::<Vec<_>>()
                .join(","),
        );
        let info = s(b.cmd(&["INFO", "clients"])?);
        t.push(
            info.lines()
                .filter(|l| l.starts_with("tracking_clients"))
                .collect::<Vec<_>>()
                .join(","),
        );
        t.push(s(a.cmd(&["CLIENT", "TRACKING", "OFF"])?));
        t.push(s(a.cmd(&["GET", "k"])?));
        t.push(s(b.cmd(&["SET", "k", "v"])?));
        t.push(s(a.cmd(&["PING"])?));
        Ok(t)
    })
}

#[test]
fn noloop_optin_optout() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut b = srv.conn()?;
        let mut a = tracker(srv, &["NOLOOP"])?;
        t.push(s(a.cmd(&["GET", "k"])?));
        t.push(s(a.cmd(&["SET", "k", "mine"])?));
        t.push(s(a.cmd(&["PING"])?));
        let mut i = tracker(srv, &["OPTIN"])?;
        t.push(s(i.cmd(&["GET", "k1"])?));
        t.push(s(i.cmd(&["CLIENT", "CACHING", "YES"])?));
        t.push(s(i.cmd(&["CLIENT", "TRACKINGINFO"])?));
        t.push(s(i.cmd(&["GET", "k2"])?));
        t.push(s(i.cmd(&["GET", "k3"])?));
        t.push(s(b.cmd(&["MSET", "k1", "1", "k2", "2", "k3", "3"])?));
        t.push(s(i.read_reply()?));
        t.push(s(i.cmd(&["PING"])?));
        // CACHING YES before MULTI covers the whole transaction.
        t.push(s(i.cmd(&["CLIENT", "CACHING", "YES"])?));
        t.push(s(i.cmd(&["MULTI"])?));
        t.push(s(i.cmd(&["GET", "t1"])?));
        t.push(s(i.cmd(&["GET", "t2"])?));
        t.push(s(i.cmd(&["EXEC"])?));
        t.push(s(b.cmd(&["DEL", "t1", "t2", "zz"])?));
        t.push(s(b.cmd(&["SET", "t1", "x"])?));
        t.push(s(i.read_reply()?));
        let mut o = tracker(srv, &["OPTOUT"])?;
        t.push(s(o.cmd(&["CLIENT", "CACHING", "NO"])?));
        t.push(s(o.cmd(&["CLIENT", "TRACKINGINFO"])?));
        t.push(s(o.cmd(&["GET", "n1"])?));
        t.push(s(o.cmd(&["GET", "n2"])?));
        t.push(s(b.cmd(&["MSET", "n1", "1", "n2", "2"])?));
        t.push(s(o.read_reply()?));
        t.push(s(o.cmd(&["PING"])?));
        Ok(t)
    })
}

#[test]
fn bcast_prefixes() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut b = srv.conn()?;
        let mut a = tracker(srv, &["BCAST", "PREFIX", "a:", "PREFIX", "b:"])?;
        t.push(s(a.cmd(&["CLIENT", "TRACKINGINFO"])?));
        t.push(s(b.cmd(&[
            "MSET", "b:2", "y", "a:1", "x", "c:3", "z", "a:0", "w",
        ])?));
        t.push(s(a.read_reply()?));
        t.push(s(a.read_reply()?));
        t.push(s(b.cmd(&["SET", "c:1", "v"])?));
        t.push(s(a.cmd(&["PING"])?));
        // Its own changes too, unless NOLOOP; after its reply.
        a.send(&["SET", "a:self", "v"])?;
        t.push(s(a.read_reply()?));
        t.push(s(a.read_reply()?));
        let mut n = tracker(srv, &["BCAST", "NOLOOP"])?;
        t.push(s(n.cmd(&["SET", "q", "v"])?));
        t.push(s(n.cmd(&["PING"])?));
        t.push(s(b.cmd(&["SET", "q", "w"])?));
        t.push(s(n.read_reply()?));
        // An extra prefix on the same connection.
        t.push(s(
            a.cmd(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "d"])?
        ));
        t.push(s(a.cmd(&["CLIENT", "TRACKINGINFO"])?));
        let info = s(b.cmd(&["INFO", "stats"])?);
        t.push(
            info.lines()
                .filter(|l| l.starts_with("tracking_total_prefixes"))
                .collect::<Vec<_>>()
                .join(","),
        );
        let list = s(b.cmd(&["CLIENT", "LIST"])?);
        let mut flags: Vec<String> = list
            .lines()
            .filter_map(|l| l.split(' ').find(|w| w.starts_with("flags=")))
            .map(str::to_string)
            .collect();
        flags.sort();
        t.push(flags.join(","));
        Ok(t)
    })
}

#[test]
fn redirect_to_a_resp2_subscriber_and_broken_redirect() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut r = srv.conn()?;
        let rid = id_of(&mut r)?;
        t.push(s(r.cmd(&["SUBSCRIBE", "__redis__:invalidate"])?));
        let mut a = srv.conn()?;
        t.push(s(a.cmd(&["CLIENT", "TRACKING", "ON", "REDIRECT", &rid])?));
        t.push((s(a.cmd(&["CLIENT", "GETREDIR"])?) == format!(":{rid}\r\n")).to_string());
        t.push(s(a.cmd(&["GET", "x"])?));
        let mut b = srv.conn()?;
        t.push(s(b.cmd(&["SET", "x", "1"])?));
        t.push(s(r.read_reply()?));
        t.push(s(b.cmd(&["FLUSHALL"])?));
        t.push(s(r.read_reply()?));
        drop(r);
        rampart_tests::wait_for("the redirect to go", Duration::from_secs(5), || {
            Ok(!s(b.cmd(&["CLIENT", "LIST"])?).contains(&format!("id={rid} ")))
        })?;
        t.push(s(a.cmd(&["GET", "x"])?));
        t.push(s(b.cmd(&["SET", "x", "2"])?));
        let info = s(a.cmd(&["CLIENT", "TRACKINGINFO"])?);
        t.push(info.replace(&format!(":{rid}\r\n"), ":RID\r\n"));
        // A RESP3 connection is told its redirect broke.
        let mut r3 = srv.conn()?;
        let r3id = id_of(&mut r3)?;
        let mut c = srv.conn()?;
        c.cmd(&["HELLO", "3"])?;
        t.push(s(c.cmd(&["CLIENT", "TRACKING", "ON", "REDIRECT", &r3id])?));
        t.push(s(c.cmd(&["GET", "y"])?));
        drop(r3);
        rampart_tests::wait_for("the redirect to go", Duration::from_secs(5), || {
            Ok(!s(b.cmd(&["CLIENT", "LIST"])?).contains(&format!("id={r3id} ")))
        })?;
        t.push(s(b.cmd(&["SET", "y", "1"])?));
        t.push(s(c.read_reply()?).replace(&format!(":{r3id}\r\n"), ":RID\r\n"));
        Ok(t)
    })
}

#[test]
fn tracking_errors_match_redis() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut a = srv.conn()?;
        for cmd in [
            &["CLIENT", "TRACKING", "maybe"][..],
            &["CLIENT", "TRACKING", "ON", "PREFIX", "a"],
            &["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"],
            &["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"],
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"],
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "abc"],
            &["CLIENT", "TRACKING", "ON", "BOGUS"],
            &["CLIENT", "TRACKING", "ON", "REDIRECT"],
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a",
            ],
            &["CLIENT", "TRACKING"],
            &["CLIENT", "CACHING", "YES"],
            &["CLIENT", "TRACKINGINFO"],
            &["CLIENT", "GETREDIR"],
            &["CLIENT", "TRACKING", "ON", "OPTIN"],
            &["CLIENT", "CACHING", "NO"],
            &["CLIENT", "CACHING", "MAYBE"],
            &["CLIENT", "TRACKING", "ON", "OPTOUT"],
            &["CLIENT", "TRACKING", "ON", "BCAST"],
            &["CLIENT", "TRACKING", "OFF"],
            &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab"],
            &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "abc"],
            &["CLIENT", "TRACKING", "ON"],
            &["CLIENT", "TRACKING", "OFF"],
            &["CLIENT", "TRACKINGINFO"],
        ] {
            t.push(format!("{} -> {}", cmd.join(" "), s(a.cmd(cmd)?)));
        }
        Ok(t)
    })
}

#[test]
fn the_table_stays_within_tracking_table_max_keys() -> Result<()> {
    both(&["--tracking-table-max-keys", "3"], |srv| {
        let mut a = tracker(srv, &[])?;
        for k in ["k1", "k2", "k3", "k4", "k5"] {
            a.cmd(&["GET", k])?;
        }
        // Redis sheds keys from its cron; Rampart as it remembers them.
        let mut b = srv.conn()?;
        let mut keys = 0;
        rampart_tests::wait_for("the table to shrink", Duration::from_secs(5), || {
            let info = s(b.cmd(&["INFO", "stats"])?);
            Ok(info.contains("tracking_total_keys:3\r\n"))
        })?;
        // Each shed key was invalidated: two pushes are waiting.
        for _ in 0..2 {
            let r = s(a.read_reply()?);
            if r.starts_with(">2\r\n$10\r\ninvalidate\r\n") {
                keys += 1;
            }
        }
        Ok(vec![format!("invalidated {keys}")])
    })
}

/// A replica's full sync replaces its whole dataset: its tracking clients
/// get a null invalidation, as Redis's emptyData sends.
#[test]
fn full_sync_on_a_replica_invalidates_everything() -> Result<()> {
    let primary = rampart_tests::RedisOracle::start()?;
    primary.conn()?.cmd(&["SET", "k", "from-primary"])?;
    let port = primary.port().to_string();
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut a = tracker(srv, &[])?;
        let mut b = srv.conn()?;
        t.push(s(b.cmd(&["SET", "k", "local"])?));
        t.push(s(a.cmd(&["GET", "k"])?));
        t.push(s(b.cmd(&["REPLICAOF", "127.0.0.1", &port])?));
        // Nothing else is sent to `a` until the sync replaces the data.
        a.set_read_timeout(Duration::from_secs(20))?;
        t.push(s(a.read_reply()?));
        rampart_tests::wait_for("the sync", Duration::from_secs(20), || {
            Ok(s(b.cmd(&["GET", "k"])?).contains("from-primary"))
        })?;
        t.push(s(a.cmd(&["GET", "k"])?));
        t.push(s(b.cmd(&["REPLICAOF", "NO", "ONE"])?));
        Ok(t)
    })
}

/// BCAST announcements come once per batch of commands read together, as
/// Redis sends them once per event loop, and keys the server expires by
/// itself reach BCAST clients with no other command to carry them.
#[test]
fn bcast_batches_and_active_expiry() -> Result<()> {
    both(&[], |srv| {
        let mut t = Vec::new();
        let mut a = tracker(srv, &["BCAST"])?;
        let mut b = srv.conn()?;
        // Three writes in one packet: one invalidation of all three keys.
        let mut packet = Vec::new();
        for k in ["x", "y", "z"] {
            packet.extend(rampart_tests::encode_command(&["SET", k, "v"]));
        }
        b.send_raw(&packet)?;
        for _ in 0..3 {
            t.push(s(b.read_reply()?));
        }
        t.push(s(a.read_reply()?));
        // A key that expires with nobody sending anything.
        t.push(s(b.cmd(&["SET", "e", "v", "PX", "30"])?));
        t.push(s(a.read_reply()?));
        a.set_read_timeout(Duration::from_secs(5))?;
        t.push(s(a.read_reply()?));
        Ok(t)
    })
}
