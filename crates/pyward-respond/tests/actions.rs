//! Actions on real processes: kill_tree of a shell tree the test starts; cgroup v2 freeze,
//! thaw and kill of a tree in a child cgroup the test creates (root: PYWARD_BPF_TESTS=1);
//! the Responder running a runtime policy end to end.

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{alert, is_dead, proc_state, root_tests_enabled, wait_until, Shared};
use pyward_respond::capture::{CaptureConfig, Capturer};
use pyward_respond::cgroup::{Cgroup, CgroupFs};
use pyward_respond::policy::{RuntimePolicies, Scope};
use pyward_respond::process::{self, KillError};
use pyward_respond::respond::{Responder, ACTION_RULE};
use pyward_respond::{AlertFormat, Route, SinkSet, WriterSink};
use pyward_rules::{Priority, ReplayEvent};

const LONG: Duration = Duration::from_secs(30);

/// Kills the child (by pid) if a test fails half-way.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `sh -c 'sleep 300 & sleep 300'` and the pids of its tree once both sleeps run.
fn spawn_tree(cmd: &mut Command) -> (Guard, u32, Vec<u32>) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let root = child.id();
    let guard = Guard(Some(child));
    let mut tree = Vec::new();
    let ok = wait_until(LONG, || {
        let mut all = vec![root];
        all.extend(process::descendants(root));
        let sleeps = all
            .iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim() == "sleep")
            })
            .count();
        tree = all;
        sleeps == 2
    });
    assert!(ok, "the tree did not start: {tree:?}");
    (guard, root, tree)
}

fn sh_tree() -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", "sleep 300 & sleep 300"]);
    c
}

#[test]
fn kill_tree_kills_a_real_shell_tree() {
    let (mut guard, root, tree) = spawn_tree(&mut sh_tree());
    assert!(tree.len() >= 2, "{tree:?}");
    let t = std::time::Instant::now();
    let report = process::kill_tree(root, LONG).unwrap();
    eprintln!(
        "kill_tree of {} processes: {:?} (stop, kill, all exited: {})",
        tree.len(),
        t.elapsed(),
        report.confirmed_dead.len()
    );
    let mut killed = report.killed.clone();
    killed.sort_unstable();
    let mut want = tree.clone();
    want.sort_unstable();
    assert_eq!(killed, want, "every member of the tree got SIGKILL");
    assert_eq!(
        report.killed.last(),
        Some(&root),
        "leaves first, the root last"
    );
    let status = guard.0.take().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    for p in &tree {
        assert!(
            wait_until(LONG, || is_dead(*p)),
            "pid {p} survived: {:?}",
            proc_state(*p)
        );
    }
}

#[test]
fn kill_refuses_init_self_and_ancestors() {
    for pid in [0, 1, std::process::id()] {
        assert!(
            matches!(
                process::kill_tree(pid, LONG),
                Err(KillError::Refused { .. })
            ),
            "{pid}"
        );
        assert!(
            matches!(
                process::kill_process(pid, LONG),
                Err(KillError::Refused { .. })
            ),
            "{pid}"
        );
    }
    let parent = process::stat_of(std::process::id()).unwrap().ppid;
    if parent > 1 {
        let e = process::kill_tree(parent, LONG).unwrap_err().to_string();
        assert!(e.contains("ancestor of pyward"), "{e}");
        assert!(proc_state(parent).is_some());
    }
    // kthreadd (pid 2) when visible.
    if process::stat_of(2).is_some_and(|s| s.is_kthread()) {
        assert!(matches!(
            process::kill_tree(2, LONG),
            Err(KillError::Refused { .. })
        ));
    }
    // A pid that does not exist.
    let mut c = Command::new("true").spawn().unwrap();
    let gone = c.id();
    c.wait().unwrap();
    assert!(matches!(
        process::kill_process(gone, LONG),
        Err(KillError::Gone(_)) | Err(KillError::Refused { .. })
    ));
}

#[test]
fn responder_runs_incident2_policy_kill_tree_and_capture() {
    let dir = tempfile::tempdir().unwrap();
    let (mut guard, root, tree) = spawn_tree(&mut sh_tree());
    let out = Shared::default();
    let pager = Shared::default();
    let mut sinks = SinkSet::new();
    sinks
        .add(Box::new(WriterSink::new(
            "stderr",
            AlertFormat::Json,
            Box::new(out.clone()),
        )))
        .unwrap();
    sinks
        .add_routed(
            Box::new(WriterSink::new(
                "pager",
                AlertFormat::Json,
                Box::new(pager.clone()),
            )),
            Route::NotifyOnly,
        )
        .unwrap();
    let policies = RuntimePolicies::from_yaml_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/runtime-incident2.yaml"),
    )
    .unwrap();
    // A policy needing capture is refused without a capture directory.
    assert!(Responder::new(SinkSet::new(), policies.clone(), None).is_err());
    let capture = Capturer::new(CaptureConfig::new(dir.path())).unwrap();
    let mut r = Responder::new(sinks, policies, Some(capture)).unwrap();

    let now = pyward_respond::sink::now_ns();
    let line = format!(
        r#"{{"time":{now},"type":"renameat2","res":0,"proc":{{"pid":{root},"name":"python3"}},"args":[["oldpath","/data/a.txt"],["newpath","/data/a.txt.enc"]]}}"#
    );
    let ev = std::sync::Arc::new(ReplayEvent::parse_line(&line).unwrap());
    r.observe(&ev);
    let a = alert(
        "File Renamed to Ransomware Extension",
        Priority::Warning,
        now,
        &[("proc.pid", root.into())],
    );
    let recs = r.on_alert(&a, &Scope::from_event(&ev));
    let kinds: Vec<(&str, bool)> = recs.iter().map(|x| (x.action, x.ok)).collect();
    assert_eq!(
        kinds,
        [("capture", true), ("notify", true), ("kill_tree", true)],
        "{recs:#?}"
    );
    let status = guard.0.take().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    for p in &tree {
        assert!(wait_until(LONG, || is_dead(*p)), "pid {p} survived");
    }
    // The alert went to the default sink and, notified, to the pager; the action records
    // are alerts too.
    assert_eq!(pager.lines().len(), 1);
    let lines = out.lines();
    let rules: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["rule"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(rules[0], "File Renamed to Ransomware Extension");
    assert!(
        rules[1..].iter().all(|r| r == ACTION_RULE) && rules.len() == 3,
        "{rules:?}"
    );
    let summary = r.finish(Duration::from_secs(1));
    let cap = summary.closed_capture.expect("capture closed at finish");
    let text = std::fs::read_to_string(&cap.path).unwrap();
    let mut reader = pyward_rules::ReplayReader::new();
    let back: Vec<ReplayEvent> = text
        .lines()
        .filter_map(|l| reader.parse_line(l).unwrap())
        .collect();
    assert_eq!(back.len(), 1, "{text}");
    assert_eq!(
        serde_json::to_value(&back[0]).unwrap(),
        serde_json::to_value(&*ev).unwrap()
    );
    assert_eq!((summary.actions_ok, summary.actions_failed), (3, 0));
}

/// A child cgroup made by the test and removed afterwards (processes killed first).
struct TestGroup {
    fs: CgroupFs,
    group: Cgroup,
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        if !self.group.dir().exists() {
            return;
        }
        let _ = std::fs::write(self.group.dir().join("cgroup.kill"), "1");
        let _ = wait_until(LONG, || !self.group.is_populated().unwrap_or(true));
        let _ = self.group.remove();
    }
}

fn test_group(tag: &str) -> TestGroup {
    let fs = CgroupFs::discover().expect("a cgroup v2 mount (PYWARD_BPF_TESTS=1 needs it)");
    let mine = fs.cgroup_of(std::process::id()).unwrap();
    let name = format!("pyward-test-{tag}-{}", std::process::id());
    let group = fs.create_child(&mine, &name).unwrap();
    assert!(group.dir().starts_with(fs.mount()));
    TestGroup { fs, group }
}

/// Spawn `cmd` straight into `g` (moved between fork and exec).
fn spawn_in(g: &Cgroup, cmd: &mut Command) -> (Guard, u32, Vec<u32>) {
    let procs = g.procs_handle().unwrap();
    // SAFETY: join_self is a single write(2) on an fd opened before fork.
    unsafe {
        cmd.pre_exec(move || procs.join_self());
    }
    spawn_tree(cmd)
}

/// utime + stime of a pid (clock ticks).
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

#[test]
fn cgroup_freeze_thaw_kill_of_a_real_tree() {
    if !root_tests_enabled("cgroup_freeze_thaw_kill_of_a_real_tree") {
        return;
    }
    let tg = test_group("freeze");
    let (g, fs) = (&tg.group, &tg.fs);
    // A busy loop beside the two sleeps, to see the freeze stop it.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 300 & sleep 300 & while :; do :; done"]);
    let procs = g.procs_handle().unwrap();
    // SAFETY: join_self is a single write(2) on an fd opened before fork.
    unsafe {
        cmd.pre_exec(move || procs.join_self());
    }
    let (mut guard, root, tree) = spawn_tree(&mut cmd);
    let mut in_group = g.pids().unwrap();
    in_group.sort_unstable();
    let mut want = tree.clone();
    want.sort_unstable();
    assert_eq!(in_group, want, "the whole tree is in the test cgroup");
    assert_eq!(fs.cgroup_of(root).unwrap().path(), g.path());
    assert!(wait_until(LONG, || cpu_ticks(root) > 0));

    let t = std::time::Instant::now();
    g.freeze(fs, LONG).unwrap();
    eprintln!("cgroup freeze to `frozen 1`: {:?}", t.elapsed());
    let events = std::fs::read_to_string(g.dir().join("cgroup.events")).unwrap();
    assert!(
        events.contains("frozen 1") && events.contains("populated 1"),
        "{events}"
    );
    for p in &tree {
        let st = proc_state(*p).expect("frozen, not dead");
        assert_ne!(st, 'Z', "pid {p}");
    }
    let before = cpu_ticks(root);
    std::thread::sleep(Duration::from_millis(300)); // observation period, not synchronisation
    assert_eq!(cpu_ticks(root), before, "a frozen busy loop uses no CPU");

    g.thaw(LONG).unwrap();
    assert!(!g.is_frozen().unwrap());
    assert!(
        wait_until(LONG, || cpu_ticks(root) > before),
        "thawed loop runs again"
    );

    g.freeze(fs, LONG).unwrap();
    let t = std::time::Instant::now();
    g.kill(fs, LONG).unwrap();
    eprintln!("cgroup.kill to `populated 0`: {:?}", t.elapsed());
    assert!(!g.is_populated().unwrap());
    let status = guard.0.take().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    for p in &tree {
        assert!(wait_until(LONG, || is_dead(*p)), "pid {p} survived");
    }
    // The root cgroup and pyward's own are refused.
    let root_g = fs.group("/").unwrap();
    assert!(root_g
        .freeze(fs, LONG)
        .unwrap_err()
        .to_string()
        .contains("root cgroup"));
    let mine = fs.cgroup_of(std::process::id()).unwrap();
    assert!(mine.kill(fs, LONG).is_err());
    assert!(fs.group("/../etc").is_err());
}

#[test]
fn responder_stops_the_container_incident1() {
    if !root_tests_enabled("responder_stops_the_container_incident1") {
        return;
    }
    // As `pyward run` does: a fresh cgroup for the command's tree.
    let fs = CgroupFs::discover().expect("a cgroup v2 mount");
    let group = fs.create_run_cgroup().unwrap();
    let tg = TestGroup { fs, group };
    let (mut guard, root, tree) = spawn_in(&tg.group, &mut sh_tree());
    let dir = tempfile::tempdir().unwrap();
    let out = Shared::default();
    let mut sinks = SinkSet::new();
    sinks
        .add(Box::new(WriterSink::new(
            "stderr",
            AlertFormat::Text,
            Box::new(out.clone()),
        )))
        .unwrap();
    let policies = RuntimePolicies::from_yaml_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/runtime-incident1.yaml"),
    )
    .unwrap();
    let capture = Capturer::new(CaptureConfig::new(dir.path())).unwrap();
    let mut r = Responder::new(sinks, policies, Some(capture)).unwrap();
    let now = pyward_respond::sink::now_ns();
    let ev = std::sync::Arc::new(ReplayEvent::parse_line(&format!(
        r#"{{"time":{now},"type":"openat","res":3,"proc":{{"pid":{root},"name":"python3"}},"fd":{{"type":"file","name":"/home/alice/.ssh/id_rsa"}}}}"#
    ))
    .unwrap());
    r.observe(&ev);
    let a = alert(
        "SSH Information Read by Non-SSH Program",
        Priority::Error,
        now,
        &[("proc.pid", root.into())],
    );
    let scope = Scope::from_event(&ev)
        .in_run_tree(true)
        .with_cgroup(tg.group.path());
    let recs = r.on_alert(&a, &scope);
    let kinds: Vec<(&str, bool)> = recs.iter().map(|x| (x.action, x.ok)).collect();
    assert_eq!(
        kinds,
        [
            ("capture", true),
            ("notify", true),
            ("freeze_container", true),
            ("kill_container", true)
        ],
        "{recs:#?}"
    );
    assert!(recs[2]
        .target
        .ends_with(&format!("/pyward-run-{}", std::process::id())));
    assert!(
        !tg.group.is_populated().unwrap(),
        "cgroup.events: populated 0"
    );
    let status = guard.0.take().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    for p in &tree {
        assert!(wait_until(LONG, || is_dead(*p)), "pid {p} survived");
    }
    // Capture window: still open (15 s after); a manual tick past it closes it.
    let closed = r.tick(now + 16_000_000_000).expect("closed after t+15 s");
    assert_eq!(closed.events, 1);
    let text = out.lines().join("\n");
    assert!(text.contains("kill_container cgroup /"), "{text}");
    assert!(text.contains("capture closed: 1 event(s)"), "{text}");
    tg.group.remove_when_empty(&tg.fs, LONG, false).unwrap();
    assert!(!tg.group.dir().exists());
}
