//! Loading the eBPF programs, attaching them, and reading their ring buffer on a thread.
//!
//! The skeleton borrows its object storage, so the whole BPF lifetime lives on one
//! dedicated thread: it loads and attaches, reports back what loaded, polls the ring
//! buffer until asked to stop, and then drops the skeleton, which detaches every probe
//! (also when the watched command crashed: nothing is pinned, so nothing outlives us).

use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapHandle, RingBufferBuilder};

use crate::raw::{KernelEvent, Syscall};
use crate::skel::SensorSkelBuilder;

/// Which program type carries the probes (the first one the kernel accepts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramMode {
    /// BTF-typed tracepoints (`tp_btf/`), preferred: typed, cheapest.
    TpBtf,
    /// Raw tracepoints (`raw_tp/`), the fallback.
    RawTp,
}

impl std::fmt::Display for ProgramMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProgramMode::TpBtf => "tp_btf (BTF tracepoints)",
            ProgramMode::RawTp => "raw_tp (raw tracepoints)",
        })
    }
}

/// What loaded, for the user: printed by `pyward watch` at start.
#[derive(Clone, Debug)]
pub struct LoadReport {
    pub mode: ProgramMode,
    /// Why the preferred mode was refused, when the fallback is in use.
    pub fallback_reason: Option<String>,
    /// Syscalls enabled in the kernel filter (those the target architecture has).
    pub syscalls: Vec<Syscall>,
}

/// How to start the sensor.
#[derive(Clone, Debug, Default)]
pub struct SensorOptions {
    /// Report only processes in the tracked set (seeded with [`Sensor::track`], followed
    /// across fork in the kernel) instead of the whole host.
    pub follow: bool,
    /// Syscalls to enable; `None` = all hooked syscalls.
    pub syscalls: Option<Vec<Syscall>>,
    /// Capacity of the queue between the ring-buffer thread and the consumer, in events
    /// (default [`DEFAULT_QUEUE`]); events beyond it are dropped and counted.
    pub queue: Option<usize>,
    /// Force a program mode (tests); `None` = try tp_btf, then raw_tp.
    pub mode: Option<ProgramMode>,
    /// Also capture the first bytes read at offset 0 of regular files (the read family of
    /// [`Syscall::READS`]; for detectors that want "what was there before"). Off by default:
    /// without it those syscalls are left out of the kernel filter even when listed.
    pub capture_reads: bool,
    /// Fold repeated read-only opens of a regular file, and their closes, in the kernel:
    /// an open that matches, in every field a rule can see, one the same process sent within
    /// about a second (250 jiffies) is counted instead of sent (see "Repeat folding" in sensor.bpf.c).
    /// Off by default; leave it off when every event must be kept (recordings).
    pub fold_repeats: bool,
}

impl SensorOptions {
    /// The syscalls to enable in the kernel: the requested ones (default all) and always
    /// `chdir`/`fchdir` (they keep `proc.cwd`), less the read family unless
    /// `capture_reads`, less those the target architecture does not have.
    pub fn enabled_syscalls(&self) -> Vec<Syscall> {
        let mut wanted = self
            .syscalls
            .clone()
            .unwrap_or_else(|| Syscall::ALL.to_vec());
        wanted.extend([Syscall::Chdir, Syscall::Fchdir]);
        let mut out: Vec<Syscall> = Vec::new();
        for s in wanted {
            if s.nr().is_none() || out.contains(&s) {
                continue;
            }
            if !self.capture_reads && Syscall::READS.contains(&s) {
                continue;
            }
            out.push(s);
        }
        out
    }
}

/// Default capacity of the reader → consumer queue (events). Enough for ~0.1 s of a burst at
/// 100K events/s; beyond that the consumer cannot keep up anyway and drops are counted.
pub const DEFAULT_QUEUE: usize = 1 << 14;

/// Longest the reader waits for room in a full queue before dropping (see
/// `Batcher::flush`).
const BACKPRESSURE_WAIT: Duration = Duration::from_millis(100);

/// Most events handed over in one batch: the reader sends a batch per ring-buffer poll (or
/// when this many are pending), so the consumer wakes once per batch, not per event.
const MAX_BATCH: usize = 128;

/// After a poll that read events, the reader waits this long before reading again, so a
/// burst is handed over in batches instead of one wake-up (of the reader and of the
/// consumer) per event. The first event after a quiet period is not delayed: only events
/// that follow within this time wait, at most this long.
const BURST_PAUSE: Duration = Duration::from_micros(500);

/// Loss and volume counters; "never silent loss".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SensorStats {
    /// Records written to the ring buffer by the kernel programs.
    pub kernel_events: u64,
    /// Records lost because the ring buffer was full.
    pub ring_drops: u64,
    /// Processes not tracked because the tracked-pid map was full.
    pub tracked_full: u64,
    /// Records not built because this CPU's scratch buffer was in use (nested program run;
    /// expected to stay 0, see sensor.bpf.c).
    pub scratch_busy: u64,
    /// Records the reader could not parse.
    pub parse_errors: u64,
    /// Parsed events dropped because the consumer queue was full.
    pub queue_drops: u64,
    /// Events delivered to the consumer.
    pub delivered: u64,
    /// Repeated opens folded in the kernel (counted, not sent; see
    /// [`SensorOptions::fold_repeats`]).
    pub folded_opens: u64,
    /// Closes of those opens' fds, folded with them.
    pub folded_closes: u64,
}

/// Why the sensor could not start.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error(
        "cannot load the eBPF sensor ({0}); it needs root (CAP_BPF, CAP_PERFMON) and a kernel \
         with BTF (/sys/kernel/btf/vmlinux) and BPF ring buffers (5.8+)"
    )]
    Load(String),
    #[error("eBPF sensor: {0}")]
    Map(String),
    #[error("the sensor thread stopped unexpectedly")]
    Thread,
}

#[derive(Default)]
struct Counters {
    parse_errors: AtomicU64,
    queue_drops: AtomicU64,
    delivered: AtomicU64,
    /// Events sent to the consumer and not yet taken out of the channel: keeps the queue
    /// bounded in events although the channel carries batches.
    queued: AtomicUsize,
}

/// A running sensor. Dropping it stops the reader thread and detaches the probes.
pub struct Sensor {
    rx: Receiver<Vec<KernelEvent>>,
    /// Events of the last received batch not yet handed out.
    pending: std::vec::IntoIter<KernelEvent>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    report: LoadReport,
    tracked: MapHandle,
    stats: MapHandle,
    counters: Arc<Counters>,
    clock_offset_ns: i128,
    reader: Arc<crate::stall::Heartbeat>,
}

struct Handles {
    report: LoadReport,
    tracked: MapHandle,
    stats: MapHandle,
}

impl Sensor {
    /// Load, configure and attach the probes; events flow from this call on.
    pub fn start(opts: SensorOptions) -> Result<Sensor, SensorError> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<Handles, SensorError>>();
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let reader = crate::stall::Heartbeat::new();
        let thread = {
            let stop = stop.clone();
            let counters = counters.clone();
            let reader = reader.clone();
            std::thread::Builder::new()
                .name("pyward-sensor".into())
                .spawn(move || run_thread(opts, tx, ready_tx, stop, counters, reader))
                .map_err(|e| SensorError::Load(format!("cannot start the reader thread: {e}")))?
        };
        let handles = match ready_rx.recv() {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(SensorError::Thread);
            }
        };
        Ok(Sensor {
            rx,
            pending: Vec::new().into_iter(),
            stop,
            thread: Some(thread),
            report: handles.report,
            tracked: handles.tracked,
            stats: handles.stats,
            counters,
            clock_offset_ns: crate::clock::offset_ns(),
            reader,
        })
    }

    /// The ring-buffer reader thread's heartbeat (one beat per read), for a
    /// [`crate::stall::StallWatch`].
    pub fn reader_heartbeat(&self) -> Arc<crate::stall::Heartbeat> {
        self.reader.clone()
    }

    /// What loaded.
    pub fn report(&self) -> &LoadReport {
        &self.report
    }

    /// Follow this process and, from now on, its descendants (follow mode).
    pub fn track(&self, pid: u32) -> Result<(), SensorError> {
        self.tracked
            .update(&pid.to_ne_bytes(), &[1u8], MapFlags::ANY)
            .map_err(|e| SensorError::Map(format!("cannot track pid {pid}: {e}")))
    }

    /// The raw fd of the tracked-pid map (for a child to add itself before exec).
    pub(crate) fn tracked_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::{AsFd, AsRawFd};
        self.tracked.as_fd().as_raw_fd()
    }

    /// The next event, waiting at most `timeout`; `Err(Disconnected)` once the sensor stopped.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<KernelEvent, RecvTimeoutError> {
        loop {
            if let Some(ev) = self.pending.next() {
                return Ok(ev);
            }
            let batch = self.rx.recv_timeout(timeout)?;
            self.counters
                .queued
                .fetch_sub(batch.len(), Ordering::Relaxed);
            self.pending = batch.into_iter();
        }
    }

    /// The next event of the batch already received, without waiting (and without reading
    /// the clock, which [`Sensor::recv_timeout`] callers need for their deadline).
    pub fn try_recv_pending(&mut self) -> Option<KernelEvent> {
        self.pending.next()
    }

    /// Wall-clock time (ns since the epoch) of a kernel CLOCK_MONOTONIC timestamp.
    pub fn wall_time_ns(&self, mono_ns: u64) -> u64 {
        u64::try_from(i128::from(mono_ns) + self.clock_offset_ns).unwrap_or(0)
    }

    /// Current counters (kernel ones summed over CPUs).
    pub fn stats(&self) -> SensorStats {
        let sum = |idx: u32| crate::rawmap::percpu_sum(&self.stats, idx);
        SensorStats {
            kernel_events: sum(0),
            ring_drops: sum(1),
            tracked_full: sum(2),
            scratch_busy: sum(3),
            parse_errors: self.counters.parse_errors.load(Ordering::Relaxed),
            queue_drops: self.counters.queue_drops.load(Ordering::Relaxed),
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            folded_opens: sum(4),
            folded_closes: sum(5),
        }
    }

    /// Stop reading and detach the probes; returns the final counters.
    pub fn stop(mut self) -> SensorStats {
        let s = self.stats();
        self.shutdown();
        s
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sensor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn err(what: &str, e: libbpf_rs::Error) -> SensorError {
    SensorError::Load(format!("{what}: {e}"))
}

fn run_thread(
    opts: SensorOptions,
    tx: Sender<Vec<KernelEvent>>,
    ready: mpsc::Sender<Result<Handles, SensorError>>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    heartbeat: Arc<crate::stall::Heartbeat>,
) {
    heartbeat.register_current_thread();
    let modes: Vec<ProgramMode> = match opts.mode {
        Some(m) => vec![m],
        None => vec![ProgramMode::TpBtf, ProgramMode::RawTp],
    };
    let mut last_err = None;
    let mut first_failure = None;
    for mode in modes {
        let mut storage = MaybeUninit::uninit();
        let skel = match load(&mut storage, mode, &opts) {
            Ok(s) => s,
            Err(e) => {
                if first_failure.is_none() {
                    first_failure = Some(e.to_string());
                }
                last_err = Some(e);
                continue;
            }
        };
        let syscalls = opts.enabled_syscalls();
        let handles = (|| {
            let tracked = MapHandle::try_from(&skel.maps.tracked)
                .map_err(|e| SensorError::Map(format!("tracked map: {e}")))?;
            let stats = MapHandle::try_from(&skel.maps.stats)
                .map_err(|e| SensorError::Map(format!("stats map: {e}")))?;
            Ok(Handles {
                report: LoadReport {
                    mode,
                    fallback_reason: if mode == ProgramMode::TpBtf {
                        None
                    } else {
                        first_failure.clone()
                    },
                    syscalls,
                },
                tracked,
                stats,
            })
        })();
        let handles = match handles {
            Ok(h) => h,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let mut builder = RingBufferBuilder::new();
        let batcher = Rc::new(RefCell::new(Batcher {
            batch: Vec::with_capacity(MAX_BATCH),
            tx: tx.clone(),
            counters: counters.clone(),
            read: 0,
            capacity: opts.queue.unwrap_or(DEFAULT_QUEUE).max(1),
            stop: stop.clone(),
            backpressure: BACKPRESSURE_WAIT,
            heartbeat: heartbeat.clone(),
        }));
        let cb_batcher = batcher.clone();
        if let Err(e) = builder.add(&skel.maps.events, move |data: &[u8]| {
            let mut b = cb_batcher.borrow_mut();
            b.read += 1;
            match KernelEvent::parse(data) {
                Ok(ev) => {
                    b.batch.push(ev);
                    if b.batch.len() >= MAX_BATCH && !b.flush() {
                        return 1;
                    }
                }
                Err(_) => {
                    b.counters.parse_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            0
        }) {
            let _ = ready.send(Err(err("ring buffer", e)));
            return;
        }
        let ring = match builder.build() {
            Ok(r) => r,
            Err(e) => {
                let _ = ready.send(Err(err("ring buffer", e)));
                return;
            }
        };
        if ready.send(Ok(handles)).is_err() {
            return;
        }
        // Whether the last read got records: then more are likely, so pause and read
        // without waiting; else block in epoll until the kernel wakes us.
        let mut busy = false;
        while !stop.load(Ordering::SeqCst) {
            heartbeat.beat(0);
            let before = batcher.borrow().read;
            // Errors are EINTR and friends (or the consumer gone): go on unless asked to stop.
            let _ = if busy {
                std::thread::sleep(BURST_PAUSE);
                ring.consume()
            } else {
                ring.poll(Duration::from_millis(50))
            };
            // One hand-over per read: everything it got goes in one batch.
            let mut b = batcher.borrow_mut();
            busy = b.read != before;
            b.flush();
        }
        // Drain what is already in the buffer, then drop the skeleton: probes detach.
        let _ = ring.consume();
        batcher.borrow_mut().flush();
        drop(ring);
        drop(skel);
        return;
    }
    let e = last_err.unwrap_or(SensorError::Load("no program mode to try".into()));
    let _ = ready.send(Err(e));
}

/// Events parsed by the ring-buffer callback, handed to the consumer in batches.
struct Batcher {
    batch: Vec<KernelEvent>,
    tx: Sender<Vec<KernelEvent>>,
    counters: Arc<Counters>,
    /// Bound of the queue in events.
    capacity: usize,
    /// Records read from the ring buffer so far (parsed or not).
    read: u64,
    /// Set when the sensor stops: a full queue is then not waited on.
    stop: Arc<AtomicBool>,
    /// Longest wait for room in a full queue ([`BACKPRESSURE_WAIT`]).
    backpressure: Duration,
    /// Beaten per batch handed over: one ring-buffer read lasts as long as records keep
    /// coming, and that is progress, not a stall.
    heartbeat: Arc<crate::stall::Heartbeat>,
}

impl Batcher {
    /// Send the pending events, as many as the queue has room for; the rest are dropped and
    /// counted one by one. `false` once the consumer is gone.
    ///
    /// A full queue is first waited on (up to [`BACKPRESSURE_WAIT`]): meanwhile the reader
    /// does not read, so a burst piles up in the kernel's ring buffer (8 MiB, several times
    /// the queue) instead of being dropped here while the consumer catches up.
    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let room_now = |c: &Counters| {
            self.capacity
                .saturating_sub(c.queued.load(Ordering::Relaxed))
        };
        let mut room = room_now(&self.counters);
        if self.batch.len() > room {
            let deadline = std::time::Instant::now() + self.backpressure;
            while self.batch.len() > room
                && std::time::Instant::now() < deadline
                && !self.stop.load(Ordering::Relaxed)
            {
                std::thread::sleep(BURST_PAUSE / 2);
                room = room_now(&self.counters);
            }
        }
        if self.batch.len() > room {
            let lost = self.batch.len() - room;
            self.batch.truncate(room);
            self.counters
                .queue_drops
                .fetch_add(lost as u64, Ordering::Relaxed);
            if room == 0 {
                return true;
            }
        }
        let n = self.batch.len();
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(MAX_BATCH));
        // Count before sending, so the consumer's decrement never goes below zero.
        self.counters.queued.fetch_add(n, Ordering::Relaxed);
        if self.tx.send(batch).is_err() {
            self.counters.queued.fetch_sub(n, Ordering::Relaxed);
            return false;
        }
        self.counters
            .delivered
            .fetch_add(n as u64, Ordering::Relaxed);
        self.heartbeat.beat(0);
        true
    }
}

fn load<'a>(
    storage: &'a mut MaybeUninit<libbpf_rs::OpenObject>,
    mode: ProgramMode,
    opts: &SensorOptions,
) -> Result<crate::skel::SensorSkel<'a>, SensorError> {
    let mut open = SensorSkelBuilder::default()
        .open(storage)
        .map_err(|e| err("open", e))?;
    let btf = mode == ProgramMode::TpBtf;
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
        p.set_autoload(!btf);
    }
    let mut skel = open.load().map_err(|e| err(&format!("load ({mode})"), e))?;
    // Configure before attaching, so the first event is already filtered. The layout is
    // struct sensor_config: self_tgid, follow, fold, pad (u32 each), seed (2 x u64).
    let mut cfg = [0u8; 32];
    cfg[..4].copy_from_slice(&std::process::id().to_ne_bytes());
    cfg[4..8].copy_from_slice(&u32::from(opts.follow).to_ne_bytes());
    cfg[8..12].copy_from_slice(&u32::from(opts.fold_repeats).to_ne_bytes());
    if opts.fold_repeats {
        fill_random(&mut cfg[16..32])?;
    }
    skel.maps
        .sensor_config
        .update(&0u32.to_ne_bytes(), &cfg, MapFlags::ANY)
        .map_err(|e| SensorError::Map(format!("config map: {e}")))?;
    for s in opts.enabled_syscalls() {
        let Some(nr) = s.nr() else { continue };
        skel.maps
            .interesting
            .update(&nr.to_ne_bytes(), &[1u8], MapFlags::ANY)
            .map_err(|e| SensorError::Map(format!("syscall filter map: {e}")))?;
    }
    skel.attach()
        .map_err(|e| err(&format!("attach ({mode})"), e))?;
    Ok(skel)
}

/// Random bytes from the kernel (`getrandom`), for the fold hash's seed.
fn fill_random(buf: &mut [u8]) -> Result<(), SensorError> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: `rest` is a valid writable buffer of `rest.len()` bytes.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(SensorError::Map(format!("cannot seed the fold hash: {e}")));
        }
        filled += n as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::Kind;

    fn batcher(capacity: usize) -> (Batcher, Receiver<Vec<KernelEvent>>) {
        let (tx, rx) = mpsc::channel();
        let b = Batcher {
            batch: Vec::new(),
            tx,
            counters: Arc::new(Counters::default()),
            capacity,
            read: 0,
            stop: Arc::new(AtomicBool::new(false)),
            backpressure: BACKPRESSURE_WAIT,
            heartbeat: crate::stall::Heartbeat::new(),
        };
        (b, rx)
    }

    fn events(n: u32) -> Vec<KernelEvent> {
        (0..n)
            .map(|pid| KernelEvent {
                pid,
                ..KernelEvent::blank(Kind::Exit)
            })
            .collect()
    }

    #[test]
    fn a_full_queue_is_waited_on_while_the_consumer_catches_up() {
        let (mut b, rx) = batcher(4);
        // Generous, so a slow test machine cannot make the consumer miss it.
        b.backpressure = Duration::from_secs(10);
        b.batch = events(4);
        assert!(b.flush());
        let counters = b.counters.clone();
        let consumer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let got = rx.recv().unwrap();
            counters.queued.fetch_sub(got.len(), Ordering::Relaxed);
            rx
        });
        b.batch = events(3);
        assert!(b.flush());
        let _rx = consumer.join().unwrap();
        assert_eq!(b.counters.queue_drops.load(Ordering::Relaxed), 0);
        assert_eq!(b.counters.delivered.load(Ordering::Relaxed), 7);
        // Stopping: a full queue is not waited on.
        b.stop.store(true, Ordering::Relaxed);
        let t = std::time::Instant::now();
        b.batch = events(5);
        assert!(b.flush());
        assert!(t.elapsed() < Duration::from_secs(5), "not the 10 s wait");
        assert_eq!(b.counters.queue_drops.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn the_queue_is_bounded_in_events_and_drops_are_counted_per_event() {
        let (mut b, rx) = batcher(5);
        b.batch = events(3);
        assert!(b.flush());
        b.batch = events(4); // room for 2 of these
        assert!(b.flush());
        b.batch = events(1); // no room at all
        assert!(b.flush());
        let c = b.counters.clone();
        assert_eq!(c.delivered.load(Ordering::Relaxed), 5);
        assert_eq!(c.queue_drops.load(Ordering::Relaxed), 3);
        assert_eq!(c.queued.load(Ordering::Relaxed), 5);
        let got: Vec<u32> = rx.try_iter().flatten().map(|e| e.pid).collect();
        // The oldest events are kept, in order; the newest are the ones dropped.
        assert_eq!(got, vec![0, 1, 2, 0, 1]);
        drop(rx);
        b.batch = events(1);
        c.queued.store(0, Ordering::Relaxed);
        assert!(!b.flush(), "a gone consumer stops the reader");
    }
}
