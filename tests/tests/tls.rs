//! TLS, end to end: `rampart-server` with a `tls-port`, real `redis-cli`
//! and `redis-benchmark --tls`, a rustls client of our own (to present or
//! withhold a client certificate and to see which certificate the server
//! serves), and replication over TLS with Debian's `redis-server` 7.0 on
//! either side. Certificates come from `rampart_tests::pki`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rampart_tests::pki::Pki;
use rampart_tests::{
    free_port, require_tool, run_with_timeout, wait_for, Rampart, RedisOracle, ServerProcess,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Rampart with a plain port (for checks and for the harness's PING) and
/// a TLS port.
fn start_tls(pki: &Pki, extra: &[&str]) -> Result<(Rampart, u16)> {
    let tls_port = free_port()?;
    let mut args = pki.server_args(tls_port);
    args.extend(["--save".to_string(), String::new()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    Ok((Rampart::start(&a)?, tls_port))
}

/// A client TLS session (rustls, blocking) to 127.0.0.1:`port`, trusting
/// `ca`, presenting `client` (cert, key) when given.
struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl TlsClient {
    fn connect(pki: &Pki, port: u16, ca: &str, client: Option<(&str, &str)>) -> Result<TlsClient> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(pki.path(ca))? {
            roots.add(c?)?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let config = match client {
            Some((cert, key)) => {
                let certs = CertificateDer::pem_file_iter(pki.path(cert))?
                    .collect::<Result<Vec<_>, _>>()?;
                let key = PrivateKeyDer::from_pem_file(pki.path(key))?;
                builder.with_client_auth_cert(certs, key)?
            }
            None => builder.with_no_client_auth(),
        };
        let conn = rustls::ClientConnection::new(
            Arc::new(config),
            ServerName::try_from("localhost".to_string())?,
        )?;
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsClient { stream })
    }

    /// The certificate the server presented.
    fn served(&self) -> Vec<u8> {
        self.stream
            .conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    /// Sends one command and reads one reply line (enough for PING, SET,
    /// GET of short values).
    fn cmd(&mut self, args: &[&str]) -> Result<String> {
        self.stream
            .write_all(&rampart_tests::encode_command(args))?;
        self.stream.flush()?;
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match self.stream.read(&mut byte)? {
                0 => bail!(
                    "connection closed after {:?}",
                    String::from_utf8_lossy(&reply)
                ),
                _ => reply.push(byte[0]),
            }
            if reply.ends_with(b"\r\n") {
                if reply[0] == b'$'
                    && reply != b"$-1\r\n"
                    && reply.iter().filter(|&&b| b == b'\n').count() < 2
                {
                    continue;
                }
                return Ok(String::from_utf8_lossy(&reply).into_owned());
            }
        }
    }
}

impl TlsClient {
    /// Reads one bulk reply of any size: `$<len>\r\n<bytes>\r\n`.
    fn read_bulk(&mut self) -> Result<Vec<u8>> {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n") {
            if self.stream.read(&mut byte)? == 0 {
                bail!("closed in a reply header");
            }
            head.push(byte[0]);
        }
        let len: usize = std::str::from_utf8(&head[1..head.len() - 2])?.parse()?;
        let mut body = vec![0u8; len + 2];
        self.stream.read_exact(&mut body)?;
        body.truncate(len);
        Ok(body)
    }
}

/// PING over a fresh TLS session: `Ok(true)` when it answered PONG,
/// `Ok(false)` when the server refused the session (handshake or first
/// read failed).
fn tls_ping(pki: &Pki, port: u16, ca: &str, client: Option<(&str, &str)>) -> Result<bool> {
    let mut c = match TlsClient::connect(pki, port, ca, client) {
        Ok(c) => c,
        Err(_) => return Ok(false),
    };
    Ok(matches!(c.cmd(&["PING"]), Ok(r) if r == "+PONG\r\n"))
}

fn redis_cli(pki: &Pki, port: u16, client: Option<(&str, &str)>, args: &[&str]) -> Result<String> {
    let cli = require_tool("redis-cli")?;
    let mut cmd = Command::new(cli);
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--tls",
        "--cacert",
    ])
    .arg(pki.path("ca.crt"));
    if let Some((cert, key)) = client {
        cmd.arg("--cert")
            .arg(pki.path(cert))
            .arg("--key")
            .arg(pki.path(key));
    }
    cmd.args(args);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(30))?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn plain_cmd(s: &ServerProcess, args: &[&str]) -> Result<String> {
    let mut c = s.conn()?;
    Ok(String::from_utf8_lossy(&c.cmd(args)?).into_owned())
}

const CLIENT: Option<(&str, &str)> = Some(("client.crt", "client.key"));
const STRANGER: Option<(&str, &str)> = Some(("stranger.crt", "stranger.key"));

#[test]
fn redis_cli_over_tls_and_tcp_port_kept() -> Result<()> {
    let pki = Pki::new()?;
    let (server, tls_port) = start_tls(&pki, &[])?;
    assert_eq!(redis_cli(&pki, tls_port, CLIENT, &["PING"])?.trim(), "PONG");
    assert_eq!(
        redis_cli(&pki, tls_port, CLIENT, &["SET", "k", "over tls"])?.trim(),
        "OK"
    );
    assert_eq!(
        redis_cli(&pki, tls_port, CLIENT, &["GET", "k"])?.trim(),
        "over tls"
    );
    // The same data on the plain port, which stays open beside the TLS one.
    assert_eq!(plain_cmd(&server, &["GET", "k"])?, "$8\r\nover tls\r\n");
    // As Redis: CONFIG GET reports the directives, INFO the plain port.
    let cfg = redis_cli(&pki, tls_port, CLIENT, &["CONFIG", "GET", "tls-port"])?;
    assert!(cfg.contains(&tls_port.to_string()), "{cfg}");
    let info = plain_cmd(&server, &["INFO", "server"])?;
    assert!(
        info.contains(&format!("tcp_port:{}\r\n", server.port())),
        "{info}"
    );
    Ok(())
}

#[test]
fn tls_auth_clients_modes() -> Result<()> {
    let pki = Pki::new()?;
    for (mode, without_cert) in [("yes", false), ("optional", true), ("no", true)] {
        let (server, port) = start_tls(&pki, &["--tls-auth-clients", mode])?;
        assert!(
            tls_ping(&pki, port, "ca.crt", CLIENT)?,
            "{mode}: a client with a certificate was refused\n{}",
            server.log()
        );
        assert_eq!(
            tls_ping(&pki, port, "ca.crt", None)?,
            without_cert,
            "tls-auth-clients {mode}: a client without a certificate\n{}",
            server.log()
        );
        // A certificate from an unrelated CA is refused whenever it is
        // checked (with `no` the server asks for none and ignores it).
        if mode != "no" {
            assert!(
                !tls_ping(&pki, port, "ca.crt", STRANGER)?,
                "{mode}: a certificate from the wrong CA was accepted"
            );
        }
        // redis-cli without --cert, as the mode allows.
        let out = redis_cli(&pki, port, None, &["PING"])?;
        assert_eq!(out.trim() == "PONG", without_cert, "{mode}: {out}");
        // Refusals did not hurt the server.
        assert_eq!(plain_cmd(&server, &["PING"])?, "+PONG\r\n");
        if mode == "yes" {
            assert!(
                server.log().contains("Error accepting a client connection"),
                "{}",
                server.log()
            );
        }
    }
    Ok(())
}

#[test]
fn a_client_that_does_not_trust_the_server_ca_fails() -> Result<()> {
    let pki = Pki::new()?;
    let (_server, port) = start_tls(&pki, &[])?;
    assert!(!tls_ping(&pki, port, "other-ca.crt", CLIENT)?);
    assert!(tls_ping(&pki, port, "ca.crt", CLIENT)?);
    Ok(())
}

#[test]
fn plaintext_on_the_tls_port_and_tls_on_the_plain_port() -> Result<()> {
    let pki = Pki::new()?;
    let (server, port) = start_tls(&pki, &[])?;
    // Plain RESP to the TLS port: the server closes the connection.
    let mut plain = rampart_tests::RawConn::connect(port)?;
    plain.send(&["PING"])?;
    let (got, closed) = plain.read_until_close(Duration::from_secs(10))?;
    assert!(closed, "the TLS port kept a plaintext client open");
    assert!(!got.starts_with(b"+PONG"), "{got:?}");
    // A TLS client on the plain port gets no session (Redis reads the
    // ClientHello as an inline command and waits for its end).
    let tcp_port = server.port();
    let res = std::thread::spawn(move || {
        let pki = Pki::new()?;
        let mut c = TlsClient::connect(&pki, tcp_port, "ca.crt", CLIENT)?;
        c.cmd(&["PING"])
    });
    std::thread::sleep(Duration::from_millis(300));
    // Both ports keep serving.
    assert!(tls_ping(&pki, port, "ca.crt", CLIENT)?);
    assert_eq!(plain_cmd(&server, &["PING"])?, "+PONG\r\n");
    drop(server);
    let r = res
        .join()
        .map_err(|_| anyhow::anyhow!("TLS-on-plain thread panicked"))?;
    assert!(r.is_err(), "a TLS session on the plain port: {r:?}");
    Ok(())
}

fn open_fds(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

#[test]
fn a_handshake_that_never_completes_is_closed() -> Result<()> {
    let pki = Pki::new()?;
    let (server, port) = start_tls(&pki, &[])?;
    // Let the harness's own first connection go before counting.
    std::thread::sleep(Duration::from_millis(300));
    let before = open_fds(server.pid())?;
    let silent: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(("127.0.0.1", port)))
        .collect::<std::io::Result<_>>()?;
    wait_for(
        "the server to hold the silent sockets",
        Duration::from_secs(5),
        || Ok(open_fds(server.pid())? >= before + 4),
    )?;
    // Redis-like default of 10 seconds: each is closed by then.
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut b = [0u8; 16];
        match s.read(&mut b) {
            Ok(0) => {}
            Ok(n) => bail!("the server sent {n} bytes to a silent client"),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => bail!("the silent connection was not closed: {e}"),
        }
    }
    wait_for("descriptors to be released", Duration::from_secs(5), || {
        Ok(open_fds(server.pid())? <= before)
    })?;
    assert!(
        server.log().contains("TLS handshake timed out"),
        "{}",
        server.log()
    );
    assert!(tls_ping(&pki, port, "ca.crt", CLIENT)?);
    Ok(())
}

#[test]
fn redis_benchmark_over_tls() -> Result<()> {
    let pki = Pki::new()?;
    let (_server, port) = start_tls(&pki, &[])?;
    let bench = require_tool("redis-benchmark")?;
    let mut cmd = Command::new(bench);
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--tls",
        "--cacert",
    ])
    .arg(pki.path("ca.crt"))
    .arg("--cert")
    .arg(pki.path("client.crt"))
    .arg("--key")
    .arg(pki.path("client.key"))
    .args(["-n", "2000", "-q", "-t", "set,get", "-P", "4"]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120))?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("SET:") && text.contains("GET:"), "{text}");
    assert!(!text.contains("rror"), "{text}");
    Ok(())
}

#[test]
fn certificate_rotation_with_config_set() -> Result<()> {
    let pki = Pki::new()?;
    let (server, port) = start_tls(&pki, &[])?;
    let mut old = TlsClient::connect(&pki, port, "ca.crt", CLIENT)?;
    assert_eq!(old.served(), pki.server_der());
    assert_eq!(old.cmd(&["SET", "a", "1"])?, "+OK\r\n");

    let reply = plain_cmd(
        &server,
        &[
            "CONFIG",
            "SET",
            "tls-cert-file",
            &pki.path("server2.crt"),
            "tls-key-file",
            &pki.path("server2.key"),
        ],
    )?;
    assert_eq!(reply, "+OK\r\n");
    // The connection made before keeps working; a new one sees the new cert.
    assert_eq!(old.cmd(&["GET", "a"])?, "$1\r\n1\r\n");
    let new = TlsClient::connect(&pki, port, "ca.crt", CLIENT)?;
    assert_eq!(new.served(), pki.server2_der());

    // A file that is not there: CONFIG SET fails as in Redis, the value
    // and the context in use stay.
    let reply = plain_cmd(
        &server,
        &["CONFIG", "SET", "tls-cert-file", "/nonexistent/x.crt"],
    )?;
    assert_eq!(
        reply,
        "-ERR CONFIG SET failed (possibly related to argument 'tls-cert-file') - Unable to update TLS configuration. Check server logs.\r\n"
    );
    let got = plain_cmd(&server, &["CONFIG", "GET", "tls-cert-file"])?;
    assert!(got.contains("server2.crt"), "{got}");
    let mut after = TlsClient::connect(&pki, port, "ca.crt", CLIENT)?;
    assert_eq!(after.served(), pki.server2_der());
    assert_eq!(after.cmd(&["PING"])?, "+PONG\r\n");
    assert_eq!(old.cmd(&["PING"])?, "+PONG\r\n");
    assert!(
        server.log().contains("/nonexistent/x.crt"),
        "{}",
        server.log()
    );

    // A new CA file takes effect too: trusting only the other CA, the
    // server now refuses our client.
    let reply = plain_cmd(
        &server,
        &[
            "CONFIG",
            "SET",
            "tls-ca-cert-file",
            &pki.path("other-ca.crt"),
        ],
    )?;
    assert_eq!(reply, "+OK\r\n");
    assert!(!tls_ping(&pki, port, "ca.crt", CLIENT)?);
    assert!(tls_ping(&pki, port, "ca.crt", STRANGER)?);
    Ok(())
}

#[test]
fn large_replies_under_output_limits_arrive_whole_and_a_stalled_client_is_closed() -> Result<()> {
    let pki = Pki::new()?;
    // A normal-class limit makes the loop write what the socket takes now
    // and keep the rest (write_now / push_held on the TLS session).
    let (server, port) = start_tls(&pki, &["--client-output-buffer-limit", "normal 8mb 4mb 1"])?;
    let big: String = (0..1_000_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut c = TlsClient::connect(&pki, port, "ca.crt", CLIENT)?;
    assert_eq!(c.cmd(&["SET", "big", &big])?, "+OK\r\n");
    // A pipeline of large replies, read slowly: every byte arrives.
    let mut pipeline = Vec::new();
    for _ in 0..3 {
        pipeline.extend(rampart_tests::encode_command(&["GET", "big"]));
    }
    c.stream.write_all(&pipeline)?;
    c.stream.flush()?;
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..3 {
        assert!(c.read_bulk()? == big.as_bytes(), "a reply arrived damaged");
    }
    assert_eq!(c.cmd(&["PING"])?, "+PONG\r\n");
    // A client that asks for far more than the hard limit and never
    // reads is closed, as over TCP, and the server goes on.
    let mut stalled = TlsClient::connect(&pki, port, "ca.crt", CLIENT)?;
    let mut flood = Vec::new();
    for _ in 0..40 {
        flood.extend(rampart_tests::encode_command(&["GET", "big"]));
    }
    stalled.stream.write_all(&flood)?;
    stalled.stream.flush()?;
    wait_for("the output-limit close", Duration::from_secs(30), || {
        Ok(server.log().contains("overcoming of output buffer limits"))
    })
    .with_context(|| server.log())?;
    assert!(tls_ping(&pki, port, "ca.crt", CLIENT)?);
    Ok(())
}

#[test]
fn ca_cert_dir_instead_of_a_file() -> Result<()> {
    let pki = Pki::new()?;
    let cas = pki.dir().join("cas");
    std::fs::create_dir(&cas)?;
    std::fs::copy(pki.path("ca.crt"), cas.join("5a2b2c01.0"))?;
    let cas = cas.to_string_lossy().into_owned();
    let (_server, port) = start_tls(&pki, &["--tls-ca-cert-file", "", "--tls-ca-cert-dir", &cas])?;
    assert!(tls_ping(&pki, port, "ca.crt", CLIENT)?);
    assert!(!tls_ping(&pki, port, "ca.crt", STRANGER)?);
    Ok(())
}

fn refused_start(args: &[String]) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, out) = Rampart::run_expecting_exit(dir.path(), &a, Duration::from_secs(30))?;
    assert!(!status.success(), "started anyway: {out}");
    Ok(out)
}

#[test]
fn bad_certificates_refuse_startup_with_one_clear_line() -> Result<()> {
    let pki = Pki::new()?;
    let port = free_port()?;
    let mut args = pki.server_args(port);
    args[3] = "/nonexistent/server.crt".into();
    let out = refused_start(&args)?;
    assert!(
        out.contains("Failed to configure TLS: tls-cert-file /nonexistent/server.crt: No such file or directory"),
        "{out}"
    );
    let mut args = pki.server_args(port);
    args[5] = pki.path("server-enc.key");
    let out = refused_start(&args)?;
    assert!(
        out.contains("the key is encrypted and no tls-key-file-pass is set"),
        "{out}"
    );
    args.extend(["--tls-key-file-pass".into(), "wrong".into()]);
    let out = refused_start(&args)?;
    assert!(out.contains("wrong pass phrase"), "{out}");
    let mut args = pki.server_args(port);
    args.extend(["--tls-ciphersuites".into(), "TLS_NOT_A_SUITE".into()]);
    let out = refused_start(&args)?;
    assert!(out.contains("tls-ciphersuites"), "{out}");
    Ok(())
}

#[test]
fn encrypted_key_protocols_and_ciphers() -> Result<()> {
    let pki = Pki::new()?;
    let key = pki.path("server-enc.key");
    let (server, port) = start_tls(
        &pki,
        &[
            "--tls-key-file",
            &key,
            "--tls-key-file-pass",
            rampart_tests::pki::KEY_PASS,
            "--tls-protocols",
            "TLSv1.2",
            "--tls-ciphers",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "--tls-prefer-server-ciphers",
            "yes",
        ],
    )?;
    let out = redis_cli(&pki, port, CLIENT, &["PING"])?;
    assert_eq!(out.trim(), "PONG", "{}", server.log());
    let c = TlsClient::connect(&pki, port, "ca.crt", CLIENT)?;
    assert_eq!(
        c.stream.conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        c.stream.conn.negotiated_cipher_suite().map(|s| s.suite()),
        Some(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
    );
    Ok(())
}

// ------------------------------------------------------------ replication

fn replica_tls_args(pki: &Pki) -> Vec<String> {
    vec![
        "--tls-replication".into(),
        "yes".into(),
        "--tls-cert-file".into(),
        pki.path("server.crt"),
        "--tls-key-file".into(),
        pki.path("server.key"),
        "--tls-ca-cert-file".into(),
        pki.path("ca.crt"),
    ]
}

fn get(s: &ServerProcess, key: &str) -> Result<String> {
    plain_cmd(s, &["GET", key])
}

/// Writes before the replica links and after, then waits for both.
fn check_replication(primary: &ServerProcess, replica: &ServerProcess) -> Result<()> {
    wait_for("the link to come up", Duration::from_secs(60), || {
        Ok(plain_cmd(replica, &["INFO", "replication"])?.contains("master_link_status:up"))
    })
    .with_context(|| {
        format!(
            "replica log:\n{}\nprimary log:\n{}",
            replica.log(),
            primary.log()
        )
    })?;
    for i in 0..50 {
        plain_cmd(primary, &["SET", &format!("after:{i}"), &format!("v{i}")])?;
    }
    plain_cmd(primary, &["RPUSH", "list", "a", "b", "c"])?;
    // The RPUSH is the last write: once it is there, so is the rest.
    wait_for(
        "writes after the full sync",
        Duration::from_secs(30),
        || {
            Ok(plain_cmd(replica, &["LRANGE", "list", "0", "-1"])?
                == "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n")
        },
    )?;
    assert_eq!(get(replica, "after:49")?, "$3\r\nv49\r\n");
    assert_eq!(get(replica, "before")?, "$6\r\nsynced\r\n");
    Ok(())
}

#[test]
fn rampart_to_rampart_replication_over_tls() -> Result<()> {
    let pki = Pki::new()?;
    let keys = tempfile::tempdir()?;
    let keyring = rampart_tests::shared_keyring(keys.path());
    let (primary, tls_port) = start_tls(
        &pki,
        &[
            "--kms-key-file",
            &keyring,
            "--repl-diskless-sync-delay",
            "0",
        ],
    )?;
    plain_cmd(&primary, &["SET", "before", "synced"])?;
    let mut args = replica_tls_args(&pki);
    let replica_tls = free_port()?.to_string();
    args.extend(
        [
            "--tls-port",
            &replica_tls,
            "--kms-key-file",
            &keyring,
            "--save",
            "",
            "--replicaof",
            &format!("127.0.0.1 {tls_port}"),
        ]
        .map(String::from),
    );
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let replica = Rampart::start(&a)?;
    check_replication(&primary, &replica)?;
    // The replica came in on the TLS port and announced its TLS port.
    let info = plain_cmd(&primary, &["INFO", "replication"])?;
    assert!(info.contains(&format!("port={replica_tls}")), "{info}");
    let clients = plain_cmd(&primary, &["CLIENT", "LIST"])?;
    assert!(
        clients.contains(&format!("laddr=127.0.0.1:{tls_port}")) && clients.contains("flags=S"),
        "{clients}"
    );
    Ok(())
}

#[test]
fn redis_replica_of_a_rampart_tls_primary() -> Result<()> {
    let pki = Pki::new()?;
    let (primary, tls_port) = start_tls(
        &pki,
        &[
            "--repl-allow-plaintext-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ],
    )?;
    plain_cmd(&primary, &["SET", "before", "synced"])?;
    let mut args = replica_tls_args(&pki);
    args.extend([
        "--replicaof".into(),
        "127.0.0.1".into(),
        tls_port.to_string(),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let replica = RedisOracle::start_with(&a)?;
    check_replication(&primary, &replica)?;
    let clients = plain_cmd(&primary, &["CLIENT", "LIST"])?;
    assert!(
        clients.contains(&format!("laddr=127.0.0.1:{tls_port}")),
        "{clients}"
    );
    Ok(())
}

#[test]
fn rampart_replica_of_a_redis_tls_primary() -> Result<()> {
    let pki = Pki::new()?;
    let tls_port = free_port()?;
    let args = pki.server_args(tls_port);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let primary = RedisOracle::start_with(&a)?;
    plain_cmd(&primary, &["SET", "before", "synced"])?;
    let mut args = replica_tls_args(&pki);
    args.extend(
        [
            "--save",
            "",
            "--replicaof",
            &format!("127.0.0.1 {tls_port}"),
        ]
        .map(String::from),
    );
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let replica = Rampart::start(&a)?;
    check_replication(&primary, &replica)?;
    // Redis saw the replica on its TLS port.
    let clients = plain_cmd(&primary, &["CLIENT", "LIST"])?;
    assert!(
        clients.contains(&format!("laddr=127.0.0.1:{tls_port}")) && clients.contains("flags=S"),
        "{clients}"
    );
    Ok(())
}
