//! Where archived outputs live and how derived images are made.
//!
//! - [`MediaStore`]: one interface over a local folder (the default, under the data dir) and any
//!   S3-compatible bucket, through `object_store`: streamed uploads with size and SHA-256,
//!   ranged reads, deletes, presigned URLs.
//! - [`Frames`]: poster (first frame) and last frame of a video, in process for H.264 MP4s
//!   (`h264`), with [`Ffmpeg`] for other codecs; ffmpeg also draws watermarks.
//! - [`MediaConfig`]: the `[media]` configuration section.

mod config;
mod frames;
mod h264;
mod store;
pub mod types;

pub use config::{essence, MediaConfig, S3Config, StorageKind};
pub use frames::{Ffmpeg, FrameError, FrameKind, Frames, FRAME_CONTENT_TYPE, FRAME_EXT};
pub use store::{check_key, MediaStore, ObjectInfo, Stored, Upload};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("invalid media key {0:?}")]
    InvalidKey(String),
    #[error("media i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("media store: {0}")]
    Store(#[from] object_store::Error),
    #[error("invalid media configuration: {0}")]
    Config(String),
}

impl MediaError {
    /// The object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            MediaError::Store(object_store::Error::NotFound { .. })
        )
    }
}
