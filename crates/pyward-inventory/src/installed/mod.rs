//! Installed packages: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` (folder or file), zipped
//! `.egg`, `conda-meta/*.json`; `RECORD` / `installed-files.txt` attribute files to packages;
//! `top_level.txt`, `direct_url.json`, `INSTALLER` where present.

pub mod metadata;

use crate::tree::FileTree;
use pyward_core::{Package, Warning};

/// Whether a file's content is needed by [`catalog`] (used to decide what to keep in memory while
/// streaming an image or archive).
pub fn is_candidate(_path: &str, _size: u64) -> bool {
    false
}

/// Find every installed package in `tree`. Problems with one package (corrupt METADATA, huge
/// files, invalid UTF-8) become warnings and the rest goes on.
pub fn catalog(_tree: &dyn FileTree, _warnings: &mut Vec<Warning>) -> Vec<Package> {
    Vec::new()
}
