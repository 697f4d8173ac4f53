//! Renderers for [`pyward_core::ScanReport`]: a table for people, and JSON, SARIF 2.1.0 and
//! CycloneDX 1.5 for machines.
//!
//! Renderers decide nothing: the actions in the report are the policy's. They only present
//! them, in a stable order, with everything that came from the scanned input made safe for the
//! medium (control characters escaped in the table, percent-encoded URIs in SARIF, ...).

mod common;
pub mod cyclonedx;
pub mod json;
pub mod sarif;
pub mod table;

use pyward_core::ScanReport;
use std::fmt;
use std::str::FromStr;

/// An output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Grouped findings and one verdict line, for people.
    Table,
    /// The pyward JSON report (docs/report-schema.md).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and other SARIF consumers.
    Sarif,
    /// A CycloneDX 1.5 JSON SBOM with malicious findings as vulnerabilities.
    CycloneDx,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 4] = [
        Format::Table,
        Format::Json,
        Format::Sarif,
        Format::CycloneDx,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::CycloneDx => "cyclonedx",
        }
    }

    /// Whether the format is meant for machines (and so never coloured).
    pub fn is_machine_readable(self) -> bool {
        self != Format::Table
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "sarif" => Ok(Format::Sarif),
            "cyclonedx" | "cdx" => Ok(Format::CycloneDx),
            other => Err(format!(
                "unknown report format `{other}`: expected table, json, sarif or cyclonedx"
            )),
        }
    }
}

/// How to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenderOptions {
    /// Colour the table with ANSI escape codes (ignored by the machine formats).
    pub color: bool,
    /// List every package in the table, not only counts per source kind.
    pub verbose: bool,
}

/// Render `report` in `format`. Machine formats end with a newline, like the table.
pub fn render(report: &ScanReport, format: Format, opts: &RenderOptions) -> String {
    match format {
        Format::Table => table::render(report, opts),
        Format::Json => json::render(report),
        Format::Sarif => sarif::render(report),
        Format::CycloneDx => cyclonedx::render(report),
    }
}

/// Render `report` and write it to `out` in one piece.
pub fn write_report(
    report: &ScanReport,
    format: Format,
    opts: &RenderOptions,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let text = render(report, format, opts);
    out.write_all(text.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
            assert_eq!(f.to_string().to_uppercase().parse::<Format>(), Ok(f));
        }
        let err = "xml".parse::<Format>().unwrap_err();
        assert!(err.contains("xml") && err.contains("cyclonedx"), "{err}");
    }
}
