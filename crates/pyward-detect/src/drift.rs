//! Drift: running a file that was written after the monitor (or its container) started.
//!
//! Every file created, truncated or written is remembered by `(device, inode)` when the event
//! says it (by path otherwise), with who wrote it. An exec whose executable inode is one of
//! them is drift (Tracee's `magic_write` ⋈ `sched_process_exec` on `(dev, inode)`), and so is
//! an interpreter opening such a file as its script, `chmod +x` of one, and execution from a
//! memfd, shared memory, a deleted file, a container's upper layer, or of a binary whose
//! inode changed after start (ctime). A join made by path only is flagged `join=path`.

use std::sync::Arc;

use pyward_rules::{OutputValue, Priority, ReplayEvent};

use crate::bounded::Lru;
use crate::config::{allowed, DriftConfig};
use crate::detection::{Builder, Detection, DetectorKind};
use crate::glob::any_match;
use crate::procs::{ProcView, Tracker};
use crate::view::{self, FileId, Op};

/// Key of a remembered file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Ino(u64),
    Path(Arc<str>),
}

/// A file written after start.
#[derive(Clone, Debug)]
struct Written {
    /// Shared with the path index (a tar of 50,000 files would otherwise hold each path 3×).
    path: Arc<str>,
    id: Option<FileId>,
    /// Shared between the files one process writes.
    writer: Arc<str>,
    writer_pid: Option<u64>,
    how: &'static str,
    time_ns: u64,
    allowed: bool,
    shebang: bool,
    elf: bool,
    reported_chmod: bool,
}

/// How an exec or open was matched to a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Join {
    Inode,
    Path,
}

impl Join {
    fn as_str(self) -> &'static str {
        match self {
            Join::Inode => "inode",
            Join::Path => "path",
        }
    }
}

const TAGS_DRIFT: &[&str] = &[
    "T1105",
    "T1036",
    "mitre_command_and_control",
    "mitre_defense_evasion",
    "drift",
    "process",
    "pyward",
];
const TAGS_SCRIPT: &[&str] = &[
    "T1105",
    "T1059",
    "mitre_execution",
    "mitre_command_and_control",
    "drift",
    "process",
    "pyward",
];
const TAGS_CHMOD: &[&str] = &[
    "T1222.002",
    "T1105",
    "mitre_defense_evasion",
    "drift",
    "filesystem",
    "pyward",
];
const TAGS_MEMFD: &[&str] = &[
    "T1620",
    "mitre_defense_evasion",
    "drift",
    "process",
    "pyward",
];
const TAGS_SHM: &[&str] = &[
    "T1105",
    "T1036.005",
    "mitre_defense_evasion",
    "drift",
    "process",
    "pyward",
];
const TAGS_DELETED: &[&str] = &[
    "T1070.004",
    "T1620",
    "mitre_defense_evasion",
    "drift",
    "process",
    "pyward",
];

pub(crate) struct Drift {
    cfg: DriftConfig,
    files: Lru<Key, Written>,
    paths: Lru<Arc<str>, Key>,
    /// The last writer's name, reused for its next files.
    last_writer: Option<Arc<str>>,
    /// Interpreters whose script is a drifted file with a known inode: confirmed (by inode)
    /// when they open it, or by path when they exit without an open we saw.
    pending: Lru<u64, String>,
    needs_ancestors: bool,
}

impl Drift {
    pub(crate) fn new(cfg: DriftConfig) -> Drift {
        let cap = cfg.max_files;
        Drift {
            needs_ancestors: cfg.allow.iter().any(|a| a.needs_ancestors()),
            files: Lru::new(cap),
            paths: Lru::new(cap),
            last_writer: None,
            pending: Lru::new(4096),
            cfg,
        }
    }

    pub(crate) fn tracked(&self) -> usize {
        self.files.len()
    }

    fn builder<'a>(&'a self, rule: &'a str, default: Priority, tags: &'a [&'a str]) -> Builder<'a> {
        Builder {
            detector: DetectorKind::Drift,
            rule,
            priority: self.cfg.priority.unwrap_or(default),
            tags,
            extra_tags: &self.cfg.tags,
        }
    }

    fn chain(&self, tr: &Tracker, ev: &ReplayEvent) -> Vec<ProcView> {
        if self.needs_ancestors {
            tr.chain(ev, 16)
        } else {
            vec![ProcView::from_replay(&ev.proc)]
        }
    }

    fn lookup_id(&self, id: &FileId) -> Option<&Written> {
        self.files
            .peek(&Key::Ino(id.ino))
            .filter(|w| w.id.is_some_and(|x| x.same(id)))
    }

    fn lookup_path(&self, path: &str) -> Option<&Written> {
        let key = self.paths.peek(path)?;
        self.files.peek(key).filter(|w| &*w.path == path)
    }

    pub(crate) fn observe(
        &mut self,
        ev: &ReplayEvent,
        op: Op,
        tr: &Tracker,
        root: Option<u64>,
        out: &mut Vec<Detection>,
    ) {
        match op {
            Op::Open if !view::failed(ev) => self.on_open(ev, tr, root, out),
            Op::Write if !view::failed(ev) => self.on_write(ev, tr),
            Op::Exec if !view::failed(ev) => self.on_exec(ev, tr, root, out),
            Op::Chmod if !view::failed(ev) => self.on_chmod(ev, tr, root, out),
            Op::Rename if !view::failed(ev) => self.on_rename(ev, tr),
            Op::Unlink if !view::failed(ev) => self.on_unlink(ev, tr),
            Op::Exit => {
                if let Some(pid) = view::pid(ev) {
                    if let Some(script) = self.pending.remove(&pid) {
                        self.script_hit(ev, root, &script, None, out);
                    }
                }
            }
            _ => {}
        }
    }

    fn remember(
        &mut self,
        ev: &ReplayEvent,
        tr: &Tracker,
        path: String,
        id: Option<FileId>,
        how: &'static str,
        data: Option<&[u8]>,
    ) {
        if path.starts_with("/proc/")
            || path.starts_with("/sys/")
            || (path.starts_with("/dev/") && !path.starts_with("/dev/shm/"))
        {
            return;
        }
        let path: Arc<str> = Arc::from(path);
        let key = id.map_or_else(|| Key::Path(path.clone()), |i| Key::Ino(i.ino));
        let shebang = data.is_some_and(|d| d.starts_with(b"#!"));
        let elf = data.is_some_and(|d| d.starts_with(b"\x7fELF"));
        if let Some(w) = self.files.get_mut(&key) {
            if w.path == path && w.writer_pid == view::pid(ev) {
                // The same writer again (open, then its first write): keep the first record.
                w.shebang |= shebang;
                w.elf |= elf;
                if w.id.is_none() {
                    w.id = id;
                }
                return;
            }
        }
        let chain = self.chain(tr, ev);
        let allowed = allowed(&self.cfg.allow, &chain, Some(&path));
        if let Some(Key::Path(old)) = self.paths.peek(&*path).cloned() {
            if Key::Path(old.clone()) != key {
                self.files.remove(&Key::Path(old));
            }
        }
        self.paths.insert(path.clone(), key.clone());
        let name = view::proc_name(&ev.proc);
        let writer = match &self.last_writer {
            Some(w) if &**w == name => w.clone(),
            _ => {
                let w: Arc<str> = Arc::from(name);
                self.last_writer = Some(w.clone());
                w
            }
        };
        self.files.insert(
            key,
            Written {
                path,
                id,
                writer,
                writer_pid: view::pid(ev),
                how,
                time_ns: view::time_ns(ev),
                allowed,
                shebang,
                elf,
                reported_chmod: false,
            },
        );
    }

    fn on_open(
        &mut self,
        ev: &ReplayEvent,
        tr: &Tracker,
        root: Option<u64>,
        out: &mut Vec<Detection>,
    ) {
        let fl = view::open_flags(ev);
        let Some(pid) = view::pid(ev) else { return };
        let Some(path) = view::fd_num(ev)
            .or_else(|| ev.res.filter(|&r| r >= 0))
            .and_then(|fd| tr.get(pid).and_then(|p| p.fd(fd)).map(|o| o.path.clone()))
            .or_else(|| view::fd_path(ev))
        else {
            return;
        };
        if fl.directory || fl.path_only {
            return;
        }
        let id = view::fd_id(ev);
        if fl.write && (fl.creat || fl.trunc) {
            let how = if fl.trunc { "truncated" } else { "created" };
            self.remember(ev, tr, path.clone(), id, how, None);
        } else if fl.write {
            self.remember(ev, tr, path.clone(), id, "opened for writing", None);
        }
        // An interpreter opening its script: confirm a pending drifted script by inode.
        if fl.read && !fl.write && self.pending.peek(&pid).is_some_and(|p| *p == path) {
            self.pending.remove(&pid);
            self.script_hit(ev, root, &path, id, out);
        }
    }

    fn on_write(&mut self, ev: &ReplayEvent, tr: &Tracker) {
        let Some(pid) = view::pid(ev) else { return };
        let from_table =
            view::fd_num(ev).and_then(|fd| tr.get(pid).and_then(|p| p.fd(fd)).cloned());
        let Some(path) = view::fd_path(ev).or_else(|| from_table.as_ref().map(|o| o.path.clone()))
        else {
            return;
        };
        let id = view::fd_id(ev).or_else(|| from_table.and_then(|o| o.id));
        let data = view::io_data(ev);
        self.remember(ev, tr, path, id, "written", data.as_deref());
    }

    fn on_rename(&mut self, ev: &ReplayEvent, tr: &Tracker) {
        let Some((old, od)) = view::path_arg(ev, &["oldpath"], "olddirfd") else {
            return;
        };
        let Some((new, nd)) = view::path_arg(ev, &["newpath"], "newdirfd") else {
            return;
        };
        let (Some(old), Some(new)) = (tr.resolve(ev, old, od), tr.resolve(ev, new, nd)) else {
            return;
        };
        // Whatever was at `new` is replaced.
        if let Some(k) = self.paths.remove(new.as_str()) {
            if matches!(k, Key::Path(_)) {
                self.files.remove(&k);
            }
        }
        if let Some(k) = self.paths.remove(old.as_str()) {
            let new: Arc<str> = Arc::from(new);
            let k = match k {
                Key::Path(_) => {
                    let Some(mut w) = self.files.remove(&k) else {
                        return;
                    };
                    w.path = new.clone();
                    let nk = Key::Path(new.clone());
                    self.files.insert(nk.clone(), w);
                    nk
                }
                Key::Ino(_) => {
                    if let Some(w) = self.files.get_mut(&k) {
                        w.path = new.clone();
                    }
                    k
                }
            };
            self.paths.insert(new, k);
        }
    }

    fn on_unlink(&mut self, ev: &ReplayEvent, tr: &Tracker) {
        if view::removes_dir(ev) {
            return;
        }
        let Some((p, d)) = view::path_arg(ev, &["path", "name"], "dirfd") else {
            return;
        };
        let Some(path) = tr.resolve(ev, p, d) else {
            return;
        };
        if let Some(k) = self.paths.remove(path.as_str()) {
            self.files.remove(&k);
        }
    }

    fn on_chmod(
        &mut self,
        ev: &ReplayEvent,
        tr: &Tracker,
        root: Option<u64>,
        out: &mut Vec<Detection>,
    ) {
        if !self.cfg.chmod {
            return;
        }
        let Some(mode) = view::arg_int(ev, "mode") else {
            return;
        };
        if mode & 0o111 == 0 {
            return;
        }
        let path = match view::path_arg(ev, &["filename", "path"], "dirfd") {
            Some((p, d)) => tr.resolve(ev, p, d),
            None => view::fd_path(ev),
        };
        let Some(path) = path else { return };
        let (join, w) = match view::fd_id(ev).and_then(|id| self.lookup_id(&id)) {
            Some(w) => (Join::Inode, w),
            None => match self.lookup_path(&path) {
                Some(w) => (Join::Path, w),
                None => return,
            },
        };
        if w.allowed || w.reported_chmod {
            return;
        }
        let chain = self.chain(tr, ev);
        if allowed(&self.cfg.allow, &chain, Some(&path)) {
            return;
        }
        let evidence = written_evidence(w, join, &path);
        let key =
            w.id.map_or_else(|| Key::Path(w.path.clone()), |i| Key::Ino(i.ino));
        let b = self.builder(
            "Drifted File Made Executable",
            Priority::Warning,
            TAGS_CHMOD,
        );
        out.push(b.build(
            ev,
            root,
            &format!("File written after start made executable (mode {mode:o})"),
            evidence,
        ));
        if let Some(w) = self.files.get_mut(&key) {
            w.reported_chmod = true;
        }
    }

    fn on_exec(
        &mut self,
        ev: &ReplayEvent,
        tr: &Tracker,
        root: Option<u64>,
        out: &mut Vec<Detection>,
    ) {
        let exe = ev
            .proc
            .exepath
            .clone()
            .or_else(|| view::arg_str(ev, "filename").map(str::to_owned))
            .or_else(|| view::arg_str(ev, "exe").map(str::to_owned))
            .unwrap_or_default();
        let exe_clean = exe.strip_suffix(" (deleted)").unwrap_or(&exe).to_owned();
        let chain_path_allowed = |s: &Self| {
            let chain = vec![ProcView::from_replay(&ev.proc)];
            s.cfg.allow.iter().any(|a| {
                a.process.is_empty()
                    && a.module.is_empty()
                    && a.ancestor.is_empty()
                    && a.matches(&chain, Some(&exe_clean))
            })
        };
        let ev_path = |k: &'static str| (k, OutputValue::from(exe_clean.clone()));
        if self.cfg.memfd && view::exe_from_memfd(ev) {
            let b = self.builder(
                "Fileless Execution via memfd",
                Priority::Critical,
                TAGS_MEMFD,
            );
            out.push(b.build(
                ev,
                root,
                "Program run from a memfd (fileless execution)",
                vec![ev_path("file")],
            ));
            return;
        }
        if exe_clean.starts_with('/')
            && any_match(&self.cfg.shm_paths, &exe_clean)
            && !chain_path_allowed(self)
        {
            let b = self.builder("Execution from Shared Memory", Priority::Critical, TAGS_SHM);
            out.push(b.build(
                ev,
                root,
                "Program run from shared memory",
                vec![ev_path("file")],
            ));
            return;
        }
        if self.cfg.deleted && view::exe_deleted(ev) {
            let b = self.builder(
                "Execution of Deleted Executable",
                Priority::Critical,
                TAGS_DELETED,
            );
            out.push(b.build(
                ev,
                root,
                "Program run from a deleted file",
                vec![ev_path("file")],
            ));
            return;
        }
        // A file written after start, joined by inode (or by path when the exec has no inode,
        // or the file is a `#!` script the kernel ran through its interpreter).
        let exe_id = view::exe_id(ev);
        let hit = match exe_id.and_then(|id| self.lookup_id(&id)) {
            Some(w) => Some((Join::Inode, w)),
            None => self
                .lookup_path(&exe_clean)
                .filter(|w| exe_id.is_none() || w.id.is_none() || w.shebang)
                .map(|w| (Join::Path, w)),
        };
        let mut known_allowed = false;
        if let Some((join, w)) = hit {
            if w.allowed || chain_path_allowed(self) {
                known_allowed = true;
            } else {
                let evidence = written_evidence(w, join, &exe_clean);
                let b = self.builder("Drifted Executable Run", Priority::Critical, TAGS_DRIFT);
                out.push(b.build(
                    ev,
                    root,
                    "Executable written after start was run (drift)",
                    evidence,
                ));
                self.check_script(ev, root, out);
                return;
            }
        }
        if !known_allowed && !chain_path_allowed(self) {
            let in_container = ev
                .container
                .as_ref()
                .is_some_and(|c| c.id.as_deref().is_some_and(|i| i != "host"));
            let baseline = if in_container {
                ev.container.as_ref().and_then(|c| c.start_ts)
            } else {
                tr.start_ns()
            };
            if let (true, Some(ctime), Some(base)) =
                (self.cfg.exe_ctime, ev.proc.exe_ino_ctime, baseline)
            {
                if ctime > base {
                    let b = self.builder("Drifted Executable Run", Priority::Critical, TAGS_DRIFT);
                    out.push(b.build(
                        ev,
                        root,
                        "Executable changed after start was run (drift)",
                        vec![
                            ev_path("file"),
                            ("join", OutputValue::from("ctime")),
                            ("exe_ctime", OutputValue::from(ctime)),
                            ("since", OutputValue::from(base)),
                        ],
                    ));
                    self.check_script(ev, root, out);
                    return;
                }
            }
            if self.cfg.upper_layer && in_container && view::exe_upper_layer(ev) {
                let b = self.builder("Drifted Executable Run", Priority::Critical, TAGS_DRIFT);
                out.push(b.build(
                    ev,
                    root,
                    "Executable not part of the container image was run (drift)",
                    vec![ev_path("file"), ("join", OutputValue::from("upper_layer"))],
                ));
                self.check_script(ev, root, out);
                return;
            }
        }
        self.check_script(ev, root, out);
    }

    /// An interpreter started on a script: report it if the script is a drifted file.
    fn check_script(&mut self, ev: &ReplayEvent, root: Option<u64>, out: &mut Vec<Detection>) {
        if !self.cfg.scripts {
            return;
        }
        let me = ProcView::from_replay(&ev.proc);
        let Some(script) = me.script(&self.cfg.interpreters) else {
            return;
        };
        let Some(w) = self.lookup_path(&script) else {
            return;
        };
        if w.allowed {
            return;
        }
        match (w.id, view::pid(ev)) {
            // Wait for the interpreter to open it, to join by inode.
            (Some(_), Some(pid)) => {
                self.pending.insert(pid, script);
            }
            _ => self.script_hit(ev, root, &script, None, out),
        }
    }

    fn script_hit(
        &mut self,
        ev: &ReplayEvent,
        root: Option<u64>,
        script: &str,
        id: Option<FileId>,
        out: &mut Vec<Detection>,
    ) {
        let (join, w) = match id {
            Some(id) => match self.lookup_id(&id) {
                Some(w) => (Join::Inode, w),
                None => return, // the script opened is not a file written after start
            },
            None => match self.lookup_path(script) {
                Some(w) => (Join::Path, w),
                None => return,
            },
        };
        if w.allowed {
            return;
        }
        let mut evidence = written_evidence(w, join, script);
        evidence.push(("interpreter", OutputValue::from(view::proc_name(&ev.proc))));
        let b = self.builder(
            "Drifted Script Run by Interpreter",
            Priority::Critical,
            TAGS_SCRIPT,
        );
        out.push(b.build(
            ev,
            root,
            "Script written after start was run by an interpreter (drift)",
            evidence,
        ));
    }
}

fn written_evidence<'a>(w: &Written, join: Join, path: &str) -> Vec<(&'a str, OutputValue)> {
    vec![
        ("file", OutputValue::from(path)),
        ("join", OutputValue::from(join.as_str())),
        (
            "inode",
            w.id.map_or(OutputValue::Null, |i| OutputValue::from(i.ino)),
        ),
        ("written_by", OutputValue::from(&*w.writer)),
        (
            "writer_pid",
            w.writer_pid.map_or(OutputValue::Null, OutputValue::from),
        ),
        ("write", OutputValue::from(w.how)),
        ("written_at", OutputValue::from(w.time_ns)),
        (
            "kind",
            OutputValue::from(if w.elf {
                "elf"
            } else if w.shebang {
                "script"
            } else {
                "unknown"
            }),
        ),
    ]
}
