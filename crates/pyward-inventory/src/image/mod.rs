//! Container images without a container engine: docker-archive (`docker save`), OCI image layout
//! folders and OCI archives; gzip, zstd and plain layers; whiteouts and opaque folders; each path
//! attributed to the layer that added it; the Dockerfile reconstructed from the history.

use crate::tree::{KeepPredicate, Limits, MemTree};
use pyward_core::{Error, ImageSummary, TargetKind, Warning};
use std::path::Path;

/// One `history[]` entry of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryEntry {
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

/// What the image config says besides its layers.
#[derive(Debug, Clone, Default)]
pub struct ImageMeta {
    pub summary: ImageSummary,
    pub history: Vec<HistoryEntry>,
    /// `config.User`.
    pub user: Option<String>,
    /// `config.ExposedPorts` keys, e.g. `8888/tcp`.
    pub exposed_ports: Vec<String>,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// A container image read into a squashed [`MemTree`] (what a container would see), each entry
/// attributed to the layer that last added it.
pub struct Image {
    pub tree: MemTree,
    pub meta: ImageMeta,
}

/// Whether `path` is an image this module can read: a docker-archive or OCI archive tarball, or
/// an OCI layout folder.
pub fn sniff(path: &Path) -> Option<TargetKind> {
    let _ = path;
    None
}

/// Read an image. `reference` picks one image (by tag or digest) from an archive holding
/// several. Only the contents of files for which `keep` is true are held in memory.
pub fn open(
    path: &Path,
    kind: TargetKind,
    reference: Option<&str>,
    limits: &Limits,
    keep: KeepPredicate,
    warnings: &mut Vec<Warning>,
) -> Result<Image, Error> {
    let _ = (path, kind, reference, limits, keep, warnings);
    Err(Error::input(path.display(), "images are not supported yet"))
}

/// The Dockerfile guessed from an image history, Anchore's way: `FROM scratch`, then for every
/// entry `#(nop)` commands as themselves and everything else as `RUN ...`.
pub fn reconstruct_dockerfile(history: &[HistoryEntry]) -> Vec<String> {
    let _ = history;
    Vec::new()
}
