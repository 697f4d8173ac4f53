//! The local intel database: OSV records imported by `pyward intel import`, stored in SQLite and
//! read offline by every scan.
//!
//! One row per record id (upsert; the newest `modified` wins), the record itself kept as JSON so
//! that the schema can grow without migrations of every field. Imports are logged so that
//! `pyward intel status` can say what is loaded and from when.

use crate::error::IntelError;
use crate::osv::{self, Parsed};
use crate::record::{MaliciousRecord, RecordKind};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::Serialize;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Largest OSV JSON document read (real records are a few KiB).
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;
/// Most entries read from one zip (OSV's PyPI export holds tens of thousands; ossf's whole
/// repository a few hundred thousand).
pub const MAX_ZIP_ENTRIES: usize = 2_000_000;
/// Largest compression ratio accepted for a zip entry above 1 MiB (JSON compresses ~10×).
pub const MAX_ZIP_RATIO: u64 = 200;
/// Most bytes read in one import, all documents together.
pub const MAX_IMPORT_BYTES: u64 = 8 << 30;
/// Deepest folder nesting followed in a folder import.
const MAX_DEPTH: usize = 64;
/// Most warning messages kept (all are counted).
const MAX_WARNINGS: usize = 200;

const SCHEMA_VERSION: i64 = 1;

/// One problem with one input file; the import went on without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportWarning {
    pub input: String,
    pub message: String,
}

impl fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.input, self.message)
    }
}

/// What one import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportStats {
    pub source: String,
    /// JSON documents read.
    pub documents: u64,
    /// Records written (new, or newer than the stored copy).
    pub stored: u64,
    /// Of those, malicious-package records.
    pub malicious: u64,
    /// Of those, ordinary vulnerability records (stored, not reported as malicious).
    pub vulnerabilities: u64,
    /// Of those, withdrawn records (stored, never matched).
    pub withdrawn: u64,
    /// Records skipped because the stored copy has a newer `modified`.
    pub unchanged: u64,
    /// Documents about other ecosystems only.
    pub other_ecosystems: u64,
    /// Documents that could not be used (malformed JSON, no id, too large...).
    pub bad: u64,
    /// The first warnings (all are counted in `bad`/`skipped`).
    pub warnings: Vec<ImportWarning>,
    /// Files not read at all (symlinks, too deep, too large).
    pub skipped: u64,
}

impl ImportStats {
    fn warn(&mut self, input: impl Into<String>, message: impl Into<String>) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(ImportWarning {
                input: input.into(),
                message: message.into(),
            });
        }
    }
}

impl fmt::Display for ImportStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "imported {}", self.source)?;
        writeln!(
            f,
            "  {} documents read: {} PyPI records stored ({} malicious, {} vulnerabilities, {} withdrawn), \
             {} unchanged, {} for other ecosystems, {} bad, {} files skipped",
            self.documents,
            self.stored,
            self.malicious,
            self.vulnerabilities,
            self.withdrawn,
            self.unchanged,
            self.other_ecosystems,
            self.bad,
            self.skipped
        )?;
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        let shown = self.warnings.len() as u64;
        if self.bad + self.skipped > shown {
            writeln!(
                f,
                "  ({} more warnings not shown)",
                self.bad + self.skipped - shown
            )?;
        }
        Ok(())
    }
}

/// One past import, as logged in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportLog {
    pub source: String,
    pub imported_at: String,
    pub documents: u64,
    pub stored: u64,
    pub bad: u64,
}

/// What intelligence is loaded: `pyward intel status`.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub database: String,
    pub database_exists: bool,
    pub builtin_records: usize,
    pub imported_malicious: u64,
    pub imported_vulnerabilities: u64,
    pub imported_withdrawn: u64,
    pub imports: Vec<ImportLog>,
    pub last_import: Option<String>,
    /// The newest `modified` time among imported records: how fresh the data is.
    pub newest_modified: Option<String>,
    /// Where the popular-name corpus came from and its date.
    pub popular_corpus: String,
    pub popular_names: usize,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "built-in known-malicious records: {}",
            self.builtin_records
        )?;
        writeln!(
            f,
            "popular-name corpus: {} names ({})",
            self.popular_names, self.popular_corpus
        )?;
        if !self.database_exists {
            writeln!(
                f,
                "database: {} (not created yet; run `pyward intel import PATH`)",
                self.database
            )?;
            return Ok(());
        }
        writeln!(f, "database: {}", self.database)?;
        writeln!(
            f,
            "imported records: {} malicious, {} vulnerabilities (not used as malicious), {} withdrawn (not matched)",
            self.imported_malicious, self.imported_vulnerabilities, self.imported_withdrawn
        )?;
        writeln!(
            f,
            "newest record modified: {}",
            self.newest_modified.as_deref().unwrap_or("-")
        )?;
        writeln!(
            f,
            "last import: {}",
            self.last_import.as_deref().unwrap_or("never")
        )?;
        for i in &self.imports {
            writeln!(
                f,
                "  {}  {}  ({} documents, {} stored, {} bad)",
                i.imported_at, i.source, i.documents, i.stored, i.bad
            )?;
        }
        Ok(())
    }
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Compare two OSV timestamps; RFC 3339 parsed when possible, else compared as text.
fn newer(a: &str, b: &str) -> bool {
    match (
        OffsetDateTime::parse(a.trim(), &Rfc3339),
        OffsetDateTime::parse(b.trim(), &Rfc3339),
    ) {
        (Ok(x), Ok(y)) => x > y,
        _ => a.trim() > b.trim(),
    }
}

fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS records (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            withdrawn INTEGER NOT NULL,
            modified TEXT,
            names TEXT NOT NULL,
            source TEXT NOT NULL,
            record TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS imports (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            source TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            documents INTEGER NOT NULL,
            stored INTEGER NOT NULL,
            bad INTEGER NOT NULL
         );",
    )?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
}

/// Import OSV records from `source` (a JSON file, a folder of them searched recursively, or a
/// zip) into the database at `db_path`, creating it and its folder if needed. PyPI records are
/// kept; a record replaces a stored one with the same id unless the stored one is newer.
/// Bad documents become warnings; a source that is none of the accepted kinds is an error.
/// Nothing is fetched: `source` is a local path.
pub fn import(db_path: &Path, source: &Path) -> Result<ImportStats, IntelError> {
    let meta = fs::metadata(source).map_err(|e| IntelError::io(source, e))?;
    let mut stats = ImportStats {
        source: source.display().to_string(),
        ..Default::default()
    };
    let kind = if meta.is_dir() {
        SourceKind::Folder
    } else if meta.is_file() {
        sniff(source)?
    } else {
        return Err(IntelError::input(
            source.display(),
            "not a file or folder: give an OSV JSON file, a folder of them, or a zip",
        ));
    };

    // Open a zip before creating the database, so that a bad source writes nothing.
    let zip = match kind {
        SourceKind::Zip => Some(open_zip(source)?),
        _ => None,
    };
    if let Some(parent) = db_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| IntelError::io(parent, e))?;
    }
    let mut conn = Connection::open(db_path).map_err(|e| IntelError::db(db_path, e))?;
    create_schema(&conn).map_err(|e| IntelError::db(db_path, e))?;
    let tx = conn.transaction().map_err(|e| IntelError::db(db_path, e))?;
    {
        let mut store = |label: &str, bytes: &[u8], stats: &mut ImportStats| {
            store_document(&tx, label, bytes, stats).map_err(|e| IntelError::db(db_path, e))
        };
        match kind {
            SourceKind::Folder => walk_folder(source, &mut stats, &mut store)?,
            SourceKind::Zip => {
                if let Some(zip) = zip {
                    read_zip(source, zip, &mut stats, &mut store)?
                }
            }
            SourceKind::Json => {
                if let Some(bytes) = read_capped(source, &mut stats)? {
                    store_json_file(
                        &source.display().to_string(),
                        &bytes,
                        &mut stats,
                        &mut store,
                    )?;
                }
            }
        }
        let st = &stats;
        tx.execute(
            "INSERT INTO imports (source, imported_at, documents, stored, bad) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![st.source, now(), st.documents as i64, st.stored as i64, st.bad as i64],
        )
        .map_err(|e| IntelError::db(db_path, e))?;
    }
    tx.commit().map_err(|e| IntelError::db(db_path, e))?;
    Ok(stats)
}

#[derive(Clone, Copy)]
enum SourceKind {
    Folder,
    Zip,
    Json,
}

/// Tell a zip from JSON by content, not by name.
fn sniff(path: &Path) -> Result<SourceKind, IntelError> {
    let mut head = [0u8; 512];
    let n = fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| IntelError::io(path, e))?;
    let head = head.get(..n).unwrap_or(&[]);
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(SourceKind::Zip);
    }
    let first = head
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF);
    match first {
        Some(b'{') | Some(b'[') => Ok(SourceKind::Json),
        _ => Err(IntelError::input(
            path.display(),
            "not an OSV JSON file or a zip: give an OSV JSON file, a folder of them, or a zip such as OSV's PyPI all.zip",
        )),
    }
}

/// Read a file of at most [`MAX_DOCUMENT_BYTES`]; too large → warning and `None`.
fn read_capped(path: &Path, stats: &mut ImportStats) -> Result<Option<Vec<u8>>, IntelError> {
    let f = fs::File::open(path).map_err(|e| IntelError::io(path, e))?;
    let mut bytes = Vec::new();
    f.take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| IntelError::io(path, e))?;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        stats.skipped += 1;
        stats.warn(path.display().to_string(), "larger than 16 MiB; skipped");
        return Ok(None);
    }
    Ok(Some(bytes))
}

type Store<'a> = dyn FnMut(&str, &[u8], &mut ImportStats) -> Result<(), IntelError> + 'a;

/// A single JSON file may hold one record or an array of records.
fn store_json_file(
    label: &str,
    bytes: &[u8],
    stats: &mut ImportStats,
    store: &mut Store<'_>,
) -> Result<(), IntelError> {
    let trimmed = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .and_then(|i| bytes.get(i..));
    if trimmed.is_some_and(|t| t.starts_with(b"[")) {
        match serde_json::from_slice::<Vec<serde_json::Value>>(bytes) {
            Ok(items) => {
                for (i, item) in items.iter().enumerate() {
                    let s = serde_json::to_vec(item).unwrap_or_default();
                    store(&format!("{label}[{i}]"), &s, stats)?;
                }
                Ok(())
            }
            Err(e) => {
                stats.documents += 1;
                stats.bad += 1;
                stats.warn(label, format!("not valid JSON: {e}"));
                Ok(())
            }
        }
    } else {
        store(label, bytes, stats)
    }
}

fn walk_folder(
    root: &Path,
    stats: &mut ImportStats,
    store: &mut Store<'_>,
) -> Result<(), IntelError> {
    let mut stack: Vec<(PathBuf, usize)> = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if depth == 0 => return Err(IntelError::io(&dir, e)),
            Err(e) => {
                stats.skipped += 1;
                stats.warn(
                    dir.display().to_string(),
                    format!("cannot read folder: {e}"),
                );
                continue;
            }
        };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries.into_iter().rev() {
            let path = entry.path();
            // file_type() does not follow symlinks: a link could lead out of the folder.
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_symlink() {
                stats.skipped += 1;
                stats.warn(path.display().to_string(), "symbolic link; not followed");
            } else if ft.is_dir() {
                if depth + 1 > MAX_DEPTH {
                    stats.skipped += 1;
                    stats.warn(
                        path.display().to_string(),
                        "folder nested too deep; skipped",
                    );
                } else {
                    stack.push((path, depth + 1));
                }
            } else if ft.is_file() && is_json_name(&path.to_string_lossy()) {
                if let Some(bytes) = read_capped(&path, stats)? {
                    store(&path.display().to_string(), &bytes, stats)?;
                }
            }
        }
    }
    Ok(())
}

fn is_json_name(name: &str) -> bool {
    name.len() >= 5
        && name
            .get(name.len() - 5..)
            .is_some_and(|ext| ext.eq_ignore_ascii_case(".json"))
}

type Zip = zip::ZipArchive<std::io::BufReader<fs::File>>;

fn open_zip(path: &Path) -> Result<Zip, IntelError> {
    let file = fs::File::open(path).map_err(|e| IntelError::io(path, e))?;
    let zip = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| {
        IntelError::input(path.display(), format!("not a readable zip archive: {e}"))
    })?;
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(IntelError::input(
            path.display(),
            format!(
                "zip has {} entries, more than the {MAX_ZIP_ENTRIES} accepted",
                zip.len()
            ),
        ));
    }
    Ok(zip)
}

fn read_zip(
    path: &Path,
    mut zip: Zip,
    stats: &mut ImportStats,
    store: &mut Store<'_>,
) -> Result<(), IntelError> {
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                stats.bad += 1;
                stats.warn(
                    format!("{}!#{i}", path.display()),
                    format!("unreadable zip entry: {e}"),
                );
                continue;
            }
        };
        let name = entry.name().to_string();
        let label = format!("{}!{name}", path.display());
        if entry.is_dir() || !is_json_name(&name) {
            continue;
        }
        let (size, packed) = (entry.size(), entry.compressed_size());
        if size > MAX_DOCUMENT_BYTES {
            stats.skipped += 1;
            stats.warn(label, "larger than 16 MiB; skipped");
            continue;
        }
        if size > (1 << 20) && size / packed.max(1) > MAX_ZIP_RATIO {
            stats.skipped += 1;
            stats.warn(
                label,
                "compression ratio too high (possible zip bomb); skipped",
            );
            continue;
        }
        let mut bytes = Vec::new();
        // The declared size can lie: cap what is actually inflated.
        if let Err(e) = (&mut entry)
            .take(MAX_DOCUMENT_BYTES + 1)
            .read_to_end(&mut bytes)
        {
            stats.bad += 1;
            stats.warn(label, format!("cannot decompress: {e}"));
            continue;
        }
        if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
            stats.skipped += 1;
            stats.warn(label, "larger than 16 MiB once decompressed; skipped");
            continue;
        }
        total += bytes.len() as u64;
        if total > MAX_IMPORT_BYTES {
            return Err(IntelError::input(
                path.display(),
                "zip expands to more than 8 GiB of JSON; import a smaller export (e.g. OSV's PyPI all.zip)",
            ));
        }
        store(&label, &bytes, stats)?;
    }
    Ok(())
}

/// Case-insensitive search for `pypi`: documents that never mention it are about other
/// ecosystems and are not parsed (ossf's repository is mostly npm).
fn mentions_pypi(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w.eq_ignore_ascii_case(b"pypi"))
}

fn store_document(
    tx: &rusqlite::Transaction<'_>,
    label: &str,
    bytes: &[u8],
    stats: &mut ImportStats,
) -> rusqlite::Result<()> {
    stats.documents += 1;
    if !mentions_pypi(bytes) {
        // Not ours; still say so if it is not even JSON.
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            stats.bad += 1;
            stats.warn(label, format!("not valid JSON: {e}"));
        } else {
            stats.other_ecosystems += 1;
        }
        return Ok(());
    }
    let record = match osv::parse(bytes, label) {
        Ok(Parsed::Record(r)) => r,
        Ok(Parsed::OtherEcosystem) => {
            stats.other_ecosystems += 1;
            return Ok(());
        }
        Err(e) => {
            stats.bad += 1;
            stats.warn(label, e);
            return Ok(());
        }
    };
    let stored: Option<Option<String>> = tx
        .query_row(
            "SELECT modified FROM records WHERE id = ?1",
            params![record.id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(Some(old)) = &stored {
        if record.modified.as_deref().is_none_or(|new| newer(old, new)) {
            stats.unchanged += 1;
            return Ok(());
        }
    }
    let json = match serde_json::to_string(&record) {
        Ok(j) => j,
        Err(e) => {
            stats.bad += 1;
            stats.warn(label, format!("cannot store record: {e}"));
            return Ok(());
        }
    };
    let names: Vec<String> = record.package_names().collect();
    tx.execute(
        "INSERT OR REPLACE INTO records (id, kind, withdrawn, modified, names, source, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            record.id,
            record.kind.as_str(),
            record.is_withdrawn() as i64,
            record.modified,
            names.join(" "),
            label,
            json
        ],
    )?;
    stats.stored += 1;
    if record.is_withdrawn() {
        stats.withdrawn += 1;
    }
    match record.kind {
        RecordKind::Malicious => stats.malicious += 1,
        RecordKind::Vulnerability => stats.vulnerabilities += 1,
    }
    Ok(())
}

/// Open an existing database read-only.
fn open_ro(db_path: &Path) -> Result<Connection, IntelError> {
    let conn = Connection::open_with_flags(
        db_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| IntelError::db(db_path, e))?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| IntelError::db(db_path, e))?;
    if version != SCHEMA_VERSION {
        return Err(IntelError::input(
            db_path.display(),
            format!(
                "intel database schema version {version}, expected {SCHEMA_VERSION}; delete it and run `pyward intel import` again"
            ),
        ));
    }
    Ok(conn)
}

/// The malicious, not withdrawn records of the database, for matching.
pub(crate) fn load_malicious(db_path: &Path) -> Result<Vec<MaliciousRecord>, IntelError> {
    let conn = open_ro(db_path)?;
    let mut stmt = conn
        .prepare(
            "SELECT id, record FROM records WHERE kind = 'malicious' AND withdrawn = 0 ORDER BY id",
        )
        .map_err(|e| IntelError::db(db_path, e))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(|e| IntelError::db(db_path, e))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, json) = row.map_err(|e| IntelError::db(db_path, e))?;
        let rec: MaliciousRecord = serde_json::from_str(&json).map_err(|e| {
            IntelError::input(
                db_path.display(),
                format!(
                    "stored record {id} is corrupt ({e}); delete the database and import again"
                ),
            )
        })?;
        out.push(rec);
    }
    Ok(out)
}

/// What is loaded: built-in records, and what the database at `db_path` holds (a database
/// that does not exist yet is reported as such, not as an error).
pub fn status(db_path: &Path) -> Result<Status, IntelError> {
    let corpus = crate::names::corpus();
    let mut st = Status {
        database: db_path.display().to_string(),
        database_exists: db_path.exists(),
        builtin_records: crate::builtin::records().len(),
        imported_malicious: 0,
        imported_vulnerabilities: 0,
        imported_withdrawn: 0,
        imports: Vec::new(),
        last_import: None,
        newest_modified: None,
        popular_corpus: crate::names::CORPUS_SOURCE.to_string(),
        popular_names: corpus.len(),
    };
    if !st.database_exists {
        return Ok(st);
    }
    let conn = open_ro(db_path)?;
    let dberr = |e| IntelError::db(db_path, e);
    let count = |sql: &str| -> Result<u64, IntelError> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(dberr)
    };
    st.imported_malicious =
        count("SELECT COUNT(*) FROM records WHERE kind = 'malicious' AND withdrawn = 0")?;
    st.imported_vulnerabilities =
        count("SELECT COUNT(*) FROM records WHERE kind = 'vulnerability' AND withdrawn = 0")?;
    st.imported_withdrawn = count("SELECT COUNT(*) FROM records WHERE withdrawn = 1")?;
    {
        let mut stmt = conn
            .prepare("SELECT modified FROM records WHERE modified IS NOT NULL")
            .map_err(dberr)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(dberr)?;
        for m in rows {
            let m = m.map_err(dberr)?;
            if st
                .newest_modified
                .as_deref()
                .is_none_or(|cur| newer(&m, cur))
            {
                st.newest_modified = Some(m);
            }
        }
    }
    let mut stmt = conn
        .prepare("SELECT source, imported_at, documents, stored, bad FROM imports ORDER BY seq")
        .map_err(dberr)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(ImportLog {
                source: r.get(0)?,
                imported_at: r.get(1)?,
                documents: r.get::<_, i64>(2)?.max(0) as u64,
                stored: r.get::<_, i64>(3)?.max(0) as u64,
                bad: r.get::<_, i64>(4)?.max(0) as u64,
            })
        })
        .map_err(dberr)?;
    for r in rows {
        st.imports.push(r.map_err(dberr)?);
    }
    st.last_import = st.imports.last().map(|i| i.imported_at.clone());
    Ok(st)
}
