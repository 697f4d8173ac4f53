//! Stall watch: notice when a thread of the event pipeline stops making progress, and say
//! where it is stuck.
//!
//! A stuck pipeline is silent loss in the making: the kernel keeps filling the ring
//! buffer, alerts come late and capture windows no longer match what happened. Each
//! watched thread beats a [`Heartbeat`] (one relaxed atomic add per loop turn, cheap enough
//! for the hot path) and names the phase it enters; a watchdog thread looks every 100 ms
//! and, when a heartbeat has not moved for the threshold, prints one warning with the
//! phase, the system call the thread is in and its kernel wait channel (and kernel stack
//! where readable, i.e. as root), then a second line when it moves again. The longest
//! stall is kept for `--stats`.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Progress of one thread: a counter and the phase it is in.
#[derive(Debug, Default)]
pub struct Heartbeat {
    beats: AtomicU64,
    phase: AtomicU8,
    tid: AtomicI32,
}

impl Heartbeat {
    /// A heartbeat not yet bound to a thread.
    pub fn new() -> Arc<Heartbeat> {
        Arc::new(Heartbeat::default())
    }

    /// Bind to the calling thread (its tid is what the watchdog inspects).
    pub fn register_current_thread(&self) {
        // SAFETY: gettid has no arguments and cannot fail.
        let tid = unsafe { libc::gettid() };
        self.tid.store(tid, Ordering::Relaxed);
    }

    /// One turn of the loop, entering `phase` (an index into the watch's phase names).
    #[inline]
    pub fn beat(&self, phase: u8) {
        self.phase.store(phase, Ordering::Relaxed);
        self.beats.fetch_add(1, Ordering::Relaxed);
    }
}

/// One watched thread.
pub struct Watched {
    /// What the thread does ("event loop", "ring-buffer reader").
    pub name: &'static str,
    pub heartbeat: Arc<Heartbeat>,
    /// Names of the phases passed to [`Heartbeat::beat`].
    pub phases: &'static [&'static str],
}

/// What the watchdog saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StallStats {
    /// Stalls at least as long as the threshold.
    pub stalls: u64,
    /// The longest one, ms (a stall still going on counts with its length so far).
    pub longest_ms: u64,
}

struct Shared {
    stop: AtomicBool,
    stalls: AtomicU64,
    longest_ms: AtomicU64,
}

/// The watchdog thread; dropping it stops the thread.
pub struct StallWatch {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl StallWatch {
    /// Watch `threads`; warn (on standard error) after `threshold` without progress.
    pub fn start(threads: Vec<Watched>, threshold: Duration) -> StallWatch {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            stalls: AtomicU64::new(0),
            longest_ms: AtomicU64::new(0),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pyward-stallwatch".into())
            .spawn(move || watch(threads, threshold, &s))
            .ok();
        StallWatch { shared, thread }
    }

    /// Counters so far.
    pub fn stats(&self) -> StallStats {
        StallStats {
            stalls: self.shared.stalls.load(Ordering::Relaxed),
            longest_ms: self.shared.longest_ms.load(Ordering::Relaxed),
        }
    }
}

impl Drop for StallWatch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

struct State {
    seen: u64,
    since: Instant,
    reported: bool,
}

fn watch(threads: Vec<Watched>, threshold: Duration, shared: &Shared) {
    let now = Instant::now();
    let mut states: Vec<State> = threads
        .iter()
        .map(|w| State {
            seen: w.heartbeat.beats.load(Ordering::Relaxed),
            since: now,
            reported: false,
        })
        .collect();
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::park_timeout(Duration::from_millis(100));
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        for (w, st) in threads.iter().zip(states.iter_mut()) {
            let beats = w.heartbeat.beats.load(Ordering::Relaxed);
            let stuck_for = now.duration_since(st.since);
            if beats != st.seen {
                if st.reported {
                    eprintln!(
                        "pyward: {} moving again after {:.1} s",
                        w.name,
                        stuck_for.as_secs_f64()
                    );
                }
                *st = State {
                    seen: beats,
                    since: now,
                    reported: false,
                };
                continue;
            }
            if stuck_for < threshold {
                continue;
            }
            let ms = u64::try_from(stuck_for.as_millis()).unwrap_or(u64::MAX);
            shared.longest_ms.fetch_max(ms, Ordering::Relaxed);
            if !st.reported {
                st.reported = true;
                shared.stalls.fetch_add(1, Ordering::Relaxed);
                let phase = w.heartbeat.phase.load(Ordering::Relaxed);
                let phase = w.phases.get(usize::from(phase)).copied().unwrap_or("?");
                eprintln!(
                    "pyward: WARNING {} has made no progress for {:.1} s (in: {phase}); events \
                     queue up meanwhile. {}",
                    w.name,
                    stuck_for.as_secs_f64(),
                    where_blocked(w.heartbeat.tid.load(Ordering::Relaxed))
                );
            }
        }
    }
}

/// The system call, kernel wait channel and (as root) kernel stack of a thread of this
/// process, from procfs; best effort.
fn where_blocked(tid: i32) -> String {
    if tid <= 0 {
        return String::new();
    }
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/{f}"))
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    let syscall = read("syscall");
    let syscall = match syscall.split_whitespace().next() {
        Some(n) => match n.parse::<u32>().ok().and_then(syscall_name) {
            Some(name) => format!("{name} ({syscall})"),
            None => syscall,
        },
        None => syscall,
    };
    let mut out = format!("thread {tid}: syscall {syscall}; wchan {}", read("wchan"));
    let stack: Vec<String> = read("stack")
        .lines()
        .take(12)
        .map(|l| l.split_whitespace().nth(1).unwrap_or(l).to_owned())
        .collect();
    if !stack.is_empty() {
        out.push_str("; kernel stack: ");
        out.push_str(&stack.join(" < "));
    }
    out
}

/// Names of the hooked syscalls and of the usual blocking ones.
fn syscall_name(nr: u32) -> Option<&'static str> {
    if let Some(s) = crate::raw::Syscall::from_nr(nr) {
        return Some(s.falco_name());
    }
    // (x86_64, aarch64)
    const BLOCKING: [(&str, u32, u32); 8] = [
        ("futex", 202, 98),
        ("ppoll", 271, 73),
        ("poll", 7, u32::MAX),
        ("epoll_wait", 232, u32::MAX),
        ("epoll_pwait", 281, 22),
        ("nanosleep", 35, 101),
        ("clock_nanosleep", 230, 115),
        ("wait4", 61, 260),
    ];
    let aarch64 = crate::raw::Arch::target() == crate::raw::Arch::Aarch64;
    BLOCKING
        .iter()
        .find(|(_, x86, arm)| nr == if aarch64 { *arm } else { *x86 })
        .map(|(n, _, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_thread_is_reported_and_a_beating_one_is_not() {
        let stuck = Heartbeat::new();
        let live = Heartbeat::new();
        let stop = Arc::new(AtomicBool::new(false));
        let beater = {
            let live = live.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                live.register_current_thread();
                while !stop.load(Ordering::Relaxed) {
                    live.beat(0);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        stuck.register_current_thread();
        stuck.beat(1);
        let w = StallWatch::start(
            vec![
                Watched {
                    name: "stuck loop",
                    heartbeat: stuck.clone(),
                    phases: &["waiting", "handling"],
                },
                Watched {
                    name: "live loop",
                    heartbeat: live,
                    phases: &["waiting"],
                },
            ],
            Duration::from_millis(600),
        );
        std::thread::sleep(Duration::from_millis(1500));
        let s = w.stats();
        assert_eq!(s.stalls, 1, "only the stuck thread: {s:?}");
        assert!(s.longest_ms >= 600, "{s:?}");
        stuck.beat(0);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(w.stats().stalls, 1);
        stop.store(true, Ordering::Relaxed);
        beater.join().unwrap();
        drop(w);
    }

    #[test]
    fn where_blocked_names_the_syscall_of_a_sleeping_thread() {
        let hb = Heartbeat::new();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = {
            let hb = hb.clone();
            std::thread::spawn(move || {
                hb.register_current_thread();
                let _ = rx.recv();
            })
        };
        while hb.tid.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(50));
        let s = where_blocked(hb.tid.load(Ordering::Relaxed));
        assert!(s.contains("syscall futex"), "{s}");
        tx.send(()).unwrap();
        t.join().unwrap();
    }
}
