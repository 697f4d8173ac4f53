//! Findings from threat intelligence and look-alike names, with the default decision (until
//! the policy engine decides): known-malicious → STOP, high-confidence typosquat → STOP, other
//! typosquat suspicion → WARN, a file that is a known IOC → STOP.

use crate::intel::Intel;
use crate::names::{Confidence, NameChecker, SquatMatch, Transformation};
use crate::record::MaliciousRecord;
use pyward_core::mitre::techniques::{MASQUERADING_NAME, SUPPLY_CHAIN_SOFTWARE};
use pyward_core::{Action, Finding, LayerRef, Package, Severity};

pub const RULE_KNOWN_MALICIOUS: &str = "intel.known-malicious";
pub const RULE_MALICIOUS_DEPENDENCY: &str = "intel.malicious-dependency";
pub const RULE_TYPOSQUAT: &str = "names.typosquat";
pub const RULE_IOC_FILE: &str = "files.ioc-file";

/// Check packages against known-malicious records and look-alike names, and files against
/// file IOCs. One finding per package entry (a package found in several places gets one per
/// location); exact duplicates are dropped.
pub fn analyze(
    intel: &Intel,
    names: &NameChecker,
    packages: &[Package],
    files: &[(&str, Option<LayerRef>)],
) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for p in packages {
        for r in intel.lookup(&p.name, p.version.as_deref()) {
            push_unique(&mut out, known_malicious(p, r));
        }
        for dep in &p.requires {
            let Some(dep_name) = requirement_name(dep) else {
                continue;
            };
            for r in intel.lookup(dep_name, None) {
                push_unique(&mut out, malicious_dependency(p, dep_name, r));
            }
        }
        if let Some(m) = names.check(&p.name) {
            push_unique(&mut out, typosquat(p, &m));
        }
    }
    for (path, layer) in files {
        // Several records may share a file IOC (jeIlyfish and python3-dateutil do): one
        // finding per file and IOC, naming every record.
        let mut by_ioc: Vec<(&str, Vec<&MaliciousRecord>)> = Vec::new();
        for ioc in intel.match_file(path) {
            match by_ioc.iter_mut().find(|(p, _)| *p == ioc.path) {
                Some((_, recs)) => recs.push(ioc.record),
                None => by_ioc.push((ioc.path, vec![ioc.record])),
            }
        }
        for (ioc_path, recs) in by_ioc {
            let ids: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
            let pkgs: Vec<String> = recs.iter().map(|r| record_packages(r)).collect();
            let mut f = Finding::new(
                RULE_IOC_FILE,
                "files",
                "ioc_file",
                Action::Stop,
                Severity::Critical,
                format!(
                    "file {path} matches `{ioc_path}`, a known indicator of {} ({})",
                    ids.join(", "),
                    pkgs.join("; ")
                ),
            )
            .with_mitre([SUPPLY_CHAIN_SOFTWARE])
            .with_evidence("ioc.file", ioc_path);
            for r in &recs {
                f = f.with_evidence("record", r.id.clone());
                for reference in references(r) {
                    if !f.references.contains(&reference) {
                        f.references.push(reference);
                    }
                }
            }
            f.path = Some((*path).to_string());
            f.layer = layer.clone();
            push_unique(&mut out, f);
        }
    }
    out
}

fn push_unique(out: &mut Vec<Finding>, f: Finding) {
    if !out.contains(&f) {
        out.push(f);
    }
}

/// The distribution name at the start of a PEP 508 string (`jeIlyfish>=0.1; extra == "x"`).
fn requirement_name(req: &str) -> Option<&str> {
    let req = req.trim_start();
    let end = req
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(req.len());
    req.get(..end).filter(|n| !n.is_empty())
}

fn record_packages(r: &MaliciousRecord) -> String {
    let names: Vec<&str> = r.affected.iter().map(|a| a.name.as_str()).collect();
    names.join(", ")
}

fn references(r: &MaliciousRecord) -> Vec<String> {
    let mut refs = vec![r.id.clone()];
    refs.extend(r.aliases.iter().cloned());
    refs.extend(r.references.iter().cloned());
    refs.dedup();
    refs
}

fn with_record_evidence(mut f: Finding, r: &MaliciousRecord) -> Finding {
    f = f.with_evidence("record", r.id.clone());
    if !r.summary.is_empty() {
        f = f.with_evidence("summary", r.summary.clone());
    }
    let affected: Vec<String> = r
        .affected
        .iter()
        .map(|a| format!("{}: {}", a.name, a.affected.describe()))
        .collect();
    f = f.with_evidence("affected", affected.join("; "));
    f = f.with_evidence(
        "source",
        match &r.source {
            crate::record::RecordSource::Builtin => "built-in".to_string(),
            crate::record::RecordSource::Osv { file } => format!("OSV {file}"),
        },
    );
    if let Some(p) = &r.published {
        f = f.with_evidence("published", p.clone());
    }
    for (k, v) in r.iocs.evidence() {
        f = f.with_evidence(k, v);
    }
    f.references = references(r);
    f
}

fn known_malicious(p: &Package, r: &MaliciousRecord) -> Finding {
    let what = match &p.version {
        Some(v) => format!("{} {v}", p.name),
        None => format!("{} (any version)", p.name),
    };
    let summary = if r.summary.is_empty() {
        String::new()
    } else {
        format!(": {}", r.summary)
    };
    let f = Finding::new(
        RULE_KNOWN_MALICIOUS,
        "intel",
        "known_malicious",
        Action::Stop,
        Severity::Critical,
        format!("{what} is a known-malicious package ({}){summary}", r.id),
    )
    .for_package(p)
    .with_mitre([SUPPLY_CHAIN_SOFTWARE]);
    with_record_evidence(f, r)
}

fn malicious_dependency(p: &Package, dep: &str, r: &MaliciousRecord) -> Finding {
    let f = Finding::new(
        RULE_MALICIOUS_DEPENDENCY,
        "intel",
        "malicious_dependency",
        Action::Stop,
        Severity::Critical,
        format!(
            "{} depends on {dep}, a known-malicious package ({})",
            p.display_name(),
            r.id
        ),
    )
    .for_package(p)
    .with_mitre([SUPPLY_CHAIN_SOFTWARE])
    .with_evidence("dependency", dep);
    with_record_evidence(f, r)
}

fn typosquat(p: &Package, m: &SquatMatch) -> Finding {
    let (action, severity) = match m.confidence {
        Confidence::High => (Action::Stop, Severity::High),
        Confidence::Medium => (Action::Warn, Severity::Medium),
        Confidence::Low => (Action::Warn, Severity::Low),
    };
    let spelling = match &m.transformation {
        Transformation::CaseConfusable { from, to } => format!(
            "{} (as found: `{from}` where {} has `{to}`)",
            p.name, m.imitates
        ),
        _ => p.name.clone(),
    };
    Finding::new(
        RULE_TYPOSQUAT,
        "names",
        "typosquat",
        action,
        severity,
        format!(
            "{} imitates the popular package {} ({}, {} confidence)",
            p.name, m.imitates, m.transformation, m.confidence
        ),
    )
    .for_package(p)
    .with_mitre([SUPPLY_CHAIN_SOFTWARE, MASQUERADING_NAME])
    .with_evidence("imitates", m.imitates.clone())
    .with_evidence("imitates_rank", m.imitates_rank.to_string())
    .with_evidence("transformation", m.transformation.to_string())
    .with_evidence("confidence", m.confidence.as_str())
    .with_evidence("score", format!("{:.2}", m.score))
    .with_evidence("spelling", spelling)
    .with_evidence("explanation", m.explanation.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_names() {
        assert_eq!(requirement_name("jeIlyfish>=0.1"), Some("jeIlyfish"));
        assert_eq!(requirement_name(" a.b_c ; extra == 'x'"), Some("a.b_c"));
        assert_eq!(requirement_name(">=1"), None);
        assert_eq!(requirement_name(""), None);
    }
}
