//! The host as the audit sees it: users from `/etc/passwd`, their homes, and the Python
//! environments whose `{sys.prefix}/etc/jupyter` may hold configuration.

use super::fsutil;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Most directory entries visited while looking for virtualenvs.
const MAX_VISITS: usize = 20_000;

/// An account from `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    pub uid: u32,
    /// Home as written in passwd (host path).
    pub home: String,
    pub shell: String,
}

impl User {
    /// Shells that do not allow an interactive login.
    pub fn has_login_shell(&self) -> bool {
        let s = self.shell.trim();
        !(s.is_empty()
            || s.ends_with("/nologin")
            || s.ends_with("/false")
            || s.ends_with("/sync")
            || s.ends_with("/halt")
            || s.ends_with("/shutdown"))
    }
}

/// Parse passwd text; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<User> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(User {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                home: f.get(5)?.to_string(),
                shell: f.get(6)?.to_string(),
            })
        })
        .collect()
}

/// Users of the audited root (empty when there is no readable passwd).
pub fn users(root: &Path) -> Vec<User> {
    fsutil::read_text(root, &fsutil::under(root, "/etc/passwd"), 4 * 1024 * 1024)
        .map(|t| parse_passwd(&t))
        .unwrap_or_default()
}

/// A home folder inside the audited root, with the user it belongs to when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    pub path: PathBuf,
    pub user: Option<String>,
}

/// Every home: passwd homes that exist, `/home/*`, and `/root`; deduplicated.
pub fn homes(root: &Path, users: &[User]) -> Vec<Home> {
    let mut out: Vec<Home> = Vec::new();
    let mut push = |path: PathBuf, user: Option<String>| {
        if path.is_dir()
            && fsutil::inside(root, &path).is_some()
            && !out.iter().any(|h| h.path == path)
        {
            out.push(Home { path, user });
        }
    };
    for u in users {
        if u.home.len() > 1 && u.home.starts_with('/') {
            push(fsutil::under(root, &u.home), Some(u.name.clone()));
        }
    }
    for p in fsutil::list_dir(root, &fsutil::under(root, "/home"), 10_000) {
        push(p, None);
    }
    push(fsutil::under(root, "/root"), Some("root".into()));
    out
}

/// Python prefixes (`sys.prefix`) found: `/usr`, `/usr/local`, `/opt/conda`-style installs and
/// every folder holding a `pyvenv.cfg` within a few levels of the homes, `/opt` and `/srv`.
pub fn python_prefixes(root: &Path, homes: &[Home]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in ["/usr", "/usr/local", "/opt/conda"] {
        let d = fsutil::under(root, p);
        if d.is_dir() {
            out.push(d);
        }
    }
    let mut visits = 0usize;
    let mut starts: Vec<(PathBuf, usize)> = homes.iter().map(|h| (h.path.clone(), 4)).collect();
    starts.push((fsutil::under(root, "/opt"), 3));
    starts.push((fsutil::under(root, "/srv"), 3));
    for (dir, depth) in starts {
        // A start folder that is a symlink out of the root is not followed.
        if fsutil::inside(root, &dir).is_some() {
            find_venvs(&dir, depth, &mut visits, &mut out);
        }
    }
    out.dedup();
    out
}

fn find_venvs(dir: &Path, depth: usize, visits: &mut usize, out: &mut Vec<PathBuf>) {
    if *visits > MAX_VISITS {
        return;
    }
    if (dir.join("pyvenv.cfg").is_file() || dir.join("conda-meta").is_dir())
        && !out.contains(&dir.to_path_buf())
    {
        out.push(dir.to_path_buf());
    }
    if depth == 0 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        *visits += 1;
        if *visits > MAX_VISITS {
            return;
        }
        // Never follow symlinks (loops, and ways out of the root).
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        let name = e.file_name();
        let n = name.to_string_lossy();
        if matches!(
            n.as_ref(),
            "node_modules" | ".git" | "site-packages" | "proc" | "sys"
        ) || (n.starts_with('.')
            && !matches!(
                n.as_ref(),
                ".venv" | ".virtualenvs" | ".cache" | ".pyenv" | ".local"
            ))
        {
            continue;
        }
        find_venvs(&e.path(), depth - 1, visits, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd() {
        let u = parse_passwd("root:x:0:0:root:/root:/bin/bash\nbad\nsvc:x:5:5::/srv:/usr/sbin/nologin\nalice:x:1000:1000:A:/home/alice:/bin/zsh\n");
        assert_eq!(u.len(), 3);
        assert!(u[0].has_login_shell());
        assert!(!u[1].has_login_shell());
        assert_eq!(u[2].uid, 1000);
    }
}
