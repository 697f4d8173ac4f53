//! `pyward scan --policy/--dockerfile/--layers/--baseline` and `pyward policy check`, end to end.

mod common;

use common::{pyward, run};
use pyward_testkit::demo::{clean_image, incident1_image};
use std::path::{Path, PathBuf};

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies")
}

#[test]
fn scan_with_the_jeilyfish_policies_stops_and_reports_policy_fields() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("image.tar");
    incident1_image().write_docker_archive(&img).unwrap();
    for p in ["jeilyfish.yaml", "jeilyfish-anchore.json"] {
        let r = run(pyward()
            .arg("scan")
            .arg(&img)
            .arg("--policy")
            .arg(policies().join(p))
            .args(["--format", "json"]));
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        let j = r.json();
        assert_eq!(j["final_action"], "STOP");
        let gated: Vec<&serde_json::Value> = j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["policy"].is_object())
            .collect();
        let mut gates: Vec<String> = gated
            .iter()
            .map(|f| {
                format!(
                    "{}/{}",
                    f["gate"].as_str().unwrap(),
                    f["trigger"].as_str().unwrap()
                )
            })
            .collect();
        gates.sort();
        assert_eq!(gates, vec!["files/name_match", "packages/blacklist"], "{p}");
        for f in gated {
            assert_eq!(f["action"], "STOP");
            assert_eq!(f["policy"]["policy_id"], "jeilyfish-policy");
            assert_eq!(f["policy"]["trigger_id"].as_str().unwrap().len(), 32);
            assert!(f["policy"]["rule_id"].as_str().unwrap().starts_with('r'));
        }
        // Intel findings are reported but do not gate under a policy without the intel gates.
        assert!(j["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule_id"] == "intel.known-malicious" && f["action"] == "GO"));
    }
}

#[test]
fn allowlisted_findings_say_by_what_and_the_table_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("image.tar");
    incident1_image().write_docker_archive(&img).unwrap();
    let pol = dir.path().join("p.yaml");
    std::fs::write(
        &pol,
        format!(
            "{}\nallowlist:\n  - {{id: ok-files, gate: files, trigger_id: '*'}}\n  - {{id: ok-pkgs, gate: packages, trigger_id: '*'}}\n",
            std::fs::read_to_string(policies().join("jeilyfish.yaml")).unwrap()
        ),
    )
    .unwrap();
    let r = run(pyward()
        .arg("scan")
        .arg(&img)
        .arg("--policy")
        .arg(&pol)
        .args(["--format", "json"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["final_action"], "GO");
    let by: Vec<&str> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["policy"]["allowlisted_by"].as_str())
        .collect();
    assert_eq!(by.len(), 2);
    assert!(by.contains(&"allowlist jeilyfish-policy-allowlist item ok-files"));
}

#[test]
fn default_policy_clean_image_passes_and_dockerfile_flag_is_actual() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("clean.tar");
    clean_image().write_docker_archive(&img).unwrap();
    let r = run(pyward().arg("scan").arg(&img).args(["--format", "json"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["final_action"], "GO");
    // A Dockerfile given with --dockerfile whose last USER is root: the default policy warns,
    // the exit code stays 0.
    let df = dir.path().join("Dockerfile");
    std::fs::write(
        &df,
        "FROM python:3.11-slim\nUSER app\nRUN pip install python-dateutil jellyfish\nUSER root\n",
    )
    .unwrap();
    let r = run(pyward()
        .arg("scan")
        .arg(&img)
        .arg("--dockerfile")
        .arg(&df)
        .args(["--format", "json"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["final_action"], "WARN");
    assert!(j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["trigger"] == "effective_user" && f["path"].is_null()));
}

#[test]
fn layers_all_and_baseline_flags() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("clean.tar");
    clean_image().write_docker_archive(&img).unwrap();
    let base = dir.path().join("base.json");
    std::fs::write(&base, r#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library","name":"six","version":"1.15.0"}]}"#).unwrap();
    let pol = dir.path().join("drift.yaml");
    std::fs::write(
        &pol,
        "id: d\nrules:\n  - {id: m, gate: drift, trigger: packages_modified, action: STOP}\n",
    )
    .unwrap();
    let r = run(pyward()
        .arg("scan")
        .arg(&img)
        .arg("--policy")
        .arg(&pol)
        .arg("--baseline")
        .arg(&base)
        .args(["--layers", "all", "--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r
        .stdout
        .contains("Package version changed since the baseline: six 1.15.0 -> 1.16.0"));
    let r = run(pyward()
        .arg("scan")
        .arg(&img)
        .arg("--policy")
        .arg(&pol)
        .arg("--baseline")
        .arg(dir.path().join("missing.json")));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
}

#[test]
fn policy_check_lints_and_rejects_with_positions() {
    let r = run(pyward()
        .args(["policy", "check"])
        .arg(policies().join("jeilyfish-anchore.json")));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("warning: rule `r3`"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("ok: Anchore bundle v1 `jeilyfish-bundle`, 3 rules"),
        "{}",
        r.stdout
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "id: x\nrules:\n  - id: r\n    gate: files\n    trigger: name_match\n    action: STOP\n    params: {regex: 'a(b'}\n").unwrap();
    let r = run(pyward().args(["policy", "check"]).arg(&bad));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("bad.yaml:7:13: error: rule `r`: parameter `regex`: invalid regex `a(b`")
            || r.stdout.contains("bad.yaml:7:"),
        "{}",
        r.stdout
    );
    let clean = dir.path().join("c.tar");
    clean_image().write_docker_archive(&clean).unwrap();
    let r = run(pyward().arg("scan").arg(&clean).arg("--policy").arg(&bad));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("bad.yaml:7:"), "{}", r.stderr);
}

#[test]
fn denylisted_and_allowlisted_images_decide_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dir.path().join("clean.tar");
    clean_image().write_docker_archive(&clean).unwrap();
    let bad = dir.path().join("bad.tar");
    incident1_image().write_docker_archive(&bad).unwrap();
    let policy = dir.path().join("lists.yaml");
    std::fs::write(
        &policy,
        "id: lists\nrules:\n  - {id: r1, gate: packages, trigger: blacklist, action: STOP, params: {name: jeIlyfish}}\n\
         denylisted_images:\n  - {name: banned, registry: '*', repository: 'pyward-demo/clean'}\n\
         allowlisted_images:\n  - {name: accepted-risk, registry: '*', repository: 'pyward-demo/incident-1'}\n",
    )
    .unwrap();
    // A denylisted image stops the pipeline although nothing was found in it.
    let r = run(pyward()
        .arg("scan")
        .arg(&clean)
        .arg("--policy")
        .arg(&policy)
        .args(["--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["final_action"], "STOP");
    // An allowlisted image passes although the blacklist rule fires, and says why.
    let r = run(pyward()
        .arg("scan")
        .arg(&bad)
        .arg("--policy")
        .arg(&policy)
        .args(["--format", "json"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["final_action"], "GO");
    assert!(j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["policy"]["allowlisted_by"]
            .as_str()
            .is_some_and(|a| a.contains("accepted-risk"))));
}
