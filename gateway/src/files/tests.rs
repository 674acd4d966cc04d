use super::*;
use infra::db::sqlite_url;
use sqlx::migrate::Migrator;

static MIGRATIONS: Migrator = sqlx::migrate!("migrations/accounts/sqlite");

async fn db(dir: &std::path::Path) -> Database {
    let db = Database::connect(&sqlite_url(&dir.join("accounts.db")))
        .await
        .unwrap();
    db.migrate(&MIGRATIONS).await.unwrap();
    db
}

async fn file_at(db: &Database, id: &str, created_ms: i64, sent: bool) {
    sqlx::query(
        "INSERT INTO files (file_id, uploader, size, content_type, sha256, name, created_at, sent_at) \
         VALUES ($1, 'u1', 1, 'text/plain', 'x', NULL, $2, $3)",
    )
    .bind(id)
    .bind(created_ms)
    .bind(sent.then_some(created_ms + 1))
    .execute(&db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn the_sweep_takes_only_uploads_never_sent_older_than_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path()).await;
    let store = FileStore::open(dir.path().join("files").to_str().unwrap()).unwrap();
    let now: i64 = 10 * 24 * 3600 * 1000;
    let day = ORPHAN_AFTER.as_millis() as i64;
    file_at(&db, "old", now - day - 1, false).await;
    file_at(&db, "oldsent", now - day - 1, true).await;
    file_at(&db, "young", now - day + 1000, false).await;
    for id in ["old", "oldsent", "young"] {
        let body =
            futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"x"))]).boxed();
        store.put_stream(id, body, 10).await.unwrap();
    }

    assert_eq!(orphans(&db, now - day, 100).await.unwrap(), ["old"]);
    assert_eq!(sweep_once(&db, &store, now).await.unwrap(), 1);

    let left: Vec<(String,)> = sqlx::query_as("SELECT file_id FROM files ORDER BY file_id")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(left, [("oldsent".to_owned(),), ("young".to_owned(),)]);
    assert!(
        store.get("old", None).await.is_err(),
        "the bytes are gone too"
    );
    assert!(store.get("young", None).await.is_ok());
}

#[tokio::test]
async fn a_send_claims_only_the_senders_files_and_shields_them_from_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let db = db(dir.path()).await;
    let me = UserId::parse("u1").unwrap();
    let other = UserId::parse("u2").unwrap();
    file_at(&db, "mine", 0, false).await;
    let ids = vec!["mine".to_owned()];
    assert_eq!(claim_for_send(&db, &other, &ids).await.unwrap(), None);
    let both = vec!["mine".to_owned(), "nope".to_owned()];
    assert_eq!(claim_for_send(&db, &me, &both).await.unwrap(), None);
    assert_eq!(
        orphans(&db, 1, 10).await.unwrap(),
        ["mine"],
        "a refused send marks nothing"
    );
    let claimed = claim_for_send(&db, &me, &ids).await.unwrap().unwrap();
    assert_eq!(claimed[0].file_id, "mine");
    assert!(orphans(&db, i64::MAX, 10).await.unwrap().is_empty());
}

#[test]
fn image_types_must_match_their_bytes() {
    let png = b"\x89PNG\r\n\x1a\n0000";
    assert_eq!(checked_content_type(Some("image/png"), png), "image/png");
    assert_eq!(
        checked_content_type(Some("image/png"), b"GIF89a"),
        "application/octet-stream"
    );
    assert_eq!(
        checked_content_type(Some("image/jpeg"), b"\xff\xd8\xff\xe0"),
        "image/jpeg"
    );
    assert_eq!(
        checked_content_type(Some("image/webp"), b"RIFF0000WEBPVP8 "),
        "image/webp"
    );
    assert_eq!(
        checked_content_type(Some("image/svg+xml"), b"<svg"),
        "application/octet-stream"
    );
    assert_eq!(
        checked_content_type(Some("Text/Plain; charset=utf-8"), b"hi"),
        "text/plain"
    );
    assert_eq!(
        checked_content_type(None, b"hi"),
        "application/octet-stream"
    );
    assert_eq!(
        checked_content_type(Some("bad type"), b"hi"),
        "application/octet-stream"
    );
}

#[tokio::test]
async fn an_upload_in_chunks_across_part_boundaries_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path().join("files").to_str().unwrap()).unwrap();
    let part = store.part;
    // Smaller than a part, exactly one, the rest of a part, several parts at once, a tail.
    let sizes = [1, part - 1, part, 3 * part + 7, 5];
    let bytes: Vec<u8> = (0..sizes.iter().sum::<usize>())
        .map(|i| (i % 251) as u8)
        .collect();
    let mut chunks = Vec::new();
    let mut at = 0;
    for size in sizes {
        chunks.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(
            &bytes[at..at + size],
        )));
        at += size;
    }
    let written = store
        .put_stream("f", futures::stream::iter(chunks).boxed(), u64::MAX)
        .await
        .unwrap();
    assert_eq!(written.size, bytes.len() as u64);
    assert_eq!(written.sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(written.head, bytes[..MAGIC_BYTES]);

    let mut read = Vec::new();
    let mut got = store.get("f", None).await.unwrap();
    while let Some(piece) = got.next().await {
        read.extend_from_slice(&piece.unwrap());
    }
    assert_eq!(read, bytes);
}
