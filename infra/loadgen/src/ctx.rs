//! What every scenario needs: the servers, accounts, connecting many sockets, the watched processes.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::stream::{self, StreamExt};

use crate::accounts::{Account, Signup};
use crate::client::{Connected, Dialer, Endpoint, EventSink, Socket};
use crate::metrics::{Latency, Processes};
use crate::progress;

/// Connections bound to one source address before the next one is used, by default: the
/// kernel's ephemeral range (32768–60999 by default) holds about 28,000 ports per address.
pub const SOCKETS_PER_SOURCE: usize = 25_000;

pub struct Ctx {
    pub endpoints: Vec<Endpoint>,
    pub dialer: Dialer,
    pub signup: Signup,
    pub accounts_file: Option<PathBuf>,
    pub procs: Processes,
    pub connect_concurrency: usize,
    pub timeout: Duration,
    /// Sockets to one server address per source address (see [`Ctx::source`]).
    pub sockets_per_source: usize,
}

/// How many connection errors a fleet keeps, to name in its report.
const FIRST_ERRORS: usize = 5;

/// Many sockets connected at once, with what it took.
pub struct Fleet {
    pub sockets: Vec<Option<Socket>>,
    pub connected: Vec<Option<Connected>>,
    pub latency: Latency,
    pub failed: usize,
    pub first_errors: Vec<String>,
    pub elapsed: Duration,
}

impl Fleet {
    /// Fails unless every socket connected, naming the first errors.
    pub fn require_all(&self, what: &str) -> Result<()> {
        if self.failed > 0 {
            anyhow::bail!(
                "{} {what} did not connect: {}",
                self.failed,
                self.first_errors.join(" | ")
            );
        }
        Ok(())
    }

    pub fn ok(&self) -> usize {
        self.sockets.iter().filter(|s| s.is_some()).count()
    }

    /// Appends a fleet connected after this one, whose indices follow this one's.
    pub fn append(&mut self, later: Fleet) {
        self.sockets.extend(later.sockets);
        self.connected.extend(later.connected);
        self.latency.add(&later.latency);
        self.failed += later.failed;
        let room = FIRST_ERRORS.saturating_sub(self.first_errors.len());
        self.first_errors
            .extend(later.first_errors.into_iter().take(room));
        self.elapsed += later.elapsed;
    }

    /// How many distinct local addresses the connected sockets have.
    pub fn source_addresses(&self) -> usize {
        self.connected
            .iter()
            .flatten()
            .map(|c| c.local.ip())
            .collect::<std::collections::HashSet<_>>()
            .len()
    }
}

impl Ctx {
    pub fn endpoint(&self, i: usize) -> &Endpoint {
        &self.endpoints[i % self.endpoints.len()]
    }

    /// The source address of socket `i`: the kernel's choice for the first `sockets_per_source`
    /// (25,000) to each server address, then 127.0.0.2, 127.0.0.3 … when the server is on
    /// loopback.
    pub fn source(&self, i: usize) -> Option<IpAddr> {
        let per_endpoint = i / self.endpoints.len();
        let slot = per_endpoint / self.sockets_per_source.max(1);
        let loopback = self.endpoint(i).addr.ip().is_loopback();
        (slot > 0 && loopback)
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, (1 + slot).min(254) as u8)))
    }

    pub async fn accounts(&self, n: usize) -> Result<Vec<Account>> {
        self.signup.accounts(n, self.accounts_file.as_deref()).await
    }

    pub async fn connect(
        &self,
        i: usize,
        account: &Account,
        sink: EventSink,
    ) -> Result<(Socket, Connected)> {
        self.dialer
            .connect(
                self.endpoint(i),
                self.source(i),
                &account.auth(),
                sink,
                self.timeout,
            )
            .await
    }

    /// Connects socket `i` (for i in `indices`) as `account_of(i)`, `connect_concurrency` at a time.
    pub async fn connect_many(
        &self,
        indices: std::ops::Range<usize>,
        accounts: &[Account],
        account_of: impl Fn(usize) -> usize,
        sink_of: impl Fn(usize) -> EventSink,
        label: &str,
    ) -> Fleet {
        let latency = Latency::new();
        let bar = progress::bar(indices.len() as u64, label);
        let started = Instant::now();
        let n = indices.len();
        let first = indices.start;
        let results: Vec<(usize, Result<(Socket, Connected)>)> = stream::iter(indices)
            .map(|i| {
                let account = &accounts[account_of(i)];
                let sink = sink_of(i);
                let bar = bar.clone();
                let latency = latency.clone();
                async move {
                    let r = self.connect(i, account, sink).await;
                    if let Ok((_, c)) = &r {
                        latency.record(c.resync);
                    }
                    bar.inc(1);
                    (i, r)
                }
            })
            .buffer_unordered(self.connect_concurrency.max(1))
            .collect()
            .await;
        bar.finish_and_clear();
        let mut fleet = Fleet {
            sockets: vec![None; n],
            connected: vec![None; n],
            latency,
            failed: 0,
            first_errors: Vec::new(),
            elapsed: started.elapsed(),
        };
        for (i, r) in results {
            match r {
                Ok((s, c)) => {
                    fleet.sockets[i - first] = Some(s);
                    fleet.connected[i - first] = Some(c);
                }
                Err(e) => {
                    fleet.failed += 1;
                    if fleet.first_errors.len() < FIRST_ERRORS {
                        fleet.first_errors.push(format!("{e:#}"));
                    }
                }
            }
        }
        fleet
    }
}

/// A sink that ignores every event.
pub fn quiet() -> EventSink {
    Arc::new(|_, _, _| {})
}
