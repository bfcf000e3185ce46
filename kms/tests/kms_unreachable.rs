//! A KMS endpoint that is down or hangs: bounded retries and timeouts, a
//! clear error, no panic. Needs no KMS server: the endpoints are local
//! sockets that refuse or never answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use rampart_kms::*;

fn cfg(endpoint: String) -> AwsKmsConfig {
    AwsKmsConfig {
        key_id: Some("alias/x".into()),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint),
        max_attempts: 3,
        connect_timeout: Duration::from_millis(500),
        attempt_timeout: Duration::from_millis(700),
        operation_timeout: Duration::from_secs(5),
        static_credentials: Some(StaticCredentials::new("test", "test")),
    }
}

fn ctx() -> KeyContext {
    KeyContext::new("d", Payload::Snapshot)
}

#[tokio::test]
async fn endpoint_down_fails_fast_with_unavailable() {
    // Bind then drop: the port refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kms = AwsKms::connect(
        &cfg(format!("http://127.0.0.1:{port}")),
        AuditLog::disabled(),
    )
    .await
    .unwrap();
    let t = Instant::now();
    let err = kms.generate_data_key(&ctx()).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::KmsUnavailable {
                operation: "GenerateDataKey",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("cannot reach"), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "retries not bounded: {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn endpoint_that_never_answers_times_out() {
    // Accepts connections, reads, never replies.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (sock, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(sock);
        }
    });
    let kms = AwsKms::connect(
        &cfg(format!("http://127.0.0.1:{port}")),
        AuditLog::disabled(),
    )
    .await
    .unwrap();
    let slot = KeySlot::new("aws-kms", "arn:aws:kms:us-east-1:1:key/x", vec![1; 100]);
    let t = Instant::now();
    let err = kms.decrypt_data_key(&slot, &ctx()).await.unwrap_err();
    let took = t.elapsed();
    assert!(
        matches!(
            err,
            Error::KmsUnavailable {
                operation: "Decrypt",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(
        took < Duration::from_secs(6),
        "operation timeout not honoured: {took:?}"
    );
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (2..=3).contains(&n),
        "expected bounded retries, saw {n} attempts"
    );
    server.abort();
}

#[tokio::test]
async fn endpoint_returning_garbage_is_a_clear_error() {
    // Answers every request with HTTP 500 and an HTML body, like a broken proxy.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = sock.read(&mut buf).await;
                let body = "<html>oops</html>";
                let resp = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    let kms = AwsKms::connect(
        &cfg(format!("http://127.0.0.1:{port}")),
        AuditLog::disabled(),
    )
    .await
    .unwrap();
    let err = kms.generate_data_key(&ctx()).await.unwrap_err();
    assert!(
        matches!(err, Error::Kms { .. } | Error::KmsUnavailable { .. }),
        "{err}"
    );
    server.abort();
}
