//! Per-connection state that only its own connection touches.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;

use crate::state::ClientHandle;

/// One connection's private state.
pub struct Client {
    /// The part other connections can see.
    pub handle: Arc<ClientHandle>,
    /// Selected database.
    pub db: usize,
    /// RESP version (2 or 3).
    pub proto: u8,
    /// Passed AUTH (or no password is set).
    pub authenticated: bool,
    /// Its ACL user; `None` for the server's own clients (the link to
    /// our primary, internal callers), which no rule restricts, as
    /// Redis's clients with no user. Set with [`Client::set_user`].
    pub user: Option<Arc<rampart_acl::User>>,
    /// No ACL rule can refuse this client anything (no user, or one whose
    /// rules allow everything): the per-request check is one branch.
    pub acl_open: bool,
    /// The user table's epoch `user` was read at.
    pub acl_epoch: u64,
    /// Commands queued since MULTI (command id, arguments); `None`
    /// outside a transaction.
    pub multi: Option<Vec<(usize, Vec<Bytes>)>>,
    /// A command failed to queue: EXEC must answer EXECABORT.
    pub multi_error: bool,
    /// WATCHed keys.
    pub watched: Vec<(usize, Bytes)>,
    /// Set by the keyspace when a watched key changes.
    pub dirty_cas: Arc<AtomicBool>,
    /// CLIENT REPLY OFF.
    pub reply_off: bool,
    /// CLIENT REPLY SKIP: drop the next command's reply.
    pub skip_next: bool,
    /// Close the connection once the reply is written (QUIT, errors).
    pub close: bool,
    /// Set by a blocking command that found nothing: the connection waits
    /// for the reply before it runs anything else.
    pub blocked: Option<BlockState>,
    /// What this connection announced with REPLCONF (when it is a replica).
    pub repl: crate::repl::PeerInfo,
    /// Set by PSYNC/SYNC: the connection becomes a replica link.
    pub handoff: Option<crate::repl::Handoff>,
    /// The link to our primary: its writes pass replica-read-only.
    pub is_master: bool,
    /// ASKING was sent: the next command may touch a slot being imported.
    pub asking: bool,
    /// READONLY was sent (cluster replica reads).
    pub readonly: bool,
    /// Connected over TLS (the `tls-port`): with `tls-cluster yes` a
    /// plaintext client is shown and redirected to plaintext ports.
    pub tls: bool,
    /// The replication offset right after this client's last write that
    /// reached the stream (Redis's `woff`): what its WAIT waits for.
    pub woff: u64,
    /// On the link to our primary: the exact bytes of the command being
    /// applied, fed to this server's own stream once it is applied.
    pub master_feed: Option<Bytes>,
    /// Its Pub/Sub subscriptions.
    pub subs: crate::pubsub::Subs,
    /// CLIENT TRACKING is on in the default (not BCAST) mode: read-only
    /// commands remember the keys they read.
    pub tracking_keys: bool,
    /// CLIENT CACHING was given for the next command (or transaction).
    pub caching: bool,
}

/// A pending blocked command.
pub struct BlockState {
    /// Where the reply arrives.
    pub reply: tokio::sync::oneshot::Receiver<Vec<u8>>,
    /// When to give up (`None`: wait forever).
    pub deadline: Option<std::time::Instant>,
}

impl Client {
    /// Sets the ACL user (and whether its rules allow everything).
    pub fn set_user(&mut self, user: Option<Arc<rampart_acl::User>>) {
        self.acl_open = user.as_ref().is_none_or(|u| u.unrestricted());
        self.user = user;
    }

    /// State for a new connection.
    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Client {
        Client {
            handle,
            db: 0,
            proto: 2,
            authenticated,
            user: None,
            acl_open: true,
            acl_epoch: 0,
            multi: None,
            multi_error: false,
            watched: Vec::new(),
            dirty_cas: Arc::new(AtomicBool::new(false)),
            reply_off: false,
            skip_next: false,
            close: false,
            blocked: None,
            repl: crate::repl::PeerInfo::default(),
            handoff: None,
            is_master: false,
            asking: false,
            readonly: false,
            tls: false,
            woff: 0,
            master_feed: None,
            subs: Default::default(),
            tracking_keys: false,
            caching: false,
        }
    }
}
