//! Incident indicators on disk (incident 2 of DESIGN.md): executables and scripts dropped in
//! `/tmp`, `/dev/shm` and the notebook roots that no package owns, and recently modified files
//! whose content looks encrypted (what the `ct.py` encryptor leaves behind).
//!
//! Everything is bounded: walk depth, files visited, and at most [`HEAD_BYTES`] read per file.
//! Symlinks are never followed and nothing scanned is executed.

use super::checks::{attack, finding};
use super::fsutil;
use pyward_core::{Finding, Severity, Warning};
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Bytes read from the start of each file (magic, shebang, entropy sample).
pub const HEAD_BYTES: usize = 4096;
/// Smallest sample for which the entropy threshold is meaningful (random 1 KiB ≈ 7.8 bits/byte).
pub const MIN_ENTROPY_SAMPLE: usize = 1024;
/// Shannon entropy (bits/byte) at or above which content looks encrypted.
pub const ENCRYPTED_ENTROPY: f64 = 7.5;
/// Encrypted-looking files in one root from which the finding is high.
pub const ENCRYPTED_HIGH_COUNT: usize = 20;
/// Example paths listed per finding.
const MAX_EXAMPLES: usize = 10;
/// Deepest folder level walked below a scanned folder.
const MAX_DEPTH: usize = 8;
/// Most directory entries visited per scanned folder.
const MAX_ENTRIES: usize = 20_000;
/// Most package file lists (dpkg `.list`, RECORD, installed-files.txt) read.
const MAX_LISTS: usize = 20_000;
/// Largest package file list read.
const MAX_LIST_BYTES: u64 = 16 * 1024 * 1024;
/// Most owned paths remembered.
const MAX_OWNED: usize = 2_000_000;
/// Most notebook roots scanned.
const MAX_ROOTS: usize = 32;
/// Per-file findings at most, per folder (`/tmp`, `/dev/shm`).
const MAX_FILE_FINDINGS: usize = 50;

/// Paths (under the audited root) that an installed package owns: dpkg file lists and the
/// RECORD / installed-files.txt of Python distributions.
#[derive(Debug, Default)]
pub struct Ownership {
    paths: HashSet<PathBuf>,
}

impl Ownership {
    /// Load dpkg lists and the RECORDs of the system site-packages and of `prefixes`
    /// (`sys.prefix` folders inside `root`). Problems become warnings.
    pub fn load(root: &Path, prefixes: &[PathBuf], warnings: &mut Vec<Warning>) -> Self {
        let mut o = Ownership::default();
        let mut lists = 0usize;
        let dpkg = fsutil::under(root, "/var/lib/dpkg/info");
        for p in fsutil::list_dir(root, &dpkg, MAX_LISTS) {
            if p.extension().is_some_and(|e| e == "list") && lists < MAX_LISTS {
                lists += 1;
                if let Some(text) = o.read_list(root, &p, warnings) {
                    for l in text.lines().map(str::trim).filter(|l| l.starts_with('/')) {
                        o.add(fsutil::under(root, l));
                    }
                }
            }
        }
        for sp in site_packages(root, prefixes) {
            for d in fsutil::list_dir(root, &sp, MAX_LISTS) {
                if lists >= MAX_LISTS {
                    break;
                }
                let name = d
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let (file, base) = if name.ends_with(".dist-info") {
                    (d.join("RECORD"), sp.clone())
                } else if name.ends_with(".egg-info") {
                    (d.join("installed-files.txt"), d.clone())
                } else {
                    continue;
                };
                if !file.is_file() {
                    continue;
                }
                lists += 1;
                if let Some(text) = o.read_list(root, &file, warnings) {
                    for l in text.lines() {
                        if let Some(rel) = record_path(l) {
                            o.add(normalize(&base.join(rel)));
                        }
                    }
                }
            }
        }
        o
    }

    fn read_list(&self, root: &Path, p: &Path, warnings: &mut Vec<Warning>) -> Option<String> {
        match fsutil::read_bounded(root, p, MAX_LIST_BYTES) {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Err(e) => {
                warnings.push(Warning::new(
                    p.display().to_string(),
                    format!("package file list not read: {e}; files it lists may be reported as not owned by a package"),
                ));
                None
            }
        }
    }

    fn add(&mut self, p: PathBuf) {
        if self.paths.len() < MAX_OWNED {
            self.paths.insert(p);
        }
    }

    /// Mark `path` as owned (tests and callers with their own package lists).
    pub fn insert(&mut self, path: PathBuf) {
        self.add(normalize(&path));
    }

    /// Whether a package owns `path` (a path under the audited root).
    pub fn owns(&self, path: &Path) -> bool {
        self.paths.contains(&normalize(path))
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// The first CSV field of a RECORD line (or a whole installed-files.txt line).
fn record_path(line: &str) -> Option<&str> {
    let line = line.trim_end_matches('\r');
    let field = if let Some(rest) = line.strip_prefix('"') {
        rest.split_once('"').map(|(f, _)| f)?
    } else {
        line.split(',').next()?
    };
    (!field.is_empty() && !field.starts_with('/')).then_some(field)
}

/// Lexical normalisation (`a/b/../c` → `a/c`) without touching the filesystem.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// System and per-prefix site-packages / dist-packages folders inside `root`.
fn site_packages(root: &Path, prefixes: &[PathBuf]) -> Vec<PathBuf> {
    let mut bases: Vec<PathBuf> = vec![
        fsutil::under(root, "/usr/lib"),
        fsutil::under(root, "/usr/local/lib"),
    ];
    bases.extend(prefixes.iter().map(|p| p.join("lib")));
    let mut out = Vec::new();
    for lib in bases {
        for py in fsutil::list_dir(root, &lib, 1000) {
            let is_py = py
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("python"));
            if !is_py {
                continue;
            }
            for sp in ["site-packages", "dist-packages"] {
                let d = py.join(sp);
                if d.is_dir() && !out.contains(&d) {
                    out.push(d);
                }
            }
        }
    }
    out
}

/// What a file is, from its mode and first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ExecKind {
    /// ELF binary.
    Elf,
    /// Any x bit, not ELF and not a script.
    Executable,
    /// `#!` or a `.py`/`.sh`/`.pl` name.
    Script,
}

impl ExecKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecKind::Elf => "ELF binary",
            ExecKind::Executable => "executable",
            ExecKind::Script => "script",
        }
    }
}

/// Classify a file from its name, mode and head; `None` for data files.
pub fn exec_kind(name: &str, mode: u32, head: &[u8]) -> Option<ExecKind> {
    if head.starts_with(b"\x7fELF") {
        return Some(ExecKind::Elf);
    }
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    if head.starts_with(b"#!") || matches!(ext.as_deref(), Some("py" | "sh" | "pl")) {
        return Some(ExecKind::Script);
    }
    (mode & 0o111 != 0).then_some(ExecKind::Executable)
}

/// Shannon entropy of `data` in bits per byte (0 for empty input).
pub fn entropy(data: &[u8]) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for &b in data {
        counts[usize::from(b)] += 1;
    }
    let n = data.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Known container / compressed / media formats: high entropy is expected there.
pub fn known_magic(head: &[u8]) -> bool {
    const MAGICS: &[&[u8]] = &[
        b"PK\x03\x04",
        b"PK\x05\x06",
        b"PK\x07\x08",
        b"\x1f\x8b",
        b"\x1f\x9d",
        b"BZh",
        b"\xfd7zXZ\x00",
        b"\x28\xb5\x2f\xfd",
        b"7z\xbc\xaf\x27\x1c",
        b"Rar!\x1a\x07",
        b"\x04\x22\x4d\x18",
        b"LZIP",
        b"\x89PNG",
        b"\xff\xd8\xff",
        b"GIF87a",
        b"GIF89a",
        b"%PDF",
        b"\x7fELF",
        b"SQLite format 3\x00",
        b"RIFF",
        b"OggS",
        b"fLaC",
        b"ID3",
        b"wOFF",
        b"wOF2",
        b"PAR1",
        b"\x89HDF",
        b"\x93NUMPY",
        b"II*\x00",
        b"MM\x00*",
        b"\x00\x00\x01\x00",
        b"-----BEGIN",
    ];
    MAGICS.iter().any(|m| head.starts_with(m))
        || head.get(4..8).is_some_and(|b| b == b"ftyp")
        || head.get(257..262).is_some_and(|b| b == b"ustar")
}

/// A regular file met during a walk, with its head.
struct Seen {
    path: PathBuf,
    mode: u32,
    modified: Option<SystemTime>,
    head: Vec<u8>,
}

/// Walk `dir` (inside `root`) without following symlinks, bounded; call `f` per regular file.
fn walk(root: &Path, dir: &Path, mut f: impl FnMut(Seen)) -> bool {
    let mut truncated = false;
    if fsutil::inside(root, dir).is_none() {
        return truncated;
    }
    let skip: Vec<PathBuf> = ["/proc", "/sys", "/dev", "/var/lib/dpkg"]
        .iter()
        .map(|p| fsutil::under(root, p))
        .collect();
    let mut entries = 0usize;
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            entries += 1;
            if entries > MAX_ENTRIES {
                return true;
            }
            // file_type() does not follow symlinks.
            let Ok(ft) = e.file_type() else { continue };
            let p = e.path();
            if ft.is_dir() {
                if depth < MAX_DEPTH && !skip.contains(&p) {
                    stack.push((p, depth + 1));
                } else if depth >= MAX_DEPTH {
                    truncated = true;
                }
            } else if ft.is_file() {
                let Ok(m) = e.metadata() else { continue };
                f(Seen {
                    head: read_head(&p),
                    mode: m.permissions().mode(),
                    modified: m.modified().ok(),
                    path: p,
                });
            }
        }
    }
    truncated
}

/// The first [`HEAD_BYTES`] of a regular file (empty when unreadable). The file was reached
/// without following symlinks; `O_NOFOLLOW` guards against a swap to a symlink meanwhile.
fn read_head(p: &Path) -> Vec<u8> {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nofollow() | libc_o_nonblock())
        .open(p)
    else {
        return Vec::new();
    };
    let mut buf = Vec::with_capacity(HEAD_BYTES);
    let _ = file.take(HEAD_BYTES as u64).read_to_end(&mut buf);
    buf
}

/// `O_NOFOLLOW` on Linux (the crate has no libc dependency).
const fn libc_o_nofollow() -> i32 {
    0o400000
}
/// `O_NONBLOCK`: a FIFO swapped in must not hang the audit.
const fn libc_o_nonblock() -> i32 {
    0o4000
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `/tmp` and `/dev/shm`: one finding per unowned executable or script (the encryptor names
/// `ct.py`/`cpt.py` high, others medium).
pub fn dropped_files(root: &Path, owned: &Ownership, out: &mut Vec<Finding>) {
    for d in ["/tmp", "/dev/shm"] {
        let dir = fsutil::under(root, d);
        let mut hits: Vec<(PathBuf, ExecKind)> = Vec::new();
        let mut more = 0usize;
        walk(root, &dir, |s| {
            if s.path == fsutil::under(root, "/tmp/f1gl6i6z") || owned.owns(&s.path) {
                return;
            }
            if let Some(k) = exec_kind(&name_of(&s.path), s.mode, &s.head) {
                if hits.len() < MAX_FILE_FINDINGS {
                    hits.push((s.path, k));
                } else {
                    more += 1;
                }
            }
        });
        hits.sort();
        for (p, k) in hits {
            let name = name_of(&p);
            let (sev, msg) = if name == "ct.py" || name == "cpt.py" {
                (
                    Severity::High,
                    format!("{name} in {d}: the file name of the Jupyter ransomware encryptor"),
                )
            } else {
                (Severity::Medium, format!("{} {name} in {d} not owned by any package: dropped tools (e.g. nano in the Jupyter ransomware attack) live here", k.as_str()))
            };
            let mut f = finding("ioc.dropped-executable", sev, msg);
            f.path = Some(p.display().to_string());
            out.push(
                f.with_evidence("kind", k.as_str())
                    .with_evidence("owner", "no dpkg list or Python RECORD lists this file")
                    .with_evidence("fix", "inspect the file without running it (sha256, strings), find the process or user that wrote it, then remove it and rebuild the host if it is not yours")
                    .with_evidence("mitigation", "M1038 Execution Prevention (mount /tmp and /dev/shm noexec)")
                    .with_mitre([attack::INGRESS_TOOL_TRANSFER, attack::FILE_DELETION]),
            );
        }
        if more > 0 {
            let mut f = finding(
                "ioc.dropped-executable",
                Severity::Medium,
                format!(
                    "{more} more unowned executables or scripts in {d} (not listed one by one)"
                ),
            );
            f.path = Some(dir.display().to_string());
            out.push(f.with_mitre([attack::INGRESS_TOOL_TRANSFER]));
        }
    }
}

/// A notebook root: one finding for unowned executables/scripts, one for encrypted-looking
/// files modified in the last `since_days` days.
pub fn notebook_root(
    root: &Path,
    nb_root: &Path,
    subject: &str,
    owned: &Ownership,
    since_days: u32,
    now: SystemTime,
    out: &mut Vec<Finding>,
) {
    let cutoff = now
        .checked_sub(Duration::from_secs(u64::from(since_days) * 86_400))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut execs: Vec<(PathBuf, ExecKind)> = Vec::new();
    let mut exec_count = 0usize;
    let mut binaries = 0usize;
    let mut encrypted: Vec<PathBuf> = Vec::new();
    let mut enc_count = 0usize;
    let mut files = 0usize;
    let truncated = walk(root, nb_root, |s| {
        files += 1;
        if !owned.owns(&s.path) {
            if let Some(k) = exec_kind(&name_of(&s.path), s.mode, &s.head) {
                exec_count += 1;
                if k != ExecKind::Script {
                    binaries += 1;
                }
                execs.push((s.path.clone(), k));
            }
        }
        let recent = s.modified.is_some_and(|m| m >= cutoff);
        if recent
            && s.head.len() >= MIN_ENTROPY_SAMPLE
            && !known_magic(&s.head)
            && entropy(&s.head) >= ENCRYPTED_ENTROPY
        {
            enc_count += 1;
            encrypted.push(s.path);
        }
    });
    let shown = nb_root.display().to_string();
    let limits = if truncated {
        format!("walk stopped at its limits (depth {MAX_DEPTH}, {MAX_ENTRIES} entries): counts are a lower bound")
    } else {
        format!("{files} files looked at")
    };
    if exec_count > 0 {
        // Binaries first: they are the unusual ones in a notebook folder.
        execs.sort_by_key(|(p, k)| (*k == ExecKind::Script, p.clone()));
        let examples: Vec<String> = execs
            .iter()
            .take(MAX_EXAMPLES)
            .map(|(p, k)| format!("{} ({})", p.display(), k.as_str()))
            .collect();
        let sev = if binaries > 0 {
            Severity::Medium
        } else {
            Severity::Low
        };
        let mut f = finding(
            "ioc.unowned-executable-in-notebook-root",
            sev,
            format!("{exec_count} executables or scripts not owned by any package in notebook root {shown} ({binaries} binaries or executables, {} scripts)", exec_count - binaries),
        );
        f.path = Some(shown.clone());
        out.push(
            f.with_evidence("notebook_root_of", subject)
                .with_evidence("examples", examples.join("; "))
                .with_evidence("scope", limits.clone())
                .with_evidence("fix", "check each listed file is yours (scripts you wrote, tools you installed); remove unknown binaries after saving a copy for analysis, and keep tools in a package-managed environment")
                .with_evidence("mitigation", "M1038 Execution Prevention; M1022 Restrict File and Directory Permissions")
                .with_mitre([attack::INGRESS_TOOL_TRANSFER, attack::PYTHON]),
        );
    }
    if enc_count > 0 {
        encrypted.sort();
        let examples: Vec<String> = encrypted
            .iter()
            .take(MAX_EXAMPLES)
            .map(|p| p.display().to_string())
            .collect();
        let sev = if enc_count >= ENCRYPTED_HIGH_COUNT {
            Severity::High
        } else {
            Severity::Medium
        };
        let mut f = finding(
            "ioc.encrypted-files-in-notebook-root",
            sev,
            format!("{enc_count} files modified in the last {since_days} days in notebook root {shown} look encrypted (entropy ≥ {ENCRYPTED_ENTROPY} bits/byte, no known file format): ransomware such as the Jupyter campaign's ct.py encrypts every file under a folder"),
        );
        f.path = Some(shown);
        out.push(
            f.with_evidence("notebook_root_of", subject)
                .with_evidence("count", enc_count.to_string())
                .with_evidence("examples", examples.join("; "))
                .with_evidence("scope", limits)
                .with_evidence("fix", "stop the Jupyter server, isolate the host and preserve evidence; restore the notebook root from an off-host backup; do not run or pay for a decryptor without checking the file names and ransom notes against known campaigns")
                .with_evidence("mitigation", "M1053 Data Backup")
                .with_mitre([attack::DATA_ENCRYPTED]),
        );
    }
}

/// Resolve a configured `root_dir` to a folder inside `root`: absolute host paths and `~`
/// (expanded with `home`, a path under `root`); relative or unresolvable values are `None`.
pub fn resolve_root_dir(root: &Path, value: &str, home: Option<&Path>) -> Option<PathBuf> {
    let v = value.trim();
    let p = if v == "~" {
        home?.to_path_buf()
    } else if let Some(rest) = v.strip_prefix("~/") {
        home?.join(rest)
    } else if v.starts_with('/') {
        fsutil::under(root, v)
    } else {
        return None;
    };
    let p = normalize(&p);
    (p.starts_with(normalize(root)) && p.is_dir() && fsutil::inside(root, &p).is_some())
        .then_some(p)
}

/// Cap the notebook roots scanned (deduplicated, in order).
pub fn dedup_roots(roots: Vec<(PathBuf, String)>) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    for (p, s) in roots {
        if let Some(existing) = out.iter_mut().find(|(q, _)| *q == p) {
            if !existing.1.contains(&s) && existing.1.len() < 2000 {
                existing.1.push_str("; ");
                existing.1.push_str(&s);
            }
        } else if out.len() < MAX_ROOTS {
            out.push((p, s));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_bounds() {
        assert_eq!(entropy(b""), 0.0);
        assert_eq!(entropy(b"aaaa"), 0.0);
        let all: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        assert!((entropy(&all) - 8.0).abs() < 1e-9);
        assert!(entropy(b"hello world, this is a notebook\n") < 5.0);
    }

    #[test]
    fn kinds() {
        assert_eq!(exec_kind("x", 0o644, b"\x7fELF.."), Some(ExecKind::Elf));
        assert_eq!(
            exec_kind("run", 0o644, b"#!/bin/sh"),
            Some(ExecKind::Script)
        );
        assert_eq!(exec_kind("a.PY", 0o644, b""), Some(ExecKind::Script));
        assert_eq!(
            exec_kind("tool", 0o700, b"data"),
            Some(ExecKind::Executable)
        );
        assert_eq!(exec_kind("notes.txt", 0o644, b"hi"), None);
    }

    #[test]
    fn magic_and_records() {
        assert!(known_magic(b"PK\x03\x04rest"));
        assert!(known_magic(b"\x00\x00\x00\x18ftypmp42"));
        assert!(!known_magic(b"\x01\x02\x03"));
        assert_eq!(
            record_path("pkg/__init__.py,sha256=x,12"),
            Some("pkg/__init__.py")
        );
        assert_eq!(record_path("\"a,b.py\",,"), Some("a,b.py"));
        assert_eq!(record_path("/etc/passwd,,"), None);
        assert_eq!(record_path(""), None);
        assert_eq!(
            normalize(Path::new("/r/lib/python3/site-packages/../../../bin/x")),
            PathBuf::from("/r/bin/x")
        );
    }

    #[test]
    fn root_dir_resolution() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("srv/nb")).unwrap();
        std::fs::create_dir_all(t.path().join("home/a/work")).unwrap();
        let home = t.path().join("home/a");
        assert_eq!(
            resolve_root_dir(t.path(), "/srv/nb/", None),
            Some(t.path().join("srv/nb"))
        );
        assert_eq!(
            resolve_root_dir(t.path(), "~/work", Some(&home)),
            Some(t.path().join("home/a/work"))
        );
        assert_eq!(resolve_root_dir(t.path(), "relative", None), None);
        assert_eq!(resolve_root_dir(t.path(), "/../../etc", None), None);
        assert_eq!(resolve_root_dir(t.path(), "/missing", None), None);
    }
}
