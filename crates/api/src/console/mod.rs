//! The operator's console at `/admin/`: pages rendered on the server (maud, which escapes every
//! value it is given, so a prompt or a name with markup shows as text), one small stylesheet,
//! no script and no build step. It reads and changes what the admin API does, through the same
//! calls (`admin::ops`, the channel registry), behind a session cookie from the sign-in form;
//! every state-changing form carries the session's CSRF token.

mod pages;
mod session;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use reelay_store::now_ms;

pub use session::Sessions;
use session::{set_cookie, Session};

use crate::admin::AdminError;
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(|| async { Redirect::to("/admin/") }))
        .route("/admin/", get(pages::overview))
        .route("/admin/sign-in", get(sign_in_page).post(sign_in))
        .route("/admin/sign-out", post(sign_out))
        .route("/admin/console.css", get(stylesheet))
        .route("/admin/tasks", get(pages::tasks))
        .route("/admin/tasks/{id}", get(pages::task))
        .route("/admin/tasks/{id}/cancel", post(pages::cancel))
        .route("/admin/tasks/{id}/redeliver", post(pages::redeliver))
        .route("/admin/channels", get(pages::channels))
        .route("/admin/channels/{name}/switch", post(pages::switch_channel))
        .route(
            "/admin/channels/{name}/settings",
            post(pages::channel_settings),
        )
        .route("/admin/accounts", get(pages::accounts))
        .route("/admin/accounts/{id}", get(pages::account))
        .route("/admin/accounts/{id}/credits", post(pages::credits))
        .route("/admin/accounts/{id}/limits", post(pages::limits))
        .route(
            "/admin/accounts/{id}/webhook-secret",
            post(pages::rotate_secret),
        )
        .route("/admin/accounts/{id}/keys", post(pages::create_key))
        .route(
            "/admin/accounts/{id}/keys/{key_id}/revoke",
            post(pages::revoke_key),
        )
        .layer(axum::middleware::map_response(harden))
}

/// Headers of every console answer: no script runs (none is served, so an injected one would
/// not either), no page is framed, posted forms stay on this origin, and nothing is cached (a
/// page may show a new key once). Media may come from a bucket's presigned URLs.
async fn harden(mut res: Response) -> Response {
    use axum::http::HeaderValue;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors 'none'; img-src * data:; media-src *",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// A request from a signed-in operator. Without a (live) session every console page sends
/// the browser to the sign-in form.
pub(crate) struct Operator(pub Session);

impl FromRequestParts<AppState> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        state
            .console
            .of(&parts.headers, now_ms())
            .map(Operator)
            .ok_or_else(|| Redirect::to("/admin/sign-in").into_response())
    }
}

/// A posted form, checked against the session's CSRF token before anything else is read: a
/// form without it (or with another session's) is refused with 403 and changes nothing.
pub(crate) struct Posted(pub HashMap<String, String>);

impl Posted {
    pub fn read(session: &Session, body: &Bytes) -> Result<Posted, Forbidden> {
        let fields: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        match fields.get("csrf") {
            Some(token) if session.csrf_ok(token) => Ok(Posted(fields)),
            _ => Err(Forbidden),
        }
    }

    /// A field, trimmed; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }
}

/// A form without a valid CSRF token.
pub(crate) struct Forbidden;

/// Why a console request did not go through, as a page: a form without its CSRF token (403),
/// or the admin call's refusal or the store's trouble, in the operator's words.
pub(crate) enum Refusal {
    Forbidden,
    Failed(AdminError),
}

impl From<Forbidden> for Refusal {
    fn from(_: Forbidden) -> Refusal {
        Refusal::Forbidden
    }
}

impl From<AdminError> for Refusal {
    fn from(e: AdminError) -> Refusal {
        Refusal::Failed(e)
    }
}

impl From<reelay_store::StoreError> for Refusal {
    fn from(e: reelay_store::StoreError) -> Refusal {
        Refusal::Failed(e.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            Refusal::Forbidden => (
                StatusCode::FORBIDDEN,
                "Refused",
                "This form has no valid CSRF token. Reload the page and try again.".to_string(),
            ),
            Refusal::Failed(e) => {
                let status = match &e {
                    AdminError::NotFound(_) => StatusCode::NOT_FOUND,
                    AdminError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::BAD_REQUEST,
                };
                (status, "Not done", e.to_string())
            }
        };
        (status, page_plain(title, &text)).into_response()
    }
}

/// Whether the console is reached over https (the cookie is then `Secure`).
fn secure(state: &AppState, parts: &axum::http::HeaderMap) -> bool {
    state.links.base().starts_with("https://")
        || parts
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

async fn sign_in_page() -> Markup {
    sign_in_form(None)
}

fn sign_in_form(problem: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Sign in")) }
            body.signin {
                main {
                    h1 { "reelay console" }
                    @if let Some(p) = problem { p.problem role="alert" { (p) } }
                    // POST, so the token never lands in a URL, a log or the history.
                    form method="post" action="/admin/sign-in" {
                        label for="token" { "Admin token" }
                        input #token type="password" name="token" autocomplete="current-password" required autofocus;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

async fn sign_in(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !state.admin.verify_token(token.trim()) {
        return (
            StatusCode::UNAUTHORIZED,
            sign_in_form(Some("That is not the admin token.")),
        )
            .into_response();
    }
    let Some((_, value)) = state.console.start(now_ms()) else {
        return (
            StatusCode::UNAUTHORIZED,
            sign_in_form(Some("No admin token is set.")),
        )
            .into_response();
    };
    (
        [(
            header::SET_COOKIE,
            set_cookie(Some(&value), secure(&state, &headers)),
        )],
        Redirect::to("/admin/"),
    )
        .into_response()
}

async fn sign_out(
    axum::extract::State(state): axum::extract::State<AppState>,
    Operator(session): Operator,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = Posted::read(&session, &body) {
        return Refusal::from(refused).into_response();
    }
    state.console.end(&session);
    (
        [(
            header::SET_COOKIE,
            set_cookie(None, secure(&state, &headers)),
        )],
        Redirect::to("/admin/sign-in"),
    )
        .into_response()
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("console.css"),
    )
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · reelay" }
        link rel="stylesheet" href="/admin/console.css";
    }
}

/// A page of the console: the navigation, then `body`.
pub(crate) fn layout(title: &str, session: &Session, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                header {
                    nav aria-label="Console" {
                        a href="/admin/" { "Overview" }
                        a href="/admin/tasks" { "Tasks" }
                        a href="/admin/channels" { "Channels" }
                        a href="/admin/accounts" { "Accounts" }
                    }
                    form.signout method="post" action="/admin/sign-out" {
                        (csrf(session))
                        button type="submit" { "Sign out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The hidden CSRF field of a state-changing form.
pub(crate) fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

fn page_plain(title: &str, text: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" { head { (head(title)) } body { main {
            h1 { (title) }
            p.problem role="alert" { (text) }
            p { a href="/admin/" { "Back to the console" } }
        } } }
    }
}
