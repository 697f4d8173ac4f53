//! A one-pass token pre-filter: parsing is the expensive step (a few MB/s), and most files of
//! real packages cannot satisfy any *threat* rule because they lack the tokens every such rule
//! needs together (an exec with a decoder, a key path with a network module...). Those files are
//! not parsed; capability-only signals in them are not reported (they could not raise a
//! package's score above the capability cap anyway).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use std::sync::OnceLock;

const EXEC: u32 = 1;
const DECODE: u32 = 1 << 1;
const NET: u32 = 1 << 2;
const PROC: u32 = 1 << 3;
const SENS: u32 = 1 << 4;
const SELF: u32 = 1 << 5;
const DEL: u32 = 1 << 6;
const WALK: u32 = 1 << 7;
const CIPHER: u32 = 1 << 8;
const ALONE: u32 = 1 << 9;
const CRADLE: u32 = 1 << 10;
const PERSIST: u32 = 1 << 11;
const STEG: u32 = 1 << 12;
const RECON: u32 = 1 << 13;
const ENV: u32 = 1 << 15;
const DUP: u32 = 1 << 16;
/// Weak decoding hints (`chr`, `[::-1]`): they count with `join(` or a strong decoder.
const WEAK: u32 = 1 << 17;
const JOIN: u32 = 1 << 18;
/// Fetching calls (download-and-execute needs one of them).
const DL: u32 = 1 << 19;
const REV: u32 = 1 << 20;
/// Writing a file (persistence needs a write or a process next to its location).
const WRITE: u32 = 1 << 21;

const PATTERNS: &[(&str, u32)] = &[
    ("exec(", EXEC),
    ("exec ", EXEC),
    ("execfile", EXEC),
    ("eval(", EXEC),
    ("marshal", DECODE),
    ("pyarmor", ALONE),
    ("pytransform", ALONE),
    ("b64decode", DECODE),
    ("b32decode", DECODE),
    ("b16decode", DECODE),
    ("decodebytes", DECODE),
    ("decodestring", DECODE),
    ("a2b_", DECODE),
    ("decompress", DECODE),
    ("fromhex", DECODE),
    ("unhexlify", DECODE),
    ("rot13", DECODE),
    ("rot_13", DECODE),
    ("chr", WEAK),
    ("::-1]", REV),
    ("join(", JOIN),
    ("'base64'", DECODE),
    ("\"base64\"", DECODE),
    ("'hex'", DECODE),
    ("decrypt", DECODE),
    ("socket", NET),
    ("urllib", NET),
    ("urlopen", NET | DL),
    ("urlretrieve", NET | DL),
    ("requests.get", DL),
    ("httpx.get", DL),
    ("urllib2", DL),
    ("requests", NET),
    ("http.client", NET),
    ("httplib", NET),
    ("httpx", NET),
    ("ftplib", NET),
    ("smtplib", NET),
    ("aiohttp", NET),
    ("pycurl", NET),
    ("websocket", NET),
    ("subprocess", PROC),
    ("system(", PROC),
    ("popen", PROC),
    ("spawn", PROC),
    ("startfile", PROC),
    ("execv", PROC),
    (".ssh", SENS),
    (".gnupg", SENS),
    (".aws", SENS),
    (".kube", SENS),
    ("/etc/shadow", SENS),
    ("/etc/passwd", SENS),
    (".docker/config", SENS),
    ("git-credentials", SENS),
    ("Login Data", SENS),
    ("Local State", SENS),
    ("Cookies", SENS),
    (".mozilla", SENS),
    ("User Data", SENS),
    ("Local Storage", SENS),
    ("environ", ENV),
    ("gethostname", ENV),
    ("getuser", ENV),
    ("__file__", SELF),
    ("argv[0]", SELF),
    ("os.remove(", DEL),
    ("unlink(", DEL),
    ("rmtree(", DEL),
    ("os.rename(", DEL),
    ("os.replace(", DEL),
    (".rename(", DEL),
    ("shutil.move(", DEL),
    ("walk(", WALK),
    ("scandir(", WALK),
    ("listdir(", WALK),
    ("glob(", WALK),
    ("iterdir(", WALK),
    ("encrypt", CIPHER),
    ("Cipher", CIPHER),
    ("Fernet", CIPHER),
    ("^=", CIPHER),
    (" ^ ", CIPHER),
    ("dup2", DUP),
    ("/dev/tcp", ALONE),
    ("nc -e", ALONE),
    ("ncat -e", ALONE),
    ("bash -i", ALONE),
    ("sh -i", ALONE),
    ("stratum", ALONE),
    ("xmrig", ALONE),
    ("donate-level", ALONE),
    ("cryptonight", ALONE),
    ("moneroocean", ALONE),
    ("nanopool", ALONE),
    ("supportxmr", ALONE),
    ("minexmr", ALONE),
    ("pastebin", ALONE),
    ("paste.ee", ALONE),
    ("hastebin", ALONE),
    ("ghostbin", ALONE),
    ("transfer.sh", ALONE),
    ("anonfiles", ALONE),
    ("file.io", ALONE),
    ("/api/webhooks", ALONE),
    ("api.telegram.org", ALONE),
    ("hooks.slack.com", ALONE),
    ("ngrok", ALONE),
    ("trycloudflare", ALONE),
    ("serveo.net", ALONE),
    ("localtunnel", ALONE),
    ("webhook.site", ALONE),
    ("pipedream.net", ALONE),
    ("requestbin", ALONE),
    ("oastify", ALONE),
    ("burpcollaborator", ALONE),
    ("interact.sh", ALONE),
    ("dnslog.cn", ALONE),
    ("ipinfo.io", ALONE),
    ("ip-api.com", ALONE),
    ("ipify.org", ALONE),
    ("ifconfig.me", ALONE),
    ("icanhazip", ALONE),
    ("geolocation-db", ALONE),
    ("curl", CRADLE),
    ("wget", CRADLE),
    ("Invoke-WebRequest", CRADLE),
    ("DownloadString", CRADLE),
    ("open(", WRITE),
    ("write_text", WRITE),
    ("crontab", PERSIST),
    ("/etc/cron", PERSIST),
    ("/var/spool/cron", PERSIST),
    (".bashrc", PERSIST),
    (".bash_profile", PERSIST),
    (".zshrc", PERSIST),
    ("/etc/profile", PERSIST),
    ("systemd", PERSIST),
    ("autostart", PERSIST),
    ("CurrentVersion", PERSIST),
    ("LaunchAgents", PERSIST),
    ("schtasks", PERSIST),
    ("pyperclip", ALONE),
    ("win32clipboard", ALONE),
    ("lsb", STEG),
    ("stegano", STEG),
    ("Steganography", STEG),
    ("Documents", RECON),
    ("Downloads", RECON),
    ("PycharmProjects", RECON),
    ("Desktop", RECON),
];

fn automaton() -> Option<&'static AhoCorasick> {
    static AC: OnceLock<Option<AhoCorasick>> = OnceLock::new();
    AC.get_or_init(|| {
        AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(PATTERNS.iter().map(|(p, _)| p))
            .ok()
    })
    .as_ref()
}

/// Whether a file needs the full parse: some threat rule's tokens are all present, it is an
/// install-time file, or it holds a long base64-looking run that may decode to code.
pub fn needs_parse(src: &[u8], file_name: &str) -> bool {
    reason(src, file_name).is_some()
}

/// Which token combination makes a file worth parsing (for benchmarks and debugging).
pub fn reason(src: &[u8], file_name: &str) -> Option<&'static str> {
    if file_name == "setup.py" {
        return Some("setup.py");
    }
    let Some(ac) = automaton() else {
        return Some("no automaton");
    };
    let mut g = 0u32;
    // Self-deletion needs `__file__`/`argv[0]` near a delete call (the rule reads the call's
    // arguments), so positions are kept for a proximity check.
    let mut self_pos: Vec<usize> = Vec::new();
    let mut del_pos: Vec<usize> = Vec::new();
    for m in ac.find_iter(src) {
        if let Some((pat, bit)) = PATTERNS.get(m.pattern().as_usize()) {
            // `exec(`/`eval(`/`chr` must be the builtin, not `model.eval(` or `literal_eval(`.
            let needs_boundary = (*bit == EXEC && *pat != "exec(") || *pat == "chr";
            let prev = m
                .start()
                .checked_sub(1)
                .and_then(|i| src.get(i))
                .copied()
                .unwrap_or(b' ');
            if needs_boundary && (prev.is_ascii_alphanumeric() || prev == b'_' || prev == b'.') {
                continue;
            }
            if *bit == SELF && self_pos.len() < 4096 {
                self_pos.push(m.start());
            }
            if *bit == DEL && del_pos.len() < 4096 {
                del_pos.push(m.start());
            }
            g |= bit;
        }
    }
    let self_delete = del_pos
        .iter()
        .any(|d| self_pos.iter().any(|s| s.abs_diff(*d) <= 120));
    let has = |b: u32| g & b == b;
    let dest = || has(ALONE) || raw_ip_url(src);
    let checks: [(bool, &'static str); 15] = [
        (has(DUP | NET), "dup2+net"),
        (has(ALONE), "alone"),
        (has(EXEC | DECODE), "exec+decode"),
        (has(EXEC | WEAK | JOIN), "exec+join"),
        (has(EXEC | REV), "exec+reverse"),
        (has(EXEC | DL), "exec+download"),
        (has(EXEC | STEG), "exec+steg"),
        (has(PROC | CRADLE), "proc+cradle"),
        (has(SENS | NET), "sensitive+net"),
        (has(ENV | NET) && dest(), "env+net+destination"),
        (self_delete, "self+delete"),
        (has(WALK | CIPHER | DEL), "walk+cipher+delete"),
        (has(WALK | RECON), "walk+recon"),
        (has(PERSIST) && (has(PROC) || has(WRITE)), "persist+write"),
        (
            file_name == "__init__.py" && (has(NET) || has(PROC)),
            "__init__",
        ),
    ];
    if let Some((_, why)) = checks.iter().find(|(c, _)| *c) {
        return Some(why);
    }
    (has(EXEC) && long_base64_run(src)).then_some("exec+blob")
}

/// `://` followed by a digit: a raw-IP URL candidate.
fn raw_ip_url(src: &[u8]) -> bool {
    src.windows(4)
        .any(|w| w.starts_with(b"://") && w.get(3).is_some_and(u8::is_ascii_digit))
}

/// A run of at least 80 base64 characters (an encoded payload candidate).
fn long_base64_run(src: &[u8]) -> bool {
    let mut run = 0usize;
    for &b in src {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            run += 1;
            if run >= 80 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::needs_parse;

    #[test]
    fn plain_code_is_skipped_and_payloads_are_not() {
        assert!(!needs_parse(b"def add(a, b):\n    return a + b\n", "m.py"));
        assert!(!needs_parse(
            b"import socket\ns = socket.socket()\n",
            "m.py"
        ));
        assert!(needs_parse(b"exec(base64.b64decode('eA=='))", "m.py"));
        assert!(needs_parse(b"os.remove(__file__)", "m.py"));
        assert!(needs_parse(b"x = 1", "setup.py"));
        assert!(needs_parse(
            b"import requests\nrequests.get('x')",
            "__init__.py"
        ));
    }
}
