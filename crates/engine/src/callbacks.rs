//! Upstream callbacks: where an upstream format takes a callback URL (reverse, quick-start),
//! each task gets its own, unguessable one — `{public_url}/upstream-callbacks/{task}/{token}`,
//! the token an HMAC of the task id under a key derived from the instance's secret key, so
//! every instance sharing the database (and the secret) verifies it without storing it.
//!
//! A callback is only a hint: it makes the task's next poll due now, and the poll — the
//! upstream's own answer to reelay's authenticated request — is what moves the task. A forged
//! or replayed callback can therefore change nothing but the time of one poll.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The path under which the API serves the callbacks.
pub const CALLBACK_PATH: &str = "/upstream-callbacks";

#[derive(Clone)]
pub struct CallbackUrls {
    base: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for CallbackUrls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackUrls")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl CallbackUrls {
    /// `public_base`: where upstreams reach this gateway; `secret`: the instance's secret key.
    pub fn new(public_base: &str, secret: &[u8]) -> CallbackUrls {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"reelay upstream callbacks v1");
        CallbackUrls {
            base: public_base.trim_end_matches('/').to_string(),
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    fn mac(&self, task_id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(task_id.as_bytes());
        mac
    }

    pub fn token(&self, task_id: &str) -> String {
        hex::encode(self.mac(task_id).finalize().into_bytes())
    }

    pub fn url_for(&self, task_id: &str) -> String {
        format!(
            "{}{CALLBACK_PATH}/{task_id}/{}",
            self.base,
            self.token(task_id)
        )
    }

    /// Whether `token` is the task's (in constant time).
    pub fn verify(&self, task_id: &str, token: &str) -> bool {
        match hex::decode(token) {
            Ok(bytes) => self.mac(task_id).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_per_task_and_per_secret() {
        let a = CallbackUrls::new("https://gw.example/", b"secret-one");
        let b = CallbackUrls::new("https://gw.example", b"secret-two");
        let t = a.token("task-1");
        assert!(a.verify("task-1", &t));
        assert!(!a.verify("task-2", &t), "another task's token");
        assert!(!b.verify("task-1", &t), "another secret's token");
        assert!(!a.verify("task-1", "zz"), "not hex");
        assert!(!a.verify("task-1", &t[..10]), "truncated");
        assert_eq!(
            a.url_for("task-1"),
            format!("https://gw.example/upstream-callbacks/task-1/{t}")
        );
        assert!(!format!("{a:?}").contains("secret"));
    }
}
