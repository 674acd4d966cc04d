//! Typing and presence (docs/api.md, "Typing" and "Presence"; docs/design.md, "Presence across
//! gateways"). Neither is stored in the event store: who is online and who is typing live in
//! memory ([`roster`], [`typing`]), the time each user was last seen in the accounts database
//! ([`last_seen`]), and only the user's choice to hide is an event (`PresenceVisibilitySet`, read
//! back from the read models).
//!
//! All-in-one, one gateway knows every socket. In the topology every gateway keeps the same
//! roster from what the others announce on core NATS ([`cluster`]): joins and leaves, heartbeats
//! whose silence forgets a gateway's users, and, for a gateway that starts, each other gateway's
//! users. Each gateway then tells the contacts it holds sockets of.

mod cluster;
pub mod last_seen;
pub mod roster;
pub mod typing;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use chrono::Utc;
use events_schema::events::{PresenceVisibilitySet, UserRenamed};
use events_schema::{ChatId, UserId};
use infra::db::Database;
use projection_service::read_models::presence::{self as read_models, Contact};
use serde::Serialize;
use socketioxide::socket::Sid;
use socketioxide::SocketIo;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::socket::{outbound, user_room};
use crate::wire::{timestamp, NameChanged, PresenceList, TypingChanged, UserPresence};
use roster::{Announce, Change, Roster};
use typing::{Stopped, TypingBook};

/// The most contacts `presence` lists on connect.
pub const PRESENCE_LIST_MAX: usize = 1_000;
/// The most contacts told of one user's `presence-changed`.
const AUDIENCE_MAX: usize = 10_000;
/// How often graces, silent gateways and unrenewed typing are looked at.
const TICK: Duration = Duration::from_millis(250);

/// What the chat's other members are told about one user's typing.
#[derive(Debug, Clone)]
struct TypingNews {
    user: UserId,
    chat: ChatId,
    typing: bool,
    audience: Vec<UserId>,
}

/// Work done in order, off the sockets' paths.
enum Work {
    Announce(Announce),
    Change(Change),
    Met {
        newcomers: Vec<UserId>,
        others: Vec<UserId>,
    },
}

/// This gateway's view of who is online and who is typing.
pub struct Presence {
    roster: Mutex<Roster>,
    typing: Mutex<TypingBook>,
    work: mpsc::UnboundedSender<Work>,
    news: mpsc::UnboundedSender<TypingNews>,
    cluster: Option<cluster::Cluster>,
    reads: Database,
    io: Arc<OnceLock<SocketIo>>,
}

/// What [`Presence::start`] runs.
pub struct Pending {
    work: mpsc::UnboundedReceiver<Work>,
    news: mpsc::UnboundedReceiver<TypingNews>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing awaits under these locks, so a poisoned one still holds a consistent state.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Presence {
    /// The presence of this gateway: alone (no `nats`), or one of the topology's.
    pub fn new(
        reads: Database,
        io: Arc<OnceLock<SocketIo>>,
        nats: Option<(async_nats::Client, &str)>,
    ) -> (Arc<Self>, Pending) {
        let (work, work_rx) = mpsc::unbounded_channel();
        let (news, news_rx) = mpsc::unbounded_channel();
        let presence = Arc::new(Self {
            roster: Mutex::default(),
            typing: Mutex::default(),
            work,
            news,
            cluster: nats.map(|(client, prefix)| cluster::Cluster::new(client, prefix)),
            reads,
            io,
        });
        let pending = Pending {
            work: work_rx,
            news: news_rx,
        };
        (presence, pending)
    }

    /// Starts the clock, the work in order, and in the topology the conversation with the other
    /// gateways.
    pub async fn start(self: &Arc<Self>, pending: Pending) -> anyhow::Result<Vec<JoinHandle<()>>> {
        let mut tasks = vec![
            tokio::spawn(self.clone().tick()),
            tokio::spawn(self.clone().work(pending.work)),
            tokio::spawn(self.clone().tell_typing(pending.news)),
        ];
        if let Some(cluster) = &self.cluster {
            tasks.extend(cluster.start(self.clone()).await?);
        }
        Ok(tasks)
    }

    /// A socket of `user` arrived.
    pub fn connected(&self, user: &UserId) {
        let (announce, change) = lock(&self.roster).connected(user);
        self.push(announce, change);
    }

    /// A socket of `user` left. Their last one here ends their typing at once; going offline
    /// waits for the grace.
    pub fn disconnected(&self, user: &UserId, socket: Sid) {
        let last = lock(&self.roster).disconnected(user, Instant::now(), Utc::now());
        let mut typing = lock(&self.typing);
        typing.socket_gone(socket);
        if last {
            for stopped in typing.user_gone(user) {
                self.tell(stopped.into());
            }
        }
    }

    fn push(&self, announce: Option<Announce>, change: Option<Change>) {
        if let Some(announce) = announce {
            let _ = self.work.send(Work::Announce(announce));
        }
        if let Some(change) = change {
            let _ = self.work.send(Work::Change(change));
        }
    }

    /// Whether a `typing` request of `socket` in `chat` is within the rate (else it is dropped).
    pub fn admit_typing(&self, socket: Sid, chat: &ChatId) -> bool {
        lock(&self.typing).admit(socket, chat, Instant::now())
    }

    /// `user`, a member of `chat`, says they are typing (or not); `audience` are its other
    /// members.
    pub fn typing(&self, user: &UserId, chat: &ChatId, typing: bool, audience: Vec<UserId>) {
        let tell = lock(&self.typing).set(user, chat, typing, audience.clone(), Instant::now());
        // An end is told even when this gateway did not know of the start: another may have.
        if tell || !typing {
            self.tell(TypingNews {
                user: user.clone(),
                chat: chat.clone(),
                typing,
                audience,
            });
        }
    }

    fn tell(&self, news: TypingNews) {
        let _ = self.news.send(news);
    }

    /// Whether any gateway holds a socket of `user`.
    pub fn is_online(&self, user: &UserId) -> bool {
        lock(&self.roster).is_online(user)
    }

    /// `presence` for `user`: each contact online or not, with when they were last seen.
    pub async fn list(&self, user: &UserId) -> anyhow::Result<PresenceList> {
        let contacts = read_models::contacts(&self.reads, user, PRESENCE_LIST_MAX).await?;
        let shown: Vec<(Contact, bool)> = {
            let roster = lock(&self.roster);
            contacts
                .into_iter()
                .map(|c| {
                    let online = c.visible && roster.is_online(&c.user_id);
                    (c, online)
                })
                .collect()
        };
        let offline: Vec<UserId> = shown
            .iter()
            .filter(|(c, online)| c.visible && !online)
            .map(|(c, _)| c.user_id.clone())
            .collect();
        let seen = last_seen::of(&self.reads, &offline).await?;
        let users = shown
            .into_iter()
            .map(|(c, online)| UserPresence {
                last_seen: match (c.visible, online) {
                    (true, false) => seen.get(&c.user_id).copied().map(timestamp),
                    _ => None,
                },
                online,
                user_id: c.user_id,
            })
            .collect();
        Ok(PresenceList { users })
    }

    /// A user chose to hide or show themselves (delivered from the log, on every gateway): their
    /// contacts here see the matching `presence-changed`.
    pub async fn visibility_changed(&self, set: &PresenceVisibilitySet) {
        let shown = self.as_shown(&set.user_id, set.visible).await;
        self.tell_contacts(&set.user_id, &shown).await;
    }

    /// Contacts were made (a personal chat or a group created, a member added; delivered from the
    /// log, on every gateway). Until now neither side was told of the other: `newcomers` get their
    /// `presence` list again, which now holds the new contacts, and `others` (the group's earlier
    /// members) get one `presence-changed` per newcomer.
    pub fn met(&self, newcomers: Vec<UserId>, others: Vec<UserId>) {
        let _ = self.work.send(Work::Met { newcomers, others });
    }

    async fn introduce(&self, newcomers: &[UserId], others: &[UserId]) {
        for user in newcomers.iter().filter(|u| self.holds(u)) {
            match self.list(user).await {
                Ok(list) => self.emit(std::slice::from_ref(user), "presence", &list),
                Err(e) => tracing::warn!(%user, error = %e, "presence list unavailable"),
            }
        }
        if !others.iter().any(|u| self.holds(u)) {
            return;
        }
        for user in newcomers {
            match read_models::visible(&self.reads, user).await {
                Ok(visible) => {
                    let shown = self.as_shown(user, visible).await;
                    self.emit(others, "presence-changed", &shown);
                }
                Err(e) => tracing::warn!(%user, error = %e, "visibility unavailable"),
            }
        }
    }

    /// `user` as their contacts see them: online, or when last seen; a hidden user offline and
    /// never seen.
    async fn as_shown(&self, user: &UserId, visible: bool) -> UserPresence {
        if !visible {
            return UserPresence {
                last_seen: None,
                online: false,
                user_id: user.clone(),
            };
        }
        let online = self.is_online(user);
        let last_seen = if online {
            None
        } else {
            match last_seen::of(&self.reads, std::slice::from_ref(user)).await {
                Ok(seen) => seen.get(user).copied().map(timestamp),
                Err(e) => {
                    tracing::warn!(error = %e, "last seen unavailable");
                    None
                }
            }
        };
        UserPresence {
            last_seen,
            online,
            user_id: user.clone(),
        }
    }

    /// Whether this gateway holds a socket of `user`.
    fn holds(&self, user: &UserId) -> bool {
        self.io
            .get()
            .is_some_and(|io| !io.to(user_room(user)).sockets().is_empty())
    }

    /// A user renamed themselves (delivered from the log, on every gateway): their contacts here
    /// see `presence-changed {UserId, Name}`, whether or not the user shows themselves online.
    pub async fn renamed(&self, renamed: &UserRenamed) {
        let shown = NameChanged {
            name: &renamed.name,
            user_id: &renamed.user_id,
        };
        self.tell_contacts(&renamed.user_id, &shown).await;
    }

    /// Emits `presence-changed` to the sockets this gateway holds of `user`'s contacts.
    async fn tell_contacts(&self, user: &UserId, shown: &impl Serialize) {
        match read_models::contacts(&self.reads, user, AUDIENCE_MAX).await {
            Ok(contacts) => {
                let audience: Vec<UserId> = contacts.into_iter().map(|c| c.user_id).collect();
                self.emit(&audience, "presence-changed", shown);
            }
            Err(e) => tracing::warn!(%user, error = %e, "contacts unavailable: presence not told"),
        }
    }

    /// Emits `event` to every socket this gateway holds of `users`.
    fn emit<T: Serialize>(&self, users: &[UserId], event: &'static str, payload: &T) {
        if users.is_empty() {
            return;
        }
        let Some(io) = self.io.get() else { return };
        let Some(payload) = outbound::encode(payload) else {
            return;
        };
        let rooms: Vec<String> = users.iter().map(user_room).collect();
        let mut sent = 0;
        for socket in io.to(rooms).sockets() {
            outbound::emit(&socket, event, &payload);
            sent += 1;
        }
        metrics::counter!(infra::telemetry::names::DELIVERIES, "event" => event).increment(sent);
    }

    /// Ends graces, silent gateways and unrenewed typing as time passes.
    async fn tick(self: Arc<Self>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Instant::now();
            let (announces, changes) = lock(&self.roster).tick(now);
            for announce in announces {
                self.push(Some(announce), None);
            }
            for change in changes {
                self.push(None, Some(change));
            }
            let expired = lock(&self.typing).expire(now);
            for stopped in expired {
                self.tell(stopped.into());
            }
            if let Some(cluster) = &self.cluster {
                cluster.beat_if_due(now).await;
            }
        }
    }

    /// Announcements and contacts' news, one at a time in the order they happened, so a user's
    /// online and offline are told in that order.
    async fn work(self: Arc<Self>, mut work: mpsc::UnboundedReceiver<Work>) {
        while let Some(next) = work.recv().await {
            match next {
                Work::Announce(announce) => {
                    if let Some(cluster) = &self.cluster {
                        cluster.announce(&announce).await;
                    }
                }
                Work::Change(change) => self.changed(change).await,
                Work::Met { newcomers, others } => self.introduce(&newcomers, &others).await,
            }
        }
    }

    async fn changed(&self, change: Change) {
        let (user, shown) = match change {
            Change::Online(user) => {
                let shown = UserPresence {
                    last_seen: None,
                    online: true,
                    user_id: user.clone(),
                };
                (user, shown)
            }
            Change::Offline {
                user,
                last_seen,
                record,
            } => {
                if record {
                    if let Err(e) = last_seen::record(&self.reads, &user, last_seen).await {
                        tracing::warn!(%user, error = %e, "last seen not recorded");
                    }
                }
                let shown = UserPresence {
                    last_seen: Some(timestamp(last_seen)),
                    online: false,
                    user_id: user.clone(),
                };
                (user, shown)
            }
        };
        match read_models::visible(&self.reads, &user).await {
            // A hidden user's contacts see them offline throughout: nothing changes for them.
            Ok(false) => {}
            Ok(true) => self.tell_contacts(&user, &shown).await,
            Err(e) => {
                tracing::warn!(%user, error = %e, "visibility unavailable: presence not told")
            }
        }
    }

    /// Typing news, in order: to every gateway in the topology (each emits to its sockets), else
    /// to this gateway's sockets.
    async fn tell_typing(self: Arc<Self>, mut news: mpsc::UnboundedReceiver<TypingNews>) {
        while let Some(news) = news.recv().await {
            match &self.cluster {
                Some(cluster) if cluster.tell_typing(&news).await => {}
                _ => self.emit_typing(&news),
            }
        }
    }

    fn emit_typing(&self, news: &TypingNews) {
        let payload = TypingChanged {
            chat_id: &news.chat,
            typing: news.typing,
            user_id: &news.user,
        };
        self.emit(&news.audience, "typing", &payload);
    }

    /// The gateway is stopping: its users are recorded as last seen now (unless they left
    /// before), and in the topology the others keep them online for a grace, for them to
    /// reconnect elsewhere.
    pub async fn stop(&self) {
        let users = lock(&self.roster).local_last_seen(Utc::now());
        for (user, at) in users {
            if let Err(e) = last_seen::record(&self.reads, &user, at).await {
                tracing::debug!(%user, error = %e, "last seen not recorded on stop");
            }
        }
        if let Some(cluster) = &self.cluster {
            cluster.bye().await;
        }
    }
}

impl From<Stopped> for TypingNews {
    fn from(stopped: Stopped) -> Self {
        Self {
            user: stopped.user,
            chat: stopped.chat,
            typing: false,
            audience: stopped.audience,
        }
    }
}
