//! The audit run: discover, check, probe, and collect findings.

use super::checks::{self, attack, finding, Context};
use super::config::{self, ConfigLoader, Effective};
use super::fsutil;
use super::host::{self, Home, User};
use super::indicators;
use super::people;
use super::probe::{self, ProbeResult, Target, Verdict};
use super::servers::{self, RuntimeServer, ServerProcess};
use pyward_core::{Finding, Severity, Warning};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Default look-back for recently modified, encrypted-looking files.
pub const DEFAULT_SINCE_DAYS: u32 = 7;

/// What to audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Filesystem root to audit (`/` for this host, or a mounted image/snapshot).
    pub root: PathBuf,
    /// `/proc` of the live host, or `None` to skip processes and sockets.
    pub proc_dir: Option<PathBuf>,
    /// URLs to probe (`--url`).
    pub urls: Vec<String>,
    /// Allow probing non-loopback URLs.
    pub allow_remote_probe: bool,
    /// Also probe every running server found, on loopback.
    pub probe_running: bool,
    /// The environment that matters (`JUPYTER_CONFIG_DIR`, `JUPYTER_RUNTIME_DIR`,
    /// `JUPYTER_DATA_DIR`, `JUPYTER_TOKEN`, `JUPYTER_TOKEN_FILE`).
    pub env: BTreeMap<String, String>,
    /// Files modified within this many days are checked for encrypted-looking content.
    pub since_days: u32,
}

impl AuditOptions {
    /// Defaults for this host: root `/`, `/proc`, running servers probed, env from the process.
    pub fn host() -> Self {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("JUPYTER_"))
            .collect();
        AuditOptions {
            root: PathBuf::from("/"),
            proc_dir: Some(PathBuf::from("/proc")),
            urls: Vec::new(),
            allow_remote_probe: false,
            probe_running: true,
            env,
            since_days: DEFAULT_SINCE_DAYS,
        }
    }
}

/// A usage or input error (exit 2): the audit did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditError(pub String);

impl std::fmt::Display for AuditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for AuditError {}

/// What the audit found.
#[derive(Debug, Clone, Default)]
pub struct AuditResult {
    pub findings: Vec<Finding>,
    pub warnings: Vec<Warning>,
    pub config_files: Vec<PathBuf>,
    pub processes: Vec<ServerProcess>,
    pub runtime: Vec<RuntimeServer>,
    pub probes: Vec<ProbeResult>,
    pub users: Vec<User>,
}

impl AuditResult {
    /// Exit status per the issue: 1 when any finding is high or critical, else 0.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.findings.iter().any(|f| f.severity >= Severity::High))
    }
}

/// Check the URLs before anything runs: parse errors and non-loopback targets (without
/// `allow_remote_probe`) are usage errors.
pub fn validate_urls(opts: &AuditOptions) -> Result<Vec<Target>, AuditError> {
    opts.urls
        .iter()
        .map(|u| {
            let t = Target::parse(u).map_err(|e| AuditError(format!("--url {}: {e}", servers::redact_url_token(u))))?;
            if !opts.allow_remote_probe && !t.is_loopback() {
                return Err(AuditError(format!(
                    "--url {}: refusing to probe a non-loopback address; pass --allow-remote-probe if you are allowed to test that server",
                    t.url()
                )));
            }
            Ok(t)
        })
        .collect()
}

/// Run the whole Jupyter audit.
pub fn audit(opts: &AuditOptions) -> Result<AuditResult, AuditError> {
    let targets = validate_urls(opts)?;
    let root = opts.root.as_path();
    if !root.is_dir() {
        return Err(AuditError(format!(
            "--root {}: not a folder",
            root.display()
        )));
    }
    let mut r = AuditResult::default();
    let users = host::users(root);
    let homes = host::homes(root, &users);
    let ssh_homes: Vec<PathBuf> = homes
        .iter()
        .filter(|h| h.path.join(".ssh").is_dir())
        .map(|h| host_path(root, &h.path))
        .collect();

    // 1. configuration profiles
    let mut loader = ConfigLoader::new(root);
    let system: Vec<PathBuf> = ["/usr/local/etc/jupyter", "/etc/jupyter"]
        .iter()
        .map(|p| fsutil::under(root, p))
        .collect();
    let mut profiles: Vec<(String, Vec<PathBuf>)> = Vec::new();
    // The home of each profile (for `~` in root_dir), in step with `profiles`.
    let mut profile_homes: Vec<Option<PathBuf>> = Vec::new();
    // Notebook roots found (folder under `root`, what configures it).
    let mut nb_roots: Vec<(PathBuf, String)> = Vec::new();
    if let Some(d) = opts.env.get("JUPYTER_CONFIG_DIR").filter(|d| !d.is_empty()) {
        let mut dirs = vec![PathBuf::from(d)];
        dirs.extend(system.iter().cloned());
        profiles.push((format!("JUPYTER_CONFIG_DIR={d}"), dirs));
        profile_homes.push(None);
    }
    for h in &homes {
        let mut dirs = vec![h.path.join(".jupyter"), h.path.join(".local/etc/jupyter")];
        dirs.extend(system.iter().cloned());
        profiles.push((home_label(root, h), dirs));
        profile_homes.push(Some(h.path.clone()));
    }
    for p in host::python_prefixes(root, &homes) {
        let d = p.join("etc/jupyter");
        if d.is_dir() && !system.contains(&d) {
            let mut dirs = vec![d];
            dirs.extend(system.iter().cloned());
            profiles.push((
                format!("Python environment {}", host_path(root, &p).display()),
                dirs,
            ));
            profile_homes.push(None);
        }
    }
    profiles.push(("system configuration".into(), system.clone()));
    profile_homes.push(None);
    let mut extra_loader = ConfigLoader::new(Path::new("/"));
    for ((label, dirs), home) in profiles.iter().zip(profile_homes.iter()).take(512) {
        let mut eff = if label.starts_with("JUPYTER_CONFIG_DIR") {
            extra_loader.effective(label, dirs)
        } else {
            loader.effective(label, dirs)
        };
        if let Some(d) = eff
            .root_dir()
            .and_then(|s| s.value.as_str())
            .and_then(|v| indicators::resolve_root_dir(root, v, home.as_deref()))
        {
            nb_roots.push((d, format!("root_dir of {label}")));
        }
        eff.env_token = config::env_token(&opts.env, None);
        let exposure = eff.exposed().map(|s| {
            (
                format!("ip = {} ({})", s.value.display(), s.origin.describe()),
                Some(s),
            )
        });
        checks::check(
            &eff,
            &Context {
                subject: label,
                exposure,
                ssh_homes: &ssh_homes,
            },
            &mut r.findings,
        );
    }

    // 2. running servers: processes, runtime files
    if let Some(proc_dir) = &opts.proc_dir {
        r.processes = servers::processes(proc_dir);
    }
    let mut proc_loader = ConfigLoader::new(Path::new("/"));
    // Live processes belong to this host, whatever root is audited.
    let host_users = if root == Path::new("/") {
        users.clone()
    } else {
        host::users(Path::new("/"))
    };
    for p in &r.processes {
        let eff = process_effective(p, &host_users, &mut proc_loader);
        // Process paths are host paths: scanned only when the host itself is audited.
        if root == Path::new("/") {
            let home = p.env.get("HOME").map(PathBuf::from);
            if let Some(d) = eff
                .root_dir()
                .and_then(|s| s.value.as_str())
                .and_then(|v| indicators::resolve_root_dir(root, v, home.as_deref()))
            {
                nb_roots.push((d, format!("root_dir of running server, process {}", p.pid)));
            }
        }
        let exposure = p
            .listeners
            .iter()
            .find(|l| !l.addr.is_loopback())
            .map(|l| {
                (
                    format!("socket {}:{} (process {})", l.addr, l.port, p.pid),
                    None,
                )
            })
            .or_else(|| {
                eff.exposed().map(|s| {
                    (
                        format!("ip = {} ({})", s.value.display(), s.origin.describe()),
                        Some(s),
                    )
                })
            });
        let subject = format!("running server, process {}", p.pid);
        checks::check(
            &eff,
            &Context {
                subject: &subject,
                exposure,
                ssh_homes: &ssh_homes,
            },
            &mut r.findings,
        );
        if p.uid == Some(0) {
            let f = finding(
                "jupyter.running-as-root",
                Severity::High,
                format!(
                    "Jupyter server process {} runs as root: every notebook and terminal is root",
                    p.pid
                ),
            )
            .with_evidence(
                "process",
                format!("pid {} uid 0: {}", p.pid, p.cmdline_redacted),
            )
            .with_evidence(
                "fix",
                "run the server as an unprivileged user (and c.ServerApp.allow_root = False)",
            )
            .with_evidence(
                "mitigation",
                "M1026 Privileged Account Management; M1018 User Account Management",
            )
            .with_mitre([attack::UNIX_SHELL, attack::DATA_ENCRYPTED]);
            r.findings.push(f);
        }
    }
    let mut runtime_dirs: Vec<(PathBuf, PathBuf)> = Vec::new();
    if let Some(d) = opts
        .env
        .get("JUPYTER_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
    {
        runtime_dirs.push((PathBuf::from(d), PathBuf::from(d)));
    }
    for h in &homes {
        runtime_dirs.push((
            root.to_path_buf(),
            h.path.join(".local/share/jupyter/runtime"),
        ));
    }
    for p in &r.processes {
        if let Some(d) = p.env.get("JUPYTER_RUNTIME_DIR").filter(|d| !d.is_empty()) {
            runtime_dirs.push((PathBuf::from(d), PathBuf::from(d)));
        }
    }
    runtime_dirs.dedup();
    let mut seen_files = Vec::new();
    for (rroot, dir) in &runtime_dirs {
        for s in servers::runtime_files(rroot, dir, &mut r.warnings) {
            if !seen_files.contains(&s.file) {
                seen_files.push(s.file.clone());
                r.runtime.push(s);
            }
        }
    }
    for s in &r.runtime {
        runtime_checks(s, opts.proc_dir.as_deref(), &mut r.findings);
    }
    inventory_servers(&r.processes, &r.runtime, &host_users, &mut r.findings);
    for s in &r.runtime {
        // Runtime files read from outside the audited root describe the live host.
        let in_root = s.file.starts_with(root);
        if !in_root && root != Path::new("/") {
            continue;
        }
        if let Some(d) = s
            .root_dir
            .as_deref()
            .and_then(|v| indicators::resolve_root_dir(root, v, None))
        {
            nb_roots.push((d, format!("root_dir of server in {}", s.file.display())));
        }
    }

    // 3. live probes
    let mut probe_targets = targets;
    if opts.probe_running {
        for p in &r.processes {
            for l in &p.listeners {
                let host = if l.addr.is_ipv6()
                    && (l.addr.is_loopback() || !p.listeners.iter().any(|x| x.addr.is_ipv4()))
                {
                    "[::1]"
                } else {
                    "127.0.0.1"
                };
                if !l.addr.is_loopback() && !l.addr.is_unspecified() {
                    continue; // bound to one non-loopback address: not reachable on loopback
                }
                let base = r
                    .runtime
                    .iter()
                    .find(|s| s.pid == Some(p.pid))
                    .and_then(|s| s.base_url.clone())
                    .unwrap_or_else(|| "/".into());
                if let Ok(t) = Target::parse(&format!("http://{host}:{}{}", l.port, base)) {
                    if !probe_targets.iter().any(|x| x.port == t.port) {
                        probe_targets.push(t);
                    }
                }
            }
        }
    }
    for t in probe_targets.iter().take(64) {
        let res = probe::probe(t);
        probe_finding(&res, &mut r.findings, &mut r.warnings);
        r.probes.push(res);
    }

    // 4. people and keys
    people_findings(root, &users, &homes, &mut r);
    // 5. indicators and backups
    let owned =
        indicators::Ownership::load(root, &host::python_prefixes(root, &homes), &mut r.warnings);
    indicators(root, &owned, &mut r.findings);
    let now = std::time::SystemTime::now();
    for (d, subject) in indicators::dedup_roots(nb_roots) {
        indicators::notebook_root(
            root,
            &d,
            &subject,
            &owned,
            opts.since_days,
            now,
            &mut r.findings,
        );
    }
    if let Some(f) = backup_advice(root, &homes) {
        r.findings.push(f);
    }

    r.config_files = loader.files.clone();
    r.config_files.extend(extra_loader.files.iter().cloned());
    r.warnings.extend(loader.warnings);
    r.warnings.extend(extra_loader.warnings);
    r.warnings.extend(proc_loader.warnings);
    r.findings = dedup(std::mem::take(&mut r.findings));
    r.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule_id.cmp(&b.rule_id))
    });
    r.users = users;
    Ok(r)
}

/// The same setting seen from several profiles is one finding, listing every profile.
fn dedup(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let mut index: HashMap<(String, Option<String>, Option<u32>, String), usize> = HashMap::new();
    for f in findings {
        let source = f
            .evidence
            .iter()
            .find(|e| e.key == "source" || e.key == "process" || e.key == "url")
            .map(|e| e.value.clone())
            .unwrap_or_default();
        let key = (
            f.rule_id.clone(),
            f.path.clone(),
            f.line,
            format!("{source}{}", f.message),
        );
        match index.get(&key).and_then(|i| out.get_mut(*i)) {
            Some(existing) => {
                for e in f.evidence.into_iter().filter(|e| e.key == "applies_to") {
                    if !existing.evidence.contains(&e) && existing.evidence.len() < 64 {
                        existing.evidence.push(e);
                    }
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(f);
            }
        }
    }
    out
}

fn host_path(root: &Path, p: &Path) -> PathBuf {
    match p.strip_prefix(root) {
        Ok(rel) => Path::new("/").join(rel),
        Err(_) => p.to_path_buf(),
    }
}

fn home_label(root: &Path, h: &Home) -> String {
    match &h.user {
        Some(u) => format!("user {u} ({})", host_path(root, &h.path).display()),
        None => format!("home {}", host_path(root, &h.path).display()),
    }
}

/// Settings of a running server: its user's config, its environment's, the system's, then its
/// command line on top; `JUPYTER_TOKEN` from its environment.
fn process_effective(p: &ServerProcess, users: &[User], loader: &mut ConfigLoader) -> Effective {
    let home = p.env.get("HOME").cloned().or_else(|| {
        p.uid
            .and_then(|u| users.iter().find(|x| x.uid == u).map(|x| x.home.clone()))
    });
    let mut dirs = Vec::new();
    if let Some(d) = p.env.get("JUPYTER_CONFIG_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    } else if let Some(h) = &home {
        dirs.push(Path::new(h).join(".jupyter"));
    }
    if let Some(h) = &home {
        dirs.push(Path::new(h).join(".local/etc/jupyter"));
    }
    if let Some(pre) = &p.prefix {
        dirs.push(pre.join("etc/jupyter"));
    }
    dirs.push(PathBuf::from("/usr/local/etc/jupyter"));
    dirs.push(PathBuf::from("/etc/jupyter"));
    let mut eff = loader.effective(&format!("process {}", p.pid), &dirs);
    for s in config::from_cmdline(&p.args, p.pid) {
        eff.set(s);
    }
    eff.env_token = config::env_token(&p.env, Some(p.pid));
    eff
}

fn runtime_checks(s: &RuntimeServer, proc_dir: Option<&Path>, out: &mut Vec<Finding>) {
    let alive = match (s.pid, proc_dir) {
        (Some(pid), Some(pd)) => Some(pd.join(pid.to_string()).is_dir()),
        _ => None,
    };
    let path = s.file.display().to_string();
    if !s.token_present && s.password != Some(true) && alive != Some(false) {
        let mut f = finding(
            "jupyter.runtime-empty-token",
            Severity::High,
            "a running server's runtime file records an empty token: authentication is off unless a hashed password is configured (the live probe tells)",
        );
        f.path = Some(path.clone());
        f = f
            .with_evidence("server", format!("pid {} port {}", opt(s.pid), opt(s.port)))
            .with_evidence(
                "fix",
                "c.IdentityProvider.token = \"<a long random token>\"",
            )
            .with_evidence(
                "mitigation",
                "M1032 Multi-factor Authentication; M1027 Password Policies",
            )
            .with_mitre([attack::EXPLOIT_PUBLIC_APP, attack::UNIX_SHELL]);
        out.push(f);
    }
    if s.token_present && s.mode.is_some_and(|m| m & 0o044 != 0) {
        let mut f = finding(
            "jupyter.runtime-file-readable",
            Severity::High,
            "a runtime file holding a live token is readable by other users",
        );
        f.path = Some(path);
        out.push(
            f.with_evidence("mode", format!("{:o}", s.mode.unwrap_or(0)))
                .with_evidence("fix", format!("chmod 600 {}", s.file.display()))
                .with_evidence(
                    "mitigation",
                    "M1022 Restrict File and Directory Permissions",
                ),
        );
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

/// One info finding per running server (process and/or runtime file), tokens redacted.
fn inventory_servers(
    procs: &[ServerProcess],
    runtime: &[RuntimeServer],
    users: &[User],
    out: &mut Vec<Finding>,
) {
    let user_of = |uid: Option<u32>| {
        uid.map(|u| {
            users
                .iter()
                .find(|x| x.uid == u)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| format!("uid {u}"))
        })
    };
    for p in procs {
        let rt = runtime.iter().find(|s| s.pid == Some(p.pid));
        let ports: Vec<String> = p
            .listeners
            .iter()
            .map(|l| format!("{}:{}", l.addr, l.port))
            .collect();
        let mut f = finding(
            "jupyter.server-running",
            Severity::Info,
            format!("running Jupyter server, process {}", p.pid),
        )
        .with_evidence("process", format!("pid {}: {}", p.pid, p.cmdline_redacted))
        .with_evidence(
            "listening",
            if ports.is_empty() {
                "no TCP socket found (or not visible)".into()
            } else {
                ports.join(", ")
            },
        );
        if let Some(u) = user_of(p.uid) {
            f = f.with_evidence("user", u);
        }
        if let Some(rt) = rt {
            f = f
                .with_evidence("runtime_file", rt.file.display().to_string())
                .with_evidence("root_dir", rt.root_dir.clone().unwrap_or_default())
                .with_evidence(
                    "token",
                    if rt.token_present {
                        "present (redacted)"
                    } else {
                        "empty"
                    },
                );
        }
        out.push(f);
    }
    for rt in runtime
        .iter()
        .filter(|s| !procs.iter().any(|p| Some(p.pid) == s.pid))
    {
        let mut f = finding(
            "jupyter.server-record",
            Severity::Info,
            format!(
                "Jupyter runtime file for pid {} (process not seen; it may have exited)",
                opt(rt.pid)
            ),
        );
        f.path = Some(rt.file.display().to_string());
        out.push(
            f.with_evidence("port", opt(rt.port))
                .with_evidence("hostname", rt.hostname.clone().unwrap_or_default())
                .with_evidence("root_dir", rt.root_dir.clone().unwrap_or_default())
                .with_evidence(
                    "token",
                    if rt.token_present {
                        "present (redacted)"
                    } else {
                        "empty"
                    },
                ),
        );
    }
}

fn probe_finding(res: &ProbeResult, out: &mut Vec<Finding>, warnings: &mut Vec<Warning>) {
    let url = res.target.url();
    let responses = res
        .responses
        .iter()
        .map(|(p, s)| format!("{p} → {s}"))
        .collect::<Vec<_>>()
        .join(", ");
    match res.verdict {
        Verdict::Unauthenticated => {
            let mut f = finding("jupyter.unauthenticated", Severity::Critical, format!("Jupyter server at {url} answers its API without any credentials: anyone who can reach it runs code"))
                .with_evidence("url", url)
                .with_evidence("responses", responses)
                .with_evidence("fix", "c.IdentityProvider.token = \"<a long random token>\"  (and remove --ServerApp.token= / --IdentityProvider.token= from the command line)")
                .with_evidence("mitigation", "M1032 Multi-factor Authentication; M1035 Limit Access to Resource Over Network")
                .with_mitre([attack::EXPLOIT_PUBLIC_APP, attack::UNIX_SHELL, attack::PYTHON, attack::DATA_ENCRYPTED]);
            if let Some(v) = &res.version {
                f = f.with_evidence("version", v.clone());
            }
            if res.terminals_open {
                f = f.with_evidence(
                    "terminals",
                    "/api/terminals answers without credentials: a shell is one request away",
                );
            }
            out.push(f);
        }
        Verdict::AuthRequired => {
            let mut f = finding(
                "jupyter.auth-required",
                Severity::Info,
                format!("Jupyter server at {url} requires authentication"),
            )
            .with_evidence("url", url)
            .with_evidence("responses", responses);
            if let Some(v) = &res.version {
                f = f.with_evidence("version", v.clone());
            }
            out.push(f);
        }
        Verdict::NotJupyter => warnings.push(Warning::new(
            url,
            format!("does not answer like a Jupyter server ({responses})"),
        )),
        Verdict::Unreachable => warnings.push(Warning::new(
            url,
            format!("no usable HTTP answer ({responses})"),
        )),
    }
}

fn people_findings(root: &Path, users: &[User], homes: &[Home], r: &mut AuditResult) {
    for u in users.iter().filter(|u| u.has_login_shell()) {
        let sev = if u.uid == 0 && u.name != "root" {
            Severity::High
        } else {
            Severity::Info
        };
        let msg = if sev == Severity::High {
            format!("account {} has uid 0 (a second root)", u.name)
        } else {
            format!("OS account with a login shell: {}", u.name)
        };
        r.findings.push(
            finding("host.login-user", sev, msg)
                .with_evidence(
                    "user",
                    format!("{} uid {} home {} shell {}", u.name, u.uid, u.home, u.shell),
                )
                .with_evidence("mitigation", "M1018 User Account Management"),
        );
    }
    for h in homes {
        for name in ["authorized_keys", "authorized_keys2"] {
            let p = h.path.join(".ssh").join(name);
            if p.symlink_metadata().is_err() {
                continue;
            }
            let text = match fsutil::read_text(root, &p, 4 * 1024 * 1024) {
                Ok(t) => t,
                Err(e) => {
                    r.warnings.push(Warning::new(
                        p.display().to_string(),
                        format!("authorized_keys not read: {e}"),
                    ));
                    continue;
                }
            };
            let mode = std::fs::metadata(&p)
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0);
            let owner = h
                .user
                .clone()
                .unwrap_or_else(|| host_path(root, &h.path).display().to_string());
            if mode & 0o022 != 0 {
                let mut f = finding("ssh.authorized-keys-writable", Severity::High, format!("{owner}'s authorized_keys is writable by other users: anyone on the host can add a key"));
                f.path = Some(p.display().to_string());
                r.findings.push(
                    f.with_evidence("mode", format!("{mode:o}"))
                        .with_evidence("fix", format!("chmod 600 {}", p.display()))
                        .with_mitre([attack::SSH_AUTHORIZED_KEYS]),
                );
            }
            let (keys, bad) = people::parse_authorized_keys(&text);
            for (line, why) in bad {
                r.warnings
                    .push(Warning::new(format!("{}:{line}", p.display()), why));
            }
            for k in keys {
                let weak = k.key_type == "ssh-dss"
                    || (k.key_type.starts_with("ssh-rsa") && k.bits.is_some_and(|b| b < 2048));
                let (sev, msg) = if weak {
                    (
                        Severity::Medium,
                        format!(
                            "weak SSH key ({} {} bits) can log in as {owner}",
                            k.key_type,
                            opt(k.bits)
                        ),
                    )
                } else {
                    (
                        Severity::Info,
                        format!("SSH key that can log in as {owner}: know whose it is"),
                    )
                };
                let mut f = finding(
                    if weak {
                        "ssh.weak-key"
                    } else {
                        "ssh.authorized-key"
                    },
                    sev,
                    msg,
                );
                f.path = Some(p.display().to_string());
                f.line = Some(k.line);
                f = f
                    .with_evidence("type", k.key_type.clone())
                    .with_evidence("bits", opt(k.bits))
                    .with_evidence("fingerprint", k.fingerprint.clone().unwrap_or_default())
                    .with_evidence("comment", k.comment.clone())
                    .with_evidence("file_mode", format!("{mode:o}"))
                    .with_mitre([attack::SSH_AUTHORIZED_KEYS, attack::SSH]);
                if !k.options.is_empty() {
                    f = f.with_evidence("options", k.options.join(","));
                }
                r.findings.push(f);
            }
        }
        // nbsignatures.db: trust activity, not users.
        let data = h.path.join(".local/share/jupyter");
        let db = data.join("nbsignatures.db");
        if db.is_file() && fsutil::inside(root, &db).is_some() {
            match people::nbsignatures(&db) {
                Ok(s) => {
                    let mut f = finding("jupyter.nbsignatures", Severity::Info, format!("notebook trust database: {} trusted-notebook signatures; it records no users or addresses", s.rows));
                    f.path = Some(db.display().to_string());
                    r.findings.push(
                        f.with_evidence("first_seen", s.first_seen.unwrap_or_default())
                            .with_evidence("last_seen", s.last_seen.unwrap_or_default()),
                    );
                }
                Err(e) => r.warnings.push(Warning::new(db.display().to_string(), e)),
            }
        }
        let bak = data.join("nbsignatures.db.bak");
        if bak.symlink_metadata().is_ok() {
            let mut f = finding("jupyter.nbsignatures-bak", Severity::Medium, "nbsignatures.db.bak exists: Jupyter could not open its trust database (corrupted or encrypted), a sign seen after ransomware runs");
            f.path = Some(bak.display().to_string());
            r.findings.push(f.with_mitre([attack::DATA_ENCRYPTED]));
        }
    }
    // JupyterHub databases
    let mut dbs = Vec::new();
    for d in [
        "/srv/jupyterhub",
        "/etc/jupyterhub",
        "/opt/jupyterhub",
        "/var/lib/jupyterhub",
        "/root",
    ] {
        dbs.push(fsutil::under(root, d).join("jupyterhub.sqlite"));
    }
    for h in homes {
        dbs.push(h.path.join("jupyterhub.sqlite"));
    }
    dbs.dedup();
    for db in dbs
        .iter()
        .filter(|d| d.is_file() && fsutil::inside(root, d).is_some())
    {
        match people::hub_users(db) {
            Ok(us) => {
                for u in us {
                    let mut f = finding(
                        "jupyterhub.user",
                        Severity::Info,
                        format!(
                            "JupyterHub user {}{}",
                            u.name,
                            if u.admin == Some(true) {
                                " (admin)"
                            } else {
                                ""
                            }
                        ),
                    );
                    f.path = Some(db.display().to_string());
                    r.findings.push(
                        f.with_evidence("last_activity", u.last_activity.unwrap_or_default()),
                    );
                }
            }
            Err(e) => r.warnings.push(Warning::new(db.display().to_string(), e)),
        }
    }
}

/// Incident indicators: the marker file and the encryptor script names in /tmp and /dev/shm,
/// plus executables and scripts dropped there that no package owns.
fn indicators(root: &Path, owned: &indicators::Ownership, out: &mut Vec<Finding>) {
    let marker = fsutil::under(root, "/tmp/f1gl6i6z");
    if marker.symlink_metadata().is_ok() {
        let mut f = finding(
            "ioc.jupyter-ransomware-marker",
            Severity::High,
            "marker file /tmp/f1gl6i6z of the Jupyter ransomware/cryptomining campaign is present",
        );
        f.path = Some(marker.display().to_string());
        out.push(f.with_mitre([attack::MUTUAL_EXCLUSION]).with_evidence(
            "fix",
            "isolate the host, preserve evidence, and rebuild from a known-good image",
        ));
    }
    indicators::dropped_files(root, owned, out);
}

/// Backup tools and configurations looked for (host paths); `~/.config/<x>` is checked per home.
const BACKUP_SIGNS: [&str; 16] = [
    "/usr/bin/restic",
    "/usr/local/bin/restic",
    "/usr/bin/borg",
    "/usr/local/bin/borg",
    "/usr/bin/borgmatic",
    "/etc/borgmatic",
    "/etc/borgmatic.d",
    "/usr/bin/duplicity",
    "/usr/bin/rsnapshot",
    "/etc/rsnapshot.conf",
    "/usr/sbin/bacula-fd",
    "/etc/bacula",
    "/usr/bin/kopia",
    "/etc/restic",
    "/usr/bin/rclone",
    "/etc/duply",
];

/// Advice (low) when no backup tool or configuration is found: the impact of the Jupyter
/// ransomware is the encryption of the notebook root, and only an off-host copy undoes it.
fn backup_advice(root: &Path, homes: &[Home]) -> Option<Finding> {
    let found = BACKUP_SIGNS
        .iter()
        .any(|p| fsutil::under(root, p).symlink_metadata().is_ok())
        || homes.iter().any(|h| {
            ["borgmatic", "restic", "rclone", "kopia"]
                .iter()
                .any(|t| h.path.join(".config").join(t).exists())
        })
        || fsutil::list_dir(root, &fsutil::under(root, "/etc/cron.d"), 1000)
            .iter()
            .chain(fsutil::list_dir(root, &fsutil::under(root, "/etc/systemd/system"), 5000).iter())
            .any(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().contains("backup"))
            });
    (!found).then(|| {
        finding("host.no-backup-found", Severity::Low, "no backup tool or configuration found (restic, borg, duplicity, rsnapshot, bacula, kopia, rclone, a backup cron job or systemd unit); notebooks encrypted by ransomware can only be restored from an off-host copy")
            .with_evidence("fix", "back up the notebook root off-host (e.g. a restic or borg job) and test a restore")
            .with_evidence("mitigation", "M1053 Data Backup")
            .with_mitre([attack::DATA_ENCRYPTED])
    })
}
