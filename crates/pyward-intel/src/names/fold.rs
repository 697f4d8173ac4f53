//! Name forms used to find look-alikes, and a small fast hasher for the indexes.

use std::hash::{BuildHasherDefault, Hasher};

/// Visual skeleton of a name as found (case matters: capital `I` looks like `l`).
///
/// Non-ASCII names first go through the Unicode TR39 confusable skeleton (Cyrillic `е` → `e`,
/// ...). Then: separators dropped; `I` → `l`; lowercase; `0` → `o`; `1`, `|` → `l`; and the
/// multi-letter look-alikes `rn` → `m`, `vv` → `w`, `cl` → `d`. Two names with the same
/// skeleton look the same to a reader.
pub fn skeleton(original: &str) -> String {
    let tr39: String;
    let s = if original.is_ascii() {
        original
    } else {
        tr39 = unicode_security::skeleton(original).collect();
        &tr39
    };
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

/// FNV-1a over bytes, skipping up to two positions: hashes a deletion variant of a name
/// without building it.
#[inline]
pub fn hash_skipping(bytes: &[u8], skip1: usize, skip2: usize) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut len = 0u64;
    for (i, &b) in bytes.iter().enumerate() {
        if i == skip1 || i == skip2 {
            continue;
        }
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        len += 1;
    }
    h ^ len.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Hasher for maps keyed by already-mixed u64 hashes, or short strings (FxHash-style).
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(buf));
        }
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

pub type FastBuild = BuildHasherDefault<FastHasher>;
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastBuild>;

/// Optimal string alignment distance (Damerau: adjacent transposition counts as one edit),
/// giving up with `None` as soon as it must exceed `max`.
pub fn osa_distance(a: &[u8], b: &[u8], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    if a == b {
        return Some(0);
    }
    let n = b.len();
    // Three rolling rows: i-2, i-1, i.
    let mut prev2: Vec<usize> = vec![0; n + 1];
    let mut prev: Vec<usize> = (0..=n).collect();
    let mut cur: Vec<usize> = vec![0; n + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        let ai = a[i - 1];
        for j in 1..=n {
            let bj = b[j - 1];
            let cost = usize::from(ai != bj);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && ai == b[j - 2] && a[i - 2] == bj {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    let d = prev[n];
    (d <= max).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeletons() {
        assert_eq!(skeleton("jeIlyfish"), skeleton("jellyfish"));
        assert_ne!(skeleton("jeilyfish"), skeleton("jellyfish"));
        assert_eq!(skeleton("djang0"), "django");
        assert_eq!(skeleton("rnatplotlib"), skeleton("matplotlib"));
        assert_eq!(skeleton("vvheel"), skeleton("wheel"));
        assert_eq!(skeleton("c1ick"), skeleton("click"));
        // Cyrillic е (U+0435) and а (U+0430).
        assert_eq!(skeleton("r\u{0435}quests"), skeleton("requests"));
        assert_eq!(skeleton("p\u{0430}ndas"), skeleton("pandas"));
        assert_eq!(skeleton("python_dateutil"), skeleton("python-dateutil"));
    }

    #[test]
    fn distances() {
        let d = |a: &str, b: &str| osa_distance(a.as_bytes(), b.as_bytes(), 2);
        assert_eq!(d("requests", "requests"), Some(0));
        assert_eq!(d("reqeusts", "requests"), Some(1));
        assert_eq!(d("requets", "requests"), Some(1));
        assert_eq!(d("djanga", "django"), Some(1));
        assert_eq!(d("urlib3", "urllib3"), Some(1));
        assert_eq!(d("colourama", "colorama"), Some(1));
        assert_eq!(d("abcdef", "badcfe"), None);
        assert_eq!(d("ab", "abcdef"), None);
        assert_eq!(d("", "ab"), Some(2));
    }

    #[test]
    fn hash_skipping_equals_hash_of_deleted() {
        let h = |s: &str| hash_skipping(s.as_bytes(), usize::MAX, usize::MAX);
        assert_eq!(hash_skipping(b"requests", 3, usize::MAX), h("reqests"));
        assert_eq!(hash_skipping(b"requests", 0, 7), h("equest"));
        assert_ne!(h("ab"), h("ba"));
    }

    #[test]
    fn words() {
        assert_eq!(sorted_words("python-dateutil"), sorted_words("dateutil-python"));
        assert_eq!(sorted_words("requests"), None);
        assert_eq!(squash("beautiful-soup4"), "beautifulsoup4");
    }
}
