//! The built-in known-malicious list, compiled in from `data/known-malicious.json` so that
//! pyward catches the incidents it was built around with no database at all.

use crate::error::IntelError;
use crate::record::{MaliciousRecord, RecordSource};
use std::sync::OnceLock;

const BUILTIN_JSON: &str = include_str!("../data/known-malicious.json");

/// Parse the embedded list (kept separate from [`records`] so a test can check it parses).
pub(crate) fn parse() -> Result<Vec<MaliciousRecord>, IntelError> {
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(BUILTIN_JSON).map_err(|e| IntelError::Builtin(e.to_string()))?;
    entries
        .into_iter()
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.insert("source".into(), serde_json::json!({"type": "builtin"}));
            }
            serde_json::from_value::<MaliciousRecord>(v)
                .map(|mut r| {
                    r.source = RecordSource::Builtin;
                    r
                })
                .map_err(|e| IntelError::Builtin(e.to_string()))
        })
        .collect()
}

/// The built-in records. The embedded file is checked by a unit test, so it cannot fail to
/// parse in a released build; if it ever did, the list would be empty rather than panicking.
pub fn records() -> &'static [MaliciousRecord] {
    static RECORDS: OnceLock<Vec<MaliciousRecord>> = OnceLock::new();
    RECORDS.get_or_init(|| parse().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Affected;

    #[test]
    fn builtin_parses_and_has_the_incident() {
        let recs = parse().unwrap();
        let jelly = recs.iter().find(|r| r.id == "PYWARD-2019-0001").unwrap();
        assert_eq!(jelly.affected[0].name, "jeIlyfish");
        assert_eq!(jelly.affected[0].affected, Affected::AllVersions);
        assert_eq!(jelly.iocs.ips, vec!["68.183.212.246"]);
        assert_eq!(jelly.iocs.ports, vec![32258]);
        assert_eq!(jelly.iocs.files, vec!["jeIlyfish/_jellyfish.py"]);
        assert_eq!(jelly.source, RecordSource::Builtin);
        assert!(jelly
            .published
            .as_deref()
            .unwrap()
            .starts_with("2019-12-01"));
        let dateutil = recs.iter().find(|r| r.id == "PYWARD-2019-0002").unwrap();
        assert!(dateutil.matches("python3-dateutil", Some("2.8.1")));
        assert!(dateutil.details.contains("jeIlyfish"));
        assert!(dateutil
            .references
            .iter()
            .any(|u| u.contains("dateutil/issues/984")));
        assert_eq!(records().len(), recs.len());
    }
}
