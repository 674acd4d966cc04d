//! Reconnect storm: N sockets connected, then every connection dropped at once (no goodbye, as a
//! lost network or a restarted load balancer would), and each client reconnecting after a random
//! delay within the jitter, retrying with backoff as socket.io-client does. Measured: the time from
//! the drop until every socket is back and resynced (has its chat lists again).
//!
//! With `--contacts N` every user first gets N contacts (groups of N + 1 users), so that each
//! reconnect also reads a presence list of N, and the `presence-changed` the reconnected sockets
//! receive from the drop until a grace after the last is back are counted: a storm within the
//! grace should cause none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use futures::stream::{self, StreamExt};
use rand::Rng;
use serde_json::json;

use super::Outcome;
use crate::client::EventSink;
use crate::ctx::{quiet, Ctx};
use crate::metrics::{round3, Latency};
use crate::progress;

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct ReconnectArgs {
    /// Sockets in the storm.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    /// Accounts they belong to.
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Each client waits a random 0..jitter ms before reconnecting.
    #[arg(long, default_value_t = 2000)]
    pub jitter_ms: u64,
    /// Attempts per client before it gives up.
    #[arg(long, default_value_t = 10)]
    pub attempts: u32,
    /// Contacts of each user (fellow members of a group of this many + 1; 0: none).
    #[arg(long, default_value_t = 0)]
    pub contacts: usize,
}

/// How long after the last socket is back `presence-changed` are still counted: the server's
/// grace (5 s) and a margin.
const PRESENCE_WATCH: Duration = Duration::from_secs(7);
/// The longest wait for the first connects' news to die down.
const SETTLE_WITHIN: Duration = Duration::from_secs(300);

pub async fn run(ctx: &Ctx, args: &ReconnectArgs) -> Result<Outcome> {
    if args.sockets == 0 || args.users == 0 {
        bail!("--sockets and --users must be at least 1");
    }
    let accounts = ctx.accounts(args.users).await?;
    // The news of the first connects (each user coming online to their contacts) is let die down
    // before the drop, so that what is counted afterwards is the storm's own.
    let heard = Arc::new(std::sync::Mutex::new(Instant::now()));
    let listening: EventSink = {
        let heard = heard.clone();
        Arc::new(move |event: &str, _: &str, at| {
            if event == "presence-changed" {
                if let Ok(mut last) = heard.lock() {
                    *last = at;
                }
            }
        })
    };
    let fleet = ctx
        .connect_many(
            0..args.sockets,
            &accounts,
            |i| i % args.users,
            |_| {
                if args.contacts > 0 {
                    listening.clone()
                } else {
                    quiet()
                }
            },
            "connecting",
        )
        .await;
    fleet.require_all("sockets")?;
    if args.contacts > 0 {
        make_contacts(ctx, args, &accounts, &fleet.sockets).await?;
        let settle = Instant::now();
        while settle.elapsed() < SETTLE_WITHIN {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let quiet_for = heard.lock().map(|last| last.elapsed()).unwrap_or_default();
            if quiet_for >= PRESENCE_WATCH / 2 {
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = ctx.procs.sample()?;
    let dropped_at = Instant::now();
    for s in fleet.sockets.iter().flatten() {
        s.abort();
    }
    let latency = Latency::new();
    let bar = progress::bar(args.sockets as u64, "reconnecting");
    let delays: Vec<u64> = {
        let mut rng = rand::rng();
        (0..args.sockets)
            .map(|_| rng.random_range(0..=args.jitter_ms))
            .collect()
    };
    let accounts = Arc::new(accounts);
    let errors: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let presence_changed = Arc::new(AtomicU64::new(0));
    let counting: EventSink = {
        let presence_changed = presence_changed.clone();
        Arc::new(move |event: &str, _: &str, _| {
            if event == "presence-changed" {
                presence_changed.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let outcomes: Vec<(Option<crate::client::Socket>, u32)> = stream::iter(0..args.sockets)
        .map(|i| {
            let bar = bar.clone();
            let latency = latency.clone();
            let accounts = accounts.clone();
            let delay = delays[i];
            let errors = errors.clone();
            let counting = counting.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let mut backoff = Duration::from_millis(100);
                for attempt in 1..=args.attempts {
                    let t = Instant::now();
                    match ctx
                        .connect(i, &accounts[i % args.users], counting.clone())
                        .await
                    {
                        Ok((socket, _)) => {
                            latency.record(t.elapsed());
                            bar.inc(1);
                            return (Some(socket), attempt);
                        }
                        Err(e) => {
                            if let Ok(mut errors) = errors.lock() {
                                let e = format!("{e:#}");
                                if errors.len() < 5 && !errors.contains(&e) {
                                    errors.push(e);
                                }
                            }
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                        }
                    }
                }
                bar.inc(1);
                (None, args.attempts)
            }
        })
        .buffer_unordered(args.sockets.max(1))
        .collect()
        .await;
    let all_back = dropped_at.elapsed();
    bar.finish_and_clear();
    let after = ctx.procs.sample()?;
    let back = outcomes.iter().filter(|(s, _)| s.is_some()).count();
    if args.contacts > 0 {
        tokio::time::sleep(PRESENCE_WATCH).await;
    }
    let presence_changed = presence_changed.load(Ordering::Relaxed);
    for (s, _) in &outcomes {
        if let Some(s) = s {
            s.close();
        }
    }
    let retried = outcomes.iter().filter(|(_, a)| *a > 1).count();
    Ok(Outcome {
        params: serde_json::to_value(args)?,
        results: json!({
            "sockets": args.sockets,
            "users": args.users,
            "jitter_ms": args.jitter_ms,
            "back_and_resynced": back,
            "gave_up": args.sockets - back,
            "needed_a_retry": retried,
            "first_errors": errors.lock().map(|e| e.join(" | ")).unwrap_or_default(),
            "all_back_seconds": round3(all_back.as_secs_f64()),
            "contacts": args.contacts,
            "presence_changed_received": presence_changed,
            "first_connect_per_second": round3(args.sockets as f64 / fleet.elapsed.as_secs_f64().max(1e-9)),
        }),
        server: ctx
            .procs
            .between(&before, &after, Some(("sockets", back as u64))),
        latencies: vec![
            ("first connect and resync".into(), fleet.latency.snapshot()),
            ("reconnect and resync".into(), latency.snapshot()),
        ],
    })
}

/// Gives every user `--contacts` contacts: consecutive users in groups of `contacts + 1`, each
/// created by its first member's socket (socket `i` belongs to user `i` for `i < users`).
async fn make_contacts(
    ctx: &Ctx,
    args: &ReconnectArgs,
    accounts: &[crate::accounts::Account],
    sockets: &[Option<crate::client::Socket>],
) -> Result<()> {
    let size = args.contacts + 1;
    let groups: Vec<&[crate::accounts::Account]> = accounts.chunks(size).collect();
    let bar = progress::bar(groups.len() as u64, "making contacts");
    let created: Vec<Result<String>> = stream::iter(groups.iter().enumerate())
        .map(|(g, members)| {
            let bar = bar.clone();
            async move {
                let admin = sockets
                    .get(g * size)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| anyhow::anyhow!("no socket for group {g}'s admin"))?;
                let others: Vec<&str> = members[1..].iter().map(|a| a.user_id.as_str()).collect();
                let id = admin
                    .request_id(
                        "create-group-chat",
                        &json!({"Name": "contacts", "Description": "loadgen", "Participants": others}),
                        "create-group-chat-creator",
                        "GroupId",
                        ctx.timeout,
                    )
                    .await;
                bar.inc(1);
                id
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    bar.finish_and_clear();
    created.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(())
}
