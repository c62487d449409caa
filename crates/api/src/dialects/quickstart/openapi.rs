//! This dialect's OpenAPI document. Business errors answer HTTP 200 with the code in the
//! `{code, msg, data}` envelope (the renderer says so, and the document follows it): a 200 is
//! either the success envelope or the error one.

use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, ParameterIn};
use utoipa::openapi::OpenApi;
use utoipa::ToSchema;

use super::params::GenerateParam;
use super::{Mapping, Quickstart};
use crate::openapi::{
    error_statuses, json_body, linked, op, response, string_param, Doc, ERROR_KINDS,
};

/// A refusal: `code` says what (401, 402, 404, 422, 429, 451, 455; 500 with HTTP 500).
#[derive(ToSchema)]
#[schema(as = QuickstartError)]
#[allow(dead_code)]
struct ErrorBody {
    #[schema(minimum = 400, maximum = 599)]
    code: i64,
    msg: String,
    data: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct TaskIdData {
    #[schema(format = "uuid")]
    task_id: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct Created {
    #[schema(minimum = 200, maximum = 200)]
    code: i64,
    msg: String,
    data: TaskIdData,
}

/// `POST /api/v1/runway/generate`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest {
    /// At most the mapping's `max_prompt_chars` characters.
    #[schema(min_length = 1)]
    prompt: String,
    /// Seconds: 5 or 10 (a number or a string).
    duration: Option<Value>,
    /// `720p` or `1080p`.
    quality: Option<String>,
    /// `runway-duration-5-generate` style names; must agree with `duration`.
    model: Option<String>,
    /// `16:9`, `4:3`, `1:1`, `3:4` or `9:16`.
    aspect_ratio: Option<String>,
    /// An image to start from: HTTPS URL.
    image_url: Option<String>,
    /// Text drawn on the video.
    water_mark: Option<String>,
    call_back_url: Option<String>,
    expand_prompt: Option<bool>,
}

/// `POST /api/v1/runway/extend`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct ExtendRequest {
    /// The task to extend (a succeeded one of this account).
    task_id: String,
    #[schema(min_length = 1)]
    prompt: String,
    quality: Option<String>,
    image_url: Option<String>,
    water_mark: Option<String>,
    call_back_url: Option<String>,
    expand_prompt: Option<bool>,
}

/// `POST /api/v1/aleph/generate`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
struct AlephRequest {
    #[schema(min_length = 1)]
    prompt: String,
    /// The source video: HTTPS URL.
    video_url: String,
    call_back_url: Option<String>,
    water_mark: Option<String>,
    upload_cn: Option<bool>,
    aspect_ratio: Option<String>,
    #[schema(minimum = 0, maximum = 4294967295_i64)]
    seed: Option<i64>,
    reference_image: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct VideoInfo {
    video_id: String,
    #[schema(format = "uuid")]
    task_id: String,
    video_url: String,
    image_url: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum State {
    Wait,
    Queueing,
    Generating,
    Success,
    Fail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct RecordDetail {
    #[schema(format = "uuid")]
    task_id: String,
    /// The task extended, or empty.
    parent_task_id: String,
    generate_param: GenerateParam,
    state: State,
    /// `YYYY-MM-DD HH:MM:SS` in the configured zone.
    generate_time: String,
    video_info: Option<VideoInfo>,
    fail_code: Option<i64>,
    fail_msg: String,
    /// 1 once the media passed their retention.
    #[schema(minimum = 0, maximum = 1)]
    expire_flag: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct RecordDetailEnvelope {
    #[schema(minimum = 200, maximum = 200)]
    code: i64,
    msg: String,
    data: RecordDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct AlephResult {
    #[schema(format = "uuid")]
    task_id: String,
    result_video_url: String,
    result_image_url: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct AlephInfo {
    #[schema(format = "uuid")]
    task_id: String,
    /// The request as sent, as a JSON string.
    param_json: String,
    response: Option<AlephResult>,
    complete_time: Option<String>,
    create_time: String,
    #[schema(minimum = 0, maximum = 1)]
    success_flag: i64,
    error_code: i64,
    error_message: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct AlephInfoEnvelope {
    #[schema(minimum = 200, maximum = 200)]
    code: i64,
    msg: String,
    data: AlephInfo,
}

pub fn document(mapping: &Mapping) -> OpenApi {
    let mut doc = Doc::new::<ErrorBody>(
        "reelay: the quick-start format",
        "kie.ai's quick-start format: `/api/v1/runway/*` and `/api/v1/aleph/*`. Refusals answer HTTP 200 with the reason's code in the body.",
        error_statuses::<Quickstart>(ERROR_KINDS),
    );
    let created = response::<Created>(&mut doc, "Accepted.");
    let detail = response::<RecordDetailEnvelope>(&mut doc, "The task.");
    let info = response::<AlephInfoEnvelope>(&mut doc, "The task.");
    let task_id = || string_param("taskId", ParameterIn::Query, true);
    let key = || string_param("Idempotency-Key", ParameterIn::Header, false);
    for (path, body, summary, read) in [
        (
            "/api/v1/runway/generate",
            doc.schema::<GenerateRequest>(),
            "Text or image to video",
            "recordDetail",
        ),
        (
            "/api/v1/runway/extend",
            doc.schema::<ExtendRequest>(),
            "Extend a video",
            "recordDetail",
        ),
        (
            "/api/v1/aleph/generate",
            doc.schema::<AlephRequest>(),
            "Aleph: video to video",
            "alephRecordInfo",
        ),
    ] {
        doc.add(
            HttpMethod::Post,
            path,
            op(
                summary,
                200,
                linked(created.clone(), "taskId", "/data/taskId", &[read]),
            )
            .parameter(key())
            .request_body(json_body(body)),
        );
    }
    let durations = mapping
        .durations
        .iter()
        .flat_map(|d| [Value::from(*d), Value::from(d.to_string())]);
    doc.restrict("GenerateRequest", "duration", durations);
    doc.restrict("GenerateRequest", "quality", mapping.qualities.clone());
    doc.restrict("ExtendRequest", "quality", mapping.qualities.clone());
    doc.restrict(
        "GenerateRequest",
        "aspectRatio",
        mapping.aspect_ratios.clone(),
    );
    doc.restrict(
        "AlephRequest",
        "aspectRatio",
        mapping.aleph.aspect_ratios.clone(),
    );
    doc.add(
        HttpMethod::Get,
        "/api/v1/runway/record-detail",
        op("A task", 200, detail)
            .operation_id(Some("recordDetail"))
            .parameter(task_id()),
    );
    doc.add(
        HttpMethod::Get,
        "/api/v1/aleph/record-info",
        op("An Aleph task", 200, info)
            .operation_id(Some("alephRecordInfo"))
            .parameter(task_id()),
    );
    doc.build()
}
