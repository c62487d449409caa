//! The console's pages and the forms they post. Reads and changes go through the admin API's
//! own calls (`admin::ops`, `admin::channels`, the store), so the console and the API cannot
//! disagree on a rule; an error shows on the page in the operator's words.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use reelay_core::{Dialect, TaskState};
use reelay_store::{now_ms, ActivityBucket, CancelOutcome, Canceller, Task, TaskSearch};
use serde::Deserialize;

use super::{csrf, layout, Operator, Posted};
use crate::admin::ops::{self, Adjustment, Credits, Topup};
use crate::admin::AdminError;
use crate::AppState;

/// Tasks on one page of the list.
const PAGE: i64 = 50;

type Page = Result<Response, super::Refusal>;

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn state_class(s: TaskState) -> String {
    format!("state-{}", s.as_str())
}

/// Back to `to` after a form, with what happened (shown by the page).
fn done(to: &str, notice: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    let notice: String = url::form_urlencoded::byte_serialize(notice.as_bytes()).collect();
    Redirect::to(&format!("{to}{sep}notice={notice}")).into_response()
}

#[derive(Deserialize, Default)]
pub struct Notice {
    notice: Option<String>,
}

fn notice(n: &Option<String>) -> Markup {
    html! { @if let Some(n) = n { p.notice role="status" { (n) } } }
}

pub async fn overview(State(state): State<AppState>, Operator(session): Operator) -> Page {
    let snap = state.store.ops_snapshot(now_ms()).await?;
    let channels = state.engine.channel_views().await?;
    let count = |st: &str| {
        snap.tasks_by_state
            .iter()
            .find(|(s, _)| s == st)
            .map_or(0, |(_, n)| *n)
    };
    let now = now_ms();
    let activity = state
        .store
        .activity(now - 24 * HOUR_MS, HOUR_MS, 24)
        .await?;
    let oldest = snap
        .oldest_due_at
        .map(|t| format!("{} s", (now - t).max(0) / 1000))
        .unwrap_or_else(|| "none".into());
    let day = sum(&activity.buckets);
    let hour = sum(&activity.buckets[23..]);
    let body = html! {
        h2 { "Last hour and day" }
        div.cards {
            div.card { div.n { (hour.succeeded + hour.failed + hour.cancelled) } div.l { "tasks ended, last hour" } }
            div.card { div.n { (success(&hour)) } div.l { "success rate, last hour" } }
            div.card { div.n { (day.succeeded + day.failed + day.cancelled) } div.l { "tasks ended, last 24 h" } }
            div.card { div.n { (success(&day)) } div.l { "success rate, last 24 h" } }
            div.card { div.n { (activity.credits_captured) } div.l { "credits captured, last 24 h" } }
            div.card { div.n { (activity.credits_refunded) } div.l { "credits refunded, last 24 h" } }
        }
        (chart(&activity.buckets))
        h2 { "Tasks" }
        div.cards {
            @for st in TaskState::ALL {
                div.card { div.n { (count(st.as_str())) } div.l { (st.as_str()) } }
            }
            div.card { div.n { (snap.queue_depth) } div.l { "queued, due now" } }
            div.card { div.n { (oldest) } div.l { "oldest due task waiting" } }
            div.card { div.n { (snap.webhook_backlog) } div.l { "webhooks undelivered" } }
        }
        h2 { "Credits" }
        div.cards {
            div.card { div.n { (snap.credits_held) } div.l { "held by live tasks" } }
            div.card { div.n { (snap.credits_captured) } div.l { "captured, all time" } }
            div.card { div.n { (snap.credits_refunded) } div.l { "refunded, all time" } }
        }
        h2 { "Channels" }
        div.scroll { table {
            thead { tr { th { "Channel" } th { "State" } th { "Breaker" } th { "In flight" } th { "Success (5 min)" } } }
            tbody { @for c in &channels {
                tr {
                    td { a href="/admin/channels" { (c.name) } }
                    td { @if c.enabled { "enabled" } @else { "disabled" } }
                    td { (c.breaker) }
                    td { (c.in_flight.unwrap_or(0)) @if let Some(cap) = c.max_concurrent { " / " (cap) } }
                    td { (percent(c.recent.success_rate)) }
                }
            } }
        } }
    };
    Ok(layout("Overview", &session, body).into_response())
}

const HOUR_MS: i64 = 3_600_000;

fn sum(buckets: &[ActivityBucket]) -> ActivityBucket {
    buckets
        .iter()
        .fold(ActivityBucket::default(), |a, b| ActivityBucket {
            succeeded: a.succeeded + b.succeeded,
            failed: a.failed + b.failed,
            cancelled: a.cancelled + b.cancelled,
        })
}

/// Succeeded among the tasks that ended by themselves (a cancel is nobody's failure).
fn success(b: &ActivityBucket) -> String {
    let ended = b.succeeded + b.failed;
    percent((ended > 0).then(|| b.succeeded as f64 / ended as f64))
}

/// Tasks ended per hour over the last day, succeeded over failed and cancelled, as SVG.
fn chart(buckets: &[ActivityBucket]) -> Markup {
    const W: i64 = 20;
    const H: i64 = 120;
    let top = buckets
        .iter()
        .map(|b| b.succeeded + b.failed + b.cancelled)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |n: i64| n * (H - 20) / top;
    let width = W * buckets.len() as i64;
    html! {
        svg.chart viewBox={ "0 0 " (width) " " (H) } role="img"
            aria-label="Tasks ended per hour over the last 24 hours: succeeded in green, failed or cancelled in red" {
            @for (i, b) in buckets.iter().enumerate() {
                @let x = i as i64 * W + 2;
                @let ok = scale(b.succeeded);
                @let bad = scale(b.failed + b.cancelled);
                rect x=(x) y=(H - 12 - ok) width=(W - 4) height=(ok) fill="#1e7a3c" {
                    title { (b.succeeded) " succeeded, " (b.failed) " failed, " (b.cancelled) " cancelled" }
                }
                rect x=(x) y=(H - 12 - ok - bad) width=(W - 4) height=(bad) fill="#b3261e" {}
            }
            text x="2" y=(H - 1) font-size="9" fill="#5b6472" { "24 h ago" }
            text x=(width - 2) y=(H - 1) font-size="9" fill="#5b6472" text-anchor="end" { "now" }
            text x="2" y="10" font-size="9" fill="#5b6472" { (top) " / h" }
        }
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "–".into())
}

#[derive(Deserialize, Default)]
pub struct TaskFilters {
    account: Option<String>,
    state: Option<String>,
    dialect: Option<String>,
    model: Option<String>,
    channel: Option<String>,
    /// `YYYY-MM-DD` (UTC), inclusive.
    from: Option<String>,
    /// `YYYY-MM-DD` (UTC), inclusive.
    to: Option<String>,
    before: Option<String>,
}

fn day_ms(s: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

fn some(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(200).collect())
}

pub async fn tasks(
    State(state): State<AppState>,
    Operator(session): Operator,
    Query(f): Query<TaskFilters>,
) -> Page {
    let mut problems = Vec::new();
    let state_filter = match some(&f.state) {
        None => vec![],
        Some(s) => match TaskState::parse(&s) {
            Some(st) => vec![st],
            None => {
                problems.push(format!("no state {s:?}"));
                vec![]
            }
        },
    };
    let dialect = match some(&f.dialect) {
        None => None,
        Some(d) => {
            let parsed = Dialect::parse(&d);
            if parsed.is_none() {
                problems.push(format!("no dialect {d:?}"));
            }
            parsed
        }
    };
    let range = |s: &Option<String>, name: &str, problems: &mut Vec<String>| match some(s) {
        None => None,
        Some(d) => {
            let ms = day_ms(&d);
            if ms.is_none() {
                problems.push(format!("{name}: a date like 2026-12-04"));
            }
            ms
        }
    };
    let created_from = range(&f.from, "from", &mut problems);
    let created_before = range(&f.to, "to", &mut problems).map(|t| t + 86_400_000);
    let search = TaskSearch {
        account_id: some(&f.account),
        states: state_filter,
        dialect,
        model: some(&f.model),
        channel: some(&f.channel),
        created_from,
        created_before,
        before_id: some(&f.before),
        limit: PAGE + 1,
    };
    let mut found = if problems.is_empty() {
        state.store.search_tasks(&search).await?
    } else {
        Vec::new()
    };
    let more = found.len() as i64 > PAGE;
    found.truncate(PAGE as usize);
    let next = more.then(|| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("account", &f.account),
            ("state", &f.state),
            ("dialect", &f.dialect),
            ("model", &f.model),
            ("channel", &f.channel),
            ("from", &f.from),
            ("to", &f.to),
        ] {
            if let Some(v) = some(v) {
                q.append_pair(k, &v);
            }
        }
        if let Some(last) = found.last() {
            q.append_pair("before", &last.id);
        }
        format!("/admin/tasks?{}", q.finish())
    });
    let val = |v: &Option<String>| some(v).unwrap_or_default();
    let body = html! {
        form.filters method="get" action="/admin/tasks" {
            label { "Account" input name="account" value=(val(&f.account)); }
            label { "State" select name="state" {
                option value="" { "any" }
                @for st in TaskState::ALL {
                    option value=(st.as_str()) selected[val(&f.state) == st.as_str()] { (st.as_str()) }
                }
            } }
            label { "Dialect" select name="dialect" {
                option value="" { "any" }
                @for d in Dialect::ALL {
                    option value=(d.as_str()) selected[val(&f.dialect) == d.as_str()] { (d.as_str()) }
                }
            } }
            label { "Model" input name="model" value=(val(&f.model)); }
            label { "Channel" input name="channel" value=(val(&f.channel)); }
            label { "From" input type="date" name="from" value=(val(&f.from)); }
            label { "To" input type="date" name="to" value=(val(&f.to)); }
            button type="submit" { "Filter" }
        }
        @for p in &problems { p.problem role="alert" { (p) } }
        div.scroll { table {
            thead { tr { th { "Task" } th { "State" } th { "Account" } th { "Dialect" } th { "Model" } th { "Channel" } th { "Created" } } }
            tbody {
                @for t in &found {
                    tr {
                        td.mono { a href={ "/admin/tasks/" (t.id) } { (t.id) } }
                        td class=(state_class(t.state)) { (t.state.as_str()) }
                        td.mono { a href={ "/admin/accounts/" (t.account_id) } { (t.account_id) } }
                        td { (t.dialect.as_str()) }
                        td { (t.spec.model) }
                        td { (t.channel.as_deref().unwrap_or("")) }
                        td { (when(t.created_at)) }
                    }
                }
                @if found.is_empty() { tr { td colspan="7" { "No task matches." } } }
            }
        } }
        @if let Some(next) = next { p { a rel="next" href=(next) { "Older tasks →" } } }
    };
    Ok(layout("Tasks", &session, body).into_response())
}

pub async fn task(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Page {
    let detail = ops::task(state.store.as_ref(), &id).await?;
    let hooks = ops::task_webhooks(state.store.as_ref(), &id).await?;
    let t: &Task = &detail.task;
    let ledger = state.store.task_ledger(&t.id).await?;
    let media = crate::media::task_media(&state.links, t);
    let request = serde_json::to_string_pretty(&t.spec.input).unwrap_or_default();
    let body = html! {
        (notice(&n.notice))
        div.cards {
            div.card { div.n class=(state_class(t.state)) { (t.state.as_str()) } div.l { "state" } }
            div.card { div.n { (t.credits_held) } div.l { "credits held" } }
            div.card { div.n { (t.credits_captured) } div.l { "captured" } }
            div.card { div.n { (t.credits_refunded) } div.l { "refunded" } }
        }
        table {
            tbody {
                tr { th { "Task" } td.mono { (t.id) } }
                tr { th { "Account" } td.mono { a href={ "/admin/accounts/" (t.account_id) } { (t.account_id) } } }
                tr { th { "Dialect" } td { (t.dialect.as_str()) } }
                tr { th { "Endpoint / model" } td { (t.spec.endpoint) " / " (t.spec.model) } }
                tr { th { "Channel" } td { (t.channel.as_deref().unwrap_or("–")) } }
                tr { th { "Upstream id" } td.mono { (t.upstream_id.as_deref().unwrap_or("–")) } }
                tr { th { "Submit attempts" } td { (t.attempts) } }
                tr { th { "Callback URL" } td.mono { (t.spec.callback_url.as_deref().unwrap_or("–")) } }
                @if let Some(code) = &t.failure_code {
                    tr { th { "Failure" } td { (code) ": " (t.failure_message.as_deref().unwrap_or("")) } }
                }
                tr { th { "Created" } td { (when(t.created_at)) } }
            }
        }
        @if !t.state.is_terminal() {
            form.inline method="post" action={ "/admin/tasks/" (t.id) "/cancel" } {
                (csrf(&session))
                button.danger type="submit" { "Cancel and refund" }
            }
        }
        @if !media.outputs.is_empty() {
            h2 { "Output" }
            @for url in &media.outputs {
                @if t.spec.output.map(|k| k.as_str()) == Some("image") {
                    img.poster src=(url) alt="Output";
                } @else {
                    video controls preload="metadata" src=(url) poster=[media.poster.as_deref()] {}
                }
            }
            @if let Some(poster) = &media.poster {
                h2 { "Poster" }
                img.poster src=(poster) alt="Poster";
            }
        }
        @if media.expired { p { "The archived media have passed their retention." } }
        h2 { "Request as received" }
        @match &t.spec.received {
            Some(received) => pre { (serde_json::to_string_pretty(received).unwrap_or_default()) },
            None => p { "Not kept (larger than 16 KiB, or made before reelay kept requests)." },
        }
        h2 { "Body sent upstream" }
        p { small { "What reelay validated and submits, in Runway's form (the other dialects' requests are translated into it)." } }
        pre { (request) }
        @if let Some(params) = &t.spec.params {
            p { small { "What the " (t.dialect.as_str()) " dialect keeps of the request for its answers:" } }
            pre { (serde_json::to_string_pretty(params).unwrap_or_default()) }
        }
        h2 { "State history" }
        table {
            thead { tr { th { "When" } th { "From" } th { "To" } th { "Data" } } }
            tbody { @for e in &detail.events {
                tr {
                    td { (when(e.created_at)) }
                    td { (e.from_state.map(|s| s.as_str()).unwrap_or("–")) }
                    td class=(state_class(e.to_state)) { (e.to_state.as_str()) }
                    td.mono { (e.data.to_string()) }
                }
            } }
        }
        h2 { "Credits" }
        table {
            thead { tr { th { "When" } th { "Kind" } th { "Amount" } th { "Reason" } } }
            tbody {
                @for e in &ledger {
                    tr { td { (when(e.created_at)) } td { (e.kind.as_str()) } td { (e.amount) } td { (e.reason) } }
                }
                @if ledger.is_empty() { tr { td colspan="4" { "No ledger entry." } } }
            }
        }
        h2 { "Webhooks" }
        @if hooks.is_empty() { p { "No webhook message." } }
        @for m in &hooks {
            h3.mono { (m.event_type) " → " (m.url) }
            p { (m.state) ", " (m.attempts.len()) " attempt(s)" }
            table {
                thead { tr { th { "#" } th { "When" } th { "Status" } th { "Latency" } th { "Response" } } }
                tbody { @for a in &m.attempts {
                    tr {
                        td { (a.n) }
                        td { (when(a.started_at)) }
                        td { (a.status.map(|s| s.to_string()).or(a.error.clone()).unwrap_or_default()) }
                        td { (a.latency_ms) " ms" }
                        td.mono { (a.response_excerpt.as_deref().unwrap_or("")) }
                    }
                } }
            }
        }
        @if !hooks.is_empty() {
            form.inline method="post" action={ "/admin/tasks/" (t.id) "/redeliver" } {
                (csrf(&session))
                button type="submit" { "Redeliver failed webhooks" }
            }
        }
    };
    Ok(layout("Task", &session, body).into_response())
}

pub async fn cancel(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    Posted::read(&session, &body)?;
    let back = format!("/admin/tasks/{id}");
    match state.store.cancel_task(&id, Canceller::Operator).await? {
        CancelOutcome::Cancelled => {
            state.engine.notify();
            Ok(done(&back, "Cancelled and refunded."))
        }
        _ => Ok(done(&back, "Nothing to cancel: the task has finished.")),
    }
}

pub async fn redeliver(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    Posted::read(&session, &body)?;
    let r = ops::redeliver_webhooks(state.store.as_ref(), &id, ops::Redelivery::default()).await?;
    state.outbox_wake.notify_one();
    Ok(done(
        &format!("/admin/tasks/{id}"),
        &format!("{} message(s) queued again.", r.redelivered),
    ))
}

pub async fn channels(
    State(state): State<AppState>,
    Operator(session): Operator,
    Query(n): Query<Notice>,
) -> Page {
    let views = state.engine.channel_views().await?;
    let body = html! {
        (notice(&n.notice))
        div.scroll { table {
            thead { tr {
                th { "Channel" } th { "Kind" } th { "State" } th { "Breaker" } th { "In flight / cap" }
                th { "Success" } th { "p50 / p95" } th { "Settings" } th { "Switch" }
            } }
            tbody { @for c in views.iter().filter(|c| !c.removed) {
                tr {
                    td { b { (c.name) } br; span.mono { (c.base_url) } }
                    td { (c.kind) }
                    td {
                        @if c.enabled { "enabled" } @else { "disabled" }
                        @if let Some(r) = &c.disabled_reason { br; small { (r) } }
                    }
                    td { (c.breaker) @if c.paused { " (paused)" } }
                    td { (c.in_flight.unwrap_or(0)) " / " (c.max_concurrent.map(|m| m.to_string()).unwrap_or_else(|| "∞".into())) }
                    td { (percent(c.recent.success_rate)) }
                    td { (ms(c.recent.latency_ms_p50)) " / " (ms(c.recent.latency_ms_p95)) }
                    td {
                        form.inline method="post" action={ "/admin/channels/" (c.name) "/settings" } {
                            (csrf(&session))
                            label { "Priority" input type="number" name="priority" value=(c.priority) size="6"; }
                            label { "Weight" input type="number" name="weight" min="1" value=(c.weight) size="4"; }
                            label { "Cap" input type="number" name="max_concurrent" min="1" value=[c.max_concurrent] size="6" placeholder="none"; }
                            button type="submit" { "Save" }
                        }
                    }
                    td {
                        form.inline method="post" action={ "/admin/channels/" (c.name) "/switch" } {
                            (csrf(&session))
                            @if c.enabled {
                                input type="hidden" name="enabled" value="false";
                                button.danger type="submit" aria-label={ "Disable " (c.name) } { "Disable" }
                            } @else {
                                input type="hidden" name="enabled" value="true";
                                button type="submit" aria-label={ "Enable " (c.name) } { "Enable" }
                            }
                        }
                    }
                }
            } }
        } }
    };
    Ok(layout("Channels", &session, body).into_response())
}

fn ms(v: Option<u32>) -> String {
    v.map(|v| format!("{v} ms")).unwrap_or_else(|| "–".into())
}

pub async fn switch_channel(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> Page {
    let form = Posted::read(&session, &body)?;
    let on = form.get("enabled") == Some("true");
    let reason = (!on).then_some("switched off in the console");
    // The channel's view it answers is the API's; the page shows the list again.
    let _view = crate::admin::handlers::switch(&state, &name, on, reason).await?;
    let what = if on { "enabled" } else { "disabled" };
    Ok(done("/admin/channels", &format!("{name} {what}.")))
}

pub async fn channel_settings(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(name): Path<String>,
    body: Bytes,
) -> Page {
    let form = Posted::read(&session, &body)?;
    let mut patch = serde_json::Map::new();
    for key in ["priority", "weight", "max_concurrent"] {
        let value = match form.get(key) {
            None if key == "max_concurrent" => serde_json::Value::Null,
            None => continue,
            Some(v) => match v.parse::<i64>() {
                Ok(n) => n.into(),
                Err(_) => return Err(AdminError::invalid(format!("{key}: a whole number")).into()),
            },
        };
        patch.insert(key.into(), value);
    }
    crate::admin::channels::set(state.store.as_ref(), &name, patch).await?;
    crate::admin::handlers::applied(&state).await?;
    Ok(done("/admin/channels", &format!("{name} saved.")))
}

pub async fn accounts(State(state): State<AppState>, Operator(session): Operator) -> Page {
    let all = ops::list_accounts(state.store.as_ref()).await?;
    let body = html! {
        div.scroll { table {
            thead { tr { th { "Account" } th { "Name" } th { "Available" } th { "Held" } th { "Live tasks" } th { "Cap" } } }
            tbody { @for a in &all {
                tr {
                    td.mono { a href={ "/admin/accounts/" (a.id) } { (a.id) } }
                    td { (a.name) }
                    td { (a.credits_available) }
                    td { (a.credits_held) }
                    td { (a.live_tasks) }
                    td { (a.max_active_tasks.map(|m| m.to_string()).unwrap_or_else(|| "default".into())) }
                }
            } }
        } }
    };
    Ok(layout("Accounts", &session, body).into_response())
}

pub async fn account(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Page {
    let store = state.store.as_ref();
    let a = ops::get_account(store, &id).await?;
    let keys = ops::list_keys(store, &id).await?;
    let ledger = ops::ledger(store, &id, Some(100)).await?;
    let body = html! {
        (notice(&n.notice))
        p { b { (a.name) } " " span.mono { (a.id) } }
        div.cards {
            div.card { div.n #balance { (a.credits_available) } div.l { "credits available" } }
            div.card { div.n { (a.credits_held) } div.l { "held" } }
            div.card { div.n { (a.live_tasks) } div.l { "live tasks" } }
        }
        h2 { "Credits" }
        form.inline method="post" action={ "/admin/accounts/" (a.id) "/credits" } {
            (csrf(&session))
            label { "Amount" input type="number" name="amount" required; }
            label { "Reason" input name="reason" maxlength="500" placeholder="top-up"; }
            label { "Kind" select name="kind" {
                option value="topup" { "top up" }
                option value="adjust" { "adjust (±, needs a reason)" }
            } }
            button type="submit" { "Apply" }
        }
        h2 { "Limits" }
        form.inline method="post" action={ "/admin/accounts/" (a.id) "/limits" } {
            (csrf(&session))
            label { "Price multiplier" input type="number" name="price_multiplier" step="any" min="0" value=(a.price_multiplier); }
            label { "Live tasks cap" input type="number" name="max_active_tasks" min="1" value=[a.max_active_tasks] placeholder="default"; }
            label { "Media retention (s)" input type="number" name="retention_seconds" min="1" value=[a.retention_seconds] placeholder="default"; }
            button type="submit" { "Save limits" }
        }
        h2 { "Webhook signing secret" }
        form.inline method="post" action={ "/admin/accounts/" (a.id) "/webhook-secret" } {
            (csrf(&session))
            label { "Old secret keeps signing for (s)" input type="number" name="grace_seconds" min="0" placeholder="default"; }
            button type="submit" { "Rotate" }
        }
        h2 { "API keys" }
        table {
            thead { tr { th { "Key" } th { "Created" } th { "Last used" } th {} } }
            tbody { @for k in &keys {
                tr {
                    td.mono { (k.prefix) "…" }
                    td { (when(k.created_at)) }
                    td { (k.last_used_at.map(when).unwrap_or_else(|| "never".into())) }
                    td {
                        @if k.revoked_at.is_some() { "revoked" } @else {
                            form.inline method="post" action={ "/admin/accounts/" (a.id) "/keys/" (k.id) "/revoke" } {
                                (csrf(&session))
                                button.danger type="submit" { "Revoke" }
                            }
                        }
                    }
                }
            } }
        }
        form.inline method="post" action={ "/admin/accounts/" (a.id) "/keys" } {
            (csrf(&session))
            button type="submit" { "Create a key" }
        }
        h2 { "Ledger (latest 100)" }
        table {
            thead { tr { th { "When" } th { "Kind" } th { "Amount" } th { "Task" } th { "Reason" } } }
            tbody { @for e in &ledger {
                tr {
                    td { (when(e.created_at)) }
                    td { (e.kind.as_str()) }
                    td { (e.amount) }
                    td.mono { @if let Some(t) = &e.task_id { a href={ "/admin/tasks/" (t) } { (t) } } }
                    td { (e.reason) }
                }
            } }
        }
    };
    Ok(layout("Account", &session, body).into_response())
}

pub async fn credits(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let form = Posted::read(&session, &body)?;
    let amount: Credits = form
        .get("amount")
        .unwrap_or("")
        .parse()
        .map_err(AdminError::invalid)?;
    let reason = form.get("reason").map(str::to_string);
    let store = state.store.as_ref();
    let account = match form.get("kind") {
        Some("adjust") => {
            let reason =
                reason.ok_or_else(|| AdminError::invalid("an adjustment needs a reason"))?;
            ops::adjust(store, &id, Adjustment { amount, reason }).await
        }
        _ => ops::topup(store, &id, Topup { amount, reason }).await,
    }?;
    Ok(done(
        &format!("/admin/accounts/{id}"),
        &format!("Balance now {}.", account.credits_available),
    ))
}

pub async fn create_key(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    Posted::read(&session, &body)?;
    let created = ops::create_key(state.store.as_ref(), &id).await?;
    // Shown on this answer only (not in a redirect's URL): only its hash is stored.
    let body = html! {
        p.notice role="status" { "The new key, shown only this once:" }
        pre.mono #new-key { (created.api_key) }
        p { a href={ "/admin/accounts/" (id) } { "Back to the account" } }
    };
    Ok(layout("New API key", &session, body).into_response())
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path((id, key_id)): Path<(String, String)>,
    body: Bytes,
) -> Page {
    Posted::read(&session, &body)?;
    ops::revoke_key(state.store.as_ref(), &key_id).await?;
    state.keys.invalidate();
    Ok(done(&format!("/admin/accounts/{id}"), "Key revoked."))
}

fn number<T: std::str::FromStr>(form: &Posted, key: &str) -> Result<Option<T>, AdminError> {
    form.get(key)
        .map(|v| {
            v.parse()
                .map_err(|_| AdminError::invalid(format!("{key}: a number, got {v:?}")))
        })
        .transpose()
}

pub async fn limits(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let form = Posted::read(&session, &body)?;
    let read = || -> Result<ops::AccountChange, AdminError> {
        Ok(ops::AccountChange {
            price_multiplier: number(&form, "price_multiplier")?,
            // An empty field is the configured default.
            max_active_tasks: Some(number(&form, "max_active_tasks")?),
            retention_seconds: Some(number(&form, "retention_seconds")?),
        })
    };
    let change = read()?;
    ops::update_account(state.store.as_ref(), &id, change).await?;
    // Cached key lookups carry the account's multiplier and cap.
    state.keys.invalidate();
    Ok(done(&format!("/admin/accounts/{id}"), "Limits saved."))
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> Page {
    let form = Posted::read(&session, &body)?;
    let grace_seconds = number(&form, "grace_seconds")?;
    let rotated = ops::rotate_webhook_secret(
        state.store.as_ref(),
        &id,
        ops::Rotation { grace_seconds },
        state.config.webhook_secret_grace_ms,
    )
    .await?;
    // Shown on this answer only, as the admin API does.
    let body = html! {
        p.notice role="status" { "The new signing secret (the old one signs until " (when(rotated.previous_valid_until)) " UTC):" }
        pre.mono { (rotated.webhook_secret) }
        p { a href={ "/admin/accounts/" (id) } { "Back to the account" } }
    };
    Ok(layout("Webhook secret rotated", &session, body).into_response())
}
