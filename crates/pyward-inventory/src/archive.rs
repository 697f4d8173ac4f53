//! Package archives (`.whl`, `.tar.gz`/`.zip` sdists, `.egg`) as a [`crate::MemTree`], read with
//! limits on size, entry count and compression ratio.

use crate::tree::{Limits, MemTree};
use pyward_core::{ArchiveKind, Error, Package, Warning};
use std::path::Path;

/// The archive kind of a file, from its name (`.whl`, `.tar.gz`/`.tgz`/`.tar.bz2`/`.zip` sdist,
/// `.egg`), or `None` when it is not a package archive.
pub fn archive_kind(path: &Path) -> Option<ArchiveKind> {
    let _ = path;
    None
}

/// Read a package archive into memory, keeping the contents of every member (archives are small
/// and every file of a package matters), bounded by `limits`. Member paths are made absolute in
/// tree form; members that escape (`../`, absolute) are skipped with a warning.
pub fn open(
    path: &Path,
    kind: ArchiveKind,
    limits: &Limits,
    warnings: &mut Vec<Warning>,
) -> Result<MemTree, Error> {
    let _ = (path, kind, limits, warnings);
    Err(Error::input(path.display(), "archives are not supported yet"))
}

/// The package an archive holds, from its own metadata (wheel `*.dist-info/METADATA`, sdist
/// `PKG-INFO`, egg `EGG-INFO/PKG-INFO`), with `source` set to the archive kind.
pub fn describe(tree: &MemTree, kind: ArchiveKind, warnings: &mut Vec<Warning>) -> Option<Package> {
    let _ = (tree, kind, warnings);
    None
}
