//! The popular-name corpus, compiled in from `data/popular.txt`.
//!
//! Source: hugovk/top-pypi-packages (commit 5501c5c934df, `top-pypi-packages.min.json`,
//! ClickHouse download data, `last_update` 2026-04-01): the 15,000 most-downloaded PyPI
//! projects over one month. Refresh: download a newer `top-pypi-packages.min.json` and run
//! `scripts/refresh-popular.py FILE`, then rebuild (see `data/README.md`).

use super::table::Table;
use pyward_core::normalize_name;
use std::borrow::Cow;
use std::sync::OnceLock;

// The corpus (NAMES, NAME_ENDS, DOWNLOADS) and its key tables (EXACT, SKELETON, SQUASHED,
// WORDS, PY_CORES), indexed by build.rs.
include!(concat!(env!("OUT_DIR"), "/popular_index.rs"));

/// Where the embedded corpus came from, for `pyward intel status` and reports.
pub const CORPUS_SOURCE: &str =
    "hugovk/top-pypi-packages commit 5501c5c934df, ClickHouse downloads, last_update 2026-04-01";

/// A popular project: its normalised name, 1-based download rank and monthly downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopularName {
    /// Borrowed from the compiled-in corpus, owned for another.
    pub name: Cow<'static, str>,
    pub rank: u32,
    pub downloads: u64,
}

/// Parse corpus text: `#` comments, then `name<TAB>downloads` (or just `name`) per line, most
/// popular first. Names are normalised; a repeated name keeps its first (best) rank. Lines
/// that are not names are skipped.
pub fn parse_corpus(text: &str) -> Vec<PopularName> {
    let lines = text.lines().count();
    let mut seen: std::collections::HashSet<String, super::fold::FastBuild> =
        std::collections::HashSet::with_capacity_and_hasher(lines, Default::default());
    let mut out = Vec::with_capacity(lines);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split('\t');
        let name = normalize_name(parts.next().unwrap_or(""));
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            continue;
        }
        let downloads = parts
            .next()
            .and_then(|d| d.trim().parse().ok())
            .unwrap_or(0);
        if seen.insert(name.clone()) {
            let rank = out.len() as u32 + 1;
            out.push(PopularName {
                name: Cow::Owned(name),
                rank,
                downloads,
            });
        }
    }
    out
}

/// The embedded corpus (compiled in from `data/popular.txt` by build.rs; the names are
/// borrowed from the binary).
pub fn corpus() -> &'static [PopularName] {
    static CORPUS: OnceLock<Vec<PopularName>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut start = 0;
        NAME_ENDS
            .iter()
            .zip(DOWNLOADS)
            .zip(1..)
            .map(|((&end, downloads), rank)| {
                let name = NAMES.get(start..end as usize).unwrap_or("");
                start = end as usize;
                PopularName {
                    name: Cow::Borrowed(name),
                    rank,
                    downloads,
                }
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POPULAR_TXT: &str = include_str!("../../data/popular.txt");

    #[test]
    fn compiled_in_corpus_is_what_parse_corpus_reads() {
        assert_eq!(corpus(), parse_corpus(POPULAR_TXT).as_slice());
    }

    #[test]
    fn embedded_corpus_is_the_april_2026_top_15k() {
        let c = corpus();
        assert_eq!(c.len(), 15_000);
        let rank = |n: &str| c.iter().find(|p| p.name == n).map(|p| p.rank);
        assert_eq!(rank("boto3"), Some(1));
        assert_eq!(rank("python-dateutil"), Some(12));
        assert_eq!(rank("jellyfish"), Some(1073));
        assert!(c.windows(2).all(|w| w[0].downloads >= w[1].downloads));
    }

    #[test]
    fn parse_skips_junk_and_duplicates() {
        let c = parse_corpus("# c\nFoo_Bar\t10\nfoo-bar\t5\n\nnot a name\t3\nbaz\n\u{0}\n");
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0],
            PopularName {
                name: "foo-bar".into(),
                rank: 1,
                downloads: 10
            }
        );
        assert_eq!(c[1].name, "baz");
        assert_eq!(c[1].rank, 2);
    }
}
