//! A live event source for the rules engine: sensor + process table + conversion.

use std::time::Duration;

use pyward_rules::event::replay::ReplayEvent;

use crate::convert::Converter;
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
    conv: Converter,
    root: Option<u32>,
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
            conv: Converter::new(),
            root: None,
        })
    }

    /// What loaded.
    pub fn report(&self) -> &LoadReport {
        self.sensor.report()
    }

    /// The process table.
    pub fn table(&self) -> &ProcessTable {
        &self.table
    }

    /// Follow only `pid` and its descendants (in the kernel when started with
    /// `follow: true`, and in user space in any case).
    pub fn follow(&mut self, pid: u32) -> Result<(), SensorError> {
        self.root = Some(pid);
        self.sensor.track(pid)
    }

    /// The next event, waiting at most `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Next {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let ev = match self.sensor.recv_timeout(left) {
                Ok(ev) => ev,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Next::Timeout,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Next::Closed,
            };
            let wall = self.sensor.wall_time_ns(ev.mono_ns);
            self.table.apply(&ev, wall);
            if let Some(root) = self.root {
                if !self.table.in_tree(ev.pid, root) {
                    continue;
                }
            }
            let out = self.conv.convert(&ev, &self.table, wall);
            return Next::Event(Box::new(out), Box::new(ev));
        }
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

/// Spawn `cmd` so that it is followed from its very first instruction: the child waits
/// (after fork, before exec) until its pid is in the sensor's tracked set.
pub fn spawn_followed(
    cmd: &mut std::process::Command,
    source: &mut LiveSource,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [rd, wr] = fds;
    // SAFETY: the hook only calls async-signal-safe read(2) on an fd we created.
    unsafe {
        cmd.pre_exec(move || {
            let mut b = [0u8; 1];
            loop {
                let n = libc::read(rd, b.as_mut_ptr().cast(), 1);
                if n >= 0 {
                    break;
                }
                if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                    break;
                }
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    // SAFETY: closing the read end we own in the parent.
    unsafe { libc::close(rd) };
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            // SAFETY: closing the write end we own.
            unsafe { libc::close(wr) };
            return Err(e);
        }
    };
    let tracked = source.follow(child.id());
    // Release the child whatever happened: it must not hang.
    // SAFETY: writing one byte to, then closing, the write end we own.
    unsafe {
        libc::write(wr, [1u8].as_ptr().cast(), 1);
        libc::close(wr);
    }
    tracked.map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(child)
}
