//! The inert corpus under tests/corpus: every malicious sample (each modelled on a documented
//! campaign, see its header) must score as suspicious, every benign one must not.

use pyward_analyze::{analyze_file, score, Options, Rule, SUSPICIOUS};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn py_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            py_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "py") {
            out.push(p);
        }
    }
}

/// (sample name, package score, rules) for each sample folder of a corpus.
fn scan(kind: &str) -> Vec<(String, f64, BTreeSet<Rule>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(kind);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&root).unwrap() {
        let dir = e.unwrap().path();
        let mut files = Vec::new();
        py_files(&dir, &mut files);
        let mut rules = BTreeSet::new();
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            rules.extend(analyze_file(&f.display().to_string(), &bytes, &Options::default()).rules);
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        out.push((name, score(&rules), rules));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_malicious_sample_is_flagged() {
    let results = scan("malicious");
    assert!(
        results.len() >= 25,
        "the corpus has {} samples",
        results.len()
    );
    let missed: Vec<_> = results.iter().filter(|(_, s, _)| *s < SUSPICIOUS).collect();
    assert!(missed.is_empty(), "missed: {missed:?}");
}

#[test]
fn benign_samples_are_not_flagged() {
    let results = scan("benign");
    assert!(results.len() >= 3);
    for (name, s, rules) in results {
        assert!(s < SUSPICIOUS, "{name}: {s} {rules:?}");
    }
}

#[test]
fn samples_are_inert_addresses_only() {
    // Every IPv4 literal in the corpus is a documentation or loopback address.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files = Vec::new();
    py_files(&root, &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for word in text.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
            if let Ok(ip) = word.parse::<std::net::Ipv4Addr>() {
                let o = ip.octets();
                let doc = matches!(
                    o,
                    [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] | [127, ..]
                );
                assert!(doc, "{}: {ip} is not a documentation address", f.display());
            }
        }
    }
}
