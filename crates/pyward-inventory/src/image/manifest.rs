//! The JSON documents of an image: docker-archive `manifest.json`, OCI `index.json` and image
//! manifests, and the image config. Shapes are checked by serde; a wrong shape is an error naming
//! the member, never a panic.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One entry of a docker-archive `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DockerManifestEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// An OCI content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Descriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Platform {
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
}

/// An OCI image index (`index.json`, or a nested multi-platform index).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct OciIndex {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// An OCI (or Docker v2 schema 2) image manifest.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct OciManifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The image config.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct ImageConfig {
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    #[serde(default)]
    pub rootfs: Option<RootFs>,
    #[serde(default)]
    pub history: Option<Vec<History>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ContainerConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct History {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub empty_layer: Option<bool>,
}

/// Whether `s` is a `sha256:<64 hex>` digest.
pub(super) fn is_sha256(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The blob member of a digest in an OCI layout, refusing anything that is not a well-formed
/// sha256 digest (a digest is used as a path: it must not be able to name another file).
pub(super) fn blob_member(digest: &str) -> Result<String, String> {
    if is_sha256(digest) {
        Ok(format!("blobs/sha256/{}", &digest[7..]))
    } else if let Some((alg, _)) = digest.split_once(':') {
        Err(format!(
            "unsupported or malformed digest {digest:?} (algorithm {alg:?}); only sha256 is read"
        ))
    } else {
        Err(format!("malformed digest {digest:?}"))
    }
}

/// The digest implied by a docker-archive member name: `blobs/sha256/<hex>` (Docker 25+) or
/// `<hex>.json` (legacy config).
pub(super) fn digest_from_member(member: &str) -> Option<String> {
    let hex = member
        .strip_prefix("blobs/sha256/")
        .or_else(|| member.strip_suffix(".json").filter(|h| !h.contains('/')))?;
    let d = format!("sha256:{hex}");
    is_sha256(&d).then_some(d)
}

/// Strip the registry and `library/` parts Docker adds, so `docker.io/library/python:3` and
/// `python:3` compare equal; a missing tag means `latest`.
pub(super) fn normalize_ref(r: &str) -> String {
    let r = r.strip_prefix("docker.io/").unwrap_or(r);
    let r = r.strip_prefix("index.docker.io/").unwrap_or(r);
    let r = r.strip_prefix("library/").unwrap_or(r);
    let last = r.rsplit('/').next().unwrap_or(r);
    if last.contains(':') || last.contains('@') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

/// Whether a reference given by the user names a digest (full, or a hex prefix of 12+).
pub(super) fn digest_matches(reference: &str, digest: &str) -> bool {
    let want = reference.strip_prefix("sha256:").unwrap_or(reference);
    let have = digest.strip_prefix("sha256:").unwrap_or(digest);
    want.len() >= 12 && want.bytes().all(|b| b.is_ascii_hexdigit()) && have.starts_with(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_refs() {
        let hex = "a".repeat(64);
        assert!(blob_member(&format!("sha256:{hex}")).is_ok());
        assert!(blob_member("sha256:../../etc/passwd").is_err());
        assert!(blob_member("sha512:abc").is_err());
        assert_eq!(
            digest_from_member(&format!("{hex}.json")),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(digest_from_member("abc/layer.tar"), None);
        assert_eq!(normalize_ref("docker.io/library/python"), "python:latest");
        assert_eq!(normalize_ref("python:3"), "python:3");
        assert!(digest_matches("aaaaaaaaaaaa", &format!("sha256:{hex}")));
        assert!(!digest_matches("aaaa", &format!("sha256:{hex}")));
    }
}
