use crate::dir::DirTree;
use crate::dockerfile::Dockerfile;
use crate::image::ImageMeta;
use crate::tree::{FileTree, Limits};
use crate::{archive, declared, image, installed};
use pyward_core::{Error, Package, Target, TargetKind, Warning};
use std::path::Path;

/// How a scan reads its target.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub limits: Limits,
    /// For image archives holding several images: the tag or digest to scan.
    pub image_reference: Option<String>,
    /// Contents to keep beyond the catalogers' own, while streaming an image (a scan policy's
    /// file checks: secrets, hashes). Folders are read on demand and need no such list.
    pub keep_extra: Option<KeepExtra>,
}

/// What else to keep for [`Options::keep_extra`]: `wants(path, size)` before a file is read,
/// and optionally `retain(path, content)` after; together they should be bounded (size caps, a
/// byte budget) so memory stays bounded.
#[derive(Clone)]
pub struct KeepExtra {
    pub wants: std::sync::Arc<KeepFn>,
    pub retain: Option<std::sync::Arc<RetainFn>>,
}

/// The `wants` function of a [`KeepExtra`].
pub type KeepFn = dyn Fn(&str, u64) -> bool + Send + Sync;
/// The `retain` function of a [`KeepExtra`].
pub type RetainFn = dyn Fn(&str, &[u8]) -> bool + Send + Sync;

impl KeepExtra {
    pub fn new(wants: impl Fn(&str, u64) -> bool + Send + Sync + 'static) -> Self {
        KeepExtra {
            wants: std::sync::Arc::new(wants),
            retain: None,
        }
    }

    pub fn with_retain(
        mut self,
        retain: impl Fn(&str, &[u8]) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.retain = Some(std::sync::Arc::new(retain));
        self
    }
}

/// The catalogers' own needs plus a [`KeepExtra`], as the image reader asks.
struct Keeping<'a> {
    extra: Option<&'a KeepExtra>,
}

impl crate::tree::Keep for Keeping<'_> {
    fn wants(&self, path: &str, size: u64) -> bool {
        is_candidate(path, size) || self.extra.is_some_and(|k| (k.wants)(path, size))
    }

    fn retain(&self, path: &str, content: &[u8]) -> bool {
        is_candidate(path, content.len() as u64)
            || self
                .extra
                .is_some_and(|k| k.retain.as_ref().is_none_or(|r| r(path, content)))
    }
}

impl std::fmt::Debug for KeepExtra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeepExtra(..)")
    }
}

/// Whether a Dockerfile was given by the user or found in the scanned folder ("actual"), or
/// reconstructed from an image's history ("guessed", Anchore's word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerfileMode {
    Actual,
    Guessed,
}

#[derive(Debug, Clone)]
pub struct DockerfileSource {
    /// Where it came from: the file's path, or `<image history>`.
    pub path: String,
    pub mode: DockerfileMode,
    pub dockerfile: Dockerfile,
}

/// Everything read from one target.
pub struct Inventory {
    pub target: Target,
    /// The files of the target, for file checks (name, mode, content) by later stages.
    pub tree: Box<dyn FileTree + Send>,
    pub packages: Vec<Package>,
    pub dockerfiles: Vec<DockerfileSource>,
    pub image: Option<ImageMeta>,
    pub warnings: Vec<Warning>,
    /// For images: files that later layers deleted (with the layer that added them), and the
    /// installed packages cataloged from them: what the image once held.
    pub removed: Option<crate::tree::MemTree>,
    pub removed_packages: Vec<Package>,
}

/// What kind of target `path` is, from the file system (never from the name alone for images:
/// their content is sniffed).
pub fn sniff_target(path: &Path) -> Result<TargetKind, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if let Some(kind) = image::sniff(path) {
        return Ok(kind);
    }
    if meta.is_dir() {
        return Ok(TargetKind::Directory);
    }
    if archive::archive_kind(path).is_some() {
        return Ok(TargetKind::Archive);
    }
    if meta.is_file() {
        return Ok(TargetKind::File);
    }
    Err(Error::input(
        path.display(),
        "is neither a folder, a regular file nor an image; pass a folder, a requirements/lock \
         file, a package archive or an image tarball",
    ))
}

/// How the Dockerfile reconstructed from an image's history is named in reports.
pub const HISTORY_DOCKERFILE: &str = "<image history>";

/// Maps a line of the Dockerfile reconstructed from `history` (as `lines`) back to the image
/// layer its history step created, so packages named by `RUN pip install` carry their layer.
fn history_line_layers<'a>(
    history: &[image::HistoryEntry],
    lines: &[String],
    layers: &'a [pyward_core::LayerRef],
) -> impl Fn(u32) -> Option<pyward_core::LayerRef> + 'a {
    // `lines[0]` is `FROM scratch`; every later element comes from one history entry with a
    // non-blank `created_by`, in order, and may span several text lines.
    let mut starts: Vec<(u32, Option<usize>)> = Vec::new();
    let mut line = 1 + lines
        .first()
        .map_or(0, |l| l.matches('\n').count() as u32 + 1);
    let mut layer = 0usize;
    let mut emitted = lines.iter().skip(1);
    for h in history {
        let has_line = h
            .created_by
            .as_deref()
            .is_some_and(|c| !c.trim().is_empty());
        let this_layer = (!h.empty_layer).then_some(layer);
        if !h.empty_layer {
            layer += 1;
        }
        if has_line {
            let Some(text) = emitted.next() else { break };
            starts.push((line, this_layer));
            line += text.matches('\n').count() as u32 + 1;
        }
    }
    move |at: u32| {
        let i = starts
            .partition_point(|(start, _)| *start <= at)
            .checked_sub(1)?;
        starts[i].1.and_then(|l| layers.get(l).cloned())
    }
}

/// A single file given as the target must be one pyward reads; anything else is an input error,
/// never a silent "no packages, GO".
fn check_known_file(path: &Path) -> Result<(), Error> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tree_path = format!("/{name}");
    if declared::classify(&tree_path).is_some()
        || is_dockerfile_name(&name)
        || installed::is_candidate(&tree_path, 0)
    {
        return Ok(());
    }
    let mut head = [0u8; 512];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .map_err(|e| Error::io(path, e))?;
    let is_tar = n >= 262 && &head[257..262] == b"ustar";
    let is_gzip = n >= 2 && head[..2] == [0x1f, 0x8b];
    let message = if is_tar || is_gzip {
        "is an archive, but neither a readable container image (no manifest.json or index.json \
         was found: is it truncated, or not a `docker save` / OCI archive?) nor a package archive \
         (.whl, .tar.gz, .zip, .egg)"
    } else {
        "is not a kind of file pyward reads: pass a folder, a requirements*.txt, pyproject.toml, \
         poetry.lock, Pipfile.lock, uv.lock, pdm.lock, pylock.toml, a Dockerfile, a package \
         archive or a container image"
    };
    Err(Error::input(path.display(), message))
}

/// Whether a file's content is needed by any cataloger.
pub fn is_candidate(path: &str, size: u64) -> bool {
    installed::is_candidate(path, size) || declared::is_candidate(path, size)
}

/// Read a target and catalog its packages.
pub fn inventory(path: &Path, options: &Options) -> Result<Inventory, Error> {
    let kind = sniff_target(path)?;
    let target = Target {
        kind,
        name: path.display().to_string(),
    };
    let mut warnings = Vec::new();
    let mut image_meta = None;
    let mut removed_tree = None;
    let mut archive_package = None;
    // Package archives inside a scanned folder: their packages and display prefixes.
    let mut mounted_packages = Vec::new();
    let mut mounted_prefixes: Vec<String> = Vec::new();
    let tree: Box<dyn FileTree + Send> = match kind {
        TargetKind::Directory => {
            let dir = DirTree::open(path, &mut warnings)?;
            let keep = Keeping {
                extra: options.keep_extra.as_ref(),
            };
            let m = crate::mounted::mount_archives(dir, &options.limits, &keep, &mut warnings);
            mounted_packages = m.packages;
            mounted_prefixes = m.display_prefixes;
            Box::new(m.tree)
        }
        TargetKind::File => {
            check_known_file(path)?;
            Box::new(DirTree::single_file(path, &mut warnings)?)
        }
        TargetKind::Archive => {
            let akind = archive::archive_kind(path).expect("sniffed as an archive");
            // Members no check wants are not even decompressed; the wanted ones are all kept
            // (one archive is bounded by the limits, and the analysis of its files runs in
            // parallel afterwards, cheaper than judging each while the archive is read).
            let keep = Keeping {
                extra: options.keep_extra.as_ref(),
            };
            let wanted = |p: &str, size: u64| crate::tree::Keep::wants(&keep, p, size);
            let tree = archive::open_keeping(path, akind, &options.limits, &wanted, &mut warnings)?;
            archive_package = archive::describe(&tree, akind, &mut warnings);
            Box::new(tree)
        }
        TargetKind::DockerArchive | TargetKind::OciLayout | TargetKind::OciArchive => {
            let keep = Keeping {
                extra: options.keep_extra.as_ref(),
            };
            let img = image::open(
                path,
                kind,
                options.image_reference.as_deref(),
                &options.limits,
                &keep,
                &mut warnings,
            )?;
            image_meta = Some(img.meta);
            removed_tree = Some(img.removed);
            Box::new(img.tree)
        }
        TargetKind::Specs => {
            return Err(Error::Usage(
                "a list of specs is not a path to inventory".into(),
            ))
        }
    };

    let (mut packages, mut declared) = rayon::join(
        || {
            let mut w = Vec::new();
            let p = installed::catalog(tree.as_ref(), &mut w);
            (p, w)
        },
        || {
            let mut w = Vec::new();
            let p = declared::catalog(tree.as_ref(), &mut w);
            (p, w)
        },
    );
    warnings.append(&mut packages.1);
    warnings.append(&mut declared.1);
    let mut packages = packages.0;

    if kind == TargetKind::Archive {
        // The archive's own metadata describes one package; an installed-looking dist-info inside
        // a wheel is that same package, so keep the archive's description only.
        packages.retain(|p| !p.source.is_installed());
        // `describe` has already warned when the archive holds no metadata.
        if let Some(p) = archive_package {
            packages.insert(0, p);
        }
    }
    if !mounted_prefixes.is_empty() {
        // As for an archive scanned alone: a wheel's own dist-info is the archive's package.
        packages.retain(|p| {
            !(p.source.is_installed()
                && mounted_prefixes
                    .iter()
                    .any(|m| p.location.path.starts_with(m.as_str())))
        });
        packages.append(&mut mounted_packages);
    }
    packages.append(&mut declared.0);

    let mut dockerfiles = dockerfiles_in(tree.as_ref(), &mut warnings);
    if let Some(meta) = &mut image_meta {
        let lines = image::reconstruct_dockerfile(&meta.history);
        meta.summary.dockerfile = lines.clone();
        let dockerfile = Dockerfile::parse(&lines.join("\n"));
        // `RUN pip install ...` steps of the history name packages too (and `-r` files that
        // are read from the image's own files).
        let from_history = declared::packages_from_dockerfile(
            &dockerfile,
            HISTORY_DOCKERFILE,
            tree.as_ref(),
            declared::DockerContext::Image,
            &mut warnings,
        );
        let layer_at = history_line_layers(&meta.history, &lines, tree.layers());
        packages.extend(from_history.into_iter().map(|mut p| {
            if let Some(line) = p
                .location
                .line
                .filter(|_| p.location.path == HISTORY_DOCKERFILE)
            {
                p.location.layer = layer_at(line);
            }
            p
        }));
        dockerfiles.push(DockerfileSource {
            path: HISTORY_DOCKERFILE.into(),
            mode: DockerfileMode::Guessed,
            dockerfile,
        });
    }

    // Packages whose metadata a later layer deleted (`--layers all`); warnings about them are
    // dropped, they are evidence, not the running image.
    let removed_packages = removed_tree
        .as_ref()
        .map(|t| installed::catalog(t, &mut Vec::new()))
        .unwrap_or_default();

    Ok(Inventory {
        target,
        tree,
        packages,
        dockerfiles,
        image: image_meta,
        warnings,
        removed: removed_tree,
        removed_packages,
    })
}

/// Dockerfiles found in a folder (not in images, whose files are not build inputs).
fn dockerfiles_in(tree: &dyn FileTree, warnings: &mut Vec<Warning>) -> Vec<DockerfileSource> {
    if !tree.layers().is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for e in tree
        .entries()
        .iter()
        .filter(|e| e.is_file() && is_dockerfile_name(e.file_name()))
    {
        match tree.read(&e.path, 4 * 1024 * 1024) {
            Ok(bytes) => out.push(DockerfileSource {
                path: tree.display_path(&e.path),
                mode: DockerfileMode::Actual,
                dockerfile: Dockerfile::parse(&String::from_utf8_lossy(&bytes)),
            }),
            Err(err) => warnings.push(Warning::new(tree.display_path(&e.path), err.to_string())),
        }
    }
    out
}

/// `Dockerfile`, `Containerfile`, `Dockerfile.prod`, `prod.Dockerfile`.
pub fn is_dockerfile_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "dockerfile"
        || lower == "containerfile"
        || lower.starts_with("dockerfile.")
        || lower.ends_with(".dockerfile")
}
