//! A one-pass token pre-filter: parsing is the expensive step (a few MB/s), and most files of
//! real packages cannot satisfy any *threat* rule because they lack the tokens every such rule
//! needs together (an exec with a decoder, a key path with a network module...). Those files are
//! not parsed; capability-only signals in them are not reported (they could not raise a
//! package's score above the capability cap anyway).

mod tokens;

use tokens::*;

// The token DFA, built from `tokens::PATTERNS` by build.rs: CLASSES, STRIDE, START,
// MATCHES_BELOW, MAX_TOKEN_LEN, TRANS, MATCH_ENDS, MATCH_IDS.
include!(concat!(env!("OUT_DIR"), "/prefilter_dfa.rs"));

/// The compiled-in token DFA (Standard semantics: every occurrence of every token, overlapping
/// ones included, so `requests.get` is also `requests` and `urllib2` also `urllib`).
struct Tokens;

impl Tokens {
    #[inline(always)]
    fn next(sid: u32, b: u8) -> u32 {
        TRANS[(sid + u32::from(CLASSES[usize::from(b)])) as usize]
    }

    /// Calls `found(token index, start offset)` for each token the match state `sid` ends at
    /// `end`.
    fn report(sid: u32, end: usize, found: &mut impl FnMut(usize, usize)) {
        let state = (sid / STRIDE) as usize;
        let (from, to) = (MATCH_ENDS[state], MATCH_ENDS[state + 1]);
        for &pattern in &MATCH_IDS[usize::from(from)..usize::from(to)] {
            let pattern = usize::from(pattern);
            let len = PATTERNS.get(pattern).map_or(0, |(p, _)| p.len());
            found(pattern, end - len);
        }
    }

    /// Calls `found(token index, start offset)` for every token occurrence in `src`, in no
    /// particular order.
    ///
    /// A DFA walk is bound by the latency of its table load, one byte after the other (about
    /// 500 MB/s here, the largest cost of a scan after parsing). So the file is cut into four
    /// quarters walked together in one loop: four independent loads per step instead of one,
    /// about 3× the speed. Each lane after the first starts `MAX_TOKEN_LEN - 1` bytes early,
    /// from the start state, and reports only tokens whose last byte is inside its own quarter,
    /// so a token across a cut is found exactly once.
    fn for_each(src: &[u8], mut found: impl FnMut(usize, usize)) {
        let overlap = MAX_TOKEN_LEN - 1;
        let quarter = src.len() / 4;
        if quarter <= overlap {
            let mut sid = START;
            for (i, &b) in src.iter().enumerate() {
                sid = Self::next(sid, b);
                if sid < MATCHES_BELOW {
                    Self::report(sid, i + 1, &mut found);
                }
            }
            return;
        }
        let o = overlap;
        // Lane l walks src[begin[l]..end[l]] and reports tokens ending after `own[l]`.
        let begin = [0, quarter - o, 2 * quarter - o, 3 * quarter - o];
        let own = [0, quarter, 2 * quarter, 3 * quarter];
        let end = [quarter, 2 * quarter, 3 * quarter, src.len()];
        let lane = |l: usize| src.get(begin[l]..end[l]).unwrap_or_default();
        // Every lane is at least `quarter` bytes long: walk that many steps together.
        let (l0, l1, l2, l3) = (lane(0), lane(1), lane(2), lane(3));
        let mut sid = [START; 4];
        let together = l0.iter().zip(l1).zip(l2).zip(l3).enumerate();
        for (i, (((&b0, &b1), &b2), &b3)) in together {
            sid = [
                Self::next(sid[0], b0),
                Self::next(sid[1], b1),
                Self::next(sid[2], b2),
                Self::next(sid[3], b3),
            ];
            if sid.iter().any(|&s| s < MATCHES_BELOW) {
                for l in 0..4 {
                    let at = begin[l] + i + 1;
                    if sid[l] < MATCHES_BELOW && at > own[l] {
                        Self::report(sid[l], at, &mut found);
                    }
                }
            }
        }
        // The rest of lanes 1-3 (longer than lane 0 by the overlap, the last by the remainder).
        for l in 1..4 {
            let mut state = sid[l];
            for (i, &b) in lane(l).iter().enumerate().skip(quarter) {
                state = Self::next(state, b);
                if state < MATCHES_BELOW {
                    Self::report(state, begin[l] + i + 1, &mut found);
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
    let mut g = 0u32;
    // Self-deletion needs `__file__`/`argv[0]` near a delete call (the rule reads the call's
    // arguments), so positions are kept for a proximity check.
    let mut self_pos: Vec<usize> = Vec::new();
    let mut del_pos: Vec<usize> = Vec::new();
    Tokens::for_each(src, |pattern, start| {
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
    use super::{needs_parse, reason, Tokens, PATTERNS};

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
                Tokens::for_each(&src, |p, start| got.push((p, start)));
                got.sort_unstable();
                assert_eq!(got, naive(&src), "length {}", src.len());
            }
        }
    }

    #[test]
    fn the_compiled_in_dfa_finds_what_brute_force_finds_in_the_samples() {
        // The malicious corpus and fixtures: real Python, full of tokens.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
        let mut dirs = vec![root];
        let mut files = 0;
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).expect("tests folder").flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "py") {
                    let src = std::fs::read(&p).expect("sample");
                    let mut got = Vec::new();
                    Tokens::for_each(&src, |t, start| got.push((t, start)));
                    got.sort_unstable();
                    assert_eq!(got, naive(&src), "{}", p.display());
                    files += 1;
                }
            }
        }
        assert!(files >= 25, "only {files} sample files found");
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
