//! ACL on the real binary beside redis-server 7.0: the ACL LOG's fields,
//! ACL files (load, save, errors), redis.conf `user` lines and CONFIG
//! REWRITE, what happens to a user's connections when the user changes,
//! requirepass as the default user's password, and replication
//! authenticated by an ACL user in both directions. Rule forms, GETUSER,
//! LIST, DRYRUN and the NOPERM texts are in the differential corpus
//! (`tests/corpus/acl.txt`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rampart_tests::{wait_for, Rampart, RawConn, RedisOracle, Reply, ServerProcess};

fn conn_as(s: &ServerProcess, user: &str, pass: &str) -> Result<redis::Connection> {
    let url = format!("redis://{user}:{pass}@127.0.0.1:{}/", s.port());
    Ok(redis::Client::open(url)?.get_connection()?)
}

fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> Result<T> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    Ok(cmd.query(c)?)
}

fn raw(c: &mut RawConn, args: &[&str]) -> Result<String> {
    Ok(String::from_utf8_lossy(&c.cmd(args)?).into_owned())
}

/// ACL LIST with the single-command rules sorted (Redis orders them
/// randomly per process).
fn acl_list(s: &ServerProcess) -> Result<Reply> {
    let mut c = s.conn()?;
    Ok(Reply::parse(&c.cmd(&["ACL", "LIST"])?)?.acl_normalized())
}

/// One ACL LOG entry's fields that do not depend on time or sockets.
#[derive(Debug, PartialEq, Eq)]
struct LogEntry {
    count: i64,
    reason: String,
    context: String,
    object: String,
    username: String,
    client_info: String,
}

fn acl_log(c: &mut redis::Connection) -> Result<Vec<LogEntry>> {
    let entries: Vec<redis::Value> = q(c, &["ACL", "LOG"])?;
    let mut out = Vec::new();
    for e in entries {
        let map: std::collections::HashMap<String, redis::Value> = redis::from_redis_value(&e)?;
        let s = |k: &str| -> Result<String> {
            Ok(redis::from_redis_value::<String>(
                map.get(k).context("missing field")?,
            )?)
        };
        out.push(LogEntry {
            count: redis::from_redis_value(map.get("count").context("count")?)?,
            reason: s("reason")?,
            context: s("context")?,
            object: s("object")?,
            username: s("username")?,
            client_info: s("client-info")?,
        });
    }
    Ok(out)
}

/// The denials every test of the log makes, on one server.
fn make_denials(s: &ServerProcess) -> Result<()> {
    let mut admin = s.redis_conn()?;
    q::<()>(
        &mut admin,
        &[
            "ACL", "SETUSER", "alice", "on", ">pw", "~k:*", "+get", "+set", "+multi", "+exec",
        ],
    )?;
    let mut a = s.conn()?;
    assert!(raw(&mut a, &["AUTH", "alice", "pw"])?.starts_with("+OK"));
    raw(&mut a, &["GET", "other"])?;
    raw(&mut a, &["GET", "other"])?;
    raw(&mut a, &["INCR", "k:1"])?;
    raw(&mut a, &["MULTI"])?;
    raw(&mut a, &["GET", "other2"])?;
    raw(&mut a, &["EXEC"])?;
    raw(&mut a, &["AUTH", "alice", "bad"])?;
    raw(&mut a, &["hello", "2", "AUTH", "bob", "x"])?;
    Ok(())
}

#[test]
fn acl_log_records_denials_as_redis_does() -> Result<()> {
    let rampart = Rampart::start(&[])?;
    let redis = RedisOracle::start()?;
    make_denials(&rampart)?;
    make_denials(&redis)?;
    let mine = acl_log(&mut rampart.redis_conn()?)?;
    let theirs = acl_log(&mut redis.redis_conn()?)?;
    let strip = |v: &[LogEntry]| -> Vec<(i64, String, String, String, String)> {
        v.iter()
            .map(|e| {
                (
                    e.count,
                    e.reason.clone(),
                    e.context.clone(),
                    e.object.clone(),
                    e.username.clone(),
                )
            })
            .collect()
    };
    assert_eq!(strip(&mine), strip(&theirs));
    assert_eq!(mine.len(), 5, "{mine:?}");
    // The key denial was made twice and grouped.
    let other = mine
        .iter()
        .find(|e| e.object == "other")
        .context("no entry for 'other'")?;
    assert_eq!(other.count, 2);
    // client-info is the CLIENT INFO line of the client denied.
    assert!(
        other.client_info.contains(" user=alice "),
        "{}",
        other.client_info
    );
    assert!(
        other.client_info.contains(" cmd=get "),
        "{}",
        other.client_info
    );
    // LOG <count>, acllog-max-len and RESET.
    let mut c = rampart.redis_conn()?;
    let two: Vec<redis::Value> = q(&mut c, &["ACL", "LOG", "2"])?;
    assert_eq!(two.len(), 2);
    q::<()>(&mut c, &["CONFIG", "SET", "acllog-max-len", "3"])?;
    assert_eq!(acl_log(&mut c)?.len(), 3);
    q::<()>(&mut c, &["ACL", "LOG", "RESET"])?;
    assert!(acl_log(&mut c)?.is_empty());
    Ok(())
}

const ACL_FILE: &str = "user alice on #2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae ~cache:* &news +@read -keys\n\
user bob off resetchannels -@all +get (~b:* +set)\n\
user default on nopass ~* &* +@all\n";

#[test]
fn acl_files_load_save_and_refuse_errors_as_redis() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mine = dir.path().join("mine.acl");
    let theirs = dir.path().join("theirs.acl");
    std::fs::write(&mine, ACL_FILE)?;
    std::fs::write(&theirs, ACL_FILE)?;
    let rampart = Rampart::start(&["--aclfile", &mine.to_string_lossy()])?;
    let redis = RedisOracle::start_with(&["--aclfile", &theirs.to_string_lossy()])?;
    assert_eq!(acl_list(&rampart)?, acl_list(&redis)?);

    // A user made at run time reaches the file; the file holds what ACL
    // LIST shows.
    for s in [&*rampart, &*redis] {
        let mut c = s.redis_conn()?;
        q::<()>(
            &mut c,
            &["ACL", "SETUSER", "carol", "on", ">pw", "%R~r:*", "+@hash"],
        )?;
        q::<()>(&mut c, &["ACL", "SAVE"])?;
    }
    let saved = std::fs::read_to_string(&mine)?;
    let listed: Vec<String> = q(&mut rampart.redis_conn()?, &["ACL", "LIST"])?;
    assert_eq!(saved, listed.join("\n") + "\n");
    assert!(saved.contains("user carol on #"), "{saved}");
    let norm = |s: &str| {
        Reply::parse(format!("${}\r\n{s}\r\n", s.len()).as_bytes()).map(|r| r.acl_normalized())
    };
    assert_eq!(norm(&saved)?, norm(&std::fs::read_to_string(&theirs)?)?);

    // A connection as a non-default user is closed by ACL LOAD; the
    // default user's is not.
    let mut as_carol = rampart.conn()?;
    assert!(raw(&mut as_carol, &["AUTH", "carol", "pw"])?.starts_with("+OK"));
    let mut as_default = rampart.conn()?;
    for s in [&*rampart, &*redis] {
        assert_eq!(q::<String>(&mut s.redis_conn()?, &["ACL", "LOAD"])?, "OK");
    }
    assert!(
        as_carol.cmd(&["PING"]).is_err(),
        "carol's connection survived ACL LOAD"
    );
    assert_eq!(raw(&mut as_default, &["PING"])?, "+PONG\r\n");

    // A bad file is refused whole, with Redis's messages; nothing changes.
    // (An unmatched parenthesis is left out: redis-server 7.0 crashes on
    // it, reading the rules it has just freed; Rampart's message is
    // checked below.)
    let bad = "user alice on +nosuch ~x\nuser alice on\nnot-a-user\nuser eve on %X~a >p\n\nuser \"q q\" on\n";
    std::fs::write(&mine, bad)?;
    std::fs::write(&theirs, bad)?;
    let before = acl_list(&rampart)?;
    let err_of = |s: &ServerProcess, path: &Path| -> Result<String> {
        let reply = String::from_utf8_lossy(&s.conn()?.cmd(&["ACL", "LOAD"])?).into_owned();
        Ok(reply.replace(&*path.to_string_lossy(), "FILE"))
    };
    let e1 = err_of(&rampart, &mine)?;
    let e2 = err_of(&redis, &theirs)?;
    assert_eq!(e1, e2);
    assert!(
        e1.contains("no change to the previously active ACL rules"),
        "{e1}"
    );
    assert_eq!(acl_list(&rampart)?, before);
    std::fs::write(&mine, "user bob on (~a +get\n")?;
    let e = err_of(&rampart, &mine)?;
    assert!(
        e.starts_with("-ERR FILE:1: Unmatched parenthesis in selector definition."),
        "{e}"
    );

    // A missing file.
    std::fs::remove_file(&mine)?;
    std::fs::remove_file(&theirs)?;
    assert_eq!(err_of(&rampart, &mine)?, err_of(&redis, &theirs)?);
    Ok(())
}

/// Runs a server binary expecting it to refuse to start; returns its output.
fn refused(bin: &Path, args: &[&str], dir: &Path) -> Result<String> {
    let mut child = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!("{} kept running with {args:?}", bin.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    assert!(!out.status.success(), "{} exited 0", bin.display());
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[test]
fn bad_acl_configuration_refuses_to_start_with_redis_messages() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let rampart = rampart_tests::rampart_bin()?;
    let redis = rampart_tests::require_tool("redis-server")?;
    let port = rampart_tests::free_port()?.to_string();
    let both = |conf: &str, extra: &[&str]| -> Result<(String, String)> {
        let file = d.join("bad.conf");
        std::fs::write(&file, conf)?;
        let f = file.to_string_lossy().into_owned();
        let mut args = vec![f.as_str(), "--port", port.as_str(), "--dir"];
        let dirs = d.to_string_lossy().into_owned();
        args.push(&dirs);
        args.extend(extra);
        Ok((refused(&rampart, &args, d)?, refused(&redis, &args, d)?))
    };
    // A bad rule in a `user` line: the config file error names it.
    for (conf, needle) in [
        (
            "user alice on %X~a\n",
            "Error in user declaration 'alice': Syntax error",
        ),
        (
            "user alice on\nuser alice off\n",
            "Error in user declaration 'alice': Duplicate user found",
        ),
        (
            "user bob on #nothex\n",
            "Error in user declaration 'bob': The password hash must be exactly 64 characters",
        ),
    ] {
        let (mine, theirs) = both(conf, &[])?;
        assert!(mine.contains(needle), "rampart: {mine}");
        assert!(theirs.contains(needle), "redis: {theirs}");
        assert!(mine.contains(">>> '"), "{mine}");
    }
    // An unknown command is caught when the users load.
    let (mine, theirs) = both("user alice on +nosuch\n", &[])?;
    let needle = "Error loading ACL rule '+nosuch' for the user named 'alice': Unknown command or category name in ACL";
    assert!(mine.contains(needle), "rampart: {mine}");
    assert!(theirs.contains(needle), "redis: {theirs}");
    // Users in redis.conf and an aclfile: refused.
    let acl = d.join("users.acl");
    std::fs::write(&acl, "user default on nopass ~* &* +@all\n")?;
    let conf = format!("user alice on\naclfile {}\n", acl.display());
    let (mine, theirs) = both(&conf, &[])?;
    for out in [&mine, &theirs] {
        assert!(out.contains("please define either an ACL file or declare users directly in your redis.conf, but not both"), "{out}");
    }
    // A broken aclfile.
    std::fs::write(&acl, "user alice on +nosuch\n")?;
    let (mine, theirs) = both(&format!("aclfile {}\n", acl.display()), &[])?;
    for out in [&mine, &theirs] {
        assert!(
            out.contains("Aborting Redis startup because of ACL errors"),
            "{out}"
        );
        assert!(
            out.contains(":1: Error in applying operation '+nosuch'"),
            "{out}"
        );
    }
    Ok(())
}

#[test]
fn conf_user_lines_load_and_config_rewrite_keeps_users() -> Result<()> {
    let conf = "user alice on >pw ~a:* +@string\nuser default on nopass ~* &* +@all -flushall\n";
    let rampart = Rampart::start_with_config(conf, &[])?;
    let dir = tempfile::tempdir()?;
    let conf_file = dir.path().join("redis.conf");
    std::fs::write(&conf_file, conf)?;
    let redis = RedisOracle::start_with(&["--include", &conf_file.to_string_lossy()])?;
    assert_eq!(acl_list(&rampart)?, acl_list(&redis)?);
    let mut c = rampart.redis_conn()?;
    let denied = q::<()>(&mut c, &["FLUSHALL"]).unwrap_err().to_string();
    assert!(
        denied.contains("no permissions to run the 'flushall' command"),
        "{denied}"
    );
    let mut alice = conn_as(&rampart, "alice", "pw")?;
    q::<()>(&mut alice, &["SET", "a:1", "v"])?;
    assert!(q::<()>(&mut alice, &["SET", "b:1", "v"]).is_err());

    // CONFIG REWRITE writes the users as they are now.
    q::<()>(&mut c, &["ACL", "SETUSER", "bob", "on", ">x", "+ping"])?;
    q::<()>(&mut c, &["ACL", "DELUSER", "alice"])?;
    q::<()>(&mut c, &["CONFIG", "REWRITE"])?;
    let text = std::fs::read_to_string(rampart.dir().join("rampart.conf"))?;
    let users: Vec<&str> = text.lines().filter(|l| l.starts_with("user ")).collect();
    assert_eq!(users.len(), 2, "{text}");
    assert!(users[0].starts_with("user bob on #"), "{text}");
    // Redis resets a configured default user first, which sets
    // sanitize-payload.
    assert!(
        users[1].starts_with("user default on nopass sanitize-payload ~* &* +@all -flushall"),
        "{text}"
    );
    Ok(())
}

#[test]
fn a_users_connections_follow_its_rules_and_end_with_it() -> Result<()> {
    let s = Rampart::start(&[])?;
    let mut admin = s.redis_conn()?;
    q::<()>(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "alice",
            "on",
            ">pw",
            "~*",
            "+get",
            "+client|list",
        ],
    )?;
    let mut a = s.conn()?;
    assert_eq!(raw(&mut a, &["AUTH", "alice", "pw"])?, "+OK\r\n");
    assert_eq!(raw(&mut a, &["GET", "k"])?, "$-1\r\n");
    let list = raw(&mut a, &["CLIENT", "LIST"])?;
    assert!(list.contains("user=alice"), "{list}");
    assert!(list.contains("user=default"), "{list}");
    // New rules apply to a connection already authenticated.
    q::<()>(&mut admin, &["ACL", "SETUSER", "alice", "-get"])?;
    assert_eq!(
        raw(&mut a, &["GET", "k"])?,
        "-NOPERM this user has no permissions to run the 'get' command\r\n"
    );
    // Turning the user off keeps its connections (as Redis).
    q::<()>(&mut admin, &["ACL", "SETUSER", "alice", "off", "+get"])?;
    assert_eq!(raw(&mut a, &["GET", "k"])?, "$-1\r\n");
    // CLIENT KILL USER.
    q::<()>(&mut admin, &["ACL", "SETUSER", "alice", "on"])?;
    let mut b = s.conn()?;
    raw(&mut b, &["AUTH", "alice", "pw"])?;
    let killed: i64 = q(&mut admin, &["CLIENT", "KILL", "USER", "alice"])?;
    assert_eq!(killed, 2);
    assert!(b.cmd(&["GET", "k"]).is_err());
    let err = q::<()>(&mut admin, &["CLIENT", "KILL", "USER", "nosuch"]).unwrap_err();
    assert!(err.to_string().contains("No such user 'nosuch'"), "{err}");
    // Deleting the user closes its connections.
    let mut c = s.conn()?;
    raw(&mut c, &["AUTH", "alice", "pw"])?;
    let n: i64 = q(&mut admin, &["ACL", "DELUSER", "alice"])?;
    assert_eq!(n, 1);
    assert!(
        c.cmd(&["GET", "k"]).is_err(),
        "a deleted user's connection survived"
    );
    assert_eq!(q::<String>(&mut admin, &["PING"])?, "PONG");
    Ok(())
}

#[test]
fn requirepass_is_the_default_users_password() -> Result<()> {
    let s = Rampart::start(&["--requirepass", "first"])?;
    let mut c = s.conn()?;
    assert_eq!(
        raw(&mut c, &["PING"])?,
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(raw(&mut c, &["AUTH", "first"])?, "+OK\r\n");
    raw(&mut c, &["CONFIG", "SET", "requirepass", "second"])?;
    let mut d = s.conn()?;
    assert!(raw(&mut d, &["AUTH", "first"])?.starts_with("-WRONGPASS"));
    assert_eq!(raw(&mut d, &["AUTH", "default", "second"])?, "+OK\r\n");
    let user = raw(&mut d, &["ACL", "GETUSER", "default"])?;
    assert!(user.contains(&rampart_acl_hash("second")), "{user}");
    raw(&mut d, &["CONFIG", "SET", "requirepass", ""])?;
    let mut e = s.conn()?;
    assert_eq!(raw(&mut e, &["PING"])?, "+PONG\r\n");
    Ok(())
}

/// SHA-256 hex, computed by the shell's tool rather than our code.
fn rampart_acl_hash(pass: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut p| {
            use std::io::Write;
            p.stdin.take().map(|mut i| i.write_all(pass.as_bytes()));
            p.wait_with_output()
        })
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

const REPL_USER: &[&str] = &[
    "ACL",
    "SETUSER",
    "repl",
    "on",
    ">rpw",
    "+psync",
    "+replconf",
    "+ping",
];

/// Writes keys on `primary` (as `admin`) and waits until `replica` has
/// them all, its link up.
fn converges(
    primary: &mut redis::Connection,
    replica: &ServerProcess,
    replica_pass: &str,
) -> Result<()> {
    for i in 0..200 {
        q::<()>(primary, &["SET", &format!("k{i}"), &format!("v{i}")])?;
    }
    let mut r = conn_as(replica, "default", replica_pass)?;
    wait_for("the replica to converge", Duration::from_secs(60), || {
        let info: String = q(&mut r, &["INFO", "replication"])?;
        let n: i64 = q(&mut r, &["DBSIZE"])?;
        let v: Option<String> = q(&mut r, &["GET", "k199"])?;
        Ok(info.contains("master_link_status:up") && n == 200 && v.as_deref() == Some("v199"))
    })
}

#[test]
fn replication_authenticates_with_an_acl_user_both_ways() -> Result<()> {
    // redis-server primary, Rampart replica.
    let primary = RedisOracle::start_with(&["--requirepass", "admin"])?;
    let mut p = conn_as(&primary, "default", "admin")?;
    q::<()>(&mut p, REPL_USER)?;
    let port = primary.port().to_string();
    let replica = Rampart::start(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--masteruser",
        "repl",
        "--masterauth",
        "rpw",
    ])?;
    converges(&mut p, &replica, "")?;
    let log: Vec<String> = acl_log(&mut p)?.into_iter().map(|e| e.object).collect();
    assert!(log.is_empty(), "the replica was denied: {log:?}");

    // Rampart primary, redis-server replica.
    let primary = Rampart::start(&[
        "--requirepass",
        "admin",
        "--repl-allow-plaintext-sync",
        "yes",
    ])?;
    let mut p = conn_as(&primary, "default", "admin")?;
    q::<()>(&mut p, REPL_USER)?;
    let port = primary.port().to_string();
    let replica = RedisOracle::start_with(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--masteruser",
        "repl",
        "--masterauth",
        "rpw",
    ])?;
    converges(&mut p, &replica, "")?;

    // A wrong password: no link, and the primary logs the failed AUTH.
    let bad = Rampart::start(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--masteruser",
        "repl",
        "--masterauth",
        "wrong",
    ])?;
    wait_for(
        "the refused AUTH in the replica's log",
        Duration::from_secs(20),
        || Ok(bad.log().contains("Unable to AUTH to MASTER")),
    )?;
    let log = acl_log(&mut p)?;
    assert!(
        log.iter()
            .any(|e| e.reason == "auth" && e.username == "repl"),
        "{log:?}"
    );
    // A replica user without PSYNC is refused with NOPERM.
    q::<()>(&mut p, &["ACL", "SETUSER", "repl", "-psync"])?;
    let denied = Rampart::start(&[
        "--replicaof",
        "127.0.0.1",
        &port,
        "--masteruser",
        "repl",
        "--masterauth",
        "rpw",
    ])?;
    wait_for("the primary to deny PSYNC", Duration::from_secs(20), || {
        Ok(acl_log(&mut p)?
            .iter()
            .any(|e| e.reason == "command" && e.object == "psync"))
    })?;
    let info: String = q(
        &mut conn_as(&denied, "default", "")?,
        &["INFO", "replication"],
    )?;
    assert!(info.contains("master_link_status:down"), "{info}");
    Ok(())
}

#[test]
fn unauthenticated_clients_get_redis_protocol_limits() -> Result<()> {
    let rampart = Rampart::start(&["--requirepass", "pw"])?;
    let redis = RedisOracle::start_with(&["--requirepass", "pw"])?;
    for (input, what) in [
        (&b"*11\r\n"[..], "11 arguments"),
        (
            &b"*2\r\n$4\r\nAUTH\r\n$16385\r\n"[..],
            "a 16385-byte argument",
        ),
    ] {
        let mut replies = Vec::new();
        for s in [&*rampart, &*redis] {
            let mut c = s.conn()?;
            c.send_raw(input)?;
            let (reply, closed) = c.read_until_close(Duration::from_secs(5))?;
            assert!(
                closed,
                "{} kept an unauthenticated client sending {what}",
                s.name()
            );
            replies.push(String::from_utf8_lossy(&reply).into_owned());
        }
        assert_eq!(replies[0], replies[1], "{what}");
        assert!(replies[0].contains("unauthenticated"), "{}", replies[0]);
    }
    // Ten arguments are fine before AUTH (the command is then refused).
    let mut c = rampart.conn()?;
    let ten = ["SET", "a", "b", "c", "d", "e", "f", "g", "h", "i"];
    assert_eq!(raw(&mut c, &ten)?, "-NOAUTH Authentication required.\r\n");
    Ok(())
}
