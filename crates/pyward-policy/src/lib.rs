//! Scan policies: pyward's YAML format and Anchore/Sysdig policy bundles (v1 and v2 names),
//! their gates and triggers, allowlists, mappings, allow/deny-listed images, and the
//! STOP/WARN/GO decision (STOP < WARN < GO; the final action is the lowest non-allowlisted match).
//!
//! Pipeline: [`load_file`] / [`default_policy`] → [`Bundle`]; the CLI gathers an [`Input`] from
//! the inventory and the analyzers' findings; [`evaluate`] → [`Evaluation`], whose findings
//! carry policy id, rule id, gate, trigger, action, Anchore trigger id and `allowlisted_by`.
//! [`content_needs`] says which file contents the policies read, so image scans keep only those.

pub mod baseline;
pub mod eval;
pub mod load;
pub mod node;
pub mod pyre;
pub mod rules;
pub mod secrets;

pub use baseline::Baseline;
pub use eval::{
    evaluate, parse_image_ref, trigger_id, BundleOutcome, DockerfileInput, Evaluation, Input,
};
pub use load::{
    default_policy, load_file, load_str, Bundle, BundleFormat, Loaded, PolicyError, Problem,
    DEFAULT_POLICY_YAML,
};
pub use pyre::MatchMode;

use rules::Check;

/// Which file contents the policies need, so a streaming image reader keeps only those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentNeeds {
    /// Keep every regular file up to this size (content and secret regexes); 0 = none.
    pub any_file_up_to: u64,
    /// Keep installed packages' files (`packages`/`verify`).
    pub package_files: bool,
    /// Keep these exact paths (`files`/`attribute_match` with a checksum).
    pub paths: Vec<String>,
}

impl ContentNeeds {
    /// Whether the content of `path` (of `size` bytes) must be kept.
    pub fn wants(&self, path: &str, size: u64) -> bool {
        size <= self.any_file_up_to
            || (self.package_files
                && size <= pyward_inventory::tree::DEFAULT_READ_LIMIT
                && is_site_packages(path))
            || self.paths.iter().any(|p| p == path)
            || path == "/etc/os-release"
            || path == "/usr/lib/os-release"
    }

    pub fn is_empty(&self) -> bool {
        self.any_file_up_to == 0 && !self.package_files && self.paths.is_empty()
    }
}

fn is_site_packages(path: &str) -> bool {
    path.contains("/site-packages/") || path.contains("/dist-packages/")
}

/// What `bundles` need to read beyond names, sizes and modes.
pub fn content_needs(bundles: &[Bundle]) -> ContentNeeds {
    let mut n = ContentNeeds::default();
    for b in bundles {
        for (_, r) in b.rules() {
            match &r.check {
                Check::FileContent { .. } | Check::Secret { .. } => {
                    n.any_file_up_to = secrets::MAX_SCAN_FILE
                }
                Check::PackageVerify { .. } => n.package_files = true,
                Check::FileAttribute {
                    filename,
                    checksum: Some(_),
                    ..
                } => n.paths.push(filename.clone()),
                _ => {}
            }
        }
    }
    n
}
