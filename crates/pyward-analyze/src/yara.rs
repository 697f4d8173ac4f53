//! YARA-X content rules: pyward's own rules (`rules/yara/*.yar`, compiled into the binary) and
//! the user's (`pyward scan --yara DIR`). Rules are compiled once per process, or loaded from the
//! per-user cache of compiled rules ([`cache`]: ≈ 3 ms instead of ≈ 20–50 ms); each thread keeps
//! one scanner. A match becomes a finding with the rule's name, its ATT&CK ids (meta `mitre`),
//! severity (meta `severity`) and the evidence (file, byte offset, line, matched text).

use crate::rules::{Kind, Rule};
use pyward_core::{MitreTechnique, Severity};
use std::borrow::Cow;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// pyward's shipped rules, as (file name, text); compiled into the binary.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "incident1.yar",
        include_str!("../../../rules/yara/incident1.yar"),
    ),
    (
        "reverse_shell.yar",
        include_str!("../../../rules/yara/reverse_shell.yar"),
    ),
    (
        "credential_theft.yar",
        include_str!("../../../rules/yara/credential_theft.yar"),
    ),
    ("miner.yar", include_str!("../../../rules/yara/miner.yar")),
    (
        "ransomware.yar",
        include_str!("../../../rules/yara/ransomware.yar"),
    ),
    (
        "persistence.yar",
        include_str!("../../../rules/yara/persistence.yar"),
    ),
];

/// Largest rule file read from a `--yara` folder.
const MAX_RULE_FILE: u64 = 8 * 1024 * 1024;

/// A rule file that does not compile, or a folder that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YaraError {
    /// The rule file (or folder) at fault.
    pub file: PathBuf,
    /// 1-based line of the first error, when the compiler gives one.
    pub line: Option<usize>,
    /// What is wrong, in one line.
    pub message: String,
    /// The compiler's full report (source excerpt with the error marked), if any.
    pub report: String,
}

impl std::fmt::Display for YaraError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.message)?,
            None => write!(f, "{}: {}", self.file.display(), self.message)?,
        }
        if !self.report.is_empty() {
            write!(f, "\n{}", self.report.trim_end())?;
        }
        write!(
            f,
            "\nfix the rule, or move the file out of the --yara folder"
        )
    }
}

impl std::error::Error for YaraError {}

/// Compiled YARA-X rules. The compiled set is leaked once per load so each thread's scanner can
/// borrow it for the life of the process (rules are loaded once per scan, not per file).
pub struct YaraRules {
    rules: &'static yara_x::Rules,
    /// The rule files, for `Debug` and the report.
    files: Vec<String>,
}

impl std::fmt::Debug for YaraRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YaraRules")
            .field("files", &self.files)
            .field("rules", &self.rules.iter().len())
            .finish()
    }
}

/// One rule file's text and where it came from.
struct Source {
    origin: String,
    path: PathBuf,
    text: String,
}

impl YaraRules {
    /// pyward's shipped rules, compiled on first use. `None` only if they failed to compile,
    /// which the crate's tests rule out.
    pub fn builtin() -> Option<&'static YaraRules> {
        static BUILT: OnceLock<Option<YaraRules>> = OnceLock::new();
        BUILT
            .get_or_init(|| YaraRules::compile(builtin_sources()).ok())
            .as_ref()
    }

    /// The shipped rules plus every `*.yar` / `*.yara` file of `dirs` (recursively, in name
    /// order). A file that does not compile is an error naming it, its line and the problem.
    pub fn load(dirs: &[PathBuf]) -> Result<YaraRules, YaraError> {
        let mut sources = builtin_sources();
        for dir in dirs {
            let mut files = Vec::new();
            collect_rule_files(dir, &mut files, 0)?;
            if files.is_empty() {
                return Err(YaraError {
                    file: dir.clone(),
                    line: None,
                    message: "no *.yar or *.yara rule files in this folder".into(),
                    report: String::new(),
                });
            }
            for f in files {
                let bytes = read_rule_file(&f)?;
                let text = String::from_utf8(bytes).map_err(|_| YaraError {
                    file: f.clone(),
                    line: None,
                    message: "not UTF-8 text".into(),
                    report: String::new(),
                })?;
                sources.push(Source {
                    origin: f.display().to_string(),
                    path: f,
                    text,
                });
            }
        }
        YaraRules::compile(sources)
    }

    fn compile(sources: Vec<Source>) -> Result<YaraRules, YaraError> {
        let files: Vec<String> = sources.iter().map(|s| s.origin.clone()).collect();
        let key = cache::key(&sources);
        if let Some(rules) = cache::load(&key) {
            let rules: &'static yara_x::Rules = Box::leak(Box::new(rules));
            return Ok(YaraRules { rules, files });
        }
        let rules = YaraRules::compile_sources(&sources)?;
        cache::store(&key, &rules);
        let rules: &'static yara_x::Rules = Box::leak(Box::new(rules));
        Ok(YaraRules { rules, files })
    }

    fn compile_sources(sources: &[Source]) -> Result<yara_x::Rules, YaraError> {
        let mut compiler = yara_x::Compiler::new();
        compiler.colorize_errors(false);
        // `include` would read files outside the folder the user named.
        compiler.enable_includes(false);
        for (i, s) in sources.iter().enumerate() {
            // One namespace per file, so two files may both define a rule `x`.
            compiler.new_namespace(&format!("f{i}"));
            if let Err(e) = compiler.add_source(
                yara_x::SourceCode::from(s.text.as_str()).with_origin(s.origin.as_str()),
            ) {
                let report = e.to_string();
                return Err(YaraError {
                    file: s.path.clone(),
                    line: report_line(&report, &s.origin),
                    message: report
                        .lines()
                        .next()
                        .unwrap_or("does not compile")
                        .trim_start_matches("error")
                        .trim_start_matches(|c| c != ':')
                        .trim_start_matches(':')
                        .trim()
                        .to_string(),
                    report,
                });
            }
        }
        Ok(compiler.build())
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.iter().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rule files compiled (shipped ones as `builtin:<name>`).
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Scan bytes; every matching rule once, at its first match. A scan error (time-out) is
    /// returned as `Err` with a message for the file's notes.
    pub fn scan(&self, data: &[u8], timeout: Duration) -> Result<Vec<YaraHit>, String> {
        thread_local! {
            static SCANNER: RefCell<Option<(usize, yara_x::Scanner<'static>)>> =
                const { RefCell::new(None) };
        }
        let key = self.rules as *const yara_x::Rules as usize;
        SCANNER.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_none_or(|(k, _)| *k != key) {
                let mut s = yara_x::Scanner::new(self.rules);
                s.max_matches_per_pattern(16);
                *slot = Some((key, s));
            }
            let Some((_, scanner)) = slot.as_mut() else {
                return Ok(Vec::new());
            };
            scanner.set_timeout(timeout);
            let results = scanner
                .scan(data)
                .map_err(|e| format!("YARA scan stopped: {e}"))?;
            Ok(results.matching_rules().map(|r| hit_of(&r)).collect())
        })
    }
}

/// Which YARA rules the analysis applies.
#[derive(Debug, Clone, Default)]
pub enum YaraSet {
    /// pyward's shipped rules (compiled on first use).
    #[default]
    Builtin,
    /// Shipped plus user rules ([`YaraRules::load`]).
    Rules(Arc<YaraRules>),
    /// No YARA scanning.
    Off,
}

impl YaraSet {
    pub fn rules(&self) -> Option<&YaraRules> {
        match self {
            YaraSet::Builtin => YaraRules::builtin(),
            YaraSet::Rules(r) => Some(r),
            YaraSet::Off => None,
        }
    }
}

/// One YARA rule matching one file.
#[derive(Debug, Clone, PartialEq)]
pub struct YaraHit {
    pub rule: String,
    pub description: String,
    pub mitre: Vec<MitreTechnique>,
    pub severity: Severity,
    pub kind: Kind,
    /// Byte offset of the first match.
    pub offset: usize,
    /// The first match's bytes (at most 120, lossy UTF-8).
    pub matched: String,
}

impl YaraHit {
    /// The catalogue rule the hit counts as in the package score.
    pub fn score_rule(&self) -> Rule {
        match (self.kind, self.severity) {
            (Kind::Capability, _) => Rule::YaraCapability,
            (_, Severity::Critical) => Rule::YaraCritical,
            (_, Severity::High) => Rule::YaraHigh,
            _ => Rule::YaraMedium,
        }
    }
}

fn hit_of(r: &yara_x::Rule<'_, '_>) -> YaraHit {
    let mut description = String::new();
    let mut mitre = Vec::new();
    let mut severity = Severity::High;
    let mut kind = Kind::Threat;
    for (k, v) in r.metadata() {
        let yara_x::MetaValue::String(v) = v else {
            continue;
        };
        match k {
            "description" => description = v.to_string(),
            "mitre" | "mitre_attack" | "attack" => {
                mitre = v
                    .split([',', ' ', ';'])
                    .map(str::trim)
                    .filter(|t| is_technique_id(t))
                    .map(technique)
                    .collect()
            }
            "severity" => {
                severity = match v.to_ascii_lowercase().as_str() {
                    "critical" => Severity::Critical,
                    "medium" => Severity::Medium,
                    "low" => Severity::Low,
                    "info" => Severity::Info,
                    _ => Severity::High,
                }
            }
            "kind" if v.eq_ignore_ascii_case("capability") => kind = Kind::Capability,
            _ => {}
        }
    }
    let first = r
        .patterns()
        .flat_map(|p| {
            p.matches()
                .map(|m| (m.range().start, m.data().to_vec()))
                .collect::<Vec<_>>()
        })
        .min_by_key(|(o, _)| *o);
    let (offset, data) = first.unwrap_or((0, Vec::new()));
    let matched = String::from_utf8_lossy(data.get(..data.len().min(120)).unwrap_or(&[]))
        .replace(['\n', '\r'], " ");
    YaraHit {
        rule: r.identifier().to_string(),
        description,
        mitre,
        severity,
        kind,
        offset,
        matched,
    }
}

/// `T1234` or `T1234.001`.
fn is_technique_id(t: &str) -> bool {
    let Some(rest) = t.strip_prefix('T') else {
        return false;
    };
    let (main, sub) = rest.split_once('.').unwrap_or((rest, "000"));
    main.len() == 4
        && sub.len() == 3
        && main.bytes().all(|b| b.is_ascii_digit())
        && sub.bytes().all(|b| b.is_ascii_digit())
}

/// A technique from the shared catalogue when pyward knows it, else the id alone.
fn technique(id: &str) -> MitreTechnique {
    use pyward_core::mitre::techniques as t;
    const KNOWN: &[MitreTechnique] = &[
        t::PYTHON,
        t::SUPPLY_CHAIN_SOFTWARE,
        t::OBFUSCATED_FILES,
        t::DEOBFUSCATE,
        t::INGRESS_TOOL_TRANSFER,
        t::EXFIL_C2,
        t::PRIVATE_KEYS,
        t::CREDENTIALS_IN_FILES,
        t::WEB_PROTOCOLS,
        t::WEB_SERVICE,
        t::FILE_DISCOVERY,
        t::CLIPBOARD_DATA,
        t::STEGANOGRAPHY,
        t::HIDDEN_WINDOW,
        t::FILE_DELETION,
        t::DATA_ENCRYPTED,
        t::UNIX_SHELL,
        t::RESOURCE_HIJACKING,
        t::CRON,
        t::SHELL_CONFIG_MODIFICATION,
        t::SYSTEMD_SERVICE,
        t::AUTOSTART,
        t::LOCATION_DISCOVERY,
        t::MASQUERADING_NAME,
    ];
    KNOWN
        .iter()
        .find(|k| k.id == id)
        .cloned()
        .unwrap_or_else(|| MitreTechnique {
            id: Cow::Owned(id.to_string()),
            name: Cow::Borrowed("ATT&CK technique"),
        })
}

fn builtin_sources() -> Vec<Source> {
    BUILTIN
        .iter()
        .map(|(name, text)| Source {
            origin: format!("builtin:{name}"),
            path: PathBuf::from(format!("rules/yara/{name}")),
            text: (*text).to_string(),
        })
        .collect()
}

/// The line of `--> origin:LINE:COL` in a compiler report.
fn report_line(report: &str, origin: &str) -> Option<usize> {
    let needle = format!("{origin}:");
    report.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("-->")?.trim();
        let rest = rest.strip_prefix(&needle)?;
        rest.split(':').next()?.parse().ok()
    })
}

/// `*.yar`/`*.yara` files under `dir`, sorted; symlinks are not followed out of the folder
/// (they are skipped), and the walk is bounded in depth.
fn collect_rule_files(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), YaraError> {
    let err = |m: String| YaraError {
        file: dir.to_path_buf(),
        line: None,
        message: m,
        report: String::new(),
    };
    if depth > 8 {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| err(format!("cannot read the YARA rule folder: {e}")))?;
    if depth == 0 && !meta.is_dir() && !std::fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Err(err(
            "not a folder: --yara takes a folder of *.yar files".into()
        ));
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| err(format!("cannot list the YARA rule folder: {e}")))?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            collect_rule_files(&p, out, depth + 1)?;
        } else if ft.is_file()
            && p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x.eq_ignore_ascii_case("yar") || x.eq_ignore_ascii_case("yara"))
        {
            out.push(p);
        }
    }
    Ok(())
}

fn read_rule_file(f: &Path) -> Result<Vec<u8>, YaraError> {
    use std::io::Read;
    let err = |m: String| YaraError {
        file: f.to_path_buf(),
        line: None,
        message: m,
        report: String::new(),
    };
    let file = std::fs::File::open(f).map_err(|e| err(format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_RULE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_RULE_FILE {
        return Err(err(format!(
            "larger than {} MiB; split it",
            MAX_RULE_FILE >> 20
        )));
    }
    Ok(bytes)
}

/// The 1-based line of a byte offset.
pub fn line_of_offset(data: &[u8], offset: usize) -> u32 {
    let end = offset.min(data.len());
    data.get(..end)
        .map_or(0, |d| d.iter().filter(|&&b| b == b'\n').count()) as u32
        + 1
}

/// The per-user cache of compiled rules.
///
/// An entry holds the rules' machine code (yara-x `native-code-serialization`: loading it
/// skips the cranelift compile), so it is trusted like the executable itself: never load one a
/// third party could have written. So the cache lives in the user's own cache folder
/// (`$PYWARD_CACHE_DIR`, else `~/.cache/pyward`), is created `0700`, and an entry is only
/// loaded when it and its folder belong to this user and nobody else can write them; the
/// entry's name is the SHA-256 of the pyward version, the executable's identity (device,
/// inode, size, mtime) and every rule file (name and text), so an edited rule or a rebuilt
/// pyward never meets a stale entry (wasmtime also refuses machine code from another engine
/// build, and yara-x then compiles again). Any failure (read-only home, foreign owner,
/// corrupt entry) falls back to compiling: the cache can only make a scan faster.
pub mod cache {
    use super::Source;
    use sha2::{Digest, Sha256};
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    use std::path::PathBuf;

    /// Largest entry loaded (the 14 shipped rules take ≈ 90 kB).
    const MAX_ENTRY: u64 = 64 * 1024 * 1024;

    /// The folder of compiled-rule entries, if one can be named.
    pub fn dir() -> Option<PathBuf> {
        let base = match std::env::var_os("PYWARD_CACHE_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => dirs::cache_dir()?.join("pyward"),
        };
        Some(base.join("yara"))
    }

    pub(super) fn key(sources: &[Source]) -> String {
        let mut h = Sha256::new();
        h.update(b"pyward-yara-cache v1\0");
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update(b"\0");
        // The executable's identity: a rebuild (or a yara-x upgrade inside one pyward version)
        // never loads entries serialised by another build.
        if let Some(md) = std::env::current_exe()
            .ok()
            .and_then(|e| std::fs::metadata(e).ok())
        {
            for v in [
                md.dev(),
                md.ino(),
                md.len(),
                md.mtime() as u64,
                md.mtime_nsec() as u64,
            ] {
                h.update(v.to_le_bytes());
            }
        }
        for s in sources {
            h.update((s.origin.len() as u64).to_le_bytes());
            h.update(s.origin.as_bytes());
            h.update((s.text.len() as u64).to_le_bytes());
            h.update(s.text.as_bytes());
        }
        hex::encode(h.finalize())
    }

    fn euid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    /// Owned by this user and not writable by group or others.
    fn private(md: &std::fs::Metadata) -> bool {
        md.uid() == euid() && md.mode() & 0o022 == 0
    }

    pub(super) fn load(key: &str) -> Option<yara_x::Rules> {
        load_from(&dir()?, key)
    }

    fn load_from(dir: &std::path::Path, key: &str) -> Option<yara_x::Rules> {
        if !private(&std::fs::symlink_metadata(dir).ok()?) {
            return None;
        }
        let path = dir.join(format!("{key}.yarc"));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        let md = f.metadata().ok()?;
        if !md.is_file() || !private(&md) || md.len() > MAX_ENTRY {
            return None;
        }
        let mut bytes = Vec::with_capacity(md.len() as usize);
        std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_ENTRY), &mut bytes).ok()?;
        yara_x::Rules::deserialize(&bytes).ok()
    }

    pub(super) fn store(key: &str, rules: &yara_x::Rules) {
        if let Some(dir) = dir() {
            let _ = store_in(&dir, key, rules);
        }
    }

    fn store_in(dir: &std::path::Path, key: &str, rules: &yara_x::Rules) -> Option<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .ok()?;
        let md = std::fs::symlink_metadata(dir).ok()?;
        if !md.is_dir() || md.uid() != euid() {
            return None;
        }
        if md.mode() & 0o022 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).ok()?;
        }
        let bytes = rules.serialize().ok()?;
        // Write a temporary file and rename it into place: a reader never sees half an entry.
        let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .ok()?;
        let ok = f.write_all(&bytes).is_ok() && f.sync_all().is_ok();
        drop(f);
        if !ok || std::fs::rename(&tmp, dir.join(format!("{key}.yarc"))).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return None;
        }
        prune(dir, MAX_ENTRIES);
        Some(())
    }

    /// Entries kept; each build of pyward (and each `--yara` folder) writes its own.
    const MAX_ENTRIES: usize = 16;

    /// Remove the least recently written entries beyond `keep` (old builds, old rule sets).
    fn prune(dir: &std::path::Path, keep: usize) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = rd
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".yarc"))
            .filter_map(|e| {
                let md = e.metadata().ok()?;
                Some((md.modified().ok()?, e.path()))
            })
            .collect();
        if entries.len() <= keep {
            return;
        }
        entries.sort();
        for (_, p) in &entries[..entries.len() - keep] {
            let _ = std::fs::remove_file(p);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn compiled() -> (String, yara_x::Rules) {
            let sources = super::super::builtin_sources();
            let rules = super::super::YaraRules::compile_sources(&sources).unwrap();
            (key(&sources), rules)
        }

        const SAMPLE: &[u8] =
            b"import socket\ns = socket.socket()\ns.connect(('68.183.212.246', 32258))\n";

        fn hits(r: &yara_x::Rules) -> Vec<String> {
            let mut s = yara_x::Scanner::new(r);
            let res = s.scan(SAMPLE).unwrap();
            res.matching_rules()
                .map(|m| m.identifier().to_owned())
                .collect()
        }

        #[test]
        fn a_stored_entry_loads_and_scans_like_the_compiled_rules() {
            let t = tempfile::tempdir().unwrap();
            let dir = t.path().join("yara");
            let (key, rules) = compiled();
            assert!(load_from(&dir, &key).is_none(), "nothing cached yet");
            store_in(&dir, &key, &rules).expect("stored");
            let md = std::fs::metadata(&dir).unwrap();
            assert_eq!(md.mode() & 0o777, 0o700);
            let entry = dir.join(format!("{key}.yarc"));
            assert_eq!(std::fs::metadata(&entry).unwrap().mode() & 0o777, 0o600);
            let loaded = load_from(&dir, &key).expect("loaded from the cache");
            assert!(
                !hits(&rules).is_empty(),
                "the sample matches a shipped rule"
            );
            assert_eq!(hits(&loaded), hits(&rules));
        }

        #[test]
        fn entries_others_can_write_corrupt_or_linked_are_not_loaded() {
            let t = tempfile::tempdir().unwrap();
            let dir = t.path().join("yara");
            let (key, rules) = compiled();
            store_in(&dir, &key, &rules).unwrap();
            let entry = dir.join(format!("{key}.yarc"));
            // group-writable entry
            std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o620)).unwrap();
            assert!(
                load_from(&dir, &key).is_none(),
                "group-writable entry loaded"
            );
            std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
            // world-writable folder
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            assert!(
                load_from(&dir, &key).is_none(),
                "entry in a world-writable folder loaded"
            );
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
            // a symlink in place of the entry
            let real = t.path().join("elsewhere.yarc");
            std::fs::rename(&entry, &real).unwrap();
            std::os::unix::fs::symlink(&real, &entry).unwrap();
            assert!(load_from(&dir, &key).is_none(), "symlinked entry loaded");
            std::fs::remove_file(&entry).unwrap();
            // corrupt bytes: refused by yara-x, the caller compiles instead
            std::fs::write(&entry, b"YARA-X garbage").unwrap();
            std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert!(load_from(&dir, &key).is_none(), "corrupt entry loaded");
        }

        #[test]
        fn old_entries_are_pruned() {
            let t = tempfile::tempdir().unwrap();
            for i in 0..5 {
                let p = t.path().join(format!("{i}.yarc"));
                std::fs::write(&p, b"x").unwrap();
                let when =
                    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i);
                std::fs::File::options()
                    .write(true)
                    .open(&p)
                    .unwrap()
                    .set_modified(when)
                    .unwrap();
            }
            std::fs::write(t.path().join("other.txt"), b"kept").unwrap();
            prune(t.path(), 2);
            let mut left: Vec<String> = std::fs::read_dir(t.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            left.sort();
            assert_eq!(left, ["3.yarc", "4.yarc", "other.txt"]);
        }

        #[test]
        fn the_key_follows_every_rule_text_and_name() {
            let mut a = super::super::builtin_sources();
            let k = key(&a);
            a[0].text.push_str("\n// edited\n");
            assert_ne!(k, key(&a));
            let mut b = super::super::builtin_sources();
            b[0].origin.push('x');
            assert_ne!(k, key(&b));
            assert_eq!(k, key(&super::super::builtin_sources()));
        }
    }
}
