//! Reconnect storm: N sockets connected, then every connection dropped at once (no goodbye, as a
//! lost network or a restarted load balancer would), and each client reconnecting after a random
//! delay within the jitter, retrying with backoff as socket.io-client does. Measured: the time from
//! the drop until every socket is back and resynced (has its chat lists again).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use futures::stream::{self, StreamExt};
use rand::Rng;
use serde_json::json;

use super::Outcome;
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
}

pub async fn run(ctx: &Ctx, args: &ReconnectArgs) -> Result<Outcome> {
    if args.sockets == 0 || args.users == 0 {
        bail!("--sockets and --users must be at least 1");
    }
    let accounts = ctx.accounts(args.users).await?;
    let fleet = ctx
        .connect_many(
            0..args.sockets,
            &accounts,
            |i| i % args.users,
            |_| quiet(),
            "connecting",
        )
        .await;
    fleet.require_all("sockets")?;
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
    let outcomes: Vec<(Option<crate::client::Socket>, u32)> = stream::iter(0..args.sockets)
        .map(|i| {
            let bar = bar.clone();
            let latency = latency.clone();
            let accounts = accounts.clone();
            let delay = delays[i];
            let errors = errors.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let mut backoff = Duration::from_millis(100);
                for attempt in 1..=args.attempts {
                    let t = Instant::now();
                    match ctx.connect(i, &accounts[i % args.users], quiet()).await {
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
