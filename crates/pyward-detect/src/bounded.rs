//! A map with a hard size cap and least-recently-used eviction.
//!
//! Every piece of detector state (processes, written files, per-tree windows) lives in one
//! of these, so memory stays bounded whatever the event stream does: a hostile workload that
//! creates a million files only ever costs `cap` entries.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// A `HashMap` that holds at most `cap` entries, evicting the least recently used.
#[derive(Debug, Clone)]
pub(crate) struct Lru<K, V> {
    map: HashMap<K, (V, u64)>,
    order: BTreeMap<u64, K>,
    clock: u64,
    cap: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty map that never holds more than `cap` (at least 1) entries.
    pub(crate) fn new(cap: usize) -> Self {
        Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            clock: 0,
            cap: cap.max(1),
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock = self.clock.wrapping_add(1);
        self.clock
    }

    /// Insert or replace; returns the entry evicted to make room, if any.
    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<(K, V)> {
        let t = self.tick();
        if let Some((_, old_t)) = self.map.get(&k) {
            let old_t = *old_t;
            self.order.remove(&old_t);
            self.order.insert(t, k.clone());
            self.map.insert(k, (v, t));
            return None;
        }
        let mut evicted = None;
        if self.map.len() >= self.cap {
            if let Some((&oldest, _)) = self.order.iter().next() {
                if let Some(ok) = self.order.remove(&oldest) {
                    evicted = self.map.remove(&ok).map(|(ov, _)| (ok, ov));
                }
            }
        }
        self.order.insert(t, k.clone());
        self.map.insert(k, (v, t));
        evicted
    }

    /// Read without touching the recency order.
    pub(crate) fn peek<Q: Hash + Eq + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.map.get(k).map(|(v, _)| v)
    }

    /// Mutable access; marks the entry as recently used.
    pub(crate) fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        let t = self.tick();
        let (_, old_t) = self.map.get(k)?;
        let old_t = *old_t;
        let key = self.order.remove(&old_t)?;
        self.order.insert(t, key);
        let e = self.map.get_mut(k)?;
        e.1 = t;
        Some(&mut e.0)
    }

    /// Mutable access, inserting `make()` first when absent (evicting the oldest if full).
    pub(crate) fn get_or_insert_with(&mut self, k: &K, make: impl FnOnce() -> V) -> &mut V {
        if !self.map.contains_key(k) && self.map.len() >= self.cap {
            if let Some((&oldest, _)) = self.order.iter().next() {
                if let Some(ok) = self.order.remove(&oldest) {
                    self.map.remove(&ok);
                }
            }
        }
        let t = self.tick();
        let entry = self.map.entry(k.clone()).or_insert_with(|| (make(), t));
        let old_t = entry.1;
        entry.1 = t;
        if old_t != t {
            self.order.remove(&old_t);
        }
        self.order.insert(t, k.clone());
        &mut entry.0
    }

    /// Remove and return an entry.
    pub(crate) fn remove<Q: Hash + Eq + ?Sized>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let (v, t) = self.map.remove(k)?;
        self.order.remove(&t);
        Some(v)
    }

    /// Values in no particular order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values().map(|(v, _)| v)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used() {
        let mut m = Lru::new(2);
        m.insert(1, "a");
        m.insert(2, "b");
        assert!(m.get_mut(&1).is_some());
        let ev = m.insert(3, "c");
        assert_eq!(ev, Some((2, "b")));
        assert_eq!(m.len(), 2);
        assert!(m.peek(&1).is_some() && m.peek(&3).is_some());
        *m.get_or_insert_with(&4, || "d") = "e";
        assert_eq!(m.peek(&4), Some(&"e"));
        assert_eq!(m.len(), 2);
        assert_eq!(m.remove(&4), Some("e"));
        assert_eq!(m.len(), 1);
    }
}
