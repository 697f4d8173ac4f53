use crate::action::{Action, Severity};
use crate::mitre::MitreTechnique;
use crate::package::{LayerRef, Package};
use serde::{Deserialize, Serialize};

/// The package a finding is about, as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageRef {
    pub name: String,
    pub normalized: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub purl: String,
}

impl From<&Package> for PackageRef {
    fn from(p: &Package) -> Self {
        PackageRef {
            name: p.name.clone(),
            normalized: p.normalized.clone(),
            version: p.version.clone(),
            purl: p.purl.clone(),
        }
    }
}

/// One named piece of evidence behind a finding (`imitates` = `jellyfish`, `ioc.ip` = ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub key: String,
    pub value: String,
}

impl Evidence {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Evidence {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The policy rule that produced (or allowlisted) a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyMatch {
    pub policy_id: String,
    pub rule_id: String,
    /// Anchore-compatible trigger instance id (`md5(gate + trigger + message)` by default).
    pub trigger_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowlisted_by: Option<String>,
}

/// A finding: something pyward found about the target, with the action decided for it.
///
/// `gate` and `trigger` use Anchore's vocabulary where one exists (`packages`/`blacklist`,
/// `dockerfile`/`instruction`, `files`/`name_match`), and pyward's own names for checks no image
/// scanner has (`intel`/`known_malicious`, `names`/`typosquat`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id of the check that fired, e.g. `intel.known-malicious`, `names.typosquat`.
    pub rule_id: String,
    pub gate: String,
    pub trigger: String,
    pub action: Action,
    pub severity: Severity,
    /// One-line description for people.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<PackageRef>,
    /// The file the finding is about (METADATA, requirement file, file in the image...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitre: Vec<MitreTechnique>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// Advisory ids or URLs (OSV ids, write-ups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyMatch>,
}

impl Finding {
    pub fn new(
        rule_id: impl Into<String>,
        gate: impl Into<String>,
        trigger: impl Into<String>,
        action: Action,
        severity: Severity,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            rule_id: rule_id.into(),
            gate: gate.into(),
            trigger: trigger.into(),
            action,
            severity,
            message: message.into(),
            package: None,
            path: None,
            line: None,
            layer: None,
            mitre: Vec::new(),
            evidence: Vec::new(),
            references: Vec::new(),
            policy: None,
        }
    }

    /// Attach a package: its reference, path, line and layer.
    pub fn for_package(mut self, p: &Package) -> Self {
        self.package = Some(PackageRef::from(p));
        self.path = Some(p.location.path.clone());
        self.line = p.location.line;
        self.layer = p.location.layer.clone();
        self
    }

    pub fn with_mitre(mut self, t: impl IntoIterator<Item = MitreTechnique>) -> Self {
        self.mitre.extend(t);
        self
    }

    pub fn with_evidence(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.evidence.push(Evidence::new(key, value));
        self
    }

    /// Whether an allowlist suppressed this finding (it then counts as GO).
    pub fn is_allowlisted(&self) -> bool {
        self.policy
            .as_ref()
            .is_some_and(|p| p.allowlisted_by.is_some())
    }

    /// The action this finding contributes to the final decision.
    pub fn effective_action(&self) -> Action {
        if self.is_allowlisted() {
            Action::Go
        } else {
            self.action
        }
    }
}
