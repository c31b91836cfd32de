//! Communities and their meta-messages.

pub mod policy;
