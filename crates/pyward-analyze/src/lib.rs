//! Static heuristics over Python package files: catch malicious code no list knows yet.
//!
//! Each `.py` file is parsed with tree-sitter-python (which recovers from syntax errors and
//! reads Python 2), call names are resolved through aliases and reflection
//! (`import base64 as b`, `from os import system as s`, `getattr(__import__('os'), 'system')`),
//! constant expressions are decoded statically (base64/base32/hex/zlib/gzip/rot13/reversal/
//! `chr()` joins, bounded) and decoded code is analysed again as a new layer. Rules
//! ([`Rule`]) turn the facts into findings; a per-package score (0–10) combines them.
//! Nothing is ever imported or executed.

pub mod decode;
pub mod facts;
pub mod prefilter;
pub mod rules;
pub mod yara;

use facts::{Call, Facts};
use pyward_core::{Action, Finding, Package};
use pyward_inventory::FileTree;
pub use rules::{Kind, Rule, Stage};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Gate of every finding of this crate (the policy's `heuristics` gate).
pub const GATE: &str = "heuristics";

/// Bounds of the analysis.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files larger than this are not read at all (a note says so).
    pub max_file_bytes: u64,
    /// Sources larger than this are not parsed; the token fallback reads them.
    pub max_parse_bytes: usize,
    /// Wall time per file (parse + walk).
    pub file_time: Duration,
    /// Largest output of one decoding step (decompression bombs stop here).
    pub max_decoded_bytes: usize,
    /// How many decoded layers deep decoded code is analysed again.
    pub max_layers: usize,
    /// Syntax nesting depth walked.
    pub max_depth: usize,
    /// Most bytes of files analysed per package.
    pub max_package_bytes: u64,
    /// Packages scoring below this report no findings (capability-only packages score < 4).
    pub min_report_score: f64,
    /// YARA-X rules applied to every analysed file and to its decoded layers.
    pub yara: yara::YaraSet,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_file_bytes: 16 * 1024 * 1024,
            max_parse_bytes: 4 * 1024 * 1024,
            file_time: Duration::from_secs(3),
            max_decoded_bytes: 4 * 1024 * 1024,
            max_layers: 4,
            max_depth: 400,
            max_package_bytes: 256 * 1024 * 1024,
            min_report_score: 4.0,
            yara: yara::YaraSet::Builtin,
        }
    }
}

/// Why a file was not (fully) analysed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// Syntax errors: analysed with the parser's error recovery (Python 2, broken code).
    SyntaxErrors,
    /// Not parsed (too large, parse timeout): the token/line fallback read it.
    Fallback,
    /// Partly analysed: a time, depth, decoding or size cap was reached.
    Partial,
    /// Not analysed at all (binary content, unreadable, over the size limit).
    Skipped,
    /// Not UTF-8: read as UTF-16 or a single-byte encoding.
    Encoding,
}

/// A note about the analysis of one file, for the report's warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The file as shown to the user (or the package name for package-wide limits).
    pub path: String,
    pub kind: NoteKind,
    pub message: String,
}

impl Note {
    fn new(path: &str, kind: NoteKind, message: impl Into<String>) -> Self {
        Note {
            path: path.to_string(),
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The analysis of one file.
#[derive(Debug, Clone, Default)]
pub struct FileAnalysis {
    /// Findings of this file alone; `score` evidence holds the file's own score.
    pub findings: Vec<Finding>,
    /// What limited the analysis (parse fallback, size, time, decoding caps, binary content).
    pub notes: Vec<Note>,
    /// Rules fired, for scoring across a package.
    pub rules: BTreeSet<Rule>,
    /// Bytes of source analysed.
    pub bytes: usize,
    /// Whether the file was parsed (the token pre-filter skips files no threat rule can match).
    pub parsed: bool,
}

/// Whether a path is a Python source pyward analyses.
pub fn is_python_path(path: &str) -> bool {
    path.ends_with(".py") || path.ends_with(".pyw")
}

/// Whether a file's content must be kept for [`analyze_package`]: false when the cheap pass
/// (no parse: token prefilter and the text-only rules) already clears it, so a streaming image
/// reader can drop it and [`analyze_package`] treats its absence as clean.
pub fn worth_keeping(path_display: &str, bytes: &[u8], opts: &Options) -> bool {
    let Some(text) = SourceText::read(path_display, bytes) else {
        return false;
    };
    text.needs_parse
        || !analyze_text(path_display, bytes, text, opts)
            .findings
            .is_empty()
}

/// Analyse one file's bytes. `path_display` is how the file is named in findings.
pub fn analyze_file(path_display: &str, bytes: &[u8], opts: &Options) -> FileAnalysis {
    match SourceText::read(path_display, bytes) {
        Some(text) => analyze_text(path_display, bytes, text, opts),
        None => {
            let mut out = FileAnalysis {
                bytes: bytes.len(),
                ..Default::default()
            };
            out.notes.push(Note::new(
                path_display,
                NoteKind::Skipped,
                "binary content in a Python file name; not analysed as code",
            ));
            out
        }
    }
}

/// A file's source as text, and what the cheap pass (token pre-filter) makes of it: computed
/// once for both [`worth_keeping`] and the analysis.
struct SourceText<'b> {
    src: Cow<'b, str>,
    encoding_note: Option<String>,
    file_name: &'b str,
    needs_parse: bool,
}

impl<'b> SourceText<'b> {
    /// `None` for binary content under a Python file name.
    fn read(path_display: &'b str, bytes: &'b [u8]) -> Option<Self> {
        let head = bytes.get(..bytes.len().min(8192)).unwrap_or(bytes);
        if head.contains(&0) && !head.starts_with(&[0xff, 0xfe]) && !head.starts_with(&[0xfe, 0xff])
        {
            return None;
        }
        let (src, encoding_note) = to_text(bytes);
        let file_name = path_display
            .rsplit(['/', '!'])
            .next()
            .unwrap_or(path_display);
        let needs_parse = prefilter::needs_parse(src.as_bytes(), file_name);
        Some(SourceText {
            src,
            encoding_note,
            file_name,
            needs_parse,
        })
    }
}

fn analyze_text(
    path_display: &str,
    bytes: &[u8],
    text: SourceText<'_>,
    opts: &Options,
) -> FileAnalysis {
    let mut out = FileAnalysis {
        bytes: bytes.len(),
        ..Default::default()
    };
    let SourceText {
        src,
        encoding_note,
        file_name,
        needs_parse,
    } = text;
    if let Some(n) = encoding_note {
        out.notes
            .push(Note::new(path_display, NoteKind::Encoding, n));
    }
    yara_scan(path_display, bytes, None, opts, &mut out);
    if !needs_parse {
        for h in evaluate(&Facts::default(), &src, file_name) {
            out.rules.insert(h.rule);
            out.findings
                .push(h.into_finding(path_display, &Facts::default()));
        }
        let score = score(&out.rules);
        for f in &mut out.findings {
            f.evidence
                .push(pyward_core::Evidence::new("score", format!("{score:.1}")));
        }
        return out;
    }
    out.parsed = true;
    let deadline = Instant::now() + opts.file_time;
    let mut budget = decode::Budget::new(opts.max_decoded_bytes, 20_000);
    let limits = facts::Limits {
        deadline,
        max_depth: opts.max_depth,
        max_layers: opts.max_layers,
        max_strings: 200_000,
    };
    let mut facts = extract(
        &src,
        0,
        opts,
        &limits,
        &mut budget,
        &mut out.notes,
        path_display,
    );
    // Decoded code is analysed again, layer by layer.
    let mut next = 0;
    while next < facts.decoded.len() {
        let d = facts.decoded[next].clone();
        next += 1;
        if d.layer + 1 > opts.max_layers {
            out.notes.push(Note::new(
                path_display,
                NoteKind::Partial,
                format!(
                    "decoded layers deeper than {} not analysed",
                    opts.max_layers
                ),
            ));
            continue;
        }
        if !decode::looks_like_code(&d.text) {
            // Decoded data (not code): its lines are strings for the destination/path rules.
            for l in d.text.lines().take(10_000) {
                facts.strings.push((d.line, d.layer + 1, l.to_string()));
            }
        } else {
            let mut inner = extract(
                &d.text,
                d.layer + 1,
                opts,
                &limits,
                &mut budget,
                &mut out.notes,
                path_display,
            );
            for c in &mut inner.calls {
                c.line = d.line;
            }
            let base = facts.decoded.len();
            for c in &mut inner.calls {
                c.decoded_arg = c.decoded_arg.map(|i| i + base);
            }
            for s in &mut inner.strings {
                s.0 = d.line;
            }
            for dd in &mut inner.decoded {
                dd.line = d.line;
            }
            facts.calls.extend(inner.calls);
            facts.strings.extend(inner.strings);
            facts.decoded.extend(inner.decoded);
            facts
                .xor_in_loop
                .extend(inner.xor_in_loop.iter().map(|_| d.line));
        }
    }
    if budget.truncated {
        out.notes.push(Note::new(
            path_display,
            NoteKind::Partial,
            format!(
            "a decoded value exceeded {} bytes (decompression bomb?); only its start was analysed",
            opts.max_decoded_bytes
        ),
        ));
    }
    if budget.steps_left == 0 {
        out.notes.push(Note::new(
            path_display,
            NoteKind::Partial,
            "static decoding budget exhausted; partly analysed",
        ));
    }
    for d in &facts.decoded {
        yara_scan(path_display, d.text.as_bytes(), Some(d), opts, &mut out);
    }
    let hits = evaluate(&facts, &src, file_name);
    for h in hits {
        out.rules.insert(h.rule);
        out.findings.push(h.into_finding(path_display, &facts));
    }
    let score = score(&out.rules);
    for f in &mut out.findings {
        f.evidence
            .push(pyward_core::Evidence::new("score", format!("{score:.1}")));
    }
    out
}

/// Apply the YARA rules to a file's bytes (or to one decoded layer of it): each matching rule
/// becomes a finding with its name, techniques, offset and line.
fn yara_scan(
    path_display: &str,
    data: &[u8],
    decoded: Option<&facts::Decoded>,
    opts: &Options,
    out: &mut FileAnalysis,
) {
    let Some(rules) = opts.yara.rules() else {
        return;
    };
    let hits = match rules.scan(data, opts.file_time) {
        Ok(h) => h,
        Err(e) => {
            out.notes
                .push(Note::new(path_display, NoteKind::Partial, e));
            return;
        }
    };
    for h in hits {
        let rule = h.score_rule();
        // One finding per YARA rule and file, even if it matches several layers.
        let rule_id = format!("yara.{}", h.rule);
        if out.findings.iter().any(|f| f.rule_id == rule_id) {
            continue;
        }
        out.rules.insert(rule);
        let line = match decoded {
            Some(d) => d.line,
            None => yara::line_of_offset(data, h.offset),
        };
        let desc = if h.description.is_empty() {
            rule.description().to_string()
        } else {
            h.description.clone()
        };
        let mitre = if h.mitre.is_empty() {
            rule.mitre()
        } else {
            h.mitre.clone()
        };
        let mut f = Finding::new(
            rule_id,
            GATE,
            rule.id(),
            Action::Go,
            h.severity,
            format!("YARA rule {}: {desc}", h.rule),
        )
        .with_mitre(mitre)
        .with_evidence("file", path_display)
        .with_evidence("line", line.to_string())
        .with_evidence("yara.rule", h.rule.clone())
        .with_evidence("offset", h.offset.to_string())
        .with_evidence("snippet", h.matched.clone());
        if let Some(d) = decoded {
            f = f.with_evidence(
                "decoded_layer",
                format!("line {}: {}", d.line, d.chain.join(" → ")),
            );
        }
        f.path = Some(path_display.to_string());
        f.line = Some(line);
        out.findings.push(f);
    }
}

fn extract(
    src: &str,
    layer: usize,
    opts: &Options,
    limits: &facts::Limits,
    budget: &mut decode::Budget,
    notes: &mut Vec<Note>,
    path_display: &str,
) -> Facts {
    if src.len() > opts.max_parse_bytes {
        notes.push(Note::new(
            path_display,
            NoteKind::Fallback,
            format!(
                "{} bytes is over the {}-byte parse limit; token fallback used",
                src.len(),
                opts.max_parse_bytes
            ),
        ));
        return facts::fallback(src, layer, limits.max_strings);
    }
    let mut parser = tree_sitter::Parser::new();
    if parser
        .set_language(&tree_sitter_python::LANGUAGE.into())
        .is_err()
    {
        notes.push(Note::new(
            path_display,
            NoteKind::Fallback,
            "Python grammar unavailable; token fallback used",
        ));
        return facts::fallback(src, layer, limits.max_strings);
    }
    let deadline = limits.deadline;
    let mut cb = |_: &tree_sitter::ParseState| Instant::now() > deadline;
    let bytes = src.as_bytes();
    let tree = parser.parse_with_options(
        &mut |i, _| bytes.get(i..).unwrap_or(&[]),
        None,
        Some(tree_sitter::ParseOptions::new().progress_callback(&mut cb)),
    );
    let Some(tree) = tree else {
        notes.push(Note::new(
            path_display,
            NoteKind::Fallback,
            "parse did not finish in time; token fallback used",
        ));
        return facts::fallback(src, layer, limits.max_strings);
    };
    let mut ex = facts::Extractor::new(src, budget, limits, layer);
    ex.run(tree.root_node());
    let mut f = ex.facts;
    if f.syntax_errors && layer == 0 {
        notes.push(Note::new(
            path_display,
            NoteKind::SyntaxErrors,
            "syntax errors (Python 2 or broken code); analysed with error recovery",
        ));
    }
    notes.extend(
        f.notes
            .drain(..)
            .map(|n| Note::new(path_display, NoteKind::Partial, n)),
    );
    f
}

/// Decode bytes as Python would read the source: UTF-8, a PEP 263 coding cookie for
/// single-byte encodings, UTF-16 with a BOM; otherwise lossy with a note.
fn to_text(bytes: &[u8]) -> (Cow<'_, str>, Option<String>) {
    if let Some(rest) = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        return (String::from_utf8_lossy(rest), None);
    }
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        let le = bytes.starts_with(&[0xff, 0xfe]);
        let units: Vec<u16> = bytes
            .get(2..)
            .unwrap_or(&[])
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        return (
            Cow::Owned(String::from_utf16_lossy(&units)),
            Some("UTF-16 source decoded".into()),
        );
    }
    match std::str::from_utf8(bytes) {
        // Borrowed: most files are UTF-8, and copying each one cost a pass over its bytes.
        Ok(s) => (Cow::Borrowed(s), None),
        Err(_) => {
            // Single-byte encodings (latin-1, cp1252...) map bytes to chars one to one for the
            // ASCII-based syntax pyward reads.
            let s: String = bytes.iter().map(|&b| b as char).collect();
            (
                Cow::Owned(s),
                Some("not UTF-8; read as a single-byte encoding (latin-1)".into()),
            )
        }
    }
}

/// Analyse every Python file of a package (from `Package.files`), bounded per file and per
/// package, and return its findings with the package score in each finding's `score` evidence.
pub fn analyze_package(tree: &dyn FileTree, package: &Package, opts: &Options) -> Vec<Finding> {
    analyze_package_detailed(tree, package, opts).0
}

/// [`analyze_package`] with the notes (partly analysed files, skipped files).
pub fn analyze_package_detailed(
    tree: &dyn FileTree,
    package: &Package,
    opts: &Options,
) -> (Vec<Finding>, Vec<Note>) {
    use rayon::prelude::*;
    let mut notes = Vec::new();
    let mut findings = Vec::new();
    let mut rules = BTreeSet::new();
    // The files within the byte budget, chosen in order from the tree's sizes, then analysed
    // in parallel (a single big package, e.g. one wheel, would otherwise use one core).
    let mut spent: u64 = 0;
    let mut chosen: Vec<&String> = Vec::new();
    let mut sizes: Vec<u64> = Vec::new();
    for path in package.files.iter().filter(|p| is_python_path(p)) {
        if spent > opts.max_package_bytes {
            notes.push(Note::new(
                &package.name,
                NoteKind::Partial,
                format!(
                    "over {} bytes of Python analysed; the rest skipped",
                    opts.max_package_bytes
                ),
            ));
            break;
        }
        let size = tree
            .entry(path)
            .map_or(0, |e| e.size.min(opts.max_file_bytes));
        spent += size;
        chosen.push(path);
        sizes.push(size);
    }
    // Largest files first, one file per task: a package's scan lasts at least as long as its
    // biggest file (hf_api.py, 700 KB, is most of huggingface-hub's), so it must not start last.
    let mut order: Vec<(usize, &String, u64)> = chosen
        .iter()
        .zip(&sizes)
        .enumerate()
        .map(|(i, (path, size))| (i, *path, *size))
        .collect();
    order.sort_by_key(|&(_, _, size)| std::cmp::Reverse(size));
    // (index in `chosen`, the file's analysis if it was read, notes from reading it)
    type FileResult = (usize, (Option<FileAnalysis>, Vec<Note>));
    let mut per_file: Vec<FileResult> = order
        .par_iter()
        .with_max_len(1)
        .map(|&(i, path, _)| {
            let display = tree.display_path(path);
            let result = match tree.read(path, opts.max_file_bytes) {
                Ok(bytes) => (Some(analyze_file(&display, &bytes, opts)), Vec::new()),
                // Dropped while streaming an image because `worth_keeping` cleared it (or
                // because the scan's analysis budget ran out, which the scan reports itself).
                Err(
                    pyward_inventory::tree::ReadError::NotFound
                    | pyward_inventory::tree::ReadError::NotKept,
                ) => (None, Vec::new()),
                Err(e) => {
                    let note = Note::new(&display, NoteKind::Skipped, format!("not analysed: {e}"));
                    (None, vec![note])
                }
            };
            (i, result)
        })
        .collect();
    // Merged in the package's file order, so the result does not depend on scheduling.
    per_file.sort_by_key(|(i, _)| *i);
    for ((_, (fa, read_notes)), path) in per_file.into_iter().zip(&chosen) {
        notes.extend(read_notes);
        let Some(fa) = fa else { continue };
        notes.extend(fa.notes);
        rules.extend(fa.rules.iter().copied());
        let layer = tree.layer_of(path);
        for mut f in fa.findings {
            f.package = Some(pyward_core::PackageRef::from(package));
            f.layer = layer.clone();
            findings.push(f);
        }
    }
    for (rule, detail, path) in metadata_signals(tree, package, opts) {
        if rules.insert(rule) {
            let mut f = Finding::new(
                rule.rule_id(),
                GATE,
                rule.id(),
                Action::Go,
                rule.severity(),
                format!("{}: {detail}", rule.description()),
            )
            .with_mitre(rule.mitre())
            .for_package(package)
            .with_evidence("score", "0");
            if let Some(p) = path {
                f.path = Some(tree.display_path(&p));
                f = f.with_evidence("file", tree.display_path(&p));
            }
            findings.push(f);
        }
    }
    let s = score(&rules);
    if s < opts.min_report_score {
        findings.clear();
    }
    for f in &mut findings {
        if let Some(e) = f.evidence.iter_mut().find(|e| e.key == "score") {
            e.value = format!("{s:.1}");
        }
        f.action = action_for(s);
        f.message = format!("{} (package score {s:.1}/10)", strip_score(&f.message));
    }
    (findings, notes)
}

/// Offline metadata signals of an installed or archived package (declared packages have no
/// files and give none): empty summary and home page, version 0.0.0, a single module, native
/// executables without compiled extensions.
fn metadata_signals(
    tree: &dyn FileTree,
    p: &Package,
    opts: &Options,
) -> Vec<(Rule, String, Option<String>)> {
    let mut out = Vec::new();
    if p.files.is_empty() {
        return out;
    }
    let blank = |s: &Option<String>| {
        s.as_deref()
            .is_none_or(|v| v.trim().is_empty() || v.trim() == "UNKNOWN")
    };
    if blank(&p.summary) && blank(&p.home_page) {
        out.push((
            Rule::EmptyMetadata,
            "no Summary, no Home-page".to_string(),
            None,
        ));
    }
    if matches!(p.version.as_deref(), Some("0.0.0" | "0.0" | "0")) {
        out.push((
            Rule::ReleaseZero,
            format!("version {}", p.version.as_deref().unwrap_or("")),
            None,
        ));
    }
    let py: Vec<&String> = p.files.iter().filter(|f| is_python_path(f)).collect();
    if py.len() == 1 {
        out.push((
            Rule::SingleModule,
            py[0].rsplit('/').next().unwrap_or("").to_string(),
            None,
        ));
    }
    let compiled = p.files.iter().any(|f| {
        f.ends_with(".so") || f.ends_with(".pyd") || f.ends_with(".dylib") || f.contains(".so.")
    });
    if !compiled {
        for f in p.files.iter().filter(|f| maybe_executable(f)).take(2000) {
            if tree
                .entry(f)
                .is_none_or(|e| e.size < 4 || e.size > opts.max_file_bytes)
            {
                continue;
            }
            let Ok(b) = tree.read(f, opts.max_file_bytes) else {
                continue;
            };
            let magic = b.get(..4).unwrap_or(&[]);
            let kind = match magic {
                [0x7f, b'E', b'L', b'F'] => "ELF",
                [b'M', b'Z', ..] => "PE",
                [0xfe, 0xed, 0xfa, 0xce | 0xcf] | [0xce | 0xcf, 0xfa, 0xed, 0xfe] => "Mach-O",
                _ => continue,
            };
            out.push((
                Rule::BundledBinary,
                format!("{kind} executable {}", tree.display_path(f)),
                Some(f.clone()),
            ));
            break;
        }
    }
    out.extend(name_signals(p));
    out
}

/// Name/metadata mismatch signals (GuardDog's typosquatting and metadata ideas, offline):
/// the METADATA name against its own folder and wheel file names, and, for a look-alike of a
/// popular project, whether it installs that project's import name or points its home page at
/// it. Each is a [`Rule`] of the metadata stage.
pub fn name_signals(p: &Package) -> Vec<(Rule, String, Option<String>)> {
    let mut out = Vec::new();
    let mut seen_folder = false;
    let metadata_files = std::iter::once(p.location.path.as_str())
        .chain(p.files.iter().map(String::as_str))
        .filter(|f| {
            f.ends_with(".dist-info/METADATA")
                || f.ends_with(".egg-info/PKG-INFO")
                || f.ends_with(".egg-info")
        });
    for f in metadata_files {
        let Some(folder) = f
            .trim_end_matches("/METADATA")
            .trim_end_matches("/PKG-INFO")
            .rsplit(['/', '!'])
            .next()
        else {
            continue;
        };
        let Some(found) = folder_project_name(folder) else {
            continue;
        };
        if seen_folder {
            continue;
        }
        if pyward_core::normalize_name(&found) != p.normalized {
            seen_folder = true;
            out.push((
                Rule::NameMismatch,
                format!("METADATA says {:?} but its folder is {folder:?}", p.name),
                Some(f.to_string()),
            ));
        }
    }
    if let Some(wheel) = p
        .location
        .path
        .rsplit(['/', '!'])
        .find(|s| s.ends_with(".whl"))
    {
        // `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`; a file renamed to
        // something else (no five parts) says nothing.
        let parts: Vec<&str> = wheel.trim_end_matches(".whl").split('-').collect();
        if let (5 | 6, Some(name)) = (parts.len(), parts.first()) {
            if pyward_core::normalize_name(name) != p.normalized {
                out.push((
                    Rule::NameMismatch,
                    format!("METADATA says {:?} but the wheel file is {wheel:?}", p.name),
                    None,
                ));
            }
        }
    }
    let checker = pyward_intel::names::NameChecker::builtin(false);
    let Some(squat) = checker.check(&p.name) else {
        return out;
    };
    let victim = squat.imitates.as_str();
    let victim_imports = victim_import_names(victim);
    if let Some(x) = import_names(p)
        .into_iter()
        .find(|x| victim_imports.contains(&x.to_ascii_lowercase()))
    {
        out.push((
            Rule::ImportImitation,
            format!(
                "{:?} imitates {victim:?} (rank {}) and installs the import name {x:?}",
                p.name, squat.imitates_rank
            ),
            None,
        ));
    }
    if let Some(home) = p.home_page.as_deref().filter(|h| {
        let l = h.to_ascii_lowercase();
        let own = p.normalized.replace('-', "");
        !l.replace(['-', '_', '.'], "").contains(&own)
            && victim_imports
                .iter()
                .any(|v| v.len() >= 4 && l.contains(v.as_str()))
    }) {
        out.push((
            Rule::CopiedMetadata,
            format!(
                "{:?} imitates {victim:?} and its home page is {home:?}",
                p.name
            ),
            None,
        ));
    }
    out
}

/// The project name of `name-version.dist-info` / `name-version[-pyX.Y].egg-info` (the name
/// part never holds `-`: installers escape it to `_`).
fn folder_project_name(folder: &str) -> Option<String> {
    let stem = folder
        .strip_suffix(".dist-info")
        .or_else(|| folder.strip_suffix(".egg-info"))?;
    let name = stem.split('-').next()?;
    (!name.is_empty()).then(|| name.to_string())
}

/// Import names a popular project is used under: its name with separators as `_` or removed,
/// and its core without a `python`/`py` word (`python-dateutil` → `dateutil`).
fn victim_import_names(victim: &str) -> Vec<String> {
    let mut v = vec![victim.replace('-', "_"), victim.replace('-', "")];
    let words: Vec<&str> = victim.split('-').collect();
    let core: Vec<&str> = words
        .iter()
        .copied()
        .filter(|w| !matches!(*w, "python" | "py" | "python3" | "py3"))
        .collect();
    if !core.is_empty() && core.len() < words.len() {
        v.push(core.join("_"));
    }
    for w in [victim.strip_prefix("py"), victim.strip_suffix("py")]
        .into_iter()
        .flatten()
    {
        if w.len() >= 4 && !w.starts_with('-') && !w.ends_with('-') {
            v.push(w.replace('-', "_"));
        }
    }
    v.sort();
    v.dedup();
    v
}

/// Top-level import names a package installs: `top_level.txt`, else the first folder or module
/// under `site-packages`, or at the root of a wheel.
fn import_names(p: &Package) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = p.top_level.iter().map(|t| t.trim().to_string()).collect();
    let wheel = matches!(p.source, pyward_core::PackageSource::Archive(_));
    for f in p.files.iter().filter(|f| is_python_path(f)) {
        let rel = match f
            .rsplit_once("site-packages/")
            .or_else(|| f.rsplit_once("dist-packages/"))
        {
            Some((_, rel)) => rel,
            None if wheel => f.trim_start_matches('/'),
            None => continue,
        };
        let first = rel.split('/').next().unwrap_or("");
        let name = first
            .strip_suffix(".py")
            .or_else(|| first.strip_suffix(".pyw"))
            .unwrap_or(first);
        if !name.is_empty()
            && !name.contains(".dist-info")
            && !name.contains(".egg-info")
            && !name.contains(".data")
        {
            out.insert(name.to_string());
        }
    }
    out.retain(|n| !n.is_empty() && !n.starts_with('_'));
    out
}

/// File names an executable could hide behind: no extension, or an executable-ish one (data,
/// text and source files are not read).
fn maybe_executable(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        None => true,
        Some((_, ext)) => matches!(
            ext.to_ascii_lowercase().as_str(),
            "exe" | "bin" | "dll" | "dat" | "elf" | "out" | "run" | "com" | "scr" | "tmp" | "x"
        ),
    }
}

/// Analyse many packages in parallel (rayon); findings in package order, then the notes.
pub fn analyze_packages(
    tree: &dyn FileTree,
    packages: &[Package],
    opts: &Options,
) -> (Vec<Finding>, Vec<Note>) {
    use rayon::prelude::*;
    let per: Vec<(Vec<Finding>, Vec<Note>)> = packages
        .par_iter()
        .map(|p| analyze_package_detailed(tree, p, opts))
        .collect();
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    for (f, n) in per {
        findings.extend(f);
        notes.extend(n);
    }
    (findings, notes)
}

/// The notes worth showing as report warnings (limits reached, files skipped), at most `max`
/// plus one line counting the rest; syntax-error and encoding notes are left out.
pub fn notes_for_report(notes: &[Note], max: usize) -> Vec<Note> {
    let relevant: Vec<&Note> = notes
        .iter()
        .filter(|n| !matches!(n.kind, NoteKind::SyntaxErrors | NoteKind::Encoding))
        .collect();
    let mut out: Vec<Note> = relevant.iter().take(max).map(|n| (*n).clone()).collect();
    if relevant.len() > max {
        out.push(Note::new(
            "static analysis",
            NoteKind::Partial,
            format!(
                "{} more files were only partly analysed or skipped",
                relevant.len() - max
            ),
        ));
    }
    out
}

/// Whether the scan should keep a file's content for analysis while streaming an image or an
/// archive: Python sources up to `max_file_bytes`.
pub fn wants_content(path: &str, size: u64, opts: &Options) -> bool {
    is_python_path(path) && size <= opts.max_file_bytes.min(KEEP_MAX_FILE)
}

/// Largest Python file kept in memory while streaming images (bigger ones are noted as skipped).
pub const KEEP_MAX_FILE: u64 = 2 * 1024 * 1024;

fn strip_score(m: &str) -> &str {
    m.rsplit_once(" (score ").map_or(m, |(a, _)| a)
}

/// The default decision for a score (the policy's `heuristics` gate may decide otherwise).
pub fn action_for(score: f64) -> Action {
    if score >= SUSPICIOUS {
        Action::Warn
    } else {
        Action::Go
    }
}

/// Score from which a package is suspicious (GuardDog's threshold is 5 on the same 0–10 scale).
pub const SUSPICIOUS: f64 = 5.0;

/// Package score 0–10: rule weights combined as independent evidence
/// (`10·(1 − Π(1 − wᵢ/10))`), plus an attack-chain bonus when threats span stages; packages
/// with capabilities only (subprocess, a raw IP, reading `~/.ssh`) stay below 4.
pub fn score(rules: &BTreeSet<Rule>) -> f64 {
    if rules.is_empty() {
        return 0.0;
    }
    let mut keep = 1.0;
    for r in rules {
        keep *= 1.0 - r.weight() / 10.0;
    }
    let mut s = 10.0 * (1.0 - keep);
    let threats: Vec<&Rule> = rules.iter().filter(|r| r.kind() == Kind::Threat).collect();
    if threats.is_empty() {
        return (s.min(3.9) * 10.0).round() / 10.0;
    }
    let stages: BTreeSet<Stage> = rules
        .iter()
        .map(|r| r.stage())
        .filter(|s| !matches!(s, Stage::Metadata | Stage::Content))
        .collect();
    if stages.len() >= 3 {
        s += 1.5;
    } else if stages.len() == 2 {
        s += 0.75;
    }
    (s.min(10.0) * 10.0).round() / 10.0
}

/// One rule firing in one file.
struct Hit {
    rule: Rule,
    line: u32,
    snippet: String,
    detail: String,
    /// Index into `Facts::decoded` when the evidence came from a decoded layer.
    decoded: Option<usize>,
    extra: Vec<(String, String)>,
}

impl Hit {
    fn into_finding(self, path: &str, facts: &Facts) -> Finding {
        let r = self.rule;
        let msg = if self.detail.is_empty() {
            r.description().to_string()
        } else {
            format!("{}: {}", r.description(), self.detail)
        };
        let mut f = Finding::new(r.rule_id(), GATE, r.id(), Action::Go, r.severity(), msg)
            .with_mitre(r.mitre())
            .with_evidence("file", path)
            .with_evidence("line", self.line.to_string())
            .with_evidence("snippet", self.snippet);
        f.path = Some(path.to_string());
        f.line = Some(self.line);
        if let Some(d) = self.decoded.and_then(|i| facts.decoded.get(i)) {
            f = f
                .with_evidence(
                    "decoded_layer",
                    format!("line {}: {}", d.line, d.chain.join(" → ")),
                )
                .with_evidence("decoded", facts::shorten(&d.text, 400));
            for u in urls_in(&d.text).into_iter().take(8) {
                f = f.with_evidence("decoded.url", u);
            }
            let mut seen = BTreeSet::new();
            for (line, _) in d
                .text
                .lines()
                .enumerate()
                .filter(|(_, l)| SENSITIVE.iter().any(|(p, _)| l.contains(p)))
            {
                for q in quoted(d.text.lines().nth(line).unwrap_or("")) {
                    if SENSITIVE.iter().any(|(p, _)| q.contains(p))
                        && seen.insert(q.clone())
                        && seen.len() <= 8
                    {
                        f = f.with_evidence("decoded.path", q);
                    }
                }
            }
        }
        for (k, v) in self.extra {
            f = f.with_evidence(k, v);
        }
        f
    }
}

// ---------------------------------------------------------------------------------------------
// Name classes

fn is_net(n: &str) -> bool {
    const P: [&str; 22] = [
        "urllib.request.urlopen",
        "urllib.request.urlretrieve",
        "urllib.request.Request",
        "urllib.urlopen",
        "urllib.urlretrieve",
        "urllib2.urlopen",
        "urllib2.Request",
        "requests.get",
        "requests.post",
        "requests.put",
        "requests.request",
        "requests.Session",
        "httpx.",
        "http.client.HTTP",
        "httplib.HTTP",
        "socket.socket",
        "socket.create_connection",
        "ftplib.FTP",
        "smtplib.SMTP",
        "aiohttp.ClientSession",
        "pycurl.Curl",
        "websocket.create_connection",
    ];
    P.iter().any(|p| n.starts_with(p))
}

fn is_download(n: &str) -> bool {
    matches!(
        n,
        "urllib.request.urlopen"
            | "urllib.request.urlretrieve"
            | "urllib.urlopen"
            | "urllib.urlretrieve"
            | "urllib2.urlopen"
            | "requests.get"
            | "httpx.get"
            | "wget.download"
    )
}

fn is_proc(n: &str) -> bool {
    n.starts_with("subprocess.")
        && !matches!(
            n,
            "subprocess.DEVNULL" | "subprocess.PIPE" | "subprocess.CalledProcessError"
        )
        || matches!(
            n,
            "os.system"
                | "os.popen"
                | "os.popen2"
                | "os.popen3"
                | "pty.spawn"
                | "commands.getoutput"
                | "os.startfile"
        )
        || n.starts_with("os.exec")
        || n.starts_with("os.spawn")
        || n.starts_with("os.posix_spawn")
}

fn is_exec_name(n: &str) -> bool {
    matches!(
        n,
        "exec" | "eval" | "compile" | "execfile" | "builtins.exec" | "builtins.eval"
    )
}

fn is_decode_name(n: &str) -> bool {
    n.starts_with("base64.")
        || n.starts_with("zlib.")
        || n.starts_with("gzip.")
        || n.starts_with("lzma.")
        || n.starts_with("bz2.")
        || n.starts_with("binascii.")
        || n.starts_with("codecs.decode")
        || n.starts_with("marshal.")
        || matches!(
            n,
            "?.decode" | "?.fromhex" | "bytes.fromhex" | "?.decrypt" | "chr" | "?.join"
        )
}

fn is_delete(n: &str) -> bool {
    matches!(
        n,
        "os.remove" | "os.unlink" | "shutil.rmtree" | "?.unlink" | "os.rmdir"
    ) || n.ends_with(".unlink") && n.contains("Path")
}

fn is_walk(n: &str) -> bool {
    matches!(
        n,
        "os.walk"
            | "os.scandir"
            | "os.listdir"
            | "glob.glob"
            | "glob.iglob"
            | "?.rglob"
            | "?.glob"
            | "?.iterdir"
            | "?.walk"
    ) || n.ends_with(".rglob")
        || n.ends_with(".iterdir")
}

const SENSITIVE: [(&str, &str); 23] = [
    (".ssh/id_", "SSH private key"),
    ("/.ssh", "SSH directory"),
    (".ssh/", "SSH directory"),
    (".gnupg", "GnuPG keyring"),
    (".aws/credentials", "AWS credentials"),
    (".aws/config", "AWS config"),
    (".kube/config", "Kubernetes config"),
    ("/etc/shadow", "password hashes"),
    ("/etc/passwd", "user list"),
    (".docker/config.json", "Docker credentials"),
    (".git-credentials", "git credentials"),
    (".netrc", "netrc credentials"),
    (".pypirc", "PyPI credentials"),
    ("Login Data", "browser saved passwords"),
    ("Local State", "browser key store"),
    ("\\Cookies", "browser cookies"),
    ("/Cookies", "browser cookies"),
    (".mozilla/firefox", "Firefox profile"),
    ("Google/Chrome/User Data", "Chrome profile"),
    ("Google\\Chrome\\User Data", "Chrome profile"),
    ("discord/Local Storage", "Discord tokens"),
    ("discord\\Local Storage", "Discord tokens"),
    ("Local Storage", "browser or Discord local storage (tokens)"),
];

const SHADY: [&str; 30] = [
    "pastebin.com",
    "paste.ee",
    "hastebin",
    "ghostbin",
    "transfer.sh",
    "anonfiles",
    "file.io",
    "discord.com/api/webhooks",
    "discordapp.com/api/webhooks",
    "api.telegram.org/bot",
    "hooks.slack.com",
    "ngrok.io",
    "ngrok-free.app",
    "ngrok.app",
    "trycloudflare.com",
    "serveo.net",
    "localtunnel.me",
    "webhook.site",
    "pipedream.net",
    "requestbin",
    "oastify.com",
    "burpcollaborator",
    "interact.sh",
    "dnslog.cn",
    "ipinfo.io",
    "ip-api.com",
    "api.ipify.org",
    "ifconfig.me",
    "icanhazip.com",
    "geolocation-db.com",
];

const MINER: [&str; 10] = [
    "stratum+tcp://",
    "stratum+ssl://",
    "stratum2+tcp://",
    "xmrig",
    "--donate-level",
    "cryptonight",
    "supportxmr.com",
    "moneroocean",
    "nanopool.org",
    "minexmr",
];

const PERSIST: [&str; 14] = [
    "crontab",
    "/etc/cron",
    "/var/spool/cron",
    ".bashrc",
    ".bash_profile",
    ".zshrc",
    "/etc/profile",
    "/etc/systemd/system",
    ".config/systemd/user",
    ".config/autostart",
    "CurrentVersion\\Run",
    "CurrentVersion\\\\Run",
    "LaunchAgents",
    "schtasks",
];

const RSHELL: [&str; 7] = [
    "/dev/tcp/",
    "bash -i",
    "sh -i",
    "nc -e",
    "ncat -e",
    "/bin/sh -i",
    "cmd.exe /c powershell -nop",
];

const RECON: [&str; 5] = [
    "Documents",
    "Downloads",
    "PycharmProjects",
    "Desktop",
    "Pictures",
];

/// Which pattern lists a string literal touches, found in one Aho-Corasick pass instead of a
/// `contains` per pattern (the per-string loop was the analyser's hottest spot after parsing).
#[derive(Default)]
struct StringClasses {
    /// Index into [`SHADY`] of the first listed pattern present.
    shady: Option<usize>,
    /// Index into [`SENSITIVE`] of the first listed pattern present.
    sensitive: Option<usize>,
    recon: bool,
    persist: bool,
    miner: bool,
    rshell: bool,
}

/// The pattern lists in one automaton, with each pattern's (list, index in list).
type StringAutomaton = (aho_corasick::AhoCorasick, Vec<(u8, usize)>);

fn string_automaton() -> Option<&'static StringAutomaton> {
    static AC: std::sync::OnceLock<Option<StringAutomaton>> = std::sync::OnceLock::new();
    AC.get_or_init(|| {
        let mut pats: Vec<&str> = Vec::new();
        let mut ids = Vec::new();
        let mut push = |list: u8, items: &mut dyn Iterator<Item = &'static str>| {
            for (i, p) in items.enumerate() {
                pats.push(p);
                ids.push((list, i));
            }
        };
        push(0, &mut SHADY.iter().copied());
        push(1, &mut SENSITIVE.iter().map(|(p, _)| *p));
        push(2, &mut RECON.iter().copied());
        push(3, &mut PERSIST.iter().copied());
        push(4, &mut MINER.iter().copied());
        push(5, &mut RSHELL.iter().copied());
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::Standard)
            .build(&pats)
            .ok()
            .map(|ac| (ac, ids))
    })
    .as_ref()
}

fn string_classes(s: &str) -> StringClasses {
    let mut c = StringClasses::default();
    let Some((ac, ids)) = string_automaton() else {
        // Unreachable in practice (the patterns are fixed); fall back to plain searches.
        c.shady = SHADY.iter().position(|h| s.contains(h));
        c.sensitive = SENSITIVE.iter().position(|(p, _)| s.contains(p));
        c.recon = RECON.iter().any(|r| s.contains(r));
        c.persist = PERSIST.iter().any(|p| s.contains(p));
        c.miner = MINER.iter().any(|p| s.contains(p));
        c.rshell = RSHELL.iter().any(|p| s.contains(p));
        return c;
    };
    let min = |cur: Option<usize>, i: usize| Some(cur.map_or(i, |c| c.min(i)));
    for m in ac.find_overlapping_iter(s) {
        let id = ids.get(m.pattern().as_usize());
        // Shell words must start a word: `sh -i` is not `ssh -i`.
        let prev = m.start().checked_sub(1).and_then(|i| s.as_bytes().get(i));
        if matches!(id, Some((5, _)))
            && prev.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            continue;
        }
        // A folder name counts as recon only as a path part or on its own
        // (`~/Documents`, `'Downloads'`), not in prose (`Downloads: 12`).
        if let Some((2, i)) = id {
            let word = RECON.get(*i).copied().unwrap_or("");
            let t = s.trim();
            if !(t == word || s.contains(&format!("/{word}")) || s.contains(&format!("\\{word}"))) {
                continue;
            }
        }
        match id {
            Some((0, i)) => c.shady = min(c.shady, *i),
            Some((1, i)) => c.sensitive = min(c.sensitive, *i),
            Some((2, _)) => c.recon = true,
            Some((3, _)) => c.persist = true,
            Some((4, _)) => c.miner = true,
            Some((5, _)) => c.rshell = true,
            _ => {}
        }
    }
    c
}

/// A Bitcoin (bech32 or base58) or Ethereum address.
fn looks_like_wallet(s: &str) -> bool {
    let alnum = s.bytes().all(|b| b.is_ascii_alphanumeric());
    alnum
        && ((s.starts_with("bc1") && (26..=62).contains(&s.len()))
            || (s.starts_with("0x")
                && s.len() == 42
                && s.bytes().skip(2).all(|b| b.is_ascii_hexdigit()))
            || ((s.starts_with('1') || s.starts_with('3')) && (26..=35).contains(&s.len())))
}

/// Every `http(s)://…` URL in a text.
fn urls_in(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in s.match_indices("://") {
        let start = s
            .get(..i)
            .unwrap_or("")
            .rfind(|c: char| !c.is_ascii_alphanumeric() && c != '+')
            .map_or(0, |p| p + 1);
        let rest = s.get(i + 3..).unwrap_or("");
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ','))
            .unwrap_or(rest.len());
        let url = format!(
            "{}://{}",
            s.get(start..i).unwrap_or(""),
            rest.get(..end).unwrap_or("")
        );
        if !out.contains(&url) {
            out.push(url);
        }
    }
    out
}

/// Quoted string bodies on one line.
fn quoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find(['\'', '"']) {
        let q = rest.get(i..i + 1).unwrap_or("'");
        let after = rest.get(i + 1..).unwrap_or("");
        match after.find(q) {
            Some(j) => {
                out.push(after.get(..j).unwrap_or("").to_string());
                rest = after.get(j + 1..).unwrap_or("");
            }
            None => break,
        }
    }
    out
}

/// Raw-IPv4 URLs with a public address (documentation ranges included: test samples use them).
fn raw_ip_urls(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let after = rest.get(i + 3..).unwrap_or("");
        let host_end = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
            .unwrap_or(after.len());
        let hostport = after.get(..host_end).unwrap_or("");
        let host = hostport.split(':').next().unwrap_or("");
        if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
            let o = ip.octets();
            let private = ip.is_private()
                || ip.is_loopback()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || matches!(o, [1, 1, 1, 1] | [8, 8, 8, 8] | [8, 8, 4, 4]);
            if !private {
                let end = after
                    .find(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                    .unwrap_or(after.len());
                let scheme_start = rest
                    .get(..i)
                    .unwrap_or("")
                    .rfind(|c: char| !c.is_ascii_alphabetic())
                    .map_or(0, |p| p + 1);
                out.push(format!(
                    "{}://{}",
                    rest.get(scheme_start..i).unwrap_or(""),
                    after.get(..end).unwrap_or("")
                ));
            }
        }
        rest = after;
    }
    out
}

fn has_bidi_or_invisible(src: &str) -> Option<(u32, char)> {
    // The characters looked for all encode with the lead byte 0xE2.
    if !src.as_bytes().contains(&0xe2) {
        return None;
    }
    for (i, line) in src.lines().enumerate() {
        for c in line.chars() {
            // Bidirectional controls (Trojan Source, CVE-2021-42574). Zero-width joiners and tag
            // characters are left out: emoji and text-processing tables are full of them.
            if matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                return Some((u32::try_from(i + 1).unwrap_or(u32::MAX), c));
            }
        }
    }
    None
}

/// Apply the rules to a file's facts.
fn evaluate(f: &Facts, src: &str, file_name: &str) -> Vec<Hit> {
    let mut hits: BTreeMap<Rule, Hit> = BTreeMap::new();
    let mut add = |rule: Rule,
                   line: u32,
                   snippet: &str,
                   detail: String,
                   decoded: Option<usize>,
                   extra: Vec<(String, String)>| {
        hits.entry(rule).or_insert(Hit {
            rule,
            line,
            snippet: facts::shorten(snippet, 160),
            detail,
            decoded,
            extra,
        });
    };
    let decoded_of_layer = |layer: usize, line: u32| -> Option<usize> {
        if layer == 0 {
            return None;
        }
        f.decoded
            .iter()
            .position(|d| d.line == line && d.layer + 1 == layer)
    };
    let is_setup = file_name == "setup.py";
    let is_init = file_name == "__init__.py";

    let net_calls: Vec<&Call> = f.calls.iter().filter(|c| is_net(&c.name)).collect();
    let proc_calls: Vec<&Call> = f.calls.iter().filter(|c| is_proc(&c.name)).collect();
    let all_text = |c: &Call| format!("{} {}", c.args_text, c.strs.join(" "));

    // Strings: destinations and paths, including decoded layers.
    let mut urls: Vec<(u32, usize, String)> = Vec::new();
    let mut shady: Vec<(u32, usize, String)> = Vec::new();
    let mut sensitive: Vec<(u32, usize, String, &str)> = Vec::new();
    let mut recon: Vec<(u32, usize, String)> = Vec::new();
    let mut persist: Vec<(u32, usize, String)> = Vec::new();
    let mut miner: Vec<(u32, usize, String)> = Vec::new();
    let mut rshell: Vec<(u32, usize, String)> = Vec::new();
    for (line, layer, s) in &f.strings {
        if s.len() > 4096 {
            continue;
        }
        for u in raw_ip_urls(s) {
            urls.push((*line, *layer, u));
        }
        let class = string_classes(s);
        if let Some(h) = class.shady.and_then(|i| SHADY.get(i)) {
            shady.push((*line, *layer, format!("{h} in {}", facts::shorten(s, 120))));
        }
        if let Some((p, what)) = class.sensitive.and_then(|i| SENSITIVE.get(i)) {
            sensitive.push((
                *line,
                *layer,
                format!("{} ({what})", facts::shorten(s, 120)),
                p,
            ));
        }
        if class.recon && s.len() < 200 {
            recon.push((*line, *layer, facts::shorten(s, 120)));
        }
        if class.persist {
            persist.push((*line, *layer, facts::shorten(s, 120)));
        }
        if class.miner {
            miner.push((*line, *layer, facts::shorten(s, 120)));
        }
        if class.rshell {
            rshell.push((*line, *layer, facts::shorten(s, 120)));
        }
    }
    let ev_urls = |v: &[(u32, usize, String)]| -> Vec<(String, String)> {
        v.iter()
            .take(5)
            .map(|(_, _, u)| ("url".to_string(), u.clone()))
            .collect()
    };

    // Install-time code.
    for c in &f.calls {
        if is_setup && (c.name.ends_with("setup") || c.name == "setup") {
            if let Some((_, v)) = c.kwargs.iter().find(|(k, _)| k == "cmdclass") {
                if ["install", "develop", "egg_info", "bdist_wheel"]
                    .iter()
                    .any(|k| v.contains(k))
                {
                    add(
                        Rule::InstallHook,
                        c.line,
                        &c.snippet,
                        format!("cmdclass={}", facts::shorten(v, 80)),
                        None,
                        vec![],
                    );
                }
            }
        }
        if (is_setup || (is_init && c.top_level)) && (is_net(&c.name) || is_proc(&c.name)) {
            let when = if is_setup {
                "in setup.py"
            } else {
                "at import of __init__.py"
            };
            add(
                Rule::InstallTimeCode,
                c.line,
                &c.snippet,
                format!("{} {when}", c.name),
                decoded_of_layer(c.layer, c.line),
                vec![],
            );
        }
    }

    // Obfuscated execution and download-and-execute.
    for c in f.calls.iter().filter(|c| is_exec_name(&c.name)) {
        if c.inner.iter().any(|n| {
            is_net(n) || is_download(n) || n == "?.read" && c.inner.iter().any(|m| is_net(m))
        }) {
            add(
                Rule::DownloadExec,
                c.line,
                &c.snippet,
                format!("{} of downloaded content", c.name),
                None,
                ev_urls(&urls),
            );
        }
        if c.decoded_arg.is_some()
            || c.inner
                .iter()
                .any(|n| is_decode_name(n) && n != "?.join" || n == "marshal.loads")
        {
            let chain = c
                .decoded_arg
                .and_then(|i| f.decoded.get(i))
                .map(|d| format!(" of {}-decoded data", d.chain.join("+")))
                .unwrap_or_else(|| " of decoded data".to_string());
            add(
                Rule::ObfuscatedExec,
                c.line,
                &c.snippet,
                format!("{}{chain}", c.name),
                c.decoded_arg,
                vec![],
            );
        }
    }
    for c in &f.calls {
        if c.name == "marshal.loads"
            && f.calls
                .iter()
                .any(|e| is_exec_name(&e.name) || e.name.ends_with("FunctionType"))
        {
            add(
                Rule::ObfuscatedExec,
                c.line,
                &c.snippet,
                "marshal.loads of embedded bytecode".into(),
                None,
                vec![],
            );
        }
        if c.name.contains("pyarmor")
            || c.name.contains("__pyarmor__")
            || c.name.starts_with("pytransform")
        {
            add(
                Rule::ObfuscatedExec,
                c.line,
                &c.snippet,
                "PyArmor-protected code".into(),
                None,
                vec![],
            );
        }
        if c.reflective && (is_proc(&c.name) || is_exec_name(&c.name) || is_net(&c.name)) {
            add(
                Rule::ApiObfuscation,
                c.line,
                &c.snippet,
                format!("{} reached by reflection", c.name),
                None,
                vec![],
            );
        }
    }
    for c in &proc_calls {
        let t = all_text(c);
        if (t.contains("curl")
            || t.contains("wget")
            || t.contains("Invoke-WebRequest")
            || t.contains("DownloadString"))
            && (t.contains("| sh")
                || t.contains("|sh")
                || t.contains("| bash")
                || t.contains("|bash")
                || t.contains("python")
                || t.contains("iex")
                || t.contains("&&")
                || t.contains("chmod"))
        {
            add(
                Rule::DownloadExec,
                c.line,
                &c.snippet,
                "shell download cradle".into(),
                decoded_of_layer(c.layer, c.line),
                vec![],
            );
        }
    }
    if f.calls.iter().any(|c| {
        matches!(
            c.name.as_str(),
            "urllib.request.urlretrieve" | "urllib.urlretrieve" | "wget.download"
        )
    }) || (f.calls.iter().any(|c| is_download(&c.name))
        && f.calls.iter().any(|c| c.name == "?.write"))
    {
        let chmod = f.calls.iter().find(|c| c.name == "os.chmod");
        let run = proc_calls.first();
        if let (Some(x), true) = (
            run,
            chmod.is_some()
                || f.strings.iter().any(|(_, _, s)| {
                    s.ends_with(".exe") || s.ends_with(".sh") || s.ends_with(".bin")
                }),
        ) {
            add(
                Rule::DownloadExec,
                x.line,
                &x.snippet,
                format!("downloads a file then runs {}", x.name),
                None,
                ev_urls(&urls),
            );
        }
    }
    for (i, d) in f.decoded.iter().enumerate() {
        if decode::looks_like_code(&d.text) {
            add(
                Rule::EncodedCode,
                d.line,
                &d.text,
                format!("{} decodes to Python code", d.chain.join("+")),
                Some(i),
                vec![],
            );
        }
    }
    if src.contains("__pyarmor__") || src.contains("pyarmor_runtime") {
        add(
            Rule::ObfuscatedExec,
            1,
            "__pyarmor__",
            "PyArmor-protected code".into(),
            None,
            vec![],
        );
    }

    // Destinations.
    if let Some((line, layer, u)) = urls.first() {
        add(
            Rule::RawIpUrl,
            *line,
            u,
            u.clone(),
            decoded_of_layer(*layer, *line),
            ev_urls(&urls),
        );
    }
    if let Some((line, layer, s)) = shady.first() {
        add(
            Rule::ShadyDestination,
            *line,
            s,
            s.clone(),
            decoded_of_layer(*layer, *line),
            vec![],
        );
    }

    // Sensitive data and exfiltration.
    let env_dump = f.calls.iter().find(|c| {
        (matches!(c.name.as_str(), "dict" | "json.dumps" | "str" | "repr")
            && c.args_text.replace(' ', "") == "(os.environ)")
            || c.name == "os.environ.copy"
    });
    let sysinfo = f.calls.iter().any(|c| {
        matches!(
            c.name.as_str(),
            "socket.gethostname" | "getpass.getuser" | "platform.node" | "os.getlogin"
        )
    });
    // A hard-coded destination: a network call given a URL literal, a socket connected to a
    // literal address, or a raw-IP / shady URL anywhere in the file. Libraries that send
    // wherever their caller says (requests reading ~/.netrc) have none.
    let hard_dest = net_calls
        .iter()
        .any(|c| c.strs.iter().any(|s| s.contains("://")))
        || f.calls.iter().any(|c| {
            (c.name == "?.connect" || is_net(&c.name))
                && quoted(&c.args_text)
                    .iter()
                    .any(|q| q.parse::<std::net::Ipv4Addr>().is_ok())
        })
        || !urls.is_empty()
        || !shady.is_empty();
    let sends = !net_calls.is_empty() && hard_dest;
    if let Some((line, layer, s, _)) = sensitive.first() {
        let paths: Vec<(String, String)> = sensitive
            .iter()
            .take(6)
            .map(|(_, _, s, _)| ("path".to_string(), s.clone()))
            .collect();
        let key_material = sensitive
            .iter()
            .any(|(_, _, _, p)| !matches!(*p, "/etc/passwd" | ".netrc" | ".pypirc"));
        if sends && key_material {
            let mut extra = paths.clone();
            extra.extend(ev_urls(&urls));
            add(
                Rule::Exfiltration,
                *line,
                s,
                format!(
                    "{s} with network calls ({})",
                    net_calls.first().map_or("", |c| c.name.as_str())
                ),
                decoded_of_layer(*layer, *line),
                extra,
            );
        }
        add(
            Rule::SensitiveFileRead,
            *line,
            s,
            s.clone(),
            decoded_of_layer(*layer, *line),
            paths,
        );
    }
    if let (Some(c), true) = (env_dump, sends) {
        add(
            Rule::Exfiltration,
            c.line,
            &c.snippet,
            "environment variables with network calls".into(),
            decoded_of_layer(c.layer, c.line),
            ev_urls(&urls),
        );
    }
    if sysinfo && sends && (!urls.is_empty() || !shady.is_empty()) {
        let (line, layer, u) = urls.first().or(shady.first()).cloned().unwrap_or_default();
        add(
            Rule::Exfiltration,
            line,
            &u,
            format!("host/user information sent to {u}"),
            decoded_of_layer(layer, line),
            ev_urls(&urls),
        );
    }

    // Recon: listing user folders.
    if f.calls.iter().any(|c| is_walk(&c.name)) {
        if let Some((line, layer, s)) = recon.first() {
            let extra = recon
                .iter()
                .take(6)
                .map(|(_, _, s)| ("path".to_string(), s.clone()))
                .collect();
            add(
                Rule::DirRecon,
                *line,
                s,
                format!("lists {s}"),
                decoded_of_layer(*layer, *line),
                extra,
            );
        }
    }

    // Clipboard, steganography.
    for c in &f.calls {
        if c.name.starts_with("pyperclip.")
            || c.name.starts_with("win32clipboard.")
            || c.name.ends_with("read_clipboard")
            || c.name.ends_with("clipboard_get")
            || c.name.ends_with(".to_clipboard")
        {
            add(
                Rule::Clipboard,
                c.line,
                &c.snippet,
                c.name.clone(),
                None,
                vec![],
            );
            let writes = c.name.ends_with(".copy")
                || c.name.ends_with("SetClipboardText")
                || c.name.ends_with("SetClipboardData");
            if writes && c.strs.iter().any(|s| looks_like_wallet(s)) {
                add(
                    Rule::ClipboardHijack,
                    c.line,
                    &c.snippet,
                    "hard-coded wallet address written to the clipboard".into(),
                    None,
                    vec![],
                );
            }
        }
        if (c.name.starts_with("stegano.")
            || c.name.contains("lsb.reveal")
            || c.name.contains("Steganography.decode")
            || c.name == "?.reveal")
            && f.calls.iter().any(|e| is_exec_name(&e.name))
        {
            add(
                Rule::Steganography,
                c.line,
                &c.snippet,
                c.name.clone(),
                None,
                vec![],
            );
        }
    }

    // Silent processes.
    for c in &proc_calls {
        let kw = |k: &str| {
            c.kwargs
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        };
        let silent = (kw("stdout").contains("DEVNULL") && kw("stderr").contains("DEVNULL"))
            || kw("creationflags").contains("CREATE_NO_WINDOW")
            || kw("creationflags").contains("0x08000000")
            || kw("startupinfo").contains("SW_HIDE");
        let t = all_text(c);
        if silent
            || (t.contains("/dev/null")
                && t.contains("2>&1")
                && (t.contains(" &") || t.contains("nohup")))
        {
            add(
                Rule::SilentProcess,
                c.line,
                &c.snippet,
                c.name.clone(),
                decoded_of_layer(c.layer, c.line),
                vec![],
            );
        }
    }

    // Unicode tricks.
    if let Some((line, c)) = has_bidi_or_invisible(src) {
        add(
            Rule::Unicode,
            line,
            &format!("U+{:04X}", c as u32),
            format!("U+{:04X} in source", c as u32),
            None,
            vec![],
        );
    }

    // Self-deletion.
    for c in f.calls.iter().filter(|c| is_delete(&c.name)) {
        if c.args_text.contains("__file__")
            || c.args_text.contains("argv[0]")
            || c.snippet.contains("(__file__).unlink")
        {
            add(
                Rule::SelfDelete,
                c.line,
                &c.snippet,
                format!("{} of its own file", c.name),
                decoded_of_layer(c.layer, c.line),
                vec![],
            );
        }
    }
    for c in f
        .calls
        .iter()
        .filter(|c| c.name == "?.unlink" || c.name.ends_with("Path.unlink"))
    {
        if c.snippet.contains("__file__") || c.snippet.contains("argv[0]") {
            add(
                Rule::SelfDelete,
                c.line,
                &c.snippet,
                "unlink of its own file".into(),
                None,
                vec![],
            );
        }
    }

    // Mass encryption: walk + cipher + write + delete/rename.
    let walk = f.calls.iter().find(|c| is_walk(&c.name));
    let cipher = f.calls.iter().find(|c| {
        c.name.contains("Cipher.")
            || c.name.contains("Fernet")
            || c.name == "?.encrypt"
            || c.name.starts_with("Crypto")
            || c.name.starts_with("cryptography.")
    });
    let xor = f.xor_in_loop.first();
    let write = f.calls.iter().find(|c| {
        c.name == "?.write_bytes"
            || (c.name == "open"
                && (c.args_text.contains("'wb'")
                    || c.args_text.contains("\"wb\"")
                    || c.args_text.contains("r+b")
                    || c.args_text.contains("'w'")))
    });
    let remove = f.calls.iter().find(|c| {
        is_delete(&c.name)
            || matches!(
                c.name.as_str(),
                "os.rename" | "os.replace" | "shutil.move" | "?.rename"
            )
    });
    if let (Some(w), true, Some(_), Some(d)) =
        (walk, cipher.is_some() || xor.is_some(), write, remove)
    {
        let how = cipher
            .map(|c| c.name.clone())
            .unwrap_or_else(|| "XOR in a loop".into());
        let line = cipher.map(|c| c.line).or(xor.copied()).unwrap_or(w.line);
        add(
            Rule::MassEncryption,
            line,
            cipher.map(|c| c.snippet.as_str()).unwrap_or(&w.snippet),
            format!("{} + {how} + write + {}", w.name, d.name),
            decoded_of_layer(w.layer, w.line),
            vec![],
        );
    }

    // Reverse shells.
    let dup2 = f.calls.iter().filter(|c| c.name == "os.dup2").count();
    let sock = f.calls.iter().any(|c| c.name.starts_with("socket."));
    let shell_spawn = f.calls.iter().any(|c| {
        c.name == "pty.spawn"
            || (is_proc(&c.name)
                && (all_text(c).contains("/bin/sh")
                    || all_text(c).contains("/bin/bash")
                    || all_text(c).contains("cmd.exe")))
    });
    if sock && dup2 >= 2 && shell_spawn {
        let c = f.calls.iter().find(|c| c.name == "os.dup2");
        if let Some(c) = c {
            add(
                Rule::ReverseShell,
                c.line,
                &c.snippet,
                "socket + os.dup2 + shell".into(),
                decoded_of_layer(c.layer, c.line),
                ev_urls(&urls),
            );
        }
    }
    if let Some((line, layer, s)) = rshell.first() {
        if s.contains("/dev/tcp/")
            || ((sock || !proc_calls.is_empty())
                && (s.contains("nc -e")
                    || s.contains("ncat -e")
                    || s.contains("bash -i")
                    || s.contains("sh -i")))
        {
            add(
                Rule::ReverseShell,
                *line,
                s,
                s.clone(),
                decoded_of_layer(*layer, *line),
                vec![],
            );
        }
    }

    // Miners.
    if let Some((line, layer, s)) = miner.first() {
        add(
            Rule::CryptoMiner,
            *line,
            s,
            s.clone(),
            decoded_of_layer(*layer, *line),
            vec![],
        );
    }

    // Persistence: a persistence location plus a write or a process, done when the module runs
    // (top level, setup.py, decoded code) or next to network calls. Shell-completion installers
    // (typer, click, huggingface_hub) write ~/.bashrc from a function the user calls, offline.
    if let Some((line, layer, s)) = persist.first() {
        let is_write = |c: &Call| {
            (c.name == "open"
                && (c.args_text.contains("'a'")
                    || c.args_text.contains("\"a\"")
                    || c.args_text.contains("'w'")
                    || c.args_text.contains("\"w\"")))
                || c.name == "?.write_text"
        };
        let acts = f
            .calls
            .iter()
            .filter(|c| is_write(c) || is_proc(&c.name))
            .collect::<Vec<_>>();
        let active = is_setup
            || *layer > 0
            || !net_calls.is_empty()
            || acts.iter().any(|c| c.top_level || c.layer > 0);
        if !acts.is_empty() && active {
            add(
                Rule::Persistence,
                *line,
                s,
                s.clone(),
                decoded_of_layer(*layer, *line),
                vec![],
            );
        }
    }

    hits.into_values().collect()
}
