//! The table for people: header, findings grouped by package, packages, warnings, one verdict.
//!
//! Everything that came from the scanned input (names, paths, messages, history lines) passes
//! through [`clean`] first, so a hostile package name cannot move the cursor, rewrite earlier
//! lines or flip text direction on the reader's terminal.

use crate::common::{short_digest, shorten_created_by, sorted_findings, truncate_chars};
use crate::RenderOptions;
use anstyle::{AnsiColor, Style};
use pyward_core::{Action, Finding, LayerRef, Package, ScanReport, TargetKind};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Evidence entries shown per finding unless `verbose`.
const MAX_EVIDENCE: usize = 8;
/// Warnings shown unless `verbose`.
const MAX_WARNINGS: usize = 20;
/// Longest evidence value shown unless `verbose`.
const MAX_VALUE_CHARS: usize = 160;

/// Render the table. Ends with the verdict line and a newline.
pub fn render(report: &ScanReport, opts: &RenderOptions) -> String {
    let p = Painter { color: opts.color };
    let mut out = String::new();
    header(&mut out, report, &p);
    findings(&mut out, report, opts, &p);
    packages(&mut out, report, opts, &p);
    warnings(&mut out, report, opts, &p);
    out.push('\n');
    out.push_str(&verdict_line(report, &p));
    out.push('\n');
    out
}

/// Applies styles only when colour is on.
struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{}{}", style.render(), text, style.render_reset())
        } else {
            text.to_string()
        }
    }

    fn action(&self, a: Action) -> String {
        let color = match a {
            Action::Stop => AnsiColor::Red,
            Action::Warn => AnsiColor::Yellow,
            Action::Go => AnsiColor::Green,
        };
        self.paint(Style::new().bold().fg_color(Some(color.into())), a.as_str())
    }

    fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dimmed(), text)
    }
}

/// Input text made safe for a terminal: control characters and invisible or direction-changing
/// format characters are shown as `\u{..}` escapes; everything else (including look-alike
/// letters, which are evidence) is kept as found.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let invisible = matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{00AD}' | '\u{061C}' | '\u{180E}');
        if c.is_control() || invisible {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

fn target_kind_label(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Directory => "directory",
        TargetKind::File => "file",
        TargetKind::Archive => "package archive",
        TargetKind::DockerArchive => "docker-archive image",
        TargetKind::OciLayout => "OCI layout image",
        TargetKind::OciArchive => "OCI archive image",
        TargetKind::Specs => "requirement specs",
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn header(out: &mut String, r: &ScanReport, p: &Painter) {
    let _ = writeln!(
        out,
        "{} {} ({})",
        p.bold(&format!(
            "{} {}",
            clean(&r.tool.name),
            clean(&r.tool.version)
        )),
        p.bold(&clean(&r.target.name)),
        target_kind_label(r.target.kind)
    );
    if let Some(img) = &r.image {
        let mut parts = Vec::new();
        if !img.repo_tags.is_empty() {
            parts.push(clean(&img.repo_tags.join(", ")));
        }
        if let Some(d) = &img.config_digest {
            parts.push(format!("config {}", clean(&short_digest(d))));
        }
        match (&img.os, &img.architecture) {
            (Some(os), Some(arch)) => parts.push(clean(&format!("{os}/{arch}"))),
            (Some(x), None) | (None, Some(x)) => parts.push(clean(x)),
            (None, None) => {}
        }
        parts.push(plural(img.layers.len(), "layer", "layers"));
        let _ = writeln!(out, "image: {}", parts.join("  "));
    }
    let _ = writeln!(
        out,
        "scanned {}: {}, {}, {}",
        plural(r.files_scanned as usize, "file", "files"),
        plural(r.packages.len(), "package", "packages"),
        plural(r.findings.len(), "finding", "findings"),
        plural(r.warnings.len(), "warning", "warnings"),
    );
}

/// What a group of findings is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    Package {
        name: String,
        version: Option<String>,
    },
    File(String),
    Target,
}

fn subject_of(f: &Finding) -> Subject {
    match (&f.package, &f.path) {
        (Some(pk), _) => Subject::Package {
            name: pk.name.clone(),
            version: pk.version.clone(),
        },
        (None, Some(path)) => Subject::File(path.clone()),
        (None, None) => Subject::Target,
    }
}

/// Finds the package of the report a finding is about (same purl and name, preferably the same
/// path) without a scan of all packages per finding.
struct PackageIndex<'a> {
    by_key: HashMap<(&'a str, &'a str), Vec<&'a Package>>,
}

impl<'a> PackageIndex<'a> {
    fn new(r: &'a ScanReport) -> Self {
        let mut by_key: HashMap<(&str, &str), Vec<&Package>> = HashMap::new();
        for p in &r.packages {
            by_key
                .entry((p.purl.as_str(), p.name.as_str()))
                .or_default()
                .push(p);
        }
        PackageIndex { by_key }
    }

    fn package_of(&self, f: &Finding) -> Option<&'a Package> {
        let pk = f.package.as_ref()?;
        let candidates = self.by_key.get(&(pk.purl.as_str(), pk.name.as_str()))?;
        candidates
            .iter()
            .find(|p| Some(&p.location.path) == f.path.as_ref())
            .or_else(|| candidates.first())
            .copied()
    }
}

fn findings(out: &mut String, r: &ScanReport, opts: &RenderOptions, p: &Painter) {
    let sorted = sorted_findings(r);
    if sorted.is_empty() {
        return;
    }
    // Groups in order of their first (most severe) finding.
    let mut groups: Vec<(Subject, Vec<&Finding>)> = Vec::new();
    let mut group_of: HashMap<Subject, usize> = HashMap::new();
    for f in sorted {
        let s = subject_of(f);
        match group_of.get(&s).and_then(|&i| groups.get_mut(i)) {
            Some((_, v)) => v.push(f),
            None => {
                group_of.insert(s.clone(), groups.len());
                groups.push((s, vec![f]));
            }
        }
    }
    let index = PackageIndex::new(r);
    let _ = writeln!(
        out,
        "\n{}",
        p.bold(&format!("FINDINGS ({})", r.findings.len()))
    );
    for (subject, fs) in &groups {
        let worst = Action::combine(fs.iter().map(|f| f.effective_action()));
        let title = match subject {
            Subject::Package { name, version } => {
                let mut t = p.bold(&clean(name));
                if let Some(v) = version {
                    t.push(' ');
                    t.push_str(&clean(v));
                }
                if let Some(pkg) = fs.first().and_then(|f| index.package_of(f)) {
                    t.push_str(&p.dim(&format!("  {}", pkg.source.label())));
                }
                t
            }
            Subject::File(path) => format!("file {}", p.bold(&clean(path))),
            Subject::Target => p.bold(&clean(&r.target.name)),
        };
        let _ = writeln!(out, "\n{}  {}", pad_action(p, worst), title);
        let mut previous_location = None;
        for f in fs {
            previous_location = finding(out, f, opts, p, previous_location);
        }
    }
}

/// The action label padded to the width of `STOP` (padding outside the colour codes).
fn pad_action(p: &Painter, a: Action) -> String {
    let pad = 4usize.saturating_sub(a.as_str().len());
    format!("{}{}", p.action(a), " ".repeat(pad))
}

/// One finding; its location is left out when it repeats the previous finding's. Returns the
/// location shown (or repeated).
fn finding(
    out: &mut String,
    f: &Finding,
    opts: &RenderOptions,
    p: &Painter,
    previous_location: Option<String>,
) -> Option<String> {
    const INDENT: &str = "        ";
    let mut action = pad_action(p, f.action);
    if let Some(by) = f.policy.as_ref().and_then(|m| m.allowlisted_by.as_ref()) {
        action = format!(
            "{action} → {} (allowlisted by {})",
            p.action(Action::Go),
            clean(by)
        );
    }
    let _ = writeln!(
        out,
        "  {}  {:<8}  {}  {}",
        action,
        f.severity.as_str(),
        p.dim(&clean(&f.rule_id)),
        clean(&f.message)
    );
    let location = location_text(f);
    if let Some(loc) = location
        .as_ref()
        .filter(|l| Some(*l) != previous_location.as_ref())
    {
        let _ = writeln!(out, "{INDENT}at {loc}");
    }
    let limit = if opts.verbose {
        usize::MAX
    } else {
        MAX_EVIDENCE
    };
    let max_chars = if opts.verbose {
        usize::MAX
    } else {
        MAX_VALUE_CHARS
    };
    // Key evidence first: what is imitated and how, then IOCs, then the rest as found.
    let rank = |k: &str| match k {
        "imitates" => 0,
        "transformation" => 1,
        "confidence" => 2,
        k if k.starts_with("ioc") => 3,
        _ => 4,
    };
    let mut evidence: Vec<_> = f.evidence.iter().collect();
    evidence.sort_by_key(|e| rank(&e.key));
    for e in evidence.iter().take(limit) {
        let _ = writeln!(
            out,
            "{INDENT}{}: {}",
            clean(&e.key),
            clean(&truncate_chars(&e.value, max_chars))
        );
    }
    if evidence.len() > limit {
        let _ = writeln!(
            out,
            "{INDENT}… {} more evidence (use --verbose)",
            evidence.len() - limit
        );
    }
    if !f.references.is_empty() {
        let refs: Vec<String> = f.references.iter().map(|r| clean(r)).collect();
        let _ = writeln!(out, "{INDENT}references: {}", refs.join(", "));
    }
    if !f.mitre.is_empty() {
        let ids: Vec<String> = f
            .mitre
            .iter()
            .map(|t| {
                if opts.verbose {
                    format!("{} ({})", clean(&t.id), clean(&t.name))
                } else {
                    clean(&t.id)
                }
            })
            .collect();
        let _ = writeln!(out, "{INDENT}MITRE ATT&CK: {}", ids.join(", "));
    }
    location
}

/// `path:line, layer N sha256:… (RUN …)`, or `None` when the finding has no location.
fn location_text(f: &Finding) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(path) = &f.path {
        match f.line {
            Some(l) => parts.push(format!("{}:{l}", clean(path))),
            None => parts.push(clean(path)),
        }
    }
    if let Some(layer) = &f.layer {
        parts.push(layer_text(layer));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn layer_text(l: &LayerRef) -> String {
    let mut s = format!("layer {} {}", l.index, clean(&short_digest(&l.digest)));
    if let Some(by) = &l.created_by {
        let _ = write!(s, " ({})", clean(&shorten_created_by(by, 60)));
    }
    s
}

fn packages(out: &mut String, r: &ScanReport, opts: &RenderOptions, p: &Painter) {
    if r.packages.is_empty() {
        let _ = writeln!(out, "\npackages: none found");
        return;
    }
    if !opts.verbose {
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        for pkg in &r.packages {
            *counts.entry(pkg.source.label()).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = counts
            .iter()
            .map(|(label, n)| format!("{n} {label}"))
            .collect();
        let _ = writeln!(
            out,
            "\npackages: {} ({})",
            r.packages.len(),
            list.join(", ")
        );
        return;
    }
    let mut pkgs: Vec<&Package> = r.packages.iter().collect();
    pkgs.sort_by(|a, b| {
        a.normalized
            .cmp(&b.normalized)
            .then_with(|| a.version.cmp(&b.version))
            .then_with(|| a.location.path.cmp(&b.location.path))
    });
    let rows: Vec<[String; 4]> = pkgs
        .iter()
        .map(|pkg| {
            let mut loc = clean(&pkg.location.path);
            if let Some(l) = pkg.location.line {
                let _ = write!(loc, ":{l}");
            }
            if let Some(layer) = &pkg.location.layer {
                let _ = write!(loc, " [layer {}]", layer.index);
            }
            [
                clean(&truncate_chars(&pkg.name, 40)),
                clean(&truncate_chars(pkg.version.as_deref().unwrap_or("-"), 24)),
                pkg.source.label().to_string(),
                loc,
            ]
        })
        .collect();
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w0, w1, w2) = (width(0), width(1), width(2));
    let _ = writeln!(
        out,
        "\n{}",
        p.bold(&format!("PACKAGES ({})", r.packages.len()))
    );
    for [name, version, source, loc] in &rows {
        let _ = writeln!(out, "  {name:<w0$}  {version:<w1$}  {source:<w2$}  {loc}");
    }
}

fn warnings(out: &mut String, r: &ScanReport, opts: &RenderOptions, p: &Painter) {
    if r.warnings.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{}",
        p.bold(&format!("WARNINGS ({})", r.warnings.len()))
    );
    let limit = if opts.verbose {
        usize::MAX
    } else {
        MAX_WARNINGS
    };
    for w in r.warnings.iter().take(limit) {
        let _ = writeln!(out, "  ! {}: {}", clean(&w.input), clean(&w.message));
    }
    if r.warnings.len() > limit {
        let _ = writeln!(
            out,
            "  … {} more warnings (use --verbose)",
            r.warnings.len() - limit
        );
    }
}

/// The one verdict line, e.g. `STOP: 3 findings (2 STOP, 1 WARN) in 2 packages — policy failed`,
/// for callers that print it on its own (e.g. after writing a machine format to a file).
pub fn verdict(report: &ScanReport, color: bool) -> String {
    verdict_line(report, &Painter { color })
}

fn verdict_line(r: &ScanReport, p: &Painter) -> String {
    let label = p.action(r.final_action);
    if r.findings.is_empty() {
        return format!(
            "{label}: no findings in {}",
            plural(r.packages.len(), "package", "packages")
        );
    }
    let count = |a: Action| {
        r.findings
            .iter()
            .filter(|f| !f.is_allowlisted() && f.effective_action() == a)
            .count()
    };
    let allowlisted = r.findings.iter().filter(|f| f.is_allowlisted()).count();
    let mut parts = Vec::new();
    for a in [Action::Stop, Action::Warn, Action::Go] {
        let n = count(a);
        if n > 0 {
            parts.push(format!("{n} {}", a.as_str()));
        }
    }
    if allowlisted > 0 {
        parts.push(format!("{allowlisted} allowlisted"));
    }
    let mut packages: Vec<(&str, Option<&str>)> = Vec::new();
    let mut files: Vec<&str> = Vec::new();
    for f in &r.findings {
        match (&f.package, &f.path) {
            (Some(pk), _) => packages.push((&pk.normalized, pk.version.as_deref())),
            (None, Some(path)) => files.push(path),
            (None, None) => {}
        }
    }
    packages.sort();
    packages.dedup();
    files.sort();
    files.dedup();
    let mut scope = Vec::new();
    if !packages.is_empty() {
        scope.push(plural(packages.len(), "package", "packages"));
    }
    if !files.is_empty() {
        scope.push(plural(files.len(), "file", "files"));
    }
    let scope = if scope.is_empty() {
        String::new()
    } else {
        format!(" in {}", scope.join(" and "))
    };
    let outcome = match r.final_action {
        Action::Stop => "policy failed",
        Action::Warn => "passed with warnings",
        Action::Go => "passed",
    };
    format!(
        "{label}: {} ({}){scope} — {outcome}",
        plural(r.findings.len(), "finding", "findings"),
        parts.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_escapes_terminal_controls() {
        assert_eq!(clean("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(clean("x\r\ny"), "x\\u{d}\\u{a}y");
        assert_eq!(clean("evil\u{202e}txt.py"), "evil\\u{202e}txt.py");
        // Look-alike letters are evidence and stay as found.
        assert_eq!(clean("jeIlyfish"), "jeIlyfish");
        assert_eq!(clean("реquests"), "реquests");
    }
}
