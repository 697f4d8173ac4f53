//! Analyse every `.py` file under a folder and print throughput and flagged files.
//! Usage: `cargo run --release -p pyward-analyze --example analyze-dir -- DIR [-v] [--why] [--slow] [--no-yara]`
use pyward_analyze::{analyze_file, score, Options, SUSPICIOUS};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: analyze-dir DIR");
        std::process::exit(2);
    };
    let verbose = args.iter().any(|a| a == "-v");
    // `--no-yara`: without the YARA-X content rules, to measure what they cost.
    let opts = Options {
        yara: if args.iter().any(|a| a == "--no-yara") {
            pyward_analyze::yara::YaraSet::Off
        } else {
            pyward_analyze::yara::YaraSet::Builtin
        },
        ..Default::default()
    };
    let mut files = Vec::new();
    collect(std::path::Path::new(dir), &mut files, 0);
    let mut bytes = 0usize;
    let mut slow: Vec<(f64, String, usize)> = Vec::new();
    let mut flagged = 0usize;
    let mut parsed = (0usize, 0usize);
    // Compile the rules before the clock starts (once per process, like a scan).
    let _ = opts.yara.rules();
    let t = Instant::now();
    for p in &files {
        let Ok(b) = std::fs::read(p) else { continue };
        bytes += b.len();

        let t1 = Instant::now();
        let fa = analyze_file(&p.display().to_string(), &b, &opts);
        slow.push((t1.elapsed().as_secs_f64(), p.display().to_string(), b.len()));
        if fa.parsed && args.iter().any(|a| a == "--why") {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            println!(
                "why {:?} {}",
                pyward_analyze::prefilter::reason(&b, &name),
                p.display()
            );
        }
        if fa.parsed {
            parsed.0 += 1;
            parsed.1 += b.len();
        }
        let s = score(&fa.rules);
        if s >= SUSPICIOUS {
            flagged += 1;
        }
        if (verbose && !fa.rules.is_empty()) || s >= SUSPICIOUS {
            let ids: Vec<&str> = fa.rules.iter().map(|r| r.id()).collect();
            println!("{s:4.1} {} {ids:?}", p.display());
            if verbose {
                for f in &fa.findings {
                    println!("      {} line {:?}: {}", f.trigger, f.line, f.message);
                }
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    if args.iter().any(|a| a == "--slow") {
        slow.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (s, p, n) in slow.iter().take(15) {
            println!("slow {s:.3}s {n} bytes {p}");
        }
    }
    println!("parsed_files={} parsed_bytes={}", parsed.0, parsed.1);
    println!(
        "files={} bytes={} seconds={secs:.3} MB/s={:.1} flagged_files={flagged}",
        files.len(),
        bytes,
        bytes as f64 / 1e6 / secs
    );
}

fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>, depth: usize) {
    if depth > 64 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        if dir.is_file() {
            out.push(dir.to_path_buf());
        }
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            collect(&p, out, depth + 1);
        } else if ft.is_file() && pyward_analyze::is_python_path(&p.to_string_lossy()) {
            out.push(p);
        }
    }
}
