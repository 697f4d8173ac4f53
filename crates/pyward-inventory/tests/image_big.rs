//! A big image (≥ 500 MB, ≥ 150 packages), built by streaming layers: checks the reader stays
//! fast and bounded. Ignored by default (it writes half a gigabyte); run it with
//! `cargo test --release -p pyward-inventory --test image_big -- --ignored --nocapture`.

use pyward_core::TargetKind;
use pyward_inventory::image;
use pyward_inventory::tree::Limits;
use pyward_inventory::FileTree;
use pyward_testkit::image::{BuildResult, ImageBuilder, Layer, LayerWriter};
use std::time::Instant;

const SP: &str = "usr/local/lib/python3.12/site-packages";
const LAYERS: usize = 5;
const PACKAGES_PER_LAYER: usize = 32;
const BLOB: usize = 1 << 20;

/// Pseudo-random bytes (xorshift): incompressible, like the shared objects of real wheels.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn packages(w: &mut LayerWriter<'_>, layer: usize, chunk: &[u8]) -> BuildResult<()> {
    for p in 0..PACKAGES_PER_LAYER {
        let name = format!("pkg-{layer}-{p}");
        let module = name.replace('-', "_");
        let init = format!("# {name}\n");
        w.dist_info(
            SP,
            &name,
            "1.0",
            &[(&format!("{module}/__init__.py"), init.as_bytes())],
        )?;
        // ~3.4 MB of binary per package, streamed from a shared chunk at shifting offsets.
        for f in 0..3 {
            let start = (p * 7919 + f * 104_729) % (chunk.len() / 2);
            w.file(
                &format!("{SP}/{module}/_ext{f}.so"),
                &chunk[start..start + chunk.len() / 2 + 100_000],
            )?;
        }
    }
    Ok(())
}

#[test]
#[ignore = "writes a 500 MB image; run explicitly as a benchmark"]
fn big_image_is_fast_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.tar");
    let chunk = std::sync::Arc::new(noise(42, 2 * BLOB));
    let mut b = ImageBuilder::new().tag("big:1");
    for l in 0..LAYERS {
        let chunk = chunk.clone();
        b = b.layer(
            Layer::new()
                .created_by(&format!("/bin/sh -c pip install batch{l}"))
                .generated(move |w| packages(w, l, &chunk)),
        );
    }
    let t = Instant::now();
    b.write_docker_archive(&path).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    eprintln!("built {} MB in {:.1?}", size >> 20, t.elapsed());
    assert!(size >= 500 << 20, "image is {size} bytes");

    let t = Instant::now();
    let mut warnings = Vec::new();
    let img = image::open(
        &path,
        TargetKind::DockerArchive,
        None,
        &Limits::default(),
        &|p: &str, s: u64| {
            pyward_inventory::installed::is_candidate(p, s)
                || pyward_inventory::declared::is_candidate(p, s)
        },
        &mut warnings,
    )
    .unwrap();
    let elapsed = t.elapsed();
    let metadata = img
        .tree
        .entries()
        .iter()
        .filter(|e| e.path.ends_with(".dist-info/METADATA"))
        .count();
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    eprintln!(
        "opened {} entries, {metadata} packages in {elapsed:.2?}; {hwm}",
        img.tree.entries().len()
    );
    assert!(metadata >= 150);
    assert!(warnings.is_empty(), "{warnings:?}");
}
