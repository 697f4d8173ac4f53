//! Reading what the detectors need from a [`ReplayEvent`], in one place.
//!
//! The inode fields (`proc.exe_ino`/`exe_dev`/`exe_deleted`, `fd.ino`/`fd.dev`) and the
//! `write`/`read` events' `data` are read only through the functions marked **FIELD HELPER**
//! below, so a change of the format is a change here only. Each reads the sensor's field
//! first and then Falco's own argument names (`openat` carries `dev` and `ino`, `execve`
//! carries `exe_ino`), which recorded Falco captures have.

use pyward_rules::event::replay::{ArgValue, ReplayProcess};
use pyward_rules::{Event, ReplayEvent};
use serde::Serialize;

use crate::content;

const AT_FDCWD: i64 = -100;

/// What an event does, as far as the detectors care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Exec,
    Fork,
    Exit,
    Open,
    Write,
    Read,
    Unlink,
    Rename,
    Chmod,
    Other,
}

pub(crate) fn op(ev: &ReplayEvent) -> Op {
    match ev.event_type.as_str() {
        "execve" | "execveat" => Op::Exec,
        "clone" | "clone3" | "fork" | "vfork" => Op::Fork,
        "procexit" => Op::Exit,
        "open" | "openat" | "openat2" | "creat" => Op::Open,
        "write" | "pwrite" | "pwrite64" | "writev" | "pwritev" | "pwritev2" => Op::Write,
        "read" | "pread" | "pread64" | "readv" | "preadv" | "preadv2" => Op::Read,
        "unlink" | "unlinkat" => Op::Unlink,
        "rename" | "renameat" | "renameat2" => Op::Rename,
        "chmod" | "fchmod" | "fchmodat" | "fchmodat2" => Op::Chmod,
        _ => Op::Other,
    }
}

/// A file's identity: inode number, and device when the event says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FileId {
    /// Device number (`st_dev`), when known.
    pub dev: Option<u64>,
    /// Inode number.
    pub ino: u64,
}

impl FileId {
    /// Same file: same inode, and same device unless one side does not know it.
    pub fn same(&self, other: &FileId) -> bool {
        self.ino == other.ino
            && match (self.dev, other.dev) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

pub(crate) fn arg<'a>(ev: &'a ReplayEvent, name: &str) -> Option<&'a ArgValue> {
    ev.args.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

pub(crate) fn arg_str<'a>(ev: &'a ReplayEvent, name: &str) -> Option<&'a str> {
    match arg(ev, name)? {
        ArgValue::Str(s) => Some(s),
        _ => None,
    }
}

/// A numeric argument (numbers, or numeric text; `0755`-style text is octal).
pub(crate) fn arg_int(ev: &ReplayEvent, name: &str) -> Option<i64> {
    match arg(ev, name)? {
        ArgValue::Int(i) => Some(*i),
        ArgValue::Uint(u) => i64::try_from(*u).ok(),
        ArgValue::Bool(b) => Some(i64::from(*b)),
        ArgValue::Str(s) => parse_int(s),
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok();
    }
    if s.len() > 1 && s.starts_with('0') && s.bytes().all(|b| b.is_ascii_digit()) {
        return i64::from_str_radix(&s[1..], 8).ok();
    }
    // Falco renders some modes as `S_IRWXU|...`; those carry no number.
    s.parse().ok()
}

fn positive(v: Option<i64>) -> Option<u64> {
    v.and_then(|i| u64::try_from(i).ok()).filter(|&i| i > 0)
}

/// **FIELD HELPER**: the executable's inode (`proc.exe_ino`, `proc.exe_dev`).
pub(crate) fn exe_id(ev: &ReplayEvent) -> Option<FileId> {
    if let Some(ino) = ev.proc.exe_ino.filter(|&i| i > 0) {
        return Some(FileId {
            dev: ev.proc.exe_dev,
            ino,
        });
    }
    let ino = positive(arg_int(ev, "exe_ino"))?;
    let dev = positive(arg_int(ev, "exe_dev")).or_else(|| positive(arg_int(ev, "dev")));
    Some(FileId { dev, ino })
}

/// **FIELD HELPER**: the executable was deleted (nlink 0) when it was run (`proc.exe_deleted`).
pub(crate) fn exe_deleted(ev: &ReplayEvent) -> bool {
    ev.proc.exe_deleted == Some(true)
        || matches!(arg(ev, "exe_deleted"), Some(ArgValue::Bool(true)))
        || ev
            .proc
            .exepath
            .as_deref()
            .is_some_and(|p| p.ends_with(" (deleted)"))
}

/// **FIELD HELPER**: the executable came from a memfd (`proc.is_exe_from_memfd`).
pub(crate) fn exe_from_memfd(ev: &ReplayEvent) -> bool {
    ev.proc.is_exe_from_memfd == Some(true)
        || ev
            .proc
            .exepath
            .as_deref()
            .is_some_and(|p| p.starts_with("memfd:") || p.starts_with("/memfd:"))
        || arg_str(ev, "flags").is_some_and(|f| f.contains("EXE_FROM_MEMFD"))
}

/// **FIELD HELPER**: the executable is on the container's writable (upper) layer.
pub(crate) fn exe_upper_layer(ev: &ReplayEvent) -> bool {
    ev.proc.is_exe_upper_layer == Some(true)
        || arg_str(ev, "flags").is_some_and(|f| f.contains("EXE_UPPER_LAYER"))
}

/// **FIELD HELPER**: the inode of the file the event's fd refers to (`fd.ino`, `fd.dev`).
pub(crate) fn fd_id(ev: &ReplayEvent) -> Option<FileId> {
    if let Some(fd) = &ev.fd {
        if let Some(ino) = fd.ino.filter(|&i| i > 0) {
            return Some(FileId { dev: fd.dev, ino });
        }
    }
    let ino = positive(arg_int(ev, "ino"))?;
    let dev = positive(arg_int(ev, "dev"));
    Some(FileId { dev, ino })
}

/// **FIELD HELPER**: the bytes of a `write`/`read` at offset 0 (`data`, lowercase hex), or
/// `evt.buffer` when the event carries it that way.
pub(crate) fn io_data(ev: &ReplayEvent) -> Option<Vec<u8>> {
    if let Some(h) = arg_str(ev, "data").filter(|h| !h.is_empty()) {
        return content::decode_hex(h);
    }
    ev.buffer().map(|b| b.iter().take(4096).copied().collect())
}

/// The event's process id (`proc.pid`, else `thread.tid`).
pub(crate) fn pid(ev: &ReplayEvent) -> Option<u64> {
    ev.proc.pid.or(ev.proc.tid)
}

/// The executable's base name, the best "program name" (`proc.name` is comm, 15 bytes).
pub(crate) fn proc_name(p: &ReplayProcess) -> &str {
    p.name.as_deref().unwrap_or("")
}

/// Lexically normalise an absolute path (`.`, `..`, `//`).
pub(crate) fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// `path` made absolute against `base` (a directory); `None` if it is relative and no base.
pub(crate) fn absolute(path: &str, base: Option<&str>) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    if path.starts_with('/') {
        return Some(normalize(path));
    }
    base.map(|b| normalize(&format!("{b}/{path}")))
}

/// Parsed `open` flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OpenFlags {
    pub read: bool,
    pub write: bool,
    pub creat: bool,
    pub trunc: bool,
    pub excl: bool,
    pub directory: bool,
    pub tmpfile: bool,
    pub path_only: bool,
}

/// The flags of an open event (`flags` as Falco text or a number; `creat` implies
/// `O_WRONLY|O_CREAT|O_TRUNC`).
pub(crate) fn open_flags(ev: &ReplayEvent) -> OpenFlags {
    if ev.event_type == "creat" {
        return OpenFlags {
            write: true,
            creat: true,
            trunc: true,
            ..OpenFlags::default()
        };
    }
    match arg(ev, "flags") {
        Some(ArgValue::Str(s)) if parse_int(s).is_none() => {
            // One pass over the names (asked for every open event).
            let (mut rdwr, mut wr) = (false, false);
            let mut f = OpenFlags::default();
            for t in s.split('|') {
                match t.trim() {
                    "O_RDWR" => rdwr = true,
                    "O_WRONLY" => wr = true,
                    "O_CREAT" => f.creat = true,
                    "O_TRUNC" => f.trunc = true,
                    "O_EXCL" => f.excl = true,
                    "O_DIRECTORY" => f.directory = true,
                    "O_TMPFILE" => f.tmpfile = true,
                    "O_PATH" => f.path_only = true,
                    _ => {}
                }
            }
            f.read = rdwr || !wr;
            f.write = rdwr || wr;
            f
        }
        Some(_) => {
            let bits = arg_int(ev, "flags").unwrap_or(0);
            let acc = bits & 3;
            OpenFlags {
                read: acc == 0 || acc == 2,
                write: acc == 1 || acc == 2,
                creat: bits & 0o100 != 0,
                trunc: bits & 0o1000 != 0,
                excl: bits & 0o200 != 0,
                directory: bits & 0o200000 != 0,
                tmpfile: bits & 0o20000000 != 0,
                path_only: bits & 0o10000000 != 0,
            }
        }
        None => OpenFlags {
            read: true,
            ..OpenFlags::default()
        },
    }
}

/// The fd number an event is about (`fd.num`, else the `fd` argument, else `res` for opens).
pub(crate) fn fd_num(ev: &ReplayEvent) -> Option<i64> {
    ev.fd
        .as_ref()
        .and_then(|f| f.num)
        .or_else(|| arg_int(ev, "fd"))
        .filter(|&n| n >= 0)
}

/// `fd.name` when it is an absolute path.
pub(crate) fn fd_path(ev: &ReplayEvent) -> Option<String> {
    let n = ev.fd.as_ref()?.name.as_deref()?;
    n.starts_with('/').then(|| normalize(n))
}

/// A path argument and its directory fd (`AT_FDCWD` when absent).
pub(crate) fn path_arg<'a>(
    ev: &'a ReplayEvent,
    names: &[&str],
    dirfd: &str,
) -> Option<(&'a str, i64)> {
    let p = names.iter().find_map(|n| arg_str(ev, n))?;
    Some((p, arg_int(ev, dirfd).unwrap_or(AT_FDCWD)))
}

/// Whether `dirfd` means "relative to the working directory".
pub(crate) fn is_cwd(dirfd: i64) -> bool {
    dirfd == AT_FDCWD
}

/// Falco's `proc.cwd` without the trailing slash.
pub(crate) fn cwd(p: &ReplayProcess) -> Option<&str> {
    let c = p.cwd.as_deref()?;
    if c.is_empty() {
        return None;
    }
    Some(if c.len() > 1 {
        c.trim_end_matches('/')
    } else {
        c
    })
}

/// Event time in ns.
pub(crate) fn time_ns(ev: &ReplayEvent) -> u64 {
    ev.time_ns()
}

/// The `res` of a syscall that failed.
pub(crate) fn failed(ev: &ReplayEvent) -> bool {
    ev.res.is_some_and(|r| r < 0)
}

/// `unlinkat(..., AT_REMOVEDIR)`: a directory, not a file.
pub(crate) fn removes_dir(ev: &ReplayEvent) -> bool {
    match arg(ev, "flags") {
        Some(ArgValue::Str(s)) if parse_int(s).is_none() => s.contains("AT_REMOVEDIR"),
        Some(_) => arg_int(ev, "flags").is_some_and(|f| f & 0x200 != 0),
        None => false,
    }
}

/// The final component of a path.
pub(crate) fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// A path without its last extension (`/a/b.txt.enc` → `/a/b.txt`), if it has one.
pub(crate) fn strip_ext(p: &str) -> Option<&str> {
    let name = base_name(p);
    let dot = name.rfind('.').filter(|&i| i > 0)?;
    Some(&p[..p.len() - (name.len() - dot)])
}

/// The last extension, lower case, without the dot (`""` when none).
pub(crate) fn ext(p: &str) -> String {
    let name = base_name(p);
    match name.rfind('.') {
        Some(i) if i > 0 => name[i + 1..].to_ascii_lowercase(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(normalize("/a/./b/../c//d"), "/a/c/d");
        assert_eq!(
            absolute("x.py", Some("/home/j")).as_deref(),
            Some("/home/j/x.py")
        );
        assert_eq!(absolute("x.py", None), None);
        assert_eq!(strip_ext("/a/b.txt.enc"), Some("/a/b.txt"));
        assert_eq!(strip_ext("/a/.bashrc"), None);
        assert_eq!(ext("/a/B.TXT"), "txt");
        assert_eq!(parse_int("0755"), Some(0o755));
        assert_eq!(parse_int("493"), Some(493));
    }
}
