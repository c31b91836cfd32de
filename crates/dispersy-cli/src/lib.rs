//! The library half of the `dispersy` program: the node daemon (configuration, data directory,
//! REST API, event stream, web dashboard) and the HTTP client the CLI drives it with. The binary
//! (`src/main.rs`, `src/cmd/`) parses arguments and calls into these; tests and the demo run
//! daemons in-process through them.

#![deny(missing_docs)]

pub mod client;
pub mod daemon;
