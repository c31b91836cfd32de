//! The command groups of the `dispersy` program.

pub mod decode;
pub mod keys;
