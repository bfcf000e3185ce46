//! The S3-compatible store the backup tests use (Garage, started by
//! `scripts/services.sh`, which exports `RAMPART_TEST_S3_*`), each test
//! under a prefix of its own.

use std::net::TcpStream;

use anyhow::{anyhow, Context, Result};
use rampart_persistence::backup::{BackupStore, S3Config};

/// An environment variable `scripts/services.sh` exports; an error that
/// says how to start the services when it is unset.
pub fn env(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| {
        anyhow!("{name} is not set: start the services with `eval \"$(scripts/services.sh start)\"` (scripts/test.sh does)")
    })
}

/// Fails unless something listens at `url` (`http://host:port`).
pub fn reachable(url: &str) -> Result<()> {
    let addr = url.trim_start_matches("http://").trim_end_matches('/');
    TcpStream::connect(addr)
        .map(|_| ())
        .with_context(|| format!("{url} is unreachable: is the service running?"))
}

/// The test bucket's settings, under a fresh prefix of this test's own.
pub struct S3 {
    /// The endpoint URL.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region Garage signs for.
    pub region: String,
    /// This test's own prefix (`test-<random>/`).
    pub prefix: String,
}

impl S3 {
    /// The store under a fresh prefix `<test>-<random>/`; fails when the
    /// services are not running.
    ///
    /// ```no_run
    /// let s3 = rampart_tests::s3::S3::new("my-test").unwrap();
    /// assert!(s3.prefix.starts_with("my-test-"));
    /// ```
    pub fn new(test: &str) -> Result<S3> {
        let endpoint = env("RAMPART_TEST_S3_ENDPOINT")?;
        reachable(&endpoint)?;
        Ok(S3 {
            endpoint,
            bucket: env("RAMPART_TEST_S3_BUCKET")?,
            region: env("RAMPART_TEST_S3_REGION")?,
            prefix: format!("{test}-{:08x}/", rand_u32()),
        })
    }

    /// Server directives naming this store.
    pub fn server_args(&self) -> Vec<String> {
        [
            "--backup-s3-bucket",
            &self.bucket,
            "--backup-s3-prefix",
            &self.prefix,
            "--backup-s3-endpoint",
            &self.endpoint,
            "--backup-s3-region",
            &self.region,
            "--backup-s3-path-style",
            "yes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// `rampart backup` options naming this store.
    pub fn cli_args(&self) -> Vec<String> {
        vec![
            "--store".into(),
            format!("s3://{}/{}", self.bucket, self.prefix),
            "--s3-endpoint".into(),
            self.endpoint.clone(),
            "--s3-region".into(),
            self.region.clone(),
            "--s3-path-style".into(),
        ]
    }

    /// The store's settings with another prefix.
    pub fn config(&self, prefix: &str) -> S3Config {
        S3Config {
            bucket: self.bucket.clone(),
            prefix: prefix.to_string(),
            endpoint: Some(self.endpoint.clone()),
            region: Some(self.region.clone()),
            path_style: true,
        }
    }

    /// Connects to the store (this test's prefix).
    pub fn store(&self) -> Result<BackupStore> {
        Ok(rt()?.block_on(BackupStore::s3(&self.config(&self.prefix)))?)
    }
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t ^ std::process::id().rotate_left(16)
}

/// A current-thread runtime to drive the store with.
pub fn rt() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
