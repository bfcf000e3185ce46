//! `rampart backup list|describe|create|copy|delete|restore|export`: work
//! on a backup store directly, no server needed (but for `create`, which
//! asks a running server). Errors use `anyhow`: binary-facing code.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use rampart_kms::cli::KeyArgs;
use rampart_kms::{EnvelopeParams, Payload, Provider, PROVIDER_AWS};
use tokio::runtime::Handle;

use super::{BackupStore, Manifest, PutOptions, S3Config, Source};
use crate::dataset::Dataset;
use crate::snapshot::Protection;

/// Where the backups are.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// `s3://bucket/prefix` or a local directory.
    #[arg(long, value_name = "STORE")]
    pub store: String,
    /// S3 endpoint URL of a non-AWS store (Garage, MinIO, Ceph); else
    /// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL or AWS.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// S3 region (else the standard AWS chain, else us-east-1).
    #[arg(long, value_name = "REGION")]
    pub s3_region: Option<String>,
    /// Path-style S3 addressing (most self-hosted stores need it).
    #[arg(long)]
    pub s3_path_style: bool,
}

/// Parses `s3://bucket/prefix` into bucket and prefix, `None` for a path.
///
/// ```
/// use rampart_persistence::backup::cli::parse_s3_url;
/// assert_eq!(parse_s3_url("s3://b/x/y"), Some(("b".to_string(), "x/y".to_string())));
/// assert_eq!(parse_s3_url("s3://b"), Some(("b".to_string(), String::new())));
/// assert_eq!(parse_s3_url("/srv/backups"), None);
/// ```
pub fn parse_s3_url(s: &str) -> Option<(String, String)> {
    let rest = s.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    Some((bucket.to_string(), prefix.to_string()))
}

impl StoreArgs {
    /// Connects to the store these options name, with `store` in place of
    /// `--store`.
    pub async fn open_at(&self, store: &str) -> anyhow::Result<BackupStore> {
        match parse_s3_url(store) {
            Some((bucket, prefix)) => Ok(BackupStore::s3(&S3Config {
                bucket,
                prefix,
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                path_style: self.s3_path_style,
            })
            .await?),
            None => Ok(BackupStore::dir(Path::new(store))),
        }
    }

    /// Connects to the store.
    pub async fn open(&self) -> anyhow::Result<BackupStore> {
        self.open_at(&self.store).await
    }
}

/// Backup subcommands.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// List the backups in a store, oldest first.
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Print the manifests as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a backup's manifest and the state of its key.
    Describe {
        /// Backup name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Ask a running server for a backup (BACKUP CREATE) and wait for it.
    Create {
        /// Backup name (default: manual-<time>).
        name: Option<String>,
        /// The server, host:port.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:6379")]
        server: String,
        /// Password of the server's default user (else REDISCLI_AUTH).
        #[arg(long, value_name = "PASSWORD")]
        password: Option<String>,
        /// Encrypt under this KMS key instead of the dataset's.
        #[arg(long = "kms-key-id", value_name = "ID", conflicts_with = "key_file")]
        kms_key_id: Option<String>,
        /// Encrypt under this local keyring (a path on the server's machine).
        #[arg(long = "key-file", value_name = "PATH")]
        key_file: Option<PathBuf>,
    },
    /// Copy a backup, under the same key or another (only the key slot is
    /// rewrapped; the encrypted body is copied unchanged).
    Copy {
        /// Source backup.
        name: String,
        /// The copy's name.
        new: String,
        /// Rewrap to this local keyring's primary key.
        #[arg(long, value_name = "PATH", conflicts_with = "to_kms_key_id")]
        to_key_file: Option<PathBuf>,
        /// Rewrap to this KMS key.
        #[arg(long, value_name = "ID")]
        to_kms_key_id: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Delete a backup (its manifest first, then its object).
    Delete {
        /// Backup name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Restore a backup (or a plain RDB object) into a new data directory
    /// whose encryption you choose: the key given (--key-file or
    /// --kms-key-id) or none (--no-encryption).
    Restore {
        /// Backup name, or the name of a plain .rdb object in the store.
        name: String,
        /// The new data directory (must be empty or absent).
        #[arg(long, value_name = "DATADIR")]
        dir: PathBuf,
        /// Write the restored dataset without encryption at rest.
        #[arg(long)]
        no_encryption: bool,
        /// The snapshot file name in DATADIR.
        #[arg(long, default_value = "dump.rdb")]
        dbfilename: String,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Export a backup as a plain, standard .rdb file (PLAINTEXT), to a
    /// path or to s3://bucket/key.rdb (uploaded with server-side
    /// encryption requested).
    Export {
        /// Backup name.
        name: String,
        /// Destination: a file path or s3://bucket/key.rdb.
        #[arg(long, value_name = "DEST")]
        to: String,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        key: KeyArgs,
    },
}

/// The provider that reads backup `m`: the one the options name, or, for
/// a KMS-wrapped backup when the options name a keyring (or nothing), KMS
/// with the key the slot names.
async fn reader_for(m: &Manifest, key: &KeyArgs) -> anyhow::Result<Provider> {
    if m.key_provider == PROVIDER_AWS && !key.is_kms() && key.config.is_none() {
        return key.kms_provider(None).await;
    }
    if !key.is_given() {
        anyhow::bail!(
            "backup {:?} is sealed under the local key {}: give --key-file PATH (the keyring that holds it)",
            m.name,
            m.key_id
        );
    }
    key.provider().await
}

/// Runs `f` on a blocking thread (it drives the store through `rt`).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce(Handle) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || f(rt))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
}

fn print_manifest(m: &Manifest) {
    println!("name:        {}", m.name);
    println!("kind:        {}", m.kind.as_str());
    println!("created:     {}", m.created);
    println!("dataset:     {}", m.dataset);
    println!("node:        {}", m.node);
    if let (Some(id), Some(off)) = (&m.repl_id, m.repl_offset) {
        println!("replication: {id} offset {off}");
    }
    println!("key:         {} {}", m.key_provider, m.key_id);
    println!("object:      {} ({} bytes)", m.object, m.size);
    println!("sha256:      {}", m.sha256);
    println!("rdb size:    {} bytes", m.rdb_size);
    if let Some(s) = &m.source {
        println!("copied from: {s}");
    }
    println!("version:     {}", m.rampart_version);
}

/// Runs a backup subcommand.
///
/// ```no_run
/// # async fn f(cmd: rampart_persistence::backup::cli::BackupCmd) -> anyhow::Result<()> {
/// rampart_persistence::backup::cli::run(cmd).await?;
/// # Ok(()) }
/// ```
pub async fn run(cmd: BackupCmd) -> anyhow::Result<()> {
    match cmd {
        BackupCmd::List { store, json } => {
            let store = store.open().await?;
            let all = super::list(&store).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for m in &all {
                    println!(
                        "{}\t{}\t{}\t{}\t{} {}",
                        m.name,
                        m.kind.as_str(),
                        m.created,
                        m.size,
                        m.key_provider,
                        m.key_id
                    );
                }
                eprintln!("{} backup(s) in {}", all.len(), store.describe());
            }
            Ok(())
        }
        BackupCmd::Describe { name, store, key } => {
            let store = store.open().await?;
            let m = super::manifest(&store, &name).await?;
            print_manifest(&m);
            let state = match reader_for(&m, &key).await {
                Ok(p) => super::key_state(&store, &m, &p).await?,
                Err(e) => super::KeyState::Unknown(format!("{e:#}")),
            };
            println!("key state:   {state}");
            match state {
                super::KeyState::Enabled => Ok(()),
                super::KeyState::Unknown(_) => Ok(()),
                other => anyhow::bail!(
                    "backup {name:?} cannot be restored: its key is {other}; the data it protects cannot be decrypted until the key is available again"
                ),
            }
        }
        BackupCmd::Create {
            name,
            server,
            password,
            kms_key_id,
            key_file,
        } => {
            let mut args = vec!["BACKUP".to_string(), "CREATE".to_string()];
            if let Some(n) = name {
                args.push(n);
            }
            if let Some(k) = kms_key_id {
                args.extend(["KMSKEYID".to_string(), k]);
            }
            if let Some(f) = key_file {
                args.extend(["KEYFILE".to_string(), f.display().to_string()]);
            }
            let password = password.or_else(|| std::env::var("REDISCLI_AUTH").ok());
            let reply = tokio::task::spawn_blocking(move || ask_server(&server, password, &args))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))??;
            println!("{reply}");
            Ok(())
        }
        BackupCmd::Copy {
            name,
            new,
            to_key_file,
            to_kms_key_id,
            store,
            key,
        } => {
            let store = store.open().await?;
            let src = super::manifest(&store, &name).await?;
            let target = match (&to_key_file, &to_kms_key_id) {
                (Some(p), _) => Some(key.keyring_provider(p)?),
                (None, Some(id)) => Some(key.kms_provider(Some(id.clone())).await?),
                (None, None) => None,
            };
            let from = match target {
                Some(_) => reader_for(&src, &key).await?,
                // Same key: nothing is opened; any provider will do.
                None => match key.is_given() {
                    true => key.provider().await?,
                    false => key.kms_provider(None).await?,
                },
            };
            let m = super::copy(&store, &name, &new, &from, target.as_ref()).await?;
            eprintln!(
                "copied backup {name} -> {} (key {} {})",
                m.name, m.key_provider, m.key_id
            );
            Ok(())
        }
        BackupCmd::Delete { name, store } => {
            let store = store.open().await?;
            let m = super::delete(&store, &name).await?;
            eprintln!("deleted backup {} ({} bytes)", m.name, m.size);
            Ok(())
        }
        BackupCmd::Restore {
            name,
            dir,
            no_encryption,
            dbfilename,
            store,
            key,
        } => restore(name, dir, no_encryption, dbfilename, store, key).await,
        BackupCmd::Export {
            name,
            to,
            store,
            key,
        } => {
            let src_store = store.open().await?;
            let m = super::manifest(&src_store, &name).await?;
            let provider = reader_for(&m, &key).await?;
            let (dest, object) = match parse_s3_url(&to) {
                Some((bucket, object)) if !object.is_empty() => {
                    (store.open_at(&format!("s3://{bucket}/")).await?, object)
                }
                Some(_) => anyhow::bail!("--to s3://bucket/key.rdb needs an object key"),
                None => {
                    let p = PathBuf::from(&to);
                    let file = p
                        .file_name()
                        .ok_or_else(|| anyhow::anyhow!("--to {to}: not a file path"))?
                        .to_string_lossy()
                        .into_owned();
                    let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
                    let parent = if parent.as_os_str().is_empty() {
                        PathBuf::from(".")
                    } else {
                        parent
                    };
                    (BackupStore::dir(&parent), file)
                }
            };
            eprintln!(
                "WARNING: exporting backup {name} as a PLAINTEXT .rdb to {}: anyone who can read it reads the data",
                dest.object(&object)
            );
            let bytes = blocking(move |rt| {
                let (m, src) = super::open(&src_store, &rt, &name, &provider)?;
                let opts = PutOptions {
                    server_side_encryption: true,
                };
                let mut up = rt.block_on(dest.upload(&object, opts))?;
                let mut buf = Vec::with_capacity(super::PART_SIZE);
                let mut send = |b: &[u8]| -> std::io::Result<()> {
                    buf.extend_from_slice(b);
                    if buf.len() >= super::PART_SIZE {
                        rt.block_on(up.part(std::mem::take(&mut buf)))
                            .map_err(|e| std::io::Error::other(e.to_string()))?;
                    }
                    Ok(())
                };
                match super::copy_rdb(src, super::Check::Trailer, &mut send) {
                    Ok(_) => {
                        if !buf.is_empty() {
                            rt.block_on(up.part(buf))?;
                        }
                        rt.block_on(up.complete())?;
                        Ok(m.rdb_size)
                    }
                    Err(e) => {
                        rt.block_on(up.abort());
                        Err(e)
                    }
                }
            })
            .await?;
            eprintln!("exported {bytes} bytes of RDB to {to}");
            Ok(())
        }
    }
}

async fn restore(
    name: String,
    dir: PathBuf,
    no_encryption: bool,
    dbfilename: String,
    store: StoreArgs,
    key: KeyArgs,
) -> anyhow::Result<()> {
    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        anyhow::bail!(
            "{} is not empty: restore creates a new data directory (choose an empty or new one)",
            dir.display()
        );
    }
    let store = store.open().await?;
    // The key that reads the source and the one that protects the new
    // dataset: the same options, as for `rampart snapshot decrypt`; a
    // KMS-wrapped backup can still be opened through the key its slot names.
    let is_backup = super::check_name(&name).is_ok()
        && store
            .size(&format!("{name}{}", super::MANIFEST_SUFFIX))
            .await?
            .is_some();
    let source_key = if is_backup {
        let m = super::manifest(&store, &name).await?;
        Some(reader_for(&m, &key).await?)
    } else {
        None
    };
    let target = if no_encryption {
        None
    } else if !key.is_given() {
        anyhow::bail!(
            "choose the new dataset's encryption: --key-file PATH, --kms-key-id ID, or --no-encryption"
        );
    } else {
        Some(key.provider().await?)
    };
    let dataset = match &target {
        None => Dataset::new(false, None, None),
        Some(Provider::Local(_)) => Dataset::new(true, Some("local".into()), None),
        Some(Provider::Aws(a)) => {
            Dataset::new(true, Some("aws".into()), a.key_id().map(str::to_string))
        }
    };
    let protection = match &target {
        None => Protection::Plain,
        Some(p) => {
            let params = EnvelopeParams::new(Payload::Snapshot, &dataset.id);
            let (key, slot) = p.generate_data_key(&params.key_context()?).await?;
            Protection::Encrypted { params, key, slot }
        }
    };
    std::fs::create_dir_all(&dir)?;
    let dest = dir.join(&dbfilename);
    let d2 = dataset.clone();
    let dir2 = dir.clone();
    let result = blocking(move |rt| {
        let (source, src) = super::open_any(&store, &rt, &name, source_key.as_ref())?;
        let keys = super::restore_to(src, source.check(), &dest, protection)?;
        d2.save(&dir2)?;
        Ok((source, keys))
    })
    .await;
    let (source, keys) = match result {
        Ok(r) => r,
        Err(e) => {
            // Nothing half-written: the snapshot was never renamed into
            // place; remove the directory if we made it empty.
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
    };
    let what = match source {
        Source::Backup(m) => format!(
            "backup {} ({}, {} bytes of RDB)",
            m.name, m.created, m.rdb_size
        ),
        Source::PlainRdb(size) => format!(
            "plain RDB object ({size} bytes, {} keys)",
            keys.unwrap_or_default()
        ),
    };
    eprintln!(
        "restored {what} into {} (dataset {}, encryption at rest: {})",
        dir.display(),
        dataset.id,
        match &target {
            None => "off".to_string(),
            Some(p) => p.describe(),
        }
    );
    match &target {
        Some(Provider::Local(l)) => eprintln!(
            "start it with: rampart-server --dir {} --kms-key-file {}",
            dir.display(),
            l.path().display()
        ),
        Some(Provider::Aws(a)) => eprintln!(
            "start it with: rampart-server --dir {} --kms-provider aws --kms-key-id {}",
            dir.display(),
            a.key_id().unwrap_or_default()
        ),
        None => eprintln!(
            "start it with: rampart-server --dir {} --encryption-at-rest no",
            dir.display()
        ),
    }
    Ok(())
}

/// Sends one command to a server over RESP and returns its reply as text;
/// an error reply is an error.
fn ask_server(addr: &str, password: Option<String>, args: &[String]) -> anyhow::Result<String> {
    let stream = std::net::TcpStream::connect(addr)
        .map_err(|e| anyhow::anyhow!("cannot connect to {addr}: {e}"))?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    let mut send = |args: &[String]| -> anyhow::Result<String> {
        let mut req = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            req.extend_from_slice(a.as_bytes());
            req.extend_from_slice(b"\r\n");
        }
        w.write_all(&req)?;
        read_reply(&mut r)
    };
    if let Some(p) = password {
        send(&["AUTH".to_string(), p])?;
    }
    send(args)
}

fn read_reply(r: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        anyhow::bail!("the server closed the connection");
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(rest.to_string()),
        "-" => anyhow::bail!("{rest}"),
        "$" => {
            let n: i64 = rest.parse()?;
            if n < 0 {
                return Ok(String::new());
            }
            let mut buf = vec![0u8; n as usize + 2];
            std::io::Read::read_exact(r, &mut buf)?;
            buf.truncate(n as usize);
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        _ => anyhow::bail!("unexpected reply {line:?}"),
    }
}
