//! The pyward JSON report: the [`ScanReport`] as serialised by serde, plus a few conveniences the
//! documented schema promises (docs/report-schema.md, docs/report.schema.json).

use pyward_core::ScanReport;
use serde_json::{Map, Value};

/// The JSON value of the report, as documented in docs/report-schema.md:
/// - each package gets a top-level `layer` (a copy of `location.layer`) when it is known;
/// - each finding always has `mitre` (possibly empty) and `path` (possibly null), so consumers
///   need no existence checks for the fields the schema calls required.
pub fn to_value(report: &ScanReport) -> Value {
    let mut value = match serde_json::to_value(report) {
        Ok(v) => v,
        // The report types serialise infallibly (string keys only); keep a clear answer anyway.
        Err(e) => return error_value(&e.to_string()),
    };
    if let Some(packages) = value.get_mut("packages").and_then(Value::as_array_mut) {
        for p in packages.iter_mut().filter_map(Value::as_object_mut) {
            let layer = p.get("location").and_then(|l| l.get("layer")).cloned();
            if let Some(layer) = layer {
                p.insert("layer".into(), layer);
            }
        }
    }
    if let Some(findings) = value.get_mut("findings").and_then(Value::as_array_mut) {
        for f in findings.iter_mut().filter_map(Value::as_object_mut) {
            f.entry("mitre").or_insert_with(|| Value::Array(Vec::new()));
            f.entry("path").or_insert(Value::Null);
            f.entry("package").or_insert(Value::Null);
        }
    }
    value
}

/// The report as pretty-printed JSON, ending with a newline.
pub fn render(report: &ScanReport) -> String {
    let mut s = serde_json::to_string_pretty(&to_value(report))
        .unwrap_or_else(|e| error_value(&e.to_string()).to_string());
    s.push('\n');
    s
}

fn error_value(message: &str) -> Value {
    let mut m = Map::new();
    m.insert("error".into(), Value::String(format!("pyward could not serialise the report: {message}")));
    Value::Object(m)
}
