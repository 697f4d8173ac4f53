//! Syslog sink: RFC 5424 messages to the local syslog socket (`/dev/log`, a unix datagram
//! socket) or over UDP to `host:port`.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME pyward PROCID alert [pyward@32473 rule="..." priority="..."] OUTPUT`
//! with PRI = facility × 8 + severity, the severity mapped one to one from the Falco priority
//! (Emergency 0 … Debug 7). 32473 is the private enterprise number RFC 5612 reserves for
//! documentation.

use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use pyward_rules::{Alert, Priority};

use crate::sink::{Sink, SinkError, SinkStats};

/// The local syslog socket.
pub const DEV_LOG: &str = "/dev/log";
/// Longest message sent (RFC 5424 receivers must accept 480, should accept 2048; local
/// sockets take more). Longer outputs are cut at a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 8192;

/// Where syslog messages go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A unix datagram socket (default [`DEV_LOG`]).
    Unix(PathBuf),
    /// UDP to `host:port` (RFC 5426).
    Udp(String),
}

impl SyslogTarget {
    /// Parse a CLI value: `unix:PATH`, a path starting with `/`, `udp://HOST:PORT` or
    /// `HOST:PORT`; empty means [`DEV_LOG`].
    pub fn parse(s: &str) -> Result<SyslogTarget, SinkError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(SyslogTarget::Unix(PathBuf::from(DEV_LOG)));
        }
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(SyslogTarget::Unix(PathBuf::from(p)));
        }
        if s.starts_with('/') {
            return Ok(SyslogTarget::Unix(PathBuf::from(s)));
        }
        let hp = s.strip_prefix("udp://").unwrap_or(s);
        if hp
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
        {
            return Ok(SyslogTarget::Udp(hp.to_owned()));
        }
        Err(SinkError::Config {
            sink: "syslog".into(),
            message: format!(
                "{s:?} is not a syslog destination; use /dev/log (or unix:PATH) for the local \
                 daemon, or udp://HOST:PORT for a remote collector"
            ),
        })
    }
}

/// Syslog facility (RFC 5424 numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Facility {
    /// 1: user-level messages (default, as Falco's syslog output).
    User = 1,
    /// 3: system daemons.
    Daemon = 3,
    /// 4: security/authorization messages.
    Auth = 4,
    /// 16..23: local use 0..7.
    Local0 = 16,
    /// Local use 1.
    Local1 = 17,
    /// Local use 2.
    Local2 = 18,
    /// Local use 3.
    Local3 = 19,
    /// Local use 4.
    Local4 = 20,
    /// Local use 5.
    Local5 = 21,
    /// Local use 6.
    Local6 = 22,
    /// Local use 7.
    Local7 = 23,
}

/// RFC 5424 severity of a Falco priority (same order: Emergency 0 … Debug 7).
pub fn severity(p: Priority) -> u8 {
    match p {
        Priority::Emergency => 0,
        Priority::Alert => 1,
        Priority::Critical => 2,
        Priority::Error => 3,
        Priority::Warning => 4,
        Priority::Notice => 5,
        Priority::Informational => 6,
        Priority::Debug => 7,
    }
}

enum Socket {
    Unix(UnixDatagram, PathBuf),
    Udp(UdpSocket),
}

/// The syslog sink.
pub struct SyslogSink {
    name: String,
    socket: Socket,
    facility: Facility,
    stats: SinkStats,
}

impl SyslogSink {
    /// Connect to `target`. Fails with a message saying what to do when no daemon listens.
    pub fn new(target: &SyslogTarget, facility: Facility) -> Result<SyslogSink, SinkError> {
        let socket = match target {
            SyslogTarget::Unix(p) => Socket::Unix(connect_unix(p)?, p.clone()),
            SyslogTarget::Udp(hp) => {
                let io_err = |what: String, e: io::Error| SinkError::Io {
                    sink: "syslog".into(),
                    what,
                    source: e,
                };
                let addr = hp
                    .to_socket_addrs()
                    .map_err(|e| io_err(format!("cannot resolve the syslog address {hp}"), e))?
                    .next()
                    .ok_or_else(|| SinkError::Config {
                        sink: "syslog".into(),
                        message: format!("{hp} resolves to no address"),
                    })?;
                let bind = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(bind)
                    .map_err(|e| io_err("cannot open a UDP socket".into(), e))?;
                s.connect(addr)
                    .map_err(|e| io_err(format!("cannot reach the syslog collector {hp}"), e))?;
                s.set_nonblocking(true)
                    .map_err(|e| io_err("cannot set up the UDP socket".into(), e))?;
                Socket::Udp(s)
            }
        };
        Ok(SyslogSink {
            name: "syslog".into(),
            socket,
            facility,
            stats: SinkStats::default(),
        })
    }

    /// Rename.
    pub fn named(mut self, name: &str) -> SyslogSink {
        self.name = name.to_owned();
        self
    }

    fn send_bytes(&mut self, msg: &[u8]) -> io::Result<()> {
        match &mut self.socket {
            Socket::Udp(s) => s.send(msg).map(|_| ()),
            Socket::Unix(s, path) => match s.send(msg) {
                Ok(_) => Ok(()),
                // The daemon restarted: its socket is new; reconnect once.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ECONNREFUSED) | Some(libc::ENOTCONN)
                    ) =>
                {
                    let fresh = connect_unix(path).map_err(|_| e)?;
                    fresh.send(msg)?;
                    *s = fresh;
                    Ok(())
                }
                Err(e) => Err(e),
            },
        }
    }
}

fn connect_unix(p: &Path) -> Result<UnixDatagram, SinkError> {
    let s = UnixDatagram::unbound().map_err(|e| SinkError::Io {
        sink: "syslog".into(),
        what: "cannot open a unix datagram socket".into(),
        source: e,
    })?;
    s.connect(p).map_err(|e| SinkError::Io {
        sink: "syslog".into(),
        what: format!(
            "no syslog daemon listens on {} (start rsyslog/syslog-ng or journald, or use \
             udp://HOST:PORT)",
            p.display()
        ),
        source: e,
    })?;
    // A full local queue must not stall the event path: drop and count instead.
    s.set_nonblocking(true).map_err(|e| SinkError::Io {
        sink: "syslog".into(),
        what: "cannot set up the syslog socket".into(),
        source: e,
    })?;
    Ok(s)
}

/// Format one RFC 5424 message for `alert`.
pub fn format_rfc5424(alert: &Alert, facility: Facility, procid: u32) -> String {
    let pri = (facility as u8) * 8 + severity(alert.priority);
    let ts = rfc5424_time(&alert.time);
    let host = header_token(&alert.hostname, 255);
    let mut msg = format!(
        "<{pri}>1 {ts} {host} pyward {procid} alert [pyward@32473 rule=\"{}\" priority=\"{}\" source=\"{}\"] ",
        sd_escape(&alert.rule),
        alert.priority.as_str(),
        sd_escape(&alert.source),
    );
    for c in alert.output.chars() {
        msg.push(if c.is_control() { ' ' } else { c });
    }
    if msg.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
    }
    msg
}

/// RFC 5424 TIMESTAMP: at most 6 fractional digits; `-` when the alert time is unusable.
fn rfc5424_time(t: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let Ok(dt) = time::OffsetDateTime::parse(t, &Rfc3339) else {
        return "-".into();
    };
    let dt = dt.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.microsecond()
    )
}

/// A header field: printable US-ASCII without spaces, at most `max` characters, `-` if empty.
fn header_token(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if t.is_empty() {
        "-".into()
    } else {
        t
    }
}

/// SD-PARAM value escaping: `"`, `\` and `]` get a backslash; control characters become spaces.
fn sd_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' | ']' => {
                o.push('\\');
                o.push(c);
            }
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

impl Sink for SyslogSink {
    fn name(&self) -> &str {
        &self.name
    }
    fn send(&mut self, alert: &Alert) -> Result<(), SinkError> {
        let msg = format_rfc5424(alert, self.facility, std::process::id());
        match self.send_bytes(msg.as_bytes()) {
            Ok(()) => {
                self.stats.sent += 1;
                Ok(())
            }
            Err(e) => {
                self.stats.dropped += 1;
                Err(SinkError::Io {
                    sink: self.name.clone(),
                    what: "cannot send an alert to syslog".into(),
                    source: e,
                })
            }
        }
    }
    fn stats(&self) -> SinkStats {
        self.stats
    }
}
