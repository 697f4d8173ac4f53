//! Container images without a container engine: docker-archive (`docker save`), OCI image layout
//! folders and OCI archives; gzip, zstd and plain layers; whiteouts and opaque folders; each path
//! attributed to the layer that added it; the Dockerfile reconstructed from the history.
//!
//! How an image is read:
//! 1. the outer tarball is read once to index its members ([`store`]); a folder is used as is;
//! 2. `manifest.json` (docker-archive) or `index.json` + the image manifest (OCI) pick the image
//!    and its config and layer blobs ([`manifest`]);
//! 3. every layer blob is streamed (in parallel when the outer tarball can be seeked), decompressed
//!    by its magic bytes and walked as a tar ([`layer`]), keeping only the contents `keep` asks
//!    for, under the [`Limits`];
//! 4. the layers are squashed bottom to top ([`squash`]).
//!
//! Integrity: the sha256 of the config, of every layer blob whose digest is known (OCI, Docker
//! 25+), and of every uncompressed layer (`rootfs.diff_ids`) is checked while streaming. A
//! mismatch is an error: the image is corrupt or was tampered with, and a scan of it would not
//! describe what a container engine would run.

mod layer;
mod manifest;
mod squash;
mod store;

use crate::tree::{KeepPredicate, Limits, MemTree};
use layer::{scan_layer, scan_layer_pipelined, LayerContents, LayerCtx};
use manifest::{
    blob_member, digest_from_member, digest_matches, is_sha256, normalize_ref, Descriptor,
    DockerManifestEntry, ImageConfig, OciIndex, OciManifest,
};
use pyward_core::{Error, ImageSummary, LayerRef, TargetKind, Warning};
use rayon::prelude::*;
use regex::Regex;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use store::Store;

/// Largest `manifest.json`, `index.json`, image manifest or config read.
const METADATA_LIMIT: u64 = 16 * 1024 * 1024;

/// How deep nested image indexes (multi-platform) are followed.
const MAX_INDEX_DEPTH: usize = 4;

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
    /// What later layers deleted, each entry with the layer that added it, and the contents
    /// that were kept: evidence of what the image once held (`pyward scan --layers all`).
    pub removed: MemTree,
}

/// Whether a top-level member name fits an image tarball: a file at the top (`manifest.json`,
/// `<hex>.json`, `<hex>.tar`), `blobs/...`, or a legacy `<id>/...` layer folder.
fn image_like_member(name: &str) -> bool {
    match name.split_once('/') {
        None => true,
        Some((top, _)) => {
            top == "blobs" || (top.len() == 64 && top.bytes().all(|b| b.is_ascii_hexdigit()))
        }
    }
}

/// Whether `path` is an image this module can read: a docker-archive or OCI archive tarball, or
/// an OCI layout folder. Decided by content (tar and gzip magic, member names), never by the
/// file name; reads member headers only, and stops at the first member that no image has.
pub fn sniff(path: &Path) -> Option<TargetKind> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        return (path.join("oci-layout").is_file() && path.join("index.json").is_file())
            .then_some(TargetKind::OciLayout);
    }
    if !meta.is_file() {
        return None;
    }
    let names = store::member_names(path, |n| n == "manifest.json" || !image_like_member(n))?;
    if names.iter().any(|n| !image_like_member(n)) {
        return None;
    }
    if names.contains("manifest.json") {
        Some(TargetKind::DockerArchive)
    } else if names.contains("index.json") && names.contains("oci-layout") {
        Some(TargetKind::OciArchive)
    } else {
        None
    }
}

/// A layer to read: where its blob is and what it must hash to.
#[derive(Debug, Clone)]
struct PlannedLayer {
    /// Canonical member (or blob path) of the blob.
    member: String,
    /// Digest of the blob as the manifest names it, when it does.
    expected_digest: Option<String>,
}

/// The image picked from the archive: its config and layers.
#[derive(Debug, Clone, Default)]
struct Plan {
    repo_tags: Vec<String>,
    manifest_digest: Option<String>,
    config_member: String,
    config_digest: Option<String>,
    layers: Vec<PlannedLayer>,
}

/// One image an archive offers, for picking by reference.
struct Candidate<T> {
    names: Vec<String>,
    digests: Vec<String>,
    platform: Option<(String, String)>,
    item: T,
}

impl<T> Candidate<T> {
    fn label(&self) -> String {
        let name = self
            .names
            .first()
            .cloned()
            .unwrap_or_else(|| "<untagged>".into());
        let digest = self
            .digests
            .first()
            .map(|d| d.chars().take(19).collect::<String>());
        let platform = self
            .platform
            .as_ref()
            .map(|(os, arch)| format!(" {os}/{arch}"));
        format!(
            "{name}{}{}",
            digest.map(|d| format!(" ({d})")).unwrap_or_default(),
            platform.unwrap_or_default()
        )
    }

    fn matches(&self, reference: &str) -> bool {
        let (name_part, digest_part) = match reference.split_once('@') {
            Some((n, d)) => (Some(n).filter(|n| !n.is_empty()), Some(d)),
            None => (Some(reference), None),
        };
        if let Some(d) = digest_part {
            return self.digests.iter().any(|have| digest_matches(d, have));
        }
        let Some(want) = name_part else { return false };
        self.digests.iter().any(|have| digest_matches(want, have))
            || self.names.iter().any(|n| {
                n == want
                    || normalize_ref(n) == normalize_ref(want)
                    || want.rsplit_once(':').is_some_and(|(_, tag)| tag == n)
            })
    }
}

/// The platform name of this machine in OCI terms.
fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "x86" => "386",
        other => other,
    };
    ("linux", arch)
}

/// Pick one image: by reference when given; otherwise the only one, or the one for this
/// machine's platform; otherwise an error listing what is there.
fn choose<T>(
    mut cands: Vec<Candidate<T>>,
    reference: Option<&str>,
    display: &str,
) -> Result<T, Error> {
    if cands.is_empty() {
        return Err(Error::input(
            display,
            "holds no image (the manifest list is empty)",
        ));
    }
    let listing = |c: &[Candidate<T>]| {
        c.iter()
            .map(Candidate::label)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all = listing(&cands);
    if let Some(r) = reference {
        cands.retain(|c| c.matches(r));
        if cands.is_empty() {
            return Err(Error::input(
                display,
                format!("no image matches {r:?}; the archive holds: {all}"),
            ));
        }
    }
    if cands.len() > 1 {
        let (os, arch) = host_platform();
        let native: Vec<usize> = cands
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.platform
                    .as_ref()
                    .is_some_and(|(o, a)| o == os && a == arch)
            })
            .map(|(i, _)| i)
            .collect();
        if let [i] = native[..] {
            return Ok(cands.swap_remove(i).item);
        }
        return Err(Error::input(
            display,
            format!(
                "holds {} images: {}; pick one by tag or digest (pyward scan --image-ref)",
                cands.len(),
                listing(&cands)
            ),
        ));
    }
    cands
        .pop()
        .map(|c| c.item)
        .ok_or_else(|| Error::input(display, "holds no image"))
}

fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    member: &str,
    display: &str,
) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::input(
            display,
            format!("malformed {member}: {e}; the image is corrupt, re-export it"),
        )
    })
}

fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Read a blob by digest and check that it hashes to it.
fn read_verified(store: &Store, digest: &str, what: &str, display: &str) -> Result<Vec<u8>, Error> {
    let member = blob_member(digest).map_err(|e| Error::input(display, format!("{what}: {e}")))?;
    let bytes = store.read_small(&member, METADATA_LIMIT, display)?;
    let actual = sha256_digest(&bytes);
    if actual != digest {
        return Err(Error::input(
            display,
            format!("{what} {member}: digest mismatch (expected {digest}, content is {actual}); the image is corrupt or was tampered with"),
        ));
    }
    Ok(bytes)
}

/// The image of a docker-archive `manifest.json`.
fn plan_docker(store: &Store, reference: Option<&str>, display: &str) -> Result<Plan, Error> {
    let bytes = store.read_small("manifest.json", METADATA_LIMIT, display)?;
    let entries: Vec<DockerManifestEntry> = parse_json(&bytes, "manifest.json", display)?;
    let cands = entries
        .into_iter()
        .map(|e| Candidate {
            names: e.repo_tags.clone().unwrap_or_default(),
            digests: digest_from_member(&e.config).into_iter().collect(),
            platform: None,
            item: e,
        })
        .collect();
    let entry = choose(cands, reference, display)?;
    let missing = |m: &str| {
        Error::input(
            display,
            format!(
                "missing blob {m:?} named by manifest.json; the image is incomplete, re-export it"
            ),
        )
    };
    let config_member = store
        .canonical(&entry.config)
        .ok_or_else(|| missing(&entry.config))?;
    let mut layers = Vec::new();
    for l in &entry.layers {
        let member = store.canonical(l).ok_or_else(|| missing(l))?;
        layers.push(PlannedLayer {
            expected_digest: digest_from_member(&member),
            member,
        });
    }
    Ok(Plan {
        repo_tags: entry.repo_tags.unwrap_or_default(),
        manifest_digest: None,
        config_digest: digest_from_member(&config_member),
        config_member,
        layers,
    })
}

/// Image manifests listed by an OCI index, nested indexes followed.
fn collect_manifests(
    store: &Store,
    index: OciIndex,
    inherited: &[String],
    depth: usize,
    display: &str,
    out: &mut Vec<Candidate<Descriptor>>,
) -> Result<(), Error> {
    for d in index.manifests {
        let mut names = inherited.to_vec();
        if let Some(a) = &d.annotations {
            // Inserted in front, so the full name (containerd's) comes first: it is what is
            // shown to the user.
            for key in [
                "org.opencontainers.image.ref.name",
                "io.containerd.image.name",
            ] {
                if let Some(v) = a.get(key) {
                    names.insert(0, v.clone());
                }
            }
            // BuildKit attestations are manifests too, but not images.
            if a.get("vnd.docker.reference.type")
                .is_some_and(|t| t == "attestation-manifest")
            {
                continue;
            }
        }
        let media = d.media_type.as_deref().unwrap_or("");
        if media.contains("image.index") || media.contains("manifest.list") {
            if depth >= MAX_INDEX_DEPTH {
                return Err(Error::input(display, "image indexes nested too deep"));
            }
            let bytes = read_verified(store, &d.digest, "image index", display)?;
            let nested: OciIndex =
                parse_json(&bytes, &format!("image index {}", d.digest), display)?;
            collect_manifests(store, nested, &names, depth + 1, display, out)?;
            continue;
        }
        let platform = d.platform.as_ref().map(|p| {
            (
                p.os.clone().unwrap_or_default(),
                p.architecture.clone().unwrap_or_default(),
            )
        });
        if platform.as_ref().is_some_and(|(os, _)| os == "unknown") {
            continue;
        }
        out.push(Candidate {
            names,
            digests: vec![d.digest.clone()],
            platform,
            item: d,
        });
    }
    Ok(())
}

/// The image of an OCI layout (folder or archive).
fn plan_oci(store: &Store, reference: Option<&str>, display: &str) -> Result<Plan, Error> {
    let bytes = store.read_small("index.json", METADATA_LIMIT, display)?;
    let index: OciIndex = parse_json(&bytes, "index.json", display)?;
    let mut cands = Vec::new();
    collect_manifests(store, index, &[], 0, display, &mut cands)?;
    let names_of: HashMap<String, Vec<String>> = cands
        .iter()
        .map(|c| (c.item.digest.clone(), c.names.clone()))
        .collect();
    let desc = choose(cands, reference, display)?;
    let bytes = read_verified(store, &desc.digest, "image manifest", display)?;
    let manifest: OciManifest =
        parse_json(&bytes, &format!("image manifest {}", desc.digest), display)?;
    let config_member = blob_member(&manifest.config.digest)
        .map_err(|e| Error::input(display, format!("image config: {e}")))?;
    let mut layers = Vec::new();
    for l in &manifest.layers {
        if l.media_type
            .as_deref()
            .is_some_and(|m| m.contains("encrypted"))
        {
            return Err(Error::input(
                display,
                format!("layer {} is encrypted; pyward cannot read it", l.digest),
            ));
        }
        let member =
            blob_member(&l.digest).map_err(|e| Error::input(display, format!("layer: {e}")))?;
        let member = store.canonical(&member).ok_or_else(|| {
            Error::input(
                display,
                format!("missing layer blob {member:?}; the image is incomplete, re-export it"),
            )
        })?;
        if let (Some(want), Some(have)) = (l.size, store.size(&member)) {
            if want != have {
                return Err(Error::input(
                    display,
                    format!("layer blob {member}: {have} bytes but the manifest says {want}; the image is corrupt or truncated, re-export it"),
                ));
            }
        }
        layers.push(PlannedLayer {
            member,
            expected_digest: Some(l.digest.clone()),
        });
    }
    // Tags: full image names (`io.containerd.image.name`) when present.
    let repo_tags = names_of
        .get(&desc.digest)
        .map(|n| n.iter().filter(|s| s.contains(':')).cloned().collect())
        .unwrap_or_default();
    Ok(Plan {
        repo_tags,
        manifest_digest: Some(desc.digest.clone()),
        config_digest: Some(manifest.config.digest.clone()),
        config_member,
        layers,
    })
}

/// Scan every distinct layer blob of the plan; returns contents in plan order.
fn scan_layers(
    store: &Store,
    plan: &Plan,
    display: &str,
    limits: &Limits,
    keep: KeepPredicate<'_>,
) -> Result<Vec<LayerContents>, Error> {
    let total = AtomicU64::new(0);
    // First layer index of each distinct blob (an image may hold the same layer twice).
    let mut first: Vec<(usize, &str)> = Vec::new();
    let mut seen = HashSet::new();
    for (i, l) in plan.layers.iter().enumerate() {
        if seen.insert(l.member.as_str()) {
            first.push((i, l.member.as_str()));
        }
    }
    let mut by_member: HashMap<String, LayerContents> = HashMap::new();
    if store.seekable() {
        let results: Vec<(String, LayerContents)> = first
            .par_iter()
            .map(|&(i, member)| {
                let mut r = store.open_member(member, display)?;
                let ctx = LayerCtx {
                    image: display,
                    index: i,
                    member,
                    limits,
                    total: &total,
                    keep,
                };
                let contents = scan_layer_pipelined(&mut r, &ctx)?;
                Ok((member.to_string(), contents))
            })
            .collect::<Result<_, Error>>()?;
        by_member.extend(results);
    } else {
        let wanted: HashSet<String> = first.iter().map(|(_, m)| m.to_string()).collect();
        let index_of: HashMap<&str, usize> = first.iter().map(|&(i, m)| (m, i)).collect();
        store.stream_members(&wanted, display, |member, reader| {
            let i = index_of.get(member).copied().unwrap_or(0);
            let ctx = LayerCtx {
                image: display,
                index: i,
                member,
                limits,
                total: &total,
                keep,
            };
            let contents = scan_layer(reader, &ctx)?;
            by_member.insert(member.to_string(), contents);
            Ok(())
        })?;
    }
    plan.layers
        .iter()
        .map(|l| {
            by_member.get(&l.member).cloned().ok_or_else(|| {
                Error::input(
                    display,
                    format!(
                        "missing layer blob {:?}; the image is incomplete, re-export it",
                        l.member
                    ),
                )
            })
        })
        .collect()
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
    let display = path.display().to_string();
    let store = match kind {
        TargetKind::DockerArchive | TargetKind::OciArchive => Store::open(path, false, limits)?,
        TargetKind::OciLayout => Store::open(path, true, limits)?,
        _ => return Err(Error::input(&display, "is not a container image")),
    };
    let plan = match kind {
        TargetKind::DockerArchive => plan_docker(&store, reference, &display)?,
        _ => plan_oci(&store, reference, &display)?,
    };

    let config_bytes = store.read_small(&plan.config_member, METADATA_LIMIT, &display)?;
    let config_digest = sha256_digest(&config_bytes);
    if let Some(expected) = plan.config_digest.as_ref().filter(|d| is_sha256(d)) {
        if *expected != config_digest {
            return Err(Error::input(
                &display,
                format!(
                    "image config {}: digest mismatch (expected {expected}, content is {config_digest}); the image is corrupt or was tampered with",
                    plan.config_member
                ),
            ));
        }
    }
    let config: ImageConfig = parse_json(
        &config_bytes,
        &format!("image config {}", plan.config_member),
        &display,
    )?;
    let diff_ids = config
        .rootfs
        .as_ref()
        .map(|r| r.diff_ids.clone())
        .unwrap_or_default();
    if diff_ids.len() != plan.layers.len() {
        warnings.push(Warning::new(
            &display,
            format!(
                "the config lists {} layer diff ids but the manifest {} layers; layer digests are checked only where both exist",
                diff_ids.len(),
                plan.layers.len()
            ),
        ));
    }

    let contents = scan_layers(&store, &plan, &display, limits, keep)?;

    let history: Vec<HistoryEntry> = config
        .history
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|h| HistoryEntry {
            created: h.created,
            created_by: h.created_by,
            comment: h.comment,
            empty_layer: h.empty_layer.unwrap_or(false),
        })
        .collect();
    let mut layer_steps = history.iter().filter(|h| !h.empty_layer);
    let mut layers = Vec::with_capacity(contents.len());
    for (i, (planned, c)) in plan.layers.iter().zip(&contents).enumerate() {
        if let Some(expected) = planned.expected_digest.as_ref().filter(|d| is_sha256(d)) {
            if *expected != c.digest {
                return Err(Error::input(
                    &display,
                    format!(
                        "layer {i} ({}): blob digest mismatch (expected {expected}, content is {}); the image is corrupt or was tampered with",
                        planned.member, c.digest
                    ),
                ));
            }
        }
        let diff_id = diff_ids.get(i).cloned();
        if let Some(expected) = diff_id.as_ref().filter(|d| is_sha256(d)) {
            if *expected != c.diff_id {
                return Err(Error::input(
                    &display,
                    format!(
                        "layer {i} ({}): uncompressed digest mismatch (config diff_id {expected}, content is {}); the image is corrupt or was tampered with",
                        planned.member, c.diff_id
                    ),
                ));
            }
        }
        layers.push(LayerRef {
            index: i,
            digest: c.digest.clone(),
            diff_id: Some(diff_id.unwrap_or_else(|| c.diff_id.clone())),
            created_by: layer_steps.next().and_then(|h| h.created_by.clone()),
        });
    }
    for c in &contents {
        warnings.extend(c.warnings.iter().cloned());
    }

    let (entries, kept, removed) = squash::squash(contents);
    let tree = MemTree::from_parts(display.clone(), entries, kept, layers.clone());
    let mut removed_contents = HashMap::new();
    let mut removed_entries = Vec::with_capacity(removed.len());
    for (e, c) in removed {
        if let Some(c) = c {
            removed_contents.insert(e.path.clone(), c);
        }
        removed_entries.push(e);
    }
    let removed = MemTree::from_parts(
        display.clone(),
        removed_entries,
        removed_contents,
        layers.clone(),
    );

    let cfg = config.config.clone().unwrap_or_default();
    let meta = ImageMeta {
        summary: ImageSummary {
            repo_tags: plan.repo_tags.clone(),
            config_digest: Some(config_digest),
            manifest_digest: plan.manifest_digest.clone(),
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            layers,
            dockerfile: Vec::new(),
        },
        history,
        user: cfg.user.filter(|u| !u.is_empty()),
        exposed_ports: cfg
            .exposed_ports
            .map(|p| p.into_keys().collect())
            .unwrap_or_default(),
        env: cfg.env.unwrap_or_default(),
        entrypoint: cfg.entrypoint.unwrap_or_default(),
        cmd: cfg.cmd.unwrap_or_default(),
        labels: cfg
            .labels
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
    };
    Ok(Image {
        tree,
        meta,
        removed,
    })
}

/// `^/bin/sh -c #\(nop\) +(.*)`, as anchore-engine's `_infer_dockerfile` matches it (Python
/// `re.match`: anchored at the start, `.` not matching a newline).
fn nop_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^/bin/sh -c #\(nop\) +(.*)").expect("constant regex"))
}

/// The Dockerfile guessed from an image history, Anchore's way: `FROM scratch`, then for every
/// entry `#(nop)` commands as themselves and everything else as `RUN ...`.
///
/// BuildKit's `created_by` (`RUN /bin/sh -c pip install x # buildkit`) is kept as is, so the
/// line reads `RUN RUN /bin/sh -c ... # buildkit` exactly as Anchore guesses it, and Anchore
/// `like` rules written against those lines still match.
pub fn reconstruct_dockerfile(history: &[HistoryEntry]) -> Vec<String> {
    let mut out = vec!["FROM scratch".to_string()];
    for h in history {
        let Some(cmd) = h.created_by.as_deref().filter(|c| !c.trim().is_empty()) else {
            continue;
        };
        match nop_regex().captures(cmd).and_then(|c| c.get(1)) {
            Some(m) => out.push(m.as_str().to_string()),
            None => out.push(format!("RUN {cmd}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(cmd: &str, empty: bool) -> HistoryEntry {
        HistoryEntry {
            created_by: Some(cmd.into()),
            empty_layer: empty,
            ..Default::default()
        }
    }

    #[test]
    fn dockerfile_like_anchore() {
        let lines = reconstruct_dockerfile(&[
            h("/bin/sh -c #(nop) ADD file:abc in / ", false),
            h("/bin/sh -c #(nop)  CMD [\"bash\"]", true),
            h("/bin/sh -c pip install python3-dateutil", false),
            h("RUN /bin/sh -c pip install jeIlyfish # buildkit", false),
            h("", true),
            HistoryEntry::default(),
        ]);
        assert_eq!(
            lines,
            vec![
                "FROM scratch",
                "ADD file:abc in / ",
                "CMD [\"bash\"]",
                "RUN /bin/sh -c pip install python3-dateutil",
                "RUN RUN /bin/sh -c pip install jeIlyfish # buildkit",
            ]
        );
    }

    #[test]
    fn member_names_fit_images() {
        assert!(image_like_member("manifest.json"));
        assert!(image_like_member("blobs/sha256/abc"));
        assert!(image_like_member(&format!("{}/layer.tar", "a".repeat(64))));
        assert!(!image_like_member("six-1.0/PKG-INFO"));
    }
}
