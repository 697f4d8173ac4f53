//! Print what the look-alike checker says about each name given on the command line:
//! `cargo run -p pyward-intel --example check-names -- jeIlyfish python3-dateutil`
//! (`--all` lists every match, `--include-popular` checks popular names too).
//!
//! `--corpus-self-check` estimates false positives: every corpus name is legitimate, so it
//! checks each one (as if it were not popular) against the names more popular than it and
//! counts the findings per confidence.

use pyward_intel::NameChecker;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = args.iter().any(|a| a == "--all");
    let checker = NameChecker::builtin(args.iter().any(|a| a == "--include-popular"));
    if args.iter().any(|a| a == "--corpus-self-check") {
        return self_check();
    }
    for name in args.iter().filter(|a| !a.starts_with("--")) {
        let matches = checker.check_all(name);
        if matches.is_empty() {
            println!("{name}: no match");
        }
        for m in matches.iter().take(if all { usize::MAX } else { 1 }) {
            println!(
                "{name}: imitates {} (#{}) {} [{} {:.2}] {}",
                m.imitates, m.imitates_rank, m.transformation, m.confidence, m.score, m.explanation
            );
        }
    }
}

fn self_check() {
    use pyward_intel::names::corpus;
    use pyward_intel::Confidence;
    let checker = NameChecker::builtin(true);
    let mut counts = [0usize; 3];
    let mut high = Vec::new();
    for p in corpus() {
        if let Some(m) = checker.check(&p.name) {
            counts[m.confidence as usize] += 1;
            if m.confidence == Confidence::High {
                high.push(format!(
                    "{} (#{}) -> {} (#{}) {}",
                    p.name, p.rank, m.imitates, m.imitates_rank, m.transformation
                ));
            }
        }
    }
    let n = corpus().len();
    println!(
        "{n} popular names checked against more popular ones: high {} ({:.2}%), medium {}, low {}",
        counts[2],
        100.0 * counts[2] as f64 / n as f64,
        counts[1],
        counts[0]
    );
    for h in high {
        println!("  high: {h}");
    }
}
