//! Targets → packages and files.
//!
//! A target (folder, single file, package archive, container image) is first turned into a
//! [`FileTree`]; the catalogers then find installed packages ([`installed`]) and declared
//! dependencies ([`declared`], [`dockerfile`]) in it. Nothing read here is ever executed.

pub mod archive;
pub mod declared;
pub mod dir;
pub mod dockerfile;
pub mod image;
pub mod installed;
pub mod mounted;
pub mod tree;

mod inventory;

pub use inventory::{
    inventory, sniff_target, DockerfileMode, DockerfileSource, Inventory, KeepExtra, Options,
};
pub use tree::{EntryKind, FileEntry, FileTree, MemTree, ReadError};
