//! The command groups of the `dispersy` program.

pub mod bench;
pub mod decode;
pub mod keys;
