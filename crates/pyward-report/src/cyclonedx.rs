//! CycloneDX 1.5 JSON: every package as a `library` component with its purl and where it was
//! found (`pyward:*` properties), the target as the root component, and findings that say a
//! package is malicious or a look-alike as `vulnerabilities[]` affecting that component.

use crate::common::{
    is_image, is_malicious_package_finding, is_web_url, record_id, sorted_findings,
};
use pyward_core::{Finding, Package, PackageSource, ScanReport, Severity, TargetKind};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};

/// The `$schema` of the document.
pub const CYCLONEDX_SCHEMA: &str = "http://cyclonedx.org/schema/bom-1.5.schema.json";
/// bom-ref of the target component.
pub const ROOT_REF: &str = "root";

/// The BOM as a JSON value, with a fresh random serial number.
pub fn to_value(report: &ScanReport) -> Value {
    to_value_with_serial(report, uuid::Uuid::new_v4())
}

/// The BOM with a given serial number (tests and reproducible output).
pub fn to_value_with_serial(report: &ScanReport, serial: uuid::Uuid) -> Value {
    let packages = sorted_packages(report);
    let refs = bom_refs(&packages);
    let index = RefIndex::new(&packages, &refs);
    let components: Vec<Value> = packages
        .iter()
        .zip(&refs)
        .map(|(p, r)| component(p, r))
        .collect();
    let vulnerabilities: Vec<Value> = sorted_findings(report)
        .into_iter()
        .filter(|f| f.effective_action() != pyward_core::Action::Go)
        .filter(|f| is_malicious_package_finding(f))
        .map(|f| vulnerability(f, index.affected(f)))
        .collect();

    let mut bom = Map::new();
    bom.insert("$schema".into(), json!(CYCLONEDX_SCHEMA));
    bom.insert("bomFormat".into(), json!("CycloneDX"));
    bom.insert("specVersion".into(), json!("1.5"));
    bom.insert("serialNumber".into(), json!(format!("urn:uuid:{serial}")));
    bom.insert("version".into(), json!(1));
    bom.insert("metadata".into(), metadata(report));
    bom.insert("components".into(), Value::Array(components));
    bom.insert(
        "dependencies".into(),
        json!([{ "ref": ROOT_REF, "dependsOn": refs }]),
    );
    if !vulnerabilities.is_empty() {
        bom.insert("vulnerabilities".into(), Value::Array(vulnerabilities));
    }
    Value::Object(bom)
}

/// The BOM, pretty-printed, ending with a newline.
pub fn render(report: &ScanReport) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(report)).unwrap_or_default();
    s.push('\n');
    s
}

/// Packages in a stable order: name, version, path, line.
fn sorted_packages(report: &ScanReport) -> Vec<&Package> {
    let mut v: Vec<&Package> = report.packages.iter().collect();
    v.sort_by(|a, b| {
        a.normalized
            .cmp(&b.normalized)
            .then_with(|| a.version.cmp(&b.version))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.location.path.cmp(&b.location.path))
            .then_with(|| a.location.line.cmp(&b.location.line))
    });
    v
}

/// One unique bom-ref per package: its purl, then `purl#2`, `purl#3`... for the same purl
/// found at further locations. Never `root`, never empty.
fn bom_refs(packages: &[&Package]) -> Vec<String> {
    let mut seen: HashSet<String> = HashSet::new();
    seen.insert(ROOT_REF.to_string());
    let mut counts: HashMap<&str, usize> = HashMap::new();
    packages
        .iter()
        .map(|p| {
            let base = if p.purl.is_empty() {
                "pkg:pypi/unknown"
            } else {
                p.purl.as_str()
            };
            let n = counts.entry(base).or_insert(0);
            loop {
                *n += 1;
                let candidate = if *n == 1 {
                    base.to_string()
                } else {
                    format!("{base}#{n}")
                };
                if seen.insert(candidate.clone()) {
                    break candidate;
                }
            }
        })
        .collect()
}

/// Finds the component a finding is about in O(1): by purl and path, else by purl.
struct RefIndex<'a> {
    by_purl_path: HashMap<(&'a str, &'a str), &'a str>,
    by_purl: HashMap<&'a str, &'a str>,
}

impl<'a> RefIndex<'a> {
    fn new(packages: &[&'a Package], refs: &'a [String]) -> Self {
        let mut by_purl_path = HashMap::new();
        let mut by_purl = HashMap::new();
        for (p, r) in packages.iter().zip(refs) {
            by_purl_path
                .entry((p.purl.as_str(), p.location.path.as_str()))
                .or_insert(r.as_str());
            by_purl.entry(p.purl.as_str()).or_insert(r.as_str());
        }
        RefIndex {
            by_purl_path,
            by_purl,
        }
    }

    /// The bom-ref of the component a finding is about: same purl and path, else same purl,
    /// else the root (the finding is then about the target as a whole).
    fn affected(&self, f: &Finding) -> String {
        let Some(pk) = &f.package else {
            return ROOT_REF.to_string();
        };
        f.path
            .as_deref()
            .and_then(|path| self.by_purl_path.get(&(pk.purl.as_str(), path)))
            .or_else(|| self.by_purl.get(pk.purl.as_str()))
            .map_or_else(|| ROOT_REF.to_string(), |r| r.to_string())
    }
}

/// `{name, value}` properties, duplicates dropped (the schema wants unique items).
#[derive(Default)]
struct Props(Vec<(String, String)>);

impl Props {
    fn add(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let pair = (name.into(), value.into());
        if !self.0.contains(&pair) {
            self.0.push(pair);
        }
    }

    fn into_value(self) -> Value {
        Value::Array(
            self.0
                .into_iter()
                .map(|(n, v)| json!({ "name": n, "value": v }))
                .collect(),
        )
    }
}

fn metadata(report: &ScanReport) -> Value {
    let mut md = Map::new();
    if looks_like_rfc3339(&report.generated_at) {
        md.insert("timestamp".into(), json!(report.generated_at));
    }
    md.insert(
        "tools".into(),
        json!({ "components": [{
            "type": "application",
            "name": report.tool.name,
            "version": report.tool.version,
        }]}),
    );
    let kind = match report.target.kind {
        k if is_image(k) => "container",
        TargetKind::File | TargetKind::Archive => "file",
        _ => "application",
    };
    let mut root = Map::new();
    root.insert("type".into(), json!(kind));
    root.insert("bom-ref".into(), json!(ROOT_REF));
    root.insert("name".into(), json!(report.target.name));
    let mut props = Props::default();
    props.add("pyward:target:kind", enum_str(&report.target.kind));
    if let Some(img) = &report.image {
        for t in &img.repo_tags {
            props.add("pyward:image:repo_tag", t.clone());
        }
        if let Some(d) = &img.config_digest {
            props.add("pyward:image:config_digest", d.clone());
        }
        if let Some(d) = &img.manifest_digest {
            props.add("pyward:image:manifest_digest", d.clone());
        }
        if let Some(os) = &img.os {
            props.add("pyward:image:os", os.clone());
        }
        if let Some(a) = &img.architecture {
            props.add("pyward:image:architecture", a.clone());
        }
        for l in &img.layers {
            props.add(
                format!("pyward:image:layer:{}:digest", l.index),
                l.digest.clone(),
            );
        }
    }
    root.insert("properties".into(), props.into_value());
    md.insert("component".into(), Value::Object(root));
    let mut props = Props::default();
    props.add("pyward:final_action", report.final_action.as_str());
    props.add("pyward:files_scanned", report.files_scanned.to_string());
    props.add("pyward:warnings", report.warnings.len().to_string());
    md.insert("properties".into(), props.into_value());
    Value::Object(md)
}

/// `installed:dist-info`, `declared:requirements`, `archive:wheel`.
fn source_str(s: &PackageSource) -> String {
    match s {
        PackageSource::Installed(k) => format!("installed:{}", enum_str(k)),
        PackageSource::Declared(k) => format!("declared:{}", enum_str(k)),
        PackageSource::Archive(k) => format!("archive:{}", enum_str(k)),
    }
}

/// The serde name of a unit enum variant (`docker-archive`, `dist-info`).
fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn component(p: &Package, bom_ref: &str) -> Value {
    let mut c = Map::new();
    c.insert("type".into(), json!("library"));
    c.insert("bom-ref".into(), json!(bom_ref));
    c.insert("name".into(), json!(p.name));
    if let Some(v) = &p.version {
        c.insert("version".into(), json!(v));
    }
    if let Some(s) = &p.summary {
        c.insert("description".into(), json!(s));
    }
    if let Some(a) = &p.author {
        c.insert("author".into(), json!(a));
    }
    if let Some(l) = p.license.as_ref().filter(|l| !l.trim().is_empty()) {
        // Free-form METADATA licenses are names, not SPDX expressions.
        c.insert("licenses".into(), json!([{ "license": { "name": l } }]));
    }
    if !p.purl.is_empty() {
        c.insert("purl".into(), json!(p.purl));
    }
    let mut props = Props::default();
    props.add("pyward:source", source_str(&p.source));
    props.add("pyward:name:normalized", p.normalized.clone());
    props.add("pyward:location:0:path", p.location.path.clone());
    if let Some(line) = p.location.line {
        props.add("pyward:location:0:line", line.to_string());
    }
    if let Some(layer) = &p.location.layer {
        props.add("pyward:location:0:layer", layer.digest.clone());
        props.add("pyward:location:0:layer:index", layer.index.to_string());
        if let Some(d) = &layer.diff_id {
            props.add("pyward:location:0:layer:diff_id", d.clone());
        }
        if let Some(by) = &layer.created_by {
            props.add("pyward:location:0:layer:created_by", by.clone());
        }
    }
    if let Some(s) = &p.specifier {
        props.add("pyward:specifier", s.clone());
    }
    if let Some(i) = &p.installer {
        props.add("pyward:installer", i.clone());
    }
    if let Some(u) = &p.direct_url {
        props.add("pyward:direct_url", u.clone());
    }
    for t in &p.top_level {
        props.add("pyward:top_level", t.clone());
    }
    c.insert("properties".into(), props.into_value());
    Value::Object(c)
}

fn cdx_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Info => "info",
    }
}

fn vulnerability(f: &Finding, affected: String) -> Value {
    let mut v = Map::new();
    v.insert("id".into(), json!(record_id(f)));
    v.insert("source".into(), json!({ "name": "pyward" }));
    v.insert(
        "ratings".into(),
        json!([{ "source": { "name": "pyward" }, "severity": cdx_severity(f.severity),
                 "method": "other" }]),
    );
    v.insert("description".into(), json!(f.message));
    if !f.evidence.is_empty() {
        let detail: Vec<String> = f
            .evidence
            .iter()
            .map(|e| format!("{}: {}", e.key, e.value))
            .collect();
        v.insert("detail".into(), json!(detail.join("\n")));
    }
    let advisories: Vec<Value> = f
        .references
        .iter()
        .filter(|r| is_web_url(r))
        .map(|r| json!({ "url": r }))
        .collect();
    if !advisories.is_empty() {
        v.insert("advisories".into(), Value::Array(advisories));
    }
    v.insert("affects".into(), json!([{ "ref": affected }]));
    let mut props = Props::default();
    props.add("pyward:rule_id", f.rule_id.clone());
    props.add("pyward:gate", f.gate.clone());
    props.add("pyward:trigger", f.trigger.clone());
    props.add("pyward:action", f.action.as_str());
    if let Some(path) = &f.path {
        props.add("pyward:path", path.clone());
    }
    for t in &f.mitre {
        props.add("pyward:mitre", t.id.to_string());
    }
    for e in &f.evidence {
        props.add(format!("pyward:evidence:{}", e.key), e.value.clone());
    }
    for r in f.references.iter().filter(|r| !is_web_url(r)) {
        props.add("pyward:reference", r.clone());
    }
    v.insert("properties".into(), props.into_value());
    Value::Object(v)
}

/// A cheap shape check (`YYYY-MM-DDTHH:MM:SS...`) so a malformed time is left out rather than
/// making the whole BOM invalid.
fn looks_like_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    b.len() >= 20
        && digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && matches!(b.get(10), Some(b'T') | Some(b't'))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19)
        && (s.ends_with('Z')
            || s.ends_with('z')
            || s.get(s.len() - 6..).is_some_and(|t| {
                let t = t.as_bytes();
                matches!(t.first(), Some(b'+') | Some(b'-')) && t.get(3) == Some(&b':')
            }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_shape_checked() {
        assert!(looks_like_rfc3339("2026-11-24T10:43:02Z"));
        assert!(looks_like_rfc3339("2026-11-24T10:43:02.123+01:00"));
        assert!(!looks_like_rfc3339("yesterday"));
        assert!(!looks_like_rfc3339("2026-11-24 10:43:02"));
        assert!(!looks_like_rfc3339("2026-11-24T10:43:02é"));
    }
}
