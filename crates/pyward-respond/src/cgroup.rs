//! cgroup v2: find the mount, a process's cgroup, create a child cgroup (for `pyward run`
//! trees), freeze / thaw / kill a cgroup and remove it.
//!
//! Freezing and `cgroup.kill` act on every process of a cgroup at once, whatever the
//! container runtime, so "stop the container" cannot be raced by a fork. The root cgroup and
//! any cgroup holding pyward itself are refused.

use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a cgroup operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup v2 hierarchy is mounted.
    #[error("no cgroup v2 (cgroup2) file system is mounted (checked /proc/self/mountinfo); mount one (e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`) to freeze or kill containers")]
    NoMount,
    /// A pid has no cgroup v2 membership line, or is gone.
    #[error("cannot find the cgroup v2 of pid {pid}: {reason}")]
    PidCgroup {
        /// Process.
        pid: u32,
        /// Why.
        reason: String,
    },
    /// The operation is refused for safety.
    #[error("refusing to {op} cgroup {path}: {reason}")]
    Refused {
        /// What was asked.
        op: &'static str,
        /// Cgroup path relative to the mount.
        path: String,
        /// Why.
        reason: String,
    },
    /// A cgroup file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// File or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A state was not reached in time.
    #[error("cgroup {path} did not reach `{state}` within {waited:?}")]
    Timeout {
        /// Cgroup path relative to the mount.
        path: String,
        /// The awaited `cgroup.events` line.
        state: &'static str,
        /// How long we waited.
        waited: Duration,
    },
}

/// The cgroup v2 hierarchy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupFs {
    mount: PathBuf,
}

/// One cgroup v2 group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    /// Path relative to the hierarchy root, starting with `/` (`/` is the root).
    rel: String,
    /// Absolute directory.
    dir: PathBuf,
}

/// Unescape mountinfo's octal escapes (`\040` for a space).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if let (b'\\', Some(d)) = (b[i], b.get(i + 1..i + 4)) {
            if d.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl CgroupFs {
    /// Find the cgroup2 mount through `/proc/self/mountinfo`.
    pub fn discover() -> Result<CgroupFs, CgroupError> {
        let text = fs::read_to_string("/proc/self/mountinfo").map_err(|e| CgroupError::Io {
            what: "cannot read",
            path: "/proc/self/mountinfo".into(),
            source: e,
        })?;
        CgroupFs::from_mountinfo(&text).ok_or(CgroupError::NoMount)
    }

    /// The first `cgroup2` mount listed in mountinfo text.
    pub fn from_mountinfo(text: &str) -> Option<CgroupFs> {
        for line in text.lines() {
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            if right.split_ascii_whitespace().next() != Some("cgroup2") {
                continue;
            }
            let mut f = left.split_ascii_whitespace();
            let (Some(_), Some(_), Some(_), Some(root), Some(mp)) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            // A bind mount of a sub-cgroup (inside a container) is not the hierarchy root.
            if root != "/" {
                continue;
            }
            return Some(CgroupFs {
                mount: PathBuf::from(unescape_mountinfo(mp)),
            });
        }
        None
    }

    /// Use a given mount point (tests, or an operator's choice).
    pub fn at(mount: &Path) -> CgroupFs {
        CgroupFs {
            mount: mount.to_path_buf(),
        }
    }

    /// The mount point.
    pub fn mount(&self) -> &Path {
        &self.mount
    }

    /// A cgroup by its path relative to the hierarchy (`/a/b`). `..` and other escapes are
    /// refused.
    pub fn group(&self, rel: &str) -> Result<Cgroup, CgroupError> {
        let mut norm = String::new();
        for c in Path::new(rel).components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => {
                    norm.push('/');
                    norm.push_str(&n.to_string_lossy());
                }
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(CgroupError::Refused {
                        op: "use",
                        path: rel.into(),
                        reason: "the path must not contain `..`".into(),
                    })
                }
            }
        }
        if norm.is_empty() {
            norm.push('/');
        }
        let dir = self.mount.join(norm.trim_start_matches('/'));
        Ok(Cgroup { rel: norm, dir })
    }

    /// The cgroup v2 of `pid`, from `/proc/PID/cgroup` (the `0::PATH` line).
    pub fn cgroup_of(&self, pid: u32) -> Result<Cgroup, CgroupError> {
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| {
            CgroupError::PidCgroup {
                pid,
                reason: format!("cannot read /proc/{pid}/cgroup ({e}); has it exited?"),
            }
        })?;
        let rel = parse_proc_cgroup(&text).ok_or_else(|| CgroupError::PidCgroup {
            pid,
            reason: "/proc/PID/cgroup has no cgroup v2 (`0::`) line".into(),
        })?;
        self.group(&rel)
    }

    /// Create `parent/name` (exclusively: an existing group is an error, so two pyward runs
    /// never share one).
    pub fn create_child(&self, parent: &Cgroup, name: &str) -> Result<Cgroup, CgroupError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(CgroupError::Refused {
                op: "create",
                path: format!("{}/{name}", parent.rel),
                reason: "a cgroup name is one path component".into(),
            });
        }
        let rel = if parent.rel == "/" {
            format!("/{name}")
        } else {
            format!("{}/{name}", parent.rel)
        };
        let g = self.group(&rel)?;
        fs::create_dir(&g.dir).map_err(|e| CgroupError::Io {
            what: "cannot create the cgroup",
            path: g.dir.clone(),
            source: e,
        })?;
        Ok(g)
    }
}

impl CgroupFs {
    /// A fresh cgroup for the tree of `pyward run`: `pyward-run-<pid>` under pyward's own
    /// cgroup. Move the command into it with [`Cgroup::procs_handle`] +
    /// [`CgroupProcs::join_self`] in `pre_exec`, pass its path to
    /// [`crate::policy::Scope::with_cgroup`], and call [`Cgroup::remove_when_empty`] at the end.
    pub fn create_run_cgroup(&self) -> Result<Cgroup, CgroupError> {
        let mine = self.cgroup_of(std::process::id())?;
        self.create_child(&mine, &format!("pyward-run-{}", std::process::id()))
    }
}

/// The cgroup v2 path of a `/proc/PID/cgroup` text (`0::/a/b`), without ` (deleted)`.
pub fn parse_proc_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim_end_matches(" (deleted)").to_owned())
}

impl Cgroup {
    /// Path relative to the hierarchy root (`/` for the root).
    pub fn path(&self) -> &str {
        &self.rel
    }

    /// Absolute directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, value: &str) -> Result<(), CgroupError> {
        let path = self.file(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| CgroupError::Io {
                what: "cannot open",
                path: path.clone(),
                source: e,
            })?;
        f.write_all(value.as_bytes()).map_err(|e| CgroupError::Io {
            what: "cannot write",
            path,
            source: e,
        })
    }

    /// Move `pid` into this cgroup.
    pub fn add_pid(&self, pid: u32) -> Result<(), CgroupError> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// Open `cgroup.procs` for [`CgroupProcs::join_self`] (call before fork).
    pub fn procs_handle(&self) -> Result<CgroupProcs, CgroupError> {
        let path = self.file("cgroup.procs");
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| CgroupError::Io {
                what: "cannot open",
                path,
                source: e,
            })?;
        Ok(CgroupProcs(f))
    }

    /// pids in this cgroup (`cgroup.procs`).
    pub fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        let path = self.file("cgroup.procs");
        let t = fs::read_to_string(&path).map_err(|e| CgroupError::Io {
            what: "cannot read",
            path,
            source: e,
        })?;
        Ok(t.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// `cgroup.events` as `(populated, frozen)`.
    pub fn events(&self) -> Result<(bool, bool), CgroupError> {
        let path = self.file("cgroup.events");
        let t = fs::read_to_string(&path).map_err(|e| CgroupError::Io {
            what: "cannot read",
            path,
            source: e,
        })?;
        let flag = |k: &str| {
            t.lines()
                .find_map(|l| l.strip_prefix(k))
                .is_some_and(|v| v.trim() == "1")
        };
        Ok((flag("populated "), flag("frozen ")))
    }

    /// `true` if `cgroup.events` says `frozen 1`.
    pub fn is_frozen(&self) -> Result<bool, CgroupError> {
        Ok(self.events()?.1)
    }

    /// `true` if any process is in this cgroup or below.
    pub fn is_populated(&self) -> Result<bool, CgroupError> {
        Ok(self.events()?.0)
    }

    /// Refuse acting on the root or on a cgroup containing pyward.
    fn guard(&self, fs_: &CgroupFs, op: &'static str) -> Result<(), CgroupError> {
        let refuse = |reason: &str| CgroupError::Refused {
            op,
            path: self.rel.clone(),
            reason: reason.into(),
        };
        if self.rel == "/" {
            return Err(refuse(
                "it is the root cgroup (the whole host); only a container's or a `pyward run` cgroup can be stopped",
            ));
        }
        if let Ok(mine) = fs_.cgroup_of(std::process::id()) {
            let m = mine.rel.as_str();
            if m == self.rel || m.starts_with(&format!("{}/", self.rel)) {
                return Err(refuse(
                    "pyward itself runs in it; run pyward outside the cgroup it guards",
                ));
            }
        }
        Ok(())
    }

    /// Freeze every process (`cgroup.freeze` = 1) and wait up to `wait` for `frozen 1`.
    pub fn freeze(&self, fs_: &CgroupFs, wait: Duration) -> Result<(), CgroupError> {
        self.guard(fs_, "freeze")?;
        self.write("cgroup.freeze", "1")?;
        self.wait_for(wait, "frozen 1", |(_, frozen)| frozen)
    }

    /// Thaw (`cgroup.freeze` = 0) and wait up to `wait` for `frozen 0`.
    pub fn thaw(&self, wait: Duration) -> Result<(), CgroupError> {
        self.write("cgroup.freeze", "0")?;
        self.wait_for(wait, "frozen 0", |(_, frozen)| !frozen)
    }

    /// Kill every process (`cgroup.kill`, also frozen ones) and wait up to `wait` for
    /// `populated 0`.
    pub fn kill(&self, fs_: &CgroupFs, wait: Duration) -> Result<(), CgroupError> {
        self.guard(fs_, "kill")?;
        self.write("cgroup.kill", "1")?;
        self.wait_for(wait, "populated 0", |(populated, _)| !populated)
    }

    /// Remove the (empty) cgroup directory.
    pub fn remove(&self) -> Result<(), CgroupError> {
        if self.rel == "/" {
            return Err(CgroupError::Refused {
                op: "remove",
                path: self.rel.clone(),
                reason: "it is the root cgroup".into(),
            });
        }
        fs::remove_dir(&self.dir).map_err(|e| CgroupError::Io {
            what: "cannot remove the cgroup (is it empty?)",
            path: self.dir.clone(),
            source: e,
        })
    }

    /// Wait up to `wait` for the cgroup to empty, then remove it. With `kill_leftovers`,
    /// processes still there (daemons the command left behind) are killed first.
    pub fn remove_when_empty(
        &self,
        fs_: &CgroupFs,
        wait: Duration,
        kill_leftovers: bool,
    ) -> Result<(), CgroupError> {
        if kill_leftovers && self.is_populated()? {
            self.kill(fs_, wait)?;
        }
        self.wait_for(wait, "populated 0", |(populated, _)| !populated)?;
        self.remove()
    }

    /// Wait until `cgroup.events` satisfies `ok`, bounded by `wait`; wakes on the file's
    /// change notification (poll POLLPRI), with a short periodic re-check.
    fn wait_for(
        &self,
        wait: Duration,
        state: &'static str,
        ok: impl Fn((bool, bool)) -> bool,
    ) -> Result<(), CgroupError> {
        let start = Instant::now();
        let events = fs::File::open(self.file("cgroup.events")).ok();
        loop {
            if ok(self.events()?) {
                return Ok(());
            }
            let left = wait.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(CgroupError::Timeout {
                    path: self.rel.clone(),
                    state,
                    waited: wait,
                });
            }
            let ms = i32::try_from(left.as_millis().min(20)).unwrap_or(20).max(1);
            match &events {
                Some(f) => {
                    let mut p = libc::pollfd {
                        fd: f.as_raw_fd(),
                        events: libc::POLLPRI,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd for the duration of the call.
                    unsafe { libc::poll(&mut p, 1, ms) };
                }
                None => std::thread::sleep(Duration::from_millis(u64::try_from(ms).unwrap_or(1))),
            }
        }
    }
}

/// An open `cgroup.procs`, to move a child process into the cgroup between fork and exec.
pub struct CgroupProcs(fs::File);

impl CgroupProcs {
    /// Move the calling process into the cgroup by writing `0` (the writer itself) to the
    /// already-open `cgroup.procs`: one `write(2)`, no allocation, so it is safe in
    /// `std::os::unix::process::CommandExt::pre_exec`. The command then starts inside the
    /// cgroup and cannot fork outside it.
    pub fn join_self(&self) -> io::Result<()> {
        // SAFETY: writes 1 byte from a static buffer to an fd we own.
        let r = unsafe { libc::write(self.0.as_raw_fd(), b"0".as_ptr().cast(), 1) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}
