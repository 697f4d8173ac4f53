//! Scanning a live host's root: mounted kernel pseudo-filesystems (`/proc`, `/sys`...) are
//! listed but not walked. The test mounts a real procfs inside a scanned folder, in a private
//! mount namespace (`unshare -m`), so the host's mount table is never touched.

use std::process::Command;

fn enabled(test: &str) -> bool {
    // Mounting needs root; CI runs as root and sets PYWARD_BPF_TESTS=1 for such tests.
    if std::env::var("PYWARD_BPF_TESTS").as_deref() == Ok("1") {
        true
    } else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: set PYWARD_BPF_TESTS=1 (as root) to run the mount-namespace tests"
        );
        false
    }
}

#[test]
fn mounted_procfs_is_listed_not_walked() {
    if !enabled("mounted_procfs_is_listed_not_walked") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let sp = root.path().join("usr/lib/python3/dist-packages");
    std::fs::create_dir_all(sp.join("tinypkg-1.0.dist-info")).unwrap();
    std::fs::write(
        sp.join("tinypkg-1.0.dist-info/METADATA"),
        "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
    )
    .unwrap();
    std::fs::create_dir(root.path().join("proc")).unwrap();
    let script = r#"mount -t proc proc "$1/proc" && exec "$2" scan "$1" --format json"#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(root.path())
        .arg(env!("CARGO_BIN_EXE_pyward"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {stderr}"));
    let pkgs: Vec<&str> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(pkgs, ["tinypkg"], "{stdout}");
    let warnings = report["warnings"].as_array().unwrap();
    let proc_warning = warnings
        .iter()
        .find(|w| w["input"].as_str().is_some_and(|i| i.ends_with("/proc")))
        .unwrap_or_else(|| panic!("no warning for the procfs mount: {warnings:#?}"));
    assert!(
        proc_warning["message"]
            .as_str()
            .unwrap()
            .contains("proc pseudo-filesystem"),
        "{proc_warning}"
    );
    // Nothing below the mount was listed: no warning or finding names /proc/<pid>/...
    assert!(
        !stdout.contains("/proc/self") && !stdout.contains("/proc/1/"),
        "procfs was walked: {stdout}"
    );
}
