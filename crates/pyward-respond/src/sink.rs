//! Alert sinks: the [`Sink`] trait, the text / JSON-lines writer sink, and [`SinkSet`], the
//! fan-out (with optional rate limiting of repeated identical alerts) that the event loop calls.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pyward_rules::Alert;

use crate::ratelimit::{RateLimiter, Verdict};

/// Per-sink delivery counters (`--stats`): nothing is lost silently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Alerts delivered (written, or accepted by the remote end).
    pub sent: u64,
    /// Alerts lost: queue full, retries exhausted, write or send error.
    pub dropped: u64,
    /// Delivery attempts repeated after a failure (webhook).
    pub retried: u64,
    /// Repeated identical alerts folded into a "(repeated N times)" summary.
    pub rate_limited: u64,
}

/// Why a sink could not be created or could not take an alert.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A file, socket or stream could not be opened or written.
    #[error("{sink}: {what}: {source}")]
    Io {
        /// Sink name.
        sink: String,
        /// What was being done, naming the path or address.
        what: String,
        /// The OS error.
        source: io::Error,
    },
    /// The sink's configuration is unusable (bad URL, bad address...).
    #[error("{sink}: {message}")]
    Config {
        /// Sink name.
        sink: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The alert was not accepted (queue full...); counted in [`SinkStats::dropped`].
    #[error("{sink}: alert dropped: {reason}")]
    Dropped {
        /// Sink name.
        sink: String,
        /// Why.
        reason: String,
    },
}

/// A destination for alerts. `send` is called on the event path and must return quickly:
/// a sink that talks to the network queues and delivers from its own thread.
pub trait Sink: Send {
    /// Name used by runtime policies' `notify: [name]` and in statistics.
    fn name(&self) -> &str;
    /// Deliver (or enqueue) one alert. Never blocks on the network.
    fn send(&mut self, alert: &Alert) -> Result<(), SinkError>;
    /// Push buffered output out.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Counters so far.
    fn stats(&self) -> SinkStats;
    /// Deliver what is queued within `grace`, then stop; what is left is counted as dropped.
    fn close(&mut self, grace: Duration) -> Result<(), SinkError> {
        let _ = grace;
        self.flush()
    }
}

/// How a writer sink renders an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertFormat {
    /// Falco's text line (`alert.output`).
    Text,
    /// Falco's JSON alert, one per line.
    Json,
}

/// Text or JSON lines to standard output, standard error or a file.
pub struct WriterSink {
    name: String,
    format: AlertFormat,
    out: Box<dyn Write + Send>,
    stats: SinkStats,
}

impl WriterSink {
    /// Alerts to standard output.
    pub fn stdout(format: AlertFormat) -> WriterSink {
        WriterSink::new("stdout", format, Box::new(io::stdout()))
    }

    /// Alerts to standard error.
    pub fn stderr(format: AlertFormat) -> WriterSink {
        WriterSink::new("stderr", format, Box::new(io::stderr()))
    }

    /// Alerts appended to `path` (created with mode 0600 if missing). A symlink at `path` is
    /// refused, so an attacker-planted link cannot redirect alerts over another file.
    pub fn file(path: &Path, format: AlertFormat) -> Result<WriterSink, SinkError> {
        let f: File = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| SinkError::Io {
                sink: "file".into(),
                what: format!(
                    "cannot open the alerts file {} (a symlink there is refused; pick a regular file path)",
                    path.display()
                ),
                source: e,
            })?;
        Ok(WriterSink::new(
            "file",
            format,
            Box::new(io::BufWriter::new(f)),
        ))
    }

    /// Alerts to any writer (tests, pipes).
    pub fn new(name: &str, format: AlertFormat, out: Box<dyn Write + Send>) -> WriterSink {
        WriterSink {
            name: name.to_owned(),
            format,
            out,
            stats: SinkStats::default(),
        }
    }

    /// Rename (e.g. two file sinks: `file`, `audit-file`).
    pub fn named(mut self, name: &str) -> WriterSink {
        self.name = name.to_owned();
        self
    }

    fn write_one(&mut self, alert: &Alert) -> io::Result<()> {
        match self.format {
            AlertFormat::Json => {
                serde_json::to_writer(&mut self.out, alert).map_err(io::Error::other)?;
                self.out.write_all(b"\n")?;
            }
            AlertFormat::Text => writeln!(self.out, "{}", alert.output)?,
        }
        // Alerts are rare and precious: flush each so a crash loses none.
        self.out.flush()
    }
}

impl Sink for WriterSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn send(&mut self, alert: &Alert) -> Result<(), SinkError> {
        match self.write_one(alert) {
            Ok(()) => {
                self.stats.sent += 1;
                Ok(())
            }
            Err(e) => {
                self.stats.dropped += 1;
                Err(SinkError::Io {
                    sink: self.name.clone(),
                    what: "cannot write an alert".into(),
                    source: e,
                })
            }
        }
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        self.out.flush().map_err(|e| SinkError::Io {
            sink: self.name.clone(),
            what: "cannot flush alerts".into(),
            source: e,
        })
    }
    fn stats(&self) -> SinkStats {
        self.stats
    }
}

/// Which alerts a sink of a [`SinkSet`] receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Every alert.
    All,
    /// Only alerts a runtime policy notifies to this sink by name (`notify: [name]`) or to all
    /// sinks (`notify: true`): e.g. a pager webhook for policy hits only.
    NotifyOnly,
}

/// Extra destinations chosen by runtime policies for one alert.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Targets {
    /// Only the [`Route::All`] sinks.
    #[default]
    Default,
    /// Every sink, [`Route::NotifyOnly`] ones included.
    Everything,
    /// The default sinks plus these named ones.
    Named(Vec<String>),
}

impl Targets {
    /// Union of two target sets.
    pub fn merge(&mut self, other: &Targets) {
        match (&mut *self, other) {
            (Targets::Everything, _) | (_, Targets::Default) => {}
            (_, Targets::Everything) => *self = Targets::Everything,
            (Targets::Default, Targets::Named(n)) => *self = Targets::Named(n.clone()),
            (Targets::Named(a), Targets::Named(b)) => {
                for n in b {
                    if !a.contains(n) {
                        a.push(n.clone());
                    }
                }
            }
        }
    }

    fn includes(&self, name: &str, route: Route) -> bool {
        route == Route::All
            || match self {
                Targets::Default => false,
                Targets::Everything => true,
                Targets::Named(v) => v.iter().any(|n| n == name),
            }
    }
}

struct Entry {
    sink: Box<dyn Sink>,
    route: Route,
    rate_limited: u64,
}

/// Fan-out of alerts to several sinks, with optional rate limiting of repeated identical
/// alerts. Call [`SinkSet::tick`] from the event loop (e.g. once per batch or per second) so
/// "(repeated N times)" summaries go out when their window closes even if nothing else happens.
#[derive(Default)]
pub struct SinkSet {
    entries: Vec<Entry>,
    limiter: Option<RateLimiter>,
}

impl SinkSet {
    /// An empty set (alerts go nowhere until a sink is added).
    pub fn new() -> SinkSet {
        SinkSet::default()
    }

    /// Fold identical alerts (same rule, same output fields apart from time) seen within
    /// `window` of the first into one "(repeated N times)" alert when the window closes.
    pub fn with_rate_limit(mut self, window: Duration) -> SinkSet {
        self.limiter = Some(RateLimiter::new(window));
        self
    }

    /// Add a sink receiving every alert. Names must be unique (policies refer to them).
    pub fn add(&mut self, sink: Box<dyn Sink>) -> Result<(), SinkError> {
        self.add_routed(sink, Route::All)
    }

    /// Add a sink with an explicit [`Route`].
    pub fn add_routed(&mut self, sink: Box<dyn Sink>, route: Route) -> Result<(), SinkError> {
        if self.entries.iter().any(|e| e.sink.name() == sink.name()) {
            return Err(SinkError::Config {
                sink: sink.name().to_owned(),
                message:
                    "a sink with this name is already configured; give each sink a unique name"
                        .into(),
            });
        }
        self.entries.push(Entry {
            sink,
            route,
            rate_limited: 0,
        });
        Ok(())
    }

    /// Names of the configured sinks, in order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.sink.name()).collect()
    }

    /// `true` if no sink is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Send to the default sinks, rate-limited against the wall clock. Returns the errors of
    /// sinks that failed (the others still got the alert).
    pub fn send(&mut self, alert: &Alert) -> Vec<SinkError> {
        self.deliver(alert, &Targets::Default, now_ns())
    }

    /// Send to the default sinks plus `targets`, with `now_ns` (ns since the epoch) as the
    /// rate limiter's clock. Each sink gets the alert at most once.
    pub fn deliver(&mut self, alert: &Alert, targets: &Targets, now_ns: u64) -> Vec<SinkError> {
        let mut errors = self.tick(now_ns);
        let verdict = match &mut self.limiter {
            Some(l) => l.check(alert, targets, now_ns),
            None => Verdict::Emit,
        };
        match verdict {
            Verdict::Emit => errors.extend(self.fan_out(alert, targets)),
            Verdict::Suppressed => {
                for e in &mut self.entries {
                    if targets.includes(e.sink.name(), e.route) {
                        e.rate_limited += 1;
                    }
                }
            }
        }
        errors
    }

    /// Emit the "(repeated N times)" summaries whose window closed by `now_ns`.
    pub fn tick(&mut self, now_ns: u64) -> Vec<SinkError> {
        let due = match &mut self.limiter {
            Some(l) => l.due(now_ns),
            None => return Vec::new(),
        };
        let mut errors = Vec::new();
        for (alert, targets) in due {
            errors.extend(self.fan_out(&alert, &targets));
        }
        errors
    }

    fn fan_out(&mut self, alert: &Alert, targets: &Targets) -> Vec<SinkError> {
        let mut errors = Vec::new();
        for e in &mut self.entries {
            if targets.includes(e.sink.name(), e.route) {
                if let Err(err) = e.sink.send(alert) {
                    errors.push(err);
                }
            }
        }
        errors
    }

    /// Per-sink counters, in the order sinks were added.
    pub fn stats(&self) -> Vec<(String, SinkStats)> {
        self.entries
            .iter()
            .map(|e| {
                let mut s = e.sink.stats();
                s.rate_limited += e.rate_limited;
                (e.sink.name().to_owned(), s)
            })
            .collect()
    }

    /// Flush every sink.
    pub fn flush(&mut self) -> Vec<SinkError> {
        self.entries
            .iter_mut()
            .filter_map(|e| e.sink.flush().err())
            .collect()
    }

    /// Emit every pending summary, then close every sink, giving queued deliveries up to
    /// `grace` in total.
    pub fn close(&mut self, grace: Duration) -> Vec<SinkError> {
        let pending = match &mut self.limiter {
            Some(l) => l.due(u64::MAX),
            None => Vec::new(),
        };
        let mut errors = Vec::new();
        for (alert, targets) in pending {
            errors.extend(self.fan_out(&alert, &targets));
        }
        let deadline = std::time::Instant::now() + grace;
        for e in &mut self.entries {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if let Err(err) = e.sink.close(left) {
                errors.push(err);
            }
        }
        errors
    }
}

/// Wall-clock time in ns since the epoch (0 if the clock is before 1970).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
