//! Who can reach the host and the notebooks: SSH `authorized_keys` of every home, JupyterHub
//! users from its sqlite database, and what `nbsignatures.db` really holds (trusted-notebook
//! signatures with timestamps; no users).

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// One key line of an `authorized_keys` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorizedKey {
    pub line: u32,
    pub key_type: String,
    /// Key size in bits when it can be read from the key blob.
    pub bits: Option<u32>,
    /// `SHA256:<base64>` as `ssh-keygen -l` prints it.
    pub fingerprint: Option<String>,
    pub comment: String,
    /// Options before the key (`from="..."`, `command="..."`, `no-pty`, ...).
    pub options: Vec<String>,
}

const KEY_TYPES: [&str; 8] = [
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

fn is_key_type(t: &str) -> bool {
    KEY_TYPES.contains(&t) || (t.ends_with("-cert-v01@openssh.com") && t.len() < 64)
}

/// Parse `authorized_keys` text. Lines that are not keys are returned as problems.
pub fn parse_authorized_keys(text: &str) -> (Vec<AuthorizedKey>, Vec<(u32, String)>) {
    let mut keys = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in text.lines().enumerate().take(100_000) {
        let n = i as u32 + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (options, rest) = split_options(line);
        let mut f = rest.split_whitespace();
        let (Some(kt), Some(blob)) = (f.next(), f.next()) else {
            bad.push((n, "not a key line".into()));
            continue;
        };
        if !is_key_type(kt) {
            bad.push((
                n,
                format!(
                    "unknown key type `{}`",
                    kt.chars().take(40).collect::<String>()
                ),
            ));
            continue;
        }
        let comment: String = f.collect::<Vec<_>>().join(" ");
        let decoded = base64::engine::general_purpose::STANDARD.decode(blob).ok();
        let (bits, fingerprint) = match &decoded {
            Some(b) => (
                key_bits(kt, b),
                Some(format!(
                    "SHA256:{}",
                    base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(b))
                )),
            ),
            None => {
                bad.push((n, "key data is not valid base64".into()));
                (None, None)
            }
        };
        keys.push(AuthorizedKey {
            line: n,
            key_type: kt.to_string(),
            bits,
            fingerprint,
            comment,
            options,
        });
    }
    (keys, bad)
}

/// Split leading options (comma-separated, quotes may hold commas and spaces) from the key.
fn split_options(line: &str) -> (Vec<String>, &str) {
    let first = line.split_whitespace().next().unwrap_or("");
    if is_key_type(first) {
        return (Vec::new(), line);
    }
    let mut opts = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut escaped = false;
    for (i, ch) in line.char_indices() {
        if escaped {
            cur.push(ch);
            escaped = false;
            continue;
        }
        match ch {
            '\\' if in_q => {
                cur.push(ch);
                escaped = true;
            }
            '"' => {
                in_q = !in_q;
                cur.push(ch);
            }
            ',' if !in_q => opts.push(std::mem::take(&mut cur)),
            ' ' | '\t' if !in_q => {
                opts.push(std::mem::take(&mut cur));
                return (
                    opts.into_iter().filter(|o| !o.is_empty()).collect(),
                    line.get(i..).unwrap_or("").trim_start(),
                );
            }
            _ => cur.push(ch),
        }
    }
    (Vec::new(), line)
}

/// Read an SSH wire-format string at `pos`.
fn wire_string<'a>(b: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = u32::from_be_bytes(b.get(*pos..*pos + 4)?.try_into().ok()?) as usize;
    let s = b.get(*pos + 4..(*pos + 4).checked_add(len)?)?;
    *pos += 4 + len;
    Some(s)
}

fn mpint_bits(m: &[u8]) -> u32 {
    let m: &[u8] = match m.iter().position(|b| *b != 0) {
        Some(i) => m.get(i..).unwrap_or(&[]),
        None => return 0,
    };
    let lead = m.first().copied().unwrap_or(0);
    (m.len() as u32 - 1) * 8 + (8 - lead.leading_zeros())
}

/// Key size from the blob: RSA modulus, DSA p, curve size, ed25519 = 256.
fn key_bits(kt: &str, blob: &[u8]) -> Option<u32> {
    let mut pos = 0;
    let inner = std::str::from_utf8(wire_string(blob, &mut pos)?)
        .ok()?
        .to_string();
    let base = inner.trim_end_matches("-cert-v01@openssh.com");
    if inner.contains("-cert-") {
        wire_string(blob, &mut pos)?; // nonce
    }
    let _ = kt;
    match base {
        "ssh-rsa" => {
            wire_string(blob, &mut pos)?; // e
            Some(mpint_bits(wire_string(blob, &mut pos)?))
        }
        "ssh-dss" => Some(mpint_bits(wire_string(blob, &mut pos)?)),
        "ssh-ed25519" | "sk-ssh-ed25519@openssh.com" => Some(256),
        "ecdsa-sha2-nistp256" | "sk-ecdsa-sha2-nistp256@openssh.com" => Some(256),
        "ecdsa-sha2-nistp384" => Some(384),
        "ecdsa-sha2-nistp521" => Some(521),
        _ => None,
    }
}

/// A JupyterHub user row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubUser {
    pub name: String,
    pub admin: Option<bool>,
    pub last_activity: Option<String>,
}

fn open_ro(path: &Path) -> Result<rusqlite::Connection, String> {
    let c = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open as SQLite: {e}"))?;
    // Bound the work a hostile database can cause.
    let _ = c.busy_timeout(std::time::Duration::from_secs(1));
    Ok(c)
}

fn columns(c: &rusqlite::Connection, table: &str) -> Result<Vec<String>, String> {
    let mut st = c
        .prepare(&format!("PRAGMA table_info({table})"))
        .map_err(|e| format!("not a readable database: {e}"))?;
    let rows = st
        .query_map([], |r| r.get::<_, String>(1))
        .map_err(|e| e.to_string())?;
    Ok(rows.flatten().collect())
}

/// Users of a JupyterHub database (`jupyterhub.sqlite`), read only, at most 10 000.
pub fn hub_users(path: &Path) -> Result<Vec<HubUser>, String> {
    let c = open_ro(path)?;
    let cols = columns(&c, "users")?;
    if !cols.iter().any(|x| x == "name") {
        return Err("no `users` table with a `name` column: not a JupyterHub database".into());
    }
    let admin = if cols.iter().any(|x| x == "admin") {
        "admin"
    } else {
        "NULL"
    };
    let last = if cols.iter().any(|x| x == "last_activity") {
        "CAST(last_activity AS TEXT)"
    } else {
        "NULL"
    };
    let mut st = c
        .prepare(&format!(
            "SELECT name, {admin}, {last} FROM users ORDER BY name LIMIT 10000"
        ))
        .map_err(|e| e.to_string())?;
    let rows = st
        .query_map([], |r| {
            Ok(HubUser {
                name: r.get::<_, String>(0)?,
                admin: r.get::<_, Option<bool>>(1).ok().flatten(),
                last_activity: r.get::<_, Option<String>>(2).ok().flatten(),
            })
        })
        .map_err(|e| e.to_string())?;
    Ok(rows.flatten().collect())
}

/// What an `nbsignatures.db` shows: trusted-notebook signatures over time, never users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signatures {
    pub rows: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

pub fn nbsignatures(path: &Path) -> Result<Signatures, String> {
    let c = open_ro(path)?;
    if !columns(&c, "nbsignatures")?
        .iter()
        .any(|x| x == "last_seen")
    {
        return Err("no `nbsignatures` table: not a notebook signature database".into());
    }
    c.query_row(
        "SELECT COUNT(*), CAST(MIN(last_seen) AS TEXT), CAST(MAX(last_seen) AS TEXT) FROM nbsignatures",
        [],
        |r| Ok(Signatures { rows: r.get::<_, i64>(0)?.max(0) as u64, first_seen: r.get(1)?, last_seen: r.get(2)? }),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(parts: &[&[u8]]) -> String {
        let mut b = Vec::new();
        for p in parts {
            b.extend_from_slice(&(p.len() as u32).to_be_bytes());
            b.extend_from_slice(p);
        }
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn key_types_bits_options() {
        let mut n = vec![0u8];
        n.extend(std::iter::repeat_n(0xC3, 256)); // 2048-bit modulus
        let rsa = wire(&[b"ssh-rsa", &[1, 0, 1], &n]);
        let dss = wire(&[b"ssh-dss", &[0x80; 128], &[1], &[1], &[1]]);
        let ed = wire(&[b"ssh-ed25519", &[7; 32]]);
        let text = format!(
            "# comment\nssh-rsa {rsa} alice@laptop\nfrom=\"10.0.0.1,10.0.0.2\",command=\"/bin/echo hi\",no-pty ssh-ed25519 {ed} ops key\nssh-dss {dss}\nnot a key\nssh-ed25519 !!!notbase64 x\n"
        );
        let (keys, bad) = parse_authorized_keys(&text);
        assert_eq!(keys.len(), 4);
        assert_eq!(
            (keys[0].bits, keys[0].comment.as_str()),
            (Some(2048), "alice@laptop")
        );
        assert!(keys[0].fingerprint.as_ref().unwrap().starts_with("SHA256:"));
        assert_eq!(
            keys[1].options,
            vec![
                "from=\"10.0.0.1,10.0.0.2\"",
                "command=\"/bin/echo hi\"",
                "no-pty"
            ]
        );
        assert_eq!(
            (keys[1].bits, keys[1].comment.as_str()),
            (Some(256), "ops key")
        );
        assert_eq!(keys[2].bits, Some(1024));
        assert_eq!(bad.len(), 2);
    }
}
