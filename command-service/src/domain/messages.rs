//! What a chat's rules need to know of each of its messages, to decide edits, deletions,
//! reactions and replies: who sent it, when, whether it is deleted, and its reactions. Never the
//! text.
//!
//! Kept small because a chat may hold a hundred thousand messages and its state stays cached
//! (reads of the whole message history are what the aggregate must never need): a message is a
//! key (a server-made id, a UUID, as two `u64`s; any other id as its text) and 32 bytes of facts
//! (its version, sender, time, deleted flag, reactions), the sender as an index into the chat's
//! table of people rather than an id, reactions boxed apart since few messages have any. Measured
//! on 2026-12-04: 100,000 messages, one in a hundred with a reaction, hold 7.8 MB, 78 bytes a
//! message with the hash table's slack (`cargo test -p command-service --test
//! message_book_memory -- --nocapture`).
//!
//! Deciding a batch of sends clones the chat's state (see `app/batcher.rs`), so the table is in
//! two parts: a large one behind an `Arc`, shared by clones, and a small one holding the latest
//! messages and the latest changes to older ones, which a clone copies. The small part is folded
//! into the large one when it passes [`MessageBook::FRESH_LIMIT`] entries, in place when no clone
//! shares it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use events_schema::{DomainEvent, Emoji, MessageId, RecordedEvent, UserId};

/// A message id as a table key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// A lowercase hyphenated UUID (every id this server makes), as two halves: a `u128` would
    /// align the key to 16 bytes and make every entry 8 bytes larger.
    Uuid(u64, u64),
    /// Any other id, as sent.
    Text(Box<str>),
}

impl Key {
    fn of(id: &MessageId) -> Self {
        let text = id.as_str();
        if text.len() == 36 && !text.bytes().any(|b| b.is_ascii_uppercase()) {
            if let Ok(uuid) = uuid::Uuid::try_parse(text) {
                let (high, low) = uuid.as_u64_pair();
                return Key::Uuid(high, low);
            }
        }
        Key::Text(text.into())
    }
}

/// A person of the chat, as an index into [`MessageBook`]'s table of people.
type Person = u32;

/// Each emoji with who reacted with it, in the order first used.
type Reactions = Vec<(Emoji, Vec<Person>)>;

/// One message's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Facts {
    /// Its place in the chat (its stream version), for receipts.
    version: u64,
    sender: Person,
    /// Unix milliseconds.
    sent_at: i64,
    deleted: bool,
    /// `None` for no reaction: boxed, so a message without any costs 8 bytes for them, not 24.
    reactions: Option<Box<Reactions>>,
}

/// A message as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    book: &'a MessageBook,
    facts: &'a Facts,
}

impl Message<'_> {
    /// Its place in the chat (its stream version).
    pub fn version(&self) -> u64 {
        self.facts.version
    }

    pub fn sender(&self) -> Option<&UserId> {
        self.book.people.get(self.facts.sender as usize)
    }

    pub fn sent_at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.facts.sent_at)
    }

    pub fn is_deleted(&self) -> bool {
        self.facts.deleted
    }

    /// Whether `user` reacted with `emoji`.
    pub fn has_reaction(&self, user: &UserId, emoji: &Emoji) -> bool {
        let Some(person) = self.book.index.get(user) else {
            return false;
        };
        self.reactions()
            .iter()
            .any(|(e, people)| e == emoji && people.contains(person))
    }

    /// How many distinct emoji the message carries.
    pub fn emoji_count(&self) -> usize {
        self.reactions().len()
    }

    /// Whether someone reacted with `emoji`.
    pub fn has_emoji(&self, emoji: &Emoji) -> bool {
        self.reactions().iter().any(|(e, _)| e == emoji)
    }

    fn reactions(&self) -> &[(Emoji, Vec<Person>)] {
        self.facts.reactions.as_deref().map_or(&[], Vec::as_slice)
    }
}

/// The messages of one chat.
#[derive(Debug, Clone, Default)]
pub struct MessageBook {
    settled: Arc<HashMap<Key, Facts>>,
    /// Newer than `settled`: its entries take precedence.
    fresh: HashMap<Key, Facts>,
    people: Arc<Vec<UserId>>,
    index: Arc<HashMap<UserId, Person>>,
}

impl MessageBook {
    /// Entries the fresh part holds before it is folded into the settled one.
    pub const FRESH_LIMIT: usize = 1024;

    pub fn get(&self, id: &MessageId) -> Option<Message<'_>> {
        let key = Key::of(id);
        self.fresh
            .get(&key)
            .or_else(|| self.settled.get(&key))
            .map(|facts| Message { book: self, facts })
    }

    pub fn len(&self) -> usize {
        self.current().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every message's current facts, whichever part holds them.
    fn current(&self) -> impl Iterator<Item = (&Key, &Facts)> {
        let settled = self
            .settled
            .iter()
            .filter(|(k, _)| !self.fresh.contains_key(*k));
        settled.chain(self.fresh.iter())
    }

    /// A message was sent (a second event with the same id changes nothing).
    /// Takes in what `event` (recorded as `recorded`) says of one message: sent, deleted, or a
    /// reaction added or removed; any other event changes nothing. Every chat's `apply` calls it.
    pub fn apply(&mut self, event: &DomainEvent, recorded: &RecordedEvent) {
        match event {
            DomainEvent::MessageSent(e) => {
                self.sent(
                    &e.message_id,
                    recorded.version,
                    &e.sender_id,
                    recorded.occurred_at,
                );
            }
            DomainEvent::MessageDeleted(e) => self.deleted(&e.message_id),
            DomainEvent::ReactionAdded(e) => {
                self.reaction_added(&e.message_id, &e.user_id, &e.emoji)
            }
            DomainEvent::ReactionRemoved(e) => {
                self.reaction_removed(&e.message_id, &e.user_id, &e.emoji)
            }
            _ => {}
        }
    }

    pub fn sent(&mut self, id: &MessageId, version: u64, sender: &UserId, at: DateTime<Utc>) {
        let key = Key::of(id);
        if self.fresh.contains_key(&key) || self.settled.contains_key(&key) {
            return;
        }
        let sender = self.person(sender);
        let facts = Facts {
            version,
            sender,
            sent_at: at.timestamp_millis(),
            deleted: false,
            reactions: None,
        };
        self.fresh.insert(key, facts);
        self.fold_if_full();
    }

    pub fn deleted(&mut self, id: &MessageId) {
        self.change(id, |facts| {
            facts.deleted = true;
            facts.reactions = None;
        });
    }

    pub fn reaction_added(&mut self, id: &MessageId, user: &UserId, emoji: &Emoji) {
        let person = self.person(user);
        self.change(id, |facts| {
            let reactions = facts.reactions.get_or_insert_with(Default::default);
            match reactions.iter_mut().find(|(e, _)| e == emoji) {
                Some((_, people)) if people.contains(&person) => {}
                Some((_, people)) => people.push(person),
                None => reactions.push((emoji.clone(), vec![person])),
            }
        });
    }

    pub fn reaction_removed(&mut self, id: &MessageId, user: &UserId, emoji: &Emoji) {
        let Some(&person) = self.index.get(user) else {
            return;
        };
        self.change(id, |facts| {
            if let Some(reactions) = facts.reactions.as_mut() {
                for (_, people) in reactions.iter_mut().filter(|(e, _)| e == emoji) {
                    people.retain(|p| *p != person);
                }
                reactions.retain(|(_, people)| !people.is_empty());
                if reactions.is_empty() {
                    facts.reactions = None;
                }
            }
        });
    }

    /// Changes a known message's facts in the fresh part.
    fn change(&mut self, id: &MessageId, edit: impl FnOnce(&mut Facts)) {
        let key = Key::of(id);
        let facts = match self.fresh.get_mut(&key) {
            Some(facts) => facts,
            None => {
                let Some(settled) = self.settled.get(&key) else {
                    return;
                };
                self.fresh.entry(key).or_insert_with(|| settled.clone())
            }
        };
        edit(facts);
        self.fold_if_full();
    }

    fn person(&mut self, user: &UserId) -> Person {
        if let Some(&person) = self.index.get(user) {
            return person;
        }
        let person = self.people.len() as Person;
        Arc::make_mut(&mut self.people).push(user.clone());
        Arc::make_mut(&mut self.index).insert(user.clone(), person);
        person
    }

    /// Folds the fresh part into the settled one once it is full, unless a clone shares the
    /// settled part (a batch's scratch copy, dropped soon): copying it would cost more than the
    /// fresh part holding a few more.
    fn fold_if_full(&mut self) {
        if self.fresh.len() < Self::FRESH_LIMIT {
            return;
        }
        if let Some(settled) = Arc::get_mut(&mut self.settled) {
            settled.extend(self.fresh.drain());
        }
    }
}

/// Equal when every message has the same facts with the same people, however the two parts
/// split them.
impl PartialEq for MessageBook {
    fn eq(&self, other: &Self) -> bool {
        let who = |book: &MessageBook, p: Person| book.people.get(p as usize).cloned();
        let same = |a: &Facts, b: &Facts| {
            who(self, a.sender) == who(other, b.sender)
                && a.sent_at == b.sent_at
                && a.version == b.version
                && a.deleted == b.deleted
                && a.reactions.as_deref().map(|r| r.len())
                    == b.reactions.as_deref().map(|r| r.len())
                && a.reactions
                    .iter()
                    .flat_map(|r| r.iter())
                    .zip(b.reactions.iter().flat_map(|r| r.iter()))
                    .all(|((ea, pa), (eb, pb))| {
                        ea == eb
                            && pa.len() == pb.len()
                            && pa
                                .iter()
                                .zip(pb)
                                .all(|(x, y)| who(self, *x) == who(other, *y))
                    })
        };
        self.len() == other.len()
            && self.current().all(|(key, facts)| {
                other
                    .fresh
                    .get(key)
                    .or_else(|| other.settled.get(key))
                    .is_some_and(|theirs| same(facts, theirs))
            })
    }
}

impl Eq for MessageBook {}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn server_ids_are_held_as_numbers_and_others_as_text() {
        let uuid = MessageId::generate();
        assert!(matches!(Key::of(&uuid), Key::Uuid(..)));
        let upper = MessageId::parse(&uuid.as_str().to_uppercase()).unwrap();
        assert!(matches!(Key::of(&upper), Key::Text(_)));
        assert!(matches!(
            Key::of(&MessageId::parse("m1").unwrap()),
            Key::Text(_)
        ));
        assert_ne!(Key::of(&uuid), Key::of(&upper));
    }

    #[test]
    fn facts_survive_folding_and_clones_keep_their_own() {
        let (ada, bob) = (UserId::parse("ada").unwrap(), UserId::parse("bob").unwrap());
        let smile = Emoji::parse("🙂").unwrap();
        let mut book = MessageBook::default();
        let ids: Vec<MessageId> = (0..3 * MessageBook::FRESH_LIMIT)
            .map(|_| MessageId::generate())
            .collect();
        for (i, id) in ids.iter().enumerate() {
            book.sent(
                id,
                i as u64,
                if i % 2 == 0 { &ada } else { &bob },
                at(i as i64),
            );
        }
        assert_eq!(book.len(), ids.len());
        assert!(book.fresh.len() < MessageBook::FRESH_LIMIT);
        let first = &ids[0];
        let scratch_base = book.clone();
        book.reaction_added(first, &bob, &smile);
        book.deleted(&ids[1]);
        let m = book.get(first).unwrap();
        assert_eq!(m.sender(), Some(&ada));
        assert_eq!(m.version(), 0);
        assert_eq!(book.get(&ids[1]).unwrap().version(), 1);
        assert_eq!(m.sent_at(), Some(at(0)));
        assert!(m.has_reaction(&bob, &smile) && !m.has_reaction(&ada, &smile));
        assert!(book.get(&ids[1]).unwrap().is_deleted());
        // The clone made before shares nothing it can see changed.
        assert!(!scratch_base.get(first).unwrap().has_emoji(&smile));
        assert!(!scratch_base.get(&ids[1]).unwrap().is_deleted());
        book.reaction_removed(first, &bob, &smile);
        assert_eq!(book.get(first).unwrap().emoji_count(), 0);
    }
}
