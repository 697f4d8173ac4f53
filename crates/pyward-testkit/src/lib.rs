//! Inert test inputs for pyward: every file these builders write is data; none of it runs.

pub mod demo;
pub mod image;
pub mod wheel;
