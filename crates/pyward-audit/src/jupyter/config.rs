//! Where Jupyter configuration lives, and the effective settings a server would run with.
//!
//! Precedence follows jupyter_core/traitlets: config directories from highest priority
//! (`JUPYTER_CONFIG_DIR` or `~/.jupyter`, `~/.local/etc/jupyter`) over `{sys.prefix}/etc/jupyter`
//! over `/usr/local/etc/jupyter` and `/etc/jupyter`; per app file (`jupyter_config`,
//! `jupyter_server_config`, then the extension apps `jupyter_notebook_config` and
//! `jupyter_lab_config`, whose `c.ServerApp.*` are pushed back into the server) lower-priority
//! directories load first and later loads win; in one directory `*.d/*.json`, then `.py`, then
//! `.json`. The command line overrides every file. Legacy `NotebookApp.*` is forwarded to
//! `ServerApp.*` (notebook_shim) when `ServerApp` does not set the trait itself.

use super::fsutil;
use super::pyconfig::{self, Assignment, Value, MAX_CONFIG_BYTES};
use pyward_core::Warning;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Config file base names, in load order.
pub const CONFIG_BASES: [&str; 4] = [
    "jupyter_config",
    "jupyter_server_config",
    "jupyter_notebook_config",
    "jupyter_lab_config",
];
/// Most files read from one `*.d/` folder.
const MAX_D_FILES: usize = 256;

/// The syntax of the place a setting came from (for writing the fix in the same syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Syntax {
    Py,
    Json,
    CommandLine,
}

/// Where a setting was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Origin {
    File {
        path: PathBuf,
        line: u32,
        syntax: Syntax,
    },
    CommandLine {
        pid: u32,
    },
    Env {
        var: String,
        pid: Option<u32>,
    },
}

impl Origin {
    /// `file:line`, `process 123 command line`, `environment JUPYTER_TOKEN`.
    pub fn describe(&self) -> String {
        match self {
            Origin::File { path, line, .. } => format!("{}:{line}", fsutil::display(path)),
            Origin::CommandLine { pid } => format!("command line of process {pid}"),
            Origin::Env { var, pid: Some(p) } => format!("environment {var} of process {p}"),
            Origin::Env { var, pid: None } => format!("environment {var}"),
        }
    }
    pub fn syntax(&self) -> Syntax {
        match self {
            Origin::File { syntax, .. } => *syntax,
            _ => Syntax::CommandLine,
        }
    }
}

/// One effective `Class.trait = value` and where it was set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub class: String,
    pub trait_name: String,
    pub value: Value,
    pub origin: Origin,
}

impl Setting {
    /// `c.ServerApp.ip = '*'` as it would be written in a `.py` file.
    pub fn key(&self) -> String {
        format!("{}.{}", self.class, self.trait_name)
    }
}

/// Reads and caches config files, collecting one warning per unreadable file.
#[derive(Default)]
pub struct ConfigLoader {
    root: PathBuf,
    cache: HashMap<PathBuf, Vec<Assignment>>,
    /// Every config file found, in the order first read.
    pub files: Vec<PathBuf>,
    pub warnings: Vec<Warning>,
}

impl ConfigLoader {
    pub fn new(root: &Path) -> Self {
        ConfigLoader {
            root: root.to_path_buf(),
            ..Default::default()
        }
    }

    /// Assignments of one file (empty and a warning when unreadable or unparseable).
    fn load(&mut self, path: &Path, syntax: Syntax) -> Vec<Setting> {
        if !self.cache.contains_key(path) {
            let parsed = match fsutil::read_text(&self.root, path, MAX_CONFIG_BYTES) {
                Ok(text) => match syntax {
                    Syntax::Json => pyconfig::parse_json(&text).unwrap_or_else(|e| {
                        self.warnings.push(Warning::new(
                            fsutil::display(path),
                            format!("Jupyter config ignored: {e}; fix or remove the file"),
                        ));
                        Vec::new()
                    }),
                    _ => pyconfig::parse_py(&text),
                },
                Err(e) => {
                    self.warnings.push(Warning::new(
                        fsutil::display(path),
                        format!("Jupyter config not read: {e}"),
                    ));
                    Vec::new()
                }
            };
            self.files.push(path.to_path_buf());
            self.cache.insert(path.to_path_buf(), parsed);
        }
        self.cache
            .get(path)
            .map(|v| {
                v.iter()
                    .map(|a| Setting {
                        class: a.class.clone(),
                        trait_name: a.trait_name.clone(),
                        value: a.value.clone(),
                        origin: Origin::File {
                            path: path.to_path_buf(),
                            line: a.line,
                            syntax,
                        },
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Settings from `dirs` (highest priority first), merged with Jupyter's precedence.
    pub fn effective(&mut self, label: &str, dirs: &[PathBuf]) -> Effective {
        let mut eff = Effective {
            label: label.to_string(),
            ..Default::default()
        };
        for base in CONFIG_BASES {
            for dir in dirs.iter().rev() {
                let d = dir.join(format!("{base}.d"));
                if d.is_dir() {
                    let files: Vec<PathBuf> = fsutil::list_dir(&self.root, &d, MAX_D_FILES)
                        .into_iter()
                        .filter(|p| p.extension().is_some_and(|e| e == "json"))
                        .collect();
                    for f in files {
                        for s in self.load(&f, Syntax::Json) {
                            eff.set(s);
                        }
                    }
                }
                for (ext, syntax) in [("py", Syntax::Py), ("json", Syntax::Json)] {
                    let f = dir.join(format!("{base}.{ext}"));
                    if f.symlink_metadata().is_ok() {
                        for s in self.load(&f, syntax) {
                            eff.set(s);
                        }
                    }
                }
            }
        }
        eff
    }
}

/// The settings a server would run with, plus the environment that matters for auth.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Effective {
    /// What these settings are for ("user alice", "process 1234").
    pub label: String,
    pub settings: BTreeMap<(String, String), Setting>,
    /// `JUPYTER_TOKEN`/`JUPYTER_TOKEN_FILE` when set (values never kept).
    pub env_token: Option<Origin>,
}

/// Auth as configured.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// Token `''` and no password: anyone who can connect runs code.
    Disabled {
        token: Setting,
        password: Option<Setting>,
    },
    /// A token (configured, from the environment, or generated) or a password.
    Enabled,
    /// Set by an expression pyward does not evaluate.
    Unknown(Setting),
}

impl Effective {
    pub fn set(&mut self, s: Setting) {
        self.settings
            .insert((s.class.clone(), s.trait_name.clone()), s);
    }

    fn raw(&self, class: &str, name: &str) -> Option<&Setting> {
        self.settings.get(&(class.to_string(), name.to_string()))
    }

    /// First of `keys` set (ServerApp before NotebookApp: notebook_shim forwarding).
    pub fn get(&self, keys: &[(&str, &str)]) -> Option<&Setting> {
        keys.iter().find_map(|(c, t)| self.raw(c, t))
    }

    pub fn token(&self) -> Option<&Setting> {
        self.get(&[
            ("IdentityProvider", "token"),
            ("ServerApp", "token"),
            ("NotebookApp", "token"),
        ])
        .filter(|s| !matches!(s.value.as_str(), Some("<generated>" | "<DEPRECATED>")))
    }
    pub fn password(&self) -> Option<&Setting> {
        self.get(&[
            ("PasswordIdentityProvider", "hashed_password"),
            ("IdentityProvider", "hashed_password"),
            ("ServerApp", "password"),
            ("NotebookApp", "password"),
        ])
    }
    /// A ServerApp trait, or its legacy NotebookApp name.
    pub fn app(&self, name: &str) -> Option<&Setting> {
        self.get(&[("ServerApp", name), ("NotebookApp", name)])
    }
    pub fn root_dir(&self) -> Option<&Setting> {
        self.get(&[
            ("ServerApp", "root_dir"),
            ("ServerApp", "notebook_dir"),
            ("NotebookApp", "notebook_dir"),
        ])
    }
    pub fn flag(&self, name: &str) -> Option<(bool, &Setting)> {
        self.app(name)
            .and_then(|s| s.value.as_bool().map(|b| (b, s)))
    }

    pub fn auth(&self) -> Auth {
        let password = self.password().cloned();
        let has_password = match &password {
            Some(p) if p.value.is_unknown() => return Auth::Unknown(p.clone()),
            Some(p) => p.value.as_str().is_some_and(|s| !s.is_empty()),
            None => false,
        };
        match self.token() {
            Some(t) => match &t.value {
                Value::Str(s) if s.is_empty() && !has_password => Auth::Disabled {
                    token: t.clone(),
                    password,
                },
                Value::None if !has_password => Auth::Disabled {
                    token: t.clone(),
                    password,
                },
                Value::Unknown(_) if !has_password => Auth::Unknown(t.clone()),
                _ => Auth::Enabled,
            },
            None => Auth::Enabled,
        }
    }

    /// The listening address as configured (`None` = default `localhost`).
    pub fn ip(&self) -> Option<(&str, &Setting)> {
        self.app("ip")
            .and_then(|s| s.value.as_str().map(|v| (v, s)))
    }

    /// Whether the configured address is reachable beyond this host.
    pub fn exposed(&self) -> Option<&Setting> {
        self.ip()
            .filter(|(ip, _)| !is_loopback_host(ip))
            .map(|(_, s)| s)
    }

    pub fn tls(&self) -> bool {
        let set = |n: &str| {
            self.app(n).is_some_and(|s| match &s.value {
                Value::Str(v) => !v.is_empty(),
                Value::Unknown(_) => true,
                _ => false,
            })
        };
        set("certfile") && set("keyfile")
    }
}

/// `localhost`, `127.x.y.z`, `::1` (and bracketed forms) are loopback; `''`, `*`, `0.0.0.0`,
/// `::` and anything else are not.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") || h.eq_ignore_ascii_case("localhost.localdomain") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Settings from a server's command line: `--Class.trait=value`, `--Class.trait value`, and the
/// aliases/flags of serverapp.py (`--ip`, `--port`, `--certfile`, `--keyfile`, `--notebook-dir`,
/// `--allow-root`).
pub fn from_cmdline(args: &[String], pid: u32) -> Vec<Setting> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        i += 1;
        let Some(opt) = arg.strip_prefix("--") else {
            continue;
        };
        let (name, inline) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (opt, None),
        };
        let alias = match name {
            "ip" | "port" | "certfile" | "keyfile" => Some(name),
            "notebook-dir" | "root-dir" => Some("root_dir"),
            _ => None,
        };
        let (class, trait_name, value) = if name == "allow-root" {
            (
                "ServerApp".to_string(),
                "allow_root".to_string(),
                Value::Bool(true),
            )
        } else if let Some(t) = alias {
            let Some(v) = inline.or_else(|| args.get(i).inspect(|_| i += 1).cloned()) else {
                continue;
            };
            ("ServerApp".to_string(), t.to_string(), cli_value(&v))
        } else if let Some((c, t)) = name.split_once('.') {
            if c.is_empty()
                || t.is_empty()
                || !c.chars().all(|ch| ch.is_alphanumeric() || ch == '_')
            {
                continue;
            }
            let v = match inline {
                Some(v) => v,
                None => match args.get(i) {
                    Some(v) if !v.starts_with("--") => {
                        i += 1;
                        v.clone()
                    }
                    _ => continue,
                },
            };
            (c.to_string(), t.to_string(), cli_value(&v))
        } else {
            continue;
        };
        out.push(Setting {
            class,
            trait_name,
            value,
            origin: Origin::CommandLine { pid },
        });
    }
    out
}

/// traitlets' command-line value: quotes stripped, True/False, integers, else a string.
fn cli_value(v: &str) -> Value {
    let t = v.trim();
    for q in ['\'', '"'] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return Value::Str(t[1..t.len() - 1].to_string());
        }
    }
    match t {
        "True" | "true" => Value::Bool(true),
        "False" | "false" => Value::Bool(false),
        _ => t
            .parse::<i64>()
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Str(t.to_string())),
    }
}

/// Auth-relevant environment of a server (`JUPYTER_TOKEN` only counts when non-empty).
pub fn env_token(env: &BTreeMap<String, String>, pid: Option<u32>) -> Option<Origin> {
    if env.get("JUPYTER_TOKEN").is_some_and(|t| !t.is_empty()) {
        return Some(Origin::Env {
            var: "JUPYTER_TOKEN".into(),
            pid,
        });
    }
    env.get("JUPYTER_TOKEN_FILE")
        .filter(|f| !f.is_empty())
        .map(|_| Origin::Env {
            var: "JUPYTER_TOKEN_FILE".into(),
            pid,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, s: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, s).unwrap();
    }

    #[test]
    fn precedence_and_forwarding() {
        let t = tempfile::tempdir().unwrap();
        let user = t.path().join("home/a/.jupyter");
        let sys = t.path().join("etc/jupyter");
        write(
            &sys.join("jupyter_server_config.py"),
            "c.ServerApp.ip = '0.0.0.0'\nc.ServerApp.token = 'abc'\n",
        );
        write(
            &user.join("jupyter_server_config.py"),
            "c.ServerApp.token = ''\n",
        );
        // json beats py in the same folder
        write(
            &user.join("jupyter_server_config.json"),
            "{\"ServerApp\": {\"ip\": \"127.0.0.1\"}}",
        );
        write(
            &user.join("jupyter_notebook_config.py"),
            "c.NotebookApp.allow_root = True\n",
        );
        let mut l = ConfigLoader::new(t.path());
        let e = l.effective("a", &[user.clone(), sys.clone()]);
        assert!(matches!(e.auth(), Auth::Disabled { .. }));
        assert_eq!(e.ip().unwrap().0, "127.0.0.1");
        assert!(e.exposed().is_none());
        assert!(e.flag("allow_root").unwrap().0);
        // without the user folder the system token stands
        let e2 = l.effective("sys", &[sys]);
        assert_eq!(e2.auth(), Auth::Enabled);
        assert!(e2.exposed().is_some());
    }

    #[test]
    fn cmdline() {
        let args: Vec<String> = [
            "jupyter-server",
            "--ServerApp.token=",
            "--ip",
            "0.0.0.0",
            "--allow-root",
            "--NotebookApp.password=''",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let s = from_cmdline(&args, 7);
        let mut e = Effective::default();
        for x in s {
            e.set(x);
        }
        assert!(matches!(e.auth(), Auth::Disabled { .. }));
        assert_eq!(e.ip().unwrap().0, "0.0.0.0");
        assert!(e.flag("allow_root").unwrap().0);
    }

    #[test]
    fn loopback() {
        for h in ["localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["", "*", "0.0.0.0", "::", "10.0.0.5", "example.com"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
