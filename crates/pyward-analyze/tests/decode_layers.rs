//! bz2 and lzma layers of the static de-obfuscator, on payloads compressed by CPython's own
//! `bz2` and `lzma` modules (fixtures/*.b64, made with `python3 -c 'import bz2, lzma, base64…'`
//! from fixtures/stage.py, CPython 3.11). The stage is inert: a documentation address, never run.

use pyward_analyze::decode::{self, Budget};
use pyward_analyze::{analyze_file, FileAnalysis, Options};
use pyward_core::Finding;
use std::collections::BTreeSet;

const STAGE: &str = include_str!("fixtures/stage.py");
const STAGE_BZ2: &str = include_str!("fixtures/stage.py.bz2.b64");
const STAGE_XZ: &str = include_str!("fixtures/stage.py.xz.b64");
const STAGE_ALONE: &str = include_str!("fixtures/stage.py.lzma-alone.b64");
/// 64 MiB of `A`, compressed by Python (84 bytes of bz2, 9.9 kB of xz).
const BOMB_BZ2: &str = include_str!("fixtures/bomb-64MiB.bz2.b64");
const BOMB_XZ: &str = include_str!("fixtures/bomb-64MiB.xz.b64");

fn unb64(s: &str) -> Vec<u8> {
    decode::base64(s.trim().as_bytes(), &mut Budget::new(1 << 20, 10)).expect("fixture base64")
}

fn ids(fa: &FileAnalysis) -> BTreeSet<&'static str> {
    fa.rules.iter().map(|r| r.id()).collect()
}

fn evidence<'a>(f: &'a Finding, key: &str) -> Vec<&'a str> {
    f.evidence
        .iter()
        .filter(|e| e.key == key)
        .map(|e| e.value.as_str())
        .collect()
}

#[test]
fn decoders_read_python_bz2_xz_and_alone_output() {
    for (name, blob, kind) in [
        ("bz2", STAGE_BZ2, "bz2"),
        ("xz", STAGE_XZ, "lzma"),
        ("alone", STAGE_ALONE, "lzma"),
    ] {
        let raw = unb64(blob);
        assert_eq!(decode::sniff_compression(&raw), Some(kind), "{name}");
        let mut b = Budget::new(1 << 20, 100);
        let out = decode::decompress(kind, &raw, &mut b).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(out, STAGE.as_bytes(), "{name}");
        assert!(!b.truncated, "{name}");
    }
    // Not compressed at all, or the other format: no output, no panic.
    let mut b = Budget::new(1 << 20, 100);
    assert_eq!(decode::bunzip2(b"BZh9garbage-garbage", &mut b), None);
    assert_eq!(decode::unlzma(STAGE.as_bytes(), &mut b), None);
    assert_eq!(decode::bunzip2(&unb64(STAGE_XZ), &mut b), None);
}

#[test]
fn truncated_streams_keep_what_decoded() {
    let raw = unb64(STAGE_BZ2);
    let mut b = Budget::new(1 << 20, 100);
    // A bzip2 stream cut in half decodes nothing whole (one block), and must not panic.
    let _ = decode::bunzip2(raw.get(..raw.len() / 2).unwrap(), &mut b);
    let raw = unb64(STAGE_XZ);
    let _ = decode::unlzma(raw.get(..raw.len() - 20).unwrap(), &mut b);
}

#[test]
fn bz2_and_xz_bombs_are_capped() {
    for (name, blob, kind) in [("bz2", BOMB_BZ2, "bz2"), ("xz", BOMB_XZ, "lzma")] {
        let mut b = Budget::new(256 * 1024, 100);
        let out =
            decode::decompress(kind, &unb64(blob), &mut b).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(out.len(), 256 * 1024, "{name}");
        assert!(out.iter().all(|&c| c == b'A'), "{name}");
        assert!(b.truncated, "{name}");
    }
    // An .lzma header asking for a 4 GiB dictionary is refused, not allocated.
    let mut huge = vec![0x5d, 0xff, 0xff, 0xff, 0xff];
    huge.extend_from_slice(&[0xff; 8]);
    huge.extend_from_slice(&[0; 32]);
    let mut b = Budget::new(1 << 20, 100);
    assert_eq!(decode::unlzma(&huge, &mut b), None);
    assert!(b.truncated);
}

#[test]
fn exec_of_bz2_and_lzma_layers_shows_the_second_stage() {
    for (name, blob, call, layer) in [
        ("bz2", STAGE_BZ2, "bz2.decompress", "base64 → bz2"),
        ("xz", STAGE_XZ, "lzma.decompress", "base64 → lzma"),
        ("alone", STAGE_ALONE, "L.decompress", "base64 → lzma"),
    ] {
        let src = format!(
            "import base64, bz2, lzma\nimport lzma as L\n\ndef version():\n    return '1.0'\n\n\
             exec({call}(base64.b64decode('{}')))\n",
            blob.trim()
        );
        let fa = analyze_file("pkg/__init__.py", src.as_bytes(), &Options::default());
        let got = ids(&fa);
        for want in ["obfuscated-exec", "exfiltration", "raw-ip-url"] {
            assert!(got.contains(want), "{name}: missing {want} in {got:?}");
        }
        let obf = fa
            .findings
            .iter()
            .find(|f| f.rule_id == "heuristics.obfuscated-exec")
            .unwrap();
        assert_eq!(obf.line, Some(7), "{name}");
        assert!(
            evidence(obf, "decoded_layer")
                .iter()
                .any(|l| l.contains(layer)),
            "{name}: {:?}",
            obf.evidence
        );
        assert!(
            evidence(obf, "decoded.url")
                .iter()
                .any(|u| u.contains("192.0.2.71:4444")),
            "{name}: {:?}",
            obf.evidence
        );
        assert!(
            evidence(obf, "decoded.path")
                .iter()
                .any(|p| p.contains("~/.gnupg")),
            "{name}: {:?}",
            obf.evidence
        );
    }
}

#[test]
fn codecs_bz2_and_literal_blobs_are_decoded() {
    // `codecs.decode(..., 'bz2_codec')` and a bare base64 literal whose content is bz2/xz.
    let src = format!(
        "import codecs, base64\nexec(codecs.decode(base64.b64decode('{}'), 'bz2_codec'))\n",
        STAGE_BZ2.trim()
    );
    let fa = analyze_file("a.py", src.as_bytes(), &Options::default());
    assert!(ids(&fa).contains("exfiltration"), "{:?}", ids(&fa));
    for blob in [STAGE_BZ2, STAGE_XZ] {
        // A payload kept in a variable and run later (the pre-filter parses exec + a blob).
        let src = format!("PAYLOAD = '{}'\nexec(PAYLOAD)\n", blob.trim());
        let fa = analyze_file("b.py", src.as_bytes(), &Options::default());
        assert!(ids(&fa).contains("raw-ip-url"), "{:?}", ids(&fa));
    }
}

#[test]
fn bomb_in_an_exec_is_noted_and_still_flagged() {
    let src = format!(
        "import lzma, base64\nexec(lzma.decompress(base64.b64decode('{}')))\n",
        BOMB_XZ.trim()
    );
    let opts = Options {
        max_decoded_bytes: 1024 * 1024,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let fa = analyze_file("bomb.py", src.as_bytes(), &opts);
    assert!(t.elapsed().as_secs() < 30);
    assert!(
        fa.notes
            .iter()
            .any(|n| n.to_string().contains("decompression bomb")),
        "{:?}",
        fa.notes
    );
    assert!(ids(&fa).contains("obfuscated-exec"), "{:?}", ids(&fa));
}
