//! WAL checkpoints on their own thread. SQLite checkpoints by default inside the commit that
//! pushes the WAL past 1,000 pages, on the committing connection: here the one writer thread,
//! which then stops committing while it copies pages into the database file and fsyncs it.
//! This thread runs a PASSIVE checkpoint (it never blocks the writer or a reader) every
//! [`EVERY`], so the writer only appends to the WAL; the writer's own automatic checkpoint
//! stays as a backstop, at a far larger WAL ([`BACKSTOP_PAGES`]), should this thread fall behind.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;

use super::BUSY_TIMEOUT;
use crate::Result;

/// Each checkpoint ends in an fsync of the database file, whatever it copied: not too often.
const EVERY: Duration = Duration::from_millis(1000);

/// The writer's own automatic checkpoint: 20,000 pages of 4 KiB (~80 MB of WAL).
pub(super) const BACKSTOP_PAGES: u32 = 20_000;

/// Stops the thread when dropped or [`Checkpointer::stop`]ped.
pub(super) struct Checkpointer {
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("reelay-sqlite-ckpt".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(EVERY);
                    // (busy, WAL frames, frames copied): nothing to act on; a failure is
                    // retried at the next tick and the writer's backstop remains.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(error = %e, "WAL checkpoint failed; retrying");
                    }
                }
            })
            .map_err(|e| crate::StoreError::Corrupt(format!("starting the checkpointer: {e}")))?;
        Ok(Checkpointer { stop })
    }

    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}
