//! `AUTH_RATE_LIMIT` per client address on each auth route, checked before any password hashing;
//! and the client's address, which the per-address socket limit counts too.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::DefaultKeyedRateLimiter;
use infra::config::RateLimit;

use super::quota;

/// The auth routes that are limited, each with its own budget per address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthRoute {
    Signup,
    Login,
    Resend,
    Verify,
    Refresh,
    PasswordForgot,
    PasswordReset,
}

/// A refused request: the client's budget on that route is spent for this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    /// Whole seconds, rounded up.
    pub secs: u64,
}

pub struct AuthRateLimiter {
    limiter: DefaultKeyedRateLimiter<(AuthRoute, IpAddr)>,
    trust_proxy: bool,
}

impl AuthRateLimiter {
    pub fn new(limit: &RateLimit, trust_proxy: bool) -> Self {
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(quota(limit)),
            trust_proxy,
        }
    }

    /// Spends one request of `route` for the client, or refuses with the time to wait.
    pub fn check(
        &self,
        route: AuthRoute,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<(), RetryAfter> {
        let ip = self.client_ip(peer, headers);
        self.limiter.check_key(&(route, ip)).map_err(|not_until| {
            metrics::counter!(infra::telemetry::names::RATE_LIMITED, "limit" => "auth")
                .increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            RetryAfter {
                secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Forgets addresses that are back to a full budget (called periodically).
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// The TCP peer, or behind a trusted proxy the last hop of `X-Forwarded-For`.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        if self.trust_proxy {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .next_back()
                .and_then(|hop| hop.trim().parse::<IpAddr>().ok());
            if let Some(ip) = forwarded {
                return ip;
            }
        }
        peer.ip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_budget_is_per_route_and_address() {
        let limiter = AuthRateLimiter::new(
            &RateLimit {
                count: 2,
                per: Duration::from_secs(60),
            },
            false,
        );
        let a: SocketAddr = "10.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:1000".parse().unwrap();
        let h = HeaderMap::new();
        assert!(limiter.check(AuthRoute::Login, a, &h).is_ok());
        assert!(limiter.check(AuthRoute::Login, a, &h).is_ok());
        match limiter.check(AuthRoute::Login, a, &h) {
            Err(RetryAfter { secs }) => assert!((1..=30).contains(&secs)),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        assert!(limiter.check(AuthRoute::Signup, a, &h).is_ok());
        assert!(limiter.check(AuthRoute::Login, b, &h).is_ok());
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let limit = RateLimit {
            count: 1,
            per: Duration::from_secs(60),
        };
        assert_eq!(
            AuthRateLimiter::new(&limit, true).client_ip(peer, &h),
            "2.2.2.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            AuthRateLimiter::new(&limit, false).client_ip(peer, &h),
            peer.ip()
        );
    }
}
