//! The operator's console over real HTTP, as a browser without script would use it: sign-in
//! and its cookie, redirects without a session, CSRF on every change, escaping, and the
//! actions (cancel, top-up, channel switch) doing what the admin API does.

use reqwest::redirect::Policy;
use reqwest::{header, StatusCode};
use serde_json::json;

use crate::common::{admin, gen4_turbo, TestApp, ADMIN_TOKEN};

struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: app.url(""),
            cookie: None,
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            r = r.header(header::COOKIE, c);
        }
        r.send().await.unwrap()
    }

    async fn page(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("script-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        assert!(r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        r.text().await.unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut r = self.client.post(format!("{}{path}", self.base)).form(form);
        if let Some(c) = &self.cookie {
            r = r.header(header::COOKIE, c);
        }
        r.send().await.unwrap()
    }

    async fn sign_in(&mut self) {
        let r = self.post("/admin/sign-in", &[("token", ADMIN_TOKEN)]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/admin/");
        let set = r.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_string();
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age="] {
            assert!(set.contains(flag), "{set}");
        }
        assert!(!set.contains(ADMIN_TOKEN));
        self.cookie = Some(set.split(';').next().unwrap().to_string());
    }

    /// The CSRF token of the session, as its pages carry it.
    async fn csrf(&self) -> String {
        let page = self.page("/admin/").await;
        let at = page.find(r#"name="csrf" value=""#).expect("a CSRF field") + 19;
        page[at..at + 64].to_string()
    }
}

#[tokio::test]
async fn without_a_session_every_page_sends_to_the_sign_in_form() {
    let app = TestApp::spawn().await;
    let b = Browser::new(&app);
    for path in [
        "/admin/",
        "/admin/tasks",
        "/admin/channels",
        "/admin/accounts",
        "/admin/tasks/x",
    ] {
        let r = b.get(path).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()[header::LOCATION], "/admin/sign-in");
    }
    // A form posted without a session changes nothing either.
    let r = b
        .post(
            "/admin/accounts/x/credits",
            &[("amount", "5"), ("csrf", "x")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let form = b.page("/admin/sign-in").await;
    assert!(form.contains(r#"type="password""#) && form.contains(r#"method="post""#));
    // A wrong token: refused, and not echoed.
    let r = b
        .post("/admin/sign-in", &[("token", "not-the-token-at-all")])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(header::SET_COOKIE).is_none());
    assert!(!r.text().await.unwrap().contains("not-the-token-at-all"));
    // A forged cookie is no session.
    let forged = Browser {
        cookie: Some("reelay_console=abc.9999999999.def".into()),
        ..Browser::new(&app)
    };
    assert_eq!(forged.get("/admin/").await.status(), StatusCode::SEE_OTHER);
    // The admin API keeps its bearer token.
    let (status, _) = admin(&app, reqwest::Method::GET, "/accounts", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn signed_in_an_operator_sees_escapes_cancels_tops_up_and_switches() {
    let app = TestApp::spawn_with(|c| c.sandbox_run_seconds = 60.0).await;
    let mut b = Browser::new(&app);
    b.sign_in().await;
    let overview = b.page("/admin/").await;
    assert!(overview.contains("Overview") && overview.contains("sandbox"));
    assert!(!overview.contains(ADMIN_TOKEN));
    let csrf = b.csrf().await;

    // A task whose prompt is markup shows it as text, on its page and in the list.
    let id = app
        .create("image_to_video", &gen4_turbo("<script>alert(1)</script>"))
        .await;
    let task_page = b.page(&format!("/admin/tasks/{id}")).await;
    assert!(task_page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!task_page.contains("<script>alert(1)"));
    let list = b.page("/admin/tasks").await;
    assert!(list.contains(&id));
    // The request is kept as it came; a credential in a reverse body is not.
    let stored = app.stored(&id).await;
    assert_eq!(
        stored.spec.received,
        Some(gen4_turbo("<script>alert(1)</script>"))
    );
    let r: serde_json::Value = app
        .client
        .post(app.url("/runway/pro/generate"))
        .json(&json!({"prompt": "a quiet harbour", "key": app.key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reverse_id = r["data"]["task_id"].as_str().unwrap().to_string();
    let page = b.page(&format!("/admin/tasks/{reverse_id}")).await;
    assert!(page.contains("a quiet harbour") && !page.contains(&app.key));

    // Cancel, running: without the token 403 and nothing changes; with it, cancelled and
    // refunded, and still listed.
    let task = app.stored(&id).await;
    let account = task.account_id.clone();
    let r = b.post(&format!("/admin/tasks/{id}/cancel"), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b
        .post(
            &format!("/admin/tasks/{id}/cancel"),
            &[("csrf", "0".repeat(64).as_str())],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!app.stored(&id).await.state.is_terminal());
    let r = b
        .post(&format!("/admin/tasks/{id}/cancel"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let t = app.stored(&id).await;
    assert_eq!(t.state, reelay_core::TaskState::Cancelled);
    assert_eq!(t.credits_refunded, t.credits_held);
    assert!(!t.deleted, "an operator's cancel keeps the task visible");
    let page = b.page(&format!("/admin/tasks/{id}")).await;
    assert!(page.contains("state-cancelled") && page.contains("cancelled by operator"));
    let cancelled = b.page("/admin/tasks?state=cancelled").await;
    assert!(cancelled.contains(&id));
    let none = b.page("/admin/tasks?state=succeeded").await;
    assert!(!none.contains(&id));

    // Top up: 403 without the token, the balance moves with it.
    let before = app.account(&account).await.credits_available;
    let path = format!("/admin/accounts/{account}/credits");
    let r = b.post(&path, &[("amount", "250"), ("kind", "topup")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.account(&account).await.credits_available, before);
    let r = b
        .post(
            &path,
            &[
                ("amount", "250"),
                ("kind", "topup"),
                ("reason", "<b>bonus</b>"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.account(&account).await.credits_available, before + 250);
    let page = b.page(&format!("/admin/accounts/{account}")).await;
    assert!(page.contains(&(before + 250).to_string()));
    assert!(page.contains("&lt;b&gt;bonus&lt;/b&gt;") && !page.contains("<b>bonus"));
    // A bad amount is refused on the page, and changes nothing.
    let r = b.post(&path, &[("amount", "lots"), ("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.account(&account).await.credits_available, before + 250);

    // Disable the sandbox channel: the registry says so.
    let r = b
        .post(
            "/admin/channels/sandbox/switch",
            &[("enabled", "false"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, view) = admin(&app, reqwest::Method::GET, "/channels/sandbox", None).await;
    assert_eq!(view["enabled"], json!(false));
    let r = b
        .post(
            "/admin/channels/sandbox/switch",
            &[("enabled", "true"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Sign out: the cookie is cleared and no longer works.
    let r = b.post("/admin/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(b.get("/admin/").await.status(), StatusCode::SEE_OTHER);
}
