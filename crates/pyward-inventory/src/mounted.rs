//! Package archives found in a scanned folder (a wheelhouse from `pip download -d`, a `dist/`
//! folder, a vendored sdist), opened and mounted into the folder's tree, so the packages they
//! hold are catalogued, checked and analysed like the archive given alone — "scan it before
//! you install it" for a whole folder of downloads.
//!
//! A mounted archive's members appear at `<archive path>!<member path>` in the tree (e.g.
//! `/wh/six-1.17.0-py3-none-any.whl!/six.py`) and are shown as `wh/six-…whl!six.py`. Archives
//! are read through the folder's own tree (never following a symlink out of it), one at a
//! time and bounded by the scan's limits; only the members that matter are kept in memory
//! (package metadata, and what the scan's analysis or policy asks for, within its budgets, as
//! for an image). An archive that cannot
//! be read is a warning, not a failed scan.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use pyward_core::{ArchiveKind, LayerRef, Package, Warning};

use crate::archive;
use crate::dir::DirTree;
use crate::tree::{FileEntry, FileTree, Keep, Limits, MemTree, ReadError};

/// Most archives mounted from one folder (a pip cache under a scanned root can hold
/// thousands; the rest are named in a warning).
pub const MAX_ARCHIVES: usize = 2_000;
/// Largest archive mounted.
pub const MAX_ARCHIVE_BYTES: u64 = 512 << 20;
/// Most archive bytes read in all.
pub const MAX_TOTAL_BYTES: u64 = 8 << 30;

/// Separates an archive's path from its members' paths in the tree.
const MOUNT_MARK: &str = "!";

/// A folder with the package archives found in it mounted.
pub struct MountedTree {
    base: DirTree,
    /// Archive path in the tree (`/wh/x.whl`) → its members.
    mounts: HashMap<String, MemTree>,
    /// The folder's entries and the archives' members, sorted; `None` when nothing was
    /// mounted (the folder's own list is used: a root filesystem's is not copied).
    entries: Option<Vec<FileEntry>>,
}

/// The mounted folder and the packages its archives describe.
pub struct Mounted {
    pub tree: MountedTree,
    /// One package per archive with metadata (paths already in the folder's tree).
    pub packages: Vec<Package>,
    /// Display prefixes (`wh/x.whl!`) of the mounted archives: catalogued entries under them
    /// that look installed (a wheel's own dist-info) are the archive's package.
    pub display_prefixes: Vec<String>,
}

/// Whether a file name is a Python package archive's (wheel `name-ver-py-abi-plat.whl`, sdist
/// `name-1.0.tar.gz` / `.zip` / `.tgz`, egg `name-1.0-py3.9.egg`): a generic `backup.zip` or
/// `data.tar.gz` in a project is not opened.
pub fn is_package_archive_name(name: &str) -> Option<ArchiveKind> {
    let (stem, kind) = archive::archive_name_parts(name)?;
    let parts: Vec<&str> = stem.split('-').collect();
    let versioned = |i: usize| {
        parts
            .get(i)
            .and_then(|p| p.bytes().next())
            .is_some_and(|b| b.is_ascii_digit())
    };
    let ok = match kind {
        ArchiveKind::Wheel => parts.len() >= 5 && versioned(1),
        ArchiveKind::Egg => parts.len() >= 2 && versioned(1),
        ArchiveKind::Sdist => parts.len() >= 2 && versioned(parts.len() - 1),
    };
    ok.then_some(kind)
}

/// Mount the package archives of `base` (see the module docs). Without any, the folder is
/// returned as it is (wrapped).
pub fn mount_archives(
    base: DirTree,
    limits: &Limits,
    keep: &dyn Keep,
    warnings: &mut Vec<Warning>,
) -> Mounted {
    let found: Vec<(String, u64, ArchiveKind)> = base
        .entries()
        .iter()
        .filter(|e| e.is_file())
        .filter_map(|e| {
            Some((
                e.path.clone(),
                e.size,
                is_package_archive_name(e.file_name())?,
            ))
        })
        .collect();
    // Which archives, in order, within the limits; then each opened on its own (in
    // parallel: they are independent), merged back in order.
    let mut chosen: Vec<(&String, String, ArchiveKind)> = Vec::new();
    let mut total = 0u64;
    for (i, (path, size, kind)) in found.iter().enumerate() {
        let shown = base.display_path(path);
        if i >= MAX_ARCHIVES || total.saturating_add(*size) > MAX_TOTAL_BYTES {
            warnings.push(Warning::new(
                base.name(),
                format!(
                    "{} package archive(s) in this folder were not opened (limits: {MAX_ARCHIVES} \
                     archives, {} GiB); scan them one by one",
                    found.len() - i,
                    MAX_TOTAL_BYTES >> 30
                ),
            ));
            break;
        }
        if *size > MAX_ARCHIVE_BYTES {
            warnings.push(Warning::new(
                &shown,
                format!(
                    "package archive of {size} bytes, over the {} MiB limit for archives inside \
                     a folder; not opened (scan it alone)",
                    MAX_ARCHIVE_BYTES >> 20
                ),
            ));
            continue;
        }
        total += size;
        chosen.push((path, shown, *kind));
    }
    use rayon::prelude::*;
    let opened: Vec<(Option<MemTree>, Option<Package>, Vec<Warning>)> = chosen
        .par_iter()
        .map(|(path, shown, kind)| {
            let mut w = Vec::new();
            let (tree, package) = open_one(&base, path, shown, *kind, limits, keep, &mut w);
            (tree, package, w)
        })
        .collect();
    let mut mounts = HashMap::new();
    let mut packages = Vec::new();
    let mut display_prefixes = Vec::new();
    for ((path, _, _), (tree, package, mut w)) in chosen.iter().zip(opened) {
        warnings.append(&mut w);
        packages.extend(package);
        if let Some(tree) = tree {
            display_prefixes.push(tree.display_prefix.clone());
            mounts.insert((*path).clone(), tree);
        }
    }
    let entries = (!mounts.is_empty()).then(|| {
        let mut entries = base.entries().to_vec();
        for (path, tree) in &mounts {
            entries.extend(tree.entries().iter().map(|e| FileEntry {
                path: format!("{path}{MOUNT_MARK}{}", e.path),
                ..e.clone()
            }));
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        entries
    });
    Mounted {
        tree: MountedTree {
            base,
            mounts,
            entries,
        },
        packages,
        display_prefixes,
    }
}

/// Read, open and trim one archive of the folder; its package with paths in the folder's tree.
fn open_one(
    base: &DirTree,
    path: &str,
    shown: &str,
    kind: ArchiveKind,
    limits: &Limits,
    keep: &dyn Keep,
    warnings: &mut Vec<Warning>,
) -> (Option<MemTree>, Option<Package>) {
    let bytes = match base.read(path, MAX_ARCHIVE_BYTES) {
        Ok(b) => b,
        Err(e) => {
            warnings.push(Warning::new(
                shown,
                format!("package archive not opened: {e}"),
            ));
            return (None, None);
        }
    };
    // Only what the catalogers and the scan want is kept (as while streaming an image):
    // metadata and manifests, then Python sources within the scan's byte budgets.
    let mut tree = match archive::open_bytes(Path::new(shown), &bytes, kind, limits, keep, warnings)
    {
        Ok(t) => t,
        Err(e) => {
            warnings.push(Warning::new(shown, format!("package archive skipped: {e}")));
            return (None, None);
        }
    };
    drop(bytes);
    tree.display_prefix = format!("{shown}{MOUNT_MARK}");
    let package = archive::describe(&tree, kind, warnings).map(|mut p| {
        let prefix = format!("{path}{MOUNT_MARK}");
        for f in &mut p.files {
            f.insert_str(0, &prefix);
        }
        p
    });
    (Some(tree), package)
}

impl MountedTree {
    /// The mounted archive holding `path` and the member's own path, if any.
    fn mount_of<'a>(&self, path: &'a str) -> Option<(&MemTree, &'a str)> {
        if self.mounts.is_empty() {
            return None;
        }
        // Every `!/` could end the archive's path (a folder may be named `x!`): try each.
        let mut from = 0;
        while let Some(i) = path[from..].find("!/") {
            let at = from + i;
            if let Some(t) = self.mounts.get(&path[..at]) {
                return Some((t, &path[at + MOUNT_MARK.len()..]));
            }
            from = at + 1;
        }
        None
    }
}

impl FileTree for MountedTree {
    fn name(&self) -> &str {
        self.base.name()
    }

    fn entries(&self) -> &[FileEntry] {
        self.entries.as_deref().unwrap_or(self.base.entries())
    }

    fn read(&self, path: &str, limit: u64) -> Result<Arc<[u8]>, ReadError> {
        match self.mount_of(path) {
            Some((t, inner)) => t.read(inner, limit),
            None => self.base.read(path, limit),
        }
    }

    fn layers(&self) -> &[LayerRef] {
        &[]
    }

    fn display_path(&self, path: &str) -> String {
        match self.mount_of(path) {
            Some((t, inner)) => t.display_path(inner),
            None => self.base.display_path(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_package_archive_names_are_opened() {
        for n in [
            "six-1.17.0-py2.py3-none-any.whl",
            "jeIlyfish-0.7.1.tar.gz",
            "requests-2.31.0.zip",
            "foo_bar-1.0-py3.9.egg",
            "python3-dateutil-2.8.1.tgz",
        ] {
            assert!(is_package_archive_name(n).is_some(), "{n}");
        }
        for n in [
            "backup.zip",
            "data.tar.gz",
            "x.whl",
            "release-notes.zip",
            "a-b.tar.gz",
        ] {
            assert!(is_package_archive_name(n).is_none(), "{n}");
        }
    }
    fn wheel(members: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in members {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn members_are_read_through_the_folder_and_cannot_escape_it() {
        let dir = tempfile::tempdir().unwrap();
        let wh = dir.path().join("wh");
        std::fs::create_dir(&wh).unwrap();
        let meta: &[u8] = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n";
        std::fs::write(
            wh.join("demo-1.0-py3-none-any.whl"),
            wheel(&[
                ("demo/__init__.py", b"x = 1\n"),
                ("demo-1.0.dist-info/METADATA", meta),
                ("../../escaped.py", b"import os\n"),
            ]),
        )
        .unwrap();
        std::fs::write(wh.join("cut-1.0-py3-none-any.whl"), b"PK\x03\x04").unwrap();
        let mut warnings = Vec::new();
        let base = DirTree::open(&wh, &mut warnings).unwrap();
        let keep = |_: &str, _: u64| true;
        let m = mount_archives(base, &Limits::default(), &keep, &mut warnings);
        assert_eq!(m.packages.len(), 1);
        let p = &m.packages[0];
        assert_eq!(p.name, "demo");
        assert_eq!(
            p.location.path, "demo-1.0-py3-none-any.whl",
            "the archive, as the folder shows it"
        );
        assert!(
            p.files
                .iter()
                .all(|f| f.starts_with("/demo-1.0-py3-none-any.whl!/")),
            "{:?}",
            p.files
        );
        let paths: Vec<&str> = m.tree.entries().iter().map(|e| e.path.as_str()).collect();
        assert!(
            paths.contains(&"/demo-1.0-py3-none-any.whl!/demo/__init__.py"),
            "{paths:?}"
        );
        assert!(
            paths.iter().all(|p| !p.contains("escaped")),
            "a member climbing out is skipped: {paths:?}"
        );
        let body = m
            .tree
            .read("/demo-1.0-py3-none-any.whl!/demo/__init__.py", 1 << 20)
            .unwrap();
        assert_eq!(&body[..], b"x = 1\n");
        assert_eq!(
            m.tree
                .display_path("/demo-1.0-py3-none-any.whl!/demo/__init__.py"),
            "demo-1.0-py3-none-any.whl!demo/__init__.py"
        );
        let text: Vec<String> = warnings.iter().map(|w| format!("{w:?}")).collect();
        assert!(
            text.iter().any(|w| w.contains("cut-1.0-py3-none-any.whl")),
            "the corrupt wheel is a warning: {text:?}"
        );
    }
}
