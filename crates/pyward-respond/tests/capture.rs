//! Capture window with synthetic events and a manual clock; files re-read with the replay
//! reader of pyward-rules.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pyward_respond::capture::{CaptureConfig, CaptureStart, Capturer};
use pyward_rules::event::replay::ReplayProcess;
use pyward_rules::{Event, ReplayEvent, ReplayReader};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_785_419_600 * SEC;

fn event(t: u64, pid: u64) -> Arc<ReplayEvent> {
    Arc::new(ReplayEvent::parse_line(&format!(
        r#"{{"time":{t},"type":"openat","res":3,"proc":{{"pid":{pid},"name":"python3","args":["x.py"]}},
            "fd":{{"num":3,"type":"file","name":"/home/alice/.ssh/id_rsa"}},
            "args":[["fd",3],["name","/home/alice/.ssh/id_rsa"],["flags","O_RDONLY"]]}}"#
    ).replace('\n', ""))
    .unwrap())
}

/// Parse a capture file with the replay reader; times in seconds after T0.
fn reread(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut reader = ReplayReader::new();
    text.lines()
        .filter_map(|l| reader.parse_line(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .map(|ev| {
            assert_eq!(ev.event_type_name(), "openat");
            assert_eq!(
                ev.fd.as_ref().unwrap().name.as_deref(),
                Some("/home/alice/.ssh/id_rsa")
            );
            (ev.time_ns() - T0) / SEC
        })
        .collect()
}

#[test]
fn window_before_and_after_the_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Capturer::new(CaptureConfig::new(dir.path())).unwrap();
    // One event a second; the alert comes with the event at t=10 s.
    for s in 0..=10 {
        assert!(c.record(&event(T0 + s * SEC, s)).is_none());
    }
    let start = c
        .trigger(
            "SSH Information Read by Non-SSH Program",
            T0 + 10 * SEC,
            Duration::from_secs(5),
            Duration::from_secs(15),
        )
        .unwrap();
    let CaptureStart::Started { path, backfilled } = start else {
        panic!("{start:?}")
    };
    assert_eq!(backfilled, 6, "events at 5..=10 s");
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(
            "pyward-capture-20260730T135330.000000000Z-SSH_Information_Read_by_Non-SSH_Program"
        ),
        "{name}"
    );
    assert_eq!(path.parent().unwrap(), dir.path());
    // Visible at once (flushed), before the window closes.
    assert_eq!(reread(&path), (5..=10).collect::<Vec<_>>());
    let mut closed = None;
    for s in 11..=30 {
        if let Some(info) = c.record(&event(T0 + s * SEC, s)) {
            assert!(closed.is_none());
            assert_eq!(s, 26, "the first event past t+15 s closes it");
            closed = Some(info);
        }
    }
    let info = closed.expect("closed by a later event");
    assert_eq!(info.path, path);
    assert_eq!(info.events, 21);
    assert_eq!((info.start_ns, info.end_ns), (T0 + 5 * SEC, T0 + 25 * SEC));
    assert_eq!(reread(&path), (5..=25).collect::<Vec<_>>());
    let mode = std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(&path).unwrap());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn tick_closes_without_events_and_overlaps_extend() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Capturer::new(CaptureConfig::new(dir.path())).unwrap();
    for s in 0..=10 {
        c.record(&event(T0 + s * SEC, s));
    }
    let w = (Duration::from_secs(5), Duration::from_secs(15));
    let first = c.trigger("Rule A", T0 + 10 * SEC, w.0, w.1).unwrap();
    c.record(&event(T0 + 20 * SEC, 20));
    // Overlapping trigger at 20 s: same file, window now ends at 35 s.
    let second = c.trigger("Rule B", T0 + 20 * SEC, w.0, w.1).unwrap();
    assert_eq!(
        second,
        CaptureStart::Extended {
            path: first.path().to_owned(),
            end_ns: T0 + 35 * SEC
        }
    );
    c.record(&event(T0 + 30 * SEC, 30));
    // Manual clock: not yet past the end, then past it.
    assert!(c.tick(T0 + 35 * SEC).is_none());
    let info = c.tick(T0 + 35 * SEC + 1).unwrap();
    assert_eq!(info.triggers, ["Rule A", "Rule B"]);
    assert_eq!(reread(first.path()), vec![5, 6, 7, 8, 9, 10, 20, 30]);
    assert!(c.open_path().is_none());

    // A later trigger, not overlapping: a new file; the ring still has 20 and 30 (age < 60 s).
    c.record(&event(T0 + 40 * SEC, 40));
    let third = c
        .trigger("Rule A", T0 + 40 * SEC, Duration::from_secs(20), w.1)
        .unwrap();
    assert!(
        matches!(third, CaptureStart::Started { backfilled: 3, .. }),
        "{third:?}"
    );
    assert_ne!(third.path(), first.path());
    let info = c.close().unwrap();
    assert_eq!(reread(&info.path), vec![20, 30, 40]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn ring_is_bounded_and_files_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = CaptureConfig::new(dir.path());
    cfg.ring_max_events = 3;
    let mut c = Capturer::new(cfg).unwrap();
    for s in 0..=10 {
        c.record(&event(T0 + s * SEC, s));
    }
    assert_eq!(c.stats().ring_events, 3);
    assert_eq!(c.stats().evicted, 8);
    // A file already has the name the capture wants: it is kept, the capture gets `-1`.
    let taken = dir
        .path()
        .join("pyward-capture-20260730T135330.000000000Z-Rule.jsonl");
    std::fs::write(&taken, "precious\n").unwrap();
    let s = c
        .trigger(
            "Rule",
            T0 + 10 * SEC,
            Duration::from_secs(60),
            Duration::ZERO,
        )
        .unwrap();
    assert!(
        s.path().to_str().unwrap().ends_with("Rule-1.jsonl"),
        "{s:?}"
    );
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "precious\n");
    let info = c.close().unwrap();
    assert_eq!(
        reread(&info.path),
        vec![8, 9, 10],
        "only what the ring held"
    );

    // Byte and age bounds.
    let mut cfg = CaptureConfig::new(dir.path());
    cfg.ring_max_age = Duration::from_secs(2);
    let mut c = Capturer::new(cfg).unwrap();
    for s in 0..=10 {
        c.record(&event(T0 + s * SEC, s));
    }
    assert_eq!(
        c.stats().ring_events,
        3,
        "10, 9 and 8 s are within 2 s of the newest"
    );
    let one = c.stats().ring_bytes / 3;
    let mut cfg = CaptureConfig::new(dir.path());
    cfg.ring_max_bytes = one * 2;
    let mut c = Capturer::new(cfg).unwrap();
    for s in 0..=10 {
        c.record(&event(T0 + s * SEC, s));
    }
    assert!(c.stats().ring_bytes <= one * 2 && c.stats().ring_events <= 2);
}

#[test]
fn hostile_labels_and_symlinked_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Capturer::new(CaptureConfig::new(dir.path())).unwrap();
    c.record(&event(T0, 1));
    let s = c
        .trigger(
            "../../etc/passwd\n\0x",
            T0,
            Duration::from_secs(1),
            Duration::ZERO,
        )
        .unwrap();
    assert_eq!(s.path().parent().unwrap(), dir.path(), "{s:?}");
    let name = s.path().file_name().unwrap().to_str().unwrap();
    assert!(
        !name.contains('/') && name.contains("_.._etc_passwd"),
        "{name}"
    );
    c.close().unwrap();

    let link = dir.path().join("link");
    std::os::unix::fs::symlink(dir.path(), &link).unwrap();
    let e = Capturer::new(CaptureConfig::new(&link))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("symlink"), "{e}");
    let e = Capturer::new(CaptureConfig::new(&dir.path().join("missing")))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("does not exist"), "{e}");
}

#[test]
fn capture_file_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = CaptureConfig::new(dir.path());
    cfg.max_file_bytes = 1000;
    let mut c = Capturer::new(cfg).unwrap();
    c.trigger("Big", T0, Duration::ZERO, Duration::from_secs(100))
        .unwrap();
    for s in 0..20 {
        c.record(&event(T0 + s * SEC, s));
    }
    let info = c.close().unwrap();
    assert!(std::fs::metadata(&info.path).unwrap().len() <= 1000);
    assert!(
        info.truncated > 0 && info.events + info.truncated == 20,
        "{info:?}"
    );
    assert_eq!(reread(&info.path).len() as u64, info.events);
    assert!(
        info.outcome().contains(&format!(
            "{} later event(s) of the window not written",
            info.truncated
        )),
        "{}",
        info.outcome()
    );
}

/// A busy process under a deep ancestry with long command lines (a CI runner, a shell
/// pipeline): written in full, each line would repeat ~60 KB of ancestors and the file would
/// hit its size limit after ~4,000 events. Each process is written once instead.
#[test]
fn deep_ancestry_is_written_once_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Capturer::new(CaptureConfig::new(dir.path())).unwrap();
    let ancestors: Vec<Arc<ReplayProcess>> = (0..15u64)
        .map(|i| {
            let mut p: ReplayProcess = serde_json::from_value(serde_json::json!({
                "pid": 100 + i, "name": "bash", "args": ["-c", "x".repeat(4000)]
            }))
            .unwrap();
            p.finish();
            Arc::new(p)
        })
        .collect();
    let n = 6000;
    let first = event(T0, 7);
    let shared_proc = Arc::clone(&first.proc);
    let evs: Vec<Arc<ReplayEvent>> = (0..n)
        .map(|i| {
            let mut ev = (*event(T0 + i * 1000, 7)).clone();
            ev.proc = Arc::clone(&shared_proc);
            ev.ancestors = ancestors.clone();
            Arc::new(ev)
        })
        .collect();
    for ev in &evs[..n as usize / 2] {
        c.record(ev);
    }
    c.trigger(
        "Deep",
        T0 + SEC / 1000,
        Duration::from_secs(5),
        Duration::from_secs(15),
    )
    .unwrap();
    for ev in &evs[n as usize / 2..] {
        c.record(ev);
    }
    assert!(
        c.stats().ring_bytes < 16 << 20,
        "the ring counts shared records once: {:?}",
        c.stats()
    );
    let info = c.close().unwrap();
    assert_eq!((info.events, info.truncated), (n, 0), "{info:?}");
    let size = std::fs::metadata(&info.path).unwrap().len();
    assert!(size < 4 << 20, "{size} bytes");
    let mut reader = ReplayReader::new();
    let back: Vec<ReplayEvent> = std::fs::read_to_string(&info.path)
        .unwrap()
        .lines()
        .filter_map(|l| reader.parse_line(l).unwrap())
        .collect();
    assert_eq!(back.len() as u64, n);
    assert_eq!(back[n as usize - 1].ancestors.len(), 15);
    assert_eq!(
        back[n as usize - 1].ancestors[14].args.as_ref().unwrap()[1].len(),
        4000
    );
}
