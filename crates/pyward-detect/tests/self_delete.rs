//! Self-deleting scripts and executables.

mod common;

use common::*;

#[test]
fn interpreter_deletes_its_script_relative_to_cwd() {
    let mut sim = Sim::default();
    sim.spawn(
        10,
        100,
        "python3",
        "/usr/bin/python3",
        &["-u", "./job.py", "--fast"],
        "/srv/app",
    );
    assert!(sim.unlink(10, "/srv/app/other.py").is_empty());
    let d = sim.unlink(10, "job.py");
    assert_eq!(d.len(), 1, "{:?}", sim.rules());
    assert_eq!(d[0].rule, "Self-Deleting Script");
    assert_eq!(d[0].evidence["detect.file"], "/srv/app/job.py");
    assert_eq!(d[0].evidence["detect.depth"], 0);
}

#[test]
fn rm_dollar_zero_from_a_shell_script() {
    let mut sim = Sim::default();
    sim.spawn(
        10,
        100,
        "bash",
        "/usr/bin/bash",
        &["/tmp/inst.sh"],
        "/home/u",
    );
    sim.spawn(
        11,
        10,
        "rm",
        "/usr/bin/rm",
        &["-f", "--", "/tmp/inst.sh"],
        "/home/u",
    );
    let d = sim.emit(
        11,
        "unlinkat",
        0,
        None,
        serde_json::json!({"dirfd": -100, "name": "/tmp/inst.sh", "flags": 0}),
    );
    assert_eq!(d.len(), 1, "{:?}", sim.rules());
    assert_eq!(d[0].evidence["detect.depth"], 1);
    assert_eq!(d[0].evidence["detect.runner"], "bash");
}

#[test]
fn process_deletes_its_own_executable() {
    let mut sim = Sim::default();
    sim.preexisting("/tmp/.x/agent");
    sim.spawn(10, 100, "agent", "/tmp/.x/agent", &[], "/tmp/.x");
    let d = sim.unlink(10, "agent");
    assert_eq!(
        d.first().map(|d| d.rule.as_str()),
        Some("Self-Deleting Executable")
    );
}

#[test]
fn pip_upgrading_itself_is_allowed() {
    let mut sim = Sim::default();
    sim.spawn(
        10,
        100,
        "pip",
        "/venv/bin/python3",
        &["/venv/bin/pip", "install", "-U", "pip"],
        "/home/u",
    );
    assert!(
        sim.unlink(10, "/venv/bin/pip").is_empty(),
        "{:?}",
        sim.rules()
    );
    sim.spawn(
        11,
        100,
        "python3",
        "/venv/bin/python3",
        &["-m", "pip", "install", "-U", "pip"],
        "/home/u",
    );
    assert!(sim.unlink(11, "/venv/bin/pip").is_empty());
}

#[test]
fn python_c_has_no_script() {
    let mut sim = Sim::default();
    sim.spawn(
        10,
        100,
        "python3",
        "/usr/bin/python3",
        &["-c", "import os; os.remove('x.py')"],
        "/w",
    );
    assert!(sim.unlink(10, "x.py").is_empty());
}
