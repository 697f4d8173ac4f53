//! The `--baseline` of the `drift` gate: a previous pyward JSON report or a CycloneDX SBOM.

use std::collections::BTreeMap;
use std::path::Path;

/// Largest baseline file read.
const MAX_BASELINE: u64 = 256 * 1024 * 1024;

/// Packages of the baseline: normalised name → (name as written, version).
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub source: String,
    pub packages: BTreeMap<String, (String, Option<String>)>,
}

impl Baseline {
    /// Read a pyward JSON report (`packages[]`, installed ones) or a CycloneDX JSON SBOM
    /// (`components[]` of type library, pypi purls or any name).
    pub fn load(path: &Path) -> Result<Baseline, String> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("{name}: cannot read the baseline: {e}"))?;
        if meta.len() > MAX_BASELINE {
            return Err(format!(
                "{name}: the baseline is {} bytes, over the {MAX_BASELINE}-byte limit",
                meta.len()
            ));
        }
        let bytes =
            std::fs::read(path).map_err(|e| format!("{name}: cannot read the baseline: {e}"))?;
        Baseline::from_json(&bytes, &name)
    }

    pub fn from_json(bytes: &[u8], name: &str) -> Result<Baseline, String> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("{name}: not JSON ({e}); pass a pyward JSON report (--format json) or a CycloneDX JSON SBOM"))?;
        let mut out = Baseline {
            source: name.to_string(),
            packages: BTreeMap::new(),
        };
        let mut add = |n: &str, ver: Option<&str>| {
            if !n.is_empty() {
                out.packages
                    .entry(pyward_core::normalize_name(n))
                    .or_insert((n.to_string(), ver.map(str::to_string)));
            }
        };
        if v.get("bomFormat").and_then(|b| b.as_str()) == Some("CycloneDX") {
            for c in v
                .get("components")
                .and_then(|c| c.as_array())
                .into_iter()
                .flatten()
            {
                let purl = c.get("purl").and_then(|p| p.as_str()).unwrap_or("");
                if !purl.is_empty() && !purl.starts_with("pkg:pypi/") {
                    continue;
                }
                if let Some(n) = c.get("name").and_then(|n| n.as_str()) {
                    add(n, c.get("version").and_then(|v| v.as_str()));
                }
            }
        } else if let Some(pkgs) = v.get("packages").and_then(|p| p.as_array()) {
            for p in pkgs {
                let installed =
                    p.pointer("/source/type").and_then(|t| t.as_str()) == Some("installed");
                if !installed {
                    continue;
                }
                if let Some(n) = p.get("name").and_then(|n| n.as_str()) {
                    add(n, p.get("version").and_then(|v| v.as_str()));
                }
            }
        } else {
            return Err(format!(
                "{name}: neither a pyward JSON report (no `packages`) nor a CycloneDX SBOM (no `bomFormat`)"
            ));
        }
        Ok(out)
    }
}
