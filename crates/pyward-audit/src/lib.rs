//! Host audits for Python workloads. The first one, [`jupyter`], finds exposed Jupyter servers
//! (incident 2 of DESIGN.md): configuration, running servers, a live probe, users and SSH keys.

pub mod jupyter;
