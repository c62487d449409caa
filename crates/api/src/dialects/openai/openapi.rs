//! This dialect's OpenAPI document: OpenAI's `/v1/videos` as reelay serves it. Bodies come as
//! JSON or as multipart form data (which carries the files: `input_reference`, `video`).

use utoipa::openapi::path::{HttpMethod, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, RefOr, Required, ResponseBuilder, Schema};
use utoipa::ToSchema;

use super::OpenAi;
use crate::openapi::{
    enum_query, error_statuses, int_query, linked, op, response, string_param, Doc, ERROR_KINDS,
};

#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    message: String,
    #[serde(rename = "type")]
    kind: String,
    param: Option<String>,
    code: Option<String>,
}

/// `{"error": {"message", "type", "param", "code"}}`.
#[derive(ToSchema)]
#[schema(as = OpenAiError)]
#[allow(dead_code)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum Status {
    Queued,
    InProgress,
    Completed,
    Failed,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct VideoError {
    code: String,
    message: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum VideoObject {
    Video,
}

/// The Video object; every field is present (null when unknown).
#[derive(ToSchema)]
#[allow(dead_code)]
struct Video {
    #[schema(pattern = "^video_[0-9a-f]{32}$")]
    id: String,
    object: VideoObject,
    /// Unix seconds.
    created_at: i64,
    status: Status,
    /// The model as the client named it.
    model: String,
    #[schema(minimum = 0, maximum = 100)]
    progress: i64,
    seconds: String,
    /// `WIDTHxHEIGHT`.
    size: String,
    completed_at: Option<i64>,
    expires_at: Option<i64>,
    error: Option<VideoError>,
    prompt: String,
    remixed_from_video_id: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum ListObject {
    List,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct VideoList {
    object: ListObject,
    data: Vec<Video>,
    first_id: Option<String>,
    last_id: Option<String>,
    has_more: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum DeletedObject {
    #[serde(rename = "video.deleted")]
    VideoDeleted,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct Deleted {
    id: String,
    object: DeletedObject,
    deleted: bool,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct ImageUrl {
    /// An HTTPS URL or a data URI of the first frame.
    image_url: String,
}

/// `POST /v1/videos` as JSON. As a form, `input_reference` may also be an image file.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    #[schema(min_length = 1)]
    prompt: String,
    /// `sora-2`, `sora-2-pro` (mapped onto catalog models) or a catalog model.
    model: Option<String>,
    /// Whole seconds, as a string.
    seconds: Option<String>,
    /// `WIDTHxHEIGHT`, e.g. `1280x720`.
    #[schema(pattern = "^[0-9]{1,5}x[0-9]{1,5}$")]
    size: Option<String>,
    input_reference: Option<ImageUrl>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct RemixRequest {
    #[schema(min_length = 1)]
    prompt: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct VideoRef {
    /// A completed video of this account.
    id: String,
}

/// `POST /v1/videos/extensions` as JSON. As a form, `video` may also be a clip file.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct ExtensionRequest {
    #[schema(min_length = 1)]
    prompt: String,
    seconds: Option<String>,
    video: VideoRef,
}

/// A body as JSON (`json`) or as a form whose file fields are binary.
fn json_or_form(
    json: RefOr<Schema>,
    form_fields: &[(&str, bool)],
) -> Option<utoipa::openapi::request_body::RequestBody> {
    let mut form = ObjectBuilder::new().schema_type(Type::Object);
    for (name, file) in form_fields {
        form = if *file {
            form.property(
                *name,
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/octet-stream"),
            )
        } else {
            form.property(*name, ObjectBuilder::new().schema_type(Type::String))
        };
    }
    Some(
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(json)).build(),
            )
            .content(
                "multipart/form-data",
                ContentBuilder::new()
                    .schema(Some(form.required("prompt")))
                    .build(),
            )
            .build(),
    )
}

pub fn document() -> OpenApi {
    let mut doc = Doc::new::<ErrorBody>(
        "reelay: OpenAI's videos API",
        "OpenAI's `/v1/videos` as reelay serves it (the openai SDKs work with the base URL changed).",
        error_statuses::<OpenAi>(ERROR_KINDS),
    );
    let video = response::<Video>(&mut doc, "The video.");
    let created = linked(
        video.clone(),
        "id",
        "/id",
        &["retrieveVideo", "deleteVideo", "videoContent", "remixVideo"],
    );
    let id = || string_param("id", ParameterIn::Path, true);
    let callback = || string_param("X-Reelay-Callback-Url", ParameterIn::Header, false);
    let key = || string_param("Idempotency-Key", ParameterIn::Header, false);
    let create = doc.schema::<CreateRequest>();
    doc.add(
        HttpMethod::Post,
        "/v1/videos",
        op("Create a video", 200, created.clone())
            .parameter(key())
            .parameter(callback())
            .request_body(json_or_form(
                create,
                &[
                    ("prompt", false),
                    ("model", false),
                    ("seconds", false),
                    ("size", false),
                    ("input_reference", true),
                ],
            )),
    );
    let list = response::<VideoList>(&mut doc, "A page of videos.");
    doc.add(
        HttpMethod::Get,
        "/v1/videos",
        op("List videos", 200, list)
            .parameter(string_param("after", ParameterIn::Query, false))
            .parameter(int_query("limit", 1, 100, Some(20)))
            .parameter(enum_query("order", &["asc", "desc"])),
    );
    doc.add(
        HttpMethod::Get,
        "/v1/videos/{id}",
        op("Retrieve a video", 200, video)
            .operation_id(Some("retrieveVideo"))
            .parameter(id()),
    );
    let deleted = response::<Deleted>(&mut doc, "Deleted, with its stored media.");
    doc.add(
        HttpMethod::Delete,
        "/v1/videos/{id}",
        op("Delete a finished video", 200, deleted)
            .operation_id(Some("deleteVideo"))
            .parameter(id()),
    );
    let binary = |types: &[&str]| {
        let mut b = ResponseBuilder::new().description("The file, from reelay's archive.");
        for t in types {
            b = b.content(
                *t,
                ContentBuilder::new()
                    .schema(Some(
                        ObjectBuilder::new()
                            .schema_type(Type::String)
                            .content_media_type(*t),
                    ))
                    .build(),
            );
        }
        b.build()
    };
    let files = ["video/*", "image/*", "audio/*", "application/octet-stream"];
    doc.add(
        HttpMethod::Get,
        "/v1/videos/{id}/content",
        op(
            "Download the video, its thumbnail or its spritesheet",
            200,
            binary(&files),
        )
        .response("206", binary(&files))
        .operation_id(Some("videoContent"))
        .parameter(id())
        .parameter(enum_query(
            "variant",
            &["video", "thumbnail", "spritesheet"],
        )),
    );
    let remix = doc.schema::<RemixRequest>();
    doc.add(
        HttpMethod::Post,
        "/v1/videos/{id}/remix",
        op(
            "Remix a completed video with a new prompt",
            200,
            created.clone(),
        )
        .operation_id(Some("remixVideo"))
        .parameter(id())
        .parameter(key())
        .parameter(callback())
        .request_body(json_or_form(remix, &[("prompt", false)])),
    );
    let extension = doc.schema::<ExtensionRequest>();
    doc.add(
        HttpMethod::Post,
        "/v1/videos/extensions",
        op(
            "Extend a completed video (or an uploaded clip)",
            200,
            created,
        )
        .parameter(key())
        .parameter(callback())
        .request_body(json_or_form(
            extension,
            &[("prompt", false), ("seconds", false), ("video", true)],
        )),
    );
    doc.build()
}
