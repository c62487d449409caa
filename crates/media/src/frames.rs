//! Poster (first frame) and last frame of a video. [`Frames`] derives H.264-in-MP4 videos (what
//! Runway makes) in process (`crate::h264`), and everything else with the `ffmpeg` binary when
//! it is there; ffmpeg also draws watermarks. ffmpeg is found at start; without it, videos of
//! other codecs get no frames (one warning), never a task failure. Derivations are bounded in
//! number and time.

use std::io::{Read, Seek, SeekFrom};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use tokio::process::Command;
use tokio::sync::Semaphore;

use crate::h264;
use crate::MediaStore;

/// Content type of the derived images.
pub const FRAME_CONTENT_TYPE: &str = "image/jpeg";
/// Their extension.
pub const FRAME_EXT: &str = "jpg";

/// A derived image larger than this is refused (a 4K JPEG is a few MB).
const MAX_FRAME_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame derivation did not finish within {0:?}")]
    Timeout(Duration),
    #[error("ffmpeg failed: {0}")]
    Failed(String),
    #[error("reading the video: {0}")]
    Io(#[from] std::io::Error),
    /// Not an H.264 MP4: the in-process deriver does not know it.
    #[error("not an H.264 MP4 ({0})")]
    Unsupported(String),
    /// An H.264 MP4 that cannot be decoded (broken, truncated, absurd sizes).
    #[error("undecodable video: {0}")]
    Invalid(String),
    #[error("no deriver for this video (not H.264 in MP4, and ffmpeg is not available): {0}")]
    Unavailable(String),
}

/// Which frame of a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// The first frame.
    Poster,
    /// The last frame (what a continuation starts from).
    LastFrame,
    /// A grid of frames spread across the video (OpenAI's `spritesheet` variant).
    Spritesheet,
}

impl FrameKind {
    /// The label in the object name: `{i}.poster.jpg`, `{i}.last.jpg`.
    pub fn label(self) -> &'static str {
        match self {
            FrameKind::Poster => "poster",
            FrameKind::LastFrame => "last",
            FrameKind::Spritesheet => "sprite",
        }
    }

    /// The name of this frame of output `index`.
    pub fn object_name(self, index: i64) -> String {
        format!("{index}.{}.{FRAME_EXT}", self.label())
    }

    /// The output index and kind an [`object_name`](Self::object_name) names.
    pub fn from_object_name(name: &str) -> Option<(i64, FrameKind)> {
        let (index, rest) = name.split_once('.')?;
        let kind = [
            FrameKind::Poster,
            FrameKind::LastFrame,
            FrameKind::Spritesheet,
        ]
        .into_iter()
        .find(|k| {
            rest.strip_suffix(FRAME_EXT)
                .and_then(|r| r.strip_suffix('.'))
                == Some(k.label())
        })?;
        let index: i64 = index.parse().ok()?;
        (index >= 0 && kind.object_name(index) == name).then_some((index, kind))
    }
}

/// The frame deriver: in process for H.264 MP4s, ffmpeg (when present) for the rest. Cheap
/// to clone.
#[derive(Clone, Debug)]
pub struct Frames {
    enabled: bool,
    ffmpeg: Option<Ffmpeg>,
    timeout: Duration,
    /// In-process derivations at once: each holds a core.
    permits: Arc<Semaphore>,
    limits: h264::Limits,
}

impl Frames {
    /// Derives frames, with `ffmpeg` for what is not H.264 in MP4; at most `concurrency`
    /// in-process derivations at once, each stopped after `timeout`.
    pub fn new(ffmpeg: Option<Ffmpeg>, timeout: Duration, concurrency: usize) -> Frames {
        Frames {
            enabled: true,
            ffmpeg,
            timeout,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            limits: h264::Limits::default(),
        }
    }

    /// Derives nothing (`media.derive_frames = false`); no watermarks either.
    pub fn disabled() -> Frames {
        Frames {
            enabled: false,
            ..Frames::new(None, Duration::from_secs(1), 1)
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// ffmpeg, for watermarks; `None` when it is not installed.
    pub fn ffmpeg(&self) -> Option<&Ffmpeg> {
        self.ffmpeg.as_ref()
    }

    /// One frame of the video stored at `key`, as JPEG bytes.
    pub async fn derive(
        &self,
        media: &MediaStore,
        key: &str,
        kind: FrameKind,
    ) -> Result<Bytes, FrameError> {
        if !self.enabled {
            return Err(FrameError::Unavailable("frame derivation is off".into()));
        }
        let in_process = self.in_process(media, key, kind).await;
        match (in_process, &self.ffmpeg) {
            (Ok(b), _) => Ok(b),
            (Err(e @ FrameError::Timeout(_)), _) => Err(e),
            (Err(e), Some(ffmpeg)) => {
                tracing::debug!(key, error = %e, "in-process frame derivation failed; trying ffmpeg");
                let input = media.reader_input(key).await.map_err(io_error)?;
                ffmpeg.frame(&input, kind).await
            }
            (Err(FrameError::Unsupported(m)), None) => Err(FrameError::Unavailable(m)),
            (Err(e), None) => Err(e),
        }
    }

    async fn in_process(
        &self,
        media: &MediaStore,
        key: &str,
        kind: FrameKind,
    ) -> Result<Bytes, FrameError> {
        let _permit = self.permits.acquire().await.expect("never closed");
        let size = media
            .head(key)
            .await
            .map_err(io_error)?
            .ok_or_else(|| FrameError::Io(std::io::ErrorKind::NotFound.into()))?
            .size;
        let (limits, timeout) = (self.limits, self.timeout);
        let job = match media.local_file(key) {
            Some(path) => tokio::task::spawn_blocking(move || {
                let file = std::io::BufReader::new(std::fs::File::open(path)?);
                h264::derive(file, size, kind, limits, timeout)
            }),
            None => {
                let reader = StoreReader::new(media.clone(), key.to_string(), size);
                tokio::task::spawn_blocking(move || {
                    h264::derive(reader, size, kind, limits, timeout)
                })
            }
        };
        job.await
            .map_err(|e| FrameError::Invalid(format!("the deriving thread failed: {e}")))?
    }
}

impl Frames {
    /// One frame of a video held in memory (an upload), in process only: H.264 MP4s. Bounded
    /// like every derivation (permits, limits, timeout).
    pub async fn derive_bytes(&self, bytes: Bytes, kind: FrameKind) -> Result<Bytes, FrameError> {
        if !self.enabled {
            return Err(FrameError::Unavailable("frame derivation is off".into()));
        }
        let _permit = self.permits.acquire().await.expect("never closed");
        let (limits, timeout) = (self.limits, self.timeout);
        let size = bytes.len() as u64;
        tokio::task::spawn_blocking(move || {
            h264::derive(std::io::Cursor::new(bytes), size, kind, limits, timeout)
        })
        .await
        .map_err(|e| FrameError::Invalid(format!("the deriving thread failed: {e}")))?
    }
}

fn io_error(e: crate::MediaError) -> FrameError {
    FrameError::Io(std::io::Error::other(e))
}

/// A blocking `Read + Seek` over an object of a remote store, read in ranged blocks: the
/// poster reads the `moov` box and the first GOP, the last frame the `moov` and the last GOP,
/// never the whole video. Only for blocking threads (it waits on the runtime).
struct StoreReader {
    media: MediaStore,
    key: String,
    size: u64,
    pos: u64,
    block: (u64, Bytes),
    runtime: tokio::runtime::Handle,
}

/// One ranged read.
const BLOCK: u64 = 1 << 20;

impl StoreReader {
    fn new(media: MediaStore, key: String, size: u64) -> StoreReader {
        StoreReader {
            media,
            key,
            size,
            pos: 0,
            block: (0, Bytes::new()),
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

impl Read for StoreReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let (start, block) = &self.block;
        if self.pos < *start || self.pos >= start + block.len() as u64 {
            let from = self.pos;
            let to = (from + BLOCK.max(buf.len() as u64)).min(self.size);
            let (media, key) = (&self.media, &self.key);
            let bytes = self.runtime.block_on(async {
                let chunks: Vec<Bytes> =
                    media.get(key, Some(from..to)).await?.try_collect().await?;
                Ok::<_, crate::MediaError>(Bytes::from(chunks.concat()))
            });
            let bytes = bytes.map_err(std::io::Error::other)?;
            if bytes.is_empty() {
                return Ok(0);
            }
            self.block = (from, bytes);
        }
        let (start, block) = &self.block;
        let at = (self.pos - start) as usize;
        let n = buf.len().min(block.len() - at);
        buf[..n].copy_from_slice(&block[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for StoreReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

#[derive(Clone, Debug)]
pub struct Ffmpeg {
    bin: String,
    timeout: Duration,
    permits: Arc<Semaphore>,
}

impl Ffmpeg {
    /// Looks for ffmpeg (`bin -version`); `None`, after one warning, when it cannot be run.
    pub async fn detect(bin: &str, timeout: Duration, concurrency: usize) -> Option<Ffmpeg> {
        let probe = Command::new(bin)
            .arg("-version")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(Duration::from_secs(10), probe).await {
            Ok(Ok(out)) if out.status.success() => {
                let version = String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                tracing::info!(ffmpeg = bin, %version, "ffmpeg found: frames of videos other than H.264 MP4s will be derived, and watermarks drawn");
                Some(Ffmpeg {
                    bin: bin.to_string(),
                    timeout,
                    permits: Arc::new(Semaphore::new(concurrency.max(1))),
                })
            }
            other => {
                let why = match other {
                    Ok(Ok(out)) => format!("exited with {}", out.status),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => "timed out".into(),
                };
                tracing::warn!(
                    ffmpeg = bin,
                    error = %why,
                    "ffmpeg is not available: H.264 MP4s still get posters and last frames (in process), other videos none, and watermarks are not drawn (install ffmpeg or set media.ffmpeg)"
                );
                None
            }
        }
    }

    /// One frame of the video at `input` (a file path or an http(s) URL), as JPEG bytes.
    pub async fn frame(&self, input: &str, kind: FrameKind) -> Result<Bytes, FrameError> {
        let _permit = self.permits.acquire().await.expect("never closed");
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("frame.jpg");
        let out_arg = path_str(&out);
        match kind {
            FrameKind::Poster => {
                self.run(&[
                    "-i",
                    input,
                    "-map",
                    "0:v:0",
                    "-frames:v",
                    "1",
                    "-q:v",
                    "2",
                    out_arg,
                ])
                .await?
            }
            // Input seeking to 3 s before the end, then every frame overwrites the file: what
            // remains is the last decoded frame, without decoding the whole video.
            FrameKind::LastFrame => {
                self.run(&[
                    "-sseof", "-3", "-i", input, "-map", "0:v:0", "-update", "1", "-q:v", "2",
                    out_arg,
                ])
                .await?
            }
            // One frame of every 30 (the `thumbnail` filter's pick of each batch), scaled and
            // laid out 5 by 2; short videos leave cells empty.
            FrameKind::Spritesheet => {
                self.run(&[
                    "-i",
                    input,
                    "-map",
                    "0:v:0",
                    "-vf",
                    "thumbnail=30,scale=256:-2,tile=5x2",
                    "-frames:v",
                    "1",
                    "-q:v",
                    "3",
                    out_arg,
                ])
                .await?
            }
        }
        read_frame(&out).await
    }

    /// Draws `text` at the bottom right of the video at `input`, writing `output` (its
    /// extension picks the container). The text goes through a file (`textfile`, no
    /// expansion), so nothing a client writes can be read as filter syntax.
    pub async fn watermark(
        &self,
        input: &str,
        text: &str,
        output: &std::path::Path,
    ) -> Result<(), FrameError> {
        let _permit = self.permits.acquire().await.expect("never closed");
        let dir = tempfile::tempdir()?;
        let text_file = dir.path().join("watermark.txt");
        tokio::fs::write(&text_file, text).await?;
        let filter = format!(
            "drawtext=textfile='{}':expansion=none:fontcolor=white@0.85:borderw=2:\
             bordercolor=black@0.6:fontsize=h/18:x=w-tw-h/30:y=h-th-h/30",
            path_str(&text_file)
        );
        self.run(&[
            "-i",
            input,
            "-map",
            "0:v:0",
            "-map",
            "0:a?",
            "-vf",
            &filter,
            "-c:a",
            "copy",
            "-movflags",
            "+faststart",
            path_str(output),
        ])
        .await
    }

    async fn run(&self, args: &[&str]) -> Result<(), FrameError> {
        let child = Command::new(&self.bin)
            .args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let out = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| FrameError::Timeout(self.timeout))??;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let err: String = err.trim().chars().take(500).collect();
            return Err(FrameError::Failed(format!("{}: {err}", out.status)));
        }
        Ok(())
    }
}

fn path_str(p: &std::path::Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

async fn read_frame(path: &std::path::Path) -> Result<Bytes, FrameError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|_| FrameError::Failed("ffmpeg wrote no image".into()))?;
    if meta.len() == 0 || meta.len() > MAX_FRAME_BYTES {
        return Err(FrameError::Failed(format!(
            "derived image has {} bytes",
            meta.len()
        )));
    }
    Ok(tokio::fs::read(path).await?.into())
}

#[cfg(test)]
mod tests {
    use super::FrameKind;

    #[test]
    fn frame_names_round_trip() {
        for kind in [
            FrameKind::Poster,
            FrameKind::LastFrame,
            FrameKind::Spritesheet,
        ] {
            for i in [0, 3, 12] {
                assert_eq!(
                    FrameKind::from_object_name(&kind.object_name(i)),
                    Some((i, kind))
                );
            }
        }
        for other in [
            "0.mp4",
            "0.last.png",
            "x.last.jpg",
            "-1.last.jpg",
            "01.last.jpg",
            "0.lastjpg",
            "last.jpg",
            "",
        ] {
            assert_eq!(FrameKind::from_object_name(other), None, "{other}");
        }
    }
}
