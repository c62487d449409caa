//! One folder per client dialect.

pub mod reverse;
pub mod runway;
