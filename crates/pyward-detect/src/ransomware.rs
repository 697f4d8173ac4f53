//! Ransomware: per process tree, a sliding window over files that the tree read and then
//! destroyed — overwrote in place, replaced by an output derived from them, renamed to a new
//! extension, or deleted — scored by what the new bytes look like next to what was there.
//!
//! One file counts up to 1 point:
//!
//! | what happened to an existing file F the tree read | points |
//! |---|---|
//! | F overwritten in place with opaque bytes (no known format, not text) where F was a known type (from its bytes or extension) — CryptoDrop's file-type change | 1.0 |
//! | same, F's type unknown and the new bytes random-looking (normalised entropy ≥ `entropy_high`) | 1.0 |
//! | same, F's type unknown and the new bytes not captured | 0.5 |
//! | same, F's type unknown and the new bytes opaque but low-entropy | 0.2 |
//! | an output named after F (`F.enc`, `F.locked`, `stem.enc`) written with such bytes, and F deleted or renamed away | as above |
//! | that output written but F still there | half of the above |
//! | the new bytes a known encrypted container (OpenSSL `Salted__`, Fernet, age, PGP) | 1.0 |
//! | the new bytes text or a known format (gzip, zip, SQLite, git pack, pyc, ELF...) | 0 |
//! | F only renamed to another extension (0.3 if a ransomware extension) | 0.1 |
//!
//! and an opaque new file not named after anything, paired with a read file deleted without
//! an output, counts 0.75 per pair. The tree is reported when its score in the window reaches
//! `threshold` with at least `min_files` files. Decoy files are reported on first touch.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};

use pyward_rules::{OutputValue, ReplayEvent};

use crate::bounded::Lru;
use crate::config::{allowed, RansomwareConfig};
use crate::content::{self, Category, ContentInfo};
use crate::detection::{Builder, Detection, DetectorKind};
use crate::glob::any_match;
use crate::procs::{ProcView, Tracker};
use crate::view::{self, Op};

const TAGS: &[&str] = &[
    "T1486",
    "T1485",
    "mitre_impact",
    "ransomware",
    "filesystem",
    "pyward",
];
const TAGS_DECOY: &[&str] = &[
    "T1486",
    "mitre_impact",
    "ransomware",
    "decoy",
    "filesystem",
    "pyward",
];
/// Examples kept for the alert text.
const EXAMPLES: usize = 5;

/// An existing file the tree touched.
#[derive(Clone, Debug, Default)]
struct Victim {
    read: bool,
    before: Option<ContentInfo>,
    /// Overwritten in place: `Some(None)` when the new bytes were not captured.
    overwritten: Option<Option<ContentInfo>>,
    /// An output named after this file, and its first bytes.
    output: Option<(String, Option<ContentInfo>)>,
    renamed_to: Option<String>,
    renamed_from: Option<String>,
    deleted: bool,
    score: f64,
}

/// A file the tree created.
#[derive(Clone, Debug, Default)]
struct Created {
    victim: Option<String>,
    content: Option<ContentInfo>,
    counted_unpaired: bool,
}

#[derive(Debug)]
struct Tree {
    victims: Lru<String, Victim>,
    /// `stem:/dir/name-without-ext` and `base:name` → victim path.
    names: Lru<String, String>,
    created: Lru<String, Created>,
    contrib: VecDeque<(u64, f64, u64)>,
    score: f64,
    opaque_unpaired: VecDeque<u64>,
    deletes_unpaired: VecDeque<u64>,
    armed: bool,
    alerts: u64,
    /// (victim hash, description, entropy of the new bytes)
    examples: VecDeque<(u64, String, Option<f64>)>,
}

impl Tree {
    fn new(cap: usize) -> Tree {
        Tree {
            victims: Lru::new(cap),
            names: Lru::new(cap * 2),
            created: Lru::new(cap),
            contrib: VecDeque::new(),
            score: 0.0,
            opaque_unpaired: VecDeque::new(),
            deletes_unpaired: VecDeque::new(),
            armed: true,
            alerts: 0,
            examples: VecDeque::new(),
        }
    }

    fn expire(&mut self, now: u64, window: u64, cap: usize) {
        let cutoff = now.saturating_sub(window);
        while let Some(&(t, d, _)) = self.contrib.front() {
            if t >= cutoff && self.contrib.len() <= cap * 4 {
                break;
            }
            self.score -= d;
            self.contrib.pop_front();
        }
        if self.contrib.is_empty() {
            self.score = 0.0;
        }
        for q in [&mut self.opaque_unpaired, &mut self.deletes_unpaired] {
            while q.front().is_some_and(|&t| t < cutoff) || q.len() > cap {
                q.pop_front();
            }
        }
    }

    fn pairs(&self) -> usize {
        self.opaque_unpaired.len().min(self.deletes_unpaired.len())
    }

    fn total(&self) -> f64 {
        self.score + 0.75 * self.pairs() as f64
    }

    /// Distinct files with a positive contribution in the window, plus unpaired pairs.
    fn files(&self) -> usize {
        let mut net: std::collections::HashMap<u64, f64> = std::collections::HashMap::new();
        for &(_, d, h) in &self.contrib {
            *net.entry(h).or_default() += d;
        }
        net.values().filter(|&&v| v > 1e-9).count() + self.pairs()
    }

    fn index_names(&mut self, path: &str) {
        let stem = view::strip_ext(path).unwrap_or(path);
        self.names.insert(format!("stem:{stem}"), path.to_owned());
        self.names
            .insert(format!("base:{}", view::base_name(path)), path.to_owned());
    }

    /// The victim an output at `g` is named after (`F.enc`, `stem.enc`, gunzip's `F` of `F.gz`).
    fn derive(&self, g: &str) -> Option<String> {
        if let Some(s) = view::strip_ext(g) {
            if self.victims.peek(&s.to_owned()).is_some_and(|v| v.read) {
                return Some(s.to_owned());
            }
            if let Some(v) = self.names.peek(&format!("stem:{s}")) {
                if v != g {
                    return Some(v.clone());
                }
            }
        }
        self.names
            .peek(&format!("stem:{g}"))
            .filter(|v| v.as_str() != g)
            .cloned()
    }

    /// A file named like one the tree read elsewhere: a copy, not an encryption.
    fn is_copy_name(&self, g: &str) -> bool {
        self.names
            .peek(&format!("base:{}", view::base_name(g)))
            .is_some_and(|v| v != g)
    }
}

fn hash_path(p: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    p.hash(&mut h);
    h.finish()
}

pub(crate) struct Ransomware {
    cfg: RansomwareConfig,
    trees: Lru<u64, Tree>,
    decoy_seen: Lru<(u64, String), ()>,
    needs_ancestors: bool,
    process_allow: bool,
}

impl Ransomware {
    pub(crate) fn new(cfg: RansomwareConfig) -> Ransomware {
        Ransomware {
            trees: Lru::new(cfg.max_trees),
            decoy_seen: Lru::new(4096),
            needs_ancestors: cfg.allow.iter().any(|a| a.needs_ancestors()),
            process_allow: !cfg.allow.is_empty(),
            cfg,
        }
    }

    /// (trees, files remembered over all trees)
    pub(crate) fn tracked(&self) -> (usize, usize) {
        let files = self
            .trees_iter()
            .map(|t| t.victims.len() + t.created.len())
            .sum();
        (self.trees.len(), files)
    }

    fn trees_iter(&self) -> impl Iterator<Item = &Tree> {
        self.trees.values()
    }

    fn excluded(&self, path: &str) -> bool {
        any_match(&self.cfg.exclude_paths, path)
            || (self.process_allow
                && self.cfg.allow.iter().any(|a| {
                    a.process.is_empty()
                        && a.module.is_empty()
                        && a.ancestor.is_empty()
                        && any_match(&a.path, path)
                }))
    }

    pub(crate) fn observe(
        &mut self,
        ev: &ReplayEvent,
        op: Op,
        tr: &Tracker,
        root: Option<u64>,
        out: &mut Vec<Detection>,
    ) {
        if !matches!(
            op,
            Op::Open | Op::Write | Op::Read | Op::Rename | Op::Unlink | Op::Chmod
        ) || view::failed(ev)
        {
            return;
        }
        let Some(root) = root else { return };
        let Some(pid) = view::pid(ev) else { return };
        let now = view::time_ns(ev);
        // Paths this event touches.
        let fd_path = || -> Option<String> {
            view::fd_path(ev).or_else(|| {
                let fd = view::fd_num(ev).or_else(|| ev.res.filter(|&r| r >= 0))?;
                tr.get(pid)?.fd(fd).map(|o| o.path.clone())
            })
        };
        let (path, path2) = match op {
            Op::Open | Op::Write | Op::Read => (fd_path(), None),
            Op::Rename => {
                let o = view::path_arg(ev, &["oldpath"], "olddirfd")
                    .and_then(|(p, d)| tr.resolve(ev, p, d));
                let n = view::path_arg(ev, &["newpath"], "newdirfd")
                    .and_then(|(p, d)| tr.resolve(ev, p, d));
                (o, n)
            }
            Op::Unlink => {
                if view::removes_dir(ev) {
                    return;
                }
                let p = view::path_arg(ev, &["path", "name"], "dirfd");
                let resolved = p.and_then(|(p, d)| tr.resolve(ev, p, d));
                // A dirfd we did not see opened: fall back to a file of that name the tree read.
                let resolved = resolved.or_else(|| {
                    let (name, _) = p?;
                    let tree = self.trees.peek(&root)?;
                    tree.names
                        .peek(&format!("base:{}", view::base_name(name)))
                        .cloned()
                });
                (resolved, None)
            }
            Op::Chmod => (
                view::path_arg(ev, &["filename", "path"], "dirfd")
                    .and_then(|(p, d)| tr.resolve(ev, p, d))
                    .or_else(|| view::fd_path(ev)),
                None,
            ),
            _ => return,
        };
        let Some(path) = path else { return };

        // Decoys: any change is reported at once, whoever makes it.
        if !self.cfg.decoys.is_empty() {
            let fl = view::open_flags(ev);
            let changes = match op {
                Op::Open => fl.write || fl.trunc || fl.creat,
                Op::Read => false,
                _ => true,
            };
            let touched = [Some(&path), path2.as_ref()]
                .into_iter()
                .flatten()
                .find(|p| any_match(&self.cfg.decoys, p))
                .cloned();
            let fresh = touched
                .as_ref()
                .is_some_and(|d| self.decoy_seen.peek(&(pid, d.clone())).is_none());
            if let (true, true, Some(d)) = (changes, fresh, touched) {
                self.decoy_seen.insert((pid, d.clone()), ());
                let b = Builder {
                    detector: DetectorKind::Ransomware,
                    rule: "Ransomware Decoy File Touched",
                    priority: self.cfg.decoy_priority,
                    tags: TAGS_DECOY,
                    extra_tags: &self.cfg.tags,
                };
                out.push(b.build(
                    ev,
                    Some(root),
                    "A decoy file was modified, renamed or deleted (ransomware canary)",
                    vec![
                        ("decoy", OutputValue::from(d)),
                        ("action", OutputValue::from(ev.event_type.as_str())),
                    ],
                ));
            }
        }

        if self.excluded(&path) {
            return;
        }
        if self.process_allow {
            let chain = if self.needs_ancestors {
                tr.chain(ev, 16)
            } else {
                vec![ProcView::from_replay(&ev.proc)]
            };
            if allowed(&self.cfg.allow, &chain, Some(&path)) {
                return;
            }
        }

        let cap = self.cfg.max_files_per_tree;
        let window = self.cfg.window_ns;
        let tree = self.trees.get_or_insert_with(&root, || Tree::new(cap));
        tree.expire(now, window, cap);
        let changed: Option<String> = match op {
            Op::Open => on_open(tree, ev, &path),
            Op::Read => {
                let v = tree.victims.get_or_insert_with(&path, Victim::default);
                v.read = true;
                if let Some(d) = view::io_data(ev) {
                    v.before = Some(ContentInfo::of(&d));
                }
                tree.index_names(&path);
                None
            }
            Op::Write => on_write(tree, ev, &path, now),
            Op::Rename => path2.and_then(|new| on_rename(tree, &path, new)),
            Op::Unlink => on_unlink(tree, &path, now),
            _ => None,
        };
        if let Some(vpath) = changed {
            rescore(tree, &vpath, now, &self.cfg);
        }
        let total = tree.total();
        if total < self.cfg.threshold / 2.0 {
            tree.armed = true;
        }
        if tree.armed && total >= self.cfg.threshold && tree.files() >= self.cfg.min_files {
            tree.armed = false;
            tree.alerts += 1;
            let files = tree.files();
            let examples: Vec<OutputValue> = tree
                .examples
                .iter()
                .map(|e| OutputValue::from(e.1.clone()))
                .collect();
            let entropies: Vec<OutputValue> = tree
                .examples
                .iter()
                .filter_map(|e| e.2)
                .map(|e| OutputValue::from((e * 100.0).round() / 100.0))
                .collect();
            let first = tree.contrib.front().map_or(now, |c| c.0);
            let secs = (now.saturating_sub(first)) as f64 / 1e9;
            let rate = if secs > 0.0 {
                files as f64 / secs
            } else {
                files as f64
            };
            let b = Builder {
                detector: DetectorKind::Ransomware,
                rule: "Ransomware-like File Encryption",
                priority: self.cfg.priority,
                tags: TAGS,
                extra_tags: &self.cfg.tags,
            };
            out.push(b.build(
                ev,
                Some(root),
                "Files of one process tree turned into opaque data and their originals destroyed (ransomware-like encryption)",
                vec![
                    ("files", OutputValue::from(files)),
                    ("score", OutputValue::from((total * 100.0).round() / 100.0)),
                    ("threshold", OutputValue::from(self.cfg.threshold)),
                    ("window_s", OutputValue::from(self.cfg.window_ns / 1_000_000_000)),
                    ("files_per_s", OutputValue::from((rate * 10.0).round() / 10.0)),
                    ("examples", OutputValue::from(examples)),
                    ("entropy", OutputValue::from(entropies)),
                    ("last_file", OutputValue::from(path.clone())),
                ],
            ));
        }
    }
}

fn on_open(tree: &mut Tree, ev: &ReplayEvent, path: &str) -> Option<String> {
    let fl = view::open_flags(ev);
    if fl.directory || fl.path_only || fl.tmpfile {
        return None;
    }
    let key = path.to_owned();
    let was_read = tree.victims.peek(&key).is_some_and(|v| v.read);
    // O_RDWR|O_CREAT without O_TRUNC (SQLite and friends) opens what is there: a read.
    let rw_keep = fl.read && fl.creat && !fl.trunc;
    if fl.write && (fl.creat || fl.trunc) && !rw_keep {
        if was_read && !fl.excl {
            if !fl.trunc {
                return None;
            }
            if let Some(v) = tree.victims.get_mut(&key) {
                v.overwritten = Some(None);
            }
            return Some(key);
        }
        // A new file, or one the tree never read (cp, tar over an existing tree).
        let victim = tree.derive(path);
        if let Some(vp) = &victim {
            if let Some(v) = tree.victims.get_mut(vp) {
                v.output = Some((key.clone(), None));
            }
        }
        tree.created.insert(
            key,
            Created {
                victim: victim.clone(),
                ..Created::default()
            },
        );
        return victim;
    }
    if fl.read {
        let v = tree.victims.get_or_insert_with(&key, Victim::default);
        v.read = true;
        tree.index_names(path);
    }
    None
}

fn on_write(tree: &mut Tree, ev: &ReplayEvent, path: &str, now: u64) -> Option<String> {
    let c = view::io_data(ev).map(|d| ContentInfo::of(&d));
    let key = path.to_owned();
    if tree.created.peek(&key).is_some() {
        let copy = tree.is_copy_name(path);
        let cr = tree.created.get_mut(&key)?;
        cr.content.clone_from(&c);
        if let Some(vp) = cr.victim.clone() {
            if let Some(v) = tree.victims.get_mut(&vp) {
                v.output = Some((key, c));
            }
            return Some(vp);
        }
        if !cr.counted_unpaired && !copy && c.as_ref().is_some_and(|c| c.is_opaque() && c.len >= 16)
        {
            cr.counted_unpaired = true;
            tree.opaque_unpaired.push_back(now);
        }
        return None;
    }
    let v = tree.victims.get_mut(&key)?;
    if v.read {
        v.overwritten = Some(c);
        return Some(key);
    }
    None
}

fn on_rename(tree: &mut Tree, old: &str, new: String) -> Option<String> {
    let old_k = old.to_owned();
    if let Some(cr) = tree.created.remove(&old_k) {
        // A file the tree made (temp file) put in place: if it replaces a file the tree read,
        // that file is overwritten with the temp file's bytes.
        if let Some(v) = tree.victims.get_mut(&new).filter(|v| v.read) {
            v.overwritten = Some(cr.content.clone());
            tree.created.insert(new.clone(), cr);
            return Some(new);
        }
        tree.created.insert(new, cr);
        return None;
    }
    let mut v = tree.victims.remove(&old_k).unwrap_or_default();
    v.renamed_to = Some(new.clone());
    v.renamed_from = Some(old_k);
    tree.victims.insert(new.clone(), v);
    Some(new)
}

fn on_unlink(tree: &mut Tree, path: &str, now: u64) -> Option<String> {
    let k = path.to_owned();
    if tree.created.remove(&k).is_some() {
        return None;
    }
    let v = tree.victims.get_mut(&k)?;
    if !v.read || v.deleted {
        return None;
    }
    v.deleted = true;
    if v.output.is_none() {
        tree.deletes_unpaired.push_back(now);
    }
    Some(k)
}

/// How encryption-like `after` is, given what the file was.
fn suspicion(after: Option<&ContentInfo>, v: &Victim, path: &str, cfg: &RansomwareConfig) -> f64 {
    let Some(a) = after else { return 0.5 };
    if a.len == 0 {
        return 0.5;
    }
    if let Some(f) = a.format {
        return if f.category == Category::Encrypted {
            1.0
        } else {
            0.0
        };
    }
    if a.text {
        return 0.0;
    }
    let orig = v.renamed_from.as_deref().unwrap_or(path);
    match &v.before {
        Some(b) if b.format.is_some() || b.text => 1.0,
        Some(_) => 0.25, // opaque before, opaque after: no type change to see
        None if content::expected_type(orig).is_some() => 1.0,
        None if a.entropy_norm >= cfg.entropy_high => 1.0,
        // Unknown before, opaque but low-entropy after: a binary format we do not know
        // (tool caches, indexes), not ciphertext; counts a little.
        None => 0.2,
    }
}

fn victim_score(v: &Victim, path: &str, cfg: &RansomwareConfig) -> f64 {
    let mut s: f64 = 0.0;
    if v.read {
        if let Some(o) = &v.overwritten {
            s = s.max(suspicion(o.as_ref(), v, path, cfg));
        }
    }
    if let Some((_, c)) = &v.output {
        let x = suspicion(c.as_ref(), v, path, cfg);
        s = s.max(if v.deleted || v.renamed_to.is_some() {
            x
        } else {
            x / 2.0
        });
    }
    // A rename alone counts only for a file the tree read (a tool renaming files it never
    // opened, e.g. putting its own temp files in place, is not encrypting them).
    if let (true, Some(new), Some(old)) = (v.read, &v.renamed_to, &v.renamed_from) {
        let (ne, oe) = (view::ext(new), view::ext(old));
        if ne != oe {
            s = s.max(if cfg.ransom_extensions.contains(&ne) {
                0.3
            } else {
                0.1
            });
        }
    }
    s.min(1.0)
}

fn rescore(tree: &mut Tree, vpath: &str, now: u64, cfg: &RansomwareConfig) {
    let Some(v) = tree.victims.get_mut(&vpath.to_owned()) else {
        return;
    };
    let new = victim_score(v, vpath, cfg);
    let delta = new - v.score;
    if delta.abs() < 1e-9 {
        return;
    }
    v.score = new;
    let after = v
        .overwritten
        .clone()
        .flatten()
        .or_else(|| v.output.as_ref().and_then(|o| o.1.clone()));
    let example = {
        let orig = v.renamed_from.as_deref().unwrap_or(vpath);
        let target = v
            .output
            .as_ref()
            .map(|o| o.0.as_str())
            .or(v.renamed_to.as_deref())
            .unwrap_or(vpath);
        let mut e = format!("{orig} -> {target}");
        if let Some(a) = &after {
            let before = v.before.as_ref().map_or("?", |b| b.label());
            e.push_str(&format!(" ({before}->{} H={:.2})", a.label(), a.entropy));
        }
        if v.deleted {
            e.push_str(" deleted");
        }
        e
    };
    let h = hash_path(vpath);
    tree.contrib.push_back((now, delta, h));
    tree.score += delta;
    if delta > 0.0 {
        let entry = (h, example, after.map(|a| a.entropy));
        if let Some(e) = tree.examples.iter_mut().find(|e| e.0 == h) {
            *e = entry;
        } else {
            if tree.examples.len() >= EXAMPLES {
                tree.examples.pop_front();
            }
            tree.examples.push_back(entry);
        }
    }
}
