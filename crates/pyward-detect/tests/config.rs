//! Detector configuration from rules files.

use std::path::{Path, PathBuf};

use pyward_detect::config::{from_yaml_str, DetectConfig};
use pyward_detect::{from_yaml_files, DetectError};
use pyward_rules::Priority;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/pyward_detectors.yaml")
}

#[test]
fn shipped_file_is_the_defaults() {
    let cfg = from_yaml_files(&[shipped()]).expect("shipped detectors file loads");
    assert_eq!(
        cfg,
        DetectConfig::default(),
        "rules/pyward_detectors.yaml and the code disagree"
    );
}

#[test]
fn rules_items_are_ignored_and_detectors_read_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    std::fs::write(
        &a,
        "- required_engine_version: 0.26.0\n- list: l\n  items: [a]\n- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: WARNING\n- detector: ransomware\n  threshold: 5\n  decoys: [/srv/decoy.docx]\n",
    )
    .unwrap();
    let b = dir.path().join("b.yaml");
    std::fs::write(&b, "- detector: ransomware\n  append: true\n  decoys: [/home/*/decoy.pdf]\n  priority: error\n- detector: self_delete\n  enabled: false\n").unwrap();
    let cfg = from_yaml_files(&[a, b]).unwrap();
    assert_eq!(cfg.ransomware.threshold, 5.0);
    assert_eq!(cfg.ransomware.decoys.len(), 2);
    assert_eq!(cfg.ransomware.priority, Priority::Error);
    assert!(!cfg.self_delete.enabled);
    assert!(cfg.drift.enabled);
}

fn err(yaml: &str) -> (usize, usize, String) {
    match from_yaml_str(yaml, Path::new("x.yaml")) {
        Err(DetectError::Invalid {
            line,
            column,
            message,
            file,
        }) => {
            assert_eq!(file, Path::new("x.yaml"));
            (line, column, message)
        }
        other => panic!("expected an error for {yaml:?}, got {other:?}"),
    }
}

#[test]
fn errors_have_positions() {
    let (l, c, m) = err("- rule: x\n- detector: ransomware\n  treshold: 3\n");
    assert_eq!((l, c), (3, 3));
    assert!(m.contains("treshold"), "{m}");
    let (l, c, m) = err("- detector: ransomware\n  threshold: lots\n");
    assert_eq!((l, c), (2, 14));
    assert!(m.contains("number"), "{m}");
    let (l, _, m) = err("- detector: antivirus\n");
    assert_eq!(l, 1);
    assert!(m.contains("unknown detector"), "{m}");
    let (_, _, m) = err("- detector: drift\n  priority: SEVERE\n");
    assert!(m.contains("priority"), "{m}");
    let (_, _, m) = err("- detector: ransomware\n  window: -3s\n");
    assert!(m.contains("duration"), "{m}");
    let (_, _, m) = err("- detector: drift\n  allow:\n    - {}\n");
    assert!(m.contains("at least one"), "{m}");
    let (l, _, m) = err("- detector: drift\n  enabled: [\n");
    assert!(l >= 2 && m.contains("YAML"), "{l} {m}");
    let e = from_yaml_files(&[PathBuf::from("/nonexistent/pyward.yaml")]).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/pyward.yaml"), "{e}");
}

#[test]
fn durations() {
    let c = from_yaml_str("- detector: ransomware\n  window: 500ms\n", Path::new("x")).unwrap();
    assert_eq!(c.ransomware.window_ns, 500_000_000);
    let c = from_yaml_str("- detector: ransomware\n  window: 2m\n", Path::new("x")).unwrap();
    assert_eq!(c.ransomware.window_ns, 120_000_000_000);
    let c = from_yaml_str("- detector: ransomware\n  window: 30\n", Path::new("x")).unwrap();
    assert_eq!(c.ransomware.window_ns, 30_000_000_000);
}
