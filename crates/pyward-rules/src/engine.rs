//! The evaluator: compiled rules indexed by event type.

use std::collections::BTreeMap;

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

#[derive(Debug, Clone)]
pub(crate) struct EngineRule {
    pub info: RuleInfo,
    pub compiled: CompiledRule,
    pub output: Template,
    pub tags_sorted: Vec<String>,
}

/// Evaluates events against compiled rules. Immutable and `Sync`: share it across threads.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<EngineRule>,
    /// For each event type index, the rules (indices into `rules`) in load order.
    by_type: Vec<Vec<u32>>,
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
            for t in comp.types.iter() {
                if let Some(v) = by_type.get_mut(t.index()) {
                    v.push(idx);
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
        self.by_type.get(t.index()).map_or(0, Vec::len)
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
        let Some(ids) = self.by_type.get(event.event_type().index()) else {
            return 0;
        };
        let mut n = 0;
        for &id in ids {
            let Some(r) = self.rules.get(id as usize) else {
                continue;
            };
            if r.compiled.node.eval(event) {
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
        let Some(ids) = self.by_type.get(event.event_type().index()) else {
            return 0;
        };
        let mut n = 0;
        for &id in ids {
            if let Some(r) = self.rules.get(id as usize) {
                if r.compiled.node.eval(event) {
                    n += 1;
                    if self.options.rule_matching == RuleMatching::First {
                        break;
                    }
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
