//! Kernel events → the rules engine's event ([`ReplayEvent`], the docs/events.md format).
//!
//! Live events are converted into exactly the structure `pyward rules replay` reads, so the
//! evaluator sees the same thing live and replayed, and a recording (`--record`) is just
//! these events serialised one per line. Names and renderings follow Falco: event types
//! (`openat`, `procexit`), argument names (`name`, `flags`, `oldpath`...), open flags as
//! `O_RDONLY|O_CLOEXEC`, `fd.name` absolute (relative paths resolved against the cwd),
//! sockets as `cip:cport->sip:sport`.

use std::net::IpAddr;
use std::sync::Arc;

use pyward_rules::event::replay::{
    ArgValue, EventTime, ReplayContainer, ReplayEvent, ReplayFd, ReplayGroup, ReplayProcess,
    ReplayUser,
};

use crate::fdtable::FdTable;
use crate::proctable::{ProcInfo, ProcessTable};
use crate::raw::{KernelEvent, Kind, SockAddr, Syscall};
use crate::users::Users;

const AT_FDCWD: i32 = -100;

/// Converts kernel events, with the user and group names of the host.
#[derive(Debug, Default)]
pub struct Converter {
    users: Users,
    /// Container names and images from the runtimes' state files (container.rs).
    containers: crate::container::MetadataCache,
}

/// Falco's rendering of open(2) flags.
pub fn open_flags_text(flags: u64) -> String {
    let mut parts = String::with_capacity(32);
    parts.push_str(match flags & 3 {
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_RDONLY",
    });
    const NAMES: [(u64, &str); 13] = [
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o10000, "O_DSYNC"),
        (0o40000, "O_DIRECT"),
        (0o100000, "O_LARGEFILE"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
    ];
    for (bit, name) in NAMES {
        if flags & bit != 0 {
            parts.push('|');
            parts.push_str(name);
        }
    }
    if flags & 0o20000000 != 0 {
        parts.push_str("|O_TMPFILE");
    }
    if flags & 0o4000000 != 0 {
        parts.push_str("|O_SYNC");
    }
    parts
}

/// Falco's name of a ptrace request.
pub fn ptrace_request_text(req: u64) -> String {
    match req {
        0 => "PTRACE_TRACEME",
        1 => "PTRACE_PEEKTEXT",
        2 => "PTRACE_PEEKDATA",
        3 => "PTRACE_PEEKUSR",
        4 => "PTRACE_POKETEXT",
        5 => "PTRACE_POKEDATA",
        6 => "PTRACE_POKEUSR",
        7 => "PTRACE_CONT",
        8 => "PTRACE_KILL",
        9 => "PTRACE_SINGLESTEP",
        12 => "PTRACE_GETREGS",
        13 => "PTRACE_SETREGS",
        16 => "PTRACE_ATTACH",
        17 => "PTRACE_DETACH",
        24 => "PTRACE_SYSCALL",
        0x4200 => "PTRACE_SETOPTIONS",
        0x4206 => "PTRACE_SEIZE",
        0x4207 => "PTRACE_INTERRUPT",
        other => return format!("{other}"),
    }
    .to_owned()
}

/// Lexically normalise an absolute path (`.`/`..`/`//`), as Falco does for `fd.name`.
/// Built in one buffer: this runs for every open.
fn normalize(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                let keep = out.rfind('/').unwrap_or(0);
                out.truncate(keep);
            }
            c => {
                out.push('/');
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The absolute path of `path` opened relative to `dirfd` by process `pid`: the folder
/// from the fd table (filled from the events, so it holds after the process closed the fd
/// or exited), else from /proc while the process still has it open.
fn resolve(path: &str, dirfd: i32, pid: u32, cwd: Option<&str>, fds: &FdTable) -> String {
    if path.starts_with('/') {
        return normalize(path);
    }
    let base = if dirfd == AT_FDCWD {
        cwd.map(str::to_owned)
    } else {
        fds.get(pid, dirfd)
            .and_then(|f| f.name)
            .filter(|n| n.starts_with('/'))
            .or_else(|| {
                std::fs::read_link(format!("/proc/{pid}/fd/{dirfd}"))
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned())
            })
    };
    match base {
        Some(b) => normalize(&format!("{b}/{path}")),
        None => path.to_owned(),
    }
}

fn l4_name(p: Option<u16>) -> Option<String> {
    match p? {
        6 => Some("tcp".into()),
        17 => Some("udp".into()),
        1 | 58 => Some("icmp".into()),
        255 => Some("raw".into()),
        _ => None,
    }
}

fn fmt_ip(ip: IpAddr) -> String {
    ip.to_string()
}

/// Lowercase hex of captured bytes (the `data` argument and `buffer_hex`).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Falco's fd.type for a socket of this address family.
fn socket_type(family: u64) -> &'static str {
    match family {
        1 => "unix",
        2 => "ipv4",
        10 => "ipv6",
        16 => "netlink",
        _ => "socket",
    }
}

#[allow(clippy::field_reassign_with_default)] // the replay structs have private caches
impl Converter {
    /// A converter with the host's users and groups.
    pub fn new() -> Converter {
        Converter {
            users: Users::load(),
            ..Converter::default()
        }
    }

    /// A converter with given users (tests).
    pub fn with_users(users: Users) -> Converter {
        Converter {
            users,
            ..Converter::default()
        }
    }

    /// `p` for the rules engine: built and finished once per process (cached in the table,
    /// emptied on exec and chdir), then shared by each event as an ancestor.
    fn process(p: &ProcInfo) -> Arc<ReplayProcess> {
        p.replay
            .get_or_init(|| {
                let mut r = Converter::build_process(p);
                r.finish();
                Arc::new(r)
            })
            .clone()
    }

    fn build_process(p: &ProcInfo) -> ReplayProcess {
        let mut r = ReplayProcess::default();
        r.pid = Some(u64::from(p.pid));
        r.ppid = Some(u64::from(p.ppid));
        r.name = (!p.comm.is_empty()).then(|| p.comm.clone());
        r.exe = p.argv.first().cloned();
        r.exepath = p.exepath.clone();
        let args: Vec<String> = p.argv.iter().skip(1).cloned().collect();
        // proc.cmdline as `ReplayEvent::finish` would build it (name, then the arguments),
        // done here once instead of for every event.
        r.cmdline = r.name.as_ref().map(|name| {
            let len = name.len() + args.iter().map(|a| a.len() + 1).sum::<usize>();
            let mut c = String::with_capacity(len);
            c.push_str(name);
            if args.iter().any(|a| !a.is_empty()) || args.len() > 1 {
                c.push(' ');
                c.push_str(&args.join(" "));
            }
            c
        });
        r.args = Some(args);
        r.cwd = p.cwd.as_ref().map(|c| {
            if c.ends_with('/') {
                c.clone()
            } else {
                format!("{c}/")
            }
        });
        r.start_ts = p.start_ts;
        if let Some(x) = &p.exe {
            r.exe_ino = Some(x.ino);
            r.exe_dev = Some(x.dev);
            r.exe_ino_ctime = x.ctime_ns;
            r.exe_ino_mtime = x.mtime_ns;
            r.is_exe_writable = x.writable;
            r.is_exe_upper_layer = x.upper_layer;
            r.is_exe_from_memfd = Some(x.memfd);
            r.exe_deleted = Some(x.deleted);
        }
        r
    }

    /// The rules engine's view of a kernel event. Call [`ProcessTable::apply`] with the
    /// event first, so an exec already shows the new image.
    pub fn convert(&self, ev: &KernelEvent, table: &ProcessTable, wall_ns: u64) -> ReplayEvent {
        self.convert_with_fds(ev, table, &FdTable::new(), wall_ns)
    }

    /// [`Converter::convert`], naming fds that the event carries only by number (close,
    /// dup, and writes/reads whose path the kernel could not build) from `fds`. Call
    /// [`FdTable::apply`] after this, so a close still shows what it closed.
    pub fn convert_with_fds(
        &self,
        ev: &KernelEvent,
        table: &ProcessTable,
        fds: &FdTable,
        wall_ns: u64,
    ) -> ReplayEvent {
        let info = table.get(ev.pid);
        let cached = info.map(Converter::process);
        let proc = match cached {
            // The main thread as the table knows it (the usual case): the shared record, whose
            // absent tid reads as the pid.
            Some(c)
                if ev.tid == ev.pid
                    && c.ppid == Some(u64::from(ev.ppid))
                    && c.name.as_deref() == Some(ev.comm.as_str()) =>
            {
                c
            }
            _ => {
                let mut proc = match &cached {
                    Some(c) => ReplayProcess::clone(c),
                    None => {
                        let mut r = ReplayProcess::default();
                        r.pid = Some(u64::from(ev.pid));
                        r
                    }
                };
                proc.tid = Some(u64::from(ev.tid));
                proc.ppid = Some(u64::from(ev.ppid));
                if proc.name.as_deref() != Some(ev.comm.as_str()) {
                    // The thread's own comm: proc.cmdline is rebuilt from it by `finish`.
                    proc.name = Some(ev.comm.clone());
                    proc.cmdline = None;
                    proc.unfinish();
                }
                Arc::new(proc)
            }
        };
        let ancestors = table
            .ancestors(ev.pid)
            .into_iter()
            .map(Converter::process)
            .collect();
        let user_entry = self.users.user(ev.uid);
        let user = ReplayUser {
            uid: Some(u64::from(ev.uid)),
            name: user_entry.map(|u| u.name.clone()),
            loginuid: Some(if ev.loginuid == u32::MAX {
                -1
            } else {
                i64::from(ev.loginuid)
            }),
            loginname: (ev.loginuid != u32::MAX)
                .then(|| self.users.user(ev.loginuid).map(|u| u.name.clone()))
                .flatten(),
            homedir: user_entry.map(|u| u.home.clone()),
            shell: user_entry.map(|u| u.shell.clone()),
        };
        let group = ReplayGroup {
            gid: Some(u64::from(ev.gid)),
            name: self.users.group(ev.gid).map(str::to_owned),
        };
        let meta = info
            .and_then(|p| p.container.as_ref())
            .and_then(|c| self.containers.get(c));
        let container = info.and_then(|p| p.container.as_ref()).map(|c| {
            let mut r = ReplayContainer::default();
            if let Some(m) = &meta {
                m.fill(&mut r);
            }
            r.id = Some(c.id.clone());
            r.container_type = Some(c.runtime.to_owned());
            r
        });
        let cwd = info.and_then(|p| p.cwd.as_deref());
        let (event_type, fd, args) = self.syscall_parts(ev, cwd, fds);
        let mut out = ReplayEvent::default();
        out.time = EventTime::Nanos(wall_ns);
        out.event_type = event_type;
        out.res = Some(ev.ret);
        out.proc = proc;
        out.ancestors = ancestors;
        out.user = user;
        out.group = group;
        out.container = container;
        if let Some(m) = &meta {
            m.fill_k8s(&mut out.k8s);
        }
        out.fd = fd;
        out.args = args;
        out.buffer_hex = ev.data.as_deref().map(hex);
        if out.finish().is_err() {
            // Only an empty type or a bad time can fail, and neither happens here; keep the
            // event usable anyway.
            out.event_type = "unknown".into();
            let _ = out.finish();
        }
        out
    }

    fn syscall_parts(
        &self,
        ev: &KernelEvent,
        cwd: Option<&str>,
        fds: &FdTable,
    ) -> (String, Option<ReplayFd>, Vec<(String, ArgValue)>) {
        let a = ev.args;
        let s1: &str = ev.str1.as_deref().unwrap_or_default();
        let s2: &str = ev.str2.as_deref().unwrap_or_default();
        let int = |v: u64| ArgValue::Int(v as i64);
        let dirfd = |v: u64| v as i32;
        // The kernel's device and inode of the file, when it read them.
        let (ino, dev) = if ev.file_ok {
            (Some(ev.ino), Some(ev.dev))
        } else {
            (None, None)
        };
        let file_fd = |path: String, num: i64| ReplayFd {
            num: Some(num),
            fd_type: Some("file".into()),
            name: Some(path),
            ino,
            dev,
            ..ReplayFd::default()
        };
        // An opened file: fd.nameraw is the name as the process passed it, kept only when it
        // differs from the resolved fd.name (`../` traversal, relative names).
        let opened_fd = |path: String, num: i64| {
            let raw = (!s1.is_empty() && s1 != path).then(|| s1.to_owned());
            ReplayFd {
                nameraw: raw,
                ..file_fd(path, num)
            }
        };
        let known_fd = |num: u64| fds.get(ev.pid, num as i32);
        let arg = |n: &str, v: ArgValue| (n.to_owned(), v);
        let sys = match ev.kind {
            Kind::Exec => {
                let exe = s1.to_owned();
                return (
                    "execve".into(),
                    None,
                    vec![
                        arg("exe", ArgValue::Str(exe.clone())),
                        arg("filename", ArgValue::Str(exe)),
                    ],
                );
            }
            Kind::Fork => return ("clone".into(), None, Vec::new()),
            Kind::Exit => {
                return (
                    "procexit".into(),
                    None,
                    vec![arg("status", ArgValue::Int(ev.ret))],
                )
            }
            Kind::Syscall(s) => s,
        };
        let name = sys.falco_name().to_owned();
        let fd_num = if ev.ret >= 0 { ev.ret } else { -1 };
        let (fd, args) = match sys {
            Syscall::Open => {
                let p = if s2.starts_with('/') {
                    normalize(s2)
                } else {
                    resolve(s1, AT_FDCWD, ev.pid, cwd, fds)
                };
                (
                    Some(opened_fd(p, fd_num)),
                    vec![
                        arg("fd", ArgValue::Int(fd_num)),
                        arg("name", ArgValue::Str(s1.to_owned())),
                        arg("flags", ArgValue::Str(open_flags_text(a[1]))),
                        arg("mode", int(a[2])),
                    ],
                )
            }
            Syscall::Creat => {
                let p = if s2.starts_with('/') {
                    normalize(s2)
                } else {
                    resolve(s1, AT_FDCWD, ev.pid, cwd, fds)
                };
                (
                    Some(opened_fd(p, fd_num)),
                    vec![
                        arg("fd", ArgValue::Int(fd_num)),
                        arg("name", ArgValue::Str(s1.to_owned())),
                        arg("mode", int(a[1])),
                    ],
                )
            }
            Syscall::Openat | Syscall::Openat2 => {
                // openat2's flags/mode/resolve come from struct open_how (args 2..4).
                let (flags, mode) = (a[2], a[3]);
                // A relative name's absolute path, from the kernel when it built it.
                let p = if s2.starts_with('/') {
                    normalize(s2)
                } else {
                    resolve(s1, dirfd(a[0]), ev.pid, cwd, fds)
                };
                let mut v = vec![
                    arg("fd", ArgValue::Int(fd_num)),
                    arg("dirfd", ArgValue::Int(i64::from(dirfd(a[0])))),
                    arg("name", ArgValue::Str(s1.to_owned())),
                    arg("flags", ArgValue::Str(open_flags_text(flags))),
                    arg("mode", int(mode)),
                ];
                if sys == Syscall::Openat2 {
                    v.push(arg("resolve", int(a[4])));
                }
                (Some(opened_fd(p, fd_num)), v)
            }
            Syscall::Connect => connect_parts(ev),
            Syscall::Sendto | Syscall::Sendmsg | Syscall::Sendmmsg => {
                let (fd, mut args) = connect_parts(ev);
                if sys == Syscall::Sendto {
                    args.push(arg("size", int(a[2])));
                }
                (fd, args)
            }
            Syscall::Write
            | Syscall::Pwrite64
            | Syscall::Writev
            | Syscall::Pwritev
            | Syscall::Read
            | Syscall::Pread64
            | Syscall::Readv
            | Syscall::Preadv => {
                let fdn = a[0] as i32;
                // The kernel's path (built from the file's dentries) first, else the fd
                // table's entry if it is this very file.
                let mut fd = match ev.str1.as_deref() {
                    Some(p) if !p.is_empty() => file_fd(p.to_owned(), i64::from(fdn)),
                    _ => fds
                        .get_checked(ev.pid, fdn, ev.ino, ev.dev)
                        .unwrap_or_else(|| ReplayFd {
                            num: Some(i64::from(fdn)),
                            fd_type: Some("file".into()),
                            ..ReplayFd::default()
                        }),
                };
                fd.ino = ino.or(fd.ino);
                fd.dev = dev.or(fd.dev);
                let vectored = matches!(
                    sys,
                    Syscall::Writev | Syscall::Pwritev | Syscall::Readv | Syscall::Preadv
                );
                let size = if vectored { ev.ret.max(0) } else { a[2] as i64 };
                let data = ev.data.as_deref().map(hex).unwrap_or_default();
                (
                    Some(fd),
                    vec![
                        arg("fd", ArgValue::Int(i64::from(fdn))),
                        arg("size", ArgValue::Int(size)),
                        arg("data", ArgValue::Str(data)),
                    ],
                )
            }
            Syscall::Socket => (
                (ev.ret >= 0).then(|| ReplayFd {
                    num: Some(ev.ret),
                    fd_type: Some(socket_type(a[0]).into()),
                    l4proto: l4_name(ev.l4proto),
                    ..ReplayFd::default()
                }),
                vec![
                    arg("domain", int(a[0])),
                    arg("type", int(a[1] & 0xffff_ffff)),
                    arg("proto", int(a[2] & 0xffff_ffff)),
                ],
            ),
            Syscall::Dup | Syscall::Dup2 | Syscall::Dup3 => {
                let mut v = vec![arg("oldfd", ArgValue::Int(i64::from(a[0] as i32)))];
                if sys != Syscall::Dup {
                    v.push(arg("newfd", ArgValue::Int(i64::from(a[1] as i32))));
                }
                if sys == Syscall::Dup3 {
                    v.push(arg("flags", int(a[2])));
                }
                // An fd whose open was folded in the kernel is not in the table: the event
                // then names the file itself (see "Repeat folding" in sensor.bpf.c).
                let fd = known_fd(a[0])
                    .or_else(|| {
                        let p = ev.str1.as_deref().filter(|p| !p.is_empty())?;
                        Some(file_fd(p.to_owned(), 0))
                    })
                    .map(|f| ReplayFd {
                        num: Some(ev.ret),
                        ..f
                    });
                (fd, v)
            }
            Syscall::Close => (
                known_fd(a[0]),
                vec![arg("fd", ArgValue::Int(i64::from(a[0] as i32)))],
            ),
            Syscall::Execve | Syscall::Execveat => {
                // Only failed execs come as syscalls (successes are Kind::Exec).
                (None, vec![arg("filename", ArgValue::Str(s1.to_owned()))])
            }
            Syscall::Unlink => (None, vec![arg("path", ArgValue::Str(s1.to_owned()))]),
            Syscall::Unlinkat => (
                None,
                vec![
                    arg("dirfd", ArgValue::Int(i64::from(dirfd(a[0])))),
                    arg("name", ArgValue::Str(s1.to_owned())),
                    arg("flags", int(a[2])),
                ],
            ),
            Syscall::Rename => (
                None,
                vec![
                    arg("oldpath", ArgValue::Str(s1.to_owned())),
                    arg("newpath", ArgValue::Str(s2.to_owned())),
                ],
            ),
            Syscall::Renameat | Syscall::Renameat2 => {
                let mut v = vec![
                    arg("olddirfd", ArgValue::Int(i64::from(dirfd(a[0])))),
                    arg("oldpath", ArgValue::Str(s1.to_owned())),
                    arg("newdirfd", ArgValue::Int(i64::from(dirfd(a[2])))),
                    arg("newpath", ArgValue::Str(s2.to_owned())),
                ];
                if sys == Syscall::Renameat2 {
                    v.push(arg("flags", int(a[4])));
                }
                (None, v)
            }
            Syscall::Chmod => (
                None,
                vec![
                    arg("filename", ArgValue::Str(s1.to_owned())),
                    arg("mode", int(a[1])),
                ],
            ),
            Syscall::Fchmodat | Syscall::Fchmodat2 => (
                None,
                vec![
                    arg("dirfd", ArgValue::Int(i64::from(dirfd(a[0])))),
                    arg("filename", ArgValue::Str(s1.to_owned())),
                    arg("mode", int(a[2])),
                ],
            ),
            Syscall::Chdir => (None, vec![arg("path", ArgValue::Str(s1.to_owned()))]),
            Syscall::Fchdir => (
                known_fd(a[0]),
                vec![arg("fd", ArgValue::Int(i64::from(a[0] as i32)))],
            ),
            Syscall::Link => (
                None,
                vec![
                    arg("oldpath", ArgValue::Str(s1.to_owned())),
                    arg("newpath", ArgValue::Str(s2.to_owned())),
                ],
            ),
            Syscall::Linkat => (
                None,
                vec![
                    arg("olddir", ArgValue::Int(i64::from(dirfd(a[0])))),
                    arg("oldpath", ArgValue::Str(s1.to_owned())),
                    arg("newdir", ArgValue::Int(i64::from(dirfd(a[2])))),
                    arg("newpath", ArgValue::Str(s2.to_owned())),
                    arg("flags", int(a[4])),
                ],
            ),
            Syscall::Symlink => (
                None,
                vec![
                    arg("target", ArgValue::Str(s1.to_owned())),
                    arg("linkpath", ArgValue::Str(s2.to_owned())),
                ],
            ),
            Syscall::Symlinkat => (
                None,
                vec![
                    arg("target", ArgValue::Str(s1.to_owned())),
                    arg("linkdirfd", ArgValue::Int(i64::from(dirfd(a[1])))),
                    arg("linkpath", ArgValue::Str(s2.to_owned())),
                ],
            ),
            Syscall::InitModule => (
                None,
                vec![
                    arg("length", int(a[1])),
                    arg("uargs", ArgValue::Str(s1.to_owned())),
                ],
            ),
            Syscall::FinitModule => (
                (!s1.is_empty()).then(|| file_fd(s1.to_owned(), i64::from(a[0] as i32))),
                vec![
                    arg("fd", ArgValue::Int(i64::from(a[0] as i32))),
                    arg("uargs", ArgValue::Str(s2.to_owned())),
                    arg("flags", int(a[2])),
                ],
            ),
            Syscall::MemfdCreate => (
                (ev.ret >= 0).then(|| ReplayFd {
                    num: Some(ev.ret),
                    fd_type: Some("memfd".into()),
                    name: Some(format!("memfd:{s1}")),
                    ino,
                    dev,
                    ..ReplayFd::default()
                }),
                vec![
                    arg("name", ArgValue::Str(s1.to_owned())),
                    arg("flags", int(a[1])),
                ],
            ),
            Syscall::Ptrace => (
                None,
                vec![
                    arg("request", ArgValue::Str(ptrace_request_text(a[0]))),
                    arg("pid", int(a[1])),
                ],
            ),
            Syscall::Setuid => (None, vec![arg("uid", int(a[0] & 0xffff_ffff))]),
            Syscall::Setgid => (None, vec![arg("gid", int(a[0] & 0xffff_ffff))]),
            Syscall::Setreuid => (
                None,
                vec![
                    arg("ruid", int(a[0] & 0xffff_ffff)),
                    arg("euid", int(a[1] & 0xffff_ffff)),
                ],
            ),
            Syscall::Setregid => (
                None,
                vec![
                    arg("rgid", int(a[0] & 0xffff_ffff)),
                    arg("egid", int(a[1] & 0xffff_ffff)),
                ],
            ),
            Syscall::Setresuid => (
                None,
                vec![
                    arg("ruid", int(a[0] & 0xffff_ffff)),
                    arg("euid", int(a[1] & 0xffff_ffff)),
                    arg("suid", int(a[2] & 0xffff_ffff)),
                ],
            ),
            Syscall::Setresgid => (
                None,
                vec![
                    arg("rgid", int(a[0] & 0xffff_ffff)),
                    arg("egid", int(a[1] & 0xffff_ffff)),
                    arg("sgid", int(a[2] & 0xffff_ffff)),
                ],
            ),
        };
        (name, fd, args)
    }
}

fn connect_parts(ev: &KernelEvent) -> (Option<ReplayFd>, Vec<(String, ArgValue)>) {
    let fdn = ev.args[0] as i32;
    let mut args = vec![("fd".to_owned(), ArgValue::Int(i64::from(fdn)))];
    let fd = match &ev.dest {
        Some(SockAddr::Inet(ip, port)) => {
            let (cip, cport) = match ev.local {
                Some((lip, lport)) => (Some(lip), Some(u64::from(lport))),
                None => (None, None),
            };
            let addr = match ip {
                IpAddr::V4(_) => format!("{}:{port}", fmt_ip(*ip)),
                IpAddr::V6(_) => format!("[{}]:{port}", fmt_ip(*ip)),
            };
            args.push(("addr".into(), ArgValue::Str(addr)));
            Some(ReplayFd {
                num: Some(i64::from(fdn)),
                fd_type: Some(if ip.is_ipv4() { "ipv4" } else { "ipv6" }.into()),
                sip: Some(*ip),
                sport: Some(u64::from(*port)),
                cip,
                cport,
                l4proto: l4_name(ev.l4proto),
                is_server: Some(false),
                connected: Some(ev.ret == 0),
                ..ReplayFd::default()
            })
        }
        Some(SockAddr::Unix(path)) => {
            args.push(("addr".into(), ArgValue::Str(path.clone())));
            Some(ReplayFd {
                num: Some(i64::from(fdn)),
                fd_type: Some("unix".into()),
                name: Some(path.clone()),
                ..ReplayFd::default()
            })
        }
        Some(SockAddr::Other(_)) | None => None,
    };
    (fd, args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn converted(ev: &KernelEvent, fds: &FdTable) -> ReplayEvent {
        let t = tempfile::tempdir().unwrap();
        let table = ProcessTable::with_proc_root(t.path());
        Converter::with_users(Users::default()).convert_with_fds(ev, &table, fds, 1)
    }

    #[test]
    fn converts_first_bytes_of_a_write_and_falls_back_to_the_fd_table() {
        let mut ev = KernelEvent {
            pid: 7,
            ret: 5,
            args: [4, 0, 5, 0, 0, 0],
            ino: 99,
            dev: 0x801,
            file_ok: true,
            data: Some(b"\x7fELF\x00".to_vec()),
            str1: Some("/tmp/x".into()),
            ..KernelEvent::blank(Kind::Syscall(Syscall::Pwrite64))
        };
        let e = converted(&ev, &FdTable::new());
        assert_eq!(e.event_type, "pwrite");
        let fd = e.fd.as_ref().unwrap();
        assert_eq!(fd.name.as_deref(), Some("/tmp/x"));
        assert_eq!((fd.num, fd.ino, fd.dev), (Some(4), Some(99), Some(0x801)));
        assert_eq!(e.buffer_hex.as_deref(), Some("7f454c4600"));
        assert_eq!(
            e.args,
            vec![
                ("fd".to_owned(), ArgValue::Int(4)),
                ("size".to_owned(), ArgValue::Int(5)),
                ("data".to_owned(), ArgValue::Str("7f454c4600".into())),
            ]
        );
        // Without a kernel path, the fd table names it if the inode matches.
        ev.str1 = None;
        let mut fds = FdTable::new();
        let open = KernelEvent {
            pid: 7,
            ret: 4,
            ..KernelEvent::blank(Kind::Syscall(Syscall::Openat))
        };
        let known = ReplayFd {
            fd_type: Some("file".into()),
            name: Some("/from/table".into()),
            ino: Some(99),
            dev: Some(0x801),
            ..ReplayFd::default()
        };
        fds.apply(&open, Some(&known));
        assert_eq!(
            converted(&ev, &fds).fd.unwrap().name.as_deref(),
            Some("/from/table")
        );
        ev.ino = 100; // another file behind the same number: not named
        assert_eq!(converted(&ev, &fds).fd.unwrap().name, None);
    }

    #[test]
    fn converts_sendto_like_connect() {
        let ev = KernelEvent {
            pid: 7,
            ret: 3,
            args: [5, 0, 3, 0, 0, 0],
            dest: Some(SockAddr::Inet("192.0.2.7".parse().unwrap(), 53)),
            local: Some(("10.0.0.2".parse().unwrap(), 40000)),
            l4proto: Some(17),
            ..KernelEvent::blank(Kind::Syscall(Syscall::Sendto))
        };
        let e = converted(&ev, &FdTable::new());
        assert_eq!(e.event_type, "sendto");
        let fd = e.fd.as_ref().unwrap();
        assert_eq!(fd.name.as_deref(), Some("10.0.0.2:40000->192.0.2.7:53"));
        assert_eq!(fd.l4proto.as_deref(), Some("udp"));
        assert!(e.args.contains(&("size".to_owned(), ArgValue::Int(3))));
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
    }

    #[test]
    fn cached_process_records_follow_exec_and_fork() {
        let t = tempfile::tempdir().unwrap();
        let mut pt = ProcessTable::with_proc_root(t.path());
        let conv = Converter::with_users(Users::default());
        let mk = |kind: Kind, pid: u32, ppid: u32, comm: &str| KernelEvent {
            pid,
            tid: pid,
            ppid,
            comm: comm.into(),
            ..KernelEvent::blank(kind)
        };
        let exec = |pid: u32, ppid: u32, comm: &str, exe: &str, argv: &str| KernelEvent {
            str1: Some(exe.into()),
            str2: Some(argv.into()),
            ..mk(Kind::Exec, pid, ppid, comm)
        };
        let open = mk(Kind::Syscall(Syscall::Openat), 101, 100, "sh");
        pt.apply(&mk(Kind::Fork, 100, 1, "bash"), 1);
        pt.apply(&exec(100, 1, "bash", "/bin/bash", "bash\0-c\0x\0"), 2);
        pt.apply(&mk(Kind::Fork, 101, 100, "bash"), 3);
        pt.apply(&exec(101, 100, "sh", "/bin/sh", "sh\0a b\0"), 4);
        let e = conv.convert(&open, &pt, 5);
        assert_eq!(e.proc.cmdline.as_deref(), Some("sh a b"));
        assert_eq!(e.ancestors[0].cmdline.as_deref(), Some("bash -c x"));
        // The same record again (now from the cache), then after the parent execs.
        assert_eq!(conv.convert(&open, &pt, 5), e);
        pt.apply(
            &exec(100, 1, "python3", "/usr/bin/python3", "python3\0-m\0pip\0"),
            7,
        );
        let e2 = conv.convert(&open, &pt, 8);
        assert_eq!(e2.ancestors[0].cmdline.as_deref(), Some("python3 -m pip"));
        assert_eq!(e2.ancestors[0].exepath.as_deref(), Some("/usr/bin/python3"));
        assert_eq!(e2.proc.cmdline.as_deref(), Some("sh a b"));
        // A thread with its own comm: proc.name and proc.cmdline from that comm.
        let thread = mk(Kind::Syscall(Syscall::Openat), 101, 100, "worker");
        let e3 = conv.convert(&thread, &pt, 9);
        assert_eq!(e3.proc.cmdline.as_deref(), Some("worker a b"));
        // A forked child does not inherit its parent's cached record.
        pt.apply(&mk(Kind::Fork, 102, 101, "sh"), 10);
        let child = mk(Kind::Syscall(Syscall::Openat), 102, 101, "sh");
        let e4 = conv.convert(&child, &pt, 11);
        assert_eq!(e4.proc.pid, Some(102));
        assert_eq!(e4.ancestors[0].pid, Some(101));
    }

    #[test]
    fn renders_open_flags_like_falco() {
        assert_eq!(open_flags_text(0), "O_RDONLY");
        assert_eq!(open_flags_text(0o2000000), "O_RDONLY|O_CLOEXEC");
        assert_eq!(open_flags_text(0o1101), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(open_flags_text(2), "O_RDWR");
    }

    #[test]
    fn resolves_relative_paths() {
        let fds = FdTable::default();
        assert_eq!(
            resolve("a/../b", AT_FDCWD, 1, Some("/home/x"), &fds),
            "/home/x/b"
        );
        assert_eq!(
            resolve("/etc//./shadow", AT_FDCWD, 1, None, &fds),
            "/etc/shadow"
        );
        assert_eq!(resolve("rel", AT_FDCWD, 1, None, &fds), "rel");
        assert_eq!(normalize("/../.."), "/");
        assert_eq!(normalize("/a/b/../../c/./d/"), "/c/d");
        assert_eq!(normalize("/a//b/.."), "/a");
        assert_eq!(normalize("/"), "/");
        assert_eq!(ptrace_request_text(16), "PTRACE_ATTACH");
        assert_eq!(ptrace_request_text(99), "99");
    }
}
