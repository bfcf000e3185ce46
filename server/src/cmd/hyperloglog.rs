//! The hyperloglog family. Placeholder: its commands land here.

use super::CommandSpec;

/// The family's table.
pub static COMMANDS: &[CommandSpec] = &[];
