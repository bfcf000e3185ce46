//! rampart-keyspace
