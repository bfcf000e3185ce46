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

/// A tiny KMS stand-in: throttles the first `throttle` requests, then
/// answers GenerateDataKey. Returns its port and a request counter.
async fn throttling_server(
    throttle: usize,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use base64::Engine as _;
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let c = c.clone();
            tokio::spawn(async move {
                loop {
                    // Read one request: headers, then content-length bytes.
                    let mut req = Vec::new();
                    let mut buf = [0u8; 4096];
                    let body_start = loop {
                        let n = match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        req.extend_from_slice(&buf[..n]);
                        if let Some(p) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&req[..body_start]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    while req.len() < body_start + len {
                        let n = sock.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        req.extend_from_slice(&buf[..n]);
                    }
                    let i = c.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = if i < throttle {
                        (
                            "400 Bad Request",
                            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#
                                .to_string(),
                        )
                    } else {
                        let b64 = base64::engine::general_purpose::STANDARD;
                        (
                            "200 OK",
                            format!(
                                r#"{{"CiphertextBlob":"{}","Plaintext":"{}","KeyId":"arn:aws:kms:us-east-1:1:key/k"}}"#,
                                b64.encode([1u8; 64]),
                                b64.encode([2u8; 32])
                            ),
                        )
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, count)
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let (port, count) = throttling_server(2).await;
    let kms = AwsKms::connect(
        &cfg(format!("http://127.0.0.1:{port}")),
        AuditLog::disabled(),
    )
    .await
    .unwrap();
    let (_key, slot) = kms.generate_data_key(&ctx()).await.unwrap();
    assert_eq!(slot.key_id, "arn:aws:kms:us-east-1:1:key/k");
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[tokio::test]
async fn persistent_throttling_gives_up_after_max_attempts() {
    let (port, count) = throttling_server(usize::MAX).await;
    let kms = AwsKms::connect(
        &cfg(format!("http://127.0.0.1:{port}")),
        AuditLog::disabled(),
    )
    .await
    .unwrap();
    let err = kms.generate_data_key(&ctx()).await.unwrap_err();
    assert!(matches!(err, Error::KmsUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("ThrottlingException"), "{err}");
    assert_eq!(
        count.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "max_attempts is 3"
    );
}
