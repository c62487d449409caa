//! Standard Webhooks signatures (`shared/api/webhooks.md` §3): HMAC-SHA256 over
//! `{id}.{timestamp}.{body}` with the secret's decoded bytes, sent as `v1,<base64>`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key bytes of a `whsec_...` secret: the base64 after the prefix. A secret that is not
/// valid base64 is used as raw bytes, as OpenAI's verifier does.
fn key_bytes(secret: &str) -> Vec<u8> {
    let body = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD
        .decode(body)
        .unwrap_or_else(|_| body.as_bytes().to_vec())
}

/// One `v1,<signature>` entry.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(&key_bytes(secret)).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one entry per live secret (two during a rotation).
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// kie.ai's optional callback signature (quick-start dialect):
/// `base64(HMAC-SHA256(key, "{task id}.{timestamp}"))`, the key used as its UTF-8 bytes.
pub fn kie_signature(key: &str, subject: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(format!("{subject}.{timestamp}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const B_SECRET: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B_BODY: &str = r#"{"type":"task.succeeded","timestamp":"2026-01-02T03:04:05Z","data":{"id":"0190f3b2-7c1e-7a2b-9c3d-4e5f60718293","status":"SUCCEEDED"}}"#;

    #[test]
    fn vector_a_upstream_reference() {
        assert_eq!(
            sign(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn vector_b_and_c_rotation() {
        let id = "evt_0190f3b27c1e7a2b";
        assert_eq!(
            sign(B_SECRET, id, 1767323045, B_BODY.as_bytes()),
            "v1,ZqEd7glz3/6U5LG62cIKSiUu/EbS7IFYmrFBJ4Wem20="
        );
        let c = "whsec_cmVlbGF5LXJvdGF0aW9uLXRlc3Qta2V5LTAwMDIhISE=";
        assert_eq!(
            signature_header([B_SECRET, c], id, 1767323045, B_BODY.as_bytes()),
            "v1,ZqEd7glz3/6U5LG62cIKSiUu/EbS7IFYmrFBJ4Wem20= v1,4MZtU9u4n91WBskUgGyXe/zwa8PzVQn4aVUvpFxCObs="
        );
    }

    #[test]
    fn negative_cases_change_the_signature() {
        let id = "evt_0190f3b27c1e7a2b";
        let spaced = B_BODY.replace(r#""status":"#, r#""status": "#);
        assert_eq!(
            sign(B_SECRET, id, 1767323045, spaced.as_bytes()),
            "v1,khG1XdPUqJiCrUhD8ibssiB7219p/2D5mskXqg1Dnlw="
        );
        assert_eq!(
            sign(B_SECRET, id, 1767323046, B_BODY.as_bytes()),
            "v1,sL9TU9cfoTPfZzY46KRThXpoA1ewmaoG011DRq8mj5E="
        );
        assert_eq!(
            sign("reelay-raw-secret", id, 1767323045, B_BODY.as_bytes()),
            "v1,Nzmr8VSgEEMA1cUr2qG5vMQM47W6sl8dscLhXOs6J7M="
        );
    }

    const KIE_VECTOR: &str = "3SibibNgl/kuChRFF6cpJavUaN6mhQjLyAbK0yrNFZ4=";

    #[test]
    fn kie_signature_matches_an_independent_computation() {
        // python3: base64.b64encode(hmac.new(b"k3y", b"ee603959-debb-48d1-98c4-a6d1c717eba6.1767323045", hashlib.sha256).digest())
        assert_eq!(
            kie_signature("k3y", "ee603959-debb-48d1-98c4-a6d1c717eba6", 1767323045),
            KIE_VECTOR
        );
    }
}
