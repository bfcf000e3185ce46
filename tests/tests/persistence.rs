//! Encrypted persistence, end to end: real `rampart-server` processes on
//! real data directories, real `redis-server` 7.0 on the other side of the
//! interchange, the real `rampart` tool for decryption.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rampart_tests::dataset::{
    cmd, contents, counters, info_field, populate, transfer_counters, wait_for_transfers, MARKER,
};
use rampart_tests::{workspace_root, Rampart, RedisOracle, ServerProcess};
use redis::Value;

fn wait_bgsave(c: &mut redis::Connection) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(c, "persistence", "rdb_bgsave_in_progress")? != "0" {
        if Instant::now() > deadline {
            bail!("BGSAVE did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Files under `dir` that contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| {
            std::fs::read(p)
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .collect()
}

fn rampart_tool(args: &[&str]) -> Result<String> {
    let bin = workspace_root().join("target/debug/rampart");
    let out = Command::new(&bin)
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("rampart {args:?} failed: {text}");
    }
    Ok(text)
}

fn sigterm(p: &mut ServerProcess) -> Result<()> {
    p.terminate(Duration::from_secs(30)).map(drop)
}

#[test]
fn restart_keeps_every_type_and_expiry() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let before;
    {
        let s = Rampart::start_in(dir.path(), &[])?;
        let mut c = s.redis_conn()?;
        populate(&mut c)?;
        before = contents(&mut c)?;
        assert_eq!(cmd(&mut c, &["SAVE"])?, Value::Okay);
        assert_eq!(
            info_field(&mut c, "persistence", "rdb_changes_since_last_save")?,
            "0"
        );
        let lastsave: i64 = redis::cmd("LASTSAVE").query(&mut c)?;
        assert!(lastsave > 1_700_000_000);
    }
    let s = Rampart::start_in(dir.path(), &[])?;
    let mut c = s.redis_conn()?;
    assert_eq!(contents(&mut c)?, before, "log:\n{}", s.log());
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_last_load_keys_loaded")?,
        before.len().to_string()
    );
    Ok(())
}

#[test]
fn shutdown_and_sigterm_save_with_the_default_rules() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let mut s = Rampart::start_in(dir.path(), &[])?;
        let mut c = s.redis_conn()?;
        cmd(&mut c, &["SET", "a", "1"])?;
        // SHUTDOWN closes the connection without a reply.
        let _ = cmd(&mut c, &["SHUTDOWN"]);
        assert!(s.wait_exit(Duration::from_secs(30))?.is_some());
    }
    {
        let mut s = Rampart::start_in(dir.path(), &[])?;
        let mut c = s.redis_conn()?;
        assert_eq!(
            cmd(&mut c, &["GET", "a"])?,
            Value::BulkString(b"1".to_vec())
        );
        cmd(&mut c, &["SET", "b", "2"])?;
        sigterm(&mut s)?;
    }
    {
        let mut s = Rampart::start_in(dir.path(), &[])?;
        let mut c = s.redis_conn()?;
        assert_eq!(
            cmd(&mut c, &["GET", "b"])?,
            Value::BulkString(b"2".to_vec())
        );
        cmd(&mut c, &["SET", "c", "3"])?;
        let _ = cmd(&mut c, &["SHUTDOWN", "NOSAVE"]);
        assert!(s.wait_exit(Duration::from_secs(30))?.is_some());
    }
    let s = Rampart::start_in(dir.path(), &["--save", ""])?;
    let mut c = s.redis_conn()?;
    assert_eq!(
        cmd(&mut c, &["GET", "c"])?,
        Value::Nil,
        "NOSAVE must not save"
    );
    assert_eq!(
        cmd(&mut c, &["GET", "b"])?,
        Value::BulkString(b"2".to_vec())
    );
    Ok(())
}

#[test]
fn no_plaintext_in_the_data_directory_after_save_and_during_bgsave() -> Result<()> {
    let s = Rampart::start(&["--enable-debug-command", "yes"])?;
    let mut c = s.redis_conn()?;
    populate(&mut c)?;
    assert_eq!(cmd(&mut c, &["SAVE"])?, Value::Okay);
    assert!(s.dir().join("dump.rdb").exists());
    assert_eq!(
        files_containing(s.dir(), MARKER.as_bytes()),
        Vec::<PathBuf>::new()
    );
    // A bigger dataset so the BGSAVE is in progress while we look.
    cmd(&mut c, &["DEBUG", "POPULATE", "300000", MARKER, "64"])?;
    assert_eq!(
        cmd(&mut c, &["BGSAVE"])?,
        Value::SimpleString("Background saving started".into())
    );
    let mut looked_during = 0;
    while info_field(&mut c, "persistence", "rdb_bgsave_in_progress")? == "1" {
        assert_eq!(
            files_containing(s.dir(), MARKER.as_bytes()),
            Vec::<PathBuf>::new()
        );
        looked_during += 1;
    }
    wait_bgsave(&mut c)?;
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_last_bgsave_status")?,
        "ok"
    );
    assert_eq!(
        files_containing(s.dir(), MARKER.as_bytes()),
        Vec::<PathBuf>::new()
    );
    eprintln!("looked at the directory {looked_during} times during BGSAVE");
    Ok(())
}

#[test]
fn snapshots_move_between_rampart_and_redis_both_ways() -> Result<()> {
    // Rampart → decrypt → redis-server.
    let s = Rampart::start(&[])?;
    let mut c = s.redis_conn()?;
    populate(&mut c)?;
    let want = contents(&mut c)?;
    assert_eq!(cmd(&mut c, &["SAVE"])?, Value::Okay);
    let out = tempfile::tempdir()?;
    let keyring = s.dir().join("keys/keyring.json");
    rampart_tool(&[
        "snapshot",
        "decrypt",
        &s.dir().join("dump.rdb").to_string_lossy(),
        "-o",
        &out.path().join("dump.rdb").to_string_lossy(),
        "--key-file",
        &keyring.to_string_lossy(),
    ])?;
    let redis = RedisOracle::start_with(&["--dir", &out.path().to_string_lossy()])?;
    let mut rc = redis.redis_conn()?;
    assert_eq!(contents(&mut rc)?, want, "redis log:\n{}", redis.log());

    // redis-server SAVE → rampart-server --import-rdb.
    cmd(&mut rc, &["SET", "from-redis", "yes"])?;
    cmd(&mut rc, &["SAVE"])?;
    let want = contents(&mut rc)?;
    let plain = out.path().join("dump.rdb");
    let dir = tempfile::tempdir()?;
    let r2 = Rampart::start_in(dir.path(), &["--import-rdb", &plain.to_string_lossy()])?;
    let mut c2 = r2.redis_conn()?;
    assert_eq!(contents(&mut c2)?, want);
    assert!(
        r2.log().contains("is still there"),
        "the import must say the plaintext file remains; log:\n{}",
        r2.log()
    );
    assert_eq!(
        files_containing(dir.path(), MARKER.as_bytes()),
        Vec::<PathBuf>::new()
    );
    drop(c2);
    drop(r2);
    // The imported dataset is the directory's snapshot now.
    let r3 = Rampart::start_in(dir.path(), &[])?;
    assert_eq!(contents(&mut r3.redis_conn()?)?, want);
    Ok(())
}

#[test]
fn kill_during_bgsave_keeps_the_previous_snapshot() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let mut s = Rampart::start_in(dir.path(), &["--enable-debug-command", "yes"])?;
        let mut c = s.redis_conn()?;
        cmd(&mut c, &["DEBUG", "POPULATE", "1000", "first"])?;
        assert_eq!(cmd(&mut c, &["SAVE"])?, Value::Okay);
        cmd(&mut c, &["DEBUG", "POPULATE", "400000", "second", "200"])?;
        cmd(&mut c, &["BGSAVE"])?;
        // Kill -9 once the temp file of the new snapshot exists.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let temp = files(dir.path())
                .iter()
                .any(|p| p.to_string_lossy().contains(".dump.rdb.tmp-"));
            if temp {
                break;
            }
            if Instant::now() > deadline {
                bail!("no temp file appeared during BGSAVE");
            }
        }
        Command::new("kill")
            .args(["-KILL", &s.pid().to_string()])
            .status()?;
        assert!(s.wait_exit(Duration::from_secs(10))?.is_some());
    }
    let s = Rampart::start_in(dir.path(), &[])?;
    let mut c = s.redis_conn()?;
    let n: i64 = redis::cmd("DBSIZE").query(&mut c)?;
    assert_eq!(
        n,
        1000,
        "the previous snapshot must load; log:\n{}",
        s.log()
    );
    assert!(
        !files(dir.path())
            .iter()
            .any(|p| p.to_string_lossy().contains(".tmp-")),
        "the interrupted temp file is removed at startup"
    );
    Ok(())
}

#[test]
fn bgsave_is_one_point_in_time_under_concurrent_transactions() -> Result<()> {
    let s = Rampart::start(&["--enable-debug-command", "yes"])?;
    let mut c = s.redis_conn()?;
    // Bulk so the snapshot takes a while, and 64 counters spread over shards.
    cmd(&mut c, &["DEBUG", "POPULATE", "300000", "bulk", "100"])?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = transfer_counters(s.redis_conn()?, stop.clone());
    wait_for_transfers(&mut c)?;
    cmd(&mut c, &["BGSAVE"])?;
    wait_bgsave(&mut c)?;
    stop.store(true, Ordering::Relaxed);
    let txs = writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    assert!(
        txs > 10,
        "the writer must have run during the snapshot ({txs} transactions)"
    );
    // Load the snapshot in a second server on a copy of the directory.
    let copy = tempfile::tempdir()?;
    for f in ["dump.rdb", "rampart-dataset.json"] {
        std::fs::copy(s.dir().join(f), copy.path().join(f))?;
    }
    std::fs::create_dir(copy.path().join("keys"))?;
    std::fs::copy(
        s.dir().join("keys/keyring.json"),
        copy.path().join("keys/keyring.json"),
    )?;
    let s2 = Rampart::start_in(copy.path(), &["--save", ""])?;
    let mut c2 = s2.redis_conn()?;
    let (sum, nonzero) = counters(&mut c2)?;
    assert_eq!(sum, 0, "the snapshot must be one consistent cut");
    assert!(nonzero > 0, "the snapshot must contain counters");
    let bulk: i64 = redis::cmd("DBSIZE").query(&mut c2)?;
    assert!(bulk >= 300_000);
    Ok(())
}

#[test]
fn encryption_is_fixed_when_the_dataset_is_created() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let s = Rampart::start_in(dir.path(), &[])?;
        let mut c = s.redis_conn()?;
        cmd(&mut c, &["SET", "k", "v"])?;
        assert_eq!(cmd(&mut c, &["SAVE"])?, Value::Okay);
    }
    let (st, out) = Rampart::run_expecting_exit(
        dir.path(),
        &["--encryption-at-rest", "no"],
        Duration::from_secs(20),
    )?;
    assert!(!st.success());
    assert!(
        out.contains("fixed when a dataset is created") && out.contains("--import-rdb"),
        "{out}"
    );
    // And the other way round.
    let plain = tempfile::tempdir()?;
    {
        let s = Rampart::start_in(plain.path(), &["--encryption-at-rest", "no"])?;
        let mut c = s.redis_conn()?;
        cmd(&mut c, &["SET", "k", MARKER])?;
        assert_eq!(cmd(&mut c, &["SAVE"])?, Value::Okay);
        // Unencrypted on request: exactly Redis's file.
        assert_eq!(files_containing(plain.path(), MARKER.as_bytes()).len(), 1);
    }
    let (st, out) = Rampart::run_expecting_exit(plain.path(), &[], Duration::from_secs(20))?;
    assert!(!st.success());
    assert!(out.contains("created without encryption at rest"), "{out}");
    Ok(())
}

#[test]
fn a_plaintext_rdb_in_an_encrypted_directory_is_refused_until_imported() -> Result<()> {
    let redis = RedisOracle::start()?;
    let mut rc = redis.redis_conn()?;
    cmd(&mut rc, &["SET", "r", "from redis"])?;
    cmd(&mut rc, &["RPUSH", "l", "1", "2"])?;
    cmd(&mut rc, &["SAVE"])?;
    let want = contents(&mut rc)?;
    let dir = tempfile::tempdir()?;
    let dump = dir.path().join("dump.rdb");
    std::fs::copy(redis.dir().join("dump.rdb"), &dump)?;
    let (st, out) = Rampart::run_expecting_exit(dir.path(), &[], Duration::from_secs(20))?;
    assert!(!st.success());
    assert!(
        out.contains("plaintext RDB") && out.contains("--import-rdb"),
        "{out}"
    );
    let s = Rampart::start_in(dir.path(), &["--import-rdb", &dump.to_string_lossy()])?;
    let mut c = s.redis_conn()?;
    assert_eq!(contents(&mut c)?, want);
    assert!(
        s.log().contains("replaced by the encrypted snapshot"),
        "{}",
        s.log()
    );
    assert_eq!(
        rampart_persistence_sniff(&dump)?,
        "encrypted",
        "the plaintext dump.rdb was replaced in place"
    );
    Ok(())
}

fn rampart_persistence_sniff(p: &Path) -> Result<&'static str> {
    let head = std::fs::read(p)?;
    Ok(if head.starts_with(b"RAMPART\x01") {
        "encrypted"
    } else if head.starts_with(b"REDIS") {
        "plain"
    } else {
        "other"
    })
}

#[test]
fn damaged_snapshots_and_wrong_keys_stop_the_server_and_keep_the_file() -> Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let s = Rampart::start_in(dir.path(), &[])?;
        let mut c = s.redis_conn()?;
        populate(&mut c)?;
        assert_eq!(cmd(&mut c, &["SAVE"])?, Value::Okay);
    }
    let dump = dir.path().join("dump.rdb");
    let good = std::fs::read(&dump)?;
    let refused = |what: &str, expect: &str| -> Result<()> {
        let (st, out) =
            Rampart::run_expecting_exit(dir.path(), &["--save", ""], Duration::from_secs(20))?;
        assert!(!st.success(), "{what}: the server must refuse to start");
        assert!(out.contains("Can't load the snapshot"), "{what}: {out}");
        assert!(
            out.to_lowercase().contains(expect),
            "{what}: expected {expect:?} in {out}"
        );
        Ok(())
    };
    // Truncated.
    std::fs::write(&dump, &good[..good.len() / 2])?;
    refused("truncated", "truncated")?;
    assert_eq!(
        std::fs::read(&dump)?.len(),
        good.len() / 2,
        "the file is left as it is"
    );
    // One flipped byte in the sealed body.
    let mut bad = good.clone();
    let i = bad.len() - 40;
    bad[i] ^= 0x55;
    std::fs::write(&dump, &bad)?;
    refused("flipped byte", "")?;
    // Another keyring: the key that sealed the file is not there.
    std::fs::write(&dump, &good)?;
    let keyring = dir.path().join("keys/keyring.json");
    let saved_ring = std::fs::read(&keyring)?;
    std::fs::remove_file(&keyring)?;
    rampart_tool(&["keyring", "init", "--file", &keyring.to_string_lossy()])?;
    refused("foreign keyring", "")?;
    // The right keyring with the sealing version disabled: unrecoverable
    // until enabled again, and said so.
    std::fs::write(&keyring, &saved_ring)?;
    rampart_tool(&["keyring", "rotate", "--file", &keyring.to_string_lossy()])?;
    rampart_tool(&[
        "keyring",
        "disable",
        "--file",
        &keyring.to_string_lossy(),
        "--version",
        "1",
    ])?;
    refused("disabled key version", "disabled")?;
    rampart_tool(&[
        "keyring",
        "enable",
        "--file",
        &keyring.to_string_lossy(),
        "--version",
        "1",
    ])?;
    {
        let s = Rampart::start_in(dir.path(), &[])?;
        let n: i64 = redis::cmd("DBSIZE").query(&mut s.redis_conn()?)?;
        assert!(n > 10);
    }
    // Told otherwise: the unreadable file is set aside, never deleted, and
    // the server starts empty.
    std::fs::write(&dump, &good[..good.len() / 2])?;
    let s = Rampart::start_in(
        dir.path(),
        &["--set-aside-unreadable-snapshot", "--save", ""],
    )?;
    let n: i64 = redis::cmd("DBSIZE").query(&mut s.redis_conn()?)?;
    assert_eq!(n, 0);
    assert!(!dump.exists());
    let aside: Vec<PathBuf> = files(dir.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("dump.rdb.unreadable-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0])?.len(), good.len() / 2);
    assert!(
        s.log().contains("set-aside-unreadable-snapshot"),
        "{}",
        s.log()
    );
    Ok(())
}

#[test]
fn a_failed_save_reports_an_error_and_keeps_the_previous_file() -> Result<()> {
    let s = Rampart::start(&[])?;
    let mut c = s.redis_conn()?;
    cmd(&mut c, &["SET", "k", "1"])?;
    assert_eq!(cmd(&mut c, &["SAVE"])?, Value::Okay);
    let dump = s.dir().join("dump.rdb");
    let before = std::fs::read(&dump)?;
    // The key provider becomes unavailable: no data key, no snapshot.
    let keyring = s.dir().join("keys/keyring.json");
    let moved = s.dir().join("keys/keyring.moved");
    std::fs::rename(&keyring, &moved)?;
    cmd(&mut c, &["SET", "k", "2"])?;
    let err = cmd(&mut c, &["SAVE"]).unwrap_err().to_string();
    assert!(err.contains("data key"), "{err}");
    assert_eq!(
        cmd(&mut c, &["BGSAVE"])?,
        Value::SimpleString("Background saving started".into())
    );
    wait_bgsave(&mut c)?;
    assert_eq!(
        info_field(&mut c, "persistence", "rdb_last_bgsave_status")?,
        "err"
    );
    // stop-writes-on-bgsave-error: writes are refused as in Redis.
    let misconf = cmd(&mut c, &["SET", "k", "3"]).unwrap_err().to_string();
    assert!(misconf.contains("MISCONF"), "{misconf}");
    assert_eq!(std::fs::read(&dump)?, before, "the old snapshot stays");
    assert!(
        !files(s.dir())
            .iter()
            .any(|p| p.to_string_lossy().contains(".tmp-")),
        "no temp file is left behind"
    );
    assert_ne!(
        info_field(&mut c, "persistence", "rdb_changes_since_last_save")?,
        "0"
    );
    std::fs::rename(&moved, &keyring)?;
    assert_eq!(cmd(&mut c, &["SAVE"])?, Value::Okay);
    assert_ne!(std::fs::read(&dump)?, before);
    assert_eq!(cmd(&mut c, &["SET", "k", "3"])?, Value::Okay);
    Ok(())
}

#[test]
fn debug_reload_and_save_rules() -> Result<()> {
    let s = Rampart::start(&["--save", "1 3", "--enable-debug-command", "yes"])?;
    let mut c = s.redis_conn()?;
    populate(&mut c)?;
    let want = contents(&mut c)?;
    assert_eq!(cmd(&mut c, &["DEBUG", "RELOAD"])?, Value::Okay);
    assert_eq!(contents(&mut c)?, want);
    // The rule (1 s, 3 changes) fires on its own.
    let saves: i64 = info_field(&mut c, "persistence", "rdb_saves")?.parse()?;
    for i in 0..5 {
        cmd(&mut c, &["SET", &format!("rule{i}"), "x"])?;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now: i64 = info_field(&mut c, "persistence", "rdb_saves")?.parse()?;
        if now > saves && info_field(&mut c, "persistence", "rdb_changes_since_last_save")? == "0" {
            break;
        }
        if Instant::now() > deadline {
            bail!("the save rule did not fire; log:\n{}", s.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(s.log().contains("changes in 1 seconds. Saving..."));
    // BGSAVE inside MULTI is scheduled, as in Redis.
    let r: Vec<Value> = redis::pipe().atomic().cmd("BGSAVE").query(&mut c)?;
    assert_eq!(
        r,
        vec![Value::SimpleString("Background saving scheduled".into())]
    );
    Ok(())
}

#[test]
fn a_dump_rdb_encrypted_with_the_tool_is_loaded() -> Result<()> {
    let redis = RedisOracle::start()?;
    let mut rc = redis.redis_conn()?;
    populate(&mut rc)?;
    cmd(&mut rc, &["SAVE"])?;
    let want = contents(&mut rc)?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("keys"))?;
    let keyring = dir.path().join("keys/keyring.json");
    rampart_tool(&["keyring", "init", "--file", &keyring.to_string_lossy()])?;
    rampart_tool(&[
        "snapshot",
        "encrypt",
        &redis.dir().join("dump.rdb").to_string_lossy(),
        "-o",
        &dir.path().join("dump.rdb").to_string_lossy(),
        "--key-file",
        &keyring.to_string_lossy(),
    ])?;
    assert_eq!(
        files_containing(dir.path(), MARKER.as_bytes()),
        Vec::<PathBuf>::new()
    );
    let s = Rampart::start_in(dir.path(), &[])?;
    assert_eq!(contents(&mut s.redis_conn()?)?, want, "log:\n{}", s.log());
    Ok(())
}

#[test]
fn bgrewriteaof_takes_an_encrypted_snapshot() -> Result<()> {
    let r = Rampart::start(&["--save", ""])?;
    let o = RedisOracle::start()?;
    let mut rc = r.redis_conn()?;
    let mut oc = o.redis_conn()?;
    for c in [&mut rc, &mut oc] {
        redis::cmd("SET")
            .arg("k")
            .arg("plaintext-canary")
            .query::<()>(c)?;
    }
    let ours: String = redis::cmd("BGREWRITEAOF").query(&mut rc)?;
    let theirs: String = redis::cmd("BGREWRITEAOF").query(&mut oc)?;
    assert_eq!(ours, theirs);
    wait_bgsave(&mut rc)?;
    let snap = r.dir().join("dump.rdb");
    assert!(snap.exists(), "no snapshot after BGREWRITEAOF");
    assert!(files_containing(r.dir(), b"plaintext-canary").is_empty());
    Ok(())
}

/// SAVE and BGSAVE while a BGSAVE is still writing its file (held open by
/// rdb-key-save-delay), with redis-server's replies.
#[test]
fn save_during_a_bgsave_is_refused_as_in_redis() -> Result<()> {
    let steps = |srv: &ServerProcess| -> Result<Vec<String>> {
        let mut c = srv.redis_conn()?;
        for i in 0..50 {
            redis::cmd("SET")
                .arg(format!("k{i}"))
                .arg(i)
                .query::<()>(&mut c)?;
        }
        let reply = |c: &mut redis::Connection, cmd: &str| -> String {
            match redis::cmd(cmd).query::<String>(c) {
                Ok(v) => v,
                Err(e) => e.to_string(),
            }
        };
        let mut t = vec![reply(&mut c, "BGSAVE")];
        t.push(reply(&mut c, "SAVE"));
        t.push(reply(&mut c, "BGSAVE"));
        let info: String = redis::cmd("INFO").arg("persistence").query(&mut c)?;
        t.push(
            info.lines()
                .find(|l| l.starts_with("rdb_bgsave_in_progress:"))
                .unwrap_or_default()
                .to_string(),
        );
        Ok(t)
    };
    // 50 keys at 0.2 s each: the BGSAVE outlasts the steps.
    let args = ["--rdb-key-save-delay", "200000", "--save", ""];
    let (r, o) = (Rampart::start(&args)?, RedisOracle::start_with(&args)?);
    let (ours, theirs) = (steps(&r)?, steps(&o)?);
    if ours != theirs {
        bail!("rampart {ours:?}, redis {theirs:?}");
    }
    if !ours[1].contains("Background save already in progress") {
        bail!("{ours:?}");
    }
    Ok(())
}
