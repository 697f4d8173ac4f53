//! `pyward pip install ...`: vet pip's own resolution before the real install.

use super::vet::package_from_spec;
use super::{build_report, Checkers};
use crate::cli::{ColorArg, FormatArg, OutputArgs, PipArgs};
use crate::output;
use anyhow::{bail, Context};
use pyward_core::{DeclaredKind, Location, Package, PackageSource, ScanReport, Target, TargetKind};
use pyward_inventory::dir::DirTree;
use serde::Deserialize;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The parts of pip's installation report (`pip install --dry-run --report`, pip ≥ 22.2) we use.
#[derive(Debug, Deserialize)]
struct PipReport {
    #[serde(default)]
    install: Vec<PipReportItem>,
}

#[derive(Debug, Deserialize)]
struct PipReportItem {
    metadata: PipReportMetadata,
    #[serde(default)]
    download_info: Option<PipDownloadInfo>,
    #[serde(default)]
    requested: bool,
}

#[derive(Debug, Deserialize)]
struct PipReportMetadata {
    name: String,
    version: String,
    #[serde(default)]
    requires_dist: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PipDownloadInfo {
    url: String,
}

pub fn run(args: PipArgs) -> anyhow::Result<u8> {
    let Some((sub, install_args)) = args.pip_args.split_first() else {
        bail!("nothing to run: use `pyward pip install ARGS...`");
    };
    if sub != "install" {
        bail!(
            "only `pip install` is guarded by pyward; run `{} -m pip {sub} ...` directly",
            args.python.display()
        );
    }
    let checkers = Checkers::load(&args.intel)?;
    let show = OutputArgs {
        format: FormatArg::Table,
        output: None,
        verbose: false,
        color: ColorArg::Auto,
    };

    // 1. The names the user typed, before pip touches anything (pip may build sdists while
    //    resolving, which runs their code).
    let direct = direct_requirements(install_args)?;
    let findings = checkers.check(&direct, &[]);
    let report = report_for("pip install (requested names)", direct, findings);
    if !report.final_action.passes() {
        output::emit(&report, &show)?;
        output::print_error(&anyhow::anyhow!(
            "refusing to run pip: a requested package is blocked (see above); nothing was installed"
        ));
        return Ok(crate::exit::STOP);
    }

    // 2. pip's own resolution of the full set.
    let work = tempfile::tempdir().context("cannot create a temporary folder")?;
    let report_path = work.path().join("pip-report.json");
    let mut dry = Command::new(&args.python);
    dry.args([
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--quiet",
        "--disable-pip-version-check",
    ])
    .arg("--report")
    .arg(&report_path);
    if !args.allow_build {
        dry.arg("--only-binary=:all:");
    }
    dry.args(install_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let out = dry
        .output()
        .with_context(|| format!("cannot run {} -m pip", args.python.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if !args.allow_build && stderr.contains("binary") {
            "\nhint: some package has no wheel; --allow-build lets pip build sdists while \
             resolving (their build code then runs before pyward can vet them)"
        } else {
            ""
        };
        bail!(
            "pip could not resolve `pip install {}`; nothing was installed:\n{}{hint}",
            install_args.join(" "),
            stderr.trim_end()
        );
    }
    let resolution = read_pip_report(&report_path)?;

    // 3. Vet every package pip would install.
    let packages: Vec<Package> = resolution
        .install
        .iter()
        .map(|item| {
            let mut p = Package::new(
                item.metadata.name.clone(),
                Some(item.metadata.version.clone()),
                PackageSource::Declared(DeclaredKind::CommandLine),
                Location::new(
                    item.download_info
                        .as_ref()
                        .map(|d| d.url.clone())
                        .unwrap_or_else(|| "pip resolution".into()),
                ),
            );
            p.requires = item.metadata.requires_dist.clone();
            p.summary = item.metadata.summary.clone();
            if item.requested {
                p.specifier = Some("requested".into());
            }
            p
        })
        .collect();
    let findings = checkers.check(&packages, &[]);
    let report = report_for("pip install (full resolution)", packages, findings);
    output::emit(&report, &show)?;
    if !report.final_action.passes() {
        output::print_error(&anyhow::anyhow!(
            "refusing to install: pip's resolution includes a blocked package (see above); \
             nothing was installed"
        ));
        return Ok(crate::exit::STOP);
    }
    if args.dry_run {
        return Ok(crate::exit::PASS);
    }

    // 4. The real install, constrained to exactly the vetted versions.
    let constraints = work.path().join("pyward-vetted-constraints.txt");
    let mut f = std::fs::File::create(&constraints).context("cannot write the constraints file")?;
    for item in &resolution.install {
        writeln!(f, "{}=={}", item.metadata.name, item.metadata.version)?;
    }
    drop(f);
    let status = Command::new(&args.python)
        .args(["-m", "pip", "install"])
        .args(install_args)
        .arg("-c")
        .arg(&constraints)
        .status()
        .with_context(|| format!("cannot run {} -m pip", args.python.display()))?;
    if status.success() {
        Ok(crate::exit::PASS)
    } else {
        bail!("pip install failed ({status})")
    }
}

fn report_for(
    name: &str,
    packages: Vec<Package>,
    findings: Vec<pyward_core::Finding>,
) -> ScanReport {
    let target = Target {
        kind: TargetKind::Specs,
        name: name.into(),
    };
    build_report(target, packages, findings, Vec::new(), None, 0)
}

fn read_pip_report(path: &Path) -> anyhow::Result<PipReport> {
    let bytes = std::fs::read(path).context(
        "pip wrote no installation report; pyward needs pip ≥ 22.2 (`pip install -U pip`)",
    )?;
    serde_json::from_slice(&bytes).context("pip's installation report is not in the expected form")
}

/// Options of `pip install` that take a value (so the value is not mistaken for a package).
const OPTIONS_WITH_VALUE: &[&str] = &[
    "-c",
    "--constraint",
    "-e",
    "--editable",
    "-t",
    "--target",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--root",
    "--prefix",
    "--src",
    "--upgrade-strategy",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--global-option",
    "--config-settings",
    "-C",
    "--no-binary",
    "--only-binary",
    "--progress-bar",
    "--log",
    "--proxy",
    "--retries",
    "--timeout",
    "--exists-action",
    "--trusted-host",
    "--cert",
    "--client-cert",
    "--cache-dir",
    "--report",
    "--python",
    "--keyring-provider",
    "--root-user-action",
    "--group",
];

/// Packages named directly on a `pip install` command line: positional specs and `-r` files.
fn direct_requirements(args: &[String]) -> anyhow::Result<Vec<Package>> {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (opt, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if opt == "-r" || opt == "--requirement" || (opt.starts_with("-r") && opt.len() > 2) {
            let file = match inline {
                Some(v) => v,
                None if opt.len() > 2 && !opt.starts_with("--") => opt[2..].to_string(),
                None => it.next().cloned().context("`-r` needs a file")?,
            };
            let tree = DirTree::single_file(Path::new(&file), &mut warnings)
                .with_context(|| format!("cannot read requirements file {file}"))?;
            let tree_path = format!(
                "/{}",
                Path::new(&file)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            out.extend(pyward_inventory::declared::catalog_as(
                &tree,
                &tree_path,
                DeclaredKind::Requirements,
                &mut warnings,
            ));
        } else if OPTIONS_WITH_VALUE.contains(&opt) {
            if inline.is_none() {
                it.next();
            }
        } else if arg.starts_with('-') {
            // A flag without value (--upgrade, --no-deps, ...).
        } else if looks_like_path_or_url(arg) {
            // Local archives and URLs are resolved by pip and vetted in step 3.
        } else {
            out.push(
                package_from_spec(arg)
                    .with_context(|| format!("`{arg}` is not a valid requirement (PEP 508)"))?,
            );
        }
    }
    for w in warnings {
        output::print_warning(&w.to_string());
    }
    Ok(out)
}

fn looks_like_path_or_url(arg: &str) -> bool {
    arg.contains("://")
        || arg.starts_with('.')
        || arg.starts_with('/')
        || arg.ends_with(".whl")
        || arg.ends_with(".tar.gz")
        || arg.ends_with(".zip")
}
