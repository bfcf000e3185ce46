//! TLS for client connections, replication links and the cluster bus
//! (`tls-cluster`, MIGRATE included), on rustls with the ring provider.
//!
//! One abstraction, [`Tls`]: the server's current TLS context, built from
//! the `tls-*` directives as Redis 7.0 builds its OpenSSL contexts, and
//! swapped whole when CONFIG SET changes one of them (a context that fails
//! to build leaves the old one in place). It hands out a
//! [`tokio_rustls::TlsAcceptor`] for the `tls-port` listener (another for
//! the cluster bus, which always requires a client certificate) and a
//! [`tokio_rustls::TlsConnector`] for a replica's link to a TLS primary and
//! for outgoing bus links.
//! [`accept_client`] runs a handshake (bounded in time) and hands the
//! encrypted stream to the same request loop plain connections use.

use std::future::Future;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::{Mutex, RwLock};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring as provider, CryptoProvider};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::Config;
use crate::state::Server;

/// How long a client may take to finish its handshake before the
/// connection is dropped: a peer that opens a socket and says nothing
/// would otherwise hold a task and a descriptor for ever.
/// `RAMPART_TLS_HANDSHAKE_TIMEOUT_MS` shortens it for the tests.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's TLS contexts, replaced together on reload.
///
/// # Example
///
/// ```
/// let tls = rampart_server::tls::Tls::default();
/// // No tls-port, tls-replication or tls-cluster: nothing to build.
/// assert!(tls.acceptor().is_none());
/// ```
#[derive(Default)]
pub struct Tls {
    current: RwLock<Option<Contexts>>,
}

#[derive(Clone)]
struct Contexts {
    server: TlsAcceptor,
    /// The cluster bus's: a client certificate is always required.
    cluster: TlsAcceptor,
    client: TlsConnector,
}

impl Tls {
    /// Whether the configuration asks for TLS at all, as Redis decides it:
    /// a `tls-port`, `tls-replication yes` or `tls-cluster yes`.
    pub fn wanted(config: &Config) -> bool {
        config.int("tls-port") != 0 || config.flag("tls-replication") || config.flag("tls-cluster")
    }

    /// Builds the contexts from the `tls-*` directives and makes them
    /// current. On error (a missing or unreadable file, a bad cipher
    /// list) nothing changes and the error names the directive and why.
    pub fn configure(&self, config: &Config) -> Result<(), String> {
        let built = build(config)?;
        *self.current.write() = Some(built);
        Ok(())
    }

    /// The acceptor for new client connections, when TLS is configured.
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.current.read().as_ref().map(|c| c.server.clone())
    }

    /// The connector for a replica's link to its primary, and for the
    /// cluster bus's outgoing links with `tls-cluster yes`.
    pub fn connector(&self) -> Option<TlsConnector> {
        self.current.read().as_ref().map(|c| c.client.clone())
    }

    /// The acceptor for the cluster bus with `tls-cluster yes`: the
    /// server's certificate, and a client certificate signed by the CA
    /// always required of the peer (Redis's `TLS_CLIENT_AUTH_YES` on the
    /// bus), whatever `tls-auth-clients` says.
    ///
    /// # Example
    ///
    /// ```
    /// let tls = rampart_server::tls::Tls::default();
    /// // Nothing configured: a bus listener has no TLS to offer.
    /// assert!(tls.cluster_acceptor().is_none());
    /// ```
    pub fn cluster_acceptor(&self) -> Option<TlsAcceptor> {
        self.current.read().as_ref().map(|c| c.cluster.clone())
    }

    /// The client side's rustls configuration, for the blocking socket
    /// MIGRATE opens (`tls-cluster yes`).
    ///
    /// # Example
    ///
    /// ```
    /// let tls = rampart_server::tls::Tls::default();
    /// assert!(tls.client_config().is_none());
    /// ```
    pub fn client_config(&self) -> Option<Arc<ClientConfig>> {
        self.current
            .read()
            .as_ref()
            .map(|c| c.client.config().clone())
    }
}

/// CONFIG SET of any `tls-*` directive rebuilds the whole context, as
/// Redis's `applyTlsCfg` does, when TLS is in use. Called after the new
/// values are stored; on failure the caller restores the old ones.
pub fn config_changed(srv: &Server, names: &[String]) -> Result<(), String> {
    let touched = names
        .iter()
        .any(|n| n.to_ascii_lowercase().starts_with("tls-"));
    if !touched || !Tls::wanted(&srv.config) {
        return Ok(());
    }
    match srv.tls.configure(&srv.config) {
        Ok(()) => {
            tracing::info!("TLS configuration reloaded");
            Ok(())
        }
        Err(e) => {
            tracing::warn!("Failed to configure TLS: {e}");
            Err("Unable to update TLS configuration. Check server logs.".into())
        }
    }
}

fn ring() -> Arc<CryptoProvider> {
    Arc::new(provider::default_provider())
}

fn build(config: &Config) -> Result<Contexts, String> {
    let get = |n: &str| config.get(n).unwrap_or_default();
    let mut provider = (*ring()).clone();
    provider.cipher_suites = cipher_suites(&get("tls-ciphers"), &get("tls-ciphersuites"))?;
    let provider = Arc::new(provider);
    let versions = protocols(&get("tls-protocols"))?;
    let (ca_file, ca_dir) = (get("tls-ca-cert-file"), get("tls-ca-cert-dir"));
    if ca_file.is_empty() && ca_dir.is_empty() {
        return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified".into());
    }
    let roots = Arc::new(roots(&ca_file, &ca_dir)?);
    let (cert_file, key_file) = (get("tls-cert-file"), get("tls-key-file"));
    if cert_file.is_empty() || key_file.is_empty() {
        return Err("tls-cert-file and tls-key-file must be specified".into());
    }
    let certs = certificates(&cert_file, "tls-cert-file")?;
    let key = private_key(&key_file, "tls-key-file", &get("tls-key-file-pass"))?;
    if !get("tls-dh-params-file").is_empty() {
        tracing::info!(
            "tls-dh-params-file is ignored: rustls offers ECDHE key exchange only, which needs no DH parameters"
        );
    }

    // One server context per client-certificate policy: `tls-auth-clients`
    // for the tls-port, always "required" for the cluster bus, as Redis
    // accepts bus links with TLS_CLIENT_AUTH_YES whatever that directive says.
    let server_config = |auth: &str| -> Result<ServerConfig, String> {
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("tls-protocols: {e}"))?;
        let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
        let builder = match auth {
            "no" => builder.with_no_client_auth(),
            mode => {
                let clients = if mode == "optional" {
                    clients.allow_unauthenticated()
                } else {
                    clients
                };
                let verifier = clients
                    .build()
                    .map_err(|e| format!("tls-ca-cert-file/tls-ca-cert-dir: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut server = builder
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| format!("tls-cert-file {cert_file} with tls-key-file {key_file}: {e}"))?;
        server.ignore_client_order = config.flag("tls-prefer-server-ciphers");
        // rustls's cache evicts by size only; tls-session-cache-timeout has no
        // counterpart there.
        let size = config.int("tls-session-cache-size").max(0) as usize;
        server.session_storage = if config.flag("tls-session-caching") && size > 0 {
            rustls::server::ServerSessionMemoryCache::new(size)
        } else {
            Arc::new(rustls::server::NoServerSessionStorage {})
        };
        Ok(server)
    };
    let server = server_config(&get("tls-auth-clients"))?;
    let cluster = server_config("yes")?;

    // As Redis: the replica side presents tls-client-cert-file/key when
    // set, else the server's own certificate.
    let (ccert, ckey) = (get("tls-client-cert-file"), get("tls-client-key-file"));
    let (client_certs, client_key) = if !ccert.is_empty() && !ckey.is_empty() {
        (
            certificates(&ccert, "tls-client-cert-file")?,
            private_key(
                &ckey,
                "tls-client-key-file",
                &get("tls-client-key-file-pass"),
            )?,
        )
    } else {
        (certs, key)
    };
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| format!("tls-ca-cert-file/tls-ca-cert-dir: {e}"))?;
    let client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls-protocols: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(verifier)))
        .with_client_auth_cert(client_certs, client_key)
        .map_err(|e| format!("tls-client-cert-file/tls-client-key-file: {e}"))?;
    Ok(Contexts {
        server: TlsAcceptor::from(Arc::new(server)),
        cluster: TlsAcceptor::from(Arc::new(cluster)),
        client: TlsConnector::from(Arc::new(client)),
    })
}

/// `tls-protocols` ("TLSv1.2 TLSv1.3"; empty = both). rustls has no
/// TLSv1 or TLSv1.1: listed beside a newer one they are skipped with a
/// warning, alone they are refused.
fn protocols(value: &str) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, String> {
    if value.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut out = Vec::new();
    for word in value.split_whitespace() {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1.3" => out.push(&rustls::version::TLS13),
            "tlsv1.2" => out.push(&rustls::version::TLS12),
            "tlsv1" | "tlsv1.1" => {
                tracing::warn!("tls-protocols: {word} is not supported (rustls offers TLSv1.2 and TLSv1.3); skipped")
            }
            _ => {
                return Err(format!(
                    "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'. ('{word}')"
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(format!(
            "tls-protocols '{value}' leaves no protocol rustls supports (TLSv1.2, TLSv1.3)"
        ));
    }
    Ok(out)
}

/// OpenSSL's names for the suites rustls has.
const SUITES: &[(&str, &SupportedCipherSuite)] = &[
    (
        "TLS_AES_256_GCM_SHA384",
        &provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ),
    (
        "TLS_AES_128_GCM_SHA256",
        &provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        &provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        &provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        &provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        &provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        &provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        &provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        &provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// `tls-ciphers` (TLSv1.2, OpenSSL cipher list) and `tls-ciphersuites`
/// (TLSv1.3): the named suites rustls has, in the order given. As in
/// OpenSSL, names it does not know (and keywords like `HIGH` or `!aNULL`)
/// are passed over; a list naming no usable suite is an error. An empty
/// directive keeps rustls's defaults for its protocol version.
fn cipher_suites(tls12: &str, tls13: &str) -> Result<Vec<SupportedCipherSuite>, String> {
    let defaults = provider::default_provider().cipher_suites;
    let pick = |value: &str, directive: &str, v13: bool| -> Result<Vec<_>, String> {
        let of_version =
            |s: &SupportedCipherSuite| matches!(s, SupportedCipherSuite::Tls13(_)) == v13;
        if value.trim().is_empty() {
            return Ok(defaults.iter().filter(|s| of_version(s)).copied().collect());
        }
        let mut out: Vec<SupportedCipherSuite> = Vec::new();
        for name in value.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
            match SUITES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
                Some((_, s)) if of_version(s) && !out.iter().any(|o| o.suite() == s.suite()) => {
                    out.push(**s)
                }
                Some(_) => {}
                None => tracing::debug!("{directive}: '{name}' is not a suite rustls has; skipped"),
            }
        }
        if out.is_empty() {
            return Err(format!(
                "{directive} '{value}' names no cipher suite rustls supports (known: {})",
                SUITES
                    .iter()
                    .filter(|(_, s)| of_version(s))
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(out)
    };
    let mut suites = pick(tls13, "tls-ciphersuites", true)?;
    suites.extend(pick(tls12, "tls-ciphers", false)?);
    Ok(suites)
}

fn read(path: &str, directive: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{directive} {path}: {e}"))
}

fn certificates(path: &str, directive: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path, directive)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{directive} {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{directive} {path}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// A PEM private key (PKCS#8, PKCS#1 or SEC1); with a pass phrase, an
/// encrypted PKCS#8 key. OpenSSL's older encrypted PEM (a `Proc-Type:
/// 4,ENCRYPTED` header) is refused with a pointer to converting it.
fn private_key(path: &str, directive: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = read(path, directive)?;
    let text = String::from_utf8_lossy(&pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        if pass.is_empty() {
            return Err(format!(
                "{directive} {path}: the key is encrypted and no {directive}-pass is set"
            ));
        }
        return decrypt_pkcs8(&text, pass).map_err(|e| format!("{directive} {path}: {e}"));
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "{directive} {path}: legacy OpenSSL-encrypted PEM keys are not supported; convert it to encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc)"
        ));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{directive} {path}: {e}"))
}

fn decrypt_pkcs8(text: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    use pkcs8::der::Decode;
    let (label, doc) =
        pkcs8::der::Document::from_pem(text).map_err(|e| format!("not a PEM key: {e}"))?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(format!("expected an ENCRYPTED PRIVATE KEY, found {label}"));
    }
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(doc.as_bytes())
        .map_err(|e| format!("not an encrypted PKCS#8 key: {e}"))?;
    let plain = info
        .decrypt(pass)
        .map_err(|e| format!("cannot decrypt the key (wrong pass phrase?): {e}"))?;
    Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
}

/// The trusted CAs: every certificate in `tls-ca-cert-file` and in the
/// files of `tls-ca-cert-dir` (OpenSSL reads that directory by hashed
/// names; here every readable PEM file counts).
fn roots(file: &str, dir: &str) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    let mut add = |certs: Vec<CertificateDer<'static>>, what: &str| -> Result<(), String> {
        for c in certs {
            store
                .add(c)
                .map_err(|e| format!("{what}: not a usable CA certificate: {e}"))?;
        }
        Ok(())
    };
    if !file.is_empty() {
        add(certificates(file, "tls-ca-cert-file")?, file)?;
    }
    if !dir.is_empty() {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("tls-ca-cert-dir {dir}: {e}"))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(p) = path.to_str() else { continue };
            if Path::new(p).is_file() {
                if let Ok(certs) = certificates(p, "tls-ca-cert-dir") {
                    add(certs, p)?;
                }
            }
        }
    }
    if store.is_empty() {
        return Err(format!(
            "no CA certificate found in tls-ca-cert-file '{file}' / tls-ca-cert-dir '{dir}'"
        ));
    }
    Ok(store)
}

/// Checks the primary's chain against the CAs but not its name, as Redis
/// does for replication (it never sets a host name to verify): replicas
/// are pointed at addresses, often IPs, that certificates rarely list.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn handshake_timeout() -> Duration {
    std::env::var("RAMPART_TLS_HANDSHAKE_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(HANDSHAKE_TIMEOUT)
}

/// Runs the handshake on a connection accepted on the `tls-port`, then
/// serves it like any other. A failed or slow handshake closes it, logged
/// as Redis logs it.
pub(crate) async fn accept_client(srv: Arc<Server>, tcp: TcpStream, peer: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let Some(acceptor) = srv.tls.acceptor() else {
        return;
    };
    let local = crate::conn::ConnIo::local(&tcp);
    let laddr = local.0.clone();
    let stream = match tokio::time::timeout(handshake_timeout(), acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!("Error accepting a client connection: {e} (addr={peer} laddr={laddr})");
            return;
        }
        Err(_) => {
            tracing::warn!(
                "Error accepting a client connection: TLS handshake timed out (addr={peer} laddr={laddr})"
            );
            return;
        }
    };
    let conn = TlsConn {
        session: Mutex::new(stream),
        local,
    };
    crate::conn::connection(srv, conn, peer).await;
}

/// Opens a TLS session over `tcp`: to a primary (`tls-replication`) or to
/// another node's cluster bus (`tls-cluster`). The peer's chain is checked
/// against the CA, not its name (see [`ChainOnly`]).
pub(crate) async fn connect(
    srv: &Server,
    tcp: TcpStream,
    host: &str,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let Some(connector) = srv.tls.connector() else {
        return Err(io::Error::other("TLS is not configured"));
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(ErrorKind::InvalidInput, format!("{host}: {e}")))?;
    connector.connect(name, tcp).await
}

type ServerStream = tokio_rustls::server::TlsStream<TcpStream>;

/// A client's TLS session as the request loop holds it: the loop waits
/// for input and for room to write at once through shared references, and
/// a rustls session needs `&mut` for either, so it sits behind a lock that
/// is only ever taken inside one poll (never contended: one task owns it).
pub(crate) struct TlsConn {
    session: Mutex<ServerStream>,
    /// The local address and descriptor, read before the handshake.
    local: (String, i32),
}

/// `poll_*` once, without waiting: what the socket takes (or gives) now.
fn now<T>(f: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>) -> io::Result<T> {
    let mut cx = Context::from_waker(Waker::noop());
    match f(&mut cx) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(ErrorKind::WouldBlock.into()),
    }
}

impl crate::conn::ConnIo for TlsConn {
    fn read_input<'a>(
        &'a self,
        buf: &'a mut BytesMut,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a {
        std::future::poll_fn(move |cx| {
            // rustls hands out plaintext it already holds without touching
            // the socket, so reading into a bounded window loses nothing.
            let start = buf.len();
            let room = (buf.capacity() - start).clamp(1024, 16 * 1024);
            buf.resize(start + room, 0);
            let mut rb = ReadBuf::new(&mut buf[start..]);
            let r = Pin::new(&mut *self.session.lock()).poll_read(cx, &mut rb);
            let n = rb.filled().len();
            buf.truncate(start + n);
            r.map(|r| r.map(|()| n))
        })
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send + '_ {
        std::future::poll_fn(move |cx| self.session.lock().get_ref().0.poll_write_ready(cx))
    }

    fn write_now(&self, data: &[u8]) -> io::Result<usize> {
        now(|cx| Pin::new(&mut *self.session.lock()).poll_write(cx, data))
    }

    fn push_held(&self) -> io::Result<bool> {
        match now(|cx| Pin::new(&mut *self.session.lock()).poll_flush(cx)) {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn holds_output(&self) -> bool {
        self.session.lock().get_ref().1.wants_write()
    }

    fn set_nodelay(&self) {}

    fn local(&self) -> (String, i32) {
        self.local.clone()
    }

    fn is_tls(&self) -> bool {
        true
    }

    async fn write_out(&mut self, data: &[u8]) -> io::Result<()> {
        let s = self.session.get_mut();
        s.write_all(data).await?;
        s.flush().await
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().session.get_mut()).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.get_mut().session.get_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().session.get_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.get_mut().session.get_mut()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_names_map_to_rustls_suites_in_order() {
        let s = cipher_suites(
            "ECDHE-RSA-AES128-GCM-SHA256:HIGH:!aNULL:ECDHE-RSA-AES256-GCM-SHA384",
            "TLS_AES_256_GCM_SHA384",
        )
        .unwrap_or_default();
        let names: Vec<String> = s.iter().map(|s| format!("{:?}", s.suite())).collect();
        assert_eq!(
            names,
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
            ]
        );
        assert!(cipher_suites("", "TLS_NOPE").is_err());
        assert!(cipher_suites("RC4-MD5", "").is_err());
    }

    #[test]
    fn protocols_as_redis_spells_them() {
        assert_eq!(protocols("TLSv1.2").map(|v| v.len()), Ok(1));
        assert_eq!(protocols("TLSv1.2 TLSv1.3").map(|v| v.len()), Ok(2));
        assert_eq!(protocols("TLSv1.1 TLSv1.3").map(|v| v.len()), Ok(1));
        assert!(protocols("TLSv1").is_err());
        assert!(protocols("SSLv3").is_err());
    }
}
