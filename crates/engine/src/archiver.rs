//! Copies a succeeded task's outputs into our media store before the upstream's signed URLs
//! expire, and derives the poster of every video output (its last frame on first request).
//!
//! Each output is fetched through the SSRF guard (the upstream's output hosts are not ours to
//! trust either), streamed part by part into the store with its SHA-256 computed on the way
//! (memory stays flat whatever the size), under a size cap, a whole-download timeout and an
//! idle timeout, and refused when its content type is not a media type. A transient failure
//! is retried a few times at once with backoff; if it persists, the tracker tries again on its
//! next poll (which also fetches fresh upstream URLs) until the archive deadline, after which
//! the task fails and is refunded (see `docs/media.md`). Each object is recorded in the store
//! as soon as it is complete, so a later attempt skips it and the sweeper knows it exists.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reelay_core::TaskState;
use reelay_media::types::{effective_content_type, extension, is_video};
use reelay_media::{FrameKind, FRAME_CONTENT_TYPE};
use reelay_store::{now_ms, MediaKind, MediaObject, Task};

use crate::backoff::backoff_ms;
use crate::Engine;

/// Why archiving did not complete.
#[derive(Debug)]
pub(crate) enum ArchiveError {
    /// Worth another try later (network, upstream 4xx/5xx, store hiccup).
    Transient(String),
    /// Will never work for these outputs (too large, not media, blocked destination).
    Permanent(String),
}

impl std::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveError::Transient(m) => write!(f, "{m}"),
            ArchiveError::Permanent(m) => write!(f, "{m} (permanent)"),
        }
    }
}

/// What the task shows once archived: names of its objects (`0.mp4`, `0.poster.jpg`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Archived {
    pub outputs: Vec<String>,
    pub poster: Option<String>,
    pub last_frame: Option<String>,
}

fn transient(e: impl std::fmt::Display) -> ArchiveError {
    ArchiveError::Transient(e.to_string())
}

type Body = std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The next chunk of a download, or a transient error when none comes within `idle`.
async fn next_chunk(
    body: &mut Body,
    idle: Duration,
    i: usize,
) -> Result<Option<Bytes>, ArchiveError> {
    match tokio::time::timeout(idle, body.next()).await {
        Err(_) => Err(transient(format!(
            "reading output {i}: nothing received for {idle:?}"
        ))),
        Ok(None) => Ok(None),
        Ok(Some(Ok(c))) => Ok(Some(c)),
        Ok(Some(Err(e))) => Err(transient(format!("reading output {i}: {e}"))),
    }
}

impl Engine {
    /// Archives every output of `task` (skipping those an earlier attempt completed).
    pub(crate) async fn archive(
        &self,
        task: &Task,
        urls: &[String],
    ) -> Result<Archived, ArchiveError> {
        let done = self
            .store
            .media_objects(&task.id)
            .await
            .map_err(transient)?;
        let find = |kind: MediaKind, i: usize| {
            done.iter()
                .find(|o| o.kind == kind && o.output_index == i as i64)
                .cloned()
        };
        let mut archived = Archived::default();
        let mut videos = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let object = match find(MediaKind::Output, i) {
                Some(o) => o,
                None => {
                    let mut o = self.fetch_output(task, i, url).await?;
                    if let (Some(text), true) = (&task.spec.watermark, is_video(&o.content_type)) {
                        self.watermark(&mut o, text).await?;
                    }
                    self.store
                        .record_media(std::slice::from_ref(&o))
                        .await
                        .map_err(transient)?;
                    o
                }
            };
            if is_video(&object.content_type) {
                videos.push(object.clone());
            }
            archived.outputs.push(object.name);
        }
        for video in videos {
            let i = video.output_index as usize;
            let frames = match find(MediaKind::Poster, i) {
                Some(p) => Some((p.name, FrameKind::LastFrame.object_name(i as i64))),
                None => self.derive_frames(&video).await,
            };
            if let Some((poster, last)) = frames {
                if archived.poster.is_none() {
                    archived.poster = Some(poster);
                    archived.last_frame = Some(last);
                }
            }
        }
        Ok(archived)
    }

    /// One output, with up to `fetch_attempts` tries.
    async fn fetch_output(
        &self,
        task: &Task,
        i: usize,
        url: &str,
    ) -> Result<MediaObject, ArchiveError> {
        let attempts = self.archive.config.fetch_attempts.max(1);
        let mut n = 0;
        loop {
            match self.fetch_once(task, i, url).await {
                Err(ArchiveError::Transient(m)) if n + 1 < attempts => {
                    let wait = backoff_ms(n as i64, self.config.backoff_base_ms, 10_000);
                    tracing::info!(task = %task.id, output = i, error = %m, wait_ms = wait, "output download failed; retrying");
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }

    async fn fetch_once(
        &self,
        task: &Task,
        i: usize,
        url: &str,
    ) -> Result<MediaObject, ArchiveError> {
        let started = std::time::Instant::now();
        let cap = self.config.max_output_bytes;
        let idle = Duration::from_secs(self.archive.config.fetch_idle_timeout_seconds);
        let req = self
            .archive
            .fetcher
            .request(reqwest::Method::GET, url)
            .map_err(|r| ArchiveError::Permanent(format!("output {i}: URL refused: {r}")))?;
        let resp = req
            .send()
            .await
            .map_err(|e| match reelay_outbound::refusal_of(&e) {
                Some(r) if r.code() != "resolve_failed" => {
                    ArchiveError::Permanent(format!("output {i}: destination refused: {r}"))
                }
                _ => transient(format!("fetching output {i}: {e}")),
            })?;
        if !resp.status().is_success() {
            // 403/404 are what an expired signed URL answers: the next poll brings a fresh one.
            return Err(transient(format!(
                "fetching output {i}: upstream answered {}",
                resp.status()
            )));
        }
        if resp.content_length().is_some_and(|n| n > cap) {
            return Err(ArchiveError::Permanent(format!(
                "output {i} is larger than the {cap}-byte cap"
            )));
        }
        let declared = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut body: Body = Box::pin(resp.bytes_stream());
        // The first bytes decide the type when the upstream does not say.
        let first = next_chunk(&mut body, idle, i).await?.unwrap_or_default();
        let content_type = effective_content_type(&declared, &first);
        if !self.archive.config.accepts(&content_type) {
            return Err(ArchiveError::Permanent(format!(
                "output {i} has content type {content_type:?}, which is not an accepted media type"
            )));
        }
        let name = format!("{i}.{}", extension(&content_type, url));
        let key = format!("{}/{name}", task.id);
        let mut upload = self
            .archive
            .media
            .upload(&key, &content_type)
            .await
            .map_err(transient)?;
        let mut chunk = Some(first);
        while let Some(c) = chunk.take() {
            if upload.size() + c.len() as u64 > cap {
                upload.abort().await;
                return Err(ArchiveError::Permanent(format!(
                    "output {i} is larger than the {cap}-byte cap"
                )));
            }
            if !c.is_empty() {
                if let Err(e) = upload.write(c).await {
                    upload.abort().await;
                    return Err(transient(format!("storing output {i}: {e}")));
                }
            }
            match next_chunk(&mut body, idle, i).await {
                Ok(c) => chunk = c,
                Err(e) => {
                    upload.abort().await;
                    return Err(e);
                }
            }
        }
        let stored = upload
            .finish()
            .await
            .map_err(|e| transient(format!("storing output {i}: {e}")))?;
        let ms = started.elapsed().as_millis() as u64;
        metrics::counter!("reelay_archive_bytes_total").increment(stored.size);
        tracing::info!(task = %task.id, output = i, bytes = stored.size, ms, %content_type, "output archived");
        Ok(MediaObject {
            task_id: task.id.clone(),
            name,
            kind: MediaKind::Output,
            output_index: i as i64,
            content_type,
            size: stored.size as i64,
            sha256: stored.sha256,
            source_url: Some(url.to_string()),
            created_at: now_ms(),
        })
    }

    /// Draws the task's watermark into an archived video, replacing the object (before it is
    /// recorded, so a crash in between only means fetching it again). Without ffmpeg the
    /// video stays as it is, with one warning at start, like the frames.
    async fn watermark(&self, object: &mut MediaObject, text: &str) -> Result<(), ArchiveError> {
        let Some(ffmpeg) = self.archive.frames.ffmpeg() else {
            return Ok(());
        };
        let key = object.key();
        let input = self
            .archive
            .media
            .reader_input(&key)
            .await
            .map_err(transient)?;
        let dir = tempfile::tempdir().map_err(transient)?;
        let ext = object.name.rsplit('.').next().unwrap_or("mp4");
        let out = dir.path().join(format!("marked.{ext}"));
        ffmpeg
            .watermark(&input, text, &out)
            .await
            .map_err(|e| transient(format!("watermarking output {}: {e}", object.output_index)))?;
        // Streamed back in, like a download: memory stays flat whatever the size.
        let mut file = tokio::fs::File::open(&out).await.map_err(transient)?;
        let mut upload = self
            .archive
            .media
            .upload(&key, &object.content_type)
            .await
            .map_err(transient)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            use tokio::io::AsyncReadExt;
            let n = file.read(&mut buf).await.map_err(transient)?;
            if n == 0 {
                break;
            }
            upload
                .write(Bytes::copy_from_slice(&buf[..n]))
                .await
                .map_err(transient)?;
        }
        let stored = upload.finish().await.map_err(transient)?;
        object.size = stored.size as i64;
        object.sha256 = stored.sha256;
        Ok(())
    }

    /// The poster of an archived video, and the name its last frame will have, as object
    /// names; `None` when no deriver reads the video (the task succeeds without frames). The
    /// last frame (a whole GOP of decoding) is made on its first request, not here:
    /// [`Engine::frame_on_demand`].
    async fn derive_frames(&self, video: &MediaObject) -> Option<(String, String)> {
        if !self.archive.frames.is_enabled() {
            return None;
        }
        let poster = match self.derive_frame(video, FrameKind::Poster).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(task = %video.task_id, output = video.output_index, error = %e, "no poster or last frame");
                return None;
            }
        };
        Some((
            poster.name,
            FrameKind::LastFrame.object_name(video.output_index),
        ))
    }

    /// Derives, stores and records one frame of an archived video.
    async fn derive_frame(
        &self,
        video: &MediaObject,
        kind: FrameKind,
    ) -> Result<MediaObject, String> {
        let media = &self.archive.media;
        let bytes = self
            .archive
            .frames
            .derive(media, &video.key(), kind)
            .await
            .map_err(|e| e.to_string())?;
        let name = kind.object_name(video.output_index);
        let stored = media
            .put(
                &format!("{}/{name}", video.task_id),
                FRAME_CONTENT_TYPE,
                bytes,
            )
            .await
            .map_err(|e| format!("storing the {} failed: {e}", kind.label()))?;
        let object = MediaObject {
            task_id: video.task_id.clone(),
            name,
            kind: match kind {
                FrameKind::Poster => MediaKind::Poster,
                FrameKind::LastFrame => MediaKind::LastFrame,
                FrameKind::Spritesheet => MediaKind::Spritesheet,
            },
            output_index: video.output_index,
            content_type: FRAME_CONTENT_TYPE.into(),
            size: stored.size as i64,
            sha256: stored.sha256,
            source_url: None,
            created_at: now_ms(),
        };
        self.store
            .record_media(std::slice::from_ref(&object))
            .await
            .map_err(|e| format!("recording the {} failed: {e}", kind.label()))?;
        Ok(object)
    }

    /// A frame the task shows but nobody asked for yet (the last frame is derived on its
    /// first request and kept): derives it from the archived video now. `Ok(None)` when `name`
    /// is not such a frame of this succeeded task with live media, or it cannot be derived.
    /// Two first requests at once both derive it; both record the same picture.
    pub(crate) async fn frame_on_demand(
        &self,
        task: &Task,
        name: &str,
    ) -> reelay_store::Result<Option<MediaObject>> {
        let Some((index, kind)) = FrameKind::from_object_name(name) else {
            return Ok(None);
        };
        // Posters and last frames are the ones the task records; a spritesheet exists for any
        // video output (nothing records it until it is asked for).
        let shown = match kind {
            FrameKind::Poster => task.poster.as_deref() == Some(name),
            FrameKind::LastFrame => task.last_frame.as_deref() == Some(name),
            FrameKind::Spritesheet => true,
        };
        let live = task.expires_at.is_none_or(|e| e > now_ms());
        if task.state != TaskState::Succeeded || !shown || !live {
            return Ok(None);
        }
        let objects = self.store.media_objects(&task.id).await?;
        let Some(video) = objects.iter().find(|o| {
            o.kind == MediaKind::Output && o.output_index == index && is_video(&o.content_type)
        }) else {
            return Ok(None);
        };
        match self.derive_frame(video, kind).await {
            Ok(o) => {
                tracing::info!(task = %task.id, name, "frame derived on its first request");
                Ok(Some(o))
            }
            Err(e) => {
                tracing::warn!(task = %task.id, name, error = %e, "a frame could not be derived");
                Ok(None)
            }
        }
    }
}
