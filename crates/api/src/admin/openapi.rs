//! The admin API's OpenAPI document. Bodies and answers are the types the handlers read and
//! write (`ops`, the store's rows, the engine's channel view), so the document follows them;
//! the error statuses are what [`AdminError`] answers.

use std::collections::BTreeMap;

use reelay_engine::ChannelView;
use reelay_store::{Account, ApiKey, LedgerEntry};
use reelay_upstream::ChannelConfig;
use utoipa::openapi::path::{HttpMethod, ParameterIn};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr, ResponseBuilder, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::ops::{
    AccountChange, AccountCreated, Adjustment, HmacKey, HmacKeySet, KeyCreated, LedgerReport,
    NewAccount, Redelivered, Redelivery, RotatedSecret, Rotation, TaskDetail, Topup, WebhookDetail,
    WebhookSecretView, WebhookUrl, WebhookUrlSet, DEFAULT_LEDGER_LIMIT, MAX_LEDGER_LIMIT,
};
use super::AdminError;
use crate::openapi::{
    int_query, json_body, json_response, linked, op, response, string_param, Doc,
};

#[derive(ToSchema)]
#[allow(dead_code)]
struct ErrorDetail {
    /// `unauthorized`, `invalid_request`, `not_found`, `conflict`, ...
    code: String,
    message: String,
}

/// `{"error": {"code", "message"}}`.
#[derive(ToSchema)]
#[schema(as = AdminError)]
#[allow(dead_code)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
struct SwitchBody {
    /// Why (kept with the channel, shown in its view).
    #[schema(max_length = 500)]
    reason: Option<String>,
}

/// Every status an admin call answers with an error.
fn error_statuses() -> BTreeMap<u16, &'static str> {
    let samples = [
        AdminError::Unauthorized,
        AdminError::InvalidRequest(String::new()),
        AdminError::NotFound(String::new()),
        AdminError::InsufficientBalance(String::new()),
        AdminError::BalanceLimit(String::new()),
        AdminError::WebhookPending(String::new()),
        AdminError::Conflict(String::new()),
        AdminError::MethodNotAllowed,
        AdminError::PayloadTooLarge,
    ];
    let mut statuses: BTreeMap<u16, &'static str> = samples
        .iter()
        .map(|e| e.status_and_code().0)
        .map(|s| (s.as_u16(), s.canonical_reason().unwrap_or("error")))
        .collect();
    // A database that does not answer (a StoreError built only by sqlx).
    statuses.insert(503, "Service Unavailable");
    statuses
}

pub fn document() -> OpenApi {
    let mut doc = Doc::new::<ErrorBody>(
        "reelay: admin API",
        "Accounts, credits, keys, channels, tasks and webhooks, under `/admin/v1`, with the admin token as a bearer token.",
        error_statuses(),
    );
    let id = || string_param("id", ParameterIn::Path, true);
    let name = || string_param("name", ParameterIn::Path, true);
    let empty = |what: &str| ResponseBuilder::new().description(what).build();
    let base = "/admin/v1";
    let path = |p: &str| format!("{base}{p}");

    let account = response::<Account>(&mut doc, "The account.");
    let created = linked(
        response::<AccountCreated>(&mut doc, "Created; its API key is shown only here."),
        "id",
        "/account_id",
        &["getAccount", "listKeys", "ledger", "webhookSecret"],
    );
    let body = doc.schema::<NewAccount>();
    doc.add(
        HttpMethod::Post,
        &path("/accounts"),
        op("Create an account and its first API key", 201, created).request_body(json_body(body)),
    );
    let accounts = list::<Account>(&mut doc, "AccountList", "Every account.");
    doc.add(
        HttpMethod::Get,
        &path("/accounts"),
        op("List accounts", 200, accounts),
    );
    doc.add(
        HttpMethod::Get,
        &path("/accounts/{id}"),
        op("An account", 200, account.clone())
            .operation_id(Some("getAccount"))
            .parameter(id()),
    );
    let body = doc.schema::<AccountChange>();
    doc.add(
        HttpMethod::Patch,
        &path("/accounts/{id}"),
        op(
            "Change an account's price multiplier, task cap or retention",
            200,
            account.clone(),
        )
        .parameter(id())
        .request_body(json_body(body)),
    );
    let body = doc.schema::<Topup>();
    doc.add(
        HttpMethod::Post,
        &path("/accounts/{id}/topup"),
        op("Add credits", 200, account.clone())
            .parameter(id())
            .request_body(json_body(body)),
    );
    let body = doc.schema::<Adjustment>();
    doc.add(
        HttpMethod::Post,
        &path("/accounts/{id}/adjust"),
        op("Correct a balance up or down, with a reason", 200, account)
            .parameter(id())
            .request_body(json_body(body)),
    );
    let entries = list::<LedgerEntry>(&mut doc, "LedgerEntryList", "Ledger entries, newest first.");
    doc.add(
        HttpMethod::Get,
        &path("/accounts/{id}/ledger"),
        op("An account's ledger", 200, entries)
            .operation_id(Some("ledger"))
            .parameter(id())
            .parameter(int_query(
                "limit",
                1,
                MAX_LEDGER_LIMIT,
                Some(DEFAULT_LEDGER_LIMIT),
            )),
    );
    let key = linked(
        response::<KeyCreated>(&mut doc, "Created; the key is shown only here."),
        "key_id",
        "/key_id",
        &["revokeKey"],
    );
    doc.add(
        HttpMethod::Post,
        &path("/accounts/{id}/keys"),
        op("Create another API key", 201, key).parameter(id()),
    );
    let keys = list::<ApiKey>(
        &mut doc,
        "ApiKeyList",
        "The account's keys (prefixes only).",
    );
    doc.add(
        HttpMethod::Get,
        &path("/accounts/{id}/keys"),
        op("List an account's keys", 200, keys)
            .operation_id(Some("listKeys"))
            .parameter(id()),
    );
    doc.add(
        HttpMethod::Delete,
        &path("/keys/{key_id}"),
        op("Revoke a key", 204, empty("Revoked."))
            .operation_id(Some("revokeKey"))
            .parameter(string_param("key_id", ParameterIn::Path, true)),
    );
    let secret = response::<WebhookSecretView>(&mut doc, "The signing secret(s).");
    doc.add(
        HttpMethod::Get,
        &path("/accounts/{id}/webhook-secret"),
        op("The account's webhook signing secret", 200, secret)
            .operation_id(Some("webhookSecret"))
            .parameter(id()),
    );
    let body = doc.schema::<Rotation>();
    let rotated = response::<RotatedSecret>(&mut doc, "The new secret.");
    doc.add(
        HttpMethod::Post,
        &path("/accounts/{id}/webhook-secret/rotate"),
        op("Rotate the webhook secret", 200, rotated)
            .parameter(id())
            .request_body(optional_body(body)),
    );
    let body = doc.schema::<HmacKey>();
    let set = response::<HmacKeySet>(&mut doc, "Set or cleared.");
    doc.add(
        HttpMethod::Put,
        &path("/accounts/{id}/webhook-hmac-key"),
        op("Set the quick-start callbacks' HMAC key", 200, set)
            .parameter(id())
            .request_body(json_body(body)),
    );
    let body = doc.schema::<WebhookUrl>();
    let set = response::<WebhookUrlSet>(&mut doc, "Set or cleared.");
    doc.add(
        HttpMethod::Put,
        &path("/accounts/{id}/webhook-url"),
        op("Set the account's webhook URL (OpenAI dialect)", 200, set)
            .parameter(id())
            .request_body(json_body(body)),
    );

    let view = response::<ChannelView>(&mut doc, "The channel.");
    let views = list::<ChannelView>(&mut doc, "ChannelViewList", "Every channel.");
    doc.add(
        HttpMethod::Get,
        &path("/channels"),
        op("List channels with their health", 200, views),
    );
    // Registered for the schemas it refers to, then replaced by the form with its key.
    doc.schema::<ChannelConfig>();
    let config = doc.register("ChannelConfig", with_api_key(ChannelConfig::schema()));
    doc.add(
        HttpMethod::Post,
        &path("/channels"),
        op(
            "Add a channel (for every instance)",
            201,
            linked(
                view.clone(),
                "name",
                "/name",
                &["getChannel", "disableChannel", "enableChannel"],
            ),
        )
        .request_body(json_body(config)),
    );
    doc.add(
        HttpMethod::Get,
        &path("/channels/{name}"),
        op("A channel", 200, view.clone())
            .operation_id(Some("getChannel"))
            .parameter(name()),
    );
    let patch = partial(
        &mut doc,
        "ChannelPatch",
        with_api_key(ChannelConfig::schema()),
    );
    doc.add(
        HttpMethod::Patch,
        &path("/channels/{name}"),
        op(
            "Change some of a channel's settings (`api_key: null` clears the key)",
            200,
            view.clone(),
        )
        .parameter(name())
        .request_body(json_body(patch)),
    );
    doc.add(
        HttpMethod::Delete,
        &path("/channels/{name}"),
        op(
            "Remove a channel (its tasks finish there)",
            204,
            empty("Removed."),
        )
        .parameter(name()),
    );
    doc.add(
        HttpMethod::Post,
        &path("/channels/{name}/enable"),
        op("Put a channel back in service", 200, view.clone())
            .operation_id(Some("enableChannel"))
            .parameter(name()),
    );
    let body = doc.schema::<SwitchBody>();
    doc.add(
        HttpMethod::Post,
        &path("/channels/{name}/disable"),
        op("Take a channel out of service", 200, view)
            .operation_id(Some("disableChannel"))
            .parameter(name())
            .request_body(optional_body(body)),
    );

    let report = response::<LedgerReport>(&mut doc, "Whether every balance matches its ledger.");
    doc.add(
        HttpMethod::Get,
        &path("/ledger/verify"),
        op("Check every balance against the ledger", 200, report),
    );
    let task = response::<TaskDetail>(&mut doc, "The task and its events.");
    doc.add(
        HttpMethod::Get,
        &path("/tasks/{id}"),
        op("A task of any account, with its events", 200, task).parameter(id()),
    );
    let hooks = list::<WebhookDetail>(
        &mut doc,
        "WebhookDetailList",
        "Its messages, with every attempt.",
    );
    doc.add(
        HttpMethod::Get,
        &path("/tasks/{id}/webhooks"),
        op("A task's webhook messages", 200, hooks).parameter(id()),
    );
    let body = doc.schema::<Redelivery>();
    let redelivered = response::<Redelivered>(&mut doc, "Queued again.");
    doc.add(
        HttpMethod::Post,
        &path("/tasks/{id}/webhooks/redeliver"),
        op("Send a task's webhooks again", 200, redelivered)
            .parameter(id())
            .request_body(optional_body(body)),
    );
    doc.build()
}

/// `{"data": [T, ...]}`, registered as `name` (one per item type: a generic schema would have
/// one name for all of them).
fn list<T: ToSchema>(doc: &mut Doc, name: &str, description: &str) -> utoipa::openapi::Response {
    let item = doc.schema::<T>();
    let schema = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("data", ArrayBuilder::new().items(item))
        .required("data")
        .into();
    json_response(description, doc.register(name, schema))
}

/// The channel schema with its `api_key`, which the type never serializes (so its derived
/// schema lacks it) but reads: write-only, sealed at rest, never shown.
fn with_api_key(schema: RefOr<Schema>) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut obj)) => {
            let key = ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .min_length(Some(1))
                .max_length(Some(4096))
                .write_only(Some(true))
                .description(Some("The upstream key (write-only; `null` clears it)"));
            obj.properties.insert("api_key".into(), key.into());
            RefOr::T(Schema::Object(obj))
        }
        other => other,
    }
}

/// A JSON body that may be left out.
fn optional_body(schema: RefOr<Schema>) -> Option<utoipa::openapi::request_body::RequestBody> {
    json_body(schema).map(|mut b| {
        b.required = Some(utoipa::openapi::Required::False);
        b
    })
}

/// `schema` with no field required, registered as `name`: the body of a PATCH.
fn partial(doc: &mut Doc, name: &str, schema: RefOr<Schema>) -> RefOr<Schema> {
    let schema = match schema {
        RefOr::T(Schema::Object(mut obj)) => {
            obj.required.clear();
            RefOr::T(Schema::Object(obj))
        }
        other => other,
    };
    doc.register(name, schema)
}
