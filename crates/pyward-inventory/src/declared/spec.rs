//! One requirement as written (`jeIlyfish==0.5.1`, `requests[socks]>=2; python_version<"4"`,
//! `name @ https://...`, `./dist/x-1.0-py3-none-any.whl`, `git+https://...#egg=name`) reduced to
//! what pyward reports: the name exactly as written, an exact version when pinned, and the
//! specifier or URL.

use pep440_rs::Operator;
use pep508_rs::{Requirement, VersionOrUrl};
use regex::Regex;
use std::str::FromStr;
use std::sync::OnceLock;

/// What a requirement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredSpec {
    /// The project name exactly as written (not normalised: `jeIlyfish` stays `jeIlyfish`).
    pub name: String,
    /// The version, only when pinned exactly (`==1.2.3`, `===1.2.3`, a wheel file name).
    pub version: Option<String>,
    /// The version specifier (`>=1,<2`) or the direct URL / path, when there is one.
    pub specifier: Option<String>,
}

/// The result of reading one requirement: the package it names (if any can be told), and what
/// was wrong with it (if anything), for a warning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParsedSpec {
    pub spec: Option<DeclaredSpec>,
    pub problem: Option<String>,
}

fn name_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?").expect("static regex")
    })
}

/// The PEP 508 project name a requirement starts with, exactly as written, when what follows
/// it can continue a requirement (end, extras, a comparison, a marker, `@ URL`).
pub fn leading_name(text: &str) -> Option<&str> {
    let text = text.trim_start();
    let m = name_regex().find(text)?;
    let rest = text.get(m.end()..)?.trim_start();
    let next = rest.chars().next();
    match next {
        None => Some(m.as_str()),
        Some(c) if "[(<>=!~;@,".contains(c) => Some(m.as_str()),
        _ => None,
    }
}

/// File names pip installs from directly.
const ARCHIVE_SUFFIXES: &[&str] = &[".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip"];

/// Whether `text` is a URL or a local path rather than a named requirement.
fn is_url_or_path(text: &str) -> bool {
    let Some(name) = leading_name(text) else {
        return true;
    };
    let rest = text
        .trim_start()
        .get(name.len()..)
        .unwrap_or_default()
        .trim_start();
    if !rest.is_empty() {
        return false; // `name @ url`, `name[x]`, `name>=1`
    }
    // `name.whl` / `name-1.0.tar.gz` alone are files.
    let lower = name.to_ascii_lowercase();
    ARCHIVE_SUFFIXES.iter().any(|s| lower.ends_with(s))
}

/// Read one requirement. Never fails: a requirement that cannot be parsed still yields its
/// name when it plainly starts with one (better to check a name than to miss it), with a
/// problem to report.
pub fn parse_spec(text: &str) -> ParsedSpec {
    let text = text.trim();
    if text.is_empty() {
        return ParsedSpec::default();
    }
    if is_url_or_path(text) {
        return url_or_path_spec(text);
    }
    match Requirement::<pep508_rs::VerbatimUrl>::from_str(text) {
        Ok(req) => {
            let written = leading_name(text).map(str::to_string);
            let name = written.unwrap_or_else(|| req.name.to_string());
            let (version, specifier) = match &req.version_or_url {
                None => (None, None),
                Some(VersionOrUrl::VersionSpecifier(specs)) => {
                    let exact = match specs.iter().collect::<Vec<_>>().as_slice() {
                        [one]
                            if matches!(one.operator(), Operator::Equal | Operator::ExactEqual) =>
                        {
                            Some(one.version().to_string())
                        }
                        _ => None,
                    };
                    let s = specs.to_string();
                    (exact, (!s.is_empty()).then_some(s))
                }
                Some(VersionOrUrl::Url(url)) => {
                    let given = url
                        .given()
                        .map(str::to_string)
                        .unwrap_or_else(|| url.to_string());
                    (None, Some(given))
                }
            };
            ParsedSpec {
                spec: Some(DeclaredSpec {
                    name,
                    version,
                    specifier,
                }),
                problem: None,
            }
        }
        Err(err) => {
            let first = err.to_string();
            let first = first
                .lines()
                .next()
                .unwrap_or("invalid requirement")
                .to_string();
            match leading_name(text) {
                Some(name) => {
                    // `name @ ${URL}` and other direct references pep508 cannot resolve are still
                    // plainly named.
                    let url = text
                        .get(name.len()..)
                        .map(str::trim_start)
                        .and_then(|r| r.strip_prefix('@'))
                        .map(|r| r.split(';').next().unwrap_or(r).trim().to_string());
                    let direct = url.filter(|u| !u.is_empty());
                    let problem = if direct.is_some() {
                        None
                    } else {
                        Some(format!(
                            "cannot parse requirement `{text}` ({first}); listed the name `{name}` only"
                        ))
                    };
                    ParsedSpec {
                        spec: Some(DeclaredSpec {
                            name: name.to_string(),
                            version: None,
                            specifier: direct,
                        }),
                        problem,
                    }
                }
                None => ParsedSpec {
                    spec: None,
                    problem: Some(format!(
                        "cannot parse requirement `{text}` ({first}); skipped"
                    )),
                },
            }
        }
    }
}

/// A URL or path: the name comes from `#egg=NAME` or from a wheel / sdist file name, never
/// from guessing.
fn url_or_path_spec(text: &str) -> ParsedSpec {
    let location = text.split(';').next().unwrap_or(text).trim();
    let specifier = Some(location.to_string());
    if let Some(egg) = location
        .split(['#', '&'])
        .find_map(|part| part.strip_prefix("egg="))
    {
        if let Some(name) = name_regex().find(egg) {
            return ParsedSpec {
                spec: Some(DeclaredSpec {
                    name: name.as_str().to_string(),
                    version: None,
                    specifier,
                }),
                problem: None,
            };
        }
    }
    let path = location.split(['#', '?']).next().unwrap_or(location);
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    if let Some((name, version)) = archive_name_version(file) {
        return ParsedSpec {
            spec: Some(DeclaredSpec {
                name,
                version: Some(version),
                specifier,
            }),
            problem: None,
        };
    }
    ParsedSpec {
        spec: None,
        problem: Some(format!(
            "cannot tell which package `{location}` is (a path or URL without `#egg=NAME`); not listed"
        )),
    }
}

/// Name and version from a wheel (`name-1.0-py3-none-any.whl`) or sdist (`name-1.0.tar.gz`)
/// file name.
pub fn archive_name_version(file: &str) -> Option<(String, String)> {
    let lower = file.to_ascii_lowercase();
    if lower.ends_with(".whl") {
        let stem = file.get(..file.len() - 4)?;
        let mut parts = stem.split('-');
        let name = parts.next().filter(|n| !n.is_empty())?;
        let version = parts
            .next()
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))?;
        return Some((name.to_string(), version.to_string()));
    }
    let suffix = ARCHIVE_SUFFIXES
        .iter()
        .find(|s| lower.ends_with(*s) && **s != ".whl")?;
    let stem = file.get(..file.len() - suffix.len())?;
    let (name, version) = stem.rsplit_once('-')?;
    if name.is_empty() || !version.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some((name.to_string(), version.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> DeclaredSpec {
        parse_spec(text)
            .spec
            .unwrap_or_else(|| panic!("no spec for {text}"))
    }

    #[test]
    fn names_versions_specifiers() {
        let s = spec("jeIlyfish==0.5.1");
        assert_eq!(
            (s.name.as_str(), s.version.as_deref()),
            ("jeIlyfish", Some("0.5.1"))
        );
        assert_eq!(s.specifier.as_deref(), Some("==0.5.1"));
        let s = spec("requests[socks] >=2.8.1, <3 ; python_version > \"3.8\"");
        assert_eq!(s.name, "requests");
        assert_eq!(s.version, None);
        assert_eq!(s.specifier.as_deref(), Some(">=2.8.1, <3"));
        let s = spec("six");
        assert_eq!((s.version, s.specifier), (None, None));
        assert_eq!(spec("a==1.*").version, None);
        let s = spec("pkg @ https://example.invalid/pkg-1.0.tar.gz");
        assert_eq!(s.name, "pkg");
        assert_eq!(
            s.specifier.as_deref(),
            Some("https://example.invalid/pkg-1.0.tar.gz")
        );
        let s = spec("pkg @ ${BASE}/pkg.whl");
        assert_eq!(
            (s.name.as_str(), s.specifier.as_deref()),
            ("pkg", Some("${BASE}/pkg.whl"))
        );
    }

    #[test]
    fn urls_and_files() {
        let s = spec("git+https://example.invalid/r.git@v1#egg=python3-dateutil");
        assert_eq!(s.name, "python3-dateutil");
        let s = spec("./dist/jeIlyfish-0.5.1-py3-none-any.whl");
        assert_eq!(
            (s.name.as_str(), s.version.as_deref()),
            ("jeIlyfish", Some("0.5.1"))
        );
        let s = spec("https://example.invalid/files/jeIlyfish-0.5.1.tar.gz");
        assert_eq!(
            (s.name.as_str(), s.version.as_deref()),
            ("jeIlyfish", Some("0.5.1"))
        );
        let p = parse_spec("./src/local");
        assert!(p.spec.is_none() && p.problem.is_some());
    }

    #[test]
    fn malformed_keeps_name() {
        let p = parse_spec("jeIlyfish=0.5.1");
        assert_eq!(p.spec.map(|s| s.name).as_deref(), Some("jeIlyfish"));
        assert!(p.problem.is_some_and(|m| m.contains("jeIlyfish=0.5.1")));
        let p = parse_spec("!!! not a requirement");
        assert!(p.spec.is_none() && p.problem.is_some());
        assert_eq!(parse_spec("   "), ParsedSpec::default());
    }
}
