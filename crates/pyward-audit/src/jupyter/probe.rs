//! Live probe of a Jupyter server over plain HTTP/1.1 (std `TcpStream`, bounded time and size).
//!
//! Only side-effect-free `GET`s of `/api`, `/api/status`, `/api/contents`, `/api/kernels`,
//! `/api/terminals` and `/login`, never with credentials: an unauthenticated `200` from
//! `/api/status` means anyone who can connect runs code; `403` means auth is required.

use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest response read per request.
const MAX_RESPONSE: usize = 256 * 1024;
/// Time allowed per request (connect + send + read).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);

/// A parsed `http://host:port/base/` URL (no credentials, query dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Always starts and ends with `/`.
    pub base: String,
}

impl Target {
    /// Parse a URL. `https` is refused (no TLS client in pyward); a query (e.g. `?token=`) is
    /// dropped and never sent.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err("https URLs are not supported by the probe (no TLS client); probe the plain HTTP port on loopback".into());
        } else {
            return Err("expected a URL like http://127.0.0.1:8888/".into());
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = path.split(['?', '#']).next().unwrap_or("/");
        if hostport.contains('@') {
            return Err("credentials in the URL are not supported".into());
        }
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, p) = h.split_once(']').ok_or("unterminated [IPv6] host")?;
            (h.to_string(), p.strip_prefix(':').unwrap_or("80"))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (hostport.to_string(), "80"),
            }
        };
        if host.is_empty() {
            return Err("the URL has no host".into());
        }
        let port: u16 = port.parse().map_err(|_| format!("invalid port `{port}`"))?;
        let mut base = path.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        Ok(Target { host, port, base })
    }

    /// `http://host:port/base/` for evidence.
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}{}", self.host, self.port, self.base)
        } else {
            format!("http://{}:{}{}", self.host, self.port, self.base)
        }
    }

    fn addrs(&self) -> Result<Vec<SocketAddr>, String> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map(|a| a.collect())
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))
    }

    /// Whether every address the host resolves to is loopback.
    pub fn is_loopback(&self) -> bool {
        self.addrs()
            .is_ok_and(|a| !a.is_empty() && a.iter().all(|s| s.ip().is_loopback()))
    }
}

/// One HTTP response (status and a bounded body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Response {
    pub status: u16,
    #[serde(skip)]
    pub body: String,
}

/// What the probe concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// `/api/status` answered 200 JSON without credentials.
    Unauthenticated,
    /// The API answered 401/403 without credentials.
    AuthRequired,
    /// Something answered, but not like Jupyter.
    NotJupyter,
    /// No usable answer (refused, timed out, garbage).
    Unreachable,
}

/// The outcome of probing one URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeResult {
    pub target: Target,
    pub verdict: Verdict,
    /// `/api` version if Jupyter.
    pub version: Option<String>,
    /// `path → status` (or error) of each request.
    pub responses: Vec<(String, String)>,
    /// Whether `/api/terminals` answered 200 without credentials.
    pub terminals_open: bool,
}

/// Probe `target`. Bounded: a few requests, each at most [`REQUEST_TIMEOUT`] and
/// [`MAX_RESPONSE`] bytes.
pub fn probe(target: &Target) -> ProbeResult {
    let mut responses = Vec::new();
    let mut get = |path: &str| -> Option<Response> {
        let full = format!("{}{}", target.base, path);
        let r = http_get(target, &full);
        responses.push((
            full,
            match &r {
                Ok(r) => r.status.to_string(),
                Err(e) => format!("error: {e}"),
            },
        ));
        r.ok()
    };
    let api = get("api");
    let version = api.as_ref().filter(|r| r.status == 200).and_then(|r| {
        serde_json::from_str::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| {
                v.get("version")
                    .and_then(|x| x.as_str())
                    .map(str::to_string)
            })
    });
    let status = if api.is_some() {
        get("api/status")
    } else {
        None
    };
    let mut verdict = match &status {
        Some(r) if r.status == 200 && is_status_json(&r.body) => Verdict::Unauthenticated,
        Some(r) if (r.status == 403 || r.status == 401) && version.is_some() => {
            Verdict::AuthRequired
        }
        Some(r) if r.status == 403 || r.status == 401 => {
            if r.body.contains("Forbidden") || r.body.contains("\"message\"") {
                Verdict::AuthRequired
            } else {
                Verdict::NotJupyter
            }
        }
        Some(_) => Verdict::NotJupyter,
        None if api.is_some() => Verdict::NotJupyter,
        None => Verdict::Unreachable,
    };
    let mut terminals_open = false;
    if verdict != Verdict::Unreachable {
        let contents = get("api/contents");
        let kernels = get("api/kernels");
        let terminals = get("api/terminals");
        let _login = get("login");
        let ok_json = |r: &Option<Response>| {
            r.as_ref().is_some_and(|r| {
                r.status == 200 && serde_json::from_str::<serde_json::Value>(&r.body).is_ok()
            })
        };
        terminals_open = ok_json(&terminals);
        // Contents or kernels open without credentials is as bad as /api/status.
        if verdict != Verdict::Unauthenticated
            && version.is_some()
            && (ok_json(&contents) || ok_json(&kernels))
        {
            verdict = Verdict::Unauthenticated;
        }
    }
    ProbeResult {
        target: target.clone(),
        verdict,
        version,
        responses,
        terminals_open,
    }
}

fn is_status_json(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body).is_ok_and(|v| {
        v.get("started").is_some() || v.get("connections").is_some() || v.get("kernels").is_some()
    })
}

/// One `GET` with `Connection: close`, bounded in time and size.
pub fn http_get(target: &Target, path: &str) -> Result<Response, String> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let addrs = target.addrs()?;
    let mut last = String::from("no address");
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(2)) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    let mut s = stream.ok_or(last)?;
    let host_header = if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: pyward-audit\r\nAccept: application/json, text/html\r\nConnection: close\r\n\r\n"
    );
    s.set_write_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    s.write_all(req.as_bytes())
        .map_err(|e| format!("cannot send: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if buf.is_empty() {
                return Err("timed out waiting for a response".into());
            }
            break;
        }
        s.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
                if buf.len() >= MAX_RESPONSE {
                    buf.truncate(MAX_RESPONSE);
                    break;
                }
                if complete(&buf) {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if buf.is_empty() {
                    return Err("timed out waiting for a response".into());
                }
                break;
            }
            Err(e) => {
                if buf.is_empty() {
                    return Err(format!("cannot read: {e}"));
                }
                break;
            }
        }
    }
    parse_response(&buf)
}

/// Whether a Content-Length response is fully read (keeps a server that never closes bounded).
fn complete(buf: &[u8]) -> bool {
    let Some(end) = find(buf, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(buf.get(..end).unwrap_or(&[])).to_ascii_lowercase();
    head.lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        })
        .is_some_and(|len| buf.len() >= end + 4 + len)
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Parse status line and body (chunked bodies are de-chunked best effort).
pub fn parse_response(buf: &[u8]) -> Result<Response, String> {
    let end = find(buf, b"\r\n\r\n").ok_or("not an HTTP response (no header end)")?;
    let head = String::from_utf8_lossy(buf.get(..end).unwrap_or(&[])).into_owned();
    let status_line = head.lines().next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    let proto = parts.next().unwrap_or("");
    if !proto.starts_with("HTTP/1.") {
        return Err(format!(
            "not an HTTP response: {:?}",
            status_line.chars().take(40).collect::<String>()
        ));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or("not an HTTP response (bad status code)")?;
    let raw = buf.get(end + 4..).unwrap_or(&[]);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body_bytes = if chunked { dechunk(raw) } else { raw.to_vec() };
    Ok(Response {
        status,
        body: String::from_utf8_lossy(&body_bytes).into_owned(),
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = find(raw, b"\r\n") {
        let size_txt = String::from_utf8_lossy(raw.get(..i).unwrap_or(&[])).into_owned();
        let Ok(size) = usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
        else {
            break;
        };
        if size == 0 {
            break;
        }
        let start = i + 2;
        let Some(chunk) = raw.get(start..start.saturating_add(size)) else {
            out.extend_from_slice(raw.get(start..).unwrap_or(&[]));
            break;
        };
        out.extend_from_slice(chunk);
        raw = raw.get(start + size + 2..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn url_parsing() {
        let t = Target::parse("http://127.0.0.1:8888/jupyter?token=abc").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.base.as_str()),
            ("127.0.0.1", 8888, "/jupyter/")
        );
        assert!(!t.url().contains("abc"));
        assert!(Target::parse("https://x/").is_err());
        assert!(Target::parse("ftp://x/").is_err());
        assert!(Target::parse("http://:1/").is_err());
        assert!(Target::parse("http://h:99999/").is_err());
        assert_eq!(Target::parse("http://[::1]:9/").unwrap().host, "::1");
        assert!(Target::parse("http://127.0.0.1:9/").unwrap().is_loopback());
    }

    #[test]
    fn responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "abcde"));
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"SSH-2.0-x\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 999 X\r\n\r\n").is_err());
    }

    /// A server that accepts and never answers: the probe gives up in bounded time.
    #[test]
    fn hanging_server_is_bounded() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming().take(2) {
                held.push(s);
            }
            std::thread::sleep(Duration::from_secs(6));
        });
        let start = Instant::now();
        let r = probe(&Target::parse(&format!("http://127.0.0.1:{port}/")).unwrap());
        assert_eq!(r.verdict, Verdict::Unreachable);
        assert!(start.elapsed() < Duration::from_secs(12));
        drop(h);
    }

    /// A server answering garbage or a fake Jupyter.
    fn serve(answer: &'static [u8], n: usize) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming().take(n) {
                let Ok(mut s) = s else { continue };
                let mut b = [0u8; 2048];
                let _ = s.read(&mut b);
                let _ = s.write_all(answer);
            }
        });
        port
    }

    #[test]
    fn garbage_server_is_not_jupyter() {
        let port = serve(b"\x00\xff garbage without headers", 8);
        let r = probe(&Target::parse(&format!("http://127.0.0.1:{port}/")).unwrap());
        assert_eq!(r.verdict, Verdict::Unreachable);
        let port = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 8);
        let r = probe(&Target::parse(&format!("http://127.0.0.1:{port}/")).unwrap());
        assert_eq!(r.verdict, Verdict::NotJupyter);
    }
}
