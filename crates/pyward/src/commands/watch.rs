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
use pyward_detect::DetectorSet;
use pyward_respond::{
    AlertFormat, CaptureConfig, Capturer, Responder, RuntimePolicies, Scope, Sink, SinkSet,
    SyslogSink, SyslogTarget, WebhookConfig, WebhookSink, WriterSink,
};
use pyward_rules::Alert;
use pyward_sensor::{LiveSource, Next, SensorOptions, SensorStats, Syscall};

use super::rules::{MatchingArg, RulesFormat};

/// pyward's default runtime rules, built in so `watch`/`run` work from any folder.
const DEFAULT_RULES_NAME: &str = "rules/pyward_rules.yaml (built in)";
const DEFAULT_RULES: &str = include_str!("../../../../rules/pyward_rules.yaml");
const DEFAULT_DETECTORS_NAME: &str = "rules/pyward_detectors.yaml (built in)";
const DEFAULT_DETECTORS: &str = include_str!("../../../../rules/pyward_detectors.yaml");

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
    /// Also POST every alert (Falco's JSON) to this http:// endpoint, e.g. falcosidekick
    /// (repeatable). Queued and retried off the event path; drops are counted.
    #[arg(long, value_name = "URL")]
    pub webhook: Vec<String>,
    /// Also send every alert to syslog: `/dev/log`, `unix:PATH` or `udp://HOST:PORT`.
    #[arg(long, value_name = "TARGET")]
    pub syslog: Option<String>,
    /// Fold identical alerts repeated within this many seconds into one line with a count
    /// (0: never fold).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub rate_limit: f64,
    /// Runtime policy file: which alerts, in which scope, lead to which actions (notify,
    /// capture, kill_tree, freeze_container...). See policies/runtime-*.yaml.
    #[arg(long, value_name = "FILE")]
    pub runtime_policy: Option<PathBuf>,
    /// Folder for capture files (events from before to after an alert, replayable with
    /// `pyward rules replay`); needed by policies with a `capture` action.
    #[arg(long, value_name = "DIR")]
    pub capture_dir: Option<PathBuf>,
    /// Turn off the behavioural detectors (drift, ransomware, self-deletion). They are on by
    /// default, configured by `- detector:` items of the rules files (default:
    /// rules/pyward_detectors.yaml, built in).
    #[arg(long)]
    pub no_detectors: bool,
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
    detectors: Option<DetectorSet>,
    responder: Responder,
    hostname: String,
    record: Option<std::io::BufWriter<std::fs::File>>,
    fail_on: Option<Priority>,
    /// Set for `pyward run`: every event is of the command's tree, in this cgroup.
    run_cgroup: Option<String>,
    events: u64,
    alert_count: u64,
    failing: u64,
    by_priority: std::collections::BTreeMap<Priority, u64>,
    /// Events lost so far and when that was last checked (periodic loss warnings).
    lost_reported: u64,
    last_loss_check: Instant,
    last_tick: Instant,
}

/// The detectors' settings: `- detector:` items of the rules files, else the built-in ones.
fn load_detectors(opts: &WatchOptions) -> anyhow::Result<Option<DetectorSet>> {
    if opts.no_detectors {
        return Ok(None);
    }
    let cfg = if opts.rules.is_empty() {
        pyward_detect::config::from_yaml_str(DEFAULT_DETECTORS, Path::new(DEFAULT_DETECTORS_NAME))
    } else {
        pyward_detect::from_yaml_files(&opts.rules)
    }
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("cannot load the detector settings; fix the `- detector:` items")?;
    let start = pyward_respond::sink::now_ns();
    Ok(Some(DetectorSet::new(cfg).with_start_time(start)))
}

/// Alert sinks, runtime policies and capture.
fn build_responder(opts: &WatchOptions) -> anyhow::Result<Responder> {
    let window = if opts.rate_limit.is_finite() && opts.rate_limit >= 0.0 {
        Duration::from_secs_f64(opts.rate_limit)
    } else {
        anyhow::bail!("--rate-limit {} is not a number of seconds", opts.rate_limit);
    };
    let mut sinks = SinkSet::new().with_rate_limit(window);
    let fmt = |f: Option<RulesFormat>, default: AlertFormat| match f {
        Some(RulesFormat::Json) => AlertFormat::Json,
        Some(RulesFormat::Text) => AlertFormat::Text,
        None => default,
    };
    let main: Box<dyn Sink> = match &opts.alerts {
        Some(p) => Box::new(
            WriterSink::file(p, fmt(opts.format, AlertFormat::Json))
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("cannot open the alerts file {}", p.display()))?,
        ),
        None => Box::new(WriterSink::stderr(fmt(opts.format, AlertFormat::Text))),
    };
    sinks.add(main).map_err(|e| anyhow::anyhow!("{e}"))?;
    for url in &opts.webhook {
        let hook = WebhookSink::new(WebhookConfig::new(url))
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("--webhook {url}"))?;
        sinks.add(Box::new(hook)).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(t) = &opts.syslog {
        let target = SyslogTarget::parse(t)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("--syslog {t}"))?;
        let sink = SyslogSink::new(&target, pyward_respond::syslog::Facility::User)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("--syslog {t}"))?;
        sinks.add(Box::new(sink)).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let policies = match &opts.runtime_policy {
        Some(p) => RuntimePolicies::from_yaml_file(p).map_err(|e| anyhow::anyhow!("{e}"))?,
        None => RuntimePolicies::empty(),
    };
    let capture = match &opts.capture_dir {
        Some(d) => Some(
            Capturer::new(CaptureConfig::new(d))
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("--capture-dir {}", d.display()))?,
        ),
        None => None,
    };
    Responder::new(sinks, policies, capture).map_err(|e| anyhow::anyhow!("{e}"))
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
        let record = match &opts.record {
            Some(p) => Some(std::io::BufWriter::new(create(p, "recording")?)),
            None => None,
        };
        Ok(Session {
            engine,
            detectors: load_detectors(opts)?,
            responder: build_responder(opts)?,
            hostname: opts.alerting.hostname(),
            record,
            fail_on: opts.fail_on,
            run_cgroup: None,
            events: 0,
            alert_count: 0,
            failing: 0,
            by_priority: Default::default(),
            lost_reported: 0,
            last_loss_check: Instant::now(),
            last_tick: Instant::now(),
        })
    }

    fn handle(&mut self, ev: &pyward_rules::ReplayEvent) -> anyhow::Result<()> {
        self.events += 1;
        if let Some(r) = &mut self.record {
            serde_json::to_writer(&mut *r, ev).context("cannot write the recording")?;
            r.write_all(b"\n").context("cannot write the recording")?;
        }
        // The capture ring sees the event before any alert it raises triggers a capture.
        self.responder.observe(ev);
        let mut alerts: Vec<Alert> = self
            .engine
            .evaluate(ev)
            .into_iter()
            .map(|m| m.to_alert(ev, &self.hostname))
            .collect();
        if let Some(d) = &mut self.detectors {
            alerts.extend(d.observe(ev).iter().map(|d| d.to_alert(ev, &self.hostname)));
        }
        for alert in alerts {
            self.alert(&alert, Some(ev));
        }
        self.tick();
        Ok(())
    }

    /// Count an alert, deliver it and run the actions the runtime policies plan for it.
    fn alert(&mut self, alert: &Alert, ev: Option<&pyward_rules::ReplayEvent>) {
        self.alert_count += 1;
        *self.by_priority.entry(alert.priority).or_default() += 1;
        if self.fail_on.is_some_and(|min| alert.priority.at_least(min)) {
            self.failing += 1;
        }
        let mut scope = match ev {
            Some(ev) => Scope::from_event(ev),
            None => Scope::from_alert(alert),
        };
        if let Some(cg) = &self.run_cgroup {
            scope = scope.in_run_tree(true).with_cgroup(cg);
        }
        for rec in self.responder.on_alert(alert, &scope) {
            eprintln!("pyward: {rec}");
        }
        if let Some(e) = self.responder.take_sink_error() {
            eprintln!("pyward: WARNING alert delivery: {e}");
        }
    }

    /// Periodic work of the sinks and the capture (at most every 200 ms).
    fn tick(&mut self) {
        if self.last_tick.elapsed() >= Duration::from_millis(200) {
            self.last_tick = Instant::now();
            self.responder.tick(pyward_respond::sink::now_ns());
        }
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
        let summary = self.responder.finish(Duration::from_secs(3));
        if let Some(e) = self.responder.take_sink_error() {
            eprintln!("pyward: WARNING alert delivery: {e}");
        }
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
            for (name, st) in &summary.sinks {
                eprintln!(
                    "pyward: sink {name}: sent {}, dropped {}, retried {}, rate-limited {}",
                    st.sent, st.dropped, st.retried, st.rate_limited
                );
            }
            if let Some(d) = &self.detectors {
                eprintln!("pyward: detectors: {:?}", d.stats());
            }
        }
        if summary.actions_ok + summary.actions_failed > 0 {
            eprintln!(
                "pyward: response actions: {} done, {} failed",
                summary.actions_ok, summary.actions_failed
            );
        }
        if let Some(c) = &summary.closed_capture {
            eprintln!("pyward: capture written: {}", c.path.display());
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
            Next::Timeout => session.tick(),
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

/// A fresh cgroup v2 group for the command of `pyward run`, if cgroup v2 is writable here.
fn run_cgroup() -> Option<(pyward_respond::CgroupFs, pyward_respond::Cgroup)> {
    let fs = pyward_respond::CgroupFs::discover().ok()?;
    match fs.create_run_cgroup() {
        Ok(g) => Some((fs, g)),
        Err(e) => {
            eprintln!("pyward: WARNING no cgroup for the command ({e}); container actions will not apply to it");
            None
        }
    }
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
    // The command's own cgroup, so a policy can freeze or kill the whole tree (daemons
    // included) whatever it does; best effort: without it, the tree is followed by pid.
    let run_cgroup = run_cgroup();
    if let Some((_, group)) = &run_cgroup {
        match group.procs_handle() {
            Ok(procs) => {
                use std::os::unix::process::CommandExt;
                // SAFETY: join_self is one write(2) of the pid to an open file:
                // async-signal-safe.
                unsafe {
                    cmd.pre_exec(move || procs.join_self());
                }
                session.run_cgroup = Some(group.path().to_owned());
            }
            Err(e) => eprintln!("pyward: WARNING cannot use the run cgroup: {e}"),
        }
    }
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
                session.tick();
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
    if let Some((fs, group)) = &run_cgroup {
        // Daemons the command left behind are part of what was run: they end with it.
        if let Err(e) = group.remove_when_empty(fs, Duration::from_secs(2), true) {
            eprintln!("pyward: WARNING cannot remove the run cgroup {}: {e}", group.path());
        }
    }
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
