//! A real virtualenv made with `python3 -m venv`, with inert local wheels installed by the real pip
//! (`--no-index`: never the network): the catalog must find exactly what pip says is installed.

use pyward_core::{InstalledKind, PackageSource};
use pyward_inventory::dir::DirTree;
use pyward_inventory::installed;
use pyward_inventory::FileTree;
use pyward_testkit::wheel::WheelSpec;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INDEX", "1")
        .env("PIP_NO_INPUT", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?} (is python3 installed?): {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `(normalized name, version)` of every distribution the venv's own pip reports.
fn pip_list(venv: &Path) -> BTreeSet<(String, String)> {
    let out =
        run(Command::new(venv.join("bin/python")).args(["-m", "pip", "list", "--format=json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                pyward_core::normalize_name(p["name"].as_str().unwrap()),
                p["version"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn venv_with_pip_installed_wheels() {
    let tmp = tempfile::tempdir().unwrap();
    let wheels = tmp.path().join("wheels");
    std::fs::create_dir(&wheels).unwrap();
    let specs = [
        WheelSpec::new("jeIlyfish", "0.5.1")
            .file("jeIlyfish/__init__.py", "from ._jellyfish import *\n")
            .file("jeIlyfish/_jellyfish.py", "# inert test file\n"),
        WheelSpec::new("python3-dateutil", "2.8.1")
            .requires("jeIlyfish")
            .file("dateutil/__init__.py", "# inert\n"),
        WheelSpec::new("inert.pkg", "1.0").file("inert_pkg.py", "VALUE = 1\n"),
    ];
    let paths: Vec<_> = specs.iter().map(|s| s.write_to(&wheels).unwrap()).collect();

    let venv = tmp.path().join("venv");
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
    run(Command::new(venv.join("bin/python"))
        .args(["-m", "pip", "install", "--no-index", "--no-deps", "--quiet"])
        .args(&paths));
    let expected = pip_list(&venv);

    let mut warnings = Vec::new();
    let tree = DirTree::open(&venv, &mut warnings).unwrap();
    let packages = installed::catalog(&tree, &mut warnings);
    assert!(warnings.is_empty(), "{warnings:?}");

    let found: BTreeSet<(String, String)> = packages
        .iter()
        .map(|p| (p.normalized.clone(), p.version.clone().unwrap_or_default()))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(packages.len(), expected.len(), "no duplicates");
    assert!(packages
        .iter()
        .all(|p| p.source == PackageSource::Installed(InstalledKind::DistInfo)));

    // The exact spelling is kept.
    let jelly = packages
        .iter()
        .find(|p| p.normalized == "jeilyfish")
        .unwrap();
    assert_eq!(jelly.name, "jeIlyfish");
    assert_eq!(jelly.version.as_deref(), Some("0.5.1"));
    assert_eq!(jelly.installer.as_deref(), Some("pip"));
    assert_eq!(jelly.top_level, vec!["jeIlyfish"]);
    let url = jelly
        .direct_url
        .as_deref()
        .expect("pip records direct_url.json for a wheel path");
    assert!(
        url.starts_with("file://") && url.ends_with(&specs[0].file_name()),
        "{url}"
    );
    let site = Path::new(&jelly.files[0])
        .ancestors()
        .find(|a| a.ends_with("site-packages"));
    let site = site
        .expect("files are under site-packages")
        .to_str()
        .unwrap()
        .to_string();
    assert!(site.starts_with("/lib/python3."), "{site}");
    assert_eq!(
        jelly.location.path,
        format!(
            "{}/jeIlyfish-0.5.1.dist-info/METADATA",
            site.trim_start_matches('/')
        )
    );
    assert!(
        jelly
            .files
            .contains(&format!("{site}/jeIlyfish/_jellyfish.py")),
        "{:?}",
        jelly.files
    );
    assert!(jelly
        .files
        .contains(&format!("{site}/jeIlyfish-0.5.1.dist-info/RECORD")));

    let dateutil = packages
        .iter()
        .find(|p| p.normalized == "python3-dateutil")
        .unwrap();
    assert_eq!(dateutil.requires, vec!["jeIlyfish"]);
    assert!(dateutil
        .files
        .contains(&format!("{site}/dateutil/__init__.py")));

    // Every attributed file of every package (pip's own included) is in the tree: RECORD paths
    // were resolved against the right folder, `../../../bin/pip` included.
    for p in &packages {
        assert!(!p.files.is_empty(), "{} has no files", p.name);
        for f in &p.files {
            assert!(tree.entry(f).is_some(), "{}: {f} not in the tree", p.name);
        }
    }
    let pip = packages.iter().find(|p| p.normalized == "pip").unwrap();
    assert!(
        pip.files.iter().any(|f| f == "/bin/pip"),
        "pip's console script is attributed"
    );
}
