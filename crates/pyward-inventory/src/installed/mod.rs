//! Installed packages: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` (folder or file), zipped
//! `.egg`, `conda-meta/*.json`; `RECORD` / `installed-files.txt` attribute files to packages;
//! `top_level.txt`, `direct_url.json`, `INSTALLER` where present.
//!
//! Discovery only looks at paths (cheap, one pass over the entries); each package's files are then
//! read in parallel. A problem with one package (corrupt or huge METADATA, bad RECORD, truncated
//! egg) becomes a warning naming the file, and the package is still reported from its folder
//! name where that is possible: a package whose metadata cannot be read is still evidence.

mod conda;
mod egg;
pub mod metadata;
mod record;

pub use record::{parse_record, RecordEntry};

use crate::tree::{join_path, parent_path, EntryKind, FileTree, ReadError};
use metadata::{parse_core_metadata, CoreMetadata};
use pyward_core::{InstalledKind, Location, Package, PackageSource, Warning};
use rayon::prelude::*;
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// Largest METADATA, PKG-INFO, RECORD, conda-meta JSON or other small metadata file read.
pub const METADATA_LIMIT: u64 = 16 * 1024 * 1024;

/// Largest zipped `.egg` read into memory to find its `EGG-INFO/PKG-INFO`.
pub const EGG_LIMIT: u64 = 64 * 1024 * 1024;

/// Files inside a metadata folder (`.dist-info`, `.egg-info`, `.egg/EGG-INFO`) that the catalog
/// reads.
const METADATA_FILES: &[&str] = &[
    "METADATA",
    "PKG-INFO",
    "RECORD",
    "installed-files.txt",
    "top_level.txt",
    "direct_url.json",
    "INSTALLER",
    "requires.txt",
];

/// Whether a file's content is needed by [`catalog`] (used to decide what to keep in memory while
/// streaming an image or archive).
pub fn is_candidate(path: &str, size: u64) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let parent = parent_path(path);
    let parent_name = parent.rsplit('/').next().unwrap_or(parent);
    if name.ends_with(".egg") {
        return size <= EGG_LIMIT;
    }
    if size > METADATA_LIMIT {
        return false;
    }
    if name.ends_with(".egg-info") {
        return true;
    }
    if parent_name == "conda-meta" {
        return name.ends_with(".json");
    }
    METADATA_FILES.contains(&name)
        && (parent_name.ends_with(".dist-info")
            || parent_name.ends_with(".egg-info")
            || (parent_name == "EGG-INFO" && parent_path(parent).ends_with(".egg")))
}

/// Where an installed package's metadata lives (tree paths).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Found {
    /// A `*.dist-info` folder.
    DistInfo(String),
    /// A `*.egg-info` folder.
    EggInfoDir(String),
    /// A single `*.egg-info` file (distutils).
    EggInfoFile(String),
    /// An unzipped `*.egg` folder holding `EGG-INFO/`.
    EggDir(String),
    /// A zipped `*.egg` file.
    EggZip(String),
    /// `conda-meta/<name>-<version>-<build>.json`.
    Conda(String),
}

impl Found {
    fn path(&self) -> &str {
        match self {
            Found::DistInfo(p)
            | Found::EggInfoDir(p)
            | Found::EggInfoFile(p)
            | Found::EggDir(p)
            | Found::EggZip(p)
            | Found::Conda(p) => p,
        }
    }
}

/// Find every installed package in `tree`. Problems with one package (corrupt METADATA, huge
/// files, invalid UTF-8) become warnings and the rest goes on.
pub fn catalog(tree: &dyn FileTree, warnings: &mut Vec<Warning>) -> Vec<Package> {
    let found = discover(tree);
    let results: Vec<(Option<Package>, Vec<Warning>)> = found
        .par_iter()
        .map(|f| {
            let mut w = Vec::new();
            let p = load(tree, f, &mut w);
            (p, w)
        })
        .collect();
    let mut packages = Vec::with_capacity(results.len());
    for (p, mut w) in results {
        warnings.append(&mut w);
        packages.extend(p);
    }
    // The same package at the same location once (e.g. a metadata folder seen through two kinds
    // of evidence).
    let mut seen = HashSet::new();
    packages.retain(|p| {
        seen.insert((
            p.source,
            p.location.path.clone(),
            p.normalized.clone(),
            p.version.clone(),
        ))
    });
    packages.sort_by(|a, b| {
        a.location
            .path
            .cmp(&b.location.path)
            .then(a.name.cmp(&b.name))
    });
    packages
}

/// One pass over the entries, by path only.
fn discover(tree: &dyn FileTree) -> BTreeSet<Found> {
    let mut found = BTreeSet::new();
    for e in tree.entries() {
        let name = e.file_name();
        match e.kind {
            EntryKind::Dir => {
                if name.ends_with(".dist-info") {
                    found.insert(Found::DistInfo(e.path.clone()));
                } else if name.ends_with(".egg-info") {
                    found.insert(Found::EggInfoDir(e.path.clone()));
                }
            }
            EntryKind::File => {
                if name.ends_with(".egg-info") {
                    found.insert(Found::EggInfoFile(e.path.clone()));
                    continue;
                }
                if name.ends_with(".egg") {
                    found.insert(Found::EggZip(e.path.clone()));
                    continue;
                }
                // Folders are not always listed in images: infer them from their files.
                let parent = parent_path(&e.path);
                let parent_name = parent.rsplit('/').next().unwrap_or(parent);
                if parent_name.ends_with(".dist-info") {
                    found.insert(Found::DistInfo(parent.to_string()));
                } else if parent_name.ends_with(".egg-info") {
                    found.insert(Found::EggInfoDir(parent.to_string()));
                } else if parent_name == "EGG-INFO" && parent_path(parent).ends_with(".egg") {
                    found.insert(Found::EggDir(parent_path(parent).to_string()));
                } else if parent_name == "conda-meta" && name.ends_with(".json") {
                    found.insert(Found::Conda(e.path.clone()));
                }
            }
            _ => {}
        }
    }
    // A metadata-looking folder inside another package's metadata folder is a copy (e.g.
    // `bleach-6.4.0.dist-info/licenses/bleach/_vendor/html5lib-1.1.dist-info`), not an install.
    found.retain(|f| !inside_metadata_folder(f.path()));
    found
}

/// Whether any folder above `path` is a `.dist-info` / `.egg-info` folder.
fn inside_metadata_folder(path: &str) -> bool {
    parent_path(path)
        .split('/')
        .any(|c| c.ends_with(".dist-info") || c.ends_with(".egg-info"))
}

fn load(tree: &dyn FileTree, found: &Found, warnings: &mut Vec<Warning>) -> Option<Package> {
    match found {
        Found::DistInfo(dir) => load_folder(
            tree,
            dir,
            "METADATA",
            InstalledKind::DistInfo,
            ".dist-info",
            warnings,
        ),
        Found::EggInfoDir(dir) => load_folder(
            tree,
            dir,
            "PKG-INFO",
            InstalledKind::EggInfo,
            ".egg-info",
            warnings,
        ),
        Found::EggDir(dir) => load_egg_dir(tree, dir, warnings),
        Found::EggInfoFile(file) => load_egg_info_file(tree, file, warnings),
        Found::EggZip(file) => egg::load_zipped(tree, file, warnings),
        Found::Conda(file) => conda::load(tree, file, warnings),
    }
}

/// A `.dist-info` or `.egg-info` folder.
fn load_folder(
    tree: &dyn FileTree,
    dir: &str,
    metadata_name: &str,
    kind: InstalledKind,
    suffix: &str,
    warnings: &mut Vec<Warning>,
) -> Option<Package> {
    let md_path = format!("{dir}/{metadata_name}");
    let folder = dir.rsplit('/').next().unwrap_or(dir);
    let mut pkg = package_from(tree, &md_path, dir, folder, suffix, kind, warnings)?;
    let site = parent_path(dir);
    if let Some(bytes) = read_optional(tree, &format!("{dir}/RECORD"), warnings) {
        pkg.files = record_files(tree, &format!("{dir}/RECORD"), site, &bytes, warnings);
    } else if let Some(bytes) = read_optional(tree, &format!("{dir}/installed-files.txt"), warnings)
    {
        pkg.files = listed_files(dir, &bytes);
    }
    add_extras(tree, dir, &mut pkg, warnings);
    Some(pkg)
}

/// An unzipped `.egg` folder: metadata in `EGG-INFO/`, every file under the folder is the
/// package's (eggs have no RECORD).
fn load_egg_dir(tree: &dyn FileTree, dir: &str, warnings: &mut Vec<Warning>) -> Option<Package> {
    let info = format!("{dir}/EGG-INFO");
    let md_path = format!("{info}/PKG-INFO");
    let folder = dir.rsplit('/').next().unwrap_or(dir);
    let mut pkg = package_from(
        tree,
        &md_path,
        dir,
        folder,
        ".egg",
        InstalledKind::Egg,
        warnings,
    )?;
    let prefix = format!("{dir}/");
    let entries = tree.entries();
    let start = entries.partition_point(|e| e.path.as_str() < prefix.as_str());
    pkg.files = entries[start..]
        .iter()
        .take_while(|e| e.path.starts_with(&prefix))
        .filter(|e| e.kind != EntryKind::Dir)
        .map(|e| e.path.clone())
        .collect();
    add_extras(tree, &info, &mut pkg, warnings);
    Some(pkg)
}

/// A distutils `.egg-info` file: the file is PKG-INFO.
fn load_egg_info_file(
    tree: &dyn FileTree,
    file: &str,
    warnings: &mut Vec<Warning>,
) -> Option<Package> {
    let name = file.rsplit('/').next().unwrap_or(file);
    let mut pkg = package_from(
        tree,
        file,
        file,
        name,
        ".egg-info",
        InstalledKind::EggInfoFile,
        warnings,
    )?;
    pkg.files = vec![file.to_string()];
    Some(pkg)
}

/// Build a package from its core metadata at `md_path`, or from the metadata folder's name when
/// the metadata is missing, unreadable or corrupt (with a warning). `None` only for entries that
/// are not packages (Python 2's own `Python-2.7.egg-info`) or hold no name at all.
fn package_from(
    tree: &dyn FileTree,
    md_path: &str,
    folder_path: &str,
    folder_name: &str,
    suffix: &str,
    kind: InstalledKind,
    warnings: &mut Vec<Warning>,
) -> Option<Package> {
    let source = PackageSource::Installed(kind);
    let parsed = match tree.read(md_path, METADATA_LIMIT) {
        Ok(bytes) => parse_core_metadata(&bytes).map_err(|e| format!("corrupt metadata: {e}")),
        Err(ReadError::NotFound) => Err("metadata file is missing".to_string()),
        Err(e) => Err(format!("cannot read metadata: {e}")),
    };
    match parsed {
        Ok(md) => {
            if is_python_itself(&md.name, kind) {
                return None;
            }
            Some(from_metadata(tree, md_path, md, source))
        }
        Err(problem) => {
            let (name, version) = split_folder_name(folder_name, suffix);
            let evidence = if tree.entry(md_path).is_some() {
                md_path
            } else {
                folder_path
            };
            if name.is_empty() {
                warnings.push(Warning::new(
                    tree.display_path(evidence),
                    format!("{problem}; no package name in the folder name either, skipped"),
                ));
                return None;
            }
            if is_python_itself(&name, kind) {
                return None;
            }
            warnings.push(Warning::new(
                tree.display_path(evidence),
                format!(
                    "{problem}; reported as {name} {} from the folder name",
                    version.as_deref().unwrap_or("(no version)")
                ),
            ));
            Some(Package::new(
                name,
                version,
                source,
                location(tree, evidence),
            ))
        }
    }
}

/// Python 2 installs its own `Python-2.7.egg-info` in lib-dynload; it is the interpreter, not a
/// package (syft skips it too).
fn is_python_itself(name: &str, kind: InstalledKind) -> bool {
    name == "Python" && matches!(kind, InstalledKind::EggInfo | InstalledKind::EggInfoFile)
}

pub(crate) fn from_metadata(
    tree: &dyn FileTree,
    md_path: &str,
    md: CoreMetadata,
    source: PackageSource,
) -> Package {
    let mut pkg = Package::new(md.name, md.version, source, location(tree, md_path));
    pkg.requires = md.requires_dist;
    pkg.summary = md.summary;
    pkg.license = md.license;
    pkg.author = md.author;
    pkg.home_page = md.home_page;
    pkg
}

pub(crate) fn location(tree: &dyn FileTree, path: &str) -> Location {
    let mut loc = Location::new(tree.display_path(path));
    loc.layer = tree.layer_of(path);
    loc
}

/// `name-version.dist-info`, `name-version-py3.8.egg-info`, `name.egg-info` → name, version.
/// The name part of these folders never holds `-` (it is escaped to `_`).
pub(crate) fn split_folder_name(folder: &str, suffix: &str) -> (String, Option<String>) {
    let stem = folder.strip_suffix(suffix).unwrap_or(folder);
    let mut parts = stem.splitn(3, '-');
    let name = parts.next().unwrap_or_default().to_string();
    let version = parts.next().filter(|v| !v.is_empty()).map(str::to_string);
    (name, version)
}

/// Read an optional metadata file: missing is normal, any other failure is a warning.
pub(crate) fn read_optional(
    tree: &dyn FileTree,
    path: &str,
    warnings: &mut Vec<Warning>,
) -> Option<Arc<[u8]>> {
    match tree.read(path, METADATA_LIMIT) {
        Ok(b) => Some(b),
        Err(ReadError::NotFound) => None,
        Err(e) => {
            warnings.push(Warning::new(
                tree.display_path(path),
                format!("cannot read: {e}"),
            ));
            None
        }
    }
}

/// Tree paths of the files a RECORD lists. Paths are relative to `site` (the folder holding the
/// `.dist-info`); absolute paths are kept as they are; paths that climb above the tree's root
/// cannot be in it and are left out.
fn record_files(
    tree: &dyn FileTree,
    record_path: &str,
    site: &str,
    bytes: &[u8],
    warnings: &mut Vec<Warning>,
) -> Vec<String> {
    let (entries, problems) = record::parse_record_lenient(bytes);
    if let Some(first) = problems.first() {
        warnings.push(Warning::new(
            tree.display_path(record_path),
            format!(
                "corrupt RECORD ({} problem(s), first: {first}); files it lists may be attributed \
                 incompletely and their hashes cannot be trusted",
                problems.len()
            ),
        ));
    }
    let mut files: Vec<String> = entries
        .iter()
        .filter_map(|e| join_path(site, &e.path))
        .collect();
    files.sort();
    files.dedup();
    files
}

/// [`join_path`] without its allocations for the common case of a plain relative path (RECORDs
/// of big environments list tens of thousands of files).
fn join_fast(dir: &str, rel: &str) -> Option<String> {
    let plain = !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !plain {
        return join_path(dir, rel);
    }
    let mut out = String::with_capacity(dir.len() + rel.len() + 1);
    if dir != "/" {
        out.push_str(dir);
    }
    out.push('/');
    out.push_str(rel);
    Some(out)
}

/// `installed-files.txt`: one path per line, relative to the `.egg-info` folder.
fn listed_files(dir: &str, bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut files: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|l| join_fast(dir, l))
        .collect();
    files.sort();
    files.dedup();
    files
}

/// `top_level.txt`, `direct_url.json`, `INSTALLER`, and `requires.txt` (egg metadata keeps its
/// requirements there, not in PKG-INFO) from a metadata folder.
fn add_extras(tree: &dyn FileTree, dir: &str, pkg: &mut Package, warnings: &mut Vec<Warning>) {
    if let Some(b) = read_optional(tree, &format!("{dir}/top_level.txt"), warnings) {
        pkg.top_level = lines(&b);
    }
    if let Some(b) = read_optional(tree, &format!("{dir}/INSTALLER"), warnings) {
        pkg.installer = lines(&b).into_iter().next();
    }
    let direct_url = format!("{dir}/direct_url.json");
    if let Some(b) = read_optional(tree, &direct_url, warnings) {
        match serde_json::from_slice::<serde_json::Value>(&b) {
            Ok(v) => match v.get("url").and_then(|u| u.as_str()) {
                Some(url) => pkg.direct_url = Some(url.to_string()),
                None => warnings.push(Warning::new(
                    tree.display_path(&direct_url),
                    "direct_url.json has no `url` string (PEP 610); ignored",
                )),
            },
            Err(e) => warnings.push(Warning::new(
                tree.display_path(&direct_url),
                format!("direct_url.json is not valid JSON ({e}); ignored"),
            )),
        }
    }
    if pkg.requires.is_empty() {
        if let Some(b) = read_optional(tree, &format!("{dir}/requires.txt"), warnings) {
            pkg.requires = parse_requires_txt(&String::from_utf8_lossy(&b));
        }
    }
}

/// Non-empty, trimmed lines.
pub(crate) fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// setuptools' `requires.txt`: requirements, then `[extra]`, `[:marker]` or `[extra:marker]`
/// sections, turned into PEP 508 strings with markers.
pub(crate) fn parse_requires_txt(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let (extra, env) = section.split_once(':').unwrap_or((section, ""));
            let mut parts = Vec::new();
            if !extra.trim().is_empty() {
                parts.push(format!("extra == \"{}\"", extra.trim()));
            }
            if !env.trim().is_empty() {
                parts.push(format!("({})", env.trim()));
            }
            marker = if parts.is_empty() {
                None
            } else {
                Some(parts.join(" and "))
            };
            continue;
        }
        match &marker {
            Some(m) => out.push(format!("{line} ; {m}")),
            None => out.push(line.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{FileEntry, MemTree};
    use std::collections::HashMap;

    fn mem(files: &[(&str, &[u8])]) -> MemTree {
        let mut entries = Vec::new();
        let mut contents = HashMap::new();
        for (p, c) in files {
            entries.push(FileEntry {
                path: p.to_string(),
                kind: EntryKind::File,
                size: c.len() as u64,
                mode: 0o644,
                layer: None,
            });
            contents.insert(p.to_string(), Arc::from(*c));
        }
        MemTree::from_parts("mem", entries, contents, vec![])
    }

    #[test]
    fn metadata_folders_inside_metadata_folders_are_not_packages() {
        assert!(inside_metadata_folder(
            "/sp/bleach-6.4.0.dist-info/licenses/bleach/_vendor/html5lib-1.1.dist-info"
        ));
        assert!(!inside_metadata_folder(
            "/sp/bleach/_vendor/html5lib-1.1.dist-info"
        ));
        assert!(!inside_metadata_folder("/sp/six-1.16.0.dist-info"));
    }

    #[test]
    fn candidates() {
        assert!(is_candidate("/s/a-1.dist-info/METADATA", 10));
        assert!(is_candidate("/s/a-1.dist-info/RECORD", 10));
        assert!(is_candidate("/s/a-1.egg-info/PKG-INFO", 10));
        assert!(is_candidate("/s/a-1.egg-info", 10));
        assert!(is_candidate("/s/a-1.egg/EGG-INFO/PKG-INFO", 10));
        assert!(is_candidate("/s/a-1.egg", 10));
        assert!(is_candidate("/opt/conda/conda-meta/six-1-0.json", 10));
        assert!(!is_candidate("/opt/conda/conda-meta/history", 10));
        assert!(!is_candidate(
            "/s/a-1.dist-info/METADATA",
            METADATA_LIMIT + 1
        ));
        assert!(!is_candidate("/s/six.py", 10));
        assert!(!is_candidate("/s/METADATA", 10));
    }

    #[test]
    fn fast_join_matches_join_path() {
        for (dir, rel) in [
            ("/sp", "a/b.py"),
            ("/", "a.py"),
            ("/sp", "../bin/x"),
            ("/sp", "./a//b"),
            ("/sp", "/abs/x"),
            ("/sp", "a\\b"),
            ("/sp", "../../../x"),
        ] {
            assert_eq!(join_fast(dir, rel), join_path(dir, rel), "{dir} {rel}");
        }
    }

    #[test]
    fn folder_names() {
        assert_eq!(
            split_folder_name("six-1.16.0.dist-info", ".dist-info"),
            ("six".into(), Some("1.16.0".into()))
        );
        assert_eq!(
            split_folder_name("a_b-2-py3.8.egg-info", ".egg-info"),
            ("a_b".into(), Some("2".into()))
        );
        assert_eq!(
            split_folder_name("dev.egg-info", ".egg-info"),
            ("dev".into(), None)
        );
    }

    #[test]
    fn requires_txt_sections() {
        let r = parse_requires_txt("a>=1\n\n[test]\npytest\n[:python_version < \"3\"]\nfuture\n");
        assert_eq!(
            r,
            vec![
                "a>=1",
                "pytest ; extra == \"test\"",
                "future ; (python_version < \"3\")"
            ]
        );
    }

    #[test]
    fn memtree_dist_info_and_fallback() {
        let t = mem(&[
            (
                "/sp/good-1.0.dist-info/METADATA",
                b"Name: Good\nVersion: 1.0\n",
            ),
            (
                "/sp/good-1.0.dist-info/RECORD",
                b"good.py,sha256=x,1\n../bin/good,,\n/abs/x,,\n../../../../up,,\n",
            ),
            ("/sp/bad-2.0.dist-info/METADATA", b"garbage without headers"),
            (
                "/usr/lib/python2.7/lib-dynload/Python-2.7.egg-info",
                b"Name: Python\nVersion: 2.7\n",
            ),
        ]);
        let mut w = Vec::new();
        let pkgs = catalog(&t, &mut w);
        assert_eq!(pkgs.len(), 2, "{pkgs:?}");
        let bad = pkgs.iter().find(|p| p.name == "bad").unwrap();
        assert_eq!(bad.version.as_deref(), Some("2.0"));
        let good = pkgs.iter().find(|p| p.name == "Good").unwrap();
        assert_eq!(good.files, vec!["/abs/x", "/bin/good", "/sp/good.py"]);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("corrupt metadata"), "{w:?}");
    }
}
