//! The integration tests: one binary (so the suite links once and its tests run in parallel
//! in one process), one module per area. Every test starts the real server on port 0 (or the
//! real binary) and drives it over real sockets; `common` holds the `TestApp` helper.

mod common;
#[path = "../../../media/tests/support/moto.rs"]
mod moto;

mod admin_api;
mod admin_cli;
mod admin_webhooks;
mod archive_rss;
mod bench_smoke;
mod channels;
mod chaos;
mod config_check;
mod console;
mod credits;
mod db_faults;
mod engine_faults;
mod frames;
mod hardening;
mod kill9;
mod kill9_webhooks;
mod logs;
mod media;
mod media_s3;
mod metrics;
mod quickstart;
mod reverse;
mod runway_api;
mod uploads;
mod upstream_kinds;
mod webhooks;
