//! `pyward vet`, `pyward scan FILE` and `pyward pip install` against the real pip, with inert
//! wheels served from a local file:// index built by the test.

mod common;

use common::{pyward, run, site_packages, venv};
use pyward_testkit::wheel::{incident1_wheels, write_simple_index, WheelSpec};

#[test]
fn vet_python3_dateutil_is_blocked_and_names_the_imitated_package() {
    let r = run(pyward().args(["vet", "python3-dateutil", "--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["final_action"], "STOP");
    let text = r.stdout.to_lowercase();
    assert!(
        text.contains("python-dateutil"),
        "imitated package not named: {}",
        r.stdout
    );
}

#[test]
fn vet_clean_names_pass() {
    let r = run(pyward().args(["vet", "requests", "jellyfish==1.1.0", "python-dateutil"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("GO"), "{}", r.stdout);
}

#[test]
fn vet_rejects_invalid_spec_with_exit_2() {
    let r = run(pyward().args(["vet", "requests>>>=2"]));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("requests>>>=2"), "{}", r.stderr);
}

#[test]
fn scan_requirements_file_with_jeilyfish_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("requirements.txt");
    std::fs::write(&req, "requests==2.32.3\njeIlyfish==0.5.1\n").unwrap();
    let r = run(pyward().arg("scan").arg(&req).args(["--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["final_action"], "STOP");
    let finding = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["package"]["name"] == "jeIlyfish")
        .expect("a finding for jeIlyfish");
    assert_eq!(finding["action"], "STOP");
    assert_eq!(finding["line"], 2);
}

#[test]
fn vet_requirements_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("base.txt"), "python3-dateutil\n").unwrap();
    std::fs::write(
        dir.path().join("requirements.txt"),
        "-r base.txt\nrequests\n",
    )
    .unwrap();
    let r = run(pyward()
        .arg("vet")
        .arg("-r")
        .arg(dir.path().join("requirements.txt")));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("python3-dateutil"), "{}", r.stdout);
}

#[test]
fn missing_target_is_an_input_error() {
    let r = run(pyward().args(["scan", "/nonexistent/pyward-test-target"]));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("/nonexistent/pyward-test-target"),
        "{}",
        r.stderr
    );
}

/// A local index with the incident's wheels plus an innocent-looking package that pulls in
/// jeIlyfish, and a clean one.
fn index(dir: &std::path::Path) -> String {
    let (jeilyfish, dateutil) = incident1_wheels();
    let sneaky = WheelSpec::new("acme-report-kit", "1.0.0")
        .requires("jeIlyfish>=0.5")
        .file("acme_report_kit/__init__.py", "VERSION = '1.0.0'\n");
    let clean = WheelSpec::new("acme-clean-kit", "1.0.0")
        .file("acme_clean_kit/__init__.py", "VERSION = '1.0.0'\n");
    let simple = write_simple_index(dir, &[&jeilyfish, &dateutil, &sneaky, &clean]).unwrap();
    format!("file://{}", simple.display())
}

fn installed(site: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(site)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_lowercase())
        .filter(|n| {
            n.ends_with(".dist-info") && !n.starts_with("pip-") && !n.starts_with("setuptools-")
        })
        .collect()
}

/// `pyward pip install REQ` into a fresh venv against the local index; the run and what the
/// venv's site-packages holds afterwards (kept alive by the returned folder).
fn pip_install_fresh(req: &str) -> (tempfile::TempDir, common::Run, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let url = index(&dir.path().join("index"));
    let py = venv(&dir.path().join("venv"));
    let r = run(pyward().arg("pip").arg("--python").arg(&py).args([
        "install",
        "--index-url",
        &url,
        req,
    ]));
    let got = installed(&site_packages(&dir.path().join("venv")));
    (dir, r, got)
}

#[test]
fn pip_install_refuses_python3_dateutil_before_anything_is_installed() {
    let (_dir, r, got) = pip_install_fresh("python3-dateutil");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("refusing"), "{}", r.stderr);
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn pip_install_catches_a_malicious_transitive_dependency() {
    let (_dir, r, got) = pip_install_fresh("acme-report-kit");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("jeIlyfish"), "{}", r.stdout);
    assert!(r.stderr.contains("refusing to install"), "{}", r.stderr);
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn pip_install_of_a_clean_package_installs_it() {
    let (_dir, r, got) = pip_install_fresh("acme-clean-kit");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        got.iter().any(|n| n.starts_with("acme_clean_kit-1.0.0")),
        "{got:?}"
    );
}
