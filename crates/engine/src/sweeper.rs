//! Retention: deletes the media of tasks whose `expires_at` has passed (retention over, the
//! task deleted by its client, or its archiving abandoned), in bounded batches, then marks them
//! purged. Serving already answers 404 from the moment of expiry; the sweep frees the space.
//!
//! Safe with several instances: deleting an object twice is not an error, and a task is marked
//! purged only once every object recorded for it is gone.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reelay_store::now_ms;

use crate::{Engine, EngineError};

/// Objects deleted at once within a batch.
const DELETE_CONCURRENCY: usize = 8;

impl Engine {
    pub(crate) async fn sweep_loop(self: Arc<Engine>) {
        let mut stop = self.shutdown.subscribe();
        let every = Duration::from_millis(self.archive.config.sweep_interval_ms);
        loop {
            if *stop.borrow() {
                return;
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tasks = n, "expired media deleted"),
                Err(e) => tracing::warn!(error = %e, "sweeping expired media failed; will retry"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Sweeps until nothing expired is left, one batch at a time; returns the tasks purged.
    pub(crate) async fn sweep(&self) -> Result<usize, EngineError> {
        self.sweep_uploads().await?;
        let batch = self.archive.config.sweep_batch;
        let mut total = 0;
        loop {
            let ids = self.store.expired_media(now_ms(), batch).await?;
            let mut progressed = 0;
            for id in &ids {
                if self.purge(id).await? {
                    progressed += 1;
                }
            }
            total += progressed;
            // A short batch is the last one; a batch where nothing could be deleted (the store
            // refusing) is left for the next tick rather than spun on.
            if (ids.len() as i64) < batch || progressed == 0 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Deletes expired uploads (Runway's ephemeral ones), a batch at a time; an upload whose
    /// bytes could not be deleted stays recorded for the next tick.
    async fn sweep_uploads(&self) -> Result<(), EngineError> {
        let batch = self.archive.config.sweep_batch;
        loop {
            let expired = self.store.expired_uploads(now_ms(), batch).await?;
            let media = &self.archive.media;
            let keys: Vec<(String, String)> =
                expired.iter().map(|u| (u.id.clone(), u.key())).collect();
            let gone: Vec<String> = futures::stream::iter(keys)
                .map(|(id, key)| async move {
                    match media.delete(&key).await {
                        Ok(()) => Some(id),
                        Err(e) if e.is_not_found() => Some(id),
                        Err(e) => {
                            tracing::warn!(upload = %id, error = %e, "could not delete an expired upload");
                            None
                        }
                    }
                })
                .buffer_unordered(DELETE_CONCURRENCY)
                .filter_map(|x| async move { x })
                .collect()
                .await;
            self.store.forget_uploads(&gone).await?;
            if (expired.len() as i64) < batch || gone.is_empty() {
                return Ok(());
            }
        }
    }

    /// Deletes one task's objects; true when they are all gone.
    async fn purge(&self, task_id: &str) -> Result<bool, EngineError> {
        let objects = self.store.media_objects(task_id).await?;
        let media = &self.archive.media;
        let results: Vec<(String, Result<(), reelay_media::MediaError>)> =
            futures::stream::iter(objects)
                .map(|o| async move {
                    let r = media.delete(&o.key()).await;
                    (o.name, r)
                })
                .buffer_unordered(DELETE_CONCURRENCY)
                .collect()
                .await;
        let mut deleted = Vec::new();
        let mut failed = 0;
        for (name, r) in results {
            match r {
                Ok(()) => deleted.push(name),
                Err(e) => {
                    failed += 1;
                    tracing::warn!(task = task_id, object = %name, error = %e, "could not delete an expired object");
                }
            }
        }
        self.store.media_purged(task_id, &deleted, now_ms()).await?;
        Ok(failed == 0)
    }
}
