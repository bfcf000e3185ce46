//! The AWS KMS provider: `GenerateDataKey` (AES_256), `Decrypt`, `Encrypt`
//! and `ReEncrypt`, with an encryption context naming the dataset and purpose.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use aws_smithy_http_client::tls;
use aws_smithy_types::error::display::DisplayErrorContext;
use zeroize::{Zeroize, Zeroizing};

use crate::{AuditLog, DataKey, Error, KeyContext, KeySlot, PROVIDER_AWS, Result};

/// How to reach KMS and which key to use.
///
/// ```
/// let c = rampart_kms::AwsKmsConfig { key_id: Some("alias/rampart".into()), ..Default::default() };
/// assert_eq!(c.max_attempts, 4);
/// ```
#[derive(Debug, Clone)]
pub struct AwsKmsConfig {
    /// Key id, ARN, alias name (`alias/…`) or alias ARN that wraps new data
    /// keys; not needed to decrypt (slots name their key).
    pub key_id: Option<String>,
    /// Region; otherwise from the standard chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// Endpoint URL for a non-AWS endpoint; otherwise `AWS_ENDPOINT_URL_KMS`,
    /// `AWS_ENDPOINT_URL`, or the regional AWS endpoint.
    pub endpoint: Option<String>,
    /// Attempts per call, first included (retries on throttling, 5xx and
    /// network errors, with exponential backoff and jitter).
    pub max_attempts: u32,
    /// TCP/TLS connect timeout per attempt.
    pub connect_timeout: Duration,
    /// Timeout of one attempt.
    pub attempt_timeout: Duration,
    /// Timeout of a whole call, retries included.
    pub operation_timeout: Duration,
    /// Fixed credentials instead of the standard chain: for KMS-compatible
    /// test endpoints only. `None` (the default) uses the standard chain.
    pub static_credentials: Option<StaticCredentials>,
}

/// An access key pair for [`AwsKmsConfig::static_credentials`]; its `Debug`
/// hides the secret.
///
/// ```
/// let c = rampart_kms::StaticCredentials::new("test", "secret");
/// assert!(!format!("{c:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct StaticCredentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
}

impl StaticCredentials {
    /// An access key id and secret.
    ///
    /// ```
    /// let _ = rampart_kms::StaticCredentials::new("test", "test");
    /// ```
    pub fn new(access_key_id: &str, secret_access_key: &str) -> Self {
        StaticCredentials {
            access_key_id: access_key_id.to_string(),
            secret_access_key: Zeroizing::new(secret_access_key.to_string()),
        }
    }
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticCredentials({}, <redacted>)", self.access_key_id)
    }
}

impl Default for AwsKmsConfig {
    fn default() -> Self {
        AwsKmsConfig {
            key_id: None,
            region: None,
            endpoint: None,
            max_attempts: 4,
            connect_timeout: Duration::from_secs(3),
            attempt_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            static_credentials: None,
        }
    }
}

/// A connected KMS client.
///
/// ```no_run
/// # async fn f() -> rampart_kms::Result<()> {
/// use rampart_kms::*;
/// let kms = AwsKms::connect(&AwsKmsConfig { key_id: Some("alias/rampart".into()), ..Default::default() }, AuditLog::disabled()).await?;
/// let (key, slot) = kms.generate_data_key(&KeyContext::new("cache-1", Payload::Snapshot)).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AwsKms {
    client: aws_sdk_kms::Client,
    key_id: Option<String>,
    audit: AuditLog,
}

impl AwsKms {
    /// Builds the client: ring-based rustls, the standard credential chain,
    /// bounded retries and timeouts.
    ///
    /// ```no_run
    /// # async fn f() -> rampart_kms::Result<()> {
    /// let kms = rampart_kms::AwsKms::connect(&Default::default(), rampart_kms::AuditLog::disabled()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(cfg: &AwsKmsConfig, audit: AuditLog) -> Result<AwsKms> {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let retry = RetryConfig::standard()
            .with_max_attempts(cfg.max_attempts.max(1))
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_secs(2));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(cfg.connect_timeout)
            .operation_attempt_timeout(cfg.attempt_timeout)
            .operation_timeout(cfg.operation_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(r) = &cfg.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(e) = &cfg.endpoint {
            loader = loader.endpoint_url(e.clone());
        }
        if let Some(c) = &cfg.static_credentials {
            loader = loader.credentials_provider(aws_sdk_kms::config::Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.to_string(),
                None,
                None,
                "rampart-static",
            ));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(Error::Config(
                "no AWS region for KMS: set kms-region (or AWS_REGION / a profile region)".into(),
            ));
        }
        Ok(AwsKms {
            client: aws_sdk_kms::Client::new(&sdk),
            key_id: cfg.key_id.clone(),
            audit,
        })
    }

    /// The configured key id (as given: id, ARN or alias).
    ///
    /// ```no_run
    /// # async fn f(kms: rampart_kms::AwsKms) { let _ = kms.key_id(); }
    /// ```
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The underlying SDK client (tests use it to manage keys).
    ///
    /// ```no_run
    /// # async fn f(kms: rampart_kms::AwsKms) { let _c = kms.client(); }
    /// ```
    pub fn client(&self) -> &aws_sdk_kms::Client {
        &self.client
    }

    fn require_key_id(&self) -> Result<&str> {
        self.key_id.as_deref().ok_or_else(|| {
            Error::Config("no KMS key configured (kms-key-id) to wrap new data keys".into())
        })
    }

    fn context(ctx: &KeyContext) -> HashMap<String, String> {
        ctx.encryption_context().into_iter().collect()
    }

    fn audited<T>(
        &self,
        op: &'static str,
        key_id: &str,
        ctx: &KeyContext,
        r: Result<T>,
    ) -> Result<T> {
        match &r {
            Ok(_) => self.audit.record(op, PROVIDER_AWS, key_id, ctx, None),
            Err(e) => self
                .audit
                .record(op, PROVIDER_AWS, key_id, ctx, Some(&e.to_string())),
        }
        r
    }

    /// `GenerateDataKey` (AES_256) under the configured key.
    ///
    /// ```no_run
    /// # async fn f(kms: rampart_kms::AwsKms) -> rampart_kms::Result<()> {
    /// use rampart_kms::*;
    /// let (key, slot) = kms.generate_data_key(&KeyContext::new("d", Payload::Backup)).await?;
    /// assert_eq!(slot.provider, "aws-kms");
    /// # Ok(()) }
    /// ```
    pub async fn generate_data_key(&self, ctx: &KeyContext) -> Result<(DataKey, KeySlot)> {
        let key_id = self.require_key_id()?;
        let r = async {
            let out = self
                .client
                .generate_data_key()
                .key_id(key_id)
                .key_spec(DataKeySpec::Aes256)
                .set_encryption_context(Some(Self::context(ctx)))
                .send()
                .await
                .map_err(|e| map_err("GenerateDataKey", key_id, e))?;
            let dk = take_key(out.plaintext, "GenerateDataKey", key_id)?;
            let wrapped = out
                .ciphertext_blob
                .map(Blob::into_inner)
                .ok_or_else(|| malformed("GenerateDataKey", key_id, "no CiphertextBlob"))?;
            // Slots name the key by ARN, whatever alias was configured, so the
            // stream stays readable if the alias moves.
            let arn = out.key_id.unwrap_or_else(|| key_id.to_string());
            Ok((dk, KeySlot::new(PROVIDER_AWS, arn, wrapped)))
        }
        .await;
        // Audit under the ARN KMS resolved (as CloudTrail does), or the
        // configured id when the call failed.
        let audited_id = r
            .as_ref()
            .map(|(_, s)| s.key_id.clone())
            .unwrap_or_else(|_| key_id.to_string());
        self.audited("GenerateDataKey", &audited_id, ctx, r)
    }

    /// `Decrypt` of a slot made by KMS, with the same encryption context.
    ///
    /// ```no_run
    /// # async fn f(kms: rampart_kms::AwsKms, slot: rampart_kms::KeySlot) -> rampart_kms::Result<()> {
    /// use rampart_kms::*;
    /// let key = kms.decrypt_data_key(&slot, &KeyContext::new("d", Payload::Backup)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn decrypt_data_key(&self, slot: &KeySlot, ctx: &KeyContext) -> Result<DataKey> {
        let key_id = slot.key_id.as_str();
        let r = async {
            let out = self
                .client
                .decrypt()
                .key_id(key_id)
                .ciphertext_blob(Blob::new(slot.wrapped.clone()))
                .set_encryption_context(Some(Self::context(ctx)))
                .send()
                .await
                .map_err(|e| map_err("Decrypt", key_id, e))?;
            take_key(out.plaintext, "Decrypt", key_id)
        }
        .await;
        self.audited("Decrypt", key_id, ctx, r)
    }

    /// `Encrypt` of an existing data key under the configured key (rewrap
    /// from a local keyring into KMS).
    ///
    /// ```no_run
    /// # async fn f(kms: rampart_kms::AwsKms) -> rampart_kms::Result<()> {
    /// use rampart_kms::*;
    /// let slot = kms.wrap(&DataKey::generate()?, &KeyContext::new("d", Payload::Backup)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wrap(&self, data_key: &DataKey, ctx: &KeyContext) -> Result<KeySlot> {
        let key_id = self.require_key_id()?;
        let r = async {
            let out = self
                .client
                .encrypt()
                .key_id(key_id)
                .plaintext(Blob::new(data_key.bytes().to_vec()))
                .set_encryption_context(Some(Self::context(ctx)))
                .send()
                .await
                .map_err(|e| map_err("Encrypt", key_id, e))?;
            let wrapped = out
                .ciphertext_blob
                .map(Blob::into_inner)
                .ok_or_else(|| malformed("Encrypt", key_id, "no CiphertextBlob"))?;
            let arn = out.key_id.unwrap_or_else(|| key_id.to_string());
            Ok(KeySlot::new(PROVIDER_AWS, arn, wrapped))
        }
        .await;
        self.audited("Encrypt", key_id, ctx, r)
    }

    /// `ReEncrypt` of a KMS slot to `dest_key_id`: the data key never leaves
    /// KMS.
    ///
    /// ```no_run
    /// # async fn f(kms: rampart_kms::AwsKms, slot: rampart_kms::KeySlot) -> rampart_kms::Result<()> {
    /// use rampart_kms::*;
    /// let new_slot = kms.re_encrypt(&slot, &KeyContext::new("d", Payload::Backup), "alias/other").await?;
    /// # Ok(()) }
    /// ```
    pub async fn re_encrypt(
        &self,
        slot: &KeySlot,
        ctx: &KeyContext,
        dest_key_id: &str,
    ) -> Result<KeySlot> {
        let key_id = slot.key_id.as_str();
        let r = async {
            let out = self
                .client
                .re_encrypt()
                .ciphertext_blob(Blob::new(slot.wrapped.clone()))
                .source_key_id(key_id)
                .set_source_encryption_context(Some(Self::context(ctx)))
                .destination_key_id(dest_key_id)
                .set_destination_encryption_context(Some(Self::context(ctx)))
                .send()
                .await
                .map_err(|e| map_err("ReEncrypt", key_id, e))?;
            let wrapped = out
                .ciphertext_blob
                .map(Blob::into_inner)
                .ok_or_else(|| malformed("ReEncrypt", key_id, "no CiphertextBlob"))?;
            let arn = out.key_id.unwrap_or_else(|| dest_key_id.to_string());
            Ok(KeySlot::new(PROVIDER_AWS, arn, wrapped))
        }
        .await;
        self.audited("ReEncrypt", key_id, ctx, r)
    }
}

fn malformed(operation: &'static str, key_id: &str, what: &str) -> Error {
    Error::Kms {
        operation,
        key_id: key_id.to_string(),
        code: "MalformedResponse".into(),
        message: what.into(),
    }
}

/// Moves a plaintext key out of the SDK's blob and wipes the blob's copy.
fn take_key(blob: Option<Blob>, operation: &'static str, key_id: &str) -> Result<DataKey> {
    let mut bytes = Zeroizing::new(
        blob.map(Blob::into_inner)
            .ok_or_else(|| malformed(operation, key_id, "no Plaintext"))?,
    );
    if bytes.len() != 32 {
        let n = bytes.len();
        bytes.zeroize();
        return Err(malformed(
            operation,
            key_id,
            &format!("plaintext data key is {n} bytes, expected 32"),
        ));
    }
    let mut k = [0u8; 32];
    k.copy_from_slice(&bytes);
    let dk = DataKey::from_bytes(k);
    k.zeroize();
    Ok(dk)
}

/// Turns an SDK error into the variant a user can act on.
fn map_err<E, R>(operation: &'static str, key_id: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let key_id = key_id.to_string();
    let unavailable = |message: String| Error::KmsUnavailable {
        operation,
        key_id: key_id.clone(),
        message,
    };
    match &err {
        SdkError::TimeoutError(_) => {
            return unavailable("timed out waiting for the KMS endpoint".into());
        }
        SdkError::DispatchFailure(_) => {
            return unavailable(format!(
                "cannot reach the KMS endpoint: {}",
                DisplayErrorContext(&err)
            ));
        }
        SdkError::ResponseError(_) => {
            return unavailable(format!(
                "unreadable response from the KMS endpoint: {}",
                DisplayErrorContext(&err)
            ));
        }
        _ => {}
    }
    let code = err.code().unwrap_or("Unknown").to_string();
    let message = err.message().unwrap_or("").to_string();
    match code.as_str() {
        "DisabledException" => Error::KmsKeyDisabled { key_id },
        "KMSInvalidStateException" if message.to_ascii_lowercase().contains("pending deletion") => {
            Error::KmsKeyPendingDeletion { key_id }
        }
        "KMSInvalidStateException" => Error::KmsKeyInvalidState { key_id, message },
        "NotFoundException" => Error::KmsKeyNotFound { key_id },
        "AccessDeniedException" => Error::KmsAccessDenied {
            key_id,
            operation,
            message,
        },
        "InvalidCiphertextException" => Error::KmsWrongContext { key_id },
        "ThrottlingException"
        | "LimitExceededException"
        | "KMSInternalException"
        | "DependencyTimeoutException"
        | "KeyUnavailableException" => unavailable(format!("{code}: {message}")),
        _ => Error::Kms {
            operation,
            key_id,
            code,
            message: if message.is_empty() {
                DisplayErrorContext(&err).to_string()
            } else {
                message
            },
        },
    }
}
