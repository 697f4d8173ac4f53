//! A small simulated host that emits events in the sensor's replay format (docs/events.md):
//! processes with ancestors, inodes per path, open/read/write/rename/unlink/chmod/exec.
//! Events are built as JSON lines and parsed with `ReplayEvent::parse_line`, exactly as
//! `pyward rules replay` reads a capture.
#![allow(dead_code)]

use std::collections::HashMap;

use pyward_detect::{DetectConfig, Detection, DetectorSet};
use pyward_rules::ReplayEvent;
use serde_json::{json, Value};

pub const DEV: u64 = 2049;

#[derive(Clone)]
pub struct Proc {
    pub pid: u64,
    pub ppid: u64,
    pub name: String,
    pub exepath: String,
    pub args: Vec<String>,
    pub cwd: String,
}

pub struct Sim {
    pub t: u64,
    pub set: DetectorSet,
    pub procs: HashMap<u64, Proc>,
    pub inodes: HashMap<String, u64>,
    next_ino: u64,
    next_fd: HashMap<u64, i64>,
    pub detections: Vec<(usize, Detection)>,
    pub events: usize,
    /// Emit inode numbers (the new sensor) or not (older captures).
    pub with_inodes: bool,
    /// Emit `read` events (optional in the sensor).
    pub with_reads: bool,
    pub last_event: Option<ReplayEvent>,
    /// Put inodes in Falco's argument names (`ino`, `exe_ino`) instead of the sensor's
    /// `fd.ino` / `proc.exe_ino` fields.
    pub falco_args: bool,
}

pub fn text_bytes(i: usize) -> Vec<u8> {
    format!(
        "Quarterly report {i}: revenue grew by {} percent in the northern region.\n",
        i % 17
    )
    .into_bytes()
}

/// Deterministic pseudo-random bytes (xorshift), like ciphertext or compressed data.
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().take(64).map(|x| format!("{x:02x}")).collect()
}

impl Sim {
    pub fn new(cfg: DetectConfig) -> Sim {
        let mut s = Sim {
            t: 1_785_000_000_000_000_000,
            set: DetectorSet::new(cfg).with_start_time(1_785_000_000_000_000_000),
            procs: HashMap::new(),
            inodes: HashMap::new(),
            next_ino: 1000,
            next_fd: HashMap::new(),
            detections: Vec::new(),
            events: 0,
            with_inodes: true,
            with_reads: true,
            last_event: None,
            falco_args: false,
        };
        s.add_proc(1, 0, "systemd", "/usr/lib/systemd/systemd", &[], "/");
        s.add_proc(50, 1, "sshd", "/usr/sbin/sshd", &[], "/");
        s.add_proc(100, 50, "bash", "/usr/bin/bash", &[], "/home/u");
        s
    }

    pub fn default() -> Sim {
        Sim::new(DetectConfig::default())
    }

    pub fn add_proc(
        &mut self,
        pid: u64,
        ppid: u64,
        name: &str,
        exe: &str,
        args: &[&str],
        cwd: &str,
    ) {
        self.procs.insert(
            pid,
            Proc {
                pid,
                ppid,
                name: name.into(),
                exepath: exe.into(),
                args: args.iter().map(|s| s.to_string()).collect(),
                cwd: cwd.into(),
            },
        );
    }

    fn proc_json(&self, p: &Proc) -> Value {
        let cwd = if p.cwd.ends_with('/') {
            p.cwd.clone()
        } else {
            format!("{}/", p.cwd)
        };
        json!({"pid": p.pid, "ppid": p.ppid, "name": p.name, "exepath": p.exepath, "args": p.args, "cwd": cwd})
    }

    /// Emit one event for process `pid` and feed it to the detectors.
    pub fn emit(
        &mut self,
        pid: u64,
        etype: &str,
        res: i64,
        fd: Option<Value>,
        args: Value,
    ) -> Vec<Detection> {
        self.emit_extra(pid, etype, res, fd, args, |_| {})
    }

    pub fn emit_extra(
        &mut self,
        pid: u64,
        etype: &str,
        res: i64,
        fd: Option<Value>,
        args: Value,
        extra: impl FnOnce(&mut Value),
    ) -> Vec<Detection> {
        self.t += 200_000; // 0.2 ms per event
        let p = self.procs.get(&pid).cloned().expect("sim process");
        let mut ancestors = Vec::new();
        let mut cur = p.ppid;
        while let Some(a) = self.procs.get(&cur) {
            ancestors.push(self.proc_json(a));
            if a.ppid == 0 || ancestors.len() > 20 {
                break;
            }
            cur = a.ppid;
        }
        let mut ev = json!({
            "time": self.t, "type": etype, "res": res,
            "proc": self.proc_json(&p), "ancestors": ancestors,
            "user": {"uid": 1000, "name": "u"}, "args": args,
        });
        if let Some(fd) = fd {
            ev["fd"] = fd;
        }
        extra(&mut ev);
        let ev = ReplayEvent::parse_line(&ev.to_string()).expect("valid replay event");
        let out = self.set.observe(&ev);
        self.events += 1;
        for d in &out {
            self.detections.push((self.events, d.clone()));
        }
        self.last_event = Some(ev);
        out
    }

    fn ino(&mut self, path: &str, create: bool) -> u64 {
        if let Some(i) = self.inodes.get(path) {
            return *i;
        }
        self.next_ino += 1;
        let i = self.next_ino;
        if create {
            self.inodes.insert(path.to_owned(), i);
        }
        i
    }

    fn fd_obj(&self, num: i64, path: &str, ino: u64) -> Value {
        if self.with_inodes && !self.falco_args && ino > 0 {
            json!({"num": num, "type": "file", "name": path, "ino": ino, "dev": DEV})
        } else {
            json!({"num": num, "type": "file", "name": path})
        }
    }

    fn alloc_fd(&mut self, pid: u64) -> i64 {
        let n = self.next_fd.entry(pid).or_insert(3);
        let fd = *n;
        *n = if *n > 200 { 3 } else { *n + 1 };
        fd
    }

    /// openat(dirfd, name) returning a new fd; `path` is what the sensor puts in fd.name.
    pub fn open_at(&mut self, pid: u64, path: &str, dirfd: i64, name: &str, flags: &str) -> i64 {
        let creat = flags.contains("O_CREAT");
        if flags.contains("O_EXCL") && self.inodes.contains_key(path) {
            self.emit(
                pid,
                "openat",
                -17,
                None,
                json!({"fd": -1, "dirfd": dirfd, "name": name, "flags": flags, "mode": 0o644}),
            );
            return -1;
        }
        let ino = self.ino(path, creat);
        let fd = self.alloc_fd(pid);
        let mut args =
            json!({"fd": fd, "dirfd": dirfd, "name": name, "flags": flags, "mode": 0o644});
        if self.with_inodes {
            args["dev"] = json!(DEV);
            args["ino"] = json!(ino);
        }
        let fdo = self.fd_obj(fd, path, ino);
        self.emit(pid, "openat", fd, Some(fdo), args);
        fd
    }

    pub fn open(&mut self, pid: u64, path: &str, flags: &str) -> i64 {
        self.open_at(pid, path, -100, path, flags)
    }

    fn io(&mut self, pid: u64, etype: &str, fd: i64, path: &str, data: &[u8]) -> Vec<Detection> {
        let ino = self.inodes.get(path).copied().unwrap_or(0);
        let mut args = json!({"fd": fd, "size": data.len(), "data": hex(data)});
        if self.with_inodes && self.falco_args {
            args["dev"] = json!(DEV);
            args["ino"] = json!(ino);
        }
        let fdo = self.fd_obj(fd, path, ino);
        self.emit(pid, etype, data.len() as i64, Some(fdo), args)
    }

    pub fn write(&mut self, pid: u64, fd: i64, path: &str, data: &[u8]) -> Vec<Detection> {
        self.io(pid, "write", fd, path, data)
    }

    pub fn read(&mut self, pid: u64, fd: i64, path: &str, data: &[u8]) -> Vec<Detection> {
        if !self.with_reads {
            return Vec::new();
        }
        self.io(pid, "read", fd, path, data)
    }

    pub fn unlink(&mut self, pid: u64, path: &str) -> Vec<Detection> {
        self.inodes.remove(path);
        self.emit(pid, "unlink", 0, None, json!({"path": path}))
    }

    /// unlinkat(dirfd, name) of `full` (the path the name resolves to).
    pub fn unlinkat(&mut self, pid: u64, dirfd: i64, name: &str, full: &str) -> Vec<Detection> {
        self.inodes.remove(full);
        self.emit(
            pid,
            "unlinkat",
            0,
            None,
            json!({"dirfd": dirfd, "name": name, "flags": 0}),
        )
    }

    pub fn rename(&mut self, pid: u64, old: &str, new: &str) -> Vec<Detection> {
        if let Some(i) = self.inodes.remove(old) {
            self.inodes.insert(new.to_owned(), i);
        }
        self.emit(
            pid,
            "renameat2",
            0,
            None,
            json!({"olddirfd": -100, "oldpath": old, "newdirfd": -100, "newpath": new, "flags": 0}),
        )
    }

    pub fn chmod(&mut self, pid: u64, path: &str, mode: i64) -> Vec<Detection> {
        self.emit(
            pid,
            "fchmodat",
            0,
            None,
            json!({"dirfd": -100, "filename": path, "mode": mode}),
        )
    }

    /// fork+exec of a new process `pid` under `ppid`; returns the exec's detections.
    pub fn spawn(
        &mut self,
        pid: u64,
        ppid: u64,
        name: &str,
        exe: &str,
        args: &[&str],
        cwd: &str,
    ) -> Vec<Detection> {
        let parent = self.procs.get(&ppid).cloned().expect("parent");
        self.procs.insert(
            pid,
            Proc {
                pid,
                ppid,
                ..parent
            },
        );
        self.emit(pid, "clone", 0, None, json!({}));
        self.exec(pid, name, exe, args, cwd)
    }

    pub fn exec(
        &mut self,
        pid: u64,
        name: &str,
        exe: &str,
        args: &[&str],
        cwd: &str,
    ) -> Vec<Detection> {
        self.exec_with(pid, name, exe, args, cwd, |_| {})
    }

    pub fn exec_with(
        &mut self,
        pid: u64,
        name: &str,
        exe: &str,
        args: &[&str],
        cwd: &str,
        extra: impl FnOnce(&mut Value),
    ) -> Vec<Detection> {
        let ppid = self.procs.get(&pid).map_or(1, |p| p.ppid);
        self.add_proc(pid, ppid, name, exe, args, cwd);
        let ino = self.ino(exe, true);
        let mut a = json!({"exe": exe, "filename": exe});
        let (with, falco) = (self.with_inodes, self.falco_args);
        if with && falco {
            a["exe_ino"] = json!(ino);
        }
        self.emit_extra(pid, "execve", 0, None, a, |e| {
            if with && !falco {
                e["proc"]["exe_ino"] = json!(ino);
                e["proc"]["exe_dev"] = json!(DEV);
            }
            extra(e)
        })
    }

    pub fn exit(&mut self, pid: u64) -> Vec<Detection> {
        let out = self.emit(pid, "procexit", 0, None, json!({"status": 0}));
        self.procs.remove(&pid);
        out
    }

    pub fn rules(&self) -> Vec<String> {
        self.detections
            .iter()
            .map(|(_, d)| d.rule.clone())
            .collect()
    }

    pub fn count(&self, rule: &str) -> usize {
        self.detections
            .iter()
            .filter(|(_, d)| d.rule == rule)
            .count()
    }

    pub fn first(&self, rule: &str) -> Option<&Detection> {
        self.detections
            .iter()
            .map(|(_, d)| d)
            .find(|d| d.rule == rule)
    }
}

impl Sim {
    /// A file that existed before monitoring started (no event).
    pub fn preexisting(&mut self, path: &str) {
        self.ino(path, true);
    }

    /// `n` pre-existing text files `dir/doc{i}.txt`.
    pub fn tree_of_docs(&mut self, dir: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let p = format!("{dir}/doc{i}.txt");
                self.preexisting(&p);
                p
            })
            .collect()
    }
}

/// XOR with a multi-byte key, as the incident-2 style scripts do.
pub fn xor(data: &[u8], key: &[u8]) -> Vec<u8> {
    data.iter()
        .zip(key.iter().cycle())
        .map(|(a, b)| a ^ b)
        .collect()
}

impl Sim {
    /// fork+exec where the kernel's exe inode is `ino` (e.g. the interpreter of a `#!` file).
    pub fn spawn_with_exe_inode(
        &mut self,
        pid: u64,
        ppid: u64,
        name: &str,
        exe: &str,
        ino: u64,
    ) -> Vec<Detection> {
        let parent = self.procs.get(&ppid).cloned().expect("parent");
        self.procs.insert(
            pid,
            Proc {
                pid,
                ppid,
                ..parent.clone()
            },
        );
        self.emit(pid, "clone", 0, None, json!({}));
        self.add_proc(pid, ppid, name, exe, &[], &parent.cwd);
        self.emit(
            pid,
            "execve",
            0,
            None,
            json!({"exe": exe, "filename": exe, "exe_ino": ino, "exe_dev": DEV}),
        )
    }
}
