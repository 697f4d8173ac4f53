//! Python-flavoured regexes, as Anchore policies are written.
//!
//! Anchore evaluates its regexes with Python's `re.match`: anchored at the start of the subject,
//! not at its end. pyward keeps that for Dockerfile `like` checks (where policies are written
//! as `.*jeIlyfish.*`), and by default matches file-name regexes *anywhere* in the absolute path,
//! because `jeIlyfish\/_jellyfish\.py` under `re.match` never matches
//! `/usr/local/lib/.../jeIlyfish/_jellyfish.py` (see docs/policies.md). Patterns are compiled
//! with the `regex` crate when they can be, and with `fancy-regex` when they need Python-only
//! syntax such as look-behind (`(?<![A-Z0-9])` in Anchore's AWS key regexes).

use std::fmt;
use std::sync::OnceLock;

/// Longest pattern accepted (a policy is not the place for a megabyte regex).
pub const MAX_PATTERN_LEN: usize = 4096;
/// Compiled-size limit for one pattern, so a pathological pattern is an error, not an OOM.
const SIZE_LIMIT: usize = 1 << 22;

/// How a pattern is applied to its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMode {
    /// Python `re.match`: anchored at the start (Anchore's behaviour).
    Start,
    /// Python `re.search`: anywhere in the subject (pyward's default for file names).
    Anywhere,
}

#[derive(Clone)]
enum Engine {
    Plain(regex::Regex),
    Fancy(fancy_regex::Regex),
    /// A built-in pattern that did not compile (a unit test rules this out): matches nothing.
    Broken,
}

/// A pattern with its source and mode. A policy's own patterns are compiled (and so checked)
/// when the policy loads; pyward's built-in ones on their first use.
#[derive(Clone)]
pub struct PyRegex {
    pub source: String,
    pub mode: MatchMode,
    engine: OnceLock<Engine>,
}

impl fmt::Debug for PyRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PyRegex({:?}, {:?})", self.source, self.mode)
    }
}

/// Python syntax the Rust engines spell differently: `\Z` (end of string) is `\z`.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('Z') => out.push_str("\\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn compile(source: &str, mode: MatchMode) -> Result<Engine, String> {
    if source.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "the pattern is {} characters, over the {MAX_PATTERN_LEN}-character limit",
            source.len()
        ));
    }
    let body = translate(source);
    let full = match mode {
        MatchMode::Start => format!("^(?:{body})"),
        MatchMode::Anywhere => body.clone(),
    };
    let engine = match regex::RegexBuilder::new(&full)
        .size_limit(SIZE_LIMIT)
        .build()
    {
        Ok(r) => Engine::Plain(r),
        Err(plain_err) => {
            match fancy_regex::RegexBuilder::new(&full)
                .delegate_size_limit(SIZE_LIMIT)
                .backtrack_limit(100_000)
                .build()
            {
                Ok(r) => Engine::Fancy(r),
                Err(e) => {
                    let msg = match plain_err {
                        regex::Error::CompiledTooBig(_) => {
                            "the pattern compiles too big; simplify it".to_string()
                        }
                        _ => e.to_string(),
                    };
                    return Err(format!("invalid regex `{source}`: {msg}"));
                }
            }
        }
    };
    Ok(engine)
}

impl PyRegex {
    /// A policy's pattern, compiled now: an invalid one is an error at load.
    pub fn new(source: &str, mode: MatchMode) -> Result<PyRegex, String> {
        Ok(PyRegex {
            source: source.to_string(),
            mode,
            engine: OnceLock::from(compile(source, mode)?),
        })
    }

    /// One of pyward's built-in patterns (tested to compile), compiled on its first use: the
    /// dozen secret regexes every policy carries cost about a seventh of a one-package scan's
    /// start-up to compile, and most scans never run them on a line.
    pub fn builtin(source: &str, mode: MatchMode) -> PyRegex {
        PyRegex {
            source: source.to_string(),
            mode,
            engine: OnceLock::new(),
        }
    }

    fn engine(&self) -> &Engine {
        self.engine
            .get_or_init(|| compile(&self.source, self.mode).unwrap_or(Engine::Broken))
    }

    /// Whether the pattern matches `subject` (a backtracking limit hit counts as no match).
    pub fn is_match(&self, subject: &str) -> bool {
        match self.engine() {
            Engine::Plain(r) => r.is_match(subject),
            Engine::Fancy(r) => r.is_match(subject).unwrap_or(false),
            Engine::Broken => false,
        }
    }

    /// The pattern as the `regex` crate compiled it, when it could (for [`regex::RegexSet`]).
    pub fn plain_source(&self) -> Option<String> {
        match self.engine() {
            Engine::Plain(r) => Some(r.as_str().to_string()),
            Engine::Fancy(_) | Engine::Broken => None,
        }
    }
}

/// A plain-regex pattern matching a superset of what `pattern` matches: look-around groups
/// (`(?<!..)`, `(?<=..)`, `(?!..)`, `(?=..)`) are dropped, since the `regex` crate has none.
/// Used to prefilter whole files in one DFA pass before the exact, per-line check.
fn without_lookaround(pattern: &str) -> String {
    let b = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    let mut in_class = false;
    while i < b.len() {
        let rest = &pattern[i..];
        if !in_class
            && (rest.starts_with("(?<!")
                || rest.starts_with("(?<=")
                || rest.starts_with("(?!")
                || rest.starts_with("(?="))
        {
            // Skip to the matching `)`.
            let mut depth = 0i32;
            let mut j = i;
            let mut cls = false;
            while j < b.len() {
                match b[j] {
                    b'\\' => j += 1,
                    b'[' if !cls => cls = true,
                    b']' if cls => cls = false,
                    b'(' if !cls => depth += 1,
                    b')' if !cls => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        match c {
            // Word boundaries are dropped too: a superset, and it keeps the prefilter on the
            // DFA (Unicode `\b` sends the regex crate to its slow PikeVM on non-ASCII text).
            '\\' if !in_class && (rest.starts_with("\\b") || rest.starts_with("\\B")) => {
                i += 2;
                continue;
            }
            '\\' => {
                out.push(c);
                if let Some(n) = pattern[i + 1..].chars().next() {
                    out.push(n);
                    i += n.len_utf8();
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
        i += c.len_utf8();
    }
    out
}

impl PyRegex {
    /// A `regex::bytes` pattern (to compile with Unicode off) over a whole multi-line text that
    /// matches wherever some line of it could match this pattern (a superset), or `None` when
    /// the pattern has no such form. Not compiled here: the caller compiles every pattern as one
    /// set, and checks them one by one only if the set does not build.
    pub fn line_prefilter(&self) -> Option<String> {
        // `\Z` ends the line in the exact check but would end the whole text here.
        if self.source.contains("\\Z") {
            return None;
        }
        let body = translate(&without_lookaround(&self.source));
        Some(match self.mode {
            MatchMode::Start => format!("(?m)^(?:{body})"),
            MatchMode::Anywhere => format!("(?m)(?:{body})"),
        })
    }

    /// Whether a [`line_prefilter`](Self::line_prefilter) pattern compiles on its own.
    pub fn prefilter_compiles(pattern: &str) -> bool {
        regex::bytes::RegexBuilder::new(pattern)
            .unicode(false)
            .size_limit(SIZE_LIMIT)
            .build()
            .is_ok()
    }
}

/// Whether `re.match(pattern, s)` and `re.search(pattern, s)` agree for every `s`: the pattern
/// is anchored (`^`, `\A`) or starts with `.*` and has no top-level alternation. Used by
/// `pyward policy check` to warn where pyward's "anywhere" matching differs from Anchore's.
pub fn start_and_anywhere_agree(pattern: &str) -> bool {
    let p = pattern
        .trim_start_matches("(?i)")
        .trim_start_matches("(?s)");
    if p.starts_with('^') || p.starts_with("\\A") {
        return !has_top_level_alternation(p);
    }
    if p.starts_with(".*") || p.starts_with("(.*)") {
        return !has_top_level_alternation(p);
    }
    false
}

fn has_top_level_alternation(p: &str) -> bool {
    let mut depth = 0i32;
    let mut in_class = false;
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => depth -= 1,
            '|' if !in_class && depth == 0 => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/usr/local/lib/python3.11/site-packages/jeIlyfish/_jellyfish.py";

    #[test]
    fn match_is_anchored_search_is_not() {
        let start = PyRegex::new(r"jeIlyfish\/_jellyfish\.py", MatchMode::Start).unwrap();
        let anywhere = PyRegex::new(r"jeIlyfish\/_jellyfish\.py", MatchMode::Anywhere).unwrap();
        assert!(!start.is_match(PATH));
        assert!(anywhere.is_match(PATH));
        assert!(
            PyRegex::new(r".*jeIlyfish/_jellyfish\.py", MatchMode::Start)
                .unwrap()
                .is_match(PATH)
        );
    }

    #[test]
    fn lookbehind_uses_fancy_regex() {
        let aws = PyRegex::new(
            r"(?i).*aws_access_key_id( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9]).*",
            MatchMode::Start,
        )
        .unwrap();
        assert!(aws.plain_source().is_none());
        assert!(aws.is_match("aws_access_key_id = AKIAIOSFODNN7EXAMPLE"));
        assert!(!aws.is_match("aws_access_key_id = short"));
    }

    #[test]
    fn invalid_and_python_syntax() {
        assert!(PyRegex::new("a(b", MatchMode::Start)
            .unwrap_err()
            .contains("a(b"));
        assert!(PyRegex::new(r"abc\Z", MatchMode::Start)
            .unwrap()
            .is_match("abc"));
        assert!(!PyRegex::new(r"abc\Z", MatchMode::Start)
            .unwrap()
            .is_match("abcd"));
    }

    #[test]
    fn prefilter_is_a_superset_without_lookaround() {
        let aws = PyRegex::new(
            r"(?i).*aws_access_key_id( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9]).*",
            MatchMode::Start,
        )
        .unwrap();
        let pre = regex::bytes::RegexBuilder::new(&aws.line_prefilter().unwrap())
            .unicode(false)
            .build()
            .unwrap();
        let text = "x = 1\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n";
        assert!(pre.is_match(text.as_bytes()));
        assert!(!pre.is_match(b"nothing to see\nhere\n"));
        assert_eq!(without_lookaround(r"\bghp_\w+\b"), r"ghp_\w+");
        assert_eq!(without_lookaround(r"a(?<![(])b[(?!]c(?=x)d"), r"ab[(?!]cd");
    }

    #[test]
    fn agreement() {
        assert!(start_and_anywhere_agree(".*\\.pem"));
        assert!(start_and_anywhere_agree("^/etc/"));
        assert!(!start_and_anywhere_agree("jeIlyfish\\/_jellyfish\\.py"));
        assert!(!start_and_anywhere_agree(".*a|b"));
        assert!(!start_and_anywhere_agree("/usr/bin/.*"));
    }
}
