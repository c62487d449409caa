//! The old local writer, kept only until every caller moves to `MediaStore`.

use crate::MediaError;
use std::path::{Component, Path, PathBuf};

use tokio::io::AsyncWriteExt;

#[derive(Debug, Clone)]
pub struct LocalMedia {
    root: PathBuf,
}

/// A file being written; it becomes visible under its key only when `finish` renames it, so a
/// crash mid-download never leaves a truncated file that looks complete.
pub struct MediaWriter {
    file: tokio::fs::File,
    tmp: PathBuf,
    dest: PathBuf,
    pub written: u64,
}

impl LocalMedia {
    pub fn new(root: impl Into<PathBuf>) -> LocalMedia {
        LocalMedia { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file for a key such as `<task id>/0.mp4`; keys may not climb out of the root.
    pub fn path(&self, key: &str) -> Result<PathBuf, MediaError> {
        let rel = Path::new(key);
        if key.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(MediaError::InvalidKey(key.to_string()));
        }
        Ok(self.root.join(rel))
    }

    pub async fn writer(&self, key: &str) -> Result<MediaWriter, MediaError> {
        let dest = self.path(key)?;
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let tmp = dest.with_extension(format!("part-{}", std::process::id()));
        let file = tokio::fs::File::create(&tmp).await?;
        Ok(MediaWriter {
            file,
            tmp,
            dest,
            written: 0,
        })
    }

    pub async fn exists(&self, key: &str) -> bool {
        match self.path(key) {
            Ok(p) => tokio::fs::metadata(p).await.is_ok(),
            Err(_) => false,
        }
    }
}

impl MediaWriter {
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), MediaError> {
        self.file.write_all(chunk).await?;
        self.written += chunk.len() as u64;
        Ok(())
    }

    pub async fn finish(mut self) -> Result<u64, MediaError> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        tokio::fs::rename(&self.tmp, &self.dest).await?;
        Ok(self.written)
    }

    pub async fn abort(self) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.tmp).await;
    }
}
