//! The fd table: what each open file descriptor of each process is (path or socket), kept
//! from the open/creat/memfd_create/socket/connect/dup/close events that are enabled, so that
//! events carrying only an fd (writes, reads, close, dup) get `fd.name` and friends.
//!
//! It is only as complete as the events enabled: without `close`, an fd number reused for
//! another file would keep its old name. Entries that carry an inode are therefore checked
//! against the inode the kernel reports with the event (writes and reads carry one), and a
//! mismatch is not used. Bounded: at most [`MAX_FDS_PER_PROC`] per process and [`MAX_FDS`]
//! in all; beyond that new entries are not recorded.

// Keys are kernel-assigned pids (and fd numbers): a fast non-keyed hash is enough here.
use rustc_hash::FxHashMap as HashMap;

use pyward_rules::event::replay::ReplayFd;

use crate::raw::{KernelEvent, Kind, Syscall};

/// Most fds remembered per process.
pub const MAX_FDS_PER_PROC: usize = 4096;
/// Most fds remembered in all.
pub const MAX_FDS: usize = 1 << 17;

const O_CLOEXEC: u64 = 0o2000000;
const MFD_CLOEXEC: u64 = 1;

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    fd: ReplayFd,
    cloexec: bool,
}

/// (tgid, fd) → what the fd is.
#[derive(Debug, Default)]
pub struct FdTable {
    procs: HashMap<u32, HashMap<i32, Entry>>,
    total: usize,
}

impl FdTable {
    /// An empty table.
    pub fn new() -> FdTable {
        FdTable::default()
    }

    /// Number of fds known, over all processes.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether no fd is known.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// What fd `fd` of process `pid` is, if known (with `num` set).
    pub fn get(&self, pid: u32, fd: i32) -> Option<ReplayFd> {
        let e = self.procs.get(&pid)?.get(&fd)?;
        Some(ReplayFd {
            num: Some(i64::from(fd)),
            ..e.fd.clone()
        })
    }

    /// What fd `fd` of `pid` is, only if it is the file with this inode and device (when the
    /// entry records them): a stale entry for a reused fd number is not returned.
    pub fn get_checked(&self, pid: u32, fd: i32, ino: u64, dev: u64) -> Option<ReplayFd> {
        let f = self.get(pid, fd)?;
        match (f.ino, f.dev) {
            (Some(i), Some(d)) if i != ino || d != dev => None,
            _ => Some(f),
        }
    }

    fn insert(&mut self, pid: u32, fd: i32, entry: Entry) {
        let total = self.total;
        let p = self.procs.entry(pid).or_default();
        if !p.contains_key(&fd) && (p.len() >= MAX_FDS_PER_PROC || total >= MAX_FDS) {
            return;
        }
        if p.insert(fd, entry).is_none() {
            self.total += 1;
        }
    }

    fn remove(&mut self, pid: u32, fd: i32) {
        if let Some(p) = self.procs.get_mut(&pid) {
            if p.remove(&fd).is_some() {
                self.total -= 1;
            }
        }
    }

    fn remove_proc(&mut self, pid: u32) {
        if let Some(p) = self.procs.remove(&pid) {
            self.total -= p.len();
        }
    }

    /// Keep the table in step with an event; `fd` is the event's converted fd (the new fd of
    /// an open/socket, the socket of a connect).
    pub fn apply(&mut self, ev: &KernelEvent, fd: Option<&ReplayFd>) {
        let pid = ev.pid;
        let ok = ev.ret >= 0;
        let new_fd = i32::try_from(ev.ret).ok();
        let arg_fd = |i: usize| ev.args.get(i).map(|&a| a as i32);
        match ev.kind {
            Kind::Fork => {
                // The child starts with a copy of its parent's table.
                if let Some(parent) = self.procs.get(&ev.ppid).cloned() {
                    self.remove_proc(pid);
                    for (n, e) in parent {
                        self.insert(pid, n, e);
                    }
                }
            }
            Kind::Exec => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    let before = p.len();
                    p.retain(|_, e| !e.cloexec);
                    self.total -= before - p.len();
                }
            }
            Kind::Exit => self.remove_proc(pid),
            Kind::Syscall(sys) => match sys {
                Syscall::Open
                | Syscall::Openat
                | Syscall::Openat2
                | Syscall::Creat
                | Syscall::MemfdCreate
                | Syscall::Socket => {
                    let (Some(n), Some(f), true) = (new_fd, fd, ok) else {
                        return;
                    };
                    let flags = match sys {
                        Syscall::Open => ev.args[1],
                        Syscall::Openat | Syscall::Openat2 => ev.args[2],
                        Syscall::Socket => ev.args[1],
                        Syscall::MemfdCreate if ev.args[1] & MFD_CLOEXEC != 0 => O_CLOEXEC,
                        _ => 0,
                    };
                    let entry = Entry {
                        fd: ReplayFd {
                            num: None,
                            ..f.clone()
                        },
                        cloexec: flags & O_CLOEXEC != 0,
                    };
                    self.insert(pid, n, entry);
                }
                Syscall::Connect => {
                    let (Some(n), Some(f)) = (arg_fd(0), fd) else {
                        return;
                    };
                    let cloexec = self
                        .procs
                        .get(&pid)
                        .and_then(|p| p.get(&n))
                        .is_some_and(|e| e.cloexec);
                    let entry = Entry {
                        fd: ReplayFd {
                            num: None,
                            ..f.clone()
                        },
                        cloexec,
                    };
                    self.insert(pid, n, entry);
                }
                Syscall::Dup | Syscall::Dup2 | Syscall::Dup3 => {
                    let (Some(old), Some(n), true) = (arg_fd(0), new_fd, ok) else {
                        return;
                    };
                    // Unknown old fd (its open was folded in the kernel): the event's own
                    // fd, which then names the file.
                    let src = self
                        .procs
                        .get(&pid)
                        .and_then(|p| p.get(&old))
                        .cloned()
                        .or_else(|| {
                            fd.filter(|f| f.name.is_some()).map(|f| Entry {
                                fd: ReplayFd {
                                    num: None,
                                    ..f.clone()
                                },
                                cloexec: false,
                            })
                        });
                    match src {
                        Some(mut e) => {
                            e.cloexec = sys == Syscall::Dup3 && ev.args[2] & O_CLOEXEC != 0;
                            self.insert(pid, n, e);
                        }
                        // dup2 onto an fd we knew drops what it was.
                        None => self.remove(pid, n),
                    }
                }
                Syscall::Close => {
                    if let (Some(n), true) = (arg_fd(0), ok) {
                        self.remove(pid, n);
                    }
                }
                _ => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys(s: Syscall, pid: u32, ret: i64, args: [u64; 6]) -> KernelEvent {
        KernelEvent {
            pid,
            ret,
            args,
            ..KernelEvent::blank(Kind::Syscall(s))
        }
    }

    fn file(name: &str, ino: u64) -> ReplayFd {
        ReplayFd {
            fd_type: Some("file".into()),
            name: Some(name.into()),
            ino: Some(ino),
            dev: Some(7),
            ..ReplayFd::default()
        }
    }

    #[test]
    fn follows_open_dup_close_fork_exec_exit() {
        let mut t = FdTable::new();
        let open = sys(Syscall::Openat, 10, 3, [0, 0, O_CLOEXEC, 0, 0, 0]);
        t.apply(&open, Some(&file("/etc/passwd", 5)));
        let open2 = sys(Syscall::Openat, 10, 4, [0; 6]);
        t.apply(&open2, Some(&file("/tmp/keep", 6)));
        assert_eq!(t.get(10, 3).unwrap().name.as_deref(), Some("/etc/passwd"));
        assert_eq!(t.get(10, 3).unwrap().num, Some(3));
        // A failed open records nothing.
        t.apply(
            &sys(Syscall::Openat, 10, -2, [0; 6]),
            Some(&file("/nope", 1)),
        );
        assert_eq!(t.len(), 2);
        // dup2(3, 9) copies, without CLOEXEC.
        t.apply(&sys(Syscall::Dup2, 10, 9, [3, 9, 0, 0, 0, 0]), None);
        assert_eq!(t.get(10, 9).unwrap().name.as_deref(), Some("/etc/passwd"));
        // The inode check refuses a stale entry.
        assert!(t.get_checked(10, 9, 5, 7).is_some());
        assert!(t.get_checked(10, 9, 99, 7).is_none());
        // fork copies, exec drops the CLOEXEC fd 3 but keeps 4 and 9.
        t.apply(
            &KernelEvent {
                pid: 11,
                ppid: 10,
                ..KernelEvent::blank(Kind::Fork)
            },
            None,
        );
        assert_eq!(t.len(), 6);
        t.apply(
            &KernelEvent {
                pid: 11,
                ..KernelEvent::blank(Kind::Exec)
            },
            None,
        );
        assert!(t.get(11, 3).is_none());
        assert!(t.get(11, 4).is_some() && t.get(11, 9).is_some());
        assert!(t.get(10, 3).is_some());
        // close removes; exit forgets the process.
        t.apply(&sys(Syscall::Close, 10, 0, [3, 0, 0, 0, 0, 0]), None);
        assert!(t.get(10, 3).is_none());
        t.apply(
            &KernelEvent {
                pid: 10,
                ..KernelEvent::blank(Kind::Exit)
            },
            None,
        );
        assert!(t.get(10, 4).is_none());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn stays_bounded() {
        let mut t = FdTable::new();
        for n in 0..(MAX_FDS_PER_PROC as i64 + 100) {
            t.apply(
                &sys(Syscall::Openat, 1, n, [0; 6]),
                Some(&file("/x", n as u64)),
            );
        }
        assert_eq!(t.len(), MAX_FDS_PER_PROC);
    }
}
