use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new API key in Runway's format (`key_` + 128 lowercase hex = 512 random bits), so clients
/// that check the shape accept ours. Shown once; only its hash is stored.
pub fn generate_api_key() -> String {
    let mut bytes = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("key_{}", hex::encode(bytes))
}

/// SHA-256 is enough here: keys carry 512 random bits, so there is nothing to brute-force and
/// a slow password hash would only slow every request down.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_unique_and_hash_stably() {
        let a = super::generate_api_key();
        let b = super::generate_api_key();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 128);
        assert_eq!(super::hash_api_key(&a), super::hash_api_key(&a));
        assert_ne!(super::hash_api_key(&a), super::hash_api_key(&b));
    }
}
