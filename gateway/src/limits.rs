//! What one user or one client address may hold or ask of this gateway: sockets at once, and
//! chat creations, user searches and member additions per unit of time (docs/security.md). Going
//! over is `rate_limited`, never a silent drop. Every count is per gateway process, as the auth
//! routes' limit ([`AuthRateLimiter`]) is.

mod auth_routes;

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use events_schema::UserId;
use governor::{DefaultKeyedRateLimiter, Quota};
use infra::config::{AbuseLimits, RateLimit};
use infra::telemetry::names;

pub use auth_routes::{AuthRateLimiter, AuthRoute, RetryAfter};

/// A request kind with a per-user budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// `create-personal-chat`, `create-group-chat`.
    Creation,
    /// `search-user`, `search-messages`.
    Search,
    /// `add-member`.
    Addition,
}

pub struct Limits {
    sockets: Mutex<SocketCounts>,
    sockets_per_user: Option<u32>,
    sockets_per_address: Option<u32>,
    creations: DefaultKeyedRateLimiter<UserId>,
    searches: DefaultKeyedRateLimiter<UserId>,
    additions: DefaultKeyedRateLimiter<UserId>,
}

#[derive(Default)]
struct SocketCounts {
    by_user: HashMap<UserId, u32>,
    by_address: HashMap<IpAddr, u32>,
}

/// Why a socket was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooMany {
    UserSockets,
    AddressSockets,
}

impl TooMany {
    pub fn message(self) -> &'static str {
        match self {
            TooMany::UserSockets => "too many connections for this account",
            TooMany::AddressSockets => "too many connections from this address",
        }
    }
}

/// A connected socket's place in the counts, given back when dropped (with the socket).
pub struct SocketSlot {
    limits: Arc<Limits>,
    user: UserId,
    address: IpAddr,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        metrics::gauge!(names::SOCKETS_CONNECTED).decrement(1.0);
        let mut counts = self.limits.lock();
        release(&mut counts.by_user, &self.user);
        release(&mut counts.by_address, &self.address);
    }
}

fn release<K: Hash + Eq>(counts: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

/// `count` per `per`, spread evenly, with bursts of up to `count`.
fn quota(limit: &RateLimit) -> Quota {
    let count = NonZeroU32::new(limit.count).unwrap_or(NonZeroU32::MIN);
    let period = limit.per / count.get();
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(count))
        .allow_burst(count)
}

fn keyed(limit: &RateLimit) -> DefaultKeyedRateLimiter<UserId> {
    DefaultKeyedRateLimiter::keyed(quota(limit))
}

impl Limits {
    pub fn new(settings: &AbuseLimits) -> Self {
        Self {
            sockets: Mutex::default(),
            sockets_per_user: settings.sockets_per_user,
            sockets_per_address: settings.sockets_per_address,
            creations: keyed(&settings.creations),
            searches: keyed(&settings.searches),
            additions: keyed(&settings.additions),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SocketCounts> {
        // Counts are updated whole under the lock; a poisoned lock still holds them.
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one more socket of `user` from `address`, unless either is at its limit.
    pub fn admit_socket(
        self: &Arc<Self>,
        user: &UserId,
        address: IpAddr,
    ) -> Result<SocketSlot, TooMany> {
        let mut counts = self.lock();
        let of_user = counts.by_user.get(user).copied().unwrap_or(0);
        if self.sockets_per_user.is_some_and(|max| of_user >= max) {
            metrics::counter!(names::RATE_LIMITED, "limit" => "sockets_per_user").increment(1);
            return Err(TooMany::UserSockets);
        }
        let of_address = counts.by_address.get(&address).copied().unwrap_or(0);
        if self
            .sockets_per_address
            .is_some_and(|max| of_address >= max)
        {
            metrics::counter!(names::RATE_LIMITED, "limit" => "sockets_per_address").increment(1);
            return Err(TooMany::AddressSockets);
        }
        metrics::gauge!(names::SOCKETS_CONNECTED).increment(1.0);
        *counts.by_user.entry(user.clone()).or_default() += 1;
        *counts.by_address.entry(address).or_default() += 1;
        Ok(SocketSlot {
            limits: self.clone(),
            user: user.clone(),
            address,
        })
    }

    /// Spends one of `user`'s `budget`; `false` when it is spent.
    pub fn spend(&self, budget: Budget, user: &UserId) -> bool {
        let (limiter, name) = match budget {
            Budget::Creation => (&self.creations, "create"),
            Budget::Search => (&self.searches, "search"),
            Budget::Addition => (&self.additions, "add_member"),
        };
        let spent = limiter.check_key(user).is_ok();
        if !spent {
            metrics::counter!(names::RATE_LIMITED, "limit" => name).increment(1);
        }
        spent
    }

    /// Forgets users back to a full budget (called periodically).
    pub fn sweep(&self) {
        for limiter in [&self.creations, &self.searches, &self.additions] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(per_user: u32, per_address: u32, searches: u32) -> Arc<Limits> {
        let rate = |count| RateLimit {
            count,
            per: Duration::from_secs(60),
        };
        Arc::new(Limits::new(&AbuseLimits {
            sockets_per_user: Some(per_user),
            sockets_per_address: Some(per_address),
            creations: rate(100),
            searches: rate(searches),
            additions: rate(100),
        }))
    }

    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    #[test]
    fn sockets_are_counted_per_user_and_address_and_given_back() {
        let limits = limits(2, 3, 1);
        let here: IpAddr = "10.0.0.1".parse().unwrap();
        let there: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limits.admit_socket(&user("a"), here).unwrap();
        let _a2 = limits.admit_socket(&user("a"), there).unwrap();
        assert_eq!(
            limits.admit_socket(&user("a"), here).err(),
            Some(TooMany::UserSockets)
        );
        let _b1 = limits.admit_socket(&user("b"), here).unwrap();
        let _c1 = limits.admit_socket(&user("c"), here).unwrap();
        assert_eq!(
            limits.admit_socket(&user("d"), here).err(),
            Some(TooMany::AddressSockets)
        );
        drop(a1);
        assert!(limits.admit_socket(&user("d"), here).is_ok());
        assert!(limits.admit_socket(&user("a"), there).is_ok());
    }

    #[test]
    fn a_slot_dropped_leaves_no_entry_behind() {
        let limits = limits(2, 2, 1);
        let slot = limits.admit_socket(&user("a"), "10.0.0.1".parse().unwrap());
        drop(slot);
        let counts = limits.lock();
        assert!(counts.by_user.is_empty() && counts.by_address.is_empty());
    }

    #[test]
    fn budgets_are_per_user_and_per_kind() {
        let limits = limits(2, 2, 1);
        assert!(limits.spend(Budget::Search, &user("a")));
        assert!(!limits.spend(Budget::Search, &user("a")));
        assert!(limits.spend(Budget::Search, &user("b")));
        assert!(limits.spend(Budget::Creation, &user("a")));
    }
}
