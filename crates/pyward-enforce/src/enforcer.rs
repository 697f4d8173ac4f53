//! Loading the enforcement programs, feeding their maps, and reading their records.
//!
//! The skeleton borrows its object storage, so the BPF lifetime lives on one thread owned
//! by [`Enforcer`]: it loads, attaches, then polls the ring buffer and serves cgroup attach
//! requests until the enforcer is dropped; dropping the skeleton detaches every program
//! (nothing is pinned, nothing outlives the process). Maps are fed from the caller's thread
//! through duplicated map fds.

use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ipnet::IpNet;
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, RingBufferBuilder};

use crate::event::{EnforcementAction, EnforcementEvent, EnforcementKind};
use crate::skel::{EnforceSkel, EnforceSkelBuilder};
use pyward_sensor::record::kernel_dev;

/// Which tracepoint program type carries the exec/open/ransomware programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramMode {
    /// BTF-typed tracepoints (`tp_btf/`), preferred.
    TpBtf,
    /// Raw tracepoints (`raw_tp/`), the fallback.
    RawTp,
}

impl std::fmt::Display for ProgramMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProgramMode::TpBtf => "tp_btf",
            ProgramMode::RawTp => "raw_tp",
        })
    }
}

/// State of one enforcement mechanism, for the start-up log and `--stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Not requested.
    Off,
    /// In force; how.
    Enforcing(String),
    /// Loaded in dry-run: records what it would do, does nothing.
    DryRun(String),
    /// Loaded but not yet in force (network: no cgroup attached yet).
    Pending(String),
    /// Requested but could not load: why.
    Unavailable(String),
}

impl Mode {
    /// Whether the mechanism stops things right now.
    pub fn is_enforcing(&self) -> bool {
        matches!(self, Mode::Enforcing(_))
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Off => f.write_str("off"),
            Mode::Enforcing(how) => write!(f, "ENFORCING: {how}"),
            Mode::DryRun(how) => write!(f, "dry run (report only): {how}"),
            Mode::Pending(why) => write!(f, "loaded, NOT YET IN FORCE: {why}"),
            Mode::Unavailable(why) => write!(f, "UNAVAILABLE (not enforced!): {why}"),
        }
    }
}

/// What loaded, per mechanism.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnforceReport {
    /// Program type of the tracepoint programs (`None` if none loaded).
    pub program_mode: Option<ProgramMode>,
    /// Why a less preferred combination is in use.
    pub fallback_reason: Option<String>,
    pub network: Mode,
    pub exec: Mode,
    pub open: Mode,
    pub ransomware: Mode,
    /// cgroups the network programs are attached to.
    pub cgroups: Vec<PathBuf>,
}

impl EnforceReport {
    /// Whether a requested mechanism could not load.
    pub fn degraded(&self) -> bool {
        [&self.network, &self.exec, &self.open, &self.ransomware]
            .iter()
            .any(|m| matches!(m, Mode::Unavailable(_)))
    }
}

impl std::fmt::Display for EnforceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.program_mode {
            Some(m) => writeln!(f, "pyward in-kernel enforcement (tracepoints: {m}):")?,
            None => writeln!(f, "pyward in-kernel enforcement (no tracepoint programs):")?,
        }
        writeln!(f, "  network    {}", self.network)?;
        writeln!(f, "  exec       {}", self.exec)?;
        writeln!(f, "  open       {}", self.open)?;
        write!(f, "  ransomware {}", self.ransomware)?;
        if let Some(r) = &self.fallback_reason {
            write!(f, "\n  fallback because: {r}")?;
        }
        if self.degraded() {
            write!(
                f,
                "\n  WARNING: enforcement is DEGRADED: a requested mechanism is not enforced"
            )?;
        }
        Ok(())
    }
}

/// Ransomware thresholds (a process, or a scoped tree, is killed when both counts are
/// reached within the window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RansomwareThresholds {
    /// Encrypted-looking first writes at offset 0 (distinct files) in the window.
    pub encrypted_writes: u32,
    /// unlink/rename operations after an encrypted write, in the window.
    pub destructive_ops: u32,
    /// Window length in seconds (1..=8).
    pub window_secs: u32,
    /// Distinct byte values among the first 64 bytes for a write to look encrypted
    /// (random data: about 57 on average; English text: 25–35).
    pub distinct_bytes: u32,
}

impl Default for RansomwareThresholds {
    /// Kills an encrypt-then-delete loop at its third encrypted file (two originals lost),
    /// see docs/benchmarks.md.
    fn default() -> Self {
        RansomwareThresholds {
            encrypted_writes: 3,
            destructive_ops: 2,
            window_secs: 5,
            distinct_bytes: 44,
        }
    }
}

/// How to start enforcement.
#[derive(Clone, Debug)]
pub struct EnforceOptions {
    /// Deny connect/sendmsg to blocked networks (cgroup sock_addr programs).
    pub network: bool,
    /// Kill execs of drifted files (and interpreters opening drifted scripts).
    pub exec: bool,
    /// Kill opens of protected files by programs not allowed to read them.
    pub open: bool,
    /// Kill ransomware-like processes.
    pub ransomware: bool,
    /// Attach the network programs to this cgroup v2 directory at start (e.g.
    /// [`crate::cgroup2_mount`] for the whole host); more with [`Enforcer::attach_cgroup`].
    pub cgroup: Option<PathBuf>,
    /// Start scoped: nothing is enforced until [`Enforcer::scope_to`] or
    /// [`Enforcer::spawn_scoped`] names a process tree (`pyward run`, tests). Network
    /// programs also apply to any process of the attached cgroups when false.
    pub scoped: bool,
    /// Report what would be stopped, stop nothing.
    pub dry_run: bool,
    /// Fail instead of starting degraded when a requested mechanism cannot load.
    pub require_all: bool,
    pub thresholds: RansomwareThresholds,
    /// Force a tracepoint program type (tests); `None` = tp_btf, then raw_tp.
    pub mode: Option<ProgramMode>,
    /// Capacity of the event queue (events; default 4096).
    pub queue: Option<usize>,
}

impl Default for EnforceOptions {
    fn default() -> Self {
        EnforceOptions {
            network: true,
            exec: true,
            open: true,
            ransomware: true,
            cgroup: None,
            scoped: false,
            dry_run: false,
            require_all: false,
            thresholds: RansomwareThresholds::default(),
            mode: None,
            queue: None,
        }
    }
}

/// Why enforcement could not start or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    #[error(
        "cannot load pyward's enforcement programs ({0}); they need root (CAP_BPF, \
         CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN) and a kernel with BTF \
         (/sys/kernel/btf/vmlinux) and BPF ring buffers (5.8+)"
    )]
    Load(String),
    #[error("enforcement requested but not available: {0}")]
    Degraded(String),
    #[error("enforcement map {map}: {msg}")]
    Map { map: &'static str, msg: String },
    #[error("cannot attach network enforcement to cgroup {path}: {msg}")]
    Cgroup { path: PathBuf, msg: String },
    #[error("{0}")]
    Input(String),
    #[error("the enforcement thread stopped unexpectedly")]
    Thread,
}

/// Counters: kernel ones summed over CPUs, then the reader's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnforceStats {
    pub network_denied: u64,
    pub exec_killed: u64,
    pub open_killed: u64,
    pub ransomware_killed: u64,
    pub tree_killed: u64,
    /// Records lost because the ring buffer was full (the action itself was still taken).
    pub ring_drops: u64,
    /// Inodes recorded as written since start.
    pub drift_tracked: u64,
    pub encrypted_writes: u64,
    pub destructive_ops: u64,
    pub kill_failed: u64,
    /// Scoped processes not followed because the map was full.
    pub tracked_full: u64,
    pub parse_errors: u64,
    pub queue_drops: u64,
    pub delivered: u64,
}

impl std::fmt::Display for EnforceStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "enforcement: {} connections denied, {} execs killed, {} opens killed, {} \
             ransomware kills ({} tree members), {} kill failures; {} drifted inodes tracked, \
             {} encrypted writes, {} destructive ops; {} ring drops, {} queue drops",
            self.network_denied,
            self.exec_killed,
            self.open_killed,
            self.ransomware_killed,
            self.tree_killed,
            self.kill_failed,
            self.drift_tracked,
            self.encrypted_writes,
            self.destructive_ops,
            self.ring_drops,
            self.queue_drops
        )
    }
}

/// What [`Enforcer::protect_paths`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtectSummary {
    /// Regular files (inodes) now protected.
    pub files: usize,
    /// Paths that do not exist or cannot be read (not protected).
    pub missing: Vec<PathBuf>,
}

/// Interpreters whose script argument is checked for drift (comms starting with
/// "python" always are).
pub const DEFAULT_INTERPRETERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "perl", "ruby", "node",
    "nodejs", "php", "lua", "tclsh", "Rscript", "pwsh", "awk", "gawk", "mawk",
];

/// Programs that legitimately read SSH and GPG keys.
pub const SSH_GPG_COMMS: &[&str] = &[
    "ssh",
    "sshd",
    "ssh-add",
    "ssh-agent",
    "ssh-keygen",
    "scp",
    "sftp",
    "sshd-session",
    "gpg",
    "gpg2",
    "gpg-agent",
    "gpgsm",
    "scdaemon",
    "keyboxd",
];

/// Package managers and build tools that write and run programs during builds: candidates
/// for [`Enforcer::allow_exec_comms`] (their descendants are allowed too).
pub const BUILD_TOOL_COMMS: &[&str] = &["pip", "pip3", "uv", "poetry", "pdm", "hatch", "conda"];

/// `~/.ssh` and `~/.gnupg` of each home.
pub fn key_dirs(homes: &[PathBuf]) -> Vec<PathBuf> {
    homes
        .iter()
        .flat_map(|h| [h.join(".ssh"), h.join(".gnupg")])
        .collect()
}

const M_NET: u32 = 1;
const M_EXEC: u32 = 2;
const M_OPEN: u32 = 4;
const M_RANSOM: u32 = 8;
const AL_EXEC: u32 = 1;
const AL_RANSOM: u32 = 2;
const CONFIG_SIZE: usize = 48;
/// Directory depth walked under a protected directory.
const PROTECT_DEPTH: usize = 4;
/// Files protected per call at most (the kernel map holds 16384).
const PROTECT_MAX: usize = 16384;

#[derive(Clone, Copy, Debug)]
struct Config {
    scoped: bool,
    mech: u32,
    dry_run: bool,
    thresholds: RansomwareThresholds,
    start_sec: i64,
    start_nsec: u32,
}

impl Config {
    fn bytes(&self) -> [u8; CONFIG_SIZE] {
        let mut b = [0u8; CONFIG_SIZE];
        let t = &self.thresholds;
        let words = [
            std::process::id(),
            u32::from(self.scoped),
            self.mech,
            u32::from(self.dry_run),
            t.encrypted_writes.max(1),
            t.destructive_ops,
            t.window_secs.clamp(1, 8),
            t.distinct_bytes.min(64),
        ];
        for (i, w) in words.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
        }
        b[32..40].copy_from_slice(&self.start_sec.to_ne_bytes());
        b[40..44].copy_from_slice(&self.start_nsec.to_ne_bytes());
        b
    }
}

struct Maps {
    config: MapHandle,
    block4: MapHandle,
    block6: MapHandle,
    protected: MapHandle,
    open_allow: MapHandle,
    allow: MapHandle,
    interpreters: MapHandle,
    tracked: MapHandle,
    doomed: MapHandle,
    stats: MapHandle,
}

enum Cmd {
    Attach(PathBuf, mpsc::Sender<Result<(), EnforceError>>),
}

#[derive(Default)]
struct Counters {
    parse_errors: AtomicU64,
    queue_drops: AtomicU64,
    delivered: AtomicU64,
}

/// Running in-kernel enforcement. Dropping it detaches every program.
pub struct Enforcer {
    rx: Receiver<EnforcementEvent>,
    cmd: mpsc::Sender<Cmd>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    report: Mutex<EnforceReport>,
    maps: Maps,
    config: Mutex<Config>,
    next_group: Mutex<u32>,
    counters: Arc<Counters>,
}

struct Ready {
    maps: Maps,
    report: EnforceReport,
}

fn mapped(map: &'static str) -> impl Fn(libbpf_rs::Error) -> EnforceError {
    move |e| EnforceError::Map {
        map,
        msg: e.to_string(),
    }
}

/// The comm as the kernel stores it: at most 15 bytes, NUL-padded to 16.
fn comm_key(comm: &str) -> Result<[u8; 16], EnforceError> {
    let b = comm.as_bytes();
    if b.is_empty() || b.contains(&0) {
        return Err(EnforceError::Input(format!(
            "invalid program name {comm:?}: give a non-empty command name (as in ps -o comm)"
        )));
    }
    let mut k = [0u8; 16];
    let n = b.len().min(15);
    k[..n].copy_from_slice(&b[..n]);
    Ok(k)
}

fn or_bits(map: &MapHandle, name: &'static str, key: &[u8], bits: u32) -> Result<(), EnforceError> {
    let old = map
        .lookup(key, MapFlags::ANY)
        .map_err(mapped(name))?
        .and_then(|v| {
            v.get(..4)
                .and_then(|s| s.try_into().ok())
                .map(u32::from_ne_bytes)
        })
        .unwrap_or(0);
    map.update(key, &(old | bits).to_ne_bytes(), MapFlags::ANY)
        .map_err(mapped(name))
}

fn lpm_key(net: &IpNet) -> (bool, Vec<u8>) {
    let net = net.trunc();
    let mut k = u32::from(net.prefix_len()).to_ne_bytes().to_vec();
    match net.addr() {
        IpAddr::V4(a) => {
            k.extend_from_slice(&a.octets());
            (false, k)
        }
        IpAddr::V6(a) => {
            k.extend_from_slice(&a.octets());
            (true, k)
        }
    }
}

impl Enforcer {
    /// Load the programs, configure them and attach; enforcement is in force on return
    /// (network once a cgroup is attached).
    pub fn start(opts: EnforceOptions) -> Result<Enforcer, EnforceError> {
        let (tx, rx) = mpsc::sync_channel(opts.queue.unwrap_or(4096).max(1));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Ready, EnforceError>>();
        let (cmd_tx, cmd_rx) = mpsc::channel::<Cmd>();
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (start_sec, start_nsec) = realtime_now();
        let mut mech = 0;
        for (on, bit) in [
            (opts.network, M_NET),
            (opts.exec, M_EXEC),
            (opts.open, M_OPEN),
            (opts.ransomware, M_RANSOM),
        ] {
            if on {
                mech |= bit;
            }
        }
        let config = Config {
            scoped: opts.scoped,
            mech,
            dry_run: opts.dry_run,
            thresholds: opts.thresholds,
            start_sec,
            start_nsec,
        };
        let thread = {
            let stop = stop.clone();
            let counters = counters.clone();
            let opts = opts.clone();
            std::thread::Builder::new()
                .name("pyward-enforce".into())
                .spawn(move || run_thread(opts, config, tx, ready_tx, cmd_rx, stop, counters))
                .map_err(|e| EnforceError::Load(format!("cannot start the reader thread: {e}")))?
        };
        let ready = match ready_rx.recv() {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(EnforceError::Thread);
            }
        };
        let mut config = config;
        // Mechanisms that did not load stay off in the kernel too.
        for (m, bit) in [
            (&ready.report.network, M_NET),
            (&ready.report.exec, M_EXEC),
            (&ready.report.open, M_OPEN),
            (&ready.report.ransomware, M_RANSOM),
        ] {
            if matches!(m, Mode::Unavailable(_) | Mode::Off) {
                config.mech &= !bit;
            }
        }
        let enforcer = Enforcer {
            rx,
            cmd: cmd_tx,
            stop,
            thread: Some(thread),
            report: Mutex::new(ready.report),
            maps: ready.maps,
            config: Mutex::new(config),
            next_group: Mutex::new(0),
            counters,
        };
        enforcer.write_config(&config)?;
        if opts.require_all && enforcer.report().degraded() {
            return Err(EnforceError::Degraded(enforcer.report().to_string()));
        }
        if let Some(cg) = &opts.cgroup {
            if opts.network {
                enforcer.attach_cgroup(cg)?;
            }
        }
        Ok(enforcer)
    }

    /// What is in force.
    pub fn report(&self) -> EnforceReport {
        self.report
            .lock()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn write_config(&self, c: &Config) -> Result<(), EnforceError> {
        self.maps
            .config
            .update(&0u32.to_ne_bytes(), &c.bytes(), MapFlags::ANY)
            .map_err(mapped("enf_config"))
    }

    fn update_config(&self, f: impl FnOnce(&mut Config)) -> Result<(), EnforceError> {
        let mut g = self.config.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
        let c = *g;
        drop(g);
        self.write_config(&c)
    }

    /// Deny `connect()`/`sendmsg()` to these networks (IPv4-mapped IPv6 destinations
    /// match the IPv4 list). Returns how many entries were added.
    pub fn block_networks(&self, nets: &[IpNet]) -> Result<usize, EnforceError> {
        for n in nets {
            let (v6, key) = lpm_key(n);
            let (map, name) = if v6 {
                (&self.maps.block6, "block6")
            } else {
                (&self.maps.block4, "block4")
            };
            map.update(&key, &[1u8], MapFlags::ANY)
                .map_err(|e| EnforceError::Map {
                    map: name,
                    msg: format!("cannot block {n}: {e} (at most 65536 networks per family)"),
                })?;
        }
        Ok(nets.len())
    }

    /// Remove networks from the blocklist (absent ones are ignored).
    pub fn unblock_networks(&self, nets: &[IpNet]) -> Result<(), EnforceError> {
        for n in nets {
            let (v6, key) = lpm_key(n);
            let map = if v6 {
                &self.maps.block6
            } else {
                &self.maps.block4
            };
            let _ = map.delete(&key);
        }
        Ok(())
    }

    /// Protect the regular files at `paths` (directories: the files under them, symlinks
    /// inside not followed, depth 4): an open by a program whose comm is not in
    /// `allowed_comms` is killed before it returns. Protection is by (device, inode), so a
    /// file replaced later (new inode) must be protected again.
    pub fn protect_paths(
        &self,
        paths: &[PathBuf],
        allowed_comms: &[&str],
    ) -> Result<ProtectSummary, EnforceError> {
        let keys: Vec<[u8; 16]> = allowed_comms
            .iter()
            .map(|c| comm_key(c))
            .collect::<Result<_, _>>()?;
        let bit = {
            let mut g = self.next_group.lock().unwrap_or_else(|p| p.into_inner());
            if *g >= 32 {
                return Err(EnforceError::Input(
                    "at most 32 protect_paths calls (allowlist groups) per enforcer; \
                     group paths that share an allowlist into one call"
                        .into(),
                ));
            }
            let b = 1u32 << *g;
            *g += 1;
            b
        };
        let mut summary = ProtectSummary::default();
        let mut files = Vec::new();
        for p in paths {
            collect_files(p, 0, true, &mut files, &mut summary.missing);
        }
        if files.len() > PROTECT_MAX {
            return Err(EnforceError::Input(format!(
                "{} files to protect, at most {PROTECT_MAX}: protect narrower paths",
                files.len()
            )));
        }
        for k in &keys {
            or_bits(&self.maps.open_allow, "open_allow", k, bit)?;
        }
        for (dev, ino) in files {
            let mut key = [0u8; 16];
            key[..8].copy_from_slice(&kernel_dev(dev).to_ne_bytes());
            key[8..].copy_from_slice(&ino.to_ne_bytes());
            or_bits(&self.maps.protected, "protected_inodes", &key, bit)?;
            summary.files += 1;
        }
        Ok(summary)
    }

    /// Processes with one of these comms, or descending from one (8 generations), may
    /// exec drifted files (e.g. [`BUILD_TOOL_COMMS`] during builds).
    pub fn allow_exec_comms(&self, comms: &[&str]) -> Result<(), EnforceError> {
        for c in comms {
            or_bits(&self.maps.allow, "allow", &comm_key(c)?, AL_EXEC)?;
        }
        Ok(())
    }

    /// Processes with one of these comms, or descending from one, are never killed as
    /// ransomware.
    pub fn allow_ransomware_comms(&self, comms: &[&str]) -> Result<(), EnforceError> {
        for c in comms {
            or_bits(&self.maps.allow, "allow", &comm_key(c)?, AL_RANSOM)?;
        }
        Ok(())
    }

    /// Add interpreters for the drifted-script rule (beyond [`DEFAULT_INTERPRETERS`]).
    pub fn add_interpreters(&self, comms: &[&str]) -> Result<(), EnforceError> {
        for c in comms {
            self.maps
                .interpreters
                .update(&comm_key(c)?, &[1u8], MapFlags::ANY)
                .map_err(mapped("interpreters"))?;
        }
        Ok(())
    }

    /// Change the ransomware thresholds (in force immediately).
    pub fn set_ransomware_thresholds(&self, t: RansomwareThresholds) -> Result<(), EnforceError> {
        if t.encrypted_writes == 0 || !(1..=8).contains(&t.window_secs) || t.distinct_bytes > 64 {
            return Err(EnforceError::Input(format!(
                "invalid ransomware thresholds {t:?}: encrypted_writes >= 1, window_secs \
                 1..=8, distinct_bytes <= 64"
            )));
        }
        self.update_config(|c| c.thresholds = t)
    }

    /// Attach the network programs to a cgroup v2 directory (the processes in it and
    /// below). Detached when the enforcer is dropped.
    pub fn attach_cgroup(&self, path: &Path) -> Result<(), EnforceError> {
        let (tx, rx) = mpsc::channel();
        self.cmd
            .send(Cmd::Attach(path.to_path_buf(), tx))
            .map_err(|_| EnforceError::Thread)?;
        rx.recv_timeout(Duration::from_secs(30))
            .map_err(|_| EnforceError::Thread)??;
        let mut r = self.report.lock().unwrap_or_else(|p| p.into_inner());
        r.cgroups.push(path.to_path_buf());
        let list = r
            .cgroups
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let how = format!("cgroup connect4/connect6/sendmsg4/sendmsg6 -> EPERM on {list}");
        if matches!(r.network, Mode::Pending(_) | Mode::Enforcing(_)) {
            r.network = Mode::Enforcing(how);
        } else if matches!(r.network, Mode::DryRun(_)) {
            r.network = Mode::DryRun(how);
        }
        Ok(())
    }

    /// Enforce only on `pid` and its descendants from now on (forks followed in the kernel).
    /// Children `pid` already has are not covered: scope before it forks, or use
    /// [`Enforcer::spawn_scoped`].
    pub fn scope_to(&self, pid: u32) -> Result<(), EnforceError> {
        let _ = self.maps.doomed.delete(&pid.to_ne_bytes());
        self.maps
            .tracked
            .update(&pid.to_ne_bytes(), &pid.to_ne_bytes(), MapFlags::ANY)
            .map_err(mapped("tracked"))?;
        self.update_config(|c| c.scoped = true)
    }

    /// Spawn `cmd` already in scope: the child adds itself to the scope before it execs, so
    /// even its first instruction is covered. Switches to scoped enforcement.
    pub fn spawn_scoped(
        &self,
        cmd: &mut std::process::Command,
    ) -> std::io::Result<std::process::Child> {
        use std::os::unix::process::CommandExt;
        self.update_config(|c| c.scoped = true)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let map_fd = self.maps.tracked.as_fd().as_raw_fd();
        let doomed_fd = self.maps.doomed.as_fd().as_raw_fd();
        // SAFETY: the hook only makes raw getpid(2) and bpf(2) syscalls on memory of its own
        // stack; both are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                let pid = libc::getpid() as u32;
                // A reused pid must not inherit an old tree-kill mark (ENOENT is fine).
                let _ = pyward_sensor::rawmap::map_delete_raw(doomed_fd, &pid.to_ne_bytes());
                pyward_sensor::rawmap::map_update_raw(
                    map_fd,
                    &pid.to_ne_bytes(),
                    &pid.to_ne_bytes(),
                )
            });
        }
        cmd.spawn()
    }

    /// SIGKILL every live process of the scoped tree rooted at `root`. The enforcer's own
    /// thread already does this after a ransomware kill (members blocked in a syscall would
    /// otherwise only die when it returns). Returns how many were signalled.
    pub fn kill_tree(&self, root: u32) -> usize {
        kill_tree_in(&self.maps.tracked, root)
    }

    /// Forget a scoped root (its tree-kill mark and its entry) once it is gone.
    pub fn release_root(&self, root: u32) {
        let _ = self.maps.doomed.delete(&root.to_ne_bytes());
        let _ = self.maps.tracked.delete(&root.to_ne_bytes());
    }

    /// The next record, waiting at most `timeout`; `Err(Disconnected)` once stopped.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<EnforcementEvent, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// The next record if one is queued (never blocks).
    pub fn try_recv(&self) -> Option<EnforcementEvent> {
        self.rx.try_recv().ok()
    }

    /// Current counters.
    pub fn stats(&self) -> EnforceStats {
        let sum = |idx: u32| pyward_sensor::rawmap::percpu_sum(&self.maps.stats, idx);
        EnforceStats {
            network_denied: sum(0),
            exec_killed: sum(1),
            open_killed: sum(2),
            ransomware_killed: sum(3),
            tree_killed: sum(4),
            ring_drops: sum(5),
            drift_tracked: sum(6),
            encrypted_writes: sum(7),
            destructive_ops: sum(8),
            kill_failed: sum(9),
            tracked_full: sum(10),
            parse_errors: self.counters.parse_errors.load(Ordering::Relaxed),
            queue_drops: self.counters.queue_drops.load(Ordering::Relaxed),
            delivered: self.counters.delivered.load(Ordering::Relaxed),
        }
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Enforcer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

use std::os::fd::AsFd;

/// SIGKILL the live members of a scoped tree (the scope map holds them while they live).
fn kill_tree_in(tracked: &MapHandle, root: u32) -> usize {
    let mut n = 0;
    for k in tracked.keys() {
        let Some(pid) = k
            .get(..4)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_ne_bytes)
        else {
            continue;
        };
        let r = tracked
            .lookup(&k, MapFlags::ANY)
            .ok()
            .flatten()
            .and_then(|v| {
                v.get(..4)
                    .and_then(|s| s.try_into().ok())
                    .map(u32::from_ne_bytes)
            });
        if r == Some(root) && pid > 1 && pid != std::process::id() {
            // SAFETY: kill(2) of a pid the kernel keeps in the scope map while it lives.
            if unsafe { libc::kill(pid as i32, libc::SIGKILL) } == 0 {
                n += 1;
            }
        }
    }
    n
}

/// Regular files at `p` as (st_dev, st_ino); `top`: `p` was named by the caller (a symlink
/// there is followed; below it, symlinks are skipped so protection never leaves the tree).
fn collect_files(
    p: &Path,
    depth: usize,
    top: bool,
    out: &mut Vec<(u64, u64)>,
    missing: &mut Vec<PathBuf>,
) {
    use std::os::unix::fs::MetadataExt;
    if out.len() > PROTECT_MAX {
        return;
    }
    let meta = if top {
        std::fs::metadata(p)
    } else {
        std::fs::symlink_metadata(p)
    };
    let Ok(meta) = meta else {
        if top {
            missing.push(p.to_path_buf());
        }
        return;
    };
    if meta.is_file() {
        out.push((meta.dev(), meta.ino()));
    } else if meta.is_dir() && depth < PROTECT_DEPTH {
        let Ok(rd) = std::fs::read_dir(p) else {
            if top {
                missing.push(p.to_path_buf());
            }
            return;
        };
        for ent in rd.flatten() {
            collect_files(&ent.path(), depth + 1, false, out, missing);
        }
    }
}

fn realtime_now() -> (i64, u32) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec, u32::try_from(ts.tv_nsec).unwrap_or(0))
}

/// A combination of programs to try: tracepoint type (None: none) and cgroup programs.
#[derive(Clone, Copy, Debug)]
struct Plan {
    tp: Option<ProgramMode>,
    net: bool,
}

fn plans(opts: &EnforceOptions) -> Vec<Plan> {
    let want_tp = opts.exec || opts.open || opts.ransomware;
    let modes: Vec<ProgramMode> = match opts.mode {
        Some(m) => vec![m],
        None => vec![ProgramMode::TpBtf, ProgramMode::RawTp],
    };
    let mut v = Vec::new();
    if want_tp {
        for &m in &modes {
            v.push(Plan {
                tp: Some(m),
                net: opts.network,
            });
        }
        if opts.network {
            for &m in &modes {
                v.push(Plan {
                    tp: Some(m),
                    net: false,
                });
            }
            v.push(Plan {
                tp: None,
                net: true,
            });
        }
    } else if opts.network {
        v.push(Plan {
            tp: None,
            net: true,
        });
    }
    v
}

fn load<'a>(
    storage: &'a mut MaybeUninit<libbpf_rs::OpenObject>,
    plan: Plan,
    config: &Config,
) -> Result<EnforceSkel<'a>, String> {
    let mut open = EnforceSkelBuilder::default()
        .open(storage)
        .map_err(|e| format!("open: {e}"))?;
    let btf = plan.tp == Some(ProgramMode::TpBtf);
    let raw = plan.tp == Some(ProgramMode::RawTp);
    for p in [
        &mut open.progs.btf_sys_exit,
        &mut open.progs.btf_exec,
        &mut open.progs.btf_fork,
        &mut open.progs.btf_exit,
    ] {
        p.set_autoload(btf);
    }
    for p in [
        &mut open.progs.raw_sys_exit,
        &mut open.progs.raw_exec,
        &mut open.progs.raw_fork,
        &mut open.progs.raw_exit,
    ] {
        p.set_autoload(raw);
    }
    for p in [
        &mut open.progs.enf_connect4,
        &mut open.progs.enf_connect6,
        &mut open.progs.enf_sendmsg4,
        &mut open.progs.enf_sendmsg6,
    ] {
        p.set_autoload(plan.net);
    }
    let what = match (plan.tp, plan.net) {
        (Some(m), true) => format!("{m} + cgroup sock_addr"),
        (Some(m), false) => m.to_string(),
        (None, _) => "cgroup sock_addr".to_string(),
    };
    let mut skel = open.load().map_err(|e| format!("load ({what}): {e}"))?;
    // Configure before attaching, so the first event already sees the configuration.
    skel.maps
        .enf_config
        .update(&0u32.to_ne_bytes(), &config.bytes(), MapFlags::ANY)
        .map_err(|e| format!("config map: {e}"))?;
    for c in DEFAULT_INTERPRETERS {
        if let Ok(k) = comm_key(c) {
            skel.maps
                .interpreters
                .update(&k, &[1u8], MapFlags::ANY)
                .map_err(|e| format!("interpreters map: {e}"))?;
        }
    }
    if plan.tp.is_some() {
        skel.attach().map_err(|e| format!("attach ({what}): {e}"))?;
    }
    Ok(skel)
}

fn handles(skel: &EnforceSkel<'_>) -> Result<Maps, EnforceError> {
    let h = |m: &libbpf_rs::MapMut<'_>, name: &'static str| {
        MapHandle::try_from(m).map_err(mapped(name))
    };
    Ok(Maps {
        config: h(&skel.maps.enf_config, "enf_config")?,
        block4: h(&skel.maps.block4, "block4")?,
        block6: h(&skel.maps.block6, "block6")?,
        protected: h(&skel.maps.protected_inodes, "protected_inodes")?,
        open_allow: h(&skel.maps.open_allow, "open_allow")?,
        allow: h(&skel.maps.allow, "allow")?,
        interpreters: h(&skel.maps.interpreters, "interpreters")?,
        tracked: h(&skel.maps.tracked, "tracked")?,
        doomed: h(&skel.maps.doomed, "doomed")?,
        stats: h(&skel.maps.enf_stats, "enf_stats")?,
    })
}

fn report_for(opts: &EnforceOptions, plan: Plan, failure: Option<String>) -> EnforceReport {
    let unavailable = || {
        Mode::Unavailable(
            failure
                .clone()
                .unwrap_or_else(|| "the kernel refused the programs".into()),
        )
    };
    let wrap = |s: String| {
        if opts.dry_run {
            Mode::DryRun(s)
        } else {
            Mode::Enforcing(s)
        }
    };
    let tp = |on: bool, how: &str| match (on, plan.tp) {
        (false, _) => Mode::Off,
        (true, Some(m)) => wrap(format!("{how} ({m})")),
        (true, None) => unavailable(),
    };
    let network = match (opts.network, plan.net) {
        (false, _) => Mode::Off,
        (true, true) => Mode::Pending(
            "cgroup connect4/connect6/sendmsg4/sendmsg6 loaded; attach a cgroup".into(),
        ),
        (true, false) => unavailable(),
    };
    EnforceReport {
        program_mode: plan.tp,
        fallback_reason: failure.clone(),
        network,
        exec: tp(
            opts.exec,
            "SIGKILL at sched_process_exec (drifted, memfd, deleted) and at an interpreter's \
             open of its drifted script",
        ),
        open: tp(
            opts.open,
            "SIGKILL at sys_exit of open of a protected inode",
        ),
        ransomware: tp(
            opts.ransomware,
            "SIGKILL inside the write/unlink/rename that crosses the thresholds",
        ),
        cgroups: Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_thread(
    opts: EnforceOptions,
    config: Config,
    tx: SyncSender<EnforcementEvent>,
    ready: mpsc::Sender<Result<Ready, EnforceError>>,
    cmds: Receiver<Cmd>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let mut first_failure: Option<String> = None;
    let plans = plans(&opts);
    if plans.is_empty() {
        let _ = ready.send(Err(EnforceError::Input(
            "no enforcement mechanism requested (network, exec, open, ransomware all off)".into(),
        )));
        return;
    }
    for (i, plan) in plans.iter().enumerate() {
        let mut storage = MaybeUninit::uninit();
        let skel = match load(&mut storage, *plan, &config) {
            Ok(s) => s,
            Err(e) => {
                first_failure.get_or_insert(e);
                continue;
            }
        };
        let maps = match handles(&skel) {
            Ok(m) => m,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let report = report_for(
            &opts,
            *plan,
            if i == 0 { None } else { first_failure.clone() },
        );
        let offset = pyward_sensor::clock::offset_ns();
        let tree_map = match MapHandle::try_from(&skel.maps.tracked) {
            Ok(m) => m,
            Err(e) => {
                let _ = ready.send(Err(mapped("tracked")(e)));
                return;
            }
        };
        let mut builder = RingBufferBuilder::new();
        let cb_counters = counters.clone();
        let cb_tx = tx.clone();
        if let Err(e) = builder.add(&skel.maps.enf_events, move |data: &[u8]| {
            match EnforcementEvent::parse(data, offset) {
                Ok(ev) => {
                    if ev.kind == EnforcementKind::RansomwareKilled
                        && ev.action == EnforcementAction::Killed
                    {
                        // Members of a scoped tree blocked in a syscall die now, not when
                        // (if ever) the syscall returns.
                        // Map iteration can skip keys deleted meanwhile: repeat until a
                        // pass finds no live member (bounded).
                        for _ in 0..4 {
                            if kill_tree_in(&tree_map, ev.root) == 0 {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(2));
                        }
                    }
                    match cb_tx.try_send(ev) {
                        Ok(()) => {
                            cb_counters.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TrySendError::Full(_)) => {
                            cb_counters.queue_drops.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TrySendError::Disconnected(_)) => return 1,
                    }
                }
                Err(_) => {
                    cb_counters.parse_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            0
        }) {
            let _ = ready.send(Err(EnforceError::Load(format!("ring buffer: {e}"))));
            return;
        }
        let ring = match builder.build() {
            Ok(r) => r,
            Err(e) => {
                let _ = ready.send(Err(EnforceError::Load(format!("ring buffer: {e}"))));
                return;
            }
        };
        if ready.send(Ok(Ready { maps, report })).is_err() {
            return;
        }
        let mut links: Vec<Link> = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let _ = ring.poll(Duration::from_millis(20));
            while let Ok(cmd) = cmds.try_recv() {
                match cmd {
                    Cmd::Attach(path, reply) => {
                        let r = attach(&skel, plan.net, &path);
                        let r = r.map(|mut l| links.append(&mut l));
                        let _ = reply.send(r);
                    }
                }
            }
        }
        let _ = ring.consume();
        drop(links);
        drop(ring);
        drop(skel);
        return;
    }
    let e = first_failure.unwrap_or_else(|| "no program combination to try".into());
    let _ = ready.send(Err(EnforceError::Load(e)));
}

fn attach(skel: &EnforceSkel<'_>, loaded: bool, path: &Path) -> Result<Vec<Link>, EnforceError> {
    let err = |msg: String| EnforceError::Cgroup {
        path: path.to_path_buf(),
        msg,
    };
    if !loaded {
        return Err(err("the network programs did not load".into()));
    }
    let dir = std::fs::File::open(path).map_err(|e| {
        err(format!(
            "{e}; give a cgroup v2 directory (see /proc/self/mountinfo, type cgroup2)"
        ))
    })?;
    let fd = dir.as_raw_fd();
    let mut links = Vec::new();
    for (name, p) in [
        ("connect4", &skel.progs.enf_connect4),
        ("connect6", &skel.progs.enf_connect6),
        ("sendmsg4", &skel.progs.enf_sendmsg4),
        ("sendmsg6", &skel.progs.enf_sendmsg6),
    ] {
        let l = p
            .attach_cgroup(fd)
            .map_err(|e| err(format!("{name}: {e} (is it a cgroup v2 directory?)")))?;
        links.push(l);
    }
    Ok(links)
}
