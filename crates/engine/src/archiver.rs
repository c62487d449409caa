//! Copies a succeeded task's outputs into our media store before the upstream's signed URLs
//! expire, streaming chunk by chunk (memory stays flat whatever the size) under a size cap.

use futures::StreamExt;
use reelay_store::Task;

use crate::{Engine, EngineError};

impl Engine {
    /// Returns the URLs we serve, one per upstream output, in the same order.
    pub(crate) async fn archive(
        &self,
        task: &Task,
        outputs: &[String],
    ) -> Result<Vec<String>, EngineError> {
        let mut ours = Vec::with_capacity(outputs.len());
        for (i, url) in outputs.iter().enumerate() {
            let resp = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| EngineError::Other(format!("fetching output {i}: {e}")))?;
            if !resp.status().is_success() {
                return Err(EngineError::Other(format!(
                    "fetching output {i}: upstream answered {}",
                    resp.status()
                )));
            }
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            if resp
                .content_length()
                .is_some_and(|n| n > self.config.max_output_bytes)
            {
                return Err(EngineError::Other(format!(
                    "output {i} is larger than the cap"
                )));
            }
            let key = format!("{}/{}.{}", task.id, i, extension(&content_type, url));
            let mut writer = self.media.writer(&key).await?;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        writer.abort().await;
                        return Err(EngineError::Other(format!("reading output {i}: {e}")));
                    }
                };
                if writer.written + chunk.len() as u64 > self.config.max_output_bytes {
                    writer.abort().await;
                    return Err(EngineError::Other(format!(
                        "output {i} is larger than the cap"
                    )));
                }
                writer.write(&chunk).await?;
            }
            writer.finish().await?;
            ours.push(self.media_url(&key));
        }
        Ok(ours)
    }
}

/// The file extension for an output, from its content type, else from its URL path.
fn extension(content_type: &str, url: &str) -> &'static str {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let by_type = match ct.as_str() {
        "video/mp4" => Some("mp4"),
        "video/quicktime" => Some("mov"),
        "video/webm" => Some("webm"),
        "image/png" => Some("png"),
        "image/jpeg" => Some("jpg"),
        "image/webp" => Some("webp"),
        "image/svg+xml" => Some("svg"),
        "audio/mpeg" => Some("mp3"),
        "audio/wav" | "audio/x-wav" => Some("wav"),
        "audio/flac" => Some("flac"),
        "application/zip" => Some("zip"),
        _ => None,
    };
    if let Some(e) = by_type {
        return e;
    }
    let path = url.split(['?', '#']).next().unwrap_or("");
    match path
        .rsplit('.')
        .next()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("mp4") => "mp4",
        Some("mov") => "mov",
        Some("png") => "png",
        Some("jpg") | Some("jpeg") => "jpg",
        Some("webp") => "webp",
        Some("mp3") => "mp3",
        Some("wav") => "wav",
        Some("zip") => "zip",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn extension_prefers_content_type() {
        assert_eq!(super::extension("video/mp4", "https://x/y.bin"), "mp4");
        assert_eq!(
            super::extension("application/octet-stream", "https://x/out.png?sig=1"),
            "png"
        );
        assert_eq!(super::extension("", "https://x/out"), "bin");
    }
}
