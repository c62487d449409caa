//! The steps every dialect's create endpoints share, each written once: read the body within
//! the size limit, as JSON (an object where the dialect hand-parses), check a callback URL on
//! its face, and answer an accept (with `Idempotent-Replayed` on a replay). Authentication is
//! `auth::authenticate`; the accept itself is `accept::accept`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};

use crate::accept::Accepted;
use crate::error::{ApiError, ErrorKind};
use crate::AppState;

/// The body's bytes; over the size limit is `PayloadTooLarge`.
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorKind::PayloadTooLarge, "the body is too large")
        } else {
            ApiError::malformed(format!("could not read the body: {e}"))
        }
    })
}

/// A body as one JSON object. `empty_is_object`: an absent body reads as `{}` (the reverse
/// dialect's clients send bodiless GET-style POSTs).
pub fn json_object(bytes: &[u8], empty_is_object: bool) -> Result<Map<String, Value>, ApiError> {
    if empty_is_object && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::malformed("the body must be a JSON object")),
        Err(e) => Err(ApiError::malformed(format!("malformed JSON: {e}"))),
    }
}

/// A callback URL the client asked for, refused now when it is refused on its face (scheme, a
/// private address literal) rather than failing delivery later. `param` is the name the
/// client used for it.
pub fn callback_url(
    state: &AppState,
    param: &str,
    url: Option<String>,
) -> Result<Option<String>, ApiError> {
    if let Some(u) = &url {
        state
            .outbound
            .check_url(u)
            .map_err(|r| ApiError::invalid(param, format!("{param} is refused: {r}")))?;
    }
    Ok(url)
}

/// reelay's extension for dialects without a callback field (Runway's, OpenAI's):
/// `X-Reelay-Callback-Url` asks for signed webhooks to that URL.
pub fn callback_header(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    const HEADER: &str = "X-Reelay-Callback-Url";
    let url = match headers.get(HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::invalid(HEADER, format!("{HEADER} must be a visible ASCII URL."))
                })?
                .to_string(),
        ),
    };
    callback_url(state, HEADER, url)
}

/// The answer to an accepted create: the status and body rendered at accept time (the very
/// ones stored for a replay), marked when this is a replay.
impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut resp = (status, Json(self.body)).into_response();
        if self.replayed {
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        resp
    }
}
