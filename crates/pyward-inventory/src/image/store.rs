//! Where an image's blobs live: an OCI layout folder, or the members of an outer tarball
//! (docker-archive, OCI archive), plain or gzip-compressed.
//!
//! A plain tarball is read once to index member names → (offset, size); later reads seek
//! straight to a member, so layers can be streamed in parallel. A gzip-compressed tarball
//! (`docker save | gzip`) cannot be seeked: the index pass keeps the small JSON members in
//! memory, and layers are streamed in one more sequential pass.

use crate::tree::{clean_path, Limits};
use flate2::read::MultiGzDecoder;
use pyward_core::Error;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The gzip magic bytes.
pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Largest member kept in memory by the index pass over a gzip-compressed tarball, and the
/// total of them: enough for manifests and configs, never for layers.
const SMALL_MEMBER: u64 = 8 * 1024 * 1024;
const SMALL_TOTAL: u64 = 64 * 1024 * 1024;
const SMALL_BLOB: u64 = 1024 * 1024;

/// How many links between members (`<id>/layer.tar` → `../<other>/layer.tar`, as legacy
/// `docker save` writes for shared layers) are followed before giving up.
const MAX_MEMBER_LINKS: usize = 8;

#[derive(Debug, Clone, Copy)]
pub(super) struct Member {
    offset: u64,
    size: u64,
}

/// A member as indexed: data, or a link to another member.
#[derive(Debug, Clone)]
pub(super) enum Slot {
    Data(Member),
    Link(String),
}

pub(super) enum Store {
    /// An OCI layout folder.
    Dir { root: PathBuf },
    /// A plain tarball, indexed.
    Tar {
        file: PathBuf,
        members: HashMap<String, Slot>,
    },
    /// A gzip-compressed tarball: member names and the small members' bytes.
    GzTar {
        file: PathBuf,
        members: HashMap<String, Slot>,
        small: HashMap<String, Vec<u8>>,
    },
}

/// A member name in the form used as index key: relative, `/`-separated, no `./`.
pub(super) fn member_key(name: &str) -> Option<String> {
    clean_path(name).map(|p| p.trim_start_matches('/').to_string())
}

/// Whether `path` starts with the gzip magic.
fn is_gzip(path: &Path) -> std::io::Result<bool> {
    let mut magic = [0u8; 2];
    let mut f = File::open(path)?;
    let n = read_full(&mut f, &mut magic)?;
    Ok(n == 2 && magic == GZIP_MAGIC)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Whether the first 512 bytes read from `r` are a valid tar header (checksum matches).
fn looks_like_tar(r: &mut impl Read) -> bool {
    let mut block = [0u8; 512];
    if read_full(r, &mut block).map_or(true, |n| n < 512) {
        return false;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let Some(stored) = stored else { return false };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(*b)
            }
        })
        .sum();
    sum == stored
}

/// The member names of a tarball (plain or gzip) at `path`, for sniffing; `None` when it is
/// not a tarball. Stops early once `stop` returns true for a name.
pub(super) fn member_names(path: &Path, stop: impl Fn(&str) -> bool) -> Option<HashSet<String>> {
    let gz = is_gzip(path).ok()?;
    let file = File::open(path).ok()?;
    let mut names = HashSet::new();
    let limits = Limits::default();
    if gz {
        let mut probe = MultiGzDecoder::new(BufReader::new(File::open(path).ok()?));
        if !looks_like_tar(&mut probe) {
            return None;
        }
        let mut ar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(file)));
        for entry in ar.entries().ok()? {
            let entry = entry.ok()?;
            if let Some(key) = member_key(&String::from_utf8_lossy(&entry.path_bytes())) {
                let done = stop(&key);
                names.insert(key);
                if done || names.len() as u64 > limits.max_entries {
                    break;
                }
            }
        }
    } else {
        let mut probe = File::open(path).ok()?;
        if !looks_like_tar(&mut probe) {
            return None;
        }
        let mut ar = tar::Archive::new(BufReader::new(file));
        for entry in ar.entries_with_seek().ok()? {
            let entry = entry.ok()?;
            if let Some(key) = member_key(&String::from_utf8_lossy(&entry.path_bytes())) {
                let done = stop(&key);
                names.insert(key);
                if done || names.len() as u64 > limits.max_entries {
                    break;
                }
            }
        }
    }
    Some(names)
}

/// The header facts of an outer-tarball member that the index needs.
struct RawMember {
    name: String,
    kind: tar::EntryType,
    offset: u64,
    size: u64,
    link: Option<String>,
}

impl RawMember {
    fn of<R: Read>(entry: &tar::Entry<'_, R>) -> Self {
        RawMember {
            name: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            kind: entry.header().entry_type(),
            offset: entry.raw_file_position(),
            size: entry.size(),
            link: entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        }
    }

    /// The index key and slot of this member; `None` for folders, devices and names that
    /// climb out of the tarball.
    fn into_slot(self) -> Option<(String, Slot)> {
        let key = member_key(&self.name)?;
        let slot = match self.kind {
            tar::EntryType::Regular | tar::EntryType::Continuous => Slot::Data(Member {
                offset: self.offset,
                size: self.size,
            }),
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = self.link.unwrap_or_default();
                // Symlinks are relative to the member's folder, hard links to the root.
                let joined = if self.kind == tar::EntryType::Symlink {
                    let dir = key.rsplit_once('/').map_or("", |(d, _)| d);
                    format!("{dir}/{target}")
                } else {
                    target
                };
                Slot::Link(member_key(&joined)?)
            }
            _ => return None,
        };
        Some((key, slot))
    }
}

/// Whether a member of a gzip-compressed tarball may be a manifest, index or config.
/// Blobs (configs, manifests, indexes, but also small layers) are kept only up to
/// [`SMALL_BLOB`], so small layers cannot crowd the metadata out of [`SMALL_TOTAL`].
fn keep_small(key: &str, size: u64) -> bool {
    if key.starts_with("blobs/") {
        size <= SMALL_BLOB
    } else {
        size <= SMALL_MEMBER
            && (key.ends_with(".json") || key == "oci-layout" || key == "repositories")
    }
}

impl Store {
    /// Index the outer container of an image.
    pub(super) fn open(path: &Path, is_dir: bool, limits: &Limits) -> Result<Store, Error> {
        if is_dir {
            return Ok(Store::Dir {
                root: path.to_path_buf(),
            });
        }
        let corrupt = |e: std::io::Error| {
            Error::input(
                path.display(),
                format!("corrupt or truncated image tarball ({e}); re-export it (docker save)"),
            )
        };
        let gz = is_gzip(path).map_err(|e| Error::io(path, e))?;
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut members = HashMap::new();
        let mut small = HashMap::new();
        let mut small_total = 0u64;
        let mut count = 0u64;
        let mut add = |members: &mut HashMap<String, Slot>,
                       raw: RawMember|
         -> Result<Option<String>, Error> {
            count += 1;
            if count > limits.max_entries {
                return Err(Error::input(
                    path.display(),
                    format!(
                        "more than {} members in the image tarball",
                        limits.max_entries
                    ),
                ));
            }
            Ok(raw.into_slot().map(|(key, slot)| {
                members.insert(key.clone(), slot);
                key
            }))
        };
        if gz {
            let mut unpacked = 0u64;
            let mut ar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(file)));
            for entry in ar.entries().map_err(corrupt)? {
                let mut entry = entry.map_err(corrupt)?;
                let size = entry.size();
                unpacked = unpacked.saturating_add(size);
                if unpacked > limits.max_total_uncompressed {
                    return Err(Error::input(
                        path.display(),
                        format!(
                            "the tarball unpacks to more than {} bytes (limit); refusing to read further",
                            limits.max_total_uncompressed
                        ),
                    ));
                }
                if let Some(key) = add(&mut members, RawMember::of(&entry))? {
                    if keep_small(&key, size) && small_total + size <= SMALL_TOTAL {
                        let mut buf = Vec::with_capacity(size as usize);
                        entry.read_to_end(&mut buf).map_err(corrupt)?;
                        if buf.len() as u64 != size {
                            return Err(corrupt(std::io::ErrorKind::UnexpectedEof.into()));
                        }
                        small_total += size;
                        small.insert(key, buf);
                    }
                }
            }
            Ok(Store::GzTar {
                file: path.to_path_buf(),
                members,
                small,
            })
        } else {
            let mut ar = tar::Archive::new(BufReader::new(file));
            for entry in ar.entries_with_seek().map_err(corrupt)? {
                let entry = entry.map_err(corrupt)?;
                let end = entry.raw_file_position().saturating_add(entry.size());
                if end > file_len {
                    return Err(Error::input(
                        path.display(),
                        format!(
                            "truncated image tarball: member {:?} ends at byte {end} but the \
                             file has {file_len} bytes; re-export it (docker save)",
                            String::from_utf8_lossy(&entry.path_bytes())
                        ),
                    ));
                }
                add(&mut members, RawMember::of(&entry))?;
            }
            Ok(Store::Tar {
                file: path.to_path_buf(),
                members,
            })
        }
    }

    /// Whether the outer container can be read at any member (layers in parallel).
    pub(super) fn seekable(&self) -> bool {
        !matches!(self, Store::GzTar { .. })
    }

    /// Follow member links to the member holding the data.
    fn resolve(members: &HashMap<String, Slot>, key: &str) -> Option<(String, Option<Member>)> {
        let mut key = key.to_string();
        for _ in 0..MAX_MEMBER_LINKS {
            match members.get(&key)? {
                Slot::Data(m) => return Some((key, Some(*m))),
                Slot::Link(t) => key = t.clone(),
            }
        }
        None
    }

    /// The canonical member (after links) holding `name`, if present.
    pub(super) fn canonical(&self, name: &str) -> Option<String> {
        let key = member_key(name)?;
        match self {
            Store::Dir { root } => {
                // Existence only; `open_member` refuses symlinks with a clear message.
                std::fs::symlink_metadata(root.join(&key))
                    .is_ok()
                    .then_some(key)
            }
            Store::Tar { members, .. } | Store::GzTar { members, .. } => {
                Self::resolve(members, &key).map(|(k, _)| k)
            }
        }
    }

    /// A path under an OCI layout folder, refusing symlinks (they could point out of it).
    fn dir_path(&self, root: &Path, key: &str) -> std::io::Result<PathBuf> {
        let mut p = root.to_path_buf();
        for part in key.split('/') {
            p.push(part);
            if std::fs::symlink_metadata(&p)?.file_type().is_symlink() {
                return Err(std::io::Error::other(
                    "is a symlink; blobs of an OCI layout must be regular files",
                ));
            }
        }
        Ok(p)
    }

    /// Size of a member, if present.
    pub(super) fn size(&self, name: &str) -> Option<u64> {
        let key = self.canonical(name)?;
        match self {
            // Regular files only: a symlinked blob is refused when opened, with its reason.
            Store::Dir { root } => std::fs::symlink_metadata(root.join(&key))
                .ok()
                .filter(std::fs::Metadata::is_file)
                .map(|m| m.len()),
            Store::Tar { members, .. } | Store::GzTar { members, .. } => {
                Self::resolve(members, &key)?.1.map(|m| m.size)
            }
        }
    }

    /// A reader over a member (seekable stores only).
    pub(super) fn open_member(
        &self,
        name: &str,
        display: &str,
    ) -> Result<Box<dyn Read + Send>, Error> {
        let missing = || {
            Error::input(
                display,
                format!("missing blob {name:?}: the image is incomplete; re-export it"),
            )
        };
        let key = member_key(name).ok_or_else(missing)?;
        match self {
            Store::Dir { root } => {
                let p = self
                    .dir_path(root, &key)
                    .map_err(|e| Error::input(display, format!("blob {key:?}: {e}")))?;
                let f = File::open(&p).map_err(|_| missing())?;
                Ok(Box::new(BufReader::with_capacity(256 * 1024, f)))
            }
            Store::Tar { file, members } => {
                let (_, m) = Self::resolve(members, &key).ok_or_else(missing)?;
                let m = m.ok_or_else(missing)?;
                let mut f = File::open(file).map_err(|e| Error::io(file, e))?;
                f.seek(SeekFrom::Start(m.offset))
                    .map_err(|e| Error::io(file, e))?;
                Ok(Box::new(BufReader::with_capacity(
                    256 * 1024,
                    f.take(m.size),
                )))
            }
            Store::GzTar { .. } => Err(Error::input(
                display,
                "internal: gzip-compressed tarballs are read sequentially",
            )),
        }
    }

    /// A small member (manifest, index, config) read into memory, at most `limit` bytes.
    pub(super) fn read_small(
        &self,
        name: &str,
        limit: u64,
        display: &str,
    ) -> Result<Vec<u8>, Error> {
        if let Store::GzTar { members, small, .. } = self {
            let key = member_key(name).unwrap_or_default();
            let (key, _) = Self::resolve(members, &key).ok_or_else(|| {
                Error::input(
                    display,
                    format!("missing {name:?}: the image is incomplete; re-export it"),
                )
            })?;
            return small.get(&key).cloned().ok_or_else(|| {
                Error::input(
                    display,
                    format!(
                        "member {name:?} is too large to read from a gzip-compressed tarball; \
                         decompress the tarball first (gunzip)"
                    ),
                )
            });
        }
        if let Some(size) = self.size(name) {
            if size > limit {
                return Err(Error::input(
                    display,
                    format!("member {name:?} is {size} bytes, over the {limit}-byte limit for image metadata"),
                ));
            }
        }
        let mut r = self.open_member(name, display)?;
        let mut buf = Vec::new();
        r.by_ref()
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::input(display, format!("reading {name:?}: {e}")))?;
        if buf.len() as u64 > limit {
            return Err(Error::input(
                display,
                format!("member {name:?} is over the {limit}-byte limit for image metadata"),
            ));
        }
        Ok(buf)
    }

    /// Stream the members in `wanted` of a gzip-compressed tarball, in archive order.
    pub(super) fn stream_members(
        &self,
        wanted: &HashSet<String>,
        display: &str,
        mut f: impl FnMut(&str, &mut dyn Read) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let Store::GzTar { file, .. } = self else {
            return Err(Error::input(
                display,
                "internal: only gzip tarballs are streamed",
            ));
        };
        let corrupt = |e: std::io::Error| {
            Error::input(
                display,
                format!("corrupt or truncated image tarball ({e}); re-export it"),
            )
        };
        let f_in = File::open(file).map_err(|e| Error::io(file, e))?;
        let mut ar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(f_in)));
        let mut seen = HashSet::new();
        for entry in ar.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            if !matches!(
                entry.header().entry_type(),
                tar::EntryType::Regular | tar::EntryType::Continuous
            ) {
                continue;
            }
            let Some(key) = member_key(&String::from_utf8_lossy(&entry.path_bytes())) else {
                continue;
            };
            if wanted.contains(&key) && seen.insert(key.clone()) {
                f(&key, &mut entry)?;
            }
        }
        Ok(())
    }
}
