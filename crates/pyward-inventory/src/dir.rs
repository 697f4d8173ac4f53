//! Folders on disk as a [`crate::FileTree`]: a parallel walk that never follows a symlink out of
//! the root, and reads that resolve symlinks inside the root only.
//!
//! The walk lists every path without following symlinks (they are listed with their target), so
//! a hostile folder cannot send it elsewhere or into a loop. Reads resolve paths with chroot
//! semantics (`..` at the root stays at the root, an absolute link target starts again at the
//! root): on Linux ≥ 5.6 the kernel does it atomically with `openat2(RESOLVE_IN_ROOT)`; elsewhere
//! each component is checked with `lstat` and symlinks are followed by hand, and the final file
//! is opened with `O_NOFOLLOW`. Either way only regular files are opened (devices and fifos are
//! refused from their metadata, so a fifo never blocks a scan), the opened file is checked to be
//! the one that was resolved, and nothing outside the root is ever opened.

use crate::tree::{clean_path, EntryKind, FileEntry, FileTree, ReadError};
use pyward_core::{Error, Warning};
use rayon::slice::ParallelSliceMut;
use std::collections::{HashMap, HashSet};
use std::ffi::{CString, OsString};
use std::fs::{self, Metadata};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Most symlinks followed while resolving one path, as Linux's `MAXSYMLINKS`.
const MAX_SYMLINK_HOPS: usize = 40;

/// A folder on disk. Entries are listed relative to the root, in tree form (`/a/b`).
pub struct DirTree {
    name: String,
    /// The scanned folder, canonicalised (the user's own symlinks to it are followed once here).
    root: PathBuf,
    entries: Vec<FileEntry>,
    /// Tree paths whose real name on disk is not valid UTF-8 (or lies below such a folder) → the
    /// real path relative to `root`, so those files stay readable.
    raw_paths: HashMap<String, PathBuf>,
    /// For [`DirTree::single_file`]: the file's folder as the user typed it, prefixed to display
    /// paths so that the file itself shows as given.
    display_base: Option<PathBuf>,
    /// Path-only handle on `root` for `openat2`; `None` if it could not be opened.
    root_fd: Option<fs::File>,
    /// Whether `openat2(RESOLVE_IN_ROOT)` is used (cleared once the kernel refuses it).
    kernel_resolution: AtomicBool,
}

impl DirTree {
    /// Walk `root` (in parallel), listing every path without following symlinks.
    pub fn open(root: &Path, warnings: &mut Vec<Warning>) -> Result<DirTree, Error> {
        let canonical = fs::canonicalize(root).map_err(|e| Error::io(root, e))?;
        let meta = fs::metadata(&canonical).map_err(|e| Error::io(root, e))?;
        if !meta.is_dir() {
            return Err(Error::input(
                root.display(),
                "is not a folder; pass a folder, or a single file to scan it alone",
            ));
        }
        let walk = walk(&canonical, &root.display().to_string());
        warnings.extend(walk.warnings);
        Ok(DirTree {
            name: root.display().to_string(),
            entries: walk.entries,
            raw_paths: walk.raw_paths,
            display_base: None,
            root_fd: open_root_fd(&canonical),
            kernel_resolution: AtomicBool::new(true),
            root: canonical,
        })
    }

    /// A tree holding one file: rooted at the file's folder (so relative includes such as
    /// `-r common.txt` resolve), listing only that file.
    pub fn single_file(path: &Path, _warnings: &mut Vec<Warning>) -> Result<DirTree, Error> {
        // The user named this file: following their symlink to it is what they asked for.
        let canonical = fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        let (Some(parent), Some(file_name)) = (canonical.parent(), canonical.file_name()) else {
            return Err(Error::input(
                path.display(),
                "is not a file; pass a file or a folder",
            ));
        };
        let meta = fs::symlink_metadata(&canonical).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return Err(Error::input(
                path.display(),
                "is a folder, not a single file",
            ));
        }
        let tree_name = file_name.to_string_lossy();
        let tree_path = format!("/{tree_name}");
        let mut raw_paths = HashMap::new();
        if file_name.to_str().is_none() {
            raw_paths.insert(tree_path.clone(), PathBuf::from(file_name));
        }
        let entry = FileEntry {
            kind: kind_of(&meta, None),
            path: tree_path,
            size: meta.len(),
            mode: meta.mode() & 0o7777,
            layer: None,
        };
        let display_base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(DirTree {
            name: path.display().to_string(),
            root: parent.to_path_buf(),
            entries: vec![entry],
            raw_paths,
            display_base: Some(display_base),
            root_fd: open_root_fd(parent),
            kernel_resolution: AtomicBool::new(true),
        })
    }

    /// The folder on disk the tree is rooted at (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The real path on disk, relative to the root, of an entry whose name is not valid UTF-8.
    pub fn raw_path(&self, tree_path: &str) -> Option<&Path> {
        self.raw_paths.get(tree_path).map(PathBuf::as_path)
    }

    /// Resolve paths by hand from now on, as on kernels without `openat2` (for tests of that
    /// path; results are the same).
    #[doc(hidden)]
    pub fn force_portable_resolution(&self) {
        self.kernel_resolution.store(false, Ordering::Relaxed);
    }

    /// Open a regular file with the kernel resolving `path` inside the root
    /// (`openat2(RESOLVE_IN_ROOT)`: chroot semantics, atomic, one syscall). `None` when the
    /// kernel cannot (older than 5.6, or a seccomp filter refuses it): resolve by hand then.
    fn open_in_kernel(
        &self,
        path: &str,
        limit: u64,
    ) -> Option<Result<(fs::File, Metadata), ReadError>> {
        if !self.kernel_resolution.load(Ordering::Relaxed) {
            return None;
        }
        let root = self.root_fd.as_ref()?;
        let Some(clean) = clean_path(path) else {
            return Some(Err(ReadError::EscapesRoot));
        };
        let rel: Vec<u8> = if clean.contains('\u{fffd}') {
            // A name that is not UTF-8 on disk: only the walk knows its real bytes.
            self.raw_paths.get(&clean)?.as_os_str().as_bytes().to_vec()
        } else {
            clean.trim_start_matches('/').as_bytes().to_vec()
        };
        let rel = if rel.is_empty() { b".".to_vec() } else { rel };
        let Ok(rel) = CString::new(rel) else {
            return Some(Err(ReadError::NotFound));
        };
        let open = |flags: libc::c_int| match openat2_in_root(root, &rel, flags) {
            Ok(f) => Ok(Some(f)),
            Err(e) if is_unsupported(&e) => Ok(None),
            Err(e) => Err(map_open_error(e)),
        };
        // First a path-only handle: nothing is opened, so a device or fifo is never touched.
        let probe = match open(libc::O_PATH | libc::O_CLOEXEC) {
            Ok(Some(f)) => f,
            Ok(None) => {
                self.kernel_resolution.store(false, Ordering::Relaxed);
                return None;
            }
            Err(e) => return Some(Err(e)),
        };
        let result = (|| {
            let meta = probe.metadata()?;
            check_regular(&meta, limit)?;
            let file = open(libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)?
                .ok_or(ReadError::NotFound)?;
            let opened = file.metadata()?;
            check_same(&meta, &opened)?;
            Ok((file, opened))
        })();
        Some(result)
    }

    /// Open a regular file after resolving `path` by hand ([`Self::resolve`]); the last
    /// component is opened with `O_NOFOLLOW` and checked to be the file that was resolved.
    fn open_portable(&self, path: &str, limit: u64) -> Result<(fs::File, Metadata), ReadError> {
        let (real, meta) = self.resolve(path)?;
        check_regular(&meta, limit)?;
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(&real)
            .map_err(map_open_error)?;
        let opened = file.metadata()?;
        check_same(&meta, &opened)?;
        Ok((file, opened))
    }

    /// Resolve `path` inside the root (chroot semantics) to a real path without symlinks, and
    /// its `lstat` metadata.
    fn resolve(&self, path: &str) -> Result<(PathBuf, Metadata), ReadError> {
        let clean = clean_path(path).ok_or(ReadError::EscapesRoot)?;
        // Components still to walk, front first; link targets are pushed in front.
        let mut pending: Vec<Part> = clean
            .split('/')
            .filter(|p| !p.is_empty())
            .rev()
            .map(|p| Part::Tree(p.into()))
            .collect();
        // Resolved components: (tree name, real name on disk).
        let mut done: Vec<(String, OsString)> = Vec::new();
        let mut hops = 0;
        let mut last_meta: Option<Metadata> = None;
        while let Some(part) = pending.pop() {
            let (tree_name, real_name) = match part {
                Part::Tree(name) => {
                    let real = self.real_name(&done, &name);
                    (name, real)
                }
                Part::Real(os) => {
                    if os == ".." {
                        done.pop();
                        last_meta = None;
                        continue;
                    }
                    if os == "." {
                        continue;
                    }
                    (os.to_string_lossy().into_owned(), os)
                }
            };
            let mut real = self.real_prefix(&done);
            real.push(&real_name);
            let meta = match fs::symlink_metadata(&real) {
                Ok(m) => m,
                Err(e) if is_not_found(&e) => return Err(ReadError::NotFound),
                Err(e) => return Err(ReadError::Io(e)),
            };
            if meta.file_type().is_symlink() {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(ReadError::SymlinkLoop);
                }
                let target = fs::read_link(&real)?;
                if target.has_root() {
                    done.clear();
                }
                let mut parts: Vec<Part> = target
                    .components()
                    .filter_map(|c| match c {
                        std::path::Component::Normal(n) => Some(Part::Real(n.to_os_string())),
                        std::path::Component::ParentDir => Some(Part::Real("..".into())),
                        _ => None,
                    })
                    .collect();
                parts.reverse();
                pending.extend(parts);
                last_meta = None;
                continue;
            }
            if !pending.is_empty() && !meta.is_dir() {
                // A file used as a folder (ENOTDIR).
                return Err(ReadError::NotFound);
            }
            done.push((tree_name, real_name));
            last_meta = Some(meta);
        }
        match last_meta {
            Some(meta) => Ok((self.real_prefix(&done), meta)),
            // The root itself (or `..`/`.` leading back to it).
            None => Err(ReadError::NotAFile),
        }
    }

    /// Real name on disk of component `name` below the resolved `done` components: the name
    /// itself, unless the walk recorded a non-UTF-8 name for that tree path.
    fn real_name(&self, done: &[(String, OsString)], name: &str) -> OsString {
        if !self.raw_paths.is_empty() && name.contains('\u{fffd}') {
            let mut tree_path = String::new();
            for (t, _) in done {
                tree_path.push('/');
                tree_path.push_str(t);
            }
            tree_path.push('/');
            tree_path.push_str(name);
            if let Some(raw) = self.raw_paths.get(&tree_path).and_then(|p| p.file_name()) {
                return raw.to_os_string();
            }
        }
        OsString::from(name)
    }

    fn real_prefix(&self, done: &[(String, OsString)]) -> PathBuf {
        let mut p = self.root.clone();
        for (_, real) in done {
            p.push(real);
        }
        p
    }
}

/// One path component still to resolve: from the requested tree path (UTF-8, possibly lossy) or
/// from a symlink target read from disk (exact bytes).
enum Part {
    Tree(String),
    Real(OsString),
}

fn is_not_found(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// Errors of `open`/`openat2` as read errors.
fn map_open_error(e: std::io::Error) -> ReadError {
    match e.raw_os_error() {
        // Too many links, or (portable path) the file was swapped for a symlink after the check.
        Some(libc::ELOOP) => ReadError::SymlinkLoop,
        Some(libc::EXDEV) => ReadError::EscapesRoot,
        _ if is_not_found(&e) => ReadError::NotFound,
        _ => ReadError::Io(e),
    }
}

/// Only regular files within the limit are opened for reading.
fn check_regular(meta: &Metadata, limit: u64) -> Result<(), ReadError> {
    if !meta.file_type().is_file() {
        // Devices and fifos are never opened: opening a fifo would block the scan, opening some
        // devices has side effects.
        return Err(ReadError::NotAFile);
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    Ok(())
}

/// The opened file must be the one that was checked (not swapped in between).
fn check_same(checked: &Metadata, opened: &Metadata) -> Result<(), ReadError> {
    if !opened.file_type().is_file() {
        return Err(ReadError::NotAFile);
    }
    if opened.dev() != checked.dev() || opened.ino() != checked.ino() {
        return Err(ReadError::Io(std::io::Error::other(
            "the file changed while it was being read; scan a folder that is not being modified",
        )));
    }
    Ok(())
}

/// The kernel cannot resolve in a root: too old (`ENOSYS`), or refused by a seccomp filter.
fn is_unsupported(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EINVAL) | Some(libc::E2BIG)
    )
}

/// `openat2(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: symlinks and `..` are
/// resolved as if `root` were `/`, by the kernel, atomically.
#[cfg(target_os = "linux")]
fn openat2_in_root(
    root: &fs::File,
    path: &std::ffi::CStr,
    flags: libc::c_int,
) -> std::io::Result<fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: `open_how` is a plain C struct; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid fd, NUL-terminated path and a correctly sized `open_how` that outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| std::io::Error::other("bad fd from openat2"))?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    Ok(unsafe { fs::File::from_raw_fd(fd) })
}

#[cfg(not(target_os = "linux"))]
fn openat2_in_root(
    _root: &fs::File,
    _path: &std::ffi::CStr,
    _flags: libc::c_int,
) -> std::io::Result<fs::File> {
    Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
}

/// A path-only handle on the root folder, for `openat2`.
fn open_root_fd(root: &Path) -> Option<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(root)
        .ok()
}

impl FileTree for DirTree {
    fn name(&self) -> &str {
        &self.name
    }

    fn entries(&self) -> &[FileEntry] {
        &self.entries
    }

    fn read(&self, path: &str, limit: u64) -> Result<Arc<[u8]>, ReadError> {
        let (file, meta) = match self.open_in_kernel(path, limit) {
            Some(opened) => opened?,
            None => self.open_portable(path, limit)?,
        };
        // The size may have grown since `stat`: never read more than `limit + 1` bytes.
        let mut buf = Vec::with_capacity(meta.len().min(limit) as usize);
        file.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(ReadError::TooLarge {
                size: meta.len().max(buf.len() as u64),
                limit,
            });
        }
        Ok(Arc::from(buf))
    }

    fn display_path(&self, path: &str) -> String {
        let rel = path.trim_start_matches('/');
        match &self.display_base {
            Some(base) if !base.as_os_str().is_empty() => base.join(rel).display().to_string(),
            _ if rel.is_empty() => ".".to_string(),
            _ => rel.to_string(),
        }
    }
}

/// What a walk found.
#[derive(Default)]
struct Walk {
    entries: Vec<FileEntry>,
    warnings: Vec<Warning>,
    raw_paths: HashMap<String, PathBuf>,
}

/// What one folder of a walk found, merged at the end.
#[derive(Default)]
struct Batch {
    entries: Vec<FileEntry>,
    warnings: Vec<Warning>,
    raw_paths: Vec<(String, PathBuf)>,
}

/// Shared by every task of a walk.
struct WalkCtx<'a> {
    root: &'a Path,
    /// The target as the user named it, for warnings.
    display_root: &'a str,
    out: Mutex<Vec<Batch>>,
    /// Mount points of kernel pseudo-filesystems below the root (`/proc`, `/sys`... when a
    /// live host's `/` is scanned) → their type: listed, never descended into.
    pseudo: HashMap<PathBuf, String>,
}

/// A folder to list: its real path and its tree path (`""` for the root).
struct DirJob {
    real: PathBuf,
    tree: String,
    /// Whether this folder's tree path differs from its real path (non-UTF-8 name on the way).
    lossy: bool,
}

/// Walk `root` directory by directory, one rayon task per folder, and return sorted entries.
fn walk(root: &Path, display_root: &str) -> Walk {
    let pseudo = fs::read_to_string("/proc/self/mountinfo")
        .map(|m| pseudo_mounts_below(&m, root))
        .unwrap_or_default();
    let ctx = WalkCtx {
        root,
        display_root,
        out: Mutex::new(Vec::new()),
        pseudo,
    };
    let job = DirJob {
        real: root.to_path_buf(),
        tree: String::new(),
        lossy: false,
    };
    rayon::scope(|s| visit(s, &ctx, job));
    let batches = ctx.out.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut walk = Walk::default();
    for b in batches {
        walk.entries.extend(b.entries);
        walk.warnings.extend(b.warnings);
        walk.raw_paths.extend(b.raw_paths);
    }
    walk.entries
        .par_sort_unstable_by(|a, b| a.path.cmp(&b.path));
    // Two non-UTF-8 names can become the same lossy name: keep one, say so.
    let before = walk.entries.len();
    walk.entries.dedup_by(|a, b| a.path == b.path);
    if walk.entries.len() != before {
        walk.warnings.push(Warning::new(
            display_root,
            format!(
                "{} file names that are not valid UTF-8 became identical once made readable; \
                 only one of each is scanned: rename them to UTF-8",
                before - walk.entries.len()
            ),
        ));
    }
    walk.warnings.sort_by(|a, b| a.input.cmp(&b.input));
    walk
}

fn visit<'s>(s: &rayon::Scope<'s>, ctx: &'s WalkCtx<'s>, job: DirJob) {
    let mut batch = Batch::default();
    let shown = |tree: &str| -> String {
        if tree.is_empty() {
            ctx.display_root.to_string()
        } else {
            Path::new(ctx.display_root)
                .join(tree.trim_start_matches('/'))
                .display()
                .to_string()
        }
    };
    match fs::read_dir(&job.real) {
        Err(e) => batch.warnings.push(Warning::new(
            shown(&job.tree),
            format!("cannot list this folder ({e}); its contents are not scanned"),
        )),
        Ok(read_dir) => {
            for item in read_dir {
                let item = match item {
                    Ok(i) => i,
                    Err(e) => {
                        batch.warnings.push(Warning::new(
                            shown(&job.tree),
                            format!("stopped listing this folder early ({e})"),
                        ));
                        break;
                    }
                };
                let os_name = item.file_name();
                let (name, bad_name) = match os_name.to_str() {
                    Some(n) => (n.to_string(), false),
                    None => (os_name.to_string_lossy().into_owned(), true),
                };
                let tree_path = format!("{}/{}", job.tree, name);
                let real = item.path();
                if bad_name {
                    batch.warnings.push(Warning::new(
                        shown(&tree_path),
                        "file name is not valid UTF-8; shown with U+FFFD replacing the bad bytes",
                    ));
                }
                let lossy = job.lossy || bad_name;
                if lossy {
                    if let Ok(rel) = real.strip_prefix(ctx.root) {
                        batch.raw_paths.push((tree_path.clone(), rel.to_path_buf()));
                    }
                }
                // `DirEntry::metadata` is `lstat`: symlinks are described, not followed.
                let meta = match item.metadata() {
                    Ok(m) => m,
                    Err(e) => {
                        batch.warnings.push(Warning::new(
                            shown(&tree_path),
                            format!("cannot read file information ({e}); skipped"),
                        ));
                        continue;
                    }
                };
                let target = if meta.file_type().is_symlink() {
                    Some(
                        fs::read_link(&real)
                            .map(|t| t.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    )
                } else {
                    None
                };
                let kind = kind_of(&meta, target);
                let pseudo = (kind == EntryKind::Dir)
                    .then(|| ctx.pseudo.get(&real))
                    .flatten();
                if let Some(fstype) = pseudo {
                    batch.warnings.push(Warning::new(
                        shown(&tree_path),
                        format!(
                            "not scanned: a mounted {fstype} pseudo-filesystem (kernel state, \
                             not files a package installed)"
                        ),
                    ));
                } else if kind == EntryKind::Dir {
                    let sub = DirJob {
                        real,
                        tree: tree_path.clone(),
                        lossy,
                    };
                    s.spawn(move |s| visit(s, ctx, sub));
                }
                batch.entries.push(FileEntry {
                    path: tree_path,
                    kind,
                    size: meta.len(),
                    mode: meta.mode() & 0o7777,
                    layer: None,
                });
            }
        }
    }
    ctx.out
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(batch);
}

/// Kernel pseudo-filesystems: their files are kernel state (and `/proc` alone holds every
/// process's memory map and environment), never packages, and walking them is slow.
const PSEUDO_FS: &[&str] = &[
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "mqueue",
    "hugetlbfs",
    "autofs",
    "binfmt_misc",
    "efivarfs",
    "selinuxfs",
    "rpc_pipefs",
    "nsfs",
];

/// Mount points (strictly below `root`, which is canonical) of pseudo-filesystems listed in
/// `mountinfo` (the text of `/proc/self/mountinfo`), with their filesystem type.
fn pseudo_mounts_below(mountinfo: &str, root: &Path) -> HashMap<PathBuf, String> {
    let mut out = HashMap::new();
    let mut seen = HashSet::new();
    for line in mountinfo.lines() {
        // "id parent maj:min root mount_point options [optional...] - fstype source super"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = left.split(' ').nth(4) else {
            continue;
        };
        let Some(fstype) = right.split(' ').next() else {
            continue;
        };
        if !PSEUDO_FS.contains(&fstype) {
            continue;
        }
        let mp = PathBuf::from(unescape_mountinfo(mount_point));
        if mp != root && mp.starts_with(root) && seen.insert(mp.clone()) {
            out.insert(mp, fstype.to_owned());
        }
    }
    out
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let esc = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match esc {
            Some(d) => {
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The entry kind of `lstat` metadata; `target` is the link target for symlinks.
fn kind_of(meta: &Metadata, target: Option<String>) -> EntryKind {
    let ft = meta.file_type();
    if ft.is_symlink() {
        EntryKind::Symlink(target.unwrap_or_default())
    } else if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else {
        // Fifos, sockets, block and character devices: listed, never opened.
        EntryKind::Special
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:22 / /proc rw,nosuid shared:2 - proc proc rw
24 22 0:23 / /sys rw,nosuid shared:3 - sysfs sysfs rw
25 24 0:24 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw
26 22 0:25 / /srv/with\\040space/proc rw - proc proc rw
27 22 0:26 / /tmp rw shared:5 - tmpfs tmpfs rw
28 22 0:27 / /home/u/src rw - ext4 /dev/vdb rw
garbage line without separator
";

    #[test]
    fn pseudo_mounts_of_a_live_root() {
        let m = pseudo_mounts_below(MOUNTINFO, Path::new("/"));
        assert_eq!(m.get(Path::new("/proc")).map(String::as_str), Some("proc"));
        assert_eq!(m.get(Path::new("/sys")).map(String::as_str), Some("sysfs"));
        assert_eq!(
            m.get(Path::new("/sys/fs/cgroup")).map(String::as_str),
            Some("cgroup2")
        );
        assert_eq!(
            m.get(Path::new("/srv/with space/proc")).map(String::as_str),
            Some("proc")
        );
        // Real filesystems (tmpfs, ext4) are walked.
        assert!(!m.contains_key(Path::new("/tmp")));
        assert!(!m.contains_key(Path::new("/home/u/src")));
    }

    #[test]
    fn pseudo_mounts_only_below_the_root() {
        let m = pseudo_mounts_below(MOUNTINFO, Path::new("/srv"));
        assert_eq!(m.len(), 1);
        assert!(m.contains_key(Path::new("/srv/with space/proc")));
        // Scanning a pseudo-filesystem itself is what the user asked for: not skipped.
        assert!(pseudo_mounts_below(MOUNTINFO, Path::new("/proc")).is_empty());
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("a\\040b\\011c\\134d"), "a b\tc\\d");
        assert_eq!(unescape_mountinfo("bad\\9x\\04"), "bad\\9x\\04");
    }
}
