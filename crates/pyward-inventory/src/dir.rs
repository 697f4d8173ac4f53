//! Folders on disk as a [`crate::FileTree`]: a parallel walk that never follows a symlink out of
//! the root, and reads that resolve symlinks inside the root only.

use crate::tree::{FileEntry, FileTree, ReadError};
use pyward_core::{Error, Warning};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A folder on disk. Entries are listed relative to the root, in tree form (`/a/b`).
pub struct DirTree {
    name: String,
    root: PathBuf,
    entries: Vec<FileEntry>,
}

impl DirTree {
    /// Walk `root` (in parallel), listing every path without following symlinks.
    pub fn open(root: &Path, _warnings: &mut Vec<Warning>) -> Result<DirTree, Error> {
        Ok(DirTree { name: root.display().to_string(), root: root.to_path_buf(), entries: vec![] })
    }

    /// A tree holding one file: rooted at the file's folder (so relative includes such as
    /// `-r common.txt` resolve), listing only that file.
    pub fn single_file(path: &Path, _warnings: &mut Vec<Warning>) -> Result<DirTree, Error> {
        Ok(DirTree { name: path.display().to_string(), root: path.to_path_buf(), entries: vec![] })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl FileTree for DirTree {
    fn name(&self) -> &str {
        &self.name
    }

    fn entries(&self) -> &[FileEntry] {
        &self.entries
    }

    fn read(&self, _path: &str, _limit: u64) -> Result<Arc<[u8]>, ReadError> {
        Err(ReadError::NotFound)
    }
}
