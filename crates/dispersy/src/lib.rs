//! The sans-IO core of dispersy.
#![deny(missing_docs)]

pub mod community;
pub mod crypto;
pub mod ids;
pub mod time;
pub mod timeline;
pub mod wire;
