//! The harness of the store's contract suite: every test body takes a [`Db`] and runs once on
//! SQLite and once on PostgreSQL, against `Arc<dyn Store>`, so both backends answer to the
//! same tests.
//!
//! PostgreSQL runs when `REELAY_TEST_DATABASE_URL` names a server (an admin URL, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`): each test gets a fresh database of its own
//! (`reelay_t_<uuid>`, dropped when the test ends), so tests run in parallel. Without the
//! variable the PostgreSQL variants pass without running and say so on stderr, unless
//! `REELAY_REQUIRE_PG_TESTS=1`, when they fail.

#![allow(dead_code)] // each test binary uses its own part of the harness

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use reelay_core::{Catalog, TaskSpec, TaskState};
use reelay_store::postgres::PgStore;
use reelay_store::sqlite::SqliteStore;
use reelay_store::{Callbacks, NewTask, Store, Task, TaskEvent, TaskUpdate};
use serde_json::json;
use sqlx::Connection;
use tempfile::TempDir;

pub const PG_URL_VAR: &str = "REELAY_TEST_DATABASE_URL";
pub const REQUIRE_PG_VAR: &str = "REELAY_REQUIRE_PG_TESTS";
/// Connections of each extra instance a test opens on PostgreSQL: tests open several
/// instances at once and run two at a time, and the server allows 100 connections.
const INSTANCE_CONNECTIONS: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One store handle, of either backend (for what the trait does not have: closing).
#[derive(Clone)]
pub enum Handle {
    Sqlite(Arc<SqliteStore>),
    Pg(Arc<PgStore>),
}

impl Handle {
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Handle::Sqlite(s) => s.clone(),
            Handle::Pg(s) => s.clone(),
        }
    }

    pub async fn close(&self) {
        match self {
            Handle::Sqlite(s) => s.close().await,
            Handle::Pg(s) => s.close().await,
        }
    }
}

/// A fresh database and a store open on it.
pub struct Db {
    pub kind: Kind,
    pub url: String,
    pub store: Arc<dyn Store>,
    handle: Handle,
    dir: Option<TempDir>,
    pg: Option<PgDatabase>,
}

impl Db {
    /// A fresh database of `kind`; `None` when PostgreSQL is not configured (and not required).
    pub async fn of(kind: Kind) -> Option<Db> {
        match kind {
            Kind::Sqlite => Some(Db::sqlite().await),
            Kind::Postgres => Db::postgres().await,
        }
    }

    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Arc::new(SqliteStore::open(&url).await.expect("open sqlite store"));
        Db {
            kind: Kind::Sqlite,
            url,
            store: store.clone(),
            handle: Handle::Sqlite(store),
            dir: Some(dir),
            pg: None,
        }
    }

    pub async fn postgres() -> Option<Db> {
        let admin = admin_url()?;
        let pg = PgDatabase::create(&admin).await;
        let store = Arc::new(PgStore::open(&pg.url).await.expect("open postgres store"));
        Some(Db {
            kind: Kind::Postgres,
            url: pg.url.clone(),
            store: store.clone(),
            handle: Handle::Pg(store),
            dir: None,
            pg: Some(pg),
        })
    }

    /// The store as its concrete type (for what only one backend has).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Another instance on the same database: another handle on the file for SQLite, another
    /// pool (another "server") for PostgreSQL.
    pub async fn open_another(&self) -> Handle {
        self.open_with(None).await
    }

    /// Another instance, with the dialects' callback rules.
    pub async fn open_with(&self, callbacks: Option<Arc<dyn Callbacks>>) -> Handle {
        match self.kind {
            Kind::Sqlite => {
                let mut s = SqliteStore::open(&self.url).await.expect("another handle");
                if let Some(cb) = callbacks {
                    s = s.with_callbacks(cb);
                }
                Handle::Sqlite(Arc::new(s))
            }
            Kind::Postgres => {
                let mut s = PgStore::open_with(&self.url, INSTANCE_CONNECTIONS)
                    .await
                    .expect("another instance");
                if let Some(cb) = callbacks {
                    s = s.with_callbacks(cb);
                }
                Handle::Pg(Arc::new(s))
            }
        }
    }

    /// Closes the store and opens it again on the same database (a restart).
    pub async fn reopen(&mut self) {
        self.handle.close().await;
        self.handle = match self.kind {
            Kind::Sqlite => Handle::Sqlite(Arc::new(
                SqliteStore::open(&self.url).await.expect("reopen"),
            )),
            Kind::Postgres => Handle::Pg(Arc::new(PgStore::open(&self.url).await.expect("reopen"))),
        };
        self.store = self.handle.store();
    }

    /// The SQLite database file.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("t.db"))
    }

    /// Everything stored, as bytes to search: the database files for SQLite, the text of
    /// every row of every table for PostgreSQL.
    pub async fn raw_contents(&self) -> Vec<u8> {
        match self.kind {
            Kind::Sqlite => {
                let path = self.sqlite_path().expect("sqlite path");
                let mut bytes = Vec::new();
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let p = format!("{}{suffix}", path.display());
                    if let Ok(b) = std::fs::read(&p) {
                        bytes.extend(b);
                    }
                }
                bytes
            }
            Kind::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap();
                let mut bytes = Vec::new();
                for t in tables {
                    let rows: Vec<String> =
                        sqlx::query_scalar(&format!("SELECT t::text FROM \"{t}\" t"))
                            .fetch_all(&mut conn)
                            .await
                            .unwrap();
                    for r in rows {
                        bytes.extend(r.into_bytes());
                    }
                }
                conn.close().await.ok();
                bytes
            }
        }
    }

    /// Migrations the database records as applied, and the migration files of its backend.
    pub async fn migrations(&self) -> (i64, usize) {
        let (n, dir) = match self.kind {
            Kind::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
                let n = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
                pool.close().await;
                (n, "sqlite")
            }
            Kind::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                let n = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.ok();
                (n, "postgres")
            }
        };
        let files = std::fs::read_dir(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir),
        )
        .unwrap()
        .count();
        (n, files)
    }

    /// Closes the store and drops the PostgreSQL database.
    pub async fn close(self) {
        self.handle.close().await;
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
    }

    fn pg(&self) -> Option<PgDatabase> {
        self.pg.clone()
    }
}

/// The admin URL, or `None` (said once per test binary) when PostgreSQL tests are skipped.
fn admin_url() -> Option<String> {
    static SKIPPED: Once = Once::new();
    match std::env::var(PG_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var(REQUIRE_PG_VAR).as_deref() == Ok("1") {
                panic!("{REQUIRE_PG_VAR}=1 but {PG_URL_VAR} is not set");
            }
            // Written past the test harness's capture, so the skip shows in every run.
            SKIPPED.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "note: PostgreSQL variants of the store tests SKIPPED ({PG_URL_VAR} is not set, \
                     e.g. postgres://postgres@127.0.0.1:5432/postgres)"
                );
            });
            None
        }
    }
}

/// A database of its own for one PostgreSQL test.
#[derive(Clone)]
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin: &str) -> PgDatabase {
        let name = format!("reelay_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .expect("connect to the admin database");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        conn.close().await.ok();
        PgDatabase {
            admin: admin.to_string(),
            url: with_database(admin, &name),
            name,
        }
    }

    async fn drop_database(&self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            // FORCE: connections a dropped pool has not closed yet are ended.
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
            conn.close().await.ok();
        }
    }
}

/// `url` with its database replaced by `name` (`postgres://u@h:p/db?x` → `.../name?x`).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Runs `body` on a fresh PostgreSQL database, then drops the database (also when the body
/// panics: the panic is raised again after).
pub async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(db) = Db::postgres().await else {
        return;
    };
    let pg = db.pg().expect("a postgres database");
    let outcome = tokio::spawn(body(db)).await;
    pg.drop_database().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("test task failed: {e}");
    }
}

/// Runs `body` on a fresh SQLite database.
pub async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = ()>,
{
    body(Db::sqlite().await).await
}

/// Whether the PostgreSQL variants run (the skip is said once when they do not).
pub fn postgres_configured() -> bool {
    admin_url().is_some()
}

/// Declares, for each `async fn name(db: Db)`, the tests `name::sqlite` and `name::postgres`.
/// `multi:` runs them on a multi-threaded runtime (for the concurrency tests).
#[allow(unused_macros)] // not every binary uses it
macro_rules! on_both {
    (multi: $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
            async fn sqlite() {
                crate::common::on_sqlite(super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
            async fn postgres() {
                crate::common::on_postgres(super::$name).await
            }
        }
    )*};
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                crate::common::on_sqlite(super::$name).await
            }
            #[tokio::test]
            async fn postgres() {
                crate::common::on_postgres(super::$name).await
            }
        }
    )*};
}

// ---------------------------------------------------------------- shared helpers

pub fn spec() -> TaskSpec {
    TaskSpec::parse(
        &Catalog::builtin(),
        "image_to_video",
        &json!({"model":"gen4_turbo","promptImage":"https://example.com/a.jpg","ratio":"1280:720","duration":5}),
    )
    .expect("valid spec")
}

pub fn new_task(account_id: &str) -> NewTask {
    NewTask {
        id: uuid::Uuid::now_v7().to_string(),
        account_id: account_id.to_string(),
        key_id: None,
        dialect: reelay_core::Dialect::Runway,
        spec: spec(),
    }
}

pub async fn insert(store: &dyn Store, account_id: &str) -> Task {
    let task = store
        .insert_task(new_task(account_id))
        .await
        .expect("insert task");
    assert_eq!(task.state, TaskState::Queued);
    task
}

pub async fn get(store: &dyn Store, id: &str) -> Task {
    store
        .get_task_by_id(id)
        .await
        .expect("get task")
        .expect("task exists")
}

pub async fn events(store: &dyn Store, id: &str) -> Vec<TaskEvent> {
    store.task_events(id).await.expect("task events")
}

/// Moves a task along `path` (each step must apply), returning the final task.
pub async fn drive(store: &dyn Store, id: &str, path: &[TaskState]) -> Task {
    let mut task = get(store, id).await;
    for &to in path {
        let from = task.state;
        task = store
            .update_task(TaskUpdate::new(id, &[from]).to(to))
            .await
            .expect("update")
            .unwrap_or_else(|| panic!("{from} -> {to} should apply"));
        assert_eq!(task.state, to);
    }
    task
}

pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
