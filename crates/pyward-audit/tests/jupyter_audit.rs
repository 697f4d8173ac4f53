//! Fixture tests of `pyward_audit::jupyter::audit` on a temporary root: one per check, in `.py`
//! and `.json`, legacy NotebookApp names, precedence, people and keys, and bad input.

use base64::Engine as _;
use pyward_audit::jupyter::{audit, AuditOptions, AuditResult};
use pyward_core::{Finding, Severity};
use std::collections::BTreeMap;
use std::path::Path;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn opts(root: &Path) -> AuditOptions {
    AuditOptions {
        root: root.to_path_buf(),
        proc_dir: None,
        urls: Vec::new(),
        allow_remote_probe: false,
        probe_running: false,
        env: BTreeMap::new(),
        since_days: 7,
    }
}

fn run(root: &Path) -> AuditResult {
    audit(&opts(root)).unwrap()
}

fn with_rule<'a>(r: &'a AuditResult, id: &str) -> Vec<&'a Finding> {
    r.findings.iter().filter(|f| f.rule_id == id).collect()
}

fn ev<'a>(f: &'a Finding, key: &str) -> Option<&'a str> {
    f.evidence
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

const USER_CFG: &str = "home/alice/.jupyter";

fn root_with_user() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "etc/passwd",
        "alice:x:1000:1000::/home/alice:/bin/bash\nsvc:x:999:999::/srv:/usr/sbin/nologin\n",
    );
    std::fs::create_dir_all(t.path().join(USER_CFG)).unwrap();
    t
}

/// Each check fires from a `.py` and from a `.json` file, with file, line and an exact fix.
#[test]
fn every_check_py_and_json() {
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Severity,
        &'static str,
    );
    let cases: &[Case] = &[
        (
            "jupyter.auth-disabled",
            "c.ServerApp.token = ''\n",
            "{\"ServerApp\": {\"token\": \"\"}}",
            Severity::Critical,
            "IdentityProvider",
        ),
        (
            "jupyter.weak-password-hash",
            "c.ServerApp.password = 'sha1:0e112c3ddfce:a68df677475c2b47b6e86d0467eec97ac5f4b85a'\n",
            "{\"NotebookApp\": {\"password\": \"md5:aaa:bbb\"}}",
            Severity::High,
            "hashed_password",
        ),
        (
            "jupyter.exposed-without-tls",
            "c.ServerApp.ip = '0.0.0.0'\n",
            "{\"ServerApp\": {\"ip\": \"::\"}}",
            Severity::High,
            "\"127.0.0.1\"",
        ),
        (
            "jupyter.allow-root",
            "c.ServerApp.allow_root = True\n",
            "{\"ServerApp\": {\"allow_root\": true}}",
            Severity::High,
            "allow_root",
        ),
        (
            "jupyter.allow-origin-any",
            "c.ServerApp.allow_origin = '*'\n",
            "{\"ServerApp\": {\"allow_origin\": \"*\"}}",
            Severity::High,
            "allow_origin",
        ),
        (
            "jupyter.allow-origin-pat-broad",
            "c.ServerApp.allow_origin_pat = '.*'\n",
            "{\"ServerApp\": {\"allow_origin_pat\": \"^.*$\"}}",
            Severity::High,
            "allow_origin_pat",
        ),
        (
            "jupyter.xsrf-disabled",
            "c.ServerApp.disable_check_xsrf = True\n",
            "{\"ServerApp\": {\"disable_check_xsrf\": true}}",
            Severity::Medium,
            "disable_check_xsrf",
        ),
        (
            "jupyter.allow-remote-access",
            "c.ServerApp.allow_remote_access = True\n",
            "{\"ServerApp\": {\"allow_remote_access\": true}}",
            Severity::Medium,
            "allow_remote_access",
        ),
        (
            "jupyter.allow-unauthenticated-access",
            "c.ServerApp.allow_unauthenticated_access = True\n",
            "{\"ServerApp\": {\"allow_unauthenticated_access\": true}}",
            Severity::Medium,
            "allow_unauthenticated_access",
        ),
        (
            "jupyter.terminals-exposed",
            "c.ServerApp.ip = '*'\nc.ServerApp.terminals_enabled = True\n",
            "{\"ServerApp\": {\"ip\": \"\", \"terminals_enabled\": true}}",
            Severity::Medium,
            "terminals_enabled",
        ),
        (
            "jupyter.root-dir-broad",
            "c.ServerApp.root_dir = '/'\n",
            "{\"ServerApp\": {\"root_dir\": \"/\"}}",
            Severity::Medium,
            "root_dir",
        ),
    ];
    for (rule, py, json, sev, fix_part) in cases {
        for (ext, text) in [("py", *py), ("json", *json)] {
            let t = root_with_user();
            let file = format!("{USER_CFG}/jupyter_server_config.{ext}");
            write(t.path(), &file, text);
            let r = run(t.path());
            let f = with_rule(&r, rule);
            assert_eq!(f.len(), 1, "{rule} from {ext}: {:#?}", r.findings);
            let f = f[0];
            assert_eq!(f.severity, *sev, "{rule} {ext}");
            assert!(
                f.path.as_deref().unwrap().ends_with(&file),
                "{rule} {ext}: {:?}",
                f.path
            );
            assert!(f.line.is_some());
            let fix = ev(f, "fix").unwrap();
            assert!(fix.contains(fix_part), "{rule} {ext}: {fix}");
            assert!(
                if ext == "py" {
                    fix.starts_with("c.")
                } else {
                    fix.starts_with('{')
                },
                "{fix}"
            );
            assert!(!f.mitre.is_empty(), "{rule}");
            assert!(
                ev(f, "mitigation").is_some_and(|m| m.starts_with('M')),
                "{rule}"
            );
            // Exit code follows severity.
            // (an exposed server is also flagged high for clear text)
            let exposed = *rule == "jupyter.terminals-exposed";
            assert_eq!(
                r.exit_code(),
                u8::from(*sev >= Severity::High || exposed),
                "{rule}"
            );
        }
    }
}

/// A clean config (token set, loopback) gives no config finding and exit 0.
#[test]
fn hardened_config_is_clean() {
    let t = root_with_user();
    write(t.path(), &format!("{USER_CFG}/jupyter_server_config.py"), "c.ServerApp.ip = '127.0.0.1'\nc.IdentityProvider.token = 'abc'\nc.ServerApp.allow_root = False\nc.ServerApp.root_dir = '/srv/nb'\n");
    let r = run(t.path());
    assert!(
        r.findings.iter().all(|f| f.severity <= Severity::Low),
        "{:#?}",
        r.findings
    );
    assert_eq!(r.exit_code(), 0);
    assert!(!format!("{:?}", r.findings).contains("abc'"));
}

/// Legacy NotebookApp names are forwarded; ServerApp wins over NotebookApp; user config wins
/// over /etc/jupyter; `.json` wins over `.py` in the same folder; a password makes '' safe.
#[test]
fn precedence_and_legacy_names() {
    // legacy token in jupyter_notebook_config.py
    let t = root_with_user();
    write(
        t.path(),
        &format!("{USER_CFG}/jupyter_notebook_config.py"),
        "c.NotebookApp.token = u''\nc.NotebookApp.password = ''\n",
    );
    let r = run(t.path());
    let f = with_rule(&r, "jupyter.auth-disabled");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].line, Some(1));

    // system says '' but the user sets a token: the user's profile is safe, the system's not.
    let t = root_with_user();
    write(
        t.path(),
        "etc/jupyter/jupyter_server_config.py",
        "c.ServerApp.token = ''\n",
    );
    write(
        t.path(),
        &format!("{USER_CFG}/jupyter_server_config.py"),
        "c.ServerApp.token = 'tok'\n",
    );
    let r = run(t.path());
    let f = with_rule(&r, "jupyter.auth-disabled");
    assert_eq!(f.len(), 1);
    let applies: Vec<_> = f[0]
        .evidence
        .iter()
        .filter(|e| e.key == "applies_to")
        .map(|e| e.value.clone())
        .collect();
    assert_eq!(
        applies,
        vec!["system configuration".to_string()],
        "{applies:?}"
    );

    // .json beats .py in the same folder
    let t = root_with_user();
    write(
        t.path(),
        &format!("{USER_CFG}/jupyter_server_config.py"),
        "c.ServerApp.ip = '0.0.0.0'\n",
    );
    write(
        t.path(),
        &format!("{USER_CFG}/jupyter_server_config.json"),
        "{\"ServerApp\": {\"ip\": \"localhost\"}}",
    );
    assert!(with_rule(&run(t.path()), "jupyter.exposed-without-tls").is_empty());

    // ServerApp beats NotebookApp; lab config overrides server config
    let t = root_with_user();
    write(
        t.path(),
        &format!("{USER_CFG}/jupyter_server_config.py"),
        "c.ServerApp.ip = 'localhost'\nc.NotebookApp.ip = '*'\n",
    );
    assert!(with_rule(&run(t.path()), "jupyter.exposed-without-tls").is_empty());
    write(
        t.path(),
        &format!("{USER_CFG}/jupyter_lab_config.py"),
        "c.ServerApp.ip = '0.0.0.0'\n",
    );
    assert_eq!(
        with_rule(&run(t.path()), "jupyter.exposed-without-tls").len(),
        1
    );

    // empty token with a password: auth is on
    let t = root_with_user();
    write(t.path(), &format!("{USER_CFG}/jupyter_server_config.json"), "{\"IdentityProvider\": {\"token\": \"\"}, \"PasswordIdentityProvider\": {\"hashed_password\": \"argon2:$argon2id$v=19$m=10240,t=10,p=8$x$y\"}}");
    let r = run(t.path());
    assert!(with_rule(&r, "jupyter.auth-disabled").is_empty());
    assert!(with_rule(&r, "jupyter.weak-password-hash").is_empty());

    // TLS configured: exposure is not flagged as clear text
    let t = root_with_user();
    write(t.path(), &format!("{USER_CFG}/jupyter_server_config.py"), "c.ServerApp.ip = '0.0.0.0'\nc.ServerApp.certfile = '/c.pem'\nc.ServerApp.keyfile = '/k.pem'\n");
    assert!(with_rule(&run(t.path()), "jupyter.exposed-without-tls").is_empty());

    // an expression is not guessed
    let t = root_with_user();
    write(
        t.path(),
        &format!("{USER_CFG}/jupyter_server_config.py"),
        "import os\nc.ServerApp.token = os.environ.get('T', '')\n",
    );
    let r = run(t.path());
    assert!(with_rule(&r, "jupyter.auth-disabled").is_empty());
    assert_eq!(with_rule(&r, "jupyter.auth-unknown").len(), 1);
}

/// JUPYTER_CONFIG_DIR, venv prefixes and `*.d/` folders are config locations too.
#[test]
fn other_locations() {
    let t = root_with_user();
    let cfg = tempfile::tempdir().unwrap();
    write(
        cfg.path(),
        "jupyter_server_config.py",
        "c.ServerApp.allow_root = True\n",
    );
    write(
        t.path(),
        "home/alice/proj/.venv/pyvenv.cfg",
        "home = /usr/bin\n",
    );
    write(
        t.path(),
        "home/alice/proj/.venv/etc/jupyter/jupyter_server_config.d/ext.json",
        "{\"ServerApp\": {\"disable_check_xsrf\": true}}",
    );
    write(
        t.path(),
        "usr/local/etc/jupyter/jupyter_config.json",
        "{\"ServerApp\": {\"allow_remote_access\": true}}",
    );
    let mut o = opts(t.path());
    o.env.insert(
        "JUPYTER_CONFIG_DIR".into(),
        cfg.path().display().to_string(),
    );
    let r = audit(&o).unwrap();
    assert_eq!(with_rule(&r, "jupyter.allow-root").len(), 1);
    assert_eq!(with_rule(&r, "jupyter.xsrf-disabled").len(), 1);
    assert_eq!(with_rule(&r, "jupyter.allow-remote-access").len(), 1);
}

/// root_dir at a home with SSH keys is high.
#[test]
fn root_dir_home_with_keys() {
    let t = root_with_user();
    write(t.path(), "home/alice/.ssh/id_ed25519.pub", "x");
    write(
        t.path(),
        &format!("{USER_CFG}/jupyter_server_config.py"),
        "c.ServerApp.notebook_dir = '/home/alice/'\n",
    );
    let f = run(t.path());
    let f = with_rule(&f, "jupyter.root-dir-broad");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::High);
}

fn wire(parts: &[&[u8]]) -> String {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(&(p.len() as u32).to_be_bytes());
        b.extend_from_slice(p);
    }
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// authorized_keys with every key type: type, bits, fingerprint, comment, options; weak keys
/// and a group-writable file are flagged.
#[test]
fn authorized_keys_every_type() {
    use std::os::unix::fs::PermissionsExt;
    let t = root_with_user();
    let mut n = vec![0u8];
    n.extend(std::iter::repeat_n(0xAB, 128)); // 1024-bit RSA: weak
    let mut n2 = vec![0u8];
    n2.extend(std::iter::repeat_n(0xAB, 384)); // 3072-bit
    let q = [4u8; 65];
    let lines = [
        format!("ssh-rsa {} weak-rsa", wire(&[b"ssh-rsa", &[1, 0, 1], &n])),
        format!("ssh-rsa {} strong-rsa", wire(&[b"ssh-rsa", &[1, 0, 1], &n2])),
        format!("ssh-dss {} dsa", wire(&[b"ssh-dss", &[0x80; 128], &[1], &[1], &[1]])),
        format!("ssh-ed25519 {} ed", wire(&[b"ssh-ed25519", &[1; 32]])),
        format!("ecdsa-sha2-nistp256 {} p256", wire(&[b"ecdsa-sha2-nistp256", b"nistp256", &q])),
        format!("ecdsa-sha2-nistp384 {} p384", wire(&[b"ecdsa-sha2-nistp384", b"nistp384", &q])),
        format!("ecdsa-sha2-nistp521 {} p521", wire(&[b"ecdsa-sha2-nistp521", b"nistp521", &q])),
        format!("sk-ssh-ed25519@openssh.com {} sk-ed", wire(&[b"sk-ssh-ed25519@openssh.com", &[1; 32], b"ssh:"])),
        format!("sk-ecdsa-sha2-nistp256@openssh.com {} sk-ec", wire(&[b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", &q, b"ssh:"])),
        format!("from=\"10.0.0.0/8\",command=\"/usr/bin/backup\" ssh-ed25519-cert-v01@openssh.com {} cert", wire(&[b"ssh-ed25519-cert-v01@openssh.com", &[9; 32], &[1; 32]])),
    ];
    write(
        t.path(),
        "home/alice/.ssh/authorized_keys",
        &(lines.join("\n") + "\ngarbage line\n"),
    );
    let p = t.path().join("home/alice/.ssh/authorized_keys");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o664)).unwrap();
    let r = run(t.path());
    let keys: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.rule_id.starts_with("ssh.") && f.rule_id != "ssh.authorized-keys-writable")
        .collect();
    assert_eq!(keys.len(), 10, "{keys:#?}");
    let by_comment = |c: &str| *keys.iter().find(|f| ev(f, "comment") == Some(c)).unwrap();
    assert_eq!(by_comment("weak-rsa").rule_id, "ssh.weak-key");
    assert_eq!(ev(by_comment("weak-rsa"), "bits"), Some("1024"));
    assert_eq!(by_comment("strong-rsa").rule_id, "ssh.authorized-key");
    assert_eq!(ev(by_comment("strong-rsa"), "bits"), Some("3072"));
    assert_eq!(by_comment("dsa").rule_id, "ssh.weak-key");
    assert_eq!(ev(by_comment("p384"), "bits"), Some("384"));
    assert_eq!(ev(by_comment("p521"), "bits"), Some("521"));
    assert_eq!(ev(by_comment("sk-ec"), "bits"), Some("256"));
    assert_eq!(ev(by_comment("cert"), "bits"), Some("256"));
    assert_eq!(
        ev(by_comment("cert"), "options"),
        Some("from=\"10.0.0.0/8\",command=\"/usr/bin/backup\"")
    );
    assert!(ev(by_comment("ed"), "fingerprint")
        .unwrap()
        .starts_with("SHA256:"));
    assert_eq!(with_rule(&r, "ssh.authorized-keys-writable").len(), 1);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.input.ends_with("authorized_keys:11")),
        "{:?}",
        r.warnings
    );
    // login users: alice (bash), not svc (nologin)
    let users = with_rule(&r, "host.login-user");
    assert_eq!(users.len(), 1);
}

/// JupyterHub users come from its sqlite; nbsignatures.db is reported as trust activity, never
/// as users; its `.bak` is an indicator.
#[test]
fn jupyterhub_and_nbsignatures() {
    let t = root_with_user();
    std::fs::create_dir_all(t.path().join("srv/jupyterhub")).unwrap();
    let hub =
        rusqlite::Connection::open(t.path().join("srv/jupyterhub/jupyterhub.sqlite")).unwrap();
    hub.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, admin BOOLEAN, last_activity DATETIME); INSERT INTO users (name, admin, last_activity) VALUES ('ada', 1, '2026-01-01 00:00:00'), ('bob', 0, NULL);").unwrap();
    drop(hub);
    std::fs::create_dir_all(t.path().join("home/alice/.local/share/jupyter")).unwrap();
    let sig = rusqlite::Connection::open(
        t.path()
            .join("home/alice/.local/share/jupyter/nbsignatures.db"),
    )
    .unwrap();
    sig.execute_batch("CREATE TABLE nbsignatures (id integer PRIMARY KEY AUTOINCREMENT, algorithm text, signature text, path text, last_seen timestamp); INSERT INTO nbsignatures (algorithm, signature, last_seen) VALUES ('sha256', 'ab', '2026-01-01'), ('sha256', 'cd', '2026-02-01');").unwrap();
    drop(sig);
    write(
        t.path(),
        "home/alice/.local/share/jupyter/nbsignatures.db.bak",
        "encrypted?",
    );
    let r = run(t.path());
    let hub_users: Vec<_> = with_rule(&r, "jupyterhub.user")
        .iter()
        .map(|f| f.message.clone())
        .collect();
    assert_eq!(
        hub_users,
        vec!["JupyterHub user ada (admin)", "JupyterHub user bob"]
    );
    let s = with_rule(&r, "jupyter.nbsignatures");
    assert_eq!(s.len(), 1);
    assert!(
        s[0].message.contains("2 trusted-notebook signatures") && s[0].message.contains("no users")
    );
    assert_eq!(ev(s[0], "last_seen"), Some("2026-02-01"));
    assert_eq!(with_rule(&r, "jupyter.nbsignatures-bak").len(), 1);
}

/// Runtime files: empty token flagged, token never kept, readable token file flagged, nothing
/// deleted.
#[test]
fn runtime_files() {
    use std::os::unix::fs::PermissionsExt;
    let t = root_with_user();
    let rt = "home/alice/.local/share/jupyter/runtime";
    write(t.path(), &format!("{rt}/jpserver-4242.json"), "{\"port\": 8888, \"token\": \"\", \"password\": false, \"root_dir\": \"/home/alice\", \"pid\": 4242, \"hostname\": \"localhost\"}");
    write(t.path(), &format!("{rt}/nbserver-77.json"), "{\"port\": 8890, \"token\": \"SECRETTOKEN123\", \"password\": false, \"notebook_dir\": \"/srv\", \"pid\": 77}");
    std::fs::set_permissions(
        t.path().join(format!("{rt}/nbserver-77.json")),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    write(t.path(), &format!("{rt}/jpserver-1.json"), "{not json");
    let r = run(t.path());
    assert_eq!(with_rule(&r, "jupyter.runtime-empty-token").len(), 1);
    assert_eq!(with_rule(&r, "jupyter.runtime-file-readable").len(), 1);
    assert_eq!(with_rule(&r, "jupyter.server-record").len(), 2);
    assert!(r
        .warnings
        .iter()
        .any(|w| w.input.ends_with("jpserver-1.json")));
    assert!(!format!("{:?} {:?}", r.findings, r.runtime).contains("SECRETTOKEN123"));
    assert!(t.path().join(format!("{rt}/jpserver-4242.json")).exists());
}

/// Bad input: unparseable and binary configs, symlink loops, symlinks out of the root.
#[test]
fn bad_input() {
    let t = root_with_user();
    let cfg = t.path().join(USER_CFG);
    write(
        t.path(),
        &format!("{USER_CFG}/jupyter_server_config.json"),
        "{\"ServerApp\": ",
    );
    std::fs::write(
        cfg.join("jupyter_server_config.py"),
        [0u8, 159, 146, 150, 0, 1, 2],
    )
    .unwrap();
    std::fs::write(cfg.join("jupyter_lab_config.json"), "[1, 2, 3]").unwrap();
    write(
        t.path(),
        &format!("{USER_CFG}/jupyter_notebook_config.py"),
        "c.ServerApp.token = '''never closed\nc.ServerApp.ip = [1, 2\n",
    );
    std::os::unix::fs::symlink("loop.d", cfg.join("jupyter_config.d")).unwrap();
    std::os::unix::fs::symlink("jupyter_config.d", cfg.join("loop.d")).unwrap();
    std::os::unix::fs::symlink("jupyter_config.json", cfg.join("jupyter_config.json")).ok();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.py"), "c.ServerApp.token = ''\n").unwrap();
    std::fs::create_dir_all(t.path().join("etc/jupyter")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("x.py"),
        t.path().join("etc/jupyter/jupyter_server_config.py"),
    )
    .unwrap();
    std::fs::write(
        t.path().join("etc/jupyter/jupyter_lab_config.py"),
        "#".repeat(2 * 1024 * 1024),
    )
    .unwrap();
    let start = std::time::Instant::now();
    let r = run(t.path());
    assert!(
        r.warnings.iter().any(|w| w.message.contains("too large")),
        "{:?}",
        r.warnings
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    let w = |s: &str| r.warnings.iter().any(|w| w.input.ends_with(s));
    assert!(w("jupyter_server_config.json"), "{:?}", r.warnings);
    assert!(
        r.warnings.iter().any(|w| w.message.contains("binary")),
        "{:?}",
        r.warnings
    );
    assert!(w("jupyter_lab_config.json"));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message.contains("outside the audited root")),
        "{:?}",
        r.warnings
    );
    // the symlinked config outside the root was not read
    assert!(
        with_rule(&r, "jupyter.auth-disabled").is_empty(),
        "{:#?}",
        r.findings
    );
    // a root that is not a folder is an input error
    assert!(audit(&opts(&t.path().join("nope"))).is_err());
}

/// Probing refuses non-loopback URLs unless allowed; bad URLs are errors; a dead port is a
/// warning in bounded time.
#[test]
fn probe_targets() {
    let t = root_with_user();
    let mut o = opts(t.path());
    o.urls = vec!["http://192.0.2.1:8888/".into()];
    let e = audit(&o).unwrap_err();
    assert!(e.0.contains("--allow-remote-probe"), "{e}");
    o.urls = vec!["notaurl".into()];
    assert!(audit(&o).is_err());
    o.urls = vec![
        "http://127.0.0.1:8888/?token=SECRET".into(),
        "https://127.0.0.1/".into(),
    ];
    let e = audit(&o).unwrap_err();
    assert!(!e.0.contains("SECRET"));
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    o.urls = vec![format!("http://127.0.0.1:{port}/")];
    let r = audit(&o).unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.input.contains(&port.to_string())),
        "{:?}",
        r.warnings
    );
    assert!(with_rule(&r, "jupyter.unauthenticated").is_empty());
}

/// A fake Jupyter on loopback that answers /api/status without auth is critical.
#[test]
fn fake_open_server_is_critical() {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(6) {
            let Ok(mut s) = s else { continue };
            let mut b = [0u8; 4096];
            let n = s.read(&mut b).unwrap_or(0);
            let req = String::from_utf8_lossy(&b[..n]).to_string();
            let body = if req.starts_with("GET /api/status ") {
                "{\"connections\": 0, \"kernels\": 0, \"started\": \"2026-01-01T00:00:00Z\"}"
            } else if req.starts_with("GET /api ") {
                "{\"version\": \"2.14.0\"}"
            } else {
                "[]"
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                body
            );
        }
    });
    let t = root_with_user();
    let mut o = opts(t.path());
    o.urls = vec![format!("http://localhost:{port}/")];
    let r = audit(&o).unwrap();
    let f = with_rule(&r, "jupyter.unauthenticated");
    assert_eq!(f.len(), 1, "{:#?} {:?}", r.findings, r.warnings);
    assert_eq!(f[0].severity, Severity::Critical);
    assert_eq!(ev(f[0], "version"), Some("2.14.0"));
    assert_eq!(r.exit_code(), 1);
}

/// Incident indicators in /tmp.
#[test]
fn indicators() {
    use std::os::unix::fs::PermissionsExt;
    let t = root_with_user();
    write(t.path(), "tmp/f1gl6i6z", "");
    write(t.path(), "tmp/cpt.py", "print()");
    write(t.path(), "tmp/nano", "\x7fELF");
    std::fs::set_permissions(
        t.path().join("tmp/nano"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    write(t.path(), "tmp/notes.txt", "hi");
    let r = run(t.path());
    assert_eq!(with_rule(&r, "ioc.jupyter-ransomware-marker").len(), 1);
    let dropped = with_rule(&r, "ioc.dropped-executable");
    assert_eq!(dropped.len(), 2, "{dropped:#?}");
}

/// Backup advice: low when nothing is found, gone when a backup tool or job exists.
#[test]
fn backup_advice() {
    let t = root_with_user();
    let r = run(t.path());
    let f = with_rule(&r, "host.no-backup-found");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].severity, Severity::Low);
    assert_eq!(r.exit_code(), 0);
    write(
        t.path(),
        "etc/cron.d/nightly-backup",
        "0 3 * * * root restic backup /srv\n",
    );
    assert!(with_rule(&run(t.path()), "host.no-backup-found").is_empty());
    let t = root_with_user();
    write(t.path(), "usr/bin/restic", "");
    assert!(with_rule(&run(t.path()), "host.no-backup-found").is_empty());
}
