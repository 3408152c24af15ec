//! Attachment bytes, stored under content-derived names. The original filename is metadata only,
//! so no user input ever becomes part of a path.
use std::{
    io::ErrorKind,
    path::{Path, PathBuf},
};

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// Where attachment bytes live. Local disk today; an object store can implement it later.
pub trait BlobStore: Send + Sync {
    /// Moves a staged upload into the store under its hash (a no-op if the content is there).
    fn commit<'a>(&'a self, staged: StagedBlob) -> BoxFuture<'a, Result<()>>;
    /// Opens the content stored under `sha256`.
    fn open<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<tokio::fs::File>>;
    /// Removes content no attachment refers to any more.
    fn remove<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<()>>;
    /// A fresh temporary file to stream an upload into.
    fn staging_path(&self) -> PathBuf;
}

/// An upload written to a temporary file, hashed and counted while it streamed.
#[derive(Debug)]
pub struct StagedBlob {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
}

impl StagedBlob {
    /// Deletes the temporary file (used when the upload is refused after staging).
    pub async fn discard(self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}

/// Streams chunks into a staging file, refusing more than `limit` bytes.
pub struct BlobWriter {
    file: tokio::fs::File,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl BlobWriter {
    pub async fn create(store: &dyn BlobStore, limit: u64) -> Result<Self> {
        let path = store.staging_path();
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io_error)?;
        }
        let file = tokio::fs::File::create(&path).await.map_err(io_error)?;
        Ok(Self { file, path, hasher: Sha256::new(), size: 0, limit })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            let _ = tokio::fs::remove_file(&self.path).await;
            return Err(Error::PayloadTooLarge(format!("attachments may be at most {} bytes", self.limit)));
        }
        self.hasher.update(chunk);
        if let Err(e) = self.file.write_all(chunk).await {
            let _ = tokio::fs::remove_file(&self.path).await;
            return Err(io_error(e));
        }
        Ok(())
    }

    pub async fn finish(mut self) -> Result<StagedBlob> {
        if let Err(e) = self.file.flush().await.and(self.file.sync_all().await) {
            let _ = tokio::fs::remove_file(&self.path).await;
            return Err(io_error(e));
        }
        Ok(StagedBlob { path: self.path, sha256: hex(&self.hasher.finalize()), size: self.size })
    }

    /// Removes the partial file of an upload that was abandoned.
    pub async fn abort(self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A full disk is the server's problem, not a bug: 507, so clients know to retry later.
fn io_error(e: std::io::Error) -> Error {
    match e.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            Error::InsufficientStorage("no space left to store attachments".into())
        }
        _ => Error::Internal(e.into()),
    }
}

/// Content under `root/ab/cdef…`, staging under `root/tmp/`.
pub struct LocalDisk {
    root: PathBuf,
}

impl LocalDisk {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path_for(&self, sha256: &str) -> Result<PathBuf> {
        // Our own hex hashes only: anything else could walk the filesystem.
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::NotFound("attachment content"));
        }
        Ok(self.root.join(&sha256[..2]).join(&sha256[2..]))
    }
}

impl BlobStore for LocalDisk {
    fn commit<'a>(&'a self, staged: StagedBlob) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let dest = self.path_for(&staged.sha256)?;
            if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
                staged.discard().await;
                return Ok(());
            }
            if let Some(dir) = dest.parent() {
                tokio::fs::create_dir_all(dir).await.map_err(io_error)?;
            }
            tokio::fs::rename(&staged.path, &dest).await.map_err(io_error)
        })
    }

    fn open<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<tokio::fs::File>> {
        Box::pin(async move {
            let path = self.path_for(sha256)?;
            tokio::fs::File::open(&path).await.map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::NotFound("attachment content"),
                _ => io_error(e),
            })
        })
    }

    fn remove<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let path = self.path_for(sha256)?;
            match tokio::fs::remove_file(Path::new(&path)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_error(e)),
            }
        })
    }

    fn staging_path(&self) -> PathBuf {
        self.root.join("tmp").join(uuid::Uuid::new_v4().to_string())
    }
}
