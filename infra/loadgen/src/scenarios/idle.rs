//! Idle: N authenticated sockets held open → the server's RSS per socket, connects/s, connect p99.
//!
//! The sockets connect in two halves. Besides the growth over all of them, the report gives the
//! growth over the second half alone (`…_marginal`): by then the one-off growth is behind (memory
//! the allocator kept from the accounts' password hashing and reuses first, pools filled, the
//! first connects' tables), so it is what one more idle socket costs, and it varies far less
//! from run to run than the whole, whose starting point depends on what the set-up left.

use std::ops::Range;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;
use serde_json::json;

use super::Outcome;
use crate::ctx::{quiet, Ctx};
use crate::metrics::{round3, usage};

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct IdleArgs {
    /// Sockets to hold.
    #[arg(long, default_value_t = 1000)]
    pub sockets: usize,
    /// Accounts they belong to (taken in turn; a user may have many sockets).
    #[arg(long, default_value_t = 100)]
    pub users: usize,
    /// Seconds to hold them (answering pings) before memory is read again.
    #[arg(long, default_value_t = 10)]
    pub hold: u64,
}

pub async fn run(ctx: &Ctx, args: &IdleArgs) -> Result<Outcome> {
    if args.sockets == 0 || args.users == 0 {
        bail!("--sockets and --users must be at least 1");
    }
    let accounts = ctx.accounts(args.users).await?;
    let own_before = usage(std::process::id())?;
    let before = ctx.procs.sample()?;
    let half = args.sockets / 2;
    let connect = |range: Range<usize>| {
        ctx.connect_many(
            range,
            &accounts,
            |i| i % args.users,
            |_| quiet(),
            "connecting",
        )
    };
    let mut fleet = connect(0..half).await;
    // Let the first half settle as the whole will before it is read.
    tokio::time::sleep(Duration::from_secs(args.hold.min(2))).await;
    let mid = ctx.procs.sample()?;
    fleet.append(connect(half..args.sockets).await);
    let connected_at = ctx.procs.sample()?;
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let after = ctx.procs.sample()?;
    let own_after = usage(std::process::id())?;
    let ok = fleet.ok();

    // Memory per socket of each gateway: the k-th watched process named gateway* serves the k-th
    // --url (socket j goes to url j mod n); with one server address every watched process serves
    // them all.
    let n_end = ctx.endpoints.len();
    let connected_to = |range: Range<usize>, gateway: Option<usize>| {
        fleet.sockets[range.clone()]
            .iter()
            .zip(range)
            .filter(|(s, j)| s.is_some() && gateway.is_none_or(|k| j % n_end == k))
            .count()
    };
    let mut per_socket = serde_json::Map::new();
    let mut marginal = serde_json::Map::new();
    let mut gateway_k = 0;
    for (i, w) in ctx.procs.watched.iter().enumerate() {
        let gateway = if n_end == 1 {
            None
        } else if w.name.starts_with("gateway") {
            gateway_k += 1;
            Some(gateway_k - 1)
        } else {
            continue;
        };
        let all = connected_to(0..args.sockets, gateway);
        let second = connected_to(half..args.sockets, gateway);
        let grew = |from: &crate::metrics::Sample| after.rss_kib(i) as f64 - from.rss_kib(i) as f64;
        if all > 0 {
            per_socket.insert(w.name.clone(), json!(round3(grew(&before) / all as f64)));
        }
        if second > 0 {
            marginal.insert(w.name.clone(), json!(round3(grew(&mid) / second as f64)));
        }
    }
    let secs = fleet.elapsed.as_secs_f64();
    let results = json!({
        "sockets": args.sockets,
        "users": args.users,
        "connected": ok,
        "failed": fleet.failed,
        "first_errors": fleet.first_errors.join(" | "),
        "connect_seconds": round3(secs),
        "connects_per_second": round3(ok as f64 / secs.max(1e-9)),
        "source_addresses": fleet.source_addresses(),
        "server_rss_per_socket_kib": per_socket,
        "server_rss_per_socket_kib_marginal": marginal,
        "loadgen_rss_per_socket_kib": round3((own_after.rss_kib as f64 - own_before.rss_kib as f64) / ok.max(1) as f64),
        "server_cpu_seconds_connecting": ctx.procs.between(&before, &connected_at, Some(("sockets", ok as u64)))["cpu_seconds"],
    });
    for s in fleet.sockets.iter().flatten() {
        s.close();
    }
    Ok(Outcome {
        params: serde_json::to_value(args)?,
        results,
        server: ctx
            .procs
            .between(&before, &after, Some(("sockets", ok as u64))),
        latencies: vec![("connect and resync".into(), fleet.latency.snapshot())],
    })
}
