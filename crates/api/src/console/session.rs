//! Console sessions: the admin token, given once through the sign-in form, becomes a signed
//! cookie (`HttpOnly`, `SameSite=Strict`, `Secure` behind https, scoped to `/admin`) that
//! expires. Its key derives from the admin token's hash, so changing the token ends every
//! session. Each session has a CSRF token (a MAC of its id) that every state-changing form
//! carries; a sign-out revokes the session on this instance and clears the cookie.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{header, HeaderMap};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "reelay_console";
/// How long a session lasts after sign-in.
pub const SESSION_SECONDS: i64 = 8 * 3600;

/// A signed-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub expires_at: i64,
    pub csrf: String,
}

/// Makes and checks sessions. `None` key: no admin token is configured, nobody signs in.
pub struct Sessions {
    key: Option<[u8; 32]>,
    /// Sessions signed out before their expiry (id → expiry), on this instance.
    revoked: Mutex<HashMap<String, i64>>,
}

impl Sessions {
    pub fn new(key: Option<[u8; 32]>) -> Sessions {
        Sessions {
            key,
            revoked: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, parts: &[&str]) -> Option<String> {
        let mut m = Hmac::<Sha256>::new_from_slice(self.key.as_ref()?).ok()?;
        for p in parts {
            m.update(p.as_bytes());
            m.update(b"\n");
        }
        Some(hex::encode(m.finalize().into_bytes()))
    }

    /// A new session from now (ms): it and the cookie value that carries it.
    pub fn start(&self, now_ms: i64) -> Option<(Session, String)> {
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let id = hex::encode(raw);
        let expires_at = now_ms / 1000 + SESSION_SECONDS;
        let exp = expires_at.to_string();
        let sig = self.mac(&["session", &id, &exp])?;
        let csrf = self.mac(&["csrf", &id])?;
        Some((
            Session {
                id: id.clone(),
                expires_at,
                csrf,
            },
            format!("{id}.{exp}.{sig}"),
        ))
    }

    /// The session of a request's cookie, if it is genuine, unexpired and not signed out.
    pub fn of(&self, headers: &HeaderMap, now_ms: i64) -> Option<Session> {
        let value = cookie(headers, COOKIE)?;
        let mut parts = value.splitn(3, '.');
        let (id, exp, sig) = (parts.next()?, parts.next()?, parts.next()?);
        let expected = self.mac(&["session", id, exp])?;
        if !bool::from(expected.as_bytes().ct_eq(sig.as_bytes())) {
            return None;
        }
        let expires_at: i64 = exp.parse().ok()?;
        if expires_at <= now_ms / 1000 {
            return None;
        }
        let mut revoked = self.revoked.lock().unwrap();
        revoked.retain(|_, until| *until > now_ms / 1000);
        if revoked.contains_key(id) {
            return None;
        }
        Some(Session {
            id: id.to_string(),
            expires_at,
            csrf: self.mac(&["csrf", id])?,
        })
    }

    pub fn end(&self, session: &Session) {
        self.revoked
            .lock()
            .unwrap()
            .insert(session.id.clone(), session.expires_at);
    }
}

impl Session {
    /// Whether a form's token is this session's (compared in constant time).
    pub fn csrf_ok(&self, given: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(given.as_bytes()))
    }
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` of a session (`value`), or of its removal (`None`).
pub fn set_cookie(value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!(
            "{COOKIE}={v}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}{secure}"
        ),
        None => format!("{COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, cookie.parse().unwrap());
        h
    }

    #[test]
    fn sessions_are_signed_expire_and_end() {
        let s = Sessions::new(Some([7; 32]));
        let (session, value) = s.start(1_000_000).unwrap();
        let h = headers(&format!("other=1; {COOKIE}={value}"));
        let back = s.of(&h, 1_000_000).unwrap();
        assert_eq!(back.id, session.id);
        assert!(back.csrf_ok(&session.csrf) && !back.csrf_ok("forged"));
        // Another key (a changed admin token) does not know it.
        assert!(Sessions::new(Some([8; 32])).of(&h, 1_000_000).is_none());
        // A longer expiry with the old signature is refused.
        let (id, rest) = value.split_once('.').unwrap();
        let sig = rest.split_once('.').unwrap().1;
        let forged = format!("{COOKIE}={id}.9999999999.{sig}");
        assert!(s.of(&headers(&forged), 1_000_000).is_none());
        // Expired.
        assert!(s.of(&h, 1_000_000 + (SESSION_SECONDS + 1) * 1000).is_none());
        s.end(&back);
        assert!(s.of(&h, 1_000_000).is_none());
        assert!(Sessions::new(None).start(0).is_none());
    }
}
