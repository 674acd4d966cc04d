//! Applying events to the read models.

use infra::telemetry::traces;
use std::borrow::Cow;

use events_schema::events::{
    AdminChanged, GroupCreated, GroupDeleted, MemberAdded, MemberRemoved, MessageRead,
    PersonalChatCreated, SelfChatCreated, UserRegistered, UserRenamed, UserVerified,
};
use events_schema::{DomainEvent, Position, RecordedEvent};
use infra::backoff::Backoff;
use infra::db::{Database, DbKind};
use sqlx::migrate::Migrator;
use sqlx::{Any, Transaction};

use super::batched_messages::PendingMessages;
use super::{checkpoint, dead_letters, message_changes};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Largest batch applied in one transaction.
pub const BATCH: usize = 512;

/// Applies events to the read models.
pub struct Projector {
    db: Database,
}

pub(crate) type Tx<'a> = Transaction<'a, Any>;

/// Text as the read models can hold it. PostgreSQL's text cannot hold NUL, which events stored
/// before the values refused it may carry: there each NUL becomes U+FFFD, the replacement
/// character, and everything else is kept. The log keeps what was said (decoding trusts stored
/// values, and the audit shows them); SQLite holds NUL, so its read models keep the text as
/// stored and stay equal to a replay of them.
pub(crate) fn storable(kind: DbKind, text: &str) -> Cow<'_, str> {
    match kind {
        DbKind::Postgres if text.contains('\0') => Cow::Owned(text.replace('\0', "\u{FFFD}")),
        _ => Cow::Borrowed(text),
    }
}

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
        Ok(super::queries::checkpoint(&self.db).await?)
    }

    /// Applies `events` (in position order) in one transaction with the checkpoint. Events at or
    /// before the checkpoint are skipped, so a batch applied twice changes nothing. Returns the new
    /// checkpoint.
    ///
    /// An event that cannot be applied is parked (see [`dead_letters`]) and passed over: one whose
    /// payload does not decode at once, one the read models refuse after a few tries on its own
    /// (the batch is then applied one event a transaction). Any other failure is returned, with
    /// nothing of the batch applied after the last commit, for the caller to retry.
    pub async fn apply(&self, events: &[RecordedEvent]) -> anyhow::Result<Position> {
        let _traced = traces::event_spans(traces::Stage::Project, events);
        let applied = match self.apply_batch(events).await {
            Err(e) if dead_letters::refused(self.db.kind, &e) => {
                tracing::warn!(error = %e, "projector: the read models refused an event of a batch; applying it one event at a time");
                self.apply_singly(events).await
            }
            done => Ok(done?),
        };
        if let (Ok(_), Some(newest)) = (&applied, events.last()) {
            measure_applied(events.len(), newest);
        }
        applied
    }

    /// Each event after the checkpoint in a transaction of its own, parking the one the read
    /// models keep refusing.
    async fn apply_singly(&self, events: &[RecordedEvent]) -> anyhow::Result<Position> {
        let mut checkpoint = self.checkpoint().await?;
        for event in events {
            if event.position > checkpoint {
                checkpoint = self.apply_or_park(event).await?;
            }
        }
        Ok(checkpoint)
    }

    async fn apply_or_park(&self, event: &RecordedEvent) -> anyhow::Result<Position> {
        let mut attempt = 1;
        let mut backoff = Backoff::new(dead_letters::RETRY_PAUSE, dead_letters::RETRY_PAUSE * 4);
        loop {
            match self.apply_batch(std::slice::from_ref(event)).await {
                Ok(checkpoint) => return Ok(checkpoint),
                Err(e) if !dead_letters::refused(self.db.kind, &e) => return Err(e.into()),
                Err(e) if attempt >= dead_letters::ATTEMPTS => {
                    return Ok(self.park(event, &e.to_string()).await?)
                }
                Err(e) => {
                    tracing::warn!(position = event.position, attempt, error = %e, "projector: the read models refused an event; trying it again");
                    tokio::time::sleep(backoff.next()).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Parks `event` and moves the checkpoint past it, in one transaction.
    async fn park(&self, event: &RecordedEvent, error: &str) -> Result<Position, sqlx::Error> {
        let mut tx = self.db.begin_derived_write().await?;
        let checkpoint = checkpoint::read(&mut *tx).await?;
        if event.position <= checkpoint {
            return Ok(checkpoint);
        }
        dead_letters::record(&mut tx, self.db.kind, event, error).await?;
        checkpoint::write(&mut *tx, event.position).await?;
        tx.commit().await?;
        dead_letters::log_parked(event, error);
        Ok(event.position)
    }

    /// One transaction: the events after the checkpoint, those that do not decode parked, and the
    /// new checkpoint.
    async fn apply_batch(&self, events: &[RecordedEvent]) -> Result<Position, sqlx::Error> {
        let kind = self.db.kind;
        let mut tx = self.db.begin_derived_write().await?;
        let start = checkpoint::read(&mut *tx).await?;
        let mut checkpoint = start;
        let mut pending = PendingMessages::default();
        let mut parked = Vec::new();
        for event in events.iter().filter(|e| e.position > start) {
            if event.position <= checkpoint {
                continue;
            }
            match DomainEvent::from_recorded(event) {
                Ok(DomainEvent::MessageSent(sent)) => pending.push(kind, event, sent),
                Ok(domain) => {
                    // Other events may depend on the messages before them (a new member's read
                    // pointer starts at the newest message): write those first.
                    pending.flush(&mut tx).await?;
                    apply_one(&mut tx, kind, event, &domain).await?
                }
                // Unknown (written by a newer version) or malformed: decoding it again cannot
                // go otherwise.
                Err(e) => {
                    let error = e.to_string();
                    dead_letters::record(&mut tx, kind, event, &error).await?;
                    parked.push((event, error));
                }
            }
            checkpoint = event.position;
        }
        pending.flush(&mut tx).await?;
        if checkpoint != start {
            checkpoint::write(&mut *tx, checkpoint).await?;
        }
        tx.commit().await?;
        for (event, error) in parked {
            dead_letters::log_parked(event, &error);
        }
        Ok(checkpoint)
    }
}

/// Counts `count` events applied, and how old the newest of them was when it was.
fn measure_applied(count: usize, newest: &RecordedEvent) {
    use infra::telemetry::names;
    metrics::counter!(names::EVENTS_PROJECTED, "projector" => checkpoint::NAME)
        .increment(count as u64);
    let age = chrono::Utc::now() - newest.occurred_at;
    metrics::gauge!(names::PROJECTION_LAG_SECONDS, "projector" => checkpoint::NAME)
        .set(age.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
}

async fn apply_one(
    tx: &mut Tx<'_>,
    kind: DbKind,
    recorded: &RecordedEvent,
    event: &DomainEvent,
) -> Result<(), sqlx::Error> {
    let at = recorded.occurred_at.timestamp_millis();
    let position = recorded.position as i64;
    match event {
        DomainEvent::UserRegistered(UserRegistered { user_id, name }) => {
            let name = storable(kind, name.as_str());
            sqlx::query(
                "INSERT INTO users (user_id, name, name_folded, verified) VALUES ($1, $2, $3, 0) ON CONFLICT (user_id) DO NOTHING",
            )
            .bind(user_id.as_str())
            .bind(name.as_ref())
            .bind(name.to_lowercase())
            .execute(&mut **tx)
            .await?;
        }
        DomainEvent::UserRenamed(UserRenamed { user_id, name }) => {
            let name = storable(kind, name.as_str());
            sqlx::query("UPDATE users SET name = $1, name_folded = $2 WHERE user_id = $3")
                .bind(name.as_ref())
                .bind(name.to_lowercase())
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
        DomainEvent::PresenceVisibilitySet(e) => super::presence::visibility_set(tx, e).await?,
        DomainEvent::SelfChatCreated(SelfChatCreated { chat_id, owner }) => {
            create_chat(tx, chat_id.as_str(), "self", None, None, None, at).await?;
            add_member(tx, chat_id.as_str(), owner.as_str(), position).await?;
        }
        DomainEvent::PersonalChatCreated(PersonalChatCreated {
            chat_id,
            creator,
            partner,
        }) => {
            create_chat(tx, chat_id.as_str(), "personal", None, None, None, at).await?;
            add_member(tx, chat_id.as_str(), creator.as_str(), position).await?;
            add_member(tx, chat_id.as_str(), partner.as_str(), position).await?;
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
                Some(&storable(kind, name)),
                Some(&storable(kind, description)),
                Some(admin.as_str()),
                at,
            )
            .await?;
            for member in members {
                add_member(tx, chat_id.as_str(), member.as_str(), position).await?;
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
            add_member(tx, chat_id.as_str(), member.as_str(), position).await?;
        }
        DomainEvent::MemberRemoved(MemberRemoved {
            chat_id, member, ..
        }) => {
            sqlx::query("DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2")
                .bind(chat_id.as_str())
                .bind(member.as_str())
                .execute(&mut **tx)
                .await?;
            end_memberships(tx, chat_id.as_str(), Some(member.as_str()), position).await?;
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
            end_memberships(tx, chat_id.as_str(), None, position).await?;
        }
        DomainEvent::MessageEdited(e) => message_changes::edited(tx, kind, recorded, e).await?,
        DomainEvent::MessageDeleted(e) => message_changes::deleted(tx, e).await?,
        DomainEvent::ReactionAdded(e) => message_changes::reaction_added(tx, recorded, e).await?,
        DomainEvent::ReactionRemoved(e) => message_changes::reaction_removed(tx, e).await?,
        DomainEvent::MessagesDelivered(e) => message_changes::delivered(tx, e).await?,
    }
    Ok(())
}

async fn create_chat(
    tx: &mut Tx<'_>,
    chat_id: &str,
    kind: &str,
    name: Option<&str>,
    description: Option<&str>,
    admin: Option<&str>,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chats (chat_id, kind, name, description, admin, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (chat_id) DO NOTHING",
    )
    .bind(chat_id)
    .bind(kind)
    .bind(name.map(str::to_owned))
    .bind(description.map(str::to_owned))
    .bind(admin.map(str::to_owned))
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Adds a member who has read everything written before they joined, and opens their stretch of
/// membership at `position` (unless one is open: applying an event twice changes nothing).
async fn add_member(
    tx: &mut Tx<'_>,
    chat_id: &str,
    user_id: &str,
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat_members (chat_id, user_id, read_version) \
         SELECT $1, $2, COALESCE(last_version, -1) FROM chats WHERE chat_id = $1 \
         ON CONFLICT (chat_id, user_id) DO NOTHING",
    )
    .bind(chat_id)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO chat_memberships (chat_id, user_id, since_position) \
         SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM chat_memberships \
         WHERE chat_id = $1 AND user_id = $2 AND (until_position IS NULL OR since_position = $3))",
    )
    .bind(chat_id)
    .bind(user_id)
    .bind(position)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Closes the open stretch of membership of `user_id` (of every member when `None`) in `chat_id`
/// at `position`, which is still part of it: the event that ends a membership reaches the member.
async fn end_memberships(
    tx: &mut Tx<'_>,
    chat_id: &str,
    user_id: Option<&str>,
    position: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE chat_memberships SET until_position = $1 \
         WHERE chat_id = $2 AND until_position IS NULL AND ($3 IS NULL OR user_id = $3)",
    )
    .bind(position)
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
