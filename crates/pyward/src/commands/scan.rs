use super::{build_report, exit_code, Checkers};
use crate::cli::{LayersArg, ScanArgs};
use crate::output;
use crate::progress::Progress;
use anyhow::Context;
use pyward_core::{LayerRef, Warning};
use pyward_inventory::{inventory, KeepExtra, Options};
use pyward_policy::{Baseline, Bundle, DockerfileInput};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Most bytes of file contents kept in memory for the policy's content checks while streaming an
/// image; past it, content checks are partial and say so.
const CONTENT_BUDGET: u64 = 256 * 1024 * 1024;
/// Most bytes of Python sources kept in memory for the static analysis while streaming an image.
const ANALYZE_BUDGET: u64 = 128 * 1024 * 1024;
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
    let analyze = !args.no_analyze;
    let mut analyze_opts = pyward_analyze::Options::default();
    if !args.yara.is_empty() {
        let rules = pyward_analyze::yara::YaraRules::load(&args.yara)
            .map_err(|e| anyhow::anyhow!("invalid --yara rules: {e}"))?;
        analyze_opts.yara = pyward_analyze::yara::YaraSet::Rules(Arc::new(rules));
    }
    // Python sources whose content could hold a threat, set aside while streaming an image.
    let analysis_budget_hit = Arc::new(AtomicBool::new(false));
    let keep_extra = (!needs.is_empty() || analyze).then(|| {
        let budget = Arc::new(AtomicU64::new(CONTENT_BUDGET));
        // Python sources for the static analysis, on their own budget.
        let py_budget = Arc::new(AtomicU64::new(ANALYZE_BUDGET));
        let budget_hit = analysis_budget_hit.clone();
        let take = |b: &AtomicU64, size: u64| {
            b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(size)
            })
            .is_ok()
        };
        let (wants_needs, wants_opts) = (needs.clone(), analyze_opts.clone());
        let retain_opts = analyze_opts.clone();
        KeepExtra::new(move |path: &str, size: u64| {
            wants_needs.wants(path, size)
                || (analyze && pyward_analyze::wants_content(path, size, &wants_opts))
        })
        .with_retain(move |path: &str, content: &[u8]| {
            let size = content.len() as u64;
            if needs.wants(path, size) && take(&budget, size) {
                return true;
            }
            // Only sources the analyzer's cheap pass cannot clear are worth memory.
            if analyze
                && pyward_analyze::wants_content(path, size, &retain_opts)
                && pyward_analyze::worth_keeping(path, content, &retain_opts)
            {
                if take(&py_budget, size) {
                    return true;
                }
                budget_hit.store(true, Ordering::Relaxed);
            }
            false
        })
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
    let mut analyzer_findings = checkers.check(&inv.packages, &files);
    let files_scanned = inv.tree.entries().len() as u64;
    drop(files);
    if analyze {
        progress.stage(format!(
            "analysing the code of {} packages",
            inv.packages.len()
        ));
        let (found, notes) =
            pyward_analyze::analyze_packages(inv.tree.as_ref(), &inv.packages, &analyze_opts);
        analyzer_findings.extend(found);
        for n in pyward_analyze::notes_for_report(&notes, 20) {
            inv.warnings.push(Warning::new(&n.path, n.message));
        }
        if analysis_budget_hit.load(Ordering::Relaxed) {
            inv.warnings.push(Warning::new(
                inv.target.name.clone(),
                format!(
                    "static analysis covered only the first {} MiB of suspicious-looking Python \
                     sources in this image or in the package archives of this folder; the rest was \
                     not analysed",
                    ANALYZE_BUDGET >> 20
                ),
            ));
        }
    }

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
