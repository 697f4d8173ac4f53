//! Deletion-neighbourhood (SymSpell) index: variant hash → corpus entries, with a Bloom filter
//! in front so that the many probes that miss are answered from cache.

use super::fold::FastMap;

#[derive(Debug, Default)]
pub struct DeleteIndex {
    /// Variant hash → range in `postings`.
    map: FastMap<u64, (u32, u32)>,
    postings: Vec<u32>,
    /// Two-bit Bloom filter over the keys of `map`.
    filter: Vec<u64>,
    mask: u64,
}

impl DeleteIndex {
    /// Build from `(variant hash, corpus index)` pairs; `filter_bits` = log2 of the filter size
    /// in bits (≈ 8 bits per key keeps false positives near 2 %).
    pub fn build(mut pairs: Vec<(u64, u32)>, filter_bits: u32) -> DeleteIndex {
        pairs.sort_unstable();
        pairs.dedup();
        let mask = (1u64 << filter_bits) - 1;
        let mut filter = vec![0u64; 1 << filter_bits.saturating_sub(6)];
        let mut map: FastMap<u64, (u32, u32)> = FastMap::default();
        map.reserve(pairs.len());
        let mut postings = Vec::with_capacity(pairs.len());
        for group in pairs.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(key, _)) = group.first() else {
                continue;
            };
            let start = postings.len() as u32;
            postings.extend(group.iter().map(|&(_, i)| i));
            map.insert(key, (start, group.len() as u32));
            for bit in Self::bits(key, mask) {
                if let Some(w) = filter.get_mut(bit >> 6) {
                    *w |= 1 << (bit & 63);
                }
            }
        }
        DeleteIndex {
            map,
            postings,
            filter,
            mask,
        }
    }

    #[inline]
    fn bits(key: u64, mask: u64) -> [usize; 2] {
        [(key & mask) as usize, ((key >> 32) & mask) as usize]
    }

    /// Corpus entries having a variant with this hash (hash collisions possible: verify).
    #[inline]
    pub fn get(&self, key: u64) -> &[u32] {
        let set = |bit: usize| {
            self.filter
                .get(bit >> 6)
                .is_some_and(|w| w & (1 << (bit & 63)) != 0)
        };
        if !Self::bits(key, self.mask).into_iter().all(set) {
            return &[];
        }
        match self.map.get(&key) {
            Some(&(s, n)) => self
                .postings
                .get(s as usize..(s + n) as usize)
                .unwrap_or(&[]),
            None => &[],
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let idx = DeleteIndex::build(vec![(5, 1), (5, 2), (9, 3), (5, 1)], 10);
        assert_eq!(idx.get(5), &[1, 2]);
        assert_eq!(idx.get(9), &[3]);
        assert!(idx.get(7).is_empty());
        assert_eq!(idx.len(), 2);
    }
}
