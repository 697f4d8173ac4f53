//! Reading policy files: pyward's YAML and Anchore/Sysdig bundles (v1 and v2 names, JSON or
//! YAML) into one [`Bundle`], every problem reported with its line and column.

use crate::node::{parse_json, parse_yaml, Node, Pos, Value};
use crate::pyre::{start_and_anywhere_agree, MatchMode, PyRegex};
use crate::rules::{self, canonical_gate, Kind, Rule};
use crate::secrets::DEFAULT_SECRET_REGEXES;
use pyward_core::Action;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use time::OffsetDateTime;

/// The flavour a bundle was written in (for messages and `policy check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleFormat {
    Pyward,
    AnchoreV1,
    AnchoreV2,
}

impl BundleFormat {
    pub fn label(self) -> &'static str {
        match self {
            BundleFormat::Pyward => "pyward policy",
            BundleFormat::AnchoreV1 => "Anchore bundle v1",
            BundleFormat::AnchoreV2 => "Anchore policy v2",
        }
    }
}

/// `*` wildcards (Anchore's `regexify`) or `regexp:` raw regexes, matched against a whole value.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    regex: regex::Regex,
}

impl Pattern {
    pub fn new(source: &str) -> Result<Pattern, String> {
        let re = match source.strip_prefix("regexp:") {
            Some(raw) => format!("^(?:{raw})"),
            None => {
                let parts: Vec<String> = source.split('*').map(regex::escape).collect();
                format!("^{}$", parts.join("(.*)"))
            }
        };
        regex::RegexBuilder::new(&re)
            .size_limit(1 << 20)
            .build()
            .map(|regex| Pattern {
                source: source.to_string(),
                regex,
            })
            .map_err(|e| format!("invalid pattern `{source}`: {e}"))
    }

    pub fn matches(&self, s: &str) -> bool {
        self.source == s || self.regex.is_match(s)
    }
}

/// Which image a mapping or an allow/deny-listed image entry is about.
#[derive(Debug, Clone)]
pub struct ImageSelector {
    pub name: String,
    pub registry: Pattern,
    pub repository: Pattern,
    /// `tag`, `digest` or `id`.
    pub image_type: String,
    pub value: Pattern,
}

#[derive(Debug, Clone)]
pub struct Mapping {
    pub id: String,
    pub selector: ImageSelector,
    pub rule_set_ids: Vec<String>,
    pub allowlist_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RuleSet {
    pub id: String,
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct AllowlistItem {
    pub id: String,
    pub gate: String,
    pub trigger_id: Pattern,
    pub expires_on: Option<OffsetDateTime>,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub struct Allowlist {
    pub id: String,
    pub name: String,
    pub items: Vec<AllowlistItem>,
}

/// A loaded policy bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub id: String,
    pub name: String,
    /// The file it came from (or `<default policy>`).
    pub source: String,
    pub format: BundleFormat,
    /// How `files`/`name_match` and `secret_scans` `filename_regex` patterns are applied.
    pub file_regex: MatchMode,
    pub rule_sets: Vec<RuleSet>,
    pub allowlists: Vec<Allowlist>,
    /// Empty: every rule set and allowlist applies to every target.
    pub mappings: Vec<Mapping>,
    pub allowlisted_images: Vec<ImageSelector>,
    pub denylisted_images: Vec<ImageSelector>,
    /// Named regexes for `files`/`content_regex_match`.
    pub content_search: Vec<(String, PyRegex)>,
    /// Named regexes for `secret_scans` (the defaults plus the bundle's own).
    pub secret_search: Vec<(String, PyRegex)>,
}

impl Bundle {
    pub fn rules(&self) -> impl Iterator<Item = (&RuleSet, &Rule)> {
        self.rule_sets
            .iter()
            .flat_map(|s| s.rules.iter().map(move |r| (s, r)))
    }
}

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.pos, self.message)
        }
    }
}

/// Why a policy could not be loaded: every error found, each with its position.
#[derive(Debug, Clone, thiserror::Error)]
pub struct PolicyError {
    pub source_name: String,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid policy {}:", self.source_name)?;
        for e in &self.errors {
            write!(f, "\n  {}:{e}", self.source_name)?;
        }
        Ok(())
    }
}

/// A bundle and the lint warnings about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub bundle: Bundle,
    pub warnings: Vec<Problem>,
}

/// The policy `pyward scan` uses when no `--policy` is given.
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../../policies/default.yaml");

/// Load a policy file (`.json` → JSON, anything else YAML; JSON is also recognised by content).
pub fn load_file(path: &Path) -> Result<Loaded, PolicyError> {
    let name = path.display().to_string();
    let fail = |message: String| PolicyError {
        source_name: name.clone(),
        errors: vec![Problem {
            pos: Pos::default(),
            message,
        }],
        warnings: vec![],
    };
    let meta =
        std::fs::metadata(path).map_err(|e| fail(format!("cannot read the policy file: {e}")))?;
    if meta.len() > crate::node::MAX_POLICY_BYTES as u64 {
        return Err(fail(format!(
            "the file is {} bytes, over the {}-byte limit for policies",
            meta.len(),
            crate::node::MAX_POLICY_BYTES
        )));
    }
    let bytes =
        std::fs::read(path).map_err(|e| fail(format!("cannot read the policy file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "the file is not UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    load_str(&text, &name, json)
}

/// Load policy text. `json` forces JSON; otherwise text starting with `{` is read as JSON and
/// the rest as YAML.
pub fn load_str(text: &str, source_name: &str, json: bool) -> Result<Loaded, PolicyError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let as_json = json || text.trim_start().starts_with('{');
    let parsed = if as_json {
        parse_json(text)
    } else {
        parse_yaml(text)
    };
    let root = parsed.map_err(|e| PolicyError {
        source_name: source_name.into(),
        errors: vec![Problem {
            pos: e.pos,
            message: e.message,
        }],
        warnings: vec![],
    })?;
    let mut r = Reader {
        errors: Vec::new(),
        warnings: Vec::new(),
        now: OffsetDateTime::now_utc(),
    };
    let bundle = r.bundle(&root, source_name);
    if r.errors.is_empty() {
        if let Some(bundle) = bundle {
            return Ok(Loaded {
                bundle,
                warnings: r.warnings,
            });
        }
    }
    r.errors.sort_by_key(|p| p.pos);
    Err(PolicyError {
        source_name: source_name.into(),
        errors: r.errors,
        warnings: r.warnings,
    })
}

/// The built-in default policy.
pub fn default_policy() -> Bundle {
    match load_str(DEFAULT_POLICY_YAML, "<default policy>", false) {
        Ok(l) => l.bundle,
        // The shipped file is tested; an error here is a build defect, reported loudly.
        Err(e) => panic!("the built-in default policy is invalid: {e}"),
    }
}

struct Reader {
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
    now: OffsetDateTime,
}

const TOP_KEYS: &[&str] = &[
    "id",
    "name",
    "version",
    "comment",
    "description",
    "file_regex",
    "rules",
    "rule_sets",
    "policies",
    "allowlist",
    "allowlists",
    "whitelists",
    "mappings",
    "allowlisted_images",
    "denylisted_images",
    "whitelisted_images",
    "blacklisted_images",
    "content_search",
    "secret_search",
];
/// Anchore bundle keys pyward reads past (bookkeeping, or source/SBOM mappings it has no use for).
const IGNORED_KEYS: &[&str] = &[
    "last_updated",
    "created_at",
    "policy_id",
    "active",
    "user_id",
    "policy_source",
    "source_mappings",
    "sbom_mappings",
    "policy_name",
];

impl Reader {
    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(Problem {
            pos,
            message: message.into(),
        });
    }

    fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.warnings.push(Problem {
            pos,
            message: message.into(),
        });
    }

    /// The entries of a mapping node, keys as strings, checking against `allowed`.
    fn map<'a>(
        &mut self,
        node: &'a Node,
        what: &str,
        allowed: &[&str],
        ignored: &[&str],
    ) -> Vec<(String, &'a Node)> {
        let Some(entries) = node.as_map() else {
            self.err(
                node.pos,
                format!("{what} must be a mapping, found {}", node.kind()),
            );
            return Vec::new();
        };
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (k, v) in entries {
            let Some(key) = k.scalar() else {
                self.err(
                    k.pos,
                    format!("{what}: keys must be strings, found {}", k.kind()),
                );
                continue;
            };
            let lower = key.to_ascii_lowercase();
            if !seen.insert(lower.clone()) {
                self.err(k.pos, format!("{what}: duplicate key `{key}`"));
                continue;
            }
            if ignored.contains(&lower.as_str()) {
                continue;
            }
            if !allowed.contains(&lower.as_str()) {
                self.err(
                    k.pos,
                    format!(
                        "{what}: unknown key `{key}`; expected one of: {}",
                        allowed.join(", ")
                    ),
                );
                continue;
            }
            out.push((lower, v));
        }
        out
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Seq(_) | Value::Map(_) => {
                self.err(
                    node.pos,
                    format!("{what} must be a string, found {}", node.kind()),
                );
                None
            }
            Value::Null => None,
            _ => node.scalar(),
        }
    }

    fn seq<'a>(&mut self, node: &'a Node, what: &str) -> &'a [Node] {
        match &node.value {
            Value::Seq(s) => s,
            Value::Null => &[],
            _ => {
                self.err(
                    node.pos,
                    format!("{what} must be a list, found {}", node.kind()),
                );
                &[]
            }
        }
    }

    fn string_list(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.value {
            Value::Seq(items) => items.iter().filter_map(|i| self.string(i, what)).collect(),
            _ => self.string(node, what).into_iter().collect(),
        }
    }

    fn bundle(&mut self, root: &Node, source: &str) -> Option<Bundle> {
        let top = self.map(root, "the policy", TOP_KEYS, IGNORED_KEYS);
        if top.is_empty() && root.as_map().is_none() {
            return None;
        }
        let get = |k: &str| top.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let has = |k: &str| get(k).is_some();
        let format = if has("rule_sets")
            || has("allowlists")
            || has("allowlisted_images")
            || has("denylisted_images")
        {
            BundleFormat::AnchoreV2
        } else if has("policies")
            || has("whitelists")
            || has("whitelisted_images")
            || has("blacklisted_images")
        {
            BundleFormat::AnchoreV1
        } else {
            BundleFormat::Pyward
        };
        let id = get("id")
            .and_then(|n| self.string(n, "id"))
            .unwrap_or_else(|| {
                Path::new(source)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "policy".into())
            });
        let name = get("name")
            .and_then(|n| self.string(n, "name"))
            .unwrap_or_else(|| id.clone());
        let file_regex = match get("file_regex") {
            None => MatchMode::Anywhere,
            Some(n) => match self.string(n, "file_regex").as_deref() {
                Some("anywhere") | Some("search") => MatchMode::Anywhere,
                Some("start") | Some("match") | Some("anchore") => MatchMode::Start,
                other => {
                    self.err(n.pos, format!("file_regex: `{}` is not `anywhere` (pyward's default) or `start` (Python re.match, as Anchore)", other.unwrap_or_default()));
                    MatchMode::Anywhere
                }
            },
        };

        let mut content_search = Vec::new();
        if let Some(n) = get("content_search") {
            content_search = self.named_regexes(n, "content_search");
        }
        let mut secret_search: Vec<(String, PyRegex)> = DEFAULT_SECRET_REGEXES
            .iter()
            .map(|(n, r)| (n.to_string(), PyRegex::builtin(r, MatchMode::Start)))
            .collect();
        if let Some(n) = get("secret_search") {
            for (name, re) in self.named_regexes(n, "secret_search") {
                secret_search.retain(|(existing, _)| *existing != name);
                secret_search.push((name, re));
            }
        }
        let names: HashSet<String> = content_search
            .iter()
            .chain(&secret_search)
            .map(|(n, _)| n.clone())
            .collect();

        let mut rule_sets = Vec::new();
        if let Some(n) = get("rules") {
            let rules = self.rules(n, file_regex, &names);
            rule_sets.push(RuleSet {
                id: id.clone(),
                name: name.clone(),
                rules,
            });
        }
        for key in ["rule_sets", "policies"] {
            if let Some(n) = get(key) {
                for item in self.seq(n, key) {
                    if let Some(rs) = self.rule_set(item, key, file_regex, &names) {
                        rule_sets.push(rs);
                    }
                }
            }
        }
        self.unique(
            rule_sets.iter().map(|s| (s.id.as_str(), Pos::default())),
            "rule set",
        );

        let mut allowlists = Vec::new();
        if let Some(n) = get("allowlist") {
            let items = self.allowlist_items(n);
            allowlists.push(Allowlist {
                id: format!("{id}-allowlist"),
                name: "allowlist".into(),
                items,
            });
        }
        for key in ["allowlists", "whitelists"] {
            if let Some(n) = get(key) {
                for item in self.seq(n, key) {
                    if let Some(a) = self.allowlist(item, key) {
                        allowlists.push(a);
                    }
                }
            }
        }
        self.unique(
            allowlists.iter().map(|a| (a.id.as_str(), Pos::default())),
            "allowlist",
        );

        let mut mappings = Vec::new();
        if let Some(n) = get("mappings") {
            for item in self.seq(n, "mappings") {
                if let Some(m) = self.mapping(item) {
                    mappings.push(m);
                }
            }
        }
        for m in &mappings {
            for rs in &m.rule_set_ids {
                if !rule_sets.iter().any(|s| &s.id == rs) {
                    self.err(
                        Pos::default(),
                        format!(
                            "mapping `{}` names rule set `{rs}`, which the bundle does not define",
                            m.id
                        ),
                    );
                }
            }
            for al in &m.allowlist_ids {
                if !allowlists.iter().any(|a| &a.id == al) {
                    self.err(
                        Pos::default(),
                        format!(
                            "mapping `{}` names allowlist `{al}`, which the bundle does not define",
                            m.id
                        ),
                    );
                }
            }
        }
        if rule_sets.is_empty() {
            self.err(root.pos, "the policy has no rules: add `rules:` (pyward) or `policies:`/`rule_sets:` (Anchore)");
        }

        let images = |keys: [&str; 2], me: &mut Self| -> Vec<ImageSelector> {
            let mut out = Vec::new();
            for key in keys {
                if let Some(n) = get(key) {
                    for item in me.seq(n, key) {
                        if let Some(s) = me.selector(item, key) {
                            out.push(s);
                        }
                    }
                }
            }
            out
        };
        let allowlisted_images = images(["allowlisted_images", "whitelisted_images"], self);
        let denylisted_images = images(["denylisted_images", "blacklisted_images"], self);

        Some(Bundle {
            id,
            name,
            source: source.to_string(),
            format,
            file_regex,
            rule_sets,
            allowlists,
            mappings,
            allowlisted_images,
            denylisted_images,
            content_search,
            secret_search,
        })
    }

    fn unique<'a>(&mut self, ids: impl Iterator<Item = (&'a str, Pos)>, what: &str) {
        let mut seen = HashSet::new();
        for (id, pos) in ids {
            if !seen.insert(id.to_string()) {
                self.err(
                    pos,
                    format!("duplicate {what} id `{id}`: ids must be unique"),
                );
            }
        }
    }

    fn named_regexes(&mut self, node: &Node, what: &str) -> Vec<(String, PyRegex)> {
        let mut out = Vec::new();
        let entries: Vec<(String, Node)> = match &node.value {
            Value::Map(m) => m
                .iter()
                .filter_map(|(k, v)| Some((k.scalar()?, v.clone())))
                .collect(),
            // Anchore's analyzer_config form: ["NAME=regex", ...].
            Value::Seq(items) => items
                .iter()
                .filter_map(|i| {
                    let s = i.scalar()?;
                    let (n, r) = s.split_once('=')?;
                    Some((
                        n.to_string(),
                        Node {
                            value: Value::Quoted(r.to_string()),
                            pos: i.pos,
                        },
                    ))
                })
                .collect(),
            _ => {
                self.err(node.pos, format!("{what} must map names to regexes"));
                return out;
            }
        };
        for (name, v) in entries {
            let Some(text) = self.string(&v, what) else {
                continue;
            };
            match PyRegex::new(&text, MatchMode::Start) {
                Ok(re) => out.push((name, re)),
                Err(e) => self.err(v.pos, format!("{what} `{name}`: {e}")),
            }
        }
        out
    }

    fn rule_set(
        &mut self,
        node: &Node,
        what: &str,
        mode: MatchMode,
        names: &HashSet<String>,
    ) -> Option<RuleSet> {
        let entries = self.map(
            node,
            what,
            &[
                "id",
                "name",
                "version",
                "comment",
                "description",
                "rules",
                "artifact_type",
                "policy_type",
            ],
            &["last_updated"],
        );
        let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let Some(id) = get("id").and_then(|n| self.string(n, "id")) else {
            self.err(node.pos, format!("{what}: every entry needs an `id`"));
            return None;
        };
        let name = get("name")
            .and_then(|n| self.string(n, "name"))
            .unwrap_or_else(|| id.clone());
        let rules = match get("rules") {
            Some(n) => self.rules(n, mode, names),
            None => Vec::new(),
        };
        Some(RuleSet { id, name, rules })
    }

    fn rules(&mut self, node: &Node, mode: MatchMode, names: &HashSet<String>) -> Vec<Rule> {
        let mut out: Vec<Rule> = Vec::new();
        for (i, item) in self.seq(node, "rules").iter().enumerate() {
            if let Some(rule) = self.rule(item, i, mode, names) {
                if out.iter().any(|r| r.id == rule.id) {
                    self.err(
                        rule.pos,
                        format!(
                            "duplicate rule id `{}`: rule ids must be unique within a rule set",
                            rule.id
                        ),
                    );
                    continue;
                }
                out.push(rule);
            }
        }
        out
    }

    fn rule(
        &mut self,
        node: &Node,
        index: usize,
        mode: MatchMode,
        names: &HashSet<String>,
    ) -> Option<Rule> {
        let entries = self.map(
            node,
            "rule",
            &[
                "id",
                "gate",
                "trigger",
                "action",
                "params",
                "description",
                "recommendation",
                "comment",
                "name",
            ],
            &[],
        );
        let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let id = get("id")
            .and_then(|n| self.string(n, "id"))
            .unwrap_or_else(|| format!("rule-{}", index + 1));
        let (Some(gate_node), Some(trigger_node)) = (get("gate"), get("trigger")) else {
            self.err(
                node.pos,
                format!("rule `{id}`: `gate` and `trigger` are required"),
            );
            return None;
        };
        let gate_raw = self.string(gate_node, "gate")?;
        let gate = canonical_gate(&gate_raw);
        let trigger = self
            .string(trigger_node, "trigger")?
            .trim()
            .to_ascii_lowercase();
        let action = match get("action") {
            None => {
                self.err(
                    node.pos,
                    format!("rule `{id}`: `action` is required (STOP, WARN or GO)"),
                );
                return None;
            }
            Some(n) => match self.string(n, "action").map(|s| s.parse::<Action>()) {
                Some(Ok(a)) => a,
                Some(Err(e)) => {
                    self.err(n.pos, format!("rule `{id}`: {e}"));
                    return None;
                }
                None => return None,
            },
        };
        let Some(spec) = rules::spec(&gate, &trigger) else {
            if rules::TRIGGERS.iter().any(|t| t.gate == gate) {
                let known: Vec<&str> = rules::TRIGGERS
                    .iter()
                    .filter(|t| t.gate == gate)
                    .map(|t| t.trigger)
                    .collect();
                self.err(trigger_node.pos, format!("rule `{id}`: unknown trigger `{trigger}` of gate `{gate}`; known triggers: {}", known.join(", ")));
            } else if rules::UNSUPPORTED_GATES.contains(&gate.as_str()) {
                self.err(gate_node.pos, format!("rule `{id}`: gate `{gate}` is an Anchore gate pyward does not evaluate (it needs data a static scan does not have); remove the rule or keep it in your Anchore bundle only"));
            } else {
                let mut gates: Vec<&str> = rules::TRIGGERS.iter().map(|t| t.gate).collect();
                gates.dedup();
                self.err(
                    gate_node.pos,
                    format!(
                        "rule `{id}`: unknown gate `{gate_raw}`; known gates: {}",
                        gates.join(", ")
                    ),
                );
            }
            return None;
        };
        let params = self.params(get("params"), &id, spec, names)?;
        match rules::compile(spec, &params, mode) {
            Ok(check) => {
                self.lint(
                    &id,
                    spec,
                    &params,
                    get("params").map_or(node.pos, |n| n.pos),
                    names,
                    mode,
                );
                Some(Rule {
                    id,
                    gate,
                    trigger,
                    action,
                    params,
                    check,
                    pos: node.pos,
                })
            }
            Err((param, message)) => {
                self.err(
                    get("params").map_or(node.pos, |n| n.pos),
                    format!("rule `{id}`: parameter `{param}` {message}"),
                );
                None
            }
        }
    }

    /// Parameters as `{name: value}` (pyward) or `[{name, value}]` (Anchore), names lower-cased,
    /// values checked against the trigger's spec.
    fn params(
        &mut self,
        node: Option<&Node>,
        id: &str,
        spec: &rules::TriggerSpec,
        names: &HashSet<String>,
    ) -> Option<BTreeMap<String, String>> {
        let mut raw: Vec<(String, Node)> = Vec::new();
        if let Some(node) = node {
            match &node.value {
                Value::Null => {}
                Value::Map(m) => {
                    for (k, v) in m {
                        match k.scalar() {
                            Some(k) => raw.push((k, v.clone())),
                            None => self.err(
                                k.pos,
                                format!("rule `{id}`: parameter names must be strings"),
                            ),
                        }
                    }
                }
                Value::Seq(items) => {
                    for item in items {
                        let entries = self.map(item, "parameter", &["name", "value"], &[]);
                        let name = entries
                            .iter()
                            .find(|(n, _)| n == "name")
                            .and_then(|(_, v)| v.scalar());
                        let value = entries
                            .iter()
                            .find(|(n, _)| n == "value")
                            .map(|(_, v)| (*v).clone());
                        match name {
                            Some(n) => raw.push((
                                n,
                                value.unwrap_or(Node {
                                    value: Value::Null,
                                    pos: item.pos,
                                }),
                            )),
                            None => self.err(
                                item.pos,
                                format!("rule `{id}`: every parameter needs a `name`"),
                            ),
                        }
                    }
                }
                _ => {
                    self.err(node.pos, format!("rule `{id}`: params must be a mapping or a list of {{name, value}}, found {}", node.kind()));
                    return None;
                }
            }
        }
        let before = self.errors.len();
        let mut out = BTreeMap::new();
        let mut given = HashSet::new();
        for (name, value) in raw {
            let lname = name.trim().to_ascii_lowercase();
            given.insert(lname.clone());
            let Some(ps) = spec.params.iter().find(|p| p.name == lname) else {
                let known: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
                self.err(
                    value.pos,
                    format!(
                        "rule `{id}`: unknown parameter `{name}` for {}/{}; {}",
                        spec.gate,
                        spec.trigger,
                        if known.is_empty() {
                            "it takes no parameters".to_string()
                        } else {
                            format!("expected: {}", known.join(", "))
                        }
                    ),
                );
                continue;
            };
            if out.contains_key(&lname) {
                self.err(
                    value.pos,
                    format!("rule `{id}`: parameter `{name}` given twice"),
                );
                continue;
            }
            let text = match (&value.value, ps.kind) {
                (Value::Seq(items), Kind::List) => {
                    let parts: Vec<String> = items.iter().filter_map(|i| i.scalar()).collect();
                    parts.join(",")
                }
                (Value::Null, _) => String::new(),
                (Value::Seq(_) | Value::Map(_), _) => {
                    self.err(
                        value.pos,
                        format!(
                            "rule `{id}`: parameter `{name}` must be a string, found {}",
                            value.kind()
                        ),
                    );
                    continue;
                }
                _ => value.scalar().unwrap_or_default(),
            };
            if !text.is_empty() {
                if let Some(msg) = check_kind(ps.kind, &text) {
                    self.err(value.pos, format!("rule `{id}`: parameter `{name}`: {msg}"));
                    continue;
                }
            }
            if (lname == "regex_name" || lname == "content_regex_name")
                && !text.is_empty()
                && !names.contains(&text)
            {
                // A comma list of names (secret_scans), or one name, or a regex written inline.
                let all_names = text.split(',').all(|n| names.contains(n.trim()));
                if !all_names {
                    if let Err(e) = PyRegex::new(&text, MatchMode::Start) {
                        self.err(value.pos, format!("rule `{id}`: `{text}` is neither a configured regex name nor a valid regex: {e}"));
                        continue;
                    }
                }
            }
            out.insert(lname, text);
        }
        for ps in spec.params.iter().filter(|p| p.required) {
            if !given.contains(ps.name) || out.get(ps.name).is_some_and(|v| v.is_empty()) {
                self.err(
                    node.map_or(Pos::default(), |n| n.pos),
                    format!(
                        "rule `{id}`: {}/{} requires parameter `{}`",
                        spec.gate, spec.trigger, ps.name
                    ),
                );
            }
        }
        (self.errors.len() == before).then_some(out)
    }

    fn lint(
        &mut self,
        id: &str,
        spec: &rules::TriggerSpec,
        params: &BTreeMap<String, String>,
        pos: Pos,
        _names: &HashSet<String>,
        mode: MatchMode,
    ) {
        let file_regex = match (spec.gate, spec.trigger) {
            ("files", "name_match") => params.get("regex"),
            ("secret_scans", "content_regex_checks") => params.get("filename_regex"),
            _ => None,
        };
        if let Some(re) = file_regex.filter(|r| !r.is_empty()) {
            if mode == MatchMode::Anywhere && !start_and_anywhere_agree(re) {
                self.warn(pos, format!(
                    "rule `{id}`: regex `{re}` — Anchore applies Python re.match (anchored at the start of the absolute path), \
                     so there it only matches paths that begin with it{}; pyward matches it anywhere in the path. \
                     Write `.*{re}` to get the same result in both",
                    if re.starts_with('/') { "" } else { " (never, for a pattern not starting with `/`)" }
                ));
            }
        }
        if spec.gate == "packages" && matches!(spec.trigger, "blacklist" | "denylist") {
            if let Some(name) = params.get("name") {
                let norm = pyward_core::normalize_name(name);
                if norm != *name {
                    self.warn(pos, format!(
                        "rule `{id}`: package name `{name}` — Anchore compares names exactly and case-sensitively, \
                         so it misses the package once an SBOM tool normalises the name to `{norm}`; \
                         pyward compares PEP 503-normalised names"
                    ));
                }
            }
        }
        if spec.gate == "dockerfile" && spec.trigger == "instruction" {
            if let (Some(v), Some(c)) = (params.get("value"), params.get("check")) {
                if (c == "like" || c == "not_like") && !v.starts_with(".*") && !v.starts_with('^') {
                    self.warn(pos, format!(
                        "rule `{id}`: `{v}` is matched like Python re.match, from the start of the instruction's \
                         arguments (as Anchore does); write `.*{v}` to match it anywhere in the line"
                    ));
                }
            }
        }
    }

    fn allowlist(&mut self, node: &Node, what: &str) -> Option<Allowlist> {
        let entries = self.map(
            node,
            what,
            &["id", "name", "version", "comment", "description", "items"],
            &["last_updated"],
        );
        let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let Some(id) = get("id").and_then(|n| self.string(n, "id")) else {
            self.err(node.pos, format!("{what}: every allowlist needs an `id`"));
            return None;
        };
        let name = get("name")
            .and_then(|n| self.string(n, "name"))
            .unwrap_or_else(|| id.clone());
        let items = match get("items") {
            Some(n) => self.allowlist_items(n),
            None => Vec::new(),
        };
        Some(Allowlist { id, name, items })
    }

    fn allowlist_items(&mut self, node: &Node) -> Vec<AllowlistItem> {
        let mut out: Vec<AllowlistItem> = Vec::new();
        for item in self.seq(node, "allowlist items") {
            let entries = self.map(
                item,
                "allowlist item",
                &[
                    "id",
                    "gate",
                    "trigger_id",
                    "expires_on",
                    "description",
                    "comment",
                    "reason",
                ],
                &[],
            );
            let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
            let id = get("id").and_then(|n| self.string(n, "id"));
            let gate = get("gate").and_then(|n| self.string(n, "gate"));
            let trigger = get("trigger_id").and_then(|n| self.string(n, "trigger_id"));
            let (Some(id), Some(gate), Some(trigger)) = (id, gate, trigger) else {
                self.err(
                    item.pos,
                    "allowlist item: `id`, `gate` and `trigger_id` are required",
                );
                continue;
            };
            if out.iter().any(|i| i.id == id) {
                self.err(item.pos, format!("duplicate allowlist item id `{id}`"));
                continue;
            }
            let gate = canonical_gate(&gate);
            if !rules::TRIGGERS.iter().any(|t| t.gate == gate)
                && !rules::UNSUPPORTED_GATES.contains(&gate.as_str())
            {
                self.err(
                    get("gate").map_or(item.pos, |n| n.pos),
                    format!("allowlist item `{id}`: unknown gate `{gate}`"),
                );
                continue;
            }
            let trigger_id = match Pattern::new(&trigger) {
                Ok(p) => p,
                Err(e) => {
                    self.err(
                        get("trigger_id").map_or(item.pos, |n| n.pos),
                        format!("allowlist item `{id}`: {e}"),
                    );
                    continue;
                }
            };
            let mut expires_on = None;
            if let Some(n) = get("expires_on") {
                if let Some(text) = self.string(n, "expires_on").filter(|t| !t.is_empty()) {
                    match parse_time(&text) {
                        Some(t) => {
                            if t <= self.now {
                                self.warn(n.pos, format!("allowlist item `{id}` expired on {text}: it is ignored, so what it allowlisted counts again; renew or remove it"));
                            }
                            expires_on = Some(t);
                        }
                        None => {
                            self.err(n.pos, format!("allowlist item `{id}`: expires_on `{text}` is not an RFC 3339 time such as 2030-01-01T00:00:00Z"));
                            continue;
                        }
                    }
                }
            }
            out.push(AllowlistItem {
                id,
                gate,
                trigger_id,
                expires_on,
                pos: item.pos,
            });
        }
        out
    }

    fn mapping(&mut self, node: &Node) -> Option<Mapping> {
        let entries = self.map(
            node,
            "mapping",
            &[
                "id",
                "name",
                "description",
                "comment",
                "registry",
                "repository",
                "image",
                "policy_id",
                "policy_ids",
                "rule_set_ids",
                "whitelist_ids",
                "allowlist_ids",
            ],
            &[],
        );
        let get = |k: &str| entries.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        let selector = self.selector(node, "mapping")?;
        let id = get("id")
            .and_then(|n| self.string(n, "id"))
            .unwrap_or_else(|| selector.name.clone());
        let mut rule_set_ids = Vec::new();
        if get("policy_id").is_some() && get("policy_ids").is_some() {
            self.err(
                node.pos,
                format!("mapping `{id}`: give policy_id or policy_ids, not both"),
            );
        }
        for k in ["policy_id", "policy_ids", "rule_set_ids"] {
            if let Some(n) = get(k) {
                rule_set_ids.extend(self.string_list(n, k));
            }
        }
        let mut allowlist_ids = Vec::new();
        for k in ["whitelist_ids", "allowlist_ids"] {
            if let Some(n) = get(k) {
                allowlist_ids.extend(self.string_list(n, k));
            }
        }
        Some(Mapping {
            id,
            selector,
            rule_set_ids,
            allowlist_ids,
        })
    }

    /// `{registry, repository, image: {type, value}}`, shared by mappings and image lists.
    fn selector(&mut self, node: &Node, what: &str) -> Option<ImageSelector> {
        let Some(entries) = node.as_map() else {
            self.err(
                node.pos,
                format!("{what}: must be a mapping, found {}", node.kind()),
            );
            return None;
        };
        let field = |k: &str| {
            entries
                .iter()
                .find(|(n, _)| n.scalar().as_deref() == Some(k))
                .map(|(_, v)| v)
        };
        let pat = |me: &mut Self, k: &str, n: Option<&Node>| -> Option<Pattern> {
            let text = n
                .and_then(|n| me.string(n, k))
                .unwrap_or_else(|| "*".into());
            match Pattern::new(&text) {
                Ok(p) => Some(p),
                Err(e) => {
                    me.err(n.map_or(node.pos, |n| n.pos), format!("{what}: {k}: {e}"));
                    None
                }
            }
        };
        let name = field("name")
            .and_then(|n| n.scalar())
            .or_else(|| field("id").and_then(|n| n.scalar()))
            .unwrap_or_default();
        let registry = pat(self, "registry", field("registry"))?;
        let repository = pat(self, "repository", field("repository"))?;
        let (image_type, value) = match field("image") {
            Some(img) => {
                let ie = self.map(img, "image", &["type", "value"], &[]);
                let t = ie
                    .iter()
                    .find(|(n, _)| n == "type")
                    .and_then(|(_, v)| v.scalar())
                    .unwrap_or_else(|| "tag".into());
                if !matches!(t.as_str(), "tag" | "digest" | "id") {
                    self.err(
                        img.pos,
                        format!("{what}: image type `{t}` is not tag, digest or id"),
                    );
                    return None;
                }
                let v = ie.iter().find(|(n, _)| n == "value").map(|(_, v)| *v);
                (t, pat(self, "image value", v)?)
            }
            None => ("tag".to_string(), Pattern::new("*").ok()?),
        };
        Some(ImageSelector {
            name,
            registry,
            repository,
            image_type,
            value,
        })
    }
}

fn check_kind(kind: Kind, text: &str) -> Option<String> {
    match kind {
        Kind::Str | Kind::List | Kind::Regex => None,
        Kind::Enum(values) => (!values.contains(&text))
            .then(|| format!("`{text}` is not one of: {}", values.join(", "))),
        Kind::Bool => (!matches!(text.to_ascii_lowercase().as_str(), "true" | "false"))
            .then(|| format!("`{text}` is not true or false")),
        Kind::Int => text
            .parse::<u64>()
            .is_err()
            .then(|| format!("`{text}` is not a whole number")),
        Kind::Num => text
            .parse::<f64>()
            .is_err()
            .then(|| format!("`{text}` is not a number")),
        Kind::Octal => u32::from_str_radix(text, 8)
            .is_err()
            .then(|| format!("`{text}` is not an octal mode such as 00644")),
    }
}

/// RFC 3339 (`2030-01-01T00:00:00Z`) or a plain date (`2030-01-01`, midnight UTC).
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let d = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    Some(d.midnight().assume_utc())
}
