//! Lock files: `poetry.lock`, `uv.lock`, `pdm.lock` (`[[package]]`), `pylock.toml` (PEP 751
//! `[[packages]]`) and `Pipfile.lock` (JSON `default` / `develop`). Every entry is pinned, so each
//! package gets its exact version. A file of the wrong shape is an error naming what was
//! expected; the caller turns it into a warning and the scan goes on.

use super::spec::DeclaredSpec;
use super::LineIndex;
use pyward_core::DeclaredKind;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// One locked package and the line its name is on.
pub struct Locked {
    pub spec: DeclaredSpec,
    pub line: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct TomlLock {
    package: Option<Vec<LockEntry>>,
    packages: Option<Vec<LockEntry>>,
    /// Marker keys: a lock with no packages still has these.
    metadata: Option<toml::Value>,
    version: Option<toml::Value>,
    #[serde(rename = "lock-version")]
    lock_version: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
struct LockEntry {
    name: Spanned<String>,
    version: Option<String>,
    /// uv: `{ registry = ... }`, `{ editable = "." }`, `{ git = ... }`; Poetry: `{ type, url }`.
    source: Option<toml::Value>,
    /// pylock.toml direct references.
    vcs: Option<toml::Value>,
    archive: Option<toml::Value>,
    directory: Option<toml::Value>,
}

fn expected(kind: DeclaredKind) -> &'static str {
    match kind {
        DeclaredKind::PoetryLock => "a poetry.lock with [[package]] tables (name, version)",
        DeclaredKind::UvLock => "a uv.lock with [[package]] tables (name, version, source)",
        DeclaredKind::PdmLock => "a pdm.lock with [[package]] tables (name, version)",
        DeclaredKind::Pylock => "a PEP 751 pylock.toml with [[packages]] tables (name, version)",
        DeclaredKind::PipfileLock => {
            "a Pipfile.lock: a JSON object with `default` and `develop` sections"
        }
        _ => "a lock file",
    }
}

/// The packages of a TOML lock file of `kind`.
pub fn toml_lock(text: &str, kind: DeclaredKind) -> Result<Vec<Locked>, String> {
    let doc: TomlLock = toml::from_str(text)
        .map_err(|e| format!("expected {}: {}", expected(kind), super::toml_error(&e)))?;
    let entries = if kind == DeclaredKind::Pylock {
        doc.packages
    } else {
        doc.package
    };
    let has_marker = doc.metadata.is_some() || doc.version.is_some() || doc.lock_version.is_some();
    let Some(entries) = entries else {
        if has_marker {
            return Ok(Vec::new());
        }
        return Err(format!(
            "expected {}, found none: is this a lock file?",
            expected(kind)
        ));
    };
    let lines = LineIndex::new(text);
    let mut out = Vec::new();
    for e in entries {
        if kind == DeclaredKind::UvLock && is_local_project(e.source.as_ref()) {
            continue; // the project itself or a workspace member, not a downloaded package
        }
        let specifier = direct_reference(&e);
        out.push(Locked {
            line: Some(lines.line(e.name.span().start)),
            spec: DeclaredSpec {
                name: e.name.into_inner(),
                version: e.version.filter(|v| !v.is_empty()),
                specifier,
            },
        });
    }
    Ok(out)
}

/// uv's editable / virtual sources are local projects (the root project is `{ editable = "." }`
/// or `{ virtual = "." }`).
fn is_local_project(source: Option<&toml::Value>) -> bool {
    source.is_some_and(|s| s.get("editable").is_some() || s.get("virtual").is_some())
}

/// Where a locked package comes from when it is not an index: a git URL, an archive URL, a path.
fn direct_reference(e: &LockEntry) -> Option<String> {
    let str_of = |v: Option<&toml::Value>, keys: &[&str]| {
        let v = v?;
        keys.iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_string))
    };
    if let Some(source) = &e.source {
        // Poetry: `type = "git" | "url" | "file" | "directory"`, `url = ...`; `legacy` is an index.
        if let Some(t) = source.get("type").and_then(|t| t.as_str()) {
            return (t != "legacy")
                .then(|| str_of(Some(source), &["url"]))
                .flatten();
        }
        return str_of(Some(source), &["git", "url", "path", "directory"]);
    }
    str_of(e.vcs.as_ref(), &["url", "path"])
        .or_else(|| str_of(e.archive.as_ref(), &["url", "path"]))
        .or_else(|| str_of(e.directory.as_ref(), &["path"]))
}

#[derive(Debug, Deserialize)]
struct PipfileLock {
    #[serde(rename = "_meta")]
    meta: Option<serde_json::Value>,
    default: Option<BTreeMap<String, PipfileEntry>>,
    develop: Option<BTreeMap<String, PipfileEntry>>,
}

#[derive(Debug, Deserialize)]
struct PipfileEntry {
    version: Option<String>,
    git: Option<String>,
    file: Option<String>,
    path: Option<String>,
}

/// The packages of a Pipfile.lock.
pub fn pipfile_lock(text: &str) -> Result<Vec<Locked>, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("expected {}: {e}", expected(DeclaredKind::PipfileLock)))?;
    if !value.is_object() {
        let found = match value {
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(format!(
            "expected {}, found {found}",
            expected(DeclaredKind::PipfileLock)
        ));
    }
    let doc: PipfileLock = serde_json::from_value(value)
        .map_err(|e| format!("expected {}: {e}", expected(DeclaredKind::PipfileLock)))?;
    if doc.meta.is_none() && doc.default.is_none() && doc.develop.is_none() {
        return Err(format!(
            "expected {}, found neither `_meta`, `default` nor `develop`",
            expected(DeclaredKind::PipfileLock)
        ));
    }
    let lines = LineIndex::new(text);
    let mut out = Vec::new();
    for (section, entries) in [("default", doc.default), ("develop", doc.develop)] {
        let section_at = text.find(&format!("\"{section}\"")).unwrap_or(0);
        for (name, e) in entries.into_iter().flatten() {
            let version = e
                .version
                .as_deref()
                .and_then(|v| v.trim().strip_prefix("=="))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
            let specifier = e
                .version
                .filter(|v| !v.trim().is_empty() && v.trim() != "*")
                .or(e.git)
                .or(e.file)
                .or(e.path);
            let line = text
                .get(section_at..)
                .and_then(|rest| rest.find(&format!("\"{name}\"")))
                .map(|at| lines.line(section_at + at));
            out.push(Locked {
                spec: DeclaredSpec {
                    name,
                    version,
                    specifier,
                },
                line,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(v: Vec<Locked>) -> Vec<String> {
        v.into_iter()
            .map(|l| {
                format!(
                    "{}@{}:{}:{}",
                    l.spec.name,
                    l.spec.version.unwrap_or_default(),
                    l.line.unwrap_or(0),
                    l.spec.specifier.unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn uv_skips_root_project() {
        let text = "version = 1\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = { editable = \".\" }\n\n[[package]]\nname = \"jeIlyfish\"\nversion = \"0.5.1\"\nsource = { registry = \"https://pypi.org/simple\" }\n\n[[package]]\nname = \"g\"\nversion = \"1.0\"\nsource = { git = \"https://example.invalid/g.git\" }\n";
        assert_eq!(
            summary(toml_lock(text, DeclaredKind::UvLock).unwrap()),
            vec![
                "jeIlyfish@0.5.1:9:",
                "g@1.0:14:https://example.invalid/g.git"
            ]
        );
    }

    #[test]
    fn pylock_uses_packages() {
        let text = "lock-version = \"1.0\"\n[[packages]]\nname = \"six\"\nversion = \"1.16.0\"\n[[packages]]\nname = \"v\"\n[packages.vcs]\ntype = \"git\"\nurl = \"https://example.invalid/v.git\"\ncommit-id = \"00\"\n";
        assert_eq!(
            summary(toml_lock(text, DeclaredKind::Pylock).unwrap()),
            vec!["six@1.16.0:3:", "v@:6:https://example.invalid/v.git"]
        );
    }

    #[test]
    fn wrong_shapes() {
        let err = toml_lock("[tool.black]\nline-length = 88\n", DeclaredKind::PoetryLock)
            .err()
            .unwrap();
        assert!(err.contains("poetry.lock"), "{err}");
        let err = toml_lock("package = \"x\"\n", DeclaredKind::PdmLock)
            .err()
            .unwrap();
        assert!(err.contains("pdm.lock"), "{err}");
        assert!(toml_lock(
            "[metadata]\nlock-version = \"2.0\"\n",
            DeclaredKind::PoetryLock
        )
        .unwrap()
        .is_empty());
        let err = pipfile_lock("[1, 2]").err().unwrap();
        assert!(err.contains("JSON object"), "{err}");
        assert!(pipfile_lock("{\"x\": 1}").is_err());
        assert!(pipfile_lock("{\"default\": {\"a\": 3}}").is_err());
    }

    #[test]
    fn pipfile_sections_and_lines() {
        let text = "{\n  \"_meta\": {\"hash\": {}},\n  \"default\": {\n    \"jeIlyfish\": {\"version\": \"==0.5.1\"}\n  },\n  \"develop\": {\n    \"jeIlyfish\": {\"version\": \"==0.5.2\"},\n    \"g\": {\"git\": \"https://example.invalid/g.git\"}\n  }\n}\n";
        assert_eq!(
            summary(pipfile_lock(text).unwrap()),
            vec![
                "jeIlyfish@0.5.1:4:==0.5.1",
                "g@:8:https://example.invalid/g.git",
                "jeIlyfish@0.5.2:7:==0.5.2"
            ]
        );
    }
}
