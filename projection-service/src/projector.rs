//! Applying events to the read models.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use events_schema::events::{
    AdminChanged, GroupCreated, GroupDeleted, MemberAdded, MemberRemoved, MessageRead, MessageSent,
    PersonalChatCreated, SelfChatCreated, UserRegistered, UserRenamed, UserVerified,
};
use events_schema::{DomainEvent, Position, RecordedEvent};
use futures::StreamExt;
use infra::db::{value_rows, Database, DbKind};
use infra::EventStore;
use sqlx::migrate::Migrator;
use sqlx::{Any, Transaction};
use tokio::sync::{mpsc, watch};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// The checkpoint row of this projector.
pub(crate) const CHECKPOINT: &str = "read_models";
/// Largest batch applied in one transaction.
pub(crate) const BATCH: usize = 512;

/// Applies events to the read models.
pub struct Projector {
    db: Database,
}

type Tx<'a> = Transaction<'a, Any>;

impl Projector {
    /// Migrates the read-model tables.
    pub async fn new(db: Database) -> anyhow::Result<Self> {
        let migrator = match db.kind {
            DbKind::Sqlite => &SQLITE_MIGRATIONS,
            DbKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        db.migrate(migrator).await?;
        Ok(Self { db })
    }

    /// The position of the last applied event (0: none).
    pub async fn checkpoint(&self) -> anyhow::Result<Position> {
        Ok(crate::queries::checkpoint(&self.db).await?)
    }

    /// Applies `events` (in position order) in one transaction with the checkpoint. Events at or
    /// before the checkpoint are skipped, so a batch applied twice changes nothing. Returns the new
    /// checkpoint.
    pub async fn apply(&self, events: &[RecordedEvent]) -> anyhow::Result<Position> {
        let mut tx = self.db.begin_derived_write().await?;
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT position FROM projection_checkpoints WHERE name = $1")
                .bind(CHECKPOINT)
                .fetch_optional(&mut *tx)
                .await?;
        let mut checkpoint = row.map(|(p,)| p.max(0) as Position).unwrap_or(0);
        let start = checkpoint;
        let mut pending = PendingMessages::default();
        for event in events.iter().filter(|e| e.position > start) {
            if event.position <= checkpoint {
                continue;
            }
            match DomainEvent::from_recorded(event) {
                Ok(DomainEvent::MessageSent(sent)) => pending.push(event, sent),
                Ok(domain) => {
                    // Other events may depend on the messages before them (a new member's read
                    // pointer starts at the newest message): write those first.
                    pending.flush(&mut tx).await?;
                    apply_one(&mut tx, event, &domain).await?
                }
                // An event this version does not know (written by a newer one): skipped, loudly.
                Err(e) => {
                    tracing::warn!(position = event.position, error = %e, "event skipped by the projector")
                }
            }
            checkpoint = event.position;
        }
        pending.flush(&mut tx).await?;
        if checkpoint != start {
            sqlx::query(
                "INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            )
            .bind(CHECKPOINT)
            .bind(checkpoint as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(checkpoint)
    }
}

async fn apply_one(
    tx: &mut Tx<'_>,
    recorded: &RecordedEvent,
    event: &DomainEvent,
) -> Result<(), sqlx::Error> {
    let at = recorded.occurred_at.timestamp_millis();
    match event {
        DomainEvent::UserRegistered(UserRegistered { user_id, name }) => {
            sqlx::query(
                "INSERT INTO users (user_id, name, name_folded, verified) VALUES ($1, $2, $3, 0) ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user_id.as_str())
            .bind(name.as_str())
            .bind(name.as_str().to_lowercase())
            .execute(&mut **tx)
            .await?;
        }
        DomainEvent::UserRenamed(UserRenamed { user_id, name }) => {
            sqlx::query("UPDATE users SET name = $1, name_folded = $2 WHERE user_id = $3")
                .bind(name.as_str())
                .bind(name.as_str().to_lowercase())
                .bind(user_id.as_str())
                .execute(&mut **tx)
                .await?;
        }
        DomainEvent::UserVerified(UserVerified { user_id }) => {
            sqlx::query("UPDATE users SET verified = 1 WHERE user_id = $1")
                .bind(user_id.as_str())
                .execute(&mut **tx)
                .await?;
        }
        DomainEvent::SelfChatCreated(SelfChatCreated { chat_id, owner }) => {
            create_chat(tx, chat_id.as_str(), "self", None, None, None, at).await?;
            add_member(tx, chat_id.as_str(), owner.as_str()).await?;
        }
        DomainEvent::PersonalChatCreated(PersonalChatCreated {
            chat_id,
            creator,
            partner,
        }) => {
            create_chat(tx, chat_id.as_str(), "personal", None, None, None, at).await?;
            add_member(tx, chat_id.as_str(), creator.as_str()).await?;
            add_member(tx, chat_id.as_str(), partner.as_str()).await?;
        }
        DomainEvent::GroupCreated(GroupCreated {
            chat_id,
            name,
            description,
            admin,
            members,
        }) => {
            create_chat(
                tx,
                chat_id.as_str(),
                "group",
                Some(name),
                Some(description),
                Some(admin.as_str()),
                at,
            )
            .await?;
            for member in members {
                add_member(tx, chat_id.as_str(), member.as_str()).await?;
            }
        }
        // Batched by the caller (see `PendingMessages`).
        DomainEvent::MessageSent(_) => {}
        DomainEvent::MessageRead(MessageRead {
            chat_id,
            reader,
            up_to_version,
        }) => {
            mark_read(tx, chat_id.as_str(), reader.as_str(), *up_to_version).await?;
        }
        DomainEvent::MemberAdded(MemberAdded { chat_id, member }) => {
            add_member(tx, chat_id.as_str(), member.as_str()).await?;
        }
        DomainEvent::MemberRemoved(MemberRemoved {
            chat_id, member, ..
        }) => {
            sqlx::query("DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2")
                .bind(chat_id.as_str())
                .bind(member.as_str())
                .execute(&mut **tx)
                .await?;
        }
        DomainEvent::AdminChanged(AdminChanged { chat_id, to, .. }) => {
            sqlx::query("UPDATE chats SET admin = $1 WHERE chat_id = $2")
                .bind(to.as_str())
                .bind(chat_id.as_str())
                .execute(&mut **tx)
                .await?;
        }
        DomainEvent::GroupDeleted(GroupDeleted { chat_id }) => {
            // Members stay (deliveries of the deletion need them); every query skips deleted chats.
            sqlx::query("UPDATE chats SET deleted = 1 WHERE chat_id = $1")
                .bind(chat_id.as_str())
                .execute(&mut **tx)
                .await?;
        }
    }
    Ok(())
}

/// Messages of a batch, written together: one multi-row insert per few hundred messages, one
/// update per chat for its newest message, one read pointer per (chat, sender), instead of three
/// statements per message.
#[derive(Default)]
struct PendingMessages {
    rows: Vec<(String, i64, String, String, String, i64)>,
    newest: HashMap<String, (i64, i64)>,
    read: HashMap<(String, String), u64>,
}

impl PendingMessages {
    /// Rows per statement. Small on purpose: binding looks each parameter up by name in a list as
    /// long as the statement's, so the cost per row grows with the statement.
    const CHUNK: usize = 32;

    fn push(&mut self, recorded: &RecordedEvent, sent: MessageSent) {
        let at = recorded.occurred_at.timestamp_millis();
        let version = recorded.version as i64;
        let chat = sent.chat_id.as_str().to_owned();
        let newest = self.newest.entry(chat.clone()).or_insert((version, at));
        if version >= newest.0 {
            *newest = (version, at);
        }
        let read = self
            .read
            .entry((chat.clone(), sent.sender_id.as_str().to_owned()))
            .or_insert(recorded.version);
        *read = (*read).max(recorded.version);
        self.rows.push((
            chat,
            version,
            sent.message_id.as_str().to_owned(),
            sent.sender_id.as_str().to_owned(),
            sent.content.as_str().to_owned(),
            at,
        ));
    }

    async fn flush(&mut self, tx: &mut Tx<'_>) -> Result<(), sqlx::Error> {
        for chunk in self.rows.chunks(Self::CHUNK) {
            let sql = format!(
                "INSERT INTO messages (chat_id, version, message_id, sender_id, content, sent_at) VALUES {} ON CONFLICT DO NOTHING",
                value_rows(chunk.len(), 6)
            );
            let mut query = sqlx::query(&sql);
            for (chat, version, id, sender, content, at) in chunk {
                query = query
                    .bind(chat)
                    .bind(*version)
                    .bind(id)
                    .bind(sender)
                    .bind(content)
                    .bind(*at);
            }
            query.execute(&mut **tx).await?;
        }
        let newest: Vec<(&String, i64, i64)> = self
            .newest
            .iter()
            .map(|(c, (v, at))| (c, *v, *at))
            .collect();
        for chunk in newest.chunks(Self::CHUNK) {
            let sql = format!(
                "UPDATE chats SET last_version = v.column2, last_chat = v.column3 FROM (VALUES {}) AS v \
                 WHERE chats.chat_id = v.column1",
                value_rows(chunk.len(), 3)
            );
            let mut query = sqlx::query(&sql);
            for (chat, version, at) in chunk {
                query = query.bind(*chat).bind(*version).bind(*at);
            }
            query.execute(&mut **tx).await?;
        }
        // The sender has read their own message (pointers only move forward).
        let read: Vec<(&String, &String, i64)> = self
            .read
            .iter()
            .map(|((c, u), v)| (c, u, *v as i64))
            .collect();
        for chunk in read.chunks(Self::CHUNK) {
            let sql = format!(
                "UPDATE chat_members SET read_version = v.column3 FROM (VALUES {}) AS v \
                 WHERE chat_members.chat_id = v.column1 AND chat_members.user_id = v.column2 \
                 AND chat_members.read_version < v.column3",
                value_rows(chunk.len(), 3)
            );
            let mut query = sqlx::query(&sql);
            for (chat, user, version) in chunk {
                query = query.bind(*chat).bind(*user).bind(*version);
            }
            query.execute(&mut **tx).await?;
        }
        self.rows.clear();
        self.newest.clear();
        self.read.clear();
        Ok(())
    }
}

async fn create_chat(
    tx: &mut Tx<'_>,
    chat_id: &str,
    kind: &str,
    name: Option<&String>,
    description: Option<&String>,
    admin: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chats (chat_id, kind, name, description, admin, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (chat_id) DO NOTHING",
    )
    .bind(chat_id)
    .bind(kind)
    .bind(name.cloned())
    .bind(description.cloned())
    .bind(admin.map(str::to_owned))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds a member who has read everything written before they joined.
async fn add_member(tx: &mut Tx<'_>, chat_id: &str, user_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat_members (chat_id, user_id, read_version) \
         SELECT $1, $2, COALESCE(last_version, -1) FROM chats WHERE chat_id = $1 \
         ON CONFLICT (chat_id, user_id) DO NOTHING",
    )
    .bind(chat_id)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves a read pointer forward (never back).
async fn mark_read(
    tx: &mut Tx<'_>,
    chat_id: &str,
    user_id: &str,
    version: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE chat_members SET read_version = $1 WHERE chat_id = $2 AND user_id = $3 AND read_version < $1")
        .bind(version as i64)
        .bind(chat_id)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Follows the event log from the projector's checkpoint until `stop` turns true: applies each
/// batch of committed events, then publishes the new checkpoint on `progress` (read-your-writes
/// waits on it) and hands the batch to `applied` (delivery to sockets). A failure of the store or
/// the database is logged and retried from the checkpoint after a pause; nothing is skipped.
pub async fn run(
    store: Arc<dyn EventStore>,
    projector: Arc<Projector>,
    progress: watch::Sender<Position>,
    applied: Option<mpsc::Sender<Vec<Arc<RecordedEvent>>>>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut pause = Duration::from_millis(100);
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let from = match projector.checkpoint().await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "projector: cannot read its checkpoint; retrying");
                if sleep_or_stop(&mut stop, pause).await {
                    return Ok(());
                }
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut events = store.subscribe_all(from).ready_chunks(BATCH);
        loop {
            let next = tokio::select! {
                biased;
                next = events.next() => next,
                _ = stop.changed() => return Ok(()),
            };
            let Some(chunk) = next else { break };
            let mut batch = Vec::with_capacity(chunk.len());
            let mut failure = None;
            for item in chunk {
                match item {
                    Ok(event) => batch.push(event),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if !batch.is_empty() {
                match projector.apply(&batch).await {
                    Ok(position) => {
                        pause = Duration::from_millis(100);
                        progress.send_replace(position);
                        if let Some(applied) = &applied {
                            let batch: Vec<Arc<RecordedEvent>> =
                                batch.into_iter().map(Arc::new).collect();
                            if applied.send(batch).await.is_err() {
                                tracing::debug!("delivery has stopped; projecting on");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "projector: applying a batch failed; retrying from the checkpoint");
                        break;
                    }
                }
            }
            if let Some(e) = failure {
                tracing::error!(error = %e, "projector: event log subscription failed; resubscribing");
                break;
            }
        }
        if sleep_or_stop(&mut stop, pause).await {
            return Ok(());
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Sleeps for `pause`; true when asked to stop meanwhile.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(pause) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}
