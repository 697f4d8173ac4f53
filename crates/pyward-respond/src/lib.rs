//! # pyward-respond: what happens after an alert
//!
//! - [`sink`]: alert sinks ([`Sink`]) and their fan-out ([`SinkSet`]): text / JSON lines to
//!   stdout, stderr or a file, an HTTP webhook (falcosidekick), syslog (RFC 5424); repeated
//!   identical alerts folded into "(repeated N times)"; per-sink counters.
//! - [`process`]: kill a process or a whole process tree (stopped first, then killed leaves
//!   first, through pidfds so a recycled pid is never hit).
//! - [`cgroup`]: cgroup v2: find the mount, a pid's cgroup, create a child cgroup, freeze,
//!   thaw, kill, remove.
//! - [`capture`]: a bounded ring of recent events and capture files (`before`/`after` an
//!   alert) in the replay format `pyward rules replay` reads.
//! - [`policy`]: runtime policies (YAML): which alerts, in which scope, lead to which actions.
//! - [`respond`]: [`Responder`], the one object an event loop drives.

pub mod capture;
pub mod cgroup;
pub mod policy;
pub mod process;
pub mod ratelimit;
pub mod respond;
pub mod sink;
pub mod syslog;
pub mod webhook;
mod yaml;

pub use capture::{CaptureConfig, Capturer};
pub use cgroup::{Cgroup, CgroupFs};
pub use policy::{PlannedAction, RuntimePolicies, Scope};
pub use respond::{ActionRecord, Executor, Responder};
pub use sink::{AlertFormat, Route, Sink, SinkError, SinkSet, SinkStats, Targets, WriterSink};
pub use syslog::{SyslogSink, SyslogTarget};
pub use webhook::{WebhookConfig, WebhookSink};
