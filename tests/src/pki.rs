//! Test certificates for the TLS tests: a CA, certificates for
//! 127.0.0.1/localhost usable as server and as client (a replica or a
//! cluster node presents its server certificate, as Redis does without
//! `tls-client-cert-file`), a second server certificate for rotation, a
//! client-only certificate, one signed by an unrelated CA, and the server
//! key encrypted under a pass phrase, written as PEM files in a temporary
//! directory. Made with rcgen: no openssl CLI.

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SerialNumber,
};

/// The pass phrase of `server-enc.key`.
pub const KEY_PASS: &str = "s3cret pass";

/// A CA and what it signed, in a temporary directory removed on drop:
/// `ca.crt`, `server.crt`/`server.key`, `server2.crt`/`server2.key` (a
/// second server certificate), `client.crt`/`client.key` (client only),
/// `other-ca.crt` and `stranger.crt`/`stranger.key` (a client certificate
/// from that unrelated CA), and `server-enc.key` (`server.key` as
/// encrypted PKCS#8 under [`KEY_PASS`]).
///
/// # Example
///
/// ```no_run
/// let pki = rampart_tests::pki::Pki::new()?;
/// let args = pki.server_args(6380); // --tls-port 6380 --tls-cert-file …
/// # Ok::<(), anyhow::Error>(())
/// ```
pub struct Pki {
    dir: tempfile::TempDir,
    server_der: Vec<u8>,
    server2_der: Vec<u8>,
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Result<Ca> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(&key)?;
    Ok(Ca { cert, key })
}

/// A leaf for 127.0.0.1/localhost signed by `ca`: server and client, or
/// client only.
fn leaf(ca: &Ca, cn: &str, serial: u64, server: bool) -> Result<(rcgen::Certificate, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serial_number = Some(SerialNumber::from(serial));
    p.extended_key_usages = if server {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    let cert = p.signed_by(&key, &ca.cert, &ca.key)?;
    Ok((cert, key))
}

impl Pki {
    /// Makes the CAs and their certificates.
    pub fn new() -> Result<Pki> {
        let dir = tempfile::tempdir()?;
        let root = ca("Rampart test CA")?;
        let other = ca("Unrelated CA")?;
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text);
        write("ca.crt", &root.cert.pem())?;
        write("other-ca.crt", &other.cert.pem())?;
        let (server, skey) = leaf(&root, "rampart-server", 1001, true)?;
        write("server.crt", &server.pem())?;
        write("server.key", &skey.serialize_pem())?;
        let (server2, skey2) = leaf(&root, "rampart-server-rotated", 1002, true)?;
        write("server2.crt", &server2.pem())?;
        write("server2.key", &skey2.serialize_pem())?;
        let (client, ckey) = leaf(&root, "client", 2001, false)?;
        write("client.crt", &client.pem())?;
        write("client.key", &ckey.serialize_pem())?;
        let (stranger, xkey) = leaf(&other, "stranger", 3001, false)?;
        write("stranger.crt", &stranger.pem())?;
        write("stranger.key", &xkey.serialize_pem())?;
        // The server key again, encrypted (PKCS#8, PBES2).
        let der = skey.serialize_der();
        let info =
            pkcs8::PrivateKeyInfo::try_from(der.as_slice()).map_err(|e| anyhow::anyhow!("{e}"))?;
        let enc = info
            .encrypt(pkcs8::rand_core::OsRng, KEY_PASS.as_bytes())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let pem = enc
            .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        write("server-enc.key", &pem)?;
        Ok(Pki {
            server_der: server.der().to_vec(),
            server2_der: server2.der().to_vec(),
            dir,
        })
    }

    /// The directory holding the files (removed on drop).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The path of one of the files (`"ca.crt"`, `"client.key"`, …).
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// DER of `server.crt`, to tell which certificate a server serves.
    pub fn server_der(&self) -> &[u8] {
        &self.server_der
    }

    /// DER of `server2.crt`.
    pub fn server2_der(&self) -> &[u8] {
        &self.server2_der
    }

    /// The server directives for this PKI, serving TLS on `tls_port`.
    pub fn server_args(&self, tls_port: u16) -> Vec<String> {
        vec![
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            self.path("server.crt"),
            "--tls-key-file".into(),
            self.path("server.key"),
            "--tls-ca-cert-file".into(),
            self.path("ca.crt"),
        ]
    }

    /// `redis-cli`'s options to connect over TLS with the client
    /// certificate.
    pub fn cli_args(&self) -> Vec<String> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            self.path("ca.crt"),
            "--cert".into(),
            self.path("client.crt"),
            "--key".into(),
            self.path("client.key"),
        ]
    }
}
