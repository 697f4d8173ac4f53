//! Records of the kernel programs (denials and kills) and their alert form.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use pyward_rules::{Alert, OutputValue, Priority};
use pyward_sensor::record::{cstr_at, u16_at, u32_at, u64_at, user_dev};

/// Size of `struct enf_event` in src/bpf/enforce.bpf.c (checked against the skeleton in lib.rs).
pub(crate) const RECORD_SIZE: usize = 392;
pub(crate) const OFF_ADDR: usize = 84;
pub(crate) const OFF_COMM: usize = 100;
pub(crate) const OFF_PCOMM: usize = 116;
pub(crate) const OFF_TARGET: usize = 132;
const TARGET_MAX: usize = 256;

/// What the kernel stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnforcementKind {
    /// A `connect()`/`sendmsg()` to a blocked network got EPERM.
    NetworkDenied,
    /// An exec of a drifted file (or an interpreter opening a drifted script) was killed.
    ExecKilled,
    /// An open of a protected file by a program not allowed to read it was killed.
    OpenKilled,
    /// A process crossed the ransomware thresholds and was killed inside the syscall.
    RansomwareKilled,
    /// A member of a ransomware process tree was killed at its next syscall.
    TreeKilled,
}

/// What was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnforcementAction {
    /// The operation failed with EPERM.
    Denied,
    /// SIGKILL was sent from the kernel program.
    Killed,
    /// Dry run: reported, nothing done.
    Reported,
    /// `bpf_send_signal` failed (e.g. a kernel thread, or an exiting task).
    KillFailed,
}

impl EnforcementAction {
    /// Short name used in alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementAction::Denied => "denied",
            EnforcementAction::Killed => "killed",
            EnforcementAction::Reported => "reported",
            EnforcementAction::KillFailed => "kill failed",
        }
    }
}

/// Why an exec was judged drifted (bits of the kernel record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DriftReasons(pub u32);

impl DriftReasons {
    /// The inode was opened for writing, truncated or `fchmod +x`'d since start.
    pub const WRITTEN: u32 = 1;
    /// The inode's ctime is after start (written, chmod'ed, renamed or linked since).
    pub const CHANGED: u32 = 2;
    /// The executable is a memfd (fileless execution).
    pub const MEMFD: u32 = 4;
    /// The executable has no link left (deleted).
    pub const DELETED: u32 = 8;
    /// An interpreter opened a drifted script given as its argument.
    pub const SCRIPT: u32 = 16;

    /// Whether a bit is set.
    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// Names of the set bits, for alerts.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::WRITTEN, "written since start"),
            (Self::CHANGED, "changed since start"),
            (Self::MEMFD, "memfd"),
            (Self::DELETED, "deleted"),
            (Self::SCRIPT, "script run by an interpreter"),
        ]
        .iter()
        .filter(|(b, _)| self.has(*b))
        .map(|(_, n)| *n)
        .collect()
    }
}

/// One denial or kill done in the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnforcementEvent {
    pub kind: EnforcementKind,
    pub action: EnforcementAction,
    /// Kernel pid of the thread (the thread id).
    pub pid: u32,
    /// Thread-group id: the process id as user space knows it.
    pub tgid: u32,
    /// Parent process id (0 for network denials: not visible to cgroup programs).
    pub ppid: u32,
    pub uid: u32,
    /// Command name (15 bytes at most, as the kernel keeps it).
    pub comm: String,
    /// Parent's command name (empty for network denials).
    pub parent_comm: String,
    /// cgroup v2 id of the process.
    pub cgroup_id: u64,
    /// The file (exec path, opened path, unlinked path or written file name) or
    /// `addr:port` of a denied connection.
    pub target: String,
    /// Device of the file as `stat(2)` reports it (`st_dev`); 0 when not a file.
    pub dev: u64,
    /// Inode of the file; 0 when not a file.
    pub ino: u64,
    /// Destination of a denied connection.
    pub addr: Option<SocketAddr>,
    /// IP protocol of a denied connection (6 TCP, 17 UDP).
    pub protocol: u16,
    /// Exec kills: why the file was drifted.
    pub reasons: DriftReasons,
    /// Ransomware: the account (scope root, or the process itself).
    pub root: u32,
    /// Ransomware: encrypted-looking writes in the window at the kill.
    pub encrypted_writes: u32,
    /// Ransomware: destructive operations (unlink, rename) in the window at the kill.
    pub destructive_ops: u32,
    /// Syscall number the kill happened in (0 for exec and network).
    pub syscall: u32,
    /// Wall-clock time, ns since the Unix epoch.
    pub time_ns: u64,
}

/// A record the reader could not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("enforcement record of {0} bytes, expected {RECORD_SIZE}")]
    Size(usize),
    #[error("unknown enforcement record kind {0}")]
    Kind(u32),
}

impl EnforcementEvent {
    /// Parse one ring-buffer record; `clock_offset_ns` turns CLOCK_MONOTONIC into wall time.
    pub(crate) fn parse(b: &[u8], clock_offset_ns: i128) -> Result<EnforcementEvent, ParseError> {
        if b.len() < RECORD_SIZE {
            return Err(ParseError::Size(b.len()));
        }
        let kind = match u32_at(b, 32) {
            1 => EnforcementKind::NetworkDenied,
            2 => EnforcementKind::ExecKilled,
            3 => EnforcementKind::OpenKilled,
            4 => EnforcementKind::RansomwareKilled,
            5 => EnforcementKind::TreeKilled,
            k => return Err(ParseError::Kind(k)),
        };
        let action = match u32_at(b, 36) {
            1 => EnforcementAction::Denied,
            2 => EnforcementAction::Killed,
            3 => EnforcementAction::Reported,
            _ => EnforcementAction::KillFailed,
        };
        let family = u32_at(b, 60);
        let port = u16_at(b, 64);
        let raw_addr: [u8; 16] = b
            .get(OFF_ADDR..OFF_ADDR + 16)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 16]);
        let addr = match (kind, family) {
            (EnforcementKind::NetworkDenied, 2) => Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(
                    raw_addr[0],
                    raw_addr[1],
                    raw_addr[2],
                    raw_addr[3],
                )),
                port,
            )),
            (EnforcementKind::NetworkDenied, 10) => {
                let v6 = Ipv6Addr::from(raw_addr);
                let ip = match v6.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(v6),
                };
                Some(SocketAddr::new(ip, port))
            }
            _ => None,
        };
        let dev = u64_at(b, 16);
        let mono = u64_at(b, 0);
        let target = match addr {
            Some(a) => a.to_string(),
            None => cstr_at(b, OFF_TARGET, TARGET_MAX),
        };
        Ok(EnforcementEvent {
            kind,
            action,
            pid: u32_at(b, 40),
            tgid: u32_at(b, 44),
            ppid: u32_at(b, 48),
            uid: u32_at(b, 52),
            comm: cstr_at(b, OFF_COMM, 16),
            parent_comm: cstr_at(b, OFF_PCOMM, 16),
            cgroup_id: u64_at(b, 8),
            target,
            dev: if dev == 0 { 0 } else { user_dev(dev as u32) },
            ino: u64_at(b, 24),
            addr,
            protocol: u16_at(b, 66),
            reasons: DriftReasons(u32_at(b, 56)),
            root: u32_at(b, 68),
            encrypted_writes: u32_at(b, 72),
            destructive_ops: u32_at(b, 76),
            syscall: u32_at(b, 80),
            time_ns: u64::try_from(i128::from(mono) + clock_offset_ns).unwrap_or(0),
        })
    }

    /// Rule name of the alert, in the style of the shipped rules.
    pub fn rule_name(&self) -> &'static str {
        match self.kind {
            EnforcementKind::NetworkDenied => "pyward: connect to a blocked network denied",
            EnforcementKind::ExecKilled if self.reasons.has(DriftReasons::SCRIPT) => {
                "pyward: drifted script killed before it ran"
            }
            EnforcementKind::ExecKilled => "pyward: exec of a drifted file killed",
            EnforcementKind::OpenKilled => "pyward: open of a protected file killed",
            EnforcementKind::RansomwareKilled => "pyward: ransomware-like process killed",
            EnforcementKind::TreeKilled => "pyward: process tree of a ransomware kill killed",
        }
    }

    /// Priority of the alert.
    pub fn priority(&self) -> Priority {
        match self.kind {
            EnforcementKind::NetworkDenied | EnforcementKind::TreeKilled => Priority::Warning,
            _ => Priority::Critical,
        }
    }

    /// Tags: MITRE ATT&CK technique ids and tactics, as the rules carry them.
    pub fn tags(&self) -> Vec<String> {
        let mut t: Vec<&str> = vec!["pyward", "enforcement"];
        match self.kind {
            EnforcementKind::NetworkDenied => {
                t.extend(["network", "mitre_command_and_control", "T1071", "T1105"])
            }
            EnforcementKind::ExecKilled => {
                t.extend(["process", "mitre_execution", "T1105"]);
                if self.reasons.has(DriftReasons::MEMFD) || self.reasons.has(DriftReasons::DELETED)
                {
                    t.extend(["mitre_defense_evasion", "T1620"]);
                }
                if self.reasons.has(DriftReasons::SCRIPT) {
                    t.push("T1059");
                    if self.comm.starts_with("python") {
                        t.push("T1059.006");
                    } else {
                        t.push("T1059.004");
                    }
                }
            }
            EnforcementKind::OpenKilled => t.extend([
                "filesystem",
                "mitre_credential_access",
                "T1552.004",
                "T1005",
            ]),
            EnforcementKind::RansomwareKilled | EnforcementKind::TreeKilled => {
                t.extend(["filesystem", "mitre_impact", "T1486", "T1485"])
            }
        }
        let mut v: Vec<String> = t.into_iter().map(str::to_owned).collect();
        v.sort();
        v.dedup();
        v
    }

    fn message(&self) -> String {
        let who = format!(
            "(proc.name={} proc.pid={} proc.pname={} proc.ppid={} user.uid={} action={})",
            self.comm,
            self.tgid,
            self.parent_comm,
            self.ppid,
            self.uid,
            self.action.as_str()
        );
        match self.kind {
            EnforcementKind::NetworkDenied => {
                format!(
                    "Connection to a blocked network denied (fd.name={}) {who}",
                    self.target
                )
            }
            EnforcementKind::ExecKilled => format!(
                "Drifted program stopped before it ran (file={} reason={} dev={} ino={}) {who}",
                self.target,
                self.reasons.names().join(","),
                self.dev,
                self.ino
            ),
            EnforcementKind::OpenKilled => format!(
                "Protected file opened by a program not allowed to read it; killed before \
                 reading (fd.name={} dev={} ino={}) {who}",
                self.target, self.dev, self.ino
            ),
            EnforcementKind::RansomwareKilled => format!(
                "Ransomware-like activity stopped (encrypted writes={} deletes/renames={} in \
                 the window, last file={} account={}) {who}",
                self.encrypted_writes, self.destructive_ops, self.target, self.root
            ),
            EnforcementKind::TreeKilled => format!(
                "Member of a ransomware process tree killed (account={}) {who}",
                self.root
            ),
        }
    }

    /// The alert in Falco's JSON shape (same as the rules engine's alerts).
    pub fn to_alert(&self, hostname: &str) -> Alert {
        let mut f: BTreeMap<String, OutputValue> = BTreeMap::new();
        let mut put = |k: &str, v: OutputValue| {
            f.insert(k.to_owned(), v);
        };
        put("evt.time", OutputValue::from(self.time_ns));
        put("proc.pid", OutputValue::from(self.tgid));
        put("thread.tid", OutputValue::from(self.pid));
        put("proc.name", OutputValue::from(self.comm.clone()));
        put("user.uid", OutputValue::from(self.uid));
        put("container.cgroup_id", OutputValue::from(self.cgroup_id));
        put("pyward.action", OutputValue::from(self.action.as_str()));
        if self.kind != EnforcementKind::NetworkDenied {
            put("proc.ppid", OutputValue::from(self.ppid));
            put("proc.pname", OutputValue::from(self.parent_comm.clone()));
        }
        match self.kind {
            EnforcementKind::NetworkDenied => {
                if let Some(a) = self.addr {
                    put("fd.sip", OutputValue::from(a.ip().to_string()));
                    put("fd.sport", OutputValue::from(a.port()));
                }
                put("fd.name", OutputValue::from(self.target.clone()));
                put(
                    "fd.l4proto",
                    OutputValue::from(match self.protocol {
                        6 => "tcp",
                        17 => "udp",
                        _ => "unknown",
                    }),
                );
            }
            EnforcementKind::ExecKilled => {
                put("proc.exepath", OutputValue::from(self.target.clone()));
                put("fs.dev", OutputValue::from(self.dev));
                put("fs.ino", OutputValue::from(self.ino));
                put(
                    "pyward.drift_reasons",
                    OutputValue::from(self.reasons.names().join(",")),
                );
            }
            EnforcementKind::OpenKilled => {
                put("fd.name", OutputValue::from(self.target.clone()));
                put("fs.dev", OutputValue::from(self.dev));
                put("fs.ino", OutputValue::from(self.ino));
            }
            EnforcementKind::RansomwareKilled | EnforcementKind::TreeKilled => {
                put("fd.name", OutputValue::from(self.target.clone()));
                put("pyward.account", OutputValue::from(self.root));
                put(
                    "pyward.encrypted_writes",
                    OutputValue::from(self.encrypted_writes),
                );
                put(
                    "pyward.destructive_ops",
                    OutputValue::from(self.destructive_ops),
                );
            }
        }
        let (hms, iso) = time_texts(self.time_ns);
        let priority = self.priority();
        Alert {
            hostname: hostname.to_owned(),
            output: format!("{hms}: {priority} {}", self.message()),
            output_fields: f,
            priority,
            rule: self.rule_name().to_owned(),
            source: "syscall".to_owned(),
            tags: self.tags(),
            time: iso,
        }
    }
}

/// Falco's `HH:MM:SS.nnnnnnnnn` and ISO 8601 times (UTC).
fn time_texts(ns: u64) -> (String, String) {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(0);
    let sub = ns % 1_000_000_000;
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(dt) => {
            let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
            (
                format!("{h:02}:{mi:02}:{s:02}.{sub:09}"),
                format!(
                    "{:04}-{:02}-{:02}T{h:02}:{mi:02}:{s:02}.{sub:09}Z",
                    dt.year(),
                    u8::from(dt.month()),
                    dt.day()
                ),
            )
        }
        Err(_) => (ns.to_string(), ns.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u32) -> Vec<u8> {
        let mut b = vec![0u8; RECORD_SIZE];
        b[32..36].copy_from_slice(&kind.to_ne_bytes());
        b[36..40].copy_from_slice(&2u32.to_ne_bytes());
        b[44..48].copy_from_slice(&1234u32.to_ne_bytes());
        b[OFF_COMM..OFF_COMM + 3].copy_from_slice(b"cat");
        b
    }

    #[test]
    fn parses_network_denial_with_mapped_v6() {
        let mut b = record(1);
        b[36..40].copy_from_slice(&1u32.to_ne_bytes());
        b[60..64].copy_from_slice(&10u32.to_ne_bytes());
        b[64..66].copy_from_slice(&8080u16.to_ne_bytes());
        b[OFF_ADDR + 10] = 0xff;
        b[OFF_ADDR + 11] = 0xff;
        b[OFF_ADDR + 12..OFF_ADDR + 16].copy_from_slice(&[127, 0, 0, 66]);
        let e = EnforcementEvent::parse(&b, 0).unwrap();
        assert_eq!(e.kind, EnforcementKind::NetworkDenied);
        assert_eq!(e.action, EnforcementAction::Denied);
        assert_eq!(e.target, "127.0.0.66:8080");
        let a = e.to_alert("h");
        assert_eq!(a.rule, "pyward: connect to a blocked network denied");
        assert!(a.tags.contains(&"T1071".to_string()));
        assert_eq!(a.output_fields["fd.sport"], OutputValue::from(8080));
    }

    #[test]
    fn parses_open_kill_and_tags() {
        let mut b = record(3);
        let path = b"/home/u/.ssh/id_rsa";
        b[OFF_TARGET..OFF_TARGET + path.len()].copy_from_slice(path);
        let e = EnforcementEvent::parse(&b, 0).unwrap();
        assert_eq!(e.kind, EnforcementKind::OpenKilled);
        assert_eq!(e.comm, "cat");
        assert_eq!(e.target, "/home/u/.ssh/id_rsa");
        let a = e.to_alert("h");
        assert!(a.tags.contains(&"T1552.004".to_string()));
        assert_eq!(a.priority, Priority::Critical);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["rule"], "pyward: open of a protected file killed");
    }

    #[test]
    fn rejects_short_and_unknown_records() {
        assert_eq!(
            EnforcementEvent::parse(&[0u8; 10], 0),
            Err(ParseError::Size(10))
        );
        assert_eq!(
            EnforcementEvent::parse(&record(99), 0),
            Err(ParseError::Kind(99))
        );
        // A target without NUL is cut at its maximum, not read past.
        let mut b = record(2);
        for x in &mut b[OFF_TARGET..] {
            *x = b'a';
        }
        let e = EnforcementEvent::parse(&b, 0).unwrap();
        assert_eq!(e.target.len(), TARGET_MAX);
    }
}
