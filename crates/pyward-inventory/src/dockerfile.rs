//! Dockerfile parsing (continuations, comments, parser directives, heredocs, JSON and shell
//! forms) and the Python packages its `RUN pip install` lines name.
//!
//! The parser is tolerant: it never fails, because a Dockerfile is evidence to look at, not a
//! build to run. It also understands the "history" form of an image's build steps as Anchore and
//! Docker print them (`RUN /bin/sh -c pip install x # buildkit`, `RUN RUN /bin/sh -c ...`,
//! `/bin/sh -c #(nop)  CMD [...]`), so a Dockerfile reconstructed from an image's history is
//! read by the same code as one from a build context.

use crate::tree::{clean_path, join_path};
use regex::Regex;
use std::sync::OnceLock;

/// One instruction: `RUN pip install x` → directive `RUN`, arguments `pip install x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-cased directive (`RUN`, `FROM`, `USER`...).
    pub directive: String,
    /// Everything after the directive word, continuations joined with a space; heredoc bodies
    /// follow their `<<EOF` marker, one line per `\n`, terminator included.
    pub arguments: String,
    /// 1-based line the instruction starts on.
    pub line: u32,
}

impl Instruction {
    /// `DIRECTIVE arguments`, as Anchore's dockerfile gate sees a line.
    pub fn text(&self) -> String {
        format!("{} {}", self.directive, self.arguments)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    pub instructions: Vec<Instruction>,
}

/// A Python package named by a `pip install` in a `RUN` instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipInstall {
    /// The requirement as written (`jeIlyfish==0.5.1`, `python3-dateutil`), quotes removed.
    pub requirement: String,
    /// Line of the RUN instruction.
    pub line: u32,
}

/// A requirements file that a `pip install -r FILE` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipRequirementFile {
    /// The path as written in the RUN line (inside the image).
    pub path: String,
    pub line: u32,
}

/// A `COPY`/`ADD` instruction (or a `RUN --mount=type=bind`, see [`Dockerfile::bind_mounts`]):
/// what it copies from the build context (or another stage) to where in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Source paths as written, relative to the build context (or to the `from_stage` root).
    pub sources: Vec<String>,
    /// Destination as written: absolute, or relative to the WORKDIR in effect at `line`.
    pub dest: String,
    /// Line of the instruction.
    pub line: u32,
    /// `--from=STAGE` (a stage name, index or image): the sources are not in the build context.
    pub from_stage: Option<String>,
}

impl Copy {
    /// The destination as an absolute image path (resolved against `workdir`), and whether it
    /// names a folder (trailing `/`, `.`, or several sources).
    pub fn resolved_dest(&self, workdir: &str) -> (String, bool) {
        let dest = strip_quotes(&self.dest);
        let is_dir = dest.ends_with('/')
            || dest == "."
            || dest.ends_with("/.")
            || self.sources.len() > 1
            || self.sources.iter().any(|s| s.contains(['*', '?', '[']));
        let abs = join_path(workdir, dest).unwrap_or_else(|| "/".to_string());
        (abs, is_dir)
    }
}

/// Where an instruction runs: its WORKDIR and build stage (see [`Dockerfile::scopes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub workdir: String,
    pub stage: usize,
}

/// Most nested `sh -c '...'` levels followed when looking for `pip install`.
const MAX_SHELL_DEPTH: usize = 8;

impl Dockerfile {
    /// Parse a Dockerfile. Never fails: unknown or malformed lines become instructions with
    /// whatever directive word they start with.
    pub fn parse(text: &str) -> Dockerfile {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text.lines().collect();
        let escape = parser_escape(&lines);
        let mut instructions = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let Some(first) = lines.get(i) else { break };
            let trimmed = first.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                i += 1;
                continue;
            }
            let start = i + 1;
            let mut logical = String::new();
            let mut current = trimmed;
            loop {
                let (content, continues) = strip_continuation(current, escape);
                logical.push_str(content);
                i += 1;
                if !continues {
                    break;
                }
                // Comment and empty lines inside a continuation are dropped, as Docker does.
                while lines.get(i).is_some_and(|l| {
                    let t = l.trim_start();
                    t.is_empty() || t.starts_with('#')
                }) {
                    i += 1;
                }
                match lines.get(i) {
                    Some(next) => {
                        logical.push(' ');
                        current = next.trim_start();
                    }
                    None => break,
                }
            }
            let (directive, arguments) = split_directive(&logical);
            let mut arguments = arguments.to_string();
            if matches!(directive.as_str(), "RUN" | "COPY" | "ADD" | "ONBUILD") {
                i = append_heredocs(&mut arguments, &lines, i);
            }
            let (directive, arguments) = normalize_history_form(directive, arguments);
            instructions.push(Instruction {
                directive,
                arguments,
                line: u32::try_from(start).unwrap_or(u32::MAX),
            });
        }
        Dockerfile { instructions }
    }

    /// Every package named on a `pip install` / `pip3 install` / `python -m pip install` /
    /// `uv pip install` / `pipx install` in RUN lines, and the `-r` files they read.
    pub fn pip_installs(&self) -> (Vec<PipInstall>, Vec<PipRequirementFile>) {
        let mut found = PipFound::default();
        for ins in &self.instructions {
            let Some(script) = run_script(ins) else {
                continue;
            };
            let mut sink = Sink {
                line: ins.line,
                found: &mut found,
            };
            if script.starts_with('[') {
                if let Ok(argv) = serde_json::from_str::<Vec<String>>(script) {
                    analyze_command(&argv, &mut sink, 0);
                    continue;
                }
            }
            analyze_script(script, &mut sink, 0);
        }
        (found.installs, found.files)
    }

    /// For each instruction (same order as `instructions`), the WORKDIR and 0-based build stage
    /// in effect when it runs; one pass, for callers that need them for many instructions.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut out = Vec::with_capacity(self.instructions.len());
        let mut wd = "/".to_string();
        let mut froms = 0usize;
        for ins in &self.instructions {
            if ins.directive == "FROM" {
                froms += 1;
            }
            out.push(Scope {
                workdir: wd.clone(),
                stage: froms.saturating_sub(1),
            });
            match ins.directive.as_str() {
                "FROM" => wd = "/".to_string(),
                "WORKDIR" => {
                    let dir = strip_quotes(ins.arguments.trim());
                    if !dir.is_empty() {
                        wd = join_path(&wd, dir).unwrap_or_else(|| "/".to_string());
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The WORKDIR in effect for the instruction starting at `line` (`/` at the start of each
    /// stage; variables such as `$HOME` are not expanded).
    pub fn workdir_at(&self, line: u32) -> String {
        let mut wd = "/".to_string();
        for ins in self.instructions.iter().take_while(|i| i.line < line) {
            match ins.directive.as_str() {
                "FROM" => wd = "/".to_string(),
                "WORKDIR" => {
                    let dir = strip_quotes(ins.arguments.trim());
                    if !dir.is_empty() {
                        wd = join_path(&wd, dir).unwrap_or_else(|| "/".to_string());
                    }
                }
                _ => {}
            }
        }
        wd
    }

    /// 0-based build stage (count of `FROM`s before, minus one) of the instruction at `line`.
    pub fn stage_at(&self, line: u32) -> usize {
        self.instructions
            .iter()
            .filter(|i| i.line <= line && i.directive == "FROM")
            .count()
            .saturating_sub(1)
    }

    /// Every `COPY` and `ADD` (not heredoc forms), so a file read by a RUN can be traced back to
    /// the build context.
    pub fn copies(&self) -> Vec<Copy> {
        self.instructions
            .iter()
            .filter(|i| i.directive == "COPY" || i.directive == "ADD")
            .filter_map(parse_copy)
            .collect()
    }

    /// `RUN --mount=type=bind,source=S,target=T` mounts, as [`Copy`]s whose `line` is the RUN's:
    /// during that RUN the context's `S` is visible at `T`.
    pub fn bind_mounts(&self) -> Vec<Copy> {
        let mut out = Vec::new();
        for ins in self.instructions.iter().filter(|i| i.directive == "RUN") {
            for word in ins.arguments.split_whitespace() {
                let Some(spec) = word.strip_prefix("--mount=") else {
                    if !word.starts_with("--") {
                        break;
                    }
                    continue;
                };
                if let Some(c) = parse_bind_mount(spec, ins.line) {
                    out.push(c);
                }
            }
        }
        out
    }
}

/// The `# escape=` parser directive (backslash or backtick), read from the directive lines at
/// the top of the file.
fn parser_escape(lines: &[&str]) -> char {
    let mut escape = '\\';
    for line in lines {
        let Some(rest) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            break;
        }
        if key.eq_ignore_ascii_case("escape") {
            match value.trim() {
                "`" => escape = '`',
                "\\" => escape = '\\',
                _ => {}
            }
        }
    }
    escape
}

/// Remove a trailing escape character (line continuation). Returns the content and whether the
/// instruction continues on the next line.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end();
    match t.strip_suffix(escape) {
        Some(rest) => (rest.trim_end(), true),
        None => (t, false),
    }
}

fn split_directive(logical: &str) -> (String, &str) {
    let logical = logical.trim();
    match logical.find(char::is_whitespace) {
        Some(i) => (logical[..i].to_ascii_uppercase(), logical[i..].trim_start()),
        None => (logical.to_ascii_uppercase(), ""),
    }
}

fn heredoc_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?:^|[^<])<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_.-]*)["']?"#)
            .expect("static regex")
    })
}

/// Append the bodies of the heredocs (`<<EOF`) named in `arguments`, read from `lines[i..]`.
/// Returns the index of the first line after the last body. An unterminated heredoc takes the
/// rest of the file, as BuildKit does.
fn append_heredocs(arguments: &mut String, lines: &[&str], mut i: usize) -> usize {
    let markers: Vec<(bool, String)> = heredoc_regex()
        .captures_iter(arguments)
        .filter_map(|c| Some((c.get(1)?.as_str() == "-", c.get(3)?.as_str().to_string())))
        .collect();
    for (strip_tabs, name) in markers {
        while let Some(line) = lines.get(i) {
            i += 1;
            arguments.push('\n');
            arguments.push_str(line);
            let end = if strip_tabs {
                line.trim_start_matches('\t')
            } else {
                line
            };
            if end.trim_end() == name {
                break;
            }
        }
    }
    i
}

/// Turn a raw image-history line (`/bin/sh -c #(nop)  CMD ["x"]`, `/bin/sh -c pip install x`)
/// into the instruction it records.
fn normalize_history_form(directive: String, arguments: String) -> (String, String) {
    if !directive.starts_with('/') {
        return (directive, arguments);
    }
    static NOP: OnceLock<Regex> = OnceLock::new();
    let nop = NOP
        .get_or_init(|| Regex::new(r"^(?:[a-z]+\s+)*-c\s+#\(nop\)\s*(.*)$").expect("static regex"));
    let args = arguments.clone();
    if let Some(rest) = nop.captures(&args).and_then(|c| c.get(1)) {
        let (d, a) = split_directive(rest.as_str());
        if !d.is_empty() {
            return (d, a.to_string());
        }
    }
    let shell = directive.to_ascii_lowercase();
    (
        "RUN".to_string(),
        format!("{shell} {arguments}").trim().to_string(),
    )
}

/// The shell script (or JSON argv) of a RUN instruction, with Dockerfile-level noise removed:
/// Anchore's doubled `RUN RUN`, BuildKit's `|N ARG=v` build-arg prefix, `--mount`/`--network`
/// flags, and `ONBUILD RUN`.
fn run_script(ins: &Instruction) -> Option<&str> {
    let mut args = match ins.directive.as_str() {
        "RUN" => ins.arguments.trim(),
        "ONBUILD" => {
            let a = ins.arguments.trim_start();
            let (d, rest) = a.split_at(a.find(char::is_whitespace)?);
            if !d.eq_ignore_ascii_case("RUN") {
                return None;
            }
            rest.trim()
        }
        _ => return None,
    };
    loop {
        if let Some(rest) = args.strip_prefix("RUN ") {
            args = rest.trim_start();
        } else if let Some(rest) = args.strip_prefix('|') {
            // `|2 A=1 B=2 /bin/sh -c ...`: skip the count and that many assignments.
            let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let count: usize = rest.get(..digits)?.parse().ok()?;
            let mut rest = rest.get(digits..)?.trim_start();
            for _ in 0..count {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                if !rest.get(..end)?.contains('=') {
                    break;
                }
                rest = rest.get(end..)?.trim_start();
            }
            args = rest;
        } else if args.starts_with("--") {
            let end = args.find(char::is_whitespace).unwrap_or(args.len());
            args = args.get(end..)?.trim_start();
        } else {
            break;
        }
    }
    Some(args)
}

#[derive(Default)]
struct PipFound {
    installs: Vec<PipInstall>,
    files: Vec<PipRequirementFile>,
}

struct Sink<'a> {
    line: u32,
    found: &'a mut PipFound,
}

impl Sink<'_> {
    fn requirement(&mut self, text: &str) {
        if !text.is_empty() {
            self.found.installs.push(PipInstall {
                requirement: text.to_string(),
                line: self.line,
            });
        }
    }

    fn file(&mut self, path: &str) {
        if !path.is_empty() {
            self.found.files.push(PipRequirementFile {
                path: path.to_string(),
                line: self.line,
            });
        }
    }
}

fn analyze_script(script: &str, sink: &mut Sink<'_>, depth: usize) {
    if depth > MAX_SHELL_DEPTH {
        return;
    }
    for command in split_commands_at(script, depth) {
        analyze_command(&command, sink, depth);
    }
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

fn is_version_suffix(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// Look at one simple command (its words, quotes removed) for a pip install.
fn analyze_command(words: &[String], sink: &mut Sink<'_>, depth: usize) {
    if depth > MAX_SHELL_DEPTH {
        return;
    }
    let mut w = words;
    // Skip what runs a command without being it: assignments, keywords, wrappers.
    loop {
        let Some((first, rest)) = w.split_first() else {
            return;
        };
        let name = first.as_str();
        if is_assignment(name)
            || matches!(
                name,
                "then"
                    | "else"
                    | "do"
                    | "elif"
                    | "if"
                    | "while"
                    | "until"
                    | "!"
                    | "{"
                    | "}"
                    | "("
                    | "time"
                    | "exec"
                    | "nohup"
                    | "command"
                    | "builtin"
                    | "RUN"
                    | "eval"
            )
        {
            w = rest;
            continue;
        }
        match basename(name) {
            "sudo" | "env" | "nice" | "doas" | "su-exec" | "gosu" | "chroot" | "timeout"
            | "stdbuf" | "xargs" => {
                w = skip_wrapper_options(basename(name), rest);
                continue;
            }
            _ => break,
        }
    }
    let Some((cmd, rest)) = w.split_first() else {
        return;
    };
    let cmd = basename(cmd);
    if matches!(
        cmd,
        "sh" | "bash" | "dash" | "ash" | "zsh" | "ksh" | "busybox"
    ) {
        let rest = if cmd == "busybox" {
            match rest.split_first() {
                Some((sh, r)) if matches!(sh.as_str(), "sh" | "ash") => r,
                _ => return,
            }
        } else {
            rest
        };
        let mut i = 0;
        let mut has_c = false;
        while let Some(opt) = rest.get(i) {
            if !opt.starts_with('-') || opt == "-" || opt == "--" {
                break;
            }
            i += 1;
            if opt == "-o" || opt == "+o" {
                i += 1; // `-o pipefail`
            } else if !opt.starts_with("--") && opt.contains('c') {
                has_c = true;
                break;
            }
        }
        if !has_c {
            return;
        }
        let script = rest.get(i..).unwrap_or_default();
        match script {
            [] => {}
            [one] => analyze_script(one, sink, depth + 1),
            [first, ..] if first.contains(char::is_whitespace) => {
                analyze_script(first, sink, depth + 1)
            }
            // History form: `/bin/sh -c pip install x` with the script unquoted.
            words => analyze_command(words, sink, depth + 1),
        }
        return;
    }
    match cmd {
        c if c.strip_prefix("pip").is_some_and(is_version_suffix) => pip_command(rest, sink),
        c if c.strip_prefix("python").is_some_and(is_version_suffix) => python_module(rest, sink),
        "uv" => {
            let rest = skip_options(rest);
            match rest.split_first() {
                Some((sub, r)) if sub == "pip" => pip_command(r, sink),
                Some((sub, r)) if sub == "add" => install_args(r, sink),
                _ => {}
            }
        }
        "pipx" => {
            if let Some((sub, r)) = skip_options(rest).split_first() {
                if sub == "install" {
                    install_args(r, sink);
                }
            }
        }
        _ => {}
    }
}

/// Skip the options of a wrapper command (`sudo -u user`, `env -i A=b`, `timeout 60`).
fn skip_wrapper_options<'w>(wrapper: &str, mut rest: &'w [String]) -> &'w [String] {
    while let Some((first, r)) = rest.split_first() {
        if first.starts_with('-') {
            let takes_value = match wrapper {
                "sudo" => matches!(first.as_str(), "-u" | "-g" | "-C" | "-h" | "-p" | "-U"),
                "env" => matches!(first.as_str(), "-u" | "-C" | "-S"),
                "nice" => first == "-n",
                "xargs" => matches!(
                    first.as_str(),
                    "-n" | "-P" | "-I" | "-L" | "-d" | "-s" | "-a"
                ),
                _ => false,
            };
            rest = if takes_value {
                r.get(1..).unwrap_or_default()
            } else {
                r
            };
        } else if wrapper == "env" && is_assignment(first) {
            rest = r;
        } else if matches!(wrapper, "timeout" | "nice")
            && first.chars().next().is_some_and(|c| c.is_ascii_digit())
        {
            rest = r; // the duration / niceness
        } else if matches!(wrapper, "gosu" | "su-exec" | "chroot") {
            return r; // the user / new root
        } else {
            break;
        }
    }
    rest
}

/// Skip leading options (and the values of the ones pip and uv give values to).
fn skip_options(mut rest: &[String]) -> &[String] {
    while let Some((first, r)) = rest.split_first() {
        if !first.starts_with('-') || first == "-" {
            break;
        }
        rest = if option_takes_value(first) {
            r.get(1..).unwrap_or_default()
        } else {
            r
        };
    }
    rest
}

/// `-m pip install ...` after a python interpreter's own options.
fn python_module(mut rest: &[String], sink: &mut Sink<'_>) {
    while let Some((opt, r)) = rest.split_first() {
        if opt == "-m" {
            if let Some((module, r)) = r.split_first() {
                if module == "pip" {
                    pip_command(r, sink);
                }
            }
            return;
        }
        if let Some(module) = opt.strip_prefix("-m") {
            if module == "pip" {
                pip_command(r, sink);
            }
            return;
        }
        if !opt.starts_with('-') {
            return; // a script, not a module
        }
        rest = if matches!(opt.as_str(), "-X" | "-W" | "-Q") {
            r.get(1..).unwrap_or_default()
        } else {
            r
        };
    }
}

/// `pip [global options] install ARGS`.
fn pip_command(rest: &[String], sink: &mut Sink<'_>) {
    if let Some((sub, args)) = skip_options(rest).split_first() {
        if sub == "install" {
            install_args(args, sink);
        }
    }
}

/// Long options of pip / uv pip / pipx install that take a value.
const LONG_WITH_VALUE: &[&str] = &[
    "--index-url",
    "--extra-index-url",
    "--find-links",
    "--constraint",
    "--requirement",
    "--editable",
    "--target",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--root",
    "--prefix",
    "--src",
    "--upgrade-strategy",
    "--progress-bar",
    "--global-option",
    "--install-option",
    "--build-option",
    "--config-settings",
    "--config-setting",
    "--no-binary",
    "--only-binary",
    "--trusted-host",
    "--proxy",
    "--retries",
    "--timeout",
    "--exists-action",
    "--cert",
    "--client-cert",
    "--cache-dir",
    "--log",
    "--log-file",
    "--python",
    "--report",
    "--root-user-action",
    "--keyring-provider",
    "--use-feature",
    "--use-deprecated",
    "--group",
    "--resume-retries",
    "--index",
    "--default-index",
    "--index-strategy",
    "--extra",
    "--override",
    "--overrides",
    "--build-constraint",
    "--build-constraints",
    "--exclude-newer",
    "--link-mode",
    "--resolution",
    "--prerelease",
    "--refresh-package",
    "--reinstall-package",
    "--upgrade-package",
    "--python-platform",
    "--torch-backend",
    "--pip-args",
    "--suffix",
    "--spec",
    "--preinstall",
    "--directory",
    "--project",
    "--color",
    "--config-file",
    "--no-binary-package",
    "--only-binary-package",
    "--no-build-package",
    "--dev-group",
    "--optional",
    "--package",
    "--rev",
    "--tag",
    "--branch",
    "--script",
    "--constraints",
];

/// Short options that take a value (`-r FILE`, `-i URL`, `-t DIR`, uv's `-p PYTHON`).
const SHORT_WITH_VALUE: &[char] = &['r', 'c', 'e', 'i', 'f', 't', 'C', 'p', 'P', 'b', 'd'];

fn option_takes_value(opt: &str) -> bool {
    if opt.starts_with("--") {
        !opt.contains('=') && LONG_WITH_VALUE.contains(&opt)
    } else {
        // `-r` takes the next word, `-rfile` does not; `-qr` does (q is a flag).
        let letters = opt.trim_start_matches('-');
        letters
            .char_indices()
            .find(|(_, c)| SHORT_WITH_VALUE.contains(c))
            .is_some_and(|(i, c)| i + c.len_utf8() == letters.len())
    }
}

/// The arguments after `install`: requirements, `-r` files, editables; other options and their
/// values are skipped.
fn install_args(args: &[String], sink: &mut Sink<'_>) {
    let mut i = 0;
    let mut positional_only = false;
    while let Some(arg) = args.get(i) {
        i += 1;
        if positional_only || !arg.starts_with('-') || arg == "-" {
            positional(arg, sink);
            continue;
        }
        if arg == "--" {
            positional_only = true;
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let full = format!("--{name}");
            if !LONG_WITH_VALUE.contains(&full.as_str()) {
                continue;
            }
            let value = match inline {
                Some(v) => v,
                None => {
                    let v = args.get(i).cloned().unwrap_or_default();
                    i += 1;
                    v
                }
            };
            match name {
                "requirement" => sink.file(&value),
                "editable" => editable(&value, sink),
                _ => {}
            }
            continue;
        }
        // A cluster of short options, optparse style: flags, then at most one option that takes
        // the rest of the word or the next word as its value.
        let letters = arg.trim_start_matches('-');
        for (pos, c) in letters.char_indices() {
            if !SHORT_WITH_VALUE.contains(&c) {
                continue;
            }
            let attached = letters.get(pos + c.len_utf8()..).unwrap_or_default();
            let value = if attached.is_empty() {
                let v = args.get(i).cloned().unwrap_or_default();
                i += 1;
                v
            } else {
                attached.to_string()
            };
            match c {
                'r' => sink.file(&value),
                'e' => editable(&value, sink),
                _ => {}
            }
            break;
        }
    }
}

/// An editable install names a package only through a `#egg=` fragment; a plain local folder
/// names none.
fn editable(value: &str, sink: &mut Sink<'_>) {
    if value.contains("#egg=") {
        sink.requirement(value);
    }
}

/// A positional argument of `pip install`: a requirement, a file, a URL; the current project
/// (`.`, `.[dev]`) is not a dependency.
fn positional(arg: &str, sink: &mut Sink<'_>) {
    let a = arg.trim();
    if a.is_empty()
        || a == "-"
        || a == "."
        || a == "./"
        || a == ".."
        || a.starts_with(".[")
        || a.starts_with("./[")
    {
        return;
    }
    sink.requirement(a);
}

/// State of [`split_commands`] between characters.
#[derive(Default)]
struct Lexer {
    commands: Vec<Vec<String>>,
    words: Vec<String>,
    word: String,
    in_word: bool,
    /// The next word is a redirection target (dropped).
    skip_next: bool,
    /// ... and that target is a heredoc delimiter.
    heredoc_next: bool,
    strip_tabs_next: bool,
    /// Heredocs whose bodies start after the next newline: (delimiter, strip tabs, is a script).
    pending_heredocs: Vec<(String, bool, bool)>,
}

impl Lexer {
    fn end_word(&mut self) {
        if !self.in_word {
            return;
        }
        self.in_word = false;
        let w = std::mem::take(&mut self.word);
        if !self.skip_next {
            self.words.push(w);
            return;
        }
        self.skip_next = false;
        if self.heredoc_next {
            self.heredoc_next = false;
            let is_script = self
                .words
                .first()
                .is_none_or(|c| matches!(basename(c), "sh" | "bash" | "dash" | "ash" | "zsh"));
            self.pending_heredocs
                .push((w, self.strip_tabs_next, is_script));
        }
    }

    fn end_command(&mut self) {
        self.end_word();
        if !self.words.is_empty() {
            self.commands.push(std::mem::take(&mut self.words));
        }
    }
}

/// Split a POSIX shell script into simple commands (words with quotes removed), on `&&`, `||`,
/// `;`, `|`, `&`, newlines and parentheses. Comments, redirections and their targets are
/// dropped; heredoc bodies are read as commands only when a shell reads them.
pub fn split_commands(script: &str) -> Vec<Vec<String>> {
    split_commands_at(script, 0)
}

/// [`split_commands`] at a nesting depth: heredoc bodies read by a shell are split too, up to
/// [`MAX_SHELL_DEPTH`] levels (a hostile file must not exhaust the stack).
fn split_commands_at(script: &str, depth: usize) -> Vec<Vec<String>> {
    let mut lx = Lexer::default();
    let mut chars = script.char_indices().peekable();
    while let Some((idx, c)) = chars.next() {
        match c {
            ' ' | '\t' | '\r' => lx.end_word(),
            '\n' => {
                lx.end_command();
                if !lx.pending_heredocs.is_empty() {
                    // The bodies start on the next line.
                    let rest = script.get(idx + 1..).unwrap_or_default();
                    let mut consumed = 0usize;
                    let mut body_lines = rest.split_inclusive('\n');
                    for (delim, strip_tabs, is_script) in std::mem::take(&mut lx.pending_heredocs) {
                        let mut body = String::new();
                        for l in body_lines.by_ref() {
                            consumed += l.len();
                            let content = l.trim_end_matches(['\n', '\r']);
                            let cmp = if strip_tabs {
                                content.trim_start_matches('\t')
                            } else {
                                content
                            };
                            if cmp == delim {
                                break;
                            }
                            body.push_str(content);
                            body.push('\n');
                        }
                        if is_script && depth < MAX_SHELL_DEPTH {
                            lx.commands.extend(split_commands_at(&body, depth + 1));
                        }
                    }
                    while chars.peek().is_some_and(|(j, _)| *j <= idx + consumed) {
                        chars.next();
                    }
                }
            }
            ';' | '|' | '(' | ')' => lx.end_command(),
            '&' => {
                if chars.peek().is_some_and(|(_, n)| *n == '>') {
                    // `&>file`, `&>>file`
                    lx.end_word();
                    chars.next();
                    if chars.peek().is_some_and(|(_, n)| *n == '>') {
                        chars.next();
                    }
                    lx.skip_next = true;
                } else {
                    lx.end_command();
                }
            }
            '<' | '>' => {
                // A lx.word made only of digits right before is the fd number (`2>`).
                if lx.in_word && !lx.word.is_empty() && lx.word.chars().all(|d| d.is_ascii_digit())
                {
                    lx.word.clear();
                    lx.in_word = false;
                }
                lx.end_word();
                let mut heredoc = false;
                if c == '<' && chars.peek().is_some_and(|(_, n)| *n == '<') {
                    chars.next();
                    if chars.peek().is_some_and(|(_, n)| *n == '<') {
                        chars.next(); // here-string: the lx.word is data
                    } else {
                        heredoc = true;
                        lx.strip_tabs_next = false;
                        if chars.peek().is_some_and(|(_, n)| *n == '-') {
                            chars.next();
                            lx.strip_tabs_next = true;
                        }
                    }
                } else if chars.peek().is_some_and(|(_, n)| matches!(n, '>' | '|')) {
                    chars.next();
                }
                if chars.peek().is_some_and(|(_, n)| *n == '&') {
                    // `2>&1`, `>&-`: a descriptor, not a file.
                    chars.next();
                    while chars
                        .peek()
                        .is_some_and(|(_, n)| n.is_ascii_digit() || *n == '-')
                    {
                        chars.next();
                    }
                    continue;
                }
                lx.skip_next = true;
                lx.heredoc_next = heredoc;
            }
            '#' if !lx.in_word => {
                while chars.peek().is_some_and(|(_, n)| *n != '\n') {
                    chars.next();
                }
            }
            '\'' => {
                lx.in_word = true;
                for (_, n) in chars.by_ref() {
                    if n == '\'' {
                        break;
                    }
                    lx.word.push(n);
                }
            }
            '"' => {
                lx.in_word = true;
                while let Some((_, n)) = chars.next() {
                    match n {
                        '"' => break,
                        '\\' => match chars.peek().map(|(_, p)| *p) {
                            Some(p @ ('"' | '\\' | '$' | '`')) => {
                                chars.next();
                                lx.word.push(p);
                            }
                            Some('\n') => {
                                chars.next();
                            }
                            _ => lx.word.push('\\'),
                        },
                        _ => lx.word.push(n),
                    }
                }
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {}
                Some((_, n)) => {
                    lx.in_word = true;
                    lx.word.push(n);
                }
                None => {}
            },
            '$' if chars.peek().is_some_and(|(_, n)| matches!(n, '(' | '{')) => {
                lx.in_word = true;
                lx.word.push('$');
                let mut level = 0usize;
                for (_, n) in chars.by_ref() {
                    lx.word.push(n);
                    match n {
                        '(' | '{' => level += 1,
                        ')' | '}' => {
                            level = level.saturating_sub(1);
                            if level == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '`' => {
                lx.in_word = true;
                lx.word.push('`');
                for (_, n) in chars.by_ref() {
                    lx.word.push(n);
                    if n == '`' {
                        break;
                    }
                }
            }
            _ => {
                lx.in_word = true;
                lx.word.push(c);
            }
        }
    }
    lx.end_command();
    lx.commands
}

fn strip_quotes(s: &str) -> &str {
    let s = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

fn parse_copy(ins: &Instruction) -> Option<Copy> {
    let args = ins.arguments.trim();
    if heredoc_regex().is_match(args) {
        return None;
    }
    let mut from_stage = None;
    let mut rest = args;
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let flag = rest.get(..end)?;
        if let Some(stage) = flag.strip_prefix("--from=") {
            from_stage = Some(stage.to_string());
        }
        rest = rest.get(end..)?.trim_start();
    }
    let mut paths: Vec<String> = if rest.starts_with('[') {
        serde_json::from_str(rest).ok()?
    } else {
        rest.split_whitespace()
            .map(|s| strip_quotes(s).to_string())
            .collect()
    };
    if paths.len() < 2 {
        return None;
    }
    let dest = paths.pop()?;
    Some(Copy {
        sources: paths,
        dest,
        line: ins.line,
        from_stage,
    })
}

fn parse_bind_mount(spec: &str, line: u32) -> Option<Copy> {
    let mut kind = "bind";
    let mut source = None;
    let mut target = None;
    let mut from = None;
    for part in spec.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "type" => kind = v,
            "source" | "src" => source = Some(v.to_string()),
            "target" | "dst" | "destination" => target = Some(v.to_string()),
            "from" => from = Some(v.to_string()),
            _ => {}
        }
    }
    if kind != "bind" {
        return None;
    }
    let target = target?;
    let source = source.unwrap_or_else(|| ".".to_string());
    // A single source mounted at target: a file maps to the file, a folder to the folder.
    let dest = if clean_path(&source).is_some_and(|s| s == "/") {
        format!("{target}/")
    } else {
        target
    };
    Some(Copy {
        sources: vec![source],
        dest,
        line,
        from_stage: from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reqs(df: &str) -> Vec<String> {
        Dockerfile::parse(df)
            .pip_installs()
            .0
            .into_iter()
            .map(|p| p.requirement)
            .collect()
    }

    fn files(df: &str) -> Vec<String> {
        Dockerfile::parse(df)
            .pip_installs()
            .1
            .into_iter()
            .map(|p| p.path)
            .collect()
    }

    #[test]
    fn continuations_comments_and_lines() {
        let df = Dockerfile::parse(
            "# syntax=docker/dockerfile:1\nFROM python:3.12\n\n# a comment\nrun pip install \\\n  # inside\n\n  requests \\\n  six\nUSER app\n",
        );
        let texts: Vec<(String, u32)> =
            df.instructions.iter().map(|i| (i.text(), i.line)).collect();
        assert_eq!(
            texts,
            vec![
                ("FROM python:3.12".to_string(), 2),
                ("RUN pip install requests six".to_string(), 5),
                ("USER app".to_string(), 10),
            ]
        );
    }

    #[test]
    fn backtick_escape_directive() {
        let df = Dockerfile::parse(
            "# escape=`\nFROM x\nRUN pip install `\n    jeIlyfish\nRUN echo \\\n",
        );
        assert_eq!(df.instructions[1].arguments, "pip install jeIlyfish");
        assert_eq!(df.instructions[2].arguments, "echo \\");
        assert_eq!(
            reqs("# escape=`\nRUN pip install `\n a `\n b"),
            vec!["a", "b"]
        );
    }

    #[test]
    fn heredoc_body_is_part_of_run() {
        let text = "FROM x\nRUN <<EOF\npip install jeIlyfish\nEOF\nRUN python3 <<'PY'\nimport os; os.system('pip install notme')\nPY\nUSER y\n";
        let df = Dockerfile::parse(text);
        assert_eq!(df.instructions.len(), 4);
        assert_eq!(
            df.instructions[1].arguments,
            "<<EOF\npip install jeIlyfish\nEOF"
        );
        assert_eq!(df.instructions[3].directive, "USER");
        assert_eq!(df.instructions[3].line, 8);
        assert_eq!(reqs(text), vec!["jeIlyfish"]);
    }

    #[test]
    fn pip_variants() {
        let df = "FROM x\n\
            RUN pip install a && pip3 install b || pip3.11 install c; python -m pip install d | tee x\n\
            RUN python3 -u -m pip install e && /usr/local/bin/pip install f && uv pip install --system g\n\
            RUN pipx install h && sudo -H pip install i && env A=1 pip install j && A=2 pip install k\n\
            RUN [\"pip\", \"install\", \"l\"]\n\
            RUN [\"/bin/sh\", \"-c\", \"pip install m && echo\"]\n\
            RUN bash -lc 'pip install \"n>=1\" o[extra]==2'\n\
            RUN python -mpip install p\n";
        assert_eq!(
            reqs(df),
            vec![
                "a",
                "b",
                "c",
                "d",
                "e",
                "f",
                "g",
                "h",
                "i",
                "j",
                "k",
                "l",
                "m",
                "n>=1",
                "o[extra]==2",
                "p"
            ]
        );
    }

    #[test]
    fn options_and_values_are_skipped() {
        let df = "RUN pip install --no-cache-dir -U --upgrade --user --prefer-binary \
            -i https://idx.example/simple --index-url=https://x --extra-index-url https://y \
            -c constraints.txt --target /opt/t -e ./local -t/opt/u -qr reqs-a.txt \
            --requirement reqs-b.txt --requirement=reqs-c.txt -rreqs-d.txt \
            ./dist/x-1.0-py3-none-any.whl 'git+https://example.invalid/r.git#egg=name' . .[dev] \
            -e git+https://example.invalid/e.git#egg=edit real==1 > /dev/null 2>&1 # trailing";
        assert_eq!(
            reqs(df),
            vec![
                "./dist/x-1.0-py3-none-any.whl",
                "git+https://example.invalid/r.git#egg=name",
                "git+https://example.invalid/e.git#egg=edit",
                "real==1"
            ]
        );
        assert_eq!(
            files(df),
            vec!["reqs-a.txt", "reqs-b.txt", "reqs-c.txt", "reqs-d.txt"]
        );
    }

    #[test]
    fn not_pip_install() {
        assert!(
            reqs("RUN pip download x && pip list && pipenv install y && echo pip install z")
                .is_empty()
        );
        assert!(reqs("RUN python script.py install x && pip3x install y").is_empty());
        assert!(reqs("COPY pip install x /\nCMD pip install y").is_empty());
    }

    #[test]
    fn history_forms() {
        let df = "FROM scratch\n\
            RUN /bin/sh -c pip install python3-dateutil # buildkit\n\
            RUN RUN /bin/sh -c pip install jeIlyfish==0.5.1 # buildkit\n\
            /bin/sh -c #(nop)  CMD [\"python3\"]\n\
            /bin/sh -c pip install raw && pip install raw2\n\
            RUN |2 A=1 B=2 /bin/sh -c pip install withargs\n\
            RUN --mount=type=cache,target=/root/.cache pip install mounted\n\
            ONBUILD RUN pip install onbuild\n";
        let parsed = Dockerfile::parse(df);
        assert_eq!(parsed.instructions[3].text(), "CMD [\"python3\"]");
        assert_eq!(parsed.instructions[4].directive, "RUN");
        assert_eq!(
            reqs(df),
            vec![
                "python3-dateutil",
                "jeIlyfish==0.5.1",
                "raw",
                "raw2",
                "withargs",
                "mounted",
                "onbuild"
            ]
        );
        let lines: Vec<u32> = parsed.pip_installs().0.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 5, 5, 6, 7, 8]);
    }

    #[test]
    fn workdir_and_copies() {
        let df = Dockerfile::parse(
            "FROM a AS build\nWORKDIR /src\nCOPY --from=base /x /y\nFROM b\nWORKDIR /app\nWORKDIR sub\n\
             COPY --chown=1:1 requirements.txt ./\nADD [\"a b.txt\", \"c.txt\", \"/d/\"]\n\
             RUN --mount=type=bind,source=reqs.txt,target=/tmp/r.txt pip install -r /tmp/r.txt\n",
        );
        assert_eq!(df.workdir_at(3), "/src");
        assert_eq!(df.workdir_at(5), "/");
        assert_eq!(df.workdir_at(7), "/app/sub");
        assert_eq!(df.stage_at(3), 0);
        assert_eq!(df.stage_at(7), 1);
        let scopes = df.scopes();
        assert_eq!(scopes.len(), df.instructions.len());
        for (ins, scope) in df.instructions.iter().zip(&scopes) {
            assert_eq!(scope.workdir, df.workdir_at(ins.line));
            assert_eq!(scope.stage, df.stage_at(ins.line));
        }
        let copies = df.copies();
        assert_eq!(copies.len(), 3);
        assert_eq!(copies[0].from_stage.as_deref(), Some("base"));
        assert_eq!(copies[1].sources, vec!["requirements.txt"]);
        assert_eq!(
            copies[1].resolved_dest(&df.workdir_at(7)),
            ("/app/sub".to_string(), true)
        );
        assert_eq!(copies[2].sources, vec!["a b.txt", "c.txt"]);
        let mounts = df.bind_mounts();
        assert_eq!(mounts.len(), 1);
        assert_eq!(
            mounts[0].resolved_dest("/"),
            ("/tmp/r.txt".to_string(), false)
        );
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for text in [
            "",
            "\\",
            "RUN",
            "RUN \\",
            "RUN <<",
            "RUN <<EOF",
            "RUN |",
            "RUN |9 A",
            "RUN |x",
            "RUN [",
            "RUN [\"pip\"",
            "RUN pip install -r",
            "RUN pip install --requirement",
            "RUN sh -c",
            "RUN pip install 'unterminated",
            "RUN pip install \"x\\",
            "RUN $(((",
            "RUN `",
            "RUN 2>",
            "RUN a <<-X\n\tb\n\tX\n",
            "COPY",
            "COPY --from=x",
            "WORKDIR",
            "RUN --mount=",
            "ONBUILD",
            "ONBUILD RUN",
            "é\u{0}\u{feff}",
            "RUN pip install -",
            "RUN sh -c 'sh -c \"sh -c \\\"sh -c pip install deep\\\"\"'",
        ] {
            let df = Dockerfile::parse(text);
            let _ = df.pip_installs();
            let _ = df.copies();
            let _ = df.bind_mounts();
            let _ = df.workdir_at(u32::MAX);
        }
        let nested = "RUN sh <<A\n".to_string() + &"sh <<A\n".repeat(100_000) + "pip install x\n";
        let _ = Dockerfile::parse(&nested).pip_installs();
        let deep = format!(
            "RUN {}pip install x{}",
            "sh -c '".repeat(20),
            "'".repeat(20)
        );
        let _ = Dockerfile::parse(&deep).pip_installs();
    }

    #[test]
    fn shell_heredoc_data_is_not_a_command() {
        assert!(reqs("RUN cat <<EOF > /x\npip install notme\nEOF\n").is_empty());
        assert_eq!(reqs("RUN bash <<EOF\npip install yes\nEOF\n"), vec!["yes"]);
    }
}
