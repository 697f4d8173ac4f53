use crate::name::{normalize_name, purl};
use serde::{Deserialize, Serialize};

/// Where in an image a package or file came from: the layer that added it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LayerRef {
    /// 0-based position of the layer in the image, bottom first.
    pub index: usize,
    /// Digest of the layer blob as stored (`sha256:...`), compressed if the blob is.
    pub digest: String,
    /// Digest of the uncompressed layer (`rootfs.diff_ids[index]`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<String>,
    /// The history step that created the layer (`history[].created_by`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// Where a piece of evidence was found.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// Path of the evidence file. Inside an image or root filesystem: absolute (`/usr/lib/...`);
    /// inside a scanned folder: relative to the folder; a single file: the path as given.
    /// Inside an archive: `archive.whl!inner/path`.
    pub path: String,
    /// 1-based line in that file, for declared requirements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The image layer that added the file, for images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerRef>,
}

impl Location {
    pub fn new(path: impl Into<String>) -> Self {
        Location {
            path: path.into(),
            line: None,
            layer: None,
        }
    }

    pub fn with_line(mut self, line: u32) -> Self {
        self.line = Some(line);
        self
    }
}

/// How an installed package was recorded on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstalledKind {
    /// `*.dist-info/METADATA` (wheel / pip).
    DistInfo,
    /// `*.egg-info/PKG-INFO` (setuptools, directory form).
    EggInfo,
    /// A single `*.egg-info` file (distutils).
    EggInfoFile,
    /// A zipped `*.egg` or an unzipped `*.egg/EGG-INFO` folder.
    Egg,
    /// `conda-meta/*.json`.
    Conda,
}

/// Which file declared a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeclaredKind {
    Requirements,
    Pyproject,
    PoetryLock,
    PipfileLock,
    UvLock,
    PdmLock,
    Pylock,
    Dockerfile,
    /// A spec given on the command line (`pyward vet`), or a pip resolution report.
    CommandLine,
}

/// The kind of a package archive scanned before installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveKind {
    Wheel,
    Sdist,
    Egg,
}

/// What kind of evidence a package was found from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "kind", rename_all = "kebab-case")]
pub enum PackageSource {
    Installed(InstalledKind),
    Declared(DeclaredKind),
    Archive(ArchiveKind),
}

impl PackageSource {
    pub fn label(&self) -> &'static str {
        match self {
            PackageSource::Installed(k) => match k {
                InstalledKind::DistInfo => "installed (dist-info)",
                InstalledKind::EggInfo => "installed (egg-info)",
                InstalledKind::EggInfoFile => "installed (egg-info file)",
                InstalledKind::Egg => "installed (egg)",
                InstalledKind::Conda => "installed (conda)",
            },
            PackageSource::Declared(k) => match k {
                DeclaredKind::Requirements => "declared (requirements)",
                DeclaredKind::Pyproject => "declared (pyproject.toml)",
                DeclaredKind::PoetryLock => "declared (poetry.lock)",
                DeclaredKind::PipfileLock => "declared (Pipfile.lock)",
                DeclaredKind::UvLock => "declared (uv.lock)",
                DeclaredKind::PdmLock => "declared (pdm.lock)",
                DeclaredKind::Pylock => "declared (pylock.toml)",
                DeclaredKind::Dockerfile => "declared (Dockerfile)",
                DeclaredKind::CommandLine => "declared (command line)",
            },
            PackageSource::Archive(k) => match k {
                ArchiveKind::Wheel => "archive (wheel)",
                ArchiveKind::Sdist => "archive (sdist)",
                ArchiveKind::Egg => "archive (egg)",
            },
        }
    }

    pub fn is_installed(&self) -> bool {
        matches!(self, PackageSource::Installed(_))
    }
}

/// One Python package found in a target: installed, declared as a dependency, or an archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    /// The name exactly as found (METADATA `Name:`, requirement line, lockfile entry).
    pub name: String,
    /// PEP 503-normalised name, for comparison.
    pub normalized: String,
    /// Version as found; absent for unpinned declarations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Version specifier of a declaration (`>=1.0,<2`), or the URL of a direct reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specifier: Option<String>,
    pub source: PackageSource,
    /// The file the package was found in (METADATA, lockfile, requirement file, archive).
    pub location: Location,
    pub purl: String,
    /// Requires-Dist / dependency names (PEP 508 strings as found).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Files attributed to this package (from RECORD / installed-files.txt / conda `files`), as
    /// absolute paths of the scanned tree (`/lib/python3.11/site-packages/six.py`), so they can
    /// be joined with the tree's entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// `top_level.txt` import names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_level: Vec<String>,
    /// `direct_url.json` URL (PEP 610), for packages installed from a URL, VCS or local folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_url: Option<String>,
    /// `INSTALLER` (e.g. `pip`, `uv`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub home_page: Option<String>,
}

impl Package {
    /// A package with its name, version, source and location; everything else empty.
    pub fn new(
        name: impl Into<String>,
        version: Option<String>,
        source: PackageSource,
        location: Location,
    ) -> Self {
        let name = name.into();
        let normalized = normalize_name(&name);
        let purl = purl(&name, version.as_deref());
        Package {
            name,
            normalized,
            version,
            specifier: None,
            source,
            location,
            purl,
            requires: Vec::new(),
            files: Vec::new(),
            top_level: Vec::new(),
            direct_url: None,
            installer: None,
            summary: None,
            license: None,
            author: None,
            home_page: None,
        }
    }

    /// `name version` or `name` for display.
    pub fn display_name(&self) -> String {
        match &self.version {
            Some(v) => format!("{} {}", self.name, v),
            None => self.name.clone(),
        }
    }
}
