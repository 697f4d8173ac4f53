use super::{build_report, exit_code, Checkers};
use crate::cli::{LayersArg, ScanArgs};
use crate::output;
use crate::progress::Progress;
use anyhow::Context;
use pyward_core::{LayerRef, Warning};
use pyward_inventory::{inventory, KeepExtra, Options};
use pyward_policy::{Baseline, Bundle, DockerfileInput};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Most bytes of file contents kept in memory for the policy's content checks while streaming an
/// image; past it, content checks are partial and say so.
const CONTENT_BUDGET: u64 = 256 * 1024 * 1024;
/// Largest `--dockerfile` read.
const MAX_DOCKERFILE: u64 = 4 * 1024 * 1024;

/// The policies of the scan: the `--policy` files, or the built-in default.
fn load_policies(args: &ScanArgs) -> anyhow::Result<Vec<Bundle>> {
    if args.policy.is_empty() {
        return Ok(vec![pyward_policy::default_policy()]);
    }
    let mut out = Vec::new();
    for p in &args.policy {
        let loaded = pyward_policy::load_file(p).map_err(|e| {
            anyhow::anyhow!(
                "{e}\n(run `pyward policy check {}` for details)",
                p.display()
            )
        })?;
        for w in &loaded.warnings {
            eprintln!("pyward: warning: {}:{}: {}", p.display(), w.pos, w.message);
        }
        out.push(loaded.bundle);
    }
    Ok(out)
}

pub fn run(args: ScanArgs) -> anyhow::Result<u8> {
    let progress = Progress::new(args.no_progress);
    let bundles = load_policies(&args)?;
    let baseline = match &args.baseline {
        Some(p) => Some(Baseline::load(p).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let actual_dockerfile = match &args.dockerfile {
        Some(p) => {
            let meta = std::fs::metadata(p)
                .with_context(|| format!("cannot read the Dockerfile {}", p.display()))?;
            if meta.len() > MAX_DOCKERFILE {
                anyhow::bail!(
                    "{}: the Dockerfile is {} bytes, over the {MAX_DOCKERFILE}-byte limit",
                    p.display(),
                    meta.len()
                );
            }
            let bytes = std::fs::read(p)
                .with_context(|| format!("cannot read the Dockerfile {}", p.display()))?;
            Some(DockerfileInput {
                path: p.display().to_string(),
                actual: true,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            })
        }
        None => None,
    };

    progress.stage("loading threat intelligence".to_string());
    let checkers = Checkers::load(&args.intel)?;

    progress.stage(format!("reading {}", args.target.display()));
    let needs = pyward_policy::content_needs(&bundles);
    let keep_extra = (!needs.is_empty()).then(|| {
        let budget = Arc::new(AtomicU64::new(CONTENT_BUDGET));
        KeepExtra(Arc::new(move |path: &str, size: u64| {
            needs.wants(path, size)
                && budget
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                        left.checked_sub(size)
                    })
                    .is_ok()
        }))
    });
    let options = Options {
        image_reference: args.image_ref.clone(),
        keep_extra,
        ..Default::default()
    };
    let mut inv = inventory(&args.target, &options)
        .with_context(|| format!("cannot scan {}", args.target.display()))?;

    progress.stage(format!("checking {} packages", inv.packages.len()));
    let layers = inv.tree.layers();
    let files: Vec<(&str, Option<LayerRef>)> = inv
        .tree
        .entries()
        .iter()
        .filter(|e| e.is_file())
        .map(|e| {
            (
                e.path.as_str(),
                e.layer.and_then(|i| layers.get(i).cloned()),
            )
        })
        .collect();
    let analyzer_findings = checkers.check(&inv.packages, &files);
    let files_scanned = inv.tree.entries().len() as u64;
    drop(files);

    progress.stage("evaluating the policy".to_string());
    let dockerfiles = match actual_dockerfile {
        Some(d) => vec![d],
        None => DockerfileInput::from_inventory(&inv),
    };
    let all_layers = args.layers == LayersArg::All;
    let removed_files: Vec<pyward_inventory::FileEntry> = match (&inv.removed, all_layers) {
        (Some(t), true) => pyward_inventory::FileTree::entries(t).to_vec(),
        _ => Vec::new(),
    };
    let empty = Vec::new();
    let image_refs = match &args.image_ref {
        Some(r) => vec![r.clone()],
        None => inv
            .image
            .as_ref()
            .map(|m| m.summary.repo_tags.clone())
            .unwrap_or_default(),
    };
    let input = pyward_policy::Input {
        image_refs,
        image_digest: inv
            .image
            .as_ref()
            .and_then(|m| m.summary.manifest_digest.clone()),
        image_id: inv
            .image
            .as_ref()
            .and_then(|m| m.summary.config_digest.clone()),
        packages: &inv.packages,
        tree: inv.tree.as_ref(),
        removed_files: &removed_files,
        removed_packages: if all_layers {
            &inv.removed_packages
        } else {
            &empty
        },
        dockerfiles,
        image: inv.image.as_ref(),
        findings: &analyzer_findings,
        baseline: baseline.as_ref(),
    };
    let evaluation = pyward_policy::evaluate(&bundles, &input, time::OffsetDateTime::now_utc());
    drop(input);
    inv.warnings.extend(evaluation.warnings);
    for o in &evaluation.bundles {
        if o.matched_denylisted_image.is_some() || o.matched_allowlisted_image.is_some() {
            inv.warnings.push(Warning::new(
                &o.source,
                match (&o.matched_denylisted_image, &o.matched_allowlisted_image) {
                    (Some(d), _) => format!("the image is denylisted ({d}): STOP"),
                    (None, Some(a)) => format!("the image is allowlisted ({a}): GO"),
                    _ => String::new(),
                },
            ));
        }
    }
    progress.finish();

    let image = inv.image.map(|m| m.summary);
    let final_action = evaluation.final_action;
    let mut report = build_report(
        inv.target,
        inv.packages,
        evaluation.findings,
        inv.warnings,
        image,
        files_scanned,
    );
    // The policy's decision, not only its findings: a denylisted image is STOP and an
    // allowlisted one GO whatever was found.
    report.final_action = final_action;
    output::emit(&report, &args.output)?;
    Ok(exit_code(&report))
}
