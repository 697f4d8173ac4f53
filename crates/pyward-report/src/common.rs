//! Helpers shared by the renderers: stable ordering, fingerprints, shortening.

use md5::{Digest, Md5};
use pyward_core::{Finding, ScanReport, Severity, TargetKind};
use std::cmp::Ordering;

/// The findings in the order every renderer shows them: by effective action (STOP first), then
/// package, then path, then rule and message, so the same report always renders the same way.
pub(crate) fn sorted_findings(report: &ScanReport) -> Vec<&Finding> {
    let mut v: Vec<&Finding> = report.findings.iter().collect();
    v.sort_by(|a, b| compare_findings(a, b));
    v
}

fn compare_findings(a: &Finding, b: &Finding) -> Ordering {
    a.effective_action()
        .cmp(&b.effective_action())
        .then_with(|| package_key(a).cmp(&package_key(b)))
        .then_with(|| a.path.cmp(&b.path))
        .then_with(|| a.line.cmp(&b.line))
        .then_with(|| b.severity.cmp(&a.severity))
        .then_with(|| a.rule_id.cmp(&b.rule_id))
        .then_with(|| a.message.cmp(&b.message))
}

/// Sort key of a finding's package; findings without one sort after those with one.
fn package_key(f: &Finding) -> (bool, &str, &str, &str) {
    match &f.package {
        Some(p) => (
            false,
            p.normalized.as_str(),
            p.name.as_str(),
            p.version.as_deref().unwrap_or(""),
        ),
        None => (true, "", "", ""),
    }
}

/// A stable identity for a finding across runs: md5 of rule, package and path. The message is
/// left out on purpose, so rewording a message does not reopen a dismissed alert.
pub(crate) fn fingerprint(f: &Finding) -> String {
    let mut h = Md5::new();
    h.update(f.rule_id.as_bytes());
    h.update([0]);
    if let Some(p) = &f.package {
        h.update(p.normalized.as_bytes());
        h.update(b"@");
        h.update(p.version.as_deref().unwrap_or("").as_bytes());
    }
    h.update([0]);
    h.update(f.path.as_deref().unwrap_or("").as_bytes());
    hex::encode(h.finalize())
}

/// Whether the target is a container image (paths in it are absolute paths of the image).
pub(crate) fn is_image(kind: TargetKind) -> bool {
    matches!(
        kind,
        TargetKind::DockerArchive | TargetKind::OciLayout | TargetKind::OciArchive
    )
}

/// `history[].created_by` without the shell wrapper, whitespace collapsed, at most `max` chars.
pub(crate) fn shorten_created_by(created_by: &str, max: usize) -> String {
    let mut s = created_by.trim();
    for prefix in ["/bin/sh -c #(nop) ", "/bin/sh -c ", "|"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            s = rest.trim_start();
        }
    }
    let collapsed = s.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate_chars(&collapsed, max)
}

/// At most `max` characters, with `…` as the last one when cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Short form of a digest for people: `sha256:0123456789ab`.
pub(crate) fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algo, hex)) => format!("{algo}:{}", truncate_plain(hex, 12)),
        None => truncate_plain(digest, 19),
    }
}

fn truncate_plain(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The CVSS-like score GitHub code scanning reads from `security-severity`.
pub(crate) fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// Whether a finding says the package itself is malicious or impersonates another (what
/// CycloneDX calls a vulnerability of the component).
pub(crate) fn is_malicious_package_finding(f: &Finding) -> bool {
    let id = f.rule_id.to_ascii_lowercase();
    let trigger = f.trigger.to_ascii_lowercase().replace('-', "_");
    id.contains("known-malicious")
        || id.contains("known_malicious")
        || id.contains("typosquat")
        || matches!(
            trigger.as_str(),
            "known_malicious" | "typosquat" | "blacklist"
        )
}

/// The advisory id behind a finding: an evidence entry named like an id, else the first
/// reference that is an id rather than a URL (`MAL-2022-1234`, `GHSA-...`), else the rule id.
pub(crate) fn record_id(f: &Finding) -> String {
    for e in &f.evidence {
        if matches!(
            e.key.as_str(),
            "record" | "record_id" | "osv_id" | "advisory" | "id"
        ) && is_plain_id(&e.value)
        {
            return e.value.clone();
        }
    }
    f.references
        .iter()
        .find(|r| is_plain_id(r))
        .cloned()
        .unwrap_or_else(|| f.rule_id.clone())
}

fn is_plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.contains("://")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// A reference that is a plain http(s) URL safe to place in a URI field.
pub(crate) fn is_web_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() <= 2048
        && s.chars().all(|c| c.is_ascii_graphic())
        && !s.contains(['"', '<', '>', '\\', '^', '`', '{', '|', '}'])
}

/// Human text for a rule id pyward knows; `None` for others.
pub(crate) fn rule_description(rule_id: &str) -> Option<(&'static str, &'static str)> {
    Some(match rule_id {
        "intel.known-malicious" => (
            "Known-malicious Python package",
            "The package (name and version) is listed as malicious by pyward's built-in \
             intelligence or an imported OSV record. Remove it and treat any system it ran on as \
             compromised: rotate credentials it could reach.",
        ),
        "names.typosquat" => (
            "Python package name imitates a popular package",
            "The package name is a look-alike of a popular PyPI package (one edit away, \
             confusable characters, a py/python prefix or suffix, reordered words or a filler \
             word). Check that the dependency is the one you meant to install.",
        ),
        "intel.ioc" | "files.ioc" => (
            "Indicator of compromise found",
            "A file, address or hash known from a malicious package was found in the target.",
        ),
        "packages.blacklist" => (
            "Blacklisted Python package",
            "The package is on the policy's blacklist.",
        ),
        "dockerfile.instruction" => (
            "Dockerfile instruction matched a policy rule",
            "A Dockerfile instruction (possibly reconstructed from the image history) installs \
             or runs something a policy rule forbids.",
        ),
        "files.name_match" => (
            "File name matched a policy rule",
            "A file whose name matches a forbidden pattern was found in the target.",
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_by_is_shortened() {
        assert_eq!(
            shorten_created_by("/bin/sh -c #(nop)  CMD [\"python3\"]", 80),
            "CMD [\"python3\"]"
        );
        assert_eq!(
            shorten_created_by("/bin/sh -c pip install   python3-dateutil", 80),
            "pip install python3-dateutil"
        );
        let long = shorten_created_by(&format!("RUN {}", "x".repeat(200)), 20);
        assert_eq!(long.chars().count(), 20);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn digests_are_shortened() {
        assert_eq!(
            short_digest(&format!("sha256:{}", "ab".repeat(32))),
            "sha256:abababababab"
        );
        assert_eq!(short_digest("weird"), "weird");
    }

    #[test]
    fn record_ids_prefer_ids_over_urls() {
        let f = Finding::new(
            "intel.known-malicious",
            "intel",
            "known_malicious",
            pyward_core::Action::Stop,
            Severity::Critical,
            "m",
        );
        assert_eq!(record_id(&f), "intel.known-malicious");
        let mut g = f.clone();
        g.references = vec!["https://example.invalid/a".into(), "MAL-2022-42".into()];
        assert_eq!(record_id(&g), "MAL-2022-42");
        let g = g.with_evidence("record", "PYWARD-0001");
        assert_eq!(record_id(&g), "PYWARD-0001");
        let h = f.with_evidence("record", "not an id; rm -rf /");
        assert_eq!(record_id(&h), "intel.known-malicious");
    }

    #[test]
    fn urls_are_checked() {
        assert!(is_web_url("https://osv.dev/vulnerability/MAL-2022-1"));
        assert!(!is_web_url("javascript:alert(1)"));
        assert!(!is_web_url("https://x.invalid/a b"));
        assert!(!is_web_url("https://x.invalid/\u{202e}"));
    }
}
