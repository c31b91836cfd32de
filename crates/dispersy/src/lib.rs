//! The sans-IO core of dispersy.
#![deny(missing_docs)]

pub mod bloom;
pub mod community;
pub mod crypto;
pub mod ids;
pub mod node;
pub mod store;
pub mod sync;
pub mod testing;
pub mod time;
pub mod timeline;
pub mod walker;
pub mod wire;
