//! [`Responder`]: the one object `pyward watch` / `pyward run` drive from their event loop.
//!
//! ```no_run
//! use std::time::Duration;
//! use pyward_respond::respond::Responder;
//! use pyward_respond::policy::{RuntimePolicies, Scope};
//! use pyward_respond::capture::{CaptureConfig, Capturer};
//! use pyward_respond::{AlertFormat, SinkSet, WriterSink};
//! # fn events() -> Vec<(std::sync::Arc<pyward_rules::ReplayEvent>, Vec<pyward_rules::Alert>)> { vec![] }
//! let mut sinks = SinkSet::new().with_rate_limit(Duration::from_secs(10));
//! sinks.add(Box::new(WriterSink::stderr(AlertFormat::Text))).unwrap();
//! let policies = RuntimePolicies::from_yaml_file("policies/runtime-incident1.yaml".as_ref()).unwrap();
//! let capture = Capturer::new(CaptureConfig::new("/var/lib/pyward/captures".as_ref())).unwrap();
//! let mut r = Responder::new(sinks, policies, Some(capture)).unwrap();
//! for (ev, alerts) in events() {
//!     r.observe(&ev);                         // before rules: the ring holds the trigger event
//!     for alert in alerts {                   // engine.evaluate(&ev) → m.to_alert(&ev, host)
//!         for rec in r.on_alert(&alert, &Scope::from_event(&ev)) {
//!             eprintln!("{rec}");
//!         }
//!     }
//!     r.tick(pyward_respond::sink::now_ns()); // also on idle wake-ups
//! }
//! let summary = r.finish(Duration::from_secs(5));
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pyward_rules::{Alert, Priority, ReplayEvent};

use crate::capture::{CaptureInfo, CaptureStart, CaptureStats, Capturer};
use crate::cgroup::{CgroupError, CgroupFs};
use crate::policy::{CgroupTarget, PlannedAction, RuntimePolicies, Scope};
use crate::process::{self, KillError};
use crate::sink::{now_ns, SinkError, SinkSet, SinkStats, Targets};

/// Rule name of the alerts that report response actions.
pub const ACTION_RULE: &str = "pyward response action";

/// The result of one action, kept so the CLI can print it and the sinks receive it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRecord {
    /// Policy that asked.
    pub policy: String,
    /// Action name (`kill_tree`, `capture`...).
    pub action: &'static str,
    /// What it acted on (`pid 1234`, `cgroup /pyward-run-77`, a capture file).
    pub target: String,
    /// Whether it did what was asked.
    pub ok: bool,
    /// What happened, or why it failed.
    pub detail: String,
    /// The rule of the alert that led to it.
    pub trigger_rule: String,
    /// When it was done (ns since the epoch).
    pub time_ns: u64,
}

impl fmt::Display for ActionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pyward response: {} {} {} (policy {:?}, rule {:?}): {}",
            self.action,
            self.target,
            if self.ok { "done" } else { "FAILED" },
            self.policy,
            self.trigger_rule,
            self.detail
        )
    }
}

impl ActionRecord {
    /// The record as an alert in Falco's shape (rule [`ACTION_RULE`], Notice when done,
    /// Error when it failed), for the sinks.
    pub fn to_alert(&self, hostname: &str) -> Alert {
        let priority = if self.ok {
            Priority::Notice
        } else {
            Priority::Error
        };
        let time = time_text(self.time_ns);
        let clock = time.get(11..).unwrap_or("").trim_end_matches('Z');
        let mut fields = BTreeMap::new();
        fields.insert("evt.time".to_owned(), self.time_ns.into());
        fields.insert("pyward.action".to_owned(), self.action.into());
        fields.insert("pyward.policy".to_owned(), self.policy.clone().into());
        fields.insert("pyward.target".to_owned(), self.target.clone().into());
        fields.insert(
            "pyward.result".to_owned(),
            if self.ok { "done" } else { "failed" }.into(),
        );
        fields.insert("pyward.detail".to_owned(), self.detail.clone().into());
        fields.insert(
            "pyward.trigger_rule".to_owned(),
            self.trigger_rule.clone().into(),
        );
        Alert {
            hostname: hostname.to_owned(),
            output: format!("{clock}: {priority} {self}"),
            output_fields: fields,
            priority,
            rule: ACTION_RULE.to_owned(),
            source: "pyward".to_owned(),
            tags: vec!["pyward".into(), "response".into()],
            time,
        }
    }
}

fn time_text(ns: u64) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(0);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second(),
            ns % 1_000_000_000
        ),
        Err(_) => "1970-01-01T00:00:00.000000000Z".into(),
    }
}

/// Why a responder could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ResponderError {
    /// A policy names a sink that is not configured.
    #[error("runtime policy {policy:?} notifies sink {sink:?}, which is not configured (configured: {known}); add it or fix the name")]
    UnknownSink {
        /// Policy.
        policy: String,
        /// Sink name.
        sink: String,
        /// Configured sink names.
        known: String,
    },
    /// A policy captures but no capture directory was given.
    #[error("a runtime policy asks for `capture` but no capture directory is configured; give --capture-dir DIR")]
    NoCaptureDir,
}

/// Performs planned actions.
pub struct Executor {
    cgroups: Option<Result<CgroupFs, String>>,
    /// How long a kill waits to see the processes exit.
    pub kill_wait: Duration,
    /// How long a freeze waits for `frozen 1`.
    pub freeze_wait: Duration,
    killed_cgroups: HashSet<String>,
}

impl Default for Executor {
    fn default() -> Self {
        Executor {
            cgroups: None,
            kill_wait: Duration::from_secs(2),
            freeze_wait: Duration::from_secs(2),
            killed_cgroups: HashSet::new(),
        }
    }
}

impl Executor {
    /// Use this cgroup v2 hierarchy instead of discovering it.
    pub fn with_cgroup_fs(mut self, fs_: CgroupFs) -> Executor {
        self.cgroups = Some(Ok(fs_));
        self
    }

    fn cgroup_fs(&mut self) -> Result<&CgroupFs, String> {
        let c = self
            .cgroups
            .get_or_insert_with(|| CgroupFs::discover().map_err(|e| e.to_string()));
        c.as_ref().map_err(Clone::clone)
    }

    /// Perform one action (capture needs the capturer). `Notify` only reports where the
    /// alert was routed: [`Responder::on_alert`] delivers it, once per sink.
    pub fn execute(
        &mut self,
        action: &PlannedAction,
        alert: &Alert,
        capture: Option<&mut Capturer>,
    ) -> ActionRecord {
        let mut rec = ActionRecord {
            policy: action.policy().to_owned(),
            action: action.kind(),
            target: String::new(),
            ok: false,
            detail: String::new(),
            trigger_rule: alert.rule.clone(),
            time_ns: 0,
        };
        let result: Result<String, String> = match action {
            PlannedAction::Capture {
                label,
                at_ns,
                window,
                ..
            } => match capture {
                None => Err("no capture directory is configured (--capture-dir DIR)".into()),
                Some(c) => match c.trigger(label, *at_ns, window.before, window.after) {
                    Ok(CaptureStart::Started { path, backfilled }) => {
                        rec.target = path.display().to_string();
                        Ok(format!(
                            "capture started: {backfilled} event(s) from the last {:?}, continuing {:?} after the alert",
                            window.before, window.after
                        ))
                    }
                    Ok(CaptureStart::Extended { path, .. }) => {
                        rec.target = path.display().to_string();
                        Ok(format!(
                            "open capture extended to {:?} after this alert",
                            window.after
                        ))
                    }
                    Err(e) => Err(e.to_string()),
                },
            },
            PlannedAction::Notify { targets, .. } => {
                rec.target = match targets {
                    Targets::Everything => "all sinks".into(),
                    Targets::Named(v) => v.join(", "),
                    Targets::Default => "default sinks".into(),
                };
                Ok("alert routed".into())
            }
            PlannedAction::KillProcess { pid, .. } | PlannedAction::KillTree { pid, .. } => {
                match pid {
                    None => Err("the alert carries no process id (proc.pid)".into()),
                    Some(pid) => {
                        rec.target = format!("pid {pid}");
                        let r = if matches!(action, PlannedAction::KillTree { .. }) {
                            process::kill_tree(*pid, self.kill_wait)
                        } else {
                            process::kill_process(*pid, self.kill_wait)
                        };
                        match r {
                            Ok(k) => Ok(format!(
                                "SIGKILL sent to {} process(es) {:?}, {} seen exited{}",
                                k.killed.len(),
                                k.killed,
                                k.confirmed_dead.len(),
                                if k.truncated { " (tree truncated)" } else { "" }
                            )),
                            Err(KillError::Gone(_)) => Ok("already exited".into()),
                            Err(e) => Err(e.to_string()),
                        }
                    }
                }
            }
            PlannedAction::FreezeCgroup { target, .. }
            | PlannedAction::KillCgroup { target, .. } => {
                let kill = matches!(action, PlannedAction::KillCgroup { .. });
                self.cgroup_action(target, kill, &mut rec.target)
            }
        };
        rec.time_ns = now_ns();
        match result {
            Ok(d) => {
                rec.ok = true;
                rec.detail = d;
            }
            Err(d) => rec.detail = d,
        }
        rec
    }

    fn cgroup_action(
        &mut self,
        target: &CgroupTarget,
        kill: bool,
        shown: &mut String,
    ) -> Result<String, String> {
        let (kill_wait, freeze_wait) = (self.kill_wait, self.freeze_wait);
        let fs_ = self.cgroup_fs()?.clone();
        let group = match target {
            CgroupTarget::Unknown => {
                return Err("the alert carries no process id nor cgroup".into())
            }
            CgroupTarget::Path(p) => fs_.group(p),
            CgroupTarget::OfPid(pid) => fs_.cgroup_of(*pid),
        }
        .map_err(|e| e.to_string())?;
        *shown = format!("cgroup {}", group.path());
        if kill {
            if self.killed_cgroups.contains(group.path()) {
                return Ok("already killed".into());
            }
            group.kill(&fs_, kill_wait).map_err(|e| e.to_string())?;
            self.killed_cgroups.insert(group.path().to_owned());
            Ok("every process killed (cgroup.kill), cgroup empty".into())
        } else {
            match group.is_frozen() {
                Ok(true) => return Ok("already frozen".into()),
                Err(CgroupError::Io { .. }) if self.killed_cgroups.contains(group.path()) => {
                    return Ok("already killed".into())
                }
                _ => {}
            }
            group.freeze(&fs_, freeze_wait).map_err(|e| e.to_string())?;
            Ok("frozen (cgroup.events: frozen 1)".into())
        }
    }
}

/// Totals at the end of a session.
#[derive(Clone, Debug, Default)]
pub struct ResponderSummary {
    /// Per-sink counters.
    pub sinks: Vec<(String, SinkStats)>,
    /// Capture counters, if capturing.
    pub capture: Option<CaptureStats>,
    /// Captures closed at shutdown.
    pub closed_capture: Option<CaptureInfo>,
    /// Actions done and failed.
    pub actions_ok: u64,
    /// Actions that failed.
    pub actions_failed: u64,
    /// Sink errors seen (each is also counted as a drop of its sink).
    pub sink_errors: u64,
}

/// Sinks, policies, capture and the executor, driven by the event loop.
pub struct Responder {
    sinks: SinkSet,
    policies: RuntimePolicies,
    capture: Option<Capturer>,
    executor: Executor,
    /// Also send each action record to the sinks as an alert (default true).
    pub report_actions: bool,
    actions_ok: u64,
    actions_failed: u64,
    sink_errors: u64,
    last_sink_error: Option<String>,
}

impl Responder {
    /// Check that the policies' sinks exist and that a capture directory is given if needed.
    pub fn new(
        sinks: SinkSet,
        policies: RuntimePolicies,
        capture: Option<Capturer>,
    ) -> Result<Responder, ResponderError> {
        let names = sinks.names();
        for (policy, sink) in policies.sink_names() {
            if !names.contains(&sink) {
                return Err(ResponderError::UnknownSink {
                    policy: policy.to_owned(),
                    sink: sink.to_owned(),
                    known: if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    },
                });
            }
        }
        if policies.wants_capture() && capture.is_none() {
            return Err(ResponderError::NoCaptureDir);
        }
        Ok(Responder {
            sinks,
            policies,
            capture,
            executor: Executor::default(),
            report_actions: true,
            actions_ok: 0,
            actions_failed: 0,
            sink_errors: 0,
            last_sink_error: None,
        })
    }

    /// Replace the executor (custom waits, a given cgroup mount).
    pub fn with_executor(mut self, e: Executor) -> Responder {
        self.executor = e;
        self
    }

    /// The sinks (e.g. to add one later).
    pub fn sinks_mut(&mut self) -> &mut SinkSet {
        &mut self.sinks
    }

    /// The policies.
    pub fn policies(&self) -> &RuntimePolicies {
        &self.policies
    }

    /// The last sink error seen, taken (print it once, not per alert).
    pub fn take_sink_error(&mut self) -> Option<String> {
        self.last_sink_error.take()
    }

    /// Whether a capture directory is configured (only then does [`Responder::observe`]
    /// need the events).
    pub fn captures(&self) -> bool {
        self.capture.is_some()
    }

    /// Feed one event (before evaluating rules on it). Returns a capture closed by it.
    pub fn observe(&mut self, ev: &Arc<ReplayEvent>) -> Option<CaptureInfo> {
        let closed = self.capture.as_mut()?.record(ev);
        if let Some(c) = &closed {
            self.report_capture(c);
        }
        closed
    }

    /// Handle one alert: deliver it (default sinks plus the ones policies notify), then run
    /// the actions of every matching policy. Returns what each action did.
    pub fn on_alert(&mut self, alert: &Alert, scope: &Scope) -> Vec<ActionRecord> {
        let plan = self.policies.actions_for(alert, scope);
        let mut targets = Targets::Default;
        for a in &plan {
            if let PlannedAction::Notify { targets: t, .. } = a {
                targets.merge(t);
            }
        }
        let now = now_ns();
        let errs = self.sinks.deliver(alert, &targets, now);
        self.note_errors(errs);
        let mut records = Vec::with_capacity(plan.len());
        for a in &plan {
            let rec = self.executor.execute(a, alert, self.capture.as_mut());
            if rec.ok {
                self.actions_ok += 1;
            } else {
                self.actions_failed += 1;
            }
            if self.report_actions && !matches!(a, PlannedAction::Notify { .. }) {
                let errs = self.sinks.deliver(
                    &rec.to_alert(&alert.hostname),
                    &Targets::Default,
                    rec.time_ns,
                );
                self.note_errors(errs);
            }
            records.push(rec);
        }
        records
    }

    /// Periodic work: rate-limit summaries due, capture window closed. Call it at least
    /// once a second, also when no event comes.
    pub fn tick(&mut self, now_ns: u64) -> Option<CaptureInfo> {
        let errs = self.sinks.tick(now_ns);
        self.note_errors(errs);
        let closed = self.capture.as_mut()?.tick(now_ns);
        if let Some(c) = &closed {
            self.report_capture(c);
        }
        closed
    }

    /// Close the open capture and the sinks (queued webhook deliveries get `grace`).
    pub fn finish(&mut self, grace: Duration) -> ResponderSummary {
        let closed = self.capture.as_mut().and_then(Capturer::close);
        if let Some(c) = &closed {
            self.report_capture(c);
        }
        let errs = self.sinks.close(grace);
        self.note_errors(errs);
        ResponderSummary {
            sinks: self.sinks.stats(),
            capture: self.capture.as_ref().map(Capturer::stats),
            closed_capture: closed,
            actions_ok: self.actions_ok,
            actions_failed: self.actions_failed,
            sink_errors: self.sink_errors,
        }
    }

    /// Current per-sink counters.
    pub fn sink_stats(&self) -> Vec<(String, SinkStats)> {
        self.sinks.stats()
    }

    fn report_capture(&mut self, c: &CaptureInfo) {
        if !self.report_actions {
            return;
        }
        let rec = ActionRecord {
            policy: String::new(),
            action: "capture",
            target: c.path.display().to_string(),
            ok: c.error.is_none(),
            detail: format!("capture closed: {}", c.outcome()),
            trigger_rule: c.triggers.join(", "),
            time_ns: now_ns(),
        };
        let host = hostname();
        let errs = self
            .sinks
            .deliver(&rec.to_alert(&host), &Targets::Default, rec.time_ns);
        self.note_errors(errs);
    }

    fn note_errors(&mut self, errs: Vec<SinkError>) {
        self.sink_errors += errs.len() as u64;
        if let Some(e) = errs.into_iter().last() {
            self.last_sink_error = Some(e.to_string());
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}
