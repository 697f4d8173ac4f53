//! Detector configuration, read from the `- detector: NAME` items of Falco-format rules files.
//!
//! ```yaml
//! - detector: ransomware
//!   enabled: true
//!   threshold: 3.0
//!   window: 120s
//!   decoys: [/home/*/Documents/.~decoy*.docx]
//! ```
//!
//! Items are applied in file order on top of the built-in defaults ([`DetectConfig::default`],
//! the same values as `rules/pyward_detectors.yaml`): a later item changes only the keys it
//! names, so a local file can say `- detector: drift` / `enabled: false` and nothing else.
//! List-valued keys replace the list unless the item says `append: true`. Unknown detectors,
//! unknown keys and ill-typed values are errors with `file:line:column`, so that a typo in
//! a threshold cannot silently leave the default in force. Every other item of a rules file
//! (rules, macros, lists, versions) is ignored here; the rules loader reads those.

use std::path::{Path, PathBuf};

use pyward_rules::Priority;

use crate::glob::Glob;
use crate::yaml::{self, Node};

/// Why detector configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The file could not be read.
    #[error("{}: cannot read detector configuration: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A value, key or the YAML itself is wrong at a position.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what to write instead.
        message: String,
    },
}

/// Who may do what a detector would otherwise report: every criterion given must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Allow {
    /// Name (comm) or executable base name of the process doing it.
    pub process: Vec<Glob>,
    /// Python module run with `python -m MODULE` by the process doing it.
    pub module: Vec<String>,
    /// Name of any ancestor of the process doing it.
    pub ancestor: Vec<Glob>,
    /// Path of the file concerned.
    pub path: Vec<Glob>,
}

impl Allow {
    /// Whether this entry covers `chain` (the acting process first, then its ancestors)
    /// acting on `path`.
    pub(crate) fn matches(&self, chain: &[crate::procs::ProcView], path: Option<&str>) -> bool {
        let Some(me) = chain.first() else {
            return false;
        };
        if !self.process.is_empty() && !me.names().any(|n| crate::glob::any_match(&self.process, n))
        {
            return false;
        }
        if !self.module.is_empty()
            && !me
                .python_module()
                .is_some_and(|m| self.module.iter().any(|x| x == m))
        {
            return false;
        }
        if !self.ancestor.is_empty()
            && !chain
                .iter()
                .skip(1)
                .any(|a| a.names().any(|n| crate::glob::any_match(&self.ancestor, n)))
        {
            return false;
        }
        if !self.path.is_empty() && !path.is_some_and(|p| crate::glob::any_match(&self.path, p)) {
            return false;
        }
        true
    }

    /// Whether this entry needs the process's ancestors.
    pub(crate) fn needs_ancestors(&self) -> bool {
        !self.ancestor.is_empty()
    }
}

/// Whether any entry of `allows` covers `chain` acting on `path`.
pub(crate) fn allowed(
    allows: &[Allow],
    chain: &[crate::procs::ProcView],
    path: Option<&str>,
) -> bool {
    allows.iter().any(|a| a.matches(chain, path))
}

/// Process-tree bookkeeping shared by the detectors (`- detector: tracking`).
#[derive(Clone, Debug, PartialEq)]
pub struct TrackingConfig {
    /// Processes that are not part of a workload's tree (init, container shims, sshd, tmux,
    /// the Jupyter server, pyward itself): the tree root is the ancestor just below one.
    pub tree_boundaries: Vec<Glob>,
    /// Most processes tracked at once (least recently seen evicted).
    pub max_processes: usize,
}

/// Drift: running what was written after the monitor (or the container) started.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftConfig {
    /// Detector on/off.
    pub enabled: bool,
    /// Priority of every drift alert (default: per rule, Critical or Warning).
    pub priority: Option<Priority>,
    /// Extra tags added to the built-in ones (MITRE ids, `drift`...).
    pub tags: Vec<String>,
    /// Writers and paths whose files may be run (package managers).
    pub allow: Vec<Allow>,
    /// Programs whose first non-option argument is a script they run.
    pub interpreters: Vec<Glob>,
    /// Report scripts run by an interpreter.
    pub scripts: bool,
    /// Report `chmod +x` of a drifted file.
    pub chmod: bool,
    /// Report executables run from a memfd.
    pub memfd: bool,
    /// Report executables run from these paths (shared memory).
    pub shm_paths: Vec<Glob>,
    /// Report executables deleted when they were run.
    pub deleted: bool,
    /// Also count an executable whose inode change time is after the monitor (or its
    /// container) started, when its write was not seen.
    pub exe_ctime: bool,
    /// Report executables on a container's upper (writable) layer.
    pub upper_layer: bool,
    /// Most written files remembered (least recently touched evicted).
    pub max_files: usize,
}

/// Ransomware: many files of one process tree turned into opaque data in a short time.
#[derive(Clone, Debug, PartialEq)]
pub struct RansomwareConfig {
    /// Detector on/off.
    pub enabled: bool,
    /// Priority of the encryption alert.
    pub priority: Priority,
    /// Extra tags.
    pub tags: Vec<String>,
    /// Length of the sliding window, ns.
    pub window_ns: u64,
    /// Score (about one point per file encrypted) at which the tree is reported.
    pub threshold: f64,
    /// Distinct files that must have contributed to the score.
    pub min_files: usize,
    /// Normalised entropy (0..1) above which unrecognised bytes count as random-looking.
    pub entropy_high: f64,
    /// Processes and paths never counted (backup or encryption tools you run on purpose).
    pub allow: Vec<Allow>,
    /// Decoy (canary) files: any write, rename or deletion is reported at once.
    pub decoys: Vec<Glob>,
    /// Priority of a decoy alert.
    pub decoy_priority: Priority,
    /// Paths ignored (pseudo file systems).
    pub exclude_paths: Vec<Glob>,
    /// Extensions ransomware gives encrypted files (lower case, no dot).
    pub ransom_extensions: Vec<String>,
    /// Most process trees tracked at once.
    pub max_trees: usize,
    /// Most files remembered per tree.
    pub max_files_per_tree: usize,
}

/// Self-deleting scripts and executables.
#[derive(Clone, Debug, PartialEq)]
pub struct SelfDeleteConfig {
    /// Detector on/off.
    pub enabled: bool,
    /// Priority of the alert.
    pub priority: Priority,
    /// Extra tags.
    pub tags: Vec<String>,
    /// Programs whose first non-option argument is the script they run.
    pub interpreters: Vec<Glob>,
    /// Processes allowed to delete their own script (pip upgrading itself).
    pub allow: Vec<Allow>,
    /// How many ancestors' scripts count as "its own" (`rm -- "$0"` runs in a child).
    pub ancestor_depth: usize,
}

/// Every detector's configuration.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct DetectConfig {
    /// Process-tree bookkeeping.
    pub tracking: TrackingConfig,
    /// Drift detector.
    pub drift: DriftConfig,
    /// Ransomware detector.
    pub ransomware: RansomwareConfig,
    /// Self-delete detector.
    pub self_delete: SelfDeleteConfig,
}

fn globs(v: &[&str]) -> Vec<Glob> {
    v.iter().map(|s| Glob::new(s)).collect()
}

const INTERPRETERS: &[&str] = &[
    "python*", "pypy*", "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox", "perl*",
    "ruby*", "node", "nodejs", "php*", "lua*", "tclsh*", "Rscript",
];

const PACKAGE_MANAGERS: &[&str] = &[
    "pip",
    "pip3",
    "pip3.*",
    "uv",
    "uvx",
    "poetry",
    "pdm",
    "pipx",
    "virtualenv",
    "conda",
    "mamba",
    "micromamba",
    "apt",
    "apt-get",
    "dpkg",
    "dpkg-deb",
    "rpm",
    "dnf",
    "yum",
    "apk",
    "unattended-upgr*",
];

impl Default for TrackingConfig {
    fn default() -> Self {
        TrackingConfig {
            tree_boundaries: globs(&[
                "systemd",
                "init",
                "containerd-shim*",
                "containerd",
                "dockerd",
                "runc",
                "runc:*",
                "conmon",
                "crun",
                "tini",
                "dumb-init",
                "docker-init",
                "sshd",
                "sshd-session",
                "tmux*",
                "screen",
                "SCREEN",
                "cron",
                "crond",
                "login",
                "jupyter*",
                "pyward",
            ]),
            max_processes: 32_768,
        }
    }
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            enabled: true,
            priority: None,
            tags: Vec::new(),
            allow: vec![
                Allow {
                    process: globs(PACKAGE_MANAGERS),
                    ..Allow::default()
                },
                Allow {
                    module: ["pip", "ensurepip", "venv", "virtualenv"]
                        .map(String::from)
                        .to_vec(),
                    ..Allow::default()
                },
                // `git init` probes core.fileMode by chmod +x of the .git/config it wrote.
                Allow {
                    process: globs(&["git"]),
                    path: globs(&["**/.git/**"]),
                    ..Allow::default()
                },
                // pyenv's rehash (bash scripts, run after pip installs) rewrites and chmods
                // its shims; they run as `bash` (`#!/usr/bin/env bash`), so the comm is bash.
                Allow {
                    process: globs(&["bash"]),
                    path: globs(&["**/.pyenv/shims/**"]),
                    ..Allow::default()
                },
            ],
            interpreters: globs(INTERPRETERS),
            scripts: true,
            chmod: true,
            memfd: true,
            shm_paths: globs(&["/dev/shm/**", "/run/shm/**"]),
            deleted: true,
            exe_ctime: true,
            upper_layer: true,
            max_files: 65_536,
        }
    }
}

impl Default for RansomwareConfig {
    fn default() -> Self {
        RansomwareConfig {
            enabled: true,
            priority: Priority::Critical,
            tags: Vec::new(),
            window_ns: 120 * 1_000_000_000,
            threshold: 3.0,
            min_files: 3,
            entropy_high: 0.85,
            allow: Vec::new(),
            decoys: Vec::new(),
            decoy_priority: Priority::Critical,
            exclude_paths: globs(&["/proc/**", "/sys/**", "/dev/**"]),
            ransom_extensions: [
                "encrypted",
                "enc",
                "locked",
                "crypt",
                "crypted",
                "crypto",
                "cry",
                "ransom",
                "wncry",
                "wcry",
                "locky",
                "cerber",
            ]
            .map(String::from)
            .to_vec(),
            max_trees: 1024,
            max_files_per_tree: 4096,
        }
    }
}

impl Default for SelfDeleteConfig {
    fn default() -> Self {
        SelfDeleteConfig {
            enabled: true,
            priority: Priority::Warning,
            tags: Vec::new(),
            interpreters: globs(INTERPRETERS),
            allow: vec![
                Allow {
                    process: globs(&[
                        "pip",
                        "pip3",
                        "pip3.*",
                        "uv",
                        "conda",
                        "mamba",
                        "micromamba",
                    ]),
                    ..Allow::default()
                },
                Allow {
                    module: vec!["pip".to_owned()],
                    ..Allow::default()
                },
            ],
            ancestor_depth: 4,
        }
    }
}

/// Read the `detector` items of `files`, in order, over the defaults.
pub fn from_yaml_files(files: &[PathBuf]) -> Result<DetectConfig, DetectError> {
    let mut cfg = DetectConfig::default();
    for f in files {
        let text = read_bounded(f)?;
        apply_yaml(&mut cfg, &text, f)?;
    }
    Ok(cfg)
}

/// Read the `detector` items of one YAML text (named `file` in errors) over the defaults.
pub fn from_yaml_str(text: &str, file: &Path) -> Result<DetectConfig, DetectError> {
    let mut cfg = DetectConfig::default();
    apply_yaml(&mut cfg, text, file)?;
    Ok(cfg)
}

fn read_bounded(f: &Path) -> Result<String, DetectError> {
    use std::io::Read;
    let io = |source| DetectError::Io {
        file: f.to_owned(),
        source,
    };
    let file = std::fs::File::open(f).map_err(io)?;
    let mut buf = Vec::new();
    file.take(yaml::MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > yaml::MAX_FILE_BYTES {
        return Err(DetectError::Invalid {
            file: f.to_owned(),
            line: 1,
            column: 1,
            message: format!(
                "file is larger than {} MiB; split it or check it is a rules file",
                yaml::MAX_FILE_BYTES >> 20
            ),
        });
    }
    String::from_utf8(buf).map_err(|_| DetectError::Invalid {
        file: f.to_owned(),
        line: 1,
        column: 1,
        message: "file is not UTF-8 text".into(),
    })
}

/// Apply the `detector` items of `text` to `cfg`.
pub fn apply_yaml(cfg: &mut DetectConfig, text: &str, file: &Path) -> Result<(), DetectError> {
    let docs = yaml::parse_documents(text).map_err(|e| DetectError::Invalid {
        file: file.to_owned(),
        line: e.pos.line,
        column: e.pos.col,
        message: e.message,
    })?;
    let cx = Cx { file };
    for doc in &docs {
        // Non-sequence documents are the rules loader's to complain about.
        let Node::Seq { items, .. } = doc else {
            continue;
        };
        for item in items {
            if let Some(name) = item.get("detector") {
                cx.detector(cfg, item, name)?;
            }
        }
    }
    Ok(())
}

struct Cx<'a> {
    file: &'a Path,
}

type R<T> = Result<T, DetectError>;

impl Cx<'_> {
    fn err(&self, n: &Node, message: impl Into<String>) -> DetectError {
        let p = n.pos();
        DetectError::Invalid {
            file: self.file.to_owned(),
            line: p.line,
            column: p.col,
            message: message.into(),
        }
    }

    fn detector(&self, cfg: &mut DetectConfig, item: &Node, name: &Node) -> R<()> {
        let Some(name_s) = name.as_str() else {
            return Err(self.err(
                name,
                format!("`detector` must be a name, not {}", name.kind()),
            ));
        };
        if !matches!(
            name_s,
            "tracking" | "drift" | "ransomware" | "self_delete" | "self-delete"
        ) {
            return Err(self.err(
                name,
                format!(
                    "unknown detector {name_s:?}: use drift, ransomware, self_delete or tracking"
                ),
            ));
        }
        let Node::Map { entries, .. } = item else {
            return Ok(());
        };
        let append = match item.get("append") {
            Some(v) => self.boolean(v)?,
            None => false,
        };
        for (k, v) in entries {
            let key = k.as_str().unwrap_or("");
            if matches!(key, "detector" | "append" | "desc") {
                continue;
            }
            let known = match name_s {
                "tracking" => self.tracking(&mut cfg.tracking, key, v, append)?,
                "drift" => self.drift(&mut cfg.drift, key, v, append)?,
                "ransomware" => self.ransomware(&mut cfg.ransomware, key, v, append)?,
                "self_delete" | "self-delete" => {
                    self.self_delete(&mut cfg.self_delete, key, v, append)?
                }
                _ => false,
            };
            if !known {
                return Err(self.err(
                    k,
                    format!("unknown key {key:?} for detector {name_s}: see rules/pyward_detectors.yaml for the keys it takes"),
                ));
            }
        }
        Ok(())
    }

    fn tracking(&self, c: &mut TrackingConfig, key: &str, v: &Node, append: bool) -> R<bool> {
        match key {
            "tree_boundaries" => merge(&mut c.tree_boundaries, self.globs(v)?, append),
            "max_processes" => c.max_processes = self.count(v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn drift(&self, c: &mut DriftConfig, key: &str, v: &Node, append: bool) -> R<bool> {
        match key {
            "enabled" => c.enabled = self.boolean(v)?,
            "priority" => c.priority = Some(self.priority(v)?),
            "tags" => merge(&mut c.tags, self.strings(v)?, append),
            "allow" => merge(&mut c.allow, self.allows(v)?, append),
            "interpreters" => merge(&mut c.interpreters, self.globs(v)?, append),
            "scripts" => c.scripts = self.boolean(v)?,
            "chmod" => c.chmod = self.boolean(v)?,
            "memfd" => c.memfd = self.boolean(v)?,
            "shm_paths" => merge(&mut c.shm_paths, self.globs(v)?, append),
            "deleted" => c.deleted = self.boolean(v)?,
            "exe_ctime" => c.exe_ctime = self.boolean(v)?,
            "upper_layer" => c.upper_layer = self.boolean(v)?,
            "max_files" => c.max_files = self.count(v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn ransomware(&self, c: &mut RansomwareConfig, key: &str, v: &Node, append: bool) -> R<bool> {
        match key {
            "enabled" => c.enabled = self.boolean(v)?,
            "priority" => c.priority = self.priority(v)?,
            "tags" => merge(&mut c.tags, self.strings(v)?, append),
            "window" => c.window_ns = self.duration(v)?,
            "threshold" => c.threshold = self.number(v, 0.1, 1e6)?,
            "min_files" => c.min_files = self.count(v)?,
            "entropy_high" => c.entropy_high = self.number(v, 0.0, 1.0)?,
            "allow" => merge(&mut c.allow, self.allows(v)?, append),
            "decoys" => merge(&mut c.decoys, self.globs(v)?, append),
            "decoy_priority" => c.decoy_priority = self.priority(v)?,
            "exclude_paths" => merge(&mut c.exclude_paths, self.globs(v)?, append),
            "ransom_extensions" => {
                let exts = self
                    .strings(v)?
                    .into_iter()
                    .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                    .collect();
                merge(&mut c.ransom_extensions, exts, append)
            }
            "max_trees" => c.max_trees = self.count(v)?,
            "max_files_per_tree" => c.max_files_per_tree = self.count(v)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn self_delete(&self, c: &mut SelfDeleteConfig, key: &str, v: &Node, append: bool) -> R<bool> {
        match key {
            "enabled" => c.enabled = self.boolean(v)?,
            "priority" => c.priority = self.priority(v)?,
            "tags" => merge(&mut c.tags, self.strings(v)?, append),
            "interpreters" => merge(&mut c.interpreters, self.globs(v)?, append),
            "allow" => merge(&mut c.allow, self.allows(v)?, append),
            "ancestor_depth" => c.ancestor_depth = self.count(v)?.min(64),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn boolean(&self, v: &Node) -> R<bool> {
        v.as_bool()
            .ok_or_else(|| self.err(v, format!("expected true or false, found {}", describe(v))))
    }

    fn priority(&self, v: &Node) -> R<Priority> {
        let s = v.as_str().unwrap_or("");
        s.parse::<Priority>().map_err(|m| self.err(v, m))
    }

    fn number(&self, v: &Node, min: f64, max: f64) -> R<f64> {
        let n = v
            .as_str()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite());
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.err(
                v,
                format!(
                    "expected a number from {min} to {max}, found {}",
                    describe(v)
                ),
            )),
        }
    }

    fn count(&self, v: &Node) -> R<usize> {
        v.as_str()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| (1..=100_000_000).contains(&n))
            .ok_or_else(|| {
                self.err(
                    v,
                    format!(
                        "expected a whole number from 1 to 100000000, found {}",
                        describe(v)
                    ),
                )
            })
    }

    /// `120`, `120s`, `500ms`, `2m`.
    fn duration(&self, v: &Node) -> R<u64> {
        let s = v.as_str().unwrap_or("").trim();
        let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
            (n, 1e6)
        } else if let Some(n) = s.strip_suffix('s') {
            (n, 1e9)
        } else if let Some(n) = s.strip_suffix('m') {
            (n, 60e9)
        } else {
            (s, 1e9)
        };
        match num.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && n > 0.0 && n * mult <= 86_400e9 => Ok((n * mult) as u64),
            _ => Err(self.err(
                v,
                format!(
                    "expected a duration such as 120s, 500ms or 2m (at most a day), found {}",
                    describe(v)
                ),
            )),
        }
    }

    fn strings(&self, v: &Node) -> R<Vec<String>> {
        match v {
            Node::Seq { items, .. } => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| self.err(i, format!("expected text, found {}", i.kind())))
                })
                .collect(),
            n if n.is_null() => Ok(Vec::new()),
            Node::Scalar { text, .. } => Ok(vec![text.clone()]),
            Node::Map { .. } => Err(self.err(v, "expected a list of text, found a mapping")),
        }
    }

    fn globs(&self, v: &Node) -> R<Vec<Glob>> {
        Ok(self.strings(v)?.iter().map(|s| Glob::new(s)).collect())
    }

    fn allows(&self, v: &Node) -> R<Vec<Allow>> {
        let items: Vec<&Node> = match v {
            Node::Seq { items, .. } => items.iter().collect(),
            n if n.is_null() => Vec::new(),
            other => vec![other],
        };
        let mut out = Vec::new();
        for i in items {
            let Node::Map { entries, .. } = i else {
                return Err(self.err(
                    i,
                    "each allow entry is a mapping with process, module, ancestor and/or path",
                ));
            };
            let mut a = Allow::default();
            for (k, val) in entries {
                match k.as_str().unwrap_or("") {
                    "process" => a.process = self.globs(val)?,
                    "module" => a.module = self.strings(val)?,
                    "ancestor" => a.ancestor = self.globs(val)?,
                    "path" => a.path = self.globs(val)?,
                    other => {
                        return Err(self.err(
                            k,
                            format!(
                            "unknown allow key {other:?}: use process, module, ancestor or path"
                        ),
                        ))
                    }
                }
            }
            if a.process.is_empty()
                && a.module.is_empty()
                && a.ancestor.is_empty()
                && a.path.is_empty()
            {
                return Err(self.err(
                    i,
                    "an allow entry needs at least one of process, module, ancestor, path",
                ));
            }
            out.push(a);
        }
        Ok(out)
    }
}

fn merge<T>(dst: &mut Vec<T>, src: Vec<T>, append: bool) {
    if append {
        dst.extend(src);
    } else {
        *dst = src;
    }
}

fn describe(v: &Node) -> String {
    match v.as_str() {
        Some(s) => format!("{s:?}"),
        None => v.kind().to_owned(),
    }
}
