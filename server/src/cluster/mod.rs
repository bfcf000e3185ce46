//! Cluster mode's I/O, kept thin: the state machine ([`rampart_cluster::state`])
//! decides, this module carries out its [`Action`]s. One bus listener per
//! bind address on `cluster-port` (or port + 10000), one outbound link task
//! per known node, a 100 ms tick, nodes.conf saved whenever the state asks.
//! With `tls-cluster yes` every link, accepted or opened, runs over TLS
//! (see [`crate::tls`]); the state machine never knows.
//! Nothing here runs with `cluster-enabled no`; the request path then pays
//! one `OnceLock` load (see `dispatch`).

pub mod route;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rampart_cluster::msg::{decode, encode, Framer};
use rampart_cluster::nodes_conf;
use rampart_cluster::state::{Action, Cluster, LinkId, ReplStatus, Settings};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::state::{now_ms, Server};

/// A link's queue of encoded messages.
/// What a link's task writes, and what it has not written yet.
struct Outbox {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    /// Bytes queued or being written (Redis's link send buffer), for
    /// `cluster-link-sendbuf-limit` and CLUSTER LINKS.
    queued: Arc<AtomicUsize>,
    /// Ends the link's task even while a write to a peer that reads
    /// nothing is pending.
    kill: Arc<tokio::sync::Notify>,
}

/// The task's end of an [`Outbox`].
struct Inbox {
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    kill: Arc<tokio::sync::Notify>,
}

fn outbox() -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let kill = Arc::new(tokio::sync::Notify::new());
    (
        Outbox {
            tx,
            queued: queued.clone(),
            kill: kill.clone(),
        },
        Inbox { rx, queued, kill },
    )
}

/// Cluster mode of a running server.
pub struct Bus {
    /// The state machine; held only for short, non-blocking steps.
    pub state: Mutex<Cluster>,
    links: Mutex<HashMap<LinkId, Outbox>>,
    /// nodes.conf's path (`dir` + `cluster-config-file`).
    pub path: PathBuf,
    rt: tokio::runtime::Handle,
    /// The server, for link tasks started from a command handler.
    srv: std::sync::Weak<Server>,
    /// Role changes and write pauses, carried out one after the other in
    /// the order the state machine asked for them (see [`role_worker`]).
    roles: mpsc::UnboundedSender<Action>,
    /// Links freed for passing `cluster-link-sendbuf-limit` (CLUSTER
    /// INFO's `total_cluster_links_buffer_limit_exceeded`).
    pub links_buffer_limit_exceeded: AtomicU64,
    /// Held while nodes.conf is written: saves from the bus tasks and from
    /// commands run on several threads, and each must write the newest
    /// state, not overwrite a newer file with the state it saw earlier.
    saving: Mutex<Saved>,
    /// Bumped each time the state machine asks for a save.
    save_asked: AtomicU64,
}

/// What the last nodes.conf write covered (under [`Bus::saving`]).
#[derive(Default)]
struct Saved {
    /// The newest save request it included.
    asked: u64,
    /// The newest one it included with fsyncs.
    synced: u64,
}

/// The ports this node announces: (`port`, `pport`, `cport`), as Redis
/// 7.0's `deriveAnnouncedPorts`. With `tls-cluster yes` clients are sent
/// to the TLS port (`port`) and `pport` carries the plaintext port for
/// plaintext clients; without it `pport` is 0. The bus port is the one
/// listened on (see [`bus_listen_port`]) unless `cluster-announce-bus-port`
/// says otherwise.
fn announced_ports(c: &crate::config::Config) -> (i64, i64, i64) {
    let tls_cluster = c.flag("tls-cluster");
    let base = if tls_cluster {
        c.int("tls-port")
    } else {
        c.int("port")
    };
    let mut port = base;
    let mut pport = if tls_cluster { c.int("port") } else { 0 };
    let mut cport = bus_listen_port(c);
    let (announce_tls, announce) = (
        c.int("cluster-announce-tls-port"),
        c.int("cluster-announce-port"),
    );
    if tls_cluster && announce_tls != 0 {
        port = announce_tls;
        pport = announce;
    } else if announce != 0 {
        port = announce;
    }
    if c.int("cluster-announce-bus-port") != 0 {
        cport = c.int("cluster-announce-bus-port");
    }
    (port, pport, cport)
}

/// The settings the state machine announces, from the server's config.
fn settings(srv: &Server) -> Settings {
    let c = &srv.config;
    let (port, pport, cport) = announced_ports(c);
    Settings {
        node_timeout: c.int("cluster-node-timeout").max(1) as u64,
        require_full_coverage: c.flag("cluster-require-full-coverage"),
        announce_ip: c.get("cluster-announce-ip").unwrap_or_default(),
        announce_hostname: c.get("cluster-announce-hostname").unwrap_or_default(),
        port: port as u16,
        pport: pport as u16,
        cport: cport as u16,
        replica_validity_factor: c.int("cluster-replica-validity-factor").max(0) as u64,
        repl_ping_period: c.int("repl-ping-replica-period").max(1) as u64 * 1000,
        migration_barrier: c.int("cluster-migration-barrier").max(0) as u64,
        allow_replica_migration: c.flag("cluster-allow-replica-migration"),
        replica_no_failover: c.flag("cluster-replica-no-failover"),
    }
}

/// The bus port to listen on: `cluster-port`, else the client port the
/// cluster uses (the TLS one with `tls-cluster yes`) + 10000, as Redis.
fn bus_listen_port(c: &crate::config::Config) -> i64 {
    match c.int("cluster-port") {
        0 if c.flag("tls-cluster") => c.int("tls-port") + 10000,
        0 => c.int("port") + 10000,
        p => p,
    }
}

/// How long a bus peer may take to finish its TLS handshake; a socket that
/// opens and says nothing would otherwise hold a task for ever.
const BUS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bus link's byte stream: TCP, or TLS over it with `tls-cluster yes`.
trait LinkStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> LinkStream for T {}

/// The two ends of a bus socket, as the state machine sees them (IPv4
/// addresses unmapped).
fn link_addrs(sock: &TcpStream) -> (String, String) {
    let ip = |a: std::io::Result<std::net::SocketAddr>| {
        a.map(|a| a.ip().to_canonical().to_string())
            .unwrap_or_default()
    };
    (ip(sock.peer_addr()), ip(sock.local_addr()))
}

/// One accepted bus connection: the TLS handshake first with `tls-cluster
/// yes` (a failed or slow one is one log line and the socket is closed,
/// before the state machine hears of it), then the link.
async fn accept_link(srv: Arc<Server>, bus: Arc<Bus>, sock: TcpStream) {
    let _ = sock.set_nodelay(true);
    let (peer, local) = link_addrs(&sock);
    let stream: Box<dyn LinkStream> = if srv.config.flag("tls-cluster") {
        let Some(acceptor) = srv.tls.cluster_acceptor() else {
            tracing::warn!(
                "Error accepting cluster node connection from {peer}: TLS is not configured"
            );
            return;
        };
        match tokio::time::timeout(BUS_HANDSHAKE_TIMEOUT, acceptor.accept(sock)).await {
            Ok(Ok(s)) => Box::new(s),
            Ok(Err(e)) => {
                tracing::warn!("Error accepting cluster node connection from {peer}: {e}");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "Error accepting cluster node connection from {peer}: TLS handshake timed out"
                );
                return;
            }
        }
    } else {
        Box::new(sock)
    };
    let link = bus.state.lock().accept(now_ms());
    let (out, inbox) = outbox();
    bus.links.lock().insert(link, out);
    run_link(srv, bus, link, stream, peer, local, inbox).await;
}

/// Opens an outgoing bus link's stream to `addr` (TLS with `tls-cluster
/// yes`), within `timeout`.
async fn connect_link(
    srv: &Server,
    addr: &str,
    ip: &str,
    timeout: Duration,
) -> Result<(Box<dyn LinkStream>, String, String), String> {
    let sock = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| "connection timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let _ = sock.set_nodelay(true);
    let (peer, local) = link_addrs(&sock);
    if !srv.config.flag("tls-cluster") {
        return Ok((Box::new(sock), peer, local));
    }
    let tls = tokio::time::timeout(timeout, crate::tls::connect(srv, sock, ip))
        .await
        .map_err(|_| "TLS handshake timed out".to_string())?
        .map_err(|e| format!("TLS handshake: {e}"))?;
    Ok((Box::new(tls), peer, local))
}

/// With `cluster-enabled yes`: loads or creates nodes.conf, opens the bus
/// listeners and starts the tick. Must run on the server's runtime. A
/// nodes.conf that cannot be read or written, or a bus port that cannot be
/// bound, stops the server, as in Redis.
pub fn start(srv: &Arc<Server>) -> anyhow::Result<()> {
    if !srv.config.flag("cluster-enabled") {
        return Ok(());
    }
    let dir = PathBuf::from(srv.config.get("dir").unwrap_or_default());
    let file = srv
        .config
        .get("cluster-config-file")
        .unwrap_or_else(|| "nodes.conf".into());
    let path = dir.join(file);
    let now = now_ms();
    let seed: u64 = rand::random();
    let st = match nodes_conf::load(&path)? {
        Some(conf) => {
            let c = Cluster::from_conf(&conf, settings(srv), seed, now).map_err(|e| {
                anyhow::anyhow!(
                    "Unrecoverable error: corrupted cluster config file \"{}\": {e}",
                    path.display()
                )
            })?;
            tracing::info!("Node configuration loaded, I'm {}", c.myself().id());
            c
        }
        None => {
            let c = Cluster::new(settings(srv), seed, now);
            tracing::info!("No cluster configuration found, I'm {}", c.myself().id());
            nodes_conf::save(&path, &c.to_conf()).map_err(|e| {
                anyhow::anyhow!(
                    "Fatal: can't update cluster config file {}: {e}",
                    path.display()
                )
            })?;
            c
        }
    };
    let binds = srv.config.get("bind").unwrap_or_default();
    let listeners = crate::listen::open(&binds, bus_listen_port(&srv.config))?;
    let (roles, roles_rx) = mpsc::unbounded_channel();
    let bus = Arc::new(Bus {
        state: Mutex::new(st),
        links: Mutex::new(HashMap::new()),
        path,
        rt: tokio::runtime::Handle::current(),
        srv: Arc::downgrade(srv),
        roles,
        links_buffer_limit_exceeded: AtomicU64::new(0),
        saving: Mutex::new(Saved::default()),
        save_asked: AtomicU64::new(0),
    });
    tokio::spawn(role_worker(Arc::downgrade(srv), roles_rx));
    if srv.cluster.set(bus.clone()).is_err() {
        anyhow::bail!("cluster mode started twice");
    }
    for l in listeners {
        l.set_nonblocking(true)?;
        let l = tokio::net::TcpListener::from_std(l)?;
        let bus = bus.clone();
        let srv = srv.clone();
        tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((sock, _)) => {
                        tokio::spawn(accept_link(srv.clone(), bus.clone(), sock));
                    }
                    Err(e) => {
                        tracing::warn!("Error accepting cluster node: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    let srv2 = srv.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            if let Some(bus) = srv2.cluster.get() {
                let status = repl_status(&srv2);
                {
                    let mut st = bus.state.lock();
                    st.set_repl_status(status);
                    st.tick(now_ms());
                }
                bus.free_links_over_limit(&srv2);
                bus.flush();
            }
        }
    });
    Ok(())
}

impl Bus {
    /// Carries out what the state machine asked for. Call after every change.
    pub fn flush(&self) {
        self.flush_with(true);
    }

    /// [`Bus::flush`], writing nodes.conf without fsync, as Redis saves
    /// after CLUSTER SETSLOT.
    pub fn flush_unsynced(&self) {
        self.flush_with(false);
    }

    fn flush_with(&self, sync: bool) {
        let Some(srv) = self.srv.upgrade() else {
            return;
        };
        let srv = &srv;
        let (actions, asked) = {
            let mut st = self.state.lock();
            let actions = st.take_actions();
            // Numbered under the state's lock, so a save that includes a
            // number includes that change.
            let asked = actions
                .contains(&Action::Save)
                .then(|| self.save_asked.fetch_add(1, Ordering::Relaxed) + 1);
            (actions, asked)
        };
        for a in actions {
            match a {
                Action::Connect {
                    link, ip, cport, ..
                } => {
                    let (out, inbox) = outbox();
                    self.links.lock().insert(link, out);
                    let srv = srv.clone();
                    let timeout = self.state.lock().settings.node_timeout;
                    self.rt.spawn(async move {
                        let Some(bus) = srv.cluster.get().cloned() else {
                            return;
                        };
                        let addr = if ip.contains(':') {
                            format!("[{ip}]:{cport}")
                        } else {
                            format!("{ip}:{cport}")
                        };
                        let timeout = Duration::from_millis(timeout.max(1000));
                        match connect_link(&srv, &addr, &ip, timeout).await {
                            Ok((stream, peer, local)) => {
                                run_link(srv.clone(), bus, link, stream, peer, local, inbox).await
                            }
                            Err(e) => {
                                // Retried every tick while the node is
                                // unreachable: not worth a warning each time.
                                tracing::debug!("Connecting to cluster node {addr} failed: {e}");
                                bus.closed(&srv, link);
                            }
                        }
                    });
                }
                Action::Send { link, msg } => {
                    if let Some(out) = self.links.lock().get(&link) {
                        let bytes = encode(&msg);
                        out.queued.fetch_add(bytes.len(), Ordering::Relaxed);
                        let _ = out.tx.send(bytes);
                    }
                }
                Action::Close(link) => {
                    // Dropping the sender ends the link's task.
                    self.links.lock().remove(&link);
                }
                Action::Save => {}
                Action::DropShardChannels(slots) => {
                    srv.pubsub
                        .drop_shard_slots(&slots, rampart_cluster::key_hash_slot);
                }
                Action::DropSlots(slots) => {
                    let srv = srv.clone();
                    self.rt.spawn_blocking(move || drop_slots(&srv, &slots));
                }
                Action::Log(line) => tracing::warn!("{line}"),
                a @ (Action::Replicate { .. }
                | Action::BecomePrimary
                | Action::PauseWrites { .. }
                | Action::ResumeWrites
                | Action::FlushAll) => {
                    let _ = self.roles.send(a);
                }
                Action::Deliver {
                    shard,
                    channel,
                    message,
                } => {
                    srv.pubsub.publish(&channel, &message, shard);
                }
            }
        }
        if let Some(asked) = asked {
            let mut saved = self.saving.lock();
            // Coalesced as Redis's once-per-loop save: a write made while
            // this one waited for the lock may already cover it.
            if saved.asked >= asked && (!sync || saved.synced >= asked) {
                return;
            }
            let (conf, newest) = {
                let st = self.state.lock();
                (st.to_conf(), self.save_asked.load(Ordering::Relaxed))
            };
            let written = if sync {
                nodes_conf::save(&self.path, &conf)
            } else {
                nodes_conf::save_unsynced(&self.path, &conf)
            };
            match written {
                Ok(()) => {
                    saved.asked = newest;
                    if sync {
                        saved.synced = newest;
                    }
                }
                Err(e) => tracing::warn!(
                    "Can't update cluster config file {}: {e}",
                    self.path.display()
                ),
            }
        }
    }

    /// Sends a message published here to the nodes that deliver it too:
    /// every node for PUBLISH, the nodes of my shard for SPUBLISH (`shard`).
    pub fn publish(&self, channel: &[u8], message: &[u8], shard: bool) {
        self.state.lock().publish(channel, message, shard);
        self.flush();
    }

    /// Writes nodes.conf now (CLUSTER SAVECONFIG).
    pub fn save_now(&self) -> std::io::Result<()> {
        let _saving = self.saving.lock();
        let conf = self.state.lock().to_conf();
        nodes_conf::save(&self.path, &conf)
    }

    /// [`Bus::flush`] on a blocking thread of the bus's runtime, then
    /// `done`: a command whose change must be on disk before it replies
    /// (an import closed with a bumped epoch) waits for the fsyncs there,
    /// not on its connection thread, whose other clients go on.
    pub fn flush_then(self: &Arc<Self>, done: impl FnOnce() + Send + 'static) {
        let bus = self.clone();
        self.rt.spawn_blocking(move || {
            bus.flush();
            done();
        });
    }

    /// Bytes queued on `link` and not yet written (CLUSTER LINKS'
    /// `send-buffer-allocated` and `-used`).
    pub fn queued(&self, link: LinkId) -> usize {
        self.links
            .lock()
            .get(&link)
            .map_or(0, |o| o.queued.load(Ordering::Relaxed))
    }

    /// Frees the links whose unwritten bytes passed
    /// `cluster-link-sendbuf-limit` (a peer that stopped reading), as
    /// Redis's `freeClusterLinkOnBufferLimitReached` each cron run.
    fn free_links_over_limit(&self, srv: &Arc<Server>) {
        let limit = srv.config.int("cluster-link-sendbuf-limit");
        if limit <= 0 {
            return;
        }
        let over: Vec<(LinkId, usize)> = self
            .links
            .lock()
            .iter()
            .map(|(l, o)| (*l, o.queued.load(Ordering::Relaxed)))
            .filter(|(_, q)| *q as i64 > limit)
            .collect();
        for (link, used) in over {
            let (dir, node) = self
                .state
                .lock()
                .links()
                .into_iter()
                .find(|(l, ..)| *l == link)
                .map(|(_, out, node, _)| {
                    (
                        if out { "to" } else { "from" },
                        node.map(|n| rampart_cluster::state::name_str(&n))
                            .unwrap_or_default(),
                    )
                })
                .unwrap_or(("to", String::new()));
            tracing::warn!(
                "Freeing cluster link({dir} node {node}, used memory: {used}) due to exceeding send buffer memory limit."
            );
            if let Some(out) = self.links.lock().remove(&link) {
                out.kill.notify_one();
            }
            self.links_buffer_limit_exceeded
                .fetch_add(1, Ordering::Relaxed);
            self.state.lock().link_closed(link);
        }
    }

    fn closed(&self, srv: &Arc<Server>, link: LinkId) {
        self.links.lock().remove(&link);
        self.state.lock().link_closed(link);
        let _ = srv;
        self.flush();
    }
}

/// What replication looks like to the state machine, each tick.
fn repl_status(srv: &Server) -> ReplStatus {
    let replicating = srv.repl.is_replica();
    let link = srv.repl.link();
    ReplStatus {
        offset: srv.repl.offset(),
        replicating,
        link_up: replicating && link.state == "connected",
        last_io_ms: link.last_io_ms,
        down_since_ms: link.down_since_ms,
    }
}

/// Carries out role changes and write pauses in order, each off the async
/// workers (they take the exclusive gate, as REPLICAOF runs under it).
async fn role_worker(srv: std::sync::Weak<Server>, mut rx: mpsc::UnboundedReceiver<Action>) {
    while let Some(a) = rx.recv().await {
        let Some(srv) = srv.upgrade() else { return };
        // At startup the cluster's first tick comes before replication is
        // started (`repl::start`), and a replica link cannot start before
        // it: wait for it rather than lose the Replicate.
        while srv.arc().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = tokio::task::spawn_blocking(move || role_action(&srv, a)).await;
    }
}

fn role_action(srv: &Arc<Server>, a: Action) {
    match a {
        Action::Replicate { ip, port } => {
            let _gate = srv.keyspace.exclusive();
            if srv.repl.is_replica() {
                let l = srv.repl.link();
                if l.host.eq_ignore_ascii_case(&ip) && l.port == port {
                    return;
                }
            }
            crate::repl::start_replica(srv, ip.clone(), port);
            tracing::info!("Cluster: replicating {ip}:{port}");
        }
        Action::BecomePrimary => {
            let _gate = srv.keyspace.exclusive();
            if srv.repl.is_replica() {
                crate::repl::promote(srv, "cluster failover");
            }
        }
        Action::PauseWrites { .. } => {
            srv.pause.cluster.store(true, Ordering::Release);
            // Writes already past the pause check finish before the gate
            // is ours; one that passed the check but had not reached the
            // gate yet may still land after it: read until the offset
            // holds still, so the one announced is final.
            let read = || {
                let _gate = srv.keyspace.exclusive();
                srv.repl.offset()
            };
            let mut offset = read();
            for _ in 0..50 {
                std::thread::sleep(Duration::from_millis(20));
                let again = read();
                if again == offset {
                    break;
                }
                offset = again;
            }
            if let Some(bus) = srv.cluster.get() {
                bus.state.lock().writes_paused(offset, now_ms());
                bus.flush();
            }
        }
        Action::ResumeWrites => {
            srv.pause.cluster.store(false, Ordering::Release);
            srv.pause.wake.notify_waiters();
        }
        Action::FlushAll => {
            // CLUSTER RESET of a replica (Redis's emptyData): db 0 is the
            // only one in cluster mode.
            let _gate = srv.keyspace.exclusive();
            let now = now_ms();
            let db = srv.keyspace.db(0);
            let mut all = Vec::new();
            db.for_each(now, |n| all.push(n.key.to_vec()));
            for k in &all {
                db.delete(k, now);
            }
        }
        _ => {}
    }
}

/// Deletes the keys of slots another node now owns (Redis's
/// `delKeysInSlot` after `clusterUpdateSlotsConfigWith`).
fn drop_slots(srv: &Server, slots: &[u16]) {
    let db = srv.keyspace.db(0);
    // A slot moved by a reshard is empty by now: the per-slot counters
    // say so without stopping every client for the exclusive gate, which
    // each of a reshard's thousand slots did.
    if slots.iter().all(|&s| db.count_in_slot(s) == 0) {
        return;
    }
    let _gate = srv.keyspace.exclusive();
    let now = now_ms();
    // The per-slot index visits only the shards holding these slots.
    let doomed = db.keys_in_slots(slots);
    for k in &doomed {
        db.delete(k, now);
    }
    if !doomed.is_empty() {
        tracing::warn!(
            "Deleted {} keys of {} slots now served by another node",
            doomed.len(),
            slots.len()
        );
    }
}

/// One link: reads frames into the state machine, writes its outbox. Ends
/// (and tells the state machine) on EOF, an I/O error, garbage, or when
/// the state machine drops the link.
async fn run_link(
    srv: Arc<Server>,
    bus: Arc<Bus>,
    link: LinkId,
    stream: Box<dyn LinkStream>,
    peer: String,
    local: String,
    inbox: Inbox,
) {
    let Inbox {
        mut rx,
        queued,
        kill,
    } = inbox;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut framer = Framer::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            _ = kill.notified() => break,
            out = rx.recv() => match out {
                Some(bytes) => {
                    // TLS holds what it encrypted until flushed. A peer
                    // that reads nothing must not hold the task forever:
                    // the send-buffer limit kills it.
                    let written = tokio::select! {
                        r = async {
                            wr.write_all(&bytes).await?;
                            wr.flush().await
                        } => r.is_ok(),
                        _ = kill.notified() => false,
                    };
                    queued.fetch_sub(bytes.len(), Ordering::Relaxed);
                    if !written {
                        break;
                    }
                }
                None => break,
            },
            n = rd.read(&mut buf) => {
                let n = match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                framer.push(&buf[..n]);
                let mut bad = None;
                loop {
                    match framer.next_frame() {
                        Ok(Some(frame)) => match decode(&frame) {
                            // DEBUG DROP-CLUSTER-PACKET-FILTER: a test
                            // suite's way to make a node deaf to one type.
                            Ok(msg) if srv.debug.drops_packet(msg.body.msg_type()) => {
                                tracing::warn!("Dropping packet that matches debug drop filter");
                            }
                            Ok(msg) => {
                                bus.state.lock().receive(link, &peer, &local, &msg, now_ms());
                                bus.flush();
                            }
                            Err(e) => {
                                bad = Some(e.to_string());
                                break;
                            }
                        },
                        Ok(None) => break,
                        Err(e) => {
                            bad = Some(e.to_string());
                            break;
                        }
                    }
                }
                if let Some(why) = bad {
                    tracing::warn!("Bad message received on the cluster bus from {peer}, closing the link: {why}");
                    break;
                }
            }
        }
    }
    bus.closed(&srv, link);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn ports(pairs: &[(&str, &str)]) -> (i64, i64, i64) {
        let c = Config::default();
        for (k, v) in pairs {
            c.force(k, v);
        }
        announced_ports(&c)
    }

    /// The cases of Redis 7.0's `deriveAnnouncedPorts`.
    #[test]
    fn announced_ports_as_redis_derives_them() {
        // Plaintext cluster: no pport, bus at port + 10000.
        assert_eq!(ports(&[("port", "7000")]), (7000, 0, 17000));
        assert_eq!(
            ports(&[("port", "7000"), ("cluster-announce-port", "8000")]),
            (8000, 0, 17000)
        );
        // TLS cluster: the TLS port is the client port, the plain one is
        // pport, and the bus defaults from the TLS port.
        let tls = [
            ("port", "7000"),
            ("tls-port", "7100"),
            ("tls-cluster", "yes"),
        ];
        assert_eq!(ports(&tls), (7100, 7000, 17100));
        let mut over = tls.to_vec();
        over.push(("cluster-announce-tls-port", "9100"));
        over.push(("cluster-announce-port", "9000"));
        over.push(("cluster-announce-bus-port", "19000"));
        assert_eq!(ports(&over), (9100, 9000, 19000));
        // cluster-announce-port alone in a TLS cluster overrides the
        // client (TLS) port, and pport stays the plain port.
        let mut alone = tls.to_vec();
        alone.push(("cluster-announce-port", "9000"));
        alone.push(("cluster-port", "20000"));
        assert_eq!(ports(&alone), (9000, 7000, 20000));
    }
}
