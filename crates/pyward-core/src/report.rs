use crate::action::Action;
use crate::finding::Finding;
use crate::package::{LayerRef, Package};
use serde::{Deserialize, Serialize};

/// Version of the JSON report schema (docs/report-schema.md). Bump on incompatible changes.
pub const REPORT_SCHEMA_VERSION: &str = "1.0";

/// What was scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    Directory,
    File,
    Archive,
    DockerArchive,
    OciLayout,
    OciArchive,
    /// Requirement specs given on the command line (`pyward vet`, `pyward pip install`).
    Specs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub kind: TargetKind,
    /// The target as the user named it.
    pub name: String,
}

/// Image facts for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ImageSummary {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    pub layers: Vec<LayerRef>,
    /// The Dockerfile reconstructed from the image history (Anchore's "guessed" form).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dockerfile: Vec<String>,
}

/// A non-fatal problem met while scanning: the scan went on without this piece.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The input the problem is in (a path, possibly inside an image or archive).
    pub input: String,
    pub message: String,
}

impl Warning {
    pub fn new(input: impl Into<String>, message: impl Into<String>) -> Self {
        Warning {
            input: input.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.input, self.message)
    }
}

/// Everything one scan produced: the input of every renderer in `pyward-report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanReport {
    pub schema_version: String,
    pub tool: Tool,
    pub target: Target,
    pub final_action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSummary>,
    pub packages: Vec<Package>,
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub warnings: Vec<Warning>,
    /// Number of files seen in the target.
    pub files_scanned: u64,
    /// RFC 3339 time the scan finished.
    pub generated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

impl ScanReport {
    /// Recompute `final_action` from the findings (allowlisted ones count as GO).
    pub fn decide(&mut self) {
        self.final_action = Action::combine(self.findings.iter().map(Finding::effective_action));
    }
}
