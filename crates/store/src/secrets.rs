//! Secrets reelay must be able to read back (webhook signing secrets) are sealed at rest with
//! the instance's secret key (XChaCha20-Poly1305), so a copy of the database alone reveals none.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use crate::StoreError;

const PREFIX: &str = "x1:";

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn new(key: [u8; 32]) -> SecretBox {
        SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// A key that lives only as long as the process: for tests and throwaway stores.
    pub fn ephemeral() -> SecretBox {
        SecretBox::new(generate_key())
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("encryption of a short secret cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<String, StoreError> {
        let bad = || {
            StoreError::Corrupt(
                "a sealed secret does not open with this secret key (was secret_key changed?)"
                    .into(),
            )
        };
        let raw = STANDARD
            .decode(sealed.strip_prefix(PREFIX).ok_or_else(bad)?)
            .map_err(|_| bad())?;
        if raw.len() < 24 {
            return Err(bad());
        }
        let (nonce, ct) = raw.split_at(24);
        let pt = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| bad())?;
        String::from_utf8(pt).map_err(|_| bad())
    }
}

pub fn generate_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_webhook_secret() -> String {
    format!("whsec_{}", STANDARD.encode(generate_key()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_opens_only_with_the_same_key_and_never_stores_plaintext() {
        let b = SecretBox::new([7; 32]);
        let s = generate_webhook_secret();
        let sealed = b.seal(&s);
        assert!(!sealed.contains(&s[6..]));
        assert_ne!(sealed, b.seal(&s), "a fresh nonce each time");
        assert_eq!(b.open(&sealed).unwrap(), s);
        assert!(SecretBox::new([8; 32]).open(&sealed).is_err());
        assert!(b.open("x1:AAAA").is_err());
        assert!(b.open("plain").is_err());
        assert_eq!(STANDARD.decode(&s[6..]).unwrap().len(), 32);
    }
}
