//! `conda-meta/<name>-<version>-<build>.json`: one JSON record per conda package installed in the
//! environment whose prefix holds `conda-meta/`. Names are conda's (usually, not always, the PyPI
//! name); every conda package is reported, Python or not.

use super::{location, METADATA_LIMIT};
use crate::tree::{join_path, parent_path, FileTree};
use pyward_core::{InstalledKind, Package, PackageSource, Warning};

pub(super) fn load(
    tree: &dyn FileTree,
    file: &str,
    warnings: &mut Vec<Warning>,
) -> Option<Package> {
    let warn = |warnings: &mut Vec<Warning>, msg: String| {
        warnings.push(Warning::new(tree.display_path(file), msg));
    };
    let bytes = match tree.read(file, METADATA_LIMIT) {
        Ok(b) => b,
        Err(e) => {
            warn(warnings, format!("cannot read conda package record: {e}"));
            return None;
        }
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            warn(
                warnings,
                format!("conda package record is not valid JSON ({e}); skipped"),
            );
            return None;
        }
    };
    let Some(name) = value
        .get("name")
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
    else {
        warn(
            warnings,
            "conda package record has no `name` string; skipped".into(),
        );
        return None;
    };
    let version = value
        .get("version")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let mut pkg = Package::new(
        name,
        version,
        PackageSource::Installed(InstalledKind::Conda),
        location(tree, file),
    );
    pkg.license = value
        .get("license")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    // `files` are relative to the environment's prefix, the folder holding `conda-meta/`.
    let prefix = parent_path(parent_path(file));
    match value.get("files") {
        None => {}
        Some(serde_json::Value::Array(files)) => {
            let mut out: Vec<String> = files
                .iter()
                .filter_map(|f| f.as_str())
                .filter_map(|f| join_path(prefix, f))
                .collect();
            out.sort();
            out.dedup();
            pkg.files = out;
        }
        Some(_) => warn(
            warnings,
            "`files` is not a list; files not attributed".into(),
        ),
    }
    Some(pkg)
}
