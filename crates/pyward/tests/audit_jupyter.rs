//! `pyward audit jupyter` against a real jupyter_server on 127.0.0.1 (loopback only).
//!
//! Gated by PYWARD_JUPYTER_TESTS=1 (CI sets it). When set, a failing set-up FAILS the test.
//! Set-up: scripts/setup-jupyter-tests.sh (a venv with jupyter_server, reused when present).
//! Every server started is killed by pid through a guard, also when an assertion fails.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn enabled() -> bool {
    std::env::var("PYWARD_JUPYTER_TESTS").is_ok_and(|v| v == "1")
}

/// The venv with jupyter_server, created by the set-up script (idempotent).
fn venv() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/setup-jupyter-tests.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "Jupyter test set-up failed ({}); see the output above",
        script.display()
    );
    let path = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim(),
    );
    assert!(
        path.join("bin/jupyter-server").is_file(),
        "set-up did not produce {}/bin/jupyter-server",
        path.display()
    );
    path
}

/// Kills the server by pid when dropped (also on panic).
struct ServerGuard {
    child: Child,
    log: PathBuf,
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServerGuard {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

struct Dirs {
    _tmp: tempfile::TempDir,
    notebooks: PathBuf,
    runtime: PathBuf,
    config: PathBuf,
    data: PathBuf,
    audit_root: PathBuf,
    base: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let d = Dirs {
        notebooks: base.join("notebooks"),
        runtime: base.join("runtime"),
        config: base.join("config"),
        data: base.join("data"),
        audit_root: base.join("root"),
        base,
        _tmp: tmp,
    };
    for p in [&d.notebooks, &d.runtime, &d.config, &d.data, &d.audit_root] {
        std::fs::create_dir_all(p).unwrap();
    }
    d
}

fn start(venv: &Path, d: &Dirs, port: u16, token: &str, name: &str) -> ServerGuard {
    let log = d.base.join(format!("{name}.log"));
    let f = std::fs::File::create(&log).unwrap();
    let mut cmd = Command::new(venv.join("bin/jupyter-server"));
    cmd.arg(format!("--ServerApp.token={token}"))
        .arg("--ServerApp.password=")
        .arg("--no-browser")
        .arg("--ServerApp.ip=127.0.0.1")
        .arg("--port")
        .arg(port.to_string())
        .arg("--ServerApp.port_retries=0")
        .arg(format!("--ServerApp.root_dir={}", d.notebooks.display()))
        .env("JUPYTER_RUNTIME_DIR", &d.runtime)
        .env("JUPYTER_CONFIG_DIR", &d.config)
        .env("JUPYTER_DATA_DIR", &d.data)
        .env_remove("JUPYTER_TOKEN")
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f);
    if is_root() {
        cmd.arg("--allow-root");
    }
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start jupyter-server: {e}"));
    let g = ServerGuard { child, log };
    wait_ready(port, &g);
    g
}

/// Wait until `/api` answers (bounded).
fn wait_ready(port: u16, g: &ServerGuard) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = write!(
                s,
                "GET /api HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            );
            let mut buf = String::new();
            let _ = s.read_to_string(&mut buf);
            if buf.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!(
        "jupyter-server did not come up on port {port}; log:\n{}",
        g.log()
    );
}

fn audit(d: &Dirs, port: u16, format: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pyward"))
        .args(["audit", "jupyter", "--root"])
        .arg(&d.audit_root)
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}/"),
            "--format",
            format,
            "--color",
            "never",
        ])
        .env("JUPYTER_RUNTIME_DIR", &d.runtime)
        .env_remove("JUPYTER_CONFIG_DIR")
        .env_remove("JUPYTER_TOKEN")
        .output()
        .expect("run pyward")
}

fn findings(out: &Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    v["findings"].as_array().cloned().unwrap_or_default()
}

fn evidence<'a>(f: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    f["evidence"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["key"] == key)
        .filter_map(|e| e["value"].as_str())
        .collect()
}

/// One test, two servers in turn (so the open one is never visible while the token one is
/// audited).
#[test]
fn real_jupyter_server_open_then_token() {
    if !enabled() {
        eprintln!("skipped: set PYWARD_JUPYTER_TESTS=1 (and run scripts/setup-jupyter-tests.sh) to test against a real jupyter_server");
        return;
    }
    let venv = venv();

    // 1. no token, no password: critical, found running, exit 1
    {
        let d = dirs();
        let port = free_port();
        let server = start(&venv, &d, port, "", "open");
        let out = audit(&d, port, "json");
        let all = findings(&out);
        let log = || {
            format!(
                "{}\nserver log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                server.log()
            )
        };
        let unauth: Vec<_> = all
            .iter()
            .filter(|f| f["rule_id"] == "jupyter.unauthenticated")
            .collect();
        assert_eq!(unauth.len(), 1, "{}", log());
        assert_eq!(unauth[0]["severity"], "critical");
        assert!(evidence(unauth[0], "url")
            .iter()
            .any(|u| u.contains(&format!(":{port}/"))));
        let pid = server.child.id();
        let running: Vec<_> = all
            .iter()
            .filter(|f| f["rule_id"] == "jupyter.server-running")
            .filter(|f| {
                evidence(f, "process")
                    .iter()
                    .any(|p| p.starts_with(&format!("pid {pid}:")))
            })
            .collect();
        assert_eq!(
            running.len(),
            1,
            "server pid {pid} not found running: {}",
            log()
        );
        assert!(
            evidence(running[0], "listening")
                .iter()
                .any(|l| l.contains(&format!("127.0.0.1:{port}"))),
            "{}",
            log()
        );
        assert!(
            evidence(running[0], "token").contains(&"empty"),
            "{}",
            log()
        );
        // the command line's empty token is an auth-disabled finding with the process as source
        assert!(
            all.iter().any(|f| f["rule_id"] == "jupyter.auth-disabled"
                && evidence(f, "source")
                    .iter()
                    .any(|s| s.contains(&pid.to_string()))),
            "{}",
            log()
        );
        assert_eq!(out.status.code(), Some(1), "{}", log());
        drop(server);
    }

    // 2. with a token: auth required, nothing critical, token never printed
    {
        let d = dirs();
        let port = free_port();
        let token = format!(
            "pywardtesttoken{:x}",
            std::process::id() as u64 * 7_919 + port as u64
        );
        let server = start(&venv, &d, port, &token, "token");
        for format in ["json", "table", "sarif"] {
            let out = audit(&d, port, format);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                !text.contains(&token),
                "the token leaked in {format} output:\n{text}"
            );
            assert!(matches!(out.status.code(), Some(0 | 1)), "{format}: {text}");
            if format == "json" {
                let all = findings(&out);
                let log = || format!("{text}\nserver log:\n{}", server.log());
                assert!(all.iter().all(|f| f["severity"] != "critical"), "{}", log());
                assert!(
                    all.iter().any(|f| f["rule_id"] == "jupyter.auth-required"
                        && evidence(f, "url")
                            .iter()
                            .any(|u| u.contains(&format!(":{port}/")))),
                    "{}",
                    log()
                );
                let pid = server.child.id();
                let running: Vec<_> = all
                    .iter()
                    .filter(|f| f["rule_id"] == "jupyter.server-running")
                    .filter(|f| {
                        evidence(f, "process")
                            .iter()
                            .any(|p| p.starts_with(&format!("pid {pid}:")))
                    })
                    .collect();
                assert_eq!(running.len(), 1, "{}", log());
                assert!(
                    evidence(running[0], "token").contains(&"present (redacted)"),
                    "{}",
                    log()
                );
                if !is_root() {
                    assert_eq!(out.status.code(), Some(0), "{}", log());
                }
            }
        }
        drop(server);
    }
}

/// Usage errors exit 2 (these need no Jupyter).
#[test]
fn audit_usage_errors_exit_2() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pyward"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "audit",
        "jupyter",
        "--no-proc",
        "--url",
        "http://192.0.2.1:8888/",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote-probe"));
    let out = run(&["audit", "jupyter", "--no-proc", "--url", "ftp://x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["audit", "jupyter", "--root", "/nonexistent/pyward"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["audit", "jupyter", "--format", "cyclonedx"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A config fixture through the CLI: JSON and SARIF carry the finding, exit 1; a clean root exits 0.
#[test]
fn audit_fixture_root_formats_and_exit_codes() {
    let t = tempfile::tempdir().unwrap();
    let cfg = t.path().join("etc/jupyter");
    std::fs::create_dir_all(&cfg).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pyward"))
            .args(["audit", "jupyter", "--no-proc", "--no-probe", "--root"])
            .arg(t.path())
            .args(args)
            .env_remove("JUPYTER_CONFIG_DIR")
            .env_remove("JUPYTER_RUNTIME_DIR")
            .output()
            .unwrap()
    };
    let out = run(&["--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::write(
        cfg.join("jupyter_notebook_config.py"),
        "c.NotebookApp.token = ''\nc.NotebookApp.ip = '0.0.0.0'\n",
    )
    .unwrap();
    let out = run(&["--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let all = findings(&out);
    let f = all
        .iter()
        .find(|f| f["rule_id"] == "jupyter.auth-disabled")
        .expect("auth-disabled");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["line"], 1);
    assert!(f["mitre"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "T1190"));
    let out = run(&["--format", "sarif"]);
    assert_eq!(out.status.code(), Some(1));
    let sarif = String::from_utf8_lossy(&out.stdout);
    assert!(sarif.contains("jupyter.auth-disabled") && sarif.contains("2.1.0"));
    let out = run(&[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("c.IdentityProvider.token"));
}
