//! Small BPF map helpers shared by the sensor and pyward-enforce: raw `bpf(2)` map updates
//! that are async-signal-safe (for a child between fork and exec), and per-CPU counter sums.

use libbpf_rs::{MapCore, MapFlags};

/// `union bpf_attr` for BPF_MAP_UPDATE_ELEM / BPF_MAP_DELETE_ELEM: map_fd, pad, key, value,
/// flags.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;

fn elem_syscall(cmd: libc::c_long, attr: &ElemAttr) -> std::io::Result<()> {
    // SAFETY: `attr` is a valid bpf_attr prefix for the element commands, and the key and
    // value pointers it holds point to memory the caller keeps alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            std::ptr::from_ref(attr),
            std::mem::size_of::<ElemAttr>() as libc::c_uint,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Insert or replace `key` → `value` in the map behind `map_fd`: one `bpf(2)` call, no
/// allocation, so it is async-signal-safe (usable in `pre_exec`).
pub fn map_update_raw(map_fd: i32, key: &[u8], value: &[u8]) -> std::io::Result<()> {
    let attr = ElemAttr {
        map_fd: map_fd as u32,
        pad: 0,
        key: key.as_ptr() as u64,
        value: value.as_ptr() as u64,
        flags: 0,
    };
    elem_syscall(BPF_MAP_UPDATE_ELEM, &attr)
}

/// Delete `key` from the map behind `map_fd` (ENOENT is an error the caller may ignore);
/// async-signal-safe like [`map_update_raw`].
pub fn map_delete_raw(map_fd: i32, key: &[u8]) -> std::io::Result<()> {
    let attr = ElemAttr {
        map_fd: map_fd as u32,
        pad: 0,
        key: key.as_ptr() as u64,
        value: 0,
        flags: 0,
    };
    elem_syscall(BPF_MAP_DELETE_ELEM, &attr)
}

/// The sum over CPUs of the u64 counter at `idx` of a per-CPU array map (0 if unreadable).
pub fn percpu_sum<M: MapCore>(map: &M, idx: u32) -> u64 {
    match map.lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY) {
        Ok(Some(vals)) => vals
            .iter()
            .map(|v| {
                v.get(..8)
                    .and_then(|s| s.try_into().ok())
                    .map(u64::from_ne_bytes)
                    .unwrap_or(0)
            })
            .sum(),
        _ => 0,
    }
}
