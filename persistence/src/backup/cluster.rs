//! Cluster backups: one ordinary backup per shard, taken on the shard's
//! master with `BACKUP CREATE`, plus a [`ClusterManifest`] written **last**
//! (`<prefix>NAME.cluster.json`). As with a single backup's manifest, a
//! cluster backup without its cluster manifest does not exist for list and
//! restore; its shard backups are named `NAME-shard-<n>` (n from 1, in slot
//! order) and are ordinary backups otherwise.
//!
//! Restore brings back a cluster of the same shape: each shard's backup
//! into a new data directory (keys checked against the shard's slots), and
//! in every directory a nodes.conf ([`rampart_cluster::nodes_conf`]) naming
//! all the new nodes, fresh ids, config epochs 1..N, the shard's slots on
//! its master, and optional replicas (empty directories that full-sync from
//! their master when started).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rampart_cluster::msg::node_flags;
use rampart_cluster::nodes_conf::{self, NodeLine, NodesConf};
use rampart_cluster::slot::SLOTS;
use rampart_cluster::{key_hash_slot, SlotSet};
use rampart_keyspace::Value;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::{check_name, BackupStore, Manifest, StoreError, MANIFEST_LIMIT, MANIFEST_SUFFIX};
use crate::rdb::{LoadSink, RdbError};
use crate::snapshot::{Protection, SnapshotWriter};

/// Suffix of a cluster backup's manifest.
pub const CLUSTER_SUFFIX: &str = ".cluster.json";
/// The `format` of a [`ClusterManifest`].
pub const CLUSTER_FORMAT: &str = "rampart-cluster-backup-v1";

/// What a cluster backup's manifest records. Written after every shard
/// backup is complete: its presence is what makes the cluster backup exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterManifest {
    /// [`CLUSTER_FORMAT`].
    pub format: String,
    /// The cluster backup's name.
    pub name: String,
    /// Creation time (when the last shard was done), RFC 3339 UTC.
    pub created: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
    /// The shards, in slot order.
    pub shards: Vec<Shard>,
    /// The Rampart version that wrote it.
    pub rampart_version: String,
    /// The cluster backup this one was copied from, for copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One shard of a [`ClusterManifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// The shard's backup (an ordinary backup in the same store).
    pub backup: String,
    /// The master it was taken on.
    pub node_id: String,
    /// That master's address, `ip:port`.
    pub addr: String,
    /// The slot ranges the shard served, inclusive, ascending.
    pub slots: Vec<[u16; 2]>,
    /// Keys in the shard's backup, when its node counted them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<u64>,
    /// How many replicas the master had.
    #[serde(default)]
    pub replicas: usize,
}

/// The name of shard `n` (from 1) of cluster backup `name`.
///
/// ```
/// assert_eq!(rampart_persistence::backup::cluster::shard_name("nightly", 2), "nightly-shard-2");
/// ```
pub fn shard_name(name: &str, n: usize) -> String {
    format!("{name}-shard-{n}")
}

fn manifest_name(name: &str) -> String {
    format!("{name}{CLUSTER_SUFFIX}")
}

/// The slots of `ranges` as a set, or what is wrong with them.
fn slot_set(ranges: &[[u16; 2]]) -> Result<SlotSet, String> {
    let mut set = SlotSet::new();
    for &[a, b] in ranges {
        if a > b || usize::from(b) >= SLOTS {
            return Err(format!("bad slot range {a}-{b}"));
        }
        if (a..=b).any(|s| set.contains(s)) {
            return Err(format!("slot range {a}-{b} overlaps another"));
        }
        set.insert_range(a..=b);
    }
    Ok(set)
}

/// `0-5460 5462` for messages and CLI output.
///
/// ```
/// use rampart_persistence::backup::cluster::show_slots;
/// assert_eq!(show_slots(&[[0, 5460], [5462, 5462]]), "0-5460 5462");
/// ```
pub fn show_slots(ranges: &[[u16; 2]]) -> String {
    ranges
        .iter()
        .map(|&[a, b]| match a == b {
            true => a.to_string(),
            false => format!("{a}-{b}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn ranges_of(set: &SlotSet) -> Vec<[u16; 2]> {
    set.ranges()
        .into_iter()
        .map(|r| [*r.start(), *r.end()])
        .collect()
}

impl ClusterManifest {
    /// Parses and checks a cluster manifest read as `name`: the format,
    /// the name, valid and distinct shard backup names, and slot ranges
    /// that cover every slot exactly once.
    ///
    /// ```
    /// use rampart_persistence::backup::cluster::ClusterManifest;
    /// let json = r#"{"format":"rampart-cluster-backup-v1","name":"n","created":"2026-01-01T00:00:00Z",
    ///   "created_ms":0,"rampart_version":"0.1.0","shards":[
    ///   {"backup":"n-shard-1","node_id":"a","addr":"127.0.0.1:7000","slots":[[0,8191]]},
    ///   {"backup":"n-shard-2","node_id":"b","addr":"127.0.0.1:7001","slots":[[8192,16383]],"keys":3}]}"#;
    /// let m = ClusterManifest::parse("n", json.as_bytes()).unwrap();
    /// assert_eq!(m.shards[1].keys, Some(3));
    /// assert!(ClusterManifest::parse("other", json.as_bytes()).is_err());
    /// ```
    pub fn parse(name: &str, bytes: &[u8]) -> Result<ClusterManifest, String> {
        let m: ClusterManifest = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if m.format != CLUSTER_FORMAT {
            return Err(format!(
                "format {:?} is not {CLUSTER_FORMAT:?} (written by a newer Rampart?)",
                m.format
            ));
        }
        if m.name != name {
            return Err(format!(
                "it names cluster backup {:?}: it was tampered with or copied by hand",
                m.name
            ));
        }
        if m.shards.is_empty() {
            return Err("it lists no shards".into());
        }
        let mut names = BTreeSet::new();
        let mut all = SlotSet::new();
        for (i, s) in m.shards.iter().enumerate() {
            check_name(&s.backup).map_err(|e| format!("shard {}: {e}", i + 1))?;
            if !names.insert(s.backup.as_str()) {
                return Err(format!("shard backup {:?} is listed twice", s.backup));
            }
            let set = slot_set(&s.slots).map_err(|e| format!("shard {}: {e}", i + 1))?;
            if set.is_empty() {
                return Err(format!("shard {} serves no slot", i + 1));
            }
            for slot in set.iter() {
                if all.contains(slot) {
                    return Err(format!("slot {slot} is in more than one shard"));
                }
                all.insert(slot);
            }
        }
        if all.len() != SLOTS {
            let missing = (0..SLOTS as u16).find(|&s| !all.contains(s)).unwrap_or(0);
            return Err(format!(
                "its shards cover {} of {SLOTS} slots (slot {missing} is in none)",
                all.len()
            ));
        }
        Ok(m)
    }
}

/// Whether `name` is a cluster backup (has a cluster manifest).
///
/// ```
/// # async fn f() -> anyhow::Result<()> {
/// let dir = tempfile::tempdir()?;
/// let store = rampart_persistence::backup::BackupStore::dir(dir.path());
/// assert!(!rampart_persistence::backup::cluster::exists(&store, "nightly").await?);
/// # Ok(()) }
/// ```
pub async fn exists(store: &BackupStore, name: &str) -> anyhow::Result<bool> {
    Ok(check_name(name).is_ok() && store.size(&manifest_name(name)).await?.is_some())
}

/// The cluster manifest of `name`; an error naming it when it does not
/// exist or is not valid.
///
/// ```no_run
/// # async fn f(store: rampart_persistence::backup::BackupStore) -> anyhow::Result<()> {
/// let m = rampart_persistence::backup::cluster::manifest(&store, "nightly").await?;
/// println!("{} shards", m.shards.len());
/// # Ok(()) }
/// ```
pub async fn manifest(store: &BackupStore, name: &str) -> anyhow::Result<ClusterManifest> {
    check_name(name)?;
    let object = manifest_name(name);
    let bytes = match store.get_small(&object, MANIFEST_LIMIT).await {
        Ok(b) => b,
        Err(StoreError::NotFound(_)) => anyhow::bail!(
            "no cluster backup named {name:?} in {} (no manifest {object})",
            store.describe()
        ),
        Err(e) => return Err(e.into()),
    };
    ClusterManifest::parse(name, &bytes).map_err(|e| {
        anyhow::anyhow!(
            "the cluster manifest of {name:?} ({}) is damaged: {e}",
            store.object(&object)
        )
    })
}

/// Every cluster backup in the store, oldest first. One whose manifest
/// cannot be read is reported in the log and skipped.
///
/// ```no_run
/// # async fn f(store: rampart_persistence::backup::BackupStore) -> anyhow::Result<()> {
/// for c in rampart_persistence::backup::cluster::list(&store).await? {
///     println!("{} {}", c.name, c.created);
/// }
/// # Ok(()) }
/// ```
pub async fn list(store: &BackupStore) -> anyhow::Result<Vec<ClusterManifest>> {
    let mut out = Vec::new();
    for obj in store.list().await? {
        let Some(name) = obj.strip_suffix(CLUSTER_SUFFIX) else {
            continue;
        };
        match manifest(store, name).await {
            Ok(m) => out.push(m),
            Err(e) => tracing::warn!("Skipping cluster backup {name:?}: {e:#}"),
        }
    }
    out.sort_by(|a, b| (a.created_ms, &a.name).cmp(&(b.created_ms, &b.name)));
    Ok(out)
}

/// The cluster backup (from `clusters`) that `backup` is a shard of.
///
/// ```
/// use rampart_persistence::backup::cluster::{owner, ClusterManifest};
/// assert_eq!(owner(&[], "x-shard-1"), None);
/// ```
pub fn owner<'a>(clusters: &'a [ClusterManifest], backup: &str) -> Option<&'a str> {
    clusters
        .iter()
        .find(|c| c.shards.iter().any(|s| s.backup == backup))
        .map(|c| c.name.as_str())
}

/// Deletes a cluster backup: its cluster manifest first, so it stops
/// existing at once, then each shard backup. A shard backup already gone
/// is skipped; other errors stop the deletion (run it again to finish).
///
/// ```no_run
/// # async fn f(store: rampart_persistence::backup::BackupStore) -> anyhow::Result<()> {
/// rampart_persistence::backup::cluster::delete(&store, "nightly").await?;
/// # Ok(()) }
/// ```
pub async fn delete(store: &BackupStore, name: &str) -> anyhow::Result<ClusterManifest> {
    let m = manifest(store, name).await?;
    store.delete(&manifest_name(name)).await?;
    for s in &m.shards {
        if store
            .size(&format!("{}{MANIFEST_SUFFIX}", s.backup))
            .await?
            .is_some()
        {
            super::delete(store, &s.backup).await?;
        }
    }
    Ok(m)
}

/// Copies cluster backup `from` to `to`: each shard backup with
/// [`super::copy`] (under the same key, or rewrapped to `to_key`; shard
/// `n` is read with `readers[n - 1]`) as `to-shard-<n>`, then the copy's
/// cluster manifest last. On a failure the shard copies made are deleted.
///
/// ```no_run
/// # async fn f(store: rampart_persistence::backup::BackupStore,
/// #            readers: Vec<rampart_kms::Provider>) -> anyhow::Result<()> {
/// let m = rampart_persistence::backup::cluster::copy(&store, "nightly", "nightly-dr", &readers, None).await?;
/// assert_eq!(m.source.as_deref(), Some("nightly"));
/// # Ok(()) }
/// ```
pub async fn copy(
    store: &BackupStore,
    from: &str,
    to: &str,
    readers: &[rampart_kms::Provider],
    to_key: Option<&rampart_kms::Provider>,
) -> anyhow::Result<ClusterManifest> {
    check_name(to)?;
    let src = manifest(store, from).await?;
    if exists(store, to).await? {
        anyhow::bail!(
            "a cluster backup named {to:?} already exists in {}",
            store.describe()
        );
    }
    if readers.len() != src.shards.len() {
        anyhow::bail!("{} keys for {} shards", readers.len(), src.shards.len());
    }
    let mut made = Vec::new();
    let mut shards = Vec::new();
    let mut result = Ok(());
    for (i, (s, reader)) in src.shards.iter().zip(readers).enumerate() {
        let name = shard_name(to, i + 1);
        match super::copy(store, &s.backup, &name, reader, to_key).await {
            Ok(_) => made.push(name.clone()),
            Err(e) => {
                result = Err(e.context(format!("shard {} (backup {})", i + 1, s.backup)));
                break;
            }
        }
        shards.push(Shard {
            backup: name,
            ..s.clone()
        });
    }
    let now = super::now_ms();
    let m = ClusterManifest {
        name: to.to_string(),
        created: rampart_kms::rfc3339(now / 1000, None),
        created_ms: now,
        shards,
        source: Some(from.to_string()),
        ..src
    };
    if result.is_ok() {
        let mut json = serde_json::to_vec_pretty(&m)?;
        json.push(b'\n');
        result = store
            .put(&manifest_name(to), json)
            .await
            .map_err(anyhow::Error::from);
    }
    if let Err(e) = result {
        for b in made.iter().rev() {
            if let Err(d) = super::delete(store, b).await {
                tracing::warn!("could not delete shard copy {b}: {d:#}");
            }
        }
        return Err(e);
    }
    Ok(m)
}

/// A `rampart backup create --cluster`'s parameters (see [`create`]'s
/// example).
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// The cluster backup's name.
    pub name: String,
    /// Any node of the cluster, `host:port`.
    pub seed: String,
    /// The nodes' default user's password.
    pub password: Option<String>,
    /// Extra `BACKUP CREATE` arguments (`KMSKEYID id` or `KEYFILE path`).
    pub key_args: Vec<String>,
}

/// The cluster as one node sees it: CLUSTER NODES parsed as nodes.conf
/// lines (the same format, without the vars line).
fn topology(addr: &str, password: &Option<String>) -> anyhow::Result<NodesConf> {
    let text = super::cli::ask_server(addr, password.clone(), &["CLUSTER".into(), "NODES".into()])
        .map_err(|e| anyhow::anyhow!("CLUSTER NODES on {addr}: {e:#}"))?;
    NodesConf::parse(&text)
        .map_err(|e| anyhow::anyhow!("CLUSTER NODES on {addr} gave an unexpected reply: {e}"))
}

/// A node's address for a client: its ip, or the host we reached the
/// cluster through when it does not know its own yet.
fn addr_of(n: &NodeLine, seed: &str) -> String {
    let host = match n.ip.is_empty() {
        true => seed.rsplit_once(':').map(|(h, _)| h).unwrap_or(seed),
        false => &n.ip,
    };
    match host.contains(':') {
        true => format!("[{host}]:{}", n.port),
        false => format!("{host}:{}", n.port),
    }
}

/// The masters serving slots, in slot order, checked: every slot served,
/// no master failing, no slot migrating or importing on its master.
fn masters(conf: &NodesConf, opts: &CreateOptions) -> anyhow::Result<Vec<NodeLine>> {
    let mut served = SlotSet::new();
    let mut out: Vec<NodeLine> = Vec::new();
    for n in &conf.nodes {
        if n.flags & node_flags::MASTER == 0 || n.slots.is_empty() {
            continue;
        }
        if n.flags & (node_flags::FAIL | node_flags::PFAIL) != 0 {
            anyhow::bail!(
                "master {} ({}) is failing: a cluster backup needs every master up",
                n.id,
                addr_of(n, &opts.seed)
            );
        }
        for r in &n.slots {
            served.insert_range(r.clone());
        }
        out.push(n.clone());
    }
    if served.len() != SLOTS {
        let missing = (0..SLOTS as u16)
            .find(|&s| !served.contains(s))
            .unwrap_or(0);
        anyhow::bail!(
            "the cluster serves {} of {SLOTS} slots (slot {missing} has no master): a cluster backup needs every slot covered",
            served.len()
        );
    }
    out.sort_by_key(|n| n.slots.first().map(|r| *r.start()));
    for m in &out {
        let addr = addr_of(m, &opts.seed);
        let own = topology(&addr, &opts.password)?;
        let me = own
            .myself()
            .ok_or_else(|| anyhow::anyhow!("{addr}: CLUSTER NODES has no myself line"))?;
        if me.id != m.id {
            anyhow::bail!(
                "{addr} is node {}, not {} as {} says: the cluster is changing",
                me.id,
                m.id,
                opts.seed
            );
        }
        if let Some(mig) = me.migrations.first() {
            anyhow::bail!(
                "slot {} is being moved on {addr}: a cluster backup waits for resharding to finish",
                mig.slot
            );
        }
    }
    Ok(out)
}

fn line_ranges(n: &NodeLine) -> Vec<[u16; 2]> {
    let mut set = SlotSet::new();
    for r in &n.slots {
        set.insert_range(r.clone());
    }
    ranges_of(&set)
}

/// Takes a cluster backup: checks the cluster (state ok, every slot
/// served, no slot moving), asks each master for `BACKUP CREATE
/// NAME-shard-<n>`, checks each shard backup reached `store` with the
/// node's id and slots, checks the topology did not change meanwhile, and
/// writes the cluster manifest last. On any failure the shard backups it
/// made are deleted and the error says what failed. Blocking (it talks to
/// the nodes and drives the store through `rt`).
///
/// ```no_run
/// # fn f(store: rampart_persistence::backup::BackupStore, rt: tokio::runtime::Handle) -> anyhow::Result<()> {
/// use rampart_persistence::backup::cluster::{create, CreateOptions};
/// let opts = CreateOptions { name: "nightly".into(), seed: "127.0.0.1:7000".into(),
///                            password: None, key_args: vec![] };
/// let m = create(&store, &rt, &opts)?;
/// println!("{} shards", m.shards.len());
/// # Ok(()) }
/// ```
pub fn create(
    store: &BackupStore,
    rt: &Handle,
    opts: &CreateOptions,
) -> anyhow::Result<ClusterManifest> {
    check_name(&opts.name)?;
    if rt.block_on(exists(store, &opts.name))? {
        anyhow::bail!(
            "a cluster backup named {:?} already exists in {}",
            opts.name,
            store.describe()
        );
    }
    let info = super::cli::ask_server(
        &opts.seed,
        opts.password.clone(),
        &["CLUSTER".into(), "INFO".into()],
    )
    .map_err(|e| anyhow::anyhow!("CLUSTER INFO on {}: {e:#}", opts.seed))?;
    if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
        let state = info
            .lines()
            .find(|l| l.starts_with("cluster_state:"))
            .unwrap_or("cluster_state:?")
            .trim();
        anyhow::bail!(
            "the cluster at {} is not ok ({state}): a cluster backup needs every slot served",
            opts.seed
        );
    }
    let before = topology(&opts.seed, &opts.password)?;
    let masters = masters(&before, opts)?;
    let mut made: Vec<String> = Vec::new();
    let result = shard_backups(store, rt, opts, &before, &masters, &mut made);
    let result = result.and_then(|shards| {
        let now = super::now_ms();
        let m = ClusterManifest {
            format: CLUSTER_FORMAT.into(),
            name: opts.name.clone(),
            created: rampart_kms::rfc3339(now / 1000, None),
            created_ms: now,
            shards,
            rampart_version: env!("CARGO_PKG_VERSION").to_string(),
            source: None,
        };
        // The shards' own records must make a whole cluster: this is what
        // restore will check, so check it before the backup exists.
        let mut json = serde_json::to_vec_pretty(&m)?;
        json.push(b'\n');
        ClusterManifest::parse(&m.name, &json)
            .map_err(|e| anyhow::anyhow!("the shard backups do not make a whole cluster: {e}"))?;
        rt.block_on(store.put(&manifest_name(&m.name), json))?;
        Ok(m)
    });
    if result.is_err() {
        for b in made.iter().rev() {
            if let Err(e) = rt.block_on(super::delete(store, b)) {
                tracing::warn!("could not delete shard backup {b}: {e:#}");
            }
        }
    }
    result
}

fn shard_backups(
    store: &BackupStore,
    rt: &Handle,
    opts: &CreateOptions,
    before: &NodesConf,
    masters: &[NodeLine],
    made: &mut Vec<String>,
) -> anyhow::Result<Vec<Shard>> {
    let mut shards = Vec::new();
    for (i, master) in masters.iter().enumerate() {
        let backup = shard_name(&opts.name, i + 1);
        let addr = addr_of(master, &opts.seed);
        let mut args = vec!["BACKUP".to_string(), "CREATE".to_string(), backup.clone()];
        args.extend(opts.key_args.iter().cloned());
        super::cli::ask_server(&addr, opts.password.clone(), &args).map_err(|e| {
            anyhow::anyhow!(
                "shard {} (master {} at {addr}): BACKUP CREATE: {e:#}",
                i + 1,
                master.id
            )
        })?;
        let m: Manifest = match rt.block_on(super::manifest(store, &backup)) {
            Ok(m) => m,
            Err(e) => anyhow::bail!(
                "shard {} (master {} at {addr}) made backup {backup}, but it is not in {}: \
                 give --store the store the nodes back up to (their backup-s3-* or backup-dir) ({e:#})",
                i + 1,
                master.id,
                store.describe()
            ),
        };
        made.push(backup.clone());
        let origin = m.cluster.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "backup {backup} from {addr} records no cluster node and slots (is {addr} a Rampart in cluster mode?)"
            )
        })?;
        let want = line_ranges(master);
        if origin.node_id != master.id || origin.slots != want {
            anyhow::bail!(
                "the cluster changed during the backup: {addr} was node {} with slots {}, its backup records node {} with slots {}",
                master.id,
                show_slots(&want),
                origin.node_id,
                show_slots(&origin.slots)
            );
        }
        shards.push(Shard {
            backup,
            node_id: master.id.clone(),
            addr,
            slots: origin.slots.clone(),
            keys: m.keys,
            replicas: before
                .nodes
                .iter()
                .filter(|n| n.master.as_deref() == Some(master.id.as_str()))
                .count(),
        });
    }
    // Slots that moved and came to rest between the first capture and the
    // last would show here; one still moving shows on its master.
    let after = topology(&opts.seed, &opts.password)?;
    let now = masters_slots(&after);
    let then = masters_slots(before);
    if now != then {
        anyhow::bail!("the cluster's slots moved during the backup: try again when it is stable");
    }
    self::masters(&after, opts)?;
    Ok(shards)
}

fn masters_slots(conf: &NodesConf) -> Vec<(String, Vec<[u16; 2]>)> {
    let mut v: Vec<_> = conf
        .nodes
        .iter()
        .filter(|n| n.flags & node_flags::MASTER != 0 && !n.slots.is_empty())
        .map(|n| (n.id.clone(), line_ranges(n)))
        .collect();
    v.sort();
    v
}

/// Where the restored nodes go and how they are reached.
///
/// ```
/// use rampart_persistence::backup::cluster::Layout;
/// // Three shards, one replica each: masters first, then the replicas.
/// let layout = Layout {
///     dirs: (1..=6).map(|i| format!("/srv/c/n{i}").into()).collect(),
///     ports: (7000..7006).collect(),
///     bus_ports: None,
///     replicas: 1,
///     ip: "127.0.0.1".into(),
///     dbfilename: "dump.rdb".into(),
/// };
/// assert_eq!(layout.dirs.len(), 3 * (1 + layout.replicas));
/// ```
#[derive(Debug, Clone)]
pub struct Layout {
    /// Data directories: the N masters first (in shard order), then
    /// `replicas` per shard, shard by shard.
    pub dirs: Vec<PathBuf>,
    /// Client ports, one per directory.
    pub ports: Vec<u16>,
    /// Bus ports, one per directory (default: port + 10000).
    pub bus_ports: Option<Vec<u16>>,
    /// Replicas per shard.
    pub replicas: usize,
    /// The IP every node is announced at in nodes.conf.
    pub ip: String,
    /// The snapshot file name in each directory.
    pub dbfilename: String,
}

/// One restored node, for the caller to print how to start it (see
/// [`restore`]'s example).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its data directory.
    pub dir: PathBuf,
    /// Its client port.
    pub port: u16,
    /// Its bus port.
    pub bus_port: u16,
    /// Its new id.
    pub id: String,
    /// The shard (from 1) it belongs to.
    pub shard: usize,
    /// Whether it is the shard's master.
    pub master: bool,
    /// Keys restored into it (0 for a replica, which syncs on start).
    pub keys: u64,
}

fn new_node_id() -> String {
    (0..20)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The nodes.conf of a new cluster: `nodes` in layout order, masters with
/// config epochs 1..N and their slots, replicas following their masters.
/// Each directory gets it with its own line flagged `myself`.
fn nodes_conf(m: &ClusterManifest, nodes: &[Node], ip: &str) -> Vec<NodeLine> {
    let mut lines = Vec::new();
    for n in nodes {
        let shard = &m.shards[n.shard - 1];
        let master_id = nodes
            .iter()
            .find(|o| o.master && o.shard == n.shard)
            .map(|o| o.id.clone());
        lines.push(NodeLine {
            id: n.id.clone(),
            ip: ip.to_string(),
            port: n.port,
            cport: n.bus_port,
            hostname: None,
            flags: match n.master {
                true => node_flags::MASTER,
                false => node_flags::SLAVE,
            },
            master: if n.master { None } else { master_id },
            ping_sent: 0,
            pong_recv: 0,
            // A replica's line shows its master's epoch, as Redis writes.
            config_epoch: n.shard as u64,
            connected: true,
            slots: match n.master {
                true => shard.slots.iter().map(|&[a, b]| a..=b).collect(),
                false => Vec::new(),
            },
            migrations: Vec::new(),
        });
    }
    lines
}

/// Checks a restored shard's keys while they are copied: database 0 only
/// (cluster mode has no other) and only the shard's slots.
struct SlotCheck {
    slots: SlotSet,
    keys: u64,
    /// The first refusal, said without the key (keys never reach output).
    refused: Option<String>,
}

impl LoadSink for SlotCheck {
    fn entry(&mut self, db: usize, key: &[u8], _: Value, _: Option<u64>) -> Result<(), RdbError> {
        let why = if db != 0 {
            format!("it holds keys in database {db} (cluster mode has only database 0)")
        } else {
            let slot = key_hash_slot(key);
            if self.slots.contains(slot) {
                self.keys += 1;
                return Ok(());
            }
            format!("it holds a key of slot {slot}, which is not one of its slots")
        };
        self.refused = Some(why.clone());
        Err(RdbError::rejected(why))
    }
}

/// What `restore` needs from its caller per shard: the key that opens the
/// shard's backup, and a new dataset (its marker and the protection of its
/// snapshot) per directory.
///
/// ```
/// use rampart_persistence::{backup::{cluster::Target, Manifest}, dataset::Dataset,
///                           snapshot::Protection};
/// /// Restores unencrypted, reading every shard with one keyring.
/// struct Plain(rampart_kms::Provider);
/// impl Target for Plain {
///     fn reader(&self, _: &Manifest) -> anyhow::Result<rampart_kms::Provider> {
///         Ok(self.0.clone())
///     }
///     fn dataset(&self) -> anyhow::Result<(Dataset, Protection)> {
///         Ok((Dataset::new(false, None, None), Protection::Plain))
///     }
/// }
/// ```
pub trait Target {
    /// The provider that reads shard backup `m`.
    fn reader(&self, m: &Manifest) -> anyhow::Result<rampart_kms::Provider>;
    /// A new dataset marker and snapshot protection for one directory.
    fn dataset(&self) -> anyhow::Result<(crate::dataset::Dataset, Protection)>;
}

/// Restores cluster backup `name` into `layout`'s directories, which must
/// all be empty or absent: each shard's backup into its master's directory
/// (every key checked to be in database 0 and one of the shard's slots,
/// the count checked against the shard's manifest), a dataset marker in
/// every directory, and nodes.conf written in every directory last. On
/// any failure every directory it created or filled is removed again, so
/// no directory is left looking restored. Blocking.
///
/// ```no_run
/// # fn f(store: rampart_persistence::backup::BackupStore, rt: tokio::runtime::Handle,
/// #      layout: rampart_persistence::backup::cluster::Layout,
/// #      target: &dyn rampart_persistence::backup::cluster::Target) -> anyhow::Result<()> {
/// let nodes = rampart_persistence::backup::cluster::restore(&store, &rt, "nightly", &layout, target)?;
/// for n in nodes { println!("{} {}", n.dir.display(), n.port); }
/// # Ok(()) }
/// ```
pub fn restore(
    store: &BackupStore,
    rt: &Handle,
    name: &str,
    layout: &Layout,
    target: &dyn Target,
) -> anyhow::Result<Vec<Node>> {
    let m = rt.block_on(manifest(store, name))?;
    let n = m.shards.len();
    let want = n * (1 + layout.replicas);
    if layout.dirs.len() != want || layout.ports.len() != want {
        anyhow::bail!(
            "cluster backup {name:?} has {n} shards: with {} replica(s) each that is {want} nodes, so give {want} directories and {want} ports (got {} and {})",
            layout.replicas,
            layout.dirs.len(),
            layout.ports.len()
        );
    }
    let bus: Vec<u16> = match &layout.bus_ports {
        Some(b) if b.len() != want => {
            anyhow::bail!("give {want} bus ports (got {})", b.len())
        }
        Some(b) => b.clone(),
        None => layout
            .ports
            .iter()
            .map(|&p| {
                p.checked_add(10000).ok_or_else(|| {
                    anyhow::anyhow!("port {p}: port + 10000 is no port: give --cluster-ports")
                })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let all_ports: BTreeSet<u16> = layout.ports.iter().chain(&bus).copied().collect();
    if all_ports.len() != 2 * want {
        anyhow::bail!("the client and bus ports must all differ");
    }
    let dirs: BTreeSet<&PathBuf> = layout.dirs.iter().collect();
    if dirs.len() != want {
        anyhow::bail!("the directories must all differ");
    }
    for d in &layout.dirs {
        if std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()) {
            anyhow::bail!(
                "{} is not empty: restore creates new data directories (choose empty or new ones)",
                d.display()
            );
        }
    }
    // Every shard's manifest and key first: a missing shard or key fails
    // before anything is written.
    let mut shards = Vec::new();
    for (i, s) in m.shards.iter().enumerate() {
        let sm = rt
            .block_on(super::manifest(store, &s.backup))
            .map_err(|e| anyhow::anyhow!("cluster backup {name:?}, shard {}: {e:#}", i + 1))?;
        if let Some(o) = &sm.cluster {
            if o.slots != s.slots {
                anyhow::bail!(
                    "cluster backup {name:?}, shard {}: backup {} records slots {}, the cluster manifest {}: one of them was altered",
                    i + 1,
                    s.backup,
                    show_slots(&o.slots),
                    show_slots(&s.slots)
                );
            }
        }
        let reader = target.reader(&sm)?;
        shards.push((sm, reader));
    }
    let mut nodes: Vec<Node> = Vec::new();
    for (i, (dir, (&port, &bus_port))) in layout
        .dirs
        .iter()
        .zip(layout.ports.iter().zip(&bus))
        .enumerate()
    {
        let (shard, master) = match i < n {
            true => (i + 1, true),
            false => ((i - n) / layout.replicas + 1, false),
        };
        nodes.push(Node {
            dir: dir.clone(),
            port,
            bus_port,
            id: new_node_id(),
            shard,
            master,
            keys: 0,
        });
    }
    let result = fill(store, rt, &m, &shards, &mut nodes, layout, target);
    if result.is_err() {
        // The directories were empty or absent: all in them is ours.
        for d in &layout.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
    result.map(|()| nodes)
}

fn fill(
    store: &BackupStore,
    rt: &Handle,
    m: &ClusterManifest,
    shards: &[(Manifest, rampart_kms::Provider)],
    nodes: &mut [Node],
    layout: &Layout,
    target: &dyn Target,
) -> anyhow::Result<()> {
    for node in nodes.iter_mut() {
        std::fs::create_dir_all(&node.dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", node.dir.display()))?;
        let (dataset, protection) = target.dataset()?;
        if node.master {
            let i = node.shard - 1;
            let (sm, reader) = &shards[i];
            let dest = node.dir.join(&layout.dbfilename);
            node.keys = restore_shard(store, rt, sm, reader, &m.shards[i], &dest, protection)
                .map_err(|e| anyhow::anyhow!("shard {} (backup {}): {e:#}", node.shard, sm.name))?;
        }
        dataset.save(&node.dir)?;
    }
    let lines = nodes_conf(m, nodes, &layout.ip);
    for (i, node) in nodes.iter().enumerate() {
        let mut conf = NodesConf {
            nodes: lines.clone(),
            current_epoch: m.shards.len() as u64,
            last_vote_epoch: 0,
        };
        conf.nodes[i].flags |= node_flags::MYSELF;
        let path = node.dir.join("nodes.conf");
        nodes_conf::save(&path, &conf)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Restores one shard's backup as the snapshot `dest`, renamed into place
/// only when every key was read, authenticated and found in the shard's
/// slots, and their number matches the shard's manifest. Returns the
/// number of keys.
fn restore_shard(
    store: &BackupStore,
    rt: &Handle,
    sm: &Manifest,
    reader: &rampart_kms::Provider,
    shard: &Shard,
    dest: &Path,
    protection: Protection,
) -> anyhow::Result<u64> {
    let (_, src) = super::open(store, rt, &sm.name, reader)?;
    let mut check = SlotCheck {
        slots: slot_set(&shard.slots).map_err(anyhow::Error::msg)?,
        keys: 0,
        refused: None,
    };
    let mut w = SnapshotWriter::create(dest, protection)?;
    if let Err(e) = super::copy_rdb_parsed(src, &mut check, &mut |b| w.write(b)) {
        return Err(match check.refused {
            Some(why) => anyhow::anyhow!("{why}"),
            None => e,
        });
    }
    if let Some(want) = sm.keys {
        if want != check.keys {
            anyhow::bail!(
                "it holds {} keys, but its manifest records {want}",
                check.keys
            );
        }
    }
    w.commit_verbatim()
        .map_err(|e| anyhow::anyhow!("writing {}: {e:#}", dest.display()))?;
    Ok(check.keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(n: usize, slots: &[[u16; 2]]) -> Shard {
        Shard {
            backup: shard_name("c", n),
            node_id: format!("{n:040}"),
            addr: format!("127.0.0.1:{}", 7000 + n),
            slots: slots.to_vec(),
            keys: Some(n as u64),
            replicas: 1,
        }
    }

    fn manifest(shards: Vec<Shard>) -> ClusterManifest {
        ClusterManifest {
            format: CLUSTER_FORMAT.into(),
            name: "c".into(),
            created: "2026-01-01T00:00:00Z".into(),
            created_ms: 1_767_225_600_000,
            shards,
            rampart_version: "0.1.0".into(),
            source: None,
        }
    }

    fn three() -> ClusterManifest {
        manifest(vec![
            shard(1, &[[0, 5460]]),
            shard(2, &[[5461, 10922]]),
            shard(3, &[[10923, 16383]]),
        ])
    }

    /// Parses `m` read as cluster backup "c".
    fn parse(m: &ClusterManifest) -> Result<ClusterManifest, String> {
        ClusterManifest::parse("c", &serde_json::to_vec(m).unwrap())
    }

    #[test]
    fn a_whole_cluster_round_trips() {
        let m = three();
        assert_eq!(parse(&m).unwrap(), m);
        // Several ranges per shard, in any order between shards.
        let m = manifest(vec![
            shard(1, &[[100, 16383]]),
            shard(2, &[[0, 0], [1, 99]]),
        ]);
        assert_eq!(parse(&m).unwrap(), m);
    }

    #[test]
    fn keys_and_replicas_may_be_absent() {
        let json = r#"{"format":"rampart-cluster-backup-v1","name":"c","created":"x","created_ms":0,
            "rampart_version":"0.1.0","shards":[{"backup":"c-shard-1","node_id":"a","addr":"h:1","slots":[[0,16383]]}]}"#;
        let m = ClusterManifest::parse("c", json.as_bytes()).unwrap();
        assert_eq!((m.shards[0].keys, m.shards[0].replicas), (None, 0));
    }

    #[test]
    fn a_manifest_that_is_not_a_whole_cluster_is_refused() {
        let cases: Vec<(ClusterManifest, &str)> = vec![
            (
                ClusterManifest {
                    format: "rampart-cluster-backup-v9".into(),
                    ..three()
                },
                "format",
            ),
            (
                ClusterManifest {
                    name: "other".into(),
                    ..three()
                },
                "names cluster backup \"other\"",
            ),
            (manifest(vec![]), "no shards"),
            (
                manifest(vec![shard(1, &[[0, 8000]]), shard(2, &[[8000, 16383]])]),
                "slot 8000 is in more than one shard",
            ),
            (
                manifest(vec![shard(1, &[[0, 8000]]), shard(2, &[[8002, 16383]])]),
                "slot 8001 is in none",
            ),
            (
                manifest(vec![shard(1, &[[0, 16384]])]),
                "bad slot range 0-16384",
            ),
            (
                manifest(vec![shard(1, &[[9, 3]]), shard(2, &[[0, 16383]])]),
                "bad slot range 9-3",
            ),
            (manifest(vec![shard(1, &[[0, 10], [5, 16383]])]), "overlaps"),
            (
                manifest(vec![shard(1, &[[0, 16383]]), shard(2, &[])]),
                "serves no slot",
            ),
            (
                manifest(vec![
                    shard(1, &[[0, 100]]),
                    Shard {
                        backup: "c-shard-1".into(),
                        ..shard(2, &[[101, 16383]])
                    },
                ]),
                "listed twice",
            ),
            (
                manifest(vec![Shard {
                    backup: "../x".into(),
                    ..shard(1, &[[0, 16383]])
                }]),
                "invalid backup name",
            ),
        ];
        for (m, want) in cases {
            let e = parse(&m).unwrap_err();
            assert!(e.contains(want), "{e:?} should say {want:?}");
        }
        for junk in [&b""[..], b"{", b"[]", b"{\"format\":1}"] {
            assert!(ClusterManifest::parse("c", junk).is_err());
        }
    }

    #[test]
    fn every_node_gets_the_same_cluster_with_itself_flagged() {
        let m = three();
        let nodes: Vec<Node> = (0..6)
            .map(|i| Node {
                dir: PathBuf::from(format!("/d{i}")),
                port: 7000 + i as u16,
                bus_port: 17000 + i as u16,
                id: new_node_id(),
                shard: i % 3 + 1,
                master: i < 3,
                keys: 0,
            })
            .collect();
        let lines = nodes_conf(&m, &nodes, "127.0.0.1");
        let mut conf = NodesConf {
            nodes: lines,
            current_epoch: 3,
            last_vote_epoch: 0,
        };
        conf.nodes[4].flags |= node_flags::MYSELF;
        // What nodes_conf::save writes is what the server's loader reads.
        let back = NodesConf::parse(&conf.to_string()).unwrap();
        assert_eq!(back, conf);
        let me = back.myself().unwrap();
        assert_eq!(me.id, nodes[4].id);
        assert_eq!(me.master.as_deref(), Some(nodes[1].id.as_str()));
        assert_eq!(me.config_epoch, 2);
        for (i, n) in back.nodes.iter().take(3).enumerate() {
            assert_eq!(n.config_epoch, i as u64 + 1);
            let want: Vec<[u16; 2]> = m.shards[i].slots.clone();
            assert_eq!(line_ranges(n), want);
        }
        assert!(nodes.iter().all(|n| n.id.len() == 40));
        assert_ne!(nodes[0].id, nodes[1].id);
    }

    #[test]
    fn a_shard_refuses_keys_outside_its_slots() {
        let slot = key_hash_slot(b"k");
        let mut check = SlotCheck {
            slots: slot_set(&[[slot, slot]]).unwrap(),
            keys: 0,
            refused: None,
        };
        assert!(check.entry(0, b"k", Value::string(b"v"), None).is_ok());
        assert!(check.entry(0, b"other", Value::string(b"v"), None).is_err());
        assert!(check
            .refused
            .as_deref()
            .unwrap()
            .contains("not one of its slots"));
        assert!(check.entry(1, b"k", Value::string(b"v"), None).is_err());
        assert_eq!(check.keys, 1);
    }
}
