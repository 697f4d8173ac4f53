//! Container id and runtime from a process's cgroup path (`/proc/<pid>/cgroup`).
//!
//! Runtimes name a container's cgroup after its 64-hex-digit id: Docker (`/docker/<id>`,
//! `docker-<id>.scope`), containerd/CRI (`cri-containerd-<id>.scope`, `/kubepods/.../<id>`),
//! CRI-O (`crio-<id>.scope`) and Podman (`libpod-<id>.scope`). Falco reports the first 12
//! characters of the id as `container.id`.

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
}
