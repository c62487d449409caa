use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::TaskSpec;
use serde_json::{json, Map, Value};

use super::request::{self, Translated};
use super::view;
use super::ReverseError;
use crate::accept;
use crate::auth::authenticate;
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
fn object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ReverseError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ReverseError::TooLarge
        } else {
            ReverseError::Invalid(format!("could not read the body: {e}"))
        }
    })?;
    super::request::parse_object(&body)
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
            let v = v.to_str().map_err(|_| ReverseError::Unauthorized)?.trim();
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
        Err(e) => e.respond(started),
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
    let idempotency_key = accept::idempotency_key(headers)?;
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
    if let Some(url) = &callback_url {
        state
            .outbound
            .check_url(url)
            .map_err(|r| ReverseError::Invalid(format!("callback_url is refused: {r}")))?;
    }
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
            dialect: "reverse",
            route: route.name(),
            body: &identity,
            idempotency_key,
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
    let mut resp = (StatusCode::OK, Json(accepted.body)).into_response();
    if accepted.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
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
        for k in obj.keys() {
            if k != "task_id" && k != "key" {
                return Err(ReverseError::Invalid(format!("unknown field {k}")));
            }
        }
        let id = match obj.get("task_id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) | None => {
                return Err(ReverseError::Invalid("task_id is required".into()))
            }
            Some(_) => return Err(ReverseError::Invalid("task_id must be a string".into())),
        };
        feed(&state, &principal, &id, started).await
    };
    run.await.unwrap_or_else(|e| e.respond(started))
}

pub async fn feed_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let started = Instant::now();
    let run = async {
        let Query(q) =
            query.map_err(|e| ReverseError::Invalid(format!("bad query string: {e}")))?;
        let mut creds = Map::new();
        if let Some(k) = q.key {
            creds.insert("key".into(), Value::String(k));
        }
        let principal = principal(&state, &headers, &creds).await?;
        let id = q
            .task_id
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ReverseError::Invalid("task_id is required".into()))?;
        feed(&state, &principal, &id, started).await
    };
    run.await.unwrap_or_else(|e| e.respond(started))
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
        .ok_or(ReverseError::TaskNotExist)?;
    Ok(Json(ok(view::data(&state.links, &task), started)).into_response())
}
