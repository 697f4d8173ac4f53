//! Readers of fixed-layout BPF ring-buffer records (the sensor's events and the enforcer's):
//! native-endian fields at byte offsets, NUL-terminated strings, kernel device numbers. A field
//! past the end of a short record reads as 0 / empty; callers check record sizes first.

pub fn u16_at(b: &[u8], off: usize) -> u16 {
    b.get(off..off + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_ne_bytes)
        .unwrap_or(0)
}

pub fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(0)
}

pub fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_ne_bytes)
        .unwrap_or(0)
}

/// Text up to the first NUL, lossily decoded (paths are bytes; invalid UTF-8 becomes U+FFFD).
pub fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
}

/// [`cstr`] of the `max` bytes at `off`.
pub fn cstr_at(b: &[u8], off: usize, max: usize) -> String {
    cstr(b.get(off..off + max).unwrap_or_default())
}

/// A kernel `dev_t` (major << 20 | minor) in the user-space encoding `stat(2)` returns
/// (glibc's `makedev`), so `fd.dev` compares with `st_dev`.
pub fn user_dev(kdev: u32) -> u64 {
    let major = u64::from(kdev >> 20);
    let minor = u64::from(kdev & 0xf_ffff);
    ((major & 0xffff_f000) << 32)
        | ((major & 0xfff) << 8)
        | ((minor & 0xffff_ff00) << 12)
        | (minor & 0xff)
}

/// The reverse of [`user_dev`]: a `stat(2)` `st_dev` in the kernel's `s_dev` encoding.
pub fn kernel_dev(dev: u64) -> u64 {
    (u64::from(libc::major(dev)) << 20) | u64::from(libc::minor(dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_round_trip_and_match_glibc() {
        assert_eq!(user_dev((8 << 20) | 1), 0x801);
        for (major, minor) in [
            (259u32, 300u32),
            (0, 0x1_2345),
            (4095, 255),
            (7, 0),
            (259, 3),
        ] {
            let user = libc::makedev(major, minor);
            assert_eq!(user_dev((major << 20) | minor), user, "{major}:{minor}");
            assert_eq!(kernel_dev(user), u64::from((major << 20) | minor));
            assert_eq!(user_dev(kernel_dev(user) as u32), user);
        }
        assert_eq!(user_dev(0), 0);
    }

    #[test]
    fn short_records_read_as_zero() {
        let b = [1u8, 0, 0, 0, b'a', b'b', 0, b'c'];
        assert_eq!(u32_at(&b, 0), u32::from_ne_bytes([1, 0, 0, 0]));
        assert_eq!(u64_at(&b, 4), 0);
        assert_eq!(cstr_at(&b, 4, 4), "ab");
        assert_eq!(cstr_at(&b, 6, 8), "");
    }
}
