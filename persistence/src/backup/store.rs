//! Where backups live: [`BackupStore`], an S3-compatible bucket (AWS S3,
//! Garage, MinIO, Ceph) through `aws-sdk-s3`, or a local directory with the
//! same semantics. Objects are named relative to the store's prefix.
//!
//! Large objects go up as multipart uploads ([`Upload`]): nothing is
//! visible until [`Upload::complete`], and an upload that fails is aborted
//! so no parts are left behind. Reads are ranged, so memory stays bounded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use aws_smithy_http_client::tls;
use aws_smithy_types::error::display::DisplayErrorContext;
use rampart_kms::AtomicFile;

/// What a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// Anything else, said for the operator (bucket, credentials, network).
    #[error("{0}")]
    Failed(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// How to reach an S3-compatible bucket (`backup-s3-*` directives, or the
/// CLI's `--store s3://bucket/prefix --s3-endpoint … --s3-region …
/// --s3-path-style`).
///
/// ```
/// let c = rampart_persistence::backup::S3Config::new("backups", "rampart/");
/// assert_eq!(c.prefix, "rampart/");
/// assert!(!c.path_style);
/// ```
#[derive(Debug, Clone, Default)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix of every object (`rampart/` by default).
    pub prefix: String,
    /// Endpoint URL for a non-AWS store; else `AWS_ENDPOINT_URL_S3`,
    /// `AWS_ENDPOINT_URL` or AWS.
    pub endpoint: Option<String>,
    /// Region; else the standard chain, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most
    /// self-hosted stores need.
    pub path_style: bool,
}

impl S3Config {
    /// A bucket and prefix with the other settings from the environment.
    ///
    /// ```
    /// let c = rampart_persistence::backup::S3Config::new("b", "");
    /// assert!(c.endpoint.is_none());
    /// ```
    pub fn new(bucket: &str, prefix: &str) -> S3Config {
        S3Config {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            ..Default::default()
        }
    }
}

/// A backup store: an S3-compatible bucket or a local directory.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use rampart_persistence::backup::BackupStore;
/// let dir = tempfile::tempdir().unwrap();
/// let store = BackupStore::dir(dir.path());
/// store.put("a.json", b"{}".to_vec()).await.unwrap();
/// assert_eq!(store.get("a.json").await.unwrap(), b"{}");
/// assert_eq!(store.list().await.unwrap(), vec!["a.json".to_string()]);
/// # });
/// ```
#[derive(Debug, Clone)]
pub enum BackupStore {
    /// A bucket.
    S3(S3Store),
    /// A directory.
    Dir(DirStore),
}

/// A bucket and prefix with a connected client.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

/// A local directory.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: PathBuf,
}

/// An object being written; see [`BackupStore::upload`].
pub enum Upload {
    /// A multipart upload.
    S3 {
        /// The store.
        store: S3Store,
        /// Full object key.
        key: String,
        /// The multipart upload id.
        id: String,
        /// Parts sent so far.
        parts: Vec<CompletedPart>,
    },
    /// A temp file renamed into place on completion.
    Dir(AtomicFile),
}

/// Options of a new object.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOptions {
    /// Ask the store to encrypt the object at rest (`x-amz-server-side-encryption:
    /// AES256`): for plaintext exports only; backups are already sealed.
    pub server_side_encryption: bool,
}

impl BackupStore {
    /// A directory store (created on first write).
    ///
    /// ```
    /// let s = rampart_persistence::backup::BackupStore::dir(std::path::Path::new("/tmp/b"));
    /// assert_eq!(s.describe(), "/tmp/b");
    /// ```
    pub fn dir(root: &Path) -> BackupStore {
        BackupStore::Dir(DirStore {
            root: root.to_path_buf(),
        })
    }

    /// Connects to a bucket: ring-based rustls, the standard AWS credential
    /// chain, retries with backoff on throttling, 5xx and network errors.
    ///
    /// ```no_run
    /// # async fn f() -> anyhow::Result<()> {
    /// use rampart_persistence::backup::{BackupStore, S3Config};
    /// let store = BackupStore::s3(&S3Config::new("backups", "rampart/")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn s3(cfg: &S3Config) -> StoreResult<BackupStore> {
        if cfg.bucket.is_empty() {
            return Err(StoreError::Failed("no S3 bucket given".into()));
        }
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let retry = RetryConfig::standard()
            .with_max_attempts(5)
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(5));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(120))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(r) = &cfg.region {
            loader = loader.region(Region::new(r.clone()));
        }
        let sdk = loader.load().await;
        let mut b = aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(cfg.path_style)
            // Self-hosted stores (Garage) refuse per-part checksums in
            // CompleteMultipartUpload; ETags are what S3 itself needs.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if sdk.region().is_none() {
            b = b.region(Region::new("us-east-1"));
        }
        if let Some(e) = &cfg.endpoint {
            b = b.endpoint_url(e.clone());
        }
        let mut prefix = cfg.prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(BackupStore::S3(S3Store {
            client: aws_sdk_s3::Client::from_conf(b.build()),
            bucket: cfg.bucket.clone(),
            prefix,
        }))
    }

    /// `s3://bucket/prefix/` or the directory, for messages.
    pub fn describe(&self) -> String {
        match self {
            BackupStore::S3(s) => format!("s3://{}/{}", s.bucket, s.prefix),
            BackupStore::Dir(d) => d.root.display().to_string(),
        }
    }

    /// Writes a small object in one request, replacing any of that name.
    pub async fn put(&self, name: &str, body: Vec<u8>) -> StoreResult<()> {
        match self {
            BackupStore::S3(s) => {
                let key = s.key(name);
                s.client
                    .put_object()
                    .bucket(&s.bucket)
                    .key(&key)
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map_err(|e| s.error("writing", &key, e))?;
                Ok(())
            }
            BackupStore::Dir(d) => {
                d.ensure()?;
                let path = d.path(name);
                let r = (|| {
                    let mut f = AtomicFile::create(&path)?;
                    f.write_all(&body)?;
                    f.commit()
                })();
                r.map_err(|e| StoreError::Failed(format!("writing {}: {e:#}", path.display())))
            }
        }
    }

    /// Reads a whole small object (at most `limit` bytes, else an error).
    pub async fn get_small(&self, name: &str, limit: u64) -> StoreResult<Vec<u8>> {
        let size = self
            .size(name)
            .await?
            .ok_or_else(|| StoreError::NotFound(self.object(name)))?;
        if size > limit {
            return Err(StoreError::Failed(format!(
                "{} is {size} bytes, more than the {limit} expected",
                self.object(name)
            )));
        }
        self.get(name).await
    }

    /// Reads a whole object.
    pub async fn get(&self, name: &str) -> StoreResult<Vec<u8>> {
        match self {
            BackupStore::S3(s) => s.fetch(name, None).await,
            BackupStore::Dir(d) => {
                let path = d.path(name);
                std::fs::read(&path).map_err(|e| d.error(&path, e))
            }
        }
    }

    /// Reads `len` bytes from `start` (fewer at the end of the object).
    pub async fn get_range(&self, name: &str, start: u64, len: u64) -> StoreResult<Vec<u8>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        match self {
            BackupStore::S3(s) => {
                s.fetch(name, Some(format!("bytes={}-{}", start, start + len - 1)))
                    .await
            }
            BackupStore::Dir(d) => {
                use std::io::{Read, Seek, SeekFrom};
                let path = d.path(name);
                let mut f = std::fs::File::open(&path).map_err(|e| d.error(&path, e))?;
                f.seek(SeekFrom::Start(start))
                    .map_err(|e| d.error(&path, e))?;
                let mut buf = Vec::new();
                f.take(len)
                    .read_to_end(&mut buf)
                    .map_err(|e| d.error(&path, e))?;
                Ok(buf)
            }
        }
    }

    /// The object's size, `None` when it does not exist.
    pub async fn size(&self, name: &str) -> StoreResult<Option<u64>> {
        match self {
            BackupStore::S3(s) => {
                let key = s.key(name);
                match s
                    .client
                    .head_object()
                    .bucket(&s.bucket)
                    .key(&key)
                    .send()
                    .await
                {
                    Ok(h) => Ok(Some(h.content_length().unwrap_or(0).max(0) as u64)),
                    Err(e) => match s.error("looking up", &key, e) {
                        StoreError::NotFound(_) => Ok(None),
                        e => Err(e),
                    },
                }
            }
            BackupStore::Dir(d) => match std::fs::metadata(d.path(name)) {
                Ok(m) => Ok(Some(m.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(d.error(&d.path(name), e)),
            },
        }
    }

    /// Every object name under the prefix, sorted.
    pub async fn list(&self) -> StoreResult<Vec<String>> {
        let mut names = Vec::new();
        match self {
            BackupStore::S3(s) => {
                let mut pages = s
                    .client
                    .list_objects_v2()
                    .bucket(&s.bucket)
                    .prefix(&s.prefix)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| s.error("listing", &s.prefix, e))?;
                    for o in page.contents() {
                        if let Some(rest) = o.key().and_then(|k| k.strip_prefix(&s.prefix)) {
                            if !rest.contains('/') {
                                names.push(rest.to_string());
                            }
                        }
                    }
                }
            }
            BackupStore::Dir(d) => {
                let entries = match std::fs::read_dir(&d.root) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
                    Err(e) => return Err(d.error(&d.root, e)),
                };
                for e in entries.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    if !n.starts_with('.') && e.file_type().map(|t| t.is_file()).unwrap_or(false) {
                        names.push(n);
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Deletes an object (no error when it is already gone).
    pub async fn delete(&self, name: &str) -> StoreResult<()> {
        match self {
            BackupStore::S3(s) => {
                let key = s.key(name);
                s.client
                    .delete_object()
                    .bucket(&s.bucket)
                    .key(&key)
                    .send()
                    .await
                    .map_err(|e| s.error("deleting", &key, e))?;
                Ok(())
            }
            BackupStore::Dir(d) => match std::fs::remove_file(d.path(name)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(d.error(&d.path(name), e)),
            },
        }
    }

    /// Copies an object inside the store: S3 CopyObject (the bytes never
    /// leave the store), or a file copy renamed into place.
    pub async fn copy(&self, from: &str, to: &str) -> StoreResult<()> {
        match self {
            BackupStore::S3(s) => {
                let (src, dst) = (s.key(from), s.key(to));
                s.client
                    .copy_object()
                    .bucket(&s.bucket)
                    .key(&dst)
                    .copy_source(format!("{}/{}", s.bucket, src))
                    .send()
                    .await
                    .map_err(|e| s.error("copying", &src, e))?;
                Ok(())
            }
            BackupStore::Dir(d) => {
                let (src, dst) = (d.path(from), d.path(to));
                let r = (|| {
                    let mut input = std::fs::File::open(&src)?;
                    let mut f = AtomicFile::create(&dst)?;
                    std::io::copy(&mut input, f.file()?)?;
                    f.commit()
                })();
                r.map_err(|e| {
                    StoreError::Failed(format!(
                        "copying {} to {}: {e:#}",
                        src.display(),
                        dst.display()
                    ))
                })
            }
        }
    }

    /// Starts writing an object that appears only on [`Upload::complete`].
    pub async fn upload(&self, name: &str, opts: PutOptions) -> StoreResult<Upload> {
        match self {
            BackupStore::S3(s) => {
                let key = s.key(name);
                let mut req = s
                    .client
                    .create_multipart_upload()
                    .bucket(&s.bucket)
                    .key(&key);
                if opts.server_side_encryption {
                    req = req.server_side_encryption(ServerSideEncryption::Aes256);
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| s.error("starting the upload of", &key, e))?;
                let id = out.upload_id().unwrap_or_default().to_string();
                Ok(Upload::S3 {
                    store: s.clone(),
                    key,
                    id,
                    parts: Vec::new(),
                })
            }
            BackupStore::Dir(d) => {
                d.ensure()?;
                let path = d.path(name);
                AtomicFile::create(&path)
                    .map(Upload::Dir)
                    .map_err(|e| StoreError::Failed(format!("writing {}: {e:#}", path.display())))
            }
        }
    }

    /// Appends `len` bytes of object `from`, from `start`, to `up` as its
    /// next part. On S3 with UploadPartCopy, so the bytes never leave the
    /// store; a directory copies them through memory. S3 parts but the last
    /// must be at least 5 MiB.
    pub async fn part_copy(
        &self,
        up: &mut Upload,
        from: &str,
        start: u64,
        len: u64,
    ) -> StoreResult<()> {
        match (self, &mut *up) {
            (
                BackupStore::S3(s),
                Upload::S3 {
                    store,
                    key,
                    id,
                    parts,
                },
            ) => {
                let n = parts.len() as i32 + 1;
                let out = store
                    .client
                    .upload_part_copy()
                    .bucket(&store.bucket)
                    .key(key.as_str())
                    .upload_id(id.as_str())
                    .part_number(n)
                    .copy_source(format!("{}/{}", s.bucket, s.key(from)))
                    .copy_source_range(format!("bytes={}-{}", start, start + len - 1))
                    .send()
                    .await
                    .map_err(|e| store.error("copying a part into", key, e))?;
                let etag = out
                    .copy_part_result()
                    .and_then(|r| r.e_tag())
                    .map(str::to_string);
                parts.push(
                    CompletedPart::builder()
                        .part_number(n)
                        .set_e_tag(etag)
                        .build(),
                );
                Ok(())
            }
            _ => {
                let body = self.get_range(from, start, len).await?;
                up.part(body).await
            }
        }
    }

    /// The largest part [`part_copy`](BackupStore::part_copy) should be
    /// asked for: large inside S3, one buffer's worth through memory.
    pub fn copy_part_size(&self) -> u64 {
        match self {
            BackupStore::S3(_) => 512 << 20,
            BackupStore::Dir(_) => 8 << 20,
        }
    }

    /// Multipart uploads started under the prefix and neither completed nor
    /// aborted (always none for a directory).
    pub async fn incomplete_uploads(&self) -> StoreResult<Vec<String>> {
        match self {
            BackupStore::S3(s) => {
                let out = s
                    .client
                    .list_multipart_uploads()
                    .bucket(&s.bucket)
                    .prefix(&s.prefix)
                    .send()
                    .await
                    .map_err(|e| s.error("listing uploads under", &s.prefix, e))?;
                Ok(out
                    .uploads()
                    .iter()
                    .filter_map(|u| u.key().map(str::to_string))
                    .collect())
            }
            BackupStore::Dir(_) => Ok(Vec::new()),
        }
    }

    /// The full name of object `name`, for messages.
    pub fn object(&self, name: &str) -> String {
        match self {
            BackupStore::S3(s) => format!("s3://{}/{}", s.bucket, s.key(name)),
            BackupStore::Dir(d) => d.path(name).display().to_string(),
        }
    }
}

impl Upload {
    /// Sends the next part. S3 parts but the last must be at least 5 MiB.
    pub async fn part(&mut self, body: Vec<u8>) -> StoreResult<()> {
        match self {
            Upload::S3 {
                store,
                key,
                id,
                parts,
            } => {
                let n = parts.len() as i32 + 1;
                let out = store
                    .client
                    .upload_part()
                    .bucket(&store.bucket)
                    .key(key.as_str())
                    .upload_id(id.as_str())
                    .part_number(n)
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .map_err(|e| store.error("uploading a part of", key, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(n)
                        .set_e_tag(out.e_tag().map(str::to_string))
                        .build(),
                );
                Ok(())
            }
            Upload::Dir(f) => {
                let path = f.temp_path().to_path_buf();
                f.file()
                    .and_then(|file| Ok(file.write_all(&body)?))
                    .map_err(|e| StoreError::Failed(format!("writing {}: {e:#}", path.display())))
            }
        }
    }

    /// Makes the object visible, whole.
    pub async fn complete(self) -> StoreResult<()> {
        match self {
            Upload::S3 {
                store,
                key,
                id,
                parts,
            } => {
                let done = store
                    .client
                    .complete_multipart_upload()
                    .bucket(&store.bucket)
                    .key(&key)
                    .upload_id(&id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await;
                if let Err(e) = done {
                    let err = store.error("completing the upload of", &key, e);
                    abort_s3(&store, &key, &id).await;
                    return Err(err);
                }
                Ok(())
            }
            Upload::Dir(f) => f.commit().map_err(|e| StoreError::Failed(format!("{e:#}"))),
        }
    }

    /// Gives up: the store keeps no part of it.
    pub async fn abort(self) {
        match self {
            Upload::S3 { store, key, id, .. } => abort_s3(&store, &key, &id).await,
            Upload::Dir(f) => drop(f),
        }
    }
}

async fn abort_s3(store: &S3Store, key: &str, id: &str) {
    if let Err(e) = store
        .client
        .abort_multipart_upload()
        .bucket(&store.bucket)
        .key(key)
        .upload_id(id)
        .send()
        .await
    {
        tracing::warn!(
            "Could not abort the multipart upload of s3://{}/{key} ({}); the bucket's lifecycle rule for incomplete uploads will remove its parts",
            store.bucket,
            DisplayErrorContext(&e)
        );
    }
}

impl S3Store {
    fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// GetObject, whole or the HTTP `range` given.
    async fn fetch(&self, name: &str, range: Option<String>) -> StoreResult<Vec<u8>> {
        let key = self.key(name);
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .set_range(range)
            .send()
            .await
            .map_err(|e| self.error("reading", &key, e))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Failed(format!("reading {key}: {e}")))?;
        Ok(body.into_bytes().to_vec())
    }

    /// One clear line per failure: missing bucket or object, refused
    /// credentials, or what the SDK says after its retries.
    fn error<E>(&self, doing: &str, key: &str, e: SdkError<E, HttpResponse>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().map(str::to_string);
        let where_ = format!("s3://{}/{}", self.bucket, key);
        match code.as_deref() {
            Some("NoSuchKey") | Some("NotFound") => return StoreError::NotFound(where_),
            Some("NoSuchBucket") => {
                return StoreError::Failed(format!(
                    "{doing} {where_}: the bucket {} does not exist",
                    self.bucket
                ))
            }
            Some("InvalidAccessKeyId") | Some("SignatureDoesNotMatch") | Some("AccessDenied") => {
                return StoreError::Failed(format!(
                    "{doing} {where_}: access denied ({}: {}); check the AWS credentials",
                    code.unwrap_or_default(),
                    e.message().unwrap_or("")
                ))
            }
            _ => {}
        }
        if status == Some(404) {
            return StoreError::NotFound(where_);
        }
        if status == Some(403) {
            return StoreError::Failed(format!(
                "{doing} {where_}: access denied (HTTP 403); check the AWS credentials"
            ));
        }
        StoreError::Failed(format!("{doing} {where_}: {}", DisplayErrorContext(&e)))
    }
}

impl DirStore {
    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn ensure(&self) -> StoreResult<()> {
        std::fs::create_dir_all(&self.root).map_err(|e| {
            StoreError::Failed(format!(
                "cannot create the backup directory {}: {e}",
                self.root.display()
            ))
        })
    }

    fn error(&self, path: &Path, e: std::io::Error) -> StoreError {
        if e.kind() == std::io::ErrorKind::NotFound {
            StoreError::NotFound(path.display().to_string())
        } else {
            StoreError::Failed(format!("{}: {e}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_directory_upload_appears_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::dir(&dir.path().join("b"));
        let mut up = store.upload("x", PutOptions::default()).await.unwrap();
        up.part(b"hello ".to_vec()).await.unwrap();
        up.part(b"world".to_vec()).await.unwrap();
        assert_eq!(store.size("x").await.unwrap(), None);
        up.complete().await.unwrap();
        assert_eq!(store.get("x").await.unwrap(), b"hello world");
        assert_eq!(store.get_range("x", 6, 100).await.unwrap(), b"world");
        let mut up = store.upload("y", PutOptions::default()).await.unwrap();
        up.part(b"partial".to_vec()).await.unwrap();
        up.abort().await;
        assert_eq!(store.list().await.unwrap(), vec!["x".to_string()]);
        store.copy("x", "z").await.unwrap();
        store.delete("x").await.unwrap();
        assert!(matches!(store.get("x").await, Err(StoreError::NotFound(_))));
        assert_eq!(store.get("z").await.unwrap(), b"hello world");
    }
}
