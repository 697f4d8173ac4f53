pub(crate) mod audit;
mod intel;
mod pip;
mod policy;
pub(crate) mod rules;
mod scan;
mod vet;
pub(crate) mod watch;

use crate::cli::{Cli, Command, IntelArgs};
use anyhow::Context;
use pyward_core::{
    Finding, ImageSummary, LayerRef, Package, ScanReport, Target, Tool, Warning,
    REPORT_SCHEMA_VERSION,
};
use pyward_intel::{Intel, NameChecker};

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Scan(args) => scan::run(args),
        Command::Vet(args) => vet::run(args),
        Command::Pip(args) => pip::run(args),
        Command::Intel(cmd) => intel::run(cmd),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Rules(cmd) => rules::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Watch(args) => watch::watch(args),
        Command::Run(args) => watch::run(args),
    }
}

/// The analyzers a static check runs: known-malicious records and look-alike names.
pub struct Checkers {
    pub intel: Intel,
    pub names: NameChecker,
}

impl Checkers {
    pub fn load(args: &IntelArgs) -> anyhow::Result<Checkers> {
        let db = args.intel_db.clone().or_else(Intel::default_db_path);
        let intel = Intel::open(db.as_deref()).with_context(|| match &db {
            Some(p) => format!(
                "cannot open the threat-intelligence database {}; re-import it with \
                 `pyward intel import`, or pass --intel-db",
                p.display()
            ),
            None => "cannot load threat intelligence".to_string(),
        })?;
        let names = NameChecker::builtin(args.include_popular);
        Ok(Checkers { intel, names })
    }

    /// Findings for these packages and files, with the default decision.
    pub fn check(&self, packages: &[Package], files: &[(&str, Option<LayerRef>)]) -> Vec<Finding> {
        pyward_intel::analyze(&self.intel, &self.names, packages, files)
    }
}

/// Assemble the report every renderer takes, with the final action decided from the findings.
pub fn build_report(
    target: Target,
    packages: Vec<Package>,
    findings: Vec<Finding>,
    warnings: Vec<Warning>,
    image: Option<ImageSummary>,
    files_scanned: u64,
) -> ScanReport {
    let mut report = ScanReport {
        schema_version: REPORT_SCHEMA_VERSION.to_string(),
        tool: Tool {
            name: "pyward".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        target,
        final_action: pyward_core::Action::Go,
        image,
        packages,
        findings,
        warnings,
        files_scanned,
        generated_at: now_rfc3339(),
    };
    report.decide();
    report
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Exit code for a finished check: 1 on STOP, else 0.
pub fn exit_code(report: &ScanReport) -> u8 {
    if report.final_action.passes() {
        crate::exit::PASS
    } else {
        crate::exit::STOP
    }
}
