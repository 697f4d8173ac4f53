//! Bounded, root-confined file access: every read stays inside the audited root, never follows a
//! symlink out of it, and never reads more than asked.

use std::io::Read;
use std::path::{Path, PathBuf};

/// `root` joined with an absolute host path (`/etc/jupyter` → `<root>/etc/jupyter`).
pub fn under(root: &Path, host_path: &str) -> PathBuf {
    root.join(host_path.trim_start_matches('/'))
}

/// Whether `path` resolves (symlinks followed) to somewhere inside `root`.
pub fn inside(root: &Path, path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    let real_root = std::fs::canonicalize(root).ok()?;
    real.starts_with(&real_root).then_some(real)
}

/// Read at most `max` bytes of a regular file inside `root`. The error says why not.
pub fn read_bounded(root: &Path, path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let real = inside(root, path).ok_or("resolves outside the audited root or does not exist")?;
    let meta = std::fs::metadata(&real).map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > max {
        return Err(format!("too large ({} bytes, limit {max})", meta.len()));
    }
    let f = std::fs::File::open(&real).map_err(|e| format!("cannot open: {e}"))?;
    let mut buf = Vec::new();
    f.take(max)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    Ok(buf)
}

/// Read a UTF-8 text file inside `root` (binary or invalid UTF-8 is an error).
pub fn read_text(root: &Path, path: &Path, max: u64) -> Result<String, String> {
    let bytes = read_bounded(root, path, max)?;
    if bytes.contains(&0) {
        return Err("binary file (contains NUL bytes), not a text config".into());
    }
    String::from_utf8(bytes).map_err(|_| "not valid UTF-8 text".into())
}

/// Entries of a directory inside `root`, sorted, at most `max`; empty when unreadable.
pub fn list_dir(root: &Path, dir: &Path, max: usize) -> Vec<PathBuf> {
    if inside(root, dir).is_none() {
        return Vec::new();
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd.flatten().take(max).map(|e| e.path()).collect();
    v.sort();
    v
}

/// A path for evidence: the real location (so the reader can open it).
pub fn display(path: &Path) -> String {
    path.display().to_string()
}
