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
    // Score 10 (obfuscated code at import sending ~/.ssh to a raw IP): the default policy's
    // high-risk band stops it.
    assert_eq!(r.code, 1, "{}", r.stderr);
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
    assert_eq!(obf["action"], "STOP");
    assert_eq!(obf["policy"]["rule_id"], "heuristics-high-risk", "{obf:#}");
    // One finding per analyzer finding: the WARN band (5 to 8) does not fire again.
    assert_eq!(
        heur.iter()
            .filter(|f| f["rule_id"] == "heuristics.obfuscated-exec")
            .count(),
        1
    );
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

/// The same payload inside an image layer: the streaming reader keeps only the sources the
/// analyzer's cheap pass cannot clear, and the analysis still sees the payload.
#[test]
fn image_layers_are_analysed_too() {
    use pyward_testkit::image::{ImageBuilder, Layer};
    let sample = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../pyward-analyze/tests/corpus/malicious/jeilyfish/jeIlyfish/_jellyfish.py"),
    )
    .unwrap();
    let sp = "/usr/local/lib/python3.11/site-packages";
    let img = ImageBuilder::new().tag("analyze:1").layer(
        Layer::new()
            .created_by("RUN pip install helpfulutils")
            .file(&format!("{sp}/helpfulutils/__init__.py"), "from .core import *\n")
            .file(&format!("{sp}/helpfulutils/core.py"), sample)
            .file(&format!("{sp}/helpfulutils/clean.py"), "def add(a, b):\n    return a + b\n")
            .file(
                &format!("{sp}/helpfulutils-1.2.0.dist-info/METADATA"),
                "Metadata-Version: 2.1\nName: helpfulutils\nVersion: 1.2.0\nSummary: Helpful utilities\n",
            )
            .file(
                &format!("{sp}/helpfulutils-1.2.0.dist-info/RECORD"),
                "helpfulutils/__init__.py,,\nhelpfulutils/core.py,,\nhelpfulutils/clean.py,,\n",
            ),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img.tar");
    img.write_docker_archive(&path).unwrap();
    let r = run(pyward().args(["scan", "--format", "json"]).arg(&path));
    let v = r.json();
    let findings = v["findings"].as_array().unwrap();
    let obf = findings
        .iter()
        .find(|f| f["rule_id"] == "heuristics.obfuscated-exec")
        .unwrap_or_else(|| panic!("no obfuscated-exec finding: {findings:#?}"));
    assert!(obf["path"]
        .as_str()
        .unwrap()
        .ends_with("helpfulutils/core.py"));
    assert_eq!(obf["layer"]["index"], 0);
    assert!(
        !v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["message"].as_str().unwrap().contains("not analysed")),
        "{:#?}",
        v["warnings"]
    );
}
