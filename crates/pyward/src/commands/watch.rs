//! `pyward watch` (host-wide) and `pyward run -- CMD...` (one command's process tree):
//! live kernel events from pyward-sensor, evaluated by the runtime rules engine, alerts in
//! Falco's text or JSON shape.
//!
//! Live events are the same `ReplayEvent`s `pyward rules replay` reads, so `--record` writes
//! a file that replays to the same alerts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use pyward_detect::DetectorSet;
use pyward_respond::{
    AlertFormat, CaptureConfig, Capturer, Responder, RuntimePolicies, Scope, Sink, SinkSet,
    SyslogSink, SyslogTarget, WebhookConfig, WebhookSink, WriterSink,
};
use pyward_rules::Alert;
use pyward_rules::{
    Engine, EngineOptions, LoadOptions, Priority, RuleMatching, Ruleset, RulesetBuilder, Severity,
};
use pyward_sensor::stall::{Heartbeat, StallStats, StallWatch, Watched};
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
    /// Send every repeated open to user space. By default a read-only open of a regular file
    /// that repeats, in every field a rule can see, one the same process made within about a
    /// second (250 jiffies) is folded in the kernel (with its close) and only counted (`--stats`);
    /// the alert it would raise is the one already raised. `--record` implies this flag.
    #[arg(long)]
    pub no_fold: bool,
    /// Stop attacks in the kernel, not only report them: connects/sends to the rules'
    /// `pyward_malicious_ips`/`_networks` (and intel IOCs) fail with EPERM; executables
    /// written since start are killed before their first instruction; reads of SSH/GPG keys
    /// by other programs are killed at the open; mass file encryption is killed. Every
    /// denial or kill is also an alert.
    #[arg(long)]
    pub enforce: bool,
    /// With --enforce: files or folders to protect from reads by programs other than
    /// ssh/gpg (repeatable). Default: ~/.ssh and ~/.gnupg of /root and every /home/*.
    #[arg(long, value_name = "PATH", requires = "enforce")]
    pub protect: Vec<PathBuf>,
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
/// is complete, or when the detectors run).
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
    record: Option<Recording>,
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
    loss_calls: u64,
    last_tick: Instant,
    /// Time of the newest event handled (ns since the epoch, the events' scale).
    last_event_ns: u64,
    /// The event loop's progress, watched for stalls (see `pyward_sensor::stall`).
    heartbeat: Arc<Heartbeat>,
}

/// Phases of the event loop, as the stall watch names them.
const PHASES: &[&str] = &[
    "reading the next event (process table, /proc)",
    "rules, detectors, capture and alerts of an event",
    "enforcement records and response actions",
    "periodic work (sinks, capture windows)",
    "stopping: detaching the sensor, delivering the last alerts",
];
const PHASE_NEXT: u8 = 0;
const PHASE_HANDLE: u8 = 1;
const PHASE_ENFORCER: u8 = 2;
const PHASE_TICK: u8 = 3;
const PHASE_STOP: u8 = 4;

/// A loop turn that makes no progress for this long is reported (longer than the 2 s a
/// response action may wait for a killed or frozen process).
const STALL_THRESHOLD: Duration = Duration::from_secs(3);

/// Margin for events still in flight (ring buffer, reader thread, queue) when an idle loop
/// closes capture windows by the clock.
const IN_FLIGHT_NS: u64 = 1_000_000_000;

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
    // On the events' time scale (pyward_sensor::clock), not the possibly stepped wall clock.
    let start = pyward_sensor::clock::now_ns();
    Ok(Some(DetectorSet::new(cfg).with_start_time(start)))
}

/// Alert sinks, runtime policies and capture.
fn build_responder(opts: &WatchOptions) -> anyhow::Result<Responder> {
    let window = if opts.rate_limit.is_finite() && opts.rate_limit >= 0.0 {
        Duration::from_secs_f64(opts.rate_limit)
    } else {
        anyhow::bail!(
            "--rate-limit {} is not a number of seconds",
            opts.rate_limit
        );
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
        sinks
            .add(Box::new(hook))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    if let Some(t) = &opts.syslog {
        let target = SyslogTarget::parse(t)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("--syslog {t}"))?;
        let sink = SyslogSink::new(&target, pyward_respond::syslog::Facility::User)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("--syslog {t}"))?;
        sinks
            .add(Box::new(sink))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
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
            Some(p) => Some(Recording {
                out: std::io::BufWriter::new(create(p, "recording")?),
                writer: pyward_rules::ReplayWriter::new(),
                line: Vec::new(),
            }),
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
            loss_calls: 0,
            last_loss_check: Instant::now(),
            last_tick: Instant::now(),
            last_event_ns: 0,
            heartbeat: Heartbeat::new(),
        })
    }

    /// Watch this thread's loop and the sensor's reader thread for stalls.
    fn watch_stalls(&self, src: &LiveSource) -> StallWatch {
        self.heartbeat.register_current_thread();
        StallWatch::start(
            vec![
                Watched {
                    name: "the event loop",
                    heartbeat: self.heartbeat.clone(),
                    phases: PHASES,
                },
                Watched {
                    name: "the ring-buffer reader",
                    heartbeat: src.reader_heartbeat(),
                    phases: &["reading the kernel's ring buffer"],
                },
            ],
            STALL_THRESHOLD,
        )
    }

    /// One step of the loop, into `phase`.
    #[inline]
    fn beat(&self, phase: u8) {
        self.heartbeat.beat(phase);
    }

    fn handle(&mut self, ev: Box<pyward_rules::ReplayEvent>) -> anyhow::Result<()> {
        use pyward_rules::Event as _;
        self.events += 1;
        self.last_event_ns = self.last_event_ns.max(ev.time_ns());
        if let Some(r) = &mut self.record {
            r.write(&ev).context("cannot write the recording")?;
        }
        // The capture ring sees the event before any alert it raises triggers a capture;
        // it keeps the event itself (shared, not copied or serialised).
        if self.responder.captures() {
            let ev: std::sync::Arc<pyward_rules::ReplayEvent> = ev.into();
            self.responder.observe(&ev);
            self.evaluate(&ev);
        } else {
            self.evaluate(&ev);
        }
        Ok(())
    }

    /// Rules and detectors on one event, and the alerts they raise.
    fn evaluate(&mut self, ev: &pyward_rules::ReplayEvent) {
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
        // Reading the clock for every event showed in profiles: every 64th is enough for a
        // 200 ms period (idle wake-ups tick too).
        if self.events.is_multiple_of(64) {
            self.tick(Some(self.last_event_ns));
        }
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
        // Each action's record is itself delivered to the sinks as an alert.
        let _ = self.responder.on_alert(alert, &scope);
        if let Some(e) = self.responder.take_sink_error() {
            eprintln!("pyward: WARNING alert delivery: {e}");
        }
    }

    /// Periodic work of the sinks and the capture (at most every 200 ms). `event_ns` is the
    /// time of the newest event handled, `None` when the loop is idle.
    fn tick(&mut self, event_ns: Option<u64>) {
        if self.last_tick.elapsed() >= Duration::from_millis(200) {
            self.beat(PHASE_TICK);
            self.last_tick = Instant::now();
            // Capture windows are in event time. While events are handled, "now" is the
            // newest event's time: when the loop runs behind the kernel (a busy or stalled
            // machine), the clock would close a window before its events have been read.
            // When idle, the clock, less a margin for events still on their way.
            let now = event_ns
                .unwrap_or_else(|| pyward_sensor::clock::now_ns().saturating_sub(IN_FLIGHT_NS));
            self.responder.tick(now);
        }
    }

    /// Every 10 s, warn on standard error if events were lost since the last warning
    /// (ring-buffer or queue drops, unparsable records): loss is never silent.
    fn check_loss(&mut self, src: &LiveSource) {
        // Called once per event or idle wake-up: look at the clock every 64th call only.
        self.loss_calls = self.loss_calls.wrapping_add(1);
        if !self.loss_calls.is_multiple_of(64)
            || self.last_loss_check.elapsed() < Duration::from_secs(10)
        {
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

    fn finish(
        &mut self,
        stats: &SensorStats,
        stalls: StallStats,
        print_stats: bool,
    ) -> anyhow::Result<()> {
        if let Some(r) = &mut self.record {
            r.out.flush().context("cannot write the recording")?;
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
            eprintln!(
                "pyward: repeats folded in the kernel: opens {}, closes {}",
                stats.folded_opens, stats.folded_closes
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
        if stalls.stalls > 0 || print_stats {
            eprintln!(
                "pyward: {}stalls of the event pipeline: {}, longest {:.1} s",
                if stalls.stalls > 0 { "WARNING " } else { "" },
                stalls.stalls,
                stalls.longest_ms as f64 / 1000.0
            );
        }
        if summary.actions_ok + summary.actions_failed > 0 {
            eprintln!(
                "pyward: response actions: {} done, {} failed",
                summary.actions_ok, summary.actions_failed
            );
        }
        if let Some(c) = &summary.closed_capture {
            eprintln!(
                "pyward: capture written: {} ({})",
                c.path.display(),
                c.outcome()
            );
        }
        Ok(())
    }
}

/// The `--record` file: events with each process written once (see docs/events.md).
struct Recording {
    out: std::io::BufWriter<std::fs::File>,
    writer: pyward_rules::ReplayWriter,
    line: Vec<u8>,
}

impl Recording {
    fn write(&mut self, ev: &pyward_rules::ReplayEvent) -> std::io::Result<()> {
        self.line.clear();
        self.writer.encode(ev, &mut self.line)?;
        self.out.write_all(&self.line)
    }
}

fn create(p: &Path, what: &str) -> anyhow::Result<std::fs::File> {
    std::fs::File::create(p)
        .with_context(|| format!("cannot create the {what} file {}", p.display()))
}

fn start(opts: &WatchOptions, ruleset: &Ruleset, follow: bool) -> anyhow::Result<LiveSource> {
    // The detectors follow files through opens, first writes and reads at offset 0,
    // renames, unlinks, chmods, dups and closes: every hooked syscall, as for a recording.
    let detectors = !opts.no_detectors;
    let syscalls = syscalls_for(ruleset, opts.record.is_some() || detectors);
    let src = LiveSource::start(SensorOptions {
        follow,
        syscalls: Some(syscalls),
        capture_reads: detectors,
        // A recording must hold every event.
        fold_repeats: !opts.no_fold && opts.record.is_none(),
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
    let stalls = session.watch_stalls(&src);
    let enforcer = if args.opts.enforce {
        Some(start_enforcer(&args.opts, &ruleset, None)?)
    } else {
        None
    };
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
        if session.turn(&mut src, enforcer.as_ref(), Duration::from_millis(100))? == Turn::Closed {
            break;
        }
    }
    session.beat(PHASE_STOP);
    let stats = src.stop();
    session.drain_enforcer(enforcer.as_ref());
    if let (Some(e), true) = (&enforcer, args.opts.stats) {
        eprintln!("pyward: {}", e.stats());
    }
    drop(enforcer);
    let stalled = stalls.stats();
    drop(stalls);
    session.finish(&stats, stalled, args.opts.stats)?;
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

/// The networks of the rules' indicator lists, for the in-kernel connect/send deny.
fn blocked_networks(ruleset: &Ruleset) -> Vec<pyward_enforce::IpNet> {
    let mut nets = Vec::new();
    for list in ruleset.lists() {
        if list.name != "pyward_malicious_ips" && list.name != "pyward_malicious_networks" {
            continue;
        }
        for item in &list.items {
            let item = item.trim_matches(|c| c == '"' || c == '\'');
            if let Ok(n) = item.parse::<pyward_enforce::IpNet>() {
                nets.push(n);
            } else if let Ok(ip) = item.parse::<std::net::IpAddr>() {
                nets.push(pyward_enforce::IpNet::from(ip));
            } else {
                eprintln!(
                    "pyward: WARNING {} item {item:?} is not an IP address or network; not blocked",
                    list.name
                );
            }
        }
    }
    nets
}

/// Home folders whose keys --enforce protects by default.
fn default_homes() -> Vec<PathBuf> {
    let mut homes = vec![PathBuf::from("/root")];
    if let Ok(rd) = std::fs::read_dir("/home") {
        homes.extend(rd.flatten().map(|e| e.path()));
    }
    homes
}

/// Load the in-kernel enforcement and feed it from the rules (network deny attaches to
/// `cgroup`: the run's own cgroup, or the cgroup v2 root host-wide).
fn start_enforcer(
    opts: &WatchOptions,
    ruleset: &Ruleset,
    cgroup: Option<&Path>,
) -> anyhow::Result<pyward_enforce::Enforcer> {
    let cgroup = match cgroup {
        Some(c) => Some(c.to_path_buf()),
        None => Some(
            pyward_enforce::cgroup2_mount()
                .context("--enforce needs cgroup v2 for the network deny")?,
        ),
    };
    let enforcer = pyward_enforce::Enforcer::start(pyward_enforce::EnforceOptions {
        cgroup,
        ..pyward_enforce::EnforceOptions::default()
    })
    .map_err(|e| anyhow::anyhow!("{e}"))
    .context("cannot start the in-kernel enforcement (--enforce)")?;
    let nets = blocked_networks(ruleset);
    enforcer
        .block_networks(&nets)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let paths = if opts.protect.is_empty() {
        pyward_enforce::key_dirs(&default_homes())
    } else {
        opts.protect.clone()
    };
    let protected = enforcer
        .protect_paths(&paths, pyward_enforce::SSH_GPG_COMMS)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    enforcer
        .allow_exec_comms(pyward_enforce::BUILD_TOOL_COMMS)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = enforcer.report();
    eprintln!("pyward: {report}");
    eprintln!(
        "pyward: enforcement: {} blocked network(s), protected files: {protected:?}",
        nets.len()
    );
    if report.degraded() {
        eprintln!("pyward: WARNING part of the enforcement requested is NOT in force (see above)");
    }
    Ok(enforcer)
}

/// What one turn of the event loop did.
#[derive(Debug, PartialEq, Eq)]
enum Turn {
    /// Handled an event.
    Event,
    /// No event within the timeout (periodic work done).
    Idle,
    /// The sensor stopped.
    Closed,
}

impl Session {
    /// One turn of the event loop, shared by `watch` and `run`: enforcement records, then
    /// the next event (or the periodic work when none comes), then the loss check; each
    /// phase beats the stall watch.
    fn turn(
        &mut self,
        src: &mut LiveSource,
        enforcer: Option<&pyward_enforce::Enforcer>,
        timeout: Duration,
    ) -> anyhow::Result<Turn> {
        self.beat(PHASE_ENFORCER);
        self.drain_enforcer(enforcer);
        self.beat(PHASE_NEXT);
        let turn = match src.next(timeout) {
            Next::Event(ev, _) => {
                self.beat(PHASE_HANDLE);
                self.handle(ev)?;
                Turn::Event
            }
            Next::Timeout => {
                self.tick(None);
                Turn::Idle
            }
            Next::Closed => return Ok(Turn::Closed),
        };
        self.check_loss(src);
        Ok(turn)
    }

    /// Turn enforcement records (denials, kills) into alerts.
    fn drain_enforcer(&mut self, enforcer: Option<&pyward_enforce::Enforcer>) {
        let Some(e) = enforcer else { return };
        while let Some(ev) = e.try_recv() {
            let alert = ev.to_alert(&self.hostname);
            self.alert(&alert, None);
        }
    }
}

/// How long `run` keeps reading events its tree makes after the command exited
/// (daemons it left behind).
const RUN_DRAIN_CAP: Duration = Duration::from_secs(10);
/// How long `run` keeps reading events the tree made *before* the command exited, when
/// the loop runs that far behind the kernel.
const RUN_BACKLOG_CAP: Duration = Duration::from_secs(120);

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
    let stalls = session.watch_stalls(&src);
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
    let enforcer = if args.opts.enforce {
        let dir = run_cgroup.as_ref().map(|(_, g)| g.dir().to_path_buf());
        if dir.is_none() {
            anyhow::bail!(
                "--enforce with `run` needs a cgroup for the command (cgroup v2 writable); \
                 see the warning above"
            );
        }
        Some(start_enforcer(&args.opts, &ruleset, dir.as_deref())?)
    } else {
        None
    };
    pyward_sensor::follow_before_exec(&mut cmd, &mut src);
    let spawned = match &enforcer {
        Some(e) => e.spawn_scoped(&mut cmd),
        None => cmd.spawn(),
    };
    let mut child = spawned.with_context(|| format!("cannot run {prog}"))?;
    src.follow(child.id())
        .context("cannot follow the command's process tree")?;
    // The exit status, when it was seen, and that time on the events' scale.
    let mut exited: Option<(std::process::ExitStatus, Instant, u64)> = None;
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
                exited = Some((st, Instant::now(), pyward_sensor::clock::now_ns()));
            }
        }
        // After the command exits, drain until its exit event has been read and the queue
        // is quiet: its last events may still sit in the ring buffer or the channel behind
        // a busy reader, so a fixed grace time would drop them on a loaded machine. Events
        // made before the exit are a backlog and are all read (up to a long cap); the
        // short cap bounds the wait when a daemonised descendant keeps producing events.
        let since_exit = exited.map(|(_, t, _)| t.elapsed());
        if let (Some(d), Some((_, _, exit_ns))) = (since_exit, exited) {
            let backlog = session.last_event_ns < exit_ns;
            if backlog && d > RUN_BACKLOG_CAP {
                eprintln!(
                    "pyward: WARNING the command exited {}s ago and events it made before its \
                     exit are still queued (the event loop is that far behind); stopping: \
                     those events are NOT analysed",
                    RUN_BACKLOG_CAP.as_secs()
                );
                break;
            }
            if !backlog && d > RUN_DRAIN_CAP {
                eprintln!(
                    "pyward: the command exited {}s ago but its processes still produce events; stopping",
                    RUN_DRAIN_CAP.as_secs()
                );
                break;
            }
        }
        match session.turn(&mut src, enforcer.as_ref(), Duration::from_millis(50))? {
            Turn::Event => {}
            Turn::Idle => {
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
            Turn::Closed => break,
        }
    }
    let status = match exited {
        Some((s, _, _)) => s,
        None => child.wait().context("cannot wait for the command")?,
    };
    session.beat(PHASE_STOP);
    let stats = src.stop();
    if let Some((fs, group)) = &run_cgroup {
        // Daemons the command left behind are part of what was run: they end with it.
        // The enforcement stays in force until the cgroup is empty.
        if let Err(e) = group.remove_when_empty(fs, Duration::from_secs(2), true) {
            eprintln!(
                "pyward: WARNING cannot remove the run cgroup {}: {e}",
                group.path()
            );
        }
    }
    session.drain_enforcer(enforcer.as_ref());
    if let Some(e) = &enforcer {
        if args.opts.stats {
            eprintln!("pyward: {}", e.stats());
        }
    }
    drop(enforcer);
    let stalled = stalls.stats();
    drop(stalls);
    session.finish(&stats, stalled, args.opts.stats)?;
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
