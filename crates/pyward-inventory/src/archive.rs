//! Package archives (`.whl`, `.tar.gz`/`.zip` sdists, `.egg`) as a [`crate::MemTree`], read with
//! limits on size, entry count and compression ratio.
//!
//! Archives are read into memory whole (they are small, and every file of a package matters to
//! the checks), never extracted. Member paths are cleaned; members that climb out of the archive
//! (`../`) are skipped with a warning, absolute ones are taken relative to the archive root,
//! symlinks are recorded and never followed out of the tree.

use crate::installed::metadata::parse_core_metadata;
use crate::installed::METADATA_LIMIT;
use crate::tree::{clean_path, EntryKind, FileEntry, FileTree, Keep, Limits, MemTree};
use flate2::bufread::MultiGzDecoder;
use pyward_core::{ArchiveKind, Error, Location, Package, PackageSource, Warning};
use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Ratios are only judged past this many uncompressed bytes.
const RATIO_FLOOR: u64 = 1024 * 1024;

/// A zip member's own ratio is judged past this many bytes: real wheels hold small members
/// far above 200:1 (pillow's `libXau….so`: 2.1 MB in 9.4 kB, zero padding from patchelf), and a
/// member this small costs nothing to inflate; the total limit bounds the rest.
const MEMBER_RATIO_FLOOR: u64 = 16 * 1024 * 1024;

/// Longest symlink target read from a zip member.
const MAX_LINK: u64 = 4096;

/// The archive kind of a file, from its name (`.whl`, `.tar.gz`/`.tgz`/`.tar.bz2`/`.zip` sdist,
/// `.egg`), or `None` when it is not a package archive.
pub fn archive_kind(path: &Path) -> Option<ArchiveKind> {
    archive_name_parts(&path.file_name()?.to_string_lossy()).map(|(_, kind)| kind)
}

/// A file name's archive kind and the name without its archive suffix (`six-1.0.tar.gz` →
/// `six-1.0`, sdist), by suffix, case-insensitively.
pub fn archive_name_parts(name: &str) -> Option<(&str, ArchiveKind)> {
    const SUFFIXES: [(&str, ArchiveKind); 7] = [
        (".whl", ArchiveKind::Wheel),
        (".egg", ArchiveKind::Egg),
        (".tar.gz", ArchiveKind::Sdist),
        (".tgz", ArchiveKind::Sdist),
        (".tar.bz2", ArchiveKind::Sdist),
        (".tbz2", ArchiveKind::Sdist),
        (".zip", ArchiveKind::Sdist),
    ];
    let lower = name.to_ascii_lowercase();
    SUFFIXES
        .iter()
        .find(|(suffix, _)| lower.ends_with(suffix))
        // The suffix is ASCII, so the cut is on a character boundary of `name` too.
        .map(|(suffix, kind)| (&name[..name.len() - suffix.len()], *kind))
}

/// What a member's compression ratio is judged on: its own compressed size (zip), or the whole
/// compressed stream read so far (tar.gz, whose members have no compressed size).
#[derive(Clone, Copy)]
enum RatioBasis<'r> {
    Member(u64),
    Stream(&'r Cell<u64>),
}

/// Collects the members of one archive under the limits.
struct Collector<'a> {
    display: String,
    limits: &'a Limits,
    entries: Vec<FileEntry>,
    contents: HashMap<String, Arc<[u8]>>,
    total: u64,
    count: u64,
    /// Which member contents to keep; `None`: all (an archive scanned alone is small and
    /// every file of its package matters).
    keep: Option<&'a dyn Keep>,
    /// The read buffer, reused: zeroing a fresh 64 KiB per member cost more than inflating the
    /// thousands of small members of a big wheel.
    chunk: Vec<u8>,
    /// Bytes decompressed by every collector of this archive, when parts of a zip are read in
    /// parallel: the total limit holds for the archive, not for each part.
    shared_total: Option<&'a AtomicU64>,
}

impl<'a> Collector<'a> {
    fn new(path: &Path, limits: &'a Limits, keep: Option<&'a dyn Keep>) -> Self {
        Collector {
            display: path.display().to_string(),
            limits,
            entries: Vec::new(),
            contents: HashMap::new(),
            total: 0,
            count: 0,
            keep,
            chunk: vec![0u8; 64 * 1024],
            shared_total: None,
        }
    }

    /// A collector for one part of this archive read on another thread, counting its bytes
    /// against `total` too.
    fn part<'b>(&self, total: &'b AtomicU64) -> Collector<'b>
    where
        'a: 'b,
    {
        Collector {
            display: self.display.clone(),
            limits: self.limits,
            entries: Vec::new(),
            contents: HashMap::new(),
            total: 0,
            count: 0,
            keep: self.keep,
            chunk: vec![0u8; 64 * 1024],
            shared_total: Some(total),
        }
    }

    /// Take in a part read by [`Collector::part`], after the parts before it.
    fn absorb(&mut self, part: Collector<'_>) {
        self.entries.extend(part.entries);
        self.contents.extend(part.contents);
        self.total += part.total;
        self.count += part.count;
    }

    fn error(&self, message: impl Into<String>) -> Error {
        Error::input(&self.display, message)
    }

    /// Count a member against the entry limit.
    fn count_one(&mut self) -> Result<(), Error> {
        self.count += 1;
        if self.count > self.limits.max_entries {
            return Err(self.error(format!(
                "more than {} members (limit); refusing to read a likely archive bomb",
                self.limits.max_entries
            )));
        }
        Ok(())
    }

    /// The member's name as text (lossy, with a warning) and its cleaned path; `None` (with a
    /// warning) when it climbs out of the archive.
    fn clean(&self, raw: &[u8], warnings: &mut Vec<Warning>) -> Option<String> {
        let name = match std::str::from_utf8(raw) {
            Ok(s) => s.to_string(),
            Err(_) => {
                let lossy = String::from_utf8_lossy(raw).into_owned();
                warnings.push(Warning::new(
                    &self.display,
                    format!("member name {lossy:?} is not valid UTF-8; listed with replacement characters"),
                ));
                lossy
            }
        };
        match clean_path(&name) {
            Some(p) if p != "/" => Some(p),
            Some(_) => None,
            None => {
                warnings.push(Warning::new(
                    &self.display,
                    format!("member {name:?} climbs out of the archive (path traversal); skipped"),
                ));
                None
            }
        }
    }

    /// Read a file member's bytes, bounded: at most `max_file_read` kept; the total and ratio
    /// limits enforced on what is actually decompressed.
    fn read_file(
        &mut self,
        path: &str,
        reader: &mut dyn Read,
        basis: RatioBasis<'_>,
        warnings: &mut Vec<Warning>,
    ) -> Result<u64, Error> {
        let mut buf = Vec::new();
        let cap = self.limits.max_file_read;
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut self.chunk) {
                Ok(n) => n,
                Err(e) => {
                    return Err(self.error(format!("corrupt or truncated member {path}: {e}")))
                }
            };
            if n == 0 {
                break;
            }
            size += n as u64;
            self.total += n as u64;
            let total = match self.shared_total {
                Some(all) => all.fetch_add(n as u64, Ordering::Relaxed) + n as u64,
                None => self.total,
            };
            if total > self.limits.max_total_uncompressed {
                return Err(self.error(format!(
                    "unpacks to more than {} bytes (limit); refusing to read a likely archive bomb",
                    self.limits.max_total_uncompressed
                )));
            }
            let (unpacked, packed, floor) = match basis {
                RatioBasis::Member(compressed) => (size, compressed, MEMBER_RATIO_FLOOR),
                RatioBasis::Stream(compressed) => (self.total, compressed.get(), RATIO_FLOOR),
            };
            if unpacked > floor && unpacked / packed.max(1) > self.limits.max_ratio {
                return Err(self.error(format!(
                    "member {path} has a compression ratio over {}:1, a likely decompression bomb; refusing to read further",
                    self.limits.max_ratio
                )));
            }
            if size <= cap {
                buf.extend_from_slice(&self.chunk[..n]);
            }
        }
        if size <= cap {
            // A tar member is decompressed whether wanted or not (the stream goes through it,
            // and the bomb limits are judged on it); only the contents asked for stay in memory.
            if self
                .keep
                .is_none_or(|k| k.wants(path, size) && k.retain(path, &buf))
            {
                self.contents.insert(path.to_string(), Arc::from(buf));
            }
        } else {
            warnings.push(Warning::new(
                &self.display,
                format!("member {path} is {size} bytes, over the {cap}-byte read limit; its content is not checked"),
            ));
        }
        Ok(size)
    }

    fn push(&mut self, path: String, kind: EntryKind, size: u64, mode: u32) {
        self.entries.push(FileEntry {
            path,
            kind,
            size,
            mode,
            layer: None,
        });
    }

    fn finish(self, path: &Path) -> MemTree {
        let mut tree = MemTree::from_parts(self.display, self.entries, self.contents, Vec::new());
        let file_name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        tree.display_prefix = format!("{file_name}!");
        tree
    }
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
    open_file(path, kind, limits, None, warnings)
}

/// Opens the archive file for positional reads, which every thread reading a part of a zip
/// can share (nothing is read ahead: members no one wants are never read).
fn open_file(
    path: &Path,
    kind: ArchiveKind,
    limits: &Limits,
    keep: Option<&dyn Keep>,
    warnings: &mut Vec<Warning>,
) -> Result<MemTree, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    open_from(path, SharedFile::new(file), kind, limits, keep, warnings)
}

/// [`open`] keeping only the member contents `keep` asks for: zip members it does not want
/// are not even decompressed (their entries are listed with their declared size).
pub fn open_keeping(
    path: &Path,
    kind: ArchiveKind,
    limits: &Limits,
    keep: &dyn Keep,
    warnings: &mut Vec<Warning>,
) -> Result<MemTree, Error> {
    open_file(path, kind, limits, Some(keep), warnings)
}

/// [`open`] for an archive already in memory (one found inside a scanned folder and read
/// through that folder's tree); `path` names it in messages and in the tree's display paths.
/// Only the member contents `keep` asks for are kept (see [`open_keeping`]).
pub fn open_bytes(
    path: &Path,
    bytes: &[u8],
    kind: ArchiveKind,
    limits: &Limits,
    keep: &dyn Keep,
    warnings: &mut Vec<Warning>,
) -> Result<MemTree, Error> {
    open_from(
        path,
        io::Cursor::new(bytes),
        kind,
        limits,
        Some(keep),
        warnings,
    )
}

/// Reads an archive from `source`, a reader that threads can clone to read parts of a zip.
fn open_from<R: Read + io::Seek + Clone + Send + Sync>(
    path: &Path,
    source: R,
    kind: ArchiveKind,
    limits: &Limits,
    keep: Option<&dyn Keep>,
    warnings: &mut Vec<Warning>,
) -> Result<MemTree, Error> {
    let mut reader = BufReader::new(source.clone());
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?.to_vec();
    let mut c = Collector::new(path, limits, keep);
    if head.starts_with(b"PK") {
        read_zip(source, &mut c, warnings)?;
    } else if head.starts_with(&[0x1f, 0x8b]) {
        let compressed = Rc::new(Cell::new(0u64));
        let counted = BufReader::new(Counted {
            inner: reader,
            count: compressed.clone(),
        });
        read_tar(MultiGzDecoder::new(counted), &compressed, &mut c, warnings)?;
    } else if head.starts_with(b"BZh") {
        return Err(c.error(
            "bzip2-compressed sdists are not supported; repack it as .tar.gz \
             (bunzip2 then gzip) and scan that",
        ));
    } else if head.len() >= 262 && &head[257..262] == b"ustar" {
        let compressed = Rc::new(Cell::new(0u64));
        let counted = Counted {
            inner: reader,
            count: compressed.clone(),
        };
        read_tar(counted, &compressed, &mut c, warnings)?;
    } else {
        let what = match kind {
            ArchiveKind::Wheel | ArchiveKind::Egg => "a zip file",
            ArchiveKind::Sdist => "a .tar.gz or .zip file",
        };
        return Err(c.error(format!("is not {what} (unknown or corrupt content)")));
    }
    Ok(c.finish(path))
}

/// The zip's central directory, refused over the member limit.
fn zip_directory<R: Read + io::Seek>(
    reader: R,
    c: &Collector<'_>,
) -> Result<zip::ZipArchive<R>, Error> {
    let zip = zip::ZipArchive::new(reader)
        .map_err(|e| c.error(format!("corrupt or truncated zip archive: {e}")))?;
    if zip.len() as u64 > c.limits.max_entries {
        return Err(c.error(format!(
            "{} members, over the {} limit; refusing to read a likely archive bomb",
            zip.len(),
            c.limits.max_entries
        )));
    }
    Ok(zip)
}

/// Members below this count are read on one thread (splitting costs more than it saves).
const PARALLEL_MIN_MEMBERS: usize = 64;

/// Read a zip's members on every core: runs of members are inflated (and judged by `keep`) in
/// parallel, each into its own collector (the archive's total limit shared), then taken in in
/// member order, so the result, its warnings and its first error are the same as one thread's.
fn read_zip<R: Read + io::Seek + Clone + Send + Sync>(
    source: R,
    c: &mut Collector<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<(), Error> {
    use rayon::prelude::*;
    let mut zip = zip_directory(source, c)?;
    let n = zip.len();
    let threads = rayon::current_num_threads();
    if threads < 2 || n < PARALLEL_MIN_MEMBERS {
        return read_zip_members(&mut zip, 0..n, c, warnings);
    }
    // Several runs per thread, so one run of big members does not hold up the rest.
    let per_run = n.div_ceil(threads * 4);
    let total = AtomicU64::new(c.total);
    let runs: Vec<usize> = (0..n).step_by(per_run).collect();
    let collector = &*c;
    let parts: Vec<Result<(Collector<'_>, Vec<Warning>), Error>> = runs
        .into_par_iter()
        .map(|start| {
            let mut part = collector.part(&total);
            let mut part_warnings = Vec::new();
            let mut zip = zip.clone();
            let run = start..(start + per_run).min(n);
            read_zip_members(&mut zip, run, &mut part, &mut part_warnings)?;
            Ok((part, part_warnings))
        })
        .collect();
    for part in parts {
        let (part, part_warnings) = part?;
        c.absorb(part);
        warnings.extend(part_warnings);
    }
    Ok(())
}

fn read_zip_members<R: Read + io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    members: std::ops::Range<usize>,
    c: &mut Collector<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<(), Error> {
    for i in members {
        c.count_one()?;
        let mut member = zip
            .by_index(i)
            .map_err(|e| c.error(format!("corrupt zip member #{i}: {e}")))?;
        let Some(path) = c.clean(member.name_raw(), warnings) else {
            continue;
        };
        let mode = member.unix_mode().map_or(0o644, |m| m & 0o7777);
        if member.is_dir() {
            c.push(path, EntryKind::Dir, 0, mode);
        } else if member.is_symlink() {
            let mut target = Vec::new();
            member
                .by_ref()
                .take(MAX_LINK)
                .read_to_end(&mut target)
                .map_err(|e| c.error(format!("corrupt zip member {path}: {e}")))?;
            let target = String::from_utf8_lossy(&target).into_owned();
            c.push(path, EntryKind::Symlink(target), 0, mode);
        } else if c.keep.is_some_and(|k| !k.wants(&path, member.size())) {
            // A zip member can be skipped without decompressing it (a tar stream cannot): its
            // entry (name, declared size, mode) is enough for the checks that do not read
            // content. In wheels of compiled extensions this is most of the bytes.
            c.push(path, EntryKind::File, member.size(), mode);
        } else {
            let compressed = member.compressed_size();
            let size = c.read_file(&path, &mut member, RatioBasis::Member(compressed), warnings)?;
            c.push(path, EntryKind::File, size, mode);
        }
    }
    Ok(())
}

/// Counts compressed bytes as the decompressor pulls them.
struct Counted<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Read a (decompressed) tar stream; `compressed` counts the bytes read from the file, for the
/// ratio check (a tar.gz is judged on the whole stream: its members have no compressed size).
fn read_tar<R: Read>(
    reader: R,
    compressed: &Rc<Cell<u64>>,
    c: &mut Collector<'_>,
    warnings: &mut Vec<Warning>,
) -> Result<(), Error> {
    let mut ar = tar::Archive::new(reader);
    let corrupt = |e: io::Error| format!("corrupt or truncated tar archive: {e}");
    let entries = ar.entries().map_err(|e| c.error(corrupt(e)))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| c.error(corrupt(e)))?;
        c.count_one()?;
        let Some(path) = c.clean(&entry.path_bytes(), warnings) else {
            continue;
        };
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let link = entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let declared = entry.size();
                let size =
                    c.read_file(&path, &mut entry, RatioBasis::Stream(compressed), warnings)?;
                if size != declared {
                    return Err(c.error(format!(
                        "truncated tar archive: member {path} has {size} of its {declared} bytes"
                    )));
                }
                c.push(path, EntryKind::File, size, mode);
            }
            tar::EntryType::Directory => c.push(path, EntryKind::Dir, 0, mode),
            tar::EntryType::Symlink => match link {
                Some(t) if !t.is_empty() => c.push(path, EntryKind::Symlink(t), 0, mode),
                _ => warnings.push(Warning::new(
                    &c.display,
                    format!("symlink {path} has no target; skipped"),
                )),
            },
            tar::EntryType::Link => match link.as_deref().and_then(clean_path) {
                Some(t) if t != "/" => c.push(path, EntryKind::Hardlink(t), 0, mode),
                _ => warnings.push(Warning::new(
                    &c.display,
                    format!("hard link {path} points out of the archive; skipped"),
                )),
            },
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                c.push(path, EntryKind::Special, 0, mode)
            }
            _ => {}
        }
    }
    // Read to the end of the stream, so a cut-off gzip trailer is noticed.
    std::io::copy(&mut ar.into_inner(), &mut std::io::sink()).map_err(|e| c.error(corrupt(e)))?;
    Ok(())
}

/// The package an archive holds, from its own metadata (wheel `*.dist-info/METADATA`, sdist
/// `PKG-INFO`, egg `EGG-INFO/PKG-INFO`), with `source` set to the archive kind.
pub fn describe(tree: &MemTree, kind: ArchiveKind, warnings: &mut Vec<Warning>) -> Option<Package> {
    let entries = tree.entries();
    let depth = |p: &str| p.matches('/').count();
    let found = entries
        .iter()
        .filter(|e| e.is_file())
        .map(|e| e.path.as_str());
    let candidates: Vec<&str> = match kind {
        ArchiveKind::Wheel => found
            .filter(|p| depth(p) == 2 && p.ends_with("/METADATA"))
            .filter(|p| crate::tree::parent_path(p).ends_with(".dist-info"))
            .collect(),
        ArchiveKind::Egg => found.filter(|p| *p == "/EGG-INFO/PKG-INFO").collect(),
        ArchiveKind::Sdist => {
            let all: Vec<&str> = found.filter(|p| p.ends_with("/PKG-INFO")).collect();
            let top: Vec<&str> = all.iter().copied().filter(|p| depth(p) == 2).collect();
            if top.is_empty() {
                let mut egg: Vec<&str> = all
                    .into_iter()
                    .filter(|p| crate::tree::parent_path(p).ends_with(".egg-info"))
                    .collect();
                egg.sort_by_key(|p| depth(p));
                egg.into_iter().take(1).collect()
            } else {
                top
            }
        }
    };
    let looked_for = match kind {
        ArchiveKind::Wheel => "a top-level *.dist-info/METADATA",
        ArchiveKind::Egg => "EGG-INFO/PKG-INFO",
        ArchiveKind::Sdist => "<name>-<version>/PKG-INFO or *.egg-info/PKG-INFO",
    };
    let Some(meta_path) = candidates.first().copied() else {
        warnings.push(Warning::new(
            tree.name(),
            format!(
                "no package metadata ({looked_for}) in this archive; its files are still checked"
            ),
        ));
        return None;
    };
    if candidates.len() > 1 {
        warnings.push(Warning::new(
            tree.name(),
            format!(
                "{} metadata files ({looked_for}); using {}",
                candidates.len(),
                tree.display_path(meta_path)
            ),
        ));
    }
    let bytes = match tree.read(meta_path, METADATA_LIMIT) {
        Ok(b) => b,
        Err(e) => {
            warnings.push(Warning::new(tree.display_path(meta_path), e.to_string()));
            return None;
        }
    };
    let md = match parse_core_metadata(&bytes) {
        Ok(md) => md,
        Err(e) => {
            warnings.push(Warning::new(tree.display_path(meta_path), e));
            return None;
        }
    };
    let archive_name = tree.display_prefix.trim_end_matches('!');
    let location = if archive_name.is_empty() {
        tree.name()
    } else {
        archive_name
    };
    let mut p = Package::new(
        md.name,
        md.version,
        PackageSource::Archive(kind),
        Location::new(location),
    );
    p.requires = md.requires_dist;
    p.summary = md.summary;
    p.license = md.license;
    p.author = md.author;
    p.home_page = md.home_page;
    p.files = entries
        .iter()
        .filter(|e| e.kind != EntryKind::Dir)
        .map(|e| e.path.clone())
        .collect();
    Some(p)
}

/// A file read with positional reads (`pread`) through a small buffer of its own: clones share
/// the file but not a position, so threads can read different members of one zip at once.
struct SharedFile {
    file: Arc<File>,
    pos: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_at: u64,
}

impl SharedFile {
    const BUF: usize = 64 * 1024;

    fn new(file: File) -> Self {
        SharedFile {
            file: Arc::new(file),
            pos: 0,
            buf: Vec::new(),
            buf_at: 0,
        }
    }
}

impl Clone for SharedFile {
    /// A clone starts with an empty buffer (copying 64 KiB per clone would be wasted).
    fn clone(&self) -> Self {
        SharedFile {
            file: Arc::clone(&self.file),
            pos: self.pos,
            buf: Vec::new(),
            buf_at: 0,
        }
    }
}

impl Read for SharedFile {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let end = self.buf_at + self.buf.len() as u64;
        if self.pos < self.buf_at || self.pos >= end {
            if out.len() >= Self::BUF {
                let n = self.file.read_at(out, self.pos)?;
                self.pos += n as u64;
                return Ok(n);
            }
            self.buf.resize(Self::BUF, 0);
            let n = self.file.read_at(&mut self.buf, self.pos)?;
            self.buf.truncate(n);
            self.buf_at = self.pos;
            if n == 0 {
                return Ok(0);
            }
        }
        let from = usize::try_from(self.pos - self.buf_at).unwrap_or(usize::MAX);
        let avail = self.buf.get(from..).unwrap_or_default();
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl io::Seek for SharedFile {
    fn seek(&mut self, to: io::SeekFrom) -> io::Result<u64> {
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "seek before the start");
        self.pos = match to {
            io::SeekFrom::Start(p) => p,
            io::SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or_else(invalid)?,
            io::SeekFrom::End(d) => {
                let len = self.file.metadata()?.len();
                len.checked_add_signed(d).ok_or_else(invalid)?
            }
        };
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_file_reads_what_the_file_holds_from_any_position() {
        use std::io::{Seek, SeekFrom, Write};
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&data).unwrap();
        let mut f = SharedFile::new(File::open(tmp.path()).unwrap());
        // Small reads across the 64 KiB buffer's edges, big reads past it, seeks both ways.
        for (at, len) in [
            (0, 10),
            (65_530, 20),
            (10, 70_000),
            (199_990, 50),
            (5, 3),
            (131_000, 1),
        ] {
            f.seek(SeekFrom::Start(at)).unwrap();
            let mut got = Vec::new();
            (&mut f).take(len).read_to_end(&mut got).unwrap();
            let want = &data[at as usize..(at + len).min(data.len() as u64) as usize];
            assert_eq!(got, want, "at {at} len {len}");
        }
        assert_eq!(f.seek(SeekFrom::End(-4)).unwrap(), 199_996);
        let mut clone = f.clone();
        let mut tail = Vec::new();
        clone.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &data[199_996..]);
        assert!(f.seek(SeekFrom::Current(-300_000)).is_err());
    }

    #[test]
    fn kinds_from_names() {
        assert_eq!(
            archive_kind(Path::new("a/x-1.0-py3-none-any.whl")),
            Some(ArchiveKind::Wheel)
        );
        assert_eq!(
            archive_kind(Path::new("x-1.0.TAR.GZ")),
            Some(ArchiveKind::Sdist)
        );
        assert_eq!(
            archive_kind(Path::new("x-1.0.zip")),
            Some(ArchiveKind::Sdist)
        );
        assert_eq!(
            archive_kind(Path::new("x-1.0-py3.8.egg")),
            Some(ArchiveKind::Egg)
        );
        assert_eq!(archive_kind(Path::new("requirements.txt")), None);
    }
}
