//! The known-malicious record model, shared by the built-in list and imported OSV records.
//!
//! A record says which package names and versions are malicious, why (summary, details,
//! references) and what the malware leaves behind (IOCs). Version matching follows the OSV
//! schema's range semantics, with versions compared by PEP 440 (`pep440_rs`).

use pep440_rs::Version;
use pyward_core::normalize_name;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// A package (or several) known to be malicious.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaliciousRecord {
    /// `PYWARD-2019-0001`, `MAL-2024-4720`, ...
    pub id: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub details: String,
    /// Which packages and versions the record covers (OSV `affected[]`, PyPI entries only).
    pub affected: Vec<AffectedPackage>,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub iocs: Iocs,
    pub source: RecordSource,
    #[serde(default)]
    pub published: Option<String>,
    #[serde(default)]
    pub modified: Option<String>,
    /// Set when the record was withdrawn (a false positive): stored, never matched.
    #[serde(default)]
    pub withdrawn: Option<String>,
    /// Malicious package, or an ordinary vulnerability record imported from the same export.
    #[serde(default)]
    pub kind: RecordKind,
}

/// Whether a record reports malware or an ordinary vulnerability. Only malware records produce
/// `known_malicious` findings: a CVE in an old `requests` is not a reason to call it malicious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    #[default]
    Malicious,
    Vulnerability,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Malicious => "malicious",
            RecordKind::Vulnerability => "vulnerability",
        }
    }
}

/// One affected package of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedPackage {
    /// The name as the record spells it (`jeIlyfish`).
    pub name: String,
    pub affected: Affected,
}

impl AffectedPackage {
    pub fn normalized(&self) -> String {
        normalize_name(&self.name)
    }
}

/// Which versions of a package are affected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Affected {
    /// Every version (OSV `introduced: "0"` with no upper bound, or the built-in "all").
    AllVersions,
    /// An explicit list and/or PEP 440 ranges; a version is affected if either says so.
    Specific {
        #[serde(default)]
        versions: Vec<String>,
        #[serde(default)]
        ranges: Vec<VersionRange>,
    },
}

/// One OSV `ECOSYSTEM` range: a list of events (introduced, fixed, last_affected, limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRange {
    pub events: Vec<RangeEvent>,
}

/// An OSV range event. `Introduced("0")` means "from the first version".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RangeEvent {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// Indicators of compromise: what the malware talks to or leaves on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Iocs {
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub cidrs: Vec<String>,
    #[serde(default)]
    pub ports: Vec<u16>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub urls: Vec<String>,
    /// Paths relative to site-packages (`jeIlyfish/_jellyfish.py`), matched as path suffixes.
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub sha256: Vec<String>,
}

impl Iocs {
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
            && self.cidrs.is_empty()
            && self.ports.is_empty()
            && self.domains.is_empty()
            && self.urls.is_empty()
            && self.files.is_empty()
            && self.sha256.is_empty()
    }

    /// `(evidence key, value)` pairs, e.g. `("ioc.ip", "68.183.212.246")`.
    pub fn evidence(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        out.extend(self.ips.iter().map(|v| ("ioc.ip", v.clone())));
        out.extend(self.cidrs.iter().map(|v| ("ioc.cidr", v.clone())));
        out.extend(self.ports.iter().map(|v| ("ioc.port", v.to_string())));
        out.extend(self.domains.iter().map(|v| ("ioc.domain", v.clone())));
        out.extend(self.urls.iter().map(|v| ("ioc.url", v.clone())));
        out.extend(self.files.iter().map(|v| ("ioc.file", v.clone())));
        out.extend(self.sha256.iter().map(|v| ("ioc.sha256", v.clone())));
        out
    }
}

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RecordSource {
    /// Compiled into pyward (`data/known-malicious.json`).
    Builtin,
    /// Imported from an OSV file (`file` is the path, or `archive.zip!entry`).
    Osv { file: String },
}

impl MaliciousRecord {
    /// Whether the record is withdrawn (kept for the record, never matched).
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }

    /// Whether the record covers `normalized` (a PEP 503 name) at `version`. `None` = the
    /// version is unknown (an unpinned declaration): matched if any version is affected.
    pub fn matches(&self, normalized: &str, version: Option<&str>) -> bool {
        !self.is_withdrawn()
            && self
                .affected
                .iter()
                .any(|a| a.normalized() == normalized && a.affected.contains(version))
    }

    /// Normalised names of the packages the record covers.
    pub fn package_names(&self) -> impl Iterator<Item = String> + '_ {
        self.affected.iter().map(AffectedPackage::normalized)
    }
}

impl Affected {
    /// Whether `version` is affected; `None` (unknown version) is affected if anything is.
    pub fn contains(&self, version: Option<&str>) -> bool {
        match self {
            Affected::AllVersions => true,
            Affected::Specific { versions, ranges } => {
                let Some(v) = version else {
                    return !versions.is_empty() || !ranges.is_empty();
                };
                let parsed = Version::from_str(v.trim()).ok();
                let listed =
                    versions
                        .iter()
                        .any(|x| match (&parsed, Version::from_str(x.trim())) {
                            (Some(p), Ok(x)) => *p == x,
                            _ => x.trim() == v.trim(),
                        });
                listed || parsed.is_some_and(|p| ranges.iter().any(|r| r.contains(&p)))
            }
        }
    }

    /// One line for people: `all versions`, `versions 1, 2`, `>=1.0, <1.2`.
    pub fn describe(&self) -> String {
        match self {
            Affected::AllVersions => "all versions".into(),
            Affected::Specific { versions, ranges } => {
                let mut parts = Vec::new();
                if !versions.is_empty() {
                    parts.push(format!("versions {}", versions.join(", ")));
                }
                for r in ranges {
                    parts.push(r.describe());
                }
                parts.join("; ")
            }
        }
    }
}

/// A parsed event bound; `None` for `introduced: "0"` (the lowest version).
fn event_version(s: &str) -> Result<Option<Version>, ()> {
    if s.trim() == "0" {
        return Ok(None);
    }
    Version::from_str(s.trim()).map(Some).map_err(|_| ())
}

impl VersionRange {
    /// True if this range says "all versions": introduced 0 and nothing else.
    pub fn is_all(&self) -> bool {
        !self.events.is_empty()
            && self
                .events
                .iter()
                .all(|e| matches!(e, RangeEvent::Introduced(v) if v.trim() == "0"))
    }

    /// OSV range evaluation: walk the events in version order; `introduced` turns the range on,
    /// `fixed` (at that version) and `last_affected` (after it) turn it off; `limit` caps the
    /// whole range. Events whose version does not parse are ignored.
    pub fn contains(&self, v: &Version) -> bool {
        let mut events: Vec<(Option<Version>, &RangeEvent)> = Vec::new();
        for e in &self.events {
            let raw = match e {
                RangeEvent::Introduced(s)
                | RangeEvent::Fixed(s)
                | RangeEvent::LastAffected(s)
                | RangeEvent::Limit(s) => s,
            };
            if let Ok(parsed) = event_version(raw) {
                events.push((parsed, e));
            }
        }
        for (bound, e) in &events {
            if let (RangeEvent::Limit(_), Some(b)) = (e, bound) {
                if v >= b {
                    return false;
                }
            }
        }
        // None ("0") sorts first; at equal versions keep the record's order.
        events.sort_by(|a, b| a.0.cmp(&b.0));
        let mut affected = false;
        for (bound, e) in &events {
            match e {
                RangeEvent::Introduced(_) => {
                    if bound.as_ref().is_none_or(|b| v >= b) {
                        affected = true;
                    }
                }
                RangeEvent::Fixed(_) => {
                    if bound.as_ref().is_some_and(|b| v >= b) {
                        affected = false;
                    }
                }
                RangeEvent::LastAffected(_) => {
                    if bound.as_ref().is_some_and(|b| v > b) {
                        affected = false;
                    }
                }
                RangeEvent::Limit(_) => {}
            }
        }
        affected
    }

    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .events
            .iter()
            .map(|e| match e {
                RangeEvent::Introduced(v) if v.trim() == "0" => ">=0 (all)".to_string(),
                RangeEvent::Introduced(v) => format!(">={v}"),
                RangeEvent::Fixed(v) => format!("<{v}"),
                RangeEvent::LastAffected(v) => format!("<={v}"),
                RangeEvent::Limit(v) => format!("limit {v}"),
            })
            .collect();
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(events: Vec<RangeEvent>) -> Affected {
        Affected::Specific {
            versions: vec![],
            ranges: vec![VersionRange { events }],
        }
    }

    #[test]
    fn introduced_fixed() {
        let a = range(vec![
            RangeEvent::Introduced("1.0".into()),
            RangeEvent::Fixed("1.2".into()),
        ]);
        assert!(!a.contains(Some("0.9")));
        assert!(a.contains(Some("1.0")));
        assert!(a.contains(Some("1.1")));
        assert!(a.contains(Some("1.1.post1")));
        assert!(!a.contains(Some("1.2")));
        assert!(!a.contains(Some("2.0")));
        assert!(a.contains(None));
    }

    #[test]
    fn last_affected_and_limit() {
        let a = range(vec![
            RangeEvent::Introduced("0".into()),
            RangeEvent::LastAffected("2.0".into()),
        ]);
        assert!(a.contains(Some("0.1")));
        assert!(a.contains(Some("2.0")));
        assert!(!a.contains(Some("2.0.1")));
        let b = range(vec![
            RangeEvent::Introduced("0".into()),
            RangeEvent::Limit("3".into()),
        ]);
        assert!(b.contains(Some("2.9")));
        assert!(!b.contains(Some("3.0")));
    }

    #[test]
    fn reintroduced() {
        let a = range(vec![
            RangeEvent::Introduced("1".into()),
            RangeEvent::Fixed("2".into()),
            RangeEvent::Introduced("3".into()),
        ]);
        assert!(a.contains(Some("1.5")));
        assert!(!a.contains(Some("2.5")));
        assert!(a.contains(Some("3.1")));
    }

    #[test]
    fn explicit_versions_and_bad_versions() {
        let a = Affected::Specific {
            versions: vec!["1.0".into(), "weird".into()],
            ranges: vec![],
        };
        assert!(a.contains(Some("1.0.0")), "PEP 440 equality: 1.0 == 1.0.0");
        assert!(a.contains(Some("weird")));
        assert!(!a.contains(Some("1.1")));
        assert!(!a.contains(Some("not a version")));
        let bad = range(vec![RangeEvent::Introduced("garbage!".into())]);
        assert!(!bad.contains(Some("1.0")));
    }
}
