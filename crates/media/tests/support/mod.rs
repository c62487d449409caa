//! Helpers shared by the media tests (and included by the server's S3 tests).
pub mod moto;
