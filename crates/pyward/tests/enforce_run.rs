//! `pyward run --enforce` and the behavioural detectors, end to end against the real kernel
//! (PYWARD_BPF_TESTS=1): the incident-2 ransomware simulation is stopped within a few
//! files with a capture written, a dropped executable is killed before it runs (and only
//! alerted without --enforce), a connect to a listed loopback address fails with EPERM,
//! and a protected key is never printed. Every fixture is inert and lives in a tempdir.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn enabled(test: &str) -> bool {
    if std::env::var("PYWARD_BPF_TESTS").as_deref() == Ok("1") {
        true
    } else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: set PYWARD_BPF_TESTS=1 (as root) to run the eBPF tests"
        );
        false
    }
}

/// One enforcing `pyward run` at a time: each loads its own programs on the same
/// tracepoints, and timing-sensitive kills are measured one tree at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn pyward() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pyward"))
}

fn alerts(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad alert line {l:?}: {e}")))
        .collect()
}

fn rules_of(all: &[serde_json::Value]) -> Vec<String> {
    all.iter()
        .filter_map(|a| a["rule"].as_str().map(str::to_owned))
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const RANSOM: &str = r#"
import os, sys
d = sys.argv[1]
key = os.urandom(256)
for n in sorted(os.listdir(d)):
    p = os.path.join(d, n)
    b = open(p, 'rb').read()
    with open(p + '.enc', 'wb') as f:
        f.write(bytes(c ^ key[i % 256] for i, c in enumerate(b)))
    os.unlink(p)
os.unlink(sys.argv[0])
"#;

#[test]
fn ransomware_simulation_is_stopped_within_three_files_with_a_capture() {
    if !enabled("ransomware_simulation_is_stopped_within_three_files_with_a_capture") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for i in 0..500 {
        std::fs::write(
            data.join(format!("notebook-{i:03}.txt")),
            format!("inert test data line {i}\n").repeat(40),
        )
        .unwrap();
    }
    let script = dir.path().join("encrypt.py");
    std::fs::write(&script, RANSOM).unwrap();
    let captures = dir.path().join("captures");
    std::fs::create_dir(&captures).unwrap();
    let alerts_file = dir.path().join("alerts.jsonl");
    // --stats: should this fail, the output shows pyward's counters and any stall.
    let o = pyward()
        .args([
            "run",
            "--no-intel",
            "--enforce",
            "--stats",
            "--runtime-policy",
        ])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policies/runtime-incident2.yaml"
        ))
        .arg("--capture-dir")
        .arg(&captures)
        .arg("--alerts")
        .arg(&alerts_file)
        .args(["--", "python3"])
        .arg(&script)
        .arg(&data)
        .output()
        .unwrap();
    let left = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".enc"))
        .count();
    let lost = 500 - left;
    assert!(
        lost <= 3,
        "{lost} files lost (goal: at most 3); {}",
        text(&o)
    );
    assert_eq!(
        o.status.code(),
        Some(128 + 9),
        "killed by SIGKILL; {}",
        text(&o)
    );
    assert!(
        script.exists(),
        "the script never reached its self-deletion"
    );
    let all = alerts(&alerts_file);
    let kill = all
        .iter()
        .find(|a| a["rule"] == "pyward: ransomware-like process killed")
        .unwrap_or_else(|| panic!("no kill alert: {:?}", rules_of(&all)));
    assert_eq!(kill["priority"], "Critical");
    assert!(
        kill["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "T1486"),
        "{kill}"
    );
    // The capture holds the events around the kill and replays through the rules engine.
    let files: Vec<_> = std::fs::read_dir(&captures).unwrap().flatten().collect();
    assert_eq!(files.len(), 1, "one capture file expected");
    let capture = files[0].path();
    let lines = std::fs::read_to_string(&capture).unwrap();
    assert!(lines.lines().count() > 10, "capture too small: {lines}");
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("size limit"),
        "the whole window is in the capture; {}",
        text(&o)
    );
    assert!(
        lines.contains("notebook-000.txt"),
        "the first encrypted file is in the capture; capture ({} events): first {:.300}, last {:.300}; {}",
        lines.lines().count(),
        lines.lines().next().unwrap_or_default(),
        lines.lines().last().unwrap_or_default(),
        text(&o)
    );
    let r = pyward()
        .args([
            "rules",
            "replay",
            "--no-intel",
            "--format",
            "json",
            "--rules",
        ])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../rules/pyward_rules.yaml"
        ))
        .arg(&capture)
        .output()
        .unwrap();
    let replayed = String::from_utf8_lossy(&r.stdout);
    assert!(
        replayed.contains("ransomware extension"),
        "replay of the capture shows the .enc writes: {}",
        text(&r)
    );
}

#[test]
fn dropped_executable_is_alerted_and_with_enforce_killed_before_it_runs() {
    if !enabled("dropped_executable_is_alerted_and_with_enforce_killed_before_it_runs") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let dropped = dir.path().join("dropped.sh");
    // A copied binary, then a written script that would leave a marker file.
    let script = format!(
        "cp /bin/true {d}/t && {d}/t; echo true=$?; \
         printf '#!/bin/sh\\ntouch {m}\\n' > {s} && chmod +x {s} && {s}; echo script=$?",
        d = dir.path().display(),
        m = marker.display(),
        s = dropped.display()
    );
    // Without --enforce: both run, and the drift detector alerts on them.
    let alerts_file = dir.path().join("alerts.jsonl");
    let o = pyward()
        .args(["run", "--no-intel", "--alerts"])
        .arg(&alerts_file)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("true=0") && out.contains("script=0"),
        "{}",
        text(&o)
    );
    assert!(marker.exists(), "without --enforce the script runs");
    let all = alerts(&alerts_file);
    let drift: Vec<_> = all
        .iter()
        .filter(|a| a["rule"] == "Drifted Executable Run")
        .collect();
    assert!(
        drift
            .iter()
            .any(|a| a["output_fields"]["proc.exepath"].as_str()
                == Some(&format!("{}/t", dir.path().display()))),
        "drift alert for the copied binary expected: {:#?}",
        rules_of(&all)
    );
    std::fs::remove_file(&marker).unwrap();
    std::fs::remove_file(dir.path().join("t")).unwrap();
    std::fs::remove_file(&dropped).unwrap();

    // With --enforce: both are killed by SIGKILL before running (137 = 128 + 9).
    let alerts_file = dir.path().join("alerts-enforce.jsonl");
    let o = pyward()
        .args(["run", "--no-intel", "--enforce", "--alerts"])
        .arg(&alerts_file)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("true=137") && out.contains("script=137"),
        "{}",
        text(&o)
    );
    assert!(
        !marker.exists(),
        "the dropped script wrote its marker: it ran"
    );
    let all = alerts(&alerts_file);
    let kills = all
        .iter()
        .filter(|a| {
            a["rule"]
                .as_str()
                .is_some_and(|r| r.starts_with("pyward:") && r.contains("killed"))
        })
        .count();
    assert!(kills >= 2, "two kill alerts expected: {:?}", rules_of(&all));
}

#[test]
fn connect_to_a_listed_address_is_denied_and_protected_keys_are_not_read() {
    if !enabled("connect_to_a_listed_address_is_denied_and_protected_keys_are_not_read") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // 127.0.0.66 is added to the malicious-IP list by an extra rules file.
    let extra = dir.path().join("extra.yaml");
    std::fs::write(
        &extra,
        "- list: pyward_malicious_ips\n  items: ['127.0.0.66']\n  override:\n    items: append\n",
    )
    .unwrap();
    let blocked = TcpListener::bind("127.0.0.66:0").unwrap();
    let open = TcpListener::bind("127.0.0.67:0").unwrap();
    blocked.set_nonblocking(true).unwrap();
    let (bport, oport) = (
        blocked.local_addr().unwrap().port(),
        open.local_addr().unwrap().port(),
    );
    let keydir = dir.path().join("home/.ssh");
    std::fs::create_dir_all(&keydir).unwrap();
    let key = keydir.join("id_ed25519");
    std::fs::write(&key, "INERT TEST FIXTURE, NOT A KEY\n").unwrap();
    let py = format!(
        "import socket\n\
         for host, port in (('127.0.0.66', {bport}), ('127.0.0.67', {oport})):\n\
         \x20   s = socket.socket()\n\
         \x20   try:\n\
         \x20       s.connect((host, port)); s.sendall(b'x'); print(host, 'ok')\n\
         \x20   except OSError as e:\n\
         \x20       print(host, 'errno', e.errno)\n"
    );
    let alerts_file = dir.path().join("alerts.jsonl");
    let o = pyward()
        .args(["run", "--no-intel", "--enforce", "--rules"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules/pyward_rules.yaml"))
        .arg("--rules")
        .arg(&extra)
        .arg("--protect")
        .arg(&keydir)
        .arg("--alerts")
        .arg(&alerts_file)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "python3 -c \"$0\"; cat {k}; echo cat=$?; ssh-keygen -l -f {k} >/dev/null 2>&1; echo ssh=$?",
            k = key.display()
        ))
        .arg(&py)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("127.0.0.66 errno 1"),
        "EPERM expected: {}",
        text(&o)
    );
    assert!(
        out.contains("127.0.0.67 ok"),
        "unlisted address works: {}",
        text(&o)
    );
    // Nothing reached the blocked listener.
    std::thread::sleep(Duration::from_millis(100));
    match blocked.accept() {
        Ok((mut c, _)) => {
            let mut buf = Vec::new();
            let _ = c.read_to_end(&mut buf);
            panic!("blocked listener got a connection ({} bytes)", buf.len());
        }
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock),
    }
    assert!(
        !out.contains("INERT TEST FIXTURE"),
        "key printed: {}",
        text(&o)
    );
    assert!(out.contains("cat=137"), "cat killed: {}", text(&o));
    // ssh-keygen is an ssh program: allowed to open it (any exit code but 137).
    assert!(
        out.contains("ssh=") && !out.contains("ssh=137"),
        "ssh-keygen must not be killed: {}",
        text(&o)
    );
    let all = alerts(&alerts_file);
    let rules = rules_of(&all);
    assert!(
        rules
            .iter()
            .any(|r| r.contains("connect") && r.contains("denied")),
        "{rules:?}"
    );
    assert!(rules.iter().any(|r| r.contains("killed")), "{rules:?}");
}

/// Everyday bulk file work under the same enforcement: no kill, no ransomware or drift alert.
#[test]
fn benign_bulk_workloads_are_never_killed() {
    if !enabled("benign_bulk_workloads_are_never_killed") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    std::fs::create_dir(&tree).unwrap();
    for i in 0..300 {
        let sub = tree.join(format!("pkg{}", i % 10));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join(format!("mod_{i}.py")),
            format!("def f{i}(x):\n    return x * {i}\n").repeat(20),
        )
        .unwrap();
    }
    let wheel = pyward_testkit::wheel::WheelSpec::new("inertpkg", "1.0.0")
        .file("inertpkg/__init__.py", "VALUE = 1\n")
        .write_to(d)
        .unwrap();
    let script = format!(
        r#"set -e
cd {d}
cp -r tree copy
gzip -r copy && gunzip -r copy
tar czf tree.tgz tree && mkdir x && tar xzf tree.tgz -C x
python3 -m compileall -q copy
python3 - <<'PY'
import shutil, sqlite3
shutil.copytree('tree', 'shutil-copy'); shutil.rmtree('shutil-copy')
db = sqlite3.connect('bulk.db')
db.execute('create table t (k integer, v text)')
for i in range(200):
    db.execute('insert into t values (?, ?)', (i, 'v' * 100)); db.commit()
db.execute('vacuum'); db.close()
PY
git init -q repo && cp -r tree/pkg0 repo/ && cd repo
git -c user.name=t -c user.email=t@example.invalid add -A
git -c user.name=t -c user.email=t@example.invalid commit -qm init
git gc -q --aggressive && cd ..
python3 -m pip install -q --no-deps --no-index --disable-pip-version-check --target site {wheel}
echo ALL-DONE
"#,
        d = d.display(),
        wheel = wheel.display()
    );
    let alerts_file = d.join("alerts.jsonl");
    let o = pyward()
        .args(["run", "--no-intel", "--enforce", "--alerts"])
        .arg(&alerts_file)
        .args(["--", "sh", "-c", &script])
        .output()
        .unwrap();
    let all = alerts(&alerts_file);
    let rules = rules_of(&all);
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("ALL-DONE"),
        "alerts: {rules:?}; {}",
        text(&o)
    );
    let bad: Vec<&String> = rules
        .iter()
        .filter(|r| {
            r.contains("killed")
                || r.contains("denied")
                || r.starts_with("Ransomware")
                || r.starts_with("Drifted")
                || r.starts_with("Self-Deleting")
        })
        .collect();
    let detail: Vec<&serde_json::Value> = all
        .iter()
        .filter(|a| {
            a["rule"]
                .as_str()
                .is_some_and(|r| bad.iter().any(|b| *b == r))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "false positives on benign work: {detail:#?}"
    );
}

/// Incident 1's runtime policy on a `pyward run` tree: the SSH key read triggers capture,
/// then the command's cgroup is frozen and killed, so even a backgrounded child that would
/// run for a minute is gone at once.
#[test]
fn runtime_policy_stops_the_commands_cgroup() {
    if !enabled("runtime_policy_stops_the_commands_cgroup") {
        return;
    }
    let _serial = serial();
    let home = tempfile::Builder::new()
        .prefix("pyward-test-home-")
        .tempdir_in("/home")
        .expect("create a fake home under /home (root needed)");
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    let key = home.path().join(".ssh/id_rsa");
    std::fs::write(&key, "INERT TEST FIXTURE, NOT A KEY\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let captures = out.path().join("captures");
    std::fs::create_dir(&captures).unwrap();
    let alerts_file = out.path().join("alerts.jsonl");
    let started = std::time::Instant::now();
    let o = pyward()
        .args(["run", "--no-intel", "--runtime-policy"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policies/runtime-incident1.yaml"
        ))
        .arg("--capture-dir")
        .arg(&captures)
        .arg("--alerts")
        .arg(&alerts_file)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "sleep 60 & cat {} > /dev/null; sleep 60; echo survived",
            key.display()
        ))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the tree was not stopped ({took:?}); {}",
        text(&o)
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("survived"));
    assert_eq!(o.status.code(), Some(128 + 9), "{}", text(&o));
    let all = alerts(&alerts_file);
    let rules = rules_of(&all);
    assert!(
        rules
            .iter()
            .any(|r| r == "SSH Information Read by Non-SSH Program"),
        "{rules:?}"
    );
    let actions: Vec<&str> = all
        .iter()
        .filter(|a| a["rule"] == "pyward response action")
        .filter_map(|a| a["output"].as_str())
        .collect();
    for what in ["capture", "freeze_container", "kill_container"] {
        assert!(
            actions
                .iter()
                .any(|a| a.contains(what) && a.contains("done")),
            "{what} not done: {actions:#?}"
        );
    }
    assert_eq!(std::fs::read_dir(&captures).unwrap().count(), 1);
}

/// Without --enforce the same script runs to the end: the detectors report the encryption
/// (T1486) early and the script's deletion of itself (T1070.004).
#[test]
fn ransomware_and_self_deletion_are_detected_without_enforce() {
    if !enabled("ransomware_and_self_deletion_are_detected_without_enforce") {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for i in 0..60 {
        std::fs::write(
            data.join(format!("report-{i:02}.csv")),
            format!("id,value\n{i},inert test data\n").repeat(30),
        )
        .unwrap();
    }
    let script = dir.path().join("encrypt.py");
    std::fs::write(&script, RANSOM).unwrap();
    let alerts_file = dir.path().join("alerts.jsonl");
    let o = pyward()
        .args(["run", "--no-intel", "--alerts"])
        .arg(&alerts_file)
        .args(["--", "python3"])
        .arg(&script)
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!script.exists(), "the script deleted itself");
    let all = alerts(&alerts_file);
    let find = |rule: &str| {
        all.iter()
            .find(|a| a["rule"] == rule)
            .unwrap_or_else(|| panic!("no {rule:?} alert: {:?}", rules_of(&all)))
    };
    let enc = find("Ransomware-like File Encryption");
    assert!(enc["tags"].as_array().unwrap().iter().any(|t| t == "T1486"));
    assert!(
        enc["output_fields"]["detect.files"].as_u64().unwrap() <= 5,
        "detected late: {enc}"
    );
    let gone = find("Self-Deleting Script");
    assert!(gone["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "T1070.004"));
}
