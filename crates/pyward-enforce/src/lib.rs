//! # pyward-enforce: stop malicious behaviour in the kernel, not only report it
//!
//! CO-RE eBPF programs (src/bpf/enforce.bpf.c, built by build.rs through libbpf-cargo) that
//! use only what pyward's kernels accept (no BPF LSM, no fentry, no kprobes):
//!
//! | mechanism | hook | action |
//! |---|---|---|
//! | network | `cgroup/connect4`, `connect6`, `sendmsg4`, `sendmsg6` on a cgroup v2 dir | EPERM when the destination is in an LPM-trie blocklist |
//! | exec (drift) | `sched_process_exec` | SIGKILL (`bpf_send_signal`) before the new image runs an instruction, when the file was written/changed since start, is a memfd or is deleted |
//! | exec (scripts) | `sys_exit` of `open*` | SIGKILL an interpreter opening a drifted file that is its script argument, before it reads a byte |
//! | open | `sys_exit` of `open*` | SIGKILL when a protected inode is opened by a comm not allowed to |
//! | ransomware | `sys_exit` of `write*`, `unlink*`, `rename*` | SIGKILL inside the syscall that crosses the thresholds; the scoped tree dies at its next syscall |
//!
//! [`Enforcer`] loads them (tp_btf, else raw_tp), feeds the maps, and reads the records of
//! what was stopped on its own thread; [`EnforcementEvent::to_alert`] makes a Falco-shaped
//! alert of each.
#![allow(clippy::needless_return)]

pub mod cgroup;
pub mod enforcer;
pub mod event;

pub use cgroup::{cgroup2_mount, Cgroup};
pub use enforcer::{
    key_dirs, EnforceError, EnforceOptions, EnforceReport, EnforceStats, Enforcer, Mode,
    ProgramMode, ProtectSummary, RansomwareThresholds, BUILD_TOOL_COMMS, DEFAULT_INTERPRETERS,
    SSH_GPG_COMMS,
};
pub use event::{DriftReasons, EnforcementAction, EnforcementEvent, EnforcementKind, ParseError};
pub use ipnet::IpNet;

#[allow(clippy::all, clippy::pedantic, dead_code, unused_imports, missing_docs)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/enforce.skel.rs"));
}

// The record layout parsed in event.rs must match the C struct.
const _: () = assert!(std::mem::size_of::<skel::types::enf_event>() == event::RECORD_SIZE);
const _: () = assert!(std::mem::offset_of!(skel::types::enf_event, addr) == event::OFF_ADDR);
const _: () = assert!(std::mem::offset_of!(skel::types::enf_event, comm) == event::OFF_COMM);
const _: () = assert!(std::mem::offset_of!(skel::types::enf_event, pcomm) == event::OFF_PCOMM);
const _: () = assert!(std::mem::offset_of!(skel::types::enf_event, target) == event::OFF_TARGET);
const _: () = assert!(std::mem::offset_of!(skel::types::enf_event, kind) == 32);
const _: () = assert!(std::mem::offset_of!(skel::types::enf_event, port) == 64);
const _: () = assert!(std::mem::offset_of!(skel::types::enf_event, root) == 68);
const _: () = assert!(std::mem::offset_of!(skel::types::enf_event, nr) == 80);
const _: () = assert!(std::mem::size_of::<skel::types::enforce_config>() == 48);
const _: () = assert!(std::mem::offset_of!(skel::types::enforce_config, start_sec) == 32);
const _: () = assert!(std::mem::offset_of!(skel::types::enforce_config, start_nsec) == 40);
