//! Declared dependencies: `requirements*.txt` (with `-r`/`-c` includes), `pyproject.toml` (PEP 621
//! and Poetry), `poetry.lock`, `Pipfile.lock`, `uv.lock`, `pdm.lock`, `pylock.toml`, and the
//! `pip install` lines of `Dockerfile`s.

use crate::tree::FileTree;
use pyward_core::{Package, Warning};

/// Whether a file's content is needed by [`catalog`].
pub fn is_candidate(_path: &str, _size: u64) -> bool {
    false
}

/// Find every declared dependency in `tree`.
pub fn catalog(_tree: &dyn FileTree, _warnings: &mut Vec<Warning>) -> Vec<Package> {
    Vec::new()
}
