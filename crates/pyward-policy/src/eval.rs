//! Evaluating bundles against what a scan found: every rule's trigger fires zero or more
//! times, each firing becomes a [`Finding`] with its Anchore trigger id, allowlists suppress
//! some, and the final action is the lowest of the rest.

use crate::baseline::Baseline;
use crate::load::{Bundle, ImageSelector, Mapping};
use crate::pyre::PyRegex;
use crate::rules::{Check, Cmp, Confidence, DriftKind, Rule, VerifyState};
use crate::secrets::MAX_SCAN_FILE;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use pyward_core::mitre::techniques::PRIVATE_KEYS;
use pyward_core::{Action, Finding, LayerRef, Package, PolicyMatch, Severity, Warning};
use pyward_inventory::tree::{join_path, parent_path};
use pyward_inventory::{EntryKind, FileEntry, FileTree};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;

/// A Dockerfile as the `dockerfile` gate sees it.
#[derive(Debug, Clone)]
pub struct DockerfileInput {
    /// Where it came from (a path, or `<image history>`).
    pub path: String,
    /// Given by the user or found in the scanned folder (Anchore's "Actual"), not guessed.
    pub actual: bool,
    pub text: String,
}

impl DockerfileInput {
    /// The Dockerfiles an inventory holds: found in a scanned folder ("actual"), or rebuilt from
    /// an image's history ("guessed", in Anchore's exact line form so trigger ids match).
    pub fn from_inventory(inv: &pyward_inventory::Inventory) -> Vec<DockerfileInput> {
        use pyward_inventory::DockerfileMode;
        inv.dockerfiles
            .iter()
            .map(|d| DockerfileInput {
                path: d.path.clone(),
                actual: d.mode == DockerfileMode::Actual,
                text: match (&d.mode, &inv.image) {
                    (DockerfileMode::Guessed, Some(meta)) => meta.summary.dockerfile.join("\n"),
                    _ => d
                        .dockerfile
                        .instructions
                        .iter()
                        .map(|i| i.text())
                        .collect::<Vec<_>>()
                        .join("\n"),
                },
            })
            .collect()
    }
}

/// What one scan found, as the policy reads it.
pub struct Input<'a> {
    /// Image references of the target (`registry/repo:tag`), for mappings and image lists.
    pub image_refs: Vec<String>,
    /// `sha256:...` manifest digest and config digest (image id), when the target is an image.
    pub image_digest: Option<String>,
    pub image_id: Option<String>,
    pub packages: &'a [Package],
    pub tree: &'a dyn FileTree,
    /// Files deleted by a later layer (`--layers all`), with the layer that added them.
    pub removed_files: &'a [FileEntry],
    /// Packages whose files a later layer deleted (`--layers all`).
    pub removed_packages: &'a [Package],
    pub dockerfiles: Vec<DockerfileInput>,
    pub image: Option<&'a pyward_inventory::image::ImageMeta>,
    /// Findings of pyward's analyzers (intel, names, heuristics), decided by the pyward gates.
    pub findings: &'a [Finding],
    pub baseline: Option<&'a Baseline>,
}

/// The result of evaluating every bundle.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub findings: Vec<Finding>,
    pub final_action: Action,
    pub bundles: Vec<BundleOutcome>,
    pub warnings: Vec<Warning>,
}

/// How one bundle decided.
#[derive(Debug, Clone)]
pub struct BundleOutcome {
    pub bundle_id: String,
    pub source: String,
    pub mapping: Option<String>,
    /// The lowest action of the bundle's non-allowlisted matches.
    pub policy_final_action: Action,
    /// After the allow/deny-listed images.
    pub final_action: Action,
    pub matched_allowlisted_image: Option<String>,
    pub matched_denylisted_image: Option<String>,
}

/// Anchore's trigger instance id: `md5(gate + trigger + message)`, hex.
pub fn trigger_id(gate: &str, trigger: &str, message: &str) -> String {
    let mut h = Md5::new();
    h.update(gate.as_bytes());
    h.update(trigger.as_bytes());
    h.update(message.as_bytes());
    hex::encode(h.finalize())
}

/// One firing of a trigger, before it becomes a finding.
struct Fired {
    /// Anchore's message (the trigger id is computed from it).
    msg: String,
    /// Extra words for people, appended to the finding's message only.
    note: Option<String>,
    package: Option<Package>,
    path: Option<String>,
    layer: Option<LayerRef>,
    evidence: Vec<(String, String)>,
    /// The analyzer finding a pyward gate decided on.
    base: Option<Finding>,
}

impl Fired {
    fn msg(msg: String) -> Fired {
        Fired {
            msg,
            note: None,
            package: None,
            path: None,
            layer: None,
            evidence: Vec::new(),
            base: None,
        }
    }
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: String,
}

/// `python:3.12` → `docker.io`, `library/python`, `3.12`; `dockerhub/` becomes `docker.io/`.
pub fn parse_image_ref(reference: &str) -> ImageRef {
    let r = reference.trim();
    let r = r
        .strip_prefix("dockerhub/")
        .map(|s| format!("docker.io/{s}"))
        .unwrap_or_else(|| r.to_string());
    let r = r.split('@').next().unwrap_or(&r).to_string();
    let (first, rest) = match r.split_once('/') {
        Some((f, rest)) if f.contains('.') || f.contains(':') || f == "localhost" => {
            (f.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), r.clone()),
    };
    let (repo, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (rest[..i].to_string(), rest[i + 1..].to_string()),
        _ => (rest.clone(), "latest".to_string()),
    };
    let repo = if first == "docker.io" && !repo.contains('/') {
        format!("library/{repo}")
    } else {
        repo
    };
    ImageRef {
        registry: first,
        repository: repo,
        tag,
    }
}

fn selector_matches(s: &ImageSelector, input: &Input) -> bool {
    let refs: Vec<ImageRef> = if input.image_refs.is_empty() {
        vec![ImageRef {
            registry: String::new(),
            repository: String::new(),
            tag: String::new(),
        }]
    } else {
        input
            .image_refs
            .iter()
            .map(|r| parse_image_ref(r))
            .collect()
    };
    refs.iter().any(|r| {
        s.registry.matches(&r.registry)
            && s.repository.matches(&r.repository)
            && match s.image_type.as_str() {
                "digest" => input
                    .image_digest
                    .as_deref()
                    .is_some_and(|d| s.value.matches(d)),
                "id" => input
                    .image_id
                    .as_deref()
                    .is_some_and(|d| s.value.matches(d.trim_start_matches("sha256:"))),
                _ => s.value.matches(&r.tag),
            }
    })
}

/// Evaluate `bundles` (each separately; the final action is the lowest of theirs). Analyzer
/// findings that no `malicious`/`typosquat`/`heuristics` rule decided are kept in the report
/// with action GO, so nothing found is hidden.
pub fn evaluate(bundles: &[Bundle], input: &Input, now: OffsetDateTime) -> Evaluation {
    let ctx = Context::new(input);
    let mut findings = Vec::new();
    let mut outcomes = Vec::new();
    let mut warnings = Vec::new();
    let mut decided = vec![false; input.findings.len()];
    for bundle in bundles {
        let (mut f, outcome) =
            evaluate_bundle(bundle, input, &ctx, now, &mut decided, &mut warnings);
        findings.append(&mut f);
        outcomes.push(outcome);
    }
    for (f, done) in input.findings.iter().zip(&decided) {
        if !done {
            let mut f = f.clone();
            f.action = Action::Go;
            f.evidence.push(pyward_core::Evidence::new(
                "policy",
                "no rule of the policy decides on this finding (its gate is not in the policy): reported, not gating",
            ));
            findings.push(f);
        }
    }
    let final_action = Action::combine(outcomes.iter().map(|o| o.final_action));
    Evaluation {
        findings,
        final_action,
        bundles: outcomes,
        warnings,
    }
}

fn evaluate_bundle(
    bundle: &Bundle,
    input: &Input,
    ctx: &Context,
    now: OffsetDateTime,
    decided: &mut [bool],
    warnings: &mut Vec<Warning>,
) -> (Vec<Finding>, BundleOutcome) {
    let mut outcome = BundleOutcome {
        bundle_id: bundle.id.clone(),
        source: bundle.source.clone(),
        mapping: None,
        policy_final_action: Action::Go,
        final_action: Action::Go,
        matched_allowlisted_image: None,
        matched_denylisted_image: None,
    };
    // 1. Mapping: first match wins; no mappings = everything applies.
    let mapping: Option<&Mapping> = if bundle.mappings.is_empty() {
        None
    } else {
        match bundle
            .mappings
            .iter()
            .find(|m| selector_matches(&m.selector, input))
        {
            Some(m) => Some(m),
            None => {
                let what = input
                    .image_refs
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "the target".into());
                let msg = format!("no mapping of policy bundle {} matches {what}; the evaluation fails, as Anchore's does", bundle.id);
                let mut f = Finding::new(
                    "policy.no-mapping",
                    "policy",
                    "no_mapping",
                    Action::Stop,
                    Severity::High,
                    msg.clone(),
                );
                f.policy = Some(PolicyMatch {
                    policy_id: bundle.id.clone(),
                    rule_id: String::new(),
                    trigger_id: trigger_id("policy", "no_mapping", &msg),
                    allowlisted_by: None,
                });
                outcome.policy_final_action = Action::Stop;
                outcome.final_action = Action::Stop;
                return (vec![f], outcome);
            }
        }
    };
    outcome.mapping = mapping.map(|m| m.id.clone());
    let rule_sets: Vec<_> = bundle
        .rule_sets
        .iter()
        .filter(|s| mapping.is_none_or(|m| m.rule_set_ids.contains(&s.id)))
        .collect();
    let allowlists: Vec<_> = bundle
        .allowlists
        .iter()
        .filter(|a| mapping.is_none_or(|m| m.allowlist_ids.contains(&a.id)))
        .collect();
    for a in &allowlists {
        for item in &a.items {
            if item.expires_on.is_some_and(|t| t <= now) {
                warnings.push(Warning::new(
                    &bundle.source,
                    format!(
                        "allowlist item `{}` of `{}` has expired and is ignored",
                        item.id, a.id
                    ),
                ));
            }
        }
    }

    // 2. Rules.
    let bctx = BundleContext::new(bundle, input, &rule_sets);
    if bctx.unreadable > 0 {
        warnings.push(Warning::new(
            &bundle.source,
            format!("{} files of up to 10 kB could not be read for content and secret checks (content not kept, or unreadable); those checks are partial", bctx.unreadable),
        ));
    }
    let mut findings = Vec::new();
    for set in &rule_sets {
        for rule in &set.rules {
            let fired = fire(rule, input, ctx, &bctx, decided);
            for f in fired {
                findings.push(to_finding(&set.id, rule, f));
            }
        }
    }

    // 3. Allowlists.
    for f in &mut findings {
        let Some(pm) = f.policy.as_mut() else {
            continue;
        };
        'lists: for a in &allowlists {
            for item in &a.items {
                if item.expires_on.is_some_and(|t| t <= now) {
                    continue;
                }
                if item.gate == f.gate.to_ascii_lowercase()
                    && item.trigger_id.matches(&pm.trigger_id)
                {
                    pm.allowlisted_by = Some(format!("allowlist {} item {}", a.id, item.id));
                    break 'lists;
                }
            }
        }
    }
    outcome.policy_final_action = Action::combine(findings.iter().map(Finding::effective_action));

    // 4. Denied images beat allowed images, which beat the rules.
    if let Some(s) = bundle
        .denylisted_images
        .iter()
        .find(|s| selector_matches(s, input))
    {
        let name = if s.name.is_empty() {
            format!("{}/{}", s.registry.source, s.repository.source)
        } else {
            s.name.clone()
        };
        let msg = format!(
            "image is denylisted by policy bundle {} ({name})",
            bundle.id
        );
        let mut f = Finding::new(
            "policy.denylisted-image",
            "image",
            "denylisted",
            Action::Stop,
            Severity::High,
            msg.clone(),
        );
        f.policy = Some(PolicyMatch {
            policy_id: bundle.id.clone(),
            rule_id: name.clone(),
            trigger_id: trigger_id("image", "denylisted", &msg),
            allowlisted_by: None,
        });
        findings.push(f);
        outcome.matched_denylisted_image = Some(name);
        outcome.final_action = Action::Stop;
    } else if let Some(s) = bundle
        .allowlisted_images
        .iter()
        .find(|s| selector_matches(s, input))
    {
        let name = if s.name.is_empty() {
            format!("{}/{}", s.registry.source, s.repository.source)
        } else {
            s.name.clone()
        };
        for f in &mut findings {
            if let Some(pm) = f.policy.as_mut() {
                pm.allowlisted_by
                    .get_or_insert_with(|| format!("allowlisted image {name}"));
            }
        }
        outcome.matched_allowlisted_image = Some(name);
        outcome.final_action = Action::Go;
    } else {
        outcome.final_action = outcome.policy_final_action;
    }
    (findings, outcome)
}

fn to_finding(policy_id: &str, rule: &Rule, fired: Fired) -> Finding {
    let tid = trigger_id(&rule.gate, &rule.trigger, &fired.msg);
    let message = match &fired.note {
        Some(n) => format!("{} ({n})", fired.msg),
        None => fired.msg.clone(),
    };
    let severity = match rule.action {
        Action::Stop => Severity::High,
        Action::Warn => Severity::Medium,
        Action::Go => Severity::Info,
    };
    let mut f = match fired.base {
        Some(mut base) => {
            base.gate = rule.gate.clone();
            base.trigger = rule.trigger.clone();
            base.action = rule.action;
            base
        }
        None => {
            let mut f = Finding::new(
                format!("policy.{}.{}", rule.gate, rule.trigger),
                &rule.gate,
                &rule.trigger,
                rule.action,
                severity,
                message,
            );
            if let Some(p) = &fired.package {
                f = f.for_package(p);
            }
            if rule.gate == "secret_scans" {
                f = f.with_mitre([PRIVATE_KEYS]);
            }
            f
        }
    };
    if fired.path.is_some() {
        f.path = fired.path;
    }
    if fired.layer.is_some() {
        f.layer = fired.layer;
    }
    for (k, v) in fired.evidence {
        f = f.with_evidence(k, v);
    }
    f.policy = Some(PolicyMatch {
        policy_id: policy_id.to_string(),
        rule_id: rule.id.clone(),
        trigger_id: tid,
        allowlisted_by: None,
    });
    f
}

/// Facts computed once per target and shared by every bundle.
struct Context<'a> {
    /// Normalised name → packages (installed, declared, archive; removed ones when asked).
    by_name: HashMap<String, Vec<&'a Package>>,
    dockerfiles: Vec<Prepared>,
    layers: &'a [LayerRef],
    os_release: BTreeMap<String, String>,
    effective_user: String,
}

/// A Dockerfile keyed by directive, as anchore's `DockerfileGate.prepare_context` does:
/// comments dropped, `\` continuations joined, first word upper-cased.
struct Prepared {
    path: String,
    actual: bool,
    directives: BTreeMap<String, Vec<String>>,
}

fn prepare_dockerfile(d: &DockerfileInput) -> Prepared {
    let mut directives: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut buf = String::new();
    for line in d.text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            buf.push_str(stripped);
            continue;
        }
        buf.push_str(line);
        let directive = buf.split(' ').next().unwrap_or("").to_ascii_uppercase();
        directives
            .entry(directive)
            .or_default()
            .push(std::mem::take(&mut buf));
    }
    if !buf.is_empty() {
        let directive = buf.split(' ').next().unwrap_or("").to_ascii_uppercase();
        directives.entry(directive).or_default().push(buf);
    }
    Prepared {
        path: d.path.clone(),
        actual: d.actual,
        directives,
    }
}

fn read_os_release(tree: &dyn FileTree) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Ok(bytes) = tree.read(path, 64 * 1024) {
            for line in String::from_utf8_lossy(&bytes).lines() {
                if let Some((k, v)) = line.split_once('=') {
                    out.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
                }
            }
            break;
        }
    }
    out
}

fn user_of_line(line: &str) -> Option<String> {
    // anchore: re.search(r'\s*USER\s+\[?([^\]]+)\]?\s*', line)
    let rest = line
        .trim_start()
        .strip_prefix("USER")
        .or_else(|| line.trim_start().strip_prefix("user"))?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let rest = rest.trim_start().trim_start_matches('[');
    let user: String = rest.chars().take_while(|c| *c != ']').collect();
    let user = user.trim_end().to_string();
    (!user.is_empty()).then_some(user)
}

impl<'a> Context<'a> {
    fn new(input: &'a Input) -> Context<'a> {
        let mut by_name: HashMap<String, Vec<&Package>> = HashMap::new();
        for p in input.packages.iter().chain(input.removed_packages) {
            by_name.entry(p.normalized.clone()).or_default().push(p);
        }
        let dockerfiles: Vec<Prepared> = input.dockerfiles.iter().map(prepare_dockerfile).collect();
        let from_dockerfile = dockerfiles
            .iter()
            .find(|d| d.actual)
            .or(dockerfiles.first())
            .and_then(|d| d.directives.get("USER"))
            .and_then(|lines| lines.last())
            .and_then(|l| user_of_line(l));
        let effective_user = from_dockerfile
            .or_else(|| input.image.and_then(|m| m.user.clone()))
            .unwrap_or_else(|| "root".to_string());
        Context {
            by_name,
            dockerfiles,
            layers: input.tree.layers(),
            os_release: read_os_release(input.tree),
            effective_user,
        }
    }

    /// The Dockerfile the gate evaluates: an actual one when there is one, else the guessed one.
    fn dockerfile(&self) -> Option<&Prepared> {
        self.dockerfiles
            .iter()
            .find(|d| d.actual)
            .or(self.dockerfiles.first())
    }

    fn layer(&self, e: &FileEntry) -> Option<LayerRef> {
        e.layer.and_then(|i| self.layers.get(i).cloned())
    }
}

/// Per-bundle precomputation: every `name_match` regex applied in one pass over the files (plain
/// regexes as one [`regex::RegexSet`]), and the content matches of the content/secret regexes.
struct BundleContext {
    /// The `name_match` rules, and for each the files it matched: (entry index, removed?).
    name_rules: Vec<*const Rule>,
    name_hits: Vec<Vec<(usize, bool)>>,
    /// path → names of content_search regexes that matched a line.
    content_hits: Vec<(String, Option<usize>, Vec<String>)>,
    /// path → names of secret_search regexes that matched a line.
    secret_hits: Vec<(String, Option<usize>, Vec<String>)>,
    regex_text: HashMap<String, String>,
    unreadable: usize,
}

impl BundleContext {
    fn new(bundle: &Bundle, input: &Input, sets: &[&crate::load::RuleSet]) -> BundleContext {
        let tree = input.tree;
        let mut name_rules: Vec<*const Rule> = Vec::new();
        let mut name_regexes: Vec<&PyRegex> = Vec::new();
        let mut needs_content = false;
        let mut needs_secrets = false;
        let mut extra_content: Vec<(String, PyRegex)> = Vec::new();
        for s in sets {
            for r in &s.rules {
                match &r.check {
                    Check::FileName { regex } => {
                        name_rules.push(r as *const Rule);
                        name_regexes.push(regex);
                    }
                    Check::FileContent { name } => {
                        needs_content = true;
                        if let Some(n) = name {
                            if !bundle.content_search.iter().any(|(k, _)| k == n)
                                && !extra_content.iter().any(|(k, _)| k == n)
                            {
                                if let Ok(re) = PyRegex::new(n, crate::pyre::MatchMode::Start) {
                                    extra_content.push((n.clone(), re));
                                }
                            }
                        }
                    }
                    Check::Secret { .. } => needs_secrets = true,
                    _ => {}
                }
            }
        }
        let mut name_hits = vec![Vec::new(); name_rules.len()];
        if !name_rules.is_empty() {
            // Plain regexes go into one set; the rest (look-around...) are tried one by one.
            let (plain_idx, plain_src): (Vec<usize>, Vec<String>) = name_regexes
                .iter()
                .enumerate()
                .filter_map(|(i, r)| r.plain_source().map(|s| (i, s)))
                .unzip();
            let set = regex::RegexSetBuilder::new(&plain_src)
                .size_limit(1 << 26)
                .dfa_size_limit(1 << 24)
                .build()
                .ok();
            let in_set: Vec<bool> = (0..name_rules.len())
                .map(|i| set.is_some() && plain_idx.contains(&i))
                .collect();
            let files = tree
                .entries()
                .iter()
                .map(|e| (e, false))
                .chain(input.removed_files.iter().map(|e| (e, true)));
            for (ei, (e, removed)) in files.enumerate() {
                if e.kind == EntryKind::Dir {
                    continue;
                }
                if let Some(set) = &set {
                    for j in set.matches(&e.path).iter() {
                        if let Some(&i) = plain_idx.get(j) {
                            name_hits[i].push((ei, removed));
                        }
                    }
                }
                for (i, r) in name_regexes.iter().enumerate() {
                    if !in_set[i] && r.is_match(&e.path) {
                        name_hits[i].push((ei, removed));
                    }
                }
            }
        }
        let mut regex_text = HashMap::new();
        let content: Vec<(String, PyRegex)> = bundle
            .content_search
            .iter()
            .cloned()
            .chain(extra_content)
            .collect();
        for (n, r) in content.iter().chain(&bundle.secret_search) {
            regex_text
                .entry(n.clone())
                .or_insert_with(|| r.source.clone());
        }
        let mut bc = BundleContext {
            name_rules,
            name_hits,
            content_hits: Vec::new(),
            secret_hits: Vec::new(),
            regex_text,
            unreadable: 0,
        };
        if needs_content || needs_secrets {
            let empty: Vec<(String, PyRegex)> = Vec::new();
            let (c, s) = (
                if needs_content { &content } else { &empty },
                if needs_secrets {
                    &bundle.secret_search
                } else {
                    &empty
                },
            );
            bc.scan_contents(tree, c, s);
        }
        bc
    }

    fn scan_contents(
        &mut self,
        tree: &dyn FileTree,
        content: &[(String, PyRegex)],
        secrets: &[(String, PyRegex)],
    ) {
        use rayon::prelude::*;
        // One DFA pass over each file with a superset of every pattern (look-around dropped)
        // finds the few files and patterns worth the exact, per-line (and possibly
        // backtracking) check; without it, secret scanning dominated whole-image scans.
        let all: Vec<&PyRegex> = content.iter().chain(secrets).map(|(_, r)| r).collect();
        let mut pre: Vec<Option<String>> = all.iter().map(|r| r.line_prefilter()).collect();
        let build_set = |pre: &[Option<String>]| {
            let (idx, src): (Vec<usize>, Vec<&String>) = pre
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
                .unzip();
            let set = regex::bytes::RegexSetBuilder::new(src)
                .unicode(false)
                .size_limit(1 << 26)
                .dfa_size_limit(1 << 24)
                .build()
                .ok();
            (idx, set)
        };
        let (mut pre_idx, mut set) = build_set(&pre);
        if set.is_none() {
            // Some pattern's superset does not compile: leave it to the exact check alone.
            for p in &mut pre {
                if p.as_deref()
                    .is_some_and(|p| !PyRegex::prefilter_compiles(p))
                {
                    *p = None;
                }
            }
            (pre_idx, set) = build_set(&pre);
        }
        let always: Vec<usize> = (0..all.len())
            .filter(|i| set.is_none() || pre[*i].is_none())
            .collect();
        let n_content = content.len();
        type Hits = (String, Option<usize>, Vec<String>, Vec<String>);
        let results: Vec<Result<Option<Hits>, ()>> = tree
            .entries()
            .par_iter()
            .filter(|e| e.kind == EntryKind::File && e.size <= MAX_SCAN_FILE)
            .map(|e| {
                let bytes = tree.read(&e.path, MAX_SCAN_FILE).map_err(|_| ())?;
                let text = String::from_utf8_lossy(&bytes);
                let mut candidates = always.clone();
                if let Some(set) = &set {
                    candidates.extend(
                        set.matches(text.as_bytes())
                            .iter()
                            .filter_map(|j| pre_idx.get(j)),
                    );
                }
                if candidates.is_empty() {
                    return Ok(None);
                }
                candidates.sort_unstable();
                candidates.dedup();
                let mut c_hits = Vec::new();
                let mut s_hits = Vec::new();
                for i in candidates {
                    let (name, hits) = if i < n_content {
                        (&content[i].0, &mut c_hits)
                    } else {
                        (&secrets[i - n_content].0, &mut s_hits)
                    };
                    if !hits.contains(name) && text.lines().any(|l| all[i].is_match(l)) {
                        hits.push(name.clone());
                    }
                }
                // Keep the policy's order of names, as the line loop used to report them.
                let order = |hits: Vec<String>, list: &[(String, PyRegex)]| -> Vec<String> {
                    list.iter()
                        .filter(|(n, _)| hits.contains(n))
                        .map(|(n, _)| n.clone())
                        .fold(Vec::new(), |mut v, n| {
                            if !v.contains(&n) {
                                v.push(n);
                            }
                            v
                        })
                };
                let (c_hits, s_hits) = (order(c_hits, content), order(s_hits, secrets));
                Ok((!c_hits.is_empty() || !s_hits.is_empty())
                    .then(|| (e.path.clone(), e.layer, c_hits, s_hits)))
            })
            .collect();
        for r in results {
            match r {
                Err(()) => self.unreadable += 1,
                Ok(None) => {}
                Ok(Some((path, layer, c_hits, s_hits))) => {
                    if !c_hits.is_empty() {
                        self.content_hits.push((path.clone(), layer, c_hits));
                    }
                    if !s_hits.is_empty() {
                        self.secret_hits.push((path, layer, s_hits));
                    }
                }
            }
        }
    }
}

fn fire(
    rule: &Rule,
    input: &Input,
    ctx: &Context,
    bctx: &BundleContext,
    decided: &mut [bool],
) -> Vec<Fired> {
    let mut out = Vec::new();
    match &rule.check {
        Check::PackageDeny { name, version } => {
            let norm = pyward_core::normalize_name(name);
            // Installed packages are what the image holds; a declared one (requirements, a
            // `RUN pip install` line) counts only when nothing of that name is installed.
            let all: Vec<&&Package> = ctx.by_name.get(&norm).into_iter().flatten().collect();
            let installed = all.iter().any(|p| p.source.is_installed());
            let mut seen = std::collections::HashSet::new();
            for p in all
                .into_iter()
                .filter(|p| !installed || p.source.is_installed())
            {
                if !seen.insert((p.name.clone(), p.version.clone(), p.location.path.clone())) {
                    continue;
                }
                if let Some(v) = version {
                    if p.version.as_deref() != Some(v.as_str()) {
                        continue;
                    }
                }
                let msg = match version {
                    Some(v) => format!("Package is blacklisted: {}-{v}", p.name),
                    None => format!("Package is blacklisted: {}", p.name),
                };
                let mut f = Fired::msg(msg);
                if p.name != *name {
                    f.note = Some(format!("the target spells it `{}`, the policy `{name}`; names are compared PEP 503-normalised", p.name));
                    f.evidence.push(("spelling".into(), p.name.clone()));
                }
                f.evidence
                    .push(("source".into(), p.source.label().to_string()));
                if input.removed_packages.iter().any(|r| std::ptr::eq(r, *p)) {
                    f.note = Some("deleted by a later layer: the image once held it".into());
                    f.evidence.push((
                        "layers".into(),
                        "deleted by a later layer: the image once held it".into(),
                    ));
                }
                f.package = Some((*p).clone());
                out.push(f);
            }
        }
        Check::PackageRequired {
            name,
            version,
            minimum,
        } => {
            let norm = pyward_core::normalize_name(name);
            let found: Vec<&&Package> = ctx
                .by_name
                .get(&norm)
                .into_iter()
                .flatten()
                .filter(|p| !input.removed_packages.iter().any(|r| std::ptr::eq(r, **p)))
                .collect();
            match (found.first(), version) {
                (None, Some(v)) => out.push(Fired::msg(format!(
                    "Required input package ({name},{v}) is not present in container image"
                ))),
                (None, None) => out.push(Fired::msg(format!(
                    "Required input package ({name}) is not present in container image"
                ))),
                (Some(p), Some(v)) => {
                    let have = p.version.clone().unwrap_or_default();
                    if !*minimum && have != *v {
                        let mut f = Fired::msg(format!("Required input package ({}) is present ({have}), but not at the version specified in policy ({name})", p.name));
                        f.package = Some((**p).clone());
                        out.push(f);
                    } else if *minimum && have != *v && version_lt(&have, v) {
                        let mut f = Fired::msg(format!("Required min-version input package ({}) is present ({have}), but is lower version than what is specified in policy ({v})", p.name));
                        f.package = Some((**p).clone());
                        out.push(f);
                    }
                }
                (Some(_), None) => {}
            }
        }
        Check::PackageVerify {
            only_packages,
            only_directories,
            check,
        } => {
            for p in input.packages.iter().filter(|p| p.source.is_installed()) {
                if !only_packages.is_empty() && !only_packages.contains(&p.normalized) {
                    continue;
                }
                for (path, state) in verify_package(input.tree, p) {
                    if !only_directories.is_empty()
                        && !only_directories
                            .iter()
                            .any(|d| path.starts_with(d.as_str()))
                    {
                        continue;
                    }
                    if check.is_some_and(|c| c != state) {
                        continue;
                    }
                    let status = match state {
                        VerifyState::Changed => "changed",
                        VerifyState::Missing => "missing",
                    };
                    let mut f = Fired::msg(format!("VERIFY check against package db for package '{}' failed on entry '{path}' with status: '{status}'", p.name));
                    f.package = Some(p.clone());
                    f.path = Some(path.clone());
                    f.layer = input.tree.layer_of(&path);
                    out.push(f);
                }
            }
        }
        Check::Instruction {
            directive,
            op,
            value,
            regex,
            actual_only,
        } => {
            let Some(df) = ctx.dockerfile() else {
                return out;
            };
            if *actual_only && !df.actual {
                return out;
            }
            let v = value.clone().unwrap_or_default();
            if let Some(lines) = df.directives.get(directive) {
                for l in lines {
                    let rest = l.get(directive.len()..).unwrap_or("").trim();
                    let hit = match op {
                        Cmp::Eq => rest == v,
                        Cmp::Ne => rest != v,
                        Cmp::Exists => true,
                        Cmp::NotExists => false,
                        Cmp::Like => regex.as_ref().is_some_and(|r| r.is_match(rest)),
                        Cmp::NotLike => !regex.as_ref().is_some_and(|r| r.is_match(rest)),
                        Cmp::In => v.split(',').any(|x| x.trim() == rest),
                        Cmp::NotIn => !v.split(',').any(|x| x.trim() == rest),
                        _ => false,
                    };
                    if hit {
                        let mut f = Fired::msg(format!("Dockerfile directive '{directive}' check '{}' matched against '{v}' for line '{rest}'", cmp_text(*op)));
                        f.path = Some(df.path.clone());
                        f.evidence.push((
                            "dockerfile".into(),
                            if df.actual {
                                "actual".into()
                            } else {
                                "guessed from the image history".into()
                            },
                        ));
                        out.push(f);
                    }
                }
            } else if *op == Cmp::NotExists {
                let mut f = Fired::msg(format!("Dockerfile directive '{directive}' not found, matching condition 'not_exists' check"));
                f.path = Some(df.path.clone());
                out.push(f);
            }
        }
        Check::EffectiveUser { users, allow } => {
            if ctx.dockerfile().is_none() && input.image.is_none() {
                return out;
            }
            let user = &ctx.effective_user;
            if *allow && !users.contains(user) {
                out.push(Fired::msg(format!(
                    "User {user} found as effective user, which is not on the allowed list"
                )));
            } else if !*allow && users.contains(user) {
                out.push(Fired::msg(format!(
                    "User {user} found as effective user, which is explicity not allowed list"
                )));
            }
        }
        Check::ExposedPorts {
            ports,
            allow,
            actual_only,
        } => {
            let Some(df) = ctx.dockerfile() else {
                return out;
            };
            if *actual_only && !df.actual {
                return out;
            }
            for line in df.directives.get("EXPOSE").into_iter().flatten() {
                let mut exposed: Vec<String> = line
                    .split_whitespace()
                    .skip(1)
                    .map(str::to_string)
                    .collect();
                if *allow {
                    exposed.retain(|e| {
                        !ports
                            .iter()
                            .any(|p| e == p || *e == format!("{p}/tcp") || *e == format!("{p}/udp"))
                    });
                    for e in exposed {
                        out.push(Fired::msg(format!("Dockerfile exposes port ({e}) which is not in policy file ALLOWEDPORTS list")));
                    }
                } else {
                    for p in ports {
                        let hit = [p.clone(), format!("{p}/tcp"), format!("{p}/udp")]
                            .into_iter()
                            .find(|c| exposed.contains(c));
                        if let Some(h) = hit {
                            out.push(Fired::msg(format!("Dockerfile exposes port ({h}) which is in policy file DENIEDPORTS list")));
                        }
                    }
                }
            }
        }
        Check::NoDockerfile => {
            if !ctx.dockerfiles.iter().any(|d| d.actual) {
                out.push(Fired::msg(
                    "Image was not analyzed with an actual Dockerfile".into(),
                ));
            }
        }
        Check::FileName { regex } => {
            let Some(i) = bctx.name_rules.iter().position(|r| std::ptr::eq(*r, rule)) else {
                return out;
            };
            let entries = input.tree.entries();
            for &(ei, removed) in bctx.name_hits.get(i).into_iter().flatten() {
                let e = if removed {
                    input.removed_files.get(ei - entries.len())
                } else {
                    entries.get(ei)
                };
                if let Some(e) = e {
                    out.push(file_fired(format!("Application of regex matched file found in container: file={} regexp={}", e.path, regex.source), e, removed, ctx));
                }
            }
        }
        Check::Suid => {
            let files = input
                .tree
                .entries()
                .iter()
                .map(|e| (e, false))
                .chain(input.removed_files.iter().map(|e| (e, true)));
            for (e, removed) in files {
                if e.kind != EntryKind::Dir && e.mode & 0o6000 != 0 {
                    out.push(file_fired(
                        format!(
                            "SUID or SGID found set on file {}. Mode: 0o{:o}",
                            e.path, e.mode
                        ),
                        e,
                        removed,
                        ctx,
                    ));
                }
            }
        }
        Check::FileAttribute {
            filename,
            checksum,
            mode,
            size,
            skip_missing,
        } => {
            let Some(e) = input.tree.entry(filename) else {
                if !*skip_missing {
                    out.push(Fired::msg(format!(
                        "filename={filename} and skip_missing=False"
                    )));
                }
                return out;
            };
            let mut parts = Vec::new();
            if let Some((want, equals)) = checksum {
                let have = match input.tree.read(filename, input_read_limit()) {
                    Ok(bytes) => hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes[..])),
                    Err(_) => String::new(),
                };
                if (have == *want) != *equals {
                    return out;
                }
                parts.push(format!(
                    "checksum={have} op={} specified_checksum={want}",
                    if *equals { "equals" } else { "not_equals" }
                ));
            }
            if let Some((want, equals)) = mode {
                let have = e.mode & 0o7777;
                if (have == *want & 0o7777) != *equals {
                    return out;
                }
                parts.push(format!(
                    "mode=0o{have:o} op={} specified_mode=0o{:o}",
                    if *equals { "equals" } else { "not_equals" },
                    want & 0o7777
                ));
            }
            if let Some((want, op)) = size {
                let ok = compare_num(e.size as f64, *want as f64, *op);
                if !ok {
                    return out;
                }
                parts.push(format!(
                    "size={} op={} specified_size={want}",
                    e.size,
                    cmp_text(*op)
                ));
            }
            if !parts.is_empty() {
                let mut msg = format!("filename={filename}");
                for p in parts {
                    msg.push_str(&format!(" and {p}"));
                }
                out.push(file_fired(msg, e, false, ctx));
            }
        }
        Check::FileContent { name } => {
            for (path, layer, hits) in &bctx.content_hits {
                for n in hits {
                    if name.as_ref().is_some_and(|want| want != n) {
                        continue;
                    }
                    let re = bctx.regex_text.get(n).cloned().unwrap_or_default();
                    let shown = if re == *n {
                        re.clone()
                    } else {
                        format!("{n}={re}")
                    };
                    let mut f = Fired::msg(format!("File content analyzer found regexp match in container: file={path} regexp={shown}"));
                    f.path = Some(path.clone());
                    f.layer = layer.and_then(|i| ctx.layers.get(i).cloned());
                    out.push(f);
                }
            }
        }
        Check::Secret {
            name,
            filename,
            found,
        } => {
            let mut any = false;
            for (path, layer, hits) in &bctx.secret_hits {
                if filename.as_ref().is_some_and(|r| !r.is_match(path)) {
                    continue;
                }
                for n in hits {
                    if name
                        .as_ref()
                        .is_some_and(|want| !want.split(',').any(|w| w.trim() == n))
                    {
                        continue;
                    }
                    any = true;
                    if *found {
                        let re = bctx.regex_text.get(n).cloned().unwrap_or_default();
                        let mut f = Fired::msg(format!("Secret content search analyzer found regexp match in container: file={path} regexp={n}={re}"));
                        f.path = Some(path.clone());
                        f.layer = layer.and_then(|i| ctx.layers.get(i).cloned());
                        f.evidence.push(("secret".into(), n.clone()));
                        out.push(f);
                    }
                }
            }
            if !*found && !any {
                out.push(Fired::msg(format!(
                    "Secret content search analyzer did not find regexp match in container: filename_regex={} content_regex_name={}",
                    filename.as_ref().map_or("*".to_string(), |r| r.source.clone()),
                    name.clone().unwrap_or_else(|| "all".into())
                )));
            }
        }
        Check::Metadata {
            attribute,
            op,
            value,
            regex,
        } => {
            let Some(have) = metadata_value(attribute, input, ctx) else {
                if *op == Cmp::NotExists {
                    out.push(Fired::msg(format!("Attribute check for attribute: '{attribute}' check: 'not_exists' check_value: '' matched image value: 'None'")));
                }
                return out;
            };
            let v = value.clone().unwrap_or_default();
            let numeric = matches!(
                attribute.as_str(),
                "size" | "layer_count" | "package_count" | "file_count"
            );
            let hit = match op {
                Cmp::Exists => true,
                Cmp::NotExists => false,
                Cmp::Like => regex.as_ref().is_some_and(|r| r.is_match(&have)),
                Cmp::NotLike => !regex.as_ref().is_some_and(|r| r.is_match(&have)),
                Cmp::In => v.split(',').any(|x| x.trim() == have),
                Cmp::NotIn => !v.split(',').any(|x| x.trim() == have),
                _ if numeric => match (have.parse::<f64>(), crate::rules::parse_size(&v)) {
                    (Ok(h), Some(w)) => compare_num(h, w, *op),
                    _ => false,
                },
                Cmp::Eq => have == v,
                Cmp::Ne => have != v,
                _ => compare_str(&have, &v, *op),
            };
            if hit {
                let shown = if numeric && attribute == "size" {
                    crate::rules::parse_size(&v).map_or(v.clone(), |n| format!("{}", n as u64))
                } else {
                    v.clone()
                };
                out.push(Fired::msg(format!("Attribute check for attribute: '{attribute}' check: '{}' check_value: '{shown}' matched image value: '{have}'", cmp_text(*op))));
            }
        }
        Check::Always => out.push(Fired::msg("always".into())),
        Check::Malicious {
            dependencies,
            files,
        } => {
            for (i, f) in input.findings.iter().enumerate() {
                let take = match f.rule_id.as_str() {
                    "intel.known-malicious" => true,
                    "intel.malicious-dependency" => *dependencies,
                    "files.ioc-file" => *files,
                    _ => false,
                };
                if take {
                    decided[i] = true;
                    out.push(analyzer_fired(f));
                }
            }
        }
        Check::Typosquat { min, below } => {
            for (i, f) in input.findings.iter().enumerate() {
                if f.rule_id != "names.typosquat" {
                    continue;
                }
                let conf = f
                    .evidence
                    .iter()
                    .find(|e| e.key == "confidence")
                    .and_then(|e| Confidence::parse(&e.value))
                    .unwrap_or(Confidence::Low);
                if conf >= *min && below.is_none_or(|b| conf < b) {
                    decided[i] = true;
                    out.push(analyzer_fired(f));
                }
            }
        }
        Check::Heuristics {
            min_score,
            max_score,
            rule_ids,
        } => {
            for (i, f) in input.findings.iter().enumerate() {
                if f.gate != "heuristics" {
                    continue;
                }
                if !rule_ids.is_empty() && !rule_ids.contains(&f.rule_id) {
                    continue;
                }
                let score = f
                    .evidence
                    .iter()
                    .find(|e| e.key == "score")
                    .and_then(|e| e.value.parse::<f64>().ok());
                if let Some(min) = min_score {
                    if score.is_none_or(|s| s < *min) {
                        continue;
                    }
                }
                if let Some(max) = max_score {
                    if score.is_none_or(|s| s >= *max) {
                        continue;
                    }
                }
                decided[i] = true;
                out.push(analyzer_fired(f));
            }
        }
        Check::Drift(kind) => {
            let Some(base) = input.baseline else {
                return out;
            };
            out.extend(drift(*kind, base, input.packages));
        }
    }
    out
}

fn input_read_limit() -> u64 {
    pyward_inventory::tree::DEFAULT_READ_LIMIT
}

fn analyzer_fired(f: &Finding) -> Fired {
    let mut fired = Fired::msg(f.message.clone());
    fired.base = Some(f.clone());
    fired
}

fn file_fired(msg: String, e: &FileEntry, removed: bool, ctx: &Context) -> Fired {
    let mut f = Fired::msg(msg);
    f.path = Some(e.path.clone());
    f.layer = ctx.layer(e);
    if removed {
        f.note = Some("deleted by a later layer: the image once held it".into());
        f.evidence
            .push(("layers".into(), "deleted by a later layer".into()));
    }
    f
}

fn cmp_text(op: Cmp) -> &'static str {
    match op {
        Cmp::Eq => "=",
        Cmp::Ne => "!=",
        Cmp::Gt => ">",
        Cmp::Lt => "<",
        Cmp::Ge => ">=",
        Cmp::Le => "<=",
        Cmp::Exists => "exists",
        Cmp::NotExists => "not_exists",
        Cmp::Like => "like",
        Cmp::NotLike => "not_like",
        Cmp::In => "in",
        Cmp::NotIn => "not_in",
    }
}

fn compare_num(have: f64, want: f64, op: Cmp) -> bool {
    match op {
        Cmp::Eq => have == want,
        Cmp::Ne => have != want,
        Cmp::Gt => have > want,
        Cmp::Lt => have < want,
        Cmp::Ge => have >= want,
        Cmp::Le => have <= want,
        _ => false,
    }
}

fn compare_str(have: &str, want: &str, op: Cmp) -> bool {
    match op {
        Cmp::Gt => have > want,
        Cmp::Lt => have < want,
        Cmp::Ge => have >= want,
        Cmp::Le => have <= want,
        _ => false,
    }
}

fn version_lt(have: &str, want: &str) -> bool {
    use std::str::FromStr;
    match (
        pep440_rs::Version::from_str(have),
        pep440_rs::Version::from_str(want),
    ) {
        (Ok(h), Ok(w)) => h < w,
        _ => have < want,
    }
}

fn metadata_value(attr: &str, input: &Input, ctx: &Context) -> Option<String> {
    let summary = input.image.map(|m| &m.summary);
    match attr {
        "size" => Some(
            input
                .tree
                .entries()
                .iter()
                .filter(|e| e.kind == EntryKind::File)
                .map(|e| e.size)
                .sum::<u64>()
                .to_string(),
        ),
        "layer_count" => input.image.map(|_| ctx.layers.len().to_string()),
        "architecture" => summary.and_then(|s| s.architecture.clone()),
        "os_type" => summary.and_then(|s| s.os.clone()),
        "distro" => ctx.os_release.get("ID").cloned(),
        "distro_version" => ctx.os_release.get("VERSION_ID").cloned(),
        "like_distro" => ctx
            .os_release
            .get("ID_LIKE")
            .cloned()
            .or_else(|| ctx.os_release.get("ID").cloned()),
        "user" => Some(ctx.effective_user.clone()),
        "package_count" => Some(
            input
                .packages
                .iter()
                .filter(|p| p.source.is_installed())
                .count()
                .to_string(),
        ),
        "file_count" => Some(
            input
                .tree
                .entries()
                .iter()
                .filter(|e| e.kind == EntryKind::File)
                .count()
                .to_string(),
        ),
        _ => None,
    }
}

/// Files of an installed package whose content no longer matches its RECORD.
fn verify_package(tree: &dyn FileTree, p: &Package) -> Vec<(String, VerifyState)> {
    let dist = parent_path(&p.location.path);
    if !dist.ends_with(".dist-info") {
        return Vec::new();
    }
    let site = parent_path(dist);
    let Ok(record) = tree.read(&format!("{dist}/RECORD"), 16 * 1024 * 1024) else {
        return Vec::new();
    };
    let Ok(rows) = pyward_inventory::installed::parse_record(&record) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for row in rows {
        let Some(path) = join_path(site, &row.path.replace('\\', "/")) else {
            continue;
        };
        let Some(entry) = tree.entry(&path) else {
            if row.hash.is_some() {
                out.push((path, VerifyState::Missing));
            }
            continue;
        };
        if let (Some(size), true) = (row.size, entry.kind == EntryKind::File) {
            if size != entry.size {
                out.push((path, VerifyState::Changed));
                continue;
            }
        }
        let Some((algo, digest)) = &row.hash else {
            continue;
        };
        if algo != "sha256" {
            continue;
        }
        match tree.read(&path, pyward_inventory::tree::DEFAULT_READ_LIMIT) {
            Ok(bytes) => {
                let have = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes[..]));
                if have != *digest {
                    out.push((path, VerifyState::Changed));
                }
            }
            Err(_) => continue,
        }
    }
    out
}

fn drift(kind: DriftKind, base: &Baseline, packages: &[Package]) -> Vec<Fired> {
    let mut now: BTreeMap<String, (&Package, Option<String>)> = BTreeMap::new();
    for p in packages.iter().filter(|p| p.source.is_installed()) {
        now.entry(p.normalized.clone())
            .or_insert((p, p.version.clone()));
    }
    let mut out = Vec::new();
    match kind {
        DriftKind::Added => {
            for (n, (p, v)) in &now {
                if !base.packages.contains_key(n) {
                    let mut f = Fired::msg(format!(
                        "Package added since the baseline: {}{}",
                        p.name,
                        v.as_ref().map(|v| format!("-{v}")).unwrap_or_default()
                    ));
                    f.package = Some((*p).clone());
                    out.push(f);
                }
            }
        }
        DriftKind::Removed => {
            for (n, (name, v)) in &base.packages {
                if !now.contains_key(n) {
                    out.push(Fired::msg(format!(
                        "Package removed since the baseline: {name}{}",
                        v.as_ref().map(|v| format!("-{v}")).unwrap_or_default()
                    )));
                }
            }
        }
        DriftKind::Modified => {
            for (n, (p, v)) in &now {
                if let Some((_, old)) = base.packages.get(n) {
                    if old != v {
                        let mut f = Fired::msg(format!(
                            "Package version changed since the baseline: {} {} -> {}",
                            p.name,
                            old.clone().unwrap_or_else(|| "?".into()),
                            v.clone().unwrap_or_else(|| "?".into())
                        ));
                        f.package = Some((*p).clone());
                        out.push(f);
                    }
                }
            }
        }
    }
    out
}
