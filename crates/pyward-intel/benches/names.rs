//! Name-check throughput: 1,000,000 generated names against the embedded corpus.
//!
//! `cargo bench -p pyward-intel --bench names` (add `-- N` for another count). The names are
//! a deterministic mix: one third random strings, one third popular names, one third popular
//! names mutated the way squatters do (one edit, look-alike characters, `python3-` prefixes,
//! filler words). Prints the index build time and names/second on one thread and on all
//! threads (rayon), plus how many names were flagged per confidence.

use pyward_intel::names::corpus;
use pyward_intel::{Confidence, NameChecker};
use rayon::prelude::*;
use std::time::Instant;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-";

fn mutate(rng: &mut Rng, name: &str) -> String {
    let mut b: Vec<u8> = name.as_bytes().to_vec();
    let letter = |rng: &mut Rng| ALPHABET[rng.below(26)];
    match rng.below(8) {
        0 if !b.is_empty() => {
            let i = rng.below(b.len());
            b.remove(i);
        }
        1 => {
            let i = rng.below(b.len() + 1);
            let c = letter(rng);
            b.insert(i, c);
        }
        2 if !b.is_empty() => {
            let i = rng.below(b.len());
            b[i] = letter(rng);
        }
        3 if b.len() > 1 => {
            let i = rng.below(b.len() - 1);
            b.swap(i, i + 1);
        }
        4 => return name.replacen('l', "I", 1).replacen('o', "0", 1),
        5 => return format!("python3-{name}"),
        6 => return format!("{name}-utils"),
        _ => return name.replacen('-', "_", 1).to_uppercase(),
    }
    String::from_utf8(b).unwrap_or_default()
}

fn generate(count: usize) -> Vec<String> {
    let popular = corpus();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|i| match i % 3 {
            0 => {
                let len = 4 + rng.below(17);
                (0..len)
                    .map(|_| ALPHABET[rng.below(ALPHABET.len())] as char)
                    .collect()
            }
            1 => popular[rng.below(popular.len())].name.to_string(),
            _ => {
                let p = &popular[rng.below(popular.len())].name;
                mutate(&mut rng, p)
            }
        })
        .collect()
}

fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let names = generate(count);

    let t = Instant::now();
    let checker = NameChecker::builtin(false);
    let _ = checker.check("warm-up");
    let build = t.elapsed();
    println!(
        "corpus: {} names, index built in {:.1} ms",
        checker.corpus_len(),
        build.as_secs_f64() * 1e3
    );

    let t = Instant::now();
    let flagged_one: usize = names.iter().filter(|n| checker.check(n).is_some()).count();
    let one = t.elapsed().as_secs_f64();
    println!(
        "1 thread:  {count} names in {one:.3} s = {:.0} names/s ({flagged_one} flagged)",
        count as f64 / one
    );

    let t = Instant::now();
    let results: Vec<Option<Confidence>> = names
        .par_iter()
        .map(|n| checker.check(n).map(|m| m.confidence))
        .collect();
    let all = t.elapsed().as_secs_f64();
    let by = |c: Confidence| results.iter().filter(|r| **r == Some(c)).count();
    println!(
        "{} threads: {count} names in {all:.3} s = {:.0} names/s (high {}, medium {}, low {})",
        rayon::current_num_threads(),
        count as f64 / all,
        by(Confidence::High),
        by(Confidence::Medium),
        by(Confidence::Low)
    );
}
