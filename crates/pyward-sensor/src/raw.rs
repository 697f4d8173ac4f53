//! Kernel records as they come out of the ring buffer, parsed into owned Rust values.
//!
//! The byte layout is `struct event` of src/bpf/sensor.bpf.c (the generated skeleton's
//! `types::event`; lib.rs checks the offsets at compile time). Parsing never trusts the record:
//! every read is bounds-checked and a short or inconsistent record is an error, not a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use crate::record::user_dev;
use crate::record::{cstr, u16_at, u32_at, u64_at};

/// Offset of the variable-length string data in a record.
pub(crate) const DATA_OFFSET: usize = 208;

// event.flags bits (EF_* in sensor.bpf.c).
const EF_STR1_TRUNC: u32 = 1;
const EF_STR2_TRUNC: u32 = 2;
const EF_EXE_MEMFD: u32 = 4;
const EF_SOCK_OK: u32 = 8;
const EF_EXE_WRITABLE: u32 = 16;
const EF_EXE_UPPER: u32 = 32;
const EF_EXE_LOWER: u32 = 64;
const EF_FILE_DELETED: u32 = 128;
const EF_FILE_OK: u32 = 256;
const EF_TIMES_OK: u32 = 512;

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

/// The syscalls the sensor hooks. Numbers are per target architecture ([`Syscall::nr`]):
/// x86_64's own table, or the asm-generic one on aarch64 (which has no `open`, `creat`,
/// `rename`, `unlink`, `chmod`, `link`, `symlink` nor `dup2`).
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
    /// Reports the new working directory (built by the kernel) when it succeeds.
    Chdir,
    Fchdir,
    Link,
    Linkat,
    Symlink,
    Symlinkat,
    InitModule,
    FinitModule,
    MemfdCreate,
    Ptrace,
    Setuid,
    Setgid,
    Setreuid,
    Setregid,
    Setresuid,
    Setresgid,
    /// First write at offset 0 of a regular file (once per open file), with its first bytes.
    Write,
    Pwrite64,
    Writev,
    Pwritev,
    /// First read at offset 0 of a regular file; only with [`crate::SensorOptions::capture_reads`].
    Read,
    Pread64,
    Readv,
    Preadv,
    /// Only calls with a destination address are reported.
    Sendto,
    Sendmsg,
    Sendmmsg,
    Socket,
    Dup,
    Dup2,
    Dup3,
    Close,
}

/// (syscall, x86_64 number, aarch64 number); `None`: the architecture has no such syscall.
const NUMBERS: [(Syscall, Option<u32>, Option<u32>); 47] = [
    (Syscall::Open, Some(2), None),
    (Syscall::Openat, Some(257), Some(56)),
    (Syscall::Openat2, Some(437), Some(437)),
    (Syscall::Creat, Some(85), None),
    (Syscall::Connect, Some(42), Some(203)),
    (Syscall::Execve, Some(59), Some(221)),
    (Syscall::Execveat, Some(322), Some(281)),
    (Syscall::Unlink, Some(87), None),
    (Syscall::Unlinkat, Some(263), Some(35)),
    (Syscall::Rename, Some(82), None),
    (Syscall::Renameat, Some(264), Some(38)),
    (Syscall::Renameat2, Some(316), Some(276)),
    (Syscall::Chmod, Some(90), None),
    (Syscall::Fchmodat, Some(268), Some(53)),
    (Syscall::Fchmodat2, Some(452), Some(452)),
    (Syscall::Chdir, Some(80), Some(49)),
    (Syscall::Fchdir, Some(81), Some(50)),
    (Syscall::Link, Some(86), None),
    (Syscall::Linkat, Some(265), Some(37)),
    (Syscall::Symlink, Some(88), None),
    (Syscall::Symlinkat, Some(266), Some(36)),
    (Syscall::InitModule, Some(175), Some(105)),
    (Syscall::FinitModule, Some(313), Some(273)),
    (Syscall::MemfdCreate, Some(319), Some(279)),
    (Syscall::Ptrace, Some(101), Some(117)),
    (Syscall::Setuid, Some(105), Some(146)),
    (Syscall::Setgid, Some(106), Some(144)),
    (Syscall::Setreuid, Some(113), Some(145)),
    (Syscall::Setregid, Some(114), Some(143)),
    (Syscall::Setresuid, Some(117), Some(147)),
    (Syscall::Setresgid, Some(119), Some(149)),
    (Syscall::Write, Some(1), Some(64)),
    (Syscall::Pwrite64, Some(18), Some(68)),
    (Syscall::Writev, Some(20), Some(66)),
    (Syscall::Pwritev, Some(296), Some(70)),
    (Syscall::Read, Some(0), Some(63)),
    (Syscall::Pread64, Some(17), Some(67)),
    (Syscall::Readv, Some(19), Some(65)),
    (Syscall::Preadv, Some(295), Some(69)),
    (Syscall::Sendto, Some(44), Some(206)),
    (Syscall::Sendmsg, Some(46), Some(211)),
    (Syscall::Sendmmsg, Some(307), Some(269)),
    (Syscall::Socket, Some(41), Some(198)),
    (Syscall::Dup, Some(32), Some(23)),
    (Syscall::Dup2, Some(33), None),
    (Syscall::Dup3, Some(292), Some(24)),
    (Syscall::Close, Some(3), Some(57)),
];

/// The target architecture whose syscall table the kernel records use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// The architecture this crate is built for (the BPF object is built for the same).
    pub const fn target() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }
}

impl Syscall {
    /// Every hooked syscall.
    pub const ALL: [Syscall; 47] = {
        let mut out = [Syscall::Open; 47];
        let mut i = 0;
        while i < NUMBERS.len() {
            out[i] = NUMBERS[i].0;
            i += 1;
        }
        out
    };

    /// The first-bytes-of-a-read syscalls (off unless `capture_reads`).
    pub const READS: [Syscall; 4] = [
        Syscall::Read,
        Syscall::Pread64,
        Syscall::Readv,
        Syscall::Preadv,
    ];

    /// The first-bytes-of-a-write syscalls.
    pub const WRITES: [Syscall; 4] = [
        Syscall::Write,
        Syscall::Pwrite64,
        Syscall::Writev,
        Syscall::Pwritev,
    ];

    /// The syscall number on `arch`, if it has this syscall.
    pub fn nr_on(self, arch: Arch) -> Option<u32> {
        let (_, x86, arm) = NUMBERS.iter().find(|(s, _, _)| *s == self)?;
        match arch {
            Arch::X86_64 => *x86,
            Arch::Aarch64 => *arm,
        }
    }

    /// The syscall number on the target architecture (`None`: it has no such syscall).
    pub fn nr(self) -> Option<u32> {
        self.nr_on(Arch::target())
    }

    /// The hooked syscall with this number on `arch`.
    pub fn from_nr_on(nr: u32, arch: Arch) -> Option<Syscall> {
        // Asked for every kernel event: a table indexed by number, built once per arch.
        static TABLES: std::sync::OnceLock<[[Option<Syscall>; 512]; 2]> =
            std::sync::OnceLock::new();
        let tables = TABLES.get_or_init(|| {
            let mut t = [[None; 512]; 2];
            for (s, x86, arm) in NUMBERS {
                for (i, n) in [x86, arm].into_iter().enumerate() {
                    if let Some(slot) = n.and_then(|n| t[i].get_mut(n as usize)) {
                        *slot = Some(s);
                    }
                }
            }
            t
        });
        let i = match arch {
            Arch::X86_64 => 0,
            Arch::Aarch64 => 1,
        };
        tables[i].get(nr as usize).copied().flatten()
    }

    /// The hooked syscall with this number on the target architecture.
    pub fn from_nr(nr: u32) -> Option<Syscall> {
        Syscall::from_nr_on(nr, Arch::target())
    }

    /// Whether this is a first-bytes capture of a write or a read.
    pub fn is_io(self) -> bool {
        Syscall::WRITES.contains(&self) || Syscall::READS.contains(&self)
    }

    /// Falco's event-type name (`fchmodat2` is reported as `fchmodat`, `pwrite64` as
    /// `pwrite`, as Falco does).
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
            Syscall::Chdir => "chdir",
            Syscall::Fchdir => "fchdir",
            Syscall::Link => "link",
            Syscall::Linkat => "linkat",
            Syscall::Symlink => "symlink",
            Syscall::Symlinkat => "symlinkat",
            Syscall::InitModule => "init_module",
            Syscall::FinitModule => "finit_module",
            Syscall::MemfdCreate => "memfd_create",
            Syscall::Ptrace => "ptrace",
            Syscall::Setuid => "setuid",
            Syscall::Setgid => "setgid",
            Syscall::Setreuid => "setreuid",
            Syscall::Setregid => "setregid",
            Syscall::Setresuid => "setresuid",
            Syscall::Setresgid => "setresgid",
            Syscall::Write => "write",
            Syscall::Pwrite64 => "pwrite",
            Syscall::Writev => "writev",
            Syscall::Pwritev => "pwritev",
            Syscall::Read => "read",
            Syscall::Pread64 => "pread",
            Syscall::Readv => "readv",
            Syscall::Preadv => "preadv",
            Syscall::Sendto => "sendto",
            Syscall::Sendmsg => "sendmsg",
            Syscall::Sendmmsg => "sendmmsg",
            Syscall::Socket => "socket",
            Syscall::Dup => "dup",
            Syscall::Dup2 => "dup2",
            Syscall::Dup3 => "dup3",
            Syscall::Close => "close",
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

/// What the kernel found about an executed file (exec events).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExeFlags {
    /// Writable by the process's fsuid/fsgid, or by CAP_DAC_OVERRIDE (`proc.is_exe_writable`).
    pub writable: bool,
    /// On an overlayfs upper layer, i.e. not from the image (`proc.is_exe_upper_layer`).
    pub upper_layer: bool,
    /// On overlayfs, only in a lower layer.
    pub lower_layer: bool,
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
    /// Exec: inode number of the executable; open/io: of the file (valid when `file_ok`).
    pub ino: u64,
    /// Device of `ino`, in user-space `st_dev` encoding (valid when `file_ok`).
    pub dev: u64,
    /// `ino`/`dev`/`deleted` were read from the kernel's file.
    pub file_ok: bool,
    /// The file had no links left (`i_nlink == 0`): unlinked while open or running.
    pub deleted: bool,
    /// Exec: the executable is a memfd.
    pub exe_memfd: bool,
    /// Exec: writable / overlay layer of the executable.
    pub exe: ExeFlags,
    /// Exec: the executable's ctime and mtime, ns since the epoch.
    pub ctime_ns: Option<u64>,
    pub mtime_ns: Option<u64>,
    /// Write/read: the first bytes (at most 64) moved at offset 0.
    pub data: Option<Vec<u8>>,
    /// First string: path (or exec filename, memfd name).
    pub str1: Option<String>,
    /// Second string: new path of a rename; for exec, argv (NUL-separated, split here).
    pub str2: Option<String>,
    /// Whether str1/str2 were cut at the kernel's 4 KiB limit.
    pub truncated: bool,
    /// Connect/sendto/sendmsg: the destination as given.
    pub dest: Option<SockAddr>,
    /// Connect/sendto/sendmsg/socket: local address and port and IPPROTO of the socket,
    /// when readable.
    pub local: Option<(IpAddr, u16)>,
    pub l4proto: Option<u16>,
}

/// A socket address passed to connect() or sendto().
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
    /// An event of `kind` with every other field empty (tests, synthetic events).
    pub fn blank(kind: Kind) -> KernelEvent {
        KernelEvent {
            kind,
            mono_ns: 0,
            cgroup_id: 0,
            ret: 0,
            pid: 0,
            tid: 0,
            ppid: 0,
            uid: 0,
            gid: 0,
            loginuid: u32::MAX,
            comm: String::new(),
            args: [0; 6],
            ino: 0,
            dev: 0,
            file_ok: false,
            deleted: false,
            exe_memfd: false,
            exe: ExeFlags::default(),
            ctime_ns: None,
            mtime_ns: None,
            data: None,
            str1: None,
            str2: None,
            truncated: false,
            dest: None,
            local: None,
            l4proto: None,
        }
    }

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
        let sys = match kind {
            Kind::Syscall(sc) => Some(sc),
            _ => None,
        };
        let is_io = sys.is_some_and(Syscall::is_io);
        let (str2, data) = if l2 == 0 {
            (None, None)
        } else if kind == Kind::Exec {
            // argv: NUL-separated; keep the separators for the caller to split.
            (Some(String::from_utf8_lossy(s2).into_owned()), None)
        } else if is_io {
            // Raw bytes of a file: binary.
            (None, Some(s2.to_vec()))
        } else {
            (Some(cstr(s2)), None)
        };
        let sock_ok = flags & EF_SOCK_OK != 0;
        let l4 = u16_at(b, 166);
        let lport = u16_at(b, 164);
        let laddr = b.get(168..184).unwrap_or_default();
        let dest = match sys {
            Some(Syscall::Connect | Syscall::Sendto | Syscall::Sendmsg | Syscall::Sendmmsg) => {
                b.get(136..164).and_then(parse_sockaddr)
            }
            _ => None,
        };
        let local_v6 = match &dest {
            Some(SockAddr::Inet(ip, _)) => Some(ip.is_ipv6()),
            // socket(): the family is the first argument.
            None if sys == Some(Syscall::Socket) => match u64_at(b, 72) {
                2 => Some(false),
                10 => Some(true),
                _ => None,
            },
            _ => None,
        };
        let local = match (local_v6, sock_ok) {
            (Some(false), true) => {
                let ip: [u8; 4] = laddr
                    .get(..4)
                    .and_then(|s| s.try_into().ok())
                    .unwrap_or([0; 4]);
                Some((IpAddr::V4(Ipv4Addr::from(ip)), lport))
            }
            (Some(true), true) => {
                let ip: [u8; 16] = laddr.try_into().unwrap_or([0; 16]);
                Some((IpAddr::V6(Ipv6Addr::from(ip)), lport))
            }
            _ => None,
        };
        let times_ok = flags & EF_TIMES_OK != 0;
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
            dev: user_dev(u32_at(b, 184)),
            file_ok: flags & EF_FILE_OK != 0,
            deleted: flags & EF_FILE_DELETED != 0,
            exe_memfd: flags & EF_EXE_MEMFD != 0,
            exe: ExeFlags {
                writable: flags & EF_EXE_WRITABLE != 0,
                upper_layer: flags & EF_EXE_UPPER != 0,
                lower_layer: flags & EF_EXE_LOWER != 0,
            },
            ctime_ns: times_ok.then(|| u64_at(b, 192)),
            mtime_ns: times_ok.then(|| u64_at(b, 200)),
            data,
            str1: (l1 > 0).then(|| cstr(s1)),
            str2,
            truncated: flags & (EF_STR1_TRUNC | EF_STR2_TRUNC) != 0,
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

    fn nr(s: Syscall) -> u32 {
        s.nr().unwrap()
    }

    #[test]
    fn parses_an_openat_record() {
        let b = record(1, nr(Syscall::Openat), b"/etc/shadow\0", b"");
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
            KernelEvent::parse(&record(1, 499, b"", b"")),
            Err(ParseError::Syscall(499))
        );
        let mut b = record(1, nr(Syscall::Openat), b"/x\0", b"");
        b[132..134].copy_from_slice(&5000u16.to_ne_bytes());
        assert!(matches!(
            KernelEvent::parse(&b),
            Err(ParseError::Lengths(5000, 0, 3))
        ));
        // Invalid UTF-8 in a path is decoded lossily.
        let e = KernelEvent::parse(&record(1, nr(Syscall::Unlinkat), b"/tmp/\xff\0", b"")).unwrap();
        assert_eq!(e.str1.as_deref(), Some("/tmp/\u{fffd}"));
    }

    #[test]
    fn splits_exec_argv() {
        let e = KernelEvent::parse(&record(2, 0, b"/bin/sh\0", b"sh\0-c\0echo hi\0")).unwrap();
        assert_eq!(e.argv(), vec!["sh", "-c", "echo hi"]);
    }

    #[test]
    fn parses_connect_destinations() {
        let mut b = record(1, nr(Syscall::Connect), b"", b"");
        b[136..138].copy_from_slice(&2u16.to_ne_bytes());
        b[138..140].copy_from_slice(&8080u16.to_be_bytes());
        b[140..144].copy_from_slice(&[127, 0, 0, 1]);
        let e = KernelEvent::parse(&b).unwrap();
        assert_eq!(
            e.dest,
            Some(SockAddr::Inet("127.0.0.1".parse().unwrap(), 8080))
        );
    }

    #[test]
    fn parses_exec_file_identity_and_flags() {
        let mut b = record(2, 0, b"/tmp/x\0", b"x\0");
        b[120..128].copy_from_slice(&4242u64.to_ne_bytes());
        // Kernel dev 8:3 (major << 20 | minor).
        b[184..188].copy_from_slice(&((8u32 << 20) | 3).to_ne_bytes());
        b[192..200].copy_from_slice(&1_700_000_000_123u64.to_ne_bytes());
        b[200..208].copy_from_slice(&1_600_000_000_456u64.to_ne_bytes());
        let flags = EF_EXE_WRITABLE | EF_EXE_UPPER | EF_FILE_DELETED | EF_FILE_OK | EF_TIMES_OK;
        b[128..132].copy_from_slice(&flags.to_ne_bytes());
        let e = KernelEvent::parse(&b).unwrap();
        assert_eq!((e.ino, e.dev), (4242, 0x803));
        assert!(e.file_ok && e.deleted && !e.exe_memfd);
        assert!(e.exe.writable && e.exe.upper_layer && !e.exe.lower_layer);
        assert_eq!(e.ctime_ns, Some(1_700_000_000_123));
        assert_eq!(e.mtime_ns, Some(1_600_000_000_456));
        // Without EF_TIMES_OK the times are unknown, not 0.
        b[128..132].copy_from_slice(&EF_FILE_OK.to_ne_bytes());
        assert_eq!(KernelEvent::parse(&b).unwrap().ctime_ns, None);
    }

    #[test]
    fn io_records_keep_binary_data_and_cap_it_to_the_record() {
        let magic = b"\x7fELF\x02\x01\x01\0\xff\xfe";
        let b = record(1, nr(Syscall::Write), b"/tmp/drop\0", magic);
        let e = KernelEvent::parse(&b).unwrap();
        assert_eq!(e.kind, Kind::Syscall(Syscall::Write));
        assert_eq!(e.str1.as_deref(), Some("/tmp/drop"));
        assert_eq!(e.str2, None);
        assert_eq!(e.data.as_deref(), Some(&magic[..]));
        // A record cut short inside the data is refused, not read past its end.
        let mut short = b.clone();
        short.truncate(b.len() - 3);
        assert!(matches!(
            KernelEvent::parse(&short),
            Err(ParseError::Lengths(10, 10, 17))
        ));
        // Lengths that overflow together.
        let mut huge = b;
        huge[132..134].copy_from_slice(&u16::MAX.to_ne_bytes());
        huge[134..136].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert!(KernelEvent::parse(&huge).is_err());
    }

    #[test]
    fn parses_sendto_destinations_and_ignores_addr_elsewhere() {
        let mut b = record(1, nr(Syscall::Sendto), b"", b"");
        b[136..138].copy_from_slice(&10u16.to_ne_bytes());
        b[138..140].copy_from_slice(&53u16.to_be_bytes());
        b[144..160].copy_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        b[128..132].copy_from_slice(&EF_SOCK_OK.to_ne_bytes());
        b[164..166].copy_from_slice(&40000u16.to_ne_bytes());
        b[166..168].copy_from_slice(&17u16.to_ne_bytes());
        let e = KernelEvent::parse(&b).unwrap();
        assert_eq!(e.dest, Some(SockAddr::Inet("::1".parse().unwrap(), 53)));
        assert_eq!(e.local, Some(("::".parse().unwrap(), 40000)));
        assert_eq!(e.l4proto, Some(17));
        // The same bytes on a write record are not an address.
        let mut w = b.clone();
        w[4..8].copy_from_slice(&nr(Syscall::Write).to_ne_bytes());
        assert_eq!(KernelEvent::parse(&w).unwrap().dest, None);
        // A truncated sockaddr (family only) gives no address rather than a panic.
        let mut t = record(1, nr(Syscall::Sendmsg), b"", b"");
        t[136..138].copy_from_slice(&2u16.to_ne_bytes());
        assert_eq!(
            KernelEvent::parse(&t).unwrap().dest,
            Some(SockAddr::Inet("0.0.0.0".parse().unwrap(), 0))
        );
    }

    #[test]
    fn syscall_tables_per_arch() {
        // Numbers are unique per architecture, so from_nr is a bijection on what exists.
        for arch in [Arch::X86_64, Arch::Aarch64] {
            let mut seen = std::collections::HashSet::new();
            for s in Syscall::ALL {
                if let Some(n) = s.nr_on(arch) {
                    assert!(seen.insert(n), "{s:?} reuses {n} on {arch:?}");
                    assert_eq!(Syscall::from_nr_on(n, arch), Some(s));
                }
            }
        }
        assert_eq!(Syscall::Openat.nr_on(Arch::X86_64), Some(257));
        assert_eq!(Syscall::Openat.nr_on(Arch::Aarch64), Some(56));
        assert_eq!(Syscall::Write.nr_on(Arch::Aarch64), Some(64));
        assert_eq!(Syscall::Sendto.nr_on(Arch::Aarch64), Some(206));
        for s in [
            Syscall::Open,
            Syscall::Creat,
            Syscall::Rename,
            Syscall::Unlink,
            Syscall::Chmod,
            Syscall::Dup2,
        ] {
            assert_eq!(s.nr_on(Arch::Aarch64), None, "{s:?}");
            assert!(s.nr_on(Arch::X86_64).is_some());
        }
        // aarch64's 56 is openat, x86_64's 56 (clone) is not hooked.
        assert_eq!(Syscall::from_nr_on(56, Arch::X86_64), None);
        assert_eq!(Syscall::from_falco_name("pwrite"), vec![Syscall::Pwrite64]);
    }
}
