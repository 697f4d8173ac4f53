use serde::{Deserialize, Serialize};
use std::fmt;

/// PEP 503 normalisation: runs of `-`, `_`, `.` become one `-`, then lowercase.
///
/// `jeIlyfish` → `jeilyfish`, `Friendly.Bard` → `friendly-bard`.
pub fn normalize_name(name: &str) -> String {
    // Most names are already normal (lowercase ASCII, single `-`): copy them as they are
    // (parsing the 15,000-name corpus at start-up goes through here).
    let b = name.as_bytes();
    let normal = b.iter().enumerate().all(|(i, &c)| {
        c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || (c == b'-' && i > 0 && b.get(i - 1) != Some(&b'-'))
    }) && b.last() != Some(&b'-');
    if normal {
        return name.to_owned();
    }
    fold_name(name)
}

/// The full PEP 503 rules, without the already-normal fast path of [`normalize_name`].
fn fold_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_sep {
                out.push('-');
                in_sep = true;
            }
        } else {
            in_sep = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// A package URL for a PyPI package: name lowercased with `_` → `-` (the purl spec's pypi rules,
/// which with PEP 503 input is just the normalised name), version percent-encoded where needed.
pub fn purl(name: &str, version: Option<&str>) -> String {
    let name = normalize_name(name);
    let mut out = format!("pkg:pypi/{}", percent_encode(&name));
    if let Some(v) = version.filter(|v| !v.is_empty()) {
        out.push('@');
        out.push_str(&percent_encode(v));
    }
    out
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A package name as found (`original`) and PEP 503-normalised (`normalized`). Compare the
/// normalised form; report the original, whose spelling can itself be evidence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageName {
    pub original: String,
    pub normalized: String,
}

impl PackageName {
    pub fn new(original: impl Into<String>) -> Self {
        let original = original.into();
        let normalized = normalize_name(&original);
        PackageName {
            original,
            normalized,
        }
    }

    /// True when the spelling found differs from its normalised form in more than case and
    /// separators would explain, i.e. when the normalised and lowercased forms differ.
    pub fn spelling_differs_from(&self, other: &str) -> bool {
        self.original != other && normalize_name(other) == self.normalized
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_already_normal_fast_path_agrees_with_the_full_rules() {
        for n in [
            "requests",
            "python-dateutil",
            "-lead",
            "trail-",
            "a--b",
            "a-_b",
            "A",
            "jeIlyfish",
            " six ",
            "zope.interface",
            "x1-2y",
            "",
            "-",
            "é",
            "a-b-c",
        ] {
            assert_eq!(normalize_name(n), fold_name(n), "{n:?}");
        }
    }

    #[test]
    fn pep503() {
        assert_eq!(normalize_name("Friendly.Bard"), "friendly-bard");
        assert_eq!(normalize_name("friendly_bard"), "friendly-bard");
        assert_eq!(normalize_name("FrIeNdLy-._.-bArD"), "friendly-bard");
        assert_eq!(normalize_name("jeIlyfish"), "jeilyfish");
    }

    #[test]
    fn purls() {
        assert_eq!(purl("jeIlyfish", Some("0.5.1")), "pkg:pypi/jeilyfish@0.5.1");
        assert_eq!(
            purl("Typing_Extensions", None),
            "pkg:pypi/typing-extensions"
        );
        assert_eq!(purl("x", Some("1.0+local")), "pkg:pypi/x@1.0%2Blocal");
    }
}
