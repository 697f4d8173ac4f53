//! No panic on any event, and bounded memory under floods.

mod common;

use common::*;
use pyward_detect::{DetectConfig, DetectorSet};
use pyward_rules::ReplayEvent;

#[test]
fn hostile_events_do_not_panic() {
    let mut set = DetectorSet::new(DetectConfig::default());
    let lines = [
        r#"{"type":"execve"}"#,
        r#"{"type":"execve","proc":{"pid":1,"args":["-c"]}}"#,
        r#"{"type":"execve","proc":{"pid":2,"name":"python3","args":["--"]}}"#,
        r#"{"type":"execve","proc":{"pid":2,"name":"bash","args":["-o"]}}"#,
        r#"{"type":"execve","proc":{"pid":2,"name":"php","args":["-f"]}}"#,
        r#"{"type":"execve","proc":{"pid":3,"exepath":""},"args":{"exe_ino":-5,"exe_dev":"x"}}"#,
        r#"{"type":"openat","res":3,"proc":{"pid":4},"args":{"flags":"O_WEIRD|","name":""}}"#,
        r#"{"type":"openat","res":3,"proc":{"pid":4},"args":{"flags":99999999999,"dirfd":7,"name":"../../x"}}"#,
        r#"{"type":"write","res":5,"proc":{"pid":4},"args":{"fd":3,"data":"zzz"}}"#,
        r#"{"type":"write","res":5,"proc":{"pid":4},"fd":{"num":3,"name":"/a"},"args":{"fd":3,"data":"0"}}"#,
        r#"{"type":"read","res":5,"proc":{"pid":4},"fd":{"num":3,"name":"relative"},"args":{"data":""}}"#,
        r#"{"type":"unlinkat","proc":{"pid":4},"args":{"dirfd":99,"name":"x","flags":"AT_REMOVEDIR"}}"#,
        r#"{"type":"unlinkat","proc":{"pid":4,"cwd":""},"args":{"dirfd":-100,"name":""}}"#,
        r#"{"type":"renameat2","proc":{"pid":4},"args":{"oldpath":"/","newpath":""}}"#,
        r#"{"type":"rename","proc":{"pid":4},"args":{"oldpath":"/a/b","newpath":"/a/b"}}"#,
        r#"{"type":"fchmodat","proc":{"pid":4},"args":{"mode":"S_IXUSR","filename":"/x"}}"#,
        r#"{"type":"clone","res":-1,"proc":{"pid":4,"ppid":4}}"#,
        r#"{"type":"clone","res":4,"proc":{"pid":4}}"#,
        r#"{"type":"procexit","proc":{"pid":4}}"#,
        r#"{"type":"procexit"}"#,
        r#"{"type":"unlink","proc":{"pid":9,"ppid":9},"ancestors":[{"pid":9},{"pid":9}],"args":{"path":"x"}}"#,
    ];
    for l in lines {
        let ev = ReplayEvent::parse_line(l).expect(l);
        let _ = set.observe(&ev);
    }
    assert_eq!(set.stats().events, lines.len() as u64);
}

#[test]
fn memory_is_bounded_under_a_file_flood() {
    let mut cfg = DetectConfig::default();
    cfg.drift.max_files = 500;
    cfg.ransomware.max_files_per_tree = 300;
    cfg.ransomware.max_trees = 20;
    cfg.tracking.max_processes = 100;
    let mut sim = Sim::new(cfg);
    sim.spawn(
        10,
        100,
        "python3",
        "/usr/bin/python3",
        &["-c", "flood()"],
        "/tmp",
    );
    for i in 0..5_000u64 {
        let p = format!("/tmp/f/{i}");
        sim.preexisting(&p);
        let fd = sim.open(10, &p, "O_RDONLY");
        sim.read(10, fd, &p, &random_bytes(i, 64));
        let o = format!("/tmp/g/{i}.x");
        let fd = sim.open(10, &o, "O_WRONLY|O_CREAT|O_TRUNC");
        sim.write(10, fd, &o, &random_bytes(i + 1, 64));
    }
    // many short-lived processes in many trees
    for i in 0..1_000u64 {
        let pid = 10_000 + i;
        sim.add_proc(pid, 1, "worker", "/usr/bin/worker", &[], "/tmp");
        let p = format!("/tmp/w/{i}");
        sim.preexisting(&p);
        sim.open(pid, &p, "O_RDONLY");
    }
    let s = sim.set.stats();
    assert!(s.drift_files <= 500, "{s:?}");
    assert!(s.ransomware_trees <= 20, "{s:?}");
    assert!(s.ransomware_files <= 20 * 600, "{s:?}");
    assert!(s.processes <= 100, "{s:?}");
}

/// Throughput of `observe` on a mixed stream (events parsed beforehand). Prints events/s;
/// run with `cargo test -p pyward-detect --release --test robustness -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let mut lines = Vec::new();
    for i in 0..50_000u64 {
        let pid = 1000 + i % 50;
        let path = format!("/data/{}/f{i}.txt", i % 100);
        let ev = match i % 5 {
            0 => format!(
                r#"{{"time":{i},"type":"openat","res":3,"proc":{{"pid":{pid},"ppid":1,"name":"python3","args":["x.py"],"cwd":"/data/"}},"fd":{{"num":3,"name":"{path}"}},"args":{{"fd":3,"dirfd":-100,"name":"{path}","flags":"O_RDONLY|O_CLOEXEC","dev":2049,"ino":{i}}}}}"#
            ),
            1 => format!(
                r#"{{"time":{i},"type":"read","res":64,"proc":{{"pid":{pid},"ppid":1,"name":"python3"}},"fd":{{"num":3,"name":"{path}"}},"args":{{"fd":3,"size":64,"data":"{}"}}}}"#,
                hex(&text_bytes(i as usize))
            ),
            2 => format!(
                r#"{{"time":{i},"type":"openat","res":4,"proc":{{"pid":{pid},"ppid":1,"name":"python3"}},"fd":{{"num":4,"name":"{path}.bak"}},"args":{{"fd":4,"flags":"O_WRONLY|O_CREAT|O_TRUNC","dev":2049,"ino":{}}}}}"#,
                i + 1_000_000
            ),
            3 => format!(
                r#"{{"time":{i},"type":"write","res":64,"proc":{{"pid":{pid},"ppid":1,"name":"python3"}},"fd":{{"num":4,"name":"{path}.bak"}},"args":{{"fd":4,"size":64,"data":"{}"}}}}"#,
                hex(&text_bytes(i as usize))
            ),
            _ => format!(
                r#"{{"time":{i},"type":"execve","res":0,"proc":{{"pid":{pid},"ppid":1,"name":"ls","exepath":"/usr/bin/ls","args":["-l"]}},"args":{{"exe_ino":77,"exe_dev":2049}}}}"#
            ),
        };
        lines.push(ReplayEvent::parse_line(&ev).expect("event"));
    }
    let mut set = DetectorSet::new(DetectConfig::default());
    let t0 = std::time::Instant::now();
    let mut n = 0;
    for ev in &lines {
        n += set.observe(ev).len();
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "observe: {} events in {secs:.3} s = {:.0} events/s ({n} detections)",
        lines.len(),
        lines.len() as f64 / secs
    );
    assert_eq!(n, 0, "benign stream");
}
