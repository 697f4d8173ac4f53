//! Folding of repeated identical alerts: the first of a kind goes out at once, the repeats
//! seen within the window are counted and go out as one "(repeated N times)" alert when the
//! window closes.

use std::collections::HashMap;
use std::time::Duration;

use pyward_rules::Alert;

use crate::sink::Targets;

/// Most distinct alert kinds tracked at once; beyond it new kinds pass unlimited (memory
/// stays bounded whatever the alert stream).
pub const MAX_TRACKED: usize = 4096;

/// Output field set on a summary alert: how many alerts it stands for beyond the first.
pub const REPEATED_FIELD: &str = "pyward.repeated";

pub(crate) enum Verdict {
    Emit,
    Suppressed,
}

struct Slot {
    window_end: u64,
    suppressed: u64,
    last: Option<Alert>,
    targets: Targets,
}

/// Rate limiter keyed by rule and output fields apart from time.
pub(crate) struct RateLimiter {
    window_ns: u64,
    slots: HashMap<String, Slot>,
    /// Earliest window end among `slots` (skip scanning before it).
    next_due: u64,
}

impl RateLimiter {
    pub(crate) fn new(window: Duration) -> RateLimiter {
        RateLimiter {
            window_ns: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX),
            slots: HashMap::new(),
            next_due: u64::MAX,
        }
    }

    pub(crate) fn check(&mut self, alert: &Alert, targets: &Targets, now: u64) -> Verdict {
        if self.window_ns == 0 {
            return Verdict::Emit;
        }
        let key = key_of(alert);
        if let Some(slot) = self.slots.get_mut(&key) {
            if now < slot.window_end {
                slot.suppressed += 1;
                slot.last = Some(alert.clone());
                slot.targets.merge(targets);
                return Verdict::Suppressed;
            }
            // The window is over (a summary, if any, went out in `due`): start a new one.
            self.slots.remove(&key);
        }
        if self.slots.len() >= MAX_TRACKED {
            return Verdict::Emit;
        }
        let end = now.saturating_add(self.window_ns);
        self.next_due = self.next_due.min(end);
        self.slots.insert(
            key,
            Slot {
                window_end: end,
                suppressed: 0,
                last: None,
                targets: targets.clone(),
            },
        );
        Verdict::Emit
    }

    /// Summaries of the windows closed by `now`, oldest first.
    pub(crate) fn due(&mut self, now: u64) -> Vec<(Alert, Targets)> {
        if now < self.next_due {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut next = u64::MAX;
        self.slots.retain(|_, slot| {
            if slot.window_end > now {
                next = next.min(slot.window_end);
                return true;
            }
            if let Some(mut a) = slot.last.take() {
                if slot.suppressed > 0 {
                    let noun = if slot.suppressed == 1 {
                        "time"
                    } else {
                        "times"
                    };
                    a.output = format!("{} (repeated {} {noun})", a.output, slot.suppressed);
                    a.output_fields
                        .insert(REPEATED_FIELD.into(), slot.suppressed.into());
                    out.push((slot.window_end, a, std::mem::take(&mut slot.targets)));
                }
            }
            false
        });
        self.next_due = next;
        out.sort_by_key(|(end, _, _)| *end);
        out.into_iter().map(|(_, a, t)| (a, t)).collect()
    }
}

/// Fields that change with every event and so do not make two alerts different.
fn is_volatile(field: &str) -> bool {
    field.starts_with("evt.time")
        || field.starts_with("evt.datetime")
        || field == "evt.rawtime"
        || field.starts_with("evt.rawtime.")
        || field == "evt.reltime"
        || field == "evt.num"
}

fn key_of(alert: &Alert) -> String {
    let mut k = String::with_capacity(128);
    k.push_str(&alert.rule);
    for (name, v) in &alert.output_fields {
        if is_volatile(name) {
            continue;
        }
        k.push('\u{1}');
        k.push_str(name);
        k.push('\u{2}');
        k.push_str(&v.to_string());
    }
    k
}
