use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::{TaskSpec, TaskState};
use serde_json::{json, Map, Value};

use super::fetch::{fetch, Kind};
use super::mapping::Mapping;
use super::request;
use super::{media_of, view, QsError};
use crate::accept;
use crate::auth::{authenticate, bearer};
use crate::{AppState, Principal};

fn ok(data: Value) -> Value {
    json!({"code": 200, "msg": "success", "data": data})
}

fn object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, QsError> {
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            QsError::BadRequest("Bad request: the body is too large".into())
        } else {
            QsError::BadRequest(format!("Bad request: {e}"))
        }
    })?;
    request::parse_object(&body)
}

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, QsError> {
    Ok(authenticate(state, bearer(headers)).await?)
}

/// `callBackUrl`, refused now when it is refused on its face (scheme, private address).
fn check_callback(state: &AppState, url: Option<String>) -> Result<Option<String>, QsError> {
    if let Some(url) = &url {
        state
            .outbound
            .check_url(url)
            .map_err(|r| QsError::Validation(format!("callBackUrl is refused: {r}")))?;
    }
    Ok(url)
}

/// What a create turns into before the shared accept path.
struct Create {
    route: &'static str,
    endpoint: String,
    body: Value,
    callback: Option<String>,
    params: Value,
}

async fn submit(
    state: &AppState,
    headers: &HeaderMap,
    principal: &Principal,
    client_body: &Map<String, Value>,
    c: Create,
) -> Result<Response, QsError> {
    let idempotency_key = accept::idempotency_key(headers)?;
    let mut spec = TaskSpec::parse(&state.catalog, &c.endpoint, &c.body)?;
    spec.callback_url = c.callback;
    spec.watermark = c.params["waterMark"]
        .as_str()
        .filter(|w| !w.trim().is_empty())
        .map(str::to_string);
    spec.params = Some(c.params);
    let accepted = accept::accept(
        state,
        accept::Request {
            principal,
            dialect: "quickstart",
            route: c.route,
            body: &Value::Object(client_body.clone()),
            idempotency_key,
            spec,
        },
        |id, _price| (200, ok(json!({"taskId": id}))),
    )
    .await?;
    let mut resp = Json(accepted.body).into_response();
    if accepted.replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

pub async fn generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, QsError> {
    let principal = principal(&state, &headers).await?;
    let obj = object(body)?;
    let m: &Mapping = &state.quickstart.mapping;
    let r = request::read_generate(m, &obj)?;
    let callback = check_callback(&state, r.callback)?;
    let (prompt, duration, quality, image_url) = (r.prompt, r.duration, r.quality, r.image_url);

    let (endpoint, runway_body, ratio) = match &image_url {
        Some(url) => {
            // The image decides the ratio (decision 6): `aspectRatio` is accepted, not used.
            let target = &m.image[&quality];
            let image = fetch(&state, "imageUrl", url, Kind::Image, m.max_image_bytes).await?;
            let (w, h) = image.size.unwrap_or((16, 9));
            let ratio = Mapping::nearest_ratio(&target.ratios, w, h).to_string();
            let body = json!({"model": target.model, "promptImage": image.data_uri(),
                              "promptText": prompt, "ratio": ratio, "duration": duration});
            ("image_to_video", body, ratio)
        }
        None => {
            let a = r.aspect.unwrap_or_default();
            let target = m.text[&quality].get(&a).ok_or_else(|| {
                QsError::Validation(format!("no {quality} mapping for aspectRatio {a}"))
            })?;
            let body = json!({"model": target.model, "promptText": prompt,
                              "ratio": target.ratio, "duration": duration});
            ("text_to_video", body, target.ratio.clone())
        }
    };
    let params = json!({
        "kind": "generate",
        "parentTaskId": "",
        "generateParam": {"prompt": prompt, "imageUrl": image_url.unwrap_or_default(),
                          "expandPrompt": r.expand},
        "quality": quality, "duration": duration, "ratio": ratio, "waterMark": r.water_mark,
    });
    submit(
        &state,
        &headers,
        &principal,
        &obj,
        Create {
            route: "runway/generate",
            endpoint: endpoint.into(),
            body: runway_body,
            callback,
            params,
        },
    )
    .await
}

pub async fn extend(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, QsError> {
    let principal = principal(&state, &headers).await?;
    let obj = object(body)?;
    let m: &Mapping = &state.quickstart.mapping;
    let r = request::read_extend(m, &obj)?;
    let callback = check_callback(&state, r.callback)?;
    let (parent_id, prompt, quality) = (r.parent_id, r.prompt, r.quality);

    // Another account's task and a missing one get the same answer (decision 17).
    let parent = state
        .store
        .get_task(&principal.account.id, &parent_id)
        .await?
        .filter(|t| t.dialect == "quickstart" && view::params(t)["kind"] != "aleph")
        .ok_or_else(|| QsError::NotFound(format!("Task {parent_id} does not exist")))?;
    if parent.state != TaskState::Succeeded {
        return Err(QsError::Validation(format!(
            "Task {parent_id} has not succeeded ({}); only generated videos can be extended",
            view::state_word(parent.state)
        )));
    }
    let media = media_of(&state.links, &parent);
    if media.expired {
        return Err(QsError::Validation(format!(
            "Task {parent_id} has expired; its video is no longer stored"
        )));
    }
    let frame = super::last_frame(&state, &parent).await?;
    let target = &m.image[&quality];
    let parent_ratio = view::params(&parent)["ratio"]
        .as_str()
        .unwrap_or("1280:720");
    let ratio = if target.ratios.iter().any(|r| r == parent_ratio) {
        parent_ratio.to_string()
    } else {
        let (w, h) = parent_ratio
            .split_once(':')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            .unwrap_or((16, 9));
        Mapping::nearest_ratio(&target.ratios, w, h).to_string()
    };
    let duration = m.extend_duration;
    request::check_combination(m, duration, &quality)?;
    let runway_body = json!({"model": target.model, "promptImage": frame.data_uri,
                             "promptText": prompt, "ratio": ratio, "duration": duration});
    let params = json!({
        "kind": "extend",
        "parentTaskId": parent.id,
        "generateParam": {"prompt": prompt, "imageUrl": frame.url, "expandPrompt": r.expand},
        "quality": quality, "duration": duration, "ratio": ratio, "waterMark": r.water_mark,
    });
    submit(
        &state,
        &headers,
        &principal,
        &obj,
        Create {
            route: "runway/extend",
            endpoint: "image_to_video".into(),
            body: runway_body,
            callback,
            params,
        },
    )
    .await
}

pub async fn aleph_generate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, QsError> {
    let principal = principal(&state, &headers).await?;
    let obj = object(body)?;
    let m: &Mapping = &state.quickstart.mapping;
    let r = request::read_aleph(m, &obj)?;
    let callback = check_callback(&state, r.callback)?;
    let (prompt, video_url, aspect, seed, reference) =
        (r.prompt, r.video_url, r.aspect, r.seed, r.reference);
    let video = fetch(
        &state,
        "videoUrl",
        &video_url,
        Kind::Video,
        m.aleph.max_video_bytes,
    )
    .await?;
    let mut runway_body = json!({"model": m.aleph.model, "videoUri": video.data_uri(),
                                 "promptText": prompt});
    if let Some(a) = &aspect {
        runway_body["targetAspectRatio"] = json!(a);
    }
    if let Some(s) = seed {
        runway_body["seed"] = json!(s);
    }
    if let Some(url) = &reference {
        // The style reference must be fetchable (451 otherwise); it guides the edit as the
        // first keyframe.
        let image = fetch(
            &state,
            "referenceImage",
            url,
            Kind::Image,
            m.max_image_bytes,
        )
        .await?;
        runway_body["keyframes"] = json!([{"uri": image.data_uri(), "at": 0}]);
    }
    let mut request = obj.clone();
    request.remove("callBackUrl");
    let params = json!({"kind": "aleph", "request": request, "waterMark": r.water_mark});
    submit(
        &state,
        &headers,
        &principal,
        &obj,
        Create {
            route: "aleph/generate",
            endpoint: "video_to_video".into(),
            body: runway_body,
            callback,
            params,
        },
    )
    .await
}

#[derive(serde::Deserialize)]
pub struct TaskQuery {
    #[serde(rename = "taskId")]
    task_id: Option<String>,
}

async fn task_for(
    state: &AppState,
    headers: &HeaderMap,
    query: Result<Query<TaskQuery>, QueryRejection>,
    aleph: bool,
) -> Result<reelay_store::Task, QsError> {
    let principal = principal(state, headers).await?;
    let Query(q) = query.map_err(|e| QsError::BadRequest(format!("Bad request: {e}")))?;
    let id = q
        .task_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| QsError::Validation("taskId is required".into()))?;
    state
        .store
        .get_task(&principal.account.id, &id)
        .await?
        .filter(|t| t.dialect == "quickstart" && (view::params(t)["kind"] == "aleph") == aleph)
        .ok_or_else(|| QsError::NotFound(format!("Task {id} does not exist")))
}

pub async fn record_detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TaskQuery>, QueryRejection>,
) -> Result<Json<Value>, QsError> {
    let task = task_for(&state, &headers, query, false).await?;
    let media = media_of(&state.links, &task);
    Ok(Json(ok(view::record_detail(
        &task,
        &media,
        state.quickstart.time_zone,
    ))))
}

pub async fn aleph_record_info(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TaskQuery>, QueryRejection>,
) -> Result<Json<Value>, QsError> {
    let task = task_for(&state, &headers, query, true).await?;
    let media = media_of(&state.links, &task);
    Ok(Json(ok(view::aleph_info(&task, &media))))
}
