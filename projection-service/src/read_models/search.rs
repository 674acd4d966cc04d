//! Full-text search over the messages of the chats a user is a member of (`search-messages`):
//! SQLite's FTS5 index `message_search`, PostgreSQL's GIN index on the tsvector of
//! `messages.content` (migrations `2006_message_search.sql`). Membership is part of the statement (a join on
//! `chat_members`), so a chat the user has left, or a deleted group, is never searched.
//!
//! The query's words are taken out of its text here and handed to the engine one quoted term each,
//! so nothing a user types is read as FTS5 or tsquery syntax.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use events_schema::{ChatId, MessageId, UserId};
use infra::db::{Database, DbKind};

use super::queries::QueryError;

/// The words of a search: every one must be in a message, the last one as a word or a word's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchTerms(Vec<String>);

impl SearchTerms {
    /// At most this many words in a query.
    pub const MAX_WORDS: usize = 16;

    /// The words of `text`: runs of letters, digits and combining marks, lower-cased; everything
    /// else (spaces, punctuation, symbols, quotes, `*`, `:` …) separates words. `None` when there
    /// is no word at all.
    pub fn parse(text: &str) -> Option<Self> {
        let words: Vec<String> = text
            .split(|c: char| !is_word_char(c))
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        (!words.is_empty()).then_some(Self(words))
    }

    pub fn words(&self) -> &[String] {
        &self.0
    }

    /// An FTS5 query: each word a quoted string, all of them required, the last one a prefix too.
    pub fn fts5(&self) -> String {
        let mut out = String::new();
        for (i, word) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push('"');
            out.push_str(&word.replace('"', "\"\""));
            out.push('"');
        }
        out.push('*');
        out
    }

    /// A tsquery: each word a quoted lexeme, all of them required (`&`), the last one a prefix too
    /// (`:*`).
    pub fn tsquery(&self) -> String {
        let mut out = String::new();
        for (i, word) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(" & ");
            }
            out.push('\'');
            out.push_str(&word.replace('\\', "\\\\").replace('\'', "''"));
            out.push('\'');
        }
        out.push_str(":*");
        out
    }
}

/// Letters, digits, and the combining marks of the scripts that need them inside a word
/// (diacritics, Hebrew and Arabic points, the vowel signs of the Indic and Thai scripts), as both
/// engines' tokenizers keep them inside a word.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(c as u32,
            0x0300..=0x036F
            | 0x0483..=0x0489
            | 0x0591..=0x05C7
            | 0x0610..=0x061A
            | 0x064B..=0x065F
            | 0x0670
            | 0x06D6..=0x06ED
            | 0x0900..=0x0963
            | 0x0966..=0x0DFF
            | 0x0E31..=0x0E3A
            | 0x0E47..=0x0E4E
            | 0x1AB0..=0x1AFF
            | 0x1DC0..=0x1DFF
            | 0x20D0..=0x20FF
            | 0x3099..=0x309A
            | 0xFE20..=0xFE2F)
}

/// Where a page of results ends: its last (oldest) result, so the next page starts right after
/// it. PostgreSQL orders results newest first by `(sent_at, chat_id, version)`, which is unique;
/// SQLite by the order the rows were stored in, which it finds again from `(chat_id, version)`.
/// Its text (`Before` on the wire) is `<sent_at ms>-<version>-<chat id>`, opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCursor {
    sent_at: i64,
    version: i64,
    chat_id: ChatId,
}

impl fmt::Display for SearchCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            self.sent_at,
            self.version,
            self.chat_id.as_str()
        )
    }
}

/// A cursor that is not one this server wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedCursor;

impl FromStr for SearchCursor {
    type Err = MalformedCursor;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, '-');
        let number = |part: Option<&str>| -> Result<i64, MalformedCursor> {
            let part = part.ok_or(MalformedCursor)?;
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(MalformedCursor);
            }
            part.parse().map_err(|_| MalformedCursor)
        };
        let sent_at = number(parts.next())?;
        let version = number(parts.next())?;
        let chat_id =
            ChatId::parse(parts.next().ok_or(MalformedCursor)?).map_err(|_| MalformedCursor)?;
        Ok(Self {
            sent_at,
            version,
            chat_id,
        })
    }
}

/// One message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub chat_id: ChatId,
    pub message_id: MessageId,
    pub sender_id: UserId,
    /// The text as it is now (edited text as edited).
    pub content: String,
    pub sent_at: DateTime<Utc>,
    /// Its place in its chat.
    pub version: u64,
}

impl SearchHit {
    /// Where a page that ends with this result ends: the next page starts after it.
    pub fn cursor(&self) -> SearchCursor {
        SearchCursor {
            sent_at: self.sent_at.timestamp_millis(),
            version: self.version as i64,
            chat_id: self.chat_id.clone(),
        }
    }
}

/// A page of results, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Whether older results exist.
    pub has_more: bool,
    /// Where the next page starts, when there is one.
    pub next: Option<SearchCursor>,
}

/// What to search.
#[derive(Debug, Clone)]
pub struct SearchRequest<'a> {
    pub user: &'a UserId,
    pub terms: &'a SearchTerms,
    /// Only this chat.
    pub chat: Option<&'a ChatId>,
    /// Only results older than this.
    pub before: Option<&'a SearchCursor>,
    pub limit: u32,
}

/// `chat_id, message_id, sender_id, content, sent_at, version`.
type HitRow = (String, String, String, String, i64, i64);

fn corrupt(what: &str, value: &str) -> QueryError {
    QueryError::Corrupt(format!("{what} {value:?}"))
}

/// The messages of chats `request.user` is a member of now (not deleted, in a live chat) that hold
/// every word of `request.terms`, newest first, at most `request.limit`.
pub async fn search_messages(
    db: &Database,
    request: &SearchRequest<'_>,
) -> Result<SearchPage, QueryError> {
    let (matched, terms) = match db.kind {
        DbKind::Sqlite => (
            "SELECT m.chat_id, m.message_id, m.sender_id, m.content, m.sent_at, m.version \
             FROM message_search s \
             JOIN messages m ON m.rowid = s.rowid \
             JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.user_id = $2 \
             JOIN chats c ON c.chat_id = m.chat_id AND c.deleted = 0 \
             WHERE message_search MATCH $1 AND m.deleted = 0",
            request.terms.fts5(),
        ),
        DbKind::Postgres => (
            "SELECT m.chat_id, m.message_id, m.sender_id, m.content, m.sent_at, m.version \
             FROM messages m \
             JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.user_id = $2 \
             JOIN chats c ON c.chat_id = m.chat_id AND c.deleted = 0 \
             WHERE to_tsvector('simple'::regconfig, m.content) @@ to_tsquery('simple'::regconfig, $1) \
             AND m.deleted = 0",
            request.terms.tsquery(),
        ),
    };
    let mut sql = String::from(matched);
    let mut next = 3;
    if request.chat.is_some() {
        sql.push_str(&format!(" AND m.chat_id = ${next}"));
        next += 1;
    }
    // SQLite: newest first is the order rows were stored in `messages` (the log's order, kept by
    // a replay's copy), which FTS5 walks backwards by rowid and stops at the limit, with no sort.
    // PostgreSQL: by time, then chat and place, from the index's matches.
    match (db.kind, request.before.is_some()) {
        (DbKind::Sqlite, true) => {
            let (b, c) = (next, next + 1);
            sql.push_str(&format!(
                " AND s.rowid < (SELECT rowid FROM messages WHERE chat_id = ${b} AND version = ${c})"
            ));
            next += 2;
        }
        (DbKind::Postgres, true) => {
            let (a, b, c) = (next, next + 1, next + 2);
            sql.push_str(&format!(
                " AND (m.sent_at < ${a} OR (m.sent_at = ${a} AND (m.chat_id < ${b} \
                 OR (m.chat_id = ${b} AND m.version < ${c}))))"
            ));
            next += 3;
        }
        (_, false) => {}
    }
    sql.push_str(&match db.kind {
        DbKind::Sqlite => format!(" ORDER BY s.rowid DESC LIMIT ${next}"),
        DbKind::Postgres => {
            format!(" ORDER BY m.sent_at DESC, m.chat_id DESC, m.version DESC LIMIT ${next}")
        }
    });
    let rows: Vec<HitRow> = db
        .read(|| {
            let mut query = sqlx::query_as(&sql)
                .bind(terms.as_str())
                .bind(request.user.as_str());
            if let Some(chat) = request.chat {
                query = query.bind(chat.as_str());
            }
            if let Some(before) = request.before {
                if db.kind == DbKind::Postgres {
                    query = query.bind(before.sent_at);
                }
                query = query.bind(before.chat_id.as_str()).bind(before.version);
            }
            query.bind(i64::from(request.limit) + 1).fetch_all(&db.pool)
        })
        .await?;
    let has_more = rows.len() > request.limit as usize;
    let hits = rows
        .into_iter()
        .take(request.limit as usize)
        .map(|(chat, message, sender, content, sent_at, version)| {
            Ok(SearchHit {
                chat_id: ChatId::parse(&chat).map_err(|_| corrupt("chat id", &chat))?,
                message_id: MessageId::parse(&message)
                    .map_err(|_| corrupt("message id", &message))?,
                sender_id: UserId::parse(&sender).map_err(|_| corrupt("user id", &sender))?,
                content,
                sent_at: DateTime::from_timestamp_millis(sent_at)
                    .ok_or_else(|| corrupt("time", &sent_at.to_string()))?,
                version: version.max(0) as u64,
            })
        })
        .collect::<Result<Vec<_>, QueryError>>()?;
    let next = hits.last().filter(|_| has_more).map(SearchHit::cursor);
    Ok(SearchPage {
        hits,
        has_more,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_of_letters_and_digits_lower_cased() {
        let terms = SearchTerms::parse("  Hello, WORLD! it's r2-d2 ").unwrap();
        assert_eq!(terms.words(), ["hello", "world", "it", "s", "r2", "d2"]);
        let terms = SearchTerms::parse("Grüße aus Köln, привет, 東京").unwrap();
        assert_eq!(terms.words(), ["grüße", "aus", "köln", "привет", "東京"]);
        // Devanagari vowel signs stay inside the word.
        let terms = SearchTerms::parse("नमस्ते दुनिया").unwrap();
        assert_eq!(terms.words(), ["नमस्ते", "दुनिया"]);
    }

    #[test]
    fn a_query_without_words_is_none() {
        assert_eq!(SearchTerms::parse(""), None);
        assert_eq!(SearchTerms::parse("   "), None);
        assert_eq!(SearchTerms::parse("?!… \"*\" -- :* & | ()"), None);
    }

    #[test]
    fn engine_syntax_in_a_query_is_only_a_separator() {
        let terms = SearchTerms::parse("a\" OR b* NEAR(c) 'd':* & !e | f<->g").unwrap();
        assert_eq!(
            terms.words(),
            ["a", "or", "b", "near", "c", "d", "e", "f", "g"]
        );
        assert_eq!(
            terms.fts5(),
            "\"a\" \"or\" \"b\" \"near\" \"c\" \"d\" \"e\" \"f\" \"g\"*"
        );
        assert_eq!(
            terms.tsquery(),
            "'a' & 'or' & 'b' & 'near' & 'c' & 'd' & 'e' & 'f' & 'g':*"
        );
    }

    #[test]
    fn cursors_read_back_what_they_write_and_refuse_anything_else() {
        let cursor = SearchCursor {
            sent_at: 1_795_000_000_000,
            version: 42,
            chat_id: ChatId::parse("0192-ab_c").unwrap(),
        };
        let text = cursor.to_string();
        assert_eq!(text, "1795000000000-42-0192-ab_c");
        assert_eq!(text.parse::<SearchCursor>(), Ok(cursor));
        for bad in [
            "",
            "x",
            "1-2",
            "1-2-",
            "-1-2-c",
            "1--2-c",
            "1-+2-c",
            "a-2-c",
            "1-2-c d",
            "99999999999999999999-2-c",
        ] {
            assert_eq!(bad.parse::<SearchCursor>(), Err(MalformedCursor), "{bad:?}");
        }
    }
}
