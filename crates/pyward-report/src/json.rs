//! The pyward JSON report: the [`ScanReport`] as serialised by serde, plus a few conveniences the
//! documented schema promises (docs/report-schema.md, docs/report.schema.json):
//! - each package gets a top-level `layer` (a copy of `location.layer`) when it is known;
//! - each finding always has `package` and `path` (null when absent) and `mitre` (possibly
//!   empty), so consumers need no existence checks for the fields the issue asks for.
//!
//! The output reads back into a [`ScanReport`] with serde (extra fields are ignored).

use pyward_core::{
    Action, Finding, ImageSummary, LayerRef, MitreTechnique, Package, ScanReport, Target, Tool,
    Warning,
};
use serde::Serialize;
use serde_json::Value;

/// The report as written, fields in the order of the schema documentation.
#[derive(Serialize)]
struct ReportView<'a> {
    schema_version: &'a str,
    tool: &'a Tool,
    target: &'a Target,
    final_action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a ImageSummary>,
    packages: Vec<PackageView<'a>>,
    findings: Vec<FindingView<'a>>,
    warnings: &'a [Warning],
    files_scanned: u64,
    generated_at: &'a str,
}

#[derive(Serialize)]
struct PackageView<'a> {
    #[serde(flatten)]
    package: &'a Package,
    /// `location.layer`, lifted for consumers that want it next to the name.
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<&'a LayerRef>,
}

#[derive(Serialize)]
struct FindingView<'a> {
    #[serde(flatten)]
    finding: &'a Finding,
    /// `null` when the finding has no package (the core type omits the field).
    #[serde(rename = "package", skip_serializing_if = "Option::is_none")]
    package_null: Option<()>,
    /// `null` when the finding has no path.
    #[serde(rename = "path", skip_serializing_if = "Option::is_none")]
    path_null: Option<()>,
    /// `[]` when the finding has no technique.
    #[serde(rename = "mitre", skip_serializing_if = "Option::is_none")]
    mitre_empty: Option<&'a [MitreTechnique]>,
}

fn view(report: &ScanReport) -> ReportView<'_> {
    ReportView {
        schema_version: &report.schema_version,
        tool: &report.tool,
        target: &report.target,
        final_action: report.final_action,
        image: report.image.as_ref(),
        packages: report
            .packages
            .iter()
            .map(|p| PackageView {
                package: p,
                layer: p.location.layer.as_ref(),
            })
            .collect(),
        findings: report
            .findings
            .iter()
            .map(|f| FindingView {
                finding: f,
                package_null: f.package.is_none().then_some(()),
                path_null: f.path.is_none().then_some(()),
                mitre_empty: f.mitre.is_empty().then_some(&[][..]),
            })
            .collect(),
        warnings: &report.warnings,
        files_scanned: report.files_scanned,
        generated_at: &report.generated_at,
    }
}

/// The JSON value of the report (keys sorted, as `serde_json::Value` keeps them).
pub fn to_value(report: &ScanReport) -> Value {
    serde_json::to_value(view(report)).unwrap_or_else(|e| error_value(&e.to_string()))
}

/// The report as pretty-printed JSON in documented field order, ending with a newline.
pub fn render(report: &ScanReport) -> String {
    let mut s = serde_json::to_string_pretty(&view(report))
        .unwrap_or_else(|e| error_value(&e.to_string()).to_string());
    s.push('\n');
    s
}

/// The report types serialise infallibly (string keys only); keep a clear answer anyway.
fn error_value(message: &str) -> Value {
    serde_json::json!({ "error": format!("pyward could not serialise the report: {message}") })
}
