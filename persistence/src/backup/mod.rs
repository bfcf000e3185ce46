//! Backups: one envelope object (payload type 3, a whole RDB v10) plus a
//! JSON [`Manifest`] written last, in a [`BackupStore`] (an S3-compatible
//! bucket or a local directory). A backup without its manifest does not
//! exist for list and restore.
//!
//! Writing streams: [`BackupWriter`] seals RDB bytes chunk by chunk and
//! sends them as multipart parts of [`PART_SIZE`], so memory stays bounded
//! whatever the dataset's size; a writer dropped or failed before
//! [`BackupWriter::commit`] aborts its upload. Reading streams too
//! ([`open`]): ranged reads, the SHA-256 of the object checked against the
//! manifest at its end, every chunk authenticated before its plaintext is
//! released. The streaming halves are blocking (`std::io`) and drive the
//! async store through a runtime handle: call them off the runtime's
//! worker threads (a plain thread or `spawn_blocking`).

pub mod cli;
pub mod cluster;
mod store;

use std::io::{self, Read};
use std::path::Path;

use anyhow::Context as _;
use rampart_kms::{
    EnvelopeParams, EnvelopeReader, EnvelopeWriter, Error as KmsError, Header, Payload, Provider,
    Sha256,
};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

pub use store::{BackupStore, PutOptions, S3Config, StoreError, StoreResult, Upload};

use crate::rdb::{self, Crc64, LoadSink, RdbError};
use crate::snapshot::{Protection, SnapshotWriter};

/// Suffix of a backup's envelope object.
pub const OBJECT_SUFFIX: &str = ".rdb.enc";
/// Suffix of a backup's manifest.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";
/// Size of each multipart part (S3 needs at least 5 MiB but for the last).
pub const PART_SIZE: usize = 8 << 20;
/// Manifests are small; anything larger is not one.
const MANIFEST_LIMIT: u64 = 1 << 20;

/// Why a backup was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `BACKUP CREATE` or `rampart backup create`.
    Manual,
    /// The daily `backup-window`; subject to `backup-retention-days`.
    Automatic,
    /// Taken on shutdown (`backup-on-shutdown yes`).
    Final,
    /// `rampart backup copy`.
    Copy,
}

impl Kind {
    /// The manifest's word for it.
    ///
    /// ```
    /// assert_eq!(rampart_persistence::backup::Kind::Final.as_str(), "final");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Manual => "manual",
            Kind::Automatic => "automatic",
            Kind::Final => "final",
            Kind::Copy => "copy",
        }
    }
}

/// What a backup's manifest records. Written last: its presence is what
/// makes a backup exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// `rampart-backup-v1`.
    pub format: String,
    /// The backup's name.
    pub name: String,
    /// Why it was made.
    pub kind: Kind,
    /// Dataset id of the source (bound into the data key's context).
    pub dataset: String,
    /// The node that made it (`host:port`, or `rampart` for the CLI).
    pub node: String,
    /// The source's replication id when it was taken.
    pub repl_id: Option<String>,
    /// The source's replication offset when it was taken.
    pub repl_offset: Option<i64>,
    /// Creation time, RFC 3339 UTC.
    pub created: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
    /// `local` or `aws-kms`.
    pub key_provider: String,
    /// The key that wraps the data key (keyring version id or KMS ARN).
    pub key_id: String,
    /// The envelope object's name in the store.
    pub object: String,
    /// The object's size in bytes.
    pub size: u64,
    /// SHA-256 of the object, hex.
    pub sha256: String,
    /// The backup this one was copied from, for copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Bytes of RDB inside (plaintext length).
    pub rdb_size: u64,
    /// The Rampart version that wrote it.
    pub rampart_version: String,
    /// Keys in the backup, all databases (absent from manifests written
    /// before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
    /// Where in a cluster it was taken, for a node in cluster mode: a
    /// cluster backup's restore checks its shards against these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterOrigin>,
}

/// The cluster node a backup was taken on and the slots it served then.
///
/// ```
/// use rampart_persistence::backup::ClusterOrigin;
/// let o: ClusterOrigin = serde_json::from_str(
///     r#"{"node_id":"e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca","slots":[[0,5460]]}"#,
/// ).unwrap();
/// assert_eq!(o.slots, vec![[0, 5460]]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterOrigin {
    /// The node's 40-character id.
    pub node_id: String,
    /// The slot ranges it served, inclusive, ascending.
    pub slots: Vec<[u16; 2]>,
}

/// Where a backup comes from, as the manifest records it.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// Dataset id.
    pub dataset: String,
    /// Node name.
    pub node: String,
    /// Replication id.
    pub repl_id: Option<String>,
    /// Replication offset.
    pub repl_offset: Option<i64>,
    /// Keys in the backup, when known before it is written (else
    /// [`BackupWriter::set_keys`]).
    pub keys: Option<u64>,
    /// The cluster node and its slots, in cluster mode.
    pub cluster: Option<ClusterOrigin>,
}

/// Checks a backup name: 1 to 200 of `A-Z a-z 0-9 . _ -`, not starting
/// with a dot, so it is a safe file name and object key.
///
/// ```
/// use rampart_persistence::backup::check_name;
/// assert!(check_name("nightly-2026.01.01").is_ok());
/// assert!(check_name("../x").is_err());
/// assert!(check_name("").is_err());
/// ```
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        anyhow::bail!(
            "invalid backup name {name:?}: use 1-200 letters, digits, '.', '_' or '-', not starting with '.'"
        );
    }
    Ok(())
}

/// A default backup name: `<kind>-YYYYMMDD-HHMMSS-mmm` (UTC).
///
/// ```
/// let n = rampart_persistence::backup::default_name(rampart_persistence::backup::Kind::Manual, 0);
/// assert_eq!(n, "manual-19700101-000000-000");
/// ```
pub fn default_name(kind: Kind, now_ms: u64) -> String {
    let t = rampart_kms::rfc3339(now_ms / 1000, Some((now_ms % 1000) as u32));
    // 1970-01-01T00:00:00.000Z -> 19700101-000000-000
    let digits: String = t.chars().filter(char::is_ascii_digit).collect();
    format!(
        "{}-{}-{}-{}",
        kind.as_str(),
        &digits[..8],
        &digits[8..14],
        &digits[14..]
    )
}

fn manifest_name(name: &str) -> String {
    format!("{name}{MANIFEST_SUFFIX}")
}

fn object_name(name: &str) -> String {
    format!("{name}{OBJECT_SUFFIX}")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The manifest of backup `name`; an error naming the backup when it does
/// not exist or the manifest is not valid.
pub async fn manifest(store: &BackupStore, name: &str) -> anyhow::Result<Manifest> {
    check_name(name)?;
    let bytes = match store.get_small(&manifest_name(name), MANIFEST_LIMIT).await {
        Ok(b) => b,
        Err(StoreError::NotFound(_)) => anyhow::bail!(
            "no backup named {name:?} in {} (no manifest {})",
            store.describe(),
            manifest_name(name)
        ),
        Err(e) => return Err(e.into()),
    };
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!(
            "the manifest of backup {name:?} ({}) is damaged: {e}",
            store.object(&manifest_name(name))
        )
    })?;
    if m.name != name || m.object != object_name(name) {
        anyhow::bail!(
            "the manifest {} names backup {:?} / object {:?}: it was tampered with or copied by hand",
            store.object(&manifest_name(name)),
            m.name,
            m.object
        );
    }
    Ok(m)
}

/// Every backup in the store (those with a manifest), oldest first. A
/// manifest that cannot be read is reported in the log and skipped.
pub async fn list(store: &BackupStore) -> anyhow::Result<Vec<Manifest>> {
    let mut out = Vec::new();
    for obj in store.list().await? {
        let Some(name) = obj.strip_suffix(MANIFEST_SUFFIX) else {
            continue;
        };
        match manifest(store, name).await {
            Ok(m) => out.push(m),
            Err(e) => tracing::warn!("Skipping backup {name:?}: {e:#}"),
        }
    }
    out.sort_by(|a, b| (a.created_ms, &a.name).cmp(&(b.created_ms, &b.name)));
    Ok(out)
}

/// Deletes a backup: the manifest first, so it stops existing at once,
/// then its object.
pub async fn delete(store: &BackupStore, name: &str) -> anyhow::Result<Manifest> {
    let m = manifest(store, name).await?;
    store.delete(&manifest_name(name)).await?;
    store.delete(&m.object).await?;
    Ok(m)
}

/// Deletes automatic backups created more than `days` days before
/// `now_ms`; manual, final and copied backups are never deleted. Returns
/// the names deleted.
pub async fn prune(store: &BackupStore, days: u64, now_ms: u64) -> anyhow::Result<Vec<String>> {
    let cutoff = now_ms.saturating_sub(days * 86_400_000);
    let mut gone = Vec::new();
    for m in list(store).await? {
        if m.kind == Kind::Automatic && m.created_ms < cutoff {
            delete(store, &m.name).await?;
            gone.push(m.name);
        }
    }
    Ok(gone)
}

/// Collects multipart parts, hashing what passes; the envelope writes
/// into it.
struct PartSink {
    upload: Option<Upload>,
    rt: Handle,
    buf: Vec<u8>,
    sha: Sha256,
    size: u64,
}

impl PartSink {
    fn send(&mut self) -> io::Result<()> {
        let body = std::mem::replace(&mut self.buf, Vec::with_capacity(PART_SIZE));
        let up = self
            .upload
            .as_mut()
            .ok_or_else(|| io::Error::other("the upload was already closed"))?;
        self.rt
            .block_on(up.part(body))
            .map_err(|e| io::Error::other(e.to_string()))
    }
}

impl io::Write for PartSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(PART_SIZE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.sha.update(&data[..n]);
        self.size += n as u64;
        if self.buf.len() == PART_SIZE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PartSink {
    fn drop(&mut self) {
        // Not completed: give the parts back before the failure is
        // reported, so no caller sees a half-written upload. On a runtime
        // thread, where blocking is not allowed, it is spawned instead.
        if let Some(up) = self.upload.take() {
            if Handle::try_current().is_err() {
                self.rt.block_on(up.abort());
            } else {
                self.rt.spawn(up.abort());
            }
        }
    }
}

/// Writes one backup: feed it the RDB stream (header, entries, EOF opcode;
/// the CRC-64 trailer is added by [`commit`](BackupWriter::commit)).
/// Blocking: call it off the runtime's worker threads.
///
/// ```no_run
/// # fn f(store: rampart_persistence::backup::BackupStore, provider: rampart_kms::Provider,
/// #      rt: tokio::runtime::Handle) -> anyhow::Result<()> {
/// use rampart_persistence::backup::*;
/// let origin = Origin { dataset: "ds-1".into(), node: "cache-1".into(), ..Default::default() };
/// let mut w = BackupWriter::begin(&store, &rt, "nightly", Kind::Manual, &origin, &provider)?;
/// let mut rdb = Vec::new();
/// rampart_persistence::rdb::write_header(&mut rdb, &[]);
/// rampart_persistence::rdb::write_eof(&mut rdb);
/// w.write(&rdb)?;
/// let manifest = w.commit()?;
/// # Ok(()) }
/// ```
pub struct BackupWriter {
    store: BackupStore,
    rt: Handle,
    env: EnvelopeWriter<PartSink>,
    crc: Crc64,
    rdb_size: u64,
    manifest: Manifest,
}

impl BackupWriter {
    /// Refuses a name already taken, gets a fresh data key from `provider`
    /// (bound to the dataset, purpose `backup`) and starts the upload.
    pub fn begin(
        store: &BackupStore,
        rt: &Handle,
        name: &str,
        kind: Kind,
        origin: &Origin,
        provider: &Provider,
    ) -> anyhow::Result<BackupWriter> {
        check_name(name)?;
        if rt.block_on(store.size(&manifest_name(name)))?.is_some() {
            anyhow::bail!(
                "a backup named {name:?} already exists in {}",
                store.describe()
            );
        }
        let params = EnvelopeParams::new(Payload::Backup, &origin.dataset)
            .with_pair("node", &origin.node)
            .with_pair("backup", name);
        let (key, slot) = rt
            .block_on(provider.generate_data_key(&params.key_context()?))
            .map_err(|e| {
                anyhow::anyhow!("cannot get a data key from {}: {e}", provider.describe())
            })?;
        let (key_provider, key_id) = (slot.provider.clone(), slot.key_id.clone());
        let upload = rt.block_on(store.upload(&object_name(name), PutOptions::default()))?;
        let sink = PartSink {
            upload: Some(upload),
            rt: rt.clone(),
            buf: Vec::with_capacity(PART_SIZE),
            sha: Sha256::new(),
            size: 0,
        };
        let env = EnvelopeWriter::new(sink, &params, key, vec![slot])?;
        let created_ms = now_ms();
        Ok(BackupWriter {
            store: store.clone(),
            rt: rt.clone(),
            env,
            crc: Crc64::new(),
            rdb_size: 0,
            manifest: Manifest {
                format: "rampart-backup-v1".into(),
                name: name.to_string(),
                kind,
                dataset: origin.dataset.clone(),
                node: origin.node.clone(),
                repl_id: origin.repl_id.clone(),
                repl_offset: origin.repl_offset,
                created: rampart_kms::rfc3339(created_ms / 1000, None),
                created_ms,
                key_provider,
                key_id,
                object: object_name(name),
                size: 0,
                sha256: String::new(),
                source: None,
                rdb_size: 0,
                rampart_version: env!("CARGO_PKG_VERSION").to_string(),
                keys: origin.keys,
                cluster: origin.cluster.clone(),
            },
        })
    }

    /// Records the replication position and cluster slots the capture was
    /// taken at (known only once the capture begins, after the upload
    /// started).
    pub fn with_origin(mut self, origin: &Origin) -> Self {
        self.manifest.repl_id = origin.repl_id.clone();
        self.manifest.repl_offset = origin.repl_offset;
        self.manifest.cluster = origin.cluster.clone();
        self
    }

    /// Records how many keys the RDB written holds (the writer of the
    /// entries counts them; the envelope does not parse them).
    pub fn set_keys(&mut self, keys: u64) {
        self.manifest.keys = Some(keys);
    }

    /// Appends RDB bytes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        use io::Write;
        self.crc.update(bytes);
        self.rdb_size += bytes.len() as u64;
        self.env.write_all(bytes)
    }

    /// Appends the CRC-64 trailer, seals the stream, completes the upload
    /// and writes the manifest: from then on the backup exists.
    pub fn commit(mut self) -> anyhow::Result<Manifest> {
        use io::Write;
        let crc = self.crc.value().to_le_bytes();
        self.env.write_all(&crc)?;
        self.rdb_size += 8;
        let mut sink = self.env.finish()?;
        if !sink.buf.is_empty() || sink.size == 0 {
            sink.send()?;
        }
        let upload = sink
            .upload
            .take()
            .ok_or_else(|| anyhow::anyhow!("the upload was already closed"))?;
        self.rt.block_on(upload.complete())?;
        let mut m = self.manifest;
        m.size = sink.size;
        m.sha256 = sink.sha.hex();
        m.rdb_size = self.rdb_size;
        let mut json = serde_json::to_vec_pretty(&m)?;
        json.push(b'\n');
        if let Err(e) = self
            .rt
            .block_on(self.store.put(&manifest_name(&m.name), json))
        {
            // Without its manifest the object is no backup: remove it.
            let _ = self.rt.block_on(self.store.delete(&m.object));
            return Err(e.into());
        }
        Ok(m)
    }
}

/// A blocking `Read` over a stored object, fetched in ranges of
/// [`PART_SIZE`], that checks the object's size and SHA-256 against its
/// manifest when it reaches the end.
struct ObjectReader {
    store: BackupStore,
    rt: Handle,
    name: String,
    pos: u64,
    size: u64,
    buf: Vec<u8>,
    off: usize,
    sha: Sha256,
    expect: Option<String>,
    checked: bool,
}

impl ObjectReader {
    fn new(
        store: &BackupStore,
        rt: &Handle,
        name: &str,
        size: u64,
        expect: Option<String>,
    ) -> Self {
        ObjectReader {
            store: store.clone(),
            rt: rt.clone(),
            name: name.to_string(),
            pos: 0,
            size,
            buf: Vec::new(),
            off: 0,
            sha: Sha256::new(),
            expect,
            checked: false,
        }
    }
}

impl Read for ObjectReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.off == self.buf.len() {
            if self.pos >= self.size {
                if !self.checked {
                    self.checked = true;
                    if let Some(want) = &self.expect {
                        let got = self.sha.hex();
                        if &got != want {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "{}: its SHA-256 is {got}, but the manifest records {want}: the object or its manifest was altered",
                                    self.store.object(&self.name)
                                ),
                            ));
                        }
                    }
                }
                return Ok(0);
            }
            let len = (PART_SIZE as u64).min(self.size - self.pos);
            let chunk = self
                .rt
                .block_on(self.store.get_range(&self.name, self.pos, len))
                .map_err(|e| io::Error::other(e.to_string()))?;
            if chunk.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{} ended at byte {} of {}",
                        self.store.object(&self.name),
                        self.pos,
                        self.size
                    ),
                ));
            }
            self.pos += chunk.len() as u64;
            self.sha.update(&chunk);
            self.buf = chunk;
            self.off = 0;
        }
        let n = out.len().min(self.buf.len() - self.off);
        out[..n].copy_from_slice(&self.buf[self.off..self.off + n]);
        self.off += n;
        Ok(n)
    }
}

/// A plaintext RDB stream read from a store.
pub type RdbStream = Box<dyn Read + Send>;

/// Opens backup `name` for reading with `provider`: checks the object's
/// size against the manifest, opens the key slot (a disabled, deleted or
/// missing key fails here, naming the key) and returns the plaintext RDB
/// stream, whose end also checks the object's SHA-256. Blocking.
pub fn open(
    store: &BackupStore,
    rt: &Handle,
    name: &str,
    provider: &Provider,
) -> anyhow::Result<(Manifest, RdbStream)> {
    let m = rt.block_on(manifest(store, name))?;
    let size = rt.block_on(store.size(&m.object))?.ok_or_else(|| {
        anyhow::anyhow!(
            "backup {name:?}: its object {} is missing",
            store.object(&m.object)
        )
    })?;
    if size != m.size {
        anyhow::bail!(
            "backup {name:?}: its object {} is {size} bytes, but the manifest records {}: truncated or replaced",
            store.object(&m.object),
            m.size
        );
    }
    let mut r = ObjectReader::new(store, rt, &m.object, size, Some(m.sha256.clone()));
    let header = Header::read_from(&mut r).map_err(|e| anyhow::anyhow!("backup {name:?}: {e}"))?;
    if header.payload != Payload::Backup {
        anyhow::bail!(
            "backup {name:?}: the object is an envelope of payload {}, not a backup",
            header.payload
        );
    }
    let key = rt
        .block_on(provider.open_header(&header))
        .map_err(|e| anyhow::anyhow!("backup {name:?}: {e}"))?;
    let reader = EnvelopeReader::new(r, header, key).require_eof(true);
    Ok((m, Box::new(reader)))
}

/// What a source named by `--restore-from` or `rampart backup restore` is.
pub enum Source {
    /// A backup with its manifest.
    Backup(Box<Manifest>),
    /// A plain Redis RDB object (an ElastiCache or redis-server export).
    PlainRdb(u64),
}

/// Opens `name` in `store` as a backup if it has a manifest, else as a
/// plain RDB object (refusing an envelope without a manifest: an
/// incomplete or hand-copied backup). Blocking.
pub fn open_any(
    store: &BackupStore,
    rt: &Handle,
    name: &str,
    provider: Option<&Provider>,
) -> anyhow::Result<(Source, RdbStream)> {
    let has_manifest =
        check_name(name).is_ok() && rt.block_on(store.size(&manifest_name(name)))?.is_some();
    if has_manifest {
        let provider = provider.ok_or_else(|| {
            anyhow::anyhow!("backup {name:?} is encrypted: a key (--key-file or --kms-key-id) is needed to read it")
        })?;
        let (m, r) = open(store, rt, name, provider)?;
        return Ok((Source::Backup(Box::new(m)), r));
    }
    let size = rt.block_on(store.size(name))?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} does not exist (neither a backup nor an object of that name)",
            store.object(name)
        )
    })?;
    let head = rt.block_on(store.get_range(name, 0, 8))?;
    if head == rampart_kms::envelope::MAGIC {
        anyhow::bail!(
            "{} is an encrypted envelope without a manifest: an incomplete backup, or one copied without its {MANIFEST_SUFFIX}",
            store.object(name)
        );
    }
    if !head.starts_with(b"REDIS") {
        anyhow::bail!(
            "{} is neither a Rampart backup nor an RDB file (it starts with {:?})",
            store.object(name),
            String::from_utf8_lossy(&head)
        );
    }
    Ok((
        Source::PlainRdb(size),
        Box::new(ObjectReader::new(store, rt, name, size, None)),
    ))
}

/// Counts keys while an RDB stream is checked.
struct Count(u64);

impl LoadSink for Count {
    fn entry(
        &mut self,
        _: usize,
        _: &[u8],
        _: rampart_keyspace::Value,
        _: Option<u64>,
    ) -> Result<(), RdbError> {
        self.0 += 1;
        Ok(())
    }
}

/// Passes every byte read on to `out`.
struct Tee<'a, R> {
    inner: R,
    out: &'a mut dyn FnMut(&[u8]) -> io::Result<()>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.out)(&buf[..n])?;
        Ok(n)
    }
}

/// How much of an RDB stream [`copy_rdb`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Parse every entry (and the CRC-64): for plain RDB from elsewhere.
    Parse,
    /// The `REDIS` magic and the CRC-64 trailer only: for a backup's
    /// plaintext, which the envelope has already authenticated chunk by
    /// chunk, so parsing it would only repeat the load that follows.
    Trailer,
}

/// Copies a whole RDB stream to `out` while checking it (see [`Check`]),
/// and, for a backup, that the object's end matches its manifest (the
/// envelope's final chunk, its SHA-256, nothing after). Returns the number
/// of keys when it parsed them. The caller commits what `out` wrote only on
/// success.
pub fn copy_rdb(
    src: RdbStream,
    check: Check,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> anyhow::Result<Option<u64>> {
    match check {
        Check::Parse => {
            let mut count = Count(0);
            copy_rdb_parsed(src, &mut count, out)?;
            Ok(Some(count.0))
        }
        Check::Trailer => {
            let mut tee = Tee { inner: src, out };
            trailer_check(&mut tee)?;
            drain(tee)?;
            Ok(None)
        }
    }
}

/// [`copy_rdb`] parsing every entry into `sink` (which may refuse one),
/// for a caller that checks the keys themselves (a cluster shard's slots).
pub fn copy_rdb_parsed(
    src: RdbStream,
    sink: &mut impl LoadSink,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> anyhow::Result<()> {
    let mut tee = Tee { inner: src, out };
    rdb::load(&mut tee, &rampart_keyspace::EncodingLimits::default(), sink)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drain(tee)
}

/// Reads past the RDB's end: the envelope's end check, the SHA-256 check,
/// and no bytes after the RDB.
fn drain<R: Read>(mut tee: Tee<'_, R>) -> anyhow::Result<()> {
    let mut rest = [0u8; 4096];
    let extra = tee
        .inner
        .read(&mut rest)
        .map_err(|e| anyhow::Error::from(KmsError::from(e)))?;
    if extra != 0 {
        anyhow::bail!("{extra} unexpected bytes after the end of the RDB");
    }
    Ok(())
}

/// Reads `r` to its end, checking the `REDIS` magic and that the last 8
/// bytes are the CRC-64 of all before them.
fn trailer_check(r: &mut impl Read) -> anyhow::Result<()> {
    let mut crc = Crc64::new();
    // The last bytes seen, not yet in the CRC: the trailer once at the end.
    let mut tail: Vec<u8> = Vec::with_capacity(16);
    let mut head: Vec<u8> = Vec::with_capacity(5);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r
            .read(&mut buf)
            .map_err(|e| anyhow::Error::from(KmsError::from(e)))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let want = 5 - head.len().min(5);
        head.extend_from_slice(&chunk[..want.min(n)]);
        tail.extend_from_slice(chunk);
        let settled = tail.len().saturating_sub(8);
        crc.update(&tail[..settled]);
        tail.drain(..settled);
    }
    if head != b"REDIS" {
        anyhow::bail!(
            "not an RDB stream (it starts with {:?})",
            String::from_utf8_lossy(&head)
        );
    }
    if tail[..] != crc.value().to_le_bytes() {
        anyhow::bail!(
            "the RDB's CRC-64 trailer does not match its contents: the stream is damaged"
        );
    }
    Ok(())
}

/// Writes a source's RDB as the snapshot `dest` (the data directory's
/// `dump.rdb`) under `protection`, replacing it only when the whole
/// source was read and checked. Returns the number of keys when it parsed
/// them. Blocking.
pub fn restore_to(
    src: RdbStream,
    check: Check,
    dest: &Path,
    protection: Protection,
) -> anyhow::Result<Option<u64>> {
    let mut w = SnapshotWriter::create(dest, protection)?;
    let keys = copy_rdb(src, check, &mut |b| w.write(b))?;
    w.commit_verbatim()
        .with_context(|| format!("writing {}", dest.display()))?;
    Ok(keys)
}

impl Source {
    /// How much a restore of this source checks: a backup is authenticated
    /// by its envelope, a plain RDB is parsed.
    pub fn check(&self) -> Check {
        match self {
            Source::Backup(_) => Check::Trailer,
            Source::PlainRdb(_) => Check::Parse,
        }
    }
}

/// The state of the key a backup's slot names, as `describe` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// The key opens the backup.
    Enabled,
    /// The key exists but is disabled or pending deletion.
    Disabled(String),
    /// The key is not there (deleted, another keyring, no such KMS key).
    Missing(String),
    /// It could not be told (network, permissions…).
    Unknown(String),
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyState::Enabled => f.write_str("enabled"),
            KeyState::Disabled(e) => write!(f, "disabled ({e})"),
            KeyState::Missing(e) => write!(f, "missing ({e})"),
            KeyState::Unknown(e) => write!(f, "unknown ({e})"),
        }
    }
}

/// Reads the backup's header and tries its key slot with `provider`.
pub async fn key_state(
    store: &BackupStore,
    m: &Manifest,
    provider: &Provider,
) -> anyhow::Result<KeyState> {
    let header = read_header(store, &m.object).await?.0;
    Ok(match provider.open_header(&header).await {
        Ok(_) => KeyState::Enabled,
        Err(
            e @ (KmsError::LocalKeyDisabled { .. }
            | KmsError::KmsKeyDisabled { .. }
            | KmsError::KmsKeyPendingDeletion { .. }),
        ) => KeyState::Disabled(e.to_string()),
        Err(
            e @ (KmsError::LocalKeyNotFound { .. }
            | KmsError::KmsKeyNotFound { .. }
            | KmsError::KeyFileMissing(_)
            | KmsError::ForeignKeyring { .. }
            | KmsError::NoMatchingSlot { .. }),
        ) => KeyState::Missing(e.to_string()),
        Err(e) => KeyState::Unknown(e.to_string()),
    })
}

/// The envelope header at the start of `object` and its length.
async fn read_header(store: &BackupStore, object: &str) -> anyhow::Result<(Header, usize)> {
    let mut want = 64 << 10;
    loop {
        let head = store.get_range(object, 0, want).await?;
        match Header::from_bytes(&head) {
            Ok(h) => return Ok(h),
            Err(KmsError::HeaderTruncated) if head.len() as u64 == want && want < (16 << 20) => {
                want *= 8
            }
            Err(e) => anyhow::bail!("{}: {e}", store.object(object)),
        }
    }
}

/// Copies backup `from` to `to`. Under the same key (`to_key` `None`) the
/// object is copied inside the store (S3 CopyObject) and the manifest
/// follows. Under another key only the key slot is rewrapped: the new
/// object is the new header plus the old encrypted body, which is copied
/// inside the store (UploadPartCopy) but for its first part; the body is
/// read once to check the source's digest and compute the copy's. The
/// copy's manifest is written last.
pub async fn copy(
    store: &BackupStore,
    from: &str,
    to: &str,
    from_key: &Provider,
    to_key: Option<&Provider>,
) -> anyhow::Result<Manifest> {
    check_name(to)?;
    let src = manifest(store, from).await?;
    if store.size(&manifest_name(to)).await?.is_some() {
        anyhow::bail!(
            "a backup named {to:?} already exists in {}",
            store.describe()
        );
    }
    let mut m = src.clone();
    m.name = to.to_string();
    m.object = object_name(to);
    m.kind = Kind::Copy;
    m.source = Some(from.to_string());
    m.created_ms = now_ms();
    m.created = rampart_kms::rfc3339(m.created_ms / 1000, None);
    match to_key {
        None => store.copy(&src.object, &m.object).await?,
        Some(target) => {
            let (header, len) = read_header(store, &src.object).await?;
            let new = from_key
                .rewrap_header(&header, target)
                .await
                .map_err(|e| anyhow::anyhow!("backup {from:?}: {e}"))?;
            let head = new.to_bytes();
            let slot = new
                .slots
                .first()
                .ok_or_else(|| anyhow::anyhow!("the rewrapped header has no key slot"))?;
            m.key_provider = slot.provider.clone();
            m.key_id = slot.key_id.clone();
            let (size, sha) = digests(store, &src, len as u64, &head).await?;
            m.size = size;
            m.sha256 = sha;
            let mut up = store.upload(&m.object, PutOptions::default()).await?;
            match copy_body(store, &src, len as u64, head, &mut up).await {
                Ok(()) => up.complete().await?,
                Err(e) => {
                    up.abort().await;
                    return Err(e);
                }
            }
        }
    }
    let mut json = serde_json::to_vec_pretty(&m)?;
    json.push(b'\n');
    if let Err(e) = store.put(&manifest_name(to), json).await {
        let _ = store.delete(&m.object).await;
        return Err(e.into());
    }
    Ok(m)
}

/// Reads the source object once: checks its digest against its manifest
/// and returns the size and digest of `head` followed by its bytes from
/// `skip` (the copy under a new key slot).
async fn digests(
    store: &BackupStore,
    src: &Manifest,
    skip: u64,
    head: &[u8],
) -> anyhow::Result<(u64, String)> {
    let mut old = Sha256::new();
    let mut new = Sha256::new();
    new.update(head);
    let mut pos = 0u64;
    while pos < src.size {
        let len = (PART_SIZE as u64).min(src.size - pos);
        let chunk = store.get_range(&src.object, pos, len).await?;
        if chunk.is_empty() {
            anyhow::bail!("{} ended early", store.object(&src.object));
        }
        old.update(&chunk);
        let body_start = skip.saturating_sub(pos).min(chunk.len() as u64) as usize;
        new.update(&chunk[body_start..]);
        pos += chunk.len() as u64;
    }
    if old.hex() != src.sha256 {
        anyhow::bail!(
            "backup {:?}: its object's SHA-256 does not match the manifest: the object or its manifest was altered",
            src.name
        );
    }
    Ok((head.len() as u64 + src.size - skip, new.hex()))
}

/// Uploads `head` with the first [`PART_SIZE`] bytes of the body (S3 parts
/// but the last need 5 MiB), then copies the rest of the body inside the
/// store.
async fn copy_body(
    store: &BackupStore,
    src: &Manifest,
    skip: u64,
    mut head: Vec<u8>,
    up: &mut Upload,
) -> anyhow::Result<()> {
    let first = (PART_SIZE as u64).min(src.size - skip);
    head.extend_from_slice(&store.get_range(&src.object, skip, first).await?);
    up.part(head).await?;
    let mut pos = skip + first;
    while pos < src.size {
        let len = store.copy_part_size().min(src.size - pos);
        store.part_copy(up, &src.object, pos, len).await?;
        pos += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `n` bytes per read, to cross every boundary.
    struct Trickle(std::io::Cursor<Vec<u8>>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.1);
            self.0.read(&mut buf[..n])
        }
    }

    fn rdb_file() -> Vec<u8> {
        let mut b = Vec::new();
        rdb::write_header(&mut b, &[]);
        rdb::write_select_db(&mut b, 0);
        rdb::write_entry(&mut b, b"k", &rampart_keyspace::Value::string(b"v"), None);
        rdb::write_eof(&mut b);
        let crc = Crc64::checksum(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    fn check(bytes: Vec<u8>, step: usize, how: Check) -> anyhow::Result<Option<u64>> {
        let mut copied = Vec::new();
        let r = copy_rdb(
            Box::new(Trickle(std::io::Cursor::new(bytes.clone()), step)),
            how,
            &mut |b| {
                copied.extend_from_slice(b);
                Ok(())
            },
        );
        if r.is_ok() {
            assert_eq!(copied, bytes, "everything read is passed on");
        }
        r
    }

    #[test]
    fn manifests_without_keys_or_cluster_still_parse() {
        let old = r#"{"format":"rampart-backup-v1","name":"n","kind":"manual","dataset":"d",
            "node":"h:1","repl_id":null,"repl_offset":null,"created":"x","created_ms":1,
            "key_provider":"local","key_id":"k/1","object":"n.rdb.enc","size":1,"sha256":"00",
            "rdb_size":9,"rampart_version":"0.1.0"}"#;
        let m: Manifest = serde_json::from_str(old).unwrap();
        assert_eq!((m.keys, m.cluster.clone()), (None, None));
        // Written back, the absent fields stay absent.
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            !json.contains("keys") && !json.contains("cluster"),
            "{json}"
        );
        let with = Manifest {
            keys: Some(3),
            cluster: Some(ClusterOrigin {
                node_id: "a".repeat(40),
                slots: vec![[0, 1], [5, 5]],
            }),
            ..m
        };
        let back: Manifest = serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
        assert_eq!(back, with);
    }

    #[test]
    fn the_trailer_check_accepts_a_whole_rdb_and_refuses_any_damage() {
        let good = rdb_file();
        for step in [1, 3, 7, 8, 9, 4096] {
            assert_eq!(check(good.clone(), step, Check::Trailer).unwrap(), None);
            assert_eq!(check(good.clone(), step, Check::Parse).unwrap(), Some(1));
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x20;
            assert!(check(bad, 5, Check::Trailer).is_err(), "byte {i} flipped");
        }
        assert!(check(good[..good.len() - 1].to_vec(), 4, Check::Trailer).is_err());
        assert!(check(b"REDIS".to_vec(), 4, Check::Trailer).is_err());
        assert!(check(Vec::new(), 4, Check::Trailer).is_err());
    }
}
