//! Rules-engine benchmarks (harness = false, prints results):
//! (a) load + compile time of the three upstream Falco rules files together;
//! (b) single-thread evaluation throughput with falco_rules.yaml (+ pyward's rules
//!     when rules/pyward_rules.yaml exists) over an in-memory mix of pre-built events.
//!
//! `cargo bench -p pyward-rules --bench rules_engine [-- SECONDS]`

use std::time::{Duration, Instant};

use pyward_rules::{Engine, EngineOptions, LoadOptions, ReplayEvent, RuleMatching, RulesetBuilder};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/falco-rules");
const PYWARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../rules/pyward_rules.yaml");

fn load_all() -> pyward_rules::Ruleset {
    let mut b = RulesetBuilder::new(LoadOptions::default());
    for f in [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ] {
        b.load_file(format!("{DIR}/{f}"));
    }
    b.build()
}

/// A deterministic mix: ~45% opens, ~40% execs, ~10% connects, ~5% other types.
fn events() -> Vec<ReplayEvent> {
    let procs = [
        (
            r#"{"pid":100,"name":"python3","exe":"python3","exepath":"/usr/bin/python3.12","args":["app.py"],"cwd":"/srv","tty":0}"#,
            r#"[{"pid":90,"name":"gunicorn","exepath":"/usr/local/bin/gunicorn"},{"pid":1,"name":"tini"}]"#,
        ),
        (
            r#"{"pid":200,"name":"bash","exe":"bash","exepath":"/usr/bin/bash","args":["-c","ls -la /tmp"],"cwd":"/root","tty":34816}"#,
            r#"[{"pid":150,"name":"sshd","exepath":"/usr/sbin/sshd"},{"pid":1,"name":"systemd"}]"#,
        ),
        (
            r#"{"pid":300,"name":"nginx","exe":"nginx","exepath":"/usr/sbin/nginx","args":["-g","daemon off;"],"cwd":"/"}"#,
            r#"[{"pid":1,"name":"containerd-shim"}]"#,
        ),
        (
            r#"{"pid":400,"name":"pip","exe":"pip","exepath":"/usr/bin/pip","args":["install","requests"],"cwd":"/home/dev","tty":34817}"#,
            r#"[{"pid":350,"name":"bash"},{"pid":300,"name":"tmux"},{"pid":1,"name":"systemd"}]"#,
        ),
    ];
    let containers = [
        r#""container":{"id":"3ad7b26ded6d","name":"web","image_repository":"docker.io/library/nginx","image_tag":"1.27","privileged":false}"#,
        r#""container":{"id":"host","name":"host"}"#,
    ];
    let files = [
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", "O_RDONLY|O_CLOEXEC"),
        ("/etc/ld.so.cache", "O_RDONLY|O_CLOEXEC"),
        ("/srv/app/data.json", "O_RDONLY"),
        ("/tmp/out.log", "O_WRONLY|O_CREAT|O_TRUNC"),
        ("/etc/passwd", "O_RDONLY"),
        ("/proc/self/status", "O_RDONLY"),
        ("/etc/shadow", "O_RDONLY"),
        ("/home/dev/.cache/pip/x", "O_RDWR|O_CREAT"),
    ];
    let execs = ["ls", "cat", "python3", "bash", "grep", "curl", "sh", "git"];
    let mut out = Vec::new();
    let mut t: u64 = 1_785_419_611_000_000_000;
    for i in 0..2000usize {
        t += 1_000;
        let (p, anc) = procs[i % procs.len()];
        let c = containers[(i / 3) % containers.len()];
        let user = if i % 5 == 0 {
            r#""user":{"uid":0,"name":"root","loginuid":-1}"#
        } else {
            r#""user":{"uid":1000,"name":"dev","loginuid":1000}"#
        };
        let kind = i % 20;
        let line = if kind < 9 {
            let (f, flags) = files[i % files.len()];
            format!(
                r#"{{"time":{t},"type":"openat","res":3,"proc":{p},"ancestors":{anc},{user},{c},"fd":{{"num":3,"type":"file","name":"{f}"}},"args":{{"flags":"{flags}","name":"{f}","mode":"0644"}}}}"#
            )
        } else if kind < 17 {
            let e = execs[i % execs.len()];
            format!(
                r#"{{"time":{t},"type":"execve","res":0,"proc":{{"pid":{},"name":"{e}","exe":"{e}","exepath":"/usr/bin/{e}","args":["-x","/tmp/file"],"cwd":"/tmp","tty":0,"is_exe_writable":false,"is_exe_upper_layer":false}},"ancestors":[{p}],{user},{c},"args":{{"filename":"/usr/bin/{e}"}}}}"#,
                1000 + i
            )
        } else if kind < 19 {
            let port = [443u32, 80, 22, 6443][i % 4];
            format!(
                r#"{{"time":{t},"type":"connect","res":0,"proc":{p},"ancestors":{anc},{user},{c},"fd":{{"num":5,"type":"ipv4","cip":"10.0.0.5","cport":41000,"sip":"93.184.216.34","sport":{port},"l4proto":"tcp","connected":true}}}}"#
            )
        } else {
            format!(
                r#"{{"time":{t},"type":"close","res":0,"proc":{p},{user},{c},"fd":{{"num":3,"type":"file","name":"/tmp/x"}}}}"#
            )
        };
        match ReplayEvent::parse_line(&line) {
            Ok(e) => out.push(e),
            Err(e) => panic!("bench event {i} does not parse: {e}\n{line}"),
        }
    }
    out
}

fn main() {
    let secs: f64 = std::env::args()
        .filter_map(|a| a.parse().ok())
        .next()
        .unwrap_or(3.0);

    // PYWARD_BENCH_PASSES=N: no load timing, exactly N passes over the mix per mode
    // (a fixed amount of work, to count instructions and cache misses under
    // `valgrind --tool=cachegrind`, which a shared machine does not disturb)
    let passes: Option<u64> = std::env::var("PYWARD_BENCH_PASSES")
        .ok()
        .and_then(|v| v.parse().ok());

    // (a) load + compile
    let _ = load_all(); // warm the file cache
    let mut times = Vec::new();
    for _ in 0..(if passes.is_some() { 0 } else { 15 }) {
        let t0 = Instant::now();
        let rs = load_all();
        times.push(t0.elapsed());
        assert!(!rs.has_errors());
    }
    times.sort();
    if let (Some(med), Some(min)) = (times.get(times.len() / 2), times.first()) {
        let (med, min) = (*med, *min);
        println!("load+compile 3 upstream files (93 rules, 352 macros, 163 lists): median {:.1} ms, min {:.1} ms over {} runs", ms(med), ms(min), times.len());
    }

    // (b) evaluation throughput
    let mut b = RulesetBuilder::new(LoadOptions::default());
    b.load_file(format!("{DIR}/falco_rules.yaml"));
    let with_pyward = std::path::Path::new(PYWARD).exists();
    if with_pyward {
        b.load_file(PYWARD);
    }
    let rs = b.build();
    if rs.has_errors() {
        for d in rs.errors() {
            eprintln!("{d}");
        }
        panic!("ruleset has errors");
    }
    let evs = events();
    for (name, matching) in [("first", RuleMatching::First), ("all", RuleMatching::All)] {
        let engine = Engine::new(
            &rs,
            EngineOptions {
                rule_matching: matching,
                ..EngineOptions::default()
            },
        )
        .expect("engine");
        let mut matches = 0usize;
        for e in &evs {
            matches += engine.count_matches(e);
        }
        let deadline = Duration::from_secs_f64(secs);
        let cpu0 = thread_cpu_ns();
        let t0 = Instant::now();
        let mut n = 0u64;
        let mut sink = 0usize;
        while passes.map_or(t0.elapsed() < deadline, |p| n < p * evs.len() as u64) {
            for e in &evs {
                sink += engine.count_matches(std::hint::black_box(e));
            }
            n += evs.len() as u64;
        }
        let el = t0.elapsed().as_secs_f64();
        let cpu = match (cpu0, thread_cpu_ns()) {
            (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1e9),
            _ => None,
        };
        std::hint::black_box(sink);
        if std::env::var_os("PYWARD_BENCH_BY_TYPE").is_some() {
            for ty in ["openat", "execve", "connect", "close"] {
                let sub: Vec<&ReplayEvent> = evs.iter().filter(|e| e.event_type == ty).collect();
                let t1 = Instant::now();
                let mut k = 0u64;
                while t1.elapsed() < Duration::from_millis(500) {
                    for e in &sub {
                        sink += engine.count_matches(std::hint::black_box(*e));
                    }
                    k += sub.len() as u64;
                }
                std::hint::black_box(sink);
                println!(
                    "  {ty}: {:.0} events/s ({} rules for this type)",
                    k as f64 / t1.elapsed().as_secs_f64(),
                    sub.first().map_or(0, |e| engine
                        .rules_for_type(pyward_rules::Event::event_type(*e)))
                );
            }
        }
        println!(
            "evaluate ({} rules{}, rule_matching={name}): {} events in {:.2} s = {:.0} events/s single thread ({} of {} mix events match){}",
            engine.rule_count(),
            if with_pyward { " incl. pyward_rules.yaml" } else { "" },
            n,
            el,
            n as f64 / el,
            matches,
            evs.len(),
            // on a shared machine the thread is sometimes descheduled: the rate per
            // second of CPU time actually received is the steadier figure to compare
            cpu.map_or(String::new(), |c| format!(
                "; {:.0} events per CPU-second ({:.2} s on CPU)",
                n as f64 / c,
                c
            ))
        );
    }
}

/// Time this thread has spent on a CPU (Linux: /proc/thread-self/schedstat), if known.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
