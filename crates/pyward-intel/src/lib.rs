//! Threat intelligence: what is known to be malicious, and which names imitate popular ones.
//!
//! - [`Intel`]: known-malicious records — a built-in list (`data/known-malicious.json`:
//!   `jeIlyfish`, `python3-dateutil`) plus OSV records imported into a local SQLite database
//!   ([`import`], [`status`]) — looked up by PEP 503 name and PEP 440 version, with their IOCs.
//! - [`NameChecker`]: typosquat / look-alike detection against the embedded popular-name corpus
//!   (`data/popular.txt`, from hugovk/top-pypi-packages; see `data/README.md` for its source,
//!   date and refresh procedure).
//! - [`analyze`]: both turned into [`pyward_core::Finding`]s with the default decision.
//!
//! Nothing here reaches the network: imports read local files, scans read the local database.

mod analyze;
mod builtin;
mod db;
mod error;
mod intel;
pub mod names;
mod osv;
pub mod record;

pub use analyze::{
    analyze, RULE_IOC_FILE, RULE_KNOWN_MALICIOUS, RULE_MALICIOUS_DEPENDENCY, RULE_TYPOSQUAT,
};
pub use db::{
    import, status, ImportLog, ImportStats, ImportWarning, Status, MAX_DOCUMENT_BYTES,
    MAX_IMPORT_BYTES, MAX_ZIP_ENTRIES, MAX_ZIP_RATIO,
};
pub use error::IntelError;
pub use intel::{FileIoc, Intel};
pub use names::{CheckOptions, Confidence, NameChecker, PopularName, SquatMatch, Transformation};
pub use record::{
    Affected, AffectedPackage, Iocs, MaliciousRecord, RangeEvent, RecordKind, RecordSource,
    VersionRange,
};
