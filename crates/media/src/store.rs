//! One interface over where media live: a local folder or an S3-compatible bucket, both through
//! `object_store`. Uploads stream in parts (memory stays flat whatever the size) and record
//! size and SHA-256 on the way; reads take byte ranges; S3 objects can be handed out as
//! presigned URLs.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::signer::Signer;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectStore, PutMultipartOptions, PutOptions,
    PutPayload, WriteMultipart,
};
use sha2::{Digest, Sha256};

use crate::config::{MediaConfig, S3Config, StorageKind};
use crate::MediaError;

/// Parts of an upload in flight at once; with the part size this bounds an upload's memory
/// (about `(MAX_PARTS_IN_FLIGHT + 1) × PART_SIZE`).
const MAX_PARTS_IN_FLIGHT: usize = 2;
/// S3's smallest part (except the last) is 5 MiB.
const PART_SIZE: usize = 5 * 1024 * 1024;

#[derive(Clone)]
enum Backend {
    Local { root: PathBuf },
    S3 { s3: Arc<AmazonS3>, prefix: String },
}

/// Archived media: a local folder or an S3-compatible bucket. Cheap to clone.
#[derive(Clone)]
pub struct MediaStore {
    objects: Arc<dyn ObjectStore>,
    backend: Backend,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What an upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
}

/// Object size as the store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
}

impl MediaStore {
    /// The store `config` describes; `default_local_dir` is `<data_dir>/media`.
    pub fn from_config(
        config: &MediaConfig,
        default_local_dir: &Path,
    ) -> Result<MediaStore, MediaError> {
        match config.storage {
            StorageKind::Local => {
                MediaStore::local(config.local_dir.as_deref().unwrap_or(default_local_dir))
            }
            StorageKind::S3 => MediaStore::s3(&config.s3),
        }
    }

    /// A folder on local disk (created if missing). Objects are written to a temporary file
    /// and renamed into place, so a crash mid-upload never leaves a truncated object.
    pub fn local(root: &Path) -> Result<MediaStore, MediaError> {
        std::fs::create_dir_all(root)?;
        let root = root.canonicalize()?;
        let fs = LocalFileSystem::new_with_prefix(&root)?.with_automatic_cleanup(true);
        Ok(MediaStore {
            objects: Arc::new(fs),
            backend: Backend::Local { root },
        })
    }

    /// An S3-compatible bucket. Settings left unset come from the `AWS_*` environment.
    pub fn s3(config: &S3Config) -> Result<MediaStore, MediaError> {
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&config.bucket);
        if let Some(r) = &config.region {
            b = b.with_region(r);
        }
        if let Some(k) = &config.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &config.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        if let Some(t) = &config.session_token {
            b = b.with_token(t);
        }
        if let Some(e) = &config.endpoint {
            let endpoint = if config.path_style {
                e.trim_end_matches('/').to_string()
            } else {
                virtual_hosted_endpoint(e, &config.bucket)?
            };
            b = b
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        b = b.with_virtual_hosted_style_request(!config.path_style);
        let s3 = Arc::new(b.build()?);
        let mut prefix = config.prefix.trim_matches('/').to_string();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        Ok(MediaStore {
            objects: s3.clone(),
            backend: Backend::S3 { s3, prefix },
        })
    }

    /// For logs: which store, without secrets.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Local { root } => format!("local folder {}", root.display()),
            Backend::S3 { s3, prefix } => format!("S3 {s3} (prefix {prefix:?})"),
        }
    }

    pub fn is_s3(&self) -> bool {
        matches!(self.backend, Backend::S3 { .. })
    }

    fn path(&self, key: &str) -> Result<ObjectPath, MediaError> {
        check_key(key)?;
        let full = match &self.backend {
            Backend::Local { .. } => key.to_string(),
            Backend::S3 { prefix, .. } => format!("{prefix}{key}"),
        };
        ObjectPath::parse(&full).map_err(|_| MediaError::InvalidKey(key.to_string()))
    }

    /// Starts a streamed upload to `key`. Nothing is visible under `key` until
    /// [`Upload::finish`]; an upload dropped or aborted leaves nothing behind.
    pub async fn upload(&self, key: &str, content_type: &str) -> Result<Upload, MediaError> {
        let path = self.path(key)?;
        let opts = PutMultipartOptions {
            attributes: self.attributes(content_type),
            ..Default::default()
        };
        let upload = self.objects.put_multipart_opts(&path, opts).await?;
        Ok(Upload {
            writer: Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Stores a small object in one request (derived images).
    pub async fn put(
        &self,
        key: &str,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Stored, MediaError> {
        let path = self.path(key)?;
        let stored = Stored {
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        };
        let opts = PutOptions {
            attributes: self.attributes(content_type),
            ..Default::default()
        };
        self.objects
            .put_opts(&path, PutPayload::from_bytes(bytes), opts)
            .await?;
        Ok(stored)
    }

    /// The local store keeps no attributes (object_store refuses them); the content type is
    /// in the database anyway. On S3 it is set so that presigned URLs answer with it too.
    fn attributes(&self, content_type: &str) -> Attributes {
        let mut a = Attributes::new();
        if self.is_s3() && !content_type.is_empty() {
            a.insert(Attribute::ContentType, content_type.to_string().into());
        }
        a
    }

    /// The object's bytes in `range` (all of it when `None`), as a stream.
    pub async fn get(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, MediaError>>, MediaError> {
        let path = self.path(key)?;
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let got = self.objects.get_opts(&path, opts).await?;
        Ok(got.into_stream().map_err(MediaError::from).boxed())
    }

    /// Reads a whole (small) object.
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, MediaError> {
        let path = self.path(key)?;
        Ok(self.objects.get(&path).await?.bytes().await?)
    }

    /// The object's size, or `None` when there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, MediaError> {
        let path = self.path(key)?;
        match self.objects.head(&path).await {
            Ok(meta) => Ok(Some(ObjectInfo { size: meta.size })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes an object; deleting one that is not there is not an error (two sweepers, or a
    /// retried sweep, may both try).
    pub async fn delete(&self, key: &str) -> Result<(), MediaError> {
        let path = self.path(key)?;
        match self.objects.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A presigned GET URL valid for `ttl`; `None` for the local store.
    pub async fn presign_get(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<String>, MediaError> {
        let path = self.path(key)?;
        match &self.backend {
            Backend::Local { .. } => Ok(None),
            Backend::S3 { s3, .. } => Ok(Some(
                s3.signed_url(http::Method::GET, &path, ttl)
                    .await?
                    .to_string(),
            )),
        }
    }

    /// The object's file, for the local store (read in place, without the object store).
    pub(crate) fn local_file(&self, key: &str) -> Option<PathBuf> {
        let path = self.path(key).ok()?;
        match &self.backend {
            Backend::Local { root } => Some(root.join(path.as_ref())),
            Backend::S3 { .. } => None,
        }
    }

    /// What ffmpeg reads an object from: its file for the local store, a short-lived presigned
    /// URL for S3 (ffmpeg seeks with HTTP ranges, so the last frame costs no full download).
    pub async fn reader_input(&self, key: &str) -> Result<String, MediaError> {
        let path = self.path(key)?;
        match &self.backend {
            Backend::Local { root } => Ok(root.join(path.as_ref()).display().to_string()),
            Backend::S3 { .. } => Ok(self
                .presign_get(key, Duration::from_secs(900))
                .await?
                .expect("an S3 store presigns")),
        }
    }
}

/// A streamed upload: bytes go out in parts as they come, hashed on the way.
pub struct Upload {
    writer: Option<WriteMultipart>,
    hasher: Sha256,
    size: u64,
}

impl Upload {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds a chunk; waits while too many parts are in flight, so a fast source and a slow
    /// store never pile up memory.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), MediaError> {
        let writer = self.writer.as_mut().expect("not finished");
        writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await?;
        self.hasher.update(&chunk);
        self.size += chunk.len() as u64;
        writer.put(chunk);
        Ok(())
    }

    /// Completes the upload: only now is the object visible under its key.
    pub async fn finish(mut self) -> Result<Stored, MediaError> {
        let writer = self.writer.take().expect("not finished");
        writer.finish().await?;
        Ok(Stored {
            size: self.size,
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
        })
    }

    /// Gives up: parts already sent are discarded.
    pub async fn abort(mut self) {
        if let Some(w) = self.writer.take() {
            if let Err(e) = w.abort().await {
                tracing::debug!(error = %e, "aborting an upload failed");
            }
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // An upload dropped mid-way (its task cancelled) is aborted in the background, so no
        // staging file or multipart upload is left behind.
        if let Some(w) = self.writer.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = w.abort().await;
                });
            }
        }
    }
}

/// Keys are `<task id>/<name>`: plain segments of letters, digits, `-`, `_` and `.`, never
/// `.` or `..`, so no key can climb out of the store's root or prefix.
pub fn check_key(key: &str) -> Result<(), MediaError> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    if ok {
        Ok(())
    } else {
        Err(MediaError::InvalidKey(key.to_string()))
    }
}

fn virtual_hosted_endpoint(endpoint: &str, bucket: &str) -> Result<String, MediaError> {
    let mut url = url::Url::parse(endpoint)
        .map_err(|e| MediaError::Config(format!("media.s3.endpoint {endpoint:?}: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| MediaError::Config(format!("media.s3.endpoint {endpoint:?} has no host")))?
        .to_string();
    if !host.starts_with(&format!("{bucket}.")) {
        url.set_host(Some(&format!("{bucket}.{host}")))
            .map_err(|e| MediaError::Config(format!("media.s3.endpoint: {e}")))?;
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_root() {
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "",
            "a//b",
            "a/../b",
            "a/./b",
            "a b/c",
            "a/b\\c",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        for good in ["0190a/0.mp4", "t-1/0.poster.jpg", "x_y/1.last.jpg"] {
            check_key(good).unwrap();
        }
    }

    #[test]
    fn virtual_hosted_endpoints_carry_the_bucket() {
        assert_eq!(
            virtual_hosted_endpoint("https://s3.example.com", "media").unwrap(),
            "https://media.s3.example.com"
        );
        assert_eq!(
            virtual_hosted_endpoint("https://media.s3.example.com/", "media").unwrap(),
            "https://media.s3.example.com"
        );
    }

    #[tokio::test]
    async fn local_upload_streams_hashes_ranges_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::local(dir.path()).unwrap();
        let mut up = store
            .upload("t1/0.bin", "application/octet-stream")
            .await
            .unwrap();
        let data: Vec<u8> = (0..(PART_SIZE * 2 + 123))
            .map(|i| (i % 251) as u8)
            .collect();
        for chunk in data.chunks(64 * 1024) {
            up.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        // Not visible before finish.
        assert_eq!(store.head("t1/0.bin").await.unwrap(), None);
        let stored = up.finish().await.unwrap();
        assert_eq!(stored.size, data.len() as u64);
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(
            store.head("t1/0.bin").await.unwrap(),
            Some(ObjectInfo {
                size: data.len() as u64
            })
        );
        let part: Vec<Bytes> = store
            .get("t1/0.bin", Some(100..200))
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(part.concat(), &data[100..200]);
        assert!(store
            .presign_get("t1/0.bin", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none());
        store.delete("t1/0.bin").await.unwrap();
        store.delete("t1/0.bin").await.unwrap();
        assert_eq!(store.head("t1/0.bin").await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::local(dir.path()).unwrap();
        let mut up = store.upload("t2/0.mp4", "video/mp4").await.unwrap();
        up.write(Bytes::from_static(b"partial")).await.unwrap();
        up.abort().await;
        assert_eq!(store.head("t2/0.mp4").await.unwrap(), None);
        let leftovers: Vec<_> = walk(dir.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
