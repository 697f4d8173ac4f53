//! Time a YARA-X rule file over every `.py` under a folder (one thread), to find the rules
//! whose atoms make the scan slow. Usage: `yara-cost RULES.yar... -- DIR`
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(split) = args.iter().position(|a| a == "--") else {
        eprintln!("usage: yara-cost RULES.yar... -- DIR");
        std::process::exit(2);
    };
    let mut files = Vec::new();
    for dir in &args[split + 1..] {
        collect(std::path::Path::new(dir), &mut files);
    }
    let data: Vec<Vec<u8>> = files.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    let bytes: usize = data.iter().map(Vec::len).sum();
    for rule_file in &args[..split] {
        let src = std::fs::read_to_string(rule_file).expect("rule file");
        let mut c = yara_x::Compiler::new();
        c.add_source(src.as_str()).expect("rules compile");
        let rules = c.build();
        let mut scanner = yara_x::Scanner::new(&rules);
        let t = Instant::now();
        let mut hits = 0;
        for d in &data {
            hits += scanner
                .scan(d)
                .map(|r| r.matching_rules().len())
                .unwrap_or(0);
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{rule_file}: {s:.3} s, {:.0} MB/s, {hits} hits",
            bytes as f64 / s / 1e6
        );
    }
}

fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "py") {
            out.push(p);
        }
    }
}
