use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::{Dialect, TaskSpec};
use serde_json::{json, Map, Value};

use super::error::{Reverse, ReverseError};
use super::request::{self, Translated};
use super::view;
use crate::auth::authenticate;
use crate::error::{ApiError, ErrorKind};
use crate::fields::Fields;
use crate::{accept, create};
use crate::{AppState, Principal};

/// Which create route was called.
#[derive(Clone, Copy)]
pub enum Route {
    Generate,
    Video2Video,
    ActOne,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Generate => "pro/generate",
            Route::Video2Video => "pro/video2video",
            Route::ActOne => "pro/act_one",
        }
    }
}

fn ok(data: Value, started: Instant) -> Value {
    json!({"code": 200, "msg": "success", "message": "", "data": data,
           "exec_time": started.elapsed().as_secs_f64()})
}

/// The JSON object of a request body (an absent body is an empty object).
fn object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    create::json_object(&create::body(body)?, true)
}

/// `Authorization: Bearer <key>`, `Authorization: <key>` (DuomiAPI), or — only when there is
/// no Authorization header — a `key` field in the body (decision 19).
async fn principal(
    state: &AppState,
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<Principal, ReverseError> {
    let key = match headers.get(axum::http::header::AUTHORIZATION) {
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| ApiError::new(ErrorKind::InvalidKey, "invalid API key"))?
                .trim();
            let key = match v.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                _ => v,
            };
            Some(key.to_string())
        }
        None => body.get("key").and_then(Value::as_str).map(str::to_string),
    };
    Ok(authenticate(state, key.as_deref().filter(|k| !k.is_empty())).await?)
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    route: Route,
) -> Response {
    let started = Instant::now();
    match create_inner(&state, &headers, body, route, started).await {
        Ok(resp) => resp,
        Err(e) => Reverse::respond(e.0, started),
    }
}

async fn create_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    route: Route,
    started: Instant,
) -> Result<Response, ReverseError> {
    let obj = object(body)?;
    let principal = principal(state, headers, &obj).await?;
    let cfg = &state.reverse;
    let Translated {
        endpoint,
        body,
        prompt,
        callback_url,
    } = match route {
        Route::Generate => request::generate(&cfg.mapping, &obj, cfg.require_callback_url)?,
        Route::Video2Video => request::video2video(&cfg.mapping, &obj, cfg.require_callback_url)?,
        Route::ActOne => request::act_one(&cfg.mapping, &obj, cfg.require_callback_url)?,
    };
    let callback_url = create::callback_url(state, "callback_url", callback_url)?;
    let mut spec = TaskSpec::parse(&state.catalog, &endpoint, &body)?;
    spec.callback_url = callback_url;
    // The idempotency identity is the client's own body (less the credential), not ours.
    let mut identity = obj.clone();
    identity.remove("key");
    let identity = Value::Object(identity);
    let accepted = accept::accept(
        state,
        accept::Request {
            principal: &principal,
            dialect: Dialect::Reverse,
            route: route.name(),
            body: &identity,
            headers,
            spec,
        },
        |id, price| {
            let now = (reelay_store::now_ms() / 1000).to_string();
            let data = json!({
                "task_id": id, "state": "pending", "status": "0",
                "prompt": prompt, "prompt_en": prompt,
                "video_url": null, "poster": null, "last_frame": null, "msg": null,
                "point": price.to_string(), "refund": "0",
                "create_time": now, "update_time": now,
            });
            (200, ok(data, started))
        },
    )
    .await?;
    Ok(accepted.into_response())
}

#[derive(serde::Deserialize)]
pub struct FeedQuery {
    task_id: Option<String>,
    key: Option<String>,
}

pub async fn feed_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let run = async {
        let obj = object(body)?;
        let principal = principal(&state, &headers, &obj).await?;
        let mut fields = Fields::new(&obj, "", &[]);
        fields.get("key"); // a body credential, consumed by authentication
        let id = fields.required("task_id")?;
        fields.done()?;
        feed(&state, &principal, &id, started).await
    };
    run.await
        .unwrap_or_else(|e: ReverseError| Reverse::respond(e.0, started))
}

pub async fn feed_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let started = Instant::now();
    let run = async {
        let Query(q) = query.map_err(|e| ApiError::malformed(format!("bad query string: {e}")))?;
        let mut creds = Map::new();
        if let Some(k) = q.key {
            creds.insert("key".into(), Value::String(k));
        }
        let principal = principal(&state, &headers, &creds).await?;
        let id = q
            .task_id
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid("task_id", "task_id is required"))?;
        feed(&state, &principal, &id, started).await
    };
    run.await
        .unwrap_or_else(|e: ReverseError| Reverse::respond(e.0, started))
}

/// Unknown ids and other accounts' ids get the same answer.
async fn feed(
    state: &AppState,
    principal: &Principal,
    id: &str,
    started: Instant,
) -> Result<Response, ReverseError> {
    let task = state
        .store
        .get_task(&principal.account.id, id)
        .await?
        .ok_or_else(|| ApiError::task_not_found(id))?;
    Ok(Json(ok(view::data(&state.links, &task), started)).into_response())
}
