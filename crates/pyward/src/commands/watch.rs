//! `pyward watch` (host-wide) and `pyward run -- CMD...` (one command's process tree):
//! live kernel events from pyward-sensor, evaluated by the runtime rules engine, alerts in
//! Falco's text or JSON shape.
//!
//! Live events are the same `ReplayEvent`s `pyward rules replay` reads, so `--record` writes
//! a file that replays to the same alerts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use pyward_rules::{
    Engine, EngineOptions, LoadOptions, Priority, RuleMatching, Ruleset, RulesetBuilder, Severity,
};
use pyward_sensor::{LiveSource, Next, SensorOptions, SensorStats, Syscall};

use super::rules::{MatchingArg, RulesFormat};

/// pyward's default runtime rules, built in so `watch`/`run` work from any folder.
const DEFAULT_RULES_NAME: &str = "rules/pyward_rules.yaml (built in)";
const DEFAULT_RULES: &str = include_str!("../../../../rules/pyward_rules.yaml");

/// Options shared by `watch` and `run`.
#[derive(Debug, Args)]
pub struct WatchOptions {
    /// A rules file (repeatable; loaded in the order given). Default: pyward's built-in
    /// rules/pyward_rules.yaml.
    #[arg(long = "rules", short = 'r', value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Alert format: `text` (Falco's text line) or `json` (Falco's JSON, one per line).
    /// Default: text on standard error, json with --alerts.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<RulesFormat>,
    /// Write alerts to this file instead of standard error.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    /// Record every event seen, in the JSON-lines format of docs/events.md
    /// (`pyward rules replay` reads it).
    #[arg(long, value_name = "FILE.jsonl")]
    pub record: Option<PathBuf>,
    /// Exit 1 if an alert at or above this priority fired.
    #[arg(long, value_name = "PRIORITY", value_parser = parse_priority)]
    pub fail_on: Option<Priority>,
    /// Ignore rules below this priority.
    #[arg(long, value_name = "PRIORITY", default_value = "debug", value_parser = parse_priority)]
    pub min_priority: Priority,
    /// `first`: one alert per event; `all`: every matching rule.
    #[arg(long, value_enum, default_value_t = MatchingArg::First)]
    pub rule_matching: MatchingArg,
    /// Print event, alert and loss counters at the end.
    #[arg(long)]
    pub stats: bool,
    #[command(flatten)]
    pub alerting: super::rules::AlertArgs,
}

/// `pyward watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub opts: WatchOptions,
    /// Stop after this many seconds (default: until SIGINT/SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

/// `pyward run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub opts: WatchOptions,
    /// The command to run and watch, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    s.parse()
}

/// Load the rules (plus threat intelligence, as `rules replay` does).
fn load_rules(opts: &WatchOptions) -> anyhow::Result<Ruleset> {
    let build = |intel: Option<&(&'static str, String, String)>| {
        let mut b = RulesetBuilder::new(LoadOptions::default());
        if opts.rules.is_empty() {
            b.load_str(DEFAULT_RULES_NAME, DEFAULT_RULES);
        }
        for f in &opts.rules {
            b.load_file(f);
        }
        if let Some((name, doc, _)) = intel {
            b.load_str(name, doc);
        }
        b.build()
    };
    let mut ruleset = build(None);
    if !opts.alerting.no_intel && !ruleset.has_errors() {
        if let Some(feed) =
            super::rules::intel_document(&ruleset, opts.alerting.intel_db.as_deref())?
        {
            ruleset = build(Some(&feed));
            eprintln!("{}", feed.2);
        }
    }
    let mut errors = 0usize;
    for d in ruleset.diagnostics() {
        if d.severity == Severity::Error {
            errors += 1;
        }
        eprintln!("{d}");
    }
    if errors > 0 {
        anyhow::bail!(
            "{errors} error(s) in the rules files; fix them (`pyward rules check` lists them) \
             before watching"
        );
    }
    Ok(ruleset)
}

/// The syscalls the loaded rules need (all hooked ones when recording, so the recording
/// is complete).
fn syscalls_for(ruleset: &Ruleset, record: bool) -> Vec<Syscall> {
    if record {
        return Syscall::ALL.to_vec();
    }
    let mut v: Vec<Syscall> = Vec::new();
    for t in ruleset.event_types() {
        for s in Syscall::from_falco_name(&t) {
            if !v.contains(&s) {
                v.push(s);
            }
        }
    }
    // Failed execs are reported as execve syscalls; fchmodat2 as fchmodat.
    if v.contains(&Syscall::Fchmodat) {
        v.push(Syscall::Fchmodat2);
    }
    v
}

/// Everything one watching session writes and counts.
struct Session {
    engine: Engine,
    hostname: String,
    format: RulesFormat,
    alerts: Box<dyn Write>,
    record: Option<std::io::BufWriter<std::fs::File>>,
    fail_on: Option<Priority>,
    events: u64,
    alert_count: u64,
    failing: u64,
    by_priority: std::collections::BTreeMap<Priority, u64>,
    /// Events lost so far and when that was last checked (periodic loss warnings).
    lost_reported: u64,
    last_loss_check: Instant,
}

impl Session {
    fn new(opts: &WatchOptions, ruleset: &Ruleset) -> anyhow::Result<Session> {
        let engine = Engine::new(
            ruleset,
            EngineOptions {
                rule_matching: match opts.rule_matching {
                    MatchingArg::First => RuleMatching::First,
                    MatchingArg::All => RuleMatching::All,
                },
                min_priority: opts.min_priority,
                ..EngineOptions::default()
            },
        )
        .context("cannot compile the rules")?;
        let (alerts, default_format): (Box<dyn Write>, RulesFormat) = match &opts.alerts {
            Some(p) => (
                Box::new(std::io::BufWriter::new(create(p, "alerts")?)),
                RulesFormat::Json,
            ),
            None => (Box::new(std::io::stderr()), RulesFormat::Text),
        };
        let record = match &opts.record {
            Some(p) => Some(std::io::BufWriter::new(create(p, "recording")?)),
            None => None,
        };
        Ok(Session {
            engine,
            hostname: opts.alerting.hostname(),
            format: opts.format.unwrap_or(default_format),
            alerts,
            record,
            fail_on: opts.fail_on,
            events: 0,
            alert_count: 0,
            failing: 0,
            by_priority: Default::default(),
            lost_reported: 0,
            last_loss_check: Instant::now(),
        })
    }

    fn handle(&mut self, ev: &pyward_rules::ReplayEvent) -> anyhow::Result<()> {
        self.events += 1;
        if let Some(r) = &mut self.record {
            serde_json::to_writer(&mut *r, ev).context("cannot write the recording")?;
            r.write_all(b"\n").context("cannot write the recording")?;
        }
        for m in self.engine.evaluate(ev) {
            let alert = m.to_alert(ev, &self.hostname);
            self.alert_count += 1;
            *self.by_priority.entry(alert.priority).or_default() += 1;
            if self.fail_on.is_some_and(|min| alert.priority.at_least(min)) {
                self.failing += 1;
            }
            match self.format {
                RulesFormat::Json => {
                    serde_json::to_writer(&mut self.alerts, &alert)
                        .context("cannot write alerts")?;
                    self.alerts
                        .write_all(b"\n")
                        .context("cannot write alerts")?;
                }
                RulesFormat::Text => {
                    writeln!(self.alerts, "{}", alert.output).context("cannot write alerts")?
                }
            }
            self.alerts.flush().context("cannot write alerts")?;
        }
        Ok(())
    }

    /// Every 10 s, warn on standard error if events were lost since the last warning
    /// (ring-buffer or queue drops, unparsable records): loss is never silent.
    fn check_loss(&mut self, src: &LiveSource) {
        if self.last_loss_check.elapsed() < Duration::from_secs(10) {
            return;
        }
        self.last_loss_check = Instant::now();
        let s = src.stats();
        let lost = s.ring_drops + s.queue_drops + s.parse_errors;
        if lost > self.lost_reported {
            eprintln!(
                "pyward: WARNING {} event(s) lost in the last interval (ring-buffer drops {}, \
                 queue drops {}, parse errors {} in total); alerts may be missing",
                lost - self.lost_reported,
                s.ring_drops,
                s.queue_drops,
                s.parse_errors
            );
            self.lost_reported = lost;
        }
    }

    fn finish(&mut self, stats: &SensorStats, print_stats: bool) -> anyhow::Result<()> {
        if let Some(r) = &mut self.record {
            r.flush().context("cannot write the recording")?;
        }
        self.alerts.flush().context("cannot write alerts")?;
        let lost = stats.ring_drops + stats.queue_drops + stats.parse_errors;
        let by: Vec<String> = self
            .by_priority
            .iter()
            .map(|(p, n)| format!("{p:?}: {n}"))
            .collect();
        eprintln!(
            "pyward: {} event(s), {} alert(s){}{}",
            self.events,
            self.alert_count,
            if by.is_empty() {
                String::new()
            } else {
                format!(" ({})", by.join(", "))
            },
            if lost > 0 {
                format!(", {lost} event(s) LOST (use --stats)")
            } else {
                String::new()
            }
        );
        if print_stats {
            eprintln!(
                "pyward: kernel events {}, ring-buffer drops {}, queue drops {}, parse errors {}, \
                 tracked-map full {}, delivered {}",
                stats.kernel_events,
                stats.ring_drops,
                stats.queue_drops,
                stats.parse_errors,
                stats.tracked_full,
                stats.delivered
            );
        }
        Ok(())
    }
}

fn create(p: &Path, what: &str) -> anyhow::Result<std::fs::File> {
    std::fs::File::create(p)
        .with_context(|| format!("cannot create the {what} file {}", p.display()))
}

fn start(opts: &WatchOptions, ruleset: &Ruleset, follow: bool) -> anyhow::Result<LiveSource> {
    let syscalls = syscalls_for(ruleset, opts.record.is_some());
    let src = LiveSource::start(SensorOptions {
        follow,
        syscalls: Some(syscalls),
        ..SensorOptions::default()
    })?;
    let r = src.report();
    eprintln!(
        "pyward: eBPF sensor loaded ({}{}); {} syscall(s) enabled; {} processes known",
        r.mode,
        r.fallback_reason
            .as_deref()
            .map(|w| format!(", preferred mode refused: {w}"))
            .unwrap_or_default(),
        r.syscalls.len(),
        src.table().len()
    );
    Ok(src)
}

/// `pyward watch`.
pub fn watch(args: WatchArgs) -> anyhow::Result<u8> {
    let ruleset = load_rules(&args.opts)?;
    let mut session = Session::new(&args.opts, &ruleset)?;
    pyward_sensor::signals::install_stop_handler();
    let mut src = start(&args.opts, &ruleset, false)?;
    let deadline = match args.duration {
        Some(s) if s.is_finite() && s >= 0.0 => Some(Instant::now() + Duration::from_secs_f64(s)),
        Some(s) => anyhow::bail!("--duration {s} is not a number of seconds"),
        None => None,
    };
    loop {
        if pyward_sensor::signals::stop_signal().is_some() {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        match src.next(Duration::from_millis(100)) {
            Next::Event(ev, _) => session.handle(&ev)?,
            Next::Timeout => {}
            Next::Closed => break,
        }
        session.check_loss(&src);
    }
    let stats = src.stop();
    session.finish(&stats, args.opts.stats)?;
    Ok(if session.failing > 0 {
        crate::exit::STOP
    } else {
        crate::exit::PASS
    })
}

/// How long `run` keeps reading events after the command exited.
const RUN_DRAIN_CAP: Duration = Duration::from_secs(10);

/// `pyward run -- CMD...`.
pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let ruleset = load_rules(&args.opts)?;
    let mut session = Session::new(&args.opts, &ruleset)?;
    let (prog, rest) = args
        .command
        .split_first()
        .context("no command given; use `pyward run -- CMD ARGS...`")?;
    pyward_sensor::signals::install_stop_handler();
    let mut src = start(&args.opts, &ruleset, true)?;
    let mut cmd = std::process::Command::new(prog);
    cmd.args(rest);
    let mut child = pyward_sensor::spawn_followed(&mut cmd, &mut src)
        .with_context(|| format!("cannot run {prog}"))?;
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let mut forwarded = false;
    loop {
        if let Some(sig) = pyward_sensor::signals::stop_signal() {
            if !forwarded && exited.is_none() {
                pyward_sensor::signals::send(child.id(), sig);
                forwarded = true;
            }
        }
        if exited.is_none() {
            if let Some(st) = child.try_wait().context("cannot wait for the command")? {
                exited = Some((st, Instant::now()));
            }
        }
        // After the command exits, drain until its exit event has been read and the queue
        // is quiet: its last events may still sit in the ring buffer or the channel behind
        // a busy reader, so a fixed grace time would drop them on a loaded machine. The
        // hard cap bounds the wait when a daemonised descendant keeps producing events.
        let since_exit = exited.map(|(_, t)| t.elapsed());
        if since_exit.is_some_and(|d| d > RUN_DRAIN_CAP) {
            eprintln!(
                "pyward: the command exited {}s ago but its processes still produce events; stopping",
                RUN_DRAIN_CAP.as_secs()
            );
            break;
        }
        match src.next(Duration::from_millis(50)) {
            Next::Event(ev, _) => session.handle(&ev)?,
            Next::Timeout => {
                // Quiet after the root's own exit event (or, should that event be lost,
                // after a longer wait): nothing of the tree is still in flight.
                let quiet_after = if src.root_exit_seen() {
                    Duration::from_millis(100)
                } else {
                    Duration::from_secs(2)
                };
                if since_exit.is_some_and(|d| d > quiet_after) {
                    break;
                }
            }
            Next::Closed => break,
        }
        session.check_loss(&src);
    }
    let status = match exited {
        Some((s, _)) => s,
        None => child.wait().context("cannot wait for the command")?,
    };
    let stats = src.stop();
    session.finish(&stats, args.opts.stats)?;
    if session.failing > 0 {
        return Ok(crate::exit::STOP);
    }
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + (sig & 0x7f)).unwrap_or(1),
        _ => 1,
    })
}
