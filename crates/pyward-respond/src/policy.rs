//! Runtime policies (YAML, in the spirit of Sysdig's runtime policies): which alerts, in
//! which scope, lead to which actions.
//!
//! ```yaml
//! policies:
//!   - name: stop exfiltration
//!     enabled: true                 # default true
//!     scope: all                    # all (default) | host | containers | run
//!                                   # | {cgroup: /path} | {container: ID-or-name} | a list of these
//!     match:                        # any of rules/tags/detectors (none given = every alert),
//!       rules: ["SSH Information Read by Non-SSH Program", "Outbound Connection*"]  # `*` globs
//!       tags: [T1552.004]           # case-insensitive
//!       detectors: [ransomware]
//!       min_priority: warning       # and at least this priority
//!     actions:
//!       notify: [webhook]           # true = every sink; a list = these sinks too
//!       capture: {before: 5s, after: 15s}   # or `true` for 5 s / 15 s
//!       kill_process: true
//!       kill_tree: true
//!       freeze_container: true      # cgroup v2 freeze of the alert's cgroup
//!       kill_container: true        # cgroup.kill of the alert's cgroup
//! ```
//!
//! A detector's name is read from the alert's `detect.detector` (or `detector`,
//! `pyward.detector`) output field, or a `detector:NAME` tag; a detector name also matches a
//! rule of that name. `kill_tree` kills from the detector's `detect.tree_root` when the alert
//! has one (the root of the offending tree), else from the alert's process.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pyward_rules::{Alert, Priority, ReplayEvent};

use crate::sink::Targets;
use crate::yaml::{self, Node, Value};

pub use crate::yaml::Pos;

/// Default capture window before the alert (incident 1's policy).
pub const DEFAULT_BEFORE: Duration = Duration::from_secs(5);
/// Default capture window after the alert.
pub const DEFAULT_AFTER: Duration = Duration::from_secs(15);
/// Longest capture window side accepted.
pub const MAX_WINDOW: Duration = Duration::from_secs(3600);

/// One problem in a runtime-policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDiag {
    /// Line and column.
    pub pos: Pos,
    /// What is wrong and what to do.
    pub message: String,
}

/// A runtime-policy file could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The file (or the name given to [`RuntimePolicies::from_yaml_str`]).
    pub file: PathBuf,
    /// Every problem found, in file order.
    pub diags: Vec<PolicyDiag>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diags.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}: {}", self.file.display(), d.pos, d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}

/// Where a policy applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyScope {
    /// Everywhere.
    All,
    /// Host processes only (not in a container).
    Host,
    /// Any container.
    Containers,
    /// This cgroup v2 path and below (`/system.slice/foo.service`).
    Cgroup(String),
    /// A container by id (or id prefix of at least 12 characters) or name.
    Container(String),
    /// The process tree of `pyward run`.
    Run,
}

/// Which alerts a policy takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyMatch {
    /// Rule names (`*` matches any run of characters).
    pub rules: Vec<String>,
    /// Tags (case-insensitive).
    pub tags: Vec<String>,
    /// Detector names.
    pub detectors: Vec<String>,
    /// Least priority taken.
    pub min_priority: Option<Priority>,
}

/// The capture window around an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaptureWindow {
    /// Events kept from before the alert.
    pub before: Duration,
    /// Events captured after it.
    pub after: Duration,
}

/// What a policy does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyActions {
    /// Send the alert to these sinks (in addition to the default ones).
    pub notify: Option<Targets>,
    /// SIGKILL the alert's process.
    pub kill_process: bool,
    /// Stop and SIGKILL the alert's process and all its descendants.
    pub kill_tree: bool,
    /// Freeze the alert's cgroup (container or `pyward run` group).
    pub freeze_container: bool,
    /// Kill every process of the alert's cgroup.
    pub kill_container: bool,
    /// Write a capture file around the alert.
    pub capture: Option<CaptureWindow>,
}

/// One runtime policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimePolicy {
    /// Name (unique in the file).
    pub name: String,
    /// Disabled policies are loaded but never match.
    pub enabled: bool,
    /// Where it applies (any of these).
    pub scope: Vec<PolicyScope>,
    /// Which alerts it takes.
    pub matcher: PolicyMatch,
    /// What it does.
    pub actions: PolicyActions,
    /// Where it is defined.
    pub pos: Pos,
}

/// The context of an alert, to decide scope and targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The process the alert is about.
    pub pid: Option<u32>,
    /// Container id (`None` or `host` for a host process).
    pub container_id: Option<String>,
    /// Container name.
    pub container_name: Option<String>,
    /// cgroup v2 path of the process (relative to the hierarchy, `/a/b`), when known.
    pub cgroup: Option<String>,
    /// The process belongs to the tree `pyward run` follows.
    pub in_run_tree: bool,
}

impl Scope {
    /// From the event that raised the alert (pid, container).
    pub fn from_event(ev: &ReplayEvent) -> Scope {
        let pid = ev.proc.pid.and_then(|p| u32::try_from(p).ok());
        let (container_id, container_name) = match &ev.container {
            Some(c) => (c.id.clone(), c.name.clone()),
            None => (None, None),
        };
        Scope {
            pid,
            container_id,
            container_name,
            cgroup: None,
            in_run_tree: false,
        }
    }

    /// From an alert's output fields (`proc.pid`, `container.id`, `container.name`), for
    /// alerts whose event is gone.
    pub fn from_alert(alert: &Alert) -> Scope {
        let s = |k: &str| {
            alert
                .output_fields
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Scope {
            pid: alert
                .output_fields
                .get("proc.pid")
                .and_then(serde_json::Value::as_u64)
                .and_then(|p| u32::try_from(p).ok()),
            container_id: s("container.id"),
            container_name: s("container.name"),
            cgroup: None,
            in_run_tree: false,
        }
    }

    /// Mark the alert as coming from the `pyward run` tree.
    pub fn in_run_tree(mut self, yes: bool) -> Scope {
        self.in_run_tree = yes;
        self
    }

    /// Set the cgroup v2 path (e.g. the `pyward run` cgroup).
    pub fn with_cgroup(mut self, path: &str) -> Scope {
        self.cgroup = Some(path.to_owned());
        self
    }

    fn is_host(&self) -> bool {
        matches!(self.container_id.as_deref(), None | Some("") | Some("host"))
    }
}

/// Where a cgroup action applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupTarget {
    /// A known cgroup v2 path.
    Path(String),
    /// The cgroup of this pid, read when the action runs.
    OfPid(u32),
    /// Nothing to act on: the alert has no pid nor cgroup.
    Unknown,
}

/// One action decided for one alert.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlannedAction {
    /// Write a capture file around the alert.
    Capture {
        /// Policy that asked.
        policy: String,
        /// Label (the rule name).
        label: String,
        /// Alert time, ns since the epoch.
        at_ns: u64,
        /// Window.
        window: CaptureWindow,
    },
    /// Send to these sinks.
    Notify {
        /// Policy that asked.
        policy: String,
        /// Sinks.
        targets: Targets,
    },
    /// Freeze a cgroup.
    FreezeCgroup {
        /// Policy that asked.
        policy: String,
        /// Which cgroup.
        target: CgroupTarget,
    },
    /// SIGKILL one process.
    KillProcess {
        /// Policy that asked.
        policy: String,
        /// Process (`None`: the alert has no pid).
        pid: Option<u32>,
    },
    /// Stop then SIGKILL a process tree.
    KillTree {
        /// Policy that asked.
        policy: String,
        /// Root of the tree.
        pid: Option<u32>,
    },
    /// Kill every process of a cgroup.
    KillCgroup {
        /// Policy that asked.
        policy: String,
        /// Which cgroup.
        target: CgroupTarget,
    },
}

impl PlannedAction {
    /// The action's name as written in policies (`kill_tree`...).
    pub fn kind(&self) -> &'static str {
        match self {
            PlannedAction::Capture { .. } => "capture",
            PlannedAction::Notify { .. } => "notify",
            PlannedAction::FreezeCgroup { .. } => "freeze_container",
            PlannedAction::KillProcess { .. } => "kill_process",
            PlannedAction::KillTree { .. } => "kill_tree",
            PlannedAction::KillCgroup { .. } => "kill_container",
        }
    }

    /// The policy that asked for it.
    pub fn policy(&self) -> &str {
        match self {
            PlannedAction::Capture { policy, .. }
            | PlannedAction::Notify { policy, .. }
            | PlannedAction::FreezeCgroup { policy, .. }
            | PlannedAction::KillProcess { policy, .. }
            | PlannedAction::KillTree { policy, .. }
            | PlannedAction::KillCgroup { policy, .. } => policy,
        }
    }

    /// Order of execution: evidence first, then notification, then freeze before kills.
    fn rank(&self) -> u8 {
        match self {
            PlannedAction::Capture { .. } => 0,
            PlannedAction::Notify { .. } => 1,
            PlannedAction::FreezeCgroup { .. } => 2,
            PlannedAction::KillProcess { .. } => 3,
            PlannedAction::KillTree { .. } => 4,
            PlannedAction::KillCgroup { .. } => 5,
        }
    }

    /// Same effect, whichever policy asked.
    fn same_effect(&self, o: &PlannedAction) -> bool {
        use PlannedAction as P;
        match (self, o) {
            (P::Capture { .. }, P::Capture { .. }) => false,
            (P::Notify { .. }, P::Notify { .. }) => false,
            (P::FreezeCgroup { target: a, .. }, P::FreezeCgroup { target: b, .. })
            | (P::KillCgroup { target: a, .. }, P::KillCgroup { target: b, .. }) => a == b,
            (P::KillProcess { pid: a, .. }, P::KillProcess { pid: b, .. })
            | (P::KillTree { pid: a, .. }, P::KillTree { pid: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// A loaded runtime-policy file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimePolicies {
    /// Policies in file order.
    pub policies: Vec<RuntimePolicy>,
}

impl RuntimePolicies {
    /// No policy: alerts are only notified to the default sinks.
    pub fn empty() -> RuntimePolicies {
        RuntimePolicies::default()
    }

    /// Read and check a policy file. Errors carry `file:line:column`.
    pub fn from_yaml_file(path: &Path) -> Result<RuntimePolicies, PolicyError> {
        let fail = |m: String| PolicyError {
            file: path.to_path_buf(),
            diags: vec![PolicyDiag {
                pos: Pos { line: 0, col: 0 },
                message: m,
            }],
        };
        let meta = std::fs::metadata(path)
            .map_err(|e| fail(format!("cannot read the runtime-policy file: {e}")))?;
        if !meta.is_file() {
            return Err(fail(
                "not a regular file; give a runtime-policy YAML file".into(),
            ));
        }
        if meta.len() > yaml::MAX_BYTES as u64 {
            return Err(fail(format!(
                "the file is {} bytes, over the {}-byte limit for runtime policies",
                meta.len(),
                yaml::MAX_BYTES
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| {
            fail(format!(
                "cannot read the runtime-policy file (UTF-8 YAML expected): {e}"
            ))
        })?;
        RuntimePolicies::from_yaml_str(path, &text)
    }

    /// Parse policy text; `file` names it in errors.
    pub fn from_yaml_str(file: &Path, text: &str) -> Result<RuntimePolicies, PolicyError> {
        let root = yaml::parse(text).map_err(|e| PolicyError {
            file: file.to_path_buf(),
            diags: vec![PolicyDiag {
                pos: e.pos,
                message: format!("YAML syntax error: {}", e.message),
            }],
        })?;
        let mut r = Reader::default();
        let policies = r.file(&root);
        if r.diags.is_empty() {
            Ok(RuntimePolicies { policies })
        } else {
            Err(PolicyError {
                file: file.to_path_buf(),
                diags: r.diags,
            })
        }
    }

    /// Sink names the policies notify by name (check them against the configured sinks).
    pub fn sink_names(&self) -> Vec<(&str, &str)> {
        let mut v = Vec::new();
        for p in &self.policies {
            if let Some(Targets::Named(names)) = &p.actions.notify {
                for n in names {
                    v.push((p.name.as_str(), n.as_str()));
                }
            }
        }
        v
    }

    /// `true` if an enabled policy captures (a capture directory is then needed).
    pub fn wants_capture(&self) -> bool {
        self.policies
            .iter()
            .any(|p| p.enabled && p.actions.capture.is_some())
    }

    /// The actions every enabled policy matching `alert` in `scope` asks for, deduplicated
    /// and in execution order (capture, notify, freeze, kills). Pure: no I/O.
    pub fn actions_for(&self, alert: &Alert, scope: &Scope) -> Vec<PlannedAction> {
        let mut out: Vec<PlannedAction> = Vec::new();
        let at_ns = alert_time_ns(alert);
        let cg_target = || match (&scope.cgroup, scope.pid) {
            (Some(p), _) => CgroupTarget::Path(p.clone()),
            (None, Some(pid)) => CgroupTarget::OfPid(pid),
            (None, None) => CgroupTarget::Unknown,
        };
        for p in self.policies.iter().filter(|p| p.enabled) {
            if !p.scope.iter().any(|s| scope_matches(s, scope)) || !p.matcher.matches(alert) {
                continue;
            }
            let name = p.name.clone();
            let a = &p.actions;
            let mut push = |act: PlannedAction| {
                if !out.iter().any(|o| o.same_effect(&act)) {
                    out.push(act);
                }
            };
            if let Some(w) = a.capture {
                push(PlannedAction::Capture {
                    policy: name.clone(),
                    label: alert.rule.clone(),
                    at_ns,
                    window: w,
                });
            }
            if let Some(t) = &a.notify {
                push(PlannedAction::Notify {
                    policy: name.clone(),
                    targets: t.clone(),
                });
            }
            if a.freeze_container {
                push(PlannedAction::FreezeCgroup {
                    policy: name.clone(),
                    target: cg_target(),
                });
            }
            if a.kill_process {
                push(PlannedAction::KillProcess {
                    policy: name.clone(),
                    pid: scope.pid,
                });
            }
            if a.kill_tree {
                let root = alert
                    .output_fields
                    .get("detect.tree_root")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|p| u32::try_from(p).ok());
                push(PlannedAction::KillTree {
                    policy: name.clone(),
                    pid: root.or(scope.pid),
                });
            }
            if a.kill_container {
                push(PlannedAction::KillCgroup {
                    policy: name.clone(),
                    target: cg_target(),
                });
            }
        }
        out.sort_by_key(PlannedAction::rank);
        out
    }
}

/// The alert's event time in ns: `evt.time` output field, else its `time` text, else now.
pub fn alert_time_ns(alert: &Alert) -> u64 {
    if let Some(t) = alert
        .output_fields
        .get("evt.time")
        .and_then(serde_json::Value::as_u64)
    {
        return t;
    }
    time::OffsetDateTime::parse(&alert.time, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|d| u64::try_from(d.unix_timestamp_nanos()).ok())
        .unwrap_or_else(crate::sink::now_ns)
}

fn scope_matches(s: &PolicyScope, scope: &Scope) -> bool {
    match s {
        PolicyScope::All => true,
        PolicyScope::Host => scope.is_host(),
        PolicyScope::Containers => !scope.is_host(),
        PolicyScope::Run => scope.in_run_tree,
        PolicyScope::Cgroup(p) => scope.cgroup.as_deref().is_some_and(|c| {
            p == "/" || c == p || (c.starts_with(p.as_str()) && c[p.len()..].starts_with('/'))
        }),
        PolicyScope::Container(want) => {
            !scope.is_host()
                && (scope.container_name.as_deref() == Some(want.as_str())
                    || scope.container_id.as_deref().is_some_and(|id| {
                        id == want
                            || (want.len() >= 12 && id.starts_with(want.as_str()))
                            || (id.len() >= 12 && want.starts_with(id))
                    }))
        }
    }
}

impl PolicyMatch {
    /// `true` if the alert is one this policy takes.
    pub fn matches(&self, alert: &Alert) -> bool {
        if let Some(min) = self.min_priority {
            if !alert.priority.at_least(min) {
                return false;
            }
        }
        if self.rules.is_empty() && self.tags.is_empty() && self.detectors.is_empty() {
            return true;
        }
        self.rules.iter().any(|r| glob(r, &alert.rule))
            || self
                .tags
                .iter()
                .any(|t| alert.tags.iter().any(|a| a.eq_ignore_ascii_case(t)))
            || self.detectors.iter().any(|d| {
                detector_of(alert).is_some_and(|x| x.eq_ignore_ascii_case(d))
                    || alert.rule.eq_ignore_ascii_case(d)
            })
    }
}

/// The detector that raised an alert: `detect.detector` / `detector` / `pyward.detector`
/// output field or a `detector:NAME` tag.
pub fn detector_of(alert: &Alert) -> Option<&str> {
    for k in ["detect.detector", "detector", "pyward.detector"] {
        if let Some(s) = alert.output_fields.get(k).and_then(|v| v.as_str()) {
            return Some(s);
        }
    }
    alert.tags.iter().find_map(|t| t.strip_prefix("detector:"))
}

/// `*` matches any run of characters; everything else literally.
fn glob(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    if parts.len() == 1 {
        return pat == s;
    }
    let mut rest = s;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(at) = rest.find(part) {
            rest = &rest[at + part.len()..];
        } else {
            return false;
        }
    }
    true
}

/// Parse `5s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let v: f64 = num.parse().ok()?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" | "sec" | "secs" => v,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        _ => return None,
    };
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Duration::try_from_secs_f64(secs).ok()
}

#[derive(Default)]
struct Reader {
    diags: Vec<PolicyDiag>,
}

impl Reader {
    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(PolicyDiag {
            pos,
            message: message.into(),
        });
    }

    fn map<'a>(&mut self, n: &'a Node, what: &str) -> Option<&'a [(Node, Node)]> {
        match &n.value {
            Value::Map(m) => Some(m),
            _ => {
                self.err(
                    n.pos,
                    format!("{what} must be a mapping, found {}", n.kind()),
                );
                None
            }
        }
    }

    fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        match n.str() {
            Some(s) if !s.trim().is_empty() => Some(s.to_owned()),
            _ => {
                self.err(
                    n.pos,
                    format!("{what} must be a non-empty string, found {}", n.kind()),
                );
                None
            }
        }
    }

    fn strings(&mut self, n: &Node, what: &str) -> Vec<String> {
        match &n.value {
            Value::Seq(items) => items.iter().filter_map(|i| self.string(i, what)).collect(),
            Value::Scalar { .. } => self.string(n, what).into_iter().collect(),
            Value::Null => Vec::new(),
            Value::Map(_) => {
                self.err(
                    n.pos,
                    format!("{what} must be a list of strings, found a mapping"),
                );
                Vec::new()
            }
        }
    }

    fn boolean(&mut self, n: &Node, what: &str) -> bool {
        match n.bool() {
            Some(b) => b,
            None => {
                self.err(
                    n.pos,
                    format!("{what} must be true or false, found {}", n.kind()),
                );
                false
            }
        }
    }

    fn file(&mut self, root: &Node) -> Vec<RuntimePolicy> {
        let list = match &root.value {
            Value::Null => return Vec::new(),
            Value::Seq(items) => items.as_slice(),
            Value::Map(entries) => {
                let mut found = None;
                for (k, v) in entries {
                    match k.str() {
                        Some("policies") => found = Some(v),
                        _ => self.err(
                            k.pos,
                            format!(
                                "unknown top-level key {:?}: a runtime-policy file has `policies:` (a list)",
                                k.str().unwrap_or("?")
                            ),
                        ),
                    }
                }
                match found.map(|v| &v.value) {
                    Some(Value::Seq(items)) => items.as_slice(),
                    Some(Value::Null) | None => &[],
                    Some(_) => {
                        if let Some(v) = found {
                            self.err(v.pos, "`policies` must be a list of policies");
                        }
                        &[]
                    }
                }
            }
            Value::Scalar { .. } => {
                self.err(
                    root.pos,
                    "a runtime-policy file is a mapping with `policies:` (a list)",
                );
                return Vec::new();
            }
        };
        let mut out: Vec<RuntimePolicy> = Vec::new();
        for item in list {
            if let Some(p) = self.policy(item) {
                if out.iter().any(|o| o.name == p.name) {
                    self.err(
                        p.pos,
                        format!(
                            "policy {:?} is defined twice; give each policy a unique name",
                            p.name
                        ),
                    );
                    continue;
                }
                out.push(p);
            }
        }
        out
    }

    fn policy(&mut self, n: &Node) -> Option<RuntimePolicy> {
        let m = self.map(n, "a policy")?;
        let mut name = None;
        let mut name_pos = n.pos;
        let mut enabled = true;
        let mut scope = vec![PolicyScope::All];
        let mut matcher = PolicyMatch::default();
        let mut actions = None;
        for (k, v) in m {
            match k.str().unwrap_or("") {
                "name" => {
                    name = self.string(v, "`name`");
                    name_pos = v.pos;
                }
                "enabled" => enabled = self.boolean(v, "`enabled`"),
                "description" => {}
                "scope" => scope = self.scopes(v),
                "match" => matcher = self.matcher(v),
                "actions" => actions = Some(self.actions(v)),
                other => self.err(
                    k.pos,
                    format!("unknown policy key {other:?}: use name, enabled, description, scope, match, actions"),
                ),
            }
        }
        let Some(name) = name else {
            self.err(n.pos, "this policy has no `name`");
            return None;
        };
        let actions = match actions {
            Some(a) => a,
            None => {
                self.err(
                    name_pos,
                    format!(
                        "policy {name:?} has no `actions`; say what it does (e.g. notify: true)"
                    ),
                );
                PolicyActions::default()
            }
        };
        Some(RuntimePolicy {
            name,
            enabled,
            scope,
            matcher,
            actions,
            pos: name_pos,
        })
    }

    fn scopes(&mut self, n: &Node) -> Vec<PolicyScope> {
        match &n.value {
            Value::Seq(items) => {
                let v: Vec<PolicyScope> = items.iter().filter_map(|i| self.scope(i)).collect();
                if v.is_empty() && self.diags.is_empty() {
                    self.err(
                        n.pos,
                        "`scope` is an empty list; remove it (= all) or name a scope",
                    );
                }
                v
            }
            _ => self.scope(n).into_iter().collect(),
        }
    }

    fn scope(&mut self, n: &Node) -> Option<PolicyScope> {
        const HELP: &str =
            "use all, host, containers, run, {cgroup: /PATH} or {container: ID-or-NAME}";
        match &n.value {
            Value::Scalar { text, .. } => match text.as_str() {
                "all" => Some(PolicyScope::All),
                "host" => Some(PolicyScope::Host),
                "containers" | "container" => Some(PolicyScope::Containers),
                "run" => Some(PolicyScope::Run),
                other => {
                    self.err(n.pos, format!("unknown scope {other:?}: {HELP}"));
                    None
                }
            },
            Value::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                let val = self.string(v, "the scope value")?;
                match k.str().unwrap_or("") {
                    "cgroup" => {
                        let p = format!("/{}", val.trim().trim_matches('/'));
                        if p.split('/').any(|c| c == "..") {
                            self.err(v.pos, "a cgroup scope must not contain `..`");
                            return None;
                        }
                        Some(PolicyScope::Cgroup(p))
                    }
                    "container" => Some(PolicyScope::Container(val)),
                    other => {
                        self.err(k.pos, format!("unknown scope kind {other:?}: {HELP}"));
                        None
                    }
                }
            }
            _ => {
                self.err(
                    n.pos,
                    format!("a scope must be a word or a one-key mapping: {HELP}"),
                );
                None
            }
        }
    }

    fn matcher(&mut self, n: &Node) -> PolicyMatch {
        let mut m = PolicyMatch::default();
        let Some(entries) = self.map(n, "`match`") else {
            return m;
        };
        for (k, v) in entries {
            match k.str().unwrap_or("") {
                "rules" => m.rules = self.strings(v, "a rule name"),
                "tags" => m.tags = self.strings(v, "a tag"),
                "detectors" => m.detectors = self.strings(v, "a detector name"),
                "min_priority" | "priority" => {
                    if let Some(s) = self.string(v, "`min_priority`") {
                        match Priority::parse(&s) {
                            Some(p) => m.min_priority = Some(p),
                            None => self.err(v.pos, format!("unknown priority {s:?}: use emergency, alert, critical, error, warning, notice, informational or debug")),
                        }
                    }
                }
                other => self.err(
                    k.pos,
                    format!(
                        "unknown match key {other:?}: use rules, tags, detectors, min_priority"
                    ),
                ),
            }
        }
        m
    }

    fn duration(&mut self, n: &Node, what: &str) -> Option<Duration> {
        let s = n.str().map(str::to_owned);
        match s.as_deref().and_then(parse_duration) {
            Some(d) if d <= MAX_WINDOW => Some(d),
            Some(_) => {
                self.err(n.pos, format!("{what} is over the limit of one hour"));
                None
            }
            None => {
                self.err(
                    n.pos,
                    format!("{what} must be a duration such as 5s, 500ms or 2m"),
                );
                None
            }
        }
    }

    fn actions(&mut self, n: &Node) -> PolicyActions {
        let mut a = PolicyActions::default();
        let Some(entries) = self.map(n, "`actions`") else {
            return a;
        };
        for (k, v) in entries {
            match k.str().unwrap_or("") {
                "notify" => {
                    a.notify = match &v.value {
                        Value::Seq(_) => Some(Targets::Named(self.strings(v, "a sink name"))),
                        _ => match v.bool() {
                            Some(true) => Some(Targets::Everything),
                            Some(false) => None,
                            None => {
                                self.err(v.pos, "`notify` is true (every sink) or a list of sink names");
                                None
                            }
                        },
                    }
                }
                "kill_process" => a.kill_process = self.boolean(v, "`kill_process`"),
                "kill_tree" => a.kill_tree = self.boolean(v, "`kill_tree`"),
                "freeze_container" => a.freeze_container = self.boolean(v, "`freeze_container`"),
                "kill_container" => a.kill_container = self.boolean(v, "`kill_container`"),
                "capture" => {
                    a.capture = match &v.value {
                        Value::Map(entries) => {
                            let mut w = CaptureWindow {
                                before: DEFAULT_BEFORE,
                                after: DEFAULT_AFTER,
                            };
                            for (ck, cv) in entries {
                                match ck.str().unwrap_or("") {
                                    "before" => {
                                        if let Some(d) = self.duration(cv, "`capture.before`") {
                                            w.before = d;
                                        }
                                    }
                                    "after" => {
                                        if let Some(d) = self.duration(cv, "`capture.after`") {
                                            w.after = d;
                                        }
                                    }
                                    other => self.err(ck.pos, format!("unknown capture key {other:?}: use before, after")),
                                }
                            }
                            Some(w)
                        }
                        _ => match v.bool() {
                            Some(true) => Some(CaptureWindow {
                                before: DEFAULT_BEFORE,
                                after: DEFAULT_AFTER,
                            }),
                            Some(false) => None,
                            None => {
                                self.err(v.pos, "`capture` is true (5 s before, 15 s after) or {before: 5s, after: 15s}");
                                None
                            }
                        },
                    }
                }
                other => self.err(
                    k.pos,
                    format!("unknown action {other:?}: use notify, capture, kill_process, kill_tree, freeze_container, kill_container"),
                ),
            }
        }
        a
    }
}
