//! Zipped `.egg` files: the package's metadata is `EGG-INFO/PKG-INFO` inside the zip. The zip is
//! read from the tree with a size limit, and each member is decompressed with a limit too, so a
//! zip bomb or a truncated egg costs a warning, never unbounded memory.

use super::metadata::parse_core_metadata;
use super::{
    from_metadata, lines, location, parse_requires_txt, split_folder_name, EGG_LIMIT,
    METADATA_LIMIT,
};
use crate::tree::FileTree;
use pyward_core::{InstalledKind, Package, PackageSource, Warning};
use std::io::{Cursor, Read};

/// The metadata members of an egg that pyward uses.
struct EggInfo {
    pkg_info: Vec<u8>,
    top_level: Option<Vec<u8>>,
    requires: Option<Vec<u8>>,
}

pub(super) fn load_zipped(
    tree: &dyn FileTree,
    file: &str,
    warnings: &mut Vec<Warning>,
) -> Option<Package> {
    let source = PackageSource::Installed(InstalledKind::Egg);
    let info = tree
        .read(file, EGG_LIMIT)
        .map_err(|e| format!("cannot read egg: {e}"))
        .and_then(|bytes| read_egg_info(&bytes));
    let parsed = info.and_then(|info| {
        parse_core_metadata(&info.pkg_info)
            .map(|md| (md, info))
            .map_err(|e| format!("corrupt EGG-INFO/PKG-INFO: {e}"))
    });
    match parsed {
        Ok((md, info)) => {
            let mut pkg = from_metadata(tree, file, md, source);
            if let Some(t) = info.top_level {
                pkg.top_level = lines(&t);
            }
            if pkg.requires.is_empty() {
                if let Some(r) = info.requires {
                    pkg.requires = parse_requires_txt(&String::from_utf8_lossy(&r));
                }
            }
            pkg.files = vec![file.to_string()];
            Some(pkg)
        }
        Err(problem) => {
            let file_name = file.rsplit('/').next().unwrap_or(file);
            let (name, version) = split_folder_name(file_name, ".egg");
            if name.is_empty() {
                warnings.push(Warning::new(
                    tree.display_path(file),
                    format!("{problem}; no package name in the file name either, skipped"),
                ));
                return None;
            }
            warnings.push(Warning::new(
                tree.display_path(file),
                format!(
                    "{problem}; reported as {name} {} from the file name",
                    version.as_deref().unwrap_or("(no version)")
                ),
            ));
            let mut pkg = Package::new(name, version, source, location(tree, file));
            pkg.files = vec![file.to_string()];
            Some(pkg)
        }
    }
}

/// Open the egg's zip and read its metadata members.
fn read_egg_info(bytes: &[u8]) -> Result<EggInfo, String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| format!("not a readable zip (truncated or corrupt egg?): {e}"))?;
    let pkg_info = read_member(&mut zip, "EGG-INFO/PKG-INFO")?
        .ok_or_else(|| "no EGG-INFO/PKG-INFO in the egg".to_string())?;
    // Optional members: a problem with them does not hide the package.
    let top_level = read_member(&mut zip, "EGG-INFO/top_level.txt")
        .ok()
        .flatten();
    let requires = read_member(&mut zip, "EGG-INFO/requires.txt")
        .ok()
        .flatten();
    Ok(EggInfo {
        pkg_info,
        top_level,
        requires,
    })
}

/// One member, at most [`METADATA_LIMIT`] bytes once decompressed whatever its header says.
fn read_member(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
) -> Result<Option<Vec<u8>>, String> {
    let member = match zip.by_name(name) {
        Ok(m) => m,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("cannot read {name} in the egg: {e}")),
    };
    if member.size() > METADATA_LIMIT {
        return Err(format!(
            "{name} in the egg declares {} bytes uncompressed, over the {METADATA_LIMIT}-byte \
             limit (a zip bomb?)",
            member.size()
        ));
    }
    let mut out = Vec::new();
    member
        .take(METADATA_LIMIT + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot decompress {name} in the egg (truncated?): {e}"))?;
    if out.len() as u64 > METADATA_LIMIT {
        return Err(format!(
            "{name} in the egg decompresses past the {METADATA_LIMIT}-byte limit (a zip bomb?)"
        ));
    }
    Ok(Some(out))
}
