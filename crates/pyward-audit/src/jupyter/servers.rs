//! Running Jupyter servers: runtime files (`jpserver-*.json`, `nbserver-*.json`, read only and
//! never deleted) and processes with listening sockets (`/proc/net/tcp{,6}` joined to processes
//! through `/proc/PID/fd` socket inodes). Tokens are never kept: only whether one is present.

use super::fsutil;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Most runtime files read per folder.
const MAX_RUNTIME_FILES: usize = 1000;
/// Most processes looked at.
const MAX_PIDS: usize = 65_536;
/// Most file descriptors looked at per process.
const MAX_FDS: usize = 4096;

/// A server record from a runtime file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeServer {
    pub file: PathBuf,
    pub pid: Option<u32>,
    pub port: Option<u16>,
    /// `hostname` as recorded (not proof of loopback binding).
    pub hostname: Option<String>,
    pub root_dir: Option<String>,
    pub secure: Option<bool>,
    pub token_present: bool,
    /// `password` field (in 2.x only the deprecated ServerApp.password).
    pub password: Option<bool>,
    pub version: Option<String>,
    pub base_url: Option<String>,
    /// The file's permission bits.
    pub mode: Option<u32>,
}

/// Read every `jpserver-*.json` / `nbserver-*.json` in `dir`. Problems become warnings.
pub fn runtime_files(
    root: &Path,
    dir: &Path,
    warnings: &mut Vec<pyward_core::Warning>,
) -> Vec<RuntimeServer> {
    let mut out = Vec::new();
    for p in fsutil::list_dir(root, dir, MAX_RUNTIME_FILES) {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !(name.starts_with("jpserver-") || name.starts_with("nbserver-"))
            || !name.ends_with(".json")
        {
            continue;
        }
        let text = match fsutil::read_text(root, &p, 1024 * 1024) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(pyward_core::Warning::new(
                    fsutil::display(&p),
                    format!("runtime file not read: {e}"),
                ));
                continue;
            }
        };
        let v: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                warnings.push(pyward_core::Warning::new(
                    fsutil::display(&p),
                    format!("runtime file is not valid JSON: {e}"),
                ));
                continue;
            }
        };
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
        use std::os::unix::fs::PermissionsExt;
        out.push(RuntimeServer {
            pid: v
                .get("pid")
                .and_then(|x| x.as_u64())
                .and_then(|x| u32::try_from(x).ok()),
            port: v
                .get("port")
                .and_then(|x| x.as_u64())
                .and_then(|x| u16::try_from(x).ok()),
            hostname: s("hostname"),
            root_dir: s("root_dir").or_else(|| s("notebook_dir")),
            secure: v.get("secure").and_then(|x| x.as_bool()),
            token_present: v
                .get("token")
                .and_then(|x| x.as_str())
                .is_some_and(|t| !t.is_empty()),
            password: v.get("password").and_then(|x| x.as_bool()),
            version: s("version"),
            base_url: s("base_url"),
            mode: std::fs::metadata(&p)
                .ok()
                .map(|m| m.permissions().mode() & 0o7777),
            file: p,
        });
    }
    out
}

/// A TCP socket in LISTEN state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Listener {
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u64,
}

/// Parse `/proc/net/tcp` or `/proc/net/tcp6` text: LISTEN (state 0A) sockets.
pub fn parse_proc_net_tcp(text: &str) -> Vec<Listener> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) != Some(&"0A") {
                return None;
            }
            let (ip_hex, port_hex) = f.get(1)?.split_once(':')?;
            let port = u16::from_str_radix(port_hex, 16).ok()?;
            let inode = f.get(9)?.parse().ok()?;
            Some(Listener {
                addr: parse_hex_ip(ip_hex)?,
                port,
                inode,
            })
        })
        .collect()
}

/// Kernel hex address: 32-bit words in host (little-endian on x86/arm) byte order.
fn parse_hex_ip(h: &str) -> Option<IpAddr> {
    let words: Vec<u32> = (0..h.len() / 8)
        .map(|i| {
            h.get(i * 8..i * 8 + 8)
                .and_then(|w| u32::from_str_radix(w, 16).ok())
        })
        .collect::<Option<_>>()?;
    match words.len() {
        1 => Some(IpAddr::from(words.first()?.to_le_bytes())),
        4 => {
            let mut b = [0u8; 16];
            for (i, w) in words.iter().enumerate() {
                b.get_mut(i * 4..i * 4 + 4)?
                    .copy_from_slice(&w.to_le_bytes());
            }
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

/// A Jupyter server process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerProcess {
    pub pid: u32,
    pub uid: Option<u32>,
    /// Command line with token values redacted.
    pub cmdline_redacted: String,
    /// The raw arguments (for config parsing only; never printed).
    #[serde(skip)]
    pub args: Vec<String>,
    /// Auth-relevant environment (`JUPYTER_TOKEN` values replaced by "<set>").
    #[serde(skip)]
    pub env: BTreeMap<String, String>,
    pub listeners: Vec<Listener>,
    /// `sys.prefix` guessed from the executable (`<prefix>/bin/python`).
    pub prefix: Option<PathBuf>,
}

/// Whether a command line is a Jupyter server (not a kernel or a client command).
pub fn is_jupyter_server(args: &[String]) -> bool {
    let joined = args
        .iter()
        .take(4)
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .collect::<Vec<_>>()
        .join(" ");
    if joined.contains("ipykernel") || joined.contains("jupyter-kernel") {
        return false;
    }
    [
        "jupyter-server",
        "jupyter-lab",
        "jupyter-notebook",
        "jupyterhub-singleuser",
        "jupyter_server",
        "jupyter server",
        "jupyter lab",
        "jupyter notebook",
        "jupyterlab",
        "notebook.notebookapp",
        "start-notebook",
        "jupyterhub",
    ]
    .iter()
    .any(|k| joined.contains(k))
}

/// Replace token values in arguments: `--X.token=abc` → `--X.token=<redacted>`, `?token=..`.
pub fn redact_args(args: &[String]) -> String {
    let mut out = Vec::new();
    let mut redact_next = false;
    for a in args {
        if redact_next {
            out.push("<redacted>".to_string());
            redact_next = false;
            continue;
        }
        let lower = a.to_ascii_lowercase();
        if let Some((k, v)) = a.split_once('=') {
            let kl = k.to_ascii_lowercase();
            if (kl.ends_with("token") || kl.ends_with("password") || kl.contains("secret"))
                && !v.is_empty()
                && v != "''"
                && v != "\"\""
            {
                out.push(format!("{k}=<redacted>"));
                continue;
            }
        } else if lower.starts_with("--")
            && (lower.ends_with("token") || lower.ends_with("password"))
        {
            redact_next = true;
        }
        out.push(redact_url_token(a));
    }
    out.join(" ")
}

/// `...?token=abc&x=1` → `...?token=<redacted>&x=1`.
pub fn redact_url_token(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("token=") {
        let (head, tail) = rest.split_at(i + "token=".len());
        out.push_str(head);
        let end = tail.find(['&', ' ', '#', '"', '\'']).unwrap_or(tail.len());
        if end > 0 {
            out.push_str("<redacted>");
        }
        rest = tail.get(end..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// Jupyter server processes of `proc_dir` (normally `/proc`) with their listening sockets.
pub fn processes(proc_dir: &Path) -> Vec<ServerProcess> {
    let mut by_inode: HashMap<u64, Listener> = HashMap::new();
    for f in ["net/tcp", "net/tcp6"] {
        if let Ok(t) = read_small(&proc_dir.join(f), 16 * 1024 * 1024) {
            for l in parse_proc_net_tcp(&t) {
                by_inode.insert(l.inode, l);
            }
        }
    }
    let Ok(rd) = std::fs::read_dir(proc_dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten().take(MAX_PIDS) {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let dir = e.path();
        let Ok(raw) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .take(1000)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !is_jupyter_server(&args) {
            continue;
        }
        let uid = read_small(&dir.join("status"), 64 * 1024)
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|v| v.split_whitespace().nth(1).and_then(|x| x.parse().ok()))
            });
        let mut listeners = Vec::new();
        if let Ok(fds) = std::fs::read_dir(dir.join("fd")) {
            for fd in fds.flatten().take(MAX_FDS) {
                let Ok(target) = std::fs::read_link(fd.path()) else {
                    continue;
                };
                let t = target.to_string_lossy();
                if let Some(inode) = t
                    .strip_prefix("socket:[")
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    if let Some(l) = by_inode.get(&inode) {
                        if !listeners.contains(l) {
                            listeners.push(*l);
                        }
                    }
                }
            }
        }
        let mut env = BTreeMap::new();
        if let Ok(raw) = std::fs::read(dir.join("environ")) {
            for kv in raw.split(|b| *b == 0).take(10_000) {
                let kv = String::from_utf8_lossy(kv);
                if let Some((k, v)) = kv.split_once('=') {
                    if k.starts_with("JUPYTER_") || k == "HOME" {
                        env.insert(k.to_string(), v.to_string());
                    }
                }
            }
        }
        let prefix = std::fs::read_link(dir.join("exe"))
            .ok()
            .and_then(|p| p.parent().and_then(Path::parent).map(Path::to_path_buf));
        out.push(ServerProcess {
            pid,
            uid,
            cmdline_redacted: redact_args(&args),
            args,
            env,
            listeners,
            prefix,
        });
    }
    out.sort_by_key(|p| p.pid);
    out
}

fn read_small(p: &Path, max: u64) -> Result<String, std::io::Error> {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::open(p)?.take(max).read_to_string(&mut s)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:22B8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0\n   1: 00000000:0016 00000000:0000 0A 0 0 0 0 0 0 999\n   2: 0100007F:22B8 0100007F:AAAA 01 0 0 0 0 0 0 1\n";
        let l = parse_proc_net_tcp(t);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].addr.to_string(), "127.0.0.1");
        assert_eq!(l[0].port, 8888);
        assert_eq!(l[0].inode, 12345);
        let t6 = "h\n 0: 00000000000000000000000001000000:22B8 0 0A 0 0 0 0 0 0 77\n";
        assert_eq!(parse_proc_net_tcp(t6)[0].addr.to_string(), "::1");
    }

    #[test]
    fn redaction() {
        let a: Vec<String> = [
            "jupyter-lab",
            "--ServerApp.token=s3cret",
            "--IdentityProvider.token",
            "s3cret",
            "--NotebookApp.token=",
            "http://h/?token=s3cret&a=1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = redact_args(&a);
        assert!(!r.contains("s3cret"), "{r}");
        assert!(r.contains("--NotebookApp.token="));
        assert!(is_jupyter_server(&a));
        assert!(!is_jupyter_server(&[
            "python".into(),
            "-m".into(),
            "ipykernel_launcher".into()
        ]));
    }
}
