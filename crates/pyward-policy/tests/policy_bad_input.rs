//! Bad policies: clear errors with positions, never a panic.

use pyward_policy::{load_file, load_str, PolicyError};

fn err(text: &str) -> PolicyError {
    load_str(text, "bad.yaml", false).expect_err("must be rejected")
}

fn first(e: &PolicyError) -> (usize, usize, String) {
    let p = &e.errors[0];
    (p.pos.line, p.pos.col, p.message.clone())
}

const HEAD: &str = "id: t\nrules:\n";

#[test]
fn unknown_gate_trigger_and_parameter() {
    let e = err(&format!(
        "{HEAD}  - id: r\n    gate: nosuch\n    trigger: x\n    action: STOP\n"
    ));
    let (l, c, m) = first(&e);
    assert_eq!((l, c), (4, 11));
    assert!(
        m.contains("unknown gate `nosuch`") && m.contains("packages"),
        "{m}"
    );
    let e = err(&format!(
        "{HEAD}  - id: r\n    gate: files\n    trigger: nope\n    action: STOP\n"
    ));
    let (l, _, m) = first(&e);
    assert_eq!(l, 5);
    assert!(
        m.contains("unknown trigger `nope` of gate `files`") && m.contains("name_match"),
        "{m}"
    );
    let e = err(&format!("{HEAD}  - id: r\n    gate: files\n    trigger: name_match\n    action: STOP\n    params:\n      regex: x\n      colour: red\n"));
    let (l, _, m) = first(&e);
    assert_eq!(l, 9);
    assert!(
        m.contains("unknown parameter `colour`") && m.contains("expected: regex"),
        "{m}"
    );
    let e = err(&format!(
        "{HEAD}  - id: r\n    gate: vulnerabilities\n    trigger: package\n    action: STOP\n"
    ));
    assert!(first(&e).2.contains("does not evaluate"));
    let e = err("id: t\nrulez: []\n");
    assert!(
        e.errors
            .iter()
            .any(|p| p.pos.line == 2 && p.message.contains("unknown key `rulez`")),
        "{:?}",
        e.errors
    );
}

#[test]
fn wrong_types_and_values() {
    let e = err(&format!("{HEAD}  - id: r\n    gate: files\n    trigger: name_match\n    action: HALT\n    params: {{regex: x}}\n"));
    assert!(
        first(&e).2.contains("unknown action `halt`"),
        "{:?}",
        e.errors
    );
    let e = err(&format!("{HEAD}  - id: r\n    gate: dockerfile\n    trigger: instruction\n    action: STOP\n    params: {{instruction: run, check: like, value: x}}\n"));
    let m = first(&e).2;
    assert!(
        m.contains("`run` is not one of") && m.contains("RUN"),
        "{m}"
    );
    let e = err(&format!("{HEAD}  - id: r\n    gate: dockerfile\n    trigger: exposed_ports\n    action: STOP\n    params: {{ports: [80, http], type: blacklist}}\n"));
    assert!(
        first(&e).2.contains("`http` is not a port number"),
        "{:?}",
        e.errors
    );
    let e = err(&format!("{HEAD}  - id: r\n    gate: files\n    trigger: name_match\n    action: STOP\n    params: {{regex: {{a: b}}}}\n"));
    assert!(
        first(&e).2.contains("must be a string, found a mapping"),
        "{:?}",
        e.errors
    );
    let e = err("id: t\nrules: {a: 1}\n");
    assert!(first(&e)
        .2
        .contains("rules must be a list, found a mapping"));
    let e = err(&format!(
        "{HEAD}  - id: r\n    gate: packages\n    trigger: blacklist\n    action: STOP\n"
    ));
    assert!(first(&e).2.contains("requires parameter `name`"));
    let e = err(&format!("{HEAD}  - id: r\n    gate: dockerfile\n    trigger: instruction\n    action: STOP\n    params: {{instruction: RUN, check: like}}\n"));
    assert!(
        first(&e).2.contains("`value` is required"),
        "{:?}",
        e.errors
    );
    let e = err(&format!("{HEAD}  - id: r\n    gate: dockerfile\n    trigger: instruction\n    action: STOP\n    params: {{instruction: RUN, check: exists, actual_dockerfile_only: maybe}}\n"));
    assert!(first(&e).2.contains("`maybe` is not true or false"));
}

#[test]
fn invalid_regexes() {
    let e = err(&format!("{HEAD}  - id: r\n    gate: files\n    trigger: name_match\n    action: STOP\n    params:\n      regex: 'a(b'\n"));
    let (l, _, m) = first(&e);
    assert_eq!(l, 8);
    assert!(m.contains("invalid regex `a(b`"), "{m}");
    let e = err(&format!("{HEAD}  - id: r\n    gate: dockerfile\n    trigger: instruction\n    action: STOP\n    params: {{instruction: RUN, check: like, value: '[z-a]'}}\n"));
    assert!(first(&e).2.contains("invalid regex"));
    let e = err("id: t\ncontent_search: {BAD: '(('}\nrules: [{id: r, gate: always, trigger: always, action: WARN}]\n");
    assert!(first(&e).2.contains("content_search `BAD`"));
    let e = err("id: t\nrules: [{id: r, gate: always, trigger: always, action: WARN}]\nallowlist: [{id: a, gate: files, trigger_id: 'regexp:(('}]\n");
    assert!(first(&e).2.contains("invalid pattern"));
}

#[test]
fn duplicate_ids() {
    let r = "  - {id: r1, gate: always, trigger: always, action: WARN}\n";
    let e = err(&format!("{HEAD}{r}{r}"));
    let (l, _, m) = first(&e);
    assert_eq!(l, 4);
    assert!(m.contains("duplicate rule id `r1`"), "{m}");
    let e = err("id: t\nrules: [{id: r, gate: always, trigger: always, action: WARN}]\nallowlist:\n  - {id: a, gate: files, trigger_id: x}\n  - {id: a, gate: files, trigger_id: y}\n");
    assert!(first(&e).2.contains("duplicate allowlist item id `a`"));
    let e = err("id: t\nid: u\nrules: []\n");
    assert!(first(&e).2.contains("duplicate key `id`"));
    let text =
        r#"{"id":"b","version":"1_0","policies":[{"id":"p","rules":[]},{"id":"p","rules":[]}]}"#;
    let e = load_str(text, "b.json", true).unwrap_err();
    assert!(
        e.errors
            .iter()
            .any(|p| p.message.contains("duplicate rule set id `p`")),
        "{:?}",
        e.errors
    );
}

#[test]
fn expired_allowlist_items_and_bad_dates() {
    let ok = load_str(
        "id: t\nrules: [{id: r, gate: always, trigger: always, action: WARN}]\nallowlist:\n  - {id: old, gate: always, trigger_id: '*', expires_on: '2001-01-01T00:00:00Z'}\n",
        "t.yaml",
        false,
    )
    .unwrap();
    let w = &ok.warnings[0];
    assert_eq!(w.pos.line, 4);
    assert!(
        w.message
            .contains("allowlist item `old` expired on 2001-01-01T00:00:00Z"),
        "{}",
        w.message
    );
    let e = err("id: t\nrules: [{id: r, gate: always, trigger: always, action: WARN}]\nallowlist:\n  - {id: a, gate: always, trigger_id: '*', expires_on: next tuesday}\n");
    assert!(first(&e).2.contains("not an RFC 3339 time"));
}

#[test]
fn alias_bomb_and_syntax_errors() {
    let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..15 {
        let p = format!("*a{}", i - 1);
        doc.push_str(&format!(
            "a{i}: &a{i} [{p},{p},{p},{p},{p},{p},{p},{p},{p},{p}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let e = err(&doc);
    assert!(started.elapsed().as_secs() < 5);
    let (l, _, m) = first(&e);
    assert!(l > 1 && m.contains("alias bomb"), "{l} {m}");
    let e = err("id: t\nrules:\n  - id: [unclosed\n");
    assert_eq!(first(&e).0, 4);
    let e = load_str(
        "{\n  \"id\": \"x\",\n  \"policies\": [,]\n}",
        "b.json",
        true,
    )
    .unwrap_err();
    assert_eq!(first(&e).0, 3);
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(err(&deep).errors[0].message.contains("nesting"));
    assert!(err("").errors[0].message.contains("must be a mapping"));
    assert!(err("---\nid: a\n---\nid: b\n").errors[0]
        .message
        .contains("one YAML document"));
}

#[test]
fn hostile_files() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, vec![b'#'; 5 * 1024 * 1024]).unwrap();
    assert!(load_file(&big)
        .unwrap_err()
        .to_string()
        .contains("over the"));
    let bin = dir.path().join("bin.yaml");
    std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    assert!(load_file(&bin)
        .unwrap_err()
        .to_string()
        .contains("not UTF-8"));
    assert!(load_file(&dir.path().join("missing.yaml"))
        .unwrap_err()
        .to_string()
        .contains("cannot read"));
    // Random garbage never panics.
    for seed in 0u32..200 {
        let text: String = (0..64)
            .map(|i| b"{}[]:,-&*!|>'\"#\n abc1"[((seed * 31 + i * 17) % 21) as usize] as char)
            .collect();
        let _ = load_str(&text, "fuzz.yaml", false);
        let _ = load_str(&text, "fuzz.json", true);
    }
}

#[test]
fn lint_warns_where_anchore_differs() {
    let l = load_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../policies/jeilyfish-anchore.json"),
    )
    .unwrap();
    let msgs: Vec<&str> = l.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("r3")
            && m.contains("re.match")
            && m.contains(r".*jeIlyfish\/_jellyfish\.py")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("r1") && m.contains("case-sensitively")),
        "{msgs:?}"
    );
    assert!(
        l.warnings.iter().all(|w| w.pos.line > 0),
        "JSON warnings carry positions"
    );
    let ok = load_str("id: t\nrules:\n  - {id: r, gate: files, trigger: name_match, action: STOP, params: {regex: '.*\\.pem'}}\n", "t.yaml", false).unwrap();
    assert!(ok.warnings.is_empty());
}

#[test]
fn anchore_v2_names() {
    let text = r#"{"id":"v2","version":"2","name":"v2","description":"",
      "rule_sets":[{"id":"rs","name":"rs","version":"2","artifact_type":"image","rules":[
        {"id":"d","gate":"packages","trigger":"denylist","action":"warn","params":[{"name":"Name","value":"six"}]},
        {"id":"u","gate":"dockerfile","trigger":"effective_user","action":"STOP","params":[{"name":"users","value":"root"},{"name":"type","value":"denylist"}]}]}],
      "allowlists":[{"id":"al","name":"al","items":[{"id":"i","gate":"packages","trigger_id":"*"}]}],
      "mappings":[{"id":"m","name":"m","registry":"*","repository":"*","image":{"type":"tag","value":"*"},"rule_set_ids":["rs"],"allowlist_ids":["al"]}],
      "allowlisted_images":[],"denylisted_images":[],"last_updated":"2024-01-01T00:00:00Z"}"#;
    let l = load_str(text, "v2.json", true).unwrap();
    assert_eq!(l.bundle.format, pyward_policy::BundleFormat::AnchoreV2);
    assert_eq!(l.bundle.rule_sets[0].rules.len(), 2);
    assert_eq!(l.bundle.mappings[0].allowlist_ids, vec!["al"]);
    let e = load_str(&text.replace("\"al\"]}]", "\"nope\"]}]"), "v2.json", true).unwrap_err();
    assert!(e
        .errors
        .iter()
        .any(|p| p.message.contains("allowlist `nope`")));
}

#[test]
fn shipped_policies_are_valid() {
    for name in ["default.yaml", "jeilyfish.yaml", "jeilyfish-anchore.json"] {
        load_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../policies")
                .join(name),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    for entry in std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/examples"),
    )
    .unwrap()
    {
        let path = entry.unwrap().path();
        load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    }
    let _ = pyward_policy::default_policy();
}
