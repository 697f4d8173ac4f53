//! `pyproject.toml`: PEP 621 `[project]` dependencies and optional dependencies, PEP 735
//! `[dependency-groups]`, `[build-system] requires`, and Poetry's `[tool.poetry]` dependency
//! tables. The project's own name is never listed as its dependency.

use super::spec::{parse_spec, DeclaredSpec};
use super::LineIndex;
use pep440_rs::Version;
use pyward_core::normalize_name;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::str::FromStr;
use toml::Spanned;

#[derive(Debug, Deserialize)]
struct Pyproject {
    project: Option<Project>,
    #[serde(rename = "dependency-groups")]
    dependency_groups: Option<BTreeMap<String, Vec<Spanned<toml::Value>>>>,
    #[serde(rename = "build-system")]
    build_system: Option<BuildSystem>,
    tool: Option<Tools>,
}

#[derive(Debug, Deserialize)]
struct Project {
    name: Option<String>,
    dependencies: Option<Vec<Spanned<String>>>,
    #[serde(rename = "optional-dependencies")]
    optional_dependencies: Option<BTreeMap<String, Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
struct BuildSystem {
    requires: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
struct Tools {
    poetry: Option<Poetry>,
}

/// Poetry's dependency tables map a name to a constraint string, a table, or a list of tables.
type PoetryDeps = BTreeMap<String, Spanned<toml::Value>>;

#[derive(Debug, Deserialize)]
struct Poetry {
    name: Option<String>,
    dependencies: Option<PoetryDeps>,
    #[serde(rename = "dev-dependencies")]
    dev_dependencies: Option<PoetryDeps>,
    group: Option<BTreeMap<String, PoetryGroup>>,
}

#[derive(Debug, Deserialize)]
struct PoetryGroup {
    dependencies: Option<PoetryDeps>,
}

/// One dependency found: the spec, its 1-based line, and a problem to warn about.
pub struct Found {
    pub spec: Option<DeclaredSpec>,
    pub line: Option<u32>,
    pub problem: Option<String>,
}

/// Every dependency a pyproject.toml declares, or why the file could not be read.
pub fn dependencies(text: &str) -> Result<Vec<Found>, String> {
    let doc: Pyproject = toml::from_str(text)
        .map_err(|e| format!("is not a valid pyproject.toml: {}", super::toml_error(&e)))?;
    let lines = LineIndex::new(text);
    let mut own: Vec<String> = Vec::new();
    if let Some(n) = doc.project.as_ref().and_then(|p| p.name.as_deref()) {
        own.push(normalize_name(n));
    }
    if let Some(n) = doc
        .tool
        .as_ref()
        .and_then(|t| t.poetry.as_ref())
        .and_then(|p| p.name.as_deref())
    {
        own.push(normalize_name(n));
    }
    let mut out = Vec::new();
    let pep508 = |s: &Spanned<String>, out: &mut Vec<Found>| {
        let parsed = parse_spec(s.get_ref());
        out.push(Found {
            spec: parsed.spec,
            line: Some(lines.line(s.span().start)),
            problem: parsed.problem,
        });
    };
    if let Some(project) = &doc.project {
        for s in project.dependencies.iter().flatten() {
            pep508(s, &mut out);
        }
        for s in project
            .optional_dependencies
            .iter()
            .flat_map(|m| m.values())
            .flatten()
        {
            pep508(s, &mut out);
        }
    }
    for s in doc
        .build_system
        .iter()
        .flat_map(|b| b.requires.iter())
        .flatten()
    {
        pep508(s, &mut out);
    }
    for (group, items) in doc.dependency_groups.iter().flatten() {
        for item in items {
            match item.get_ref() {
                toml::Value::String(s) => {
                    let parsed = parse_spec(s);
                    out.push(Found {
                        spec: parsed.spec,
                        line: Some(lines.line(item.span().start)),
                        problem: parsed.problem,
                    });
                }
                toml::Value::Table(t) if t.contains_key("include-group") => {}
                _ => out.push(Found {
                    spec: None,
                    line: Some(lines.line(item.span().start)),
                    problem: Some(format!(
                        "[dependency-groups] {group}: expected a requirement string or \
                         {{include-group = \"...\"}}; entry skipped"
                    )),
                }),
            }
        }
    }
    if let Some(poetry) = doc.tool.as_ref().and_then(|t| t.poetry.as_ref()) {
        let tables = poetry
            .dependencies
            .iter()
            .chain(poetry.dev_dependencies.iter())
            .chain(
                poetry
                    .group
                    .iter()
                    .flat_map(|g| g.values())
                    .filter_map(|g| g.dependencies.as_ref()),
            );
        for table in tables {
            for (name, value) in table {
                if name.eq_ignore_ascii_case("python") {
                    continue;
                }
                out.push(Found {
                    spec: Some(poetry_spec(name, value.get_ref())),
                    line: Some(lines.line(value.span().start)),
                    problem: None,
                });
            }
        }
    }
    out.retain(|f| {
        f.spec
            .as_ref()
            .is_none_or(|s| !own.contains(&normalize_name(&s.name)))
    });
    Ok(out)
}

/// A Poetry constraint (`^1.2`, `1.2.3`, `{version = "..."}`, `{git = "..."}`, a list of those).
fn poetry_spec(name: &str, value: &toml::Value) -> DeclaredSpec {
    let constraint = match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Table(t) => ["version", "git", "url", "path"]
            .iter()
            .find_map(|k| t.get(*k).and_then(|v| v.as_str()).map(str::to_string)),
        toml::Value::Array(list) => {
            let parts: Vec<String> = list
                .iter()
                .filter_map(|v| {
                    v.get("version")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join(" || "))
        }
        _ => None,
    };
    let constraint = constraint
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty() && c != "*");
    // Poetry reads a bare version (`1.2.3`) as an exact pin.
    let version = constraint.as_deref().and_then(|c| {
        let v = c.strip_prefix("==").unwrap_or(c).trim();
        Version::from_str(v).ok().map(|v| v.to_string())
    });
    DeclaredSpec {
        name: name.to_string(),
        version,
        specifier: constraint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, Option<String>, Option<u32>)> {
        dependencies(text)
            .unwrap()
            .into_iter()
            .filter_map(|f| f.spec.map(|s| (s.name, s.version, f.line)))
            .collect()
    }

    #[test]
    fn pep621_groups_poetry() {
        let text = r#"
[build-system]
requires = ["setuptools>=61"]

[project]
name = "Demo_App"
dependencies = [
  "jeIlyfish==0.5.1",
  "requests>=2",
]
[project.optional-dependencies]
dev = ["demo-app[test]", "pytest"]

[dependency-groups]
lint = ["ruff==0.5.0", {include-group = "dev"}]

[tool.poetry.dependencies]
python = "^3.11"
python3-dateutil = "2.8.2"
flask = { version = "^3.0", extras = ["async"] }
multi = [{ version = "<2", python = "<3.9" }, { version = ">=2", python = ">=3.9" }]

[tool.poetry.group.test.dependencies]
hypothesis = "*"
"#;
        let got = names(text);
        let want: Vec<(String, Option<String>, Option<u32>)> = vec![
            ("jeIlyfish".into(), Some("0.5.1".into()), Some(8)),
            ("requests".into(), None, Some(9)),
            ("pytest".into(), None, Some(12)),
            ("setuptools".into(), None, Some(3)),
            ("ruff".into(), Some("0.5.0".into()), Some(15)),
            ("flask".into(), None, Some(20)),
            ("multi".into(), None, Some(21)),
            ("python3-dateutil".into(), Some("2.8.2".into()), Some(19)),
            ("hypothesis".into(), None, Some(24)),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn wrong_shape_is_an_error() {
        let err = dependencies("[project]\ndependencies = \"requests\"\n")
            .err()
            .unwrap();
        assert!(err.contains("dependencies"), "{err}");
        assert!(dependencies("not toml = = =").is_err());
    }
}
