//! Test certificates for TLS tests that start several servers: a CA, a
//! certificate for 127.0.0.1/localhost usable as server and as client (a
//! cluster node presents it on the bus, as Redis does without
//! `tls-client-cert-file`), and a client-only certificate, written as PEM
//! files in a temporary directory. Made with rcgen: no openssl CLI.

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SerialNumber,
};

/// A CA and what it signed, in a temporary directory removed on drop:
/// `ca.crt`, `server.crt`/`server.key`, `client.crt`/`client.key`.
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
}

fn leaf(
    ca: &rcgen::Certificate,
    ca_key: &KeyPair,
    cn: &str,
    serial: u64,
    usages: Vec<ExtendedKeyUsagePurpose>,
) -> Result<(rcgen::Certificate, KeyPair)> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serial_number = Some(SerialNumber::from(serial));
    p.extended_key_usages = usages;
    let cert = p.signed_by(&key, ca, ca_key)?;
    Ok((cert, key))
}

impl Pki {
    /// Makes the CA and its certificates.
    pub fn new() -> Result<Pki> {
        let dir = tempfile::tempdir()?;
        let ca_key = KeyPair::generate()?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(DnType::CommonName, "Rampart test CA");
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = p.self_signed(&ca_key)?;
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text);
        write("ca.crt", &ca.pem())?;
        let both = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let (server, skey) = leaf(&ca, &ca_key, "rampart-node", 1001, both)?;
        write("server.crt", &server.pem())?;
        write("server.key", &skey.serialize_pem())?;
        let client_only = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (client, ckey) = leaf(&ca, &ca_key, "client", 2001, client_only)?;
        write("client.crt", &client.pem())?;
        write("client.key", &ckey.serialize_pem())?;
        Ok(Pki { dir })
    }

    /// The directory holding the files (removed on drop).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The path of one of the files (`"ca.crt"`, `"client.key"`, …).
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
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
