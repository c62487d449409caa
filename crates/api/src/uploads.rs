//! Ephemeral uploads (Runway's `POST /v1/uploads`, shared/api/runway-official.md §3.9): a slot
//! whose `uploadUrl` is reelay itself — a signed, expiring, size-capped multipart form POST
//! into the media store — and a `runway://` URI that resolves, for the uploading account only,
//! when a task names it. Uploads live [`UPLOAD_TTL_MS`] and are then swept.

use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use reelay_store::{now_ms, UploadRecord};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::{AppState, Principal};

/// How long an upload can be named in tasks (Runway: about a day).
pub const UPLOAD_TTL_MS: i64 = 24 * 3600 * 1000;
/// How long a slot takes its file.
const SLOT_TTL_S: u64 = 3600;
pub use reelay_core::media_ref::UPLOAD_URI_PREFIX as URI_PREFIX;

pub fn routes() -> Router<AppState> {
    Router::new().route("/uploads/form", post(form_post))
}

fn slot_subject(account_id: &str) -> String {
    format!("upload:{account_id}")
}

/// A new slot for `principal`: the answer of `POST /v1/uploads`.
pub fn slot(state: &AppState, principal: &Principal, filename: &str) -> Value {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let exp = (now_ms() / 1000) as u64 + SLOT_TTL_S;
    let account = &principal.account.id;
    let subject = slot_subject(account);
    let sig = state.links.sign(&subject, &format!("{id}/{filename}"), exp);
    json!({
        "uploadUrl": format!("{}/uploads/form", state.links.base()),
        "fields": {"key": id, "account": account, "filename": filename,
                   "expires": exp.to_string(), "signature": sig},
        "runwayUri": format!("{URI_PREFIX}{id}"),
    })
}

fn refused(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// What a stored file is, from its first bytes: uploads are media, nothing else.
fn sniff(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WAVE" {
        Some("audio/wav")
    } else if b.len() >= 12 && &b[4..8] == b"ftyp" {
        Some(if &b[8..11] == b"qt " {
            "video/quicktime"
        } else if &b[8..11] == b"M4A" {
            "audio/mp4"
        } else {
            "video/mp4"
        })
    } else if b.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        Some("video/webm")
    } else if b.starts_with(b"ID3") || (b.len() > 1 && b[0] == 0xFF && b[1] & 0xE0 == 0xE0) {
        Some("audio/mpeg")
    } else {
        None
    }
}

/// The form POST of a slot: its fields, then `file` last, as S3's presigned POST takes them.
async fn form_post(
    State(state): State<AppState>,
    form: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let Ok(mut form) = form else {
        return refused(
            StatusCode::BAD_REQUEST,
            "expected a multipart/form-data body",
        );
    };
    let mut fields = std::collections::BTreeMap::<String, String>::new();
    let mut file = None;
    loop {
        match form.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or("").to_string();
                if fields.len() > 16 {
                    return refused(StatusCode::BAD_REQUEST, "too many form fields");
                }
                match f.bytes().await {
                    Ok(b) if name == "file" => {
                        file = Some(b);
                        break;
                    }
                    Ok(b) if b.len() <= 4096 => {
                        fields.insert(name, String::from_utf8_lossy(&b).into_owned());
                    }
                    Ok(_) => return refused(StatusCode::BAD_REQUEST, "a form field is too long"),
                    Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        return refused(StatusCode::PAYLOAD_TOO_LARGE, "the file is too large")
                    }
                    Err(_) => return refused(StatusCode::BAD_REQUEST, "malformed form"),
                }
            }
            Ok(None) => break,
            Err(_) => return refused(StatusCode::BAD_REQUEST, "malformed form"),
        }
    }
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let (id, account, filename) = (get("key"), get("account"), get("filename"));
    let exp: u64 = get("expires").parse().unwrap_or(0);
    let ok_id = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok_id
        || !state.links.verify(
            &slot_subject(account),
            &format!("{id}/{filename}"),
            exp,
            get("signature"),
        )
    {
        return refused(StatusCode::FORBIDDEN, "this upload slot is not valid");
    }
    if exp <= (now_ms() / 1000) as u64 {
        return refused(StatusCode::FORBIDDEN, "this upload slot has expired");
    }
    let Some(bytes) = file else {
        return refused(StatusCode::BAD_REQUEST, "the form has no file field");
    };
    let Some(content_type) = sniff(&bytes) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "the file is not an image, video or audio file reelay knows",
        );
    };
    let now = now_ms();
    // A slot takes one file.
    match state.store.get_upload(account, id, now).await {
        Ok(None) => {}
        Ok(Some(_)) => return refused(StatusCode::CONFLICT, "this upload slot was used already"),
        Err(e) => {
            tracing::error!(error = %e, "reading an upload failed");
            return refused(StatusCode::SERVICE_UNAVAILABLE, "try again later");
        }
    }
    match save(&state, id, account, filename, content_type, bytes).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => refused(StatusCode::SERVICE_UNAVAILABLE, "try again later"),
    }
}

/// Checks every `runway://` URI in a create body: each must be an unexpired upload of this
/// account (another account's, an unknown or an expired one is a validation issue at its path,
/// as Runway refuses an unknown URI). The URIs stay in the task; the engine hands the bytes to
/// the upstream at submit, through the upstream's own uploads or inline.
pub async fn check_refs(state: &AppState, account_id: &str, body: &Value) -> Result<(), ApiError> {
    let refs = reelay_core::media_ref::upload_refs(body);
    if refs.is_empty() {
        return Ok(());
    }
    let now = now_ms();
    let mut issues = Vec::new();
    for (path, uri) in refs {
        let known = match uri.strip_prefix(URI_PREFIX) {
            Some(id) => state.store.get_upload(account_id, id, now).await?.is_some(),
            None => false,
        };
        if !known {
            issues.push(reelay_core::Issue::custom(
                path,
                "Invalid runway:// URI: no such upload (or it expired)",
            ));
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(reelay_core::CoreError::Validation(issues).into())
    }
}

/// Stores a file of `account_id` as an upload (the OpenAI dialect's file parts) and answers
/// its URI. `content_type` is what the caller sniffed.
pub async fn store_file(
    state: &AppState,
    account_id: &str,
    filename: &str,
    content_type: &str,
    bytes: axum::body::Bytes,
) -> Result<String, ApiError> {
    let id = uuid::Uuid::now_v7().simple().to_string();
    save(state, &id, account_id, filename, content_type, bytes).await?;
    Ok(format!("{URI_PREFIX}{id}"))
}

/// Stores the bytes of upload `id` and records it, for a day.
async fn save(
    state: &AppState,
    id: &str,
    account_id: &str,
    filename: &str,
    content_type: &str,
    bytes: axum::body::Bytes,
) -> Result<(), ApiError> {
    let now = now_ms();
    let mut record = UploadRecord {
        id: id.to_string(),
        account_id: account_id.to_string(),
        filename: filename.to_string(),
        content_type: content_type.to_string(),
        size: bytes.len() as i64,
        sha256: String::new(),
        created_at: now,
        expires_at: now + UPLOAD_TTL_MS,
    };
    let stored = state
        .media
        .put(&record.key(), content_type, bytes)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "storing an upload failed");
            ApiError::new(
                crate::error::ErrorKind::Unavailable,
                "media store unavailable",
            )
        })?;
    record.sha256 = stored.sha256;
    state.store.record_upload(&record).await?;
    Ok(())
}
