//! The one writer of a SQLite database, with group commit.
//!
//! SQLite has one writer at a time whatever we do, so every write of the store runs on one
//! thread that owns the write connection. Requests hand it a job (a closure over the
//! connection) and wait for the answer; the thread takes every job that is waiting, runs them
//! one after another inside ONE transaction, commits once and only then answers each. Under load
//! the cost of an accept is its few statements inside a shared commit; there is one hand-off
//! to the thread per job (not one per statement, as with an async driver's worker thread), and
//! a lone job commits at once (the writer never waits for company).
//!
//! Each job runs inside its own savepoint: a job that fails, panics or decides to write nothing
//! (a refusal) is rolled back to it alone, and the others in the batch are unaffected. Jobs see
//! the writes of the jobs before them in the batch, exactly as if each had committed on its own,
//! so conditional updates (credit holds, caps, idempotency keys) stay exact. If the commit
//! fails, or SQLite abandons the transaction (disk full, I/O error), every job of the batch gets
//! the error: nothing is answered as written before it is.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};

use rusqlite::Connection;

use crate::{Result, StoreError};

/// Most jobs one transaction takes; the rest wait for the next commit (bounds the latency a
/// burst adds to its first job and the work lost to one failed commit).
const MAX_BATCH: usize = 512;

/// What a job sees: the connection, inside its own savepoint of the shared transaction.
pub(super) struct Work<'c> {
    pub conn: &'c Connection,
    discard: bool,
    enqueued: bool,
}

impl Work<'_> {
    /// Rolls this job's writes back at its end (a refusal that must leave nothing behind).
    pub fn discard(&mut self) {
        self.discard = true;
    }

    /// The job wrote a webhook message: the deliverers are woken after the commit.
    pub fn enqueued(&mut self, yes: bool) {
        self.enqueued |= yes;
    }
}

/// A job: run once inside the batch, answered once after it (with the batch's error if it
/// failed; a job the batch never reached is answered with that error without running).
trait Job: Send {
    fn run(&mut self, work: &mut Work<'_>);
    fn answer(self: Box<Self>, failed: Option<rusqlite::Error>);
}

struct Pending<T, F> {
    f: Option<F>,
    outcome: Option<Result<(T, bool)>>,
    reply: tokio::sync::oneshot::Sender<Result<(T, bool)>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Work<'_>) -> Result<T> + Send + 'static,
{
    fn run(&mut self, work: &mut Work<'_>) {
        let Some(f) = self.f.take() else { return };
        let outcome = match catch_unwind(AssertUnwindSafe(|| f(work))) {
            Ok(r) => r,
            Err(_) => Err(StoreError::Corrupt("a store write panicked".into())),
        };
        if outcome.is_err() {
            work.discard();
        }
        self.outcome = Some(outcome.map(|v| (v, work.enqueued)));
    }

    fn answer(self: Box<Self>, failed: Option<rusqlite::Error>) {
        let answer = match (failed, self.outcome) {
            (Some(e), _) => Err(StoreError::from(e)),
            (None, Some(outcome)) => outcome,
            (None, None) => Err(closed()),
        };
        let _ = self.reply.send(answer);
    }
}

enum Message {
    Job(Box<dyn Job>),
    Close(tokio::sync::oneshot::Sender<()>),
}

/// Rows changed by committed transactions (see [`crate::Store::committed_writes`]), counted
/// with SQLite's update hook; changes rolled back (a whole batch, or one job's savepoint) are
/// not counted.
#[derive(Default)]
pub(super) struct WriteCount {
    pending: AtomicU64,
    committed: AtomicU64,
    /// Transactions committed, and jobs answered as written in them.
    commits: AtomicU64,
    jobs: AtomicU64,
}

impl WriteCount {
    pub fn committed(&self) -> u64 {
        self.committed.load(Relaxed)
    }

    /// (commits, jobs committed in them).
    pub fn commits(&self) -> (u64, u64) {
        (self.commits.load(Relaxed), self.jobs.load(Relaxed))
    }
}

/// The handle requests use; cheap to clone. The thread ends when the store is closed or the
/// last handle is dropped.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Message>,
}

impl Writer {
    /// Starts the writer thread on `conn` (already configured and migrated).
    pub fn start(conn: Connection, count: Arc<WriteCount>) -> std::io::Result<Writer> {
        let hook = count.clone();
        conn.update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, _: &str, _: i64| {
                hook.pending.fetch_add(1, Relaxed);
            },
        ));
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("reelay-sqlite-writer".into())
            .spawn(move || run(conn, rx, &count))?;
        Ok(Writer { jobs: tx })
    }

    /// Runs `f` in the next batch; its answer once the batch committed. The flag says whether
    /// the job enqueued a webhook message.
    pub async fn run<T, F>(&self, f: F) -> Result<(T, bool)>
    where
        T: Send + 'static,
        F: FnOnce(&mut Work<'_>) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Box::new(Pending {
            f: Some(f),
            outcome: None,
            reply,
        });
        self.jobs.send(Message::Job(job)).map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    /// Stops the thread after the jobs already queued and closes the connection.
    pub async fn close(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.jobs.send(Message::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn closed() -> StoreError {
    StoreError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISUSE),
        Some("the database is closed".into()),
    ))
}

fn run(conn: Connection, rx: mpsc::Receiver<Message>, count: &WriteCount) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut closing = None;
    while closing.is_none() {
        match rx.recv() {
            Ok(Message::Job(job)) => batch.push(job),
            Ok(Message::Close(done)) => closing = Some(done),
            Err(_) => break,
        }
        while closing.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit_batch(&conn, &mut batch, count);
        }
    }
    drop(conn);
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// A transaction-control statement, prepared once: several run per job, and parsing each
/// again (`execute_batch`) cost more than the savepoint itself.
fn control(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Runs the jobs in one transaction and answers each after the commit.
fn commit_batch(conn: &Connection, jobs: &mut Vec<Box<dyn Job>>, count: &WriteCount) {
    count.pending.store(0, Relaxed);
    if let Err(e) = control(conn, "BEGIN IMMEDIATE") {
        for job in jobs.drain(..) {
            job.answer(Some(copy(&e)));
        }
        return;
    }
    let mut failure = None;
    for job in jobs.iter_mut() {
        let before = count.pending.load(Relaxed);
        if let Err(e) = control(conn, "SAVEPOINT job") {
            failure = Some(e);
            break;
        }
        let mut work = Work {
            conn,
            discard: false,
            enqueued: false,
        };
        job.run(&mut work);
        let end = if work.discard {
            control(conn, "ROLLBACK TO job")
                .and_then(|()| control(conn, "RELEASE job"))
                .map(|()| count.pending.store(before, Relaxed))
        } else {
            control(conn, "RELEASE job")
        };
        // SQLite rolls a transaction back by itself on some errors (disk full, I/O): then the
        // jobs before this one are gone too, and must not be answered as written.
        if let Err(e) = end.and_then(|()| lost_transaction(conn)) {
            failure = Some(e);
            break;
        }
    }
    let failure = match failure {
        Some(e) => Some(e),
        None => control(conn, "COMMIT").err(),
    };
    match failure {
        None => {
            count
                .committed
                .fetch_add(count.pending.swap(0, Relaxed), Relaxed);
            count.commits.fetch_add(1, Relaxed);
            count.jobs.fetch_add(jobs.len() as u64, Relaxed);
            for job in jobs.drain(..) {
                job.answer(None);
            }
        }
        Some(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            count.pending.store(0, Relaxed);
            for job in jobs.drain(..) {
                job.answer(Some(copy(&e)));
            }
        }
    }
}

/// An error if the connection is no longer inside the batch's transaction.
fn lost_transaction(conn: &Connection) -> rusqlite::Result<()> {
    if conn.is_autocommit() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some("the database rolled the transaction back".into()),
        ));
    }
    Ok(())
}

/// One error for each job of a failed batch (`rusqlite::Error` is not `Clone`).
fn copy(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            rusqlite::Error::SqliteFailure(*code, msg.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}
