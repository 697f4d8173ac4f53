//! Events files with each process written once: `ReplayWriter` → `ReplayReader` gives back
//! the same events as the full form, the file is a fraction of the size, and malformed
//! references are errors that say what is wrong.

use std::sync::Arc;

use pyward_rules::event::replay::ReplayProcess;
use pyward_rules::event::stream::WRITER_FORGET_AFTER;
use pyward_rules::{ReplayEvent, ReplayReader, ReplayWriter};

fn process(pid: u64, name: &str, args_len: usize) -> Arc<ReplayProcess> {
    let mut p: ReplayProcess = serde_json::from_value(serde_json::json!({
        "pid": pid, "ppid": pid - 1, "name": name, "exepath": format!("/usr/bin/{name}"),
        "args": ["-c", "x".repeat(args_len)], "cwd": "/work/"
    }))
    .unwrap();
    p.finish();
    Arc::new(p)
}

/// `n` events of one process under a deep ancestry, all sharing the same records (as the
/// live sensor hands them out).
fn events(n: u64) -> Vec<ReplayEvent> {
    let ancestors: Vec<Arc<ReplayProcess>> =
        (0..15).map(|i| process(1000 - i, "bash", 4000)).collect();
    let me = process(2000, "python3", 10);
    (0..n)
        .map(|i| {
            let mut ev = ReplayEvent::parse_line(&format!(
                r#"{{"time":{},"type":"openat","res":3,"fd":{{"num":3,"type":"file","name":"/data/f{i}.txt"}},"args":[["fd",3],["name","/data/f{i}.txt"],["flags","O_RDONLY"]]}}"#,
                1_785_419_600_000_000_000u64 + i
            ))
            .unwrap();
            ev.proc = Arc::clone(&me);
            ev.ancestors = ancestors.clone();
            ev.finish().unwrap();
            ev
        })
        .collect()
}

fn write_all(evs: &[ReplayEvent]) -> String {
    let mut w = ReplayWriter::new();
    let mut out = Vec::new();
    for ev in evs {
        w.encode(ev, &mut out).unwrap();
    }
    String::from_utf8(out).unwrap()
}

fn read_all(text: &str) -> Result<Vec<ReplayEvent>, String> {
    let mut r = ReplayReader::new();
    let mut evs = Vec::new();
    for (i, l) in text.lines().enumerate() {
        if let Some(ev) = r
            .parse_line(l)
            .map_err(|e| format!("line {}: {e}", i + 1))?
        {
            evs.push(ev);
        }
    }
    Ok(evs)
}

fn json(ev: &ReplayEvent) -> serde_json::Value {
    serde_json::to_value(ev).unwrap()
}

#[test]
fn round_trip_gives_the_same_events_in_a_fraction_of_the_size() {
    let evs = events(500);
    let compact = write_all(&evs);
    let full: usize = evs
        .iter()
        .map(|e| serde_json::to_string(e).unwrap().len() + 1)
        .sum();
    // 16 definitions (15 ancestors + the process) and 500 events.
    assert_eq!(compact.lines().count(), 516);
    assert!(
        compact.len() * 20 < full,
        "compact {} bytes vs full {full}",
        compact.len()
    );
    let back = read_all(&compact).unwrap();
    assert_eq!(back.len(), evs.len());
    for (a, b) in evs.iter().zip(&back) {
        assert_eq!(json(a), json(b));
    }
    // Events read back share their process records (no copy per event).
    assert!(Arc::ptr_eq(&back[0].proc, &back[499].proc));
    assert!(Arc::ptr_eq(&back[0].ancestors[3], &back[499].ancestors[3]));
}

#[test]
fn full_lines_and_references_mix_and_full_lines_parse_alone() {
    let evs = events(3);
    let full = serde_json::to_string(&evs[1]).unwrap();
    let mut text = write_all(&evs[..1]);
    text.push_str(&full);
    text.push('\n');
    let back = read_all(&text).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(json(&back[1]), json(&evs[1]));
    assert_eq!(
        json(&ReplayEvent::parse_line(&full).unwrap()),
        json(&evs[1])
    );
}

#[test]
fn equal_records_that_are_not_shared_are_written_once() {
    let mut evs = events(4);
    // Same content, different allocations (a source that does not share its records).
    for ev in &mut evs {
        ev.proc = Arc::new((*ev.proc).clone());
    }
    let text = write_all(&evs);
    assert_eq!(text.matches("\"process_ref\"").count(), 16, "{text}");
}

#[test]
fn the_writer_forgets_its_table_and_the_reader_follows() {
    // More distinct processes than the writer keeps: it starts over with a forget line.
    let n = WRITER_FORGET_AFTER as u64 + 10;
    let base = events(1).pop().unwrap();
    let evs: Vec<ReplayEvent> = (0..n)
        .map(|i| {
            let mut ev = base.clone();
            ev.proc = process(10_000 + i, "sh", 0);
            ev.ancestors.clear();
            ev
        })
        .collect();
    let text = write_all(&evs);
    assert_eq!(text.matches("{\"process_refs\":\"forget\"}").count(), 1);
    let back = read_all(&text).unwrap();
    assert_eq!(back.len() as u64, n);
    assert_eq!(back.last().unwrap().proc.pid, Some(10_000 + n - 1));
}

#[test]
fn bad_references_are_errors_that_say_what_is_wrong() {
    let cases = [
        (
            r#"{"time":1,"type":"openat","proc_ref":7}"#,
            "proc_ref 7 names no process defined earlier",
        ),
        (
            "{\"process_ref\":1,\"process\":{\"pid\":1}}\n{\"process_ref\":1,\"process\":{\"pid\":2}}",
            "process_ref 1 is defined twice",
        ),
        (
            "{\"process_ref\":1,\"process\":{\"pid\":1}}\n{\"process_refs\":\"forget\"}\n{\"time\":1,\"type\":\"openat\",\"ancestor_refs\":[1]}",
            "ancestor_refs 1 names no process",
        ),
        (
            r#"{"process_ref":1,"process":{"pid":1},"type":"openat"}"#,
            "holds only process_ref and process",
        ),
        (r#"{"process_ref":1}"#, "process_ref without the process"),
        (r#"{"process":{"pid":1}}"#, "process without a process_ref"),
        (
            r#"{"time":1,"type":"openat","proc":{"pid":1},"proc_ref":1}"#,
            "proc or proc_ref, not both",
        ),
        (r#"{"process_refs":"all"}"#, "must be \"forget\""),
        (
            r#"{"process_ref":1,"process":{"pid":1,"bogus":2}}"#,
            "unknown field `bogus`",
        ),
    ];
    for (text, want) in cases {
        let err = read_all(text).expect_err(text);
        assert!(err.contains(want), "{text}: {err}");
    }
    // One line alone cannot resolve references: a clear error, not a silent `<NA>` process.
    let err = ReplayEvent::parse_line(r#"{"time":1,"type":"openat","proc_ref":1}"#).unwrap_err();
    assert!(err.to_string().contains("whole file"), "{err}");
}
