//! Builds the pre-filter's token DFA at compile time.
//!
//! Every `pyward` process that analyses a file needs the DFA of the pre-filter's ~170 tokens;
//! aho-corasick built it in about 1 ms, a sixteenth of a one-package scan. The tokens are fixed
//! at build time, so this script builds the same DFA with aho-corasick and writes it to
//! `$OUT_DIR/prefilter_dfa.rs` as flat statics (no pointers, so no relocations at load):
//! byte classes, a premultiplied transition table with the match states numbered first, and
//! the tokens each match state ends. A unit test checks the tables against aho-corasick.

#[path = "src/prefilter/tokens.rs"]
#[allow(dead_code)]
mod tokens;

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::{dfa, Anchored, MatchKind};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/prefilter/tokens.rs");
    // Standard semantics: every occurrence of every token, overlapping ones included.
    let ac = dfa::Builder::new()
        .match_kind(MatchKind::Standard)
        .prefilter(false)
        .build(tokens::PATTERNS.iter().map(|(p, _)| p))
        .expect("the pre-filter's tokens build a DFA");
    let start = ac
        .start_state(Anchored::No)
        .expect("an unanchored start state");

    // The reachable states, breadth first from the start.
    let mut states: Vec<StateID> = vec![start];
    let mut seen: HashMap<StateID, usize> = HashMap::from([(start, 0)]);
    let mut i = 0;
    while let Some(&sid) = states.get(i) {
        for b in 0..=255u8 {
            let next = ac.next_state(Anchored::No, sid, b);
            seen.entry(next).or_insert_with(|| {
                states.push(next);
                states.len() - 1
            });
        }
        i += 1;
    }
    // Match states first, so "is a match" is one comparison of the state id.
    let mut order: Vec<StateID> = states.iter().copied().filter(|s| ac.is_match(*s)).collect();
    let matches = order.len();
    order.extend(states.iter().copied().filter(|s| !ac.is_match(*s)));
    let index: HashMap<StateID, usize> = order.iter().enumerate().map(|(i, s)| (*s, i)).collect();

    // Byte classes: bytes with the same transitions from every state.
    let column = |b: u8| -> Vec<usize> {
        order
            .iter()
            .map(|s| index[&ac.next_state(Anchored::No, *s, b)])
            .collect()
    };
    let mut class_of: HashMap<Vec<usize>, u8> = HashMap::new();
    let mut classes = [0u8; 256];
    let mut representative: Vec<u8> = Vec::new();
    for b in 0..=255u8 {
        let next_class = u8::try_from(class_of.len()).expect("at most 256 byte classes");
        let c = *class_of.entry(column(b)).or_insert_with(|| {
            representative.push(b);
            next_class
        });
        classes[usize::from(b)] = c;
    }
    let stride = representative.len();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "/// Byte → class.\nstatic CLASSES: [u8; 256] = {classes:?};"
    );
    let _ = writeln!(
        out,
        "/// Transitions per state: one per class.\nconst STRIDE: u32 = {stride};"
    );
    let _ = writeln!(
        out,
        "/// The start state (ids are premultiplied by `STRIDE`)."
    );
    let _ = writeln!(out, "const START: u32 = {};", index[&start] * stride);
    let _ = writeln!(out, "/// States below this id end at least one token.");
    let _ = writeln!(out, "const MATCHES_BELOW: u32 = {};", matches * stride);
    let _ = writeln!(out, "/// Longest token, in bytes.");
    let max_len = tokens::PATTERNS
        .iter()
        .map(|(p, _)| p.len())
        .max()
        .unwrap_or(1);
    let _ = writeln!(out, "const MAX_TOKEN_LEN: usize = {max_len};");
    let mut trans = Vec::with_capacity(order.len() * stride);
    for s in &order {
        for &b in &representative {
            trans.push(index[&ac.next_state(Anchored::No, *s, b)] * stride);
        }
    }
    let _ = writeln!(out, "static TRANS: [u32; {}] = {trans:?};", trans.len());
    // Tokens ended by match state `i`: MATCH_IDS[MATCH_ENDS[i]..MATCH_ENDS[i + 1]].
    assert!(
        tokens::PATTERNS.len() <= 256,
        "MATCH_IDS holds token indexes as u8: more than 256 tokens need a wider type"
    );
    let mut ends = vec![0usize];
    let mut ids = Vec::new();
    for s in order.iter().take(matches) {
        for k in 0..ac.match_len(*s) {
            ids.push(ac.match_pattern(*s, k).as_usize());
        }
        ends.push(ids.len());
    }
    let _ = writeln!(out, "static MATCH_ENDS: [u16; {}] = {ends:?};", ends.len());
    let _ = writeln!(out, "static MATCH_IDS: [u8; {}] = {ids:?};", ids.len());
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    std::fs::write(dir.join("prefilter_dfa.rs"), out).expect("writing prefilter_dfa.rs");
}
