//! Typosquat and look-alike name detection against the popular-name corpus.
//!
//! # What is flagged
//!
//! A name that is not itself popular (not in the corpus) but imitates a popular one:
//!
//! | transformation | how it is found | confidence |
//! |---|---|---|
//! | `CaseConfusable` | the spelling as found has a capital letter that reads as another letter (`jeIlyfish`: `I` for `l`) | High |
//! | `Confusable` | same visual skeleton: `I/l/1/\|`, `0/o`, `rn/m`, `vv/w`, `cl/d`, Unicode TR39 confusables | High (target in top 5,000), else Medium |
//! | `PythonPrefixSuffix` | a `py`/`python` word (with or without version digits) added, removed or swapped: `python3-dateutil` → `python-dateutil` | High (top 1,000, separate word or version digits), else Medium |
//! | `Insertion`, `Deletion`, `Substitution`, `Transposition` | one edit (Damerau) on normalised names; targets of ≥ 5 characters | High (top 5,000 and target ≥ 6 characters), Medium (top 5,000, 5 characters), else Low |
//! | `DoubleEdit` | two edits; targets of ≥ 10 characters in the top 1,000 | Medium |
//! | `SeparatorChange` | same letters, different separators: `scikitlearn` | High (top 1,000), else Medium |
//! | `ReorderedWords` | same words, other order: `dateutil-python` | High (top 1,000), else Medium |
//! | `Combosquat` | a popular name (≥ 4 characters, top 5,000) plus a filler word: `requests-secure` | Medium (top 1,000), else Low |
//!
//! Short targets (≤ 4 characters: `six`, `idna`, `rsa`) are matched only through look-alike
//! characters and `py`/`python` words, never by edit distance: one edit from a three-letter
//! name is usually another legitimate name. A popular name is never flagged unless
//! [`CheckOptions::include_popular`] is set, and then only as an imitation of a *more*
//! popular name. Among several matches the highest score wins, then the most popular target.
//!
//! # Speed
//!
//! Edit-distance candidates come from a deletion-neighbourhood (SymSpell) index: every
//! corpus name's 1-deletions (and 2-deletions for the two-edit targets) are hashed into a map,
//! so a query costs one probe per deletion of the query plus a bounded distance check of the
//! few candidates, never a scan of the corpus.

mod corpus;
mod deletes;
mod fold;
mod keys;
mod table;

pub use corpus::{corpus, parse_corpus, PopularName, CORPUS_SOURCE};
pub use fold::skeleton;

use deletes::DeleteIndex;
use fold::{osa_distance, DeleteHasher};
use keys::{is_plain, python_cores, sorted_words, squash};
use pyward_core::normalize_name;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use table::Table;

/// Targets ranked at or above this are "top" for High confidence of edits and confusables.
pub const TOP_N: u32 = 5_000;
/// Targets ranked at or above this are "very popular" (High for word-level changes).
pub const VERY_POPULAR_N: u32 = 1_000;
/// Shortest target matched by edit distance.
pub const MIN_EDIT_TARGET_LEN: usize = 5;
/// Shortest target for which one edit can give High confidence.
pub const MIN_HIGH_EDIT_TARGET_LEN: usize = 6;
/// Shortest target matched at edit distance 2.
pub const MIN_DOUBLE_EDIT_TARGET_LEN: usize = 10;
/// Longest name examined by edit distance (longer names are not typos of corpus names).
const MAX_EDIT_LEN: usize = 100;

/// Words that turn a popular name into a combosquat (`requests-secure`, `dev-boto3`).
pub const FILLER_WORDS: &[&str] = &[
    "dev",
    "devel",
    "develop",
    "utils",
    "util",
    "utility",
    "lib",
    "libs",
    "library",
    "sdk",
    "api",
    "client",
    "secure",
    "security",
    "safe",
    "update",
    "updated",
    "updater",
    "new",
    "latest",
    "official",
    "core",
    "tools",
    "tool",
    "toolkit",
    "helper",
    "helpers",
    "plus",
    "pro",
    "fix",
    "fixed",
    "patch",
    "patched",
    "lite",
    "fast",
    "free",
    "beta",
    "alpha",
    "nightly",
    "installer",
    "setup",
    "package",
    "pkg",
    "module",
    "ext",
    "extra",
    "extras",
    "v2",
    "v3",
    "next",
    "cli",
];

/// What changed between the popular name and the name found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Transformation {
    /// One character added (`requestss`).
    Insertion,
    /// One character removed (`requets`).
    Deletion,
    /// One character replaced (`djanga`).
    Substitution,
    /// Two adjacent characters swapped (`reqeusts`).
    Transposition,
    /// Two edits on a long name.
    DoubleEdit,
    /// Look-alike characters: `from` (as found) reads as `to` (in the popular name).
    Confusable { from: String, to: String },
    /// The spelling as found differs only by a capital letter that reads as another
    /// lowercase letter (`jeIlyfish`: `I` for `l`).
    CaseConfusable { from: String, to: String },
    /// A `py`/`python` word added, removed or swapped, with or without version digits.
    PythonPrefixSuffix,
    /// Same letters, other separators (`scikitlearn`).
    SeparatorChange,
    /// Same words in another order (`dateutil-python`).
    ReorderedWords,
    /// The popular name plus a filler word.
    Combosquat { filler: String },
}

impl Transformation {
    /// Short stable label for reports and policies.
    pub fn label(&self) -> &'static str {
        match self {
            Transformation::Insertion => "insertion",
            Transformation::Deletion => "deletion",
            Transformation::Substitution => "substitution",
            Transformation::Transposition => "transposition",
            Transformation::DoubleEdit => "double-edit",
            Transformation::Confusable { .. } => "confusable",
            Transformation::CaseConfusable { .. } => "case-confusable",
            Transformation::PythonPrefixSuffix => "python-prefix-suffix",
            Transformation::SeparatorChange => "separator-change",
            Transformation::ReorderedWords => "reordered-words",
            Transformation::Combosquat { .. } => "combosquat",
        }
    }

    fn base_score(&self) -> f32 {
        match self {
            Transformation::CaseConfusable { .. } => 0.97,
            Transformation::Confusable { .. } => 0.92,
            Transformation::PythonPrefixSuffix => 0.88,
            Transformation::Transposition => 0.82,
            Transformation::Substitution | Transformation::Insertion | Transformation::Deletion => {
                0.78
            }
            Transformation::SeparatorChange => 0.84,
            Transformation::ReorderedWords => 0.7,
            Transformation::DoubleEdit => 0.5,
            Transformation::Combosquat { .. } => 0.45,
        }
    }
}

impl fmt::Display for Transformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transformation::Confusable { from, to } => {
                write!(f, "confusable ({from} for {to})")
            }
            Transformation::CaseConfusable { from, to } => {
                write!(f, "case-confusable ({from} for {to})")
            }
            Transformation::Combosquat { filler } => write!(f, "combosquat (+{filler})"),
            other => f.write_str(other.label()),
        }
    }
}

/// How sure the checker is that a name imitates a popular one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

impl fmt::Display for Confidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name found to imitate a popular one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SquatMatch {
    /// The name exactly as found.
    pub name: String,
    /// The popular (normalised) name it imitates.
    pub imitates: String,
    /// 1-based download rank of the imitated name.
    pub imitates_rank: u32,
    pub imitates_downloads: u64,
    pub transformation: Transformation,
    pub confidence: Confidence,
    /// 0..1: transformation strength × popularity of the target.
    pub score: f32,
    pub explanation: String,
}

/// Options of a check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Also check names that are themselves popular (against more popular names).
    pub include_popular: bool,
}

/// The corpus and its indexes; built once, shared.
#[derive(Debug)]
struct Index {
    /// The embedded corpus and its tables are statics written by `build.rs`; another corpus
    /// is owned and indexed at run time.
    corpus: Cow<'static, [PopularName]>,
    exact: Table,
    skeleton: Table,
    squashed: Table,
    words: Table,
    /// Core of each popular name with a `py`/`python` word (`python-dateutil` → `dateutil`).
    py_cores: Table,
    /// The deletion indexes, built on the first edit query past [`LINEAR_EDIT_QUERIES`]:
    /// until then a length-filtered pass over the corpus finds the same candidates, so a
    /// one-package scan does not pay the build (≈ 2/3 of its start-up).
    deletes: OnceLock<Deletes>,
    edit_queries: AtomicU32,
}

/// Edit queries answered by a pass over the corpus before the deletion indexes are built
/// (a pass costs about 1/150 of the build).
const LINEAR_EDIT_QUERIES: u32 = 48;

#[derive(Debug)]
struct Deletes {
    /// 0- and 1-deletion variants of every name of ≥ 5 characters.
    near: DeleteIndex,
    /// 0-, 1- and 2-deletion variants of the two-edit targets (long, very popular names):
    /// small, so the many 2-deletion probes of a query stay in cache.
    far: DeleteIndex,
}

impl Deletes {
    fn build(corpus: &[PopularName]) -> Deletes {
        let mut near: Vec<(u64, u32)> = Vec::new();
        let mut far: Vec<(u64, u32)> = Vec::new();
        for (i, p) in corpus.iter().enumerate() {
            let i = i as u32;
            if !is_edit_target(p) {
                continue;
            }
            let b = p.name.as_bytes();
            let h = DeleteHasher::new(b);
            near.push((h.whole(), i));
            for x in 0..b.len() {
                near.push((h.delete1(x), i));
            }
            if is_double_target(p) {
                far.push((h.whole(), i));
                for x in 0..b.len() {
                    far.push((h.delete1(x), i));
                    for y in x + 1..b.len() {
                        far.push((h.delete2(x, y), i));
                    }
                }
            }
        }
        Deletes {
            near: DeleteIndex::build(near, 22),
            far: DeleteIndex::build(far, 20),
        }
    }
}

/// Names matched at one edit: 5 to 100 characters.
fn is_edit_target(p: &PopularName) -> bool {
    (MIN_EDIT_TARGET_LEN..=MAX_EDIT_LEN).contains(&p.name.len())
}

impl Index {
    /// The embedded corpus, indexed at build time: nothing to do at start-up.
    fn embedded() -> Index {
        Index::with_tables(
            Cow::Borrowed(corpus()),
            [
                corpus::EXACT.clone(),
                corpus::SKELETON.clone(),
                corpus::SQUASHED.clone(),
                corpus::WORDS.clone(),
                corpus::PY_CORES.clone(),
            ],
        )
    }

    /// Another corpus, indexed now with the keys `build.rs` uses for the embedded one.
    fn build(corpus: Vec<PopularName>) -> Index {
        let maps = keys::index_corpus(corpus.iter().map(|p| p.name.as_ref()), fold::skeleton);
        Index::with_tables(Cow::Owned(corpus), maps.map(Table::from_map))
    }

    fn with_tables(corpus: Cow<'static, [PopularName]>, tables: [Table; 5]) -> Index {
        let [exact, skeleton, squashed, words, py_cores] = tables;
        Index {
            corpus,
            exact,
            skeleton,
            squashed,
            words,
            py_cores,
            deletes: OnceLock::new(),
            edit_queries: AtomicU32::new(0),
        }
    }

    fn deletes(&self) -> &Deletes {
        self.deletes.get_or_init(|| Deletes::build(&self.corpus))
    }

    fn get(&self, i: u32) -> Option<&PopularName> {
        self.corpus.get(i as usize)
    }
}

/// Targets matched at edit distance 2: long (≥ 10 characters) and very popular (top 1,000).
fn is_double_target(p: &PopularName) -> bool {
    p.name.len() >= MIN_DOUBLE_EDIT_TARGET_LEN && p.rank <= VERY_POPULAR_N
}

/// The typosquat / look-alike checker. Build once (`NameChecker::builtin`), check many names.
#[derive(Debug, Clone)]
pub struct NameChecker {
    index: Arc<Index>,
    options: CheckOptions,
}

impl NameChecker {
    /// A checker over the embedded corpus (indexed once per process).
    pub fn builtin(include_popular: bool) -> NameChecker {
        static INDEX: OnceLock<Arc<Index>> = OnceLock::new();
        let index = INDEX.get_or_init(|| Arc::new(Index::embedded())).clone();
        NameChecker {
            index,
            options: CheckOptions { include_popular },
        }
    }

    /// A checker over another corpus (most popular first).
    pub fn new(corpus: Vec<PopularName>, options: CheckOptions) -> NameChecker {
        NameChecker {
            index: Arc::new(Index::build(corpus)),
            options,
        }
    }

    pub fn options(&self) -> CheckOptions {
        self.options
    }

    pub fn with_options(mut self, options: CheckOptions) -> NameChecker {
        self.options = options;
        self
    }

    /// Number of popular names.
    pub fn corpus_len(&self) -> usize {
        self.index.corpus.len()
    }

    /// The corpus entry for `name` (any spelling), if it is popular.
    pub fn popular(&self, name: &str) -> Option<&PopularName> {
        let n = normalize_name(name);
        self.index.exact.first(&n).and_then(|i| self.index.get(i))
    }

    /// The best match for `name_as_found`, if it imitates a popular name.
    pub fn check(&self, name_as_found: &str) -> Option<SquatMatch> {
        self.check_all(name_as_found).into_iter().next()
    }

    /// Every popular name `name_as_found` imitates, best first (highest score, then most
    /// popular target); at most one entry per target.
    pub fn check_all(&self, name_as_found: &str) -> Vec<SquatMatch> {
        let original = name_as_found.trim();
        if original.is_empty() || original.len() > 4 * MAX_EDIT_LEN {
            return Vec::new();
        }
        let n = normalize_name(original);
        let own = self.index.exact.first(&n);
        if own.is_some() && !self.options.include_popular {
            return Vec::new();
        }
        // With include_popular, a popular name is checked only against more popular ones.
        let own_rank = own
            .and_then(|i| self.index.get(i))
            .map(|p| p.rank)
            .unwrap_or(u32::MAX);
        // (target, transformation, "likely": a typing slip / version-digit py word).
        let mut found: Vec<(u32, Transformation, bool)> = Vec::new();
        let mut add = |i: u32, t: Transformation, likely: bool| {
            let ok = self
                .index
                .get(i)
                .is_some_and(|p| p.rank < own_rank && p.name != n);
            if ok {
                found.push((i, t, likely));
            }
        };
        let multi_word = n.contains('-');

        // Separators only.
        let sq: Cow<'_, str> = if multi_word {
            Cow::Owned(squash(&n))
        } else {
            Cow::Borrowed(&n)
        };
        for &i in self.index.squashed.get(sq.as_ref()) {
            add(i, Transformation::SeparatorChange, false);
        }
        // Look-alike characters, on the spelling as found. Most names have no look-alike
        // characters at all, and then their skeleton is the squashed name.
        let plain = is_plain(original);
        let sk: Cow<'_, str> = if plain {
            Cow::Borrowed(sq.as_ref())
        } else {
            Cow::Owned(fold::skeleton(original))
        };
        let targets = self.index.skeleton.get(sk.as_ref());
        if !targets.is_empty() {
            let sk_lower = fold::skeleton(&n);
            for &i in targets {
                let Some(p) = self.index.get(i) else { continue };
                if squash(&p.name) == sq.as_ref() {
                    continue; // a separator change, reported above
                }
                let (from, to) = differing_part(original, &p.name);
                // The lowercase form does not look like the target: capitals make the look-alike.
                if sk_lower != sk.as_ref() {
                    add(i, Transformation::CaseConfusable { from, to }, true);
                } else {
                    add(i, Transformation::Confusable { from, to }, true);
                }
            }
        }
        if multi_word {
            if let Some(w) = sorted_words(&n) {
                for &i in self.index.words.get(&w) {
                    add(i, Transformation::ReorderedWords, false);
                }
            }
            for (i, filler) in self.combos(&n) {
                add(i, Transformation::Combosquat { filler }, false);
            }
        }
        if n.contains("py") || n.len() >= 4 {
            for (i, strong) in self.python_variants(&n) {
                add(i, Transformation::PythonPrefixSuffix, strong);
            }
        }
        if n.is_ascii() && n.len() <= MAX_EDIT_LEN {
            for (i, t, likely) in self.edits(&n) {
                add(i, t, likely);
            }
        }

        let mut out: Vec<SquatMatch> = Vec::new();
        for (i, t, likely) in found {
            let Some(p) = self.index.get(i) else { continue };
            let m = self.score(original, p, t, likely);
            match out.iter_mut().find(|o| o.imitates == m.imitates) {
                Some(o) if o.score >= m.score => {}
                Some(o) => *o = m,
                None => out.push(m),
            }
        }
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.imitates_rank.cmp(&b.imitates_rank))
        });
        out
    }

    /// Popular names reachable by adding, removing or swapping a `py`/`python` word:
    /// `(index, strong)`, strong when the query's `py`/`python` word carries version digits
    /// (`python3-dateutil`, `py3-requests`), which is how squats dress up; a plain
    /// `python-X` / `X-py` / `pyX` is how many legitimate bindings are named (weak).
    fn python_variants(&self, n: &str) -> Vec<(u32, bool)> {
        let mut out = Vec::new();
        let cores = python_cores(n);
        if cores.is_empty() {
            // No py word: does a popular `python-X` / `X-py` / `pyX` have this core?
            if n.len() >= 4 {
                for &i in self.index.py_cores.get(n) {
                    out.push((i, false));
                }
            }
            return out;
        }
        for (core, strong) in cores {
            if core.len() < 3 {
                continue;
            }
            if core.len() >= 4 {
                if let Some(i) = self.index.exact.first(&core) {
                    out.push((i, strong));
                }
            }
            for &i in self.index.py_cores.get(&core) {
                out.push((i, strong));
            }
        }
        out
    }

    /// `popular-filler` / `filler-popular`.
    fn combos(&self, n: &str) -> Vec<(u32, String)> {
        let mut out = Vec::new();
        let words: Vec<&str> = n.split('-').collect();
        if words.len() < 2 {
            return out;
        }
        let mut try_core = |core: String, filler: &str| {
            if core.len() < 4 {
                return;
            }
            if let Some(i) = self.index.exact.first(&core) {
                if self.index.get(i).is_some_and(|p| p.rank <= TOP_N) {
                    out.push((i, filler.to_string()));
                }
            }
        };
        if let (Some(last), Some(rest)) = (words.last(), words.get(..words.len() - 1)) {
            if FILLER_WORDS.contains(last) {
                try_core(rest.join("-"), last);
            }
        }
        if let (Some(first), Some(rest)) = (words.first(), words.get(1..)) {
            if FILLER_WORDS.contains(first) {
                try_core(rest.join("-"), first);
            }
        }
        out
    }

    /// Corpus names within one edit (two for long top names) of `n`, via the deletion indexes.
    fn edits(&self, n: &str) -> Vec<(u32, Transformation, bool)> {
        let q = self.index.edit_queries.fetch_add(1, Ordering::Relaxed);
        let candidates = if q < LINEAR_EDIT_QUERIES && self.index.deletes.get().is_none() {
            self.edit_candidates_linear(n.as_bytes())
        } else {
            self.edit_candidates_indexed(n.as_bytes())
        };
        self.verify_edits(n.as_bytes(), candidates)
    }

    /// Every edit target whose length is within its edit budget of the query's: a superset of
    /// what the deletion indexes return, verified alike.
    fn edit_candidates_linear(&self, b: &[u8]) -> Vec<u32> {
        let mut out = Vec::new();
        for (i, p) in self.index.corpus.iter().enumerate() {
            if !is_edit_target(p) {
                continue;
            }
            let max = if is_double_target(p) { 2 } else { 1 };
            if p.name.len().abs_diff(b.len()) <= max {
                out.push(i as u32);
            }
        }
        out
    }

    fn edit_candidates_indexed(&self, b: &[u8]) -> Vec<u32> {
        let d = self.index.deletes();
        let mut candidates: Vec<u32> = Vec::new();
        let mut add = |list: &[u32]| {
            for &i in list {
                if !candidates.contains(&i) {
                    candidates.push(i);
                }
            }
        };
        let h = DeleteHasher::new(b);
        let double = b.len() + 2 >= MIN_DOUBLE_EDIT_TARGET_LEN;
        for key in std::iter::once(h.whole()).chain((0..b.len()).map(|x| h.delete1(x))) {
            add(d.near.get(key));
            if double {
                add(d.far.get(key));
            }
        }
        if double {
            for x in 0..b.len() {
                for y in x + 1..b.len() {
                    add(d.far.get(h.delete2(x, y)));
                }
            }
        }
        candidates
    }

    /// The candidates truly within one edit (two for long top names), with the edit's kind.
    fn verify_edits(&self, b: &[u8], candidates: Vec<u32>) -> Vec<(u32, Transformation, bool)> {
        let mut out = Vec::new();
        for i in candidates {
            let Some(p) = self.index.get(i) else { continue };
            let t = p.name.as_bytes();
            let max = if is_double_target(p) { 2 } else { 1 };
            match osa_distance(b, t, max) {
                Some(1) => {
                    let (kind, likely) = edit_kind(b, t);
                    out.push((i, kind, likely))
                }
                Some(2) => out.push((i, Transformation::DoubleEdit, false)),
                _ => {}
            }
        }
        out
    }

    /// `likely`: for one edit, a typing slip rather than a sibling name ([`edit_kind`]); for
    /// a `py`/`python` word, one with version digits.
    fn score(
        &self,
        original: &str,
        p: &PopularName,
        t: Transformation,
        likely: bool,
    ) -> SquatMatch {
        let top = p.rank <= TOP_N;
        let very = p.rank <= VERY_POPULAR_N;
        let confidence = match &t {
            Transformation::CaseConfusable { .. } => Confidence::High,
            Transformation::Confusable { .. } => {
                if top {
                    Confidence::High
                } else {
                    Confidence::Medium
                }
            }
            Transformation::PythonPrefixSuffix => {
                if top && likely {
                    Confidence::High
                } else {
                    Confidence::Medium
                }
            }
            Transformation::Insertion
            | Transformation::Deletion
            | Transformation::Substitution
            | Transformation::Transposition => {
                if top && likely && p.name.len() >= MIN_HIGH_EDIT_TARGET_LEN {
                    Confidence::High
                } else if top {
                    Confidence::Medium
                } else {
                    Confidence::Low
                }
            }
            Transformation::DoubleEdit | Transformation::Combosquat { .. } => {
                if very {
                    Confidence::Medium
                } else {
                    Confidence::Low
                }
            }
            Transformation::ReorderedWords => Confidence::Medium,
            Transformation::SeparatorChange => {
                if very {
                    Confidence::High
                } else {
                    Confidence::Medium
                }
            }
        };
        let popularity = if very {
            1.0
        } else if top {
            0.9
        } else {
            0.75
        };
        let score = (t.base_score() * popularity * 100.0).round() / 100.0;
        let how = match &t {
            Transformation::CaseConfusable { from, to } => format!(
                "the spelling found has `{from}` where `{}` has `{to}`, which reads the same",
                p.name
            ),
            Transformation::Confusable { from, to } => {
                format!("`{from}` looks like `{to}`")
            }
            Transformation::PythonPrefixSuffix => {
                "a `py`/`python` word added, removed or changed".into()
            }
            Transformation::Insertion => "one character added".into(),
            Transformation::Deletion => "one character left out".into(),
            Transformation::Substitution => "one character replaced".into(),
            Transformation::Transposition => "two adjacent characters swapped".into(),
            Transformation::DoubleEdit => "two characters changed".into(),
            Transformation::SeparatorChange => "the same letters with other separators".into(),
            Transformation::ReorderedWords => "the same words in another order".into(),
            Transformation::Combosquat { filler } => {
                format!("the popular name plus the word `{filler}`")
            }
        };
        let explanation = format!(
            "`{original}` looks like `{}` (PyPI download rank {}): {how}",
            p.name, p.rank
        );
        SquatMatch {
            name: original.to_string(),
            imitates: p.name.to_string(),
            imitates_rank: p.rank,
            imitates_downloads: p.downloads,
            transformation: t,
            confidence,
            score,
            explanation,
        }
    }
}

/// Which single edit turns `target` into `found` (their OSA distance is 1), and whether it
/// looks like a typing slip rather than another name: a swap; a doubled or dropped repeated
/// letter; a letter added or dropped inside the name; a letter replaced by a keyboard
/// neighbour, a look-alike or another vowel. Edits on digits (`cu11`/`cu12`,
/// `elasticsearch7`) and at either end of the name (plurals, `c`/`a`/`py` prefixes) are how
/// legitimate related projects are named, so they are not "likely".
fn edit_kind(found: &[u8], target: &[u8]) -> (Transformation, bool) {
    let first_diff = found.iter().zip(target).take_while(|(a, b)| a == b).count();
    let (kind, likely) = edit_kind_at(found, target, first_diff);
    (kind, likely && !in_short_word(target, first_diff))
}

/// Whether position `k` of a multi-word name falls in a word of ≤ 3 characters
/// (`mypy-boto3-efs` / `mypy-boto3-ecs`): such words are codes, not typos.
fn in_short_word(name: &[u8], k: usize) -> bool {
    if !name.contains(&b'-') {
        return false;
    }
    let k = k.min(name.len());
    let start = name
        .get(..k)
        .and_then(|h| h.iter().rposition(|&b| b == b'-'))
        .map_or(0, |i| i + 1);
    let end = name
        .get(k..)
        .and_then(|t| t.iter().position(|&b| b == b'-'))
        .map_or(name.len(), |i| k + i);
    end.saturating_sub(start) <= 3
}

fn edit_kind_at(found: &[u8], target: &[u8], first_diff: usize) -> (Transformation, bool) {
    use std::cmp::Ordering::*;
    match found.len().cmp(&target.len()) {
        Greater => (Transformation::Insertion, indel_likely(found, first_diff)),
        Less => (Transformation::Deletion, indel_likely(target, first_diff)),
        Equal => {
            let a = found.get(first_diff).copied().unwrap_or(0);
            let b = target.get(first_diff).copied().unwrap_or(0);
            let diffs = found.iter().zip(target).filter(|(x, y)| x != y).count();
            if diffs == 2 {
                (
                    Transformation::Transposition,
                    !a.is_ascii_digit() && !b.is_ascii_digit(),
                )
            } else {
                (Transformation::Substitution, substitution_likely(a, b))
            }
        }
    }
}

/// `longer` has one extra byte at `k` (or, for a repeated letter, somewhere in its run).
fn indel_likely(longer: &[u8], k: usize) -> bool {
    let c = longer.get(k).copied().unwrap_or(0);
    if !c.is_ascii_alphabetic() {
        return false;
    }
    let repeated = (k > 0 && longer.get(k - 1) == Some(&c)) || longer.get(k + 1) == Some(&c);
    repeated || (k > 0 && k + 1 < longer.len())
}

fn substitution_likely(a: u8, b: u8) -> bool {
    const VOWELS: &[u8] = b"aeiouy";
    const VISUAL: &[(u8, u8)] = &[
        (b'i', b'l'),
        (b'u', b'v'),
        (b'm', b'n'),
        (b'c', b'e'),
        (b'g', b'q'),
        (b'b', b'd'),
    ];
    if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() {
        return false;
    }
    (VOWELS.contains(&a) && VOWELS.contains(&b))
        || VISUAL
            .iter()
            .any(|&(x, y)| (a, b) == (x, y) || (a, b) == (y, x))
        || qwerty_neighbours(a, b)
}

fn qwerty_neighbours(a: u8, b: u8) -> bool {
    const ROWS: [&[u8]; 3] = [b"qwertyuiop", b"asdfghjkl", b"zxcvbnm"];
    let pos = |c: u8| {
        ROWS.iter().enumerate().find_map(|(r, row)| {
            row.iter()
                .position(|&x| x == c)
                .map(|col| (r as i32, col as i32))
        })
    };
    match (pos(a), pos(b)) {
        // Rows are staggered: a key touches the one above at the same and next column.
        (Some((ra, ca)), Some((rb, cb))) => match ra - rb {
            0 => (ca - cb).abs() == 1,
            1 => cb == ca || cb == ca + 1,
            -1 => ca == cb || ca == cb + 1,
            _ => false,
        },
        _ => false,
    }
}

/// The differing middle of the name as found (separators normalised, case kept) and of the
/// popular name: `jeIlyfish` / `jellyfish` → (`I`, `l`).
fn differing_part(original: &str, popular: &str) -> (String, String) {
    let a: Vec<char> = original
        .chars()
        .map(|c| if matches!(c, '_' | '.') { '-' } else { c })
        .collect();
    let b: Vec<char> = popular.chars().collect();
    let same = |x: &char, y: &char| x.to_lowercase().eq(y.to_lowercase());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| same(x, y)).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| same(x, y))
        .count();
    let from: String = a
        .get(prefix..a.len() - suffix)
        .unwrap_or(&[])
        .iter()
        .collect();
    let to: String = b
        .get(prefix..b.len() - suffix)
        .unwrap_or(&[])
        .iter()
        .collect();
    (from, to)
}

#[cfg(test)]
mod plain_tests {
    use super::*;

    #[test]
    fn plain_names_have_their_squashed_form_as_skeleton() {
        for n in [
            "requests",
            "python-dateutil",
            "power-navigation",
            "c-l",
            "jellyfish",
            "r-n",
            "abc2",
            "boto3",
        ] {
            if is_plain(n) {
                assert_eq!(fold::skeleton(n), squash(n), "{n}");
            }
        }
        assert!(!is_plain("power-navigation"), "r-n squashes to rn");
        assert!(!is_plain("jeIlyfish"));
        assert!(!is_plain("py0"));
        assert!(is_plain("python-dateutil"));
        // Every popular name: the shortcut and the full skeleton agree.
        for p in corpus() {
            if is_plain(&p.name) {
                assert_eq!(fold::skeleton(&p.name), squash(&p.name), "{}", p.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing() {
        assert_eq!(
            differing_part("jeIlyfish", "jellyfish"),
            ("I".into(), "l".into())
        );
        assert_eq!(differing_part("djang0", "django"), ("0".into(), "o".into()));
        assert_eq!(
            differing_part("rnatplotlib", "matplotlib"),
            ("rn".into(), "m".into())
        );
    }

    /// The corpus pass (first queries of a process) and the deletion indexes find exactly the
    /// same edits, for one- and two-edit variants of popular names and for unrelated names.
    #[test]
    fn linear_and_indexed_edit_candidates_agree() {
        let c = NameChecker::builtin(false);
        let mut queries: Vec<String> = Vec::new();
        for (k, p) in corpus().iter().enumerate().step_by(37).take(400) {
            let n = p.name.as_ref();
            let b = n.as_bytes();
            let mid = b.len() / 2;
            queries.push(format!("{}{}", &n[..mid], &n[(mid + 1).min(n.len())..]));
            queries.push(format!("{}x{}", &n[..mid], &n[mid..]));
            if b.len() > 3 && n.is_ascii() {
                let mut v = b.to_vec();
                v.swap(1, 2);
                let last = v.len() - 1;
                v[last] = b'q';
                queries.push(String::from_utf8(v).unwrap());
            }
            queries.push(format!("zz{k}qq-tool"));
        }
        let mut total = 0;
        for q in &queries {
            let b = q.as_bytes();
            let mut lin = c.verify_edits(b, c.edit_candidates_linear(b));
            let mut idx = c.verify_edits(b, c.edit_candidates_indexed(b));
            lin.sort_by_key(|e| e.0);
            idx.sort_by_key(|e| e.0);
            assert_eq!(lin, idx, "query {q:?}");
            total += lin.len();
        }
        assert!(total > 300, "the variants do match popular names ({total})");
    }

    /// The tables build.rs compiles in are the ones the run-time indexing of the same corpus
    /// gives (same keys, same ids in the same order).
    #[test]
    fn compiled_in_index_is_the_run_time_index() {
        let built = Index::build(corpus().to_vec());
        let embedded = Index::embedded();
        let tables = |i: &Index| {
            [&i.exact, &i.skeleton, &i.squashed, &i.words, &i.py_cores].map(|t| t.clone())
        };
        for (name, (b, e)) in ["exact", "skeleton", "squashed", "words", "py_cores"]
            .iter()
            .zip(tables(&built).into_iter().zip(tables(&embedded)))
        {
            assert!(!b.entries().is_empty(), "{name}");
            assert!(b.entries() == e.entries(), "table {name} differs");
        }
        assert_eq!(built.corpus.as_ref(), embedded.corpus.as_ref());
    }

    #[test]
    fn py_words() {
        use keys::is_py_word;
        assert!(is_py_word("python3"));
        assert!(is_py_word("py"));
        assert!(!is_py_word("pyyaml"));
        assert!(!is_py_word("pytest"));
    }
}
