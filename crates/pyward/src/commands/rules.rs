//! `pyward rules check` and `pyward rules replay`: Falco rules files, loaded and run by
//! pyward's own engine (crate `pyward-rules`).

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use pyward_rules::{
    Diagnostic, Engine, EngineOptions, LoadOptions, Priority, ReplayReader, RuleMatching, Ruleset,
    RulesetBuilder, Severity,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Longest events line accepted (the replay format's own limit).
const MAX_EVENT_LINE: usize = pyward_rules::event::replay::MAX_LINE_BYTES;

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load and compile Falco rules files; print what they contain and every error and warning.
    #[command(
        after_help = "Examples:\n  pyward rules check rules/pyward_rules.yaml\n  pyward rules check falco_rules.yaml my_overrides.yaml\n  pyward rules check --format json falco_rules.yaml\n\nFiles are loaded in the order given, as Falco loads its rules_files: later files may\nappend to, override or disable items of earlier ones. Errors and warnings carry\nfile:line:column. Exit codes: 0 no errors (warnings allowed), 2 errors."
    )]
    Check(CheckArgs),

    /// Evaluate rules over recorded events (JSON lines, see docs/events.md) and print Falco
    /// alerts.
    #[command(
        after_help = "Examples:\n  pyward rules replay --rules rules/pyward_rules.yaml events.jsonl\n  pyward rules replay --rules falco_rules.yaml --rules rules/pyward_rules.yaml --format json events.jsonl\n  sensor-dump | pyward rules replay --rules rules/pyward_rules.yaml --rule-matching all -\n  pyward rules replay --rules rules/pyward_rules.yaml --fail-on critical events.jsonl\n\nThe events file is read as a stream, one line at a time (lines up to 1 MiB), so its size\ndoes not matter. Exit codes: 0 no alert (at or above --fail-on), 1 alert, 2 error in the\nrules or the events (a malformed line is named by its number; --skip-invalid warns and\ngoes on).\n\nThreat intelligence (built-in records and `pyward intel import`ed OSV MAL- records)\nis appended to the pyward_malicious_ips / _networks / _packages lists of\nrules/pyward_rules.yaml; --no-intel uses the rules files exactly as written."
    )]
    Replay(ReplayArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RulesFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum MatchingArg {
    /// Stop at the first matching rule, in load order (Falco's default).
    First,
    /// Alert for every matching rule.
    All,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Rules files, loaded in this order.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A rules file (repeatable; loaded in the order given).
    #[arg(long = "rules", short = 'r', value_name = "FILE", required = true)]
    pub rules: Vec<PathBuf>,
    /// Events file in pyward's JSON-lines format, or `-` for standard input.
    #[arg(value_name = "EVENTS")]
    pub events: PathBuf,
    /// Ignore rules below this priority (emergency, alert, critical, error, warning, notice,
    /// informational, debug).
    #[arg(long, value_name = "PRIORITY", default_value = "debug", value_parser = parse_priority)]
    pub min_priority: Priority,
    /// `first`: one alert per event, from the first matching rule; `all`: every matching rule.
    #[arg(long, value_enum, default_value_t = MatchingArg::First)]
    pub rule_matching: MatchingArg,
    /// `text`: Falco's text line; `json`: one Falco JSON alert per line (falcosidekick's input).
    #[arg(long, short = 'f', value_enum, default_value_t = RulesFormat::Text)]
    pub format: RulesFormat,
    /// Exit 1 only if an alert at or above this priority fired (default: any alert).
    #[arg(long, value_name = "PRIORITY", value_parser = parse_priority)]
    pub fail_on: Option<Priority>,
    /// Warn about malformed event lines and go on, instead of stopping with exit 2.
    #[arg(long)]
    pub skip_invalid: bool,
    #[command(flatten)]
    pub alerting: AlertArgs,
}

/// What every command that turns events into alerts shares (`rules replay`, `watch`, `run`):
/// the host name written in alerts and the threat intelligence fed into the rules.
#[derive(Debug, Args)]
pub struct AlertArgs {
    /// Host name written in alerts (default: $FALCO_HOSTNAME, else this machine's).
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Threat-intelligence database whose indicators feed the rules' `pyward_malicious_*`
    /// lists (default: $PYWARD_DATA_DIR/intel.sqlite or the XDG data folder).
    #[arg(long, value_name = "PATH")]
    pub intel_db: Option<PathBuf>,
    /// Do not feed threat intelligence into the rules; use the rules files exactly as written.
    #[arg(long, conflicts_with = "intel_db")]
    pub no_intel: bool,
}

impl AlertArgs {
    /// The host name to write in alerts.
    pub fn hostname(&self) -> String {
        self.hostname.clone().unwrap_or_else(default_hostname)
    }
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    s.parse()
}

pub fn run(cmd: RulesCommand) -> anyhow::Result<u8> {
    match cmd {
        RulesCommand::Check(args) => check(&args),
        RulesCommand::Replay(args) => replay(&args),
    }
}

/// Load `files` in order into one ruleset.
fn load(files: &[PathBuf]) -> Ruleset {
    let mut builder = RulesetBuilder::new(LoadOptions::default());
    for f in files {
        builder.load_file(f);
    }
    builder.build()
}

/// What `rules check --format json` prints.
#[derive(Debug, Serialize)]
struct CheckSummary<'a> {
    files: Vec<String>,
    rules: usize,
    enabled_rules: usize,
    macros: usize,
    lists: usize,
    event_types: Vec<String>,
    fields: Vec<String>,
    warnings: Vec<&'a Diagnostic>,
    errors: Vec<&'a Diagnostic>,
}

fn check(args: &CheckArgs) -> anyhow::Result<u8> {
    let ruleset = load(&args.files);
    let (errors, warnings): (Vec<&Diagnostic>, Vec<&Diagnostic>) = ruleset
        .diagnostics()
        .iter()
        .partition(|d| d.severity == Severity::Error);
    let summary = CheckSummary {
        files: args.files.iter().map(|f| f.display().to_string()).collect(),
        rules: ruleset.rules().len(),
        enabled_rules: ruleset.enabled_rules(),
        macros: ruleset.macros().len(),
        lists: ruleset.lists().len(),
        event_types: ruleset.event_types(),
        fields: ruleset.fields_used(),
        warnings,
        errors,
    };
    let mut out = std::io::stdout().lock();
    match args.format {
        RulesFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &summary)?;
            writeln!(out)?;
        }
        RulesFormat::Text => {
            // Diagnostics go to stderr so that stdout stays a clean summary.
            for d in summary.errors.iter().chain(summary.warnings.iter()) {
                eprintln!("{d}");
            }
            writeln!(out, "files: {}", summary.files.join(", "))?;
            writeln!(
                out,
                "rules: {} ({} enabled), macros: {}, lists: {}",
                summary.rules, summary.enabled_rules, summary.macros, summary.lists
            )?;
            writeln!(
                out,
                "event types ({}): {}",
                summary.event_types.len(),
                summary.event_types.join(" ")
            )?;
            writeln!(
                out,
                "fields ({}): {}",
                summary.fields.len(),
                summary.fields.join(" ")
            )?;
            writeln!(
                out,
                "{} error(s), {} warning(s)",
                summary.errors.len(),
                summary.warnings.len()
            )?;
        }
    }
    Ok(if summary.errors.is_empty() {
        crate::exit::PASS
    } else {
        crate::exit::ERROR
    })
}

fn replay(args: &ReplayArgs) -> anyhow::Result<u8> {
    let mut ruleset = load(&args.rules);
    if !args.alerting.no_intel && !ruleset.has_errors() {
        if let Some(feed) = intel_feed(&ruleset, args.alerting.intel_db.as_deref())? {
            let mut builder = RulesetBuilder::new(LoadOptions::default());
            for f in &args.rules {
                builder.load_file(f);
            }
            builder.load_str(INTEL_DOC_NAME, &feed.document);
            ruleset = builder.build();
            eprintln!("{}", feed.summary);
        }
    }
    let mut load_errors = 0usize;
    for d in ruleset.diagnostics() {
        if d.severity == Severity::Error {
            load_errors += 1;
        }
        eprintln!("{d}");
    }
    if load_errors > 0 {
        anyhow::bail!(
            "{load_errors} error(s) in the rules files; fix them (`pyward rules check` lists them) \
             before replaying events"
        );
    }
    let options = EngineOptions {
        rule_matching: match args.rule_matching {
            MatchingArg::First => RuleMatching::First,
            MatchingArg::All => RuleMatching::All,
        },
        min_priority: args.min_priority,
        ..EngineOptions::default()
    };
    let engine = Engine::new(&ruleset, options).context("cannot compile the rules")?;
    let hostname = args.alerting.hostname();

    let events_name = args.events.display().to_string();
    let reader: Box<dyn BufRead> = if args.events.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&args.events)
            .with_context(|| format!("cannot open the events file {events_name}"))?;
        Box::new(std::io::BufReader::with_capacity(64 * 1024, f))
    };
    let events_name = if args.events.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        events_name
    };

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut stats = ReplayStats::default();
    let mut lines = CappedLines::new(reader, MAX_EVENT_LINE);
    let mut line_no = 0usize;
    let mut reader = ReplayReader::new();
    loop {
        let line = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("cannot read the events file {events_name}")));
            }
        };
        line_no += 1;
        let parsed = match line {
            Line::TooLong(n) => Err(format!(
                "line is longer than {MAX_EVENT_LINE} bytes ({n} bytes read before giving up)"
            )),
            Line::NotUtf8 => Err("line is not valid UTF-8".to_string()),
            Line::Text(text) => {
                if text.trim().is_empty() {
                    continue;
                }
                reader.parse_line(text).map_err(|e| e.to_string())
            }
        };
        let event = match parsed {
            Ok(Some(ev)) => ev,
            // A process definition: events after it refer to it.
            Ok(None) => continue,
            Err(msg) => {
                if args.skip_invalid {
                    stats.skipped += 1;
                    eprintln!("warning: {events_name}:{line_no}: skipped: {msg}");
                    continue;
                }
                let _ = out.flush();
                anyhow::bail!(
                    "{events_name}:{line_no}: invalid event: {msg} (see docs/events.md for the \
                     format; --skip-invalid skips such lines)"
                );
            }
        };
        stats.events += 1;
        for m in engine.evaluate(&event) {
            let alert = m.to_alert(&event, &hostname);
            let priority = alert.priority;
            *stats.by_priority.entry(priority).or_default() += 1;
            stats.alerts += 1;
            if args.fail_on.is_none_or(|min| priority.at_least(min)) {
                stats.failing += 1;
            }
            let written = match args.format {
                RulesFormat::Json => serde_json::to_writer(&mut out, &alert)
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n")),
                // `output` is Falco's text line: `HH:MM:SS.nnnnnnnnn: Priority output`.
                RulesFormat::Text => writeln!(out, "{}", alert.output),
            };
            if let Err(e) = written {
                // A closed pipe (`| head`) ends the replay quietly.
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    return Ok(exit_for(&stats));
                }
                return Err(anyhow::Error::new(e).context("cannot write alerts"));
            }
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(anyhow::Error::new(e).context("cannot write alerts"));
        }
    }
    eprintln!("{}", stats.summary());
    Ok(exit_for(&stats))
}

/// Name under which the generated intel document is loaded (shown in its diagnostics).
const INTEL_DOC_NAME: &str = "<pyward threat intelligence>";

/// The documented lists of rules/pyward_rules.yaml that intel indicators extend.
const LIST_IPS: &str = "pyward_malicious_ips";
const LIST_NETWORKS: &str = "pyward_malicious_networks";
const LIST_PACKAGES: &str = "pyward_malicious_packages";

/// Upper bound on the generated document: lists are expanded into conditions, and a condition
/// may be at most 1 MiB (`LoadOptions::max_condition_bytes`).
const MAX_FEED_BYTES: usize = 256 * 1024;

/// Package names shorter than this are not fed: the rule matches names as substrings of the
/// installer's command line, and a short name would match innocent packages.
const MIN_FED_NAME_LEN: usize = 5;

/// A generated rules document appending intel indicators to the `pyward_malicious_*` lists.
struct IntelFeed {
    document: String,
    summary: String,
}

/// Build the feed for the lists `ruleset` defines (none defined: nothing to feed). Indicators
/// are validated strictly (IP, CIDR, package-name syntax) because list items are pasted into
/// conditions as text: an imported record must never be able to change a rule's logic.
fn intel_feed(ruleset: &Ruleset, db: Option<&Path>) -> anyhow::Result<Option<IntelFeed>> {
    let defined = |name: &str| ruleset.lists().iter().any(|l| l.name == name);
    if ![LIST_IPS, LIST_NETWORKS, LIST_PACKAGES]
        .iter()
        .any(|l| defined(l))
    {
        return Ok(None);
    }
    let db = db
        .map(Path::to_path_buf)
        .or_else(pyward_intel::Intel::default_db_path);
    let intel = pyward_intel::Intel::open(db.as_deref()).with_context(|| match &db {
        Some(p) => format!(
            "cannot open the threat-intelligence database {}; pass --intel-db, or --no-intel to \
             replay without it",
            p.display()
        ),
        None => "cannot load threat intelligence".to_string(),
    })?;
    let mut ips = std::collections::BTreeSet::new();
    let mut networks = std::collections::BTreeSet::new();
    for (ioc, _) in intel.network_iocs() {
        let ioc = ioc.trim();
        if let Some((addr, prefix)) = ioc.split_once('/') {
            let (Ok(ip), Ok(bits)) = (addr.parse::<std::net::IpAddr>(), prefix.parse::<u8>())
            else {
                continue;
            };
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if bits <= max {
                networks.insert(format!("{ip}/{bits}"));
            }
        } else if let Ok(ip) = ioc.parse::<std::net::IpAddr>() {
            ips.insert(ip.to_string());
        }
    }
    let mut packages = std::collections::BTreeSet::new();
    for r in intel.records() {
        if r.is_withdrawn() || r.kind != pyward_intel::record::RecordKind::Malicious {
            continue;
        }
        for name in r.package_names() {
            let ok = name.len() >= MIN_FED_NAME_LEN
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && name
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric());
            if ok {
                packages.insert(name);
            }
        }
    }
    let mut document = String::new();
    let mut counts = Vec::new();
    let mut truncated = false;
    for (list, items) in [
        (LIST_IPS, &ips),
        (LIST_NETWORKS, &networks),
        (LIST_PACKAGES, &packages),
    ] {
        if items.is_empty() || !defined(list) {
            continue;
        }
        let mut quoted = Vec::new();
        let mut size = document.len();
        for item in items.iter() {
            size += item.len() + 4;
            if size > MAX_FEED_BYTES {
                truncated = true;
                break;
            }
            quoted.push(serde_json::to_string(item)?);
        }
        if quoted.is_empty() {
            continue;
        }
        counts.push(format!("{} to {list}", quoted.len()));
        document.push_str(&format!(
            "- list: {list}\n  items: [{}]\n  override:\n    items: append\n",
            quoted.join(", ")
        ));
    }
    if document.is_empty() {
        return Ok(None);
    }
    let mut summary = format!("threat intelligence: appended {}", counts.join(", "));
    if truncated {
        summary.push_str(&format!(
            " (truncated at {} KiB: too many indicators)",
            MAX_FEED_BYTES / 1024
        ));
    }
    Ok(Some(IntelFeed { document, summary }))
}

fn exit_for(stats: &ReplayStats) -> u8 {
    if stats.failing > 0 {
        crate::exit::STOP
    } else {
        crate::exit::PASS
    }
}

#[derive(Default)]
struct ReplayStats {
    events: u64,
    alerts: u64,
    /// Alerts at or above `--fail-on`.
    failing: u64,
    skipped: u64,
    by_priority: BTreeMap<Priority, u64>,
}

impl ReplayStats {
    fn summary(&self) -> String {
        let mut s = format!("{} event(s), {} alert(s)", self.events, self.alerts);
        if !self.by_priority.is_empty() {
            let parts: Vec<String> = self
                .by_priority
                .iter()
                .map(|(p, n)| format!("{p}: {n}"))
                .collect();
            s.push_str(&format!(" ({})", parts.join(", ")));
        }
        if self.skipped > 0 {
            s.push_str(&format!(", {} invalid line(s) skipped", self.skipped));
        }
        s
    }
}

/// For `pyward watch`/`run`: the threat-intelligence rules document for `ruleset` (name,
/// YAML text, one-line summary), exactly as `replay` appends it.
pub(crate) fn intel_document(
    ruleset: &Ruleset,
    db: Option<&Path>,
) -> anyhow::Result<Option<(&'static str, String, String)>> {
    Ok(intel_feed(ruleset, db)?.map(|f| (INTEL_DOC_NAME, f.document, f.summary)))
}

/// `$FALCO_HOSTNAME` (as Falco), else the kernel's host name, else `localhost`.
fn default_hostname() -> String {
    if let Some(h) = std::env::var_os("FALCO_HOSTNAME") {
        if !h.is_empty() {
            return h.to_string_lossy().into_owned();
        }
    }
    read_hostname(Path::new("/proc/sys/kernel/hostname"))
        .or_else(|| read_hostname(Path::new("/etc/hostname")))
        .unwrap_or_else(|| "localhost".to_string())
}

fn read_hostname(path: &Path) -> Option<String> {
    let mut buf = String::new();
    let f = std::fs::File::open(path).ok()?;
    // A host name is at most 64 bytes; never read more than a little of the file.
    std::io::Read::read_to_string(&mut std::io::Read::take(f, 256), &mut buf).ok()?;
    let h = buf.lines().next()?.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// One line of the events stream.
enum Line<'a> {
    Text(&'a str),
    /// Longer than the cap; the rest of the line was read and dropped.
    TooLong(usize),
    NotUtf8,
}

/// Reads lines without ever holding more than `max` bytes of one line in memory.
struct CappedLines<R> {
    reader: R,
    max: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> CappedLines<R> {
    fn new(reader: R, max: usize) -> Self {
        CappedLines {
            reader,
            max,
            buf: Vec::new(),
        }
    }

    /// The next line without its `\n` (and `\r`), or `None` at the end.
    fn next_line(&mut self) -> std::io::Result<Option<Line<'_>>> {
        self.buf.clear();
        let mut total = 0usize;
        let mut too_long = false;
        let mut saw_any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                break;
            }
            saw_any = true;
            let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], Some(i + 1)),
                None => (chunk, None),
            };
            total += part.len();
            if !too_long {
                if self.buf.len() + part.len() > self.max {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(part);
                }
            }
            let consumed = done.unwrap_or(chunk.len());
            self.reader.consume(consumed);
            if done.is_some() {
                break;
            }
        }
        if !saw_any {
            return Ok(None);
        }
        if too_long {
            return Ok(Some(Line::TooLong(total)));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some(match std::str::from_utf8(&self.buf) {
            Ok(s) => Line::Text(s),
            Err(_) => Line::NotUtf8,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<String> {
        let mut r = CappedLines::new(std::io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(match l {
                Line::Text(t) => format!("T:{t}"),
                Line::TooLong(n) => format!("L:{n}"),
                Line::NotUtf8 => "U".to_string(),
            });
        }
        out
    }

    #[test]
    fn capped_lines_split_and_cap() {
        assert_eq!(
            collect(b"ab\ncd\r\n\nlast", 10),
            ["T:ab", "T:cd", "T:", "T:last"]
        );
        assert_eq!(collect(b"0123456789abc\nok\n", 10), ["L:13", "T:ok"]);
        assert_eq!(collect(b"\xff\xfe\nok", 10), ["U", "T:ok"]);
        assert!(collect(b"", 10).is_empty());
    }

    #[test]
    fn stats_summary_names_priorities() {
        let mut s = ReplayStats {
            events: 3,
            alerts: 2,
            skipped: 1,
            ..Default::default()
        };
        s.by_priority.insert(Priority::Critical, 2);
        assert_eq!(
            s.summary(),
            "3 event(s), 2 alert(s) (Critical: 2), 1 invalid line(s) skipped"
        );
    }
}
