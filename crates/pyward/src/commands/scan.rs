use super::{build_report, exit_code, Checkers};
use crate::cli::ScanArgs;
use crate::output;
use crate::progress::Progress;
use anyhow::Context;
use pyward_core::LayerRef;
use pyward_inventory::{inventory, Options};

pub fn run(args: ScanArgs) -> anyhow::Result<u8> {
    let progress = Progress::new(args.no_progress);
    progress.stage(format!("loading threat intelligence"));
    let checkers = Checkers::load(&args.intel)?;

    progress.stage(format!("reading {}", args.target.display()));
    let options = Options { image_reference: args.image_ref.clone(), ..Default::default() };
    let inv = inventory(&args.target, &options)
        .with_context(|| format!("cannot scan {}", args.target.display()))?;

    progress.stage(format!("checking {} packages", inv.packages.len()));
    let layers = inv.tree.layers();
    let files: Vec<(&str, Option<LayerRef>)> = inv
        .tree
        .entries()
        .iter()
        .filter(|e| e.is_file())
        .map(|e| (e.path.as_str(), e.layer.and_then(|i| layers.get(i).cloned())))
        .collect();
    let findings = checkers.check(&inv.packages, &files);
    let files_scanned = inv.tree.entries().len() as u64;
    drop(files);
    progress.finish();

    let image = inv.image.map(|m| m.summary);
    let report = build_report(inv.target, inv.packages, findings, inv.warnings, image, files_scanned);
    output::emit(&report, &args.output)?;
    Ok(exit_code(&report))
}
