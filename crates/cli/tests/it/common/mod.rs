//! `TestApp`: the real server on port 0 with a temp data dir, driven over HTTP.
#![allow(dead_code)]

pub mod files;
pub mod process;
pub mod proxy;
pub mod receiver;

use std::time::{Duration, Instant};

use reelay::config::{Config, Overrides};
use reelay::serve::Server;
use reelay_sim::{SimConfig, SimHandle};
use reelay_upstream::{ChannelConfig, ChannelKind};
use serde_json::{json, Value};

pub const VERSION: &str = "2024-11-06";

pub struct TestApp {
    pub server: Server,
    pub key: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// The external simulator, when the test uses one instead of the built-in sandbox.
    pub sim: Option<SimHandle>,
    /// On PostgreSQL runs, a pool of the test's database for [`TestApp::writes`].
    fingerprint: tokio::sync::OnceCell<sqlx::PgPool>,
}

/// The backend this run of the suite tests: SQLite, or PostgreSQL when
/// `REELAY_TEST_BACKEND=postgres` (the server named by `REELAY_TEST_DATABASE_URL`). CI runs
/// the suite once per backend.
pub fn postgres_admin_url() -> Option<String> {
    if std::env::var("REELAY_TEST_BACKEND").as_deref() != Ok("postgres") {
        return None;
    }
    Some(std::env::var("REELAY_TEST_DATABASE_URL").expect(
        "REELAY_TEST_BACKEND=postgres needs REELAY_TEST_DATABASE_URL (an admin URL of a server)",
    ))
}

/// The database of a test's data dir: `<dir>/reelay.db`, or on PostgreSQL a database of its
/// own named after the dir (created on first use, so a restarted process finds it again), so
/// tests run in parallel without seeing each other.
pub fn database_url(dir: &std::path::Path) -> String {
    let Some(admin) = postgres_admin_url() else {
        return format!("sqlite://{}", dir.join("reelay.db").display());
    };
    use sha2::Digest;
    let digest = sha2::Sha256::digest(dir.display().to_string().as_bytes());
    let name = format!("reelay_it_{}", &hex::encode(digest)[..24]);
    let create = format!("CREATE DATABASE {name}");
    let admin_url = admin.clone();
    // Called from sync and async code alike: a thread of its own with its own runtime.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("REELAY_TEST_DATABASE_URL answers");
            match sqlx::raw_sql(&create).execute(&mut conn).await {
                Ok(_) => {}
                // 42P04: it exists (a restart of the same test's server).
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
                Err(e) => panic!("{create}: {e}"),
            }
        })
    })
    .join()
    .unwrap();
    let mut url = url::Url::parse(&admin).expect("REELAY_TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

/// The store of a test's data dir, opened beside the server (to look at what it wrote).
pub async fn open_store(dir: &std::path::Path) -> std::sync::Arc<dyn reelay_store::Store> {
    let url = database_url(dir);
    if url.starts_with("sqlite:") {
        std::sync::Arc::new(reelay_store::sqlite::SqliteStore::open(&url).await.unwrap())
    } else {
        std::sync::Arc::new(reelay_store::postgres::PgStore::open(&url).await.unwrap())
    }
}

/// Tampers with a balance the way only a bug or an intruder could: credits without a ledger
/// entry (for the tests of `ledger verify`).
pub async fn credit_behind_the_ledger(dir: &std::path::Path, account_id: &str, n: i64) {
    let url = database_url(dir);
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query("UPDATE accounts SET credits_available = credits_available + ? WHERE id = ?")
            .bind(n)
            .bind(account_id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query("UPDATE accounts SET credits_available = credits_available + $1 WHERE id = $2")
            .bind(n)
            .bind(account_id)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

/// A config for tests: port 0, a temp dir, a fast engine.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::load(
        None,
        &Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.to_path_buf()),
        },
    )
    .expect("test config loads");
    c.sandbox_run_seconds = 1.0;
    c.engine.poll_min_ms = 100;
    c.engine.poll_max_ms = 500;
    c.engine.backoff_base_ms = 50;
    c.engine.backoff_max_ms = 500;
    c.engine.reconcile_delay_ms = 200;
    c.engine.throttle_recheck_ms = 100;
    c.engine.idle_wakeup_ms = 500;
    c.engine.channels_reload_ms = 200;
    c.log = "warn".into();
    // Rate limits are tested on their own; other tests must not trip them.
    c.limits.requests_per_second = 0;
    c.admin_token = Some(ADMIN_TOKEN.into());
    if postgres_admin_url().is_some() {
        c.database_url = Some(database_url(dir));
    }
    c
}

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Calls the admin API (`/admin/v1{path}`) with the test's admin token; answers the status and
/// the JSON body (`null` when there is none).
pub async fn admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (reqwest::StatusCode, Value) {
    let mut req = app
        .client
        .request(method, app.url(&format!("/admin/v1{path}")))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A channel pointing at an external simulator.
pub fn sim_channel(name: &str, sim: &SimHandle) -> ChannelConfig {
    let mut ch = ChannelConfig::sandbox(sim.base_url());
    ch.name = name.into();
    ch.kind = ChannelKind::Sandbox;
    ch.request_timeout_ms = 2_000;
    ch.connect_timeout_ms = 1_000;
    ch
}

pub fn fast_sim() -> SimConfig {
    SimConfig {
        pending_seconds: 0.1,
        run_seconds: 0.5,
        ..SimConfig::default()
    }
}

impl TestApp {
    /// The server with its built-in sandbox.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(f: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        f(&mut config);
        let server = reelay::serve::start(config).await.expect("server starts");
        Self::from_server(server, dir).await
    }

    /// A server the test started itself (e.g. with `serve::start_with`) in `dir`.
    pub async fn from_server(server: Server, dir: tempfile::TempDir) -> TestApp {
        let key = server.first_key.clone().expect("first start prints a key");
        TestApp {
            server,
            key,
            client: reqwest::Client::new(),
            dir,
            sim: None,
            fingerprint: tokio::sync::OnceCell::new(),
        }
    }

    /// A number that changes with every committed write: on SQLite the store's own count of
    /// committed row changes; on PostgreSQL, per table, the row count and the sum of the rows'
    /// `xmin` (every insert or update gives a row the id of the transaction that wrote it,
    /// and a delete lowers the count), since PostgreSQL has no commit hook to count with.
    pub async fn writes(&self) -> u64 {
        if postgres_admin_url().is_none() {
            return self.server.store.committed_writes();
        }
        let pool = self
            .fingerprint
            .get_or_init(|| async {
                sqlx::PgPool::connect(&database_url(self.dir.path()))
                    .await
                    .unwrap()
            })
            .await;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%' ORDER BY 1",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let mut sql = String::from("SELECT (0::numeric");
        for t in &tables {
            sql.push_str(&format!(
                " + (SELECT COUNT(*) * 1000003 + COALESCE(SUM(xmin::text::bigint), 0) FROM \"{t}\")"
            ));
        }
        sql.push_str(")::text");
        let n: String = sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap();
        // A hash of the figure: only whether it changed matters.
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        n.hash(&mut h);
        h.finish()
    }

    /// The server with one channel to an external simulator (and no sandbox).
    pub async fn with_sim(sim_config: SimConfig, f: impl FnOnce(&mut Config)) -> TestApp {
        let sim = reelay_sim::spawn(sim_config, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let ch = sim_channel("sim", &sim);
        let mut app = Self::spawn_with(|c| {
            c.sandbox = false;
            c.channels = vec![ch];
            f(c);
        })
        .await;
        app.sim = Some(sim);
        app
    }

    pub fn sim(&self) -> &reelay_sim::Sim {
        &self
            .sim
            .as_ref()
            .expect("this test app has an external simulator")
            .sim
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.base_url, path)
    }

    pub fn authed(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(key)
            .header("X-Runway-Version", VERSION)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.authed(reqwest::Method::POST, path, &self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.authed(reqwest::Method::GET, path, &self.key)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.authed(reqwest::Method::DELETE, path, &self.key)
            .send()
            .await
            .unwrap()
    }

    /// Creates a task and returns its id, asserting a 200.
    pub async fn create(&self, endpoint: &str, body: &Value) -> String {
        let resp = self.post(&format!("/v1/{endpoint}"), body).await;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "create {endpoint} answered {status}: {v}");
        v["id"].as_str().unwrap().to_string()
    }

    pub async fn task(&self, id: &str) -> Value {
        let resp = self.get(&format!("/v1/tasks/{id}")).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Polls until the task is SUCCEEDED, FAILED or CANCELLED.
    pub async fn wait_terminal(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let t = self.task(id).await;
            if matches!(
                t["status"].as_str(),
                Some("SUCCEEDED" | "FAILED" | "CANCELLED")
            ) {
                return t;
            }
            assert!(Instant::now() < deadline, "task {id} did not finish: {t}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A second account with its own key.
    pub async fn other_account(&self) -> String {
        self.new_account("other", 1000).await.1
    }

    /// An account with `credits` and one key: (account id, key).
    pub async fn new_account(&self, name: &str, credits: i64) -> (String, String) {
        let account = self
            .server
            .store
            .create_account(name, credits)
            .await
            .unwrap();
        let key = reelay_store::generate_api_key();
        self.server
            .store
            .create_api_key(&account.id, &reelay_store::hash_api_key(&key), &key[..12])
            .await
            .unwrap();
        (account.id, key)
    }

    /// POST with a given key and extra headers.
    pub async fn post_as(
        &self,
        key: &str,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self.authed(reqwest::Method::POST, path, key).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// A task as the store holds it (any account's, deleted ones too).
    pub async fn stored(&self, id: &str) -> reelay_store::Task {
        self.server
            .store
            .get_task_by_id(id)
            .await
            .unwrap()
            .expect("the task exists")
    }

    pub async fn account(&self, id: &str) -> reelay_store::Account {
        self.server.store.get_account(id).await.unwrap().unwrap()
    }
}

pub fn gen4_turbo(prompt: &str) -> Value {
    json!({"model": "gen4_turbo", "promptImage": "https://example.com/a.jpg", "promptText": prompt,
           "ratio": "1280:720", "duration": 5})
}
