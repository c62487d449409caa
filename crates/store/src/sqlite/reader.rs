//! Point reads on the caller's own thread: a few read-only rusqlite connections to the WAL
//! database, taken from a stack and put back. A point read (a task by id, a key by hash, the
//! next due time) takes a few microseconds, less than handing it to another thread and waking
//! the caller again, which is what a pool of connections owned by worker threads costs per
//! statement; and in WAL mode a reader never waits for the writer. So these run inline on the
//! tokio worker, like a short lock. Scans whose length the caller does not bound (admin
//! listings, the ledger check) stay on sqlx's pool, off the runtime's threads.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

use super::BUSY_TIMEOUT;
use crate::Result;

pub(super) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Connections kept open between reads: one per runtime thread is what can be in use at once.
const KEEP: usize = 16;

impl Readers {
    pub(super) fn new(path: &Path) -> Result<Readers> {
        let readers = Readers {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        };
        // Fail at open, not at the first read, when the file cannot be read.
        let first = readers.connect()?;
        readers.put_back(first);
        Ok(readers)
    }

    fn connect(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    fn put_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < KEEP {
            idle.push(conn);
        }
    }

    /// Runs `f` on an idle connection (a new one when none is idle), on this thread.
    pub(super) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&conn);
        self.put_back(conn);
        out
    }
}
