//! OSV record parsing: one OSV JSON document → a [`MaliciousRecord`] for its PyPI packages.
//!
//! Parsing goes through `serde_json::Value` so that a record of the wrong shape is reported with
//! what is wrong instead of failing as a whole; unknown fields are ignored (the OSV schema grows).

use crate::record::{
    Affected, AffectedPackage, Iocs, MaliciousRecord, RangeEvent, RecordKind, RecordSource,
    VersionRange,
};
use serde_json::Value;
use std::net::IpAddr;

/// Most entries kept per IOC list and per version list of one record: bounds memory on hostile
/// input while being far above what real records carry.
const MAX_LIST: usize = 10_000;

/// What parsing one OSV document gave.
#[derive(Debug)]
pub enum Parsed {
    /// A record with at least one PyPI package.
    Record(Box<MaliciousRecord>),
    /// A valid record about other ecosystems only.
    OtherEcosystem,
}

/// Parse one OSV JSON document. `file` names it in the record's source and in errors.
pub fn parse(bytes: &[u8], file: &str) -> Result<Parsed, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    parse_value(&v, file)
}

pub fn parse_value(v: &Value, file: &str) -> Result<Parsed, String> {
    let obj = v
        .as_object()
        .ok_or("not an OSV record: expected a JSON object")?;
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or("OSV record without an `id`")?;
    if id.len() > 256 {
        return Err("OSV `id` longer than 256 characters".into());
    }
    let affected = obj
        .get("affected")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{id}: no `affected` list"))?;
    let mut packages = Vec::new();
    for (i, a) in affected.iter().enumerate() {
        let pkg = a.get("package");
        let eco = pkg
            .and_then(|p| p.get("ecosystem"))
            .and_then(Value::as_str)
            .unwrap_or("");
        // OSV ecosystems may carry a suffix (`Debian:11`); PyPI has none, compare the base.
        if !eco
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("pypi")
        {
            continue;
        }
        let name = pkg
            .and_then(|p| p.get("name"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{id}: affected[{i}] has no package name"))?;
        packages.push(AffectedPackage {
            name: name.to_string(),
            affected: parse_affected(a),
        });
    }
    if packages.is_empty() {
        return Ok(Parsed::OtherEcosystem);
    }
    let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
    let summary = s("summary").unwrap_or_default();
    let details = s("details").unwrap_or_default();
    let aliases = strings(obj.get("aliases"));
    let db = obj.get("database_specific");
    let origins = db
        .and_then(|d| d.get("malicious-packages-origins"))
        .and_then(Value::as_array);
    let is_mal = |x: &str| x.trim().to_ascii_uppercase().starts_with("MAL-");
    let lower = summary.trim().to_ascii_lowercase();
    let kind = if is_mal(id)
        || aliases.iter().any(|a| is_mal(a))
        || origins.is_some()
        || lower.starts_with("malicious ")
        || lower.starts_with("malware ")
    {
        RecordKind::Malicious
    } else {
        RecordKind::Vulnerability
    };
    let references = obj
        .get("references")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("url").and_then(Value::as_str))
                .take(MAX_LIST)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut iocs = Iocs::default();
    if let Some(i) = db.and_then(|d| d.get("iocs")) {
        add_iocs(&mut iocs, i);
    }
    for o in origins.into_iter().flatten() {
        if let Some(i) = o.get("iocs") {
            add_iocs(&mut iocs, i);
        }
        if let Some(h) = o.get("sha256").and_then(Value::as_str) {
            push_unique(&mut iocs.sha256, h.trim().to_ascii_lowercase());
        }
    }
    Ok(Parsed::Record(Box::new(MaliciousRecord {
        id: id.to_string(),
        aliases,
        summary,
        details,
        affected: packages,
        references,
        iocs,
        source: RecordSource::Osv {
            file: file.to_string(),
        },
        published: s("published"),
        modified: s("modified"),
        withdrawn: s("withdrawn"),
        kind,
    })))
}

/// An `affected[]` entry's versions: `versions` plus `ECOSYSTEM` ranges. A lone
/// `introduced: "0"` range means every version. An entry with neither (or only GIT/SEMVER
/// ranges, which do not apply to PyPI) is taken as every version: for a malicious-package
/// record, the package exists to be malicious.
fn parse_affected(a: &Value) -> Affected {
    let versions: Vec<String> = strings(a.get("versions"));
    let mut ranges = Vec::new();
    for r in a
        .get("ranges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ty = r.get("type").and_then(Value::as_str).unwrap_or("");
        if !ty.eq_ignore_ascii_case("ECOSYSTEM") {
            continue;
        }
        let mut events = Vec::new();
        for e in r
            .get("events")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .take(MAX_LIST)
        {
            let get = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
            if let Some(v) = get("introduced") {
                events.push(RangeEvent::Introduced(v));
            } else if let Some(v) = get("fixed") {
                events.push(RangeEvent::Fixed(v));
            } else if let Some(v) = get("last_affected") {
                events.push(RangeEvent::LastAffected(v));
            } else if let Some(v) = get("limit") {
                events.push(RangeEvent::Limit(v));
            }
        }
        if !events.is_empty() {
            ranges.push(VersionRange { events });
        }
    }
    if (versions.is_empty() && ranges.is_empty()) || ranges.iter().any(VersionRange::is_all) {
        Affected::AllVersions
    } else {
        Affected::Specific { versions, ranges }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .take(MAX_LIST)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn push_unique(list: &mut Vec<String>, v: String) {
    if !v.is_empty() && list.len() < MAX_LIST && !list.contains(&v) {
        list.push(v);
    }
}

/// `{"domains":[..],"urls":[..],"ip_addresses":[..]}`; addresses with a `/` are CIDRs.
fn add_iocs(iocs: &mut Iocs, v: &Value) {
    for d in strings(v.get("domains")) {
        push_unique(&mut iocs.domains, d.trim().to_ascii_lowercase());
    }
    for u in strings(v.get("urls")) {
        push_unique(&mut iocs.urls, u.trim().to_string());
    }
    for ip in strings(v.get("ip_addresses")) {
        let ip = ip.trim().to_string();
        if ip.contains('/') {
            push_unique(&mut iocs.cidrs, ip);
        } else if ip.parse::<IpAddr>().is_ok() {
            push_unique(&mut iocs.ips, ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(p: Parsed) -> MaliciousRecord {
        match p {
            Parsed::Record(r) => *r,
            Parsed::OtherEcosystem => panic!("expected a PyPI record"),
        }
    }

    #[test]
    fn ossf_example() {
        let doc = br#"{"id":"MAL-2024-4720","summary":"Malicious code in 1337test (PyPI)",
          "modified":"2024-07-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"1337test"},"versions":["1"]}],
          "references":[{"type":"WEB","url":"https://example.invalid/r"}],
          "database_specific":{"malicious-packages-origins":[{"source":"x","sha256":"ABC"}],
          "iocs":{"domains":["Evil.example"],"urls":["http://evil.example/x"],"ip_addresses":["192.0.2.7","198.51.100.0/24","nonsense"]}}}"#;
        let r = rec(parse(doc, "f.json").unwrap());
        assert_eq!(r.id, "MAL-2024-4720");
        assert_eq!(r.kind, RecordKind::Malicious);
        assert_eq!(r.iocs.ips, vec!["192.0.2.7"]);
        assert_eq!(r.iocs.cidrs, vec!["198.51.100.0/24"]);
        assert_eq!(r.iocs.domains, vec!["evil.example"]);
        assert_eq!(r.iocs.sha256, vec!["abc"]);
        assert_eq!(r.references, vec!["https://example.invalid/r"]);
        assert!(r.matches("1337test", Some("1")));
        assert!(!r.matches("1337test", Some("2")));
    }

    #[test]
    fn all_versions_and_other_ecosystems() {
        let doc = br#"{"id":"MAL-1","affected":[{"package":{"ecosystem":"PyPI","name":"X_y"},
            "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}]}]}"#;
        let r = rec(parse(doc, "f").unwrap());
        assert_eq!(r.affected[0].affected, Affected::AllVersions);
        assert!(r.matches("x-y", Some("99")));
        let npm = br#"{"id":"MAL-2","affected":[{"package":{"ecosystem":"npm","name":"x"}}]}"#;
        assert!(matches!(parse(npm, "f").unwrap(), Parsed::OtherEcosystem));
    }

    #[test]
    fn vulnerability_is_not_malicious() {
        let doc = br#"{"id":"PYSEC-2023-1","summary":"Requests leaks a header","affected":[{"package":{"ecosystem":"PyPI","name":"requests"},
            "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.31.0"}]}]}]}"#;
        let r = rec(parse(doc, "f").unwrap());
        assert_eq!(r.kind, RecordKind::Vulnerability);
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        for doc in [
            &b"[]"[..],
            b"{}",
            b"{\"id\":5}",
            b"{\"id\":\"\"}",
            b"{\"id\":\"X\"}",
            b"{\"id\":\"X\",\"affected\":[{\"package\":{\"ecosystem\":\"PyPI\"}}]}",
            b"{\"id\":\"X\",\"affected\":{",
            b"\xff\xfe",
        ] {
            assert!(parse(doc, "f").is_err(), "{}", String::from_utf8_lossy(doc));
        }
        // Wrong-typed optional fields are ignored, not fatal.
        let doc = br#"{"id":"MAL-3","aliases":7,"references":"x","database_specific":{"iocs":[1]},
            "affected":[{"package":{"ecosystem":"PyPI","name":"a"},"versions":[1,"2"],"ranges":[{"type":"ECOSYSTEM","events":"x"}]}]}"#;
        let r = rec(parse(doc, "f").unwrap());
        assert!(r.matches("a", Some("2")));
        assert!(!r.matches("a", Some("1")));
    }
}
