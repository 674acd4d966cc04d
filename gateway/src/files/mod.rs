//! Uploaded files (docs/api.md, "Files"): the bytes in an object store (a folder, or S3-compatible
//! storage, through one code path), what is known of them in the accounts database, who may read
//! them, and the sweep of uploads never sent.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use events_schema::events::AttachmentShared;
use events_schema::UserId;
use futures::stream::BoxStream;
use futures::StreamExt;
use infra::db::Database;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// Most files a message may carry.
pub const MAX_ATTACHMENTS: usize = 10;
/// How long an upload may wait to be sent before the sweep removes it.
pub const ORPHAN_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Where the bytes are.
#[derive(Clone)]
pub struct FileStore {
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
    /// Bytes gathered before each part is written: S3 wants parts of at least 5 MiB; a folder
    /// takes any size, so a small part keeps what an upload holds in memory small.
    part: usize,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A range of bytes to read: `start..end`, end excluded.
pub type ByteRange = std::ops::Range<u64>;

impl FileStore {
    /// The store `FILES_URL` names: `s3://bucket[/prefix]` (endpoint, keys and region from the
    /// AWS_* variables, `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint), or a folder (a path or
    /// `file://…`), created if missing.
    pub fn open(url: &str) -> anyhow::Result<Self> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let store = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .context("FILES_URL: S3 store")?;
            return Ok(Self {
                store: Arc::new(store),
                prefix: StorePath::from(prefix),
                part: 5 * 1024 * 1024,
            });
        }
        let dir = url.strip_prefix("file://").unwrap_or(url);
        std::fs::create_dir_all(dir).with_context(|| format!("FILES_URL: cannot create {dir}"))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("FILES_URL: folder {dir}"))?;
        Ok(Self {
            store: Arc::new(store),
            prefix: StorePath::default(),
            part: 64 * 1024,
        })
    }

    fn path(&self, file_id: &str) -> StorePath {
        self.prefix.clone().join(file_id)
    }

    /// Writes `body` under `file_id` as it arrives, hashing it on the way, and gives up (leaving
    /// nothing) on an error or past `max` bytes.
    pub async fn put_stream<E: std::fmt::Display>(
        &self,
        file_id: &str,
        mut body: BoxStream<'_, Result<Bytes, E>>,
        max: u64,
    ) -> Result<Written, PutError> {
        let upload = self
            .store
            .put_multipart(&self.path(file_id))
            .await
            .map_err(|e| PutError::Store(e.to_string()))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part);
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut head = Vec::with_capacity(MAGIC_BYTES);
        // The body's chunks are copied into parts of our own, each written before the next is
        // started. A chunk is a slice of the connection's read buffer (up to 400 KiB): handed on
        // as it is, it became several parts started at once, holding that buffer until the last
        // was written, so that uploads faster than the disk piled up memory.
        let mut part = BytesMut::new();
        let failure = 'body: loop {
            let chunk = match body.next().await {
                None => break None,
                Some(Err(e)) => break Some(PutError::Body(e.to_string())),
                Some(Ok(chunk)) => chunk,
            };
            size += chunk.len() as u64;
            if size > max {
                break Some(PutError::TooLarge);
            }
            if head.len() < MAGIC_BYTES {
                let take = (MAGIC_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
            }
            hasher.update(&chunk);
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                if part.capacity() == 0 {
                    // Grown as it fills: an S3 part is 5 MiB, most files far less.
                    part.reserve(self.part.min(PART_START));
                }
                let take = (self.part - part.len()).min(rest.len());
                part.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if part.len() == self.part {
                    if let Err(e) = writer.wait_for_capacity(0).await {
                        break 'body Some(PutError::Store(e.to_string()));
                    }
                    writer.put(std::mem::take(&mut part).freeze());
                }
            }
        };
        if failure.is_none() && !part.is_empty() {
            writer.put(part.freeze());
        }
        if let Some(failure) = failure {
            if let Err(e) = writer.abort().await {
                tracing::warn!(error = %e, file_id, "cannot abort a refused upload");
            }
            return Err(failure);
        }
        writer
            .finish()
            .await
            .map_err(|e| PutError::Store(e.to_string()))?;
        Ok(Written {
            size,
            sha256: hex::encode(hasher.finalize()),
            head,
        })
    }

    /// The bytes of `file_id` in `range` (all of them when `None`), as a stream.
    pub async fn get(
        &self,
        file_id: &str,
        range: Option<ByteRange>,
    ) -> anyhow::Result<BoxStream<'static, std::io::Result<Bytes>>> {
        let options = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let got = self.store.get_opts(&self.path(file_id), options).await?;
        let range = got.range.clone();
        match got.payload {
            // A folder's file, read in larger pieces than object_store's own 8 KiB.
            GetResultPayload::File(file, _) => {
                let mut file = tokio::fs::File::from_std(file);
                file.seek(std::io::SeekFrom::Start(range.start)).await?;
                let reader = file.take(range.end - range.start);
                Ok(tokio_util_reader(reader))
            }
            GetResultPayload::Stream(stream) => {
                Ok(stream.map(|r| r.map_err(std::io::Error::other)).boxed())
            }
        }
    }

    /// Removes the bytes of `file_id` (nothing when they are already gone).
    pub async fn delete(&self, file_id: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.path(file_id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Reads `reader` as a stream of 256 KiB pieces.
fn tokio_util_reader(
    reader: impl tokio::io::AsyncRead + Send + Unpin + 'static,
) -> BoxStream<'static, std::io::Result<Bytes>> {
    const PIECE: usize = 256 * 1024;
    futures::stream::try_unfold(reader, |mut reader| async move {
        let mut buffer = BytesMut::with_capacity(PIECE);
        while buffer.len() < PIECE {
            if reader.read_buf(&mut buffer).await? == 0 {
                break;
            }
        }
        if buffer.is_empty() {
            Ok(None)
        } else {
            Ok(Some((buffer.freeze(), reader)))
        }
    })
    .boxed()
}

/// What an upload wrote.
#[derive(Debug)]
pub struct Written {
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    /// The first bytes, for the type check.
    pub head: Vec<u8>,
}

/// Why an upload was not stored.
#[derive(Debug)]
pub enum PutError {
    TooLarge,
    /// The request body failed (the client went away, say).
    Body(String),
    Store(String),
}

const MAGIC_BYTES: usize = 12;
/// The first allocation of a part being filled.
const PART_START: usize = 256 * 1024;

/// The type to keep for an upload declared as `declared` whose bytes start with `head`: an image
/// type (png, jpeg, gif, webp) only when the bytes are one, anything else as declared (lowercase,
/// without parameters); a declared image whose bytes are not is `application/octet-stream`, so it
/// is never shown inline as what it is not.
pub fn checked_content_type(declared: Option<&str>, head: &[u8]) -> String {
    const OCTETS: &str = "application/octet-stream";
    let declared = declared
        .and_then(|d| d.split(';').next())
        .map(|d| d.trim().to_ascii_lowercase())
        .filter(|d| valid_media_type(d));
    let Some(declared) = declared else {
        return OCTETS.to_owned();
    };
    let matches = match declared.as_str() {
        "image/png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => head.starts_with(b"\xff\xd8\xff"),
        "image/gif" => head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a"),
        "image/webp" => head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP",
        other if other.starts_with("image/") => false,
        _ => true,
    };
    if matches {
        declared
    } else {
        OCTETS.to_owned()
    }
}

fn valid_media_type(t: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    t.split_once('/').is_some_and(|(a, b)| token(a) && token(b))
}

/// `Attachments: [{FileId, Name?, Size, ContentType}]` of pages and deliveries (a field left out
/// when empty: `skip_serializing_if = "<[_]>::is_empty"` beside this).
pub fn wire<S, T>(files: &T, serializer: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    T: AsRef<[AttachmentShared]>,
{
    use serde::ser::SerializeSeq;
    #[derive(serde::Serialize)]
    struct Wire<'a> {
        #[serde(rename = "FileId")]
        file_id: &'a str,
        #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        #[serde(rename = "Size")]
        size: u64,
        #[serde(rename = "ContentType")]
        content_type: &'a str,
    }
    let files = files.as_ref();
    let mut seq = serializer.serialize_seq(Some(files.len()))?;
    for f in files {
        seq.serialize_element(&Wire {
            file_id: &f.file_id,
            name: f.name.as_deref(),
            size: f.size,
            content_type: &f.content_type,
        })?;
    }
    seq.end()
}

/// What the accounts database keeps of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub file_id: String,
    pub uploader: String,
    pub size: u64,
    pub content_type: String,
    pub sha256: String,
    pub name: Option<String>,
}

impl FileRecord {
    pub fn shared(&self) -> AttachmentShared {
        AttachmentShared {
            file_id: self.file_id.clone(),
            name: self.name.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
        }
    }
}

type FileRow = (String, String, i64, String, String, Option<String>);

fn record((file_id, uploader, size, content_type, sha256, name): FileRow) -> FileRecord {
    FileRecord {
        file_id,
        uploader,
        size: size.max(0) as u64,
        content_type,
        sha256,
        name,
    }
}

/// Records an uploaded file.
pub async fn insert(db: &Database, file: &FileRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO files (file_id, uploader, size, content_type, sha256, name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&file.file_id)
    .bind(&file.uploader)
    .bind(i64::try_from(file.size).unwrap_or(i64::MAX))
    .bind(&file.content_type)
    .bind(&file.sha256)
    .bind(file.name.as_deref())
    .bind(Utc::now().timestamp_millis())
    .execute(&db.pool)
    .await
    .map(|_| ())
}

/// The file `file_id` if `reader` may read it: its uploader, or a current member of a chat where
/// it was sent in a message not deleted since.
pub async fn readable(
    db: &Database,
    file_id: &str,
    reader: &UserId,
) -> Result<Option<FileRecord>, sqlx::Error> {
    let row: Option<FileRow> = db
        .read(|| {
            sqlx::query_as(
                "SELECT f.file_id, f.uploader, f.size, f.content_type, f.sha256, f.name FROM files f \
                 WHERE f.file_id = $1 AND (f.uploader = $2 OR EXISTS ( \
                   SELECT 1 FROM message_attachments a \
                   JOIN chat_members m ON m.chat_id = a.chat_id AND m.user_id = $2 \
                   JOIN chats c ON c.chat_id = a.chat_id AND c.deleted = 0 \
                   JOIN messages g ON g.chat_id = a.chat_id AND g.message_id = a.message_id AND g.deleted = 0 \
                   WHERE a.file_id = f.file_id))",
            )
            .bind(file_id)
            .bind(reader.as_str())
            .fetch_optional(&db.pool)
        })
        .await?;
    Ok(row.map(record))
}

/// The files `ids` of `sender`, in that order, marked as sent (so the sweep leaves them), or
/// `None` if any is not theirs or unknown (nothing is marked then).
pub async fn claim_for_send(
    db: &Database,
    sender: &UserId,
    ids: &[String],
) -> Result<Option<Vec<AttachmentShared>>, sqlx::Error> {
    let mut tx = db.pool.begin().await?;
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let row: Option<FileRow> = sqlx::query_as(
            "SELECT file_id, uploader, size, content_type, sha256, name FROM files \
             WHERE file_id = $1 AND uploader = $2",
        )
        .bind(id)
        .bind(sender.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        // Setting `sent_at` in the same transaction as the check: the sweep, which deletes only
        // rows without it, cannot take a file between this check and the send.
        let marked =
            sqlx::query("UPDATE files SET sent_at = $2 WHERE file_id = $1 AND sent_at IS NULL")
                .bind(id)
                .bind(Utc::now().timestamp_millis())
                .execute(&mut *tx)
                .await?;
        let _ = marked;
        found.push(record(row).shared());
    }
    tx.commit().await?;
    Ok(Some(found))
}

/// The uploads never sent and older than `cutoff_ms` (Unix milliseconds), at most `limit`.
pub async fn orphans(
    db: &Database,
    cutoff_ms: i64,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT file_id FROM files WHERE sent_at IS NULL AND created_at < $1 \
         ORDER BY created_at LIMIT $2",
    )
    .bind(cutoff_ms)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Removes an orphan's record, if it is still one; true when this call removed it.
async fn forget_orphan(db: &Database, file_id: &str, cutoff_ms: i64) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("DELETE FROM files WHERE file_id = $1 AND sent_at IS NULL AND created_at < $2")
            .bind(file_id)
            .bind(cutoff_ms)
            .execute(&db.pool)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// One pass of the sweep: records first (so a send can no longer claim them), then bytes.
pub async fn sweep_once(db: &Database, store: &FileStore, now_ms: i64) -> anyhow::Result<usize> {
    let cutoff = now_ms - ORPHAN_AFTER.as_millis() as i64;
    let mut removed = 0;
    for id in orphans(db, cutoff, 500).await? {
        if forget_orphan(db, &id, cutoff).await? {
            store.delete(&id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Sweeps orphaned uploads every ten minutes, on every gateway (each removal happens once: the
/// record's delete decides which gateway removes the bytes).
pub async fn sweep(db: Database, store: FileStore) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match sweep_once(&db, &store, Utc::now().timestamp_millis()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "orphaned uploads removed"),
            Err(e) => tracing::warn!(error = %e, "sweep of orphaned uploads failed"),
        }
    }
}

#[cfg(test)]
mod tests;
