//! Conformance corpus: for every rule of Falco's falco_rules.yaml and of pyward's
//! rules/pyward_rules.yaml, recorded events that must trigger it and near-misses that must not.
//! The corpus format is described in docs/events.md ("Conformance corpus").

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use pyward_rules::{
    Engine, EngineOptions, LoadOptions, ReplayEvent, RuleMatching, Ruleset, RulesetBuilder,
    Severity,
};
use serde::Deserialize;
use serde_json::Value;

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn falco_rules() -> PathBuf {
    manifest().join("../../../shared/falco-rules/falco_rules.yaml")
}

fn pyward_rules() -> PathBuf {
    manifest().join("../../rules/pyward_rules.yaml")
}

fn corpus(name: &str) -> PathBuf {
    manifest().join("tests/corpus").join(name)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    rule: String,
    expect: Expect,
    id: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    variant_of: Option<String>,
    #[serde(default)]
    differs: Option<String>,
    event: Value,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Expect {
    Match,
    NoMatch,
}

fn read_corpus(name: &str) -> Vec<(usize, Entry)> {
    let path = corpus(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let e: Entry = serde_json::from_str(l)
                .unwrap_or_else(|err| panic!("{name}:{}: not a corpus entry: {err}", i + 1));
            (i + 1, e)
        })
        .collect()
}

/// Every rule of the files, enabled, loaded in order. Disabled rules are switched on with
/// Falco's own `override: {enabled: replace}`, so the test exercises the loader too.
fn load_all_enabled(files: &[PathBuf]) -> Ruleset {
    let mut b = RulesetBuilder::new(LoadOptions::default());
    for f in files {
        b.load_file(f);
    }
    let first = b.build();
    assert_no_errors(&first, files);
    let disabled: Vec<String> = first
        .rules()
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.name.clone())
        .collect();
    if disabled.is_empty() {
        return first;
    }
    let mut enable = String::new();
    for name in &disabled {
        enable.push_str(&format!(
            "- rule: {}\n  enabled: true\n  override:\n    enabled: replace\n",
            serde_json::to_string(name).unwrap()
        ));
    }
    let mut b = RulesetBuilder::new(LoadOptions::default());
    for f in files {
        b.load_file(f);
    }
    b.load_str("enable-all.yaml", &enable);
    let rs = b.build();
    assert_no_errors(&rs, files);
    assert!(
        rs.rules().iter().all(|r| r.enabled),
        "some rules are still disabled"
    );
    rs
}

fn assert_no_errors(rs: &Ruleset, files: &[PathBuf]) {
    let errors: Vec<String> = rs
        .diagnostics()
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "loading {files:?} gave errors:\n{}",
        errors.join("\n")
    );
}

fn engine(rs: &Ruleset) -> Engine {
    let opts = EngineOptions {
        rule_matching: RuleMatching::All,
        ..EngineOptions::default()
    };
    Engine::new(rs, opts).expect("engine builds from an error-free ruleset")
}

/// Runs every entry; returns the failures as readable lines.
fn run_corpus(engine: &Engine, name: &str, entries: &[(usize, Entry)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (line, e) in entries {
        let text = e.event.to_string();
        let ev = match ReplayEvent::parse_line(&text) {
            Ok(ev) => ev,
            Err(err) => {
                failures.push(format!(
                    "{name}:{line} [{}]: event does not parse: {err}",
                    e.id
                ));
                continue;
            }
        };
        let fired: Vec<String> = engine
            .evaluate(&ev)
            .iter()
            .map(|m| m.rule_name().to_string())
            .collect();
        let did = fired.iter().any(|r| r == &e.rule);
        let want = e.expect == Expect::Match;
        if did != want {
            failures.push(format!(
                "{name}:{line} [{}] {:?} expected {} but {} (fired: {fired:?}); note: {}",
                e.id,
                e.rule,
                if want { "a match" } else { "no match" },
                if did {
                    "it matched"
                } else {
                    "it did not match"
                },
                e.note
            ));
        }
    }
    failures
}

/// Every rule in `rule_names` has at least one match and one no_match entry, and every entry
/// names one of them.
fn assert_coverage(name: &str, rule_names: &BTreeSet<String>, entries: &[(usize, Entry)]) {
    let mut seen: HashMap<&str, (usize, usize)> = HashMap::new();
    for (line, e) in entries {
        assert!(
            rule_names.contains(&e.rule),
            "{name}:{line}: entry {} names rule {:?}, which is not in the rules files",
            e.id,
            e.rule
        );
        let c = seen.entry(e.rule.as_str()).or_default();
        match e.expect {
            Expect::Match => c.0 += 1,
            Expect::NoMatch => c.1 += 1,
        }
    }
    let missing: Vec<String> = rule_names
        .iter()
        .filter_map(|r| match seen.get(r.as_str()) {
            Some((m, n)) if *m > 0 && *n > 0 => None,
            Some((m, n)) => Some(format!("{r:?}: {m} match / {n} no_match")),
            None => Some(format!("{r:?}: no entries")),
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{name}: every rule needs at least one match and one no_match entry:\n{}",
        missing.join("\n")
    );
}

/// Flatten a JSON value into `path -> leaf` (a removed subtree shows as its missing leaves).
fn leaves(v: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                leaves(x, &format!("{prefix}/{k}"), out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                leaves(x, &format!("{prefix}/{i}"), out);
            }
        }
        _ => {
            out.insert(prefix.to_string(), v.to_string());
        }
    }
}

/// A near-miss differs from its positive in exactly one place: one leaf changed, or one
/// object removed or added (e.g. `container`, making it a host event).
fn assert_near_misses(name: &str, entries: &[(usize, Entry)]) {
    let by_id: HashMap<&str, &Entry> = entries.iter().map(|(_, e)| (e.id.as_str(), e)).collect();
    assert_eq!(
        by_id.len(),
        entries.len(),
        "{name}: entry ids must be unique"
    );
    for (line, e) in entries {
        match e.expect {
            Expect::Match => {
                assert!(
                    e.variant_of.is_none(),
                    "{name}:{line}: a match entry has variant_of"
                );
                continue;
            }
            Expect::NoMatch => {}
        }
        let base_id = e
            .variant_of
            .as_deref()
            .unwrap_or_else(|| panic!("{name}:{line}: no_match entry {} lacks variant_of", e.id));
        assert!(
            e.differs.is_some(),
            "{name}:{line}: no_match entry {} lacks differs",
            e.id
        );
        let base = by_id
            .get(base_id)
            .unwrap_or_else(|| panic!("{name}:{line}: variant_of {base_id:?} is not an entry id"));
        assert_eq!(
            base.expect,
            Expect::Match,
            "{name}:{line}: variant_of must name a match entry"
        );
        assert_eq!(
            base.rule, e.rule,
            "{name}:{line}: variant_of names an entry of another rule"
        );
        let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
        leaves(&base.event, "", &mut a);
        leaves(&e.event, "", &mut b);
        let changed: BTreeSet<String> = a
            .keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .map(|k| {
                // Leaves of a subtree present on one side only count as that one subtree.
                let parts: Vec<&str> = k.split('/').collect();
                let mut p = String::new();
                for part in parts.iter().skip(1) {
                    p.push('/');
                    p.push_str(part);
                    let in_a = a.keys().any(|x| x == &p || x.starts_with(&format!("{p}/")));
                    let in_b = b.keys().any(|x| x == &p || x.starts_with(&format!("{p}/")));
                    if in_a != in_b {
                        return p;
                    }
                }
                k.clone()
            })
            .collect();
        assert_eq!(
            changed.len(),
            1,
            "{name}:{line}: near-miss {} must differ from {base_id} in exactly one place, \
             differs in {changed:?}",
            e.id
        );
    }
}

fn rule_names(rs: &Ruleset) -> BTreeSet<String> {
    rs.rules().iter().map(|r| r.name.clone()).collect()
}

fn rule_names_of(file: &Path) -> BTreeSet<String> {
    let mut b = RulesetBuilder::new(LoadOptions::default());
    b.load_file(file);
    rule_names(&b.build())
}

#[test]
fn falco_rules_corpus() {
    let files = [falco_rules(), pyward_rules()];
    let rs = load_all_enabled(&files);
    let entries = read_corpus("falco_rules.jsonl");
    let upstream = rule_names_of(&falco_rules());
    assert_eq!(upstream.len(), 25, "falco_rules.yaml has 25 rules");
    assert_coverage("falco_rules.jsonl", &upstream, &entries);
    assert_near_misses("falco_rules.jsonl", &entries);
    let failures = run_corpus(&engine(&rs), "falco_rules.jsonl", &entries);
    assert!(
        failures.is_empty(),
        "{} corpus failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn pyward_rules_corpus_with_falco_rules_loaded_first() {
    let rs = load_all_enabled(&[falco_rules(), pyward_rules()]);
    let entries = read_corpus("pyward_rules.jsonl");
    let ours = rule_names_of(&pyward_rules());
    assert!(ours.len() >= 8, "pyward_rules.yaml lost rules: {ours:?}");
    assert_coverage("pyward_rules.jsonl", &ours, &entries);
    assert_near_misses("pyward_rules.jsonl", &entries);
    let failures = run_corpus(&engine(&rs), "pyward_rules.jsonl", &entries);
    assert!(
        failures.is_empty(),
        "{} corpus failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// pyward_rules.yaml is self-contained: it loads alone, and its rules behave the same.
#[test]
fn pyward_rules_corpus_standalone() {
    let rs = load_all_enabled(&[pyward_rules()]);
    let entries = read_corpus("pyward_rules.jsonl");
    let failures = run_corpus(&engine(&rs), "pyward_rules.jsonl", &entries);
    assert!(
        failures.is_empty(),
        "{} corpus failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Loading pyward's file after Falco's must not change Falco's rules: no upstream name is
/// redefined.
#[test]
fn pyward_rules_never_redefine_upstream_names() {
    let mut b = RulesetBuilder::new(LoadOptions::default());
    b.load_file(falco_rules());
    let upstream = b.build();
    let mut b = RulesetBuilder::new(LoadOptions::default());
    b.load_file(pyward_rules());
    let ours = b.build();
    assert_no_errors(&ours, &[pyward_rules()]);
    let up: BTreeSet<String> = upstream
        .rules()
        .iter()
        .map(|r| r.name.clone())
        .chain(upstream.macros().iter().map(|m| m.name.clone()))
        .chain(upstream.lists().iter().map(|l| l.name.clone()))
        .collect();
    for m in ours.macros() {
        assert!(
            m.name.starts_with("pyward_"),
            "macro {} is not pyward_-prefixed",
            m.name
        );
        assert!(!up.contains(&m.name));
    }
    for l in ours.lists() {
        assert!(
            l.name.starts_with("pyward_"),
            "list {} is not pyward_-prefixed",
            l.name
        );
        assert!(!up.contains(&l.name));
    }
    for r in ours.rules() {
        assert!(
            !up.contains(&r.name),
            "rule {:?} redefines an upstream rule",
            r.name
        );
    }
}

/// Every pyward rule carries a MITRE tactic tag and at least one ATT&CK technique id.
#[test]
fn pyward_rules_are_mitre_tagged() {
    let mut b = RulesetBuilder::new(LoadOptions::default());
    b.load_file(pyward_rules());
    let rs = b.build();
    for r in rs.rules() {
        assert!(
            r.tags.iter().any(|t| t.starts_with("mitre_")),
            "{}: no mitre_ tactic tag",
            r.name
        );
        assert!(
            r.tags.iter().any(|t| {
                let t = t.as_str();
                t.len() >= 5 && t.starts_with('T') && t[1..5].bytes().all(|b| b.is_ascii_digit())
            }),
            "{}: no ATT&CK technique id tag (T1234 / T1234.001)",
            r.name
        );
    }
}

/// The intel hook documented in pyward_rules.yaml: a generated document appending to
/// `pyward_malicious_ips` after the rules makes the new address alert, and the seed stays.
#[test]
fn intel_iocs_extend_the_malicious_ip_list() {
    let intel = "- list: pyward_malicious_ips\n  items: [\"203.0.113.77\"]\n  override:\n    items: append\n";
    let mut b = RulesetBuilder::new(LoadOptions::default());
    b.load_file(pyward_rules());
    b.load_str("intel-iocs.yaml", intel);
    let rs = b.build();
    assert_no_errors(&rs, &[pyward_rules()]);
    let eng = engine(&rs);
    let connect = |ip: &str| {
        let line = format!(
            r#"{{"time":0,"type":"connect","res":0,"proc":{{"name":"python3"}},"fd":{{"num":5,"type":"ipv4","cip":"198.51.100.10","cport":40000,"sip":"{ip}","sport":443,"l4proto":"tcp"}}}}"#
        );
        let ev = ReplayEvent::parse_line(&line).unwrap();
        eng.evaluate(&ev)
            .iter()
            .any(|m| m.rule_name() == "Outbound Connection to Known-Malicious IP")
    };
    assert!(connect("203.0.113.77"), "intel-fed address must alert");
    assert!(
        connect("68.183.212.246"),
        "the seed address must still alert"
    );
    assert!(!connect("203.0.113.78"), "other addresses must not alert");
}
