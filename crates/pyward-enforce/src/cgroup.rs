//! cgroup v2 helpers: where it is mounted, and a child group for a workload.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The cgroup v2 mount point, read from /proc/self/mountinfo (never assumed: hybrid
/// layouts mount it at /sys/fs/cgroup/unified).
pub fn cgroup2_mount() -> io::Result<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    cgroup2_mount_in(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no cgroup2 file system in /proc/self/mountinfo; mount one \
             (mount -t cgroup2 none /sys/fs/cgroup) to use network enforcement",
        )
    })
}

fn cgroup2_mount_in(mountinfo: &str) -> Option<PathBuf> {
    for line in mountinfo.lines() {
        // "<id> <parent> <maj:min> <root> <mount point> <opts> [optional...] - <fstype> ..."
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        if let Some(mp) = left.split_whitespace().nth(4) {
            return Some(PathBuf::from(unescape_mount(mp)));
        }
    }
    None
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && b.get(i + 1..i + 4)
                .is_some_and(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            match u8::try_from(v) {
                Ok(v) => out.push(v),
                Err(_) => out.extend_from_slice(&b[i..i + 4]),
            }
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A cgroup v2 group made for a workload (a `pyward run` tree, a test); removed on drop
/// after killing what is left in it.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// Create `name` under `parent` (a cgroup v2 directory).
    pub fn create(parent: &Path, name: &str) -> io::Result<Cgroup> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid cgroup name {name:?}: use a single path component"),
            ));
        }
        let path = parent.join(name);
        std::fs::create_dir(&path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create cgroup {}: {e}", path.display()),
            )
        })?;
        Ok(Cgroup { path })
    }

    /// The group's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Make `cmd`'s child join this group before it execs (nothing runs outside it).
    pub fn join_before_exec(&self, cmd: &mut Command) -> io::Result<()> {
        use std::os::unix::process::CommandExt;
        let procs = CString::new(self.path.join("cgroup.procs").as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in cgroup path"))?;
        // SAFETY: the hook only makes open/write/close syscalls on memory prepared before
        // fork (async-signal-safe); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                // "0" means the writing process itself.
                let r = libc::write(fd, b"0".as_ptr().cast(), 1);
                let err = io::Error::last_os_error();
                libc::close(fd);
                if r != 1 {
                    return Err(err);
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// Kill everything in the group (`cgroup.kill`, or SIGKILL to each member on kernels
    /// without it), wait until it is empty (bounded), and remove the directory.
    pub fn remove(mut self) -> io::Result<()> {
        self.remove_inner()
    }

    fn remove_inner(&mut self) -> io::Result<()> {
        if self.path.as_os_str().is_empty() {
            return Ok(());
        }
        let kill = self.path.join("cgroup.kill");
        if std::fs::write(&kill, "1").is_err() {
            if let Ok(procs) = std::fs::read_to_string(self.path.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: kill(2) with a pid read from the group's own member list.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match std::fs::remove_dir(&self.path) {
                Ok(()) => break,
                Err(e) if Instant::now() >= deadline => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot remove cgroup {}: {e}", self.path.display()),
                    ))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.remove_inner();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cgroup2_in_hybrid_mountinfo() {
        let m = "30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro\n\
                 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                 42 31 0:39 / /sys/fs/cgroup/cpu rw shared:9 - cgroup cgroup rw,cpu\n";
        assert_eq!(
            cgroup2_mount_in(m),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(cgroup2_mount_in("garbage\n- -\n"), None);
        assert_eq!(
            cgroup2_mount_in("1 2 0:1 / /a\\040b rw - cgroup2 x rw"),
            Some(PathBuf::from("/a b"))
        );
    }

    #[test]
    fn rejects_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Cgroup::create(dir.path(), "../x").is_err());
        assert!(Cgroup::create(dir.path(), "").is_err());
    }
}
