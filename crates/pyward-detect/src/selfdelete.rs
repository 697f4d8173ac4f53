//! Self-deleting scripts and executables: an interpreter (or a child of it, as in
//! `rm -- "$0"`) unlinking the script it runs, resolved against its working directory, or a
//! process deleting its own executable (ATT&CK T1070.004, incident 2's encryption script).

use pyward_rules::{OutputValue, ReplayEvent};

use crate::bounded::Lru;
use crate::config::{allowed, SelfDeleteConfig};
use crate::detection::{Builder, Detection, DetectorKind};
use crate::procs::Tracker;
use crate::view::{self, Op};

const TAGS: &[&str] = &[
    "T1070.004",
    "mitre_defense_evasion",
    "self_delete",
    "filesystem",
    "pyward",
];

pub(crate) struct SelfDelete {
    cfg: SelfDeleteConfig,
    seen: Lru<(u64, String), ()>,
}

impl SelfDelete {
    pub(crate) fn new(cfg: SelfDeleteConfig) -> SelfDelete {
        SelfDelete {
            cfg,
            seen: Lru::new(4096),
        }
    }

    pub(crate) fn observe(
        &mut self,
        ev: &ReplayEvent,
        op: Op,
        tr: &Tracker,
        root: Option<u64>,
        out: &mut Vec<Detection>,
    ) {
        if op != Op::Unlink || view::failed(ev) || view::removes_dir(ev) {
            return;
        }
        let Some((p, d)) = view::path_arg(ev, &["path", "name"], "dirfd") else {
            return;
        };
        let Some(path) = tr.resolve(ev, p, d) else {
            return;
        };
        let chain = tr.chain(ev, self.cfg.ancestor_depth);
        for (depth, who) in chain.iter().enumerate() {
            let script = who.script(&self.cfg.interpreters);
            let exe = who
                .exepath
                .as_deref()
                .map(|e| view::normalize(e.strip_suffix(" (deleted)").unwrap_or(e)));
            let (rule, what) = if script.as_deref() == Some(path.as_str()) {
                ("Self-Deleting Script", "script")
            } else if exe.as_deref() == Some(path.as_str()) {
                ("Self-Deleting Executable", "executable")
            } else {
                continue;
            };
            // Allowlisted when the process running the deleted file is (pip upgrading itself).
            if allowed(&self.cfg.allow, &chain[depth..], Some(&path)) {
                return;
            }
            let key = (who.pid.unwrap_or(0), path.clone());
            if self.seen.peek(&key).is_some() {
                return;
            }
            self.seen.insert(key, ());
            let b = Builder {
                detector: DetectorKind::SelfDelete,
                rule,
                priority: self.cfg.priority,
                tags: TAGS,
                extra_tags: &self.cfg.tags,
            };
            let headline = if depth == 0 {
                format!("Process deleted the {what} it is running")
            } else {
                format!("Process deleted the {what} its ancestor is running")
            };
            out.push(b.build(
                ev,
                root,
                &headline,
                vec![
                    ("file", OutputValue::from(path.clone())),
                    ("runner", OutputValue::from(who.name.clone())),
                    (
                        "runner_pid",
                        who.pid.map_or(OutputValue::Null, OutputValue::from),
                    ),
                    ("depth", OutputValue::from(depth)),
                ],
            ));
            return;
        }
    }
}
