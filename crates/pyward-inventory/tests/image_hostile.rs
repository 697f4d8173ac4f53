//! Hostile and broken images: traversal, symlinks out of the image and in loops, devices,
//! invalid UTF-8, truncation, corruption, bombs, missing blobs, malformed JSON, tampering.
//! Each must give a clear error or warning naming the input, never a panic.

use pyward_core::{Error, TargetKind, Warning};
use pyward_inventory::image::{self, Image};
use pyward_inventory::tree::Limits;
use pyward_inventory::{EntryKind, FileTree, ReadError};
use pyward_testkit::image::{ArchiveOptions, Compression, ImageBuilder, Layer};
use std::path::Path;

fn keep_all(_: &str, _: u64) -> bool {
    true
}

fn open_with(
    path: &Path,
    kind: TargetKind,
    limits: &Limits,
) -> (Result<Image, Error>, Vec<Warning>) {
    let mut warnings = Vec::new();
    let r = image::open(path, kind, None, limits, &keep_all, &mut warnings);
    (r, warnings)
}

fn open(path: &Path, kind: TargetKind) -> (Result<Image, Error>, Vec<Warning>) {
    open_with(path, kind, &Limits::default())
}

fn err_text(r: Result<Image, Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn traversal_absolute_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar");
    ImageBuilder::new()
        .layer(
            Layer::new()
                .file("ok.txt", "ok")
                .raw_file(b"../../../../tmp/pyward-evil", "evil")
                .raw_file(b"a/../../escape", "evil")
                .raw_file(b"/etc/abs.txt", "abs")
                .raw_file(b"bad\xffname.py", "x")
                .raw(b"hl", tar::EntryType::Link, "", Some(b"../../etc/passwd")),
        )
        .write_docker_archive(&p)
        .unwrap();
    let (img, warnings) = open(&p, TargetKind::DockerArchive);
    let img = img.unwrap();
    let paths: Vec<&str> = img.tree.entries().iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"/ok.txt"));
    assert!(
        paths.contains(&"/etc/abs.txt"),
        "absolute names are rooted: {paths:?}"
    );
    assert!(paths.contains(&"/bad\u{fffd}name.py"), "{paths:?}");
    assert!(!paths
        .iter()
        .any(|p| p.contains("evil") || p.contains("escape") || *p == "/hl"));
    let text = format!("{warnings:?}");
    assert!(
        text.contains("pyward-evil") && text.contains("path traversal"),
        "{text}"
    );
    assert!(text.contains("layer 0"), "warnings name the layer: {text}");
    assert!(text.contains("UTF-8"), "{text}");
    assert!(text.contains("hard link"), "{text}");
    assert!(warnings.iter().all(|w| w.input == p.display().to_string()));
    assert!(!Path::new("/tmp/pyward-evil").exists());
}

#[test]
fn symlinks_out_of_the_image_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar");
    ImageBuilder::new()
        .layer(
            Layer::new()
                .file("etc/real", "inside")
                .symlink("etc/up", "../../../../../etc/real")
                .symlink("etc/abs", "/etc/passwd")
                .symlink("loop/a", "b")
                .symlink("loop/b", "a")
                .char_device("dev/zero", 1, 5)
                .fifo("run/pipe"),
        )
        .write_oci_archive(&p)
        .unwrap();
    let (img, _) = open(&p, TargetKind::OciArchive);
    let t = img.unwrap().tree;
    // `..` clamps at the image root: the link resolves to the image's own file.
    assert_eq!(&*t.read("/etc/up", 100).unwrap(), b"inside");
    assert!(matches!(t.read("/etc/abs", 100), Err(ReadError::NotFound)));
    assert!(matches!(
        t.read("/loop/a", 100),
        Err(ReadError::SymlinkLoop)
    ));
    assert_eq!(
        t.entry("/dev/zero").map(|e| e.kind.clone()),
        Some(EntryKind::Special)
    );
    assert!(matches!(t.read("/dev/zero", 100), Err(ReadError::NotAFile)));
    assert_eq!(
        t.entry("/run/pipe").map(|e| e.kind.clone()),
        Some(EntryKind::Special)
    );
}

#[test]
fn truncated_tarball() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar");
    ImageBuilder::new()
        .layer(
            Layer::new()
                .compression(Compression::None)
                .file("big.bin", vec![7u8; 200_000]),
        )
        .write_docker_archive(&p)
        .unwrap();
    let len = std::fs::metadata(&p).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len / 3).unwrap();
    let (r, _) = open(&p, TargetKind::DockerArchive);
    let msg = err_text(r);
    assert!(
        msg.contains("img.tar") && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn truncated_gzipped_tarball() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar.gz");
    let opts = ArchiveOptions {
        gzip: true,
        ..Default::default()
    };
    ImageBuilder::new()
        .layer(
            Layer::new().file(
                "big.bin",
                (0..300_000u32)
                    .map(|i| (i * 7 % 251) as u8)
                    .collect::<Vec<_>>(),
            ),
        )
        .write_docker_archive_with(&p, &opts)
        .unwrap();
    let len = std::fs::metadata(&p).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (r, _) = open(&p, TargetKind::DockerArchive);
    let msg = err_text(r);
    assert!(msg.contains("img.tar.gz"), "{msg}");
}

#[test]
fn corrupt_gzip_layer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar");
    let b = ImageBuilder::new().layer(Layer::new().file("a.txt", "a".repeat(5000)));
    let w = b.write_docker_archive(&p).unwrap();
    let mut bad = Layer::new()
        .file("a.txt", "a".repeat(5000))
        .to_blob()
        .unwrap();
    let n = bad.len();
    for byte in &mut bad[12..n - 8] {
        *byte ^= 0x5a;
    }
    let opts = ArchiveOptions {
        replace_members: vec![(w.layer_members[0].clone(), bad)],
        ..Default::default()
    };
    b.write_docker_archive_with(&p, &opts).unwrap();
    let (r, _) = open(&p, TargetKind::DockerArchive);
    let msg = err_text(r);
    assert!(msg.contains("img.tar") && msg.contains("layer 0"), "{msg}");
}

#[test]
fn gzip_bomb_layer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img");
    let w = ImageBuilder::new()
        .layer(Layer::new().generated(|w| {
            w.file_from_reader(
                "zeros",
                16 << 20,
                std::io::Read::take(std::io::repeat(0), 16 << 20),
                0o644,
            )
        }))
        .write_oci_layout(&p)
        .unwrap();
    let limits = Limits {
        max_ratio: 50,
        ..Limits::default()
    };
    let (r, _) = open_with(&p, TargetKind::OciLayout, &limits);
    let msg = err_text(r);
    assert!(msg.contains("bomb"), "{msg}");
    assert!(
        msg.contains(&w.layers[0].digest[7..]),
        "names the layer digest: {msg}"
    );

    let limits = Limits {
        max_total_uncompressed: 1 << 20,
        ..Limits::default()
    };
    let (r, _) = open_with(&p, TargetKind::OciLayout, &limits);
    assert!(err_text(r).contains("limit"));

    let limits = Limits {
        max_entries: 0,
        ..Limits::default()
    };
    let (r, _) = open_with(&p, TargetKind::OciLayout, &limits);
    assert!(err_text(r).contains("entries"));
}

#[test]
fn missing_blob_and_malformed_json() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("img.tar");
    let b = ImageBuilder::new()
        .layer(Layer::new().file("a", "a"))
        .layer(Layer::new().file("b", "b"));
    let w = b.write_docker_archive(&p).unwrap();

    let omit = ArchiveOptions {
        omit_members: vec![w.layer_members[1].clone()],
        ..Default::default()
    };
    b.write_docker_archive_with(&p, &omit).unwrap();
    let msg = err_text(open(&p, TargetKind::DockerArchive).0);
    assert!(
        msg.contains("missing") && msg.contains(&w.layer_members[1]),
        "{msg}"
    );

    for bad in [
        &b"{not json"[..],
        br#"{"Config": 1}"#,
        br#"[{"Config": "x.json", "Layers": [7]}]"#,
    ] {
        let opts = ArchiveOptions {
            replace_members: vec![("manifest.json".into(), bad.to_vec())],
            ..Default::default()
        };
        b.write_docker_archive_with(&p, &opts).unwrap();
        let msg = err_text(open(&p, TargetKind::DockerArchive).0);
        assert!(
            msg.contains("img.tar") && msg.contains("manifest.json"),
            "{msg}"
        );
    }

    let opts = ArchiveOptions {
        replace_members: vec![(w.config_member.clone(), b"{\"rootfs\": 3}".to_vec())],
        ..Default::default()
    };
    b.write_docker_archive_with(&p, &opts).unwrap();
    let msg = err_text(open(&p, TargetKind::DockerArchive).0);
    assert!(msg.contains("config"), "{msg}");
}

#[test]
fn tampered_layer_blob() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let w = ImageBuilder::new()
        .layer(Layer::new().file("app.py", "print('hi')"))
        .write_oci_layout(&layout)
        .unwrap();
    // Replace the blob with another valid layer: the digest no longer matches.
    let other = Layer::new().file("app.py", "import os").to_blob().unwrap();
    std::fs::write(
        layout.join("blobs/sha256").join(&w.layers[0].digest[7..]),
        other,
    )
    .unwrap();
    let msg = err_text(open(&layout, TargetKind::OciLayout).0);
    assert!(
        msg.contains("mismatch") || msg.contains("bytes but the manifest"),
        "{msg}"
    );

    // Legacy docker-archive: no blob digest, but the config's diff_id catches it.
    let p = dir.path().join("img.tar");
    let b = ImageBuilder::new().layer(
        Layer::new()
            .compression(Compression::None)
            .file("app.py", "print('hi')"),
    );
    let w = b.write_docker_archive(&p).unwrap();
    let mut other = Vec::new();
    Layer::new()
        .file("app.py", "import os!!")
        .write_tar(&mut other)
        .unwrap();
    let opts = ArchiveOptions {
        replace_members: vec![(w.layer_members[0].clone(), other)],
        ..Default::default()
    };
    b.write_docker_archive_with(&p, &opts).unwrap();
    let msg = err_text(open(&p, TargetKind::DockerArchive).0);
    assert!(msg.contains("diff_id") && msg.contains("mismatch"), "{msg}");
}

#[cfg(unix)]
#[test]
fn oci_layout_blob_symlink_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let w = ImageBuilder::new()
        .layer(Layer::new().file("a", "a"))
        .write_oci_layout(&layout)
        .unwrap();
    let blob = layout.join("blobs/sha256").join(&w.layers[0].digest[7..]);
    let outside = dir.path().join("outside");
    std::fs::rename(&blob, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &blob).unwrap();
    let msg = err_text(open(&layout, TargetKind::OciLayout).0);
    assert!(msg.contains("symlink"), "{msg}");
}

#[test]
fn garbage_files_are_not_images() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.tar");
    std::fs::write(&p, vec![0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    assert_eq!(image::sniff(&p), None);
    std::fs::write(&p, vec![b'x'; 2000]).unwrap();
    assert_eq!(image::sniff(&p), None);
    let msg = err_text(open(&p, TargetKind::DockerArchive).0);
    assert!(msg.contains("junk.tar"), "{msg}");
}
