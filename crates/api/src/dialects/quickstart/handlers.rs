use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::{Dialect, TaskSpec, TaskState};
use serde_json::{json, Map, Value};

use super::fetch::{fetch, Kind};
use super::mapping::Mapping;
use super::params::{GenerateParam, Params, Route};
use super::request;
use super::{media_of, view, QsError};
use crate::auth::{authenticate, bearer};
use crate::error::ApiError;
use crate::{accept, create};
use crate::{AppState, Principal};

fn ok(data: Value) -> Value {
    json!({"code": 200, "msg": "success", "data": data})
}

fn object(body: Result<Bytes, BytesRejection>) -> Result<Map<String, Value>, ApiError> {
    create::json_object(&create::body(body)?, false)
}

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, QsError> {
    Ok(authenticate(state, bearer(headers)).await?)
}

/// What a create turns into before the shared accept path.
struct Create {
    route: &'static str,
    endpoint: String,
    body: Value,
    /// Checked already (before any media was fetched for the request).
    callback: Option<String>,
    params: Params,
}

async fn submit(
    state: &AppState,
    headers: &HeaderMap,
    principal: &Principal,
    client_body: &Map<String, Value>,
    c: Create,
) -> Result<Response, QsError> {
    let mut spec = TaskSpec::parse(&state.catalog, &c.endpoint, &c.body)?;
    spec.callback_url = c.callback;
    spec.watermark = Some(c.params.water_mark.clone()).filter(|w| !w.trim().is_empty());
    spec.params = Some(c.params.to_value());
    let accepted = accept::accept(
        state,
        accept::Request {
            principal,
            dialect: Dialect::Quickstart,
            route: c.route,
            body: &Value::Object(client_body.clone()),
            headers,
            spec,
        },
        |id, _price| (200, ok(json!({"taskId": id}))),
    )
    .await?;
    Ok(accepted.into_response())
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
    let callback = create::callback_url(&state, "callBackUrl", r.callback)?;
    let (prompt, duration, quality, image_url) = (r.prompt, r.duration, r.quality, r.image_url);

    let (endpoint, runway_body, ratio) = match &image_url {
        Some(url) => {
            // The image decides the ratio (decision 6): `aspectRatio` is accepted, not used.
            let target = &m.image[&quality];
            let image = fetch(&state, "imageUrl", url, Kind::Image, m.max_image_bytes).await?;
            let (w, h) = image.size.unwrap_or((16, 9));
            let ratio = crate::dialects::nearest_ratio(&target.ratios, w, h).to_string();
            let body = json!({"model": target.model, "promptImage": image.data_uri(),
                              "promptText": prompt, "ratio": ratio, "duration": duration});
            ("image_to_video", body, ratio)
        }
        None => {
            let a = r.aspect.unwrap_or_default();
            let target = m.text[&quality].get(&a).ok_or_else(|| {
                ApiError::invalid(
                    "aspectRatio",
                    format!("no {quality} mapping for aspectRatio {a}"),
                )
            })?;
            let body = json!({"model": target.model, "promptText": prompt,
                              "ratio": target.ratio, "duration": duration});
            ("text_to_video", body, target.ratio.clone())
        }
    };
    let params = Params {
        kind: Route::Generate,
        parent_task_id: String::new(),
        generate_param: Some(GenerateParam {
            prompt,
            image_url: image_url.unwrap_or_default(),
            expand_prompt: r.expand,
        }),
        quality: Some(quality),
        duration: Some(duration),
        ratio: Some(ratio),
        water_mark: r.water_mark,
        request: None,
    };
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
    let callback = create::callback_url(&state, "callBackUrl", r.callback)?;
    let (parent_id, prompt, quality) = (r.parent_id, r.prompt, r.quality);

    // Another account's task and a missing one get the same answer (decision 17).
    let parent = state
        .store
        .get_task(&principal.account.id, &parent_id)
        .await?
        .filter(|t| t.dialect == Dialect::Quickstart && Params::of(t).kind != Route::Aleph)
        .ok_or_else(|| ApiError::task_not_found(&parent_id))?;
    if parent.state != TaskState::Succeeded {
        return Err(ApiError::invalid(
            "taskId",
            format!(
                "Task {parent_id} has not succeeded ({}); only generated videos can be extended",
                view::state_word(parent.state)
            ),
        )
        .into());
    }
    let media = media_of(&state.links, &parent);
    if media.expired {
        return Err(ApiError::invalid(
            "taskId",
            format!("Task {parent_id} has expired; its video is no longer stored"),
        )
        .into());
    }
    let frame = super::last_frame(&state, &parent, "taskId").await?;
    let target = &m.image[&quality];
    let parent_ratio = Params::of(&parent)
        .ratio
        .unwrap_or_else(|| "1280:720".into());
    let parent_ratio = parent_ratio.as_str();
    let ratio = if target.ratios.iter().any(|r| r == parent_ratio) {
        parent_ratio.to_string()
    } else {
        let (w, h) = parent_ratio
            .split_once(':')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            .unwrap_or((16, 9));
        crate::dialects::nearest_ratio(&target.ratios, w, h).to_string()
    };
    let duration = m.extend_duration;
    request::check_combination(m, duration, &quality)?;
    let runway_body = json!({"model": target.model, "promptImage": frame.data_uri,
                             "promptText": prompt, "ratio": ratio, "duration": duration});
    let params = Params {
        kind: Route::Extend,
        parent_task_id: parent.id,
        generate_param: Some(GenerateParam {
            prompt,
            image_url: frame.url,
            expand_prompt: r.expand,
        }),
        quality: Some(quality),
        duration: Some(duration),
        ratio: Some(ratio),
        water_mark: r.water_mark,
        request: None,
    };
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
    let callback = create::callback_url(&state, "callBackUrl", r.callback)?;
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
    let params = Params {
        kind: Route::Aleph,
        water_mark: r.water_mark,
        request: Some(request),
        ..Params::default()
    };
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
    let Query(q) = query.map_err(|e| ApiError::malformed(e.to_string()))?;
    let id = q
        .task_id
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("taskId", "taskId is required"))?;
    state
        .store
        .get_task(&principal.account.id, &id)
        .await?
        .filter(|t| {
            t.dialect == Dialect::Quickstart && (Params::of(t).kind == Route::Aleph) == aleph
        })
        .ok_or_else(|| ApiError::task_not_found(&id).into())
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
