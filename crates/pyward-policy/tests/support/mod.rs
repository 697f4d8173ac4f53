//! Shared helpers: scan a real image or folder (inventory → intel → policy) in-process.
#![allow(dead_code)]

use pyward_core::{Action, Finding};
use pyward_inventory::{inventory, FileEntry, FileTree, KeepExtra, Options};
use pyward_policy::{Baseline, Bundle, DockerfileInput, Evaluation};
use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn shipped(name: &str) -> Bundle {
    pyward_policy::load_file(&repo_root().join("policies").join(name))
        .unwrap_or_else(|e| panic!("{e}"))
        .bundle
}

pub fn policy(yaml: &str) -> Bundle {
    pyward_policy::load_str(yaml, "test.yaml", false)
        .unwrap_or_else(|e| panic!("{e}"))
        .bundle
}

#[derive(Default)]
pub struct Scan<'a> {
    pub dockerfile: Option<&'a str>,
    pub all_layers: bool,
    pub baseline: Option<Baseline>,
    pub extra_findings: Vec<Finding>,
    pub image_ref: Option<String>,
}

/// Scan `target` with `bundles` the way `pyward scan` does.
pub fn scan(target: &Path, bundles: &[Bundle], opts: Scan) -> Evaluation {
    let needs = pyward_policy::content_needs(bundles);
    let options = Options {
        keep_extra: Some(KeepExtra::new(move |p: &str, s: u64| needs.wants(p, s))),
        ..Default::default()
    };
    let inv = inventory(target, &options).expect("inventory");
    let intel = pyward_intel::Intel::builtin();
    let names = pyward_intel::NameChecker::builtin(false);
    let files: Vec<(&str, Option<pyward_core::LayerRef>)> = inv
        .tree
        .entries()
        .iter()
        .filter(|e| e.is_file())
        .map(|e| {
            (
                e.path.as_str(),
                e.layer.and_then(|i| inv.tree.layers().get(i).cloned()),
            )
        })
        .collect();
    let mut findings = pyward_intel::analyze(&intel, &names, &inv.packages, &files);
    findings.extend(opts.extra_findings);
    let dockerfiles = match opts.dockerfile {
        Some(text) => vec![DockerfileInput {
            path: "Dockerfile".into(),
            actual: true,
            text: text.into(),
        }],
        None => DockerfileInput::from_inventory(&inv),
    };
    let removed: Vec<FileEntry> = match (&inv.removed, opts.all_layers) {
        (Some(t), true) => t.entries().to_vec(),
        _ => Vec::new(),
    };
    let no_pkgs = Vec::new();
    let input = pyward_policy::Input {
        image_refs: opts.image_ref.map(|r| vec![r]).unwrap_or_else(|| {
            inv.image
                .as_ref()
                .map(|m| m.summary.repo_tags.clone())
                .unwrap_or_default()
        }),
        image_digest: None,
        image_id: None,
        packages: &inv.packages,
        tree: inv.tree.as_ref(),
        removed_files: &removed,
        removed_packages: if opts.all_layers {
            &inv.removed_packages
        } else {
            &no_pkgs
        },
        dockerfiles,
        image: inv.image.as_ref(),
        findings: &findings,
        baseline: opts.baseline.as_ref(),
    };
    pyward_policy::evaluate(bundles, &input, time::OffsetDateTime::now_utc())
}

/// `(gate, trigger)` of every finding that counts (not allowlisted, not GO).
pub fn fired(e: &Evaluation) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = e
        .findings
        .iter()
        .filter(|f| f.effective_action() != Action::Go)
        .map(|f| (f.gate.clone(), f.trigger.clone()))
        .collect();
    v.sort();
    v
}

pub fn with_gate<'a>(e: &'a Evaluation, gate: &str) -> Vec<&'a Finding> {
    e.findings
        .iter()
        .filter(|f| f.gate == gate && f.policy.is_some())
        .collect()
}
