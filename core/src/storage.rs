//! Attachment bytes, stored under content-derived names. The original filename is metadata only,
//! so no user input ever becomes part of a path.
use std::{
    collections::HashMap,
    future::Future,
    io::ErrorKind,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
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
    /// Removes content no attachment refers to any more. Go through [`remove_unreferenced`],
    /// which knows about uploads in flight.
    fn remove<'a>(&'a self, sha256: &'a str) -> BoxFuture<'a, Result<()>>;
    /// A fresh temporary file to stream an upload into.
    fn staging_path(&self) -> PathBuf;
    /// Who is using which content before their rows are committed.
    fn holds(&self) -> &Holds;
}

/// Content is shared by every attachment with the same bytes, so an upload may find its content
/// already stored ([`BlobStore::commit`] is then a no-op) just as the last row that used it is
/// deleted. An upload holds its hash from before it stores the bytes until its transaction is
/// over; removal skips held content, and holding waits for a removal in progress, so removal
/// never takes bytes from under a row about to commit. Within one process: nodes sharing one
/// store could still race in that window.
#[derive(Default)]
pub struct Holds {
    /// Taken to remove, and to add a hold: the two never interleave.
    removing: tokio::sync::Mutex<()>,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// Keeps one hash from removal until dropped.
#[must_use = "the content is only protected while the hold is kept"]
pub struct Hold {
    held: Arc<Mutex<HashMap<String, usize>>>,
    sha256: String,
}

impl Holds {
    pub async fn hold(&self, sha256: &str) -> Hold {
        let _removing = self.removing.lock().await;
        *self.held.lock().unwrap_or_else(|p| p.into_inner()).entry(sha256.to_string()).or_default() += 1;
        Hold { held: self.held.clone(), sha256: sha256.to_string() }
    }

    fn is_held(&self, sha256: &str) -> bool {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).contains_key(sha256)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.sha256) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.sha256);
            }
        }
    }
}

/// Removes the content under `sha256` unless it is held or `referenced` (asked once no new hold
/// can start) says a committed row still uses it. Call it after the transaction that dropped a
/// reference is over, never inside it: a rollback must find its bytes. Returns whether it removed.
pub async fn remove_unreferenced(
    store: &dyn BlobStore,
    sha256: &str,
    referenced: impl Future<Output = Result<bool>>,
) -> Result<bool> {
    let holds = store.holds();
    let _removing = holds.removing.lock().await;
    if holds.is_held(sha256) || referenced.await? {
        return Ok(false);
    }
    store.remove(sha256).await?;
    Ok(true)
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
    holds: Holds,
}

impl LocalDisk {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), holds: Holds::default() }
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

    fn holds(&self) -> &Holds {
        &self.holds
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn held_or_referenced_content_stays() {
        let root = std::env::temp_dir().join(format!("tw-blobs-{}", uuid::Uuid::new_v4().simple()));
        let disk = LocalDisk::new(&root);
        let mut writer = BlobWriter::create(&disk, 100).await.unwrap();
        writer.write(b"bytes").await.unwrap();
        let staged = writer.finish().await.unwrap();
        let sha = staged.sha256.clone();
        disk.commit(staged).await.unwrap();

        let hold = disk.holds().hold(&sha).await;
        assert!(!remove_unreferenced(&disk, &sha, async { Ok(false) }).await.unwrap(), "held");
        drop(hold);
        assert!(!remove_unreferenced(&disk, &sha, async { Ok(true) }).await.unwrap(), "referenced");
        assert!(disk.open(&sha).await.is_ok());
        assert!(remove_unreferenced(&disk, &sha, async { Ok(false) }).await.unwrap());
        assert!(matches!(disk.open(&sha).await, Err(Error::NotFound(_))));
        let _ = std::fs::remove_dir_all(&root);
    }
}
