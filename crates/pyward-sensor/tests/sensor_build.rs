//! The eBPF programs compile for every architecture pyward vendors a vmlinux.h for, also the
//! ones CI has no machine of (aarch64): clang -target bpf with that arch's __TARGET_ARCH_*.
//! The host's own architecture is compiled (and, with PYWARD_BPF_TESTS=1, loaded) by build.rs.

use std::path::Path;
use std::process::Command;

fn compile(target_arch: &str) {
    let headers = tempfile::tempdir().unwrap();
    let bpf = headers.path().join("bpf");
    std::fs::create_dir(&bpf).unwrap();
    for (name, text) in libbpf_sys::API_HEADERS {
        std::fs::write(bpf.join(name), text).unwrap();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bpf");
    let out = headers.path().join("sensor.bpf.o");
    let run = Command::new("clang")
        .args(["-g", "-O2", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-D__TARGET_ARCH_{target_arch}"))
        .arg("-I")
        .arg(&src)
        .arg("-I")
        .arg(headers.path())
        .arg("-c")
        .arg(src.join("sensor.bpf.c"))
        .arg("-o")
        .arg(&out)
        .output()
        .expect("clang must be installed (scripts/setup.sh) to build the eBPF programs");
    assert!(
        run.status.success(),
        "sensor.bpf.c does not compile for {target_arch}:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let obj = std::fs::read(&out).unwrap();
    // An ELF relocatable object for the BPF machine (EM_BPF = 247), little-endian.
    assert_eq!(&obj[..4], b"\x7fELF");
    assert_eq!(u16::from_le_bytes([obj[18], obj[19]]), 247);
    // The programs are there (section names are in the object's string table).
    let text = String::from_utf8_lossy(&obj);
    for sec in [
        "tp_btf/sys_exit",
        "raw_tp/sys_exit",
        "tp_btf/sched_process_exec",
    ] {
        assert!(text.contains(sec), "{sec} missing for {target_arch}");
    }
}

#[test]
fn sensor_bpf_compiles_for_arm64() {
    compile("arm64");
}

#[test]
fn sensor_bpf_compiles_for_x86() {
    compile("x86");
}

#[test]
fn sensor_bpf_refuses_an_unvendored_arch() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/bpf/vmlinux.h");
    let run = Command::new("clang")
        .args([
            "-target",
            "bpf",
            "-D__TARGET_ARCH_riscv",
            "-fsyntax-only",
            "-x",
            "c",
        ])
        .arg(&src)
        .output()
        .expect("clang");
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("no vendored vmlinux.h"));
}
