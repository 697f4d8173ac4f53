//! `pyward audit jupyter`: find the open notebook before the attacker does.

pub mod pyconfig;
