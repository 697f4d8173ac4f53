//! Bounded static decoders for the layers malware wraps around its payload (base64, base32,
//! hex, zlib/gzip/deflate, rot13, reversal, `chr()` joins). Every decoder caps its output so a
//! decompression bomb in a string literal costs at most [`Budget::max_output`] bytes.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use std::io::Read;

/// Limits on static decoding, shared by one file's analysis.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Largest output of any one decoding step (decompression included).
    pub max_output: usize,
    /// Steps left for the whole file; each decode, concatenation or lookup costs one.
    pub steps_left: u32,
    /// Set when a cap cut an output short, so the file is reported as partly analysed.
    pub truncated: bool,
    /// Bytes all decoding steps of the file may still produce (decompression output and kept
    /// decoded layers), so many small bombs cannot add up.
    pub total_left: usize,
}

impl Budget {
    pub fn new(max_output: usize, steps: u32) -> Self {
        Budget {
            max_output,
            steps_left: steps,
            truncated: false,
            total_left: max_output.saturating_mul(4),
        }
    }

    /// Account for `n` produced bytes; false (and `truncated`) when the file's total is spent.
    pub fn charge(&mut self, n: usize) -> bool {
        match self.total_left.checked_sub(n) {
            Some(left) => {
                self.total_left = left;
                true
            }
            None => {
                self.truncated = true;
                false
            }
        }
    }

    /// Spend one step; false when the budget is exhausted.
    pub fn step(&mut self) -> bool {
        if self.steps_left == 0 {
            return false;
        }
        self.steps_left -= 1;
        true
    }
}

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Decode base64 like Python's `b64decode` (whitespace ignored, padding optional); the URL-safe
/// alphabet is accepted too.
pub fn base64(input: &[u8], budget: &mut Budget) -> Option<Vec<u8>> {
    if input.len() / 4 * 3 > budget.max_output {
        budget.truncated = true;
        return None;
    }
    let clean: Vec<u8> = input
        .iter()
        .filter(|b| !b.is_ascii_whitespace())
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    let trimmed: &[u8] = {
        let end = clean.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
        clean.get(..end).unwrap_or(&[])
    };
    LENIENT.decode(trimmed).ok()
}

/// Decode RFC 4648 base32 (upper case, padding optional).
pub fn base32(input: &[u8], budget: &mut Budget) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() * 5 / 8);
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in input {
        let v = match b.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            b'=' => break,
            c if c.is_ascii_whitespace() => continue,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1u64 << bits) - 1;
        }
        if out.len() > budget.max_output {
            budget.truncated = true;
            return None;
        }
    }
    Some(out)
}

/// Decode hex (`bytes.fromhex`, `unhexlify`); whitespace ignored.
pub fn hex(input: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let val = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    digits
        .chunks(2)
        .map(|p| Some(val(*p.first()?)? << 4 | val(*p.get(1)?)?))
        .collect()
}

/// Decompress zlib, gzip or raw deflate (whichever the header says), capped at the budget.
pub fn inflate(input: &[u8], budget: &mut Budget) -> Option<Vec<u8>> {
    let cap = budget.max_output.min(budget.total_left) as u64;
    if cap == 0 {
        budget.truncated = true;
        return None;
    }
    let mut out = Vec::new();
    let ok = match input {
        [0x1f, 0x8b, ..] => flate2::read::GzDecoder::new(input)
            .take(cap + 1)
            .read_to_end(&mut out)
            .is_ok(),
        [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 => {
            flate2::read::ZlibDecoder::new(input)
                .take(cap + 1)
                .read_to_end(&mut out)
                .is_ok()
        }
        _ => flate2::read::DeflateDecoder::new(input)
            .take(cap + 1)
            .read_to_end(&mut out)
            .is_ok(),
    };
    if out.len() as u64 > cap {
        budget.truncated = true;
        out.truncate(cap as usize);
        budget.charge(out.len());
        return Some(out);
    }
    budget.charge(out.len());
    (ok && !out.is_empty()).then_some(out)
}

/// Memory the LZMA/XZ dictionary may take (KiB): Python's default preset 6 uses an 8 MiB
/// dictionary; a header asking for more is refused instead of allocated.
const LZMA_MEM_LIMIT_KB: u32 = 32 * 1024;

/// Read a decompressing reader up to the budget's cap; a reader error after some output keeps
/// what was produced (truncated streams still show their start).
fn read_capped(mut r: impl Read, budget: &mut Budget) -> Option<Vec<u8>> {
    let cap = budget.max_output.min(budget.total_left) as u64;
    if cap == 0 {
        budget.truncated = true;
        return None;
    }
    let mut out = Vec::new();
    let ok = (&mut r).take(cap + 1).read_to_end(&mut out).is_ok();
    if out.len() as u64 > cap {
        budget.truncated = true;
        out.truncate(cap as usize);
    }
    budget.charge(out.len());
    ((ok || out.len() as u64 >= cap) && !out.is_empty()).then_some(out)
}

/// Decompress bzip2 (`bz2.decompress`, the `bz2_codec`), capped at the budget. Pure Rust
/// (libbz2-rs-sys); memory is bounded by the format (at most 900 kB blocks).
pub fn bunzip2(input: &[u8], budget: &mut Budget) -> Option<Vec<u8>> {
    if !input.starts_with(b"BZh") {
        return None;
    }
    read_capped(bzip2::read::MultiBzDecoder::new(input), budget)
}

/// Decompress what `lzma.decompress` accepts by default: the XZ container, or the legacy
/// `.lzma` ("alone") format; capped at the budget, dictionary memory capped too.
pub fn unlzma(input: &[u8], budget: &mut Budget) -> Option<Vec<u8>> {
    if input.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return read_capped(
            lzma_rust2::XzReader::new_mem_limit(input, true, LZMA_MEM_LIMIT_KB),
            budget,
        );
    }
    // .lzma: a properties byte (lc/lp/pb, < 225), a 32-bit dictionary size, a 64-bit size.
    if input.len() < 13 || input.first().is_none_or(|&p| p >= 9 * 5 * 5) {
        return None;
    }
    match lzma_rust2::LzmaReader::new_mem_limit(input, LZMA_MEM_LIMIT_KB, None) {
        Ok(r) => read_capped(r, budget),
        Err(_) => {
            // A dictionary over the memory limit is a bomb sign too: report it as partial.
            budget.truncated = true;
            None
        }
    }
}

/// Which compression a blob starts with, for blobs not passed to a named decompressor.
pub fn sniff_compression(b: &[u8]) -> Option<&'static str> {
    match b {
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] | [0x1f, 0x8b, ..] => Some("zlib"),
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => Some("bz2"),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some("lzma"),
        [0x5d, 0, 0, ..] => Some("lzma"),
        _ => None,
    }
}

/// Decompress with the named method (`zlib`, `bz2`, `lzma`), capped at the budget.
pub fn decompress(kind: &str, input: &[u8], budget: &mut Budget) -> Option<Vec<u8>> {
    match kind {
        "bz2" => bunzip2(input, budget),
        "lzma" => unlzma(input, budget),
        _ => inflate(input, budget),
    }
}

/// ROT13 over ASCII letters (`codecs.decode(s, 'rot13')`).
pub fn rot13(input: &[u8]) -> Vec<u8> {
    input
        .iter()
        .map(|&b| match b {
            b'a'..=b'z' => (b - b'a' + 13) % 26 + b'a',
            b'A'..=b'Z' => (b - b'A' + 13) % 26 + b'A',
            b => b,
        })
        .collect()
}

/// Whether bytes are mostly printable text (a decoded layer worth reading as code or strings).
pub fn is_texty(b: &[u8]) -> bool {
    if b.len() < 4 {
        return false;
    }
    let Ok(s) = std::str::from_utf8(b) else {
        return false;
    };
    let printable = s
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
        .count();
    printable * 100 >= s.chars().count() * 95
}

/// Whether decoded text looks like Python source (so it is analysed again as code).
pub fn looks_like_code(s: &str) -> bool {
    const MARKERS: [&str; 10] = [
        "import ",
        "exec(",
        "eval(",
        "def ",
        "print(",
        "open(",
        "os.",
        "subprocess",
        "urllib",
        "socket",
    ];
    MARKERS.iter().filter(|m| s.contains(*m)).count() >= 1 && s.lines().count() >= 1
}

/// Whether a string literal looks like a base64 blob worth trying to decode.
pub fn looks_base64(s: &str) -> bool {
    s.len() >= 40
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_' | b'\n' | b'\r')
        })
        && s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes().any(|b| b.is_ascii_uppercase())
        && s.bytes().any(|b| b.is_ascii_lowercase())
}

/// Unescape the body of a Python string literal (both Python 2 and 3 escapes). `raw` literals
/// are returned as is.
pub fn unescape(body: &str, raw: bool, bytes_lit: bool) -> Vec<u8> {
    if raw || !body.contains('\\') {
        return body.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    let push_char = |out: &mut Vec<u8>, c: char| {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            push_char(&mut out, c);
            continue;
        }
        let Some(e) = chars.next() else {
            out.push(b'\\');
            break;
        };
        match e {
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                push_byte_or_char(&mut out, v, bytes_lit);
            }
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                match u32::from_str_radix(&h, 16) {
                    Ok(v) => push_byte_or_char(&mut out, v, bytes_lit),
                    Err(_) => out.extend_from_slice(format!("\\x{h}").as_bytes()),
                }
            }
            'u' | 'U' if !bytes_lit => {
                let n = if e == 'u' { 4 } else { 8 };
                let h: String = chars.by_ref().take(n).collect();
                match u32::from_str_radix(&h, 16).ok().and_then(char::from_u32) {
                    Some(c) => push_char(&mut out, c),
                    None => out.extend_from_slice(format!("\\{e}{h}").as_bytes()),
                }
            }
            '\n' => {}
            '\\' | '\'' | '"' => push_char(&mut out, e),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'v' => out.push(11),
            other => {
                out.push(b'\\');
                push_char(&mut out, other);
            }
        }
    }
    out
}

fn push_byte_or_char(out: &mut Vec<u8>, v: u32, bytes_lit: bool) {
    if bytes_lit {
        out.push((v & 0xff) as u8);
    } else if let Some(c) = char::from_u32(v) {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_zlib_round_trip_and_bomb_is_capped() {
        let mut b = Budget::new(1024, 100);
        assert_eq!(base64(b"aGVsbG8=", &mut b).as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64(b"aGVsbG8", &mut b).as_deref(), Some(&b"hello"[..]));
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut enc, &vec![b'A'; 1 << 20]).unwrap();
        let z = enc.finish().unwrap();
        let out = inflate(&z, &mut b).unwrap();
        assert_eq!(out.len(), 1024);
        assert!(b.truncated);
    }

    #[test]
    fn hex_rot13_base32_unescape() {
        let mut b = Budget::new(1024, 100);
        assert_eq!(hex(b"6869").as_deref(), Some(&b"hi"[..]));
        assert_eq!(hex(b"6g"), None);
        assert_eq!(rot13(b"uryyb"), b"hello");
        assert_eq!(base32(b"NBSWY3DP", &mut b).as_deref(), Some(&b"hello"[..]));
        assert_eq!(unescape(r"\x65\166\141l\n", false, false), b"eval\n");
        assert_eq!(unescape(r"\xff", false, true), vec![0xff]);
    }
}
