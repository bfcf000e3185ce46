//! rampart-replication: the PSYNC-compatible primary and replica sides, the
//! backlog and the encrypted full sync.
//!
//! Nothing is implemented here yet; the server already routes every write
//! through its replication hook so that this crate can attach to it.
