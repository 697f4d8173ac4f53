//! Named content regexes: Anchore's default `secret_search` set (analyzer_config.yaml), plus
//! the private-key, cloud-key and token patterns pyward adds. Each is applied per line with
//! `re.match` semantics, as Anchore's analyzer does, to files up to [`MAX_SCAN_FILE`] bytes.

/// Anchore's `MAXFILESIZE=10000`: larger files are not content-scanned (bounded time and memory).
pub const MAX_SCAN_FILE: u64 = 10_000;

/// `(name, regex)` pairs, Anchore's `NAME=regex` entries first, byte-identical, so the regex
/// text in trigger messages (and so trigger ids) matches Anchore's.
pub const DEFAULT_SECRET_REGEXES: &[(&str, &str)] = &[
    (
        "AWS_ACCESS_KEY",
        r"(?i).*aws_access_key_id( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20}(?![A-Z0-9]).*",
    ),
    (
        "AWS_SECRET_KEY",
        r"(?i).*aws_secret_access_key( *=+ *).*(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=]).*",
    ),
    ("PRIV_KEY", r"(?i)-+BEGIN(.*)PRIVATE KEY-+"),
    ("DOCKER_AUTH", r#"(?i).*"auth": *".+""#),
    (
        "API_KEY",
        r"(?i).*api(-|_)key( *=+ *).*(?<![A-Z0-9])[A-Z0-9]{20,60}(?![A-Z0-9]).*",
    ),
    // pyward additions.
    ("PGP_PRIV_KEY", r"-----BEGIN PGP PRIVATE KEY BLOCK-----"),
    ("OPENSSH_PRIV_KEY", r"-----BEGIN OPENSSH PRIVATE KEY-----"),
    (
        "AWS_ACCESS_KEY_ID",
        r".*(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])",
    ),
    (
        "GITHUB_TOKEN",
        r".*\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b",
    ),
    ("GITLAB_TOKEN", r".*\bglpat-[A-Za-z0-9_-]{20}\b"),
    ("SLACK_TOKEN", r".*\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    ("GOOGLE_API_KEY", r".*\bAIza[0-9A-Za-z_-]{35}\b"),
    ("PYPI_TOKEN", r".*\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
];

#[cfg(test)]
mod tests {
    use super::DEFAULT_SECRET_REGEXES;
    use crate::pyre::{MatchMode, PyRegex};

    /// The built-in patterns are compiled on first use, without an error path: each must
    /// compile, and match the kind of line it is for.
    #[test]
    fn every_builtin_secret_regex_compiles() {
        for (name, source) in DEFAULT_SECRET_REGEXES {
            assert!(
                PyRegex::new(source, MatchMode::Start).is_ok(),
                "{name}: {source}"
            );
        }
        let pgp = DEFAULT_SECRET_REGEXES
            .iter()
            .find(|(n, _)| *n == "PGP_PRIV_KEY")
            .map(|(_, r)| PyRegex::builtin(r, MatchMode::Start))
            .unwrap();
        assert!(pgp.is_match("-----BEGIN PGP PRIVATE KEY BLOCK-----"));
        assert!(!pgp.is_match("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    }
}
