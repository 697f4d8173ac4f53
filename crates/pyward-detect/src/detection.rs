//! What a detector reports, and its conversion to the rules engine's [`Alert`] (Falco's JSON
//! shape), so that rule alerts and detector alerts go through the same sinks.

use std::collections::BTreeMap;

use pyward_rules::{Alert, Event, OutputValue, Priority, ReplayEvent};
use serde::Serialize;

use crate::view;

/// Which detector produced a detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    /// Running what was written after start.
    Drift,
    /// Mass encryption of files, or a decoy file touched.
    Ransomware,
    /// A script or executable deleting itself.
    SelfDelete,
}

impl DetectorKind {
    /// The name used in configuration (`- detector: NAME`).
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorKind::Drift => "drift",
            DetectorKind::Ransomware => "ransomware",
            DetectorKind::SelfDelete => "self_delete",
        }
    }
}

/// One finding of a behavioural detector.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detection {
    /// The detector.
    pub detector: DetectorKind,
    /// Rule name, as an alert's `rule` (`Ransomware-like File Encryption`).
    pub rule: String,
    /// Priority.
    pub priority: Priority,
    /// Tags, sorted, MITRE ATT&CK technique ids among them.
    pub tags: Vec<String>,
    /// The process that did the last step.
    pub pid: Option<u64>,
    /// Root of its process tree as far as the events tell (what a response would stop).
    pub tree_root: Option<u64>,
    /// Time of the event that completed the detection, ns since the epoch.
    pub time_ns: u64,
    /// Falco-style output without the time/priority prefix: `Headline | key=value ...`.
    pub output: String,
    /// Evidence: files, counts, entropy values, how the join was made (`detect.*` keys).
    pub evidence: BTreeMap<String, OutputValue>,
}

/// Common process fields put in every output and in `output_fields`, as Falco names them.
const PROC_FIELDS: &[&str] = &[
    "proc.name",
    "proc.pid",
    "proc.exepath",
    "proc.cmdline",
    "proc.pname",
    "user.name",
    "user.uid",
    "container.id",
    "container.name",
    "evt.type",
];

impl Detection {
    /// Falco's text line: `HH:MM:SS.nnnnnnnnn: Priority output`.
    pub fn format_line(&self) -> String {
        format!(
            "{}: {} {}",
            time_text(self.time_ns),
            self.priority,
            self.output
        )
    }

    /// The detection as an alert in Falco's JSON shape (same as rule alerts); `ev` is the
    /// event that completed it (for the process fields).
    pub fn to_alert(&self, ev: &ReplayEvent, hostname: &str) -> Alert {
        let mut fields: BTreeMap<String, OutputValue> = BTreeMap::new();
        for (k, v) in proc_fields(ev) {
            fields.insert(k.to_owned(), v);
        }
        for (k, v) in &self.evidence {
            fields.insert(k.clone(), v.clone());
        }
        // Runtime policies select detections by this field (`match: detectors: [...]`).
        fields.insert(
            "detect.detector".into(),
            OutputValue::from(self.detector.as_str()),
        );
        fields.insert(
            "detect.tree_root".into(),
            self.tree_root.map_or(OutputValue::Null, OutputValue::from),
        );
        fields.insert("evt.time".into(), OutputValue::from(self.time_ns));
        Alert {
            hostname: hostname.to_owned(),
            output: self.format_line(),
            output_fields: fields,
            priority: self.priority,
            rule: self.rule.clone(),
            source: "syscall".into(),
            tags: self.tags.clone(),
            time: time_iso(self.time_ns),
        }
    }
}

fn proc_fields(ev: &ReplayEvent) -> Vec<(&'static str, OutputValue)> {
    let s = |o: Option<&str>| o.map_or(OutputValue::Null, OutputValue::from);
    let u = |o: Option<u64>| o.map_or(OutputValue::Null, OutputValue::from);
    let p = &ev.proc;
    let (cid, cname) = match &ev.container {
        None => (OutputValue::from("host"), OutputValue::from("host")),
        Some(c) => (s(c.id.as_deref()), s(c.name.as_deref())),
    };
    PROC_FIELDS
        .iter()
        .map(|&k| {
            let v = match k {
                "proc.name" => s(p.name.as_deref()),
                "proc.pid" => u(view::pid(ev)),
                "proc.exepath" => s(p.exepath.as_deref()),
                "proc.cmdline" => s(p.cmdline.as_deref()),
                "proc.pname" => s(ev.ancestors.first().and_then(|a| a.name.as_deref())),
                "user.name" => s(ev.user.name.as_deref()),
                "user.uid" => u(ev.user.uid),
                "container.id" => cid.clone(),
                "container.name" => cname.clone(),
                _ => OutputValue::from(ev.event_type.as_str()),
            };
            (k, v)
        })
        .collect()
}

fn text(v: &OutputValue) -> String {
    match v {
        OutputValue::Null => "<NA>".into(),
        OutputValue::String(s) => sanitize(s),
        other => other.to_string(),
    }
}

/// Falco escapes control characters in output.
fn sanitize(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Builds detections with the common fields filled in.
pub(crate) struct Builder<'a> {
    pub detector: DetectorKind,
    pub rule: &'a str,
    pub priority: Priority,
    pub tags: &'a [&'a str],
    pub extra_tags: &'a [String],
}

impl Builder<'_> {
    /// A detection for `ev`: `headline | evidence... process fields...`.
    pub(crate) fn build(
        &self,
        ev: &ReplayEvent,
        tree_root: Option<u64>,
        headline: &str,
        evidence: Vec<(&str, OutputValue)>,
    ) -> Detection {
        let mut out = String::from(headline);
        out.push_str(" |");
        let mut ev_map = BTreeMap::new();
        for (k, v) in evidence {
            out.push(' ');
            out.push_str(k);
            out.push('=');
            out.push_str(&text(&v));
            ev_map.insert(format!("detect.{k}"), v);
        }
        for (k, v) in proc_fields(ev) {
            let label = match k {
                "proc.name" => "process",
                "proc.pid" => "proc_pid",
                "proc.exepath" => "proc_exepath",
                "proc.cmdline" => "command",
                "proc.pname" => "parent",
                "user.name" => "user",
                "user.uid" => "user_uid",
                "container.id" => "container_id",
                "container.name" => "container_name",
                _ => "evt_type",
            };
            out.push(' ');
            out.push_str(label);
            out.push('=');
            out.push_str(&text(&v));
        }
        out.push_str(" tree_root=");
        out.push_str(&tree_root.map_or("<NA>".to_owned(), |r| r.to_string()));
        let mut tags: Vec<String> = self
            .tags
            .iter()
            .map(|t| (*t).to_owned())
            .chain(self.extra_tags.iter().cloned())
            .collect();
        tags.sort();
        tags.dedup();
        Detection {
            detector: self.detector,
            rule: self.rule.to_owned(),
            priority: self.priority,
            tags,
            pid: view::pid(ev),
            tree_root,
            time_ns: ev.time_ns(),
            output: out,
            evidence: ev_map,
        }
    }
}

fn fmt_time(ns: u64, iso: bool) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(0);
    let sub = ns % 1_000_000_000;
    let Ok(dt) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return ns.to_string();
    };
    let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
    if iso {
        let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{sub:09}Z")
    } else {
        format!("{h:02}:{mi:02}:{s:02}.{sub:09}")
    }
}

/// `HH:MM:SS.nnnnnnnnn` (UTC), Falco's `%evt.time`.
pub(crate) fn time_text(ns: u64) -> String {
    fmt_time(ns, false)
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, an alert's `time`.
pub(crate) fn time_iso(ns: u64) -> String {
    fmt_time(ns, true)
}
