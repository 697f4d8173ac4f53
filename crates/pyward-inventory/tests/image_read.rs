//! Reading well-formed images of every layout: layers squashed with whiteouts and opaque
//! folders, per-layer attribution, history, config facts, compression kinds.

use pyward_core::TargetKind;
use pyward_inventory::image::{self, Image};
use pyward_inventory::tree::Limits;
use pyward_inventory::{EntryKind, FileTree};
use pyward_testkit::image::{
    write_docker_archive_many, ArchiveOptions, Compression, DockerLayout, ImageBuilder, Layer,
    WrittenImage,
};
use std::path::Path;

const SP: &str = "usr/lib/python3/site-packages";

fn keep_all(_: &str, _: u64) -> bool {
    true
}

fn keep_py(path: &str, _: u64) -> bool {
    path.ends_with("METADATA") || path.ends_with(".txt")
}

/// A three-layer image exercising whiteouts, opaque folders and replacement.
fn demo() -> ImageBuilder {
    ImageBuilder::new()
        .tag("demo:1")
        .tag("demo:latest")
        .user("app")
        .expose("8888/tcp")
        .env("PATH=/usr/bin")
        .entrypoint(&["python3"])
        .cmd(&["-m", "app"])
        .label("maintainer", "tests")
        .layer(
            Layer::new()
                .compression(Compression::None)
                .created_by("/bin/sh -c #(nop) ADD file:base in / ")
                .dir("etc")
                .file("etc/os-release", "ID=test\n")
                .dir("opt/cache")
                .file("opt/cache/a.txt", "a")
                .file("opt/cache/b.txt", "b")
                .file("tmp/gone/deep.txt", "x")
                .file("replace.txt", "old"),
        )
        .empty_step("/bin/sh -c #(nop)  CMD [\"sh\"]")
        .layer(
            Layer::new()
                .compression(Compression::Gzip)
                .created_by("/bin/sh -c pip install python3-dateutil")
                .generated(|w| {
                    w.dist_info(
                        SP,
                        "python3-dateutil",
                        "2.8.1",
                        &[("dateutil3/__init__.py", b"")],
                    )
                })
                .whiteout("tmp/gone")
                .file("replace.txt", "new")
                .file_mode("usr/bin/suid", "#!", 0o4755),
        )
        .layer(
            Layer::new()
                .compression(Compression::Zstd)
                .created_by("RUN /bin/sh -c pip install jeIlyfish # buildkit")
                .generated(|w| {
                    w.dist_info(
                        SP,
                        "jeIlyfish",
                        "0.5.1",
                        &[("jeIlyfish/_jellyfish.py", b"# inert")],
                    )
                })
                .opaque("opt/cache")
                .file("opt/cache/c.txt", "c")
                .symlink("usr/bin/python", "python3")
                .hardlink("usr/bin/suid-link", "usr/bin/suid")
                .char_device("dev/null", 1, 3),
        )
}

fn read(path: &Path, kind: TargetKind, keep: pyward_inventory::tree::KeepPredicate<'_>) -> Image {
    assert_eq!(image::sniff(path), Some(kind), "sniff {}", path.display());
    let mut warnings = Vec::new();
    let img = image::open(path, kind, None, &Limits::default(), keep, &mut warnings)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    img
}

fn check_demo(img: &Image, written: &WrittenImage) {
    let t = &img.tree;
    let paths: Vec<&str> = t.entries().iter().map(|e| e.path.as_str()).collect();
    // Whiteout removed the folder and what was under it; the marker is not listed.
    assert!(
        !paths.iter().any(|p| p.starts_with("/tmp/gone")),
        "{paths:?}"
    );
    assert!(!paths.iter().any(|p| p.contains(".wh.")), "{paths:?}");
    // Opaque folder: lower contents hidden, own contents kept, the folder itself kept.
    assert!(t.entry("/opt/cache/a.txt").is_none());
    assert!(t.entry("/opt/cache/b.txt").is_none());
    assert_eq!(t.entry("/opt/cache/c.txt").and_then(|e| e.layer), Some(2));
    assert_eq!(t.entry("/opt/cache").and_then(|e| e.layer), Some(0));
    // Replacement: the upper layer wins, and gets the attribution.
    assert_eq!(t.entry("/replace.txt").and_then(|e| e.layer), Some(1));
    assert_eq!(&*t.read("/replace.txt", 100).unwrap(), b"new");
    assert_eq!(t.entry("/etc/os-release").and_then(|e| e.layer), Some(0));
    // Per-layer attribution of packages, with the history step that made the layer.
    let md = format!("/{SP}/jeIlyfish-0.5.1.dist-info/METADATA");
    let layer = t.layer_of(&md).expect("layer of jeIlyfish");
    assert_eq!(layer.index, 2);
    assert_eq!(layer.digest, written.layers[2].digest);
    assert_eq!(
        layer.diff_id.as_deref(),
        Some(written.layers[2].diff_id.as_str())
    );
    assert_eq!(
        layer.created_by.as_deref(),
        Some("RUN /bin/sh -c pip install jeIlyfish # buildkit")
    );
    let md1 = format!("/{SP}/python3_dateutil-2.8.1.dist-info/METADATA");
    assert_eq!(t.layer_of(&md1).map(|l| l.index), Some(1));
    assert!(
        String::from_utf8_lossy(&t.read(&md1, 1000).unwrap()).contains("Name: python3-dateutil")
    );
    // Kinds and modes.
    assert_eq!(t.entry("/usr/bin/suid").map(|e| e.mode), Some(0o4755));
    assert_eq!(
        t.entry("/usr/bin/python").map(|e| e.kind.clone()),
        Some(EntryKind::Symlink("python3".into()))
    );
    assert_eq!(
        t.entry("/usr/bin/suid-link").map(|e| e.kind.clone()),
        Some(EntryKind::Hardlink("/usr/bin/suid".into()))
    );
    assert_eq!(
        t.entry("/dev/null").map(|e| e.kind.clone()),
        Some(EntryKind::Special)
    );
    // Layers and meta.
    assert_eq!(t.layers().len(), 3);
    let m = &img.meta;
    assert_eq!(
        m.summary.config_digest.as_deref(),
        Some(written.config_digest.as_str())
    );
    assert_eq!(m.summary.os.as_deref(), Some("linux"));
    assert_eq!(m.summary.architecture.as_deref(), Some("amd64"));
    assert_eq!(m.history.len(), 4);
    assert!(m.history[1].empty_layer);
    assert_eq!(m.user.as_deref(), Some("app"));
    assert_eq!(m.exposed_ports, vec!["8888/tcp"]);
    assert_eq!(m.env, vec!["PATH=/usr/bin"]);
    assert_eq!(m.entrypoint, vec!["python3"]);
    assert_eq!(m.cmd, vec!["-m", "app"]);
    assert_eq!(
        m.labels.get("maintainer").map(String::as_str),
        Some("tests")
    );
    let df = image::reconstruct_dockerfile(&m.history);
    assert_eq!(df[0], "FROM scratch");
    assert!(df
        .iter()
        .any(|l| l == "RUN /bin/sh -c pip install python3-dateutil"));
    assert!(df.iter().any(|l| l == "CMD [\"sh\"]"));
}

#[test]
fn docker_archive_legacy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar");
    let w = demo().write_docker_archive(&p).unwrap();
    let img = read(&p, TargetKind::DockerArchive, &keep_all);
    check_demo(&img, &w);
    assert_eq!(img.meta.summary.repo_tags, vec!["demo:1", "demo:latest"]);
}

#[test]
fn docker_archive_docker25_layout() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar");
    let opts = ArchiveOptions {
        docker_layout: DockerLayout::Blobs,
        ..Default::default()
    };
    let w = demo().write_docker_archive_with(&p, &opts).unwrap();
    // Both manifest.json and index.json are present: manifest.json wins.
    let img = read(&p, TargetKind::DockerArchive, &keep_py);
    check_demo(&img, &w);
}

#[test]
fn gzipped_docker_save() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar.gz");
    let opts = ArchiveOptions {
        gzip: true,
        ..Default::default()
    };
    let w = demo().write_docker_archive_with(&p, &opts).unwrap();
    let img = read(&p, TargetKind::DockerArchive, &keep_all);
    check_demo(&img, &w);
}

#[test]
fn oci_layout_folder() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("layout");
    let w = demo().write_oci_layout(&p).unwrap();
    let img = read(&p, TargetKind::OciLayout, &keep_all);
    check_demo(&img, &w);
    assert_eq!(
        img.meta.summary.manifest_digest.as_deref(),
        Some(w.manifest_digest.as_str())
    );
    assert_eq!(img.meta.summary.repo_tags, vec!["demo:1"]);
}

#[test]
fn oci_archive() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.oci");
    let w = demo().write_oci_archive(&p).unwrap();
    let img = read(&p, TargetKind::OciArchive, &keep_all);
    check_demo(&img, &w);
}

#[test]
fn contents_kept_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar");
    demo().write_docker_archive(&p).unwrap();
    let img = read(&p, TargetKind::DockerArchive, &keep_py);
    assert!(matches!(
        img.tree.read("/etc/os-release", 100),
        Err(pyward_inventory::ReadError::NotKept)
    ));
    // A symlink resolves inside the tree.
    assert!(img.tree.read("/usr/bin/python", 100).is_err());
}

#[test]
fn several_images_pick_by_reference() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("two.tar");
    let a = ImageBuilder::new()
        .tag("app:1")
        .layer(Layer::new().file("a.txt", "a"));
    let b = ImageBuilder::new()
        .tag("app:2")
        .layer(Layer::new().file("b.txt", "b"));
    let written = write_docker_archive_many(&[&a, &b], &p, &ArchiveOptions::default()).unwrap();
    let limits = Limits::default();
    let mut w = Vec::new();
    let err = image::open(
        &p,
        TargetKind::DockerArchive,
        None,
        &limits,
        &keep_all,
        &mut w,
    )
    .err()
    .expect("several images need a reference");
    let msg = err.to_string();
    assert!(msg.contains("app:1") && msg.contains("app:2"), "{msg}");
    let img = image::open(
        &p,
        TargetKind::DockerArchive,
        Some("app:2"),
        &limits,
        &keep_all,
        &mut w,
    )
    .unwrap();
    assert!(img.tree.entry("/b.txt").is_some() && img.tree.entry("/a.txt").is_none());
    // By config digest (image id) prefix.
    let id = &written[0].config_digest[7..19];
    let img = image::open(
        &p,
        TargetKind::DockerArchive,
        Some(id),
        &limits,
        &keep_all,
        &mut w,
    )
    .unwrap();
    assert!(img.tree.entry("/a.txt").is_some());
    let err = image::open(
        &p,
        TargetKind::DockerArchive,
        Some("nope:9"),
        &limits,
        &keep_all,
        &mut w,
    )
    .err()
    .expect("unknown reference");
    assert!(err.to_string().contains("nope:9"));
}

#[test]
fn shared_layer_read_once_per_position() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar");
    let same = Layer::new()
        .compression(Compression::None)
        .file("x.txt", "x");
    ImageBuilder::new()
        .layer(same.clone())
        .layer(Layer::new().whiteout("x.txt"))
        .layer(same)
        .write_docker_archive(&p)
        .unwrap();
    let img = read(&p, TargetKind::DockerArchive, &keep_all);
    assert_eq!(img.tree.entry("/x.txt").and_then(|e| e.layer), Some(2));
}

#[test]
fn not_images() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("requirements.txt");
    std::fs::write(&txt, "six==1.0\n").unwrap();
    assert_eq!(image::sniff(&txt), None);
    assert_eq!(image::sniff(dir.path()), None);
    // An sdist is a tar.gz but not an image.
    let sdist = pyward_testkit::wheel::WheelSpec::new("six", "1.0")
        .write_sdist_to(dir.path())
        .unwrap();
    assert_eq!(image::sniff(&sdist), None);
}

#[test]
fn oci_layout_with_several_images() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("layout");
    let a = ImageBuilder::new()
        .tag("registry.example/app:1")
        .layer(Layer::new().file("a.txt", "a"));
    let b = ImageBuilder::new()
        .tag("registry.example/app:2")
        .layer(Layer::new().file("b.txt", "b"));
    let written = pyward_testkit::image::write_oci_layout_many(&[&a, &b], &p).unwrap();
    let limits = Limits::default();
    let mut w = Vec::new();
    let err = image::open(&p, TargetKind::OciLayout, None, &limits, &keep_all, &mut w)
        .err()
        .expect("several images need a reference");
    assert!(err.to_string().contains("registry.example/app:2"), "{err}");
    let img = image::open(
        &p,
        TargetKind::OciLayout,
        Some("registry.example/app:2"),
        &limits,
        &keep_all,
        &mut w,
    )
    .unwrap();
    assert!(img.tree.entry("/b.txt").is_some());
    assert_eq!(img.meta.summary.repo_tags, vec!["registry.example/app:2"]);
    let by_digest = format!("@{}", written[0].manifest_digest);
    let img = image::open(
        &p,
        TargetKind::OciLayout,
        Some(&by_digest),
        &limits,
        &keep_all,
        &mut w,
    )
    .unwrap();
    assert!(img.tree.entry("/a.txt").is_some());
}

#[test]
fn inventory_of_an_image_finds_packages_and_layers() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar");
    demo().write_docker_archive(&p).unwrap();
    let inv = pyward_inventory::inventory(&p, &pyward_inventory::Options::default()).unwrap();
    assert_eq!(inv.target.kind, TargetKind::DockerArchive);
    let jelly = inv
        .packages
        .iter()
        .find(|p| p.name == "jeIlyfish")
        .expect("jeIlyfish found");
    assert_eq!(jelly.location.layer.as_ref().map(|l| l.index), Some(2));
    assert!(inv.packages.iter().any(|p| p.name == "python3-dateutil"));
    let guessed = inv
        .image
        .as_ref()
        .map(|m| m.summary.dockerfile.clone())
        .unwrap_or_default();
    assert!(
        guessed
            .iter()
            .any(|l| l.contains("pip install python3-dateutil")),
        "{guessed:?}"
    );
}
