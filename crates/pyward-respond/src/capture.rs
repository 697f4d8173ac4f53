//! Capture: a bounded ring of recent events and, on trigger at time t, a capture file with
//! the events from `t - before` to `t + after`, in the replay format (docs/events.md) that
//! `pyward rules replay` reads.
//!
//! Feed every event to [`Capturer::record`] *before* evaluating rules on it, so the event
//! that triggers a capture is in it. The ring keeps the events themselves (their process
//! records are shared with the sensor): nothing is serialised unless a capture is open, and
//! a capture file writes each process once ([`ReplayWriter`]), so a deep process tree does
//! not repeat its whole ancestry on every line. Time is the events' own time (ns since the epoch);
//! [`Capturer::tick`] takes the current time from the caller, so the window closes even
//! when no more events come (and tests drive it with a manual clock).
//!
//! Overlapping triggers **extend** the open capture (one file covers the union of the
//! windows, each trigger listed in [`CaptureInfo::triggers`]), up to
//! [`CaptureConfig::max_duration`]; a trigger after the open window has closed starts a new
//! file. Files are created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600) relative to
//! a descriptor of the capture directory opened once, so nothing is overwritten and no
//! symlink is followed.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use pyward_rules::event::replay::{ArgValue, ReplayProcess};
use pyward_rules::{Event, ReplayEvent, ReplayWriter};

/// Capture settings; [`CaptureConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// Directory the capture files are created in (must exist, not a symlink).
    pub dir: PathBuf,
    /// Most events kept in the ring.
    pub ring_max_events: usize,
    /// Most bytes kept in the ring (an estimate of the events' own data; a process record
    /// is counted with the first of consecutive events that share it).
    pub ring_max_bytes: usize,
    /// Oldest event kept, relative to the newest one seen.
    pub ring_max_age: Duration,
    /// Largest capture file; later events of that capture are counted, not written.
    pub max_file_bytes: u64,
    /// Longest one capture may be extended to by overlapping triggers.
    pub max_duration: Duration,
}

impl CaptureConfig {
    /// Defaults: ring of 100,000 events / 64 MiB / 60 s; files up to 256 MiB and 5 minutes.
    pub fn new(dir: &Path) -> CaptureConfig {
        CaptureConfig {
            dir: dir.to_path_buf(),
            ring_max_events: 100_000,
            ring_max_bytes: 64 << 20,
            ring_max_age: Duration::from_secs(60),
            max_file_bytes: 256 << 20,
            max_duration: Duration::from_secs(300),
        }
    }
}

/// Why capturing failed.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The directory is unusable.
    #[error("capture directory {}: {message}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A capture file could not be created or written.
    #[error("capture file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// What a trigger did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureStart {
    /// A new capture file, with the ring's events from the window already in it.
    Started {
        /// The new file.
        path: PathBuf,
        /// Events copied from the ring.
        backfilled: u64,
    },
    /// The open capture was extended to cover this trigger's window.
    Extended {
        /// The open file.
        path: PathBuf,
        /// Its new end (ns since the epoch).
        end_ns: u64,
    },
}

impl CaptureStart {
    /// The capture file.
    pub fn path(&self) -> &Path {
        match self {
            CaptureStart::Started { path, .. } | CaptureStart::Extended { path, .. } => path,
        }
    }
}

/// A finished capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureInfo {
    /// The file.
    pub path: PathBuf,
    /// Window start and end (ns since the epoch).
    pub start_ns: u64,
    /// Window end.
    pub end_ns: u64,
    /// Events written.
    pub events: u64,
    /// Events of the window not written because the file reached its size limit.
    pub truncated: u64,
    /// Labels (rule names) of the triggers it covers, in order.
    pub triggers: Vec<String>,
    /// A write error that ended the capture early, if any.
    pub error: Option<String>,
}

impl CaptureInfo {
    /// What was written, for people: `N event(s)`, then what is missing and why.
    pub fn outcome(&self) -> String {
        let mut s = format!("{} event(s)", self.events);
        if self.truncated > 0 {
            s.push_str(&format!(
                ", WARNING {} later event(s) of the window not written: the file reached its \
                 size limit",
                self.truncated
            ));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(", write error: {e}"));
        }
        s
    }
}

/// Counters for `--stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Events currently in the ring.
    pub ring_events: usize,
    /// Bytes currently in the ring.
    pub ring_bytes: usize,
    /// Events evicted from the ring (normal: the ring is bounded).
    pub evicted: u64,
    /// Capture files created.
    pub files: u64,
    /// Events written to capture files.
    pub written: u64,
    /// Events that could not be serialised.
    pub unserialisable: u64,
    /// Events of a capture window not written because the file reached its size limit.
    pub truncated: u64,
}

struct Open {
    path: PathBuf,
    out: BufWriter<File>,
    /// Numbers the processes of this file.
    writer: ReplayWriter,
    /// The lines of one event, before they go to the file.
    line: Vec<u8>,
    /// The size limit was reached: nothing more is written (later lines could refer to
    /// process definitions that were not).
    full: bool,
    start_ns: u64,
    end_ns: u64,
    hard_end_ns: u64,
    events: u64,
    bytes: u64,
    truncated: u64,
    triggers: Vec<String>,
    error: Option<String>,
}

/// The ring and the open capture.
pub struct Capturer {
    cfg: CaptureConfig,
    dir: OwnedFd,
    ring: VecDeque<Ringed>,
    ring_bytes: usize,
    /// The process record of the newest event in the ring (not counted again).
    last_proc: Option<Arc<ReplayProcess>>,
    newest_ns: u64,
    open: Option<Open>,
    stats: CaptureStats,
}

/// An event in the ring, with its time and its share of the ring's byte budget.
struct Ringed {
    t: u64,
    bytes: usize,
    ev: Arc<ReplayEvent>,
}

fn dur_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Capturer {
    /// Open the capture directory (it must exist and must not be a symlink).
    pub fn new(cfg: CaptureConfig) -> Result<Capturer, CaptureError> {
        let bad = |message: String| CaptureError::Dir {
            dir: cfg.dir.clone(),
            message,
        };
        let c = CString::new(cfg.dir.as_os_str().as_bytes())
            .map_err(|_| bad("the path contains a NUL byte".into()))?;
        // SAFETY: valid C string; the returned fd is checked and then owned.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_RDONLY,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            let hint = match e.raw_os_error() {
                Some(libc::ENOENT) => "it does not exist; create it first (mkdir -m 700 DIR)",
                Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
                    "it is not a directory (a symlink is refused: give the real directory)"
                }
                _ => "it cannot be opened",
            };
            return Err(bad(format!("{hint} ({e})")));
        }
        // SAFETY: fd >= 0 was just returned by open(2).
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Capturer {
            cfg,
            dir,
            ring: VecDeque::new(),
            ring_bytes: 0,
            last_proc: None,
            newest_ns: 0,
            open: None,
            stats: CaptureStats::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> CaptureStats {
        CaptureStats {
            ring_events: self.ring.len(),
            ring_bytes: self.ring_bytes,
            ..self.stats
        }
    }

    /// The open capture file, if any.
    pub fn open_path(&self) -> Option<&Path> {
        self.open.as_ref().map(|o| o.path.as_path())
    }

    /// Keep `ev` in the ring and append it to the open capture if it falls in its window.
    /// Returns the capture closed because this event is past its end, if any.
    pub fn record(&mut self, ev: &Arc<ReplayEvent>) -> Option<CaptureInfo> {
        let t = ev.time_ns();
        let closed = match &self.open {
            Some(o) if t > o.end_ns => self.close(),
            _ => None,
        };
        if let Some(o) = &mut self.open {
            if t >= o.start_ns {
                write_event(o, ev, self.cfg.max_file_bytes, &mut self.stats);
            }
        }
        self.newest_ns = self.newest_ns.max(t);
        let shared = self
            .last_proc
            .as_ref()
            .is_some_and(|p| Arc::ptr_eq(p, &ev.proc));
        let bytes = approx_bytes(ev, !shared);
        self.last_proc = Some(Arc::clone(&ev.proc));
        self.ring_bytes += bytes;
        self.ring.push_back(Ringed {
            t,
            bytes,
            ev: Arc::clone(ev),
        });
        let min_t = self.newest_ns.saturating_sub(dur_ns(self.cfg.ring_max_age));
        while let Some(front) = self.ring.front() {
            if self.ring.len() > self.cfg.ring_max_events
                || self.ring_bytes > self.cfg.ring_max_bytes
                || front.t < min_t
            {
                self.ring_bytes -= front.bytes;
                self.ring.pop_front();
                self.stats.evicted += 1;
            } else {
                break;
            }
        }
        closed
    }

    /// Start (or extend) a capture for an alert at `at_ns` labelled `label` (the rule name):
    /// the window is `[at_ns - before, at_ns + after]`.
    pub fn trigger(
        &mut self,
        label: &str,
        at_ns: u64,
        before: Duration,
        after: Duration,
    ) -> Result<CaptureStart, CaptureError> {
        let start = at_ns.saturating_sub(dur_ns(before));
        let end = at_ns.saturating_add(dur_ns(after));
        if let Some(o) = &mut self.open {
            if start <= o.end_ns {
                o.end_ns = o.end_ns.max(end).min(o.hard_end_ns);
                o.triggers.push(label.to_owned());
                return Ok(CaptureStart::Extended {
                    path: o.path.clone(),
                    end_ns: o.end_ns,
                });
            }
        }
        // Not overlapping the open capture (whose window has passed): finish it first.
        self.close();
        let (path, file) = self.create_file(label, at_ns)?;
        self.stats.files += 1;
        let mut o = Open {
            path: path.clone(),
            out: BufWriter::new(file),
            writer: ReplayWriter::new(),
            line: Vec::new(),
            full: false,
            start_ns: start,
            end_ns: end,
            hard_end_ns: start.saturating_add(dur_ns(self.cfg.max_duration)).max(end),
            events: 0,
            bytes: 0,
            truncated: 0,
            triggers: vec![label.to_owned()],
            error: None,
        };
        let mut backfilled = 0;
        for r in &self.ring {
            if r.t >= start && r.t <= end {
                write_event(&mut o, &r.ev, self.cfg.max_file_bytes, &mut self.stats);
                backfilled += 1;
            }
        }
        // Make what is known so far visible at once (the attack may take the host down).
        if let Err(e) = o.out.flush() {
            o.error.get_or_insert(e.to_string());
        }
        self.open = Some(o);
        Ok(CaptureStart::Started { path, backfilled })
    }

    /// Close the open capture if `now_ns` is past its end.
    pub fn tick(&mut self, now_ns: u64) -> Option<CaptureInfo> {
        match &self.open {
            Some(o) if now_ns > o.end_ns => self.close(),
            _ => None,
        }
    }

    /// Close the open capture now (shutdown).
    pub fn close(&mut self) -> Option<CaptureInfo> {
        let mut o = self.open.take()?;
        if let Err(e) = o.out.flush() {
            o.error.get_or_insert(e.to_string());
        }
        if let Err(e) = o.out.get_ref().sync_data() {
            o.error.get_or_insert(e.to_string());
        }
        Some(CaptureInfo {
            path: o.path,
            start_ns: o.start_ns,
            end_ns: o.end_ns,
            events: o.events,
            truncated: o.truncated,
            triggers: o.triggers,
            error: o.error,
        })
    }

    /// Create `pyward-capture-<UTC time>-<label>[-N].jsonl` exclusively in the directory.
    fn create_file(&self, label: &str, at_ns: u64) -> Result<(PathBuf, File), CaptureError> {
        let base = format!("pyward-capture-{}-{}", file_time(at_ns), sanitize(label));
        for n in 0..1000u32 {
            let name = if n == 0 {
                format!("{base}.jsonl")
            } else {
                format!("{base}-{n}.jsonl")
            };
            let path = self.cfg.dir.join(&name);
            let c = CString::new(name).map_err(|_| CaptureError::Io {
                path: path.clone(),
                source: io::Error::from_raw_os_error(libc::EINVAL),
            })?;
            // SAFETY: valid dir fd and C string; the returned fd is checked and then owned.
            let fd = unsafe {
                libc::openat(
                    self.dir.as_raw_fd(),
                    c.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o600 as libc::c_uint,
                )
            };
            if fd >= 0 {
                // SAFETY: fd >= 0 was just returned by openat(2).
                return Ok((path, unsafe { File::from_raw_fd(fd) }));
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(CaptureError::Io { path, source: e });
            }
        }
        Err(CaptureError::Io {
            path: self.cfg.dir.join(format!("{base}.jsonl")),
            source: io::Error::new(
                io::ErrorKind::AlreadyExists,
                "1000 capture files with this name already exist; clean up the capture directory",
            ),
        })
    }
}

fn write_event(o: &mut Open, ev: &ReplayEvent, max: u64, stats: &mut CaptureStats) {
    if o.error.is_some() {
        return;
    }
    if o.full {
        o.truncated += 1;
        stats.truncated += 1;
        return;
    }
    o.line.clear();
    if o.writer.encode(ev, &mut o.line).is_err() {
        // The writer's table may now name processes that are not in the file: stop here.
        stats.unserialisable += 1;
        o.full = true;
        return;
    }
    let n = o.line.len() as u64;
    if o.bytes + n > max {
        o.full = true;
        o.truncated += 1;
        stats.truncated += 1;
        return;
    }
    match o.out.write_all(&o.line) {
        Ok(()) => {
            o.bytes += n;
            o.events += 1;
            stats.written += 1;
        }
        Err(e) => o.error = Some(e.to_string()),
    }
}

/// The ring's estimate of what `ev` holds on its own: its fields, and its process record
/// when `with_proc` (ancestors are shared with the events of their own processes).
fn approx_bytes(ev: &ReplayEvent, with_proc: bool) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let mut n = std::mem::size_of::<ReplayEvent>() + ev.event_type.len();
    n += ev
        .args
        .iter()
        .map(|(k, v)| {
            k.len()
                + 32
                + match v {
                    ArgValue::Str(s) => s.len(),
                    _ => 0,
                }
        })
        .sum::<usize>();
    if let Some(fd) = &ev.fd {
        n += std::mem::size_of_val(fd)
            + opt(&fd.name)
            + opt(&fd.path)
            + opt(&fd.nameraw)
            + opt(&fd.directory)
            + opt(&fd.filename);
    }
    n += opt(&ev.buffer) + opt(&ev.buffer_hex) + ev.ancestors.len() * 8;
    if let Some(c) = &ev.container {
        n += 256
            + c.labels
                .iter()
                .map(|(k, v)| k.len() + v.len() + 48)
                .sum::<usize>()
            + c.mounts.len() * 128;
    }
    if with_proc {
        let p = &*ev.proc;
        n += std::mem::size_of::<ReplayProcess>()
            + opt(&p.name)
            + opt(&p.exe)
            + opt(&p.exepath)
            + opt(&p.cmdline)
            + opt(&p.cwd)
            + p.args
                .as_ref()
                .map_or(0, |a| a.iter().map(|s| s.len() + 24).sum())
            + p.env
                .as_ref()
                .map_or(0, |e| e.iter().map(|(k, v)| k.len() + v.len() + 48).sum());
    }
    n
}

/// `20260730T135331.726060287Z`.
fn file_time(ns: u64) -> String {
    let secs = i64::try_from(ns / 1_000_000_000).unwrap_or(0);
    let sub = ns % 1_000_000_000;
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(d) => format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}.{sub:09}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        Err(_) => format!("{ns}"),
    }
}

/// A rule name as a file-name part: `[A-Za-z0-9._-]`, others as `_`, at most 80 characters.
fn sanitize(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let s = s.trim_start_matches('.').to_owned();
    if s.is_empty() {
        "alert".into()
    } else {
        s
    }
}
