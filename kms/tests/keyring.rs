//! Local keyring: versions, states, file checks, and the local provider
//! over envelopes (rewrap, swapped slots, audit).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::pattern;
use rampart_kms::*;

fn assert_no_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "temp file {name} left behind");
    }
}

fn ctx() -> KeyContext {
    KeyContext::new("cache-1", Payload::Snapshot)
}

fn local(path: &Path, audit: Option<&Path>) -> Provider {
    Provider::Local(LocalProvider::open(path, AuditLog::open(audit).unwrap()).unwrap())
}

async fn encrypt(p: &Provider, params: &EnvelopeParams, pt: &[u8]) -> Vec<u8> {
    let (dk, slot) = p
        .generate_data_key(&params.key_context().unwrap())
        .await
        .unwrap();
    let mut w = EnvelopeWriter::new(Vec::new(), params, dk, vec![slot]).unwrap();
    w.write_all(pt).unwrap();
    w.finish().unwrap()
}

async fn decrypt(p: &Provider, stream: &[u8]) -> Result<Vec<u8>> {
    let mut r = AsyncEnvelopeReader::open(stream, p)
        .await?
        .require_eof(true);
    r.read_all().await
}

#[test]
fn init_writes_a_0600_file_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.json");
    let ring = LocalKeyring::init(&path).unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(ring.versions().len(), 1);
    assert!(matches!(
        LocalKeyring::init(&path),
        Err(Error::KeyFileExists(_))
    ));
    assert_no_temp_files(dir.path());
}

#[test]
fn rotate_disable_enable_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    let mut ring = LocalKeyring::init(&path).unwrap();
    let (_, slot1) = ring.generate_data_key(&ctx()).unwrap();
    assert_eq!(ring.rotate().unwrap(), 2);
    let (_, slot2) = ring.generate_data_key(&ctx()).unwrap();
    assert!(slot2.key_id.ends_with("/2"));

    let mut again = LocalKeyring::open(&path).unwrap();
    assert_eq!(again.primary_version(), 2);
    again.decrypt_data_key(&slot1, &ctx()).unwrap();
    again.decrypt_data_key(&slot2, &ctx()).unwrap();

    // The primary cannot be disabled.
    assert!(matches!(again.disable(2), Err(Error::KeyringOp(_))));
    again.disable(1).unwrap();
    let reopened = LocalKeyring::open(&path).unwrap();
    let err = reopened.decrypt_data_key(&slot1, &ctx()).unwrap_err();
    assert!(
        matches!(err, Error::LocalKeyDisabled { version: 1, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("is disabled") && msg.contains("cannot be decrypted"),
        "{msg}"
    );
    assert!(matches!(
        again.disable(9),
        Err(Error::LocalKeyNotFound { version: 9, .. })
    ));

    again.enable(1).unwrap();
    LocalKeyring::open(&path)
        .unwrap()
        .decrypt_data_key(&slot1, &ctx())
        .unwrap();
    assert_no_temp_files(dir.path());
}

#[test]
fn world_readable_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    LocalKeyring::init(&path).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o700, 0o400] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = LocalKeyring::open(&path).unwrap_err();
        assert!(
            matches!(err, Error::KeyFileMode { mode: m, .. } if m == mode),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"));
    }
}

#[test]
fn key_file_owned_by_another_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    LocalKeyring::init(&path).unwrap();
    // Only root can give a file away; elsewhere this check cannot be staged.
    if std::os::unix::fs::chown(&path, Some(54321), None).is_ok() {
        let err = LocalKeyring::open(&path).unwrap_err();
        assert!(
            matches!(err, Error::KeyFileOwner { owner: 54321, .. }),
            "{err}"
        );
    }
}

#[test]
fn symlinked_and_missing_key_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    LocalKeyring::init(&path).unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(LocalKeyring::open(&link).is_err());
    let err = LocalKeyring::open(&dir.path().join("nope.json")).unwrap_err();
    assert!(matches!(err, Error::KeyFileMissing(_)));
    assert!(err.to_string().contains("rampart keyring init"));
}

#[test]
fn corrupt_key_files_are_invalid_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    LocalKeyring::init(&path).unwrap();
    let good = std::fs::read_to_string(&path).unwrap();
    let cases = [
        "".to_string(),
        "{".to_string(),
        good.replace("\"format_version\": 1", "\"format_version\": 2"),
        good.replace("\"primary\": 1", "\"primary\": 7"),
        good.replace("\"enabled\"", "\"disabled\""),
        good.replace("\"material\": \"", "\"material\": \"AAAA"),
        good.replace("\"version\": 1", "\"version\": 0"),
        good.replace("\"id\": \"", "\"id\": \"bad id "),
    ];
    for (i, text) in cases.iter().enumerate() {
        let err = LocalKeyring::from_json(&path, text.as_bytes()).unwrap_err();
        assert!(
            matches!(err, Error::KeyFileInvalid { .. }),
            "case {i}: {err}"
        );
    }
    // Key material never appears in errors.
    let material = good
        .split("\"material\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    for text in &cases {
        if let Err(e) = LocalKeyring::from_json(&path, text.as_bytes()) {
            assert!(!e.to_string().contains(material));
        }
    }
}

#[test]
fn open_or_create_makes_the_service_managed_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys").join("keyring.json");
    let (ring, created) = LocalKeyring::open_or_create(&path).unwrap();
    assert!(created);
    let (again, created) = LocalKeyring::open_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(ring.id(), again.id());
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
}

#[tokio::test]
async fn local_provider_streams_rewrap_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    let audit = dir.path().join("audit.jsonl");
    LocalKeyring::init(&path).unwrap();
    let p = local(&path, Some(&audit));
    let params = EnvelopeParams::new(Payload::Backup, "cache-1").with_chunk_log2(16);
    let pt = pattern(100_000);
    let stream = encrypt(&p, &params, &pt).await;
    assert_eq!(decrypt(&p, &stream).await.unwrap(), pt);

    // Rotation and disabling via another handle (the CLI) take effect in the
    // running provider at once.
    let mut ring = LocalKeyring::open(&path).unwrap();
    ring.rotate().unwrap();
    ring.disable(1).unwrap();
    let err = decrypt(&p, &stream).await.unwrap_err();
    assert!(
        matches!(err, Error::LocalKeyDisabled { version: 1, .. }),
        "{err}"
    );
    ring.enable(1).unwrap();

    // Rewrap v1 -> v2 (the primary) without touching the body.
    let mut out = Vec::new();
    let new_header = rewrap_stream(&mut &stream[..], &mut out, &p, &p)
        .await
        .unwrap();
    assert!(new_header.slots[0].key_id.ends_with("/2"));
    let (_, old_len) = Header::from_bytes(&stream).unwrap();
    let (_, new_len) = Header::from_bytes(&out).unwrap();
    assert_eq!(stream[old_len..], out[new_len..], "body changed");
    ring.disable(1).unwrap();
    assert_eq!(decrypt(&p, &out).await.unwrap(), pt);

    // Rewrap into another keyring.
    let path_b = dir.path().join("b.json");
    LocalKeyring::init(&path_b).unwrap();
    let pb = local(&path_b, None);
    let mut out_b = Vec::new();
    rewrap_stream(&mut &out[..], &mut out_b, &p, &pb)
        .await
        .unwrap();
    assert_eq!(decrypt(&pb, &out_b).await.unwrap(), pt);
    let err = decrypt(&p, &out_b).await.unwrap_err();
    assert!(matches!(err, Error::NoMatchingSlot { .. }), "{err}");

    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 5);
    let first = &lines[0];
    assert_eq!(first["operation"], "GenerateDataKey");
    assert_eq!(first["provider"], "local");
    assert_eq!(first["purpose"], "backup");
    assert_eq!(first["dataset"], "cache-1");
    assert_eq!(first["outcome"], "success");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert!(lines
        .iter()
        .any(|l| l["outcome"] == "failure" && l["error"].as_str().unwrap().contains("disabled")));
}

#[tokio::test]
async fn swapped_key_slots_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    LocalKeyring::init(&path).unwrap();
    let p = local(&path, None);
    let params = EnvelopeParams::new(Payload::Snapshot, "cache-1").with_chunk_log2(16);
    let a = encrypt(&p, &params, b"stream a").await;
    let b = encrypt(&p, &params, b"stream b").await;
    let other_ds = encrypt(&p, &EnvelopeParams::new(Payload::Snapshot, "other"), b"c").await;

    let swap = |target: &[u8], donor: &[u8]| {
        let (mut h, n) = Header::from_bytes(target).unwrap();
        let (d, _) = Header::from_bytes(donor).unwrap();
        h.slots = d.slots;
        let mut s = h.to_bytes();
        s.extend_from_slice(&target[n..]);
        s
    };
    // Same dataset and purpose: the slot unwraps, the commitment refuses it.
    let err = decrypt(&p, &swap(&a, &b)).await.unwrap_err();
    assert!(matches!(err, Error::SlotMismatch { slot: 0, .. }), "{err}");
    assert!(err.to_string().contains("swapped"));
    // Another dataset: the wrap's context binding refuses it.
    let err = decrypt(&p, &swap(&a, &other_ds)).await.unwrap_err();
    assert!(matches!(err, Error::LocalUnwrap { .. }), "{err}");
}

#[test]
fn concurrent_keyring_edits_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    LocalKeyring::init(&path).unwrap();
    // Two handles loaded before either edits: a stale one must not undo
    // the other's rotation.
    let mut a = LocalKeyring::open(&path).unwrap();
    let mut b = LocalKeyring::open(&path).unwrap();
    assert_eq!(a.rotate().unwrap(), 2);
    assert_eq!(b.rotate().unwrap(), 3);
    b.disable(1).unwrap();
    a.disable(2).unwrap();
    let ring = LocalKeyring::open(&path).unwrap();
    let states: Vec<_> = ring
        .versions()
        .iter()
        .map(|v| (v.version, v.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (1, KeyState::Disabled),
            (2, KeyState::Disabled),
            (3, KeyState::Enabled)
        ]
    );

    let threads: Vec<_> = (0..8)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || LocalKeyring::open(&path).unwrap().rotate().unwrap())
        })
        .collect();
    let mut got: Vec<u32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    got.sort();
    assert_eq!(got, (4..12).collect::<Vec<_>>());
    assert_eq!(LocalKeyring::open(&path).unwrap().versions().len(), 11);
    assert_no_temp_files(dir.path());
}
