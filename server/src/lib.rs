//! rampart-server: the Redis-protocol front end.
//!
//! One abstraction, the command table ([`cmd::Registry`]), fed by one file
//! per command family and driven by [`dispatch`], which applies Redis's
//! generic rules once. Around it: the wire protocol ([`resp`]), the
//! connection loop ([`conn`]), configuration ([`config`]) and the shared
//! state ([`state`]).

pub mod acl;
pub mod backup;
pub mod blocking;
pub mod client;
pub mod client_mem;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod conn;
pub mod cores;
pub mod crash;
pub mod cron;
pub mod digest;
pub mod dispatch;
pub mod encryption;
pub mod evict;
pub mod failover;
pub mod harden;
pub mod info;
pub mod latency;
pub mod listen;
pub mod metrics;
pub mod monitor;
pub mod num;
pub(crate) mod outbox;
pub mod persist;
pub mod pqsort;
pub mod pubsub;
pub mod repl;
pub mod resp;
pub mod script;
pub mod shutdown;
pub mod slowlog;
pub mod state;
pub mod supervise;
pub mod testkit;
pub mod tls;
pub mod tracking;

/// The Redis version Rampart is compatible with, reported where clients
/// look for it (INFO `redis_version`, HELLO).
pub const REDIS_VERSION: &str = "7.0.15";
