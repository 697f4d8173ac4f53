//! Compiles src/bpf/enforce.bpf.c with clang and generates its Rust skeleton.
//!
//! The BTF dump of the kernel types (`vmlinux.h`) is not copied: it is included from
//! pyward-sensor's src/bpf (one vendored copy for the workspace).

use std::path::PathBuf;

fn main() {
    let src = "src/bpf/enforce.bpf.c";
    let vmlinux_dir = "../pyward-sensor/src/bpf";
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("enforce.skel.rs");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let target_arch = match arch.as_str() {
        "x86_64" => "x86",
        other => panic!(
            "pyward-enforce: the eBPF programs support x86_64 only so far (target arch {other:?})"
        ),
    };
    if let Err(e) = libbpf_cargo::SkeletonBuilder::new()
        .source(src)
        .clang_args([
            format!("-D__TARGET_ARCH_{target_arch}"),
            "-Wall".to_string(),
            "-Werror".to_string(),
            "-Isrc/bpf".to_string(),
            format!("-I{vmlinux_dir}"),
        ])
        .build_and_generate(&out)
    {
        panic!(
            "pyward-enforce: compiling {src} failed ({e:#}). It needs clang (Debian: \
             `apt-get install clang libelf-dev zlib1g-dev`, or run scripts/setup.sh) and \
             {vmlinux_dir}/vmlinux.h"
        );
    }
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed={vmlinux_dir}/vmlinux.h");
    println!("cargo:rerun-if-changed={vmlinux_dir}/vmlinux_x86_64.h");
}
