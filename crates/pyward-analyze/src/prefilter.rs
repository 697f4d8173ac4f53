//! A one-pass token pre-filter: parsing is the expensive step (a few MB/s), and most files of
//! real packages cannot satisfy any *threat* rule because they lack the tokens every such rule
//! needs together (an exec with a decoder, a key path with a network module...). Those files are
//! not parsed; capability-only signals in them are not reported (they could not raise a
//! package's score above the capability cap anyway).

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::{dfa, Anchored, MatchKind};
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

/// The token automaton, scanned by [`Tokens::for_each`].
struct Tokens {
    dfa: dfa::DFA,
    start: StateID,
    /// Longest token minus one: how far a lane starts before the part of the file it reports.
    overlap: usize,
}

fn tokens() -> Option<&'static Tokens> {
    static TOKENS: OnceLock<Option<Tokens>> = OnceLock::new();
    TOKENS
        .get_or_init(|| {
            // Standard semantics: every occurrence of every token, overlapping ones included
            // (`requests.get` is also `requests`, `urllib2` also `urllib`). No prefilter: with
            // this many tokens it would not skip anything.
            let dfa = dfa::Builder::new()
                .match_kind(MatchKind::Standard)
                .prefilter(false)
                .build(PATTERNS.iter().map(|(p, _)| p))
                .ok()?;
            let start = dfa.start_state(Anchored::No).ok()?;
            let overlap = dfa.max_pattern_len().saturating_sub(1);
            Some(Tokens {
                dfa,
                start,
                overlap,
            })
        })
        .as_ref()
}

impl Tokens {
    /// Calls `found(token index, start offset)` for every token occurrence in `src`, in no
    /// particular order.
    ///
    /// A DFA walk is bound by the latency of its table load, one byte after the other (about
    /// 500 MB/s here, the largest cost of a scan after parsing). So the file is cut into four
    /// quarters walked together in one loop: four independent loads per step instead of one,
    /// about 3× the speed. Each lane after the first starts `overlap` bytes early, from the
    /// start state, and reports only tokens whose last byte is inside its own quarter, so a
    /// token across a cut is found exactly once.
    fn for_each(&self, src: &[u8], mut found: impl FnMut(usize, usize)) {
        let d = &self.dfa;
        let mut report = |sid: StateID, end: usize| {
            for i in 0..d.match_len(sid) {
                let pid = d.match_pattern(sid, i);
                found(pid.as_usize(), end - d.pattern_len(pid));
            }
        };
        let quarter = src.len() / 4;
        if quarter <= self.overlap {
            let mut sid = self.start;
            for (i, &b) in src.iter().enumerate() {
                sid = d.next_state(Anchored::No, sid, b);
                if d.is_special(sid) && d.is_match(sid) {
                    report(sid, i + 1);
                }
            }
            return;
        }
        let o = self.overlap;
        // Lane l walks src[begin[l]..end[l]] and reports tokens ending after `own[l]`.
        let begin = [0, quarter - o, 2 * quarter - o, 3 * quarter - o];
        let own = [0, quarter, 2 * quarter, 3 * quarter];
        let end = [quarter, 2 * quarter, 3 * quarter, src.len()];
        let lane = |l: usize| src.get(begin[l]..end[l]).unwrap_or_default();
        // Every lane is at least `quarter` bytes long: walk that many steps together.
        let (l0, l1, l2, l3) = (lane(0), lane(1), lane(2), lane(3));
        let mut sid = [self.start; 4];
        let together = l0.iter().zip(l1).zip(l2).zip(l3).enumerate();
        for (i, (((&b0, &b1), &b2), &b3)) in together {
            let s = [
                d.next_state(Anchored::No, sid[0], b0),
                d.next_state(Anchored::No, sid[1], b1),
                d.next_state(Anchored::No, sid[2], b2),
                d.next_state(Anchored::No, sid[3], b3),
            ];
            sid = s;
            if d.is_special(s[0]) | d.is_special(s[1]) | d.is_special(s[2]) | d.is_special(s[3]) {
                for l in 0..4 {
                    let at = begin[l] + i + 1;
                    if d.is_match(s[l]) && at > own[l] {
                        report(s[l], at);
                    }
                }
            }
        }
        // The rest of lanes 1-3 (longer than lane 0 by the overlap, the last by the remainder).
        for l in 1..4 {
            let mut state = sid[l];
            for (i, &b) in lane(l).iter().enumerate().skip(quarter) {
                state = d.next_state(Anchored::No, state, b);
                if d.is_special(state) && d.is_match(state) {
                    report(state, begin[l] + i + 1);
                }
            }
        }
    }
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
    let Some(tokens) = tokens() else {
        return Some("no automaton");
    };
    let mut g = 0u32;
    // Self-deletion needs `__file__`/`argv[0]` near a delete call (the rule reads the call's
    // arguments), so positions are kept for a proximity check.
    let mut self_pos: Vec<usize> = Vec::new();
    let mut del_pos: Vec<usize> = Vec::new();
    tokens.for_each(src, |pattern, start| {
        let Some((pat, bit)) = PATTERNS.get(pattern) else {
            return;
        };
        if !at_boundary(src, pat, *bit, start) {
            return;
        }
        if *bit == SELF && self_pos.len() < 4096 {
            self_pos.push(start);
        }
        if *bit == DEL && del_pos.len() < 4096 {
            del_pos.push(start);
        }
        g |= bit;
    });
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

/// Whether a token found at `start` counts where it stands: words that are also parts of
/// longer names or of web addresses do not.
fn at_boundary(src: &[u8], pat: &str, bit: u32, start: usize) -> bool {
    let before = start.checked_sub(1).and_then(|i| src.get(i)).copied();
    let after = src.get(start + pat.len()).copied();
    let word = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    let dotted = |b: Option<u8>| word(b) || b == Some(b'.');
    match pat {
        // The builtin, not `model.eval(` or `literal_eval(` (`exec(` has no method look-alike),
        // nor a method named like it (`def eval(self, script)`, Redis' EVAL).
        _ if (bit == EXEC && pat != "exec(") || pat == "chr" => {
            !dotted(before) && !src.get(..start).is_some_and(|s| s.ends_with(b"def "))
        }
        // A dot-directory as a path component: `~/.aws/config`, `".ssh"`, not
        // `botocore.awsrequest`, `docs.aws.amazon.com` or `developer.mozilla.org`.
        ".ssh" | ".gnupg" | ".aws" | ".kube" | ".mozilla" => !dotted(before) && !dotted(after),
        // Chrome's cookie store is a file in a profile path (`.../Network/Cookies`, a `"Cookies"`
        // path part), not httpx's `Cookies` class or `LooseCookies`.
        "Cookies" => matches!(before, Some(b'/' | b'\\' | b'\'' | b'"')),
        // `sh -i`, not `ssh -i` (`bash -i` is its own token); `curl`, not `pycurl`.
        "sh -i" | "curl" | "wget" => !word(before),
        // PyArmor's runtime module, not `pytransform3d`.
        "pytransform" => !word(after),
        // `os.dup2` or a `'dup2'` looked up by name, not PHP's `eio_dup2` in a lexer's table.
        "dup2" => !word(before),
        // Clipboard modules as code (`import pyperclip`, `pyperclip.paste()`), not named in
        // documentation (``the `pyperclip` package``).
        "pyperclip" | "win32clipboard" => {
            !word(before)
                && (after == Some(b'.')
                    || src[..start].ends_with(b"import ")
                    || src[..start].ends_with(b"from "))
        }
        // Paste sites as addresses (`pastebin.com`, `ngrok-free.app`), not the word.
        "pastebin" | "ngrok" => matches!(after, Some(b'.' | b'-')),
        _ => true,
    }
}

/// `://` followed by a digit: a raw-IP URL candidate.
fn raw_ip_url(src: &[u8]) -> bool {
    src.windows(4)
        .any(|w| w.starts_with(b"://") && w.get(3).is_some_and(u8::is_ascii_digit))
}

/// A run of at least 80 base64 characters with upper case, lower case and digits in it (an
/// encoded payload candidate; a `=====` rule line or a lower-case URL path is not).
fn long_base64_run(src: &[u8]) -> bool {
    const UPPER: u8 = 1;
    const LOWER: u8 = 2;
    const DIGIT: u8 = 4;
    let (mut run, mut seen) = (0usize, 0u8);
    for &b in src {
        let class = match b {
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'0'..=b'9' => DIGIT,
            b'+' | b'/' | b'=' => 0,
            _ => {
                (run, seen) = (0, 0);
                continue;
            }
        };
        run += 1;
        seen |= class;
        if run >= 80 && seen == UPPER | LOWER | DIGIT {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::{needs_parse, reason, tokens, PATTERNS};

    /// Every occurrence of every token, by brute force.
    fn naive(src: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (i, (p, _)) in PATTERNS.iter().enumerate() {
            let p = p.as_bytes();
            for start in 0..src.len() {
                if src.get(start..start + p.len()) == Some(p) {
                    out.push((i, start));
                }
            }
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn the_four_lane_walk_finds_every_token_once() {
        let tokens = tokens().expect("token automaton builds");
        // Tokens placed at random offsets and across the lane cuts of files of many lengths,
        // overlapping ones (`websocket` holds `socket`, `requests.get` holds `requests`) too.
        let pieces: [&[u8]; 5] = [b"websocket", b"requests.get(", b"exec(", b"/.ssh/", b" x "];
        let mut seed = 0x9e37_79b9_u32;
        for len in (0..400).chain([1000, 4097]) {
            for piece in pieces {
                let mut src: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        b"abcdexc(. _/\n"[(seed % 13) as usize]
                    })
                    .collect();
                let at = (seed as usize) % (len + 1);
                src.splice(at..at, piece.iter().copied());
                let q = src.len() / 4;
                for cut in [q, 2 * q, 3 * q] {
                    let at = cut.saturating_sub(piece.len() / 2).min(src.len());
                    src.splice(at..at, piece.iter().copied());
                }
                let mut got = Vec::new();
                tokens.for_each(&src, |p, start| got.push((p, start)));
                got.sort_unstable();
                assert_eq!(got, naive(&src), "length {}", src.len());
            }
        }
    }

    #[test]
    fn words_inside_names_and_web_addresses_do_not_count() {
        let net = "import requests\n";
        for (code, parse) in [
            ("see https://developer.mozilla.org/en-US/docs", false),
            ("from botocore.awsrequest import AWSRequest", false),
            ("from httpx import Cookies\nx: LooseCookies", false),
            ("p = os.path.expanduser('~/.aws/credentials')", true),
            ("p = os.path.join(home, '.mozilla', 'firefox')", true),
            ("p = profile + '/Network/Cookies'", true),
        ] {
            let src = format!("{net}{code}\n");
            assert_eq!(needs_parse(src.as_bytes(), "m.py"), parse, "{code}");
        }
        for (code, parse) in [
            ("\"\"\"Uses the original `pyperclip` package.\"\"\"", false),
            ("import pyperclip", true),
            ("from pyperclip import paste", true),
            ("the LISP pastebin", false),
            ("URL = 'https://pastebin.com/raw/x'", true),
            ("cmd = 'ssh -i key host'", false),
            ("cmd = 'sh -i'", true),
            ("import pycurl\nimport subprocess", false),
            (
                "def eval(self, script):\n    return ''.join(chr(c) for c in script)",
                false,
            ),
            ("eval(''.join(chr(c) for c in script))", true),
            ("subprocess.run(['curl', url])", true),
        ] {
            assert_eq!(needs_parse(code.as_bytes(), "m.py"), parse, "{code}");
        }
        // `exec` with a long run of `=` (a rule line) is not a payload; a real blob is.
        let rule = format!("exec(code)\n# {}\n", "=".repeat(100));
        assert_eq!(reason(rule.as_bytes(), "m.py"), None);
        let blob = format!("exec(x)\nX = '{}'\n", "aGVsbG8gd29ybGQK0123".repeat(5));
        assert_eq!(reason(blob.as_bytes(), "m.py"), Some("exec+blob"));
    }

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
