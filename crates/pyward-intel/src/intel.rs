//! [`Intel`]: the known-malicious records in memory (built-in plus the local database), indexed
//! by normalised name so that a lookup is one hash probe.

use crate::db;
use crate::error::IntelError;
use crate::record::MaliciousRecord;
use pyward_core::normalize_name;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Known-malicious packages and their IOCs, loaded once per run. Never reaches the network.
#[derive(Debug, Clone)]
pub struct Intel {
    records: Vec<MaliciousRecord>,
    by_name: HashMap<String, Vec<usize>>,
    /// `(path suffix, record index)` for every file IOC.
    files: Vec<(String, usize)>,
    builtin: usize,
    db_path: Option<PathBuf>,
}

/// A file IOC: a path (relative to site-packages) whose presence means the record's malware.
#[derive(Debug, Clone, Copy)]
pub struct FileIoc<'a> {
    pub path: &'a str,
    pub record: &'a MaliciousRecord,
}

impl Intel {
    /// The built-in records only.
    pub fn builtin() -> Intel {
        Intel::from_records(crate::builtin::records().to_vec(), None)
    }

    /// Built-in records plus those of the database at `db_path`, if it exists (a missing
    /// database is normal before the first `pyward intel import`).
    pub fn open(db_path: Option<&Path>) -> Result<Intel, IntelError> {
        let mut records = crate::builtin::parse()?;
        if let Some(p) = db_path.filter(|p| p.exists()) {
            let known: std::collections::HashSet<String> =
                records.iter().map(|r| r.id.clone()).collect();
            records.extend(
                db::load_malicious(p)?
                    .into_iter()
                    .filter(|r| !known.contains(&r.id)),
            );
        }
        Ok(Intel::from_records(records, db_path.map(Path::to_path_buf)))
    }

    /// Intel from explicit records (tests, embedding); records with a `Builtin` source count
    /// as built-in.
    pub fn from_records(records: Vec<MaliciousRecord>, db_path: Option<PathBuf>) -> Intel {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        let mut files = Vec::new();
        for (i, r) in records.iter().enumerate() {
            if r.is_withdrawn() {
                continue;
            }
            for name in r.package_names() {
                let ids = by_name.entry(name).or_default();
                if !ids.contains(&i) {
                    ids.push(i);
                }
            }
            for f in &r.iocs.files {
                let f = f.replace('\\', "/");
                let f = f.trim_start_matches('/');
                if !f.is_empty() {
                    files.push((f.to_string(), i));
                }
            }
        }
        let builtin = records
            .iter()
            .filter(|r| r.source == crate::record::RecordSource::Builtin)
            .count();
        Intel {
            records,
            by_name,
            files,
            builtin,
            db_path,
        }
    }

    /// `$PYWARD_DATA_DIR/intel.sqlite`, else `<XDG data dir>/pyward/intel.sqlite`
    /// (`~/.local/share/pyward/intel.sqlite` on Linux).
    pub fn default_db_path() -> Option<PathBuf> {
        match std::env::var_os("PYWARD_DATA_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => Some(PathBuf::from(dir).join("intel.sqlite")),
            None => dirs::data_dir().map(|d| d.join("pyward").join("intel.sqlite")),
        }
    }

    /// Records covering `name` (any spelling; compared PEP 503-normalised) at `version`.
    /// `None` matches a record if any version is affected. Withdrawn records never match.
    pub fn lookup(&self, name: &str, version: Option<&str>) -> Vec<&MaliciousRecord> {
        let normalized = normalize_name(name);
        self.by_name
            .get(&normalized)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.records.get(i))
            .filter(|r| r.matches(&normalized, version))
            .collect()
    }

    /// Every file IOC with its record.
    pub fn file_iocs(&self) -> impl Iterator<Item = FileIoc<'_>> {
        self.files.iter().filter_map(|(p, i)| {
            self.records
                .get(*i)
                .map(|record| FileIoc { path: p, record })
        })
    }

    /// File IOCs matched by `path`: the path equals the IOC or ends with it at a component
    /// boundary (`/`, or `!` inside an archive). Case-sensitive, as file systems are.
    pub fn match_file(&self, path: &str) -> Vec<FileIoc<'_>> {
        let path = path.replace('\\', "/");
        self.file_iocs()
            .filter(|ioc| {
                path == ioc.path
                    || path
                        .strip_suffix(ioc.path)
                        .is_some_and(|head| head.ends_with(['/', '!']))
            })
            .collect()
    }

    /// Every IP address or CIDR IOC of the matchable records, with its record (for runtime
    /// bad-IP lists).
    pub fn network_iocs(&self) -> impl Iterator<Item = (&str, &MaliciousRecord)> {
        self.records
            .iter()
            .filter(|r| !r.is_withdrawn())
            .flat_map(|r| {
                r.iocs
                    .ips
                    .iter()
                    .chain(&r.iocs.cidrs)
                    .map(move |ip| (ip.as_str(), r))
            })
    }

    /// All loaded records (withdrawn ones included).
    pub fn records(&self) -> &[MaliciousRecord] {
        &self.records
    }

    /// Number of built-in records loaded.
    pub fn builtin_count(&self) -> usize {
        self.builtin
    }

    /// Number of records loaded from the database.
    pub fn imported_count(&self) -> usize {
        self.records.len() - self.builtin
    }

    /// The database these records were loaded from, if any.
    pub fn db_path(&self) -> Option<&Path> {
        self.db_path.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_network_iocs() {
        let intel = Intel::builtin();
        let hits = intel.match_file("/usr/lib/python3/site-packages/jeIlyfish/_jellyfish.py");
        assert_eq!(hits.len(), 2, "both built-in records name the file");
        assert_eq!(intel.match_file("jeIlyfish/_jellyfish.py").len(), 2);
        assert_eq!(intel.match_file("x.whl!jeIlyfish/_jellyfish.py").len(), 2);
        assert_eq!(
            intel.match_file("C:\\site\\jeIlyfish\\_jellyfish.py").len(),
            2
        );
        assert!(intel
            .match_file("/site/notjeIlyfish/_jellyfish.py")
            .is_empty());
        assert!(intel.match_file("/site/jellyfish/_jellyfish.py").is_empty());
        assert!(intel
            .network_iocs()
            .any(|(ip, r)| ip == "68.183.212.246" && r.id == "PYWARD-2019-0001"));
        assert_eq!(intel.file_iocs().count(), 2);
    }
}
