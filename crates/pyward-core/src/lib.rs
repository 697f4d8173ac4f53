//! pyward's shared vocabulary.
//!
//! Every stage of pyward (inventory → analyzers → policy → report, and the runtime half) speaks in
//! these types. This crate depends on no other pyward crate.

pub mod action;
pub mod error;
pub mod finding;
pub mod mitre;
pub mod name;
pub mod package;
pub mod report;

pub use action::{Action, Severity};
pub use error::{Error, Result};
pub use finding::{Evidence, Finding, PackageRef, PolicyMatch};
pub use mitre::MitreTechnique;
pub use name::{normalize_name, purl, PackageName};
pub use package::{
    ArchiveKind, DeclaredKind, InstalledKind, LayerRef, Location, Package, PackageSource,
};
pub use report::{
    ImageSummary, ScanReport, Target, TargetKind, Tool, Warning, REPORT_SCHEMA_VERSION,
};
