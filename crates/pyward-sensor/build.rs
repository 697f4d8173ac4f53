//! Compiles the CO-RE eBPF programs of src/bpf with clang and generates their Rust skeleton.
//!
//! Needs `clang` (and libelf/zlib for the bundled libbpf), nothing else: `vmlinux.h` is
//! vendored in src/bpf, the libbpf headers come with libbpf-cargo.

use std::path::PathBuf;

fn main() {
    let src = "src/bpf/sensor.bpf.c";
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("sensor.skel.rs");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let target_arch = match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => panic!(
            "pyward-sensor: the eBPF programs support x86_64 and aarch64 (target arch {other:?}); \
             vendor a vmlinux.h for it in src/bpf (see src/bpf/VMLINUX.md)"
        ),
    };
    if let Err(e) = libbpf_cargo::SkeletonBuilder::new()
        .source(src)
        .clang_args([
            format!("-D__TARGET_ARCH_{target_arch}"),
            "-Wall".to_string(),
            "-Werror".to_string(),
            "-Isrc/bpf".to_string(),
        ])
        .build_and_generate(&out)
    {
        panic!(
            "pyward-sensor: compiling {src} failed ({e:#}). It needs clang (Debian: \
             `apt-get install clang libelf-dev zlib1g-dev`, or run scripts/setup.sh)"
        );
    }
    println!("cargo:rerun-if-changed=src/bpf");
}
