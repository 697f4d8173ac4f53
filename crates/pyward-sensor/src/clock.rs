//! One wall clock for every kernel timestamp of the process.
//!
//! BPF programs stamp events with `bpf_ktime_get_ns()` (CLOCK_MONOTONIC). They become wall
//! time with `realtime − monotonic` taken **once per process**: the sensor's events, the
//! enforcer's events and the periodic "now" that closes capture windows then agree, even
//! when the realtime clock is stepped while pyward runs (NTP, or a VM restored from a
//! snapshot correcting its clock), which would otherwise shift one stream against another by
//! the size of the step.

use std::sync::OnceLock;

fn read(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// realtime − monotonic, fixed at the first call.
pub fn offset_ns() -> i128 {
    static OFFSET: OnceLock<i128> = OnceLock::new();
    *OFFSET.get_or_init(|| read(libc::CLOCK_REALTIME) - read(libc::CLOCK_MONOTONIC))
}

/// Wall time (ns since the epoch) of a CLOCK_MONOTONIC timestamp.
pub fn wall_of_mono(mono_ns: u64) -> u64 {
    u64::try_from(i128::from(mono_ns) + offset_ns()).unwrap_or(0)
}

/// "Now" on the same scale as the events' times.
pub fn now_ns() -> u64 {
    u64::try_from(read(libc::CLOCK_MONOTONIC) + offset_ns()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_and_now_share_one_offset() {
        let a = offset_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(a, offset_ns(), "the offset is taken once");
        let mono = u64::try_from(read(libc::CLOCK_MONOTONIC)).unwrap();
        let n = now_ns();
        let w = wall_of_mono(mono);
        assert!(n >= w && n - w < 1_000_000_000, "{n} vs {w}");
    }
}
