//! The sans-IO core of dispersy.
#![deny(missing_docs)]

pub mod bloom;
pub mod community;
pub mod crypto;
pub mod ids;
pub mod store;
pub mod sync;
pub mod time;
pub mod wire;
