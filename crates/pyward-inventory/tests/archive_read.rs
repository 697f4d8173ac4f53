//! Package archives: wheels, sdists (.tar.gz and .zip) and eggs, good and hostile.

use pyward_core::{ArchiveKind, PackageSource, Warning};
use pyward_inventory::archive;
use pyward_inventory::tree::Limits;
use pyward_inventory::{EntryKind, FileTree, MemTree};
use pyward_testkit::image::{Compression, Layer};
use pyward_testkit::wheel::WheelSpec;
use std::io::Write;
use std::path::{Path, PathBuf};

fn open(path: &Path, limits: &Limits) -> (Result<MemTree, pyward_core::Error>, Vec<Warning>) {
    let kind = archive::archive_kind(path).expect("archive kind from the name");
    let mut w = Vec::new();
    let r = archive::open(path, kind, limits, &mut w);
    (r, w)
}

fn err_text(r: Result<MemTree, pyward_core::Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// A zip with the given members (name → content), deflated.
fn zip_file(path: &Path, members: &[(&str, &[u8])]) -> PathBuf {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in members {
        z.start_file(*name, opts).unwrap();
        z.write_all(content).unwrap();
    }
    z.finish().unwrap();
    path.to_path_buf()
}

#[test]
fn wheel_described_from_its_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let spec = WheelSpec::new("jeIlyfish", "0.5.1")
        .requires("requests>=2")
        .file("jeIlyfish/__init__.py", "")
        .file("jeIlyfish/_jellyfish.py", "# inert");
    let p = spec.write_to(dir.path()).unwrap();
    let (tree, warnings) = open(&p, &Limits::default());
    let tree = tree.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let mut w = Vec::new();
    let pkg = archive::describe(&tree, ArchiveKind::Wheel, &mut w).expect("package");
    assert_eq!(pkg.name, "jeIlyfish");
    assert_eq!(pkg.version.as_deref(), Some("0.5.1"));
    assert_eq!(pkg.source, PackageSource::Archive(ArchiveKind::Wheel));
    assert_eq!(pkg.requires, vec!["requests>=2"]);
    assert_eq!(pkg.location.path, "jeIlyfish-0.5.1-py3-none-any.whl");
    assert!(pkg.files.contains(&"/jeIlyfish/_jellyfish.py".to_string()));
    assert_eq!(
        &*tree.read("/jeIlyfish/_jellyfish.py", 100).unwrap(),
        b"# inert"
    );
    assert_eq!(
        tree.display_path("/jeIlyfish/_jellyfish.py"),
        "jeIlyfish-0.5.1-py3-none-any.whl!jeIlyfish/_jellyfish.py"
    );
}

#[test]
fn sdists_tar_gz_and_zip() {
    let dir = tempfile::tempdir().unwrap();
    let spec = WheelSpec::new("python3-dateutil", "2.8.1")
        .requires("jeIlyfish")
        .file("dateutil/__init__.py", "");
    let p = spec.write_sdist_to(dir.path()).unwrap();
    let (tree, _) = open(&p, &Limits::default());
    let tree = tree.unwrap();
    let mut w = Vec::new();
    let pkg = archive::describe(&tree, ArchiveKind::Sdist, &mut w).expect("package");
    assert_eq!(pkg.name, "python3-dateutil");
    assert_eq!(pkg.requires, vec!["jeIlyfish"]);
    assert!(tree.entry("/python3_dateutil-2.8.1/setup.py").is_some());

    let z = zip_file(
        &dir.path().join("six-1.16.0.zip"),
        &[
            (
                "six-1.16.0/PKG-INFO",
                b"Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\n",
            ),
            ("six-1.16.0/six.py", b""),
        ],
    );
    let (tree, _) = open(&z, &Limits::default());
    let pkg = archive::describe(&tree.unwrap(), ArchiveKind::Sdist, &mut w).expect("package");
    assert_eq!(
        (pkg.name.as_str(), pkg.version.as_deref()),
        ("six", Some("1.16.0"))
    );

    // Only an egg-info PKG-INFO deeper down.
    let z = zip_file(
        &dir.path().join("odd-1.0.zip"),
        &[
            ("src/odd.egg-info/PKG-INFO", b"Name: odd\nVersion: 1.0\n"),
            ("src/odd.py", b""),
        ],
    );
    let (tree, _) = open(&z, &Limits::default());
    let pkg = archive::describe(&tree.unwrap(), ArchiveKind::Sdist, &mut w).expect("package");
    assert_eq!(pkg.name, "odd");
}

#[test]
fn egg_and_missing_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let egg = zip_file(
        &dir.path().join("demo-1.0-py3.11.egg"),
        &[
            ("EGG-INFO/PKG-INFO", b"Name: demo\nVersion: 1.0\n"),
            ("demo/__init__.py", b""),
        ],
    );
    let (tree, _) = open(&egg, &Limits::default());
    let mut w = Vec::new();
    let pkg = archive::describe(&tree.unwrap(), ArchiveKind::Egg, &mut w).expect("package");
    assert_eq!(pkg.source, PackageSource::Archive(ArchiveKind::Egg));
    assert_eq!(pkg.name, "demo");

    let bare = zip_file(
        &dir.path().join("bare-1.0-py3-none-any.whl"),
        &[("bare.py", b"")],
    );
    let (tree, _) = open(&bare, &Limits::default());
    let mut w = Vec::new();
    assert!(archive::describe(&tree.unwrap(), ArchiveKind::Wheel, &mut w).is_none());
    assert!(w.iter().any(|w| w.message.contains("dist-info")), "{w:?}");
}

#[test]
fn hostile_members_are_skipped_or_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // tar.gz with traversal, absolute, invalid UTF-8 and a symlink out of the archive.
    let blob = Layer::new()
        .compression(Compression::Gzip)
        .file("evil-1.0/PKG-INFO", "Name: evil\nVersion: 1.0\n")
        .raw_file(b"../../../tmp/pyward-archive-evil", "x")
        .raw_file(b"/abs.py", "x")
        .raw_file(b"evil-1.0/\xfe.py", "x")
        .symlink("evil-1.0/link", "/etc/passwd")
        .to_blob()
        .unwrap();
    let p = dir.path().join("evil-1.0.tar.gz");
    std::fs::write(&p, blob).unwrap();
    let (tree, warnings) = open(&p, &Limits::default());
    let tree = tree.unwrap();
    let text = format!("{warnings:?}");
    assert!(
        text.contains("path traversal") && text.contains("pyward-archive-evil"),
        "{text}"
    );
    assert!(text.contains("UTF-8"), "{text}");
    assert!(tree.entry("/abs.py").is_some());
    assert_eq!(
        tree.entry("/evil-1.0/link").map(|e| e.kind.clone()),
        Some(EntryKind::Symlink("/etc/passwd".into()))
    );
    assert!(tree.read("/evil-1.0/link", 100).is_err());
    assert!(!tree
        .entries()
        .iter()
        .any(|e| e.path.contains("pyward-archive-evil")));

    // Zip with a traversal name and a symlink member.
    let zp = dir.path().join("z-1.0-py3-none-any.whl");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zp).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        z.start_file("../../zip-evil.py", opts).unwrap();
        z.write_all(b"x").unwrap();
        z.add_symlink("z/link", "../../../../etc/shadow", opts)
            .unwrap();
        z.finish().unwrap();
    }
    let (tree, warnings) = open(&zp, &Limits::default());
    let tree = tree.unwrap();
    assert!(format!("{warnings:?}").contains("zip-evil.py"));
    assert_eq!(
        tree.entry("/z/link").map(|e| e.kind.clone()),
        Some(EntryKind::Symlink("../../../../etc/shadow".into()))
    );
}

#[test]
fn bombs_truncation_and_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 24 << 20];
    let z = zip_file(
        &dir.path().join("bomb-1.0-py3-none-any.whl"),
        &[("bomb.bin", &zeros)],
    );
    // A small member far above the ratio (pillow ships a 2 MB .so at 223:1) is read, not
    // refused; past 16 MiB the ratio is judged.
    let padded = zip_file(
        &dir.path().join("padded-1.0-py3-none-any.whl"),
        &[
            ("padded/lib.so", &zeros[..2 << 20]),
            ("padded/__init__.py", b"X = 1\n"),
        ],
    );
    let (tree, _) = open(&padded, &Limits::default());
    assert!(tree.is_ok(), "a 2 MiB member at ~1000:1 is no bomb");
    let tight = Limits {
        max_ratio: 50,
        ..Limits::default()
    };
    let msg = err_text(open(&z, &tight).0);
    assert!(
        msg.contains("bomb-1.0-py3-none-any.whl") && msg.contains("bomb"),
        "{msg}"
    );
    let msg = err_text(
        open(
            &z,
            &Limits {
                max_total_uncompressed: 1 << 20,
                ..Limits::default()
            },
        )
        .0,
    );
    assert!(msg.contains("limit"), "{msg}");
    let msg = err_text(
        open(
            &z,
            &Limits {
                max_entries: 0,
                ..Limits::default()
            },
        )
        .0,
    );
    assert!(msg.contains("members"), "{msg}");

    let tgz = dir.path().join("bomb-1.0.tar.gz");
    std::fs::write(
        &tgz,
        Layer::new()
            .file("bomb-1.0/zeros", zeros.clone())
            .to_blob()
            .unwrap(),
    )
    .unwrap();
    let msg = err_text(open(&tgz, &tight).0);
    assert!(
        msg.contains("bomb-1.0.tar.gz") && msg.contains("bomb"),
        "{msg}"
    );

    // Truncated wheel and sdist.
    let spec = WheelSpec::new("t", "1.0").file(
        "t/data.py",
        (0..50_000u32).map(|i| (i % 97) as u8).collect::<Vec<_>>(),
    );
    let whl = spec.write_to(dir.path()).unwrap();
    let bytes = std::fs::read(&whl).unwrap();
    std::fs::write(&whl, &bytes[..bytes.len() / 2]).unwrap();
    let msg = err_text(open(&whl, &Limits::default()).0);
    assert!(
        msg.contains("t-1.0-py3-none-any.whl") && msg.contains("zip"),
        "{msg}"
    );
    let sd = spec.write_sdist_to(dir.path()).unwrap();
    let bytes = std::fs::read(&sd).unwrap();
    std::fs::write(&sd, &bytes[..bytes.len() / 2]).unwrap();
    let msg = err_text(open(&sd, &Limits::default()).0);
    assert!(
        msg.contains("t-1.0.tar.gz") && msg.contains("truncated"),
        "{msg}"
    );

    let bz = dir.path().join("x-1.0.tar.bz2");
    std::fs::write(&bz, b"BZh91AY&SY").unwrap();
    assert!(err_text(open(&bz, &Limits::default()).0).contains("repack"));
    let junk = dir.path().join("j-1.0-py3-none-any.whl");
    std::fs::write(&junk, b"not a zip at all").unwrap();
    assert!(err_text(open(&junk, &Limits::default()).0).contains("j-1.0-py3-none-any.whl"));
}

#[test]
fn inventory_of_a_wheel() {
    let dir = tempfile::tempdir().unwrap();
    let p = WheelSpec::new("python3-dateutil", "2.8.1")
        .requires("jeIlyfish")
        .file("dateutil/__init__.py", "")
        .write_to(dir.path())
        .unwrap();
    let inv = pyward_inventory::inventory(&p, &pyward_inventory::Options::default()).unwrap();
    let first = inv.packages.first().expect("the archive's package");
    assert_eq!(first.name, "python3-dateutil");
    assert_eq!(first.source, PackageSource::Archive(ArchiveKind::Wheel));
    assert!(!inv.packages.iter().any(|p| p.source.is_installed()));
}

/// Zip members no check wants are listed (name, declared size) but never decompressed: a
/// compiled-extension wheel costs what its Python files cost, and a bomb in a member nothing
/// reads is harmless. A wanted member is still read and judged by the limits.
#[test]
fn unwanted_zip_members_are_listed_not_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![0u8; 24 << 20];
    let z = zip_file(
        &dir.path().join("ext-1.0-cp311-cp311-linux_x86_64.whl"),
        &[
            ("ext/_native.so", &zeros),
            ("ext/__init__.py", b"from ._native import *\n"),
        ],
    );
    let tight = Limits {
        max_ratio: 50,
        ..Limits::default()
    };
    let wants_py = |p: &str, _size: u64| p.ends_with(".py");
    let mut w = Vec::new();
    let tree = archive::open_keeping(&z, ArchiveKind::Wheel, &tight, &wants_py, &mut w)
        .expect("the unwanted bomb-like member is not decompressed");
    let so = tree
        .entries()
        .iter()
        .find(|e| e.path == "/ext/_native.so")
        .expect("listed");
    assert_eq!((so.kind.clone(), so.size), (EntryKind::File, 24 << 20));
    assert!(tree.read("/ext/_native.so", 1 << 30).is_err(), "no content");
    assert_eq!(
        &*tree.read("/ext/__init__.py", 100).unwrap(),
        b"from ._native import *\n"
    );
    // Wanted, the same member is judged by the limits as before.
    let wants_all = |_: &str, _: u64| true;
    let e = err_text(archive::open_keeping(
        &z,
        ArchiveKind::Wheel,
        &tight,
        &wants_all,
        &mut w,
    ));
    assert!(e.contains("bomb"), "{e}");
}

#[test]
fn many_member_zips_are_read_in_parallel_with_the_same_result() {
    // Enough members to be split into runs across threads, and a member that climbs out in the
    // middle: entries, contents and warnings must come out as one thread reads them.
    let dir = tempfile::tempdir().unwrap();
    let mut members: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            let body = format!("X = {i}\n").repeat(1 + i % 7);
            (format!("many/m{i:03}.py"), body.into_bytes())
        })
        .collect();
    members.insert(150, ("../escape.py".into(), b"bad".to_vec()));
    members.push(("many/last.py".into(), b"LAST = True\n".to_vec()));
    let refs: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let z = zip_file(&dir.path().join("many-1.0-py3-none-any.whl"), &refs);
    let (tree, warnings) = open(&z, &Limits::default());
    let tree = tree.expect("a plain zip opens");
    let files: Vec<&str> = tree
        .entries()
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .map(|e| e.path.as_str())
        .collect();
    let mut expected: Vec<String> = members
        .iter()
        .filter(|(n, _)| !n.starts_with(".."))
        .map(|(n, _)| format!("/{n}"))
        .collect();
    expected.sort();
    assert_eq!(files, expected, "every member listed once");
    assert_eq!(
        &tree.read("/many/m123.py", 1 << 20).unwrap()[..],
        &members[123].1[..]
    );
    assert_eq!(
        &tree.read("/many/last.py", 1 << 20).unwrap()[..],
        b"LAST = True\n"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].to_string().contains("escape.py"),
        "{warnings:?}"
    );

    // The total limit holds for the whole archive, not for each run read on its own thread:
    // 300 small members over a limit any single run stays under.
    let total: u64 = members.iter().map(|(_, b)| b.len() as u64).sum();
    let msg = err_text(
        open(
            &z,
            &Limits {
                max_total_uncompressed: total / 2,
                ..Limits::default()
            },
        )
        .0,
    );
    assert!(msg.contains("limit"), "{msg}");
}
