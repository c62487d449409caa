use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Json;
use reelay_core::{Dialect, TaskSpec, TaskState};
use reelay_store::{now_ms, CancelOutcome, Task, TaskPage};
use serde_json::{json, Value};

use super::params::Params;
use super::request::{self, Create};
use super::{view, OpenAiError};
use crate::auth::{authenticate, bearer};
use crate::error::{ApiError, ErrorKind};
use crate::{accept, create, AppState, Principal};

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Principal, OpenAiError> {
    Ok(authenticate(state, bearer(headers)).await?)
}

fn not_found(video_id: &str) -> ApiError {
    ApiError::new(
        ErrorKind::TaskNotFound,
        format!("Video with id '{video_id}' not found."),
    )
}

/// A video of this account made through this dialect; anything else is a 404, whoever owns it.
async fn video_task(
    state: &AppState,
    principal: &Principal,
    video_id: &str,
) -> Result<Task, ApiError> {
    let id = view::task_id(video_id).ok_or_else(|| not_found(video_id))?;
    state
        .store
        .get_task(&principal.account.id, &id)
        .await?
        .filter(|t| t.dialect == Dialect::Openai)
        .ok_or_else(|| not_found(video_id))
}

/// The Video object, with the poll interval the SDK's `poll` helper adopts while unfinished.
fn video_response(state: &AppState, task: &Task) -> Response {
    let mut resp = Json(view::video(task)).into_response();
    if !task.state.is_terminal() {
        resp.headers_mut().insert(
            "openai-poll-after-ms",
            HeaderValue::from(state.openai.mapping.poll_after_ms),
        );
    }
    resp
}

async fn submit(
    state: &AppState,
    headers: &HeaderMap,
    principal: &Principal,
    route: &'static str,
    identity: Value,
    c: Create,
) -> Result<Response, OpenAiError> {
    let mut spec = TaskSpec::parse(&state.catalog, c.endpoint, &c.body)
        .map_err(|e| request::catalog_error(e, &c.params.model))?;
    // The request is valid: its file goes into the uploads store, and the task names it.
    if let Some((content_type, bytes)) = c.file {
        let ext = content_type.rsplit('/').next().unwrap_or("bin");
        let uri = crate::uploads::store_file(
            state,
            &principal.account.id,
            &format!("input_reference.{ext}"),
            content_type,
            bytes,
        )
        .await?;
        if let Some(slot) = spec.input.get_mut("promptImage") {
            *slot = Value::String(uri);
        }
    }
    // A per-request URL (reelay's header) wins; else the account's webhook URL, as OpenAI
    // sends a project's events to its configured endpoint.
    spec.callback_url = match create::callback_header(state, headers)? {
        Some(u) => Some(u),
        None => principal.account.webhook_url.clone(),
    };
    spec.params = Some(c.params.to_value());
    let params = c.params;
    let accepted = accept::accept(
        state,
        accept::Request {
            principal,
            dialect: Dialect::Openai,
            route,
            body: &identity,
            headers,
            spec,
        },
        |id, _price| (200, view::accepted(id, &params, now_ms())),
    )
    .await?;
    Ok(accepted.into_response())
}

/// `POST /v1/videos` (multipart or JSON).
pub async fn create(State(state): State<AppState>, req: Request) -> Result<Response, OpenAiError> {
    let headers = req.headers().clone();
    let principal = principal(&state, &headers).await?;
    let form = request::read_form(&state, req).await?;
    let c = request::read_create(&state.openai.mapping, &state.catalog, &form)?;
    submit(&state, &headers, &principal, "videos", form.identity(), c).await
}

pub async fn retrieve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(video_id): Path<String>,
) -> Result<Response, OpenAiError> {
    let principal = principal(&state, &headers).await?;
    let task = video_task(&state, &principal, &video_id).await?;
    Ok(video_response(&state, &task))
}

#[derive(serde::Deserialize)]
pub struct ListQuery {
    after: Option<String>,
    limit: Option<String>,
    order: Option<String>,
}

/// `GET /v1/videos`: newest first by default, `after` = the last id of the previous page.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, OpenAiError> {
    let principal = principal(&state, &headers).await?;
    let Query(q) = query.map_err(|e| ApiError::malformed(e.body_text()))?;
    let limit = match q.limit.as_deref() {
        None | Some("") => 20,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::invalid("limit", "Invalid value for 'limit': expected 1 to 100.")
                    .with_code("invalid_value")
            })?,
    };
    let ascending = match q.order.as_deref() {
        None | Some("") | Some("desc") => false,
        Some("asc") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "order",
                "Invalid value for 'order': expected 'asc' or 'desc'.",
            )
            .with_code("invalid_value")
            .into())
        }
    };
    let after = match q.after.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(v) => Some(view::task_id(v).ok_or_else(|| {
            ApiError::invalid(
                "after",
                format!("Invalid value for 'after': {v:?} is not a video id."),
            )
            .with_code("invalid_value")
        })?),
    };
    let mut tasks = state
        .store
        .list_tasks(&TaskPage {
            account_id: principal.account.id.clone(),
            dialect: Dialect::Openai,
            after,
            limit: limit + 1,
            ascending,
        })
        .await?;
    let has_more = tasks.len() as i64 > limit;
    tasks.truncate(limit as usize);
    let data: Vec<Value> = tasks.iter().map(view::video).collect();
    let id = |t: Option<&Task>| t.map(|t| view::video_id(&t.id));
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "first_id": id(tasks.first()),
        "last_id": id(tasks.last()),
        "has_more": has_more,
    })))
}

/// `DELETE /v1/videos/{id}`: a finished video and its stored media. The dialect has no cancel,
/// so an unfinished video is refused rather than silently cancelled.
pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(video_id): Path<String>,
) -> Result<Json<Value>, OpenAiError> {
    let principal = principal(&state, &headers).await?;
    let task = video_task(&state, &principal, &video_id).await?;
    if !task.state.is_terminal() {
        return Err(ApiError::invalid_request(format!(
            "Video '{video_id}' is {}; only completed or failed videos can be deleted.",
            view::status(task.state)
        ))
        .into());
    }
    match state
        .store
        .cancel_or_delete(&principal.account.id, &task.id, false)
        .await?
    {
        CancelOutcome::Deleted => {}
        CancelOutcome::NotFound => return Err(not_found(&video_id).into()),
        CancelOutcome::Cancelled => {
            return Err(ApiError::new(ErrorKind::Internal, "a finished task was cancelled").into())
        }
    }
    // Its media go now, not at the end of the retention period (the sweeper removes them).
    state.store.expire_media(&task.id, now_ms()).await?;
    Ok(Json(
        json!({"id": video_id, "object": "video.deleted", "deleted": true}),
    ))
}

#[derive(serde::Deserialize)]
pub struct ContentQuery {
    variant: Option<String>,
}

/// `GET /v1/videos/{id}/content?variant=video|thumbnail|spritesheet`: streamed from the
/// archive with Range support (or a redirect to a presigned URL with S3 redirects on).
pub async fn content(
    State(state): State<AppState>,
    headers: HeaderMap,
    method: Method,
    Path(video_id): Path<String>,
    query: Result<Query<ContentQuery>, QueryRejection>,
) -> Result<Response, OpenAiError> {
    let principal = principal(&state, &headers).await?;
    let Query(q) = query.map_err(|e| ApiError::malformed(e.body_text()))?;
    let task = video_task(&state, &principal, &video_id).await?;
    let variant = q.variant.as_deref().unwrap_or("video");
    if !["video", "thumbnail", "spritesheet"].contains(&variant) {
        return Err(ApiError::invalid(
            "variant",
            "Invalid value for 'variant': expected 'video', 'thumbnail' or 'spritesheet'.",
        )
        .with_code("invalid_value")
        .into());
    }
    if task.state != TaskState::Succeeded {
        return Err(ApiError::invalid_request(format!(
            "Video '{video_id}' is not ready: its status is {}. Retrieve it until it is completed.",
            view::status(task.state)
        ))
        .into());
    }
    let now = now_ms();
    let gone = || {
        ApiError::new(
            ErrorKind::TaskNotFound,
            format!("The {variant} of video '{video_id}' is not available."),
        )
    };
    if task.expires_at.is_some_and(|e| e <= now) {
        return Err(ApiError::new(
            ErrorKind::TaskNotFound,
            format!("Video '{video_id}' has expired; its content is no longer stored."),
        )
        .into());
    }
    let name = match variant {
        "video" => task.outputs.first().cloned(),
        "thumbnail" => task.poster.clone(),
        // Made from the first video output on its first request, then kept.
        _ => Some(reelay_media::FrameKind::Spritesheet.object_name(0)),
    }
    .ok_or_else(gone)?;
    let served = crate::media::served_media(&state, &task.id, &name)
        .await?
        .filter(|s| !s.deleted)
        .ok_or_else(gone)?;
    let valid_for = task
        .expires_at
        .map(|e| ((e - now) / 1000).max(1) as u64)
        .unwrap_or(3600);
    Ok(crate::media::send(&state, served.object, &method, &headers, valid_for).await)
}

/// A source video for remix and extension: completed and still stored.
async fn finished_source(
    state: &AppState,
    principal: &Principal,
    video_id: &str,
    param: &str,
) -> Result<Task, ApiError> {
    let task = video_task(state, principal, video_id).await?;
    if task.state != TaskState::Succeeded {
        return Err(ApiError::invalid(
            param,
            format!(
                "Video '{video_id}' is {}; only completed videos can be used.",
                view::status(task.state)
            ),
        ));
    }
    if task.expires_at.is_some_and(|e| e <= now_ms()) || task.outputs.is_empty() {
        return Err(ApiError::invalid(
            param,
            format!("Video '{video_id}' has expired; its content is no longer stored."),
        ));
    }
    Ok(task)
}

/// `POST /v1/videos/{id}/remix`: a new video from the source with a new prompt, on the
/// mapping's video-to-video model. The source goes inline when it fits a data URI.
pub async fn remix(
    State(state): State<AppState>,
    Path(video_id): Path<String>,
    req: Request,
) -> Result<Response, OpenAiError> {
    let headers = req.headers().clone();
    let principal = principal(&state, &headers).await?;
    let form = request::read_form(&state, req).await?;
    let prompt = request::read_remix(&form.fields)?;
    let source = finished_source(&state, &principal, &video_id, "video_id").await?;
    let name = source.outputs[0].clone();
    let video_uri = match crate::media::object_bytes(&state, &source, &name).await {
        Ok(Some(b)) if b.len() * 4 / 3 + 64 < reelay_core::media_ref::AV_DATA_URI_MAX => {
            use base64::Engine;
            format!(
                "data:video/mp4;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&b)
            )
        }
        Ok(_) => crate::media::task_media(&state.links, &source).outputs[0].clone(),
        Err(e) => {
            tracing::warn!(error = %e, task = %source.id, "reading a video to remix");
            return Err(ApiError::new(ErrorKind::Unavailable, "media store unavailable").into());
        }
    };
    let p = Params::of(&source);
    let m = &state.openai.mapping;
    let body = json!({"model": m.remix_model, "videoUri": video_uri, "promptText": prompt});
    let mut identity = form.identity();
    identity["video_id"] = json!(video_id);
    submit(
        &state,
        &headers,
        &principal,
        "videos/remix",
        identity,
        Create {
            endpoint: "video_to_video",
            body,
            params: Params {
                prompt,
                remixed_from_video_id: Some(video_id),
                extended_from_video_id: None,
                ..p
            },
            file: None,
        },
    )
    .await
}

/// `POST /v1/videos/extensions`: continues a video from its last frame — a completed video of
/// ours (on its model when that takes an image, at its size), or an uploaded H.264 MP4 (on the
/// mapping's extension model, at the clip's own size).
pub async fn extend(State(state): State<AppState>, req: Request) -> Result<Response, OpenAiError> {
    let headers = req.headers().clone();
    let principal = principal(&state, &headers).await?;
    let form = request::read_form(&state, req).await?;
    let ext = request::read_extension(&form)?;
    let m = &state.openai.mapping;
    let (frame, model, params) = match &ext.source {
        request::Source::Video(video_id) => {
            let source = finished_source(&state, &principal, video_id, "video").await?;
            let frame = crate::media::last_frame(&state, &source, "video").await?;
            let image_models = state.catalog.endpoint("image_to_video");
            let model = if image_models.is_some_and(|e| e.models.contains_key(&source.spec.model)) {
                source.spec.model.clone()
            } else {
                m.extend_model.clone()
            };
            let params = Params {
                extended_from_video_id: Some(video_id.clone()),
                remixed_from_video_id: None,
                ..Params::of(&source)
            };
            (frame.data_uri, model, params)
        }
        request::Source::Upload(bytes) => {
            let jpeg = state
                .engine
                .frame_of_bytes(bytes.clone(), reelay_media::FrameKind::LastFrame)
                .await
                .map_err(|e| {
                    ApiError::invalid(
                        "video",
                        format!("Could not read the uploaded video (an H.264 MP4 is needed): {e}"),
                    )
                })?;
            // The clip's shape picks the nearest ratio the extension model takes.
            let size = match (
                imagesize::blob_size(&jpeg),
                state
                    .catalog
                    .enum_values("image_to_video", &m.extend_model, "ratio"),
            ) {
                (Ok(d), Some(ratios)) => view::size_of_ratio(crate::dialects::nearest_ratio(
                    ratios,
                    d.width as u32,
                    d.height as u32,
                )),
                _ => m.default_size.clone(),
            };
            use base64::Engine;
            let uri = format!(
                "data:image/jpeg;base64,{}",
                base64::engine::general_purpose::STANDARD.encode(&jpeg)
            );
            let params = Params {
                model: m.extend_model.clone(),
                size,
                seconds: m.default_seconds.clone(),
                ..Params::default()
            };
            (uri, m.extend_model.clone(), params)
        }
    };
    let (seconds, duration) = match ext.seconds {
        Some(s) => s,
        None => {
            let n = params.seconds.parse::<i64>().unwrap_or(4);
            (n.to_string(), n)
        }
    };
    let ratio = view::ratio_of_size(&params.size).unwrap_or_else(|| "1280:720".into());
    let body = json!({"model": model, "promptImage": frame, "promptText": ext.prompt,
                      "ratio": ratio, "duration": duration});
    submit(
        &state,
        &headers,
        &principal,
        "videos/extensions",
        form.identity(),
        Create {
            endpoint: "image_to_video",
            body,
            params: Params {
                prompt: ext.prompt,
                seconds,
                ..params
            },
            file: None,
        },
    )
    .await
}
