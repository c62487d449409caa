//! Poster (first frame) and last frame of a video, with the `ffmpeg` binary. ffmpeg is found at
//! start; without it derivation is skipped (one warning), never a task failure. Runs are bounded
//! in number and time.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::Semaphore;

/// Content type of the derived images.
pub const FRAME_CONTENT_TYPE: &str = "image/jpeg";
/// Their extension.
pub const FRAME_EXT: &str = "jpg";

/// A derived image larger than this is refused (a 4K JPEG is a few MB).
const MAX_FRAME_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("ffmpeg did not finish within {0:?}")]
    Timeout(Duration),
    #[error("ffmpeg failed: {0}")]
    Failed(String),
    #[error("ffmpeg i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The first and last frame of a video, as JPEG bytes.
#[derive(Debug, Clone)]
pub struct Frames {
    pub poster: bytes::Bytes,
    pub last_frame: bytes::Bytes,
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
                tracing::info!(ffmpeg = bin, %version, "ffmpeg found: posters and last frames will be derived");
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
                    "ffmpeg is not available: posters and last frames of videos will not be derived (install ffmpeg or set media.ffmpeg)"
                );
                None
            }
        }
    }

    /// Derives both frames of the video at `input` (a file path or an http(s) URL).
    pub async fn frames(&self, input: &str) -> Result<Frames, FrameError> {
        let _permit = self.permits.acquire().await.expect("never closed");
        let dir = tempfile::tempdir()?;
        let poster = dir.path().join("poster.jpg");
        let last = dir.path().join("last.jpg");
        self.run(&[
            "-i",
            input,
            "-map",
            "0:v:0",
            "-frames:v",
            "1",
            "-q:v",
            "2",
            path_str(&poster),
        ])
        .await?;
        // Input seeking to 3 s before the end, then every frame overwrites the file: what
        // remains is the last decoded frame, without decoding the whole video.
        self.run(&[
            "-sseof",
            "-3",
            "-i",
            input,
            "-map",
            "0:v:0",
            "-update",
            "1",
            "-q:v",
            "2",
            path_str(&last),
        ])
        .await?;
        Ok(Frames {
            poster: read_frame(&poster).await?,
            last_frame: read_frame(&last).await?,
        })
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

async fn read_frame(path: &std::path::Path) -> Result<bytes::Bytes, FrameError> {
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
