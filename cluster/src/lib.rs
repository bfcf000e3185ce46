//! Redis Cluster, the pure parts: no sockets, no clocks, no server state.
//!
//! - [`slot`]: CRC16, [`slot::key_hash_slot`] with hash tags, and
//!   [`slot::SlotSet`], the 16384-bit slot bitmap in Redis's layout.
//! - [`msg`]: the cluster bus codec, Redis 7.0's `clusterMsg` byte for byte
//!   ([`msg::decode`] never panics, [`msg::encode`] gives back what was
//!   decoded), and [`msg::Framer`], which cuts a link's byte stream into
//!   messages.
//! - [`nodes_conf`]: Redis 7.0's `nodes.conf` (the `CLUSTER NODES` lines plus
//!   the `vars` line), parsed and written, the file replaced atomically.
//!
//! - [`state`]: the node table and gossip state machine (MEET/PING/PONG,
//!   UPDATE, epochs, slot ownership, cluster ok/fail), fed events and time
//!   by the server's I/O and answering with [`state::Action`]s. Failure
//!   detection and elections will sit beside it.

#![warn(missing_docs)]

pub mod msg;
pub mod nodes_conf;
pub mod slot;
pub mod state;

pub use msg::{decode, encode, Body, DecodeError, Framer, Header, Msg};
pub use slot::{key_hash_slot, SlotSet};
