//! Every other form of installed package (egg-info folder and file, unzipped and zipped eggs,
//! conda-meta) and the bad inputs: huge, corrupt, missing, hostile metadata, zip bombs and
//! truncated eggs. All built as real files in the test.

use pyward_core::{InstalledKind, Package, PackageSource, Warning};
use pyward_inventory::dir::DirTree;
use pyward_inventory::installed::{self, METADATA_LIMIT};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;

const SP: &str = "lib/python3.11/site-packages";

fn write(path: &Path, content: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap();
    }
    fs::write(path, content).unwrap();
}

fn pkg_info(name: &str, version: &str) -> Vec<u8> {
    format!("Metadata-Version: 1.1\nName: {name}\nVersion: {version}\nSummary: test\n\nbody\n")
        .into_bytes()
}

fn zip_bytes(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in members {
            z.start_file(*name, opts).unwrap();
            z.write_all(content).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

fn scan(root: &Path) -> (Vec<Package>, Vec<Warning>) {
    let mut w = Vec::new();
    let tree = DirTree::open(root, &mut w).unwrap();
    let p = installed::catalog(&tree, &mut w);
    (p, w)
}

fn find<'a>(pkgs: &'a [Package], name: &str) -> &'a Package {
    pkgs.iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} not found in {pkgs:?}"))
}

fn warning_about<'a>(w: &'a [Warning], input_part: &str) -> &'a Warning {
    w.iter()
        .find(|w| w.input.contains(input_part))
        .unwrap_or_else(|| panic!("no warning about {input_part}: {w:?}"))
}

#[test]
fn egg_info_egg_and_conda_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let sp = root.join(SP);
    // setuptools egg-info folder with installed-files.txt and requires.txt.
    let ei = sp.join("foo_bar-1.0-py3.11.egg-info");
    write(&ei.join("PKG-INFO"), &pkg_info("foo-bar", "1.0"));
    write(
        &ei.join("installed-files.txt"),
        b"../foo_bar/__init__.py\n../../../../bin/foo\n\n",
    );
    write(&ei.join("top_level.txt"), b"foo_bar\n");
    write(&ei.join("requires.txt"), b"six>=1\n\n[test]\npytest\n");
    write(&sp.join("foo_bar/__init__.py"), b"");
    // distutils single-file egg-info, and Python 2's own which is skipped.
    write(
        &sp.join("distpkg-2.0.egg-info"),
        &pkg_info("DistPkg", "2.0"),
    );
    write(
        &root.join("lib/python2.7/lib-dynload/Python-2.7.egg-info"),
        &pkg_info("Python", "2.7"),
    );
    // Unzipped egg.
    let egg = sp.join("unzipped-3.0-py3.11.egg");
    write(&egg.join("EGG-INFO/PKG-INFO"), &pkg_info("unzipped", "3.0"));
    write(&egg.join("EGG-INFO/top_level.txt"), b"unzipped\n");
    write(&egg.join("unzipped/__init__.py"), b"");
    // Zipped egg.
    let zipped = zip_bytes(&[
        ("EGG-INFO/PKG-INFO", &pkg_info("Zipped", "4.0")),
        ("EGG-INFO/top_level.txt", b"zipped\n"),
        ("EGG-INFO/requires.txt", b"idna\n"),
        ("zipped/__init__.py", b""),
    ]);
    write(&sp.join("Zipped-4.0-py3.11.egg"), &zipped);
    // conda-meta.
    write(
        &root.join("conda-meta/numpy-1.26.0-py311_0.json"),
        br#"{"name": "numpy", "version": "1.26.0", "license": "BSD-3-Clause",
            "files": ["lib/python3.11/site-packages/numpy/__init__.py", 5, "bin/f2py"]}"#,
    );
    write(&root.join("conda-meta/history"), b"==> 2024 <==\n");
    // dist-info installed from VCS.
    let di = sp.join("vcs_pkg-0.1.dist-info");
    write(&di.join("METADATA"), &pkg_info("vcs-pkg", "0.1"));
    write(
        &di.join("direct_url.json"),
        br#"{"url": "https://example.invalid/vcs.git", "vcs_info": {"vcs": "git", "commit_id": "abc"}}"#,
    );
    write(&di.join("INSTALLER"), b"uv\n");

    let (pkgs, w) = scan(root);
    assert!(w.is_empty(), "{w:?}");
    let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(pkgs.len(), 6, "{names:?}");

    let foo = find(&pkgs, "foo-bar");
    assert_eq!(foo.source, PackageSource::Installed(InstalledKind::EggInfo));
    assert_eq!(foo.version.as_deref(), Some("1.0"));
    assert_eq!(
        foo.files,
        vec!["/bin/foo".to_string(), format!("/{SP}/foo_bar/__init__.py")]
    );
    assert_eq!(foo.top_level, vec!["foo_bar"]);
    assert_eq!(foo.requires, vec!["six>=1", "pytest ; extra == \"test\""]);
    assert_eq!(
        foo.location.path,
        format!("{SP}/foo_bar-1.0-py3.11.egg-info/PKG-INFO")
    );

    let dist = find(&pkgs, "DistPkg");
    assert_eq!(
        dist.source,
        PackageSource::Installed(InstalledKind::EggInfoFile)
    );
    assert_eq!(dist.location.path, format!("{SP}/distpkg-2.0.egg-info"));

    let unz = find(&pkgs, "unzipped");
    assert_eq!(unz.source, PackageSource::Installed(InstalledKind::Egg));
    assert_eq!(unz.top_level, vec!["unzipped"]);
    assert!(unz.files.contains(&format!(
        "/{SP}/unzipped-3.0-py3.11.egg/unzipped/__init__.py"
    )));

    let zp = find(&pkgs, "Zipped");
    assert_eq!(zp.source, PackageSource::Installed(InstalledKind::Egg));
    assert_eq!(zp.version.as_deref(), Some("4.0"));
    assert_eq!(zp.top_level, vec!["zipped"]);
    assert_eq!(zp.requires, vec!["idna"]);
    assert_eq!(zp.location.path, format!("{SP}/Zipped-4.0-py3.11.egg"));

    let np = find(&pkgs, "numpy");
    assert_eq!(np.source, PackageSource::Installed(InstalledKind::Conda));
    assert_eq!(
        np.files,
        vec!["/bin/f2py".to_string(), format!("/{SP}/numpy/__init__.py")]
    );
    assert_eq!(np.license.as_deref(), Some("BSD-3-Clause"));

    let vcs = find(&pkgs, "vcs-pkg");
    assert_eq!(
        vcs.direct_url.as_deref(),
        Some("https://example.invalid/vcs.git")
    );
    assert_eq!(vcs.installer.as_deref(), Some("uv"));
    assert!(vcs.files.is_empty());
}

#[test]
fn bad_metadata_is_a_warning_and_the_package_is_still_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let sp = root.join(SP);
    // Huge METADATA (sparse file, so the test stays cheap): never read.
    let huge = sp.join("huge-1.0.dist-info/METADATA");
    write(&huge, b"");
    fs::File::options()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(METADATA_LIMIT + 1)
        .unwrap();
    // Corrupt METADATA, missing METADATA, invalid UTF-8 in METADATA.
    write(
        &sp.join("corrupt-2.0.dist-info/METADATA"),
        b"\x00\x01\xff garbage, no headers",
    );
    fs::create_dir_all(sp.join("missing-3.0.dist-info")).unwrap();
    write(
        &sp.join("utf-4.0.dist-info/METADATA"),
        b"Name: utf\xff8\nVersion: 4.0\n",
    );
    // METADATA that is a fifo (must not hang) and one pointing at the host's /etc/passwd.
    fs::create_dir_all(sp.join("fifo-5.0.dist-info")).unwrap();
    let fifo = sp.join("fifo-5.0.dist-info/METADATA");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    fs::create_dir_all(sp.join("evil-6.0.dist-info")).unwrap();
    symlink("/etc/passwd", sp.join("evil-6.0.dist-info/METADATA")).unwrap();
    // Corrupt RECORD: good rows are still attributed.
    let rec = sp.join("rec-7.0.dist-info");
    write(&rec.join("METADATA"), &pkg_info("rec", "7.0"));
    write(
        &rec.join("RECORD"),
        b"rec.py,sha256=abc,3\nbroken.py,nohash,x\n\"unterminated,\n",
    );
    // Bad direct_url.json and conda records of the wrong shape.
    let du = sp.join("du-8.0.dist-info");
    write(&du.join("METADATA"), &pkg_info("du", "8.0"));
    write(&du.join("direct_url.json"), b"{not json");
    write(&root.join("conda-meta/bad-1-0.json"), b"[1, 2");
    write(
        &root.join("conda-meta/shape-1-0.json"),
        br#"{"name": 5, "files": "x"}"#,
    );
    write(
        &root.join("conda-meta/files-1-0.json"),
        br#"{"name": "files", "files": "x"}"#,
    );

    let (pkgs, w) = scan(root);
    let by = |n: &str| find(&pkgs, n);

    assert_eq!(by("huge").version.as_deref(), Some("1.0"));
    let hw = warning_about(&w, "huge-1.0.dist-info/METADATA");
    assert!(hw.message.contains("limit"), "{hw:?}");
    assert_eq!(by("corrupt").version.as_deref(), Some("2.0"));
    assert!(warning_about(&w, "corrupt-2.0.dist-info")
        .message
        .contains("corrupt metadata"));
    assert_eq!(by("missing").version.as_deref(), Some("3.0"));
    assert!(warning_about(&w, "missing-3.0.dist-info")
        .message
        .contains("missing"));
    assert_eq!(by("utf\u{fffd}8").version.as_deref(), Some("4.0"));
    assert_eq!(by("fifo").version.as_deref(), Some("5.0"));
    assert!(warning_about(&w, "fifo-5.0.dist-info")
        .message
        .contains("not a regular file"));
    // The host's /etc/passwd is not inside the root: the link resolves to nothing.
    assert_eq!(by("evil").version.as_deref(), Some("6.0"));
    assert!(!pkgs.iter().any(|p| p.name.starts_with("root")));
    let rec = by("rec");
    assert!(
        rec.files.contains(&format!("/{SP}/rec.py")),
        "{:?}",
        rec.files
    );
    assert!(warning_about(&w, "rec-7.0.dist-info/RECORD")
        .message
        .contains("corrupt RECORD"));
    assert!(by("du").direct_url.is_none());
    assert!(warning_about(&w, "du-8.0.dist-info/direct_url.json")
        .message
        .contains("JSON"));
    assert!(warning_about(&w, "bad-1-0.json").message.contains("JSON"));
    assert!(warning_about(&w, "shape-1-0.json").message.contains("name"));
    assert!(by("files").files.is_empty());
    assert!(warning_about(&w, "files-1-0.json")
        .message
        .contains("not a list"));
    // Every warning names its input inside the scanned folder.
    assert!(w
        .iter()
        .all(|w| w.input.starts_with("lib/") || w.input.starts_with("conda-meta/")));
}

#[test]
fn zip_bomb_and_truncated_eggs() {
    let tmp = tempfile::tempdir().unwrap();
    let sp = tmp.path().join(SP);
    // PKG-INFO that inflates past the limit from a few tens of KiB.
    let zeros = vec![0u8; (METADATA_LIMIT + 1024) as usize];
    let bomb = zip_bytes(&[("EGG-INFO/PKG-INFO", &zeros)]);
    assert!(
        bomb.len() < 1024 * 1024,
        "the bomb is small on disk: {}",
        bomb.len()
    );
    write(&sp.join("bomb-1.0-py3.11.egg"), &bomb);
    let good = zip_bytes(&[("EGG-INFO/PKG-INFO", &pkg_info("trunc", "2.0"))]);
    write(&sp.join("trunc-2.0-py3.11.egg"), &good[..good.len() / 2]);
    write(&sp.join("notzip-3.0-py3.11.egg"), b"this is not a zip file");
    let no_info = zip_bytes(&[("other.txt", b"x")]);
    write(&sp.join("noinfo-4.0-py3.11.egg"), &no_info);

    let (pkgs, w) = scan(tmp.path());
    assert_eq!(pkgs.len(), 4, "{pkgs:?}");
    for (name, version) in [
        ("bomb", "1.0"),
        ("trunc", "2.0"),
        ("notzip", "3.0"),
        ("noinfo", "4.0"),
    ] {
        let p = find(&pkgs, name);
        assert_eq!(p.version.as_deref(), Some(version));
        assert_eq!(p.source, PackageSource::Installed(InstalledKind::Egg));
    }
    assert!(warning_about(&w, "bomb-1.0").message.contains("zip bomb"));
    assert!(warning_about(&w, "trunc-2.0").message.contains("zip"));
    assert!(warning_about(&w, "notzip-3.0").message.contains("zip"));
    assert!(warning_about(&w, "noinfo-4.0")
        .message
        .contains("no EGG-INFO/PKG-INFO"));
}
