//! Rules-file loader: YAML items → lists, macros, rules (with Falco's append,
//! override, redefinition, enable and exception semantics) → compiled [`Ruleset`].

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use serde::Serialize;

use crate::ast::Expr;
use crate::compile::{self, CompileCtx, Node as CNode, TypeSet};
use crate::diag::{Diagnostic, Severity};
use crate::output::Template;
use crate::parser;
use crate::priority::Priority;
use crate::yaml::{self, Node, Pos};

/// The Falco engine version this implementation claims (Falco master, see the reference).
pub const ENGINE_VERSION: &str = "0.63.0";

/// Plugins whose fields pyward provides natively: (name, version).
const BUILTIN_PLUGINS: &[(&str, &str)] = &[("container", "0.6.0")];

/// Limits and settings of the loader.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Largest rules file accepted (default 32 MiB).
    pub max_file_bytes: usize,
    /// Longest condition accepted, after list expansion (default 1 MiB).
    pub max_condition_bytes: usize,
    /// Warn about macros and lists no rule uses (Falco does).
    pub warn_unused: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            max_file_bytes: 32 << 20,
            max_condition_bytes: 1 << 20,
            warn_unused: true,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Loc {
    file: usize,
    pos: Pos,
}

/// A rule as loaded (after append/override), with what the compiler learnt about it.
#[derive(Clone, Debug, Serialize)]
pub struct RuleInfo {
    /// Rule name.
    pub name: String,
    /// `desc`.
    pub desc: String,
    /// Condition as written (after append/override), before lists, macros and exceptions.
    pub condition: String,
    /// `output` template.
    pub output: String,
    /// `priority`.
    pub priority: Priority,
    /// `tags`.
    pub tags: Vec<String>,
    /// `enabled`.
    pub enabled: bool,
    /// `source` (`syscall` by default).
    pub source: String,
    /// Names of the rule's exceptions.
    pub exceptions: Vec<String>,
    /// `warn_evttypes`.
    pub warn_evttypes: bool,
    /// `skip-if-unknown-filter`.
    pub skip_if_unknown_filter: bool,
    /// `capture` (accepted, not acted on by the engine).
    pub capture: bool,
    /// File where the rule was first defined.
    pub file: String,
    /// Line of the definition.
    pub line: usize,
    /// Column of the definition.
    pub column: usize,
    /// Event types the rule can match (empty if not compiled).
    pub event_types: Vec<String>,
    /// The rule's condition does not restrict `evt.type`.
    pub all_event_types: bool,
    /// Fields the condition and output use.
    pub fields: Vec<String>,
    /// Compiled and evaluable (syscall source, no error, known fields).
    pub compiled: bool,
    /// Why it is not evaluated, when it is not.
    pub skipped: Option<String>,
}

/// A macro as loaded.
#[derive(Clone, Debug, Serialize)]
pub struct MacroInfo {
    /// Name.
    pub name: String,
    /// Condition text (after append/override).
    pub condition: String,
    /// File of the first definition.
    pub file: String,
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
    /// Referenced by some compiled rule.
    pub used: bool,
}

/// A list as loaded.
#[derive(Clone, Debug, Serialize)]
pub struct ListInfo {
    /// Name.
    pub name: String,
    /// Items after expanding references to earlier lists.
    pub items: Vec<String>,
    /// File of the first definition.
    pub file: String,
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
    /// Referenced by a condition or another list.
    pub used: bool,
}

#[derive(Clone, Debug)]
struct ListDef {
    name: String,
    items: Vec<String>,
    at: Loc,
}

#[derive(Clone, Debug)]
struct MacroDef {
    name: String,
    condition: String,
    at: Loc,
    cond_at: Loc,
    cond_block: bool,
    index: usize,
    visibility: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum ExValue {
    Scalar(String),
    List(Vec<ExValue>),
}

#[derive(Clone, Debug)]
struct ExceptionDef {
    name: String,
    /// `Some(list)` when `fields` is a list; `None` + `single` otherwise.
    fields: Option<Vec<String>>,
    single: Option<String>,
    comps: Vec<String>,
    values: Vec<ExValue>,
}

#[derive(Clone, Debug)]
struct RuleDef {
    name: String,
    condition: String,
    output: String,
    desc: String,
    priority: Priority,
    tags: Vec<String>,
    enabled: bool,
    source: String,
    exceptions: Vec<ExceptionDef>,
    warn_evttypes: bool,
    skip_if_unknown_filter: bool,
    capture: bool,
    at: Loc,
    cond_at: Loc,
    cond_block: bool,
    visibility: usize,
}

/// A compiled, evaluable rule.
#[derive(Clone, Debug)]
pub(crate) struct CompiledRule {
    pub node: CNode,
    pub types: TypeSet,
    pub output: Template,
}

/// Collects rules files in order, then [`RulesetBuilder::build`]s a [`Ruleset`].
#[derive(Debug, Default)]
pub struct RulesetBuilder {
    opts: LoadOptions,
    files: Vec<String>,
    lists: Vec<ListDef>,
    list_idx: HashMap<String, usize>,
    macros: Vec<MacroDef>,
    macro_idx: HashMap<String, usize>,
    rules: Vec<RuleDef>,
    rule_idx: HashMap<String, usize>,
    diags: Vec<Diagnostic>,
    counter: usize,
    required_engine_version: Option<String>,
}

/// The loaded and compiled rules of one or more files.
#[derive(Clone, Debug)]
pub struct Ruleset {
    rules: Vec<RuleInfo>,
    macros: Vec<MacroInfo>,
    lists: Vec<ListInfo>,
    diags: Vec<Diagnostic>,
    pub(crate) compiled: Vec<Option<CompiledRule>>,
    required_engine_version: Option<String>,
}

impl Ruleset {
    /// Every rule in load order (disabled and skipped ones included).
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }
    /// Every macro in definition order.
    pub fn macros(&self) -> &[MacroInfo] {
        &self.macros
    }
    /// Every list in definition order.
    pub fn lists(&self) -> &[ListInfo] {
        &self.lists
    }
    /// All diagnostics, in the order found.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diags
    }
    /// Errors only.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diags.iter().filter(|d| d.severity == Severity::Error)
    }
    /// Warnings only.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diags
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
    /// Any error? (Falco would refuse to start.)
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
    /// Number of enabled, compiled (evaluable) rules.
    pub fn enabled_rules(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| r.enabled && r.compiled)
            .count()
    }
    /// Sorted union of the event types needed by enabled, compiled rules.
    pub fn event_types(&self) -> Vec<String> {
        let mut s = BTreeSet::new();
        for r in self.rules.iter().filter(|r| r.enabled && r.compiled) {
            s.extend(r.event_types.iter().cloned());
        }
        s.into_iter().collect()
    }
    /// Sorted union of the fields used by enabled, compiled rules (conditions and outputs).
    pub fn fields_used(&self) -> Vec<String> {
        let mut s = BTreeSet::new();
        for r in self.rules.iter().filter(|r| r.enabled && r.compiled) {
            s.extend(r.fields.iter().cloned());
        }
        s.into_iter().collect()
    }
    /// Highest `required_engine_version` seen.
    pub fn required_engine_version(&self) -> Option<&str> {
        self.required_engine_version.as_deref()
    }
}

const LIST_KEYS: &[&str] = &["list", "items", "append", "override"];
const MACRO_KEYS: &[&str] = &["macro", "condition", "append", "override"];
const RULE_KEYS: &[&str] = &[
    "rule",
    "condition",
    "output",
    "desc",
    "priority",
    "source",
    "enabled",
    "capture",
    "capture_duration",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "tags",
    "exceptions",
    "override",
    "append",
];
const RULE_APPENDABLE: &[&str] = &["condition", "output", "desc", "tags", "exceptions"];
const RULE_REPLACEABLE: &[&str] = &[
    "condition",
    "output",
    "desc",
    "priority",
    "capture",
    "capture_duration",
    "tags",
    "exceptions",
    "enabled",
    "warn_evttypes",
    "skip-if-unknown-filter",
];
const EXC_COMPS: &[&str] = &[
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "glob",
    "iglob",
    "regex",
    "in",
    "intersects",
    "pmatch",
];

struct Ctx<'a> {
    file: usize,
    kind: &'static str,
    name: Option<&'a str>,
}

fn parse_version(s: &str) -> Option<(u64, u64, u64)> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Some((0, n, 0));
    }
    let mut it = s.split('.');
    let a = it.next()?.parse().ok()?;
    let b = it.next().unwrap_or("0").parse().ok()?;
    let c = it
        .next()
        .unwrap_or("0")
        .split(['-', '+'])
        .next()?
        .parse()
        .ok()?;
    if it.next().is_some() {
        return None;
    }
    Some((a, b, c))
}

fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn is_delim(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b',' | b'=')
}

/// Quote a value for condition text when it is not a safe bare string.
fn quote_value(v: &str) -> String {
    let bare = !v.is_empty()
        && v.bytes().all(|b| {
            !matches!(
                b,
                b' ' | b'\t' | b'\n' | b'\r' | 0x08 | b'(' | b')' | b',' | b'=' | b'"' | b'\''
            )
        });
    if bare {
        return v.to_owned();
    }
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// A list item as it is spliced into a condition: already-quoted items are kept.
fn list_item_text(v: &str) -> String {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        return v.to_owned();
    }
    quote_value(v)
}

impl RulesetBuilder {
    /// A builder with these limits.
    pub fn new(opts: LoadOptions) -> RulesetBuilder {
        RulesetBuilder {
            opts,
            ..Default::default()
        }
    }

    fn diag(
        &mut self,
        sev: Severity,
        c: &Ctx<'_>,
        pos: Pos,
        code: Option<&str>,
        msg: impl Into<String>,
    ) {
        self.diags.push(Diagnostic {
            severity: sev,
            file: self.files.get(c.file).cloned().unwrap_or_default(),
            line: pos.line,
            column: pos.col,
            item: c.name.map(str::to_owned),
            item_kind: Some(c.kind.to_owned()).filter(|k| !k.is_empty()),
            code: code.map(str::to_owned),
            message: msg.into(),
        });
    }

    fn err(&mut self, c: &Ctx<'_>, pos: Pos, msg: impl Into<String>) {
        self.diag(Severity::Error, c, pos, Some("LOAD_ERR_YAML_VALIDATE"), msg);
    }

    fn warn(&mut self, c: &Ctx<'_>, pos: Pos, code: &str, msg: impl Into<String>) {
        self.diag(Severity::Warning, c, pos, Some(code), msg);
    }

    /// The name of a list, macro or rule item (its `kind` key), after checking it is there and
    /// warning about keys that item kind does not have. `None` (with an error) when empty.
    fn item_name(
        &mut self,
        file: usize,
        item: &Node,
        kind: &'static str,
        known_keys: &[&str],
    ) -> Option<String> {
        let name = item
            .get(kind)
            .and_then(Node::as_str)
            .unwrap_or("")
            .to_owned();
        let c = Ctx {
            file,
            kind,
            name: Some(&name),
        };
        if name.is_empty() {
            self.err(&c, item.pos(), format!("Mapping for key '{kind}' is empty"));
            return None;
        }
        self.unknown_keys(&c, item, known_keys);
        Some(name)
    }

    /// For an item that modifies an earlier one (`append: true`, or an `override:` mapping):
    /// warns about the deprecated `append` form, and finds the earlier item by its index in
    /// `existing` (an error, in Falco's words, when there is none).
    fn modified_item(
        &mut self,
        c: &Ctx<'_>,
        pos: Pos,
        append: bool,
        example_key: &str,
        existing: Option<usize>,
    ) -> Option<usize> {
        if append {
            self.warn(c, pos, "LOAD_DEPRECATED_ITEM", format!("'append' key is deprecated. Add an 'append' entry (e.g. '{example_key}: append') under 'override' instead."));
        }
        if existing.is_none() {
            let how = if append { "'append'" } else { "'override'" };
            let kind = c.kind;
            let mut title = kind.to_string();
            if let Some(first) = title.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            self.err(
                c,
                pos,
                format!("{title} uses {how} key but no {kind} by that name already exists"),
            );
        }
        existing
    }

    /// Load a rules file. Problems (unreadable, too big, not UTF-8, bad YAML, bad
    /// items) become diagnostics of the built ruleset; loading goes on with the next file.
    pub fn load_file(&mut self, path: impl AsRef<Path>) -> &mut Self {
        let path = path.as_ref();
        let name = path.display().to_string();
        let limit = self.opts.max_file_bytes;
        let read = std::fs::File::open(path).and_then(|f| {
            let mut buf = Vec::new();
            f.take(limit as u64 + 1).read_to_end(&mut buf)?;
            Ok(buf)
        });
        match read {
            Ok(bytes) => self.load_bytes(&name, &bytes),
            Err(e) => {
                self.files.push(name);
                let c = Ctx {
                    file: self.files.len() - 1,
                    kind: "",
                    name: None,
                };
                self.diag(
                    Severity::Error,
                    &c,
                    Pos::default(),
                    Some("LOAD_ERR_FILE_READ"),
                    format!("could not read rules file: {e}"),
                );
                self
            }
        }
    }

    /// Load rules from bytes (must be UTF-8); `name` is used in diagnostics.
    pub fn load_bytes(&mut self, name: &str, bytes: &[u8]) -> &mut Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => self.load_str(name, s),
            Err(e) => {
                self.files.push(name.to_owned());
                let c = Ctx {
                    file: self.files.len() - 1,
                    kind: "",
                    name: None,
                };
                let off = e.valid_up_to();
                let before = &bytes[..off];
                let line = before.iter().filter(|b| **b == b'\n').count() + 1;
                let col = off
                    - before
                        .iter()
                        .rposition(|b| *b == b'\n')
                        .map(|p| p + 1)
                        .unwrap_or(0)
                    + 1;
                self.diag(
                    Severity::Error,
                    &c,
                    Pos { line, col },
                    Some("LOAD_ERR_YAML_PARSE"),
                    format!("rules file is not valid UTF-8 (invalid byte at offset {off}); save it as UTF-8"),
                );
                self
            }
        }
    }

    /// Load rules from text; `name` is used in diagnostics.
    pub fn load_str(&mut self, name: &str, text: &str) -> &mut Self {
        self.files.push(name.to_owned());
        let file = self.files.len() - 1;
        let c = Ctx {
            file,
            kind: "",
            name: None,
        };
        if text.len() > self.opts.max_file_bytes {
            let max = self.opts.max_file_bytes;
            self.diag(
                Severity::Error,
                &c,
                Pos::default(),
                Some("LOAD_ERR_FILE_READ"),
                format!("rules file is larger than the {max}-byte limit"),
            );
            return self;
        }
        let docs = match yaml::parse_documents(text) {
            Ok(d) => d,
            Err(e) => {
                self.diag(
                    Severity::Error,
                    &c,
                    e.pos,
                    Some("LOAD_ERR_YAML_PARSE"),
                    e.message,
                );
                return self;
            }
        };
        for doc in docs {
            match doc {
                Node::Seq { items, .. } => {
                    for item in &items {
                        self.item(file, item);
                    }
                }
                n if n.is_null() => {}
                n => {
                    self.diag(
                        Severity::Error,
                        &c,
                        n.pos(),
                        Some("LOAD_ERR_YAML_VALIDATE"),
                        "Rules content is not yaml array of objects",
                    );
                }
            }
        }
        self
    }

    fn next_id(&mut self) -> usize {
        self.counter += 1;
        self.counter
    }

    fn item(&mut self, file: usize, item: &Node) {
        if item.is_null() {
            return;
        }
        let c = Ctx {
            file,
            kind: "",
            name: None,
        };
        let Node::Map { entries, pos } = item else {
            self.err(
                &c,
                item.pos(),
                "Unexpected element type. Each element should be a yaml associative array.",
            );
            return;
        };
        let has = |k: &str| entries.iter().any(|(key, _)| key.as_str() == Some(k));
        if has("required_engine_version") {
            self.engine_version(file, item);
        } else if has("required_plugin_versions") {
            self.plugin_versions(file, item);
        } else if has("list") {
            self.list(file, item);
        } else if has("macro") {
            self.macro_item(file, item);
        } else if has("rule") {
            self.rule(file, item);
        } else if has("detector") {
            // Behavioural detector settings (drift, ransomware, self-deletion): read and
            // checked by pyward-detect from the same files; not rules.
        } else {
            let keys: Vec<&str> = entries.iter().filter_map(|(k, _)| k.as_str()).collect();
            self.warn(
                &c,
                *pos,
                "LOAD_UNKNOWN_ITEM",
                format!(
                    "Unknown top level item with keys [{}]: ignored",
                    keys.join(", ")
                ),
            );
        }
    }

    fn unknown_keys(&mut self, c: &Ctx<'_>, item: &Node, allowed: &[&str]) {
        if let Node::Map { entries, .. } = item {
            for (k, _) in entries {
                let ks = k.as_str().unwrap_or("");
                if !allowed.contains(&ks) {
                    self.warn(
                        c,
                        k.pos(),
                        "LOAD_UNKNOWN_KEY",
                        format!("Unknown key '{ks}': ignored"),
                    );
                }
            }
        }
    }

    fn engine_version(&mut self, file: usize, item: &Node) {
        let c = Ctx {
            file,
            kind: "required_engine_version",
            name: None,
        };
        let Some(v) = item.get("required_engine_version") else {
            return;
        };
        let text = v.as_str().unwrap_or("").to_owned();
        let Some(req) = parse_version(&text) else {
            self.err(
                &c,
                v.pos(),
                format!("Unable to parse engine version '{text}' as a semver string"),
            );
            return;
        };
        let ours = parse_version(ENGINE_VERSION).unwrap_or((0, 0, 0));
        if req > ours {
            self.diag(
                Severity::Error,
                &c,
                v.pos(),
                Some("LOAD_ERR_VALIDATE"),
                format!(
                    "Rules require engine version {text}, but engine version is {ENGINE_VERSION}"
                ),
            );
        }
        let newer = match self
            .required_engine_version
            .as_deref()
            .and_then(parse_version)
        {
            Some(prev) => req > prev,
            None => true,
        };
        if newer {
            self.required_engine_version = Some(text);
        }
    }

    fn plugin_versions(&mut self, file: usize, item: &Node) {
        let c = Ctx {
            file,
            kind: "required_plugin_versions",
            name: None,
        };
        let Some(Node::Seq { items, .. }) = item.get("required_plugin_versions") else {
            let p = item
                .get("required_plugin_versions")
                .map(Node::pos)
                .unwrap_or_default();
            self.err(
                &c,
                p,
                "required_plugin_versions must be a list of {name, version}",
            );
            return;
        };
        for p in items {
            let name = p
                .get("name")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_owned();
            if name.is_empty() {
                self.err(&c, p.pos(), "Item has no mapping for key 'name'");
                continue;
            }
            let mut names = vec![name.clone()];
            if let Some(Node::Seq { items: alts, .. }) = p.get("alternatives") {
                names.extend(
                    alts.iter()
                        .filter_map(|a| a.get("name").and_then(Node::as_str))
                        .map(str::to_owned),
                );
            }
            if !names
                .iter()
                .any(|n| BUILTIN_PLUGINS.iter().any(|(b, _)| b == n))
            {
                self.warn(
                    &c,
                    p.pos(),
                    "LOAD_UNKNOWN_PLUGIN",
                    format!("plugin '{name}' is not provided by pyward: rules with its source are kept but not evaluated, and its fields are unknown"),
                );
            }
        }
    }

    // ------------------------------------------------------------- override helpers

    /// Validate `override:` / `append:`; returns (legacy_append, override map).
    fn overrides(
        &mut self,
        c: &Ctx<'_>,
        item: &Node,
        name_key: &str,
        appendable: &[&str],
        replaceable: &[&str],
    ) -> Option<(bool, Vec<(String, bool)>)> {
        let append = match item.get("append") {
            None => false,
            Some(n) => match n.as_bool() {
                Some(b) => b,
                None => {
                    self.err(c, n.pos(), "'append' must be true or false");
                    return None;
                }
            },
        };
        let Some(ov) = item.get("override") else {
            return Some((append, Vec::new()));
        };
        if append {
            self.err(c, ov.pos(), "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry (e.g. 'condition: append') under 'override' instead.");
            return None;
        }
        let Node::Map { entries, .. } = ov else {
            self.err(
                c,
                ov.pos(),
                "'override' must be a mapping of key: append|replace",
            );
            return None;
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            let key = k.as_str().unwrap_or("").to_owned();
            let is_append = match v.as_str() {
                Some("append") => true,
                Some("replace") => false,
                _ => {
                    self.err(
                        c,
                        v.pos(),
                        format!(
                            "Invalid override value for key '{key}': must be 'append' or 'replace'"
                        ),
                    );
                    return None;
                }
            };
            let ok = if is_append {
                appendable.contains(&key.as_str())
            } else {
                replaceable.contains(&key.as_str())
            };
            if !ok {
                let what = if is_append { "appended to" } else { "replaced" };
                self.err(c, k.pos(), format!("Key '{key}' cannot be {what}"));
                return None;
            }
            if item.get(&key).is_none() {
                self.err(c, k.pos(), format!("An 'override' entry for '{key}' is defined but the item has no '{key}' key"));
                return None;
            }
            out.push((key, is_append));
        }
        if let Node::Map { entries, .. } = item {
            for (k, _) in entries {
                let ks = k.as_str().unwrap_or("");
                if ks == name_key || ks == "override" || ks == "source" || ks == "append" {
                    continue;
                }
                if !out.iter().any(|(o, _)| o == ks)
                    && (appendable.contains(&ks) || replaceable.contains(&ks))
                {
                    self.err(c, k.pos(), format!("Unexpected key '{ks}': no corresponding entry under 'override' is defined."));
                    return None;
                }
            }
        }
        Some((false, out))
    }

    // ------------------------------------------------------------- lists

    fn str_items(&mut self, c: &Ctx<'_>, n: Option<&Node>) -> Option<Vec<String>> {
        match n {
            None => Some(Vec::new()),
            Some(n) if n.is_null() => Some(Vec::new()),
            Some(Node::Seq { items, .. }) => {
                let mut out = Vec::with_capacity(items.len());
                for i in items {
                    match i {
                        Node::Scalar { text, .. } => out.push(text.clone()),
                        other => {
                            self.err(
                                c,
                                other.pos(),
                                format!(
                                    "list items must be strings or numbers, not {}",
                                    other.kind()
                                ),
                            );
                            return None;
                        }
                    }
                }
                Some(out)
            }
            Some(other) => {
                self.err(
                    c,
                    other.pos(),
                    format!("'items' must be a sequence, not {}", other.kind()),
                );
                None
            }
        }
    }

    fn list(&mut self, file: usize, item: &Node) {
        let Some(name) = self.item_name(file, item, "list", LIST_KEYS) else {
            return;
        };
        let pos = item.pos();
        let c = Ctx {
            file,
            kind: "list",
            name: Some(&name),
        };
        if !is_identifier(&name) {
            self.warn(&c, pos, "LOAD_INVALID_LIST_NAME", format!("List has an invalid name '{name}'. List names should match a regular expression: ^[a-zA-Z]+[a-zA-Z0-9_]*$"));
        }
        let Some((append, ov)) = self.overrides(&c, item, "list", &["items"], &["items"]) else {
            return;
        };
        if item.get("items").is_none() && !append && ov.is_empty() {
            self.err(&c, pos, "Item has no mapping for key 'items'");
            return;
        }
        let Some(items) = self.str_items(&c, item.get("items")) else {
            return;
        };
        let at = Loc { file, pos };
        let _ = self.next_id();
        if append || !ov.is_empty() {
            let existing = self.list_idx.get(&name).copied();
            let Some(i) = self.modified_item(&c, pos, append, "items", existing) else {
                return;
            };
            let is_append = append || ov.iter().any(|(_, a)| *a);
            if let Some(l) = self.lists.get_mut(i) {
                if is_append {
                    l.items.extend(items);
                } else {
                    l.items = items;
                }
            }
            return;
        }
        let def = ListDef {
            name: name.clone(),
            items,
            at,
        };
        match self.list_idx.get(&name) {
            Some(&i) => {
                if let Some(l) = self.lists.get_mut(i) {
                    let first = l.at;
                    *l = def;
                    l.at = first;
                }
            }
            None => {
                self.list_idx.insert(name, self.lists.len());
                self.lists.push(def);
            }
        }
    }

    // ------------------------------------------------------------- macros

    fn macro_item(&mut self, file: usize, item: &Node) {
        let Some(name) = self.item_name(file, item, "macro", MACRO_KEYS) else {
            return;
        };
        let pos = item.pos();
        let c = Ctx {
            file,
            kind: "macro",
            name: Some(&name),
        };
        if !is_identifier(&name) {
            self.warn(&c, pos, "LOAD_INVALID_MACRO_NAME", format!("Macro has an invalid name '{name}'. Macro names should match a regular expression: ^[a-zA-Z]+[a-zA-Z0-9_]*$"));
        }
        let Some((append, ov)) = self.overrides(&c, item, "macro", &["condition"], &["condition"])
        else {
            return;
        };
        let Some(cond_node) = item.get("condition") else {
            self.err(&c, pos, "Item has no mapping for key 'condition'");
            return;
        };
        let Some(cond) = cond_node.as_str().map(str::to_owned) else {
            self.err(
                &c,
                cond_node.pos(),
                format!("'condition' must be a string, not {}", cond_node.kind()),
            );
            return;
        };
        let cond_at = Loc {
            file,
            pos: scalar_start(cond_node),
        };
        let cond_block = matches!(cond_node, Node::Scalar { block: true, .. });
        let id = self.next_id();
        if append || !ov.is_empty() {
            let existing = self.macro_idx.get(&name).copied();
            let Some(i) = self.modified_item(&c, pos, append, "condition", existing) else {
                return;
            };
            let is_append = append || ov.iter().any(|(_, a)| *a);
            if let Some(m) = self.macros.get_mut(i) {
                if is_append {
                    m.condition.push(' ');
                    m.condition.push_str(&cond);
                } else {
                    m.condition = cond;
                    m.cond_at = cond_at;
                    m.cond_block = cond_block;
                }
                m.visibility = id;
            }
            return;
        }
        let def = MacroDef {
            name: name.clone(),
            condition: cond,
            at: Loc { file, pos },
            cond_at,
            cond_block,
            index: id,
            visibility: id,
        };
        match self.macro_idx.get(&name) {
            Some(&i) => {
                if let Some(m) = self.macros.get_mut(i) {
                    let (first, index) = (m.at, m.index);
                    *m = def;
                    m.at = first;
                    m.index = index;
                }
            }
            None => {
                self.macro_idx.insert(name, self.macros.len());
                self.macros.push(def);
            }
        }
    }

    // ------------------------------------------------------------- rules

    fn exceptions(&mut self, c: &Ctx<'_>, n: &Node) -> Option<Vec<ExceptionDef>> {
        let Node::Seq { items, .. } = n else {
            if n.is_null() {
                return Some(Vec::new());
            }
            self.err(c, n.pos(), "'exceptions' must be a list");
            return None;
        };
        let mut out: Vec<ExceptionDef> = Vec::new();
        for e in items {
            let Some(name) = e.get("name").and_then(Node::as_str).map(str::to_owned) else {
                self.err(c, e.pos(), "Item has no mapping for key 'name'");
                return None;
            };
            if let Node::Map { entries, .. } = e {
                for (k, _) in entries {
                    let ks = k.as_str().unwrap_or("");
                    if !["name", "fields", "comps", "values"].contains(&ks) {
                        self.warn(
                            c,
                            k.pos(),
                            "LOAD_UNKNOWN_KEY",
                            format!("Unknown key '{ks}' in exception '{name}': ignored"),
                        );
                    }
                }
            }
            if out.iter().any(|x| x.name == name) {
                self.warn(
                    c,
                    e.pos(),
                    "LOAD_EXCEPTION_NAME_NOT_UNIQUE",
                    format!("Multiple definitions of exception '{name}' in the same rule"),
                );
            }
            let mut ex = ExceptionDef {
                name: name.clone(),
                fields: None,
                single: None,
                comps: Vec::new(),
                values: Vec::new(),
            };
            match e.get("fields") {
                None => {}
                Some(Node::Seq { items: f, .. }) => {
                    ex.fields = Some(
                        f.iter()
                            .map(|x| x.as_str().unwrap_or("").to_owned())
                            .collect(),
                    );
                }
                Some(Node::Scalar { text, .. }) => ex.single = Some(text.clone()),
                Some(other) => {
                    self.err(c, other.pos(), format!("exception '{name}': 'fields' must be a field name or a list of field names"));
                    return None;
                }
            }
            match e.get("comps") {
                None => {}
                Some(Node::Seq { items: f, .. }) => {
                    ex.comps = f
                        .iter()
                        .map(|x| x.as_str().unwrap_or("").to_owned())
                        .collect()
                }
                Some(Node::Scalar { text, .. }) => ex.comps = vec![text.clone()],
                Some(other) => {
                    self.err(c, other.pos(), format!("exception '{name}': 'comps' must be an operator or a list of operators"));
                    return None;
                }
            }
            for comp in &ex.comps {
                if !EXC_COMPS.contains(&comp.as_str()) {
                    self.err(
                        c,
                        e.pos(),
                        format!("exception '{name}': invalid comparison operator '{comp}'"),
                    );
                    return None;
                }
            }
            if let Some(v) = e.get("values") {
                ex.values = match ex_values(v) {
                    Some(ExValue::List(l)) => l,
                    Some(ExValue::Scalar(_)) | None => {
                        self.err(
                            c,
                            v.pos(),
                            format!("exception '{name}': 'values' must be a list"),
                        );
                        return None;
                    }
                };
            }
            out.push(ex);
        }
        Some(out)
    }

    fn check_exception(&mut self, c: &Ctx<'_>, pos: Pos, ex: &mut ExceptionDef) -> bool {
        if let Some(fields) = &ex.fields {
            if ex.comps.is_empty() {
                ex.comps = vec!["=".to_owned(); fields.len()];
            }
            if ex.comps.len() != fields.len() {
                self.err(
                    c,
                    pos,
                    format!(
                        "exception '{}': fields and comps lists must have equal length",
                        ex.name
                    ),
                );
                return false;
            }
            for v in &ex.values {
                match v {
                    ExValue::List(t) if t.len() == fields.len() => {}
                    _ => {
                        self.err(c, pos, format!("exception '{}': each value must be a list with one item per field ({} fields)", ex.name, fields.len()));
                        return false;
                    }
                }
            }
        } else if ex.single.is_some() {
            if ex.comps.is_empty() {
                ex.comps = vec!["in".to_owned()];
            }
            let comp = ex.comps.first().map(String::as_str).unwrap_or("in");
            if ["=", "==", "!=", "<", "<=", ">", ">="].contains(&comp)
                && comp != "="
                && comp != "=="
                && comp != "!="
            {
                self.err(c, pos, format!("exception '{}': with a single field, comps must be in, pmatch, intersects or a string operator", ex.name));
                return false;
            }
        } else if !ex.values.is_empty() {
            self.err(
                c,
                pos,
                format!("exception '{}': has values but no fields", ex.name),
            );
            return false;
        }
        true
    }

    fn rule(&mut self, file: usize, item: &Node) {
        let Some(name) = self.item_name(file, item, "rule", RULE_KEYS) else {
            return;
        };
        let pos = item.pos();
        let c = Ctx {
            file,
            kind: "rule",
            name: Some(&name),
        };
        let Some((append, ov)) =
            self.overrides(&c, item, "rule", RULE_APPENDABLE, RULE_REPLACEABLE)
        else {
            return;
        };
        let s = |k: &str| item.get(k).and_then(Node::as_str).map(str::to_owned);
        let b = |k: &str| item.get(k).and_then(Node::as_bool);
        // typed key checks
        for k in [
            "enabled",
            "warn_evttypes",
            "skip-if-unknown-filter",
            "capture",
            "append",
        ] {
            if let Some(n) = item.get(k) {
                if n.as_bool().is_none() {
                    self.err(&c, n.pos(), format!("'{k}' must be true or false"));
                    return;
                }
            }
        }
        for k in ["condition", "output", "desc", "priority", "source"] {
            if let Some(n) = item.get(k) {
                if n.as_str().is_none() {
                    self.err(
                        &c,
                        n.pos(),
                        format!("'{k}' must be a string, not {}", n.kind()),
                    );
                    return;
                }
            }
        }
        let priority = match s("priority") {
            None => None,
            Some(p) => match Priority::parse(&p) {
                Some(p) => Some(p),
                None => {
                    let pp = item.get("priority").map(Node::pos).unwrap_or(pos);
                    self.err(&c, pp, format!("Invalid priority '{p}': use one of EMERGENCY, ALERT, CRITICAL, ERROR, WARNING, NOTICE, INFORMATIONAL (INFO), DEBUG"));
                    return;
                }
            },
        };
        let tags = match item.get("tags") {
            None => None,
            Some(n) => match self.str_items(&c, Some(n)) {
                Some(t) => Some(t),
                None => return,
            },
        };
        let mut exceptions = match item.get("exceptions") {
            None => None,
            Some(n) => match self.exceptions(&c, n) {
                Some(e) => Some(e),
                None => return,
            },
        };
        let cond_node = item.get("condition");
        let cond_at = Loc {
            file,
            pos: cond_node.map(scalar_start).unwrap_or(pos),
        };
        let cond_block = matches!(cond_node, Some(Node::Scalar { block: true, .. }));
        let id = self.next_id();

        // enable/disable only
        let only_enabled = !append
            && ov.is_empty()
            && item.get("enabled").is_some()
            && item.get("condition").is_none()
            && item.get("output").is_none()
            && item.get("desc").is_none()
            && item.get("priority").is_none();
        if only_enabled {
            let Some(&i) = self.rule_idx.get(&name) else {
                self.err(
                    &c,
                    pos,
                    "Rule has 'enabled' key but no rule by that name already exists",
                );
                return;
            };
            self.warn(&c, pos, "LOAD_DEPRECATED_ITEM", "The 'enabled' key alone is deprecated. Use 'override: {enabled: replace}' instead.");
            if let Some(r) = self.rules.get_mut(i) {
                r.enabled = b("enabled").unwrap_or(true);
            }
            return;
        }

        if append || !ov.is_empty() {
            let existing = self.rule_idx.get(&name).copied();
            let Some(i) = self.modified_item(&c, pos, append, "condition", existing) else {
                return;
            };
            let mut keys: Vec<(String, bool)> = ov;
            if append {
                if item.get("condition").is_none() && item.get("exceptions").is_none() {
                    self.err(
                        &c,
                        pos,
                        "Appended rule must have exceptions or condition property",
                    );
                    return;
                }
                for k in ["condition", "exceptions"] {
                    if item.get(k).is_some() {
                        keys.push((k.to_owned(), true));
                    }
                }
            }
            if let Some(src) = s("source") {
                let cur = self
                    .rules
                    .get(i)
                    .map(|r| r.source.clone())
                    .unwrap_or_default();
                if src != cur {
                    self.err(&c, pos, format!("Rule '{name}' has source '{src}' but the rule it modifies has source '{cur}'"));
                    return;
                }
            }
            // exception appends need validation against the existing ones
            let mut new_excs = exceptions.take().unwrap_or_default();
            let existing: Vec<ExceptionDef> = self
                .rules
                .get(i)
                .map(|r| r.exceptions.clone())
                .unwrap_or_default();
            let exc_append = keys.iter().any(|(k, a)| k == "exceptions" && *a);
            let mut merged = existing.clone();
            if exc_append {
                for mut ex in new_excs.drain(..) {
                    if let Some(cur) = merged.iter_mut().find(|x| x.name == ex.name) {
                        if ex.fields.is_some() || ex.single.is_some() || !ex.comps.is_empty() {
                            self.err(&c, pos, format!("Can not append exception fields or comps to existing exception '{}', only values", ex.name));
                            return;
                        }
                        if ex.values.is_empty() {
                            self.warn(
                                &c,
                                pos,
                                "LOAD_APPEND_NO_VALUES",
                                format!(
                                    "Overriding/appending exception '{}' with no values",
                                    ex.name
                                ),
                            );
                        }
                        let mut tmp = cur.clone();
                        tmp.values = ex.values.clone();
                        if !self.check_exception(&c, pos, &mut tmp) {
                            return;
                        }
                        cur.values.extend(ex.values);
                    } else {
                        if !self.check_exception(&c, pos, &mut ex) {
                            return;
                        }
                        merged.push(ex);
                    }
                }
            } else {
                for ex in &mut new_excs {
                    if !self.check_exception(&c, pos, ex) {
                        return;
                    }
                }
            }
            let Some(r) = self.rules.get_mut(i) else {
                return;
            };
            for (k, is_append) in keys {
                match (k.as_str(), is_append) {
                    ("condition", true) => {
                        r.condition.push(' ');
                        r.condition.push_str(&s("condition").unwrap_or_default());
                    }
                    ("condition", false) => {
                        r.condition = s("condition").unwrap_or_default();
                        r.cond_at = cond_at;
                        r.cond_block = cond_block;
                    }
                    ("output", true) => {
                        r.output.push(' ');
                        r.output.push_str(s("output").unwrap_or_default().trim());
                    }
                    ("output", false) => {
                        r.output = s("output").unwrap_or_default().trim().to_owned()
                    }
                    ("desc", true) => {
                        r.desc.push(' ');
                        r.desc.push_str(&s("desc").unwrap_or_default());
                    }
                    ("desc", false) => r.desc = s("desc").unwrap_or_default(),
                    ("tags", true) => {
                        for t in tags.clone().unwrap_or_default() {
                            if !r.tags.contains(&t) {
                                r.tags.push(t);
                            }
                        }
                    }
                    ("tags", false) => r.tags = tags.clone().unwrap_or_default(),
                    ("exceptions", true) => r.exceptions = merged.clone(),
                    ("exceptions", false) => r.exceptions = new_excs.clone(),
                    ("priority", _) => r.priority = priority.unwrap_or(r.priority),
                    ("enabled", _) => r.enabled = b("enabled").unwrap_or(r.enabled),
                    ("warn_evttypes", _) => r.warn_evttypes = b("warn_evttypes").unwrap_or(true),
                    ("skip-if-unknown-filter", _) => {
                        r.skip_if_unknown_filter = b("skip-if-unknown-filter").unwrap_or(false)
                    }
                    ("capture", _) => r.capture = b("capture").unwrap_or(false),
                    _ => {}
                }
            }
            r.visibility = id;
            return;
        }

        // a new definition (or a redefinition)
        for k in ["condition", "output", "desc", "priority"] {
            if item.get(k).is_none() {
                self.err(&c, pos, format!("Item has no mapping for key '{k}'"));
                return;
            }
        }
        let mut excs = exceptions.unwrap_or_default();
        for ex in &mut excs {
            if !self.check_exception(&c, pos, ex) {
                return;
            }
        }
        let source = s("source").unwrap_or_else(|| "syscall".to_owned());
        let def = RuleDef {
            name: name.clone(),
            condition: s("condition").unwrap_or_default(),
            output: s("output").unwrap_or_default().trim().to_owned(),
            desc: s("desc").unwrap_or_default(),
            priority: priority.unwrap_or(Priority::Debug),
            tags: tags.unwrap_or_default(),
            enabled: b("enabled").unwrap_or(true),
            source,
            exceptions: excs,
            warn_evttypes: b("warn_evttypes").unwrap_or(true),
            skip_if_unknown_filter: b("skip-if-unknown-filter").unwrap_or(false),
            capture: b("capture").unwrap_or(false),
            at: Loc { file, pos },
            cond_at,
            cond_block,
            visibility: id,
        };
        match self.rule_idx.get(&name) {
            Some(&i) => {
                if let Some(r) = self.rules.get_mut(i) {
                    *r = def;
                }
            }
            None => {
                self.rule_idx.insert(name, self.rules.len());
                self.rules.push(def);
            }
        }
    }

    // ------------------------------------------------------------- build

    /// Resolve lists and macros, compile every rule, and return the ruleset.
    /// Runs on a thread with a large stack so that deeply nested (but within-limit)
    /// conditions never overflow the caller's stack.
    pub fn build(self) -> Ruleset {
        let handle = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || self.build_inner());
        match handle {
            Ok(h) => match h.join() {
                Ok(r) => r,
                Err(_) => Ruleset {
                    rules: Vec::new(),
                    macros: Vec::new(),
                    lists: Vec::new(),
                    diags: vec![Diagnostic {
                        severity: Severity::Error,
                        file: String::new(),
                        line: 0,
                        column: 0,
                        item: None,
                        item_kind: None,
                        code: Some("LOAD_ERR_COMPILE_CONDITION".into()),
                        message: "internal error while compiling the rules".into(),
                    }],
                    compiled: Vec::new(),
                    required_engine_version: None,
                },
            },
            Err(_) => Ruleset {
                rules: Vec::new(),
                macros: Vec::new(),
                lists: Vec::new(),
                diags: vec![Diagnostic {
                    severity: Severity::Error,
                    file: String::new(),
                    line: 0,
                    column: 0,
                    item: None,
                    item_kind: None,
                    code: None,
                    message: "could not start the rules compiler thread".into(),
                }],
                compiled: Vec::new(),
                required_engine_version: None,
            },
        }
    }

    fn pos_in_condition(&self, at: Loc, block: bool, text: &str, off: usize) -> Pos {
        let off = off.min(text.len());
        let before = text.get(..off).unwrap_or("");
        let nl = before.matches('\n').count();
        let start_line = at.pos.line + usize::from(block);
        if nl == 0 && !block {
            Pos {
                line: start_line,
                col: at.pos.col + off,
            }
        } else {
            let last = before.rfind('\n').map(|p| p + 1).unwrap_or(0);
            Pos {
                line: start_line + nl,
                col: off - last + 1,
            }
        }
    }

    fn build_inner(mut self) -> Ruleset {
        // 1. lists: expand references to earlier lists
        let mut list_items: Vec<Vec<String>> = Vec::with_capacity(self.lists.len());
        let mut list_used = vec![false; self.lists.len()];
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, l) in self.lists.iter().enumerate() {
            let mut items = Vec::with_capacity(l.items.len());
            for it in &l.items {
                match seen.get(it.as_str()) {
                    Some(&j) => {
                        if let Some(u) = list_used.get_mut(j) {
                            *u = true;
                        }
                        if let Some(x) = list_items.get(j) {
                            items.extend(x.iter().cloned());
                        }
                    }
                    None => items.push(it.clone()),
                }
            }
            list_items.push(items);
            seen.insert(l.name.as_str(), i);
        }
        let list_text: HashMap<&str, (usize, String)> = self
            .lists
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let t = list_items
                    .get(i)
                    .map(|v| {
                        v.iter()
                            .map(|x| list_item_text(x))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                (l.name.as_str(), (i, t))
            })
            .collect();

        // 2. macros: expand lists, parse
        let max_cond = self.opts.max_condition_bytes;
        let mut macro_ast: Vec<Option<Expr>> = Vec::with_capacity(self.macros.len());
        let mut new_diags = Vec::new();
        for m in &self.macros {
            let c = Ctx {
                file: m.cond_at.file,
                kind: "macro",
                name: Some(&m.name),
            };
            let (text, first_exp) = expand_lists(&m.condition, &list_text, &mut list_used);
            match self.parse_text(
                &c,
                &text,
                first_exp,
                0,
                m.cond_at,
                m.cond_block,
                &m.condition,
                max_cond,
            ) {
                Ok(e) => macro_ast.push(Some(e)),
                Err(d) => {
                    new_diags.push(d);
                    macro_ast.push(None);
                }
            }
        }
        // check macro references inside macros (visibility)
        for (i, m) in self.macros.iter().enumerate() {
            let Some(Some(ast)) = macro_ast.get(i) else {
                continue;
            };
            let mut refs = Vec::new();
            collect_macro_refs(ast, &mut refs);
            for (r, off) in refs {
                let ok = self
                    .macro_idx
                    .get(&r)
                    .and_then(|&j| self.macros.get(j))
                    .is_some_and(|d| d.index < m.visibility);
                if !ok {
                    let c = Ctx {
                        file: m.cond_at.file,
                        kind: "macro",
                        name: Some(&m.name),
                    };
                    let p = self.pos_in_condition(m.cond_at, m.cond_block, &m.condition, off);
                    new_diags.push(self.mk_diag(
                        Severity::Error,
                        &c,
                        p,
                        "LOAD_ERR_COMPILE_CONDITION",
                        format!("Undefined macro '{r}' used in filter."),
                    ));
                }
            }
        }

        // 3. rules
        let mut macro_used = vec![false; self.macros.len()];
        let mut infos = Vec::with_capacity(self.rules.len());
        let mut compiled = Vec::with_capacity(self.rules.len());
        for r in &self.rules {
            let c = Ctx {
                file: r.at.file,
                kind: "rule",
                name: Some(&r.name),
            };
            let mut info = RuleInfo {
                name: r.name.clone(),
                desc: r.desc.clone(),
                condition: r.condition.clone(),
                output: r.output.clone(),
                priority: r.priority,
                tags: r.tags.clone(),
                enabled: r.enabled,
                source: r.source.clone(),
                exceptions: r.exceptions.iter().map(|e| e.name.clone()).collect(),
                warn_evttypes: r.warn_evttypes,
                skip_if_unknown_filter: r.skip_if_unknown_filter,
                capture: r.capture,
                file: self.files.get(r.at.file).cloned().unwrap_or_default(),
                line: r.at.pos.line,
                column: r.at.pos.col,
                event_types: Vec::new(),
                all_event_types: false,
                fields: Vec::new(),
                compiled: false,
                skipped: None,
            };
            if r.source != "syscall" {
                new_diags.push(self.mk_diag(
                    Severity::Warning,
                    &c,
                    r.at.pos,
                    "LOAD_UNKNOWN_SOURCE",
                    format!(
                        "Unknown source {}, skipping: pyward evaluates only 'syscall' rules",
                        r.source
                    ),
                ));
                info.skipped = Some(format!("source '{}' is not evaluated", r.source));
                infos.push(info);
                compiled.push(None);
                continue;
            }
            let exc_text = exceptions_text(&r.exceptions);
            let (cond_text, first_exp) = expand_lists(&r.condition, &list_text, &mut list_used);
            let (full, prefix) = if exc_text.is_empty() {
                (cond_text, 0)
            } else {
                (format!("({cond_text}){exc_text}"), 1)
            };
            let ast = match self.parse_text(
                &c,
                &full,
                first_exp,
                prefix,
                r.cond_at,
                r.cond_block,
                &r.condition,
                max_cond,
            ) {
                Ok(a) => a,
                Err(d) => {
                    new_diags.push(d);
                    info.skipped = Some("condition does not parse".into());
                    infos.push(info);
                    compiled.push(None);
                    continue;
                }
            };
            let mut used_here: Vec<String> = Vec::new();
            let lookup = |n: &str| -> Option<&Expr> {
                let &j = self.macro_idx.get(n)?;
                let d = self.macros.get(j)?;
                // Falco resolves rule conditions with MAX_VISIBILITY: every macro
                // (in its latest definition) is visible to rules.
                let _ = (d, r.visibility);
                macro_ast.get(j)?.as_ref()
            };
            let expanded =
                compile::expand_macros(&ast, &lookup, &mut |n| used_here.push(n.to_owned()));
            for n in &used_here {
                if let Some(&j) = self.macro_idx.get(n) {
                    if let Some(u) = macro_used.get_mut(j) {
                        *u = true;
                    }
                }
            }
            let expanded = match expanded {
                Ok(e) => e,
                Err(e) => {
                    let p = self.err_pos(r, first_exp, prefix, e.pos);
                    new_diags.push(self.mk_diag(
                        Severity::Error,
                        &c,
                        p,
                        "LOAD_ERR_COMPILE_CONDITION",
                        e.message,
                    ));
                    info.skipped = Some("condition does not compile".into());
                    infos.push(info);
                    compiled.push(None);
                    continue;
                }
            };
            let mut fields_used = Vec::new();
            let mut na = false;
            let node = {
                let mut cctx = CompileCtx {
                    fields_used: &mut fields_used,
                    na_check: &mut na,
                };
                compile::compile(&expanded, &mut cctx)
            };
            let node = match node {
                Ok(n) => n,
                Err(e) => {
                    // positions of errors inside macros are not in this rule's text
                    let p = if used_here.is_empty() {
                        self.err_pos(r, first_exp, prefix, e.pos)
                    } else {
                        r.cond_at.pos
                    };
                    if e.unknown_field && r.skip_if_unknown_filter {
                        new_diags.push(self.mk_diag(
                            Severity::Warning,
                            &c,
                            p,
                            "LOAD_UNKNOWN_FILTER",
                            format!("{}: rule skipped (skip-if-unknown-filter)", e.message),
                        ));
                        info.skipped = Some("unknown field (skip-if-unknown-filter)".into());
                    } else {
                        new_diags.push(self.mk_diag(
                            Severity::Error,
                            &c,
                            p,
                            "LOAD_ERR_COMPILE_CONDITION",
                            e.message,
                        ));
                        info.skipped = Some("condition does not compile".into());
                    }
                    infos.push(info);
                    compiled.push(None);
                    continue;
                }
            };
            if na {
                new_diags.push(self.mk_diag(
                    Severity::Warning,
                    &c,
                    r.cond_at.pos,
                    "LOAD_UNSAFE_NA_CHECK",
                    "condition compares a field with '<NA>': this matches the text <NA>, not a missing value; use 'exists' instead",
                ));
            }
            let output = match Template::parse(&r.output) {
                Ok(t) => t,
                Err(m) => {
                    new_diags.push(self.mk_diag(
                        Severity::Error,
                        &c,
                        r.at.pos,
                        "LOAD_ERR_COMPILE_OUTPUT",
                        m,
                    ));
                    info.skipped = Some("output does not compile".into());
                    infos.push(info);
                    compiled.push(None);
                    continue;
                }
            };
            for f in output.fields() {
                if !fields_used.contains(&f.text) {
                    fields_used.push(f.text.clone());
                }
            }
            let types = compile::event_types(&expanded, false);
            info.all_event_types = types.is_all();
            if info.all_event_types && r.warn_evttypes {
                new_diags.push(self.mk_diag(
                    Severity::Warning,
                    &c,
                    r.cond_at.pos,
                    "LOAD_NO_EVTTYPE",
                    "Rule matches too many evt.type values. This has a significant performance penalty.",
                ));
            }
            info.event_types = types
                .iter()
                .filter(|t| *t != crate::event::EventType::UNKNOWN)
                .map(|t| t.name().to_owned())
                .collect();
            info.event_types.sort();
            fields_used.sort();
            info.fields = fields_used;
            info.compiled = true;
            infos.push(info);
            compiled.push(Some(CompiledRule {
                node,
                types,
                output,
            }));
        }

        // 4. unused warnings
        if self.opts.warn_unused {
            for (i, m) in self.macros.iter().enumerate() {
                if !macro_used.get(i).copied().unwrap_or(true) {
                    let c = Ctx {
                        file: m.at.file,
                        kind: "macro",
                        name: Some(&m.name),
                    };
                    new_diags.push(self.mk_diag(
                        Severity::Warning,
                        &c,
                        m.at.pos,
                        "LOAD_UNUSED_MACRO",
                        "Macro not referred to by any other rule/macro",
                    ));
                }
            }
            for (i, l) in self.lists.iter().enumerate() {
                if !list_used.get(i).copied().unwrap_or(true) {
                    let c = Ctx {
                        file: l.at.file,
                        kind: "list",
                        name: Some(&l.name),
                    };
                    new_diags.push(self.mk_diag(
                        Severity::Warning,
                        &c,
                        l.at.pos,
                        "LOAD_UNUSED_LIST",
                        "List not referred to by any other rule/macro",
                    ));
                }
            }
        }
        self.diags.extend(new_diags);
        let files = &self.files;
        let fname = |i: usize| files.get(i).cloned().unwrap_or_default();
        Ruleset {
            macros: self
                .macros
                .iter()
                .enumerate()
                .map(|(i, m)| MacroInfo {
                    name: m.name.clone(),
                    condition: m.condition.clone(),
                    file: fname(m.at.file),
                    line: m.at.pos.line,
                    column: m.at.pos.col,
                    used: macro_used.get(i).copied().unwrap_or(false),
                })
                .collect(),
            lists: self
                .lists
                .iter()
                .enumerate()
                .map(|(i, l)| ListInfo {
                    name: l.name.clone(),
                    items: list_items.get(i).cloned().unwrap_or_default(),
                    file: fname(l.at.file),
                    line: l.at.pos.line,
                    column: l.at.pos.col,
                    used: list_used.get(i).copied().unwrap_or(false),
                })
                .collect(),
            rules: infos,
            diags: std::mem::take(&mut self.diags),
            compiled,
            required_engine_version: self.required_engine_version.take(),
        }
    }

    fn err_pos(&self, r: &RuleDef, first_exp: usize, prefix: usize, off: usize) -> Pos {
        let off = off.saturating_sub(prefix);
        if off < first_exp && off <= r.condition.len() {
            self.pos_in_condition(r.cond_at, r.cond_block, &r.condition, off)
        } else {
            r.cond_at.pos
        }
    }

    fn mk_diag(
        &self,
        sev: Severity,
        c: &Ctx<'_>,
        pos: Pos,
        code: &str,
        msg: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            severity: sev,
            file: self.files.get(c.file).cloned().unwrap_or_default(),
            line: pos.line,
            column: pos.col,
            item: c.name.map(str::to_owned),
            item_kind: Some(c.kind.to_owned()),
            code: Some(code.to_owned()),
            message: msg.into(),
        }
    }

    #[allow(clippy::too_many_arguments, clippy::result_large_err)]
    fn parse_text(
        &self,
        c: &Ctx<'_>,
        text: &str,
        first_exp: usize,
        prefix: usize,
        at: Loc,
        block: bool,
        original: &str,
        max: usize,
    ) -> Result<Expr, Diagnostic> {
        if text.len() > max {
            return Err(self.mk_diag(
                Severity::Error,
                c,
                at.pos,
                "LOAD_ERR_COMPILE_CONDITION",
                format!(
                    "condition is {} bytes (after list expansion), more than the {max}-byte limit",
                    text.len()
                ),
            ));
        }
        parser::parse_condition(text).map_err(|e| {
            let off = e.pos.saturating_sub(prefix);
            let p = if off < first_exp && off <= original.len() {
                self.pos_in_condition(at, block, original, off)
            } else {
                at.pos
            };
            self.mk_diag(
                Severity::Error,
                c,
                p,
                "LOAD_ERR_COMPILE_CONDITION",
                e.message,
            )
        })
    }
}

/// Position of a scalar's first character (after the opening quote of a quoted scalar).
fn scalar_start(n: &Node) -> Pos {
    match n {
        Node::Scalar {
            plain: false,
            block: false,
            pos,
            ..
        } => Pos {
            line: pos.line,
            col: pos.col + 1,
        },
        other => other.pos(),
    }
}

fn ex_values(n: &Node) -> Option<ExValue> {
    // iterative depth guard: YAML nesting is already bounded by the YAML reader
    match n {
        Node::Scalar { text, .. } => Some(ExValue::Scalar(text.clone())),
        Node::Seq { items, .. } => Some(ExValue::List(
            items.iter().map(ex_values).collect::<Option<Vec<_>>>()?,
        )),
        Node::Map { .. } => None,
    }
}

fn render_ex_value(v: &ExValue, comp: &str) -> String {
    let list_op = matches!(comp, "in" | "intersects" | "pmatch");
    match v {
        ExValue::List(items) => {
            let parts: Vec<String> = items.iter().map(|x| render_ex_value(x, "=")).collect();
            format!("({})", parts.join(", "))
        }
        ExValue::Scalar(s) if list_op => format!("({})", quote_value(s)),
        ExValue::Scalar(s) => quote_value(s),
    }
}

/// Falco's `build_rule_exception_infos`: ` and not ((f1 c1 v1 and f2 c2 v2) or (...))`
/// per tuple exception, ` and not f comp (v, ...)` per single-field exception.
fn exceptions_text(excs: &[ExceptionDef]) -> String {
    let mut out = String::new();
    for ex in excs {
        if ex.values.is_empty() {
            continue;
        }
        if let Some(fields) = &ex.fields {
            let mut tuples = Vec::new();
            for v in &ex.values {
                let ExValue::List(t) = v else { continue };
                let parts: Vec<String> = fields
                    .iter()
                    .zip(ex.comps.iter())
                    .zip(t.iter())
                    .map(|((f, c), v)| format!("{f} {c} {}", render_ex_value(v, c)))
                    .collect();
                tuples.push(format!("({})", parts.join(" and ")));
            }
            out.push_str(&format!(" and not ({})", tuples.join(" or ")));
        } else if let Some(f) = &ex.single {
            let comp = ex.comps.first().map(String::as_str).unwrap_or("in");
            let items: Vec<String> = ex
                .values
                .iter()
                .map(|v| match v {
                    ExValue::Scalar(s) => quote_value(s),
                    l => render_ex_value(l, "="),
                })
                .collect();
            let op = if matches!(comp, "in" | "intersects" | "pmatch") {
                comp.to_owned()
            } else {
                format!("{comp} anyof")
            };
            out.push_str(&format!(" and not {f} {op} ({})", items.join(", ")));
        }
    }
    out
}

/// Falco's textual list substitution: a list name standing between blanks or
/// `(),=` delimiters (outside quotes) is replaced by its items. Returns the new text
/// and the offset of the first substitution (for error positions).
fn expand_lists(
    cond: &str,
    lists: &HashMap<&str, (usize, String)>,
    used: &mut [bool],
) -> (String, usize) {
    let b = cond.as_bytes();
    let mut out = String::with_capacity(cond.len());
    let mut first = usize::MAX;
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            // skip a quoted string
            let q = c;
            i += 1;
            while i < b.len() && b[i] != q {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        if is_delim(c) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_delim(b[i]) && b[i] != b'"' && b[i] != b'\'' {
            i += 1;
        }
        let word = &cond[start..i];
        let prev_ok = start == 0 || is_delim(b[start - 1]);
        let next_ok = i == b.len() || is_delim(b[i]);
        if prev_ok && next_ok {
            if let Some((idx, text)) = lists.get(word) {
                if let Some(u) = used.get_mut(*idx) {
                    *u = true;
                }
                if first == usize::MAX {
                    first = start;
                }
                out.push_str(&cond[last..start]);
                out.push_str(text);
                last = i;
            }
        }
    }
    out.push_str(&cond[last.min(cond.len())..]);
    (out, first)
}

fn collect_macro_refs(e: &Expr, out: &mut Vec<(String, usize)>) {
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match e {
            Expr::And(v) | Expr::Or(v) => stack.extend(v.iter()),
            Expr::Not(x) => stack.push(x),
            Expr::Macro { name, pos } => out.push((name.clone(), *pos)),
            Expr::Check { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_expansion_delimiters() {
        let mut m = HashMap::new();
        m.insert("shells", (0usize, "bash, sh".to_owned()));
        let mut used = vec![false];
        let (t, first) = expand_lists(
            "proc.name in (shells) and x=shells and 'shells' and shellsx",
            &m,
            &mut used,
        );
        assert_eq!(
            t,
            "proc.name in (bash, sh) and x=bash, sh and 'shells' and shellsx"
        );
        assert_eq!(first, 14);
        assert!(used[0]);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_value("abc"), "abc");
        assert_eq!(quote_value("a b"), "\"a b\"");
        assert_eq!(quote_value("a\"b"), "\"a\\\"b\"");
        assert_eq!(list_item_text("'ps aux'"), "'ps aux'");
    }
}
