//! Declared dependencies: `requirements*.txt` (with `-r`/`-c` includes), `pyproject.toml` (PEP 621
//! and Poetry), `poetry.lock`, `Pipfile.lock`, `uv.lock`, `pdm.lock`, `pylock.toml`, and the
//! `pip install` lines of `Dockerfile`s.
//!
//! Every problem with one file or line (unreadable, wrong shape, malformed requirement, missing
//! include) becomes a [`Warning`] naming the file (and line) and the scan goes on. Files are read
//! through the [`FileTree`] with size limits; nothing is fetched and nothing is executed.

mod docker;
mod locks;
mod pyproject;
mod requirements;
mod spec;

pub use docker::{packages_from_dockerfile, DockerContext};
pub use requirements::{parse_requirements_text, ReqItem};
pub use spec::{archive_name_version, leading_name, parse_spec, DeclaredSpec, ParsedSpec};

use crate::tree::{join_path, parent_path, FileTree, ReadError, DEFAULT_READ_LIMIT};
use pyward_core::{DeclaredKind, LayerRef, Location, Package, PackageSource, Warning};
use std::collections::HashSet;

/// Largest requirements file read (a hash-pinned pip-compile output of a big project is a few
/// hundred KiB).
pub const REQUIREMENTS_READ_LIMIT: u64 = 4 * 1024 * 1024;
/// Largest Dockerfile read.
pub const DOCKERFILE_READ_LIMIT: u64 = 4 * 1024 * 1024;
/// Largest lock file or pyproject.toml read.
pub const LOCK_READ_LIMIT: u64 = DEFAULT_READ_LIMIT;
/// Deepest chain of `-r`/`-c` includes followed.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// Whether `path` (a tree path) names a file this module reads, and as what. Files inside an
/// installed environment (`site-packages`, `dist-packages`) are not declarations of the target:
/// packages ship test and example requirement files there.
pub fn classify(path: &str) -> Option<DeclaredKind> {
    let name = path.rsplit('/').next().unwrap_or(path);
    // Called for every file of an image: rule most names out without allocating (every name
    // below ends in `.txt`, `.in`, `.toml`, `.lock` or `file`, or is a `Dockerfile.*`).
    let last = name.bytes().last().map(|b| b.to_ascii_lowercase());
    let dockerfile_dot = name
        .get(..11)
        .is_some_and(|p| p.eq_ignore_ascii_case("dockerfile."));
    if !dockerfile_dot && !matches!(last, Some(b't' | b'n' | b'l' | b'k' | b'e')) {
        return None;
    }
    if path.contains("/site-packages/") || path.contains("/dist-packages/") {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "pyproject.toml" => return Some(DeclaredKind::Pyproject),
        "poetry.lock" => return Some(DeclaredKind::PoetryLock),
        "pipfile.lock" => return Some(DeclaredKind::PipfileLock),
        "uv.lock" => return Some(DeclaredKind::UvLock),
        "pdm.lock" => return Some(DeclaredKind::PdmLock),
        "pylock.toml" => return Some(DeclaredKind::Pylock),
        _ => {}
    }
    if lower.starts_with("pylock.") && lower.ends_with(".toml") {
        return Some(DeclaredKind::Pylock);
    }
    if crate::inventory::is_dockerfile_name(name) {
        return Some(DeclaredKind::Dockerfile);
    }
    let in_requirements_dir = parent_path(path).rsplit('/').next() == Some("requirements");
    let txt_like = lower.ends_with(".txt") || lower.ends_with(".in");
    if txt_like
        && (lower.contains("requirements") || lower.contains("constraints") || in_requirements_dir)
    {
        return Some(DeclaredKind::Requirements);
    }
    None
}

fn read_limit(kind: DeclaredKind) -> u64 {
    match kind {
        DeclaredKind::Requirements => REQUIREMENTS_READ_LIMIT,
        DeclaredKind::Dockerfile => DOCKERFILE_READ_LIMIT,
        _ => LOCK_READ_LIMIT,
    }
}

/// Whether a file's content is needed by [`catalog`] (and by [`packages_from_dockerfile`] in
/// image mode): requirement/constraint files, pyproject.toml, lock files and Dockerfiles, within
/// their read limits.
pub fn is_candidate(path: &str, size: u64) -> bool {
    classify(path).is_some_and(|kind| size <= read_limit(kind))
}

/// Find every declared dependency in `tree`. Dockerfiles are read for `pip install` lines only in
/// trees that are not images (an image's own files are not its build inputs).
pub fn catalog(tree: &dyn FileTree, warnings: &mut Vec<Warning>) -> Vec<Package> {
    let mut cx = Cataloger::new(tree, warnings);
    let mut dockerfiles = Vec::new();
    let mut others = Vec::new();
    for e in tree.entries().iter().filter(|e| e.is_file()) {
        match classify(&e.path) {
            Some(DeclaredKind::Requirements) => cx.requirements_file(&e.path, 0, None),
            Some(DeclaredKind::Dockerfile) => dockerfiles.push(e.path.as_str()),
            Some(kind) => others.push((e.path.as_str(), kind)),
            None => {}
        }
    }
    for (path, kind) in others {
        cx.file_as(path, kind);
    }
    if tree.layers().is_empty() {
        for path in dockerfiles {
            cx.file_as(path, DeclaredKind::Dockerfile);
        }
    }
    cx.out
}

/// Read one file of the tree as `kind`, whatever its name (for a file the user named on the
/// command line, e.g. `deps.txt` as requirements).
pub fn catalog_as(
    tree: &dyn FileTree,
    path: &str,
    kind: DeclaredKind,
    warnings: &mut Vec<Warning>,
) -> Vec<Package> {
    let mut cx = Cataloger::new(tree, warnings);
    if kind == DeclaredKind::Requirements {
        cx.requirements_file(path, 0, None);
    } else {
        cx.file_as(path, kind);
    }
    cx.out
}

/// Byte offset → 1-based line, for parsers that report spans.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub(crate) fn line(&self, offset: usize) -> u32 {
        let idx = self.starts.partition_point(|&s| s <= offset);
        u32::try_from(idx.max(1)).unwrap_or(u32::MAX)
    }
}

/// Decode a file's bytes: UTF-8 (BOM stripped) or UTF-16 with a BOM; invalid bytes are replaced
/// and reported.
fn decode(bytes: &[u8]) -> (String, bool) {
    if let Some(rest) = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        return decode(rest);
    }
    let utf16 = |rest: &[u8], le: bool| {
        let units: Vec<u16> = rest
            .chunks(2)
            .map(|c| match (c.first(), c.get(1)) {
                (Some(&a), Some(&b)) if le => u16::from_le_bytes([a, b]),
                (Some(&a), Some(&b)) => u16::from_be_bytes([a, b]),
                _ => 0xFFFD,
            })
            .collect();
        let text = String::from_utf16_lossy(&units);
        let lossy = text.contains('\u{FFFD}');
        (text, lossy)
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, false);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (String::from_utf8_lossy(bytes).into_owned(), true),
    }
}

/// A TOML error on one line: `TOML parse error at line 2, column 16: invalid type: ...`
/// (without the source excerpt, which a one-line warning cannot show).
pub(crate) fn toml_error(e: &toml::de::Error) -> String {
    let text = e.to_string();
    let mut first = None;
    let mut source = None;
    let mut rest = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match line.split_once('|') {
            // `2 | dependencies = "requests"`: the offending source line.
            Some((n, src))
                if !n.trim().is_empty() && n.trim().chars().all(|c| c.is_ascii_digit()) =>
            {
                let src = src.trim();
                if source.is_none() && !src.is_empty() {
                    source = Some(src.chars().take(120).collect::<String>());
                }
            }
            Some(_) => {}
            None if first.is_none() => first = Some(line),
            None => rest.push(line),
        }
    }
    let mut out = first.unwrap_or("invalid TOML").to_string();
    if let Some(src) = source {
        out.push_str(&format!(" (`{src}`)"));
    }
    if !rest.is_empty() {
        out.push_str(": ");
        out.push_str(&rest.join(" "));
    }
    out
}

/// Where a requirements file was referenced from, for messages about it.
#[derive(Clone, Copy)]
struct IncludedFrom<'a> {
    display: &'a str,
    line: u32,
    how: &'a str,
}

/// State of one cataloging run: the tree, the warnings, the requirement files already read (so
/// includes and Dockerfile `-r` files are read once, and include cycles end).
struct Cataloger<'a> {
    tree: &'a dyn FileTree,
    warnings: &'a mut Vec<Warning>,
    seen: HashSet<String>,
    out: Vec<Package>,
}

impl<'a> Cataloger<'a> {
    fn new(tree: &'a dyn FileTree, warnings: &'a mut Vec<Warning>) -> Self {
        Cataloger {
            tree,
            warnings,
            seen: HashSet::new(),
            out: Vec::new(),
        }
    }

    fn warn(&mut self, input: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning::new(input, message));
    }

    /// Read a file as text; problems become warnings and `None`.
    fn read_text(
        &mut self,
        path: &str,
        limit: u64,
        from: Option<IncludedFrom<'_>>,
    ) -> Option<String> {
        let display = self.tree.display_path(path);
        match self.tree.read(path, limit) {
            Ok(bytes) => {
                let (text, lossy) = decode(&bytes);
                if lossy {
                    self.warn(
                        &display,
                        "is not valid UTF-8 (nor UTF-16 with a BOM); invalid bytes were replaced",
                    );
                }
                Some(text)
            }
            Err(err) => {
                let why = match (&err, from) {
                    (ReadError::NotFound, Some(f)) => format!(
                        "line {}: {} `{display}`, which is not in the scanned tree; its \
                         packages are not listed",
                        f.line, f.how
                    ),
                    (_, Some(f)) => format!(
                        "cannot read this file ({} from {} line {}): {err}",
                        f.how, f.display, f.line
                    ),
                    (_, None) => format!("cannot read this file: {err}"),
                };
                let input = match (&err, from) {
                    (ReadError::NotFound, Some(f)) => f.display.to_string(),
                    _ => display,
                };
                self.warn(input, why);
                None
            }
        }
    }

    fn location(&self, path: &str, display: &str, line: Option<u32>) -> Location {
        Location {
            path: display.to_string(),
            line,
            layer: self.layer(path),
        }
    }

    fn layer(&self, path: &str) -> Option<LayerRef> {
        self.tree.layer_of(path)
    }

    fn push(&mut self, spec: DeclaredSpec, kind: DeclaredKind, location: Location) {
        let mut p = Package::new(
            spec.name,
            spec.version,
            PackageSource::Declared(kind),
            location,
        );
        p.specifier = spec.specifier;
        self.out.push(p);
    }

    /// A requirements file and, recursively, the files it includes with `-r` / `-c`.
    fn requirements_file(&mut self, path: &str, depth: usize, from: Option<IncludedFrom<'_>>) {
        if depth > MAX_INCLUDE_DEPTH {
            if let Some(f) = from {
                self.warn(
                    f.display,
                    format!(
                        "line {}: includes nest deeper than {MAX_INCLUDE_DEPTH} files; `{}` not read",
                        f.line,
                        self.tree.display_path(path)
                    ),
                );
            }
            return;
        }
        if !self.seen.insert(path.to_string()) {
            return; // already listed (or an include cycle)
        }
        let Some(text) = self.read_text(path, REQUIREMENTS_READ_LIMIT, from) else {
            return;
        };
        let display = self.tree.display_path(path);
        let (items, problems) = parse_requirements_text(&text);
        for (line, message) in problems {
            self.warn(&display, format!("line {line}: {message}"));
        }
        for item in items {
            match item {
                ReqItem::Requirement { text, line } => {
                    self.spec_at(&text, path, &display, line, DeclaredKind::Requirements)
                }
                ReqItem::Editable { value, line } => {
                    // A local folder names no package; a URL with `#egg=` does.
                    if value.contains("#egg=") {
                        self.spec_at(&value, path, &display, line, DeclaredKind::Requirements);
                    }
                }
                ReqItem::Include {
                    path: inc,
                    line,
                    constraint,
                } => {
                    let how = if constraint {
                        "-c includes"
                    } else {
                        "-r includes"
                    };
                    if inc.contains("://") {
                        self.warn(
                            &display,
                            format!(
                                "line {line}: `{inc}` is a URL; pyward never fetches anything while \
                                 scanning: download it and scan it separately"
                            ),
                        );
                        continue;
                    }
                    match join_path(parent_path(path), &inc) {
                        Some(target) => {
                            let f = IncludedFrom { display: &display, line, how };
                            self.requirements_file(&target, depth + 1, Some(f));
                        }
                        None => self.warn(
                            &display,
                            format!("line {line}: include `{inc}` points outside the scanned tree; not read"),
                        ),
                    }
                }
            }
        }
    }

    /// One requirement string at `line` of the file at `path`.
    fn spec_at(&mut self, text: &str, path: &str, display: &str, line: u32, kind: DeclaredKind) {
        let parsed = parse_spec(text);
        if let Some(problem) = parsed.problem {
            self.warn(display, format!("line {line}: {problem}"));
        }
        if let Some(spec) = parsed.spec {
            let location = self.location(path, display, Some(line));
            self.push(spec, kind, location);
        }
    }

    /// A pyproject.toml, lock file or Dockerfile.
    fn file_as(&mut self, path: &str, kind: DeclaredKind) {
        let Some(text) = self.read_text(path, read_limit(kind), None) else {
            return;
        };
        let display = self.tree.display_path(path);
        match kind {
            DeclaredKind::Requirements => {}
            DeclaredKind::Pyproject => match pyproject::dependencies(&text) {
                Ok(found) => {
                    for f in found {
                        if let Some(problem) = f.problem {
                            let at = f.line.map(|l| format!("line {l}: ")).unwrap_or_default();
                            self.warn(&display, format!("{at}{problem}"));
                        }
                        if let Some(spec) = f.spec {
                            let location = self.location(path, &display, f.line);
                            self.push(spec, kind, location);
                        }
                    }
                }
                Err(message) => self.warn(&display, message),
            },
            DeclaredKind::PipfileLock => {
                self.locked(path, &display, kind, locks::pipfile_lock(&text))
            }
            DeclaredKind::PoetryLock
            | DeclaredKind::UvLock
            | DeclaredKind::PdmLock
            | DeclaredKind::Pylock => {
                self.locked(path, &display, kind, locks::toml_lock(&text, kind))
            }
            DeclaredKind::Dockerfile => {
                let df = crate::dockerfile::Dockerfile::parse(&text);
                let dir = parent_path(path).to_string();
                self.dockerfile(&df, &display, DockerContext::BuildContext { dir: &dir });
            }
            DeclaredKind::CommandLine => {}
        }
    }

    fn locked(
        &mut self,
        path: &str,
        display: &str,
        kind: DeclaredKind,
        result: Result<Vec<locks::Locked>, String>,
    ) {
        match result {
            Ok(entries) => {
                for l in entries {
                    let location = self.location(path, display, l.line);
                    self.push(l.spec, kind, location);
                }
            }
            Err(message) => self.warn(display, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_names() {
        use DeclaredKind::*;
        for (path, want) in [
            ("/requirements.txt", Some(Requirements)),
            ("/app/dev-requirements.txt", Some(Requirements)),
            ("/app/requirements/base.txt", Some(Requirements)),
            ("/constraints.txt", Some(Requirements)),
            ("/requirements.in", Some(Requirements)),
            ("/notes.txt", None),
            ("/pyproject.toml", Some(Pyproject)),
            ("/poetry.lock", Some(PoetryLock)),
            ("/Pipfile.lock", Some(PipfileLock)),
            ("/uv.lock", Some(UvLock)),
            ("/pdm.lock", Some(PdmLock)),
            ("/pylock.toml", Some(Pylock)),
            ("/pylock.dev.toml", Some(Pylock)),
            ("/Dockerfile", Some(Dockerfile)),
            ("/Dockerfile.prod", Some(Dockerfile)),
            ("/dockerfile.3", Some(Dockerfile)),
            ("/docker/api.dockerfile", Some(Dockerfile)),
            ("/Containerfile", Some(Dockerfile)),
            ("/usr/lib/python3/site-packages/x/requirements.txt", None),
        ] {
            assert_eq!(classify(path), want, "{path}");
        }
        assert!(is_candidate("/requirements.txt", 1024));
        assert!(!is_candidate(
            "/requirements.txt",
            REQUIREMENTS_READ_LIMIT + 1
        ));
        assert!(is_candidate("/uv.lock", 20 * 1024 * 1024));
        assert!(!is_candidate("/readme.md", 10));
    }

    #[test]
    fn line_index() {
        let idx = LineIndex::new("a\nbc\n\nd");
        assert_eq!(
            [
                idx.line(0),
                idx.line(2),
                idx.line(3),
                idx.line(5),
                idx.line(6)
            ],
            [1, 2, 2, 3, 4]
        );
    }

    #[test]
    fn decoding() {
        assert_eq!(decode(b"\xEF\xBB\xBFsix\n"), ("six\n".to_string(), false));
        assert_eq!(decode(b"\xFF\xFEs\0i\0x\0"), ("six".to_string(), false));
        let (text, lossy) = decode(b"six\xFF\n");
        assert!(lossy && text.starts_with("six"));
    }
}
