//! Thin HTTP handlers: extract, call [`ops`], answer. Every handler takes [`Admin`] first, so
//! the token is checked before the path, the query or the body is even looked at.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use reelay_store::{Account, ApiKey, LedgerEntry};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ops::{self, AccountChange, Adjustment, NewAccount, Redelivery, Rotation, Topup};
use super::{Admin, AdminError};
use crate::AppState;

type Result<T, E = AdminError> = std::result::Result<T, E>;

/// A JSON object body. Every rejection (bad JSON, not an object, missing field, wrong type) is
/// an [`AdminError`], answered in the admin shape, never as axum's plain text.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        // Content type, size and syntax first.
        let Json(value) = <Json<Value> as FromRequest<AppState>>::from_request(req, state).await?;
        // serde would read `[5]` as a struct with its fields in order; nobody means that.
        if !value.is_object() {
            return Err(AdminError::invalid("the body must be a JSON object"));
        }
        // Through `Json` again (bodies here are tiny) for its messages that name the field.
        let Json(body) = Json::<T>::from_bytes(value.to_string().as_bytes())?;
        Ok(Body(body))
    }
}

/// An optional body (`Option<Body<T>>`): none at all, or only whitespace, is `None`; anything
/// else must be a valid body, as for [`Body`]. (axum's own `Option` would take bad JSON for
/// no body.)
impl<T: DeserializeOwned> OptionalFromRequest<AppState> for Body<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &AppState) -> Result<Option<Self>> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    AdminError::PayloadTooLarge
                } else {
                    AdminError::invalid(r.body_text())
                }
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        <Body<T> as FromRequest<AppState>>::from_request(req, state)
            .await
            .map(Some)
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AdminError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AdminError))]
pub struct Path<T>(pub T);

/// A list answer: `{"data": [...]}`.
#[derive(Serialize)]
pub struct List<T> {
    data: Vec<T>,
}

fn list<T>(data: Vec<T>) -> Json<List<T>> {
    Json(List { data })
}

pub async fn create_account(
    _: Admin,
    State(state): State<AppState>,
    Body(new): Body<NewAccount>,
) -> Result<impl IntoResponse> {
    let created = ops::create_account(state.store.as_ref(), new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn list_accounts(_: Admin, State(state): State<AppState>) -> Result<Json<List<Account>>> {
    Ok(list(ops::list_accounts(state.store.as_ref()).await?))
}

/// `GET /channels`: each channel's configuration (no key), breaker, pause and in-flight count.
pub async fn list_channels(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<List<reelay_engine::ChannelView>>> {
    Ok(list(state.engine.channel_views().await?))
}

/// `POST /channels`: a channel for every instance, at once (201 with its view, no key).
pub async fn add_channel(
    _: Admin,
    State(state): State<AppState>,
    Body(body): Body<Value>,
) -> Result<impl IntoResponse> {
    let cfg = super::channels::add(state.store.as_ref(), body).await?;
    applied(&state).await?;
    Ok((StatusCode::CREATED, Json(view(&state, &cfg.name).await?)))
}

/// `GET /channels/{name}`.
pub async fn get_channel(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<reelay_engine::ChannelView>> {
    Ok(Json(view(&state, &name).await?))
}

/// `PATCH /channels/{name}`: some fields (`api_key` write-only; `null` clears it).
pub async fn set_channel(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(patch): Body<serde_json::Map<String, Value>>,
) -> Result<Json<reelay_engine::ChannelView>> {
    super::channels::set(state.store.as_ref(), &name, patch).await?;
    applied(&state).await?;
    Ok(Json(view(&state, &name).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SwitchBody {
    reason: Option<String>,
}

/// `POST /channels/{name}/enable`: back in service (also after an out-of-credit stop).
pub async fn enable_channel(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<reelay_engine::ChannelView>> {
    switch(&state, &name, true, None).await
}

/// `POST /channels/{name}/disable` (optionally `{"reason": ...}`): no new tasks; tasks on
/// it finish there.
pub async fn disable_channel(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Option<Body<SwitchBody>>,
) -> Result<Json<reelay_engine::ChannelView>> {
    let reason = body.and_then(|Body(b)| b.reason);
    switch(&state, &name, false, reason.as_deref()).await
}

pub(crate) async fn switch(
    state: &AppState,
    name: &str,
    on: bool,
    reason: Option<&str>,
) -> Result<Json<reelay_engine::ChannelView>> {
    let channels = state.engine.channels();
    if channels.is_local(name) {
        // This instance's own channel (the sandbox) is not stored.
        if on {
            channels.enable_local(name);
        } else {
            channels.disable_local(name, reason.unwrap_or("disabled by an operator"));
        }
    } else {
        super::channels::switch(state.store.as_ref(), name, on, reason).await?;
    }
    applied(state).await?;
    Ok(Json(view(state, name).await?))
}

/// `DELETE /channels/{name}`: 204; tasks still on it finish there.
pub async fn remove_channel(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    if state.engine.channels().is_local(&name) {
        return Err(AdminError::Conflict(
            "the built-in sandbox is switched off in the configuration (sandbox = false)".into(),
        ));
    }
    super::channels::remove(state.store.as_ref(), &name).await?;
    applied(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This instance applies a registry change now (the others within their reload interval).
pub(crate) async fn applied(state: &AppState) -> Result<()> {
    state.engine.channels_changed().await.map_err(|e| match e {
        reelay_engine::RegistryError::Store(s) => AdminError::Store(s),
        reelay_engine::RegistryError::Invalid(m) => AdminError::invalid(m.to_string()),
    })
}

async fn view(state: &AppState, name: &str) -> Result<reelay_engine::ChannelView> {
    state
        .engine
        .channel_views()
        .await?
        .into_iter()
        .find(|v| v.name == name)
        .ok_or_else(|| AdminError::NotFound(format!("no channel named {name:?}")))
}

pub async fn get_account(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Account>> {
    Ok(Json(ops::get_account(state.store.as_ref(), &id).await?))
}

pub async fn update_account(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(change): Body<AccountChange>,
) -> Result<Json<Account>> {
    let account = ops::update_account(state.store.as_ref(), &id, change).await?;
    // Cached key lookups carry the account's multiplier and cap: forget them.
    state.keys.invalidate();
    Ok(Json(account))
}

pub async fn topup(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(topup): Body<Topup>,
) -> Result<Json<Account>> {
    Ok(Json(ops::topup(state.store.as_ref(), &id, topup).await?))
}

pub async fn adjust(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(adj): Body<Adjustment>,
) -> Result<Json<Account>> {
    Ok(Json(ops::adjust(state.store.as_ref(), &id, adj).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerQuery {
    limit: Option<i64>,
}

pub async fn ledger(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LedgerQuery>,
) -> Result<Json<List<LedgerEntry>>> {
    Ok(list(ops::ledger(state.store.as_ref(), &id, q.limit).await?))
}

pub async fn create_key(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse> {
    let created = ops::create_key(state.store.as_ref(), &id).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn list_keys(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<List<ApiKey>>> {
    Ok(list(ops::list_keys(state.store.as_ref(), &id).await?))
}

pub async fn revoke_key(
    _: Admin,
    State(state): State<AppState>,
    Path(key_id): Path<String>,
) -> Result<StatusCode> {
    ops::revoke_key(state.store.as_ref(), &key_id).await?;
    // Without this the revoked key would keep working here until its cache entry expires.
    state.keys.invalidate();
    Ok(StatusCode::NO_CONTENT)
}

pub async fn verify_ledger(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<ops::LedgerReport>> {
    Ok(Json(ops::verify_ledger(state.store.as_ref()).await?))
}

pub async fn task(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ops::TaskDetail>> {
    Ok(Json(ops::task(state.store.as_ref(), &id).await?))
}

pub async fn webhook_secret(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ops::WebhookSecretView>> {
    Ok(Json(ops::webhook_secret(state.store.as_ref(), &id).await?))
}

/// The body is optional: no body (or `{}`) rotates with the configured grace period.
pub async fn rotate_webhook_secret(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Body<Rotation>>,
) -> Result<Json<ops::RotatedSecret>> {
    let rotation = body.map(|Body(r)| r).unwrap_or_default();
    let grace = state.config.webhook_secret_grace_ms;
    let rotated = ops::rotate_webhook_secret(state.store.as_ref(), &id, rotation, grace).await?;
    Ok(Json(rotated))
}

/// `PUT /accounts/{id}/webhook-hmac-key` `{"key": "..." | null}`.
pub async fn set_webhook_hmac_key(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<ops::HmacKey>,
) -> Result<Json<ops::HmacKeySet>> {
    Ok(Json(
        ops::set_webhook_hmac_key(state.store.as_ref(), &id, body).await?,
    ))
}

/// `PUT /accounts/{id}/webhook-url` `{"url": "https://..." | null}`.
pub async fn set_webhook_url(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Body(body): Body<ops::WebhookUrl>,
) -> Result<Json<ops::WebhookUrlSet>> {
    let guard = state.outbound.clone();
    let check = move |u: &str| guard.check_url(u).map(|_| ()).map_err(|r| r.to_string());
    let set = ops::set_webhook_url(state.store.as_ref(), check, &id, body).await?;
    // Keys cache their account: drop them so the new URL applies to the next request.
    state.keys.invalidate();
    Ok(Json(set))
}

pub async fn task_webhooks(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<List<ops::WebhookDetail>>> {
    Ok(list(ops::task_webhooks(state.store.as_ref(), &id).await?))
}

/// The body is optional: no body (or `{}`) redelivers every failed message of the task.
pub async fn redeliver_webhooks(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<Body<Redelivery>>,
) -> Result<Json<ops::Redelivered>> {
    let redelivery = body.map(|Body(r)| r).unwrap_or_default();
    let done = ops::redeliver_webhooks(state.store.as_ref(), &id, redelivery).await?;
    if done.redelivered > 0 {
        // The deliverer would otherwise notice at its next idle wake-up.
        state.outbox_wake.notify_one();
    }
    Ok(Json(done))
}

/// Unknown route under `/admin/v1`: still behind the token, so the API's shape is not
/// discoverable without it.
pub async fn not_found(_: Admin) -> AdminError {
    AdminError::NotFound("no such admin route".into())
}

pub async fn method_not_allowed(_: Admin) -> AdminError {
    AdminError::MethodNotAllowed
}
