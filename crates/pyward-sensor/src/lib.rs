//! # pyward-sensor: live events from the kernel for pyward's runtime rules
//!
//! CO-RE eBPF programs (src/bpf/sensor.bpf.c, built by build.rs with clang through
//! libbpf-cargo) on syscall-exit and scheduler tracepoints send process, file, network and
//! credential events through a BPF ring buffer. User space ([`Sensor`]) loads them with the
//! first program type the kernel accepts (tp_btf, else raw_tp), reads the ring buffer on a
//! thread and parses each record into a [`KernelEvent`].
#![allow(clippy::needless_return)]

pub mod clock;
pub mod container;
pub mod convert;
pub mod fdtable;
pub mod live;
pub mod loader;
pub mod proctable;
pub mod raw;
pub mod rawmap;
pub mod record;
pub mod signals;
pub mod stall;
pub mod users;

pub use container::ContainerRef;
pub use convert::Converter;
pub use fdtable::FdTable;
pub use live::{follow_before_exec, spawn_followed, LiveSource, Next};
pub use loader::{LoadReport, ProgramMode, Sensor, SensorError, SensorOptions, SensorStats};
pub use proctable::{ExeInfo, ProcInfo, ProcessTable};
pub use raw::{Arch, ExeFlags, KernelEvent, Kind, ParseError, SockAddr, Syscall};
pub use users::Users;

#[allow(clippy::all, clippy::pedantic, dead_code, unused_imports, missing_docs)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/sensor.skel.rs"));
}

// The record layout parsed in raw.rs must match the C struct.
const _: () = assert!(std::mem::offset_of!(skel::types::event, data) == raw::DATA_OFFSET);
const _: () = assert!(std::mem::offset_of!(skel::types::event, addr) == 136);
const _: () = assert!(std::mem::offset_of!(skel::types::event, laddr) == 168);
const _: () = assert!(std::mem::offset_of!(skel::types::event, args) == 72);
const _: () = assert!(std::mem::offset_of!(skel::types::event, flags) == 128);
const _: () = assert!(std::mem::offset_of!(skel::types::event, dev) == 184);
const _: () = assert!(std::mem::offset_of!(skel::types::event, ctime_ns) == 192);
const _: () = assert!(std::mem::offset_of!(skel::types::event, mtime_ns) == 200);
