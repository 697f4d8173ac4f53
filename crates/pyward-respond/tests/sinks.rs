//! Sinks against real loopback listeners and sockets: webhook, syslog, writer, rate limiting.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{alert, wait_until, Shared};
use pyward_respond::syslog::{Facility, SyslogSink, SyslogTarget};
use pyward_respond::webhook::{WebhookConfig, WebhookSink};
use pyward_respond::{AlertFormat, Route, Sink, SinkSet, Targets, WriterSink};
use pyward_rules::Priority;

const T0: u64 = 1_785_419_611_726_060_287;

/// Request line, headers, body.
type Request = (String, Vec<String>, Vec<u8>);

/// Read one HTTP/1.1 request (request line, headers, Content-Length body).
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let request_line = line.trim_end().to_owned();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let h = line.trim_end().to_owned();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
        headers.push(h);
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((request_line, headers, body))
}

/// A loopback HTTP server answering with `statuses` in turn (then 200), sending each
/// request (line, headers, body) to the returned channel.
fn http_server(statuses: Vec<u16>) -> (String, mpsc::Receiver<Request>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut n = 0;
        for conn in l.incoming() {
            let Ok(conn) = conn else { break };
            let mut w = conn.try_clone().unwrap();
            let mut r = BufReader::new(conn);
            // One request per connection (`Connection: close`).
            if let Some(req) = read_request(&mut r) {
                let status = statuses.get(n).copied().unwrap_or(200);
                n += 1;
                if tx.send(req).is_err() {
                    return;
                }
                let reason = if status == 200 {
                    "OK"
                } else {
                    "Internal Server Error"
                };
                let _ = write!(
                    w,
                    "HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = w.flush();
            }
        }
    });
    (url, rx)
}

#[test]
fn webhook_posts_falco_json() {
    let (url, rx) = http_server(vec![]);
    let mut sink = WebhookSink::new(WebhookConfig::new(&url)).unwrap();
    let a = alert(
        "SSH Information Read by Non-SSH Program",
        Priority::Error,
        T0,
        &[
            ("proc.name", "python3".into()),
            ("fd.name", "/home/alice/.ssh/id_rsa".into()),
        ],
    );
    sink.send(&a).unwrap();
    let (line, headers, body) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(line, "POST / HTTP/1.1");
    assert!(
        headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("content-type: application/json")),
        "{headers:?}"
    );
    let got: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(got, serde_json::to_value(&a).unwrap());
    assert_eq!(got["rule"], "SSH Information Read by Non-SSH Program");
    assert_eq!(got["priority"], "Error");
    assert_eq!(got["output_fields"]["evt.time"], T0);
    sink.close(Duration::from_secs(10)).unwrap();
    let s = sink.stats();
    assert_eq!((s.sent, s.dropped, s.retried), (1, 0, 0));
}

#[test]
fn webhook_retries_5xx_then_delivers() {
    let (url, rx) = http_server(vec![500, 500]);
    let mut cfg = WebhookConfig::new(&url);
    cfg.initial_backoff = Duration::from_millis(10);
    let mut sink = WebhookSink::new(cfg).unwrap();
    let a = alert("Retry Me", Priority::Warning, T0, &[]);
    sink.send(&a).unwrap();
    let mut bodies = Vec::new();
    for _ in 0..3 {
        bodies.push(rx.recv_timeout(Duration::from_secs(30)).unwrap().2);
    }
    assert!(wait_until(Duration::from_secs(30), || sink.stats().sent == 1));
    sink.close(Duration::from_secs(10)).unwrap();
    for b in &bodies {
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(b).unwrap(),
            serde_json::to_value(&a).unwrap()
        );
    }
    let s = sink.stats();
    assert_eq!((s.sent, s.retried, s.dropped), (1, 2, 0), "{s:?}");
    assert!(rx.try_recv().is_err(), "no fourth attempt after success");
}

#[test]
fn webhook_dead_endpoint_counts_drops_and_never_blocks() {
    // A loopback port nobody listens on: connection refused.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cfg = WebhookConfig::new(&format!("http://127.0.0.1:{port}/"));
    cfg.queue_capacity = 4;
    cfg.max_retries = 2;
    cfg.initial_backoff = Duration::from_millis(20);
    let mut sink = WebhookSink::new(cfg).unwrap();
    let mut worst = Duration::ZERO;
    let mut refused = 0;
    for i in 0..50 {
        let a = alert("Dead End", Priority::Critical, T0 + i, &[]);
        let t = Instant::now();
        if sink.send(&a).is_err() {
            refused += 1;
        }
        worst = worst.max(t.elapsed());
    }
    eprintln!("webhook dead endpoint: worst send() {worst:?} over 50 alerts");
    assert!(
        worst < Duration::from_millis(20),
        "send blocked for {worst:?}"
    );
    assert!(
        refused >= 50 - 5,
        "queue of 4 (+1 in flight) must refuse the rest: {refused}"
    );
    sink.close(Duration::from_secs(20)).unwrap();
    let s = sink.stats();
    assert_eq!(s.sent, 0);
    assert_eq!(
        s.dropped, 50,
        "every alert is accounted for as a drop: {s:?}"
    );
    assert!(s.retried >= 2, "the queued alerts were retried: {s:?}");
}

#[test]
fn webhook_rejects_https_and_bad_urls() {
    let e = WebhookSink::new(WebhookConfig::new("https://example.invalid/"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("https:// is not supported"), "{e}");
    assert!(e.contains("http://"), "says what to do: {e}");
    for bad in ["ftp://x/", "http://", "127.0.0.1:2801", "http://user@host/"] {
        assert!(WebhookSink::new(WebhookConfig::new(bad)).is_err(), "{bad}");
    }
}

/// Split an RFC 5424 line into (PRI, VERSION, TIMESTAMP, HOSTNAME, APP, PROCID, MSGID, SD, MSG).
fn parse_5424(
    s: &str,
) -> (
    u8,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
) {
    let rest = s.strip_prefix('<').unwrap();
    let (pri, rest) = rest.split_once('>').unwrap();
    let mut parts = rest.splitn(7, ' ');
    let mut next = || parts.next().unwrap().to_owned();
    let (ver, ts, host, app, procid, msgid, rest) =
        (next(), next(), next(), next(), next(), next(), next());
    // SD: one element "[...]" (with escaped ']' inside values).
    assert!(rest.starts_with('['), "{rest}");
    let mut end = 0;
    let b = rest.as_bytes();
    let mut i = 1;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b']' {
            end = i;
            break;
        }
        i += 1;
    }
    let sd = rest[..=end].to_owned();
    let msg = rest[end + 1..].trim_start().to_owned();
    (
        pri.parse().unwrap(),
        ver,
        ts,
        host,
        app,
        procid,
        msgid,
        sd,
        msg,
    )
}

#[test]
fn syslog_rfc5424_to_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let server = UnixDatagram::bind(&path).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let target = SyslogTarget::parse(&format!("unix:{}", path.display())).unwrap();
    let mut sink = SyslogSink::new(&target, Facility::User).unwrap();
    let rule = "GPG Keys Read by \"Non-GPG\" Program]";
    let a = alert(rule, Priority::Error, T0, &[]);
    sink.send(&a).unwrap();
    let mut buf = vec![0; 65536];
    let n = server.recv(&mut buf).unwrap();
    let line = String::from_utf8(buf[..n].to_vec()).unwrap();
    let (pri, ver, ts, host, app, procid, msgid, sd, msg) = parse_5424(&line);
    assert_eq!(
        pri,
        8 + 3,
        "facility user (1) * 8 + severity error (3): {line}"
    );
    assert_eq!(ver, "1");
    assert_eq!(
        ts, "2026-07-30T13:53:31.726060Z",
        "6 fractional digits at most"
    );
    assert_eq!(host, "test-host");
    assert_eq!(app, "pyward");
    assert_eq!(procid, std::process::id().to_string());
    assert_eq!(msgid, "alert");
    assert!(
        sd.starts_with("[pyward@32473 rule=\"GPG Keys Read by \\\"Non-GPG\\\" Program\\]\""),
        "{sd}"
    );
    assert!(sd.contains("priority=\"Error\""), "{sd}");
    assert_eq!(msg, a.output);
    assert_eq!(sink.stats().sent, 1);

    // Every priority maps to its severity.
    for (p, sev) in Priority::ALL.iter().zip(0u8..) {
        sink.send(&alert("r", *p, T0, &[])).unwrap();
        let n = server.recv(&mut buf).unwrap();
        let (pri, ..) = parse_5424(std::str::from_utf8(&buf[..n]).unwrap());
        assert_eq!(pri, 8 + sev, "{p:?}");
    }
}

#[test]
fn syslog_udp_and_missing_socket() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let target = SyslogTarget::parse(&format!("udp://{}", server.local_addr().unwrap())).unwrap();
    let mut sink = SyslogSink::new(&target, Facility::Local0).unwrap();
    sink.send(&alert("Udp Rule", Priority::Critical, T0, &[]))
        .unwrap();
    let mut buf = vec![0; 65536];
    let n = server.recv(&mut buf).unwrap();
    let (pri, ..) = parse_5424(std::str::from_utf8(&buf[..n]).unwrap());
    assert_eq!(pri, 16 * 8 + 2);

    let dir = tempfile::tempdir().unwrap();
    let missing = SyslogTarget::Unix(dir.path().join("nobody.sock"));
    let e = SyslogSink::new(&missing, Facility::User)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no syslog daemon listens"), "{e}");
    assert!(SyslogTarget::parse("not a target").is_err());
}

#[test]
fn rate_limit_folds_repeats_into_one_summary() {
    let out = Shared::default();
    let mut set = SinkSet::new().with_rate_limit(Duration::from_secs(10));
    set.add(Box::new(WriterSink::new(
        "mem",
        AlertFormat::Json,
        Box::new(out.clone()),
    )))
    .unwrap();
    let sec = 1_000_000_000u64;
    let fields = [("proc.name", serde_json::Value::from("python3"))];
    set.deliver(
        &alert("Repeated", Priority::Warning, T0, &fields),
        &Targets::Default,
        T0,
    );
    for i in 1..=57 {
        // Same rule and fields, only time differs: folded.
        let t = T0 + i * 100_000_000;
        set.deliver(
            &alert("Repeated", Priority::Warning, t, &fields),
            &Targets::Default,
            t,
        );
    }
    // A different field value is a different alert: not folded.
    let other = [("proc.name", serde_json::Value::from("curl"))];
    set.deliver(
        &alert("Repeated", Priority::Warning, T0 + sec, &other),
        &Targets::Default,
        T0 + sec,
    );
    assert_eq!(out.lines().len(), 2, "{:#?}", out.lines());
    // Window not closed yet: nothing more.
    set.tick(T0 + 9 * sec);
    assert_eq!(out.lines().len(), 2);
    set.tick(T0 + 10 * sec);
    let lines = out.lines();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let summary: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    assert!(
        summary["output"]
            .as_str()
            .unwrap()
            .ends_with("(repeated 57 times)"),
        "{summary}"
    );
    assert_eq!(summary["output_fields"]["pyward.repeated"], 57);
    assert_eq!(summary["rule"], "Repeated");
    let stats = set.stats();
    assert_eq!(stats[0].1.rate_limited, 57);
    assert_eq!(stats[0].1.sent, 3);
    // After the window the next one goes out at once; a lone alert gets no summary.
    set.deliver(
        &alert("Repeated", Priority::Warning, T0 + 20 * sec, &fields),
        &Targets::Default,
        T0 + 20 * sec,
    );
    assert_eq!(out.lines().len(), 4);
    set.tick(T0 + 40 * sec);
    assert_eq!(out.lines().len(), 4);
}

#[test]
fn routes_and_file_sink() {
    let dir = tempfile::tempdir().unwrap();
    let all = Shared::default();
    let pager = Shared::default();
    let mut set = SinkSet::new();
    set.add(Box::new(WriterSink::new(
        "all",
        AlertFormat::Text,
        Box::new(all.clone()),
    )))
    .unwrap();
    set.add_routed(
        Box::new(WriterSink::new(
            "pager",
            AlertFormat::Text,
            Box::new(pager.clone()),
        )),
        Route::NotifyOnly,
    )
    .unwrap();
    let dup = WriterSink::new("all", AlertFormat::Text, Box::new(Shared::default()));
    assert!(
        set.add(Box::new(dup)).is_err(),
        "duplicate sink names are refused"
    );
    set.send(&alert("Plain", Priority::Notice, T0, &[]));
    set.deliver(
        &alert("Paged", Priority::Critical, T0, &[]),
        &Targets::Named(vec!["pager".into()]),
        T0,
    );
    assert_eq!(all.lines().len(), 2);
    assert_eq!(pager.lines().len(), 1);
    assert!(pager.lines()[0].contains("Paged"));

    // File sink: appends, JSON lines; a symlink in its place is refused.
    let p = dir.path().join("alerts.jsonl");
    let mut f = WriterSink::file(&p, AlertFormat::Json).unwrap();
    f.send(&alert("One", Priority::Error, T0, &[])).unwrap();
    drop(f);
    let mut f = WriterSink::file(&p, AlertFormat::Json).unwrap();
    f.send(&alert("Two", Priority::Error, T0, &[])).unwrap();
    drop(f);
    let text = std::fs::read_to_string(&p).unwrap();
    let rules: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["rule"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(rules, ["One", "Two"]);
    let target = dir.path().join("victim");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(WriterSink::file(&link, AlertFormat::Json).is_err());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
}
