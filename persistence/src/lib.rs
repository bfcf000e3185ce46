//! rampart-persistence: the RDB codec inside encrypted snapshot files, the
//! snapshot files themselves, the data directory's dataset marker, and
//! (later) the backup stores.
//!
//! [`rdb`] reads and writes Redis's RDB format, version 10 (what Redis 7.0
//! reads and writes): whole files for snapshots and full syncs, and single
//! values for DUMP / RESTORE. The encryption envelope around a snapshot is
//! the kms crate's business; this crate sees plaintext bytes only, in
//! memory.
//!
//! [`backup`] keeps backups in a [`backup::BackupStore`]: an S3-compatible
//! bucket or a local directory.

pub mod backup;
pub mod dataset;
pub mod rdb;
pub mod snapshot;
