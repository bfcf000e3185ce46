//! `Provider`: the one key-provider abstraction, an enum over the local
//! keyring and AWS KMS, plus the config the server builds it from and the
//! stream rewrap built on it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::envelope::{Header, StreamKey};
use crate::{
    AuditLog, AwsKms, AwsKmsConfig, DataKey, Error, KeyContext, KeySlot, LocalKeyring,
    PROVIDER_AWS, PROVIDER_LOCAL, Result,
};

/// Which provider `kms-provider` names.
///
/// ```
/// assert_eq!(rampart_kms::ProviderKind::parse("aws").unwrap(), rampart_kms::ProviderKind::Aws);
/// assert!(rampart_kms::ProviderKind::parse("vault").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderKind {
    /// A local keyring file.
    #[default]
    Local,
    /// AWS KMS (or a KMS-compatible endpoint).
    Aws,
}

impl ProviderKind {
    /// Parses `local` or `aws`.
    ///
    /// ```
    /// assert!(rampart_kms::ProviderKind::parse("local").is_ok());
    /// ```
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "local" => Ok(ProviderKind::Local),
            "aws" | "aws-kms" => Ok(ProviderKind::Aws),
            other => Err(Error::Config(format!(
                "kms-provider must be local or aws, not {other:?}"
            ))),
        }
    }
}

/// The server's key settings (`kms-provider`, `kms-key-file`, `kms-key-id`,
/// `kms-region`, `kms-endpoint`, `kms-audit-log`).
///
/// ```
/// use rampart_kms::{ProviderConfig, ProviderKind};
/// let c = ProviderConfig { provider: ProviderKind::Local, key_file: Some("keyring.json".into()), ..Default::default() };
/// assert!(c.key_id.is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProviderConfig {
    /// `kms-provider`.
    pub provider: ProviderKind,
    /// `kms-key-file`: the keyring (local).
    pub key_file: Option<PathBuf>,
    /// `kms-key-id`: key id, ARN or alias (aws).
    pub key_id: Option<String>,
    /// `kms-region` (aws).
    pub region: Option<String>,
    /// `kms-endpoint` (aws, non-AWS endpoint).
    pub endpoint: Option<String>,
    /// `kms-audit-log`: JSON-lines audit file; none disables it.
    pub audit_log: Option<PathBuf>,
}

/// The local provider: a keyring path, re-read on every key use so that
/// `rampart keyring rotate|disable|enable` take effect in a running server
/// at once, as a KMS key-state change does.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("k.json");
/// rampart_kms::LocalKeyring::init(&p).unwrap();
/// let local = rampart_kms::LocalProvider::open(&p, rampart_kms::AuditLog::disabled()).unwrap();
/// assert_eq!(local.path(), p);
/// ```
#[derive(Debug, Clone)]
pub struct LocalProvider {
    path: PathBuf,
    audit: AuditLog,
}

impl LocalProvider {
    /// Checks the keyring opens, then keeps its path.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// assert!(rampart_kms::LocalProvider::open(&dir.path().join("none"), Default::default()).is_err());
    /// ```
    pub fn open(path: &Path, audit: AuditLog) -> Result<Self> {
        LocalKeyring::open(path)?;
        Ok(LocalProvider {
            path: path.to_path_buf(),
            audit,
        })
    }

    /// The keyring file.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let p = dir.path().join("k.json");
    /// # rampart_kms::LocalKeyring::init(&p).unwrap();
    /// let local = rampart_kms::LocalProvider::open(&p, Default::default()).unwrap();
    /// assert!(local.path().ends_with("k.json"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Loads the keyring as it is on disk now.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let p = dir.path().join("k.json");
    /// # rampart_kms::LocalKeyring::init(&p).unwrap();
    /// let local = rampart_kms::LocalProvider::open(&p, Default::default()).unwrap();
    /// assert_eq!(local.keyring().unwrap().primary_version(), 1);
    /// ```
    pub fn keyring(&self) -> Result<LocalKeyring> {
        LocalKeyring::open(&self.path)
    }

    fn audited<T>(
        &self,
        op: &'static str,
        key_id: &str,
        ctx: &KeyContext,
        r: Result<T>,
    ) -> Result<T> {
        let err = r.as_ref().err().map(ToString::to_string);
        self.audit
            .record(op, PROVIDER_LOCAL, key_id, ctx, err.as_deref());
        r
    }

    fn generate(&self, ctx: &KeyContext) -> Result<(DataKey, KeySlot)> {
        let ring = self.keyring();
        let key_id = ring
            .as_ref()
            .map(|r| r.key_id(r.primary_version()))
            .unwrap_or_else(|_| self.path.display().to_string());
        let r = ring.and_then(|ring| ring.generate_data_key(ctx));
        self.audited("GenerateDataKey", &key_id, ctx, r)
    }

    fn decrypt(&self, slot: &KeySlot, ctx: &KeyContext) -> Result<DataKey> {
        let r = self
            .keyring()
            .and_then(|ring| ring.decrypt_data_key(slot, ctx));
        self.audited("Decrypt", &slot.key_id, ctx, r)
    }

    fn wrap(&self, dk: &DataKey, ctx: &KeyContext) -> Result<KeySlot> {
        let ring = self.keyring();
        let key_id = ring
            .as_ref()
            .map(|r| r.key_id(r.primary_version()))
            .unwrap_or_else(|_| self.path.display().to_string());
        let r = ring.and_then(|ring| ring.wrap(dk, ctx));
        self.audited("Encrypt", &key_id, ctx, r)
    }

    fn can_open(&self, slot: &KeySlot) -> bool {
        // A slot of another keyring is still "ours to try" when the file
        // cannot be read: the error then says why.
        slot.provider == PROVIDER_LOCAL && self.keyring().map(|r| r.owns(slot)).unwrap_or(true)
    }
}

/// A key provider: wraps fresh data keys and unwraps them, each use audited.
///
/// ```
/// use rampart_kms::*;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("keyring.json");
/// LocalKeyring::init(&path).unwrap();
/// let cfg = ProviderConfig { provider: ProviderKind::Local, key_file: Some(path), ..Default::default() };
/// let provider = Provider::from_config(&cfg).await.unwrap();
/// let ctx = KeyContext::new("cache-1", Payload::Snapshot);
/// let (_key, slot) = provider.generate_data_key(&ctx).await.unwrap();
/// let _again = provider.decrypt_data_key(&slot, &ctx).await.unwrap();
/// # });
/// ```
#[derive(Debug, Clone)]
pub enum Provider {
    /// Local keyring file.
    Local(LocalProvider),
    /// AWS KMS.
    Aws(AwsKms),
}

impl Provider {
    /// Builds the provider the config names. Local needs `key_file` (the
    /// server decides the default path and calls
    /// [`LocalKeyring::open_or_create`] first); aws needs a region from the
    /// config or the environment.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cfg = rampart_kms::ProviderConfig::default();
    /// assert!(rampart_kms::Provider::from_config(&cfg).await.is_err()); // no key file
    /// # });
    /// ```
    pub async fn from_config(cfg: &ProviderConfig) -> Result<Provider> {
        let audit = AuditLog::open(cfg.audit_log.as_deref())?;
        match cfg.provider {
            ProviderKind::Local => {
                let path = cfg
                    .key_file
                    .as_deref()
                    .ok_or_else(|| Error::Config("kms-provider local needs kms-key-file".into()))?;
                Ok(Provider::Local(LocalProvider::open(path, audit)?))
            }
            ProviderKind::Aws => {
                let aws = AwsKmsConfig {
                    key_id: cfg.key_id.clone(),
                    region: cfg.region.clone(),
                    endpoint: cfg.endpoint.clone(),
                    ..Default::default()
                };
                Ok(Provider::Aws(AwsKms::connect(&aws, audit).await?))
            }
        }
    }

    /// A human-readable name for messages.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let p = dir.path().join("k.json");
    /// # rampart_kms::LocalKeyring::init(&p).unwrap();
    /// let prov = rampart_kms::Provider::Local(rampart_kms::LocalProvider::open(&p, Default::default()).unwrap());
    /// assert!(prov.describe().starts_with("local keyring"));
    /// ```
    pub fn describe(&self) -> String {
        match self {
            Provider::Local(l) => format!("local keyring {}", l.path.display()),
            Provider::Aws(a) => match a.key_id() {
                Some(k) => format!("AWS KMS (key {k})"),
                None => "AWS KMS".to_string(),
            },
        }
    }

    /// A fresh data key and its wrapped form for a new stream.
    ///
    /// ```no_run
    /// # async fn f(p: rampart_kms::Provider) -> rampart_kms::Result<()> {
    /// use rampart_kms::*;
    /// let (key, slot) = p.generate_data_key(&KeyContext::new("d", Payload::Snapshot)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn generate_data_key(&self, ctx: &KeyContext) -> Result<(DataKey, KeySlot)> {
        let start = std::time::Instant::now();
        let r = match self {
            Provider::Local(l) => l.generate(ctx),
            Provider::Aws(a) => a.generate_data_key(ctx).await,
        };
        crate::metrics::provider_call(self.name(), "generate", start, r.is_ok());
        r
    }

    /// The provider's name as key slots spell it (`local`, `aws-kms`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let p = dir.path().join("k.json");
    /// # rampart_kms::LocalKeyring::init(&p).unwrap();
    /// let prov = rampart_kms::Provider::Local(rampart_kms::LocalProvider::open(&p, Default::default()).unwrap());
    /// assert_eq!(prov.name(), "local");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Local(_) => PROVIDER_LOCAL,
            Provider::Aws(_) => PROVIDER_AWS,
        }
    }

    /// The key that wraps new data keys: `(key id, version)`. A local
    /// keyring names its primary version (the keyring file is read now, so
    /// a rotation by `rampart keyring rotate` shows at once); a KMS key's
    /// rotation is internal to KMS, so its version is empty. Never key
    /// material.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let p = dir.path().join("k.json");
    /// # rampart_kms::LocalKeyring::init(&p).unwrap();
    /// let prov = rampart_kms::Provider::Local(rampart_kms::LocalProvider::open(&p, Default::default()).unwrap());
    /// let (id, version) = prov.key_in_use().unwrap();
    /// assert!(id.ends_with("/1") && version == "1");
    /// ```
    pub fn key_in_use(&self) -> Result<(String, String)> {
        match self {
            Provider::Local(l) => {
                let ring = l.keyring()?;
                let v = ring.primary_version();
                Ok((ring.key_id(v), v.to_string()))
            }
            Provider::Aws(a) => Ok((a.key_id().unwrap_or_default().to_string(), String::new())),
        }
    }

    /// Unwraps a slot this provider made.
    ///
    /// ```no_run
    /// # async fn f(p: rampart_kms::Provider, slot: rampart_kms::KeySlot) -> rampart_kms::Result<()> {
    /// use rampart_kms::*;
    /// let key = p.decrypt_data_key(&slot, &KeyContext::new("d", Payload::Snapshot)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn decrypt_data_key(&self, slot: &KeySlot, ctx: &KeyContext) -> Result<DataKey> {
        let start = std::time::Instant::now();
        let r = self.decrypt_uncounted(slot, ctx).await;
        crate::metrics::provider_call(self.name(), "decrypt", start, r.is_ok());
        r
    }

    async fn decrypt_uncounted(&self, slot: &KeySlot, ctx: &KeyContext) -> Result<DataKey> {
        match self {
            Provider::Local(l) => l.decrypt(slot, ctx),
            Provider::Aws(a) => {
                if slot.provider != PROVIDER_AWS {
                    return Err(Error::NoMatchingSlot {
                        provider: self.describe(),
                        slots: slot.to_string(),
                    });
                }
                a.decrypt_data_key(slot, ctx).await
            }
        }
    }

    /// Wraps an existing data key under this provider's current key.
    async fn wrap(&self, dk: &DataKey, ctx: &KeyContext) -> Result<KeySlot> {
        let start = std::time::Instant::now();
        let r = match self {
            Provider::Local(l) => l.wrap(dk, ctx),
            Provider::Aws(a) => a.wrap(dk, ctx).await,
        };
        crate::metrics::provider_call(self.name(), "encrypt", start, r.is_ok());
        r
    }

    /// Rewraps `slot` (made by `self`) for `to`: KMS to KMS by `ReEncrypt`
    /// (the data key stays inside KMS), anything else by unwrapping here and
    /// wrapping under `to`'s current key (a local keyring's primary).
    ///
    /// ```no_run
    /// # async fn f(from: rampart_kms::Provider, to: rampart_kms::Provider, slot: rampart_kms::KeySlot) -> rampart_kms::Result<()> {
    /// use rampart_kms::*;
    /// let new_slot = from.rewrap(&slot, &KeyContext::new("d", Payload::Backup), &to).await?;
    /// # Ok(()) }
    /// ```
    pub async fn rewrap(&self, slot: &KeySlot, ctx: &KeyContext, to: &Provider) -> Result<KeySlot> {
        if let (Provider::Aws(a), Provider::Aws(b)) = (self, to)
            && slot.provider == PROVIDER_AWS
        {
            let dest = b
                .key_id()
                .ok_or_else(|| Error::Config("rewrap target has no KMS key id".into()))?;
            let start = std::time::Instant::now();
            let r = a.re_encrypt(slot, ctx, dest).await;
            crate::metrics::provider_call(self.name(), "reencrypt", start, r.is_ok());
            return r;
        }
        let dk = self.decrypt_data_key(slot, ctx).await?;
        to.wrap(&dk, ctx).await
    }

    /// True if this provider is the one to try on `slot`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let p = dir.path().join("k.json");
    /// # rampart_kms::LocalKeyring::init(&p).unwrap();
    /// let prov = rampart_kms::Provider::Local(rampart_kms::LocalProvider::open(&p, Default::default()).unwrap());
    /// assert!(!prov.can_open(&rampart_kms::KeySlot::new("aws-kms", "arn:x", vec![])));
    /// ```
    pub fn can_open(&self, slot: &KeySlot) -> bool {
        match self {
            Provider::Local(l) => l.can_open(slot),
            Provider::Aws(_) => slot.provider == PROVIDER_AWS,
        }
    }

    /// Opens the first slot of `header` this provider can open and checks the
    /// key commitment: the result is a key that may decrypt the chunks.
    /// Errors name the key state (disabled, pending deletion, …) or the
    /// mismatch; a slot that unwraps to a key the commitment rejects is
    /// reported as [`Error::SlotMismatch`].
    ///
    /// ```no_run
    /// # async fn f(p: rampart_kms::Provider, h: rampart_kms::Header) -> rampart_kms::Result<()> {
    /// let key = p.open_header(&h).await?;
    /// # Ok(()) }
    /// ```
    pub async fn open_header(&self, header: &Header) -> Result<StreamKey> {
        let (_, _, key) = self.open_slot(header).await?;
        Ok(key)
    }

    /// Like `open_header`, also returning the slot index and data key.
    async fn open_slot(&self, header: &Header) -> Result<(usize, DataKey, StreamKey)> {
        let ctx = header.key_context()?;
        let mut first_err = None;
        for (i, slot) in header.slots.iter().enumerate() {
            if !self.can_open(slot) {
                continue;
            }
            let attempt = async {
                let dk = self.decrypt_data_key(slot, &ctx).await?;
                match StreamKey::from_data_key(header, &dk) {
                    Ok(k) => Ok((dk, k)),
                    Err(Error::WrongKey) => Err(Error::SlotMismatch {
                        slot: i,
                        key_id: slot.key_id.clone(),
                    }),
                    Err(e) => Err(e),
                }
            }
            .await;
            match attempt {
                Ok((dk, k)) => return Ok((i, dk, k)),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(first_err.unwrap_or_else(|| Error::NoMatchingSlot {
            provider: self.describe(),
            slots: header
                .slots
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        }))
    }

    /// Returns `header` with its key slots replaced by one slot for `to`, the
    /// body untouched. The new slot is checked against the commitment
    /// through `to` before it is returned, so a rewrap never produces an
    /// unreadable stream.
    ///
    /// ```no_run
    /// # async fn f(from: rampart_kms::Provider, to: rampart_kms::Provider, h: rampart_kms::Header) -> rampart_kms::Result<()> {
    /// let new_header = from.rewrap_header(&h, &to).await?;
    /// # Ok(()) }
    /// ```
    pub async fn rewrap_header(&self, header: &Header, to: &Provider) -> Result<Header> {
        let ctx = header.key_context()?;
        let (i, dk, _) = self.open_slot(header).await?;
        drop(dk);
        let new_slot = self.rewrap(&header.slots[i], &ctx, to).await?;
        let mut out = header.clone();
        out.slots = vec![new_slot];
        to.open_header(&out).await?;
        Ok(out)
    }
}

/// Rewraps a whole stream: reads the header from `r`, writes the rewrapped
/// header to `w`, then copies the body byte for byte (no decryption).
///
/// ```no_run
/// # async fn f(from: rampart_kms::Provider, to: rampart_kms::Provider) -> rampart_kms::Result<()> {
/// let mut input = std::fs::File::open("dump.rdb.enc")?;
/// let mut output = std::fs::File::create("dump.rdb.enc.new")?;
/// rampart_kms::rewrap_stream(&mut input, &mut output, &from, &to).await?;
/// # Ok(()) }
/// ```
pub async fn rewrap_stream<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    from: &Provider,
    to: &Provider,
) -> Result<Header> {
    let header = Header::read_from(r)?;
    let new = from.rewrap_header(&header, to).await?;
    w.write_all(&new.to_bytes())?;
    std::io::copy(r, w)?;
    w.flush()?;
    Ok(new)
}

/// Async [`rewrap_stream`] (backups in object storage, sockets).
///
/// ```no_run
/// # async fn f(from: rampart_kms::Provider, to: rampart_kms::Provider) -> rampart_kms::Result<()> {
/// let mut input = tokio::fs::File::open("in").await?;
/// let mut output = tokio::fs::File::create("out").await?;
/// rampart_kms::rewrap_stream_async(&mut input, &mut output, &from, &to).await?;
/// # Ok(()) }
/// ```
pub async fn rewrap_stream_async<R, W>(
    r: &mut R,
    w: &mut W,
    from: &Provider,
    to: &Provider,
) -> Result<Header>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let header = Header::read_from_async(r).await?;
    let new = from.rewrap_header(&header, to).await?;
    w.write_all(&new.to_bytes()).await?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).await?;
    }
    w.flush().await?;
    Ok(new)
}
