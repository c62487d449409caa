//! One folder per client dialect.

pub mod quickstart;
pub mod reverse;
pub mod runway;
