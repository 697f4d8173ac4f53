//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyward_rules::{Alert, Priority};

/// An alert as the rules engine makes it, with `evt.time` = `time_ns`.
pub fn alert(
    rule: &str,
    priority: Priority,
    time_ns: u64,
    fields: &[(&str, serde_json::Value)],
) -> Alert {
    let mut output_fields = BTreeMap::new();
    output_fields.insert("evt.time".to_owned(), serde_json::Value::from(time_ns));
    for (k, v) in fields {
        output_fields.insert((*k).to_owned(), v.clone());
    }
    let secs = time_ns / 1_000_000_000;
    let sub = time_ns % 1_000_000_000;
    let d = time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap();
    Alert {
        hostname: "test-host".into(),
        output: format!(
            "{:02}:{:02}:{:02}.{sub:09}: {priority} {rule} fired (file=/home/alice/.ssh/id_rsa)",
            d.hour(),
            d.minute(),
            d.second()
        ),
        output_fields,
        priority,
        rule: rule.into(),
        source: "syscall".into(),
        tags: vec!["T1552.004".into(), "filesystem".into()],
        time: format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{sub:09}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
    }
}

/// A writer whose bytes the test can read back.
#[derive(Clone, Default)]
pub struct Shared(pub Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    pub fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// Wait (bounded) until `f` is true.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// `true` if PYWARD_BPF_TESTS=1 (root-only tests must then run); else print SKIPPED.
pub fn root_tests_enabled(name: &str) -> bool {
    if std::env::var("PYWARD_BPF_TESTS").as_deref() == Ok("1") {
        true
    } else {
        eprintln!("SKIPPED {name}: set PYWARD_BPF_TESTS=1");
        false
    }
}

/// State letter of /proc/PID/stat, or None if the process is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    pyward_respond::process::stat_of(pid).map(|s| s.state)
}

/// `true` when the pid is gone or a zombie.
pub fn is_dead(pid: u32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}
