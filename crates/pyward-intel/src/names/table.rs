//! `key → corpus ids` hash tables, searched in place.
//!
//! The embedded corpus's tables are statics written by `build.rs`, so start-up does no work;
//! another corpus's are built at run time into the same shape. A table is packed into flat
//! arrays rather than a slice of `(&str, &[u32])` pairs: a static holding a pointer per entry
//! costs a dynamic relocation per entry at every process start (180,000 of them for the
//! corpus's five tables). Lookups go through an open-addressing slot array (a binary search
//! instead made the million-name benchmark 50 % slower).

use std::borrow::Cow;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Every key, in sorted order, concatenated.
    keys: Cow<'static, str>,
    /// End of key `i` in `keys` (it starts at the end of key `i - 1`).
    key_ends: Cow<'static, [u32]>,
    /// End of key `i`'s ids in `ids`.
    id_ends: Cow<'static, [u32]>,
    /// The ids (ranks − 1, most popular first) of every key, concatenated.
    ids: Cow<'static, [u32]>,
    /// Open addressing, linear probing: entry index or [`EMPTY`]; a power of two, at most
    /// half full.
    slots: Cow<'static, [u32]>,
}

const EMPTY: u32 = u32::MAX;

impl Table {
    /// A table compiled in, sorted by key (`build.rs` packs it from a `BTreeMap`).
    pub const fn embedded(
        keys: &'static str,
        key_ends: &'static [u32],
        id_ends: &'static [u32],
        ids: &'static [u32],
        slots: &'static [u32],
    ) -> Table {
        Table {
            keys: Cow::Borrowed(keys),
            key_ends: Cow::Borrowed(key_ends),
            id_ends: Cow::Borrowed(id_ends),
            ids: Cow::Borrowed(ids),
            slots: Cow::Borrowed(slots),
        }
    }

    pub fn from_map(map: BTreeMap<String, Vec<u32>>) -> Table {
        let p = pack(&map);
        Table {
            keys: Cow::Owned(p.keys),
            key_ends: Cow::Owned(p.key_ends),
            id_ends: Cow::Owned(p.id_ends),
            ids: Cow::Owned(p.ids),
            slots: Cow::Owned(p.slots),
        }
    }

    fn range(ends: &[u32], i: usize) -> std::ops::Range<usize> {
        let start = i.checked_sub(1).and_then(|p| ends.get(p)).copied();
        let end = ends.get(i).copied().unwrap_or(0) as usize;
        start.unwrap_or(0) as usize..end
    }

    fn key(&self, i: usize) -> &str {
        self.keys.get(Self::range(&self.key_ends, i)).unwrap_or("")
    }

    /// The ids under `key`, most popular first; empty when none.
    pub fn get(&self, key: &str) -> &[u32] {
        let mask = self.slots.len().wrapping_sub(1);
        let mut slot = key_hash(key) as usize & mask;
        // At most half the slots are used, so an empty one ends every probe sequence.
        for _ in 0..self.slots.len() {
            let i = match self.slots.get(slot) {
                Some(&EMPTY) | None => return &[],
                Some(&i) => i as usize,
            };
            if self.key(i) == key {
                return self.ids.get(Self::range(&self.id_ends, i)).unwrap_or(&[]);
            }
            slot = (slot + 1) & mask;
        }
        &[]
    }

    /// The most popular id under `key`.
    pub fn first(&self, key: &str) -> Option<u32> {
        self.get(key).first().copied()
    }

    /// Every key with its ids, in key order.
    #[cfg(test)]
    pub fn entries(&self) -> Vec<(&str, &[u32])> {
        (0..self.key_ends.len())
            .map(|i| (self.key(i), self.get(self.key(i))))
            .collect()
    }
}

/// The packed form of a table, shared with `build.rs` (which compiles this file too).
pub struct Packed {
    pub keys: String,
    pub key_ends: Vec<u32>,
    pub id_ends: Vec<u32>,
    pub ids: Vec<u32>,
    pub slots: Vec<u32>,
}

pub fn pack(map: &BTreeMap<String, Vec<u32>>) -> Packed {
    let mut keys = String::new();
    let mut key_ends = Vec::with_capacity(map.len());
    let mut id_ends = Vec::with_capacity(map.len());
    let mut ids = Vec::new();
    let mut slots = vec![EMPTY; (2 * map.len()).next_power_of_two().max(1)];
    let mask = slots.len() - 1;
    for (i, (k, v)) in map.iter().enumerate() {
        keys.push_str(k);
        key_ends.push(keys.len() as u32);
        ids.extend_from_slice(v);
        id_ends.push(ids.len() as u32);
        let mut slot = key_hash(k) as usize & mask;
        while slots[slot] != EMPTY {
            slot = (slot + 1) & mask;
        }
        slots[slot] = i as u32;
    }
    Packed {
        keys,
        key_ends,
        id_ends,
        ids,
        slots,
    }
}

/// FxHash-style hash of a key, 8 bytes at a time; the same in `build.rs` and at run time
/// (the compiled-in slots depend on it).
fn key_hash(key: &str) -> u64 {
    let mut h = (key.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for chunk in key.as_bytes().chunks(8) {
        let mut buf = [0u8; 8];
        buf[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    h ^ (h >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_every_key_and_nothing_else() {
        let mut m = BTreeMap::new();
        m.insert("b".to_string(), vec![1, 4]);
        m.insert("a".to_string(), vec![0]);
        m.insert("ab".to_string(), vec![2]);
        let t = Table::from_map(m);
        assert_eq!(t.get("a"), &[0]);
        assert_eq!(t.get("ab"), &[2]);
        assert_eq!(t.get("b"), &[1, 4]);
        assert_eq!(t.first("b"), Some(1));
        assert!(t.get("").is_empty());
        assert!(t.get("c").is_empty());
        assert!(t.get("aa").is_empty());
        assert_eq!(t.first("aa"), None);
        assert_eq!(t.entries().len(), 3);
        assert!(Table::from_map(BTreeMap::new()).get("a").is_empty());
        // Many keys: every one is found through its probe sequence, absent ones are not.
        let big: BTreeMap<String, Vec<u32>> =
            (0..5000).map(|i| (format!("k{i}"), vec![i])).collect();
        let t = Table::from_map(big);
        for i in 0..5000 {
            assert_eq!(t.get(&format!("k{i}")), &[i]);
            assert!(t.get(&format!("x{i}")).is_empty());
        }
    }
}
