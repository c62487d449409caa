//! This dialect's OpenAPI document: the same routes under each of [`PREFIXES`], the
//! `{code, msg, message, data, exec_time}` envelope, and the feed's `data`.

use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, ParameterIn};
use utoipa::openapi::OpenApi;
use utoipa::ToSchema;

use super::{Mapping, Reverse, PREFIXES};
use crate::openapi::{
    error_statuses, json_body, linked, op, response, string_param, Doc, ERROR_KINDS,
};

/// The envelope of a refusal: `code` is the HTTP status, `msg` the reason.
#[derive(ToSchema)]
#[schema(as = ReverseError)]
#[allow(dead_code)]
struct ErrorBody {
    code: i64,
    msg: String,
    message: String,
    data: Option<Value>,
    exec_time: f64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum State {
    Pending,
    Throttled,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// A task as the feed (and the callback) reports it. Numbers travel as strings, as the
/// resellers send them.
#[derive(ToSchema)]
#[allow(dead_code)]
struct TaskData {
    #[schema(format = "uuid")]
    task_id: String,
    state: State,
    /// `"0"` waiting, `"1"` running, `"2"` failed or cancelled, `"3"` succeeded.
    #[schema(pattern = "^[0-3]$")]
    status: String,
    prompt: String,
    prompt_en: String,
    /// On success: a signed link to the archived video.
    video_url: Option<String>,
    poster: Option<String>,
    last_frame: Option<String>,
    /// Why it failed, or that it was cancelled.
    msg: Option<String>,
    /// Credits held for the task.
    #[schema(pattern = "^[0-9]+$")]
    point: String,
    /// `"1"` once the credits went back to the account.
    #[schema(pattern = "^[01]$")]
    refund: String,
    /// Unix seconds.
    #[schema(pattern = "^[0-9]+$")]
    create_time: String,
    #[schema(pattern = "^[0-9]+$")]
    update_time: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct TaskEnvelope {
    #[schema(minimum = 200, maximum = 200)]
    code: i64,
    msg: String,
    message: String,
    data: TaskData,
    exec_time: f64,
}

/// Camera control; checked, then left out (the current models have none).
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct MotionVector {
    x: Option<f64>,
    y: Option<f64>,
    z: Option<f64>,
    r: Option<f64>,
    bg_x_pan: Option<f64>,
    bg_y_pan: Option<f64>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct GenerateOptions {
    /// One of the mapping's durations.
    seconds: Option<i64>,
    motion_vector: Option<MotionVector>,
    /// Use `image` as the last frame instead of the first.
    image_as_end_frame: Option<bool>,
    /// Portrait instead of landscape.
    flip: Option<bool>,
    #[schema(minimum = 0, maximum = 4294967295_i64)]
    seed: Option<i64>,
}

/// `POST .../pro/generate`: text to video, or image to video with `image`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct GenerateRequest {
    /// Required without `image`.
    prompt: Option<String>,
    /// A ratio word of the mapping (`16:9`, ...) or a pixel ratio (`1280:720`).
    ratio: Option<String>,
    style: Option<String>,
    /// A model name of the mapping (default: the mapping's).
    model: Option<String>,
    /// The first frame (or last, with `options.image_as_end_frame`): HTTPS URL or data URI.
    image: Option<String>,
    last_image: Option<String>,
    options: Option<GenerateOptions>,
    #[schema(minimum = 0, maximum = 4294967295_i64)]
    seed: Option<i64>,
    /// Where the `point`/`refund` callbacks go (required when so configured).
    callback_url: Option<String>,
    /// The API key, when no Authorization header is sent.
    key: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct Video2VideoOptions {
    #[schema(minimum = 0.0, maximum = 1.0)]
    structure_transformation: Option<f64>,
    flip: Option<bool>,
    seconds: Option<i64>,
    #[schema(minimum = 0, maximum = 4294967295_i64)]
    seed: Option<i64>,
}

/// `POST .../pro/video2video`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct Video2VideoRequest {
    video: String,
    prompt: String,
    model: Option<String>,
    options: Option<Video2VideoOptions>,
    #[schema(minimum = 0, maximum = 4294967295_i64)]
    seed: Option<i64>,
    callback_url: Option<String>,
    key: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct ActOneOptions {
    #[schema(minimum = 0.0, maximum = 10.0)]
    motion_multiplier: Option<f64>,
    flip: Option<bool>,
    #[schema(minimum = 1, maximum = 5)]
    expression_intensity: Option<i64>,
    body_control: Option<bool>,
    #[schema(minimum = 0, maximum = 4294967295_i64)]
    seed: Option<i64>,
}

/// `POST .../pro/act_one`: the performance in `video`, the character in `image` or
/// `character_video` (one of them).
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct ActOneRequest {
    video: String,
    image: Option<String>,
    character_video: Option<String>,
    model: Option<String>,
    options: Option<ActOneOptions>,
    #[schema(minimum = 0, maximum = 4294967295_i64)]
    seed: Option<i64>,
    callback_url: Option<String>,
    key: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct FeedRequest {
    task_id: String,
    key: Option<String>,
}

pub fn document(mapping: &Mapping) -> OpenApi {
    let mut doc = Doc::new::<ErrorBody>(
        "reelay: the reseller (reverse) format",
        "The `/runway/pro/*` and `/runway/feed` format of CometAPI-style resellers, served under each of the prefixes `/runway`, `/api/video/runway` and `/runway/v1`. The key goes in `Authorization` (with or without `Bearer`), or as `key` in the body.",
        error_statuses::<Reverse>(ERROR_KINDS),
    );
    let task = response::<TaskEnvelope>(&mut doc, "The task.");
    let bodies = [
        (
            "generate",
            doc.schema::<GenerateRequest>(),
            "Text or image to video",
        ),
        (
            "video2video",
            doc.schema::<Video2VideoRequest>(),
            "Video to video",
        ),
        (
            "act_one",
            doc.schema::<ActOneRequest>(),
            "Character performance (Act-One)",
        ),
    ];
    let feed_body = doc.schema::<FeedRequest>();
    let models = |routes: &[&super::request::Route]| {
        let mut names: Vec<String> = routes
            .iter()
            .flat_map(|r| r.models.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    };
    doc.restrict(
        "GenerateRequest",
        "model",
        models(&[&mapping.text, &mapping.image]),
    );
    doc.restrict(
        "Video2VideoRequest",
        "model",
        models(&[&mapping.video2video]),
    );
    doc.restrict("ActOneRequest", "model", models(&[&mapping.act_one]));
    for options in ["GenerateOptions", "Video2VideoOptions"] {
        doc.restrict(options, "seconds", mapping.seconds.clone());
    }
    for prefix in PREFIXES {
        let feed_get = format!("feed{}", prefix.replace('/', "_"));
        for (route, body, summary) in &bodies {
            doc.add(
                HttpMethod::Post,
                &format!("{prefix}/pro/{route}"),
                op(
                    summary,
                    200,
                    linked(task.clone(), "task_id", "/data/task_id", &[&feed_get]),
                )
                .parameter(string_param("Idempotency-Key", ParameterIn::Header, false))
                .request_body(json_body(body.clone())),
            );
        }
        doc.add(
            HttpMethod::Get,
            &format!("{prefix}/feed"),
            op("A task", 200, task.clone())
                .operation_id(Some(feed_get))
                .parameter(string_param("task_id", ParameterIn::Query, true))
                .parameter(string_param("key", ParameterIn::Query, false)),
        );
        doc.add(
            HttpMethod::Post,
            &format!("{prefix}/feed"),
            op("A task", 200, task.clone()).request_body(json_body(feed_body.clone())),
        );
    }
    doc.build()
}
