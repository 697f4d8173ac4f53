//! Against the real kernel: the probe-side features (exec file identity and flags, fd dev/ino
//! of opens, first bytes written/read at offset 0, sendto destinations, the fd table).
//!
//! Gated by PYWARD_BPF_TESTS=1 (root and a BTF kernel needed). When set and the sensor
//! cannot load, the tests fail loudly; when unset, they say they were skipped.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pyward_rules::event::replay::{ArgValue, ReplayEvent};
use pyward_sensor::{spawn_followed, LiveSource, Next, SensorOptions};

fn enabled(test: &str) -> bool {
    if std::env::var("PYWARD_BPF_TESTS").as_deref() == Ok("1") {
        true
    } else {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: set PYWARD_BPF_TESTS=1 (as root) to run the eBPF tests"
        );
        false
    }
}

fn start(opts: SensorOptions) -> LiveSource {
    LiveSource::start(opts)
        .unwrap_or_else(|e| panic!("PYWARD_BPF_TESTS=1 but the sensor does not load: {e}"))
}

fn arg<'a>(e: &'a ReplayEvent, name: &str) -> Option<&'a ArgValue> {
    e.args.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn arg_str<'a>(e: &'a ReplayEvent, name: &str) -> Option<&'a str> {
    match arg(e, name)? {
        ArgValue::Str(s) => Some(s),
        _ => None,
    }
}

fn fd_name(e: &ReplayEvent) -> Option<&str> {
    e.fd.as_ref().and_then(|f| f.name.as_deref())
}

/// Collect the followed tree's events until `root` exits (plus a grace period for what its
/// children still send), bounded.
fn collect(src: &mut LiveSource, root: u32) -> Vec<ReplayEvent> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut root_exited: Option<Instant> = None;
    while Instant::now() < deadline {
        if root_exited.is_some_and(|t| t.elapsed() > Duration::from_millis(300)) {
            break;
        }
        match src.next(Duration::from_millis(100)) {
            Next::Event(e, _) => {
                if e.event_type == "procexit" && e.proc.pid == Some(u64::from(root)) {
                    root_exited = Some(Instant::now());
                }
                out.push(*e);
            }
            Next::Timeout => {}
            Next::Closed => break,
        }
    }
    out
}

fn run_followed(src: &mut LiveSource, mut cmd: Command) -> Vec<ReplayEvent> {
    let mut child = spawn_followed(&mut cmd, src).expect("spawn the test child");
    let pid = child.id();
    let events = collect(src, pid);
    let status = child.wait().expect("wait for the test child");
    assert!(status.success(), "test child failed: {status}");
    events
}

#[test]
fn sensor_reports_first_bytes_sendto_and_fd_names() {
    if !enabled("sensor_reports_first_bytes_sendto_and_fd_names") {
        return;
    }
    let mut src = start(SensorOptions {
        follow: true,
        capture_reads: true,
        ..SensorOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let dropped = dir.path().join("dropped.bin");
    let vec_file = dir.path().join("vec.txt");
    let dup_file = dir.path().join("dup.txt");
    let existing = dir.path().join("existing.txt");
    std::fs::write(&existing, b"#!/bin/sh\necho previous content\n").unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback UDP");
    udp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let port = udp.local_addr().unwrap().port();
    let script = format!(
        r#"
import os, socket
fd = os.open({dropped:?}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)
os.write(fd, b"\x7fELF\x02\x01\x01" + bytes(range(100)))
os.write(fd, b"second write, not at offset 0")
os.pwrite(fd, b"XX", 0)
os.close(fd)
fd = os.open({vec_file:?}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.writev(fd, [b"PK\x03\x04", b"rest"])
os.close(fd)
fd = os.open({dup_file:?}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.dup2(fd, 77)
os.close(fd)
os.write(77, b"via dup")
os.close(77)
with open({existing:?}, "rb") as f:
    f.read()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"inert test datagram", ("127.0.0.1", {port}))
s.close()
"#,
        dropped = dropped.to_str().unwrap(),
        vec_file = vec_file.to_str().unwrap(),
        dup_file = dup_file.to_str().unwrap(),
        existing = existing.to_str().unwrap(),
    );
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.args(["-c", &script]);
    let events = run_followed(&mut src, cmd);
    let mut buf = [0u8; 64];
    let (n, _) = udp.recv_from(&mut buf).expect("the child's datagram");
    assert_eq!(&buf[..n], b"inert test datagram");
    let stats = src.stop();
    assert_eq!(stats.ring_drops, 0, "{stats:?}");
    assert_eq!(stats.parse_errors, 0, "{stats:?}");
    assert_eq!(stats.scratch_busy, 0, "{stats:?}");

    // The open carries the file's device and inode, as stat(2) gives them.
    let meta = std::fs::metadata(&dropped).unwrap();
    let open = events
        .iter()
        .find(|e| e.event_type.starts_with("open") && fd_name(e) == dropped.to_str())
        .expect("open of the dropped file");
    let ofd = open.fd.as_ref().unwrap();
    assert_eq!((ofd.ino, ofd.dev), (Some(meta.ino()), Some(meta.dev())));

    // Exactly one write event for the dropped file: the first at offset 0.
    let writes: Vec<&ReplayEvent> = events
        .iter()
        .filter(|e| {
            matches!(e.event_type.as_str(), "write" | "pwrite") && fd_name(e) == dropped.to_str()
        })
        .collect();
    assert_eq!(writes.len(), 1, "{writes:#?}");
    let w = writes[0];
    assert_eq!(w.event_type, "write");
    let wfd = w.fd.as_ref().unwrap();
    assert_eq!((wfd.ino, wfd.dev), (Some(meta.ino()), Some(meta.dev())));
    assert_eq!(wfd.fd_type.as_deref(), Some("file"));
    let mut expect = b"\x7fELF\x02\x01\x01".to_vec();
    expect.extend(0u8..57);
    let hex: String = expect.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(arg_str(w, "data"), Some(hex.as_str()));
    assert_eq!(w.buffer_hex.as_deref(), Some(hex.as_str()));
    assert_eq!(arg(w, "size"), Some(&ArgValue::Int(107)));
    assert_eq!(w.res, Some(107));

    // writev: the first iovec's bytes.
    let wv = events
        .iter()
        .find(|e| e.event_type == "writev" && fd_name(e) == vec_file.to_str())
        .expect("writev of vec.txt");
    assert_eq!(arg_str(wv, "data"), Some("504b0304"));
    assert_eq!(arg(wv, "size"), Some(&ArgValue::Int(8)));

    // Written through a dup'ed fd: the kernel names the file; the close of fd 77 is named
    // from the fd table (close carries only the number).
    let wd = events
        .iter()
        .find(|e| e.event_type == "write" && fd_name(e) == dup_file.to_str())
        .expect("write through the dup'ed fd");
    assert_eq!(wd.fd.as_ref().unwrap().num, Some(77));
    let close77 = events
        .iter()
        .find(|e| e.event_type == "close" && e.fd.as_ref().and_then(|f| f.num) == Some(77))
        .expect("close(77)");
    assert_eq!(fd_name(close77), dup_file.to_str(), "{close77:?}");

    // The first read at offset 0 of an existing file (capture_reads).
    let r = events
        .iter()
        .find(|e| e.event_type == "read" && fd_name(e) == existing.to_str())
        .expect("first read of existing.txt");
    let rhex = arg_str(r, "data").unwrap();
    assert!(rhex.starts_with("23212f62696e2f7368"), "{rhex}"); // "#!/bin/sh"

    // sendto with a destination: the loopback port we listened on.
    let st = events
        .iter()
        .find(|e| e.event_type == "sendto")
        .expect("sendto event");
    let sfd = st.fd.as_ref().unwrap();
    assert_eq!(sfd.sip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(sfd.sport, Some(u64::from(port)));
    assert_eq!(sfd.l4proto.as_deref(), Some("udp"));
    assert_eq!(st.res, Some(19));
    assert!(sfd.cport.is_some_and(|p| p != 0), "{sfd:?}");

    // Every event survives the recording round trip.
    for e in &events {
        let line = serde_json::to_string(e).unwrap();
        let back = ReplayEvent::parse_line(&line).unwrap_or_else(|err| panic!("{err}: {line}"));
        assert_eq!(&back, e);
    }
}

#[test]
fn sensor_reads_are_off_by_default() {
    if !enabled("sensor_reads_are_off_by_default") {
        return;
    }
    let mut src = start(SensorOptions {
        follow: true,
        ..SensorOptions::default()
    });
    assert!(!src
        .report()
        .syscalls
        .contains(&pyward_sensor::Syscall::Read));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.txt");
    std::fs::write(&f, b"hello").unwrap();
    let mut cmd = Command::new("/bin/cat");
    cmd.arg(&f).stdout(std::process::Stdio::null());
    let events = run_followed(&mut src, cmd);
    src.stop();
    assert!(events
        .iter()
        .any(|e| e.event_type.starts_with("open") && fd_name(e) == f.to_str()));
    assert!(!events.iter().any(|e| e.event_type == "read"));
}

/// The exec of `path` among `events`.
fn exec_of<'a>(events: &'a [ReplayEvent], path: &Path) -> Vec<&'a ReplayEvent> {
    events
        .iter()
        .filter(|e| e.event_type == "execve" && e.proc.exepath.as_deref() == path.to_str())
        .collect()
}

#[test]
fn sensor_exec_identity_of_copied_and_deleted_executables() {
    if !enabled("sensor_exec_identity_of_copied_and_deleted_executables") {
        return;
    }
    let mut src = start(SensorOptions {
        follow: true,
        ..SensorOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    // Others (the unprivileged runs below) must reach the copies.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join("mysh");
    std::fs::copy("/usr/bin/dash", &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let meta = std::fs::metadata(&copy).unwrap();

    // 1. As root: the copy, then deleted by itself and re-executed through /proc/self/exe.
    let mut cmd = Command::new(&copy);
    cmd.arg("-c").arg(format!(
        "rm -f {c}; exec /proc/self/exe -c 'exit 0'",
        c = copy.display()
    ));
    let events = run_followed(&mut src, cmd);
    let first = exec_of(&events, &copy);
    let first = first.first().expect("exec of the copied shell");
    let p = &first.proc;
    assert_eq!(p.exe_ino, Some(meta.ino()));
    assert_eq!(p.exe_dev, Some(meta.dev()));
    let ns = |s: i64, n: i64| (s as u64) * 1_000_000_000 + n as u64;
    assert_eq!(p.exe_ino_ctime, Some(ns(meta.ctime(), meta.ctime_nsec())));
    assert_eq!(p.exe_ino_mtime, Some(ns(meta.mtime(), meta.mtime_nsec())));
    assert_eq!(p.is_exe_writable, Some(true), "root may write it");
    assert_eq!(p.is_exe_upper_layer, Some(false));
    assert_eq!(p.is_exe_from_memfd, Some(false));
    assert_eq!(p.exe_deleted, Some(false));
    let again = events
        .iter()
        .find(|e| e.event_type == "execve" && e.proc.exe_deleted == Some(true))
        .expect("exec of the deleted copy through /proc/self/exe");
    assert_eq!(again.proc.exe_ino, Some(meta.ino()));
    assert!(!copy.exists());

    // 2. As nobody: a root-owned 0755 copy is not writable, a 0777 one is.
    for (mode, writable) in [(0o755, false), (0o777, true)] {
        let c = dir.path().join(format!("sh{mode:o}"));
        std::fs::copy("/usr/bin/dash", &c).unwrap();
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut cmd = Command::new(&c);
        cmd.args(["-c", "exit 0"]).current_dir("/");
        std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
        std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
        let events = run_followed(&mut src, cmd);
        let e = exec_of(&events, &c);
        let e = e.first().expect("exec of the copy as nobody");
        assert_eq!(e.user.uid, Some(65534));
        assert_eq!(e.proc.is_exe_writable, Some(writable), "mode {mode:o}");
    }
    let stats = src.stop();
    assert_eq!(stats.ring_drops, 0, "{stats:?}");
}

#[test]
fn sensor_exec_flags_overlay_upper_and_lower_layers() {
    if !enabled("sensor_exec_flags_overlay_upper_and_lower_layers") {
        return;
    }
    let mut src = start(SensorOptions {
        follow: true,
        ..SensorOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| {
        let p = dir.path().join(n);
        std::fs::create_dir(&p).unwrap();
        p
    };
    let (lower, upper, work, merged) = (d("lower"), d("upper"), d("work"), d("merged"));
    std::fs::copy("/usr/bin/dash", lower.join("lowersh")).unwrap();
    // A private mount namespace: the overlay disappears with the child, nothing to clean up.
    let script = format!(
        "mount -t overlay overlay -o lowerdir={l},upperdir={u},workdir={w} {m} && \
         {m}/lowersh -c 'exit 0' && cp /usr/bin/dash {m}/uppersh && {m}/uppersh -c 'exit 0'",
        l = lower.display(),
        u = upper.display(),
        w = work.display(),
        m = merged.display()
    );
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let events = run_followed(&mut src, cmd);
    src.stop();
    let lower_exec = exec_of(&events, &merged.join("lowersh"));
    let lower_exec = lower_exec.first().expect("exec of the lower-layer copy");
    assert_eq!(lower_exec.proc.is_exe_upper_layer, Some(false));
    let upper_exec = exec_of(&events, &merged.join("uppersh"));
    let upper_exec = upper_exec.first().expect("exec of the upper-layer copy");
    assert_eq!(upper_exec.proc.is_exe_upper_layer, Some(true));
    assert!(upper.join("uppersh").exists());
}

/// `proc.cwd` follows `cd` from the kernel's chdir events, even when user space reads the
/// events after the processes are gone (no /proc/PID/cwd left to read); link, symlink and
/// chdir events carry Falco's arguments.
#[test]
fn sensor_tracks_cwd_through_chdir_and_reports_links() {
    if !enabled("sensor_tracks_cwd_through_chdir_and_reports_links") {
        return;
    }
    let mut src = start(SensorOptions {
        follow: true,
        ..SensorOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let d = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(d.join("sub/x"), b"inert").unwrap();
    let script = format!(
        "cd {d} && touch a && ln -s a sl && ln a hl && cd sub && \
         python3 -c 'import os; os.rename(\"x\", \"y\")'",
        d = d.display()
    );
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]);
    let mut child = spawn_followed(&mut cmd, &mut src).expect("spawn the test child");
    let pid = child.id();
    // Let the whole tree finish before reading a single event: user space then sees the
    // events late, as under load, when /proc no longer has these processes.
    let status = child.wait().expect("wait for the test child");
    assert!(status.success(), "test child failed: {status}");
    let events = collect(&mut src, pid);
    let want = format!("{}/sub/", d.display());
    let chdirs: Vec<(Option<&str>, Option<&str>)> = events
        .iter()
        .filter(|e| e.event_type == "chdir")
        .map(|e| (arg_str(e, "path"), e.proc.cwd.as_deref()))
        .collect();
    assert!(
        chdirs
            .iter()
            .any(|(p, cwd)| p.is_some_and(|p| p.ends_with("sub")) && *cwd == Some(want.as_str())),
        "chdir events (path, new cwd): {chdirs:?}"
    );
    let rename = events
        .iter()
        .find(|e| e.event_type.starts_with("rename") && arg_str(e, "newpath") == Some("y"))
        .unwrap_or_else(|| panic!("no rename event: {:?}", types(&events)));
    assert_eq!(
        rename.proc.cwd.as_deref(),
        Some(want.as_str()),
        "{:?}",
        rename.args
    );
    let sym = events
        .iter()
        .find(|e| e.event_type.starts_with("symlink"))
        .unwrap_or_else(|| panic!("no symlink event: {:?}", types(&events)));
    assert_eq!(arg_str(sym, "target"), Some("a"), "{:?}", sym.args);
    assert_eq!(arg_str(sym, "linkpath"), Some("sl"), "{:?}", sym.args);
    let link = events
        .iter()
        .find(|e| e.event_type.starts_with("link"))
        .unwrap_or_else(|| panic!("no link event: {:?}", types(&events)));
    assert_eq!(arg_str(link, "oldpath"), Some("a"), "{:?}", link.args);
    assert_eq!(arg_str(link, "newpath"), Some("hl"), "{:?}", link.args);
    let touch_cwd = events
        .iter()
        .find(|e| e.event_type == "execve" && e.proc.name.as_deref() == Some("touch"))
        .and_then(|e| e.proc.cwd.clone());
    assert_eq!(touch_cwd, Some(format!("{}/", d.display())));
}

fn types(events: &[ReplayEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// Repeat folding: a loop of read-only opens of one file sends its first open only; opens
/// that can write, of another path (a symlink to the same file included) or of another file
/// are sent; a dup of a folded fd names the file; the closes of folded opens are folded.
/// Without folding, every open is sent.
#[test]
fn repeated_read_only_opens_are_folded_in_the_kernel_and_nothing_else() {
    if !enabled("repeated_read_only_opens_are_folded_in_the_kernel_and_nothing_else") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("config.ini");
    let b = dir.path().join("other.ini");
    let link = dir.path().join("link-to-config");
    std::fs::write(&a, b"[main]\nkey = value\n").unwrap();
    std::fs::write(&b, b"[other]\n").unwrap();
    std::os::unix::fs::symlink(&a, &link).unwrap();
    let (a, b, link) = (
        a.to_str().unwrap().to_owned(),
        b.to_str().unwrap().to_owned(),
        link.to_str().unwrap().to_owned(),
    );
    let script = format!(
        r#"
import os
for i in range(50):
    fd = os.open({a:?}, os.O_RDONLY)
    os.read(fd, 8)
    os.close(fd)
fd = os.open({a:?}, os.O_RDONLY)
os.dup2(fd, 77)
os.close(fd)
os.close(77)
for i in range(5):
    os.close(os.open({a:?}, os.O_RDWR))
for i in range(5):
    os.close(os.open({b:?}, os.O_RDONLY))
os.close(os.open({link:?}, os.O_RDONLY))
"#
    );
    let opens_of = |events: &[ReplayEvent], path: &str, flag: &str| {
        events
            .iter()
            .filter(|e| e.event_type == "openat" && fd_name(e) == Some(path))
            .filter(|e| arg_str(e, "flags").is_some_and(|f| f.contains(flag)))
            .count()
    };

    for fold in [true, false] {
        let mut src = start(SensorOptions {
            follow: true,
            capture_reads: true,
            fold_repeats: fold,
            ..SensorOptions::default()
        });
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-c", &script]);
        let events = run_followed(&mut src, cmd);
        let stats = src.stop();
        assert_eq!(stats.ring_drops, 0, "{stats:?}");
        let read_a = opens_of(&events, &a, "O_RDONLY");
        let link_opens = events
            .iter()
            .filter(|e| e.event_type == "openat" && arg_str(e, "name") == Some(link.as_str()))
            .count();
        // Never folded: opens that can write, and the first open of another path.
        assert_eq!(opens_of(&events, &a, "O_RDWR"), 5, "fold={fold}");
        assert_eq!(
            link_opens, 1,
            "fold={fold}: the symlink is another raw path"
        );
        let dup = events
            .iter()
            .find(|e| e.event_type == "dup2")
            .expect("the dup2 event");
        assert_eq!(fd_name(dup), Some(a.as_str()), "fold={fold}: {dup:?}");
        // Closes of `a` (named from the fd table, so only those of fds user space knows).
        let closes = events
            .iter()
            .filter(|e| e.event_type == "close" && fd_name(e) == Some(a.as_str()))
            .count();
        if fold {
            // The loop runs well within the one-second window; allow one window turn.
            assert!(
                (1..=2).contains(&read_a),
                "{read_a} read-only opens of a sent"
            );
            assert!(opens_of(&events, &b, "O_RDONLY") <= 2);
            assert!(stats.folded_opens >= 52, "{stats:?}");
            assert_eq!(stats.folded_opens, stats.folded_closes, "{stats:?}");
            // The sent read-only opens, the five O_RDWR ones and the dup's fd 77.
            assert!(closes <= read_a + 6, "{closes} closes of a sent");
        } else {
            assert_eq!(read_a, 51);
            assert_eq!(opens_of(&events, &b, "O_RDONLY"), 5);
            assert_eq!((stats.folded_opens, stats.folded_closes), (0, 0));
            assert_eq!(
                closes,
                50 + 1 + 5 + 1,
                "closes of a: loop, dup source, O_RDWR, fd 77"
            );
        }
    }
}
