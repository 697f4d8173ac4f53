//! `pyward scan TARGET --yara DIR`: the user's YARA-X rules join pyward's own; a rule that does
//! not compile stops the scan with exit 2 and names the file, the line and the problem.

mod common;
use common::{pyward, run};
use std::path::Path;

/// A venv with one package whose only oddity is a string a user rule knows.
fn venv_with(root: &Path, code: &str) {
    let sp = root.join("lib/python3.11/site-packages");
    let pkg = sp.join("corpapp");
    let dist = sp.join("corpapp-2.0.0.dist-info");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(pkg.join("__init__.py"), "from .core import *\n").unwrap();
    std::fs::write(pkg.join("core.py"), code).unwrap();
    std::fs::write(
        dist.join("METADATA"),
        "Metadata-Version: 2.1\nName: corpapp\nVersion: 2.0.0\nSummary: Corp app\n",
    )
    .unwrap();
    std::fs::write(
        dist.join("RECORD"),
        "corpapp/__init__.py,,\ncorpapp/core.py,,\ncorpapp-2.0.0.dist-info/METADATA,,\n",
    )
    .unwrap();
}

const USER_RULE: &str = r#"rule corp_leaked_build_token
{
    meta:
        description = "a leaked internal build token"
        mitre = "T1552.001"
        severity = "critical"
    strings:
        $t = /CORPTOK-[0-9a-f]{12}/
    condition:
        $t
}
"#;

#[test]
fn user_rules_add_findings_through_the_heuristics_gate() {
    let dir = tempfile::tempdir().unwrap();
    venv_with(
        dir.path(),
        "TOKEN = 'CORPTOK-0123456789ab'\n\ndef run():\n    return TOKEN\n",
    );
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("corp.yar"), USER_RULE).unwrap();

    // Without the rule the package is clean.
    let r = run(pyward()
        .args(["scan", "--no-progress", "--format", "json"])
        .arg(dir.path()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = r.json();
    assert!(
        !v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["gate"] == "heuristics"),
        "{v:#}"
    );

    let r = run(pyward()
        .args(["scan", "--no-progress", "--format", "json", "--yara"])
        .arg(rules.path())
        .arg(dir.path()));
    let v = r.json();
    let findings = v["findings"].as_array().unwrap();
    let f = findings
        .iter()
        .find(|f| f["rule_id"] == "yara.corp_leaked_build_token")
        .unwrap_or_else(|| panic!("{findings:#?}\n{}", r.stderr));
    assert_eq!(f["gate"], "heuristics");
    assert!(
        f["mitre"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "T1552.001"),
        "{f:#}"
    );
    let ev = f["evidence"].as_array().unwrap();
    let get = |k: &str| {
        ev.iter()
            .find(|e| e["key"] == k)
            .and_then(|e| e["value"].as_str())
            .unwrap_or("")
            .to_string()
    };
    assert!(get("file").ends_with("corpapp/core.py"), "{f:#}");
    assert_eq!(get("offset"), "9");
    assert_eq!(get("snippet"), "CORPTOK-0123456789ab");
    // A critical threat scores 8: the default policy's high-risk band stops the package.
    assert_eq!(f["action"], "STOP", "{f:#}");
    assert_eq!(r.code, 1, "{}", r.stderr);
}

#[test]
fn a_bad_rule_is_an_input_error_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    venv_with(dir.path(), "x = 1\n");
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(rules.path().join("good.yar"), USER_RULE).unwrap();
    std::fs::write(
        rules.path().join("typo.yar"),
        "rule typo\n{\n    strings:\n        $a = \"abc\"\n    condition:\n        $a and filesize <\n}\n",
    )
    .unwrap();
    let r = run(pyward()
        .args(["scan", "--no-progress", "--yara"])
        .arg(rules.path())
        .arg(dir.path()));
    assert_eq!(r.code, 2, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("typo.yar:7"), "{}", r.stderr);
    assert!(r.stderr.contains("--yara"), "{}", r.stderr);

    let r = run(pyward()
        .args(["scan", "--no-progress", "--yara"])
        .arg(rules.path().join("nope"))
        .arg(dir.path()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("nope"), "{}", r.stderr);
}
