//! Kernel records as they come out of the ring buffer, parsed into owned Rust values.
//!
//! The byte layout is `struct event` of src/bpf/sensor.bpf.c (the generated skeleton's
//! `types::event`; lib.rs checks the offsets at compile time). Parsing never trusts the record:
//! every read is bounds-checked and a short or inconsistent record is an error, not a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Offset of the variable-length string data in a record.
pub(crate) const DATA_OFFSET: usize = 192;

/// What a kernel record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A syscall exit; [`KernelEvent::syscall`] says which.
    Syscall(Syscall),
    /// A successful execve/execveat (`sched_process_exec`).
    Exec,
    /// A new process (`sched_process_fork`); the event's pid is the child's.
    Fork,
    /// A process (thread-group leader) exited (`sched_process_exit`).
    Exit,
}

/// The syscalls the sensor hooks (x86_64 numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Syscall {
    Open,
    Openat,
    Openat2,
    Creat,
    Connect,
    Execve,
    Execveat,
    Unlink,
    Unlinkat,
    Rename,
    Renameat,
    Renameat2,
    Chmod,
    Fchmodat,
    Fchmodat2,
    MemfdCreate,
    Ptrace,
    Setuid,
    Setgid,
    Setreuid,
    Setregid,
    Setresuid,
    Setresgid,
}

impl Syscall {
    /// Every hooked syscall.
    pub const ALL: [Syscall; 23] = [
        Syscall::Open,
        Syscall::Openat,
        Syscall::Openat2,
        Syscall::Creat,
        Syscall::Connect,
        Syscall::Execve,
        Syscall::Execveat,
        Syscall::Unlink,
        Syscall::Unlinkat,
        Syscall::Rename,
        Syscall::Renameat,
        Syscall::Renameat2,
        Syscall::Chmod,
        Syscall::Fchmodat,
        Syscall::Fchmodat2,
        Syscall::MemfdCreate,
        Syscall::Ptrace,
        Syscall::Setuid,
        Syscall::Setgid,
        Syscall::Setreuid,
        Syscall::Setregid,
        Syscall::Setresuid,
        Syscall::Setresgid,
    ];

    /// The x86_64 syscall number.
    pub fn nr(self) -> u32 {
        match self {
            Syscall::Open => 2,
            Syscall::Connect => 42,
            Syscall::Execve => 59,
            Syscall::Rename => 82,
            Syscall::Creat => 85,
            Syscall::Unlink => 87,
            Syscall::Chmod => 90,
            Syscall::Ptrace => 101,
            Syscall::Setuid => 105,
            Syscall::Setgid => 106,
            Syscall::Setreuid => 113,
            Syscall::Setregid => 114,
            Syscall::Setresuid => 117,
            Syscall::Setresgid => 119,
            Syscall::Openat => 257,
            Syscall::Unlinkat => 263,
            Syscall::Renameat => 264,
            Syscall::Fchmodat => 268,
            Syscall::Renameat2 => 316,
            Syscall::MemfdCreate => 319,
            Syscall::Execveat => 322,
            Syscall::Openat2 => 437,
            Syscall::Fchmodat2 => 452,
        }
    }

    /// The syscall with this x86_64 number, if hooked.
    pub fn from_nr(nr: u32) -> Option<Syscall> {
        Syscall::ALL.into_iter().find(|s| s.nr() == nr)
    }

    /// Falco's event-type name (`fchmodat2` is reported as `fchmodat`, as Falco does).
    pub fn falco_name(self) -> &'static str {
        match self {
            Syscall::Open => "open",
            Syscall::Openat => "openat",
            Syscall::Openat2 => "openat2",
            Syscall::Creat => "creat",
            Syscall::Connect => "connect",
            Syscall::Execve => "execve",
            Syscall::Execveat => "execveat",
            Syscall::Unlink => "unlink",
            Syscall::Unlinkat => "unlinkat",
            Syscall::Rename => "rename",
            Syscall::Renameat => "renameat",
            Syscall::Renameat2 => "renameat2",
            Syscall::Chmod => "chmod",
            Syscall::Fchmodat | Syscall::Fchmodat2 => "fchmodat",
            Syscall::MemfdCreate => "memfd_create",
            Syscall::Ptrace => "ptrace",
            Syscall::Setuid => "setuid",
            Syscall::Setgid => "setgid",
            Syscall::Setreuid => "setreuid",
            Syscall::Setregid => "setregid",
            Syscall::Setresuid => "setresuid",
            Syscall::Setresgid => "setresgid",
        }
    }

    /// The hooked syscalls that produce a Falco event of this name.
    pub fn from_falco_name(name: &str) -> Vec<Syscall> {
        Syscall::ALL
            .into_iter()
            .filter(|s| s.falco_name() == name)
            .collect()
    }
}

/// One kernel event, owned and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelEvent {
    pub kind: Kind,
    /// CLOCK_MONOTONIC ns (converted to wall time by the caller).
    pub mono_ns: u64,
    pub cgroup_id: u64,
    /// Syscall return value (exit code for [`Kind::Exit`]).
    pub ret: i64,
    /// Thread-group id (Falco's `proc.pid`).
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// `u32::MAX` when unset (Falco prints -1).
    pub loginuid: u32,
    pub comm: String,
    /// Raw syscall arguments (registers), or kind-specific numbers.
    pub args: [u64; 6],
    /// Exec: inode number of the executable.
    pub ino: u64,
    /// Exec: the executable is a memfd.
    pub exe_memfd: bool,
    /// First string: path (or exec filename, memfd name).
    pub str1: Option<String>,
    /// Second string: new path of a rename; for exec, argv (NUL-separated, split here).
    pub str2: Option<String>,
    /// Whether str1/str2 were cut at the kernel's 4 KiB limit.
    pub truncated: bool,
    /// Connect: the destination as given.
    pub dest: Option<SockAddr>,
    /// Connect: local address and port and IPPROTO of the socket, when readable.
    pub local: Option<(IpAddr, u16)>,
    pub l4proto: Option<u16>,
}

/// A socket address passed to connect().
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    Inet(IpAddr, u16),
    Unix(String),
    /// Another family (AF_NETLINK...), by number.
    Other(u16),
}

/// Why a record could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("kernel record of {0} bytes is shorter than the {DATA_OFFSET}-byte header")]
    Short(usize),
    #[error("kernel record has unknown kind {0}")]
    Kind(u32),
    #[error("kernel record has unhooked syscall number {0}")]
    Syscall(u32),
    #[error("kernel record's string lengths ({0}+{1}) exceed its {2} bytes of data")]
    Lengths(usize, usize, usize),
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_ne_bytes)
        .unwrap_or(0)
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(0)
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_ne_bytes)
        .unwrap_or(0)
}

/// Text up to the first NUL, lossily decoded (paths are bytes; invalid UTF-8 becomes U+FFFD).
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
}

fn parse_sockaddr(a: &[u8]) -> Option<SockAddr> {
    let family = u16_at(a, 0);
    match family {
        0 => None,
        2 => {
            let port = u16::from_be_bytes([*a.get(2)?, *a.get(3)?]);
            let ip: [u8; 4] = a.get(4..8)?.try_into().ok()?;
            Some(SockAddr::Inet(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        10 => {
            let port = u16::from_be_bytes([*a.get(2)?, *a.get(3)?]);
            let ip: [u8; 16] = a.get(8..24)?.try_into().ok()?;
            Some(SockAddr::Inet(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        1 => Some(SockAddr::Unix(cstr(a.get(2..)?))),
        f => Some(SockAddr::Other(f)),
    }
}

impl KernelEvent {
    /// Parse one ring-buffer record.
    pub fn parse(b: &[u8]) -> Result<KernelEvent, ParseError> {
        if b.len() < DATA_OFFSET {
            return Err(ParseError::Short(b.len()));
        }
        let kind = match u32_at(b, 0) {
            1 => {
                let nr = u32_at(b, 4);
                Kind::Syscall(Syscall::from_nr(nr).ok_or(ParseError::Syscall(nr))?)
            }
            2 => Kind::Exec,
            3 => Kind::Fork,
            4 => Kind::Exit,
            k => return Err(ParseError::Kind(k)),
        };
        let flags = u32_at(b, 128);
        let l1 = usize::from(u16_at(b, 132));
        let l2 = usize::from(u16_at(b, 134));
        let data = b.get(DATA_OFFSET..).unwrap_or_default();
        if l1 + l2 > data.len() {
            return Err(ParseError::Lengths(l1, l2, data.len()));
        }
        let s1 = data.get(..l1).unwrap_or_default();
        let s2 = data.get(l1..l1 + l2).unwrap_or_default();
        let mut args = [0u64; 6];
        for (i, a) in args.iter_mut().enumerate() {
            *a = u64_at(b, 72 + 8 * i);
        }
        let str2 = if l2 == 0 {
            None
        } else if kind == Kind::Exec {
            // argv: NUL-separated; keep the separators for the caller to split.
            Some(String::from_utf8_lossy(s2).into_owned())
        } else {
            Some(cstr(s2))
        };
        let sock_ok = flags & 8 != 0;
        let l4 = u16_at(b, 166);
        let lport = u16_at(b, 164);
        let laddr = b.get(168..184).unwrap_or_default();
        let dest = if kind == Kind::Syscall(Syscall::Connect) {
            b.get(136..164).and_then(parse_sockaddr)
        } else {
            None
        };
        let local = match (&dest, sock_ok) {
            (Some(SockAddr::Inet(IpAddr::V4(_), _)), true) => {
                let ip: [u8; 4] = laddr
                    .get(..4)
                    .and_then(|s| s.try_into().ok())
                    .unwrap_or([0; 4]);
                Some((IpAddr::V4(Ipv4Addr::from(ip)), lport))
            }
            (Some(SockAddr::Inet(IpAddr::V6(_), _)), true) => {
                let ip: [u8; 16] = laddr.try_into().unwrap_or([0; 16]);
                Some((IpAddr::V6(Ipv6Addr::from(ip)), lport))
            }
            _ => None,
        };
        Ok(KernelEvent {
            kind,
            mono_ns: u64_at(b, 8),
            cgroup_id: u64_at(b, 16),
            ret: u64_at(b, 24) as i64,
            pid: u32_at(b, 32),
            tid: u32_at(b, 36),
            ppid: u32_at(b, 40),
            uid: u32_at(b, 44),
            gid: u32_at(b, 48),
            loginuid: u32_at(b, 52),
            comm: cstr(b.get(56..72).unwrap_or_default()),
            args,
            ino: u64_at(b, 120),
            exe_memfd: flags & 4 != 0,
            str1: (l1 > 0).then(|| cstr(s1)),
            str2,
            truncated: flags & 3 != 0,
            dest,
            local,
            l4proto: sock_ok.then_some(l4),
        })
    }

    /// The exec's argv, split at NULs (argv\[0\] first).
    pub fn argv(&self) -> Vec<String> {
        match (&self.kind, &self.str2) {
            (Kind::Exec, Some(s)) => s
                .split('\0')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u32, nr: u32, s1: &[u8], s2: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; DATA_OFFSET];
        b[0..4].copy_from_slice(&kind.to_ne_bytes());
        b[4..8].copy_from_slice(&nr.to_ne_bytes());
        b[32..36].copy_from_slice(&42u32.to_ne_bytes());
        b[56..60].copy_from_slice(b"cat\0");
        b[132..134].copy_from_slice(&(s1.len() as u16).to_ne_bytes());
        b[134..136].copy_from_slice(&(s2.len() as u16).to_ne_bytes());
        b.extend_from_slice(s1);
        b.extend_from_slice(s2);
        b
    }

    #[test]
    fn parses_an_openat_record() {
        let b = record(1, 257, b"/etc/shadow\0", b"");
        let e = KernelEvent::parse(&b).unwrap();
        assert_eq!(e.kind, Kind::Syscall(Syscall::Openat));
        assert_eq!(e.pid, 42);
        assert_eq!(e.comm, "cat");
        assert_eq!(e.str1.as_deref(), Some("/etc/shadow"));
        assert_eq!(e.str2, None);
    }

    #[test]
    fn rejects_bad_records_without_panicking() {
        assert_eq!(KernelEvent::parse(&[0u8; 10]), Err(ParseError::Short(10)));
        assert_eq!(
            KernelEvent::parse(&record(9, 0, b"", b"")),
            Err(ParseError::Kind(9))
        );
        assert_eq!(
            KernelEvent::parse(&record(1, 1, b"", b"")),
            Err(ParseError::Syscall(1))
        );
        let mut b = record(1, 257, b"/x\0", b"");
        b[132..134].copy_from_slice(&5000u16.to_ne_bytes());
        assert!(matches!(
            KernelEvent::parse(&b),
            Err(ParseError::Lengths(5000, 0, 3))
        ));
        // Invalid UTF-8 in a path is decoded lossily.
        let e = KernelEvent::parse(&record(1, 87, b"/tmp/\xff\0", b"")).unwrap();
        assert_eq!(e.str1.as_deref(), Some("/tmp/\u{fffd}"));
    }

    #[test]
    fn splits_exec_argv() {
        let e = KernelEvent::parse(&record(2, 0, b"/bin/sh\0", b"sh\0-c\0echo hi\0")).unwrap();
        assert_eq!(e.argv(), vec!["sh", "-c", "echo hi"]);
    }

    #[test]
    fn parses_connect_destinations() {
        let mut b = record(1, 42, b"", b"");
        b[136..138].copy_from_slice(&2u16.to_ne_bytes());
        b[138..140].copy_from_slice(&8080u16.to_be_bytes());
        b[140..144].copy_from_slice(&[127, 0, 0, 1]);
        let e = KernelEvent::parse(&b).unwrap();
        assert_eq!(
            e.dest,
            Some(SockAddr::Inet("127.0.0.1".parse().unwrap(), 8080))
        );
    }
}
