//! `rampart backup list|describe|create|copy|delete|restore|export`: work
//! on a backup store directly, no server needed (but for `create`, which
//! asks a running server). Errors use `anyhow`: binary-facing code.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use rampart_kms::cli::KeyArgs;
use rampart_kms::{EnvelopeParams, Payload, Provider, PROVIDER_AWS};
use tokio::runtime::Handle;

use super::{cluster, BackupStore, Manifest, PutOptions, S3Config, Source};
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
    /// Ask a running server for a backup (BACKUP CREATE) and wait for it;
    /// with --cluster, one backup per shard of a cluster plus a cluster
    /// manifest written last in --store.
    Create {
        /// Backup name (default: manual-<time>).
        name: Option<String>,
        /// The server, host:port.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:6379")]
        server: String,
        /// Back up the whole cluster this node belongs to: BACKUP CREATE
        /// NAME-shard-<n> on each shard's master, then NAME.cluster.json in
        /// --store (the store the nodes back up to).
        #[arg(
            long,
            value_name = "HOST:PORT",
            conflicts_with = "server",
            requires = "store"
        )]
        cluster: Option<String>,
        /// With --cluster: `s3://bucket/prefix` or a local directory, the
        /// store the nodes back up to.
        #[arg(long, value_name = "STORE", requires = "cluster")]
        store: Option<String>,
        /// S3 endpoint URL of a non-AWS store.
        #[arg(long, value_name = "URL", requires = "store")]
        s3_endpoint: Option<String>,
        /// S3 region.
        #[arg(long, value_name = "REGION", requires = "store")]
        s3_region: Option<String>,
        /// Path-style S3 addressing.
        #[arg(long, requires = "store")]
        s3_path_style: bool,
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
    /// rewrapped; the encrypted body is copied unchanged). A cluster backup
    /// is copied shard by shard, its cluster manifest last.
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
    /// --kms-key-id) or none (--no-encryption). A cluster backup is
    /// restored into one directory per node (--cluster-dirs, --ports), each
    /// with its nodes.conf.
    Restore {
        /// Backup name, or the name of a plain .rdb object in the store.
        name: String,
        /// The new data directory (must be empty or absent).
        #[arg(long, value_name = "DATADIR", required_unless_present = "cluster_dirs")]
        dir: Option<PathBuf>,
        /// A cluster backup's new data directories, comma-separated: one
        /// per shard (its master, in shard order), then --replicas per
        /// shard, shard by shard.
        #[arg(
            long,
            value_name = "DIR,...",
            value_delimiter = ',',
            conflicts_with = "dir",
            requires = "ports"
        )]
        cluster_dirs: Vec<PathBuf>,
        /// The new nodes' client ports, one per --cluster-dirs entry.
        #[arg(long, value_name = "PORT,...", value_delimiter = ',')]
        ports: Vec<u16>,
        /// The new nodes' bus ports (default: each port + 10000).
        #[arg(long, value_name = "PORT,...", value_delimiter = ',')]
        cluster_ports: Vec<u16>,
        /// Replicas per shard: empty nodes that full-sync from their master
        /// when started.
        #[arg(long, default_value_t = 0)]
        replicas: usize,
        /// The IP the new nodes are announced at in their nodes.conf.
        #[arg(long, default_value = "127.0.0.1")]
        ip: String,
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
            let clusters = cluster::list(&store).await?;
            // A cluster's shard backups are listed as part of it.
            let (all, shards): (Vec<Manifest>, Vec<Manifest>) = all
                .into_iter()
                .partition(|m| cluster::owner(&clusters, &m.name).is_none());
            if json {
                // One array, as before; a cluster backup is its cluster
                // manifest, told apart by its `format`.
                let mut items = serde_json::to_value(&all)?;
                if let Some(v) = items.as_array_mut() {
                    for c in &clusters {
                        v.push(serde_json::to_value(c)?);
                    }
                }
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                for c in &clusters {
                    let size: u64 = shards
                        .iter()
                        .filter(|m| c.shards.iter().any(|s| s.backup == m.name))
                        .map(|m| m.size)
                        .sum();
                    let names: Vec<&str> = c.shards.iter().map(|s| s.backup.as_str()).collect();
                    println!(
                        "{}\tcluster\t{}\t{size}\t{} shards: {}",
                        c.name,
                        c.created,
                        c.shards.len(),
                        names.join(",")
                    );
                }
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
                eprintln!(
                    "{} backup(s) and {} cluster backup(s) in {}",
                    all.len(),
                    clusters.len(),
                    store.describe()
                );
            }
            Ok(())
        }
        BackupCmd::Describe { name, store, key } => {
            let store = store.open().await?;
            if cluster::exists(&store, &name).await? {
                return describe_cluster(&store, &name, &key).await;
            }
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
            cluster: seed,
            store,
            s3_endpoint,
            s3_region,
            s3_path_style,
            password,
            kms_key_id,
            key_file,
        } => {
            let mut key_args = Vec::new();
            if let Some(k) = kms_key_id {
                key_args.extend(["KMSKEYID".to_string(), k]);
            }
            if let Some(f) = key_file {
                key_args.extend(["KEYFILE".to_string(), f.display().to_string()]);
            }
            let password = password.or_else(|| std::env::var("REDISCLI_AUTH").ok());
            if let (Some(seed), Some(store)) = (seed, store) {
                let store = StoreArgs {
                    store,
                    s3_endpoint,
                    s3_region,
                    s3_path_style,
                }
                .open()
                .await?;
                let opts = cluster::CreateOptions {
                    name: name.unwrap_or_else(|| {
                        super::default_name(super::Kind::Manual, super::now_ms())
                    }),
                    seed,
                    password,
                    key_args,
                };
                let m = blocking(move |rt| cluster::create(&store, &rt, &opts)).await?;
                for s in &m.shards {
                    eprintln!(
                        "shard {}: slots {} on {} ({}), {} keys",
                        s.backup,
                        cluster::show_slots(&s.slots),
                        s.node_id,
                        s.addr,
                        s.keys.map_or("?".to_string(), |k| k.to_string())
                    );
                }
                println!("{}", m.name);
                return Ok(());
            }
            let mut args = vec!["BACKUP".to_string(), "CREATE".to_string()];
            if let Some(n) = name {
                args.push(n);
            }
            args.extend(key_args);
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
            let target = match (&to_key_file, &to_kms_key_id) {
                (Some(p), _) => Some(key.keyring_provider(p)?),
                (None, Some(id)) => Some(key.kms_provider(Some(id.clone())).await?),
                (None, None) => None,
            };
            if cluster::exists(&store, &name).await? {
                let c = cluster::manifest(&store, &name).await?;
                let mut readers = Vec::new();
                for s in &c.shards {
                    let m = super::manifest(&store, &s.backup).await?;
                    readers.push(copy_reader(&m, &key, target.is_some()).await?);
                }
                let m = cluster::copy(&store, &name, &new, &readers, target.as_ref()).await?;
                eprintln!(
                    "copied cluster backup {name} -> {} ({} shards)",
                    m.name,
                    m.shards.len()
                );
                return Ok(());
            }
            let src = super::manifest(&store, &name).await?;
            let from = copy_reader(&src, &key, target.is_some()).await?;
            let m = super::copy(&store, &name, &new, &from, target.as_ref()).await?;
            eprintln!(
                "copied backup {name} -> {} (key {} {})",
                m.name, m.key_provider, m.key_id
            );
            Ok(())
        }
        BackupCmd::Delete { name, store } => {
            let store = store.open().await?;
            if cluster::exists(&store, &name).await? {
                let m = cluster::delete(&store, &name).await?;
                eprintln!(
                    "deleted cluster backup {} and its {} shard backups",
                    m.name,
                    m.shards.len()
                );
                return Ok(());
            }
            let clusters = cluster::list(&store).await?;
            if let Some(c) = cluster::owner(&clusters, &name) {
                anyhow::bail!(
                    "backup {name:?} is a shard of cluster backup {c:?}: delete {c} (all its shards) instead"
                );
            }
            let m = super::delete(&store, &name).await?;
            eprintln!("deleted backup {} ({} bytes)", m.name, m.size);
            Ok(())
        }
        BackupCmd::Restore {
            name,
            dir,
            cluster_dirs,
            ports,
            cluster_ports,
            replicas,
            ip,
            no_encryption,
            dbfilename,
            store,
            key,
        } => match dir {
            Some(dir) => restore(name, dir, no_encryption, dbfilename, store, key).await,
            None => {
                let layout = cluster::Layout {
                    dirs: cluster_dirs,
                    ports,
                    bus_ports: (!cluster_ports.is_empty()).then_some(cluster_ports),
                    replicas,
                    ip,
                    dbfilename,
                };
                restore_cluster(name, layout, no_encryption, store, key).await
            }
        },
        BackupCmd::Export {
            name,
            to,
            store,
            key,
        } => {
            let src_store = store.open().await?;
            not_cluster(&src_store, &name, "export").await?;
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
    if cluster::exists(&store, &name).await? {
        anyhow::bail!(
            "{name:?} is a cluster backup: restore it with --cluster-dirs DIR,... --ports PORT,... (one per node)"
        );
    }
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
    let target = target_key(no_encryption, &key).await?;
    let (dataset, protection) = new_dataset(target.as_ref()).await?;
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
    eprintln!(
        "start it with: rampart-server --dir {} {}",
        dir.display(),
        key_directives(target.as_ref())
    );
    Ok(())
}

/// The new dataset's key: the one given, or none with --no-encryption.
async fn target_key(no_encryption: bool, key: &KeyArgs) -> anyhow::Result<Option<Provider>> {
    if no_encryption {
        Ok(None)
    } else if !key.is_given() {
        anyhow::bail!(
            "choose the new dataset's encryption: --key-file PATH, --kms-key-id ID, or --no-encryption"
        );
    } else {
        Ok(Some(key.provider().await?))
    }
}

/// A new dataset marker under `target` and the protection (a fresh data
/// key) of its first snapshot.
async fn new_dataset(target: Option<&Provider>) -> anyhow::Result<(Dataset, Protection)> {
    let dataset = match target {
        None => Dataset::new(false, None, None),
        Some(Provider::Local(_)) => Dataset::new(true, Some("local".into()), None),
        Some(Provider::Aws(a)) => {
            Dataset::new(true, Some("aws".into()), a.key_id().map(str::to_string))
        }
    };
    let protection = match target {
        None => Protection::Plain,
        Some(p) => {
            let params = EnvelopeParams::new(Payload::Snapshot, &dataset.id);
            let (key, slot) = p.generate_data_key(&params.key_context()?).await?;
            Protection::Encrypted { params, key, slot }
        }
    };
    Ok((dataset, protection))
}

/// The rampart-server directives that open a dataset under `target`.
fn key_directives(target: Option<&Provider>) -> String {
    match target {
        Some(Provider::Local(l)) => format!("--kms-key-file {}", l.path().display()),
        Some(Provider::Aws(a)) => format!(
            "--kms-provider aws --kms-key-id {}",
            a.key_id().unwrap_or_default()
        ),
        None => "--encryption-at-rest no".to_string(),
    }
}

/// The provider a copy of `m` reads with: the one that opens it when the
/// copy rewraps its key slot, else any (nothing is opened).
async fn copy_reader(m: &Manifest, key: &KeyArgs, rewrap: bool) -> anyhow::Result<Provider> {
    match (rewrap, key.is_given()) {
        (true, _) => reader_for(m, key).await,
        (false, true) => key.provider().await,
        (false, false) => key.kms_provider(None).await,
    }
}

/// Refuses `what` (export) on a cluster backup, which is made of
/// several backups.
async fn not_cluster(store: &BackupStore, name: &str, what: &str) -> anyhow::Result<()> {
    if cluster::exists(store, name).await? {
        anyhow::bail!(
            "{name:?} is a cluster backup: {what} works on one backup; {what} its shard backups one by one"
        );
    }
    Ok(())
}

async fn describe_cluster(store: &BackupStore, name: &str, key: &KeyArgs) -> anyhow::Result<()> {
    let c = cluster::manifest(store, name).await?;
    println!("name:        {}", c.name);
    println!("kind:        cluster ({} shards)", c.shards.len());
    println!("created:     {}", c.created);
    println!("version:     {}", c.rampart_version);
    if let Some(s) = &c.source {
        println!("copied from: {s}");
    }
    let mut bad = Vec::new();
    for (i, s) in c.shards.iter().enumerate() {
        println!();
        println!(
            "shard {}:     slots {}",
            i + 1,
            cluster::show_slots(&s.slots)
        );
        println!(
            "master:      {} ({}), {} replica(s)",
            s.node_id, s.addr, s.replicas
        );
        if let Some(k) = s.keys {
            println!("keys:        {k}");
        }
        let m = match super::manifest(store, &s.backup).await {
            Ok(m) => m,
            Err(e) => {
                println!("backup:      {} MISSING ({e:#})", s.backup);
                bad.push(format!("shard backup {} is missing", s.backup));
                continue;
            }
        };
        print_manifest(&m);
        let state = match reader_for(&m, key).await {
            Ok(p) => super::key_state(store, &m, &p).await?,
            Err(e) => super::KeyState::Unknown(format!("{e:#}")),
        };
        println!("key state:   {state}");
        if matches!(
            state,
            super::KeyState::Disabled(_) | super::KeyState::Missing(_)
        ) {
            bad.push(format!("the key of {} is {state}", s.backup));
        }
    }
    if let Some(first) = bad.first() {
        anyhow::bail!("cluster backup {name:?} cannot be restored: {first}");
    }
    Ok(())
}

/// What a cluster restore reads each shard with and writes each node under.
struct CliTarget {
    rt: Handle,
    key: KeyArgs,
    target: Option<Provider>,
}

impl cluster::Target for CliTarget {
    fn reader(&self, m: &Manifest) -> anyhow::Result<Provider> {
        self.rt.block_on(reader_for(m, &self.key))
    }

    fn dataset(&self) -> anyhow::Result<(Dataset, Protection)> {
        self.rt.block_on(new_dataset(self.target.as_ref()))
    }
}

async fn restore_cluster(
    name: String,
    layout: cluster::Layout,
    no_encryption: bool,
    store: StoreArgs,
    key: KeyArgs,
) -> anyhow::Result<()> {
    let store = store.open().await?;
    if !cluster::exists(&store, &name).await? {
        anyhow::bail!(
            "{name:?} is not a cluster backup in {} (no {name}{}): restore a single backup with --dir",
            store.describe(),
            cluster::CLUSTER_SUFFIX
        );
    }
    let target = target_key(no_encryption, &key).await?;
    let mut directives = key_directives(target.as_ref());
    if layout.dbfilename != "dump.rdb" {
        directives.push_str(&format!(" --dbfilename {}", layout.dbfilename));
    }
    let nodes = blocking(move |rt| {
        let t = CliTarget {
            rt: rt.clone(),
            key,
            target,
        };
        cluster::restore(&store, &rt, &name, &layout, &t)
    })
    .await?;
    let masters = nodes.iter().filter(|n| n.master).count();
    eprintln!(
        "restored {masters} shards ({} keys) into {} nodes; start them with:",
        nodes.iter().map(|n| n.keys).sum::<u64>(),
        nodes.len()
    );
    for n in &nodes {
        println!(
            "rampart-server --cluster-enabled yes --port {} --cluster-port {} --dir {} {directives}",
            n.port,
            n.bus_port,
            n.dir.display()
        );
    }
    Ok(())
}

/// Sends one command to a server over RESP and returns its reply as text;
/// an error reply is an error.
pub(crate) fn ask_server(
    addr: &str,
    password: Option<String>,
    args: &[String],
) -> anyhow::Result<String> {
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
