//! Property tests for reading backups, standing in for a fuzz target on
//! stable Rust: whatever is done to a backup's object or manifest (bytes
//! flipped, cut, appended, the manifest rewritten), opening and restoring
//! it either succeeds with the original dataset or fails with an error —
//! never a panic, never a snapshot file left behind.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use proptest::prelude::*;
use rampart_keyspace::Value;
use rampart_kms::{LocalKeyring, LocalProvider, Provider};
use rampart_persistence::backup::{self as bk, BackupStore, BackupWriter, Kind, Origin};
use rampart_persistence::rdb;
use rampart_persistence::snapshot::Protection;

struct Fixture {
    _dir: tempfile::TempDir,
    store: BackupStore,
    provider: Provider,
    rt: tokio::runtime::Runtime,
    object: Vec<u8>,
    manifest: Vec<u8>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let ring = dir.path().join("keyring.json");
    LocalKeyring::init(&ring).unwrap();
    let provider = Provider::Local(LocalProvider::open(&ring, Default::default()).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = BackupStore::dir(&dir.path().join("store"));
    let origin = Origin {
        dataset: "ds-test".into(),
        node: "n1".into(),
        ..Default::default()
    };
    let mut w =
        BackupWriter::begin(&store, rt.handle(), "b", Kind::Manual, &origin, &provider).unwrap();
    let mut body = Vec::new();
    rdb::write_header(&mut body, &[]);
    rdb::write_select_db(&mut body, 0);
    for i in 0..2000 {
        let v = Value::string(format!("value-{i}").repeat(i % 7 + 1).as_bytes());
        rdb::write_entry(&mut body, format!("key:{i}").as_bytes(), &v, None);
    }
    rdb::write_eof(&mut body);
    w.write(&body).unwrap();
    w.commit().unwrap();
    let object = rt.block_on(store.get("b.rdb.enc")).unwrap();
    let manifest = rt.block_on(store.get("b.manifest.json")).unwrap();
    Fixture {
        _dir: dir,
        store,
        provider,
        rt,
        object,
        manifest,
    }
}

/// Restores backup `b` into `dest`: the number of keys, or the error.
fn restore(f: &Fixture, dest: &Path) -> anyhow::Result<u64> {
    let (_, src) = bk::open(&f.store, f.rt.handle(), "b", &f.provider)?;
    bk::restore_to(src, bk::Check::Parse, dest, Protection::Plain)?
        .ok_or_else(|| anyhow::anyhow!("no key count"))
}

/// The same through the trailer-only check a backup restore uses.
fn restore_trusting(f: &Fixture, dest: &Path) -> anyhow::Result<()> {
    let (_, src) = bk::open(&f.store, f.rt.handle(), "b", &f.provider)?;
    bk::restore_to(src, bk::Check::Trailer, dest, Protection::Plain).map(|_| ())
}

#[test]
fn the_untouched_backup_restores() {
    let f = fixture();
    let out = tempfile::tempdir().unwrap();
    assert_eq!(restore(&f, &out.path().join("dump.rdb")).unwrap(), 2000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_damaged_object_never_restores_and_leaves_nothing(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        extra in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let f = fixture();
        let mut obj = f.object.clone();
        for (at, x) in &flips {
            let i = at.index(obj.len());
            obj[i] ^= x;
        }
        if let Some(c) = cut {
            obj.truncate(c.index(obj.len()));
        }
        obj.extend_from_slice(&extra);
        let changed = obj != f.object;
        f.rt.block_on(f.store.put("b.rdb.enc", obj.clone())).unwrap();
        // Half the time the manifest is "fixed" to match the new object, so
        // the envelope itself must catch the damage.
        if flips.len() % 2 == 1 {
            let mut m: serde_json::Value = serde_json::from_slice(&f.manifest).unwrap();
            let mut h = rampart_kms::Sha256::new();
            h.update(&obj);
            m["sha256"] = h.hex().into();
            m["size"] = obj.len().into();
            f.rt.block_on(f.store.put("b.manifest.json", serde_json::to_vec(&m).unwrap())).unwrap();
        }
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("dump.rdb");
        let r = restore(&f, &dest);
        let trusting = restore_trusting(&f, &out.path().join("other.rdb"));
        if changed {
            prop_assert!(r.is_err(), "a damaged object restored");
            prop_assert!(trusting.is_err(), "a damaged object restored");
            prop_assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
        } else {
            prop_assert_eq!(r.unwrap(), 2000);
            prop_assert!(trusting.is_ok());
        }
    }

    #[test]
    fn a_damaged_manifest_never_panics(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let f = fixture();
        let mut m = f.manifest.clone();
        let i = at.index(m.len());
        m[i] = byte;
        m.truncate(cut.index(m.len() + 1).max(i + 1));
        let changed = m != f.manifest;
        f.rt.block_on(f.store.put("b.manifest.json", m)).unwrap();
        let out = tempfile::tempdir().unwrap();
        let dest = out.path().join("dump.rdb");
        match restore(&f, &dest) {
            Ok(n) => prop_assert_eq!(n, 2000),
            Err(_) => {
                prop_assert!(changed);
                prop_assert!(!dest.exists());
            }
        }
    }
}
