//! rampart-persistence: the RDB codec inside encrypted snapshot files, and the
//! backup stores (S3-compatible, local directory).
//!
//! Nothing is implemented here yet: the server keeps its data in memory only
//! until the persistence issue lands. The crate exists so the dependency
//! direction (keyspace, kms → persistence → replication → server) is fixed.
