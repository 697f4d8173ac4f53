//! `pyward scan` end to end on real images, folders and archives built by the test.

mod common;

use common::{pyward, run, site_packages, venv};
use pyward_testkit::demo::{clean_image, incident1_image};
use pyward_testkit::image::{ImageBuilder, Layer};
use pyward_testkit::wheel::incident1_wheels;
use serde_json::Value;

fn findings(j: &Value) -> &Vec<Value> {
    j["findings"].as_array().expect("findings[]")
}

#[test]
fn incident1_image_is_stopped_with_findings_for_both_packages() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("image.tar");
    incident1_image().write_docker_archive(&img).unwrap();
    let r = run(pyward().arg("scan").arg(&img).args(["--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["final_action"], "STOP");
    for name in ["jeIlyfish", "python3-dateutil"] {
        let f = findings(&j)
            .iter()
            .find(|f| f["package"]["name"] == name && f["rule_id"] == "intel.known-malicious")
            .unwrap_or_else(|| panic!("no known-malicious finding for {name}"));
        assert_eq!(f["action"], "STOP");
        assert!(!f["mitre"].as_array().unwrap().is_empty());
    }
    // Layer attribution: the installed jeIlyfish came from the `pip install` step.
    let pkg = j["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "jeIlyfish" && p["source"]["type"] == "installed")
        .expect("installed jeIlyfish");
    assert_eq!(pkg["normalized"], "jeilyfish");
    assert_eq!(pkg["purl"], "pkg:pypi/jeilyfish@0.5.1");
    assert!(pkg["layer"]["created_by"]
        .as_str()
        .unwrap()
        .contains("pip install python3-dateutil"));
    // One typosquat finding per place found: the default policy's confidence bands don't overlap.
    let squats = findings(&j)
        .iter()
        .filter(|f| {
            f["rule_id"] == "names.typosquat"
                && f["package"]["name"] == "jeIlyfish"
                && f["path"] == pkg["location"]["path"]
        })
        .count();
    assert_eq!(squats, 1);
    // The `RUN pip install python3-dateutil` history step names the package, with its layer.
    let declared = j["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "python3-dateutil" && p["source"]["type"] == "declared")
        .expect("python3-dateutil from the image history");
    assert_eq!(declared["location"]["path"], "<image history>");
    assert_eq!(declared["layer"]["index"], pkg["layer"]["index"]);
    // The file IOC and the history RUN line are found too.
    assert!(findings(&j).iter().any(|f| f["path"]
        .as_str()
        .is_some_and(|p| p.ends_with("/jeIlyfish/_jellyfish.py"))));
    assert!(j["image"]["dockerfile"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains("pip install python3-dateutil")));
}

#[test]
fn incident1_table_names_the_imitated_packages_and_ends_with_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("image.tar");
    incident1_image().write_docker_archive(&img).unwrap();
    let r = run(pyward().arg("scan").arg(&img));
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("jellyfish") && r.stdout.contains("python-dateutil"));
    let last = r.stdout.trim_end().lines().last().unwrap();
    assert!(last.starts_with("STOP"), "verdict line: {last}");
}

#[test]
fn clean_image_passes() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("clean.tar");
    clean_image().write_docker_archive(&img).unwrap();
    let r = run(pyward().arg("scan").arg(&img).args(["--format", "json"]));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    assert_eq!(j["final_action"], "GO");
    assert!(findings(&j).is_empty());
    let names: Vec<&str> = j["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for want in ["jellyfish", "python-dateutil", "six", "pip", "setuptools"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
}

#[test]
fn oci_layout_and_archive_are_scanned_like_docker_archives() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    incident1_image().write_oci_layout(&layout).unwrap();
    let r = run(pyward().arg("scan").arg(&layout).args(["--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["target"]["kind"], "oci-layout");
    let archive = dir.path().join("oci.tar");
    incident1_image().write_oci_archive(&archive).unwrap();
    let r = run(pyward()
        .arg("scan")
        .arg(&archive)
        .args(["--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["target"]["kind"], "oci-archive");
}

#[test]
fn a_package_removed_by_a_whiteout_is_not_reported() {
    let (jeilyfish, _) = incident1_wheels();
    let sp = pyward_testkit::demo::SITE_PACKAGES;
    let di = jeilyfish.dist_info();
    let img = ImageBuilder::new()
        .tag("whiteout:1")
        .layer(
            pyward_testkit::demo::installed_layer(sp, &[&jeilyfish])
                .created_by("RUN pip install jeIlyfish"),
        )
        .layer(
            Layer::new()
                .created_by("RUN pip uninstall -y jeIlyfish")
                .whiteout(&format!("{sp}/{di}"))
                .whiteout(&format!("{sp}/jeIlyfish")),
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.tar");
    img.write_docker_archive(&path).unwrap();
    let r = run(pyward().arg("scan").arg(&path).args(["--format", "json"]));
    let j = r.json();
    assert!(
        !j["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["source"]["type"] == "installed"),
        "whited-out package still reported: {}",
        r.stdout
    );
    // The history still says it was installed: that evidence stays (RUN pip install jeIlyfish).
    assert!(findings(&j)
        .iter()
        .any(|f| f["package"]["name"] == "jeIlyfish"));
}

#[test]
fn sarif_and_cyclonedx_outputs_go_to_the_output_file_only() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("image.tar");
    incident1_image().write_docker_archive(&img).unwrap();
    let sarif = dir.path().join("out.sarif");
    let r = run(pyward()
        .arg("scan")
        .arg(&img)
        .args(["--format", "sarif", "-o"])
        .arg(&sarif));
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.is_empty(),
        "stdout must be empty with -o: {}",
        r.stdout
    );
    let s: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(s["version"], "2.1.0");
    assert!(!s["runs"][0]["results"].as_array().unwrap().is_empty());
    let cdx = dir.path().join("bom.json");
    let r = run(pyward()
        .arg("scan")
        .arg(&img)
        .args(["--format", "cyclonedx", "-o"])
        .arg(&cdx));
    assert_eq!(r.code, 1);
    let c: Value = serde_json::from_slice(&std::fs::read(&cdx).unwrap()).unwrap();
    assert_eq!(c["specVersion"], "1.5");
    assert!(c["components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["purl"] == "pkg:pypi/jeilyfish@0.5.1"));
    assert!(!c["vulnerabilities"].as_array().unwrap().is_empty());
    let mut entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, vec!["bom.json", "image.tar", "out.sarif"]);
}

#[test]
fn real_venv_with_real_pip() {
    let dir = tempfile::tempdir().unwrap();
    let (jeilyfish, dateutil) = incident1_wheels();
    let wheels = dir.path().join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    let w1 = jeilyfish.write_to(&wheels).unwrap();
    let w2 = dateutil.write_to(&wheels).unwrap();
    let venv_dir = dir.path().join("venv");
    let py = venv(&venv_dir);
    let st = std::process::Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--no-index",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(&w1)
        .arg(&w2)
        .status()
        .unwrap();
    assert!(st.success());
    let r = run(pyward()
        .arg("scan")
        .arg(&venv_dir)
        .args(["--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    let pkg = j["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "jeIlyfish")
        .expect("jeIlyfish installed by pip");
    assert_eq!(pkg["version"], "0.5.1");
    assert!(site_packages(&venv_dir)
        .join("jeIlyfish/_jellyfish.py")
        .exists());
    // The same venv scanned from its site-packages only.
    let r = run(pyward()
        .arg("scan")
        .arg(site_packages(&venv_dir))
        .args(["--format", "json"]));
    assert_eq!(r.code, 1);
}

#[test]
fn wheel_and_sdist_are_scanned_before_install() {
    let dir = tempfile::tempdir().unwrap();
    let (jeilyfish, dateutil) = incident1_wheels();
    let whl = jeilyfish.write_to(dir.path()).unwrap();
    let r = run(pyward().arg("scan").arg(&whl).args(["--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["packages"][0]["source"]["type"], "archive");
    let sdist = dateutil.write_sdist_to(dir.path()).unwrap();
    let r = run(pyward().arg("scan").arg(&sdist).args(["--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.json()["packages"][0]["name"], "python3-dateutil");
}

#[test]
fn package_archives_in_a_folder_are_opened_and_checked() {
    // A wheelhouse as `pip download -d wh` leaves it, plus things that must not be opened or
    // must not fail the scan: a generic zip, a corrupt wheel, a symlink to an outside file.
    let dir = tempfile::tempdir().unwrap();
    let wh = dir.path().join("wh");
    std::fs::create_dir(&wh).unwrap();
    let (jeilyfish, dateutil) = incident1_wheels();
    let whl = jeilyfish.write_to(&wh).unwrap();
    dateutil.write_sdist_to(&wh).unwrap();
    std::fs::write(wh.join("backup.zip"), b"not a zip").unwrap();
    std::fs::write(
        wh.join("broken-1.0-py3-none-any.whl"),
        b"PK\x03\x04 truncated",
    )
    .unwrap();
    let outside = dir.path().join("outside-1.0-py3-none-any.whl");
    std::fs::copy(&whl, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, wh.join("linked-1.0-py3-none-any.whl")).unwrap();
    let r = run(pyward().arg("scan").arg(&wh).args(["--format", "json"]));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let j = r.json();
    let packages = j["packages"].as_array().unwrap();
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(
        names.contains(&"jeIlyfish"),
        "exact spelling kept: {names:?}"
    );
    assert!(names.contains(&"python3-dateutil"), "{names:?}");
    assert_eq!(
        names.iter().filter(|n| **n == "jeIlyfish").count(),
        1,
        "the wheel's own dist-info is not a second package: {names:?}"
    );
    assert!(
        packages.iter().all(|p| p["source"]["type"] == "archive"),
        "{packages:?}"
    );
    // Findings point into the archive, as the folder shows it.
    let file_name = whl.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        r.stdout.contains(&format!("{file_name}!")),
        "no finding names {file_name}!...: {}",
        r.stdout
    );
    // The corrupt wheel is a warning; the symlinked one is not followed out of the folder.
    assert!(
        r.stdout.contains("broken-1.0-py3-none-any.whl"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("outside-1.0"), "{}", r.stdout);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn corrupt_image_is_an_input_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("image.tar");
    incident1_image().write_docker_archive(&img).unwrap();
    let bytes = std::fs::read(&img).unwrap();
    let cut = dir.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let r = run(pyward().arg("scan").arg(&cut));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("cut.tar"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}
