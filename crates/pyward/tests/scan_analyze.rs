//! `pyward scan` runs the static analysis (pyward-analyze) over every package's files and the
//! default policy's `heuristics` rule decides on its findings. The payload is the inert
//! jeIlyfish-style corpus sample (documentation addresses only; never run).

mod common;
use common::{pyward, run};
use std::path::Path;

fn venv_with_payload(root: &Path) {
    let sp = root.join("lib/python3.11/site-packages");
    let pkg = sp.join("helpfulutils");
    let dist = sp.join("helpfulutils-1.2.0.dist-info");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::create_dir_all(&dist).unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pyward-analyze/tests/corpus/malicious/jeilyfish/jeIlyfish/_jellyfish.py");
    std::fs::copy(sample, pkg.join("core.py")).unwrap();
    std::fs::write(pkg.join("__init__.py"), "from .core import *\n").unwrap();
    std::fs::write(
        dist.join("METADATA"),
        "Metadata-Version: 2.1\nName: helpfulutils\nVersion: 1.2.0\nSummary: Helpful utilities\n",
    )
    .unwrap();
    std::fs::write(
        dist.join("RECORD"),
        "helpfulutils/__init__.py,,\nhelpfulutils/core.py,,\nhelpfulutils-1.2.0.dist-info/METADATA,,\n",
    )
    .unwrap();
}

#[test]
fn scan_flags_unknown_package_code_through_the_heuristics_gate() {
    let dir = tempfile::tempdir().unwrap();
    venv_with_payload(dir.path());
    let r = run(pyward()
        .args(["scan", "--no-progress", "--format", "json"])
        .arg(dir.path()));
    assert_eq!(r.code, 0, "WARN passes: {}", r.stderr);
    let v = r.json();
    let findings = v["findings"].as_array().unwrap();
    let heur: Vec<_> = findings
        .iter()
        .filter(|f| f["gate"] == "heuristics")
        .collect();
    assert!(!heur.is_empty(), "{findings:#?}");
    let obf = heur
        .iter()
        .find(|f| f["rule_id"] == "heuristics.obfuscated-exec")
        .expect("obfuscated-exec");
    assert_eq!(obf["action"], "WARN");
    assert_eq!(obf["policy"]["rule_id"], "heuristics", "{obf:#}");
    let ev = obf["evidence"].as_array().unwrap();
    assert!(ev
        .iter()
        .any(|e| e["key"] == "decoded.url"
            && e["value"].as_str().unwrap().contains("192.0.2.44:32258")));
    assert!(heur
        .iter()
        .any(|f| f["rule_id"] == "heuristics.exfiltration"));

    let r = run(pyward()
        .args(["scan", "--no-progress", "--no-analyze", "--format", "json"])
        .arg(dir.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert!(!v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["gate"] == "heuristics"));
}
