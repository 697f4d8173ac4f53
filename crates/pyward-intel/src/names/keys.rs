//! The lookup keys of a name: plain `std` code, so that `build.rs` compiles this same file to
//! index the embedded corpus at build time (`#[path]`), and the run-time index of another
//! corpus gets the same keys.

use std::collections::BTreeMap;

/// A corpus's key maps (exact name, skeleton, squashed, sorted words, `py` cores): key →
/// the ids (rank − 1) indexed under it.
pub type KeyMaps = [BTreeMap<String, Vec<u32>>; 5];

/// Index a corpus (most popular first) under every key of [`name_keys`].
pub fn index_corpus<'a>(
    names: impl Iterator<Item = &'a str>,
    skeleton: impl Fn(&str) -> String,
) -> KeyMaps {
    let mut maps: KeyMaps = Default::default();
    let [exact, skeletons, squashed, words, py_cores] = &mut maps;
    for (i, name) in names.enumerate() {
        let i = i as u32;
        let k = name_keys(name, &skeleton);
        exact.entry(name.to_string()).or_default().push(i);
        skeletons.entry(k.skeleton).or_default().push(i);
        squashed.entry(k.squashed).or_default().push(i);
        if let Some(w) = k.words {
            words.entry(w).or_default().push(i);
        }
        for core in k.py_cores {
            py_cores.entry(core).or_default().push(i);
        }
    }
    maps
}

/// The keys under which a corpus name is indexed.
pub struct NameKeys {
    /// Separators removed: `python-dateutil` → `pythondateutil`.
    pub squashed: String,
    /// Visual skeleton ([`visual_fold`], after TR39 for non-ASCII names).
    pub skeleton: String,
    /// Words sorted, for reordered-word checks; `None` for one word.
    pub words: Option<String>,
    /// Cores (≥ 3 characters) left when a `py`/`python` word is removed.
    pub py_cores: Vec<String>,
}

/// The keys of a normalised corpus name. `skeleton` is used only when the name has look-alike
/// characters ([`is_plain`] is false); otherwise its skeleton is its squashed form.
pub fn name_keys(name: &str, skeleton: impl Fn(&str) -> String) -> NameKeys {
    let squashed = squash(name);
    let skeleton = if is_plain(name) {
        squashed.clone()
    } else {
        skeleton(name)
    };
    NameKeys {
        squashed,
        skeleton,
        words: sorted_words(name),
        py_cores: python_cores(name)
            .into_iter()
            .map(|(core, _)| core)
            .filter(|core| core.len() >= 3)
            .collect(),
    }
}

/// The look-alike folding of a visual skeleton: separators dropped; `I` → `l`; lowercase;
/// `0` → `o`; `1`, `|` → `l`; then `rn` → `m`, `vv` → `w`, `cl` → `d`, left to right.
pub fn visual_fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '-' | '_' | '.' | ' ') {
            continue;
        }
        let c = if c == 'I' { 'l' } else { c };
        for c in c.to_lowercase() {
            out.push(match c {
                '0' => 'o',
                '1' | '|' => 'l',
                c => c,
            });
        }
    }
    fold_pairs(&out)
}

/// `rn` → `m`, `vv` → `w`, `cl` → `d`, left to right.
fn fold_pairs(s: &str) -> String {
    if !(s.contains("rn") || s.contains("vv") || s.contains("cl")) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        match (c, next) {
            ('r', Some('n')) => {
                out.push('m');
                chars.next();
            }
            ('v', Some('v')) => {
                out.push('w');
                chars.next();
            }
            ('c', Some('l')) => {
                out.push('d');
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// Whether a name has no look-alike characters (capitals, `0`, `1`, non-ASCII, `_`, `.`, and
/// no `rn`, `vv`, `cl` once the `-` are gone): then its skeleton is its squashed form.
pub fn is_plain(name: &str) -> bool {
    let mut prev = 0u8;
    for b in name.bytes() {
        if b == b'-' {
            continue;
        }
        if !(b.is_ascii_lowercase() || (b.is_ascii_digit() && b != b'0' && b != b'1')) {
            return false;
        }
        if matches!((prev, b), (b'r', b'n') | (b'v', b'v') | (b'c', b'l')) {
            return false;
        }
        prev = b;
    }
    true
}

/// A normalised name with its separators removed (`python-dateutil` → `pythondateutil`).
pub fn squash(normalized: &str) -> String {
    normalized.chars().filter(|c| *c != '-').collect()
}

/// The `-`-separated words of a normalised name, sorted and joined, for reordered-word
/// checks (`dateutil-python` and `python-dateutil` share `dateutil-python`). `None` for a
/// single word.
pub fn sorted_words(normalized: &str) -> Option<String> {
    let mut words: Vec<&str> = normalized.split('-').filter(|w| !w.is_empty()).collect();
    if words.len() < 2 {
        return None;
    }
    words.sort_unstable();
    Some(words.join("-"))
}

/// The name without its `py`/`python` word, with whether that word had version digits:
/// `python3-dateutil` → `dateutil` (true), `dateutil-py` → `dateutil`, `pyredis` → `redis`.
/// Empty when the name has no such word.
pub fn python_cores(n: &str) -> Vec<(String, bool)> {
    let mut cores: Vec<(String, bool)> = Vec::new();
    let has_digits = |w: &str| w.bytes().any(|b| b.is_ascii_digit());
    let first_end = n.find('-');
    let last_start = n.rfind('-');
    if let Some(e) = first_end {
        let (first, rest) = (n.get(..e).unwrap_or(""), n.get(e + 1..).unwrap_or(""));
        if is_py_word(first) && !rest.is_empty() {
            cores.push((rest.to_string(), has_digits(first)));
        }
    }
    if let Some(s) = last_start {
        let (rest, last) = (n.get(..s).unwrap_or(""), n.get(s + 1..).unwrap_or(""));
        if is_py_word(last) && !rest.is_empty() {
            cores.push((rest.to_string(), has_digits(last)));
        }
    }
    // Glued prefix: python3dateutil, py3requests (strong), pyredis (weak).
    let first_is_word = n
        .get(..first_end.unwrap_or(n.len()))
        .is_some_and(is_py_word);
    if !first_is_word {
        if let Some(rest) = n.strip_prefix("python").or_else(|| n.strip_prefix("py")) {
            let core = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            let digits = core.len() < rest.len();
            let core = core.trim_start_matches('-');
            if !core.is_empty() {
                cores.push((core.to_string(), digits));
            }
        }
    }
    cores
}

/// `py`, `python`, `py3`, `python3`, `python311`...
pub fn is_py_word(w: &str) -> bool {
    let rest = w.strip_prefix("python").or_else(|| w.strip_prefix("py"));
    rest.is_some_and(|r| r.bytes().all(|b| b.is_ascii_digit()))
}
