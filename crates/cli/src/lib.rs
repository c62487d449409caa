//! The `reelay` binary's pieces, as a library so tests can start the real server in process.

pub mod admin;
pub mod bench;
pub mod config;
pub mod serve;
