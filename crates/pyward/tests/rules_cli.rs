//! `pyward rules check` and `pyward rules replay` run as the real binary.

mod common;

use common::{pyward, run, Run};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/falco-rules")
        .join(name)
}

fn pyward_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules/pyward_rules.yaml")
}

fn check_json(files: &[PathBuf]) -> (Run, serde_json::Value) {
    let r = run(pyward()
        .args(["rules", "check", "--format", "json"])
        .args(files));
    let j = r.json();
    (r, j)
}

#[test]
fn check_falco_rules_has_no_errors_and_counts_its_items() {
    let (r, j) = check_json(&[shared("falco_rules.yaml")]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        j["errors"].as_array().map(Vec::len),
        Some(0),
        "{}",
        r.stdout
    );
    assert_eq!(j["rules"], 25);
    assert_eq!(j["enabled_rules"], 25);
    assert_eq!(j["macros"], 87);
    assert_eq!(j["lists"], 49);
    let types: Vec<&str> = j["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    for t in [
        "execve",
        "execveat",
        "open",
        "openat",
        "openat2",
        "connect",
        "ptrace",
        "symlinkat",
    ] {
        assert!(types.contains(&t), "event type {t} missing from {types:?}");
    }
    assert!(j["warnings"].is_array());
}

#[test]
fn check_all_upstream_files_together_and_alone() {
    let files: Vec<PathBuf> = [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ]
    .iter()
    .map(|f| shared(f))
    .collect();
    for f in &files {
        let (r, j) = check_json(std::slice::from_ref(f));
        assert_eq!(r.code, 0, "{}: {}{}", f.display(), r.stdout, r.stderr);
        assert_eq!(j["errors"].as_array().map(Vec::len), Some(0));
    }
    let (r, j) = check_json(&files);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // 25 + 31 + 37 rules, none of them sharing a name.
    assert_eq!(j["rules"], 93, "{}", r.stdout);
    assert_eq!(j["enabled_rules"], 93 - 12);
}

#[test]
fn check_pyward_rules_alone_and_after_falco_rules() {
    let (r, j) = check_json(&[pyward_rules()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let ours = j["rules"].as_u64().unwrap();
    assert!(ours >= 8, "{}", r.stdout);
    assert_eq!(j["enabled_rules"].as_u64(), Some(ours));
    let (r, j) = check_json(&[shared("falco_rules.yaml"), pyward_rules()]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(j["rules"].as_u64(), Some(25 + ours));
}

#[test]
fn check_text_output_lists_counts() {
    let r = run(pyward().args(["rules", "check"]).arg(pyward_rules()));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("rules: "), "{}", r.stdout);
    assert!(r.stdout.contains("event types"), "{}", r.stdout);
    assert!(r.stdout.contains("execve"), "{}", r.stdout);
    assert!(r.stdout.contains("0 error(s)"), "{}", r.stdout);
}

#[test]
fn check_broken_file_exits_2_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("broken.yaml");
    std::fs::write(
        &f,
        "- list: ok_list\n  items: [a, b]\n\n- rule: Broken\n  desc: uses a macro nobody defined\n  condition: evt.type = execve and no_such_macro\n  output: x %proc.name\n  priority: WARNING\n",
    )
    .unwrap();
    let (r, j) = check_json(std::slice::from_ref(&f));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let errors = j["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{}", r.stdout);
    let e = &errors[0];
    assert!(
        e["message"].as_str().unwrap().contains("no_such_macro"),
        "{e}"
    );
    assert!(e["file"].as_str().unwrap().ends_with("broken.yaml"), "{e}");
    assert!(
        e["line"].as_u64().unwrap() >= 4,
        "error should point at the rule: {e}"
    );

    // Text mode: file:line:col on standard error.
    let r = run(pyward().args(["rules", "check"]).arg(&f));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    let pos = format!("broken.yaml:{}:", e["line"]);
    assert!(r.stderr.contains(&pos), "no {pos} in {}", r.stderr);
}

#[test]
fn check_unreadable_yaml_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(&f, b"- rule: [unterminated\n  \xff\xfe\n").unwrap();
    let r = run(pyward().args(["rules", "check"]).arg(&f));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("bad.yaml"), "{}", r.stderr);
    let r = run(pyward().args(["rules", "check", "/nonexistent/pyward-rules.yaml"]));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("/nonexistent/pyward-rules.yaml"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// replay

const PIP_JEILYFISH: &str = r#"{"time":"2026-07-30T13:53:31.726060287Z","type":"execve","res":0,"proc":{"pid":4242,"name":"pip","exepath":"/usr/bin/pip","args":["install","jeIlyfish==0.5.1"],"tty":34816},"ancestors":[{"name":"bash"},{"name":"sshd"}],"user":{"uid":0,"name":"root","loginuid":-1}}"#;
const PIP_CLEAN: &str = r#"{"time":"2026-07-30T13:53:32Z","type":"execve","res":0,"proc":{"name":"pip","exepath":"/usr/bin/pip","args":["install","jellyfish"]},"ancestors":[{"name":"bash"}],"user":{"uid":0,"name":"root","loginuid":-1}}"#;
const SSH_READ: &str = r#"{"time":1785419613000000000,"type":"openat","res":3,"proc":{"name":"python3","exepath":"/usr/bin/python3","args":["-c","import jeIlyfish"]},"ancestors":[{"name":"bash"}],"user":{"uid":1000,"name":"alice","loginuid":1000},"fd":{"num":3,"type":"file","name":"/home/alice/.ssh/id_ed25519"},"args":{"fd":3,"dirfd":-100,"name":"/home/alice/.ssh/id_ed25519","flags":"O_RDONLY|O_CLOEXEC","mode":0}}"#;
/// pip run from /tmp with a malicious package: two pyward rules match.
const TMP_PIP: &str = r#"{"time":"2026-07-30T13:53:40Z","type":"execve","res":0,"proc":{"name":"pip","exepath":"/tmp/pip","args":["install","python3-dateutil"]},"ancestors":[{"name":"bash"}],"user":{"uid":0,"name":"root","loginuid":-1}}"#;

fn events_file(dir: &Path, lines: &[&str]) -> PathBuf {
    let f = dir.join("events.jsonl");
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    f
}

fn replay(extra: &[&str], events: &Path) -> Run {
    run(pyward()
        .args(["rules", "replay", "--rules"])
        .arg(pyward_rules())
        .args(["--hostname", "test-host"])
        .args(extra)
        .arg(events))
}

fn json_lines(r: &Run) -> Vec<serde_json::Value> {
    r.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON alert ({e}): {l}")))
        .collect()
}

#[test]
fn replay_json_alerts_have_falcos_shape() {
    let dir = tempfile::tempdir().unwrap();
    let ev = events_file(dir.path(), &[PIP_JEILYFISH, PIP_CLEAN, SSH_READ]);
    let r = replay(&["--format", "json"], &ev);
    assert_eq!(r.code, 1, "alerts fired, exit 1: {}{}", r.stdout, r.stderr);
    let alerts = json_lines(&r);
    assert_eq!(alerts.len(), 2, "{}", r.stdout);

    let a = &alerts[0];
    let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "time",
        "rule",
        "priority",
        "source",
        "hostname",
        "output",
        "tags",
        "output_fields",
    ] {
        assert!(keys.contains(&k), "key {k} missing: {a}");
    }
    assert_eq!(a["rule"], "Known-Malicious Python Package Installed");
    assert_eq!(a["priority"], "Critical");
    assert_eq!(a["source"], "syscall");
    assert_eq!(a["hostname"], "test-host");
    assert_eq!(a["time"], "2026-07-30T13:53:31.726060287Z");
    let output = a["output"].as_str().unwrap();
    assert!(
        output.starts_with("13:53:31.726060287: Critical "),
        "{output}"
    );
    assert!(output.contains("jeIlyfish==0.5.1"), "{output}");
    let tags: Vec<&str> = a["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(tags.contains(&"T1195.002"), "{tags:?}");
    let mut sorted = tags.clone();
    sorted.sort_unstable();
    assert_eq!(tags, sorted, "Falco sorts tags");
    let of = a["output_fields"].as_object().unwrap();
    assert_eq!(of["proc.cmdline"], "pip install jeIlyfish==0.5.1");
    assert_eq!(of["user.uid"], 0, "typed values: numbers stay numbers");
    assert_eq!(of["evt.time"], 1785419611726060287u64);

    let b = &alerts[1];
    assert_eq!(b["rule"], "SSH Information Read by Non-SSH Program");
    assert_eq!(b["priority"], "Error");
    assert_eq!(b["output_fields"]["fd.name"], "/home/alice/.ssh/id_ed25519");
    assert!(r.stderr.contains("3 event(s), 2 alert(s)"), "{}", r.stderr);
}

#[test]
fn replay_text_lines_are_falcos() {
    let dir = tempfile::tempdir().unwrap();
    let ev = events_file(dir.path(), &[PIP_JEILYFISH]);
    let r = replay(&[], &ev);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let line = r.stdout.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("13:53:31.726060287: Critical Python package installer run with a known-malicious package |"),
        "{line}"
    );
}

#[test]
fn replay_without_alerts_exits_0_and_fail_on_raises_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    let clean = events_file(dir.path(), &[PIP_CLEAN]);
    let r = replay(&[], &clean);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    let dir2 = tempfile::tempdir().unwrap();
    let ssh = events_file(dir2.path(), &[SSH_READ]);
    // An Error alert fires, but only Critical and above fail the run.
    let r = replay(&["--fail-on", "critical"], &ssh);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.lines().count(),
        1,
        "the alert is still printed: {}",
        r.stdout
    );
    let r = replay(&["--fail-on", "error"], &ssh);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
}

#[test]
fn replay_min_priority_drops_lower_rules() {
    let dir = tempfile::tempdir().unwrap();
    let ev = events_file(dir.path(), &[PIP_JEILYFISH, SSH_READ]);
    let r = replay(&["--format", "json", "--min-priority", "critical"], &ev);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let alerts = json_lines(&r);
    assert_eq!(alerts.len(), 1, "{}", r.stdout);
    assert_eq!(alerts[0]["priority"], "Critical");
}

#[test]
fn replay_rule_matching_first_or_all() {
    let dir = tempfile::tempdir().unwrap();
    let ev = events_file(dir.path(), &[TMP_PIP]);
    let first = json_lines(&replay(&["--format", "json"], &ev));
    assert_eq!(first.len(), 1, "first: one alert per event");
    let all = json_lines(&replay(
        &["--format", "json", "--rule-matching", "all"],
        &ev,
    ));
    let rules: Vec<&str> = all.iter().filter_map(|a| a["rule"].as_str()).collect();
    assert!(
        rules.contains(&"Known-Malicious Python Package Installed"),
        "{rules:?}"
    );
    assert!(
        rules.contains(&"Executable Run from Temporary Directory"),
        "{rules:?}"
    );
    assert_eq!(
        first[0]["rule"], all[0]["rule"],
        "first is the first in load order"
    );
}

#[test]
fn replay_reads_stdin() {
    let mut child = pyward()
        .args(["rules", "replay", "--format", "json", "--rules"])
        .arg(pyward_rules())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{SSH_READ}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let a: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(a["rule"], "SSH Information Read by Non-SSH Program");
}

#[test]
fn replay_malformed_line_is_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let ev = events_file(
        dir.path(),
        &[
            PIP_CLEAN,
            r#"{"time": 0, "type": "execve", "proc": {"name": 42}}"#,
            SSH_READ,
        ],
    );
    let r = replay(&[], &ev);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("events.jsonl:2:"),
        "line number missing: {}",
        r.stderr
    );

    let r = replay(&["--skip-invalid", "--format", "json"], &ev);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("events.jsonl:2:"), "{}", r.stderr);
    assert!(
        r.stderr.contains("1 invalid line(s) skipped"),
        "{}",
        r.stderr
    );
    assert_eq!(json_lines(&r).len(), 1);
}

#[test]
fn replay_survives_hostile_lines() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("events.jsonl");
    let mut data = Vec::new();
    data.extend_from_slice(b"[1, 2, 3]\n"); // wrong shape
    data.extend_from_slice(b"\xff\xfe{not utf8}\n");
    data.extend_from_slice(&vec![b'{'; 3 * 1024 * 1024]); // 3 MiB line, deeply nested
    data.extend_from_slice(b"\n");
    data.extend_from_slice(b"{\"time\": 0, \"type\": \"execve\", \"proc\": {\"name\": \"bash\", \"unknown_key\": 1}}\n");
    data.extend_from_slice(SSH_READ.as_bytes());
    data.extend_from_slice(b"\n{\"time\": 0, \"type\": \"exe"); // truncated last line
    std::fs::write(&f, &data).unwrap();

    let r = replay(&["--skip-invalid", "--format", "json"], &f);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        json_lines(&r).len(),
        1,
        "the one valid event alerts: {}",
        r.stdout
    );
    for n in [1, 2, 3, 4, 6] {
        assert!(
            r.stderr.contains(&format!("events.jsonl:{n}:")),
            "line {n} not reported: {}",
            r.stderr
        );
    }
    assert!(r.stderr.contains("longer than"), "{}", r.stderr);

    let r = replay(&[], &f);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("events.jsonl:1:"), "{}", r.stderr);
}

#[test]
fn replay_with_broken_rules_or_missing_events_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("bad.yaml");
    std::fs::write(
        &rules,
        "- rule: R\n  desc: d\n  condition: proc.nosuchfield = 1\n  output: o\n  priority: INFO\n",
    )
    .unwrap();
    let ev = events_file(dir.path(), &[PIP_CLEAN]);
    let r = run(pyward()
        .args(["rules", "replay", "--rules"])
        .arg(&rules)
        .arg(&ev));
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("bad.yaml:3:"), "{}", r.stderr);

    let r = replay(&[], Path::new("/nonexistent/events.jsonl"));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("/nonexistent/events.jsonl"),
        "{}",
        r.stderr
    );

    let r = run(pyward()
        .args(["rules", "replay", "--min-priority", "loud", "--rules"])
        .arg(pyward_rules())
        .arg(&ev));
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn replay_the_conformance_corpus_positives_all_alert() {
    // Every `match` entry of pyward's corpus, unwrapped, alerts with rule_matching all.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pyward-rules/tests/corpus/pyward_rules.jsonl");
    let text = std::fs::read_to_string(corpus).unwrap();
    let mut events = Vec::new();
    let mut expected = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["expect"] == "match" {
            events.push(v["event"].to_string());
            expected.push(v["rule"].as_str().unwrap().to_string());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    let ev = events_file(dir.path(), &refs);
    let r = replay(&["--format", "json", "--rule-matching", "all"], &ev);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let fired: Vec<String> = json_lines(&r)
        .iter()
        .filter_map(|a| a["rule"].as_str().map(String::from))
        .collect();
    for rule in &expected {
        assert!(fired.contains(rule), "{rule} never fired");
    }
    assert!(
        r.stderr.contains(&format!("{} event(s)", events.len())),
        "{}",
        r.stderr
    );
}

/// An OSV MAL- record for the intel database, with network IOCs.
fn mal_record(id: &str, name: &str, ips: &str) -> String {
    format!(
        r#"{{"schema_version":"1.5.0","id":"{id}","summary":"Malicious code in {name} (PyPI)","details":"test",
           "modified":"2024-02-01T00:00:00Z","published":"2024-01-01T00:00:00Z",
           "affected":[{{"package":{{"ecosystem":"PyPI","name":"{name}"}},"ranges":[{{"type":"ECOSYSTEM","events":[{{"introduced":"0"}}]}}]}}],
           "database_specific":{{"iocs":{{"ip_addresses":[{ips}]}}}}}}"#
    )
}

#[test]
fn replay_feeds_intel_iocs_into_the_pyward_lists() {
    let dir = tempfile::tempdir().unwrap();
    let osv = dir.path().join("osv");
    std::fs::create_dir_all(&osv).unwrap();
    std::fs::write(
        osv.join("MAL-2024-7001.json"),
        mal_record(
            "MAL-2024-7001",
            "stealer-kit",
            r#""192.0.2.10", "198.51.100.0/24""#,
        ),
    )
    .unwrap();
    // Hostile indicator text must never reach a condition.
    std::fs::write(
        osv.join("MAL-2024-7002.json"),
        mal_record(
            "MAL-2024-7002",
            "odd",
            r#""1.2.3.4) or (proc.name exists", "10.0.0.0/99""#,
        ),
    )
    .unwrap();
    let db = dir.path().join("intel.sqlite");
    let r = run(pyward()
        .args(["intel", "import"])
        .arg(&osv)
        .arg("--intel-db")
        .arg(&db));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);

    let connect = |ip: &str| {
        format!(
            r#"{{"time":0,"type":"connect","res":0,"proc":{{"name":"python3"}},"fd":{{"num":5,"type":"ipv4","cip":"198.51.100.200","cport":40000,"sip":"{ip}","sport":443,"l4proto":"tcp"}}}}"#
        )
    };
    let pip = r#"{"time":0,"type":"execve","res":0,"proc":{"name":"pip","args":["install","stealer-kit"]}}"#;
    let benign = r#"{"time":0,"type":"execve","res":0,"proc":{"name":"bash","args":["-c","ls"]}}"#;
    let ev = events_file(
        dir.path(),
        &[
            &connect("192.0.2.10"),
            &connect("198.51.100.77"),
            pip,
            benign,
            &connect("192.0.2.11"),
        ],
    );

    let with_db = |extra: &[&str]| {
        let r = run(pyward()
            .args(["rules", "replay", "--format", "json", "--rules"])
            .arg(pyward_rules())
            .arg("--intel-db")
            .arg(&db)
            .args(extra)
            .arg(&ev));
        let rules: Vec<(String, String)> = json_lines(&r)
            .iter()
            .map(|a| {
                (
                    a["rule"].as_str().unwrap_or_default().to_string(),
                    a["output_fields"]["fd.sip"].to_string(),
                )
            })
            .collect();
        (r, rules)
    };
    let (r, alerts) = with_db(&[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("threat intelligence: appended"),
        "{}",
        r.stderr
    );
    let names: Vec<&str> = alerts.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Outbound Connection to Known-Malicious IP",
            "Outbound Connection to Known-Malicious IP",
            "Known-Malicious Python Package Installed"
        ],
        "IP, CIDR and package name from intel alert; the benign exec and 192.0.2.11 do not: {alerts:?}"
    );

    // --no-intel: the rules files exactly as written.
    let r = run(pyward()
        .args([
            "rules",
            "replay",
            "--no-intel",
            "--format",
            "json",
            "--rules",
        ])
        .arg(pyward_rules())
        .arg(&ev));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}
