//! Who is typing where, from the sockets of this gateway: a `Typing: true` lasts [`LIFETIME`]
//! unless renewed, a user whose last socket here leaves stops typing everywhere, and each socket
//! may say it is typing in a chat at most [`RATE`] times a [`WINDOW`]. Pure: every method takes
//! the time and answers what the chat's other members must be told.

use std::collections::HashMap;
use std::time::Duration;

use events_schema::{ChatId, UserId};
use socketioxide::socket::Sid;
use tokio::time::Instant;

/// How long a `Typing: true` lasts without another.
pub const LIFETIME: Duration = Duration::from_secs(6);
/// At most this many `typing` requests of one socket in one chat within [`WINDOW`]...
pub const RATE: usize = 2;
/// ...(any stretch of this length); more are dropped.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Someone typing in a chat, until `until`, seen by `audience` (the chat's other members when
/// they started or last renewed).
#[derive(Debug, Clone)]
struct Typist {
    until: Instant,
    audience: Vec<UserId>,
}

/// A typing state that ended: the `audience` gets `typing {ChatId, UserId, Typing: false}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopped {
    pub user: UserId,
    pub chat: ChatId,
    pub audience: Vec<UserId>,
}

#[derive(Debug, Default)]
pub struct TypingBook {
    typing: HashMap<UserId, HashMap<ChatId, Typist>>,
    /// The times of each socket's latest requests per chat, at most [`RATE`].
    recent: HashMap<(Sid, ChatId), Vec<Instant>>,
}

impl TypingBook {
    /// Whether a `typing` request of `socket` in `chat` at `now` is within the rate; a request
    /// beyond it is dropped (and does not count).
    pub fn admit(&mut self, socket: Sid, chat: &ChatId, now: Instant) -> bool {
        let times = self.recent.entry((socket, chat.clone())).or_default();
        times.retain(|at| now.duration_since(*at) < WINDOW);
        if times.len() >= RATE {
            return false;
        }
        times.push(now);
        true
    }

    /// `user` said they are typing (or not) in `chat`; `audience` are its other members. Answers
    /// whether the audience must be told: a start, or an end of typing this gateway knew of
    /// (renewals are not repeated).
    pub fn set(
        &mut self,
        user: &UserId,
        chat: &ChatId,
        typing: bool,
        audience: Vec<UserId>,
        now: Instant,
    ) -> bool {
        if !typing {
            return self.forget(user, chat);
        }
        let chats = self.typing.entry(user.clone()).or_default();
        let started = !chats.contains_key(chat);
        chats.insert(
            chat.clone(),
            Typist {
                until: now + LIFETIME,
                audience,
            },
        );
        started
    }

    /// Forgets that `user` types in `chat` (they stopped, through this gateway or another);
    /// answers whether they were.
    pub fn forget(&mut self, user: &UserId, chat: &ChatId) -> bool {
        let Some(chats) = self.typing.get_mut(user) else {
            return false;
        };
        let was = chats.remove(chat).is_some();
        if chats.is_empty() {
            self.typing.remove(user);
        }
        was
    }

    /// The typing that `now` ends, unrenewed for [`LIFETIME`].
    pub fn expire(&mut self, now: Instant) -> Vec<Stopped> {
        let mut stopped = Vec::new();
        self.typing.retain(|user, chats| {
            chats.retain(|chat, typist| {
                if typist.until > now {
                    return true;
                }
                stopped.push(Stopped {
                    user: user.clone(),
                    chat: chat.clone(),
                    audience: std::mem::take(&mut typist.audience),
                });
                false
            });
            !chats.is_empty()
        });
        // Rate windows long past are forgotten too.
        self.recent
            .retain(|_, times| times.iter().any(|at| now.duration_since(*at) < WINDOW));
        stopped
    }

    /// `user`'s last socket here left: whatever they were typing ends.
    pub fn user_gone(&mut self, user: &UserId) -> Vec<Stopped> {
        self.typing
            .remove(user)
            .unwrap_or_default()
            .into_iter()
            .map(|(chat, typist)| Stopped {
                user: user.clone(),
                chat,
                audience: typist.audience,
            })
            .collect()
    }

    /// A socket left: its rate windows go with it.
    pub fn socket_gone(&mut self, socket: Sid) {
        self.recent.retain(|(sid, _), _| *sid != socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    fn c(id: &str) -> ChatId {
        ChatId::parse(id).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_two_a_second_per_socket_and_chat() {
        let mut book = TypingBook::default();
        let (one, two) = (Sid::new(), Sid::new());
        assert!(book.admit(one, &c("c"), Instant::now()));
        tokio::time::advance(Duration::from_millis(400)).await;
        assert!(book.admit(one, &c("c"), Instant::now()));
        assert!(!book.admit(one, &c("c"), Instant::now()), "a third");
        // Another chat, another socket: their own windows.
        assert!(book.admit(one, &c("d"), Instant::now()));
        assert!(book.admit(two, &c("c"), Instant::now()));
        // A second after the first, one more is allowed; a second after the second, another.
        tokio::time::advance(Duration::from_millis(599)).await;
        assert!(!book.admit(one, &c("c"), Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(book.admit(one, &c("c"), Instant::now()));
        assert!(!book.admit(one, &c("c"), Instant::now()));
        book.socket_gone(one);
        assert!(book.admit(one, &c("c"), Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn typing_ends_by_itself_unless_renewed_and_renewals_are_not_repeated() {
        let mut book = TypingBook::default();
        let others = vec![u("b")];
        assert!(book.set(&u("a"), &c("c"), true, others.clone(), Instant::now()));
        tokio::time::advance(LIFETIME - Duration::from_secs(1)).await;
        assert!(book.expire(Instant::now()).is_empty());
        assert!(!book.set(&u("a"), &c("c"), true, others.clone(), Instant::now()));
        tokio::time::advance(LIFETIME - Duration::from_millis(1)).await;
        assert!(book.expire(Instant::now()).is_empty(), "renewed");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(
            book.expire(Instant::now()),
            vec![Stopped {
                user: u("a"),
                chat: c("c"),
                audience: others.clone()
            }]
        );
        assert!(book.expire(Instant::now()).is_empty(), "once");
        // Stopping what was not going on tells no one.
        assert!(!book.set(&u("a"), &c("c"), false, others.clone(), Instant::now()));
        assert!(book.set(&u("a"), &c("c"), true, others.clone(), Instant::now()));
        assert!(book.set(&u("a"), &c("c"), false, others, Instant::now()));
        tokio::time::advance(LIFETIME * 2).await;
        assert!(book.expire(Instant::now()).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_user_gone_stops_typing_in_every_chat() {
        let mut book = TypingBook::default();
        book.set(&u("a"), &c("c"), true, vec![u("b")], Instant::now());
        book.set(&u("a"), &c("d"), true, vec![u("e")], Instant::now());
        book.set(&u("x"), &c("c"), true, vec![u("b")], Instant::now());
        let mut gone = book.user_gone(&u("a"));
        gone.sort_by(|l, r| l.chat.as_str().cmp(r.chat.as_str()));
        assert_eq!(
            gone,
            vec![
                Stopped {
                    user: u("a"),
                    chat: c("c"),
                    audience: vec![u("b")]
                },
                Stopped {
                    user: u("a"),
                    chat: c("d"),
                    audience: vec![u("e")]
                },
            ]
        );
        tokio::time::advance(LIFETIME).await;
        let expired = book.expire(Instant::now());
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].user, u("x"));
    }
}
