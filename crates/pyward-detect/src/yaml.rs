//! The YAML reader of pyward-rules (same parser, limits and positions), so a rules file's
//! `- detector:` items parse exactly as the rules loader sees the file.

pub(crate) use pyward_rules::yaml::*;

/// Largest rules file read.
pub(crate) const MAX_FILE_BYTES: u64 = 64 << 20;
