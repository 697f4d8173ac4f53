//! The [`Event`] trait: how the evaluator reads an event, whatever produced it.
//!
//! Replayed events ([`replay::ReplayEvent`]) and, later, live kernel events from the
//! sensor implement the same trait, so the rules engine cannot tell them apart. The
//! trait exposes *primitive* data only (the process at ancestor level N, the fd, the
//! user, the container, the syscall arguments); every derived Falco field
//! (`proc.pname`, `fd.directory`, `fd.typechar`, `evt.is_open_read`, `fd.lport`…) is
//! computed by the engine from these primitives, identically for every source.
//!
//! Every method returns borrowed data or plain numbers: evaluating a rule never
//! allocates on the hot path. `None` means "not known" — Falco's `<NA>`; a check on
//! an unknown field is false (except `exists`, which is what it tests).

pub mod replay;
pub mod stream;
mod types_table;

use std::net::IpAddr;

/// A Falco event type (`execve`, `openat`, `connect`, `procexit`…), as a small integer
/// index into a fixed table of names, so that rule indexing is an array lookup.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct EventType(u16);

impl EventType {
    /// The placeholder for an event-type name this table does not know.
    pub const UNKNOWN: EventType = EventType(0);

    /// Look a Falco event name up (`"openat"`); `None` if it is not a known name.
    pub fn from_name(name: &str) -> Option<EventType> {
        type_index().get(name).map(|&i| EventType(i))
    }

    /// The Falco name of this event type.
    pub fn name(self) -> &'static str {
        types_table::EVENT_TYPE_NAMES
            .get(usize::from(self.0))
            .copied()
            .unwrap_or("unknown")
    }

    /// The index of this type in [`EventType::all`], for array-indexed tables.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// Number of known event types (the length of [`EventType::all`]).
    pub fn count() -> usize {
        types_table::EVENT_TYPE_NAMES.len()
    }

    /// Every known event type, [`EventType::UNKNOWN`] first.
    pub fn all() -> impl Iterator<Item = EventType> {
        (0..types_table::EVENT_TYPE_NAMES.len()).map(|i| EventType(i as u16))
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn type_index() -> &'static std::collections::HashMap<&'static str, u16> {
    static INDEX: std::sync::OnceLock<std::collections::HashMap<&'static str, u16>> =
        std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        types_table::EVENT_TYPE_NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u16))
            .collect()
    })
}

/// One extracted value, borrowed from the event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Text (names, paths, command lines, flag strings such as `O_RDONLY|O_CLOEXEC`).
    Str(&'a str),
    /// Signed number (return values, login uid `-1`, fds).
    Int(i64),
    /// Unsigned number (pids, uids, ports, timestamps in ns).
    Uint(u64),
    /// Boolean.
    Bool(bool),
    /// IP address.
    Ip(IpAddr),
    /// Raw bytes (`evt.buffer`).
    Bytes(&'a [u8]),
}

impl Value<'_> {
    /// The value as a signed number, when it is one (or numeric text).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Uint(u) => i64::try_from(u).ok(),
            Value::Bool(b) => Some(i64::from(b)),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// Attributes of a process (the event's own, level 0, or an ancestor's).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ProcAttr {
    /// `proc.pid` (Uint).
    Pid,
    /// `thread.tid` (Uint).
    Tid,
    /// `proc.ppid` (Uint).
    Ppid,
    /// `proc.vpid`: pid in its PID namespace (Uint).
    Vpid,
    /// `proc.name`: the executable's name (comm) (Str).
    Name,
    /// `proc.exe`: argv\[0\] as given (Str).
    Exe,
    /// `proc.exepath`: full path of the executable (Str).
    ExePath,
    /// `proc.cmdline`: name and arguments joined by spaces (Str).
    Cmdline,
    /// `proc.args`: arguments (without argv\[0\]) joined by spaces (Str).
    Args,
    /// `proc.cwd` (Str).
    Cwd,
    /// `proc.tty`: controlling terminal number, 0 if none (Uint).
    Tty,
    /// `proc.sid`: session id (Uint).
    Sid,
    /// `proc.sname`: name of the session leader (Str).
    SName,
    /// `proc.vpgid`: process group id in its namespace (Uint).
    Vpgid,
    /// `proc.is_vpgid_leader` (Bool).
    IsVpgidLeader,
    /// `proc.is_exe_writable` (Bool).
    IsExeWritable,
    /// `proc.is_exe_upper_layer`: executable from an overlayfs upper layer (Bool).
    IsExeUpperLayer,
    /// `proc.is_exe_from_memfd` (Bool).
    IsExeFromMemfd,
    /// `proc.exe_ino.ctime` in ns (Uint).
    ExeInoCtime,
    /// `proc.exe_ino.mtime` in ns (Uint).
    ExeInoMtime,
    /// Process start time in ns since the epoch (Uint); `proc.duration` derives from it.
    StartTs,
    /// `thread.cap_permitted`, e.g. `CAP_CHOWN CAP_SYS_ADMIN` (Str).
    CapPermitted,
    /// `thread.cap_effective` (Str).
    CapEffective,
    /// `thread.cap_inheritable` (Str).
    CapInheritable,
    /// `proc.exe_ino`: inode number of the executable (Uint).
    ExeIno,
}

/// Attributes of the event's file descriptor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum FdAttr {
    /// `fd.num` (Int).
    Num,
    /// `fd.type`: `file`, `directory`, `ipv4`, `ipv6`, `unix`, `pipe`, `event`,
    /// `signalfd`, `eventpoll`, `inotify`, `timerfd`, `netlink`, `bpf`, `userfaultfd`,
    /// `io_uring`, `memfd` (Str).
    Type,
    /// `fd.name`: path for files, `cip:cport->sip:sport` for sockets (Str).
    Name,
    /// `fd.nameraw` (Str); falls back to `Name`.
    NameRaw,
    /// `fd.directory` (Str); derived from `Name` for files when absent.
    Directory,
    /// `fd.filename` (Str); derived from `Name` for files when absent.
    Filename,
    /// Client (connecting side) IP (Ip).
    Cip,
    /// Server IP (Ip).
    Sip,
    /// Client port (Uint).
    Cport,
    /// Server port (Uint).
    Sport,
    /// `fd.l4proto`: `tcp`, `udp`, `icmp`, `raw` (Str).
    L4Proto,
    /// Whether this process is the server side of the socket (Bool); decides
    /// `fd.lip`/`fd.rip`/`fd.lport`/`fd.rport`.
    IsServer,
    /// `fd.connected` (Bool).
    Connected,
    /// `fd.name_changed` (Bool).
    NameChanged,
    /// `fd.sockfamily`: `ip` or `unix` (Str); derived from `Type` when absent.
    SockFamily,
    /// Client host name for `fd.cip.name` (Str).
    CipName,
    /// Server host name for `fd.sip.name` (Str).
    SipName,
    /// `fd.ino`: inode number of the file (Uint).
    Ino,
    /// `fd.dev`: device of the file, as `stat(2)`'s `st_dev` (Uint).
    Dev,
}

/// Attributes of the user (`user.*`) and group (`group.*`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum UserAttr {
    /// `user.uid` (Uint).
    Uid,
    /// `user.name` (Str).
    Name,
    /// `user.loginuid` (Int, -1 when unset).
    LoginUid,
    /// `user.loginname` (Str).
    LoginName,
    /// `user.homedir` (Str).
    HomeDir,
    /// `user.shell` (Str).
    Shell,
    /// `group.gid` (Uint).
    Gid,
    /// `group.name` (Str).
    GroupName,
}

/// Attributes of the container (`container.*`, `k8s.*`), as the container plugin gives them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ContainerAttr {
    /// `container.id`: `host` for host processes (Str).
    Id,
    /// `container.name` (Str).
    Name,
    /// `container.image` (Str).
    Image,
    /// `container.image.id` (Str).
    ImageId,
    /// `container.image.repository` (Str).
    ImageRepository,
    /// `container.image.tag` (Str).
    ImageTag,
    /// `container.image.digest` (Str).
    ImageDigest,
    /// `container.privileged` (Bool).
    Privileged,
    /// `container.start_ts` in ns (Uint).
    StartTs,
    /// `container.mounts`: `source:dest:mode:rdwr:propagation,...` (Str).
    Mounts,
    /// `container.type` (Str), e.g. `docker`.
    Type,
    /// `k8s.ns.name` (Str).
    K8sNsName,
    /// `k8s.pod.name` (Str).
    K8sPodName,
    /// `k8s.pod.uid` (Str).
    K8sPodUid,
}

/// One mount of the container, for `container.mount.*` fields.
#[derive(Clone, Copy, Debug)]
pub struct MountView<'a> {
    /// Host path.
    pub source: &'a str,
    /// Path inside the container.
    pub dest: &'a str,
    /// Mount mode (e.g. `ro`, `rw`, `z`).
    pub mode: &'a str,
    /// Whether the mount is read-write.
    pub rdwr: bool,
    /// Propagation (e.g. `rprivate`).
    pub propagation: &'a str,
}

/// What the rules engine reads from an event. See the module docs.
///
/// Implementors only return what they know; `None` is Falco's `<NA>`.
pub trait Event {
    /// The event type (`execve`, `openat`…).
    fn event_type(&self) -> EventType;
    /// The event type's name; by default the table name (override for names the
    /// table does not know, e.g. a replayed type with [`EventType::UNKNOWN`]).
    fn event_type_name(&self) -> &str {
        self.event_type().name()
    }
    /// Event time, ns since the Unix epoch.
    fn time_ns(&self) -> u64;
    /// `true` for an enter event (`evt.dir = >`). Falco ≥ 0.42 only sees exit events.
    fn is_enter(&self) -> bool {
        false
    }
    /// `evt.num`, when the source numbers its events.
    fn num(&self) -> Option<u64> {
        None
    }
    /// Syscall return value (`evt.rawres`; `evt.res` is derived).
    fn res(&self) -> Option<i64>;
    /// An attribute of the process at ancestor `level` (0 = the event's process,
    /// 1 = its parent, ...).
    fn proc(&self, level: usize, attr: ProcAttr) -> Option<Value<'_>>;
    /// `proc.env[name]` of the event's process.
    fn proc_env(&self, name: &str) -> Option<&str>;
    /// The whole environment of the event's process as `K=V` items joined by spaces
    /// (`proc.env` without argument), when known.
    fn proc_env_all(&self) -> Option<&str> {
        None
    }
    /// An fd attribute.
    fn fd(&self, attr: FdAttr) -> Option<Value<'_>>;
    /// A user or group attribute.
    fn user(&self, attr: UserAttr) -> Option<Value<'_>>;
    /// A container or Kubernetes attribute.
    fn container(&self, attr: ContainerAttr) -> Option<Value<'_>>;
    /// `container.label[key]`.
    fn container_label(&self, key: &str) -> Option<&str>;
    /// `k8s.pod.label[key]`.
    fn k8s_pod_label(&self, _key: &str) -> Option<&str> {
        None
    }
    /// The container's `index`-th mount.
    fn container_mount(&self, _index: usize) -> Option<MountView<'_>> {
        None
    }
    /// A syscall argument by its Falco name (`flags`, `newpath`, `mode`...).
    fn arg(&self, name: &str) -> Option<Value<'_>>;
    /// The `index`-th syscall argument with its name (`evt.arg[N]`, `evt.args`).
    fn arg_at(&self, index: usize) -> Option<(&str, Value<'_>)>;
    /// The I/O buffer (`evt.buffer`) of read/write/send/recv events.
    fn buffer(&self) -> Option<&[u8]> {
        None
    }
    /// For open-family events: (access mode 0 = read, 1 = write, 2 = read-write,
    /// `O_CREAT` set). The default derives it from the `flags` argument (Falco's
    /// `O_RDONLY|O_CREAT` text or the numeric value); sources may precompute it.
    fn open_mode(&self) -> Option<(u8, bool)> {
        open_mode_from_args(self)
    }
}

/// Compute [`Event::open_mode`] from the event type and its `flags` argument.
pub fn open_mode_from_args<E: Event + ?Sized>(e: &E) -> Option<(u8, bool)> {
    static TYPES: std::sync::OnceLock<[EventType; 5]> = std::sync::OnceLock::new();
    let t = TYPES.get_or_init(|| {
        ["creat", "open", "openat", "openat2", "open_by_handle_at"]
            .map(|n| EventType::from_name(n).unwrap_or(EventType::UNKNOWN))
    });
    let et = e.event_type();
    if et == EventType::UNKNOWN {
        return None;
    }
    if et == t[0] {
        return Some((1, true));
    }
    if !t[1..].contains(&et) {
        return None;
    }
    match e.arg("flags")? {
        Value::Str(s) => {
            let acc = if s.contains("O_RDWR") {
                2
            } else if s.contains("O_WRONLY") {
                1
            } else {
                0
            };
            Some((acc, s.contains("O_CREAT")))
        }
        v => {
            let n = v.as_i64()?;
            Some(((n & 3) as u8, n & 0o100 != 0))
        }
    }
}
