//! The messages of a batch, written together.

use std::collections::HashMap;

use events_schema::events::MessageSent;
use events_schema::RecordedEvent;
use infra::db::{value_rows, DbKind};

use super::projector::{storable, Tx};

/// `chat_id, version, message_id, sender_id, content, sent_at, reply_to`.
type MessageRow = (String, i64, String, String, String, i64, Option<String>);

/// `chat_id, message_id, ordinal, file_id, name, size, content_type`.
type AttachmentRow = (String, String, i64, String, Option<String>, i64, String);

/// Messages of a batch, written together: one multi-row insert per few hundred messages, one
/// update per chat for its newest message, one read pointer per (chat, sender), instead of three
/// statements per message.
#[derive(Default)]
pub(crate) struct PendingMessages {
    rows: Vec<MessageRow>,
    attachments: Vec<AttachmentRow>,
    newest: HashMap<String, (i64, i64)>,
    read: HashMap<(String, String), u64>,
}

impl PendingMessages {
    /// Rows per statement. Small on purpose: binding looks each parameter up by name in a list as
    /// long as the statement's, so the cost per row grows with the statement.
    const CHUNK: usize = 32;

    pub(crate) fn push(&mut self, kind: DbKind, recorded: &RecordedEvent, sent: MessageSent) {
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
        for (ordinal, file) in sent.attachments.into_iter().enumerate() {
            self.attachments.push((
                chat.clone(),
                sent.message_id.as_str().to_owned(),
                ordinal as i64,
                file.file_id,
                file.name.map(|n| storable(kind, &n).into_owned()),
                i64::try_from(file.size).unwrap_or(i64::MAX),
                file.content_type,
            ));
        }
        self.rows.push((
            chat,
            version,
            sent.message_id.as_str().to_owned(),
            sent.sender_id.as_str().to_owned(),
            storable(kind, sent.content.as_str()).into_owned(),
            at,
            sent.reply_to.map(|r| r.as_str().to_owned()),
        ));
    }

    pub(crate) async fn flush(&mut self, tx: &mut Tx<'_>) -> Result<(), sqlx::Error> {
        for chunk in self.rows.chunks(Self::CHUNK) {
            let sql = format!(
                "INSERT INTO messages (chat_id, version, message_id, sender_id, content, sent_at, reply_to) VALUES {} ON CONFLICT DO NOTHING",
                value_rows(chunk.len(), 7)
            );
            let mut query = sqlx::query(&sql);
            for (chat, version, id, sender, content, at, reply_to) in chunk {
                query = query
                    .bind(chat)
                    .bind(*version)
                    .bind(id)
                    .bind(sender)
                    .bind(content)
                    .bind(*at)
                    .bind(reply_to.as_deref());
            }
            query.execute(&mut **tx).await?;
        }
        for chunk in self.attachments.chunks(Self::CHUNK) {
            let sql = format!(
                "INSERT INTO message_attachments (chat_id, message_id, ordinal, file_id, name, size, content_type) \
                 VALUES {} ON CONFLICT DO NOTHING",
                value_rows(chunk.len(), 7)
            );
            let mut query = sqlx::query(&sql);
            for (chat, message, ordinal, file, name, size, content_type) in chunk {
                query = query
                    .bind(chat)
                    .bind(message)
                    .bind(*ordinal)
                    .bind(file)
                    .bind(name.as_deref())
                    .bind(*size)
                    .bind(content_type);
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
        self.attachments.clear();
        self.newest.clear();
        self.read.clear();
        Ok(())
    }
}
