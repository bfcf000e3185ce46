//! AWS KMS provider against a real KMS API endpoint (moto, started by
//! `scripts/services.sh`, which enforces key states like real KMS).
//!
//! These tests FAIL when `RAMPART_TEST_KMS_ENDPOINT` is unset or the endpoint
//! is down: a skipped KMS test would hide a broken provider.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::Duration;

use aws_sdk_kms::types::KeyState as AwsKeyState;
use common::pattern;
use rampart_kms::*;

fn endpoint() -> String {
    let ep = std::env::var("RAMPART_TEST_KMS_ENDPOINT").expect(
        "RAMPART_TEST_KMS_ENDPOINT is not set: start the KMS endpoint with \
         `eval \"$(scripts/services.sh start)\"` before `cargo test -p rampart-kms`",
    );
    let addr = ep.trim_start_matches("http://").trim_end_matches('/');
    let sock: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("RAMPART_TEST_KMS_ENDPOINT={ep} is not host:port"));
    std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("KMS endpoint {ep} is unreachable ({e}): is moto running?"));
    ep
}

fn set_dummy_creds() {
    // from_config uses the standard chain, as the server will: the env that
    // scripts/services.sh prints carries dummy credentials for moto.
    assert!(
        std::env::var_os("AWS_ACCESS_KEY_ID").is_some(),
        "AWS_ACCESS_KEY_ID is not set: use the env printed by `scripts/services.sh start`"
    );
}

async fn kms(key_id: Option<&str>, audit: AuditLog) -> AwsKms {
    let cfg = AwsKmsConfig {
        key_id: key_id.map(str::to_string),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint()),
        static_credentials: Some(StaticCredentials::new("test", "test")),
        ..Default::default()
    };
    AwsKms::connect(&cfg, audit).await.unwrap()
}

async fn new_key(k: &AwsKms) -> String {
    let out = k
        .client()
        .create_key()
        .description("rampart test")
        .send()
        .await
        .unwrap();
    out.key_metadata().unwrap().arn().unwrap().to_string()
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

#[tokio::test]
async fn disabled_key_cannot_decrypt_until_enabled() {
    let admin = kms(None, AuditLog::disabled()).await;
    let arn = new_key(&admin).await;
    let dir = tempfile::tempdir().unwrap();
    let audit_path = dir.path().join("audit.jsonl");
    let p = Provider::Aws(kms(Some(&arn), AuditLog::open(Some(&audit_path)).unwrap()).await);
    let params = EnvelopeParams::new(Payload::Snapshot, "cache-prod").with_chunk_log2(16);
    let pt = pattern(200_000);
    let stream = encrypt(&p, &params, &pt).await;
    let (h, _) = Header::from_bytes(&stream).unwrap();
    assert_eq!(h.slots[0].provider, "aws-kms");
    assert_eq!(h.slots[0].key_id, arn, "slot names the key by ARN");
    assert_eq!(decrypt(&p, &stream).await.unwrap(), pt);

    admin
        .client()
        .disable_key()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    let err = decrypt(&p, &stream).await.unwrap_err();
    assert!(
        matches!(&err, Error::KmsKeyDisabled { key_id } if *key_id == arn),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "KMS key {arn} is disabled: data encrypted under it cannot be decrypted until it is enabled"
        )
    );
    // New data cannot be encrypted under it either.
    let err = p
        .generate_data_key(&params.key_context().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KmsKeyDisabled { .. }), "{err}");

    admin
        .client()
        .enable_key()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(decrypt(&p, &stream).await.unwrap(), pt);

    let log = std::fs::read_to_string(&audit_path).unwrap();
    let recs: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs[0]["operation"], "GenerateDataKey");
    assert_eq!(recs[0]["provider"], "aws-kms");
    assert_eq!(recs[0]["dataset"], "cache-prod");
    assert_eq!(recs[0]["purpose"], "snapshot");
    assert!(
        recs.iter()
            .any(|r| r["operation"] == "Decrypt" && r["outcome"] == "failure")
    );
    assert_eq!(recs.last().unwrap()["outcome"], "success");
}

#[tokio::test]
async fn pending_deletion_and_missing_keys_have_their_own_errors() {
    let admin = kms(None, AuditLog::disabled()).await;
    let arn = new_key(&admin).await;
    let p = Provider::Aws(kms(Some(&arn), AuditLog::disabled()).await);
    let params = EnvelopeParams::new(Payload::Backup, "d1").with_chunk_log2(16);
    let stream = encrypt(&p, &params, b"backup").await;

    admin
        .client()
        .schedule_key_deletion()
        .key_id(&arn)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let desc = admin
        .client()
        .describe_key()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        desc.key_metadata().unwrap().key_state(),
        Some(&AwsKeyState::PendingDeletion)
    );
    let err = decrypt(&p, &stream).await.unwrap_err();
    assert!(matches!(err, Error::KmsKeyPendingDeletion { .. }), "{err}");
    assert!(err.to_string().contains("pending deletion"));
    admin
        .client()
        .cancel_key_deletion()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    admin
        .client()
        .enable_key()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(decrypt(&p, &stream).await.unwrap(), b"backup");

    let missing =
        Provider::Aws(kms(Some("alias/rampart-does-not-exist"), AuditLog::disabled()).await);
    let err = missing
        .generate_data_key(&params.key_context().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KmsKeyNotFound { .. }), "{err}");
    let missing = Provider::Aws(
        kms(
            Some("11111111-2222-3333-4444-555555555555"),
            AuditLog::disabled(),
        )
        .await,
    );
    let err = missing
        .generate_data_key(&params.key_context().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KmsKeyNotFound { .. }), "{err}");
}

#[tokio::test]
async fn wrong_context_is_refused_by_kms() {
    let admin = kms(None, AuditLog::disabled()).await;
    let arn = new_key(&admin).await;
    let k = kms(Some(&arn), AuditLog::disabled()).await;
    let (_, slot) = k
        .generate_data_key(&KeyContext::new("a", Payload::Snapshot))
        .await
        .unwrap();
    let err = k
        .decrypt_data_key(&slot, &KeyContext::new("b", Payload::Snapshot))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KmsWrongContext { .. }), "{err}");
    let err = k
        .decrypt_data_key(&slot, &KeyContext::new("a", Payload::Backup))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KmsWrongContext { .. }), "{err}");
    assert!(err.to_string().contains("encryption context"));

    // The same through an envelope: a slot moved from another dataset's stream.
    let p = Provider::Aws(k);
    let a = encrypt(
        &p,
        &EnvelopeParams::new(Payload::Snapshot, "a").with_chunk_log2(16),
        b"a",
    )
    .await;
    let b = encrypt(
        &p,
        &EnvelopeParams::new(Payload::Snapshot, "b").with_chunk_log2(16),
        b"b",
    )
    .await;
    let (mut ha, na) = Header::from_bytes(&a).unwrap();
    ha.slots = Header::from_bytes(&b).unwrap().0.slots;
    let mut swapped = ha.to_bytes();
    swapped.extend_from_slice(&a[na..]);
    let err = decrypt(&p, &swapped).await.unwrap_err();
    assert!(matches!(err, Error::KmsWrongContext { .. }), "{err}");
}

#[tokio::test]
async fn rewrap_kms_to_kms_and_local_to_kms() {
    let admin = kms(None, AuditLog::disabled()).await;
    let key_a = new_key(&admin).await;
    let key_b = new_key(&admin).await;
    let pa = Provider::Aws(kms(Some(&key_a), AuditLog::disabled()).await);
    let pb = Provider::Aws(kms(Some(&key_b), AuditLog::disabled()).await);
    let params = EnvelopeParams::new(Payload::Backup, "cache").with_chunk_log2(16);
    let pt = pattern(150_000);
    let stream = encrypt(&pa, &params, &pt).await;

    // KMS key A -> key B by ReEncrypt; body untouched.
    let mut out = Vec::new();
    let h = rewrap_stream(&mut &stream[..], &mut out, &pa, &pb)
        .await
        .unwrap();
    assert_eq!(h.slots.len(), 1);
    assert_eq!(h.slots[0].key_id, key_b);
    let (_, n_old) = Header::from_bytes(&stream).unwrap();
    let (_, n_new) = Header::from_bytes(&out).unwrap();
    assert_eq!(stream[n_old..], out[n_new..]);
    // Disabling A no longer matters for the copy.
    admin
        .client()
        .disable_key()
        .key_id(&key_a)
        .send()
        .await
        .unwrap();
    assert_eq!(decrypt(&pb, &out).await.unwrap(), pt);
    assert!(matches!(
        decrypt(&pa, &stream).await.unwrap_err(),
        Error::KmsKeyDisabled { .. }
    ));

    // Local keyring -> KMS, and back, async variant.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.json");
    LocalKeyring::init(&path).unwrap();
    let pl = Provider::Local(LocalProvider::open(&path, AuditLog::disabled()).unwrap());
    let local_stream = encrypt(&pl, &params, &pt).await;
    let mut to_kms = Vec::new();
    rewrap_stream_async(&mut &local_stream[..], &mut to_kms, &pl, &pb)
        .await
        .unwrap();
    assert_eq!(decrypt(&pb, &to_kms).await.unwrap(), pt);
    let mut back = Vec::new();
    rewrap_stream_async(&mut &to_kms[..], &mut back, &pb, &pl)
        .await
        .unwrap();
    assert_eq!(decrypt(&pl, &back).await.unwrap(), pt);
}

#[tokio::test]
async fn from_config_builds_the_aws_provider() {
    set_dummy_creds();
    let admin = kms(None, AuditLog::disabled()).await;
    let arn = new_key(&admin).await;
    admin
        .client()
        .create_alias()
        .alias_name("alias/rampart-cfg-test")
        .target_key_id(&arn)
        .send()
        .await
        .ok();
    let cfg = ProviderConfig {
        provider: ProviderKind::Aws,
        key_id: Some("alias/rampart-cfg-test".into()),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint()),
        ..Default::default()
    };
    let p = Provider::from_config(&cfg).await.unwrap();
    let params = EnvelopeParams::new(Payload::FullSync, "x").with_chunk_log2(16);
    let stream = encrypt(&p, &params, b"sync").await;
    // The alias was resolved to the key ARN in the slot.
    assert!(
        Header::from_bytes(&stream).unwrap().0.slots[0]
            .key_id
            .contains(":key/")
    );
    assert_eq!(decrypt(&p, &stream).await.unwrap(), b"sync");
}

#[tokio::test]
async fn cli_rewraps_a_local_file_into_kms() {
    let ep = endpoint();
    let admin = kms(None, AuditLog::disabled()).await;
    let arn = new_key(&admin).await;
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::rampart_bin())
            .args(args)
            .current_dir(p)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    std::fs::write(p.join("dump.rdb"), pattern(300_000)).unwrap();
    assert!(run(&["keyring", "init", "--file", "k.json"]).0);
    assert!(
        run(&[
            "snapshot",
            "encrypt",
            "dump.rdb",
            "-o",
            "a.enc",
            "--key-file",
            "k.json"
        ])
        .0
    );
    let kms_args = ["--kms-endpoint", ep.as_str(), "--kms-region", "us-east-1"];
    let mut args = vec![
        "snapshot",
        "rewrap",
        "a.enc",
        "--key-file",
        "k.json",
        "--to-kms-key-id",
        &arn,
    ];
    args.extend(kms_args);
    let (ok, err) = run(&args);
    assert!(ok, "{err}");
    let mut args = vec!["snapshot", "decrypt", "a.enc", "-o", "out.rdb", "--kms"];
    args.extend(kms_args);
    let (ok, err) = run(&args);
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(p.join("out.rdb")).unwrap(), pattern(300_000));

    admin
        .client()
        .disable_key()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    let mut args = vec!["snapshot", "decrypt", "a.enc", "-o", "out2.rdb", "--kms"];
    args.extend(kms_args);
    let (ok, err) = run(&args);
    assert!(!ok);
    assert!(err.contains(&format!("KMS key {arn} is disabled")), "{err}");
    assert!(!p.join("out2.rdb").exists());
}

#[tokio::test]
async fn access_denied_is_its_own_error() {
    let admin = kms(None, AuditLog::disabled()).await;
    let key_a = new_key(&admin).await;
    let key_b = new_key(&admin).await;
    let k = kms(Some(&key_a), AuditLog::disabled()).await;
    let ctx = KeyContext::new("d", Payload::Snapshot);
    let (_, mut slot) = k.generate_data_key(&ctx).await.unwrap();
    // A slot naming key B over a blob of key A: KMS refuses the caller
    // access to decrypt it under B (moto answers AccessDeniedException).
    slot.key_id = key_b.clone();
    let err = k.decrypt_data_key(&slot, &ctx).await.unwrap_err();
    assert!(
        matches!(&err, Error::KmsAccessDenied { key_id, operation: "Decrypt", .. } if *key_id == key_b),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with(&format!("access denied using KMS key {key_b}"))
    );
}

#[tokio::test]
async fn aws_endpoint_url_kms_is_honoured() {
    let ep = endpoint();
    let admin = kms(None, AuditLog::disabled()).await;
    let arn = new_key(&admin).await;
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("in"), b"plain").unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(common::rampart_bin())
            .args(args)
            .current_dir(d.path())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL_KMS", &ep)
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap()
    };
    let out = run(&[
        "snapshot",
        "encrypt",
        "in",
        "-o",
        "in.enc",
        "--kms-key-id",
        &arn,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["snapshot", "decrypt", "in.enc", "-o", "out", "--kms"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(d.path().join("out")).unwrap(), b"plain");
}
