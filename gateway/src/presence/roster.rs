//! Who is online, as one gateway sees it: the users with sockets here (kept online for a grace
//! after their last socket leaves, so a quick reconnect changes nothing), and the users every other
//! gateway announced, each gateway forgotten when it stops announcing. Pure: every method takes
//! the time, and answers what must be announced to the other gateways and what changed for the
//! user's contacts.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use events_schema::UserId;
use tokio::time::Instant;

/// How long a user whose last socket left stays online: a reconnect within it is invisible.
pub const GRACE: Duration = Duration::from_secs(5);
/// How long another gateway's users stay online after the last word from it.
pub const EXPIRY: Duration = Duration::from_secs(10);

/// What the other gateways must be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announce {
    /// The user's first socket on this gateway arrived.
    Join(UserId),
    /// The user's last socket on this gateway left (at `at`), and the grace is over.
    Leave(UserId, DateTime<Utc>),
}

/// What the user's contacts must be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Online(UserId),
    /// Offline since `last_seen`; `record` says whether this gateway writes it down (it saw the
    /// last socket leave, or the gateway holding it went silent).
    Offline {
        user: UserId,
        last_seen: DateTime<Utc>,
        record: bool,
    },
}

/// A user's sockets on this gateway.
#[derive(Debug)]
struct Local {
    sockets: usize,
    /// The last socket left at the wall-clock time, and the grace ends at the instant.
    leaving: Option<(Instant, DateTime<Utc>)>,
}

/// Another gateway, by what it announced.
#[derive(Debug)]
struct Remote {
    users: HashSet<UserId>,
    /// Its users are forgotten past this instant, unless it is heard from again.
    deadline: Instant,
    /// When it was last heard from, as the offline time of its users if it goes silent.
    heard: DateTime<Utc>,
}

/// The online users, here and elsewhere.
#[derive(Debug, Default)]
pub struct Roster {
    local: HashMap<UserId, Local>,
    remote: HashMap<String, Remote>,
}

impl Roster {
    /// A socket of `user` arrived here. Their first announces a join, and makes them online if no
    /// gateway had them (a socket arriving during the grace only ends the grace).
    pub fn connected(&mut self, user: &UserId) -> (Option<Announce>, Option<Change>) {
        if let Some(local) = self.local.get_mut(user) {
            local.sockets += 1;
            local.leaving = None;
            return (None, None);
        }
        let elsewhere = self.online_elsewhere(user);
        self.local.insert(
            user.clone(),
            Local {
                sockets: 1,
                leaving: None,
            },
        );
        let change = (!elsewhere).then(|| Change::Online(user.clone()));
        (Some(Announce::Join(user.clone())), change)
    }

    /// A socket of `user` left at `now` (`wall`). Answers whether it was their last here: the
    /// grace starts, and typing ends.
    pub fn disconnected(&mut self, user: &UserId, now: Instant, wall: DateTime<Utc>) -> bool {
        let Some(local) = self.local.get_mut(user) else {
            return false;
        };
        local.sockets = local.sockets.saturating_sub(1);
        if local.sockets > 0 {
            return false;
        }
        local.leaving = Some((now + GRACE, wall));
        true
    }

    /// What the time `now` ends: graces (announced leaves, and offline unless another gateway
    /// has the user) and silent gateways (their users offline unless online elsewhere).
    pub fn tick(&mut self, now: Instant) -> (Vec<Announce>, Vec<Change>) {
        let mut announces = Vec::new();
        let mut changes = Vec::new();
        let over: Vec<(UserId, DateTime<Utc>)> = self
            .local
            .iter()
            .filter_map(|(user, local)| match local.leaving {
                Some((deadline, at)) if deadline <= now => Some((user.clone(), at)),
                _ => None,
            })
            .collect();
        for (user, at) in over {
            self.local.remove(&user);
            announces.push(Announce::Leave(user.clone(), at));
            if !self.online_elsewhere(&user) {
                changes.push(Change::Offline {
                    user,
                    last_seen: at,
                    record: true,
                });
            }
        }
        let silent: Vec<String> = self
            .remote
            .iter()
            .filter(|(_, remote)| remote.deadline <= now)
            .map(|(node, _)| node.clone())
            .collect();
        for node in silent {
            let Some(remote) = self.remote.remove(&node) else {
                continue;
            };
            for user in remote.users {
                if !self.is_online(&user) {
                    changes.push(Change::Offline {
                        user,
                        last_seen: remote.heard,
                        record: true,
                    });
                }
            }
        }
        (announces, changes)
    }

    /// Gateway `node` was heard from at `now`: its users stay online a while longer.
    pub fn heard(&mut self, node: &str, now: Instant, wall: DateTime<Utc>) {
        let remote = self
            .remote
            .entry(node.to_owned())
            .or_insert_with(|| Remote {
                users: HashSet::new(),
                deadline: now,
                heard: wall,
            });
        remote.deadline = now + EXPIRY;
        remote.heard = wall;
    }

    /// Gateway `node` is stopping: its users stay online for a grace (they reconnect elsewhere).
    pub fn stopping(&mut self, node: &str, now: Instant, wall: DateTime<Utc>) {
        if let Some(remote) = self.remote.get_mut(node) {
            remote.deadline = now + GRACE;
            remote.heard = wall;
        }
    }

    /// Gateway `node` holds a socket of `user`.
    pub fn joined(
        &mut self,
        node: &str,
        user: &UserId,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Option<Change> {
        let was_online = self.is_online(user);
        self.heard(node, now, wall);
        let remote = self.remote.get_mut(node)?;
        remote.users.insert(user.clone());
        (!was_online).then(|| Change::Online(user.clone()))
    }

    /// Gateway `node` no longer holds a socket of `user`, since `at`.
    pub fn left(
        &mut self,
        node: &str,
        user: &UserId,
        at: DateTime<Utc>,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Option<Change> {
        self.heard(node, now, wall);
        let removed = self
            .remote
            .get_mut(node)
            .is_some_and(|remote| remote.users.remove(user));
        (removed && !self.is_online(user)).then(|| Change::Offline {
            user: user.clone(),
            last_seen: at,
            record: false,
        })
    }

    /// Whether any gateway holds a socket of `user` (or is within its grace).
    pub fn is_online(&self, user: &UserId) -> bool {
        self.local.contains_key(user) || self.online_elsewhere(user)
    }

    fn online_elsewhere(&self, user: &UserId) -> bool {
        self.remote
            .values()
            .any(|remote| remote.users.contains(user))
    }

    /// The users this gateway holds (within their grace too), for a gateway that asks.
    pub fn local_users(&self) -> Vec<UserId> {
        self.local.keys().cloned().collect()
    }

    /// The users this gateway holds and when each left, if they did (for a stop).
    pub fn local_last_seen(&self, wall: DateTime<Utc>) -> Vec<(UserId, DateTime<Utc>)> {
        self.local
            .iter()
            .map(|(user, local)| (user.clone(), local.leaving.map_or(wall, |(_, at)| at)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    fn wall() -> DateTime<Utc> {
        Utc::now()
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_socket_announces_a_join_and_brings_the_user_online_once() {
        let mut roster = Roster::default();
        let (announce, change) = roster.connected(&u("a"));
        assert_eq!(announce, Some(Announce::Join(u("a"))));
        assert_eq!(change, Some(Change::Online(u("a"))));
        assert_eq!(roster.connected(&u("a")), (None, None));
        // One of two sockets leaving is nothing.
        assert!(!roster.disconnected(&u("a"), Instant::now(), wall()));
        tokio::time::advance(GRACE * 2).await;
        assert_eq!(roster.tick(Instant::now()), (vec![], vec![]));
        assert!(roster.is_online(&u("a")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconnect_within_the_grace_changes_nothing() {
        let mut roster = Roster::default();
        roster.connected(&u("a"));
        assert!(roster.disconnected(&u("a"), Instant::now(), wall()));
        tokio::time::advance(GRACE - Duration::from_millis(100)).await;
        assert_eq!(roster.tick(Instant::now()), (vec![], vec![]));
        assert_eq!(roster.connected(&u("a")), (None, None));
        tokio::time::advance(GRACE * 3).await;
        assert_eq!(roster.tick(Instant::now()), (vec![], vec![]));
        assert!(roster.is_online(&u("a")));
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_grace_the_user_leaves_and_is_offline_since_their_last_socket_left() {
        let mut roster = Roster::default();
        roster.connected(&u("a"));
        let left_at = wall();
        roster.disconnected(&u("a"), Instant::now(), left_at);
        tokio::time::advance(GRACE / 2).await;
        assert_eq!(roster.tick(Instant::now()), (vec![], vec![]));
        assert!(roster.is_online(&u("a")), "online during the grace");
        tokio::time::advance(GRACE / 2).await;
        let (announces, changes) = roster.tick(Instant::now());
        assert_eq!(announces, vec![Announce::Leave(u("a"), left_at)]);
        assert_eq!(
            changes,
            vec![Change::Offline {
                user: u("a"),
                last_seen: left_at,
                record: true
            }]
        );
        assert!(!roster.is_online(&u("a")));
        // Once only.
        assert_eq!(roster.tick(Instant::now()), (vec![], vec![]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_user_on_two_gateways_is_online_until_both_let_go() {
        let mut roster = Roster::default();
        let now = Instant::now();
        assert_eq!(
            roster.joined("other", &u("a"), now, wall()),
            Some(Change::Online(u("a")))
        );
        // Their socket here arrives: announced, but they were online already.
        assert_eq!(
            roster.connected(&u("a")),
            (Some(Announce::Join(u("a"))), None)
        );
        assert_eq!(roster.left("other", &u("a"), wall(), now, wall()), None);
        let left_at = wall();
        roster.disconnected(&u("a"), Instant::now(), left_at);
        tokio::time::advance(GRACE).await;
        let (_, changes) = roster.tick(Instant::now());
        assert_eq!(
            changes,
            vec![Change::Offline {
                user: u("a"),
                last_seen: left_at,
                record: true
            }]
        );
        // The other way round: the other gateway's leave ends it, and this one does not record it.
        roster.joined("other", &u("b"), Instant::now(), wall());
        let at = wall();
        assert_eq!(
            roster.left("other", &u("b"), at, Instant::now(), wall()),
            Some(Change::Offline {
                user: u("b"),
                last_seen: at,
                record: false
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_gateway_expires_with_its_users_unless_heard_from() {
        let mut roster = Roster::default();
        let heard = wall();
        roster.joined("other", &u("a"), Instant::now(), heard);
        roster.joined("other", &u("b"), Instant::now(), heard);
        roster.connected(&u("b"));
        tokio::time::advance(EXPIRY / 2).await;
        let later = wall();
        roster.heard("other", Instant::now(), later);
        tokio::time::advance(EXPIRY - Duration::from_millis(1)).await;
        assert_eq!(roster.tick(Instant::now()), (vec![], vec![]));
        assert!(roster.is_online(&u("a")));
        tokio::time::advance(Duration::from_millis(1)).await;
        let (announces, changes) = roster.tick(Instant::now());
        assert!(announces.is_empty());
        // `b` still has a socket here.
        assert_eq!(
            changes,
            vec![Change::Offline {
                user: u("a"),
                last_seen: later,
                record: true
            }]
        );
        assert!(!roster.is_online(&u("a")));
        assert!(roster.is_online(&u("b")));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopping_gateway_keeps_its_users_online_for_a_grace() {
        let mut roster = Roster::default();
        roster.joined("other", &u("a"), Instant::now(), wall());
        roster.stopping("other", Instant::now(), wall());
        tokio::time::advance(GRACE - Duration::from_millis(1)).await;
        // They reconnect here meanwhile: no change at all.
        assert_eq!(
            roster.connected(&u("a")),
            (Some(Announce::Join(u("a"))), None)
        );
        tokio::time::advance(GRACE).await;
        assert_eq!(roster.tick(Instant::now()), (vec![], vec![]));
        assert!(roster.is_online(&u("a")));
    }
}
