//! Presence and typing between gateways, on core NATS only (`infra::subjects::presence` and
//! `typing`). Each gateway has a fresh id per process and announces, on the presence subject:
//! `join` when a user's first socket arrives, `leave` when their last has left and the grace is
//! over, `beat` every [`BEAT`] (a gateway not heard from within [`roster::EXPIRY`] is forgotten with
//! its users: one that dies leaves no one online), `bye` when it stops (its users stay online for a
//! grace, to reconnect elsewhere), and, when it starts, `hello` with a reply subject to which every
//! other gateway sends its users. Typing news goes to every gateway on the typing subject, and
//! each emits it to the sockets it holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use events_schema::{ChatId, UserId};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::roster::{self, Announce};
use super::{lock, Presence, TypingNews};

/// How often a gateway says it is alive.
const BEAT: Duration = Duration::from_secs(2);
/// Users per answer to a `hello`, so that no message nears NATS's payload limit.
const USERS_PER_MESSAGE: usize = 2_000;
/// How long a starting gateway listens for the others' users.
const HELLO_ANSWERS_WITHIN: Duration = Duration::from_secs(10);

/// A word between gateways on the presence subject.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum Word {
    Join { node: String, user: UserId },
    Leave { node: String, user: UserId, at: i64 },
    Beat { node: String },
    Bye { node: String },
    Hello { node: String },
    Users { node: String, users: Vec<UserId> },
}

/// Typing news between gateways.
#[derive(Debug, Serialize, Deserialize)]
struct TypingWord {
    node: String,
    user: UserId,
    chat: ChatId,
    typing: bool,
    audience: Vec<UserId>,
}

pub(super) struct Cluster {
    client: async_nats::Client,
    presence: String,
    typing: String,
    node: String,
    next_beat: Mutex<Instant>,
}

impl Cluster {
    pub(super) fn new(client: async_nats::Client, prefix: &str) -> Self {
        Self {
            client,
            presence: infra::subjects::presence(prefix),
            typing: infra::subjects::typing(prefix),
            node: uuid::Uuid::now_v7().to_string(),
            next_beat: Mutex::new(Instant::now()),
        }
    }

    /// Listens to the other gateways, and asks them who they hold.
    pub(super) async fn start(&self, hub: Arc<Presence>) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let subscribe = |subject: String| {
            let client = self.client.clone();
            async move {
                client
                    .subscribe(subject)
                    .await
                    .map_err(|e| anyhow::anyhow!("NATS subscription: {e}"))
            }
        };
        let words = subscribe(self.presence.clone()).await?;
        let typing = subscribe(self.typing.clone()).await?;
        let inbox = self.client.new_inbox();
        let answers = subscribe(inbox.clone()).await?;
        self.send_to(
            self.presence.clone(),
            &Word::Hello {
                node: self.node.clone(),
            },
            Some(inbox),
        )
        .await;
        let answers = answers.take_until(Box::pin(tokio::time::sleep(HELLO_ANSWERS_WITHIN)));
        Ok(vec![
            tokio::spawn(listen(hub.clone(), words)),
            tokio::spawn(listen(hub.clone(), answers)),
            tokio::spawn(typing_news(hub, typing)),
        ])
    }

    async fn send_to(&self, subject: String, word: &Word, reply: Option<String>) -> bool {
        let body = match serde_json::to_vec(word) {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "a presence word that cannot be written");
                return false;
            }
        };
        let sent = match reply {
            Some(reply) => {
                self.client
                    .publish_with_reply(subject, reply, body.into())
                    .await
            }
            None => self.client.publish(subject, body.into()).await,
        };
        if let Err(e) = &sent {
            tracing::warn!(error = %e, "cannot tell the other gateways about presence");
        }
        sent.is_ok()
    }

    async fn send(&self, word: &Word) -> bool {
        self.send_to(self.presence.clone(), word, None).await
    }

    /// Tells the other gateways of a join or a leave here.
    pub(super) async fn announce(&self, announce: &Announce) {
        let node = self.node.clone();
        let word = match announce {
            Announce::Join(user) => Word::Join {
                node,
                user: user.clone(),
            },
            Announce::Leave(user, at) => Word::Leave {
                node,
                user: user.clone(),
                at: at.timestamp_millis(),
            },
        };
        self.send(&word).await;
    }

    /// Says this gateway is alive, every [`BEAT`].
    pub(super) async fn beat_if_due(&self, now: Instant) {
        {
            let mut next = lock(&self.next_beat);
            if now < *next {
                return;
            }
            *next = now + BEAT;
        }
        self.send(&Word::Beat {
            node: self.node.clone(),
        })
        .await;
    }

    /// Says this gateway is stopping.
    pub(super) async fn bye(&self) {
        self.send(&Word::Bye {
            node: self.node.clone(),
        })
        .await;
        let _ = self.client.flush().await;
    }

    /// Sends typing news to every gateway (this one included); `false` when it could not be sent.
    pub(super) async fn tell_typing(&self, news: &TypingNews) -> bool {
        let word = TypingWord {
            node: self.node.clone(),
            user: news.user.clone(),
            chat: news.chat.clone(),
            typing: news.typing,
            audience: news.audience.clone(),
        };
        let body = match serde_json::to_vec(&word) {
            Ok(body) => body,
            Err(_) => return false,
        };
        match self.client.publish(self.typing.clone(), body.into()).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell the other gateways about typing");
                false
            }
        }
    }

    /// Answers a starting gateway's `hello` with the users this one holds.
    async fn answer_hello(&self, hub: &Presence, reply: String) {
        let users = lock(&hub.roster).local_users();
        for chunk in users.chunks(USERS_PER_MESSAGE) {
            let word = Word::Users {
                node: self.node.clone(),
                users: chunk.to_vec(),
            };
            self.send_to(reply.clone(), &word, None).await;
        }
        // Heard from at once, even holding no one.
        self.send(&Word::Beat {
            node: self.node.clone(),
        })
        .await;
    }
}

fn time(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Takes the other gateways' words into the roster.
async fn listen(
    hub: Arc<Presence>,
    mut words: impl futures::Stream<Item = async_nats::Message> + Unpin,
) {
    let Some(cluster) = hub.cluster.as_ref() else {
        return;
    };
    while let Some(message) = words.next().await {
        let word = match serde_json::from_slice::<Word>(&message.payload) {
            Ok(word) => word,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable presence word ignored");
                continue;
            }
        };
        let (now, wall) = (Instant::now(), Utc::now());
        let change = match word {
            Word::Join { node, .. }
            | Word::Leave { node, .. }
            | Word::Beat { node }
            | Word::Bye { node }
            | Word::Hello { node }
            | Word::Users { node, .. }
                if node == cluster.node =>
            {
                continue
            }
            Word::Join { node, user } => lock(&hub.roster).joined(&node, &user, now, wall),
            Word::Leave { node, user, at } => {
                lock(&hub.roster).left(&node, &user, time(at), now, wall)
            }
            Word::Beat { node } => {
                lock(&hub.roster).heard(&node, now, wall);
                None
            }
            Word::Bye { node } => {
                lock(&hub.roster).stopping(&node, now, wall);
                None
            }
            Word::Hello { .. } => {
                if let Some(reply) = message.reply {
                    cluster.answer_hello(&hub, reply.to_string()).await;
                }
                None
            }
            Word::Users { node, users } => {
                let changes: Vec<_> = {
                    let mut roster = lock(&hub.roster);
                    users
                        .iter()
                        .filter_map(|user| roster.joined(&node, user, now, wall))
                        .collect()
                };
                for change in changes {
                    hub.push(None, Some(change));
                }
                None
            }
        };
        hub.push(None, change);
    }
}

/// Emits every gateway's typing news to the sockets this one holds.
async fn typing_news(hub: Arc<Presence>, mut news: async_nats::Subscriber) {
    let Some(cluster) = hub.cluster.as_ref() else {
        return;
    };
    while let Some(message) = news.next().await {
        let word = match serde_json::from_slice::<TypingWord>(&message.payload) {
            Ok(word) => word,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable typing news ignored");
                continue;
            }
        };
        // A stop said through another gateway ends what this one knew, so that a renewal here
        // is told as a start again.
        if word.node != cluster.node && !word.typing {
            lock(&hub.typing).forget(&word.user, &word.chat);
        }
        hub.emit_typing(&TypingNews {
            user: word.user,
            chat: word.chat,
            typing: word.typing,
            audience: word.audience,
        });
    }
}

// The roster's expiry is what forgets a silent gateway; a beat is several times more frequent.
const _: () = assert!(BEAT.as_secs() * 3 <= roster::EXPIRY.as_secs());
