//! DirTree on real folders: the walk, and reads that stay inside the root whatever the symlinks,
//! fifos and file names in it. Reads are checked both through the kernel (`openat2`) and through
//! the portable resolver used where the kernel cannot.

use pyward_core::Warning;
use pyward_inventory::dir::DirTree;
use pyward_inventory::{EntryKind, FileTree, ReadError};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

fn write(path: &Path, content: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, content).unwrap();
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}", path.display());
}

fn open(root: &Path) -> (DirTree, Vec<Warning>) {
    let mut w = Vec::new();
    let t = DirTree::open(root, &mut w).unwrap();
    (t, w)
}

/// The same tree twice: reads resolved by the kernel and by hand.
fn both(root: &Path) -> [(DirTree, Vec<Warning>); 2] {
    let kernel = open(root);
    let portable = open(root);
    portable.0.force_portable_resolution();
    [kernel, portable]
}

#[test]
fn walk_lists_everything_sorted_without_following_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let outside = tmp.path().join("outside");
    write(&outside.join("secret.txt"), b"host secret");
    write(&root.join("lib/site-packages/six.py"), b"print('six')\n");
    write(&root.join("bin/tool"), b"#!/bin/sh\n");
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    symlink(&outside, root.join("lib/escape")).unwrap();
    symlink("site-packages/six.py", root.join("lib/six-link")).unwrap();

    for (t, w) in both(&root) {
        assert!(w.is_empty(), "{w:?}");
        let paths: Vec<&str> = t.entries().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/bin",
                "/bin/tool",
                "/lib",
                "/lib/escape",
                "/lib/site-packages",
                "/lib/site-packages/six.py",
                "/lib/six-link",
            ]
        );
        let tool = t.entry("/bin/tool").unwrap();
        assert_eq!(tool.kind, EntryKind::File);
        assert_eq!(tool.mode, 0o4755);
        assert_eq!(tool.size, 10);
        assert_eq!(t.entry("/lib").unwrap().kind, EntryKind::Dir);
        assert_eq!(
            t.entry("/lib/escape").unwrap().kind,
            EntryKind::Symlink(outside.display().to_string())
        );
        // Relative symlinks inside the root resolve.
        assert_eq!(&*t.read("/lib/six-link", 100).unwrap(), b"print('six')\n");
        // The symlinked outside folder is neither listed nor readable.
        assert!(!paths.iter().any(|p| p.contains("secret")));
        assert!(matches!(
            t.read("/lib/escape/secret.txt", 100),
            Err(ReadError::NotFound)
        ));
        assert_eq!(
            t.display_path("/lib/site-packages/six.py"),
            "lib/site-packages/six.py"
        );
        assert!(matches!(t.read("/lib", 100), Err(ReadError::NotAFile)));
        assert!(matches!(t.read("/", 100), Err(ReadError::NotAFile)));
    }
}

#[test]
fn symlinks_never_leave_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let secret = tmp.path().join("secret.txt");
    write(&secret, b"host secret");
    write(&root.join("etc/passwd"), b"inside passwd");
    write(&root.join("a/b/file.txt"), b"inside file");
    // Absolute targets resolve inside the root, like in a chroot.
    symlink("/etc/passwd", root.join("evil")).unwrap();
    symlink(&secret, root.join("abs-secret")).unwrap();
    // `..` above the root stays at the root.
    let up = format!("../../../../../../../../..{}", secret.display());
    symlink(&up, root.join("a/b/up-secret")).unwrap();
    symlink(
        "../../../../../../../etc/passwd",
        root.join("a/b/up-passwd"),
    )
    .unwrap();
    symlink("../b/./file.txt", root.join("a/b/rel")).unwrap();
    symlink("/a", root.join("adir")).unwrap();
    // An absolute target in a subfolder also starts again at the root.
    symlink("/etc/passwd", root.join("a/b/abs-passwd")).unwrap();

    for (t, _) in both(&root) {
        assert_eq!(&*t.read("/evil", 100).unwrap(), b"inside passwd");
        assert_eq!(&*t.read("/a/b/up-passwd", 100).unwrap(), b"inside passwd");
        assert_eq!(&*t.read("/a/b/abs-passwd", 100).unwrap(), b"inside passwd");
        assert_eq!(
            &*t.read("/adir/b/abs-passwd", 100).unwrap(),
            b"inside passwd"
        );
        assert!(matches!(
            t.read("/abs-secret", 100),
            Err(ReadError::NotFound)
        ));
        assert!(matches!(
            t.read("/a/b/up-secret", 100),
            Err(ReadError::NotFound)
        ));
        assert_eq!(&*t.read("/a/b/rel", 100).unwrap(), b"inside file");
        assert_eq!(&*t.read("/adir/b/file.txt", 100).unwrap(), b"inside file");
        // A requested path that climbs above the root is refused outright.
        assert!(matches!(
            t.read("/../secret.txt", 100),
            Err(ReadError::EscapesRoot)
        ));
        assert!(matches!(
            t.read("../../etc/passwd", 100),
            Err(ReadError::EscapesRoot)
        ));
        // A file used as a folder.
        assert!(matches!(
            t.read("/etc/passwd/x", 100),
            Err(ReadError::NotFound)
        ));
    }

    // Without an etc/passwd in the root, the host's is never read.
    fs::remove_file(root.join("etc/passwd")).unwrap();
    for (t, _) in both(&root) {
        assert!(matches!(t.read("/evil", 1 << 20), Err(ReadError::NotFound)));
        assert!(matches!(
            t.read("/a/b/up-passwd", 1 << 20),
            Err(ReadError::NotFound)
        ));
    }
}

#[test]
fn symlink_loops_fail_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    symlink("loop-b", root.join("loop-a")).unwrap();
    symlink("loop-a", root.join("loop-b")).unwrap();
    symlink("self", root.join("self")).unwrap();
    symlink("dir/self-dir/x", root.join("dirloop")).unwrap();
    fs::create_dir(root.join("dir")).unwrap();
    symlink("../dirloop", root.join("dir/self-dir")).unwrap();

    for (t, w) in both(root) {
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(t.entries().len(), 6);
        for p in ["/loop-a", "/loop-b", "/self", "/dirloop", "/dir/self-dir"] {
            let r = t.read(p, 100);
            assert!(matches!(r, Err(ReadError::SymlinkLoop)), "{p}: {r:?}");
        }
    }
}

#[test]
fn fifos_are_listed_and_never_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    mkfifo(&root.join("pipe"));
    symlink("pipe", root.join("to-pipe")).unwrap();
    write(&root.join("ok.txt"), b"ok");

    let start = Instant::now();
    for (t, _) in both(root) {
        assert_eq!(t.entry("/pipe").unwrap().kind, EntryKind::Special);
        assert!(matches!(t.read("/pipe", 100), Err(ReadError::NotAFile)));
        assert!(matches!(t.read("/to-pipe", 100), Err(ReadError::NotAFile)));
        assert_eq!(&*t.read("/ok.txt", 100).unwrap(), b"ok");
    }
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "reading a fifo blocked"
    );
}

#[test]
fn invalid_utf8_names_are_listed_lossily_and_stay_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let bad_file = OsStr::from_bytes(b"bad\xff.txt");
    let bad_dir = OsStr::from_bytes(b"d\xfe");
    write(&root.join(bad_file), b"bad name content");
    write(&root.join(bad_dir).join("inner.txt"), b"inner content");

    for (t, w) in both(root) {
        assert_eq!(w.len(), 2, "one warning per bad name: {w:?}");
        assert!(w.iter().all(|w| w.message.contains("UTF-8")), "{w:?}");
        let paths: Vec<&str> = t.entries().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["/bad\u{fffd}.txt", "/d\u{fffd}", "/d\u{fffd}/inner.txt"]
        );
        assert_eq!(
            &*t.read("/bad\u{fffd}.txt", 100).unwrap(),
            b"bad name content"
        );
        assert_eq!(
            &*t.read("/d\u{fffd}/inner.txt", 100).unwrap(),
            b"inner content"
        );
        assert_eq!(t.raw_path("/bad\u{fffd}.txt"), Some(Path::new(bad_file)));
    }
}

#[test]
fn read_limits_are_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("f"), &[b'x'; 100]);
    for (t, _) in both(tmp.path()) {
        assert!(matches!(
            t.read("/f", 99),
            Err(ReadError::TooLarge {
                size: 100,
                limit: 99
            })
        ));
        assert_eq!(t.read("/f", 100).unwrap().len(), 100);
        assert!(matches!(t.read("/missing", 100), Err(ReadError::NotFound)));
    }
}

#[test]
fn single_file_lists_one_file_and_reads_its_neighbours() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    write(&dir.join("requirements.txt"), b"-r common.txt\n");
    write(&dir.join("common.txt"), b"six\n");
    write(&dir.join("sub/more.txt"), b"idna\n");

    let mut w = Vec::new();
    let given = dir.join("requirements.txt");
    for portable in [false, true] {
        let t = DirTree::single_file(&given, &mut w).unwrap();
        if portable {
            t.force_portable_resolution();
        }
        assert!(w.is_empty());
        let paths: Vec<&str> = t.entries().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/requirements.txt"]);
        assert_eq!(
            &*t.read("/requirements.txt", 100).unwrap(),
            b"-r common.txt\n"
        );
        assert_eq!(&*t.read("/common.txt", 100).unwrap(), b"six\n");
        assert_eq!(&*t.read("/sub/more.txt", 100).unwrap(), b"idna\n");
        assert_eq!(
            t.display_path("/requirements.txt"),
            given.display().to_string()
        );
        assert_eq!(
            t.display_path("/common.txt"),
            dir.join("common.txt").display().to_string()
        );
    }
    assert!(DirTree::single_file(&dir, &mut w).is_err());
    assert!(DirTree::single_file(&dir.join("nope.txt"), &mut w).is_err());
    assert!(DirTree::open(&given, &mut w).is_err());
}

#[test]
fn unreadable_folder_is_a_warning() {
    // Root reads every folder whatever its mode: check the premise before asserting.
    let tmp = tempfile::tempdir().unwrap();
    let locked = tmp.path().join("locked");
    write(&locked.join("x.txt"), b"x");
    write(&tmp.path().join("open.txt"), b"y");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let premise = fs::read_dir(&locked).is_err();
    let (t, w) = open(tmp.path());
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(t.entry("/open.txt").is_some());
    assert!(t.entry("/locked").is_some());
    if premise {
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("cannot list this folder"), "{w:?}");
        assert!(t.entry("/locked/x.txt").is_none());
    } else {
        assert!(w.is_empty(), "{w:?}");
        assert!(t.entry("/locked/x.txt").is_some());
    }
}

#[test]
fn walks_a_wide_and_deep_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let mut expected = 0;
    for i in 0..30 {
        for j in 0..10 {
            write(&tmp.path().join(format!("d{i}/e{j}/f.py")), b"pass\n");
            expected += 2;
        }
        expected += 1;
    }
    let mut deep = tmp.path().to_path_buf();
    for _ in 0..100 {
        deep.push("n");
        expected += 1;
    }
    fs::create_dir_all(&deep).unwrap();
    let (t, w) = open(tmp.path());
    assert!(w.is_empty());
    assert_eq!(t.entries().len(), expected);
    let paths: Vec<&str> = t.entries().iter().map(|e| e.path.as_str()).collect();
    assert!(paths.windows(2).all(|p| p[0] < p[1]), "sorted and unique");
}
