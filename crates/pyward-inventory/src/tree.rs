//! The one view every target is turned into: a set of file entries with absolute, `/`-separated
//! paths, and bounded reads of their contents. Parsers of metadata and lockfiles only ever see a
//! [`FileTree`], so a virtualenv, a squashed image and a wheel are cataloged by the same code.

use pyward_core::LayerRef;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest file pyward reads into memory by default (METADATA, lockfiles, RECORD...). Larger
/// candidates are skipped with a warning instead of exhausting memory.
pub const DEFAULT_READ_LIMIT: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link and its target as stored (never followed out of the tree).
    Symlink(String),
    /// A hard link (tar) to another path of the tree.
    Hardlink(String),
    /// Device, fifo, socket: listed, never read.
    Special,
}

/// One path in a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Absolute path inside the tree, `/`-separated, no `.`/`..` components, e.g.
    /// `/usr/lib/python3/site-packages/six.py`. Invalid UTF-8 bytes are replaced (U+FFFD) and
    /// a warning is recorded by whoever built the tree.
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Unix permission bits including setuid/setgid/sticky (`0o4755`).
    pub mode: u32,
    /// Index into [`FileTree::layers`] of the layer that added this path (images only).
    pub layer: Option<usize>,
}

impl FileEntry {
    pub fn is_file(&self) -> bool {
        self.kind == EntryKind::File
    }

    /// The last path component.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("no such file in the scanned tree")]
    NotFound,
    #[error("is not a regular file")]
    NotAFile,
    #[error("file is {size} bytes, over the {limit}-byte limit for files pyward reads")]
    TooLarge { size: u64, limit: u64 },
    #[error("content was not kept while reading the image or archive")]
    NotKept,
    #[error("refusing to follow a symlink out of the scanned root")]
    EscapesRoot,
    #[error("too many levels of symbolic links")]
    SymlinkLoop,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A read-only tree of files.
pub trait FileTree: Sync {
    /// The target as named to the user (a path, an image file), for messages.
    fn name(&self) -> &str;

    /// Every path in the tree, sorted by path.
    fn entries(&self) -> &[FileEntry];

    /// Read a regular file's bytes, at most `limit` bytes or fail with [`ReadError::TooLarge`].
    /// Symlinks are resolved inside the tree only.
    fn read(&self, path: &str, limit: u64) -> Result<Arc<[u8]>, ReadError>;

    /// Image layers, bottom first; empty for anything that is not an image.
    fn layers(&self) -> &[LayerRef] {
        &[]
    }

    /// How to show `path` to the user: for a scanned folder, relative to it; for an image, the
    /// absolute path; for an archive, `archive!inner`.
    fn display_path(&self, path: &str) -> String {
        path.to_string()
    }

    /// The entry at `path`, if any.
    fn entry(&self, path: &str) -> Option<&FileEntry> {
        let entries = self.entries();
        entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| &entries[i])
    }

    /// The layer that added `path`, for images.
    fn layer_of(&self, path: &str) -> Option<LayerRef> {
        let idx = self.entry(path)?.layer?;
        self.layers().get(idx).cloned()
    }
}

/// Normalise a path into the tree's form: absolute, `/`-separated, without `.`, `..` or empty
/// components. Returns `None` when `..` would climb above the root (path traversal).
pub fn clean_path(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Like [`clean_path`], but `..` at the root stays at the root (how the kernel resolves a
/// symlink inside a chroot), so the result never leaves the tree.
pub fn clamp_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return "/".to_string();
    }
    parts
        .iter()
        .fold(String::with_capacity(path.len() + 1), |mut out, p| {
            out.push('/');
            out.push_str(p);
            out
        })
}

/// Join a relative path onto a directory of the tree (both in tree form) and clean the result;
/// an absolute `rel` replaces `dir`.
pub fn join_path(dir: &str, rel: &str) -> Option<String> {
    if rel.starts_with('/') {
        clean_path(rel)
    } else {
        clean_path(&format!("{dir}/{rel}"))
    }
}

/// The directory part of a tree path (`/a/b/c` → `/a/b`, `/a` → `/`).
pub fn parent_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// A tree held in memory: entries plus the contents that were kept while reading an image or an
/// archive. Only contents that a [`KeepPredicate`] asked for are kept, so memory stays bounded.
#[derive(Debug, Default)]
pub struct MemTree {
    pub name: String,
    /// Prefix for [`FileTree::display_path`], e.g. `demo.whl!`; empty for images.
    pub display_prefix: String,
    entries: Vec<FileEntry>,
    contents: HashMap<String, Arc<[u8]>>,
    layers: Vec<LayerRef>,
}

/// Decides which file contents are kept in memory while an image is streamed: first from a
/// path and its size (before reading), then, optionally, from the content itself (after reading
/// it into a temporary buffer), so a cheap content test (e.g. "could this file hold a threat?")
/// keeps memory bounded by what matters rather than by everything that might.
pub trait Keep: Sync {
    fn wants(&self, path: &str, size: u64) -> bool;

    /// Whether to hold on to `content`, read because [`Keep::wants`] said so.
    fn retain(&self, _path: &str, _content: &[u8]) -> bool {
        true
    }
}

impl<F: Fn(&str, u64) -> bool + Sync> Keep for F {
    fn wants(&self, path: &str, size: u64) -> bool {
        self(path, size)
    }
}

/// How the image reader is told what to keep.
pub type KeepPredicate<'a> = &'a dyn Keep;

impl MemTree {
    pub fn new(name: impl Into<String>) -> Self {
        MemTree {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Build from entries (any order; later duplicates of a path replace earlier ones) and kept
    /// contents keyed by path.
    pub fn from_parts(
        name: impl Into<String>,
        entries: Vec<FileEntry>,
        contents: HashMap<String, Arc<[u8]>>,
        layers: Vec<LayerRef>,
    ) -> Self {
        let mut map: std::collections::BTreeMap<String, FileEntry> = Default::default();
        for e in entries {
            map.insert(e.path.clone(), e);
        }
        MemTree {
            name: name.into(),
            display_prefix: String::new(),
            entries: map.into_values().collect(),
            contents,
            layers,
        }
    }

    fn resolve<'a>(&'a self, path: &str) -> Result<&'a FileEntry, ReadError> {
        let mut current = clean_path(path).ok_or(ReadError::EscapesRoot)?;
        for _ in 0..40 {
            let entry = self.entry(&current).ok_or(ReadError::NotFound)?;
            match &entry.kind {
                EntryKind::Symlink(target) | EntryKind::Hardlink(target) => {
                    let base = if matches!(entry.kind, EntryKind::Hardlink(_)) {
                        "/"
                    } else {
                        parent_path(&current)
                    };
                    // Inside an image `..` at the root stays at the root, as in the kernel.
                    current = if target.starts_with('/') {
                        clamp_path(target)
                    } else {
                        clamp_path(&format!("{base}/{target}"))
                    };
                }
                _ => return Ok(entry),
            }
        }
        Err(ReadError::SymlinkLoop)
    }
}

impl FileTree for MemTree {
    fn name(&self) -> &str {
        &self.name
    }

    fn entries(&self) -> &[FileEntry] {
        &self.entries
    }

    fn read(&self, path: &str, limit: u64) -> Result<Arc<[u8]>, ReadError> {
        let entry = self.resolve(path)?;
        if entry.kind != EntryKind::File {
            return Err(ReadError::NotAFile);
        }
        if entry.size > limit {
            return Err(ReadError::TooLarge {
                size: entry.size,
                limit,
            });
        }
        self.contents
            .get(&entry.path)
            .cloned()
            .ok_or(ReadError::NotKept)
    }

    fn layers(&self) -> &[LayerRef] {
        &self.layers
    }

    fn display_path(&self, path: &str) -> String {
        if self.display_prefix.is_empty() {
            path.to_string()
        } else {
            format!("{}{}", self.display_prefix, path.trim_start_matches('/'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean() {
        assert_eq!(clean_path("a/./b//c").unwrap(), "/a/b/c");
        assert_eq!(clean_path("/a/b/../c").unwrap(), "/a/c");
        assert_eq!(clean_path("../etc/passwd"), None);
        assert_eq!(clean_path("").unwrap(), "/");
        assert_eq!(join_path("/a/b", "../c").unwrap(), "/a/c");
        assert_eq!(join_path("/a/b", "/x").unwrap(), "/x");
        assert_eq!(parent_path("/a/b"), "/a");
        assert_eq!(parent_path("/a"), "/");
    }

    fn file(path: &str, size: u64) -> FileEntry {
        FileEntry {
            path: path.into(),
            kind: EntryKind::File,
            size,
            mode: 0o644,
            layer: None,
        }
    }

    #[test]
    fn memtree_symlinks_stay_inside() {
        let mut contents = HashMap::new();
        contents.insert("/etc/real".to_string(), Arc::from(&b"hi"[..]));
        let entries = vec![
            file("/etc/real", 2),
            FileEntry {
                path: "/etc/link".into(),
                kind: EntryKind::Symlink("../../../../etc/real".into()),
                size: 0,
                mode: 0o777,
                layer: None,
            },
            FileEntry {
                path: "/loop".into(),
                kind: EntryKind::Symlink("/loop".into()),
                size: 0,
                mode: 0o777,
                layer: None,
            },
        ];
        let t = MemTree::from_parts("t", entries, contents, vec![]);
        assert_eq!(&*t.read("/etc/link", 10).unwrap(), b"hi");
        assert!(matches!(t.read("/loop", 10), Err(ReadError::SymlinkLoop)));
        assert!(matches!(
            t.read("/etc/real", 1),
            Err(ReadError::TooLarge { .. })
        ));
        assert!(matches!(t.read("/nope", 1), Err(ReadError::NotFound)));
    }
}

/// Bounds on what reading a target may cost. Exceeding one is an error naming the input (for a
/// whole archive) or a warning (for one file), never unbounded memory or disk use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single file read into memory.
    pub max_file_read: u64,
    /// Largest total uncompressed size of an archive or image (all layers).
    pub max_total_uncompressed: u64,
    /// Most entries in one archive or layer.
    pub max_entries: u64,
    /// Largest compression ratio (uncompressed / compressed) of an archive member or layer
    /// before it is treated as a decompression bomb (checked past 1 MiB of a layer or tar
    /// stream, past 16 MiB of a zip member).
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_read: DEFAULT_READ_LIMIT,
            max_total_uncompressed: 64 * 1024 * 1024 * 1024,
            max_entries: 5_000_000,
            max_ratio: 200,
        }
    }
}
