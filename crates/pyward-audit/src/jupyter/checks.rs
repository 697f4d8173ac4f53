//! The checks: effective settings → findings with evidence, the exact fix line and ATT&CK ids.

use super::config::{Auth, Effective, Origin, Setting, Syntax};
use super::pyconfig::Value;
use pyward_core::{Action, Finding, Severity};
use std::path::PathBuf;

/// ATT&CK techniques (Enterprise v18.1) used by the Jupyter audit.
pub mod attack {
    pub use pyward_core::mitre::techniques::{
        DATA_ENCRYPTED, DRIVE_BY, EXPLOIT_PUBLIC_APP, EXTERNAL_REMOTE_SERVICES, FILE_DELETION,
        INGRESS_TOOL_TRANSFER, MUTUAL_EXCLUSION, NETWORK_SNIFFING, PASSWORD_CRACKING, PRIVATE_KEYS,
        PYTHON, SSH_AUTHORIZED_KEYS, SSH_REMOTE_SERVICE as SSH, UNIX_SHELL,
    };
}

/// A finding of the Jupyter audit: gate `jupyter`, action from severity (high and critical
/// STOP, medium WARN, low and info GO), so the exit code is 1 exactly when one is high+.
pub fn finding(rule_id: &str, severity: Severity, message: impl Into<String>) -> Finding {
    let action = match severity {
        Severity::Critical | Severity::High => Action::Stop,
        Severity::Medium => Action::Warn,
        Severity::Low | Severity::Info => Action::Go,
    };
    let trigger = rule_id.split_once('.').map(|(_, t)| t).unwrap_or(rule_id);
    let gate = rule_id.split_once('.').map(|(g, _)| g).unwrap_or("jupyter");
    Finding::new(rule_id, gate, trigger, action, severity, message)
}

/// Attach where a setting was made: path and line, or the process.
pub fn at(mut f: Finding, origin: &Origin) -> Finding {
    match origin {
        Origin::File { path, line, .. } => {
            f.path = Some(path.display().to_string());
            f.line = Some(*line);
        }
        other => f = f.with_evidence("source", other.describe()),
    }
    f
}

/// The fix, written in the syntax of the place the bad setting is in.
pub fn fix_line(syntax: Syntax, class: &str, name: &str, value: &serde_json::Value) -> String {
    match syntax {
        Syntax::Py => format!("c.{class}.{name} = {}", py_literal(value)),
        Syntax::Json => format!("{{\"{class}\": {{\"{name}\": {value}}}}}"),
        Syntax::CommandLine => format!("--{class}.{name}={}", cli_literal(value)),
    }
}

fn py_literal(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

fn cli_literal(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// A setting shown as evidence; tokens and password hashes are never shown.
pub fn show(s: &Setting) -> String {
    let secret = s.trait_name.contains("token")
        || s.trait_name.contains("password")
        || s.trait_name.contains("secret");
    let v = match (&s.value, secret) {
        (Value::Str(v), true) if v.is_empty() => "''".to_string(),
        (Value::Str(v), true) => match v.split_once(':') {
            Some((algo, _)) if s.trait_name.contains("password") && algo.len() < 16 => {
                format!("'{algo}:<redacted>'")
            }
            _ => "<redacted>".into(),
        },
        (Value::Unknown(_), true) => "<expression, not evaluated>".into(),
        (v, _) => v.display(),
    };
    format!("{}.{} = {v}", s.class, s.trait_name)
}

fn with_setting(f: Finding, s: &Setting) -> Finding {
    at(f.with_evidence("setting", show(s)), &s.origin)
}

fn fix(f: Finding, s: &Setting, class: &str, name: &str, v: serde_json::Value) -> Finding {
    f.with_evidence("fix", fix_line(s.origin.syntax(), class, name, &v))
}

fn mitigations(f: Finding, m: &str) -> Finding {
    f.with_evidence("mitigation", m)
}

/// What the checks know besides the settings.
pub struct Context<'a> {
    /// What the settings belong to ("user alice", "process 1234").
    pub subject: &'a str,
    /// Evidence that the server listens beyond loopback (config or sockets), if it does.
    pub exposure: Option<(String, Option<&'a Setting>)>,
    /// Homes (host paths) that hold SSH keys.
    pub ssh_homes: &'a [PathBuf],
}

/// Every configuration check on one set of effective settings.
pub fn check(eff: &Effective, ctx: &Context<'_>, out: &mut Vec<Finding>) {
    let applies = |f: Finding| f.with_evidence("applies_to", ctx.subject);
    // 1. no token and no password
    match eff.auth() {
        Auth::Disabled { token, .. } => {
            let mut f = finding(
                "jupyter.auth-disabled",
                Severity::Critical,
                "Jupyter authentication is disabled: the token is empty and no password is set, so anyone who can connect can run code",
            );
            f = with_setting(f, &token);
            f = fix(
                f,
                &token,
                "IdentityProvider",
                "token",
                "<a long random token, or delete this setting so one is generated>".into(),
            );
            f = mitigations(f, "M1032 Multi-factor Authentication; M1027 Password Policies; M1035 Limit Access to Resource Over Network");
            if eff.env_token.is_some() {
                f = f.with_evidence("note", "JUPYTER_TOKEN/JUPYTER_TOKEN_FILE is set but an explicit empty token overrides it");
            }
            out.push(applies(f.with_mitre([
                attack::EXPLOIT_PUBLIC_APP,
                attack::UNIX_SHELL,
                attack::PYTHON,
                attack::DATA_ENCRYPTED,
            ])));
        }
        Auth::Unknown(s) => {
            let f = finding(
                "jupyter.auth-unknown",
                Severity::Medium,
                "the token or password is set by an expression pyward does not evaluate; check that it is never empty",
            );
            out.push(applies(with_setting(f, &s).with_evidence(
                "fix",
                fix_line(
                    s.origin.syntax(),
                    "IdentityProvider",
                    "token",
                    &"<a long random token>".into(),
                ),
            )));
        }
        Auth::Enabled => {}
    }
    // 2. weak password hash
    if let Some(p) = eff.password() {
        if let Some(h) = p
            .value
            .as_str()
            .filter(|h| !h.is_empty() && !h.starts_with("argon2:"))
        {
            let algo = h.split(':').next().unwrap_or("");
            let msg = if h.split(':').count() == 3 {
                format!("the Jupyter password hash uses `{algo}` (one unsalted-round hash, cracked offline in seconds); use argon2")
            } else {
                "the Jupyter password is not a recognised hash (plain text or malformed); set an argon2 hash".to_string()
            };
            let f = finding("jupyter.weak-password-hash", Severity::High, msg);
            let f = fix(
                with_setting(f, p),
                p,
                "PasswordIdentityProvider",
                "hashed_password",
                "argon2:<output of `jupyter server password`>".into(),
            );
            out.push(applies(
                mitigations(f, "M1027 Password Policies").with_mitre([attack::PASSWORD_CRACKING]),
            ));
        }
    }
    // 3. exposed without TLS
    if let Some((why, setting)) = &ctx.exposure {
        if !eff.tls() {
            let mut f = finding(
                "jupyter.exposed-without-tls",
                Severity::High,
                "the Jupyter server listens beyond localhost without TLS: tokens, passwords and code travel in clear text",
            )
            .with_evidence("listening", why.clone());
            f = match setting {
                Some(s) => fix(with_setting(f, s), s, "ServerApp", "ip", "127.0.0.1".into()),
                None => f.with_evidence("fix", "c.ServerApp.ip = \"127.0.0.1\""),
            };
            f = f.with_evidence("fix_tls", "c.ServerApp.certfile = \"/etc/ssl/jupyter/fullchain.pem\"; c.ServerApp.keyfile = \"/etc/ssl/jupyter/privkey.pem\"");
            out.push(applies(mitigations(f, "M1041 Encrypt Sensitive Information; M1035 Limit Access to Resource Over Network; M1037 Filter Network Traffic")
                .with_mitre([attack::EXTERNAL_REMOTE_SERVICES, attack::NETWORK_SNIFFING])));
        }
    }
    // 4. allow_root
    if let Some((true, s)) = eff.flag("allow_root") {
        let f = finding(
            "jupyter.allow-root",
            Severity::High,
            "allow_root is set: the server may run as root, so every notebook and terminal is root",
        );
        let f = fix(
            with_setting(f, s),
            s,
            "ServerApp",
            "allow_root",
            false.into(),
        );
        out.push(applies(
            mitigations(
                f,
                "M1026 Privileged Account Management; M1018 User Account Management",
            )
            .with_mitre([attack::UNIX_SHELL, attack::DATA_ENCRYPTED]),
        ));
    }
    // 5. CORS
    if let Some(s) = eff
        .app("allow_origin")
        .filter(|s| s.value.as_str() == Some("*"))
    {
        let f = finding(
            "jupyter.allow-origin-any",
            Severity::High,
            "allow_origin = '*': any web page the user visits may call the Jupyter API",
        );
        let f = fix(
            with_setting(f, s),
            s,
            "ServerApp",
            "allow_origin",
            "".into(),
        );
        out.push(applies(
            mitigations(f, "M1021 Restrict Web-Based Content").with_mitre([attack::DRIVE_BY]),
        ));
    } else if let Some(s) = eff
        .app("allow_origin_pat")
        .filter(|s| s.value.as_str().is_some_and(broad_pattern))
    {
        let f = finding(
            "jupyter.allow-origin-pat-broad",
            Severity::High,
            "allow_origin_pat matches any origin: any web page may call the Jupyter API",
        );
        let f = fix(
            with_setting(f, s),
            s,
            "ServerApp",
            "allow_origin_pat",
            "^https://notebooks\\.example\\.org$".into(),
        );
        out.push(applies(
            mitigations(f, "M1021 Restrict Web-Based Content").with_mitre([attack::DRIVE_BY]),
        ));
    }
    // 6. XSRF
    if let Some((true, s)) = eff.flag("disable_check_xsrf") {
        let weak = matches!(eff.auth(), Auth::Disabled { .. }) || ctx.exposure.is_some();
        let f = finding(
            "jupyter.xsrf-disabled",
            if weak {
                Severity::High
            } else {
                Severity::Medium
            },
            "disable_check_xsrf = True: cross-site requests from other web pages are accepted",
        );
        let f = fix(
            with_setting(f, s),
            s,
            "ServerApp",
            "disable_check_xsrf",
            false.into(),
        );
        out.push(applies(
            mitigations(f, "M1021 Restrict Web-Based Content").with_mitre([attack::DRIVE_BY]),
        ));
    }
    // 7. allow_remote_access
    if let Some((true, s)) = eff.flag("allow_remote_access") {
        let f = finding("jupyter.allow-remote-access", Severity::Medium, "allow_remote_access = True turns off the Host-header check (DNS rebinding protection); it is not authentication");
        let f = fix(
            with_setting(f, s),
            s,
            "ServerApp",
            "allow_remote_access",
            false.into(),
        );
        out.push(applies(
            mitigations(f, "M1035 Limit Access to Resource Over Network")
                .with_mitre([attack::DRIVE_BY]),
        ));
    }
    // 8. allow_unauthenticated_access
    if let Some((true, s)) = eff.flag("allow_unauthenticated_access") {
        let f = finding("jupyter.allow-unauthenticated-access", Severity::Medium, "allow_unauthenticated_access = True (jupyter_server >= 2.13): extension handlers that forget @authenticated are open");
        let f = fix(
            with_setting(f, s),
            s,
            "ServerApp",
            "allow_unauthenticated_access",
            false.into(),
        );
        out.push(applies(
            mitigations(f, "M1051 Update Software; M1047 Audit")
                .with_mitre([attack::EXPLOIT_PUBLIC_APP]),
        ));
    }
    // 9. terminals on an exposed server
    if let Some((why, _)) = &ctx.exposure {
        match eff.flag("terminals_enabled") {
            Some((false, _)) => {}
            other => {
                let mut f = finding("jupyter.terminals-exposed", Severity::Medium, "terminals are enabled on a server reachable beyond localhost (the door used in the Jupyter ransomware attack)")
                    .with_evidence("listening", why.clone());
                f = match other {
                    Some((_, s)) => fix(
                        with_setting(f, s),
                        s,
                        "ServerApp",
                        "terminals_enabled",
                        false.into(),
                    ),
                    None => f
                        .with_evidence("setting", "ServerApp.terminals_enabled (default True)")
                        .with_evidence("fix", "c.ServerApp.terminals_enabled = False"),
                };
                out.push(applies(
                    mitigations(f, "M1042 Disable or Remove Feature or Program")
                        .with_mitre([attack::UNIX_SHELL]),
                ));
            }
        }
    }
    // 10. root_dir
    if let Some(s) = eff.root_dir() {
        if let Some(dir) = s.value.as_str() {
            let d = dir.trim_end_matches('/');
            let ssh_home = ctx
                .ssh_homes
                .iter()
                .find(|h| h.to_str().map(|h| h.trim_end_matches('/')) == Some(d));
            let sev_msg = if d.is_empty() {
                Some((Severity::Medium, "root_dir is `/`: the whole filesystem is readable and writable through the Contents API".to_string()))
            } else {
                ssh_home.map(|h| (Severity::High, format!("root_dir is the home {} which holds SSH keys: ~/.ssh (authorized_keys, private keys) is writable through the Contents API", h.display())))
            };
            if let Some((sev, msg)) = sev_msg {
                let f = finding("jupyter.root-dir-broad", sev, msg);
                let f = fix(
                    with_setting(f, s),
                    s,
                    "ServerApp",
                    "root_dir",
                    "/srv/notebooks/project".into(),
                );
                out.push(applies(
                    mitigations(
                        f,
                        "M1022 Restrict File and Directory Permissions; M1053 Data Backup",
                    )
                    .with_mitre([
                        attack::SSH_AUTHORIZED_KEYS,
                        attack::PRIVATE_KEYS,
                        attack::DATA_ENCRYPTED,
                    ]),
                ));
            }
        }
    }
}

/// `.*`, `.+`, `^.*$`, `*` and friends match any origin.
pub fn broad_pattern(p: &str) -> bool {
    let core = p.trim().trim_start_matches('^').trim_end_matches('$');
    matches!(
        core,
        ".*" | ".+" | "*" | "" | "(.*)" | ".*.*" | "https?://.*" | "http.*" | "https?://.+"
    ) && !p.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_lines() {
        assert_eq!(
            fix_line(Syntax::Py, "ServerApp", "allow_root", &false.into()),
            "c.ServerApp.allow_root = False"
        );
        assert_eq!(
            fix_line(Syntax::Json, "ServerApp", "ip", &"127.0.0.1".into()),
            "{\"ServerApp\": {\"ip\": \"127.0.0.1\"}}"
        );
        assert_eq!(
            fix_line(Syntax::CommandLine, "ServerApp", "ip", &"127.0.0.1".into()),
            "--ServerApp.ip=127.0.0.1"
        );
    }

    #[test]
    fn patterns() {
        assert!(broad_pattern(".*"));
        assert!(broad_pattern("^.*$"));
        assert!(!broad_pattern("^https://x\\.org$"));
        assert!(!broad_pattern(""));
    }

    #[test]
    fn secrets_not_shown() {
        let s = Setting {
            class: "ServerApp".into(),
            trait_name: "token".into(),
            value: Value::Str("s3cret".into()),
            origin: Origin::CommandLine { pid: 1 },
        };
        assert!(!show(&s).contains("s3cret"));
        let p = Setting {
            trait_name: "password".into(),
            value: Value::Str("sha1:abc:def".into()),
            ..s
        };
        assert_eq!(show(&p), "ServerApp.password = 'sha1:<redacted>'");
    }
}
