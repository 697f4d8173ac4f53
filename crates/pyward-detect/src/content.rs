//! What the first bytes of a file say: Shannon entropy, magic numbers, text or not.
//!
//! The sensor captures at most 64 bytes at offset 0 (like Tracee's 20-byte `magic_write` or
//! Falco's 80-byte snaplen), so entropy is reported both raw (bits per byte) and normalised
//! by its maximum for that sample size, `log2(min(n, 256))`: 64 random bytes reach about
//! 5.7 bits (0.95 normalised), never 8.

use serde::Serialize;

/// What kind of content a recognised format is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Compressed streams and archives (gzip, zip, xz...).
    Archive,
    /// Images, audio, video, documents.
    Media,
    /// Programs and bytecode (ELF, pyc...).
    Executable,
    /// Databases and their journals (SQLite).
    Database,
    /// Version-control objects (git packs).
    Vcs,
    /// Containers of encrypted data (OpenSSL `Salted__`, Fernet tokens, age).
    Encrypted,
}

/// A recognised file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Format {
    /// Short name (`gzip`, `elf`, `fernet`).
    pub name: &'static str,
    /// Its category.
    pub category: Category,
}

const fn f(name: &'static str, category: Category) -> Format {
    Format { name, category }
}

/// Magic numbers at offset 0 (or at a small offset), most specific first.
const MAGIC: &[(usize, &[u8], Format)] = &[
    (0, b"\x7fELF", f("elf", Category::Executable)),
    (0, b"\x1f\x8b", f("gzip", Category::Archive)),
    (0, b"PK\x03\x04", f("zip", Category::Archive)),
    (0, b"PK\x05\x06", f("zip", Category::Archive)),
    (0, b"BZh", f("bzip2", Category::Archive)),
    (0, b"\xfd7zXZ\x00", f("xz", Category::Archive)),
    (0, b"\x28\xb5\x2f\xfd", f("zstd", Category::Archive)),
    (0, b"7z\xbc\xaf\x27\x1c", f("7z", Category::Archive)),
    (0, b"Rar!\x1a\x07", f("rar", Category::Archive)),
    (0, b"\x04\x22\x4d\x18", f("lz4", Category::Archive)),
    (0, b"\x89LZO", f("lzo", Category::Archive)),
    (0, b"%PDF", f("pdf", Category::Media)),
    (0, b"\x89PNG", f("png", Category::Media)),
    (0, b"\xff\xd8\xff", f("jpeg", Category::Media)),
    (0, b"GIF8", f("gif", Category::Media)),
    (0, b"RIFF", f("riff", Category::Media)),
    (0, b"OggS", f("ogg", Category::Media)),
    (0, b"ID3", f("mp3", Category::Media)),
    (0, b"fLaC", f("flac", Category::Media)),
    (4, b"ftyp", f("mp4", Category::Media)),
    (
        0,
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        f("ole2", Category::Media),
    ),
    (0, b"SQLite format 3\x00", f("sqlite", Category::Database)),
    (
        0,
        b"\xd9\xd5\x05\xf9\x20\xa1\x63\xd7",
        f("sqlite-journal", Category::Database),
    ),
    (0, b"\x37\x7f\x06\x82", f("sqlite-wal", Category::Database)),
    (0, b"\x37\x7f\x06\x83", f("sqlite-wal", Category::Database)),
    (0, b"PACK", f("git-pack", Category::Vcs)),
    (0, b"\xfftOc", f("git-pack-index", Category::Vcs)),
    (0, b"RIDX", f("git-reverse-index", Category::Vcs)),
    (0, b"MIDX", f("git-multi-pack-index", Category::Vcs)),
    (0, b"CGPH", f("git-commit-graph", Category::Vcs)),
    (0, b"DIRC", f("git-index", Category::Vcs)),
    (
        0,
        b"\xca\xfe\xba\xbe",
        f("java-class", Category::Executable),
    ),
    (0, b"\x00asm", f("wasm", Category::Executable)),
    (0, b"MZ", f("pe", Category::Executable)),
    (0, b"Salted__", f("openssl-enc", Category::Encrypted)),
    (0, b"gAAAAA", f("fernet", Category::Encrypted)),
    (0, b"age-encryption.org/", f("age", Category::Encrypted)),
    (
        0,
        b"-----BEGIN PGP MESSAGE",
        f("pgp-armored", Category::Encrypted),
    ),
];

/// What the captured first bytes of a file look like.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ContentInfo {
    /// Number of bytes looked at.
    pub len: usize,
    /// Shannon entropy in bits per byte.
    pub entropy: f64,
    /// Entropy divided by its maximum for this many bytes (0..=1).
    pub entropy_norm: f64,
    /// Recognised format, if any.
    pub format: Option<Format>,
    /// Looks like human-readable text.
    pub text: bool,
    /// Looks like a base64 or hex blob (encoded binary data, e.g. an encrypted payload).
    pub encoded_blob: bool,
}

impl ContentInfo {
    /// Analyse `data` (the first bytes written or read at offset 0).
    pub fn of(data: &[u8]) -> ContentInfo {
        let (entropy, entropy_norm) = entropy(data);
        let format = magic(data);
        let encoded_blob = format.is_none() && is_encoded_blob(data);
        ContentInfo {
            len: data.len(),
            entropy,
            entropy_norm,
            format,
            text: format.is_none() && !encoded_blob && is_text(data),
            encoded_blob,
        }
    }

    /// Opaque: neither text nor a recognised format (what encryption output looks like).
    pub fn is_opaque(&self) -> bool {
        self.format.is_none() && !self.text
    }

    /// A short label for evidence (`gzip`, `text`, `data`).
    pub fn label(&self) -> &'static str {
        match (self.format, self.text, self.encoded_blob) {
            (Some(f), _, _) => f.name,
            (None, true, _) => "text",
            (None, false, true) => "encoded-data",
            (None, false, false) => "data",
        }
    }
}

/// Shannon entropy of `data` in bits per byte, and normalised by `log2(min(n, 256))`.
pub fn entropy(data: &[u8]) -> (f64, f64) {
    if data.len() < 2 {
        return (0.0, 0.0);
    }
    let mut counts = [0u32; 256];
    for &b in data {
        counts[usize::from(b)] += 1;
    }
    let n = data.len() as f64;
    let h: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    let max = (data.len().min(256) as f64).log2();
    (h, if max > 0.0 { (h / max).min(1.0) } else { 0.0 })
}

/// The format whose magic number `data` starts with.
pub fn magic(data: &[u8]) -> Option<Format> {
    for (off, m, fmt) in MAGIC {
        if data.get(*off..off + m.len()) == Some(*m) {
            return Some(*fmt);
        }
    }
    // CPython bytecode: a 2-byte version word, then \r\n, then 4 flag bytes (0..=3).
    if data.len() >= 8 && data.get(2..4) == Some(b"\r\n") && data[4] <= 3 && data[5..8] == [0, 0, 0]
    {
        return Some(f("pyc", Category::Executable));
    }
    // zlib stream (git loose objects): CMF 0x78 and a header checksum.
    if data.len() >= 2
        && data[0] == 0x78
        && (u16::from(data[0]) << 8 | u16::from(data[1])) % 31 == 0
    {
        return Some(f("zlib", Category::Archive));
    }
    None
}

/// Printable text (ASCII or UTF-8) in which letters, digits and white space dominate.
///
/// Text XOR-ed with a constant byte often stays printable but turns into punctuation and
/// control characters; the letter/digit/space share tells it apart.
pub fn is_text(data: &[u8]) -> bool {
    if data.is_empty() {
        return false;
    }
    // Allow a multi-byte UTF-8 sequence cut at the end of the sample.
    let s = match std::str::from_utf8(data) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => match std::str::from_utf8(&data[..e.valid_up_to()]) {
            Ok(s) => s,
            Err(_) => return false,
        },
        Err(_) => return false,
    };
    let mut total = 0usize;
    let mut common = 0usize;
    for c in s.chars() {
        total += 1;
        if c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c') {
            return false;
        }
        if c.is_alphanumeric() || c.is_whitespace() {
            common += 1;
        }
    }
    total > 0 && common * 10 >= total * 6
}

/// Base64 (standard or URL-safe) or hex with no white space, at least 24 characters: how
/// many tools store encrypted bytes in a "text" file.
fn is_encoded_blob(data: &[u8]) -> bool {
    if data.len() < 24 {
        return false;
    }
    let body = data
        .strip_suffix(b"\n")
        .unwrap_or(data)
        .strip_suffix(b"\r")
        .unwrap_or(data);
    let is_hex = body.iter().all(u8::is_ascii_hexdigit);
    let is_b64 = body
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'));
    if is_hex {
        return true;
    }
    if !is_b64 {
        return false;
    }
    // Real words are not base64 blobs: require upper, lower and digits mixed.
    let up = body.iter().any(u8::is_ascii_uppercase);
    let lo = body.iter().any(u8::is_ascii_lowercase);
    let dg = body.iter().any(u8::is_ascii_digit);
    up && lo && dg
}

/// What a file's extension says its content is, when it says anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedType {
    /// A text extension (`.txt`, `.py`, `.csv`...).
    Text,
    /// A binary format with a magic number (`.pdf`, `.png`, `.zip`...).
    Format,
}

/// The type a file's name implies (`report.pdf` → a PDF), if its extension is a common one.
pub fn expected_type(path: &str) -> Option<ExpectedType> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    const TEXT: &[&str] = &[
        "txt",
        "md",
        "rst",
        "csv",
        "tsv",
        "json",
        "jsonl",
        "xml",
        "html",
        "htm",
        "css",
        "py",
        "pyi",
        "js",
        "ts",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "rs",
        "go",
        "java",
        "kt",
        "rb",
        "pl",
        "php",
        "sh",
        "bash",
        "yaml",
        "yml",
        "toml",
        "ini",
        "cfg",
        "conf",
        "log",
        "sql",
        "ipynb",
        "tex",
        "svg",
        "r",
        "lua",
        "env",
        "properties",
        "gitignore",
        "lock",
    ];
    const FORMAT: &[&str] = &[
        "pdf", "png", "jpg", "jpeg", "gif", "zip", "docx", "xlsx", "pptx", "odt", "ods", "odp",
        "gz", "tgz", "bz2", "xz", "zst", "7z", "rar", "mp3", "mp4", "ogg", "flac", "wav", "sqlite",
        "sqlite3", "whl", "jar", "doc", "xls", "ppt", "pyc", "so",
    ];
    if TEXT.contains(&ext.as_str()) {
        Some(ExpectedType::Text)
    } else if FORMAT.contains(&ext.as_str()) {
        Some(ExpectedType::Format)
    } else {
        None
    }
}

/// Decode lowercase or uppercase hex (the sensor's `data` argument); `None` if malformed.
pub fn decode_hex(h: &str) -> Option<Vec<u8>> {
    let h = h.trim().as_bytes();
    if !h.len().is_multiple_of(2) || h.len() > 1 << 16 {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    h.chunks_exact(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_bounds() {
        assert_eq!(entropy(b"").0, 0.0);
        assert_eq!(entropy(b"aaaaaaaa").0, 0.0);
        let all: Vec<u8> = (0..=255).collect();
        let (h, n) = entropy(&all);
        assert!((h - 8.0).abs() < 1e-9 && (n - 1.0).abs() < 1e-9);
        let (h, n) = entropy(b"abcd");
        assert!((h - 2.0).abs() < 1e-9 && (n - 1.0).abs() < 1e-9);
    }

    #[test]
    fn magic_and_text() {
        assert_eq!(magic(b"\x1f\x8b\x08\x00").map(|f| f.name), Some("gzip"));
        assert_eq!(
            magic(b"SQLite format 3\x00\x10").map(|f| f.name),
            Some("sqlite")
        );
        assert_eq!(
            magic(b"\xa7\x0d\x0d\x0a\x00\x00\x00\x00rest").map(|f| f.name),
            Some("pyc")
        );
        assert_eq!(magic(b"x\x01abc").map(|f| f.name), Some("zlib"));
        assert!(is_text(b"Quarterly report\nRevenue: 10\n"));
        // "quarterly report" XOR 0x42 is printable punctuation, not text
        let x: Vec<u8> = b"quarterly report for the board"
            .iter()
            .map(|b| b ^ 0x42)
            .collect();
        assert!(!is_text(&x));
        assert!(ContentInfo::of(&x).is_opaque());
        assert!(ContentInfo::of(b"gAAAAABlZ3xyz").format.is_some());
        let b64 = b"U2FsdGVkX19hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx";
        assert!(ContentInfo::of(b64).is_opaque());
        assert_eq!(decode_hex("1f8B"), Some(vec![0x1f, 0x8b]));
        assert_eq!(decode_hex("1f8"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(expected_type("/a/b.TXT"), Some(ExpectedType::Text));
        assert_eq!(expected_type("/a/b"), None);
    }
}
