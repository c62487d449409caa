//! Outbound HTTP made on a client's behalf: webhook deliveries and fetches of client-supplied
//! media. Every such request passes the SSRF guard (DESIGN invariant 5, `shared/api/webhooks.md`
//! §6): the URL is checked on its face, names are resolved once, blocked addresses are dropped
//! from the answer, the connection goes to a surviving address, and redirects are not followed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! let guard = reelay_outbound::Guard::new("")?;
//! let client = guard.client(Duration::from_secs(5), Duration::from_secs(15), "reelay")?;
//! match client.request(reqwest::Method::POST, "https://hooks.example.com/x") {
//!     Ok(req) => match req.body("{}").send().await {
//!         Ok(resp) => println!("{}", resp.status()),
//!         Err(e) => match reelay_outbound::refusal_of(&e) {
//!             Some(refusal) => println!("refused: {}", refusal.code()),
//!             None => println!("failed: {e}"),
//!         },
//!     },
//!     Err(refusal) => println!("refused: {}", refusal.code()),
//! }
//! # Ok(()) }
//! ```

mod client;
mod error;
mod guard;
mod policy;
mod resolver;
mod url_check;

pub use client::GuardedClient;
pub use error::{refusal_of, Refusal};
pub use guard::Guard;
pub use resolver::{Resolver, StaticResolver, SystemResolver};
pub use url_check::MAX_URL_LEN;
