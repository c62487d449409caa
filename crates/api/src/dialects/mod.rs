//! One folder per client dialect.

pub mod runway;
