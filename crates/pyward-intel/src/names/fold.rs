//! Name forms used to find look-alikes, and a small fast hasher for the indexes.

use super::keys::visual_fold;
use std::hash::{BuildHasherDefault, Hasher};

/// Visual skeleton of a name as found (case matters: capital `I` looks like `l`).
///
/// Non-ASCII names first go through the Unicode TR39 confusable skeleton (Cyrillic `е` → `e`,
/// ...). Then: separators dropped; `I` → `l`; lowercase; `0` → `o`; `1`, `|` → `l`; and the
/// multi-letter look-alikes `rn` → `m`, `vv` → `w`, `cl` → `d`. Two names with the same
/// skeleton look the same to a reader.
pub fn skeleton(original: &str) -> String {
    if original.is_ascii() {
        visual_fold(original)
    } else {
        visual_fold(&unicode_security::skeleton(original).collect::<String>())
    }
}

/// Hashes of a name and of its deletion variants in O(1) each (after an O(n) set-up), for
/// the deletion-neighbourhood index: a polynomial hash `Σ s[i]·B^(len-1-i)` (wrapping) with
/// prefix sums, so that removing one or two positions is arithmetic, not a new string.
pub struct DeleteHasher<'a> {
    s: &'a [u8],
    prefix: [u64; MAX_HASHED + 1],
}

/// Longest name the hasher handles exactly (callers only index and probe shorter names).
pub const MAX_HASHED: usize = 128;

const BASE: u64 = 0x0000_0100_0000_01b3;

/// `BASE^i`, computed at compile time.
const POW: [u64; MAX_HASHED + 1] = {
    let mut a = [1u64; MAX_HASHED + 1];
    let mut i = 1;
    while i <= MAX_HASHED {
        a[i] = a[i - 1].wrapping_mul(BASE);
        i += 1;
    }
    a
};

impl<'a> DeleteHasher<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        let s = s.get(..MAX_HASHED).unwrap_or(s);
        let mut prefix = [0u64; MAX_HASHED + 1];
        let mut h = 0u64;
        for (i, &b) in s.iter().enumerate() {
            h = h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1);
            if let Some(slot) = prefix.get_mut(i + 1) {
                *slot = h;
            }
        }
        DeleteHasher { s, prefix }
    }

    /// Polynomial hash of `s[a..b]`.
    #[inline]
    fn range(&self, a: usize, b: usize) -> u64 {
        let hb = self.prefix.get(b).copied().unwrap_or(0);
        let ha = self.prefix.get(a).copied().unwrap_or(0);
        hb.wrapping_sub(ha.wrapping_mul(self.pw(b - a)))
    }

    #[inline]
    fn pw(&self, k: usize) -> u64 {
        POW.get(k).copied().unwrap_or(0)
    }

    /// Key of the whole name.
    pub fn whole(&self) -> u64 {
        finish(self.range(0, self.s.len()), self.s.len())
    }

    /// Key of the name without position `x`.
    pub fn delete1(&self, x: usize) -> u64 {
        let n = self.s.len();
        let h = self
            .range(0, x)
            .wrapping_mul(self.pw(n - 1 - x))
            .wrapping_add(self.range(x + 1, n));
        finish(h, n - 1)
    }

    /// Key of the name without positions `x < y`.
    pub fn delete2(&self, x: usize, y: usize) -> u64 {
        let n = self.s.len();
        let h = self
            .range(0, x)
            .wrapping_mul(self.pw(n - 2 - x))
            .wrapping_add(self.range(x + 1, y).wrapping_mul(self.pw(n - 1 - y)))
            .wrapping_add(self.range(y + 1, n));
        finish(h, n - 2)
    }
}

/// Mix the polynomial hash with the length (splitmix64 finaliser).
#[inline]
fn finish(h: u64, len: usize) -> u64 {
    let mut z = h ^ (len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
    use super::super::keys::{sorted_words, squash};
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
    fn delete_hashes_equal_hash_of_deleted() {
        let h = |s: &str| DeleteHasher::new(s.as_bytes()).whole();
        let d = DeleteHasher::new(b"requests");
        assert_eq!(d.delete1(3), h("reqests"));
        assert_eq!(d.delete1(0), h("equests"));
        assert_eq!(d.delete1(7), h("request"));
        assert_eq!(d.delete2(0, 7), h("equest"));
        assert_eq!(d.delete2(2, 3), h("reests"));
        assert_ne!(h("ab"), h("ba"));
        assert_ne!(h("a"), h("aa"));
        assert_eq!(DeleteHasher::new(b"ab").delete2(0, 1), h(""));
    }

    #[test]
    fn words() {
        assert_eq!(
            sorted_words("python-dateutil"),
            sorted_words("dateutil-python")
        );
        assert_eq!(sorted_words("requests"), None);
        assert_eq!(squash("beautiful-soup4"), "beautifulsoup4");
    }
}
