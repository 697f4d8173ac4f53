//! Process bookkeeping shared by the detectors: who is who, which script an interpreter runs,
//! which fds point where (to resolve `unlinkat(dirfd, name)`), and each process's tree root.

use pyward_rules::event::replay::ReplayProcess;
use pyward_rules::ReplayEvent;

use crate::bounded::Lru;
use crate::config::TrackingConfig;
use crate::glob::{any_match, Glob};
use crate::view::{self, FileId, Op};

/// Most fds remembered per process.
const MAX_FDS: usize = 256;
/// Deepest ancestor walk through the tracker's own table.
const MAX_DEPTH: usize = 64;

/// What an open fd refers to.
#[derive(Clone, Debug)]
pub(crate) struct OpenInfo {
    pub path: String,
    pub id: Option<FileId>,
}

/// What we know about one process.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProcState {
    pub ppid: Option<u64>,
    pub name: String,
    pub exepath: Option<String>,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    fds: Vec<(i64, OpenInfo)>,
}

impl ProcState {
    fn refresh(&mut self, p: &ReplayProcess) {
        if let Some(pp) = p.ppid {
            self.ppid = Some(pp);
        }
        if let Some(n) = &p.name {
            if *n != self.name {
                self.name.clone_from(n);
            }
        }
        if p.exepath.is_some() && p.exepath != self.exepath {
            self.exepath.clone_from(&p.exepath);
        }
        if let Some(a) = &p.args {
            if *a != self.args {
                self.args = a.iter().take(64).cloned().collect();
            }
        }
        if let Some(c) = view::cwd(p) {
            if self.cwd.as_deref() != Some(c) {
                self.cwd = Some(c.to_owned());
            }
        }
    }

    pub(crate) fn fd(&self, fd: i64) -> Option<&OpenInfo> {
        self.fds
            .iter()
            .rev()
            .find(|(n, _)| *n == fd)
            .map(|(_, o)| o)
    }

    fn set_fd(&mut self, fd: i64, info: OpenInfo) {
        self.fds.retain(|(n, _)| *n != fd);
        if self.fds.len() >= MAX_FDS {
            self.fds.remove(0);
        }
        self.fds.push((fd, info));
    }
}

/// A light view of a process for allowlists and ancestor checks.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProcView {
    pub pid: Option<u64>,
    pub name: String,
    pub exepath: Option<String>,
    pub args: Vec<String>,
    pub cwd: Option<String>,
}

impl ProcView {
    pub(crate) fn from_replay(p: &ReplayProcess) -> ProcView {
        ProcView {
            pid: p.pid,
            name: view::proc_name(p).to_owned(),
            exepath: p.exepath.clone(),
            args: p.args.clone().unwrap_or_default(),
            cwd: view::cwd(p).map(str::to_owned),
        }
    }

    /// Names a process answers to: comm and the executable's base name.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str())
            .chain(self.exepath.as_deref().map(view::base_name))
            .filter(|s| !s.is_empty())
    }

    /// The module of `python -m MODULE`.
    pub(crate) fn python_module(&self) -> Option<&str> {
        if !self
            .names()
            .any(|n| n.starts_with("python") || n.starts_with("pypy"))
        {
            return None;
        }
        let mut it = self.args.iter();
        while let Some(a) = it.next() {
            if a == "-m" {
                return it.next().map(String::as_str);
            }
            if let Some(m) = a.strip_prefix("-m") {
                return Some(m);
            }
            if !a.starts_with('-') {
                return None;
            }
        }
        None
    }

    /// The script this process runs, if it is an interpreter given a script path.
    pub(crate) fn script(&self, interpreters: &[Glob]) -> Option<String> {
        let name = self.names().find(|n| any_match(interpreters, n))?;
        let family = Family::of(name);
        let arg = script_arg(&self.args, family)?;
        view::absolute(arg, self.cwd.as_deref())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Python,
    Shell,
    Perl,
    Ruby,
    Node,
    Php,
    Other,
}

impl Family {
    fn of(name: &str) -> Family {
        let n = name.trim_start_matches('-');
        if n.starts_with("python") || n.starts_with("pypy") {
            Family::Python
        } else if matches!(
            n,
            "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "busybox"
        ) {
            Family::Shell
        } else if n.starts_with("perl") {
            Family::Perl
        } else if n.starts_with("ruby") {
            Family::Ruby
        } else if n.starts_with("node") {
            Family::Node
        } else if n.starts_with("php") {
            Family::Php
        } else {
            Family::Other
        }
    }

    /// (options meaning "code is inline / from stdin / a module", options taking a value)
    fn opts(self) -> (&'static str, &'static str) {
        match self {
            Family::Python => ("cm", "WXQ"),
            Family::Shell => ("cs", "oO"),
            Family::Perl => ("eE", ""),
            Family::Ruby => ("e", "Ir"),
            Family::Node => ("ep", "r"),
            Family::Php => ("r", "cdf"),
            Family::Other => ("ce", ""),
        }
    }
}

/// The script argument of an interpreter's argv (without argv\[0\]).
fn script_arg(args: &[String], family: Family) -> Option<&str> {
    let (inline, with_value) = family.opts();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        if a == "--" {
            return args.get(i).map(String::as_str);
        }
        if a == "-" || a.is_empty() {
            return None;
        }
        if let Some(long) = a.strip_prefix("--") {
            if matches!(long, "eval" | "print" | "command") {
                return None;
            }
            if matches!(
                long,
                "require" | "import" | "loader" | "rcfile" | "init-file"
            ) {
                i += 1;
            }
            continue;
        }
        let short = a.strip_prefix('-').or_else(|| {
            if family == Family::Shell {
                a.strip_prefix('+')
            } else {
                None
            }
        });
        if let Some(opts) = short {
            for (k, ch) in opts.char_indices() {
                if family == Family::Php && ch == 'f' {
                    return if k + 1 == opts.len() {
                        args.get(i).map(String::as_str)
                    } else {
                        Some(&opts[k + 1..])
                    };
                }
                if inline.contains(ch) {
                    return None;
                }
                if with_value.contains(ch) {
                    if k + ch.len_utf8() == opts.len() {
                        i += 1;
                    }
                    break;
                }
            }
            continue;
        }
        return Some(a);
    }
    None
}

/// The process table.
#[derive(Debug)]
pub(crate) struct Tracker {
    procs: Lru<u64, ProcState>,
    boundaries: crate::glob::GlobSet,
    start_ns: Option<u64>,
}

impl Tracker {
    pub(crate) fn new(cfg: &TrackingConfig) -> Tracker {
        Tracker {
            procs: Lru::new(cfg.max_processes),
            boundaries: crate::glob::GlobSet::new(&cfg.tree_boundaries),
            start_ns: None,
        }
    }

    /// When monitoring started (ns): files changed later are drift.
    pub(crate) fn start_ns(&self) -> Option<u64> {
        self.start_ns
    }

    pub(crate) fn set_start(&mut self, ns: u64) {
        self.start_ns = Some(ns);
    }

    pub(crate) fn len(&self) -> usize {
        self.procs.len()
    }

    pub(crate) fn get(&self, pid: u64) -> Option<&ProcState> {
        self.procs.peek(&pid)
    }

    /// Update the table with `ev` (call before the detectors look at it).
    pub(crate) fn before(&mut self, ev: &ReplayEvent, op: Op) {
        let Some(pid) = view::pid(ev) else { return };
        if op == Op::Fork {
            // Falco: the parent's clone returns the child's pid; the child's returns 0. The
            // sensor's `clone` event is the child's (pid = child, ppid = parent).
            let res = ev.res.unwrap_or(0);
            let (child, parent) = match u64::try_from(res) {
                Ok(c) if c > 0 && c != pid => (c, Some(pid)),
                _ => (pid, ev.proc.ppid),
            };
            let inherited = parent.and_then(|p| self.procs.peek(&p)).cloned();
            let mut st = inherited.unwrap_or_default();
            st.ppid = parent;
            if child == pid {
                st.refresh(&ev.proc);
            }
            self.procs.insert(child, st);
            return;
        }
        let st = self.procs.get_or_insert_with(&pid, ProcState::default);
        st.refresh(&ev.proc);
        if op == Op::Exec && !view::failed(ev) {
            // A new image: fds survive exec (unless O_CLOEXEC), names and argv do not.
            st.args = ev
                .proc
                .args
                .clone()
                .unwrap_or_default()
                .into_iter()
                .take(64)
                .collect();
        }
        if op == Op::Open && !view::failed(ev) {
            if let Some(fd) = view::fd_num(ev).or_else(|| ev.res.filter(|&r| r >= 0)) {
                let cwd = view::cwd(&ev.proc)
                    .map(str::to_owned)
                    .or_else(|| st.cwd.clone());
                let path = view::fd_path(ev).or_else(|| {
                    let (p, dirfd) = view::path_arg(ev, &["name", "filename", "path"], "dirfd")?;
                    if p.starts_with('/') || view::is_cwd(dirfd) {
                        view::absolute(p, cwd.as_deref())
                    } else {
                        let base = st.fd(dirfd)?.path.clone();
                        view::absolute(p, Some(&base))
                    }
                });
                if let Some(path) = path {
                    st.set_fd(
                        fd,
                        OpenInfo {
                            path,
                            id: view::fd_id(ev),
                        },
                    );
                }
            }
        }
    }

    /// Forget a process that exited (call after the detectors saw the exit).
    pub(crate) fn after(&mut self, ev: &ReplayEvent, op: Op) {
        if op == Op::Exit {
            if let Some(pid) = view::pid(ev) {
                self.procs.remove(&pid);
            }
        }
    }

    /// An absolute path for `path` relative to `dirfd` in the event's process.
    pub(crate) fn resolve(&self, ev: &ReplayEvent, path: &str, dirfd: i64) -> Option<String> {
        if path.starts_with('/') {
            return Some(view::normalize(path));
        }
        let st = view::pid(ev).and_then(|p| self.procs.peek(&p));
        if view::is_cwd(dirfd) {
            let cwd = view::cwd(&ev.proc).or_else(|| st.and_then(|s| s.cwd.as_deref()));
            return view::absolute(path, cwd);
        }
        let base = st?.fd(dirfd)?;
        view::absolute(path, Some(&base.path))
    }

    fn is_boundary(&self, name: &str) -> bool {
        self.boundaries.matches(name)
    }

    /// The root of the event's process tree: the highest ancestor below a boundary process
    /// (init, a container shim, sshd, tmux, the Jupyter server, pyward).
    pub(crate) fn root(&self, ev: &ReplayEvent) -> Option<u64> {
        let me = view::pid(ev)?;
        let mut root = me;
        if !ev.ancestors.is_empty() {
            for a in &ev.ancestors {
                let Some(ap) = a.pid else { break };
                if ap <= 1 || self.is_boundary(view::proc_name(a)) {
                    break;
                }
                root = ap;
            }
            return Some(root);
        }
        let mut cur = self.procs.peek(&me).and_then(|p| p.ppid);
        for _ in 0..MAX_DEPTH {
            let Some(pp) = cur else { break };
            if pp <= 1 || pp == me {
                break;
            }
            let Some(st) = self.procs.peek(&pp) else {
                break;
            };
            if self.is_boundary(&st.name) {
                break;
            }
            root = pp;
            cur = st.ppid;
        }
        Some(root)
    }

    /// The event's process and up to `depth` ancestors, nearest first (from the event when
    /// it carries them, else from the table).
    pub(crate) fn chain(&self, ev: &ReplayEvent, depth: usize) -> Vec<ProcView> {
        let mut me = ProcView::from_replay(&ev.proc);
        if let Some(st) = view::pid(ev).and_then(|p| self.procs.peek(&p)) {
            if me.args.is_empty() {
                me.args.clone_from(&st.args);
            }
            if me.cwd.is_none() {
                me.cwd.clone_from(&st.cwd);
            }
            if me.exepath.is_none() {
                me.exepath.clone_from(&st.exepath);
            }
        }
        let mut out = vec![me];
        if !ev.ancestors.is_empty() {
            out.extend(
                ev.ancestors
                    .iter()
                    .take(depth)
                    .map(|a| ProcView::from_replay(a)),
            );
            return out;
        }
        let mut cur = view::pid(ev)
            .and_then(|p| self.procs.peek(&p))
            .and_then(|p| p.ppid);
        while out.len() <= depth {
            let Some(pp) = cur else { break };
            let Some(st) = self.procs.peek(&pp) else {
                break;
            };
            out.push(ProcView {
                pid: Some(pp),
                name: st.name.clone(),
                exepath: st.exepath.clone(),
                args: st.args.clone(),
                cwd: st.cwd.clone(),
            });
            cur = st.ppid.filter(|&p| p != pp);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(name: &str, args: &[&str]) -> ProcView {
        ProcView {
            name: name.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            cwd: Some("/work".into()),
            ..ProcView::default()
        }
    }

    #[test]
    fn scripts() {
        let i = crate::config::DriftConfig::default().interpreters;
        assert_eq!(
            pv("python3", &["-u", "x.py", "a"]).script(&i).as_deref(),
            Some("/work/x.py")
        );
        assert_eq!(
            pv("python3", &["-W", "ignore", "/t/x.py"])
                .script(&i)
                .as_deref(),
            Some("/t/x.py")
        );
        assert_eq!(pv("python3", &["-c", "print(1)"]).script(&i), None);
        assert_eq!(pv("python3", &["-m", "pip", "install"]).script(&i), None);
        assert_eq!(pv("python3", &["-m", "pip"]).python_module(), Some("pip"));
        assert_eq!(pv("bash", &["-c", "rm x"]).script(&i), None);
        assert_eq!(
            pv("bash", &["-x", "-o", "errexit", "s.sh"])
                .script(&i)
                .as_deref(),
            Some("/work/s.sh")
        );
        assert_eq!(
            pv("bash", &["--", "../s.sh"]).script(&i).as_deref(),
            Some("/s.sh")
        );
        assert_eq!(pv("perl", &["-e", "1"]).script(&i), None);
        assert_eq!(pv("cat", &["x.py"]).script(&i), None);
        assert_eq!(pv("python3.12", &[]).script(&i), None);
    }
}
