//! OpenAPI 3.1 documents, one per dialect plus admin, served at `/openapi/{name}.json`.
//!
//! Each is built from the code that serves it, once, at start: the paths from the same tables
//! the routers are built from (the catalog's generation endpoints, the reverse prefixes), the
//! generation request bodies from the catalog's field specs (what `validate.rs` enforces), the
//! shapes from `ToSchema` types, and each operation's error statuses from the dialect's own
//! renderer, asked for every kind of [`ErrorKind`]. CI runs schemathesis against each document
//! on the live server (tests/python/test_openapi.py).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, Parameter, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::OneOfBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathItem, Paths,
    RefOr, Required, ResponseBuilder, Schema,
};
use utoipa::{PartialSchema, ToSchema};

use crate::error::{ApiError, ErrorKind, Render};
use crate::AppState;

/// Every kind of error, for asking a renderer which statuses it answers.
pub(crate) const ERROR_KINDS: &[ErrorKind] = &[
    ErrorKind::Malformed,
    ErrorKind::Invalid,
    ErrorKind::Validation,
    ErrorKind::MissingCallback,
    ErrorKind::MissingKey,
    ErrorKind::InvalidKey,
    ErrorKind::TaskNotFound,
    ErrorKind::RouteNotFound,
    ErrorKind::MethodNotAllowed,
    ErrorKind::PayloadTooLarge,
    ErrorKind::InsufficientCredits {
        available: 0,
        price: 1,
    },
    ErrorKind::IdempotencyMismatch,
    ErrorKind::RateLimited,
    ErrorKind::TooManyActive { limit: 1 },
    ErrorKind::Unfetchable,
    ErrorKind::Unavailable,
    ErrorKind::Internal,
];

/// The statuses `R` answers for `kinds`, each with its reason phrase.
pub(crate) fn error_statuses<R: Render>(kinds: &[ErrorKind]) -> BTreeMap<u16, &'static str> {
    kinds
        .iter()
        .map(|k| R::render(ApiError::new(k.clone(), "")).status())
        .map(|s| (s.as_u16(), s.canonical_reason().unwrap_or("error")))
        .collect()
}

/// One document under construction: its paths, and the schemas its operations refer to.
pub(crate) struct Doc {
    info: (String, String),
    paths: BTreeMap<String, PathItem>,
    schemas: BTreeMap<String, RefOr<Schema>>,
    /// The error responses every operation of this document carries (status → description).
    errors: BTreeMap<u16, &'static str>,
    error_schema: RefOr<Schema>,
    bearer: bool,
}

impl Doc {
    /// A document whose operations answer errors in `E`'s shape, with the statuses `errors`.
    pub fn new<E: ToSchema>(
        title: &str,
        description: &str,
        errors: BTreeMap<u16, &'static str>,
    ) -> Doc {
        let mut doc = Doc {
            info: (title.into(), description.into()),
            paths: BTreeMap::new(),
            schemas: BTreeMap::new(),
            errors,
            error_schema: RefOr::Ref(Default::default()),
            bearer: true,
        };
        doc.error_schema = doc.schema::<E>();
        doc
    }

    /// A reference to `T`'s schema, registering it (and the schemas it refers to).
    pub fn schema<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        self.schemas.extend(nested);
        self.schemas.insert(T::name().into_owned(), T::schema());
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }

    /// A reference to `schema`, registered as `name` (for schemas built here, not derived).
    pub fn register(&mut self, name: &str, schema: RefOr<Schema>) -> RefOr<Schema> {
        self.schemas.insert(name.to_string(), schema);
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(name))
    }

    /// Adds `op` at `method path`, with this document's error responses and security. Where
    /// an error shares the success status (the quick-start dialect's refusals are HTTP 200),
    /// that response's body is either.
    pub fn add(&mut self, method: HttpMethod, path: &str, op: OperationBuilder) {
        let mut op = op;
        if self.bearer {
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        let mut op: Operation = op.build();
        for (status, reason) in &self.errors {
            let error = json_response(reason, self.error_schema.clone());
            match op.responses.responses.get_mut(&status.to_string()) {
                Some(RefOr::T(shared)) => {
                    for content in shared.content.values_mut() {
                        let either = OneOfBuilder::new()
                            .item(content.schema.take().unwrap_or_default())
                            .item(self.error_schema.clone());
                        content.schema = Some(either.into());
                    }
                }
                _ => {
                    op.responses
                        .responses
                        .insert(status.to_string(), RefOr::T(error));
                }
            }
        }
        let item = self.paths.entry(path.to_string()).or_default();
        match method {
            HttpMethod::Get => item.get = Some(op),
            HttpMethod::Post => item.post = Some(op),
            HttpMethod::Delete => item.delete = Some(op),
            HttpMethod::Patch => item.patch = Some(op),
            HttpMethod::Put => item.put = Some(op),
            HttpMethod::Head => item.head = Some(op),
            HttpMethod::Options => item.options = Some(op),
            HttpMethod::Trace => item.trace = Some(op),
        }
    }

    /// Narrows `property` of the registered schema `schema` to `values`: for settings the
    /// types cannot know (a mapping file's models, ratios and durations), so the document says
    /// what this server accepts.
    pub fn restrict<V: Into<serde_json::Value>>(
        &mut self,
        schema: &str,
        property: &str,
        values: impl IntoIterator<Item = V>,
    ) {
        let values: Vec<serde_json::Value> = values.into_iter().map(Into::into).collect();
        let prop = match self.schemas.get_mut(schema) {
            Some(RefOr::T(Schema::Object(obj))) => obj.properties.get_mut(property),
            _ => None,
        };
        match prop {
            Some(RefOr::T(Schema::Object(prop))) => prop.enum_values = Some(values),
            // The documents' tests build every document: a name gone wrong fails them.
            _ => debug_assert!(false, "no plain property {schema}.{property}"),
        }
    }

    pub fn build(self) -> OpenApi {
        let mut paths = Paths::new();
        paths.paths = self.paths.into_iter().collect();
        let mut components = ComponentsBuilder::new();
        for (name, schema) in self.schemas {
            components = components.schema(name, schema);
        }
        components = components.security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title(self.info.0)
                    .description(Some(self.info.1))
                    .version(env!("CARGO_PKG_VERSION"))
                    .build(),
            )
            .paths(paths)
            .components(Some(components.build()))
            .build()
    }
}

/// An operation with a summary and its success response.
pub(crate) fn op(summary: &str, status: u16, ok: utoipa::openapi::Response) -> OperationBuilder {
    OperationBuilder::new()
        .summary(Some(summary))
        .response(status.to_string(), ok)
}

pub(crate) fn json_response(description: &str, schema: RefOr<Schema>) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(schema)).build(),
        )
        .build()
}

/// A required JSON request body of `schema`.
pub(crate) fn json_body(
    schema: RefOr<Schema>,
) -> Option<utoipa::openapi::request_body::RequestBody> {
    Some(
        RequestBodyBuilder::new()
            .required(Some(Required::True))
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(schema)).build(),
            )
            .build(),
    )
}

/// A path or query parameter of `schema`.
pub(crate) fn param(
    name: &str,
    location: ParameterIn,
    required: bool,
    schema: RefOr<Schema>,
) -> Parameter {
    utoipa::openapi::path::ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .schema(Some(schema))
        .build()
}

/// A string parameter.
pub(crate) fn string_param(name: &str, location: ParameterIn, required: bool) -> Parameter {
    param(name, location, required, String::schema())
}

/// An optional integer query parameter in `min..=max`.
pub(crate) fn int_query(name: &str, min: i64, max: i64, default: Option<i64>) -> Parameter {
    let schema = utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
        .default(default.map(Into::into));
    param(name, ParameterIn::Query, false, schema.into())
}

/// An optional query parameter taking one of `values`.
pub(crate) fn enum_query(name: &str, values: &[&str]) -> Parameter {
    let schema = utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()));
    param(name, ParameterIn::Query, false, schema.into())
}

/// The served documents, rendered once.
#[derive(Clone)]
pub(crate) struct Documents(Arc<BTreeMap<&'static str, Bytes>>);

impl Documents {
    pub fn build(state: &AppState) -> Documents {
        let docs = crate::dialects::openapi(state)
            .into_iter()
            .chain([("admin", crate::admin::openapi::document())])
            .map(|(name, doc)| {
                let mut value = serde_json::to_value(&doc).expect("an OpenAPI document serializes");
                camel_case_links(&mut value);
                (name, Bytes::from(value.to_string()))
            })
            .collect();
        Documents(Arc::new(docs))
    }

    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.0.get(name)
    }
}

/// utoipa 5.5 writes a Link's `operationId` and `operationRef` in snake case, which no
/// OpenAPI reader knows; renamed here, in every response's links.
fn camel_case_links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|op| op.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|resp| resp.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(v) = link.remove(from) {
                link.insert(to.into(), v);
            }
        }
    }
}

pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    let docs = Documents::build(state);
    let names: Vec<&'static str> = docs.0.keys().copied().collect();
    let mut r = Router::new();
    for name in names {
        let docs = docs.clone();
        r = r.route(
            &format!("/openapi/{name}.json"),
            get(move || async move {
                match docs.get(name) {
                    Some(body) => {
                        ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
                    }
                    None => StatusCode::NOT_FOUND.into_response(),
                }
            }),
        );
    }
    r
}

pub(crate) fn response<T: ToSchema>(doc: &mut Doc, description: &str) -> utoipa::openapi::Response {
    let schema = doc.schema::<T>();
    json_response(description, schema)
}

/// `resp` with links to the operations `targets` names, each given `parameter` from the
/// response body at `pointer` (`/id`): how schemathesis (and a reader) learns that a created
/// task is then read at `GET .../{id}`.
pub(crate) fn linked(
    resp: utoipa::openapi::Response,
    parameter: &str,
    pointer: &str,
    targets: &[&str],
) -> utoipa::openapi::Response {
    let mut b = ResponseBuilder::from(resp);
    for target in targets {
        b = b.link(
            *target,
            LinkBuilder::new()
                .operation_id(*target)
                .parameter(parameter, format!("$response.body#{pointer}"))
                .build(),
        );
    }
    b.build()
}
