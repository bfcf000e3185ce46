//! The `rampart` binary, run as a process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn rampart(args: &[&str], cwd: &Path) -> Output {
    Command::new(common::rampart_bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn ok(args: &[&str], cwd: &Path) -> String {
    let out = rampart(args, cwd);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str], cwd: &Path) -> String {
    let out = rampart(args, cwd);
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("rampart: error:") || err.contains("error:"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn help_everywhere() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["keyring", "--help"],
        vec!["keyring", "init", "--help"],
        vec!["keyring", "rotate", "--help"],
        vec!["keyring", "list", "--help"],
        vec!["keyring", "disable", "--help"],
        vec!["keyring", "enable", "--help"],
        vec!["snapshot", "--help"],
        vec!["snapshot", "inspect", "--help"],
        vec!["snapshot", "encrypt", "--help"],
        vec!["snapshot", "decrypt", "--help"],
        vec!["snapshot", "rewrap", "--help"],
    ] {
        let out = ok(&args, d.path());
        assert!(out.contains("Usage:"), "{args:?}");
    }
    assert!(
        !rampart(&["snapshot", "rewrap", "x", "--key-file", "k"], d.path())
            .status
            .success()
    );
}

#[test]
fn keyring_and_snapshot_round_trip() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let plain: Vec<u8> = (0..2_500_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(p.join("dump.rdb"), &plain).unwrap();

    ok(&["keyring", "init", "--file", "k.json"], p);
    assert_eq!(
        std::fs::metadata(p.join("k.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    fails(&["keyring", "init", "--file", "k.json"], p);
    ok(
        &[
            "snapshot",
            "encrypt",
            "dump.rdb",
            "-o",
            "v1.enc",
            "--key-file",
            "k.json",
            "--dataset",
            "c1",
            "--chunk-log2",
            "16",
        ],
        p,
    );
    let out = ok(&["keyring", "rotate", "--file", "k.json"], p);
    assert!(out.contains("version 2 is now primary"));
    let list = ok(&["keyring", "list", "--file", "k.json"], p);
    assert!(
        list.contains("enabled") && list.lines().count() == 4,
        "{list}"
    );
    let material = std::fs::read_to_string(p.join("k.json")).unwrap();
    let m = material
        .split("\"material\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(!list.contains(m), "list printed key material");

    let inspect = ok(&["snapshot", "inspect", "v1.enc"], p);
    assert!(
        inspect.contains("dataset = c1") && inspect.contains("/1 wrapped=60 bytes"),
        "{inspect}"
    );
    assert!(inspect.contains("chunks:      39"), "{inspect}");
    let j: serde_json::Value =
        serde_json::from_str(&ok(&["snapshot", "inspect", "v1.enc", "--json"], p)).unwrap();
    assert_eq!(j["plaintext_len"], 2_500_000);
    assert_eq!(j["complete"], true);

    ok(
        &[
            "snapshot",
            "decrypt",
            "v1.enc",
            "-o",
            "out.rdb",
            "--key-file",
            "k.json",
        ],
        p,
    );
    assert_eq!(std::fs::read(p.join("out.rdb")).unwrap(), plain);

    // Rewrap v1 -> v2 in place, then disable v1: still decrypts.
    ok(
        &[
            "snapshot",
            "rewrap",
            "v1.enc",
            "--key-file",
            "k.json",
            "--to-key-file",
            "k.json",
        ],
        p,
    );
    assert!(ok(&["snapshot", "inspect", "v1.enc"], p).contains("/2 wrapped"));
    ok(
        &["keyring", "disable", "--file", "k.json", "--version", "1"],
        p,
    );
    ok(
        &[
            "snapshot",
            "decrypt",
            "v1.enc",
            "-o",
            "out2.rdb",
            "--key-file",
            "k.json",
        ],
        p,
    );
    assert_eq!(std::fs::read(p.join("out2.rdb")).unwrap(), plain);

    // A file still under v1 is refused with the reason.
    ok(
        &["keyring", "enable", "--file", "k.json", "--version", "1"],
        p,
    );
    ok(&["keyring", "rotate", "--file", "k.json"], p);
    ok(
        &[
            "snapshot",
            "encrypt",
            "dump.rdb",
            "-o",
            "v3.enc",
            "--key-file",
            "k.json",
        ],
        p,
    );
    ok(&["keyring", "rotate", "--file", "k.json"], p);
    ok(
        &["keyring", "disable", "--file", "k.json", "--version", "3"],
        p,
    );
    let err = fails(
        &[
            "snapshot",
            "decrypt",
            "v3.enc",
            "-o",
            "out3.rdb",
            "--key-file",
            "k.json",
        ],
        p,
    );
    assert!(
        err.contains("is disabled") && err.contains("enable --version 3"),
        "{err}"
    );
    assert!(!p.join("out3.rdb").exists());

    // Rewrap into another keyring file.
    ok(&["keyring", "init", "--file", "other.json"], p);
    ok(
        &[
            "snapshot",
            "rewrap",
            "v1.enc",
            "-o",
            "other.enc",
            "--key-file",
            "k.json",
            "--to-key-file",
            "other.json",
        ],
        p,
    );
    ok(
        &[
            "snapshot",
            "decrypt",
            "other.enc",
            "-o",
            "out4.rdb",
            "--key-file",
            "other.json",
        ],
        p,
    );
    assert_eq!(std::fs::read(p.join("out4.rdb")).unwrap(), plain);
    let err = fails(
        &[
            "snapshot",
            "decrypt",
            "other.enc",
            "-o",
            "out5.rdb",
            "--key-file",
            "k.json",
        ],
        p,
    );
    assert!(err.contains("no key slot"), "{err}");

    // No temp files anywhere.
    assert!(
        files_in(p).iter().all(|f| !f.contains(".tmp-")),
        "{:?}",
        files_in(p)
    );
}

#[test]
fn damaged_input_leaves_no_plaintext_behind() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    std::fs::write(p.join("dump.rdb"), vec![7u8; 300_000]).unwrap();
    ok(&["keyring", "init", "--file", "k.json"], p);
    ok(
        &[
            "snapshot",
            "encrypt",
            "dump.rdb",
            "-o",
            "a.enc",
            "--key-file",
            "k.json",
            "--chunk-log2",
            "16",
        ],
        p,
    );
    let full = std::fs::read(p.join("a.enc")).unwrap();

    std::fs::write(p.join("cut.enc"), &full[..full.len() - 100]).unwrap();
    let err = fails(
        &[
            "snapshot",
            "decrypt",
            "cut.enc",
            "-o",
            "cut.rdb",
            "--key-file",
            "k.json",
        ],
        p,
    );
    assert!(err.contains("truncated"), "{err}");
    assert!(!p.join("cut.rdb").exists());
    let insp = rampart(&["snapshot", "inspect", "cut.enc"], p);
    assert!(!insp.status.success());
    assert!(String::from_utf8_lossy(&insp.stdout).contains("DAMAGED"));

    let mut flipped = full.clone();
    let n = flipped.len();
    flipped[n - 30_000] ^= 4;
    std::fs::write(p.join("flip.enc"), &flipped).unwrap();
    let err = fails(
        &[
            "snapshot",
            "decrypt",
            "flip.enc",
            "-o",
            "flip.rdb",
            "--key-file",
            "k.json",
        ],
        p,
    );
    assert!(err.contains("failed authentication"), "{err}");
    assert!(!p.join("flip.rdb").exists());

    let mut padded = full.clone();
    padded.extend_from_slice(b"junk");
    std::fs::write(p.join("pad.enc"), &padded).unwrap();
    let err = fails(
        &[
            "snapshot",
            "decrypt",
            "pad.enc",
            "-o",
            "pad.rdb",
            "--key-file",
            "k.json",
        ],
        p,
    );
    assert!(err.contains("after the final chunk"), "{err}");

    let err = fails(
        &[
            "snapshot",
            "decrypt",
            "dump.rdb",
            "-o",
            "x.rdb",
            "--key-file",
            "k.json",
        ],
        p,
    );
    assert!(err.contains("not a Rampart envelope"), "{err}");

    std::fs::set_permissions(p.join("k.json"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(
        &[
            "snapshot",
            "decrypt",
            "a.enc",
            "-o",
            "y.rdb",
            "--key-file",
            "k.json",
        ],
        p,
    );
    assert!(err.contains("must be 0600"), "{err}");
    let err = fails(&["snapshot", "decrypt", "a.enc", "-o", "y.rdb"], p);
    assert!(err.contains("no key given"), "{err}");
    let err = fails(&["keyring", "list", "--file", "missing.json"], p);
    assert!(err.contains("does not exist"), "{err}");
    assert!(
        files_in(p).iter().all(|f| !f.contains(".tmp-")),
        "{:?}",
        files_in(p)
    );
}

#[test]
fn kms_without_a_region_is_a_config_error() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("x.enc"), b"x").unwrap();
    let out = Command::new(common::rampart_bin())
        .args([
            "snapshot",
            "decrypt",
            "x.enc",
            "-o",
            "x.rdb",
            "--kms",
            "--kms-endpoint",
            "http://127.0.0.1:9",
        ])
        .current_dir(d.path())
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no AWS region"), "{err}");
}
