//! The replayed-event format: one JSON object per line (documented in docs/events.md).
//!
//! `ReplayEvent::parse_line` reads one line, checks it and precomputes what the
//! [`Event`] trait needs (event-type index, command line, socket name), so that
//! evaluation afterwards does no allocation.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{ContainerAttr, Event, EventType, FdAttr, MountView, ProcAttr, UserAttr, Value};

/// Longest accepted line of a JSON-lines events file.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Event time: RFC 3339 text (`2026-07-30T13:53:31.726060287Z`) or integer ns since the epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventTime {
    /// Nanoseconds since the Unix epoch.
    Nanos(u64),
    /// RFC 3339 date-time with up to ns precision.
    Text(String),
}

impl Default for EventTime {
    fn default() -> Self {
        EventTime::Nanos(0)
    }
}

/// A syscall argument value in `args`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ArgValue {
    /// A boolean.
    Bool(bool),
    /// A signed number.
    Int(i64),
    /// An unsigned number too big for i64.
    Uint(u64),
    /// Text, exactly as Falco renders it (`O_RDONLY|O_CLOEXEC`, `/etc/shadow`).
    Str(String),
}

impl ArgValue {
    fn view(&self) -> Value<'_> {
        match self {
            ArgValue::Bool(b) => Value::Bool(*b),
            ArgValue::Int(i) => Value::Int(*i),
            ArgValue::Uint(u) => Value::Uint(*u),
            ArgValue::Str(s) => Value::Str(s),
        }
    }
}

/// A process: the event's own (`proc`) or one of its `ancestors`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayProcess {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpid: Option<u64>,
    /// `proc.name` (comm).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `proc.exe` (argv\[0\]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// `proc.exepath`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exepath: Option<String>,
    /// Arguments without argv\[0\]; `proc.args` is them joined by spaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// `proc.cmdline`; computed as `name args...` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tty: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<u64>,
    /// `proc.sname`: session leader's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vpgid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_vpgid_leader: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_exe_writable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_exe_upper_layer: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_exe_from_memfd: Option<bool>,
    /// ns since epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_ino_ctime: Option<u64>,
    /// ns since epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_ino_mtime: Option<u64>,
    /// `proc.exe_ino`: inode number of the executable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_ino: Option<u64>,
    /// Device of the executable (`st_dev` encoding); with `exe_ino` it names the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_dev: Option<u64>,
    /// The executable had no links left when it was executed (deleted file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe_deleted: Option<bool>,
    /// Process start, ns since epoch (`proc.duration` = event time − this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ts: Option<u64>,
    /// Environment (`proc.env[VAR]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// `thread.cap_permitted` (`CAP_X CAP_Y`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_permitted: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_effective: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_inheritable: Option<String>,
    #[serde(skip)]
    args_joined: Option<String>,
    #[serde(skip)]
    env_joined: Option<String>,
    /// The derived fields above are computed (see [`ReplayProcess::finish`]).
    #[serde(skip)]
    finished: bool,
}

impl ReplayProcess {
    /// Compute the derived fields (`proc.args`, `proc.cmdline` when absent, `proc.name` from
    /// the executable, the joined environment). Done once: a finished record shared by many
    /// events (the live sensor's ancestors) is not recomputed for each.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(args) = &self.args {
            self.args_joined = Some(args.join(" "));
        } else if let Some(cmd) = &self.cmdline {
            self.args_joined = Some(cmd.split_once(' ').map(|(_, a)| a).unwrap_or("").to_owned());
        }
        if self.cmdline.is_none() {
            if let Some(name) = &self.name {
                let mut c = name.clone();
                if let Some(a) = &self.args_joined {
                    if !a.is_empty() {
                        c.push(' ');
                        c.push_str(a);
                    }
                }
                self.cmdline = Some(c);
            }
        }
        if self.name.is_none() {
            // Falco's proc.name falls back to the executable's base name.
            if let Some(p) = self.exepath.as_deref().or(self.exe.as_deref()) {
                self.name = Some(p.rsplit('/').next().unwrap_or(p).to_owned());
            }
        }
        if let Some(env) = &self.env {
            let v: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            self.env_joined = Some(v.join(" "));
        }
    }

    /// Whether [`ReplayProcess::finish`] has run since the last [`ReplayProcess::unfinish`].
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Mark the derived fields stale after changing `name`, `args`, `cmdline` or `env` of a
    /// finished record (clear `cmdline` too if it should be rebuilt from the new name).
    pub fn unfinish(&mut self) {
        self.finished = false;
        self.args_joined = None;
        self.env_joined = None;
    }

    #[inline]
    fn attr(&self, attr: ProcAttr) -> Option<Value<'_>> {
        fn s(o: &Option<String>) -> Option<Value<'_>> {
            o.as_deref().map(Value::Str)
        }
        let u = |o: Option<u64>| o.map(Value::Uint);
        let b = |o: Option<bool>| o.map(Value::Bool);
        match attr {
            ProcAttr::Pid => u(self.pid),
            ProcAttr::Tid => u(self.tid.or(self.pid)),
            ProcAttr::Ppid => u(self.ppid),
            ProcAttr::Vpid => u(self.vpid),
            ProcAttr::Name => s(&self.name),
            ProcAttr::Exe => s(&self.exe),
            ProcAttr::ExePath => s(&self.exepath),
            ProcAttr::Cmdline => s(&self.cmdline),
            ProcAttr::Args => s(&self.args_joined),
            ProcAttr::Cwd => s(&self.cwd),
            ProcAttr::Tty => u(self.tty),
            ProcAttr::Sid => u(self.sid),
            ProcAttr::SName => s(&self.sname),
            ProcAttr::Vpgid => u(self.vpgid),
            ProcAttr::IsVpgidLeader => b(self.is_vpgid_leader),
            ProcAttr::IsExeWritable => b(self.is_exe_writable),
            ProcAttr::IsExeUpperLayer => b(self.is_exe_upper_layer),
            ProcAttr::IsExeFromMemfd => b(self.is_exe_from_memfd),
            ProcAttr::ExeInoCtime => u(self.exe_ino_ctime),
            ProcAttr::ExeInoMtime => u(self.exe_ino_mtime),
            ProcAttr::StartTs => u(self.start_ts),
            ProcAttr::CapPermitted => s(&self.cap_permitted),
            ProcAttr::CapEffective => s(&self.cap_effective),
            ProcAttr::CapInheritable => s(&self.cap_inheritable),
            ProcAttr::ExeIno => u(self.exe_ino),
        }
    }
}

/// `user.*`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// -1 when unset (Falco prints -1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loginuid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loginname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub homedir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

/// `group.*`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayGroup {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One container mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayMount {
    pub source: String,
    pub dest: String,
    pub mode: String,
    pub rdwr: bool,
    pub propagation: String,
}

/// `container.*` (absent object = host process: `container.id` is `host`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayContainer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `container.type` (`docker`, `containerd`, `cri-o`...).
    #[serde(rename = "type")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// ns since epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_ts: Option<u64>,
    pub labels: BTreeMap<String, String>,
    pub mounts: Vec<ReplayMount>,
    #[serde(skip)]
    mounts_joined: Option<String>,
}

/// `k8s.*`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayK8s {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    pub pod_labels: BTreeMap<String, String>,
}

/// `fd.*`: the file descriptor the event is about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayFd {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num: Option<i64>,
    /// `file`, `directory`, `ipv4`, `ipv6`, `unix`, `pipe`, `event`, `signalfd`,
    /// `eventpoll`, `inotify`, `timerfd`, `netlink`, `bpf`, `userfaultfd`, `io_uring`, `memfd`.
    #[serde(rename = "type")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd_type: Option<String>,
    /// Path (files) or `cip:cport->sip:sport` (computed for sockets when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Alias of `name` for files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nameraw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sport: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cport: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cip_name: Option<String>,
    /// `tcp`, `udp`, `icmp`, `raw`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub l4proto: Option<String>,
    /// This process is the server side (accept/listen): local = server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_server: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_changed: Option<bool>,
    /// `ip`, `unix`; derived from `type` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockfamily: Option<String>,
    /// `fd.ino`: inode number of the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// `fd.dev`: device of the file (`st_dev` encoding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<u64>,
}

/// One replayed event. See docs/events.md for the format.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplayEvent {
    pub time: EventTime,
    /// Falco event type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `<` exit (default) or `>` enter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// `evt.num`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num: Option<u64>,
    /// Return value (`evt.rawres`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub res: Option<i64>,
    /// Alias of `res`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rawres: Option<i64>,
    /// Shared with the live sensor's per-process record when the event changes nothing of it.
    pub proc: Arc<ReplayProcess>,
    /// Parent first. Shared records: a live sensor hands the same finished ancestor to every
    /// event of its descendants instead of copying it.
    pub ancestors: Vec<Arc<ReplayProcess>>,
    pub user: ReplayUser,
    pub group: ReplayGroup,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ReplayContainer>,
    pub k8s: ReplayK8s,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fd: Option<ReplayFd>,
    /// Syscall arguments by Falco name, in order.
    pub args: Vec<(String, ArgValue)>,
    /// `evt.buffer` as UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer: Option<String>,
    /// `evt.buffer` as hex (wins over `buffer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_hex: Option<String>,
    #[serde(skip)]
    cache: Cache,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Cache {
    time_ns: u64,
    open_mode: Option<(u8, bool)>,
    etype: Option<EventType>,
    buffer: Option<Vec<u8>>,
}

/// Why a replayed event was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The line is not a valid event object.
    #[error("not a valid event: {0}")]
    Json(#[from] serde_json::Error),
    /// The line is longer than [`MAX_LINE_BYTES`].
    #[error("event line is {0} bytes, more than the {MAX_LINE_BYTES}-byte limit")]
    TooLong(usize),
    /// A field has a value the format does not allow.
    #[error("{0}")]
    Invalid(String),
}

impl ReplayEvent {
    /// Parse one JSON line (an object, see docs/events.md) and prepare it for evaluation.
    pub fn parse_line(line: &str) -> Result<ReplayEvent, ReplayError> {
        match RawLine::parse(line)? {
            RawLine::Event {
                mut event,
                proc_ref: None,
                ancestor_refs: None,
            } => {
                event.finish()?;
                Ok(event)
            }
            _ => Err(ReplayError::Invalid(
                "process definitions and references (process_ref, proc_ref, ancestor_refs) \
                 are read with the whole file (pyward rules replay; ReplayReader in code), \
                 not one line alone"
                    .into(),
            )),
        }
    }

    /// Check the event and precompute derived data; call after building one by hand.
    pub fn finish(&mut self) -> Result<(), ReplayError> {
        self.cache.time_ns = match &self.time {
            EventTime::Nanos(n) => *n,
            EventTime::Text(t) => parse_rfc3339_ns(t)
                .ok_or_else(|| ReplayError::Invalid(format!("time {t:?} is not RFC 3339 (e.g. 2026-07-30T13:53:31.726060287Z) nor ns since the epoch")))?,
        };
        if self.event_type.is_empty() {
            return Err(ReplayError::Invalid(
                "missing event \"type\" (e.g. \"execve\")".into(),
            ));
        }
        self.cache.etype = EventType::from_name(&self.event_type);
        match self.dir.as_deref() {
            None | Some("<") | Some(">") => {}
            Some(d) => {
                return Err(ReplayError::Invalid(format!(
                    "dir {d:?} must be \"<\" (exit) or \">\" (enter)"
                )))
            }
        }
        if self.res.is_none() {
            self.res = self.rawres;
        }
        if !self.proc.is_finished() {
            Arc::make_mut(&mut self.proc).finish();
        }
        for a in &mut self.ancestors {
            if !a.is_finished() {
                Arc::make_mut(a).finish();
            }
        }
        if let Some(c) = &mut self.container {
            if !c.mounts.is_empty() {
                let v: Vec<String> = c
                    .mounts
                    .iter()
                    .map(|m| {
                        format!(
                            "{}:{}:{}:{}:{}",
                            m.source, m.dest, m.mode, m.rdwr, m.propagation
                        )
                    })
                    .collect();
                c.mounts_joined = Some(v.join(","));
            }
        }
        if let Some(fd) = &mut self.fd {
            if fd.name.is_none() {
                fd.name = fd.path.clone();
            }
            if fd.name.is_none() {
                if let (Some(cip), Some(cport), Some(sip), Some(sport)) =
                    (fd.cip, fd.cport, fd.sip, fd.sport)
                {
                    fd.name = Some(format!("{}:{cport}->{}:{sport}", fmt_ip(cip), fmt_ip(sip)));
                }
            }
            if fd.fd_type.is_none() {
                fd.fd_type = match (fd.sip.or(fd.cip), fd.name.as_deref()) {
                    (Some(IpAddr::V4(_)), _) => Some("ipv4".into()),
                    (Some(IpAddr::V6(_)), _) => Some("ipv6".into()),
                    (None, Some(n)) if n.starts_with('/') => Some("file".into()),
                    _ => None,
                };
            }
            let is_path = matches!(fd.fd_type.as_deref(), Some("file") | Some("directory"));
            if is_path {
                if let Some(n) = fd.name.as_deref() {
                    if fd.directory.is_none() {
                        fd.directory = Some(if fd.fd_type.as_deref() == Some("directory") {
                            n.to_owned()
                        } else {
                            match n.rfind('/') {
                                Some(0) => "/".to_owned(),
                                Some(i) => n[..i].to_owned(),
                                None => String::new(),
                            }
                        });
                    }
                    if fd.filename.is_none() && fd.fd_type.as_deref() == Some("file") {
                        fd.filename = Some(n.rsplit('/').next().unwrap_or(n).to_owned());
                    }
                }
            }
        }
        let buf = if let Some(h) = &self.buffer_hex {
            Some(decode_hex(h).ok_or_else(|| {
                ReplayError::Invalid("buffer_hex is not an even-length hex string".into())
            })?)
        } else {
            self.buffer.as_ref().map(|b| b.as_bytes().to_vec())
        };
        self.cache.buffer = buf;
        self.cache.open_mode = super::open_mode_from_args(self);
        Ok(())
    }

    #[inline]
    fn level(&self, level: usize) -> Option<&ReplayProcess> {
        if level == 0 {
            Some(&self.proc)
        } else {
            self.ancestors.get(level - 1).map(|a| &**a)
        }
    }
}

fn fmt_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v) => v.to_string(),
        IpAddr::V6(v) => v.to_string(),
    }
}

fn decode_hex(h: &str) -> Option<Vec<u8>> {
    let h: Vec<u8> = h.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !h.len().is_multiple_of(2) {
        return None;
    }
    h.chunks(2)
        .map(|c| {
            let s = std::str::from_utf8(c).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// Parse RFC 3339 to ns since the epoch.
pub(crate) fn parse_rfc3339_ns(t: &str) -> Option<u64> {
    let dt = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(dt.unix_timestamp_nanos()).ok()
}

/// `args` may be written as an object (`{"flags": "O_RDONLY"}`) or as a list of
/// `[name, value]` pairs (keeps order for `evt.arg[N]`). serde_json objects keep
/// insertion order only with a feature we do not enable, so we parse them by hand.
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawEvent {
    time: EventTime,
    #[serde(rename = "type")]
    event_type: String,
    dir: Option<String>,
    num: Option<u64>,
    res: Option<i64>,
    rawres: Option<i64>,
    proc: Option<ReplayProcess>,
    ancestors: Option<Vec<ReplayProcess>>,
    /// The event's process by number (see [`super::stream`]).
    proc_ref: Option<u64>,
    /// Its ancestors by number, parent first.
    ancestor_refs: Option<Vec<u64>>,
    /// A process definition line: its number...
    process_ref: Option<u64>,
    /// ...and the process.
    process: Option<ReplayProcess>,
    /// `"forget"`: drop every process definition so far.
    process_refs: Option<String>,
    user: ReplayUser,
    group: ReplayGroup,
    container: Option<ReplayContainer>,
    k8s: ReplayK8s,
    fd: Option<ReplayFd>,
    args: RawArgs,
    buffer: Option<String>,
    buffer_hex: Option<String>,
}

impl Default for RawEvent {
    fn default() -> Self {
        RawEvent {
            time: EventTime::default(),
            event_type: String::new(),
            dir: None,
            num: None,
            res: None,
            rawres: None,
            proc: None,
            ancestors: None,
            proc_ref: None,
            ancestor_refs: None,
            process_ref: None,
            process: None,
            process_refs: None,
            user: ReplayUser::default(),
            group: ReplayGroup::default(),
            container: None,
            k8s: ReplayK8s::default(),
            fd: None,
            args: RawArgs(Vec::new()),
            buffer: None,
            buffer_hex: None,
        }
    }
}

impl RawEvent {
    fn into_event(self) -> ReplayEvent {
        ReplayEvent {
            time: self.time,
            event_type: self.event_type,
            dir: self.dir,
            num: self.num,
            res: self.res,
            rawres: self.rawres,
            proc: Arc::new(self.proc.unwrap_or_default()),
            ancestors: self
                .ancestors
                .unwrap_or_default()
                .into_iter()
                .map(Arc::new)
                .collect(),
            user: self.user,
            group: self.group,
            container: self.container,
            k8s: self.k8s,
            fd: self.fd,
            args: self.args.0,
            buffer: self.buffer,
            buffer_hex: self.buffer_hex,
            cache: Cache::default(),
        }
    }
}

/// What one line of an events file holds.
// Lives on the stack between parsing and the match that takes it apart: boxing the event
// would add an allocation per line for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum RawLine {
    /// An event; its processes may be given by number.
    Event {
        event: ReplayEvent,
        proc_ref: Option<u64>,
        ancestor_refs: Option<Vec<u64>>,
    },
    /// `{"process_ref": N, "process": {...}}`.
    Define { id: u64, process: ReplayProcess },
    /// `{"process_refs": "forget"}`.
    Forget,
}

impl RawLine {
    /// Parse and check one line (the event is not yet [`ReplayEvent::finish`]ed).
    pub(super) fn parse(line: &str) -> Result<RawLine, ReplayError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(ReplayError::TooLong(line.len()));
        }
        let mut raw: RawEvent = serde_json::from_str(line)?;
        let has_event = !raw.event_type.is_empty()
            || raw.proc.is_some()
            || raw.ancestors.is_some()
            || raw.proc_ref.is_some()
            || raw.ancestor_refs.is_some();
        let invalid = |m: &str| Err(ReplayError::Invalid(m.to_owned()));
        if let Some(what) = raw.process_refs.take() {
            if what != "forget" {
                return invalid("process_refs must be \"forget\"");
            }
            if has_event || raw.process_ref.is_some() || raw.process.is_some() {
                return invalid("a {\"process_refs\":\"forget\"} line holds nothing else");
            }
            return Ok(RawLine::Forget);
        }
        match (raw.process_ref, raw.process.take()) {
            (Some(id), Some(process)) => {
                if has_event {
                    return invalid(
                        "a process definition line holds only process_ref and process, no event",
                    );
                }
                return Ok(RawLine::Define { id, process });
            }
            (Some(_), None) => return invalid("process_ref without the process it defines"),
            (None, Some(_)) => {
                return invalid("process without a process_ref (in an event, the key is proc)")
            }
            (None, None) => {}
        }
        if raw.proc.is_some() && raw.proc_ref.is_some() {
            return invalid("an event has proc or proc_ref, not both");
        }
        if raw.ancestors.is_some() && raw.ancestor_refs.is_some() {
            return invalid("an event has ancestors or ancestor_refs, not both");
        }
        let proc_ref = raw.proc_ref.take();
        let ancestor_refs = raw.ancestor_refs.take();
        Ok(RawLine::Event {
            event: raw.into_event(),
            proc_ref,
            ancestor_refs,
        })
    }
}

struct RawArgs(Vec<(String, ArgValue)>);

impl<'de> Deserialize<'de> for RawArgs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawArgs;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of syscall arguments or a list of [name, value] pairs")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<RawArgs, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = m.next_entry::<String, ArgValue>()? {
                    v.push((k, val));
                }
                Ok(RawArgs(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<RawArgs, A::Error> {
                let mut v = Vec::new();
                while let Some(p) = s.next_element::<(String, ArgValue)>()? {
                    v.push(p);
                }
                Ok(RawArgs(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Event for ReplayEvent {
    #[inline]
    fn event_type(&self) -> EventType {
        self.cache.etype.unwrap_or(EventType::UNKNOWN)
    }
    #[inline]
    fn event_type_name(&self) -> &str {
        &self.event_type
    }
    fn time_ns(&self) -> u64 {
        self.cache.time_ns
    }
    #[inline]
    fn is_enter(&self) -> bool {
        self.dir.as_deref() == Some(">")
    }
    #[inline]
    fn num(&self) -> Option<u64> {
        self.num
    }
    #[inline]
    fn res(&self) -> Option<i64> {
        self.res
    }
    #[inline]
    fn proc(&self, level: usize, attr: ProcAttr) -> Option<Value<'_>> {
        self.level(level)?.attr(attr)
    }
    fn proc_env(&self, name: &str) -> Option<&str> {
        self.proc.env.as_ref()?.get(name).map(String::as_str)
    }
    fn proc_env_all(&self) -> Option<&str> {
        self.proc.env_joined.as_deref()
    }
    #[inline]
    fn fd(&self, attr: FdAttr) -> Option<Value<'_>> {
        let fd = self.fd.as_ref()?;
        fn s(o: &Option<String>) -> Option<Value<'_>> {
            o.as_deref().map(Value::Str)
        }
        match attr {
            FdAttr::Num => fd.num.map(Value::Int),
            FdAttr::Type => s(&fd.fd_type),
            FdAttr::Name => s(&fd.name),
            FdAttr::NameRaw => s(&fd.nameraw).or_else(|| s(&fd.name)),
            FdAttr::Directory => s(&fd.directory),
            FdAttr::Filename => s(&fd.filename),
            FdAttr::Cip => fd.cip.map(Value::Ip),
            FdAttr::Sip => fd.sip.map(Value::Ip),
            FdAttr::Cport => fd.cport.map(Value::Uint),
            FdAttr::Sport => fd.sport.map(Value::Uint),
            FdAttr::L4Proto => s(&fd.l4proto),
            FdAttr::IsServer => fd.is_server.map(Value::Bool),
            FdAttr::Connected => fd.connected.map(Value::Bool),
            FdAttr::NameChanged => fd.name_changed.map(Value::Bool),
            FdAttr::SockFamily => s(&fd.sockfamily),
            FdAttr::CipName => s(&fd.cip_name),
            FdAttr::SipName => s(&fd.sip_name),
            FdAttr::Ino => fd.ino.map(Value::Uint),
            FdAttr::Dev => fd.dev.map(Value::Uint),
        }
    }
    #[inline]
    fn user(&self, attr: UserAttr) -> Option<Value<'_>> {
        let u = &self.user;
        match attr {
            UserAttr::Uid => u.uid.map(Value::Uint),
            UserAttr::Name => u.name.as_deref().map(Value::Str),
            UserAttr::LoginUid => u.loginuid.map(Value::Int),
            UserAttr::LoginName => u.loginname.as_deref().map(Value::Str),
            UserAttr::HomeDir => u.homedir.as_deref().map(Value::Str),
            UserAttr::Shell => u.shell.as_deref().map(Value::Str),
            UserAttr::Gid => self.group.gid.map(Value::Uint),
            UserAttr::GroupName => self.group.name.as_deref().map(Value::Str),
        }
    }
    #[inline]
    fn container(&self, attr: ContainerAttr) -> Option<Value<'_>> {
        let k = &self.k8s;
        match attr {
            ContainerAttr::K8sNsName => return k.ns_name.as_deref().map(Value::Str),
            ContainerAttr::K8sPodName => return k.pod_name.as_deref().map(Value::Str),
            ContainerAttr::K8sPodUid => return k.pod_uid.as_deref().map(Value::Str),
            _ => {}
        }
        let Some(c) = &self.container else {
            return match attr {
                ContainerAttr::Id | ContainerAttr::Name => Some(Value::Str("host")),
                ContainerAttr::Type => Some(Value::Str("host")),
                _ => None,
            };
        };
        fn s(o: &Option<String>) -> Option<Value<'_>> {
            o.as_deref().map(Value::Str)
        }
        match attr {
            ContainerAttr::Id => s(&c.id),
            ContainerAttr::Name => s(&c.name),
            ContainerAttr::Image => s(&c.image),
            ContainerAttr::ImageId => s(&c.image_id),
            ContainerAttr::ImageRepository => s(&c.image_repository),
            ContainerAttr::ImageTag => s(&c.image_tag),
            ContainerAttr::ImageDigest => s(&c.image_digest),
            ContainerAttr::Privileged => c.privileged.map(Value::Bool),
            ContainerAttr::StartTs => c.start_ts.map(Value::Uint),
            ContainerAttr::Mounts => s(&c.mounts_joined),
            ContainerAttr::Type => s(&c.container_type),
            ContainerAttr::K8sNsName | ContainerAttr::K8sPodName | ContainerAttr::K8sPodUid => None,
        }
    }
    fn container_label(&self, key: &str) -> Option<&str> {
        self.container.as_ref()?.labels.get(key).map(String::as_str)
    }
    fn k8s_pod_label(&self, key: &str) -> Option<&str> {
        self.k8s.pod_labels.get(key).map(String::as_str)
    }
    fn container_mount(&self, index: usize) -> Option<MountView<'_>> {
        let m = self.container.as_ref()?.mounts.get(index)?;
        Some(MountView {
            source: &m.source,
            dest: &m.dest,
            mode: &m.mode,
            rdwr: m.rdwr,
            propagation: &m.propagation,
        })
    }
    fn arg(&self, name: &str) -> Option<Value<'_>> {
        self.args
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.view())
    }
    fn arg_at(&self, index: usize) -> Option<(&str, Value<'_>)> {
        self.args.get(index).map(|(k, v)| (k.as_str(), v.view()))
    }
    fn buffer(&self) -> Option<&[u8]> {
        self.cache.buffer.as_deref()
    }
    #[inline]
    fn open_mode(&self) -> Option<(u8, bool)> {
        self.cache.open_mode
    }
}
