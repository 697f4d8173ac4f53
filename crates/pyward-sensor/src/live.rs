//! A live event source for the rules engine: sensor + process table + conversion.

use std::time::Duration;

use pyward_rules::event::replay::ReplayEvent;

use crate::convert::Converter;
use crate::fdtable::FdTable;
use crate::loader::{LoadReport, Sensor, SensorError, SensorOptions, SensorStats};
use crate::proctable::ProcessTable;
use crate::raw::KernelEvent;

/// What [`LiveSource::next`] got.
#[derive(Debug)]
pub enum Next {
    /// An event, converted for the rules engine, with the kernel record it came from.
    Event(Box<ReplayEvent>, Box<KernelEvent>),
    /// Nothing within the timeout.
    Timeout,
    /// The sensor stopped.
    Closed,
}

/// Live kernel events as [`ReplayEvent`]s, the same structure `pyward rules replay` reads.
pub struct LiveSource {
    sensor: Sensor,
    table: ProcessTable,
    fds: FdTable,
    conv: Converter,
    root: Option<u32>,
    /// The followed root's exit event was read: everything its tree did before it exited
    /// precedes it in the ring buffer.
    root_exit_seen: bool,
}

impl LiveSource {
    /// Start the sensor and seed the process table from /proc.
    pub fn start(opts: SensorOptions) -> Result<LiveSource, SensorError> {
        let sensor = Sensor::start(opts)?;
        let mut table = ProcessTable::new();
        table.seed();
        Ok(LiveSource {
            sensor,
            table,
            fds: FdTable::new(),
            conv: Converter::new(),
            root: None,
            root_exit_seen: false,
        })
    }

    /// What loaded.
    pub fn report(&self) -> &LoadReport {
        self.sensor.report()
    }

    /// The ring-buffer reader thread's heartbeat.
    pub fn reader_heartbeat(&self) -> std::sync::Arc<crate::stall::Heartbeat> {
        self.sensor.reader_heartbeat()
    }

    /// The process table.
    pub fn table(&self) -> &ProcessTable {
        &self.table
    }

    /// The fd table (kept from the fd events that are enabled).
    pub fn fds(&self) -> &FdTable {
        &self.fds
    }

    /// Follow only `pid` and its descendants (in the kernel when started with
    /// `follow: true`, and in user space in any case).
    pub fn follow(&mut self, pid: u32) -> Result<(), SensorError> {
        self.root = Some(pid);
        self.sensor.track(pid)
    }

    /// The next event, waiting at most `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Next {
        // The deadline is only computed when the current batch is used up: reading the
        // clock twice per event showed in profiles.
        let mut deadline = None;
        loop {
            let ev = match self.sensor.try_recv_pending() {
                Some(ev) => ev,
                None => {
                    let now = std::time::Instant::now();
                    let left = deadline
                        .get_or_insert(now + timeout)
                        .saturating_duration_since(now);
                    match self.sensor.recv_timeout(left) {
                        Ok(ev) => ev,
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Next::Timeout,
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                            return Next::Closed
                        }
                    }
                }
            };
            let wall = self.sensor.wall_time_ns(ev.mono_ns);
            self.table.apply(&ev, wall);
            if matches!(ev.kind, crate::raw::Kind::Exit) && Some(ev.pid) == self.root {
                self.root_exit_seen = true;
            }
            if let Some(root) = self.root {
                if !self.table.in_tree(ev.pid, root) {
                    // Still keep its fds: an out-of-tree parent's fds are inherited.
                    self.fds.apply(&ev, None);
                    continue;
                }
            }
            let out = self
                .conv
                .convert_with_fds(&ev, &self.table, &self.fds, wall);
            self.fds.apply(&ev, out.fd.as_ref());
            return Next::Event(Box::new(out), Box::new(ev));
        }
    }

    /// Whether the followed root's exit event has been read.
    pub fn root_exit_seen(&self) -> bool {
        self.root_exit_seen
    }

    /// Current counters.
    pub fn stats(&self) -> SensorStats {
        self.sensor.stats()
    }

    /// Stop and detach; final counters.
    pub fn stop(self) -> SensorStats {
        self.sensor.stop()
    }
}

/// Spawn `cmd` so that it is followed from its very first instruction: after fork and
/// before exec, the child puts its own pid into the sensor's tracked map (one `bpf(2)`
/// call, async-signal-safe), so nothing it runs escapes the kernel filter.
pub fn spawn_followed(
    cmd: &mut std::process::Command,
    source: &mut LiveSource,
) -> std::io::Result<std::process::Child> {
    follow_before_exec(cmd, source);
    let child = cmd.spawn()?;
    source.root = Some(child.id());
    Ok(child)
}

/// Make the child of `cmd` add itself to the sensor's tracked map between fork and exec,
/// for callers that spawn it themselves; then call [`LiveSource::follow`] with its pid.
pub fn follow_before_exec(cmd: &mut std::process::Command, source: &mut LiveSource) {
    use std::os::unix::process::CommandExt;
    let map_fd = source.sensor.tracked_fd();
    // SAFETY: the hook only makes raw getpid(2) and bpf(2) syscalls on memory of its own
    // stack; both are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let pid = libc::getpid() as u32;
            crate::rawmap::map_update_raw(map_fd, &pid.to_ne_bytes(), &[1u8])
        });
    }
}
