//! The `rampart` command line (keyring and snapshot tools).
