//! `pyward audit jupyter`: find the open notebook before the attacker does.

pub mod audit;
pub mod checks;
pub mod config;
pub mod fsutil;
pub mod host;
pub mod indicators;
pub mod people;
pub mod probe;
pub mod pyconfig;
pub mod servers;

pub use audit::{audit, AuditError, AuditOptions, AuditResult};
