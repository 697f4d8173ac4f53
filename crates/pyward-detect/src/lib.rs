//! # pyward-detect: stateful behavioural detectors over the rules engine's events
//!
//! Three detectors that a stateless rule cannot express, fed the same
//! [`ReplayEvent`]s as the rules engine, so a live run and `pyward rules replay` of its
//! recording give the same detections:
//!
//! - **drift**: a file created or modified after the monitor (or its container) started is
//!   executed — joined to its write by `(device, inode)` — run as a script by an interpreter,
//!   or made executable; execution from a memfd, `/dev/shm` or a deleted file.
//! - **ransomware**: per process tree, a sliding window over files read and then destroyed
//!   (overwritten, replaced by an output named after them, renamed, deleted), scored by the
//!   magic number, text-ness and entropy of the new bytes against what was there; decoys.
//! - **self_delete**: an interpreter deleting the script it runs, a process its executable.
//!
//! ```
//! use pyward_detect::{DetectConfig, DetectorSet};
//! use pyward_rules::ReplayEvent;
//!
//! let mut set = DetectorSet::new(DetectConfig::default());
//! let ev = ReplayEvent::parse_line(r#"{"time":1,"type":"unlink","proc":{"pid":7,"name":"python3","args":["x.py"],"cwd":"/w/"},"args":{"path":"x.py"}}"#).unwrap();
//! for d in set.observe(&ev) {
//!     println!("{}", serde_json::to_string(&d.to_alert(&ev, "host")).unwrap());
//! }
//! ```
//!
//! Configuration comes from `- detector: NAME` items of the rules files ([`config`]); the
//! defaults and their sources are in `rules/pyward_detectors.yaml`. Memory is bounded:
//! every table has a cap with least-recently-used eviction.

pub mod config;
pub mod content;
mod detection;
pub mod glob;

mod bounded;
mod drift;
mod procs;
mod ransomware;
mod selfdelete;
mod view;
mod yaml;

pub use config::{from_yaml_files, DetectConfig, DetectError};
pub use detection::{Detection, DetectorKind};
pub use view::FileId;

use pyward_rules::ReplayEvent;

/// Sizes of the detectors' state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Events observed.
    pub events: u64,
    /// Processes tracked.
    pub processes: usize,
    /// Files remembered as written after start.
    pub drift_files: usize,
    /// Process trees with a ransomware window.
    pub ransomware_trees: usize,
    /// Files remembered over all ransomware windows.
    pub ransomware_files: usize,
}

/// All enabled detectors, with the process bookkeeping they share.
pub struct DetectorSet {
    cfg: DetectConfig,
    tracker: procs::Tracker,
    drift: Option<drift::Drift>,
    ransomware: Option<ransomware::Ransomware>,
    self_delete: Option<selfdelete::SelfDelete>,
    events: u64,
}

impl DetectorSet {
    /// The detectors `cfg` enables.
    pub fn new(cfg: DetectConfig) -> DetectorSet {
        DetectorSet {
            tracker: procs::Tracker::new(&cfg.tracking),
            drift: cfg
                .drift
                .enabled
                .then(|| drift::Drift::new(cfg.drift.clone())),
            ransomware: cfg
                .ransomware
                .enabled
                .then(|| ransomware::Ransomware::new(cfg.ransomware.clone())),
            self_delete: cfg
                .self_delete
                .enabled
                .then(|| selfdelete::SelfDelete::new(cfg.self_delete.clone())),
            cfg,
            events: 0,
        }
    }

    /// Set when monitoring started (ns since the epoch): executables whose inode changed
    /// later count as drift. Without it, the time of the first event is used.
    pub fn with_start_time(mut self, ns: u64) -> DetectorSet {
        self.tracker.set_start(ns);
        self
    }

    /// The configuration in force.
    pub fn config(&self) -> &DetectConfig {
        &self.cfg
    }

    /// Events observed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// How much state the detectors hold (for tests and `--stats`).
    pub fn stats(&self) -> Stats {
        let (trees, tree_files) = self.ransomware.as_ref().map_or((0, 0), |r| r.tracked());
        Stats {
            events: self.events,
            processes: self.tracker.len(),
            drift_files: self.drift.as_ref().map_or(0, |d| d.tracked()),
            ransomware_trees: trees,
            ransomware_files: tree_files,
        }
    }

    /// Feed one event; returns the detections it completes (usually none).
    pub fn observe(&mut self, ev: &ReplayEvent) -> Vec<Detection> {
        let mut out = Vec::new();
        if ev.dir.as_deref() == Some(">") {
            return out; // enter events carry nothing the exit does not
        }
        self.events += 1;
        if self.tracker.start_ns().is_none() {
            self.tracker.set_start(view::time_ns(ev));
        }
        let op = view::op(ev);
        if op == view::Op::Other {
            return out;
        }
        self.tracker.before(ev, op);
        let root = self.tracker.root(ev);
        if let Some(d) = &mut self.self_delete {
            d.observe(ev, op, &self.tracker, root, &mut out);
        }
        if let Some(d) = &mut self.drift {
            d.observe(ev, op, &self.tracker, root, &mut out);
        }
        if let Some(d) = &mut self.ransomware {
            d.observe(ev, op, &self.tracker, root, &mut out);
        }
        self.tracker.after(ev, op);
        out
    }
}
