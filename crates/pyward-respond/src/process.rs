//! Killing a process or a process tree, safely.
//!
//! A tree is killed in two phases so that it cannot escape by forking while it is walked:
//! every member is first stopped (SIGSTOP, top down, re-walking `/proc` until no new child
//! appears), then killed with SIGKILL leaves first. Signals go through pidfds opened while
//! the process was verified to be the one walked (same parent, same start time), so a pid
//! recycled in between is never signalled. pid 1, kernel threads, pyward itself and its
//! ancestors (killing them would kill pyward) are refused.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Most processes one kill_tree will handle (bounds memory and time on a fork bomb).
pub const MAX_TREE: usize = 65_536;
/// Most walk rounds looking for children forked while the tree was being stopped.
const MAX_ROUNDS: usize = 32;

/// Why a kill was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// The target must never be killed (pid 0/1, kernel thread, pyward or its ancestors).
    #[error("refusing to kill pid {pid}: {reason}")]
    Refused {
        /// Target pid.
        pid: u32,
        /// Why.
        reason: String,
    },
    /// The process no longer exists.
    #[error("pid {0} does not exist (already exited)")]
    Gone(u32),
    /// The OS refused.
    #[error("cannot signal pid {pid}: {source}")]
    Io {
        /// Target pid.
        pid: u32,
        /// The OS error.
        source: io::Error,
    },
}

/// What a kill did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KillReport {
    /// The pid asked for.
    pub root: u32,
    /// pids sent SIGKILL, leaves first.
    pub killed: Vec<u32>,
    /// Of those, the ones seen exited within the wait.
    pub confirmed_dead: Vec<u32>,
    /// `true` if the tree was larger than [`MAX_TREE`] (the rest was not touched).
    pub truncated: bool,
}

/// `(ppid, starttime)` of a pid from `/proc/PID/stat`; `None` if it is gone or unreadable.
pub fn stat_of(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    ProcStat::parse(&text)
}

/// The fields of `/proc/PID/stat` pyward needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// Process state letter (`R`, `S`, `T` stopped, `Z` zombie...).
    pub state: char,
    /// Parent pid.
    pub ppid: u32,
    /// Kernel flags (PF_KTHREAD = 0x00200000).
    pub flags: u64,
    /// Start time in clock ticks since boot (with the pid, identifies a process).
    pub starttime: u64,
}

impl ProcStat {
    /// Parse a `/proc/PID/stat` line (the command name may contain spaces and parentheses:
    /// fields are counted after the last `)`).
    pub fn parse(text: &str) -> Option<ProcStat> {
        let rest = &text[text.rfind(')')? + 1..];
        let mut it = rest.split_ascii_whitespace();
        let state = it.next()?.chars().next()?;
        let ppid = it.next()?.parse().ok()?;
        // fields 5..=8 (pgrp session tty_nr tpgid), then flags (9)
        let mut it = it.skip(4);
        let flags = it.next()?.parse().ok()?;
        // fields 10..=21, then starttime (22)
        let starttime = it.nth(12)?.parse().ok()?;
        Some(ProcStat {
            state,
            ppid,
            flags,
            starttime,
        })
    }

    /// A kernel thread.
    pub fn is_kthread(&self) -> bool {
        self.flags & 0x0020_0000 != 0
    }
}

/// pyward's own pid and every ancestor of it up to pid 1.
pub fn self_and_ancestors() -> HashSet<u32> {
    let mut set = HashSet::new();
    let mut pid = std::process::id();
    while pid > 1 && set.insert(pid) && set.len() < 4096 {
        match stat_of(pid) {
            Some(s) => pid = s.ppid,
            None => break,
        }
    }
    set.insert(1);
    set
}

/// Refuse targets whose death would take the system or pyward down.
pub fn check_target(pid: u32) -> Result<ProcStat, KillError> {
    let refuse = |reason: &str| KillError::Refused {
        pid,
        reason: reason.into(),
    };
    if pid <= 1 {
        return Err(refuse("pid 0 and 1 (init) are never killed"));
    }
    if pid == std::process::id() {
        return Err(refuse("it is pyward itself"));
    }
    let st = stat_of(pid).ok_or(KillError::Gone(pid))?;
    if st.is_kthread() || pid == 2 || st.ppid == 2 {
        return Err(refuse("it is a kernel thread"));
    }
    if self_and_ancestors().contains(&pid) {
        return Err(refuse(
            "it is an ancestor of pyward (killing it would kill pyward); run pyward outside the tree it guards",
        ));
    }
    Ok(st)
}

/// A pidfd with what was verified about the process when it was opened.
struct Handle {
    pid: u32,
    fd: OwnedFd,
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: plain syscall with integer arguments; on success it returns a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pidfd_signal(fd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall; null siginfo is allowed (kernel fills it like kill()).
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Open a pidfd on `pid` and check, after opening, that it is still the process walked
/// (same start time), so the fd cannot point to a recycled pid.
fn open_verified(pid: u32, expect: &ProcStat) -> Option<Handle> {
    let fd = pidfd_open(pid).ok()?;
    let now = stat_of(pid)?;
    (now.starttime == expect.starttime).then_some(Handle { pid, fd })
}

/// Every process's parent, from one walk of `/proc`.
fn process_table() -> BTreeMap<u32, ProcStat> {
    let mut t = BTreeMap::new();
    let Ok(rd) = fs::read_dir("/proc") else {
        return t;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(st) = stat_of(pid) {
            t.insert(pid, st);
        }
    }
    t
}

/// Descendants of `root` (not including it), parents before children.
pub fn descendants(root: u32) -> Vec<u32> {
    let table = process_table();
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (pid, st) in &table {
        children.entry(st.ppid).or_default().push(*pid);
    }
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([root]);
    let mut seen = HashSet::from([root]);
    while let Some(p) = queue.pop_front() {
        for c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
            if seen.insert(*c) && out.len() < MAX_TREE {
                out.push(*c);
                queue.push_back(*c);
            }
        }
    }
    out
}

/// SIGKILL one process (verified through a pidfd) and wait up to `wait` for it to exit.
pub fn kill_process(pid: u32, wait: Duration) -> Result<KillReport, KillError> {
    let st = check_target(pid)?;
    let h = open_verified(pid, &st).ok_or(KillError::Gone(pid))?;
    pidfd_signal(&h.fd, libc::SIGKILL).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => KillError::Gone(pid),
        _ => KillError::Io { pid, source: e },
    })?;
    let confirmed = wait_exited(&[h], wait);
    Ok(KillReport {
        root: pid,
        killed: vec![pid],
        confirmed_dead: confirmed,
        truncated: false,
    })
}

/// Stop, then SIGKILL leaves first, `root` and all its descendants; wait up to `wait` for
/// them to exit. pyward itself and pid 1 are never in the set.
pub fn kill_tree(root: u32, wait: Duration) -> Result<KillReport, KillError> {
    let st = check_target(root)?;
    let protected = self_and_ancestors();
    let root_h = open_verified(root, &st).ok_or(KillError::Gone(root))?;
    // Phase 1: stop the root first so it forks no more, then its descendants, round after
    // round until a walk finds nothing new.
    pidfd_signal(&root_h.fd, libc::SIGSTOP).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => KillError::Gone(root),
        _ => KillError::Io {
            pid: root,
            source: e,
        },
    })?;
    let mut handles = vec![root_h];
    let mut members: HashSet<u32> = HashSet::from([root]);
    let mut truncated = false;
    for _ in 0..MAX_ROUNDS {
        let table = process_table();
        let mut new = 0;
        // Walk parents before children: BFS from the members we hold.
        let mut frontier: Vec<u32> = members.iter().copied().collect();
        while let Some(p) = frontier.pop() {
            for (pid, cst) in table.iter().filter(|(_, s)| s.ppid == p) {
                if members.contains(pid) || protected.contains(pid) || cst.is_kthread() {
                    continue;
                }
                if members.len() >= MAX_TREE {
                    truncated = true;
                    continue;
                }
                if let Some(h) = open_verified(*pid, cst) {
                    let _ = pidfd_signal(&h.fd, libc::SIGSTOP);
                    members.insert(*pid);
                    handles.push(h);
                    frontier.push(*pid);
                    new += 1;
                }
            }
        }
        if new == 0 {
            break;
        }
    }
    // Phase 2: SIGKILL, leaves (last found) first.
    let mut killed = Vec::with_capacity(handles.len());
    for h in handles.iter().rev() {
        if pidfd_signal(&h.fd, libc::SIGKILL).is_ok() {
            killed.push(h.pid);
        }
    }
    let confirmed = wait_exited(&handles, wait);
    Ok(KillReport {
        root,
        killed,
        confirmed_dead: confirmed,
        truncated,
    })
}

/// pids whose pidfd reports exit (readable) within `wait`.
fn wait_exited(handles: &[Handle], wait: Duration) -> Vec<u32> {
    let deadline = Instant::now() + wait;
    let mut pending: Vec<&Handle> = handles.iter().collect();
    let mut dead = Vec::new();
    loop {
        pending.retain(|h| {
            let mut p = libc::pollfd {
                fd: h.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, zero timeout.
            let r = unsafe { libc::poll(&mut p, 1, 0) };
            if r > 0 && p.revents & (libc::POLLIN | libc::POLLHUP) != 0 {
                dead.push(h.pid);
                false
            } else {
                true
            }
        });
        if pending.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    dead
}
