//! Helpers for running the real pyward binary in tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn pyward() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pyward"));
    // Keep tests away from the user's real intel database and colours.
    c.env(
        "PYWARD_DATA_DIR",
        std::env::temp_dir().join("pyward-tests-empty-data"),
    )
    .env("NO_COLOR", "1")
    .env_remove("CI");
    c
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run pyward");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

/// A fresh virtualenv made by the real `python3 -m venv`, with its python path.
pub fn venv(dir: &Path) -> PathBuf {
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(dir)
        .status()
        .expect("python3 -m venv (run scripts/setup.sh)");
    assert!(status.success(), "python3 -m venv failed");
    dir.join("bin/python")
}

/// The `site-packages` folder of a venv.
pub fn site_packages(venv: &Path) -> PathBuf {
    let lib = venv.join("lib");
    let py = std::fs::read_dir(&lib)
        .expect("venv lib")
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("python"))
        .expect("lib/pythonX.Y");
    py.path().join("site-packages")
}
