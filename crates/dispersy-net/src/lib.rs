//! The tokio driver for a dispersy node: UDP sockets, timers, key files and a cloneable Handle.
#![deny(missing_docs)]

pub mod keyfile;
