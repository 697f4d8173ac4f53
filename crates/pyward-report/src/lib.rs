//! Renderers for [`pyward_core::ScanReport`].
