//! Encrypted backups end to end: real `rampart-server` processes, the real
//! `rampart` tool, a real S3-compatible server (Garage) and a real KMS API
//! endpoint (moto), both started by `scripts/services.sh`, and Debian's
//! `redis-server` on the other side of exports and seeding.
//!
//! These tests FAIL when `RAMPART_TEST_S3_ENDPOINT` or
//! `RAMPART_TEST_KMS_ENDPOINT` is unset or unreachable: a skipped backup
//! test would hide a broken store. Each test works under its own prefix.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rampart_persistence::backup::{self as bk, BackupStore, Manifest};
use rampart_tests::dataset::{
    cmd, contents, counters, info_field, populate, transfer_counters, wait_for_transfers, MARKER,
};
use rampart_tests::s3::{env, reachable, rt, S3};
use rampart_tests::{workspace_root, Rampart, RedisOracle};

fn kms_endpoint() -> Result<String> {
    let ep = env("RAMPART_TEST_KMS_ENDPOINT")?;
    reachable(&ep)?;
    Ok(ep)
}

async fn kms_admin() -> Result<rampart_kms::AwsKms> {
    let cfg = rampart_kms::AwsKmsConfig {
        region: Some("us-east-1".into()),
        endpoint: Some(kms_endpoint()?),
        static_credentials: Some(rampart_kms::StaticCredentials::new("test", "test")),
        ..Default::default()
    };
    Ok(rampart_kms::AwsKms::connect(&cfg, rampart_kms::AuditLog::disabled()).await?)
}

/// A new KMS key's ARN.
fn new_kms_key() -> Result<String> {
    rt()?.block_on(async {
        let admin = kms_admin().await?;
        let out = admin
            .client()
            .create_key()
            .description("rampart backup test")
            .send()
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        out.key_metadata()
            .and_then(|m| m.arn())
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no ARN"))
    })
}

fn disable_kms_key(arn: &str) -> Result<()> {
    rt()?.block_on(async {
        let admin = kms_admin().await?;
        admin
            .client()
            .disable_key()
            .key_id(arn)
            .send()
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
        Ok(())
    })
}

/// Server directives for KMS calls (`KMSKEYID`, KMS-sealed restores).
fn kms_server_args() -> Result<Vec<String>> {
    Ok(vec![
        "--kms-endpoint".into(),
        kms_endpoint()?,
        "--kms-region".into(),
        "us-east-1".into(),
    ])
}

fn rampart_cli() -> PathBuf {
    workspace_root().join("target/debug/rampart")
}

/// Runs `rampart ARGS…`.
fn cli(args: &[&str]) -> Result<Output> {
    let out = Command::new(rampart_cli())
        .args(args)
        .output()
        .context("running rampart")?;
    Ok(out)
}

/// Runs `rampart ARGS…` and fails with its stderr unless it succeeded.
fn cli_ok(args: &[&str]) -> Result<String> {
    let out = cli(args)?;
    if !out.status.success() {
        bail!(
            "rampart {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// Runs `rampart ARGS…` expecting failure; returns its stderr.
fn cli_err(args: &[&str]) -> Result<String> {
    let out = cli(args)?;
    if out.status.success() {
        bail!(
            "rampart {} succeeded, expected an error: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

fn with(base: &[String], more: &[&str]) -> Vec<String> {
    more.iter()
        .map(|s| s.to_string())
        .chain(base.iter().cloned())
        .collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn start(s3: &S3, extra: &[&str]) -> Result<Rampart> {
    let mut args = s3.server_args();
    args.extend(["--save".into(), String::new()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Rampart::start(&refs(&args))
}

fn start_in(dir: &Path, s3: &S3, extra: &[&str]) -> Result<Rampart> {
    let mut args = s3.server_args();
    args.extend(["--save".into(), String::new()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Rampart::start_in(dir, &refs(&args))
}

/// `rampart backup restore NAME --dir DIR --key-file KR`, then a server on
/// DIR with that keyring.
fn restore_and_start(s3: &S3, name: &str, dir: &Path, kr: &str) -> Result<Rampart> {
    let d = dir.display().to_string();
    cli_ok(&refs(&with(
        &s3.cli_args(),
        &["backup", "restore", name, "--dir", &d, "--key-file", kr],
    )))?;
    start_in(dir, s3, &["--kms-key-file", kr])
}

fn keyring(s: &Rampart) -> String {
    s.dir().join("keys/keyring.json").display().to_string()
}

fn backup_create(c: &mut redis::Connection, args: &[&str]) -> Result<String> {
    let mut all = vec!["BACKUP", "CREATE"];
    all.extend_from_slice(args);
    match cmd(c, &all)? {
        redis::Value::BulkString(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        other => bail!("BACKUP CREATE replied {other:?}"),
    }
}

fn manifests(s3: &S3) -> Result<Vec<Manifest>> {
    let store = s3.store()?;
    rt()?.block_on(bk::list(&store))
}

/// Every object under `prefix` in the bucket, read whole.
fn objects(s3: &S3, prefix: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    let store = rt()?.block_on(BackupStore::s3(&s3.config(prefix)))?;
    let rt = rt()?;
    let mut out = BTreeMap::new();
    for name in rt.block_on(store.list())? {
        let body = rt.block_on(store.get(&name))?;
        out.insert(name, body);
    }
    Ok(out)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn create_list_restore_gives_the_same_dataset_and_no_plaintext_in_the_bucket() -> Result<()> {
    let s3 = S3::new("roundtrip")?;
    let s = start(&s3, &[])?;
    let mut c = s.redis_conn()?;
    populate(&mut c)?;
    let before = contents(&mut c)?;
    assert!(before.len() > 10);

    let name = backup_create(&mut c, &["nightly"])?;
    assert_eq!(name, "nightly");
    // A default name, and the listing in the server and in the tool.
    let auto_named = backup_create(&mut c, &[])?;
    assert!(auto_named.starts_with("manual-"), "{auto_named}");
    let list: Vec<redis::Value> = redis::cmd("BACKUP").arg("LIST").query(&mut c)?;
    assert_eq!(list.len(), 2);
    assert_eq!(info_field(&mut c, "backup", "backups_created")?, "2");
    assert_eq!(info_field(&mut c, "backup", "backup_last_status")?, "ok");
    let listed = cli_ok(&refs(&with(&s3.cli_args(), &["backup", "list"])))?;
    assert!(listed.contains("nightly\tmanual\t"), "{listed}");

    let m = manifests(&s3)?
        .into_iter()
        .find(|m| m.name == "nightly")
        .ok_or_else(|| anyhow!("no manifest"))?;
    assert_eq!(m.kind, bk::Kind::Manual);
    assert_eq!(m.key_provider, "local");
    assert_eq!(m.object, "nightly.rdb.enc");
    let dataset: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.dir().join("rampart-dataset.json"))?)?;
    assert_eq!(Some(m.dataset.as_str()), dataset["id"].as_str());

    // Restore with the tool into a new directory, encrypted with the same
    // keyring, and start a server on it.
    let root = tempfile::tempdir()?;
    let dir = root.path().join("restored");
    let kr = keyring(&s);
    let r = restore_and_start(&s3, "nightly", &dir, &kr)?;
    assert_eq!(contents(&mut r.redis_conn()?)?, before);
    drop(r);

    // Seed a server straight from the bucket.
    let seeded_dir = root.path().join("seeded");
    std::fs::create_dir(&seeded_dir)?;
    let spec = format!("s3://{}/{}nightly", s3.bucket, s3.prefix);
    let seeded = start_in(
        &seeded_dir,
        &s3,
        &["--kms-key-file", &kr, "--restore-from", &spec],
    )?;
    assert_eq!(contents(&mut seeded.redis_conn()?)?, before);
    drop(seeded);

    // Nothing in the bucket under this prefix holds the marker in clear.
    let objs = objects(&s3, &s3.prefix)?;
    assert_eq!(
        objs.len(),
        4,
        "two objects and two manifests: {:?}",
        objs.keys()
    );
    for (name, body) in &objs {
        assert!(
            !contains(body, MARKER.as_bytes()),
            "{name} holds the marker in the clear"
        );
    }
    // The server kept serving throughout.
    assert_eq!(
        cmd(&mut c, &["PING"])?,
        redis::Value::SimpleString("PONG".into())
    );
    Ok(())
}

#[test]
fn a_kms_keyed_backup_of_a_local_key_dataset_and_a_copy_under_another_key() -> Result<()> {
    let s3 = S3::new("kms")?;
    let key_a = new_kms_key()?;
    let key_b = new_kms_key()?;
    let kms = kms_server_args()?;
    let s = start(&s3, &refs(&kms))?;
    let mut c = s.redis_conn()?;
    populate(&mut c)?;
    // 20 MB that does not compress, so the rewrapped copy has parts copied
    // inside the store (beyond the first 8 MiB).
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut p = redis::pipe();
    for i in 0..5000 {
        let v: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        p.cmd("SET").arg(format!("noise:{i}")).arg(v).ignore();
    }
    p.query::<()>(&mut c)?;
    let before = contents(&mut c)?;
    backup_create(&mut c, &["under-a", "KMSKEYID", &key_a])?;
    let m = manifests(&s3)?.remove(0);
    assert_eq!(m.key_provider, "aws-kms");
    assert_eq!(m.key_id, key_a);
    assert!(m.size > 16 << 20, "{} bytes", m.size);

    let ep = kms_endpoint()?;
    let kmsopts = ["--kms-endpoint", ep.as_str(), "--kms-region", "us-east-1"];
    let mut copy = with(
        &s3.cli_args(),
        &[
            "backup",
            "copy",
            "under-a",
            "under-b",
            "--to-kms-key-id",
            &key_b,
        ],
    );
    copy.extend(kmsopts.iter().map(|s| s.to_string()));
    cli_ok(&refs(&copy))?;
    // A same-key copy is a store-side copy with the same digest.
    let mut same = with(
        &s3.cli_args(),
        &["backup", "copy", "under-a", "under-a-too"],
    );
    same.extend(kmsopts.iter().map(|s| s.to_string()));
    cli_ok(&refs(&same))?;
    let all = manifests(&s3)?;
    let get = |n: &str| {
        all.iter()
            .find(|m| m.name == n)
            .cloned()
            .ok_or_else(|| anyhow!("no {n}"))
    };
    let (a, b, a2) = (get("under-a")?, get("under-b")?, get("under-a-too")?);
    assert_eq!(b.key_id, key_b);
    assert_eq!(b.kind, bk::Kind::Copy);
    assert_eq!(b.source.as_deref(), Some("under-a"));
    assert_ne!(a.sha256, b.sha256, "a new key slot, so a new digest");
    assert_eq!(a.sha256, a2.sha256);
    // Only the slot changed: the encrypted body is byte for byte the same.
    let objs = objects(&s3, &s3.prefix)?;
    let (oa, ob) = (&objs["under-a.rdb.enc"], &objs["under-b.rdb.enc"]);
    let (ha, la) = rampart_kms::Header::from_bytes(oa)?;
    let (hb, lb) = rampart_kms::Header::from_bytes(ob)?;
    assert_eq!(oa[la..], ob[lb..]);
    assert_eq!((ha.salt, ha.commitment), (hb.salt, hb.commitment));
    assert_ne!(ha.slots, hb.slots);

    disable_kms_key(&key_a)?;
    let root = tempfile::tempdir()?;
    // The original now fails, naming the key, and writes nothing.
    let dir_a = root.path().join("a");
    let mut restore_a = with(
        &s3.cli_args(),
        &[
            "backup",
            "restore",
            "under-a",
            "--dir",
            dir_a.to_str().unwrap_or_default(),
            "--no-encryption",
        ],
    );
    restore_a.extend(kmsopts.iter().map(|s| s.to_string()));
    let err = cli_err(&refs(&restore_a))?;
    assert!(
        err.contains(&format!("KMS key {key_a} is disabled")),
        "{err}"
    );
    assert!(!dir_a.exists(), "nothing is left of a failed restore");
    let mut describe = with(&s3.cli_args(), &["backup", "describe", "under-a"]);
    describe.extend(kmsopts.iter().map(|s| s.to_string()));
    let out = cli(&refs(&describe))?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("key state:   disabled"));

    // The copy restores, into a dataset under KMS key B.
    let dir_b = root.path().join("b");
    let mut restore_b = with(
        &s3.cli_args(),
        &[
            "backup",
            "restore",
            "under-b",
            "--dir",
            dir_b.to_str().unwrap_or_default(),
            "--kms-key-id",
            &key_b,
        ],
    );
    restore_b.extend(kmsopts.iter().map(|s| s.to_string()));
    cli_ok(&refs(&restore_b))?;
    let mut args = vec!["--kms-provider", "aws", "--kms-key-id", key_b.as_str()];
    args.extend(refs(&kms));
    let r = start_in(&dir_b, &s3, &args)?;
    assert_eq!(contents(&mut r.redis_conn()?)?, before);
    drop(r);

    // A server on the local key seeds from a KMS-sealed backup too, through
    // the key its slot names.
    let seeded_dir = root.path().join("seeded");
    std::fs::create_dir(&seeded_dir)?;
    let spec = format!("s3://{}/{}under-b", s3.bucket, s3.prefix);
    let mut args = vec!["--restore-from", spec.as_str()];
    args.extend(refs(&kms));
    let seeded = start_in(&seeded_dir, &s3, &args)?;
    assert_eq!(contents(&mut seeded.redis_conn()?)?, before);
    Ok(())
}

#[test]
fn export_is_a_dump_rdb_that_redis_server_loads() -> Result<()> {
    let s3 = S3::new("export")?;
    let s = start(&s3, &[])?;
    let mut c = s.redis_conn()?;
    populate(&mut c)?;
    let before = contents(&mut c)?;
    backup_create(&mut c, &["to-export"])?;
    let oracle_dir = tempfile::tempdir()?;
    let dump = oracle_dir.path().join("dump.rdb");
    let kr = keyring(&s);
    let out = cli_ok(&refs(&with(
        &s3.cli_args(),
        &[
            "backup",
            "export",
            "to-export",
            "--to",
            dump.to_str().unwrap_or_default(),
            "--key-file",
            &kr,
        ],
    )))?;
    assert!(out.contains("PLAINTEXT"), "the export warns: {out}");
    // And to the bucket, under another prefix (the one plaintext object).
    let exported = format!(
        "s3://{}/exports-{}/dump.rdb",
        s3.bucket,
        s3.prefix.trim_end_matches('/')
    );
    cli_ok(&refs(&with(
        &s3.cli_args(),
        &[
            "backup",
            "export",
            "to-export",
            "--to",
            &exported,
            "--key-file",
            &kr,
        ],
    )))?;
    let redis = RedisOracle::start_with(&[
        "--dir",
        oracle_dir.path().to_str().unwrap_or_default(),
        "--dbfilename",
        "dump.rdb",
    ])?;
    assert_eq!(contents(&mut redis.redis_conn()?)?, before);
    Ok(())
}

#[test]
fn a_server_seeds_from_a_plain_rdb_that_redis_server_wrote() -> Result<()> {
    let s3 = S3::new("seed")?;
    let redis = RedisOracle::start()?;
    let mut rc = redis.redis_conn()?;
    populate(&mut rc)?;
    let before = contents(&mut rc)?;
    cmd(&mut rc, &["SAVE"])?;
    let rdb = std::fs::read(redis.dir().join("dump.rdb"))?;
    let store = s3.store()?;
    rt()?.block_on(store.put("prod.rdb", rdb))?;
    let dir = tempfile::tempdir()?;
    let spec = format!("s3://{}/{}prod.rdb", s3.bucket, s3.prefix);
    let s = start_in(dir.path(), &s3, &["--restore-from", &spec])?;
    assert_eq!(contents(&mut s.redis_conn()?)?, before);
    // The plaintext went straight into an encrypted snapshot.
    let snap = std::fs::read(dir.path().join("dump.rdb"))?;
    assert!(snap.starts_with(b"RAMPART\x01"));
    assert!(!contains(&snap, MARKER.as_bytes()));
    // A second start on the same directory refuses to seed over it.
    drop(s);
    let (status, out) = Rampart::run_expecting_exit(
        dir.path(),
        &refs(&with(&s3.server_args(), &["--restore-from", &spec])),
        Duration::from_secs(20),
    )?;
    assert!(!status.success());
    assert!(out.contains("already holds a snapshot"), "{out}");
    Ok(())
}

#[test]
fn automatic_backups_fire_in_the_window_and_retention_spares_manual_ones() -> Result<()> {
    let s3 = S3::new("auto")?;
    // Old backups: one automatic and one manual, four days old.
    let s = start(&s3, &[])?;
    let mut c = s.redis_conn()?;
    cmd(&mut c, &["SET", "k", "v"])?;
    backup_create(&mut c, &["old-auto"])?;
    backup_create(&mut c, &["old-manual"])?;
    let store = s3.store()?;
    let rt = rt()?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    for (name, kind) in [("old-auto", "automatic"), ("old-manual", "manual")] {
        let file = format!("{name}.manifest.json");
        let mut m: serde_json::Value = serde_json::from_slice(&rt.block_on(store.get(&file))?)?;
        m["kind"] = kind.into();
        m["created_ms"] = (now_ms - 4 * 86_400_000).into();
        rt.block_on(store.put(&file, serde_json::to_vec(&m)?))?;
    }
    // A window around now (UTC), retention of one day.
    let minute = (now_ms / 60_000) % 1440;
    let hhmm = |m: u64| format!("{:02}:{:02}", (m / 60) % 24, m % 60);
    let window = format!(
        "{}-{}",
        hhmm((minute + 1439) % 1440),
        hhmm((minute + 10) % 1440)
    );
    cmd(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "backup-window",
            &window,
            "backup-retention-days",
            "1",
        ],
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names: Vec<String> = manifests(&s3)?.into_iter().map(|m| m.name).collect();
        let auto = names.iter().filter(|n| n.starts_with("automatic-")).count();
        if auto == 1 && !names.contains(&"old-auto".to_string()) {
            assert!(names.contains(&"old-manual".to_string()), "{names:?}");
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "no automatic backup and pruning within 30 s: {names:?}; log:\n{}",
                s.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Once a day: no second automatic backup in the same window.
    std::thread::sleep(Duration::from_millis(1500));
    let autos = manifests(&s3)?
        .iter()
        .filter(|m| m.kind == bk::Kind::Automatic)
        .count();
    assert_eq!(autos, 1);
    assert!(s.log().contains("Deleted automatic backup old-auto"));
    Ok(())
}

#[test]
fn a_final_backup_is_taken_on_sigterm() -> Result<()> {
    let s3 = S3::new("final")?;
    let mut s = start(&s3, &["--backup-on-shutdown", "yes"])?;
    let mut c = s.redis_conn()?;
    populate(&mut c)?;
    let before = contents(&mut c)?;
    let status = s.terminate(Duration::from_secs(30))?;
    assert_eq!(status, Some(0), "log:\n{}", s.log());
    let all = manifests(&s3)?;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].kind, bk::Kind::Final);
    let root = tempfile::tempdir()?;
    let dir = root.path().join("r");
    let kr = keyring(&s);
    let r = restore_and_start(&s3, &all[0].name, &dir, &kr)?;
    assert_eq!(contents(&mut r.redis_conn()?)?, before);
    Ok(())
}

#[test]
fn a_failed_final_backup_fails_shutdown_unless_forced() -> Result<()> {
    let s3 = S3::new("finalfail")?;
    let mut s = start(
        &s3,
        &[
            "--backup-on-shutdown",
            "yes",
            "--backup-s3-bucket",
            "no-such-bucket-rampart",
        ],
    )?;
    let mut c = s.conn()?;
    cmd(&mut s.redis_conn()?, &["SET", "k", "v"])?;
    // As a failed final save: SHUTDOWN fails and the server keeps serving.
    let reply = c.cmd(&["SHUTDOWN"])?;
    assert_eq!(reply, b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    assert!(s.is_running());
    assert!(s.log().contains("the final backup failed"), "{}", s.log());
    assert_eq!(c.cmd(&["GET", "k"])?, b"$1\r\nv\r\n");
    // FORCE exits anyway.
    let _ = c.cmd(&["SHUTDOWN", "FORCE"]);
    let status = s.wait_exit(Duration::from_secs(30))?;
    assert!(status.is_some_and(|st| st.success()), "{status:?}");
    Ok(())
}

#[test]
fn a_backup_is_one_point_in_time_under_concurrent_transactions() -> Result<()> {
    let s3 = S3::new("pit")?;
    let s = start(&s3, &["--enable-debug-command", "yes"])?;
    let mut c = s.redis_conn()?;
    cmd(&mut c, &["DEBUG", "POPULATE", "200000", "bulk", "100"])?;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = transfer_counters(s.redis_conn()?, stop.clone());
    wait_for_transfers(&mut c)?;
    backup_create(&mut c, &["pit"])?;
    stop.store(true, Ordering::Relaxed);
    let txs = writer.join().map_err(|_| anyhow!("writer panicked"))??;
    assert!(
        txs > 10,
        "the writer ran during the backup ({txs} transactions)"
    );
    let root = tempfile::tempdir()?;
    let dir = root.path().join("r");
    let kr = keyring(&s);
    let r = restore_and_start(&s3, "pit", &dir, &kr)?;
    let mut c2 = r.redis_conn()?;
    let (sum, nonzero) = counters(&mut c2)?;
    assert_eq!(sum, 0, "the backup must be one consistent cut");
    assert!(nonzero > 0, "the backup must contain counters");
    let n: i64 = redis::cmd("DBSIZE").query(&mut c2)?;
    assert!(n >= 200_000);
    Ok(())
}

/// A TCP proxy to `to` that passes the first `budget` bytes a client sends
/// on each connection, then cuts it, `max_cuts` times at most: an S3
/// endpoint that fails mid-upload, for good or for a moment.
struct CuttingProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    fn start(to: &str, budget: usize, max_cuts: usize) -> Result<CuttingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let to = to.trim_start_matches("http://").to_string();
        let (st, cu) = (stop.clone(), cuts.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !st.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let Ok(server) = TcpStream::connect(&to) else {
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let (mut c1, mut s1) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                let cu = cu.clone();
                // Upstream: pass `budget` bytes, then cut both ways.
                std::thread::spawn(move || {
                    let mut client = client;
                    let mut server = server;
                    let mut left = budget;
                    let mut buf = [0u8; 16384];
                    loop {
                        let n = match client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if n > left {
                            if cu.fetch_add(1, Ordering::Relaxed) < max_cuts {
                                break;
                            }
                            left = usize::MAX;
                        }
                        left -= n;
                        if server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s1, &mut c1);
                    let _ = c1.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Ok(CuttingProxy { port, stop, cuts })
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn an_upload_cut_midway_leaves_no_backup_and_no_parts_and_the_next_one_works() -> Result<()> {
    let s3 = S3::new("cut")?;
    let proxy = CuttingProxy::start(&s3.endpoint, 512 * 1024, usize::MAX)?;
    let via_proxy = format!("http://127.0.0.1:{}", proxy.port);
    let s = start(
        &s3,
        &[
            "--enable-debug-command",
            "yes",
            "--backup-s3-endpoint",
            &via_proxy,
        ],
    )?;
    let mut c = s.redis_conn()?;
    // About 3 MB of RDB: one part, larger than what the proxy lets through.
    cmd(&mut c, &["DEBUG", "POPULATE", "30000", "key", "100"])?;
    let err = match cmd(&mut c, &["BACKUP", "CREATE", "cut"]) {
        Err(e) => e.to_string(),
        Ok(v) => bail!("BACKUP CREATE through a cutting proxy succeeded: {v:?}"),
    };
    assert!(
        proxy.cuts.load(Ordering::Relaxed) > 0,
        "the proxy cut an upload"
    );
    assert!(err.contains("cut"), "the error names the backup: {err}");
    assert_eq!(info_field(&mut c, "backup", "backup_last_status")?, "err");
    assert_eq!(info_field(&mut c, "backup", "backups_failed")?, "1");
    // Nothing listed, nothing left in the bucket, no incomplete upload.
    assert!(manifests(&s3)?.is_empty());
    assert!(objects(&s3, &s3.prefix)?.is_empty(), "no object is left");
    let store = s3.store()?;
    assert_eq!(
        rt()?.block_on(store.incomplete_uploads())?,
        Vec::<String>::new()
    );
    // The server kept serving; with the endpoint fixed the next backup works.
    assert_eq!(cmd(&mut c, &["DBSIZE"])?, redis::Value::Int(30000));
    cmd(
        &mut c,
        &["CONFIG", "SET", "backup-s3-endpoint", &s3.endpoint],
    )?;
    backup_create(&mut c, &["after-the-cut"])?;
    let all = manifests(&s3)?;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name, "after-the-cut");
    Ok(())
}

#[test]
fn a_transient_failure_mid_upload_is_retried() -> Result<()> {
    let s3 = S3::new("retry")?;
    // The first upload that carries more than 512 KiB is cut; the retry
    // goes through.
    let proxy = CuttingProxy::start(&s3.endpoint, 512 * 1024, 1)?;
    let via_proxy = format!("http://127.0.0.1:{}", proxy.port);
    let s = start(
        &s3,
        &[
            "--enable-debug-command",
            "yes",
            "--backup-s3-endpoint",
            &via_proxy,
        ],
    )?;
    let mut c = s.redis_conn()?;
    cmd(&mut c, &["DEBUG", "POPULATE", "30000", "key", "100"])?;
    backup_create(&mut c, &["retried"])?;
    assert!(
        proxy.cuts.load(Ordering::Relaxed) >= 1,
        "the proxy cut once"
    );
    let all = manifests(&s3)?;
    assert_eq!(all.len(), 1);
    assert_eq!(
        rt()?.block_on(s3.store()?.incomplete_uploads())?,
        Vec::<String>::new()
    );
    let root = tempfile::tempdir()?;
    let r = restore_and_start(&s3, "retried", &root.path().join("r"), &keyring(&s))?;
    assert_eq!(
        cmd(&mut r.redis_conn()?, &["DBSIZE"])?,
        redis::Value::Int(30000)
    );
    Ok(())
}

#[test]
fn bad_names_buckets_credentials_and_tampering_each_fail_clearly() -> Result<()> {
    let s3 = S3::new("bad")?;
    let s = start(&s3, &[])?;
    let mut c = s.redis_conn()?;
    populate(&mut c)?;
    backup_create(&mut c, &["good"])?;
    let kr = keyring(&s);
    let root = tempfile::tempdir()?;
    let dir = |n: &str| root.path().join(n).display().to_string();

    // Unknown backup.
    let err = cli_err(&refs(&with(
        &s3.cli_args(),
        &[
            "backup",
            "restore",
            "nope",
            "--dir",
            &dir("x"),
            "--key-file",
            &kr,
        ],
    )))?;
    assert!(
        err.contains("nope") && err.contains("does not exist"),
        "{err}"
    );
    let err = cli_err(&refs(&with(
        &s3.cli_args(),
        &["backup", "describe", "nope"],
    )))?;
    assert!(err.contains("no backup named \"nope\""), "{err}");
    // Invalid name and a name taken.
    let e = cmd(&mut c, &["BACKUP", "CREATE", "../escape"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid backup name"), "{e}");
    let e = cmd(&mut c, &["BACKUP", "CREATE", "good"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");
    let e = cmd(&mut c, &["BACKUP", "CREATE", "x", "ASYNC", "ASYNC"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("syntax error"), "{e}");
    let e = cmd(&mut c, &["CONFIG", "SET", "backup-window", "25:00-26:00"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("HH:MM-HH:MM"), "{e}");

    // A bucket that does not exist.
    cmd(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "backup-s3-bucket",
            "no-such-bucket-rampart",
        ],
    )?;
    let e = cmd(&mut c, &["BACKUP", "CREATE", "nobucket"])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does not exist") || e.contains("NoSuchBucket"),
        "{e}"
    );
    cmd(&mut c, &["CONFIG", "SET", "backup-s3-bucket", &s3.bucket])?;

    // Wrong credentials.
    let out = Command::new(rampart_cli())
        .args(refs(&with(&s3.cli_args(), &["backup", "list"])))
        .env("AWS_SECRET_ACCESS_KEY", "0".repeat(64))
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("access denied") || err.contains("Forbidden") || err.contains("403"),
        "{err}"
    );

    let store = s3.store()?;
    let rt = rt()?;
    let manifest_bytes = rt.block_on(store.get("good.manifest.json"))?;
    let object = rt.block_on(store.get("good.rdb.enc"))?;
    let restore_fails = |what: &str, needle: &str| -> Result<()> {
        let d = dir(what);
        let err = cli_err(&refs(&with(
            &s3.cli_args(),
            &["backup", "restore", "good", "--dir", &d, "--key-file", &kr],
        )))?;
        assert!(err.contains(needle), "{what}: {err}");
        assert!(
            !Path::new(&d).exists(),
            "{what}: nothing is left of a failed restore"
        );
        Ok(())
    };

    // A manifest whose SHA-256 does not match.
    let mut m: serde_json::Value = serde_json::from_slice(&manifest_bytes)?;
    m["sha256"] = "00".repeat(32).into();
    rt.block_on(store.put("good.manifest.json", serde_json::to_vec(&m)?))?;
    restore_fails("sha", "SHA-256")?;
    // A damaged manifest.
    rt.block_on(store.put("good.manifest.json", b"{not json".to_vec()))?;
    restore_fails("json", "damaged")?;
    rt.block_on(store.put("good.manifest.json", manifest_bytes.clone()))?;
    // A truncated object.
    rt.block_on(store.put("good.rdb.enc", object[..object.len() / 2].to_vec()))?;
    restore_fails("truncated", "truncated or replaced")?;
    // A tampered object whose manifest was "fixed" to match: the envelope
    // still refuses it.
    let mut bad = object.clone();
    let at = bad.len() - 100;
    bad[at] ^= 1;
    rt.block_on(store.put("good.rdb.enc", bad.clone()))?;
    let mut m: serde_json::Value = serde_json::from_slice(&manifest_bytes)?;
    let mut h = rampart_kms::Sha256::new();
    h.update(&bad);
    m["sha256"] = h.hex().into();
    rt.block_on(store.put("good.manifest.json", serde_json::to_vec(&m)?))?;
    restore_fails("tampered", "failed authentication")?;
    // Put back, it restores again.
    rt.block_on(store.put("good.rdb.enc", object))?;
    rt.block_on(store.put("good.manifest.json", manifest_bytes))?;
    cli_ok(&refs(&with(
        &s3.cli_args(),
        &[
            "backup",
            "restore",
            "good",
            "--dir",
            &dir("ok"),
            "--key-file",
            &kr,
        ],
    )))?;
    // Delete, then it is gone.
    cli_ok(&refs(&with(&s3.cli_args(), &["backup", "delete", "good"])))?;
    assert!(manifests(&s3)?.is_empty());
    assert!(objects(&s3, &s3.prefix)?.is_empty());
    // The server kept serving.
    assert_eq!(
        cmd(&mut c, &["PING"])?,
        redis::Value::SimpleString("PONG".into())
    );
    Ok(())
}

#[test]
fn a_directory_store_has_the_same_semantics() -> Result<()> {
    let store_dir = tempfile::tempdir()?;
    let sd = store_dir.path().display().to_string();
    let s = Rampart::start(&["--save", "", "--backup-dir", &sd])?;
    let mut c = s.redis_conn()?;
    populate(&mut c)?;
    let before = contents(&mut c)?;
    backup_create(&mut c, &["local-1"])?;
    // The tool asks the running server for one too.
    let out = cli_ok(&["backup", "create", "from-cli", "--server", &s.addr()])?;
    assert_eq!(out.trim(), "from-cli");
    let listed = cli_ok(&["backup", "list", "--store", &sd])?;
    assert!(
        listed.contains("local-1\tmanual") && listed.contains("from-cli\tmanual"),
        "{listed}"
    );
    let files: Vec<String> = std::fs::read_dir(store_dir.path())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 4, "{files:?}");
    for f in &files {
        assert!(!contains(
            &std::fs::read(store_dir.path().join(f))?,
            MARKER.as_bytes()
        ));
    }
    let root = tempfile::tempdir()?;
    let dir = root.path().join("plain");
    let kr = keyring(&s);
    cli_ok(&[
        "backup",
        "restore",
        "local-1",
        "--store",
        &sd,
        "--dir",
        dir.to_str().unwrap_or_default(),
        "--key-file",
        &kr,
        "--no-encryption",
    ])?;
    let r = Rampart::start_in(&dir, &["--save", "", "--encryption-at-rest", "no"])?;
    assert_eq!(contents(&mut r.redis_conn()?)?, before);
    // A non-empty directory is refused.
    let err = cli_err(&[
        "backup",
        "restore",
        "local-1",
        "--store",
        &sd,
        "--dir",
        dir.to_str().unwrap_or_default(),
        "--key-file",
        &kr,
    ])?;
    assert!(err.contains("not empty"), "{err}");
    Ok(())
}
