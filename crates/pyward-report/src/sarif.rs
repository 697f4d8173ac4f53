//! SARIF 2.1.0, shaped for GitHub code scanning: one rule per distinct `rule_id` with a
//! `security-severity`, one result per finding with a relative artifact URI, a region, and a
//! partial fingerprint that stays the same across runs.

use crate::common::{
    fingerprint, is_image, is_web_url, rule_description, security_severity, sorted_findings,
};
use pyward_core::{Action, Finding, ScanReport, Severity, TargetKind};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// The `$schema` of the log.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Where pyward is documented (the workspace `repository`).
pub(crate) const INFORMATION_URI: &str = env!("CARGO_PKG_REPOSITORY");

/// Name of the partial fingerprint pyward computes (md5 of rule, package and path).
pub const FINGERPRINT_NAME: &str = "pywardFinding/v1";

/// SARIF level of an action: STOP → error, WARN → warning, GO → note.
pub fn level(a: Action) -> &'static str {
    match a {
        Action::Stop => "error",
        Action::Warn => "warning",
        Action::Go => "note",
    }
}

/// The SARIF log as a JSON value.
pub fn to_value(report: &ScanReport) -> Value {
    let findings = sorted_findings(report);
    let rules = Rules::collect(&findings);
    let results: Vec<Value> = findings.iter().map(|f| result(report, f, &rules)).collect();

    let mut run = Map::new();
    let mut driver = Map::new();
    driver.insert("name".into(), json!("pyward"));
    driver.insert("version".into(), json!(report.tool.version));
    if is_web_url(INFORMATION_URI) {
        driver.insert("informationUri".into(), json!(INFORMATION_URI));
    }
    driver.insert("rules".into(), Value::Array(rules.to_values()));
    run.insert("tool".into(), json!({ "driver": driver }));
    if let Some(bases) = original_uri_base_ids(report) {
        run.insert("originalUriBaseIds".into(), bases);
    }
    run.insert("invocations".into(), json!([invocation(report)]));
    run.insert("results".into(), Value::Array(results));
    run.insert(
        "properties".into(),
        json!({
            "target": report.target.name,
            "targetKind": report.target.kind,
            "finalAction": report.final_action,
            "generatedAt": report.generated_at,
        }),
    );
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [Value::Object(run)],
    })
}

/// The SARIF log, pretty-printed, ending with a newline.
pub fn render(report: &ScanReport) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(report)).unwrap_or_default();
    s.push('\n');
    s
}

/// What one rule summarises from its findings.
struct Rule<'a> {
    id: &'a str,
    gate: &'a str,
    trigger: &'a str,
    worst_action: Action,
    worst_severity: Severity,
    mitre: BTreeSet<&'a str>,
}

/// The distinct rules, in order of first appearance among the sorted findings.
struct Rules<'a>(Vec<Rule<'a>>);

impl<'a> Rules<'a> {
    fn collect(findings: &[&'a Finding]) -> Self {
        let mut rules: Vec<Rule<'a>> = Vec::new();
        for f in findings {
            let rule = match rules.iter_mut().position(|r| r.id == f.rule_id) {
                Some(i) => &mut rules[i],
                None => {
                    rules.push(Rule {
                        id: &f.rule_id,
                        gate: &f.gate,
                        trigger: &f.trigger,
                        worst_action: f.action,
                        worst_severity: f.severity,
                        mitre: BTreeSet::new(),
                    });
                    let last = rules.len() - 1;
                    &mut rules[last]
                }
            };
            rule.worst_action = rule.worst_action.min(f.action);
            rule.worst_severity = rule.worst_severity.max(f.severity);
            rule.mitre.extend(f.mitre.iter().map(|t| t.id.as_ref()));
        }
        Rules(rules)
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.0.iter().position(|r| r.id == id)
    }

    fn to_values(&self) -> Vec<Value> {
        self.0.iter().map(rule_value).collect()
    }
}

fn rule_value(r: &Rule<'_>) -> Value {
    let (short, full) = match rule_description(r.id) {
        Some((s, f)) => (s.to_string(), f.to_string()),
        None => (
            format!("pyward check {}", r.id),
            format!(
                "pyward check {} (gate `{}`, trigger `{}`).",
                r.id, r.gate, r.trigger
            ),
        ),
    };
    let mut tags = vec!["security".to_string(), "supply-chain".to_string()];
    tags.extend(r.mitre.iter().map(|id| id.to_string()));
    tags.extend(r.mitre.iter().map(|id| format!("external/mitre/{id}")));
    let mut rule = json!({
        "id": r.id,
        "name": camel_case(r.id),
        "shortDescription": { "text": short },
        "fullDescription": { "text": full },
        "help": { "text": full },
        "defaultConfiguration": { "level": level(r.worst_action) },
        "properties": {
            "tags": tags,
            "security-severity": security_severity(r.worst_severity),
            "gate": r.gate,
            "trigger": r.trigger,
        },
    });
    if let (Some(id), Some(obj)) = (r.mitre.iter().next(), rule.as_object_mut()) {
        // The first technique's page explains the attack the rule is about.
        let url = format!(
            "https://attack.mitre.org/techniques/{}/",
            id.replace('.', "/")
        );
        if is_web_url(&url) {
            obj.insert("helpUri".into(), json!(url));
        }
    }
    rule
}

/// `intel.known-malicious` → `IntelKnownMalicious`.
fn camel_case(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(c) => c.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

fn result(report: &ScanReport, f: &Finding, rules: &Rules<'_>) -> Value {
    let mut r = Map::new();
    r.insert("ruleId".into(), json!(f.rule_id));
    if let Some(i) = rules.index_of(&f.rule_id) {
        r.insert("ruleIndex".into(), json!(i));
    }
    r.insert("level".into(), json!(level(f.action)));
    r.insert("message".into(), json!({ "text": message_text(f) }));
    r.insert(
        "locations".into(),
        json!([{
            "physicalLocation": {
                "artifactLocation": artifact_location(report, f.path.as_deref()),
                "region": { "startLine": f.line.filter(|l| *l >= 1).unwrap_or(1) },
            }
        }]),
    );
    r.insert(
        "partialFingerprints".into(),
        json!({ FINGERPRINT_NAME: fingerprint(f) }),
    );
    if let Some(by) = f.policy.as_ref().and_then(|m| m.allowlisted_by.as_ref()) {
        r.insert(
            "suppressions".into(),
            json!([{ "kind": "external", "status": "accepted",
                     "justification": format!("allowlisted by {by}") }]),
        );
    }
    let mut props = Map::new();
    props.insert("gate".into(), json!(f.gate));
    props.insert("trigger".into(), json!(f.trigger));
    props.insert("action".into(), json!(f.action));
    props.insert("severity".into(), json!(f.severity));
    if let Some(p) = &f.package {
        props.insert("package".into(), json!(p.name));
        props.insert("normalized".into(), json!(p.normalized));
        if let Some(v) = &p.version {
            props.insert("version".into(), json!(v));
        }
        props.insert("purl".into(), json!(p.purl));
    }
    if let Some(layer) = &f.layer {
        props.insert("layer".into(), json!(layer));
    }
    if !f.mitre.is_empty() {
        props.insert(
            "mitre".into(),
            json!(f.mitre.iter().map(|t| &t.id).collect::<Vec<_>>()),
        );
    }
    if !f.evidence.is_empty() {
        props.insert("evidence".into(), json!(f.evidence));
    }
    if !f.references.is_empty() {
        props.insert("references".into(), json!(f.references));
    }
    if let Some(policy) = &f.policy {
        props.insert("policy".into(), json!(policy));
    }
    r.insert("properties".into(), Value::Object(props));
    Value::Object(r)
}

/// The message, with the package and layer spelled out since code scanning shows only this.
fn message_text(f: &Finding) -> String {
    let mut s = f.message.clone();
    if let Some(layer) = &f.layer {
        s.push_str(&format!(" (image layer {}", layer.index));
        if let Some(by) = &layer.created_by {
            s.push_str(&format!(": {}", crate::common::shorten_created_by(by, 80)));
        }
        s.push(')');
    }
    if s.trim().is_empty() {
        s = format!("{} ({}/{})", f.rule_id, f.gate, f.trigger);
    }
    s
}

/// An artifact location GitHub accepts: a relative, percent-encoded URI. Image paths (and
/// absolute paths of a scanned root filesystem) are relative to `ROOTPATH`; other absolute
/// paths become `file://` URIs; a finding without a path points at the target itself.
fn artifact_location(report: &ScanReport, path: Option<&str>) -> Value {
    let image = is_image(report.target.kind);
    let path = path.filter(|p| !p.trim_matches('/').is_empty());
    match path {
        Some(p) if image || (p.starts_with('/') && report.target.kind == TargetKind::Directory) => {
            json!({ "uri": encode_uri_path(p.trim_start_matches('/')), "uriBaseId": "ROOTPATH" })
        }
        Some(p) if p.starts_with('/') => json!({ "uri": format!("file://{}", encode_uri_path(p)) }),
        Some(p) => json!({ "uri": encode_uri_path(p) }),
        None => {
            let name = report.target.name.as_str();
            if name.starts_with('/') {
                json!({ "uri": format!("file://{}", encode_uri_path(name)) })
            } else if name.trim().is_empty() {
                json!({ "uri": "." })
            } else {
                json!({ "uri": encode_uri_path(name) })
            }
        }
    }
}

/// `ROOTPATH` is the root of the image (or of the scanned root filesystem).
fn original_uri_base_ids(report: &ScanReport) -> Option<Value> {
    if is_image(report.target.kind) {
        return Some(json!({ "ROOTPATH": { "uri": "file:///" } }));
    }
    let name = report.target.name.trim_end_matches('/');
    if report.target.kind == TargetKind::Directory && name.starts_with('/') {
        return Some(
            json!({ "ROOTPATH": { "uri": format!("file://{}/", encode_uri_path(name)) } }),
        );
    }
    None
}

/// Warnings become tool execution notifications: the scan succeeded, with these gaps.
fn invocation(report: &ScanReport) -> Value {
    let notes: Vec<Value> = report
        .warnings
        .iter()
        .map(|w| json!({ "level": "warning", "message": { "text": w.to_string() } }))
        .collect();
    let mut inv = json!({ "executionSuccessful": true });
    if let (false, Some(obj)) = (notes.is_empty(), inv.as_object_mut()) {
        obj.insert("toolExecutionNotifications".into(), Value::Array(notes));
    }
    inv
}

/// Percent-encode a path for a URI: keeps unreserved characters, `/` and the sub-delimiters
/// safe in a path (so `x.whl!pkg/mod.py` stays readable); encodes `:` so a relative reference
/// never looks like a scheme, and everything else (spaces, `%`, `?`, `#`, non-ASCII) as UTF-8.
pub fn encode_uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'/'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'@'
            )
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_encoded() {
        assert_eq!(
            encode_uri_path("usr/lib/a b/ü?#%.py"),
            "usr/lib/a%20b/%C3%BC%3F%23%25.py"
        );
        assert_eq!(encode_uri_path("C:x/y"), "C%3Ax/y");
        assert_eq!(
            encode_uri_path("dist/x.whl!x/__init__.py"),
            "dist/x.whl!x/__init__.py"
        );
    }

    #[test]
    fn camel() {
        assert_eq!(camel_case("intel.known-malicious"), "IntelKnownMalicious");
        assert_eq!(camel_case("..."), "");
    }
}
