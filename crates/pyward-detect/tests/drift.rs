//! Drift detector: dropped binaries and scripts joined to their writes by inode.

mod common;

use common::*;
use serde_json::json;

const RUN: &str = "Drifted Executable Run";
const SCRIPT: &str = "Drifted Script Run by Interpreter";

fn drop_file(sim: &mut Sim, pid: u64, path: &str, data: &[u8]) {
    let fd = sim.open(pid, path, "O_WRONLY|O_CREAT|O_TRUNC");
    sim.write(pid, fd, path, data);
}

#[test]
fn copied_binary_run_is_drift_joined_by_inode() {
    let mut sim = Sim::default();
    sim.preexisting("/usr/bin/true");
    sim.spawn(
        10,
        100,
        "cp",
        "/usr/bin/cp",
        &["/usr/bin/true", "/tmp/t"],
        "/home/u",
    );
    drop_file(&mut sim, 10, "/tmp/t", b"\x7fELF\x02\x01\x01\x00");
    sim.exit(10);
    // A binary that was there before start is not drift.
    sim.spawn(11, 100, "true", "/usr/bin/true", &[], "/home/u");
    assert!(sim.detections.is_empty(), "{:?}", sim.rules());
    let d = sim.spawn(12, 100, "t", "/tmp/t", &[], "/home/u");
    assert_eq!(d.len(), 1, "{:?}", sim.rules());
    assert_eq!(d[0].rule, RUN);
    assert_eq!(d[0].evidence["detect.join"], "inode");
    assert_eq!(d[0].evidence["detect.written_by"], "cp");
    assert_eq!(d[0].evidence["detect.kind"], "elf");
    assert!(d[0].tags.contains(&"T1105".to_owned()));
}

#[test]
fn renamed_then_run_still_joined_by_inode() {
    let mut sim = Sim::default();
    sim.spawn(10, 100, "curl", "/usr/bin/curl", &["-o", "/tmp/dl"], "/tmp");
    drop_file(&mut sim, 10, "/tmp/dl", b"\x7fELF\x02\x01\x01\x00");
    sim.rename(10, "/tmp/dl", "/usr/local/bin/nano");
    let d = sim.spawn(12, 100, "nano", "/usr/local/bin/nano", &[], "/tmp");
    assert_eq!(
        d.first().map(|d| d.rule.as_str()),
        Some(RUN),
        "{:?}",
        sim.rules()
    );
    assert_eq!(d[0].evidence["detect.join"], "inode");
    assert_eq!(d[0].evidence["detect.file"], "/usr/local/bin/nano");
}

#[test]
fn falco_capture_arguments_join_by_inode() {
    // Falco's own captures carry `ino`/`dev` as openat arguments and `exe_ino` on execve.
    let mut sim = Sim::default();
    sim.falco_args = true;
    sim.spawn(
        10,
        100,
        "wget",
        "/usr/bin/wget",
        &["http://192.0.2.7/x"],
        "/tmp",
    );
    drop_file(&mut sim, 10, "/tmp/x", b"\x7fELF");
    let d = sim.spawn(12, 100, "x", "/tmp/x", &[], "/tmp");
    assert_eq!(d.len(), 1, "{:?}", sim.rules());
    assert_eq!(d[0].evidence["detect.join"], "inode");
}

#[test]
fn deleted_flag_from_the_sensor() {
    let mut sim = Sim::default();
    sim.preexisting("/tmp/z");
    sim.procs.insert(
        70,
        Proc {
            pid: 70,
            ppid: 100,
            name: "z".into(),
            exepath: "/tmp/z".into(),
            args: vec![],
            cwd: "/tmp".into(),
        },
    );
    let d = sim.exec_with(70, "z", "/tmp/z", &[], "/tmp", |e| {
        e["proc"]["exe_deleted"] = json!(true)
    });
    assert_eq!(
        d.first().map(|d| d.rule.as_str()),
        Some("Execution of Deleted Executable")
    );
}

#[test]
fn without_inodes_falls_back_to_path_and_says_so() {
    let mut sim = Sim::default();
    sim.with_inodes = false;
    sim.spawn(
        10,
        100,
        "python3",
        "/usr/bin/python3",
        &["-c", "dl()"],
        "/tmp",
    );
    drop_file(&mut sim, 10, "/tmp/x", b"\x7fELF");
    let d = sim.spawn(12, 100, "x", "/tmp/x", &[], "/tmp");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].evidence["detect.join"], "path");
}

#[test]
fn same_path_different_inode_is_not_joined() {
    // Written, deleted, and a different file (another inode) later at the same path,
    // installed by a package manager: no alert.
    let mut sim = Sim::default();
    sim.spawn(
        10,
        100,
        "python3",
        "/usr/bin/python3",
        &["-c", "w()"],
        "/tmp",
    );
    drop_file(&mut sim, 10, "/opt/tool", b"\x7fELF");
    sim.unlink(10, "/opt/tool");
    sim.spawn(
        11,
        100,
        "dpkg",
        "/usr/bin/dpkg",
        &["-i", "tool.deb"],
        "/tmp",
    );
    drop_file(&mut sim, 11, "/opt/tool", b"\x7fELF");
    let d = sim.spawn(12, 100, "tool", "/opt/tool", &[], "/tmp");
    assert!(d.is_empty(), "{:?}", sim.rules());
}

#[test]
fn script_written_and_run_by_interpreter_joined_on_open() {
    let mut sim = Sim::default();
    sim.spawn(
        10,
        100,
        "python3",
        "/usr/bin/python3",
        &["-m", "ipykernel_launcher"],
        "/home/u",
    );
    drop_file(
        &mut sim,
        10,
        "/home/u/run.sh",
        b"#!/bin/sh\ntouch /tmp/marker\n",
    );
    let d = sim.spawn(20, 100, "bash", "/usr/bin/bash", &["run.sh"], "/home/u");
    assert!(d.is_empty(), "waits for the open to join by inode");
    let fd = sim.open(20, "/home/u/run.sh", "O_RDONLY");
    assert!(fd >= 0);
    let d = sim.first(SCRIPT).expect("script drift");
    assert_eq!(d.evidence["detect.join"], "inode");
    assert_eq!(d.evidence["detect.interpreter"], "bash");
    assert!(d.tags.contains(&"T1059".to_owned()));
}

#[test]
fn script_pending_reported_at_exit_by_path() {
    let mut sim = Sim::default();
    sim.spawn(
        10,
        100,
        "python3",
        "/usr/bin/python3",
        &["-c", "w()"],
        "/home/u",
    );
    drop_file(&mut sim, 10, "/home/u/e.py", b"import os\n");
    sim.spawn(
        20,
        100,
        "python3",
        "/usr/bin/python3",
        &["/home/u/e.py"],
        "/home/u",
    );
    sim.exit(20);
    let d = sim.first(SCRIPT).expect("reported at exit");
    assert_eq!(d.evidence["detect.join"], "path");
}

#[test]
fn shebang_script_executed_directly() {
    let mut sim = Sim::default();
    sim.spawn(
        10,
        100,
        "python3",
        "/usr/bin/python3",
        &["-c", "w()"],
        "/tmp",
    );
    drop_file(&mut sim, 10, "/tmp/s", b"#!/bin/sh\necho hi\n");
    // The kernel runs /bin/sh: the exec's inode is the shell's; the path is the script's.
    let d = sim.spawn_with_exe_inode(30, 100, "s", "/tmp/s", 424242);
    assert_eq!(
        d.first().map(|d| d.rule.as_str()),
        Some(RUN),
        "{:?}",
        sim.rules()
    );
    assert_eq!(d[0].evidence["detect.join"], "path");
}

#[test]
fn chmod_x_of_dropped_file() {
    let mut sim = Sim::default();
    sim.spawn(
        10,
        100,
        "python3",
        "/usr/bin/python3",
        &["-c", "w()"],
        "/tmp",
    );
    drop_file(&mut sim, 10, "/tmp/nano", b"\x7fELF");
    assert!(sim.chmod(10, "/tmp/nano", 0o644).is_empty());
    let d = sim.chmod(10, "/tmp/nano", 0o755);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].rule, "Drifted File Made Executable");
    assert!(d[0].tags.contains(&"T1222.002".to_owned()));
    assert!(
        sim.chmod(10, "/tmp/nano", 0o700).is_empty(),
        "reported once"
    );
}

#[test]
fn memfd_shm_and_deleted_executables() {
    let mut sim = Sim::default();
    let d = sim.spawn(40, 100, "3", "/memfd:payload (deleted)", &[], "/tmp");
    assert_eq!(
        d.first().map(|d| d.rule.as_str()),
        Some("Fileless Execution via memfd")
    );
    assert!(d[0].tags.contains(&"T1620".to_owned()));
    sim.preexisting("/dev/shm/x");
    let d = sim.spawn(41, 100, "x", "/dev/shm/x", &[], "/tmp");
    assert_eq!(
        d.first().map(|d| d.rule.as_str()),
        Some("Execution from Shared Memory")
    );
    let d = sim.spawn(42, 100, "y", "/tmp/y (deleted)", &[], "/tmp");
    assert_eq!(
        d.first().map(|d| d.rule.as_str()),
        Some("Execution of Deleted Executable")
    );
}

#[test]
fn container_exe_changed_after_container_start() {
    let mut sim = Sim::default();
    sim.preexisting("/usr/bin/app");
    sim.add_proc(
        60,
        1,
        "containerd-shim",
        "/usr/bin/containerd-shim-runc-v2",
        &[],
        "/",
    );
    sim.procs.insert(
        61,
        Proc {
            pid: 61,
            ppid: 60,
            name: "sh".into(),
            exepath: "/bin/sh".into(),
            args: vec![],
            cwd: "/".into(),
        },
    );
    let start = sim.t - 10_000_000_000;
    let ctime_new = sim.t - 1_000_000_000;
    let d = sim.exec_with(61, "app", "/usr/bin/app", &[], "/", |e| {
        e["container"] = json!({"id": "abc123def456", "start_ts": start});
        e["proc"]["exe_ino_ctime"] = json!(ctime_new);
    });
    assert_eq!(
        d.first().map(|d| d.rule.as_str()),
        Some(RUN),
        "{:?}",
        sim.rules()
    );
    assert_eq!(d[0].evidence["detect.join"], "ctime");
    let old = start - 1;
    let d = sim.exec_with(61, "app", "/usr/bin/app", &[], "/", |e| {
        e["container"] = json!({"id": "abc123def456", "start_ts": start});
        e["proc"]["exe_ino_ctime"] = json!(old);
    });
    assert!(d.is_empty(), "image file older than the container");
    let d = sim.exec_with(61, "app", "/usr/bin/app", &[], "/", |e| {
        e["container"] = json!({"id": "abc123def456"});
        e["proc"]["is_exe_upper_layer"] = json!(true);
    });
    assert_eq!(
        d.first().map(|d| d.evidence["detect.join"].clone()),
        Some(json!("upper_layer"))
    );
}

#[test]
fn allowlist_from_yaml() {
    let yaml = "- detector: drift\n  append: true\n  allow:\n    - process: [gcc, ld]\n      path: [/home/u/build/**]\n";
    let cfg =
        pyward_detect::config::from_yaml_str(yaml, std::path::Path::new("local.yaml")).unwrap();
    let mut sim = Sim::new(cfg);
    sim.spawn(
        10,
        100,
        "ld",
        "/usr/bin/ld",
        &["-o", "build/a.out"],
        "/home/u",
    );
    drop_file(&mut sim, 10, "/home/u/build/a.out", b"\x7fELF");
    drop_file(&mut sim, 10, "/home/u/b.out", b"\x7fELF");
    assert!(sim
        .spawn(11, 100, "a.out", "/home/u/build/a.out", &[], "/home/u")
        .is_empty());
    assert_eq!(
        sim.spawn(12, 100, "b.out", "/home/u/b.out", &[], "/home/u")
            .len(),
        1,
        "outside the allowed path"
    );
    // The defaults are still there (append): pip-written files are allowed.
    sim.spawn(
        13,
        100,
        "pip",
        "/usr/bin/python3",
        &["/usr/bin/pip", "install", "x"],
        "/home/u",
    );
    drop_file(
        &mut sim,
        13,
        "/home/u/.local/bin/x",
        b"#!/usr/bin/python3\n",
    );
    assert!(sim
        .spawn(14, 100, "x", "/home/u/.local/bin/x", &[], "/home/u")
        .is_empty());
}
