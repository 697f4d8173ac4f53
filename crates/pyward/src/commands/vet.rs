use super::{build_report, exit_code, Checkers};
use crate::cli::VetArgs;
use crate::output;
use anyhow::Context;
use pyward_core::{DeclaredKind, Location, Package, PackageSource, Target, TargetKind, Warning};
use pyward_inventory::dir::DirTree;
use std::str::FromStr;

pub fn run(args: VetArgs) -> anyhow::Result<u8> {
    let checkers = Checkers::load(&args.intel)?;
    let mut packages = Vec::new();
    let mut warnings = Vec::new();
    for (i, spec) in args.specs.iter().enumerate() {
        packages.push(package_from_spec(spec).with_context(|| {
            format!(
                "argument {}: `{spec}` is not a valid requirement (PEP 508)",
                i + 1
            )
        })?);
    }
    for file in &args.requirements {
        let tree = DirTree::single_file(file, &mut warnings)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let tree_path = format!(
            "/{}",
            file.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        // Whatever its name, a file given with -r is read as a requirements file, as pip does.
        let found = pyward_inventory::declared::catalog_as(
            &tree,
            &tree_path,
            DeclaredKind::Requirements,
            &mut warnings,
        );
        if found.is_empty() {
            warnings.push(Warning::new(
                file.display().to_string(),
                "no requirements found",
            ));
        }
        packages.extend(found);
    }
    let findings = checkers.check(&packages, &[]);
    let mut names: Vec<String> = args.specs.clone();
    names.extend(
        args.requirements
            .iter()
            .map(|p| format!("-r {}", p.display())),
    );
    let target = Target {
        kind: TargetKind::Specs,
        name: names.join(" "),
    };
    let report = build_report(target, packages, findings, warnings, None, 0);
    output::emit(&report, &args.output)?;
    Ok(exit_code(&report))
}

/// A package from one PEP 508 spec given on the command line.
pub fn package_from_spec(spec: &str) -> anyhow::Result<Package> {
    let req = pep508_rs::Requirement::<pep508_rs::VerbatimUrl>::from_str(spec.trim())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (version, specifier) = match &req.version_or_url {
        Some(pep508_rs::VersionOrUrl::VersionSpecifier(specs)) => {
            let pinned = specs.iter().find_map(|s| {
                (*s.operator() == pep508_rs::pep440_rs::Operator::Equal)
                    .then(|| s.version().to_string())
            });
            (pinned, Some(specs.to_string()))
        }
        Some(pep508_rs::VersionOrUrl::Url(url)) => (None, Some(url.to_string())),
        None => (None, None),
    };
    // Keep the spelling as typed: pep508 keeps the original name too, but be explicit.
    let name = spec
        .trim()
        .split(|c: char| !(c.is_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(req.name.as_ref())
        .to_string();
    let mut p = Package::new(
        name,
        version,
        PackageSource::Declared(DeclaredKind::CommandLine),
        Location::new("<command line>"),
    );
    p.specifier = specifier;
    Ok(p)
}
