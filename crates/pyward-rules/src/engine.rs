//! The evaluator: compiled rules indexed by event type.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::compile::{Flat, Folded, Memo, Node};
use crate::event::{Event, EventType};
use crate::fields;
use crate::loader::{CompiledRule, RuleInfo, Ruleset};
use crate::output::{self, Alert, Template};
use crate::priority::Priority;

/// Falco's `rule_matching`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RuleMatching {
    /// Stop at the first matching rule in load order (Falco's default).
    #[default]
    First,
    /// Report every matching rule.
    All,
}

/// Engine settings (the falco.yaml equivalents).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// falco.yaml `priority`: rules below this are not evaluated. Default `Debug` (all).
    pub min_priority: Priority,
    /// falco.yaml `rule_matching`.
    pub rule_matching: RuleMatching,
    /// falco.yaml `append_output: - suggested_output: true`: append the container
    /// plugin's suggested fields (`container_id=%container.id ...`) to every output.
    pub suggested_output: bool,
    /// Only evaluate rules carrying at least one of these tags (empty = all).
    pub tags: Vec<String>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            min_priority: Priority::Debug,
            rule_matching: RuleMatching::First,
            suggested_output: true,
            tags: Vec::new(),
        }
    }
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The ruleset has load errors.
    #[error("the rules have {0} error(s); fix them first (see the ruleset's diagnostics)")]
    RulesetHasErrors(usize),
}

/// A rule's condition specialised for one event type.
#[derive(Debug, Clone)]
struct TypedRule {
    /// Index into `Engine::rules`.
    rule: u32,
    plan: Plan,
}

/// Where a rule's plan for one event type lives.
#[derive(Debug, Clone)]
enum Plan {
    /// Entry step of the rule's branch program in the type's [`Flat`] plan.
    Flat(u32),
    /// Shared between the types of a rule that matches many types (not specialised,
    /// so not copied into every type's flat plan).
    Shared(Arc<Node>),
}

/// The rules one event type meets, in load order, and their flattened plans.
#[derive(Debug, Clone, Default)]
struct TypePlans {
    rules: Vec<TypedRule>,
    flat: Flat,
}

impl TypePlans {
    #[inline]
    fn eval<E: Event + ?Sized>(&self, tr: &TypedRule, e: &E, memo: &mut Memo) -> bool {
        match &tr.plan {
            Plan::Flat(i) => self.flat.eval(*i, e, memo),
            Plan::Shared(n) => n.eval(e, memo),
        }
    }
}

/// Rules that can match more event types than this are not specialised per type
/// (one copy of the condition per type would cost too much memory); they share one
/// plan, still reordered and merged but without memo slots.
const MAX_SPECIALISED_TYPES: usize = 32;

#[derive(Debug, Clone)]
pub(crate) struct EngineRule {
    pub info: RuleInfo,
    /// The rule as compiled, before per-type specialisation (the reference the
    /// optimised plans are tested against).
    #[cfg_attr(not(test), allow(dead_code))]
    pub compiled: CompiledRule,
    pub output: Template,
    pub tags_sorted: Vec<String>,
}

/// Evaluates events against compiled rules. Immutable and `Sync`: share it across threads.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<EngineRule>,
    /// For each event type index, the rules that can match it, in load order, each
    /// with its condition specialised for that type (see [`Node::specialize`]), all
    /// written into one flat plan per type.
    by_type: Vec<TypePlans>,
    options: EngineOptions,
}

/// A rule that matched an event.
#[derive(Clone, Copy, Debug)]
pub struct Match<'e> {
    rule: &'e EngineRule,
}

const SUGGESTED: &str = "container_id=%container.id container_name=%container.name container_image_repository=%container.image.repository container_image_tag=%container.image.tag k8s_pod_name=%k8s.pod.name k8s_ns_name=%k8s.ns.name";

impl Engine {
    /// Build from a ruleset without errors; disabled rules, rules of other sources and
    /// rules below `min_priority` are left out.
    pub fn new(ruleset: &Ruleset, options: EngineOptions) -> Result<Engine, EngineError> {
        let n = ruleset.errors().count();
        if n > 0 {
            return Err(EngineError::RulesetHasErrors(n));
        }
        let mut rules = Vec::new();
        let mut by_type = vec![Vec::new(); EventType::count()];
        let suggested = Template::parse(SUGGESTED).unwrap_or_default();
        for (info, comp) in ruleset.rules().iter().zip(ruleset.compiled.iter()) {
            let Some(comp) = comp else { continue };
            if !info.enabled || !info.priority.at_least(options.min_priority) {
                continue;
            }
            if !options.tags.is_empty() && !info.tags.iter().any(|t| options.tags.contains(t)) {
                continue;
            }
            let idx = rules.len() as u32;
            let plan = |t: Option<EventType>| match comp.node.specialize(t) {
                // the rule can never match this type (e.g. `evt.type in (...)` excludes it)
                Folded::Const(false) => None,
                Folded::Const(true) => Some(Arc::new(Node::And(Box::new([])))),
                Folded::Node(n) => Some(Arc::new(n)),
            };
            // one plan for all types of a rule that matches very many of them
            let shared: Option<Option<Arc<Node>>> =
                if comp.types.iter().nth(MAX_SPECIALISED_TYPES).is_some() {
                    Some(plan(None))
                } else {
                    None
                };
            for t in comp.types.iter() {
                let Some(v) = by_type.get_mut(t.index()) else {
                    continue;
                };
                let node = match &shared {
                    Some(p) => p.clone(),
                    None => plan(Some(t)),
                };
                if let Some(node) = node {
                    v.push((idx, node));
                }
            }
            let mut output = comp.output.clone();
            if options.suggested_output {
                let have: Vec<String> = output.fields().map(|f| f.text.clone()).collect();
                let mut extra = Vec::new();
                for p in &suggested.pieces {
                    extra.push(p.clone());
                }
                // Falco appends only suggested fields not already in the output
                let extra = filter_suggested(extra, &have);
                if !extra.is_empty() {
                    output.pieces.push(output::Piece::Text(" ".into()));
                    output.pieces.extend(extra);
                }
            }
            let mut tags_sorted = info.tags.clone();
            tags_sorted.sort();
            tags_sorted.dedup();
            rules.push(EngineRule {
                info: info.clone(),
                compiled: comp.clone(),
                output,
                tags_sorted,
            });
        }
        let by_type = by_type
            .into_iter()
            .map(|mut v: Vec<(u32, Arc<Node>)>| {
                // shared plans (Arc::get_mut fails) keep their checks unmemoised
                Node::assign_slots(v.iter_mut().filter_map(|(_, n)| Arc::get_mut(n)));
                let mut flat = Flat::default();
                let rules = v
                    .into_iter()
                    .map(|(rule, node)| {
                        let plan = if Arc::strong_count(&node) == 1 {
                            Plan::Flat(flat.push(&node))
                        } else {
                            Plan::Shared(node)
                        };
                        TypedRule { rule, plan }
                    })
                    .collect();
                flat.finish();
                TypePlans { rules, flat }
            })
            .collect();
        Ok(Engine {
            rules,
            by_type,
            options,
        })
    }

    /// Number of rules the engine evaluates.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The rules evaluated, in load order.
    pub fn rules(&self) -> impl Iterator<Item = &RuleInfo> {
        self.rules.iter().map(|r| &r.info)
    }

    /// Number of rules that can fire on this event type.
    pub fn rules_for_type(&self, t: EventType) -> usize {
        self.by_type.get(t.index()).map_or(0, |p| p.rules.len())
    }

    /// Evaluate one event; matches in load order (at most one with `RuleMatching::First`).
    pub fn evaluate<'s, E: Event + ?Sized>(&'s self, event: &E) -> Vec<Match<'s>> {
        let mut out = Vec::new();
        self.evaluate_into(event, &mut out);
        out
    }

    /// Like [`Engine::evaluate`], appending to a caller-owned vector (no allocation
    /// once it has capacity). Returns the number of matches added.
    pub fn evaluate_into<'s, E: Event + ?Sized>(
        &'s self,
        event: &E,
        out: &mut Vec<Match<'s>>,
    ) -> usize {
        let Some(plans) = self.by_type.get(event.event_type().index()) else {
            return 0;
        };
        let mut n = 0;
        let mut memo = Memo::default();
        for tr in &plans.rules {
            let Some(r) = self.rules.get(tr.rule as usize) else {
                continue;
            };
            if plans.eval(tr, event, &mut memo) {
                out.push(Match { rule: r });
                n += 1;
                if self.options.rule_matching == RuleMatching::First {
                    break;
                }
            }
        }
        n
    }

    /// Count matching rules without collecting them (for benchmarks and filters).
    pub fn count_matches<E: Event + ?Sized>(&self, event: &E) -> usize {
        let Some(plans) = self.by_type.get(event.event_type().index()) else {
            return 0;
        };
        let mut n = 0;
        let mut memo = Memo::default();
        for tr in &plans.rules {
            if plans.eval(tr, event, &mut memo) {
                n += 1;
                if self.options.rule_matching == RuleMatching::First {
                    break;
                }
            }
        }
        n
    }
}

fn filter_suggested(pieces: Vec<output::Piece>, have: &[String]) -> Vec<output::Piece> {
    // pieces alternate "name=" text and field; drop pairs whose field is already present
    let mut out: Vec<output::Piece> = Vec::new();
    let mut pending_text: Option<output::Piece> = None;
    for p in pieces {
        match &p {
            output::Piece::Text(_) => pending_text = Some(p),
            output::Piece::Field(f) => {
                if !have.contains(&f.text) {
                    if let Some(t) = pending_text.take() {
                        out.push(t);
                    }
                    out.push(p);
                } else {
                    pending_text = None;
                }
            }
        }
    }
    // normalise the leading space of the first text piece
    if let Some(output::Piece::Text(t)) = out.first_mut() {
        *t = t.trim_start().to_owned();
    }
    out
}

impl<'e> Match<'e> {
    /// The rule's name.
    pub fn rule_name(&self) -> &'e str {
        &self.rule.info.name
    }
    /// The rule as loaded.
    pub fn rule(&self) -> &'e RuleInfo {
        &self.rule.info
    }
    /// The rule's priority.
    pub fn priority(&self) -> Priority {
        self.rule.info.priority
    }
    /// The rule's tags, sorted.
    pub fn tags(&self) -> &'e [String] {
        &self.rule.tags_sorted
    }

    /// The rule's output with `%field`s filled in (`<NA>` for missing values),
    /// without Falco's time/priority prefix (Falco's `message`).
    pub fn format_output<E: Event + ?Sized>(&self, event: &E) -> String {
        self.rule.output.render(event)
    }

    /// Falco's text line: `"<HH:MM:SS.ns>: <Priority> <output>"`.
    pub fn format_line<E: Event + ?Sized>(&self, event: &E) -> String {
        format!(
            "{}: {} {}",
            fields::time_text(event.time_ns()),
            self.priority(),
            self.format_output(event)
        )
    }

    /// `output_fields`: one typed entry per `%field`, plus `evt.time` in ns.
    pub fn output_fields<E: Event + ?Sized>(
        &self,
        event: &E,
    ) -> BTreeMap<String, output::OutputValue> {
        let mut m = BTreeMap::new();
        for f in self.rule.output.fields() {
            m.insert(f.text.clone(), output::json_value(f, event));
        }
        m.insert(
            "evt.time".to_owned(),
            output::OutputValue::from(event.time_ns()),
        );
        m
    }

    /// The alert in Falco's JSON shape.
    pub fn to_alert<E: Event + ?Sized>(&self, event: &E, hostname: &str) -> Alert {
        Alert {
            hostname: hostname.to_owned(),
            output: self.format_line(event),
            output_fields: self.output_fields(event),
            priority: self.priority(),
            rule: self.rule.info.name.clone(),
            source: self.rule.info.source.clone(),
            tags: self.rule.tags_sorted.clone(),
            time: fields::time_iso(event.time_ns()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LoadOptions, ReplayEvent, RulesetBuilder};

    /// The optimised plans (type-specialised, reordered, merged, memoised, flattened
    /// with `not` folded, read through the fast paths) give the same result as the rules' compiled conditions evaluated
    /// plainly, rule by rule, on every event of the conformance corpus.
    #[test]
    fn optimised_plans_agree_with_compiled_conditions() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let mut b = RulesetBuilder::new(LoadOptions::default());
        for f in [
            "falco_rules.yaml",
            "falco-incubating_rules.yaml",
            "falco-sandbox_rules.yaml",
        ] {
            b.load_file(format!("{root}/../shared/falco-rules/{f}"));
        }
        b.load_file(format!("{root}/rules/pyward_rules.yaml"));
        let rs = b.build();
        let engine = Engine::new(&rs, EngineOptions::default()).expect("engine");
        let mut events = Vec::new();
        for c in ["falco_rules.jsonl", "pyward_rules.jsonl"] {
            let path = format!("{root}/crates/pyward-rules/tests/corpus/{c}");
            let text = std::fs::read_to_string(&path).expect("corpus");
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: serde_json::Value = serde_json::from_str(line).expect("corpus json");
                let ev = v.get("event").expect("event").to_string();
                events.push(ReplayEvent::parse_line(&ev).expect("corpus event"));
            }
        }
        assert!(events.len() > 100, "corpus too small: {}", events.len());
        let (mut compared, mut matched) = (0, 0);
        for e in &events {
            let t = e.event_type();
            let plans = engine.by_type.get(t.index()).expect("type");
            let mut memo = Memo::default();
            for (i, r) in engine.rules.iter().enumerate() {
                if !r.compiled.types.contains(t.index()) {
                    continue;
                }
                let want = r.compiled.node.eval_reference(e);
                let got = plans
                    .rules
                    .iter()
                    .find(|p| p.rule as usize == i)
                    .is_some_and(|p| plans.eval(p, e, &mut memo));
                assert_eq!(
                    got, want,
                    "rule {:?} on a {} event: plan says {got}, condition says {want}",
                    r.info.name, e.event_type
                );
                compared += 1;
                matched += usize::from(want);
            }
        }
        assert!(compared > 1000 && matched > 50, "{compared} {matched}");
    }

    /// The specialised checks (string, boolean and number kernels, `tolower` without
    /// allocation, `evt.arg.*` by name, server/client socket fields, `or`s of
    /// equalities merged into one set, `pmatch` by member lengths, affix lists with
    /// their edge filter) and the branch programs of nested `and`/`or`/`not` agree
    /// with the plain compiled conditions, rule by rule, on events that hit and miss
    /// them, including values of unexpected types and non-ASCII text.
    #[test]
    fn specialised_checks_agree_with_compiled_conditions() {
        let rules = r#"
- list: shells
  items: [bash, sh, zsh]
- rule: lower
  desc: tolower on a path, ASCII and not
  condition: evt.type = openat and tolower(fd.name) endswith anyof (.enc, .LOCKED, .crypt)
  output: "x"
  priority: WARNING
- rule: arg text
  desc: evt.arg by name
  condition: evt.type = openat and (evt.arg.flags contains O_CREAT or evt.arg.flags = 7)
  output: "x"
  priority: WARNING
- rule: sockets
  desc: server side fields
  condition: evt.type = connect and (fd.sip in (192.0.2.0/24, 198.51.100.7) or fd.sport in (22, 443) or fd.sip.name = evil.example)
  output: "x"
  priority: WARNING
- rule: merged
  desc: equalities of one field in an or
  condition: evt.type = execve and (proc.name = python3 or proc.name in (shells) or proc.name = curl) and not (proc.pname = sshd or proc.aname in (tmux, screen))
  output: "x"
  priority: WARNING
- rule: paths
  desc: pmatch, affixes, globs, nested not
  condition: >
    evt.type = openat and not (fd.name pmatch (/etc/ssh, /root/.ssh, /home/user/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2)
    and not fd.name startswith anyof (/etc/ssh/moduli, /etc/ssh/ssh_config))
    or (fd.name endswith oneof (.pem, .key, "") and not fd.name glob "/tmp/*")
    or (fd.num >= 3 and not (evt.is_open_write = true or user.uid = 0))
  output: "x"
  priority: WARNING
"#;
        let mut b = RulesetBuilder::new(LoadOptions::default());
        b.load_str("t.yaml", rules);
        let rs = b.build();
        assert!(!rs.has_errors(), "{:?}", rs.diagnostics());
        let engine = Engine::new(
            &rs,
            EngineOptions {
                rule_matching: RuleMatching::All,
                ..EngineOptions::default()
            },
        )
        .expect("engine");
        let lines = [
            r#"{"time":1,"type":"openat","proc":{"name":"x"},"fd":{"num":3,"name":"/tmp/A.ENC"},"args":{"flags":"O_RDONLY"}}"#,
            r#"{"time":1,"type":"openat","proc":{"name":"x"},"fd":{"num":3,"name":"/tmp/Ä.LOCKED"},"args":{"flags":"O_WRONLY|O_CREAT"},"user":{"uid":0}}"#,
            r#"{"time":1,"type":"openat","fd":{"num":-1,"name":"/etc/ssh/moduli"},"args":{"flags":7}}"#,
            r#"{"time":1,"type":"openat","fd":{"num":4,"name":"/etc/ssh/sshd_config"},"args":[["flags",true]]}"#,
            r#"{"time":1,"type":"openat","fd":{"num":4,"name":"/root/.ssh"}}"#,
            r#"{"time":1,"type":"openat","fd":{"num":4,"name":"/srv/x.key"},"user":{"uid":1000}}"#,
            r#"{"time":1,"type":"openat","fd":{"num":4,"name":"/tmp/x.pem"},"args":{"flags":"O_RDWR"}}"#,
            r#"{"time":1,"type":"openat","fd":{"num":4,"name":"/home/user/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2/3"}}"#,
            r#"{"time":1,"type":"openat"}"#,
            r#"{"time":1,"type":"connect","fd":{"sip":"192.0.2.9","sport":80,"cip":"10.0.0.1","cport":5000}}"#,
            r#"{"time":1,"type":"connect","fd":{"sip":"203.0.113.1","sport":443,"cip":"10.0.0.1","cport":5000}}"#,
            r#"{"time":1,"type":"connect","fd":{"sip":"203.0.113.1","sport":80,"sip_name":"evil.example"}}"#,
            r#"{"time":1,"type":"connect","fd":{"type":"unix","name":"/run/x.sock"}}"#,
            r#"{"time":1,"type":"execve","proc":{"name":"zsh"},"ancestors":[{"name":"tmux"}]}"#,
            r#"{"time":1,"type":"execve","proc":{"name":"zsh"},"ancestors":[{"name":"bash"},{"name":"sshd"}]}"#,
            r#"{"time":1,"type":"execve","proc":{"name":"python3"},"ancestors":[{"name":"sshd"}]}"#,
            r#"{"time":1,"type":"execve","proc":{"name":"curl"}}"#,
            r#"{"time":1,"type":"execve","proc":{"name":"ls"},"ancestors":[{"name":"bash"}]}"#,
        ];
        let (mut compared, mut matched) = (0, 0);
        for line in lines {
            let e = ReplayEvent::parse_line(line).expect("event");
            let t = e.event_type();
            let plans = engine.by_type.get(t.index()).expect("type");
            let mut memo = Memo::default();
            for (i, r) in engine.rules.iter().enumerate() {
                if !r.compiled.types.contains(t.index()) {
                    continue;
                }
                let want = r.compiled.node.eval_reference(&e);
                let got = plans
                    .rules
                    .iter()
                    .find(|p| p.rule as usize == i)
                    .is_some_and(|p| plans.eval(p, &e, &mut memo));
                assert_eq!(got, want, "rule {:?} on {line}", r.info.name);
                compared += 1;
                matched += usize::from(want);
            }
        }
        // both outcomes were exercised
        assert!(
            compared >= 18 && matched >= 8 && compared - matched >= 8,
            "{compared} {matched}"
        );
    }

    /// Rules matching very many event types share one unspecialised plan; rules over
    /// few types get per-type plans where `evt.type` is folded; a check shared by two
    /// rules is memoised and gives each rule its own correct answer.
    #[test]
    fn shared_and_specialised_plans() {
        let rules = r#"
- rule: any type
  desc: no evt.type, so every event type
  condition: proc.name = foo and not fd.name startswith /tmp
  output: "x %proc.name"
  priority: WARNING
- rule: opens only
  desc: memoised proc.name check shared with the rule above
  condition: evt.type in (open, openat) and proc.name = foo and fd.name = /etc/passwd
  output: "y %proc.name"
  priority: WARNING
- rule: not connect
  desc: negated evt.type folds per type
  condition: evt.type in (openat, connect) and not evt.type = connect and proc.name = foo
  output: "z %proc.name"
  priority: WARNING
"#;
        let mut b = RulesetBuilder::new(LoadOptions::default());
        b.load_str("t.yaml", rules);
        let rs = b.build();
        assert!(!rs.has_errors(), "{:?}", rs.diagnostics());
        let engine = Engine::new(
            &rs,
            EngineOptions {
                rule_matching: RuleMatching::All,
                ..EngineOptions::default()
            },
        )
        .expect("engine");
        let ev = |ty: &str, name: &str, path: &str| {
            ReplayEvent::parse_line(&format!(
                r#"{{"time":1,"type":"{ty}","proc":{{"name":"{name}"}},"fd":{{"name":"{path}"}}}}"#
            ))
            .expect("event")
        };
        let names = |e: &ReplayEvent| -> Vec<String> {
            engine
                .evaluate(e)
                .iter()
                .map(|m| m.rule_name().to_owned())
                .collect()
        };
        let openat = EventType::from_name("openat").expect("openat");
        let connect = EventType::from_name("connect").expect("connect");
        // "not connect" cannot match connect events: folded away for that type
        assert_eq!(engine.rules_for_type(openat), 3);
        assert_eq!(engine.rules_for_type(connect), 1);
        assert_eq!(
            names(&ev("openat", "foo", "/etc/passwd")),
            ["any type", "opens only", "not connect"]
        );
        assert_eq!(
            names(&ev("openat", "bar", "/etc/passwd")),
            Vec::<String>::new()
        );
        assert_eq!(names(&ev("openat", "foo", "/tmp/x")), ["not connect"]);
        assert_eq!(names(&ev("connect", "foo", "/etc/passwd")), ["any type"]);
        assert_eq!(names(&ev("execve", "foo", "/etc/passwd")), ["any type"]);
    }
}
