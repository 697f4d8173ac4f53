//! Runtime policies: the shipped examples, errors with line/column, matching and planning.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::alert;
use pyward_respond::policy::{
    CaptureWindow, CgroupTarget, PlannedAction, PolicyScope, RuntimePolicies, Scope,
};
use pyward_respond::Targets;
use pyward_rules::{Priority, ReplayEvent};

const T0: u64 = 1_785_419_611_726_060_287;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn load(text: &str) -> Result<RuntimePolicies, String> {
    RuntimePolicies::from_yaml_str(Path::new("test.yaml"), text).map_err(|e| e.to_string())
}

#[test]
fn incident1_example_notifies_captures_and_stops_the_container() {
    let p = RuntimePolicies::from_yaml_file(&repo_file("policies/runtime-incident1.yaml")).unwrap();
    assert_eq!(p.policies.len(), 1);
    let pol = &p.policies[0];
    assert_eq!(pol.scope, vec![PolicyScope::All]);
    assert!(p.wants_capture());
    let a = alert(
        "SSH Information Read by Non-SSH Program",
        Priority::Error,
        T0,
        &[("proc.pid", 4242.into())],
    );
    let scope = Scope {
        pid: Some(4242),
        container_id: Some("9f1c2e3d4b5a".into()),
        ..Scope::default()
    };
    let plan = p.actions_for(&a, &scope);
    let kinds: Vec<&str> = plan.iter().map(PlannedAction::kind).collect();
    assert_eq!(
        kinds,
        ["capture", "notify", "freeze_container", "kill_container"]
    );
    assert_eq!(
        plan[0],
        PlannedAction::Capture {
            policy: pol.name.clone(),
            label: a.rule.clone(),
            at_ns: T0,
            window: CaptureWindow {
                before: Duration::from_secs(5),
                after: Duration::from_secs(15)
            },
        }
    );
    assert!(matches!(
        &plan[1],
        PlannedAction::Notify {
            targets: Targets::Everything,
            ..
        }
    ));
    assert!(matches!(
        &plan[2],
        PlannedAction::FreezeCgroup {
            target: CgroupTarget::OfPid(4242),
            ..
        }
    ));
    // A rule the policy does not name, or a priority below error: nothing.
    assert!(p
        .actions_for(
            &alert("Shell Spawned by Jupyter", Priority::Critical, T0, &[]),
            &scope
        )
        .is_empty());
    assert!(p
        .actions_for(
            &alert(
                "GPG Keys Read by Non-GPG Program",
                Priority::Warning,
                T0,
                &[]
            ),
            &scope
        )
        .is_empty());
}

#[test]
fn incident2_example_kills_the_tree_on_ransomware() {
    let p = RuntimePolicies::from_yaml_file(&repo_file("policies/runtime-incident2.yaml")).unwrap();
    let scope = Scope {
        pid: Some(77),
        ..Scope::default()
    };
    // A detector alert (detector named in a tag), with MITRE T1486.
    let mut a = alert("Ransomware Encryption Burst", Priority::Critical, T0, &[]);
    a.tags = vec!["T1486".into(), "detector:ransomware".into()];
    let kinds: Vec<&str> = p
        .actions_for(&a, &scope)
        .iter()
        .map(PlannedAction::kind)
        .collect();
    assert_eq!(kinds, ["capture", "notify", "kill_tree"]);
    // pyward-detect's shape: detector in `detect.detector`, the tree root in
    // `detect.tree_root`, which kill_tree starts from.
    let a = alert(
        "Ransomware-like File Encryption",
        Priority::Critical,
        T0,
        &[
            ("detect.detector", "ransomware".into()),
            ("detect.tree_root", 70.into()),
        ],
    );
    let plan = p.actions_for(&a, &scope);
    assert!(
        matches!(
            plan.last(),
            Some(PlannedAction::KillTree { pid: Some(70), .. })
        ),
        "{plan:?}"
    );
    // Self-deleting script: notified and captured, not killed.
    let a = alert(
        "Script or Binary Deleted Itself",
        Priority::Warning,
        T0,
        &[],
    );
    let kinds: Vec<&str> = p
        .actions_for(&a, &scope)
        .iter()
        .map(PlannedAction::kind)
        .collect();
    assert_eq!(kinds, ["capture", "notify"]);
}

#[test]
fn errors_carry_line_and_column() {
    let e = load("policies:\n  - name: x\n    actions:\n      kill_tree: maybe\n").unwrap_err();
    assert!(
        e.starts_with("test.yaml:4:18: `kill_tree` must be true or false"),
        "{e}"
    );
    let e = load("policies:\n  - name: x\n    scope: {pod: a}\n    actions: {notify: true}\n")
        .unwrap_err();
    assert!(
        e.starts_with("test.yaml:3:13: unknown scope kind \"pod\""),
        "{e}"
    );
    let e = load("policies:\n  - name: x\n    match:\n      min_priority: loud\n    actions: {notify: true}\n")
        .unwrap_err();
    assert!(
        e.contains("test.yaml:4:21: unknown priority \"loud\""),
        "{e}"
    );
    let e = load("policies:\n  - name: x\n    actions:\n      capture: {before: 5 parsecs}\n")
        .unwrap_err();
    assert!(
        e.contains("test.yaml:4:25: `capture.before` must be a duration"),
        "{e}"
    );
    let e = load("policies:\n  - name: x\n    actoins: {}\n").unwrap_err();
    assert!(
        e.contains("test.yaml:3:5: unknown policy key \"actoins\""),
        "{e}"
    );
    assert!(e.contains("has no `actions`"), "{e}");
    let e = load("policies: [\n").unwrap_err();
    assert!(e.starts_with("test.yaml:2:1: YAML syntax error"), "{e}");
    let e = load("policies:\n  - name: a\n    actions: {notify: true}\n  - name: a\n    actions: {notify: true}\n")
        .unwrap_err();
    assert!(
        e.contains("test.yaml:4:11: policy \"a\" is defined twice"),
        "{e}"
    );
    // Alias bombs and huge files are bounded.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 0..8 {
        bomb.push_str(&format!(
            "b{i}: &b{i} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
            p = if i == 0 {
                "a".to_string()
            } else {
                format!("b{}", i - 1)
            }
        ));
    }
    assert!(load(&bomb).unwrap_err().contains("nodes"));
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, "#".repeat(2 << 20)).unwrap();
    let e = RuntimePolicies::from_yaml_file(&big)
        .unwrap_err()
        .to_string();
    assert!(e.contains("over the"), "{e}");
    let e = RuntimePolicies::from_yaml_file(&dir.path().join("missing.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("missing.yaml") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn scopes_and_matching() {
    let p = load(
        r#"
policies:
  - name: host only
    scope: host
    match: {tags: [t1059]}
    actions: {kill_process: true}
  - name: one container
    scope: {container: notebook}
    match: {rules: ["Shell Spawned*"]}
    actions: {kill_tree: true, notify: [pager]}
  - name: run tree
    scope: run
    match: {detectors: [drift]}
    actions: {freeze_container: true}
  - name: a cgroup
    scope: [{cgroup: /system.slice/jupyter.service}]
    actions: {kill_container: true}
  - name: off
    enabled: false
    actions: {kill_tree: true}
"#,
    )
    .unwrap();
    assert_eq!(p.sink_names(), vec![("one container", "pager")]);
    let mut shell = alert("Shell Spawned by Jupyter", Priority::Warning, T0, &[]);
    shell.tags = vec!["T1059".into()];
    let host = Scope {
        pid: Some(10),
        ..Scope::default()
    };
    let kinds = |a: &pyward_rules::Alert, s: &Scope| -> Vec<String> {
        p.actions_for(a, s)
            .iter()
            .map(|x| format!("{}:{}", x.policy(), x.kind()))
            .collect()
    };
    assert_eq!(kinds(&shell, &host), ["host only:kill_process"]);
    let nb = Scope {
        pid: Some(10),
        container_id: Some("9f1c2e3d4b5a6c7d".into()),
        container_name: Some("notebook".into()),
        ..Scope::default()
    };
    assert_eq!(
        kinds(&shell, &nb),
        ["one container:notify", "one container:kill_tree"]
    );
    let mut drift = alert(
        "Drift",
        Priority::Error,
        T0,
        &[("detector", "drift".into())],
    );
    drift.tags.clear();
    assert!(kinds(&drift, &host).is_empty());
    let run = host.clone().in_run_tree(true).with_cgroup("/pyward-run-1");
    assert_eq!(kinds(&drift, &run), ["run tree:freeze_container"]);
    assert!(matches!(
        &p.actions_for(&drift, &run)[0],
        PlannedAction::FreezeCgroup { target: CgroupTarget::Path(p), .. } if p == "/pyward-run-1"
    ));
    let svc = host
        .clone()
        .with_cgroup("/system.slice/jupyter.service/sub");
    assert_eq!(kinds(&drift, &svc), ["a cgroup:kill_container"]);
    let other = host.clone().with_cgroup("/system.slice/jupyter.service2");
    assert!(kinds(&drift, &other).is_empty());
}

#[test]
fn scope_from_event_and_alert() {
    let ev = ReplayEvent::parse_line(
        r#"{"time":1,"type":"connect","proc":{"pid":4242,"name":"python3"},"container":{"id":"9f1c2e3d4b5a","name":"notebook"}}"#,
    )
    .unwrap();
    let s = Scope::from_event(&ev);
    assert_eq!(s.pid, Some(4242));
    assert_eq!(s.container_name.as_deref(), Some("notebook"));
    let a = alert(
        "r",
        Priority::Error,
        T0,
        &[("proc.pid", 99.into()), ("container.id", "host".into())],
    );
    let s = Scope::from_alert(&a);
    assert_eq!((s.pid, s.container_id.as_deref()), (Some(99), Some("host")));
}
