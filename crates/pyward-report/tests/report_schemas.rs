//! Validation of the real output against the official SARIF 2.1.0 and CycloneDX 1.5 JSON schemas
//! and against docs/report.schema.json, with Python's `jsonschema`, offline.
//!
//! Runs when PYWARD_SCHEMA_TESTS=1 (CI sets it after scripts/setup-schema-validation.sh); then a
//! missing set-up is a failure, never a skip. Without the variable the tests say so and pass.

mod support;

use pyward_core::ScanReport;
use pyward_report::{render, Format, RenderOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

fn enabled() -> bool {
    let on = std::env::var("PYWARD_SCHEMA_TESTS").is_ok_and(|v| v == "1");
    if !on {
        eprintln!(
            "schema validation not run: set PYWARD_SCHEMA_TESTS=1 after \
             scripts/setup-schema-validation.sh"
        );
    }
    on
}

/// The venv's Python: $PYWARD_SCHEMA_PYTHON, else $PYWARD_SCHEMA_VENV/bin/python, else
/// ~/.cache/pyward/schema-venv/bin/python.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PYWARD_SCHEMA_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = std::env::var_os("PYWARD_SCHEMA_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            Path::new(&home).join(".cache/pyward/schema-venv")
        });
    let py = venv.join("bin/python");
    assert!(
        py.exists(),
        "PYWARD_SCHEMA_TESTS=1 but {} does not exist: run scripts/setup-schema-validation.sh",
        py.display()
    );
    py
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Write each (kind, report, format) to a file and validate them all in one Python run.
fn validate(cases: &[(&str, &ScanReport, Format)]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = manifest_dir().join("../../docs/report.schema.json");
    let mut cmd = Command::new(python());
    cmd.arg(manifest_dir().join("tests/validate_schemas.py"))
        .arg("--pyward-schema")
        .arg(&schema);
    for (i, (kind, report, format)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("{i}-{kind}.json"));
        let text = render(report, *format, &RenderOptions::default());
        std::fs::write(&file, text).expect("write report");
        cmd.arg(format!("{kind}:{}", file.display()));
    }
    let out = cmd.output().expect("run the schema validator");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schema validation failed:\n{stdout}\n{stderr}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.contains(": valid ")).count(),
        cases.len(),
        "{stdout}"
    );
    stdout
}

/// A hostile report whose time is well-formed (the producer always writes RFC 3339).
fn hostile_with_time() -> ScanReport {
    let mut r = support::hostile_report();
    r.generated_at = "2026-11-24T10:43:02Z".into();
    r
}

#[test]
fn sarif_validates_against_the_official_schema() {
    if !enabled() {
        return;
    }
    let (a, b, c) = (
        support::incident_report(),
        support::clean_report(3),
        support::hostile_report(),
    );
    validate(&[
        ("sarif", &a, Format::Sarif),
        ("sarif", &b, Format::Sarif),
        ("sarif", &c, Format::Sarif),
    ]);
}

#[test]
fn cyclonedx_validates_against_the_official_schema() {
    if !enabled() {
        return;
    }
    let (a, b, c) = (
        support::incident_report(),
        support::clean_report(3),
        support::hostile_report(),
    );
    validate(&[
        ("cyclonedx", &a, Format::CycloneDx),
        ("cyclonedx", &b, Format::CycloneDx),
        ("cyclonedx", &c, Format::CycloneDx),
    ]);
}

#[test]
fn json_validates_against_the_documented_schema_strictly() {
    if !enabled() {
        return;
    }
    let (a, b, c) = (
        support::incident_report(),
        support::clean_report(3),
        hostile_with_time(),
    );
    // Strict: every field written is documented (additionalProperties=false everywhere).
    validate(&[
        ("pyward-strict", &a, Format::Json),
        ("pyward-strict", &b, Format::Json),
        ("pyward-strict", &c, Format::Json),
        ("pyward", &a, Format::Json),
    ]);
}

#[test]
fn the_documented_example_is_valid() {
    if !enabled() {
        return;
    }
    let md = std::fs::read_to_string(manifest_dir().join("../../docs/report-schema.md"))
        .expect("docs/report-schema.md");
    let start = md
        .find("```json\n")
        .expect("a json example in docs/report-schema.md")
        + 8;
    let len = md[start..].find("```").expect("the example ends");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("example.json");
    std::fs::write(&file, &md[start..start + len]).expect("write");
    let out = Command::new(python())
        .arg(manifest_dir().join("tests/validate_schemas.py"))
        .arg("--pyward-schema")
        .arg(manifest_dir().join("../../docs/report.schema.json"))
        .arg(format!("pyward-strict:{}", file.display()))
        .output()
        .expect("run the schema validator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_validator_rejects_invalid_documents() {
    if !enabled() {
        return;
    }
    // Guard against a validator that accepts anything: break each format and expect failure.
    let dir = tempfile::tempdir().expect("temp dir");
    let r = support::incident_report();
    let mut sarif: serde_json::Value =
        serde_json::from_str(&render(&r, Format::Sarif, &RenderOptions::default())).expect("json");
    sarif["runs"][0]["results"][0]["level"] = "fatal".into();
    let mut cdx: serde_json::Value =
        serde_json::from_str(&render(&r, Format::CycloneDx, &RenderOptions::default()))
            .expect("json");
    cdx["components"][0]["type"] = "lib".into();
    let mut json: serde_json::Value =
        serde_json::from_str(&render(&r, Format::Json, &RenderOptions::default())).expect("json");
    json["final_action"] = "MAYBE".into();
    let mut undocumented = serde_json::from_str::<serde_json::Value>(&render(
        &r,
        Format::Json,
        &RenderOptions::default(),
    ))
    .expect("json");
    undocumented["packages"][0]["surprise"] = 1.into();
    let schema = manifest_dir().join("../../docs/report.schema.json");
    for (kind, doc) in [
        ("sarif", sarif),
        ("cyclonedx", cdx),
        ("pyward", json),
        ("pyward-strict", undocumented),
    ] {
        let file = dir.path().join(format!("{kind}.json"));
        std::fs::write(&file, doc.to_string()).expect("write");
        let out = Command::new(python())
            .arg(manifest_dir().join("tests/validate_schemas.py"))
            .arg("--pyward-schema")
            .arg(&schema)
            .arg(format!("{kind}:{}", file.display()))
            .output()
            .expect("run the schema validator");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{kind} should be invalid: {stdout}"
        );
        assert!(stdout.contains(" at "), "{stdout}");
    }
}
