//! This dialect's OpenAPI document. The generation bodies come from the catalog: one object
//! per model, its fields as the catalog specs them (what `validate.rs` enforces), so a model
//! added to the catalog is documented without a code change.

use reelay_core::catalog::FieldSpec;
use reelay_core::{Catalog, GENERATION_ENDPOINTS};
use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{OpenApi, RefOr, ResponseBuilder};
use utoipa::ToSchema;

use super::Runway;
use crate::openapi::{
    error_statuses, json_body, linked, op, param, response, string_param, Doc, ERROR_KINDS,
};

/// `{"error": ..., "docUrl": ...}`, with `issues` for a body that failed validation.
#[derive(ToSchema)]
#[schema(as = RunwayError)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    error: String,
    doc_url: Option<String>,
    /// The catalog's findings, field by field (zod-style issues).
    issues: Option<Vec<Value>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct Credits {
    credits: i64,
}

/// `POST /v1/<endpoint>`: the new task.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct Created {
    #[schema(format = "uuid")]
    id: String,
    estimated_cost: Option<Credits>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Status {
    Pending,
    Throttled,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// A task as `GET /v1/tasks/{id}` shows it; which fields appear depends on `status`.
#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct Task {
    #[schema(format = "uuid")]
    id: String,
    status: Status,
    #[schema(format = DateTime)]
    created_at: String,
    /// While running, 0 to 1.
    progress: Option<f64>,
    /// Until the task ends: the credits held for it.
    estimated_cost: Option<Credits>,
    /// Once it ended: what it cost.
    cost: Option<Credits>,
    /// On success: signed links to the archived outputs.
    output: Option<Vec<String>>,
    failure: Option<String>,
    failure_code: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct Tier {
    max_monthly_credit_spend: i64,
    /// Per model: `maxConcurrentGenerations`, `maxDailyGenerations` (null: no limit).
    models: std::collections::BTreeMap<String, Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct Usage {
    /// Per model: `dailyGenerations` in the last 24 hours.
    models: std::collections::BTreeMap<String, Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct Organization {
    credit_balance: i64,
    tier: Tier,
    usage: Usage,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
enum UploadType {
    Ephemeral,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadRequest {
    /// 1 to 255 letters, digits, spaces, dots, dashes or underscores.
    #[schema(min_length = 1, max_length = 255, pattern = "^[A-Za-z0-9 ._-]+$")]
    filename: String,
    #[serde(rename = "type")]
    kind: UploadType,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct UploadSlot {
    /// POST the file here as multipart form data, with `fields` first.
    upload_url: String,
    fields: std::collections::BTreeMap<String, String>,
    /// What to use as a media reference in a generation request.
    runway_uri: String,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct UsageRequest {
    /// `YYYY-MM-DD`; default 30 days ago.
    #[schema(format = Date)]
    start_date: Option<String>,
    /// `YYYY-MM-DD`, exclusive; at most 90 days after `startDate`.
    #[schema(format = Date)]
    before_date: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct UsedCredits {
    model: String,
    amount: i64,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
struct UsageDay {
    #[schema(format = Date)]
    date: String,
    used_credits: Vec<UsedCredits>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
struct UsageReport {
    models: Vec<String>,
    results: Vec<UsageDay>,
}

pub fn document(catalog: &Catalog, insufficient_credits_status: u16) -> OpenApi {
    let mut errors = error_statuses::<Runway>(ERROR_KINDS);
    // The configured status of "not enough credits" replaces the renderer's 402.
    if errors.remove(&402).is_some() {
        let reason = axum::http::StatusCode::from_u16(insufficient_credits_status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Payment Required");
        errors.insert(insufficient_credits_status, reason);
    }
    let mut doc = Doc::new::<ErrorBody>(
        "reelay: Runway's API",
        "Runway's official developer API as reelay serves it (the runwayml SDKs work with the base URL changed). Every request needs `X-Runway-Version: 2024-11-06`.",
        errors,
    );
    let version = || {
        param(
            "X-Runway-Version",
            ParameterIn::Header,
            true,
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([super::handlers::VERSION]))
                .into(),
        )
    };
    let created = linked(
        response::<Created>(
            &mut doc,
            "The task was accepted; poll it, or wait for its callback.",
        ),
        "id",
        "/id",
        &["getTask", "deleteTask"],
    );
    for endpoint in GENERATION_ENDPOINTS {
        let Some(spec) = catalog.endpoint(endpoint) else {
            continue;
        };
        let mut body = OneOfBuilder::new();
        for (model, m) in &spec.models {
            let mut obj = ObjectBuilder::new()
                .property("model", constant(model))
                .required("model")
                .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
            for (name, field) in &m.fields {
                obj = obj.property(name, field_schema(field));
            }
            for name in &m.required {
                obj = obj.required(name);
            }
            body = body.item(obj);
        }
        doc.add(
            HttpMethod::Post,
            &format!("/v1/{endpoint}"),
            op(&format!("Start a {endpoint} task"), 200, created.clone())
                .parameter(version())
                .parameter(string_param("Idempotency-Key", ParameterIn::Header, false))
                .parameter(string_param(
                    "X-Reelay-Callback-Url",
                    ParameterIn::Header,
                    false,
                ))
                .request_body(json_body(body.into())),
        );
    }
    let task = response::<Task>(&mut doc, "The task.");
    let id = || string_param("id", ParameterIn::Path, true);
    doc.add(
        HttpMethod::Get,
        "/v1/tasks/{id}",
        op("Get a task", 200, task)
            .operation_id(Some("getTask"))
            .parameter(id())
            .parameter(version()),
    );
    doc.add(
        HttpMethod::Delete,
        "/v1/tasks/{id}",
        op(
            "Cancel a running task, or delete a finished one",
            204,
            ResponseBuilder::new()
                .description("Cancelled or deleted.")
                .build(),
        )
        .operation_id(Some("deleteTask"))
        .parameter(id())
        .parameter(version()),
    );
    let org = response::<Organization>(&mut doc, "Credits and limits of the key's account.");
    doc.add(
        HttpMethod::Get,
        "/v1/organization",
        op("The account's balance and limits", 200, org).parameter(version()),
    );
    let body = doc.schema::<UploadRequest>();
    let slot = response::<UploadSlot>(&mut doc, "Where to upload the file.");
    doc.add(
        HttpMethod::Post,
        "/v1/uploads",
        op("Reserve an ephemeral upload", 200, slot)
            .parameter(version())
            .request_body(json_body(body)),
    );
    let body = doc.schema::<UsageRequest>();
    let report = response::<UsageReport>(&mut doc, "Credits used per day and model.");
    doc.add(
        HttpMethod::Post,
        "/v1/organization/usage",
        op("Credit usage per day and model", 200, report)
            .parameter(version())
            .request_body(json_body(body)),
    );
    doc.build()
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn constant(value: &str) -> RefOr<Schema> {
    string().enum_values(Some([value])).into()
}

fn media(kind: &str) -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .pattern(Some("^(https://|runway://|data:)"))
        .description(Some(format!(
            "The {kind}: an HTTPS URL, a runway:// upload URI or a data URI"
        )))
}

fn object_of(
    fields: &std::collections::BTreeMap<String, FieldSpec>,
    required: &[String],
) -> ObjectBuilder {
    let mut obj = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    for (name, f) in fields {
        obj = obj.property(name, field_schema(f));
    }
    for name in required {
        obj = obj.required(name);
    }
    obj
}

/// The JSON Schema of one catalog field.
fn field_schema(spec: &FieldSpec) -> RefOr<Schema> {
    match spec {
        FieldSpec::Text { max_utf16 } => string()
            .min_length(Some(1))
            .max_length(*max_utf16)
            .description(Some("Lengths count UTF-16 code units"))
            .into(),
        FieldSpec::Enum {
            values,
            pixel_range,
            ..
        } => match pixel_range {
            Some([min, max]) => string()
                .pattern(Some("^[0-9]{1,5}:[0-9]{1,5}$"))
                .description(Some(format!(
                    "One of {values:?}, or any WIDTH:HEIGHT of {min} to {max} pixels"
                )))
                .into(),
            None => string().enum_values(Some(values.clone())).into(),
        },
        FieldSpec::Int {
            min,
            max,
            values,
            auto,
            ..
        } => {
            let int = ObjectBuilder::new().schema_type(Type::Integer);
            let int = if values.is_empty() {
                int.minimum(*min).maximum(*max)
            } else {
                int.enum_values(Some(values.clone()))
            };
            if *auto {
                OneOfBuilder::new().item(int).item(constant("auto")).into()
            } else {
                int.into()
            }
        }
        FieldSpec::Number { min, max } => ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(*min)
            .maximum(*max)
            .into(),
        FieldSpec::Bool => ObjectBuilder::new().schema_type(Type::Boolean).into(),
        FieldSpec::Media { kind } => media(kind.as_str()).into(),
        FieldSpec::PromptImage {
            positions,
            references,
            max_items,
        } => {
            let mut item = ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("uri", media("image"))
                .required("uri");
            if !*references {
                item = item
                    .property("position", string().enum_values(Some(positions.clone())))
                    .required("position");
            }
            OneOfBuilder::new()
                .item(media("image"))
                .item(
                    ArrayBuilder::new()
                        .items(item)
                        .min_items(Some(1))
                        .max_items(*max_items),
                )
                .into()
        }
        FieldSpec::TypedMedia { types } => ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "type",
                string().enum_values(Some(types.iter().map(|t| t.as_str()))),
            )
            .property("uri", media("media"))
            .required("type")
            .required("uri")
            .into(),
        FieldSpec::MediaList {
            kind,
            min_items,
            max_items,
            typed,
            allow_string,
            item_fields,
        } => {
            let mut item = object_of(item_fields, &[])
                .property("uri", media(kind.as_str()))
                .required("uri");
            if *typed {
                item = item
                    .property("type", constant(kind.as_str()))
                    .required("type");
            }
            let list = ArrayBuilder::new()
                .items(item)
                .min_items(*min_items)
                .max_items(*max_items);
            if *allow_string {
                OneOfBuilder::new()
                    .item(media(kind.as_str()))
                    .item(list)
                    .into()
            } else {
                list.into()
            }
        }
        FieldSpec::StringList {
            max_items,
            item_max_utf16,
        } => ArrayBuilder::new()
            .items(string().max_length(*item_max_utf16))
            .max_items(*max_items)
            .into(),
        FieldSpec::Object { fields, required } => match fields {
            Some(fields) => object_of(fields, required).into(),
            None => ObjectBuilder::new().schema_type(Type::Object).into(),
        },
        FieldSpec::ObjectList {
            fields,
            required,
            max_items,
        } => ArrayBuilder::new()
            .items(object_of(fields, required))
            .max_items(*max_items)
            .into(),
        FieldSpec::Any => ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .into(),
    }
}
