//! The process table: who every pid is, seeded from /proc at start and kept by the
//! fork/exec/exit events, so that each event can carry its process, its ancestors
//! (`proc.pname`, `proc.aname[N]`) and its container.
//!
//! /proc is read with bounded sizes (command lines are cut at [`MAX_CMDLINE`]), entries
//! that vanish or do not parse are skipped, and the table is bounded by [`MAX_PROCS`]:
//! exited processes are kept (their children still name them as ancestors) until room
//! is needed.

// Keys are kernel-assigned pids (and fd numbers): a fast non-keyed hash is enough here.
use rustc_hash::FxHashMap as HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::container::{self, ContainerRef};
use crate::raw::{KernelEvent, Kind, Syscall};

/// Most processes kept.
pub const MAX_PROCS: usize = 1 << 16;
/// Longest command line or /proc file read.
pub const MAX_CMDLINE: u64 = 64 * 1024;
/// Deepest ancestry walked.
pub const MAX_ANCESTORS: usize = 32;

/// One process as the table knows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// comm (at most 15 bytes, as the kernel keeps it).
    pub comm: String,
    /// Full executable path.
    pub exepath: Option<String>,
    /// argv (argv\[0\] first).
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Process start in ns since the epoch.
    pub start_ts: Option<u64>,
    pub container: Option<ContainerRef>,
    /// The executable's identity and flags, from the exec event (or /proc at seeding).
    pub exe: Option<ExeInfo>,
    /// Exited (kept as an ancestor name until room is needed).
    pub exited: bool,
    /// This process converted for the rules engine, built on first use (see
    /// `Converter`): every event of the process and of its descendants carries it, so it
    /// is built once, not per event. Emptied whenever the fields above change.
    pub(crate) replay: ReplayCache,
}

/// A lazily built value that does not take part in comparisons and is not copied by
/// `clone` (a forked child starts with its own, empty cache).
#[derive(Default)]
pub(crate) struct ReplayCache(
    std::cell::OnceCell<std::sync::Arc<pyward_rules::event::replay::ReplayProcess>>,
);

impl ReplayCache {
    /// The cached value, built by `f` the first time.
    pub(crate) fn get_or_init(
        &self,
        f: impl FnOnce() -> std::sync::Arc<pyward_rules::event::replay::ReplayProcess>,
    ) -> &std::sync::Arc<pyward_rules::event::replay::ReplayProcess> {
        self.0.get_or_init(f)
    }
}

impl Clone for ReplayCache {
    fn clone(&self) -> Self {
        ReplayCache::default()
    }
}

impl PartialEq for ReplayCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for ReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplayCache")
    }
}

/// What is known of a process's executable file (Falco's `proc.exe_ino*`, `proc.is_exe_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExeInfo {
    pub ino: u64,
    /// `st_dev` encoding.
    pub dev: u64,
    /// ns since the epoch.
    pub ctime_ns: Option<u64>,
    pub mtime_ns: Option<u64>,
    /// `None` when not known (processes seeded from /proc).
    pub writable: Option<bool>,
    pub upper_layer: Option<bool>,
    pub memfd: bool,
    /// No links left when executed (or, at seeding, when /proc was read).
    pub deleted: bool,
}

impl ExeInfo {
    /// From an exec event, when the kernel could read the file.
    pub fn from_exec(ev: &KernelEvent) -> Option<ExeInfo> {
        ev.file_ok.then_some(ExeInfo {
            ino: ev.ino,
            dev: ev.dev,
            ctime_ns: ev.ctime_ns,
            mtime_ns: ev.mtime_ns,
            writable: Some(ev.exe.writable),
            upper_layer: Some(ev.exe.upper_layer),
            memfd: ev.exe_memfd,
            deleted: ev.deleted,
        })
    }

    /// From `/proc/<pid>/exe` (stat follows the magic link even to a deleted file).
    fn from_proc(exe_link: &Path, target: Option<&str>) -> Option<ExeInfo> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(exe_link).ok()?;
        let ns = |s: i64, n: i64| {
            u64::try_from(s)
                .ok()?
                .checked_mul(1_000_000_000)?
                .checked_add(u64::try_from(n).ok()?)
        };
        let target = target.unwrap_or_default();
        Some(ExeInfo {
            ino: m.ino(),
            dev: m.dev(),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            writable: None,
            upper_layer: None,
            memfd: target.starts_with("/memfd:"),
            deleted: m.nlink() == 0,
        })
    }
}

/// pid → process.
#[derive(Debug)]
pub struct ProcessTable {
    procs: HashMap<u32, ProcInfo>,
    proc_root: PathBuf,
}

/// Read at most `MAX_CMDLINE` bytes of a /proc file.
fn read_bounded(p: &Path) -> Option<Vec<u8>> {
    let f = std::fs::File::open(p).ok()?;
    let mut buf = Vec::new();
    f.take(MAX_CMDLINE).read_to_end(&mut buf).ok()?;
    Some(buf)
}

fn link(p: &Path) -> Option<String> {
    std::fs::read_link(p)
        .ok()
        .map(|l| l.to_string_lossy().into_owned())
}

/// Boot time (ns since the epoch) and clock ticks per second, for /proc/<pid>/stat start times.
fn boot_info(proc_root: &Path) -> Option<(u64, u64)> {
    let stat = String::from_utf8_lossy(&read_bounded(&proc_root.join("stat"))?).into_owned();
    let btime: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    Some((btime.checked_mul(1_000_000_000)?, hz))
}

impl ProcessTable {
    /// An empty table reading /proc (for processes it learns about late).
    pub fn new() -> ProcessTable {
        ProcessTable::with_proc_root("/proc")
    }

    /// An empty table reading another procfs root (tests).
    pub fn with_proc_root(root: impl Into<PathBuf>) -> ProcessTable {
        ProcessTable {
            procs: HashMap::default(),
            proc_root: root.into(),
        }
    }

    /// Number of processes known.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// The process with this pid.
    pub fn get(&self, pid: u32) -> Option<&ProcInfo> {
        self.procs.get(&pid)
    }

    /// Read every process of the procfs root; returns how many were added.
    pub fn seed(&mut self) -> usize {
        let boot = boot_info(&self.proc_root);
        let Ok(dir) = std::fs::read_dir(&self.proc_root) else {
            return 0;
        };
        let mut n = 0;
        for ent in dir.flatten() {
            if self.procs.len() >= MAX_PROCS {
                break;
            }
            let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(p) = self.read_proc(pid, boot) {
                self.procs.insert(pid, p);
                n += 1;
            }
        }
        n
    }

    /// Read one process from procfs (None if it is gone or unreadable).
    fn read_proc(&self, pid: u32, boot: Option<(u64, u64)>) -> Option<ProcInfo> {
        let dir = self.proc_root.join(pid.to_string());
        let stat = String::from_utf8_lossy(&read_bounded(&dir.join("stat"))?).into_owned();
        // "pid (comm) state ppid ... starttime(22nd)": comm may hold spaces and ')'.
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_owned();
        let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
        let ppid = rest.get(1)?.parse().ok()?;
        let start_ts = match (boot, rest.get(19).and_then(|s| s.parse::<u64>().ok())) {
            (Some((bt, hz)), Some(ticks)) => ticks
                .checked_mul(1_000_000_000)
                .map(|t| bt.saturating_add(t / hz)),
            _ => None,
        };
        let argv = read_bounded(&dir.join("cmdline"))
            .map(|b| {
                b.split(|&c| c == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let container = read_bounded(&dir.join("cgroup"))
            .and_then(|b| container::from_proc_cgroup(&String::from_utf8_lossy(&b)));
        let exepath = link(&dir.join("exe"));
        let exe = ExeInfo::from_proc(&dir.join("exe"), exepath.as_deref());
        Some(ProcInfo {
            pid,
            ppid,
            comm,
            exe,
            exepath,
            argv,
            cwd: link(&dir.join("cwd")),
            start_ts,
            container,
            exited: false,
            replay: ReplayCache::default(),
        })
    }

    /// The working directory of a live process, from procfs.
    fn read_cwd(&self, pid: u32) -> Option<String> {
        link(&self.proc_root.join(pid.to_string()).join("cwd"))
    }

    /// Keep the table in step with a kernel event (fork, exec, exit; others teach the
    /// pid's existence when it was unknown). `wall_ns` is the event's wall time.
    pub fn apply(&mut self, ev: &KernelEvent, wall_ns: u64) {
        match ev.kind {
            Kind::Fork => {
                let parent = self.procs.get(&ev.ppid).cloned();
                let mut child = parent.unwrap_or_default();
                child.pid = ev.pid;
                child.ppid = ev.ppid;
                child.comm = ev.comm.clone();
                child.start_ts = Some(wall_ns);
                child.exited = false;
                self.insert(child);
            }
            Kind::Exec => {
                // exec keeps the working directory: the one known from fork and chdir events
                // stands; /proc only for a process first seen here (it may be gone by now:
                // then the parent's).
                let known_cwd = self.procs.get(&ev.pid).is_some_and(|p| p.cwd.is_some());
                let cwd = if known_cwd {
                    None
                } else {
                    self.read_cwd(ev.pid)
                        .or_else(|| self.procs.get(&ev.ppid).and_then(|p| p.cwd.clone()))
                };
                let container =
                    read_bounded(&self.proc_root.join(ev.pid.to_string()).join("cgroup"))
                        .and_then(|b| container::from_proc_cgroup(&String::from_utf8_lossy(&b)));
                let entry = self.procs.entry(ev.pid).or_insert_with(|| ProcInfo {
                    pid: ev.pid,
                    start_ts: Some(wall_ns),
                    ..ProcInfo::default()
                });
                entry.ppid = ev.ppid;
                entry.comm = ev.comm.clone();
                entry.exepath = ev.str1.clone();
                entry.exe = ExeInfo::from_exec(ev);
                entry.argv = ev.argv();
                if cwd.is_some() {
                    entry.cwd = cwd;
                }
                if container.is_some() {
                    entry.container = container;
                }
                entry.exited = false;
                entry.replay = ReplayCache::default();
                self.prune();
            }
            Kind::Exit => {
                if let Some(p) = self.procs.get_mut(&ev.pid) {
                    p.exited = true;
                }
            }
            Kind::Syscall(sys) => {
                if matches!(sys, Syscall::Chdir | Syscall::Fchdir) && ev.ret == 0 {
                    // The kernel built the new working directory (absolute) into str2.
                    if let Some(dir) = ev.str2.as_deref().filter(|d| d.starts_with('/')) {
                        if let Some(p) = self.procs.get_mut(&ev.pid) {
                            p.cwd = Some(dir.to_owned());
                            p.replay = ReplayCache::default();
                            return;
                        }
                    }
                }
                if !self.procs.contains_key(&ev.pid) {
                    let boot = boot_info(&self.proc_root);
                    let p = self.read_proc(ev.pid, boot).unwrap_or_else(|| ProcInfo {
                        pid: ev.pid,
                        ppid: ev.ppid,
                        comm: ev.comm.clone(),
                        ..ProcInfo::default()
                    });
                    self.insert(p);
                }
            }
        }
    }

    fn insert(&mut self, p: ProcInfo) {
        self.procs.insert(p.pid, p);
        self.prune();
    }

    /// Drop exited processes (then arbitrary ones) beyond [`MAX_PROCS`].
    fn prune(&mut self) {
        if self.procs.len() <= MAX_PROCS {
            return;
        }
        let excess = self.procs.len() - MAX_PROCS;
        let mut victims: Vec<u32> = self
            .procs
            .values()
            .filter(|p| p.exited)
            .map(|p| p.pid)
            .take(excess)
            .collect();
        if victims.len() < excess {
            victims.extend(self.procs.keys().copied().take(excess - victims.len()));
        }
        for v in victims {
            self.procs.remove(&v);
        }
    }

    /// Ancestors of `pid`, parent first, at most [`MAX_ANCESTORS`], stopping at unknown
    /// pids and at cycles.
    pub fn ancestors(&self, pid: u32) -> Vec<&ProcInfo> {
        let mut out: Vec<&ProcInfo> = Vec::new();
        let mut cur = self.procs.get(&pid).map(|p| p.ppid);
        while let Some(pp) = cur {
            if pp == 0 || out.len() >= MAX_ANCESTORS || pp == pid || out.iter().any(|a| a.pid == pp)
            {
                break;
            }
            let Some(p) = self.procs.get(&pp) else { break };
            out.push(p);
            cur = Some(p.ppid);
        }
        out
    }

    /// Whether `pid` is `root` or one of its descendants.
    pub fn in_tree(&self, pid: u32, root: u32) -> bool {
        pid == root || self.ancestors(pid).iter().any(|a| a.pid == root)
    }
}

impl Default for ProcessTable {
    fn default() -> Self {
        ProcessTable::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::Syscall;

    fn ev(kind: Kind, pid: u32, ppid: u32, comm: &str) -> KernelEvent {
        KernelEvent {
            pid,
            tid: pid,
            ppid,
            comm: comm.into(),
            ..KernelEvent::blank(kind)
        }
    }

    fn fake_proc(root: &Path, pid: u32, stat: &str, cmdline: &[u8], cgroup: &str) {
        let d = root.join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("stat"), stat).unwrap();
        std::fs::write(d.join("cmdline"), cmdline).unwrap();
        std::fs::write(d.join("cgroup"), cgroup).unwrap();
    }

    #[test]
    fn seeds_from_a_procfs_tree_and_survives_garbage() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("stat"), "cpu 1 2 3\nbtime 1700000000\n").unwrap();
        let id = "a".repeat(64);
        fake_proc(
            t.path(),
            10,
            "10 (my (odd) name) S 1 10 10 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0",
            b"python3\0-c\0print(1)\0",
            &format!("0::/system.slice/docker-{id}.scope\n"),
        );
        fake_proc(t.path(), 11, "garbage without parens", b"", "");
        fake_proc(t.path(), 12, "12 (x) S", b"\xff\xfe\0", "");
        std::fs::create_dir_all(t.path().join("notapid")).unwrap();
        let mut pt = ProcessTable::with_proc_root(t.path());
        assert_eq!(pt.seed(), 1);
        let p = pt.get(10).unwrap();
        assert_eq!(p.comm, "my (odd) name");
        assert_eq!(p.ppid, 1);
        assert_eq!(p.argv, vec!["python3", "-c", "print(1)"]);
        assert_eq!(p.container.as_ref().map(|c| c.runtime), Some("docker"));
        assert!(p.start_ts.unwrap() > 1_700_000_000_000_000_000);
    }

    #[test]
    fn follows_fork_exec_exit_and_ancestors() {
        let t = tempfile::tempdir().unwrap();
        let mut pt = ProcessTable::with_proc_root(t.path());
        pt.apply(&ev(Kind::Syscall(Syscall::Openat), 100, 1, "bash"), 1);
        pt.apply(&ev(Kind::Fork, 101, 100, "bash"), 2);
        let mut exec = ev(Kind::Exec, 101, 100, "pip");
        exec.str1 = Some("/usr/bin/pip".into());
        exec.str2 = Some("pip\0install\0jeilyfish\0".into());
        pt.apply(&exec, 3);
        pt.apply(&ev(Kind::Fork, 102, 101, "pip"), 4);
        let a: Vec<u32> = pt.ancestors(102).iter().map(|p| p.pid).collect();
        assert_eq!(a, vec![101, 100]);
        assert_eq!(
            pt.get(101).unwrap().argv,
            vec!["pip", "install", "jeilyfish"]
        );
        assert_eq!(
            pt.get(102).unwrap().exepath.as_deref(),
            Some("/usr/bin/pip")
        );
        assert!(pt.in_tree(102, 100));
        assert!(!pt.in_tree(100, 102));
        pt.apply(&ev(Kind::Exit, 101, 100, "pip"), 5);
        // Exited parents still name the ancestry.
        assert_eq!(pt.ancestors(102).len(), 2);
    }

    #[test]
    fn ancestor_cycles_terminate() {
        let t = tempfile::tempdir().unwrap();
        let mut pt = ProcessTable::with_proc_root(t.path());
        pt.apply(&ev(Kind::Fork, 5, 6, "a"), 0);
        pt.apply(&ev(Kind::Fork, 6, 5, "b"), 0);
        assert_eq!(pt.ancestors(5).len(), 1);
    }
}
