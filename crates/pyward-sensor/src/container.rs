//! Container id and runtime from a process's cgroup path (`/proc/<pid>/cgroup`), and the
//! container's name and image from its runtime's state files.
//!
//! Runtimes name a container's cgroup after its 64-hex-digit id: Docker (`/docker/<id>`,
//! `docker-<id>.scope`), containerd/CRI (`cri-containerd-<id>.scope`, `/kubepods/.../<id>`),
//! CRI-O (`crio-<id>.scope`) and Podman (`libpod-<id>.scope`). Falco reports the first 12
//! characters of the id as `container.id`.
//!
//! Name and image ([`MetadataCache`]) come from files the runtimes keep on disk, read only
//! where readable (root), never through a runtime's socket (no daemon is contacted):
//!
//! | runtime | file (under the host root) | fields |
//! |---|---|---|
//! | Docker | `/var/lib/docker/containers/<id>/config.v2.json` (the data root of `/etc/docker/daemon.json` `data-root` if set), `hostconfig.json` beside it | `Name`, `Config.Image`, `Image`, `Config.Labels`, `Privileged` |
//! | containerd (CRI, nerdctl) | `/run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/config.json` (the OCI bundle) | annotations `io.kubernetes.cri.container-name`, `io.kubernetes.cri.image-name`, `io.kubernetes.cri.sandbox-name`/`-namespace`, `nerdctl/name` |
//! | CRI-O | `/run/containers/storage/overlay-containers/<id>/userdata/config.json`, else the same under `/var/lib/containers/storage` | annotations `io.kubernetes.container.name`, `io.kubernetes.cri-o.ContainerName`, `io.kubernetes.cri-o.ImageName`, `io.kubernetes.cri-o.ImageRef`, `io.kubernetes.pod.name`/`namespace` |
//! | Podman (rootful) | `/var/lib/containers/storage/overlay-containers/containers.json` | `names`, `image`, `metadata` (`image-name`, `name`) |
//!
//! Rootless Podman (`~/.local/share/containers`) and containerd's bolt database are not
//! read. Every file is read with a size cap and parsed defensively: garbage, truncation or a
//! missing file gives "unknown", never an error. Results are cached per container id (a
//! bounded cache; a miss is retried after [`NEGATIVE_TTL`], since a runtime writes its state
//! around the container's first process).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyward_rules::event::replay::{ReplayContainer, ReplayK8s};

/// A container, as far as the cgroup path tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    /// Short id (12 hex digits), Falco's `container.id`.
    pub id: String,
    /// Full 64-hex-digit id.
    pub full_id: String,
    /// `docker`, `containerd`, `cri-o` or `podman` (Falco's `container.type` names).
    pub runtime: &'static str,
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Find the container of one cgroup path (`/system.slice/docker-<id>.scope`...).
pub fn from_cgroup_path(path: &str) -> Option<ContainerRef> {
    let mut in_kubepods = false;
    let mut found = None;
    for comp in path.split('/') {
        if comp.starts_with("kubepods") {
            in_kubepods = true;
        }
        let stem = comp.strip_suffix(".scope").unwrap_or(comp);
        let cand: Option<(&str, &'static str)> = if let Some(id) = stem.strip_prefix("docker-") {
            Some((id, "docker"))
        } else if let Some(id) = stem.strip_prefix("cri-containerd-") {
            Some((id, "containerd"))
        } else if let Some(id) = stem.strip_prefix("crio-") {
            Some((id, "cri-o"))
        } else if let Some(id) = stem.strip_prefix("libpod-") {
            Some((id, "podman"))
        } else if is_id(stem) {
            // Bare ids: cgroupfs driver layouts (`/docker/<id>`, `/kubepods/burstable/pod.../<id>`).
            Some((stem, if in_kubepods { "containerd" } else { "docker" }))
        } else {
            None
        };
        if let Some((id, rt)) = cand {
            if is_id(id) {
                found = Some(ContainerRef {
                    id: id.get(..12).unwrap_or(id).to_ascii_lowercase(),
                    full_id: id.to_ascii_lowercase(),
                    runtime: rt,
                });
            }
        }
    }
    found
}

/// Find the container in the text of `/proc/<pid>/cgroup` (any hierarchy line).
pub fn from_proc_cgroup(text: &str) -> Option<ContainerRef> {
    text.lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find_map(from_cgroup_path)
}

// ---------------------------------------------------------------------------------------------
// Name and image from the runtimes' state files
// ---------------------------------------------------------------------------------------------

/// Largest state file read (Docker's config.v2.json, an OCI config.json).
const MAX_STATE_FILE: u64 = 4 * 1024 * 1024;
/// Largest Podman containers.json read (one entry per container on the host).
const MAX_PODMAN_INDEX: u64 = 16 * 1024 * 1024;
/// Most containers whose metadata is cached.
pub const MAX_CACHED: usize = 1024;
/// Most labels kept per container, and longest label key or value.
const MAX_LABELS: usize = 128;
const MAX_LABEL_LEN: usize = 1024;
/// Longest name or image reference kept.
const MAX_NAME_LEN: usize = 1024;
/// Most containerd namespaces looked into.
const MAX_NAMESPACES: usize = 64;
/// How long a container with no readable metadata is not looked up again.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(2);

/// What a runtime's state files say about a container. Every field is optional: runtimes
/// record different things, and unreadable state leaves them all empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    /// `container.name` (Docker's name without the leading `/`; the Kubernetes container
    /// name under CRI).
    pub name: Option<String>,
    /// `container.image`, the reference the container was created from (`nginx:1.25`).
    pub image: Option<String>,
    /// `container.image.repository` (`nginx`, `registry:5000/team/app`).
    pub image_repository: Option<String>,
    /// `container.image.tag` (`1.25`; `latest` when the reference has neither tag nor digest).
    pub image_tag: Option<String>,
    /// `container.image.digest` (`sha256:...`), when the reference pins one.
    pub image_digest: Option<String>,
    /// `container.image.id`: the image id without its `sha256:` prefix.
    pub image_id: Option<String>,
    /// `container.privileged` (Docker's HostConfig.Privileged).
    pub privileged: Option<bool>,
    /// `container.label[...]` (Docker's Config.Labels).
    pub labels: BTreeMap<String, String>,
    /// `k8s.pod.name` and `k8s.ns.name` (CRI annotations).
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
}

impl ContainerMeta {
    fn is_empty(&self) -> bool {
        self == &ContainerMeta::default()
    }

    /// Set the image reference and the repository/tag/digest parsed from it.
    fn set_image(&mut self, reference: &str) {
        let reference = reference.trim();
        if reference.is_empty() || reference.len() > MAX_NAME_LEN {
            return;
        }
        let (repo, tag, digest) = split_image(reference);
        self.image = Some(reference.to_owned());
        self.image_repository = Some(repo.to_owned());
        self.image_tag = tag.map(str::to_owned);
        self.image_digest = digest.map(str::to_owned);
    }

    /// Fill the rules engine's container view (id and type stay as the cgroup gave them).
    pub fn fill(&self, r: &mut ReplayContainer) {
        r.name.clone_from(&self.name);
        r.image.clone_from(&self.image);
        r.image_repository.clone_from(&self.image_repository);
        r.image_tag.clone_from(&self.image_tag);
        r.image_digest.clone_from(&self.image_digest);
        r.image_id.clone_from(&self.image_id);
        r.privileged = self.privileged;
        r.labels.clone_from(&self.labels);
    }

    /// Fill the rules engine's `k8s.*` view.
    pub fn fill_k8s(&self, k: &mut ReplayK8s) {
        k.pod_name.clone_from(&self.pod_name);
        k.ns_name.clone_from(&self.pod_namespace);
    }
}

/// Split an image reference into repository, tag and digest, as Docker parses it:
/// `registry:5000/ns/app:1.2@sha256:ab` → (`registry:5000/ns/app`, `1.2`, `sha256:ab`). A
/// reference with neither tag nor digest means tag `latest`.
pub fn split_image(reference: &str) -> (&str, Option<&str>, Option<&str>) {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d).filter(|d| !d.is_empty())),
        None => (reference, None),
    };
    // A ':' after the last '/' starts the tag; one before it is a registry port.
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name.get(last_slash..).and_then(|t| t.rfind(':')) {
        Some(i) => {
            let at = last_slash + i;
            (
                name.get(..at).unwrap_or(name),
                name.get(at + 1..).filter(|t| !t.is_empty()),
            )
        }
        None => (name, None),
    };
    let tag = if tag.is_none() && digest.is_none() {
        Some("latest")
    } else {
        tag
    };
    (repo, tag, digest)
}

/// Read at most `cap` bytes of a file and parse it as JSON; `None` on any problem (missing,
/// unreadable, too big to be state, not JSON).
fn read_json(path: &Path, cap: u64) -> Option<serde_json::Value> {
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(cap.saturating_add(1)).read_to_end(&mut buf).ok()?;
    if buf.len() as u64 > cap {
        return None;
    }
    serde_json::from_slice(&buf).ok()
}

/// A bounded, non-empty string from a JSON value.
fn json_str(v: &serde_json::Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= MAX_NAME_LEN)
        .map(str::to_owned)
}

fn strip_sha(id: &str) -> String {
    id.strip_prefix("sha256:").unwrap_or(id).to_owned()
}

/// Where the runtimes keep their state, all under one host root (`/` on a real host, a
/// fake tree in tests, or a host filesystem mounted elsewhere, as in a sensor container).
#[derive(Clone, Debug)]
pub struct StateRoots {
    root: PathBuf,
}

impl StateRoots {
    /// The runtimes' default locations under `root`.
    pub fn new(root: impl Into<PathBuf>) -> StateRoots {
        StateRoots { root: root.into() }
    }

    fn under(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// Docker's data root: `data-root` of /etc/docker/daemon.json when it is an absolute
    /// path, else /var/lib/docker.
    fn docker_root(&self) -> PathBuf {
        read_json(&self.under("/etc/docker/daemon.json"), MAX_STATE_FILE)
            .and_then(|d| json_str(&d["data-root"]))
            .filter(|p| p.starts_with('/') && !p.split('/').any(|c| c == ".."))
            .map_or_else(|| self.under("/var/lib/docker"), |p| self.under(&p))
    }

    /// Look the container up in every runtime's state, its own runtime first.
    pub fn lookup(&self, c: &ContainerRef) -> Option<ContainerMeta> {
        // Only a validated id ever becomes a path component.
        if !is_id(&c.full_id) {
            return None;
        }
        type Source = fn(&StateRoots, &str) -> Option<ContainerMeta>;
        let docker: Source = StateRoots::docker;
        let containerd: Source = StateRoots::containerd;
        let crio: Source = StateRoots::crio;
        let podman: Source = StateRoots::podman;
        let order: [Source; 4] = match c.runtime {
            "containerd" => [containerd, crio, docker, podman],
            "cri-o" => [crio, containerd, podman, docker],
            "podman" => [podman, crio, docker, containerd],
            _ => [docker, containerd, crio, podman],
        };
        order
            .iter()
            .find_map(|f| f(self, &c.full_id).filter(|m| !m.is_empty()))
    }

    fn docker(&self, id: &str) -> Option<ContainerMeta> {
        let dir = self.docker_root().join("containers").join(id);
        let cfg = read_json(&dir.join("config.v2.json"), MAX_STATE_FILE)?;
        let mut m = ContainerMeta {
            name: json_str(&cfg["Name"]).map(|n| n.trim_start_matches('/').to_owned()),
            image_id: json_str(&cfg["Image"]).map(|i| strip_sha(&i)),
            ..ContainerMeta::default()
        };
        if let Some(img) = json_str(&cfg["Config"]["Image"]) {
            m.set_image(&img);
        }
        if let Some(labels) = cfg["Config"]["Labels"].as_object() {
            for (k, v) in labels.iter().take(MAX_LABELS) {
                if let Some(v) = v.as_str() {
                    if k.len() <= MAX_LABEL_LEN && v.len() <= MAX_LABEL_LEN {
                        m.labels.insert(k.clone(), v.to_owned());
                    }
                }
            }
        }
        m.privileged = read_json(&dir.join("hostconfig.json"), MAX_STATE_FILE)
            .and_then(|h| h["Privileged"].as_bool());
        Some(m)
    }

    /// The CRI annotations of an OCI runtime config.json (containerd and CRI-O bundles).
    fn from_oci_config(path: &Path) -> Option<ContainerMeta> {
        let cfg = read_json(path, MAX_STATE_FILE)?;
        let ann = cfg["annotations"].as_object()?;
        let get = |keys: &[&str]| keys.iter().find_map(|k| ann.get(*k).and_then(json_str));
        let mut m = ContainerMeta {
            name: get(&[
                "io.kubernetes.cri.container-name",
                "io.kubernetes.container.name",
                "io.kubernetes.cri-o.ContainerName",
                "nerdctl/name",
            ]),
            pod_name: get(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]),
            pod_namespace: get(&[
                "io.kubernetes.cri.sandbox-namespace",
                "io.kubernetes.pod.namespace",
            ]),
            image_id: get(&["io.kubernetes.cri-o.ImageRef"]).map(|i| strip_sha(&i)),
            ..ContainerMeta::default()
        };
        if let Some(img) = get(&[
            "io.kubernetes.cri.image-name",
            "io.kubernetes.cri-o.ImageName",
        ]) {
            m.set_image(&img);
        }
        Some(m)
    }

    fn containerd(&self, id: &str) -> Option<ContainerMeta> {
        let tasks = self.under("/run/containerd/io.containerd.runtime.v2.task");
        // CRI's namespace first, then whatever else exists (moby, default, ...).
        let mut namespaces = vec![std::ffi::OsString::from("k8s.io")];
        if let Ok(dir) = std::fs::read_dir(&tasks) {
            for ent in dir.flatten().take(MAX_NAMESPACES) {
                let n = ent.file_name();
                if n != "k8s.io" && !n.as_encoded_bytes().starts_with(b".") {
                    namespaces.push(n);
                }
            }
        }
        namespaces.iter().find_map(|ns| {
            StateRoots::from_oci_config(&tasks.join(ns).join(id).join("config.json"))
        })
    }

    fn crio(&self, id: &str) -> Option<ContainerMeta> {
        ["/run/containers/storage", "/var/lib/containers/storage"]
            .iter()
            .find_map(|base| {
                let p = self
                    .under(base)
                    .join("overlay-containers")
                    .join(id)
                    .join("userdata/config.json");
                StateRoots::from_oci_config(&p)
            })
    }

    fn podman(&self, id: &str) -> Option<ContainerMeta> {
        let index = read_json(
            &self.under("/var/lib/containers/storage/overlay-containers/containers.json"),
            MAX_PODMAN_INDEX,
        )?;
        let entry = index.as_array()?.iter().find(|e| e["id"] == id)?;
        // `metadata` is itself JSON, in a string.
        let meta: serde_json::Value = entry["metadata"]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let mut m = ContainerMeta {
            name: json_str(&meta["name"]).or_else(|| json_str(&entry["names"][0])),
            image_id: json_str(&entry["image"])
                .or_else(|| json_str(&meta["image-id"]))
                .map(|i| strip_sha(&i)),
            ..ContainerMeta::default()
        };
        if let Some(img) = json_str(&meta["image-name"]) {
            m.set_image(&img);
        }
        Some(m)
    }
}

impl Default for StateRoots {
    fn default() -> Self {
        StateRoots::new("/")
    }
}

#[derive(Debug)]
struct Cached {
    meta: Option<Arc<ContainerMeta>>,
    at: Instant,
}

#[derive(Debug, Default)]
struct CacheInner {
    map: HashMap<String, Cached>,
    /// Insertion order, for evicting the oldest entry when full.
    order: VecDeque<String>,
}

/// Container metadata per full container id, read once from the runtimes' state files and
/// cached (bounded by [`MAX_CACHED`]; the oldest entry goes first). Safe to share between
/// threads.
#[derive(Debug, Default)]
pub struct MetadataCache {
    roots: StateRoots,
    inner: Mutex<CacheInner>,
}

impl MetadataCache {
    /// A cache reading the runtimes' state under `root` (`/` for the host).
    pub fn with_root(root: impl Into<PathBuf>) -> MetadataCache {
        MetadataCache {
            roots: StateRoots::new(root),
            inner: Mutex::default(),
        }
    }

    /// The metadata of a container, `None` when no runtime state about it is readable.
    pub fn get(&self, c: &ContainerRef) -> Option<Arc<ContainerMeta>> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = inner.map.get(&c.full_id) {
            if e.meta.is_some() || e.at.elapsed() < NEGATIVE_TTL {
                return e.meta.clone();
            }
        }
        // Read without holding the lock: file reads can be slow.
        drop(inner);
        let meta = self.roots.lookup(c).map(Arc::new);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = Cached {
            meta: meta.clone(),
            at: Instant::now(),
        };
        if inner.map.insert(c.full_id.clone(), fresh).is_none() {
            inner.order.push_back(c.full_id.clone());
            while inner.map.len() > MAX_CACHED {
                match inner.order.pop_front() {
                    Some(old) => {
                        inner.map.remove(&old);
                    }
                    None => break,
                }
            }
        }
        meta
    }

    /// Number of containers cached (found or not).
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.map.len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9f1c2e3d4b5a69788a9b0c1d2e3f405162738495a6b7c8d9e0f1a2b3c4d5e6f7";

    #[test]
    fn recognises_each_runtime() {
        let cases = [
            (format!("/docker/{ID}"), "docker"),
            (format!("/system.slice/docker-{ID}.scope"), "docker"),
            (format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope"), "containerd"),
            (format!("/kubepods/burstable/pod0f3c/{ID}"), "containerd"),
            (format!("/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope"), "cri-o"),
            (format!("/machine.slice/libpod-{ID}.scope/container"), "podman"),
        ];
        for (path, rt) in cases {
            let c = from_cgroup_path(&path).unwrap_or_else(|| panic!("no container in {path}"));
            assert_eq!(c.runtime, rt, "{path}");
            assert_eq!(c.id, &ID[..12]);
            assert_eq!(c.full_id, ID);
        }
    }

    #[test]
    fn host_and_malformed_paths_are_not_containers() {
        for p in [
            "/",
            "/user.slice/user-1000.slice/session-2.scope",
            "/system.slice/docker.service",
            "/docker/notanid",
            "/system.slice/docker-abc.scope",
            "",
        ] {
            assert_eq!(from_cgroup_path(p), None, "{p}");
        }
        assert_eq!(from_proc_cgroup("garbage\n\n:::\n"), None);
        let text = format!("12:pids:/docker/{ID}\n0::/\n");
        assert_eq!(from_proc_cgroup(&text).map(|c| c.runtime), Some("docker"));
    }

    fn cref(id: &str, runtime: &'static str) -> ContainerRef {
        ContainerRef {
            id: id[..12].to_owned(),
            full_id: id.to_owned(),
            runtime,
        }
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn splits_image_references_like_docker() {
        assert_eq!(split_image("nginx:1.25"), ("nginx", Some("1.25"), None));
        assert_eq!(split_image("nginx"), ("nginx", Some("latest"), None));
        assert_eq!(
            split_image("registry:5000/team/app"),
            ("registry:5000/team/app", Some("latest"), None)
        );
        assert_eq!(
            split_image("registry:5000/team/app:v2@sha256:abc"),
            ("registry:5000/team/app", Some("v2"), Some("sha256:abc"))
        );
        assert_eq!(
            split_image("docker.io/library/alpine@sha256:abc"),
            ("docker.io/library/alpine", None, Some("sha256:abc"))
        );
        assert_eq!(split_image("odd:"), ("odd", Some("latest"), None));
    }

    #[test]
    fn reads_docker_state() {
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            &format!("var/lib/docker/containers/{ID}/config.v2.json"),
            r#"{"ID":"x","Name":"/web","Image":"sha256:4f2a","Config":{"Image":"nginx:1.25","Labels":{"com.example.team":"blue","n":3}},"State":{"Running":true}}"#,
        );
        write(
            t.path(),
            &format!("var/lib/docker/containers/{ID}/hostconfig.json"),
            r#"{"Privileged":true}"#,
        );
        let cache = MetadataCache::with_root(t.path());
        let m = cache.get(&cref(ID, "docker")).expect("docker metadata");
        assert_eq!(m.name.as_deref(), Some("web"));
        assert_eq!(m.image.as_deref(), Some("nginx:1.25"));
        assert_eq!(m.image_repository.as_deref(), Some("nginx"));
        assert_eq!(m.image_tag.as_deref(), Some("1.25"));
        assert_eq!(m.image_id.as_deref(), Some("4f2a"));
        assert_eq!(m.privileged, Some(true));
        // Non-string label values are skipped, not fatal.
        assert_eq!(m.labels.len(), 1);
        assert_eq!(m.labels["com.example.team"], "blue");

        let mut r = ReplayContainer::default();
        m.fill(&mut r);
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.image_repository.as_deref(), Some("nginx"));
    }

    #[test]
    fn honours_dockers_data_root() {
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            "etc/docker/daemon.json",
            r#"{"data-root": "/srv/docker"}"#,
        );
        write(
            t.path(),
            &format!("srv/docker/containers/{ID}/config.v2.json"),
            r#"{"Name":"/db","Config":{"Image":"postgres:16"}}"#,
        );
        let m = MetadataCache::with_root(t.path())
            .get(&cref(ID, "docker"))
            .unwrap();
        assert_eq!(m.name.as_deref(), Some("db"));
        // A data-root escaping the root is ignored.
        write(
            t.path(),
            "etc/docker/daemon.json",
            r#"{"data-root": "/../../etc"}"#,
        );
        assert_eq!(
            StateRoots::new(t.path()).docker_root(),
            t.path().join("var/lib/docker")
        );
    }

    #[test]
    fn reads_containerd_crio_and_podman_state() {
        let t = tempfile::tempdir().unwrap();
        let id2 = "1".repeat(64);
        let id3 = "2".repeat(64);
        write(
            t.path(),
            &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
            r#"{"ociVersion":"1.1.0","annotations":{
                "io.kubernetes.cri.container-type":"container",
                "io.kubernetes.cri.container-name":"api",
                "io.kubernetes.cri.image-name":"ghcr.io/acme/api:3.1",
                "io.kubernetes.cri.sandbox-name":"api-7d9f",
                "io.kubernetes.cri.sandbox-namespace":"prod"}}"#,
        );
        write(
            t.path(),
            &format!("run/containers/storage/overlay-containers/{id2}/userdata/config.json"),
            r#"{"annotations":{
                "io.kubernetes.container.name":"worker",
                "io.kubernetes.cri-o.ImageName":"quay.io/acme/worker@sha256:feed",
                "io.kubernetes.cri-o.ImageRef":"sha256:beef",
                "io.kubernetes.pod.name":"worker-0",
                "io.kubernetes.pod.namespace":"jobs"}}"#,
        );
        write(
            t.path(),
            "var/lib/containers/storage/overlay-containers/containers.json",
            &format!(
                r#"[{{"id":"{}","names":["other"]}},
                   {{"id":"{id3}","names":["jupyter"],"image":"cafe",
                     "metadata":"{{\"image-name\":\"docker.io/jupyter/base-notebook:latest\",\"name\":\"jupyter\"}}"}}]"#,
                "3".repeat(64)
            ),
        );
        let cache = MetadataCache::with_root(t.path());
        let m = cache.get(&cref(ID, "containerd")).unwrap();
        assert_eq!(m.name.as_deref(), Some("api"));
        assert_eq!(m.image_repository.as_deref(), Some("ghcr.io/acme/api"));
        assert_eq!(m.image_tag.as_deref(), Some("3.1"));
        let mut k = ReplayK8s::default();
        m.fill_k8s(&mut k);
        assert_eq!(k.pod_name.as_deref(), Some("api-7d9f"));
        assert_eq!(k.ns_name.as_deref(), Some("prod"));

        let m = cache.get(&cref(&id2, "cri-o")).unwrap();
        assert_eq!(m.name.as_deref(), Some("worker"));
        assert_eq!(m.image_digest.as_deref(), Some("sha256:feed"));
        assert_eq!(m.image_tag, None);
        assert_eq!(m.image_id.as_deref(), Some("beef"));
        assert_eq!(m.pod_namespace.as_deref(), Some("jobs"));

        let m = cache.get(&cref(&id3, "podman")).unwrap();
        assert_eq!(m.name.as_deref(), Some("jupyter"));
        assert_eq!(
            m.image_repository.as_deref(),
            Some("docker.io/jupyter/base-notebook")
        );
        assert_eq!(m.image_id.as_deref(), Some("cafe"));
        // A runtime guessed wrong from a bare cgroup id still finds the state.
        assert!(cache.get(&cref(ID, "docker")).is_some());
    }

    #[test]
    fn garbage_state_is_unknown_not_an_error() {
        let t = tempfile::tempdir().unwrap();
        let dir = format!("var/lib/docker/containers/{ID}");
        let ids = [
            "4".repeat(64),
            "5".repeat(64),
            "6".repeat(64),
            "7".repeat(64),
        ];
        write(
            t.path(),
            &format!("{dir}/config.v2.json"),
            "{\"Name\": \"/trunc",
        );
        write(
            t.path(),
            &format!("var/lib/docker/containers/{}/config.v2.json", ids[0]),
            r#"{"Name": 7, "Config": "not an object", "Image": ["x"]}"#,
        );
        write(
            t.path(),
            &format!("var/lib/docker/containers/{}/config.v2.json", ids[1]),
            "\u{0}\u{1}binary",
        );
        write(
            t.path(),
            "var/lib/containers/storage/overlay-containers/containers.json",
            r#"{"not": "an array"}"#,
        );
        write(
            t.path(),
            &format!(
                "run/containers/storage/overlay-containers/{}/userdata/config.json",
                ids[2]
            ),
            r#"{"annotations": ["wrong"]}"#,
        );
        // Too big to be state: not read.
        let big = format!(
            "{{\"Name\":\"/big\",\"x\":\"{}\"}}",
            "a".repeat(MAX_STATE_FILE as usize)
        );
        write(
            t.path(),
            &format!("var/lib/docker/containers/{}/config.v2.json", ids[3]),
            &big,
        );
        let cache = MetadataCache::with_root(t.path());
        assert_eq!(cache.get(&cref(ID, "docker")), None);
        for id in &ids {
            assert_eq!(cache.get(&cref(id, "docker")), None, "{id}");
        }
        // An id that is not 64 hex digits never becomes a path.
        let evil = ContainerRef {
            id: "../../etc".into(),
            full_id: "../../../../etc/docker".into(),
            runtime: "docker",
        };
        assert_eq!(cache.get(&evil), None);
        // A missing root is no error either.
        assert_eq!(
            MetadataCache::with_root("/nonexistent/pyward").get(&cref(ID, "podman")),
            None
        );
    }

    #[test]
    fn cache_is_bounded_and_retries_misses() {
        let t = tempfile::tempdir().unwrap();
        let cache = MetadataCache::with_root(t.path());
        for i in 0..MAX_CACHED + 10 {
            let id = format!("{i:064x}");
            assert_eq!(cache.get(&cref(&id, "docker")), None);
        }
        assert_eq!(cache.len(), MAX_CACHED);
        // A container whose state appears after its first lookup is found once the miss
        // has expired, and then served from the cache even after the file is gone.
        let rel = format!("var/lib/docker/containers/{ID}/config.v2.json");
        assert_eq!(cache.get(&cref(ID, "docker")), None);
        write(t.path(), &rel, r#"{"Name":"/late"}"#);
        assert_eq!(cache.get(&cref(ID, "docker")), None, "the miss is cached");
        std::thread::sleep(NEGATIVE_TTL + Duration::from_millis(50));
        let m = cache
            .get(&cref(ID, "docker"))
            .expect("found after the miss expired");
        assert_eq!(m.name.as_deref(), Some("late"));
        std::fs::remove_file(t.path().join(&rel)).unwrap();
        assert!(cache.get(&cref(ID, "docker")).is_some());
    }
}
