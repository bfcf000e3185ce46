//! placeholder
use super::CommandSpec;

/// The family's table.
pub static COMMANDS: &[CommandSpec] = &[];
